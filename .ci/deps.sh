#!/bin/sh
# Install the Debian packages the build needs, only those missing.
# A package that cannot be installed stops the build with one line naming it.
missing=""
for p in "$@"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing" >&2
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null 2>&1
for p in $missing; do
    if ! $SUDO apt-get install -y -qq "$p" >/dev/null 2>&1; then
        echo "deps: cannot install Debian package '$p' (apt-get install $p failed)" >&2
        exit 1
    fi
done
