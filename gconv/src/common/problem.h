/* common/problem.h: the problem every kind's parameters begin with: one grouped 2-D
 * convolution and its fused epilogue, filled once by _kernels.pyx from the ConvProblem.
 * Once, not per variant.
 *
 * Vocabulary (one short set, used in every kernel):
 *   N batch, G groups, C_in/C_out total channels, M = C_out/G, CG = C_in/G,
 *   H,W input size, OH,OW output size, KH,KW kernel, SH,SW stride, DH,DW dilation (1-based,
 *   as torch), PT,PL top/left zero padding (bottom/right follow from OH/OW),
 *   K = CG*KH*KW reduction length, P = OH*OW output pixels per channel.
 *
 * A kind's parameter struct (gemm/params.h, dwconv/params.h) starts with GCONV_PROBLEM_HEAD
 * and then holds its own blocking: its code reads the problem's fields by name (p->W), and
 * code shared by every kind takes the problem as a whole (GCONV_PB(p), the same bytes).
 */
#ifndef GCONV_COMMON_PROBLEM_H
#define GCONV_COMMON_PROBLEM_H

enum gconv_activation {
    GCONV_ACT_NONE = 0,
    GCONV_ACT_RELU = 1,
    GCONV_ACT_RELU6 = 2,
    GCONV_ACT_LEAKY_RELU = 3,   /* x > 0 ? x : alpha * x (torch: NaN stays NaN) */
    GCONV_ACT_CLAMP = 4,        /* min(max(x, lo), hi) */
    GCONV_ACT_SIGMOID = 5,
    GCONV_ACT_TANH = 6,
    GCONV_ACT_SILU = 7,         /* x * sigmoid(x) */
    GCONV_ACT_HARDSWISH = 8,    /* x * relu6(x + 3) / 6 */
};

#define GCONV_PROBLEM_FIELDS                                                               \
    long N, G, C_in, H, W, C_out, KH, KW, SH, SW, DH, DW, PT, PL, OH, OW;                  \
    long M, CG, K, P;                                                                      \
    /* epilogue: out = act(conv + bias + residual) */                                      \
    int act;                                                                               \
    double alpha, lo, hi;

typedef struct { GCONV_PROBLEM_FIELDS } gconv_problem;

/* The head of every kind's parameters: the fields by name and, in the same bytes, the
 * whole problem as p->pb (a union of two structs with the same members). */
#define GCONV_PROBLEM_HEAD                                                                 \
    union {                                                                                \
        gconv_problem pb;                                                                  \
        struct { GCONV_PROBLEM_FIELDS };                                                   \
    };

/* The problem of a kind's parameters p, for code every kind shares. (A pointer cast rather
 * than &p->pb: the same address, and GCC then inlines epilogue_block into the tasks as it
 * did when every kind had one struct.) */
#define GCONV_PB(p) ((const gconv_problem *)(p))

#endif
