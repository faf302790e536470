/* dwconv/row_kernels.h: row mode's kernels: a strip over a whole output row
 * (dw_row_strip), `rows` rows with their epilogue (dw_rows), the compiled kernels
 * (DW_KERNEL) and their tables by kernel id. Per variant; expects dwconv/row_strip.h and
 * dwconv/epilogue.h. */

/* The generic kernel's tap tables for dw_args, computed once per task into the end of its
 * scratch (the strips would otherwise divide by the runtime stride and dilation per tap:
 * two divisions per tap were most of the old generic kernel's time): coff, KW entries;
 * khmap, dw_in_rows(p, DW_RB) x DW_RB. */
static long FN(dw_generic_table_elems)(const dw_params *p)
{
    const long bytes = p->KW * (long)sizeof(long) + dw_in_rows(p, DW_RB) * DW_RB * 2;
    return (bytes + (long)sizeof(T) - 1) / (long)sizeof(T) + 1;
}
static void FN(dw_generic_taps)(const dw_params *p, long wq, long *coff, short *khmap)
{
    for (long kw = 0; kw < p->KW; kw++) {
        const long col = kw * p->DW;
        coff[kw] = (col % p->SW) * wq + col / p->SW;
    }
    for (long i = 0, rows = dw_in_rows(p, DW_RB); i < rows; i++)
        for (long r = 0; r < DW_RB; r++) {
            const long dh = i - r * p->SH;
            khmap[i * DW_RB + r] =
                (short)(dh >= 0 && dh % p->DH == 0 && dh / p->DH < p->KH ? dh / p->DH : -1);
        }
}

/* Strip of RB rows over the whole output width: ceil(OW/VLEN) vectors, NV at a time, the
 * row's last vector pulled back to end at OW; a row shorter than a vector goes through a
 * small buffer. GEN selects the generic strip (runtime taps). In direct mode the
 * vectors whose input crosses the row's ends run one at a time, masked. */
DW_INLINE void FN(dw_row_strip)(const int GEN, const int DIRECT, const int KH, const int KW,
                                const int S, const int D, const int MM, const int RB,
                                const int NV, const FN(dw_args) *a, const T *src,
                                const T *wt, const T *bias, T *dst)
{
    const long OW = a->OW, pitch = a->pitch, plane = a->plane;
    const int SI = GEN ? 1 : S;          /* input columns per output column in scratch */
    /* (for the 3x3 kernels: at 5x5 and 7x7 the half vector costs more than it saves) */
    const int HTOK = !GEN && !DIRECT && S == 1 && MM == 1 && VLEN >= 8 && KH < 5;
#define DW_STRIP_HT(nv_, masked_, ht_, c_, d_, ld_, pl_, last_, col0_)                     \
    do {                                                                                    \
        if (GEN)                                                                            \
            FN(dw_strip_generic)(MM, RB, nv_, a, src + (c_), wt, bias, d_, ld_, pl_, last_);\
        else                                                                                \
            FN(dw_strip)(KH, KW, S, D, MM, RB, nv_, masked_, ht_,                           \
                         src + SI * (c_) + (col0_), pitch, wt, bias, d_, ld_, pl_, last_,   \
                         (col0_) + SI * (c_), a->p->W);                                     \
    } while (0)
#define DW_STRIP(nv_, masked_, c_, d_, ld_, pl_, last_, col0_)                              \
    DW_STRIP_HT(nv_, masked_, 0, c_, d_, ld_, pl_, last_, col0_)
    if (OW >= VLEN) {
        /* Groups of 3 and 2 vectors (NV at most), so no vector runs on its own unless the
         * row has one; in direct mode a group is masked where it crosses a row end.
         * Direct mode: src is the input row; output column c reads input columns
         * S*c - PL + [0, span). */
        const long PL = DIRECT ? a->p->PL : 0, W = a->p->W;
        const long span = S * VLEN + (KW - 1) * D;
        const long nvec = (OW + VLEN - 1) / VLEN, cmax = OW - VLEN;
#define DW_C(j) ((j) * VLEN < cmax ? (j) * VLEN : cmax)
#define DW_INSIDE(c) (!DIRECT || (S * (c) - PL >= 0 && S * (c) - PL + span <= W))
#define DW_GROUP(g_)                                                                        \
        do {                                                                                \
            const long c = j * VLEN, last = DW_C(j + (g_) - 1) - c;                         \
            if (!DIRECT || (DW_INSIDE(c) && DW_INSIDE(c + last)))                           \
                DW_STRIP(g_, 0, c, dst + c, OW, plane, last, -PL);                          \
            else                                                                            \
                DW_STRIP(g_, 1, c, dst + c, OW, plane, last, -PL);                          \
        } while (0)
        /* single rows (a sub-block's last few) go one vector at a time: rare, and it
         * keeps the number of compiled variants down */
        const int nv = RB > 1 ? NV : 1;
        /* A ragged end of at most half a vector gets a half-width vector (AVX-512 and
         * AVX2; stride 1, read from scratch, one channel): fewer lanes computed in vain */
        const int half = HTOK && OW % VLEN != 0 && OW % VLEN <= VLEN / 2;
        const long ntot = half ? OW / VLEN + 1 : nvec;
#define DW_HGROUP(g_)                                                                       \
        do {                                                                                \
            const long c = j * VLEN;                                                        \
            if (half && j + (g_) == ntot)                                                   \
                DW_STRIP_HT(g_, 0, HTOK, c, dst + c, OW, plane, OW - VLEN / 2 - c, -PL);    \
            else                                                                            \
                DW_GROUP(g_);                                                               \
        } while (0)
        for (long j = 0; j < ntot;) {
            const long r = ntot - j;
            if (nv >= 3 && r >= 3 && r != 4) { DW_HGROUP(nv >= 3 ? 3 : 1); j += 3; }
            else if (nv >= 2 && r >= 2) { DW_HGROUP(nv >= 2 ? 2 : 1); j += 2; }
            else { DW_HGROUP(1); j += 1; }
        }
#undef DW_HGROUP
#undef DW_GROUP
#undef DW_C
#undef DW_INSIDE
    } else {
        T tmp[2 * DW_RB_MAX * VLEN];
        DW_STRIP(1, 0, 0, tmp, VLEN, RB * VLEN, 0, 0);
        for (int m = 0; m < MM; m++)
            for (int r = 0; r < RB; r++)
                for (long q = 0; q < OW; q++)
                    dst[m * plane + r * OW + q] = tmp[(m * RB + r) * VLEN + q];
    }
#undef DW_STRIP
#undef DW_STRIP_HT
}

/* `rows` output rows of MM channels: strips of RB rows, then single rows; each strip's
 * epilogue runs right after it. src: scratch row of the first output row. */
DW_INLINE void FN(dw_rows)(const int GEN, const int DIRECT, const int KH, const int KW,
                           const int S, const int D, const int MM, const int RB, const int NV,
                           const FN(dw_args) *a, const T *src, const T *wt, const T *bias,
                           const T *res, T *dst, long rows)
{
    const dw_params *p = a->p;
    const long OW = a->OW, plane = a->plane, step = (GEN ? p->SH : S) * a->pitch;
    const int epi = res != NULL || p->act != GCONV_ACT_NONE;
    long r = 0;
    if (RB > 1 && rows >= RB)
        for (; r < rows; r += RB) {
            /* a last strip of at least half the rows (of 4 or more) is pulled back to end
             * at `rows`: it recomputes a few rows identically (and their epilogue on the
             * fresh sums) rather than leave them to single-row strips, which cost ~3x per
             * row (MobileNetV2's 28-row stride-2 layer had 3 of its 27 direct rows there:
             * 400 -> 380 ns a channel; with 2-row strips (AVX2) it does not pay) */
            if (r + RB > rows) {
                if (RB < 4 || 2 * (rows - r) < RB) break;
                r = rows - RB;
            }
            FN(dw_row_strip)(GEN, DIRECT, KH, KW, S, D, MM, RB, NV, a, src + r * step, wt,
                             bias, dst + r * OW);
            if (epi)
                for (int m = 0; m < MM; m++)
                    FN(dw_epilogue)(p, dst + m * plane + r * OW,
                                    res ? res + m * plane + r * OW : NULL, RB * OW);
        }
    for (; r < rows; r++) {
        FN(dw_row_strip)(GEN, DIRECT, KH, KW, S, D, MM, 1, NV, a, src + r * step, wt,
                         bias, dst + r * OW);
        if (epi)
            for (int m = 0; m < MM; m++)
                FN(dw_epilogue)(p, dst + m * plane + r * OW,
                                res ? res + m * plane + r * OW : NULL, OW);
    }
}

typedef void (*FN(dw_rows_fn))(const FN(dw_args) *, const T *, const T *, const T *,
                               const T *, T *, long);

#define DW_KERNEL(name, DIRECT_, K_, S_, D_, MM_, NV_)                                      \
    static void FN(name)(const FN(dw_args) *a, const T *src, const T *wt, const T *bias,    \
                         const T *res, T *dst, long rows)                                   \
    {                                                                                       \
        FN(dw_rows)(0, DIRECT_, K_, K_, S_, D_, MM_, (D_) == 2 && (MM_) == 1 ? DW_RB_D2     \
                    : DW_RB, (D_) == 2 && (MM_) == 1 ? DW_NV_D2 : (NV_), a, src, wt, bias,  \
                    res, dst, rows);                                                        \
    }

DW_KERNEL(dw_k3s1d1m1, 0, 3, 1, 1, 1, DW_NV)
DW_KERNEL(dw_k3s1d1m2, 0, 3, 1, 1, 2, DW_NV2)
DW_KERNEL(dw_k3s2d1m1, 0, 3, 2, 1, 1, DW_NV)
DW_KERNEL(dw_k3s2d1m2, 0, 3, 2, 1, 2, DW_NV2)
DW_KERNEL(dw_k3s1d2m1, 0, 3, 1, 2, 1, DW_NV)
DW_KERNEL(dw_k3s1d2m2, 0, 3, 1, 2, 2, DW_NV2)
DW_KERNEL(dw_k5s1d1m1, 0, 5, 1, 1, 1, DW_NV)
DW_KERNEL(dw_k5s2d1m1, 0, 5, 2, 1, 1, DW_NV)
DW_KERNEL(dw_k7s1d1m1, 0, 7, 1, 1, 1, DW_NV)
DW_KERNEL(dw_k7s2d1m1, 0, 7, 2, 1, 1, DW_NV)
/* direct mode (input read in place, see dw_task): the 3x3 kernels */
DW_KERNEL(dw_k3s1d1m1_direct, 1, 3, 1, 1, 1, DW_NV)
DW_KERNEL(dw_k3s1d1m2_direct, 1, 3, 1, 1, 2, DW_NV2)
DW_KERNEL(dw_k3s2d1m1_direct, 1, 3, 2, 1, 1, DW_NV)
DW_KERNEL(dw_k3s2d1m2_direct, 1, 3, 2, 1, 2, DW_NV2)
DW_KERNEL(dw_k3s1d2m1_direct, 1, 3, 1, 2, 1, DW_NV)
DW_KERNEL(dw_k3s1d2m2_direct, 1, 3, 1, 2, 2, DW_NV2)

/* The generic kernel: strips of DW_RB rows (input rows shared as in the unrolled ones),
 * runtime taps from the call's tap tables (dw_args.coff, .khmap). */
static void FN(dw_generic_m1)(const FN(dw_args) *a, const T *src, const T *wt, const T *bias,
                              const T *res, T *dst, long rows)
{
    FN(dw_rows)(1, 0, 0, 0, 1, 1, 1, DW_RB, DW_NV, a, src, wt, bias, res, dst, rows);
}
static void FN(dw_generic_m2)(const FN(dw_args) *a, const T *src, const T *wt, const T *bias,
                              const T *res, T *dst, long rows)
{
    FN(dw_rows)(1, 0, 0, 0, 1, 1, 2, DW_RB, DW_NV2, a, src, wt, bias, res, dst, rows);
}

/* Kernel table: [id][MM-1]; id 0 is the generic kernel (ids: dwconv/params.h). */
static const FN(dw_rows_fn) FN(dw_kernels)[DW_N_KERNELS][2] = {
    {FN(dw_generic_m1), FN(dw_generic_m2)},
    {DW_SPEC(dw_k3s1d1m1, dw_generic_m1), DW_SPEC(dw_k3s1d1m2, dw_generic_m2)},
    {DW_SPEC(dw_k3s2d1m1, dw_generic_m1), DW_SPEC(dw_k3s2d1m2, dw_generic_m2)},
    {DW_SPEC32(dw_k3s1d2m1, dw_generic_m1), DW_SPEC32(dw_k3s1d2m2, dw_generic_m2)},
    {DW_SPEC32(dw_k5s1d1m1, dw_generic_m1), NULL},
    {DW_SPEC32(dw_k5s2d1m1, dw_generic_m1), NULL},
    {DW_SPEC32(dw_k7s1d1m1, dw_generic_m1), NULL},
    {DW_SPEC32(dw_k7s2d1m1, dw_generic_m1), NULL},
};

/* [id][MM-1], direct mode: only the 3x3 kernels have one (see dw_direct_ok) */
static const FN(dw_rows_fn) FN(dw_kernels_direct)[DW_N_KERNELS][2] = {
    {NULL, NULL},
    {DW_SPEC32(dw_k3s1d1m1_direct, dw_generic_m1), DW_SPEC32(dw_k3s1d1m2_direct, dw_generic_m2)},
    {DW_SPEC32(dw_k3s2d1m1_direct, dw_generic_m1), DW_SPEC32(dw_k3s2d1m2_direct, dw_generic_m2)},
    {DW_SPEC32(dw_k3s1d2m1_direct, dw_generic_m1), DW_SPEC32(dw_k3s1d2m2_direct, dw_generic_m2)},
    {NULL, NULL}, {NULL, NULL}, {NULL, NULL}, {NULL, NULL},
};
