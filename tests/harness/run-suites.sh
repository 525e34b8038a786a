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
# Sanitized runs (SANITIZED=1) detect leaks. Every sanitizer report of AddressSanitizer and
# LeakSanitizer goes to a file in $san (log_path), not to the program's stderr, so a leak
# fails the suite whether or not the test looks at stderr or the exit code: after each
# suite every report is a FAIL line "sanitizer:<program> (pid N)" and is appended to the
# suite's log. Known leaks outside flow's code are suppressed in tests/harness/lsan.supp
# (one entry per cause, each with its reason). The directory is world-writable because
# some tests run flowrun as another user (tests/harness/nobody.sh).
san=""
if [ -n "$SANITIZED" ]; then
    san=$(mktemp -d /tmp/flow-sanitizer-XXXXXX)
    chmod 1777 "$san"
    trap 'rm -rf "$san"' EXIT
    trap 'rm -rf "$san"; exit 130' INT TERM
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:log_path=$san/report:log_exe_name=1}
    export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$(pwd)/tests/harness/lsan.supp:print_suppressions=0}
else
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=0}
fi
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
for s in ${SUITES:-tests/suites/*.sh}; do
    [ -f "$s" ] || continue
    name=$(basename "$s" .sh)
    echo "== $name${SANITIZED:+ (sanitized)}${NOLLVM:+ (LLVM=0)}"
    sh "$s" 2>&1 | tee "$BUILD/suite-$name.log" | grep -E '^(PASS|FAIL|SKIP)' > "$BUILD/suite-$name.res" || true
    if [ -n "$san" ]; then
        for r in "$san"/report.*; do
            [ -f "$r" ] || continue
            what=$(grep -m1 '^SUMMARY' "$r" || grep -m1 'ERROR' "$r" | sed 's/^==[0-9]*==//')
            prog=${r#"$san"/report.}                     # report.PROGRAM.PID (log_exe_name)
            # LeakSanitizer's own tracer dying while it reads a thread's dynamic TLS
            # (clang 14's LSan with glibc 2.36, seen after the JIT module's TLS is used)
            # is no finding about the program, and no leak check of it either: said
            # as a SKIP, unless the report holds anything else
            verdict=FAIL
            if grep -q '^Tracer caught signal' "$r" &&
                ! grep -qE 'SUMMARY|ERROR: AddressSanitizer|runtime error' "$r"; then
                verdict=SKIP what="LeakSanitizer's tracer crashed: this process was not checked for leaks"
            fi
            echo "$verdict sanitizer:${prog%.*} (pid ${prog##*.}): ${what:-see $BUILD/suite-$name.log}" |
                tee -a "$BUILD/suite-$name.log" >> "$BUILD/suite-$name.res"
            { echo "---- $r"; cat "$r"; } >> "$BUILD/suite-$name.log"
            rm -f "$r"
        done
    fi
    grep -E '^(FAIL|SKIP)' "$BUILD/suite-$name.log" | head -20
    n=$(grep -c '^PASS' "$BUILD/suite-$name.res"); f=$(grep -c '^FAIL' "$BUILD/suite-$name.res")
    k=$(grep -c '^SKIP' "$BUILD/suite-$name.res")
    skipped=""; [ "$k" -gt 0 ] && skipped=", $k skipped"
    echo "   $name: $n passed, $f failed$skipped"
    sed "s/^\(PASS\|FAIL\|SKIP\) /\1 ${SANITIZED:+asan:}${NOLLVM:+nollvm:}$name:/" "$BUILD/suite-$name.res" >> "$out"
done
