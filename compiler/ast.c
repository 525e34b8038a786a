/*
 * ast.c — the arena and node helpers of the syntax tree (see ast.h), and the
 * --emit=ast printer.
 *
 * The arena is a list of chunks (64 KiB, or one exactly the size of a larger
 * request), newest first; allocation bumps a pointer in the newest chunk, rounded
 * to 16 bytes, and memory is only ever given back all at once. Chunks come from
 * the compilation's context, so a failing allocation is seen (NULL, FL_ENOMEM in
 * the context) rather than ending the process. Node lists grow by doubling inside
 * the arena; the old array is simply left behind (lists are short).
 */
#include "ast.h"

#include <stdio.h>
#include <string.h>

#define ARENA_CHUNK (64 * 1024)

typedef struct arena_chunk {
    struct arena_chunk *next;
    size_t used, size;
    _Alignas(16) unsigned char data[];
} arena_chunk;

struct ast_arena {
    arena_chunk *head; /* newest chunk first */
    fl_ctx *ctx;       /* where chunks come from */
    size_t chunk;      /* size of a new chunk (a larger request gets its own) */
};

ast_arena *ast_arena_new_chunked(fl_ctx *ctx, size_t chunk) {
    ast_arena *ar = fl_calloc(ctx, 1, sizeof *ar);
    if (ar) {
        ar->ctx = ctx;
        ar->chunk = chunk;
    }
    return ar;
}

ast_arena *ast_arena_new(fl_ctx *ctx) {
    return ast_arena_new_chunked(ctx, ARENA_CHUNK);
}

void ast_arena_free(ast_arena *ar) {
    if (!ar) return;
    for (arena_chunk *c = ar->head, *n; c; c = n) {
        n = c->next;
        fl_free(ar->ctx, c);
    }
    fl_free(ar->ctx, ar);
}

fl_ctx *ast_arena_ctx(const ast_arena *ar) {
    return ar->ctx;
}

void *ast_alloc(ast_arena *ar, size_t n) {
    if (n > SIZE_MAX / 2) { /* no such request is real; refuse it before rounding */
        fl_error(ar->ctx, FL_ENOMEM, NULL, "out of memory (%zu bytes)", n);
        return NULL;
    }
    n = (n + 15) & ~(size_t)15;
    arena_chunk *c = ar->head;
    if (!c || c->size - c->used < n) {
        size_t size = n > ar->chunk ? n : ar->chunk;
        c = fl_malloc(ar->ctx, sizeof *c + size);
        if (!c) return NULL;
        c->used = 0;
        c->size = size;
        c->next = ar->head;
        ar->head = c;
    }
    void *p = c->data + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

char *ast_strndup(ast_arena *ar, const char *s, size_t n) {
    char *p = ast_alloc(ar, n + 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

fl_node *ast_node(ast_arena *ar, fl_ast_kind kind, fl_span span) {
    fl_node *n = ast_alloc(ar, sizeof *n);
    if (!n) return NULL;
    n->kind = kind;
    n->span = span;
    n->nspan = span;
    return n;
}

bool ast_push(ast_arena *ar, fl_nodes *list, fl_node *n) {
    if (list->len == list->cap) {
        int cap = list->cap ? list->cap * 2 : 4;
        fl_node **items = ast_alloc(ar, (size_t)cap * sizeof *items);
        if (!items) return false;
        if (list->len) memcpy(items, list->items, (size_t)list->len * sizeof *items);
        list->items = items;
        list->cap = cap;
    }
    list->items[list->len++] = n;
    return true;
}

static const char *const kind_names[] = {
#define X(k, doc) #k,
    FLOW_AST_KINDS(X)
#undef X
};
static const char *const op_texts[] = {
#define X(o, s) s,
    FLOW_AST_OPS(X)
#undef X
};

const char *ast_kind_name(fl_ast_kind k) {
    return (unsigned)k < AST__COUNT ? kind_names[k] : "?";
}

const char *ast_op_text(int op) {
    return (unsigned)op < OP__COUNT ? op_texts[op] : "?";
}

static void dump(const fl_node *n, FILE *f, int depth) {
    if (depth > 200) return;
    fprintf(f, "%*s%s %d:%d", depth * 2, "", ast_kind_name(n->kind), n->span.line, n->span.col);
    if (n->name) fprintf(f, " name=%s", n->name);
    if (n->sval) {
        fputs(" sval=\"", f);
        for (const char *p = n->sval; *p; p++) {
            if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
            else if ((unsigned char)*p < 32) fprintf(f, "\\x%02x", (unsigned char)*p);
            else fputc(*p, f);
        }
        fputc('"', f);
    }
    if (n->kind == AST_INT || n->kind == AST_BOOL || n->kind == AST_DURATION)
        fprintf(f, " ival=%lld", (long long)n->ival);
    if (n->kind == AST_FLOAT) fprintf(f, " fval=%.17g", n->fval);
    if (n->kind == AST_BINARY || n->kind == AST_UNARY) fprintf(f, " op=%s", ast_op_text(n->op));
    fputc('\n', f);
    const fl_node *kids[3] = {n->a, n->b, n->c};
    static const char *const tags[3] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++)
        if (kids[i]) {
            fprintf(f, "%*s.%s:\n", depth * 2 + 2, "", tags[i]);
            dump(kids[i], f, depth + 2);
        }
    if (n->list.len) fprintf(f, "%*s.list:\n", depth * 2 + 2, "");
    for (int i = 0; i < n->list.len; i++) dump(n->list.items[i], f, depth + 2);
    if (n->list2.len) fprintf(f, "%*s.list2:\n", depth * 2 + 2, "");
    for (int i = 0; i < n->list2.len; i++) dump(n->list2.items[i], f, depth + 2);
}

const fl_node *ast_find(const fl_node *n, fl_ast_kind k) {
    if (!n) return NULL;
    if (n->kind == k) return n;
    const fl_node *r;
    if ((r = ast_find(n->a, k)) || (r = ast_find(n->b, k)) || (r = ast_find(n->c, k))) return r;
    for (int i = 0; i < n->list.len; i++)
        if ((r = ast_find(n->list.items[i], k))) return r;
    for (int i = 0; i < n->list2.len; i++)
        if ((r = ast_find(n->list2.items[i], k))) return r;
    return NULL;
}

void ast_dump(const fl_node *n, void *file) {
    if (n) dump(n, file, 0);
}
