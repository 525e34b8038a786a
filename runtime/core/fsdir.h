/*
 * fsdir.h — folders and files under the state directory, made without following links.
 *
 * flowrun writes logs/RUN/TASK/IDX.log and work/STAMP/TASK-K-ID/{out,scratch} below the
 * state directory. Anyone who can write there could plant a symbolic link where one of
 * those names goes and have flowrun write, or delete, through it. So each folder below
 * the state directory is made with mkdirat and opened with O_DIRECTORY|O_NOFOLLOW
 * relative to the descriptor of its parent, which flowrun opened itself, and each file
 * is opened with O_NOFOLLOW|O_CREAT: a link in any of those places makes the call fail
 * (ELOOP or ENOTDIR) instead of being followed. The state directory itself, as the user
 * named it, is resolved the ordinary way (a user may well keep it behind a link).
 *
 * Every function returns a descriptor the caller closes, or -1 with errno set.
 */
#ifndef FLOW_FSDIR_H
#define FLOW_FSDIR_H

#include <stddef.h>

/* Open the folder path, creating what is missing when create is set. Its first `trusted`
 * bytes (a whole number of components, e.g. the state directory) are created and
 * resolved as usual; the rest is walked with fsdir_walk. */
int fsdir_open(const char *path, size_t trusted, int create);

/* Open the folder rel (a relative path) below the folder open as `at` (or AT_FDCWD),
 * one fsdir_sub step per component. */
int fsdir_walk(int at, const char *rel, int create);

/* Open the folder name (one component: no '/') inside the folder open as `at`, making
 * it first when create is set; a link there is refused. */
int fsdir_sub(int at, const char *name, int create);

/* Create name inside `at` for writing, truncating an existing file (O_EXCL when excl
 * is set); a link there is refused. */
int fsdir_file(int at, const char *name, int excl);

#endif
