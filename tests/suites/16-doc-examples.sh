#!/bin/sh
# Every C example in the documentation compiles against the built flow.h, and
# every whole program among them links against the built libflow and runs
# without crashing. Examples are taken from:
#   - runtime/include/flow.h: a run of comment lines indented by four or more
#     spaces after " * " (blank comment lines inside are part of it);
#   - docs/*.md and README.md: ```c fenced blocks.
# A block with a main() is a whole program: compiled as it stands (its own
# #includes), linked with -lflow (and, when it names flow_plan_data, with the
# plan bytes `flowc --emit=c` writes for a small word-count plan), and run in
# an empty folder: any exit status is fine (it may want files that are not
# there), a signal or a sanitizer report is not. Any other block is a piece of
# a task library: compiled (-c) after the usual includes (flow.h, stdio.h,
# stdlib.h, string.h), or, failing that, as statements inside a function. A broken example is "FAIL doc-examples: FILE:LINE: why",
# LINE being the block's first line.
ROOT=$(pwd)
T=$(mktemp -d /tmp/flow-docex-XXXXXX)
trap 'rm -rf "$T"' EXIT INT TERM
CC=${CC:-cc}
SAN=""
[ -n "$SANITIZED" ] && SAN="-fsanitize=address,undefined"
INC="$ROOT/$BUILD/include"
LIB="$ROOT/$BUILD/lib"
CFLAGS_EX="-std=gnu11 -Wall -Wextra -Werror -Wno-unused-function -Wno-unused-parameter -I$INC"

pass() { echo "PASS doc-examples: $1"; }
fail() { echo "FAIL doc-examples: $1: $2"; }

if [ ! -f "$INC/flow.h" ] || [ ! -f "$LIB/libflow.so" ]; then
    fail setup "no $BUILD/include/flow.h or $BUILD/lib/libflow.so (make all first)"
    exit 0
fi

# extract: writes $T/ex/N.c and $T/ex/N.where ("FILE:LINE") per block
mkdir -p "$T/ex"
awk -v out="$T/ex" '
    function start(file, line) { n++; f = out "/" n ".c"; print file ":" line > (out "/" n ".where"); close(out "/" n ".where") }
    FNR == 1 { inblk = 0; fence = 0 }
    # flow.h comments: " *     code"
    FILENAME ~ /\.h$/ {
        if ($0 ~ /^ \*     /) {
            if (!inblk) { start(FILENAME, FNR); inblk = 1 }
            line = $0; sub(/^ \*     /, "", line); print line > f; next
        }
        if (inblk && $0 ~ /^ \*[ \t]*$/) { print "" > f; next }
        if (inblk) { inblk = 0; close(f) }
        next
    }
    # markdown: ```c ... ```
    /^```c[ \t]*$/ { start(FILENAME, FNR); fence = 1; next }
    fence && /^```/ { fence = 0; close(f); next }
    fence { print > f }
' runtime/include/flow.h docs/*.md README.md

# the plan a whole program may embed (flow_plan_data): word counting over a folder
cat > "$T/wc.flow" <<'EOF'
library wc = "libwc.so"
task count_words(root: dir) -> int = wc.count_words
flow words(root: dir = ".") -> int {
    return count_words(root)
}
EOF
if ! "$FLOWC" "$T/wc.flow" --emit=c > "$T/plan.c" 2> "$T/flowc.err"; then
    fail "setup" "flowc --emit=c: $(head -2 "$T/flowc.err")"
fi

n=0
for c in "$T"/ex/*.c; do
    [ -f "$c" ] || continue
    n=$((n + 1))
    where=$(cat "${c%.c}.where")
    if grep -Eq '(^|[^A-Za-z0-9_])main[ \t]*\(' "$c"; then
        extra=""
        grep -q flow_plan_data "$c" && extra="$T/plan.c"
        if ! $CC $CFLAGS_EX $SAN "$c" $extra -L"$LIB" -Wl,-rpath,"$LIB" -lflow -o "${c%.c}.bin" \
                > "${c%.c}.err" 2>&1; then
            fail "$where" "does not compile or link: $(grep -m1 -E 'error|undefined' "${c%.c}.err")"
            continue
        fi
        mkdir -p "${c%.c}.run"
        (cd "${c%.c}.run" && timeout 30 "${c%.c}.bin" > out 2> err)
        code=$?
        if [ "$code" -ge 124 ]; then
            fail "$where" "the program ended with status $code: $(tail -2 "${c%.c}.run/err")"
        elif grep -Eq 'AddressSanitizer|runtime error:|LeakSanitizer' "${c%.c}.run/err"; then
            fail "$where" "sanitizer: $(grep -m1 -E 'AddressSanitizer|runtime error:' "${c%.c}.run/err")"
        else
            pass "$where (program, exit $code)"
        fi
    else
        { printf '#include <flow.h>\n#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n'
          printf '#line 1 "%s"\n' "$where"
          cat "$c"; } > "${c%.c}.frag.c"
        # statements (no declarations) are tried again inside a function body
        { printf '#include <flow.h>\n#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n'
          printf 'void doc_example(void);\nvoid doc_example(void) {\n#line 1 "%s"\n' "$where"
          cat "$c"; printf '}\n'; } > "${c%.c}.body.c"
        if $CC $CFLAGS_EX -fPIC -c "${c%.c}.frag.c" -o "${c%.c}.o" > "${c%.c}.err" 2>&1; then
            pass "$where"
        elif $CC $CFLAGS_EX -fPIC -c "${c%.c}.body.c" -o "${c%.c}.o" > "${c%.c}.err2" 2>&1; then
            pass "$where (statements)"
        else
            fail "$where" "does not compile: $(grep -m1 error "${c%.c}.err2")"
        fi
    fi
done
[ "$n" -gt 0 ] || fail "extract" "no C example found (the extraction is broken)"
# the two sources the issue names must give at least one example each
grep -q '^runtime/include/flow.h:' "$T"/ex/*.where 2>/dev/null || fail "extract" "no example found in flow.h"
grep -q '^docs/runtime-abi.md:' "$T"/ex/*.where 2>/dev/null || fail "extract" "no example found in docs/runtime-abi.md"
