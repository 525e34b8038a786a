#!/bin/sh
# flowrun serve (issue 14; docs/serve.md): scheduled flows on a fake clock, exactly
# once per interval through SIGKILLs and with two serve processes on one state
# folder, catch-up and --no-catchup, SIGTERM and SIGHUP, and data triggers (a watched
# folder: 1 file, 10,000 files, one changed file: three runs, the last doing one
# instance). The fake clock (FLOW_FAKE_NOW/SPEED/SINCE/UNTIL) is for tests only.
ROOT=$(pwd)
T=$(mktemp -d /tmp/flow-serve-XXXXXX)
pids=""
cleanup() { for p in $pids; do kill -9 "$p" 2>/dev/null; done; rm -rf "$T"; }
trap cleanup EXIT
cp tests/serve/*.flow tests/lib/libstatetasks.so "$T/" || { echo "FAIL serve: setup"; exit 0; }
cd "$T" || exit 0
for f in daily quarter watch slow nostart slowwatch; do "$FLOWC" $f.flow 2> flowc.err || { echo "FAIL serve: flowc $f"; cat flowc.err; }; done
check() { # name condition-result
    if [ "$2" = 0 ]; then echo "PASS serve: $1"; else echo "FAIL serve: $1"; tail -5 "$T/serve.err" | sed 's/^/    /'; fi
}
expect() { # name want got
    if [ "$2" = "$3" ]; then echo "PASS serve: $1"; else echo "FAIL serve: $1: want '$2', got '$3'"; tail -5 "$T/serve.err" | sed 's/^/    /'; fi
}
rand_sleep() { # a random pause of 0.2 .. 1.2 s
    n=$(od -An -N1 -tu1 /dev/urandom | tr -d ' ')
    sleep "$(awk -v n="$n" 'BEGIN { printf "%.2f", 0.2 + n / 255 }')"
}
fake() { # NOW SPEED UNTIL: one fake clock for every serve started until unfake
    export FLOW_FAKE_NOW="$1" FLOW_FAKE_SPEED="$2" FLOW_FAKE_UNTIL="$3"
    FLOW_FAKE_SINCE=$(date +%s.%N); export FLOW_FAKE_SINCE
}
kill_and_finish() { # PLAN STATE: serve SIGKILLed 10 times at random moments, then to the end
    k=0; while [ $k -lt 10 ]; do
        "$FLOWRUN" serve "$1" --state "$2" 2>> serve.err & p=$!
        rand_sleep; kill -9 $p; wait $p 2>/dev/null; k=$((k + 1))
    done
    "$FLOWRUN" serve "$1" --state "$2" 2>> serve.err
}
unfake() { unset FLOW_FAKE_NOW FLOW_FAKE_SPEED FLOW_FAKE_UNTIL FLOW_FAKE_SINCE; }
# the logical dates of flow $2's successful runs in state $1, one a line, sorted
succeeded() {
    "$FLOWRUN" runs --json --state "$1" |
        jq -r --arg f "$2" '.[] | select(.flow == $f and .state == "succeeded") | .logical_date' | sort
}
# every expected date (file $3) has exactly one successful run, and nothing else ran
exactly_once() { # state flow expected-file
    succeeded "$1" "$2" > got.txt
    if cmp -s got.txt "$3"; then echo 0; else
        echo "    duplicates: $(uniq -d got.txt | head -3 | tr '\n' ' ') missing: $(comm -23 "$3" got.txt | head -3 | tr '\n' ' ')" >> serve.err
        echo 1; fi
}
days() { # FROM N: N dates from FROM
    i=0; while [ $i -lt "$2" ]; do date -u -d "$1 + $i day" +%Y-%m-%d; i=$((i + 1)); done
}
: > serve.err

# ---- a month of @daily on a fake clock, serve SIGKILLed 10 times at random moments ----
days 2026-01-01 31 > month.txt
fake 2026-01-01T00:00:00Z 432000 2026-02-01T00:00:00Z   # a day every 0.2 s
kill_and_finish daily.plan st-month
expect "a month of @daily through 10 SIGKILLs: serve ends at FLOW_FAKE_UNTIL" 0 $?
unfake
expect "a month of @daily through 10 SIGKILLs: every day exactly one successful run" 0 \
    "$(exactly_once st-month daily month.txt)"

# ---- a day of */15, SIGKILLed 10 times ----
: > day.txt
i=0; while [ $i -lt 96 ]; do date -u -d "2026-01-01T00:00:00Z + $((i * 15)) min" +%Y-%m-%dT%H:%M:%SZ >> day.txt; i=$((i + 1)); done
fake 2026-01-01T00:00:00Z 4500 2026-01-02T00:00:00Z    # 15 min every 0.2 s
kill_and_finish quarter.plan st-day
expect "a day of */15 through 10 SIGKILLs: serve ends at FLOW_FAKE_UNTIL" 0 $?
unfake
expect "a day of */15 through 10 SIGKILLs: every quarter hour exactly one successful run" 0 \
    "$(exactly_once st-day quarter day.txt)"
# each run sleeps 0.1 s of each 0.2 s: a kill lands mid-run with odds 1/2, 20 kills
check "SIGKILLs landed mid-run: those runs were resumed by the next serve (not duplicated)" \
    "$(grep -q 'resuming run' serve.err; echo $?)"

# ---- two serve processes on one state folder ----
days 2026-01-01 20 > twenty.txt
fake 2026-01-01T00:00:00Z 864000 2026-01-21T00:00:00Z   # a day every 0.1 s
"$FLOWRUN" serve daily.plan --state st-two 2> two-a.err & a=$!
"$FLOWRUN" serve daily.plan --state st-two 2> two-b.err & b=$!
pids="$a $b"
wait $a; ra=$?; wait $b; rb=$?; pids=""
unfake
cat two-a.err two-b.err >> serve.err
expect "two serves on one state: both end at FLOW_FAKE_UNTIL" "0 0" "$ra $rb"
expect "two serves on one state: every day exactly one successful run" 0 "$(exactly_once st-two daily twenty.txt)"

# ---- catch-up after downtime, and --no-catchup ----
days 2026-01-01 9 > nine.txt
fake 2026-01-10T00:00:00Z 1 2026-01-10T00:00:00Z
"$FLOWRUN" serve daily.plan --state st-catch 2>> serve.err
expect "catch-up: serve started on Jan 10 runs Jan 1 .. Jan 9 (start 2026-01-01)" 0 "$(exactly_once st-catch daily nine.txt)"
"$FLOWRUN" serve daily.plan --state st-catch 2> again.err
expect "catch-up again: nothing to run" 0 "$(grep -c 'started' again.err)"
"$FLOWRUN" serve daily.plan --state st-nocatch --no-catchup 2>> serve.err
expect "--no-catchup: only the latest interval (Jan 9)" "2026-01-09" "$(succeeded st-nocatch daily | tr '\n' ' ' | sed 's/ $//')"
unfake
# without `start`: from the first time serve saw the flow (Jan 10, 12:00): Jan 11 onwards
fake 2026-01-10T12:00:00Z 1 2026-01-10T12:00:00Z
"$FLOWRUN" serve nostart.plan --state st-fresh 2>> serve.err
expect "no start: the first serve (Jan 10, 12:00) runs nothing" "" "$(succeeded st-fresh fresh)"
fake 2026-01-14T00:00:00Z 1 2026-01-14T00:00:00Z
"$FLOWRUN" serve nostart.plan --state st-fresh 2>> serve.err
expect "no start: back on Jan 14, catch-up from the first sighting: Jan 11 .. 13" \
    "2026-01-11 2026-01-12 2026-01-13" "$(succeeded st-fresh fresh | tr '\n' ' ' | sed 's/ $//')"
unfake

# ---- SIGTERM: the running run finishes, serve exits 0; twice: the run stops, exit 3 ----
fake 2026-01-01T23:59:59Z 1 ""
"$FLOWRUN" serve slow.plan --state st-term 2> term.err & p=$!; pids=$p
sleep 1.6; kill -TERM $p; wait $p; rc=$?; pids=""
cat term.err >> serve.err
expect "SIGTERM during a run: exit 0" 0 $rc
expect "SIGTERM during a run: the run finished" "2026-01-01" "$(succeeded st-term slowday)"
fake 2026-01-02T23:59:59Z 1 ""
"$FLOWRUN" serve slow.plan --state st-term 2> term2.err & p=$!; pids=$p
sleep 1.4; kill -TERM $p; sleep 0.2; kill -TERM $p; wait $p; rc=$?; pids=""
cat term2.err >> serve.err
expect "SIGTERM twice: the run is interrupted, exit 3" 3 $rc
expect "SIGTERM twice: the run is recorded interrupted" "interrupted" \
    "$("$FLOWRUN" runs --json --state st-term | jq -r '.[] | select(.logical_date == "2026-01-02") | .state')"
unfake

# ---- SIGHUP: the plans again ----
cp daily.plan hup.plan
"$FLOWRUN" serve hup.plan --state st-hup 2> hup.err & p=$!; pids=$p
sleep 0.5; echo garbage > hup.plan; kill -HUP $p; sleep 0.5
check "SIGHUP with a plan that no longer reads: kept, said so" "$(grep -q 'hup.plan: kept as it was' hup.err; echo $?)"
cp quarter.plan hup.plan; kill -HUP $p; sleep 0.5
check "SIGHUP with a new plan: its flow is served" "$(grep -q 'quarter: new in' hup.err && grep -q 'daily: no longer' hup.err; echo $?)"
kill -TERM $p; wait $p; rc=$?; pids=""
cat hup.err >> serve.err
expect "SIGHUP: serve still exits 0 on SIGTERM" 0 $rc

# ---- usage ----
"$FLOWRUN" serve daily.plan --metrics 2> metrics.err
expect "--metrics without its ADDR:PORT: usage error" 2 $?
check "--metrics: said so (the endpoint itself: 68-metrics)" "$(grep -q "option '--metrics' needs a value" metrics.err; echo $?)"
"$FLOWRUN" serve 2> /dev/null
expect "no plan: usage error" 2 $?
"$FLOWRUN" serve daily.plan --state st-u --env staging 2> env.err
expect "an environment flow.yaml lacks (--env staging) is refused at start" 2 $?
check "--env staging: said once" "$(grep -c -- '--env staging: no such environment' env.err | grep -qx 1; echo $?)"
"$FLOWRUN" serve slow.plan watch.plan --state st-u --debounce 2parsecs 2> /dev/null
expect "a bad --debounce: usage error" 2 $?

# ---- data triggers: 1 file, then 10,000, then one changed: three runs ----
export FLOW_TEST_LOG="$T/log"; : > "$FLOW_TEST_LOG"
mkdir in
runs_of() { "$FLOWRUN" runs --json --state st-watch | jq '[.[] | select(.flow == "ingest" and .state == "succeeded")] | length'; }
wait_runs() { # N: until N successful runs (at most a minute)
    i=0; while [ "$(runs_of)" -lt "$1" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done; }
# (a debounce of 2 s: the 10,000 files are written by one process in well under a
# second, and a loaded machine must not pause it long enough to split them in two runs)
"$FLOWRUN" serve watch.plan --state st-watch --debounce 2s 2> watch.err & p=$!; pids=$p
wait_runs 1                                   # the run at start (nothing changed yet)
echo one > in/a.txt
wait_runs 2
python3 -c "
for i in range(10000):
    with open('in/f%d.txt' % i, 'w') as f: f.write('x\\n')"
wait_runs 3
sleep 0.5
n0=$(grep -c '^count_lines ' "$FLOW_TEST_LOG")
echo changed >> in/f5.txt
wait_runs 4
sleep 3                                        # no further run comes (beyond the debounce)
kill -TERM $p; wait $p; rc=$?; pids=""
cat watch.err >> serve.err
expect "watch: start, 1 file, 10,000 files, one changed: 1 + 3 runs" 4 "$(runs_of)"
expect "watch: the 10,000 files ran 10,000 instances, in one run" 10001 "$n0"
expect "watch: the changed file's run did one instance, the changed file's" "1 count_lines in/f5.txt" \
    "$(($(grep -c '^count_lines ' "$FLOW_TEST_LOG") - n0)) $(grep '^count_lines ' "$FLOW_TEST_LOG" | tail -1)"
expect "watch: SIGTERM exits 0" 0 $rc

# ---- examples/watch: the example as its README runs it ----
mkdir ex && cp "$ROOT/examples/watch/watch.flow" ex/ && cd ex
if "$FLOWC" watch.flow 2> flowc.err; then
    mkdir inbox
    "$FLOWRUN" serve watch.plan --param root=inbox --state st --debounce 200ms 2> serve.err & p=$!; pids=$p
    sleep 0.5; echo "three little words" > inbox/a.txt; sleep 1; echo "two more" > inbox/b.txt; sleep 1
    kill -TERM $p; wait $p; rc=$?; pids=""
    expect "examples/watch: serve exits 0" 0 $rc
    expect "examples/watch: the last run counted both files" "[3,2]" \
        "$("$FLOWRUN" runs --json --state st | jq -c '.[0].result')"
else
    echo "FAIL serve: examples/watch: flowc: $(head -2 flowc.err)"
fi
cd "$T"

# ---- a watched folder that does not exist yet; --no-catchup: no run at start ----
: > "$FLOW_TEST_LOG"
"$FLOWRUN" serve watch.plan --param root=later --state st-later --debounce 200ms --no-catchup 2> later.err & p=$!; pids=$p
sleep 1.2
n_before=$("$FLOWRUN" runs --json --state st-later 2> /dev/null | jq length 2> /dev/null || echo 0)
mkdir later; echo hello > later/x.txt
i=0; while [ "$("$FLOWRUN" runs --json --state st-later 2> /dev/null | jq length 2> /dev/null || echo 0)" -lt 1 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
kill -TERM $p; wait $p; rc=$?; pids=""
cat later.err >> serve.err
expect "watch --no-catchup: no run at start" 0 "${n_before:-0}"
check "watch: a folder missing at start is said once" "$(grep -c 'cannot watch yet' later.err | grep -qx 1; echo $?)"
expect "watch: the folder appearing (with a file) gives a run of that file" "count_lines later/x.txt" \
    "$(grep '^count_lines ' "$FLOW_TEST_LOG" | tr '\n' ' ' | sed 's/ $//')"

# ---- two plans in one serve: --param goes only to the flows that have that parameter ----
mkdir both; : > "$FLOW_TEST_LOG"
fake 2026-01-02T00:00:01Z 1 ""   # daily's Jan 1 is due at once
"$FLOWRUN" serve daily.plan watch.plan --param root=both --state st-both --debounce 200ms --no-catchup 2> both.err & p=$!; pids=$p
sleep 0.5; echo one > both/a.txt
i=0; while [ "$("$FLOWRUN" runs --json --state st-both 2> /dev/null | jq length 2> /dev/null || echo 0)" -lt 2 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
kill -TERM $p; wait $p; rc=$?; pids=""
unfake
cat both.err >> serve.err
expect "two plans, --param root: both flows ran (daily takes no root), exit 0" "daily:succeeded ingest:succeeded 0" \
    "$("$FLOWRUN" runs --json --state st-both | jq -r '.[] | .flow + ":" + .state' | sort | tr '\n' ' ')$rc"

# ---- changes during a run coalesce into one pending run ----
mkdir slowin
"$FLOWRUN" serve slowwatch.plan --state st-coal --debounce 200ms --no-catchup 2> coal.err & p=$!; pids=$p
sleep 0.3; echo a > slowin/a.txt
sleep 0.6                                     # the run has started (it takes a second)
for f in b c d e g; do echo $f > slowin/$f.txt; sleep 0.1; done
i=0; while [ "$("$FLOWRUN" runs --json --state st-coal 2> /dev/null | jq '[.[] | select(.state == "succeeded")] | length' 2> /dev/null || echo 0)" -lt 2 ] && [ $i -lt 80 ]; do sleep 0.1; i=$((i + 1)); done
sleep 1.5                                     # no third run comes
kill -TERM $p; wait $p; pids=""
cat coal.err >> serve.err
expect "changes during a run: one more run after it, not five" 2 "$(grep -c 'started for a change' coal.err)"
expect "changes during a run: the second run saw all six files" 6 \
    "$("$FLOWRUN" runs --json --state st-coal | jq '.[0].result | length')"
