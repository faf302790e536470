/* common/params.h: the problem and blocking description shared by the Cython layer and the
 * C kernels. The Python façade fills the problem part once (from its ConvProblem); the
 * kind's planner (gemm_plan in gemm/planner.h, dw_plan in dwconv/planner.h) fills the
 * blocking part.
 *
 * Vocabulary (one short set, used in every kernel):
 *   N batch, G groups, C_in/C_out total channels, M = C_out/G, CG = C_in/G,
 *   H,W input size, OH,OW output size, KH,KW kernel, SH,SW stride, DH,DW dilation (1-based,
 *   as torch), PT,PL top/left zero padding (bottom/right follow from OH/OW),
 *   K = CG*KH*KW reduction length, P = OH*OW output pixels per channel.
 */
#ifndef GCONV_COMMON_PARAMS_H
#define GCONV_COMMON_PARAMS_H

enum gconv_activation {
    GCONV_ACT_NONE = 0,
    GCONV_ACT_RELU = 1,
    GCONV_ACT_RELU6 = 2,
    GCONV_ACT_LEAKY_RELU = 3,   /* x >= 0 ? x : alpha * x */
    GCONV_ACT_CLAMP = 4,        /* min(max(x, lo), hi) */
    GCONV_ACT_SIGMOID = 5,
    GCONV_ACT_TANH = 6,
    GCONV_ACT_SILU = 7,         /* x * sigmoid(x) */
    GCONV_ACT_HARDSWISH = 8,    /* x * relu6(x + 3) / 6 */
};

typedef struct {
    /* problem */
    long N, G, C_in, H, W, C_out, KH, KW, SH, SW, DH, DW, PT, PL, OH, OW;
    long M, CG, K, P;
    /* epilogue: out = act(conv + bias + residual) */
    int act;
    double alpha, lo, hi;
    /* blocking, filled by the planner */
    int MR, NV, vlen;          /* micro-tile: MR output channels x NV vectors of pixels */
    int direct_b;              /* 1: B read straight from the input (1x1, stride 1, no pad) */
    int forbid_direct;         /* set by the caller before planning: always use phase planes */
    int oc_vec;                /* phase planes, channel-vector tiles (MR pixels x NV vectors of
                                  output channels) instead of pixel-vector tiles */
    int direct_out;            /* phase planes, pixel-vector tiles written straight into the
                                  output through masked stores (no staging tile, no copy) */
    long panel_w;              /* output channels per packed weight panel: MR, or NV*VLEN */
    long KC;                   /* reduction block */
    long NC;                   /* pixels per task tile (multiple of NR = NV*VLEN) */
    long n_ptiles;             /* tiles along P */
    long MB;                   /* output channels per task (multiple of MR) */
    long n_mblocks;            /* tasks along M */
    long n_panels;             /* ceil(M / MR): packed weight panels per group */
    long n_tasks;              /* N * G * n_mblocks * n_ptiles */
    long PW, PROWS, QPAD;      /* phase-plane path: wide row length, plane rows, staging row */
    int flat_planes;           /* phase planes filled as flat runs (fill_flat_planes), not
                                  row by row */
    long scratch_elems;        /* per-thread scratch, in elements */
    int zero_scratch;          /* 1: zero each thread's scratch once, before its first task */
    long pf_stride;            /* phase planes: tasks from one task to the same thread's next
                                  (1 within a task_chunk, else ~n_threads under the dynamic
                                  schedule): what to prefetch; 0: no prefetch (the call's
                                  data fits in cache) */
    const void *ukr, *tail_ukr;  /* direct_b: the plan ISA's MR x NV micro-kernel and the
                                  narrower one for the last pixel tile's ragged chunk (found
                                  once: a table scan per task was a fifth of a tiny call) */
    int tail_nv;               /* direct_b: vectors of tail_ukr */
    long task_chunk;           /* consecutive tasks a thread takes at a time (the dynamic
                                  schedule's chunk): 1, or more when the call streams */
} gconv_params;

#endif
