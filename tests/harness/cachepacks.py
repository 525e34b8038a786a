#!/usr/bin/env python3
"""cachepacks.py — read and damage the cache packs of a state.db, for tests and bench.

The cache is kept in cache_pack(id, tag, n, body) rows (runtime/recorder/state.c,
"cache packs"; docs/state.md). This is the one Python reader of that format:

  cachepacks.py count DB        distinct live keys (a dropped entry's key is zeros)
  cachepacks.py dump DB         "tag key_hex result_hex|-" per live entry, oldest pack
                                first, each pack in production order
  cachepacks.py bytes DB        bytes on disk per entry besides the result (dbstat:
                                every page of cache_pack and its index, less the
                                results' bytes), with the issue 13 budget (96)
  cachepacks.py empty DB K      the K-th live entry (dump's order) gets an empty
                                result, its pack re-encoded: a result that cannot
                                be decoded
"""
import sqlite3
import struct
import sys

FIXED = 49  # key 32, identity 8, environment 4, run 4, k 1


def varint(b, at):
    v = sh = 0
    while True:
        x = b[at]
        at += 1
        v |= (x & 0x7F) << sh
        sh += 7
        if x < 0x80:
            return v, at


def put_varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def entries(body):
    """(key, fixed_rest, inputs, result or None) of each entry, in production order."""
    n = struct.unpack_from("<I", body, 4)[0]
    at = 8 + 8 * n
    for _ in range(n):
        k = body[at + 48]
        key, rest, inputs = body[at:at + 32], body[at + 32:at + FIXED], body[at + FIXED:at + FIXED + 8 * k]
        at += FIXED + 8 * k
        l, at = varint(body, at)
        res = None if l == 0 else bytes(body[at:at + l - 1])
        at += l - 1 if l else 0
        yield bytes(key), bytes(rest), bytes(inputs), res


def encode(ents):
    head = 8 + 8 * len(ents)
    slots, data = [], bytearray()
    for key, rest, inputs, res in ents:
        slots.append((int.from_bytes(key[:4], "big"), head + len(data)))
        data += key + rest + inputs + put_varint(0 if res is None else len(res) + 1) + (res or b"")
    slots.sort()
    return b"K\x01\x00\x00" + struct.pack("<I", len(ents)) + b"".join(struct.pack("<II", p, o) for p, o in slots) + bytes(data)


def live(db):
    for pid, tag, body in db.execute("SELECT id, tag, body FROM cache_pack ORDER BY id"):
        for e in entries(body):
            if e[0] != bytes(32):
                yield pid, tag, e


def main():
    cmd, path = sys.argv[1], sys.argv[2]
    db = sqlite3.connect(path)
    if cmd == "count":
        print(len({e[0] for _, _, e in live(db)}))
    elif cmd == "dump":
        for _, tag, (key, _, _, res) in live(db):
            print(tag, key.hex(), "-" if res is None else res.hex())
    elif cmd == "bytes":
        pages = db.execute("SELECT total(pgsize) FROM dbstat WHERE name IN ('cache_pack', 'cache_pack_tag')").fetchone()[0]
        n = res = 0
        for (body,) in db.execute("SELECT body FROM cache_pack"):
            for e in entries(body):
                n += 1
                res += len(e[3] or b"")
        if n:
            v = (pages - res) / n
            print("cache: %d entries, %.0f bytes on disk, %.1f bytes per entry besides the result "
                  "(%.1f with it): target <= 96: %s" % (n, pages, v, pages / n, "ok" if v <= 96 else "MISSED"))
    elif cmd == "empty":
        want = int(sys.argv[3])
        for i, (pid, _, e) in enumerate(live(db)):
            if i == want:
                body = db.execute("SELECT body FROM cache_pack WHERE id=?", (pid,)).fetchone()[0]
                ents = [x if x[0] != e[0] else (x[0], x[1], x[2], b"") for x in entries(body)]
                db.execute("UPDATE cache_pack SET body=? WHERE id=?", (encode(ents), pid))
                db.commit()
                return
        sys.exit("no entry %d" % want)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
