#!/bin/sh
# flowc fmt (docs/fmt.md): the goldens tests/fmt/X.flow -> X.out (tests/harness/golden.sh;
# `make test T=tests/fmt/X.flow`, `make golden T=...`), and over every .flow file of the
# repository that parses: formatting is idempotent (fmt(fmt(x)) == fmt(x)) and keeps the
# meaning (the plan of the formatted file, `flowc --emit=json`, equals the original's once
# source positions ("loc" fields, the "@line:col" that ends each instruction of the
# expression code), the source's name and its hash are left out); then --check's
# exit codes and output, a file that does not parse refused and left untouched, the
# rewrite keeping the file's mode and leaving no temporary behind, standard input.
#
# Last, every .flow of the repository must be formatted already, except:
#   tests/errors/  their goldens (.err) record line:column positions (issue 18's decision);
#   tests/parse/   parser tests whose point is their untidy layouts (test_parse.c parses them);
#   tests/fmt/     the formatter's own inputs, untidy on purpose (their .out are formatted);
#   files that do not parse (tests of broken input).
# tests/plans/*.json and tests/run/*.out were regenerated when the files were formatted
# (plans record "loc" positions). The ```flow blocks of docs/*.md and README.md that parse
# are formatted too (fragments that do not parse are left as they are).
BUILD=${BUILD:-build}
FLOWC=${FLOWC:-$(pwd)/$BUILD/bin/flowc}
T=$(mktemp -d /tmp/flow-fmt-XXXXXX)
trap 'rm -rf "$T"; rm -f ./*/.fmtcheck-$$.flow ./*/*/.fmtcheck-$$.flow ./*/*/*/.fmtcheck-$$.flow' EXIT INT TERM
pass() { echo "PASS fmt: $1"; }
fail() { echo "FAIL fmt: $1: $2"; }

# ---- goldens ----
for f in tests/fmt/*.flow; do
    [ -f "$f" ] || continue
    sh tests/harness/golden.sh run "$f"
done

# ---- every .flow of the repository ----
all=$(find . -name '*.flow' -not -path './tests/errors/*' -not -path './build*' \
      -not -path './.git/*' -not -name '.fmtcheck-*' | sed 's|^\./||' | sort)
# A plan as JSON without what depends on positions or on the file itself.
cat > "$T/strip.py" <<'EOF'
import json, re, sys
def strip(v):
    if isinstance(v, dict):
        return {k: strip(x) for k, x in v.items() if k not in ("loc", "source", "source_sha256")}
    if isinstance(v, list):
        return [strip(x) for x in v]
    if isinstance(v, str):  # an instruction of the expression code: "... @line:col"
        return re.sub(r" @[0-9]+:[0-9]+$", "", v)
    return v
print(json.dumps(strip(json.load(sys.stdin)), indent=1, sort_keys=True))
EOF
nparse=0 nplans=0 bad_idem="" bad_plan="" unformatted="" refused=""
for f in $all; do
    if ! "$FLOWC" fmt - < "$f" > "$T/once" 2> "$T/err"; then
        # not parsing is fine (tests of broken input); fmt's own check failing is not
        grep -q "would change what this file means" "$T/err" && refused="$refused $f"
        continue
    fi
    nparse=$((nparse + 1))
    "$FLOWC" fmt - < "$T/once" > "$T/twice" 2> /dev/null
    cmp -s "$T/once" "$T/twice" || bad_idem="$bad_idem $f"
    case $f in tests/errors/*|tests/parse/*|tests/fmt/*) ;; *)
        cmp -s "$f" "$T/once" || unformatted="$unformatted $f" ;;
    esac
    # the plan: compiled beside the original, so imports and libraries resolve alike
    if "$FLOWC" --emit=json "$f" > "$T/a.json" 2> /dev/null; then
        copy=$(dirname "$f")/.fmtcheck-$$.flow
        cp "$T/once" "$copy"
        if "$FLOWC" --emit=json "$copy" > "$T/b.json" 2> /dev/null &&
            python3 "$T/strip.py" < "$T/a.json" > "$T/a.s" &&
            python3 "$T/strip.py" < "$T/b.json" > "$T/b.s" && cmp -s "$T/a.s" "$T/b.s"; then
            nplans=$((nplans + 1))
        else
            bad_plan="$bad_plan $f"
            diff "$T/a.s" "$T/b.s" 2> /dev/null | head -5 | sed 's/^/    /'
        fi
        rm -f "$copy"
    fi
done
if [ -z "$refused" ]; then pass "no file that parses is refused"
else fail "refused" "flowc fmt's check (same tree, same comments) failed for:$refused"; fi
[ "$nparse" -gt 50 ] || fail "files" "only $nparse .flow files parse (expected the repository's)"
if [ -z "$bad_idem" ]; then pass "idempotent over $nparse files"
else fail "idempotent" "fmt(fmt(x)) != fmt(x) for:$bad_idem"; fi
if [ -z "$bad_plan" ]; then pass "same plan (positions aside) over $nplans files"
else fail "same plan" "the formatted file compiles to another plan:$bad_plan"; fi

# ---- --check, exit codes, refusal, rewrite ----
printf 'flow  main( ) -> int {\n  return 1 # one\n}\n' > "$T/messy.flow"
printf 'flow main() -> int {\n    return 1  # one\n}\n' > "$T/tidy.flow"
printf 'flow main() -> int {\n    retrun 1\n}\n' > "$T/broken.flow"
cp "$T/messy.flow" "$T/messy.orig"
cp "$T/broken.flow" "$T/broken.orig"

out=$("$FLOWC" fmt --check "$T/tidy.flow" 2>&1); code=$?
[ "$code" = 0 ] && [ -z "$out" ] && pass "--check on a formatted file: exit 0, silent" ||
    fail "--check tidy" "exit $code, output '$out'"
out=$("$FLOWC" fmt --check "$T/tidy.flow" "$T/messy.flow" 2> /dev/null); code=$?
[ "$code" = 1 ] && [ "$out" = "$T/messy.flow" ] && cmp -s "$T/messy.flow" "$T/messy.orig" &&
    pass "--check: exit 1, names the file to format, writes nothing" ||
    fail "--check messy" "exit $code, output '$out'"
"$FLOWC" fmt "$T/broken.flow" > "$T/out" 2> "$T/err"; code=$?
[ "$code" = 2 ] && cmp -s "$T/broken.flow" "$T/broken.orig" &&
    grep -q "broken.flow:2:5: error" "$T/err" && grep -q "not formatted (it does not parse)" "$T/err" &&
    pass "a file that does not parse: exit 2, the compiler's diagnostic, left untouched" ||
    { fail "broken" "exit $code"; head -5 "$T/err"; }
"$FLOWC" fmt --check "$T/broken.flow" "$T/messy.flow" > /dev/null 2>&1; code=$?
[ "$code" = 2 ] && pass "--check: a parse error (2) outranks a file to format (1)" ||
    fail "--check broken" "exit $code"

chmod 640 "$T/messy.flow"
"$FLOWC" fmt "$T/messy.flow" > "$T/out" 2>&1; code=$?
mode=$(stat -c %a "$T/messy.flow")
left=$(ls -A "$T" | grep -c '^\.')
[ "$code" = 0 ] && cmp -s "$T/messy.flow" "$T/tidy.flow" && [ "$mode" = 640 ] && [ "$left" = 0 ] &&
    [ ! -s "$T/out" ] && pass "rewrite in place: formatted, mode 640 kept, no temporary left" ||
    fail "rewrite" "exit $code, mode $mode, $left temporaries, $(head -3 "$T/out")"
cp "$T/messy.orig" "$T/target.flow"
ln -s target.flow "$T/link.flow"
"$FLOWC" fmt "$T/link.flow" > /dev/null 2>&1; code=$?
[ "$code" = 0 ] && [ -L "$T/link.flow" ] && cmp -s "$T/target.flow" "$T/tidy.flow" &&
    pass "through a symbolic link: the file it names is rewritten, the link stays" ||
    fail "symlink" "exit $code"
before=$(stat -c %Y.%i "$T/tidy.flow")
"$FLOWC" fmt "$T/tidy.flow" > /dev/null 2>&1
[ "$(stat -c %Y.%i "$T/tidy.flow")" = "$before" ] && pass "a formatted file is not rewritten" ||
    fail "untouched" "tidy.flow was rewritten"

out=$("$FLOWC" fmt - < "$T/messy.orig"); code=$?
[ "$code" = 0 ] && [ "$out" = "$(cat "$T/tidy.flow")" ] && pass "stdin to stdout" ||
    fail "stdin" "exit $code"
"$FLOWC" fmt --check - < "$T/messy.orig" > /dev/null 2>&1; code=$?
[ "$code" = 1 ] && pass "--check on stdin: exit 1" || fail "--check stdin" "exit $code"

"$FLOWC" fmt > /dev/null 2>&1; c1=$?
"$FLOWC" fmt --bogus "$T/tidy.flow" > /dev/null 2>&1; c2=$?
"$FLOWC" fmt "$T/nonexistent.flow" > /dev/null 2>&1; c3=$?
"$FLOWC" fmt "$T" > /dev/null 2>&1; c4=$?
[ "$c1$c2$c3$c4" = 2222 ] && pass "usage and I/O errors: exit 2" ||
    fail "usage" "no file $c1, unknown option $c2, missing file $c3, a directory $c4"

# comments: the same comment lines, in the same order, over every golden input
ok=1
for f in tests/fmt/*.flow; do
    "$FLOWC" fmt - < "$f" | grep -o '#.*' | sed 's/[[:space:]]*$//' > "$T/c2"
    grep -o '#.*' "$f" | sed 's/[[:space:]]*$//' > "$T/c1"
    cmp -s "$T/c1" "$T/c2" || { ok=0; fail "comments" "$f: $(diff "$T/c1" "$T/c2" | head -3)"; }
done
[ "$ok" = 1 ] && pass "comments kept, in order (tests/fmt)"

# ---- the repository is formatted ----
if [ -z "$unformatted" ]; then pass "every .flow of the repository is formatted"
else
    fail "formatted" "not in flowc fmt's layout:$unformatted (fix: $BUILD/bin/flowc fmt$unformatted)"
fi
# the docs' ```flow blocks that parse (fragments do not) are formatted too
cat > "$T/docs.py" <<'EOF'
import re, subprocess, sys
bad = []
for path in sys.argv[2:]:
    s = open(path).read()
    for m in re.finditer(r"^```flow\n(.*?)^```$", s, re.S | re.M):
        r = subprocess.run([sys.argv[1], "fmt", "-"], input=m.group(1).encode(), capture_output=True)
        if r.returncode == 0 and r.stdout.decode() != m.group(1):
            bad.append("%s:%d" % (path, s.count("\n", 0, m.start()) + 1))
print(" ".join(bad))
EOF
bad=$(python3 "$T/docs.py" "$FLOWC" docs/*.md README.md examples/*/README.md 2> /dev/null)
if [ -z "$bad" ]; then pass "the docs' flow blocks that parse are formatted"
else fail "docs" "flow blocks not in flowc fmt's layout (format each with flowc fmt -): $bad"; fi
