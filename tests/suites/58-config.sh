#!/bin/sh
# flow.yaml end to end (docs/configuration.md, runtime/app/config.c): which file is
# read (--config, FLOW_CONFIG, ./flow.yaml), every key (each default visible in a
# run, and a command-line option winning over it), the environments (--env not in
# the file: exit 2 before anything runs), parameter precedence (--param >
# --params > the environment's params > the default) and an environment parameter
# the flow does not have, roots (created, owned as configured, overlapping roots
# refused, a state directory inside another environment's root refused), and what
# tasks see of their environment: flow_env_root() in a C task, FLOW_ENV and
# FLOW_ENV_ROOT in an sh task, under both executors.
# Non-prod runs use --unprotected (isolation is not this suite's).
T=$(mktemp -d /tmp/flow-config-XXXXXX)
chmod 755 "$T"
trap '[ -n "$KEEP" ] || rm -rf "$T"' EXIT INT TERM
unset FLOW_STATE FLOW_CONFIG
FR=$(cd "$(dirname "$FLOWRUN")" && pwd)/$(basename "$FLOWRUN")
LIB=$(pwd)/tests/lib/libenvroot.so

pass() { echo "PASS config: $1"; }
fail() { echo "FAIL config: $1: $2"; }
# check NAME WHY: PASS when WHY is empty
check() { if [ -z "$2" ]; then pass "$1"; else fail "$1" "$2"; fi; }

cat > "$T/c.flow" <<EOF
library er = "$LIB"
task croot(x: int) -> str = er.env_root_of
task shenv(x: int) -> str = sh "echo \"\$FLOW_ENV root=\$FLOW_ENV_ROOT set=\$(env | grep -c ^FLOW_ENV_ROOT=)\""
task nap(x: int) -> int = sh "sleep 0.5; echo {x}"
task mark(x: int) -> int = sh "echo {x} >> $T/ran; echo {x}"

flow env(n: int = 1) -> [str] {
    return [croot(n), shenv(n)]
}
flow params(out: str = "default", xs: [int] = [0], r: {a: int, b: [str]} = {a = 0, b = []}) -> str {
    return out
}
flow lists(xs: [int] = [0], r: {a: int, b: [str]} = {a = 0, b = []}, out: str = "") -> [int] {
    return xs
}
flow naps(k: int = 4) -> [int] {
    return nap.expand(x = range(k))
}
flow many(k: int = 3) -> [int] {
    return mark.expand(x = range(k))
}
EOF
if ! "$FLOWC" "$T/c.flow" -o "$T/c.plan" 2> "$T/flowc.err"; then
    fail setup "flowc: $(head -3 "$T/flowc.err")"
    exit 0
fi
P="$T/c.plan"
# a task with memory:, which the inline executor refuses (a plan of its own: the
# refusal looks at every task of the plan)
printf 'task capped(x: int) -> int = sh "echo {x}" with {memory: 64MiB}\nflow limited(x: int = 1) -> int {\n    return capped(x)\n}\n' > "$T/m.flow"
if ! "$FLOWC" "$T/m.flow" -o "$T/m.plan" 2> "$T/flowc.err"; then
    fail setup "flowc: $(head -3 "$T/flowc.err")"
    exit 0
fi

# run DIR ARGS...: flowrun run in DIR; exit code in $code, stdout in $T/out, stderr in $T/err
run() {
    d=$1; shift
    (cd "$d" && "$FR" "$P" --progress none "$@") > "$T/out" 2> "$T/err"
    code=$?
}
# expect NAME CODE OUT: the last run's exit code and stdout
expect() {
    why=""
    [ "$code" = "$2" ] || why="exit $code, want $2: $(head -3 "$T/err")"
    [ -z "$why" ] && [ "$(cat "$T/out")" != "$3" ] && why="output '$(cat "$T/out")', want '$3'"
    check "$1" "$why"
}
# refused NAME LINE: exit 2, one line on stderr, equal to LINE
refused() {
    why=""
    [ "$code" = 2 ] || why="exit $code, want 2: $(head -3 "$T/err")"
    [ -z "$why" ] && [ "$(wc -l < "$T/err")" != 1 ] && why="$(wc -l < "$T/err") lines: $(cat "$T/err")"
    [ -z "$why" ] && [ "$(cat "$T/err")" != "$2" ] && why="said '$(cat "$T/err")', want '$2'"
    check "$1" "$why"
}

# ---- which file ----
mkdir -p "$T/w" "$T/other"
printf 'envs:\n  prod:\n    params: {out: dot}\n' > "$T/w/flow.yaml"
printf 'envs:\n  prod:\n    params: {out: env}\n' > "$T/other/env.yaml"
printf 'envs:\n  prod:\n    params: {out: given}\n' > "$T/other/given.yaml"
run "$T/w" --flow params --state "$T/st1"
expect "./flow.yaml is read" 0 '"dot"'
export FLOW_CONFIG="$T/other/env.yaml"
run "$T/w" --flow params --state "$T/st1"
expect "FLOW_CONFIG wins over ./flow.yaml" 0 '"env"'
run "$T/w" --flow params --state "$T/st1" --config "$T/other/given.yaml"
expect "--config wins over FLOW_CONFIG" 0 '"given"'
unset FLOW_CONFIG
run "$T/other" --flow params --state "$T/st1"
expect "no file: the defaults" 0 '"default"'
run "$T/w" --flow params --state "$T/st1" --config nope.yaml
refused "--config naming no file" "flowrun run: --config nope.yaml: No such file or directory"
export FLOW_CONFIG=gone.yaml
run "$T/w" --flow params --state "$T/st1"
unset FLOW_CONFIG
refused "FLOW_CONFIG naming no file" "flowrun run: FLOW_CONFIG gone.yaml: No such file or directory"

# ---- errors in the file: one line, FILE:LINE:COL, exit 2, nothing runs ----
printf 'jobs: 2\nslurrm:\n  partition: x\n' > "$T/bad.yaml"
rm -f "$T/ran"
run "$T" --flow many --config "$T/bad.yaml" --state "$T/st1"
refused "an unknown key" "flowrun run: $T/bad.yaml:2:1: unknown key 'slurrm' (known: executor, jobs, state, max_map, progress, envs, secrets, kubernetes, slurm)"
check "an unknown key: nothing ran" "$([ -e "$T/ran" ] && echo "a task ran")"
printf 'jobs: many\n' > "$T/bad.yaml"
run "$T" --flow many --config "$T/bad.yaml" --state "$T/st1"
refused "a wrong type" "flowrun run: $T/bad.yaml:1:7: 'jobs': expected an integer from 1 to 4096, got 'many'"
printf 'progress: plain\nprogress: none\n' > "$T/bad.yaml"
run "$T" --flow many --config "$T/bad.yaml" --state "$T/st1"
refused "a duplicate key" "flowrun run: $T/bad.yaml:2:1: 'progress' given twice (first on line 1)"
(cd "$T" && "$FR" runs --config "$T/bad.yaml") > "$T/out" 2> "$T/err"
code=$?
refused "a bad file: flowrun runs refuses it too" "flowrun runs: $T/bad.yaml:2:1: 'progress' given twice (first on line 1)"

# ---- every key, and the command line winning over it ----
mkdir -p "$T/k"
printf 'executor: inline\n' > "$T/k/flow.yaml"
P="$T/m.plan"
run "$T/k" --flow limited --state "$T/st1"
why=""
[ "$code" = 2 ] && grep -qF "the inline executor cannot enforce" "$T/err" || why="exit $code: $(cat "$T/err")"
check "executor: inline is the default" "$why"
run "$T/k" --flow limited --state "$T/st1" --executor process
P="$T/c.plan"
check "--executor wins over executor:" \
    "$(grep -F "the inline executor" "$T/err")"

printf 'jobs: 1\n' > "$T/k/flow.yaml"
t0=$(date +%s%N)
run "$T/k" --flow naps --state "$T/st1" --no-cache
t1=$(date +%s%N)
run "$T/k" --flow naps --state "$T/st1" --no-cache -j 4
t2=$(date +%s%N)
one=$(( (t1 - t0) / 1000000 )) four=$(( (t2 - t1) / 1000000 ))
why=""
[ "$one" -ge 2000 ] || why="4 naps of 0.5 s took $one ms with jobs: 1"
[ -z "$why" ] && [ "$four" -ge $((one - 900)) ] && why="4 naps of 0.5 s took $four ms with -j 4"
check "jobs: 1 runs one at a time; -j wins ($one ms, $four ms)" "$why"

printf 'state: ../kstate\n' > "$T/k/flow.yaml"
run "$T" --flow params --config "$T/k/flow.yaml"
why=""
[ "$code" = 0 ] || why="exit $code: $(cat "$T/err")"
[ -z "$why" ] && [ ! -f "$T/kstate/state.db" ] && why="no $T/kstate/state.db (state: is relative to the file's folder)"
[ -z "$why" ] && [ -e "$T/.flow" ] && why="$T/.flow was made"
check "state: relative to the file's folder" "$why"
(cd "$T" && "$FR" runs --json --config "$T/k/flow.yaml") > "$T/out" 2> "$T/err"
check "state: flowrun runs reads it" "$(grep -q '"flow":"params"' "$T/out" || echo "runs: $(cat "$T/out" "$T/err")")"
(cd "$T" && "$FR" show last --config "$T/k/flow.yaml") > "$T/out" 2> "$T/err"
check "state: flowrun show reads it" "$([ $? = 0 ] || cat "$T/err")"
(cd "$T" && "$FR" logs last nosuch --config "$T/k/flow.yaml") > "$T/out" 2> "$T/err"
check "state: flowrun logs reads it" "$(grep -q "has no instance nosuch" "$T/err" || cat "$T/err")"
(cd "$T" && "$FR" clear last nosuch --config "$T/k/flow.yaml") > "$T/out" 2> "$T/err"
check "state: flowrun clear reads it" "$(grep -q "has no instance nosuch" "$T/err" || cat "$T/err")"
(cd "$T" && "$FR" gc --dry-run --config "$T/k/flow.yaml") > "$T/out" 2> "$T/err"
check "state: flowrun gc reads it" "$([ $? = 0 ] || cat "$T/err")"
(cd "$T" && "$FR" fsck --config "$T/k/flow.yaml") > "$T/out" 2> "$T/err"
check "state: flowrun fsck reads it" "$([ $? = 0 ] || cat "$T/err")"
run "$T" --flow params --config "$T/k/flow.yaml" --state "$T/kcli"
check "--state wins over state:" "$([ -f "$T/kcli/state.db" ] || echo "no $T/kcli/state.db")"
export FLOW_STATE="$T/kenv"
run "$T" --flow params --config "$T/k/flow.yaml"
unset FLOW_STATE
check "FLOW_STATE wins over state:" "$([ -f "$T/kenv/state.db" ] || echo "no $T/kenv/state.db")"

printf 'max_map: 2\n' > "$T/k/flow.yaml"
run "$T/k" --flow many --state "$T/st1"
why=""
[ "$code" = 1 ] && grep -q "max_map" "$T/err" || why="exit $code: $(cat "$T/err")"
check "max_map: is the default" "$why"
run "$T/k" --flow many --state "$T/st1" --max-map 5
expect "--max-map wins over max_map:" 0 "[0,1,2]"

printf 'progress: plain\n' > "$T/k/flow.yaml"
(cd "$T/k" && "$FR" "$P" --flow many --state "$T/st1" --no-cache) > "$T/out" 2> "$T/err"
check "progress: plain is the default" "$([ -s "$T/err" ] || echo "nothing on stderr")"
(cd "$T/k" && "$FR" "$P" --flow many --state "$T/st1" --no-cache --progress none) > "$T/out" 2> "$T/err"
check "--progress wins over progress:" "$([ -s "$T/err" ] && cat "$T/err")"

printf 'secrets:\n  s3_key: {file: keys/s3}\n  token: {env: API_TOKEN}\n' > "$T/k/flow.yaml"
run "$T/k" --flow params --state "$T/st1"
expect "secrets: read (where each comes from)" 0 '"default"'
printf 'secrets:\n  s3_key: {file: keys/s3, env: X}\n' > "$T/k/flow.yaml"
run "$T/k" --flow params --state "$T/st1"
refused "secrets: exactly one source" "flowrun run: flow.yaml:2:3: secret 's3_key': give exactly one of 'file' and 'env'"

# ---- environments ----
mkdir -p "$T/e"
cat > "$T/e/flow.yaml" <<EOF
envs:
  prod:
    root: roots/prod
    params: {out: prod-out}
  test:
    root: $T/e/roots/test/
    params:
      out: test-out
      xs: [1, 2]
      r: {a: 7, b: [x, y]}
EOF
rm -f "$T/ran"
run "$T/e" --flow many --env qa --state "$T/st2"
refused "--env not in the file" "flowrun: --env qa: no such environment in flow.yaml (has: prod, test)"
check "--env not in the file: nothing ran" "$([ -e "$T/ran" ] && echo "a task ran")"
run "$T/other" --flow many --env test --state "$T/st2"
refused "--env test with no file" "flowrun: --env test: no such environment in the default configuration (no flow.yaml) (has: prod)"
(cd "$T/e" && "$FR" backfill "$P" --flow many --from 2026-01-01 --to 2026-01-02 --env qa) > "$T/out" 2> "$T/err"
code=$?
refused "backfill: --env not in the file" "flowrun: --env qa: no such environment in flow.yaml (has: prod, test)"
(cd "$T/e" && "$FR" serve "$P" --env qa) > "$T/out" 2> "$T/err"
code=$?
refused "serve: --env not in the file" "flowrun: --env qa: no such environment in flow.yaml (has: prod, test)"

# parameters: --param > --params FILE > the environment's > the default
printf 'out: from-file\n' > "$T/p.yaml"
run "$T/e" --flow params --state "$T/st2"
expect "params: the environment's (prod)" 0 '"prod-out"'
run "$T/e" --flow params --state "$T/st2" --env test --unprotected
expect "params: the environment's (test)" 0 '"test-out"'
run "$T/e" --flow lists --state "$T/st2" --env test --unprotected
expect "params: a YAML sequence as a --params file reads it" 0 '[1,2]'
run "$T/e" --flow params --state "$T/st2" --env test --unprotected --params "$T/p.yaml"
expect "params: --params wins over the environment's" 0 '"from-file"'
run "$T/e" --flow params --state "$T/st2" --env test --unprotected --params "$T/p.yaml" \
    --param out=cli
expect "params: --param wins over both" 0 '"cli"'
run "$T/e" --flow env --state "$T/st2"
refused "params: one the flow does not have" "flowrun: flow.yaml:4:14: environment 'prod': unknown parameter 'out' for flow env (its parameters: n)"
printf 'envs:\n  prod:\n    params: {xs: [a]}\n' > "$T/k/flow.yaml"
run "$T/k" --flow lists --state "$T/st2"
refused "params: a value of the wrong type" "flowrun: flow.yaml:3:19: parameter 'xs' ([int]): expected an int, got 'a'"

# a resumed run keeps the parameters it was recorded with, whatever flow.yaml says now
if command -v sqlite3 > /dev/null; then
    rm -rf "$T/st3"
    run "$T/e" --flow params --state "$T/st3"
    sqlite3 "$T/st3/state.db" "UPDATE runs SET state = 'failed'" 2> /dev/null
    sed 's/prod-out/changed/' "$T/e/flow.yaml" > "$T/e/changed.yaml"
    (cd "$T/e" && "$FR" resume last --state "$T/st3" --progress none --config changed.yaml) \
        > "$T/out" 2> "$T/err"
    code=$?
    expect "resume keeps the recorded parameters" 0 '"prod-out"'
else
    echo "SKIP config: resume keeps the recorded parameters: no sqlite3"
fi

# roots: created before the run; what tasks see
cat > "$T/e/flow.yaml" <<EOF
envs:
  prod:
    root: roots/prod
  test:
    root: $T/e/roots/test/
  bare: {}
EOF
for ex in inline process; do
    rm -rf "$T/e/roots"
    run "$T/e" --flow env --state "$T/st2" --executor $ex --no-cache
    expect "prod under $ex: flow_env_root and FLOW_ENV_ROOT" 0 \
        "[\"$T/e/roots/prod\",\"prod root=$T/e/roots/prod set=1\"]"
    # every root is made before a run: its own to write, the others' to protect (57-isolate)
    check "prod under $ex: its root was created, and test's" \
        "$([ -d "$T/e/roots/prod" ] || echo "no $T/e/roots/prod")$([ -d "$T/e/roots/test" ] || echo "no $T/e/roots/test")"
    run "$T/e" --flow env --state "$T/st2" --executor $ex --no-cache --env test --unprotected
    expect "test under $ex: flow_env_root and FLOW_ENV_ROOT" 0 \
        "[\"$T/e/roots/test\",\"test root=$T/e/roots/test set=1\"]"
    check "test under $ex: its root was created" "$([ -d "$T/e/roots/test" ] || echo "no root")"
    run "$T/e" --flow env --state "$T/st2" --executor $ex --no-cache --env bare --unprotected
    expect "an environment without a root under $ex: NULL and FLOW_ENV_ROOT unset" 0 \
        "[\"-\",\"bare root= set=0\"]"
done
check "a created root has mode 0755" "$([ "$(stat -c %a "$T/e/roots/test")" = 755 ] || stat -c %a "$T/e/roots/test")"

. tests/harness/nobody.sh
NOBODY_WHY=$(nobody_why)
printf 'envs:\n  test:\n    root: roots/owned\n    owner: nobody\n' > "$T/k/flow.yaml"
if [ "$(id -u)" = 0 ]; then
    rm -rf "$T/k/roots"
    run "$T/k" --flow env --state "$T/st2" --env test --unprotected --no-cache
    why=""
    [ "$code" = 0 ] || why="exit $code: $(cat "$T/err")"
    [ -z "$why" ] && [ "$(stat -c %U "$T/k/roots/owned" 2>&1)" != nobody ] &&
        why="owned by $(stat -c %U "$T/k/roots/owned" 2>&1)"
    check "owner: a created root is given to it (root)" "$why"
else
    echo "SKIP config: owner: a created root is given to it (root): not root"
fi
if [ -z "$NOBODY_WHY" ]; then
    # as nobody, a root that must be created for another user is refused
    printf 'envs:\n  test:\n    root: roots/other\n    owner: root\n' > "$T/k/flow.yaml"
    chmod 777 "$T/k"
    (cd "$T/k" && setpriv --reuid=nobody --regid="$(id -gn nobody)" --clear-groups -- \
        "$FR" "$P" --flow env --progress none --env test --unprotected --state "$T/k/stn") \
        > "$T/out" 2> "$T/err"
    code=$?
    refused "owner: not root, another user's root is refused" "flowrun: environment 'test' root $T/k/roots/other: cannot create it owned by 'root' (flowrun is not root); create it first"
    chmod 755 "$T/k"
else
    echo "SKIP config: owner: not root, another user's root is refused: $NOBODY_WHY"
fi

printf 'envs:\n  prod: {root: /srv/a}\n  test: {root: /srv/a/b/../b/c}\n' > "$T/k/flow.yaml"
run "$T/k" --flow params --state "$T/st2"
refused "overlapping roots" "flowrun run: flow.yaml:3:16: environment 'test' root /srv/a/b/c is inside environment 'prod' root /srv/a"
printf 'envs:\n  prod: {root: %s/k/p}\n  test: {root: %s/k/t}\n' "$T" "$T" > "$T/k/flow.yaml"
rm -f "$T/ran"
run "$T/k" --flow many --state "$T/k/p/.flow" --env test --unprotected
refused "a state directory inside another environment's root" "flowrun: flow.yaml:2:16: the state directory $T/k/p/.flow is inside environment 'prod' root $T/k/p (a run in 'test' could not write its state)"
check "a state directory inside another environment's root: nothing ran" "$([ -e "$T/ran" ] && echo "a task ran")"
run "$T/k" --flow many --state "$T/k/p/.flow"
expect "a state directory inside the run's own root" 0 "[0,1,2]"
exit 0
