#!/bin/sh
# lsp.sh — flowc lsp bench (issue 18): on bench/gen_flowc_bench.py's 20,000-line program
# (the one bench/flowc.sh compiles), the time from an edit to its diagnostics (target:
# 50 ms) and of a hover (target: 10 ms), measured through JSON-RPC by bench/lsp_bench.py.
# Figures only: no test depends on them.
BUILD=${BUILD:-build}
FLOWC=${FLOWC:-$BUILD/bin/flowc}
root=$(cd "$(dirname "$0")/.." && pwd)
dir=$BUILD/bench; mkdir -p "$dir"
src=$dir/lsp_bench.flow
python3 "$root/bench/gen_flowc_bench.py" "$root/tests/lib/libchk.so" "$src" > /dev/null || exit 1
python3 "$root/bench/lsp_bench.py" "$FLOWC" "$src" "${LSP_EDITS:-20}"
