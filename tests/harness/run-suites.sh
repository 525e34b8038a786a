#!/bin/sh
# Run every suite in tests/suites/ (sorted). A suite is a shell script that prints
# lines "PASS <name>", "FAIL <name>: <why>" and, for a check that cannot run on this
# machine or in this build, "SKIP <name>: <why>"; anything else it prints is shown as is.
# Environment given to suites: BUILD (build dir), FLOWC, FLOWRUN, SANITIZED (1 under ASan).
# A suite that should not run sanitized (benchmarks, editors) checks SANITIZED itself.
# SUITES (optional) lists the suite scripts to run instead of all; NOLLVM=1 marks the
# results of the LLVM=0 build ("nollvm:").
out="$1"; : > "$out"
BUILD=${BUILD:-build}
export BUILD
FLOWC=$(pwd)/$BUILD/bin/flowc; FLOWRUN=$(pwd)/$BUILD/bin/flowrun
export FLOWC FLOWRUN
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
for s in ${SUITES:-tests/suites/*.sh}; do
    [ -f "$s" ] || continue
    name=$(basename "$s" .sh)
    echo "== $name${SANITIZED:+ (sanitized)}${NOLLVM:+ (LLVM=0)}"
    sh "$s" 2>&1 | tee "$BUILD/suite-$name.log" | grep -E '^(PASS|FAIL|SKIP)' > "$BUILD/suite-$name.res" || true
    grep -E '^(FAIL|SKIP)' "$BUILD/suite-$name.log" | head -20
    n=$(grep -c '^PASS' "$BUILD/suite-$name.res"); f=$(grep -c '^FAIL' "$BUILD/suite-$name.res")
    k=$(grep -c '^SKIP' "$BUILD/suite-$name.res")
    skipped=""; [ "$k" -gt 0 ] && skipped=", $k skipped"
    echo "   $name: $n passed, $f failed$skipped"
    sed "s/^\(PASS\|FAIL\|SKIP\) /\1 ${SANITIZED:+asan:}${NOLLVM:+nollvm:}$name:/" "$BUILD/suite-$name.res" >> "$out"
done
