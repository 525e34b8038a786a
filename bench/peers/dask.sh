#!/bin/sh
# W1 and W2 for Dask (threaded scheduler; distributed with 2 local workers for W1
# at N = 1,000), beside flow. Installs python3-dask/python3-distributed if missing.
. "$(dirname "$0")/../common.inc"
[ -x "$FLOWRUN" ] && [ -f "$LIBSCHED" ] || { echo "peers: build first (make all testlibs)"; exit 1; }
PY=/usr/bin/python3
if ! $PY -c 'import dask, distributed' 2> /dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-dask python3-distributed > /dev/null 2>&1
fi
$PY -c 'import dask, distributed' 2> /dev/null || { echo "peers dask: python3-dask is not installed"; exit 0; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/flow_figures.inc"
here=$(dirname "$0")
runs() { # command... -> median of its printed first number over $RUNS runs
    : > "$tmp/r"; k=0
    while [ $k -lt "$RUNS" ]; do "$@" | awk '{print $1}' >> "$tmp/r"; k=$((k + 1)); done
    median $(cat "$tmp/r")
}
for n in 1000 10000; do
    d=$(runs $PY "$here/dask_work.py" w1 $n threaded)
    fl=$(flow_w1 $n)
    printf 'peers w1 N=%-6s dask threaded %7.3f s (%sx flow)   flow inline %6.3f s\n' $n "$d" "$(ratio "$d" "$fl")" "$fl"
done
d=$(runs $PY "$here/dask_work.py" w1 1000 distributed)
fl=$(flow_w1 1000)
printf 'peers w1 N=1000   dask distributed (2 workers) %7.3f s (%sx flow)\n' "$d" "$(ratio "$d" "$fl")"
: > "$tmp/f"; : > "$tmp/t"; k=0
while [ $k -lt "$RUNS" ]; do
    set -- $($PY "$here/dask_work.py" w2 1000); echo "$1" >> "$tmp/f"; echo "$2" >> "$tmp/t"; k=$((k + 1))
done
df=$(median $(cat "$tmp/f")); dt=$(median $(cat "$tmp/t"))
set -- $(flow_w2 1000)
printf 'peers w2 N=1000  dask threaded: first chain %6.3f s, total %6.3f s (%sx flow)   flow depth-first: first chain %6.3f s, total %6.3f s\n' \
    "$df" "$dt" "$(ratio "$dt" "$2")" "$1" "$2"
