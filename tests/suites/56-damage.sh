#!/bin/sh
# A damaged or full state directory: detected, said once, never reported as
# success; `flowrun fsck` salvages what can be read; a flowrun killed mid-run
# loses at most a few seconds of cache entries, and resume enters them again.
# (Issue: integrity, point 4 and the state half of point 5.)
ROOT=$(pwd)
T=$(mktemp -d /tmp/flow-damage-XXXXXX)
cleanup() { umount "$T/small" 2>/dev/null; umount "$T/fx" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
cp tests/state/chain.flow tests/lib/libstatetasks.so "$T/" || { echo "FAIL damage: setup"; exit 0; }
cd "$T" || exit 0
"$FLOWC" chain.flow 2> flowc.err || { echo "FAIL damage: flowc: $(head -2 flowc.err)"; exit 0; }
export FLOW_TEST_LOG="$T/log"
: > "$FLOW_TEST_LOG"

pass() { echo "PASS damage:$1"; }
fail() { echo "FAIL damage:$1: $2"; }
# db FILE SQL: one value from an SQLite query (python3's sqlite3)
db() { python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()[0])" "$1" "$2" 2>/dev/null; }

"$FLOWRUN" chain.plan --param n=2000 --state good --progress none > /dev/null 2>&1
[ -s good/state.db ] || { fail setup "no state.db after a run"; exit 0; }
# a small run leaves its write-ahead log beside state.db (docs/state.md): fold it in, so
# that the copies below are whole databases in one file, as the damage cases need
db good/state.db "PRAGMA wal_checkpoint(TRUNCATE)" > /dev/null
[ -s good/state.db-wal ] && { fail setup "the log was not folded into state.db"; exit 0; }
fresh() { rm -rf "$1"; mkdir "$1"; cp good/state.db "$1/"; }

# ---- the file-level check on open: header, size, empty file ----
fresh hdr; printf '\010' | dd of=hdr/state.db bs=1 seek=20 conv=notrunc 2>/dev/null
start=$(date +%s)
"$FLOWRUN" resume 1 --state hdr --progress none > hdr.out 2> hdr.err; code=$?
took=$(( $(date +%s) - start ))
if [ "$code" = 2 ] && [ "$took" -lt 10 ] && [ "$(wc -l < hdr.err)" = 1 ] && grep -q "damaged header.*flowrun fsck" hdr.err
then pass "a damaged header byte: resume exits 2 at once with one line naming fsck"
else fail "damaged header" "exit $code after ${took}s: $(head -3 hdr.err)"; fi

mkdir empty; : > empty/state.db
"$FLOWRUN" chain.plan --param n=3 --state empty --progress none > empty.out 2> empty.err; code=$?
if [ "$code" = 2 ] && grep -q "empty (0 bytes)" empty.err && [ ! -s empty.out ]
then pass "a zero-length state.db is damage, not a new database"
else fail "zero-length state.db" "exit $code: $(head -2 empty.err)"; fi

fresh cut; truncate -s 40000 cut/state.db
"$FLOWRUN" runs --state cut > /dev/null 2> cut.err; code=$?
[ "$code" = 2 ] && grep -q "flowrun fsck" cut.err && pass "a truncated state.db is refused (exit 2)" ||
    fail "truncated state.db" "exit $code: $(head -2 cut.err)"

# ---- damage found later: never exit 0 ----
# the page zeroed holds some of the instances table's rows, never all (page 26 when
# SQLite's dbstat cannot say): where the rows lie depends on how the writer grouped its
# commits. A packed row's blob spans overflow pages: the first page of a chain of two or
# more (zeroed, the chain breaks: SQLite's integrity check sees it; a zeroed last page
# it does not see), else the last of several leaves
pg=$(db good/state.db "SELECT a.pageno FROM dbstat a WHERE a.name = 'instances' AND a.path LIKE '%+000000' AND EXISTS (SELECT 1 FROM dbstat b WHERE b.name = 'instances' AND b.path = substr(a.path, 1, length(a.path) - 6) || '000001') ORDER BY a.pageno DESC LIMIT 1")
case $pg in ''|*[!0-9]*) pg=$(db good/state.db "SELECT pageno FROM dbstat WHERE name = 'instances' AND pagetype = 'leaf' ORDER BY pageno DESC LIMIT 1") ;; esac
case $pg in ''|*[!0-9]*) pg=26 ;; esac
fresh zero; dd if=/dev/zero of=zero/state.db bs=16384 seek=$((pg - 1)) count=1 conv=notrunc 2>/dev/null
"$FLOWRUN" show 1 --json --state zero > zero.json 2> zero.err; code=$?
if [ "$code" = 2 ] && [ "$(wc -l < zero.err)" = 1 ] && grep -q "is damaged.*flowrun fsck" zero.err
then pass "16 KiB zeroed mid-file: show exits 2 and says so once"
else fail "zeroed page: show" "exit $code: $(head -3 zero.err)"; fi

# ---- fsck: a sound state is left alone; a damaged one salvaged, the old kept ----
fresh sound
"$FLOWRUN" fsck --state sound > sound.out 2>&1; code=$?
if [ "$code" = 0 ] && grep -q "state.db: ok" sound.out && ! ls sound | grep -q damaged
then pass "fsck: a sound state directory is ok and untouched"
else fail "fsck sound" "exit $code: $(cat sound.out)"; fi
"$FLOWRUN" fsck --state zero > fsck.out 2>&1; code=$?
n=$("$FLOWRUN" show 1 --json --state zero 2> show2.err | python3 -c "import json,sys; print(len(json.load(sys.stdin)['instances']))" 2>/dev/null)
kept=$(ls zero | grep -c '^state.db.damaged-[0-9]*-[0-9]*$')
if [ "$code" = 0 ] && [ "$kept" = 1 ] && [ -n "$n" ] && [ "$n" -gt 1000 ] && [ "$n" -lt 4001 ] && [ ! -s show2.err ]
then pass "fsck salvages the readable rows ($n of 4001 instances), keeps the damaged file"
else fail "fsck salvage" "exit $code, kept $kept, instances '$n': $(head -3 fsck.out) $(head -2 show2.err)"; fi
: > "$FLOW_TEST_LOG"
"$FLOWRUN" resume 1 --state zero --progress none > resumed.out 2> resumed.err; code=$?
if [ "$code" = 0 ] && [ "$(cat resumed.out)" = 20010000 ] && [ "$(wc -l < "$FLOW_TEST_LOG")" -lt 2001 ]
then pass "after fsck, resume finishes the run with what was salvaged"
else fail "resume after fsck" "exit $code, result '$(cat resumed.out)', $(wc -l < "$FLOW_TEST_LOG") ran: $(head -2 resumed.err)"; fi
fresh hdr2; printf '\010' | dd of=hdr2/state.db bs=1 seek=20 conv=notrunc 2>/dev/null
"$FLOWRUN" fsck --state hdr2 > /dev/null 2>&1
[ "$("$FLOWRUN" runs --state hdr2 --json 2>/dev/null | python3 -c "import json,sys; print(len(json.load(sys.stdin)))" 2>/dev/null)" = 1 ] &&
    pass "fsck mends a damaged header and keeps every run" || fail "fsck header" "runs not readable after fsck"

# ---- a full disk: one line, exit non-zero, resumable ----
if [ "$(id -u)" = 0 ] && mkdir small && mount -t tmpfs -o size=900k tmpfs small 2>/dev/null; then
    "$FLOWRUN" chain.plan --param n=3000 --state small/st --progress none > full.out 2> full.err; code=$?
    lines=$(wc -l < full.err)
    if [ "$code" = 1 ] && [ "$lines" = 1 ] && grep -q "disk is full" full.err
    then pass "a full disk: one line, exit 1"
    else fail "full disk" "exit $code, $lines lines on stderr: $(head -3 full.err)"; fi
    cp -a small/st big; umount small
    "$FLOWRUN" resume 1 --state big --progress none > big.out 2> big.err; code=$?
    [ "$code" = 0 ] && [ "$(cat big.out)" = 45015000 ] && pass "a full disk: the run resumes once there is space" ||
        fail "full disk resume" "exit $code: $(head -2 big.err)"
else
    echo "SKIP damage:full disk: needs root to mount a small tmpfs"
fi

# ---- durable before an effect, and the disk full before it: the effect never starts ----
# effect.flow: effect_wait (cache: false) reads the sum of n slow_inc. The state is made,
# then the disk filled to within 96 KiB, far less than n=5000 results need: the sync
# before the effect fails, so the effect must not start (one line, exit 1, no result),
# and the run resumes once there is space, the effect running once then.
cp "$ROOT/tests/state/effect.flow" . && "$FLOWC" effect.flow 2>> flowc.err
for ex in inline process; do
    if [ "$(id -u)" = 0 ] && mkdir -p fx && mount -t tmpfs -o size=900k tmpfs fx 2>/dev/null; then
        "$FLOWRUN" effect.plan --param n=0 --state fx/st --progress none > /dev/null 2>&1
        free=$(df -k --output=avail fx | tail -1)
        dd if=/dev/zero of=fx/fill bs=4k count=$((free / 4 - 24)) 2> /dev/null
        : > "$FLOW_TEST_LOG"
        "$FLOWRUN" effect.plan --param n=5000 --executor $ex -j 2 --state fx/st --progress none \
            > fx.out 2> fx.err; code=$?
        effects=$(grep -c '^effect_wait' "$FLOW_TEST_LOG")
        if [ "$code" = 1 ] && [ "$effects" = 0 ] && [ ! -s fx.out ] && [ "$(wc -l < fx.err)" = 1 ] &&
            grep -q "disk is full" fx.err
        then pass "full before an effect ($ex): the effect does not start, one line, exit 1"
        else fail "full before an effect ($ex)" "exit $code, effect ran $effects times, out '$(cat fx.out)': $(head -3 fx.err)"; fi
        rm -rf fxbig; cp -a fx/st fxbig; umount fx
        : > "$FLOW_TEST_LOG"
        "$FLOWRUN" resume 2 --state fxbig --progress none > fxr.out 2> fxr.err; code=$?
        effects=$(grep -c '^effect_wait' "$FLOW_TEST_LOG")
        [ "$code" = 0 ] && [ "$(cat fxr.out)" = 12502500 ] && [ "$effects" = 1 ] &&
            pass "full before an effect ($ex): resumed with space, the effect runs once" ||
            fail "full before an effect: resume ($ex)" "exit $code, '$(cat fxr.out)', effect ran $effects times: $(head -2 fxr.err)"
    else
        echo "SKIP damage:full before an effect: needs root to mount a small tmpfs"
    fi
done

# ---- a moved state directory: stored paths are re-rooted, nothing breaks ----
cp "$ROOT/tests/state/files.flow" . && "$FLOWC" files.flow 2>> flowc.err
mkdir -p d && for i in 1 2 3; do printf 'line %s\nmore\n' $i > d/f$i.txt; done
first=$("$FLOWRUN" files.plan --flow heads --param root=d --state here --progress none 2> moved.err)
mv here there
: > "$FLOW_TEST_LOG"
again=$("$FLOWRUN" files.plan --flow heads --param root=d --state there --progress none 2>> moved.err); code=$?
if [ "$code" = 0 ] && [ -n "$first" ] && [ "$again" = "$first" ] && [ ! -s "$FLOW_TEST_LOG" ]
then pass "a moved state directory: its cache still serves stored outputs"
else fail "moved state directory" "exit $code, '$first' then '$again', $(wc -l < "$FLOW_TEST_LOG") ran: $(tail -2 moved.err)"; fi

# ---- a flowrun killed mid-run: the cache keeps all but its last seconds ----
: > "$FLOW_TEST_LOG"
FLOW_TEST_NAP_MS=20 "$FLOWRUN" chain.plan --param n=1000 --state kill --executor inline -j 2 \
    --progress none > kill.out 2> kill.err &
pid=$!
sleep 7
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
cached=$(python3 "$ROOT/tests/harness/cachepacks.py" count kill/state.db 2>/dev/null)
ran=$(grep -c '^slow_inc' "$FLOW_TEST_LOG")
if [ -n "$cached" ] && [ "$cached" -gt 0 ] && [ "$ran" -lt 1000 ]
then pass "SIGKILL mid-run: $cached cache entries of $ran finished instances survive"
else fail "SIGKILL mid-run" "cache entries '$cached' after $ran instances ran (want some)"; fi
FLOW_TEST_NAP_MS=0 "$FLOWRUN" resume 1 --state kill --progress none > kres.out 2> kres.err; code=$?
all=$(python3 "$ROOT/tests/harness/cachepacks.py" count kill/state.db 2>/dev/null)
if [ "$code" = 0 ] && [ "$all" = 2001 ]
then pass "resume enters every finished instance in the cache again (2001 entries)"
else fail "resume refills the cache" "exit $code, $all entries: $(head -2 kres.err)"; fi
exit 0
