/*
 * main.c — flowc, the command: compile a .flow file into a plan.
 *
 *   flowc FILE [-o OUT] [-I DIR]... [--check] [--emit=plan|json|yaml|dot|c|ast]
 *   flowc lsp [-I DIR]...      the language server on stdin/stdout (lsp.c)
 *   flowc fmt [--check] FILE... | -      (compiler/fmt.c)
 *
 * Exit codes: 0 success, 1 errors in the program, 2 usage or I/O errors, and out
 * of memory.
 *
 * The stages in order: read the source (at most FLOWC_MAX_SOURCE), parse it
 * (grammar/flow.y, into an AST arena), check and lower it (compile.c), then write
 * the plan or print it. main owns the context every stage allocates from: when
 * an allocation fails anywhere, the stage unwinds and frees what it made, the
 * context records FL_ENOMEM, and main prints the one line "flowc: out of memory"
 * and exits 2 (nothing the program said is shown after that: diag.h).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ast.h"
#include "compile.h"
#include "diag.h"
#include "lsp.h"
#include "fmt.h"
#include "plan.h"
#include <flow.h> /* FLOW_VERSION */

#define FLOWC_MAX_SOURCE (64u << 20) /* a larger .flow file is refused */

static void usage(FILE *f) {
    fputs("usage: flowc FILE.flow [-o OUT] [-I DIR]... [--check] [--emit=plan|json|yaml|dot|c|ast]\n"
          "       flowc lsp [-I DIR]...   (a language server on stdin/stdout: docs/lsp.md)\n"
          "       flowc fmt [--check] FILE.flow... | -   (the canonical layout: flowc fmt --help)\n"
          "\n"
          "  -o OUT        write the plan to OUT (default: FILE with .plan)\n"
          "  -I DIR        look for imported files in DIR too (after the importing file's\n"
          "                folder; then FLOW_PATH, then the installed share/flow/)\n"
          "  --check       check the program only; write nothing\n"
          "  --emit=FMT    plan (default, binary, to OUT), or print to standard output:\n"
          "                json, yaml, dot (Graphviz), c (a C array to embed), ast\n"
          "  -h, --help    this text\n"
          "  --version     print the version\n"
          "\n"
          "exit status: 0 compiled, 1 errors in the program,\n"
          "             2 usage or I/O error, or out of memory\n",
          f);
}

/* The whole file, NUL-terminated, from ctx; NULL with a reason in err. */
static char *read_all(fl_ctx *ctx, const char *path, size_t *len, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *buf = fl_malloc(ctx, cap + 1);
    for (;;) {
        if (!buf) {
            snprintf(err, errlen, "out of memory");
            fclose(f);
            return NULL;
        }
        if (n == cap) {
            if (cap >= FLOWC_MAX_SOURCE) {
                snprintf(err, errlen, "%s is larger than %u MiB", path, FLOWC_MAX_SOURCE >> 20);
                fl_free(ctx, buf);
                fclose(f);
                return NULL;
            }
            char *more = fl_realloc(ctx, buf, cap * 2 + 1);
            if (!more) {
                fl_free(ctx, buf);
                buf = NULL;
                continue;
            }
            buf = more;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        if (r == 0) break;
        n += r;
    }
    if (ferror(f)) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        fl_free(ctx, buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    buf[n] = 0;
    *len = n;
    return buf;
}

enum { O_CHECK = 256, O_EMIT, O_VERSION };

static const struct option options[] = {{"help", no_argument, NULL, 'h'},
                                        {"version", no_argument, NULL, O_VERSION},
                                        {"check", no_argument, NULL, O_CHECK},
                                        {"emit", required_argument, NULL, O_EMIT},
                                        {NULL, 0, NULL, 0}};

/* word is --name or --name=VALUE (getopt_long also takes a unique prefix of name;
 * flowc does not: such a word is an unknown option) */
static int long_word_is(const char *word, const char *name) {
    size_t n = strlen(name);
    return !strncmp(word, "--", 2) && !strncmp(word + 2, name, n) &&
           (word[2 + n] == 0 || word[2 + n] == '=');
}

/* The input file and the options, read with getopt_long in any order (flowrun's
 * runtime/app/cli_opts.c reads its command lines the same way; flowc cannot see
 * that layer). The optstring starts with '-': each argument comes back in its
 * place as 1, argv is never reordered, so the word getopt reads when a call starts
 * is argv[optind]; ':' and opterr = 0 leave the messages to flowc. 0 to go on;
 * 2 after a usage error (said); -1 after --help or --version (exit 0). */
static int parse_args(int argc, char **argv, const char **in, const char **out,
                      const char **emit, int *check_only, const char **inc, int *ninc) {
    optind = 0; /* glibc: a fresh start */
    opterr = 0;
    for (;;) {
        const char *word = argv[optind > 0 ? optind : 1];
        int longindex = -1;
        int c = getopt_long(argc, argv, "-:ho:I:", options, &longindex);
        if (c == -1) break;
        int is_long = word && !strncmp(word, "--", 2);
        if (longindex >= 0 && !long_word_is(word, options[longindex].name)) c = '?';
        if (c == ':' && is_long && !long_word_is(word, "emit")) c = '?';
        switch (c) {
            case 'h':
                usage(stdout);
                return -1;
            case O_VERSION:
                printf("flowc %s (plan format %d)\n", FLOW_VERSION, PLAN_VERSION);
                return -1;
            case O_CHECK:
                *check_only = 1;
                break;
            case 'o':
                *out = optarg;
                break;
            case 'I':
                inc[(*ninc)++] = optarg; /* at most one per word of argv */
                break;
            case O_EMIT:
                *emit = optarg;
                break;
            case 1: /* an argument */
                if (*in) {
                    fprintf(stderr, "flowc: one input file at a time ('%s' and '%s')\n", *in,
                            optarg);
                    return 2;
                }
                *in = optarg;
                break;
            case ':':
                if (is_long) fputs("flowc: --emit needs a format\n", stderr);
                else if (optopt == 'I') fputs("flowc: -I needs a folder\n", stderr);
                else fputs("flowc: -o needs a file name\n", stderr);
                return 2;
            default: /* '?' */
                if (is_long)
                    fprintf(stderr, "flowc: unknown option '%s' (see flowc --help)\n", word);
                else
                    fprintf(stderr, "flowc: unknown option '-%c' (see flowc --help)\n", optopt);
                return 2;
        }
    }
    for (int i = optind; i < argc; i++) { /* after `--`: arguments only */
        if (*in) {
            fprintf(stderr, "flowc: one input file at a time ('%s' and '%s')\n", *in, argv[i]);
            return 2;
        }
        *in = argv[i];
    }
    return 0;
}

/* The installed share/flow/ beside this flowc (BINDIR/../share/flow), where `import`
 * looks last (`make install` puts the standard library there), into buf; NULL when
 * /proc/self/exe cannot be read. */
static const char *share_dir(char *buf, size_t len) {
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return NULL;
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (!slash) return NULL;
    *slash = 0;
    int w = snprintf(buf, len, "%s/../share/flow", exe);
    return w > 0 && (size_t)w < len ? buf : NULL;
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "lsp")) { /* flowc lsp: the language server (lsp.c) */
        char share[4200];
        return flowc_lsp(argc - 1, argv + 1, share_dir(share, sizeof share), stdin, stdout);
    }
    if (argc > 1 && !strcmp(argv[1], "fmt")) return flowc_fmt_main(argc - 1, argv + 1);
    const char *in = NULL, *out = NULL, *emit = "plan";
    int check_only = 0, ninc = 0;
    const char **inc = calloc((size_t)argc + 1, sizeof *inc);
    if (!inc) {
        fputs("flowc: out of memory\n", stderr);
        return 2;
    }
    int rc0 = parse_args(argc, argv, &in, &out, &emit, &check_only, inc, &ninc);
    if (rc0) free(inc);
    if (rc0) return rc0 < 0 ? 0 : rc0;
    if (!in) {
        usage(stderr);
        free(inc);
        return 2;
    }
    int fmt = -1;
    if (!strcmp(emit, "json")) fmt = PLAN_EMIT_JSON;
    else if (!strcmp(emit, "yaml")) fmt = PLAN_EMIT_YAML;
    else if (!strcmp(emit, "dot")) fmt = PLAN_EMIT_DOT;
    else if (!strcmp(emit, "c")) fmt = PLAN_EMIT_C;
    else if (strcmp(emit, "plan") && strcmp(emit, "ast")) {
        fprintf(stderr, "flowc: unknown --emit format '%s' (plan, json, yaml, dot, c, ast)\n", emit);
        free(inc);
        return 2;
    }

    fl_ctx ctx;
    fl_ctx_init(&ctx);
    char err[512];
    size_t len = 0;
    char *src = read_all(&ctx, in, &len, err, sizeof err);
    if (!src) {
        fprintf(stderr, "flowc: %s\n", err);
        free(inc);
        return 2;
    }
    /* default output: FILE with its .flow extension replaced by .plan */
    char *def_out = NULL;
    if (!out) {
        size_t n = strlen(in);
        if (n > 5 && !strcmp(in + n - 5, ".flow")) n -= 5;
        def_out = fl_sprintf(&ctx, "%.*s.plan", (int)n, in);
        out = def_out;
    }

    fl_diag diag;
    diag_init(&diag, in, src, len, stderr);
    /* out is NULL here only when its name could not be allocated */
    ast_arena *ar = out ? ast_arena_new(&ctx) : NULL;
    int rc = 0;
    fl_node *prog = ar ? fl_parse(ar, &diag, src, len) : NULL;
    if (!prog || diag.errors) {
        rc = 1;
    } else if (!strcmp(emit, "ast")) {
        ast_dump(prog, stdout);
    } else {
        char share[4200];
        flowc_options opt = {in,  check_only ? NULL : out, src, len, &ctx, inc, ninc,
                             share_dir(share, sizeof share), NULL, NULL};
        fl_plan *plan = flowc_compile(prog, &diag, &opt);
        if (!plan || diag.errors) {
            rc = 1;
        } else if (check_only) {
            rc = 0;
        } else if (fmt >= 0) {
            rc = plan_emit(plan, (plan_emit_format)fmt, stdout) ? 2 : 0;
        } else if (plan_write_file(plan, out, err, sizeof err)) {
            fprintf(stderr, "flowc: %s\n", err);
            rc = 2;
        }
        plan_free(plan);
    }
    if (ctx.errcode == FL_ENOMEM) {
        fputs("flowc: out of memory\n", stderr);
        rc = 2;
    } else if (diag.errors > 1 || (diag.errors && diag.warnings)) {
        fprintf(stderr, "%d error%s%s\n", diag.errors, diag.errors == 1 ? "" : "s",
                diag.warnings ? " (and warnings)" : "");
    }
    ast_arena_free(ar);
    fl_free(&ctx, src);
    fl_free(&ctx, def_out);
    free(inc);
    return rc;
}
