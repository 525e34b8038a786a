# extract.awk — turn docs/tutorial.md into a shell script (stdout) and the
# expected outputs (files in the folder `out`). See tests/suites/80-tutorial.sh
# for the markup. For command block N it writes out/N.cmd (its text) and, when
# an <!-- output --> block follows, out/N.expect; the script writes out/N.out,
# out/N.err and, when the block completed, out/N.done. out/blocks holds the
# number of command blocks. A fenced block without a known kind is an error.
function die(msg) {
    print "docs/tutorial.md:" NR ": " msg > "/dev/stderr"
    failed = 1
    exit 1
}
BEGIN {
    n = 0; mark = ""; infence = 0; failed = 0
    print "set -e"
    print "make() { [ -x \"$FLOWC\" ] && [ -x \"$FLOWRUN\" ]; }"
}
!infence && /^<!-- file: [^ ]+ -->$/ {
    mark = "file"; path = $3; next
}
!infence && /^<!-- output -->$/ { mark = "output"; next }
!infence && /^```/ {
    lang = substr($0, 4)
    if (mark == "file") {
        kind = "file"
        if (path ~ /'/) die("a file name with a quote")
        print "cat > '" path "' <<'__TUTORIAL_EOF__'"
    } else if (mark == "output") {
        if (n == 0) die("an output block before any command block")
        kind = "output"; expect = out "/" n ".expect"
        printf "" > expect
    } else if (lang == "sh") {
        n++; kind = "sh"; cmd = out "/" n ".cmd"
        printf "" > cmd
        print "{"
    } else {
        die("fenced block '" $0 "' is neither ```sh nor marked as a file or an output")
    }
    mark = ""; infence = 1; next
}
!infence && mark != "" && NF > 0 { die("a marker must come right before a fenced block") }
infence && /^```$/ {
    if (kind == "file") print "__TUTORIAL_EOF__"
    if (kind == "sh") {
        print "} > \"$TUT_OUT/" n ".out\" 2> \"$TUT_OUT/" n ".err\""
        print ": > \"$TUT_OUT/" n ".done\""
        print "PATH=$TUT_BIN:$PATH"
        close(cmd)
    }
    if (kind == "output") close(expect)
    infence = 0; next
}
infence {
    if (kind == "output") { print > expect; next }
    if (kind == "sh") print > cmd
    print
    next
}
END {
    if (failed) exit 1
    if (infence) die("unterminated fenced block")
    print "{ command -v flowc; command -v flowrun; } > \"$TUT_OUT/which\""
    print n > (out "/blocks")
}
