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

# 2. a segfault, an exit() and an abort fail only their instances (as under the
#    process executor: the worker runs them in one)
cat > "$T/crashes.flow" <<FLOW
library crash = "$ROOT/tests/lib/libcrash.so"
task pick(x: int) -> int = crash.crash_pick
task total(xs: [int]) -> int = crash.crash_total with {trigger: "all_done"}
flow main(n: int = 9) -> int {
    let ys = pick.expand(x = range(n))
    return total(ys)
}
FLOW
if compile crashes; then
    FLOWRUN_REMOTE_ENGINE=local "$FLOWRUN" "$T/crashes.plan" -j 2 --progress none \
        --state "$T/s-crash" > "$T/crashes.out" 2> "$T/crashes.err"
    code=$?
    why=""
    [ "$code" = 0 ] || why="exit $code, want 0 (the all_done reduce runs): $(head -3 "$T/crashes.err")"
    [ -z "$why" ] && [ "$(cat "$T/crashes.out")" != 50 ] && why="result '$(cat "$T/crashes.out")', want 50"
    for m in "ys[3]: worker killed by signal 11 (Segmentation fault)" "ys[5]: task called exit(3)" \
             "ys[6]: worker killed by signal 6 (Aborted)"; do
        [ -z "$why" ] && ! grep -qF "$m" "$T/crashes.err" && why="stderr does not say '$m'"
    done
    [ -z "$why" ] && [ "$(grep -c 'failed\|killed\|called' "$T/crashes.err")" -gt 4 ] &&
        why="more than the three instances failed: $(cat "$T/crashes.err")"
    if [ -z "$why" ]; then pass crashes; else fail crashes "$why"; fi
fi

# 3. a task over its timeout is killed by the worker's executor; the others finish
cat > "$T/timeout.flow" <<FLOW
library crash = "$ROOT/tests/lib/libcrash.so"
task pick(x: int) -> int = crash.crash_pick with {timeout: 300ms}
flow main() -> [int] {
    return pick.expand(x = [1, 9, 2])
}
FLOW
if compile timeout; then
    start=$(date +%s)
    FLOWRUN_REMOTE_ENGINE=local "$FLOWRUN" "$T/timeout.plan" -j 2 --progress none \
        --state "$T/s-timeout" > "$T/timeout.out" 2> "$T/timeout.err"
    code=$?
    took=$(( $(date +%s) - start ))
    why=""
    [ "$code" = 1 ] || why="exit $code, want 1"
    [ -z "$why" ] && ! grep -qF "pick[1]: timed out after 300ms" "$T/timeout.err" &&
        why="stderr does not say 'pick[1]: timed out after 300ms': $(head -3 "$T/timeout.err")"
    [ -z "$why" ] && [ "$(grep -c 'timed out' "$T/timeout.err")" != 1 ] && why="not exactly one timeout"
    [ -z "$why" ] && [ "$took" -gt 20 ] && why="took ${took}s"
    if [ -z "$why" ]; then pass timeout; else fail timeout "$why"; fi
fi

# 4. a worker element killed (kill -9) mid-element: its unfinished jobs fail after
#    the grace period and are retried per `retries`; finished ones are not re-run
cat > "$T/slow.flow" <<FLOW
task slow(x: int) -> int = sh "echo {x} >> $T/slow.ran; sleep 1; echo {x}" with {retries: 1}
flow main(n: int = 6) -> [int] {
    return slow.expand(x = range(n))
}
FLOW
if compile slow; then
    FLOWRUN_REMOTE_ENGINE=local "$FLOWRUN" "$T/slow.plan" -j 2 --progress none \
        --state "$T/s-slow" > "$T/slow.out" 2> "$T/slow.err" &
    drv=$!
    # element 0 of batch 0 runs slow[0] then slow[1]: kill its worker during slow[0]
    i=0; while [ ! -s "$T/s-slow/remote/1/log/0.0.pid" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
    sleep 0.4
    wpid=$(cut -d' ' -f1 "$T/s-slow/remote/1/log/0.0.pid" 2>/dev/null)
    [ -n "$wpid" ] && kill -9 "$wpid"
    wait $drv
    code=$?
    why=""
    [ -n "$wpid" ] || why="no worker element to kill appeared"
    [ -z "$why" ] && [ "$code" != 0 ] && why="exit $code, want 0 (retried): $(head -3 "$T/slow.err")"
    [ -z "$why" ] && [ "$(cat "$T/slow.out")" != "[0,1,2,3,4,5]" ] && why="result $(cat "$T/slow.out")"
    "$FLOWRUN" show 1 --state "$T/s-slow" > "$T/slow.show" 2>&1
    # slow[0] and slow[1] (element 0) ran twice, the others once
    for k in 0 1; do
        [ -z "$why" ] && ! grep -qE "^slow\[$k\] .* succeeded .* 2 " "$T/slow.show" &&
            why="slow[$k] was not retried: $(grep "^slow\[$k\]" "$T/slow.show")"
    done
    [ -z "$why" ] && [ "$(grep -cE ' succeeded .* 1 ' "$T/slow.show")" != 4 ] &&
        why="the other four did not succeed at their first try: $(cat "$T/slow.show")"
    [ -z "$why" ] && [ "$(sort "$T/slow.ran" | uniq -d | tr '\n' ' ')" != "0 " ] &&
        why="re-run: $(sort "$T/slow.ran" | tr '\n' ' ') (want only 0 twice: 1 never started before the kill)"
    if [ -z "$why" ]; then pass killed-element; else fail killed-element "$why"; fi
fi

# 5. the driver SIGKILLed mid-run, then flowrun resume: finished instances are not
#    run again, elements still running are re-attached (not resubmitted)
cat > "$T/res.flow" <<FLOW
task slow(x: int) -> int = sh "echo {x} >> $T/res.ran; sleep 1; echo {x}"
flow main(n: int = 6) -> [int] {
    return slow.expand(x = range(n))
}
FLOW
if compile res; then
    FLOWRUN_REMOTE_ENGINE=local "$FLOWRUN" "$T/res.plan" -j 2 --progress none \
        --state "$T/s-res" > "$T/res.out" 2> "$T/res.err" &
    drv=$!
    # elements of two jobs each: kill the driver once the first job of each is done
    i=0; while [ "$(ls "$T/s-res/remote/1/r0" 2>/dev/null | grep -c '\.0$')" -lt 3 ] && [ $i -lt 200 ]; do
        sleep 0.05; i=$((i+1)); done
    kill -9 $drv
    wait $drv 2>/dev/null
    before=$(sort "$T/res.ran" | tr '\n' ' ')
    cp "$T/s-res/remote/1/b0.batch" "$T/kept.batch" 2>/dev/null # for 6: damaged ones
    FLOWRUN_REMOTE_ENGINE=local "$FLOWRUN" resume 1 --state "$T/s-res" -j 2 --progress none \
        > "$T/res.out" 2> "$T/res.err"
    code=$?
    why=""
    [ "$code" = 0 ] || why="resume: exit $code: $(head -3 "$T/res.err")"
    [ -z "$why" ] && [ "$(cat "$T/res.out")" != "[0,1,2,3,4,5]" ] && why="result $(cat "$T/res.out")"
    [ -z "$why" ] && [ "$(sort "$T/res.ran" | tr '\n' ' ')" != "0 1 2 3 4 5 " ] &&
        why="instances ran $(sort "$T/res.ran" | tr '\n' ' ') (before the resume: $before), want each once"
    if command -v sqlite3 > /dev/null; then
        nb=$(sqlite3 "$T/s-res/state.db" "SELECT count(*) FROM remote_batches WHERE run=1" 2>&1)
        [ -z "$why" ] && [ "$nb" != 1 ] && why="$nb batches recorded, want 1 (nothing resubmitted)"
    else
        echo "SKIP remote:resume-batches: no sqlite3 shell to read state.db (sh .ci/deps.sh sqlite3-cli)"
    fi
    [ -z "$why" ] && [ "$(ls "$T/s-res/remote/1/log" | grep -vc pid)" != 3 ] &&
        why="worker logs $(ls "$T/s-res/remote/1/log" | tr '\n' ' '), want only batch 0's three elements"
    if [ -z "$why" ]; then pass resume-reattach; else fail resume-reattach "$why"; fi
fi

# 6. damaged files: a batch file cut short, flipped or of another plan is refused by
#    the worker with one line (exit 2); a damaged result chunk fails its element's
#    jobs with one line naming the file
if [ -f "$T/w1.plan" ]; then
    # a batch to damage: a finished run's files are gone (removed once every job is
    # answered), so the one the killed driver of 5 left is used (kept.batch)
    b="$T/kept.batch"
    why=""
    if [ ! -f "$b" ]; then
        why="no batch file left by the resume test"
    else
        sz=$(wc -c < "$b")
        head -c $((sz - 5)) "$b" > "$T/cut.batch"
        cp "$b" "$T/flip.batch"
        # one bit of byte 40 flipped (writing a fixed byte left the file as it was
        # whenever that byte was already there)
        python3 -c 'import sys; b = bytearray(open(sys.argv[1], "rb").read()); b[40] ^= 0x20
open(sys.argv[1], "wb").write(b)' "$T/flip.batch"
        printf 'hello\n' > "$T/text.batch"
        for f in cut flip text; do
            FLOW_ELEMENT=0 "$FLOWRUN" worker --state "$T/s-res" --batch "$T/$f.batch" "$T/res.plan" \
                > "$T/$f.wout" 2> "$T/$f.werr"
            c=$?
            [ -z "$why" ] && [ "$c" != 2 ] && why="$f: exit $c, want 2"
            [ -z "$why" ] && [ "$(wc -l < "$T/$f.werr")" != 1 ] && why="$f: not one line: $(cat "$T/$f.werr")"
            [ -z "$why" ] && ! grep -qE "damaged batch file|not a batch file" "$T/$f.werr" &&
                why="$f: $(cat "$T/$f.werr")"
        done
        FLOW_ELEMENT=0 "$FLOWRUN" worker --state "$T/s-res" --batch "$b" "$T/w1.plan" \
            > /dev/null 2> "$T/plan.werr"
        c=$?
        [ -z "$why" ] && { [ "$c" != 2 ] || ! grep -q "is not the plan batch 0 was made for" "$T/plan.werr"; } &&
            why="another plan: exit $c: $(cat "$T/plan.werr")"
        "$FLOWRUN" worker --state "$T/s-res" --batch "$b" --element 7 "$T/res.plan" > /dev/null 2> "$T/el.werr"
        c=$?
        [ -z "$why" ] && { [ "$c" != 2 ] || ! grep -q "element 7 is not in batch 0" "$T/el.werr"; } &&
            why="element 7: exit $c: $(cat "$T/el.werr")"
        env -u FLOW_ELEMENT -u SLURM_ARRAY_TASK_ID -u JOB_COMPLETION_INDEX \
            "$FLOWRUN" worker --state "$T/s-res" --batch "$b" "$T/res.plan" > /dev/null 2> "$T/noel.werr"
        c=$?
        [ -z "$why" ] && { [ "$c" != 2 ] || ! grep -q "no element" "$T/noel.werr"; } &&
            why="no element: exit $c: $(cat "$T/noel.werr")"
    fi
    if [ -z "$why" ]; then pass damaged-batch; else fail damaged-batch "$why"; fi

    # a result chunk damaged while its element runs: put garbage where the worker's
    # second chunk goes, before the worker writes it
    rm -f "$T/res.ran"
    FLOWRUN_REMOTE_ENGINE=local "$FLOWRUN" "$T/res.plan" -j 2 --progress none \
        --state "$T/s-dmg" > "$T/dmg.out" 2> "$T/dmg.err" &
    drv=$!
    i=0; while [ ! -d "$T/s-dmg/remote/1/r0" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
    printf 'garbage' > "$T/s-dmg/remote/1/r0/.g" && mv "$T/s-dmg/remote/1/r0/.g" "$T/s-dmg/remote/1/r0/0.0"
    wait $drv
    code=$?
    why=""
    [ "$code" = 1 ] || why="exit $code, want 1"
    [ -z "$why" ] && ! grep -qF "element 0 of local job local-0: $T/s-dmg/remote/1/r0/0.0: not a result file" "$T/dmg.err" &&
        why="stderr: $(cat "$T/dmg.err")"
    [ -z "$why" ] && [ "$(grep -c 'not a result file' "$T/dmg.err")" != 2 ] &&
        why="not exactly element 0's two jobs failed: $(cat "$T/dmg.err")"
    if [ -z "$why" ]; then pass damaged-result; else fail damaged-result "$why"; fi
fi

# 7. FLOWRUN_REMOTE_ENGINE names only the local engine, with the process executor
if [ -f "$T/w1.plan" ]; then
    why=""
    FLOWRUN_REMOTE_ENGINE=slurmish "$FLOWRUN" "$T/w1.plan" --progress none --state "$T/s-bad" \
        > /dev/null 2> "$T/bad1.err"
    c=$?
    [ "$c" = 2 ] && grep -q "FLOWRUN_REMOTE_ENGINE=slurmish: the only engine" "$T/bad1.err" ||
        why="an unknown engine: exit $c: $(cat "$T/bad1.err")"
    FLOWRUN_REMOTE_ENGINE=local "$FLOWRUN" "$T/w1.plan" --executor inline --progress none \
        --state "$T/s-bad" > /dev/null 2> "$T/bad2.err"
    c=$?
    [ -z "$why" ] && { [ "$c" = 2 ] && grep -q "does not go with --executor inline" "$T/bad2.err" ||
        why="with inline: exit $c: $(cat "$T/bad2.err")"; }
    FLOWRUN_REMOTE_ENGINE=local FLOWRUN_REMOTE_GRACE_MS=soon "$FLOWRUN" "$T/w1.plan" --progress none \
        --state "$T/s-bad" > /dev/null 2> "$T/bad3.err"
    c=$?
    [ -z "$why" ] && { [ "$c" = 2 ] && grep -q "FLOWRUN_REMOTE_GRACE_MS=soon: expected milliseconds" "$T/bad3.err" ||
        why="a bad grace: exit $c: $(cat "$T/bad3.err")"; }
    FLOWRUN_REMOTE_ENGINE=local FLOWRUN_REMOTE_LINGER_MS=700000 "$FLOWRUN" "$T/w1.plan" --progress none \
        --state "$T/s-bad" > /dev/null 2> "$T/bad4.err"
    c=$?
    [ -z "$why" ] && { [ "$c" = 2 ] && grep -q "FLOWRUN_REMOTE_LINGER_MS=700000: expected milliseconds, from 0 to 600000" "$T/bad4.err" ||
        why="a bad linger: exit $c: $(cat "$T/bad4.err")"; }
    if [ -z "$why" ]; then pass refused; else fail refused "$why"; fi
fi

# 8. the worker runs tasks in the run's environment as flowrun does: --env test,
#    FLOW_ENV, its root writable, the other environments' roots read-only
mkdir -p "$T/envs"
printf 'envs:\n  prod: {root: %s/envs/p}\n  test: {root: %s/envs/t}\n' "$T" "$T" > "$T/envs/flow.yaml"
cat > "$T/env.flow" <<FLOW
task w(x: int) -> str = sh "echo hi > \$FLOW_ENV_ROOT/f{x} && echo \$FLOW_ENV; touch $T/envs/p/bad{x} 2>/dev/null && echo wrote-prod || echo ro-prod"
flow main() -> [str] {
    return w.expand(x = range(3))
}
FLOW
if compile env; then
    FLOWRUN_REMOTE_ENGINE=local "$FLOWRUN" "$T/env.plan" --config "$T/envs/flow.yaml" --env test \
        --progress none --state "$T/s-env" > "$T/env.out" 2> "$T/env.err"
    code=$?
    "$FLOWRUN" "$T/env.plan" --config "$T/envs/flow.yaml" --env test --progress none \
        --state "$T/s-env2" > "$T/env.want" 2>&1
    why=""
    [ "$code" = 0 ] || why="exit $code: $(head -3 "$T/env.err")"
    [ -z "$why" ] && ! cmp -s "$T/env.out" "$T/env.want" &&
        why="$(cat "$T/env.out"), the process executor gives $(cat "$T/env.want")"
    [ -z "$why" ] && [ "$(ls "$T/envs/t" | tr '\n' ' ')" != "f0 f1 f2 " ] && why="test's root holds $(ls "$T/envs/t")"
    [ -z "$why" ] && grep -q 'test' "$T/env.out" || why="${why:-not run in env test: $(cat "$T/env.out")}"
    if [ "$code" = 2 ] && grep -q "cannot keep this run off" "$T/env.err"; then
        # a chroot, whose / is not a mount: the run is refused, as 57-isolate finds too
        echo "SKIP remote:environment: this machine cannot isolate a run: $(head -1 "$T/env.err")"
    elif [ -z "$why" ]; then pass environment; else fail environment "$why"; fi
fi

# 9. SIGTERM to the driver mid-run: exit 3 (resumable) and every element cancelled
if [ -f "$T/res.plan" ]; then
    FLOWRUN_REMOTE_ENGINE=local "$FLOWRUN" "$T/res.plan" -j 2 --progress none \
        --state "$T/s-term" > /dev/null 2> "$T/term.err" &
    drv=$!
    i=0; while [ ! -s "$T/s-term/remote/1/log/0.1.pid" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
    pids=$(cat "$T/s-term/remote/1/log/"*.pid 2>/dev/null | cut -d' ' -f1)
    kill -TERM $drv
    wait $drv
    code=$?
    sleep 0.2
    left=""
    for p in $pids; do kill -0 "$p" 2>/dev/null && left="$left $p"; done
    why=""
    [ -n "$pids" ] || why="no element started"
    [ -z "$why" ] && [ "$code" != 3 ] && why="exit $code, want 3"
    [ -z "$why" ] && [ -n "$left" ] && why="elements still running after the driver ended:$left"
    if [ -z "$why" ]; then pass sigterm-cancels; else fail sigterm-cancels "$why"; fi
fi

# 10. depth first across elements (W2): the first a -> b -> c chain completes before
#     two thirds of the a instances ran (breadth first: all 300), the driver submitting
#     new batches as results come. 20 ms tasks: elements of about 20 and 160 instances
#     in flight (about 100 a's run before the first c here, 160 under ASan), fewer
#     than the 300 a's (a run smaller than that goes out at once: no order to show)
cat > "$T/w2.flow" <<FLOW
library s = "$ROOT/tests/lib/libsched.so"
task stage(x: int, name: str, log: str, ms: int) -> int = s.stage
task sum(xs: [int]) -> int = s.sum
flow w2(log: str, n: int = 300, ms: int = 20) -> int {
    let a = stage.partial(name = "a", log = log, ms = ms).expand(x = range(n))
    let b = stage.partial(name = "b", log = log, ms = ms).expand(x = a)
    let c = stage.partial(name = "c", log = log, ms = ms).expand(x = b)
    return sum(c)
}
FLOW
if compile w2; then
    FLOWRUN_REMOTE_ENGINE=local "$FLOWRUN" "$T/w2.plan" -j 4 --progress none --param log="$T/w2.log" \
        --state "$T/s-w2" > "$T/w2.out" 2> "$T/w2.err"
    code=$?
    before=$(awk '$1 == "a" { n++ } $1 == "c" { print n + 0; exit }' "$T/w2.log" 2>/dev/null)
    why=""
    [ "$code" = 0 ] || why="exit $code: $(head -3 "$T/w2.err")"
    [ -z "$why" ] && [ "$(cat "$T/w2.out")" != 44850 ] && why="result $(cat "$T/w2.out"), want 44850"
    [ -z "$why" ] && { [ -z "$before" ] || [ "$before" -ge 200 ]; } &&
        why="${before:-all} of the 300 a instances ran before the first c (breadth first)"
    if [ -z "$why" ]; then pass depth-first; else fail depth-first "$why"; fi
fi

# 11. secrets: a file secret reaches its task in the worker (as flowrun gives it); one
#     from an environment variable cannot reach a worker elsewhere: refused at start
mkdir -p "$T/sec"
printf 'sec-%s-Qx7\n' "$$" > "$T/sec/key.txt"
chmod 600 "$T/sec/key.txt"
printf 'secrets:\n  filekey:\n    file: key.txt\n  envtok:\n    env: S61_TOKEN\n' > "$T/sec/flow.yaml"
cat > "$T/sec.flow" <<'FLOW'
task fileread() -> str = sh "cat {secret.filekey}" with {secrets: ["filekey"]}
task envread() -> str = sh "echo $FLOW_SECRET_ENVTOK" with {secrets: ["envtok"]}
flow f1() -> str {
    return fileread()
}
flow f2() -> str {
    return envread()
}
FLOW
if compile sec; then
    FLOWRUN_REMOTE_ENGINE=local "$FLOWRUN" "$T/sec.plan" --flow f1 --config "$T/sec/flow.yaml" \
        --progress none --state "$T/s-sec" > "$T/sec.out" 2> "$T/sec.err"
    c1=$?
    S61_TOKEN=tok FLOWRUN_REMOTE_ENGINE=local "$FLOWRUN" "$T/sec.plan" --flow f2 \
        --config "$T/sec/flow.yaml" --progress none --state "$T/s-sec" > /dev/null 2> "$T/sec2.err"
    c2=$?
    why=""
    if [ "$c1" != 0 ] && grep -q "cannot be kept from" "$T/sec.err"; then
        echo "SKIP remote:secrets: tasks with secrets cannot run here: $(cat "$T/sec.err")"
        why=skip
    fi
    [ -z "$why" ] && [ "$c1" != 0 ] && why="file secret: exit $c1: $(head -3 "$T/sec.err")"
    [ -z "$why" ] && [ "$(cat "$T/sec.out")" != "\"sec-$$-Qx7\"" ] && why="file secret: got $(cat "$T/sec.out")"
    [ -z "$why" ] && { [ "$c2" = 2 ] && grep -q "secret 'envtok' comes from the environment variable S61_TOKEN" "$T/sec2.err" ||
        why="env secret: exit $c2: $(cat "$T/sec2.err")"; }
    if [ -z "$why" ]; then pass secrets; elif [ "$why" != skip ]; then fail secrets "$why"; fi
fi

# 12. guests (docs/distributed.md): workers that linger after their element take the
#     next jobs as guest batches instead of new elements being started; W1's result is
#     the process executor's
if [ -f "$T/w1.want" ]; then
    FLOWRUN_REMOTE_LINGER_MS=2000 FLOW_DEBUG=1 FLOWRUN_REMOTE_ENGINE=local "$FLOWRUN" "$T/w1.plan" \
        -j 3 --progress none --state "$T/s-guests" > "$T/guests.out" 2> "$T/guests.err"
    code=$?
    line=$(grep 'remote: [0-9]* elements started' "$T/guests.err")
    g=$(echo "$line" | sed -n 's/.* \([0-9]*\) guest batches.*/\1/p')
    why=""
    [ "$code" = 0 ] || why="exit $code: $(grep -v 'remote: [0-9]* elements started' "$T/guests.err" | head -3)"
    [ -z "$why" ] && ! cmp -s "$T/guests.out" "$T/w1.want" &&
        why="result $(cat "$T/guests.out"), want $(cat "$T/w1.want")"
    [ -z "$why" ] && { [ -z "$g" ] || [ "$g" = 0 ]; } && why="no guest batch: '$line'"
    if [ -z "$why" ]; then pass guests; else fail guests "$why"; fi
fi

# 13. an offer its worker does not take (FLOWRUN_WORKER_DECLINE=1: the worker lingers,
#     takes nothing, then says bye) is withdrawn: its jobs go back to the queue and
#     run elsewhere, each once
cat > "$T/decl.flow" <<FLOW
task slow(x: int) -> int = sh "echo {x} >> $T/decl.ran; sleep 0.1; echo {x}"
flow main(n: int = 10) -> [int] {
    return slow.expand(x = range(n))
}
FLOW
if compile decl; then
    FLOWRUN_WORKER_DECLINE=1 FLOWRUN_REMOTE_LINGER_MS=600 FLOW_DEBUG=1 FLOWRUN_REMOTE_ENGINE=local \
        "$FLOWRUN" "$T/decl.plan" -j 2 --progress none --state "$T/s-decl" > "$T/decl.out" 2> "$T/decl.err"
    code=$?
    line=$(grep 'remote: [0-9]* elements started' "$T/decl.err")
    w=$(echo "$line" | sed -n 's/.*(\([0-9]*\) withdrawn).*/\1/p')
    g=$(echo "$line" | sed -n 's/.* \([0-9]*\) guest batches.*/\1/p')
    why=""
    [ "$code" = 0 ] || why="exit $code: $(grep -v 'remote: [0-9]* elements started' "$T/decl.err" | head -3)"
    [ -z "$why" ] && [ "$(cat "$T/decl.out")" != "[0,1,2,3,4,5,6,7,8,9]" ] && why="result $(cat "$T/decl.out")"
    [ -z "$why" ] && [ "$(sort -n "$T/decl.ran" | tr '\n' ' ')" != "0 1 2 3 4 5 6 7 8 9 " ] &&
        why="instances ran $(sort -n "$T/decl.ran" | tr '\n' ' '), want each once"
    [ -z "$why" ] && { [ -z "$w" ] || [ "$w" = 0 ] || [ "$w" != "$g" ]; } &&
        why="want every guest batch withdrawn, and some: '$line'"
    if [ -z "$why" ]; then pass withdrawn; else fail withdrawn "$why"; fi
fi

# 14. the driver SIGKILLed while guest batches run, then flowrun resume: the guests
#     taken are followed in their host's element, those over for a second had their
#     files removed already (clean_guests: their answers are in the run's record, and
#     the resume skips them without a word), each instance runs once
cat > "$T/gres.flow" <<FLOW
task slow(x: int) -> int = sh "echo {x} >> $T/gres.ran; sleep 0.3; echo {x}"
flow main(n: int = 40) -> [int] {
    return slow.expand(x = range(n))
}
FLOW
if compile gres; then
    FLOWRUN_REMOTE_LINGER_MS=3000 FLOWRUN_REMOTE_ENGINE=local "$FLOWRUN" "$T/gres.plan" -j 2 \
        --progress none --state "$T/s-gres" > /dev/null 2> "$T/gres.err" &
    drv=$!
    i=0; while ! ls "$T/s-gres/remote/1/r0" 2>/dev/null | grep -q took && [ $i -lt 300 ]; do
        sleep 0.05; i=$((i+1)); done
    sleep 2.5
    took=$(ls "$T/s-gres/remote/1/r0" 2>/dev/null | grep -c took)
    cleaned=no
    [ -f "$T/s-gres/remote/1/b1.host" ] || cleaned=yes
    kill -9 $drv
    wait $drv 2>/dev/null
    FLOWRUN_REMOTE_LINGER_MS=3000 FLOWRUN_REMOTE_ENGINE=local "$FLOWRUN" resume 1 --state "$T/s-gres" \
        -j 2 --progress none > "$T/gres.out" 2> "$T/gres.err"
    code=$?
    want=$(seq 0 39 | tr '\n' ' ')
    why=""
    [ "$took" -gt 0 ] || why="no guest batch was taken before the kill"
    [ -z "$why" ] && [ "$cleaned" != yes ] && why="no guest batch's files were removed before the kill"
    [ -z "$why" ] && [ "$code" != 0 ] && why="resume: exit $code: $(head -3 "$T/gres.err")"
    [ -z "$why" ] && [ "$(cat "$T/gres.out")" != "[$(seq -s, 0 39)]" ] && why="result $(cat "$T/gres.out")"
    [ -z "$why" ] && [ "$(sort -n "$T/gres.ran" | tr '\n' ' ')" != "$want" ] &&
        why="instances ran $(sort -n "$T/gres.ran" | tr '\n' ' '), want each once"
    [ -z "$why" ] && [ -s "$T/gres.err" ] && why="resume said: $(head -3 "$T/gres.err")"
    if [ -z "$why" ]; then pass resume-guests; else fail resume-guests "$why"; fi
fi

# 15. a guest runs only within what its host was started with: a task with memory:
#     never goes to a lingering worker started for tasks without it (the first
#     batch's), while the tasks without it do become guests. Each task logs the pid
#     of the `flowrun worker` it ran under (its parent's parent)
cat > "$T/mem.flow" <<FLOW
task light(x: int) -> int = sh "echo light {x} \$(cut -d' ' -f4 /proc/\$PPID/stat) >> $T/mem.log; sleep 0.2; echo {x}"
task heavy(x: int) -> int = sh "echo heavy {x} \$(cut -d' ' -f4 /proc/\$PPID/stat) >> $T/mem.log; echo {x}" with {memory: 8GiB}
flow main(n: int = 12) -> [int] {
    return heavy.expand(x = light.expand(x = range(n)))
}
FLOW
if compile mem; then
    FLOWRUN_REMOTE_LINGER_MS=2000 FLOWRUN_REMOTE_ENGINE=local "$FLOWRUN" "$T/mem.plan" -j 2 \
        --progress none --state "$T/s-mem" > "$T/mem.out" 2> "$T/mem.err"
    code=$?
    if [ "$code" = 2 ] && grep -q "gives flowrun no cgroup" "$T/mem.err"; then
        echo "SKIP remote:guest-memory: no cgroup here for memory: ($(head -1 "$T/mem.err"))"
    else
        first=$(cut -d' ' -f1 "$T/s-mem/remote/1/log/0."*.pid 2>/dev/null | tr '\n' ' ')
        why=""
        [ "$code" = 0 ] || why="exit $code: $(head -3 "$T/mem.err")"
        [ -z "$why" ] && [ "$(cat "$T/mem.out")" != "[0,1,2,3,4,5,6,7,8,9,10,11]" ] && why="result $(cat "$T/mem.out")"
        [ -z "$why" ] && [ -z "$first" ] && why="no pid file of batch 0's elements"
        for p in $first; do
            [ -z "$why" ] && grep -q "^heavy .* $p\$" "$T/mem.log" &&
                why="a heavy instance ran in worker $p, started for light ones: $(grep "^heavy" "$T/mem.log" | tr '\n' ' ')"
        done
        # light instances past the first batch's four ran in batch 0's workers: guests
        guests=0
        for p in $first; do
            guests=$((guests + $(grep -c "^light .* $p\$" "$T/mem.log")))
        done
        [ -z "$why" ] && [ "$guests" -le 4 ] && why="no guest: $(tr '\n' ' ' < "$T/mem.log")"
        if [ -z "$why" ]; then pass guest-memory; else fail guest-memory "$why"; fi
    fi
fi
