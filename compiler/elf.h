/*
 * elf.h — the dynamic symbol table of a shared object, read from its bytes.
 *
 * flowc checks `= lib.symbol` bindings without running any user code: it never
 * dlopens a library, it reads .dynsym/.dynstr itself. Every offset and size
 * taken from the file is bounds-checked against the buffer, so a truncated or
 * hostile file gives an error string, never a crash.
 */
#ifndef FLOW_ELF_H
#define FLOW_ELF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctx.h"

#define ELF_MAX_SYMBOLS 1000000 /* a larger .dynsym is refused */

typedef struct elf_symtab {
    const char **names; /* defined symbols, sorted (array from ctx; strings point into text) */
    int n;              /* number of names */
    char *text;         /* copy of the names' bytes (from ctx) */
    fl_ctx *ctx;        /* where names and text come from */
} elf_symtab;

/* Read the defined dynamic symbols of the ELF image buf[0..len), allocating from
 * ctx. Returns 0, or -1 with a one-line reason in err (the table is then empty;
 * out of memory: "out of memory", and the context has recorded FL_ENOMEM). */
int elf_dynsyms(fl_ctx *ctx, const uint8_t *buf, size_t len, elf_symtab *out, char *err,
                size_t errlen);
bool elf_has(const elf_symtab *t, const char *name);
void elf_symtab_free(elf_symtab *t);

#endif
