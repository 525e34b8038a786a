#!/bin/sh
# Short fuzzing runs (tests/fuzz/run.sh): every libFuzzer target for ~15 s.
# Not under SANITIZED=1: the fuzz build has its own sanitizers.
[ "$SANITIZED" = 1 ] && exit 0
sh tests/fuzz/run.sh "${FUZZ_SUITE_SECONDS:-15}"
exit 0
