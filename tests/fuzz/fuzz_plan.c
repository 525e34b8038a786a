/*
 * fuzz_plan.c — libFuzzer target for the plan reader.
 *
 * Random bytes almost never pass the SHA-256 checksum, so an input at least a header
 * long is re-sealed first: the fuzzer then reaches the section table, the decoder and
 * the cross-reference validator. An accepted plan is also written back (must succeed,
 * read again and write the same bytes again) and shown as JSON and DOT, so every index
 * the emitters follow is one the validator vouched for.
 *
 * Built and run by tests/fuzz/run.sh (make fuzz), seeded from tests/fuzz/seeds-plan/
 * (valid plans from `test_plan --write-seeds` and flowc's golden programs).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    plan_reseal(buf, size); /* does nothing below the header size */
    char err[256];
    flow_plan *p = plan_read(buf, size, err, sizeof err);
    if (!p) {
        if (!err[0] || strchr(err, '\n')) abort(); /* always exactly one line */
    } else {
        uint8_t *out;
        size_t len;
        if (plan_write(p, &out, &len) != 0) abort();
        flow_plan *q = plan_read(out, len, err, sizeof err);
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
