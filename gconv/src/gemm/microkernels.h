/* gemm/microkernels.h: the GEMM kind's register-tiled micro-kernels, ukr_MRxNV (pixel-vector
 * tiles) and ukrc_MPxNV (channel-vector tiles), their tables and lookups. Per variant
 * (gemm/gemm.h); expects common/simd.h and:
 *
 *   T      element type (float or double)
 *   VLEN   lanes per SIMD vector
 *   VREGS  vector registers the ISA has (16 or 32): bounds the accumulator tile
 *   FN(x)  name mangling, e.g. x ## _f32_avx512
 *
 * The micro-kernel reads row k of B (gemm/gemm.h) at B + boff[k].
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

#define MR_MAX 14
#define NV_MAX 8

/* Where a tile's wide pixels go in the output (see the contract above). */
typedef struct { long q0, PW, OW, rows; } FN(wide_map);

#if HAVE_MASKED_STORES
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

/* The tile shapes compiled for this ISA, X(MR, NV): accumulators MR*NV leave registers for
 * NV loads and a broadcast (32 registers: up to 28 accumulators; 16 registers: up to 12).
 * The list makes the functions and ukr_table (whose order breaks choose_tile's ties), and
 * tests/test_microkernels.py runs every entry of the table against its twin. */
#define GEMM_UKR_LIST(X)                                                                   \
    X(1, 1) X(1, 2) X(1, 4) X(2, 1) X(2, 2) X(2, 4) X(3, 1) X(3, 2) X(3, 3)                \
    X(4, 1) X(4, 2) X(4, 3) X(6, 1) X(6, 2)
#define GEMM_UKR_LIST_32(X)                    /* 32 vector registers only */              \
    X(1, 8) X(2, 6) X(3, 6) X(4, 4) X(4, 6) X(6, 3) X(6, 4) X(8, 1) X(8, 2) X(8, 3)        \
    X(12, 1) X(12, 2) X(14, 1) X(14, 2)

GEMM_UKR_LIST(GCONV_UKR)
#if VREGS >= 32
GEMM_UKR_LIST_32(GCONV_UKR)
#endif

typedef struct { int mr, nv; FN(ukr_fn) fn; } FN(ukr_entry);

#define GCONV_UKR_ENTRY(MR_, NV_) {MR_, NV_, FN(ukr_##MR_##x##NV_)},
static const FN(ukr_entry) FN(ukr_table)[] = {
    GEMM_UKR_LIST(GCONV_UKR_ENTRY)
#if VREGS >= 32
    GEMM_UKR_LIST_32(GCONV_UKR_ENTRY)
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

/* X(MP, NV): pixel counts fit common output widths (7, 14, 27, 28, 56 ...); the list makes
 * the functions and ukrc_table, as GEMM_UKR_LIST does. */
#define GEMM_UKRC_LIST(X)                                                                  \
    X(4, 1) X(4, 2) X(4, 3) X(6, 1) X(6, 2) X(7, 1) X(8, 1) X(9, 1) X(12, 1)
#define GEMM_UKRC_LIST_32(X)                   /* 32 vector registers only */              \
    X(4, 4) X(6, 4) X(7, 2) X(7, 3) X(7, 4) X(8, 2) X(8, 3) X(9, 2) X(9, 3) X(12, 2)       \
    X(14, 1) X(14, 2) X(28, 1)

GEMM_UKRC_LIST(GCONV_UKRC)
#if VREGS >= 32
GEMM_UKRC_LIST_32(GCONV_UKRC)
#endif

typedef struct { int mp, nv; FN(ukrc_fn) fn; } FN(ukrc_entry);

#define GCONV_UKRC_ENTRY(MP_, NV_) {MP_, NV_, FN(ukrc_##MP_##x##NV_)},
static const FN(ukrc_entry) FN(ukrc_table)[] = {
    GEMM_UKRC_LIST(GCONV_UKRC_ENTRY)
#if VREGS >= 32
    GEMM_UKRC_LIST_32(GCONV_UKRC_ENTRY)
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
