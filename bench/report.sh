#!/bin/sh
# report.sh — flowrun report on a large run: W1 (N instances of inc, then a sum;
# bench/common.inc) run once with the inline executor, then `flowrun report` on it
# ROUNDS times; prints the page's size and the median generation time (wall clock,
# and peak RSS by GNU time), against issue 17's targets: a 1,000,000-instance run gives
# a page of at most 5 MB in at most 3 s. Not part of make check (the run alone takes
# seconds and a few hundred MB of state).
#   sh bench/report.sh            N=1000000, ROUNDS=5
#   N=100000 sh bench/report.sh
. "$(dirname "$0")/common.inc"
N=${N:-1000000}
ROUNDS=${ROUNDS:-5}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
[ -f "$LIBSCHED" ] || { echo "report.sh: $LIBSCHED is not built (make testlibs)" >&2; exit 1; }
w1_flow "$LIBSCHED" > "$tmp/w1.flow"
"$FLOWC" "$tmp/w1.flow" -o "$tmp/w1.plan" || exit 1
t0=$(date +%s%N)
"$FLOWRUN" "$tmp/w1.plan" --executor inline -j 2 --progress none --max-map "$N" \
    --param n="$N" --state "$tmp/state" > /dev/null || { echo "report.sh: the run failed" >&2; exit 1; }
t1=$(date +%s%N)
echo "W1, N = $N: run in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) / 1e9 }') s"
: > "$tmp/times"
for i in $(seq "$ROUNDS"); do
    timed "$tmp/times" "$FLOWRUN" report last -o "$tmp/page.html" --state "$tmp/state"
done
[ -s "$tmp/page.html" ] || { echo "report.sh: no page: $(cat "$tmp/times.err")" >&2; exit 1; }
bytes=$(wc -c < "$tmp/page.html")
secs=$(median $(cut -d' ' -f1 "$tmp/times"))
rss=$(median $(cut -d' ' -f2 "$tmp/times"))
echo "flowrun report, $ROUNDS rounds: page $bytes bytes, median $secs s (each: $(cut -d' ' -f1 "$tmp/times" | tr '\n' ' ')), peak RSS $rss KiB"
awk -v b="$bytes" -v s="$secs" 'BEGIN {
    printf "targets: page <= 5 MB: %s; generated in <= 3 s: %s\n",
        (b <= 5000000) ? "met" : "NOT met", (s <= 3) ? "met" : "NOT met" }'
