#!/bin/sh
# Short fuzzing runs (tests/fuzz/run.sh): every libFuzzer target for ~10 s, its seeds
# (tests/fuzz/seeds-*) first.
# Not under SANITIZED=1: the fuzz build has its own sanitizers.
[ "$SANITIZED" = 1 ] && exit 0
# A fixed seed: make check explores the same inputs each time (as far as its 10 s
# reach), so it does not turn red at random; make fuzz explores anew.
FUZZ_SEED=${FUZZ_SEED:-1} sh tests/fuzz/run.sh "${FUZZ_SUITE_SECONDS:-10}"
exit 0
