#!/bin/sh
# make test T=FILE / make golden T=FILE
[ -n "$2" ] || { echo "usage: make test T=tests/<suite>/<name>.flow" >&2; exit 2; }
exec sh tests/harness/golden.sh "$1" "$2"
