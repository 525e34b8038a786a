#!/bin/sh
# jit.sh — lambdas: JIT against the interpreter against a hand-written C loop.
#   len(range(N).map(x => x * 3 + 1).filter(x => x % 7 == 0)), N = 10,000,000
# Whole flowrun processes, medians of 5 (CPU ms); "work" = the run minus the same
# plan at N = 0 (start-up, plan load, JIT compilation). Also: the JIT's start-up
# cost per plan (FLOW_JIT_STATS), and the per-call cost of a trivial C task: a
# direct call, ffi_call (cif prepared once) and the JIT's direct-call thunk (ns;
# from test_jit's test_thunks).
BUILD=${BUILD:-build}
FLOWC=$(pwd)/$BUILD/bin/flowc; FLOWRUN=$(pwd)/$BUILD/bin/flowrun
N=${JIT_BENCH_N:-10000000}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/m.flow" <<'FLOW'
flow main(n: int = 0) -> int {
    return len(range(n).map(x => x * 3 + 1).filter(x => x % 7 == 0))
}
FLOW
"$FLOWC" -o "$tmp/m.plan" "$tmp/m.flow" || exit 1

cat > "$tmp/floor.c" <<'C'
/* the floor: the same computation as a plain C loop (overflow checks included, as
 * the language has them) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) {
    int64_t n = argc > 1 ? atoll(argv[1]) : 0, count = 0;
    for (int64_t x = 0; x < n; x++) {
        int64_t y;
        if (__builtin_mul_overflow(x, 3, &y) || __builtin_add_overflow(y, 1, &y)) return 1;
        count += y % 7 == 0;
    }
    printf("%lld\n", (long long)count);
    return 0;
}
C
cat > "$tmp/call.c" <<'C'
/* per-call cost of a trivial task function: direct call vs ffi_call (cif prepared once) */
#include <ffi.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
__attribute__((noinline)) int64_t add1(int64_t x) { return x + 1; }
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e9 + t.tv_nsec; }
int main(void) {
    enum { N = 20000000 };
    int64_t (*volatile fp)(int64_t) = add1;
    int64_t s = 0;
    double t0 = now();
    for (int64_t i = 0; i < N; i++) s += fp(i);
    double t1 = now();
    ffi_cif cif; ffi_type *at[1] = {&ffi_type_sint64};
    ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 1, &ffi_type_sint64, at);
    for (int64_t i = 0; i < N; i++) { int64_t r; void *av[1] = {&i}; ffi_call(&cif, FFI_FN(add1), &r, av); s += r; }
    double t2 = now();
    printf("%.1f %.1f %lld\n", (t1 - t0) / N, (t2 - t1) / N, (long long)(s & 1));
    return 0;
}
C
cc -O2 -o "$tmp/floor" "$tmp/floor.c" || exit 1
cc -O2 -o "$tmp/call" "$tmp/call.c" -lffi || exit 1

# CPU time (perf's task-clock: the machine is shared, wall time is noisy), else wall
if perf stat -x, -e task-clock true > /dev/null 2>&1; then
    clock="CPU ms (perf task-clock)"
    ms() { perf stat -x, -e task-clock "$@" 2>&1 > /dev/null | awk -F, '/task-clock/ { printf "%d\n", $1 + 0.5 }'; }
else
    clock="wall ms"
    ms() { s=$(date +%s%N); "$@" > /dev/null 2>&1; e=$(date +%s%N); echo $(( (e - s) / 1000000 )); }
fi
median5() { for i in 1 2 3 4 5; do ms "$@"; done | sort -n | sed -n 3p; }
run() { "$FLOWRUN" "$tmp/m.plan" --executor inline --progress none --state "$tmp/state" "$@"; }

want=$( "$tmp/floor" "$N" )
got_jit=$(run --param n="$N"); got_int=$(run --no-jit --param n="$N")
if [ "$got_jit" != "$want" ] || [ "$got_int" != "$want" ]; then
    echo "jit: results differ: C $want, JIT $got_jit, interpreter $got_int"; exit 1
fi
R="$FLOWRUN $tmp/m.plan --executor inline --progress none --state $tmp/state"
c=$(median5 "$tmp/floor" "$N")
j=$(median5 $R --param n="$N"); j0=$(median5 $R --param n=0)
i=$(median5 $R --no-jit --param n="$N"); i0=$(median5 $R --no-jit --param n=0)
jw=$((j - j0)); iw=$((i - i0)); [ "$jw" -lt 1 ] && jw=1; [ "$iw" -lt 1 ] && iw=1; [ "$c" -lt 1 ] && c=1
echo "len(range($N).map(x => x * 3 + 1).filter(x => x % 7 == 0)) = $want   [$clock, medians of 5]"
echo "  C loop (floor)        $c ms"
echo "  flowrun, JIT          $j ms  (work $jw ms; start-up $j0 ms)"
echo "  flowrun, --no-jit     $i ms  (work $iw ms; start-up $i0 ms)"
awk -v c="$c" -v j="$jw" -v i="$iw" 'BEGIN {
    printf "  JIT work / C loop     %.1fx (target <= 3x)\n", j / c
    printf "  interpreter / JIT     %.1fx (target >= 10x)\n", i / j }'
stats=$(cd "$tmp" && FLOW_JIT_STATS=1 "$FLOWRUN" m.plan --executor inline --progress none 2>&1 >/dev/null)
echo "  JIT start-up per plan: $((j0 - i0)) ms ($clock: flowrun at n = 0 with the JIT minus without)"
echo "    FLOW_JIT_STATS (wall): ${stats#flowrun: jit: }"
if [ -x "$BUILD/tests/test_jit" ]; then
    line=$(TEST_JIT_ONLY=test_thunks "$BUILD/tests/test_jit" 2>&1 | grep "per call")
    echo "  $line"
else
    set -- $("$tmp/call")
    echo "  per call of a trivial C function: direct $1 ns, ffi_call $2 ns (build the unit tests for the JIT thunk)"
fi
