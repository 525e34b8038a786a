#!/bin/sh
# --executor kubernetes (issue 16, Deliver 5). No Kubernetes API server can run
# here, so what is checked, and how:
#   manifests  every Job manifest the engine writes (runtime/core/remote_kube.c:
#              those of the unit test build/tests/test_remote_kube, and those of
#              the runs below) validates against the Kubernetes OpenAPI models of
#              the npm package kubernetes-models (pinned: tests/kube/package*.json,
#              installed by `npm ci` into $BUILD/kube-models); deliberately broken
#              manifests must fail that validation.
#   pods       the Job's pod template runs under `podman kube play`, one Pod per
#              completion index with JOB_COMPLETION_INDEX set, against the shared
#              state directory (a hostPath), in an image built here FROM scratch
#              (flowrun, the libraries ldd lists, busybox-static as /bin/sh); the
#              driver reads the results and the run's answer is the process
#              executor's.
#   the driver (apply, watch, failures) against tests/kube/kubectl-standin, a
#              STAND-IN for kubectl that records its calls and runs the pods under
#              podman (or replays Job status JSON): an index that fails, a Job that
#              vanishes, a pod evicted, one `get` per poll, delete on SIGTERM.
# podman runs with runc and ulimits within this machine's hard limits
# (CONTAINERS_CONF, written here). Checks that need what this machine lacks say
# SKIP and why.
# Suites that drive services (podman) run once: not again under the sanitized build.
[ "$SANITIZED" = 1 ] && exit 0
HERE=$(pwd)
T=$(mktemp -d /tmp/flow-kube-XXXXXX)
chmod 755 "$T"
STANDIN=$HERE/tests/kube/kubectl-standin
cleanup() {
    # pods of this suite only (their names start with flow-<run>- under $T's stand-in)
    if [ -d "$T/standin/jobs" ] && command -v podman > /dev/null; then
        for f in "$T"/standin*/jobs/*/pod-*.yaml; do
            [ -f "$f" ] && podman kube down "$f" > /dev/null 2>&1
        done
    fi
    rm -rf "$T"
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

pass() { echo "PASS kube: $1"; }
fail() { echo "FAIL kube: $1: $2"; }
skip() { echo "SKIP kube: $1: $2"; }

# ---- the models: kubernetes-models from npm, pinned ----
models_why=""
M=$HERE/$BUILD/kube-models
if ! command -v node > /dev/null || ! command -v npm > /dev/null; then
    models_why="node and npm are missing (make deps installs them)"
elif ! cmp -s tests/kube/package-lock.json "$M/package-lock.json" ||
    [ ! -d "$M/node_modules/kubernetes-models" ]; then
    rm -rf "$M" && mkdir -p "$M" && cp tests/kube/package.json tests/kube/package-lock.json "$M/"
    if ! (cd "$M" && npm ci --no-audit --no-fund > "$T/npm.log" 2>&1); then
        code=$(sed -n 's/^npm \(ERR!\|error\) code //p' "$T/npm.log" | head -1)
        case "$code" in
        SELF_SIGNED_CERT_IN_CHAIN | UNABLE_TO_GET_ISSUER_CERT_LOCALLY | UNABLE_TO_VERIFY_LEAF_SIGNATURE | \
            CERT_* | ENOTFOUND | EAI_AGAIN | ECONNREFUSED | ECONNRESET | ETIMEDOUT | ENETUNREACH)
            models_why="the npm registry cannot be reached from this machine (npm: $code)" ;;
        *) fail "npm ci kubernetes-models" "$(tail -3 "$T/npm.log" | tr '\n' ' ')"
            models_why="npm ci failed" ;;
        esac
        rm -rf "$M"
    fi
fi
cp tests/kube/validate.mjs "$T/validate.mjs" 2> /dev/null
[ -d "$M/node_modules" ] && ln -s "$M/node_modules" "$T/node_modules"

# to_json YAML JSON: one manifest, converted with python3's yaml (node has no YAML reader)
to_json() {
    python3 -c 'import sys, yaml, json; json.dump(yaml.safe_load(open(sys.argv[1])), open(sys.argv[2], "w"))' "$1" "$2"
}
# validate WHAT FILE.yaml...: each manifest validates against the models
validate() {
    what=$1; shift
    if [ -n "$models_why" ]; then skip "$what" "$models_why"; return; fi
    n=0
    for y in "$@"; do
        j=$T/json/$(basename "$y" .yaml).$n.json
        mkdir -p "$T/json"
        to_json "$y" "$j" || { fail "$what" "$y is not YAML python3 can read"; return; }
        set -- "$@" "$j"
        n=$((n + 1))
    done
    shift "$n"
    if [ "$n" = 0 ]; then fail "$what" "no manifest was written"; return; fi
    if node "$T/validate.mjs" "$@" > "$T/validate.out" 2>&1; then
        pass "$what ($n manifests valid under kubernetes-models $(node -p "require('$M/node_modules/kubernetes-models/package.json').version"))"
    else
        fail "$what" "$(grep -v '^ok ' "$T/validate.out" | head -3 | tr '\n' ' ')"
    fi
}

# ---- 1. the unit test's manifests; broken ones must fail ----
mkdir -p "$T/unit"
if [ -x "$BUILD/tests/test_remote_kube" ]; then
    KUBE_UNIT_KEEP=$T/unit "$BUILD/tests/test_remote_kube" > "$T/unit.log" 2>&1 ||
        fail "engine unit test" "$(grep -E 'FAILED|ERROR' "$T/unit.log" | head -3 | tr '\n' ' ')"
    validate "manifests of the engine's unit test" "$T"/unit/flow-*.yaml
else
    fail "engine unit test" "$BUILD/tests/test_remote_kube is not built (make unit)"
fi
# broken copies of a real manifest: the validator must refuse each (so the check can fail)
if [ -z "$models_why" ] && [ -f "$T/unit/flow-86e561c2-7-0.yaml" ]; then
    to_json "$T/unit/flow-86e561c2-7-0.yaml" "$T/good.json"
    i=0
    while IFS='|' read -r what expr; do
        i=$((i + 1))
        python3 -c "import json, sys; j = json.load(open(sys.argv[1])); $expr; json.dump(j, open(sys.argv[2], 'w'))" \
            "$T/good.json" "$T/broken$i.json"
        if node "$T/validate.mjs" "$T/broken$i.json" > "$T/broken.out" 2>&1; then
            fail "the validator refuses $what" "it accepted it"
        elif grep -q '^invalid ' "$T/broken.out"; then
            pass "the validator refuses $what ($(sed 's/^invalid [^:]*: //' "$T/broken.out" | head -1 | cut -c1-80))"
        else
            fail "the validator refuses $what" "$(head -2 "$T/broken.out" | tr '\n' ' ')"
        fi
    done << 'EOF'
completions as a string|j['spec']['completions'] = 'five'
a container without a name|del j['spec']['template']['spec']['containers'][0]['name']
a podFailurePolicy action Kubernetes lacks|j['spec']['podFailurePolicy']['rules'][0]['action'] = 'Retry'
runAsUser as a user name|j['spec']['template']['spec']['containers'][0]['securityContext']['runAsUser'] = 'nobody'
a Job without a pod template's containers|del j['spec']['template']['spec']['containers']
EOF
else
    skip "the validator refuses broken manifests" "${models_why:-no manifest from the unit test}"
fi

# ---- 2. runs: the pod template under podman kube play, the driver against the stand-in ----
FLOWRUN_ABS=$HERE/$FLOWRUN
case "$FLOWRUN" in /*) FLOWRUN_ABS=$FLOWRUN ;; esac
run_why=""
if ! "$FLOWRUN_ABS" worker --help > /dev/null 2>&1 && ! "$FLOWRUN_ABS" worker 2>&1 | grep -q "usage\|--batch\|element"; then
    run_why="this build has no 'flowrun worker' (the remote driver)"
elif [ "$(id -u)" != 0 ]; then
    run_why="not root (podman kube play with hostPath and runAsUser needs root here)"
elif ! command -v podman > /dev/null || ! command -v runc > /dev/null || ! command -v catatonit > /dev/null; then
    run_why="podman, runc or catatonit is missing (make deps installs them)"
elif [ -n "$SANITIZED" ]; then
    run_why="a sanitized flowrun cannot run in the FROM-scratch image (no ASan runtime there)"
fi
if [ -n "$run_why" ]; then
    for c in "a run's answer equals --executor process" "manifests of a run" \
        "an index that fails is retried" "a Job that vanishes" "an evicted pod" \
        "one get per poll" "SIGTERM deletes the run's Jobs"; do
        skip "$c (stand-in kubectl, podman kube play)" "$run_why"
    done
    exit 0
fi

# podman: runc, ulimits within this machine's hard limits (the infra container of a
# pod asks for an nproc of 1048576 otherwise, which runc cannot set here)
# (hard limits from /proc: dash's ulimit has no -u)
np=$(awk '/^Max processes/ {print $4}' /proc/self/limits)
nf=$(awk '/^Max open files/ {print $5}' /proc/self/limits)
case $np in '' | unlimited) np=16384 ;; esac
case $nf in '' | unlimited) nf=4096 ;; esac
[ "$np" -gt 16384 ] && np=16384
[ "$nf" -gt 4096 ] && nf=4096
printf '[containers]\ndefault_ulimits = ["nofile=%s:%s", "nproc=%s:%s"]\n[engine]\nruntime = "runc"\n' \
    "$nf" "$nf" "$np" "$np" > "$T/containers.conf"
export CONTAINERS_CONF=$T/containers.conf
. "$HERE/tests/kube/image.sh"
IMG=localhost/flow-kube-test:$$
if ! why=$(kube_image "$IMG" "$T"); then
    # as 64-podman: a podman that cannot build an image here (in a chroot, whose / is
    # not a mount, it cannot apply a layer) makes every check below a SKIP with why
    for c in "a run's answer equals --executor process" "manifests of a run" \
        "an index that fails is retried" "a Job that vanishes" "an evicted pod" \
        "one get per poll" "SIGTERM deletes the run's Jobs"; do
        skip "$c (stand-in kubectl, podman kube play)" "podman cannot build the test image here: $why"
    done
    exit 0
fi
# the image goes first: cleanup removes $T, and with it CONTAINERS_CONF
trap 'podman rmi -f "$IMG" > /dev/null 2>&1; cleanup' EXIT
"$FLOWC" tests/kube/kube.flow -o "$T/kube.plan" 2> "$T/flowc.err" || { fail setup "flowc: $(head -2 "$T/flowc.err")"; exit 0; }

# elements that end without a result fail after 3 s, not 30 (the driver's grace period)
export FLOWRUN_REMOTE_GRACE_MS=3000
# kube NAME FLOW [VAR=VALUE...]: a run under --executor kubernetes through the
# stand-in (in podman mode), state in $T/st-NAME (the hostPath: the same path in the
# pods), the plan and flow.yaml in it (the worker reads both; pods see only the
# state directory); stdout in
# $T/NAME.out, stderr in $T/NAME.err, exit code in $code, calls in $T/sd-NAME/calls.log
kube() {
    name=$1 fl=$2; shift 2
    st=$T/st-$name sd=$T/sd-$name
    mkdir -p "$st" "$sd"
    cp "$T/kube.plan" "$st/kube.plan"
    printf 'kubernetes:\n  kubectl: %s\n  image: %s\n  host_path: %s\n  flowrun: /usr/bin/flowrun\n  slots: 3\n  poll_ms: 300\n' \
        "$STANDIN" "$IMG" "$st" > "$st/flow.yaml"
    start=$(date +%s%N)
    env KUBE_STANDIN_DIR="$sd" KUBE_STANDIN_PODMAN=1 "$@" timeout 150 "$FLOWRUN_ABS" "$st/kube.plan" \
        --flow "$fl" --executor kubernetes --config "$st/flow.yaml" --state "$st" \
        --progress none -j 3 > "$T/$name.out" 2> "$T/$name.err"
    code=$?
    ms=$((($(date +%s%N) - start) / 1000000))
}
want=$("$FLOWRUN_ABS" "$T/kube.plan" --flow squares --executor process --state "$T/st-process" --progress none 2>&1)
# same NAME: the run exited 0 with the process executor's answer
same() {
    if [ "$code" = 0 ] && [ "$(cat "$T/$1.out")" = "$want" ]; then return 0; fi
    fail "$2" "exit $code, stdout '$(head -c 200 "$T/$1.out")', stderr: $(tail -3 "$T/$1.err" | tr '\n' ' ')"
    # what the stand-in saw, so that a failure on a loaded machine can be explained
    for j in "$T/sd-$1"/jobs/*/; do
        echo "  $(basename "$j"): $(cat "$j/status.json" 2> /dev/null)"
        for f in "$j"play-*.err "$j"log-*; do
            [ -s "$f" ] && echo "    $(basename "$f"): $(tail -3 "$f" | tr '\n' ' ' | cut -c1-300)"
        done
    done
    return 1
}
applies() { grep -c '^apply -f ' "$T/sd-$1/calls.log" 2> /dev/null || echo 0; }

kube ok squares
if same ok "a run's answer equals --executor process (stand-in kubectl, podman kube play)"; then
    pass "a run's answer equals --executor process (stand-in kubectl, podman kube play; $(applies ok) Jobs, $(ls "$T"/sd-ok/jobs/*/pod-*.yaml | wc -l) pods, ${ms} ms)"
fi
validate "manifests of a run" "$T"/sd-ok/applied/*.yaml
# one get per poll interval (300 ms) for the whole run, never one per Job or pod
gets=$(grep -c '^get jobs -l flow-state=[0-9a-f]\{8\},flow-run=' "$T/sd-ok/calls.log")
if [ "$gets" -ge 1 ] && [ "$gets" -le $((ms / 300 + 2)) ] &&
    ! grep -v '^get jobs -l flow-state=[0-9a-f]\{8\},flow-run=[0-9]* -o json$' "$T/sd-ok/calls.log" |
        grep -q '^get'; then
    pass "one get per poll ($gets gets of the whole run in $ms ms at a 300 ms interval)"
else
    fail "one get per poll" "$gets gets in $ms ms: $(grep '^get' "$T/sd-ok/calls.log" | sort | uniq -c | head -3 | tr '\n' ' ')"
fi

# an index that fails without running (OOM-killed, node lost): its instances have no
# result, fail, and are retried (retries: 2) in a new Job
kube fail squares KUBE_STANDIN_FAIL=0:1
if same fail "an index that fails is retried"; then
    n=$(applies fail)
    if [ "$n" -ge 2 ]; then pass "an index that fails is retried ($n Jobs)"
    else fail "an index that fails is retried" "only $n Job applied"; fi
fi

# a Job that vanishes (deleted by someone): its elements are gone, their instances retried
kube vanish squares KUBE_STANDIN_VANISH=0
if same vanish "a Job that vanishes"; then
    n=$(applies vanish)
    if [ "$n" -ge 2 ]; then pass "a Job that vanishes: its instances are retried ($n Jobs)"
    else fail "a Job that vanishes" "only $n Job applied"; fi
fi

# an evicted pod: run again by Kubernetes (podFailurePolicy Ignore), not a failure
kube evict squares KUBE_STANDIN_EVICT=0:0
if same evict "an evicted pod"; then
    if ls "$T"/sd-evict/jobs/*-0/log-0.1 > /dev/null 2>&1; then
        pass "an evicted pod is run again and the answer is right ($(applies evict) Jobs)"
    else fail "an evicted pod" "index 0 of batch 0 did not run twice"; fi
fi

# SIGTERM: flowrun deletes the run's Jobs by label, and their pods go
st=$T/st-term sd=$T/sd-term
mkdir -p "$st" "$sd" && cp "$T/kube.plan" "$st/"
printf 'kubernetes:\n  kubectl: %s\n  image: %s\n  host_path: %s\n  flowrun: /usr/bin/flowrun\n  slots: 2\n  poll_ms: 300\n' \
    "$STANDIN" "$IMG" "$st" > "$st/flow.yaml"
KUBE_STANDIN_DIR=$sd KUBE_STANDIN_PODMAN=1 "$FLOWRUN_ABS" "$st/kube.plan" --flow sleepy \
    --executor kubernetes --config "$st/flow.yaml" --state "$st" --progress none -j 2 \
    > "$T/term.out" 2> "$T/term.err" &
pid=$!
i=0
while [ $i -lt 300 ] && ! ls "$sd"/jobs/*/log-* > /dev/null 2>&1 &&
    [ -z "$(podman ps -q --filter label=flow-run 2> /dev/null | head -1)" ]; do
    sleep 0.1; i=$((i + 1))
done
kill -TERM $pid
i=0
while [ $i -lt 200 ] && kill -0 $pid 2> /dev/null; do sleep 0.1; i=$((i + 1)); done
if kill -0 $pid 2> /dev/null; then
    kill -KILL $pid
    fail "SIGTERM deletes the run's Jobs" "flowrun still ran 20 s after SIGTERM"
elif grep -q '^delete jobs -l flow-state=[0-9a-f]\{8\},flow-run=[0-9]* --wait=false$' "$sd/calls.log"; then
    sleep 1
    sel=$(sed -n 's/^delete jobs -l \(flow-state=[0-9a-f]*\),\(flow-run=[0-9]*\).*/--filter label=\1 --filter label=\2/p' \
        "$sd/calls.log" | head -1)
    left=$(podman ps -a -q $sel | wc -l)
    if [ "$left" = 0 ]; then pass "SIGTERM deletes the run's Jobs by label, and no pod is left"
    else fail "SIGTERM deletes the run's Jobs" "$left containers left"; fi
else
    fail "SIGTERM deletes the run's Jobs" "no delete call: $(tr '\n' ';' < "$sd/calls.log")"
fi

# refusals, before anything runs: a kubectl too old, no image
printf 'kubernetes:\n  kubectl: %s\n  image: x\n  host_path: %s\n' "$STANDIN" "$T" > "$T/flow-old.yaml"
KUBE_STANDIN_DIR=$T KUBE_STANDIN_VERSION=1.20 "$FLOWRUN_ABS" "$T/kube.plan" --flow squares \
    --executor kubernetes --config "$T/flow-old.yaml" --state "$T/st-old" > /dev/null 2> "$T/old.err"
code=$?
if [ "$code" = 2 ] && [ "$(wc -l < "$T/old.err")" = 1 ] && grep -q "needs kubectl 1.29 or newer" "$T/old.err"; then
    pass "a kubectl older than 1.29 is refused in one line, exit 2"
else fail "a kubectl older than 1.29" "exit $code: $(cat "$T/old.err")"; fi
printf 'kubernetes:\n  kubectl: %s\n  host_path: %s\n' "$STANDIN" "$T" > "$T/flow-noimg.yaml"
KUBE_STANDIN_DIR=$T "$FLOWRUN_ABS" "$T/kube.plan" --flow squares --executor kubernetes \
    --config "$T/flow-noimg.yaml" --state "$T/st-noimg" > /dev/null 2> "$T/noimg.err"
code=$?
if [ "$code" = 2 ] && grep -q "needs an image" "$T/noimg.err"; then pass "no image is refused, exit 2"
else fail "no image is refused" "exit $code: $(cat "$T/noimg.err")"; fi
# a task whose image: is not the pods' image is refused, not run in the wrong image
printf 'task t(x: int) -> int = sh "echo {x}" with {image: "localhost/other:1"}\nflow f() -> int {\n    return t(1)\n}\n' > "$T/img.flow"
if "$FLOWC" "$T/img.flow" -o "$T/img.plan" 2> "$T/img.cerr"; then
    printf 'kubernetes:\n  kubectl: %s\n  image: localhost/flow-runtime:x\n  host_path: %s\n' "$STANDIN" "$T" > "$T/flow-img.yaml"
    KUBE_STANDIN_DIR=$T "$FLOWRUN_ABS" "$T/img.plan" --executor kubernetes \
        --config "$T/flow-img.yaml" --state "$T/st-img" > /dev/null 2> "$T/img.err"
    code=$?
    if [ "$code" = 2 ] && grep -q 'task t sets image: "localhost/other:1", but under --executor kubernetes' "$T/img.err"; then
        pass "a task image other than the pods' is refused, exit 2"
    else fail "a task image other than the pods'" "exit $code: $(cat "$T/img.err")"; fi
else
    fail "a task image other than the pods'" "flowc: $(head -2 "$T/img.cerr")"
fi
