#!/bin/sh
# flowrun backfill and interval claims (issue 14; docs/scheduling.md): a small
# scheduled flow whose task records each call in a file. newest-first with --runs 1
# runs in exactly that order; a second backfill runs nothing; an overlapping range
# only the new days; --rerun reruns; a failed interval is retried by the next
# backfill under the same run id; usage errors exit 2; SIGINT mid-backfill then
# backfill again: every interval succeeded exactly once; two claimers of one interval
# at once: one run; runs --json logical_date; an @hourly time flow; a tz flow;
# examples/daily backfilled for real.
ROOT=$(pwd)
T=$(mktemp -d /tmp/flow-backfill-XXXXXX)
pids=""
trap 'for p in $pids; do kill -9 $p 2>/dev/null; done; rm -rf "$T"' EXIT
cd "$T" || exit 0
PY=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null)
[ -n "$PY" ] || { echo "SKIP backfill: python3 is needed"; exit 0; }
pass() { echo "PASS backfill: $1"; }
fail() { echo "FAIL backfill: $1: $2"; }
expect() { # name want got
    if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "want [$2], got [$3]"; fi
}
calls() { tr '\n' ' ' < "$1" | sed 's/ $//'; }

cat > d.flow <<'EOF'
# records each call in calls.txt; fails once for the day named in ./fail-once
task rec(day: date, log: str) -> str = sh "echo {day} >> {log}; if [ -f fail-once ] && [ \"$(cat fail-once)\" = {day} ]; then rm fail-once; exit 1; fi; echo ok" with {cache: false}
flow daily(day: date, log: str = "calls.txt") schedule "@daily" {
    rec(day, log)
}
task nap(day: date, log: str) -> str = sh "sleep 0.4; echo {day} >> {log}" with {cache: false}
flow slow(day: date, log: str = "slow.txt") schedule "@daily" {
    nap(day, log)
}
task wait_go(day: date, log: str) -> str = sh "while [ ! -f go ]; do sleep 0.05; done; echo {day} >> {log}" with {cache: false}
flow gated(day: date, log: str = "slow.txt") schedule "@daily" {
    wait_go(day, log)
}
task at(t: time) -> str = sh "echo {t} >> hours.txt" with {cache: false}
flow hourly(t: time) schedule "@hourly" {
    at(t)
}
task bday(day: date) -> str = sh "echo {day} >> berlin.txt" with {cache: false}
flow berlin(day: date) schedule "30 2 * * *" tz "Europe/Berlin" {
    bday(day)
}
task plain(n: int) -> int = sh "echo {n}"
flow unscheduled(n: int = 1) {
    plain(n)
}
EOF
"$FLOWC" d.flow 2> flowc.err || { echo "FAIL backfill: flowc"; sed 's/^/    /' flowc.err; exit 0; }
bf() { "$FLOWRUN" backfill d.plan --state st "$@"; }

# ---- order, skip, overlap, rerun ----
bf --flow daily --from 2026-01-01 --to 2026-01-05 --order newest-first --runs 1 2> bf1.err
expect "newest-first: exit 0" 0 $?
expect "newest-first --runs 1: exactly that order" \
    "2026-01-05 2026-01-04 2026-01-03 2026-01-02 2026-01-01" "$(calls calls.txt)"
bf --flow daily --from 2026-01-01 --to 2026-01-05 2> bf2.err
expect "second backfill: exit 0" 0 $?
expect "second backfill runs nothing" 5 "$(wc -l < calls.txt | tr -d ' ')"
grep -q "5 already succeeded" bf2.err && pass "second backfill says what it skipped" ||
    fail "second backfill says what it skipped" "$(cat bf2.err)"
: > calls.txt
bf --flow daily --from 2026-01-04 --to 2026-01-07 --runs 1 2> /dev/null
expect "overlapping range runs only the new days" "2026-01-06 2026-01-07" "$(calls calls.txt)"
: > calls.txt
bf --flow daily --from 2026-01-01 --to 2026-01-03 --rerun --runs 1 2> /dev/null
expect "--rerun reruns" "2026-01-01 2026-01-02 2026-01-03" "$(calls calls.txt)"

# ---- runs: logical dates ----
"$FLOWRUN" runs --state st --json > runs.json 2>/dev/null
got=$("$PY" -c "
import json; r = json.load(open('runs.json'))
print(all('logical_date' in x for x in r), sorted(set(x['logical_date'] for x in r))[0], len(r))")
expect "runs --json: logical_date on every run" "True 2026-01-01 10" "$got"
"$FLOWRUN" runs --state st 2>/dev/null | head -2 | tail -1 | grep -q "  2026-01-0[1-7]$" &&
    pass "runs: a LOGICAL column" || fail "runs: a LOGICAL column" "$("$FLOWRUN" runs --state st | head -2)"
# a run by hand with the date given counts
: > calls.txt
"$FLOWRUN" run d.plan --flow daily --state st --param day=2026-01-10 --progress none > /dev/null 2>&1
bf --flow daily --from 2026-01-09 --to 2026-01-10 2> /dev/null
expect "a run by hand with the date given counts" "2026-01-10 2026-01-09" "$(calls calls.txt)"
"$FLOWRUN" run d.plan --flow unscheduled --state st --progress none > /dev/null 2>&1
"$FLOWRUN" runs --state st --json 2>/dev/null | head -2 | grep -q '"logical_date":null' &&
    pass "runs --json: an unscheduled run's logical_date is null" ||
    fail "runs --json: an unscheduled run's logical_date is null" "$("$FLOWRUN" runs --state st --json | head -2)"

# ---- a failed interval is retried under the same run id ----
echo 2026-02-02 > fail-once
: > calls.txt
bf --flow daily --from 2026-02-01 --to 2026-02-03 --runs 1 2> fail.err
expect "a failed interval: exit 1" 1 $?
grep -q "^  2026-02-02 failed" fail.err && pass "the failed interval is listed with its date" ||
    fail "the failed interval is listed with its date" "$(cat fail.err)"
id1=$("$FLOWRUN" runs --state st --json | "$PY" -c "
import json,sys; print([x['id'] for x in json.load(sys.stdin) if x['logical_date'] == '2026-02-02'])")
bf --flow daily --from 2026-02-01 --to 2026-02-03 2> retry.err
expect "retry: exit 0" 0 $?
id2=$("$FLOWRUN" runs --state st --json | "$PY" -c "
import json,sys; print([(x['id'], x['state']) for x in json.load(sys.stdin) if x['logical_date'] == '2026-02-02'])")
expect "retried under the same run id" "$(echo "$id1" | sed "s/\[\([0-9]*\)\]/[(\1, 'succeeded')]/")" "$id2"
expect "only the failed day ran again" "2026-02-01 2026-02-02 2026-02-03 2026-02-02" "$(calls calls.txt)"

# ---- usage errors ----
usage() { # name, args...
    n=$1; shift
    "$FLOWRUN" backfill d.plan --state st "$@" > /dev/null 2> usage.err
    c=$?
    [ $c = 2 ] && [ -s usage.err ] && pass "usage: $n" || fail "usage: $n" "exit $c: $(cat usage.err)"
}
usage "unscheduled flow" --flow unscheduled --from 2026-01-01 --to 2026-01-02
usage "--from after --to" --flow daily --from 2026-01-05 --to 2026-01-01
usage "more than --max-intervals" --flow daily --from 2026-01-01 --to 2026-12-31 --max-intervals 100
usage "more than 10,000 intervals by default" --flow hourly --from 2026-01-01 --to 2027-12-31
usage "unknown flow" --flow nope --from 2026-01-01 --to 2026-01-02
usage "the first parameter given with --param" --flow daily --from 2026-01-01 --to 2026-01-02 --param day=2026-01-01
usage "a time for a date flow" --flow daily --from 2026-01-01T00:00:00Z --to 2026-01-02
usage "no --to" --flow daily --from 2026-01-01
"$FLOWRUN" backfill d.plan --state st --flow daily --from 2026-03-01 --to 2026-03-09 --param log=1=2 --param nope=1 2> refused.err
c=$?
[ $c = 2 ] && [ "$(grep -c ": started" refused.err)" = 1 ] && grep -q "no further interval" refused.err &&
    pass "a parameter the runs refuse: exit 2 after the first run" ||
    fail "a parameter the runs refuse: exit 2 after the first run" "exit $c: $(cat refused.err)"
"$FLOWRUN" run d.plan --state st --flow hourly --interval 2026-01-01T05:30:00Z > /dev/null 2> iv.err
c=$?
[ $c = 2 ] && grep -q "no interval of schedule \"@hourly\" starts then (the next starts 2026-01-01T06:00:00Z)" iv.err &&
    pass "run --interval: a time no interval starts at is refused" ||
    fail "run --interval: a time no interval starts at is refused" "exit $c: $(cat iv.err)"
nruns=$("$FLOWRUN" runs --state st --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
"$FLOWRUN" backfill d.plan --state st --flow daily --from 2026-03-01 --to 2026-03-02 --dry-run > dry.out 2> dry.err
c=$?
[ $c = 0 ] && grep -q "^== daily 2026-03-01" dry.out && grep -q "^== daily 2026-03-02" dry.out &&
    ! grep -q 2026-03-01 calls.txt &&
    pass "--dry-run: a report per interval, nothing run" ||
    fail "--dry-run: a report per interval, nothing run" "exit $c: $(cat dry.out dry.err)"
"$FLOWRUN" backfill d.plan --state st --flow daily --from 2026-03-01 --to 2026-03-02 --order newest-first \
    --dry-run --json > dry.json 2> dry.err
c=$?
after=$("$FLOWRUN" runs --state st --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
[ $c = 0 ] && python3 -c '
import json, sys
a = json.load(open("dry.json"))
assert [x["logical_date"] for x in a] == ["2026-03-02", "2026-03-01"], a
assert all(isinstance(x["dry_run"], dict) for x in a), a
' 2>> dry.err && [ "$nruns" = "$after" ] && ! grep -q 2026-03-01 calls.txt &&
    pass "--dry-run --json: one report per interval in order, no run recorded" ||
    fail "--dry-run --json: one report per interval in order, no run recorded" "exit $c: $(cat dry.json dry.err)"
usage "--json without --dry-run" --flow daily --from 2026-01-01 --to 2026-01-02 --json

# ---- SIGINT mid-backfill, then backfill again: each interval succeeded exactly once ----
: > slow.txt
"$FLOWRUN" backfill d.plan --state st --flow slow --from 2026-04-01 --to 2026-04-10 --runs 2 2> int.err &
pid=$!; pids="$pids $pid"
sleep 1.2
kill -INT $pid
wait $pid
expect "SIGINT: exit 3" 3 $?
n1=$(wc -l < slow.txt | tr -d ' ')
[ "$n1" -lt 10 ] && pass "SIGINT: stopped before the end ($n1 of 10)" || fail "SIGINT: stopped before the end" "$n1"
grep -q "goes on where this one stopped" int.err && pass "SIGINT: says how to go on" ||
    fail "SIGINT: says how to go on" "$(cat int.err)"
bf --flow slow --from 2026-04-01 --to 2026-04-10 --runs 3 2> int2.err
expect "after SIGINT: the next backfill completes" 0 $?
got=$("$FLOWRUN" runs --state st --json | "$PY" -c "
import json,sys,collections
r = [x for x in json.load(sys.stdin) if x['flow'] == 'slow']
ok = collections.Counter(x['logical_date'] for x in r if x['state'] == 'succeeded')
print(len(ok), max(ok.values()), len(set(x['id'] for x in r)) == len(set(x['logical_date'] for x in r)))")
expect "after SIGINT: 10 intervals succeeded exactly once, one run id each" "10 1 True" "$got"

# ---- two claimers of one interval at once: exactly one successful run ----
i=0; codes=""
while [ $i -lt 20 ]; do
    day=$(printf "2026-05-%02d" $((i + 1)))
    "$FLOWRUN" run d.plan --flow slow --state st --interval $day --progress none > /dev/null 2>&1 &
    a=$!
    "$FLOWRUN" run d.plan --flow slow --state st --interval $day --progress none > /dev/null 2>&1 &
    b=$!
    wait $a; ca=$?; wait $b; cb=$?
    codes="$codes $(echo $ca $cb | tr ' ' '\n' | sort | tr '\n' '/')"
    i=$((i + 1))
done
bad=$(echo $codes | tr ' ' '\n' | grep -v -e '^0/4/$' -e '^0/5/$' | head -3)
[ -z "$bad" ] && pass "concurrent claims x20: one ran, the other found it done or busy" ||
    fail "concurrent claims x20: one ran, the other found it done or busy" "$bad"
got=$("$FLOWRUN" runs --state st --json | "$PY" -c "
import json,sys,collections
r = [x for x in json.load(sys.stdin) if x['flow'] == 'slow' and x['logical_date'].startswith('2026-05')]
c = collections.Counter(x['logical_date'] for x in r)
print(len(c), max(c.values()), all(x['state'] == 'succeeded' for x in r))")
expect "concurrent claims x20: one run record per interval, succeeded" "20 1 True" "$got"
expect "concurrent claims x20: each day's task ran once" 20 "$(grep -c 2026-05 slow.txt)"
# two backfills over one range at once
: > calls.txt
bf --flow daily --from 2026-06-01 --to 2026-06-12 --runs 2 2> /dev/null &
a=$!
bf --flow daily --from 2026-06-01 --to 2026-06-12 --runs 2 --order newest-first 2> /dev/null &
b=$!
wait $a; wait $b
bf --flow daily --from 2026-06-01 --to 2026-06-12 2> /dev/null
expect "two backfills at once, then one more: exit 0" 0 $?
got=$("$FLOWRUN" runs --state st --json | "$PY" -c "
import json,sys,collections
r = [x for x in json.load(sys.stdin) if x['logical_date'] and x['logical_date'].startswith('2026-06')]
c = collections.Counter(x['logical_date'] for x in r if x['state'] == 'succeeded')
print(len(c), max(c.values()))")
expect "two backfills at once: each interval succeeded once" "12 1" "$got"

# ---- a claimer killed mid-run: the next claim resumes its run, no second record ----
# (its task waits for ./go, so the kill lands mid-run however loaded the machine is)
rm -f go
"$FLOWRUN" run d.plan --flow gated --state st --interval 2026-07-01 --progress none > /dev/null 2>&1 &
pid=$!; pids="$pids $pid"
n=0
while [ $n -lt 400 ] && ! "$FLOWRUN" runs --state st 2>/dev/null | grep -q "running .*2026-07-01$"; do
    sleep 0.05; n=$((n + 1))
done
kill -9 $pid; wait $pid 2>/dev/null
touch go
"$FLOWRUN" run d.plan --flow gated --state st --interval 2026-07-01 --progress none > /dev/null 2> kill.err
expect "SIGKILLed claimer: the next claim succeeds" 0 $?
grep -q "resuming run" kill.err && pass "SIGKILLed claimer: its run is resumed" ||
    fail "SIGKILLed claimer: its run is resumed" "$(cat kill.err)"
got=$("$FLOWRUN" runs --state st --json | "$PY" -c "
import json,sys; print([x['state'] for x in json.load(sys.stdin) if x['logical_date'] == '2026-07-01'])")
expect "SIGKILLed claimer: one run record, succeeded" "['succeeded']" "$got"

# ---- a schema-5 state.db migrates: its runs have no logical date, backfill works on it ----
mkdir old
"$FLOWRUN" run d.plan --flow daily --state old --param day=2026-08-01 --progress none > /dev/null 2>&1
"$PY" -c "
import sqlite3; c = sqlite3.connect('old/state.db')
c.executescript('DROP TABLE task_cpu; ALTER TABLE files DROP COLUMN prev_size; ALTER TABLE files DROP COLUMN prev_mtime_ns; ALTER TABLE files DROP COLUMN prev_hash; DROP TABLE remote_batches; DROP TABLE envs; DROP TABLE first_seen; DROP INDEX runs_logical; ALTER TABLE runs DROP COLUMN logical;'
                'PRAGMA user_version=5;'); c.commit()"
"$FLOWRUN" backfill d.plan --state old --flow daily --from 2026-08-01 --to 2026-08-02 2> /dev/null
expect "schema 5: backfill on a migrated state.db" 0 $?
got=$("$FLOWRUN" runs --state old --json | "$PY" -c "
import json,sys; print([x['logical_date'] for x in json.load(sys.stdin)])")
expect "schema 5: old runs have no logical date (the day ran again)" "['2026-08-02', '2026-08-01', None]" "$got"
expect "schema 5: migrated to this flowrun's version" "$(sed -n 's/^#define STATE_SCHEMA_VERSION \([0-9]*\).*/\1/p' "$ROOT/runtime/recorder/state.h")" "$("$PY" -c "import sqlite3; print(sqlite3.connect('old/state.db').execute('PRAGMA user_version').fetchone()[0])")"

# ---- an @hourly time flow ----
bf --flow hourly --from 2026-01-01T22:00:00Z --to 2026-01-02T01:00:00Z --runs 1 2> /dev/null
expect "@hourly: exit 0" 0 $?
expect "@hourly: one run per hour, times in UTC" \
    "2026-01-01T22:00:00Z 2026-01-01T23:00:00Z 2026-01-02T00:00:00Z 2026-01-02T01:00:00Z" "$(calls hours.txt)"
: > hours.txt
bf --flow hourly --from 2026-01-03 --to 2026-01-03 --runs 2 2> /dev/null
expect "@hourly: a date range is the whole day" 24 "$(wc -l < hours.txt | tr -d ' ')"

# ---- a tz flow: 02:30 Berlin, over the spring-forward night ----
bf --flow berlin --from 2026-03-28 --to 2026-03-30 --runs 1 2> berlin.err
expect "tz: exit 0" 0 $?
expect "tz: 02:30 does not exist on 2026-03-29: skipped" "2026-03-28 2026-03-30" "$(calls berlin.txt)"

# ---- examples/daily, backfilled for real ----
mkdir ex && cp "$ROOT/examples/daily/daily.flow" ex/ && cd ex && mkdir data && echo a > data/a.txt
if "$FLOWC" daily.flow 2> flowc.err; then
    "$FLOWRUN" backfill daily.plan --from 2026-01-01 --to 2026-01-07 --runs 2 --state st 2> ex.err
    c=$?
    n=$("$FLOWRUN" runs --state st --json | "$PY" -c "
import json,sys; print(sum(1 for x in json.load(sys.stdin) if x['state'] == 'succeeded' and x['logical_date']))")
    [ $c = 0 ] && [ "$n" = 7 ] && pass "examples/daily: a week backfilled" ||
        fail "examples/daily: a week backfilled" "exit $c, $n runs: $(cat ex.err)"
else
    fail "examples/daily: flowc" "$(cat flowc.err)"
fi
