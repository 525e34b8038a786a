#!/bin/sh
# W2 — depth-first: N = 1,000 elements x 3 chained stages of 1 ms tasks, then a
# reduce, at -j 2. Time to the first complete chain (element's third stage done)
# and total, depth-first (default) vs --schedule breadth. Medians of $RUNS runs.
. "$(dirname "$0")/common.inc"
[ -x "$FLOWRUN" ] && [ -f "$LIBSCHED" ] || { echo "w2: build first (make all testlibs)"; exit 1; }
N=${W2_N:-1000}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/w2.flow" <<FLOW
library s = "$LIBSCHED"
task stage(x: int, name: str, log: str, ms: int) -> int = s.stage
task sum(xs: [int]) -> int = s.sum
flow w2(log: str, n: int = 1000, ms: int = 1) -> int {
    let a = stage.partial(name = "a", log = log, ms = ms).expand(x = range(n))
    let b = stage.partial(name = "b", log = log, ms = ms).expand(x = a)
    let c = stage.partial(name = "c", log = log, ms = ms).expand(x = b)
    return sum(c)
}
FLOW
"$FLOWC" -o "$tmp/w2.plan" "$tmp/w2.flow" || exit 1
status=0
for ex in inline process; do
    for order in depth breadth; do
        : > "$tmp/first"; : > "$tmp/total"
        i=0; while [ $i -lt "$RUNS" ]; do
            rm -rf "$tmp/log" "$tmp/state" # a first run: nothing cached
            t0=$(($(date +%s%N) / 1000000))
            out=$("$FLOWRUN" "$tmp/w2.plan" --executor $ex -j 2 --schedule $order --progress none \
                --max-map 100000 --param log="$tmp/log" --param n="$N" --state "$tmp/state")
            t1=$(($(date +%s%N) / 1000000))
            [ "$out" = "$((N * (N - 1) / 2))" ] || { echo "w2: wrong result '$out'"; status=1; }
            awk -v t0="$t0" '$1 == "c" { print ($3 - t0) / 1000; exit }' "$tmp/log" >> "$tmp/first"
            echo "$t0 $t1" | awk '{ print ($2 - $1) / 1000 }' >> "$tmp/total"
            i=$((i + 1))
        done
        first=$(median $(cat "$tmp/first")); total=$(median $(cat "$tmp/total"))
        pct=$(awk -v f="$first" -v t="$total" 'BEGIN { printf "%.0f", 100 * f / t }')
        printf 'w2 %-7s %-7s N=%s  first chain %6.3f s (%3s%% of the run)  total %6.3f s\n' \
            $ex $order "$N" "$first" "$pct" "$total"
        echo "$ex $order $first $total" >> "${W2_RESULTS:-/dev/null}"
    done
done
exit $status
