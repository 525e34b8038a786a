#!/bin/sh
# Count PASS/FAIL lines of every results file given; print the closing line; fail if any FAIL.
p=0; f=0
for r in "$@"; do
    [ -f "$r" ] || continue
    p=$((p + $(grep -c '^PASS' "$r"))); f=$((f + $(grep -c '^FAIL' "$r")))
    grep '^FAIL' "$r"
done
echo "$p passed, $f failed"
[ "$f" = 0 ] && [ "$p" -gt 0 ]
