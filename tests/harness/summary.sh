#!/bin/sh
# Count the PASS/FAIL/SKIP lines of every results file given; list the failures and
# the skips (each says why); print the closing line "N passed, M failed" (with
# ", K skipped" when some check could not run); fail if any check failed.
p=0; f=0; k=0
for r in "$@"; do
    [ -f "$r" ] || continue
    p=$((p + $(grep -c '^PASS' "$r"))); f=$((f + $(grep -c '^FAIL' "$r")))
    k=$((k + $(grep -c '^SKIP' "$r")))
    grep -E '^(FAIL|SKIP)' "$r"
done
if [ "$k" -gt 0 ]; then echo "$p passed, $f failed, $k skipped"; else echo "$p passed, $f failed"; fi
[ "$f" = 0 ] && [ "$p" -gt 0 ]
