#!/bin/sh
# Golden errors tests: tests/errors/*.flow (see tests/harness/golden.sh).
for f in tests/errors/*.flow; do
    [ -f "$f" ] || continue
    sh tests/harness/golden.sh run "$f"
done
