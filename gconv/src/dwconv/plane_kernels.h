/* dwconv/plane_kernels.h: plane mode's kernels (stride 1, rows narrower than a vector: the
 * plane run as one flat row, wrapped taps masked per lane) and their table by kernel id.
 * Per variant; expects dwconv/simd.h and dwconv/epilogue.h. */

/* --- plane mode kernels --------------------------------------------------------------- */

/* col = (col + step) mod W for lanes already < W, step < W */
#define DW_COL_ADVANCE(col, stepv, wv) ((col) + (stepv) - ((((col) + (stepv)) >= (wv)) & (wv)))

/* NV vectors of MM channels at flat positions f.. (lane columns col[j]); results go to
 * d (channels dplane apart). base[f + kh*DH*W + kw*DW] is the tap's input. KC, DC: the
 * compile-time square kernel size and dilation, 0 = read them from p. */
DW_INLINE void FN(dw_plane_vecs)(const int KC, const int DC, const int MM, const int NV,
                                 const dw_params *p, const T *restrict base,
                                 const T *restrict wt, const T *restrict bias, long f,
                                 const FN(ivec) *col, T *restrict d, long dplane)
{
    const long KH = KC ? KC : p->KH, KW = KC ? KC : p->KW;
    const long DH = DC ? DC : p->DH, DW = DC ? DC : p->DW, W = p->W, PL = p->PL;
    const long KK = KH * KW, rstep = DH * W;
    VEC acc[2][2];
#pragma GCC unroll 2
    for (int m = 0; m < MM; m++) {
        VEC seed = BCAST(bias ? bias[m] : (T)0);
#pragma GCC unroll 2
        for (int j = 0; j < NV; j++) acc[m][j] = seed;
    }
#pragma GCC unroll 8
    for (long kw = 0; kw < KW; kw++) {
        /* lane valid iff its input column col + kw*DW - PL is inside [0, W) */
        const FN(ielem) lo = (FN(ielem))(PL - kw * DW), hi = (FN(ielem))(W + PL - kw * DW);
        FN(ivec) keep[2];
#pragma GCC unroll 2
        for (int j = 0; j < NV; j++) keep[j] = (col[j] >= lo) & (col[j] < hi);
        const T *xp = base + f + kw * DW;
#pragma GCC unroll 8
        for (long kh = 0; kh < KH; kh++) {
            VEC xv[2];
#pragma GCC unroll 2
            for (int j = 0; j < NV; j++) {
                xv[j] = (VEC)((FN(ivec))LOADU(xp + kh * rstep + j * VLEN) & keep[j]);
                DW_IN_REG(xv[j]);
            }
#pragma GCC unroll 2
            for (int m = 0; m < MM; m++) {
                VEC wv = BCAST(wt[m * KK + kh * KW + kw]);
#pragma GCC unroll 2
                for (int j = 0; j < NV; j++) acc[m][j] += wv * xv[j];
            }
        }
    }
#pragma GCC unroll 2
    for (int m = 0; m < MM; m++)
#pragma GCC unroll 2
        for (int j = 0; j < NV; j++) STOREU(d + m * dplane + j * VLEN, acc[m][j]);
}

/* Flat positions [f0, f1) of MM channels (y: channel 0 at position 0, channels plane
 * apart). col0/col_tail: lane columns of the vectors at f0 and f1 - VLEN. */
DW_INLINE void FN(dw_plane_run)(const int KC, const int DC, const int MM,
                                const dw_params *p, const T *base, const T *wt,
                                const T *bias, const T *res, T *y, long plane, long f0,
                                long f1, FN(ivec) col0, FN(ivec) col_tail)
{
    const FN(ivec) wv = (FN(ivec)){0} + (FN(ielem))p->W;
    const FN(ivec) stepv = (FN(ivec)){0} + (FN(ielem))(VLEN % p->W);
    FN(ivec) col[2];
    col[0] = col0;
    long f = f0;
    for (; f + 2 * VLEN <= f1; f += 2 * VLEN) {
        col[1] = DW_COL_ADVANCE(col[0], stepv, wv);
        FN(dw_plane_vecs)(KC, DC, MM, 2, p, base, wt, bias, f, col, y + f, plane);
        col[0] = DW_COL_ADVANCE(col[1], stepv, wv);
    }
    for (; f + VLEN <= f1; f += VLEN) {
        FN(dw_plane_vecs)(KC, DC, MM, 1, p, base, wt, bias, f, col, y + f, plane);
        col[0] = DW_COL_ADVANCE(col[0], stepv, wv);
    }
    if (f < f1) {
        if (f1 - f0 >= VLEN) {          /* last vector pulled back to end at f1 */
            col[0] = col_tail;
            FN(dw_plane_vecs)(KC, DC, MM, 1, p, base, wt, bias, f1 - VLEN, col,
                              y + f1 - VLEN, plane);
        } else {
            T tmp[2 * VLEN];
            FN(dw_plane_vecs)(KC, DC, MM, 1, p, base, wt, bias, f0, col, tmp, VLEN);
            for (int m = 0; m < MM; m++)
                for (long q = 0; q < f1 - f0; q++) y[m * plane + f0 + q] = tmp[m * VLEN + q];
        }
    }
    if (res != NULL || p->act != GCONV_ACT_NONE)
        for (int m = 0; m < MM; m++)
            FN(dw_epilogue)(p, y + m * plane + f0, res ? res + m * plane + f0 : NULL, f1 - f0);
}

typedef void (*FN(dw_plane_fn))(const dw_params *, const T *, const T *, const T *,
                                const T *, T *, long, long, long, FN(ivec), FN(ivec));

#define DW_PLANE_KERNEL(name, K_, D_, MM_)                                                  \
    static void FN(name)(const dw_params *p, const T *base, const T *wt, const T *bias,  \
                         const T *res, T *y, long plane, long f0, long f1, FN(ivec) c0,     \
                         FN(ivec) ct)                                                       \
    {                                                                                       \
        FN(dw_plane_run)(K_, D_, MM_, p, base, wt, bias, res, y, plane, f0, f1, c0, ct);    \
    }
DW_PLANE_KERNEL(dw_plane_gen_m1, 0, 0, 1)
DW_PLANE_KERNEL(dw_plane_gen_m2, 0, 0, 2)
DW_PLANE_KERNEL(dw_plane_k3d1_m1, 3, 1, 1)
DW_PLANE_KERNEL(dw_plane_k3d1_m2, 3, 1, 2)
DW_PLANE_KERNEL(dw_plane_k5d1_m1, 5, 1, 1)
DW_PLANE_KERNEL(dw_plane_k7d1_m1, 7, 1, 1)

/* [kernel id][MM-1]; plane mode is stride 1 only, so the stride-2 ids never get here */
static const FN(dw_plane_fn) FN(dw_plane_kernels)[DW_N_KERNELS][2] = {
    {FN(dw_plane_gen_m1), FN(dw_plane_gen_m2)},
    {DW_SPEC(dw_plane_k3d1_m1, dw_plane_gen_m1), DW_SPEC(dw_plane_k3d1_m2, dw_plane_gen_m2)},
    {FN(dw_plane_gen_m1), FN(dw_plane_gen_m2)},
    {FN(dw_plane_gen_m1), FN(dw_plane_gen_m2)},
    {DW_SPEC32(dw_plane_k5d1_m1, dw_plane_gen_m1), NULL},
    {FN(dw_plane_gen_m1), FN(dw_plane_gen_m2)},
    {DW_SPEC32(dw_plane_k7d1_m1, dw_plane_gen_m1), NULL},
    {FN(dw_plane_gen_m1), FN(dw_plane_gen_m2)},
};
