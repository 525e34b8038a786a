#!/bin/sh
# --executor slurm on a real three-node Slurm cluster that this suite starts and
# stops itself (tests/harness/slurm-cluster.sh: munge, slurmctld, three slurmd in
# network namespaces; docs/distributed.md "Slurm"): W1 with 20,000 instances, depth
# first across array elements, a segfault and a timeout, a node lost mid-run, the
# driver SIGKILLed and resumed, SIGTERM cancelling everything, the squeue budget,
# lingering workers taking guest batches,
# an element one poll misses, and the refusals. Where the cluster cannot run here every test is a SKIP with the
# reason. Task libraries: tests/lib.
# Not under SANITIZED=1: the cluster's services run once, in the plain pass.
[ "$SANITIZED" = 1 ] && exit 0
T=$(mktemp -d)
ROOT=$(pwd)
C=$T/cluster
HARNESS="$ROOT/tests/harness/slurm-cluster.sh"
TESTS="w1 depth-first crash-timeout node-lost resume sigterm squeue-budget missed-poll refused"
trap 'sh "$HARNESS" stop "$C" > /dev/null 2>&1; rm -rf "$T"' EXIT
trap 'exit 1' INT TERM
export FLOWRUN_REMOTE_GRACE_MS=3000 FLOWRUN_REMOTE_POLL_MS=300

pass() { echo "PASS slurm:$1"; }
fail() { echo "FAIL slurm:$1: $2"; }

if ! why=$(sh "$HARNESS" check); then
    for t in $TESTS; do echo "SKIP slurm:$t: $why"; done
    exit 0
fi
if ! sh "$HARNESS" start "$C" > "$T/start.out" 2> "$T/start.err"; then
    for t in $TESTS; do fail "$t" "the cluster did not start: $(tail -n 3 "$T/start.err" | tr '\n' ' ')"; done
    exit 0
fi
export SLURM_CONF="$C/slurm.conf"

compile() {
    if ! "$FLOWC" "$T/$1.flow" -o "$T/$1.plan" 2> "$T/$1.cerr"; then
        fail "$1" "flowc: $(head -3 "$T/$1.cerr")"
        return 1
    fi
}
# jobs of the cluster still queued or running
active() { squeue -h -t PD,R,CG,CF -o %i 2> /dev/null | wc -l; }
wait_idle() {
    i=0
    while [ "$(active)" != 0 ] && [ $i -lt 150 ]; do sleep 0.2; i=$((i + 1)); done
}

# 1. W1: 20,000 instances and a sum give what the process executor gives; and the
#    driver asked squeue at most once per poll interval (its FLOW_DEBUG count)
cat > "$T/w1.flow" << FLOW
library s = "$ROOT/tests/lib/libsched.so"
task inc(x: int) -> int = s.inc
task sum(xs: [int]) -> int = s.sum
flow w1(n: int = 20000) -> int {
    return sum(inc.expand(x = range(n)))
}
FLOW
if compile w1; then
    "$FLOWRUN" "$T/w1.plan" --executor process -j 2 --progress none --state "$T/s-proc" \
        > "$T/w1.want" 2> "$T/w1.werr"
    t0=$(date +%s%N)
    FLOW_DEBUG=1 "$FLOWRUN" "$T/w1.plan" --executor slurm --progress none --state "$T/s-w1" \
        > "$T/w1.out" 2> "$T/w1.err"
    code=$?
    ms=$((($(date +%s%N) - t0) / 1000000))
    why=""
    [ "$code" = 0 ] || why="exit $code: $(head -3 "$T/w1.err")"
    [ -z "$why" ] && ! cmp -s "$T/w1.out" "$T/w1.want" &&
        why="result $(cat "$T/w1.out"), want $(cat "$T/w1.want")"
    nb=$(grep -o '[0-9]* sbatch' "$T/w1.err" | cut -d' ' -f1)
    [ -z "$why" ] && { [ -z "$nb" ] || [ "$nb" -lt 1 ]; } && why="no sbatch count: $(cat "$T/w1.err")"
    if [ -z "$why" ]; then pass w1; else fail w1 "$why"; fi
    # guests (docs/distributed.md): the workers linger (1.5 s on Slurm) and take the
    # queue's next jobs, so the run starts few elements: at most two arrays' worth of
    # the 24 slots, with guest batches
    line=$(grep 'remote: [0-9]* elements started' "$T/w1.err")
    ne=$(echo "$line" | sed -n 's/.*remote: \([0-9]*\) elements started.*/\1/p')
    ng=$(echo "$line" | sed -n 's/.* \([0-9]*\) guest batches.*/\1/p')
    if [ "$code" != 0 ]; then
        fail guests "the run failed (w1 above)"
    elif [ -z "$ne" ] || [ -z "$ng" ] || [ "$ng" = 0 ] || [ "$ne" -gt 48 ]; then
        fail guests "want guest batches and at most 48 elements started: '$line'"
    else
        pass guests
    fi
    # the squeue budget: calls <= run time / poll interval + 2
    nq=$(grep -o '[0-9]* squeue' "$T/w1.err" | cut -d' ' -f1)
    budget=$((ms / 300 + 2))
    if [ -z "$nq" ]; then
        fail squeue-budget "no squeue count in: $(cat "$T/w1.err")"
    elif [ "$nq" -gt "$budget" ]; then
        fail squeue-budget "$nq squeue calls in ${ms} ms at 300 ms a poll (budget $budget)"
    elif [ "$nq" -lt 1 ]; then
        fail squeue-budget "no squeue call at all"
    else
        pass squeue-budget
    fi
fi

# 2. W2 depth first across array elements: a 3-stage chain over an expand of 480
#    on 24 slots. Depth first, the second stage starts before half of the first
#    started, the first chain completes before the first stage ends and before
#    half of all the instances started (the issue's words; stage by
#    stage, --schedule breadth, fails both: its first b starts at ~6 s, half of a
#    at 3 s; its first chain ends at ~12 s, the last a at ~9 s). Timings from
#    flowrun show --json: starts in whole seconds, so "before the first stage ends"
#    allows a tie within one second (seen on the fresh-machine check: 6.3 s both),
#    and so does "before half of all started" (seen there: 9.3 s against 9 s).
cat > "$T/w2.flow" << FLOW
task a(x: int) -> int = sh "sleep 0.25; echo {x}"
task b(x: int) -> int = sh "sleep 0.25; echo {x}"
task c(x: int) -> int = sh "sleep 0.25; echo {x}"
flow w2(n: int = 480) -> [int] {
    return c.expand(x = b.expand(x = a.expand(x = range(n))))
}
FLOW
if compile w2; then
    "$FLOWRUN" "$T/w2.plan" --executor slurm --progress none --state "$T/s-w2" \
        > "$T/w2.out" 2> "$T/w2.err"
    code=$?
    why=""
    [ "$code" = 0 ] || why="exit $code: $(head -3 "$T/w2.err")"
    if [ -z "$why" ]; then
        "$FLOWRUN" show 1 --json --state "$T/s-w2" > "$T/w2.json" 2> "$T/w2.serr"
        why=$(python3 - "$T/w2.json" << 'PY'
import json, sys, datetime
d = json.load(open(sys.argv[1]))
def t(s): return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").timestamp()
st = {k: sorted(t(i["started"]) for i in d["instances"] if i["task"] == k) for k in "abc"}
c_end = min(t(i["started"]) + i["duration"] for i in d["instances"] if i["task"] == "c")
a_end = max(t(i["started"]) + i["duration"] for i in d["instances"] if i["task"] == "a")
if any(len(v) != 480 for v in st.values()):
    print("instances: %s, want 480 each" % {k: len(v) for k, v in st.items()})
elif not st["b"][0] < st["a"][240]:
    print("the first b started %.0f s after the start, half of a had started at %.0f s"
          % (st["b"][0] - st["a"][0], st["a"][240] - st["a"][0]))
elif not c_end <= a_end + 1:  # starts are whole seconds: equal within one is a tie
    print("the first chain ended %.1f s after the start, the last a ended at %.1f s"
          % (c_end - st["a"][0], a_end - st["a"][0]))
else:
    # the issue's words: the first chain completes before half the elements ran
    every = sorted(st["a"] + st["b"] + st["c"])
    # (within one second, starts being whole seconds: breadth first misses by more, its
    # first c starting after every a and b, two thirds of the instances)
    if not c_end <= every[len(every) // 2] + 1:
        print("the first chain ended %.1f s after the start, after half of the %d instances "
              "had started (%.0f s)" % (c_end - every[0], len(every), every[len(every) // 2] - every[0]))
PY
)
    fi
    if [ -z "$why" ]; then pass depth-first; else fail depth-first "$why"; fi
fi

# 3. a segfaulting task and a timing-out task fail exactly their instances
cat > "$T/crash.flow" << FLOW
library crash = "$ROOT/tests/lib/libcrash.so"
task pick(x: int) -> int = crash.crash_pick with {timeout: 2s}
flow main() -> [int] {
    return pick.expand(x = [1, 3, 9, 2, 4, 7])
}
FLOW
if compile crash; then
    "$FLOWRUN" "$T/crash.plan" --executor slurm --progress none --state "$T/s-crash" \
        > "$T/crash.out" 2> "$T/crash.err"
    code=$?
    why=""
    [ "$code" = 1 ] || why="exit $code, want 1: $(head -3 "$T/crash.err")"
    for m in "pick[1]: worker killed by signal 11 (Segmentation fault)" "pick[2]: timed out after 2s"; do
        [ -z "$why" ] && ! grep -qF "$m" "$T/crash.err" && why="stderr does not say '$m': $(cat "$T/crash.err")"
    done
    "$FLOWRUN" show 1 --state "$T/s-crash" > "$T/crash.show" 2>&1
    [ -z "$why" ] && [ "$(grep -c ' succeeded ' "$T/crash.show")" != 4 ] &&
        why="not exactly the other four succeeded: $(cat "$T/crash.show")"
    if [ -z "$why" ]; then pass crash-timeout; else fail crash-timeout "$why"; fi
fi

# 4. resume: the driver SIGKILLed mid-run; flowrun resume re-attaches to the
#    elements still running and submits nothing (no sbatch call), and runs no
#    finished instance again
cat > "$T/res.flow" << FLOW
task slow(x: int) -> int = sh "echo {x} >> $T/res.ran; sleep {x}; echo {x}"
flow main() -> [int] {
    return slow.expand(x = [0, 0, 0, 4, 4, 4])
}
FLOW
if compile res; then
    wait_idle
    FLOW_DEBUG=1 "$FLOWRUN" "$T/res.plan" --executor slurm --progress none --state "$T/s-res" \
        > "$T/res.out" 2> "$T/res.err1" &
    drv=$!
    i=0
    while [ "$(wc -l < "$T/res.ran" 2> /dev/null || echo 0)" -lt 6 ] && [ $i -lt 200 ]; do
        sleep 0.1; i=$((i + 1)); done
    sleep 1
    kill -9 $drv
    wait $drv 2> /dev/null
    before=$(sort "$T/res.ran" | tr '\n' ' ')
    running=$(active)
    FLOW_DEBUG=1 "$FLOWRUN" resume 1 --executor slurm --state "$T/s-res" --progress none \
        > "$T/res.out" 2> "$T/res.err"
    code=$?
    why=""
    [ "$running" -gt 0 ] || why="no element was still running when the driver was killed"
    [ -z "$why" ] && [ "$code" != 0 ] && why="resume: exit $code: $(head -3 "$T/res.err")"
    [ -z "$why" ] && [ "$(cat "$T/res.out")" != "[0,0,0,4,4,4]" ] && why="result $(cat "$T/res.out")"
    [ -z "$why" ] && [ "$(wc -l < "$T/res.ran")" != 6 ] &&
        why="instances started $(wc -l < "$T/res.ran") times (before the resume: $before), want 6"
    [ -z "$why" ] && ! grep -q 'slurm: 0 sbatch' "$T/res.err" &&
        why="the resume submitted again: $(grep 'slurm:' "$T/res.err")"
    nb=$(sqlite3 "$T/s-res/state.db" "SELECT count(*) FROM remote_batches WHERE run=1" 2>&1)
    [ -z "$why" ] && [ "$nb" != 1 ] && why="$nb batches recorded, want 1"
    if [ -z "$why" ]; then pass resume; else fail resume "$why"; fi
fi

# 5. SIGTERM to the driver cancels every job of the run (scancel): nothing of it
#    stays queued or running
cat > "$T/term.flow" << FLOW
task slow(x: int) -> int = sh "sleep 30; echo {x}"
flow main(n: int = 60) -> [int] {
    return slow.expand(x = range(n))
}
FLOW
if compile term; then
    wait_idle
    "$FLOWRUN" "$T/term.plan" --executor slurm --progress none --state "$T/s-term" \
        > "$T/term.out" 2> "$T/term.err" &
    drv=$!
    i=0
    while [ "$(active)" -lt 10 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    had=$(active)
    kill -TERM $drv
    wait $drv
    code=$?
    sleep 1
    left=$(squeue -h -t PD,R -o '%i %T' | head -3 | tr '\n' ' ')
    why=""
    [ "$had" -ge 10 ] || why="only $had jobs were queued or running before SIGTERM"
    [ -z "$why" ] && [ "$code" = 0 ] && why="exit 0 after SIGTERM"
    [ -z "$why" ] && [ -n "$left" ] && why="still queued or running after SIGTERM: $left"
    if [ -z "$why" ]; then pass sigterm; else fail sigterm "$why"; fi
fi

# 6. a node lost mid-run (its slurmd and every process in its namespace killed): its
#    unfinished instances fail after the grace period and are retried (retries: 1);
#    the run succeeds
cat > "$T/node.flow" << FLOW
task slow(x: int) -> int = sh "sleep 3; echo {x}" with {retries: 1}
flow main(n: int = 48) -> int {
    return len(slow.expand(x = range(n)))
}
FLOW
if compile node; then
    wait_idle
    "$FLOWRUN" "$T/node.plan" --executor slurm --progress none --state "$T/s-node" \
        > "$T/node.out" 2> "$T/node.err" &
    drv=$!
    i=0
    while [ "$(squeue -h -t R -w n1 -o %i 2> /dev/null | wc -l)" -lt 1 ] && [ $i -lt 100 ]; do
        sleep 0.1; i=$((i + 1)); done
    sleep 1
    on_n1=$(squeue -h -t R -w n1 -o %i | wc -l)
    ns=$(sh "$HARNESS" netns "$C" 1)
    pids=$(ip netns pids "$ns")
    [ -n "$pids" ] && kill -9 $pids
    wait $drv
    code=$?
    why=""
    [ "$on_n1" -gt 0 ] || why="nothing ran on n1 to lose"
    [ -z "$why" ] && [ "$code" != 0 ] && why="exit $code: $(head -3 "$T/node.err")"
    [ -z "$why" ] && [ "$(cat "$T/node.out")" != 48 ] && why="result $(cat "$T/node.out")"
    "$FLOWRUN" show 1 --state "$T/s-node" > "$T/node.show" 2>&1
    retried=$(grep -cE ' succeeded .* 2 ' "$T/node.show")
    [ -z "$why" ] && [ "$retried" -lt 1 ] && why="no instance was retried: $(head -5 "$T/node.show")"
    if [ -z "$why" ]; then pass node-lost; else fail node-lost "$why"; fi
fi

# 7. an element one poll misses lives on: only one still unseen (or ended without
#    its results) when the grace period is over fails. A running element is renamed
#    away from the run's job name for 1.2 s (four polls at 0.3 s; grace 3 s), then
#    back; its task runs 8 s. (Until 2026-12-07 the deadline the missed poll set was
#    never cleared, and the element failed at 3 s while it ran.)
cat > "$T/miss.flow" << FLOW
task nap(x: int) -> int = sh "sleep 8; echo {x}"
flow main(n: int = 4) -> int {
    return len(nap.expand(x = range(n)))
}
FLOW
if compile miss; then
    wait_idle
    FLOWRUN_REMOTE_ONE_PER_INSTANCE=1 "$FLOWRUN" "$T/miss.plan" --executor slurm \
        --progress none --state "$T/s-miss" > "$T/miss.out" 2> "$T/miss.err" &
    drv=$!
    i=0
    while [ "$(squeue -h -r -t R -o %i 2> /dev/null | wc -l)" -lt 4 ] && [ $i -lt 100 ]; do
        sleep 0.1; i=$((i + 1)); done
    one=$(squeue -h -r -t R -o '%i %j' | head -1)
    id=${one%% *}
    name=${one#* }
    scontrol update jobid="$id" name=flow-hidden
    sleep 1.2
    hidden=$(squeue -h -r -t R --name=flow-hidden -o %i)
    scontrol update jobid="$id" name="$name"
    wait $drv
    code=$?
    why=""
    { [ -n "$id" ] && [ "$hidden" = "$id" ]; } || why="could not hide an element ('$one', '$hidden')"
    [ -z "$why" ] && [ "$code" != 0 ] && why="exit $code: $(head -3 "$T/miss.err")"
    [ -z "$why" ] && [ "$(cat "$T/miss.out")" != 4 ] && why="result $(cat "$T/miss.out")"
    if [ -z "$why" ]; then pass missed-poll; else fail missed-poll "$why"; fi
fi

# 8. refusals: --slurm-* without --executor slurm; an unknown key of slurm: in
#    flow.yaml; a partition that does not exist; a flag sbatch refuses (one line)
if [ -f "$T/w1.plan" ]; then
    why=""
    "$FLOWRUN" "$T/w1.plan" --slurm-partition flow --progress none --state "$T/s-bad" \
        > /dev/null 2> "$T/bad1.err"
    c=$?
    { [ "$c" = 2 ] && grep -q -- "--slurm-partition goes with --executor slurm" "$T/bad1.err"; } ||
        why="--slurm-partition under process: exit $c: $(cat "$T/bad1.err")"
    printf 'executor: slurm\nslurm:\n  partiton: flow\n' > "$T/bad.yaml"
    "$FLOWRUN" "$T/w1.plan" --config "$T/bad.yaml" --progress none --state "$T/s-bad" \
        > /dev/null 2> "$T/bad2.err"
    c=$?
    [ -z "$why" ] && { { [ "$c" = 2 ] && grep -q "slurm: unknown key 'partiton'" "$T/bad2.err"; } ||
        why="slurm: partiton: exit $c: $(cat "$T/bad2.err")"; }
    "$FLOWRUN" "$T/w1.plan" --executor slurm --slurm-partition nosuch --progress none \
        --state "$T/s-bad" > /dev/null 2> "$T/bad3.err"
    c=$?
    [ -z "$why" ] && { { [ "$c" = 2 ] && grep -q "partition nosuch has no CPUs up" "$T/bad3.err"; } ||
        why="--slurm-partition nosuch: exit $c: $(cat "$T/bad3.err")"; }
    "$FLOWRUN" "$T/w1.plan" --executor slurm --slurm-flag=--bogus-flag --param n=5 \
        --progress none --state "$T/s-bad" > /dev/null 2> "$T/bad4.err"
    c=$?
    [ -z "$why" ] && { { [ "$c" = 1 ] && grep -q "slurm could not start batch 0: sbatch: unrecognized option .--bogus-flag" "$T/bad4.err"; } ||
        why="--slurm-flag=--bogus-flag: exit $c: $(cat "$T/bad4.err")"; }
    printf 'executor: slurm\nslurm:\n  sbatch_flags: ["nice"]\n' > "$T/bad5.yaml"
    "$FLOWRUN" "$T/w1.plan" --config "$T/bad5.yaml" --progress none --state "$T/s-bad" \
        > /dev/null 2> "$T/bad5.err"
    c=$?
    [ -z "$why" ] && { { [ "$c" = 2 ] && grep -q "expected an sbatch flag (starting with '-'), got 'nice'" "$T/bad5.err"; } ||
        why="slurm: sbatch_flags: [nice]: exit $c: $(cat "$T/bad5.err")"; }
    # a C task with image: would run outside its image on a node: refused
    cat > "$T/img.flow" << FLOW
library s = "$ROOT/tests/lib/libsched.so"
task inc(x: int) -> int = s.inc with {image: "localhost/any:1"}
flow main() -> [int] { return inc.expand(x = [1, 2]) }
FLOW
    if "$FLOWC" "$T/img.flow" -o "$T/img.plan" 2> "$T/img.cerr"; then
        "$FLOWRUN" "$T/img.plan" --executor slurm --progress none --state "$T/s-bad" \
            > /dev/null 2> "$T/bad6.err"
        c=$?
        [ -z "$why" ] && { { [ "$c" = 2 ] && grep -q "task .inc. declares image \"localhost/any:1\": --executor slurm cannot run a C task in its image yet" "$T/bad6.err"; } ||
            why="a C task with image: under slurm: exit $c: $(cat "$T/bad6.err")"; }
    else
        [ -z "$why" ] && why="flowc img.flow: $(head -3 "$T/img.cerr")"
    fi
    # flow.yaml's slurm: section is used (partition flow exists: the run works)
    printf 'executor: slurm\nslurm:\n  partition: flow\n  time_limit: "10"\n  sbatch_flags: ["--nice=0"]\n  poll_interval: 200\n' > "$T/good.yaml"
    "$FLOWRUN" "$T/w1.plan" --config "$T/good.yaml" --param n=50 --progress none \
        --state "$T/s-good" > "$T/good.out" 2> "$T/good.err"
    c=$?
    [ -z "$why" ] && { { [ "$c" = 0 ] && [ "$(cat "$T/good.out")" = 1275 ]; } ||
        why="flow.yaml slurm: section: exit $c: $(cat "$T/good.err")"; }
    if [ -z "$why" ]; then pass refused; else fail refused "$why"; fi
fi
exit 0
