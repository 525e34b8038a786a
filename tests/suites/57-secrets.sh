#!/bin/sh
# secrets: [...] reaches only its task (docs/secrets.md). A flow.yaml with a file
# secret and an environment-variable secret; a C task reads its secret through
# flow_secret and returns a hash of it, an sh task through {secret.NAME} and
# $FLOW_SECRET_NAME; tasks that did not declare it (C and sh), running at the same
# time, get NULL from flow_secret and find the value nowhere under /proc (environ,
# cmdline, root/<the secret's path>); the value is in no file of the state directory
# and not in flowrun's /proc/PID/environ; the inline executor refuses; a secret the
# configuration lacks, or an unset variable, is exit 2 naming task and secret; a
# crashing and a timed-out task in such a run fail as usual. As root, and as the
# user nobody where it can run programs (else SKIP with why).
# Compiler errors: tests/errors/secret_*.flow (20-errors).
BUILD=${BUILD:-build}
FLOWC=$(pwd)/$BUILD/bin/flowc
FLOWRUN=$(pwd)/$BUILD/bin/flowrun
LIB=$(pwd)/tests/lib/libsecrets.so
T=$(mktemp -d /tmp/flow-secrets-XXXXXX)
chmod 755 "$T"
trap '[ -n "$KEEP" ] || rm -rf "$T"' EXIT INT TERM

pass() { echo "PASS secrets: $1"; }
fail() { echo "FAIL secrets: $1: $2"; }
skip() { echo "SKIP secrets: $1: $2"; }

[ -f "$LIB" ] || { skip all "tests/lib/libsecrets.so is not built (make testlibs)"; exit 0; }

. tests/harness/nobody.sh

# setup DIR: a project in DIR (flow.yaml, the plan, the library, the secret file,
# and needle files holding the values, outside the state directory)
setup() {
    d=$1
    mkdir -p "$d"
    cp "$LIB" "$d/"
    printf 'file-secret-%s-Zq81\n' "$$" > "$d/key.txt"
    printf 'env-secret-%s-Wx42' "$$" > "$d/token.txt"
    chmod 600 "$d/key.txt"
    printf 'file-secret-%s-Zq81' "$$" > "$d/needle-file"
    cp "$d/token.txt" "$d/needle-env"
    cat > "$d/flow.yaml" <<EOF
secrets:
  filekey:
    file: key.txt
  envtok:
    env: S57_TOKEN
EOF
    cat > "$d/s.flow" <<EOF
library sec = "libsecrets.so"
task reader(n: str) -> str = sec.secret_hash with {secrets: ["filekey"]}
task envreader(n: str) -> str = sec.secret_hash with {secrets: ["envtok"]}
task filehash(p: str) -> str = sec.secret_file_hash
task snoop(n: str, needle: str, p: str) -> str = sec.secret_snoop
task shread() -> str = sh "sleep 1; cksum < {secret.filekey}; cksum < \$FLOW_SECRET_ENVTOK" with {secrets: ["filekey", "envtok"]}
task shsnoop(needle: str, p: str) -> str = sh "sleep 0.3; echo \"[\$FLOW_SECRET_FILEKEY\$FLOW_SECRET_ENVTOK]\"; grep -lsF -f {needle} /proc/[0-9]*/environ /proc/[0-9]*/cmdline /proc/[0-9]*/root{p}/filekey; echo end"
task crash(x: int) -> int = sec.secret_crash
task scrash(x: int) -> int = sec.secret_crash with {secrets: ["filekey"]}
task sabort(x: int) -> int = sec.secret_abort with {secrets: ["envtok"]}
task hang(x: int) -> int = sec.secret_hang with {timeout: 1s}
task shang(x: int) -> int = sec.secret_hang with {timeout: 1s, secrets: ["filekey"]}
task plain(x: int) -> int = sh "echo {x}"

flow main(dir: str) -> [str] {
    let a = reader("filekey")
    let b = envreader("envtok")
    let c = filehash("key.txt")
    let e = shread()
    let f = snoop("filekey", "needle-file", dir)
    let g = snoop("envtok", "needle-env", dir)
    let h = shsnoop("needle-file", dir)
    return [a, b, c, e, f, g, h]
}
flow failing(x: int = 1) -> [int] {
    return [crash(x), scrash(x), sabort(x), hang(x), shang(x), plain(x)]
}
flow nosecrets(x: int = 1) -> int {
    return plain(x)
}
flow probe() -> str {
    return reader("probe")
}
EOF
}

# check_main DIR RUNNER: run flow main in DIR (RUNNER: "" or the setpriv prefix) and
# check what each task got. Prints PASS/FAIL lines with the suffix $3.
check_main() {
    d=$1; run=$2; sfx=$3
    mnt="$d/st/secret-mount"
    rmdir "$mnt" 2> /dev/null # an earlier run's: its reappearance says when to look
    (cd "$d" && $run "$FLOWC" s.flow -o s.plan) 2> "$d/cerr" || { fail "compile$sfx" "$(head -3 "$d/cerr")"; return; }
    (cd "$d" || exit 1
     S57_TOKEN=$(cat "$d/token.txt") $run "$FLOWRUN" s.plan --flow main --state st -j 4 \
        --progress none --param "dir=$mnt" > out 2> err &
     wait $!; echo $? > code) &
    bg=$!
    # flowrun makes the mount folder after it moved the secrets: look then
    n=0
    while [ ! -d "$mnt" ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
    # flowrun's own environment no longer shows the env secret (checked from outside,
    # while the run goes on)
    fpid=$(pgrep -f "flowrun s.plan --flow main --state st -j 4" | head -1)
    if [ -n "$fpid" ] && grep -qsF -f "$d/needle-env" "/proc/$fpid/environ"; then
        fail "environ$sfx" "flowrun's /proc/$fpid/environ still holds the env secret ($(tr '\0' ' ' < /proc/$fpid/cmdline), parent $(awk '{print $4}' /proc/$fpid/stat))"
    elif [ -n "$fpid" ]; then
        pass "flowrun's /proc/PID/environ does not hold the env secret$sfx"
    else
        skip "environ$sfx" "the run ended before it could be looked at"
    fi
    wait $bg
    code=$(cat "$d/code")
    if [ "$code" != 0 ]; then fail "run$sfx" "exit $code: $(head -5 "$d/err")"; return; fi
    out=$(cat "$d/out")
    a=$(printf '%s\n' "$out" | jq -r '.[0]'); b=$(printf '%s\n' "$out" | jq -r '.[1]'); c=$(printf '%s\n' "$out" | jq -r '.[2]')
    e=$(printf '%s\n' "$out" | jq -r '.[3]'); f=$(printf '%s\n' "$out" | jq -r '.[4]'); g=$(printf '%s\n' "$out" | jq -r '.[5]')
    h=$(printf '%s\n' "$out" | jq -r '.[6]')
    [ "$a" = "$c" ] && [ "$a" != NULL ] && pass "a C task reads its file secret through flow_secret$sfx" ||
        fail "file secret$sfx" "flow_secret gave hash $a, the file's is $c"
    [ "$b" != NULL ] && [ -n "$b" ] && [ "$b" != "$a" ] && pass "a C task reads its env secret through flow_secret$sfx" ||
        fail "env secret$sfx" "flow_secret gave $b"
    want=$(cksum < "$d/key.txt"; cksum < "$d/token.txt")
    [ "$e" = "$want" ] && pass "an sh task reads its secrets through {secret.x} and \$FLOW_SECRET_X$sfx" ||
        fail "sh secret$sfx" "got '$e', want '$want'"
    [ "$f" = nothing ] && [ "$g" = nothing ] &&
        pass "a C task without the secret: flow_secret NULL, nothing in /proc/*/environ, cmdline, root$sfx" ||
        fail "C snoop$sfx" "file: $f; env: $g"
    [ "$h" = "$(printf '[]\nend')" ] &&
        pass "an sh task without the secret: no FLOW_SECRET_*, nothing under /proc$sfx" ||
        fail "sh snoop$sfx" "got: $h"
    found=$(grep -rlF -f "$d/needle-file" "$d/st" "$d/s.plan" 2> /dev/null; grep -rlF -f "$d/needle-env" "$d/st" "$d/s.plan" 2> /dev/null)
    [ -z "$found" ] && pass "the values are in no file of the state directory, the plan or the logs$sfx" ||
        fail "state$sfx" "found in: $found"
    [ -z "$(ls -A "$mnt" 2> /dev/null)" ] && pass "the mount folder is empty outside the workers$sfx" ||
        fail "mnt$sfx" "$(ls -A "$mnt")"
}

# ---- as root (or as whoever runs the suite) ----
R="$T/root"
setup "$R"
# a machine where a worker cannot have namespaces of its own (a chroot: "/" is not a
# mount) refuses every run with secrets, and says why: nothing else can be checked
(cd "$R" && "$FLOWC" s.flow -o p.plan 2> /dev/null &&
    S57_TOKEN=x "$FLOWRUN" p.plan --flow probe --state st-probe --progress none > o 2> e; echo $? > c)
if [ "$(cat "$R/c")" = 2 ] && grep -qF "cannot be kept from its other tasks here" "$R/e"; then
    skip "every check" "this machine refuses: $(cat "$R/e")"
    exit 0
fi
check_main "$R" "" ""

# the inline executor refuses a run with secret tasks, before anything runs
(cd "$R" && S57_TOKEN=x "$FLOWRUN" s.plan --flow main --state st --executor inline --progress none --param dir=/x > o 2> e; echo $? > c)
if [ "$(cat "$R/c")" = 2 ] && grep -qF "task 'reader' declares secrets: the inline executor runs every task in one process" "$R/e"; then
    pass "the inline executor refuses a task with secrets"
else
    fail "inline" "exit $(cat "$R/c"): $(cat "$R/e")"
fi
# ... but runs a flow that reaches none
(cd "$R" && "$FLOWRUN" s.plan --flow nosecrets --state st --executor inline --progress none > o 2> e; echo $? > c)
[ "$(cat "$R/c")" = 0 ] && pass "a flow of the same plan reaching no secret task runs inline" ||
    fail "inline no secrets" "exit $(cat "$R/c"): $(cat "$R/e")"

# an unset environment variable, a secret the configuration lacks, an unreadable file
(cd "$R" && env -u S57_TOKEN "$FLOWRUN" s.plan --flow main --state st --progress none --param dir=/x > o 2> e; echo $? > c)
[ "$(cat "$R/c")" = 2 ] && grep -qF "task 'envreader', secret 'envtok': the environment variable S57_TOKEN is not set" "$R/e" &&
    pass "an unset environment variable is exit 2 naming task and secret" ||
    fail "unset env" "exit $(cat "$R/c"): $(cat "$R/e")"
sed 's/filekey:/filekex:/' "$R/flow.yaml" > "$R/flow2.yaml"
(cd "$R" && S57_TOKEN=x FLOW_CONFIG=flow2.yaml "$FLOWRUN" s.plan --flow main --state st --progress none --param dir=/x > o 2> e; echo $? > c)
[ "$(cat "$R/c")" = 2 ] && grep -qF "task 'reader' declares secret 'filekey', which flow2.yaml does not define" "$R/e" &&
    pass "a secret the configuration lacks is exit 2 naming task and secret" ||
    fail "missing secret" "exit $(cat "$R/c"): $(cat "$R/e")"
sed 's/key.txt/nokey.txt/' "$R/flow.yaml" > "$R/flow3.yaml"
(cd "$R" && S57_TOKEN=x FLOW_CONFIG=flow3.yaml "$FLOWRUN" s.plan --flow main --state st --progress none --param dir=/x > o 2> e; echo $? > c)
[ "$(cat "$R/c")" = 2 ] && grep -qF "task 'reader', secret 'filekey': its file $R/nokey.txt cannot be read" "$R/e" &&
    pass "a secret file that cannot be read is exit 2 naming task and secret" ||
    fail "missing file" "exit $(cat "$R/c"): $(cat "$R/e")"

# crashes and timeouts in a run whose workers are pid 1 of their namespaces
start=$(date +%s)
(cd "$R" && S57_TOKEN=x "$FLOWRUN" s.plan --flow failing --state st -j 2 --progress none > o 2> e; echo $? > c)
took=$(( $(date +%s) - start ))
e=$(cat "$R/e")
if [ "$(cat "$R/c")" = 1 ] && echo "$e" | grep -q "^  crash\[\?.*worker killed by signal 11" &&
    echo "$e" | grep -q "scrash.*worker killed by signal 11 (Segmentation fault)" &&
    echo "$e" | grep -q "sabort.*worker killed by signal 6 (Aborted)" &&
    echo "$e" | grep -q "  hang.*timed out after 1s" && echo "$e" | grep -q "shang.*timed out after 1s" &&
    [ "$took" -lt 10 ]; then
    pass "crashes, aborts and timeouts of pooled and fresh workers fail only their instance (${took}s)"
else
    fail "crash/timeout" "exit $(cat "$R/c") after ${took}s: $e"
fi
left=$(pgrep -f "secret-mount|s.plan --flow failing" | wc -l)
[ "$left" = 0 ] && pass "no worker outlives the run" || fail "leftovers" "$left processes"

# ---- run_as and secrets together (as root): the task runs as nobody and reads its
# secret (its source file is root's, mode 0600) ----
if [ "$(id -u)" = 0 ] && [ -z "$(nobody_why)" ]; then
    A="$T/runas"
    mkdir -p "$A"
    printf 'runas-secret-%s\n' "$$" > "$A/key.txt"
    chmod 600 "$A/key.txt"
    printf 'secrets:\n  key: {file: %s/key.txt}\n' "$A" > "$A/flow.yaml"
    cat > "$A/a.flow" <<'EOF2'
task peek() -> str = sh "echo $(id -u) $(cat {secret.key})" with {secrets: ["key"], run_as: "nobody"}
flow f() -> str {
    return peek()
}
EOF2
    (cd "$A" && "$FLOWC" a.flow -o a.plan 2> /dev/null && "$FLOWRUN" a.plan --state st --progress none > o 2> e; echo $? > c)
    if [ "$(cat "$A/c")" = 0 ] && [ "$(jq -r . < "$A/o")" = "65534 runas-secret-$$" ]; then
        pass "run_as nobody with a secret: the task runs as 65534 and reads its secret"
    else
        fail "run_as with a secret" "exit $(cat "$A/c"): $(cat "$A/o" "$A/e")"
    fi
fi

# ---- as the user nobody ----
why=$(nobody_why)
if [ -n "$why" ]; then
    skip "as nobody" "$why"
else
    N="$T/nobody"
    setup "$N"
    chown -R nobody "$N"
    NB="setpriv --reuid=nobody --regid=$(id -gn nobody) --clear-groups --"
    (cd "$N" && $NB "$FLOWC" s.flow -o p.plan 2> /dev/null &&
        S57_TOKEN=x $NB "$FLOWRUN" p.plan --flow probe --state st --progress none > o 2> e; echo $? > c)
    if [ "$(cat "$N/c")" = 2 ] && grep -qF "cannot be kept from its other tasks here" "$N/e"; then
        skip "as nobody" "the kernel refuses: $(cat "$N/e")"
    else
        check_main "$N" "$NB" " (as nobody)"
    fi
fi
