/*
 * jit.c — compiling the plan's expression code to native code with LLVM (jit.h).
 *
 * DESIGN
 * Stack to SSA. The code is a typed stack machine whose stack depth before every
 * instruction is known statically (expr_stack_types, shared with the verifier).
 * The compiler walks each lambda once, simulating the stack with one LLVM value
 * per slot (every slot an i64: floats are bitcast, heap values are pointers as
 * integers). Every jump target, and every instruction after a jump or RET, starts
 * a basic block whose incoming stack is a row of phi nodes; each branch adds its
 * current stack as incoming values. LLVM's passes then remove what is not needed.
 *
 * Native and helper instructions. Scalar instructions (constants, parameters, int
 * and float arithmetic, comparisons, conversions, jumps) become inline IR: integer
 * overflow through llvm.s*.with.overflow, division checks as compares. Every other
 * instruction (strings, lists, records, built-ins: anything that allocates or
 * releases) is handed to the interpreter's own expr_step: the live stack is stored
 * into a stack array in the frame, expr_step runs that one instruction on it, and
 * the result slot is loaded back. So both engines share one definition of every
 * non-scalar instruction.
 *
 * Error paths. A failing check in native code (overflow, division by zero,
 * int(nan)) branches to a cold block that stores the stack as it was before the
 * instruction and runs that instruction through expr_step, which fails the same
 * way the interpreter does: same message, same loc, and the stack released. The
 * native function then returns -1.
 *
 * Calls into the runtime are constants (the address of expr_step and of the plan
 * are known at compile time), so the module needs no symbol resolution except
 * libm's fmod for float '%', found through the process's symbols.
 *
 * One module holds every lambda of the plan; it is optimised with the new pass
 * manager ("default<O2>") and compiled by one LLJIT, kept for the plan's life.
 *
 * A separate shared object. This file alone is linked with LLVM, into
 * libflow-jit.so (installed in LIBDIR/flow/), which libflow opens with dlopen
 * when a plan with lambdas asks for native code (jit_load.c, jit_abi.h). It
 * exports one function, flow_jit_module_init, and reaches the runtime only
 * through the table libflow gives it there: expr_step (whose address the
 * generated code holds), expr_stack_types, and the allocator of the plan's
 * context, which holds every block this file makes (LLVM's own allocations are
 * LLVM's). The table's ABI version is checked, and a mismatch refused.
 *
 * Layer: core (a module of its own).
 */
#include "jit.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "expr_ops.h"
#include "jit_abi.h"

typedef expr_native jit_fn;

/* The runtime, as given by libflow when the module was loaded. */
static const jit_rt_table *RT;

static void *jmalloc(const fl_plan *p, size_t n) {
    return RT->malloc(p->ctx, n);
}
static void *jcalloc(const fl_plan *p, size_t n, size_t size) {
    return RT->calloc(p->ctx, n, size);
}
static void jfree(const fl_plan *p, void *q) {
    RT->free(p->ctx, q);
}


#include <llvm-c/Analysis.h>
#include <llvm-c/Core.h>
#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>

#ifndef JIT_PASSES
#define JIT_PASSES "default<O1>" /* the IR pipeline (O2: same code here, slower) */
#endif
/* Machine code: the full instruction selector and register allocator for plans of
 * up to JIT_FAST_ISEL_ABOVE lambdas (a few ms each; loops need good registers),
 * FastISel above that (10x cheaper per lambda, slower code). */
#define JIT_FAST_ISEL_ABOVE 64
#define JIT_MAX_THUNK_PARAMS 16 /* C tasks with more parameters keep libffi */

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The state of compiling one plan (module-wide) and one lambda (per function). */
typedef struct gen {
    const fl_plan *p;                             /* the plan */
    LLVMContextRef C;                               /* context of the module */
    LLVMModuleRef M;                                /* the module of every lambda */
    LLVMBuilderRef B;                               /* the builder */
    LLVMTypeRef i1, i32, i64, f64, i8p, i64p, i32p; /* types */
    LLVMTypeRef fn_ty;                              /* i32 (i64* args, i64* out, i8* err) */
    LLVMTypeRef step_ty;                            /* expr_step's type */
    LLVMValueRef step;                              /* expr_step, a constant address */
    LLVMValueRef plan;                              /* the plan, a constant address */
    LLVMTypeRef ovf_ty;                             /* {i64, i1} (i64, i64) */
    LLVMValueRef ovf[3];                            /* llvm.sadd/ssub/smul.with.overflow.i64 */
    uint32_t helper_ops;                            /* instructions handed to expr_step */
    /* per lambda */
    uint32_t lam;                /* its index */
    LLVMValueRef fn;             /* its function */
    LLVMValueRef args, out, err; /* the function's parameters */
    LLVMValueRef st, spv;        /* the frame's stack array (i64*) and its depth, for expr_step */
    int *depth;                  /* depth[pc]: stack depth before pc, -1 unreachable */
    LLVMBasicBlockRef *bb;       /* bb[pc]: the block a leader starts, else NULL */
    LLVMValueRef *phi;           /* phi[pc * EXPR_RT_MAX_STACK + k] for leaders */
    LLVMValueRef stack[EXPR_RT_MAX_STACK]; /* the simulated stack */
    int sp;                                /* its depth */
} gen;

static LLVMValueRef ci64(gen *g, int64_t v) {
    return LLVMConstInt(g->i64, (unsigned long long)v, 1);
}
static LLVMValueRef ci32(gen *g, uint32_t v) {
    return LLVMConstInt(g->i32, v, 0);
}
static LLVMValueRef as_f(gen *g, LLVMValueRef v) {
    return LLVMBuildBitCast(g->B, v, g->f64, "");
}
static LLVMValueRef as_i(gen *g, LLVMValueRef v) {
    return LLVMBuildBitCast(g->B, v, g->i64, "");
}
static LLVMValueRef slot_ptr(gen *g, int k) {
    LLVMValueRef idx = ci64(g, k);
    return LLVMBuildInBoundsGEP2(g->B, g->i64, g->st, &idx, 1, "");
}

/* Store the simulated stack into the frame's array and run instruction pc there. */
static LLVMValueRef call_step(gen *g, uint32_t pc) {
    for (int k = 0; k < g->sp; k++)
        LLVMBuildStore(g->B, g->stack[k], slot_ptr(g, k));
    LLVMBuildStore(g->B, ci32(g, (uint32_t)g->sp), g->spv);
    LLVMValueRef a[7] = {g->plan, ci32(g, g->lam), ci32(g, pc), g->args, g->st, g->spv, g->err};
    return LLVMBuildCall2(g->B, g->step_ty, g->step, a, 7, "");
}

/* Branch to a cold block when `bad`: the instruction is rerun by expr_step, which
 * reports the error exactly as the interpreter does; then return -1. */
static void check(gen *g, uint32_t pc, LLVMValueRef bad) {
    LLVMBasicBlockRef cold = LLVMAppendBasicBlockInContext(g->C, g->fn, "fail");
    LLVMBasicBlockRef ok = LLVMAppendBasicBlockInContext(g->C, g->fn, "ok");
    LLVMValueRef br = LLVMBuildCondBr(g->B, bad, cold, ok);
    (void)br;
    LLVMPositionBuilderAtEnd(g->B, cold);
    call_step(g, pc);
    LLVMBuildRet(g->B, LLVMConstInt(g->i32, (unsigned long long)-1, 1));
    LLVMPositionBuilderAtEnd(g->B, ok);
}

/* Add the current stack as the incoming values of leader `to`. */
/* Add the current stack as the incoming values of leader `to`; false when `to` has
 * no block or another depth (not verified code: the lambda stays interpreted). */
static bool flow_into(gen *g, uint32_t to) {
    if (!g->bb[to] || g->depth[to] != g->sp) return false;
    LLVMBasicBlockRef from = LLVMGetInsertBlock(g->B);
    for (int k = 0; k < g->sp; k++)
        LLVMAddIncoming(g->phi[(size_t)to * EXPR_RT_MAX_STACK + (size_t)k], &g->stack[k], &from, 1);
    return true;
}

static void helper(gen *g, uint32_t pc) {
    g->helper_ops++;
    LLVMValueRef r = call_step(g, pc);
    LLVMBasicBlockRef ok = LLVMAppendBasicBlockInContext(g->C, g->fn, "ok");
    LLVMBasicBlockRef bad = LLVMAppendBasicBlockInContext(g->C, g->fn, "err");
    LLVMBuildCondBr(g->B, LLVMBuildICmp(g->B, LLVMIntNE, r, ci32(g, 0), ""), bad, ok);
    LLVMPositionBuilderAtEnd(g->B, bad);
    LLVMBuildRet(g->B, LLVMConstInt(g->i32, (unsigned long long)-1, 1));
    LLVMPositionBuilderAtEnd(g->B, ok);
    int nd = g->depth[pc + 1];
    /* every helper instruction pushes one value and touches nothing below its operands */
    g->sp = nd;
    g->stack[nd - 1] = LLVMBuildLoad2(g->B, g->i64, slot_ptr(g, nd - 1), "");
}

#define TOP g->stack[g->sp - 1]
#define NEXT g->stack[g->sp - 2]

static void bin_ovf(gen *g, uint32_t pc, int which) {
    LLVMValueRef a[2] = {NEXT, TOP};
    LLVMValueRef r = LLVMBuildCall2(g->B, g->ovf_ty, g->ovf[which], a, 2, "");
    check(g, pc, LLVMBuildExtractValue(g->B, r, 1, ""));
    g->sp--;
    TOP = LLVMBuildExtractValue(g->B, r, 0, "");
}

static void cmp_i(gen *g, LLVMIntPredicate pr) {
    LLVMValueRef c = LLVMBuildICmp(g->B, pr, NEXT, TOP, "");
    g->sp--;
    TOP = LLVMBuildZExt(g->B, c, g->i64, "");
}

static void cmp_f(gen *g, LLVMRealPredicate pr) {
    LLVMValueRef c = LLVMBuildFCmp(g->B, pr, as_f(g, NEXT), as_f(g, TOP), "");
    g->sp--;
    TOP = LLVMBuildZExt(g->B, c, g->i64, "");
}

static void bin_f(gen *g, LLVMOpcode op) {
    LLVMValueRef r = LLVMBuildBinOp(g->B, op, as_f(g, NEXT), as_f(g, TOP), "");
    g->sp--;
    TOP = as_i(g, r);
}

/* Compile lambda lam into function "lam<N>". 0, or -1 when it cannot be (it is
 * then interpreted). */
static int gen_lambda(gen *g, uint32_t lam) {
    const fl_plan *p = g->p;
    const plan_lambda *l = &p->lambdas[lam];
    const plan_instr *code = p->code + l->first_code;
    uint32_t n = l->ncode;
    if (n == 0 || n > JIT_MAX_CODE) return -1;
    int rc = -1;
    g->lam = lam;
    g->depth = jmalloc(p, (n + 1) * sizeof *g->depth);
    g->bb = jcalloc(p, n + 1, sizeof *g->bb);
    bool *leader = jcalloc(p, n + 1, sizeof *leader);
    g->phi = NULL;
    uint32_t *types = jmalloc(p, EXPR_RT_MAX_STACK * sizeof *types);
    if (!g->depth || !g->bb || !leader || !types) goto out;
    for (uint32_t pc = 0; pc < n; pc++) {
        int d = 0;
        g->depth[pc] = RT->expr_stack_types(p, lam, pc, types, &d) == 0 ? d : -1;
    }
    g->depth[n] = -1;
    leader[0] = true;
    for (uint32_t pc = 0; pc < n; pc++) {
        switch ((fl_expr_op)code[pc].op) {
            case EOP_JUMP:
            case EOP_JUMP_IF_FALSE:
            case EOP_JUMP_IF_TRUE:
                if ((uint32_t)code[pc].a >= n) goto out;
                leader[code[pc].a] = true;
                leader[pc + 1] = true;
                break;
            case EOP_RET:
                leader[pc + 1] = true;
                break;
            default:
                break;
        }
    }
    g->phi = jcalloc(p, (size_t)n * EXPR_RT_MAX_STACK, sizeof *g->phi);
    if (!g->phi) goto out;

    char name[32];
    snprintf(name, sizeof name, "lam%u", lam);
    g->fn = LLVMAddFunction(g->M, name, g->fn_ty);
    g->args = LLVMGetParam(g->fn, 0);
    g->out = LLVMGetParam(g->fn, 1);
    g->err = LLVMGetParam(g->fn, 2);
    LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(g->C, g->fn, "entry");
    for (uint32_t pc = 0; pc < n; pc++) {
        if (!leader[pc] || g->depth[pc] < 0) continue;
        snprintf(name, sizeof name, "pc%u", pc);
        g->bb[pc] = LLVMAppendBasicBlockInContext(g->C, g->fn, name);
        LLVMPositionBuilderAtEnd(g->B, g->bb[pc]);
        for (int k = 0; k < g->depth[pc]; k++)
            g->phi[(size_t)pc * EXPR_RT_MAX_STACK + (size_t)k] = LLVMBuildPhi(g->B, g->i64, "");
    }
    LLVMPositionBuilderAtEnd(g->B, entry);
    int maxd = 1; /* the deepest stack expr_step may see, plus the slot it pushes */
    for (uint32_t pc = 0; pc < n; pc++)
        if (g->depth[pc] + 1 > maxd) maxd = g->depth[pc] + 1;
    if (maxd > EXPR_RT_MAX_STACK) maxd = EXPR_RT_MAX_STACK;
    g->st = LLVMBuildArrayAlloca(g->B, g->i64, ci32(g, (uint32_t)maxd), "st");
    g->spv = LLVMBuildAlloca(g->B, g->i32, "sp");
    LLVMBuildBr(g->B, g->bb[0]);
    g->sp = 0;
    bool open = false;
    for (uint32_t pc = 0; pc < n; pc++) {
        const plan_instr *in = &code[pc];
        if (leader[pc]) {
            if (open) {
                if (!flow_into(g, pc)) goto out;
                LLVMBuildBr(g->B, g->bb[pc]);
            }
            open = g->bb[pc] != NULL;
            if (open) {
                LLVMPositionBuilderAtEnd(g->B, g->bb[pc]);
                g->sp = g->depth[pc];
                for (int k = 0; k < g->sp; k++)
                    g->stack[k] = g->phi[(size_t)pc * EXPR_RT_MAX_STACK + (size_t)k];
            }
        }
        if (!open) continue;
        if (g->depth[pc] != g->sp) goto out; /* cannot happen for verified code */
        switch ((fl_expr_op)in->op) {
            case EOP_IMM:
                g->stack[g->sp++] = ci64(g, in->a);
                break;
            case EOP_CONST_I:
                g->stack[g->sp++] = ci64(g, p->values[in->a].u.i);
                break;
            case EOP_CONST_F: {
                union {
                    double f;
                    int64_t i;
                } u = {.f = p->values[in->a].u.f};
                g->stack[g->sp++] = ci64(g, u.i);
                break;
            }
            case EOP_PARAM: {
                LLVMValueRef idx = ci64(g, in->a);
                LLVMValueRef ptr = LLVMBuildInBoundsGEP2(g->B, g->i64, g->args, &idx, 1, "");
                g->stack[g->sp++] = LLVMBuildLoad2(g->B, g->i64, ptr, "");
                break;
            }
            case EOP_ADD_I:
                bin_ovf(g, pc, 0);
                break;
            case EOP_SUB_I:
                bin_ovf(g, pc, 1);
                break;
            case EOP_MUL_I:
                bin_ovf(g, pc, 2);
                break;
            case EOP_DIV_I: {
                LLVMValueRef z = LLVMBuildICmp(g->B, LLVMIntEQ, TOP, ci64(g, 0), "");
                LLVMValueRef m1 = LLVMBuildICmp(g->B, LLVMIntEQ, TOP, ci64(g, -1), "");
                LLVMValueRef mn = LLVMBuildICmp(g->B, LLVMIntEQ, NEXT, ci64(g, INT64_MIN), "");
                check(g, pc, LLVMBuildOr(g->B, z, LLVMBuildAnd(g->B, m1, mn, ""), ""));
                LLVMValueRef r = LLVMBuildSDiv(g->B, NEXT, TOP, "");
                g->sp--;
                TOP = r;
                break;
            }
            case EOP_MOD_I: {
                check(g, pc, LLVMBuildICmp(g->B, LLVMIntEQ, TOP, ci64(g, 0), ""));
                /* x % -1 is 0, and srem(INT64_MIN, -1) is undefined: divide by 1 */
                LLVMValueRef m1 = LLVMBuildICmp(g->B, LLVMIntEQ, TOP, ci64(g, -1), "");
                LLVMValueRef d = LLVMBuildSelect(g->B, m1, ci64(g, 1), TOP, "");
                LLVMValueRef r = LLVMBuildSRem(g->B, NEXT, d, "");
                g->sp--;
                TOP = r;
                break;
            }
            case EOP_NEG_I:
                check(g, pc, LLVMBuildICmp(g->B, LLVMIntEQ, TOP, ci64(g, INT64_MIN), ""));
                TOP = LLVMBuildSub(g->B, ci64(g, 0), TOP, "");
                break;
            case EOP_ADD_F:
                bin_f(g, LLVMFAdd);
                break;
            case EOP_SUB_F:
                bin_f(g, LLVMFSub);
                break;
            case EOP_MUL_F:
                bin_f(g, LLVMFMul);
                break;
            case EOP_DIV_F:
                bin_f(g, LLVMFDiv);
                break;
            case EOP_MOD_F:
                bin_f(g, LLVMFRem); /* fmod */
                break;
            case EOP_NEG_F:
                TOP = as_i(g, LLVMBuildFNeg(g->B, as_f(g, TOP), ""));
                break;
            case EOP_I2F: {
                if (in->a < 0 || in->a >= g->sp) goto out;
                LLVMValueRef *s = &g->stack[g->sp - 1 - in->a];
                *s = as_i(g, LLVMBuildSIToFP(g->B, *s, g->f64, ""));
                break;
            }
            case EOP_EQ_I:
                cmp_i(g, LLVMIntEQ);
                break;
            case EOP_NE_I:
                cmp_i(g, LLVMIntNE);
                break;
            case EOP_LT_I:
                cmp_i(g, LLVMIntSLT);
                break;
            case EOP_LE_I:
                cmp_i(g, LLVMIntSLE);
                break;
            case EOP_GT_I:
                cmp_i(g, LLVMIntSGT);
                break;
            case EOP_GE_I:
                cmp_i(g, LLVMIntSGE);
                break;
            case EOP_EQ_F:
                cmp_f(g, LLVMRealOEQ);
                break;
            case EOP_NE_F:
                cmp_f(g, LLVMRealUNE);
                break;
            case EOP_LT_F:
                cmp_f(g, LLVMRealOLT);
                break;
            case EOP_LE_F:
                cmp_f(g, LLVMRealOLE);
                break;
            case EOP_GT_F:
                cmp_f(g, LLVMRealOGT);
                break;
            case EOP_GE_F:
                cmp_f(g, LLVMRealOGE);
                break;
            case EOP_NOT:
                TOP = LLVMBuildZExt(g->B, LLVMBuildICmp(g->B, LLVMIntEQ, TOP, ci64(g, 0), ""),
                                    g->i64, "");
                break;
            case EOP_INT_F: {
                LLVMValueRef f = as_f(g, TOP);
                LLVMValueRef lo = LLVMBuildFCmp(g->B, LLVMRealOGE, f,
                                                LLVMConstReal(g->f64, -9223372036854775808.0), "");
                LLVMValueRef hi = LLVMBuildFCmp(g->B, LLVMRealOLT, f,
                                                LLVMConstReal(g->f64, 9223372036854775808.0), "");
                check(g, pc, LLVMBuildNot(g->B, LLVMBuildAnd(g->B, lo, hi, ""), ""));
                TOP = LLVMBuildFPToSI(g->B, f, g->i64, "");
                break;
            }
            case EOP_JUMP:
                if (!flow_into(g, (uint32_t)in->a)) goto out;
                LLVMBuildBr(g->B, g->bb[in->a]);
                open = false;
                break;
            case EOP_JUMP_IF_FALSE:
            case EOP_JUMP_IF_TRUE: {
                LLVMValueRef c = LLVMBuildICmp(g->B, LLVMIntNE, TOP, ci64(g, 0), "");
                g->sp--;
                if (!flow_into(g, (uint32_t)in->a) || !flow_into(g, pc + 1)) goto out;
                if (in->op == EOP_JUMP_IF_TRUE)
                    LLVMBuildCondBr(g->B, c, g->bb[in->a], g->bb[pc + 1]);
                else
                    LLVMBuildCondBr(g->B, c, g->bb[pc + 1], g->bb[in->a]);
                open = false;
                break;
            }
            case EOP_RET:
                LLVMBuildStore(g->B, TOP, g->out);
                LLVMBuildRet(g->B, ci32(g, 0));
                open = false;
                break;
            default:
                if (in->op >= EOP__COUNT || pc + 1 >= n || g->depth[pc + 1] < 1) goto out;
                helper(g, pc);
                break;
        }
    }
    if (open) goto out; /* fell off the end: not verified code */
    rc = 0;
out:
    if (rc != 0 && g->fn) {
        LLVMDeleteFunction(g->fn);
    }
    g->fn = NULL;
    jfree(p, g->depth);
    jfree(p, g->bb);
    jfree(p, g->phi);
    jfree(p, leader);
    jfree(p, types);
    return rc;
}

/* ---- direct-call thunks of C tasks ---- */

/* The LLVM type of a parameter or result of C type t (flow.h's mapping), or NULL
 * when the thunk does not handle it. *is_bool: a C bool (i8, zero-extended). */
static LLVMTypeRef thunk_type(gen *g, uint32_t t, bool *is_bool) {
    *is_bool = false;
    if (t >= g->p->n_types) return NULL;
    switch ((plan_type_kind)g->p->types[t].kind) {
        case PT_INT:
        case PT_DURATION:
            return g->i64;
        case PT_FLOAT:
            return g->f64;
        case PT_BOOL:
            *is_bool = true;
            return LLVMInt8TypeInContext(g->C);
        case PT_STR:
        case PT_PATH:
        case PT_DIR:
        case PT_DATE:
        case PT_TIME:
            return g->i8p;
        case PT_VOID:
            return LLVMVoidTypeInContext(g->C);
        default:
            return NULL;
    }
}

/* Emit "thunk<ti>" (jit_thunk) for C task ti; false when its signature is not simple. */
static bool gen_thunk(gen *g, uint32_t ti) {
    const fl_plan *p = g->p;
    const plan_task *t = &p->tasks[ti];
    if (t->kind != TK_C || t->nparams > JIT_MAX_THUNK_PARAMS) return false;
    LLVMTypeRef at[JIT_MAX_THUNK_PARAMS];
    bool ab[JIT_MAX_THUNK_PARAMS], rb;
    for (uint32_t i = 0; i < t->nparams; i++) {
        at[i] = thunk_type(g, p->params[t->first_param + i].type, &ab[i]);
        if (!at[i] || LLVMGetTypeKind(at[i]) == LLVMVoidTypeKind) return false;
    }
    LLVMTypeRef rt = thunk_type(g, t->ret, &rb);
    if (!rt) return false;
    LLVMTypeRef cty = LLVMFunctionType(rt, at, t->nparams, 0);
    LLVMTypeRef i8pp = LLVMPointerType(g->i8p, 0);
    LLVMTypeRef tp[3] = {g->i8p, g->i8p, i8pp};
    char name[32];
    snprintf(name, sizeof name, "thunk%u", ti);
    LLVMValueRef fn =
        LLVMAddFunction(g->M, name, LLVMFunctionType(LLVMVoidTypeInContext(g->C), tp, 3, 0));
    LLVMPositionBuilderAtEnd(g->B, LLVMAppendBasicBlockInContext(g->C, fn, "entry"));
    LLVMValueRef target = LLVMBuildBitCast(g->B, LLVMGetParam(fn, 0), LLVMPointerType(cty, 0), "");
    LLVMValueRef rbuf = LLVMGetParam(fn, 1), av = LLVMGetParam(fn, 2);
    LLVMValueRef args[JIT_MAX_THUNK_PARAMS];
    for (uint32_t i = 0; i < t->nparams; i++) {
        LLVMValueRef idx = ci64(g, i);
        LLVMValueRef ptr =
            LLVMBuildLoad2(g->B, g->i8p, LLVMBuildInBoundsGEP2(g->B, g->i8p, av, &idx, 1, ""), "");
        ptr = LLVMBuildBitCast(g->B, ptr, LLVMPointerType(at[i], 0), "");
        args[i] = LLVMBuildLoad2(g->B, at[i], ptr, "");
    }
    LLVMValueRef call = LLVMBuildCall2(g->B, cty, target, args, t->nparams, "");
    LLVMAttributeRef zext =
        LLVMCreateEnumAttribute(g->C, LLVMGetEnumAttributeKindForName("zeroext", 7), 0);
    for (uint32_t i = 0; i < t->nparams; i++)
        if (ab[i]) LLVMAddCallSiteAttribute(call, i + 1, zext);
    if (rb) LLVMAddCallSiteAttribute(call, LLVMAttributeReturnIndex, zext);
    if (LLVMGetTypeKind(rt) != LLVMVoidTypeKind) {
        LLVMValueRef v = call;
        LLVMTypeRef st = rt;
        if (rb) { /* as libffi: widened to ffi_arg */
            v = LLVMBuildZExt(g->B, call, g->i64, "");
            st = g->i64;
        }
        LLVMBuildStore(g->B, v, LLVMBuildBitCast(g->B, rbuf, LLVMPointerType(st, 0), ""));
    }
    LLVMBuildRetVoid(g->B);
    return true;
}

/* ---- fused range loops ---- */

#define JIT_MAX_STAGES 64 /* map/filter stages in one fused loop */

static bool scalar_type(const fl_plan *p, uint32_t t) {
    if (t >= p->n_types) return false;
    switch ((plan_type_kind)p->types[t].kind) {
        case PT_INT:
        case PT_FLOAT:
        case PT_BOOL:
        case PT_DURATION:
            return true;
        default:
            return false;
    }
}

/* The chain of map/filter nodes ending at `node` over a range: stage[0..*ns),
 * innermost first. false when there is none or it is not all scalar lambdas with
 * native code. */
static bool range_chain(const fl_plan *p, const bool *ok, uint32_t node, uint32_t *stage,
                        int *ns) {
    const plan_node *N = &p->nodes[node];
    if (!(N->kind == PN_MAP || N->kind == PN_FILTER || N->kind == PN_LEN) || N->nargs < 1)
        return false;
    uint32_t rev[JIT_MAX_STAGES];
    int n = 0;
    uint32_t cur = N->kind == PN_LEN ? p->args[N->first_arg].node : node;
    while (cur < p->n_nodes && (p->nodes[cur].kind == PN_MAP || p->nodes[cur].kind == PN_FILTER)) {
        const plan_node *G = &p->nodes[cur];
        if (n == JIT_MAX_STAGES || G->nargs < 1 || G->ref >= p->n_lambdas || !ok[G->ref])
            return false;
        const plan_lambda *l = &p->lambdas[G->ref];
        if (l->nparams != 1 || !scalar_type(p, p->typelist[l->first_ptype]) ||
            !scalar_type(p, l->ret))
            return false;
        rev[n++] = cur;
        cur = p->args[G->first_arg].node;
    }
    if (n == 0 || cur >= p->n_nodes || p->nodes[cur].kind != PN_RANGE) return false;
    for (int i = 0; i < n; i++)
        stage[i] = rev[n - 1 - i];
    *ns = n;
    return true;
}

/* Add the uses of node's value by other nodes (arguments, afters) to uses[]; a
 * graph's result counts as one more. */
static void count_uses(const fl_plan *p, uint32_t node, uint32_t *uses) {
    const plan_node *N = &p->nodes[node];
    for (uint32_t a = 0; a < N->nargs; a++)
        if (p->args[N->first_arg + a].node < p->n_nodes) uses[p->args[N->first_arg + a].node]++;
    for (uint32_t a = 0; a < N->nafter; a++)
        if (p->afters[N->first_after + a] < p->n_nodes) uses[p->afters[N->first_after + a]]++;
    for (uint32_t g = 0; g < p->n_graphs; g++)
        if (p->graphs[g].ret_node == node) uses[node]++;
}

/* Whether node is an inner stage of a longer fused chain (the scheduler's rule,
 * sched.c "fusion": its only use is the list of a map, filter or len), so that no
 * loop ends at it. Only saves compile time: a loop the scheduler does not ask for
 * is never run. */
static bool chain_inner(const fl_plan *p, uint32_t node, const uint32_t *uses) {
    const plan_node *N = &p->nodes[node];
    if (!(N->kind == PN_MAP || N->kind == PN_FILTER) || uses[node] != 1) return false;
    for (uint32_t c = 0; c < p->n_nodes; c++) {
        const plan_node *C = &p->nodes[c];
        if (C->nargs >= 1 && p->args[C->first_arg].node == node)
            return C->kind == PN_MAP || C->kind == PN_FILTER || C->kind == PN_LEN;
    }
    return false;
}

/* Emit "kern<node>": the loop of jit.h's jit_kernel, calling (and, after
 * inlining, containing) each stage's lambda. */
static void gen_kernel(gen *g, uint32_t node, const uint32_t *stage, int ns) {
    const fl_plan *p = g->p;
    LLVMTypeRef kp[6] = {g->i64, g->i64, g->i64p, g->i64p, g->i32p, g->i8p};
    LLVMTypeRef kty = LLVMFunctionType(g->i32, kp, 6, 0);
    char name[32];
    snprintf(name, sizeof name, "kern%u", node);
    LLVMValueRef fn = LLVMAddFunction(g->M, name, kty);
    LLVMValueRef start = LLVMGetParam(fn, 0), n = LLVMGetParam(fn, 1), kept = LLVMGetParam(fn, 2),
                 items = LLVMGetParam(fn, 3), fstage = LLVMGetParam(fn, 4),
                 err = LLVMGetParam(fn, 5);
    LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(g->C, fn, "entry");
    LLVMBasicBlockRef head = LLVMAppendBasicBlockInContext(g->C, fn, "head");
    LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(g->C, fn, "body");
    LLVMBasicBlockRef next = LLVMAppendBasicBlockInContext(g->C, fn, "next");
    LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(g->C, fn, "done");
    LLVMPositionBuilderAtEnd(g->B, entry);
    LLVMValueRef arg = LLVMBuildAlloca(g->B, g->i64, "arg");
    LLVMValueRef res = LLVMBuildAlloca(g->B, g->i64, "res");
    LLVMBuildBr(g->B, head);
    LLVMPositionBuilderAtEnd(g->B, head);
    LLVMValueRef i = LLVMBuildPhi(g->B, g->i64, "i");
    LLVMValueRef count = LLVMBuildPhi(g->B, g->i64, "count");
    LLVMValueRef zero = ci64(g, 0);
    LLVMAddIncoming(i, &zero, &entry, 1);
    LLVMAddIncoming(count, &zero, &entry, 1);
    LLVMBuildCondBr(g->B, LLVMBuildICmp(g->B, LLVMIntSLT, i, n, ""), body, done);
    LLVMPositionBuilderAtEnd(g->B, body);
    LLVMValueRef v = LLVMBuildAdd(g->B, start, i, "");
    LLVMValueRef nexts[JIT_MAX_STAGES + 1];
    LLVMBasicBlockRef nextb[JIT_MAX_STAGES + 1];
    int nn = 0;
    LLVMAttributeRef inl =
        LLVMCreateEnumAttribute(g->C, LLVMGetEnumAttributeKindForName("alwaysinline", 12), 0);
    for (int k = 0; k < ns; k++) {
        const plan_node *G = &p->nodes[stage[k]];
        snprintf(name, sizeof name, "lam%u", G->ref);
        LLVMValueRef lf = LLVMGetNamedFunction(g->M, name);
        LLVMAddAttributeAtIndex(lf, LLVMAttributeFunctionIndex, inl);
        LLVMBuildStore(g->B, v, arg);
        LLVMValueRef a[3] = {arg, res, err};
        LLVMValueRef rc = LLVMBuildCall2(g->B, g->fn_ty, lf, a, 3, "");
        LLVMBasicBlockRef bad = LLVMAppendBasicBlockInContext(g->C, fn, "fail");
        LLVMBasicBlockRef good = LLVMAppendBasicBlockInContext(g->C, fn, "ok");
        LLVMBuildCondBr(g->B, LLVMBuildICmp(g->B, LLVMIntNE, rc, ci32(g, 0), ""), bad, good);
        LLVMPositionBuilderAtEnd(g->B, bad);
        LLVMBuildStore(g->B, ci32(g, (uint32_t)k), fstage);
        LLVMBuildStore(g->B, count, kept);
        LLVMBuildRet(g->B, LLVMConstInt(g->i32, (unsigned long long)-1, 1));
        LLVMPositionBuilderAtEnd(g->B, good);
        LLVMValueRef r = LLVMBuildLoad2(g->B, g->i64, res, "");
        if (G->kind == PN_MAP) {
            v = r;
        } else {
            LLVMBasicBlockRef pass = LLVMAppendBasicBlockInContext(g->C, fn, "pass");
            nexts[nn] = count;
            nextb[nn++] = LLVMGetInsertBlock(g->B);
            LLVMBuildCondBr(g->B, LLVMBuildICmp(g->B, LLVMIntNE, r, zero, ""), pass, next);
            LLVMPositionBuilderAtEnd(g->B, pass);
        }
    }
    /* kept: store it (unless counting only) */
    LLVMBasicBlockRef put = LLVMAppendBasicBlockInContext(g->C, fn, "put");
    LLVMBasicBlockRef after = LLVMAppendBasicBlockInContext(g->C, fn, "counted");
    LLVMBuildCondBr(g->B, LLVMBuildIsNull(g->B, items, ""), after, put);
    LLVMPositionBuilderAtEnd(g->B, put);
    LLVMBuildStore(g->B, v, LLVMBuildInBoundsGEP2(g->B, g->i64, items, &count, 1, ""));
    LLVMBuildBr(g->B, after);
    LLVMPositionBuilderAtEnd(g->B, after);
    nexts[nn] = LLVMBuildAdd(g->B, count, ci64(g, 1), "");
    nextb[nn++] = after;
    LLVMBuildBr(g->B, next);
    LLVMPositionBuilderAtEnd(g->B, next);
    LLVMValueRef c2 = LLVMBuildPhi(g->B, g->i64, "");
    LLVMAddIncoming(c2, nexts, nextb, (unsigned)nn);
    LLVMValueRef i2 = LLVMBuildAdd(g->B, i, ci64(g, 1), "");
    LLVMAddIncoming(i, &i2, &next, 1);
    LLVMAddIncoming(count, &c2, &next, 1);
    LLVMBuildBr(g->B, head);
    LLVMPositionBuilderAtEnd(g->B, done);
    LLVMBuildStore(g->B, count, kept);
    LLVMBuildRet(g->B, ci32(g, 0));
}

static void set_err(char *err, size_t errlen, const char *what, LLVMErrorRef e) {
    char *m = e ? LLVMGetErrorMessage(e) : NULL;
    snprintf(err, errlen, "JIT: %s%s%s", what, m ? ": " : "", m ? m : "");
    if (m) LLVMDisposeErrorMessage(m);
}

static void gen_types(gen *g) {
    LLVMContextRef C = g->C;
    g->i1 = LLVMInt1TypeInContext(C);
    g->i32 = LLVMInt32TypeInContext(C);
    g->i64 = LLVMInt64TypeInContext(C);
    g->f64 = LLVMDoubleTypeInContext(C);
    g->i8p = LLVMPointerType(LLVMInt8TypeInContext(C), 0);
    g->i64p = LLVMPointerType(g->i64, 0);
    g->i32p = LLVMPointerType(g->i32, 0);
    LLVMTypeRef fp[3] = {g->i64p, g->i64p, g->i8p};
    g->fn_ty = LLVMFunctionType(g->i32, fp, 3, 0);
    LLVMTypeRef sp[7] = {g->i8p, g->i32, g->i32, g->i64p, g->i64p, g->i32p, g->i8p};
    g->step_ty = LLVMFunctionType(g->i32, sp, 7, 0);
    g->step = LLVMConstIntToPtr(LLVMConstInt(g->i64, (unsigned long long)(uintptr_t)RT->expr_step, 0),
                                LLVMPointerType(g->step_ty, 0));
    g->plan =
        LLVMConstIntToPtr(LLVMConstInt(g->i64, (unsigned long long)(uintptr_t)g->p, 0), g->i8p);
    LLVMTypeRef pair[2] = {g->i64, g->i1};
    LLVMTypeRef two[2] = {g->i64, g->i64};
    g->ovf_ty = LLVMFunctionType(LLVMStructTypeInContext(C, pair, 2, 0), two, 2, 0);
    const char *names[3] = {"llvm.sadd.with.overflow.i64", "llvm.ssub.with.overflow.i64",
                            "llvm.smul.with.overflow.i64"};
    for (int i = 0; i < 3; i++)
        g->ovf[i] = LLVMAddFunction(g->M, names[i], g->ovf_ty);
}

/* The address of function <prefix><k> (compiling the module on first use), or 0
 * with err set. */
static uint64_t lookup(LLVMOrcLLJITRef jit, const char *prefix, uint32_t k, char *err,
                       size_t errlen) {
    char name[32];
    snprintf(name, sizeof name, "%s%u", prefix, k);
    LLVMOrcJITTargetAddress addr = 0;
    LLVMErrorRef e = LLVMOrcLLJITLookup(jit, &addr, name);
    if (e) {
        set_err(err, errlen, "cannot compile the lambdas", e);
        return 0;
    }
    return addr;
}

/* jit_module_ops.attach: the checks on the plan are jit_attach's (jit_load.c). */
static int module_attach(fl_plan *p, expr_jit **out, char *err, size_t errlen) {
    if (p->n_lambdas > JIT_MAX_LAMBDAS) {
        snprintf(err, errlen, "JIT: more than %d lambdas", JIT_MAX_LAMBDAS);
        return -1;
    }
    expr_jit *j = jcalloc(p, 1, sizeof *j);
    if (j) j->fn = jcalloc(p, p->n_lambdas, sizeof *j->fn);
    if (!j || !j->fn) {
        if (j) jfree(p, j);
        snprintf(err, errlen, "JIT: out of memory");
        return -1;
    }
    j->n = p->n_lambdas;
    double t0 = now_ms();
    LLVMInitializeNativeTarget();
    LLVMInitializeNativeAsmPrinter();
    LLVMOrcLLJITRef jit = NULL;
    LLVMErrorRef e = NULL;
    LLVMOrcLLJITBuilderRef jb = LLVMOrcCreateLLJITBuilder();
    {
        char *triple = LLVMGetDefaultTargetTriple();
        char *cpu = LLVMGetHostCPUName();
        char *feat = LLVMGetHostCPUFeatures();
        LLVMTargetRef target = NULL;
        char *msg = NULL;
        if (LLVMGetTargetFromTriple(triple, &target, &msg) == 0) {
            LLVMTargetMachineRef tm = LLVMCreateTargetMachine(
                target, triple, cpu, feat,
                p->n_lambdas > JIT_FAST_ISEL_ABOVE ? LLVMCodeGenLevelNone : LLVMCodeGenLevelDefault,
                LLVMRelocDefault, LLVMCodeModelJITDefault);
            LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(
                jb, LLVMOrcJITTargetMachineBuilderCreateFromTargetMachine(tm));
        }
        if (msg) LLVMDisposeMessage(msg);
        LLVMDisposeMessage(triple);
        LLVMDisposeMessage(cpu);
        LLVMDisposeMessage(feat);
    }
    e = LLVMOrcCreateLLJIT(&jit, jb);
    j->lljit = jit;
    if (e) {
        set_err(err, errlen, "cannot create the LLJIT", e);
        jfree(p, j->fn);
        jfree(p, j);
        return -1;
    }
    double t1 = now_ms();
    j->stats.create_ms = t1 - t0;

    gen g;
    memset(&g, 0, sizeof g);
    g.p = p;
    LLVMOrcThreadSafeContextRef tsc = LLVMOrcCreateNewThreadSafeContext();
    g.C = LLVMOrcThreadSafeContextGetContext(tsc);
    g.M = LLVMModuleCreateWithNameInContext("flow-lambdas", g.C);
    LLVMSetTarget(g.M, LLVMOrcLLJITGetTripleString(jit));
    LLVMSetDataLayout(g.M, LLVMOrcLLJITGetDataLayoutStr(jit));
    g.B = LLVMCreateBuilderInContext(g.C);
    gen_types(&g);
    bool *ok = jcalloc(p, p->n_lambdas, sizeof *ok);
    uint32_t compiled = 0;
    for (uint32_t lam = 0; ok && lam < p->n_lambdas; lam++) {
        ok[lam] = gen_lambda(&g, lam) == 0;
        compiled += ok[lam];
    }
    j->kern = ok && p->n_nodes ? jcalloc(p, p->n_nodes, sizeof *j->kern) : NULL;
    j->kstages = j->kern ? jcalloc(p, p->n_nodes, 1) : NULL;
    uint32_t *uses = j->kstages ? jcalloc(p, p->n_nodes, sizeof *uses) : NULL;
    for (uint32_t node = 0; uses && node < p->n_nodes; node++)
        count_uses(p, node, uses);
    for (uint32_t node = 0; uses && node < p->n_nodes; node++) {
        uint32_t stage[JIT_MAX_STAGES];
        int ns = 0;
        if (chain_inner(p, node, uses) || !range_chain(p, ok, node, stage, &ns)) continue;
        gen_kernel(&g, node, stage, ns);
        j->kstages[node] = (uint8_t)ns;
        j->stats.kernels++;
    }
    jfree(p, uses);
    j->thunk = ok && p->n_tasks ? jcalloc(p, p->n_tasks, sizeof *j->thunk) : NULL;
    bool *has_thunk = j->thunk ? jcalloc(p, p->n_tasks, sizeof *has_thunk) : NULL;
    for (uint32_t ti = 0; has_thunk && ti < p->n_tasks; ti++) {
        has_thunk[ti] = gen_thunk(&g, ti);
        j->stats.thunks += has_thunk[ti];
    }
    LLVMDisposeBuilder(g.B);
    double t2 = now_ms();
    j->stats.build_ms = t2 - t1;
    j->stats.helper_ops = g.helper_ops;
    char *vmsg = NULL;
    int bad = !ok || LLVMVerifyModule(g.M, LLVMReturnStatusAction, &vmsg);
    if (bad) {
        snprintf(err, errlen, "JIT: invalid IR: %.300s", vmsg ? vmsg : "out of memory");
        if (vmsg) LLVMDisposeMessage(vmsg);
        LLVMDisposeModule(g.M);
        LLVMOrcDisposeThreadSafeContext(tsc);
        LLVMOrcDisposeLLJIT(jit);
        jfree(p, ok);
        jfree(p, has_thunk);
        jfree(p, j->thunk);
        jfree(p, j->kern);
        jfree(p, j->kstages);
        jfree(p, j->fn);
        jfree(p, j);
        return -1;
    }
    if (vmsg) LLVMDisposeMessage(vmsg);
    LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
    e = LLVMRunPasses(g.M, JIT_PASSES, NULL, po);
    LLVMDisposePassBuilderOptions(po);
    if (e) LLVMConsumeError(e); /* unoptimised code is still right */
    double t3 = now_ms();
    j->stats.opt_ms = t3 - t2;
    const char *dump = getenv("FLOW_JIT_DUMP"); /* a file for the optimised IR (debugging) */
    if (dump && *dump) LLVMPrintModuleToFile(g.M, dump, NULL);

    LLVMOrcJITDylibRef jd = LLVMOrcLLJITGetMainJITDylib(jit);
    LLVMOrcDefinitionGeneratorRef gen_proc = NULL;
    e = LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(
        &gen_proc, LLVMOrcLLJITGetGlobalPrefix(jit), NULL, NULL);
    if (!e)
        LLVMOrcJITDylibAddGenerator(jd, gen_proc);
    else
        LLVMConsumeError(e);
    LLVMOrcThreadSafeModuleRef tsm = LLVMOrcCreateNewThreadSafeModule(g.M, tsc);
    LLVMOrcDisposeThreadSafeContext(tsc);
    e = LLVMOrcLLJITAddLLVMIRModule(jit, jd, tsm);
    if (e) {
        set_err(err, errlen, "cannot add the module", e);
        LLVMOrcDisposeThreadSafeModule(tsm);
        goto fail;
    }
    for (uint32_t lam = 0; lam < p->n_lambdas; lam++) {
        if (!ok[lam]) continue;
        uint64_t addr = lookup(jit, "lam", lam, err, errlen);
        if (!addr) goto fail;
        j->fn[lam] = (jit_fn)(uintptr_t)addr;
    }
    for (uint32_t node = 0; j->kstages && node < p->n_nodes; node++) {
        if (!j->kstages[node]) continue;
        uint64_t addr = lookup(jit, "kern", node, err, errlen);
        if (!addr) goto fail;
        j->kern[node] = (jit_kernel)(uintptr_t)addr;
    }
    for (uint32_t ti = 0; has_thunk && ti < p->n_tasks; ti++) {
        if (!has_thunk[ti]) continue;
        uint64_t addr = lookup(jit, "thunk", ti, err, errlen);
        if (!addr) goto fail;
        j->thunk[ti] = (jit_thunk)(uintptr_t)addr;
    }
    jfree(p, has_thunk);
    jfree(p, ok);
    j->stats.codegen_ms = now_ms() - t3;
    j->stats.compiled = compiled;
    *out = j;
    return 0;
fail:
    jfree(p, ok);
    jfree(p, has_thunk);
    jfree(p, j->thunk);
    LLVMOrcDisposeLLJIT(jit);
    jfree(p, j->kern);
    jfree(p, j->kstages);
    jfree(p, j->fn);
    jfree(p, j);
    return -1;
}

static void module_detach(fl_plan *p, expr_jit *j) {
    LLVMErrorRef e = LLVMOrcDisposeLLJIT((LLVMOrcLLJITRef)j->lljit);
    if (e) LLVMConsumeError(e);
    jfree(p, j->thunk);
    jfree(p, j->kern);
    jfree(p, j->kstages);
    jfree(p, j->fn);
    jfree(p, j);
}

/* The one exported symbol (JIT_MODULE_ENTRY). */
__attribute__((visibility("default"))) int flow_jit_module_init(const jit_rt_table *rt,
                                                                jit_module_ops *ops, char *err,
                                                                size_t errlen);
int flow_jit_module_init(const jit_rt_table *rt, jit_module_ops *ops, char *err, size_t errlen) {
    if (!rt || rt->abi != JIT_ABI_VERSION) {
        snprintf(err, errlen, "JIT ABI version %u, but libflow gives version %u (module and libflow are from different builds of flow)",
                 (unsigned)JIT_ABI_VERSION, rt ? (unsigned)rt->abi : 0u);
        return -1;
    }
    if (rt->size != sizeof *rt || rt->plan_size != sizeof(fl_plan) ||
        rt->jit_size != sizeof(struct expr_jit)) {
        snprintf(err, errlen, "the runtime's table does not match this module (module and libflow are from different builds of flow)");
        return -1;
    }
    RT = rt;
    ops->abi = JIT_ABI_VERSION;
    ops->attach = module_attach;
    ops->detach = module_detach;
    return 0;
}
