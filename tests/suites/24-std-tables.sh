#!/bin/sh
# std's typed tables (stdlib/std_tables.c, compiler/check_typed.c) and typed
# bindings (`let x: T = e`). Programs that read and write CSV and JSON with the
# built flowc and flowrun under both executors; their results are compared with
# what python3's csv and json modules read from the same files (round trips,
# RFC 4180 quoting, CRLF, a byte order mark, unicode, an empty table) and cached
# by content with the type in the key. Then each
# run-time error (a missing column, a cell of the wrong type, a short row, an
# unclosed quote, an empty file, a JSON value of the wrong kind) must fail with a
# message naming the line and column (CSV) or the place in the document (JSON),
# and each compile-time error (a reader without a typed binding, a type a table
# cannot hold, a typed let whose value has another type) must be reported at its
# position.
BUILD=${BUILD:-build}
ROOT=$(pwd)
FLOWC=$ROOT/$BUILD/bin/flowc; FLOWRUN=$ROOT/$BUILD/bin/flowrun
T=$(mktemp -d /tmp/flow-tables-XXXXXX)
trap '[ -n "$KEEP" ] || rm -rf "$T"' EXIT INT TERM
pass() { echo "PASS tables: $1"; }
fail() { echo "FAIL tables: $1: $2"; }
skip() { echo "SKIP tables: $1: $2"; }
unset FLOW_PATH FLOW_LIBRARY_PATH
cd "$T" || exit 0
command -v python3 > /dev/null || { skip all "python3 is needed to compute the expected results"; exit 0; }

comp() { "$FLOWC" "$1.flow" 2> "$1.cerr" || { fail "$1" "flowc: $(head -3 "$1.cerr")"; return 1; }; }
run() { # name executor args...
    n=$1; ex=$2; shift 2
    "$FLOWRUN" "$n.plan" --executor "$ex" --progress none --state "$T/st-$ex" "$@" > "$n.out" 2> "$n.err"
    rc=$?
}

# ---- typed bindings ------------------------------------------------------------
cat > typed.flow <<'EOF'
type P = {name: str, n: int}
flow main() -> [P] {
    let xs: [int] = [1, 2]
    let none: [P] = []
    let one: P = {name = "a", n = len(xs)}
    return [one]
}
EOF
if comp typed; then
    run typed inline
    if [ $rc = 0 ] && [ "$(cat typed.out)" = '[{"name":"a","n":2}]' ]; then pass "typed let: a list, an empty list typed by its binding, a record"
    else fail "typed let" "exit $rc: $(cat typed.out) $(head -3 typed.err)"; fi
fi

# ---- CSV: read, write, read back; compared with python's csv module --------------
printf 'id,name,score,ok,w,note\n' > hits.csv
printf '1,alice,3,true,0.5,x\n' >> hits.csv
printf '2,"bob, ""the"" builder",-7,0,1e3,\n' >> hits.csv
printf '3,"two\nlines",0,False,2,"q"\n' >> hits.csv
printf '4,Zoë ✓ 日本,9223372036854775807,1,-0.25,\n' >> hits.csv
cat > csv.flow <<'EOF'
import std
type Hit = {name: str, score: int, ok: bool, w: float}
type Out = {rows: [Hit], back: [Hit], text: str}
flow main(f: path) -> Out {
    let rows: [Hit] = std.read_csv(f)
    let out = std.write_csv(rows, name = "hits-out.csv")
    let back: [Hit] = std.read_csv(out)
    return {rows = rows, back = back, text = std.read_text(out)}
}
EOF
if comp csv; then
    for ex in inline process; do
        run csv $ex --param f=hits.csv
        if [ $rc != 0 ]; then fail "csv [$ex]" "exit $rc: $(head -3 csv.err)"; continue; fi
        verdict=$(python3 - hits.csv csv.out <<'EOF'
import csv, json, sys
want = []
for r in csv.DictReader(open(sys.argv[1], newline="", encoding="utf-8")):
    want.append({"name": r["name"], "score": int(r["score"]),
                 "ok": r["ok"] in ("true", "True", "TRUE", "1"), "w": float(r["w"])})
got = json.load(open(sys.argv[2]))
if got["rows"] != want: print("rows differ: %r != %r" % (got["rows"], want)); sys.exit()
if got["back"] != want: print("read back differs: %r" % got["back"]); sys.exit()
# what write_csv wrote, read by python: the same table, fields in declaration order
import io
back = list(csv.reader(io.StringIO(got["text"], newline="")))
if back[0] != ["name", "score", "ok", "w"]: print("header %r" % back[0]); sys.exit()
for b, w in zip(back[1:], want):
    if [b[0], int(b[1]), b[2] == "true", float(b[3])] != [w["name"], w["score"], w["ok"], w["w"]]:
        print("written row %r != %r" % (b, w)); sys.exit()
if len(back) != len(want) + 1: print("%d rows written" % (len(back) - 1)); sys.exit()
if '"bob, ""the"" builder"' not in got["text"] or '"two\nlines"' not in got["text"]:
    print("not RFC 4180 quoting: %r" % got["text"]); sys.exit()
print("ok")
EOF
)
        if [ "$verdict" = ok ]; then pass "csv [$ex]: read_csv by header name, write_csv, read back (python's csv agrees; quoting, unicode)"
        else fail "csv [$ex]" "$verdict"; fi
    done
fi

# CRLF line ends, a byte order mark, blank lines, columns in another order; a header only
printf '\357\273\277score,extra,name\r\n5,z,"a\r\nb"\r\n\r\n6,,c\r\n' > crlf.csv
printf 'name,score\n' > header-only.csv
cat > csv2.flow <<'EOF'
import std
type Row = {name: str, score: int}
flow main(f: path) -> [Row] {
    let rows: [Row] = std.read_csv(f)
    return rows
}
EOF
if comp csv2; then
    run csv2 inline --param f=crlf.csv
    want=$(python3 -c '
import csv, json
r = [{"name": x["name"], "score": int(x["score"])} for x in csv.DictReader(open("crlf.csv", newline="", encoding="utf-8-sig"))]
print(json.dumps(r, separators=(",", ":")))')
    if [ $rc = 0 ] && [ "$(cat csv2.out)" = "$want" ]; then pass "csv: CRLF, a byte order mark, a blank line, columns in another order"
    else fail "csv CRLF" "exit $rc: $(cat csv2.out) $(head -3 csv2.err); want $want"; fi
    run csv2 inline --param f=header-only.csv
    if [ $rc = 0 ] && [ "$(cat csv2.out)" = "[]" ]; then pass "csv: a header without rows is an empty list"
    else fail "csv header only" "exit $rc: $(cat csv2.out) $(head -3 csv2.err)"; fi

    # cached by content; the type is in the key: another row type over the same file reads again
    "$FLOWRUN" csv2.plan --param f=crlf.csv --state "$T/st-cache" > c1.out 2> c1.err
    "$FLOWRUN" csv2.plan --param f=crlf.csv --state "$T/st-cache" > c2.out 2> c2.err
    sed 's/type Row = {name: str, score: int}/type Row = {name: str}/; s/csv2/csv2b/' csv2.flow > csv2b.flow
    if "$FLOWC" csv2b.flow 2> csv2b.cerr; then
        "$FLOWRUN" csv2b.plan --param f=crlf.csv --state "$T/st-cache" > c3.out 2> c3.err
        if grep -q "served from the cache" c2.err && ! grep -q "served from the cache" c3.err &&
           [ "$(cat c1.out)" = "$(cat c2.out)" ] && [ "$(cat c3.out)" = '[{"name":"a\r\nb"},{"name":"c"}]' ]; then
            pass "csv: a second read is served from the cache; another row type is another key"
        else fail "csv cache" "$(tail -1 c2.err) / $(tail -1 c3.err) / $(cat c3.out)"; fi
    else fail "csv cache" "flowc: $(head -3 csv2b.cerr)"; fi

    # run-time errors: one message naming the line and the column
    printf 'name,scor\na,1\n' > e-header.csv
    printf 'name,score\na,1\nb,12x\n' > e-cell.csv
    printf 'name,score\na,1\nb\n' > e-short.csv
    printf 'name,score\n"a,1\n' > e-quote.csv
    : > e-empty.csv
    printf 'name,score\n"a"b,1\n' > e-stray.csv
    printf 'name,score\na,99999999999999999999\n' > e-big.csv
    check_err() { # file expected-fragment what
        run csv2 inline --param f="$1"
        if [ $rc != 0 ] && grep -qF -- "$2" csv2.err; then pass "csv error: $3"
        else fail "csv error: $3" "exit $rc, want '$2' in: $(head -3 csv2.err)"; fi
    }
    check_err e-header.csv "e-header.csv line 1: no column 'score' in the header (its columns: 'name', 'scor')" "a missing column names the header's columns"
    check_err e-cell.csv "e-cell.csv line 3, column 'score': \"12x\" is not an int" "a bad cell names its line and column"
    check_err e-short.csv "e-short.csv line 3: 1 cells, but the header has 2 columns" "a short row"
    check_err e-quote.csv "e-quote.csv line 2: a quoted cell is not closed" "an unclosed quote"
    check_err e-empty.csv "e-empty.csv is empty" "an empty file"
    check_err e-stray.csv "e-stray.csv line 2: a quote inside a quoted cell must be doubled" "a stray quote"
    check_err e-big.csv "line 2, column 'score': \"99999999999999999999\" is not an int" "an int out of range"
fi

# .expand: one instance per file, each reading (or writing) one table
mkdir -p many
printf 'name,score\na,1\n' > many/1.csv
printf 'name,score\nb,2\nc,3\n' > many/2.csv
cat > expand.flow <<'EOF'
import std
type Hit = {name: str, score: int}
flow main(d: dir = "many") -> [[Hit]] {
    let fs = std.glob(d, "*.csv")
    let tables: [[Hit]] = std.read_csv.expand(f = fs)
    let outs = std.write_csv.expand(rows = tables)
    let back: [[Hit]] = std.read_csv.expand(f = outs)
    return back
}
EOF
if comp expand; then
    run expand process
    if [ $rc = 0 ] && [ "$(cat expand.out)" = '[[{"name":"a","score":1}],[{"name":"b","score":2},{"name":"c","score":3}]]' ]; then
        pass "read_csv.expand and write_csv.expand: one table per file"
    else fail "expand" "exit $rc: $(cat expand.out) $(head -3 expand.err)"; fi
fi

# write_csv of an empty list: the header alone; of a date, an empty str, a time
cat > csv3.flow <<'EOF'
import std
type R = {d: date, s: str, t: time}
flow main() -> {a: str, b: str} {
    let none: [R] = []
    let a = std.write_csv(none)
    let b = std.write_csv([{d = 2024-02-29, s = "", t = 2024-03-01T10:00:00Z}], name = "b.csv")
    return {a = std.read_text(a), b = std.read_text(b)}
}
EOF
if comp csv3; then
    run csv3 inline
    if [ $rc = 0 ] && [ "$(cat csv3.out)" = '{"a":"d,s,t\n","b":"d,s,t\n2024-02-29,,2024-03-01T10:00:00Z\n"}' ]; then pass "write_csv: an empty list, a date, an empty str, a time"
    else fail "write_csv empty/date" "exit $rc: $(cat csv3.out) $(head -3 csv3.err)"; fi
fi

# ---- JSON -------------------------------------------------------------------------
cat > jobs.json <<'EOF'
[{"name": "a", "tags": ["x", "y"], "w": 1, "sub": {"on": true, "at": "2024-01-31"}, "more": 1},
 {"name": "Zoë \"q\"\n日本", "tags": [], "w": 2.5, "sub": {"on": false, "at": "2023-12-01"}}]
EOF
cat > json.flow <<'EOF'
import std
type Sub = {on: bool, at: date}
type Job = {name: str, tags: [str], w: float, sub: Sub}
type Out = {jobs: [Job], back: [Job], n: int, s: str, xs: [[int]], one: Job, each: [Job]}
flow main(f: path, g: path, h: path, o: path) -> Out {
    let jobs: [Job] = std.read_json(f)
    let one: Job = std.read_json(o)
    let each: [Job] = std.read_json.expand(f = [o, std.write_json(one, name = "again.json")])
    let back: [Job] = std.read_json(std.write_json(jobs))
    let n: int = std.read_json(g)
    let s: str = std.read_json(h)
    let xs: [[int]] = std.read_json(std.write_json([[1, 2], [], [3]], name = "xs.json"))
    return {jobs = jobs, back = back, n = n, s = s, xs = xs, one = one, each = each}
}
EOF
printf ' 42 \n' > n.json
printf '{"name": "o", "tags": ["t"], "w": 3, "sub": {"on": true, "at": "2020-02-29"}, "x": 0}' > one.json
printf '"text"' > s.json
if comp json; then
    for ex in inline process; do
        run json $ex --param f=jobs.json --param g=n.json --param h=s.json --param o=one.json
        verdict=$(python3 - jobs.json json.out <<'EOF'
import json, sys
want = json.load(open(sys.argv[1]))
for j in want:
    j.pop("more", None); j["w"] = float(j["w"])
got = json.load(open(sys.argv[2]))
one = {"name": "o", "tags": ["t"], "w": 3.0, "sub": {"on": True, "at": "2020-02-29"}}
if got["jobs"] != want: print("jobs %r != %r" % (got["jobs"], want))
elif got["one"] != one: print("one %r" % got["one"])
elif got["each"] != [one, one]: print("each %r" % got["each"])
elif got["back"] != want: print("back %r" % got["back"])
elif (got["n"], got["s"], got["xs"]) != (42, "text", [[1, 2], [], [3]]): print("scalars %r" % got)
else: print("ok")
EOF
)
        if [ $rc = 0 ] && [ "$verdict" = ok ]; then pass "json [$ex]: read_json into records, lists, an int, a str, one record (also .expand); write_json round trip (python's json agrees)"
        else fail "json [$ex]" "exit $rc: $verdict $(head -3 json.err)"; fi
    done
    printf '[{"name": "a", "tags": ["x"], "w": 1, "sub": {"on": "yes", "at": "2024-01-31"}}]' > e1.json
    printf '[{"name": "a", "tags": ["x"], "w": 1}]' > e2.json
    printf '[{"name": "a",' > e3.json
    printf '[{"name": "a", "tags": [], "w": 1, "sub": {"on": true, "at": "2023-02-30"}}]' > e4.json
    printf '[{"name": "o", "tags": [], "w": 1, "sub": {"on": true, "at": "2020-02-29"}}]' > e5.json
    for c in 'e1.json|$[0].sub.on is a string, not a bool|a value of the wrong kind names its place' \
             'e2.json|$[0] has no field '"'"'sub'"'"'|a missing field' \
             'e3.json|e3.json line 1, column|a syntax error names line and column' \
             'e4.json|$[0].sub.at is "2023-02-30", not a date|a date that is no calendar day'; do
        f=${c%%|*}; rest=${c#*|}; frag=${rest%%|*}; what=${rest#*|}
        run json inline --param f="$f" --param g=n.json --param h=s.json --param o=one.json
        if [ $rc != 0 ] && grep -qF -- "$frag" json.err; then pass "json error: $what"
        else fail "json error: $what" "exit $rc, want '$frag' in: $(head -3 json.err)"; fi
    done
    run json inline --param f=jobs.json --param g=n.json --param h=s.json --param o=e5.json
    if [ $rc = 1 ] && grep -qF -- 'one: e5.json: $ is an array, not a record' json.err; then
        pass "json error: one record read from an array says so"
    else fail "json error: one record from an array" "exit $rc: $(head -3 json.err)"; fi
fi

# one record read after a step that writes it: `after` holds back the read itself
cat > late.flow <<'EOF'
import std
type Job = {name: str, retries: int}
task mk(d: str) -> str = sh "sleep 0.3; cp {d}/src.json {d}/late.json; echo ok"
flow main(d: str, f: path) -> Job {
    let s = mk(d)
    let cfg: Job = std.read_json(f) after s
    return cfg
}
EOF
echo '{"name": "late", "retries": 2}' > src.json
if comp late; then
    for ex in inline process; do
        rm -f late.json
        run late $ex --param d="$PWD" --param f=late.json
        if [ $rc = 0 ] && [ "$(cat late.out)" = '{"name":"late","retries":2}' ]; then
            pass "json [$ex]: a record read after the step that writes its file"
        else fail "json after [$ex]" "exit $rc: $(cat late.out) $(head -3 late.err)"; fi
    done
fi

# ---- compile-time errors at their position ----------------------------------------------
cat > bad.flow <<'EOF'
import std
type Hit = {name: str, score: int}
flow main(f: path) -> int {
    let rows = std.read_csv(f)
    let xs: [int] = std.read_csv(f)
    let h: Hit = std.read_csv(f)
    let w = std.write_csv([1])
    let b: [str] = [1, 2]
    let y: [Hit] = std.read_csv(f, type_ = "s")
    let m = combine(std.fetch_to, std.read_csv)
    return 1
}
EOF
"$FLOWC" bad.flow 2> bad.err
for c in "bad.flow:4:16: error: 'std.read_csv' needs to know the type it reads" \
         "hint: write the type on the binding: let rows: [T] = std.read_csv(...)" \
         "bad.flow:5:21: error: std.read_csv cannot read [int]" \
         "bad.flow:6:18: error: std.read_csv cannot read Hit" \
         "bad.flow:7:27: error: std.write_csv cannot write [int]" \
         "bad.flow:8:20: error: 'b' is declared [str], but this is [int]" \
         "bad.flow:8:12: note: the type [str] is declared here" \
         "bad.flow:9:36: error: 'std.read_csv<[Hit]>' has no parameter 'type_'" \
         "bad.flow:10:35: error: 'std.read_csv' takes its type from its call; it cannot be a half of combine"; do
    if grep -qF -- "$c" bad.err; then pass "compile error: ${c#bad.flow:}"
    else fail "compile error" "want '$c' in: $(cat bad.err)"; fi
done

# `:` after a let name is new syntax: the old forms still mean what they meant
cat > old.flow <<'EOF'
type R = {a: int}
flow main() -> [R] {
    let r = {a = 1}
    let x = [r]
    return x
}
EOF
if comp old; then
    run old inline
    if [ $rc = 0 ] && [ "$(cat old.out)" = '[{"a":1}]' ]; then pass "untyped lets are unchanged"
    else fail "untyped lets" "$(cat old.out) $(head -2 old.err)"; fi
fi
