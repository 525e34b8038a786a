#!/bin/sh
# run-example.sh BUILD_DIR — what `make example` runs: the word-count example,
# end to end, saying what it does at each step.
#
#   1. generate 20 text files of random words (examples/wordcount/gen.sh)
#   2. compile examples/wordcount/wordcount.flow into a plan (flowc)
#   3. run the plan over the generated folder (flowrun), print the result,
#      and check it against `wc -w`
#   4. run it again: every instance now comes from the cache
#
# Everything it writes goes under BUILD_DIR/example/ (data, plan, and the
# .flow/ state folder: FLOW_STATE points there).
set -eu
build=${1:-build}
here=$(cd "$(dirname "$0")/.." && pwd)
case "$build" in /*) ;; *) build=$here/$build ;; esac
flowc=$build/bin/flowc
flowrun=$build/bin/flowrun
ex=$here/examples/wordcount
work=$build/example

step() { printf '\n==> %s\n' "$*"; }
show() { printf '    $ %s\n' "$*"; "$@"; }

for tool in "$flowc" "$flowrun"; do
    [ -x "$tool" ] || { echo "run-example: $tool is missing (run make first)" >&2; exit 2; }
done
[ -f "$ex/libwc.so" ] || { echo "run-example: $ex/libwc.so is missing (run make testlibs)" >&2; exit 2; }

rm -rf "$work"
mkdir -p "$work"
data=$work/data
plan=$work/wordcount.plan

step "1. Generate the data: 20 text files of random words"
show sh "$ex/gen.sh" "$data" 20 2000

step "2. Compile the pipeline (examples/wordcount/wordcount.flow)"
sed -n '/^task/,/^}/p' "$ex/wordcount.flow" | sed 's/^/    | /'
show "$flowc" "$ex/wordcount.flow" -o "$plan"

step "3. Run it: list the files, count each one's words (one instance per file), add up"
# The plan finds libwc.so relative to itself; FLOW_LIBRARY_PATH is the fallback.
FLOW_LIBRARY_PATH=$ex${FLOW_LIBRARY_PATH:+:$FLOW_LIBRARY_PATH}
FLOW_STATE=$work/.flow       # runs, store and logs of this example
export FLOW_LIBRARY_PATH FLOW_STATE
cd "$work"
rc=0
printf '    $ %s\n' "flowrun $plan --flow wordcount --param root=$data"
result=$("$flowrun" "$plan" --flow wordcount --param "root=$data") || rc=$?
if [ "$rc" != 0 ]; then
    echo "run-example: flowrun exited with status $rc" >&2
    exit "$rc"
fi
expected=$(cat "$data"/*.txt | wc -w | tr -d ' ')
echo "    result: $result words (wc -w says $expected)"
if [ "$result" != "$expected" ]; then
    echo "run-example: the result differs from wc -w" >&2
    exit 1
fi

step "4. Run it again: nothing changed, so every instance comes from the cache"
result2=$("$flowrun" "$plan" --flow wordcount --param "root=$data")
echo "    result: $result2 words"

step "Done. Try next:"
cat <<EOT
    cd $work && $flowrun runs          # the history of these runs
    $flowrun $plan --flow wordstats --param root=$data
    less docs/examples.md              # the other examples
EOT
