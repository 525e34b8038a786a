#!/bin/sh
# The JIT is a module of its own (lib/flow/libflow-jit.so, docs/jit.md "The JIT
# module"), loaded only when a plan with lambdas asks for native code:
#   - flowrun and libflow.so do not need libLLVM (ldd); the module does, and exports
#     one symbol;
#   - `flowrun --version`, a plan without lambdas and a one-task plan (inline
#     executor) map neither the module nor libLLVM (LD_DEBUG=files: the loader's
#     own account of every object it opens);
#   - a plan with lambdas loads the module, found beside flowrun (also in a copy of
#     bin/ and lib/flow/ elsewhere), and gives what --no-jit gives;
#   - a missing module, a file that is not a module, and a module given a table
#     of another ABI version: one warning line, lambdas interpreted, same result;
#   - an embedding program (libflow.so) loads it for a plan with lambdas, and not
#     after flow_program_set_jit(fp, 0).
# Built with LLVM=0 there is no module: the checks that need one SKIP.
BUILD=${BUILD:-build}
ROOT=$(pwd)
FLOWC=$ROOT/$BUILD/bin/flowc; FLOWRUN=$ROOT/$BUILD/bin/flowrun
MOD=$ROOT/$BUILD/lib/flow/libflow-jit.so
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
unset FLOW_JIT_MODULE

# what the dynamic loader opened while running "$@" (stderr of LD_DEBUG=files)
opened() { LD_DEBUG=files LD_DEBUG_OUTPUT="$T/dbg" "$@" > "$T/ld.out" 2> "$T/ld.err"
    cat "$T"/dbg.* 2> /dev/null | sed -n 's/.*file=\([^ ]*\).*/\1/p' | sort -u; rm -f "$T"/dbg.*; }
maps_llvm() { grep -c 'libLLVM\|libflow-jit'; }

# ---- links ----------------------------------------------------------------------------
if ldd "$FLOWRUN" | grep -q libLLVM; then echo "FAIL jitmod-ldd: flowrun needs libLLVM"
elif ldd "$ROOT/$BUILD/lib/libflow.so" | grep -q libLLVM; then echo "FAIL jitmod-ldd: libflow.so needs libLLVM"
else echo "PASS jitmod-ldd: neither flowrun nor libflow.so needs libLLVM"; fi
if [ -f "$MOD" ]; then
    syms=$(nm -D --defined-only "$MOD" | awk '$2 == "T" { print $3 }' | tr '\n' ' ')
    if ldd "$MOD" | grep -q libLLVM && [ "$syms" = "flow_jit_module_init " ]; then
        echo "PASS jitmod-exports: the module needs libLLVM and exports flow_jit_module_init only"
    else echo "FAIL jitmod-exports: exports '$syms'; $(ldd "$MOD" | grep -c libLLVM) libLLVM"; fi
else
    echo "SKIP jitmod-exports: no module (LLVM=0 build)"
fi

# ---- no lambdas, no LLVM --------------------------------------------------------------
n=$(opened "$FLOWRUN" --version | maps_llvm)
if [ "$n" = 0 ] && grep -q '^flowrun ' "$T/ld.out"; then echo "PASS jitmod-version: flowrun --version loads no LLVM"
else echo "FAIL jitmod-version: $n LLVM/JIT objects opened, printed '$(cat "$T/ld.out")'"; fi

cat > "$T/one.c" <<'C'
#include <flow.h>
int64_t inc(int64_t x) { return x + 1; }
C
cc -shared -fPIC -I"$ROOT/runtime/include" -o "$T/libone.so" "$T/one.c"
cat > "$T/one.flow" <<'F'
library o = "libone.so"
task inc(x: int) -> int = o.inc
flow main(n: int = 41) -> int {
    return inc(n)
}
F
cat > "$T/lam.flow" <<'F'
flow main(n: int = 1000) -> int {
    return len(range(n).map(x => x * 3 + 1).filter(x => x % 7 == 0))
}
F
(cd "$T" && "$FLOWC" one.flow && "$FLOWC" lam.flow) 2> "$T/flowc.err" || echo "FAIL jitmod-setup: $(head -3 "$T/flowc.err")"
n=$(cd "$T" && opened "$FLOWRUN" one.plan --executor inline --progress none --state "$T/st1" | maps_llvm)
if [ "$n" = 0 ] && [ "$(cat "$T/ld.out")" = 42 ]; then
    echo "PASS jitmod-no-lambdas: a one-task plan without lambdas (inline) loads no LLVM"
else echo "FAIL jitmod-no-lambdas: $n LLVM/JIT objects opened, printed '$(cat "$T/ld.out")'"; fi

# ---- lambdas: the module is loaded, same result as --no-jit ---------------------------
want=$(cd "$T" && "$FLOWRUN" lam.plan --no-jit --executor inline --progress none --state "$T/st2" 2> /dev/null)
if [ -f "$MOD" ]; then
    objs=$(cd "$T" && opened "$FLOWRUN" lam.plan --executor inline --progress none --state "$T/st3")
    if echo "$objs" | grep -q 'lib/flow/libflow-jit.so$' && echo "$objs" | grep -q libLLVM &&
        [ "$(cat "$T/ld.out")" = "$want" ] && [ "$want" = 143 ] && [ ! -s "$T/ld.err" ]; then
        echo "PASS jitmod-lambdas: a plan with lambdas loads the module and libLLVM, same result as --no-jit"
    else
        echo "FAIL jitmod-lambdas: printed '$(cat "$T/ld.out")' (--no-jit '$want'), $(head -2 "$T/ld.err"), opened: $(echo "$objs" | grep -i 'llvm\|jit' | tr '\n' ' ')"
    fi
    n=$(cd "$T" && opened "$FLOWRUN" lam.plan --no-jit --executor inline --progress none --state "$T/st4" | maps_llvm)
    if [ "$n" = 0 ]; then echo "PASS jitmod-no-jit: --no-jit loads no LLVM"
    else echo "FAIL jitmod-no-jit: $n LLVM/JIT objects opened"; fi
    # a copy of the tree elsewhere: bin/flowrun finds ../lib/flow/libflow-jit.so
    mkdir -p "$T/tree/bin" "$T/tree/lib/flow"
    cp "$FLOWRUN" "$T/tree/bin/" && cp "$MOD" "$T/tree/lib/flow/"
    objs=$(cd "$T" && opened "$T/tree/bin/flowrun" lam.plan --executor inline --progress none --state "$T/st5")
    if echo "$objs" | grep -q "^$T/tree/bin/../lib/flow/libflow-jit.so$" && [ "$(cat "$T/ld.out")" = 143 ]; then
        echo "PASS jitmod-beside: flowrun finds the module in ../lib/flow beside its own folder"
    else echo "FAIL jitmod-beside: printed '$(cat "$T/ld.out")', opened: $(echo "$objs" | grep -i 'jit' | tr '\n' ' ')"; fi
else
    echo "SKIP jitmod-lambdas: no module (LLVM=0 build)"
fi

# ---- a module that cannot be used: one warning, interpreted, same result --------------
fallback() { # name, FLOW_JIT_MODULE value, what the warning must say
    out=$(cd "$T" && FLOW_JIT_MODULE=$2 "$FLOWRUN" lam.plan --executor inline --progress none --state "$T/st-$1" 2> "$T/w-$1")
    code=$?
    lines=$(wc -l < "$T/w-$1")
    if [ $code = 0 ] && [ "$out" = "$want" ] && [ "$lines" = 1 ] &&
        grep -q "^flowrun: JIT module .*$3.*; lambdas are interpreted$" "$T/w-$1"; then
        echo "PASS jitmod-$1: one warning, the lambdas are interpreted, same result"
    else echo "FAIL jitmod-$1: exit $code, printed '$out', warning: $(head -3 "$T/w-$1")"; fi
}
if [ -f "$MOD" ]; then
    fallback missing "$T/nowhere/libflow-jit.so" "cannot open shared object file"
    fallback not-a-module "$T/libone.so" "no flow_jit_module_init"
    # the module refuses a table of another ABI version, with one line
    cat > "$T/abi.c" <<'C'
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
int main(int argc, char **argv) {
    (void)argc;
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!h) { printf("dlopen: %s\n", dlerror()); return 1; }
    int (*init)(const void *, void *, char *, size_t);
    *(void **)&init = dlsym(h, "flow_jit_module_init");
    uint32_t table[64] = {9999, sizeof table}; /* an ABI version no module has */
    char ops[256], err[300] = "";
    int rc = init(table, ops, err, sizeof err);
    printf("%d %s\n", rc, err);
    return 0;
}
C
    SAN=""; [ "${SANITIZED:-0}" = 1 ] && SAN="-fsanitize=address,undefined"
    if cc $SAN -o "$T/abi" "$T/abi.c" -ldl 2> "$T/abi.err"; then
        out=$("$T/abi" "$MOD" 2>&1)
        case "$out" in
        "-1 JIT ABI version "*"libflow gives version 9999"*) echo "PASS jitmod-abi: the module refuses a table of another ABI version, in one line" ;;
        *) echo "FAIL jitmod-abi: $out" ;;
        esac
    else echo "FAIL jitmod-abi: $(head -2 "$T/abi.err")"; fi
else
    echo "SKIP jitmod-missing: no module (LLVM=0 build)"
fi

# ---- an embedding program: loads the module for lambdas, not after set_jit(0) ---------
cat > "$T/host.c" <<'C'
#include <flow.h>
#include <stdio.h>
#include <string.h>
int main(int argc, char **argv) {
    char err[300];
    flow_program *fp = flow_program_open(argv[1], err, sizeof err);
    if (!fp) { fprintf(stderr, "%s\n", err); return 2; }
    if (argc > 2 && !strcmp(argv[2], "nojit") && flow_program_set_jit(fp, 0, err, sizeof err)) {
        fprintf(stderr, "%s\n", err); return 2;
    }
    flow_outcome *out;
    int code = flow_program_run(fp, NULL, &out);
    printf("%s\n", flow_outcome_json(out));
    flow_outcome_free(out);
    /* after the first run the choice is made */
    if (flow_program_set_jit(fp, 1, err, sizeof err) == 0) printf("set_jit accepted after a run\n");
    flow_program_close(fp);
    return code;
}
C
SAN=""; [ "${SANITIZED:-0}" = 1 ] && SAN="-fsanitize=address,undefined"
if cc $SAN -I"$ROOT/$BUILD/include" -o "$T/host" "$T/host.c" -L"$ROOT/$BUILD/lib" -lflow 2> "$T/host.err"; then
    objs=$(cd "$T" && LD_LIBRARY_PATH="$ROOT/$BUILD/lib" opened ./host lam.plan)
    r1=$(cat "$T/ld.out"); n1=$(echo "$objs" | maps_llvm)
    objs=$(cd "$T" && LD_LIBRARY_PATH="$ROOT/$BUILD/lib" opened ./host lam.plan nojit)
    r2=$(cat "$T/ld.out"); n2=$(echo "$objs" | maps_llvm)
    if [ -f "$MOD" ]; then want_n1=yes; else want_n1=no; fi
    if [ "$r1" = 143 ] && [ "$r2" = 143 ] && [ "$n2" = 0 ] &&
        { [ $want_n1 = no ] || [ "$n1" -ge 2 ]; }; then
        echo "PASS jitmod-embed: an embedded run loads the module for lambdas, not after flow_program_set_jit(fp, 0)"
    else echo "FAIL jitmod-embed: printed '$r1' / '$r2', LLVM/JIT objects opened $n1 / $n2"; fi
else
    echo "FAIL jitmod-embed: the host does not build: $(head -3 "$T/host.err")"
fi
