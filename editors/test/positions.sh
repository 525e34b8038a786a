#!/bin/sh
# positions.sh EXAMPLES_DIR TOKENS_FILE — turn each check of TOKENS_FILE into
# "FILE<TAB>LINE<TAB>COL<TAB>CLASS<TAB>TOKEN" (1-based line and byte column), or
# "MISSING<TAB>..." when its context is not found (the example changed).
ex=$1
grep -v '^#' "$2" | grep -v '^$' | while IFS='|' read -r file ctx tok class; do
    # through the environment: awk -v would decode the backslashes
    CTX=$ctx TOK=$tok CLASS=$class FILE=$ex/$file awk '
        BEGIN { ctx = ENVIRON["CTX"]; tok = ENVIRON["TOK"]; class = ENVIRON["CLASS"]; file = ENVIRON["FILE"] }
        !done && (i = index($0, ctx)) {
            j = index(ctx, tok)
            if (j) printf "%s\t%d\t%d\t%s\t%s\n", file, NR, i + j - 1, class, tok
            else printf "MISSING\t%s\t%s\t%s\t%s\n", file, ctx, class, tok
            done = 1
        }
        END { if (!done) printf "MISSING\t%s\t%s\t%s\t%s\n", file, ctx, class, tok }
    ' "$ex/$file"
done
