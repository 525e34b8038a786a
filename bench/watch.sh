#!/bin/sh
# bench/watch.sh — flowrun serve's data-trigger latency (issue 14): from the last file
# written under a watched folder to serve starting the run, measured on the real clock
# serve logs ("...T12:00:00.123Z NAME: started for a change"). Target: the debounce +
# at most 100 ms. Two cases: a burst of 100 files (TRIALS times) and a burst of 10,000
# (the inotify queue overflows: serve walks the folder again).
#   sh bench/watch.sh                 (BUILD=build; TRIALS=5 DEBOUNCE_MS=500)
. "$(dirname "$0")/common.inc"
TRIALS=${TRIALS:-5}
DEBOUNCE_MS=${DEBOUNCE_MS:-500}
T=$(mktemp -d /tmp/flow-bench-watch-XXXXXX)
p=""
trap '[ -n "$p" ] && kill -9 $p 2>/dev/null; rm -rf "$T"' EXIT
cat > "$T/w.flow" <<'FLOW'
task size(f: path) -> int = sh "wc -c < {f}"
flow w(root: dir = "in") -> [int] watch root {
    return size.expand(f = files(root, "*.txt"))
}
FLOW
cd "$T" && "$FLOWC" w.flow || exit 1
mkdir in
"$FLOWRUN" serve w.plan --state st --debounce ${DEBOUNCE_MS}ms --no-catchup 2> serve.err & p=$!
sleep 0.5
ms_of() { # the serve log's time of day, as ms since the epoch
    date -u -d "$(echo "$1" | sed 's/^flowrun serve: \([^ ]*\) .*/\1/')" +%s%3N; }
# burst N TAG: write N files, the last one's time, then wait for serve to start a run
burst() {
    before=$(grep -c 'started for a change' serve.err)
    i=0; while [ $i -lt "$1" ]; do echo "$2 $i" > in/$2-$i.txt; i=$((i + 1)); done
    last=$(date -r "in/$2-$(($1 - 1)).txt" +%s%3N)   # the last file's mtime
    k=0; while [ "$(grep -c 'started for a change' serve.err)" -le "$before" ] && [ $k -lt 600 ]; do
        sleep 0.05; k=$((k + 1)); done
    started=$(ms_of "$(grep 'started for a change' serve.err | tail -1)")
    # wait for that run to end before the next burst
    k=0; while [ "$(grep -c ': run [0-9]* ' serve.err)" -le "$before" ] && [ $k -lt 1200 ]; do
        sleep 0.05; k=$((k + 1)); done
    echo $((started - last - DEBOUNCE_MS))
}
lat=""
t=0; while [ $t -lt "$TRIALS" ]; do lat="$lat $(burst 100 b$t)"; t=$((t + 1)); done
big=$(burst 10000 big)
kill -TERM $p; wait $p; p=""
echo "watch trigger latency beyond the debounce (${DEBOUNCE_MS} ms), last file written -> run started:"
echo "  100-file bursts:   median $(median $lat) ms over $TRIALS (each:$lat)   target <= 100 ms"
echo "  a 10,000-file burst: $big ms   target <= 100 ms ($(grep -c 'queue overflowed' serve.err) inotify queue overflows, the folder walked again)"
echo "  load: $(uptime | sed 's/.*load average: //')"
m=$(median $lat)
[ "$m" -le 100 ] && [ "$big" -le 100 ] || { echo "  ABOVE TARGET"; exit 1; }
