/*
 * grouped.c — the C tasks of the grouped example (grouped.flow).
 *
 * dedupe writes its result into the instance's output directory
 * (flow_out_path), so the runtime moves it into the content-addressed store
 * and hands downstream tasks a read-only path.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <flow.h>

#define GROUPED_MAX_WORD 256         /* longer words are cut */
#define GROUPED_MAX_WORDS 10000000   /* dedupe refuses a larger file */

/* The tasks, as grouped.flow declares them. */
const char *dedupe(const char *words);
int64_t count_lines(const char *file);
int64_t total(flow_list counts);

static int compare_words(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The distinct lines of a file of one word per line, sorted. */
const char *dedupe(const char *words) {
    FILE *in = fopen(words, "r");
    if (!in) {
        flow_fail("cannot read %s: %s", words, strerror(errno));
        return NULL;
    }
    size_t n = 0, cap = 1024;
    char **all = malloc(cap * sizeof *all);
    char line[GROUPED_MAX_WORD];
    int failed = !all; /* 1: out of memory, 2: failure already reported */
    while (!failed && fgets(line, sizeof line, in)) {
        line[strcspn(line, "\n")] = 0;
        if (!line[0]) continue;
        if (n == GROUPED_MAX_WORDS) {
            flow_fail("%s has more than %d words", words, GROUPED_MAX_WORDS);
            failed = 2;
            break;
        }
        if (n == cap) {
            char **grown = realloc(all, 2 * cap * sizeof *all);
            if (!grown) {
                failed = 1;
                break;
            }
            all = grown;
            cap *= 2;
        }
        all[n] = strdup(line);
        if (!all[n]) failed = 1;
        else n++;
    }
    fclose(in);
    const char *out = NULL;
    if (!failed) {
        qsort(all, n, sizeof *all, compare_words);
        out = flow_out_path("unique.txt");
        FILE *f = fopen(out, "w");
        if (!f) {
            flow_fail("cannot write %s: %s", out, strerror(errno));
            out = NULL;
        } else {
            for (size_t i = 0; i < n; i++)
                if (i == 0 || strcmp(all[i], all[i - 1])) fprintf(f, "%s\n", all[i]);
            if (fclose(f) != 0) {
                flow_fail("cannot write %s", out);
                out = NULL;
            }
        }
    } else if (failed == 1) {
        flow_fail("out of memory reading %s", words);
    }
    for (size_t i = 0; i < n; i++) free(all[i]);
    free(all);
    return out;
}

int64_t count_lines(const char *file) {
    FILE *f = fopen(file, "r");
    if (!f) {
        flow_fail("cannot read %s: %s", file, strerror(errno));
        return 0;
    }
    int64_t lines = 0;
    int c;
    while ((c = getc(f)) != EOF)
        if (c == '\n') lines++;
    fclose(f);
    return lines;
}

int64_t total(flow_list counts) {
    const int64_t *c = counts.items;
    int64_t sum = 0;
    for (int64_t i = 0; i < counts.len; i++) sum += c[i];
    return sum;
}
