/* podman.c — libpodman.so: C tasks for tests/suites/64-podman.sh that tell where
 * they run: in the container of their image: (which has no /etc/os-release: make
 * image builds FROM scratch) or on the host. */
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flow.h"

/* 1 when path exists where the task runs, else 0. */
int64_t pm_sees(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* x * x, and the uid the task runs as in the high digits: uid * 1000000 + x * x. */
int64_t pm_square_uid(int64_t x) { return (int64_t)getuid() * 1000000 + x * x; }
