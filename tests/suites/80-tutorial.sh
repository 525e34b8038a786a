#!/bin/sh
# docs/tutorial.md, run for real: every command in it, in order, in a fresh
# temporary HOME, and every output it shows compared with what really came out.
#
# How the markdown is read (tests/tutorial/extract.awk):
#   ```sh            a command block: run as is, all blocks in one shell, so
#                    cd and export carry over from block to block (set -e).
#   <!-- file: P --> on the line before a fenced block: the block is a file
#                    the reader creates; it is written to P (relative to the
#                    directory the previous commands left us in).
#   <!-- output -->  on the line before a fenced block: what the previous
#                    command block prints (stdout, then stderr). Compared after
#                    normalizing timestamps, durations (any d.d), runs of blanks
#                    and trailing blanks.
# Any other fenced block is an error: the page must hold nothing untested.
#
# Two substitutions, both because the suite runs inside `make check`:
#   - `make` (step 1) is a function that only checks flowc and flowrun exist:
#     make check has already built them, and a nested make could rebuild.
#   - after every block, the directory of $FLOWC is put first on PATH, so that
#     under SANITIZED=1 the tutorial exercises the ASan+UBSan build (the task
#     library the reader compiles is plain, as for any dlopened task library).
# The first block runs at the top of the checkout (so FLOW is the checkout).
ROOT=$(pwd)
FLOWC=${FLOWC:-$ROOT/build/bin/flowc}
FLOWRUN=${FLOWRUN:-$ROOT/build/bin/flowrun}
DOC=${TUTORIAL_DOC:-$ROOT/docs/tutorial.md} # TUTORIAL_DOC: try the suite on a draft
T=$(mktemp -d /tmp/flow-tutorial-XXXXXX)
trap 'rm -rf "$T"' EXIT INT TERM
OUT=$T/out
mkdir -p "$OUT" "$T/home"

pass() { printf 'PASS tutorial: %s\n' "$1"; }
fail() { printf 'FAIL tutorial: %s\n' "$1"; }

if ! awk -v out="$OUT" -f "$ROOT/tests/tutorial/extract.awk" "$DOC" > "$T/script.sh" \
    2> "$T/extract.err"; then
    fail "docs/tutorial.md cannot be extracted: $(head -3 "$T/extract.err")"
    exit 0
fi
blocks=$(cat "$OUT/blocks")
[ "$blocks" -ge 10 ] && pass "extracted $blocks command blocks" || fail "only $blocks command blocks"

# Run the page: a clean environment apart from PATH and the build.
unset FLOW_STATE FLOW_LIBRARY_PATH # the page (and the checks below) use ./.flow
(
    unset FLOW
    HOME=$T/home TUT_OUT=$OUT TUT_BIN=$(dirname "$FLOWC") FLOWC=$FLOWC FLOWRUN=$FLOWRUN \
        sh "$T/script.sh" > "$T/script.log" 2>&1
)

normalize() { # file: the comparable form of an output
    sed -e 's/[0-9]\{4\}-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]Z/TIME/g' \
        -e 's/[0-9][0-9]*\.[0-9][0-9]*/N/g' -e 's/[[:blank:]][[:blank:]]*/ /g' \
        -e 's/ $//' "$1"
}

# Every block ran to the end; every shown output is what came out.
i=1
while [ "$i" -le "$blocks" ]; do
    first=$(head -1 "$OUT/$i.cmd")
    if [ ! -f "$OUT/$i.done" ]; then
        fail "block $i ($first) did not complete"
        cat "$OUT/$i.out" "$OUT/$i.err" 2>/dev/null | tail -8 | sed 's/^/    /'
        [ -s "$T/script.log" ] && tail -5 "$T/script.log" | sed 's/^/    /'
        [ "$i" -lt "$blocks" ] && fail "blocks $((i + 1)) to $blocks not run: block $i stopped"
        break
    fi
    if [ -f "$OUT/$i.expect" ]; then
        cat "$OUT/$i.out" "$OUT/$i.err" > "$T/got"
        normalize "$OUT/$i.expect" > "$T/want.n"; normalize "$T/got" > "$T/got.n"
        if cmp -s "$T/want.n" "$T/got.n"; then
            pass "block $i ($first): output as shown"
        else
            fail "block $i ($first): output differs from the page"
            diff "$T/want.n" "$T/got.n" | sed 's/^/    /' | head -20
        fi
    else
        pass "block $i ($first) ran"
    fi
    i=$((i + 1))
done

# The page ran the flowc and flowrun under test (the ASan ones when sanitized).
printf '%s\n%s\n' "$FLOWC" "$FLOWRUN" > "$T/which.want"
cmp -s "$T/which.want" "$OUT/which" && pass "the page ran the flowc and flowrun under test" ||
    fail "the page ran $(cat "$OUT/which" 2>/dev/null | tr '\n' ' '), not $FLOWC and $FLOWRUN"

# The key facts, checked on their own (so a page edit cannot quietly drop them).
W=$T/home/flow-tutorial
expect() { # name want got
    if [ "$2" = "$3" ]; then pass "$1"; else fail "$1: want '$2', got '$3'"; fi
}
tally() { # run: "count_file-ran count_file-cached add_up-state" from flowrun show
    (cd "$W" && "$FLOWRUN" show "$1" 2>/dev/null) |
        awk '$1 ~ /^counts\[/ { n[$3]++ } $1 == "add_up" { a = $3 }
             END { printf "%d %d %s", n["succeeded"], n["cached"], a }'
}
expect "the reader's library and plan exist" "yes yes" \
    "$([ -f "$W/libcount.so" ] && echo yes) $([ -f "$W/count.plan" ] && echo yes)"
expect "run 1 ran every file" "3 0 succeeded" "$(tally 1)"
expect "run 2 took everything from the cache" "0 3 cached" "$(tally 2)"
expect "after one edit, exactly one file was redone" "1 2 succeeded" "$(tally 3)"
expect "flowrun said 2 of 4 came from the cache" 1 \
    "$(cat "$OUT"/*.err | grep -c 'run 3: 2 of 4 instances served from the cache')"
expect "the re-run computed the new totals" 1 "$(cat "$OUT"/*.out | grep -c '^{"lines":7,"words":14}$')"

# flowrun logs when the reader names an instance the run does not have.
logs() { (cd "$W" && "$FLOWRUN" logs "$@" 2>&1; echo "rc=$?"); }
expect "logs of a mapped task without an index: a hint" \
    "flowrun logs: count_file is mapped in run 1 (3 instances): name one, as counts[0] rc=2" \
    "$(logs 1 count_file | tr '\n' ' ' | sed 's/ $//')"
expect "logs by the task's name, as the README shows it" "books/cat.txt: 2 lines, 6 words" \
    "$(logs 1 'count_file[0]' | grep '^books')"
expect "logs by the label" "books/one.txt: 1 lines, 3 words" \
    "$(logs 1 'counts["one.txt"]' | grep '^books')"
expect "logs of an unknown instance" \
    "flowrun logs: run 1 has no instance nosuch[0] (flowrun show 1 lists them) rc=2" \
    "$(logs 1 'nosuch[0]' | tr '\n' ' ' | sed 's/ $//')"
expect "logs of an instance cached twice: the log of run 1" "books/xyz.txt: 3 lines, 3 words" \
    "$(logs 3 'counts[2]' | grep '^books')"

# The claims of the page's last paragraph, each one run: touching a file
# changes nothing; the same counts from new bytes stop at count_file (early
# cutoff); a new file adds one instance.
again() { (cd "$W" && "$FLOWRUN" count.plan > /dev/null 2>&1) && tally last; }
touch "$W/books/one.txt"
expect "touch changes nothing" "0 3 cached" "$(again)"
printf 'one word more\n' > "$W/books/one.txt"
expect "same counts from new bytes: add_up stays cached" "1 2 cached" "$(again)"
printf 'new\n' > "$W/books/new.txt"
expect "a new file adds one instance, the only one that runs" "1 3 succeeded" "$(again)"

# The other way step 1 mentions: make install PREFIX=... and pkg-config. Not
# sanitized: make install copies the plain build, which the pass above covers.
if [ "${SANITIZED:-0}" != 1 ] && command -v pkg-config > /dev/null; then
    if MAKEFLAGS= make -s -C "$ROOT" install PREFIX="$T/prefix" > "$T/install.log" 2>&1 &&
        cflags=$(PKG_CONFIG_PATH=$T/prefix/lib/pkgconfig pkg-config --cflags flow) &&
        (cd "$W" && cc -Wall -shared -fPIC $cflags count.c -o "$T/libcount2.so"); then
        pass "make install PREFIX=... and pkg-config --cflags flow build the library too"
    else
        fail "make install PREFIX=... then pkg-config: $(tail -2 "$T/install.log")"
    fi
elif [ "${SANITIZED:-0}" != 1 ]; then
    echo "SKIP tutorial:make install and pkg-config: no pkg-config"
fi
exit 0
