#!/bin/sh
# flowrun run --dry-run [--json] [--exact] (issue 14, deliverable 3; docs/dryrun.md):
# what the dry run says matches what the following real run then does (instances run,
# instances cached) for a cold cache, a warm one and one changed file of a folder; the
# reasons (no entry, the code changed: version, library or sh command, input `x`
# changed, file metadata changed, a new file, cache: false); "depends on" rows (through
# groups and an all_done reduce); "would fail" (max_map); and nothing is written: the
# state directory's files and `flowrun runs --json` are the same before and after.
# Every task of tests/lib/statetasks.c appends "task arg" to $FLOW_TEST_LOG when it
# really runs, so the real run's executions are counted.
ROOT=$(pwd)
T=$(mktemp -d /tmp/flow-dryrun-XXXXXX)
trap 'chmod -R u+w "$T" 2>/dev/null; rm -rf "$T"' EXIT
cp tests/state/chain.flow tests/state/files.flow tests/state/cutoff.flow tests/lib/libstatetasks.so \
    "$T/" || { echo "FAIL dryrun: setup"; exit 0; }
cd "$T" || exit 0
for f in chain files cutoff; do "$FLOWC" $f.flow 2> flowc.err || { echo "FAIL dryrun: flowc $f"; cat flowc.err; }; done
export FLOW_TEST_LOG="$T/log"
: > "$FLOW_TEST_LOG"
ST="$T/st"
run() { "$FLOWRUN" "$@" --progress none --state "$ST" 2>> "$T/stderr"; }
dry() { "$FLOWRUN" "$@" --dry-run --json --state "$ST" 2>> "$T/stderr"; }
count() { grep -c "^$1 " "$FLOW_TEST_LOG"; }
expect() { # name want got
    if [ "$2" = "$3" ]; then echo "PASS dryrun: $1"; else echo "FAIL dryrun: $1: want '$2', got '$3'"; tail -3 "$T/stderr" | sed 's/^/    /'; fi
}
# q FILE EXPR: a python expression over the report j (and rows: name -> row)
q() { python3 -c "
import json, sys
j = json.load(open(sys.argv[1])); rows = {r['name']: r for r in j['tasks']}
def R(n, k): return rows[n][k] if n in rows else 0
def reasons(n): return ' '.join(i['reason'] + ':' + str(i['param']) for i in rows[n]['instances']) if n in rows else ''
print($2)" "$1" 2>&1; }
# snap: every file of the state directory with its content hash, and the run list
snap() { (cd "$ST" 2>/dev/null && find . -type f ! -name 'state.db-shm' -exec md5sum {} + | sort; find . | sort) | md5sum
         "$FLOWRUN" runs --json --state "$ST" 2>/dev/null | md5sum; }

# ---- a cold cache: no state directory at all ----
dry chain.plan --param n=3 > cold.json
expect "cold: --json parses, a runs 3, b and sum depend on what runs" "3 0 3 a 1 b" \
    "$(q cold.json "R('a','runs'), R('a','cached'), R('b','depends'), R('b','depends_on'), R('sum','depends'), R('sum','depends_on')")"
expect "cold: the reason is no entry" "no_entry:None no_entry:None no_entry:None" "$(q cold.json "reasons('a')")"
expect "cold: no state directory was made" no "$([ -e "$ST" ] && echo yes || echo no)"
expect "cold: the real run" 60 "$(run chain.plan --param n=3)"
expect "cold: the real run ran what the dry run said (a), and what depended on it" "3 3 1" \
    "$(count slow_inc) $(count times_ten) $(count sum)"

# ---- warm: everything cached ----
dry chain.plan --param n=3 > warm.json
expect "warm: nothing runs, 7 cached" "0 7 0" "$(q warm.json "j['runs'], j['cached'], j['depends']")"
: > "$FLOW_TEST_LOG"
run chain.plan --param n=3 > /dev/null
expect "warm: the real run ran nothing" 0 "$(wc -l < "$FLOW_TEST_LOG" | tr -d ' ')"

# ---- a wider map: the new elements run, their consumers depend on them ----
dry chain.plan --param n=5 > wide.json
expect "wider: a runs 2 (no entry), 3 cached; b: 2 depend on a; sum depends on b" "2 3 3 2 a 1 b" \
    "$(q wide.json "R('a','runs'), R('a','cached'), R('b','cached'), R('b','depends'), R('b','depends_on'), R('sum','depends'), R('sum','depends_on')")"
expect "wider: the instances named" "a[3] a[4]" "$(q wide.json "' '.join(i['name'] for i in rows['a']['instances'])")"
: > "$FLOW_TEST_LOG"
run chain.plan --param n=5 > /dev/null
expect "wider: the real run ran a's 2 and what depended on them" "2 2 1" \
    "$(count slow_inc) $(count times_ten) $(count sum)"

# ---- nothing written ----
before=$(snap)
dry chain.plan --param n=9 > /dev/null
dry files.plan --flow lines --param root=. > /dev/null
"$FLOWRUN" run chain.plan --param n=9 --dry-run --exact --state "$ST" > /dev/null 2>&1
"$FLOWRUN" run chain.plan --param n=9 --dry-run --state "$ST" > /dev/null 2>&1
expect "--dry-run writes nothing (state files and runs --json unchanged)" "$before" "$(snap)"

# ---- a parameter changed; cache: false ----
run cutoff.plan --param x=3 > /dev/null
dry cutoff.plan --param x=4 > param.json
expect "parameter changed: input x changed, q and s depend on it" "input_changed:x 1 p" \
    "$(q param.json "reasons('p'), R('q','depends'), R('q','depends_on')")"
expect "parameter changed: the text names it" "input \`x\` changed" "$(q param.json "rows['p']['instances'][0]['text']")"
dry cutoff.plan --param x=3 > effect.json
expect "cache: false runs every time, the rest cached" "not_cached:None 1 1" \
    "$(q effect.json "reasons('s'), R('p','cached'), R('q','cached')")"

# ---- a folder of several files, one changed ----
mkdir -p d/sub
for i in 1 2 3 4 5 6; do printf 'line %s\nmore\n' $i > d/f$i.txt; done
printf 'a\nb\nc\n' > d/sub/g.txt
run files.plan --flow lines --param root=d > /dev/null
dry files.plan --flow lines --param root=d > dir0.json
expect "folder: a re-run would run nothing" "0 7" "$(q dir0.json "R('counts','runs'), R('counts','cached')")"
sleep 0.01
printf 'line 3\nmore\nand more\n' > d/f3.txt
dry files.plan --flow lines --param root=d > dir1.json
expect "folder, one changed: 1 runs (file metadata changed: d/f3.txt), 6 cached, sum depends" \
    "1 6 file_metadata_changed:f True 1 counts" \
    "$(q dir1.json "R('counts','runs'), R('counts','cached'), reasons('counts'), 'd/f3.txt' in rows['counts']['instances'][0]['text'], R('sum','depends'), R('sum','depends_on')")"
"$FLOWRUN" run files.plan --flow lines --param root=d --dry-run --exact --json --state "$ST" > dir2.json 2>> "$T/stderr"
expect "folder, one changed, --exact: input f changed (its content), the file named" \
    "1 6 input_changed:f True" \
    "$(q dir2.json "R('counts','runs'), R('counts','cached'), reasons('counts'), 'd/f3.txt' in rows['counts']['instances'][0]['text']")"
: > "$FLOW_TEST_LOG"
run files.plan --flow lines --param root=d > /dev/null
expect "folder, one changed: the real run ran that one file and the sum" "1 1 1" \
    "$(count count_lines) $(grep -c 'count_lines d/f3.txt' "$FLOW_TEST_LOG") $(count sum)"
touch d/f5.txt
before=$(snap)
dry files.plan --flow lines --param root=d > dir3.json
"$FLOWRUN" run files.plan --flow lines --param root=d --dry-run --exact --json --state "$ST" > dir4.json 2>> "$T/stderr"
expect "--dry-run --exact hashing a touched file writes nothing either (no file-index note)" "$before" "$(snap)"
expect "folder, touched: metadata changed without --exact, cached with it" "1 0 7" \
    "$(q dir3.json "R('counts','runs')") $(q dir4.json "R('counts','runs'), R('counts','cached')")"
: > "$FLOW_TEST_LOG"
run files.plan --flow lines --param root=d > /dev/null
expect "folder, touched: the real run ran nothing (as --exact said)" 0 "$(wc -l < "$FLOW_TEST_LOG" | tr -d ' ')"

# ---- a new file in the folder (sorted first: every index after it shifts) ----
printf 'brand\nnew\n' > d/f0.txt
dry files.plan --flow lines --param root=d > new.json
expect "folder, a new file first: it runs (a new file), the 7 others are cached (keys hold no index)" \
    "1 7 new_file:f True" \
    "$(q new.json "R('counts','runs'), R('counts','cached'), reasons('counts'), 'd/f0.txt' in rows['counts']['instances'][0]['text']")"
: > "$FLOW_TEST_LOG"
run files.plan --flow lines --param root=d > /dev/null
expect "folder, a new file: the real run ran it and the sum" "1 1 1" \
    "$(count count_lines) $(grep -c 'count_lines d/f0.txt' "$FLOW_TEST_LOG") $(count sum)"

# ---- the code changed: `version`, and a rebuilt library ----
cat > v.c << 'EOF'
#include <stdint.h>
static const char tag[] __attribute__((used)) = TAG;
int64_t twice(int64_t x) { return 2 * x; }
int64_t one(const char *d) { (void)d; return 1; }
EOF
build_lib() { ${CC:-cc} -shared -fPIC -DTAG="\"$1\"" -o libv.so v.c; }
build_lib one
ver() { cat > v.flow << EOF
library v = "libv.so"
task twice(x: int) -> int = v.twice$1
flow f(n: int = 2) -> [int] {
    return twice.expand(x = range(n))
}
EOF
"$FLOWC" v.flow 2>> "$T/stderr"; }
ver ""
run v.plan > /dev/null
dry v.plan > v0.json
expect "code: unchanged, cached" "0 2" "$(q v0.json "j['runs'], j['cached']")"
build_lib two
dry v.plan > v1.json
expect "code: rebuilt library, the code changed (library)" "code_changed:None code_changed:None True" \
    "$(q v1.json "reasons('twice'), 'library' in rows['twice']['instances'][0]['text']")"
run v.plan > /dev/null
ver ' with {version: "1"}'
run v.plan > /dev/null
ver ' with {version: "2"}'
dry v.plan > v2.json
expect "code: version bumped, the code changed (version \"2\")" "code_changed:None True" \
    "$(q v2.json "reasons('twice').split()[0], 'version' in rows['twice']['instances'][0]['text'] and '\"2\"' in rows['twice']['instances'][0]['text']")"

# ---- a task whose input is a folder: which files changed ----
mkdir -p dd
for i in 1 2 3 4; do echo "x $i" > dd/h$i.txt; done
cat > dt.flow << 'EOF'
library v = "libv.so"
task one(d: dir) -> int = v.one
flow g(d: dir) -> int {
    return one(d)
}
EOF
"$FLOWC" dt.flow 2>> "$T/stderr"
run dt.plan --param d=dd > /dev/null
sleep 0.01
echo changed >> dd/h2.txt; echo new > dd/h5.txt
dry dt.plan --param d=dd > dt.json
expect "folder input: file metadata changed, both files named" "file_metadata_changed:d True True" \
    "$(q dt.json "reasons('one'), 'dd/h2.txt' in rows['one']['instances'][0]['text'], 'dd/h5.txt' in rows['one']['instances'][0]['text']")"
"$FLOWRUN" run dt.plan --param d=dd --dry-run --exact --json --state "$ST" > dt2.json 2>> "$T/stderr"
expect "folder input, --exact: input d changed, its changed and new files named" "input_changed:d True True" \
    "$(q dt2.json "reasons('one'), 'dd/h2.txt' in rows['one']['instances'][0]['text'], 'dd/h5.txt' in rows['one']['instances'][0]['text']")"

# ---- a group, an sh task, an all_done reduce (examples/grouped) ----
mkdir -p g/data
cp "$ROOT/examples/grouped/grouped.flow" "$ROOT/examples/grouped/libgrouped.so" g/
for i in 1 2 3 4; do echo "Hello world $i foo bar" > g/data/f$i.txt; done
(cd g && "$FLOWC" grouped.flow 2>> "$T/stderr")
gr() { (cd g && "$FLOWRUN" run grouped.plan --state "$T/st-g" "$@" 2>> "$T/stderr"); }
gr --progress none > /dev/null
sleep 0.01
echo "new words" >> g/data/f2.txt
gr --dry-run --json > g.json
expect "group: the changed file's first step runs, its chain and the all_done total depend" \
    "1 3 1 words 1 1 counts input_changed:src" \
    "$(q g.json "R('words','runs'), R('words','cached'), R('unique','depends'), R('unique','depends_on'), R('count_lines','depends'), R('total','depends'), R('total','depends_on')") $(gr --dry-run --exact --json | python3 -c "import json,sys; j=json.load(sys.stdin); print(' '.join(i['reason']+':'+str(i['param']) for r in j['tasks'] for i in r['instances']))")"
gr --progress plain > /dev/null
expect "group: the real run served the 9 the dry run said were cached" "9 of 13" \
    "$(sed -n 's/.*: \([0-9]* of [0-9]*\) instances served.*/\1/p' "$T/stderr" | tail -1)"

sed -i "s/tr -cs 'A-Za-z'/tr -cs 'A-Za-z0-9'/" g/grouped.flow
(cd g && "$FLOWC" grouped.flow 2>> "$T/stderr")
gr --dry-run --json > g2.json
expect "group: an sh task's command edited: the code changed (the command), for each file" "4 True" \
    "$(q g2.json "R('words','runs'), all(i['reason'] == 'code_changed' and 'command' in i['text'] for i in rows['words']['instances'])")"

# ---- what the run itself would fail (no instance to run) ----
dry chain.plan --param n=10 --max-map 5 > fail.json
expect "an expansion over max_map: a would fail (the error), b depends on a" "1 True 1 a 1" \
    "$(q fail.json "R('a','fails'), 'max_map' in rows['a']['error'], R('b','depends'), R('b','depends_on'), j['fails']")"

# ---- usage and text ----
"$FLOWRUN" run chain.plan --json --state "$ST" > /dev/null 2>&1
expect "--json without --dry-run: usage error" 2 $?
"$FLOWRUN" run chain.plan --param n=30 --dry-run --state "$ST" > text.txt 2>> "$T/stderr"
expect "text: exit 0, one line per task, the long list capped" "0 True True" \
    "$? $(grep -c '^  [a-z]*: ' text.txt | python3 -c 'import sys; print(int(sys.stdin.read()) == 3)') $(grep -q '\.\.\. and 5 more' text.txt && echo True || echo False)"
