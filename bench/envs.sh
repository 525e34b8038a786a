#!/bin/sh
# envs — what keeping a run off the other environments' roots costs (isolate.c,
# docs/environments.md): W1 with 100,000 instances run in `--env test` of a
# flow.yaml with prod and test roots (a mount namespace, or a user namespace when
# not root, entered once per run) against the same run in prod with no flow.yaml
# (no namespace at all). Runs of the two alternate, each on a fresh --state with
# --no-cache; prints both medians of $RUNS runs per executor and their ratio
# (target <= 1.05: set up once per run, nothing per instance), of the wall clock and
# of the CPU time (user + system, flowrun and its workers: steadier on a busy machine).
. "$(dirname "$0")/common.inc"
[ -x "$FLOWRUN" ] && [ -f "$LIBSCHED" ] || { echo "envs: build first (make all testlibs)"; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/conf" "$tmp/noconf" "$tmp/roots/prod" "$tmp/roots/test"
cat > "$tmp/conf/flow.yaml" << EOF
envs:
  prod:
    root: $tmp/roots/prod
  test:
    root: $tmp/roots/test
EOF
w1_flow "$LIBSCHED" > "$tmp/w1.flow"
"$FLOWC" -o "$tmp/w1.plan" "$tmp/w1.flow" || exit 1
N=${ENVS_N:-100000}
status=0
# cpu OUT CMD...: CMD's user + system seconds (its children's included) appended to OUT
cpu() {
    out=$1; shift
    /usr/bin/time -f '%U %S' -o "$out.t" "$@" > /dev/null 2> /dev/null
    awk '{ printf "%.3f\n", $1 + $2 }' "$out.t" >> "$out"
}
# w1 MEASURE OUT: one W1 run on a fresh state, measured by MEASURE (timed or cpu) into
# $tmp/OUT; OUT iso* runs in --env test of flow.yaml, plain* in prod without one
w1() {
    rm -rf "$tmp/state"
    case $2 in iso*) dir=conf env=test ;; *) dir=noconf env=prod ;; esac
    (cd "$tmp/$dir" && $1 "$tmp/$2" "$FLOWRUN" "$tmp/w1.plan" --executor "$ex" -j 2 \
        --progress none --max-map "$N" --param n="$N" --state "$tmp/state" --no-cache --env $env)
}
envs_case() { # executor
    ex=$1
    rm -f "$tmp/iso" "$tmp/plain" "$tmp/iso.err" "$tmp/plain.err" "$tmp/isoc" "$tmp/plainc"
    i=0; while [ $i -lt "$RUNS" ]; do
        w1 timed plain; w1 timed iso; w1 cpu plainc; w1 cpu isoc
        i=$((i + 1))
    done
    if [ -s "$tmp/iso.err" ] || [ -s "$tmp/plain.err" ]; then
        echo "envs $ex: a run said: $(cat "$tmp/iso.err" "$tmp/plain.err" | head -2)"
        status=1
    fi
    a=$(median $(awk '{print $1}' "$tmp/iso"))
    b=$(median $(awk '{print $1}' "$tmp/plain"))
    r=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }')
    ok=ok; awk -v r="$r" 'BEGIN { exit !(r > 0 && r <= 1.05) }' || { ok=MISSED; status=1; }
    ac=$(median $(cat "$tmp/isoc"))
    bc=$(median $(cat "$tmp/plainc"))
    rc=$(awk -v a="$ac" -v b="$bc" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }')
    printf 'envs %-7s N=%-7s wall: --env test (isolated) %6.3f s, prod without flow.yaml %6.3f s: ratio %s (target <= 1.05: %s)\n' \
        "$ex" "$N" "$a" "$b" "$r" "$ok"
    printf 'envs %-7s N=%-7s cpu:  --env test (isolated) %6.3f s, prod without flow.yaml %6.3f s: ratio %s\n' \
        "$ex" "$N" "$ac" "$bc" "$rc"
}
envs_case process
envs_case inline
exit $status
