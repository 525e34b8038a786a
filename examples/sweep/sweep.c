/*
 * sweep.c — the tasks of the sweep example (sweep.flow).
 *
 * train stands in for a model's training: a score computed from its arguments
 * alone, so it is deterministic (and cacheable). The best point is near
 * lr = 0.01, depth = 4. A record result is a C struct with the record's fields
 * in declaration order; a list of records is a C array of such structs.
 */
#include <stdint.h>

#include <flow.h>

typedef struct sweep_result {
    double lr;     /* learning rate */
    int64_t depth; /* model depth */
    double score;  /* higher is better, at most 1 */
} sweep_result;

/* The tasks, as sweep.flow declares them. */
sweep_result train(double lr, int64_t depth, int64_t seed);
sweep_result best_of(flow_list results);
double mean_score(flow_list results);

/* A small deterministic jitter in [0, 0.01) from the arguments (no libm, no rand). */
static double jitter(double lr, int64_t depth, int64_t seed) {
    uint64_t h = (uint64_t)seed * 0x9e3779b97f4a7c15u;
    h ^= (uint64_t)(lr * 1e6) + 0x632be59bd9b4e019u + (h << 6) + (h >> 2);
    h ^= (uint64_t)depth + 0x85ebca6bu + (h << 6) + (h >> 2);
    return (double)(h % 1000) / 100000.0;
}

sweep_result train(double lr, int64_t depth, int64_t seed) {
    sweep_result r = {lr, depth, 0};
    if (lr <= 0 || depth <= 0) {
        flow_fail("train: lr and depth must be positive (lr=%g depth=%lld)", lr, (long long)depth);
        return r;
    }
    /* distance from the sweet spot, measured in "decades" of lr and steps of depth */
    double d_lr = lr > 0.01 ? lr / 0.01 : 0.01 / lr; /* >= 1 */
    double decades = 0;
    while (d_lr >= 10) {
        d_lr /= 10;
        decades += 1;
    }
    decades += (d_lr - 1) / 9;
    double d_depth = (double)(depth - 4) / 4;
    r.score = 0.95 - 0.2 * decades * decades - 0.1 * d_depth * d_depth + jitter(lr, depth, seed);
    flow_log("lr=%g depth=%lld score=%.4f", lr, (long long)depth, r.score);
    return r;
}

sweep_result best_of(flow_list results) {
    const sweep_result *rs = results.items;
    sweep_result best = {0, 0, 0};
    if (results.len == 0) {
        flow_fail("best_of: no results to choose from");
        return best;
    }
    best = rs[0];
    for (int64_t i = 1; i < results.len; i++)
        if (rs[i].score > best.score) best = rs[i];
    return best;
}

double mean_score(flow_list results) {
    const sweep_result *rs = results.items;
    if (results.len == 0) {
        flow_fail("mean_score: no results");
        return 0;
    }
    double sum = 0;
    for (int64_t i = 0; i < results.len; i++) sum += rs[i].score;
    return sum / (double)results.len;
}
