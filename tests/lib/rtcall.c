/* rtcall.c — a task library for tests/unit/test_call.c: every type across
 * libffi in both directions, and every function of flow.h. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <flow.h>

/* ---- scalars ---- */
int64_t add_int(int64_t a, int64_t b) {
    return a + b;
}
double mul_float(double a, double b) {
    return a * b;
}
bool not_bool(bool b) {
    return !b;
}
int64_t trivial(int64_t x) {
    return x + 1;
}
void noop(void) {}

/* mixed scalar arguments in an order that uses both register classes */
double mix_args(int64_t a, double b, bool c, const char *d, int64_t e, double f) {
    return (double)a + b + (c ? 100 : 0) + (double)strlen(d) * 1000 + (double)e * 10000 + f;
}

/* ---- text ---- */
const char *upper_str(const char *s) {
    char *r = flow_strdup(s);
    for (char *c = r; *c; c++)
        *c = (char)toupper((unsigned char)*c);
    return r;
}
const char *join_path(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *r = flow_alloc(n);
    snprintf(r, n, "%s/%s", dir, name);
    return r;
}
const char *same_date(const char *d) {
    return flow_strdup(d);
}
const char *static_str(void) {
    return "static text";
}
const char *null_str(void) {
    return NULL;
}

/* ---- bytes ---- */
flow_bytes rev_bytes(flow_bytes b) {
    uint8_t *d = flow_alloc((size_t)b.len);
    for (int64_t i = 0; i < b.len; i++)
        d[i] = b.data[b.len - 1 - i];
    return (flow_bytes){d, b.len};
}

/* ---- lists ---- */
flow_list range_list(int64_t n) {
    flow_list l = flow_list_new(n, sizeof(int64_t));
    for (int64_t i = 0; i < n; i++)
        ((int64_t *)l.items)[i] = i * i;
    return l;
}
int64_t sum_list(flow_list l) {
    int64_t s = 0;
    for (int64_t i = 0; i < l.len; i++)
        s += ((const int64_t *)l.items)[i];
    return s;
}
flow_list scale_floats(flow_list l, double k) {
    flow_list r = flow_list_new(l.len, sizeof(double));
    for (int64_t i = 0; i < l.len; i++)
        ((double *)r.items)[i] = ((const double *)l.items)[i] * k;
    return r;
}
flow_list not_bools(flow_list l) {
    flow_list r = flow_list_new(l.len, sizeof(bool));
    for (int64_t i = 0; i < l.len; i++)
        ((bool *)r.items)[i] = !((const bool *)l.items)[i];
    return r;
}
flow_list upper_strs(flow_list l) {
    flow_list r = flow_list_new(l.len, sizeof(const char *));
    for (int64_t i = 0; i < l.len; i++)
        ((const char **)r.items)[i] = upper_str(((const char *const *)l.items)[i]);
    return r;
}
flow_list rev_bytes_list(flow_list l) {
    flow_list r = flow_list_new(l.len, sizeof(flow_bytes));
    for (int64_t i = 0; i < l.len; i++)
        ((flow_bytes *)r.items)[i] = rev_bytes(((const flow_bytes *)l.items)[i]);
    return r;
}
/* [[int]] -> [[int]], every number + 1 */
flow_list inc_nested(flow_list l) {
    flow_list r = flow_list_new(l.len, sizeof(flow_list));
    for (int64_t i = 0; i < l.len; i++) {
        flow_list in = ((const flow_list *)l.items)[i];
        flow_list out = flow_list_new(in.len, sizeof(int64_t));
        for (int64_t j = 0; j < in.len; j++)
            ((int64_t *)out.items)[j] = ((const int64_t *)in.items)[j] + 1;
        ((flow_list *)r.items)[i] = out;
    }
    return r;
}
flow_list bad_list(void) {
    return (flow_list){3, NULL};
}
flow_list wild_list(void) { /* a garbage length, as from an uninitialised flow_list */
    static int64_t one = 1;
    return (flow_list){INT64_C(1) << 50, &one};
}

/* ---- records ---- */
typedef struct Hit {
    const char *file;
    int64_t n;
} Hit;

/* {flag: bool, w: float, small: bool, s: str, b: bytes, tags: [str], hit: Hit, last: bool} */
typedef struct Mixed2 {
    bool flag;
    double w;
    bool small;
    const char *s;
    flow_bytes b;
    flow_list tags;
    Hit hit;
    bool last;
} Mixed2;

Hit make_hit(const char *file, int64_t n) {
    return (Hit){flow_strdup(file), n};
}
int64_t hit_n(Hit h) {
    return h.n * 2 + (int64_t)strlen(h.file);
}

Mixed2 bump_mixed(Mixed2 m) {
    Mixed2 r = m;
    r.flag = !m.flag;
    r.w = m.w * 2;
    r.small = !m.small;
    r.s = upper_str(m.s);
    r.b = rev_bytes(m.b);
    r.tags = upper_strs(m.tags);
    r.hit.n = m.hit.n + 1;
    r.hit.file = join_path(m.hit.file, "x");
    r.last = !m.last;
    return r;
}

/* [str] -> [Hit] with n = index */
flow_list make_hits(flow_list files) {
    flow_list r = flow_list_new(files.len, sizeof(Hit));
    for (int64_t i = 0; i < files.len; i++)
        ((Hit *)r.items)[i] = make_hit(((const char *const *)files.items)[i], i);
    return r;
}
int64_t total_hits(flow_list hits) {
    int64_t s = 0;
    for (int64_t i = 0; i < hits.len; i++)
        s += ((const Hit *)hits.items)[i].n;
    return s;
}

/* ---- flow.h ---- */
int64_t fail_if_neg(int64_t x) {
    if (x < 0) {
        flow_fail("negative input %lld", (long long)x);
        return 12345; /* ignored */
    }
    return x;
}
const char *fail_str(void) {
    flow_fail("no string today");
    return NULL; /* ignored: no NULL-string error either */
}
int64_t log_twice(int64_t x) {
    flow_log("first x=%lld", (long long)x);
    flow_log("second line\n");
    return x;
}
const char *write_out(const char *content) {
    const char *path = flow_out_path("result.txt");
    FILE *f = fopen(path, "w");
    if (!f) {
        flow_fail("cannot write %s", path);
        return NULL;
    }
    fputs(content, f);
    fclose(f);
    return path;
}
/* fresh paths for the same name differ, created or not, and stay in the folder */
bool fresh_paths(void) {
    const char *a = flow_out_path("x"), *b = flow_out_path("x");
    FILE *f = fopen(a, "w");
    if (f) fclose(f);
    const char *c = flow_out_path("sub/x"), *d = flow_out_path("..");
    return a && b && c && d && strcmp(a, b) && strcmp(a, c) && strcmp(b, c) && !strstr(c, "sub/") &&
           !strstr(d, "/..");
}
const char *scratch(void) {
    return flow_scratch_dir();
}
int64_t map_idx(void) {
    return flow_map_index();
}
int64_t big_alloc(int64_t n) {
    char *p = flow_alloc((size_t)n);
    memset(p, 7, (size_t)n);
    int64_t s = 0;
    for (int64_t i = 0; i < n; i += 4096)
        s += p[i];
    return s;
}

/* ---- combine halves ---- */
static __thread const void *last_fetched;
flow_bytes fetch(const char *url) {
    size_t n = strlen(url) + 5;
    char *d = flow_alloc(n);
    snprintf(d, n, "got:%s", url);
    last_fetched = d;
    return (flow_bytes){(const uint8_t *)d, (int64_t)n - 1};
}
/* the length, plus 1000 when the bytes are the very ones fetch returned */
int64_t store(flow_bytes data, const char *dst) {
    return data.len + (int64_t)strlen(dst) * 100 + (data.data == last_fetched ? 100000 : 0);
}
const char *put_scratch(const char *text) {
    const char *d = flow_scratch_dir();
    char path[4096];
    snprintf(path, sizeof path, "%s/note", d);
    FILE *f = fopen(path, "w");
    if (!f) {
        flow_fail("no scratch");
        return NULL;
    }
    fputs(text, f);
    fclose(f);
    return flow_strdup(d);
}
const char *get_scratch(const char *dir_seen) {
    const char *d = flow_scratch_dir();
    if (strcmp(d, dir_seen)) {
        flow_fail("scratch differs: %s vs %s", d, dir_seen);
        return NULL;
    }
    char path[4096], buf[256] = "";
    snprintf(path, sizeof path, "%s/note", d);
    FILE *f = fopen(path, "r");
    if (!f || !fgets(buf, sizeof buf, f)) {
        if (f) fclose(f);
        flow_fail("note missing");
        return NULL;
    }
    fclose(f);
    return flow_strdup(buf);
}

/* {name: str, hits: [Hit], scores: [float]}: hits reversed, scores summed into one */
typedef struct Group {
    const char *name;
    flow_list hits;
    flow_list scores;
} Group;
Group regroup(Group g) {
    Group r = {upper_str(g.name), flow_list_new(g.hits.len, sizeof(Hit)),
               flow_list_new(1, sizeof(double))};
    for (int64_t i = 0; i < g.hits.len; i++)
        ((Hit *)r.hits.items)[i] = ((const Hit *)g.hits.items)[g.hits.len - 1 - i];
    for (int64_t i = 0; i < g.scores.len; i++)
        ((double *)r.scores.items)[0] += ((const double *)g.scores.items)[i];
    return r;
}
/* [Group] -> [int]: the number of hits of each */
flow_list group_sizes(flow_list groups) {
    flow_list r = flow_list_new(groups.len, sizeof(int64_t));
    for (int64_t i = 0; i < groups.len; i++)
        ((int64_t *)r.items)[i] = ((const Group *)groups.items)[i].hits.len;
    return r;
}
