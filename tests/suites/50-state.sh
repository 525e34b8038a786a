#!/bin/sh
# State, cache and resume, end to end (issue: nothing lost, nothing redone).
# Every task of tests/lib/statetasks.c appends "task arg" to $FLOW_TEST_LOG when it
# really runs, so each check counts executions.
ROOT=$(pwd)
T=$(mktemp -d /tmp/flow-state-XXXXXX)
trap 'chmod -R u+w "$T" 2>/dev/null; rm -rf "$T"' EXIT
cp tests/state/*.flow tests/lib/libstatetasks.so "$T/" || { echo "FAIL state: setup"; exit 0; }
cd "$T" || exit 0
for f in chain cutoff files effect big; do "$FLOWC" $f.flow 2> flowc.err || { echo "FAIL state: flowc $f"; cat flowc.err; }; done
export FLOW_TEST_LOG="$T/log"
: > "$FLOW_TEST_LOG"
ST="$T/st"
run() { "$FLOWRUN" "$@" --progress none --state "$ST" 2>> "$T/stderr"; }
count() { # executions of task $1 (with argument $2 exactly, when given)
    if [ $# -ge 2 ]; then grep -cx "$1 $2" "$FLOW_TEST_LOG"; else grep -c "^$1 " "$FLOW_TEST_LOG"; fi; }
check() { # name condition-result
    if [ "$2" = 0 ]; then echo "PASS state: $1"; else echo "FAIL state: $1"; tail -5 "$T/stderr" | sed 's/^/    /'; fi
}
expect() { # name want got
    if [ "$2" = "$3" ]; then echo "PASS state: $1"; else echo "FAIL state: $1: want '$2', got '$3'"; tail -3 "$T/stderr" | sed 's/^/    /'; fi
}

# ---- the cache hit/miss matrix ----
expect "first run computes" 550 "$(run chain.plan --param n=10)"
expect "first run ran every instance" "10 10 1" "$(count slow_inc) $(count times_ten) $(count sum)"
expect "second run: same result" 550 "$(run chain.plan --param n=10)"
expect "second run: nothing ran" "10 10 1" "$(count slow_inc) $(count times_ten) $(count sum)"
expect "--no-cache: result" 550 "$(run chain.plan --param n=10 --no-cache)"
expect "--no-cache: everything ran" "20 20 2" "$(count slow_inc) $(count times_ten) $(count sum)"
expect "wider map: result" 780 "$(run chain.plan --param n=12)"
expect "wider map: only new elements and the reduce ran" "22 22 3" "$(count slow_inc) $(count times_ten) $(count sum)"
expect "process executor shares the cache" 780 "$(run chain.plan --param n=12 --executor process)"
expect "process executor: nothing ran" "22 22 3" "$(count slow_inc) $(count times_ten) $(count sum)"

# ---- early cutoff, and cache: false (a fresh state and log) ----
ST="$T/st-cutoff"; : > "$FLOW_TEST_LOG"
expect "cutoff first run" 10 "$(run cutoff.plan --param x=3)"
expect "cutoff: x=5 gives the same parity" 10 "$(run cutoff.plan --param x=5)"
expect "cutoff: parity re-ran, times_ten did not, side_effect (cache: false) did" "2 1 2" \
    "$(count parity) $(count times_ten) $(count side_effect)"
expect "cutoff: x=4 changes parity" 0 "$(run cutoff.plan --param x=4)"
expect "cutoff: times_ten re-ran for the new parity" "3 1" "$(count parity) $(count times_ten 0)"

# ---- incremental directories ----
ST="$T/st"
mkdir -p d/sub
for i in 1 2 3 4; do printf 'line %s\nmore\n' $i > d/f$i.txt; done
printf 'a\nb\nc\n' > d/sub/g.txt
echo ignored > d/notes.md
expect "files: first run" 11 "$(run files.plan --flow lines --param root=d)"
expect "files: one instance per file" 5 "$(count count_lines)"
expect "files: no-op re-run" 11 "$(run files.plan --flow lines --param root=d)"
expect "files: no-op re-run ran nothing" 5 "$(count count_lines)"
touch d/f2.txt
expect "files: touched (same content)" 11 "$(run files.plan --flow lines --param root=d)"
expect "files: touched file not re-run (content unchanged)" 5 "$(count count_lines)"
printf 'line 3\nmore\nand more\n' > d/f3.txt
expect "files: one file changed" 12 "$(run files.plan --flow lines --param root=d)"
expect "files: only the changed file re-ran" "6 2" "$(count count_lines) $(count count_lines d/f3.txt)"
printf 'new\n' > d/f5.txt
expect "files: a file added" 13 "$(run files.plan --flow lines --param root=d)"
expect "files: only the new file ran" "7 1" "$(count count_lines) $(count count_lines d/f5.txt)"

# ---- outputs in the store; a damaged object is recomputed, never served ----
expect "store: outputs" 34 "$(run files.plan --flow heads --param root=d)"
n0=$(count first_line)
expect "store: re-run served from the cache" 34 "$(run files.plan --flow heads --param root=d)"
expect "store: nothing ran" "$n0" "$(count first_line)"
ro=$(find "$ST/store/named" -type f -name first.txt | head -1)
[ -n "$ro" ] && [ ! -w "$ro" ] || [ "$(id -u)" = 0 ] && stat -c %a "$ro" | grep -q 444
check "store: outputs are read-only, keep their name" $?
obj=$(find "$ST/store/objects" -type f -size -12c | head -1)
chmod u+w "$obj"; printf 'X' | dd of="$obj" bs=1 count=1 conv=notrunc 2>/dev/null
expect "store: a flipped byte: same result" 34 "$(run files.plan --flow heads --param root=d)"
expect "store: the damaged output was recomputed" "$((n0 + 1))" "$(count first_line)"

# ---- history, logs, clear ----
"$FLOWRUN" runs --json --state "$ST" > runs.json 2>> stderr
python3 -c "import json,sys; r=json.load(open('runs.json')); assert len(r) >= 10 and r[0]['id'] > r[-1]['id'] and r[0]['state']=='succeeded', r[0]" 2>> stderr
check "runs --json: newest first" $?
last=$(python3 -c "import json; print(json.load(open('runs.json'))[0]['id'])")
"$FLOWRUN" show "$last" --json --state "$ST" > show.json 2>> stderr
python3 -c "import json; s=json.load(open('show.json')); i=s['instances']; assert any(x['task']=='first_line' and x['cache_hit'] for x in i), i" 2>> stderr
check "show --json: instances with cache hits" $?
chain_run=$(python3 -c "import json; print([r['id'] for r in json.load(open('runs.json')) if r['flow']=='chain'][0])")
"$FLOWRUN" clear "$chain_run" "slow_inc[3]" --state "$ST" > /dev/null 2>> stderr
check "clear one instance" $?
before=$(count slow_inc 3)
expect "resume after clear: result" 780 "$("$FLOWRUN" resume "$chain_run" --progress none --state "$ST" 2>> stderr)"
expect "resume after clear: the cleared instance ran again" "$((before + 1))" "$(count slow_inc 3)"
"$FLOWRUN" show "$chain_run" --state "$ST" > /dev/null 2>> stderr
check "show (table)" $?

# ---- SIGKILL at random moments, then resume: nothing finished runs twice ----
i=0
while [ $i -lt 20 ]; do
    i=$((i + 1))
    S="$T/kill$i"; L="$T/kill$i.log"; : > "$L"
    ex=inline; [ $((i % 2)) = 0 ] && ex=process
    delay=$(python3 -c "import random; print(round(random.uniform(0.02, 0.5), 3))")
    FLOW_TEST_LOG="$L" FLOW_TEST_NAP_MS=15 "$FLOWRUN" chain.plan --param n=30 -j 2 --executor $ex \
        --progress none --state "$S" > /dev/null 2>&1 &
    pid=$!
    sleep "$delay"; kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
    sleep 0.1 # orphaned process workers notice and exit
    id=$("$FLOWRUN" runs --json --state "$S" 2>/dev/null | python3 -c "import json,sys; print(json.load(sys.stdin)[0]['id'])" 2>/dev/null)
    if [ -z "$id" ]; then echo "PASS state: kill $i at ${delay}s ($ex): killed before the run was recorded"; continue; fi
    "$FLOWRUN" show "$id" --json --state "$S" 2>/dev/null > done$i.json
    got=$(FLOW_TEST_LOG="$L" "$FLOWRUN" resume "$id" --progress none --state "$S" 2>> stderr)
    bad=$(python3 - "$L" done$i.json <<'PY'
import json, sys
log = [l.split() for l in open(sys.argv[1])]
done = json.load(open(sys.argv[2]))["instances"]
finished = [(d["task"], d["index"]) for d in done if d["state"] in ("succeeded", "cached")]
runs = {}
for l in log:
    runs[(l[0], l[1] if len(l) > 1 else None)] = runs.get((l[0], l[1] if len(l) > 1 else None), 0) + 1
bad = []
for task, idx in finished:
    arg = None
    if task == "slow_inc": arg = idx
    elif task == "sum": arg = None
    else: continue
    if runs.get((task, arg), 0) > 1: bad.append(f"{task}[{idx}] ran {runs[(task, arg)]} times")
print("; ".join(bad))
PY
)
    if [ "$got" = 4650 ] && [ -z "$bad" ]; then echo "PASS state: kill $i at ${delay}s ($ex), resume"
    else echo "FAIL state: kill $i at ${delay}s ($ex): result '$got' ${bad}"; tail -3 stderr | sed 's/^/    /'; fi
done

# ---- durable before an effect: SIGKILL as soon as an effect (cache: false) starts ----
# Results are committed grouped by time, but those an effect reads are committed before
# it starts (recorder.h): killed the moment effect_wait begins, state.db must hold every
# slow_inc and the sum it read.
for i in 1 2 3 4; do
    S="$T/effect$i"; M="$T/effect$i.mark"; ex=inline; [ $((i % 2)) = 0 ] && ex=process
    FLOW_TEST_MARK="$M" FLOW_TEST_LOG="$T/effect$i.log" "$FLOWRUN" effect.plan --param n=20 -j 2 \
        --executor $ex --progress none --state "$S" > /dev/null 2>&1 &
    pid=$!
    k=0; while [ ! -e "$M" ] && [ $k -lt 2000 ]; do sleep 0.005; k=$((k + 1)); done
    kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
    sleep 0.1 # orphaned process workers notice and exit
    got=$("$FLOWRUN" show last --json --state "$S" 2>> stderr | python3 -c "
import json, sys
i = json.load(sys.stdin)['instances']
ok = lambda t: sum(1 for x in i if x['task'] == t and x['state'] == 'succeeded')
print(ok('slow_inc'), ok('sum'))" 2>> stderr)
    expect "effect $i ($ex): killed as the effect started, its producers are in state.db" \
        "yes 20 1" "$([ -e "$M" ] && echo yes || echo no) $got"
done

# ---- two flowruns sharing one state directory ----
FLOW_TEST_NAP_MS=5 run chain.plan --param n=20 --executor inline > c1.out &
p1=$!
FLOW_TEST_NAP_MS=5 run chain.plan --param n=21 --executor process > c2.out &
p2=$!
wait $p1; r1=$?; wait $p2; r2=$?
expect "concurrent runs" "0 0 2100 2310" "$r1 $r2 $(cat c1.out) $(cat c2.out)"

# ---- a wide mapping served from the cache: its entries are read in one pass ----
ST="$T/st-wide"; : > "$FLOW_TEST_LOG"
expect "wide: first run" 180030000 "$(run chain.plan --param n=6000)"
expect "wide: a wider run" 245035000 \
    "$("$FLOWRUN" chain.plan --param n=7000 --progress plain --state "$ST" 2> wide.err)"
expect "wide: only the 1,000 new elements ran" "7000 7000 2" "$(count slow_inc) $(count times_ten) $(count sum)"
grep -q "run [0-9]*: 12000 of 14001 instances served from the cache" wide.err
check "wide: 12,000 served" $?
# an entry whose result cannot be read is never served: that one instance runs again
python3 "$ROOT/tests/harness/cachepacks.py" empty "$ST/state.db" 500 2>> "$T/stderr"
expect "wide: a damaged entry: same result" 245035000 "$(run chain.plan --param n=7000)"
expect "wide: the damaged entry's instance ran again" 14003 "$(($(count slow_inc) + $(count times_ten) + $(count sum)))"

# a packed row cut short or overwritten is reported, never read past its end
cp -r "$ST" "$T/st-damaged"
python3 -c "
import sqlite3; c = sqlite3.connect('$T/st-damaged/state.db')
ids = [r[0] for r in c.execute('SELECT id FROM instances WHERE packed IS NOT NULL AND run = (SELECT max(id) FROM runs) ORDER BY id')]
c.execute('UPDATE instances SET packed = substr(packed, 1, 150) WHERE id = ?', (ids[0],))
c.execute('UPDATE instances SET packed = randomblob(300) WHERE id = ?', (ids[1],))
c.commit()" 2>> "$T/stderr"
"$FLOWRUN" show last --json --state "$T/st-damaged" > damaged.json 2> damaged.err; code=$?
expect "packed rows: damaged rows, show lists the rest and exits 2 (damage is never exit 0)" 2 "$code"
grep -q "packed instance row of run .* is damaged" damaged.err
check "packed rows: the damage is reported" $?
python3 -c "import json; json.load(open('damaged.json'))" 2>> "$T/stderr"
check "packed rows: show --json is still JSON" $?

# ---- a state.db of schema 1 is migrated, its cache kept ----
ST="$T/st-v1"; : > "$FLOW_TEST_LOG"
expect "schema 1: a run to take the cache from" 550 "$(run chain.plan --param n=10)"
mkdir -p v1 && python3 - "$ST/state.db" v1/state.db "$ROOT/tests/state/schema1.sql" "$ROOT/tests/harness/cachepacks.py" <<'PY' 2>> "$T/stderr"
import sqlite3, sys
src, dst, ddl = sqlite3.connect(sys.argv[1]), sqlite3.connect(sys.argv[2]), open(sys.argv[3]).read()
dst.executescript(ddl)
dst.execute("INSERT INTO runs(flow, env, params, state, started) VALUES('chain', 'prod', '{}', 'succeeded', 0)")
def tag(name): # the task's 16 bits of ck, as runtime/recorder/state.c computes them
    h = 1469598103934665603
    for b in name.encode(): h = ((h ^ b) * 1099511628211) % 2**64
    return (h ^ (h >> 16) ^ (h >> 32) ^ (h >> 48)) & 0xffff
tags = {tag(t): t for t in ("slow_inc", "times_ten", "sum")}
n = 0
import subprocess # the current cache, read through the one reader of its packs
dump = subprocess.run([sys.executable, sys.argv[4], "dump", sys.argv[1]], capture_output=True, text=True, check=True).stdout
for line in dump.split("\n")[:-1]:
    t, key, result = line.split()
    key, result = bytes.fromhex(key), None if result == "-" else bytes.fromhex(result)
    task = tags[int(t)]
    dst.execute("INSERT INTO instances(run, node, idx, task, state, attempts, cache_key, cache_hit,"
                " result, ck) VALUES(1, 0, ?, ?, 'succeeded', 1, ?, 0, ?, ?)", (str(n), task, key, result, n))
    n += 1
dst.commit()
assert n == 21, n
PY
check "schema 1: a database made" $?
ST="$T/v1"
expect "schema 1: migrated, same result" 550 "$(run chain.plan --param n=10)"
expect "schema 1: every instance served from the migrated cache" "10 10 1" "$(count slow_inc) $(count times_ten) $(count sum)"
expect "schema 1: now the current version" "$(sed -n 's/^#define STATE_SCHEMA_VERSION \([0-9]*\).*/\1/p' "$ROOT/runtime/recorder/state.h")" "$(python3 -c "import sqlite3; print(sqlite3.connect('$ST/state.db').execute('PRAGMA user_version').fetchone()[0])")"

# ---- resume keeps the options that decided the run's outcome ----
ST="$T/st-opts"
run chain.plan --param n=10 --max-map 5 > /dev/null; code=$?
expect "options: --max-map 5 fails a 10-wide map" 1 "$code"
"$FLOWRUN" resume last --progress none --state "$ST" > /dev/null 2> opts.err; code=$?
expect "options: resume keeps --max-map 5" 1 "$code"
grep -q "more than max_map 5" opts.err
check "options: resume says max_map 5" $?
expect "options: resume --max-map 20 overrides it" 550 \
    "$("$FLOWRUN" resume last --max-map 20 --progress none --state "$ST" 2>> "$T/stderr")"

# ---- a state.db from a newer flowrun ----
mkdir -p newer && "$FLOWRUN" runs --state newer > /dev/null 2>&1
python3 -c "
import sqlite3; c = sqlite3.connect('newer/state.db')
c.execute('PRAGMA user_version=99'); c.execute(\"UPDATE meta SET value=99 WHERE key='oldest_reader'\"); c.commit()"
"$FLOWRUN" runs --state newer > /dev/null 2> newer.err; code=$?
expect "newer schema: exit 2" 2 "$code"
grep -q "schema version 99 is newer than this flowrun reads" newer.err
check "newer schema: clear message" $?

# ---- large values: a result of 4 MiB or more is a store object (docs/state.md) ----
ST="$T/st-big"; : > "$FLOW_TEST_LOG"
bigrun() { "$FLOWRUN" big.plan --progress none --state "$ST" "$@" 2>> "$T/stderr"; }
want=$(python3 -c 'import hashlib; print(hashlib.sha256(b"\"" + b"x" * 5000000 + b"\"\n").hexdigest())')
expect "large value: the run's result" "$want" "$(bigrun --flow main | sha256sum | cut -c1-64)"
objs() { find "$ST/store/objects" -type f -size +4M 2> /dev/null | wc -l; }
expect "large value: one store object holds it" 1 "$(objs)"
expect "large value: served from the cache, read back" "$want 1" \
    "$(bigrun --flow main | sha256sum | cut -c1-64) $(count big)"
"$FLOWRUN" gc --keep-runs 0 --state "$ST" > /dev/null 2>> "$T/stderr"
expect "large value: gc keeps it for the cache" "1 $want 1" \
    "$(objs) $(bigrun --flow main | sha256sum | cut -c1-64) $(count big)"
find "$ST/store/objects" -type f -size +4M -exec rm -f {} +
expect "large value: its object gone, it runs again" "$want 2" \
    "$(bigrun --flow main | sha256sum | cut -c1-64) $(count big)"
touch stop
bigrun --flow resumed --no-cache > /dev/null; code=$?
rm -f stop
expect "large value: resume serves it from the run's record" "1 5000000 3 1" \
    "$code $("$FLOWRUN" resume last --progress none --state "$ST" 2>> "$T/stderr") $(count big) $(count text_len)"
# a record whose encoding begins as a reference does is a (24-byte) store object
mk='{"a":8515593790871237118,"b":7020600796973984865,"c":795108717}'
expect "a value that looks like a reference: its result" "$mk" "$(bigrun --flow mark)"
expect "... served from the cache as itself" "$mk 1 1" \
    "$(bigrun --flow mark) $(count marked) $(find "$ST/store/objects" -type f -size 24c | wc -l)"
