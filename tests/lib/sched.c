/*
 * libsched.so — C tasks for the scheduler's golden programs (tests/run/).
 * Each task is tiny and deterministic; the ones that observe scheduling
 * (order, attempts, concurrency) write small files. They check what flow_alloc
 * gives, as a task must: NULL means the instance has already failed ("out of
 * memory"; test_oom fails each allocation in turn), and what they return then is
 * ignored.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <flow.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int64_t inc(int64_t x) {
    return x + 1;
}
int64_t add(int64_t a, int64_t b) {
    return a + b;
}
int64_t pair(int64_t a, int64_t b) {
    return a * 10 + b;
}
int64_t square(int64_t x) {
    return x * x;
}
int64_t ident(int64_t x) {
    return x;
}

int64_t sum(flow_list xs) {
    const int64_t *v = xs.items;
    int64_t s = 0;
    for (int64_t i = 0; i < xs.len; i++)
        s += v[i];
    return s;
}

int64_t count(flow_list xs) {
    return xs.len;
}

/* Fails for odd inputs. */
int64_t fail_odd(int64_t x) {
    if (x % 2) flow_fail("odd input %lld", (long long)x);
    return x;
}

/* Fails always, with a message. */
int64_t boom(int64_t x) {
    flow_fail("boom on %lld", (long long)x);
    return 0;
}

/* Fails on its first attempt: attempts are counted in a file beside the
 * instance's scratch folder (that folder is kept across retries). */
int64_t flaky(int64_t x) {
    const char *scratch = flow_scratch_dir();
    if (!scratch) {
        flow_fail("no scratch folder");
        return 0;
    }
    char buf[4096], path[4200];
    snprintf(buf, sizeof buf, "%s", scratch);
    snprintf(path, sizeof path, "%s/attempts", dirname(buf));
    int n = 0;
    FILE *f = fopen(path, "r");
    if (f) {
        if (fscanf(f, "%d", &n) != 1) n = 0;
        fclose(f);
    }
    f = fopen(path, "w");
    if (f) {
        fprintf(f, "%d\n", n + 1);
        fclose(f);
    }
    if (n == 0) flow_fail("first attempt of %lld fails", (long long)x);
    return x * 100 + n + 1; /* 100x + the attempt that succeeded */
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A slow task that uses no CPU: sleeps us microseconds, returns x (bench/slow.sh,
 * bench/pool.c: flowrun's own cost per instance is what is left of its CPU time). */
int64_t nap(int64_t x, int64_t us) {
    struct timespec ts = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000L};
    while (us > 0 && nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    return x;
}

/* A pipeline stage: sleeps ms, appends "name x wall-clock-ms" to the log file, returns x. */
int64_t stage(int64_t x, const char *name, const char *log, int64_t ms) {
    sleep_ms((int)ms);
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
        char line[128];
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        long long ms = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        int n = snprintf(line, sizeof line, "%s %lld %lld\n", name, (long long)x, ms);
        if (write(fd, line, (size_t)n) < 0) flow_fail("cannot write the log");
        close(fd);
    }
    return x;
}

/* Concurrency probe: counts instances inside at once (a counter file under
 * flock); returns 1 when more than `limit` were inside together. */
static int bump(const char *path, int delta, int *now) {
    int fd = open(path, O_RDWR | O_CREAT, 0644);
    if (fd < 0) return -1;
    flock(fd, LOCK_EX);
    char buf[32] = {0};
    ssize_t r = pread(fd, buf, sizeof buf - 1, 0);
    int v = r > 0 ? atoi(buf) : 0;
    v += delta;
    int n = snprintf(buf, sizeof buf, "%d\n", v);
    if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)n, 0) < 0) v = -1;
    flock(fd, LOCK_UN);
    close(fd);
    *now = v;
    return 0;
}

int64_t probe(int64_t x, const char *counter, int64_t limit) {
    int inside = 0, after = 0;
    (void)x;
    if (bump(counter, 1, &inside) != 0) flow_fail("cannot open %s", counter);
    sleep_ms(15);
    bump(counter, -1, &after);
    return inside > limit ? 1 : 0;
}

/* A void task: writes a marker file named after x. */
void touch(int64_t x) {
    char path[64];
    snprintf(path, sizeof path, "touched-%lld", (long long)x);
    FILE *f = fopen(path, "w");
    if (f) fclose(f);
}

/* Reads what touch wrote: 1 when the marker for x exists. */
int64_t touched(int64_t x) {
    char path[64];
    snprintf(path, sizeof path, "touched-%lld", (long long)x);
    struct stat st;
    int64_t r = stat(path, &st) == 0;
    unlink(path);
    return r;
}

/* Strings, paths, records, bytes. */
const char *greet(const char *name) {
    size_t n = strlen(name) + 8;
    char *s = flow_alloc(n);
    if (!s) return NULL;
    snprintf(s, n, "hello %s", name);
    return s;
}

int64_t file_size(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) flow_fail("cannot stat %s", path);
    return (int64_t)st.st_size;
}

const char *join_strs(flow_list xs) {
    const char *const *v = xs.items;
    size_t n = 1;
    for (int64_t i = 0; i < xs.len; i++)
        n += strlen(v[i]) + 1;
    char *s = flow_alloc(n);
    if (!s) return NULL;
    s[0] = 0;
    for (int64_t i = 0; i < xs.len; i++) {
        if (i) strcat(s, ",");
        strcat(s, v[i]);
    }
    return s;
}

typedef struct word {
    const char *text; /* the word */
    int64_t n;        /* its length */
} word;

word measure(const char *text) {
    word w = {flow_strdup(text), (int64_t)strlen(text)};
    return w;
}

flow_bytes to_bytes(const char *s) {
    size_t n = strlen(s);
    uint8_t *d = flow_alloc(n ? n : 1);
    if (!d) return (flow_bytes){NULL, 0};
    memcpy(d, s, n);
    flow_bytes b = {d, (int64_t)n};
    return b;
}

int64_t bytes_len(flow_bytes b) {
    return b.len;
}

/* Writes text to a fresh output file and returns its path. */
const char *write_text(const char *name, const char *text) {
    const char *path = flow_out_path(name);
    FILE *f = path ? fopen(path, "w") : NULL;
    if (!f) {
        flow_fail("cannot create output %s", name);
        return "";
    }
    fputs(text, f);
    fclose(f);
    return path;
}

/* A list of n ints 0..n-1 made by a task (a run-time length). */
flow_list upto(int64_t n) {
    flow_list l = flow_list_new(n, sizeof(int64_t));
    for (int64_t i = 0; i < n; i++)
        ((int64_t *)l.items)[i] = i;
    return l;
}

/* ---- the tasks of the language.md programs ---- */

static int cmp_paths(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void walk(const char *dir, char ***v, int64_t *n, int64_t *cap, int depth) {
    DIR *d = depth < 16 ? opendir(dir) : NULL;
    if (!d) return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        char full[4096];
        snprintf(full, sizeof full, "%s/%s", dir, de->d_name);
        struct stat st;
        if (stat(full, &st) != 0) continue;
        if (S_ISDIR(st.st_mode)) {
            walk(full, v, n, cap, depth + 1);
        } else if (S_ISREG(st.st_mode)) {
            if (*n == *cap) {
                *cap = *cap ? *cap * 2 : 16;
                *v = realloc(*v, (size_t)*cap * sizeof **v);
            }
            (*v)[(*n)++] = strdup(full);
        }
    }
    closedir(d);
}

/* Every regular file under root, sorted. */
flow_list list_files(const char *root) {
    char **v = NULL;
    int64_t n = 0, cap = 0;
    walk(root, &v, &n, &cap, 0);
    if (n) qsort(v, (size_t)n, sizeof *v, cmp_paths);
    flow_list l = flow_list_new(n, sizeof(const char *));
    for (int64_t i = 0; i < n; i++) {
        ((const char **)l.items)[i] = flow_strdup(v[i]);
        free(v[i]);
    }
    free(v);
    return l;
}

int64_t count_words(const char *file) {
    FILE *f = fopen(file, "r");
    if (!f) {
        flow_fail("cannot open %s", file);
        return 0;
    }
    int64_t n = 0;
    int c, in = 0;
    while ((c = fgetc(f)) != EOF) {
        int sp = c == ' ' || c == '\n' || c == '\t' || c == '\r';
        if (!sp && !in) n++;
        in = !sp;
    }
    fclose(f);
    return n;
}

int64_t max_of(flow_list xs) {
    int64_t m = 0;
    for (int64_t i = 0; i < xs.len; i++)
        if (((int64_t *)xs.items)[i] > m) m = ((int64_t *)xs.items)[i];
    return m;
}

static const char *copy_out(const char *src, const char *name, int upper) {
    const char *dst = flow_out_path(name);
    FILE *in = fopen(src, "r"), *out = dst ? fopen(dst, "w") : NULL;
    if (!in || !out) {
        if (in) fclose(in);
        if (out) fclose(out);
        flow_fail("cannot copy %s", src);
        return "";
    }
    int c;
    while ((c = fgetc(in)) != EOF)
        fputc(upper && c >= 'a' && c <= 'z' ? c - 32 : c, out);
    fclose(in);
    fclose(out);
    return dst;
}

/* "Resizing" copies the file into the instance's outputs. */
const char *resize_image(const char *src, int64_t width) {
    char name[64];
    snprintf(name, sizeof name, "w%lld.out", (long long)width);
    return copy_out(src, name, 0);
}

const char *thumb(const char *src) {
    return copy_out(src, "thumb.out", 0);
}

/* "Cleaning" upper-cases the text into a new output file. */
const char *strip(const char *f) {
    return copy_out(f, "clean.txt", 1);
}

flow_bytes fetch(const char *url) {
    return to_bytes(url);
}

void store(flow_bytes data, const char *dst) {
    FILE *f = fopen(dst, "a");
    if (!f) {
        flow_fail("cannot write %s", dst);
        return;
    }
    fwrite(data.data, 1, (size_t)data.len, f);
    fputc('\n', f);
    fclose(f);
}

typedef struct page {
    const char *title; /* the text up to the first '/' */
    int64_t size;      /* bytes */
} page;

page unpack(flow_bytes b) {
    int64_t n = 0;
    while (n < b.len && b.data[n] != '/')
        n++;
    char *t = flow_alloc((size_t)n + 1);
    if (!t) return (page){NULL, 0};
    memcpy(t, b.data, (size_t)n);
    t[n] = 0;
    page p = {t, b.len};
    return p;
}

int64_t index_page(page p) {
    return p.size * 1000 + (int64_t)strlen(p.title);
}

int64_t index_doc(flow_bytes doc, const char *lang) {
    return doc.len * 100 + (int64_t)strlen(lang);
}
