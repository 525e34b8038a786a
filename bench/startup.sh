#!/bin/sh
# startup.sh — how long flowrun takes to start and stop, against `make -q` on a
# one-rule Makefile measured in the same rounds (the floor a build tool's start-up
# is judged against).
#   version    flowrun --version
#   one-task   a plan with one C task and no lambdas, inline executor, fresh state
#   one-task re-run  the same in the state directory it left (served from the cache):
#              what a user's second run pays, and the row judged against the target
#   lambdas    the same with a map and a filter (the JIT module and LLVM are loaded)
#   make -q    make -q on a Makefile whose one target is up to date
# The commands run in turn, one of each per round (interleaved, so that drift of the
# machine's speed touches every row alike), ROUNDS rounds after one warm-up round;
# wall-clock ms per bare process (bench/cputime.c: from its fork to its wait4, no shell
# and no `date` process inside the interval, which would add ≈ 3 ms to every row and
# flatter the ratios), medians, and each row's ratio to make -q. With
# FLOWRUN_BEFORE=/path/to/an/older/flowrun (or BEFORE=an older build dir) its rows are measured in the same rounds
# (before/after on the same machine at the same time). Then each flowrun row's peak RSS
# (/usr/bin/time) and whether LLVM was loaded (LD_DEBUG=files), and the targets of
# issue 13: a one-task plan starts in <= 3x make -q's time, in <= 15 MiB.
. "$(dirname "$0")/common.inc"
FLOWRUN_BEFORE=${FLOWRUN_BEFORE:-${BEFORE:+$BEFORE/bin/flowrun}} # BEFORE=DIR: a build dir, as bench/slow.sh
ROUNDS=${ROUNDS:-21}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

cat > "$tmp/one.c" <<'C'
#include <stdint.h>
int64_t inc(int64_t x) { return x + 1; }
C
cc -O2 -shared -fPIC -o "$tmp/libone.so" "$tmp/one.c" || exit 1
${CC:-cc} -O2 -o "$tmp/cputime" "$ROOT/bench/cputime.c" || exit 1
cat > "$tmp/one.flow" <<'F'
library o = "libone.so"
task inc(x: int) -> int = o.inc
flow main(n: int = 41) -> int {
    return inc(n)
}
F
cat > "$tmp/lam.flow" <<'F'
library o = "libone.so"
task inc(x: int) -> int = o.inc
flow main(n: int = 10) -> int {
    return inc(len(range(n).map(x => x * 3 + 1).filter(x => x % 7 == 0)))
}
F
(cd "$tmp" && "$FLOWC" one.flow && "$FLOWC" lam.flow) || exit 1
printf 'out: in\n\ttouch out\n' > "$tmp/Makefile"
touch "$tmp/in" && sleep 0.01 && touch "$tmp/out"

# name|command (run in $tmp, output discarded)
set -- "version|$FLOWRUN --version" \
    "one-task|$FLOWRUN one.plan --executor inline --progress none --state st" \
    "one-task re-run|$FLOWRUN one.plan --executor inline --progress none --state kept" \
    "lambdas|$FLOWRUN lam.plan --executor inline --progress none --state st"
if [ -n "$FLOWRUN_BEFORE" ]; then
    set -- "$@" "version (before)|$FLOWRUN_BEFORE --version" \
        "one-task (before)|$FLOWRUN_BEFORE one.plan --executor inline --progress none --state st" \
        "one-task re-run (before)|$FLOWRUN_BEFORE one.plan --executor inline --progress none --state keptb" \
        "lambdas (before)|$FLOWRUN_BEFORE lam.plan --executor inline --progress none --state st"
fi
set -- "$@" "make -q|make -q -f Makefile out"

cd "$tmp" || exit 1
"$FLOWRUN" one.plan --executor inline --progress none --state kept > /dev/null || exit 1
[ -n "$FLOWRUN_BEFORE" ] && "$FLOWRUN_BEFORE" one.plan --executor inline --progress none --state keptb > /dev/null
r=0
while [ $r -le "$ROUNDS" ]; do # round 0 is the warm-up
    i=0
    for row in "$@"; do
        i=$((i + 1))
        rm -rf st
        ./cputime ${row#*|} > /dev/null 2> err # bare: no shell's start-up in the figure
        [ $r -gt 0 ] && awk '/^cputime:/ { w = $2 } END { printf "%d\n", w * 1e6 }' err >> "t$i"
    done
    r=$((r + 1))
done
i=0
for row in "$@"; do i=$((i + 1)); done
base=$(median $(cat "t$i"))
echo "start-up, wall ms per process, median of $ROUNDS interleaved rounds (load $(cut -d' ' -f1-3 /proc/loadavg)):"
i=0
for row in "$@"; do
    i=$((i + 1))
    m=$(median $(cat "t$i"))
    printf '  %-20s %7.2f ms  (%s x make -q)\n' "${row%%|*}" "$(awk -v u="$m" 'BEGIN { print u / 1000 }')" \
        "$(ratio "$m" "$base")"
done
# peak RSS and LLVM of each flowrun row, and the targets
for row in "$@"; do
    case ${row%%|*} in make*|version*) continue ;; esac
    rm -rf st
    sh -c "exec /usr/bin/time -f %M -o rss ${row#*|}" > /dev/null 2>&1
    rm -rf st
    llvm=$(sh -c "LD_DEBUG=files exec ${row#*|}" 2>&1 | grep -c 'file=libLLVM')
    printf '  %-20s peak RSS %5.1f MiB, LLVM %s\n' "${row%%|*}" "$(awk -v k="$(tail -1 rss)" 'BEGIN { print k / 1024 }')" \
        "$([ "$llvm" -gt 0 ] && echo loaded || echo not loaded)"
done
m=$(median $(cat t3))
verdict() { awk -v a="$1" -v b="$2" 'BEGIN { r = a / b; printf "%.1fx make -q (target <= 3x: %s)", r, r <= 3 ? "met" : "MISSED" }'; }
echo "  one-task re-run: $(verdict "$m" "$base"); one-task on a fresh state: $(verdict "$(median $(cat t2))" "$base")"
