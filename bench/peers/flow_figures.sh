# bench/peers/flow_figures.sh — flow's own W1/W2 figures for the peers' ratios (sourced).
# Needs common.sh sourced and $tmp set.
flow_plans() {
    [ -f "$tmp/fw1.plan" ] && return
    cat > "$tmp/fw.flow" <<FLOW
library s = "$LIBSCHED"
task inc(x: int) -> int = s.inc
task sum(xs: [int]) -> int = s.sum
task stage(x: int, name: str, log: str, ms: int) -> int = s.stage
flow w1(n: int) -> int {
    return sum(inc.expand(x = range(n)))
}
flow w2(log: str, n: int = 1000, ms: int = 1) -> int {
    let a = stage.partial(name = "a", log = log, ms = ms).expand(x = range(n))
    let b = stage.partial(name = "b", log = log, ms = ms).expand(x = a)
    let c = stage.partial(name = "c", log = log, ms = ms).expand(x = b)
    return sum(c)
}
FLOW
    "$FLOWC" -o "$tmp/fw1.plan" "$tmp/fw.flow"
}
flow_w1() { # n -> median seconds, inline executor -j 2
    flow_plans
    : > "$tmp/fw1"
    k=0; while [ $k -lt "$RUNS" ]; do
        timed "$tmp/fw1" "$FLOWRUN" "$tmp/fw1.plan" --flow w1 --executor inline -j 2 --progress none \
            --max-map "$1" --param n="$1" --state "$tmp/state"
        k=$((k + 1))
    done
    median $(awk '{print $1}' "$tmp/fw1")
}
flow_w2() { # n -> "first total" medians, process executor -j 2, depth-first
    flow_plans
    : > "$tmp/fw2f"; : > "$tmp/fw2t"
    k=0; while [ $k -lt "$RUNS" ]; do
        rm -f "$tmp/fw2.log"
        t0=$(($(date +%s%N) / 1000000))
        "$FLOWRUN" "$tmp/fw1.plan" --flow w2 -j 2 --progress none --param log="$tmp/fw2.log" \
            --param n="$1" --state "$tmp/state" > /dev/null
        t1=$(($(date +%s%N) / 1000000))
        awk -v t0="$t0" '$1 == "c" { print ($3 - t0) / 1000; exit }' "$tmp/fw2.log" >> "$tmp/fw2f"
        echo "$t0 $t1" | awk '{ print ($2 - $1) / 1000 }' >> "$tmp/fw2t"
        k=$((k + 1))
    done
    echo "$(median $(cat "$tmp/fw2f")) $(median $(cat "$tmp/fw2t"))"
}
