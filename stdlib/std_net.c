/*
 * std_net.c — the standard library's tasks that move data (std.flow, "Moving
 * data"): fetch and fetch_to (libcurl), publish_file, publish_dir, publish_bytes.
 *
 * fetch: http, https and file URLs only (redirects: http and https only, at most
 * 10), a connect timeout of 30 s, a stall limit (under 1 byte/s for 60 s fails),
 * and a size limit (`max_bytes`, checked against the announced length and while
 * receiving). Transient failures — no connection, a timeout, a cut transfer, HTTP
 * 429 or 5xx — are retried inside the task, 3 attempts with 1 s then 2 s between;
 * HTTP 4xx and bad URLs fail at once, with the status or curl's message. The
 * task's own `retries` option comes on top, as for any task.
 *
 * publish_*: write under the run's environment root (flow_env_root(); the
 * environment must have one), never elsewhere: the destination is a relative
 * path without ".." and every folder on the way is opened with O_NOFOLLOW from the
 * root down, so neither a ".." nor a symbolic link leads out. Each write goes to a
 * temporary name in the destination's folder, then rename(2) puts it in place
 * (renameat2 RENAME_EXCHANGE for a folder that exists), so a reader sees the old
 * or the new content, never half of one. Publishing content that is already there
 * changes nothing (idempotent); the result is the absolute destination path.
 */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "std_tasks.h"

/* ---- fetch ---------------------------------------------------------------- */

typedef struct sink {
    uint8_t *data; /* malloc'ed, when collecting in memory */
    size_t len, cap;
    int64_t max;
    int fd;        /* >= 0: writing to this file */
    bool over;     /* more than max bytes arrived */
    bool werr;     /* the file could not be written */
} sink;

static size_t on_data(char *p, size_t size, size_t n, void *ud) {
    sink *s = ud;
    size_t k = size * n;
    if ((int64_t)(s->len + k) > s->max) {
        s->over = true;
        return 0; /* aborts the transfer */
    }
    if (s->fd >= 0) {
        for (size_t done = 0; done < k;) {
            ssize_t w = write(s->fd, p + done, k - done);
            if (w < 0 && errno == EINTR) continue;
            if (w < 0) {
                s->werr = true;
                return 0;
            }
            done += (size_t)w;
        }
    } else {
        if (s->len + k > s->cap) {
            size_t cap = s->cap ? s->cap : 1 << 16;
            while (cap < s->len + k) cap *= 2;
            uint8_t *d = realloc(s->data, cap);
            if (!d) return 0;
            s->data = d;
            s->cap = cap;
        }
        memcpy(s->data + s->len, p, k);
    }
    s->len += k;
    return k;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;
static void init_curl(void) {
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static bool transient(CURLcode rc, long status) {
    switch (rc) {
    case CURLE_OK: return status == 429 || status >= 500;
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_COULDNT_RESOLVE_HOST: return true;
    default: return false;
    }
}

/* Fetch url into s; 0, or -1 after flow_fail naming task and url. */
static int get(const char *url, sink *s) {
    if (s->max <= 0) {
        flow_fail("max_bytes must be positive (got %lld)", (long long)s->max);
        return -1;
    }
    pthread_once(&curl_once, init_curl);
    if (curl_init_rc != CURLE_OK) {
        flow_fail("libcurl cannot start: %s", curl_easy_strerror(curl_init_rc));
        return -1;
    }
    if (!strncasecmp(url, "file://", 7)) { /* curl would read a folder as a body */
        CURLU *u = curl_url();
        char *fpath = NULL;
        struct stat st;
        if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
            curl_url_get(u, CURLUPART_PATH, &fpath, CURLU_URLDECODE) == CURLUE_OK && fpath &&
            stat(fpath, &st) == 0 && !S_ISREG(st.st_mode)) {
            flow_fail("%s: not a regular file", url);
            curl_free(fpath);
            curl_url_cleanup(u);
            return -1;
        }
        curl_free(fpath);
        curl_url_cleanup(u);
    }
    CURL *h = curl_easy_init();
    if (!h) {
        flow_fail("out of memory");
        return -1;
    }
    char errbuf[CURL_ERROR_SIZE];
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https,file");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)s->max);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "flow-std/" FLOW_VERSION);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    int rc = -1;
    for (int attempt = 1;; attempt++) {
        errbuf[0] = 0;
        s->len = 0;
        s->over = s->werr = false;
        if (s->fd >= 0 && (ftruncate(s->fd, 0) != 0 || lseek(s->fd, 0, SEEK_SET) != 0)) {
            flow_fail("cannot rewrite the output: %s", strerror(errno));
            break;
        }
        CURLcode cc = curl_easy_perform(h);
        long status = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        bool http = !strncasecmp(url, "http", 4);
        if (s->over || cc == CURLE_FILESIZE_EXCEEDED) {
            flow_fail("%s: larger than max_bytes (%lld bytes)", url, (long long)s->max);
            break;
        }
        if (s->werr) {
            flow_fail("%s: cannot write the output: %s", url, strerror(errno));
            break;
        }
        if (cc == CURLE_OK && (!http || (status >= 200 && status < 300))) {
            rc = 0;
            break;
        }
        char why[CURL_ERROR_SIZE + 64];
        if (cc == CURLE_OK)
            snprintf(why, sizeof why, "HTTP status %ld", status);
        else
            snprintf(why, sizeof why, "%s", errbuf[0] ? errbuf : curl_easy_strerror(cc));
        if (attempt < 3 && transient(cc, status)) {
            flow_log("%s: %s; trying again (attempt %d of 3)", url, why, attempt + 1);
            struct timespec ts = {attempt, 0}; /* 1 s, then 2 s */
            nanosleep(&ts, NULL);
            continue;
        }
        flow_fail("%s: %s", url, why);
        break;
    }
    curl_easy_cleanup(h);
    return rc;
}

STD_TASK flow_bytes std_fetch(const char *url, int64_t max_bytes) {
    flow_bytes none = {NULL, 0};
    sink s = {.max = max_bytes, .fd = -1};
    if (get(url, &s) != 0) {
        free(s.data);
        return none;
    }
    uint8_t *d = flow_alloc(s.len ? s.len : 1);
    if (d && s.len) memcpy(d, s.data, s.len);
    free(s.data);
    if (!d) return none;
    return (flow_bytes){d, (int64_t)s.len};
}

/* the last component of the URL's path, without query or fragment, or NULL */
static const char *url_name(const char *url) {
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    size_t end = strcspn(p, "?#");
    const char *last = NULL;
    for (size_t i = 0; i < end; i++)
        if (p[i] == '/') last = p + i + 1;
    if (!last || last >= p + end) return NULL;
    char *name = flow_alloc((size_t)(p + end - last) + 1);
    if (!name) return NULL;
    memcpy(name, last, (size_t)(p + end - last));
    name[p + end - last] = 0;
    return name;
}

STD_TASK const char *std_fetch_to(const char *url, int64_t max_bytes) {
    const char *out = std_out(url_name(url), "download");
    if (!out) return NULL;
    int fd = open(out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        flow_fail("cannot create %s: %s", out, strerror(errno));
        return NULL;
    }
    sink s = {.max = max_bytes, .fd = fd};
    int rc = get(url, &s);
    if (close(fd) != 0 && rc == 0) {
        flow_fail("cannot write %s: %s", out, strerror(errno));
        rc = -1;
    }
    return rc == 0 ? out : NULL;
}

/* ---- publish -------------------------------------------------------------- */

typedef struct dest {
    int dirfd;          /* the destination's folder, opened from the root down */
    const char *name;   /* its last component */
    const char *full;   /* root/dst, for messages and the result */
    const char *folder; /* root/dst's folder */
} dest;

/* Check dst and open its folder under the environment's root (creating folders as
 * needed); 0, or -1 after flow_fail. */
static int open_dest(const char *dst, dest *d) {
    const char *root = flow_env_root();
    if (!root) {
        flow_fail("the run's environment has no root to publish into (flow.yaml: "
                  "envs: NAME: root: DIR)");
        return -1;
    }
    size_t n = strlen(dst);
    bool bad = n == 0 || dst[0] == '/' || dst[n - 1] == '/';
    char *copy = flow_strdup(dst);
    if (!copy) return -1;
    for (char *save = NULL, *c = strtok_r(copy, "/", &save); c && !bad;
         c = strtok_r(NULL, "/", &save))
        if (!strcmp(c, "..") || !strcmp(c, ".")) bad = true;
    if (bad) {
        flow_fail("destination '%s' is refused: it must be a relative path under the "
                  "environment's root %s, without '.' or '..' (and not absolute)",
                  dst, root);
        return -1;
    }
    int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        flow_fail("cannot open the environment's root %s: %s", root, strerror(errno));
        return -1;
    }
    strcpy(copy, dst);
    char *last = strrchr(copy, '/');
    const char *name = last ? last + 1 : copy;
    if (last) {
        *last = 0;
        for (char *save = NULL, *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
            if (mkdirat(fd, c, 0755) != 0 && errno != EEXIST) {
                flow_fail("cannot create the folder %s of %s under %s: %s", c, dst, root,
                          strerror(errno));
                close(fd);
                return -1;
            }
            int next = openat(fd, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (next < 0) {
                flow_fail("%s under %s: %s is %s", dst, root, c,
                          errno == ELOOP || errno == ENOTDIR
                              ? "a symbolic link or not a folder (refused: it could lead out "
                                "of the root)"
                              : strerror(errno));
                close(fd);
                return -1;
            }
            close(fd);
            fd = next;
        }
    }
    d->dirfd = fd;
    d->name = name;
    d->full = flow_alloc(strlen(root) + n + 2);
    d->folder = flow_alloc(strlen(root) + n + 2);
    if (!d->full || !d->folder) {
        close(fd);
        return -1;
    }
    sprintf((char *)d->full, "%s/%s", root, dst);
    /* the folder's path, from dst itself: strtok_r has cut copy into pieces */
    if (last) sprintf((char *)d->folder, "%s/%.*s", root, (int)(strrchr(dst, '/') - dst), dst);
    else strcpy((char *)d->folder, root);
    return 0;
}

/* a temporary name beside the destination, unique among concurrent writers */
static char *temp_name(const dest *d) {
    static unsigned counter;
    char *t = flow_alloc(strlen(d->name) + 64);
    if (t)
        sprintf(t, ".%s.flow-tmp-%ld-%u", d->name, (long)getpid(),
                __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED));
    return t;
}

/* What is published: bytes in memory (fd < 0) or the open regular file fd. */
typedef struct content {
    const uint8_t *data;
    size_t len;
    int fd;
} content;

/* up to n bytes of c from offset off into buf (a file is read, memory copied);
 * the number of bytes, or -1 */
static ssize_t content_read(const content *c, size_t off, uint8_t *buf, size_t n) {
    if (c->fd >= 0) {
        ssize_t r;
        do r = pread(c->fd, buf, n, (off_t)off);
        while (r < 0 && errno == EINTR);
        return r;
    }
    size_t k = off < c->len ? c->len - off : 0;
    if (k > n) k = n;
    memcpy(buf, c->data + off, k);
    return (ssize_t)k;
}

/* true when the file name (in dirfd) holds exactly the bytes of c (compared a
 * block at a time: nothing is read whole into memory) */
static bool same_content(int dirfd, const char *name, const content *c) {
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return false;
    struct stat st;
    bool same = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (size_t)st.st_size == c->len;
    uint8_t a[1 << 15], b[1 << 15]; /* on the stack: called once per file of a tree */
    for (size_t off = 0; same && off < c->len;) {
        ssize_t r = read(fd, a, sizeof a);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0 || off + (size_t)r > c->len || content_read(c, off, b, (size_t)r) != r ||
            memcmp(a, b, (size_t)r) != 0)
            same = false;
        else off += (size_t)r;
    }
    close(fd);
    return same;
}

/* write c to dest atomically (a temporary name, fsync, rename); 0, or -1 after
 * flow_fail */
static int put_content(const dest *d, const content *c) {
    if (same_content(d->dirfd, d->name, c)) {
        flow_log("%s is already up to date", d->full);
        return 0;
    }
    char *tmp = temp_name(d);
    if (!tmp) return -1;
    int fd = openat(d->dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        flow_fail("cannot create a temporary file in %s: %s", d->folder, strerror(errno));
        return -1;
    }
    uint8_t buf[1 << 16];
    bool ok = true;
    errno = 0;
    for (size_t off = 0; ok && off < c->len;) {
        const uint8_t *p = c->data + off;
        ssize_t n = (ssize_t)(c->len - off);
        if (c->fd >= 0) {
            n = content_read(c, off, buf, sizeof buf);
            p = buf;
            if (n <= 0) { /* the source shrank or failed */
                ok = false;
                break;
            }
        }
        for (ssize_t done = 0; ok && done < n;) {
            ssize_t w = write(fd, p + done, (size_t)(n - done));
            if (w < 0 && errno == EINTR) continue;
            if (w < 0) ok = false;
            else done += w;
        }
        off += (size_t)n;
    }
    ok = ok && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok || renameat(d->dirfd, tmp, d->dirfd, d->name) != 0) {
        flow_fail("cannot write %s: %s", d->full, errno ? strerror(errno) : "the source changed");
        unlinkat(d->dirfd, tmp, 0);
        return -1;
    }
    return 0;
}

STD_TASK const char *std_publish_bytes(flow_bytes data, const char *dst) {
    dest d;
    if (open_dest(dst, &d) != 0) return NULL;
    content c = {data.data, (size_t)data.len, -1};
    int rc = put_content(&d, &c);
    close(d.dirfd);
    return rc == 0 ? d.full : NULL;
}

/* the regular file src opened for reading into c; 0, or -1 after flow_fail */
static int open_content(const char *src, content *c) {
    int fd = open(src, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        flow_fail("cannot read %s: %s", src, fd < 0 ? strerror(errno) : "not a regular file");
        if (fd >= 0) close(fd);
        return -1;
    }
    *c = (content){NULL, (size_t)st.st_size, fd};
    return 0;
}

STD_TASK const char *std_publish_file(const char *src, const char *dst) {
    content c;
    if (open_content(src, &c) != 0) return NULL;
    dest d;
    if (open_dest(dst, &d) != 0) {
        close(c.fd);
        return NULL;
    }
    int rc = put_content(&d, &c);
    close(c.fd);
    close(d.dirfd);
    return rc == 0 ? d.full : NULL;
}

static int rm_one(const char *p, const struct stat *st, int type, struct FTW *ftw) {
    (void)st;
    (void)ftw;
    return type == FTW_DP ? rmdir(p) : unlink(p);
}

/* copy the tree src into the new folder dst (regular files and folders; links and
 * special files are left out, with a log line); 0, or -1 after flow_fail */
static int copy_tree(const char *src, const char *dst) {
    if (mkdir(dst, 0755) != 0) {
        flow_fail("cannot create %s: %s", dst, strerror(errno));
        return -1;
    }
    DIR *dir = opendir(src);
    if (!dir) {
        flow_fail("cannot read the folder %s: %s", src, strerror(errno));
        return -1;
    }
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(dir))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char *s = flow_alloc(strlen(src) + strlen(e->d_name) + 2);
        char *t = flow_alloc(strlen(dst) + strlen(e->d_name) + 2);
        if (!s || !t) {
            rc = -1;
            break;
        }
        sprintf(s, "%s/%s", src, e->d_name);
        sprintf(t, "%s/%s", dst, e->d_name);
        struct stat st;
        if (lstat(s, &st) != 0) {
            flow_fail("cannot read %s: %s", s, strerror(errno));
            rc = -1;
        } else if (S_ISDIR(st.st_mode)) {
            rc = copy_tree(s, t);
        } else if (S_ISREG(st.st_mode)) {
            rc = std_copy_file(s, t);
        } else {
            flow_log("%s left out (not a file or folder)", s);
        }
    }
    closedir(dir);
    return rc;
}

/* true when the trees a and b hold the same names, types and file bytes (below) */
static bool same_tree(const char *a, const char *b);

STD_TASK const char *std_publish_dir(const char *src, const char *dst) {
    struct stat st;
    if (stat(src, &st) != 0 || !S_ISDIR(st.st_mode)) {
        flow_fail("%s is not a folder", src);
        return NULL;
    }
    dest d;
    if (open_dest(dst, &d) != 0) return NULL;
    char *tmp = temp_name(&d);
    char *tpath = tmp ? flow_alloc(strlen(d.folder) + strlen(tmp) + 2) : NULL;
    if (!tpath) {
        close(d.dirfd);
        return NULL;
    }
    sprintf(tpath, "%s/%s", d.folder, tmp);
    struct stat old;
    bool exists = fstatat(d.dirfd, d.name, &old, AT_SYMLINK_NOFOLLOW) == 0;
    if (exists && S_ISDIR(old.st_mode) && same_tree(src, d.full)) {
        flow_log("%s is already up to date", d.full);
        close(d.dirfd);
        return d.full;
    }
    int rc = copy_tree(src, tpath);
    if (rc == 0) {
        if (!exists) rc = renameat(d.dirfd, tmp, d.dirfd, d.name);
        else rc = renameat2(d.dirfd, tmp, d.dirfd, d.name, RENAME_EXCHANGE);
        if (rc != 0) flow_fail("cannot put %s in place: %s", d.full, strerror(errno));
    }
    /* what is left at the temporary name: the old content, or a failed copy */
    if (fstatat(d.dirfd, tmp, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (S_ISDIR(st.st_mode)) nftw(tpath, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        else unlinkat(d.dirfd, tmp, 0);
    }
    close(d.dirfd);
    return rc == 0 ? d.full : NULL;
}

/* true when the trees a and b hold the same names, types and file bytes */
static bool same_tree(const char *a, const char *b) {
    DIR *da = opendir(a);
    if (!da) return false;
    size_t na = 0, nb = 0;
    bool same = true;
    struct dirent *e;
    while (same && (e = readdir(da))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        na++;
        char *pa = flow_alloc(strlen(a) + strlen(e->d_name) + 2);
        char *pb = flow_alloc(strlen(b) + strlen(e->d_name) + 2);
        if (!pa || !pb) {
            same = false;
            break;
        }
        sprintf(pa, "%s/%s", a, e->d_name);
        sprintf(pb, "%s/%s", b, e->d_name);
        struct stat sa, sb;
        if (lstat(pa, &sa) != 0 || lstat(pb, &sb) != 0) same = false;
        else if (S_ISDIR(sa.st_mode)) same = S_ISDIR(sb.st_mode) && same_tree(pa, pb);
        else if (S_ISREG(sa.st_mode)) {
            int sfd = open(pa, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
            int dfd = open(b, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            content c = {NULL, (size_t)sa.st_size, sfd};
            same = sfd >= 0 && dfd >= 0 && same_content(dfd, e->d_name, &c);
            if (sfd >= 0) close(sfd);
            if (dfd >= 0) close(dfd);
        } else na--; /* left out by copy_tree */
    }
    closedir(da);
    if (!same) return false;
    DIR *db = opendir(b);
    if (!db) return false;
    while ((e = readdir(db)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) nb++;
    closedir(db);
    return na == nb;
}
