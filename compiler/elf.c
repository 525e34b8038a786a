/*
 * elf.c — defined symbols of an ELF shared object's .dynsym (see elf.h).
 *
 * Both ELF classes are read (32- and 64-bit), little- or big-endian: each field
 * is decoded by offset with the file's own byte order, so no struct from
 * <elf.h> is laid over unaligned, untrusted bytes. Only defined symbols are kept
 * (an undefined one is an import, not something a task can bind to); their names
 * are copied once and sorted, so elf_has is a binary search.
 */
#include "elf.h"

#include <stdio.h>
#include <stdlib.h> /* qsort, bsearch */
#include <string.h>

#define ELF_SHT_DYNSYM 11
#define ELF_SHN_UNDEF 0

typedef struct elf_reader {
    const uint8_t *buf; /* the whole file */
    size_t len;         /* its length */
    int is64;           /* ELFCLASS64 */
    int big;            /* big-endian */
} elf_reader;

/* the size-byte unsigned field at off, in the file's byte order (the caller checked the
 * bounds) */
static uint64_t rd(const elf_reader *r, size_t off, int size) {
    uint64_t v = 0;
    for (int i = 0; i < size; i++) {
        int k = r->big ? i : size - 1 - i;
        v = (v << 8) | r->buf[off + (size_t)k];
    }
    return v;
}

/* [off, off + size) lies inside the file, without overflowing */
static int in_bounds(const elf_reader *r, uint64_t off, uint64_t size) {
    return off <= r->len && size <= r->len - off;
}

static int cmp_name(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int fail(char *err, size_t errlen, const char *why) {
    snprintf(err, errlen, "%s", why);
    return -1;
}

int elf_dynsyms(fl_ctx *ctx, const uint8_t *buf, size_t len, elf_symtab *out, char *err,
                size_t errlen) {
    memset(out, 0, sizeof *out);
    out->ctx = ctx;
    if (len < 52 || memcmp(buf, "\177ELF", 4) != 0)
        return fail(err, errlen, "not an ELF file");
    elf_reader r = {buf, len, buf[4] == 2, buf[5] == 2};
    if ((buf[4] != 1 && buf[4] != 2) || (buf[5] != 1 && buf[5] != 2))
        return fail(err, errlen, "unknown ELF class or byte order");
    int w = r.is64 ? 8 : 4; /* width of addresses and offsets */
    if (r.is64 && len < 64) return fail(err, errlen, "truncated ELF header");
    uint64_t shoff = rd(&r, r.is64 ? 0x28 : 0x20, w);
    uint64_t shentsize = rd(&r, r.is64 ? 0x3a : 0x2e, 2);
    uint64_t shnum = rd(&r, r.is64 ? 0x3c : 0x30, 2);
    uint64_t need = r.is64 ? 64 : 40;
    if (shnum == 0 || shentsize < need || !in_bounds(&r, shoff, shnum * shentsize))
        return fail(err, errlen, "bad section header table");
    for (uint64_t i = 0; i < shnum; i++) {
        size_t sh = (size_t)(shoff + i * shentsize);
        if (rd(&r, sh + 4, 4) != ELF_SHT_DYNSYM) continue;
        uint64_t off = rd(&r, sh + (r.is64 ? 0x18 : 0x10), w);
        uint64_t size = rd(&r, sh + (r.is64 ? 0x20 : 0x14), w);
        uint64_t link = rd(&r, sh + (r.is64 ? 0x28 : 0x18), 4);
        uint64_t entsize = rd(&r, sh + (r.is64 ? 0x38 : 0x24), w);
        if (entsize < (uint64_t)(r.is64 ? 24 : 16) || !in_bounds(&r, off, size) || link >= shnum)
            return fail(err, errlen, "bad .dynsym section");
        size_t ls = (size_t)(shoff + link * shentsize);
        uint64_t stroff = rd(&r, ls + (r.is64 ? 0x18 : 0x10), w);
        uint64_t strsize = rd(&r, ls + (r.is64 ? 0x20 : 0x14), w);
        if (!in_bounds(&r, stroff, strsize) || strsize == 0)
            return fail(err, errlen, "bad .dynstr section");
        uint64_t count = size / entsize;
        if (count > ELF_MAX_SYMBOLS) return fail(err, errlen, "too many dynamic symbols");
        out->text = fl_malloc(ctx, (size_t)strsize + 1);
        out->names = fl_reallocarray(ctx, NULL, (size_t)(count ? count : 1), sizeof *out->names);
        if (!out->text || !out->names) {
            elf_symtab_free(out);
            return fail(err, errlen, "out of memory");
        }
        memcpy(out->text, buf + stroff, (size_t)strsize);
        out->text[strsize] = 0; /* an unterminated last name ends at the table's end */
        for (uint64_t k = 0; k < count; k++) {
            size_t s = (size_t)(off + k * entsize);
            uint64_t name = rd(&r, s, 4);
            uint64_t shndx = rd(&r, s + (r.is64 ? 6 : 14), 2);
            if (shndx == ELF_SHN_UNDEF || name == 0 || name >= strsize) continue;
            out->names[out->n++] = out->text + name;
        }
        qsort(out->names, (size_t)out->n, sizeof *out->names, cmp_name);
        return 0;
    }
    return fail(err, errlen, "no dynamic symbol table (not a shared object?)");
}

bool elf_has(const elf_symtab *t, const char *name) {
    return t->n && bsearch(&name, t->names, (size_t)t->n, sizeof *t->names, cmp_name) != NULL;
}

void elf_symtab_free(elf_symtab *t) {
    if (t->ctx) {
        fl_free(t->ctx, t->names);
        fl_free(t->ctx, t->text);
    }
    memset(t, 0, sizeof *t);
}
