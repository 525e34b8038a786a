/*
 * remote_podman.h — the podman engine of the remote executor (remote_podman.c):
 * each element of a batch is a container of an image running `flowrun worker`
 * (docs/distributed.md, "Containers: image: under podman").
 */
#ifndef FLOW_REMOTE_PODMAN_H
#define FLOW_REMOTE_PODMAN_H

#include <stdint.h>

#include "remote.h"

typedef struct rm_podman_options {
    const char *image;      /* an image with flowrun on its PATH (make image) */
    const char *state_dir;  /* absolute: mounted read-write at the same path */
    const char *store_dir;  /* mounted read-only on top of it, or NULL */
    const char *const *ro;  /* more folders mounted read-only at the same path (the
                               plan's, the configuration's), NULL-terminated, or NULL */
    int network;            /* 1: podman's default network; 0: --network=none */
    const char *user;       /* --user "UID:GID", or NULL (the image's user) */
    int64_t memory;         /* --memory (bytes), 0: none; rm_start's when larger */
    uint32_t cpus;          /* --cpus, 0: none; rm_start's when larger */
    uint32_t max_procs;     /* --pids-limit, 0: none */
    uint32_t slots;         /* containers at once (the driver's capacity) */
} rm_podman_options;

/* NULL with one line in err when podman cannot be run or an option is wrong. */
rm_engine *rm_engine_podman(const rm_podman_options *o, char *err, size_t errlen);

#endif /* FLOW_REMOTE_PODMAN_H */
