#!/bin/sh
# Write the committed seed corpora of the fuzz targets (run it again after a plan
# format or state.db schema change, and commit the result):
#
#   sh tests/fuzz/make-seeds.sh            (after `make all unit testlibs`; BUILD=build)
#
#   seeds-plan/   every .flow of tests/ and examples/ that compiles, as flowc's plan
#                 (at most 8 KiB: run.sh's -max_len), plus test_plan --write-seeds
#   seeds-state/  state.db files of real runs (a mapped chain run twice; an empty map)
#                 vacuumed to 512-byte pages so they stay small; reproducers of
#                 fixed bugs found by the fuzzer are kept there too
#   seeds-store/  tree descriptions for fuzz_store.c (its header gives the format)
set -e
BUILD=${BUILD:-build}
ROOT=$(pwd)
FLOWC=$ROOT/$BUILD/bin/flowc
FLOWRUN=$ROOT/$BUILD/bin/flowrun
D=tests/fuzz
T=$(mktemp -d /tmp/flow-seeds-XXXXXX)
trap 'rm -rf "$T"' EXIT

rm -rf $D/seeds-plan && mkdir -p $D/seeds-plan
find tests examples -name '*.flow' | sort | while read -r f; do
    out=$D/seeds-plan/$(echo "${f%.flow}" | tr / _).plan
    if "$FLOWC" "$f" -o "$out" > /dev/null 2>&1 && [ "$(wc -c < "$out")" -le 8192 ]; then :; else
        rm -f "$out"; fi
done
"$BUILD/tests/test_plan" --write-seeds $D/seeds-plan > /dev/null

mkdir -p $D/seeds-state # (other files there are reproducers of fixed bugs: kept)
cp tests/state/chain.flow tests/lib/libstatetasks.so "$T/"
(cd "$T" && "$FLOWC" chain.flow && export FLOW_TEST_LOG="$T/log" &&
    "$FLOWRUN" run chain.plan --param n=3 --state ok --progress none > /dev/null &&
    "$FLOWRUN" run chain.plan --param n=4 --state ok --progress none > /dev/null &&
    "$FLOWRUN" run chain.plan --param n=-1 --state empty --progress none > /dev/null 2>&1 || true)
for s in ok empty; do
    [ -f "$T/$s/state.db" ] || continue
    sqlite3 "$T/$s/state.db" 'PRAGMA journal_mode=DELETE; PRAGMA page_size=512; VACUUM;' > /dev/null
    cp "$T/$s/state.db" $D/seeds-state/$s.db
done

# fuzz_store: byte 0 bit 0 = move; then ops: kind byte (0 file, 1 dir and enter, 2 up,
# 3 link, 4 fifo, 5 empty dir; kind/6 odd = executable), name length, name, and for a
# file a content length and the content.
mkdir -p $D/seeds-store
printf '\001\000\005a.txt\003abc\006\006b.data\004\000\001\002' > $D/seeds-store/two-files
printf '\000\001\003sub\000\001x\002hi\001\004deep\000\001y\000\002\002\000\001z\001!' > $D/seeds-store/nested
printf '\001\000\001f\001.\003\004link' > $D/seeds-store/with-link
printf '\000\005\005empty\004\004pipe' > $D/seeds-store/fifo-and-empty
printf '\001\000\010name one\000\000\003\303\251t\002ok' > $D/seeds-store/odd-names
ls $D/seeds-plan | wc -l | sed 's/$/ plan seeds/'
ls $D/seeds-state | wc -l | sed 's/$/ state seeds/'
ls $D/seeds-store | wc -l | sed 's/$/ store seeds/'
