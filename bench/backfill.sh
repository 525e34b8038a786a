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
# which finds everything done and runs nothing. Then, unless CALLGRIND=0, the same
# comparison in instructions (valgrind --tool=callgrind, every flowrun process counted,
# load-independent): CG_N (default 20) intervals one at a time, backfill --runs 1
# against `flowrun run` by hand one after the other.
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
    t0=$(date +%s%N)
    "$FLOWRUN" backfill daily.plan --from 2025-01-01 --to 2025-12-31 --runs 4 --state sb $OPTS 2> /dev/null
    t1=$(date +%s%N)
    echo "$(((t1 - t0) / 1000))" >> again
    measure hand sh -c "xargs -P 4 -I D $FLOWRUN run daily.plan --param day=D --state sp $OPTS < days.txt"
    r=$((r + 1))
done
ok=$("$FLOWRUN" runs --state sb --json | grep -c '"state":"succeeded"')
[ "$ok" = $N ] || echo "backfill: $ok of $N intervals succeeded in the last round"
col() { awk -v c="$2" '{ print $c }' "$1"; }
bw=$(median $(col bf 1)); bc=$(median $(col bf 2))
hw=$(median $(col hand 1)); hc=$(median $(col hand 2))
aw=$(median $(cat again))
per() { awk -v a="$1" -v b="$2" -v n=$N 'BEGIN { printf "%.2f", (a - b) * 1000 / n }'; }
echo "backfill of $N daily intervals, one C task, --runs 4 ($(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)), median of $ROUNDS rounds:"
printf '  %-44s %8s s wall %8s s cpu\n' "flowrun backfill --runs 4" "$bw" "$bc"
printf '  %-44s %8s s wall %8s s cpu\n' "the same runs by hand (xargs -P 4 flowrun run)" "$hw" "$hc"
printf '  %-44s %8s ms wall\n' "backfill again (all done: nothing runs)" "$(awk -v u="$aw" 'BEGIN { printf "%.1f", u / 1000 }')"
printf '  per interval: backfill %s ms wall, by hand %s ms (ratio %s)\n' \
    "$(per "$bw" 0)" "$(per "$hw" 0)" "$(ratio "$bw" "$hw")"
ow=$(per "$bw" "$hw"); oc=$(per "$bc" "$hc")
verdict=$(awk -v w="$ow" -v c="$oc" 'BEGIN { print (w <= 5 && c <= 5) ? "met" : "NOT met" }')
echo "  overhead per interval beyond the flow's own work: $ow ms wall, $oc ms cpu (target <= 5 ms: $verdict)"

[ "${CALLGRIND:-1}" = 0 ] && exit 0
command -v valgrind > /dev/null || { echo "  (no valgrind: instruction counts skipped)"; exit 0; }
CG_N=${CG_N:-20}
head -n "$CG_N" days.txt > cgdays.txt
last=$(tail -1 cgdays.txt)
rm -rf sb sp cgb cgh && mkdir cgb cgh
valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="$tmp/cgb/%p" \
    "$FLOWRUN" backfill daily.plan --from 2025-01-01 --to "$last" --runs 1 --state sb $OPTS > /dev/null 2>&1
valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="$tmp/cgh/%p" \
    sh -c "xargs -I D $FLOWRUN run daily.plan --param day=D --state sp $OPTS < cgdays.txt" > /dev/null 2>&1
insns() { # DIR: the instructions of its flowrun processes
    for f in "$1"/*; do grep -q '^cmd: .*flowrun' "$f" && sed -n 's/^totals: //p' "$f"; done |
        awk '{ s += $1 } END { print s + 0 }'
}
ib=$(insns cgb); ih=$(insns cgh)
echo "instructions (callgrind), $CG_N intervals one at a time:"
printf '  %-44s %14s (%s per interval)\n' "flowrun backfill --runs 1" "$ib" "$(awk -v a="$ib" -v n="$CG_N" 'BEGIN { printf "%.0f", a / n }')"
printf '  %-44s %14s (%s per interval)\n' "flowrun run by hand, one after the other" "$ih" "$(awk -v a="$ih" -v n="$CG_N" 'BEGIN { printf "%.0f", a / n }')"
echo "  overhead per interval: $(awk -v a="$ib" -v b="$ih" -v n="$CG_N" 'BEGIN { printf "%.0f", (a - b) / n }') instructions (ratio $(ratio "$ib" "$ih"); the backfill's own start-up spread over $CG_N intervals included)"
