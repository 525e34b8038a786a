#!/bin/sh
# Short fuzzing runs (tests/fuzz/run.sh): every libFuzzer target for ~10 s, its seeds
# (tests/fuzz/seeds-*) first.
# Not under SANITIZED=1: the fuzz build has its own sanitizers.
[ "$SANITIZED" = 1 ] && exit 0
sh tests/fuzz/run.sh "${FUZZ_SUITE_SECONDS:-10}"
exit 0
