/*
 * plan.h — the plan: the only contract between flowc and flowrun.
 *
 * In memory a plan is a set of flat arrays of fixed-size records that refer to
 * each other by 32-bit index (PLAN_NONE = no reference), in the manner of a
 * compiled program that can be dumped and checked table by table. flowc builds
 * one with the plan_add_* / plan_intern_* functions and writes it with
 * plan_write (deterministic bytes); flowrun gets one back from plan_read, which
 * bounds-checks every index before the runtime sees it, so the runtime may
 * trust any index it finds in a plan that plan_read accepted.
 *
 * The byte format is documented in docs/plan-format.md.
 *
 * Index spaces (all uint32_t):
 *   string  -> strs     (0 is always ""; text is NUL-terminated and may not hold NUL)
 *   type    -> types    (interned: equal structure, equal index)
 *   value   -> values   (constants: defaults, literals in flows, lambda constants)
 *   lib     -> libs
 *   task    -> tasks
 *   graph   -> graphs   (flows and groups)
 *   node    -> nodes    (ABSOLUTE index into plan->nodes; a graph owns a contiguous range)
 *   lambda  -> lambdas
 *   loc     -> locs     (source positions in the .flow file)
 */
#ifndef FLOW_PLAN_H
#define FLOW_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ctx.h"

#define PLAN_NONE UINT32_MAX
#define PLAN_VERSION 7        /* 2: every call node names its instances (plan_node.name);
                                 tasks carry memory and max_procs. 3: type kind time; graphs
                                 carry start, tz, watch. 4: the secrets section (a version 3
                                 plan is read as one with no secrets). 5: the containers
                                 section (cpus:, network:; an older plan has none). 6: the
                                 sources section (imported .flow files and their hashes).
                                 7: the node kind elem (std.read_json of one record) */
#define PLAN_OLDEST_VERSION 3 /* older plans are refused: recompile them */
/* The longest duration a task option may carry (365 days, in ms). flowc rejects longer
 * ones with a source position and plan_read refuses a plan that carries one, so every
 * consumer (poll timeouts, ns deadlines) can compute with it without overflow. */
#define PLAN_MAX_DURATION_MS (365LL * 86400 * 1000)
/* The largest max_procs a task option may carry (the kernel's pid_max limit). */
#define PLAN_MAX_PROCS 4194304

/* ---- types ---------------------------------------------------------------- */
#define PLAN_TYPE_KINDS(X)                                                                         \
    X(VOID, "void")                                                                                \
    X(INT, "int") X(FLOAT, "float") X(BOOL, "bool") X(STR, "str") X(PATH, "path") X(DIR, "dir")    \
        X(BYTES, "bytes") X(DATE, "date") X(DURATION, "duration") X(LIST, "list")                  \
            X(RECORD, "record") X(TIME, "time")

typedef enum plan_type_kind {
#define X(k, s) PT_##k,
    PLAN_TYPE_KINDS(X)
#undef X
        PT__COUNT
} plan_type_kind;

typedef struct plan_type {
    uint32_t kind;   /* plan_type_kind */
    uint32_t elem;   /* LIST: element type; else PLAN_NONE */
    uint32_t first;  /* RECORD: first entry in fields[]; else 0 */
    uint32_t n;      /* RECORD: number of fields */
    uint32_t name;   /* RECORD: declared name (string) or PLAN_NONE for anonymous */
} plan_type;

typedef struct plan_field {
    uint32_t name; /* string */
    uint32_t type; /* type */
} plan_field;

/* ---- constant values -------------------------------------------------------- */
/* int/duration: i (duration in milliseconds); float: f; bool: i (0/1);
 * str/path/dir/date: s (string); list/record: items[first .. first+n) are value
 * indexes (record: in field order). bytes constants do not occur. */
typedef struct plan_value {
    uint32_t type;  /* type */
    uint32_t n;     /* list/record: number of items */
    union {
        int64_t i;
        double f;
        uint32_t s;     /* string */
        uint32_t first; /* into items[] */
    } u;
} plan_value;

/* ---- imported sources ------------------------------------------------------------ */
/* A .flow file the program imports (compiled into the plan), in the order flowc loaded
 * them (breadth-first, source order). Version 6; none in older plans. */
typedef struct plan_source {
    uint32_t path;      /* string: relative to the program's folder, or absolute */
    uint8_t sha256[32]; /* hash of the bytes compiled */
} plan_source;

/* ---- libraries and tasks ------------------------------------------------------- */
typedef struct plan_lib {
    uint32_t name;       /* string: the name in `library wc = "..."` */
    uint32_t path;       /* string: path relative to the plan file's folder, or absolute */
    uint8_t sha256[32];  /* content hash at compile time (all zero: not found by flowc) */
} plan_lib;

#define PLAN_TASK_KINDS(X) X(C, "c") X(SH, "sh") X(COMBINE, "combine")
typedef enum plan_task_kind {
#define X(k, s) TK_##k,
    PLAN_TASK_KINDS(X)
#undef X
        TK__COUNT
} plan_task_kind;

#define PLAN_TRIGGERS(X) X(ALL_SUCCESS, "all_success") X(ALL_DONE, "all_done")
typedef enum plan_trigger {
#define X(k, s) TRIG_##k,
    PLAN_TRIGGERS(X)
#undef X
        TRIG__COUNT
} plan_trigger;

typedef struct plan_param {
    uint32_t name;  /* string */
    uint32_t type;  /* type */
    uint32_t def;   /* value: the default, or PLAN_NONE */
    uint32_t loc;   /* loc */
} plan_param;

/* How a COMBINE task fills one parameter of its second half. */
#define PLAN_BIND_KINDS(X) X(RESULT, "result") X(STITCH, "stitch") X(PARAM, "param")
typedef enum plan_bind_kind {
#define X(k, s) PB_##k,
    PLAN_BIND_KINDS(X)
#undef X
        PB__COUNT
} plan_bind_kind;

typedef struct plan_bind {
    uint32_t kind;  /* RESULT: first's whole result; STITCH: field `index` of the stitch
                       lambda's record; PARAM: the combined task's parameter `index` */
    uint32_t index;
} plan_bind;

typedef struct plan_task {
    uint32_t name;        /* string (for a combine: a generated name such as "combine(fetch,store)") */
    uint32_t kind;        /* plan_task_kind */
    uint32_t first_param; /* params[first_param .. +nparams) */
    uint32_t nparams;
    uint32_t ret;         /* type (PT_VOID when none) */
    uint32_t lib;         /* C: lib */
    uint32_t symbol;      /* C: string */
    uint32_t cmd;         /* SH: lambda over (params..., out: str) -> str, interpolations
                             shell-quoted; `{out}` is the last lambda parameter */
    uint32_t first;       /* COMBINE: the first half (task) */
    uint32_t second;      /* COMBINE: the second half (task) */
    uint32_t stitch;      /* COMBINE: lambda first-result -> record, or PLAN_NONE */
    uint32_t first_bind;  /* COMBINE: binds[first_bind .. + second's nparams) */
    /* options (`with {...}`); a COMBINE's own options apply to the unit */
    uint32_t retries;        /* default 0 */
    uint32_t concurrency;    /* 0: unlimited */
    int64_t retry_delay_ms;  /* default 0 */
    int64_t timeout_ms;      /* 0: none */
    int64_t max_map;         /* 0: the run's setting (default 100000) */
    uint32_t cache;          /* bool, default 1 */
    uint32_t trigger;        /* plan_trigger */
    uint32_t version;        /* string or PLAN_NONE */
    uint32_t run_as;         /* string or PLAN_NONE */
    uint32_t image;          /* string or PLAN_NONE */
    uint32_t label;          /* lambda or PLAN_NONE: takes the first k parameters */
    uint32_t loc;            /* loc of the declaration */
    int64_t memory;          /* bytes, 0: no limit (process executor: a cgroup's limit) */
    uint32_t max_procs;      /* 0: no limit (process executor: the cgroup's pids.max) */
} plan_task;

/* A secret a task declares (`secrets: ["s3_key"]`): the NAME only, never a value. The
 * configuration (flow.yaml `secrets:`) says where a name's value comes from. Records are
 * in task order, a task's names in the order written, no name twice for one task. */
typedef struct plan_secret {
    uint32_t task; /* task */
    uint32_t name; /* string: a plan_name_bad-clean name of letters, digits and '_' */
    uint32_t loc;  /* loc of the name in the source */
} plan_secret;

/* The container options of a task with `image:` (`cpus: 2`, `network: true`), for the
 * tasks that set one of them only: records in task order, at most one per task. */
typedef struct plan_container {
    uint32_t task;    /* task (it has image:) */
    uint32_t cpus;    /* podman --cpus; 0: no limit */
    uint32_t network; /* bool: 1 the container gets a network, 0 --network=none */
} plan_container;
/* The largest cpus: a task option may carry. */
#define PLAN_MAX_CPUS 4096

/* ---- graphs: flows and groups ---------------------------------------------------- */
#define PLAN_GRAPH_KINDS(X) X(FLOW, "flow") X(GROUP, "group")
typedef enum plan_graph_kind {
#define X(k, s) PG_##k,
    PLAN_GRAPH_KINDS(X)
#undef X
        PG__COUNT
} plan_graph_kind;

typedef struct plan_graph {
    uint32_t name;        /* string */
    uint32_t kind;        /* plan_graph_kind */
    uint32_t first_param; /* params[...] */
    uint32_t nparams;
    uint32_t ret;         /* type (PT_VOID when none) */
    uint32_t ret_node;    /* node whose value is the result, or PLAN_NONE */
    uint32_t schedule;    /* string ("@daily", a cron line) or PLAN_NONE */
    uint32_t start;       /* the schedule's `start`: a date or time string, or PLAN_NONE */
    uint32_t tz;          /* the schedule's `tz`: a zone name string, or PLAN_NONE (UTC) */
    uint32_t watch;       /* `watch P`: P's index among the graph's params (a dir), or
                             PLAN_NONE. flowrun backfill and serve read schedule, start
                             and tz (cron.c); serve watches the folder (cli_serve.c) */
    uint32_t first_node;  /* nodes[first_node .. +nnodes): in dependency order (every
                             node's arguments and `after`s come before it) */
    uint32_t nnodes;
    uint32_t loc;
} plan_graph;

/*
 * Nodes of a graph. Each produces one value of `type` (PT_VOID for effects).
 * A flow is finished when every node of its graph is finished.
 *
 *   CONST          aux = value
 *   PARAM          aux = parameter index of the graph
 *   CALL           ref = task; one arg per task parameter, all ARG_SCALAR
 *   EXPAND         ref = task; one arg per task parameter: ARG_SCALAR (the same value for
 *                  every instance) or ARG_AXIS (aux = axis number: the k-th expanded list,
 *                  in the order named, the first varying slowest); node.aux = number of
 *                  axes; result [R] in map-index order
 *   EXPAND_KWARGS  ref = task; one arg per task parameter: ARG_SCALAR, or ARG_FIELD
 *                  (node = the rows list, aux = field index of the row record); result [R]
 *   GROUP_CALL     ref = graph (a group); one ARG_SCALAR per group parameter
 *   GROUP_EXPAND   ref = graph; args as EXPAND; result [R]; each element's chain runs
 *                  depth-first
 *   MAP            ref = lambda (one parameter); args[0] = the list; lazy
 *   FILTER         ref = lambda (one parameter, -> bool); args[0] = the list; lazy
 *   RANGE          args = [end] or [start, end] (int nodes)
 *   ZIP            args = the lists, in order; type = [{...}] with one field per list;
 *                  different lengths are a run-time error naming both
 *   FILES          args = [dir, glob str]; result [path], recursive, sorted
 *   FLATTEN        args[0] = [[T]]
 *   LEN            args[0] = a list
 *   LIST           args = the elements
 *   RECORD         args = the field values in the record type's field order
 *   ELEM           args[0] = a list; aux = an index; the list's element aux (a run-time
 *                  error when the list is shorter). flowc makes it for a typed read of
 *                  one record (std.read_json returns it in a list of one)
 *
 * Every node may also wait for `after` nodes (afters[first_after .. +nafter)).
 */
#define PLAN_NODE_KINDS(X)                                                                         \
    X(CONST, "const") X(PARAM, "param") X(CALL, "call") X(EXPAND, "expand")                        \
        X(EXPAND_KWARGS, "expand_kwargs") X(GROUP_CALL, "group_call")                              \
            X(GROUP_EXPAND, "group_expand") X(MAP, "map") X(FILTER, "filter") X(RANGE, "range")    \
                X(ZIP, "zip") X(FILES, "files") X(FLATTEN, "flatten") X(LEN, "len")                \
                    X(LIST, "list") X(RECORD, "record") X(ELEM, "elem")

typedef enum plan_node_kind {
#define X(k, s) PN_##k,
    PLAN_NODE_KINDS(X)
#undef X
        PN__COUNT
} plan_node_kind;

#define PLAN_ARG_MODES(X) X(SCALAR, "scalar") X(AXIS, "axis") X(FIELD, "field")
typedef enum plan_arg_mode {
#define X(k, s) PA_##k,
    PLAN_ARG_MODES(X)
#undef X
        PA__COUNT
} plan_arg_mode;

typedef struct plan_arg {
    uint32_t node; /* node (absolute index, inside the same graph, before the user) */
    uint32_t mode; /* plan_arg_mode */
    uint32_t aux;  /* AXIS: axis number; FIELD: field index; SCALAR: 0 */
} plan_arg;

typedef struct plan_node {
    uint32_t kind;       /* plan_node_kind */
    uint32_t type;       /* type of the value produced */
    uint32_t ref;        /* task / graph / lambda, by kind; else PLAN_NONE */
    uint32_t aux;        /* by kind (see above) */
    uint32_t first_arg;  /* args[first_arg .. +nargs) */
    uint32_t nargs;
    uint32_t first_after;/* afters[first_after .. +nafter): node indexes */
    uint32_t nafter;
    uint32_t name;       /* string: the `let` name, or PLAN_NONE. A call, expand,
                            expand_kwargs or group node always has one: the binding name
                            its instances are named by (`a`, `add#2`, `g/square` inside an
                            inlined group call; docs/scheduler.md "Instance names") */
    uint32_t loc;        /* loc of the expression (run-time errors point here) */
} plan_node;

/* ---- lambdas: portable typed expression code -------------------------------------- */
/* A lambda is a flat array of instructions for a stack machine, run by the
 * interpreter (runtime/core/expr_interp.c) and compiled by the JIT from the same array.
 * Opcodes and operand meanings: runtime/core/expr_ops.h. */
typedef struct plan_instr {
    uint16_t op;  /* expr opcode (expr_ops.h) */
    uint16_t b;   /* second operand (by opcode) */
    int32_t a;    /* first operand (by opcode) */
    uint32_t loc; /* loc: run-time errors in this instruction point here */
} plan_instr;

typedef struct plan_lambda {
    uint32_t first_ptype; /* typelist[first_ptype .. +nparams): parameter types */
    uint32_t nparams;
    uint32_t ret;         /* result type */
    uint32_t first_code;  /* code[first_code .. +ncode) */
    uint32_t ncode;
    uint32_t nlocals;     /* local slots the code needs beyond its parameters */
    uint32_t loc;
} plan_lambda;

typedef struct plan_loc {
    uint32_t line, col, end_line, end_col;
} plan_loc;

/* ---- the plan ---------------------------------------------------------------------- */
#define PLAN_ARRAY(T, name) T *name; uint32_t n_##name, cap_##name

typedef struct fl_plan {
    uint32_t source;   /* string: the .flow file name as given to flowc */
    uint8_t source_sha256[32]; /* hash of the .flow source */
    /* strings: text of string i is strtext + stroff[i], NUL-terminated */
    char *strtext;
    uint32_t n_strtext, cap_strtext;
    PLAN_ARRAY(uint32_t, stroff);
    PLAN_ARRAY(plan_type, types);
    PLAN_ARRAY(plan_field, fields);
    PLAN_ARRAY(plan_value, values);
    PLAN_ARRAY(uint32_t, items);     /* value indexes of list/record constants */
    PLAN_ARRAY(plan_lib, libs);
    PLAN_ARRAY(plan_param, params);  /* task and graph parameters */
    PLAN_ARRAY(plan_bind, binds);
    PLAN_ARRAY(plan_task, tasks);
    PLAN_ARRAY(plan_graph, graphs);
    PLAN_ARRAY(plan_node, nodes);
    PLAN_ARRAY(plan_arg, args);
    PLAN_ARRAY(uint32_t, afters);
    PLAN_ARRAY(uint32_t, typelist);  /* lambda parameter types */
    PLAN_ARRAY(plan_lambda, lambdas);
    PLAN_ARRAY(plan_instr, code);
    PLAN_ARRAY(plan_loc, locs);
    PLAN_ARRAY(plan_secret, secrets); /* version 4; empty in a version 3 plan */
    PLAN_ARRAY(plan_container, containers); /* version 5; empty in older plans */
    PLAN_ARRAY(plan_source, sources); /* version 6; empty in older plans */
    PLAN_ARRAY(uint32_t, locsrc);     /* version 6: per loc, its file: 0 the program, k
                                         sources[k - 1]; empty: every loc is the program's */
    void *intern; /* builder-only hash tables (strings, types); NULL in a read plan */
    fl_ctx *ctx;  /* how everything made from this plan allocates and reports (ctx.h): the
                     one plan_new / plan_read was given; not serialised */
    bool oom;     /* builder: an allocation failed (the plan is garbage; plan_write refuses it) */
    struct expr_jit *jit; /* runtime only: native code of the lambdas (runtime/core/jit.h), attached
                             after loading; NULL: the interpreter runs them */
} fl_plan;

/* ---- building (flowc) ---- */
/* An empty plan (string 0 is ""), allocating through ctx; NULL when out of memory.
 * The builder functions below never fail one by one: an allocation failure sets
 * p->oom (and the context's error) and later pushes land on an existing record, so
 * a builder checks p->oom once at the end (plan_write does). */
fl_plan *plan_new(fl_ctx *ctx);
void plan_free(fl_plan *p);
uint32_t plan_intern_str(fl_plan *p, const char *s);
const char *plan_str(const fl_plan *p, uint32_t s); /* "" for PLAN_NONE */
uint32_t plan_type_basic(fl_plan *p, plan_type_kind k);
uint32_t plan_type_list(fl_plan *p, uint32_t elem);
/* fields: n (name, type) pairs; name = PLAN_NONE for an anonymous record */
uint32_t plan_type_record(fl_plan *p, uint32_t name, const plan_field *fields, uint32_t n);
/* Append one zeroed record to an array and return its index (the arrays grow as needed):
 *   uint32_t i = PLAN_PUSH(p, tasks); p->tasks[i].name = ...;
 * p is evaluated more than once. While there is room the record is cleared in line (a
 * memset of a known size: flowc pushes ~230,000 records for the 20,000-line bench
 * program, and the calls were ~5 % of an edit's check in flowc lsp); plan_grow_ grows
 * the array. */
#define PLAN_PUSH(p, arr)                                                                          \
    ((p)->n_##arr < (p)->cap_##arr                                                                 \
         ? (memset(&(p)->arr[(p)->n_##arr], 0, sizeof *(p)->arr), (p)->n_##arr++)                  \
         : plan_grow_((p), (void **)&(p)->arr, &(p)->n_##arr, &(p)->cap_##arr, sizeof *(p)->arr))
uint32_t plan_grow_(fl_plan *p, void **arr, uint32_t *n, uint32_t *cap, size_t size);
uint32_t plan_add_loc(fl_plan *p, uint32_t line, uint32_t col, uint32_t end_line, uint32_t end_col);

/* ---- bytes ---- */
/* Deterministic: the same plan gives the same bytes. *out is from fl_malloc(p->ctx)
 * (fl_free it on that context). 0 on success; -1 when too large or out of memory. */
int plan_write(const fl_plan *p, uint8_t **out, size_t *len);
/* Validate and load. On failure returns NULL and writes one line (no newline) to err,
 * e.g. "plan is truncated (412 of 1024 bytes)", "not a flow plan (bad magic)",
 * "plan version 9 is newer than this flowrun (1)", "plan checksum mismatch". */
fl_plan *plan_read(fl_ctx *ctx, const uint8_t *buf, size_t len, char *err, size_t errlen);
fl_plan *plan_read_file(fl_ctx *ctx, const char *path, char *err, size_t errlen);
int plan_write_file(const fl_plan *p, const char *path, char *err, size_t errlen);
/* Recompute the checksum of plan bytes in place (tests and fuzzers that edit bytes). */
void plan_reseal(uint8_t *buf, size_t len);
/* Names that may become one path component (a log or work folder under the state
 * directory): 1..PLAN_NAME_MAX bytes, no '/', no control character, not "." or "..",
 * not starting with '-'. NULL when s is fine, else why not ("contains '/'"). plan_read
 * holds every task, graph, node and library name to it; anything else that turns a name
 * into a folder calls it too. */
#define PLAN_NAME_MAX 200
const char *plan_name_bad(const char *s);

/* Does task t (a combine: either half, at any depth) declare secret `name`? And does
 * it declare any (name NULL)? A combine's unit gets its halves' secrets. */
bool plan_task_has_secret(const fl_plan *p, uint32_t t, const char *name);
/* The container options of task t, or NULL when it sets none (no cpus: limit, no
 * network). */
const plan_container *plan_task_container(const fl_plan *p, uint32_t t);
/* The .flow file a source location is in: the program (p->source) or an imported file;
 * "<plan>" when the plan names none. */
const char *plan_loc_file(const fl_plan *p, uint32_t loc);
/* A secret name is [A-Za-z_][A-Za-z0-9_]*, at most 64 bytes (it becomes a file name
 * and part of an environment variable name). NULL when fine, else why not. */
const char *plan_secret_name_bad(const char *s);

/* ---- views for people and tools (also `flowrun inspect`) ---- */
typedef enum plan_emit_format { PLAN_EMIT_JSON, PLAN_EMIT_YAML, PLAN_EMIT_DOT, PLAN_EMIT_C } plan_emit_format;
int plan_emit(const fl_plan *p, plan_emit_format fmt, void *file /* FILE* */);
/* A type written as in the language: "[{file: path, n: int}]" or its record name. */
void plan_type_text(const fl_plan *p, uint32_t type, char *buf, size_t len);
/* The same, but a named record shows its fields: "{file: path, n: int}". */
void plan_type_text_full(const fl_plan *p, uint32_t type, char *buf, size_t len);
/* A constant on one line, as in the language: 42, "a b", [1, 2], {file: "x", n: 3}. */
void plan_value_text(const fl_plan *p, uint32_t value, char *buf, size_t len);

/* An instance's name from its template and index path: each "[]" of tmpl takes the
 * next '/'-separated component of idx ("per_n[]/square[]" + "2/1" -> "per_n[2]/square[1]"),
 * each "{}" takes one and shows nothing (a plain group call's "c12"). tmpl NULL (a row
 * of an older flowrun): "task[idx]", or "task" unmapped. Returns the length. */
size_t plan_inst_name(const char *tmpl, const char *task, const char *idx, char *buf,
                       size_t len);

#endif /* FLOW_PLAN_H */
