"""lspclient.py — a small Language Server Protocol client for the tests and the bench.

It starts `flowc lsp` as a child process and speaks JSON-RPC 2.0 framed by
Content-Length headers over its standard input and output. Requests wait for the
response with their id; notifications the server sends meanwhile (diagnostics) are
kept in order, so a test can wait for the diagnostics of one document. Every read has
a deadline: a server that hangs fails the test instead of hanging it.
"""
import json
import os
import select
import subprocess
import time


class LspError(Exception):
    pass


class Client:
    def __init__(self, flowc, args=(), timeout=20.0, env=None):
        self.proc = subprocess.Popen([flowc, "lsp", *args], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        self.timeout = timeout
        self.next_id = 1
        self.buf = b""
        self.notes = []  # notifications not consumed yet

    # ---- framing ----
    def send_raw(self, data: bytes):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def send(self, msg):
        body = json.dumps(msg).encode()
        self.send_raw(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise LspError("no answer from flowc lsp in %.0f s" % self.timeout)
        fd = self.proc.stdout.fileno()
        r, _, _ = select.select([fd], [], [], left)
        if not r:
            raise LspError("no answer from flowc lsp in %.0f s" % self.timeout)
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            raise LspError("flowc lsp closed its output (exit status %s)" % self.proc.poll())
        self.buf += chunk

    def read(self):
        deadline = time.monotonic() + self.timeout
        while b"\r\n\r\n" not in self.buf:
            self._fill(deadline)
        head, rest = self.buf.split(b"\r\n\r\n", 1)
        length = None
        for line in head.split(b"\r\n"):
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                length = int(v)
        if length is None:
            raise LspError("a message without Content-Length: %r" % head)
        while len(rest) < length:
            self.buf = head + b"\r\n\r\n" + rest
            self._fill(deadline)
            head, rest = self.buf.split(b"\r\n\r\n", 1)
        self.buf = rest[length:]
        return json.loads(rest[:length])

    # ---- messages ----
    def request(self, method, params=None):
        mid = self.next_id
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": mid, "method": method, "params": params or {}})
        while True:
            m = self.read()
            if m.get("id") == mid and "method" not in m:
                return m
            self.notes.append(m)

    def notify(self, method, params=None):
        self.send({"jsonrpc": "2.0", "method": method, "params": params or {}})

    def diagnostics(self, uri):
        """The next publishDiagnostics for uri (kept ones first)."""
        while True:
            for i, m in enumerate(self.notes):
                if m.get("method") == "textDocument/publishDiagnostics" and \
                        m["params"]["uri"] == uri:
                    del self.notes[i]
                    return m["params"]["diagnostics"]
            self.notes.append(self.read())

    def initialize(self, root):
        r = self.request("initialize", {"processId": os.getpid(), "rootUri": uri_of(root),
                                        "capabilities": {}})
        self.notify("initialized")
        return r

    def open(self, path, text=None):
        if text is None:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        uri = uri_of(path)
        self.notify("textDocument/didOpen", {"textDocument": {
            "uri": uri, "languageId": "flow", "version": 1, "text": text}})
        return uri

    def change(self, uri, text, version=2):
        self.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": version},
                                               "contentChanges": [{"text": text}]})

    def change_range(self, uri, start, end, text, version=2):
        """An incremental change (the sync the server asks for): replace the text from
        start to end, (line, UTF-16 character) pairs, by text."""
        rng = {"start": {"line": start[0], "character": start[1]},
               "end": {"line": end[0], "character": end[1]}}
        self.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": version},
                                               "contentChanges": [{"range": rng, "text": text}]})

    def at(self, method, uri, line, character, **extra):
        p = {"textDocument": {"uri": uri}, "position": {"line": line, "character": character}}
        p.update(extra)
        return self.request(method, p)

    def close(self):
        """shutdown then exit; returns the exit status"""
        self.request("shutdown")
        self.notify("exit")
        try:
            return self.proc.wait(self.timeout)
        finally:
            self.proc.stdout.close()
            self.proc.stderr.close()
            self.proc.stdin.close()


def uri_of(path):
    from urllib.parse import quote
    return "file://" + quote(os.path.abspath(path))
