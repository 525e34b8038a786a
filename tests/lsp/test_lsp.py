#!/usr/bin/env python3
"""test_lsp.py — drives `flowc lsp` over JSON-RPC and checks every method it serves.

    python3 tests/lsp/test_lsp.py FLOWC TESTLIB_DIR

A program importing another file and binding a C task (tests/lib/libchk.so) is
opened; then, one check each: initialize's capabilities; diagnostics (none, then one
with its hint after an edit, its column in UTF-16 units after non-ASCII text, one in an
imported file on the import line and on that file, cleared when fixed); hover (a
name's type, a C task's C signature, an imported sh task, a .partial); definition
(a let, a task in an imported file); completion (names in scope, an import's
declarations, task options, the parameters of .partial/.expand); document symbols;
rename of a let (and its refusal for a task); shutdown and exit. Then malformed
input on fresh servers: a request before initialize, a bad header, bad JSON, an
unknown method (each answered, the server still serving), a huge Content-Length and
random bytes (a clean exit). Prints PASS/FAIL lines; exit status 1 if any failed.
"""
import json
import os
import random
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lspclient import Client, LspError, uri_of  # noqa: E402

FLOWC = os.path.abspath(sys.argv[1])
LIBDIR = os.path.abspath(sys.argv[2])
failed = 0


def check(name, ok, detail=""):
    global failed
    if ok:
        print("PASS lsp: " + name)
    else:
        failed += 1
        print("FAIL lsp: %s: %s" % (name, detail))


def utf16(s):
    return len(s.encode("utf-16-le")) // 2


def find(text, needle, nth=0):
    """(line, UTF-16 character) of the nth occurrence of needle"""
    idx = -1
    for _ in range(nth + 1):
        idx = text.index(needle, idx + 1)
    line = text.count("\n", 0, idx)
    start = text.rfind("\n", 0, idx) + 1
    return line, utf16(text[start:idx])


T = tempfile.mkdtemp(prefix="flow-lsp-")
MAIN = os.path.join(T, "main.flow")
COMMON = os.path.join(T, "common.flow")
BROKEN = os.path.join(T, "broken.flow")
with open(COMMON, "w") as f:
    f.write('# shared\ntask twice(x: int) -> int = sh "expr {x} + {x}"\n')
with open(BROKEN, "w") as f:
    f.write('task bad(x: int) -> int = sh "echo {y}"\n')

GOOD = """import "common.flow"
library chk = "%s/libchk.so"
task add(a: int, b: int) -> int = chk.add
task greet(name: str) -> str = sh "echo hello {name}" with {retries: 1}
type Pair = {a: int, b: int}
task pick(p: Pair) -> int = chk.max_of
flow main(n: int = 2) -> int {
    let x = add(n, 3)
    let y = common.twice(x)
    let z = add.partial(b = 1)
    let zs = z.expand(a = [x, y])
    return add(x, y)
}
""" % LIBDIR


def run_main():
    c = Client(FLOWC)
    r = c.initialize(T)
    caps = r.get("result", {}).get("capabilities", {})
    check("initialize: capabilities", all(caps.get(k) for k in (
        "hoverProvider", "definitionProvider", "completionProvider", "documentSymbolProvider",
        "renameProvider", "textDocumentSync")), json.dumps(r))
    check("initialize: incremental text sync", caps.get("textDocumentSync", {}).get("change") == 2,
          json.dumps(caps.get("textDocumentSync")))

    # ---- diagnostics ----
    uri = c.open(MAIN, GOOD)
    d = c.diagnostics(uri)
    check("diagnostics: a correct program has none", d == [], json.dumps(d))

    bad = GOOD.replace("    return add(x, y)", '    let u = [greet("é😀"), ad]\n    return add(x, y)')
    c.change(uri, bad, 2)
    d = c.diagnostics(uri)
    want = find(bad, "ad]")
    ok = len(d) >= 1 and d[0]["range"]["start"] == {"line": want[0], "character": want[1]} \
        and "unknown name 'ad'" in d[0]["message"] and "hint: did you mean 'add'?" in d[0]["message"] \
        and d[0]["severity"] == 1 and d[0]["range"]["end"]["character"] == want[1] + 2
    check("diagnostics: after an edit, with the hint, in UTF-16 columns", ok,
          "want %s, got %s" % (want, json.dumps(d)))

    # incremental sync (what the server asks editors for): ranges in UTF-16 columns,
    # after a 2-unit character on the same line
    c.change_range(uri, want, (want[0], want[1] + 2), 'greet("x")', 21)
    fixed = bad.replace("ad]", 'greet("x")]')
    d = c.diagnostics(uri)
    check("incremental change: the range replaced, the error gone",
          not any("unknown name" in x["message"] for x in d), json.dumps(d))
    at = find(fixed, '")]')
    c.change_range(uri, (at[0], at[1] + 2), (at[0], at[1] + 2), ", zz", 22)
    d = c.diagnostics(uri)
    want2 = find(fixed.replace('greet("x")]', 'greet("x"), zz]'), "zz]")
    check("incremental change: an insertion, its error at the right UTF-16 column",
          len(d) >= 1 and d[0]["range"]["start"] == {"line": want2[0], "character": want2[1]}
          and "unknown name 'zz'" in d[0]["message"], "want %s, got %s" % (want2, json.dumps(d)))

    c.change(uri, 'import "broken.flow"\n' + GOOD, 3)
    d = c.diagnostics(uri)
    theirs = c.diagnostics(uri_of(BROKEN))
    ok = any(x["range"]["start"]["line"] == 0 and "broken.flow:1:" in x["message"] for x in d)
    check("diagnostics: an error in an imported file, on the import line", ok, json.dumps(d))
    check("diagnostics: ... and on the imported file itself",
          len(theirs) == 1 and theirs[0]["range"]["start"]["line"] == 0, json.dumps(theirs))
    c.change(uri, GOOD, 4)
    d = c.diagnostics(uri)
    cleared = c.diagnostics(uri_of(BROKEN))
    check("diagnostics: fixed, and the imported file's cleared", d == [] and cleared == [],
          json.dumps([d, cleared]))

    # a burst of changes (one a keystroke): the diagnostics that come last are the last text's
    for i, t in enumerate([GOOD.replace("return add(x, y)", "return add(x, y" + ")" * k) for k in range(4)] + [bad]):
        c.change(uri, t, 100 + i)
    c.at("textDocument/hover", uri, 0, 0)  # answered after the changes were checked
    last = None
    while True:
        pending = [m for m in c.notes if m.get("method") == "textDocument/publishDiagnostics"
                   and m["params"]["uri"] == uri]
        if not pending:
            break
        last = c.diagnostics(uri)
    check("diagnostics: a burst of changes ends with the last text's", last is not None and len(last) == 1 and
          "unknown name 'ad'" in last[0]["message"], json.dumps(last))

    # an imported file open in the editor: its unsaved text counts, and its importers follow it
    cu = c.open(COMMON)
    c.diagnostics(cu)
    c.change(cu, open(COMMON).read().replace("twice", "thrice"), 2)
    c.diagnostics(cu)
    d = c.diagnostics(uri)
    check("diagnostics: an edit of an open imported file re-checks its importer, on the unsaved text",
          any("declares no 'twice'" in x["message"] for x in d), json.dumps(d))
    c.notify("textDocument/didClose", {"textDocument": {"uri": cu}})
    c.diagnostics(cu)
    d = c.diagnostics(uri)
    check("diagnostics: ... closed unsaved, the file on disk again",  # (the burst's text: one error)
          len(d) == 1 and "unknown name 'ad'" in d[0]["message"], json.dumps(d))

    syn = GOOD.replace("let y = common.twice(x)", "let y = common.twice(x")
    c.change(uri, syn, 5)
    d = c.diagnostics(uri)
    check("diagnostics: a syntax error", len(d) >= 1 and d[0]["severity"] == 1, json.dumps(d))
    r = c.at("textDocument/rename", uri, *find(syn, "x = add"), newName="xx")
    check("rename: refused while the text does not parse", "syntax error" in r.get("error", {}).get("message", ""),
          json.dumps(r))
    r = c.request("textDocument/documentSymbol", {"textDocument": {"uri": uri}})["result"]
    check("documentSymbol: the last text that parsed, while this one does not",
          [s["name"] for s in r][-1:] == ["main"], json.dumps(r))
    c.change(uri, GOOD, 6)
    c.diagnostics(uri)

    # ---- hover ----
    def hover(needle, nth=0, off=0):
        ln, ch = find(GOOD, needle, nth)
        r = c.at("textDocument/hover", uri, ln, ch + off).get("result")
        return r["contents"]["value"] if r else ""

    h = hover("add(x, y)", 0, 4)  # the x of `return add(x, y)`
    check("hover: a name's type", "x: int" in h, h)
    h = hover("add(x, y)")
    check("hover: a C task's signature and C function",
          "task 'add' takes (a: int, b: int) -> int" in h and "C: int64_t add(int64_t a, int64_t b)" in h, h)
    h = hover("twice(x)")
    check("hover: a task of an imported file", "sh task 'common.twice' takes (x: int) -> int" in h, h)
    h = hover("z = add.partial")
    check("hover: a .partial", "1 of its parameters bound" in h, h)
    h = hover("zs = ")
    check("hover: an expand's list", "zs: [int]" in h, h)
    h = hover("main(")
    check("hover: a flow", "flow 'main' takes (n: int = 2) -> int" in h, h)
    ln, _ = find(GOOD, "# shared") if "# shared" in GOOD else (0, 0)
    r = c.at("textDocument/hover", uri, 0, 0)
    check("hover: nothing there is null", r.get("result") is None and "error" not in r, json.dumps(r))

    # a long default of non-ASCII text (cut in the signature)
    t = GOOD.replace('task greet(name: str)', 'task greet(name: str = "%s")' % ("é" * 80))
    c.change(uri, t, 20)
    d = c.diagnostics(uri)
    ln, ch = find(t, "greet(name")
    r = c.at("textDocument/hover", uri, ln, ch)
    h = (r.get("result") or {}).get("contents", {}).get("value", "")
    check("hover: a signature with a long non-ASCII default", "task 'greet' takes (name: str" in h,
          json.dumps(r))
    c.change(uri, GOOD, 21)
    c.diagnostics(uri)

    # combines of the same shape share one formatted text (check_body.c, the hover memo),
    # each with its own name; one of another shape has its own
    t = GOOD.replace("    return add(x, y)", """    let c1 = combine(add, add.partial(b = 1)).expand(a = [x], b = [2])
    let c2 = combine(add, add.partial(b = 1)).expand(a = [y], b = [3])
    let c3 = combine(add.partial(b = 5), add.partial(b = 1)).expand(a = [1])
    return add(x, y)""")
    c.change(uri, t, 22)
    d = c.diagnostics(uri)
    texts = []
    for k in ("c1 = combine", "c2 = combine", "c3 = combine"):
        ln, ch = find(t, k)
        r = c.at("textDocument/hover", uri, ln, ch + 6)
        texts.append((r.get("result") or {}).get("contents", {}).get("value", ""))
    check("hover: combines of one shape, each with its own name",
          not d and texts[0].startswith("```flow\ncombined task 'combine(add,add)' takes (a: int, b: int, "
                                        "add.b: int) -> int\n(1 of its parameters bound") and
          texts[1] == texts[0].replace("'combine(add,add)'", "'combine(add,add)#2'"), json.dumps([d, texts]))
    check("hover: a combine of another shape", "combined task 'combine(add,add)#3'" in texts[2] and
          "(2 of its parameters bound" in texts[2], json.dumps(texts))
    c.change(uri, GOOD, 23)
    c.diagnostics(uri)

    # ---- definition ----
    ln, ch = find(GOOD, "add(x, y)")
    r = c.at("textDocument/definition", uri, ln, ch + 4)["result"]
    want = find(GOOD, "x = add")
    check("definition: a let", r and r["uri"] == uri and r["range"]["start"] == {"line": want[0], "character": want[1]},
          json.dumps(r))
    ln, ch = find(GOOD, "twice(x)")
    r = c.at("textDocument/definition", uri, ln, ch + 1)["result"]
    check("definition: a task in an imported file",
          r and r["uri"] == uri_of(os.path.realpath(COMMON)) and r["range"]["start"] == {"line": 1, "character": 5},
          json.dumps(r))

    h = hover("Pair) -> int")
    check("hover: a declared type", "type Pair = {a: int, b: int}" in h, h)
    ln, ch = find(GOOD, "Pair) -> int")
    r = c.at("textDocument/definition", uri, ln, ch)["result"]
    want = find(GOOD, "Pair = {")
    check("definition: a type", r and r["range"]["start"] == {"line": want[0], "character": want[1]}, json.dumps(r))
    ln, ch = find(GOOD, "chk.add")
    r = c.at("textDocument/definition", uri, ln, ch)["result"]
    want = find(GOOD, "chk = ")
    check("definition: a library", r and r["range"]["start"] == {"line": want[0], "character": want[1]}, json.dumps(r))

    # ---- completion ----
    def labels(text, needle, off=None):
        c.change(uri, text, 10)
        c.diagnostics(uri)
        ln, ch = find(text, needle)
        r = c.at("textDocument/completion", uri, ln, ch + (len(needle) if off is None else off))
        return [i["label"] for i in r.get("result") or []]

    t = GOOD.replace("    return add(x, y)", "    let v = \n    return add(x, y)")
    got = labels(t, "let v = ")
    check("completion: names in scope", all(n in got for n in ("x", "y", "z", "n", "add", "greet", "common", "combine")),
          got)
    t = GOOD.replace("    return add(x, y)", "    let v = common.\n    return add(x, y)")
    got = labels(t, "common.")
    check("completion: an import's declarations", "twice" in got, got)
    t = GOOD.replace("with {retries: 1}", "with {retries: 1, }")
    got = labels(t, "retries: 1, ")
    check("completion: task options", all(n in got for n in ("timeout", "cache", "version", "memory")), got)
    t = GOOD.replace("add.partial(b = 1)", "add.partial(")
    got = labels(t, "add.partial(")
    check("completion: parameters of .partial", got[:2] == ["a", "b"], got)
    t = GOOD.replace("z.expand(a = [x, y])", "common.twice.expand(")
    got = labels(t, "twice.expand(")
    check("completion: parameters of an imported task's .expand", got[:1] == ["x"], got)
    c.change(uri, GOOD, 11)
    c.diagnostics(uri)

    # ---- document symbols ----
    r = c.request("textDocument/documentSymbol", {"textDocument": {"uri": uri}})["result"]
    names = [s["name"] for s in r]
    kids = [k["name"] for s in r if s["name"] == "main" for k in s.get("children", [])]
    check("documentSymbol", names == ["common.flow", "chk", "add", "greet", "Pair", "pick", "main"] and
          kids == ["n", "x", "y", "z", "zs"], json.dumps([names, kids]))

    # ---- rename ----
    ln, ch = find(GOOD, "x = add")
    r = c.at("textDocument/rename", uri, ln, ch, newName="xx")
    edits = r.get("result", {}).get("changes", {}).get(uri, [])
    new = apply(GOOD, edits)
    check("rename: a let and its uses", new == GOOD.replace("let x =", "let xx =")
          .replace("twice(x)", "twice(xx)").replace("[x, y]", "[xx, y]").replace("add(x, y)", "add(xx, y)"),
          json.dumps(edits))
    ln, ch = find(GOOD, "twice(x)")
    r = c.at("textDocument/rename", uri, ln, ch + 7, newName="w")  # from a use
    check("rename: from a use", len(r.get("result", {}).get("changes", {}).get(uri, [])) == 4, json.dumps(r))
    ln, ch = find(GOOD, "add(n, 3)")
    r = c.at("textDocument/rename", uri, ln, ch, newName="plus")
    check("rename: a task is refused", "error" in r, json.dumps(r))
    r = c.at("textDocument/rename", uri, *find(GOOD, "x = add"), newName="9x")
    check("rename: a new name that is no name is refused", "error" in r, json.dumps(r))

    c.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
    d = c.diagnostics(uri)
    check("didClose clears the diagnostics", d == [], json.dumps(d))
    r = c.request("textDocument/hover", {"textDocument": {"uri": uri}, "position": {"line": 0, "character": 0}})
    check("a closed document: null", r.get("result") is None, json.dumps(r))
    rc = c.close()
    check("shutdown and exit: status 0", rc == 0, "status %s: %s" % (rc, c.proc.stderr))


def apply(text, edits):
    lines = text.split("\n")
    def off(p):
        return sum(len(l) + 1 for l in lines[:p["line"]]) + p["character"]  # ASCII here
    for e in sorted(edits, key=lambda e: off(e["range"]["start"]), reverse=True):
        a, b = off(e["range"]["start"]), off(e["range"]["end"])
        text = text[:a] + e["newText"] + text[b:]
    return text


def raw_server():
    return subprocess.Popen([FLOWC, "lsp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def run_malformed():
    c = Client(FLOWC, timeout=10)
    r = c.request("textDocument/hover", {})
    check("a request before initialize: -32002", r.get("error", {}).get("code") == -32002, json.dumps(r))
    c.initialize(T)
    c.send_raw(b"X-Nonsense: 1\r\n\r\n")
    r = c.read()
    check("a header without Content-Length: -32700", r.get("error", {}).get("code") == -32700 and r.get("id") is None,
          json.dumps(r))
    c.send_raw(b"Content-Length: abc\r\n\r\n")
    r = c.read()
    check("a Content-Length that is no number: -32700", r.get("error", {}).get("code") == -32700, json.dumps(r))
    c.send_raw(b"Content-Length: 8\r\n\r\n{\"jsonrp")
    r = c.read()
    check("bad JSON: -32700", r.get("error", {}).get("code") == -32700, json.dumps(r))
    c.send_raw(b"Content-Length: 2\r\n\r\n[]")
    r = c.read()
    check("JSON that is not an object: -32700", r.get("error", {}).get("code") == -32700, json.dumps(r))
    r = c.request("workspace/nonsense", {"x": 1})
    check("an unknown method: -32601", r.get("error", {}).get("code") == -32601, json.dumps(r))
    r = c.request("textDocument/hover", {"textDocument": 7, "position": "x"})
    check("wrong params: null, no crash", "result" in r and r["result"] is None, json.dumps(r))
    c.notify("textDocument/didOpen", {"textDocument": {"uri": 5}})
    c.notify("textDocument/didChange", {"textDocument": {"uri": "file:///nowhere"}, "contentChanges": 3})
    r = c.request("textDocument/completion", {"textDocument": {"uri": "file:///x"}, "position": {"line": -1, "character": 1 << 40}})
    check("still serving after bad input", "result" in r, json.dumps(r))
    c.send_raw(b"Content-Length: 99999999999999\r\n\r\n")
    try:
        rc = c.proc.wait(10)
        err = c.proc.stderr.read().decode(errors="replace")
        check("a huge Content-Length: a clean exit", rc == 1 and "over the limit" in err and
              "Sanitizer" not in err, "status %s: %s" % (rc, err))
    except subprocess.TimeoutExpired:
        c.proc.kill()
        check("a huge Content-Length: a clean exit", False, "it hung")

    # the input ends in the middle of a message; random bytes
    rnd = random.Random(18)
    for name, data in [("the input ending inside a message", b"Content-Length: 50\r\n\r\n{\"a\""),
                       ("a header line without end", b"Content-Length: 5" + b"x" * 10000),
                       ("random bytes", bytes(rnd.randrange(256) for _ in range(20000))),
                       ("random headers", b"".join(b"Content-Length: %d\r\n\r\n%s" % (n, bytes(rnd.randrange(32, 127) for _ in range(n)))
                                                    for n in [rnd.randrange(0, 40) for _ in range(200)]))]:
        p = raw_server()
        try:
            out, err = p.communicate(data, timeout=10)
            err = err.decode(errors="replace")
            check(name + ": a clean exit", p.returncode in (0, 1) and "Sanitizer" not in err,
                  "status %s: %s" % (p.returncode, err[-500:]))
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            check(name + ": a clean exit", False, "it hung")
    p = subprocess.run([FLOWC, "lsp", "--bogus"], capture_output=True, timeout=10)
    check("an unknown argument: usage error", p.returncode == 2 and b"unknown argument" in p.stderr, p.stderr)


def flowc_errors(text):
    """flowc --check's diagnostics of text as (0-based line, 0-based column, message)"""
    path = os.path.join(T, "chunks-check.flow")
    with open(path, "w") as f:
        f.write(text)
    p = subprocess.run([FLOWC, "--check", path], capture_output=True, text=True, timeout=60)
    out = []
    for line in p.stderr.splitlines():
        m = re.match(r"^.*chunks-check\.flow:(\d+):(\d+): (error|warning): (.*)$", line)
        if m:
            out.append((int(m.group(1)) - 1, int(m.group(2)) - 1, m.group(4)))
    return out


def lsp_errors(d):
    return [(x["range"]["start"]["line"], x["range"]["start"]["character"], x["message"].split("\n")[0])
            for x in d]


def run_chunks():
    """A document of many chunks (compiler/lsp.c parses by pieces of some 256 lines):
    its diagnostics, after edits inside a chunk, after a line inserted above every
    chunk, with a syntax error in one chunk, are flowc --check's; hover and definition
    in its last chunk point right."""
    lines = ['library chk = "%s/libchk.so"' % LIBDIR]
    lines += ['task t%d(x: int) -> int = sh "echo {x}"' % k for k in range(400)]
    for k in range(150):
        lines += ["flow f%d(n: int = 1) -> int {" % k, "    let a = t%d(n)" % k,
                  "    let b%d = t%d(a)" % (k, k + 1), "    return t%d(b%d)" % (k + 2, k), "}"]
    text = "\n".join(lines) + "\n"
    path = os.path.join(T, "chunks.flow")
    c = Client(FLOWC)
    c.initialize(T)
    uri = c.open(path, text)
    d = c.diagnostics(uri)
    check("chunks: a %d-line program, no diagnostics" % len(lines), d == [], json.dumps(d)[:300])

    def edit(text, old, new, nth=0, version=[2]):
        a = find(text, old, nth)
        c.change_range(uri, a, (a[0], a[1] + len(old)), new, version[0])
        version[0] += 1
        idx = -1
        for _ in range(nth + 1):
            idx = text.index(old, idx + 1)
        return text[:idx] + new + text[idx + len(old):]

    text = edit(text, "return t142(b140)", "return t142(b139)")  # near the end: an unknown name
    got, want = lsp_errors(c.diagnostics(uri)), flowc_errors(text)
    check("chunks: an edit in a late chunk, flowc's diagnostic", got == want and len(want) == 1,
          "lsp %s, flowc %s" % (got, want))
    text = edit(text, "library chk", "# a line more above every chunk\nlibrary chk")
    got, want = lsp_errors(c.diagnostics(uri)), flowc_errors(text)
    check("chunks: a line inserted at the top moves it down", got == want and len(want) == 1 and
          want[0][0] == find(text, "t142(b139)")[0], "lsp %s, flowc %s" % (got, want))
    text = edit(text, "let a = t60(n)", "let a = t60(n")  # a syntax error in a middle chunk
    got, want = lsp_errors(c.diagnostics(uri)), flowc_errors(text)
    check("chunks: a syntax error in one chunk, flowc's diagnostics", got == want and len(want) >= 1,
          "lsp %s, flowc %s" % (got, want))
    text = edit(text, "let a = t60(n", "let a = t60(n)")
    got, want = lsp_errors(c.diagnostics(uri)), flowc_errors(text)
    check("chunks: fixed, back to the one error", got == want and len(want) == 1,
          "lsp %s, flowc %s" % (got, want))
    at = find(text, "b149 = t150(a)")
    h = json.dumps(c.at("textDocument/hover", uri, at[0], at[1]))
    check("chunks: hover in the last chunk", "b149: int" in h, h)
    at = find(text, "t151(b149)")
    r = c.at("textDocument/definition", uri, at[0], at[1]).get("result")
    want = find(text, "task t151(")
    check("chunks: definition from the last chunk into the first", r and r["range"]["start"] ==
          {"line": want[0], "character": want[1] + 5}, json.dumps(r))
    rc = c.close()  # (sanitized: a chunk leaked or freed twice shows here)
    check("chunks: shutdown and exit: status 0", rc == 0, "status %s: %s" % (rc, c.proc.stderr))


for part in (run_main, run_chunks, run_malformed):
    try:
        part()
    except (LspError, KeyError, TypeError, ValueError, json.JSONDecodeError) as e:
        failed += 1
        print("FAIL lsp: %s stopped: %r" % (part.__name__, e))
sys.exit(1 if failed else 0)
