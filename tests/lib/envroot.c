/* envroot.c — libenvroot.so, for tests/suites/58-config.sh: a C task that
 * answers flow_env_root() (the run's environment's root from flow.yaml), "-"
 * when the environment has none. */
#include <stdint.h>

#include "flow.h"

const char *env_root_of(int64_t x) {
    (void)x;
    const char *r = flow_env_root();
    return r ? r : "-";
}
