#!/bin/sh
# Checker: every program of tests/plans and examples/ compiles, and the plan reader
# (flowrun inspect, which bounds-checks every index and the dependency order)
# accepts the plan flowc wrote.
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for f in tests/plans/*.flow examples/*/*.flow; do
    [ -f "$f" ] || continue
    if ! "$FLOWC" -o "$tmp/p.plan" "$f" 2> "$tmp/err"; then
        echo "FAIL checker-plan $f: flowc failed"; grep error "$tmp/err" | head -3; continue
    fi
    if "$FLOWRUN" inspect "$tmp/p.plan" > /dev/null 2> "$tmp/err"; then echo "PASS checker-plan $f"
    else echo "FAIL checker-plan $f: $(head -c 300 "$tmp/err")"; fi
done
