/*
 * mirror.c — the tasks of the mirror example (mirror.flow).
 *
 * The "remote" side is a local folder reached through file:// URLs (a plain
 * path works too), so the example runs anywhere. fetch returns the bytes in
 * flow_alloc memory; inside combine(fetch, store) they are handed to store
 * directly, in the same process.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <flow.h>

#define MIRROR_MAX_BYTES ((int64_t)1 << 30) /* fetch refuses a larger file */

typedef struct mirror_page {
    flow_bytes body; /* the file's content */
    int64_t size;    /* its length in bytes */
} mirror_page;

/* The tasks, as mirror.flow declares them. */
flow_bytes fetch(const char *url);
int64_t store(flow_bytes data, const char *dst);
mirror_page fetch_page(const char *url);
int64_t store_sized(flow_bytes data, int64_t size, const char *dst);
int64_t total(flow_list sizes);

static const char *url_path(const char *url) {
    return strncmp(url, "file://", 7) == 0 ? url + 7 : url;
}

static const char *base_name(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* The two halves of a combined task share one scratch folder: fetch leaves
 * the file's name there, and store uses it for the copy. Outside a combined
 * task (or without a scratch folder) the copy is named by the map index. */
#define MIRROR_NAME_FILE ".mirror-name"

static void remember_name(const char *url) {
    const char *scratch = flow_scratch_dir();
    char note[4096];
    if (!scratch) return;
    int w = snprintf(note, sizeof note, "%s/%s", scratch, MIRROR_NAME_FILE);
    if (w < 0 || (size_t)w >= sizeof note) return;
    FILE *f = fopen(note, "w");
    if (!f) return;
    fputs(base_name(url_path(url)), f);
    fclose(f);
}

static void recall_name(char *name, size_t size) {
    const char *scratch = flow_scratch_dir();
    char note[4096];
    name[0] = 0;
    if (scratch && snprintf(note, sizeof note, "%s/%s", scratch, MIRROR_NAME_FILE) < (int)sizeof note) {
        FILE *f = fopen(note, "r");
        if (f) {
            if (!fgets(name, (int)size, f)) name[0] = 0;
            fclose(f);
        }
    }
    if (!name[0] || strchr(name, '/') || !strcmp(name, "..")) {
        int64_t idx = flow_map_index();
        snprintf(name, size, "part-%05lld", (long long)(idx < 0 ? 0 : idx));
    }
}

flow_bytes fetch(const char *url) {
    flow_bytes out = {NULL, 0};
    const char *path = url_path(url);
    FILE *f = fopen(path, "rb");
    if (!f) {
        flow_fail("cannot fetch %s: %s", url, strerror(errno));
        return out;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || st.st_size > MIRROR_MAX_BYTES) {
        flow_fail("cannot fetch %s: not a readable file under 1 GiB", url);
        fclose(f);
        return out;
    }
    uint8_t *buf = flow_alloc((size_t)st.st_size + 1);
    size_t n = fread(buf, 1, (size_t)st.st_size, f);
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        flow_fail("cannot read %s", url);
        return out;
    }
    out.data = buf;
    out.len = (int64_t)n;
    remember_name(url);
    flow_log("fetched %zu bytes from %s", n, url);
    return out;
}

static int64_t write_to(flow_bytes data, const char *dst) {
    if (mkdir(dst, 0777) != 0 && errno != EEXIST) {
        flow_fail("cannot create %s: %s", dst, strerror(errno));
        return 0;
    }
    char name[256], path[4096];
    recall_name(name, sizeof name);
    int w = snprintf(path, sizeof path, "%s/%s", dst, name);
    if (w < 0 || (size_t)w >= sizeof path) {
        flow_fail("destination path too long: %s/%s", dst, name);
        return 0;
    }
    FILE *f = fopen(path, "wb");
    if (!f) {
        flow_fail("cannot write %s: %s", path, strerror(errno));
        return 0;
    }
    size_t n = data.len ? fwrite(data.data, 1, (size_t)data.len, f) : 0;
    if (fclose(f) != 0 || n != (size_t)data.len) {
        flow_fail("short write to %s", path);
        return 0;
    }
    flow_log("stored %lld bytes in %s", (long long)data.len, path);
    return data.len;
}

int64_t store(flow_bytes data, const char *dst) {
    return write_to(data, dst);
}

mirror_page fetch_page(const char *url) {
    mirror_page p;
    p.body = fetch(url);
    p.size = p.body.len;
    return p;
}

int64_t store_sized(flow_bytes data, int64_t size, const char *dst) {
    if (size != data.len) {
        flow_fail("size %lld does not match the %lld bytes received", (long long)size,
                  (long long)data.len);
        return 0;
    }
    return write_to(data, dst);
}

int64_t total(flow_list sizes) {
    const int64_t *s = sizes.items;
    int64_t sum = 0;
    for (int64_t i = 0; i < sizes.len; i++) sum += s[i];
    return sum;
}
