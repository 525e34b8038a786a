#!/bin/bash
# completion.sh — run by tests/suites/70-editors.sh (with bash): loads
# editors/completion/flowc and flowrun, sets COMP_WORDS / COMP_CWORD as bash
# would, calls the completion function and checks COMPREPLY. A fake flowrun on
# PATH answers `runs --json`, `show RUN --json` and `inspect PLAN` the way the
# completion expects, or fails like a flowrun without those commands (FAKE=none).
root=$(pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

. "$root/editors/completion/flowc"
. "$root/editors/completion/flowrun"

mkdir -p "$tmp/bin" "$tmp/work/sub"
cat > "$tmp/bin/flowrun" <<'FAKE'
#!/bin/sh
[ "${FAKE:-all}" = none ] && { echo "flowrun: not available in this build yet" >&2; exit 2; }
case "$1 $2 $3" in
    "runs --json ") echo '[{"id":"r2","flow":"wordcount","state":"failed"},{"id":"r1","flow":"wordcount","state":"ok"}]' ;;
    "show r2 --json")
        [ "$FAKE" = inspect ] && exit 2
        echo '[{"task":"list_files","index":-1,"state":"ok"},{"task":"count_words[0]","index":0},{"task":"count_words","index":1}]' ;;
    "inspect b.plan ")
        printf 'plan b.plan: format 1, 2639 bytes\nflows:\n  wordcount(root: dir = "data") -> int  (4 nodes)\n'
        printf '  wordstats(root: dir = "data") -> Summary  (4 nodes)\ntasks:\n  count_words(file: path) -> int  [c wc:count_words]\n'
        printf '  total_of(counts: [int]) -> int  [c wc:total_of]\nlibraries:\n  wc = "libwc.so"  sha256 2350e94e\n' ;;
    *) exit 2 ;;
esac
FAKE
chmod +x "$tmp/bin/flowrun"
PATH=$tmp/bin:$PATH
cd "$tmp/work"
: > a.flow; : > b.plan; : > params.yaml; : > notes.txt
printf 'library x = "libx.so"\ntask alpha(a: int) -> int = x.alpha\n  task beta(b: int) = x.beta\n' > a.flow

# check NAME EXPECTED WORDS...: complete the last word of WORDS; COMPREPLY,
# sorted and space-joined, must equal EXPECTED
check() {
    local name=$1 want=$2 fn got
    shift 2
    COMP_WORDS=("$@")
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMP_LINE="$*"
    COMP_POINT=${#COMP_LINE}
    case $1 in flowc) fn=_flowc ;; *) fn=_flowrun ;; esac
    COMPREPLY=()
    $fn "$1" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}" 2>/dev/null
    got=$(printf '%s\n' "${COMPREPLY[@]}" | sed '/^$/d' | sort | tr '\n' ' ' | sed 's/ $//')
    if [[ $got == "$want" ]]; then echo "PASS completion:$name"
    else echo "FAIL completion:$name: completing '$*' gave '$got', want '$want'"; fi
}

check flowc-options "--check --emit= --help --version" flowc --
check flowc-emit-formats "--emit=json" flowc --emit=j
check flowc-emit-word "dot" flowc --emit d
check flowc-emit-split "json" flowc --emit = j
check flowc-emit-split-empty "ast c dot json plan yaml" flowc --emit =
check flowc-sources "a.flow fmt lsp sub" flowc ""
check flowc-sources-after-first "a.flow sub" flowc a.flow ""
check flowc-fmt-files "a.flow sub" flowc fmt ""
check flowc-fmt-options "--check --help" flowc fmt --
check flowc-lsp-options "--help -I" flowc lsp ""
check flowc-output "a.flow b.plan notes.txt params.yaml sub" flowc a.flow -o ""
check flowrun-first "b.plan backfill clear fsck gc inspect logs report resume run runs serve show sub verify why" flowrun ""
check flowrun-serve-plans "b.plan sub" flowrun serve b.plan ""
check flowrun-serve-options "--debounce" flowrun serve b.plan --de
check flowrun-serve-no-catchup "--no-catchup" flowrun serve b.plan --no
check flowrun-serve-executor "inline process" flowrun serve b.plan --executor ""
check flowrun-serve-after-debounce "--env --events --executor" flowrun serve b.plan --debounce 5s --e
check flowrun-run-dry-run "--dry-run" flowrun b.plan --dr
check flowrun-subcommand "resume" flowrun res
check flowrun-global-options "--help --version" flowrun --
check flowrun-executor "process" flowrun b.plan --executor p
check flowrun-schedule "breadth" flowrun b.plan --schedule b
check flowrun-backfill-options "--max-intervals --max-map" flowrun backfill b.plan --max
check flowrun-run-metrics "--max-map --metrics" flowrun b.plan --m
check flowrun-backfill-no-metrics "" flowrun backfill b.plan --me
check flowrun-run-events "--env --events --executor" flowrun b.plan --e
check flowrun-events-file "sub" flowrun b.plan --events ""
check flowrun-backfill-order "newest-first oldest-first" flowrun backfill b.plan --order ""
check flowrun-backfill-flow-names "wordcount wordstats" flowrun backfill b.plan --from 2026-01-01 --flow ""
check flowrun-progress "auto none plain" flowrun run b.plan --progress ""
check flowrun-params-file "params.yaml sub" flowrun b.plan --params ""
check flowrun-executor-all "inline kubernetes process slurm" flowrun b.plan --executor ""
check flowrun-env "prod" flowrun b.plan --env ""
check flowrun-inspect-plan "b.plan sub" flowrun inspect ""
check flowrun-show-json "--json" flowrun show r1 --
check flowrun-param-value "params.yaml" flowrun b.plan --param root = pa
check flowrun-param-value-empty "a.flow b.plan notes.txt params.yaml sub" flowrun b.plan --param root =
check flowrun-options-after-param "--env --events --executor" flowrun b.plan --param root = /x --e
check flowrun-param-names "root=" flowrun b.plan --flow wordstats --param r
check flowrun-param-names-many-flows "" flowrun b.plan --param ""
check flowrun-run-ids "r1 r2" flowrun resume ""
check flowrun-flow-names "wordcount wordstats" flowrun b.plan --flow ""
check flowrun-logs-tasks-from-show "count_words list_files" flowrun logs r2 ""
FAKE=inspect check flowrun-clear-tasks-from-inspect "count_words" flowrun clear r2 co
FAKE=inspect check flowrun-clear-all-tasks-from-inspect "count_words total_of" flowrun clear r2 ""
check flowrun-why-tasks-from-show "count_words list_files" flowrun why r2 ""
check flowrun-why-json "--json" flowrun why r2 count_words --
check flowrun-report-run-ids "r1 r2" flowrun report ""
check flowrun-report-options "--compare --config --env --state" flowrun report r2 --
check flowrun-report-o "-o" flowrun report r2 -o
check flowrun-report-compare-run-ids "r1 r2" flowrun report r2 -o x.html --compare ""
check flowrun-report-output-file "sub" flowrun report r2 -o ""
FAKE=none check flowrun-tasks-from-sources "alpha beta" flowrun logs r9 ""
FAKE=none check flowrun-no-runs-tolerated "" flowrun resume ""

# with the real flowc and flowrun, when they can compile the word-count example
if [[ -x $FLOWC && -x $FLOWRUN ]] &&
    "$FLOWC" "$root/examples/wordcount/wordcount.flow" -o "$tmp/work/wc.plan" 2>/dev/null &&
    "$FLOWRUN" inspect "$tmp/work/wc.plan" > /dev/null 2>&1; then
    ln -s "$FLOWRUN" "$tmp/bin/real-flowrun"
    complete -F _flowrun real-flowrun
    check real-flowrun-flow-names "wordcount wordstats" real-flowrun wc.plan --flow ""
    check real-flowrun-param-names "root=" real-flowrun wc.plan --flow wordcount --param ""
    rm -f b.plan
    check real-flowrun-task-names "count_words summarize total_of" real-flowrun logs 1 ""
fi
