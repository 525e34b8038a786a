#!/usr/bin/env python3
"""plan_patch.py — rewrite one string of a compiled plan and re-seal its checksum.

    python3 tests/harness/plan_patch.py IN.plan OLD NEW OUT.plan

Builds hostile plans for the tests from real ones: the string OLD (a whole
NUL-terminated entry of the plan's string blob, e.g. a task name) is replaced in
place by NEW, which must have the same length so no offset moves, and the SHA-256
at header offset 24 (docs/plan-format.md: computed over the whole file with those
32 bytes zeroed) is recomputed, so the result passes the envelope checks and only
the validator can refuse it.
"""
import hashlib
import sys


def main():
    if len(sys.argv) != 5:
        sys.exit("usage: plan_patch.py IN OLD NEW OUT")
    src, old, new, dst = sys.argv[1], sys.argv[2].encode(), sys.argv[3].encode(), sys.argv[4]
    if len(old) != len(new):
        sys.exit("plan_patch.py: OLD and NEW must have the same length")
    data = bytearray(open(src, "rb").read())
    at = data.find(b"\0" + old + b"\0")
    if at < 0:
        sys.exit("plan_patch.py: %s holds no string %r" % (src, old.decode()))
    data[at + 1:at + 1 + len(new)] = new
    data[24:56] = bytes(32)
    data[24:56] = hashlib.sha256(bytes(data)).digest()
    open(dst, "wb").write(bytes(data))


main()
