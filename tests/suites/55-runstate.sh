#!/bin/sh
# Run states that tell the truth (issue 10, point 6): a run whose flowrun was
# killed reads as interrupted and can be resumed; a run whose flowrun is alive
# cannot be resumed twice; a run owned on another host says where; Ctrl-C names
# the command that resumes; the live progress line fits a narrow terminal; a
# `dir` parameter that does not exist is refused before anything runs.
ROOT=$(pwd)
T=$(mktemp -d /tmp/flow-runstate-XXXXXX)
pids=""
trap 'for p in $pids; do kill -9 $p 2>/dev/null; done; rm -rf "$T"' EXIT
cp tests/state/chain.flow tests/state/files.flow tests/lib/libstatetasks.so "$T/" ||
    { echo "FAIL runstate: setup"; exit 0; }
cd "$T" || exit 0
cat > nap.flow <<'EOF'
# one slow shell task
task nap(s: float) -> int = sh "sleep {s}; echo 7"
flow main(s: float = 3) -> int {
    return nap(s)
}
EOF
cat > dirs.flow <<'EOF'
library t = "libstatetasks.so"
task count_lines(f: path) -> int = t.count_lines
task sum(xs: [int]) -> int = t.sum
flow lines(root: dir = "nowhere") -> int {
    return sum(count_lines.expand(f = files(root, "*.txt")))
}
flow many(root: dir, more: [dir]) -> int {
    return sum(count_lines.expand(f = files(root, "*.txt")))
}
EOF
for f in nap chain files dirs; do
    "$FLOWC" $f.flow 2> flowc.err || { echo "FAIL runstate: flowc $f"; sed 's/^/    /' flowc.err; }
done
# the interpreter itself, not a version manager's shim (which can take a second a call)
PY=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null)
[ -n "$PY" ] || { echo "SKIP runstate: python3 is needed"; exit 0; }
export FLOW_TEST_LOG="$T/log"
: > "$FLOW_TEST_LOG"

pass() { echo "PASS runstate: $1"; }
fail() { echo "FAIL runstate: $1: $2"; }
expect() { # name want got
    if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "want '$2', got '$3'"; fi
}
json_field() { # state-dir run-id field: runs --json, that run's field
    "$FLOWRUN" runs --json --state "$1" 2>/dev/null | "$PY" -c "
import json, sys
for r in json.load(sys.stdin):
    if r['id'] == $2: print(r['$3'])" 2>/dev/null
}
wait_recorded() { # state-dir: until a run is recorded (at most 10 s)
    n=0
    while [ $n -lt 100 ]; do
        [ -n "$(json_field "$1" 1 state)" ] && return 0
        sleep 0.1; n=$((n + 1))
    done
    return 1
}
table_state() { # state-dir run-id: the STATE column of `flowrun runs` (may hold spaces)
    "$FLOWRUN" runs --state "$1" 2>/dev/null |
        awk -v id="$2" '$1 == id { s = ""; for (i = 4; i <= NF - 4; i++) s = s (s ? " " : "") $i; print s }'
}

# ---- kill -9 mid-run: interrupted at once, and resumable ----
S="$T/st-kill"
"$FLOWRUN" nap.plan --param s=2 --progress none --state "$S" > /dev/null 2>&1 &
pid=$!; pids="$pids $pid"
if wait_recorded "$S"; then
    expect "alive: runs says running" running "$(table_state "$S" 1)"
    kill -9 $pid; wait $pid 2>/dev/null
    expect "killed: runs says interrupted" interrupted "$(table_state "$S" 1)"
    expect "killed: runs --json says interrupted" interrupted "$(json_field "$S" 1 state)"
    "$FLOWRUN" show 1 --state "$S" 2>/dev/null | head -1 | grep -q ", interrupted, "
    [ $? = 0 ] && pass "killed: show says interrupted" || fail "killed: show says interrupted" \
        "$("$FLOWRUN" show 1 --state "$S" 2>&1 | head -1)"
    got=$("$FLOWRUN" resume 1 --progress none --state "$S" 2> resume.err); code=$?
    expect "killed: resume finishes it" "0 7" "$code $got"
    expect "killed: then succeeded" succeeded "$(json_field "$S" 1 state)"
else
    fail "killed" "the run was never recorded"
fi
# a writer stores the state it reads: the next run leaves the killed one interrupted in the db
S="$T/st-kill2"
"$FLOWRUN" nap.plan --param s=5 --progress none --state "$S" > /dev/null 2>&1 &
pid=$!; pids="$pids $pid"
wait_recorded "$S"; kill -9 $pid; wait $pid 2>/dev/null
"$FLOWRUN" nap.plan --param s=0 --progress none --state "$S" > /dev/null 2>&1
stored=$("$PY" -c "import sqlite3; print(sqlite3.connect('$S/state.db').execute('SELECT state FROM runs WHERE id=1').fetchone()[0])" 2>&1)
expect "killed: the next run stores interrupted" interrupted "$stored"

# ---- a live run cannot be resumed; Ctrl-C names the command that resumes ----
S="$T/st one" # a space: the command printed must still work when pasted
FLOW_TEST_NAP_MS=50 "$FLOWRUN" chain.plan --param n=200 -j 2 --progress none --state "$S" \
    > int.out 2> int.err &
pid=$!; pids="$pids $pid"
if wait_recorded "$S"; then
    "$FLOWRUN" resume 1 --progress none --state "$S" > live.out 2> live.err; code=$?
    expect "live: resume refused, exit 2" 2 "$code"
    expect "live: the reason" "flowrun resume: run 1 is still running (pid $pid)" "$(cat live.err)"
    expect "live: still running" running "$(json_field "$S" 1 state)"
    kill -INT $pid; wait $pid; code=$?
    expect "Ctrl-C: exit 3" 3 "$code"
    cmd=$(sed -n 's/^flowrun: resume with: //p' int.err)
    case "$cmd" in
        "flowrun resume 1 --state "*) pass "Ctrl-C: names flowrun resume 1" ;;
        *) fail "Ctrl-C: names flowrun resume 1" "stderr: $(tr '\n' '|' < int.err)" ;;
    esac
    expect "Ctrl-C: interrupted" interrupted "$(json_field "$S" 1 state)"
    got=$(PATH="$(dirname "$FLOWRUN"):$PATH" eval "$cmd --progress none" 2> paste.err); code=$?
    expect "Ctrl-C: the command, pasted, finishes the run" "0 201000" "$code $got"
else
    fail "live" "the run was never recorded"
fi

# the default state directory: the command is just `flowrun resume N`; and a flowrun
# whose command name holds ") " (the /proc/PID/stat field that ends in ')') is
# still judged alive by its start time
mkdir -p dflt && cp chain.plan libstatetasks.so dflt/ && ln -s "$FLOWRUN" "dflt/fl) ow"
(cd dflt && unset FLOW_STATE && FLOW_TEST_NAP_MS=50 exec "./fl) ow" chain.plan --param n=200 -j 2 \
    --progress none > ../dflt.out 2> ../dflt.err) &
pid=$!; pids="$pids $pid"
if wait_recorded "dflt/.flow"; then
    expect "a command name with ') ': alive" running "$(json_field dflt/.flow 1 state)"
    kill -INT $pid; wait $pid
    expect "Ctrl-C, default state directory: just the run" "flowrun resume 1" \
        "$(sed -n 's/^flowrun: resume with: //p' dflt.err)"
else
    fail "default state directory" "the run was never recorded"
fi

# ---- a run owned by a flowrun on another host ----
S="$T/st-remote"
"$FLOWRUN" nap.plan --param s=0 --progress none --state "$S" > /dev/null 2>&1
"$PY" -c "
import sqlite3; c = sqlite3.connect('$S/state.db')
c.execute(\"UPDATE runs SET state='running', ended=NULL, exit_code=-1, host='elsewhere.example', pid=4242, pid_start=99 WHERE id=1\")
c.commit()" 2>/dev/null
expect "other host: runs" "running (on elsewhere.example, pid 4242)" "$(table_state "$S" 1)"
expect "other host: runs --json" "running elsewhere.example 4242" \
    "$(json_field "$S" 1 state) $(json_field "$S" 1 host) $(json_field "$S" 1 pid)"
"$FLOWRUN" nap.plan --param s=0 --progress none --state "$S" > /dev/null 2>&1
expect "other host: a writer here leaves it running" running "$(json_field "$S" 1 state)"
# the same row on this host, with a pid that no process has: gone
"$PY" -c "
import sqlite3, socket; c = sqlite3.connect('$S/state.db')
c.execute('UPDATE runs SET host=?, pid=?, pid_start=99 WHERE id=1', (socket.gethostname(), 2**22 + 17))
c.commit()" 2>/dev/null
expect "this host, no such pid: interrupted" interrupted "$(json_field "$S" 1 state)"
# this host, a live pid (this shell's) that started at another time (a reused pid): gone
"$PY" -c "
import sqlite3; c = sqlite3.connect('$S/state.db')
start = int(open('/proc/$$/stat').read().rsplit(')', 1)[1].split()[19])
c.execute('UPDATE runs SET pid=$$, pid_start=? WHERE id=1', (start + 1,))
c.commit()" 2>/dev/null
expect "this host, pid reused: interrupted" interrupted "$(json_field "$S" 1 state)"
# a flowrun of schema 2 resuming the run sets only the pid: the old owner is forgotten,
# and a row without host and start time is judged by its pid alone
sleep 30 & spid=$!; pids="$pids $spid"
"$PY" -c "
import sqlite3; c = sqlite3.connect('$S/state.db')
c.execute('UPDATE runs SET pid=$spid WHERE id=1')
c.commit()
print(c.execute('SELECT coalesce(host, \'-\'), coalesce(pid_start, 0) FROM runs WHERE id=1').fetchone())" > old.out 2>&1
expect "a schema-2 writer's new pid resets the owner" "('-', 0)" "$(cat old.out)"
expect "an owner without host or start time, pid alive: running" running "$(json_field "$S" 1 state)"
kill $spid; wait $spid 2>/dev/null
expect "an owner without host or start time, no such pid: interrupted" interrupted \
    "$(json_field "$S" 1 state)"

# ---- the live progress line on a 40-column terminal ----
S="$T/st-pty"
"$PY" - "$FLOWRUN" "$S" > pty.out 2>&1 <<'PY'
import fcntl, os, re, struct, subprocess, sys, termios
flowrun, state = sys.argv[1], sys.argv[2]
master, slave = os.openpty()
fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 40, 0, 0))
env = dict(os.environ, FLOW_TEST_NAP_MS="15")
p = subprocess.Popen([flowrun, "chain.plan", "--param", "n=80", "-j", "2", "--executor", "inline",
                      "--state", state], stdout=subprocess.DEVNULL, stderr=slave, env=env)
os.close(slave)
out = b""
while True:
    try:
        chunk = os.read(master, 4096)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
p.wait()
text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", out.decode(errors="replace"))
draws = [seg for line in text.split("\n") for seg in line.split("\r")[1:]]
long = [d for d in draws if len(d) > 40]
if p.returncode != 0:
    print("exit %d: %r" % (p.returncode, text[-300:]))
elif len(draws) < 3:
    print("only %d redraws seen" % len(draws))
elif long:
    print("%d of %d redraws longer than 40 columns, e.g. %r" % (len(long), len(draws), long[0]))
else:
    print("ok")
PY
expect "narrow terminal: every redraw fits 40 columns" ok "$(cat pty.out)"

# ---- a dir parameter that does not exist: exit 2 before anything runs ----
: > "$FLOW_TEST_LOG"
S="$T/st-dirs"
"$FLOWRUN" files.plan --flow lines --param root=no/such/dir --progress none --state "$S" \
    > /dev/null 2> dir1.err; code=$?
expect "missing dir (--param): exit 2" 2 "$code"
expect "missing dir (--param): one line" \
    "flowrun: parameter 'root' (dir): no/such/dir: no such directory" "$(cat dir1.err)"
"$FLOWRUN" dirs.plan --flow lines --progress none --state "$S" > /dev/null 2> dir2.err; code=$?
expect "missing dir (default): exit 2" "2 flowrun: parameter 'root' (dir): nowhere: no such directory" \
    "$code $(cat dir2.err)"
echo "root: files.flow" > p.yaml
"$FLOWRUN" dirs.plan --flow lines --params p.yaml --progress none --state "$S" > /dev/null 2> dir3.err
code=$?
expect "a file as dir (--params): exit 2" "2 flowrun: parameter 'root' (dir): files.flow: not a directory" \
    "$code $(cat dir3.err)"
mkdir -p d && printf 'a\nb\n' > d/x.txt
"$FLOWRUN" dirs.plan --flow many --param root=d --param 'more=["d", "gone"]' --progress none --state "$S" \
    > /dev/null 2> dir4.err; code=$?
expect "[dir] with a missing item: exit 2" "2 flowrun: parameter 'more' ([dir]): gone: no such directory" \
    "$code $(cat dir4.err)"
expect "missing dir: no task ran, no run recorded" "0 []" \
    "$(wc -l < "$FLOW_TEST_LOG" | tr -d ' ') $("$FLOWRUN" runs --json --state "$S" 2>/dev/null | tr -d '\n')"
expect "an existing dir still runs" 2 \
    "$("$FLOWRUN" dirs.plan --flow lines --param root=d --progress none --state "$S" 2>/dev/null)"
cd "$ROOT" || exit 0
