#!/bin/sh
# History, cache and store per environment (issue 15, point 3; docs/state.md,
# "Environments in the state directory"), end to end with one state directory:
#   - a test run is served prod's cache entries; a later prod run is not served the
#     entries a test run wrote (it computes, and then they are prod's); a third
#     environment is served neither test's; --dry-run predicts the same;
#   - runs/show/logs/clear filter or refuse by --env; runs shows the env column and
#     runs --json an "env" for every run;
#   - clear and resume of a run of another environment are refused, one line, exit 2;
#     resume without --env resumes in the run's environment, and takes --unprotected;
#     a test run's clear + resume recomputes what it cleared and drops none of prod's
#     entries;
#   - gc --env test --keep-runs 0 forgets test's runs only: prod's outputs stay and
#     prod is still served its cache;
#   - a schema-6 state.db is migrated: its entries are prod's.
# (--unprotected below: these environments have no roots, so it changes nothing;
# 57-isolate tests what it skips.)
ROOT=$(pwd)
T=$(mktemp -d /tmp/flow-envstate-XXXXXX)
trap 'chmod -R u+w "$T" 2>/dev/null; rm -rf "$T"' EXIT
cp tests/state/gc.flow tests/lib/libstatetasks.so "$T/" || { echo "FAIL envstate: setup"; exit 0; }
cd "$T" || exit 0
"$FLOWC" gc.flow 2> flowc.err || { echo "FAIL envstate: flowc gc.flow"; cat flowc.err; exit 0; }
export FLOW_TEST_LOG="$T/log"
: > "$FLOW_TEST_LOG"
ST="$T/st"
# the environments (no roots: the state directory's rules are what this suite tests;
# 57-isolate tests the roots)
printf 'envs:\n  test: {}\n  staging: {}\n  newenv: {}\n' > flow.yaml
E="$T/stderr"
run() { "$FLOWRUN" gc.plan "$@" --progress none --state "$ST" 2>> "$E"; }
trun() { run "$@" --env test --unprotected; }
fr() { "$FLOWRUN" "$@" --state "$ST"; }
pass() { echo "PASS envstate: $1"; }
fail() { echo "FAIL envstate: $1: $2"; tail -3 "$E" | sed 's/^/    /'; }
expect() { # name want got
    if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "want '$2', got '$3'"; fi
}
computed() { wc -l < "$FLOW_TEST_LOG" | tr -d ' '; } # first_line calls so far
# refused NAME WANT-LINE CMD...: exit 2 and exactly one line on stderr, WANT-LINE
refused() {
    name=$1 want=$2; shift 2
    "$@" > out.txt 2> err.txt; code=$?
    if [ "$code" = 2 ] && [ "$(wc -l < err.txt)" = 1 ] && [ "$(cat err.txt)" = "$want" ] &&
        [ ! -s out.txt ]; then
        pass "$name"
    else
        fail "$name" "exit $code, stderr '$(cat err.txt)'"
    fi
}
for i in 1 2 3 4 5; do printf 'content %s\nsecond line\n' $i > in$i.txt; done

# ---- the cache across environments ----
p1=$(run --flow plain --param f=in1.txt)                        # prod computes in1
expect "prod computes" 1 "$(computed)"
t1=$(trun --flow plain --param f=in1.txt)
expect "a test run is served prod's entry" "1 $p1" "$(computed) $t1"
t2=$(trun --flow plain --param f=in2.txt)                       # test computes in2
expect "a test run computes what prod has not" 2 "$(computed)"
t2b=$(trun --flow plain --param f=in2.txt)
expect "a test run is served its own entry" "2 $t2" "$(computed) $t2b"
s2=$(run --flow plain --param f=in2.txt --env staging --unprotected)
expect "a third environment is not served test's entry" 3 "$(computed)"
# dry runs predict it: prod would run in2 (test's and staging's are not prod's)
fr run gc.plan --flow plain --param f=in2.txt --dry-run > dry.txt 2>> "$E"
if grep -q "no entry this environment may use (environment staging has one, from run" dry.txt &&
    grep -q "1 would run" dry.txt; then
    pass "--dry-run in prod: would run, an entry another environment wrote is named"
else
    fail "--dry-run in prod: would run, an entry another environment wrote is named" "$(cat dry.txt)"
fi
fr run gc.plan --flow plain --param f=in2.txt --dry-run --json --env test --unprotected \
    > dryt.json 2>> "$E"
expect "--dry-run in test: cached (its own entry)" "0 1" \
    "$(jq -r '"\(.runs) \(.cached)"' dryt.json 2>&1)"
fr run gc.plan --flow plain --param f=in1.txt --dry-run --json --env newenv --unprotected \
    > dryn.json 2>> "$E"
expect "--dry-run in a new environment: prod's entry is used" "0 1" \
    "$(jq -r '"\(.runs) \(.cached)"' dryn.json 2>&1)"
p2=$(run --flow plain --param f=in2.txt)
expect "a later prod run is not served the test run's entry" 4 "$(computed)"
expect "its output is the same file (content-addressed)" "$t2" "$p2"
p2b=$(run --flow plain --param f=in2.txt)
expect "the entry prod computed is prod's: served next time" "4 $p2" "$(computed) $p2b"

# ---- history by environment ----
ids() { fr runs --json "$@" 2>> "$E" | jq -r '[.[].id] | reverse | map(tostring) | join(" ")'; }
expect "runs --env test lists test's runs only" "2 3 4" "$(ids --env test)"
expect "runs --env prod lists prod's runs only" "1 6 7" "$(ids --env prod)"
expect "runs lists every environment" "1 2 3 4 5 6 7" "$(ids)"
expect "runs --json: every run has its env" "prod test test test staging prod prod" \
    "$(fr runs --json | jq -r '[.[].env] | reverse | join(" ")')"
fr runs > runs.txt 2>> "$E"
if head -1 runs.txt | grep -q " ENV " && grep -q "^5 .* staging " runs.txt &&
    grep -q "^2 .* test " runs.txt; then
    pass "runs: the ENV column"
else
    fail "runs: the ENV column" "$(head -3 runs.txt)"
fi
fr runs --env nowhere > none.txt 2> none.err; code=$?
expect "runs --env with no runs: exit 0, nothing listed, one line" "0 0 1" \
    "$code $(wc -l < none.txt | tr -d ' ') $(wc -l < none.err | tr -d ' ')"
refused "show of a prod run from --env test" "flowrun show: run 1 belongs to environment prod, not test" \
    fr show 1 --env test
fr show 2 --env test > show.txt 2>> "$E"
expect "show of a test run with --env test" 0 $?
refused "logs of a prod run from --env test" "flowrun logs: run 1 belongs to environment prod, not test" \
    fr logs 1 head --env test
refused "show last --env with no such run" "flowrun show: no runs of environment nowhere recorded yet" \
    fr show last --env nowhere
expect "show last --env test is test's newest run" "run 4:" "$(fr show last --env test | head -1 | cut -d' ' -f1,2)"
refused "--env with no name" "flowrun runs: --env needs an environment's name" fr runs --env ""

# ---- clear and resume across environments ----
refused "clear of a prod run from --env test" "flowrun clear: run 1 belongs to environment prod, not test" \
    fr clear 1 head --env test
expect "... and the prod run is unchanged" "succeeded" \
    "$(fr show 1 --json | jq -r '.instances[0].state')"
fr clear 2 head --env test > /dev/null 2>> "$E"
expect "clear of a test run with --env test" 0 $?
refused "resume of a prod run from --env test" "flowrun resume: run 1 belongs to environment prod, not test" \
    fr resume 1 --env test --unprotected --progress none
f=$(trun --flow shpath --param f=in3.txt --param code=1); code=$?
fid=$(fr runs --json --env test | jq -r '.[0].id')
expect "a failed test run" "1 failed" "$code $(fr runs --json | jq -r ".[] | select(.id == $fid) | .state")"
fr resume "$fid" --progress none > res.out 2> res.err; code=$?
expect "resume of a test run goes on in its own environment (its task fails again)" "1 test" \
    "$code $(fr runs --json | jq -r ".[] | select(.id == $fid) | .env")"
fr resume "$fid" --unprotected --progress none > res.out 2> res.err; code=$?
expect "resume --unprotected goes on, in the run's own environment" "1 test" \
    "$code $(fr runs --json | jq -r ".[] | select(.id == $fid) | .env")"
fr resume "$fid" --env test --unprotected --progress none > res.out 2> res.err; code=$?
expect "resume --env of the run's own environment goes on" 1 "$code"

# ---- resume in the run's environment: served what it may use, drops only its own ----
cp "$ROOT/tests/state/chain.flow" . && "$FLOWC" chain.flow 2>> "$E"
C="$T/chain-st"
crun() { "$FLOWRUN" chain.plan --progress none --state "$C" "$@" 2>> "$E"; }
slow() { grep -c "^slow_inc " "$FLOW_TEST_LOG"; } # slow_inc computations so far
crun --param n=4 > /dev/null                                    # prod: slow_inc 0..3
s0=$(slow)
expect "chain in test: served prod's four, computes two" "210 2" \
    "$(crun --param n=6 --env test --unprotected) $(($(slow) - s0))"
trid=$("$FLOWRUN" runs --json --state "$C" | jq -r '.[0].id')
"$FLOWRUN" clear "$trid" "a[1]" --env test --state "$C" > /dev/null 2>> "$E"
"$FLOWRUN" clear "$trid" "a[4]" --env test --state "$C" > /dev/null 2>> "$E"
s0=$(slow)
expect "resume of the test run: the two cleared run again, in test" "210 2 test" \
    "$("$FLOWRUN" resume "$trid" --unprotected --progress none --state "$C" 2>> "$E") \
$(($(slow) - s0)) $("$FLOWRUN" runs --json --state "$C" | jq -r ".[] | select(.id == $trid) | .env")"
s0=$(slow)
expect "... its clear dropped none of prod's entries: prod is served all four" "100 0" \
    "$(crun --param n=4) $(($(slow) - s0))"
expect "... and test is served the entry its resume wrote (a[4])" "210 0" \
    "$(crun --param n=6 --env test --unprotected) $(($(slow) - s0))"

# ---- gc per environment ----
t5=$(trun --flow plain --param f=in5.txt)                       # test's only
n=$(computed)
fr gc --env test --keep-runs 0 > gc.out 2>> "$E"; code=$?
expect "gc --env test --keep-runs 0: exit 0" 0 "$code"
# (kept: the failed run resume would finish, and the newest success of each flow)
expect "... forgets test's runs only" "$fid $((fid + 1))" "$(ids --env test)"
expect "... keeps every other environment's runs" "1 6 7 5" "$(ids --env prod) $(ids --env staging)"
expect "... prod's outputs stay" "CONTENT 1|CONTENT 2" \
    "$(head -1 "$(echo "$p1" | tr -d '"')" 2>&1)|$(head -1 "$(echo "$p2" | tr -d '"')" 2>&1)"
p1b=$(run --flow plain --param f=in1.txt)
expect "... prod is still served its cache" "$n $p1" "$(computed) $p1b"
expect "... test's cache entries stay (gc drops no entry): served" "$n $t5" \
    "$(trun --flow plain --param f=in5.txt >/dev/null; computed) $t5"
fr gc --keep-runs 0 --env prod --dry-run > gcd.out 2>> "$E"
if grep -q "^would forget run 1 (flow plain, env prod" gcd.out && ! grep -q "env test\|env staging" gcd.out; then
    pass "gc --env prod --dry-run names prod's runs only"
else
    fail "gc --env prod --dry-run names prod's runs only" "$(cat gcd.out)"
fi

# ---- a schema-6 state.db: its cache is prod's ----
M="$T/mig"
"$FLOWRUN" gc.plan --flow plain --param f=in4.txt --progress none --state "$M" > m1.out 2>> "$E"
python3 - "$M/state.db" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.executescript("DROP TABLE task_cpu; ALTER TABLE files DROP COLUMN prev_size; ALTER TABLE files DROP COLUMN prev_mtime_ns; ALTER TABLE files DROP COLUMN prev_hash; DROP TABLE remote_batches; DROP TABLE envs; PRAGMA user_version=6; UPDATE meta SET value=5 WHERE key='oldest_reader';")
c.commit()
PY
n=$(computed)
mt=$("$FLOWRUN" gc.plan --flow plain --param f=in4.txt --progress none --state "$M" --env test \
     --unprotected 2>> "$E")
expect "migrated schema 6 -> 7: a test run is served the old entry" "$n $(cat m1.out)" "$(computed) $mt"
mp=$("$FLOWRUN" gc.plan --flow plain --param f=in4.txt --progress none --state "$M" 2>> "$E")
expect "migrated: prod is served the old entry (it is prod's)" "$n $(cat m1.out)" "$(computed) $mp"
expect "migrated: this flowrun's schema, oldest reader 7, prod is environment 0" "$(sed -n 's/^#define STATE_SCHEMA_VERSION \([0-9]*\).*/\1/p' "$ROOT/runtime/recorder/state.h")|7|0|prod" "$(python3 - "$M/state.db" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
v = c.execute("PRAGMA user_version").fetchone()[0]
o = c.execute("SELECT value FROM meta WHERE key='oldest_reader'").fetchone()[0]
e = c.execute("SELECT id, name FROM envs ORDER BY id").fetchone()
print(f"{v}|{o}|{e[0]}|{e[1]}")
PY
)"
