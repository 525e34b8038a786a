#!/bin/sh
# flowrun report RUN -o FILE.html [--compare RUN2] (issue 17, item 1;
# docs/observability.md, "Report"): over tests/events/events.flow — a fan-out whose
# instances read and write files (a C task and an sh task per file, a reduce), a
# failing sh task, and a plain fan-out made large enough (5,000 instances, inline) for
# the aggregated Gantt chart; and examples/grouped (a group expanded per file). Checks the page's content (task names, counts, the
# per-task figures, parameters, plan hash, the failure's error, source position and log
# tail, RSS only where measured), that it references no http(s):// address, its size,
# --compare, and the refusals (one line on stderr, exit 2, no file written). Then the
# page in headless Chromium: its DOM holds the task names and what the script wrote
# (it ran), no console message at all (a page with an error is shown to produce one),
# and a screenshot that is not blank (decoded, more than one colour). Chromium is
# skipped under SANITIZED=1 (the rest runs), and said as SKIP when it cannot run here.
# REPORT_PNG=FILE copies the screenshot there (make report-png: docs/report.png).
ROOT=$(pwd)
T=$(mktemp -d /tmp/flow-report-XXXXXX)
trap 'rm -rf "$T"' EXIT
[ -f tests/lib/libstatetasks.so ] || { echo "SKIP report: tests/lib/libstatetasks.so not built (make testlibs)"; exit 0; }
cp tests/events/events.flow tests/lib/libstatetasks.so "$T/" || { echo "FAIL report: setup"; exit 0; }
cd "$T" || exit 0
"$FLOWC" events.flow -o events.plan 2> flowc.err || { echo "FAIL report: flowc"; cat flowc.err; exit 0; }
ST="$T/st"
echo "alpha beta" > a.txt
echo "gamma" > b.txt
run() { "$FLOWRUN" events.plan --progress none --state "$ST" "$@" > /dev/null 2>> "$T/stderr"; }
report() { "$FLOWRUN" report "$@" --state "$ST"; }
ok() { if [ "$2" = 0 ]; then echo "PASS report: $1"; else echo "FAIL report: $1${3:+: $3}"; fi; }
has() { # name file text...: every text is in the file
    n=$1 f=$2; shift 2
    for t in "$@"; do
        grep -qF -- "$t" "$f" || { echo "FAIL report: $n: '$t' not in $f"; return; }
    done
    echo "PASS report: $n"
}
expect() {
    if [ "$2" = "$3" ]; then echo "PASS report: $1"; else echo "FAIL report: $1: want '$2', got '$3'"; fi
}

run --flow story --param a=a.txt --param b=b.txt --executor process   # run 1
run --flow bad --param a=a.txt                                        # run 2 (fails)
run --flow many --param n=5000 --max-map 5000 --executor inline -j 2  # run 3
echo "gamma delta" > b.txt
run --flow story --param a=a.txt --param b=b.txt --executor process   # run 4: b changed
expect "four runs recorded" 4 "$("$FLOWRUN" runs --json --state "$ST" | grep -c '"id":')"

# cpu_of FILE BINDING: the task CPU cell of that binding's row in the per-task table
cpu_of() {
    python3 -c 'import html, re, sys
t = open(sys.argv[1]).read()
t = t[t.index("id=\"tasks\""):]
t = t[:t.index("</table>")]
rows = [[html.unescape(re.sub("<[^>]+>", "", c)) for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", r, re.S)]
        for r in re.findall(r"<tr>(.*?)</tr>", t, re.S)]
col = rows[0].index("task CPU")
print(" ".join(r[col] for r in rows[1:] if r[0] == sys.argv[2]))' "$@" 2>&1
}

# ---- a run that succeeded ----
report 1 -o r1.html 2> err1
ok "report of run 1: exit 0, nothing on stderr" "$?$(cat err1)"
has "the run's facts" r1.html "Run 1: story" "succeeded" '{&quot;a&quot;:&quot;a.txt&quot;,&quot;b&quot;:&quot;b.txt&quot;}' \
    "prod" "- (not a scheduled run)" "flowrun version" "0.1.0" "$T/events.plan"
expect "the plan hash is the plan file's SHA-256" 1 \
    "$(grep -c "<td>$(sha256sum events.plan | cut -c1-64)</td>" r1.html)"
has "the graph: bindings named as the instances, their tasks, counts" r1.html \
    '>firsts [ ]</text>' '>loud [ ]</text>' '>length_of [ ]</text>' '>total</text>' \
    'task head &middot; 2' 'task shout &middot; 2' '2 done &middot; 0 cached'
expect "the graph: three arrows (firsts -> loud -> length_of -> total)" 3 \
    "$(grep -c 'marker-end="url(#arr)"' r1.html)"
expect "the graph: the three mapped bindings drawn as stacks" 6 \
    "$(sed -n '/id="graph"/,/<\/section>/p' r1.html | grep -o '<rect x="[0-9]*" y="[0-9]*" width="230" height="62" rx="6" fill="#ffffff" stroke="#7d8798"/>' | wc -l)"
has "per task: instances, cache hits, p50/p95/max, peak RSS, retries, source" r1.html \
    '<th class="n">p50</th><th class="n">p95</th><th class="n">max</th>' \
    '<th class="n">peak RSS</th><th class="n">task CPU</th><th class="n">retries</th>' 'events.flow:14:' 'events.flow:15:'
expect "per task: peak RSS measured under the process executor (4 tasks)" 4 \
    "$(sed -n '/id="tasks"/,/<\/section>/p' r1.html | grep -c '<td class="n">[0-9.]* [KMG]i\?B</td>')"
expect "per task: an sh task's CPU is its commands' own (wait4), exact" "yes" \
    "$(cpu_of r1.html loud | grep -q '^[0-9.]* [mµ]\?s$' && echo yes || cpu_of r1.html loud)"
expect "Gantt: one bar per instance that ran (7), lanes by worker pid" "7 yes" \
    "$(grep -c 'class="bar"' r1.html) $(grep -q '>worker pid [0-9]*</text>' r1.html && echo yes)"
expect "no failure" 1 "$(grep -c 'No instance failed' r1.html)"
expect "run 1: no http(s):// reference" 0 "$(grep -ciE 'https?://' r1.html)"
sz=$(wc -c < r1.html)
ok "run 1's page is small ($sz bytes < 100,000)" "$([ "$sz" -lt 100000 ]; echo $?)"

# ---- a run that failed ----
report 2 -o r2.html 2> err2
ok "report of the failed run: exit 0" "$?$(cat err2)"
has "the failure: instance, task, source position, error, log tail" r2.html \
    "Failures (1)" "<b>broken</b> (task broken) at events.flow:19:12, 1 attempt" \
    '<pre class="error">command exited with status 3: broken input</pre>' \
    '<pre class="log">broken input' "st/logs/2/broken.log"
has "the run's error and state" r2.html 'class="state-failed"' "a task failed"
expect "the failed card and bar are marked" "1 1" \
    "$(grep -c '1 failed</tspan>' r2.html) $(grep -c 'class="bar"[^>]*fill="#c62828"' r2.html)"

# ---- a large run: aggregated, inline ----
report 3 -o r3.html 2> err3
ok "report of a 5,000-instance run: exit 0" "$?$(cat err3)"
has "aggregated: one band per binding, with durations' histograms" r3.html \
    "too many to draw one by one" 'class="band"' '<td class="n">5,000</td>' "tenfold (5,000)"
expect "aggregated: no per-instance bar" 0 "$(grep -c 'class="bar"' r3.html)"
has "inline: RSS is not the task's, and why (task CPU instead)" r3.html "n/a *" \
    "the task CPU column is the figure per task there"
expect "inline: tenfold's task CPU, estimated from a sample of its 5,000 instances" "yes" \
    "$(cpu_of r3.html tenfold | grep -q '^~[0-9.]* [mµ]\?s$' && echo yes || cpu_of r3.html tenfold)"
sz=$(wc -c < r3.html)
ok "aggregated page is small ($sz bytes < 60,000)" "$([ "$sz" -lt 60000 ]; echo $?)"

# ---- --compare ----
report 4 -o r4.html --compare 1 2> err4
ok "--compare: exit 0" "$?$(cat err4)"
has "--compare: per task, counts and time of run 1 -> run 4" r4.html "Compared with run 1" \
    "<i>run 1 &rarr; run 4</i>" "<th class=\"n\">time (sum)</th>"
# firsts: 2 ran in run 1; in run 4 a.txt's instance is served and b.txt's runs again
expect "--compare: firsts went from 2 ran, 0 cached to 1 and 1" 1 \
    "$(grep -c '<tr><td>firsts</td><td>head</td><td class="n">2 &rarr; 2</td><td class="n">2 &rarr; 1 <span class="down">(-1)</span></td><td class="n">0 &rarr; 1 <span class="up">(+1)</span></td>' r4.html)"
report 4 -o r5.html --compare 3 2> /dev/null
has "--compare with another flow: bindings of each, said" r5.html "Not the same flow" \
    "new in this run" "not in this run"

# ---- a group (examples/grouped: a group expanded per file, then a reduce) ----
if [ -f "$ROOT/examples/grouped/libgrouped.so" ]; then
    mkdir gdata && for i in 1 2 3; do echo "some words $i and Some" > gdata/f$i.txt; done
    cp "$ROOT/examples/grouped/grouped.flow" "$ROOT/examples/grouped/libgrouped.so" .
    "$FLOWC" grouped.flow -o grouped.plan 2>> "$T/stderr" &&
        "$FLOWRUN" grouped.plan --param root=gdata --progress none --state "$T/gst" > /dev/null 2>> "$T/stderr"
    "$FLOWRUN" report last -o rg.html --state "$T/gst" 2> errg
    ok "a run with a group: exit 0" "$?$(cat errg)"
    has "a group: framed, its bindings named as their instances (counts/words), stacks" rg.html \
        '>group counts</text>' '>counts/words [ ]</text>' '>counts/unique [ ]</text>' \
        '>counts/count_lines [ ]</text>' 'task normalize &middot; 3'
    expect "a group: arrows words -> unique -> count_lines -> total" 3 \
        "$(grep -c 'marker-end="url(#arr)"' rg.html)"
else
    echo "SKIP report: a group (skipped: examples/grouped/libgrouped.so is not built: make)"
fi

# ---- no http(s):// anywhere ----
expect "no page references http:// or https://" 0 "$(cat r*.html | grep -ciE 'https?://')"

# ---- --config (its state folder) and --env (the run's own) ----
mkdir cfg && printf 'state: ../st\n' > cfg/flow.yaml
"$FLOWRUN" report 1 -o cfg.html --config cfg/flow.yaml --env prod 2> errcfg
ok "--config FILE gives the state folder, --env prod is run 1's" "$?$(cat errcfg)"
has "--config: the page of run 1" cfg.html "Run 1: story"

# ---- text from the run is escaped (a file name with markup in a parameter and in a log) ----
printf 'hi\n' > 'q<b>&x.txt'
"$FLOWRUN" events.plan --flow bad --param 'a=q<b>&x.txt' --progress none --state "$T/stq" > /dev/null 2>> "$T/stderr"
"$FLOWRUN" report last -o q.html --state "$T/stq" 2> /dev/null
expect "markup in a parameter is escaped, never markup" "1 0" \
    "$(grep -c 'q&lt;b&gt;&amp;x.txt' q.html) $(grep -c 'q<b>' q.html)"

# ---- the run's plan rebuilt since, or gone: said on the page ----
cp events.plan events.plan.kept
echo "# edited" >> events.flow && "$FLOWC" events.flow -o events.plan 2>> "$T/stderr"
report 1 -o rebuilt.html 2> /dev/null
has "a plan rebuilt since the run is said" rebuilt.html "rebuilt since the run"
rm events.plan
report 1 -o gone.html 2> errgone
ok "a plan gone: the page is still made" "$?$(cat errgone)"
has "a plan gone: said, the cards are there, no arrows" gone.html "it cannot be read" \
    '>firsts [ ]</text>' "No arrows: the run's plan cannot be read."
mv events.plan.kept events.plan

# ---- refusals: one line, exit 2, no page ----
refuse() { # name want-stderr-part args...
    n=$1 w=$2; shift 2
    rm -f out.html
    "$FLOWRUN" report "$@" > /dev/null 2> rerr; rc=$?
    lines=$(wc -l < rerr)
    if [ $rc = 2 ] && [ "$lines" = 1 ] && grep -qF -- "$w" rerr && [ ! -e out.html ]; then
        echo "PASS report: refused: $n"
    else
        echo "FAIL report: refused: $n: exit $rc, $lines lines: $(cat rerr)"
    fi
}
refuse "unknown run" "no run 99 in this state directory" 99 -o out.html --state "$ST"
refuse "not a run id" "'abc' is not a run id" abc -o out.html --state "$ST"
refuse "no -o" "-o FILE.html is needed" 1 --state "$ST"
refuse "no RUN" "usage: flowrun report RUN -o FILE.html" -o out.html --state "$ST"
refuse "unknown option" "unknown option '--bogus'" 1 -o out.html --bogus --state "$ST"
refuse "--compare an unknown run" "no run 77 in this state directory" 1 -o out.html --compare 77 --state "$ST"
refuse "a run of another environment" "run 1 belongs to environment prod, not test" 1 -o out.html --env test --state "$ST"
refuse "an -o in a missing folder" "-o nowhere/out.html: cannot write there" 1 -o nowhere/out.html --state "$ST"
mkdir adir
refuse "an -o that is a folder" "-o adir: a folder" 1 -o adir --state "$ST"
refuse "no state (and none created)" "no state in $T/nost" 1 -o out.html --state "$T/nost"
ok "no state: nothing created" "$([ ! -e "$T/nost" ]; echo $?)"
mkdir bad && head -c 8192 /dev/urandom > bad/state.db
refuse "a state.db that is not one" "is not an SQLite database" 1 -o out.html --state "$T/bad"
# a write that fails midway (the file size limit, SIGXFSZ ignored: EFBIG, as a full disk)
# (a page of 2,000 bars, about 500 KB, against a limit of 200 blocks: above what SQLite
# writes to read the state, below the page)
"$FLOWRUN" events.plan --flow many --param n=2000 --max-map 2000 --executor inline --progress none \
    --state "$T/st2k" > /dev/null 2>> "$T/stderr"
echo "an earlier page" > full.html
(trap '' XFSZ; ulimit -f 200; "$FLOWRUN" report 1 -o full.html --state "$T/st2k" > /dev/null 2> errfull); rc=$?
expect "a write that fails midway: exit 1, one line, the earlier page kept, no temporary file" \
    "1 1 an earlier page 0" \
    "$rc $(grep -c 'flowrun report: writing full.html: File too large' errfull) $(cat full.html) $(ls | grep -c 'full\.html\.')"
echo "an earlier page" > keep.html
report 99 -o keep.html 2> /dev/null
expect "a refused report leaves an existing -o as it was" "an earlier page" "$(cat keep.html)"
expect "no temporary file left beside -o" 0 "$(ls | grep -c '\.html\.')"

# ---- headless Chromium ----
if [ -n "$SANITIZED" ]; then
    echo "SKIP report: chromium (skipped: the sanitized pass runs the browser checks once, in the plain pass)"
    exit 0
fi
command -v chromium > /dev/null 2>&1 || {
    echo "SKIP report: chromium (skipped: chromium is not installed; sh .ci/deps.sh chromium)"; exit 0; }
export HOME="$T/home"; mkdir -p "$HOME"
chrome() { # flags... URL: chromium headless, its own profile, its log on stderr
    timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
        --no-first-run --user-data-dir="$T/profile" --enable-logging=stderr --v=0 "$@"
}
printf '<!DOCTYPE html><p>x</p><script>undefined_function_here();</script>\n' > broken.html
chrome --dump-dom "file://$T/broken.html" > broken.dom 2> broken.log
if ! grep -q '<p>x</p>' broken.dom; then
    echo "SKIP report: chromium (skipped: it does not render here: $(grep -v -e dbus -e '^\s*$' broken.log | tail -1))"
    exit 0
fi
expect "chromium: a page with a script error logs it (the console check sees errors)" 1 \
    "$(grep -c 'CONSOLE.*Uncaught ReferenceError' broken.log)"
for r in r1 r2 r3 r4; do
    chrome --dump-dom "file://$T/$r.html" > $r.dom 2> $r.log
    ok "chromium: $r: no console message" "$(grep -c ':CONSOLE' $r.log | grep -qx 0; echo $?)" \
        "$(grep ':CONSOLE' $r.log | head -2)"
    expect "chromium: $r: the script ran (its hint is in the DOM)" 1 \
        "$(grep -c 'id="zhint" class="note">Wheel or buttons to zoom' $r.dom)"
done
# the zoom: the page with a line of script after it that presses "zoom in" twice
# (the first bar, at the start, leaves the window, and the axis no longer starts at 0),
# then "whole run" (the bar is back, as wide as before)
sed 's#</body></html>#<script>var b=document.querySelector(".bar"),w0=b.getAttribute("width"),z=document.getElementById("zin");z.click();z.click();var r=b.getAttribute("display")+","+document.getElementById("axis").childNodes[1].textContent;document.getElementById("zall").click();r+=","+(b.getAttribute("display")||"shown")+","+(Math.abs(b.getAttribute("width")-w0)<0.05);document.body.setAttribute("data-zoom",r);</script></body></html>#' r1.html > zoom.html
chrome --dump-dom "file://$T/zoom.html" > zoom.dom 2> zoom.log
expect "chromium: zoom in twice hides the first bar and moves the axis; whole run brings it back" \
    "none,no0,shown,true" \
    "$(sed -n 's/.*<body data-zoom="\([^"]*\)".*/\1/p' zoom.dom | sed 's/^none,[1-9][^,]*,/none,no0,/')"
has "chromium: the task names are in the DOM" r1.dom ">firsts [ ]</text>" ">loud [ ]</text>" \
    ">length_of [ ]</text>" "<td>head</td>" "<td>shout</td>" "<td>length_of</td>" "<td>total</td>"
has "chromium: the failure is in the DOM" r2.dom "command exited with status 3: broken input"
chrome --screenshot="$T/r2.png" --window-size=1280,1600 "file://$T/r2.html" > /dev/null 2> shot.log
chrome --screenshot="$T/r1.png" --window-size=1280,1600 "file://$T/r1.html" > /dev/null 2>> shot.log
colours() { python3 - "$1" << 'EOF'
import struct, sys, zlib
d = open(sys.argv[1], 'rb').read()
assert d[:8] == b'\x89PNG\r\n\x1a\n'
pos, idat, w = 8, b'', 0
while pos < len(d):
    n, kind = struct.unpack('>I4s', d[pos:pos + 8])
    body = d[pos + 8:pos + 8 + n]
    if kind == b'IHDR':
        w, h, depth, ctype = struct.unpack('>IIBB', body[:10])
        bpp = {2: 3, 6: 4, 0: 1, 4: 2}[ctype]
    elif kind == b'IDAT':
        idat += body
    pos += 12 + n
raw = zlib.decompress(idat)
stride = w * bpp
seen, prev, i = set(), bytearray(stride), 0
for y in range(h):            # undo the filters, row by row
    f, row = raw[i], bytearray(raw[i + 1:i + 1 + stride]); i += 1 + stride
    for x in range(stride):
        a = row[x - bpp] if x >= bpp else 0
        b, c = prev[x], prev[x - bpp] if x >= bpp else 0
        if f == 1: row[x] = (row[x] + a) & 255
        elif f == 2: row[x] = (row[x] + b) & 255
        elif f == 3: row[x] = (row[x] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            row[x] = (row[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    if y % 8 == 0:
        for x in range(0, stride, bpp * 4): seen.add(bytes(row[x:x + bpp]))
    prev = row
print(len(seen))
EOF
}
for r in r1 r2; do
    if [ -s $r.png ]; then
        n=$(colours $r.png 2>&1)
        ok "chromium: the screenshot of $r is not blank ($n colours)" \
            "$([ "$n" -gt 10 ] 2> /dev/null; echo $?)"
    else
        echo "FAIL report: chromium: no screenshot of $r: $(grep -v dbus shot.log | tail -1)"
    fi
done
[ -n "$REPORT_PNG" ] && cp r1.png "$ROOT/$REPORT_PNG" && echo "report: screenshot copied to $REPORT_PNG"
exit 0
