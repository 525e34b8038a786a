#!/bin/sh
# stdlib/gendoc.sh — write docs/stdlib.md from stdlib/std.flow's doc comments, on
# standard output: `sh stdlib/gendoc.sh > docs/stdlib.md`. tests/suites/23-std.sh
# checks that the committed page is what this prints.
#
# The rules (std.flow's header says them too): the comment block at the top of the
# file, up to its first empty line, is skipped (it is about the file); a line
# "## Title" opens a section; the "# ..." lines right above a `task` or `type`
# declaration are its documentation, printed under its signature (the declaration
# up to " = ", then its options). Plain awk, so nothing to install.
src=${1:-stdlib/std.flow}
awk '
BEGIN {
    print "# The standard library: `import std`"
    print ""
    print "<!-- Generated from stdlib/std.flow by stdlib/gendoc.sh: edit the doc comments there. -->"
    print ""
    print "`import std` brings in `stdlib/std.flow`, found on `flowc -I`, `FLOW_PATH` and the"
    print "installed `share/flow/` (docs/language.md, \"Modules\"); its tasks are used as"
    print "`std.NAME`, like any task: called, `.partial`, `.expand`, `.map`, `combine`d. They are"
    print "bound to flow'"'"'s own C library, `libflow-std.so`, which `flowc` and `flowrun` find in"
    print "`lib/flow/` beside themselves (the library path `\"flow:libflow-std.so\"`), not beside the"
    print "plan. Its content hash is in the plan (a different library at run time is a warning,"
    print "an error with `--strict`). Each task has a `version`, its identity in cache keys in"
    print "place of the library hash (the rule for any versioned task), raised when its results"
    print "change. Errors name the file or URL; the run names the instance."
    print ""
    print "Running a command needs no library task: a `sh` task is the idiom"
    print "(`task count(f: path) -> int = sh \"wc -l < {f}\"`, docs/language.md, \"Declarations\")."
    header = 1
}
header && /^$/ { header = 0; next }
header { next }
/^## / { sub(/^## /, ""); print ""; print "## " $0; doc = ""; next }
/^#( |$)/ { line = $0; sub(/^# ?/, "", line); doc = doc line "\n"; next }
/^(task|type) / {
    decl = $0
    opts = ""
    if (match(decl, / with \{.*\}$/)) opts = substr(decl, RSTART + 6, RLENGTH - 6)
    sub(/ = [^=]*$/, "", decl)
    name = $2; sub(/\(.*/, "", name)
    print ""
    print "### `std." name "`"
    print ""
    print "```flow"
    print decl
    print "```"
    print ""
    printf "%s", doc
    if (opts != "") { print ""; print "Options: `" opts "`." }
    doc = ""
    next
}
{ doc = "" }
' "$src"
