#!/bin/sh
# The standard library (stdlib/std.flow, docs/stdlib.md): small programs that
# `import std`, compiled with the built flowc and run with the built flowrun under
# both executors, their results compared with what coreutils, tar, gzip and
# python3 compute from the same inputs; then each error case (a missing file, a
# folder that is not one, a bad URL, an HTTP 404, a body over max_bytes, an archive
# entry climbing out, a destination outside the environment's root, through a
# link, or with no root) failing with its one message; fetch and
# combine(std.fetch, std.publish_bytes) over a local HTTP server this suite starts
# on loopback; and how libflow-std.so is found (from flowrun's place, not the
# plan's) and enters the plan with its hash.
BUILD=${BUILD:-build}
ROOT=$(pwd)
FLOWC=$ROOT/$BUILD/bin/flowc; FLOWRUN=$ROOT/$BUILD/bin/flowrun
STDSO=$ROOT/$BUILD/lib/flow/libflow-std.so
T=$(mktemp -d /tmp/flow-std-XXXXXX)
SRV=""
trap '[ -n "$SRV" ] && kill "$SRV" 2> /dev/null; [ -n "$KEEP" ] || rm -rf "$T"' EXIT INT TERM
pass() { echo "PASS std: $1"; }
fail() { echo "FAIL std: $1: $2"; }
skip() { echo "SKIP std: $1: $2"; }
unset FLOW_PATH FLOW_LIBRARY_PATH
cd "$T" || exit 0
printf 'envs:\n  test:\n    root: %s/root\n  bare:\n' "$T" > flow.yaml
# Where flowrun cannot keep a run off the other environments' roots (a chroot whose /
# is not a mount point: the fresh-machine check), every run here goes --unprotected:
# this suite checks std, not that protection (57-isolate and 61-remote do, and say
# SKIP there); a NOTE line says so.
UNPROT=""
# (a run that has a task to run: one without is never isolated; in an environment
# other than prod, where a run that cannot be isolated is refused, not warned of)
printf 'task one() -> int = sh "echo 1"\nflow p() -> int {\n    return one()\n}\n' > probe.flow
if "$FLOWC" probe.flow 2> /dev/null &&
    ! "$FLOWRUN" probe.plan --env bare --progress none --state "$T/st-probe" > /dev/null 2> probe.err &&
    grep -q "cannot keep this run off" probe.err; then
    UNPROT=--unprotected
    echo "NOTE std: the runs go --unprotected here: $(head -1 probe.err)"
fi

# compile F.flow into F.plan; run it under EXECUTOR with extra args into out/err, exit in $rc
comp() { "$FLOWC" "$1.flow" 2> "$1.cerr" || { fail "$1" "flowc: $(head -3 "$1.cerr")"; return 1; }; }
run() { # name executor args...
    n=$1; ex=$2; shift 2
    "$FLOWRUN" "$n.plan" --executor "$ex" --progress none --state "$T/st-$ex" $UNPROT "$@" > "$n.out" 2> "$n.err"
    rc=$?
}

# ---- files --------------------------------------------------------------------
mkdir -p data/sub
printf 'one two\nthree\r\nfour' > data/a.txt
printf 'hello\n\nworld\n' > data/b.txt
printf 'not text' > data/c.csv
printf 'deep\n' > data/sub/d.txt
cat > files.flow <<'EOF'
import std
type Out = {names: [path], deep: [path], lines: [[str]], size: int, sum: str, text: str,
            copies: [str], written: str, empty: [path]}
flow main(d: dir = "data") -> Out {
    let fs = std.glob(d, "*.txt")
    let cat = std.concat(fs, name = "all.txt")
    return {names = fs, deep = std.glob(d, "*/*.txt"), lines = std.lines.expand(f = fs),
            size = std.size(cat), sum = std.checksum(cat), text = std.read_text(cat),
            copies = std.read_text.expand(f = std.copy.expand(f = fs)), written = std.read_text(std.write_text("a\nb")),
            empty = std.glob(d, "*.nothing")}
}
EOF
if comp files; then
    cat data/a.txt data/b.txt > want.cat
    want=$(python3 - "$T" <<'EOF'
import json, sys, hashlib
t = sys.argv[1]
cat = open(t + "/want.cat", "rb").read()
def ls(f):
    s = open(f, newline="").read()
    out = s.split("\n")
    if s.endswith("\n"): out = out[:-1]
    return [l[:-1] if l.endswith("\r") else l for l in out] if s else []
print(json.dumps({"names": ["data/a.txt", "data/b.txt"], "deep": ["data/sub/d.txt"],
                  "lines": [ls(t + "/data/a.txt"), ls(t + "/data/b.txt")], "size": len(cat),
                  "sum": hashlib.sha256(cat).hexdigest(), "text": cat.decode(),
                  "copies": [open(t + "/data/a.txt", newline="").read(), open(t + "/data/b.txt").read()], "written": "a\nb", "empty": []},
                 separators=(",", ":")))
EOF
)
    for ex in inline process; do
        run files $ex
        if [ $rc = 0 ] && [ "$(cat files.out)" = "$want" ]; then pass "files [$ex]: glob, lines, concat, size, checksum, read_text, copy, write_text"
        else fail "files [$ex]" "exit $rc: $(head -c 400 files.out) $(head -3 files.err); want $want"; fi
    done
    # the second run is served from the cache: glob, lines, checksum... ran once
    run files process
    if [ $rc = 0 ] && [ "$(cat files.out)" = "$want" ]; then pass "files: a second run gives the same (cached)"
    else fail "files: second run" "$(head -3 files.err)"; fi
fi

# every task is declared with a version, and the plan holds libflow-std.so's hash
"$FLOWC" --emit=json files.flow > files.json 2> /dev/null
ntasks=$(grep -c '^task ' "$ROOT/stdlib/std.flow")
nver=$(grep '^task ' "$ROOT/stdlib/std.flow" | grep -c 'version: "[0-9]*"')
if [ "$ntasks" -gt 0 ] && [ "$ntasks" = "$nver" ]; then pass "each of the $ntasks std tasks has a version"
else fail "versions" "$nver of $ntasks tasks have one"; fi
h=$(sha256sum "$STDSO" | cut -c1-64)
if grep -q '"path": "flow:libflow-std.so"' files.json && grep -q "\"sha256\": \"$h\"" files.json; then
    pass "the plan names flow:libflow-std.so with its content hash"
else fail "library in the plan" "$(grep -A2 'flow:libflow' files.json | head -3)"; fi

# found from flowrun's place, not the plan's: a plan moved elsewhere, run from a third folder
mkdir -p moved elsewhere && cp files.plan moved/ && cp -r data moved/
(cd elsewhere && "$FLOWRUN" ../moved/files.plan --progress none --state "$T/st-moved" $UNPROT --param d="$T/data" > ../moved.out 2> ../moved.err)
if [ $? = 0 ] && grep -q '"size":' moved.out; then pass "a moved plan finds libflow-std.so beside flowrun"
else fail "moved plan" "$(head -3 moved.err)"; fi
# the library that is not the one compiled against: warned (content hash mismatch)
mkdir -p fake/flow && cp "$STDSO" fake/flow/libflow-std.so && printf 'x' >> fake/flow/libflow-std.so
if "$FLOWRUN" verify files.plan > /dev/null 2> verify.err; then pass "flowrun verify finds libflow-std.so and its hash matches"
else fail "verify" "$(head -3 verify.err)"; fi

# the errors of the file tasks: one message each, naming the file
cat > ferr.flow <<'EOF'
import std
flow text(f: path = "nope.txt") -> str { return std.read_text(f) }
flow size(f: path = "nope.txt") -> int { return std.size(f) }
flow glob() -> [path] { return std.glob("nowhere", "*") }
flow nul(f: path = "nul.bin") -> [str] { return std.lines(f) }
flow up(d: dir = "data") -> [path] { return std.glob(d, "../*") }
flow folder_url(u: str) -> bytes { return std.fetch(u) }
EOF
printf 'a\0b' > nul.bin
comp ferr
ferr() { # flow args... ; expected text
    want=$1; shift
    "$FLOWRUN" ferr.plan --progress none --state "$T/st-err" $UNPROT "$@" > ferr.out 2> ferr.err; rc=$?
    if [ $rc = 1 ] && grep -qF "$want" ferr.err; then pass "error: $want"
    else fail "error '$want'" "exit $rc: $(head -3 ferr.err)"; fi
}
ferr "cannot read nope.txt: No such file or directory" --flow text --param f=nope.txt
ferr "cannot stat nope.txt: No such file or directory" --flow size --param f=nope.txt
ferr "cannot open the directory nowhere: No such file or directory" --flow glob
ferr "nul.bin holds a NUL byte at offset 1: not text" --flow nul
ferr "the pattern '../*' must be relative to the directory, without '..'" --flow up
ferr "file://$T/data: not a regular file" --flow folder_url --param "u=file://$T/data"

# ---- archives -----------------------------------------------------------------
mkdir -p tree/in/deeper && echo alpha > tree/in/a.txt && echo beta > tree/in/deeper/b.txt
tar czf tree.tar.gz -C tree in && gzip -c data/b.txt > b.txt.gz
cat > arch.flow <<'EOF'
import std
type Out = {plain: str, names: [path], b: [str]}
flow main(t: path = "tree.tar.gz", g: path = "b.txt.gz") -> Out {
    let d = std.untar(t)
    return {plain = std.read_text(std.gunzip(g)), names = std.glob(d, "in/*.txt"),
            b = std.read_text.expand(f = std.glob(d, "in/deeper/*"))}
}
EOF
if comp arch; then
    for ex in inline process; do
        run arch $ex
        out=$(cat arch.out)
        want_plain=$(python3 -c 'import json,sys; print(json.dumps(open(sys.argv[1]).read()))' data/b.txt)
        case $out in
        "{\"plain\":$want_plain,\"names\":[\""*"/in/a.txt\"],\"b\":[\"beta\\n\"]}") pass "untar, gunzip [$ex]" ;;
        *) fail "archives [$ex]" "exit $rc: $out $(head -3 arch.err)" ;;
        esac
    done
    run arch process --param g=data/b.txt
    if [ $rc = 1 ] && grep -q "data/b.txt is not compressed" arch.err; then pass "gunzip of a plain file: refused"
    else fail "gunzip plain" "exit $rc: $(head -3 arch.err)"; fi
    # an entry that climbs out of the folder is refused and nothing is written outside
    python3 - <<'EOF'
import tarfile, io
with tarfile.open("evil.tar", "w") as t:
    data = b"owned\n"
    i = tarfile.TarInfo("../../escaped.txt"); i.size = len(data)
    t.addfile(i, io.BytesIO(data))
EOF
    run arch process --param t=evil.tar
    if [ $rc = 1 ] && grep -q "evil.tar at ../../escaped.txt" arch.err && ! find "$T" -name escaped.txt | grep -q .; then
        pass "untar: an entry with .. is refused, nothing written"
    else fail "untar escape" "exit $rc: $(head -3 arch.err)"; fi
    python3 - "$T" <<'EOF'
import tarfile, io, sys
with tarfile.open("link.tar", "w") as t:
    l = tarfile.TarInfo("in/lnk"); l.type = tarfile.SYMTYPE; l.linkname = sys.argv[1]
    t.addfile(l)
    data = b"through the link\n"
    i = tarfile.TarInfo("in/lnk/through.txt"); i.size = len(data)
    t.addfile(i, io.BytesIO(data))
EOF
    run arch process --param t=link.tar
    if [ $rc = 1 ] && grep -q "link.tar at in/lnk/through.txt" arch.err && [ ! -e "$T/through.txt" ]; then
        pass "untar: an entry written through a link is refused"
    else fail "untar through a link" "exit $rc: $(head -3 arch.err)"; fi
    printf 'garbage, not a tar' > junk.tar
    run arch process --param t=junk.tar
    if [ $rc = 1 ] && grep -q "junk.tar" arch.err; then pass "untar of a damaged archive: one error"
    else fail "untar junk" "exit $rc: $(head -3 arch.err)"; fi
fi

# a file found inside a stored folder (untar's output) is a reference into it: using
# it as a task's input leaves it in place (it was once "repaired" away as if it
# were the folder itself), also for files() over a command's dir output
cat > inside.flow <<'EOF'
import std
task mk() -> dir = sh "mkdir -p {out}/in && echo inside > {out}/in/x.txt"
task rd(f: path) -> str = sh "cat {f}"
type Out = {a: [str], b: [str], again: [[str]]}
flow main(t: path = "tree.tar.gz") -> Out {
    let d = std.untar(t)
    let m = mk()
    return {a = std.read_text.expand(f = std.glob(d, "in/*.txt")), b = rd.expand(f = files(m, "*")),
            again = std.lines.expand(f = std.glob(d, "in/*.txt"))}
}
EOF
if comp inside; then
    run inside process
    if [ $rc = 0 ] && [ "$(cat inside.out)" = '{"a":["alpha\n"],"b":["inside"],"again":[["alpha"]]}' ]; then
        pass "files inside a stored folder are inputs like any file"
    else fail "inside a stored folder" "exit $rc: $(cat inside.out) $(head -3 inside.err)"; fi
fi

# ---- publish ------------------------------------------------------------------
cat > pub.flow <<'EOF'
import std
flow file(dst: str = "pub/a.txt", text: str = "published\n") -> str { return std.publish_file(std.write_text(text), dst) }
flow tree(src: dir = "tree", dst: str = "pub/tree") -> str { return std.publish_dir(src, dst) }
EOF
if comp pub; then
    run pub process --env test --flow file
    if [ $rc = 0 ] && [ "$(cat pub.out)" = "\"$T/root/pub/a.txt\"" ] && [ "$(cat root/pub/a.txt)" = published ]; then
        pass "publish_file under the environment's root"
    else fail "publish_file" "exit $rc: $(cat pub.out) $(head -3 pub.err)"; fi
    ino1=$(stat -c %i root/pub/a.txt)
    run pub inline --env test --flow file
    if [ $rc = 0 ] && [ "$(stat -c %i root/pub/a.txt)" = "$ino1" ]; then pass "publish_file again: the same content is left as it is"
    else fail "publish_file idempotent" "exit $rc, inode $ino1 -> $(stat -c %i root/pub/a.txt)"; fi
    run pub process --env test --flow file --param text=changed
    if [ $rc = 0 ] && [ "$(cat root/pub/a.txt)" = changed ] && [ "$(stat -c %i root/pub/a.txt)" != "$ino1" ]; then
        pass "publish_file of new content replaces the file (a new inode: renamed into place)"
    else fail "publish_file replace" "exit $rc: $(cat root/pub/a.txt) $(head -3 pub.err)"; fi
    if ! ls -a root/pub | grep -q flow-tmp; then pass "publish leaves no temporary file"
    else fail "publish temp" "$(ls -a root/pub)"; fi
    run pub process --env test --flow tree
    if [ $rc = 0 ] && diff -r tree root/pub/tree > /dev/null; then pass "publish_dir copies the tree"
    else fail "publish_dir" "exit $rc: $(head -3 pub.err)"; fi
    run pub process --env test --flow tree --param dst=deep/er/tree
    if [ $rc = 0 ] && diff -r tree root/deep/er/tree > /dev/null && ! ls -a root/deep/er | grep -q flow-tmp; then
        pass "publish_dir into folders it creates"
    else fail "publish_dir deep" "exit $rc: $(head -3 pub.err)"; fi
    run pub process --env test --flow tree --param dst=deep/er/tree
    if [ $rc = 0 ] && "$FLOWRUN" logs last std.publish_dir --state "$T/st-process" 2> /dev/null |
        grep -q "$T/root/deep/er/tree is already up to date"; then
        pass "publish_dir of the same tree again: left as it is"
    else fail "publish_dir same again" "exit $rc: $("$FLOWRUN" logs last std.publish_dir --state "$T/st-process" 2>&1 | head -3)"; fi
    echo gamma > tree/in/c.txt && rm tree/in/a.txt
    run pub process --env test --flow tree
    if [ $rc = 0 ] && diff -r tree root/pub/tree > /dev/null && ! ls -a root/pub | grep -q flow-tmp; then
        pass "publish_dir replaces a changed tree (exchange), nothing left over"
    else fail "publish_dir again" "exit $rc: $(diff -r tree root/pub/tree | head -3) $(head -3 pub.err)"; fi
    for d in ../escape /etc/passwd pub/../../x ./a ""; do
        run pub process --env test --flow file --param "dst=$d"
        if [ $rc = 1 ] && grep -q "destination '$d' is refused: it must be a relative path under the environment's root" pub.err; then
            pass "publish to '$d': refused"
        else fail "publish '$d'" "exit $rc: $(head -3 pub.err)"; fi
    done
    ln -s "$T" root/link
    run pub process --env test --flow file --param dst=link/x.txt
    if [ $rc = 1 ] && grep -q "link is a symbolic link or not a folder" pub.err && [ ! -e "$T/x.txt" ]; then
        pass "publish through a link in the root: refused"
    else fail "publish through a link" "exit $rc: $(head -3 pub.err)"; fi
    run pub process --env bare --flow file
    if [ $rc = 1 ] && grep -q "the run's environment has no root to publish into" pub.err; then pass "publish without a root: refused"
    else fail "publish without root" "exit $rc: $(head -3 pub.err)"; fi
fi

# ---- fetch, over a local HTTP server --------------------------------------------
mkdir -p www && head -c 100000 /dev/urandom > www/blob.bin && echo "small body" > www/small.txt
cat > net.flow <<'EOF'
import std
flow get(url: str) -> int { return len(std.fetch.expand(url = [url])) }
flow to(url: str, max: int = 1073741824) -> str { return std.checksum(std.fetch_to(url, max_bytes = max)) }
flow cut(url: str) -> int { return std.size(std.fetch_to(url)) }
flow mirror(urls: [str], dsts: [str]) -> [str] {
    let move = combine(std.fetch, std.publish_bytes)
    return move.expand_kwargs(zip(url = urls, dst = dsts))
}
EOF
if ! command -v python3 > /dev/null; then skip "fetch" "python3 is needed for the local HTTP server"
elif comp net; then
    python3 -u -m http.server 0 --bind 127.0.0.1 --directory www > srv.log 2>&1 &
    SRV=$!
    port=""
    for i in $(seq 50); do
        port=$(sed -n 's/.*port \([0-9]*\).*/\1/p' srv.log | head -1)
        [ -n "$port" ] && break
        sleep 0.1
    done
    if [ -z "$port" ]; then skip "fetch" "the local HTTP server did not start: $(head -2 srv.log)"
    else
        base=http://127.0.0.1:$port
        printf 'urls: [%s/small.txt, %s/blob.bin]\ndsts: [mirror/small.txt, mirror/blob.bin]\n' $base $base > mirror.yaml
        for ex in inline process; do
            run net $ex --flow mirror --env test --params mirror.yaml
            if [ $rc = 0 ] && cmp -s www/blob.bin root/mirror/blob.bin && cmp -s www/small.txt root/mirror/small.txt; then
                pass "combine(std.fetch, std.publish_bytes) mirrors over HTTP [$ex]"
            else fail "mirror [$ex]" "exit $rc: $(head -3 net.err)"; fi
        done
        run net process --flow to --param url=$base/blob.bin
        if [ $rc = 0 ] && [ "$(cat net.out)" = "\"$(sha256sum www/blob.bin | cut -c1-64)\"" ]; then pass "fetch_to over HTTP"
        else fail "fetch_to" "exit $rc: $(cat net.out) $(head -3 net.err)"; fi
        run net process --flow to --param url="file://$T/www/small.txt"
        if [ $rc = 0 ] && [ "$(cat net.out)" = "\"$(sha256sum www/small.txt | cut -c1-64)\"" ]; then pass "fetch_to of a file:// URL"
        else fail "fetch_to file://" "exit $rc: $(head -3 net.err)"; fi
        run net process --flow to --param url=$base/blob.bin --param max=1000
        if [ $rc = 1 ] && grep -q "$base/blob.bin: larger than max_bytes (1000 bytes)" net.err; then pass "a body over max_bytes fails"
        else fail "max_bytes" "exit $rc: $(head -3 net.err)"; fi
        run net process --flow get --param url=$base/missing.txt
        if [ $rc = 1 ] && grep -q "$base/missing.txt: HTTP status 404" net.err; then pass "HTTP 404: one error, not retried"
        else fail "404" "exit $rc: $(head -3 net.err)"; fi
        for u in "ftp://127.0.0.1/x" "not a url" "http://127.0.0.1:1/x"; do
            run net process --flow get --param "url=$u"
            if [ $rc = 1 ] && grep -q "std.fetch\[0\]: $u: " net.err; then pass "bad URL '$u': $(awk -v u="$u: " 'i = index($0, u) { print substr($0, i + length(u)); exit }' net.err)"
            else fail "bad URL '$u'" "exit $rc: $(head -3 net.err)"; fi
        done
        # examples/mirror/mirror_std.flow, the mirror with no C, over the same server
        printf 'urls: [%s/small.txt, %s/blob.bin]\n' $base $base > urls.yaml
        if "$FLOWC" -o ex.plan "$ROOT/examples/mirror/mirror_std.flow" 2> ex.err &&
            "$FLOWRUN" ex.plan --env test --params urls.yaml --progress none --state "$T/st-ex" $UNPROT > ex.out 2>> ex.err &&
            [ "$(cat ex.out)" = "[\"$T/root/mirror/small.txt\",\"$T/root/mirror/blob.bin\"]" ]; then
            pass "examples/mirror/mirror_std.flow over a local HTTP server"
        else fail "mirror_std example" "$(cat ex.out) $(head -3 ex.err)"; fi
        # the mirror's fetch is not cached: a changed body is fetched again
        echo "changed" > www/small.txt
        run net process --flow mirror --env test --params mirror.yaml
        if [ $rc = 0 ] && cmp -s www/small.txt root/mirror/small.txt; then pass "fetch is not cached: a changed body is published"
        else fail "fetch uncached" "exit $rc: $(head -3 net.err)"; fi
        # ... and early cutoff spares what is downstream while the bytes stay the same
        echo "same body" > www/cut.txt
        states() {
            "$FLOWRUN" show last --json --state "$T/st-process" 2> /dev/null | python3 -c '
import json, sys
print(" ".join(sorted("%s:%s" % (i["task"], i["state"]) for i in json.load(sys.stdin)["instances"])))'
        }
        run net process --flow cut --param url=$base/cut.txt
        run net process --flow cut --param url=$base/cut.txt
        got="$rc $(cat net.out) $(states)"
        echo "a changed body" > www/cut.txt
        run net process --flow cut --param url=$base/cut.txt
        got2="$rc $(cat net.out) $(states)"
        if [ "$got" = "0 10 std.fetch_to:succeeded std.size:cached" ] &&
            [ "$got2" = "0 15 std.fetch_to:succeeded std.size:succeeded" ]; then
            pass "fetch runs again, and early cutoff serves downstream while its bytes stay the same"
        else fail "fetch, early cutoff" "same bytes: $got; changed: $got2"; fi
    fi
fi

# ---- docs/stdlib.md is generated from std.flow's doc comments, and up to date ----
cd "$ROOT" || exit 0
if sh stdlib/gendoc.sh > "$T/stdlib.md" && cmp -s "$T/stdlib.md" docs/stdlib.md; then
    pass "docs/stdlib.md is up to date (sh stdlib/gendoc.sh > docs/stdlib.md)"
else fail "docs/stdlib.md" "not what stdlib/gendoc.sh writes: $(diff docs/stdlib.md "$T/stdlib.md" | head -4 | tr '\n' ' ')"; fi
n_doc=$(grep -c '^### `std\.' docs/stdlib.md)
if [ "$n_doc" = "$(grep -c '^task ' stdlib/std.flow)" ] &&
    awk '/^task / { if (prev !~ /^# /) { print; bad = 1 } } { prev = $0 } END { exit bad }' stdlib/std.flow > /dev/null; then
    pass "every std task has a doc comment and a section in docs/stdlib.md"
else fail "doc comments" "$n_doc documented; undocumented: $(awk '/^task / && prev !~ /^# / { print $2 } { prev = $0 }' stdlib/std.flow)"; fi
