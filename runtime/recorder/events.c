/*
 * events.c — run events as OpenLineage RunEvent JSON lines (`--events FILE`).
 * See events.h for what is written when, and how runs and jobs are named.
 *
 * Every line is built with stdio into memory (open_memstream), and whole lines go to
 * the file in one write(2) on a descriptor opened O_APPEND: at the run's start and
 * end, and after an instance once 64 KiB are pending or a second has passed since the
 * last write. So a reader tailing the file is at most a second behind, and a flowrun
 * killed in the middle loses at most that second's lines but never leaves half a
 * line. A write error is remembered and reported once, by ev_close. Nothing here
 * prints to the process's streams.
 */
#include "events.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <flow.h> /* FLOW_VERSION */

#include "ctx.h"

#define EV_PRODUCER "urn:flow:flowrun:" FLOW_VERSION
#define EV_SCHEMA "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
#define EV_PARENT_SCHEMA \
    "https://openlineage.io/spec/facets/1-0-1/ParentRunFacet.json#/$defs/ParentRunFacet"
#define EV_ERROR_SCHEMA \
    "https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet"
#define EV_FLOW_FACETS "urn:flow:facets:1" /* our own facets: docs/observability.md */

struct ev_sink {
    fl_ctx *ctx;
    FILE *f;            /* lines are built here: a memory stream over mem */
    char *mem;          /* open_memstream's buffer (its own; freed after fclose) */
    size_t memlen;      /* its length at the last fflush */
    int fd;             /* the events file, O_APPEND */
    double last;        /* CLOCK_MONOTONIC of the last write to fd */
    char uuid[37];      /* the flow run's runId */
    char *flow, *ns;    /* the flow's name; "flow:<environment>" */
    int64_t run;
    int failed;         /* a write failed (errno kept in err_no) */
    int err_no;
    char name[4096];    /* an instance's name, reused */
    char job[4096 + 256]; /* its job's name, "<flow>.<instance name>" */
};

/* A UUID (version 5 layout: the SHA-256's first 16 bytes, version and variant bits
 * set) of data, written as text into out. */
static void uuid_of(const void *data, size_t len, char out[37]) {
    fl_digest d;
    hash_bytes(data, len, &d);
    uint8_t *b = d.b;
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x50);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
             b[13], b[14], b[15]);
}

/* "2026-12-06T16:58:01.234Z" for t seconds since the epoch */
static void iso_time(double t, char out[32]) {
    if (t <= 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        t = (double)ts.tv_sec + ts.tv_nsec / 1e9;
    }
    time_t s = (time_t)t;
    int ms = (int)((t - (double)s) * 1000);
    if (ms > 999) ms = 999;
    if (ms < 0) ms = 0;
    struct tm tm;
    gmtime_r(&s, &tm);
    char day[24];
    strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, 32, "%s.%03dZ", day, ms);
}

static void jstr(ev_sink *e, const char *s) {
    fv_json_string(e->f, s, strlen(s));
}

/* The common head of a line: eventType, eventTime, producer, schemaURL. */
static void head(ev_sink *e, const char *type, double t) {
    char when[32];
    iso_time(t, when);
    fprintf(e->f, "{\"eventType\":\"%s\",\"eventTime\":\"%s\",\"producer\":\"" EV_PRODUCER
                  "\",\"schemaURL\":\"" EV_SCHEMA "\",",
            type, when);
}

static void facet_head(ev_sink *e, const char *name, const char *schema) {
    fprintf(e->f, "\"%s\":{\"_producer\":\"" EV_PRODUCER "\",\"_schemaURL\":\"%s\"", name, schema);
}

static void flow_job(ev_sink *e) {
    fputs("\"job\":{\"namespace\":", e->f);
    jstr(e, e->ns);
    fputs(",\"name\":", e->f);
    jstr(e, e->flow);
    fputs("}", e->f);
}

static void end_line(ev_sink *e) {
    if (fputs("}\n", e->f) == EOF && !e->failed) {
        e->failed = 1;
        e->err_no = errno;
    }
}

static double mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Write the whole lines pending in memory to the file, and start the memory over. */
static void flush(ev_sink *e) {
    e->last = mono();
    if (fflush(e->f)) {
        if (!e->failed) e->failed = 1, e->err_no = errno;
        return;
    }
    size_t off = 0;
    while (off < e->memlen && !e->failed) {
        ssize_t w = write(e->fd, e->mem + off, e->memlen - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            e->failed = 1;
            e->err_no = w < 0 ? errno : ENOSPC;
            break;
        }
        off += (size_t)w;
    }
    fseeko(e->f, 0, SEEK_SET); /* the next lines overwrite these; memlen follows at fflush */
}

/* The standard errorMessage facet, after another facet: what consumers such as
 * Marquez show for a failed run. */
static void error_facet(ev_sink *e, const char *error) {
    fputc(',', e->f);
    facet_head(e, "errorMessage", EV_ERROR_SCHEMA);
    fputs(",\"message\":", e->f);
    jstr(e, error);
    fputs(",\"programmingLanguage\":\"flow\"}", e->f);
}

/* The flow run's line: eventType type at t, with the flow_run facet. */
static void run_line(ev_sink *e, const char *type, double t, const char *state, const char *error) {
    head(e, type, t);
    fprintf(e->f, "\"run\":{\"runId\":\"%s\",\"facets\":{", e->uuid);
    facet_head(e, "flow_run", EV_FLOW_FACETS "#FlowRunFacet");
    fprintf(e->f, ",\"run\":%" PRId64, e->run);
    if (state) {
        fputs(",\"state\":", e->f);
        jstr(e, state);
    }
    if (error) {
        fputs(",\"error\":", e->f);
        jstr(e, error);
    }
    fputc('}', e->f);
    if (error) error_facet(e, error);
    fputs("}},", e->f);
    flow_job(e);
    fputs(",\"inputs\":[],\"outputs\":[]", e->f);
    end_line(e);
    flush(e);
}

ev_sink *ev_open(fl_ctx *ctx, const char *path, const char *state_dir, const char *flow,
                 const char *env, int64_t run, double started, int resumed, char *err,
                 size_t errlen) {
    ev_sink *e = fl_calloc(ctx, 1, sizeof *e);
    if (!e) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    e->ctx = ctx;
    e->run = run;
    e->flow = fl_strdup(ctx, flow ? flow : "flow");
    e->ns = fl_sprintf(ctx, "flow:%s", env ? env : "prod");
    e->fd = -1;
    if (!e->flow || !e->ns || !(e->f = open_memstream(&e->mem, &e->memlen))) {
        snprintf(err, errlen, "out of memory");
        ev_close(e, NULL, NULL, NULL, 0);
        return NULL;
    }
    if ((e->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666)) < 0) {
        snprintf(err, errlen, "cannot open the events file %s: %s", path, strerror(errno));
        ev_close(e, NULL, NULL, NULL, 0);
        return NULL;
    }
    char abs[PATH_MAX], seed[PATH_MAX + 64];
    if (!realpath(state_dir, abs)) snprintf(abs, sizeof abs, "%s", state_dir);
    int n = snprintf(seed, sizeof seed, "%s\n%" PRId64 "\n%.6f", abs, run, started);
    uuid_of(seed, n > 0 && (size_t)n < sizeof seed ? (size_t)n : strlen(seed), e->uuid);
    run_line(e, resumed ? "RUNNING" : "START", resumed ? 0 : started, NULL, NULL);
    return e;
}

/* The datasets of a value of type t: a path (or dir) and lists of them. Writes
 * `{namespace,name,facets}` objects, comma-separated after *first; hashes come from
 * objs (stored content, SHA-256) in the order met, or one key part for an input. */
static void datasets(ev_sink *e, const fl_plan *p, uint32_t t, fl_val v, const fl_digest *objs,
                     size_t nobjs, size_t *used, const uint64_t *part, int *first, int depth) {
    const plan_type *T = &p->types[t];
    if (depth > 8) return;
    if (T->kind == PT_PATH || T->kind == PT_DIR) {
        fv_str *s = fv_as_str(v);
        fputs(*first ? "{\"namespace\":\"file\",\"name\":" : ",{\"namespace\":\"file\",\"name\":",
              e->f);
        *first = 0;
        char abs[PATH_MAX]; /* the dataset's name: the absolute path where it exists */
        if (s->data[0] != '/' && realpath(s->data, abs))
            jstr(e, abs);
        else
            fv_json_string(e->f, s->data, (size_t)s->len);
        fputs(",\"facets\":{", e->f);
        if (T->kind == PT_PATH && objs && *used < nobjs) {
            char hex[65];
            hash_hex(&objs[(*used)++], hex);
            facet_head(e, "flow_content", EV_FLOW_FACETS "#ContentDatasetFacet");
            fprintf(e->f, ",\"algorithm\":\"sha256\",\"hash\":\"%s\"}", hex);
        } else if (part) {
            facet_head(e, "flow_content", EV_FLOW_FACETS "#ContentDatasetFacet");
            fprintf(e->f, ",\"algorithm\":\"flow-key-part\",\"hash\":\"%016" PRIx64 "\"}", *part);
        }
        fputs("}}", e->f);
    } else if (T->kind == PT_LIST && v.o) {
        fv_list *l = (fv_list *)v.o;
        for (int64_t i = 0; i < l->len; i++)
            datasets(e, p, T->elem, l->items[i], objs, nobjs, used, NULL, first, depth + 1);
    }
}

static int is_file_type(const fl_plan *p, uint32_t t, int depth) {
    const plan_type *T = &p->types[t];
    if (T->kind == PT_PATH || T->kind == PT_DIR) return 1;
    return T->kind == PT_LIST && depth < 8 && is_file_type(p, T->elem, depth + 1);
}

void ev_instance(ev_sink *e, const fl_plan *p, uint32_t task, const state_inst *r,
                 const fl_val *args, fl_val result, const fl_digest *objs, size_t nobjs) {
    if (!e) return;
    const plan_task *T = &p->tasks[task];
    plan_inst_name(r->tmpl, r->task, r->idx, e->name, sizeof e->name);
    snprintf(e->job, sizeof e->job, "%.255s.%s", e->flow, e->name);
    char seed[64 + sizeof e->name], uuid[37];
    int n = snprintf(seed, sizeof seed, "%s/%s", e->uuid, e->name);
    uuid_of(seed, n > 0 && (size_t)n < sizeof seed ? (size_t)n : strlen(seed), uuid);
    int ok = !strcmp(r->state, "succeeded") || !strcmp(r->state, "cached");
    for (int line = 0; line < 2; line++) {
        head(e, line == 0 ? "START" : ok ? "COMPLETE" : "FAIL", line == 0 ? r->started : r->ended);
        fprintf(e->f, "\"run\":{\"runId\":\"%s\",\"facets\":{", uuid);
        facet_head(e, "parent", EV_PARENT_SCHEMA);
        fprintf(e->f, ",\"run\":{\"runId\":\"%s\"},\"job\":{\"namespace\":", e->uuid);
        jstr(e, e->ns);
        fputs(",\"name\":", e->f);
        jstr(e, e->flow);
        fputs("}},", e->f);
        facet_head(e, "flow_instance", EV_FLOW_FACETS "#FlowInstanceRunFacet");
        fputs(",\"task\":", e->f);
        jstr(e, r->task);
        fputs(",\"instance\":", e->f);
        jstr(e, e->name);
        if (r->label) {
            fputs(",\"label\":", e->f);
            jstr(e, r->label);
        }
        if (line == 1) {
            fputs(",\"state\":", e->f);
            jstr(e, r->state);
            fprintf(e->f, ",\"attempts\":%d,\"cached\":%s,\"seconds\":%.6f", r->attempts,
                    r->cache_hit ? "true" : "false",
                    r->ended > r->started ? r->ended - r->started : 0.0);
            if (r->error) {
                fputs(",\"error\":", e->f);
                jstr(e, r->error);
            }
        }
        fputc('}', e->f);
        if (line == 1 && r->error) error_facet(e, r->error);
        fputs("}},\"job\":{\"namespace\":", e->f);
        jstr(e, e->ns);
        fputs(",\"name\":", e->f);
        jstr(e, e->job); /* "<flow>.<instance name>" */
        fputs("},\"inputs\":[", e->f);
        int first = 1;
        size_t used = 0;
        for (uint32_t i = 0; args && i < T->nparams; i++) {
            uint32_t t = p->params[T->first_param + i].type;
            if (!is_file_type(p, t, 0)) continue;
            const uint64_t *part =
                r->cache_inputs && i < r->cache_ninputs ? &r->cache_inputs[i] : NULL;
            datasets(e, p, t, args[i], NULL, 0, &used, part, &first, 0);
        }
        fputs("],\"outputs\":[", e->f);
        if (line == 1 && ok && T->ret != PLAN_NONE && is_file_type(p, T->ret, 0)) {
            first = 1;
            used = 0;
            datasets(e, p, T->ret, result, objs, nobjs, &used, NULL, &first, 0);
        }
        fputs("]", e->f);
        end_line(e);
    }
    if (ftello(e->f) >= (1 << 16) || mono() - e->last >= 1.0) flush(e);
}

int ev_close(ev_sink *e, const char *state, const char *error, char *err, size_t errlen) {
    if (!e) return 0;
    int rc = 0;
    if (e->f && e->fd >= 0) {
        if (state)
            run_line(e, !strcmp(state, "succeeded") ? "COMPLETE"
                        : !strcmp(state, "failed")  ? "FAIL"
                                                    : "ABORT",
                     0, state, error);
        flush(e);
        if (close(e->fd) && !e->failed) e->failed = 1, e->err_no = errno;
        if (e->failed) {
            if (errlen) snprintf(err, errlen, "writing the events file: %s", strerror(e->err_no));
            rc = -1;
        }
    } else if (e->fd >= 0) {
        close(e->fd);
    }
    if (e->f) fclose(e->f);
    free(e->mem); /* open_memstream's, from malloc */
    fl_free(e->ctx, e->flow);
    fl_free(e->ctx, e->ns);
    fl_free(e->ctx, e);
    return rc;
}
