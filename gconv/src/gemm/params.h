/* gemm/params.h: the GEMM kind's parameters: the problem (common/problem.h), then the
 * blocking gemm_plan (gemm/planner.h) fills. Once, not per variant. */
#ifndef GCONV_GEMM_PARAMS_H
#define GCONV_GEMM_PARAMS_H

typedef struct {
    GCONV_PROBLEM_HEAD
    /* blocking, filled by the planner */
    int MR, NV, vlen;          /* micro-tile: MR output channels x NV vectors of pixels
                                  (channel-vector tiles: MR pixels x NV vectors of channels) */
    int direct_b;              /* 1: B read straight from the input (1x1, stride 1, no pad) */
    int pointwise;             /* set from the plan flags before planning: the Pointwise
                                  implementation runs this problem, B may be read in place */
    int channel_vectors;       /* phase planes, channel-vector tiles (MR pixels x NV vectors
                                  of output channels) instead of pixel-vector tiles */
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
    /* what decided the path, for the report (gemm/report.h); no task reads them */
    double cv_cost, cv_bar;    /* phase planes: the cheapest channel-vector tiles' cost and
                                  the bar it had to go below (pixel-vector tiles' cost) */
    int cv_mp, cv_nv;          /* those channel-vector tiles */
    double pw_cv_cost, pw_cv_bar;  /* pointwise: the same through a plane copy, against 0.9
                                  x B in place (maybe_channel_vectors' margin) */
    int pw_cv_mp, pw_cv_nv;
} gemm_params;

#endif
