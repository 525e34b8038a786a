#!/bin/sh
# startup.sh — how long flowrun takes to start and stop, against `make -q` on a
# one-rule Makefile measured in the same rounds (the floor a build tool's start-up
# is judged against).
#   version    flowrun --version
#   one-task   a plan with one C task and no lambdas, inline executor, fresh state
#   lambdas    the same with a map and a filter (the JIT module and LLVM are loaded)
#   make -q    make -q on a Makefile whose one target is up to date
# The commands run in turn, one of each per round (interleaved, so that drift of the
# machine's speed touches every row alike), ROUNDS rounds after one warm-up round;
# wall-clock ms per process, medians, and each row's ratio to make -q. With
# FLOWRUN_BEFORE=/path/to/an/older/flowrun its rows are measured in the same rounds
# (before/after on the same machine at the same time).
. "$(dirname "$0")/common.inc"
ROUNDS=${ROUNDS:-21}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

cat > "$tmp/one.c" <<'C'
#include <stdint.h>
int64_t inc(int64_t x) { return x + 1; }
C
cc -O2 -shared -fPIC -o "$tmp/libone.so" "$tmp/one.c" || exit 1
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
    "lambdas|$FLOWRUN lam.plan --executor inline --progress none --state st"
if [ -n "$FLOWRUN_BEFORE" ]; then
    set -- "$@" "version (before)|$FLOWRUN_BEFORE --version" \
        "one-task (before)|$FLOWRUN_BEFORE one.plan --executor inline --progress none --state st" \
        "lambdas (before)|$FLOWRUN_BEFORE lam.plan --executor inline --progress none --state st"
fi
set -- "$@" "make -q|make -q -f Makefile out"

cd "$tmp" || exit 1
r=0
while [ $r -le "$ROUNDS" ]; do # round 0 is the warm-up
    i=0
    for row in "$@"; do
        i=$((i + 1))
        rm -rf st
        t0=$(date +%s%N)
        sh -c "exec ${row#*|}" > /dev/null 2>&1
        t1=$(date +%s%N)
        [ $r -gt 0 ] && echo "$(((t1 - t0) / 1000))" >> "t$i"
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
