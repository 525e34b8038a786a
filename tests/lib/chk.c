/* chk.c — libchk.so: a few task symbols for the checker's golden tests
 * (tests/errors, tests/plans). The checker only reads their names from the
 * ELF symbol table; the bodies are trivial. */
#include <stdint.h>
#include <string.h>

#include "flow.h"

int64_t count_words(const char *file) { return (int64_t)strlen(file); }
const char *list_files(const char *root) { return root; }
int64_t max_of(int64_t a) { return a; }
const char *resize_image(const char *src, int64_t width) { (void)width; return src; }
const char *thumb(const char *src) { return src; }
const char *strip_file(const char *f) { return f; }
void publish(const char *f) { (void)f; }
int64_t add(int64_t a, int64_t b) { return a + b; }
double train(double lr, int64_t depth) { return lr * (double)depth; }
flow_bytes fetch(const char *url) { flow_bytes b = {(const uint8_t *)url, (int64_t)strlen(url)}; return b; }
void store(flow_bytes data, const char *dst) { (void)data; (void)dst; }
int64_t size_of(flow_bytes data) { return data.len; }
