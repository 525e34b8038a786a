#!/bin/sh
# Instance names (issue 10, point 5): one name per instance, the binding's path, used by
# show, logs, clear and the failure summary alike; task names and labels accepted
# where they denote one binding; a state.db of schema 2 stays readable.
# Command tasks only (no C library), so every check runs anywhere flowc and flowrun do.
ROOT=$(pwd)
T=$(mktemp -d /tmp/flow-names-XXXXXX)
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 0
pass() { echo "PASS names: $1"; }
fail() { echo "FAIL names: $1"; }
expect() { # name want got
    if [ "$2" = "$3" ]; then pass "$1"; else fail "$1: want '$2', got '$3'"; fi
}
ST="$T/st"
run() { "$FLOWRUN" "$@" --progress none --state "$ST"; }
show() { "$FLOWRUN" show "$1" --state "$ST" 2>&1 | awk 'NR > 2 { print $1 "=" $3 }' | tr '\n' ' ' | sed 's/ $//'; }

cat > names.flow <<'EOF'
task stage(x: int, name: str) -> int = sh "echo log {name} {x} >&2; echo {x}" with {label: x => "item-{x}"}
task add(x: int) -> int = sh "echo add {x} >&2; expr {x} + 1"
task square(x: int) -> int = sh "echo sq {x} >&2; expr {x} '*' {x} || true"
task inc(x: int) -> int = sh "expr {x} + 1"
task dbl(x: int) -> int = sh "echo dbl {x} >&2; expr {x} '*' 2"
group per_n(n: int) -> [int] {
    return square.expand(x = range(n))
}
flow main() {
    let a = stage.partial(name = "clean").expand(x = range(4))
    let b = stage.partial(name = "feat").expand(x = a)
    add(1)
    add(2)
    per_n.expand(n = [1, 2, 3])
    let twice = combine(inc, dbl)
    twice.expand(x = [5, 6])
}
EOF
"$FLOWC" names.flow 2> flowc.err || { fail "flowc: $(head -3 flowc.err)"; exit 0; }
run names.plan > /dev/null 2> run.err || fail "the run: $(head -3 run.err)"
got=$(show 1)
case "$got" in
*"a[3]=succeeded"*"b[3]=succeeded"*) pass "two lets over one task show as a[3] and b[3]" ;;
*) fail "two lets over one task: $got" ;;
esac
case " $got " in
*" add=succeeded add#2=succeeded "*) pass "unbound calls of one task: add, add#2" ;;
*) fail "unbound calls: $got" ;;
esac
case " $got " in
*" per_n[2]/square[1]=succeeded "*) pass "a group's instances: per_n[2]/square[1]" ;;
*) fail "group path: $got" ;;
esac
case " $got " in
*" twice[0]=succeeded twice[1]=succeeded "*) pass "a combine's instances are named by its let" ;;
*) fail "combine name: $got" ;;
esac
"$FLOWRUN" show 1 --json --state "$ST" > show.json 2>> run.err
python3 -c "
import json; d = json.load(open('show.json'))
n = {i['name']: i for i in d['instances']}
assert n['b[2]']['task'] == 'stage' and n['b[2]']['index'] == '2', n['b[2]']
assert n['twice[1]']['task'] == 'twice', n['twice[1]']" 2>> run.err &&
    pass "show --json: name, task and index" || fail "show --json: $(tail -2 run.err)"

logs() { "$FLOWRUN" logs "$@" --state "$ST" 2>&1; echo "rc=$?"; }
expect "logs a[3]" "log clean 3 rc=0" "$(logs 1 'a[3]' | tr '\n' ' ' | sed 's/ $//')"
expect "logs b[3]: its own log, not a[3]'s" "log feat 3 rc=0" "$(logs 1 'b[3]' | tr '\n' ' ' | sed 's/ $//')"
expect "logs of a group's instance" "sq 1 rc=0" "$(logs 1 'per_n[2]/square[1]' | tr '\n' ' ' | sed 's/ $//')"
expect "logs add#2" "add 2 rc=0" "$(logs 1 'add#2' | tr '\n' ' ' | sed 's/ $//')"
expect "logs of a combine by its let" "dbl 7 rc=0" "$(logs 1 'twice[1]' | tr '\n' ' ' | sed 's/ $//')"
expect "a label names an instance" "log clean 2 rc=0" "$(logs 1 'a["item-2"]' | tr '\n' ' ' | sed 's/ $//')"
expect "a task name of several bindings: the candidates, exit 2" \
    "flowrun logs: 'stage[3]' names more than one binding in run 1: a[3], b[3]; name one of them rc=2" \
    "$(logs 1 'stage[3]' | tr '\n' ' ' | sed 's/ $//')"
expect "a task name of one binding is accepted" "sq 1 rc=0" \
    "$(logs 1 'per_n[2]/square[1]' | tr '\n' ' ' | sed 's/ $//')"
expect "an unknown name" "flowrun logs: run 1 has no instance zz[0] (flowrun show 1 lists them) rc=2" \
    "$(logs 1 'zz[0]' | tr '\n' ' ' | sed 's/ $//')"

clear() { "$FLOWRUN" clear "$@" --state "$ST" 2>&1; }
clear 1 'a[3]' > clear.out
expect "clear a[3] clears one instance" "cleared 1 instance of run 1; \`flowrun resume 1\` runs them again" "$(cat clear.out)"
got=$(show 1)
case " $got " in
*" a[3]=cleared "*" b[3]=succeeded "*) pass "clear a[3] leaves b[3] alone" ;;
*) fail "clear a[3]: $got" ;;
esac
expect "clear by a task name of several bindings: exit 2" 2 "$(clear 1 stage > /dev/null; echo $?)"
clear 1 'per_n[2]/square[1]' > /dev/null
got=$(show 1)
case " $got " in
*" per_n[2]/square[0]=succeeded per_n[2]/square[1]=cleared per_n[2]/square[2]=succeeded "*)
    pass "clear a group's instance by its path" ;;
*) fail "clear per_n[2]/square[1]: $got" ;;
esac
expect "clear a binding: all its instances" "cleared 4 instances" "$(clear 1 b | cut -d' ' -f1-3)"
expect "resume runs the cleared ones again" 0 "$(run resume 1 > /dev/null 2>> run.err; echo $?)"
expect "after resume: nothing cleared" "" "$(show 1 | tr ' ' '\n' | grep cleared)"

# the failure summary: by index, numerically (failures completing as 10, 2, 1)
cat > fails.flow <<'EOF'
task pick(x: int) -> int = sh "case {x} in 1) sleep 0.8; exit 3;; 2) sleep 0.4; exit 3;; 10) exit 3;; esac; echo {x}"
flow main() {
    let p = pick.expand(x = range(12))
}
EOF
"$FLOWC" fails.flow 2>> run.err
run fails.plan -j 12 > /dev/null 2> fails.err
expect "the failure summary lists failures in index order" "1 2 10" \
    "$(sed -n 's/^  [a-z]*\[\([0-9]*\)\]:.*/\1/p' fails.err | tr '\n' ' ' | sed 's/ $//')"
expect "the failure summary names them p[i]" 3 "$(grep -c '^  p\[[0-9]*\]: ' fails.err)"

# The README's example: `flowrun logs last count_words[0]` names the task
cat > wc.flow <<'EOF'
task count_words(file: str) -> int = sh "echo counting {file} >&2; echo 3"
flow wordcount() {
    let counts = count_words.expand(file = ["x", "y"])
}
EOF
"$FLOWC" wc.flow 2>> run.err && run wc.plan > /dev/null 2>> run.err
expect "logs last count_words[0] (README)" "counting x rc=0" \
    "$(logs last 'count_words[0]' | tr '\n' ' ' | sed 's/ $//')"

# a state.db of schema 2 (made by the flowrun before instance names) is migrated:
# its runs keep the names and logs that flowrun gave them
mkdir -p v2/logs/1/stage v2/logs/1/total
python3 -c "
import sqlite3, sys; c = sqlite3.connect('v2/state.db'); c.executescript(open(sys.argv[1]).read())" \
    "$ROOT/tests/state/schema2.sql" 2>> run.err
echo "log feat 1" > v2/logs/1/stage/1.log
echo "total 3" > v2/logs/1/total/-.log
got=$("$FLOWRUN" show 1 --state v2 2>&1 | awk 'NR > 2 { print $1 "=" $3 }' | tr '\n' ' ')
expect "schema 2: the old run shows as that flowrun named it" \
    "stage[0]=succeeded stage[1]=succeeded stage[2]=succeeded stage[0]=succeeded stage[1]=succeeded stage[2]=succeeded total=succeeded " "$got"
expect "schema 2: migrated to the current version" "$(sed -n 's/^#define STATE_SCHEMA_VERSION \([0-9]*\).*/\1/p' "$ROOT/runtime/recorder/state.h")" \
    "$(python3 -c "import sqlite3; print(sqlite3.connect('v2/state.db').execute('PRAGMA user_version').fetchone()[0])")"
expect "schema 2: logs of an old instance" "log feat 1 rc=0" \
    "$("$FLOWRUN" logs 1 'stage[1]' --state v2 2>&1 | tr '\n' ' '; echo "rc=$?")"
expect "schema 2: logs of an old unmapped instance" "total 3 rc=0" \
    "$("$FLOWRUN" logs 1 total --state v2 2>&1 | tr '\n' ' '; echo "rc=$?")"
expect "schema 2: clear an old instance" "cleared 2 instances" \
    "$("$FLOWRUN" clear 1 'stage[1]' --state v2 2>&1 | cut -d' ' -f1-3)"
