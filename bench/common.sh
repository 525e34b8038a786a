# bench/common.sh — helpers shared by the scheduler benchmarks (sourced, not run).
#   median V...        the median of numbers
#   timed OUT CMD...   runs CMD, appends "seconds peak_kib" to OUT (wall clock, GNU time's peak RSS)
ROOT=$(cd "$(dirname "$0")" && pwd)
while [ "$ROOT" != / ] && [ ! -f "$ROOT/Makefile" ]; do ROOT=$(dirname "$ROOT"); done
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
FLOWC=${FLOWC:-$BUILD/bin/flowc}
FLOWRUN=${FLOWRUN:-$BUILD/bin/flowrun}
LIBSCHED=$ROOT/tests/lib/libsched.so
RUNS=${RUNS:-3}

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
timed() {
    out=$1; shift
    t0=$(date +%s%N)
    /usr/bin/time -f '%M' -o "$out.rss" "$@" > /dev/null 2>> "$out.err"
    t1=$(date +%s%N)
    echo "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }') $(tail -1 "$out.rss")" >> "$out"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f", a / b; else print "-" }'; }
