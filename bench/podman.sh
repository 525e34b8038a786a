#!/bin/sh
# podman — per-instance overhead of C tasks with image: (docs/distributed.md,
# "Containers"): N instances of a trivial C task (x * x) in the runtime image of
# `make image`, run through flowrun worker in containers (the podman engine),
#   batched: the driver packs instances into elements, one container per element;
#   one per instance: FLOWRUN_REMOTE_ONE_PER_INSTANCE=1, a container per instance
# against the same N on the host (no image:). Prints wall time and ms per instance.
# Needs root and podman that can run containers (else says why and exits 0).
. "$(dirname "$0")/common.inc"
N=${PODMAN_N:-100}
[ "$(id -u)" = 0 ] || { echo "podman: skipped: not root"; exit 0; }
command -v podman > /dev/null || { echo "podman: skipped: podman is not installed"; exit 0; }
tmp=$(mktemp -d /tmp/flow-bench-podman-XXXXXX); trap 'rm -rf "$tmp"' EXIT
HN=$(awk '/^Max open files/ {print $5}' /proc/self/limits); [ "$HN" -gt 4096 ] && HN=4096
HU=$(awk '/^Max processes/ {print $4}' /proc/self/limits); [ "$HU" -gt 4096 ] && HU=4096
printf '[containers]\ndefault_ulimits = ["nofile=%s:%s", "nproc=%s:%s"]\n[engine]\nruntime = "runc"\n' \
    "$HN" "$HN" "$HU" "$HU" > "$tmp/containers.conf"
export CONTAINERS_CONF=${CONTAINERS_CONF:-$tmp/containers.conf}
IMG=$(cd "$ROOT" && make -s BUILD="$BUILD" image 2> "$tmp/image.err" | sed -n 's/^image: \([^ ]*\) .*/\1/p')
[ -n "$IMG" ] || { echo "podman: skipped: make image failed: $(tail -1 "$tmp/image.err")"; exit 0; }
cp "$ROOT/tests/lib/libpodman.so" "$tmp/"
cat > "$tmp/b.flow" <<FLOW
library pm = "libpodman.so"
task boxed(x: int) -> int = pm.pm_square_uid with {image: "$IMG"}
task plain(x: int) -> int = pm.pm_square_uid
flow inbox(n: int) -> [int] { return range(n).map(boxed) }
flow host(n: int) -> [int] { return range(n).map(plain) }
FLOW
"$FLOWC" -o "$tmp/b.plan" "$tmp/b.flow" || exit 1
status=0
case_() { # name flow env...
    name=$1 flow=$2; shift 2
    rm -rf "$tmp/st"
    t0=$(date +%s%N)
    out=$(cd "$tmp" && env "$@" "$FLOWRUN" b.plan --flow "$flow" --param n="$N" -j 2 --progress none \
        --state "$tmp/st" --no-cache 2> "$tmp/err")
    t1=$(date +%s%N)
    want=$(awk -v n="$N" 'BEGIN { printf "["; for (i = 0; i < n; i++) printf "%s%d", i ? "," : "", i * i; print "]" }')
    [ "$out" = "$want" ] || { echo "podman $name: wrong result: $(head -c 200 "$tmp/err")"; status=1; }
    awk -v a="$t0" -v b="$t1" -v n="$N" -v name="$name" 'BEGIN {
        s = (b - a) / 1e9; printf "podman %-18s %4d instances  %7.2f s  %7.1f ms/instance\n", name, n, s, s * 1e3 / n }'
}
case_ host host X=1
case_ batched inbox X=1
case_ "one per instance" inbox FLOWRUN_REMOTE_ONE_PER_INSTANCE=1
exit $status
