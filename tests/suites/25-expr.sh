#!/bin/sh
# Run-time errors of lambdas, end to end: flowc compiles a small flow, flowrun runs it,
# and the failure must name the error and the lambda's line:column (docs/expressions.md).
# Env: BUILD, FLOWC, FLOWRUN (absolute paths, set by the harness).
FLOWC=${FLOWC:-$BUILD/bin/flowc}; FLOWRUN=${FLOWRUN:-$BUILD/bin/flowrun}
case $FLOWC in /*) ;; *) FLOWC=$(pwd)/$FLOWC ;; esac
case $FLOWRUN in /*) ;; *) FLOWRUN=$(pwd)/$FLOWRUN ;; esac
lib=$(pwd)/tests/lib/libsched.so
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# check NAME 'LAMBDA-LINE' 'EXPECTED TEXT' 'EXPECTED POSITION'
check() {
    name=$1
    cat > "$tmp/$name.flow" <<EOT
library s = "$lib"
task square(x: int) -> int = s.square
task sum(xs: [int]) -> int = s.sum
task join_strs(xs: [str]) -> str = s.join_strs
flow main() -> int {
    let sq = square.expand(x = range(4))
$2
    return sum(out)
}
EOT
    if ! "$FLOWC" "$tmp/$name.flow" -o "$tmp/$name.plan" 2> "$tmp/$name.cerr"; then
        echo "FAIL expr-run:$name: does not compile: $(head -1 "$tmp/$name.cerr")"; return
    fi
    (cd "$tmp" && "$FLOWRUN" "$name.plan" --progress none --state "$tmp/st-$name" \
        > "$tmp/$name.out" 2> "$tmp/$name.err"); code=$?
    if [ $code -eq 0 ]; then echo "FAIL expr-run:$name: exit 0, expected a failure"; return; fi
    if ! grep -qF "$3" "$tmp/$name.err" || ! grep -qF "$4" "$tmp/$name.err"; then
        echo "FAIL expr-run:$name: stderr lacks '$3' / '$4':"; head -3 "$tmp/$name.err"; return
    fi
    echo "PASS expr-run:$name"
}

check overflow '    let out = sq.map(x => x * 4611686018427387904)' "integer overflow in '*'" "7:27"
check div_zero '    let out = sq.map(x =>  100 / (x - 4))' "division by zero in '/'" "7:28"
check mod_zero '    let out = sq.map(x => x % x)' "modulo by zero in '%'" "7:27"
check index '    let out = sq.map(x => [1, 2, 3][x])' "index 4 out of range for a list of length 3" "7:27"
check neg '    let out = sq.map(x => -(x - 9223372036854775807 - 1))' "integer overflow in '-'" "7:27"
check parse_int '    let out = sq.map(x => int("{x}x"))' "int(): '0x' is not an integer" "7:27"
check filter '    let out = sq.filter(x => 10 / x > 1)' "division by zero in '/'" "7:30"
