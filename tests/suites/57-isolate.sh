#!/bin/sh
# Environments kept apart at the filesystem (isolate.c, docs/environments.md): with a
# flow.yaml giving prod and test roots, a prod run publishes a file into prod's root;
# a test run whose task writes there fails with "Read-only file system" in its log
# (flowrun logs) and prod's file stays byte-identical — for a C task and an sh task,
# under --executor inline and process; the test run writes its own root; a prod run
# cannot write test's root. A task that tries to undo it (a remount as root, a nested
# user namespace as a user) fails. As root, and as the unprivileged user nobody
# (tests/harness/nobody.sh), through a user namespace; where the kernel refuses one, a
# test run is refused (exit 2) and --unprotected runs it with a warning; in a chroot
# whose "/" is not a mount point a prod run goes on, said once, and still finds the std
# library beside flowrun. Without flow.yaml no namespace is entered at all.
ROOTDIR=$(pwd)
T=$(mktemp -d /tmp/flow-isolate-XXXXXX)
chmod 755 "$T"
trap '[ -n "$KEEP" ] || rm -rf "$T"' EXIT INT TERM
INC="$(pwd)/runtime/include"

pass() { echo "PASS isolate: $1"; }
fail() { echo "FAIL isolate: $1: $2"; }
skip() { echo "SKIP isolate: $1: $2"; }

. tests/harness/nobody.sh

PROD="$T/roots/prod"
TEST="$T/roots/test"
mkdir -p "$T/roots" "$T/noconf" # the roots themselves: made by flowrun before a run
chmod 755 "$T/roots"
cat > "$T/flow.yaml" << EOF
envs:
  prod:
    root: $PROD
  test:
    root: $TEST
EOF
cat > "$T/put.c" << 'EOF'
#include <errno.h>
#include <flow.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* write TEXT into DIR/pub.txt; a failure says why in the log and fails */
int64_t put(const char *dir, const char *text) {
    char p[4096];
    snprintf(p, sizeof p, "%s/pub.txt", dir);
    FILE *f = fopen(p, "w");
    if (!f) {
        flow_log("cannot write %s: %s", p, strerror(errno));
        flow_fail("cannot write %s: %s", p, strerror(errno));
        return 0;
    }
    fprintf(f, "%s\n", text);
    fclose(f);
    return 1;
}
EOF
cat > "$T/w.flow" << 'EOF'
library w = "libput.so"
task cput(dir: str, text: str) -> int = w.put
task shput(dir: str, text: str) -> int = sh "echo {text} > {dir}/pub.txt && echo 1"
# what a determined task tries: as root a remount, as a user a nested user namespace
task undo(dir: str) -> int = sh "mount -o remount,bind,rw {dir} 2>&1 || unshare -U -m -r sh -c 'mount -o remount,bind,rw {dir}; echo undone > {dir}/pub.txt' 2>&1; echo undone > {dir}/pub.txt && echo 1"
task ns() -> str = sh "readlink /proc/self/ns/mnt"
# ... or reaches another process's view of the files, where prod's root is writable
task viaproc(dir: str) -> int = sh "for p in /proc/[0-9]*; do echo escaped 2>/dev/null > $p/root{dir}/pub.txt && echo 1 && exit 0; done; echo no way in >&2; exit 1"

flow c(dir: str, text: str = "x") -> int {
    return cput(dir, text)
}
flow shf(dir: str, text: str = "x") -> int {
    return shput(dir, text)
}
flow tries(dir: str) -> int {
    return undo(dir)
}
flow snoop(dir: str) -> int {
    return viaproc(dir)
}
flow where() -> str {
    return ns()
}
EOF
cat > "$T/s.flow" << 'EOF'
task tick() -> int = sh "echo 1"
task stamp(dir: str) -> int = sh "echo backfilled > {dir}/pub.txt && echo 1"
flow daily(day: date) schedule "@daily" {
    tick()
}
flow bf(day: date, dir: str) schedule "@daily" {
    stamp(dir)
}
EOF
if ! ${CC:-cc} -shared -fPIC -I"$INC" -o "$T/libput.so" "$T/put.c" 2> "$T/cc.err" ||
    ! "$FLOWC" "$T/w.flow" -o "$T/w.plan" 2> "$T/flowc.err" ||
    ! "$FLOWC" "$T/s.flow" -o "$T/s.plan" 2>> "$T/flowc.err"; then
    fail setup "$(cat "$T/cc.err" "$T/flowc.err" | head -3)"
    exit 0
fi
chmod 644 "$T/w.plan" "$T/s.plan" "$T/libput.so"

AS=""     # "" (ourselves) or "nobody"
ST=""     # the state directory of the current user
# fr ARGS...: flowrun in $T (so ./flow.yaml is read) as $AS; exit code in $code,
# stdout in $T/out, stderr in $T/err
# nob CMD...: CMD as nobody in $T (redefined below to run it chrooted)
nob() {
    (cd "$T" && exec setpriv --reuid=nobody --regid="$(id -gn nobody)" --clear-groups -- "$@")
}
fr() {
    if [ -n "$AS" ]; then
        nob "$FLOWRUN" "$T/w.plan" --progress none --state "$ST" "$@" > "$T/out" 2> "$T/err"
    else
        (cd "$T" && "$FLOWRUN" "$T/w.plan" --progress none --state "$ST" "$@") > "$T/out" 2> "$T/err"
    fi
    code=$?
}
# logs INSTANCE: the last run's log of that instance, into $T/log
logs() {
    (cd "$T" && "$FLOWRUN" logs last "$1" --state "$ST") > "$T/log" 2>&1
}

# matrix WHO: every check of the matrix as the current user ($AS)
matrix() {
    who=$1
    for kind in c sh; do
        task=cput fl=c
        [ "$kind" = sh ] && task=shput fl=shf
        for ex in inline process; do
            tag="$who, $kind task, $ex"
            fr --flow "$fl" --executor $ex --no-cache --param dir="$PROD" --param text="prod-$kind-$ex"
            if [ "$code" != 0 ] || [ "$(cat "$PROD/pub.txt" 2> /dev/null)" != "prod-$kind-$ex" ]; then
                fail "prod publishes ($tag)" "exit $code: $(head -3 "$T/err")"
                continue
            fi
            pass "prod publishes ($tag)"
            cp "$PROD/pub.txt" "$T/prod.before"
            fr --flow "$fl" --executor $ex --no-cache --env test --param dir="$PROD" --param text=EVIL
            why=""
            [ "$code" = 1 ] || why="exit code $code, want 1"
            [ -z "$why" ] && ! cmp -s "$PROD/pub.txt" "$T/prod.before" &&
                why="prod's file changed: $(cat "$PROD/pub.txt")"
            if [ -z "$why" ]; then
                logs "$task"
                grep -q "Read-only file system" "$T/log" ||
                    why="its log does not say 'Read-only file system': $(head -3 "$T/log")"
            fi
            if [ -z "$why" ]; then pass "a test run cannot write prod's root ($tag)"; else
                fail "a test run cannot write prod's root ($tag)" "$why"; sed 's/^/    /' "$T/err"; fi
            fr --flow "$fl" --executor $ex --no-cache --env test --param dir="$TEST" --param text="test-$kind-$ex"
            if [ "$code" = 0 ] && [ "$(cat "$TEST/pub.txt" 2> /dev/null)" = "test-$kind-$ex" ]; then
                pass "a test run writes its own root ($tag)"
            else
                fail "a test run writes its own root ($tag)" "exit $code: $(head -3 "$T/err")"
            fi
        done
    done
    # and the other way round: prod's tasks cannot write test's root
    cp "$TEST/pub.txt" "$T/test.before"
    fr --flow shf --executor process --no-cache --param dir="$TEST" --param text=EVIL
    if [ "$code" = 1 ] && cmp -s "$TEST/pub.txt" "$T/test.before"; then
        pass "a prod run cannot write test's root ($who)"
    else
        fail "a prod run cannot write test's root ($who)" "exit $code: $(cat "$TEST/pub.txt")"
    fi
    # a task that tries to undo it: root remounts (process executor: no CAP_SYS_ADMIN
    # left in workers); a user makes a nested user namespace (the mounts are locked)
    cp "$PROD/pub.txt" "$T/prod.before"
    exs="process"
    [ -n "$AS" ] && exs="inline process" # as root, an inline task can remount: documented
    for ex in $exs; do
        fr --flow tries --executor $ex --no-cache --env test --param dir="$PROD"
        if [ "$code" = 1 ] && cmp -s "$PROD/pub.txt" "$T/prod.before"; then
            pass "a task that tries to remount prod's root fails ($who, $ex)"
        else
            fail "a task that tries to remount prod's root fails ($who, $ex)" \
                "exit $code, prod's file: $(cat "$PROD/pub.txt")"
        fi
    done
    # /proc/PID/root of a process outside the run (its parent shell, init): under the
    # process executor each worker has a pid namespace and a /proc of its own
    fr --flow snoop --executor process --no-cache --env test --param dir="$PROD"
    if [ "$code" = 1 ] && cmp -s "$PROD/pub.txt" "$T/prod.before"; then
        pass "a task cannot reach prod's root through /proc/PID/root ($who, process)"
    else
        fail "a task cannot reach prod's root through /proc/PID/root ($who, process)" \
            "exit $code, prod's file: $(cat "$PROD/pub.txt")"
    fi
}

# ---- can this machine isolate a run at all? Not in a chroot, whose "/" is not a
# mount: then every check below would only see the refusal, which says why ----
mkdir -p "$T/probe"
printf 'envs:\n  prod: {root: %s/probe/p}\n  test: {root: %s/probe/t}\n' "$T" "$T" > "$T/probe/flow.yaml"
(cd "$T/probe" && "$FLOWRUN" "$T/w.plan" --flow where --executor inline --no-cache --env test \
    --progress none --state "$T/probe/st") > "$T/out" 2> "$T/err"
if [ $? = 2 ] && grep -q "cannot keep this run off" "$T/err"; then
    skip "every check" "this machine cannot isolate a run: $(cat "$T/err")"
    exit 0
fi

# ---- as root (or whoever runs the suite) ----
ST="$T/st"
fr --flow shf --executor inline --dry-run --param dir="$PROD"
if [ -d "$PROD" ] || [ -d "$TEST" ]; then fail "a dry run makes no root" "$(ls "$T/roots")"; else
    pass "a dry run makes no root"; fi
matrix "$(id -un)"
if [ -d "$TEST" ]; then pass "every root is made before the first run"; else
    fail "every root is made before the first run" "$(ls "$T/roots")"; fi

# ---- no flow.yaml: no namespace at all (inline: the task sees flowrun's own) ----
here=$(readlink /proc/self/ns/mnt)
got=$(cd "$T/noconf" && "$FLOWRUN" "$T/w.plan" --flow where --executor inline --no-cache \
    --progress none --state "$T/st-noconf" 2> "$T/err")
got=$(echo "$got" | tr -d '"')
if [ "$got" = "$here" ]; then pass "no flow.yaml: no mount namespace"; else
    fail "no flow.yaml: no mount namespace" "task in $got, flowrun's parent in $here: $(cat "$T/err")"; fi
fr --flow where --executor inline --no-cache --env test
got=$(tr -d '"' < "$T/out")
if [ "$code" = 0 ] && [ "$got" != "$here" ]; then pass "with other roots: a mount namespace"; else
    fail "with other roots: a mount namespace" "exit $code, $got"; fi

# backfill: each interval's run is isolated as any run
cp "$PROD/pub.txt" "$T/prod.before"
(cd "$T" && "$FLOWRUN" backfill "$T/s.plan" --flow bf --from 2026-01-01 --to 2026-01-02 \
    --env test --param dir="$PROD" --state "$ST" --progress none) > "$T/out" 2> "$T/err"
code=$?
if [ "$code" = 1 ] && cmp -s "$PROD/pub.txt" "$T/prod.before"; then
    pass "backfill --env test cannot write prod's root"
else
    fail "backfill --env test cannot write prod's root" "exit $code: $(head -3 "$T/err")"
fi

# serve: an environment flow.yaml does not have is refused at start
(cd "$T" && "$FLOWRUN" serve "$T/s.plan" --env staging --state "$ST") > "$T/out" 2> "$T/err"
code=$?
if [ "$code" = 2 ] && grep -q -- "--env staging: no such environment" "$T/err"; then
    pass "serve --env staging (not in flow.yaml) is refused"
else
    fail "serve --env staging (not in flow.yaml) is refused" "exit $code: $(cat "$T/err")"
fi

# --unprotected: no isolation, said once
fr --flow shf --executor inline --no-cache --env test --unprotected --param dir="$PROD" --param text=unprot
if [ "$code" = 0 ] && [ "$(cat "$PROD/pub.txt")" = unprot ] && [ "$(wc -l < "$T/err")" = 1 ] &&
    grep -q -- "--unprotected" "$T/err"; then
    pass "--unprotected runs without isolation, with one warning"
else
    fail "--unprotected runs without isolation, with one warning" "exit $code: $(cat "$T/err")"
fi

# ---- a chroot whose "/" is not a mount point (as on the fresh-machine check): a prod
# run cannot be isolated there and goes on, said once, still finding flow's own modules
# beside flowrun (the std library) — which the kernel, once flowrun has a mount
# namespace of its own, names by its path outside the chroot ----
if [ "$(id -u)" = 0 ]; then
    mkdir -p "$T/bare" "$T/chr"
    printf 'envs:\n  prod: {root: %s/chr/p}\n  test: {root: %s/chr/t}\n' "$T" "$T" > "$T/chr/flow.yaml"
    printf 'import std\nflow sz(f: path) -> int {\n    return std.size(f)\n}\n' > "$T/sz.flow"
    cat > "$T/bare.sh" << 'EOF'
# bare.sh NEWROOT DIR CMD...: CMD in DIR, chrooted into NEWROOT, a plain folder holding
# a bind of each folder of "/" (and a copy of each link), in a mount namespace of its own
nr=$1 dir=$2
shift 2
mount --make-rprivate / || exit 97
for e in /*; do
    if [ -L "$e" ]; then cp -P "$e" "$nr$e" || exit 97
    elif [ -d "$e" ]; then mkdir -p "$nr$e" && mount --rbind "$e" "$nr$e" || exit 97
    fi
done
exec chroot "$nr" sh -c 'cd "$0" && exec "$@"' "$dir" "$@"
EOF
    if ! "$FLOWC" "$T/sz.flow" -o "$T/sz.plan" 2> "$T/err"; then
        fail "a chroot: a prod run finds the std library" "flowc: $(cat "$T/err")"
    else
        unshare -m sh "$T/bare.sh" "$T/bare" "$T/chr" "$FLOWRUN" "$T/sz.plan" --param f="$T/sz.flow" \
            --progress none --state "$T/chr/st" > "$T/out" 2> "$T/err"
        code=$?
        want=$(wc -c < "$T/sz.flow")
        if [ "$code" = 97 ]; then
            skip "a chroot: a prod run finds the std library" "cannot make the chroot here"
        elif [ "$code" = 0 ] && [ "$(cat "$T/out")" = "$want" ] && [ "$(wc -l < "$T/err")" -le 1 ]; then
            pass "a chroot: a prod run finds the std library$(sed -n 's/^flowrun: \(.*not protected\).*/ (\1)/p' "$T/err")"
        else
            fail "a chroot: a prod run finds the std library" "exit $code, $(cat "$T/out"), want $want: $(cat "$T/err")"
        fi
    fi
fi

# ---- as nobody: through a user namespace, or refused ----
if [ "$(id -u)" != 0 ]; then
    skip "as nobody" "not root (the checks above ran as $(id -un))"
    exit 0
fi
why=$(nobody_why)
if [ -n "$why" ]; then
    skip "as nobody" "$why"
    exit 0
fi
chmod 777 "$PROD" "$TEST" "$T"
chmod 666 "$PROD/pub.txt" "$TEST/pub.txt"
AS=nobody
ST="$T/st-nobody"
# refusals: where the kernel gives nobody no user namespace, or, where it does, in a
# chroot (the kernel refuses a user namespace to a chrooted process: EPERM)
refusals() {
    where=$1
    fr --flow shf --executor process --no-cache --env test --param dir="$TEST" --param text=x
    if [ "$code" = 2 ] && [ "$(wc -l < "$T/err")" = 1 ] &&
        grep -q "cannot keep this run off .*give --unprotected to run it anyway" "$T/err"; then
        pass "nobody, $where: a test run is refused"
    else
        fail "nobody, $where: a test run is refused" "exit $code: $(cat "$T/err")"
    fi
    fr --flow shf --executor process --no-cache --env test --unprotected --param dir="$TEST" --param text=x
    if [ "$code" = 0 ] && grep -q -- "--unprotected" "$T/err"; then
        pass "nobody, $where: --unprotected runs"
    else
        fail "nobody, $where: --unprotected runs" "exit $code: $(cat "$T/err")"
    fi
    fr --flow shf --executor process --no-cache --param dir="$PROD" --param text=x
    if [ "$code" = 0 ] && [ "$(wc -l < "$T/err")" = 1 ] && grep -q "not protected" "$T/err"; then
        pass "nobody, $where: a prod run goes on, said once"
    else
        fail "nobody, $where: a prod run goes on, said once" "exit $code: $(cat "$T/err")"
    fi
    # serve finds out at start, once, for all its runs
    nob "$FLOWRUN" serve "$T/s.plan" --env test --state "$ST" > "$T/out" 2> "$T/err"
    code=$?
    if [ "$code" = 2 ] && [ "$(wc -l < "$T/err")" = 1 ] &&
        grep -q "cannot keep these runs off .*give --unprotected to run them anyway" "$T/err"; then
        pass "nobody, $where: serve --env test is refused at start"
    else
        fail "nobody, $where: serve --env test is refused at start" "exit $code: $(cat "$T/err")"
    fi
}
if setpriv --reuid=nobody --regid="$(id -gn nobody)" --clear-groups -- unshare -U -m true 2> /dev/null; then
    matrix nobody
    # the same flowrun as nobody, chrooted into a bind of "/" (same paths) in a mount
    # namespace of this suite's own
    mkdir "$T/chroot"
    NR="$T/chroot"
    cat > "$T/chrooted.sh" << 'EOF'
# chrooted.sh NEWROOT DIR CMD...: CMD as nobody in DIR, chrooted into NEWROOT, where "/"
# is bound (run in a mount namespace of its own)
nr=$1 dir=$2
shift 2
mount --make-rprivate / && mount --rbind / "$nr" || exit 97
exec chroot "$nr" setpriv --reuid=nobody --regid="$(id -gn nobody)" --clear-groups -- \
    sh -c 'cd "$0" && exec "$@"' "$dir" "$@"
EOF
    nob() { unshare -m sh "$T/chrooted.sh" "$NR" "$T" "$@"; }
    if fr --flow where --executor inline --no-cache && [ "$code" = 0 ]; then
        refusals "in a chroot"
    else
        skip "nobody, refusals" "cannot run flowrun chrooted here: $(head -2 "$T/err")"
    fi
else
    refusals "no user namespace"
fi
# ---- examples/envs, as its README runs it ----
ex="$T/example"
cp -r "$ROOTDIR/examples/envs" "$ex"
(cd "$ex" && "$FLOWC" report.flow && "$FLOWRUN" report.plan --progress none > p.out 2> p.err &&
    "$FLOWRUN" report.plan --env test --progress none > t.out 2> t.err)
if [ "$(cat "$ex/data/prod/published/count.txt" "$ex/data/test/published/count.txt" 2>&1 | tr '\n' ' ')" = "4 4 " ]; then
    pass "examples/envs: prod and test publish into their own roots"
else
    fail "examples/envs: prod and test publish into their own roots" "$(cat "$ex"/*.err 2>&1)"
fi
cp "$ex/data/prod/published/count.txt" "$T/example-prod"
(cd "$ex" && "$FLOWRUN" report.plan --env test --param dest=data/prod/published/count.txt \
    --progress none > b.out 2> b.err); code=$?
if [ "$code" = 1 ] && grep -q "Read-only file system" "$ex/b.err" && cmp -s "$T/example-prod" "$ex/data/prod/published/count.txt"; then
    pass "examples/envs: a test run publishing into prod fails, prod's file unchanged"
else
    fail "examples/envs: a test run publishing into prod fails, prod's file unchanged" "exit $code: $(cat "$ex/b.err")"
fi
chmod 755 "$T"
