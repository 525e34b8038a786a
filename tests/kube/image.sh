# image.sh — sourced by tests/suites/66-kube.sh: kube_image TAG DIR builds a local
# image FROM scratch holding flowrun at /usr/bin/flowrun, libflow-jit.so at
# /usr/lib/flow/ (where flowrun looks for it: ../lib/flow beside its binary), every
# library `ldd` lists for both at the same paths, and busybox-static as /bin/sh —
# the layout `make image` gives the runtime image. 0, or 1 with the reason on stdout.
kube_image() {
    tag=$1 ctx=$2/image-ctx
    rm -rf "$ctx" && mkdir -p "$ctx/root/usr/bin" "$ctx/root/usr/lib/flow" "$ctx/root/bin" "$ctx/root/tmp" || return 1
    cp "$FLOWRUN_ABS" "$ctx/root/usr/bin/flowrun" || { echo "cannot copy flowrun"; return 1; }
    jit=$(dirname "$FLOWRUN_ABS")/../lib/flow/libflow-jit.so
    objs=$FLOWRUN_ABS
    if [ -f "$jit" ]; then cp "$jit" "$ctx/root/usr/lib/flow/" && objs="$objs $jit"; fi
    for o in $objs; do
        ldd "$o" | sed -n 's/.*=> \(\/[^ ]*\) .*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) (.*/\1/p'
    done | sort -u > "$ctx/libs"
    while read -r l; do
        mkdir -p "$ctx/root$(dirname "$l")" && cp -L "$l" "$ctx/root$l" || { echo "cannot copy $l"; return 1; }
    done < "$ctx/libs"
    bb=$(command -v busybox) || { echo "no busybox"; return 1; }
    cp "$bb" "$ctx/root/bin/busybox" && ln -s busybox "$ctx/root/bin/sh" || return 1
    for a in cat echo id ls sleep; do ln -s busybox "$ctx/root/bin/$a"; done
    printf 'FROM scratch\nCOPY root /\n' > "$ctx/Containerfile"
    podman build -q -t "$tag" "$ctx" > "$ctx/build.log" 2>&1 || { echo "podman build: $(tail -1 "$ctx/build.log")"; return 1; }
    return 0
}
