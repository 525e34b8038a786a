/*
 * remote_slurm.c — the Slurm engine (remote.h, rm_engine_slurm): each batch is one
 * job array, each element one array task running `flowrun worker`.
 *
 * DESIGN
 *   Every Slurm call is one command run through rt_cmd_run (spawn.h: stdin /dev/null, stdout
 *   and stderr captured through two pipes read together, a timeout that kills it:
 *   SL_CMD_MS), never one call per job:
 *     open   `scontrol show config` once: MaxArraySize and MaxJobCount (the limits
 *            the driver stays within), and `sinfo -h -o %C` once: the slots (CPUs
 *            of the partition not down or drained) the driver fills;
 *     start  `sbatch --array=0-(n-1) --no-requeue --parsable --job-name NAME
 *            --output LOG/N.%a --cpus-per-task S [--mem M] [-p -A -t extra] FILE`,
 *            FILE a script in the log folder that execs the worker command (the
 *            worker finds its element in $SLURM_ARRAY_TASK_ID). --no-requeue: a
 *            job on a lost node ends, and the driver's `retries` decide;
 *     poll   `squeue -h -r -t all --name N1,N2,... -o '%i %T'`: every batch of the
 *            run not yet known to have ended, in one call, one line per element
 *            (1234_7; ranges such as 1234_[8-99:2,120%4] are read too, but squeue cuts
 *            long ones short); lines of job ids this run did not start are ignored (names
 *            are only unique within one state folder). Elements seen in a final
 *            state (COMPLETED, FAILED, TIMEOUT, NODE_FAIL, ...) are remembered, so
 *            a batch whose elements all ended leaves the query; the driver still
 *            hears ENDED for them, from that memory;
 *     cancel `scancel ID...`: every batch not known to have ended, in one call.
 *   adopt (flowrun resume) adds a batch an earlier driver started by its recorded
 *   id and name: the next poll reports its elements as they are.
 *
 *   Start cost: the driver sizes elements from it. It is measured as the time from
 *   a batch's submission to the first poll that sees one of its elements running,
 *   the smallest such time seen so far (a batch submitted while the cluster is
 *   busy waits longer, which is queueing, not cost); before any is seen, 1 s (what
 *   a Slurm scheduler costs per job and slot with its default delays).
 *
 *   Counts of the calls made are kept and, with FLOW_DEBUG set, printed on
 *   stderr when the engine is destroyed ("flowrun: slurm: 3 sbatch, 41 squeue, 1
 *   scancel"), so a test can check that the controller was not stormed.
 */
#define _GNU_SOURCE
#include "remote.h"
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>


#define SL_CMD_MS 60000        /* one Slurm command at most this long */
#define SL_OUT_MAX (64u << 20) /* most output kept from one command */
#define SL_DEFAULT_COST 1.0    /* seconds per element before one was measured */
#define SL_MAX_ARGS 256        /* sbatch arguments, extra flags included */

typedef struct sl_batch {
    char id[32]; /* the array's job id */
    char *name;  /* its job name */
    uint32_t nelem;
    uint8_t *st;      /* nelem: last state seen (enum rm_state), RM_GONE: not seen */
    uint8_t *final;   /* nelem: a final state was seen */
    uint32_t nfinal;  /* elements with final[] set */
    double submitted; /* monotonic seconds; 0: adopted */
    int running_seen; /* the start cost was sampled from it */
} sl_batch;

typedef struct slurm_engine {
    rm_engine base;
    rm_engine_ops ops; /* a copy: max_array and max_jobs are this cluster's */
    char *partition, *account, *time_limit;
    char **extra; /* NULL-terminated copies */
    sl_batch *b;
    uint32_t nb, capb;
    double cost; /* < 0: not measured yet */
    long n_sbatch, n_squeue, n_scancel;
} slurm_engine;

static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- running one command ---- */

/* The last line of s (for one-line errors), at most n bytes, into buf; a last line
 * that only says `Try "sbatch --help" ...` gives way to the one before (which says
 * what was wrong, e.g. "sbatch: unrecognized option '--bogus'"). */
static const char *last_line(const char *s, char *buf, size_t n) {
    rt_last_line(s, buf, n);
    if (s && !strncmp(buf, "Try \"", 5)) { /* the line before it */
        size_t len = strlen(s);
        while (len && (s[len - 1] == '\n' || s[len - 1] == '\r' || s[len - 1] == ' '))
            len--;
        while (len && s[len - 1] != '\n') /* the start of the last line */
            len--;
        char *before = strndup(s, len);
        rt_last_line(before, buf, n);
        free(before);
    }
    return buf;
}

/* Run argv (argv[0] looked up on PATH; rt_cmd_run: a process group of its own, so a
 * Ctrl-C at the terminal, which reaches flowrun and makes it cancel with scancel,
 * does not kill that scancel first) with stdout into out (at most SL_OUT_MAX bytes,
 * the rest dropped) and at most SL_CMD_MS. 0 when it exited 0; -1 with one line in
 * err otherwise (the command's last stderr line, its status, or the timeout). */
static int sl_run(char *const *argv, rt_obuf *out, char *err, size_t errlen) {
    rt_obuf errs = {.limit = SL_OUT_MAX, .keep_tail = 1};
    if (out) out->limit = SL_OUT_MAX;
    rt_cmd c = {.timeout_ms = SL_CMD_MS, .out = out, .err = &errs};
    int rc = rt_cmd_run(argv, &c, err, errlen);
    char line[300];
    if (rc) {
        rc = -1;
    } else if (c.timed_out) {
        snprintf(err, errlen, "%s did not answer within %d s", argv[0], SL_CMD_MS / 1000);
        rc = -1;
    } else if (WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0) {
        rc = 0;
    } else {
        const char *l = last_line(errs.d, line, sizeof line);
        size_t k = strlen(argv[0]); /* Slurm's lines start "sbatch: " themselves */
        if (!strncmp(l, argv[0], k) && !strncmp(l + k, ": ", 2)) l += k + 2;
        if (*l)
            snprintf(err, errlen, "%s: %s", argv[0], l);
        else if (WIFSIGNALED(c.status))
            snprintf(err, errlen, "%s was killed by signal %d", argv[0], WTERMSIG(c.status));
        else
            snprintf(err, errlen, "%s exited with status %d", argv[0], WEXITSTATUS(c.status));
        rc = -1;
    }
    rt_obuf_free(&errs);
    if (out && !out->d) rt_obuf_add(out, "", 0);
    return rc;
}

/* ---- the engine ---- */

static sl_batch *add_batch(slurm_engine *S, const char *id, const char *name, uint32_t nelem) {
    if (S->nb == S->capb) {
        uint32_t cap = S->capb ? 2 * S->capb : 16;
        sl_batch *n = realloc(S->b, cap * sizeof *n);
        if (!n) return NULL;
        S->b = n;
        S->capb = cap;
    }
    sl_batch *b = &S->b[S->nb];
    memset(b, 0, sizeof *b);
    snprintf(b->id, sizeof b->id, "%s", id);
    b->name = strdup(name ? name : "");
    b->nelem = nelem;
    b->st = malloc(nelem ? nelem : 1);
    b->final = calloc(nelem ? nelem : 1, 1);
    if (!b->name || !b->st || !b->final) {
        free(b->name);
        free(b->st);
        free(b->final);
        return NULL;
    }
    memset(b->st, RM_PENDING, nelem ? nelem : 1);
    S->nb++;
    return b;
}

/* Write s into f shell-quoted ('...', a ' as '\''). */
static void put_quoted(FILE *f, const char *s) {
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'')
            fputs("'\\''", f);
        else
            fputc(*s, f);
    }
    fputc('\'', f);
}

static int slurm_start(rm_engine *e, const rm_start *s, char *id, size_t idcap, char *err,
                       size_t errlen) {
    slurm_engine *S = (slurm_engine *)e;
    if (!s->nelem) {
        snprintf(err, errlen, "a batch of no elements");
        return -1;
    }
    /* the job script: the worker command, in the (shared) log folder */
    char script[PATH_MAX], output[PATH_MAX];
    if ((size_t)snprintf(script, sizeof script, "%s/%u.sh", s->log_dir, s->batch) >=
            sizeof script ||
        (size_t)snprintf(output, sizeof output, "--output=%s/%u.%%a", s->log_dir, s->batch) >=
            sizeof output) {
        snprintf(err, errlen, "the log folder's path is too long");
        return -1;
    }
    char tmp[PATH_MAX + 16];
    snprintf(tmp, sizeof tmp, "%s.tmp", script);
    FILE *f = fopen(tmp, "we");
    if (!f) {
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        return -1;
    }
    fprintf(f, "#!/bin/sh\n# flow run %lld, batch %u: element $SLURM_ARRAY_TASK_ID\nexec",
            (long long)s->run, s->batch);
    for (int i = 0; s->argv[i]; i++) {
        fputc(' ', f);
        put_quoted(f, s->argv[i]);
    }
    fputc('\n', f);
    if (fclose(f) || chmod(tmp, 0755) || rename(tmp, script)) {
        snprintf(err, errlen, "cannot write %s: %s", script, strerror(errno));
        unlink(tmp);
        return -1;
    }
    char array[48], cpus[40], mem[48];
    snprintf(array, sizeof array, "--array=0-%u", s->nelem - 1);
    uint32_t c = s->slots ? s->slots : 1;
    if (s->cpus > c) c = s->cpus;
    snprintf(cpus, sizeof cpus, "--cpus-per-task=%u", c);
    char *argv[SL_MAX_ARGS + 24];
    int a = 0;
    argv[a++] = "sbatch";
    argv[a++] = array;
    argv[a++] = "--no-requeue";
    argv[a++] = "--parsable";
    argv[a++] = "--job-name";
    argv[a++] = (char *)s->name;
    argv[a++] = output;
    argv[a++] = cpus;
    if (s->memory > 0) { /* bytes, rounded up to MiB (sbatch's unit) */
        snprintf(mem, sizeof mem, "--mem=%lldM", (long long)((s->memory + (1 << 20) - 1) >> 20));
        argv[a++] = mem;
    }
    if (S->partition) {
        argv[a++] = "--partition";
        argv[a++] = S->partition;
    }
    if (S->account) {
        argv[a++] = "--account";
        argv[a++] = S->account;
    }
    if (S->time_limit) {
        argv[a++] = "--time";
        argv[a++] = S->time_limit;
    }
    for (int i = 0; S->extra && S->extra[i] && a < SL_MAX_ARGS; i++)
        argv[a++] = S->extra[i];
    argv[a++] = script;
    argv[a] = NULL;
    rt_obuf out = {0};
    char why[600];
    S->n_sbatch++;
    double t0 = mono_s();
    if (sl_run(argv, &out, why, sizeof why)) {
        snprintf(err, errlen, "%s", why);
        free(out.d);
        return -1;
    }
    /* --parsable: "JOBID" or "JOBID;CLUSTER" */
    char *p = out.d;
    size_t n = strspn(p, "0123456789");
    if (!n || n >= sizeof((sl_batch *)0)->id || (p[n] && p[n] != ';' && p[n] != '\n')) {
        char line[200];
        snprintf(err, errlen, "sbatch answered '%s', not a job id",
                 last_line(p, line, sizeof line));
        free(out.d);
        return -1;
    }
    p[n] = 0;
    sl_batch *b = add_batch(S, p, s->name, s->nelem);
    if (!b) {
        /* it runs, but we could not follow it: cancel it */
        char *cv[] = {"scancel", p, NULL};
        S->n_scancel++;
        sl_run(cv, NULL, why, sizeof why);
        snprintf(err, errlen, "out of memory");
        free(out.d);
        return -1;
    }
    b->submitted = t0;
    snprintf(id, idcap, "%s", p);
    free(out.d);
    return 0;
}

static int slurm_adopt(rm_engine *e, const rm_start *s, const char *id, char *err, size_t errlen) {
    slurm_engine *S = (slurm_engine *)e;
    size_t n = strspn(id, "0123456789");
    if (!n || id[n] || n >= sizeof S->b[0].id) {
        snprintf(err, errlen, "'%s' is not a Slurm job id", id);
        return -1;
    }
    if (!add_batch(S, id, s->name, s->nelem)) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

/* The rm_state of a squeue state name; *final when it is a final state. */
static enum rm_state state_of(const char *t, int *final) {
    static const char *const pending[] = {"PENDING",      "CONFIGURING", "REQUEUED",
                                          "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD",
                                          "SUSPENDED",    NULL};
    static const char *const running[] = {"RUNNING",  "COMPLETING", "STAGE_OUT", "SIGNALING",
                                          "RESIZING", "STOPPED",    NULL};
    *final = 0;
    for (int i = 0; pending[i]; i++)
        if (!strcmp(t, pending[i])) return RM_PENDING;
    for (int i = 0; running[i]; i++)
        if (!strcmp(t, running[i])) return RM_RUNNING;
    /* COMPLETED FAILED CANCELLED TIMEOUT NODE_FAIL OUT_OF_MEMORY BOOT_FAIL DEADLINE
     * PREEMPTED SPECIAL_EXIT REVOKED, and anything newer */
    *final = 1;
    return RM_ENDED;
}

static sl_batch *find_batch(slurm_engine *S, const char *id, size_t n) {
    for (uint32_t i = 0; i < S->nb; i++)
        if (strlen(S->b[i].id) == n && !memcmp(S->b[i].id, id, n)) return &S->b[i];
    return NULL;
}

static void set_state(slurm_engine *S, sl_batch *b, uint32_t el, enum rm_state st, int final,
                      double now) {
    if (el >= b->nelem || b->final[el]) return;
    b->st[el] = (uint8_t)st;
    if (final) {
        b->final[el] = 1;
        b->nfinal++;
    }
    if (st == RM_RUNNING && !b->running_seen && b->submitted > 0) {
        b->running_seen = 1;
        double c = now - b->submitted;
        if (c < 0.01) c = 0.01;
        if (S->cost < 0 || c < S->cost) S->cost = c;
    }
}

/* One line of squeue: "1234_7 RUNNING", "1234 PENDING"; the poll asks for one line per
 * element (-r), but a range is read too: "1234_[8-99%4] PENDING", "1234_[1-9:2]". */
static void take_line(slurm_engine *S, char *line, double now) {
    char *sp = strchr(line, ' ');
    if (!sp) return;
    *sp = 0;
    const char *state = sp + 1;
    size_t n = strspn(line, "0123456789");
    if (!n) return;
    sl_batch *b = find_batch(S, line, n);
    if (!b) return; /* not this run's */
    int final;
    enum rm_state st = state_of(state, &final);
    char *rest = line + n;
    if (!*rest) { /* the whole array as one */
        for (uint32_t el = 0; el < b->nelem; el++)
            set_state(S, b, el, st, final, now);
        return;
    }
    if (*rest != '_') return;
    rest++;
    if (*rest != '[') {
        char *end;
        unsigned long el = strtoul(rest, &end, 10);
        if (end != rest && !*end) set_state(S, b, (uint32_t)el, st, final, now);
        return;
    }
    /* [a-b,c,d-e%t] */
    rest++;
    char *close = strchr(rest, ']');
    if (!close) return;
    *close = 0;
    char *pct = strchr(rest, '%');
    if (pct) *pct = 0;
    char *save = NULL;
    for (char *tok = strtok_r(rest, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *end;
        unsigned long lo = strtoul(tok, &end, 10), hi = lo, step = 1;
        if (end == tok) continue;
        if (*end == '-') hi = strtoul(end + 1, &end, 10);
        if (*end == ':') step = strtoul(end + 1, &end, 10);
        if (*end || hi < lo || step == 0) continue;
        if (hi >= b->nelem) hi = b->nelem ? b->nelem - 1 : 0;
        for (unsigned long el = lo; el <= hi && el < b->nelem; el += step)
            set_state(S, b, (uint32_t)el, st, final, now);
    }
}

static int slurm_poll(rm_engine *e,
                      void (*report)(void *ud, const char *id, int64_t element, enum rm_state st),
                      void *ud, char *err, size_t errlen) {
    slurm_engine *S = (slurm_engine *)e;
    /* the names of the batches not known to have ended */
    rt_obuf names = {.limit = SL_OUT_MAX};
    for (uint32_t i = 0; i < S->nb; i++) {
        sl_batch *b = &S->b[i];
        if (b->nfinal == b->nelem) continue;
        if (names.len) rt_obuf_add(&names, ",", 1);
        rt_obuf_add(&names, b->name, strlen(b->name));
    }
    if (names.len) {
        char *namearg = NULL;
        if (asprintf(&namearg, "--name=%s", names.d) < 0) {
            free(names.d);
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        /* -r: one line per element. Without it squeue folds pending elements into one
         * "1234_[3,7,9-10,...]", cut short by default (after 32 characters here;
         * SLURM_BITSTR_LEN): the elements past the cut were taken as gone and failed
         * after the grace period while they waited or ran */
        char *argv[] = {"squeue", "-h", "-r", "-t", "all", namearg, "-o", "%i %T", NULL};
        rt_obuf out = {0};
        S->n_squeue++;
        int rc = sl_run(argv, &out, err, errlen);
        free(namearg);
        if (rc || !out.d) {
            free(out.d);
            free(names.d);
            if (!rc) snprintf(err, errlen, "out of memory");
            return -1;
        }
        /* what is not listed any more is gone (unless its end was seen) */
        for (uint32_t i = 0; i < S->nb; i++)
            for (uint32_t el = 0; el < S->b[i].nelem; el++)
                if (!S->b[i].final[el]) S->b[i].st[el] = RM_GONE;
        double now = mono_s();
        for (char *line = out.d, *nl; line && *line; line = nl) {
            nl = strchr(line, '\n');
            if (nl) *nl++ = 0;
            take_line(S, line, now);
        }
        free(out.d);
    }
    free(names.d);
    for (uint32_t i = 0; i < S->nb; i++)
        for (uint32_t el = 0; el < S->b[i].nelem; el++)
            report(ud, S->b[i].id, el, (enum rm_state)S->b[i].st[el]);
    return 0;
}

static void slurm_cancel(rm_engine *e) {
    slurm_engine *S = (slurm_engine *)e;
    uint32_t n = 0;
    for (uint32_t i = 0; i < S->nb; i++)
        if (S->b[i].nfinal < S->b[i].nelem) n++;
    if (!n) return;
    char **argv = calloc(n + 2, sizeof *argv);
    if (!argv) return;
    uint32_t a = 0;
    argv[a++] = "scancel";
    for (uint32_t i = 0; i < S->nb; i++)
        if (S->b[i].nfinal < S->b[i].nelem) argv[a++] = S->b[i].id;
    argv[a] = NULL;
    char err[600];
    S->n_scancel++;
    if (sl_run(argv, NULL, err, sizeof err) && e->ctx)
        fl_log(e->ctx, FL_LOG_WARN, "slurm: cancelling this run's jobs: %s", err);
    for (uint32_t i = 0; i < S->nb; i++) { /* cancelled: nothing more to ask about */
        sl_batch *b = &S->b[i];
        for (uint32_t el = 0; el < b->nelem; el++)
            if (!b->final[el]) {
                b->final[el] = 1;
                b->st[el] = RM_ENDED;
            }
        b->nfinal = b->nelem;
    }
    free(argv);
}

static double slurm_start_cost(rm_engine *e) {
    slurm_engine *S = (slurm_engine *)e;
    return S->cost < 0 ? SL_DEFAULT_COST : S->cost;
}

static void slurm_destroy(rm_engine *e) {
    slurm_engine *S = (slurm_engine *)e;
    const char *dbg = getenv("FLOW_DEBUG");
    if (dbg && *dbg && e->ctx) /* not when the engine could not be made: no run */
        fl_log(e->ctx, FL_LOG_INFO,
                "slurm: %ld sbatch, %ld squeue, %ld scancel; start cost %.2f s%s",
                S->n_sbatch, S->n_squeue, S->n_scancel, slurm_start_cost(e),
                S->cost < 0 ? " (not measured)" : "");
    for (uint32_t i = 0; i < S->nb; i++) {
        free(S->b[i].name);
        free(S->b[i].st);
        free(S->b[i].final);
    }
    free(S->b);
    for (int i = 0; S->extra && S->extra[i]; i++)
        free(S->extra[i]);
    free(S->extra);
    free(S->partition);
    free(S->account);
    free(S->time_limit);
    free(S);
}

static const rm_engine_ops slurm_ops = {
    .name = "slurm",
    .start = slurm_start,
    .poll = slurm_poll,
    .cancel = slurm_cancel,
    .start_cost = slurm_start_cost,
    .destroy = slurm_destroy,
    .adopt = slurm_adopt,
};

/* The number after "KEY = " in scontrol's configuration, or -1. */
static int64_t config_value(const char *text, const char *key) {
    size_t kl = strlen(key);
    for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        if (strncmp(l, key, kl) || (l[kl] != ' ' && l[kl] != '=')) continue;
        const char *v = strchr(l, '=');
        if (!v) return -1;
        v++;
        while (*v == ' ')
            v++;
        char *end;
        long long x = strtoll(v, &end, 10);
        return end == v || x < 0 ? -1 : x;
    }
    return -1;
}

rm_engine *rm_engine_slurm(const rm_slurm_options *o, char *err, size_t errlen) {
    slurm_engine *S = calloc(1, sizeof *S);
    if (!S) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    S->ops = slurm_ops;
    S->base.ops = &S->ops;
    S->cost = -1;
    int oom = 0;
#define DUP(f)                                                                                     \
    if (o && o->f && *o->f && !(S->f = strdup(o->f))) oom = 1;
    DUP(partition)
    DUP(account)
    DUP(time_limit)
#undef DUP
    size_t nx = 0;
    while (o && o->extra && o->extra[nx])
        nx++;
    if (nx > SL_MAX_ARGS - 24) {
        snprintf(err, errlen, "too many extra sbatch flags (%zu; at most %d)", nx,
                 SL_MAX_ARGS - 24);
        slurm_destroy(&S->base);
        return NULL;
    }
    S->extra = calloc(nx + 1, sizeof *S->extra);
    if (!S->extra) oom = 1;
    for (size_t i = 0; !oom && i < nx; i++)
        if (!(S->extra[i] = strdup(o->extra[i]))) oom = 1;
    if (oom) {
        snprintf(err, errlen, "out of memory");
        slurm_destroy(&S->base);
        return NULL;
    }
    /* the cluster's limits: one scontrol call */
    char why[600];
    rt_obuf out = {0};
    char *sc[] = {"scontrol", "show", "config", NULL};
    if (sl_run(sc, &out, why, sizeof why) || !out.d) {
        snprintf(err, errlen, "cannot reach a Slurm controller (scontrol show config): %s", why);
        free(out.d);
        slurm_destroy(&S->base);
        return NULL;
    }
    int64_t max_array = config_value(out.d, "MaxArraySize");
    int64_t max_count = config_value(out.d, "MaxJobCount");
    free(out.d);
    S->ops.max_array = max_array > 1 ? max_array - 1 : 0; /* indexes 0..MaxArraySize-1 */
    S->ops.max_jobs = max_count > 0 ? max_count : 0;
    if (o && o->max_jobs > 0 && (S->ops.max_jobs == 0 || o->max_jobs < S->ops.max_jobs))
        S->ops.max_jobs = o->max_jobs;
    /* the slots: CPUs of the partition, those down or drained left out (A/I/O/T) */
    out = (rt_obuf){0};
    char *si[8] = {"sinfo", "-h", "-o", "%C", NULL};
    char part[300];
    if (S->partition) {
        snprintf(part, sizeof part, "--partition=%s", S->partition);
        si[4] = part;
        si[5] = NULL;
    }
    if (sl_run(si, &out, why, sizeof why) || !out.d) {
        snprintf(err, errlen, "cannot read the cluster's CPUs (sinfo): %s", why);
        free(out.d);
        slurm_destroy(&S->base);
        return NULL;
    }
    long long cpu_a, cpu_i, cpu_o, cpu_t, slots = 0;
    for (char *l = out.d; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        if (sscanf(l, "%lld/%lld/%lld/%lld", &cpu_a, &cpu_i, &cpu_o, &cpu_t) == 4)
            slots += cpu_t - cpu_o;
    free(out.d);
    if (slots <= 0) {
        snprintf(err, errlen, "the %s%s%shas no CPUs up (sinfo)", S->partition ? "partition " : "",
                 S->partition ? S->partition : "", S->partition ? " " : "cluster ");
        slurm_destroy(&S->base);
        return NULL;
    }
    S->base.slots = slots > 1000000 ? 1000000 : (uint32_t)slots;
    return &S->base;
}
