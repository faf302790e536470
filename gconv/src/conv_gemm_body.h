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
 * where row k = (c, kh, kw) of B holds the input pixels tap k sees. B is never built
 * (no im2col): for a 1x1 stride-1 unpadded conv B *is* the input; otherwise a task copies
 * the input rows it needs into zero-padded phase planes in per-thread scratch, where every
 * row of B is a contiguous run at a fixed offset (see gemm_plan). The micro-kernel reads
 * row k of B at B + boff[k].
 *
 * Micro-kernel contract, ukr_MRxNV: C[MR x NR] (=|+=) A~[K x MR] * B~[K x NR], NR = NV*VLEN
 *
 *      packed weights A~ (one panel)        B~ (row k at B + boff[k])  C (rows ldc apart)
 *      k=0: w[m0..m0+MR)  <- MR values      k=0: [ NR pixels ]          m0  : [ NR pixels ]
 *      k=1: w[m0..m0+MR)                    k=1: [ NR pixels ]          m0+1: [ NR pixels ]
 *      ...                                  ...                         ...
 *
 *   each step k: NV vector loads of B~, MR broadcasts of A~, MR*NV FMAs into registers.
 *   Rows of a panel beyond M are zero in A~; only m <= MR rows and n <= NR columns of C are
 *   written (edge tiles go through a small buffer). bias != NULL seeds the accumulators
 *   (first K block only); accumulate != 0 adds C's old value (later K blocks).
 *
 *   With a wide_map (phase planes, AVX-512 only), the NR columns are wide pixels
 *   q0 .. q0+NR of the task's wide rows and C is the output itself: wide pixel q = r*PW + c
 *   goes to C[r*OW + c] when c < OW and r < rows, and nowhere otherwise. A vector that
 *   crosses a row end is written with two masked stores:
 *
 *      wide rows (PW)   | r: .. c .. OW-1  g g | r+1: 0 1 2 ..        g = garbage column
 *      one vector             [ lo lanes   x x    hi lanes ]
 *      output (OW)      | r: .. c .. OW-1 | r+1: 0 1 2 ..
 *
 *   so no staging tile and no copy pass (both are stores, ~2 cycles each on this core).
 */

typedef T FN(vec) __attribute__((vector_size(VLEN * sizeof(T))));
typedef T FN(uvec) __attribute__((vector_size(VLEN * sizeof(T)), aligned(sizeof(T)), may_alias));
typedef ITYPE FN(ivec) __attribute__((vector_size(VLEN * sizeof(T))));   /* shuffle masks */

#define VEC FN(vec)
#define LOADU(p) ((VEC)(*(const FN(uvec) *)(p)))
#define STOREU(p, v) (*(FN(uvec) *)(p) = (v))
/* s - 0 == s exactly (also for -0.0), so this folds to a plain broadcast */
#define BCAST(s) ((T)(s) - (VEC){0})

#define FN_CEIL(a, b) (((a) + (b) - 1) / (b))
#define MR_MAX 14
#define NV_MAX 8

/* Where a tile's wide pixels go in the output (see the contract above). */
typedef struct { long q0, PW, OW, rows; } FN(wide_map);

#if VBYTES == 64
#define HAVE_MASKED_STORES 1
#if GCONV_F64
typedef __mmask8 FN(mask);
#define MASK_STORE(p, k, v) _mm512_mask_storeu_pd((p), (k), (__m512d)(v))
#define MASK_LOAD(old, k, p) ((VEC)_mm512_mask_loadu_pd((__m512d)(old), (k), (p)))
#else
typedef __mmask16 FN(mask);
#define MASK_STORE(p, k, v) _mm512_mask_storeu_ps((p), (k), (__m512)(v))
#define MASK_LOAD(old, k, p) ((VEC)_mm512_mask_loadu_ps((__m512)(old), (k), (p)))
#endif

/* Store (or, accumulating, add into) the MR x NV tile acc at the output through the wide
 * map: per vector, a plain store inside a row, else the lanes of row r (lo) and of row r+1
 * (hi) by masked stores. Only rows i < m of the tile are written. */
static inline __attribute__((always_inline)) void FN(store_wide)(
    const int MR, const int NV, VEC acc[MR_MAX][NV_MAX], T *restrict C, long ldc, int m,
    const FN(wide_map) *wm, int accumulate)
{
    const long PW = wm->PW, OW = wm->OW, rows = wm->rows;
    long r = wm->q0 / PW, c = wm->q0 - r * PW;
#pragma GCC unroll 16
    for (int j = 0; j < NV; j++) {
        if (r >= rows) break;                     /* past the task's rows: nothing to write */
        T *lo_p = C + r * OW + c;
        if (c + VLEN <= OW) {                     /* inside one row */
#pragma GCC unroll 16
            for (int i = 0; i < MR; i++) {
                if (i >= m) break;
                T *d = lo_p + i * ldc;
                STOREU(d, accumulate ? LOADU(d) + acc[i][j] : acc[i][j]);
            }
        } else {
            const unsigned full = (1u << VLEN) - 1;
            const unsigned lo = c < OW ? (1u << (OW - c)) - 1 : 0;
            /* lanes l >= PW - c start row r+1, at output column l - (PW - c) */
            const unsigned hi = (PW - c < VLEN && r + 1 < rows) ? full & ~((1u << (PW - c)) - 1) : 0;
            T *hi_p = C + (r + 1) * OW + c - PW;
#pragma GCC unroll 16
            for (int i = 0; i < MR; i++) {
                if (i >= m) break;
                VEC v = acc[i][j];
                if (accumulate)
                    v += MASK_LOAD(MASK_LOAD((VEC){0}, (FN(mask))lo, lo_p + i * ldc),
                                   (FN(mask))hi, hi_p + i * ldc);
                MASK_STORE(lo_p + i * ldc, (FN(mask))lo, v);
                MASK_STORE(hi_p + i * ldc, (FN(mask))hi, v);
            }
        }
        c += VLEN;
        if (c >= PW) { c -= PW; r++; }
    }
}
#else
#define HAVE_MASKED_STORES 0
#endif

static inline __attribute__((always_inline)) void FN(ukr_body)(
    const int MR, const int NV, long K, const T *restrict A, const T *restrict B,
    const long *restrict boff, T *restrict C, long ldc, int m, int n, const T *restrict bias,
    int accumulate, const FN(wide_map) *wm)
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
        for (int j = 0; j < NV; j++) b[j] = LOADU(B + boff[k] + j * VLEN);
#pragma GCC unroll 16
        for (int i = 0; i < MR; i++) {
            VEC a = BCAST(A[i]);
#pragma GCC unroll 16
            for (int j = 0; j < NV; j++) acc[i][j] += a * b[j];
        }
        A += MR;
    }
#if HAVE_MASKED_STORES
    if (wm != NULL) {
        FN(store_wide)(MR, NV, acc, C, ldc, m, wm, accumulate);
        return;
    }
#endif
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
#if HAVE_MASKED_STORES
        /* whole vectors, then the one holding column n-1 by a masked store: nothing is
         * written past C's n columns or m rows */
#pragma GCC unroll 16
        for (int i = 0; i < MR; i++) {
            if (i >= m) break;
            T *c = C + i * ldc;
#pragma GCC unroll 16
            for (int j = 0; j < NV; j++) {
                const int q = j * VLEN;
                if (q >= n) break;
                if (q + VLEN <= n) {
                    STOREU(c + q, accumulate ? LOADU(c + q) + acc[i][j] : acc[i][j]);
                } else {
                    const FN(mask) k = (FN(mask))((1u << (n - q)) - 1);
                    VEC v = acc[i][j];
                    if (accumulate) v += MASK_LOAD((VEC){0}, k, c + q);
                    MASK_STORE(c + q, k, v);
                }
            }
        }
        return;
#endif
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

typedef void (*FN(ukr_fn))(long, const T *, const T *, const long *, T *, long, int, int,
                           const T *, int, const FN(wide_map) *);

#define GCONV_UKR(MR_, NV_)                                                                 \
    static void FN(ukr_##MR_##x##NV_)(long K, const T *A, const T *B, const long *boff,        \
                                      T *C, long ldc, int m, int n, const T *bias,          \
                                      int accumulate, const FN(wide_map) *wm)               \
    {                                                                                       \
        FN(ukr_body)(MR_, NV_, K, A, B, boff, C, ldc, m, n, bias, accumulate, wm);          \
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
GCONV_UKR(12, 1) GCONV_UKR(12, 2) GCONV_UKR(14, 1) GCONV_UKR(14, 2)
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
    {14, 1, FN(ukr_14x1)}, {14, 2, FN(ukr_14x2)},
#endif
};
#define N_UKR ((int)(sizeof(FN(ukr_table)) / sizeof(FN(ukr_table)[0])))

static FN(ukr_fn) FN(find_ukr)(int mr, int nv)
{
    for (int i = 0; i < N_UKR; i++)
        if (FN(ukr_table)[i].mr == mr && FN(ukr_table)[i].nv == nv) return FN(ukr_table)[i].fn;
    return NULL;
}

/* Channel-vector micro-kernel, ukrc_MPxNV (used when output images are small or the wide
 * rows would waste many lanes): MP consecutive output pixels of one output row x
 * NR = NV*VLEN output channels, written pixel-major to a small stage tile.
 *
 *      packed weights A~ (one panel)        pixels                      stage (MP x NR)
 *      k=0: [ NR channels ]                 tap k of pixel i is         pixel 0: [ NR chans ]
 *      k=1: [ NR channels ]                 B[boff[k] + i]              pixel 1: [ NR chans ]
 *
 *   each step k: NV vector loads of A~, MP broadcasts of pixels, MP*NV FMAs. Pixels are
 *   addressed one by one, so no lane is spent on the wide rows' garbage columns. bias, if
 *   given, holds NR values (zero-padded). The caller transposes the stage into NCHW. */
#define MP_MAX 28
static inline __attribute__((always_inline)) void FN(ukrc_body)(
    const int MP, const int NV, long K, const T *restrict A, const T *restrict B,
    const long *restrict boff, T *restrict stage, const T *restrict bias)
{
    VEC acc[MP_MAX][NV_MAX];
#pragma GCC unroll 8
    for (int v = 0; v < NV; v++) {
        VEC seed = bias ? LOADU(bias + v * VLEN) : (VEC){0};
#pragma GCC unroll 28
        for (int i = 0; i < MP; i++) acc[i][v] = seed;
    }
    for (long k = 0; k < K; k++) {
        VEC a[NV_MAX];
#pragma GCC unroll 8
        for (int v = 0; v < NV; v++) a[v] = LOADU(A + v * VLEN);
        const T *b = B + boff[k];
#pragma GCC unroll 28
        for (int i = 0; i < MP; i++) {
            VEC x = BCAST(b[i]);
#pragma GCC unroll 8
            for (int v = 0; v < NV; v++) acc[i][v] += x * a[v];
        }
        A += NV * VLEN;
    }
#pragma GCC unroll 28
    for (int i = 0; i < MP; i++)
#pragma GCC unroll 8
        for (int v = 0; v < NV; v++) STOREU(stage + (i * NV + v) * VLEN, acc[i][v]);
}

typedef void (*FN(ukrc_fn))(long, const T *, const T *, const long *, T *, const T *);

#define GCONV_UKRC(MP_, NV_)                                                                 \
    static void FN(ukrc_##MP_##x##NV_)(long K, const T *A, const T *B, const long *boff,        \
                                       T *stage, const T *bias)                              \
    {                                                                                        \
        FN(ukrc_body)(MP_, NV_, K, A, B, boff, stage, bias);                                 \
    }

/* pixel counts fit common output widths (7, 14, 27, 28, 56 ...) */
GCONV_UKRC(4, 1) GCONV_UKRC(4, 2) GCONV_UKRC(4, 3) GCONV_UKRC(6, 1) GCONV_UKRC(6, 2)
GCONV_UKRC(7, 1) GCONV_UKRC(8, 1) GCONV_UKRC(9, 1) GCONV_UKRC(12, 1)
#if VREGS >= 32
GCONV_UKRC(4, 4) GCONV_UKRC(6, 4) GCONV_UKRC(7, 2) GCONV_UKRC(7, 3) GCONV_UKRC(7, 4)
GCONV_UKRC(8, 2) GCONV_UKRC(8, 3) GCONV_UKRC(9, 2) GCONV_UKRC(9, 3) GCONV_UKRC(12, 2)
GCONV_UKRC(14, 1) GCONV_UKRC(14, 2) GCONV_UKRC(28, 1)
#endif

typedef struct { int mp, nv; FN(ukrc_fn) fn; } FN(ukrc_entry);

static const FN(ukrc_entry) FN(ukrc_table)[] = {
    {4, 1, FN(ukrc_4x1)}, {4, 2, FN(ukrc_4x2)}, {4, 3, FN(ukrc_4x3)}, {6, 1, FN(ukrc_6x1)},
    {6, 2, FN(ukrc_6x2)}, {7, 1, FN(ukrc_7x1)}, {8, 1, FN(ukrc_8x1)}, {9, 1, FN(ukrc_9x1)},
    {12, 1, FN(ukrc_12x1)},
#if VREGS >= 32
    {4, 4, FN(ukrc_4x4)}, {6, 4, FN(ukrc_6x4)}, {7, 2, FN(ukrc_7x2)}, {7, 3, FN(ukrc_7x3)},
    {7, 4, FN(ukrc_7x4)}, {8, 2, FN(ukrc_8x2)}, {8, 3, FN(ukrc_8x3)}, {9, 2, FN(ukrc_9x2)},
    {9, 3, FN(ukrc_9x3)}, {12, 2, FN(ukrc_12x2)}, {14, 1, FN(ukrc_14x1)},
    {14, 2, FN(ukrc_14x2)}, {28, 1, FN(ukrc_28x1)},
#endif
};
#define N_UKRC ((int)(sizeof(FN(ukrc_table)) / sizeof(FN(ukrc_table)[0])))

static FN(ukrc_fn) FN(find_ukrc)(int mp, int nv)
{
    for (int i = 0; i < N_UKRC; i++)
        if (FN(ukrc_table)[i].mp == mp && FN(ukrc_table)[i].nv == nv) return FN(ukrc_table)[i].fn;
    return NULL;
}

/* The narrowest compiled tile with MR rows and at least nv vectors: the ragged last chunk
 * of pixels runs on it instead of on the full width. */
static int FN(tail_nv)(int mr, int nv)
{
    int best = 1 << 30;
    for (int i = 0; i < N_UKR; i++)
        if (FN(ukr_table)[i].mr == mr && FN(ukr_table)[i].nv >= nv && FN(ukr_table)[i].nv < best)
            best = FN(ukr_table)[i].nv;
    return best;
}

static inline long FN(ceil_div)(long a, long b) { return (a + b - 1) / b; }

/* Relative cost of one micro-tile step k: FMAs at two per cycle, ~2 loads per cycle, a
 * 4-cycle floor (FMA latency). Only comparisons between tiles use it. This machine's core
 * retires one 512-bit FMA per cycle, but costing FMAs at one per cycle made these
 * comparisons worse: it picks 4x6 over 12x2 for mbv2_pw_expand, 3-10 % slower (C harness,
 * alternated). */
static double FN(step_cost)(int mr, int nv)
{
    double step = 0.5 * mr * nv;
    if (0.5 * (mr + nv) > step) step = 0.5 * (mr + nv);
    return step < 4.0 ? 4.0 : step;
}

/* Cost of `pixels` output pixels on MR x NV tiles: full chunks plus a narrower tail. */
static double FN(pixels_cost)(int mr, int nv, long pixels)
{
    const long NR = (long)nv * VLEN;
    const long full = pixels / NR, rem = pixels - full * NR;
    double c = full * FN(step_cost)(mr, nv);
    if (rem > 0) c += FN(step_cost)(mr, FN(tail_nv)(mr, (int)FN_CEIL(rem, VLEN)));
    return c;
}

/* Scratch layout, in elements of T (one block per thread, 64-byte aligned):
 *   [ offsets: 2*K longs | general: phase planes + slack | staging MB x QPAD ]
 *   [ offsets: 2*K longs | pointwise: ragged-tail sliver KC x NR ]                        */
#define OFFSET_ELEMS(K) (FN(ceil_div)(2 * (K) * (long)sizeof(long), (long)sizeof(T)) + 16)

/* Pick the micro-tile (MR x NV) for `pixels` output pixels per (image, group): the
 * cheapest by step_cost times the tile counts along M and pixels; ties go to bigger tiles. */
static void FN(choose_tile)(gconv_params *p, long pixels)
{
    double best = 1e300;
    int bmr = 1, bnv = 1;
    for (int i = 0; i < N_UKR; i++) {
        int mr = FN(ukr_table)[i].mr, nv = FN(ukr_table)[i].nv;
        double cost = (double)FN(ceil_div)(p->M, mr) * FN(pixels_cost)(mr, nv, pixels);
        if (cost < best * 0.999 || (cost <= best * 1.001 && mr * nv > bmr * bnv)) {
            best = cost; bmr = mr; bnv = nv;
        }
    }
    p->MR = bmr; p->NV = bnv; p->vlen = VLEN;
    p->oc_vec = 0;
    p->panel_w = bmr;
    p->n_panels = FN(ceil_div)(p->M, bmr);
}

/* Phase-plane problems: switch to channel-vector tiles (ukrc) when they cost less than
 * `margin` times the pixel-vector tiles choose_tile picked. Both costs are micro-tile steps
 * (step_cost) times K (the channel-vector transpose and the pixel-vector copy-out are both
 * one pass over the output; measured, they cancel). Pixel vectors lose lanes on small
 * images and on the wide rows' garbage columns; channel vectors lose them when M is not a
 * multiple of VLEN. */
static void FN(maybe_channel_vectors)(gconv_params *p, double margin)
{
    const double pv = margin * (double)FN(ceil_div)(p->M, p->MR) *
                      FN(pixels_cost)(p->MR, p->NV, p->OH * p->PW) * p->K;
    double best = 1e300;
    int bmp = 0, bnv = 0;
    for (int i = 0; i < N_UKRC; i++) {
        const int mp = FN(ukrc_table)[i].mp, nv = FN(ukrc_table)[i].nv;
        const double c = (double)FN(ceil_div)(p->M, (long)nv * VLEN) * p->OH *
                         FN(ceil_div)(p->OW, mp) * FN(step_cost)(mp, nv) * p->K;
        if (c < best * 0.999 || (c <= best * 1.001 && mp * nv > bmp * bnv)) {
            best = c; bmp = mp; bnv = nv;
        }
    }
    if (bmp == 0 || best >= pv) return;
    p->oc_vec = 1;
    p->MR = bmp; p->NV = bnv;
    p->panel_w = (long)bnv * VLEN;
    p->n_panels = FN(ceil_div)(p->M, p->panel_w);
}

/* Split the work of one (image, group) into tasks until every thread has ~4: along `units`
 * (pixel chunks or output rows) and along weight panels (output-channel blocks), the one
 * with more room first. Pixels or rows are cut into at least `pieces` parts (rounding the
 * part down), so that the channels are split only when they must: each channel block reads
 * the same input again. (Rounding up left mbv2_pw_project 7 pixel tiles x 2 channel
 * blocks, 14 tasks, against 9 tiles now: 2 threads, C harness, 115-122 -> 100-101 us;
 * dense_1x1 499-505 -> 473-475 us.) Results do not depend on the split: each output element
 * is always reduced in the same order. Sets MB / n_mblocks; returns units per task. */
static long FN(split_tasks)(gconv_params *p, long units, long units_per_task, int n_threads)
{
    const long base = p->N * p->G, want = 4L * n_threads;
    long panels_per = p->n_panels;
    if (n_threads > 1 && base * FN(ceil_div)(units, units_per_task) < want) {
        const long pieces = FN(ceil_div)(want, base);      /* per (image, group) */
        if (p->n_panels >= units) {                        /* channels first */
            panels_per = FN(ceil_div)(p->n_panels, pieces);
            const long left = FN(ceil_div)(pieces, FN(ceil_div)(p->n_panels, panels_per));
            if (left > 1) units_per_task = FN(ceil_div)(units, left);
        } else {                                           /* pixels / rows first */
            long per = units / pieces > 1 ? units / pieces : 1;
            if (per < units_per_task) units_per_task = per;
            const long have = FN(ceil_div)(units, units_per_task);
            if (have < pieces) panels_per = FN(ceil_div)(p->n_panels, FN(ceil_div)(pieces, have));
        }
    }
    if (units_per_task < 1) units_per_task = 1;
    p->MB = panels_per * p->panel_w;
    p->n_mblocks = FN(ceil_div)(p->n_panels, panels_per);
    return units_per_task;
}

/* Elements from one phase plane to the next: PROWS rows of PW, then VLEN of slack so whole-
 * vector copies may run past a row's end (into the next row, written later, or the slack). */
static inline long FN(plane_stride)(const gconv_params *p) { return p->PROWS * p->PW + VLEN; }

/* Flat planes at stride 1: read a plane of PROWS x PW as one flat run. The valid lanes of
 * any VLEN consecutive plane elements come from at most VLEN consecutive input elements (a
 * plane row is at least as wide as an input row), so each plane vector is one load, one
 * permute and a mask, by a recipe that is the same for every channel. Rows narrower than a
 * vector (7x7 and 14x14 images) no longer cost a store each, and the permute costs less than
 * the row path's edge handling: measured per task, ResNeXt 7x7 1716 -> 520 ticks, 14x14
 * 1040 -> 702, dense 28x28 20306 -> 12896. Building the recipes costs about as much as
 * filling four channels, so few channels (ResNeXt 56x56 has 4) keep the row path. Recipes
 * live on the stack: at most FLAT_PLANE_VECS of them. */
#define FLAT_PLANE_VECS 128
static int FN(flat_planes)(const gconv_params *p)
{
    const long flat = FN(ceil_div)(p->PROWS * p->PW, VLEN);
    const long by_rows = p->PROWS * FN(ceil_div)(p->PW, VLEN);
    return p->SH == 1 && p->SW == 1 && p->H * p->W >= VLEN && flat <= FLAT_PLANE_VECS &&
           flat * (8 + 2 * p->CG) < 3 * by_rows * p->CG;     /* fitted to the timings above */
}

/* K block: a KC x NR sliver of B stays in L1 (~32 KB) while every weight panel passes over
 * it; blocks of even size. */
static long FN(kc_for)(long K, long NR)
{
    long kc = (32 * 1024) / (NR * (long)sizeof(T));
    if (kc < 16) kc = 16;
    return kc >= K ? K : FN(ceil_div)(K, FN(ceil_div)(K, kc));
}

/* Channel-vector staging of one task, in elements: the task's rb*OW output pixels (rounded
 * up to whole VLEN-pixel blocks, plus MP for a ragged last tile's spill) x NR channels, NR
 * bias values, and a VLEN x VLEN block for ragged transposes. */
static inline long FN(cv_stage_elems)(long rb, long OW, long MP, long NR)
{
    return (FN(ceil_div)(rb * OW, VLEN) * VLEN + MP) * NR + NR + (long)VLEN * VLEN;
}

/* A call whose input and output together exceed 4 MiB streams them from L3 or memory. */
static int FN(call_streams)(const gconv_params *p)
{
    const double bytes = (double)sizeof(T) * p->N * (p->C_in * p->H * p->W +
                                                    p->C_out * p->OH * p->OW);
    return bytes > 4.0 * 1024 * 1024;
}

/* Tasks a thread takes at a time (gconv_params.task_chunk): for a call that streams, runs
 * of consecutive tasks, about 4 per thread, so that each thread reads and writes long
 * contiguous stretches of memory, not every other task's (which the hardware prefetchers
 * follow badly). Measured at 2 threads against one task at a time, layer calls in
 * alternating processes (two sets of pairs, the machine noisy): batch-8 MobileNetV2's
 * depthwise layer a median 9-17 % faster (single pairs from 9 % slower to 27 % faster),
 * batch-8 ResNeXt 56x56 5-10 % faster. Calls in cache keep single tasks: the finest
 * balance between the cores (runs there: no gain in a C harness, -3..+1 %). */
static long FN(task_chunk)(long n_tasks, int n_threads, int streams)
{
    if (n_threads < 2 || !streams) return 1;
    const long chunk = n_tasks / (4L * n_threads);
    return chunk > 1 ? chunk : 1;
}

/* Planner. Two ways to feed the micro-kernel's B operand:
 *
 * direct_b (1x1, stride 1, no padding): B *is* the input: row k = channel k of the group,
 *   read in place. Tasks tile the pixels (NC per task) and block K by KC so a KC x NR
 *   sliver of B stays in L1 while every weight panel passes over it. (Unless the image is
 *   so small that channel-vector tiles on phase planes win, see below.)
 *
 * otherwise, implicit GEMM on phase planes: a task takes NC output rows. It copies the
 *   input rows they need, zero-padded, into per-thread scratch split into SH x SW phase
 *   planes (plane (a, b) holds padded pixels (SH*i + a, SW*j + b)), each row PW wide:
 *
 *      PW = OW + (KW-1)*DW / SW        ("wide" rows: PW - OW garbage columns, discarded)
 *
 *   Then output pixel q = r*PW + ow (r = row in the block) and tap (c, kh, kw) reads plane
 *   ((kh*DH) % SH, (kw*DW) % SW) of channel c at index q + (kh*DH/SH)*PW + (kw*DW/SW): a
 *   constant offset per tap, so B row k is a contiguous run of the scratch and no im2col
 *   is ever built. The micro-kernel writes wide rows to a staging tile; the valid OW
 *   columns are copied out with the epilogue. */
static void FN(gemm_plan)(gconv_params *p, int n_threads)
{
    const long S = (long)sizeof(T);
    p->zero_scratch = 0;     /* every task writes what it reads */
    p->direct_out = 0;
    p->direct_b = (!p->forbid_direct && p->KH == 1 && p->KW == 1 && p->SH == 1 && p->SW == 1 &&
                   p->PT == 0 && p->PL == 0 && p->OH == p->H && p->OW == p->W);
    if (p->direct_b) {
        FN(choose_tile)(p, p->P);
        /* Small images waste pixel-vector lanes (7x7: 49 pixels in 4 vectors) and channel-
         * vector tiles do not; those need the input copied into a plane, which with the
         * transpose out costs ~10 % of the tiles' work. Measured on 7x7 (ResNet-50 stage
         * 4, 2048 -> 512): 1234 us in place, 917 us through the copy. (Decided on a copy
         * of p: the phase-plane planning below starts afresh.) */
        gconv_params q = *p;
        q.PW = q.OW;
        FN(maybe_channel_vectors)(&q, 0.9);
        if (q.oc_vec) p->direct_b = 0;
    }
    if (p->direct_b) {
        const long NR = (long)p->NV * VLEN;
        const long kc = FN(kc_for)(p->K, NR);
        p->KC = kc;
        long n_chunks = FN(ceil_div)(p->P, NR);
        long per = FN(split_tasks)(p, n_chunks, FN(ceil_div)(2048, NR), n_threads);
        p->NC = per * NR;
        p->n_ptiles = FN(ceil_div)(p->P, p->NC);
        /* only the last pixel tile can end in a ragged chunk (NC is a multiple of NR) */
        const long ragged = (p->P - (p->n_ptiles - 1) * p->NC) % NR;
        p->tail_nv = ragged ? FN(tail_nv)(p->MR, (int)FN_CEIL(ragged, VLEN)) : p->NV;
        p->ukr = (const void *)FN(find_ukr)(p->MR, p->NV);
        p->tail_ukr = (const void *)FN(find_ukr)(p->MR, p->tail_nv);
        p->PW = p->PROWS = p->QPAD = 0;
        p->flat_planes = 0;
        p->scratch_elems = OFFSET_ELEMS(p->K) + kc * NR + 64;
    } else {
        p->PW = p->OW + (p->KW - 1) * p->DW / p->SW;
        FN(choose_tile)(p, p->OH * p->PW);
        FN(maybe_channel_vectors)(p, 1.0);
        /* a vector of wide pixels must span at most two output rows */
        p->direct_out = HAVE_MASKED_STORES && !p->oc_vec && p->OW >= VLEN;
        const long NR = p->oc_vec ? p->MR : (long)p->NV * VLEN;   /* pixels per tile */
        const long halo = (p->KH - 1) * p->DH / p->SH;
        /* rows per task: input planes + staging within ~384 KB of the 1 MB L2 */
        long rb = p->OH;
        for (;;) {
            long in = p->CG * p->SH * p->SW * ((rb + halo) * p->PW + VLEN);
            long stage = p->oc_vec ? FN(cv_stage_elems)(rb, p->OW, p->MR, p->panel_w)
                         : p->direct_out ? 0
                                         : p->n_panels * p->MR *
                                               FN(ceil_div)((rb - 1) * p->PW + p->OW, NR) * NR;
            if ((in + stage) * S <= 384 * 1024 || rb == 1) break;
            rb = (rb + 1) / 2;
        }
        rb = FN(split_tasks)(p, p->OH, rb, n_threads);
        p->NC = rb;
        p->n_ptiles = FN(ceil_div)(p->OH, rb);
        p->KC = p->oc_vec ? p->K : FN(kc_for)(p->K, NR);
        p->PROWS = rb + halo;
        p->flat_planes = FN(flat_planes)(p);
        /* stage: wide rows of MB channels (pixel vectors) or one MR x NR tile + bias */
        p->QPAD = FN(ceil_div)((rb - 1) * p->PW + p->OW, NR) * NR;
        const long stage = p->oc_vec ? FN(cv_stage_elems)(rb, p->OW, p->MR, p->panel_w)
                           : p->direct_out ? 0 : p->MB * p->QPAD;
        p->scratch_elems = OFFSET_ELEMS(p->K) + p->CG * p->SH * p->SW * FN(plane_stride)(p) +
                           NR + 64 + stage + p->SW * (p->PW + 2L * VLEN) + VLEN;
    }
    p->n_tasks = p->N * p->G * p->n_mblocks * p->n_ptiles;
    const int streams = FN(call_streams)(p);
    p->task_chunk = FN(task_chunk)(p->n_tasks, n_threads, streams);
    /* Prefetch the next task's data (pf_init) only when the call streams: there it saves
     * 5-27 % (batch 4-8), while on data already in cache the prefetch instructions only
     * queue for miss buffers and cost 1-4 % (measured on ResNeXt's 56x56, strided and 7x7
     * layers). This thread's next task: the next one of its chunk, or with chunks of one
     * task about n_threads on (the dynamic schedule hands them out in order). */
    p->pf_stride = !streams ? 0 : (p->task_chunk > 1 || n_threads == 1) ? 1 : n_threads;
}

/* {0, 1, ..., VLEN-1}, loaded from a constant table so that the compiler folds the masks
 * computed from it into constants. */
static const ITYPE FN(iota_tab)[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
typedef ITYPE FN(uivec) __attribute__((vector_size(VLEN * sizeof(T)), aligned(sizeof(T)), may_alias));
static inline FN(ivec) FN(iota)(void) { return (FN(ivec))(*(const FN(uivec) *)FN(iota_tab)); }

#if VBYTES == 64 && !GCONV_F64
/* r (16 vectors of 16 floats) = its transpose, in registers. Two stages stay inside the
 * 128-bit lanes (unpack of 32-, then 64-bit elements), two move whole 128-bit lanes
 * (shuffle_f32x4): 64 shuffles as in the generic butterfly below, but none of them a
 * vpermt2ps, which here also costs a register copy each (it overwrites a source).
 * Measured: 32 against 45-60 TSC ticks per 16x16 block. */
static inline __attribute__((always_inline)) void FN(transpose_regs)(VEC *r)
{
    __m512 t[16], u[16];
#pragma GCC unroll 8
    for (int i = 0; i < 16; i += 2) {          /* t[i]: lanes a0 b0 a1 b1 | ... (rows i, i+1) */
        t[i] = _mm512_unpacklo_ps((__m512)r[i], (__m512)r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps((__m512)r[i], (__m512)r[i + 1]);
    }
#pragma GCC unroll 4
    for (int i = 0; i < 16; i += 4) {          /* u[i + j]: 128-bit lane k = column 4k + j */
        u[i] = (__m512)_mm512_unpacklo_pd((__m512d)t[i], (__m512d)t[i + 2]);     /* of rows */
        u[i + 1] = (__m512)_mm512_unpackhi_pd((__m512d)t[i], (__m512d)t[i + 2]); /* i..i+3 */
        u[i + 2] = (__m512)_mm512_unpacklo_pd((__m512d)t[i + 1], (__m512d)t[i + 3]);
        u[i + 3] = (__m512)_mm512_unpackhi_pd((__m512d)t[i + 1], (__m512d)t[i + 3]);
    }
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {              /* gather column 4k + j's four 128-bit pieces */
        const __m512 a = _mm512_shuffle_f32x4(u[j], u[4 + j], 0x88);
        const __m512 b = _mm512_shuffle_f32x4(u[j], u[4 + j], 0xdd);
        const __m512 c = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0x88);
        const __m512 d = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0xdd);
        r[j] = (VEC)_mm512_shuffle_f32x4(a, c, 0x88);
        r[8 + j] = (VEC)_mm512_shuffle_f32x4(a, c, 0xdd);
        r[4 + j] = (VEC)_mm512_shuffle_f32x4(b, d, 0x88);
        r[12 + j] = (VEC)_mm512_shuffle_f32x4(b, d, 0xdd);
    }
}
#else
/* r (VLEN vectors) = its transpose, in registers: log2(VLEN) butterfly stages of
 * two-input shuffles; stage b swaps the b x b off-diagonal sub-blocks of every 2b x 2b
 * block. */
static inline __attribute__((always_inline)) void FN(transpose_regs)(VEC *r)
{
    const FN(ivec) iota = FN(iota)();
#pragma GCC unroll 4
    for (int b = 1; b < VLEN; b *= 2) {
        /* indices into the concatenation (row i, row i+b): constants after folding (masks
         * built lane by lane were not folded: ~4x slower transposes) */
        const FN(ivec) up = (FN(ivec))((iota & (ITYPE)b) != 0) & (ITYPE)(VLEN - b);
        const FN(ivec) lo_mask = iota + up, hi_mask = iota + up + (ITYPE)b;
#pragma GCC unroll 16
        for (int i = 0; i < VLEN; i++) {
            if (i & b) continue;
            VEC a = r[i], c = r[i + b];
            r[i] = __builtin_shuffle(a, c, lo_mask);
            r[i + b] = __builtin_shuffle(a, c, hi_mask);
        }
    }
}
#endif

/* dst (VLEN x VLEN, rows ldd apart) = transpose of src (VLEN x VLEN, rows lds apart). */
static inline void FN(transpose_block)(const T *src, long lds, T *dst, long ldd)
{
    VEC r[VLEN];
#pragma GCC unroll 16
    for (int i = 0; i < VLEN; i++) r[i] = LOADU(src + i * lds);
    FN(transpose_regs)(r);
#pragma GCC unroll 16
    for (int i = 0; i < VLEN; i++) STOREU(dst + i * ldd, r[i]);
}

/* wt (K x M, rows ldt apart) = transpose of w (M x K), whole VLEN x VLEN blocks
 * vectorised, edges scalar. */
static void FN(transpose)(const T *w, long M, long K, T *wt, long ldt)
{
    const long Mb = M / VLEN * VLEN, Kb = K / VLEN * VLEN;
    for (long m = 0; m < Mb; m += VLEN)
        for (long k = 0; k < Kb; k += VLEN) FN(transpose_block)(w + m * K + k, K, wt + k * ldt + m, ldt);
    for (long m = 0; m < M; m++) {
        const long k0 = m < Mb ? Kb : 0;   /* rows already done have only the k edge left */
        for (long k = k0; k < K; k++) wt[k * ldt + m] = w[m * K + k];
    }
}

/* Tap order of the channel-vector tiles: k = (kh * CG + c) * KW + kw, kernel rows outermost,
 * so the taps of the kernel rows that fall into an output row's zero padding rows are one
 * contiguous run of k, which phase_task_cv leaves out (pixel-vector tiles keep the weights'
 * own order, k = (c * KH + kh) * KW + kw). */
static inline long FN(cv_tap)(const gconv_params *p, long c, long kh, long kw)
{
    return (kh * p->CG + c) * p->KW + kw;
}

/* Pack W (G, M, K) into panels A~[g][panel][k][panel_w] (panel_w = MR output channels for
 * pixel-vector tiles, NV*VLEN for channel-vector tiles), zero rows beyond M. A panel is the
 * transpose of panel_w rows of the group's M x K block: whole-vector-wide panels are
 * transposed straight into place, or, for channel-vector tiles (cv_tap order), into `tmp`
 * and their rows moved in that order; narrower ones go through a transpose of the whole
 * block into `tmp` (K * max(M, panel_w) elements), their rows copied out of it. */
static void FN(gemm_pack_weights)(const gconv_params *p, const T *w, T *wp, T *tmp)
{
    const long PWD = p->panel_w, K = p->K, M = p->M;
    for (long g = 0; g < p->G; g++) {
        if (PWD % VLEN == 0) {
            for (long pa = 0; pa < p->n_panels; pa++) {
                T *dst = wp + (g * p->n_panels + pa) * K * PWD;
                const long m0 = pa * PWD, cnt = (M - m0 < PWD) ? M - m0 : PWD;
                const T *wm = w + (g * M + m0) * K;
                if (p->oc_vec) {
                    /* channel-vector tiles take the taps in cv_tap order: transpose in
                     * the weights' order into tmp, then move whole rows */
                    const long KH = p->KH, KW = p->KW;
                    FN(transpose)(wm, cnt, K, tmp, PWD);
                    T *d = dst;
                    for (long kh = 0; kh < KH; kh++)
                        for (long c = 0; c < p->CG; c++)
                            for (long kw = 0; kw < KW; kw++, d += PWD) {
                                const T *row = tmp + ((c * KH + kh) * KW + kw) * PWD;
                                for (long i = 0; i < PWD; i += VLEN) STOREU(d + i, LOADU(row + i));
                            }
                } else {
                    FN(transpose)(wm, cnt, K, dst, PWD);
                }
                for (long k = 0; k < K && cnt < PWD; k++)
                    for (long i = cnt; i < PWD; i++) dst[k * PWD + i] = 0;
            }
            continue;
        }
        FN(transpose)(w + g * M * K, M, K, tmp, M);
        for (long pa = 0; pa < p->n_panels; pa++) {
            T *dst = wp + (g * p->n_panels + pa) * K * PWD;
            const long m0 = pa * PWD, cnt = (M - m0 < PWD) ? M - m0 : PWD;
            for (long k = 0; k < K; k++) {
                const T *src = tmp + k * M + m0;
                T *d = dst + k * PWD;
                for (long i = 0; i < cnt; i++) d[i] = src[i];
                for (long i = cnt; i < PWD; i++) d[i] = 0;
            }
        }
    }
}

/* How vector v of every padded input row is made: it holds input columns [s, s + VLEN),
 * s = v*VLEN - PL, zero outside [0, W). Inside the row it is a plain load; otherwise a load
 * from `from`, a lane shift (pick: lane l = element pick[l] of (zeros, load)) and a mask
 * (keep), which also covers all-padding vectors (keep = 0). */
typedef struct {
    long from;
    int plain;
    FN(ivec) pick, keep;
} FN(col_vec);

static FN(col_vec) FN(plan_col_vec)(long v, long PL, long W)
{
    const FN(ivec) iota = FN(iota)();
    const long s = v * VLEN - PL;
    long from = s < 0 ? 0 : s;
    if (from + VLEN > W) from = W > VLEN ? W - VLEN : 0;   /* read inside the row if it can */
    FN(col_vec) cv;
    cv.from = from;
    cv.plain = (s >= 0 && s + VLEN <= W);
    cv.pick = iota + (ITYPE)(VLEN + s - from);      /* out of [0, 2*VLEN): masked by keep */
    cv.keep = (iota + (ITYPE)s >= 0) & (iota + (ITYPE)s < (ITYPE)W);
    return cv;
}

static inline __attribute__((always_inline)) VEC FN(col_load)(const T *xrow, FN(col_vec) cv)
{
    if (cv.plain) return LOADU(xrow + cv.from);
    VEC x = __builtin_shuffle((VEC){0}, LOADU(xrow + cv.from), cv.pick);
    return (VEC)((FN(ivec))x & cv.keep);
}

/* The same vector for a row near the end of the input, read element by element. */
static VEC FN(col_load_exact)(const T *xrow, long v, long PL, long W)
{
    T t[VLEN];
    for (long l = 0; l < VLEN; l++) {
        const long col = v * VLEN - PL + l;
        t[l] = (col >= 0 && col < W) ? xrow[col] : (T)0;
    }
    return LOADU(t);
}

typedef struct {
    long from;                  /* first input element read, from the channel's start */
    FN(ivec) pick, keep;        /* lane l = element pick[l] of the load, kept where keep[l] */
} FN(plane_vec);

/* (Not inlined: inlined into fill_phase_planes it made the row path 1.6x slower.) */
static __attribute__((noinline)) void FN(fill_flat_planes)(const gconv_params *p,
                                                         const T *x_ng, long oh0, T *planes)
{
    const long H = p->H, W = p->W, PW = p->PW, HW = H * W;
    const long n_vecs = FN(ceil_div)(p->PROWS * PW, VLEN);
    const long plane = FN(plane_stride)(p), ih0 = oh0 - p->PT;
    /* src[e]: the input element (from the channel's start) plane element e holds, or -1 */
    ITYPE src[FLAT_PLANE_VECS * VLEN];
    for (long e = 0; e < n_vecs * VLEN; e++) src[e] = -1;
    for (long i = 0; i < p->PROWS; i++) {
        const long ih = ih0 + i;
        if (ih < 0 || ih >= H) continue;
        for (long iw = 0; iw < W; iw++) src[i * PW + p->PL + iw] = (ITYPE)(ih * W + iw);
    }
    FN(plane_vec) rec[FLAT_PLANE_VECS];
    for (long u = 0; u < n_vecs; u++) {
        const ITYPE *s = src + u * VLEN;
        long first = -1;
        for (long l = 0; l < VLEN && first < 0; l++) first = s[l];
        /* the window [from, from + VLEN) holds every valid lane and stays inside the channel */
        const long from = first < 0 ? 0 : (first < HW - VLEN ? first : HW - VLEN);
        const FN(ivec) sv = *(const FN(uivec) *)s;
        rec[u].from = from;
        rec[u].keep = sv >= 0;
        rec[u].pick = (sv - (ITYPE)from) & rec[u].keep;
    }
    for (long u = 0; u < n_vecs; u++) {         /* one recipe in registers, every channel */
        const T *xu = x_ng + rec[u].from;
        const FN(ivec) pick = rec[u].pick, keep = rec[u].keep;
        /* the loads hop from channel to channel, which the hardware prefetcher does not
         * follow: fetch recipe u+4's lines ahead (AlexNet -0.7 %, dense 3x3 -0.3 %) */
        const T *ahead = x_ng + rec[u + 4 < n_vecs ? u + 4 : u].from;
        for (long c = 0; c < p->CG; c++) {
            __builtin_prefetch(ahead + c * HW, 0, 3);
            const VEC v = __builtin_shuffle(LOADU(xu + c * HW), pick);
            STOREU(planes + c * plane + u * VLEN, (VEC)((FN(ivec))v & keep));
        }
    }
}

/* Copy the input rows that output rows [oh0, oh0 + PROWS - halo) need, zero-padded, into
 * the phase planes planes[c][a][b][i][j] = xpad[c][SH*(oh0 + i) + a][SW*j + b]
 * (xpad = the input with PT rows / PL columns of zeros before it). Plane rows are written
 * in whole vectors built in registers (col_load), never reloading freshly stored data
 * (partly overlapping reloads stall store forwarding). The work goes in column-vector
 * passes, the last vector first, each a straight loop over the rows with one recipe
 * (col_vec): only a row's last vector spills past it, into the next row's first vector,
 * which the final pass writes, or into the plane's slack. SW == 2 de-interleaves in
 * registers; larger strides go row by row through `rowbuf` (SW*PW + 2*VLEN elements). */
static void FN(fill_phase_planes)(const gconv_params *p, const T *x_ng, long oh0, T *planes,
                                  T *rowbuf)
{
    if (p->flat_planes) {               /* the planner chose the flat fill (above) */
        FN(fill_flat_planes)(p, x_ng, oh0, planes);
        return;
    }
    const long H = p->H, W = p->W, PW = p->PW, PR = p->PROWS, SH = p->SH, SW = p->SW;
    const long PL = p->PL, plane = FN(plane_stride)(p), CHW = p->CG * H * W;
    const long row_vecs = FN(ceil_div)(PW, VLEN);               /* vectors per plane row */
    const long in_vecs = FN(ceil_div)(SW * PW, VLEN);           /* per padded input row */
    const long reach = W > VLEN ? W : VLEN;                     /* a row's loads read < reach */
    const FN(ivec) pick_even = FN(iota)() * 2, pick_odd = pick_even + 1;
    for (long c = 0; c < p->CG; c++) {
        const T *xc = x_ng + c * H * W;
        for (long a = 0; a < SH; a++) {
            T *pa = planes + (c * SH + a) * SW * plane;     /* planes (c, a, 0..SW-1) */
            /* rows [i0, i1) hold input rows ih = ih0 + SH*i in [0, H); the rest are zero */
            const long ih0 = SH * oh0 + a - p->PT;
            long i0 = ih0 >= 0 ? 0 : FN(ceil_div)(-ih0, SH);
            long i1 = ih0 < H ? FN(ceil_div)(H - ih0, SH) : 0;
            if (i1 > PR) i1 = PR;
            if (i0 > i1) i0 = i1;
            /* rows from i_exact on may not read past W (the group's last input rows) */
            long i_exact = i1;
            while (i_exact > i0 && (c * H + ih0 + SH * (i_exact - 1)) * W + reach > CHW) i_exact--;
            if (SW > 2) {
                for (long i = 0; i < PR; i++) {
                    const T *xrow = xc + (ih0 + SH * i) * W;
                    for (long u = 0; u < in_vecs; u++)
                        STOREU(rowbuf + u * VLEN, i < i0 || i >= i1 ? (VEC){0}
                               : i >= i_exact ? FN(col_load_exact)(xrow, u, PL, W)
                               : FN(col_load)(xrow, FN(plan_col_vec)(u, PL, W)));
                    for (long b = 0; b < SW; b++)
                        for (long j = 0; j < PW; j++) pa[b * plane + i * PW + j] = rowbuf[SW * j + b];
                }
                continue;
            }
            for (long v = row_vecs - 1; v >= 0; v--) {
                T *d = pa + v * VLEN;
                for (long i = 0; i < i0; i++)
                    for (long b = 0; b < SW; b++) STOREU(d + b * plane + i * PW, (VEC){0});
                if (SW == 1) {
                    const FN(col_vec) cv = FN(plan_col_vec)(v, PL, W);
                    for (long i = i0; i < i_exact; i++)
                        STOREU(d + i * PW, FN(col_load)(xc + (ih0 + SH * i) * W, cv));
                    for (long i = i_exact; i < i1; i++)
                        STOREU(d + i * PW, FN(col_load_exact)(xc + (ih0 + SH * i) * W, v, PL, W));
                } else {
                    const FN(col_vec) lo = FN(plan_col_vec)(2 * v, PL, W);
                    const FN(col_vec) hi = FN(plan_col_vec)(2 * v + 1, PL, W);
                    for (long i = i0; i < i1; i++) {
                        const T *xrow = xc + (ih0 + SH * i) * W;
                        VEC x0, x1;
                        if (i < i_exact) {
                            x0 = FN(col_load)(xrow, lo);
                            x1 = FN(col_load)(xrow, hi);
                        } else {
                            x0 = FN(col_load_exact)(xrow, 2 * v, PL, W);
                            x1 = FN(col_load_exact)(xrow, 2 * v + 1, PL, W);
                        }
                        STOREU(d + i * PW, __builtin_shuffle(x0, x1, pick_even));
                        STOREU(d + plane + i * PW, __builtin_shuffle(x0, x1, pick_odd));
                    }
                }
                for (long i = i1; i < PR; i++)
                    for (long b = 0; b < SW; b++) STOREU(d + b * plane + i * PW, (VEC){0});
            }
        }
    }
}

/* Zero the slack after each of n_planes planes and `tail` elements after the last: the
 * micro-kernels read there (into lanes they discard); zeros keep that read harmless. */
static void FN(zero_slack)(T *planes, long n_planes, long stride, long used, long tail)
{
    for (long q = 0; q < n_planes; q++)
        for (long t = used; t < stride; t++) planes[q * stride + t] = 0;
    for (long t = 0; t < tail; t++) planes[n_planes * stride + t] = 0;
}

/* torch.clamp: min(max(v, lo), hi), NaN in v, lo or hi giving NaN (lo > hi gives hi). */
static inline T FN(clamp)(T v, T lo, T hi)
{
    v = v < lo ? lo : v;
    v = v > hi ? hi : v;
    return (lo != lo || hi != hi) ? lo + hi : v;
}

/* Epilogue on an m x n block of C (rows ldc apart) that holds finished sums:
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
            /* NaN stays NaN, as in torch: compare so that a NaN fails the test */
            case GCONV_ACT_RELU: v = v < 0 ? 0 : v; break;
            case GCONV_ACT_RELU6: v = v < 0 ? 0 : (v > 6 ? 6 : v); break;
            case GCONV_ACT_LEAKY_RELU: v = v > 0 ? v : alpha * v; break;   /* torch: 0 * inf is NaN */
            case GCONV_ACT_CLAMP: v = FN(clamp)(v, lo, hi); break;
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

/* d[0, n) = s[0, n), d[n, len) = 0; len a multiple of VLEN. Whole vectors; the vector
 * holding the end of s by a masked load where the ISA has one (else element-wise), so
 * nothing past s[n) is read. (An element-wise loop here was most of a tiny call's time.) */
static inline void FN(copy_zero_padded)(T *restrict d, const T *restrict s, long n, long len)
{
    long t = 0;
    for (; t + VLEN <= n; t += VLEN) {
        VEC v = LOADU(s + t);
        __asm__("" : "+v"(v));     /* keeps GCC from making the loop a memmove call */
        STOREU(d + t, v);
    }
    if (t < n) {
#if HAVE_MASKED_STORES
        STOREU(d + t, MASK_LOAD((VEC){0}, (FN(mask))((1u << (n - t)) - 1), s + t));
#else
        for (long i = 0; i < VLEN; i++) d[t + i] = t + i < n ? s[t + i] : (T)0;
#endif
        t += VLEN;
    }
    for (; t < len; t += VLEN) STOREU(d + t, (VEC){0});
}

/* One task of the pointwise (direct_b) kind: image n, group g, an MB block of output
 * channels, an NC tile of pixels; B read in place from the input (x_left: elements of x
 * from x_ng to its end). */
static void FN(pointwise_task)(const gconv_params *p, const T *x_ng, long x_left,
                               const T *w_g, const T *b_g, const T *r_ng, T *y_ng,
                               long m_begin, long m_end, long pt, T *scratch)
{
    const int MR = p->MR, NV = p->NV;
    const long NR = (long)NV * VLEN, K = p->K, P = p->P;
    /* the ragged last chunk of pixels (if any) runs on the narrowest tile that covers it */
    const FN(ukr_fn) ukr = (FN(ukr_fn))p->ukr, tail_ukr = (FN(ukr_fn))p->tail_ukr;
    const int tail_nv = p->tail_nv;
    long *off = (long *)scratch;              /* off[k] = k*P: rows of the input */
    long *toff = off + K;                     /* toff[k] = k*NR: rows of the tail sliver */
    T *tail = scratch + OFFSET_ELEMS(K);
    for (long k = 0; k < K; k++) { off[k] = k * P; toff[k] = k * NR; }
    const long p0 = pt * p->NC;
    const long nc = (P - p0 < p->NC) ? P - p0 : p->NC;

    for (long k0 = 0; k0 < K; k0 += p->KC) {
        const long kc = (K - k0 < p->KC) ? K - k0 : p->KC;
        const int first = (k0 == 0), last = (k0 + kc == K);
        for (long j = 0; j < nc; j += NR) {
            const long n_cols = (nc - j < NR) ? nc - j : NR;
            const T *B;
            const long *bo;
            FN(ukr_fn) f = ukr;
            if (n_cols == NR) {
                B = x_ng + p0 + j; bo = off + k0;
            } else {
                /* The ragged tail: its tile reads tail_nv vectors per row, past the row's
                 * n_cols pixels into the next channel's (lanes whose results are never
                 * stored). In place while that stays inside x; only the last chunk of
                 * the array's last channels is copied, so nothing past x is ever read. */
                f = tail_ukr;
                if ((k0 + kc - 1) * P + p0 + j + (long)tail_nv * VLEN <= x_left) {
                    B = x_ng + p0 + j; bo = off + k0;
                } else {
                    for (long kk = 0; kk < kc; kk++)
                        FN(copy_zero_padded)(tail + kk * NR, x_ng + (k0 + kk) * P + p0 + j,
                                             n_cols, NR);
                    B = tail; bo = toff;
                }
            }
            for (long m0 = m_begin; m0 < m_end; m0 += MR) {
                const int m = (int)((m_end - m0 < MR) ? m_end - m0 : MR);
                T *C = y_ng + m0 * P + p0 + j;
                f(kc, w_g + (m0 / MR) * K * MR + k0 * MR, B, bo, C, P, m, (int)n_cols,
                  first && b_g ? b_g + m0 : NULL, !first, NULL);
                if (last)
                    FN(epilogue_block)(p, C, P, r_ng ? r_ng + m0 * P + p0 + j : NULL, m, n_cols);
            }
        }
    }
}

/* off[k] = where B row k = tap (c, kh, kw) starts in the phase planes (see gemm_plan), k in
 * the weights' order, or in cv_tap order for channel-vector tiles. The KH*KW offsets inside
 * one channel's planes are computed once (into off[K..2K), free scratch); channels only add
 * a stride (runs once per task: K divisions by the runtime strides cost ~1 % on dense
 * layers). */
static void FN(tap_offsets)(const gconv_params *p, long *off)
{
    const long SH = p->SH, SW = p->SW, PSTR = FN(plane_stride)(p), KH = p->KH, KW = p->KW;
    long *base = off + p->K;
    for (long kh = 0; kh < KH; kh++)
        for (long kw = 0; kw < KW; kw++) {
            const long a = (kh * p->DH) % SH, b = (kw * p->DW) % SW;
            base[kh * KW + kw] = (a * SW + b) * PSTR + (kh * p->DH / SH) * p->PW + kw * p->DW / SW;
        }
    const long cstep = SH * SW * PSTR;
    for (long c = 0; c < p->CG; c++)
        for (long kh = 0; kh < KH; kh++)
            for (long kw = 0; kw < KW; kw++) {
                const long k = p->oc_vec ? FN(cv_tap)(p, c, kh, kw) : (c * KH + kh) * KW + kw;
                off[k] = base[kh * KW + kw] + c * cstep;
            }
}

/* Where task `task` sits: image n, group g, output-channel block mb, pixel tile / row block pt. */
static inline void FN(task_pos)(const gconv_params *p, long task, long *n, long *g, long *mb,
                                long *pt)
{
    const long per_img_g = p->n_mblocks * p->n_ptiles;
    const long ng = task / per_img_g, rest = task % per_img_g;
    *mb = rest / p->n_ptiles; *pt = rest % p->n_ptiles;
    *n = ng / p->G; *g = ng % p->G;
}

/* Software prefetch of the next task's data while this task's micro-kernels run: the input
 * rows its phase-plane fill reads and the output block it writes. On batches of large
 * images both live in L3 / DRAM and the fill and the output writes wait on every line (30 %
 * and 20 % of b8_resnext_g32_56); spread over the micro-kernel calls, the prefetches hide
 * behind FMA work (gemm_plan turns them on only for such calls). The next task of this
 * thread is guessed as task + pf_stride (the next task of its chunk, see gemm_plan); a
 * wrong guess costs only bandwidth, never results. Two streams of runs: [0] input rows
 * (read), [1] output rows (write). */
typedef struct {
    const char *base[2];
    long run[2], stride[2], n_runs[2];    /* bytes per run, bytes between runs, runs */
    int s;                                /* current stream; 2 = done */
    long r;                               /* current run */
    const char *cur, *end;                /* the current run's next line and its end */
    long per_call;                        /* lines per pf_step */
} FN(prefetcher);

static void FN(pf_open_run)(FN(prefetcher) *pf)
{
    while (pf->s < 2 && pf->r >= pf->n_runs[pf->s]) { pf->s++; pf->r = 0; }
    if (pf->s == 2) return;
    const char *a = pf->base[pf->s] + pf->r * pf->stride[pf->s];
    pf->cur = (const char *)((unsigned long)a & ~63UL);
    pf->end = a + pf->run[pf->s];
}

/* Set up the prefetches of the task after `task` over `n_calls` micro-kernel calls. */
static void FN(pf_init)(FN(prefetcher) *pf, const gconv_params *p, const T *x, const T *y,
                        long task, long n_calls)
{
    const long S = (long)sizeof(T), next = task + p->pf_stride;
    pf->s = 2; pf->per_call = 0;
    if (p->pf_stride == 0 || next >= p->n_tasks || n_calls < 1) return;
    long n, g, mb, pt, n1, g1, mb1, pt1;
    FN(task_pos)(p, task, &n, &g, &mb, &pt);
    FN(task_pos)(p, next, &n1, &g1, &mb1, &pt1);
    /* input rows [ih0, ih1) of the group's CG channels: already here if only mb differs */
    const long oh0 = pt1 * p->NC, rb = (p->OH - oh0 < p->NC) ? p->OH - oh0 : p->NC;
    long ih0 = p->SH * oh0 - p->PT, ih1 = p->SH * (oh0 + rb - 1) + (p->KH - 1) * p->DH - p->PT + 1;
    if (ih0 < 0) ih0 = 0;
    if (ih1 > p->H) ih1 = p->H;
    const int same_in = (n1 == n && g1 == g && pt1 == pt);
    pf->base[0] = (const char *)(x + ((n1 * p->C_in + g1 * p->CG) * p->H + ih0) * p->W);
    pf->run[0] = (ih1 - ih0) * p->W * S;
    pf->stride[0] = p->H * p->W * S;
    pf->n_runs[0] = (same_in || ih1 <= ih0) ? 0 : p->CG;
    /* output rows [oh0, oh0 + rb) of the block's channels */
    const long m0 = mb1 * p->MB, m1 = (m0 + p->MB < p->M) ? m0 + p->MB : p->M;
    pf->base[1] = (const char *)(y + (n1 * p->C_out + g1 * p->M + m0) * p->P + oh0 * p->OW);
    pf->run[1] = rb * p->OW * S;
    pf->stride[1] = p->P * S;
    pf->n_runs[1] = m1 - m0;
    const long lines = pf->n_runs[0] * (pf->run[0] / 64 + 2) + pf->n_runs[1] * (pf->run[1] / 64 + 2);
    pf->per_call = FN(ceil_div)(lines, n_calls);
    pf->s = 0; pf->r = 0;
    FN(pf_open_run)(pf);
}

/* Issue the next per_call prefetches (called before each micro-kernel call): straight
 * loops over runs, so the bookkeeping stays small next to short micro-kernel calls. */
static inline void FN(pf_step)(FN(prefetcher) *pf)
{
    long left = pf->per_call;
    while (left > 0 && pf->s < 2) {
        long n = (pf->end - pf->cur + 63) / 64;
        if (n > left) n = left;
        const char *c = pf->cur;
        if (pf->s == 0)
            for (long i = 0; i < n; i++) __builtin_prefetch(c + 64 * i, 0, 2);
        else
            for (long i = 0; i < n; i++) __builtin_prefetch(c + 64 * i, 1, 2);
        pf->cur = c + 64 * n;
        left -= n;
        if (pf->cur >= pf->end) { pf->r++; FN(pf_open_run)(pf); }
    }
}

/* One task of the phase-plane kind (see gemm_plan): image n, group g, an MB block of
 * output channels, output rows [oh0, oh0 + NC). */
static void FN(phase_task)(const gconv_params *p, const T *x_ng, const T *w_g,
                           const T *b_g, const T *r_ng, T *y_ng, long m_begin, long m_end,
                           long rt, T *scratch, FN(prefetcher) *pf)
{
    const int MR = p->MR, NV = p->NV;
    const long NR = (long)NV * VLEN, K = p->K, PW = p->PW, PR = p->PROWS, OW = p->OW;
    const long SH = p->SH, SW = p->SW;
    const FN(ukr_fn) ukr = FN(find_ukr)(MR, NV);
    const long oh0 = rt * p->NC;
    const long rb = (p->OH - oh0 < p->NC) ? p->OH - oh0 : p->NC;
    const long qn = (rb - 1) * PW + OW;             /* wide pixels holding valid outputs */
    const long QPAD = p->QPAD;
    const int tail_v = FN(tail_nv)(MR, (int)FN_CEIL(qn % NR, VLEN));
    const long tail_nr = (long)tail_v * VLEN;
    const FN(ukr_fn) tail_ukr = FN(find_ukr)(MR, tail_v);

    long *off = (long *)scratch;
    T *planes = scratch + OFFSET_ELEMS(K);
    const long PSTR = FN(plane_stride)(p), plane_elems = p->CG * SH * SW * PSTR;
    T *stage = planes + plane_elems + NR + 64;      /* unused with direct_out */
    const int direct = p->direct_out;

    FN(tap_offsets)(p, off);
    FN(fill_phase_planes)(p, x_ng, oh0, planes, stage + (direct ? 0 : p->MB * QPAD));
    FN(zero_slack)(planes, plane_elems / PSTR, PSTR, PR * PW, NR + 64);

    FN(wide_map) wm = {0, PW, OW, rb};
    for (long k0 = 0; k0 < K; k0 += p->KC) {
        const long kc = (K - k0 < p->KC) ? K - k0 : p->KC;
        for (long j = 0; j < qn; j += NR) {
            const FN(ukr_fn) f = (qn - j >= NR) ? ukr : tail_ukr;
            const int ncols = (int)((qn - j >= NR) ? NR : tail_nr);
            wm.q0 = j;
            for (long m0 = m_begin; m0 < m_end; m0 += MR) {
                const int m = (int)((m_end - m0 < MR) ? m_end - m0 : MR);
                FN(pf_step)(pf);
                T *C = direct ? y_ng + (m0 * p->OH + oh0) * OW : stage + (m0 - m_begin) * QPAD + j;
                f(kc, w_g + (m0 / MR) * K * MR + k0 * MR, planes + j, off + k0, C,
                  direct ? p->P : QPAD, m, ncols, (k0 == 0 && b_g) ? b_g + m0 : NULL, k0 > 0,
                  direct ? &wm : NULL);
            }
        }
    }
    /* wide rows -> output rows (unless written directly), then the epilogue while they are
     * in L1. Output rows [oh0, oh0 + rb) of a channel are one run of y, copied in whole
     * vectors: a row's last vector may run into the following rows, copied right after,
     * but never past the run (beyond it is another task's output). */
    const int epi = (r_ng != NULL || p->act != GCONV_ACT_NONE);
    for (long m0 = m_begin; m0 < m_end; m0++) {
        const T *src = stage + (m0 - m_begin) * QPAD;
        T *dst = y_ng + (m0 * p->OH + oh0) * OW;
        if (!direct)
            for (long r = 0; r < rb; r++) {
                const long room = (rb - r) * OW;
                long q = 0;
                for (; q < OW && q + VLEN <= room; q += VLEN)
                    STOREU(dst + r * OW + q, LOADU(src + r * PW + q));
                for (; q < OW; q++) dst[r * OW + q] = src[r * PW + q];
            }
        if (epi)
            FN(epilogue_block)(p, dst, rb * OW, r_ng ? r_ng + (m0 * p->OH + oh0) * OW : NULL, 1, rb * OW);
    }
}

/* Kernel rows [*kh0, *kh1) of output row oh read input rows; the others read the zero
 * padding above or below the input (an empty range when all do). */
static void FN(rows_inside)(const gconv_params *p, long oh, long *kh0, long *kh1)
{
    const long top = p->PT - oh * p->SH;            /* padding rows above the first tap */
    const long below = p->H - 1 + top;              /* last input row, from the first tap */
    long lo = top > 0 ? FN(ceil_div)(top, p->DH) : 0;
    long hi = below < 0 ? 0 : below / p->DH + 1;
    if (hi > p->KH) hi = p->KH;
    if (lo > hi) lo = hi;
    *kh0 = lo; *kh1 = hi;
}

/* The channel-vector variant of phase_task: same phase planes and tap offsets; tiles of MR
 * pixels along one output row x NR output channels, written pixel-major into a stage that
 * holds the whole task (rb*OW pixels). Output rows [oh0, oh0 + rb) of a channel are one
 * contiguous run of y, so the stage goes to NCHW in VLEN x VLEN register transposes. */
static void FN(phase_task_cv)(const gconv_params *p, const T *x_ng, const T *w_g,
                              const T *b_g, const T *r_ng, T *y_ng, long m_begin, long m_end,
                              long rt, T *scratch, FN(prefetcher) *pf)
{
    const int MP = p->MR, NV = p->NV;
    const long NR = (long)NV * VLEN, K = p->K, PW = p->PW, PR = p->PROWS, OW = p->OW, P = p->P;
    const long SH = p->SH, SW = p->SW;
    const FN(ukrc_fn) ukrc = FN(find_ukrc)(MP, NV);
    const long oh0 = rt * p->NC;
    const long rb = (p->OH - oh0 < p->NC) ? p->OH - oh0 : p->NC;
    const long Q = rb * OW;                         /* output pixels of this task */

    long *off = (long *)scratch;
    T *planes = scratch + OFFSET_ELEMS(K);
    const long PSTR = FN(plane_stride)(p), plane_elems = p->CG * SH * SW * PSTR;
    T *stage = planes + plane_elems + MP + 64;      /* pixel-major: stage[q*NR + channel] */
    const long stage_px = FN(ceil_div)(Q, VLEN) * VLEN + MP;
    T *bias_pad = stage + stage_px * NR;            /* NR bias values, zero-padded */
    T *block = bias_pad + NR;                       /* VLEN x VLEN, ragged transposes */

    FN(tap_offsets)(p, off);
    FN(fill_phase_planes)(p, x_ng, oh0, planes, block + VLEN * VLEN);
    FN(zero_slack)(planes, plane_elems / PSTR, PSTR, PR * PW, MP + 64);

    const int epi = (r_ng != NULL || p->act != GCONV_ACT_NONE);
    for (long oc0 = m_begin; oc0 < m_end; oc0 += NR) {
        const long n_oc = (m_end - oc0 < NR) ? m_end - oc0 : NR;
        const T *A = w_g + (oc0 / NR) * K * NR;
        if (b_g)
            for (long c = 0; c < NR; c++) bias_pad[c] = c < n_oc ? b_g[oc0 + c] : (T)0;
        /* a ragged last tile of a row spills into the next row's pixels, computed later.
         * Kernel rows that read only zero padding rows are left out: in cv_tap order they
         * are the ends of k (7x7 images: 10 % of the products, AlexNet's 27x27: 4 %) */
        for (long r = 0; r < rb; r++) {
            long kh0, kh1;
            FN(rows_inside)(p, oh0 + r, &kh0, &kh1);
            const long k0 = kh0 * p->CG * p->KW, kn = (kh1 - kh0) * p->CG * p->KW;
            for (long ow0 = 0; ow0 < OW; ow0 += MP) {
                FN(pf_step)(pf);
                ukrc(kn, A + k0 * NR, planes + r * PW + ow0, off + k0,
                     stage + (r * OW + ow0) * NR, b_g ? bias_pad : NULL);
            }
        }
        /* pixel-major -> NCHW: channel c's outputs are y[c][oh0*OW, oh0*OW + Q) */
        for (long c0 = 0; c0 < n_oc; c0 += VLEN) {
            const long n_ch = (n_oc - c0 < VLEN) ? n_oc - c0 : VLEN;
            T *y_c = y_ng + (oc0 + c0) * P + oh0 * OW;
            for (long q0 = 0; q0 < Q; q0 += VLEN) {
                const long n_px = (Q - q0 < VLEN) ? Q - q0 : VLEN;
                if (n_ch == VLEN && n_px == VLEN) {
                    FN(transpose_block)(stage + q0 * NR + c0, NR, y_c + q0, P);
                } else {     /* stores must stay inside this task's rows and channels */
                    FN(transpose_block)(stage + q0 * NR + c0, NR, block, VLEN);
                    for (long c = 0; c < n_ch; c++)
                        for (long i = 0; i < n_px; i++) y_c[c * P + q0 + i] = block[c * VLEN + i];
                }
            }
            for (long c = 0; c < n_ch && epi; c++)
                FN(epilogue_block)(p, y_c + c * P, Q, r_ng ? r_ng + (oc0 + c0 + c) * P + oh0 * OW : NULL, 1, Q);
        }
    }
}

/* One task: image n, group g, an MB block of output channels, a pixel tile (pointwise) or
 * a block of output rows (phase planes).
 *   x: (N, C_in, H, W) contiguous          wp: packed weights (gemm_pack_weights)
 *   bias: (C_out,) or NULL                 res: like y, or NULL
 *   y: (N, C_out, OH, OW) contiguous       scratch: p->scratch_elems elements
 */
static void FN(gemm_task)(const gconv_params *p, const T *x, const T *wp, const T *bias,
                          const T *res, T *y, long task, T *scratch)
{
    long n, g, mb, pt;
    FN(task_pos)(p, task, &n, &g, &mb, &pt);
    const T *x_ng = x + (n * p->C_in + g * p->CG) * p->H * p->W;
    T *y_ng = y + (n * p->C_out + g * p->M) * p->P;
    const T *r_ng = res ? res + (n * p->C_out + g * p->M) * p->P : NULL;
    const T *w_g = wp + g * p->n_panels * p->K * p->panel_w;
    const T *b_g = bias ? bias + g * p->M : NULL;
    const long m_begin = mb * p->MB;
    const long m_end = (m_begin + p->MB < p->M) ? m_begin + p->MB : p->M;
    if (p->direct_b) {
        FN(pointwise_task)(p, x_ng, (p->N * p->C_in - (n * p->C_in + g * p->CG)) * p->H * p->W,
                           w_g, b_g, r_ng, y_ng, m_begin, m_end, pt, scratch);
        return;
    }
    /* micro-kernel calls of this task, to spread the next task's prefetches over */
    const long oh0 = pt * p->NC, rb = (p->OH - oh0 < p->NC) ? p->OH - oh0 : p->NC;
    const long mblk = m_end - m_begin;
    FN(prefetcher) pf;
    if (p->oc_vec) {
        FN(pf_init)(&pf, p, x, y, task,
                    FN(ceil_div)(mblk, p->panel_w) * rb * FN(ceil_div)(p->OW, p->MR));
        FN(phase_task_cv)(p, x_ng, w_g, b_g, r_ng, y_ng, m_begin, m_end, pt, scratch, &pf);
    } else {
        const long qn = (rb - 1) * p->PW + p->OW, NR = (long)p->NV * VLEN;
        FN(pf_init)(&pf, p, x, y, task,
                    FN(ceil_div)(p->K, p->KC) * FN(ceil_div)(qn, NR) * FN(ceil_div)(mblk, p->MR));
        FN(phase_task)(p, x_ng, w_g, b_g, r_ng, y_ng, m_begin, m_end, pt, scratch, &pf);
    }
}

#undef OFFSET_ELEMS
#undef VEC
#undef LOADU
#undef STOREU
#undef BCAST
#undef MR_MAX
#undef NV_MAX
#undef N_UKR
#undef N_UKRC
#undef MP_MAX
#undef FN_CEIL
#undef FLAT_PLANE_VECS
#undef HAVE_MASKED_STORES
#undef MASK_STORE
#undef MASK_LOAD
