#!/bin/sh
# make install PREFIX=…: the layout of runtime.md §1, a working flow.pc, and a task
# library built the documented way (cc -shared -fPIC $(pkg-config --cflags flow)),
# compiled and run with the installed flowc and flowrun.
T=$(mktemp -d /tmp/flow-install-XXXXXX)
trap 'rm -rf "$T"' EXIT
P="$T/prefix"
if ! make --no-print-directory install PREFIX="$P" BUILD="$BUILD" > "$T/install.log" 2>&1; then
    echo "FAIL install: make install failed"; tail -5 "$T/install.log"; exit 0
fi
for f in bin/flowc bin/flowrun include/flow.h lib/libflow.a lib/libflow.so lib/pkgconfig/flow.pc \
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
