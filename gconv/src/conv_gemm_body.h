/* conv_gemm_body.h: the GEMM-shaped convolution (pointwise 1x1 and general KHxKW), written
 * once and included by gconv_kernels.h for every (dtype, ISA) pair. It expects:
 *
 *   T      element type (float or double)
 *   VLEN   lanes per SIMD vector
 *   VREGS  vector registers the ISA has (16 or 32): bounds the accumulator tile
 *   FN(x)  name mangling, e.g. x ## _f32_avx512
 *
 * Layering (BLIS): pack -> macro-kernel -> micro-kernel; only VLEN/VREGS are ISA-specific.
 * Per (image n, group g) the convolution is the product
 *
 *      Y[g] (M x P)  =  W[g] (M x K)  *  B (K x P),      K = CG*KH*KW,  P = OH*OW
 *
 * where row k = (c, kh, kw) of B holds the input pixels tap k sees (im2col). B is never
 * built whole: a task packs one KC x NC tile at a time into per-thread scratch (or, for a
 * 1x1 stride-1 unpadded conv, reads the input rows directly: B *is* the input).
 *
 * Micro-kernel contract, ukr_MRxNV: C[MR x NR] (=|+=) A~[K x MR] * B~[K x NR], NR = NV*VLEN
 *
 *      packed weights A~ (one panel)        B~ (rows ldb apart)         C (rows ldc apart)
 *      k=0: w[m0..m0+MR)  <- MR values      k=0: [ NR pixels ]          m0  : [ NR pixels ]
 *      k=1: w[m0..m0+MR)                    k=1: [ NR pixels ]          m0+1: [ NR pixels ]
 *      ...                                  ...                         ...
 *
 *   each step k: NV vector loads of B~, MR broadcasts of A~, MR*NV FMAs into registers.
 *   Rows of a panel beyond M are zero in A~; only m <= MR rows and n <= NR columns of C are
 *   written (edge tiles go through a small buffer). bias != NULL seeds the accumulators
 *   (first K block only); accumulate != 0 adds C's old value (later K blocks).
 */

typedef T FN(vec) __attribute__((vector_size(VLEN * sizeof(T))));
typedef T FN(uvec) __attribute__((vector_size(VLEN * sizeof(T)), aligned(sizeof(T)), may_alias));

#define VEC FN(vec)
#define LOADU(p) ((VEC)(*(const FN(uvec) *)(p)))
#define STOREU(p, v) (*(FN(uvec) *)(p) = (v))
/* s - 0 == s exactly (also for -0.0), so this folds to a plain broadcast */
#define BCAST(s) ((T)(s) - (VEC){0})

#define MR_MAX 14
#define NV_MAX 8

static inline __attribute__((always_inline)) void FN(ukr_body)(
    const int MR, const int NV, long K, const T *restrict A, const T *restrict B, long ldb,
    T *restrict C, long ldc, int m, int n, const T *restrict bias, int accumulate)
{
    VEC acc[MR_MAX][NV_MAX];
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++) {
        VEC seed = BCAST((bias != NULL && i < m) ? bias[i] : (T)0);
#pragma GCC unroll 16
        for (int j = 0; j < NV; j++) acc[i][j] = seed;
    }
    for (long k = 0; k < K; k++) {
        VEC b[NV_MAX];
#pragma GCC unroll 16
        for (int j = 0; j < NV; j++) b[j] = LOADU(B + j * VLEN);
#pragma GCC unroll 16
        for (int i = 0; i < MR; i++) {
            VEC a = BCAST(A[i]);
#pragma GCC unroll 16
            for (int j = 0; j < NV; j++) acc[i][j] += a * b[j];
        }
        A += MR;
        B += ldb;
    }
    if (m == MR && n == NV * VLEN) {
#pragma GCC unroll 16
        for (int i = 0; i < MR; i++) {
#pragma GCC unroll 16
            for (int j = 0; j < NV; j++) {
                T *c = C + i * ldc + j * VLEN;
                STOREU(c, accumulate ? LOADU(c) + acc[i][j] : acc[i][j]);
            }
        }
    } else {
        T tmp[NV_MAX * VLEN];
        /* i runs to the compile-time MR so every acc index is a constant: the
         * accumulators stay in registers instead of being spilled to an array. */
#pragma GCC unroll 16
        for (int i = 0; i < MR; i++) {
            if (i >= m) break;
#pragma GCC unroll 16
            for (int j = 0; j < NV; j++) STOREU(tmp + j * VLEN, acc[i][j]);
            T *c = C + i * ldc;
            if (accumulate)
                for (int q = 0; q < n; q++) c[q] += tmp[q];
            else
                for (int q = 0; q < n; q++) c[q] = tmp[q];
        }
    }
}

typedef void (*FN(ukr_fn))(long, const T *, const T *, long, T *, long, int, int, const T *, int);

#define GCONV_UKR(MR_, NV_)                                                                 \
    static void FN(ukr_##MR_##x##NV_)(long K, const T *A, const T *B, long ldb, T *C,          \
                                      long ldc, int m, int n, const T *bias, int accumulate) \
    {                                                                                       \
        FN(ukr_body)(MR_, NV_, K, A, B, ldb, C, ldc, m, n, bias, accumulate);               \
    }

/* The tile shapes compiled for this ISA: accumulators MR*NV leave registers for NV loads
 * and a broadcast (32 registers: up to 28 accumulators; 16 registers: up to 12). */
GCONV_UKR(1, 1) GCONV_UKR(1, 2) GCONV_UKR(1, 4)
GCONV_UKR(2, 1) GCONV_UKR(2, 2) GCONV_UKR(2, 4)
GCONV_UKR(3, 1) GCONV_UKR(3, 2) GCONV_UKR(3, 3)
GCONV_UKR(4, 1) GCONV_UKR(4, 2) GCONV_UKR(4, 3)
GCONV_UKR(6, 1) GCONV_UKR(6, 2)
#if VREGS >= 32
GCONV_UKR(1, 8) GCONV_UKR(2, 6) GCONV_UKR(3, 6) GCONV_UKR(4, 4) GCONV_UKR(4, 6)
GCONV_UKR(6, 3) GCONV_UKR(6, 4) GCONV_UKR(8, 1) GCONV_UKR(8, 2) GCONV_UKR(8, 3)
GCONV_UKR(12, 1) GCONV_UKR(12, 2) GCONV_UKR(14, 2)
#endif

typedef struct { int mr, nv; FN(ukr_fn) fn; } FN(ukr_entry);

static const FN(ukr_entry) FN(ukr_table)[] = {
    {1, 1, FN(ukr_1x1)}, {1, 2, FN(ukr_1x2)}, {1, 4, FN(ukr_1x4)},
    {2, 1, FN(ukr_2x1)}, {2, 2, FN(ukr_2x2)}, {2, 4, FN(ukr_2x4)},
    {3, 1, FN(ukr_3x1)}, {3, 2, FN(ukr_3x2)}, {3, 3, FN(ukr_3x3)},
    {4, 1, FN(ukr_4x1)}, {4, 2, FN(ukr_4x2)}, {4, 3, FN(ukr_4x3)},
    {6, 1, FN(ukr_6x1)}, {6, 2, FN(ukr_6x2)},
#if VREGS >= 32
    {1, 8, FN(ukr_1x8)}, {2, 6, FN(ukr_2x6)}, {3, 6, FN(ukr_3x6)}, {4, 4, FN(ukr_4x4)},
    {4, 6, FN(ukr_4x6)}, {6, 3, FN(ukr_6x3)}, {6, 4, FN(ukr_6x4)}, {8, 1, FN(ukr_8x1)},
    {8, 2, FN(ukr_8x2)}, {8, 3, FN(ukr_8x3)}, {12, 1, FN(ukr_12x1)}, {12, 2, FN(ukr_12x2)},
    {14, 2, FN(ukr_14x2)},
#endif
};
#define N_UKR ((int)(sizeof(FN(ukr_table)) / sizeof(FN(ukr_table)[0])))

static FN(ukr_fn) FN(find_ukr)(int mr, int nv)
{
    for (int i = 0; i < N_UKR; i++)
        if (FN(ukr_table)[i].mr == mr && FN(ukr_table)[i].nv == nv) return FN(ukr_table)[i].fn;
    return NULL;
}

static inline long FN(ceil_div)(long a, long b) { return (a + b - 1) / b; }

/* Planner: pick the micro-tile and the cache blocking for one problem.
 * Cost model per micro-tile step k: the FMA ports (2 per cycle) take MR*NV/2 cycles, the
 * load ports (~2 per cycle) (MR+NV)/2, and a dependent FMA chain at least 4 cycles.
 * Multiply by the padded tile counts along M and P and keep the cheapest shape. */
static void FN(gemm_plan)(gconv_params *p, int n_threads)
{
    const int VL = VLEN;
    double best = 1e300;
    int bmr = 1, bnv = 1;
    for (int i = 0; i < N_UKR; i++) {
        int mr = FN(ukr_table)[i].mr, nv = FN(ukr_table)[i].nv;
        double step = 0.5 * mr * nv;
        if (0.5 * (mr + nv) > step) step = 0.5 * (mr + nv);
        if (step < 4.0) step = 4.0;
        double cost = (double)FN(ceil_div)(p->M, mr) * FN(ceil_div)(p->P, (long)nv * VL) * step;
        if (cost < best * 0.999 || (cost <= best * 1.001 && mr * nv > bmr * bnv)) {
            best = cost; bmr = mr; bnv = nv;
        }
    }
    p->MR = bmr; p->NV = bnv; p->vlen = VL;
    p->direct_b = (p->KH == 1 && p->KW == 1 && p->SH == 1 && p->SW == 1 && p->PT == 0 &&
                   p->PL == 0 && p->OH == p->H && p->OW == p->W);
    const long NR = (long)bnv * VL;
    /* KC: a KC x NR sliver of B~ stays in L1 (~32 KB) while all MR panels stream past it. */
    long kc = (32 * 1024) / (NR * (long)sizeof(T));
    if (kc < 16) kc = 16;
    if (kc >= p->K) kc = p->K;
    else kc = FN(ceil_div)(p->K, FN(ceil_div)(p->K, kc));   /* even blocks */
    p->KC = kc;
    /* NC: the packed KC x NC tile of B~ stays in L2 (~512 KB of the 1 MB). */
    long nc_max = (512 * 1024) / (kc * (long)sizeof(T));
    nc_max = nc_max / NR * NR;
    if (nc_max < NR) nc_max = NR;
    long p_pad = FN(ceil_div)(p->P, NR) * NR;
    long nc = p_pad < nc_max ? p_pad : nc_max;
    p->n_panels = FN(ceil_div)(p->M, bmr);
    p->MB = p->n_panels * bmr;
    p->n_mblocks = 1;
    /* Enough tasks that every thread gets work: split P first, then M (bitwise results
     * do not depend on the split: each output element is reduced in the same order). */
    long want = 4L * n_threads;
    long base = p->N * p->G;
    if (n_threads > 1 && base * FN(ceil_div)(p_pad, nc) < want) {
        long tiles_needed = FN(ceil_div)(want, base);
        long nr_tiles = p_pad / NR;
        long per = FN(ceil_div)(nr_tiles, tiles_needed);
        if (per < 1) per = 1;
        if (per * NR < nc) nc = per * NR;
        if (base * FN(ceil_div)(p_pad, nc) < want && p->n_panels > 1) {
            long mb_needed = FN(ceil_div)(want, base * FN(ceil_div)(p_pad, nc));
            long panels_per = FN(ceil_div)(p->n_panels, mb_needed);
            p->MB = panels_per * bmr;
            p->n_mblocks = FN(ceil_div)(p->n_panels, panels_per);
        }
    }
    p->NC = nc;
    p->n_ptiles = FN(ceil_div)(p->P, nc);
    p->n_tasks = p->N * p->G * p->n_mblocks * p->n_ptiles;
    /* scratch: packed B~ tile, plus one NR-wide sliver for the direct path's ragged tail */
    p->scratch_elems = kc * nc + kc * NR + 64;
}

/* Pack W (G, M, K) into panels A~[g][panel][k][MR], zero rows beyond M. */
static void FN(gemm_pack_weights)(const gconv_params *p, const T *w, T *wp)
{
    const long MR = p->MR, K = p->K, M = p->M;
    for (long g = 0; g < p->G; g++)
        for (long pa = 0; pa < p->n_panels; pa++) {
            T *dst = wp + (g * p->n_panels + pa) * K * MR;
            for (long k = 0; k < K; k++)
                for (long i = 0; i < MR; i++) {
                    long m = pa * MR + i;
                    dst[k * MR + i] = m < M ? w[(g * M + m) * K + k] : (T)0;
                }
        }
}

/* im2col of one tile: rows k in [k0, k0+kc), output pixels [p0, p0+nc) of image n, group g,
 * into dst with row stride ldd (>= nc; columns nc..ldd are zeroed). Zero padding is done
 * here, so the input is never copied whole. */
static void FN(pack_b_tile)(const gconv_params *p, const T *x_ng, long k0, long kc, long p0,
                            long nc, T *dst, long ldd)
{
    const long KHW = p->KH * p->KW, H = p->H, W = p->W, OW = p->OW;
    for (long kk = 0; kk < kc; kk++) {
        long k = k0 + kk;
        long c = k / KHW, r = k % KHW, kh = r / p->KW, kw = r % p->KW;
        const T *xc = x_ng + c * H * W;
        T *d = dst + kk * ldd;
        long q = 0;
        long oh = p0 / OW, ow = p0 % OW;
        while (q < nc) {
            long run = OW - ow;                 /* pixels left in this output row */
            if (run > nc - q) run = nc - q;
            long ih = oh * p->SH - p->PT + kh * p->DH;
            if (ih < 0 || ih >= H) {
                for (long t = 0; t < run; t++) d[q + t] = 0;
            } else {
                const T *xr = xc + ih * W;
                long iw0 = ow * p->SW - p->PL + kw * p->DW;   /* input column of pixel ow */
                /* valid t: 0 <= iw0 + t*SW < W */
                long t_lo = iw0 >= 0 ? 0 : FN(ceil_div)(-iw0, p->SW);
                long t_hi = iw0 < W ? FN(ceil_div)(W - iw0, p->SW) : 0;
                if (t_lo > run) t_lo = run;
                if (t_hi > run) t_hi = run;
                if (t_hi < t_lo) t_hi = t_lo;
                for (long t = 0; t < t_lo; t++) d[q + t] = 0;
                if (p->SW == 1) {
                    memcpy(d + q + t_lo, xr + iw0 + t_lo, (size_t)(t_hi - t_lo) * sizeof(T));
                } else {
                    const long sw = p->SW;
                    const T *s = xr + iw0;
                    for (long t = t_lo; t < t_hi; t++) d[q + t] = s[t * sw];
                }
                for (long t = t_hi; t < run; t++) d[q + t] = 0;
            }
            q += run;
            ow = 0;
            oh++;
        }
        for (long t = nc; t < ldd; t++) d[t] = 0;
    }
}

/* Epilogue on an m x n block of C (rows ldc apart) that the last K block just wrote:
 * add the residual (same layout as C) and apply the activation while the block is in L1. */
static void FN(epilogue_block)(const gconv_params *p, T *C, long ldc, const T *R, int m, long n)
{
    if (R == NULL && p->act == GCONV_ACT_NONE) return;
    const T alpha = (T)p->alpha, lo = (T)p->lo, hi = (T)p->hi;
    for (int i = 0; i < m; i++) {
        T *c = C + i * ldc;
        const T *r = R ? R + i * ldc : NULL;
        for (long q = 0; q < n; q++) {
            T v = c[q];
            if (r) v += r[q];
            switch (p->act) {
            case GCONV_ACT_RELU: v = v > 0 ? v : 0; break;
            case GCONV_ACT_RELU6: v = v > 0 ? (v < 6 ? v : 6) : 0; break;
            case GCONV_ACT_LEAKY_RELU: v = v >= 0 ? v : alpha * v; break;
            case GCONV_ACT_CLAMP: v = v < lo ? lo : (v > hi ? hi : v); break;
            case GCONV_ACT_SIGMOID: v = (T)1 / ((T)1 + EXP(-v)); break;
            case GCONV_ACT_TANH: v = TANH(v); break;
            case GCONV_ACT_SILU: v = v / ((T)1 + EXP(-v)); break;
            case GCONV_ACT_HARDSWISH: {
                T t = v + 3; t = t > 0 ? (t < 6 ? t : 6) : 0; v = v * t / 6; break; }
            default: break;
            }
            c[q] = v;
        }
    }
}

/* One task: image n, group g, an MB block of output channels, an NC tile of pixels.
 *   x: (N, C_in, H, W) contiguous          wp: packed weights (gemm_pack_weights)
 *   bias: (C_out,) or NULL                 res: like y, or NULL
 *   y: (N, C_out, OH, OW) contiguous       scratch: p->scratch_elems elements
 */
static void FN(gemm_task)(const gconv_params *p, const T *x, const T *wp, const T *bias,
                          const T *res, T *y, long task, T *scratch)
{
    const long per_img_g = p->n_mblocks * p->n_ptiles;
    const long ng = task / per_img_g;
    const long rest = task % per_img_g;
    const long mb = rest / p->n_ptiles, pt = rest % p->n_ptiles;
    const long n = ng / p->G, g = ng % p->G;
    const int MR = p->MR, NV = p->NV;
    const long NR = (long)NV * VLEN, K = p->K, P = p->P;
    const FN(ukr_fn) ukr = FN(find_ukr)(MR, NV);

    const T *x_ng = x + (n * p->C_in + g * p->CG) * p->H * p->W;
    T *y_ng = y + (n * p->C_out + g * p->M) * P;
    const T *r_ng = res ? res + (n * p->C_out + g * p->M) * P : NULL;
    const T *w_g = wp + g * p->n_panels * K * MR;
    const T *b_g = bias ? bias + g * p->M : NULL;

    const long p0 = pt * p->NC;
    const long nc = (P - p0 < p->NC) ? P - p0 : p->NC;
    const long m_begin = mb * p->MB;
    const long m_end = (m_begin + p->MB < p->M) ? m_begin + p->MB : p->M;
    const long ldd = FN(ceil_div)(nc, NR) * NR;
    T *bt = scratch;                    /* packed B~ tile, KC x ldd */
    T *tail = scratch + p->KC * ldd;    /* direct path: ragged last NR columns, KC x NR */

    for (long k0 = 0; k0 < K; k0 += p->KC) {
        const long kc = (K - k0 < p->KC) ? K - k0 : p->KC;
        const int first = (k0 == 0), last = (k0 + kc == K);
        if (!p->direct_b) FN(pack_b_tile)(p, x_ng, k0, kc, p0, nc, bt, ldd);
        for (long j = 0; j < nc; j += NR) {
            const long n_cols = (nc - j < NR) ? nc - j : NR;
            const T *B;
            long ldb;
            if (!p->direct_b) {
                B = bt + j; ldb = ldd;
            } else if (n_cols == NR) {
                B = x_ng + k0 * P + p0 + j; ldb = P;
            } else {   /* copy the ragged tail so the micro-kernel never reads past the input */
                for (long kk = 0; kk < kc; kk++) {
                    const T *src = x_ng + (k0 + kk) * P + p0 + j;
                    for (long t = 0; t < NR; t++) tail[kk * NR + t] = t < n_cols ? src[t] : 0;
                }
                B = tail; ldb = NR;
            }
            for (long m0 = m_begin; m0 < m_end; m0 += MR) {
                const int m = (int)((m_end - m0 < MR) ? m_end - m0 : MR);
                T *C = y_ng + m0 * P + p0 + j;
                ukr(kc, w_g + (m0 / MR) * K * MR + k0 * MR, B, ldb, C, P, m, (int)n_cols,
                    first && b_g ? b_g + m0 : NULL, !first);
                if (last) FN(epilogue_block)(p, C, P, r_ng ? r_ng + m0 * P + p0 + j : NULL, m, n_cols);
            }
        }
    }
}

#undef VEC
#undef LOADU
#undef STOREU
#undef BCAST
#undef MR_MAX
#undef NV_MAX
#undef N_UKR
