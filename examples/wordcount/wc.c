/*
 * wc.c — the tasks of the word-count example (wordcount.flow): the counting; the
 * listing of the folder is the standard library's (std.glob).
 *
 * Every function here is an ordinary C function with the C types of
 * docs/language.md: dir/path -> const char *, int -> int64_t, [T] -> flow_list,
 * a record -> a struct with the same fields in the same order. Results live in
 * flow_alloc memory, which the runtime owns.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <flow.h>

typedef struct wc_summary {
    int64_t files;   /* number of files counted */
    int64_t words;   /* words in all of them */
    int64_t largest; /* words in the largest file */
} wc_summary;

/* The tasks, as wordcount.flow declares them. */
int64_t count_words(const char *file);
int64_t total_of(flow_list counts);
wc_summary summarize(flow_list counts);

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
