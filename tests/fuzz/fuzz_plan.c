/*
 * fuzz_plan.c — libFuzzer target for the plan reader.
 *
 * Random bytes almost never pass the SHA-256 checksum, so an input at least a header
 * long is re-sealed first: the fuzzer then reaches the section table, the decoder and
 * the cross-reference validator. An accepted plan is also written back (must succeed,
 * read again and write the same bytes again) and shown as JSON and DOT, so every index
 * the emitters follow is one the validator vouched for.
 *
 * A custom mutator keeps what it makes a *sealed* plan: the bytes a hostile author could
 * hand flowrun, which pass the envelope checks (magic, version, header size, total
 * length, SHA-256) so only the validator stands between them and the runtime. Most
 * mutations stay inside one section and keep its size, so the section table stays
 * valid and the decoded records, strings and code are what changes; some write a
 * hostile name ("..", "../", "-x", "a/b") over a string of the blob; the rest mutate the
 * whole file. Every corpus file is therefore a plan `flowrun verify` can be given as is.
 *
 * Built and run by tests/fuzz/run.sh (make fuzz), seeded from tests/fuzz/seeds-plan/
 * (tests/fuzz/make-seeds.sh: flowc's plans of tests/ and examples/, and the plans of
 * `test_plan --write-seeds`).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed);

#define HDR 96u  /* header size (docs/plan-format.md) */
#define MAXSEC 64u /* more sections than any format has: the header's count is bogus */

static uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd64(const uint8_t *p) {
    return rd32(p) | (uint64_t)rd32(p + 4) << 32;
}
static void wr32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void wr64(uint8_t *p, uint64_t v) {
    wr32(p, (uint32_t)v);
    wr32(p + 4, (uint32_t)(v >> 32));
}

/* Section i's bytes inside data, when the table says they are inside it. */
static int section(const uint8_t *data, size_t size, unsigned i, size_t *off, size_t *len) {
    const uint8_t *e = data + HDR + 24u * i;
    uint64_t o = rd64(e + 16), n = (uint64_t)rd32(e + 4) * rd32(e + 8);
    if (o > size || n > size - o) return -1;
    *off = (size_t)o;
    *len = (size_t)n;
    return 0;
}

/* Overwrite the start of a random string of the blob (section 1) with a hostile name,
 * never past its terminating NUL, so no offset moves. */
static void hostile_name(uint8_t *data, size_t off, size_t len, uint32_t r) {
    static const char *names[] = {"..", "../", ".", "-", "/", "a/b", "\x01", "../../ESCAPED"};
    if (len < 2) return;
    size_t at = off + (r >> 8) % len;
    while (at > off && data[at - 1]) at--; /* the start of the string holding `at` */
    size_t end = at;
    while (end < off + len && data[end]) end++;
    const char *nm = names[r % (sizeof names / sizeof *names)];
    size_t k = strlen(nm);
    if (k > end - at) return;
    memcpy(data + at, nm, k);
    if (at + k < end && (r & 0x10000)) data[at + k] = 0; /* the name alone, or as a prefix */
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed) {
    uint32_t r = seed * 2654435761u + 1;
    unsigned how = r % 16;
    size_t off, len;
    /* the section count of the plan's own format (its header says it; a seed of an
     * older format keeps its own, which the reader checks against its version) */
    unsigned nsec = size >= HDR ? rd32(data + 92) : 0;
    if (nsec && nsec <= MAXSEC && size >= HDR + nsec * 24u && how < 10) {
        unsigned i = (r >> 4) % nsec;
        if (section(data, size, i, &off, &len) == 0 && len > 0) {
            if (i == 0 && how < 3) hostile_name(data, off, len, r >> 8);
            else LLVMFuzzerMutate(data + off, len, len); /* in place: the same size at most */
        } else {
            size = LLVMFuzzerMutate(data, size, max_size);
        }
    } else {
        size = LLVMFuzzerMutate(data, size, max_size);
    }
    if (size >= HDR) { /* a sealed plan: what a hostile author would write */
        if (how != 15) {
            static const uint8_t magic[8] = {0x89, 'F', 'L', 'O', '\r', '\n', 0x1a, '\n'};
            memcpy(data, magic, 8);
            uint32_t v = rd32(data + 8); /* a version the reader knows: the seed's own */
            if (v < PLAN_OLDEST_VERSION || v > PLAN_VERSION) wr32(data + 8, PLAN_VERSION);
            wr32(data + 12, HDR);
            wr64(data + 16, size);
        }
        plan_reseal(data, size);
    }
    return size;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    plan_reseal(buf, size); /* does nothing below the header size */
    char err[256];
    fl_plan *p = plan_read(fl_ctx_default(), buf, size, err, sizeof err);
    if (!p) {
        if (!err[0] || strchr(err, '\n')) abort(); /* always exactly one line */
    } else {
        uint8_t *out;
        size_t len;
        if (plan_write(p, &out, &len) != 0) abort();
        fl_plan *q = plan_read(fl_ctx_default(), out, len, err, sizeof err);
        if (!q) abort(); /* what was accepted and written must read again */
        uint8_t *again;
        size_t len2;
        if (plan_write(q, &again, &len2) != 0 || len2 != len || memcmp(out, again, len) != 0)
            abort(); /* and write the same bytes: the format is deterministic */
        free(again);
        plan_free(q);
        free(out);
        FILE *f = fopen("/dev/null", "w");
        if (f) {
            plan_emit(p, PLAN_EMIT_JSON, f);
            plan_emit(p, PLAN_EMIT_DOT, f);
            fclose(f);
        }
        plan_free(p);
    }
    free(buf);
    return 0;
}
