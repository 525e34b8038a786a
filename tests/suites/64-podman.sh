#!/bin/sh
# image: tasks under podman (docs/distributed.md, "Containers: image: under podman";
# runtime/core/podman.c, exec_split.c). The suite builds its images itself: the
# runtime image of `make image` (flowrun, its libraries, busybox as /bin/sh) and a
# small busybox image it can rebuild for the cache checks. Checked, under
# --executor process: an image: sh task sees its inputs and not the file beside
# them; has no network (only lo) unless network: true; does not see the store and
# cannot write it; runs as its run_as uid; writes its {out} for a host task to read;
# its memory: limit is enforced (an over-limit command fails, the same under the
# limit runs); its timeout kills the container (none is left); its secrets are
# files; the same image hits the cache, a rebuilt one runs again. Refused: cpus: and
# network: without image: (flowc), image: under inline, an image podman does not
# have, and podman missing from PATH (exit 2, one line). As root only (podman as
# root with runc); SKIP with why where podman cannot run a container here.
# Suites that drive services (podman) run once: not again under the sanitized build.
[ "$SANITIZED" = 1 ] && exit 0
BUILD=${BUILD:-build}
FLOWC=$(pwd)/$BUILD/bin/flowc
FLOWRUN=$(pwd)/$BUILD/bin/flowrun
T=$(mktemp -d /tmp/flow-podman-XXXXXX)
chmod 755 "$T"
TAG=localhost/flow-test-64:$$
cleanup() {
    [ -n "$FIRST_ID" ] && podman rmi -f "$FIRST_ID" > /dev/null 2>&1
    podman rmi -f "$TAG" > /dev/null 2>&1
    [ -n "$KEEP" ] || rm -rf "$T"
}
trap cleanup EXIT INT TERM

pass() { echo "PASS podman: $1"; }
fail() { echo "FAIL podman: $1: $2"; }
skip() { echo "SKIP podman: $1: $2"; }

. tests/harness/nobody.sh

# the compile-time refusals need no podman
cat > "$T/bad.flow" <<'EOF'
task a(x: int) -> int = sh "echo {x}" with {cpus: 2}
task b(x: int) -> int = sh "echo {x}" with {network: true}
flow f() -> [int] {
    return [a(1), b(1)]
}
EOF
if "$FLOWC" "$T/bad.flow" -o "$T/bad.plan" 2> "$T/bad.err"; then
    fail "cpus:/network: without image:" "flowc accepted them"
elif grep -q "cpus: applies to containers (image:)" "$T/bad.err" &&
    grep -q "network: applies to containers (image:)" "$T/bad.err"; then
    pass "cpus:/network: without image: are compile errors"
else
    fail "cpus:/network: without image:" "$(head -3 "$T/bad.err")"
fi

# can podman run a container here?
[ "$(id -u)" = 0 ] || { skip all "not root (these tests run podman as root with runc)"; exit 0; }
command -v podman > /dev/null || { skip all "podman is not installed (.ci/deps.sh podman)"; exit 0; }
[ -x /bin/busybox ] && ! ldd /bin/busybox > /dev/null 2>&1 ||
    { skip all "no static busybox (.ci/deps.sh busybox-static)"; exit 0; }
# the hard limits (containers get soft = hard = these: runc cannot raise them)
HN=$(awk '/^Max open files/ {print $5}' /proc/self/limits)
HU=$(awk '/^Max processes/ {print $4}' /proc/self/limits)
[ "$HN" = unlimited ] && HN=65536
[ "$HU" = unlimited ] && HU=65536
[ "$HN" -gt 4096 ] && HN=4096
[ "$HU" -gt 4096 ] && HU=4096
cat > "$T/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$HN:$HN", "nproc=$HU:$HU"]
[engine]
runtime = "runc"
EOF
export CONTAINERS_CONF="$T/containers.conf"
mkdir -p "$T/ctx/bin"
cp /bin/busybox "$T/ctx/bin/busybox"
for a in sh ls cat id echo sleep head tr wc; do ln -s busybox "$T/ctx/bin/$a"; done
printf 'FROM scratch\nCOPY . /\nLABEL flow-test=1\n' > "$T/ctx/Containerfile"
build_test_image() { # a new image id each time (the label differs)
    sed -i "s/^LABEL .*/LABEL flow-test=$1/" "$T/ctx/Containerfile"
    podman build -q -t "$TAG" -f "$T/ctx/Containerfile" "$T/ctx" > "$T/build.out" 2>&1
}
if ! build_test_image 1; then
    skip all "podman cannot build an image here: $(tail -1 "$T/build.out")"
    exit 0
fi
FIRST_ID=$(podman image inspect --format '{{.Id}}' "$TAG")
if ! podman run --rm --network=none "$TAG" /bin/sh -c 'echo ok' > "$T/probe.out" 2>&1; then
    skip all "podman cannot run a container here: $(tail -1 "$T/probe.out")"
    exit 0
fi
t0=$(date +%s.%N)
if ! make -s BUILD="$BUILD" image > "$T/image.out" 2>&1; then
    fail "make image" "$(tail -3 "$T/image.out")"
    exit 0
fi
t1=$(date +%s.%N)
IMG=$(sed -n 's/^image: \([^ ]*\) .*/\1/p' "$T/image.out")
id1=$(podman image inspect --format '{{.Id}}' "$IMG")
make -s BUILD="$BUILD" image > "$T/image2.out" 2>&1
id2=$(podman image inspect --format '{{.Id}}' "$IMG")
t2=$(date +%s.%N)
[ -n "$id1" ] && [ "$id1" = "$id2" ] && pass "make image builds $IMG, idempotent (same id twice; $(echo "$t1 - $t0" | bc) s, then $(echo "$t2 - $t1" | bc) s)" ||
    fail "make image" "ids '$id1' and '$id2'"
out=$(podman run --rm --network=none "$IMG" flowrun --version 2>&1)
case $out in *flowrun*) pass "flowrun runs in the runtime image ($out)" ;;
*) fail "flowrun in the runtime image" "$out" ;; esac

# the project
D=$T/p
mkdir -p "$D/data"
echo hello > "$D/data/in.txt"
echo private > "$D/data/other.txt"
chmod -R a+rX "$D"
printf 'tok-%s-Qz7' "$$" > "$D/key.txt"
chmod 600 "$D/key.txt"
printf 'secrets:\n  tok:\n    file: key.txt\n' > "$D/flow.yaml"
ST=$D/.flow
cat > "$D/c.flow" <<EOF
task see(f: path) -> str = sh "cat {f}; ls \$(dirname {f})" with {image: "$IMG"}
task nonet(x: int) -> str = sh "ls /sys/class/net | tr '\\\\n' ' '" with {image: "$IMG"}
task net(x: int) -> str = sh "ls /sys/class/net | tr '\\\\n' ' '" with {image: "$IMG", network: true}
task store(s: str) -> str = sh "ls {s} 2>&1 | head -1; echo x > {s}/planted 2>/dev/null && echo wrote || echo nowrite" with {image: "$IMG"}
task who(x: int) -> str = sh "id -u" with {image: "$IMG", run_as: "nobody"}
task mk(f: path) -> path = sh "cat {f} > {out}; echo made >> {out}" with {image: "$IMG", run_as: "nobody"}
task host(f: path) -> str = sh "cat {f}"
task hog(n: int) -> int = sh "x=\$(head -c {n} /dev/zero | tr -c a a); echo \"\$x\" | wc -c" with {image: "$IMG", memory: 32MiB}
task slow(x: int) -> int = sh "sleep 30; echo {x}" with {image: "$IMG", timeout: 2s}
task long(x: int) -> int = sh "sleep 61; echo {x}" with {image: "$IMG"}
task secret(x: int) -> str = sh "cat \$FLOW_SECRET_TOK" with {image: "$IMG", secrets: ["tok"]}
task cached(x: int) -> str = sh "echo {x}" with {image: "$TAG"}
task cfix(x: int) -> int = sh "echo {x}" with {image: "localhost/flow-test-64-none:0"}
flow main(f: path, s: str) -> [str] {
    let m = mk(f)
    return [see(f), nonet(1), net(1), store(s), who(1), host(m)]
}
flow hogs(n: int) -> int {
    return hog(n)
}
flow slows() -> int {
    return slow(7)
}
flow longs() -> int {
    return long(7)
}
flow secrets() -> str {
    return secret(1)
}
flow caching() -> str {
    return cached(5)
}
flow missing() -> int {
    return cfix(1)
}
EOF
if ! "$FLOWC" "$D/c.flow" -o "$D/c.plan" 2> "$T/flowc.err"; then
    fail setup "flowc: $(head -5 "$T/flowc.err")"
    exit 0
fi
TOP=$(pwd)
cd "$D" || exit 0
run() { "$FLOWRUN" c.plan --progress none --state "$ST" --config "$D/flow.yaml" -j 2 "$@"; }

mkdir -p "$ST"
run --flow main --param f=data/in.txt --param s="$ST/store" > "$T/main.out" 2> "$T/main.err"
code=$?
if [ "$code" != 0 ]; then
    fail "main flow" "exit $code: $(head -5 "$T/main.err")"
else
    python3 - "$T/main.out" "$ST" > "$T/main.check" <<'EOF'
import json, sys
see, nonet, net, store, who, host = json.load(open(sys.argv[1]))
def say(ok, name, why):
    print(("PASS podman: " if ok else "FAIL podman: ") + name + ("" if ok else ": " + why))
say(see.split("\n") == ["hello", "in.txt"], "an image: task sees its input, not the file beside it", repr(see))
say(nonet.split() == ["lo"], "network: false (default) has only lo", repr(nonet))
say(len(net.split()) > 1 and "lo" in net.split(), "network: true has more than lo", repr(net))
say("nowrite" in store and "wrote" not in store, "the store is not seen nor written", repr(store))
say(who == "65534", "run_as nobody: the container runs as its uid", repr(who))
say(host == "hello\nmade", "an image: task writes {out} (as run_as) for a host task", repr(host))
EOF
    cat "$T/main.check"
    [ -e "$ST/store/planted" ] && fail "store untouched" "planted exists in the store"
fi

# the same through flowrun worker (the remote driver's local engine, as on a Slurm
# node): the worker runs the image: sh tasks under podman too, with the same answers
if [ -s "$T/main.out" ]; then
    FLOWRUN_REMOTE_ENGINE=local run --no-cache --flow main --param f=data/in.txt \
        --param s="$ST/store" > "$T/wmain.out" 2> "$T/wmain.err"
    code=$?
    if [ "$code" = 0 ] && cmp -s "$T/main.out" "$T/wmain.out"; then
        pass "through flowrun worker, image: sh tasks run in their containers (same answers)"
    else
        fail "image: sh tasks through flowrun worker" "exit $code: $(head -c 300 "$T/wmain.out") $(head -3 "$T/wmain.err")"
    fi
fi

# memory: an over-limit command fails, one under the limit runs
run --flow hogs --param n=100000000 > "$T/hog.out" 2> "$T/hog.err"
code=$?
grep -q "hog" "$T/hog.err" && [ "$code" = 1 ] &&
    pass "memory: 32MiB: a command using 100 MB fails ($(grep -o 'command [a-z ]*[0-9]*' "$T/hog.err" | head -1))" ||
    fail "memory limit" "exit $code: $(head -3 "$T/hog.err")"
got=$(run --flow hogs --param n=1000000 2> "$T/hog2.err")
[ "$got" = 1000001 ] && pass "memory: 32MiB: a command using 1 MB runs" ||
    fail "memory limit, under" "got '$got': $(head -3 "$T/hog2.err")"

# timeout: the container goes with the command
t0=$(date +%s)
run --flow slows > /dev/null 2> "$T/slow.err"
code=$?
t1=$(date +%s)
left=$(podman ps -a --no-trunc --filter label=flow-sh --format '{{.Names}} {{.Command}}' | grep -c 'sleep 30')
if [ "$code" = 1 ] && grep -q "timed out" "$T/slow.err" && [ $((t1 - t0)) -lt 15 ] && [ "$left" = 0 ]; then
    pass "timeout: 2s ends the run's container ($((t1 - t0)) s, none left)"
else
    fail "timeout" "exit $code in $((t1 - t0)) s, $left containers left: $(head -3 "$T/slow.err")"
fi

# SIGTERM (as Ctrl-C): the run ends (exit 3) and its container goes with it
"$FLOWRUN" c.plan --progress none --state "$ST" --config "$D/flow.yaml" --flow longs \
    > /dev/null 2> "$T/int.err" &
fpid=$!
i=0
while [ $i -lt 100 ] && ! podman ps --no-trunc --format '{{.Command}}' | grep -q 'sleep 61'; do
    sleep 0.1; i=$((i + 1))
done
kill -TERM $fpid
wait $fpid
code=$?
left=$(podman ps -a --no-trunc --format '{{.Command}}' | grep -c 'sleep 61')
[ $i -lt 100 ] && [ "$code" = 3 ] && [ "$left" = 0 ] &&
    pass "SIGTERM ends the run (exit 3) and removes its running container" ||
    fail "SIGTERM" "container seen: $([ $i -lt 100 ] && echo yes || echo no), exit $code, $left left: $(tail -2 "$T/int.err")"

# secrets: a file in the container, named by FLOW_SECRET_TOK
got=$(run --flow secrets 2> "$T/sec.err")
code=$?
if [ "$got" = "\"tok-$$-Qz7\"" ]; then
    pass "secrets: reach the container as files"
elif grep -q "cannot be kept" "$T/sec.err"; then
    skip "secrets" "$(head -1 "$T/sec.err")"
else
    fail "secrets" "exit $code, got '$got': $(head -3 "$T/sec.err")"
fi

# the cache: same image hits, a rebuilt image runs again
run --flow caching > /dev/null 2> "$T/c1.err"
run --progress plain --flow caching > /dev/null 2> "$T/c2.err"
build_test_image 2
run --progress plain --flow caching > /dev/null 2> "$T/c3.err"
if grep -q "1 of 1 instances served from the cache" "$T/c2.err" &&
    ! grep -q "served from the cache" "$T/c3.err"; then
    pass "the image's id is in the cache key: same image cached, rebuilt image runs again"
else
    fail "cache key" "second: $(grep cache "$T/c2.err"); after rebuild: $(grep cache "$T/c3.err")"
fi

# refusals: exit 2, one line
refused() {
    name=$1 want=$2; shift 2
    "$@" > "$T/r.out" 2> "$T/r.err"
    code=$?
    if [ "$code" = 2 ] && [ "$(wc -l < "$T/r.err")" = 1 ] && grep -qF -- "$want" "$T/r.err"; then
        pass "$name"
    else
        fail "$name" "exit $code: $(head -3 "$T/r.err")"
    fi
}
refused "image: under --executor inline is refused" "the inline executor runs tasks inside flowrun" \
    run --flow caching --executor inline
refused "an image podman does not have is refused" "is not in podman's local storage" \
    run --flow missing
mkdir -p "$T/nopodman"
refused "podman missing from PATH is refused" "podman is not on PATH" \
    env PATH="$T/nopodman" "$FLOWRUN" c.plan --progress none --state "$ST" --flow caching

# C tasks in the runtime image: through flowrun worker, one container per element
LIBPM=$TOP/tests/lib/libpodman.so
if [ -f "$LIBPM" ]; then
    cp "$LIBPM" "$D/"
    cat > "$D/k.flow" <<EOF
library pm = "libpodman.so"
task inside(p: str) -> int = pm.pm_sees with {image: "$IMG"}
task outside(p: str) -> int = pm.pm_sees
task sq(x: int) -> int = pm.pm_square_uid with {image: "$IMG"}
task sqn(x: int) -> int = pm.pm_square_uid with {image: "$IMG", run_as: "nobody"}
task other(x: int) -> int = pm.pm_square_uid with {image: "$TAG"}
flow where() -> [int] {
    return [inside("/etc/os-release"), outside("/etc/os-release")]
}
flow squares(n: int) -> [int] {
    return range(n).map(sq)
}
flow nob(x: int) -> int {
    return sqn(x)
}
flow two(x: int) -> [int] {
    return [sq(x), other(x)]
}
EOF
    "$FLOWC" "$D/k.flow" -o "$D/k.plan" 2> "$T/k.err" || fail "C tasks" "flowc: $(head -3 "$T/k.err")"
    cd "$D" || exit 0
    krun() { "$FLOWRUN" k.plan --state "$ST.k" -j 2 "$@"; }
    got=$(krun --progress none --flow where 2> "$T/kw.err")
    [ "$got" = "[0,1]" ] && pass "a C task with image: runs in the container (no /etc/os-release there), its host neighbour on the host" ||
        fail "C task in the image" "got '$got': $(head -3 "$T/kw.err")"
    got=$(krun --progress none --flow squares --param n=40 2> "$T/ks.err")
    want=$(awk 'BEGIN { printf "["; for (i = 0; i < 40; i++) printf "%s%d", i ? "," : "", i * i; print "]" }')
    last=$(ls -d "$ST.k"/remote/* | sort -n | tail -1)
    nc=$(ls "$last/log" | grep -c '^[0-9]*\.[0-9]*$')
    [ "$got" = "$want" ] && [ "$nc" -ge 1 ] && [ "$nc" -lt 40 ] &&
        pass "40 C instances in the image, batched into $nc containers" ||
        fail "C tasks batched" "got '$(echo "$got" | head -c 80)', $nc containers: $(head -3 "$T/ks.err")"
    krun --progress plain --flow squares --param n=40 > /dev/null 2> "$T/kc.err"
    grep -q "40 of 40 instances served from the cache" "$T/kc.err" &&
        pass "the same C instances in the same image hit the cache" || fail "C cache" "$(tail -2 "$T/kc.err")"
    got=$(krun --progress none --flow nob --param x=3 2> "$T/kn.err")
    [ "$got" = 65534000009 ] && pass "a C task with run_as nobody runs as its uid in the container" ||
        fail "C run_as" "got '$got': $(head -3 "$T/kn.err")"
    krun --progress none --flow two --param x=1 > /dev/null 2> "$T/k2.err"
    code=$?
    [ "$code" = 2 ] && grep -q "share one container setup" "$T/k2.err" &&
        pass "C tasks of one run in two images are refused" || fail "two images" "exit $code: $(head -2 "$T/k2.err")"
    left=$(podman ps -a --filter label=flow-run --format '{{.Labels}}' | grep -c "flow-dir:$ST.k")
    [ "$left" = 0 ] && pass "no worker container is left after the runs" || fail "containers left" "$left"
    cd "$TOP" || exit 0
else
    fail "C tasks" "tests/lib/libpodman.so is not built (make testlibs)"
fi

# the podman engine of the remote executor, on the runtime image
cd "$TOP" || exit 0
if [ -x "$BUILD/tests/test_remote_podman" ]; then
    FLOW_TEST_IMAGE=$IMG CMOCKA_MESSAGE_OUTPUT=TAP "$BUILD/tests/test_remote_podman" > "$T/eng.tap" 2>&1
    sed -n 's/^ok [0-9]* - \(.*\)$/PASS podman: engine: \1/p; s/^not ok [0-9]* - \(.*\)$/FAIL podman: engine: \1/p; s/^not ok [0-9]* # SKIP \(.*\)$/FAIL podman: engine: \1 skipped with an image given/p' "$T/eng.tap"
    grep -q '^ok' "$T/eng.tap" || fail engine "$(tail -3 "$T/eng.tap")"
else
    fail engine "$BUILD/tests/test_remote_podman is not built (make unit)"
fi

exit 0
