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
if [ -z "$models_why" ] && [ -f "$T/unit/flow-7-0.yaml" ]; then
    to_json "$T/unit/flow-7-0.yaml" "$T/good.json"
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
fail "runs" "not written yet"
