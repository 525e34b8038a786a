#!/bin/sh
# The peers (bench/peers/*.sh): Dask, GNU make, ninja on W1 and W2, with ratios to flow.
status=0
for p in "$(dirname "$0")"/peers/*.sh; do
    sh "$p" || status=1
done
exit $status
