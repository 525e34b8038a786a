#!/bin/sh
# Editors and the newcomer's tools: Vim, Emacs and VS Code highlighting and
# indentation checked on the example programs, checking with flowc from the
# editors, bash completion, the examples themselves (compiled and run with the
# real flowc and flowrun, and run-example.sh), and the man pages.
#
# One table, editors/test/tokens.txt, names tokens of examples/ and the class
# each must be highlighted as; editors/test/positions.sh turns it into line and
# column numbers, and each editor's probe reports what it sees there:
#   Vim    editors/test/vim-groups.vim   (vim -es: synID, synIDtrans)
#   Emacs  editors/test/emacs-faces.el   (emacs --batch: font-lock-ensure, face)
#   VS Code editors/vscode/test/tokenize.js (vscode-textmate + vscode-oniguruma)
# Missing tools are installed once (Debian packages, npm ci). Not run
# sanitized: nothing here is C.
[ "${SANITIZED:-0}" = 1 ] && exit 0

root=$(pwd)
FLOWC=${FLOWC:-$root/build/bin/flowc}
FLOWRUN=${FLOWRUN:-$root/build/bin/flowrun}
export FLOWC FLOWRUN
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }

# need COMMAND PACKAGE...: when COMMAND is missing, .ci/deps.sh installs it (PACKAGE)
need() {
    cmd=$1
    shift
    command -v "$cmd" >/dev/null 2>&1 || sh .ci/deps.sh "$cmd" >/dev/null 2>&1
    command -v "$cmd" >/dev/null 2>&1
}

sh editors/test/positions.sh examples editors/test/tokens.txt > "$tmp/pos"
if grep -q '^MISSING' "$tmp/pos"; then
    grep '^MISSING' "$tmp/pos" | while IFS='	' read -r _ file ctx class tok; do
        fail "tokens:$class" "'$ctx' is not in $file any more (editors/test/tokens.txt)"
    done
else
    pass "tokens:table"
fi
# every class is checked at least once
for class in comment decl keyword wordop function typename param type arrow option duration \
    date number builtin mapping string escape interp-open interp-code boolean; do
    grep -q "	$class	" "$tmp/pos" || fail "tokens:$class" "no token of class $class in tokens.txt"
done

# compare PREFIX EXPECT_FN OUT: one PASS/FAIL per token; EXPECT_FN CLASS GOT
# succeeds when GOT is what the editor should show for CLASS
compare() {
    prefix=$1 expect=$2 out=$3
    npos=$(wc -l < "$tmp/pos")
    head -n "$npos" "$out" | paste "$tmp/pos" - | while IFS='	' read -r file line col class tok got; do
        [ "$file" = MISSING ] && continue
        name="$prefix:$(basename "$file"):$line:$col:$class"
        if $expect "$class" "$got"; then pass "$name"; else fail "$name" "'$tok' shows as '$got'"; fi
    done
}

# a stand-in flowc for the editors' "check with flowc" support: two diagnostics
mkdir -p "$tmp/fakebin"
cat > "$tmp/fakebin/flowc" <<'EOF2'
#!/bin/sh
[ "$1" = --check ] || exit 2
printf '%s:3:12: error: unknown name '"'"'x'"'"'\n    return t(x)\n           ^\nhint: declare it\n' "$2" >&2
printf '%s:1:1: warning: library not found\n' "$2" >&2
exit 1
EOF2
chmod +x "$tmp/fakebin/flowc"

# ... and the real flowc prints its diagnostics in the form both editors read
printf 'flow f() -> int {\n    return undefined_name\n}\n' > "$tmp/bad.flow"
if [ -x "$FLOWC" ]; then
    if "$FLOWC" --check "$tmp/bad.flow" 2>&1 | grep -q "^$tmp/bad.flow:2:[0-9]*: error: "; then
        pass "editors:flowc-diagnostic-format"
    else
        fail "editors:flowc-diagnostic-format" "$("$FLOWC" --check "$tmp/bad.flow" 2>&1 | head -2)"
    fi
fi

# ---- Vim ------------------------------------------------------------------------
vim_expect() {
    case "$1:$2" in
        comment:"flowComment Comment flow") ;;
        decl:"flowDeclare Statement flow") ;;
        keyword:"flowStatement Statement flow" | keyword:"flowConditional Statement flow") ;;
        wordop:"flowWordOp Statement flow") ;;
        function:"flowFuncName Identifier flow") ;;
        typename:"flowTypeName Type flow") ;;
        param:"flowParam Identifier flow") ;;
        type:"flowType Type flow") ;;
        arrow:"flowArrow Statement flow") ;;
        option:"flowOption Statement flow") ;;
        duration:"flowDuration Constant flow") ;;
        date:"flowDate Constant flow") ;;
        number:"flowNumber Constant flow" | number:"flowFloat Constant flow") ;;
        builtin:"flowBuiltin Identifier flow") ;;
        mapping:"flowMapping Special flow") ;;
        string:"flowString Constant flow") ;;
        escape:"flowEscape Special flow") ;;
        interp-open:"flowInterpDelim Special flow") ;;
        interp-code:"flowInterp flowInterp flow") ;;
        boolean:"flowBoolean Constant flow") ;;
        *) return 1 ;;
    esac
}

if need vim vim-nox; then
    npos=$(wc -l < "$tmp/pos")
    if timeout 60 vim -N -u NONE -i NONE -es --cmd "set rtp^=$root/editors/vim" \
        -S editors/test/vim-groups.vim "$tmp/pos" "$tmp/vim.out" < /dev/null > "$tmp/vim.log" 2>&1 &&
        [ -s "$tmp/vim.out" ]; then
        compare vim vim_expect "$tmp/vim.out"
        settings=$(sed -n 's/^settings //p' "$tmp/vim.out")
        if [ "$settings" = "# %s|4|1|GetFlowIndent(v:lnum)" ]; then pass "vim:ftplugin-and-indent-settings"
        else fail "vim:ftplugin-and-indent-settings" "commentstring|shiftwidth|expandtab|indentexpr = '$settings'"; fi
        sed -n "$((npos + 1)),\$p" "$tmp/vim.out" | grep '^indent ' | while read -r _ file result; do
            if [ "$result" = ok ]; then pass "vim:indent:$(basename "$file")"
            else fail "vim:indent:$(basename "$file")" "line $result"; fi
        done
    else
        fail "vim:run" "vim -es failed: $(tail -3 "$tmp/vim.log")"
    fi
    # :make runs flowc --check (compiler/flowc.vim) and reads its errors
    cp examples/sweep/sweep.flow "$tmp/qf.flow"
    got=$(cd "$tmp" && PATH=$tmp/fakebin:$PATH timeout 30 vim -N -u NONE -i NONE -es \
        --cmd "set rtp^=$root/editors/vim" -c 'filetype plugin on' -c 'edit qf.flow' \
        -c 'silent make' -c 'call writefile(map(getqflist(), "v:val.lnum.\":\".v:val.col.\":\".v:val.type.\":\".v:val.text"), "qf.out")' \
        -c 'qall!' < /dev/null > /dev/null 2>&1; cat qf.out 2>/dev/null | tr '\n' '|')
    if [ "$got" = "3:12:e:unknown name 'x'|1:1:w:library not found|" ]; then pass "vim:compiler-flowc"
    else fail "vim:compiler-flowc" "quickfix list: '$got'"; fi
else
    fail "vim:install" "no vim, and apt-get install vim-nox failed"
fi

# ---- Emacs ----------------------------------------------------------------------
emacs_expect() {
    case "$1" in
        comment) want=font-lock-comment-face ;;
        decl | keyword | wordop) want=font-lock-keyword-face ;;
        function) want=font-lock-function-name-face ;;
        typename | type) want=font-lock-type-face ;;
        param) want=font-lock-variable-name-face ;;
        arrow) want=flow-arrow-face ;;
        option) want=flow-option-face ;;
        duration) want=flow-duration-face ;;
        date) want=flow-date-face ;;
        number) want=flow-number-face ;;
        builtin) want=font-lock-builtin-face ;;
        mapping) want=flow-mapping-face ;;
        string) want=font-lock-string-face ;;
        escape) want=flow-escape-face ;;
        interp-open | interp-code) want=flow-interpolation-face ;;
        boolean) want=font-lock-constant-face ;;
        *) return 1 ;;
    esac
    case ",${2% *}, ${2##* }" in
        *",$want,"*" flow-mode") ;;
        *) return 1 ;;
    esac
}

if need emacs emacs-nox; then
    npos=$(wc -l < "$tmp/pos")
    if timeout 60 emacs -Q --batch -l editors/emacs/flow-mode.el -l editors/test/emacs-faces.el \
        "$tmp/pos" "$tmp/emacs.out" > "$tmp/emacs.log" 2>&1 && [ -s "$tmp/emacs.out" ]; then
        compare emacs emacs_expect "$tmp/emacs.out"
        sed -n "$((npos + 1)),\$p" "$tmp/emacs.out" | while read -r _ file result; do
            if [ "$result" = ok ]; then pass "emacs:indent:$(basename "$file")"
            else fail "emacs:indent:$(basename "$file")" "line $result"; fi
        done
    else
        fail "emacs:run" "emacs --batch failed: $(tail -3 "$tmp/emacs.log")"
    fi
    # byte-compiles without a warning
    cp editors/emacs/flow-mode.el "$tmp/"
    if emacs -Q --batch --eval '(setq byte-compile-error-on-warn t)' \
        -f batch-byte-compile "$tmp/flow-mode.el" > "$tmp/bc.log" 2>&1 && [ -f "$tmp/flow-mode.elc" ]; then
        pass "emacs:byte-compile"
    else
        fail "emacs:byte-compile" "$(head -5 "$tmp/bc.log")"
    fi
    # comment syntax and auto-mode-alist (opening a .flow file picks flow-mode)
    cp examples/sweep/sweep.flow "$tmp/probe.flow"
    got=$(emacs -Q --batch -l editors/emacs/flow-mode.el --eval '(progn
        (find-file (nth 0 command-line-args-left))
        (setq command-line-args-left nil)
        (goto-char (point-max)) (insert "let x = 1") (comment-region (line-beginning-position) (point))
        (princ (format "%s|%s|%s" major-mode comment-start
                       (buffer-substring (line-beginning-position) (point)))))' "$tmp/probe.flow" 2>/dev/null)
    if [ "$got" = "flow-mode|# |# let x = 1" ]; then pass "emacs:mode-and-comments"
    else fail "emacs:mode-and-comments" "got '$got'"; fi
    # flymake runs flowc --check (through the stand-in) and shows its diagnostics
    cp examples/sweep/sweep.flow "$tmp/fm.flow"
    got=$(PATH=$tmp/fakebin:$PATH timeout 30 emacs -Q --batch -l editors/emacs/flow-mode.el --eval '(progn
        (find-file (nth 0 command-line-args-left)) (setq command-line-args-left nil)
        (flymake-mode 1) (flymake-start)
        (let ((n 0)) (while (and (< n 50) (< (length (flymake-diagnostics)) 2))
                       (accept-process-output nil 0.1) (setq n (1+ n))))
        (princ (mapconcat (lambda (d) (format "%d:%s:%s" (line-number-at-pos (flymake-diagnostic-beg d))
                                              (flymake-diagnostic-type d) (flymake-diagnostic-text d)))
                          (sort (flymake-diagnostics) (lambda (a b) (< (flymake-diagnostic-beg a) (flymake-diagnostic-beg b))))
                          "|")))' "$tmp/fm.flow" 2>/dev/null)
    leftover=$(ls -a "$tmp" | grep -c '^\.flymake-')
    if [ "$got" = "1::warning:library not found|3::error:unknown name 'x'" ] && [ "$leftover" = 0 ]; then
        pass "emacs:flymake-flowc"
    else
        fail "emacs:flymake-flowc" "diagnostics '$got', $leftover temporary files left"
    fi
    # imenu lists the declarations
    got=$(emacs -Q --batch -l editors/emacs/flow-mode.el --eval '(progn
        (find-file "examples/wordcount/wordcount.flow") (require (quote imenu))
        (princ (format "%S" (mapcar (lambda (x) (if (consp (cdr x)) (cons (car x) (mapcar (function car) (cdr x))) (car x)))
                                    (cdr (imenu--make-index-alist t))))))' 2>/dev/null)
    want='(("Tasks" "count_words" "total_of" "summarize") ("Types" "Summary") "wordcount" "wordstats")'
    if [ "$got" = "$want" ]; then pass "emacs:imenu"; else fail "emacs:imenu" "got $got"; fi
else
    fail "emacs:install" "no emacs, and apt-get install emacs-nox failed"
fi

# ---- VS Code (TextMate grammar through vscode-textmate) ---------------------------------
tm_expect() {
    case "$1" in
        comment) want=comment.line.number-sign.flow ;;
        decl) want=storage.type.flow ;;
        keyword) want=keyword.control.flow ;;
        wordop) want=keyword.operator.logical.flow ;;
        function) want=entity.name.function.flow ;;
        typename) want=entity.name.type.flow ;;
        param) want=variable.parameter.flow ;;
        type) want=support.type.flow ;;
        arrow) want=keyword.operator.arrow.flow ;;
        option) want=support.type.property-name.option.flow ;;
        duration) want=constant.other.duration.flow ;;
        date) want=constant.other.date.flow ;;
        number) want=constant.numeric. ;;
        builtin) want=support.function.builtin.flow ;;
        mapping) want=support.function.mapping.flow ;;
        string) want=string.quoted.double.flow ;;
        escape) want=constant.character.escape.flow ;;
        interp-open) want=punctuation.section.interpolation.begin.flow ;;
        interp-code) want=meta.interpolation.flow ;;
        boolean) want=constant.language.boolean.flow ;;
        *) return 1 ;;
    esac
    case " $2 " in *" $want"*) ;; *) return 1 ;; esac
    # code inside an interpolation is not string text
    if [ "$1" = interp-code ]; then case "$2" in *punctuation*) return 1 ;; esac; fi
}

vs=editors/vscode
if need node nodejs && need npm npm; then
    npm_skip=""
    if [ ! -d "$vs/test/node_modules/vscode-textmate" ] &&
        ! (cd "$vs/test" && npm ci --no-audit --no-fund > "$tmp/npm.log" 2>&1); then
        # a machine that cannot reach the npm registry (no route, no name, or a TLS
        # chain it does not trust, as in a bare chroot behind an intercepting proxy)
        # cannot run the VS Code checks: they say so; any other npm failure fails
        code=$(sed -n 's/^npm \(ERR!\|error\) code //p' "$tmp/npm.log" | head -1)
        case "$code" in
        SELF_SIGNED_CERT_IN_CHAIN | UNABLE_TO_GET_ISSUER_CERT_LOCALLY | UNABLE_TO_VERIFY_LEAF_SIGNATURE | \
            CERT_* | ENOTFOUND | EAI_AGAIN | ECONNREFUSED | ECONNRESET | ETIMEDOUT | ENETUNREACH)
            npm_skip="the npm registry cannot be reached from this machine (npm: $code)" ;;
        *) fail "vscode:npm-ci" "$(grep -v '^npm \(ERR!\|error\) *$' "$tmp/npm.log" | tail -3 | tr '\n' ' ')" ;;
        esac
    fi
    if [ -n "$npm_skip" ]; then
        echo "SKIP vscode:tokens: $npm_skip"
        echo "SKIP vscode:no-illegal-tokens: $npm_skip"
    fi
    if [ -d "$vs/test/node_modules/vscode-textmate" ]; then
        npos=$(wc -l < "$tmp/pos")
        if timeout 60 node "$vs/test/tokenize.js" "$tmp/pos" "$tmp/tm.out" > "$tmp/tm.log" 2>&1; then
            compare vscode tm_expect "$tmp/tm.out"
            if sed -n "$((npos + 1)),\$p" "$tmp/tm.out" | grep -q .; then
                fail "vscode:no-illegal-tokens" "$(sed -n "$((npos + 1)),\$p" "$tmp/tm.out" | head -3)"
            else
                pass "vscode:no-illegal-tokens"
            fi
        else
            fail "vscode:tokenize" "$(tail -3 "$tmp/tm.log")"
        fi
    fi
    # the extension's manifest holds together
    if node -e '
        const fs = require("fs"), d = process.argv[1];
        const pkg = JSON.parse(fs.readFileSync(d + "/package.json"));
        const lang = pkg.contributes.languages[0], gr = pkg.contributes.grammars[0];
        const conf = JSON.parse(fs.readFileSync(d + "/" + lang.configuration));
        const tm = JSON.parse(fs.readFileSync(d + "/" + gr.path));
        const ok = lang.extensions.includes(".flow") && gr.language === lang.id &&
            tm.scopeName === gr.scopeName && conf.comments.lineComment === "#" &&
            conf.brackets.length === 3 && conf.autoClosingPairs.length >= 4 &&
            conf.surroundingPairs.length >= 4;
        // every snippet has a prefix and a body
        const sn = JSON.parse(fs.readFileSync(d + "/" + pkg.contributes.snippets[0].path));
        const snOk = Object.values(sn).every((s) => s.prefix && Array.isArray(s.body) && s.body.length);
        if (!snOk) process.exit(1);
        process.exit(ok ? 0 : 1);' "$vs" 2> "$tmp/manifest.log"; then
        pass "vscode:manifest"
    else
        fail "vscode:manifest" "$(head -3 "$tmp/manifest.log")"
    fi
else
    fail "vscode:install" "no node/npm, and apt-get install nodejs npm failed"
fi

# ---- bash completion --------------------------------------------------------------------
if command -v bash >/dev/null 2>&1; then
    timeout 60 bash editors/test/completion.sh
else
    fail "completion:bash" "no bash"
fi

# ---- the examples, compiled and run with the real flowc and flowrun ---------------------
ex=$tmp/examples
mkdir -p "$ex"
for f in examples/*/*.flow; do
    n=$(basename "$f" .flow)
    if "$FLOWC" --check "$f" > "$ex/$n.check" 2>&1; then pass "examples:$n:check"
    else fail "examples:$n:check" "flowc --check: $(head -3 "$ex/$n.check")"; fi
done
# run FLOW PLAN ARGS...: the result line of one run (state in $ex/.flow)
run() {
    FLOW_STATE=$ex/.flow timeout 60 "$FLOWRUN" "$@" 2> "$ex/run.err"
}
if "$FLOWRUN" run 2>&1 | grep -q 'not available'; then
    fail "examples:run" "this flowrun cannot run plans yet ('flowrun run' is not built)"
elif sh examples/wordcount/gen.sh "$ex/data" 6 300 > /dev/null &&
    mkdir -p "$ex/remote" && cp "$ex/data/part-00001.txt" "$ex/data/part-00002.txt" "$ex/remote/"; then
    words=$(cat "$ex/data"/*.txt | wc -w | tr -d ' ')
    distinct=0
    for f in "$ex/data"/*.txt; do
        distinct=$((distinct + $(tr -cs 'A-Za-z' '\n' < "$f" | tr 'A-Z' 'a-z' | sort -u | grep -c .)))
    done
    bytes=$(cat "$ex/remote"/* | wc -c | tr -d ' ')
    # NAME WANT FLOW_ARGS...: compile examples/NAME/NAME.flow, run it, compare
    run_example() {
        name=$1 label=$2 want=$3
        shift 3
        plan=$ex/$name.plan
        if [ ! -f "$plan" ] && ! "$FLOWC" "examples/$name/$name.flow" -o "$plan" > "$ex/run.err" 2>&1; then
            fail "examples:$label:run" "flowc: $(head -2 "$ex/run.err")"
            return
        fi
        got=$(run "$plan" "$@")
        rc=$?
        case "$rc:$got" in
            0:$want) pass "examples:$label:run" ;;
            *) fail "examples:$label:run" "exit $rc, got '$got', want '$want': $(tail -2 "$ex/run.err")" ;;
        esac
    }
    run_example wordcount wordcount "$words" --flow wordcount --param "root=$ex/data"
    run_example wordcount wordstats "{\"files\":6,\"words\":$words,\"largest\":*}" --flow wordstats --param "root=$ex/data"
    run_example wordcount wordcount-inline "$words" --flow wordcount --param "root=$ex/data" --executor inline
    run_example sweep sweep '{"lr":0.01,"depth":4,"score":0.95*}' --flow sweep
    run_example sweep paired '0.8*' --flow paired
    run_example mirror mirror "$bytes" --flow mirror --param "remote=$ex/remote" --param "dst=$ex/copy"
    if cmp -s "$ex/remote/part-00002.txt" "$ex/copy/part-00002.txt"; then pass "examples:mirror:copies"
    else fail "examples:mirror:copies" "$ex/copy/part-00002.txt differs from its source"; fi
    run_example mirror mirror_pages "$bytes" --flow mirror_pages --param "remote=$ex/remote" --param "dst=$ex/pages"
    run_example grouped grouped "$distinct" --param "root=$ex/data"
    run_example daily daily "" --param "root=$ex/data"
fi

# ---- examples/run-example.sh, with stand-ins for flowc and flowrun -------------------
# (make example runs it with the real ones; here only the script's own logic is
# checked: data generated, the plan compiled where flowrun is told, the result
# compared with wc -w)
mkdir -p "$tmp/fake/bin"
cat > "$tmp/fake/bin/flowc" <<'EOF2'
#!/bin/sh
out=""; while [ $# -gt 0 ]; do [ "$1" = -o ] && out=$2; shift; done
[ -n "$out" ] && echo plan > "$out"
EOF2
cat > "$tmp/fake/bin/flowrun" <<'EOF2'
#!/bin/sh
[ -f "$1" ] && [ "$2 $3" = "--flow wordcount" ] && [ -n "$FLOW_STATE" ] || exit 2
for a; do case $a in root=*) cat "${a#root=}"/*.txt | wc -w | tr -d ' ';; esac; done
EOF2
chmod +x "$tmp/fake/bin/flowc" "$tmp/fake/bin/flowrun"
if [ -f examples/wordcount/libwc.so ]; then
    if sh examples/run-example.sh "$tmp/fake" > "$tmp/example.log" 2>&1 &&
        grep -q 'result: [0-9]* words (wc -w says' "$tmp/example.log" &&
        [ "$(ls "$tmp/fake/example/data" | wc -l)" = 20 ]; then
        pass "examples:run-example-script"
    else
        fail "examples:run-example-script" "$(tail -3 "$tmp/example.log")"
    fi
fi

# ---- man pages ----------------------------------------------------------------------------
if need groff groff-base; then
    for page in docs/man/flowc.1 docs/man/flowrun.1; do
        name=man:$(basename "$page")
        if [ ! -f "$page" ]; then fail "$name" "missing"; continue; fi
        out=$(groff -man -Tutf8 -ww -z "$page" 2>&1)
        if [ -z "$out" ]; then pass "$name:renders-without-warnings"
        else fail "$name:renders-without-warnings" "$(echo "$out" | head -3)"; fi
        for sec in NAME SYNOPSIS DESCRIPTION OPTIONS "EXIT STATUS" ENVIRONMENT FILES EXAMPLES "SEE ALSO"; do
            if grep -q "^\.SH \"*$sec\"*\$" "$page"; then :; else fail "$name:sections" "no $sec section"; continue 2; fi
        done
        pass "$name:sections"
    done
    # every subcommand of flowrun (runtime/app/cli.h) has its entry in flowrun.1
    missing=""
    for c in $(sed -n 's/^ *X(\([a-z]*\),.*/\1/p' runtime/app/cli.h); do
        grep -q "^\.BI\{0,1\} \"\{0,1\}flowrun $c\b" docs/man/flowrun.1 || missing="$missing $c"
    done
    if [ -z "$missing" ]; then pass "man:flowrun.1:every-subcommand"
    else fail "man:flowrun.1:every-subcommand" "not described:$missing"; fi
    # every option of run (runtime/app/cli.h) is in flowrun.1
    missing=""
    for o in $(grep -o '\[-[-a-z]*' runtime/app/cli.h | tr -d '[' | sort -u); do
        grep -q -- "$(echo "$o" | sed 's/-/\\\\-/g')" docs/man/flowrun.1 || missing="$missing $o"
    done
    if [ -z "$missing" ]; then pass "man:flowrun.1:every-option"
    else fail "man:flowrun.1:every-option" "not described:$missing"; fi
    # every option of flowc --help (compiler/main.c) is in flowc.1
    missing=""
    for o in $(grep -o '"  *\(-[a-z]\|--[a-z-]*\)' compiler/main.c | sed 's/"  *//' | sort -u); do
        grep -q -- "$(echo "$o" | sed 's/-/\\\\-/g')" docs/man/flowc.1 || missing="$missing $o"
    done
    if [ -z "$missing" ]; then pass "man:flowc.1:every-option"
    else fail "man:flowc.1:every-option" "not described:$missing"; fi
else
    fail "man:install" "no groff, and apt-get install groff-base failed"
fi
