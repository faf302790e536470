/* common/kind.h: what a kind (a family of kernels: GEMM, depthwise, ...) provides for each
 * (dtype, ISA) variant: one row of the registry (registry.h). The entry points take the
 * kind's parameters and the arrays as void pointers, so that one row type serves every
 * kind and dtype; each kind casts them to its own types. Once, not per variant. */
#ifndef GCONV_COMMON_KIND_H
#define GCONV_COMMON_KIND_H

/* one task of a plan: its block of y = act(conv(x, w) + bias + residual); bias and
 * residual may be NULL; scratch: the plan's per-thread scratch */
typedef void (*gconv_task_fn)(const void *params, const void *x, const void *w,
                              const void *bias, const void *residual, void *y,
                              long task_index, void *scratch);

typedef struct {
    const char *name;       /* the kind's name, as Python sees it (_kernels.KINDS) */
    /* fill the blocking of params (the caller filled its problem) for n_threads threads */
    void (*plan)(void *params, int n_threads);
    /* elements of the kernel's weight layout, and in *tmp_elems of the buffer packing
     * needs; NULL (and pack_weights NULL): the kernel reads the weights as given,
     * (C_out, C_in/G, KH, KW) C-contiguous */
    long (*weight_elems)(const void *params, long *tmp_elems);
    void (*pack_weights)(const void *params, const void *w, void *packed, void *tmp);
    gconv_task_fn task;
} gconv_kind;

#endif
