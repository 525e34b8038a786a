#!/bin/sh
# Fuzz every tests/fuzz/fuzz_*.c with libFuzzer for SECONDS each (default 60).
#
#   sh tests/fuzz/run.sh [SECONDS]          (make fuzz runs it with 600)
#
# Objects come from the Makefile, built with clang, ASan+UBSan and fuzzer
# coverage into $FUZZ_BUILD (default build/fuzz); each target links them
# except the two main()s. A target's corpus (kept between runs, in
# $FUZZ_BUILD/corpus-NAME) is seeded from tests/fuzz/seeds-NAME/ when that
# folder exists, else from every tests/**/*.flow; tests/fuzz/NAME.dict, when
# present, is its libFuzzer dictionary; a line "fuzz-max-len: N" in a target's source
# raises its longest input from 8192 bytes. FUZZ_TARGETS="plan state" runs only those;
# FUZZ_SEED=N fixes libFuzzer's random seed (0, the default: a new one each run).
# Prints one line per target:
#   PASS fuzz_NAME: R runs in S s (E exec/s), N edges, corpus C
#   FAIL fuzz_NAME: crash, reproducer in ...
# and exits 1 when any target failed.
secs=${1:-60}
FB=${FUZZ_BUILD:-build/fuzz}
CC=${FUZZ_CC:-clang}
JOBS=${FUZZ_MAKE_JOBS:-2}
command -v "$CC" >/dev/null 2>&1 || { echo "SKIP fuzz: $CC not found"; exit 0; }

FLAGS="-O1 -g -fsanitize=fuzzer-no-link -fno-omit-frame-pointer"
if ! make --no-print-directory -j"$JOBS" BUILD="$FB" CC="$CC" SANITIZE=1 CFLAGS="$FLAGS" \
        "$FB/bin/flowc" "$FB/lib/libflow.a" "$FB/obj/runtime/app/config.o" > "$FB.make.log" 2>&1; then
    echo "FAIL fuzz: the build failed (see $FB.make.log)"; tail -5 "$FB.make.log"; exit 1
fi

# libflow.a needs no LLVM: the JIT is a module of its own (docs/jit.md)
LIBS="-lffi -lyaml -lsqlite3 -lnettle -ldl -lm -lpthread -ljansson"  # jansson: flowc lsp
# the compiler's objects named after today's sources (an object of a renamed source may
# linger in an old build folder)
OBJS=$(for c in compiler/*.c; do n=$(basename "$c" .c); [ "$n" = main ] || echo "$FB/obj/compiler/$n.o"; done
       ls "$FB"/obj/gen/*.o 2>/dev/null
       echo "$FB/obj/runtime/app/config.o")  # flow.yaml's reader, for fuzz_config

status=0
for src in tests/fuzz/fuzz_*.c; do
    [ -f "$src" ] || continue
    name=$(basename "$src" .c)
    if [ -n "$FUZZ_TARGETS" ]; then
        case " $FUZZ_TARGETS " in *" ${name#fuzz_} "*) ;; *) continue ;; esac
    fi
    bin="$FB/$name"
    if ! $CC $FLAGS -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
            -Icompiler -Iruntime/core -Iruntime/recorder -Iruntime/app -Iruntime/include -I"$FB/gen" -o "$bin" "$src" $OBJS \
            "$FB/lib/libflow.a" $LIBS > "$FB/$name.build.log" 2>&1; then
        echo "FAIL $name: does not build (see $FB/$name.build.log)"; head -5 "$FB/$name.build.log"
        status=1; continue
    fi
    corpus="$FB/corpus-$name"; art="$FB/artifacts-$name"
    mkdir -p "$corpus" "$art"
    if [ -d "tests/fuzz/seeds-${name#fuzz_}" ]; then
        seeds="tests/fuzz/seeds-${name#fuzz_}"
    else
        seeds="$FB/seeds-$name"; rm -rf "$seeds"; mkdir -p "$seeds"
        find tests -name '*.flow' | while read -r f; do
            cp "$f" "$seeds/$(echo "$f" | tr / _)"; done
    fi
    dict=""; [ -f "tests/fuzz/$name.dict" ] && dict="-dict=tests/fuzz/$name.dict"
    log="$FB/$name.log"
    maxlen=$(sed -n 's/.*fuzz-max-len: *\([0-9]*\).*/\1/p' "$src" | head -1)
    "$bin" -max_total_time="$secs" -seed="${FUZZ_SEED:-0}" -timeout=10 -rss_limit_mb=2048 -max_len="${maxlen:-8192}" $dict \
        -print_final_stats=1 -artifact_prefix="$art/" "$corpus" "$seeds" > "$log" 2>&1
    code=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    size=$(ls "$corpus" | wc -l)
    edges=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    if [ "$code" -ne 0 ]; then
        crash=$(ls -t "$art" 2>/dev/null | head -1)
        echo "FAIL $name: exit $code after ${runs:-?} runs, reproducer $art/$crash (log $log)"
        grep -m3 -E 'ERROR|SUMMARY|runtime error|abort' "$log" | sed 's/^/    /'
        status=1
    else
        echo "PASS $name: ${runs:-?} runs in ${secs}s (${rate:-?} exec/s), ${edges:-?} edges, corpus $size"
    fi
done
exit $status
