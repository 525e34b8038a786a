#!/bin/sh
# cmocka unit tests: every build/tests/test_* binary, TAP output turned into PASS/FAIL/SKIP lines.
for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    n=$(basename "$t")
    CMOCKA_MESSAGE_OUTPUT=TAP "$t" > "$BUILD/$n.tap" 2>&1; code=$?
    sed -n 's/^ok [0-9]* - \(.*\)$/PASS '"$n"':\1/p; s/^not ok [0-9]* # SKIP \(.*\)$/SKIP '"$n"':\1: skipped by the test (its source says why)/p; s/^not ok [0-9]* - \(.*\)$/FAIL '"$n"':\1/p' "$BUILD/$n.tap"
    if [ $code -ne 0 ] && ! grep -q '^not ok' "$BUILD/$n.tap"; then
        echo "FAIL $n: exited $code"; tail -5 "$BUILD/$n.tap"; fi
done
