/*
 * remote_worker.c — the core of `flowrun worker` (remote.h): run one element of a
 * batch in a process executor and write its results where the driver reads them.
 *
 * DESIGN
 *   The element's jobs are decoded from the batch (arguments fv_decode'd under
 *   the task's parameter types: a mismatch is that job's failure, not the
 *   element's) and submitted to the executor at once, in batch order, so the
 *   process executor runs them as it runs any run's jobs: same workers, same
 *   timeouts, same crash handling, same logs ("exactly as the process executor
 *   would"). Results are buffered and written as a chunk file r<N>/<E>.<S>
 *   (remote.c: temp + fsync + rename) at most every RM_FLUSH_MS, and at the end;
 *   then the end marker r<N>/<E>.end saying how many results were written. The
 *   worker writes only those names (its own element): nothing in state.db, the
 *   store or another element's files.
 *
 *   The argument values live until their job's result is back (the executor
 *   borrows them); each result is encoded at once and its rt_result cleared, so
 *   memory stays bounded by what one flush interval produces.
 */
#define _GNU_SOURCE
#include "remote.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct wk {
    const fl_plan *p;
    const rm_batch *b;
    uint32_t element;
    char dir[PATH_MAX]; /* STATE/remote/<run>/r<N> */
    char host[256];
    rm_res *buf; /* results not yet written (owned copies) */
    uint32_t nbuf, capbuf;
    uint32_t chunk;   /* next chunk number */
    uint32_t written; /* results written in all */
    double last_flush;
} wk;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int is_void(const fl_plan *p, uint32_t type) {
    return type >= p->n_types || p->types[type].kind == PT_VOID;
}

static char *dup_or_null(const char *s) {
    return s ? strdup(s) : NULL;
}

static void res_free(rm_res *r) {
    free((void *)r->value);
    free((void *)r->error);
    free((void *)r->log);
}

/* Buffer the result of batch job j (ok with value v, or the error). -1: out of
 * memory. */
static int keep(wk *w, uint32_t j, const rt_result *res) {
    if (w->nbuf == w->capbuf) {
        uint32_t cap = w->capbuf ? 2 * w->capbuf : 64;
        rm_res *n = realloc(w->buf, cap * sizeof *n);
        if (!n) return -1;
        w->buf = n;
        w->capbuf = cap;
    }
    const rm_bjob *J = &w->b->jobs[j];
    rm_res r = {.job = j,
                .key = J->key,
                .ok = res->ok,
                .start = res->start,
                .end = res->end,
                .peak_rss_kb = res->peak_rss_kb,
                .term_signal = res->term_signal,
                .worker_pid = res->worker_pid,
                .host = w->host};
    if (res->ok && J->task < w->p->n_tasks && !is_void(w->p, w->p->tasks[J->task].ret)) {
        fv_buf vb = {0};
        fv_encode(w->p, w->p->tasks[J->task].ret, res->value, &vb);
        if (vb.failed) return -1;
        /* fv_buf allocates through the default context: copy into our own block */
        uint8_t *v = malloc(vb.len ? vb.len : 1);
        if (!v) {
            fl_free(fl_ctx_default(), vb.data);
            return -1;
        }
        if (vb.len) memcpy(v, vb.data, vb.len);
        fl_free(fl_ctx_default(), vb.data);
        r.value = v;
        r.value_len = (uint32_t)vb.len;
    }
    if (!res->ok) r.error = strdup(res->error ? res->error : "out of memory");
    r.log = dup_or_null(res->log);
    if ((!res->ok && !r.error) || (res->log && !r.log)) {
        res_free(&r);
        return -1;
    }
    w->buf[w->nbuf++] = r;
    return 0;
}

static int flush(wk *w, char *err, size_t errlen) {
    if (!w->nbuf) return 0;
    rm_chunk c = {.run = w->b->run,
                  .batch = w->b->batch,
                  .element = w->element,
                  .nres = w->nbuf,
                  .res = w->buf};
    fv_buf out = {0};
    rm_chunk_encode(&c, &out);
    int rc = -1;
    char path[PATH_MAX + 32];
    if (out.failed)
        snprintf(err, errlen, "out of memory");
    else {
        snprintf(path, sizeof path, "%s/%u.%u", w->dir, w->element, w->chunk);
        rc = rm_write_file(path, out.data, out.len, err, errlen);
    }
    fl_free(fl_ctx_default(), out.data);
    if (rc) return -1;
    w->chunk++;
    w->written += w->nbuf;
    for (uint32_t i = 0; i < w->nbuf; i++)
        res_free(&w->buf[i]);
    w->nbuf = 0;
    w->last_flush = now_s();
    return 0;
}

/* A job that could not be submitted: its failure, as a result. */
static int fail_job(wk *w, uint32_t j, const char *why) {
    rt_result r = {.id = j, .ok = 0, .error = (char *)why, .start = now_s()};
    r.end = r.start;
    r.worker_pid = (int)getpid();
    return keep(w, j, &r);
}

int rm_worker_run(rt_runtime *rt, rt_executor *ex, const char *state_dir, const rm_batch *b,
                  uint32_t element, char *err, size_t errlen) {
    const fl_plan *p = rt_plan(rt);
    if (element >= b->nelem) {
        snprintf(err, errlen, "element %u is not in batch %u (it has %u elements)", element,
                 b->batch, b->nelem);
        return 2;
    }
    wk w = {.p = p, .b = b, .element = element};
    if (gethostname(w.host, sizeof w.host)) snprintf(w.host, sizeof w.host, "?");
    w.host[sizeof w.host - 1] = 0;
    if ((size_t)snprintf(w.dir, sizeof w.dir, "%s/remote/%lld/r%u", state_dir, (long long)b->run,
                         b->batch) >= sizeof w.dir) {
        snprintf(err, errlen, "state directory path too long");
        return 2;
    }
    if (mkdir(w.dir, 0755) && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", w.dir, strerror(errno));
        return 1;
    }
    uint32_t lo = b->first[element], hi = b->first[element + 1], n = hi - lo;
    rt_job *jobs = calloc(n ? n : 1, sizeof *jobs);
    fl_val *args = NULL;
    size_t nargs = 0;
    for (uint32_t j = lo; j < hi; j++)
        if (b->jobs[j].task < p->n_tasks) nargs += p->tasks[b->jobs[j].task].nparams;
    args = calloc(nargs ? nargs : 1, sizeof *args);
    rt_result *out = calloc(64, sizeof *out);
    int code = 0;
    size_t ai = 0;
    int nsub = 0, outstanding = 0;
    if (!jobs || !args || !out) {
        snprintf(err, errlen, "out of memory");
        code = 1;
        goto done;
    }
    w.last_flush = now_s();
    /* decode and submit, in batch order */
    for (uint32_t j = lo; j < hi; j++) {
        const rm_bjob *J = &b->jobs[j];
        const char *bad = NULL;
        if (J->task >= p->n_tasks) bad = "the batch names a task the plan does not have";
        const plan_task *T = bad ? NULL : &p->tasks[J->task];
        size_t off = 0, first = ai;
        for (uint32_t i = 0; T && i < T->nparams && !bad; i++) {
            size_t used = 0;
            if (fv_decode(p, p->params[T->first_param + i].type, J->args + off, J->args_len - off,
                          &used, &args[ai]) != 0)
                bad = "its arguments in the batch file do not fit the plan's types";
            else {
                ai++;
                off += used;
            }
        }
        if (!bad && off != J->args_len)
            bad = "its arguments in the batch file do not fit the plan's types";
        if (bad) {
            for (size_t i = first; i < ai; i++)
                fv_decref(p, p->params[T->first_param + (uint32_t)(i - first)].type, args[i]);
            ai = first;
            if (fail_job(&w, j, bad)) {
                snprintf(err, errlen, "out of memory");
                code = 1;
                goto done;
            }
            continue;
        }
        jobs[nsub++] = (rt_job){.id = j,
                                .task = J->task,
                                .map_index = J->map_index,
                                .args = &args[first],
                                .out_dir = J->out_dir,
                                .scratch_dir = J->scratch_dir,
                                .timeout_ms = J->timeout_ms,
                                .attempt = J->attempt};
    }
    if (nsub && ex->ops->submit(ex, jobs, nsub) != 0) {
        snprintf(err, errlen, "out of memory submitting the element's jobs");
        code = 1;
        goto done;
    }
    outstanding = nsub;
    while (outstanding > 0) {
        int wait_ms = -1;
        if (w.nbuf) {
            double left = RM_FLUSH_MS / 1000.0 - (now_s() - w.last_flush);
            wait_ms = left <= 0 ? 0 : (int)(left * 1000) + 1;
        }
        int got = ex->ops->wait(ex, out, 64, wait_ms);
        for (int i = 0; i < got; i++) {
            uint32_t j = (uint32_t)out[i].id;
            int rc = j >= lo && j < hi ? keep(&w, j, &out[i]) : 0;
            rt_result_clear(p, b->jobs[j].task, &out[i]);
            if (rc) {
                snprintf(err, errlen, "out of memory");
                code = 1;
                goto done;
            }
        }
        outstanding -= got;
        if (w.nbuf && (outstanding == 0 || now_s() - w.last_flush >= RM_FLUSH_MS / 1000.0) &&
            flush(&w, err, errlen)) {
            code = 1;
            goto done;
        }
    }
    if (flush(&w, err, errlen)) {
        code = 1;
        goto done;
    }
    {
        fv_buf eb = {0};
        rm_end_encode(b->run, b->batch, element, w.written, &eb);
        char path[PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/%u.end", w.dir, element);
        if (eb.failed) {
            snprintf(err, errlen, "out of memory");
            code = 1;
        } else if (rm_write_file(path, eb.data, eb.len, err, errlen))
            code = 1;
        fl_free(fl_ctx_default(), eb.data);
    }
done:
    /* arguments of the jobs still out are abandoned with the executor (destroyed by
     * the caller): free only when everything came back */
    if (code == 0 || outstanding == 0) {
        for (int i = 0; i < nsub; i++) {
            const plan_task *T = &p->tasks[jobs[i].task];
            for (uint32_t k = 0; k < T->nparams; k++)
                fv_decref(p, p->params[T->first_param + k].type, jobs[i].args[k]);
        }
        free(args);
    }
    for (uint32_t i = 0; i < w.nbuf; i++)
        res_free(&w.buf[i]);
    free(w.buf);
    free(jobs);
    free(out);
    return code;
}
