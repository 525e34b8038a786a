/*
 * fuzz_remote.c — libFuzzer target for the files of remote execution (remote.c):
 * batch files, result chunks and end markers, which flowrun reads from a shared
 * folder that other hosts write.
 *
 * The first input byte chooses: bits 0-1 the format (0 batch, 1 result chunk, 2 end
 * marker), bit 2 whether the trailer is recomputed first, so that the fuzzer gets
 * past the checksum and into the field readers (a forged file). The rest is the
 * file. Properties checked: decoding never crashes nor reads out of bounds (ASan);
 * a refusal is one line; an accepted file encodes back to the very same bytes (the
 * format has one encoding per content).
 *
 * Seeds (tests/fuzz/seeds-remote): files of a real run on the local engine, each
 * behind its selector byte. Built and run by tests/fuzz/run.sh (make fuzz).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "remote.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void one_line(const char *err) {
    if (!err[0] || strchr(err, '\n')) abort();
}

static void same(const fv_buf *b, const uint8_t *d, size_t n) {
    if (b->failed || b->len != n || memcmp(b->data, d, n)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int kind = data[0] & 3, fix = data[0] & 4;
    size_t n = size - 1;
    uint8_t *d = malloc(n ? n : 1); /* a block of its own size: ASan sees overruns */
    if (!d) return 0;
    memcpy(d, data + 1, n);
    if (fix && n >= 8) {
        uint64_t h = fl_hash_bytes(d, n - 8);
        for (int i = 0; i < 8; i++)
            d[n - 8 + i] = (uint8_t)(h >> (8 * i));
    }
    char err[512] = "";
    fv_buf out = {0};
    if (kind == 0) {
        rm_batch b;
        if (rm_batch_decode(d, n, &b, err, sizeof err) == 0) {
            if (b.first[0] != 0 || b.first[b.nelem] != b.njobs) abort();
            rm_batch_encode(&b, &out);
            same(&out, d, n);
            rm_batch_free(&b);
        } else
            one_line(err);
    } else if (kind == 1) {
        rm_chunk c;
        if (rm_chunk_decode(d, n, &c, err, sizeof err) == 0) {
            rm_chunk_encode(&c, &out);
            same(&out, d, n);
            rm_chunk_free(&c);
        } else
            one_line(err);
    } else {
        int64_t run;
        uint32_t b, e, k;
        if (rm_end_decode(d, n, &run, &b, &e, &k, err, sizeof err) == 0) {
            rm_end_encode(run, b, e, k, &out);
            same(&out, d, n);
        } else
            one_line(err);
    }
    fl_free(fl_ctx_default(), out.data);
    free(d);
    return 0;
}
