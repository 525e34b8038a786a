#!/bin/sh
# Declared means done, or refused (runtime/core/refuse.c): `image:`, a `run_as:` that
# cannot be honoured and `--env` naming no environment of the configuration end a
# run before anything runs, exit 2, one line naming the task and the option; no task
# ran and no run was recorded. (Isolation of an environment that exists: 57-isolate.) Options this build does not have are not advertised (--help, the
# bash completion) and are unknown when given.
# Every task here appends to $T/ran when it really runs.
T=$(mktemp -d /tmp/flow-refuse-XXXXXX)
chmod 755 "$T"
trap '[ -n "$KEEP" ] || rm -rf "$T"' EXIT INT TERM
ST="$T/st"

pass() { echo "PASS refuse: $1"; }
fail() { echo "FAIL refuse: $1: $2"; }

# the user flowrun runs as when it is not root: "nobody" (dropped to with setpriv)
. tests/harness/nobody.sh
NOBODY_OK=0
if [ "$(id -u)" != 0 ]; then
    ME=$(id -un)
else
    ME=nobody
    NOBODY_WHY=$(nobody_why)
    [ -z "$NOBODY_WHY" ] && NOBODY_OK=1
fi

cat > "$T/r.flow" <<EOF
task plain(x: int) -> int = sh "echo plain >> $T/ran; echo {x}"
task boxed(x: int) -> int = sh "echo boxed >> $T/ran; echo {x}" with {image: "alpine:3.19"}
task as_daemon(x: int) -> int = sh "echo as_daemon >> $T/ran; echo {x}" with {run_as: "daemon"}
task as_ghost(x: int) -> int = sh "echo as_ghost >> $T/ran; echo {x}" with {run_as: "no-such-user-flow"}
task as_me(x: int) -> int = sh "echo as_me \$(id -un) >> $T/ran; echo {x}" with {run_as: "$ME"}

group boxed_inside(x: int) -> int {
    return boxed(x)
}

flow clean(x: int = 1) -> int {
    return plain(x)
}
flow with_image(x: int = 1) -> int {
    return boxed(plain(x))
}
flow image_in_group(x: int = 1) -> [int] {
    return boxed_inside.expand(x = [x, 2])
}
flow image_in_combine(x: int = 1) -> int {
    let c = combine(plain, boxed)
    return c(x)
}
flow with_run_as(x: int = 1) -> int {
    return as_daemon(plain(x))
}
flow run_as_in_combine(x: int = 1) -> int {
    let c = combine(plain, as_daemon)
    return c(x)
}
flow run_as_ghost(x: int = 1) -> int {
    return as_ghost(x)
}
flow run_as_self(x: int = 1) -> int {
    return as_me(x)
}
flow scheduled(day: date) schedule "@daily" {
    plain(1)
}
EOF
if ! "$FLOWC" "$T/r.flow" -o "$T/r.plan" 2> "$T/flowc.err"; then
    fail setup "flowc: $(head -3 "$T/flowc.err")"
    exit 0
fi
chmod 644 "$T/r.plan"

# refused NAME WANT-LINE ARGS...: exit 2, one stderr line containing WANT-LINE,
# nothing ran, no run recorded
refused() {
    name=$1 want=$2; shift 2
    rm -rf "$ST" "$T/ran"
    "$FLOWRUN" "$T/r.plan" --progress none --state "$ST" "$@" > "$T/out" 2> "$T/err"
    code=$?
    why=""
    [ "$code" = 2 ] || why="exit code $code, want 2"
    [ -z "$why" ] && [ "$(wc -l < "$T/err")" != 1 ] && why="$(wc -l < "$T/err") lines on stderr, want 1"
    [ -z "$why" ] && ! grep -qF -- "$want" "$T/err" && why="stderr does not say '$want'"
    [ -z "$why" ] && [ -e "$T/ran" ] && why="a task ran: $(cat "$T/ran")"
    if [ -z "$why" ] && [ -e "$ST/state.db" ] && command -v sqlite3 > /dev/null; then
        n=$(sqlite3 "$ST/state.db" "SELECT count(*) FROM runs" 2>/dev/null)
        [ "${n:-0}" != 0 ] && why="$n run(s) recorded"
    fi
    if [ -z "$why" ]; then pass "$name"; else fail "$name" "$why"; sed 's/^/    /' "$T/err"; fi
}

# ran NAME WANT-RESULT ARGS...: exit 0 with that result
ran() {
    name=$1 want=$2; shift 2
    rm -rf "$ST" "$T/ran"
    got=$("$FLOWRUN" "$T/r.plan" --progress none --state "$ST" "$@" 2> "$T/err")
    code=$?
    if [ "$code" = 0 ] && [ "$got" = "$want" ]; then pass "$name"; else
        fail "$name" "exit $code, result '$got', want 0 and '$want'"; sed 's/^/    /' "$T/err"; fi
}

for ex in inline process; do
    refused "image under $ex" "task 'boxed' declares image \"alpine:3.19\"" \
        --flow with_image --executor $ex
done
refused "image in a group" "task 'boxed' declares image" --flow image_in_group
refused "image in a half of a combine" "task 'boxed' declares image" --flow image_in_combine
ran "image on a task the flow does not call: runs" 1 --flow clean
refused "--env test, no flow.yaml" "--env test: no such environment in the default configuration" \
    --flow clean --env test
refused "--env=staging, no flow.yaml" "--env staging: no such environment" --flow clean --env=staging
refused "--env test --unprotected, no flow.yaml" "--env test: no such environment" \
    --flow clean --env test --unprotected
# environments other than prod exist when flow.yaml lists them (58-config tests the file);
# with no root anywhere there is nothing to keep apart (57-isolate: with roots)
printf 'envs:\n  test: {}\n  staging: {}\n' > "$T/flow.yaml"
ran "--env test, no roots: runs" 1 --flow clean --env test --config "$T/flow.yaml"
ran "--env prod runs" 1 --flow clean --env prod
ran "a scheduled flow runs by hand" "" --flow scheduled --param day=2026-01-01

for ex in inline process; do
    refused "run_as naming no user ($ex)" \
        "task 'as_ghost' declares run_as \"no-such-user-flow\": there is no such user" \
        --flow run_as_ghost --executor $ex
done
if [ "$(id -u)" = 0 ]; then
    for ex in inline process; do
        refused "run_as on a half of a combine without run_as (root, $ex)" \
            "task 'as_daemon' declares run_as \"daemon\" but runs inside 'c#2'" \
            --flow run_as_in_combine --executor $ex
    done
    # as root the inline executor switches too (in a worker process: exec_inline.c);
    # another user must be able to run programs here at all (nobody.sh: not in a
    # chroot whose "/" is 0700)
    rm -rf "$ST"; : > "$T/ran"; chmod 666 "$T/ran" # daemon appends to it
    if [ -n "$NOBODY_WHY" ]; then
        echo "SKIP refuse: run_as under inline (root): runs: $NOBODY_WHY"
    else
        got=$("$FLOWRUN" "$T/r.plan" --progress none --state "$ST" --flow with_run_as \
            --executor inline 2> "$T/err")
        code=$?
        if [ "$code" = 0 ] && [ "$got" = 1 ] && grep -qx as_daemon "$T/ran"; then
            pass "run_as under inline (root): runs"
        else
            fail "run_as under inline (root): runs" "exit $code, result '$got', ran: $(cat "$T/ran")"
            sed 's/^/    /' "$T/err"
        fi
    fi
else
    for ex in inline process; do
        refused "run_as, not root ($ex)" "task 'as_daemon' declares run_as \"daemon\": flowrun runs as $ME, not as root" \
            --flow with_run_as --executor $ex
        ran "run_as naming the user flowrun runs as ($ex)" 1 --flow run_as_self --executor $ex
    done
fi

# run_as when flowrun is not root (as root: drop to nobody for these)
if [ "$NOBODY_OK" = 1 ]; then
    asnobody() {
        name=$1 want=$2; shift 2
        rm -rf "$ST" "$T/ran"
        setpriv --reuid=nobody --regid=nogroup --clear-groups -- \
            "$FLOWRUN" "$T/r.plan" --progress none --state "$ST" "$@" > "$T/out" 2> "$T/err"
        code=$?
    }
    chmod 777 "$T"
    for ex in inline process; do
        asnobody x x --flow with_run_as --executor $ex
        why=""
        [ "$code" = 2 ] || why="exit code $code, want 2"
        [ -z "$why" ] && ! grep -qF "task 'as_daemon' declares run_as \"daemon\": flowrun runs as nobody, not as root" "$T/err" && why="stderr: $(cat "$T/err")"
        [ -z "$why" ] && [ -e "$T/ran" ] && why="a task ran: $(cat "$T/ran")"
        if [ -z "$why" ]; then pass "run_as, not root ($ex)"; else fail "run_as, not root ($ex)" "$why"; fi
        asnobody x x --flow run_as_self --executor $ex
        if [ "$code" = 0 ] && [ "$(cat "$T/out")" = 1 ] && grep -qx "as_me nobody" "$T/ran"; then
            pass "run_as naming the user flowrun runs as (not root, $ex)"
        else
            fail "run_as naming the user flowrun runs as (not root, $ex)" "exit $code: $(cat "$T/err")"
        fi
    done
    chmod 755 "$T"
elif [ "$(id -u)" = 0 ]; then
    for ex in inline process; do
        echo "SKIP refuse: run_as, not root ($ex): $NOBODY_WHY"
        echo "SKIP refuse: run_as naming the user flowrun runs as (not root, $ex): $NOBODY_WHY"
    done
fi

# resume of a run recorded with --env test, an environment the configuration lacks, is refused
if command -v sqlite3 > /dev/null; then
    rm -rf "$ST" "$T/ran"
    "$FLOWRUN" "$T/r.plan" --flow clean --progress none --state "$ST" > /dev/null 2>&1
    sqlite3 "$ST/state.db" "UPDATE runs SET env = 'test', state = 'failed'" 2> /dev/null
    rm -f "$T/ran"
    "$FLOWRUN" resume last --state "$ST" --progress none --no-cache > /dev/null 2> "$T/err"
    code=$?
    if [ "$code" = 2 ] && grep -qF -- "--env test: no such environment" "$T/err" &&
        [ ! -e "$T/ran" ]; then
        pass "resume of a run in env test"
    else
        fail "resume of a run in env test" "exit $code: $(cat "$T/err")"
    fi
else
    echo "SKIP refuse: resume of a run in env test: no sqlite3"
fi

# ---- not advertised, and unknown when given ----
# the commands of runtime.md not built yet: none since `report` (71-report.sh); the
# checks stay for the next one, and `nosuch` keeps the unknown-command check real
missing=""
help=$("$FLOWRUN" --help 2>&1)
why=""
for w in $missing; do
    echo "$help" | grep -qw "$w" && why="$why $w"
done
if [ -z "$why" ]; then pass "--help lists no missing command"; else fail "--help lists" "$why"; fi
"$FLOWRUN" run --help 2>&1 | grep -q -- "--slurm-partition" && pass "run --help lists the slurm options" || fail "run --help" "does not list --slurm-partition"
"$FLOWRUN" "$T/r.plan" --flow clean --executor nomad > /dev/null 2> "$T/err"
code=$?
if [ "$code" = 2 ] && grep -qF "expects inline, process, kubernetes or slurm, got 'nomad'" "$T/err"; then pass "--executor nomad is a usage error"
else fail "--executor nomad" "exit $code: $(cat "$T/err")"; fi
for c in $missing nosuch; do
    "$FLOWRUN" $c > /dev/null 2> "$T/err"
    code=$?
    if [ "$code" = 2 ] && ! grep -q "not available" "$T/err" && grep -q "unknown command '$c'" "$T/err"; then
        pass "$c is an unknown command"
    else
        fail "$c is an unknown command" "exit $code: $(cat "$T/err")"
    fi
done
if command -v bash > /dev/null; then
    words=$(bash -c '. editors/completion/flowrun
        COMP_WORDS=(flowrun ""); COMP_CWORD=1; _flowrun; printf "%s\n" "${COMPREPLY[@]}"
        COMP_WORDS=(flowrun x.plan --executor ""); COMP_CWORD=3; _flowrun; printf "%s\n" "${COMPREPLY[@]}"' 2>&1)
    why=""
    for w in $missing; do
        echo "$words" | grep -qx "$w" && why="$why $w"
    done
    echo "$words" | grep -qx resume || why="$why (resume missing: the probe is broken)"
    echo "$words" | grep -qx process || why="$why (process missing: the probe is broken)"
    echo "$words" | grep -qx kubernetes || why="$why (kubernetes missing from --executor)"
    if [ -z "$why" ]; then pass "bash completion offers no missing command"; else fail "bash completion offers" "$why"; fi
else
    echo "SKIP refuse: bash completion: no bash"
fi
