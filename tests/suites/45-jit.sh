#!/bin/sh
# The JIT against the interpreter on every run golden (tests/run/*.flow): flowrun
# with --no-jit and with the JIT must print the same stdout, the same stderr and
# exit the same way (inline executor: lambdas run in flowrun itself). Plus: the JIT
# really compiles the lambdas of a plan (FLOW_JIT_STATS), and a run-time error in a
# lambda names the same .flow line and column both ways.
BUILD=${BUILD:-build}
FLOWC=${FLOWC:-$BUILD/bin/flowc}; FLOWRUN=${FLOWRUN:-$BUILD/bin/flowrun}
case $FLOWC in /*) ;; *) FLOWC=$(pwd)/$FLOWC ;; esac
case $FLOWRUN in /*) ;; *) FLOWRUN=$(pwd)/$FLOWRUN ;; esac
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# the state and work folders carry a time stamp: normalise what may differ
norm() { sed -e "s|$tmp[^ ]*|TMP|g" -e 's/[0-9.]* ms/N ms/g' -e 's/[0-9.]*s elapsed/Ns elapsed/g' "$1" | sort; }  # failures of parallel instances come in any order

for f in tests/run/*.flow; do
    base=${f%.flow}; dir=$(dirname "$f"); name=$(basename "$base")
    d="$tmp/$name"; mkdir -p "$d"
    "$FLOWC" -o "$d/p.plan" "$f" 2> "$d/flowc.err" || { echo "FAIL jit-golden $name: does not compile: $(head -1 "$d/flowc.err")"; continue; }
    cp "$dir"/lib*.so "$d/" 2>/dev/null
    args=""; [ -f "$base.args" ] && args=$(cat "$base.args")
    SRCDIR=$(cd "$dir" && pwd)
    for mode in jit nojit; do
        flag=""; [ $mode = nojit ] && flag=--no-jit
        (cd "$d" && eval "\"$FLOWRUN\" p.plan $flag --executor inline --progress none --state \"$d/state-$mode\" $args") \
            > "$d/out-$mode" 2> "$d/err-$mode"; echo $? > "$d/code-$mode"
    done
    if ! cmp -s "$d/out-jit" "$d/out-nojit"; then
        echo "FAIL jit-golden $name: stdout differs"; diff "$d/out-nojit" "$d/out-jit" | head -8 | sed 's/^/    /'
    elif ! cmp -s "$d/code-jit" "$d/code-nojit"; then
        echo "FAIL jit-golden $name: exit $(cat "$d/code-jit") with the JIT, $(cat "$d/code-nojit") without"
    elif [ "$(norm "$d/err-jit")" != "$(norm "$d/err-nojit")" ]; then
        echo "FAIL jit-golden $name: stderr differs"; diff "$d/err-nojit" "$d/err-jit" | head -8 | sed 's/^/    /'
    else
        echo "PASS jit-golden $name"
    fi
done

# the JIT compiles the lambdas (when built with LLVM)
cat > "$tmp/m.flow" <<'FLOW'
flow main(n: int = 1000) -> int {
    return len(range(n).map(x => x * 3 + 1).filter(x => x % 7 == 0))
}
FLOW
"$FLOWC" -o "$tmp/m.plan" "$tmp/m.flow"
out=$(cd "$tmp" && FLOW_JIT_STATS=1 "$FLOWRUN" m.plan --executor inline --progress none 2>&1)
case "$out" in
*"built without LLVM"*|*"0 lambdas compiled"*) echo "FAIL jit-compiles: $out" ;;
*"2 lambdas compiled"*"143") echo "PASS jit-compiles" ;;
*) echo "FAIL jit-compiles: $out" ;;
esac

# a run-time error: the same message and position both ways
cat > "$tmp/e.flow" <<'FLOW'
flow main(n: int = 10) -> [int] {
    return range(n).map(x => 100 / (x - 7))
}
FLOW
"$FLOWC" -o "$tmp/e.plan" "$tmp/e.flow"
(cd "$tmp" && "$FLOWRUN" e.plan --executor inline --progress none > o1 2> e1; echo $? > c1)
(cd "$tmp" && "$FLOWRUN" e.plan --no-jit --executor inline --progress none > o2 2> e2; echo $? > c2)
if cmp -s "$tmp/e1" "$tmp/e2" && cmp -s "$tmp/c1" "$tmp/c2" && grep -q "division by zero" "$tmp/e1" \
    && grep -q "2:" "$tmp/e1"; then
    echo "PASS jit-error-position"
else
    echo "FAIL jit-error-position:"; cat "$tmp/e1" "$tmp/e2" | head -6 | sed 's/^/    /'
fi

# a fused chain (docs/jit.md): a failing middle stage is reported under its own name
# and position, as before fusion, both ways
cat > "$tmp/f.flow" <<'FLOW'
flow main(n: int = 10) -> int {
    return len(range(n).map(x => x + 1).map(x => 100 / (x - 7)).filter(x => x > 0))
}
FLOW
"$FLOWC" -o "$tmp/f.plan" "$tmp/f.flow"
(cd "$tmp" && "$FLOWRUN" f.plan --executor inline --progress none > o1 2> e1; echo $? > c1)
(cd "$tmp" && "$FLOWRUN" f.plan --no-jit --executor inline --progress none > o2 2> e2; echo $? > c2)
if cmp -s "$tmp/e1" "$tmp/e2" && [ "$(cat "$tmp/c1")" = 1 ] && grep -q "map: division by zero in '/' (at 2:50)" "$tmp/e1" && grep -q '2 other steps not run' "$tmp/e1"; then
    echo "PASS jit-fused-failure"
else
    echo "FAIL jit-fused-failure:"; cat "$tmp/e1" "$tmp/e2" | head -6 | sed 's/^/    /'
fi
