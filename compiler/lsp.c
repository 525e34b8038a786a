/*
 * lsp.c — `flowc lsp`: a Language Server (LSP 3.17) for .flow files over standard
 * input and output: JSON-RPC 2.0 messages framed by a Content-Length header, the JSON
 * read and written with jansson (docs/lsp.md).
 *
 * DESIGN
 * The server keeps the text of every open document (incremental sync: an editor
 * sends the ranges it changed, so a keystroke in a large file costs no reading of
 * the whole text as JSON; a change without a range replaces the text) with an index of its lines. A document opened is checked at once; one
 * changed is checked when no more input is waiting, or when a request about it comes
 * (a burst of keystrokes costs one check). A check runs in process, on the buffer's
 * text: the parser and the checker run as `flowc --check` runs them, but
 * their diagnostics go to a sink (diag.h) instead of stderr, and an observer
 * (compile.h) records what the checker resolves: the type or signature of every name,
 * expression and declaration (hover), the binding of every name (definition, rename)
 * and the file every import loaded. One analysis is a set of owned arrays, replaced
 * whole by the next; the parse tree of the last text that parsed is kept for
 * document symbols and completion. The text is parsed by pieces (chunks): cut before
 * top-level declarations that start a line, some LSP_CHUNK_LINES lines each, each
 * chunk parsed on its own with the document's line numbers (fl_parse_at) and kept
 * with its text; the next check parses again only the chunks whose text or first
 * line changed, and joins their declarations into one program. A chunk with a syntax
 * error sends that check back to parsing the whole text, as flowc does, so syntax
 * diagnostics are flowc's exactly. Requests answer from the analysis, so a hover
 * costs a search of one array. An imported file that is open is compiled from the
 * editor's text (the observer's source callback), else read from disk as flowc reads
 * it; a change of an open file marks the documents whose last check imported it, so
 * they are checked again. A diagnostic in an imported file is published on that file
 * and, once, on the import line of the document that led to it.
 *
 * Positions: the compiler counts lines from 1 and columns in bytes from 1 (spans end
 * inclusive); LSP counts both from 0 and columns in UTF-16 code units (ends
 * exclusive). Conversions go through the text of the file concerned.
 *
 * Bad input: a header block without a valid Content-Length, or a body that is not a
 * JSON object, gets a JSON-RPC error (-32700, id null) and the server reads on; an
 * unknown request gets -32601; a Content-Length over LSP_MAX_BODY, a header line
 * over LSP_MAX_HEADER or the end of input ends the server (status 1 unless shutdown
 * came first).
 */
#include "lsp.h"

#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "ast.h"
#include "check.h"
#include "compile.h"
#include "diag.h"
#include "plan.h"
#include <flow.h> /* FLOW_VERSION */

#define LSP_MAX_BODY (256u << 20)  /* a larger message ends the server */
#define LSP_MAX_HEADER 8192        /* a longer header line ends the server */
#define LSP_MAX_SOURCE (64u << 20) /* as flowc: a larger file is not read */
#define LSP_CHUNK_LINES 256        /* a chunk is cut at the first declaration after this */

/* ---- what one analysis found -------------------------------------------------------------- */
typedef struct an_diag {
    int mod;    /* module (0: the document), -1: a file the analysis did not load */
    char *file; /* its file when mod != 0 */
    fl_span sp;
    int sev;    /* LSP severity: 1 error, 2 warning; notes are attached to parent */
    char *msg;  /* message and hint */
    int parent; /* a note: the diagnostic it belongs to, else -1 */
} an_diag;

typedef struct an_hover {
    fl_span sp;
    size_t off; /* its text in analysis.texts, as the checker gave it; made valid
                   UTF-8 when first used (hover_text) */
    bool fixed;
} an_hover;
typedef struct an_ref {
    fl_span use;
    int def_mod;
    fl_span def;
} an_ref;
typedef struct an_mod {
    char *file;
    char *real;
    int from;
    fl_span at;
} an_mod;

typedef struct analysis {
    an_diag *diags;
    int ndiags, capdiags;
    an_hover *hovers;
    int nhovers, caphovers;
    char *texts; /* the hovers' texts, each NUL-terminated: one buffer, not a malloc each */
    size_t ntexts, captexts;
    an_ref *refs;
    int nrefs, caprefs;
    an_mod *mods;
    int nmods, capmods;     /* index = module number; 0 unused */
    const char *path;       /* the document's path (borrowed, for the sink) */
    struct lsp_server *srv; /* whose open documents imports are read from */
} analysis;

/* A piece of a document's text, parsed (see DESIGN): shared by the document's chunk
 * list and the tree built from it, freed when neither holds it. */
typedef struct lsp_chunk {
    int refs;
    int line;            /* its first line in the document */
    char *text;          /* its bytes (malloc) */
    size_t len;
    ast_arena *ar;       /* its tree */
    const fl_node *prog; /* its PROGRAM node; NULL: a syntax error (or out of memory) */
} lsp_chunk;

typedef struct lsp_chunks {
    lsp_chunk **v;
    int n, cap;
} lsp_chunks;

typedef struct lsp_doc {
    char *uri, *path;
    char *text;
    size_t len;
    size_t *ls;
    int nls; /* text's line offsets */
    analysis an;
    char **pubs;
    int npubs;     /* other files' URIs diagnostics were published on */
    bool dirty;    /* changed since its last analysis */
    ast_arena *ar; /* the last text that parsed: its tree */
    const fl_node *prog;
    char *prog_text;
    size_t prog_len; /* that text */
    size_t *prog_ls;
    int prog_nls;           /* its line offsets */
    lsp_chunks chunks;      /* the text's chunks at its last check, in order */
    lsp_chunks tree_chunks; /* the chunks prog's declarations live in */
    flowc_memo *memo;       /* its flow bodies as last checked (compile.h), or NULL */
} lsp_doc;

typedef struct lsp_server lsp_server;
static const char *on_source(void *user, const char *real, size_t *len);

struct lsp_server {
    FILE *in, *out;
    lsp_doc *docs;
    int ndocs, capdocs;
    const char **inc;
    int ninc;
    const char *share;
    bool initialized, shutdown;
    fl_ctx ctx; /* where the documents' kept parse trees live */
};

/* growing an array by one; false when out of memory */
#define GROW(arr, n, cap) ((n) < (cap) || grow_array((void **)&(arr), &(cap), sizeof *(arr)))

static bool grow_array(void **arr, int *cap, size_t size) {
    int nc = *cap ? *cap * 2 : 16;
    void *p = realloc(*arr, (size_t)nc * size);
    if (!p) return false;
    *arr = p;
    *cap = nc;
    return true;
}

static void analysis_free(analysis *a) {
    for (int i = 0; i < a->ndiags; i++)
        free(a->diags[i].msg), free(a->diags[i].file);
    free(a->texts);
    for (int i = 1; i < a->nmods; i++)
        free(a->mods[i].file), free(a->mods[i].real);
    free(a->diags);
    free(a->hovers);
    free(a->refs);
    free(a->mods);
    memset(a, 0, sizeof *a);
}

/* ---- the compiler's callbacks --------------------------------------------------------------- */
static int mod_of_file(analysis *a, const char *file) {
    if (!strcmp(file, a->path)) return 0;
    for (int i = a->nmods - 1; i > 0; i--)
        if (a->mods[i].file && !strcmp(a->mods[i].file, file)) return i;
    return -1;
}

/* s made valid UTF-8 in place (JSON strings must be): a byte that starts no complete
 * sequence becomes '?' (a message or a type text may end in a sequence cut short) */
static char *utf8_fix(char *s) {
    unsigned char *p = (unsigned char *)s;
    while (p && *p) {
        int n = *p < 0x80 ? 1 : (*p >> 5) == 6 ? 2 : (*p >> 4) == 14 ? 3 : (*p >> 3) == 30 ? 4 : 0;
        bool ok = n > 0;
        for (int i = 1; ok && i < n; i++)
            ok = (p[i] & 0xC0) == 0x80;
        if (!ok) {
            *p++ = '?';
            continue;
        }
        p += n;
    }
    return s;
}

static void on_diag(void *user, const char *what, const char *file, fl_span sp, const char *msg,
                    const char *hint) {
    analysis *a = user;
    if (!GROW(a->diags, a->ndiags, a->capdiags)) return;
    an_diag *d = &a->diags[a->ndiags];
    d->mod = mod_of_file(a, file);
    d->file = d->mod ? strdup(file) : NULL;
    d->sp = sp;
    bool note = !strcmp(what, "note");
    d->sev = !strcmp(what, "warning") ? 2 : 1;
    d->parent = -1;
    if (note)
        for (int i = a->ndiags - 1; i >= 0 && d->parent < 0; i--)
            if (a->diags[i].parent < 0) d->parent = i;
    size_t n = strlen(msg) + (hint ? strlen(hint) + 8 : 0) + 1;
    d->msg = malloc(n);
    if (!d->msg) {
        free(d->file);
        return;
    }
    snprintf(d->msg, n, "%s%s%s", msg, hint ? "\nhint: " : "", hint ? hint : "");
    utf8_fix(d->msg);
    a->ndiags++;
}

static void on_module(void *user, int mod, const char *file, const char *real, int from,
                      fl_span at) {
    analysis *a = user;
    if (a->nmods == 0) {
        if (!GROW(a->mods, a->nmods, a->capmods)) return;
        memset(&a->mods[0], 0, sizeof a->mods[0]);
        a->nmods = 1;
    }
    while (a->nmods <= mod) {
        if (!GROW(a->mods, a->nmods, a->capmods)) return;
        memset(&a->mods[a->nmods], 0, sizeof a->mods[0]);
        a->mods[a->nmods++].from = -1;
    }
    an_mod *m = &a->mods[mod];
    m->file = strdup(file);
    m->real = real ? strdup(real) : NULL;
    m->from = from;
    m->at = at;
}

static void on_hover(void *user, int mod, fl_span at, const char *text) {
    analysis *a = user;
    if (mod != 0 || !GROW(a->hovers, a->nhovers, a->caphovers)) return;
    size_t n = strlen(text) + 1; /* made valid UTF-8 only if it is ever shown: most never are */
    if (a->captexts - a->ntexts < n) {
        size_t cap = a->captexts ? a->captexts : 1u << 16;
        while (cap - a->ntexts < n) cap *= 2;
        char *t = realloc(a->texts, cap);
        if (!t) return;
        a->texts = t;
        a->captexts = cap;
    }
    memcpy(a->texts + a->ntexts, text, n);
    a->hovers[a->nhovers++] = (an_hover){at, a->ntexts, false};
    a->ntexts += n;
}

static void on_ref(void *user, int mod, fl_span use, int def_mod, fl_span def) {
    analysis *a = user;
    if (mod != 0 || !GROW(a->refs, a->nrefs, a->caprefs)) return;
    a->refs[a->nrefs++] = (an_ref){use, def_mod, def};
}

/* ---- files, URIs and positions ------------------------------------------------------------ */
/* the whole of a regular file (malloc, NUL-terminated), or NULL */
static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    struct stat st;
    char *buf = NULL;
    if (!fstat(fileno(f), &st) && S_ISREG(st.st_mode) && st.st_size <= (off_t)LSP_MAX_SOURCE &&
        (buf = malloc((size_t)st.st_size + 1))) {
        *len = fread(buf, 1, (size_t)st.st_size, f);
        buf[*len] = 0;
    }
    fclose(f);
    return buf;
}

static int hexval(int ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if ((ch | 32) >= 'a' && (ch | 32) <= 'f') return (ch | 32) - 'a' + 10;
    return -1;
}

/* file:///a%20b -> /a b (malloc); NULL for another scheme */
static char *uri_to_path(const char *uri) {
    if (strncmp(uri, "file://", 7)) return NULL;
    const char *p = uri + 7;
    if (*p != '/') { /* file://host/path: only the local host */
        if (strncmp(p, "localhost/", 10)) return NULL;
        p += 9;
    }
    char *out = malloc(strlen(p) + 1), *o = out;
    if (!out) return NULL;
    for (; *p; p++) {
        int h, l;
        if (*p == '%' && (h = hexval(p[1])) >= 0 && (l = hexval(p[2])) >= 0) {
            *o++ = (char)(h * 16 + l);
            p += 2;
        } else {
            *o++ = *p;
        }
    }
    *o = 0;
    return out;
}

/* /a b -> file:///a%20b (malloc); a relative path is made absolute first */
static char *path_to_uri(const char *path) {
    char abs[PATH_MAX];
    if (path[0] != '/' && realpath(path, abs)) path = abs;
    size_t n = strlen(path);
    char *out = malloc(8 + 3 * n + 1), *o = out;
    if (!out) return NULL;
    o += sprintf(o, "file://");
    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("/-._~", *p))
            *o++ = (char)*p;
        else
            o += sprintf(o, "%%%02X", *p);
    }
    *o = 0;
    return out;
}

/* a text with the offsets of its lines (ls[i]: where line i + 1 starts), or without
 * (ls NULL: lines are found by a scan; for a file read once) */
typedef struct lsp_text {
    const char *t;
    size_t len;
    const size_t *ls;
    int nls;
} lsp_text;

/* the line offsets of t into *ls (malloc; *nls 0 and *ls NULL when out of memory) */
static void index_lines(const char *t, size_t len, size_t **ls, int *nls) {
    if (!t) t = ""; /* (len is 0 then) */
    free(*ls);
    *ls = NULL;
    *nls = 0;
    size_t n = 1; /* memchr: the whole document at every edit */
    for (const char *q = t, *e = t + len; (q = memchr(q, '\n', (size_t)(e - q))); q++)
        n++;
    if (n > INT_MAX || !(*ls = malloc(n * sizeof **ls))) return;
    size_t k = 0;
    (*ls)[k++] = 0;
    for (const char *q = t, *e = t + len; (q = memchr(q, '\n', (size_t)(e - q))); q++)
        (*ls)[k++] = (size_t)(q - t) + 1;
    *nls = (int)k;
}

/* a hover's text, valid UTF-8 (a clipped name may have cut a character) */
static const char *hover_text(analysis *a, an_hover *h) {
    char *t = a->texts + h->off;
    if (!h->fixed) utf8_fix(t);
    h->fixed = true;
    return t;
}

/* the offset of line `line` (1-based) in x, or its length when there is no such line */
static size_t line_start(const lsp_text *x, int line) {
    if (line < 1) line = 1;
    if (x->ls) return line <= x->nls ? x->ls[line - 1] : x->len;
    size_t i = 0;
    for (int l = 1; l < line && i < x->len; i++)
        if (x->t[i] == '\n') l++;
    return i;
}

/* LSP character (UTF-16 units) of byte column col (1-based) on line (1-based) */
static int utf16_col(const lsp_text *x, int line, int col) {
    if (!x || !x->t) return col > 0 ? col - 1 : 0;
    const char *t = x->t;
    size_t i = line_start(x, line), end = i + (size_t)(col > 0 ? col - 1 : 0);
    int u = 0;
    for (; i < x->len && i < end && t[i] != '\n'; i++) {
        unsigned char ch = (unsigned char)t[i];
        if ((ch & 0xC0) == 0x80) continue;
        u += ch >= 0xF0 ? 2 : 1;
    }
    return u;
}

/* the byte offset of an LSP position in x (clamped to its line and to the text) */
static size_t pos_offset(const lsp_text *x, int line0, int ch16) {
    const char *t = x->t;
    size_t i = line_start(x, line0 + 1);
    for (int u = 0; i < x->len && t[i] != '\n' && u < ch16; i++) {
        unsigned char ch = (unsigned char)t[i];
        if ((ch & 0xC0) == 0x80) continue;
        u += ch >= 0xF0 ? 2 : 1;
    }
    while (i < x->len && ((unsigned char)t[i] & 0xC0) == 0x80)
        i++;
    return i;
}

/* an LSP position as the compiler's line and byte column (1-based) */
static void pos_linecol(const lsp_text *x, int line0, int ch16, int *line, int *col) {
    size_t off = pos_offset(x, line0, ch16);
    *line = line0 + 1;
    *col = (int)(off - line_start(x, line0 + 1)) + 1;
}

static json_t *jpos(const lsp_text *x, int line, int col) {
    return json_pack("{s:i,s:i}", "line", line > 0 ? line - 1 : 0, "character",
                     utf16_col(x, line, col));
}

/* a span (end inclusive) as an LSP range (end exclusive) in x (text NULL: ASCII) */
static json_t *jrange(const lsp_text *x, fl_span sp) {
    int el = sp.end_line >= sp.line ? sp.end_line : sp.line;
    int ec = el == sp.line && sp.end_col < sp.col ? sp.col : sp.end_col + 1;
    return json_pack("{s:o,s:o}", "start", jpos(x, sp.line, sp.col), "end", jpos(x, el, ec));
}

static bool span_has(fl_span sp, int line, int col) {
    if (line < sp.line || line > sp.end_line) return false;
    if (line == sp.line && col < sp.col) return false;
    if (line == sp.end_line && col > sp.end_col) return false;
    return true;
}

static bool span_eq(fl_span a, fl_span b) {
    return a.line == b.line && a.col == b.col && a.end_line == b.end_line && a.end_col == b.end_col;
}

/* a is inside b and smaller */
static bool span_smaller(fl_span a, fl_span b) {
    long la = (long)(a.end_line - a.line) * 100000 + (a.end_col - a.col);
    long lb = (long)(b.end_line - b.line) * 100000 + (b.end_col - b.col);
    return la < lb;
}

/* ---- messages ---------------------------------------------------------------------------------
 */
static void send(lsp_server *s, json_t *msg) {
    char *body = json_dumps(msg, JSON_COMPACT);
    json_decref(msg);
    if (!body) return;
    fprintf(s->out, "Content-Length: %zu\r\n\r\n%s", strlen(body), body);
    fflush(s->out);
    free(body);
}

static void reply(lsp_server *s, json_t *id, json_t *result) {
    send(s, json_pack("{s:s,s:O,s:o}", "jsonrpc", "2.0", "id", id ? id : json_null(), "result",
                      result ? result : json_null()));
}

static void reply_error(lsp_server *s, json_t *id, int code, const char *msg) {
    send(s, json_pack("{s:s,s:O,s:{s:i,s:s}}", "jsonrpc", "2.0", "id", id ? id : json_null(),
                      "error", "code", code, "message", msg));
}

static void notify(lsp_server *s, const char *method, json_t *params) {
    send(s, json_pack("{s:s,s:s,s:o}", "jsonrpc", "2.0", "method", method, "params", params));
}

/* ---- documents ---------------------------------------------------------------------------- */
static lsp_text doc_text(const lsp_doc *d) {
    return (lsp_text){d->text, d->len, d->ls, d->nls};
}

static lsp_text prog_text(const lsp_doc *d) {
    return (lsp_text){d->prog_text, d->prog_len, d->prog_ls, d->prog_nls};
}

static lsp_doc *doc_find(lsp_server *s, const char *uri) {
    for (int i = 0; uri && i < s->ndocs; i++)
        if (!strcmp(s->docs[i].uri, uri)) return &s->docs[i];
    return NULL;
}

static lsp_doc *doc_of_path(lsp_server *s, const char *path) {
    char a[PATH_MAX], b[PATH_MAX];
    if (!path || !realpath(path, a)) return NULL;
    for (int i = 0; i < s->ndocs; i++)
        if (realpath(s->docs[i].path, b) && !strcmp(a, b)) return &s->docs[i];
    return NULL;
}

/* an imported file's text: the editor's, when the file is open (compile.h) */
static const char *on_source(void *user, const char *real, size_t *len) {
    analysis *a = user;
    lsp_doc *d = a->srv ? doc_of_path(a->srv, real) : NULL;
    if (!d || !d->text) return NULL;
    *len = d->len;
    return d->text;
}

/* the documents that import d's file (their last check loaded it): to be checked again */
static void dependents_dirty(lsp_server *s, const lsp_doc *d) {
    char real[PATH_MAX];
    if (!realpath(d->path, real)) return;
    for (int i = 0; i < s->ndocs; i++) {
        lsp_doc *e = &s->docs[i];
        for (int m = 1; e != d && m < e->an.nmods; m++)
            if (e->an.mods[m].real && !strcmp(e->an.mods[m].real, real)) {
                e->dirty = true;
                break;
            }
    }
}

static void chunk_drop(lsp_chunk *c) {
    if (!c || --c->refs > 0) return;
    ast_arena_free(c->ar);
    free(c->text);
    free(c);
}

static void chunks_drop(lsp_chunks *cs) {
    for (int i = 0; i < cs->n; i++)
        chunk_drop(cs->v[i]);
    free(cs->v);
    *cs = (lsp_chunks){0};
}

static void doc_tree_free(lsp_doc *d) {
    chunks_drop(&d->tree_chunks);
    ast_arena_free(d->ar);
    free(d->prog_text);
    free(d->prog_ls);
    d->prog_ls = NULL;
    d->prog_nls = 0;
    d->ar = NULL;
    d->prog = NULL;
    d->prog_text = NULL;
}

static void doc_free(lsp_doc *d) {
    analysis_free(&d->an);
    doc_tree_free(d);
    chunks_drop(&d->chunks);
    for (int i = 0; i < d->npubs; i++)
        free(d->pubs[i]);
    free(d->pubs);
    free(d->uri);
    free(d->path);
    free(d->text);
    free(d->ls);
    flowc_memo_free(d->memo);
}

/* the text of a file for position conversions: an open document's, else from disk
 * (*owned set: the caller frees it); NULL: none (columns are taken as ASCII) */
static const char *text_of(lsp_server *s, const char *path, size_t *len, char **owned) {
    *owned = NULL;
    lsp_doc *d = doc_of_path(s, path);
    if (d) {
        *len = d->len;
        return d->text;
    }
    *owned = slurp(path, len);
    return *owned;
}

static json_t *diag_json(lsp_server *s, lsp_doc *d, const analysis *a, int i, const lsp_text *x) {
    const an_diag *g = &a->diags[i];
    json_t *rel = json_array();
    for (int k = i + 1; k < a->ndiags && a->diags[k].parent == i; k++) {
        const an_diag *n = &a->diags[k];
        char *owned = NULL, *uri;
        size_t nl = 0;
        const char *nt = NULL;
        if (n->mod == 0) {
            uri = strdup(d->uri);
            nt = d->text;
            nl = d->len;
        } else {
            uri = path_to_uri(n->file);
            nt = text_of(s, n->file, &nl, &owned);
        }
        json_array_append_new(rel, json_pack("{s:{s:s,s:o},s:s}", "location", "uri", uri ? uri : "",
                                             "range", jrange(&(lsp_text){nt, nl, NULL, 0}, n->sp),
                                             "message", n->msg));
        free(uri);
        free(owned);
    }
    json_t *o = json_pack("{s:o,s:i,s:s,s:s}", "range", jrange(x, g->sp), "severity", g->sev,
                          "source", "flowc", "message", g->msg);
    if (json_array_size(rel))
        json_object_set_new(o, "relatedInformation", rel);
    else
        json_decref(rel);
    return o;
}

/* the import of the document that led to module m (its top-level import's span) */
static bool import_site(const analysis *a, int m, fl_span *at) {
    for (int hops = 0; m > 0 && m < a->nmods && hops < a->nmods; hops++) {
        if (a->mods[m].from == 0) {
            *at = a->mods[m].at;
            return true;
        }
        m = a->mods[m].from;
    }
    return false;
}

/* publish the document's diagnostics, and those of the files it imports */
static void publish(lsp_server *s, lsp_doc *d) {
    analysis *a = &d->an;
    lsp_text dt = doc_text(d);
    json_t *mine = json_array();
    char **pubs = NULL;
    int npubs = 0, cap = 0;
    for (int i = 0; i < a->ndiags; i++) {
        const an_diag *g = &a->diags[i];
        if (g->parent >= 0) continue;
        if (g->mod == 0) {
            json_array_append_new(mine, diag_json(s, d, a, i, &dt));
            continue;
        }
        /* on the import line, once per diagnostic */
        fl_span at = {1, 1, 1, 1};
        import_site(a, g->mod, &at);
        size_t n = strlen(g->msg) + strlen(g->file) + 64;
        char *m = malloc(n);
        if (m) {
            snprintf(m, n, "in %s:%d:%d: %s", g->file, g->sp.line, g->sp.col, g->msg);
            utf8_fix(m); /* the path may be any bytes */
            json_array_append_new(mine,
                                  json_pack("{s:o,s:i,s:s,s:s}", "range", jrange(&dt, at),
                                            "severity", g->sev, "source", "flowc", "message", m));
            free(m);
        }
        /* and on the file itself, unless it is open (its own analysis says) */
        if (doc_of_path(s, g->file)) continue;
        char *uri = path_to_uri(g->file);
        if (!uri) continue;
        bool seen = false;
        for (int k = 0; k < npubs; k++)
            seen |= !strcmp(pubs[k], uri);
        if (seen) {
            free(uri);
            continue;
        }
        json_t *theirs = json_array();
        char *owned = NULL;
        size_t tl = 0;
        const char *t = text_of(s, g->file, &tl, &owned);
        for (int k = i; k < a->ndiags; k++)
            if (a->diags[k].parent < 0 && a->diags[k].mod > 0 && !strcmp(a->diags[k].file, g->file))
                json_array_append_new(theirs, diag_json(s, d, a, k, &(lsp_text){t, tl, NULL, 0}));
        free(owned);
        notify(s, "textDocument/publishDiagnostics",
               json_pack("{s:s,s:o}", "uri", uri, "diagnostics", theirs));
        if (GROW(pubs, npubs, cap))
            pubs[npubs++] = uri;
        else
            free(uri);
    }
    notify(s, "textDocument/publishDiagnostics",
           json_pack("{s:s,s:o}", "uri", d->uri, "diagnostics", mine));
    /* files published on last time and clean now */
    for (int i = 0; i < d->npubs; i++) {
        bool still = false;
        for (int k = 0; k < npubs; k++)
            still |= !strcmp(pubs[k], d->pubs[i]);
        if (!still)
            notify(s, "textDocument/publishDiagnostics",
                   json_pack("{s:s,s:[]}", "uri", d->pubs[i], "diagnostics"));
        free(d->pubs[i]);
    }
    free(d->pubs);
    d->pubs = pubs;
    d->npubs = npubs;
}

/* ---- parsing by chunks (see DESIGN) ---------------------------------------------------------- */
/* Does the line at t (len bytes) start a top-level declaration? */
static bool starts_decl(const char *t, size_t len) {
    static const char *const kw[] = {"library", "task", "type", "flow", "group", "import"};
    for (size_t i = 0; i < sizeof kw / sizeof *kw; i++) {
        size_t k = strlen(kw[i]);
        if (len > k && !memcmp(t, kw[i], k) && (t[k] == ' ' || t[k] == '\t')) return true;
    }
    return false;
}

static void mute(void *user, const char *what, const char *file, fl_span sp, const char *msg,
                 const char *hint) {
    (void)user, (void)what, (void)file, (void)sp, (void)msg, (void)hint;
}

/* The chunk of d's text at [off, off + len), whose first line is `line`: the last
 * check's when its line and text are the same (*from: where to look on in d->chunks,
 * which are in order), else parsed now. NULL when out of memory. */
static lsp_chunk *chunk_get(lsp_server *s, lsp_doc *d, int *from, size_t off, size_t len,
                            int line) {
    const char *t = d->text ? d->text : ""; /* (NULL: out of memory at didOpen, len 0) */
    for (int i = *from; i < d->chunks.n && d->chunks.v[i]->line <= line; i++) {
        lsp_chunk *c = d->chunks.v[i];
        *from = i + 1;
        if (c->line == line && c->len == len && !memcmp(c->text, t + off, len)) {
            c->refs++;
            return c;
        }
    }
    lsp_chunk *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->refs = 1;
    c->line = line;
    c->len = len;
    c->text = malloc(len + 1);
    c->ar = ast_arena_new(&s->ctx);
    if (!c->text || !c->ar) {
        chunk_drop(c);
        return NULL;
    }
    memcpy(c->text, t + off, len);
    c->text[len] = '\0';
    fl_diag quiet; /* a chunk's errors are not shown: the whole text is parsed then */
    diag_init(&quiet, d->path, c->text, len, NULL);
    quiet.sink = mute;
    c->prog = fl_parse_at(c->ar, &quiet, c->text, len, line);
    if (quiet.errors) c->prog = NULL;
    return c;
}

/* d's text parsed by chunks, kept as d->chunks; their declarations joined into a
 * PROGRAM node in ar, the chunks it uses into *used. NULL when a chunk did not
 * parse (or out of memory): the caller parses the whole text. */
static const fl_node *parse_chunked(lsp_server *s, lsp_doc *d, ast_arena *ar,
                                    lsp_chunks *used) {
    lsp_chunks now = {0};
    bool ok = true;
    int from = 0, start_line = 1, line = 1;
    size_t start = 0;
    const char *t = d->text ? d->text : "";
    for (size_t pos = 0;;) { /* pos: the start of line `line` */
        bool end = pos >= d->len;
        if (end || (line - start_line >= LSP_CHUNK_LINES && starts_decl(t + pos, d->len - pos))) {
            lsp_chunk *c = GROW(now.v, now.n, now.cap)
                               ? chunk_get(s, d, &from, start, pos - start, start_line)
                               : NULL;
            if (!c) {
                ok = false;
                break;
            }
            now.v[now.n++] = c;
            start = pos;
            start_line = line;
        }
        if (end) break;
        const char *nl = memchr(t + pos, '\n', d->len - pos);
        pos = nl ? (size_t)(nl - t) + 1 : d->len;
        line++;
    }
    chunks_drop(&d->chunks);
    d->chunks = now;
    fl_node *prog = ok ? ast_node(ar, AST_PROGRAM, (fl_span){1, 1, 1, 1}) : NULL;
    for (int i = 0; prog && i < now.n; i++) {
        const fl_node *cp = now.v[i]->prog;
        if (!cp) prog = NULL;
        for (int k = 0; prog && k < cp->list.len; k++)
            if (!ast_push(ar, &prog->list, cp->list.items[k])) prog = NULL;
    }
    if (!prog || !prog->list.len) return NULL; /* (an empty program: as flowc parses it) */
    fl_span a = prog->list.items[0]->span, b = prog->list.items[prog->list.len - 1]->span;
    prog->span = (fl_span){a.line, a.col, b.end_line, b.end_col};
    used->v = malloc((size_t)now.n * sizeof *used->v);
    if (!used->v) return NULL;
    for (int i = 0; i < now.n; i++)
        (used->v[i] = now.v[i])->refs++;
    used->n = used->cap = now.n;
    return prog;
}

/* check the document's text as flowc --check would, recording what is found */
static void analyze(lsp_server *s, lsp_doc *d) {
    an_mod *kept = d->an.mods; /* the modules of the kept tree's analysis (see below) */
    int nkept = d->an.nmods, capkept = d->an.capmods;
    d->an.mods = NULL;
    d->an.nmods = d->an.capmods = 0;
    /* the hover, reference and text arrays are kept, emptied: this check refills them
     * to about their size (growing them from nothing again copied ~7 M instructions
     * at an edit of the 20,000-line bench program) */
    analysis keep = d->an;
    d->an.hovers = NULL, d->an.refs = NULL, d->an.texts = NULL;
    analysis_free(&d->an);
    analysis *a = &d->an;
    a->hovers = keep.hovers, a->caphovers = keep.caphovers;
    a->refs = keep.refs, a->caprefs = keep.caprefs;
    a->texts = keep.texts, a->captexts = keep.captexts;
    a->path = d->path;
    a->srv = s;
    fl_ctx ctx;
    fl_ctx_init(&ctx);
    fl_diag diag;
    diag_init(&diag, d->path, d->text, d->len, NULL);
    diag.sink = on_diag;
    diag.sink_user = a;
    ast_arena *ar = ast_arena_new(&s->ctx);
    lsp_chunks tree = {0}; /* the chunks prog's declarations live in */
    const fl_node *prog = ar ? parse_chunked(s, d, ar, &tree) : NULL;
    if (!prog && ar) prog = fl_parse(ar, &diag, d->text, d->len);
    if (prog && !diag.errors) {
        flowc_observer obs = {a, on_module, on_hover, on_ref, on_source};
        if (!d->memo) d->memo = flowc_memo_new(); /* (NULL: every body is checked) */
        flowc_options opt = {d->path, NULL,    d->text, d->len, &ctx,
                             s->inc,  s->ninc, s->share, &obs,  d->memo};
        fl_plan *plan = flowc_compile(prog, &diag, &opt);
        if (plan) plan_free(plan);
    }
    if (prog) { /* keep this tree (and its text) for symbols and completion */
        char *copy = malloc(d->len + 1);
        if (copy) {
            memcpy(copy, d->text, d->len + 1);
            doc_tree_free(d);
            d->ar = ar;
            d->prog = prog;
            d->tree_chunks = tree;
            tree = (lsp_chunks){0};
            d->prog_text = copy;
            d->prog_len = d->len;
            index_lines(copy, d->len, &d->prog_ls, &d->prog_nls);
            ar = NULL;
        }
    }
    ast_arena_free(ar);
    chunks_drop(&tree);
    if (!prog && !a->nmods) { /* the tree kept is the last that parsed: so are its imports */
        a->mods = kept;
        a->nmods = nkept;
        a->capmods = capkept;
        kept = NULL;
        nkept = 0;
    }
    for (int i = 1; i < nkept; i++)
        free(kept[i].file), free(kept[i].real);
    free(kept);
    if (ctx.errcode == FL_ENOMEM)
        on_diag(a, "error", d->path, (fl_span){1, 1, 1, 1}, "flowc: out of memory", NULL);
}

/* the document checked, if it changed since */
static void fresh(lsp_server *s, lsp_doc *d) {
    if (!d || !d->dirty) return;
    d->dirty = false;
    analyze(s, d);
    publish(s, d);
}

/* ---- requests ------------------------------------------------------------------------------- */
static const char *jstr(json_t *o, const char *key) {
    return json_string_value(json_object_get(o, key));
}

/* params.textDocument.uri's document and params.position as line and byte column */
static lsp_doc *at_position(lsp_server *s, json_t *params, int *line, int *col) {
    lsp_doc *d = doc_find(s, jstr(json_object_get(params, "textDocument"), "uri"));
    json_t *pos = json_object_get(params, "position");
    if (!d || !json_is_object(pos)) return NULL;
    fresh(s, d);
    json_t *l = json_object_get(pos, "line"), *c = json_object_get(pos, "character");
    if (!json_is_integer(l) || !json_is_integer(c) || json_integer_value(l) < 0 ||
        json_integer_value(c) < 0 || json_integer_value(l) > INT_MAX ||
        json_integer_value(c) > INT_MAX)
        return NULL;
    lsp_text dt = doc_text(d);
    pos_linecol(&dt, (int)json_integer_value(l), (int)json_integer_value(c), line, col);
    return d;
}

static json_t *do_hover(lsp_server *s, json_t *params) {
    int line, col;
    lsp_doc *d = at_position(s, params, &line, &col);
    if (!d) return NULL;
    an_hover *best = NULL;
    for (int pass = 0; pass < 2 && !best; pass++, col--) /* the cursor may be just after */
        for (int i = 0; i < d->an.nhovers; i++) {
            an_hover *h = &d->an.hovers[i];
            if (span_has(h->sp, line, col) && (!best || span_smaller(h->sp, best->sp))) best = h;
        }
    if (!best) return NULL;
    const char *text = hover_text(&d->an, best);
    size_t n = strlen(text) + 32;
    char *md = malloc(n);
    if (!md) return NULL;
    snprintf(md, n, "```flow\n%s\n```", text);
    json_t *r = json_pack("{s:{s:s,s:s},s:o}", "contents", "kind", "markdown", "value", md, "range",
                          jrange(&(lsp_text){d->text, d->len, d->ls, d->nls}, best->sp));
    free(md);
    return r;
}

/* the reference under the cursor, or NULL */
static const an_ref *ref_at(lsp_doc *d, int line, int col) {
    for (int pass = 0; pass < 2; pass++, col--)
        for (int i = 0; i < d->an.nrefs; i++)
            if (span_has(d->an.refs[i].use, line, col)) return &d->an.refs[i];
    return NULL;
}

static json_t *do_definition(lsp_server *s, json_t *params) {
    int line, col;
    lsp_doc *d = at_position(s, params, &line, &col);
    if (!d) return NULL;
    const an_ref *r = ref_at(d, line, col);
    if (!r) return NULL;
    if (r->def_mod == 0)
        return json_pack("{s:s,s:o}", "uri", d->uri, "range",
                         jrange(&(lsp_text){d->text, d->len, d->ls, d->nls}, r->def));
    if (r->def_mod >= d->an.nmods) return NULL;
    const an_mod *m = &d->an.mods[r->def_mod];
    const char *file = m->real ? m->real : m->file;
    if (!file) return NULL;
    char *uri = path_to_uri(file), *owned = NULL;
    size_t tl = 0;
    const char *t = text_of(s, file, &tl, &owned);
    json_t *res = uri ? json_pack("{s:s,s:o}", "uri", uri, "range",
                                  jrange(&(lsp_text){t, tl, NULL, 0}, r->def))
                      : NULL;
    free(uri);
    free(owned);
    return res;
}

/* LSP SymbolKind */
enum {
    SK_MODULE = 2,
    SK_NAMESPACE = 3,
    SK_PACKAGE = 4,
    SK_CLASS = 5,
    SK_FUNCTION = 12,
    SK_VARIABLE = 13,
    SK_STRUCT = 23
};

static json_t *symbol(const lsp_doc *d, const fl_node *n, const char *name, int kind) {
    lsp_text pt = prog_text(d);
    return json_pack("{s:s,s:i,s:o,s:o}", "name", name ? name : "?", "kind", kind, "range",
                     jrange(&pt, n->span), "selectionRange", jrange(&pt, n->nspan));
}

static json_t *do_symbols(lsp_server *s, json_t *params) {
    lsp_doc *d = doc_find(s, jstr(json_object_get(params, "textDocument"), "uri"));
    json_t *out = json_array();
    fresh(s, d);
    if (!d || !d->prog) return out;
    for (int i = 0; i < d->prog->list.len; i++) {
        const fl_node *n = d->prog->list.items[i];
        json_t *sym = NULL;
        switch (n->kind) {
            case AST_TASK:
                sym = symbol(d, n, n->name, SK_FUNCTION);
                break;
            case AST_LIBRARY:
                sym = symbol(d, n, n->name, SK_PACKAGE);
                break;
            case AST_TYPEDECL:
                sym = symbol(d, n, n->name, SK_STRUCT);
                break;
            case AST_IMPORT:
                sym = symbol(d, n, n->a ? n->a->name : n->sval ? n->sval : "std", SK_NAMESPACE);
                break;
            case AST_FLOW:
            case AST_GROUP: {
                sym = symbol(d, n, n->name, n->kind == AST_FLOW ? SK_CLASS : SK_MODULE);
                json_t *kids = json_array();
                for (int k = 0; k < n->list.len; k++)
                    json_array_append_new(
                        kids, symbol(d, n->list.items[k], n->list.items[k]->name, SK_VARIABLE));
                for (int k = 0; k < n->list2.len; k++)
                    if (n->list2.items[k]->kind == AST_LET)
                        json_array_append_new(kids, symbol(d, n->list2.items[k],
                                                           n->list2.items[k]->name, SK_VARIABLE));
                json_object_set_new(sym, "children", kids);
                break;
            }
            default:
                break;
        }
        if (sym) json_array_append_new(out, sym);
    }
    return out;
}

/* [A-Za-z_][A-Za-z0-9_]* */
static bool is_name(const char *s) {
    if (!s || !(*s == '_' || ((*s | 32) >= 'a' && (*s | 32) <= 'z'))) return false;
    for (; *s; s++)
        if (!(*s == '_' || (*s >= '0' && *s <= '9') || ((*s | 32) >= 'a' && (*s | 32) <= 'z')))
            return false;
    return true;
}

static json_t *edit(const lsp_doc *d, fl_span sp, const char *text) {
    return json_pack("{s:o,s:s}", "range", jrange(&(lsp_text){d->text, d->len, d->ls, d->nls}, sp),
                     "newText", text);
}

static json_t *do_rename(lsp_server *s, json_t *params, const char **err) {
    int line, col;
    lsp_doc *d = at_position(s, params, &line, &col);
    const char *to = jstr(params, "newName");
    *err = "no document or position";
    if (!d) return NULL;
    *err = "the new name must be a name: letters, digits and _, not starting with a digit";
    if (!is_name(to)) return NULL;
    /* the binding: a let's name under the cursor, or the binding of the name used there */
    fl_span def = {0, 0, 0, 0};
    const an_ref *r = ref_at(d, line, col);
    if (r && r->def_mod == 0) def = r->def;
    const fl_node *let = NULL;
    for (int i = 0; d->prog && i < d->prog->list.len && !let; i++) {
        const fl_node *g = d->prog->list.items[i];
        if (g->kind != AST_FLOW && g->kind != AST_GROUP) continue;
        for (int k = 0; k < g->list2.len && !let; k++) {
            const fl_node *st = g->list2.items[k];
            if (st->kind != AST_LET) continue;
            if ((def.line && span_eq(st->nspan, def)) ||
                (!def.line && span_has(st->nspan, line, col)))
                let = st;
        }
    }
    *err = "the document has a syntax error: fix it, then rename";
    if (!d->prog_text || d->prog_len != d->len || memcmp(d->prog_text, d->text, d->len))
        return NULL;
    *err = "only a name bound by let can be renamed";
    if (!let) return NULL;
    json_t *edits = json_array();
    json_array_append_new(edits, edit(d, let->nspan, to));
    for (int i = 0; i < d->an.nrefs; i++) {
        const an_ref *u = &d->an.refs[i];
        if (u->def_mod != 0 || !span_eq(u->def, let->nspan)) continue;
        bool dup = false;
        for (int k = 0; k < i; k++)
            dup |= d->an.refs[k].def_mod == 0 && span_eq(d->an.refs[k].use, u->use) &&
                   span_eq(d->an.refs[k].def, u->def);
        if (!dup) json_array_append_new(edits, edit(d, u->use, to));
    }
    json_t *changes = json_object();
    json_object_set_new(changes, d->uri, edits);
    return json_pack("{s:o}", "changes", changes);
}

/* ---- completion ---------------------------------------------------------------------------- */
/* LSP CompletionItemKind */
enum {
    CK_FUNCTION = 3,
    CK_FIELD = 5,
    CK_VARIABLE = 6,
    CK_MODULE = 9,
    CK_PROPERTY = 10,
    CK_KEYWORD = 14,
    CK_STRUCT = 22
};

static void item(json_t *items, const char *label, int kind, const char *detail) {
    if (!label) return;
    size_t n = json_array_size(items);
    for (size_t i = 0; i < n; i++)
        if (!strcmp(jstr(json_array_get(items, i), "label"), label)) return;
    json_t *it = json_pack("{s:s,s:i}", "label", label, "kind", kind);
    if (detail) json_object_set_new(it, "detail", json_string(detail));
    json_array_append_new(items, it);
}

/* the hover text recorded at a declaration's name, or NULL */
static const char *detail_at(lsp_doc *d, fl_span sp) {
    for (int i = 0; i < d->an.nhovers; i++)
        if (span_eq(d->an.hovers[i].sp, sp)) return hover_text(&d->an, &d->an.hovers[i]);
    return NULL;
}

/* the declarations of the module the document imports as alias (parsed from its file) */
static void module_names(lsp_server *s, lsp_doc *d, const char *alias, json_t *items,
                         const char *member_of, json_t **params_out) {
    (void)s;
    for (int i = 0; d->prog && i < d->prog->list.len; i++) {
        const fl_node *im = d->prog->list.items[i];
        if (im->kind != AST_IMPORT) continue;
        const char *name = im->a ? im->a->name : im->b ? im->b->name : NULL;
        char stem[256] = "";
        if (!name && im->sval) {
            const char *b = strrchr(im->sval, '/');
            b = b ? b + 1 : im->sval;
            snprintf(stem, sizeof stem, "%s", b);
            size_t n = strlen(stem);
            if (n > 5 && !strcmp(stem + n - 5, ".flow")) stem[n - 5] = 0;
            name = stem;
        }
        if (!name || strcmp(name, alias)) continue;
        for (int m = 1; m < d->an.nmods; m++) {
            const an_mod *md = &d->an.mods[m];
            if (md->from != 0 || !span_eq(md->at, im->span) || !md->file) continue;
            size_t len = 0;
            char *text = slurp(md->file, &len);
            if (!text) return;
            fl_ctx ctx;
            fl_ctx_init(&ctx);
            fl_diag q;
            diag_init(&q, md->file, text, len, NULL);
            q.sink = NULL;
            FILE *null = fopen("/dev/null", "w");
            q.out = null ? null : stderr;
            ast_arena *ar = ast_arena_new(&ctx);
            const fl_node *pg = ar ? fl_parse(ar, &q, text, len) : NULL;
            for (int k = 0; pg && k < pg->list.len; k++) {
                const fl_node *n = pg->list.items[k];
                if (member_of && n->name && !strcmp(n->name, member_of) &&
                    (n->kind == AST_TASK || n->kind == AST_GROUP) && params_out) {
                    *params_out = json_array();
                    for (int p = 0; p < n->list.len; p++)
                        json_array_append_new(*params_out, json_string(n->list.items[p]->name));
                }
                if (!items) continue;
                if (n->kind == AST_TASK)
                    item(items, n->name, CK_FUNCTION, "task");
                else if (n->kind == AST_GROUP)
                    item(items, n->name, CK_FUNCTION, "group");
                else if (n->kind == AST_TYPEDECL)
                    item(items, n->name, CK_STRUCT, "type");
            }
            ast_arena_free(ar);
            if (null) fclose(null);
            free(text);
            return;
        }
    }
}

/* the identifier chain that ends at text[end) going back: "a.b" of "x = a.b" */
static size_t chain_start(const char *t, size_t end) {
    size_t i = end;
    while (i > 0 && (t[i - 1] == '_' || t[i - 1] == '.' || (t[i - 1] >= '0' && t[i - 1] <= '9') ||
                     ((t[i - 1] | 32) >= 'a' && (t[i - 1] | 32) <= 'z')))
        i--;
    return i;
}

static const char *const keywords[] = {"let",  "return",  "task",   "flow", "group",
                                       "type", "library", "import", "as",   "with",
                                       "sh",   "after",   "true",   "false"};
static const char *const builtins[] = {"combine", "zip", "range", "files", "flatten", "len"};
static const char *const methods[] = {"partial", "expand", "expand_kwargs", "map", "filter"};

/* the parameters of the task or group called by the innermost open `(` before off:
 * `t(`, `t.partial(`, `m.t.expand(` */
static void call_params(lsp_server *s, lsp_doc *d, size_t off, json_t *items) {
    const char *t = d->text;
    int depth = 0;
    size_t i = off;
    while (i > 0) {
        char ch = t[--i];
        if (ch == ')' || ch == ']' || ch == '}')
            depth++;
        else if (ch == '[' || ch == '{') {
            if (depth-- == 0) return;
        } else if (ch == '(') {
            if (depth-- == 0) break;
        } else if (ch == '\n' && off - i > 4000)
            return;
        if (i == 0) return;
    }
    size_t b = chain_start(t, i);
    char chain[256];
    if (i - b == 0 || i - b >= sizeof chain) return;
    memcpy(chain, t + b, i - b);
    chain[i - b] = 0;
    char *dot = strrchr(chain, '.');
    if (dot && (!strcmp(dot + 1, "partial") || !strcmp(dot + 1, "expand") ||
                !strcmp(dot + 1, "expand_kwargs")))
        *dot = 0;
    else if (dot && (!strcmp(dot + 1, "map") || !strcmp(dot + 1, "filter")))
        return;
    dot = strchr(chain, '.');
    json_t *names = NULL;
    if (dot) {
        *dot = 0;
        module_names(s, d, chain, NULL, dot + 1, &names);
    } else {
        for (int k = 0; d->prog && k < d->prog->list.len && !names; k++) {
            const fl_node *n = d->prog->list.items[k];
            if ((n->kind == AST_TASK || n->kind == AST_GROUP) && !strcmp(n->name, chain)) {
                names = json_array();
                for (int p = 0; p < n->list.len; p++)
                    json_array_append_new(names, json_string(n->list.items[p]->name));
            }
        }
    }
    size_t n = json_array_size(names);
    for (size_t k = 0; k < n; k++) {
        char label[300];
        snprintf(label, sizeof label, "%s", json_string_value(json_array_get(names, k)));
        item(items, label, CK_FIELD, "parameter");
        json_t *last = json_array_get(items, json_array_size(items) - 1);
        char ins[310];
        snprintf(ins, sizeof ins, "%s = ", label);
        if (last && !strcmp(jstr(last, "label"), label))
            json_object_set_new(last, "insertText", json_string(ins));
    }
    json_decref(names);
}

/* inside `with {` ... `}` (not closed before off) */
static bool in_with(const char *t, size_t off) {
    int depth = 0;
    for (size_t i = off; i > 0 && off - i < 4000; i--) {
        char ch = t[i - 1];
        if (ch == '}')
            depth++;
        else if (ch == '{' && depth-- == 0) {
            size_t k = i - 1;
            while (k > 0 && (t[k - 1] == ' ' || t[k - 1] == '\t' || t[k - 1] == '\n'))
                k--;
            return k >= 4 && !strncmp(t + k - 4, "with", 4);
        }
    }
    return false;
}

static json_t *do_completion(lsp_server *s, json_t *params) {
    int line, col;
    lsp_doc *d = at_position(s, params, &line, &col);
    json_t *items = json_array();
    if (!d) return items;
    size_t off = line_start(&(lsp_text){d->text, d->len, d->ls, d->nls}, line) + (size_t)(col - 1);
    if (off > d->len) off = d->len;
    /* the word being typed and what stands before it */
    size_t b = chain_start(d->text, off);
    const char *dot = NULL;
    for (size_t k = b; k < off; k++)
        if (d->text[k] == '.') dot = d->text + k;
    if (dot) { /* m.NAME or t.METHOD */
        char first[256];
        size_t n = (size_t)(dot - (d->text + b));
        if (n < sizeof first && n > 0) {
            memcpy(first, d->text + b, n);
            first[n] = 0;
            if (!strchr(first, '.')) module_names(s, d, first, items, NULL, NULL);
        }
        if (!json_array_size(items))
            for (size_t k = 0; k < sizeof methods / sizeof *methods; k++)
                item(items, methods[k], CK_FUNCTION, "method");
        return items;
    }
    if (in_with(d->text, off)) {
        int n;
        const char *const *opts = chk_option_names(&n);
        for (int k = 0; k < n; k++)
            item(items, opts[k], CK_PROPERTY, "task option");
        return items;
    }
    call_params(s, d, b, items);
    /* names in scope: the body's parameters and lets above the cursor, declarations,
     * imports, built-ins, keywords */
    for (int i = 0; d->prog && i < d->prog->list.len; i++) {
        const fl_node *n = d->prog->list.items[i];
        switch (n->kind) {
            case AST_TASK:
            case AST_GROUP:
                item(items, n->name, CK_FUNCTION, detail_at(d, n->nspan));
                break;
            case AST_TYPEDECL:
                item(items, n->name, CK_STRUCT, "type");
                break;
            case AST_IMPORT:
                if (n->a)
                    item(items, n->a->name, CK_MODULE, "import");
                else if (n->b)
                    item(items, n->b->name, CK_MODULE, "import");
                else if (n->sval) {
                    char stem[256];
                    const char *bs = strrchr(n->sval, '/');
                    snprintf(stem, sizeof stem, "%s", bs ? bs + 1 : n->sval);
                    size_t k = strlen(stem);
                    if (k > 5 && !strcmp(stem + k - 5, ".flow")) stem[k - 5] = 0;
                    item(items, stem, CK_MODULE, "import");
                }
                break;
            default:
                break;
        }
        if ((n->kind == AST_FLOW || n->kind == AST_GROUP) && n->span.line <= line &&
            n->span.end_line >= line) {
            for (int k = 0; k < n->list.len; k++)
                item(items, n->list.items[k]->name, CK_VARIABLE,
                     detail_at(d, n->list.items[k]->nspan));
            for (int k = 0; k < n->list2.len; k++) {
                const fl_node *st = n->list2.items[k];
                if (st->kind == AST_LET && st->span.end_line < line)
                    item(items, st->name, CK_VARIABLE, detail_at(d, st->nspan));
            }
        }
    }
    for (size_t k = 0; k < sizeof builtins / sizeof *builtins; k++)
        item(items, builtins[k], CK_FUNCTION, "built-in");
    for (size_t k = 0; k < sizeof keywords / sizeof *keywords; k++)
        item(items, keywords[k], CK_KEYWORD, NULL);
    return items;
}

/* ---- document sync -----------------------------------------------------------------------------
 */
static void did_open(lsp_server *s, json_t *params) {
    json_t *td = json_object_get(params, "textDocument");
    const char *uri = jstr(td, "uri"), *text = jstr(td, "text");
    if (!uri || !text) return;
    char *path = uri_to_path(uri);
    if (!path) path = strdup(uri); /* untitled: checked as a file of that name */
    lsp_doc *d = doc_find(s, uri);
    if (!d) {
        if (!GROW(s->docs, s->ndocs, s->capdocs)) {
            free(path);
            return;
        }
        d = &s->docs[s->ndocs++];
        memset(d, 0, sizeof *d);
        d->uri = strdup(uri);
    } else {
        free(d->path);
        free(d->text);
    }
    d->path = path;
    d->len = json_string_length(json_object_get(td, "text"));
    d->text = malloc(d->len + 1);
    if (d->text)
        memcpy(d->text, text, d->len + 1);
    else
        d->len = 0;
    index_lines(d->text ? d->text : "", d->len, &d->ls, &d->nls);
    if (!d->uri || !d->path || !d->text) return;
    d->dirty = true;
    fresh(s, d);
}

static void did_change(lsp_server *s, json_t *params) {
    lsp_doc *d = doc_find(s, jstr(json_object_get(params, "textDocument"), "uri"));
    json_t *changes = json_object_get(params, "contentChanges");
    if (!d || !d->text || !json_is_array(changes)) return;
    size_t i;
    json_t *ch;
    json_array_foreach(changes, i, ch) {
        json_t *jt = json_object_get(ch, "text");
        if (!json_is_string(jt)) continue;
        const char *text = json_string_value(jt);
        size_t tl = json_string_length(jt);
        json_t *range = json_object_get(ch, "range");
        size_t a = 0, b = d->len;
        if (json_is_object(range)) {
            json_t *st = json_object_get(range, "start"), *en = json_object_get(range, "end");
            lsp_text dt = doc_text(d);
            a = pos_offset(&dt, (int)json_integer_value(json_object_get(st, "line")),
                           (int)json_integer_value(json_object_get(st, "character")));
            b = pos_offset(&dt, (int)json_integer_value(json_object_get(en, "line")),
                           (int)json_integer_value(json_object_get(en, "character")));
            if (b < a) b = a;
        }
        size_t nl = d->len - (b - a) + tl;
        char *nt = malloc(nl + 1);
        if (!nt) return;
        memcpy(nt, d->text, a);
        memcpy(nt + a, text, tl);
        memcpy(nt + a + tl, d->text + b, d->len - b);
        nt[nl] = 0;
        free(d->text);
        d->text = nt;
        d->len = nl;
        index_lines(d->text, d->len, &d->ls, &d->nls);
    }
    d->dirty = true; /* checked once the changes waiting in the input are read (fresh) */
    dependents_dirty(s, d);
}

static void did_close(lsp_server *s, json_t *params) {
    lsp_doc *d = doc_find(s, jstr(json_object_get(params, "textDocument"), "uri"));
    if (!d) return;
    for (int i = 0; i < d->npubs; i++)
        notify(s, "textDocument/publishDiagnostics",
               json_pack("{s:s,s:[]}", "uri", d->pubs[i], "diagnostics"));
    notify(s, "textDocument/publishDiagnostics",
           json_pack("{s:s,s:[]}", "uri", d->uri, "diagnostics"));
    dependents_dirty(s, d); /* they read the file from disk again */
    doc_free(d);
    *d = s->docs[--s->ndocs];
}

/* a saved file may be imported by the others: check them again */
static void did_save(lsp_server *s, json_t *params) {
    const char *uri = jstr(json_object_get(params, "textDocument"), "uri");
    for (int i = 0; i < s->ndocs; i++)
        if (!uri || strcmp(s->docs[i].uri, uri)) s->docs[i].dirty = true;
}

/* ---- the loop
 * ------------------------------------------------------------------------------------ */
static json_t *capabilities(void) {
    return json_pack("{s:{s:{s:b,s:i,s:{s:b}},s:b,s:b,s:{s:[s,s,s]},s:b,s:b},s:{s:s,s:s}}",
                     "capabilities", "textDocumentSync", "openClose", 1, "change", 2, "save",
                     "includeText", 0, "hoverProvider", 1, "definitionProvider", 1,
                     "completionProvider", "triggerCharacters", ".", "(", "{",
                     "documentSymbolProvider", 1, "renameProvider", 1, "serverInfo", "name",
                     "flowc", "version", FLOW_VERSION);
}

/* one message; returns 1 after `exit` */
static int handle(lsp_server *s, json_t *msg) {
    const char *method = jstr(msg, "method");
    json_t *id = json_object_get(msg, "id");
    json_t *params = json_object_get(msg, "params");
    bool request = id && (json_is_integer(id) || json_is_string(id));
    if (!method) {
        if (!json_object_get(msg, "result") && !json_object_get(msg, "error"))
            reply_error(s, request ? id : NULL, -32600, "not a request: no method");
        return 0; /* a response to something we never ask: ignored */
    }
    if (!strcmp(method, "exit")) return 1;
    if (!strcmp(method, "initialize")) {
        s->initialized = true;
        if (request) reply(s, id, capabilities());
        return 0;
    }
    if (!s->initialized) {
        if (request) reply_error(s, id, -32002, "the server is not initialized");
        return 0;
    }
    if (s->shutdown) {
        if (request) reply_error(s, id, -32600, "the server is shut down: only exit is left");
        return 0;
    }
    if (!strcmp(method, "shutdown")) {
        s->shutdown = true;
        if (request) reply(s, id, NULL);
        return 0;
    }
    if (!strcmp(method, "textDocument/didOpen"))
        did_open(s, params);
    else if (!strcmp(method, "textDocument/didChange"))
        did_change(s, params);
    else if (!strcmp(method, "textDocument/didClose"))
        did_close(s, params);
    else if (!strcmp(method, "textDocument/didSave"))
        did_save(s, params);
    else if (!request)
        return 0; /* initialized, $/cancelRequest, ...: nothing to do */
    else if (!strcmp(method, "textDocument/hover"))
        reply(s, id, do_hover(s, params));
    else if (!strcmp(method, "textDocument/definition"))
        reply(s, id, do_definition(s, params));
    else if (!strcmp(method, "textDocument/completion"))
        reply(s, id, do_completion(s, params));
    else if (!strcmp(method, "textDocument/documentSymbol"))
        reply(s, id, do_symbols(s, params));
    else if (!strcmp(method, "textDocument/rename")) {
        const char *err = NULL;
        json_t *r = do_rename(s, params, &err);
        if (r)
            reply(s, id, r);
        else
            reply_error(s, id, -32602, err);
    } else {
        char m[300];
        snprintf(m, sizeof m, "unknown method '%.200s'", method);
        reply_error(s, id, -32601, m);
    }
    return 0;
}

/* One header line (CRLF or LF ended) into buf; 0 ok, -1 end of input, -2 too long. */
static int header_line(FILE *in, char *buf, size_t len) {
    size_t n = 0;
    for (;;) {
        int ch = getc(in);
        if (ch == EOF) return n ? -2 : -1;
        if (ch == '\n') break;
        if (n + 1 >= len) return -2;
        buf[n++] = (char)ch;
    }
    if (n && buf[n - 1] == '\r') n--;
    buf[n] = 0;
    return 0;
}

/* input is there to read without waiting: in stdio's buffer (glibc's FILE, as gnulib's
 * freadahead reads it) or on its descriptor */
static bool input_waiting(FILE *in) {
    if (in->_IO_read_ptr < in->_IO_read_end) return true;
    int fd = fileno(in);
    if (fd < 0) return false;
    struct pollfd p = {fd, POLLIN, 0};
    return poll(&p, 1, 0) > 0;
}

static void usage(FILE *f) {
    fputs("usage: flowc lsp [-I DIR]...\n"
          "\n"
          "  A Language Server for .flow files on standard input and output (LSP over\n"
          "  JSON-RPC): diagnostics, hover, definition, completion, document symbols,\n"
          "  rename. See docs/lsp.md.\n"
          "  -I DIR        look for imported files in DIR too (as flowc -I)\n"
          "  -h, --help    this text\n",
          f);
}

int flowc_lsp(int argc, char **argv, const char *share_dir, FILE *in, FILE *out) {
    lsp_server s;
    memset(&s, 0, sizeof s);
    s.in = in;
    s.out = out;
    s.share = share_dir;
    fl_ctx_init(&s.ctx);
    s.inc = calloc((size_t)argc + 1, sizeof *s.inc);
    if (!s.inc) {
        fputs("flowc lsp: out of memory\n", stderr);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            free(s.inc);
            return 0;
        } else if (!strcmp(argv[i], "-I") && i + 1 < argc) {
            s.inc[s.ninc++] = argv[++i];
        } else if (!strncmp(argv[i], "-I", 2) && argv[i][2]) {
            s.inc[s.ninc++] = argv[i] + 2;
        } else if (!strcmp(argv[i], "--stdio")) { /* what some clients add: the only transport */
        } else {
            fprintf(stderr, "flowc lsp: unknown argument '%s' (see flowc lsp --help)\n", argv[i]);
            free(s.inc);
            return 2;
        }
    }
    int rc = 1;
    char line[LSP_MAX_HEADER];
    for (;;) {
        /* nothing more waiting: the documents changed by what was read are checked now
         * (a burst of changes, one a keystroke, costs one check) */
        if (!input_waiting(in))
            for (int i = 0; i < s.ndocs; i++)
                fresh(&s, &s.docs[i]);
        long long length = -1;
        bool bad = false;
        int r;
        while ((r = header_line(in, line, sizeof line)) == 0 && line[0]) {
            if (!strncasecmp(line, "Content-Length:", 15)) {
                char *end;
                const char *v = line + 15;
                while (*v == ' ' || *v == '\t')
                    v++;
                long long n = strtoll(v, &end, 10);
                if (end == v || *end || n < 0)
                    bad = true;
                else
                    length = n;
            }
        }
        if (r == -1) break;
        if (r == -2) {
            fputs("flowc lsp: a header line is too long or cut short; stopping\n", stderr);
            break;
        }
        if (bad || length < 0) {
            reply_error(&s, NULL, -32700, "a message needs a header Content-Length: N");
            continue;
        }
        if ((unsigned long long)length > LSP_MAX_BODY) {
            fprintf(stderr,
                    "flowc lsp: a message of %lld bytes is over the limit of %u MiB; "
                    "stopping\n",
                    length, LSP_MAX_BODY >> 20);
            break;
        }
        char *body = malloc((size_t)length + 1);
        if (!body) {
            fputs("flowc lsp: out of memory\n", stderr);
            break;
        }
        size_t got = fread(body, 1, (size_t)length, in);
        if (got != (size_t)length) {
            free(body);
            fputs("flowc lsp: the input ended inside a message\n", stderr);
            break;
        }
        json_error_t jerr;
        json_t *msg = json_loadb(body, got, JSON_REJECT_DUPLICATES, &jerr);
        free(body);
        if (!json_is_object(msg)) {
            char m[300];
            snprintf(m, sizeof m, "not a JSON object: %s", msg ? "another value" : jerr.text);
            reply_error(&s, NULL, -32700, m);
            json_decref(msg);
            continue;
        }
        int done = handle(&s, msg);
        json_decref(msg);
        if (done) break;
    }
    rc = s.shutdown ? 0 : 1;
    for (int i = 0; i < s.ndocs; i++)
        doc_free(&s.docs[i]);
    free(s.docs);
    free(s.inc);
    return rc;
}
