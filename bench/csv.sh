#!/bin/sh
# csv.sh — std.read_csv's throughput (issue 18): a generated CSV of CSV_MB megabytes
# (default 1024; made once and kept in $CSV_DIR, default /tmp/flow-bench-csv) of five
# columns (int, str, int, float, bool), read into records by
#   flowrun:  let rows: [Row] = std.read_csv(f), returning len(rows) (inline executor,
#             --no-cache, a fresh state folder: the run records the list in its history)
#   python3:  csv.reader over the same file, converting the same cells (int, float, the
#             bool words), the rows kept in a list as flow keeps them
#   mlr, xsv: when installed (from Debian), a full pass that reads every record
#             (`mlr --icsv --onidx count`, `xsv count`), for scale only
# in the same run, each RUNS times (default 1). Prints MB/s by wall clock and by CPU
# time (user+sys, all threads: less sensitive to a loaded machine), and the ratio of
# flowrun's to python's. Peak memory (GNU time) too: flowrun holds the file, the
# records and their encoding for the history at once.
. "$(dirname "$0")/common.inc"
MB=${CSV_MB:-1024}
DIR=${CSV_DIR:-/tmp/flow-bench-csv}
RUNS=${RUNS:-1}
mkdir -p "$DIR" || exit 1
csv=$DIR/table-$MB.csv
if [ ! -f "$csv.complete" ]; then
    python3 - "$csv" "$MB" <<'EOF' || exit 1
import random, sys
random.seed(18)
target = int(sys.argv[2]) * 1024 * 1024
with open(sys.argv[1], "w", newline="") as f:
    f.write("id,name,score,w,ok\n")
    n, i = 0, 0
    while n < target:
        rows = []
        for _ in range(10000):
            rows.append("%d,user_%d,%d,%.4f,%s\n" % (i, random.randrange(10**6),
                        random.randrange(-10**6, 10**6), random.random() * 100,
                        "true" if i % 3 else "false"))
            i += 1
        chunk = "".join(rows)
        f.write(chunk)
        n += len(chunk)
EOF
    touch "$csv.complete"
fi
bytes=$(stat -c %s "$csv")
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/b.flow" <<'F'
import std
type Row = {id: int, name: str, score: int, w: float, ok: bool}
flow main(f: path) -> int {
    let rows: [Row] = std.read_csv(f)
    return len(rows)
}
F
(cd "$tmp" && "$FLOWC" b.flow) || exit 1
cat > "$tmp/py.py" <<'EOF'
import csv, sys
rows = []
with open(sys.argv[1], newline="") as f:
    r = csv.reader(f)
    next(r)
    for i, name, score, w, ok in r:
        rows.append((int(i), name, int(score), float(w), ok in ("true", "True", "1")))
print(len(rows))
EOF

# one: NAME CMD... — runs it RUNS times; prints "wall cpu peak_kib count" of the median run
one() {
    name=$1; shift
    : > "$tmp/$name.t"
    k=0
    while [ $k -lt "$RUNS" ]; do
        rm -rf "$tmp/state"
        t0=$(date +%s%N)
        /usr/bin/time -f '%U %S %M' -o "$tmp/$name.rss" "$@" > "$tmp/$name.out" 2> "$tmp/$name.err" ||
            { echo "csv: $name failed: $(tail -2 "$tmp/$name.err")" >&2; return 1; }
        t1=$(date +%s%N)
        awk -v a="$t0" -v b="$t1" '{ printf "%.3f %.3f %s\n", (b - a) / 1e9, $1 + $2, $3 }' \
            "$tmp/$name.rss" >> "$tmp/$name.t"
        k=$((k + 1))
    done
    sort -g "$tmp/$name.t" | awk -v n="$RUNS" 'NR == int((n + 1) / 2)' | tr '\n' ' '
    tail -1 "$tmp/$name.out"
}
report() { # NAME "wall cpu kib count"
    set -- "$1" $2
    awk -v n="$1" -v w="$2" -v c="$3" -v k="$4" -v rows="$5" -v b="$bytes" 'BEGIN {
        printf "  %-8s %8.1f MB/s wall %8.1f MB/s cpu   %6.2f s wall %6.2f s cpu  peak %5.0f MiB  %s rows\n",
            n, b / 1048576 / w, b / 1048576 / (c > 0 ? c : 1e-9), w, c, k / 1024, rows }'
}

echo "csv: $(awk -v b="$bytes" 'BEGIN { printf "%.0f", b / 1048576 }') MB, $(uptime | sed 's/.*load/load/')"
f=$(one flowrun "$FLOWRUN" "$tmp/b.plan" --param f="$csv" --executor inline --no-cache \
    --progress none --state "$tmp/state") || exit 1
report flowrun "$f"
p=$(one python3 python3 "$tmp/py.py" "$csv") || exit 1
report python3 "$p"
fr=$(echo "$f" | awk '{print $4}'); pr=$(echo "$p" | awk '{print $4}')
[ "$fr" = "$pr" ] || echo "  csv: flowrun read $fr rows, python $pr (they should agree)"
# a peer from Debian: installed here when missing, as bench/peers/ do for theirs
command -v mlr > /dev/null ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q miller > /dev/null 2>&1 || true
if command -v mlr > /dev/null; then
    m=$(one mlr mlr --icsv --onidx count "$csv") && report mlr "$m" &&
        echo "$f" "$m" | awk '{ printf "  throughput flowrun / mlr: %.2fx by wall clock, %.2fx by CPU time\n",
            $5 / $1, $6 / $2 }'
else echo "  mlr: SKIP (miller could not be installed: apt-get install miller failed)"; fi
if command -v xsv > /dev/null; then
    x=$(one xsv xsv count "$csv") && report xsv "$x"
else echo "  xsv: SKIP (not installed; not packaged in every Debian release)"; fi
echo "$f" "$p" | awk '{ printf "  throughput flowrun / python3: %.2fx by wall clock, %.2fx by CPU time\n",
    $5 / $1, $6 / $2 }'
