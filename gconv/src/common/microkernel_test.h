/* common/microkernel_test.h: test-only. Every kind lists its micro-kernels and runs one of
 * them alone, or its plain C twin, on given arrays, through its registry row's `tests`
 * (_kernels.run_microkernel, tests/test_microkernels.py). No plan or task uses this. Once,
 * not per variant.
 *
 * One call frame serves every family; each family says which fields it reads and what its
 * integers mean (gemm/microkernel_test.h, dwconv/microkernel_test.h). The kernel trusts the
 * frame as it trusts its planner: the caller sizes the arrays as the family documents.
 */
#ifndef GCONV_COMMON_MICROKERNEL_TEST_H
#define GCONV_COMMON_MICROKERNEL_TEST_H

typedef struct {
    const char *family;         /* "gemm.ukr", "gemm.ukrc", "dw.row", "dw.direct", ... */
    char name[48];              /* the kernel within its family: "12x2", "3x3 m2", ... */
    int shape[4];               /* its compile-time parameters (family-defined) */
} gconv_ukr_info;

typedef struct {
    const void *w;              /* weights */
    const void *x;              /* input */
    const long *offs;           /* offsets into x, or NULL */
    const void *bias;           /* or NULL */
    const void *res;            /* residual, laid out like out, or NULL */
    void *out;                  /* output */
    long n[12];                 /* integer arguments (family-defined) */
    double d[3];                /* the epilogue's alpha, lo, hi */
} gconv_ukr_call;

typedef struct {
    /* micro-kernel `index` of the kind (this variant): 1 and *info filled, or 0 past the
     * end of the list */
    int (*list)(int index, gconv_ukr_info *info);
    /* run micro-kernel `index` (twin != 0: its plain twin) on the frame's arrays: 0, or -1
     * when the frame does not fit the kernel (it then writes nothing) */
    int (*run)(int index, int twin, const gconv_ukr_call *call);
} gconv_ukr_tests;

#endif
