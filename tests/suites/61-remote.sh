#!/bin/sh
# The remote executor's protocol end to end, on the local engine
# (FLOWRUN_REMOTE_ENGINE=local: every element of a batch is a `flowrun worker` child
# of flowrun; docs/distributed.md): batch files, result chunks, end markers, the
# driver's failure handling (crashes, timeouts, a killed worker element, a killed
# driver and `flowrun resume`) and damaged files. Task libraries: tests/lib.
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT INT TERM
ROOT=$(pwd)
export FLOWRUN_REMOTE_GRACE_MS=1500 FLOWRUN_REMOTE_POLL_MS=100

pass() { echo "PASS remote:$1"; }
fail() { echo "FAIL remote:$1: $2"; }

# compile NAME: $T/NAME.flow -> $T/NAME.plan
compile() {
    if ! "$FLOWC" "$T/$1.flow" -o "$T/$1.plan" 2> "$T/$1.cerr"; then
        fail "$1" "flowc: $(head -3 "$T/$1.cerr")"
        return 1
    fi
}

# 1. W1: 2,000 instances and a sum give what the process executor gives
cat > "$T/w1.flow" <<FLOW
library s = "$ROOT/tests/lib/libsched.so"
task inc(x: int) -> int = s.inc
task sum(xs: [int]) -> int = s.sum
flow w1(n: int = 2000) -> int {
    return sum(inc.expand(x = range(n)))
}
FLOW
if compile w1; then
    "$FLOWRUN" "$T/w1.plan" --executor process -j 2 --progress none --state "$T/s-proc" \
        > "$T/w1.want" 2> "$T/w1.werr"
    FLOWRUN_REMOTE_ENGINE=local "$FLOWRUN" "$T/w1.plan" -j 3 --progress none --state "$T/s-w1" \
        > "$T/w1.out" 2> "$T/w1.err"
    code=$?
    why=""
    [ "$code" = 0 ] || why="exit $code: $(head -3 "$T/w1.err")"
    [ -z "$why" ] && ! cmp -s "$T/w1.out" "$T/w1.want" && why="result $(cat "$T/w1.out"), want $(cat "$T/w1.want")"
    [ -z "$why" ] && [ "$(ls "$T/s-w1/remote/1/log" 2>/dev/null | grep -c '\.pid$')" -lt 2 ] &&
        why="fewer than two worker elements ran ($(ls "$T/s-w1/remote/1/log" 2>/dev/null | wc -l) log files)"
    if [ -z "$why" ]; then pass w1; else fail w1 "$why"; fi
fi
