#!/bin/sh
# w3.sh — W3, the re-runs users make most often: count the lines of each of 2,000 small
# files (20 folders) and sum them, with flow, GNU make -r and ninja (when installed), all
# at -j 2. Three phases, each tool once per round in turn (interleaved: drift of the
# shared machine's speed touches every tool alike), medians:
#   first       a fresh state / no outputs (FIRST_ROUNDS rounds, default ROUNDS)
#   no-op       nothing changed since the last run (after one warm-up round)
#   one changed a line appended to one input before each round: each tool sees it once
# Wall time is measured around each bare process by bench/cputime.c (CLOCK_MONOTONIC
# from its fork to its wait4: no shell and no `date` process inside the interval, whose
# start-up, ≈ 3 ms here, would be added to every tool's figure and pull the ratios
# towards 1). Then, outside the rounds, each tool's no-op once
# more under `perf stat -r ROUNDS -e task-clock` (CPU ms, when perf is installed) and
# /usr/bin/time (peak RSS). Printed: medians, flow's ratio to make -r (the targets of
# issue 13: no-op <= 0.8x, one changed <= 0.7x) and to ninja, and the load average.
#   env: W3_N (2000), W3_DIRS (20), ROUNDS (7), FIRST_ROUNDS, FLOWRUN_BEFORE=/path/to/an
#   older flowrun or BEFORE=an older build dir (its rows measured in the same rounds,
#   for a before/after)
# The tree is made once and kept in $BUILD/bench/. Exit 1 when a result is wrong; a
# missed target is printed, not an error (wall times on a shared machine vary).
. "$(dirname "$0")/common.inc"
FLOWRUN_BEFORE=${FLOWRUN_BEFORE:-${BEFORE:+$BEFORE/bin/flowrun}} # BEFORE=DIR: a build dir, as bench/slow.sh
N=${W3_N:-2000}
ND=${W3_DIRS:-20}
ROUNDS=${ROUNDS:-7}
FIRST_ROUNDS=${FIRST_ROUNDS:-$ROUNDS}
[ -x "$FLOWRUN" ] && [ -f "$ROOT/tests/lib/libstatetasks.so" ] || { echo "w3: build first (make all testlibs)"; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
${CC:-cc} -O2 -o "$tmp/cputime" "$ROOT/bench/cputime.c" || exit 1
. "$ROOT/bench/peers/dir_peers.inc" # flow_dir_plan, make_makefile, make_ninjafile
status=0
mkdir -p "$BUILD/bench"
t=$BUILD/bench/w3-tree$N-$ND
make_tree "$t" "$N" "$ND"
f=$t/d05/f000005.txt
want=$(tree_total "$N")
flow_dir_plan || exit 1
make_makefile "$t" "$N" "$ND" "$tmp/mk"
command -v ninja > /dev/null || { apt-get install -y -q ninja-build > /dev/null 2>&1 || true; }
have_ninja=0
command -v ninja > /dev/null && { have_ninja=1; make_ninjafile "$t" "$N" "$ND" "$tmp/nj"; }

# the tools: name|how to run it|how to start afresh ; the result is on stdout (flow) or in a file
fl="$tmp/dir.plan --executor inline -j 2 --progress none --param root=$t --state"
set -- "flow|$FLOWRUN $fl $tmp/fs|rm -rf $tmp/fs"
[ -n "$FLOWRUN_BEFORE" ] && set -- "$@" "flow (before)|$FLOWRUN_BEFORE $fl $tmp/fb|rm -rf $tmp/fb"
set -- "$@" "make -r|make -s -r -j2 -C $tmp/mk|rm -rf $tmp/mk/out $tmp/mk/total"
[ $have_ninja = 1 ] && set -- "$@" "ninja|ninja -j2 -C $tmp/nj|rm -rf $tmp/nj/out $tmp/nj/total $tmp/nj/.ninja_log $tmp/nj/.ninja_deps"
result() { # NAME -> the total it computed
    case $1 in
    flow*) cat "$tmp/out" ;;
    make*) cat "$tmp/mk/total" ;;
    ninja) cat "$tmp/nj/total" ;;
    esac
}
# tw PHASE I ROW WANT — one run of row I; appends its wall seconds to $tmp/PHASE.I
tw() {
    cmd=${3#*|}; cmd=${cmd%%|*}
    "$tmp/cputime" $cmd > "$tmp/out" 2> "$tmp/err"
    rc=$?
    [ $rc = 0 ] && [ "$(result "${3%%|*}")" = "$4" ] ||
        { echo "w3: ${3%%|*} $1: exit $rc, total $(result "${3%%|*}") (want $4): $(head -c 300 "$tmp/err")"; status=1; }
    awk '/^cputime:/ { w = $2 } END { printf "%.4f\n", w }' "$tmp/err" >> "$tmp/$1.$2"
}
run_all() { # PHASE WANT [fresh]
    i=0
    while [ $i -lt $NT ]; do
        i=$((i + 1))
        eval "row=\$ROW$i"
        [ "$3" = fresh ] && eval "${row##*|}"
        tw "$1" $i "$row" "$2"
    done
}
NT=0
for row in "$@"; do NT=$((NT + 1)); eval "ROW$NT=\$row"; done

cp "$f" "$tmp/orig"
trap 'cp "$tmp/orig" "$f"; rm -rf "$tmp"' EXIT
r=0; while [ $r -lt "$FIRST_ROUNDS" ]; do run_all first "$want" fresh; r=$((r + 1)); done
run_all warm "$want" # warm-up: not counted
r=0; while [ $r -lt "$ROUNDS" ]; do run_all noop "$want"; r=$((r + 1)); done
r=0; while [ $r -lt "$ROUNDS" ]; do
    sleep 0.01 # a new mtime, whatever the file system's resolution
    echo "change $r" >> "$f"
    run_all changed "$((want + r + 1))"
    r=$((r + 1))
done
cp "$tmp/orig" "$f"
run_all warm "$want" # every tool back to the original tree
# no-op CPU (perf's task-clock, ms) and peak RSS (KiB) of each tool, outside the rounds
i=0
while [ $i -lt $NT ]; do
    i=$((i + 1))
    eval "row=\$ROW$i"
    cmd=${row#*|}; cmd=${cmd%%|*}
    cpu=-
    if command -v perf > /dev/null &&
        perf stat -r "$ROUNDS" -x, -e task-clock -o "$tmp/perf" $cmd > /dev/null 2>&1; then
        cpu=$(awk -F, '$3 == "task-clock" || $3 ~ /^task-clock/ { print $1; exit }' "$tmp/perf")
    fi
    /usr/bin/time -f '%M' -o "$tmp/rss" $cmd > /dev/null 2>&1
    eval "CPU$i=\$cpu RSS$i=\$(tail -1 \"\$tmp/rss\")"
done

col() { median $(awk -v c="$2" '{print $c}' "$1"); }
echo "w3: $N files in $ND folders, -j 2 (flow inline), medians of $ROUNDS interleaved rounds" \
    "($FIRST_ROUNDS for first runs); load $(cut -d' ' -f1-3 /proc/loadavg)"
for phase in first noop changed; do
    case $phase in first) label="first run" ;; noop) label="no-op re-run" ;; changed) label="one file changed" ;; esac
    i=0
    while [ $i -lt $NT ]; do
        i=$((i + 1))
        eval "row=\$ROW$i"
        w=$(col "$tmp/$phase.$i" 1)
        eval "W_${phase}_$i=$w"
        extra=""
        [ $phase = noop ] && eval "extra=\"  (\$CPU$i ms CPU, \$((RSS$i / 1024)) MiB peak RSS)\""
        printf '  %-18s %-14s %8.1f ms wall%s\n' "$label" "${row%%|*}" \
            "$(awk -v s="$w" 'BEGIN { print s * 1000 }')" "$extra"
    done
done
# ratios: flow (row 1) against make -r and ninja; targets against make -r
mk=2; [ -n "$FLOWRUN_BEFORE" ] && mk=3
nj=$((mk + 1))
verdict() { awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { r = a / b; printf "%.2fx", r; if (t != "") printf (r <= t ? " (target <= %.1fx: met)" : " (target <= %.1fx: MISSED)"), t }'; }
for phase in first noop changed; do
    case $phase in first) label="first run" tg="" ;; noop) label="no-op re-run" tg=0.8 ;; changed) label="one file changed" tg=0.7 ;; esac
    eval "fw=\$W_${phase}_1 mw=\$W_${phase}_$mk"
    line="  $label: flow / make -r $(verdict "$fw" "$mw" "$tg")"
    if [ $have_ninja = 1 ]; then eval "nw=\$W_${phase}_$nj"; line="$line, flow / ninja $(verdict "$fw" "$nw" "")"; fi
    if [ -n "$FLOWRUN_BEFORE" ]; then eval "bw=\$W_${phase}_2"; line="$line, flow / flow (before) $(verdict "$fw" "$bw" "")"; fi
    echo "$line"
done
[ $have_ninja = 1 ] || echo "  ninja: not installed, left out"
exit $status
