/*
 * remote.c — the files of remote execution (remote.h): batch files, result
 * chunks and end markers, their atomic writing and bounded reading, and job keys.
 *
 * DESIGN
 *   The three formats share one frame: an 8-byte magic (ending in '\n', so a
 *   text-mode copy or a truncated first line shows), a u32 version, the fields in
 *   little-endian, and a u64 FNV-1a (hash.h) of every byte before it. The
 *   trailer is checked first, so a torn or damaged file is refused as a whole
 *   before any field is read; then every count and length is checked against
 *   the bytes left (a reader `rd` that turns any overrun into one sticky error),
 *   so even a file whose trailer was forged cannot make a reader go out of
 *   bounds. Strings are a u32 length, the bytes and a NUL (checked), so decoded
 *   strings point into the decoder's copy of the file; 0xffffffff is NULL.
 *   Values stay encoded (fv_encode) in the files: only a reader that has the
 *   plan (the worker for arguments, the driver for results) decodes them, with
 *   fv_decode, which checks them against their type.
 *
 *   Files are written atomically: a temp file in the same folder, fsync'd, then
 *   renamed into place, so a reader sees a whole file or none (remote.h).
 *
 *   Decoders copy their input into one block (mem) the result points into; the
 *   arrays are a second allocation; *_free releases both. Plain malloc: these
 *   run in the worker and the driver, outside any plan's context.
 */
#define _GNU_SOURCE
#include "remote.h"
#include "digest.h"
#include "hash.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RM_NULL_STR 0xffffffffu
static const char magic_batch[8] = "FLOWRMB\n";
static const char magic_result[8] = "FLOWRMR\n";
static const char magic_end[8] = "FLOWRME\n";

/* ---- job keys ---- */

rm_key rm_job_key(const fl_plan *p, const rt_job *job) {
    fl_sha256 s;
    sha256_init(&s);
    const plan_task *T = &p->tasks[job->task];
    const char *name = plan_str(p, T->name);
    uint8_t head[24];
    uint32_t t = job->task;
    uint64_t mi = (uint64_t)job->map_index;
    for (int i = 0; i < 4; i++)
        head[i] = (uint8_t)(t >> (8 * i));
    for (int i = 0; i < 8; i++)
        head[4 + i] = (uint8_t)(mi >> (8 * i));
    for (int i = 0; i < 4; i++)
        head[12 + i] = (uint8_t)(job->attempt >> (8 * i));
    sha256_update(&s, head, 16);
    sha256_update(&s, name, strlen(name) + 1);
    fv_buf b = {.ctx = p->ctx};
    for (uint32_t i = 0; i < T->nparams; i++)
        fv_encode(p, p->params[T->first_param + i].type, job->args[i], &b);
    sha256_update(&s, b.data, b.len); /* out of memory: a key of what fitted, still stable */
    fl_free(p->ctx, b.data);
    fl_digest d;
    sha256_final(&s, &d);
    rm_key k = {0, 0};
    for (int i = 0; i < 8; i++) {
        k.hi = k.hi << 8 | d.b[i];
        k.lo = k.lo << 8 | d.b[8 + i];
    }
    return k;
}

/* ---- writing ---- */

static void put_head(fv_buf *b, const char magic[8]) {
    fv_buf_put(b, magic, 8);
    fv_buf_put_le(b, RM_FORMAT_VERSION, 4);
}

static void put_str(fv_buf *b, const char *s) {
    if (!s) {
        fv_buf_put_le(b, RM_NULL_STR, 4);
        return;
    }
    size_t n = strlen(s);
    fv_buf_put_le(b, (uint32_t)n, 4);
    fv_buf_put(b, s, n + 1);
}

static void put_bytes(fv_buf *b, const uint8_t *d, uint32_t n) {
    fv_buf_put_le(b, n, 4);
    fv_buf_put(b, d, n);
}

static void put_f64(fv_buf *b, double v) {
    uint64_t u;
    memcpy(&u, &v, 8);
    fv_buf_put_le(b, u, 8);
}

static void put_key(fv_buf *b, rm_key k) {
    fv_buf_put_le(b, k.hi, 8);
    fv_buf_put_le(b, k.lo, 8);
}

static void put_trailer(fv_buf *b) {
    if (b->failed) return;
    fv_buf_put_le(b, fl_hash_bytes(b->data, b->len), 8);
}

void rm_batch_encode(const rm_batch *b, fv_buf *out) {
    put_head(out, magic_batch);
    fv_buf_put(out, b->plan_hash, 32);
    fv_buf_put_le(out, (uint64_t)b->run, 8);
    fv_buf_put_le(out, b->batch, 4);
    fv_buf_put_le(out, b->nelem, 4);
    fv_buf_put_le(out, b->njobs, 4);
    for (uint32_t e = 0; e <= b->nelem; e++)
        fv_buf_put_le(out, b->first[e], 4);
    for (uint32_t j = 0; j < b->njobs; j++) {
        const rm_bjob *J = &b->jobs[j];
        put_key(out, J->key);
        fv_buf_put_le(out, J->task, 4);
        fv_buf_put_le(out, (uint64_t)J->map_index, 8);
        fv_buf_put_le(out, J->attempt, 4);
        fv_buf_put_le(out, (uint64_t)J->timeout_ms, 8);
        put_str(out, J->out_dir);
        put_str(out, J->scratch_dir);
        put_bytes(out, J->args, J->args_len);
    }
    put_trailer(out);
}

void rm_chunk_encode(const rm_chunk *c, fv_buf *out) {
    put_head(out, magic_result);
    fv_buf_put_le(out, (uint64_t)c->run, 8);
    fv_buf_put_le(out, c->batch, 4);
    fv_buf_put_le(out, c->element, 4);
    fv_buf_put_le(out, c->nres, 4);
    for (uint32_t i = 0; i < c->nres; i++) {
        const rm_res *r = &c->res[i];
        fv_buf_put_le(out, r->job, 4);
        put_key(out, r->key);
        fv_buf_put_le(out, r->ok ? 1 : 0, 1);
        put_bytes(out, r->value, r->value_len);
        put_str(out, r->error);
        put_str(out, r->log);
        put_f64(out, r->start);
        put_f64(out, r->end);
        fv_buf_put_le(out, (uint64_t)r->peak_rss_kb, 8);
        fv_buf_put_le(out, (uint32_t)r->term_signal, 4);
        fv_buf_put_le(out, (uint32_t)r->worker_pid, 4);
        put_str(out, r->host);
    }
    put_trailer(out);
}

void rm_end_encode(int64_t run, uint32_t batch, uint32_t element, uint32_t nresults, fv_buf *out) {
    put_head(out, magic_end);
    fv_buf_put_le(out, (uint64_t)run, 8);
    fv_buf_put_le(out, batch, 4);
    fv_buf_put_le(out, element, 4);
    fv_buf_put_le(out, nresults, 4);
    put_trailer(out);
}

/* ---- reading ---- */

typedef struct rd {
    const uint8_t *p;
    size_t n, off;
    const char *bad; /* the first problem, or NULL */
} rd;

static const uint8_t *take(rd *r, size_t n, const char *what) {
    if (r->bad) return NULL;
    if (n > r->n - r->off) {
        r->bad = what;
        return NULL;
    }
    const uint8_t *q = r->p + r->off;
    r->off += n;
    return q;
}

static uint64_t get_le(rd *r, int n, const char *what) {
    const uint8_t *q = take(r, (size_t)n, what);
    uint64_t v = 0;
    for (int i = 0; q && i < n; i++)
        v |= (uint64_t)q[i] << (8 * i);
    return v;
}

static const char *get_str(rd *r, const char *what) {
    uint32_t n = (uint32_t)get_le(r, 4, what);
    if (r->bad || n == RM_NULL_STR) return NULL;
    const uint8_t *q = take(r, (size_t)n + 1, what);
    if (!q) return NULL;
    if (q[n] != 0 || memchr(q, 0, n)) {
        r->bad = what;
        return NULL;
    }
    return (const char *)q;
}

static const uint8_t *get_bytes(rd *r, uint32_t *len, const char *what) {
    *len = (uint32_t)get_le(r, 4, what);
    return take(r, *len, what);
}

static double get_f64(rd *r, const char *what) {
    uint64_t u = get_le(r, 8, what);
    double v;
    memcpy(&v, &u, 8);
    return v;
}

static rm_key get_key(rd *r, const char *what) {
    rm_key k;
    k.hi = get_le(r, 8, what);
    k.lo = get_le(r, 8, what);
    return k;
}

/* Check the frame (magic, version, trailer) of data[0..len) and start a reader on
 * the fields between. 0, or -1 with err. */
static int open_frame(const uint8_t *data, size_t len, const char magic[8], const char *kind, rd *r,
                      char *err, size_t errlen) {
    const char *a = strchr("aeiou", kind[0]) ? "an" : "a";
    if (len < 8 + 4 + 8) {
        snprintf(err, errlen, "not %s %s file: %zu bytes (truncated?)", a, kind, len);
        return -1;
    }
    if (memcmp(data, magic, 8)) {
        snprintf(err, errlen, "not %s %s file (its first bytes are wrong)", a, kind);
        return -1;
    }
    uint32_t v = (uint32_t)data[8] | (uint32_t)data[9] << 8 | (uint32_t)data[10] << 16 |
                 (uint32_t)data[11] << 24;
    if (v != RM_FORMAT_VERSION) {
        snprintf(err, errlen, "%s file of format version %u; this flowrun reads version %u", kind,
                 v, RM_FORMAT_VERSION);
        return -1;
    }
    uint64_t want = 0;
    for (int i = 0; i < 8; i++)
        want |= (uint64_t)data[len - 8 + i] << (8 * i);
    if (fl_hash_bytes(data, len - 8) != want) {
        snprintf(err, errlen,
                 "damaged %s file: its checksum does not match (truncated or "
                 "changed)",
                 kind);
        return -1;
    }
    *r = (rd){.p = data, .n = len - 8, .off = 12};
    return 0;
}

static int close_frame(rd *r, const char *kind, char *err, size_t errlen) {
    if (!r->bad && r->off != r->n) r->bad = "trailing bytes";
    if (!r->bad) return 0;
    snprintf(err, errlen, "damaged %s file: bad %s at byte %zu", kind, r->bad, r->off);
    return -1;
}

/* open_frame, then a copy of the file for the decoded fields to point into (*mem),
 * the reader moved onto it. */
static int open_copy(const uint8_t *data, size_t len, const char magic[8], const char *kind, rd *r,
                     void **mem, char *err, size_t errlen) {
    if (open_frame(data, len, magic, kind, r, err, errlen)) return -1;
    uint8_t *copy = malloc(len);
    if (!copy) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    memcpy(copy, data, len);
    r->p = copy;
    *mem = copy;
    return 0;
}

void rm_batch_free(rm_batch *b) {
    if (!b) return;
    free(b->mem);
    free(b->first);
    free(b->jobs);
    b->mem = NULL;
    b->first = NULL;
    b->jobs = NULL;
}

int rm_batch_decode(const uint8_t *data, size_t len, rm_batch *b, char *err, size_t errlen) {
    memset(b, 0, sizeof *b);
    rd r;
    if (open_copy(data, len, magic_batch, "batch", &r, &b->mem, err, errlen)) return -1;
    const uint8_t *h = take(&r, 32, "plan hash");
    if (h) memcpy(b->plan_hash, h, 32);
    b->run = (int64_t)get_le(&r, 8, "run");
    b->batch = (uint32_t)get_le(&r, 4, "batch number");
    b->nelem = (uint32_t)get_le(&r, 4, "element count");
    b->njobs = (uint32_t)get_le(&r, 4, "job count");
    if (!r.bad && (b->njobs > RM_MAX_JOBS || b->nelem > RM_MAX_JOBS || b->nelem == 0 ||
                   /* each element needs 4 bytes, each job at least 52: the counts fit */
                   ((size_t)b->nelem + 1) * 4 + (size_t)b->njobs * 52 > r.n - r.off))
        r.bad = "element or job count";
    if (!r.bad) {
        b->first = malloc(((size_t)b->nelem + 1) * sizeof *b->first);
        b->jobs = calloc(b->njobs ? b->njobs : 1, sizeof *b->jobs);
        if (!b->first || !b->jobs) {
            rm_batch_free(b);
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        for (uint32_t e = 0; e <= b->nelem && !r.bad; e++) {
            b->first[e] = (uint32_t)get_le(&r, 4, "element range");
            if (!r.bad &&
                (b->first[e] > b->njobs || (e && b->first[e] < b->first[e - 1]) ||
                 (e == 0 && b->first[0] != 0) || (e == b->nelem && b->first[e] != b->njobs)))
                r.bad = "element range";
        }
        for (uint32_t j = 0; j < b->njobs && !r.bad; j++) {
            rm_bjob *J = &b->jobs[j];
            J->key = get_key(&r, "job key");
            J->task = (uint32_t)get_le(&r, 4, "job task");
            J->map_index = (int64_t)get_le(&r, 8, "job map index");
            J->attempt = (uint32_t)get_le(&r, 4, "job attempt");
            J->timeout_ms = (int64_t)get_le(&r, 8, "job timeout");
            J->out_dir = get_str(&r, "job out_dir");
            J->scratch_dir = get_str(&r, "job scratch_dir");
            J->args = get_bytes(&r, &J->args_len, "job arguments");
            if (!r.bad && (J->timeout_ms < 0 || J->map_index < -1)) r.bad = "job timeout or index";
        }
    }
    if (close_frame(&r, "batch", err, errlen)) {
        rm_batch_free(b);
        return -1;
    }
    return 0;
}

void rm_chunk_free(rm_chunk *c) {
    if (!c) return;
    free(c->mem);
    free(c->res);
    c->mem = NULL;
    c->res = NULL;
}

int rm_chunk_decode(const uint8_t *data, size_t len, rm_chunk *c, char *err, size_t errlen) {
    memset(c, 0, sizeof *c);
    rd r;
    if (open_copy(data, len, magic_result, "result", &r, &c->mem, err, errlen)) return -1;
    c->run = (int64_t)get_le(&r, 8, "run");
    c->batch = (uint32_t)get_le(&r, 4, "batch number");
    c->element = (uint32_t)get_le(&r, 4, "element");
    c->nres = (uint32_t)get_le(&r, 4, "result count");
    /* each result takes at least 69 bytes: the count fits the file */
    if (!r.bad && (c->nres > RM_MAX_JOBS || (size_t)c->nres * 69 > r.n - r.off))
        r.bad = "result count";
    if (!r.bad) {
        c->res = calloc(c->nres ? c->nres : 1, sizeof *c->res);
        if (!c->res) {
            rm_chunk_free(c);
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    for (uint32_t i = 0; i < c->nres && !r.bad; i++) {
        rm_res *R = &c->res[i];
        R->job = (uint32_t)get_le(&r, 4, "result job");
        R->key = get_key(&r, "result key");
        uint64_t ok = get_le(&r, 1, "result ok");
        if (!r.bad && ok > 1) r.bad = "result ok";
        R->ok = (int)ok;
        R->value = get_bytes(&r, &R->value_len, "result value");
        R->error = get_str(&r, "result error");
        R->log = get_str(&r, "result log");
        R->start = get_f64(&r, "result start");
        R->end = get_f64(&r, "result end");
        R->peak_rss_kb = (int64_t)get_le(&r, 8, "result peak rss");
        R->term_signal = (int32_t)(uint32_t)get_le(&r, 4, "result signal");
        R->worker_pid = (int32_t)(uint32_t)get_le(&r, 4, "result pid");
        R->host = get_str(&r, "result host");
    }
    if (close_frame(&r, "result", err, errlen)) {
        rm_chunk_free(c);
        return -1;
    }
    return 0;
}

int rm_end_decode(const uint8_t *data, size_t len, int64_t *run, uint32_t *batch, uint32_t *element,
                  uint32_t *nresults, char *err, size_t errlen) {
    rd r;
    if (open_frame(data, len, magic_end, "end marker", &r, err, errlen)) return -1;
    *run = (int64_t)get_le(&r, 8, "run");
    *batch = (uint32_t)get_le(&r, 4, "batch number");
    *element = (uint32_t)get_le(&r, 4, "element");
    *nresults = (uint32_t)get_le(&r, 4, "result count");
    return close_frame(&r, "end marker", err, errlen);
}

/* ---- files ---- */

int rm_read_file(const char *path, uint8_t **data, size_t *len, char *err, size_t errlen) {
    *data = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(e));
        errno = e;
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size > RM_MAX_FILE) {
        snprintf(err, errlen, "%s: %s", path,
                 !S_ISREG(st.st_mode) ? "not a regular file" : "too large (or unreadable)");
        close(fd);
        errno = EINVAL;
        return -1;
    }
    size_t n = (size_t)st.st_size, got = 0;
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) {
        snprintf(err, errlen, "out of memory reading %s", path);
        close(fd);
        errno = ENOMEM;
        return -1;
    }
    while (got < n) {
        ssize_t k = read(fd, buf + got, n - got);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            snprintf(err, errlen, "cannot read %s: %s", path, k ? strerror(errno) : "short read");
            free(buf);
            close(fd);
            errno = EIO;
            return -1;
        }
        got += (size_t)k;
    }
    close(fd);
    *data = buf;
    *len = n;
    return 0;
}

void rm_state_tag(const char *state_dir, const char *volume, char out[9]) {
    uint64_t h = fl_hash_str(state_dir);
    if (volume) h = fl_hash_str_from(fl_hash_str_from(h, "\n"), volume);
    snprintf(out, 9, "%08x", (unsigned)(h ^ (h >> 32)));
}

int rm_write_file(const char *path, const void *data, size_t len, char *err, size_t errlen) {
    char tmp[PATH_MAX];
    const char *slash = strrchr(path, '/');
    int dl = slash ? (int)(slash - path) : 0;
    if ((size_t)snprintf(tmp, sizeof tmp, "%.*s%s.tmp-%s.%ld", dl, path, slash ? "/" : "",
                         slash ? slash + 1 : path, (long)getpid()) >= sizeof tmp) {
        snprintf(err, errlen, "path too long: %s", path);
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
        return -1;
    }
    const uint8_t *p = data;
    size_t done = 0;
    while (done < len) {
        ssize_t k = write(fd, p + done, len - done);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            snprintf(err, errlen, "cannot write %s: %s", tmp, k ? strerror(errno) : "no space");
            close(fd);
            unlink(tmp);
            return -1;
        }
        done += (size_t)k;
    }
    if (fsync(fd) || close(fd)) {
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        unlink(tmp);
        return -1;
    }
    if (rename(tmp, path)) {
        snprintf(err, errlen, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

int rm_batch_read(const char *path, rm_batch *b, char *err, size_t errlen) {
    uint8_t *data;
    size_t len;
    char why[512];
    memset(b, 0, sizeof *b);
    if (rm_read_file(path, &data, &len, err, errlen)) return -1;
    int rc = rm_batch_decode(data, len, b, why, sizeof why);
    if (rc) snprintf(err, errlen, "%s: %s", path, why);
    free(data);
    return rc;
}
