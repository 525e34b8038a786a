#!/bin/sh
# Golden tests as plain files. Usage: golden.sh run|update FILE.flow
#   tests/errors/X.flow  expects X.err : stderr of `flowc --check X.flow` (exit 1)
#   tests/plans/X.flow   expects X.json: stdout of `flowc --emit=json X.flow` (exit 0)
#   tests/fmt/X.flow     expects X.out : stdout of `flowc fmt - < X.flow` (exit 0)
#   tests/run/X.flow     expects X.out : stdout of `flowrun` on its plan, and X.code (exit,
#                        default 0); X.args holds extra flowrun arguments (one line).
#                        Runs under every executor in $EXECUTORS (default "inline process").
#                        X.args may name files beside the test as $SRCDIR/...
# Paths are given relative to the repository root, as the expectation files show them.
mode=$1; f=$2
BUILD=${BUILD:-build}
FLOWC=${FLOWC:-$BUILD/bin/flowc}; FLOWRUN=${FLOWRUN:-$BUILD/bin/flowrun}
case $FLOWRUN in /*) ;; *) FLOWRUN=$(pwd)/$FLOWRUN ;; esac   # run tests cd into a temporary folder
dir=$(dirname "$f"); base=${f%.flow}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
check() { # name expected actual
    if [ "$mode" = update ]; then cp "$3" "$2"; echo "PASS $1 (updated)"; return; fi
    if [ -f "$2" ] && cmp -s "$2" "$3"; then echo "PASS $1"; else
        echo "FAIL $1: output differs"; [ -f "$2" ] && diff "$2" "$3" | head -15 | sed 's/^/    /'; fi
}
case "$dir" in
*errors)
    "$FLOWC" --check "$f" > /dev/null 2> "$tmp/err"; code=$?
    if [ "$code" != 1 ] && [ "$mode" = run ]; then echo "FAIL $f: exit $code, expected 1"; cat "$tmp/err" | head -5; exit 0; fi
    check "$f" "$base.err" "$tmp/err" ;;
*plans)
    "$FLOWC" --emit=json "$f" > "$tmp/out" 2> "$tmp/err" || { echo "FAIL $f: flowc failed"; head -5 "$tmp/err"; exit 0; }
    check "$f" "$base.json" "$tmp/out" ;;
*run)
    "$FLOWC" -o "$tmp/p.plan" "$f" 2> "$tmp/err" || { echo "FAIL $f: flowc failed"; head -5 "$tmp/err"; exit 0; }
    cp "$dir"/lib*.so "$tmp/" 2>/dev/null
    args=""; [ -f "$base.args" ] && args=$(cat "$base.args")
    SRCDIR=$(cd "$dir" && pwd)
    want=0; [ -f "$base.code" ] && want=$(cat "$base.code")
    for ex in ${EXECUTORS:-inline process}; do
        (cd "$tmp" && eval "\"$FLOWRUN\" p.plan --executor $ex --progress none --state \"$tmp/state-$ex\" $args") \
            > "$tmp/out-$ex" 2> "$tmp/err-$ex"; code=$?
        if [ "$code" != "$want" ] && [ "$mode" = run ]; then
            echo "FAIL $f [$ex]: exit $code, expected $want"; head -8 "$tmp/err-$ex" | sed 's/^/    /'; continue; fi
        check "$f [$ex]" "$base.out" "$tmp/out-$ex"
        [ "$mode" = update ] && { echo "$code" > "$base.code"; break; }
    done ;;
*fmt)
    "$FLOWC" fmt - < "$f" > "$tmp/out" 2> "$tmp/err"; code=$?
    if [ "$code" != 0 ]; then echo "FAIL $f: flowc fmt exit $code"; head -5 "$tmp/err"; exit 0; fi
    check "$f" "$base.out" "$tmp/out" ;;
*) echo "FAIL $f: no golden rule for folder $dir" ;;
esac
