#!/bin/sh
# The store's integrity against hostile or careless tasks (issue 11, points 1-2):
# taking in output resolves nothing the task controls, and damaged or planted
# store bytes are never served or handed to a task. Run as root (as CI is), the
# run_as cases use the user nobody, under the process executor and (through its
# worker pool for run_as tasks) the inline executor.
HARNESS=$(pwd)/tests/harness
T=$(mktemp -d /tmp/flow-integrity-XXXXXX)
trap 'chmod -R u+w "$T" 2>/dev/null; rm -rf "$T"' EXIT
chmod 755 "$T"
cp tests/integrity/*.flow tests/lib/libintegrity.so "$T/" || { echo "FAIL integrity: setup"; exit 0; }
cd "$T" || exit 0
for f in escape tamper; do "$FLOWC" $f.flow 2> flowc.err || { echo "FAIL integrity: flowc $f"; cat flowc.err; }; done
ST="$T/st"
run() { timeout 60 "$FLOWRUN" "$@" --progress none --state "$ST" 2> "$T/stderr"; }
expect() { # name want got
    if [ "$2" = "$3" ]; then echo "PASS integrity: $1"; else echo "FAIL integrity: $1: want '$2', got '$3'"; tail -3 "$T/stderr" | sed 's/^/    /'; fi
}
. "$HARNESS/nobody.sh"
why=$(nobody_why)
root=0; [ -z "$why" ] && root=1
skip() { echo "SKIP integrity: $1: $why"; }

# ---- 1. taking in output: `..`, links, FIFOs ----
printf SECRET > victim; chmod 600 victim
out=$(run escape.plan --flow steal --param victim="$T/victim"); rc=$?
expect "'..' escape: the instance fails" "1 yes" "$rc $(grep -q 'leaves' stderr && echo yes)"
expect "'..' escape: the 0600 file stays where it was, as it was" "600 SECRET" "$(stat -c %a victim) $(cat victim)"
expect "'..' escape: its content is served to nobody" "" "$(echo "$out" | grep SECRET)"

if [ $root = 1 ]; then
    printf SECRET > victim3; chmod 600 victim3
    out=$(run escape.plan --flow steal_nobody --param victim="$T/victim3" --executor process); rc=$?
    expect "root->nobody: a nobody task's '..' path is refused" "1" "$rc"
    expect "root->nobody: the root-only file is not handed to a nobody task" "" "$(echo "$out" | grep SECRET)"
    expect "root->nobody: the root-only file is untouched" "600 0 SECRET" "$(stat -c '%a %u' victim3) $(cat victim3)"
else
    skip "root->nobody escalation"
fi

printf TARGET > target.txt; chmod 644 target.txt
run escape.plan --flow link_file --param target="$T/target.txt" > /dev/null; rc=$?
expect "symlink {out}: the instance fails, naming the link" "1 yes" "$rc $(grep -q 'symbolic link' stderr && echo yes)"
expect "symlink {out}: the target keeps its mode" "644 TARGET" "$(stat -c %a target.txt) $(cat target.txt)"
expect "symlink {out}: no link in the store" "" "$(find "$ST/store" -type l)"

mkdir -p tdir/sub; echo a > tdir/a; echo b > tdir/sub/b
run escape.plan --flow link_folder --param target="$T/tdir" > /dev/null; rc=$?
expect "rmdir + symlink {out}: the instance fails, naming the link" "1 yes" "$rc $(grep -q "symbolic link" stderr && echo yes)"
expect "rmdir + symlink {out}: the target folder keeps its files" "a b" "$(cat tdir/a tdir/sub/b | tr '\n' ' ' | sed 's/ $//')"

run escape.plan --flow fifo > /dev/null; rc=$?
expect "FIFO {out}: refused at once, no hang" "1 yes" "$rc $(grep -q 'FIFO' stderr && echo yes)"

printf HARD > victim2; chmod 600 victim2
run escape.plan --flow hard --param victim="$T/victim2" > /dev/null
printf CHANGED > victim2
expect "hard link to a file outside: copied, never moved or chmod'ed" "600 CHANGED" "$(stat -c %a victim2) $(cat victim2)"
expect "hard link: the store holds a copy, not the file" "" "$(grep -rl CHANGED "$ST/store/objects")"

# ---- 2. damaged, changed or planted store bytes are never served ----
ST="$T/st2"
expect "a stored output" '"hello"' "$(run tamper.plan --flow plain)"
named=$(find "$ST/store/named" -type f | head -1)
chmod u+w "$named"; printf BAD > "$named"
expect "damaged named link, --no-cache: the fresh bytes are served" '"hello"' "$(run tamper.plan --flow plain --no-cache)"
expect "damaged named link: the damaged object is quarantined" "1" "$(ls "$ST/store/quarantine" | wc -l)"
named=$(find "$ST/store/named" -type f | head -1)
rm -f "$named"; printf BAD > "$named"; chmod 444 "$named"
expect "named link replaced by another file: the cache serves the object's bytes" '"hello"' "$(run tamper.plan --flow plain)"
expect "named link replaced: the name is the object again" "hello" "$(cat "$named")"

ST="$T/st2t"
expect "a stored folder" '"hello"' "$(run tamper.plan --flow tree)"
f=$(find "$ST/store/trees" -name a.txt | head -1)
chmod u+w "$f" 2>/dev/null; printf BAD > "$f"
expect "damaged file of a stored folder, --no-cache: the fresh bytes are served" '"hello"' "$(run tamper.plan --flow tree --no-cache)"
f=$(find "$ST/store/trees" -name a.txt | head -1)
chmod u+w "$(dirname "$f")"; rm -f "$f"; printf BAD > "$f"
expect "file of a stored folder replaced: the cache serves the object's bytes" '"hello"' "$(run tamper.plan --flow tree)"

ST="$T/st3"
out=$(run tamper.plan --flow rewrite --executor inline); rc=$?
expect "inline: a task rewrote its input: the next task does not read it" "1 " "$rc $(echo "$out" | grep EVIL)"
expect "inline: the rewrite is named in the error" "yes" "$(grep -q 'changed or damaged' stderr && echo yes)"
expect "inline: the next run recomputes it" '"hello"' "$(run tamper.plan --flow rewrite --executor inline)"

if [ $root = 1 ] && unshare -m true 2> /dev/null; then
    ST="$T/st4"
    expect "process, root task: the store is read-only to it" '"hello"' "$(run tamper.plan --flow rewrite --executor process)"
    expect "process, root task: the object is unchanged" "hello" "$(cat "$(find "$ST/store/named" -type f | head -1)")"
    ST="$T/st5"
    expect "process, run_as nobody: cannot chmod and rewrite its input" '"hello"' "$(run tamper.plan --flow rewrite_nobody --executor process)"
    expect "process, run_as nobody: stored objects belong to flowrun's user" "0" "$(stat -c %u "$(find "$ST/store/named" -type f | head -1)")"
    ST="$T/st5i"
    expect "inline, run_as nobody: cannot chmod and rewrite its input" '"hello"' "$(run tamper.plan --flow rewrite_nobody --executor inline)"
    expect "inline, run_as nobody: stored objects belong to flowrun's user" "0" "$(stat -c %u "$(find "$ST/store/named" -type f | head -1)")"
else
    skip "read-only store view for process workers"
fi

ST="$T/st6"
h=$(printf hello | sha256sum | cut -c1-64)
mkdir -p "$ST/store/objects/$(echo "$h" | cut -c1-2)"
printf EVIL > "$ST/store/objects/$(echo "$h" | cut -c1-2)/$(echo "$h" | cut -c3-)"
expect "a planted objects/ file is not served" '"hello"' "$(run tamper.plan --flow plain)"

# ---- files() on the user's input tree: links followed, a loop refused ----
ST="$T/st7"
mkdir -p in/real elsewhere; echo x > in/real/a.txt; echo y > elsewhere/b.txt
ln -s ../elsewhere in/linked; ln -s real/a.txt in/alias.txt; ln -s nowhere.txt in/dangling.txt
expect "files(): links to files and folders are followed, dangling ones skipped" \
    "[\"in/alias.txt\",\"in/linked/b.txt\",\"in/real/a.txt\"]" "$(run escape.plan --flow listing --param root=in)"
ln -s .. in/real/up
run escape.plan --flow listing --param root=in > /dev/null; rc=$?
expect "files(): a link loop is an error that says so" "1 yes" "$rc $(grep -q 'symbolic link loop' stderr && echo yes)"
