#!/bin/sh
# Golden run tests: tests/run/*.flow (see tests/harness/golden.sh).
for f in tests/run/*.flow; do
    [ -f "$f" ] || continue
    sh tests/harness/golden.sh run "$f"
done
