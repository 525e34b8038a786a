#!/bin/sh
# The plan file: damaged plans through `flowrun verify` / `flowrun inspect` (exit 2, one
# line on stderr naming the file, never a crash), inspect's views of a good plan, and
# flowc's --emit=dot (renders with Graphviz) and --emit=c (compiles).
# Plans come from build/tests/test_plan (--write-plan, --write-damaged), so this suite
# does not depend on flowc; the flowc checks are skipped while flowc cannot compile.
BUILD=${BUILD:-build}
FLOWRUN=${FLOWRUN:-$BUILD/bin/flowrun}; FLOWC=${FLOWC:-$BUILD/bin/flowc}
GEN=$BUILD/tests/test_plan
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
pass() { echo "PASS plan: $1"; }
fail() { echo "FAIL plan: $1"; }

if [ ! -x "$GEN" ] || ! "$GEN" --write-plan "$tmp/good.plan" || ! mkdir "$tmp/bad" ||
   ! "$GEN" --write-damaged "$tmp/bad"; then
    fail "cannot generate test plans with $GEN"; exit 0
fi
cp /bin/sh "$tmp/bad/elf.plan"

# expect_refused NAME FILE: exit 2, exactly one stderr line, naming the file, no sanitizer report
expect_refused() {
    for cmd in verify inspect; do
        "$FLOWRUN" "$cmd" "$2" > "$tmp/out" 2> "$tmp/err"; code=$?
        lines=$(wc -l < "$tmp/err")
        if [ "$code" = 2 ] && [ "$lines" = 1 ] && grep -qF "$2" "$tmp/err" && [ ! -s "$tmp/out" ]; then
            pass "$cmd refuses $1"
        else
            fail "$cmd $1: exit $code, $lines stderr lines: $(head -c 300 "$tmp/err")"
        fi
    done
}
for f in "$tmp"/bad/*.plan; do expect_refused "$(basename "$f" .plan)" "$f"; done
expect_refused "a missing file" "$tmp/bad/missing.plan"
expect_refused "a directory" "$tmp/bad"

# a valid plan whose library (with a newline in its path) is missing: still one line
"$FLOWRUN" verify "$tmp/bad/nolib.plan-valid" > "$tmp/out" 2> "$tmp/err"; code=$?
[ "$code" = 2 ] && [ "$(wc -l < "$tmp/err")" = 1 ] && grep -q 'library wc ("no?such.so") not found' "$tmp/err" &&
    pass "verify: a missing library is one line, whatever its name" || fail "verify nolib: exit $code $(cat "$tmp/err")"

# the messages say what is wrong
msg() { "$FLOWRUN" verify "$tmp/bad/$1.plan" 2>&1 | grep -qF "$2" && pass "message for $1" ||
        fail "message for $1 lacks '$2': $("$FLOWRUN" verify "$tmp/bad/$1.plan" 2>&1)"; }
msg empty "empty file"
msg truncated "truncated ("
msg flipped "checksum mismatch"
msg newer "plan format version 8 is newer than this flowrun supports (7)"
msg older "plan format version 1 is older than this flowrun reads (7): recompile it with flowc"
msg older2 "plan format version 2 is older than this flowrun reads (7): recompile it with flowc"
"$FLOWRUN" run "$tmp/bad/older.plan" --state "$tmp/st-older" > /dev/null 2> "$tmp/err"; code=$?
[ "$code" = 2 ] && [ "$(wc -l < "$tmp/err")" = 1 ] && grep -q "recompile it with flowc" "$tmp/err" &&
    pass "run: a format-1 plan is refused in one line: recompile" || fail "run older: exit $code $(cat "$tmp/err")"
msg crlf "text-mode transfer"
msg text "not a flow plan (bad magic)"
msg elf "not a flow plan (bad magic)"
msg badref "of another graph"

# usage errors
"$FLOWRUN" inspect > /dev/null 2>&1; [ $? = 2 ] && pass "inspect without a plan: exit 2" || fail "inspect without a plan"
"$FLOWRUN" inspect "$tmp/good.plan" --bogus > /dev/null 2>&1; [ $? = 2 ] && pass "inspect --bogus: exit 2" || fail "inspect --bogus"
"$FLOWRUN" verify > /dev/null 2>&1; [ $? = 2 ] && pass "verify without a plan: exit 2" || fail "verify without a plan"

# verify: the library is looked for beside the plan, then on FLOW_LIBRARY_PATH
"$FLOWRUN" verify "$tmp/good.plan" > "$tmp/out" 2> "$tmp/err"; code=$?
[ "$code" = 2 ] && grep -q 'library wc ("libwc.so") not found' "$tmp/err" && [ "$(wc -l < "$tmp/err")" = 1 ] &&
    pass "verify: missing library is an error" || fail "verify missing library: exit $code $(cat "$tmp/err")"
# a real library with the plan's three symbols (its hash differs from the plan's)
mkdir "$tmp/libs" "$tmp/nosum"
printf 'long wc_count(void) { return 1; }\nlong store(void) { return 2; }\n' > "$tmp/wc.c"
${CC:-cc} -shared -fPIC -o "$tmp/nosum/libwc.so" "$tmp/wc.c" &&
printf 'long sum(void) { return 3; }\n' >> "$tmp/wc.c" &&
${CC:-cc} -shared -fPIC -o "$tmp/libs/libwc.so" "$tmp/wc.c" || fail "cannot build a test library"
FLOW_LIBRARY_PATH="/nonexistent:$tmp/libs" "$FLOWRUN" verify "$tmp/good.plan" > "$tmp/out" 2> "$tmp/err"; code=$?
[ "$code" = 0 ] && grep -qx "$tmp/good.plan: ok" "$tmp/out" && grep -q 'warning: library wc .* has changed' "$tmp/err" &&
    pass "verify: changed library on FLOW_LIBRARY_PATH is a warning" || fail "verify changed library: exit $code $(cat "$tmp/out" "$tmp/err")"
FLOW_LIBRARY_PATH="$tmp/nosum" "$FLOWRUN" verify "$tmp/good.plan" > "$tmp/out" 2> "$tmp/err"; code=$?
[ "$code" = 2 ] && grep -q 'task sum: symbol sum not found in library wc' "$tmp/err" && [ ! -s "$tmp/out" ] &&
    pass "verify: a missing symbol is an error" || fail "verify missing symbol: exit $code $(cat "$tmp/out" "$tmp/err")"
echo "not a library" > "$tmp/nosum/libwc.so"
FLOW_LIBRARY_PATH="$tmp/nosum" "$FLOWRUN" verify "$tmp/good.plan" > "$tmp/out" 2> "$tmp/err"; code=$?
[ "$code" = 2 ] && grep -q 'library wc: cannot load' "$tmp/err" && [ "$(grep -vc warning "$tmp/err")" = 1 ] &&
    pass "verify: a library that does not load is an error" || fail "verify bad library: exit $code $(cat "$tmp/err")"
cp "$tmp/libs/libwc.so" "$tmp/libwc.so"
"$FLOWRUN" verify "$tmp/good.plan" > "$tmp/out" 2>/dev/null && grep -q ': ok$' "$tmp/out" &&
    pass "verify: library beside the plan" || fail "verify: library beside the plan"

# inspect's views of a good plan
"$FLOWRUN" inspect "$tmp/good.plan" > "$tmp/sum" 2> "$tmp/err" && grep -q '^flows:' "$tmp/sum" &&
    grep -q '^  main(url: str' "$tmp/sum" && grep -q '^counts: ' "$tmp/sum" &&
    pass "inspect summary" || fail "inspect summary: $(cat "$tmp/err")"
"$FLOWRUN" inspect "$tmp/good.plan" --json > "$tmp/j.json" && "$FLOWRUN" inspect "$tmp/good.plan" --yaml > "$tmp/y.yaml" &&
    pass "inspect --json and --yaml" || fail "inspect --json/--yaml"
if command -v python3 > /dev/null && python3 -c 'import yaml' 2>/dev/null; then
    python3 -c 'import json,sys,yaml; a=json.load(open(sys.argv[1])); b=yaml.safe_load(open(sys.argv[2])); sys.exit(a!=b)' \
        "$tmp/j.json" "$tmp/y.yaml" && pass "JSON and YAML views hold the same document" || fail "JSON and YAML views differ"
else
    echo "SKIP plan:JSON and YAML views hold the same document: no python3 with the yaml module (make deps installs python3-yaml)"
fi
"$FLOWRUN" inspect "$tmp/good.plan" --dot > "$tmp/g.dot" && dot -Tsvg "$tmp/g.dot" > "$tmp/g.svg" 2> "$tmp/err" && [ ! -s "$tmp/err" ] &&
    pass "inspect --dot renders with dot -Tsvg" || fail "inspect --dot does not render: $(head -3 "$tmp/err")"

# flowc's views: only once flowc compiles programs
cat > "$tmp/hello.flow" <<'FLOW'
task greet(name: str) -> str = sh "echo hello {name}"
task size(s: str) -> int = sh "printf %s {s} | wc -c"
flow main(names: [str] = ["ann", "bob"]) -> [int] {
    let hellos = greet.expand(name = names)
    let sizes = size.expand(s = hellos)
    return sizes
}
FLOW
if ! "$FLOWC" -o "$tmp/hello.plan" "$tmp/hello.flow" > /dev/null 2>&1; then
    echo "SKIP plan: flowc checks (flowc cannot compile programs in this build yet)"
    exit 0
fi
"$FLOWRUN" verify "$tmp/hello.plan" > /dev/null 2>&1 && pass "flowc's plan verifies" || fail "flowc's plan does not verify"
"$FLOWC" -o "$tmp/hello2.plan" "$tmp/hello.flow" && cmp -s "$tmp/hello.plan" "$tmp/hello2.plan" &&
    pass "flowc is deterministic (same source, same bytes)" || fail "flowc wrote different bytes twice"
"$FLOWC" --emit=dot "$tmp/hello.flow" > "$tmp/h.dot" && dot -Tsvg "$tmp/h.dot" > /dev/null 2> "$tmp/err" && [ ! -s "$tmp/err" ] &&
    grep -q box3d "$tmp/h.dot" && pass "flowc --emit=dot renders (mapped tasks as stacks)" || fail "flowc --emit=dot: $(head -3 "$tmp/err")"
"$FLOWC" --emit=c "$tmp/hello.flow" > "$tmp/h.c" && ${CC:-cc} -c -Wall -Wextra -Werror -o "$tmp/h.o" "$tmp/h.c" 2> "$tmp/err" &&
    pass "flowc --emit=c compiles cleanly" || fail "flowc --emit=c: $(head -3 "$tmp/err")"
"$FLOWC" --emit=json "$tmp/hello.flow" > "$tmp/h.json" && "$FLOWRUN" inspect "$tmp/hello.plan" --json > "$tmp/h2.json" &&
    cmp -s "$tmp/h.json" "$tmp/h2.json" && pass "flowc --emit=json equals flowrun inspect --json" || fail "flowc --emit=json differs from inspect --json"
"$FLOWC" --emit=yaml "$tmp/hello.flow" > /dev/null && pass "flowc --emit=yaml" || fail "flowc --emit=yaml"

# every plan flowc writes for the test and example programs is accepted by the reader
n=0; bad=0
for f in tests/plans/*.flow tests/run/*.flow examples/*/*.flow; do
    [ -f "$f" ] || continue
    "$FLOWC" -o "$tmp/any.plan" "$f" > /dev/null 2>&1 || continue
    n=$((n + 1))
    if ! "$FLOWRUN" inspect "$tmp/any.plan" > /dev/null 2> "$tmp/err"; then
        bad=$((bad + 1)); fail "flowc's plan of $f is refused: $(cat "$tmp/err")"
    fi
done
[ "$bad" = 0 ] && pass "the reader accepts flowc's plans of all $n test and example programs"
