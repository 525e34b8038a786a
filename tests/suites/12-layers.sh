#!/bin/sh
# libflow neither exits nor prints (issue 12): the objects of libflow — every object
# under $BUILD/obj/runtime except the app layer's — must not reference exit() or the
# process's stdout/stderr, nor the functions that print to them. Errors go back to the
# caller and user-facing lines to the context's log sink (runtime/core/ctx.h); only the app
# (flowrun's main and its cli_* commands) prints and chooses exit codes.
#
# The check reads the undefined symbols of each object with nm, so it sees what the
# compiler made of the code (printf("x\n") becomes puts, fprintf(stderr, "x") fwrite
# plus a reference to stderr). Writing to a FILE* the caller passed is fine: only the
# stream symbols themselves are refused. A forked worker's _exit is fine, and so is
# fflush(NULL) (it names no stream).
#
# Which objects are the app layer is said once, in is_app below: everything under
# runtime/app/ (the library is runtime/core/ and runtime/recorder/).
#
# A probe object that does exit and print is checked first, so the check itself is
# known to catch what it looks for; each libflow object that fails is named with the
# symbols it references.
BUILD=${BUILD:-build}
T=$(mktemp -d /tmp/flow-layers-XXXXXX)
trap 'rm -rf "$T"' EXIT INT TERM
pass() { echo "PASS layers:$1"; }
fail() { echo "FAIL layers:$1: $2"; }
CC=${CC:-cc}

# the refused symbols: ending the process, the standard streams, and the functions that
# print to them (glibc's fortified _chk forms and err.h's/error.h's family included)
REFUSED='exit quick_exit stdout stderr printf vprintf puts putchar perror psignal psiginfo
__printf_chk __vprintf_chk err errx verr verrx warn warnx vwarn vwarnx error error_at_line'

# is_app REL: REL is an object's path under $BUILD/obj/runtime; true for the app layer
is_app() {
    case $1 in
    app/*) return 0 ;;
    esac
    return 1
}

command -v nm > /dev/null || { fail "setup" "nm not found (binutils; make deps installs it)"; exit 0; }

# refused OBJ: the refused symbols OBJ references, on one line
refused() {
    nm -u "$1" 2> /dev/null | awk -v list="$REFUSED" '
        BEGIN { n = split(list, l, /[ \n]+/); for (i = 1; i <= n; i++) bad[l[i]] = 1 }
        { s = $NF; sub(/@.*/, "", s); if (s in bad && !(s in seen)) { seen[s] = 1; out = out (out ? " " : "") s } }
        END { print out }'
}

# ---- the check catches what it looks for -------------------------------------------------
cat > "$T/bad.c" << 'C'
#include <stdio.h>
#include <stdlib.h>
void probe_dies(int code);
void probe_dies(int code) {
    fprintf(stderr, "bad %d\n", code);
    printf("done\n");
    exit(code);
}
C
cat > "$T/ok.c" << 'C'
#include <stdio.h>
#include <unistd.h>
void probe_quiet(FILE *f, int code);
void probe_quiet(FILE *f, int code) {
    fprintf(f, "%d\n", code);
    fflush(NULL);
    _exit(code);
}
C
if ! $CC -O2 -c "$T/bad.c" -o "$T/bad.o" 2> "$T/cc.err" ||
    ! $CC -O2 -c "$T/ok.c" -o "$T/ok.o" 2>> "$T/cc.err"; then
    fail "probe" "the probe objects do not build: $(head -3 "$T/cc.err" | tr '\n' ' ')"
else
    got=$(refused "$T/bad.o")
    case " $got " in
    *" exit "*) case " $got " in
        *" stderr "*) pass "the check sees exit, stderr and printing in a probe object ($got)" ;;
        *) fail "probe" "the check missed stderr in a probe object (saw: '$got')" ;;
        esac ;;
    *) fail "probe" "the check missed exit in a probe object (saw: '$got')" ;;
    esac
    got=$(refused "$T/ok.o")
    if [ -z "$got" ]; then
        pass "writing to a caller's FILE*, fflush(NULL) and _exit are allowed"
    else
        fail "probe-quiet" "refused in an object that only writes to a caller's FILE*: $got"
    fi
fi

# ---- libflow's objects -------------------------------------------------------------------
root="$BUILD/obj/runtime"
[ -d "$root" ] || { fail "setup" "no $root (build first)"; exit 0; }
n=0; napp=0; nbad=0
for o in $(cd "$root" && find . -name '*.o' | sed 's|^\./||' | sort); do
    if is_app "$o"; then napp=$((napp + 1)); continue; fi
    n=$((n + 1))
    got=$(refused "$root/$o")
    if [ -n "$got" ]; then
        nbad=$((nbad + 1))
        fail "runtime/${o%.o}.c" "libflow object references $got"
    fi
done
if [ "$n" -lt 10 ] || [ "$napp" -lt 1 ]; then
    fail "setup" "$n libflow and $napp app objects under $root: is the build complete?"
elif [ "$nbad" -eq 0 ]; then
    pass "none of libflow's $n objects exits or prints ($napp app objects left out)"
fi
