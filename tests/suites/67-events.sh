#!/bin/sh
# flowrun --events FILE (issue 17, point 4; docs/observability.md, "Events"), end to
# end: every line a run writes is an OpenLineage RunEvent that the schema in
# tests/events accepts (tests/events/check.py validates each line and the story the
# lines tell: flow runs open before and close after their instances, each instance
# run starts once and ends once under its flow run's runId);
#   - inputs are named by absolute path with their content key, outputs in the store
#     with their sha256; a changed input shows a new key; a re-run is served from the
#     cache and says so;
#   - a failing task gives a FAIL for the instance with its error and for the run;
#   - a flowrun killed mid-run and resumed appends RUNNING under the same runId, and
#     the story still checks;
#   - an events file that cannot be opened is refused before the run (exit 2, one
#     line, nothing recorded); one that cannot be written fails the run (exit 1);
#     --dry-run --events is refused; a damaged line is caught by the checker;
#   - flowrun serve --events: the runs serve starts (three days on a fake clock) each
#     write their story to the one file; an unopenable file is refused at start.
ROOT=$(pwd)
T=$(mktemp -d /tmp/flow-events-XXXXXX)
trap 'touch "$T"/*.go 2>/dev/null; rm -rf "$T"' EXIT
CHECK="$ROOT/tests/events/check.py"
python3 -c 'import jsonschema' 2>/dev/null ||
    { echo "SKIP events: python3-jsonschema is not installed (skipped: .ci/deps.sh installs it)"; exit 0; }
cp tests/events/events.flow tests/lib/libstatetasks.so "$T/" || { echo "FAIL events: setup"; exit 0; }
cd "$T" || exit 0
"$FLOWC" events.flow 2> flowc.err || { echo "FAIL events: flowc events.flow"; cat flowc.err; exit 0; }
export FLOW_TEST_LOG="$T/log"
ST="$T/st"
E="$T/stderr"
printf 'hello world\nmore\n' > a.txt
printf 'second file\nmore\n' > b.txt
run() { "$FLOWRUN" events.plan "$@" --progress none --state "$ST" 2>> "$E"; }
pass() { echo "PASS events: $1"; }
fail() { echo "FAIL events: $1: $2"; tail -3 "$E" | sed 's/^/    /'; }
expect() { # name want got
    if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "want '$2', got '$3'"; fi
}
check() { python3 "$CHECK" "$1" 2>&1; }
# field FILE N EXPR: a Python expression over line N (1-based; -1 the last) as `e`
field() {
    python3 -c 'import json,sys
lines = open(sys.argv[1]).read().splitlines()
e = json.loads(lines[int(sys.argv[2]) - 1 if int(sys.argv[2]) > 0 else int(sys.argv[2])])
print(eval(sys.argv[3]))' "$@" 2>&1
}

# ---- a fan-out: 2 heads, 2 shouts, 2 lengths, one total ----
got=$(run --flow story --param a=a.txt --param b=b.txt --events ev1.jsonl)
expect "story: the result is unchanged by --events" 24 "$got"
expect "story: the events check" \
    "runs=1 instances=7 failed=0 cached=0 outputs-hashed=4 inputs-hashed=6" "$(check ev1.jsonl)"
expect "story: one line per run start and end, two per instance" 16 "$(wc -l < ev1.jsonl | tr -d ' ')"
expect "story: the run starts" "START story" "$(field ev1.jsonl 1 'e["eventType"], e["job"]["name"]' | tr -d "(),'")"
expect "story: the run completes" "COMPLETE story" \
    "$(field ev1.jsonl -1 'e["eventType"], e["job"]["name"]' | tr -d "(),'")"
grep -q "\"name\":\"$T/a.txt\"" ev1.jsonl && pass "story: an input is named by its absolute path" ||
    fail "story: input path" "no input named $T/a.txt"
key1=$(grep -o "\"name\":\"$T/a.txt\",\"facets\":{\"flow_content\":{[^}]*\"hash\":\"[0-9a-f]*\"" ev1.jsonl |
    head -1 | sed 's/.*"hash":"//; s/"$//')
out=$(field ev1.jsonl 3 'e["outputs"][0]["name"]')
sum=$(field ev1.jsonl 3 'e["outputs"][0]["facets"]["flow_content"]["hash"]')
case "$out" in
"$ST"/store/*) [ "$(sha256sum < "$out" | cut -c1-64)" = "$sum" ] &&
    pass "story: an output is named in the store with its sha256" ||
    fail "story: output sha256" "$sum is not the sha256 of $out" ;;
*) fail "story: output" "line 3's output is '$out'" ;;
esac

# ---- a re-run is served; a changed input shows a new key ----
got=$(run --flow story --param a=a.txt --param b=b.txt --events ev2.jsonl)
expect "re-run: the events check says every instance was served" \
    "runs=1 instances=7 failed=0 cached=7 outputs-hashed=4 inputs-hashed=6" "$(check ev2.jsonl)"
printf 'hello changed world\nmore\n' > a.txt
got=$(run --flow story --param a=a.txt --param b=b.txt --events ev3.jsonl)
key3=$(grep -o "\"name\":\"$T/a.txt\",\"facets\":{\"flow_content\":{[^}]*\"hash\":\"[0-9a-f]*\"" ev3.jsonl |
    head -1 | sed 's/.*"hash":"//; s/"$//')
if [ -n "$key1" ] && [ -n "$key3" ] && [ "$key1" != "$key3" ]; then pass "changed input: a new content key"
else fail "changed input" "keys '$key1' and '$key3'"; fi
expect "changed input: only what depends on a.txt ran" \
    "runs=1 instances=7 failed=0 cached=3 outputs-hashed=4 inputs-hashed=6" "$(check ev3.jsonl)"
r1=$(field ev1.jsonl 1 'e["run"]["runId"]'); r3=$(field ev3.jsonl 1 'e["run"]["runId"]')
[ "$r1" != "$r3" ] && pass "each run has its own runId" || fail "runIds" "both $r1"

# ---- a failing task ----
run --flow bad --param a=b.txt --events bad.jsonl > /dev/null; code=$?
expect "failing task: flowrun's exit" 1 "$code"
expect "failing task: the events check" \
    "runs=1 instances=1 failed=1 cached=0 outputs-hashed=0 inputs-hashed=1" "$(check bad.jsonl)"
expect "failing task: the run fails" FAIL "$(field bad.jsonl -1 'e["eventType"]')"
field bad.jsonl 3 'e["run"]["facets"]["errorMessage"]["message"]' | grep -q "status 3" &&
    pass "failing task: the instance's FAIL carries its error" ||
    fail "failing task: error facet" "$(sed -n 3p bad.jsonl | cut -c1-300)"

# ---- killed and resumed: RUNNING under the same runId ----
"$FLOWRUN" events.plan --flow wait --param a=b.txt --progress none --state "$ST" \
    --events kill.jsonl > /dev/null 2>> "$E" &
pid=$!
i=0; while [ ! -e b.txt.started ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
expect "resume: the run's START is in the file while it runs" START \
    "$(field kill.jsonl 1 'e["eventType"]')"
kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
touch b.txt.go
got=$("$FLOWRUN" resume last --progress none --state "$ST" --events kill.jsonl 2>> "$E")
expect "resume: the result (b.txt's length)" 17 "$got"
expect "resume: the events check" \
    "runs=1 instances=3 failed=0 cached=0 outputs-hashed=2 inputs-hashed=3" "$(check kill.jsonl)"
kinds=$(python3 -c 'import json,sys
print(" ".join(json.loads(l)["eventType"] for l in open(sys.argv[1]) if "parent" not in json.loads(l)["run"]["facets"]))' kill.jsonl)
expect "resume: the flow run's events" "START RUNNING COMPLETE" "$kinds"
expect "resume: one runId for the flow run" 1 \
    "$(grep -v '"parent"' kill.jsonl | grep -o '"runId":"[^"]*"' | sort -u | wc -l | tr -d ' ')"

# ---- many instances: lines go out in many writes, each whole ----
got=$(run --flow many --param n=3000 --max-map 3000 --events many.jsonl)
expect "many: the result" 44985000 "$got"
expect "many: the events check" \
    "runs=1 instances=3001 failed=0 cached=0 outputs-hashed=0 inputs-hashed=0" "$(check many.jsonl)"

# ---- backfill: each interval's run appends its own ----
mkdir words && echo hi > words/a
if "$FLOWC" "$ROOT/examples/daily/daily.flow" -o daily.plan 2>> "$E"; then
    "$FLOWRUN" backfill daily.plan --from 2026-01-01 --to 2026-01-03 --param root=words \
        --state "$ST" --progress none --unprotected --events bf.jsonl > /dev/null 2>> "$E"
    expect "backfill: three runs in one file" \
        "runs=3 instances=12 failed=0 cached=0 outputs-hashed=3 inputs-hashed=6" "$(check bf.jsonl)"
else fail "backfill" "flowc daily.flow"; fi

# ---- refusals and failures of the file itself ----
runs_before=$("$FLOWRUN" runs --state "$ST" 2>/dev/null | wc -l)
"$FLOWRUN" events.plan --flow story --param a=a.txt --param b=b.txt --progress none --state "$ST" \
    --events "$T/no/such/dir/ev.jsonl" > out.txt 2> err.txt; code=$?
if [ "$code" = 2 ] && [ "$(wc -l < err.txt)" = 1 ] && grep -q "cannot open the events file" err.txt &&
    [ ! -s out.txt ]; then pass "unopenable file: refused, exit 2, one line"
else fail "unopenable file" "exit $code, stderr '$(cat err.txt)'"; fi
expect "unopenable file: no run recorded" "$runs_before" "$("$FLOWRUN" runs --state "$ST" 2>/dev/null | wc -l)"
"$FLOWRUN" events.plan --flow story --param a=a.txt --param b=b.txt --progress none --state "$ST" \
    --dry-run --events ev.jsonl > out.txt 2> err.txt; code=$?
if [ "$code" = 2 ] && [ "$(wc -l < err.txt)" = 1 ] && grep -q -- "--events" err.txt && [ ! -e ev.jsonl ]
then pass "--dry-run --events: refused"
else fail "--dry-run --events" "exit $code, stderr '$(cat err.txt)'"; fi
if [ -w /dev/full ]; then
    "$FLOWRUN" events.plan --flow story --param a=a.txt --param b=b.txt --progress none \
        --state "$ST" --events /dev/full > out.txt 2> err.txt; code=$?
    if [ "$code" = 1 ] && grep -q "events file.*No space left" err.txt; then pass "full disk: exit 1, said"
    else fail "full disk" "exit $code, stderr '$(cat err.txt)'"; fi
else echo "SKIP events: full disk (skipped: /dev/full is not writable here)"; fi

# ---- flowrun serve --events: every run it starts writes there ----
cp "$ROOT/tests/serve/daily.flow" . && "$FLOWC" daily.flow 2>> "$E" || fail "serve: flowc daily.flow" "see stderr"
# three days on a fake clock (36-serve's): serve ends once 2026-01-04 is handled
FLOW_FAKE_NOW=2026-01-01T00:00:00Z FLOW_FAKE_SPEED=432000 FLOW_FAKE_UNTIL=2026-01-04T00:00:00Z \
    timeout 60 "$FLOWRUN" serve daily.plan --state "$T/st-serve" --events sv.jsonl > /dev/null 2>> "$E"
code=$?
expect "serve --events: serve ends (exit 0)" 0 "$code"
expect "serve --events: the events check, three runs of one instance each" \
    "runs=3 instances=3 failed=0 cached=0" "$(check sv.jsonl | cut -d' ' -f1-4)"
expect "serve --events: the runs are the three days" "daily daily daily" \
    "$(python3 -c 'import json,sys
print(" ".join(e["job"]["name"] for e in map(json.loads, open(sys.argv[1])) if e["eventType"] == "COMPLETE" and "." not in e["job"]["name"]))' sv.jsonl 2>&1)"
"$FLOWRUN" serve daily.plan --state "$T/st-serve" --events "$T/no/such/dir/ev.jsonl" > out.txt 2> err.txt
code=$?
if [ "$code" = 2 ] && [ "$(wc -l < err.txt)" = 1 ] && grep -q "cannot open the events file" err.txt
then pass "serve --events: a file that cannot be opened is refused at start (exit 2, one line)"
else fail "serve --events unopenable" "exit $code, stderr '$(cat err.txt)'"; fi

# ---- the checker can fail ----
sed '5s/"eventType":"[A-Z]*"/"eventType":"FINISHED"/' ev1.jsonl > damaged.jsonl
python3 "$CHECK" damaged.jsonl > out.txt 2>&1; code=$?
[ "$code" = 1 ] && grep -q "line 5" out.txt && pass "checker: a damaged line is caught" ||
    fail "checker" "exit $code: $(head -2 out.txt)"
sed '2d' ev1.jsonl > nostart.jsonl
python3 "$CHECK" nostart.jsonl > out.txt 2>&1; code=$?
[ "$code" = 1 ] && grep -q "without its START" out.txt && pass "checker: an instance that never started is caught" ||
    fail "checker: no START" "exit $code: $(head -2 out.txt)"
exit 0
