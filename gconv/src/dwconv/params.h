/* dwconv/params.h: the depthwise kind's parameters (dw_params), modes and kernel ids (once,
 * not per variant). Row mode has an unrolled kernel per (square kernel size, stride,
 * dilation) below and a generic one (id 0) for everything else; the list makes the DW_K_*
 * enum and the table _kernels.pyx exports as DW_KERNELS (tests read the ids from there).
 *
 *   X(ID, kernel size, stride, dilation, name)
 */
#ifndef GCONV_DWCONV_PARAMS_H
#define GCONV_DWCONV_PARAMS_H

#define GCONV_DW_KERNEL_LIST(X)                                                            \
    X(GENERIC, 0, 0, 0, "generic")                                                         \
    X(3S1, 3, 1, 1, "3x3")                                                                 \
    X(3S2, 3, 2, 1, "3x3 stride 2")                                                        \
    X(3S1D2, 3, 1, 2, "3x3 dilation 2")                                                    \
    X(5S1, 5, 1, 1, "5x5")                                                                 \
    X(5S2, 5, 2, 1, "5x5 stride 2")                                                        \
    X(7S1, 7, 1, 1, "7x7")                                                                 \
    X(7S2, 7, 2, 1, "7x7 stride 2")

#define GCONV_DW_K_ENUM(id, k, s, d, name) DW_K_##id,
enum { GCONV_DW_KERNEL_LIST(GCONV_DW_K_ENUM) DW_N_KERNELS };
#undef GCONV_DW_K_ENUM

typedef struct { const char *name; int k, stride, dilation; } gconv_dw_kernel_info;
#define GCONV_DW_K_INFO(id, k, s, d, name) {name, k, s, d},
static const gconv_dw_kernel_info gconv_dw_kernels[DW_N_KERNELS] = {
    GCONV_DW_KERNEL_LIST(GCONV_DW_K_INFO)
};
#undef GCONV_DW_K_INFO

/* The three modes (see dwconv/dwconv.h): the planner picks one per problem. */
enum { DW_MODE_ROW = 0, DW_MODE_PLANE = 1, DW_MODE_LANES = 2, DW_MODE_LANES_ANY = 3 };

/* Why lanes mode does not take a problem (dw_lanes_declined), for the report. */
enum {
    DW_LANES_FIT = 0,
    DW_LANES_NO_ISA,           /* the baseline ISA has no unrolled kernels */
    DW_LANES_SHAPE,            /* not 3x3, stride 1, "same" padding, one channel per group */
    DW_LANES_SMALL_PLANE,      /* fewer pixels than a vector */
    DW_LANES_LARGE_PLANE,      /* rows or columns over 16 */
    DW_LANES_FEW_CHANNELS,     /* fewer channels than a vector */
};

/* The depthwise kind's parameters: the problem (common/problem.h), then the blocking
 * dw_plan (dwconv/planner.h) fills. A task is (image, block of groups, block of output
 * rows); lanes mode takes whole planes (one row block) and groups in blocks of VLEN. */
typedef struct {
    GCONV_PROBLEM_HEAD
    int vlen;                  /* lanes per vector of the plan's ISA */
    int mode;                  /* DW_MODE_ROW, DW_MODE_PLANE or DW_MODE_LANES */
    int kernel_id;             /* DW_K_*: the row or plane kernel (lanes mode: 3x3 only) */
    int strip_channels;        /* output channels per strip: 2 (a depth multiplier's
                                  channels in pairs) when the kernel has a pair variant, 1 */
    long sub_rows;             /* row mode: output rows per sub-block (their input rows are
                                  copied into scratch at once); plane mode: OH */
    long rows_per_task;        /* output rows per task */
    long n_row_blocks;         /* row blocks per (image, group block) */
    long groups_per_task;      /* groups (channels) per task; lanes mode: a multiple of VLEN */
    long n_group_blocks;       /* group blocks per image */
    long n_tasks;              /* N * n_group_blocks * n_row_blocks */
    long task_chunk;           /* consecutive tasks a thread takes at a time */
    long scratch_elems;        /* per-thread scratch, in elements */
    int zero_scratch;          /* 1: zero each thread's scratch once, before its first task */
    int direct_rows;           /* row mode: rows whose input rows all exist read the input in
                                  place, the padding columns masked (dw_direct_ok) */
    /* what decided the path, for the report (dwconv/report.h); no task reads them */
    int unrolled;              /* the kernel that runs has its taps compiled in */
    int lanes_declined;        /* DW_LANES_*: why lanes mode does not take the problem */
} dw_params;

/* Input rows that `rows` consecutive output rows read (the kernel's extent included). */
static inline long dw_in_rows(const dw_params *p, long rows)
{
    return (rows - 1) * p->SH + (p->KH - 1) * p->DH + 1;
}

#endif
