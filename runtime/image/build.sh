#!/bin/sh
# runtime/image/build.sh — `make image`: a local podman image of this build,
# localhost/flow-runtime:VERSION, FROM scratch, for tasks with image: that need
# flowrun inside the container (docs/distributed.md, "Containers").
#
#   sh runtime/image/build.sh BUILD VERSION
#
# Design. The image holds exactly what this build's flowrun loads and nothing
# else: flowrun, every shared library ldd lists for it and for the JIT module
# (libflow-jit.so, opened with dlopen, and through it libLLVM and its own
# libraries), the dynamic loader, the standard library folder, and busybox
# (static: it needs no library) as /bin/sh with its applets linked beside it.
# Files keep their host paths, so the loader finds the libraries where ldd saw
# them. FLOW_JIT_MODULE names the module (flowrun is linked statically with
# libflow, so it cannot look for it beside libflow.so). The context is staged
# in a temporary folder and built with `podman build --timestamp 0`, so an
# unchanged build gives the same image id again (idempotent: the cache key of
# image: tasks holds that id, runtime/recorder/cachekey.c).
set -e
BUILD=${1:-build}
VERSION=${2:?usage: build.sh BUILD VERSION}
TAG=localhost/flow-runtime:$VERSION
FLOWRUN=$BUILD/bin/flowrun
JITMOD=$BUILD/lib/flow/libflow-jit.so
BUSYBOX=${BUSYBOX:-/bin/busybox}

command -v podman > /dev/null || { echo "image: podman is not on PATH (Debian package podman)" >&2; exit 2; }
[ -x "$FLOWRUN" ] || { echo "image: $FLOWRUN is not built (make all)" >&2; exit 2; }
if ! [ -x "$BUSYBOX" ] || ldd "$BUSYBOX" > /dev/null 2>&1; then
    echo "image: $BUSYBOX is not a static busybox (Debian package busybox-static)" >&2
    exit 2
fi

ctx=$(mktemp -d /tmp/flow-image-XXXXXX)
trap 'rm -rf "$ctx"' EXIT INT TERM

# copy FILE to the same path under the context, following symlinks for the
# content but keeping the name the loader asks for
put() {
    d=$ctx$(dirname "$1")
    mkdir -p "$d"
    cp -L "$1" "$d/"
}
libs() { ldd "$1" | sed -n 's/.*=> \(\/[^ ]*\) .*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) .*/\1/p'; }

mkdir -p "$ctx/usr/bin" "$ctx/usr/lib/flow" "$ctx/bin" "$ctx/tmp" "$ctx/etc"
cp "$FLOWRUN" "$ctx/usr/bin/flowrun"
deps=$(libs "$FLOWRUN")
if [ -f "$JITMOD" ]; then
    cp "$JITMOD" "$ctx/usr/lib/flow/"
    deps="$deps $(libs "$JITMOD")"
fi
# the standard library's C half (std.flow itself is flowc's, not needed here):
# flowrun finds it in /usr/bin/../lib/flow (runtime/core/modpath.h)
STDMOD=$BUILD/lib/flow/libflow-std.so
if [ -f "$STDMOD" ]; then
    cp "$STDMOD" "$ctx/usr/lib/flow/"
    deps="$deps $(libs "$STDMOD")"
fi
for l in $(echo "$deps" | tr ' ' '\n' | sort -u); do put "$l"; done
cp "$BUSYBOX" "$ctx/bin/busybox"
for a in sh ls cat cp mv rm mkdir id echo sleep test tr wc head tail grep sed env; do
    ln -sf busybox "$ctx/bin/$a"
done
chmod 1777 "$ctx/tmp"
# the host's users and groups (names only: no shadow file), so that run_as names
# the same uid in the container as on the host (flowrun worker switches to it)
cp /etc/passwd /etc/group "$ctx/etc/"
cat > "$ctx/Containerfile" <<EOT
FROM scratch
COPY . /
ENV PATH=/usr/bin:/bin FLOW_JIT_MODULE=/usr/lib/flow/libflow-jit.so
LABEL org.flow.version=$VERSION
EOT
old=$(podman image inspect --format '{{.Id}}' "$TAG" 2> /dev/null || true)
podman build -q --timestamp 0 -t "$TAG" -f "$ctx/Containerfile" "$ctx" > /dev/null
new=$(podman image inspect --format '{{.Id}}' "$TAG")
# the image this one replaces (a rebuilt tree) would stay as an unnamed 180 MB image
[ -n "$old" ] && [ "$old" != "$new" ] && podman rmi "$old" > /dev/null 2>&1 || true
echo "image: $TAG $(echo "$new" | cut -c1-12)"
