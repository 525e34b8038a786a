#!/bin/sh
# .ci/deps.sh — make sure this machine has what flow's build and its tests need,
# installing what is missing with apt-get (Debian, Ubuntu).
#
#   sh .ci/deps.sh                  the build and every test (what `make deps` runs)
#   sh .ci/deps.sh build            only what `make all` needs
#   sh .ci/deps.sh NEED...          the named needs only (e.g. vim: tests/suites/70-editors.sh)
#   sh .ci/deps.sh --check NEED...  install nothing: print one line naming the first
#                                   missing need and exit 1 (the Makefile's check
#                                   before it compiles: `sh .ci/deps.sh --check build`)
#
# Design. A need is probed by what the build or a test actually uses — the
# command (`command -v dot`), the header (`#include <ffi.h>` through $CC and
# $CPPFLAGS), the library (linking with -fsanitize=fuzzer) — never by a package
# name, so a tool that came from elsewhere (node and npm from NodeSource, a python3
# from pyenv, an LLVM_CONFIG given to make) counts as present and is left alone.
# The table below maps each need to its probe and its Debian package(s). What
# fails its probe is installed in one apt-get call; then every such need is probed
# again, and the first one still missing stops the script with one line naming it
# and its package — no silent skip. Environment: LLVM=0 drops the LLVM need (as
# `make LLVM=0`), LLVM_CONFIG, CC and CPPFLAGS are probed as the Makefile uses them.

BUILD_NEEDS="cc flex bison pkg-config libffi libyaml sqlite3 nettle jansson libcurl libarchive llvm"
TEST_NEEDS="cmocka nm sanitizers clang libfuzzer dot procps python3 python3-yaml python3-jsonschema vim emacs eglot neovim groff node npm tzdata jq sqlite3-cli podman runc catatonit busybox-static promtool prometheus slurmctld slurmd slurm-client munge iproute2 chromium"
CC=${CC:-cc}

# what NEED is, in words, for the one line; and its Debian package(s)
what() {
    case $1 in
    cc) echo "a C compiler ($CC)|build-essential" ;;
    flex) echo "flex (the scanner generator)|flex" ;;
    bison) echo "bison (the parser generator)|bison" ;;
    pkg-config) echo "pkg-config|pkg-config" ;;
    libffi) echo "the libffi headers (ffi.h)|libffi-dev" ;;
    libyaml) echo "the libyaml headers (yaml.h)|libyaml-dev" ;;
    sqlite3) echo "the SQLite headers (sqlite3.h)|libsqlite3-dev" ;;
    nettle) echo "the Nettle headers (nettle/sha2.h: SHA-256, base64)|nettle-dev" ;;
    jansson) echo "the Jansson headers (jansson.h: JSON for std and flowc lsp)|libjansson-dev" ;;
    libcurl) echo "the libcurl headers (curl/curl.h: std.fetch)|libcurl4-openssl-dev" ;;
    libarchive) echo "the libarchive headers (archive.h: std.untar, std.gunzip)|libarchive-dev" ;;
    llvm) echo "LLVM 14 (llvm-config-14, its llvm-c headers and libLLVM-14.so; or build with LLVM=0)|llvm-14-dev" ;;
    cmocka) echo "the cmocka headers (cmocka.h, the unit tests)|libcmocka-dev" ;;
    nm) echo "nm (binutils, the exported-symbols test)|binutils" ;;
    sanitizers) echo "ASan and UBSan for $CC (make check's sanitized pass)|libasan8 libubsan1" ;;
    clang) echo "clang (the fuzz targets)|clang" ;;
    libfuzzer) echo "clang's libFuzzer runtime (-fsanitize=fuzzer)|libclang-rt-14-dev" ;;
    dot) echo "dot (graphviz, the plan graph tests)|graphviz" ;;
    procps) echo "ps and pgrep (procps, the process executor tests)|procps" ;;
    python3) echo "python3 (the checker fuzz and state tests)|python3" ;;
    python3-yaml) echo "the yaml module of python3 (the plan view tests)|python3-yaml" ;;
    python3-jsonschema) echo "the jsonschema module of python3 (the run events test)|python3-jsonschema" ;;
    jq) echo "jq (the serve tests read runs --json with it)|jq" ;;
    podman) echo "podman (the container and Kubernetes pod-template tests)|podman" ;;
    runc) echo "runc (podman's runtime here: crun fails on cgroups v1 hybrid)|runc" ;;
    catatonit) echo "catatonit (podman kube play's pod init, the Kubernetes tests)|catatonit" ;;
    busybox-static) echo "a static busybox (/bin/sh of the test images built FROM scratch)|busybox-static" ;;
    sqlite3-cli) echo "the sqlite3 shell (the remote tests read state.db's recorded batches)|sqlite3" ;;
    vim) echo "vim (the editor tests)|vim-nox" ;;
    emacs) echo "emacs (the editor tests)|emacs-nox" ;;
    neovim) echo "nvim (headless Neovim drives flowc lsp, the editor tests)|neovim" ;;
    eglot) echo "eglot for Emacs 28 (Emacs drives flowc lsp, tests/suites/72-lsp.sh)|elpa-eglot" ;;
    groff) echo "groff (the man page tests)|groff-base" ;;
    node) echo "node (the VS Code grammar tests)|nodejs" ;;
    npm) echo "npm (the VS Code grammar tests)|npm" ;;
    slurmctld) echo "slurmctld (the Slurm controller: tests/harness/slurm-cluster.sh)|slurmctld" ;;
    slurmd) echo "slurmd (the Slurm node daemon: tests/harness/slurm-cluster.sh)|slurmd" ;;
    slurm-client) echo "sbatch, squeue, scancel, sinfo and scontrol (the slurm executor's tests)|slurm-client" ;;
    munge) echo "munged and mungekey (Slurm's authentication: tests/harness/slurm-cluster.sh)|munge" ;;
    iproute2) echo "ip (network namespaces and a bridge: tests/harness/slurm-cluster.sh)|iproute2" ;;
    promtool) echo "promtool (checks the metrics exposition, tests/suites/68-metrics.sh)|prometheus" ;;
    prometheus) echo "prometheus (a real server scraping flowrun --metrics, tests/suites/68-metrics.sh)|prometheus" ;;
    chromium) echo "chromium (renders the run report headless, tests/suites/71-report.sh)|chromium" ;;
    tzdata) echo "the time zone database (/usr/share/zoneinfo: flowc checks a schedule's tz)|tzdata" ;;
    *) return 1 ;;
    esac
}

has() { command -v "$1" > /dev/null 2>&1; }
# header H compiles with $CC and $CPPFLAGS
hdr() { printf '#include <%s>\n' "$1" | $CC $CPPFLAGS -E -x c - > /dev/null 2>&1; }
# a program links with $CC (or $LINKCC) and the given flags
links() {
    t=$(mktemp -d /tmp/flow-deps-XXXXXX) || return 1
    printf '%s\n' "$PROG" > "$t/p.c"
    ${LINKCC:-$CC} "$@" "$t/p.c" -o "$t/p" > /dev/null 2>&1
    r=$?
    rm -rf "$t"
    return $r
}
llvm_config() {
    if [ -n "$LLVM_CONFIG" ]; then echo "$LLVM_CONFIG"; return; fi
    command -v llvm-config-14 || command -v llvm-config
}

probe() {
    case $1 in
    cc) has "$CC" ;;
    flex | bison | pkg-config | nm | clang | dot | python3 | vim | emacs | groff | node | npm | jq | \
        podman | runc | catatonit | promtool | prometheus | chromium) has "$1" ;;
    neovim) has nvim ;;
    eglot) ls /usr/share/emacs/site-lisp/elpa-src/eglot-*/eglot.el /usr/share/emacs/*/lisp/progmodes/eglot.el* 2> /dev/null | grep -q . ;;
    busybox-static) b=$(command -v busybox) && ! ldd "$b" > /dev/null 2>&1 ;;
    libffi) hdr ffi.h ;;
    libyaml) hdr yaml.h ;;
    sqlite3) hdr sqlite3.h ;;
    nettle) hdr nettle/sha2.h ;;
    jansson) hdr jansson.h ;;
    libcurl) hdr curl/curl.h ;;
    libarchive) hdr archive.h ;;
    cmocka) printf '#include <stdarg.h>\n#include <stddef.h>\n#include <stdint.h>\n#include <setjmp.h>\n#include <cmocka.h>\n' |
        $CC $CPPFLAGS -E -x c - > /dev/null 2>&1 ;;
    llvm)
        lc=$(llvm_config) && [ -n "$lc" ] && inc=$("$lc" --includedir 2> /dev/null) &&
            lib=$("$lc" --libdir 2> /dev/null) && [ -f "$inc/llvm-c/LLJIT.h" ] &&
            [ -e "$lib/libLLVM-14.so" ] ;;
    sanitizers) PROG='int main(void) { return 0; }' LINKCC=$CC links -fsanitize=address,undefined ;;
    libfuzzer)
        PROG='int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { return d && n > 1u << 30; }' \
            LINKCC=clang links -fsanitize=fuzzer,address,undefined ;;
    procps) has ps && has pgrep ;;
    python3-yaml) python3 -c 'import yaml' > /dev/null 2>&1 ;;
    slurmctld | slurmd) has "$1" ;;
    slurm-client) has sbatch && has squeue && has scancel && has sinfo && has scontrol ;;
    munge) has munged && has mungekey ;;
    iproute2) has ip && has nsenter ;;
    python3-jsonschema) python3 -c 'import jsonschema' > /dev/null 2>&1 ;;
    tzdata) [ -f "${TZDIR:-/usr/share/zoneinfo}/UTC" ] ;;
    sqlite3-cli) has sqlite3 ;;
    podman) has podman ;;
    runc) has runc || [ -x /usr/sbin/runc ] || [ -x /usr/bin/runc ] ;;
    catatonit) has catatonit || [ -x /usr/libexec/podman/catatonit ] ;;
    busybox-static) [ -x /bin/busybox ] && ! ldd /bin/busybox > /dev/null 2>&1 ;;
    esac
}

check=0
[ "$1" = --check ] && { check=1; shift; }
needs=""
[ $# = 0 ] && set -- build test
for n in "$@"; do
    case $n in
    build) needs="$needs $BUILD_NEEDS" ;;
    test) needs="$needs $TEST_NEEDS" ;;
    *)
        what "$n" > /dev/null || { echo "deps: unknown need '$n'" >&2; exit 2; }
        needs="$needs $n" ;;
    esac
done
[ "${LLVM:-1}" = 0 ] && needs=$(echo "$needs" | tr ' ' '\n' | grep -vx llvm | tr '\n' ' ')

missing=""
for n in $needs; do
    probe "$n" || missing="$missing $n"
done
[ -z "$missing" ] && exit 0

# one line naming NEED: what it is, its package, and what to do
say() {
    w=$(what "$1")
    echo "$2 ${w%|*} (Debian package: ${w#*|})$3" >&2
}
if [ "$check" = 1 ]; then
    set -- $missing
    if [ $# = 1 ]; then
        say "$1" "flow: missing" "; run 'make deps' to install it"
    else # still one line: every missing need by name, and their packages
        p=""
        for n in "$@"; do w=$(what "$n"); p="$p ${w#*|}"; done
        hint=""
        case " $* " in *" llvm "*) hint=" (or, instead of LLVM, build with LLVM=0)" ;; esac
        echo "flow: missing $(echo "$*" | sed 's/ /, /g') (Debian packages:$p); run 'make deps' to install them$hint" >&2
    fi
    exit 1
fi

pkgs=""
for n in $missing; do
    w=$(what "$n")
    pkgs="$pkgs ${w#*|}"
done
SUDO=""
if [ "$(id -u)" != 0 ]; then
    has sudo && SUDO="sudo"
fi
if [ "$(id -u)" != 0 ] && [ -z "$SUDO" ]; then
    set -- $missing
    say "$1" "deps: neither root nor sudo, cannot install" "; install it as root, or run make deps as root"
    exit 1
fi
if ! has apt-get; then
    set -- $missing
    say "$1" "deps: apt-get is not available to install" "; install it by hand"
    exit 1
fi
# A root folder other users cannot enter (a chroot unpacked from a 0700 folder) makes
# every package setup that runs as the package's own user fail (munge's: "su: failed
# to execute /bin/sh: Permission denied"). A booted Debian has / at 0755: said, and set.
if [ -n "$(find / -maxdepth 0 ! -perm -o+x 2> /dev/null)" ]; then
    echo "deps: / is mode $(stat -c %a /), closed to other users: packages that set up as their own user (munge) would fail; making it 0755" >&2
    $SUDO chmod 0755 /
fi
echo "deps: installing$pkgs" >&2
log=$(mktemp /tmp/flow-deps-XXXXXX.log)
# (through env: sudo drops the caller's environment)
APT="$SUDO env DEBIAN_FRONTEND=noninteractive apt-get"
$APT update -qq > "$log" 2>&1
# all at once (one dpkg run); if that fails, one by one, so the line below can name
# the package that cannot be had while the others still get installed
# shellcheck disable=SC2086
$APT install -y -qq $pkgs >> "$log" 2>&1 ||
    for p in $pkgs; do $APT install -y -qq "$p" >> "$log" 2>&1; done
for n in $missing; do
    probe "$n" && continue
    say "$n" "deps: cannot have" " (apt-get install failed or did not provide it; see $log)"
    exit 1
done
rm -f "$log"
exit 0
