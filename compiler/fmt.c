/*
 * fmt.c — `flowc fmt`: prints a parsed .flow file back in one canonical layout.
 *
 * DESIGN
 * The file is parsed with the compiler's own parser (fl_parse_comments), which
 * also hands back every comment with its position (the AST has no place for
 * them). The printer walks the AST and writes each construct in its canonical
 * form; whatever the AST does not keep is taken from the source by position:
 * literals (numbers, sizes, durations, dates, strings with their escapes and
 * interpolations) are copied byte for byte, and a parenthesised expression is
 * found by the '(' that stands before it inside its parent's span (the parser
 * drops the parentheses, not their place), so the user's parentheses stay.
 *
 * Line breaks. The printer writes a line break only where the source had one
 * and the grammar allows one: between declarations and statements; between the
 * items of a bracketed list (call arguments, parameters, list and record
 * literals, record types, `with` options), which are all on one line when they
 * were on one line in the source, else one per line; before `.member`, `with`,
 * `after`, `then` and `else`, and around a binary operator, where the source
 * broke the line there. Nothing is wrapped for width. Blank lines are kept
 * between statements, declarations, list items and comments, at most one in a
 * row, and never just inside a bracket.
 *
 * Comments. Every line break goes through newline(): before writing the break it
 * writes a comment that followed the last token on its source line (a trailing
 * comment), then every comment that stands before the next token, one a line.
 * A comment inside a construct the printer joins onto one line moves to the next
 * line break, so no comment is ever lost, and each is written once.
 *
 * Safety. The result is parsed again and compared with the original: the same
 * tree (positions aside) and the same comments, or fmt_source refuses and the
 * file is left as it was. Rewriting a file is atomic (a temporary beside it,
 * then rename) and keeps its mode.
 */
#include "fmt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ast.h"

#define FMT_MAX_SOURCE (64u << 20) /* the same bound as flowc's (main.c) */
#define FMT_INDENT 4               /* spaces per level */

/* no blank line before the first line newline() writes (just inside a bracket) */
#define NL_LEAD 1
/* no blank line before the next token (a closing bracket, the end of the file) */
#define NL_TAIL 2
/* no blank line at all (a break inside an expression) */
#define NL_TIGHT 4

typedef struct fmt {
    const char *src;         /* the source (borrowed) */
    size_t len;              /* its length */
    size_t *line_off;        /* byte offset of each line's start; [0] is line 1 */
    int nlines;              /* lines in the source */
    unsigned char *blank;    /* blank[i]: line i+1 holds only blanks */
    const fl_comments *cm;   /* the comments, in source order */
    unsigned char *printed;  /* printed[i]: comment i was written (or copied in a string) */
    int ci;                  /* the first comment newline() has not passed yet */
    char *out;               /* the result (malloc) */
    size_t olen, ocap;       /* its length and capacity */
    int oom;                 /* an allocation failed */
    int at_bol;              /* nothing written on the current output line yet */
    int ind;                 /* indent level of the current output line */
    int cont;                /* indent level of a continuation line of this statement */
    int last_line;           /* source line of the last token written */
    const fl_node *elems_of; /* the list literal whose elements are being written */
    size_t *trail;           /* where each trailing comment's "  " was written (malloc) */
    size_t ntrail, ctrail;   /* entries used and allocated */
} fmt;

/* ---- output ---- */

static void raw(fmt *f, const char *s, size_t n) {
    if (f->oom) return;
    if (f->olen + n + 1 > f->ocap) {
        size_t cap = f->ocap ? f->ocap : 4096;
        while (cap < f->olen + n + 1)
            cap *= 2;
        char *o = realloc(f->out, cap);
        if (!o) {
            f->oom = 1;
            return;
        }
        f->out = o;
        f->ocap = cap;
    }
    memcpy(f->out + f->olen, s, n);
    f->olen += n;
    f->out[f->olen] = 0;
}

/* Text on the current line (indented first when the line is new). */
static void emitn(fmt *f, const char *s, size_t n) {
    if (f->at_bol) {
        for (int i = 0; i < f->ind * FMT_INDENT; i++)
            raw(f, " ", 1);
        f->at_bol = 0;
    }
    raw(f, s, n);
}

static void emit(fmt *f, const char *s) {
    emitn(f, s, strlen(s));
}

/* ---- the source by position ---- */

static size_t off_at(const fmt *f, int line, int col) {
    if (line < 1) return 0;
    if (line > f->nlines) return f->len;
    size_t o = f->line_off[line - 1] + (size_t)(col > 0 ? col - 1 : 0);
    return o > f->len ? f->len : o;
}

static size_t start_of(const fmt *f, const fl_node *n) {
    return off_at(f, n->span.line, n->span.col);
}

/* offset of the last byte of n */
static size_t end_of(const fmt *f, const fl_node *n) {
    return off_at(f, n->span.end_line, n->span.end_col);
}

static int line_of(const fmt *f, size_t off) {
    int lo = 0, hi = f->nlines - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (f->line_off[mid] <= off)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo + 1;
}

/* the comment holding byte off, or -1 */
static int comment_at(const fmt *f, size_t off) {
    int lo = 0, hi = f->cm->len - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        const fl_comment *c = &f->cm->items[mid];
        if (off < c->off)
            hi = mid - 1;
        else if (off >= c->off + c->len)
            lo = mid + 1;
        else
            return mid;
    }
    return -1;
}

/* the first comment at or after byte off (f->cm->len if none) */
static int comment_from(const fmt *f, size_t off) {
    int lo = 0, hi = f->cm->len;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (f->cm->items[mid].off < off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int is_blank_byte(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* The first byte at or after off that is neither blank nor in a comment (len if none). */
static size_t sig_after(const fmt *f, size_t off) {
    while (off < f->len) {
        int c = comment_at(f, off);
        if (c >= 0)
            off = f->cm->items[c].off + f->cm->items[c].len;
        else if (is_blank_byte(f->src[off]))
            off++;
        else
            break;
    }
    return off;
}

/* The last such byte before off ((size_t)-1 if none). */
static size_t sig_before(const fmt *f, size_t off) {
    while (off > 0) {
        off--;
        int c = comment_at(f, off);
        if (c >= 0)
            off = f->cm->items[c].off;
        else if (!is_blank_byte(f->src[off]))
            return off;
    }
    return (size_t)-1;
}

/* The first significant byte after n, past the ')' of parentheses around it. */
static size_t after_node(const fmt *f, const fl_node *n) {
    size_t q = sig_after(f, end_of(f, n) + 1);
    while (q < f->len && f->src[q] == ')')
        q = sig_after(f, q + 1);
    return q;
}

/* Whether a line strictly between lines a and b is blank. */
static int blank_between(const fmt *f, int a, int b) {
    for (int l = a + 1; l < b && l <= f->nlines; l++)
        if (l >= 1 && f->blank[l - 1]) return 1;
    return 0;
}

/* Source bytes [from, to] as they are; comments inside (a '#' in a string's
 * interpolation) travel with them. */
static void verbatim(fmt *f, size_t from, size_t to) {
    if (to >= f->len) to = f->len - 1;
    if (from > to) return;
    emitn(f, f->src + from, to - from + 1);
    for (int i = comment_from(f, from); i < f->cm->len && f->cm->items[i].off <= to; i++)
        f->printed[i] = 1;
    f->last_line = line_of(f, to);
}

static void node_text(fmt *f, const fl_node *n) {
    verbatim(f, start_of(f, n), end_of(f, n));
}

/* A string literal without interpolation starting at off (import and library
 * paths, whose STR node the AST does not keep): copied up to its closing quote. */
static void string_at(fmt *f, size_t off) {
    size_t e = off + 1;
    while (e < f->len && f->src[e] != '"')
        e += f->src[e] == '\\' ? 2 : 1;
    verbatim(f, off, e);
}

/* ---- line breaks and comments ---- */

static void comment(fmt *f, int i) {
    const fl_comment *c = &f->cm->items[i];
    size_t n = c->len;
    while (n > 1 && (f->src[c->off + n - 1] == ' ' || f->src[c->off + n - 1] == '\t' ||
                     f->src[c->off + n - 1] == '\r'))
        n--; /* trailing blanks go */
    emitn(f, f->src + c->off, n);
    f->printed[i] = 1;
}

/* End the current line before the token at next (a byte offset; f->len for the
 * end of the file): the trailing comment of the line, the comments standing
 * before next one a line at the current indent, and the blank lines the source
 * had between them (see NL_*). The next emit starts the new line. */
static void newline(fmt *f, size_t next, int flags) {
    const fl_comments *cm = f->cm;
    while (f->ci < cm->len && f->printed[f->ci])
        f->ci++;
    if (!f->at_bol && f->ci < cm->len && cm->items[f->ci].off < next &&
        cm->items[f->ci].span.line == f->last_line) {
        if (f->ntrail == f->ctrail) {
            size_t cap = f->ctrail ? f->ctrail * 2 : 64;
            size_t *t = realloc(f->trail, cap * sizeof *t);
            if (!t)
                f->oom = 1;
            else
                f->trail = t, f->ctrail = cap;
        }
        if (f->ntrail < f->ctrail) f->trail[f->ntrail++] = f->olen;
        emit(f, "  ");
        comment(f, f->ci++);
    }
    if (!f->at_bol) raw(f, "\n", 1);
    f->at_bol = 1;
    int prev = f->last_line, first = 1;
    for (; f->ci < cm->len && cm->items[f->ci].off < next; f->ci++) {
        if (f->printed[f->ci]) continue;
        int line = cm->items[f->ci].span.line;
        if (!(flags & NL_TIGHT) && !(first && (flags & NL_LEAD)) && f->olen &&
            blank_between(f, prev, line))
            raw(f, "\n", 1);
        comment(f, f->ci);
        raw(f, "\n", 1);
        f->at_bol = 1;
        prev = line;
        first = 0;
    }
    if (next < f->len && !(flags & (NL_TIGHT | NL_TAIL)) && !(first && (flags & NL_LEAD)) &&
        f->olen && blank_between(f, prev, line_of(f, next)))
        raw(f, "\n", 1);
    f->last_line = prev;
}

/* A break inside an expression: the continuation goes one level in. */
static void cont_break(fmt *f, size_t next) {
    f->ind = f->cont;
    newline(f, next, NL_TIGHT);
}

/* ---- lists ---- */

typedef void (*item_fn)(fmt *f, const fl_node *n);

/* A line break separated open from the first item, two items, or the last item
 * from close; or (no items) a comment stands between the brackets. */
static int list_broken(const fmt *f, const fl_nodes *l, size_t open, size_t close) {
    if (!l->len) {
        int i = comment_from(f, open + 1);
        return i < f->cm->len && f->cm->items[i].off < close;
    }
    int line = line_of(f, open);
    for (int i = 0; i < l->len; i++) {
        if (l->items[i]->span.line != line) return 1;
        line = l->items[i]->span.end_line;
    }
    return line_of(f, close) != line;
}

/* open items close, e.g. "(" a, b ")". On one line when the source had them on
 * one line; else one item a line, one level in, each followed by `sep_multi`
 * ("," in ( and [, "" in { } where a newline separates). `always`: one a line
 * even when the source had one line (statement bodies). */
static void list(fmt *f, const fl_nodes *l, size_t open, size_t close, const char *o, const char *c,
                 const char *sep_multi, item_fn one, int always) {
    emit(f, o);
    f->last_line = line_of(f, open);
    if (!always && !list_broken(f, l, open, close)) {
        int cont = f->cont;
        f->cont = f->ind + 2; /* an item broken over lines goes in further than the line */
        for (int i = 0; i < l->len; i++) {
            if (i) emit(f, ", ");
            one(f, l->items[i]);
        }
        emit(f, c);
        f->cont = cont;
        f->last_line = line_of(f, close);
        return;
    }
    /* an empty body is {} unless a comment is still to be written before its end (one
     * between the signature and the '{' goes inside) */
    int pending = 0;
    for (int i = f->ci; i < f->cm->len && f->cm->items[i].off < close && !pending; i++)
        pending = !f->printed[i];
    if (always && !l->len && !pending) {
        emit(f, c);
        f->last_line = line_of(f, close);
        return;
    }
    int ind = f->ind, cont = f->cont;
    f->ind = ind + 1;
    for (int i = 0; i < l->len; i++) {
        newline(f, start_of(f, l->items[i]), i == 0 ? NL_LEAD : 0);
        f->cont = f->ind + 1;
        one(f, l->items[i]);
        emit(f, sep_multi);
        f->ind = ind + 1;
    }
    newline(f, close, NL_TAIL | (l->len ? 0 : NL_LEAD));
    f->ind = ind;
    f->cont = cont;
    emit(f, c);
    f->last_line = line_of(f, close);
}

/* The closing bracket after the last item of l (past a trailing ','), or after
 * the byte `from` when l is empty. */
static size_t close_after(const fmt *f, const fl_nodes *l, size_t from) {
    size_t q = l->len ? after_node(f, l->items[l->len - 1]) : sig_after(f, from);
    if (q < f->len && f->src[q] == ',') q = sig_after(f, q + 1);
    return q;
}

/* ---- types ---- */

static void type(fmt *f, const fl_node *n);

static void fielddecl(fmt *f, const fl_node *n) {
    emit(f, n->name);
    emit(f, ": ");
    type(f, n->a);
}

static void type(fmt *f, const fl_node *n) {
    switch (n->kind) {
        case AST_TNAME:
            if (n->sval) {
                emit(f, n->sval);
                emit(f, ".");
            }
            emit(f, n->name);
            break;
        case AST_TLIST:
            emit(f, "[");
            type(f, n->a);
            emit(f, "]");
            break;
        case AST_TRECORD:
            list(f, &n->list, start_of(f, n), end_of(f, n), "{", "}", "", fielddecl, 0);
            break;
        default:
            break;
    }
    f->last_line = n->span.end_line;
}

/* ---- expressions ---- */

static void expr(fmt *f, const fl_node *n, const fl_node *parent);

/* Whether the source wrote n in parentheses: a '(' stands right before it, inside
 * the span of its parent (whose span covers its own tokens only). */
static int parenthesised(const fmt *f, const fl_node *n, const fl_node *parent) {
    size_t q = sig_before(f, start_of(f, n));
    return q != (size_t)-1 && f->src[q] == '(' && q >= start_of(f, parent);
}

static void option(fmt *f, const fl_node *n) {
    emit(f, n->name);
    emit(f, ": ");
    expr(f, n->a, n);
}

static void fieldinit(fmt *f, const fl_node *n) {
    emit(f, n->name);
    emit(f, " = ");
    expr(f, n->a, n);
}

static void arg(fmt *f, const fl_node *n) {
    if (n->name) {
        emit(f, n->name);
        emit(f, " = ");
    }
    expr(f, n->a, n);
}

static void element(fmt *f, const fl_node *n) {
    expr(f, n, f->elems_of); /* a '(' inside the list's span before it is its own */
}

/* `with {options}` after something (a task's binding, an expression) */
static void with_options(fmt *f, const fl_nodes *opts, size_t with_kw) {
    emit(f, "with ");
    size_t open = sig_after(f, with_kw + 4);
    size_t close = close_after(f, opts, open + 1);
    list(f, opts, open, close, "{", "}", "", option, 0);
}

/* the byte offset of the keyword `word` at or after off, skipping ')' */
static size_t keyword_after(const fmt *f, size_t off) {
    size_t q = sig_after(f, off);
    while (q < f->len && f->src[q] == ')')
        q = sig_after(f, q + 1);
    return q;
}

static void expr(fmt *f, const fl_node *n, const fl_node *parent) {
    if (!n) return;
    int paren = parent && parent != n && parenthesised(f, n, parent);
    if (paren) emit(f, "(");
    switch (n->kind) {
        case AST_INT:
        case AST_FLOAT:
        case AST_DURATION:
        case AST_DATE:
        case AST_TIME:
        case AST_STR:
            node_text(f, n);
            break;
        case AST_BOOL:
            emit(f, n->ival ? "true" : "false");
            break;
        case AST_NAME:
        case AST_LPARAM:
            emit(f, n->name);
            break;
        case AST_LIST: {
            const fl_node *outer = f->elems_of;
            f->elems_of = n;
            list(f, &n->list, start_of(f, n), end_of(f, n), "[", "]", ",", element, 0);
            f->elems_of = outer;
            break;
        }
        case AST_RECORD:
            list(f, &n->list, start_of(f, n), end_of(f, n), "{", "}", "", fieldinit, 0);
            break;
        case AST_CALL: {
            expr(f, n->a, n);
            size_t close = end_of(f, n);
            size_t open = after_node(f, n->a);
            list(f, &n->list, open, close, "(", ")", ",", arg, 0);
            break;
        }
        case AST_ARG:
            arg(f, n);
            break;
        case AST_MEMBER: {
            expr(f, n->a, n);
            size_t dot = after_node(f, n->a);
            if (line_of(f, dot) > f->last_line) cont_break(f, dot);
            emit(f, ".");
            emit(f, n->name);
            break;
        }
        case AST_INDEX:
            expr(f, n->a, n);
            emit(f, "[");
            expr(f, n->b, n);
            emit(f, "]");
            break;
        case AST_BINARY: {
            expr(f, n->a, n);
            size_t op = after_node(f, n->a);
            const char *text = ast_op_text(n->op);
            size_t rhs = sig_after(f, op + strlen(text));
            if (line_of(f, op) > f->last_line && n->op != OP_SUB) {
                cont_break(f, op);
                emit(f, text);
                emit(f, " ");
            } else if (line_of(f, rhs) > line_of(f, op)) {
                emit(f, " ");
                emit(f, text);
                f->last_line = line_of(f, op);
                cont_break(f, rhs);
            } else {
                emit(f, " ");
                emit(f, text);
                emit(f, " ");
            }
            expr(f, n->b, n);
            break;
        }
        case AST_UNARY:
            emit(f, n->op == OP_NOT ? "not " : "-");
            expr(f, n->a, n);
            break;
        case AST_IF: {
            emit(f, "if ");
            expr(f, n->a, n);
            size_t kw = keyword_after(f, end_of(f, n->a) + 1);
            if (line_of(f, kw) > f->last_line)
                cont_break(f, kw);
            else
                emit(f, " ");
            emit(f, "then ");
            expr(f, n->b, n);
            kw = keyword_after(f, end_of(f, n->b) + 1);
            if (line_of(f, kw) > f->last_line)
                cont_break(f, kw);
            else
                emit(f, " ");
            emit(f, "else ");
            expr(f, n->c, n);
            break;
        }
        case AST_LAMBDA:
            if (n->list.len == 1) {
                emit(f, n->list.items[0]->name);
            } else {
                emit(f, "(");
                for (int i = 0; i < n->list.len; i++) {
                    if (i) emit(f, ", ");
                    emit(f, n->list.items[i]->name);
                }
                emit(f, ")");
            }
            emit(f, " => ");
            expr(f, n->a, n);
            break;
        case AST_WITH: {
            expr(f, n->a, n);
            size_t kw = after_node(f, n->a);
            if (line_of(f, kw) > f->last_line)
                cont_break(f, kw);
            else
                emit(f, " ");
            with_options(f, &n->list, kw);
            break;
        }
        default:
            break;
    }
    if (paren) emit(f, ")");
    if (n->span.end_line > f->last_line) f->last_line = n->span.end_line;
}

/* ---- statements ---- */

static void after_names(fmt *f, const fl_node *n, const fl_node *e) {
    if (!n->list.len) return;
    size_t kw = keyword_after(f, end_of(f, e) + 1);
    if (line_of(f, kw) > f->last_line)
        cont_break(f, kw);
    else
        emit(f, " ");
    emit(f, "after ");
    for (int i = 0; i < n->list.len; i++) {
        if (i) emit(f, ", ");
        emit(f, n->list.items[i]->name);
    }
    f->last_line = n->list.items[n->list.len - 1]->span.end_line;
}

static void stmt(fmt *f, const fl_node *n) {
    int ind = f->ind, cont = f->cont;
    f->cont = ind + 1;
    switch (n->kind) {
        case AST_LET:
            emit(f, "let ");
            emit(f, n->name);
            if (n->b) { /* a typed binding: let rows: [Hit] = ... */
                emit(f, ": ");
                type(f, n->b);
            }
            emit(f, " = ");
            expr(f, n->a, n);
            after_names(f, n, n->a);
            break;
        case AST_RETURN:
            emit(f, "return ");
            expr(f, n->a, n);
            break;
        case AST_EXPRSTMT:
            expr(f, n->a, n);
            after_names(f, n, n->a);
            break;
        default:
            break;
    }
    f->ind = ind;
    f->cont = cont;
}

/* ---- declarations ---- */

static void param(fmt *f, const fl_node *n) {
    emit(f, n->name);
    emit(f, ": ");
    type(f, n->a);
    if (n->b) {
        emit(f, " = ");
        expr(f, n->b, n);
    }
}

/* name(params) [-> type] */
static void signature(fmt *f, const fl_node *n) {
    emit(f, n->name);
    size_t open = sig_after(f, off_at(f, n->nspan.end_line, n->nspan.end_col) + 1);
    size_t close = close_after(f, &n->list, open + 1);
    list(f, &n->list, open, close, "(", ")", ",", param, 0);
    if (n->a) {
        emit(f, " -> ");
        type(f, n->a);
    }
}

static void body(fmt *f, const fl_node *n) {
    size_t close = end_of(f, n);
    size_t open =
        n->list2.len ? sig_before(f, start_of(f, n->list2.items[0])) : sig_before(f, close);
    list(f, &n->list2, open, close, "{", "}", "", stmt, 1);
}

static void decl(fmt *f, const fl_node *n) {
    f->cont = f->ind + 1;
    switch (n->kind) {
        case AST_LIBRARY: {
            emit(f, "library ");
            emit(f, n->name);
            emit(f, " = ");
            size_t eq = sig_after(f, off_at(f, n->nspan.end_line, n->nspan.end_col) + 1);
            string_at(f, sig_after(f, eq + 1));
            break;
        }
        case AST_IMPORT: {
            emit(f, "import ");
            if (n->b)
                emit(f, n->b->name);
            else
                string_at(f, sig_after(f, start_of(f, n) + 6));
            if (n->a) {
                emit(f, " as ");
                emit(f, n->a->name);
            }
            break;
        }
        case AST_TYPEDECL:
            emit(f, "type ");
            emit(f, n->name);
            emit(f, " = ");
            type(f, n->a);
            break;
        case AST_TASK: {
            emit(f, "task ");
            signature(f, n);
            emit(f, " = ");
            const fl_node *b = n->b;
            if (b && b->kind == AST_BIND_SYMBOL) {
                emit(f, b->name);
                emit(f, ".");
                emit(f, b->sval);
            } else if (b) {
                emit(f, "sh ");
                node_text(f, b->a);
            }
            f->last_line = b ? b->span.end_line : f->last_line;
            if (b && (n->list2.len || after_node(f, b) <= end_of(f, n))) {
                size_t kw = after_node(f, b);
                if (line_of(f, kw) > f->last_line)
                    cont_break(f, kw);
                else
                    emit(f, " ");
                with_options(f, &n->list2, kw);
            }
            break;
        }
        case AST_FLOW:
        case AST_GROUP:
            emit(f, n->kind == AST_FLOW ? "flow " : "group ");
            signature(f, n);
            if (n->b) {
                emit(f, " schedule ");
                node_text(f, n->b);
            }
            if (n->c) {
                for (int i = 0; i < n->c->list.len; i++) {
                    const fl_node *o = n->c->list.items[i];
                    emit(f, " ");
                    emit(f, o->name);
                    emit(f, " ");
                    if (o->a->kind == AST_NAME)
                        emit(f, o->a->name);
                    else
                        node_text(f, o->a);
                }
            }
            emit(f, " ");
            body(f, n);
            break;
        default:
            break;
    }
    if (n->span.end_line > f->last_line) f->last_line = n->span.end_line;
    f->ind = 0;
}

static void program(fmt *f, const fl_node *prog) {
    for (int i = 0; i < prog->list.len; i++) {
        newline(f, start_of(f, prog->list.items[i]), i == 0 ? NL_LEAD : 0);
        decl(f, prog->list.items[i]);
    }
    newline(f, f->len, NL_TAIL | (prog->list.len ? 0 : NL_LEAD));
}

/* ---- aligning trailing comments ---- */

/* Columns (UTF-8 characters) from the start of the line holding out[at] up to at. */
static size_t column(const char *out, size_t at, size_t *bol) {
    size_t b = at;
    while (b > 0 && out[b - 1] != '\n')
        b--;
    size_t w = 0;
    for (size_t i = b; i < at; i++)
        w += ((unsigned char)out[i] & 0xC0) != 0x80;
    *bol = b;
    return w;
}

/* The trailing comments of consecutive lines start in one column, two spaces
 * after the longest of those lines (gofmt's rule, simplified): a new text. */
static void align_trailing(fmt *f) {
    if (f->ntrail < 2 || f->oom) return;
    fmt g = {0};
    size_t from = 0;
    for (size_t i = 0; i < f->ntrail;) {
        /* the run i..j-1: each next comment on the line right after the previous one */
        size_t j = i + 1;
        while (j < f->ntrail) {
            size_t nl = 0;
            for (size_t k = f->trail[j - 1]; k < f->trail[j]; k++)
                nl += f->out[k] == '\n';
            if (nl != 1) break;
            j++;
        }
        size_t width = 0, bol;
        for (size_t k = i; k < j; k++) {
            size_t w = column(f->out, f->trail[k], &bol);
            if (w > width) width = w;
        }
        for (size_t k = i; k < j; k++) {
            size_t w = column(f->out, f->trail[k], &bol);
            raw(&g, f->out + from, f->trail[k] - from);
            for (size_t s = w; s < width; s++)
                raw(&g, " ", 1);
            from = f->trail[k];
        }
        i = j;
    }
    raw(&g, f->out + from, f->olen - from);
    if (g.oom) {
        free(g.out);
        f->oom = 1;
        return;
    }
    free(f->out);
    f->out = g.out;
    f->olen = g.olen;
    f->ocap = g.ocap;
}

/* ---- the check: same tree, same comments ---- */

static int same_tree(const fl_node *a, const fl_node *b);

static int same_list(const fl_nodes *a, const fl_nodes *b) {
    if (a->len != b->len) return 0;
    for (int i = 0; i < a->len; i++)
        if (!same_tree(a->items[i], b->items[i])) return 0;
    return 1;
}

static int same_str(const char *a, const char *b) {
    return (!a && !b) || (a && b && !strcmp(a, b));
}

static int same_tree(const fl_node *a, const fl_node *b) {
    if (!a || !b) return a == b;
    if (a->kind != b->kind || !same_str(a->name, b->name) || a->ival != b->ival || a->op != b->op ||
        memcmp(&a->fval, &b->fval, sizeof a->fval))
        return 0;
    if (a->kind == AST_STRPART) {
        if (a->ival != b->ival || (a->ival && memcmp(a->sval, b->sval, (size_t)a->ival))) return 0;
    } else if (!same_str(a->sval, b->sval)) {
        return 0;
    }
    return same_tree(a->a, b->a) && same_tree(a->b, b->b) && same_tree(a->c, b->c) &&
           same_list(&a->list, &b->list) && same_list(&a->list2, &b->list2);
}

static int same_comments(const char *sa, const fl_comments *a, const char *sb,
                         const fl_comments *b) {
    if (a->len != b->len) return 0;
    for (int i = 0; i < a->len; i++) {
        size_t na = a->items[i].len, nb = b->items[i].len;
        while (na > 1 &&
               (sa[a->items[i].off + na - 1] == ' ' || sa[a->items[i].off + na - 1] == '\t' ||
                sa[a->items[i].off + na - 1] == '\r'))
            na--;
        while (nb > 1 &&
               (sb[b->items[i].off + nb - 1] == ' ' || sb[b->items[i].off + nb - 1] == '\t' ||
                sb[b->items[i].off + nb - 1] == '\r'))
            nb--;
        if (na != nb || memcmp(sa + a->items[i].off, sb + b->items[i].off, na)) return 0;
    }
    return 1;
}

/* ---- one source ---- */

char *fmt_source(const char *src, size_t len, fl_diag *diag, size_t *out_len) {
    fl_ctx ctx;
    fl_ctx_init(&ctx);
    ast_arena *ar = ast_arena_new(&ctx);
    if (!ar) return NULL;
    fl_comments cm;
    fl_node *prog = fl_parse_comments(ar, diag, src, len, &cm);
    char *result = NULL;
    fmt f = {.src = src, .len = len, .cm = &cm};
    if (!prog || diag->errors) goto done;

    f.nlines = 1;
    for (size_t i = 0; i < len; i++)
        f.nlines += src[i] == '\n';
    f.line_off = ast_alloc(ar, (size_t)f.nlines * sizeof *f.line_off);
    f.blank = ast_alloc(ar, (size_t)f.nlines);
    f.printed = ast_alloc(ar, (size_t)cm.len + 1);
    if (!f.line_off || !f.blank || !f.printed) goto done;
    for (size_t i = 0, l = 0; l < (size_t)f.nlines; l++) {
        f.line_off[l] = i;
        int blank = 1;
        while (i < len && src[i] != '\n') {
            if (!is_blank_byte(src[i])) blank = 0;
            i++;
        }
        f.blank[l] = (unsigned char)blank;
        i++;
    }
    f.at_bol = 1;
    program(&f, prog);
    align_trailing(&f);
    if (f.oom) goto done;
    if (!f.out) raw(&f, "", 0); /* an empty file stays empty */
    if (f.oom) goto done;

    /* the result must parse to the same tree with the same comments */
    fl_diag quiet;
    FILE *devnull = fopen("/dev/null", "w");
    diag_init(&quiet, diag->file, f.out, f.olen, devnull ? devnull : stderr);
    fl_comments cm2;
    fl_node *again = fl_parse_comments(ar, &quiet, f.out, f.olen, &cm2);
    int same =
        again && !quiet.errors && same_tree(prog, again) && same_comments(src, &cm, f.out, &cm2);
    if (devnull) fclose(devnull);
    if (!same) {
        fl_span at = {1, 1, 1, 1};
        diag_error(diag, at, "please report this file; it was left as it was",
                   "flowc fmt would change what this file means or lose a comment");
        goto done;
    }
    result = f.out;
    f.out = NULL;
    *out_len = f.olen;
done:
    diag->ctx = NULL; /* it pointed at this function's context */
    free(f.trail);
    free(f.out);
    ast_arena_free(ar);
    return result;
}

/* ---- files ---- */

/* The whole of fd, malloc'ed and NUL-terminated; NULL with errno (EFBIG: too large). */
static char *read_fd(int fd, size_t *len) {
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf) return NULL;
    for (;;) {
        if (n == cap) {
            if (cap >= FMT_MAX_SOURCE) {
                free(buf);
                errno = EFBIG;
                return NULL;
            }
            char *more = realloc(buf, cap * 2 + 1);
            if (!more) {
                free(buf);
                return NULL;
            }
            buf = more;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            int e = errno;
            free(buf);
            errno = e;
            return NULL;
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

static int write_all(int fd, const char *s, size_t n) {
    while (n) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return -1;
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Replace path's content by text: a temporary file beside it with path's mode,
 * then rename over it. 0, or -1 with a message said. */
static int rewrite(const char *path, const struct stat *st, const char *text, size_t n) {
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (!tmp) {
        fprintf(stderr, "flowc fmt: %s: out of memory\n", path);
        return -1;
    }
    const char *slash = strrchr(path, '/');
    size_t dirlen = slash ? (size_t)(slash - path) + 1 : 0;
    snprintf(tmp, plen + 16, "%.*s.%s.XXXXXX", (int)dirlen, path, path + dirlen);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        fprintf(stderr, "flowc fmt: cannot write beside %s: %s\n", path, strerror(errno));
        free(tmp);
        return -1;
    }
    int bad = fchmod(fd, st->st_mode & 07777) || write_all(fd, text, n) || fsync(fd);
    int e = errno;
    if (close(fd)) bad = 1, e = errno;
    if (!bad && rename(tmp, path)) bad = 1, e = errno;
    if (bad) {
        fprintf(stderr, "flowc fmt: cannot write %s: %s\n", path, strerror(e));
        unlink(tmp);
    }
    free(tmp);
    return bad ? -1 : 0;
}

/* One file ("-": standard input to standard output). 0 formatted already or
 * rewritten, 1 (check) would change, 2 does not parse or cannot be read/written. */
static int fmt_file(const char *path, int check) {
    int is_stdin = !strcmp(path, "-");
    int fd = is_stdin ? 0 : open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st)) {
        fprintf(stderr, "flowc fmt: cannot open %s: %s\n", path, strerror(errno));
        if (fd > 0) close(fd);
        return 2;
    }
    if (!is_stdin && !S_ISREG(st.st_mode)) {
        fprintf(stderr, "flowc fmt: %s is not a regular file\n", path);
        close(fd);
        return 2;
    }
    size_t len = 0;
    char *src = read_fd(fd, &len);
    int e = errno;
    if (!is_stdin) close(fd);
    if (!src) {
        if (e == EFBIG)
            fprintf(stderr, "flowc fmt: %s is larger than %u MiB\n", path, FMT_MAX_SOURCE >> 20);
        else
            fprintf(stderr, "flowc fmt: cannot read %s: %s\n", path, strerror(e));
        return 2;
    }
    fl_diag diag;
    diag_init(&diag, is_stdin ? "<stdin>" : path, src, len, stderr);
    size_t n = 0;
    char *out = fmt_source(src, len, &diag, &n);
    int rc = 0;
    if (!out) {
        if (!diag.errors)
            fprintf(stderr, "flowc fmt: %s: out of memory\n", path);
        else
            fprintf(stderr, "flowc fmt: %s not formatted (it does not parse)\n", path);
        rc = 2;
    } else if (n == len && !memcmp(out, src, len)) {
        if (is_stdin && !check && write_all(1, out, n)) rc = 2;
    } else if (check) {
        printf("%s\n", path);
        rc = 1;
    } else if (is_stdin) {
        if (write_all(1, out, n)) rc = 2;
    } else {
        /* through a symbolic link: the file it names is rewritten, the link stays */
        char *real = realpath(path, NULL);
        if (rewrite(real ? real : path, &st, out, n)) rc = 2;
        free(real);
    }
    if (rc == 2 && is_stdin && out)
        fprintf(stderr, "flowc fmt: cannot write: %s\n", strerror(errno));
    free(out);
    free(src);
    return rc;
}

static void fmt_usage(FILE *f) {
    fputs("usage: flowc fmt [--check] FILE.flow...\n"
          "       flowc fmt [--check] -        (standard input to standard output)\n"
          "\n"
          "  Rewrites each file in the canonical layout (docs/fmt.md), in place.\n"
          "  --check       write nothing; print the files that are not formatted\n"
          "  -h, --help    this text\n"
          "\n"
          "exit status: 0 every file is formatted (or was rewritten),\n"
          "             1 --check: some file is not formatted,\n"
          "             2 usage or I/O error, or a file does not parse (it is left as it was)\n",
          f);
}

int flowc_fmt_main(int argc, char **argv) {
    int check = 0, nfiles = 0, dashdash = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (dashdash || a[0] != '-' || !strcmp(a, "-")) {
            nfiles++;
        } else if (!strcmp(a, "--")) {
            dashdash = 1;
        } else if (!strcmp(a, "--check")) {
            check = 1;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fmt_usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "flowc fmt: unknown option '%s' (see flowc fmt --help)\n", a);
            return 2;
        }
    }
    if (!nfiles) {
        fputs("flowc fmt: no file given (use - for standard input)\n", stderr);
        fmt_usage(stderr);
        return 2;
    }
    int rc = 0;
    dashdash = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!dashdash && !strcmp(a, "--")) {
            dashdash = 1;
            continue;
        }
        if (!dashdash && a[0] == '-' && strcmp(a, "-")) continue;
        int r = fmt_file(a, check);
        if (r > rc) rc = r;
    }
    fflush(stdout);
    return rc;
}
