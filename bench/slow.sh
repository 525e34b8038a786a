#!/bin/sh
# slow.sh — slow tasks cheap (issue 13, target 4): N = 2,000 tasks of 1 ms at -j 2,
# flowrun (inline and process executors, history and cache on) against
# a plain C pool of two threads making the same 2,000 calls (bench/pool.c, built here).
#
# The task is libsched.so's nap(x, us): it sleeps, so it uses next to no CPU, and what
# a run spends is flowrun's own (its scheduler, executor, workers, history).
# Printed per runner: the median wall time, the median CPU time (user + system of the
# process and the workers it waited for: bench/cputime.c, wait4's rusage), the own CPU
# per instance, and the ratio of the wall median to the pool's.
#   own CPU per instance = ((CPU at N) - (CPU at 1)) / (N - 1), minus the same for the
#   pool (the tasks' own CPU: the sleep's system calls): start-up (loading the plan,
#   opening the state) is a per-run cost, not a per-instance one, and is printed apart:
#   the wall and CPU milliseconds of the one-instance run (1-inst ms/CPU).
# Runs are interleaved: each round runs every runner once at N and once at 1, the order
# rotated every round, so the machine's drift touches all alike; RUNS rounds (default
# 7), medians. The load average is printed at start and end: the machine may be shared.
# env: SLOW_N (2000), SLOW_US (1000), RUNS (7), JOBS (2); BEFORE=DIR adds the runners
#      "before inline" and "before process": the build DIR (bin/flowc, bin/flowrun) of
#      another checkout, interleaved with this one's (a before/after measurement).
. "$(dirname "$0")/common.inc"
[ -x "$FLOWRUN" ] && [ -f "$LIBSCHED" ] || { echo "slow: build first (make all testlibs)"; exit 1; }
N=${SLOW_N:-2000}; US=${SLOW_US:-1000}; JOBS=${JOBS:-2}; RUNS=${RUNS:-7}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
cat > "$tmp/slow.flow" <<FLOW
library s = "$LIBSCHED"
task nap(x: int, us: int) -> int = s.nap
task sum(xs: [int]) -> int = s.sum
flow slow(n: int = 2000, us: int = 1000) -> int {
    return sum(nap.partial(us = us).expand(x = range(n)))
}
FLOW
"$FLOWC" -o "$tmp/slow.plan" "$tmp/slow.flow" || exit 1
runners="inline process pool"
if [ -n "$BEFORE" ]; then
    "$BEFORE/bin/flowc" -o "$tmp/before.plan" "$tmp/slow.flow" || exit 1
    runners="before-inline before-process $runners"
fi
${CC:-cc} -O2 -o "$tmp/pool" "$ROOT/bench/pool.c" -ldl -lpthread || exit 1
${CC:-cc} -O2 -o "$tmp/cputime" "$ROOT/bench/cputime.c" || exit 1

status=0
verdict=""
one() { # RUNNER N — one run; appends "wall cpu" to $tmp/RUNNER.N
    who=$1; n=$2
    case $who in
        pool) set -- "$tmp/pool" "$LIBSCHED" nap "$n" "$JOBS" "$US" ;;
        before-*) rm -rf "$tmp/state"; cp -R "$tmp/before0" "$tmp/state"
           set -- "$BEFORE/bin/flowrun" "$tmp/before.plan" --executor "${who#before-}" -j "$JOBS" \
               --progress none --max-map "$n" --param n="$n" --param us="$US" --state "$tmp/state" ;;
        *) rm -rf "$tmp/state"; cp -R "$tmp/state0" "$tmp/state"
           set -- "$FLOWRUN" "$tmp/slow.plan" --executor "$who" -j "$JOBS" --progress none \
               --max-map "$n" --param n="$n" --param us="$US" --state "$tmp/state" ;;
    esac
    "$tmp/cputime" "$@" > "$tmp/out" 2> "$tmp/err"
    want=$((n * (n - 1) / 2))
    [ "$(cat "$tmp/out")" = "$want" ] ||
        { echo "slow: $who n=$n: wrong result '$(cat "$tmp/out")'"; tail -3 "$tmp/err"; status=1; }
    awk '/^cputime:/ { print $2, $3 }' "$tmp/err" >> "$tmp/$who.$n"
}
col() { median $(awk -v c="$2" '{ print $c }' "$1"); }

# a state directory made once (its creation, fsyncs included, is start-up cost: see
# bench/startup.sh), copied before each run: the runs record into an existing history
# with an empty cache, so every instance runs
"$FLOWRUN" "$tmp/slow.plan" --progress none --param n=0 --state "$tmp/state0" > /dev/null ||
    { echo "slow: cannot make the state directory"; exit 1; }
[ -z "$BEFORE" ] || "$BEFORE/bin/flowrun" "$tmp/before.plan" --progress none --param n=0 \
    --state "$tmp/before0" > /dev/null || { echo "slow: BEFORE cannot make its state"; exit 1; }
load0=$(cut -d' ' -f1-3 /proc/loadavg)
r=0; while [ $r -lt "$RUNS" ]; do
    # rotate the order by one runner each round
    order=$(echo $runners | awk -v r="$r" '{ for (i = 0; i < NF; i++) printf "%s ", $((i + r) % NF + 1) }')
    for who in $order; do one "$who" "$N"; one "$who" 1; done
    r=$((r + 1))
done
load1=$(cut -d' ' -f1-3 /proc/loadavg)

pool_wall=$(col "$tmp/pool.$N" 1)
pool_per=$(awk -v a="$(col "$tmp/pool.$N" 2)" -v b="$(col "$tmp/pool.1" 2)" -v n="$N" \
    'BEGIN { print (a - b) / (n - 1) }')
echo "slow: $N tasks of $US us at -j $JOBS, $RUNS interleaved rounds, medians (load $load0 -> $load1)"
printf '  %-14s %9s %9s %14s %14s %9s\n' runner "wall s" "CPU s" "1-inst ms/CPU" "own us/inst" "x pool"
for who in $runners; do
    wall=$(col "$tmp/$who.$N" 1); cpu=$(col "$tmp/$who.$N" 2); cpu1=$(col "$tmp/$who.1" 2)
    wall1=$(col "$tmp/$who.1" 1)
    own=$(awk -v a="$cpu" -v b="$cpu1" -v n="$N" -v p="$pool_per" \
        'BEGIN { printf "%.1f", ((a - b) / (n - 1) - p) * 1e6 }')
    [ $who = pool ] && own=$(awk -v p="$pool_per" 'BEGIN { printf "(%.1f)", p * 1e6 }')
    case $who in pool) name=pool ;; before-*) name="before ${who#before-}" ;; *) name="flow $who" ;; esac
    printf '  %-14s %9.3f %9.3f %14s %14s %9s\n' "$name" "$wall" "$cpu" \
        "$(awk -v w="$wall1" -v c="$cpu1" 'BEGIN { printf "%.1f/%.1f", w * 1000, c * 1000 }')" \
        "$own" "$(awk -v a="$wall" -v b="$pool_wall" 'BEGIN { printf "%.3f", a / b }')"
    case $who in pool) ;; *) verdict="$verdict $name: $(awk -v o="$own" -v a="$wall" -v b="$pool_wall" \
        'BEGIN { printf "%s/%s;", (o <= 10 ? "met" : "NOT met"), (a / b <= 1.05 ? "met" : "NOT met") }')" ;; esac
done
echo "  (own us/inst: flowrun's CPU per instance beyond the pool's, which is the tasks' own, in parentheses)"
echo "  target (issue 13, 4): own CPU <= 10 us/inst under both executors, wall <= 1.05x pool"
echo "  own/wall:$verdict"
exit $status
