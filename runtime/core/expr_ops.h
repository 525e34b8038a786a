/*
 * expr_ops.h — opcodes of the plan's expression code (lambdas, sh commands).
 *
 * A stack machine: each instruction pops its operands and pushes its result.
 * The code is typed: the compiler picks the variant for the operand types
 * (ADD_I vs ADD_F vs CONCAT, EQ_S vs EQ_V, LEN_S vs LEN_L), so neither the
 * interpreter nor the JIT dispatches on run-time types. Operands `a` and `b` of
 * plan_instr, by opcode, are written beside each one. Every stack slot owns its
 * value: an instruction releases what it pops and pushes a new reference.
 *
 * Conventions for operands:
 *   S   = a str-like type index (str, path, dir, date or time): the type of a string the
 *         instruction creates, also used to release the strings it pops
 *   L   = a list type index; R = a record type index
 * Full semantics (overflow, ranges, formats): docs/expressions.md.
 *
 * One list; the enum, names, the interpreter's dispatch and the JIT all come from it.
 * Owned by the expression module (compiler/expr.c lowers, runtime/core/expr_interp.c runs).
 */
#ifndef FLOW_EXPR_OPS_H
#define FLOW_EXPR_OPS_H

/* X(name, pops, pushes, doc) — pops -1: given by an operand (see doc) */
#define FLOW_EXPR_OPS(X)                                                                       \
    /* ---- operands ---- */                                                                   \
    X(IMM, 0, 1, "push the integer a (small int and bool constants)")                         \
    X(CONST_I, 0, 1, "push int/duration constant value a")                                    \
    X(CONST_F, 0, 1, "push float constant value a")                                           \
    X(CONST_S, 0, 1, "push a new string: str-like constant value a")                          \
    X(CONST_V, 0, 1, "push list/record constant value a")                                     \
    X(PARAM, 0, 1, "push scalar parameter a")                                                 \
    X(PARAM_REF, 0, 1, "push heap parameter a (a new reference)")                             \
    /* ---- arithmetic ---- */                                                                 \
    X(ADD_I, 2, 1, "int + int (overflow is a run-time error)")                                \
    X(SUB_I, 2, 1, "int - int (overflow is a run-time error)")                                \
    X(MUL_I, 2, 1, "int * int (overflow is a run-time error)")                                \
    X(DIV_I, 2, 1, "int / int, truncating; by zero or INT64_MIN / -1 is a run-time error")    \
    X(MOD_I, 2, 1, "int % int, sign of the dividend; by zero is a run-time error")            \
    X(NEG_I, 1, 1, "- int (overflow is a run-time error)")                                     \
    X(ADD_F, 2, 1, "float + float")                                                            \
    X(SUB_F, 2, 1, "float - float")                                                            \
    X(MUL_F, 2, 1, "float * float")                                                            \
    X(DIV_F, 2, 1, "float / float (IEEE: by zero gives inf or nan)")                           \
    X(MOD_F, 2, 1, "fmod(float, float)")                                                       \
    X(NEG_F, 1, 1, "- float")                                                                  \
    X(I2F, 0, 0, "int -> float, in place, a slots below the top (0: the top)")                \
    /* ---- comparison (push bool) ---- */                                                     \
    X(EQ_I, 2, 1, "int/bool/duration ==") X(NE_I, 2, 1, "int/bool/duration !=")              \
    X(LT_I, 2, 1, "int <") X(LE_I, 2, 1, "int <=") X(GT_I, 2, 1, "int >")                     \
    X(GE_I, 2, 1, "int >=")                                                                    \
    X(EQ_F, 2, 1, "float == (IEEE)") X(NE_F, 2, 1, "float !=") X(LT_F, 2, 1, "float <")       \
    X(LE_F, 2, 1, "float <=") X(GT_F, 2, 1, "float >") X(GE_F, 2, 1, "float >=")             \
    X(EQ_S, 2, 1, "str == (bytes; a: S)") X(NE_S, 2, 1, "str != (a: S)")                     \
    X(LT_S, 2, 1, "str < (bytewise; a: S)") X(LE_S, 2, 1, "str <= (a: S)")                   \
    X(GT_S, 2, 1, "str > (a: S)") X(GE_S, 2, 1, "str >= (a: S)")                             \
    X(EQ_V, 2, 1, "deep == of two lists/records of type a")                                   \
    X(NE_V, 2, 1, "deep != of two lists/records of type a")                                   \
    X(NOT, 1, 1, "not bool")                                                                   \
    /* ---- control ---- */                                                                    \
    X(JUMP, 0, 0, "jump to instruction a (relative to the lambda's first)")                   \
    X(JUMP_IF_FALSE, 1, 0, "pop bool; jump to a when false")                                  \
    X(JUMP_IF_TRUE, 1, 0, "pop bool; jump to a when true")                                    \
    X(RET, 1, 0, "return the top of the stack (the only value left)")                          \
    /* ---- records and lists ---- */                                                          \
    X(FIELD, 1, 1, "record of type R=a -> its field number b")                                \
    X(MAKE_RECORD, -1, 1, "pop the n fields of record type R=a (in order) -> record")          \
    X(MAKE_LIST, -1, 1, "pop b elements -> list of type L=a")                                 \
    X(INDEX, 2, 1, "list of type L=a [int]; out of range is a run-time error")                \
    X(LEN_L, 1, 1, "len(list of type L=a) -> int")                                            \
    X(JOIN_L, 2, 1, "join(list of type L=a of str-like, sep str) -> str")                     \
    /* ---- strings (a: S) ---- */                                                             \
    X(CONCAT, 2, 1, "str + str -> str")                                                        \
    X(INTERP, -1, 1, "pop b parts (already str) -> their concatenation")                      \
    X(TOSTR_I, 1, 1, "int -> str (decimal)")                                                   \
    X(TOSTR_F, 1, 1, "float -> str (shortest round-trip, see docs)")                           \
    X(TOSTR_B, 1, 1, "bool -> \"true\" / \"false\"")                                           \
    X(SHQUOTE, 1, 1, "str -> one POSIX shell word in single quotes")                           \
    X(SHQUOTE_L, 1, 1, "list of type L=a of str-like -> its elements as quoted words, spaced")\
    X(LEN_S, 1, 1, "len(str) -> int (bytes)")                                                  \
    X(BASENAME, 1, 1, "basename(s): last component (pathlib name)")                            \
    X(DIRNAME, 1, 1, "dirname(s): all but the last component (pathlib parent)")                \
    X(STEM, 1, 1, "stem(s): basename without its last extension")                              \
    X(EXT, 1, 1, "ext(s): last extension with its dot, or \"\"")                              \
    X(JOIN_P, 2, 1, "join(a, b) -> path: a/b, or b when absolute (a: the path type)")         \
    X(UPPER, 1, 1, "upper(s) (ASCII)") X(LOWER, 1, 1, "lower(s) (ASCII)")                      \
    X(REPLACE, 3, 1, "replace(s, old, new): every occurrence")                                \
    X(CONTAINS, 2, 1, "contains(s, sub) -> bool")                                              \
    X(STARTS_WITH, 2, 1, "starts_with(s, prefix) -> bool")                                     \
    X(ENDS_WITH, 2, 1, "ends_with(s, suffix) -> bool")                                         \
    X(INT_S, 1, 1, "int(str): decimal, surrounding blanks allowed; else a run-time error")    \
    X(INT_F, 1, 1, "int(float): truncates; nan or out of range is a run-time error")          \
    X(FLOAT_S, 1, 1, "float(str); not a number is a run-time error")                           \
    X(DAY_T, 1, 1, "date(time) -> its UTC day, the first 10 bytes (a: the date type)")

typedef enum fl_expr_op {
#define X(name, pops, pushes, doc) EOP_##name,
    FLOW_EXPR_OPS(X)
#undef X
        EOP__COUNT
} fl_expr_op;

/* Built-ins of language.md §8 callable from lambdas, as written in source:
 * X(NAME, "name", number of arguments, doc). The compiler lowers each call to the
 * opcode(s) for its argument types. */
#define FLOW_EXPR_BUILTINS(X)                                                                  \
    X(LEN, "len", 1, "len(str | [T]) -> int")                                                  \
    X(BASENAME, "basename", 1, "basename(str-like) -> str")                                    \
    X(DIRNAME, "dirname", 1, "dirname(str-like) -> str")                                       \
    X(STEM, "stem", 1, "stem(str-like) -> str")                                                \
    X(EXT, "ext", 1, "ext(str-like) -> str")                                                   \
    X(JOIN, "join", 2, "join(str-like, str-like) -> path | join([str-like], str) -> str")      \
    X(STR, "str", 1, "str(int | float | bool | str-like) -> str")                              \
    X(INT, "int", 1, "int(int | float | bool | str-like) -> int")                              \
    X(FLOAT, "float", 1, "float(int | float | str-like) -> float")                             \
    X(UPPER, "upper", 1, "upper(str-like) -> str")                                             \
    X(LOWER, "lower", 1, "lower(str-like) -> str")                                             \
    X(REPLACE, "replace", 3, "replace(s, old, new) -> str")                                    \
    X(CONTAINS, "contains", 2, "contains(s, sub) -> bool")                                     \
    X(STARTS_WITH, "starts_with", 2, "starts_with(s, prefix) -> bool")                         \
    X(ENDS_WITH, "ends_with", 2, "ends_with(s, suffix) -> bool")                               \
    X(DATE, "date", 1, "date(time) -> date (the UTC day)")

typedef enum fl_expr_builtin {
#define X(name, text, nargs, doc) EB_##name,
    FLOW_EXPR_BUILTINS(X)
#undef X
        EB__COUNT
} fl_expr_builtin;

#endif
