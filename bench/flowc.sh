#!/bin/sh
# flowc.sh — compile bench: flowc on a generated 20,000-line program (1,000 tasks,
# 200 flows, mapping and lambdas everywhere); median wall time of 5 runs, peak RSS,
# lines per second, against the target (under 0.3 s and 100 MiB).
BUILD=${BUILD:-build}
FLOWC=${FLOWC:-$BUILD/bin/flowc}
root=$(cd "$(dirname "$0")/.." && pwd)
dir=$BUILD/bench; mkdir -p "$dir"
src=$dir/flowc_bench.flow
python3 "$root/bench/gen_flowc_bench.py" "$root/tests/lib/libchk.so" "$src" > /dev/null || exit 1
lines=$(wc -l < "$src")
: > "$dir/flowc_times"
for i in 1 2 3 4 5; do
    if ! /usr/bin/time -f '%e %M' -o "$dir/flowc_one" "$FLOWC" -o "$dir/flowc_bench.plan" "$src" 2> "$dir/flowc_err"; then
        echo "flowc bench: flowc failed"; head -5 "$dir/flowc_err"; exit 1
    fi
    cat "$dir/flowc_one" >> "$dir/flowc_times"
done
sort -n "$dir/flowc_times" | awk -v lines="$lines" '
    { t[NR] = $1; if ($2 > rss) rss = $2 }
    END {
        med = t[3]; mib = rss / 1024
        lps = med > 0 ? lines / med : 0
        printf "flowc: %d lines in %.3f s (median of 5), %.0f lines/s, peak RSS %.1f MiB\n", lines, med, lps, mib
        printf "flowc: target < 0.300 s and < 100 MiB: %s\n", (med < 0.3 && mib < 100) ? "met" : "MISSED"
    }'
