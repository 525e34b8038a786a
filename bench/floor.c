/*
 * floor.c — the physical floor of a mapped C task: a loop calling inc(x) of the
 * test library through ffi_call, N times, summing the results (bench/callgrind.sh).
 *
 * DESIGN
 *   What any runtime that calls a user's C function through libffi must do per
 *   instance, and nothing else: one prepared call interface, arguments in place,
 *   one ffi_call. The library is dlopened as flowrun does it, so the call goes
 *   through the same PLT-free pointer.
 *
 *   usage: floor LIBSCHED.so N      prints the sum of x + 1 for x < N
 */
#include <dlfcn.h>
#include <ffi.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: floor LIBSCHED.so N\n");
        return 2;
    }
    void *lib = dlopen(argv[1], RTLD_LAZY);
    void *fn = lib ? dlsym(lib, "inc") : NULL;
    if (!fn) {
        fprintf(stderr, "floor: %s\n", dlerror());
        return 2;
    }
    int64_t n = strtoll(argv[2], NULL, 10), sum = 0;
    ffi_cif cif;
    ffi_type *args[1] = {&ffi_type_sint64};
    if (ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 1, &ffi_type_sint64, args) != FFI_OK) return 2;
    for (int64_t x = 0; x < n; x++) {
        int64_t a = x;
        void *av[1] = {&a};
        ffi_arg r;
        ffi_call(&cif, FFI_FN(fn), &r, av);
        sum += (int64_t)r;
    }
    printf("%" PRId64 "\n", sum);
    return 0;
}
