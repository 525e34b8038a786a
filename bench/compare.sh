#!/bin/sh
# compare.sh — one build against another on the scheduler's and the recorder's workloads,
# interleaved, so a redesign can show it made nothing slower (issue 12: "none slower by
# more than noise"; at least 7 pairs, medians within 3 %, load quoted).
#
# Usage: sh bench/compare.sh BEFORE_BUILD AFTER_BUILD
#   A build is a build directory (bin/flowc, bin/flowrun) inside a checkout whose
#   tests/lib holds the task libraries: `make all testlibs` there. Each side compiles its
#   own plans with its own flowc against its own task libraries.
#   From `make bench`: BENCH_BEFORE=DIR names the before build, the after build is $BUILD
#   (without BENCH_BEFORE this benchmark is skipped).
#   env: PAIRS (default 7; fewer is a dry run, not a figure to quote), W1_N (1000000),
#        W2_N (1000), DIR_N (100000; the tree is made once and kept in AFTER/bench/).
#
# The workloads, each as bench/w1.sh, bench/w2.sh and bench/state.sh run them:
#   w1      W1 inline -j 2, N = W1_N, history on (a fresh --state each run), --no-cache
#   w2      W2 process executor -j 2, depth-first, N = W2_N: time to the first complete
#           chain and total (a fresh --state each run)
#   no-op   count_lines over DIR_N files + a sum, inline -j 2: the re-run with everything
#           recorded (each side's state made once, before the pairs)
# Design: a pair is one run of a workload on each side, back to back, the order swapped
# every other pair (so neither side always runs on a warmer machine); the pairs of all
# workloads are interleaved in one loop, so drift in the machine's speed touches both
# sides alike. Every run's answer is checked. Printed per figure: each side's median
# (and min-max), the ratio of the medians after/before, and the median of the pairs'
# own ratios (the steadier of the two on a busy machine); the load average at start and
# end. Wall time is from date(1), CPU time (user + sys) from /usr/bin/time.
. "$(dirname "$0")/common.inc"

if [ $# -eq 0 ] && [ -n "$BENCH_BEFORE" ]; then
    set -- "$BENCH_BEFORE" "$BUILD"
elif [ $# -eq 0 ]; then
    echo "compare: skipped (make bench BENCH_BEFORE=DIR compares the build DIR with this one)"
    exit 0
fi
[ $# -eq 2 ] || { echo "usage: sh bench/compare.sh BEFORE_BUILD AFTER_BUILD" >&2; exit 2; }
PAIRS=${PAIRS:-7}; W1_N=${W1_N:-1000000}; W2_N=${W2_N:-1000}; DIR_N=${DIR_N:-100000}

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
status=0
load() { cut -d' ' -f1-3 /proc/loadavg; }

# side NAME BUILD — check a build and compile its plans into $tmp/NAME/
side() {
    b=$(cd "$2" 2> /dev/null && pwd) || { echo "compare: no build directory $2" >&2; exit 2; }
    r=$b; while [ "$r" != / ] && [ ! -f "$r/Makefile" ]; do r=$(dirname "$r"); done
    d=$tmp/$1; mkdir -p "$d"
    for f in "$b/bin/flowc" "$b/bin/flowrun" "$r/tests/lib/libsched.so" "$r/tests/lib/libstatetasks.so"; do
        [ -e "$f" ] || { echo "compare: $1: no $f (make all testlibs in $r)" >&2; exit 2; }
    done
    echo "$b/bin/flowrun" > "$d/flowrun"
    cat > "$d/w.flow" << FLOW
library s = "$r/tests/lib/libsched.so"
task inc(x: int) -> int = s.inc
task sum(xs: [int]) -> int = s.sum
task stage(x: int, name: str, log: str, ms: int) -> int = s.stage
flow w1(n: int) -> int {
    return sum(inc.expand(x = range(n)))
}
flow w2(log: str, n: int = 1000, ms: int = 1) -> int {
    let a = stage.partial(name = "a", log = log, ms = ms).expand(x = range(n))
    let b = stage.partial(name = "b", log = log, ms = ms).expand(x = a)
    let c = stage.partial(name = "c", log = log, ms = ms).expand(x = b)
    return sum(c)
}
FLOW
    cat > "$d/dir.flow" << FLOW
library s = "$r/tests/lib/libstatetasks.so"
task count_lines(f: path) -> int = s.count_lines with {max_map: $DIR_N}
task sum(xs: [int]) -> int = s.sum
flow dirsum(root: dir) -> int {
    return sum(count_lines.expand(f = files(root, "*.txt")))
}
FLOW
    "$b/bin/flowc" -o "$d/w.plan" "$d/w.flow" && "$b/bin/flowc" -o "$d/dir.plan" "$d/dir.flow" ||
        { echo "compare: $1: the plans do not compile" >&2; exit 2; }
    echo "$1: $b"
}

# measure SIDE FIG WANT CMD... — runs CMD; appends "wall cpu" to $tmp/SIDE/FIG; checks stdout
measure() {
    s=$1; fig=$2; want=$3; shift 3
    t0=$(date +%s%N)
    /usr/bin/time -f '%U %S' -o "$tmp/$s/time" "$@" > "$tmp/$s/out" 2>> "$tmp/$s/err"
    t1=$(date +%s%N)
    echo "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", (b - a) / 1e9 }') $(tail -1 "$tmp/$s/time" | awk '{ print $1 + $2 }')" >> "$tmp/$s/$fig"
    got=$(cat "$tmp/$s/out")
    [ "$got" = "$want" ] || { echo "compare: $s $fig: wrong result '$got' (want $want): $(tail -2 "$tmp/$s/err" | tr '\n' ' ')"; status=1; }
    T0=$t0
}

w1() { # SIDE
    rm -rf "$tmp/$1/state"
    measure "$1" w1 "$W1_WANT" "$(cat "$tmp/$1/flowrun")" "$tmp/$1/w.plan" --flow w1 --executor inline \
        -j 2 --progress none --max-map "$W1_N" --param n="$W1_N" --state "$tmp/$1/state" --no-cache
}
w2() { # SIDE — the total as measured, the first chain from the stages' log
    rm -rf "$tmp/$1/state" "$tmp/$1/w2.log"
    measure "$1" w2 "$W2_WANT" "$(cat "$tmp/$1/flowrun")" "$tmp/$1/w.plan" --flow w2 --executor process \
        -j 2 --schedule depth --progress none --max-map 100000 --param log="$tmp/$1/w2.log" \
        --param n="$W2_N" --state "$tmp/$1/state"
    awk -v t0="$T0" '$1 == "c" { printf "%.4f\n", $3 / 1000 - t0 / 1e9; exit }' "$tmp/$1/w2.log" >> "$tmp/$1/w2first"
}
noop() { # SIDE
    measure "$1" noop "$DIR_WANT" "$(cat "$tmp/$1/flowrun")" "$tmp/$1/dir.plan" --executor inline \
        -j 2 --progress none --param root="$TREE" --state "$tmp/$1/dstate"
}

echo "compare: before/after, $PAIRS interleaved pairs; load at start $(load)"
side before "$1"
side after "$2"
[ "$PAIRS" -ge 7 ] || echo "compare: only $PAIRS pairs: a dry run, not a figure to quote (PAIRS >= 7)"
W1_WANT=$(awk -v n="$W1_N" 'BEGIN { printf "%.0f", n * (n - 1) / 2 + n }')
W2_WANT=$((W2_N * (W2_N - 1) / 2))
TREE=$(cd "$2" && pwd)/bench/tree$DIR_N
mkdir -p "$(dirname "$TREE")"
make_tree "$TREE" "$DIR_N" 100
DIR_WANT=$(tree_total "$DIR_N")
for s in before after; do # the no-op's state: one first run each, not timed
    measure "$s" first "$DIR_WANT" "$(cat "$tmp/$s/flowrun")" "$tmp/$s/dir.plan" --executor inline \
        -j 2 --progress none --param root="$TREE" --state "$tmp/$s/dstate"
done

i=0
while [ $i -lt "$PAIRS" ]; do
    if [ $((i % 2)) = 0 ]; then a=before; b=after; else a=after; b=before; fi
    for w in w1 w2 noop; do
        $w $a
        $w $b
    done
    i=$((i + 1))
done

# report LABEL FILE COLUMN — the figure's medians, min-max, ratios
report() {
    for s in before after; do awk -v c="$3" '{ print $c }' "$tmp/$s/$2" > "$tmp/$s/$2.col$3"; done
    mb=$(median $(cat "$tmp/before/$2.col$3")); ma=$(median $(cat "$tmp/after/$2.col$3"))
    rng() { sort -g "$1" | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.3f-%.3f", lo, hi }'; }
    pr=$(paste "$tmp/before/$2.col$3" "$tmp/after/$2.col$3" | awk '$1 > 0 { print $2 / $1 }')
    mp=$(median $pr)
    printf '%-24s before %8.3f s (%s)  after %8.3f s (%s)  after/before %.3f  pairs %.3f\n' \
        "$1" "$mb" "$(rng "$tmp/before/$2.col$3")" "$ma" "$(rng "$tmp/after/$2.col$3")" \
        "$(awk -v a="$ma" -v b="$mb" 'BEGIN { print (b > 0) ? a / b : 0 }')" "$mp"
}
echo "medians of $PAIRS pairs (min-max), ratio of the medians and median of the pairs' ratios:"
report "w1 N=$W1_N wall" w1 1
report "w1 N=$W1_N cpu" w1 2
report "w2 N=$W2_N first chain" w2first 1
report "w2 N=$W2_N total wall" w2 1
report "no-op N=$DIR_N wall" noop 1
report "no-op N=$DIR_N cpu" noop 2
echo "compare: load at end $(load)"
exit $status
