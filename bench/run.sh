#!/bin/sh
# run.sh — `make bench`: runs every other bench/*.sh in name order (startup.sh among them:
# flowrun start-up against make -q) and prints their output. compare.sh runs only when
# BENCH_BEFORE names a build to compare with (make bench BENCH_BEFORE=/path/to/before/build);
# otherwise it says it is skipped.
here=$(dirname "$0")
status=0
for b in "$here"/*.sh; do
    [ "$(basename "$b")" = run.sh ] && continue
    echo "== $(basename "$b" .sh)"
    sh "$b" || status=1
done
exit $status
