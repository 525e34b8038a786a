/*
 * metrics.c — flowrun's Prometheus endpoint: a small HTTP server on a thread of its
 * own, and the text exposition format (0.0.4) of what flowrun counts.
 *
 * DESIGN
 *   The socket is bound by the command's thread before anything runs (mx_listen), so
 *   a mistake is said at once and the command exits 2. mx_start starts one thread
 *   that owns the socket and every connection: one poll() loop over the listening
 *   socket, a wake pipe (mx_stop) and at most MX_MAX_CONN connections, all
 *   non-blocking. No new dependency: an HTTP/1.0–1.1 server that reads one request
 *   head, answers it and closes (Connection: close) is smaller than any library's
 *   glue, and Prometheus scrapes that without complaint.
 *
 *   Hostile clients cannot hang or crash flowrun: a connection lives at most
 *   MX_CONN_TIMEOUT_MS from its accept (a slowloris is closed then), a request head
 *   longer than MX_MAX_REQUEST is answered 431 and closed, and a new connection
 *   beyond MX_MAX_CONN closes the oldest. Writes that would block wait in poll() for
 *   the same deadline. Nothing the endpoint does is on the scheduler's thread: the
 *   scheduler writes its counters with relaxed atomic stores (scheduler.h,
 *   sched_meter) and this thread reads them when scraped. SIGPIPE is not raised
 *   (MSG_NOSIGNAL).
 *
 *   The sizes of state.db and the store are read at most every MX_SIZES_EVERY
 *   seconds (the store is walked), however often the endpoint is scraped.
 */
#define _GNU_SOURCE /* pipe2, accept4 */
#include "metrics.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h" /* cli_count */
#include <flow.h> /* FLOW_VERSION */

static double mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- the exposition writer ---- */

void mx_escape(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '\\') fputs("\\\\", f);
        else if (*s == '"') fputs("\\\"", f);
        else if (*s == '\n') fputs("\\n", f);
        else fputc(*s, f);
    }
}

void mx_family(FILE *f, const char *name, const char *type, const char *help) {
    fprintf(f, "# HELP %s ", name);
    for (const char *s = help; *s; s++) { /* HELP escapes \ and newline only */
        if (*s == '\\') fputs("\\\\", f);
        else if (*s == '\n') fputs("\\n", f);
        else fputc(*s, f);
    }
    fprintf(f, "\n# TYPE %s %s\n", name, type);
}

static void put_value(FILE *f, double v) {
    if (isnan(v)) fputs("NaN", f);
    else if (isinf(v)) fputs(v > 0 ? "+Inf" : "-Inf", f);
    else if (v == floor(v) && fabs(v) < 9e15) fprintf(f, "%.0f", v);
    else fprintf(f, "%.17g", v);
}

static void put_labels(FILE *f, const char *const *labels, const char *le) {
    int n = 0;
    for (; labels && labels[0]; labels += 2) {
        fprintf(f, "%s%s=\"", n++ ? "," : "{", labels[0]);
        mx_escape(f, labels[1] ? labels[1] : "");
        fputc('"', f);
    }
    if (le) fprintf(f, "%sle=\"%s\"", n++ ? "," : "{", le);
    if (n) fputc('}', f);
}

void mx_sample(FILE *f, const char *name, const char *const *labels, double value) {
    fputs(name, f);
    put_labels(f, labels, NULL);
    fputc(' ', f);
    put_value(f, value);
    fputc('\n', f);
}

void mx_histogram(FILE *f, const char *name, const char *const *labels, const double *bounds,
                  int nbounds, const uint64_t *counts, double sum) {
    uint64_t cum = 0;
    char le[40];
    for (int b = 0; b <= nbounds; b++) {
        cum += counts[b];
        if (b < nbounds) snprintf(le, sizeof le, "%g", bounds[b]);
        else snprintf(le, sizeof le, "+Inf");
        fprintf(f, "%s_bucket", name);
        put_labels(f, labels, le);
        fprintf(f, " %llu\n", (unsigned long long)cum);
    }
    fprintf(f, "%s_sum", name);
    put_labels(f, labels, NULL);
    fputc(' ', f);
    put_value(f, sum);
    fprintf(f, "\n%s_count", name);
    put_labels(f, labels, NULL);
    fprintf(f, " %llu\n", (unsigned long long)cum);
}

/* ---- what flowrun exposes ---- */

void mx_write_build(FILE *f) {
    mx_family(f, "flow_build_info", "gauge", "flowrun's version (the value is always 1)");
    const char *l[] = {"version", FLOW_VERSION, NULL};
    mx_sample(f, "flow_build_info", l, 1);
}

/* Bytes of the regular files below dir (depth at most 8; links not followed). */
static double dir_bytes(int dirfd, int depth) {
    DIR *d = fdopendir(dirfd);
    if (!d) {
        close(dirfd);
        return 0;
    }
    double sum = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        struct stat st;
        if (fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW)) continue;
        if (S_ISREG(st.st_mode)) {
            sum += (double)st.st_size;
        } else if (S_ISDIR(st.st_mode) && depth < 8) {
            int fd = openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (fd >= 0) sum += dir_bytes(fd, depth + 1);
        }
    }
    closedir(d);
    return sum;
}

void mx_write_sizes(FILE *f, mx_sizes *z) {
    double t = mono();
    if (z->state_dir && (z->at == 0 || t - z->at >= MX_SIZES_EVERY)) {
        char path[4096];
        struct stat st;
        z->db_bytes = 0;
        const char *parts[] = {"state.db", "state.db-wal"};
        for (int i = 0; i < 2; i++) {
            snprintf(path, sizeof path, "%s/%s", z->state_dir, parts[i]);
            if (stat(path, &st) == 0) z->db_bytes += (double)st.st_size;
        }
        snprintf(path, sizeof path, "%s/store", z->state_dir);
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        z->store_bytes = fd >= 0 ? dir_bytes(fd, 0) : 0;
        z->at = t;
    }
    mx_family(f, "flow_state_db_bytes", "gauge",
              "size of state.db and its write-ahead log (read at most every 10 s)");
    mx_sample(f, "flow_state_db_bytes", NULL, z->db_bytes);
    mx_family(f, "flow_store_bytes", "gauge",
              "size of the files in the store (read at most every 10 s)");
    mx_sample(f, "flow_store_bytes", NULL, z->store_bytes);
}

#define LD(c) atomic_load_explicit(&(c), memory_order_relaxed)

void mx_write_instances(FILE *f, const mx_inst_row *rows, size_t n, int64_t queue) {
    static const char *const states[] = {"done", "cached", "failed"};
    mx_family(f, "flow_instances_total", "counter",
              "instances finished, by task and state: done (ran and succeeded), cached "
              "(served from the cache or a resumed run's record), failed");
    for (size_t i = 0; i < n; i++) {
        const mx_inst_row *r = &rows[i];
        uint64_t v[3] = {r->done, r->cached, r->failed};
        for (int k = 0; k < 3; k++) {
            const char *l[] = {"flow", r->flow, "env",   r->env, "task",
                               r->task, "state", states[k], NULL};
            mx_sample(f, "flow_instances_total", l, (double)v[k]);
        }
    }
#define ROW_LABELS(r) const char *l[] = {"flow", (r)->flow, "env", (r)->env, "task", (r)->task, NULL}
    if (n && rows[0].queued >= 0) { /* a live run's meter (serve counts ended runs only) */
        mx_family(f, "flow_instances_running", "gauge",
                  "instances with the executor now, by task (queued in a worker included)");
        for (size_t i = 0; i < n; i++) {
            ROW_LABELS(&rows[i]);
            mx_sample(f, "flow_instances_running", l, (double)rows[i].running);
        }
        mx_family(f, "flow_instances_queued", "gauge",
                  "instances the run has come to that wait: for their inputs or a free slot, by task");
        for (size_t i = 0; i < n; i++) {
            ROW_LABELS(&rows[i]);
            mx_sample(f, "flow_instances_queued", l, (double)rows[i].queued);
        }
    }
    mx_family(f, "flow_cache_hits_total", "counter", "instances served from the history, by task");
    for (size_t i = 0; i < n; i++) {
        ROW_LABELS(&rows[i]);
        mx_sample(f, "flow_cache_hits_total", l, (double)rows[i].cached);
    }
    mx_family(f, "flow_cache_misses_total", "counter",
              "instances looked up in the history and not found, by task");
    for (size_t i = 0; i < n; i++) {
        ROW_LABELS(&rows[i]);
        mx_sample(f, "flow_cache_misses_total", l, (double)rows[i].missed);
    }
    mx_family(f, "flow_instance_duration_seconds", "histogram",
              "duration of each execution of an instance that ran (retries included), by task");
    for (size_t i = 0; i < n; i++) {
        ROW_LABELS(&rows[i]);
        mx_histogram(f, "flow_instance_duration_seconds", l, sched_meter_bounds,
                     SCHED_METER_NBOUNDS, rows[i].bucket, rows[i].seconds);
    }
#undef ROW_LABELS
    if (queue >= 0 && n) {
        mx_family(f, "flow_queue_depth", "gauge",
                  "instances known and waiting: neither finished nor with the executor");
        const char *l[] = {"flow", rows[0].flow, "env", rows[0].env, NULL};
        mx_sample(f, "flow_queue_depth", l, (double)queue);
    }
}

size_t mx_meter_rows(const sched_meter *m, const char *flow, const char *env,
                     const char *(*task_name)(void *ud, uint32_t t), void *ud, mx_inst_row *rows) {
    size_t n = 0;
    for (uint32_t t = 0; t < m->n_tasks; t++) {
        const char *name = task_name(ud, t);
        if (!name) continue;
        const sched_task_meter *tm = &m->task[t];
        mx_inst_row *r = &rows[n++];
        r->flow = flow;
        r->env = env;
        r->task = name;
        r->done = LD(tm->done);
        r->cached = LD(tm->cached);
        r->failed = LD(tm->failed);
        r->missed = LD(tm->missed);
        r->running = LD(tm->running);
        /* each counter read whole, not all at one instant: never below 0 */
        int64_t q = (int64_t)(LD(tm->known) - LD(tm->skipped) - r->done - r->cached - r->failed) -
                    r->running;
        r->queued = q > 0 ? q : 0;
        for (int b = 0; b <= SCHED_METER_NBOUNDS; b++)
            r->bucket[b] = LD(tm->bucket[b]);
        r->seconds = LD(tm->seconds);
    }
    return n;
}

int64_t mx_meter_queue(const sched_meter *m) {
    int64_t q = (int64_t)LD(m->known) - (int64_t)LD(m->finished) - LD(m->running);
    return q > 0 ? q : 0;
}

/* ---- serve's tally of the instances of runs that ended ---- */

static void *lock_new(void) {
    pthread_mutex_t *m = malloc(sizeof *m);
    if (m) pthread_mutex_init(m, NULL);
    return m;
}

static void lock_free(void *lock) {
    if (lock) pthread_mutex_destroy(lock);
    free(lock);
}

int mx_tally_init(mx_tally *t) {
    memset(t, 0, sizeof *t);
    return (t->lock = lock_new()) ? 0 : -1;
}

void mx_tally_free(mx_tally *t) {
    for (size_t i = 0; i < t->n; i++) {
        free((char *)t->rows[i].flow);
        free((char *)t->rows[i].env);
        free((char *)t->rows[i].task);
    }
    free(t->rows);
    lock_free(t->lock);
    memset(t, 0, sizeof *t);
}

void mx_tally_add(mx_tally *t, const char *flow, const char *env, const char *task,
                  const char *state, double dur, int missed) {
    int k = !strcmp(state, "succeeded") ? 0 : !strcmp(state, "cached") ? 1
            : !strcmp(state, "failed")  ? 2 : -1;
    if (k < 0 || !t->lock) return;
    pthread_mutex_lock(t->lock);
    mx_inst_row *r = NULL;
    for (size_t i = 0; i < t->n && !r; i++)
        if (!strcmp(t->rows[i].task, task) && !strcmp(t->rows[i].flow, flow) &&
            !strcmp(t->rows[i].env, env))
            r = &t->rows[i];
    if (!r && t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 16;
        mx_inst_row *rows = realloc(t->rows, cap * sizeof *rows);
        if (rows) t->rows = rows, t->cap = cap;
    }
    if (!r && t->n < t->cap) {
        r = &t->rows[t->n];
        memset(r, 0, sizeof *r);
        r->queued = -1;
        r->flow = strdup(flow);
        r->env = strdup(env);
        r->task = strdup(task);
        if (r->flow && r->env && r->task) {
            t->n++;
        } else {
            free((char *)r->flow), free((char *)r->env), free((char *)r->task);
            r = NULL;
        }
    }
    if (r) {
        if (k == 0) r->done++;
        else if (k == 1) r->cached++;
        else r->failed++;
        if (missed && k != 1) r->missed++;
        if (k != 1 && dur >= 0) {
            int b = 0;
            while (b < SCHED_METER_NBOUNDS && dur > sched_meter_bounds[b]) b++;
            r->bucket[b]++;
            r->seconds += dur;
        }
    }
    pthread_mutex_unlock(t->lock);
}

void mx_write_tally(FILE *f, mx_tally *t) {
    if (!t->lock) return;
    pthread_mutex_lock(t->lock);
    mx_write_instances(f, t->rows, t->n, -1);
    pthread_mutex_unlock(t->lock);
}

/* ---- run counters by (flow, env) ---- */

typedef struct mx_run_row {
    char *flow, *env;
    uint64_t n[MX_RUN_SKIPPED + 1]; /* by mx_run_event */
    int64_t running;
} mx_run_row;

int mx_runs_init(mx_runs *r) {
    memset(r, 0, sizeof *r);
    return (r->lock = lock_new()) ? 0 : -1;
}

void mx_runs_free(mx_runs *r) {
    for (size_t i = 0; i < r->n; i++) {
        free(r->rows[i].flow);
        free(r->rows[i].env);
    }
    free(r->rows);
    lock_free(r->lock);
    memset(r, 0, sizeof *r);
}

void mx_runs_count(mx_runs *r, const char *flow, const char *env, mx_run_event ev) {
    if (!r->lock) return;
    pthread_mutex_lock(r->lock);
    mx_run_row *w = NULL;
    for (size_t i = 0; i < r->n && !w; i++)
        if (!strcmp(r->rows[i].flow, flow) && !strcmp(r->rows[i].env, env)) w = &r->rows[i];
    if (!w && r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 8;
        mx_run_row *rows = realloc(r->rows, cap * sizeof *rows);
        if (rows) r->rows = rows, r->cap = cap;
    }
    if (!w && r->n < r->cap) {
        w = &r->rows[r->n];
        memset(w, 0, sizeof *w);
        w->flow = strdup(flow);
        w->env = strdup(env);
        if (w->flow && w->env) r->n++;
        else free(w->flow), free(w->env), w = NULL;
    }
    if (w) {
        if (ev == MX_RUN_STARTED) w->running++;
        else w->running--;
        if (ev != MX_RUN_ENDED) w->n[ev]++;
    }
    pthread_mutex_unlock(r->lock);
}

void mx_write_runs(FILE *f, mx_runs *r) {
    static const struct {
        const char *name, *help;
    } fam[] = {
        {"flow_runs_started_total", "runs started, by flow and environment"},
        {"flow_runs_succeeded_total", "runs that produced their result (exit 0)"},
        {"flow_runs_failed_total", "runs that failed (exit 1) or could not start (exit 2)"},
        {"flow_runs_interrupted_total", "runs interrupted (exit 3, resumable)"},
        {"flow_runs_skipped_total",
         "serve: runs that found their interval done or busy in another process (exit 4, 5)"},
    };
    if (!r->lock) return;
    pthread_mutex_lock(r->lock);
    for (int k = 0; k <= MX_RUN_SKIPPED; k++) {
        mx_family(f, fam[k].name, "counter", fam[k].help);
        for (size_t i = 0; i < r->n; i++) {
            const char *l[] = {"flow", r->rows[i].flow, "env", r->rows[i].env, NULL};
            mx_sample(f, fam[k].name, l, (double)r->rows[i].n[k]);
        }
    }
    mx_family(f, "flow_runs_running", "gauge", "runs going now, by flow and environment");
    for (size_t i = 0; i < r->n; i++) {
        const char *l[] = {"flow", r->rows[i].flow, "env", r->rows[i].env, NULL};
        mx_sample(f, "flow_runs_running", l, (double)r->rows[i].running);
    }
    pthread_mutex_unlock(r->lock);
}

/* ---- the server ---- */

typedef struct mx_conn {
    int fd;           /* -1: free */
    double deadline;  /* monotonic: closed then, whatever its state */
    double since;     /* accepted (the oldest goes first when full) */
    size_t nin;       /* bytes of the request head read */
    char in[MX_MAX_REQUEST];
    char *out;        /* the response, once the head is read */
    size_t nout, sent;
} mx_conn;

struct mx_server {
    int fd;                      /* the listening socket */
    int wake[2];                 /* mx_stop writes here */
    int port;
    pthread_t thread;
    int started;
    void (*render)(void *ud, FILE *f);
    void *ud;
    mx_conn conn[MX_MAX_CONN];
};

int mx_port(const mx_server *s) {
    return s->port;
}

mx_server *mx_listen(const char *value, char *err, size_t errlen) {
    char host[256] = "127.0.0.1";
    const char *port = value;
    const char *colon = strrchr(value, ':');
    if (value[0] == '[') { /* [v6]:port */
        const char *close = strchr(value, ']');
        if (!close || close[1] != ':' || (size_t)(close - value - 1) >= sizeof host) {
            snprintf(err, errlen, "--metrics %s: expected ADDR:PORT, [ADDR]:PORT, :PORT or PORT",
                     value);
            return NULL;
        }
        snprintf(host, sizeof host, "%.*s", (int)(close - value - 1), value + 1);
        port = close + 2;
    } else if (colon) {
        if (colon != value) {
            if ((size_t)(colon - value) >= sizeof host || memchr(value, ':', (size_t)(colon - value))) {
                snprintf(err, errlen, "--metrics %s: an IPv6 address goes in brackets: [ADDR]:PORT",
                         value);
                return NULL;
            }
            snprintf(host, sizeof host, "%.*s", (int)(colon - value), value);
        }
        port = colon + 1;
    }
    int64_t pn;
    if (cli_count(port, 1, 65535, &pn)) {
        snprintf(err, errlen, "--metrics %s: the port must be a number from 1 to 65535", value);
        return NULL;
    }
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int g = getaddrinfo(host, port, &hints, &ai);
    if (g) {
        snprintf(err, errlen, "--metrics %s: address '%s': %s", value, host, gai_strerror(g));
        return NULL;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 64)) {
        int e = errno;
        snprintf(err, errlen, "--metrics %s: cannot listen on %s port %s: %s%s", value, host, port,
                 e == EADDRNOTAVAIL ? "the address is not one of this machine's" : strerror(e),
                 e == EADDRINUSE ? " (another program has it)" : "");
        if (fd >= 0) close(fd);
        freeaddrinfo(ai);
        return NULL;
    }
    freeaddrinfo(ai);
    mx_server *s = calloc(1, sizeof *s);
    if (!s || pipe2(s->wake, O_CLOEXEC | O_NONBLOCK)) {
        snprintf(err, errlen, "--metrics %s: %s", value, strerror(errno));
        free(s);
        close(fd);
        return NULL;
    }
    s->fd = fd;
    s->port = (int)pn;
    for (int i = 0; i < MX_MAX_CONN; i++)
        s->conn[i].fd = -1;
    return s;
}

static void conn_close(mx_conn *c) {
    if (c->fd >= 0) close(c->fd);
    free(c->out);
    c->fd = -1;
    c->out = NULL;
    c->nin = c->nout = c->sent = 0;
}

static void respond(mx_server *s, mx_conn *c, int code, const char *reason, int body_metrics) {
    char *body = NULL;
    size_t nbody = 0;
    FILE *f = open_memstream(&body, &nbody);
    if (!f) {
        conn_close(c);
        return;
    }
    if (body_metrics) s->render(s->ud, f);
    else fprintf(f, "%d %s\n", code, reason);
    fclose(f);
    size_t len = 0;
    f = open_memstream(&c->out, &len);
    if (!f) {
        free(body);
        conn_close(c);
        return;
    }
    fprintf(f,
            "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
            "Connection: close\r\n\r\n",
            code, reason,
            body_metrics ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain; charset=utf-8",
            nbody);
    fwrite(body, 1, nbody, f);
    fclose(f);
    free(body);
    c->nout = len;
    c->sent = 0;
}

/* The request head is read: answer it. */
static void handle(mx_server *s, mx_conn *c) {
    char method[16], target[512], version[16];
    c->in[c->nin < MX_MAX_REQUEST ? c->nin : MX_MAX_REQUEST - 1] = 0;
    if (sscanf(c->in, "%15s %511s %15s", method, target, version) != 3 ||
        strncmp(version, "HTTP/1.", 7)) {
        respond(s, c, 400, "Bad Request", 0);
        return;
    }
    if (strcmp(method, "GET")) {
        respond(s, c, 405, "Method Not Allowed", 0);
        return;
    }
    size_t plen = strcspn(target, "?");
    if (plen == 8 && !strncmp(target, "/metrics", 8)) respond(s, c, 200, "OK", 1);
    else respond(s, c, 404, "Not Found", 0);
}

static void on_readable(mx_server *s, mx_conn *c) {
    ssize_t n = recv(c->fd, c->in + c->nin, sizeof c->in - 1 - c->nin, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        conn_close(c);
        return;
    }
    if (n < 0) return;
    c->nin += (size_t)n;
    c->in[c->nin] = 0;
    if (strstr(c->in, "\r\n\r\n") || strstr(c->in, "\n\n")) handle(s, c);
    else if (c->nin >= sizeof c->in - 1) respond(s, c, 431, "Request Header Fields Too Large", 0);
}

static void on_writable(mx_conn *c) {
    ssize_t n = send(c->fd, c->out + c->sent, c->nout - c->sent, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) {
        conn_close(c);
        return;
    }
    c->sent += (size_t)n;
    if (c->sent == c->nout) conn_close(c);
}

static void on_accept(mx_server *s) {
    for (int k = 0; k < 64; k++) { /* what is waiting, a bounded number per round */
        int fd = accept4(s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return;
        mx_conn *c = NULL, *oldest = NULL;
        for (int i = 0; i < MX_MAX_CONN && !c; i++) {
            if (s->conn[i].fd < 0) c = &s->conn[i];
            else if (!oldest || s->conn[i].since < oldest->since) oldest = &s->conn[i];
        }
        if (!c) { /* full: the oldest goes */
            conn_close(oldest);
            c = oldest;
        }
        c->fd = fd;
        c->since = mono();
        c->deadline = c->since + MX_CONN_TIMEOUT_MS / 1000.0;
    }
}

static void *serve_thread(void *arg) {
    mx_server *s = arg;
    struct pollfd pf[MX_MAX_CONN + 2];
    int who[MX_MAX_CONN + 2];
    for (;;) {
        double t = mono(), next = t + 1.0;
        int n = 0;
        pf[n++] = (struct pollfd){s->wake[0], POLLIN, 0};
        pf[n++] = (struct pollfd){s->fd, POLLIN, 0};
        for (int i = 0; i < MX_MAX_CONN; i++) {
            mx_conn *c = &s->conn[i];
            if (c->fd < 0) continue;
            if (t >= c->deadline) { /* too slow, or gone quiet: closed */
                conn_close(c);
                continue;
            }
            if (c->deadline < next) next = c->deadline;
            who[n] = i;
            pf[n++] = (struct pollfd){c->fd, c->out ? POLLOUT : POLLIN, 0};
        }
        int ms = (int)((next - t) * 1000.0) + 1;
        if (poll(pf, (nfds_t)n, ms) < 0 && errno != EINTR) break;
        if (pf[0].revents) break; /* mx_stop */
        for (int k = 2; k < n; k++) {
            mx_conn *c = &s->conn[who[k]];
            if (!pf[k].revents || c->fd != pf[k].fd) continue;
            if (pf[k].revents & (POLLERR | POLLNVAL)) conn_close(c);
            else if (c->out) on_writable(c);
            else on_readable(s, c);
            if (c->fd >= 0 && c->out && c->sent == 0) on_writable(c); /* answer at once */
        }
        if (pf[1].revents & POLLIN) on_accept(s);
    }
    return NULL;
}

int mx_start(mx_server *s, void (*render)(void *ud, FILE *f), void *ud) {
    s->render = render;
    s->ud = ud;
    /* the thread must not take the signals flowrun handles (SIGINT, SIGTERM, ...) */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int e = pthread_create(&s->thread, NULL, serve_thread, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e) {
        errno = e;
        return -1;
    }
    s->started = 1;
    return 0;
}

void mx_stop(mx_server *s) {
    if (!s) return;
    if (s->started) {
        ssize_t w = write(s->wake[1], "x", 1);
        (void)w;
        pthread_join(s->thread, NULL);
    }
    for (int i = 0; i < MX_MAX_CONN; i++)
        conn_close(&s->conn[i]);
    close(s->fd);
    close(s->wake[0]);
    close(s->wake[1]);
    free(s);
}
