#!/bin/sh
# What flowrun and libflow.so show to the code they load or are loaded by: only the
# documented API (docs/runtime-abi.md, "Visibility").
#
# 1. flowrun's dynamic symbol table is exactly the task ABI of flow.h (the functions
#    between "inside a task" and "embedding"), libflow.so's is flow_* only.
# 2. A task library whose private helpers carry the name of every global symbol of
#    flowrun's and flowc's objects still calls its own helpers, under the inline and
#    the process executor. The names are read from the object files with nm when
#    the test runs, so the list never goes stale; names some library flowrun links
#    (libc, libffi, LLVM, ...) also defines are left out — those bind to that
#    library whatever flowrun does. Functions and data both: a helper returns
#    x * 7 + i, a global holds i, and the task checks every one.
T=$(mktemp -d /tmp/flow-symbols-XXXXXX)
trap 'rm -rf "$T"' EXIT INT TERM
export FLOW_STATE="$T/state"
pass() { echo "PASS symbols:$1"; }
fail() { echo "FAIL symbols:$1: $2"; }
CC=${CC:-cc}
BUILD=${BUILD:-build}

command -v nm > /dev/null || { fail "setup" "nm not found (binutils; make deps installs it)"; exit 0; }

# defined dynamic symbols of a binary, one name a line, sorted
dynsyms() { nm -D --defined-only "$1" 2> /dev/null | awk 'NF == 3 { sub(/@.*/, "", $3); print $3 }' | sort -u; }

# ---- 1. what is exported ------------------------------------------------------------------
sed -n '/inside a task/,/embedding the runtime/p' runtime/include/flow.h |
    sed -n 's/^FLOW_API [^(]*[ *]\(flow_[a-z_]*\)(.*/\1/p' | sort -u > "$T/abi"
[ -s "$T/abi" ] || fail "abi-list" "no FLOW_API functions found in the task section of flow.h"
dynsyms "$FLOWRUN" > "$T/flowrun.dyn"
if cmp -s "$T/abi" "$T/flowrun.dyn"; then
    pass "flowrun exports exactly the task ABI ($(wc -l < "$T/abi") functions)"
else
    fail "flowrun-exports" "flowrun's dynamic symbols differ from flow.h's task ABI: $(diff "$T/abi" "$T/flowrun.dyn" | grep '^[<>]' | head -5 | tr '\n' ' ')"
fi
so=$(dirname "$FLOWRUN")/../lib/libflow.so
if [ -e "$so" ]; then
    dynsyms "$so" > "$T/so.dyn"
    other=$(grep -v '^flow_' "$T/so.dyn" | head -5 | tr '\n' ' ')
    sed -n 's/^FLOW_API [^(]*[ *]\(flow_[a-z_]*\)(.*/\1/p' runtime/include/flow.h | sort -u > "$T/api"
    if [ -z "$other" ] && cmp -s "$T/api" "$T/so.dyn"; then
        pass "libflow.so exports exactly flow.h's FLOW_API ($(wc -l < "$T/api") functions)"
    else
        fail "libflow-exports" "not flow_*: '$other'; against flow.h: $(diff "$T/api" "$T/so.dyn" | grep '^[<>]' | head -5 | tr '\n' ' ')"
    fi
fi

# ---- 2. a task library named like flowrun's insides ----------------------------------------
objs=$(ls "$BUILD"/obj/runtime/*/*.o "$BUILD"/obj/compiler/*.o "$BUILD"/obj/gen/*.o 2> /dev/null)
[ -n "$objs" ] || { fail "setup" "no object files under $BUILD/obj"; exit 0; }
# what flowrun's shared libraries define: not ours to hide
for l in $(ldd "$FLOWRUN" 2> /dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
    dynsyms "$l"
done | sort -u > "$T/system"
# global names of our objects: T/W functions, D/B/R/C data (not flow_*, main, _*, x.y)
nm --defined-only -g $objs 2> /dev/null | awk 'NF == 3 { print $2, $3 }' |
    grep -Ev ' (flow_|main$|_)|\.' | sort -u -k2,2 > "$T/ours"
awk '{ print $2 }' "$T/ours" | sort -u | comm -23 - "$T/system" > "$T/names"
n=$(wc -l < "$T/names")
if [ "$n" -lt 50 ]; then
    fail "names" "only $n internal names found in $BUILD/obj (nm)"; exit 0
fi
{
    echo '#include <flow.h>'
    echo '#include <stdint.h>'
    i=0
    while read -r kind name; do
        grep -qx "$name" "$T/names" || continue
        i=$((i + 1))
        case $kind in
        T | W) echo "int64_t $name(int64_t x);"
               echo "int64_t $name(int64_t x) { return x * 7 + $i; }" ;;
        *) echo "int64_t $name = $i;" ;;
        esac
    done < "$T/ours"
    echo 'int64_t probe(int64_t x) {'
    i=0
    while read -r kind name; do
        grep -qx "$name" "$T/names" || continue
        i=$((i + 1))
        case $kind in
        T | W) echo "    if ($name(x) != x * 7 + $i) { flow_fail(\"helper $name: not the library's own\"); return 0; }" ;;
        *) echo "    if ($name != $i) { flow_fail(\"global $name: not the library's own\"); return 0; }" ;;
        esac
    done < "$T/ours"
    echo '    return 1;'
    echo '}'
    echo 'int64_t total(flow_list xs) {'
    echo '    int64_t s = 0;'
    echo '    for (int64_t k = 0; k < xs.len; k++) s += ((const int64_t *)xs.items)[k];'
    echo '    return s;'
    echo '}'
} > "$T/clash.c"
if ! $CC -O1 -g -shared -fPIC -Iruntime/include "$T/clash.c" -o "$T/libclash.so" 2> "$T/cc.err"; then
    fail "build" "the clashing task library does not build: $(head -3 "$T/cc.err")"; exit 0
fi
cat > "$T/clash.flow" <<'F'
library c = "libclash.so"
task probe(x: int) -> int = c.probe
task total(xs: [int]) -> int = c.total
flow main(n: int = 4) -> int {
    return total(probe.expand(x = range(n)))
}
F
if ! "$FLOWC" "$T/clash.flow" -o "$T/clash.plan" 2> "$T/flowc.err"; then
    fail "compile" "$(head -3 "$T/flowc.err")"; exit 0
fi
for ex in inline process; do
    out=$("$FLOWRUN" "$T/clash.plan" --executor "$ex" --no-cache --progress none 2> "$T/$ex.err")
    code=$?
    if [ "$code" = 0 ] && [ "$out" = 4 ]; then
        pass "a task library's $n helpers named like flowrun's internals stay its own [$ex]"
    else
        fail "clash [$ex]" "exit $code, output '$out': $(grep -v '^$' "$T/$ex.err" | head -3 | tr '\n' ' ')"
    fi
done
