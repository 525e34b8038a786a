#!/bin/sh
# instbytes.sh — bytes per instance of the instances table (issue 13, target 2: the
# compact packed record, ~30 bytes per record besides key and result).
#
# Method: W1 (N instances of inc, then a sum), inline -j 2, --no-cache, a fresh
# --state; then, on its state.db, the bytes of the `packed` blobs and of the whole
# instances table (its pages, from SQLite's dbstat when the sqlite3 shell has it),
# each divided by N. A W1 result is a small integer (its encoded bytes are counted:
# they are what a record cannot do without).
# Usage: sh bench/instbytes.sh            env: N (1000000), BUILD (the build to measure;
#   BUILD=/tmp/x-before/build measures an older flowrun against this tree's bench)
. "$(dirname "$0")/common.inc"
[ -x "$FLOWRUN" ] && [ -f "$LIBSCHED" ] || { echo "instbytes: build first (make all testlibs)"; exit 1; }
command -v sqlite3 > /dev/null || { echo "instbytes: skipped (no sqlite3 shell)"; exit 0; }
N=${N:-1000000}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
w1_flow "$LIBSCHED" > "$tmp/w1.flow"
"$FLOWC" -o "$tmp/w1.plan" "$tmp/w1.flow" || exit 1
"$FLOWRUN" "$tmp/w1.plan" --executor inline -j 2 --progress none --max-map "$N" \
    --param n="$N" --state "$tmp/st" --no-cache > /dev/null || { echo "instbytes: run failed"; exit 1; }
db=$tmp/st/state.db
blob=$(sqlite3 "$db" "SELECT coalesce(sum(length(packed)), 0) FROM instances")
rows=$(sqlite3 "$db" "SELECT count(*) FROM instances")
pages=$(sqlite3 "$db" "SELECT sum(pgsize) FROM dbstat WHERE name='instances'" 2> /dev/null)
echo "instbytes: W1 N=$N --no-cache, $rows rows in instances"
awk -v b="$blob" -v n="$N" 'BEGIN { printf "  packed blobs     %8.1f bytes per instance (target ~30 + result)\n", b / n }'
[ -n "$pages" ] &&
    awk -v b="$pages" -v n="$N" 'BEGIN { printf "  instances table  %8.1f bytes per instance (its pages)\n", b / n }'
exit 0
