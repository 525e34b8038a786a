/*
 * wc.c — the tasks of the word-count example (wordcount.flow).
 *
 * Every function here is an ordinary C function with the C types of
 * docs/language.md: dir/path -> const char *, int -> int64_t, [T] -> flow_list,
 * a record -> a struct with the same fields in the same order. Results live in
 * flow_alloc memory, which the runtime owns.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <flow.h>

#define WC_MAX_FILES 1000000 /* list_files refuses a larger folder */

typedef struct wc_summary {
    int64_t files;   /* number of files counted */
    int64_t words;   /* words in all of them */
    int64_t largest; /* words in the largest file */
} wc_summary;

/* The tasks, as wordcount.flow declares them. */
flow_list list_files(const char *root);
int64_t count_words(const char *file);
int64_t total_of(flow_list counts);
wc_summary summarize(flow_list counts);

static int compare_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The regular files directly inside root, sorted by name (hidden files skipped). */
flow_list list_files(const char *root) {
    flow_list out = {0, NULL};
    DIR *d = opendir(root);
    if (!d) {
        flow_fail("cannot open folder %s: %s", root, strerror(errno));
        return out;
    }
    size_t n = 0, cap = 64;
    char **names = malloc(cap * sizeof *names);
    struct dirent *e;
    while (names && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        size_t len = strlen(root) + strlen(e->d_name) + 2;
        char *full = flow_alloc(len);
        snprintf(full, len, "%s/%s", root, e->d_name);
        struct stat st;
        if (stat(full, &st) != 0 || !S_ISREG(st.st_mode)) continue;
        if (n == WC_MAX_FILES) {
            flow_fail("%s holds more than %d files", root, WC_MAX_FILES);
            break;
        }
        if (n == cap) {
            cap *= 2;
            char **grown = realloc(names, cap * sizeof *names);
            if (!grown) break;
            names = grown;
        }
        names[n++] = full;
    }
    closedir(d);
    if (!names) {
        flow_fail("out of memory listing %s", root);
        return out;
    }
    qsort(names, n, sizeof *names, compare_names);
    out = flow_list_new((int64_t)n, sizeof(const char *));
    if (n) memcpy(out.items, names, n * sizeof *names);
    free(names);
    flow_log("%zu files in %s", n, root);
    return out;
}

/* Words are runs of characters other than space, tab and newline. */
int64_t count_words(const char *file) {
    FILE *f = fopen(file, "r");
    if (!f) {
        flow_fail("cannot read %s: %s", file, strerror(errno));
        return 0;
    }
    int64_t words = 0;
    int in_word = 0, c;
    while ((c = getc(f)) != EOF) {
        int space = c == ' ' || c == '\t' || c == '\n' || c == '\r';
        if (!space && !in_word) words++;
        in_word = !space;
    }
    fclose(f);
    return words;
}

int64_t total_of(flow_list counts) {
    const int64_t *c = counts.items;
    int64_t sum = 0;
    for (int64_t i = 0; i < counts.len; i++) sum += c[i];
    return sum;
}

wc_summary summarize(flow_list counts) {
    const int64_t *c = counts.items;
    wc_summary s = {counts.len, 0, 0};
    for (int64_t i = 0; i < counts.len; i++) {
        s.words += c[i];
        if (c[i] > s.largest) s.largest = c[i];
    }
    return s;
}
