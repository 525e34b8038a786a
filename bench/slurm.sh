#!/bin/sh
# slurm — --executor slurm on a real three-node cluster (tests/harness/slurm-cluster.sh:
# 3 nodes x 8 declared slots; docs/distributed.md, "Slurm"), measured on sleeping
# tasks as issue 16 decides (the slots are declared, not real cores):
#   batched: SLURM_N (100,000) instances of a 10 ms sleep (libsched.so's nap) against
#            the ideal SLURM_N x 10 ms / 24 slots (41.7 s), the efficiency in %
#            (target >= 90 %);
#   one per instance: SLURM_ONE_N (2,000; Slurm's default MaxJobCount is 10,000) with
#            FLOWRUN_REMOTE_ONE_PER_INSTANCE=1, every instance an array element of its
#            own, what a workflow tool without arrays does; extrapolated to SLURM_N and
#            given as the ratio to the batched run.
# The cluster is started and stopped here, and runs one job before the timing (a
# controller's first job waits ~3 s after its start). Needs root and the Slurm packages
# (else says why and exits 0).
. "$(dirname "$0")/common.inc"
N=${SLURM_N:-100000}
ONE=${SLURM_ONE_N:-2000}
HARNESS=$ROOT/tests/harness/slurm-cluster.sh
if ! why=$(sh "$HARNESS" check); then echo "slurm: skipped: $why"; exit 0; fi
tmp=$(mktemp -d /tmp/flow-bench-slurm-XXXXXX)
trap 'sh "$HARNESS" stop "$tmp/c" > /dev/null 2>&1; rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM
sh "$HARNESS" start "$tmp/c" > /dev/null 2> "$tmp/start.err" ||
    { echo "slurm: the cluster did not start: $(tail -1 "$tmp/start.err")"; exit 1; }
export SLURM_CONF="$tmp/c/slurm.conf"
slots=$(sinfo -h -o %C | awk -F/ '{print $4}')
# A cluster just started takes ~3 s to start its first job (measured here: a 28-element
# array's first element started 3.0 s after sbatch on a fresh cluster, 0.76 s on the
# next array): one job run to its end first, so the figures are flow's on a running
# cluster, not the controller's warm-up.
warm=$(sbatch --parsable -o /dev/null --wrap true 2> /dev/null | cut -d';' -f1)
n=0
while [ -n "$warm" ] && [ $n -lt 300 ] && squeue -h -j "$warm" 2> /dev/null | grep -q .; do
    sleep 0.1; n=$((n + 1)); done
cat > "$tmp/b.flow" << FLOW
library s = "$LIBSCHED"
task nap(x: int, us: int) -> int = s.nap
task sum(xs: [int]) -> int = s.sum
flow b(n: int) -> int {
    return sum(nap.partial(us = 10000).expand(x = range(n)))
}
FLOW
"$FLOWC" -o "$tmp/b.plan" "$tmp/b.flow" || exit 1
status=0
secs=0
case_() { # n env... : runs, checks the sum, leaves the wall seconds in $secs
    n=$1; shift
    rm -rf "$tmp/st"
    t0=$(date +%s%N)
    out=$(env "$@" FLOW_DEBUG=1 "$FLOWRUN" "$tmp/b.plan" --executor slurm --param n="$n" \
        --progress none --state "$tmp/st" --no-cache 2> "$tmp/err")
    t1=$(date +%s%N)
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
    if [ "$out" != $((n * (n - 1) / 2)) ]; then
        # kept for the post-mortem: flowrun's stderr, the state folder (its remote
        # batches, results and worker logs) and the cluster's daemon logs
        keep=$(mktemp -d /tmp/flow-bench-slurm-failed-XXXXXX)
        cp "$tmp/err" "$keep/flowrun.err"
        cp -r "$tmp/st" "$keep/state" 2> /dev/null
        rm -rf "$keep/state/store"
        cp -r "$tmp/c" "$keep/cluster" 2> /dev/null
        echo "slurm: wrong result for $n: $out: $(head -c 300 "$tmp/err") (kept in $keep)"
        status=1
    fi
    calls=$(grep -o 'slurm: [0-9]* sbatch, [0-9]* squeue' "$tmp/err" | sed 's/^slurm: //')
}
echo "slurm: $slots slots; load $(cut -d' ' -f1-3 /proc/loadavg)"
case_ "$N" X=1
batched=$secs
awk -v s="$secs" -v n="$N" -v k="$slots" -v c="$calls" 'BEGIN {
    ideal = n * 0.01 / k
    printf "slurm batched           %6d instances  %7.2f s  ideal %.1f s  efficiency %.1f %%  (%s)\n",
        n, s, ideal, 100 * ideal / s, c }'
case_ "$ONE" FLOWRUN_REMOTE_ONE_PER_INSTANCE=1
awk -v s="$secs" -v n="$ONE" -v N="$N" -v b="$batched" -v c="$calls" 'BEGIN {
    e = s * N / n
    printf "slurm one per instance  %6d instances  %7.2f s  (%s); for %d: %.0f s extrapolated, %.1f x the batched run\n",
        n, s, c, N, e, e / b }'
echo "slurm: load after $(cut -d' ' -f1-3 /proc/loadavg)"
exit $status
