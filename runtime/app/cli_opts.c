/*
 * cli_opts.c — reading flowrun's command lines: getopt_long, and the project's
 * own words when a command line is wrong (cli.h says what is accepted).
 *
 * DESIGN
 *   One call of cli_next is one call of getopt_long. Its state is process-wide
 *   (optind, optarg, optopt); the first call of a line sets optind = 0, which
 *   makes glibc start over completely, so main and then the command each read
 *   their words afresh. opterr = 0 and the ':' that starts every optstring keep
 *   glibc quiet: a mistake comes back as '?' (unknown, or a value given to a
 *   flag) or ':' (a value missing), and cli_next says it in one line.
 *
 *   Ordering. A command takes its options and arguments in any order. Rather than
 *   let getopt permute argv (which POSIXLY_CORRECT in the environment silently
 *   turns off), the optstring starts with '-': each argument comes back in place
 *   as CLI_ARG, argv stays as it was, and the environment changes nothing. After
 *   `--`, getopt stops and the words left are returned as arguments. flowrun's own
 *   options start with '+' instead: they end at the first word that is not an
 *   option, the command, whose arguments are the command's to read.
 *
 *   Which word. Since argv is never reordered, the word getopt is reading when a
 *   call starts is argv[optind] (optind is advanced only past a word's last
 *   letter), so the word an option came from is known without guessing: it tells
 *   a long option from a short one when reporting a mistake, and lets a long
 *   option be checked against its full name. getopt_long would take any unique
 *   prefix (--exec for --executor); such a word is refused as unknown, as flowrun
 *   always did, so adding an option later cannot change what a command line means.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

void cli_line_init(cli_line *l, int argc, char **argv, const char *who, const char *hint,
                   const char *shorts, const struct option *longs, int stop_at_arg) {
    memset(l, 0, sizeof *l);
    l->argc = argc;
    l->argv = argv;
    l->who = who;
    l->hint = hint ? hint : "";
    l->longs = longs;
    l->stop_at_arg = stop_at_arg;
    /* a table too long for optstring leaves it empty: cli_next refuses to start */
    if (strlen(shorts) + 3 <= sizeof l->optstring)
        snprintf(l->optstring, sizeof l->optstring, "%s:%s", stop_at_arg ? "+" : "-", shorts);
}

/* The entry of name (the text after "--", up to '=' if any), or NULL. */
static const struct option *long_named(const struct option *longs, const char *name) {
    size_t n = strcspn(name, "=");
    for (const struct option *o = longs; o && o->name; o++)
        if (strlen(o->name) == n && !strncmp(o->name, name, n)) return o;
    return NULL;
}

static int say(const cli_line *l, const char *what, const char *opt, const char *after) {
    fprintf(stderr, "%s: %s'%s'%s%s\n", l->who, what, opt, after, l->hint);
    return CLI_ERROR;
}

int cli_next(cli_line *l, const char **value) {
    *value = NULL;
    if (!l->optstring[0]) {
        fprintf(stderr, "%s: too many short options for cli_line\n", l->who);
        return CLI_ERROR;
    }
    if (!l->started) {
        l->started = 1;
        l->rest = -1;
        optind = 0; /* glibc: start over, including its internal state */
        opterr = 0;
    }
    if (l->rest >= 0) { /* getopt is done: what is left are arguments */
        if (l->stop_at_arg || l->rest >= l->argc) return CLI_END;
        *value = l->argv[l->rest++];
        return CLI_ARG;
    }
    const char *word = l->argv[optind > 0 ? optind : 1]; /* see DESIGN: "Which word" */
    int longindex = -1;
    int c = getopt_long(l->argc, l->argv, l->optstring, l->longs, &longindex);
    if (c == -1) {
        l->rest = optind;
        return cli_next(l, value);
    }
    int is_long = word && word[0] == '-' && word[1] == '-';
    if (c == '?' || c == ':') {
        if (!is_long) {
            char s[3] = {'-', (char)optopt, 0};
            return c == ':' ? say(l, "option ", s, " needs a value")
                            : say(l, "unknown option ", s, "");
        }
        const struct option *o = long_named(l->longs, word + 2);
        char name[128];
        snprintf(name, sizeof name, "--%s", o ? o->name : "");
        if (!o) return say(l, "unknown option ", word, "");
        return c == ':' ? say(l, "option ", name, " needs a value")
                        : say(l, "option ", name, " takes no value");
    }
    if (c != CLI_ARG && longindex >= 0 && long_named(l->longs, word + 2) != &l->longs[longindex])
        return say(l, "unknown option ", word, ""); /* an abbreviation */
    *value = optarg;
    return c;
}

int cli_count(const char *s, int64_t lo, int64_t hi, int64_t *out) {
    const char *d = s + (*s == '-' && lo < 0);
    if (*d < '0' || *d > '9') return -1; /* no sign, space or empty text */
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}
