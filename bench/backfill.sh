#!/bin/sh
# backfill.sh — `flowrun backfill` of 365 daily intervals of a small flow (one C task,
# inline executor), --runs 4, against the same 365 runs started by hand: `flowrun run
# --param day=D`, 4 at a time (xargs -P 4), in the same state directory layout. The
# hand-started runs are the flow's own work (each one a flowrun start-up, a plan read,
# a state.db run record and the task); what backfill adds beyond them per interval —
# enumerating the intervals, reading what already succeeded, claiming each interval in
# state.db (a transaction), starting the child — is the overhead judged against the
# target of issue 14: <= 5 ms per interval. Wall time and CPU time (user+sys of every
# process, the children included: less sensitive to the machine's load) are medians of
# ROUNDS interleaved rounds (default 3). Also: a second backfill over the same range,
# which finds everything done and runs nothing.
. "$(dirname "$0")/common.inc"
ROUNDS=${ROUNDS:-3}
N=365
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/one.c" <<'C'
#include <stdint.h>
int64_t inc(int64_t x) { return x + 1; }
C
cc -O2 -shared -fPIC -o "$tmp/libone.so" "$tmp/one.c" || exit 1
cat > "$tmp/daily.flow" <<'F'
library o = "libone.so"
task inc(x: int) -> int = o.inc
flow daily(day: date, n: int = 41) -> int schedule "@daily" {
    return inc(n)
}
F
(cd "$tmp" && "$FLOWC" daily.flow) || exit 1
cd "$tmp" || exit 1
awk -v n=$N 'BEGIN { for (i = 0; i < n; i++) { t = 1735689600 + i * 86400;
    print strftime("%Y-%m-%d", t, 1) } }' > days.txt
[ "$(wc -l < days.txt)" = $N ] || { echo "backfill: no day list (awk strftime)"; exit 1; }
OPTS="--executor inline --no-cache --progress none"

measure() { # OUT CMD... : wall and cpu seconds appended to OUT
    out=$1; shift
    /usr/bin/time -f '%e %U %S' -o "$out.t" "$@" > /dev/null 2>&1
    awk '{ printf "%s %.2f\n", $1, $2 + $3 }' "$out.t" >> "$out"
}
r=0
while [ $r -lt "$ROUNDS" ]; do
    rm -rf sb sp
    measure bf "$FLOWRUN" backfill daily.plan --from 2025-01-01 --to 2025-12-31 --runs 4 --state sb $OPTS
    measure again "$FLOWRUN" backfill daily.plan --from 2025-01-01 --to 2025-12-31 --runs 4 --state sb $OPTS
    measure hand sh -c "xargs -P 4 -I D $FLOWRUN run daily.plan --param day=D --state sp $OPTS < days.txt"
    r=$((r + 1))
done
ok=$("$FLOWRUN" runs --state sb --json | grep -c '"state":"succeeded"')
[ "$ok" = $N ] || echo "backfill: $ok of $N intervals succeeded in the last round"
col() { awk -v c="$2" '{ print $c }' "$1"; }
bw=$(median $(col bf 1)); bc=$(median $(col bf 2))
hw=$(median $(col hand 1)); hc=$(median $(col hand 2))
aw=$(median $(col again 1))
per() { awk -v a="$1" -v b="$2" -v n=$N 'BEGIN { printf "%.2f", (a - b) * 1000 / n }'; }
echo "backfill of $N daily intervals, one C task, --runs 4 ($(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)), median of $ROUNDS rounds:"
printf '  %-44s %8s s wall %8s s cpu\n' "flowrun backfill --runs 4" "$bw" "$bc"
printf '  %-44s %8s s wall %8s s cpu\n' "the same runs by hand (xargs -P 4 flowrun run)" "$hw" "$hc"
printf '  %-44s %8s s wall\n' "backfill again (all done: nothing runs)" "$aw"
printf '  per interval: backfill %s ms wall, by hand %s ms (ratio %s)\n' \
    "$(per "$bw" 0)" "$(per "$hw" 0)" "$(ratio "$bw" "$hw")"
ow=$(per "$bw" "$hw"); oc=$(per "$bc" "$hc")
verdict=$(awk -v w="$ow" -v c="$oc" 'BEGIN { print (w <= 5 && c <= 5) ? "met" : "NOT met" }')
echo "  overhead per interval beyond the flow's own work: $ow ms wall, $oc ms cpu (target <= 5 ms: $verdict)"
