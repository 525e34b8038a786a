#!/bin/sh
# make install PREFIX=…: the layout of runtime.md §1, a working flow.pc, and a task
# library built the documented way (cc -shared -fPIC $(pkg-config --cflags flow)),
# compiled and run with the installed flowc and flowrun. Then the shared library's
# soname and links, the JIT module (installed in lib/flow/, found by the installed flowrun;
# no LLVM needed by flowrun, libflow.so or flow.pc), programs linked with pkg-config (shared,
# and static through Libs.private), DESTDIR and LIBDIR, and make uninstall leaving nothing behind.
# The standard library (share/flow/std.flow, lib/flow/libflow-std.so) works installed.
ROOT=$(pwd)
T=$(mktemp -d /tmp/flow-install-XXXXXX)
trap 'rm -rf "$T"' EXIT
P="$T/prefix"
if ! make --no-print-directory install PREFIX="$P" BUILD="$BUILD" > "$T/install.log" 2>&1; then
    echo "FAIL install: make install failed"; tail -5 "$T/install.log"; exit 0
fi
VERSION=$(sed -n 's/^#define FLOW_VERSION "\(.*\)"$/\1/p' runtime/include/flow.h)
MAJOR=${VERSION%%.*}
JIT=""; [ -f "$BUILD/lib/flow/libflow-jit.so" ] && JIT=lib/flow/libflow-jit.so  # LLVM=0: no module
for f in bin/flowc bin/flowrun include/flow.h lib/libflow.a lib/libflow.so lib/pkgconfig/flow.pc $JIT \
         lib/flow/libflow-std.so share/flow/std.flow \
         lib/libflow.so.$MAJOR lib/libflow.so.$VERSION \
         share/man/man1/flowc.1 share/man/man1/flowrun.1; do
    if [ -e "$P/$f" ]; then echo "PASS install: $f"; else echo "FAIL install: $f missing"; fi
done
export PKG_CONFIG_PATH="$P/lib/pkgconfig"
cat > "$T/twice.c" <<'C'
#include <flow.h>
int64_t twice(int64_t x) { flow_log("twice %lld", (long long)x); return 2 * x; }
int64_t total(flow_list xs) {
    int64_t s = 0;
    for (int64_t i = 0; i < xs.len; i++) s += ((const int64_t *)xs.items)[i];
    return s;
}
C
if cc -shared -fPIC $(pkg-config --cflags flow) "$T/twice.c" -o "$T/libtwice.so" 2> "$T/cc.err"; then
    echo "PASS install: a task library builds with pkg-config --cflags flow"
else
    echo "FAIL install: building with pkg-config: $(head -2 "$T/cc.err")"; exit 0
fi
cat > "$T/twice.flow" <<'F'
library t = "libtwice.so"
task twice(x: int) -> int = t.twice
task total(xs: [int]) -> int = t.total
flow main(n: int = 5) -> int {
    return total(twice.expand(x = range(n)))
}
F
cd "$T" && "$P/bin/flowc" twice.flow 2> flowc.err && out=$("$P/bin/flowrun" twice.plan --progress none --state "$T/st" 2> run.err)
if [ "$out" = 20 ]; then echo "PASS install: installed flowc and flowrun run it"
else echo "FAIL install: result '$out'"; head -3 "$T/flowc.err" "$T/run.err"; fi
# the installed flowrun finds the installed JIT module (lib/flow/ beside bin/) for a plan
# with lambdas, and the installed flowrun, libflow.so and flow.pc need no libLLVM
if [ -n "$JIT" ]; then
    cat > lam.flow <<'F'
flow main(n: int = 100) -> int {
    return len(range(n).map(x => x * 3).filter(x => x % 2 == 0))
}
F
    "$P/bin/flowc" lam.flow 2> flowc.err
    out=$(LD_DEBUG=files LD_DEBUG_OUTPUT="$T/dbg" "$P/bin/flowrun" lam.plan --executor inline --progress none --state "$T/st" 2> lam.err)
    if [ "$out" = 50 ] && [ ! -s lam.err ] && cat "$T"/dbg.* | grep -q "file=$P/bin/../lib/flow/libflow-jit.so"; then
        echo "PASS install: the installed flowrun loads the installed JIT module for lambdas"
    else echo "FAIL install: lambdas: result '$out', $(head -2 lam.err), module $(cat "$T"/dbg.* | grep -o 'file=[^ ]*flow-jit[^ ]*' | head -1)"; fi
    rm -f "$T"/dbg.*
fi
# the standard library: the installed flowc finds std.flow in share/flow and
# libflow-std.so in lib/flow (both beside bin/), and the installed flowrun loads that
# library from its own place, for a plan in a folder that holds no library
mkdir -p "$T/stdprog" && printf 'one\ntwo\n' > "$T/stdprog/in.txt"
cat > "$T/stdprog/s.flow" <<'F'
import std
flow main(f: path = "in.txt") -> [str] { return std.lines(std.copy(f)) }
F
cd "$T/stdprog" && "$P/bin/flowc" s.flow 2> flowc.err &&
    out=$(LD_DEBUG=files LD_DEBUG_OUTPUT="$T/sdbg" "$P/bin/flowrun" s.plan --progress none --state "$T/st" 2> run.err)
if [ "$out" = '["one","two"]' ] && [ ! -s flowc.err ] && [ ! -s run.err ] &&
    cat "$T"/sdbg.* | grep -q "file=$P/bin/../lib/flow/libflow-std.so"; then
    echo "PASS install: import std with the installed flowc and flowrun (lib/flow/libflow-std.so)"
else echo "FAIL install: std: result '$out', $(head -2 flowc.err run.err), loaded $(cat "$T"/sdbg.* | grep -o 'file=[^ ]*flow-std[^ ]*' | head -1)"; fi
rm -f "$T"/sdbg.*
cd "$ROOT" || exit 0
if ldd "$P/bin/flowrun" "$P/lib/libflow.so" | grep -q libLLVM || grep -q LLVM "$P/lib/pkgconfig/flow.pc"; then
    echo "FAIL install: flowrun, libflow.so or flow.pc still needs LLVM"
else echo "PASS install: flowrun, libflow.so and flow.pc need no LLVM"; fi
cd "$ROOT" || exit 0

# ---- the shared library: file name, soname, links ----------------------------------------
L=$P/lib
if [ -f "$L/libflow.so.$VERSION" ] && [ ! -L "$L/libflow.so.$VERSION" ] &&
    [ "$(readlink "$L/libflow.so.$MAJOR")" = "libflow.so.$VERSION" ] &&
    [ "$(readlink "$L/libflow.so")" = "libflow.so.$MAJOR" ]; then
    echo "PASS install: libflow.so -> libflow.so.$MAJOR -> libflow.so.$VERSION"
else
    echo "FAIL install: links: $(ls -l "$L" | grep libflow.so | awk '{print $9, $10, $11}' | tr '\n' ' ')"
fi
son=$(readelf -d "$L/libflow.so.$VERSION" 2> /dev/null | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
if [ "$son" = "libflow.so.$MAJOR" ]; then echo "PASS install: soname libflow.so.$MAJOR"
else echo "FAIL install: soname '$son', want libflow.so.$MAJOR"; fi
pcv=$(pkg-config --modversion flow 2> /dev/null)
if [ "$pcv" = "$VERSION" ]; then echo "PASS install: flow.pc version is FLOW_VERSION ($VERSION)"
else echo "FAIL install: flow.pc version '$pcv', flow.h says '$VERSION'"; fi
if grep -q "\"flow $VERSION\"" "$P/share/man/man1/flowrun.1" && "$P/bin/flowrun" --version | grep -qx "flowrun $VERSION" &&
    "$P/bin/flowc" --version | grep -q "^flowc $VERSION "; then
    echo "PASS install: flowc, flowrun and the man pages say $VERSION"
else
    echo "FAIL install: version: $("$P/bin/flowrun" --version) / $("$P/bin/flowc" --version) / $(grep '^.TH' "$P/share/man/man1/flowrun.1")"
fi

# ---- an embedding program, linked shared and static with pkg-config -----------------------
# (under SANITIZED=1 libflow is the ASan+UBSan build: the host links the runtimes too)
SAN=""
[ "${SANITIZED:-0}" = 1 ] && SAN="-fsanitize=address,undefined"
cat > "$T/host.c" <<'C'
#include <flow.h>
#include <stdio.h>
int main(int argc, char **argv) {
    char err[300];
    flow_program *fp = flow_program_open(argv[1], err, sizeof err);
    if (!fp) { fprintf(stderr, "%s\n", err); return 2; }
    flow_outcome *out;
    int code = flow_program_run(fp, NULL, &out);
    printf("%s %s\n", FLOW_VERSION, flow_outcome_json(out));
    flow_outcome_free(out);
    flow_program_close(fp);
    return code + (argc > 2);
}
C
if cc $SAN $(pkg-config --cflags flow) "$T/host.c" -o "$T/host" $(pkg-config --libs flow) 2> "$T/host.err"; then
    need=$(readelf -d "$T/host" | sed -n 's/.*(NEEDED).*\[\(libflow[^]]*\)\]/\1/p')
    out=$(cd "$T" && LD_LIBRARY_PATH="$L" ./host twice.plan 2> host.run)
    if [ "$need" = "libflow.so.$MAJOR" ] && [ "$out" = "$VERSION 20" ]; then
        echo "PASS install: a program linked with pkg-config --libs flow needs libflow.so.$MAJOR and runs"
    else
        echo "FAIL install: shared host: needs '$need', printed '$out' $(head -2 "$T/host.run")"
    fi
else
    echo "FAIL install: shared host does not link: $(head -3 "$T/host.err")"
fi
# static: libflow.a and what Libs.private lists; -rdynamic, so that the task library
# finds the flow_* functions in the program (docs/runtime-abi.md §10)
static_libs=$(pkg-config --static --libs flow | sed 's/-lflow/-Wl,-Bstatic -lflow -Wl,-Bdynamic/')
if cc $SAN -rdynamic $(pkg-config --cflags flow) "$T/host.c" -o "$T/host-static" $static_libs 2> "$T/hosts.err"; then
    need=$(readelf -d "$T/host-static" | grep -c 'NEEDED.*libflow')
    out=$(cd "$T" && ./host-static twice.plan 2> hosts.run)
    if [ "$need" = 0 ] && [ "$out" = "$VERSION 20" ]; then
        echo "PASS install: a static link with pkg-config --static --libs flow (Libs.private) runs"
    else
        echo "FAIL install: static host: $need libflow NEEDED, printed '$out' $(head -2 "$T/hosts.run")"
    fi
else
    echo "FAIL install: static link with Libs.private fails: $(grep -m2 'undefined\|error' "$T/hosts.err")"
fi

# ---- the systemd unit of flowrun serve (examples/systemd): installed, naming the installed flowrun ----
U="$P/lib/systemd/system/flowrun-serve@.service"
if [ -f "$U" ] && grep -q "^ExecStart=$P/bin/flowrun serve " "$U" && grep -qx 'KillMode=mixed' "$U"; then
    echo "PASS install: lib/systemd/system/flowrun-serve@.service runs the installed flowrun serve"
else
    echo "FAIL install: the systemd unit: $(grep ExecStart "$U" 2> /dev/null || echo missing)"
fi
if command -v systemd-analyze > /dev/null 2>&1; then
    cp "$U" "$T/flowrun-serve@check.service"
    bad=$(systemd-analyze verify "$T/flowrun-serve@check.service" 2>&1 | grep -v "Command 'man " | head -3)
    if [ -z "$bad" ]; then echo "PASS install: systemd-analyze verify accepts the unit"
    else echo "FAIL install: systemd-analyze verify: $bad"; fi
else
    echo "SKIP install: systemd-analyze verify: no systemd-analyze here"
fi

# ---- uninstall leaves nothing of ours ------------------------------------------------------
make --no-print-directory uninstall PREFIX="$P" BUILD="$BUILD" > "$T/uninstall.log" 2>&1 ||
    echo "FAIL install: make uninstall failed: $(tail -2 "$T/uninstall.log")"
left=$(cd "$P" && find . ! -type d | head -5 | tr '\n' ' ')
if [ -z "$left" ]; then echo "PASS install: make uninstall removes every installed file"
else echo "FAIL install: left after make uninstall: $left"; fi

# ---- DESTDIR and LIBDIR: staged under DESTDIR, flow.pc names the final paths ---------------
D=$T/stage
if make --no-print-directory install DESTDIR="$D" PREFIX=/opt/flowtest LIBDIR=/opt/flowtest/lib64 \
        BUILD="$BUILD" > "$T/dest.log" 2>&1; then
    pc=$D/opt/flowtest/lib64/pkgconfig/flow.pc
    if [ -x "$D/opt/flowtest/bin/flowrun" ] && [ -e "$D/opt/flowtest/lib64/libflow.so.$MAJOR" ] &&
        { [ -z "$JIT" ] || [ -f "$D/opt/flowtest/lib64/flow/libflow-jit.so" ]; } &&
        [ ! -e /opt/flowtest ] && grep -qx 'libdir=/opt/flowtest/lib64' "$pc" &&
        grep -qx 'prefix=/opt/flowtest' "$pc" && ! grep -q "$D" "$pc"; then
        echo "PASS install: DESTDIR stages, LIBDIR moves the libraries, flow.pc names the final paths"
    else
        echo "FAIL install: DESTDIR/LIBDIR layout: $(cd "$D" && find . -name 'libflow*' | head -3 | tr '\n' ' ') $(grep dir= "$pc" 2> /dev/null | tr '\n' ' ')"
    fi
    make --no-print-directory uninstall DESTDIR="$D" PREFIX=/opt/flowtest LIBDIR=/opt/flowtest/lib64 \
        BUILD="$BUILD" > "$T/dest-un.log" 2>&1
    left=$(cd "$D" && find . ! -type d | head -5 | tr '\n' ' ')
    if [ -z "$left" ]; then echo "PASS install: make uninstall with DESTDIR and LIBDIR removes everything"
    else echo "FAIL install: left after uninstall with DESTDIR: $left"; fi
else
    echo "FAIL install: make install DESTDIR=... LIBDIR=...: $(tail -2 "$T/dest.log")"
fi
