# nobody.sh — sourced by suites whose checks drop to the user nobody (run_as tasks,
# flowrun run by another user). nobody_why prints why those checks cannot run here,
# or nothing when they can: flowrun is root, a user nobody exists, setpriv is there,
# and nobody can run a program at all (in a chroot whose "/" is 0700, as a fresh
# root made by mktemp is, nobody cannot even load libc). A suite then prints
# "SKIP name: <why>" for each such check instead of failing or passing it.
nobody_why() {
    [ "$(id -u)" = 0 ] || { echo "not root (nothing to drop from)"; return; }
    id nobody > /dev/null 2>&1 || { echo "no user nobody"; return; }
    command -v setpriv > /dev/null || { echo "no setpriv"; return; }
    setpriv --reuid=nobody --regid="$(id -gn nobody)" --clear-groups -- /bin/true 2> /dev/null ||
        echo "the user nobody cannot run programs on this machine (is / searchable by others?)"
}
