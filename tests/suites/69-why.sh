#!/bin/sh
# flowrun why RUN INSTANCE [--json] (issue 17, deliverable 2; docs/observability.md):
# over examples/wordcount on a folder of 3 files, run after run: the first run (no
# earlier entry), one file changed (the summary of count_words names that file and
# counts 2 served; the changed instance, by name and by label; a served instance names
# the run that produced it; the reduce points at the upstream that changed), a new
# file sorted last (no earlier entry) and one sorted first (another file at that
# index), a task's `version` edited (the code changed), a --no-cache run, `cache:
# false`, a plan rebuilt since the run, the --json forms (parsed), a binding of 1,001
# instances (counts with separators, 20 shown per reason), and the refusals (unknown run, unknown instance, no state: exit 2,
# one line, nothing created).
ROOT=$(pwd)
T=$(mktemp -d /tmp/flow-why-XXXXXX)
trap 'rm -rf "$T"' EXIT
[ -f examples/wordcount/libwc.so ] || { echo "SKIP why: examples/wordcount/libwc.so not built (make testlibs)"; exit 0; }
cp examples/wordcount/wordcount.flow examples/wordcount/libwc.so "$T/" || { echo "FAIL why: setup"; exit 0; }
cd "$T" || exit 0
"$FLOWC" wordcount.flow 2> flowc.err || { echo "FAIL why: flowc"; cat flowc.err; exit 0; }
mkdir d
for f in a b c; do echo "words of file $f" > d/$f.txt; done
ST="$T/st"
run() { "$FLOWRUN" wordcount.plan --flow wordcount --param root=d --progress none --state "$ST" "$@" > /dev/null 2>> "$T/stderr"; }
why() { "$FLOWRUN" why "$@" --state "$ST" 2>> "$T/stderr"; }
expect() { # name want got
    if [ "$2" = "$3" ]; then echo "PASS why: $1"; else echo "FAIL why: $1: want '$2', got '$3'"; tail -3 "$T/stderr" | sed 's/^/    /'; fi
}
# q FILE EXPR: a python expression over the --json object j
q() { python3 -c "
import json, sys
j = json.load(open(sys.argv[1]))
print($2)" "$1" 2>&1; }

# ---- the first run: nothing earlier ----
run
expect "first run: every count_words instance ran, no earlier entry" \
    "3 ran: 3 no earlier entry; 0 served from the cache" "$(why last count_words | sed -n 2p)"

# ---- one file changed ----
# ident FILE: its content hash (12 digits), size and mtime as why says them
ident() { echo "$(sha256sum "$1" | cut -c1-12) ($(stat -c %s "$1") bytes, modified $(date -u -d "@$(stat -c %Y "$1")" +%Y-%m-%dT%H:%M:%SZ))"; }
was=$(ident d/b.txt) was_sha=$(sha256sum d/b.txt | cut -c1-64)
sleep 1 # another mtime
echo "and some more words" >> d/b.txt
now=$(ident d/b.txt) now_size=$(stat -c %s d/b.txt)
CH="d/b.txt: its content was sha256 $was, now $now"
run
why last count_words > sum.txt
expect "changed file: the summary counts 1 ran and 2 served" \
    "1 ran: 1 input \`file\` changed; 2 served from the cache" "$(sed -n 2p sum.txt)"
expect "changed file: the summary names the instance and exactly that file" \
    "    counts[1]: input \`file\` changed: $CH (compared with run 1)" "$(sed -n 4p sum.txt)"
expect "changed file: the summary's header names the binding and task" \
    "counts (task count_words) in run 2: 3 instances" "$(sed -n 1p sum.txt)"
expect "changed file: the instance by name" \
    "counts[1] (run 2): input \`file\` changed: $CH (compared with run 1)" "$(why last 'counts[1]')"
expect "changed file: the instance by its label (named as show names it)" \
    "counts[1] (run 2): input \`file\` changed: $CH (compared with run 1)" \
    "$(why 2 'counts["b.txt"]')"
expect "served: the run that produced it" "counts[0] (run 2): served from the cache: its result was produced by run 1" \
    "$(why last 'counts[0]' | sed 's/ ([0-9T:Z-]*)$//')"
expect "served: the date of that run is said" 1 "$(why last 'counts[2]' | grep -c 'produced by run 1 (20[0-9-]*T[0-9:]*Z)$')"
expect "reduce: its input is an upstream result, named" \
    "total_of (run 2): input \`counts\` changed: an upstream result changed (counts; ask \`flowrun why 2 counts\`) (compared with run 1)" \
    "$(why last total_of)"
expect "an earlier run is answered as of its time (run 1: no earlier entry)" \
    "counts[1] (run 1): no entry (no run of wordcount before run 1)" "$(why 1 'counts[1]')"

# ---- --json ----
why last count_words --json > sum.json
expect "--json summary parses: ran, served, the reason, the parameter, the file" \
    "3 1 2 input_changed file d/b.txt 1" \
    "$(q sum.json "j['instances'], j['ran'], j['served'], j['reasons'][0]['reason'], j['reasons'][0]['param'], j['reasons'][0]['instances'][0]['file'], j['reasons'][0]['count']")"
why last 'counts[1]' --json > ch.json
expect "--json instance: the file's content hash, size and mtime, was and now" \
    "$was_sha $now_size True" \
    "$(q ch.json "j['instance']['file_was']['sha256'], j['instance']['file_now']['size'], j['instance']['file_now']['mtime'] > j['instance']['file_was']['mtime']")"
why last 'counts[0]' --json > one.json
expect "--json instance: served, produced by run 1" "True served 1 counts[0]" \
    "$(q one.json "j['instance']['served'], j['instance']['reason'], j['instance']['produced_by'], j['instance']['name']")"
why last total_of --json > up.json
expect "--json instance: upstream named" "input_changed counts counts 1" \
    "$(q up.json "j['instance']['reason'], j['instance']['param'], j['instance']['upstream'], j['instance']['compared_with']")"

# ---- a new file, sorted last: no earlier entry ----
echo "a fourth file" > d/d.txt
run
expect "new file (last): no earlier entry, 3 served" \
    "1 ran: 1 no earlier entry; 3 served from the cache" "$(why last count_words | sed -n 2p)"
expect "new file (last): it is counts[3]" "    counts[3]: no entry (none of the 2 runs of wordcount before run 3 has one)" \
    "$(why last count_words | sed -n 4p)"

# ---- a new file, sorted first: the file at index 0 is another one ----
echo "a file that sorts first" > d/0.txt
run
expect "new file (first): counts[0] had another file" \
    "counts[0] (run 4): input \`file\` changed: another file at this index: d/0.txt (was d/a.txt) (compared with run 3)" \
    "$(why last 'counts[0]')"
expect "new file (first): the shifted files were served" \
    "1 ran: 1 input \`file\` changed; 4 served from the cache" "$(why last count_words | sed -n 2p)"

# ---- the task's version edited: the code changed ----
sed 's/with {retries: 1,/with {version: "2", retries: 1,/' wordcount.flow > v2.flow && mv v2.flow wordcount.flow
"$FLOWC" wordcount.flow 2>> "$T/stderr" || echo "FAIL why: flowc (version)"
run
expect "version edited: every instance ran, the code changed" \
    "5 ran: 5 code changed; 0 served from the cache" "$(why last count_words | sed -n 2p)"
expect "version edited: the text says which version" \
    "counts[2] (run 5): the code changed: \`version\` (now \"2\") (compared with run 4)" "$(why last 'counts[2]')"
why last 'counts[2]' --json > code.json
expect "version edited: --json reason" "code_changed None" "$(q code.json "j['instance']['reason'], j['instance']['param']")"

# ---- --no-cache ----
run --no-cache
expect "--no-cache: said" "counts[1] (run 6): --no-cache: run 6 served nothing from the cache" "$(why last 'counts[1]')"

# ---- cache: false; an earlier run whose plan was rebuilt since ----
sed 's/^task total_of(counts: \[int\]) -> int *= wc.total_of$/& with {cache: false}/' wordcount.flow > nc.flow && mv nc.flow wordcount.flow
"$FLOWC" wordcount.flow 2>> "$T/stderr" || echo "FAIL why: flowc (cache: false)"
run
expect "cache: false: said" "total_of (run 7): \`cache: false\`: it runs every time" "$(why last total_of)"
"$FLOWRUN" why 2 'counts[1]' --state "$ST" > /dev/null 2> note.txt
expect "a plan rebuilt since the run: a note on stderr" 1 "$(grep -c "^flowrun why: note: .*wordcount.plan was rebuilt since run 2" note.txt)"

# ---- a wide binding: counts with separators, 20 shown per reason ----
mkdir big
i=1000; while [ $i -le 2000 ]; do echo "w $i" > big/f$i.txt; i=$((i + 1)); done
"$FLOWRUN" wordcount.plan --flow wordcount --param root=big --progress none --state "$T/bst" > /dev/null 2>> "$T/stderr"
"$FLOWRUN" why last count_words --state "$T/bst" > big.txt 2>> "$T/stderr"
expect "wide: 1,001 counted with separators" "1,001 ran: 1,001 no earlier entry; 0 served from the cache" "$(sed -n 2p big.txt)"
expect "wide: 20 shown, then how many more" "24     ... and 981 more" "$(wc -l < big.txt | tr -d ' ') $(tail -1 big.txt)"
"$FLOWRUN" why last count_words --json --state "$T/bst" > big.json 2>> "$T/stderr"
expect "wide: --json lists 20 and says how many more" "1001 20 981" \
    "$(q big.json "j['ran'], len(j['reasons'][0]['instances']), j['reasons'][0]['more']")"

# ---- a flow parameter changed: its old and new values (from the two runs' records) ----
mkdir pv && cp "$ROOT/tests/lib/libstatetasks.so" pv/
cat > pv/par.flow << 'FLOW'
library t = "libstatetasks.so"
task tenfold(x: int) -> int = t.times_ten
task upper(s: str) -> str = sh "echo {s} | tr a-z A-Z"
task sum(xs: [int]) -> int = t.sum
group tens(v: int) -> int {
    return tenfold(v)
}
flow scaled(n: int, k: int, label: str = "plain") -> int {
    let base = tenfold(k)
    let name = upper(label)
    let inner = tens(n)
    let total = sum([base, inner]) after name
    return total
}
FLOW
if "$FLOWC" pv/par.flow -o pv/par.plan 2>> "$T/stderr"; then
    pr() { "$FLOWRUN" pv/par.plan --progress none --state "$T/pst" "$@" > /dev/null 2>> "$T/stderr"; }
    pw() { "$FLOWRUN" why last "$1" --state "$T/pst" 2>> "$T/stderr"; }
    pr --param n=3 --param k=4
    pr --param n=5 --param k=7 --param label='with "quotes"'
    expect "flow parameter: old and new value" \
        "base (run 2): input \`x\` changed: the flow's parameter \`k\` was 4, now 7 (compared with run 1)" "$(pw base)"
    expect "flow parameter: a string's values, as JSON" \
        "name (run 2): input \`s\` changed: the flow's parameter \`label\` was \"plain\", now \"with \\\"quotes\\\"\" (compared with run 1)" \
        "$(pw name)"
    "$FLOWRUN" why last base --json --state "$T/pst" > pv.json 2>> "$T/stderr"
    expect "flow parameter: --json has the name and both values" "k 4 7" \
        "$(q pv.json "j['instance']['flow_param'], j['instance']['was'], j['instance']['now']")"
    expect "flow parameter: through a group's parameter, the flow's" \
        "inner/tenfold (run 2): input \`x\` changed: the flow's parameter \`n\` was 3, now 5 (compared with run 1)" \
        "$(pw 'inner/tenfold')"
    expect "flow parameter: a task fed by another's result still names that upstream" 1 \
        "$(pw total | grep -c 'an upstream result changed (base, inner')"
else
    echo "FAIL why: flowc pv/par.flow"; tail -3 "$T/stderr"
fi

# ---- refusals: exit 2, one line ----
err() { "$FLOWRUN" why "$@" > out.txt 2> err.txt; echo "$? $(wc -l < err.txt | tr -d ' ') $(cat err.txt)"; }
expect "unknown run" "2 1 flowrun why: no run 99 in this state directory" "$(err 99 count_words --state "$ST")"
expect "not a run id" "2 1 flowrun why: 'x1' is not a run id (a number, or 'last')" "$(err x1 count_words --state "$ST")"
expect "unknown instance" "2 1 flowrun why: run 7 has no instance nope[3] (flowrun show 7 lists them)" \
    "$(err last 'nope[3]' --state "$ST")"
expect "no state: said, and nothing created" "2 1 flowrun why: no state in $T/none (no run recorded there yet) absent" \
    "$(err last count_words --state "$T/none") $([ -e "$T/none" ] && echo present || echo absent)"
expect "missing INSTANCE: usage" 2 "$("$FLOWRUN" why last --state "$ST" > /dev/null 2>&1; echo $?)"
expect "an unknown option" 2 "$("$FLOWRUN" why last count_words --exact --state "$ST" > /dev/null 2>&1; echo $?)"
