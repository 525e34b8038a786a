#!/bin/sh
# W1 — fan-out / fan-in: N instances of a trivial C task (x + 1), then one sum.
#   inline executor, N = 1,000,000: target < 2 s wall and < 512 MiB peak
#   process executor, N = 100,000:  target < 2 s wall
# The runtime's own figure: each run on a fresh --state with --no-cache, so every
# instance runs and is recorded in the history but no cache key is computed or
# stored. W1 with the cache (cold and warm, target < 4 s) is bench/state.sh w1.
# Prints the medians of $RUNS runs and µs per instance.
. "$(dirname "$0")/common.inc"
[ -x "$FLOWRUN" ] && [ -f "$LIBSCHED" ] || { echo "w1: build first (make all testlibs)"; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
w1_flow "$LIBSCHED" > "$tmp/w1.flow"
"$FLOWC" -o "$tmp/w1.plan" "$tmp/w1.flow" || exit 1
status=0
w1_case() { # executor n target_s
    ex=$1; n=$2; target=$3
    rm -f "$tmp/t" "$tmp/t.err"
    i=0; while [ $i -lt "$RUNS" ]; do
        rm -rf "$tmp/state"
        timed "$tmp/t" "$FLOWRUN" "$tmp/w1.plan" --executor "$ex" -j 2 --progress none \
            --max-map "$n" --param n="$n" --state "$tmp/state" --no-cache
        i=$((i + 1))
    done
    want=$(awk -v n="$n" 'BEGIN { printf "%.0f", n * (n + 1) / 2 }')
    got=$("$FLOWRUN" "$tmp/w1.plan" --executor "$ex" -j 2 --progress none --max-map "$n" --param n="$n" --state "$tmp/state")
    [ "$got" = "$want" ] || { echo "w1 $ex: wrong result $got (want $want)"; status=1; }
    s=$(median $(awk '{print $1}' "$tmp/t"))
    kib=$(median $(awk '{print $2}' "$tmp/t"))
    us=$(awk -v s="$s" -v n="$n" 'BEGIN { printf "%.2f", s * 1e6 / n }')
    mib=$(awk -v k="$kib" 'BEGIN { printf "%.0f", k / 1024 }')
    ok=ok; awk -v s="$s" -v t="$target" 'BEGIN { exit !(s < t) }' || { ok=MISSED; status=1; }
    printf 'w1 %-7s N=%-8s %6.2f s  %5s MiB peak  %6s us/instance  (history on, no cache; target < %s s: %s)\n' \
        "$ex" "$n" "$s" "$mib" "$us" "$target" "$ok"
    echo "$ex $n $s" >> "${W1_RESULTS:-/dev/null}"
}
w1_case inline 1000000 2
w1_case process 100000 2
w1_case inline 10000 2
w1_case process 10000 2
w1_case inline 1000 2
exit $status
