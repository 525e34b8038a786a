/*
 * podman.h — what flowrun asks of podman (podman.c): the command that runs an sh
 * task's command in its image, removing a container, checking podman is there,
 * and an image's id (for the cache key).
 */
#ifndef FLOW_PODMAN_H
#define FLOW_PODMAN_H

#include <stddef.h>

#include "plan.h"
#include "value.h"

/* The `podman run ...` argv (NULL-terminated, malloc'ed: rt_podman_argv_free) that
 * runs cmd for task ti (it has image:) with arguments args, rw_dir mounted
 * read-write and the container called name. NULL with why. */
char **rt_podman_argv(const fl_plan *p, uint32_t ti, const fl_val *args, const char *cmd,
                      const char *rw_dir, const char *name, char *why, size_t whylen);
void rt_podman_argv_free(char **argv);
/* As root, give the task's run_as user (if it has one) the n folders dirs (NULL
 * entries skipped), which its container writes. 0, or -1 with why. */
int rt_podman_hand_over(const fl_plan *p, uint32_t ti, const char *const *dirs, int n, char *why,
                        size_t whylen);
/* A fresh container name (flow-PID-TIME-N) into buf. */
void rt_podman_name(char *buf, size_t cap);
/* Run argv (argv[0] on PATH: "podman"), stdin from /dev/null; its stdout into *out
 * (malloc'ed, NUL-terminated, at most 64 MiB) when out is given, else to /dev/null;
 * when it fails, its stderr's first line into err. The exit status, or -1 (err says
 * why) when it could not run. */
int rt_podman_run(char *const *argv, char **out, char *err, size_t errlen);
/* The environment variable naming the run's tag, which the containers of its sh
 * tasks carry as label flow-sh=TAG (set before the container pool is forked). */
#define RT_PODMAN_TAG_ENV "FLOW_PODMAN_TAG"
/* `podman rm -f -t 0` of every container labelled flow-sh=TAG; best effort. */
void rt_podman_remove_tagged(const char *tag);
/* `podman rm -f -t 0 NAME`, waited for; best effort. */
void rt_podman_remove(const char *name);
/* Can `podman` be run (`podman version`)? 0, or -1 with why. */
int rt_podman_check(char *why, size_t whylen);
/* The image's id (`podman image inspect --format {{.Id}}`) into id. 0, or -1 with
 * why (podman missing, image not in local storage). */
int rt_podman_image_id(const char *image, char *id, size_t idcap, char *why, size_t whylen);

#endif /* FLOW_PODMAN_H */
