/* integrity.c — hostile tasks for the store-integrity suite (55-integrity.sh).
 * Each does what a buggy or malicious task might: return a path that climbs out
 * of its output folder, or one it has made a link. */
#include <flow.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* "<out>/../../…/victim": as many ".." as the output folder is deep, so the
 * path names victim (an absolute path) while starting with the output folder. */
const char *escape(const char *victim) {
    const char *p = flow_out_path("x");
    if (!p) return NULL;
    char out[4096];
    snprintf(out, sizeof out, "%s", p);
    char *slash = strrchr(out, '/');
    if (slash) *slash = 0;
    size_t n = strlen(out) + strlen(victim) + 3 * 64 + 2;
    char *r = flow_alloc(n);
    snprintf(r, n, "%s", out);
    for (const char *q = out; *q; q++)
        if (*q == '/') strcat(r, "/..");
    strcat(r, victim[0] == '/' ? "" : "/");
    strcat(r, victim);
    return r;
}

/* a hard link to victim inside the output folder */
const char *hardlink(const char *victim) {
    const char *p = flow_out_path("linked.txt");
    if (!p || link(victim, p)) {
        flow_fail("cannot link %s", victim);
        return NULL;
    }
    return p;
}
