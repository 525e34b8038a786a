/*
 * watch.h — a folder watched recursively with inotify, for `flowrun serve`'s data
 * triggers (docs/serve.md "Data triggers"). The watch only says "something under
 * the folder changed"; what changed is found by the run itself (the incremental-
 * directory machinery compares each file's size and mtime, then its hash).
 */
#ifndef FLOW_WATCH_H
#define FLOW_WATCH_H

#include <stddef.h>

typedef struct fw_watch fw_watch;

/* Watch `root` and every folder below it. NULL with why in err (the folder does not
 * exist, no inotify). */
fw_watch *fw_open(const char *root, char *err, size_t errlen);
/* The descriptor to poll for POLLIN. */
int fw_fd(const fw_watch *w);
/* Read what is pending, without blocking: new folders are watched as they appear; on
 * a queue overflow (IN_Q_OVERFLOW) the whole tree is walked again. The number of
 * events that mean a change (0: none), or -1 when the root itself went away (the
 * caller reopens it later). A warning (watch limit reached) goes to err, once. */
int fw_drain(fw_watch *w, char *err, size_t errlen);
/* Overflows seen so far (for tests and the log). */
long fw_overflows(const fw_watch *w);
void fw_close(fw_watch *w);

#endif
