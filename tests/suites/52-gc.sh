#!/bin/sh
# flowrun gc, end to end (issue 10 point 2): gc never removes what a recorded run
# refers to (cache: false outputs, --no-cache runs, stored directories); runs are
# forgotten only by --keep-runs / --older-than, and never a running, interrupted
# or newest successful one; --dry-run changes nothing; bad arguments are exit 2
# with one line; instances leave no empty folders under work/.
ROOT=$(pwd)
T=$(mktemp -d /tmp/flow-gc-XXXXXX)
trap 'chmod -R u+w "$T" 2>/dev/null; rm -rf "$T"' EXIT
cp tests/state/gc.flow tests/lib/libstatetasks.so "$T/" || { echo "FAIL gc: setup"; exit 0; }
cd "$T" || exit 0
"$FLOWC" gc.flow 2> flowc.err || { echo "FAIL gc: flowc gc.flow"; cat flowc.err; exit 0; }
export FLOW_TEST_LOG="$T/log"
ST="$T/st"
run() { "$FLOWRUN" gc.plan "$@" --progress none --state "$ST" 2>> "$T/stderr"; }
gc() { "$FLOWRUN" gc --state "$ST" "$@" 2>> "$T/stderr"; }
check() { # name condition-result
    if [ "$2" = 0 ]; then echo "PASS gc: $1"; else echo "FAIL gc: $1"; tail -5 "$T/stderr" | sed 's/^/    /'; fi
}
expect() { # name want got
    if [ "$2" = "$3" ]; then echo "PASS gc: $1"; else echo "FAIL gc: $1: want '$2', got '$3'"; tail -3 "$T/stderr" | sed 's/^/    /'; fi
}
# the ids of the recorded runs, oldest first
run_ids() { "$FLOWRUN" runs --json --state "$ST" | python3 -c "
import json, sys; print(' '.join(str(r['id']) for r in reversed(json.load(sys.stdin))))"; }
# every run's result that is a path: does its file still exist? ("ok" when all do)
results_exist() { "$FLOWRUN" runs --json --state "$ST" | python3 -c "
import json, os, sys
bad = [r['result'] for r in json.load(sys.stdin)
       if isinstance(r['result'], str) and '/store/' in r['result'] and not os.path.exists(r['result'])]
print('missing ' + ' '.join(bad) if bad else 'ok')"; }
objects() { find "$ST/store/objects" -type f | wc -l | tr -d ' '; }
# set a run's field: sql RUN "state='running'"
sql_run() { python3 - "$ST/state.db" "$1" "$2" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.execute("UPDATE runs SET " + sys.argv[3] + " WHERE id=" + sys.argv[2])
c.commit()
PY
}

for i in 1 2 3 4 5 6; do printf 'content %s\nsecond line\n' $i > in$i.txt; done

# ---- the data loss: outputs that never entered the cache ----
a=$(run --flow nocache --param f=in1.txt)
b=$(run --flow plain --param f=in2.txt --no-cache)
c=$(run --flow shdir --param f=in3.txt --no-cache)
gc > gc.out
expect "cache: false output survives gc" "CONTENT 1" "$(head -1 "$(echo "$a" | tr -d '"')" 2>&1)"
expect "--no-cache output survives gc" "CONTENT 2" "$(head -1 "$(echo "$b" | tr -d '"')" 2>&1)"
expect "runs --json: every result path still exists" ok "$(results_exist)"
expect "a stored directory keeps its files' objects (manifest + file, x3 runs)" 4 "$(objects)"
grep -q "^removed 0 objects" gc.out
check "nothing to remove" $?

# a directory served from the cache after gc: its file objects are intact
: > "$FLOW_TEST_LOG"
d=$(run --flow shdir --param f=in4.txt)
gc > /dev/null
expect "a cached directory survives gc" "$d" "$(run --flow shdir --param f=in4.txt)"
expect "a cached directory's file object survives gc" 6 "$(objects)"

# ---- --dry-run: lists the runs and objects that would go, with bytes; changes nothing ----
ST="$T/st-keep"
r1=$(run --flow plain --param f=in1.txt --no-cache)
r2=$(run --flow plain --param f=in2.txt --no-cache)
r3=$(run --flow plain --param f=in3.txt --no-cache)
before="$(run_ids) $(objects)"
gc --keep-runs 1 --dry-run > dry.out; code=$?
expect "--dry-run: exit 0" 0 "$code"
expect "--dry-run: lists the runs it would forget" "would forget run 1|would forget run 2" \
    "$(grep -o '^would forget run [0-9]*' dry.out | sort | paste -sd'|' -)"
expect "--dry-run: lists the objects that would go, with their bytes" 2 \
    "$(grep -c '^would remove object [0-9a-f]\{64\} (10 bytes)$' dry.out)"
grep -q "^would remove 2 objects (20 bytes" dry.out
check "--dry-run: the total in bytes" $?
expect "--dry-run: nothing forgotten, nothing removed" "$before" "$(run_ids) $(objects)"

# ---- --keep-runs: the newest N of each (flow, env) ----
for i in 1 3; do mkdir -p "$ST/logs/$i/head" && echo log > "$ST/logs/$i/head/-.log"; done
gc --keep-runs 1 > keep.out
expect "--keep-runs 1: forgets the older runs" "3" "$(run_ids)"
expect "--keep-runs 1: says which" 2 "$(grep -c '^forgot run [12] (flow plain, env prod, succeeded' keep.out)"
expect "--keep-runs 1: the kept run's output is there" "CONTENT 3" "$(head -1 "$(echo "$r3" | tr -d '"')" 2>&1)"
[ ! -e "$(echo "$r1" | tr -d '"')" ] && [ ! -e "$(echo "$r2" | tr -d '"')" ]
check "--keep-runs 1: the forgotten runs' outputs are collected" $?
expect "--keep-runs 1: one object left" 1 "$(objects)"
[ ! -e "$ST/logs/1" ] && [ -d "$ST/logs/3" ]
check "--keep-runs 1: the forgotten runs' logs go" $?

# ---- what is never forgotten ----
ST="$T/st-protect"
run --flow shpath --param f=in1.txt --no-cache > /dev/null                # 1 succeeded
run --flow shpath --param f=in2.txt --no-cache > /dev/null                # 2 succeeded (newest success)
run --flow shpath --param f=in3.txt --param code=1 > /dev/null            # 3 failed
run --flow shpath --param f=in4.txt --param code=1 > /dev/null            # 4 failed (newest: resumable)
run --flow shpath --param f=in5.txt --no-cache > /dev/null                # 5 another environment (below:
                                                                          #   --env test is refused until
                                                                          #   environments are enforced)
run --flow plain --param f=in6.txt --no-cache > /dev/null                 # 6 then marked running
run --flow plain --param f=in1.txt --no-cache > /dev/null                 # 7 then marked interrupted
run --flow plain --param f=in2.txt --no-cache > /dev/null                 # 8 newest success of plain
sql_run 5 "env='test'"
sql_run 6 "state='running', ended=NULL"
sql_run 7 "state='interrupted'"
gc --keep-runs 0 > protect.out
expect "--keep-runs 0 keeps the newest success and newest failure of each (flow, env), and active runs" \
    "2 4 5 6 7 8" "$(run_ids)"
expect "a running run's output is kept" ok "$(results_exist)"
expect "the objects of the kept runs stay (2, 5, 6, 7, 8)" 5 "$(objects)"

# ---- --older-than: by the time a run ended ----
ST="$T/st-age"
for i in 1 2 3 4; do run --flow plain --param f=in$i.txt --no-cache > /dev/null; done
old=$(python3 -c "import time; print(time.time() - 40 * 86400)")
sql_run 1 "started=$old, ended=$old"
sql_run 2 "started=$old, ended=$old"
gc --older-than 30d > age.out
expect "--older-than 30d: forgets the runs that ended 40 days ago" "3 4" "$(run_ids)"
gc --older-than 1_000d > /dev/null
expect "--older-than 1_000d: forgets nothing more (the language's duration syntax)" "3 4" "$(run_ids)"
sql_run 3 "started=$old, ended=$old"
sql_run 4 "started=$old, ended=$old"
gc --older-than 12h --keep-runs 1 > /dev/null
expect "--older-than with --keep-runs: a run either keeps stays" "4" "$(run_ids)"

# ---- a run in progress holds the store: gc refuses, changes nothing ----
ST="$T/st-lock"
run --flow plain --param f=in1.txt --no-cache > /dev/null
run --flow plain --param f=in2.txt --no-cache > /dev/null
if command -v flock > /dev/null 2>&1; then
    flock -s "$ST/store/lock" sleep 5 &
    holder=$!
    sleep 0.5
    "$FLOWRUN" gc --state "$ST" --keep-runs 0 > lock.out 2> lock.err; code=$?
    kill "$holder" 2> /dev/null; wait "$holder" 2> /dev/null
    expect "gc while a run holds the store: exit 1, one line, nothing done" "1 1 1 2 2" \
        "$code $(wc -l < lock.err | tr -d ' ') $(grep -c 'run gc when it has finished' lock.err) $(run_ids | wc -w | tr -d ' ') $(objects)"
else
    echo "SKIP gc: lock: no flock(1) here"
fi

# ---- bad arguments: exit 2 and one line ----
for args in "--keep-runs -1" "--keep-runs x" "--keep-runs" "--older-than 3x" "--older-than 30" \
            "--older-than" "--older-than 99999999999999999999d" "--bogus" "extra"; do
    "$FLOWRUN" gc --state "$ST" $args > bad.out 2> bad.err; code=$?
    expect "bad arguments ($args): exit 2, one line" "2 1" "$code $(wc -l < bad.err | tr -d ' ')"
done

# ---- no empty folders under work/ once a run is over ----
ST="$T/st-work"
for ex in inline process; do
    for fl in shpath shstr shdir combined plain nocache; do
        run --flow $fl --param f=in1.txt --executor $ex --no-cache > /dev/null
    done
done
expect "work/: no folder left by sh, combine or path-returning tasks" "" \
    "$(find "$ST/work" -mindepth 1 2>/dev/null | head -3)"
run --flow shpath --param f=in1.txt --param code=2 > /dev/null
expect "work/: a failed instance's folder (with its output) stays for inspection" 1 \
    "$(find "$ST/work" -type f -name out | wc -l | tr -d ' ')"
