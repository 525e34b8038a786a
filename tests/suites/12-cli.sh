#!/bin/sh
# The command lines: --help on flowc and on every flowrun subcommand (exit 0, a usage
# line, nothing on stderr); --version; an unknown subcommand option is exit 2.
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
for c in $(sed -n 's/^ *X(\([a-z]*\),.*/\1/p' runtime/app/cli.h); do
    for h in --help -h; do
        "$FLOWRUN" "$c" $h > "$T/out" 2> "$T/err"; code=$?
        if [ "$code" = 0 ] && grep -q "^usage: flowrun $c" "$T/out" && [ ! -s "$T/err" ]; then
            echo "PASS cli: flowrun $c $h"
        else echo "FAIL cli: flowrun $c $h: exit $code"; head -3 "$T/out" "$T/err"; fi
    done
done
"$FLOWRUN" --help > "$T/out" 2>&1 && grep -q "^commands:" "$T/out" && echo "PASS cli: flowrun --help" || echo "FAIL cli: flowrun --help"
"$FLOWRUN" x.plan --help > "$T/out" 2>&1 && grep -q "^usage: flowrun run" "$T/out" && echo "PASS cli: flowrun PLAN --help" || echo "FAIL cli: flowrun PLAN --help"
"$FLOWRUN" --version > "$T/out" 2>&1 && grep -q "^flowrun " "$T/out" && echo "PASS cli: flowrun --version" || echo "FAIL cli: flowrun --version"
"$FLOWC" --help > "$T/out" 2>&1 && grep -q "^usage: flowc" "$T/out" && echo "PASS cli: flowc --help" || echo "FAIL cli: flowc --help"
"$FLOWC" --version > "$T/out" 2>&1 && grep -q "^flowc " "$T/out" && echo "PASS cli: flowc --version" || echo "FAIL cli: flowc --version"
"$FLOWRUN" runs --bogus > /dev/null 2>&1; [ $? = 2 ] && echo "PASS cli: unknown option is exit 2" || echo "FAIL cli: unknown option is not exit 2"
"$FLOWC" > /dev/null 2>&1; [ $? = 2 ] && echo "PASS cli: flowc without a file is exit 2" || echo "FAIL cli: flowc without a file"
