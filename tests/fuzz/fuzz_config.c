/*
 * fuzz_config.c — libFuzzer target for reading a hostile flow.yaml
 * (runtime/app/config.c).
 *
 * flow.yaml is edited by hand and can hold anything: each input is written as
 * <tmp>/flow.yaml and read by flcfg_load as flowrun reads it. Read or refused,
 * nothing may crash, hang or leak; a refusal is one line. What was read is then
 * walked: every environment (looked up by name, asked whether a state
 * directory inside its root would be refused) and every secret, so ASan sees
 * any bad pointer, and each root must be absolute and normalised.
 *
 * Seeds: tests/fuzz/seeds-config/ (good files and near misses); dictionary
 * tests/fuzz/fuzz_config.dict (the keys).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];  /* this process's scratch folder */
static char file[96]; /* dir/flow.yaml */

static void clean_all(void) {
    unlink(file);
    rmdir(dir);
}

static void check_root(const char *r) {
    if (!r) return;
    size_t n = strlen(r);
    /* absolute, no trailing slash (but "/"), no empty, "." or ".." component */
    if (r[0] != '/' || (n > 1 && r[n - 1] == '/') || strstr(r, "//") || strstr(r, "/./") ||
        strstr(r, "/../") || (n >= 2 && !strcmp(r + n - 2, "/.")) ||
        (n >= 3 && !strcmp(r + n - 3, "/..")))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "%s/fuzz-config-%ld",
                 access("/dev/shm", W_OK) ? "/tmp" : "/dev/shm", (long)getpid());
        snprintf(file, sizeof file, "%s/flow.yaml", dir);
        mkdir(dir, 0700);
        atexit(clean_all);
    }
    FILE *f = fopen(file, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    fclose(f);

    char err[512] = "";
    flcfg c;
    if (flcfg_load(file, &c, err, sizeof err) != 0) {
        if (!err[0] || strchr(err, '\n')) abort(); /* one line, always */
        return 0;
    }
    if (!flcfg_env_get(&c, "prod")) abort();
    for (int i = 0; i < c.nenvs; i++) {
        const flcfg_env *e = &c.envs[i];
        if (flcfg_env_get(&c, e->name) != e) abort();
        check_root(e->root);
        for (int j = 0; j < e->nparams; j++)
            if (!e->params[j].name || (e->params[j].text && strlen(e->params[j].text) > size))
                abort();
        if (e->root) {
            char st[4200];
            snprintf(st, sizeof st, "%s/.flow", e->root);
            /* inside its own root: fine for itself, refused for any other environment */
            if (flcfg_state_problem(&c, e->name, st, err, sizeof err) != 0) abort();
        }
    }
    for (int i = 0; i < c.nsecrets; i++)
        if (flcfg_secret_get(&c, c.secrets[i].name) != &c.secrets[i] ||
            !c.secrets[i].file == !c.secrets[i].env_var)
            abort();
    if (flcfg_env_problem(&c, "no such env", err, sizeof err) == 0 || strchr(err, '\n')) abort();
    flcfg_free(&c);
    return 0;
}
