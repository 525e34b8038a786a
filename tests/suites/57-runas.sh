#!/bin/sh
# run_as under both executors (issue 15, Deliver 4): as root, a task with
# run_as: "nobody" runs as uid 65534 — a C task (getuid()) and an sh task (id -u)
# — under --executor process (its workers switch per job) and under --executor
# inline (exactly those jobs go to a small process pool the inline executor owns:
# exec_inline.c, RUN_AS). Its output folder is writable by nobody and its output
# reaches the store read-only, owned by flowrun's user. A mixed run gives the right
# sum; a crash fails only its instance; a timeout and an interrupt end what the
# task started. The refusals (not root) are in 22-refuse.sh.
# Programs: tests/runas/*.flow, task library tests/lib/libcrash.so.
HARNESS=$(pwd)/tests/harness
T=$(mktemp -d /tmp/flow-runas-XXXXXX)
trap 'rm -rf "$T"' EXIT INT TERM
chmod 755 "$T"

pass() { echo "PASS runas: $1"; }
fail() { echo "FAIL runas: $1: $2"; }

. "$HARNESS/nobody.sh"
why=$(nobody_why)
if [ -n "$why" ]; then
    for ex in inline process; do
        for c in "uid of a C task" "uid of an sh task" "output of a C task in the store" \
            "output of an sh task in the store" "mixed run" "hand-over: a file written as nobody, read as flowrun's user" \
            "crashes fail only their instances" "timeout" "interrupt"; do
            echo "SKIP runas: $c ($ex): $why"
        done
    done
    echo "SKIP runas: inline: a plan with run_as tasks starts the pool: $why"
    echo "SKIP runas: no pool without run_as (inline): $why"
    exit 0
fi
NOBODY=$(id -u nobody)
mkdir -p "$T/runas" "$T/lib"
cp tests/runas/*.flow "$T/runas/" && cp tests/lib/libcrash.so "$T/lib/" || { fail setup "copy"; exit 0; }
chmod -R a+rX "$T"
for f in runas plain; do
    "$FLOWC" "$T/runas/$f.flow" -o "$T/runas/$f.plan" 2> "$T/flowc.err" ||
        { fail setup "flowc $f: $(head -3 "$T/flowc.err")"; exit 0; }
done

# run EXECUTOR FLOW ARGS...: exit code in $code, stdout in $out, stderr in $T/err
run() {
    ex=$1 fl=$2; shift 2
    out=$(timeout 60 "$FLOWRUN" "$T/runas/runas.plan" --flow "$fl" --executor "$ex" -j 2 \
        --progress none --state "$T/st-$ex" --no-cache "$@" 2> "$T/err")
    code=$?
}
# expect NAME WANT GOT
expect() {
    if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "want '$2', got '$3'"; sed 's/^/    /' "$T/err"; fi
}
# stored NAME PATH-AS-JSON WANT-CONTENT: the file is in the store, has no write
# permission, belongs to flowrun's user and holds WANT-CONTENT
stored() {
    f=$(echo "$2" | sed 's/^"//; s/"$//')
    got="$(stat -c '%A %u' "$f" 2>&1) $(cat "$f" 2>&1)"
    case "$f" in "$T"/st-*/store/*) ;; *) got="not in the store: $f" ;; esac
    expect "$1" "-r--r--r-- $(id -u) $3" "$got"
}

for ex in inline process; do
    run $ex c_id
    expect "uid of a C task ($ex)" "0 $NOBODY" "$code $out"
    run $ex sh_id
    expect "uid of an sh task ($ex)" "0 $NOBODY" "$code $out"
    run $ex c_file
    stored "output of a C task in the store ($ex)" "$out" "$NOBODY 1"
    run $ex sh_file
    stored "output of an sh task in the store ($ex)" "$out" "$NOBODY 1"

    # 20 C tasks as nobody, 20 as flowrun's user, 3 sh as nobody, 2 sh as flowrun's
    # user, and ok(x) = 2x + 1 for x < 20 (400)
    me=$(id -u)
    run $ex mixed
    expect "mixed run ($ex)" "0 $((23 * NOBODY + 22 * me + 400))" "$code $out"
    run $ex handover
    expect "hand-over: a file written as nobody, read as flowrun's user ($ex)" "0 \"$NOBODY 7\"" "$code $out"

    # x = 3 segfaults, 5 calls exit(3), 6 aborts; the others give 2x + 1: 1+3+5+9+15
    run $ex crashes
    w=""
    [ "$code $out" = "0 33" ] || w="exit $code, result '$out', want 0 and 33 (all_done reduce)"
    for m in "c_pick[3]: worker killed by signal 11" "c_pick[5]: task called exit(3)" \
        "c_pick[6]: worker killed by signal 6"; do
        [ -z "$w" ] && ! grep -qF "$m" "$T/err" && w="stderr does not say '$m'"
    done
    if [ -z "$w" ]; then pass "crashes fail only their instances ($ex)"; else
        fail "crashes fail only their instances ($ex)" "$w"; sed 's/^/    /' "$T/err"; fi

    start=$(date +%s)
    run $ex timed
    took=$(( $(date +%s) - start ))
    w=""
    [ "$code" = 1 ] || w="exit $code, want 1"
    [ -z "$w" ] && ! grep -qF "nap_nobody[0]: command timed out after 300 ms" "$T/err" && w="stderr: $(cat "$T/err")"
    [ -z "$w" ] && [ "$took" -gt 10 ] && w="took ${took}s"
    if [ -z "$w" ]; then pass "timeout ($ex)"; else fail "timeout ($ex)" "$w"; fi

    # an interrupt ends the run (exit 3) and the commands the run_as tasks started
    "$FLOWRUN" "$T/runas/runas.plan" --flow hang --executor $ex -j 2 --progress none \
        --state "$T/st-$ex" --no-cache > /dev/null 2> "$T/err" &
    pid=$!
    n=0
    while [ $n -lt 100 ] && [ "$(pgrep -u nobody -f '^sleep 471[12]$' | wc -l)" != 2 ]; do
        sleep 0.1; n=$((n + 1))
    done
    kill -INT $pid
    wait $pid
    code=$?
    sleep 0.3
    left=$(pgrep -u nobody -f '^sleep 471[12]$' | tr '\n' ' ')
    if [ $n -lt 100 ] && [ "$code" = 3 ] && [ -z "$left" ]; then pass "interrupt ($ex)"; else
        fail "interrupt ($ex)" "started: $([ $n -lt 100 ] && echo yes || echo no), exit $code, left running: '$left'"
        for p in $left; do kill -KILL "$p"; done
    fi
done

# under inline, the pool exists only when the plan has a run_as task: flowrun's
# children are the sh command itself, plus the pool's 2 workers (-j 2)
run inline children
expect "inline: a plan with run_as tasks starts the pool" "0 3" "$code $out"
out=$(timeout 60 "$FLOWRUN" "$T/runas/plain.plan" --flow children --executor inline -j 2 \
    --progress none --state "$T/st-plain" 2> "$T/err")
expect "no pool without run_as (inline)" "0 1" "$? $out"
