#!/bin/sh
# W1 and W2 for GNU make -j2 and ninja -j2, beside flow on the same machine.
# Prints each figure (median of $RUNS) and the ratio peer / flow.
. "$(dirname "$0")/../common.inc"
[ -x "$FLOWRUN" ] && [ -f "$LIBSCHED" ] || { echo "peers: build first (make all testlibs)"; exit 1; }
command -v ninja > /dev/null || { apt-get install -y -q ninja-build > /dev/null 2>&1 || true; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/flow_figures.inc"

w1_make() { # n -> writes $tmp/mk/Makefile
    d=$tmp/mk$1; mkdir -p "$d/out"
    awk -v n="$1" 'BEGIN {
        printf "OUTS :="; for (i = 0; i < n; i++) printf " out/%d", i; printf "\n";
        print "sum: $(OUTS)"; print "\t@cat $(OUTS) | awk \047{s+=$$1} END {print s}\047 > sum";
        print "out/%:"; print "\t@echo $$(( $* + 1 )) > $@" }' > "$d/Makefile"
}
w1_ninja() {
    d=$tmp/nj$1; mkdir -p "$d/out"
    awk -v n="$1" 'BEGIN {
        print "rule inc"; print "  command = echo $$(( $n + 1 )) > $out";
        print "rule sum"; print "  command = cat $in | awk \047{s+=$$1} END {print s}\047 > $out";
        for (i = 0; i < n; i++) { printf "build out/%d: inc\n  n = %d\n", i, i }
        printf "build sum: sum"; for (i = 0; i < n; i++) printf " out/%d", i; printf "\n" }' > "$d/build.ninja"
}
w2_make() { # n
    d=$tmp/mw2; mkdir -p "$d"
    awk -v n="$1" 'BEGIN {
        printf "all: reduce\nreduce:"; for (i = 0; i < n; i++) printf " c%d", i; printf "\n\t@touch reduce\n";
        for (i = 0; i < n; i++) {
            printf "a%d:\n\t@sleep 0.001; echo a %d $$(date +%%s%%3N) >> log; touch $@\n", i, i;
            printf "b%d: a%d\n\t@sleep 0.001; echo b %d $$(date +%%s%%3N) >> log; touch $@\n", i, i, i;
            printf "c%d: b%d\n\t@sleep 0.001; echo c %d $$(date +%%s%%3N) >> log; touch $@\n", i, i, i } }' > "$d/Makefile"
}

for n in 1000 10000; do
    w1_make $n; w1_ninja $n
    : > "$tmp/m"; : > "$tmp/j"
    i=0; while [ $i -lt "$RUNS" ]; do
        rm -rf "$tmp/mk$n/out" "$tmp/mk$n/sum"; mkdir -p "$tmp/mk$n/out"
        timed "$tmp/m" make -s -r -j2 -C "$tmp/mk$n"
        rm -rf "$tmp/nj$n/out" "$tmp/nj$n/sum" "$tmp/nj$n/.ninja_log"; mkdir -p "$tmp/nj$n/out"
        (cd "$tmp/nj$n" && timed "$tmp/j" ninja -j2)
        i=$((i + 1))
    done
    fl=$(flow_w1 $n)
    m=$(median $(awk '{print $1}' "$tmp/m")); j=$(median $(awk '{print $1}' "$tmp/j"))
    printf 'peers w1 N=%-6s make -j2 %7.3f s (%sx flow)   ninja -j2 %7.3f s (%sx flow)   flow inline %6.3f s\n' \
        $n "$m" "$(ratio "$m" "$fl")" "$j" "$(ratio "$j" "$fl")" "$fl"
done

n=1000
w2_make $n
: > "$tmp/first"; : > "$tmp/total"
i=0; while [ $i -lt "$RUNS" ]; do
    (cd "$tmp/mw2" && rm -f a* b* c* reduce log)
    t0=$(($(date +%s%N) / 1000000))
    make -s -r -j2 -C "$tmp/mw2"
    t1=$(($(date +%s%N) / 1000000))
    awk -v t0="$t0" '$1 == "c" { print ($3 - t0) / 1000; exit }' "$tmp/mw2/log" >> "$tmp/first"
    echo "$t0 $t1" | awk '{ print ($2 - $1) / 1000 }' >> "$tmp/total"
    i=$((i + 1))
done
set -- $(flow_w2 $n)
mf=$(median $(cat "$tmp/first")); mt=$(median $(cat "$tmp/total"))
printf 'peers w2 N=%s  make -j2: first chain %6.3f s, total %6.3f s (%sx flow)   flow depth-first: first chain %6.3f s, total %6.3f s\n' \
    $n "$mf" "$mt" "$(ratio "$mt" "$2")" "$1" "$2"
