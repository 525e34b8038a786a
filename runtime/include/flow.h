/*
 * flow.h — the C task ABI of flow, and the API for embedding the runtime.
 *
 * A task is an ordinary C function whose parameter and return types follow
 * the table in docs/language.md (int -> int64_t, float -> double, bool -> bool,
 * str/path/dir/date -> const char *, bytes -> flow_bytes, [T] -> flow_list,
 * records -> C structs with the fields in declaration order).
 *
 * Ownership: arguments are borrowed for the duration of the call and must not
 * be modified. Results that point to memory must point to memory from
 * flow_alloc / flow_strdup / flow_list_new, or to static data; the runtime
 * copies what it keeps and never calls free() on a user pointer.
 */
#ifndef FLOW_H
#define FLOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct flow_bytes {
    const uint8_t *data; /* the bytes (borrowed or flow_alloc'ed) */
    int64_t len;         /* number of bytes */
} flow_bytes;

typedef struct flow_list {
    int64_t len; /* number of items */
    void *items; /* items laid out as a C array of the element type */
} flow_list;

#if defined(__GNUC__)
#define FLOW_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define FLOW_PRINTF(a, b)
#endif

/* ---- inside a task --------------------------------------------------------- */

/* This instance failed; its return value is ignored. */
void flow_fail(const char *fmt, ...) FLOW_PRINTF(1, 2);
/* A line in this instance's log. */
void flow_log(const char *fmt, ...) FLOW_PRINTF(1, 2);
/* Memory that lives until the runtime has stored the instance's result. */
void *flow_alloc(size_t n);
char *flow_strdup(const char *s);
/* A list of len items of item_size bytes each, zero-filled, in flow_alloc memory. */
flow_list flow_list_new(int64_t len, size_t item_size);
/* A fresh path in this instance's output directory (the file is not created). */
const char *flow_out_path(const char *name);
/* Scratch space for this instance, shared by the halves of a combined task. */
const char *flow_scratch_dir(void);
/* This instance's map index; -1 when the instance is not mapped. */
int64_t flow_map_index(void);

#ifdef __cplusplus
}
#endif
#endif /* FLOW_H */
