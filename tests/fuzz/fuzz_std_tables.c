/*
 * fuzz_std_tables.c — libFuzzer target for the standard library's table readers
 * (stdlib/std_tables.c: std.read_csv and std.read_json, also of one record), which read files a
 * pipeline does not control. Any bytes become the file (a memfd, opened by its
 * /proc/self/fd path as the task opens a path); the first byte picks the reader and
 * one of a few row types. A read either fails through flow_fail with a message, or
 * returns rows whose every field is then read back (strings to their NUL): ASan and
 * UBSan see any byte out of place.
 *
 * The readers are compiled in from their sources, with the five task-ABI functions
 * they call (flow_alloc, flow_fail, flow_strdup, flow_list_new, flow_out_path)
 * renamed to this file's: an arena of blocks freed after each input, and a flow_fail
 * that formats its message (so a bad format argument is caught too). So the target
 * needs no runtime, plan or instance around the call.
 */
#define _GNU_SOURCE /* memfd_create */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define flow_alloc fz_alloc
#define flow_fail fz_fail
#define flow_strdup fz_strdup
#define flow_list_new fz_list_new
#define flow_out_path fz_out_path
#include "../../stdlib/std_common.c"
#include "../../stdlib/std_tables.c"

static void **blocks;
static size_t nblocks, capblocks;
static int failed;
static char failmsg[4096];

void *fz_alloc(size_t n) {
    if (nblocks == capblocks) {
        size_t cap = capblocks ? capblocks * 2 : 64;
        void **b = realloc(blocks, cap * sizeof *b);
        if (!b) return NULL;
        blocks = b;
        capblocks = cap;
    }
    void *p = malloc(n ? n : 1);
    if (p) blocks[nblocks++] = p;
    return p;
}

char *fz_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = fz_alloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

flow_list fz_list_new(int64_t len, size_t item_size) {
    flow_list l = {0, NULL};
    if (len < 0 || (item_size && (uint64_t)len > SIZE_MAX / item_size)) return l;
    void *p = fz_alloc((size_t)len * item_size);
    if (!p) return l;
    memset(p, 0, (size_t)len * item_size);
    l.len = len;
    l.items = p;
    return l;
}

const char *fz_out_path(const char *name) {
    (void)name;
    return NULL; /* the readers write nothing */
}

void fz_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(failmsg, sizeof failmsg, fmt, ap);
    va_end(ap);
    failed = 1;
}

/* the row types tried: every cell kind a table holds */
static const char *const types[] = {
    "[{name:s,score:i,ok:b,x:f}]",
    "[{a:s}]",
    "[{n:i,m:i}]",
    "[{when:s,f:f,b:b,s:s,i:i}]",
};

/* Read every field of every row back (what a consumer of the list does). */
static size_t touch(const flow_list *l, const sty *row) {
    size_t sum = 0;
    for (int64_t r = 0; r < l->len; r++) {
        const char *rec = (const char *)l->items + (size_t)r * row->size;
        for (int k = 0; k < row->n; k++) {
            const void *f = rec + row->offs[k];
            switch (row->fields[k]->kind) {
            case 'i': sum += (size_t) * (const int64_t *)f; break;
            case 'f': sum += (size_t)(*(const double *)f != 0); break;
            case 'b': sum += *(const bool *)f; break;
            default: {
                const char *s = *(const char *const *)f;
                if (s) sum += strlen(s);
            }
            }
        }
    }
    return sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    /* bit 0: JSON (else CSV); bit 7 with JSON: one record (std_read_json_one, the row
     * type's text without its brackets); bits 1-2: the type */
    int which = data[0] & 1, t = (data[0] >> 1) % (int)(sizeof types / sizeof *types);
    int one = which && (data[0] & 0x80);
    char rowtext[64];
    snprintf(rowtext, sizeof rowtext, "%.*s", (int)strlen(types[t]) - 2, types[t] + 1);
    data++, size--;
    int fd = memfd_create("fuzz-table", MFD_CLOEXEC);
    if (fd < 0) return 0;
    size_t off = 0;
    while (off < size) {
        ssize_t w = write(fd, data + off, size - off);
        if (w <= 0) break;
        off += (size_t)w;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    failed = 0;
    flow_list rows = one     ? std_read_json_one(path, rowtext)
                     : which ? std_read_json(path, types[t])
                             : std_read_csv(path, types[t]);
    if (!failed) {
        const sty *lt = ty_of(types[t]);
        if (!lt || (rows.len && !rows.items)) abort(); /* success must give the rows */
        if (one && rows.len != 1) abort();              /* one record: a list of one */
        volatile size_t sum = touch(&rows, lt->elem);
        (void)sum;
    } else if (!failmsg[0]) {
        abort(); /* a failure always says why */
    }
    close(fd);
    for (size_t i = 0; i < nblocks; i++)
        free(blocks[i]);
    nblocks = 0;
    return 0;
}
