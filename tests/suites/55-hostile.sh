#!/bin/sh
# Hostile plans and a hostile state directory (issue 11, point 3).
# A plan is untrusted as bytes: a task name that would become a path outside the state
# directory is refused when the plan is read, by `flowrun verify` and by a run, with one
# line and exit 2, and nothing is created. Everything flowrun makes under --state is
# made through descriptors it opened itself, refusing links: a link planted where a log,
# a run's log folder or the work folder goes fails that instance with one line, and its
# target is untouched; a link left in an instance's scratch folder is removed, not
# followed. The hostile plans are real ones with one name patched and the checksum
# re-sealed (tests/harness/plan_patch.py).
ROOT=$(pwd)
T=$(mktemp -d /tmp/flow-hostile-XXXXXX)
trap 'rm -rf "$T"' EXIT
command -v python3 >/dev/null || { echo "SKIP hostile: python3 not found"; exit 0; }
cd "$T" || exit 0
mkdir -p a/b/c
cat > a/b/c/esc.flow <<'EOF'
task xxxxxxxxxxxxxxxx(s: str) -> str = sh "echo note >&2; echo {s}"

flow main() -> str {
    return xxxxxxxxxxxxxxxx("hi")
}
EOF
cat > a/b/c/scr.flow <<'EOF'
# leaves a link to a folder outside where its scratch folder was
task plant(k: str) -> path = sh "d=$(dirname $(dirname {out})); rm -rf $d/scratch; ln -s {k} $d/scratch; echo x > {out}"

flow main(k: str) -> path {
    return plant(k)
}
EOF
cd a/b/c || exit 0
"$FLOWC" esc.flow 2> flowc.err && "$FLOWC" scr.flow 2>> flowc.err || { echo "FAIL hostile: flowc"; cat flowc.err; exit 0; }
patch() { python3 "$ROOT/tests/harness/plan_patch.py" esc.plan xxxxxxxxxxxxxxxx "$1" "$2"; }
pass() { echo "PASS hostile: $1"; }
fail() { echo "FAIL hostile: $1"; }
lines() { wc -l < "$1" | tr -d ' '; }
listing() { (cd "$T" && find . -path ./a/b/c/st -prune -o -print | sort); }

# ---- names that would leave the state directory, or are not one path component ----
: > out; : > err
before=$(listing)
for name in ../../../ESCAPED x/yyyyyyyyyyyyyy -rf-xxxxxxxxxxxx "$(printf 'x\nxxxxxxxxxxxxxx')"; do
    shown=$(printf '%s' "$name" | tr '\n' '?')
    patch "$name" bad.plan || { fail "patching '$shown'"; continue; }
    "$FLOWRUN" verify bad.plan > out 2> err; code=$?
    if [ $code = 2 ] && [ "$(lines err)" = 1 ] && grep -q "task 0 name" err && [ ! -s out ]; then
        pass "verify refuses task name '$shown'"
    else fail "verify with task name '$shown': exit $code, $(head -c 300 err) $(head -c 100 out)"; fi
    "$FLOWRUN" run bad.plan --state st --progress none > out 2> err; code=$?
    if [ $code = 2 ] && [ "$(lines err)" = 1 ] && grep -q "task 0 name" err; then
        pass "run refuses task name '$shown'"
    else fail "run with task name '$shown': exit $code, $(head -c 300 err)"; fi
    rm -f bad.plan
done
after=$(listing)
[ "$before" = "$after" ] && pass "nothing created outside --state" ||
    fail "created outside --state: $(echo "$after" | grep -vxF "$before" | head -5 | tr '\n' ' ')"
[ ! -e st/logs ] && [ ! -e st/work ] && pass "a refused plan leaves no logs or work folders" ||
    fail "a refused plan made $(ls st)"

# ---- links planted in the state directory (a fresh one: runs 1, 2, 3) ----
run() { "$FLOWRUN" run "$@" --state sl --progress none --no-cache 2> err; }
[ "$(run esc.plan)" = '"hi"' ] && [ -f sl/logs/1/xxxxxxxxxxxxxxxx.log ] && pass "a plain run logs" ||
    fail "plain run: $(cat err)"
echo precious > victim
mkdir -p sl/logs/2
ln -s "$T/a/b/c/victim" sl/logs/2/xxxxxxxxxxxxxxxx.log
run esc.plan > out; code=$?
[ "$(cat victim)" = precious ] && pass "a link at logs/RUN/NAME.log: target untouched" ||
    fail "a link at logs/RUN/NAME.log: target now '$(head -c 100 victim)'"
[ $code = 1 ] && grep -q "cannot write its log" err && pass "a link at logs/RUN/NAME.log fails the instance" ||
    fail "a link at logs/RUN/NAME.log: exit $code, $(head -c 300 err)"
mkdir elsewhere
ln -s "$T/a/b/c/elsewhere" sl/logs/3
run esc.plan > out; code=$?
[ -z "$(ls elsewhere)" ] && pass "a link at logs/RUN: nothing written through it" ||
    fail "a link at logs/RUN: its target holds $(ls -R elsewhere | tr '\n' ' ')"
[ $code = 1 ] && grep -q "cannot write its log" err && pass "a link at logs/RUN fails the instance" ||
    fail "a link at logs/RUN: exit $code, $(head -c 300 err)"
mkdir elsewhere2
rm -rf sl/work && ln -s "$T/a/b/c/elsewhere2" sl/work
run esc.plan > out; code=$?
[ -z "$(ls elsewhere2)" ] && pass "a link at work/: nothing made through it" ||
    fail "a link at work/: its target holds $(ls -R elsewhere2 | tr '\n' ' ')"
[ $code = 1 ] && grep -q "cannot make its work folder" err && pass "a link at work/ fails the instance" ||
    fail "a link at work/: exit $code, $(head -c 300 err)"
rm sl/work
mkdir keep && echo kept > keep/file
run scr.plan --param k="$T/a/b/c/keep" > out; code=$?
[ -f keep/file ] && pass "a link left in a scratch folder is removed, not followed" ||
    fail "a link left in a scratch folder: its target lost its files (exit $code, $(head -c 200 err))"

# ---- a damaged state.db whose schema text holds a newline (found by fuzz_state) ----
mkdir -p dmg && cp "$ROOT/tests/fuzz/seeds-state/crash-schema-newline.db" dmg/state.db
"$FLOWRUN" runs --state dmg > out 2> err; code=$?
[ $code = 2 ] && [ "$(lines err)" = 1 ] && pass "a damaged state.db is refused in one line" ||
    fail "a damaged state.db: exit $code, $(lines err) lines: $(head -c 200 err | tr -c "[:print:]" "?")"
exit 0
