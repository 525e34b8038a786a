#!/bin/sh
# The scheduler and `flowrun run` beyond stdout goldens: the failure summary on
# stderr, depth-first order, interrupts, flow choice, executors, bad plans and
# parameters. Uses programs of tests/run/ and tests/lib/libsched.so.
FLOWC=${FLOWC:-$(pwd)/build/bin/flowc}
FLOWRUN=${FLOWRUN:-$(pwd)/build/bin/flowrun}
RUN=$(pwd)/tests/run
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

pass() { echo "PASS sched: $1"; }
fail() { echo "FAIL sched: $1"; [ -n "$2" ] && sed 's/^/    /' "$2" | head -8; }
compile() { "$FLOWC" -o "$tmp/$1.plan" "$RUN/$1.flow" 2> "$tmp/flowc.err" || fail "flowc $1" "$tmp/flowc.err"; }
# run NAME PLAN [args...]: stdout in $tmp/out, stderr in $tmp/err, exit code in $code
run() { n=$1; shift; (cd "$tmp" && "$FLOWRUN" "$@" > "$tmp/out" 2> "$tmp/err"); code=$?; }
expect_code() { # name want
    if [ "$code" = "$2" ]; then pass "$1"; else fail "$1: exit $code, expected $2" "$tmp/err"; fi; }
expect_err() { # name text
    if grep -qF -- "$2" "$tmp/err"; then pass "$1"; else fail "$1: stderr lacks '$2'" "$tmp/err"; fi; }

for p in failure max_map zip_mismatch depth_first depth_first_map map_stream several_flows interrupt params expand_reduce; do
    compile $p
done

for ex in inline process; do
    # the summary: instance name (its let and map index), label, error and line:col of the call
    run s failure.plan --executor $ex --progress none
    expect_code "failure exits 1 [$ex]" 1
    expect_err "summary names instance, label, error, position [$ex]" \
        'a[1] "item-1": odd input 1 ('
    expect_err "summary gives line:col [$ex]" 'failure.flow:8:13)'
    expect_err "summary counts upstream-failed [$ex]" 'b: 2 instances not run (upstream failed)'
    [ -s "$tmp/out" ] && fail "failure prints no result [$ex]" "$tmp/out" || pass "failure prints no result [$ex]"

    run s max_map.plan --executor $ex --progress none
    expect_err "max_map names task, size, limit [$ex]" "'square' would expand to 5 instances, more than max_map 3"
    run s zip_mismatch.plan --executor $ex --progress none
    expect_err "zip names both lengths [$ex]" 'lists have different lengths (3 and 4)'
    run s map_stream.plan --executor $ex --progress none
    expect_err "a map's lambda error fails its element [$ex]" "b[2]: division by zero in '/'"

    # depth-first: element 0's third stage before element 19's first stage
    # (also through maps between the stages, evaluated per element)
    for prog in depth_first depth_first_map; do
    for sched in depth breadth; do
        rm -f "$tmp/order.log"
        run s $prog.plan --executor $ex --progress none -j 2 --schedule $sched --no-cache \
            --param log="$tmp/order.log" --param ms=5
        c0=$(grep -n '^c 0 ' "$tmp/order.log" | cut -d: -f1)
        a19=$(grep -n '^a 19 ' "$tmp/order.log" | cut -d: -f1)
        if [ "$code" != 0 ] || [ -z "$c0" ] || [ -z "$a19" ]; then
            fail "$prog $sched-first run [$ex]: exit $code" "$tmp/err"
        elif [ $sched = depth ] && [ "$c0" -lt "$a19" ]; then
            pass "$prog: first chain done (line $c0) before the last first stage (line $a19) [$ex]"
        elif [ $sched = breadth ] && [ "$c0" -gt "$a19" ]; then
            pass "$prog breadth-first: every first stage (line $a19) before a third (line $c0) [$ex]"
        else
            fail "$prog $sched-first order [$ex]: c 0 at line $c0, a 19 at line $a19" "$tmp/order.log"
        fi
    done
    done

    # SIGINT: stop cleanly, exit 3. (The inline executor's wait may run a queued task
    # in the scheduler's own thread, so there the stop comes when that task ends.)
    secs=20; [ $ex = inline ] && secs=2
    (cd "$tmp" && exec "$FLOWRUN" interrupt.plan --executor $ex --progress none -j 2 \
        --param secs=$secs > "$tmp/out" 2> "$tmp/err") &
    pid=$!
    sleep 0.5
    kill -INT $pid
    t0=$(date +%s)
    wait $pid; code=$?
    t1=$(date +%s)
    expect_code "SIGINT exits 3 [$ex]" 3
    if [ $((t1 - t0)) -le 5 ]; then pass "SIGINT stops promptly [$ex]"; else fail "SIGINT took $((t1 - t0)) s [$ex]"; fi
    expect_err "interrupt summary [$ex]" "interrupted"
done

# timeout (enforced by the process executor): the instance fails with a timeout,
# a retry runs it again, the summary names it
cat > "$tmp/timeout.flow" <<FLOW
task nap(x: int) -> str = sh "sleep {x}; echo {x}" with {timeout: 300ms, retries: 1}
flow main() -> [str] {
    return nap.expand(x = [0, 5])
}
FLOW
"$FLOWC" -o "$tmp/timeout.plan" "$tmp/timeout.flow" 2> "$tmp/flowc.err" || fail "flowc timeout" "$tmp/flowc.err"
t0=$(date +%s)
run s timeout.plan --executor process --progress none
t1=$(date +%s)
expect_code "timeout fails the run [process]" 1
expect_err "timeout names the instance [process]" "nap[1]"
[ $((t1 - t0)) -le 4 ] && pass "timeout cuts the task short [process]" || fail "timeout took $((t1 - t0)) s"

# flow choice
run s several_flows.plan --progress none
expect_code "several flows need --flow" 2
expect_err "the error lists the flows" "several flows (first, second)"
run s several_flows.plan --flow first --progress none
[ "$code" = 0 ] && [ "$(cat "$tmp/out")" = 3 ] && pass "--flow first" || fail "--flow first" "$tmp/err"
run s several_flows.plan --flow third --progress none
expect_err "unknown --flow lists the flows" "no flow named 'third' in the plan (flows: first, second)"

# usage and plan errors: one line, exit 2
run s expand_reduce.plan --executor nomad
expect_code "an unknown executor exits 2" 2
expect_err "nomad is not an executor of this build" "expects inline, process, kubernetes or slurm, got 'nomad'"
run s expand_reduce.plan -j 0
expect_code "-j 0 is a usage error" 2
run s expand_reduce.plan --schedule sideways
expect_code "bad --schedule" 2
run s expand_reduce.plan --max-map x
expect_code "bad --max-map" 2
head -c 100 "$tmp/expand_reduce.plan" > "$tmp/trunc.plan"
run s trunc.plan
expect_code "truncated plan exits 2" 2
[ "$(wc -l < "$tmp/err")" -le 1 ] && pass "truncated plan: one line" || fail "truncated plan: one line" "$tmp/err"
echo "not a plan" > "$tmp/text.plan"
run s text.plan
expect_code "text file as plan exits 2" 2
run s missing.plan
expect_code "missing plan exits 2" 2

# parameters
run s params.plan --progress none
expect_err "missing parameter named with its type" "missing parameter 'name' (str) for flow main"
run s params.plan --param name=x --param n=three
expect_err "ill-typed parameter" "parameter 'n' (int)"
run s params.plan --param name=x --param colour=red
expect_err "unknown parameter lists the known ones" "unknown parameter 'colour' for flow main (its parameters: name, n, bs, flag)"
run s params.plan --param name
expect_code "--param without = is a usage error" 2
printf 'name: [unclosed\n' > "$tmp/bad.yaml"
run s params.plan --params "$tmp/bad.yaml"
expect_code "bad YAML exits 2" 2
run s params.plan --params "$tmp/none.yaml"
expect_err "missing YAML file" "cannot read parameters file"

# progress: plain lines on stderr, nothing on stdout
run s expand_reduce.plan --progress plain --executor inline
[ "$code" = 0 ] && [ "$(cat "$tmp/out")" = 295 ] && grep -q "done" "$tmp/err" \
    && pass "--progress plain" || fail "--progress plain" "$tmp/err"
run s expand_reduce.plan --progress none --executor inline
[ -s "$tmp/err" ] && fail "--progress none is silent" "$tmp/err" || pass "--progress none is silent"

# embedding: a C program links libflow, opens the plan that flowc --emit=c wrote,
# binds the tasks to its own functions (no library loaded) and runs the flow
if [ "$SANITIZED" != 1 ]; then
    LIBDIR=$(dirname "$FLOWRUN")/../lib
    INC=$(cd "$(dirname "$0")/../.." && pwd)/runtime/include
    "$FLOWC" --emit=c "$RUN/expand_reduce.flow" > "$tmp/plan.c" 2> "$tmp/flowc.err"
    cat > "$tmp/host.c" <<'C'
#include <flow.h>
#include <stdio.h>
extern const unsigned char flow_plan_data[];
extern const size_t flow_plan_size;
static int64_t my_square(int64_t x) { return x * x; }
static int64_t my_inc(int64_t x) { return x + 1000; }
static int64_t my_sum(flow_list xs) {
    int64_t s = 0;
    for (int64_t i = 0; i < xs.len; i++) s += ((int64_t *)xs.items)[i];
    return s;
}
int main(void) {
    char err[300];
    flow_program *fp = flow_program_open_bytes(flow_plan_data, flow_plan_size, NULL, err, sizeof err);
    if (!fp) { fprintf(stderr, "%s\n", err); return 2; }
    if (flow_program_register(fp, "s", "square", (void *)my_square, err, sizeof err) ||
        flow_program_register(fp, "s", "inc", (void *)my_inc, err, sizeof err) ||
        flow_program_register(fp, "s", "sum", (void *)my_sum, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    flow_run_options o = {.executor = "inline", .jobs = 2};
    flow_outcome *out;
    int code = flow_program_run(fp, &o, &out);
    int64_t v = 0;
    if (code == 0 && flow_outcome_int(out, &v) == 0) printf("%lld %s\n", (long long)v, flow_outcome_json(out));
    flow_outcome_free(out);
    flow_program_close(fp);
    return code;
}
C
    if cc -o "$tmp/host" -I"$INC" "$tmp/host.c" "$tmp/plan.c" -L"$LIBDIR" -lflow \
        -Wl,-rpath,"$LIBDIR" 2> "$tmp/cc.err"; then
        (cd "$tmp" && ./host > "$tmp/out" 2> "$tmp/err"); code=$?
        # sum over x < 10 of (x*x + 1000)
        [ "$code" = 0 ] && [ "$(cat "$tmp/out")" = "10285 10285" ] && pass "embedding: plan bytes + registered functions" ||
            fail "embedding: exit $code, output '$(cat "$tmp/out")'" "$tmp/err"
    else
        fail "embedding: host program does not build" "$tmp/cc.err"
    fi
fi
