/*
 * expr_ops.h — opcodes of the plan's expression code (lambdas, sh commands).
 *
 * A stack machine: each instruction pops its operands and pushes its result.
 * The code is typed: the compiler picks the variant for the operand types
 * (ADD_I vs ADD_F vs CONCAT), so neither the interpreter nor the JIT
 * dispatches on run-time types. Operands `a` and `b` of plan_instr, by opcode,
 * are written beside each one. One list; the enum, names, the interpreter's
 * dispatch and the JIT all come from it.
 *
 * Owned by the expression module (compiler/expr_check.c lowers, runtime/expr_interp.c runs).
 */
#ifndef FLOW_EXPR_OPS_H
#define FLOW_EXPR_OPS_H

/* X(name, pops, pushes, doc) — pops -1: given by operand a */
#define FLOW_EXPR_OPS(X)                                                                       \
    X(CONST, 0, 1, "push constant value a")                                                    \
    X(PARAM, 0, 1, "push lambda parameter a")                                                  \
    X(LOCAL, 0, 1, "push local slot a")                                                        \
    X(SETLOCAL, 1, 0, "pop into local slot a")                                                 \
    X(ADD_I, 2, 1, "int + int (overflow is a run-time error)")                                \
    X(SUB_I, 2, 1, "int - int")                                                                \
    X(MUL_I, 2, 1, "int * int")                                                                \
    X(DIV_I, 2, 1, "int / int, truncating; division by zero is a run-time error")            \
    X(MOD_I, 2, 1, "int % int; by zero is a run-time error")                                  \
    X(NEG_I, 1, 1, "- int")                                                                    \
    X(ADD_F, 2, 1, "float + float")                                                            \
    X(SUB_F, 2, 1, "float - float")                                                            \
    X(MUL_F, 2, 1, "float * float")                                                            \
    X(DIV_F, 2, 1, "float / float (IEEE)")                                                     \
    X(MOD_F, 2, 1, "fmod")                                                                     \
    X(NEG_F, 1, 1, "- float")                                                                  \
    X(I2F, 1, 1, "int -> float")                                                               \
    X(CONCAT, 2, 1, "str + str")                                                               \
    X(EQ, 2, 1, "equality of two values of the same type (b: type kind)")                     \
    X(NE, 2, 1, "inequality")                                                                  \
    X(LT_I, 2, 1, "int <")                                                                     \
    X(LE_I, 2, 1, "int <=")                                                                    \
    X(LT_F, 2, 1, "float <")                                                                   \
    X(LE_F, 2, 1, "float <=")                                                                  \
    X(LT_S, 2, 1, "str < (bytewise)")                                                          \
    X(LE_S, 2, 1, "str <=")                                                                    \
    X(NOT, 1, 1, "not bool")                                                                   \
    X(JUMP, 0, 0, "jump to instruction a (relative to the lambda's first)")                   \
    X(JUMP_IF_FALSE, 1, 0, "pop bool; jump to a when false")                                  \
    X(JUMP_IF_TRUE, 1, 0, "pop bool; jump to a when true")                                    \
    X(FIELD, 1, 1, "record -> its field a")                                                    \
    X(MAKE_RECORD, -1, 1, "pop a values -> record of type b (fields in order)")               \
    X(MAKE_LIST, -1, 1, "pop a values -> list of type b")                                     \
    X(INDEX, 2, 1, "list[int]; out of range is a run-time error")                             \
    X(INTERP, -1, 1, "pop a parts (already str) -> their concatenation")                      \
    X(TOSTR, 1, 1, "value of type kind b -> str (for interpolation and str())")               \
    X(SHQUOTE, 1, 1, "str -> shell-quoted str (sh command interpolation)")                    \
    X(CALL, -1, 1, "built-in function b with a arguments (FLOW_EXPR_BUILTINS)")               \
    X(RET, 1, 0, "return the top of the stack")

typedef enum flow_expr_op {
#define X(name, pops, pushes, doc) EOP_##name,
    FLOW_EXPR_OPS(X)
#undef X
        EOP__COUNT
} flow_expr_op;

/* Built-ins of language.md §8 callable from lambdas: X(name, doc) */
#define FLOW_EXPR_BUILTINS(X)                                                                  \
    X(LEN, "len(str|list) -> int") X(BASENAME, "basename(str|path) -> str")                   \
        X(DIRNAME, "dirname(str|path) -> str") X(STEM, "stem(path) -> str")                    \
            X(EXT, "ext(path) -> str") X(JOIN, "join(a, b) -> path / join([str], sep) -> str") \
                X(STR, "str(x) -> str") X(INT, "int(x) -> int") X(FLOAT, "float(x) -> float")  \
                    X(UPPER, "upper(str)") X(LOWER, "lower(str)")                              \
                        X(REPLACE, "replace(s, old, new)") X(CONTAINS, "contains(s, sub)")     \
                            X(STARTS_WITH, "starts_with(s, p)") X(ENDS_WITH, "ends_with(s, p)")

typedef enum flow_expr_builtin {
#define X(name, doc) EB_##name,
    FLOW_EXPR_BUILTINS(X)
#undef X
        EB__COUNT
} flow_expr_builtin;

#endif
