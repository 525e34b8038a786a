#!/bin/sh
# Golden plans tests: tests/plans/*.flow (see tests/harness/golden.sh).
for f in tests/plans/*.flow; do
    [ -f "$f" ] || continue
    sh tests/harness/golden.sh run "$f"
done
