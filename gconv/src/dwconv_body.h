/* dwconv_body.h: depthwise convolution (one input channel per group, M = C_out/G output
 * channels per input channel: M > 1 is a depth multiplier). Included per (dtype, ISA) like
 * conv_gemm_body.h, with the same T / VLEN / VREGS / FN macros; conv_gemm_body.h comes
 * first, so FN(vec), FN(uvec) and FN(epilogue_block) exist here.
 *
 * Row and plane mode are vectorised along the output width, lanes mode across channels.
 * Three modes:
 *
 * Row mode (the general one)
 *   task      = (image n, block of MB groups, block of NC output rows). A task writes only
 *               its own rows of the M output channels of its groups.
 *   strip     = RB output rows x NV vectors along the width x MM output channels of the
 *               group (MM = 2: a depth multiplier's channels in pairs), accumulated in
 *               registers. Each input vector loaded is used for every (row, tap, channel)
 *               it feeds: the RB rows share their common input rows, the MM channels share
 *               everything. A row's vectors go in groups of 3 and 2; its last vector is
 *               pulled back to end at OW (the overlap is recomputed identically), or is a
 *               half-width vector when the ragged end is at most half a vector (3x3).
 *   kernels   = 3x3, 5x5, 7x7 at stride 1 and 2, and 3x3 stride 1 dilation 2, with KH, KW,
 *               S, D, RB, NV, MM all compile-time (fully unrolled taps). At stride 2 on
 *               512-bit floats each input row is split once into its even and odd columns
 *               in order, and every tap is one of them moved by a valignd (S2V in
 *               dw_strip); elsewhere a strip loads two vectors of input per tap pair and
 *               splits them with in-lane shuffles (shufps), which leaves the outputs in a
 *               fixed lane permutation, undone by one permute per stored vector.
 *               The generic kernel (any KH, KW, strides, dilations) has runtime tap loops,
 *               still several vectors along the width.
 *   input     = padded copy: a sub-block of SB output rows of one group has its input rows
 *               copied into per-thread scratch with the zero padding around them (zero
 *               rows above/below the input). The scratch is zeroed once, before a thread's
 *               first task (zero_scratch), and copies write only the input's values,
 *               so the padding stays zero: no per-task clearing (measured: clearing
 *               the scratch per task cost as much as the copies themselves). For the generic kernel at a stride
 *               S > 1 the rows are deinterleaved into S phases (phase ph holds padded
 *               columns ph, ph+S, ...) so that every tap is one contiguous load:
 *                   padded column c*S + kw*D  ->  phase (kw*D) % S, offset c + (kw*D) / S.
 *               Direct (3x3, float32): the rows whose input rows all exist read the input
 *               in place, no copy; the vectors at a row's two ends load across the row
 *               boundary and zero the lanes that fall in the padding (see dw_strip). Used
 *               at stride 2, and at stride 1 when at most half a row's vectors need masks.
 *
 * Plane mode (stride 1, OW == W < VLEN: narrow planes with "same" padding)
 *   The channel's plane is copied whole between zero rows and the kernel runs along the
 *   flattened plane: output position f = oh*W + ow reads plane[f + kh*DH*W + kw*DW - PL]
 *   since input and output rows have the same length. Taps that would wrap into the next
 *   row (the left/right padding) are masked per lane from the lane's column f mod W. A
 *   vector thus covers several short rows, and the output is written straight to y.
 *
 * Lanes mode (3x3, stride 1, "same" padding, M == 1, planes of at least a vector of pixels
 * and at most 16x16, at least VLEN channels; AVX2 and AVX-512)
 *   Small planes waste lanes and need a misaligned load per FMA in the other modes, so here
 *   a vector holds one pixel of VLEN channels (oneDNN's nChw16c, per block in scratch).
 *   task      = (image n, MB channels: blocks of VLEN). Per block: VLEN x VLEN transposes
 *               put the channels' pixels, VLEN at a time, into a zero-bordered grid of
 *               (H+2) x (W+2) pixel vectors (the border is zero from the start and never
 *               written); 9 weight vectors (tap t of each channel) and a bias vector;
 *               register tiles of 2 rows x up to 7 columns (AVX2: 4) accumulate the taps
 *               from aligned grid loads, no masks, each loaded vector feeding up to 6 FMAs;
 *               the results go to a pixel-major stage, transposed back into the NCHW output
 *               planes; the epilogue on the stage (activation alone: elementwise, all
 *               lanes at once) or per channel after the transposes (with a residual). The plane's last pixel block is
 *               pulled back to end at H*W (rewrites equal values); a last block of fewer
 *               than VLEN channels reads the last valid channel again in the empty lanes
 *               and stores those lanes to a throw-away vector.
 *
 * Epilogue: bias seeds the accumulators; the residual and the activation run over each
 * strip's rows right after they are stored (still in L1).
 *
 * Determinism: which mode, kernel, vector layout and accumulation order an output element
 * gets depends only on the problem, never on the task split, so results are bitwise
 * identical for any thread count.
 *
 * Which variants are compiled (see DW_SPEC): the unrolled kernels exist for AVX2 and
 * AVX-512; in float64 only the 3x3 ones; the SSE2 baseline runs the generic kernel.
 *
 * Blocking fields of gconv_params reused by the depthwise kind:
 *   NC   output rows per task              n_ptiles    row blocks per (image, group block)
 *   MB   groups per task                   n_mblocks   group blocks per image
 *   KC   output rows per sub-block (SB)    direct_b    1: plane mode
 *   oc_vec  1: lanes mode (MB is then a multiple of VLEN)
 *   MR   kernel id (DW_K_*)                NV          output channels per strip (1 or 2)
 */

/* Debug-info variable tracking costs more compile time than anything else on these
 * large unrolled functions (the build adds -g); line info is kept. */
#pragma GCC push_options
#pragma GCC optimize("no-var-tracking", "no-var-tracking-assignments")

#define DW_VEC FN(vec)
#define DW_LOADU(p) ((DW_VEC)(*(const FN(uvec) *)(p)))
#define DW_STOREU(p, v) (*(FN(uvec) *)(p) = (v))
#define DW_BCAST(s) ((T)(s) - (DW_VEC){0})
#define DW_INLINE static inline __attribute__((always_inline))
/* DW_IN_REG: keep a loaded vector in a register; without it GCC folds the load into every
 * FMA that uses it (one memory operand per FMA), which makes the kernels load-bound.
 * DW_OPAQUE: hide a pointer's value, so GCC does not hoist per-row offsets out of the
 * column loop (and spill them). */
#if defined(__x86_64__) || defined(__i386__)
#define DW_IN_REG(v) __asm__("" : "+x"(v))
#define DW_OPAQUE(p) __asm__("" : "+r"(p))
#else
#define DW_IN_REG(v) ((void)0)
#define DW_OPAQUE(p) ((void)0)
#endif

/* The unrolled kernels are compiled for 256- and 512-bit vectors only: the baseline
 * (SSE2) variant, a fallback for old CPUs, runs everything through the generic kernel
 * (still vectorised along the width), which keeps the build time reasonable. */
#define DW_SPECIALISE (VLEN * sizeof(T) >= 32)
#define DW_SPEC(f, g) (DW_SPECIALISE ? FN(f) : FN(g))
/* float64 gets the unrolled 3x3 kernels only (the others run the generic kernel): half
 * the compile time of the rest, for a dtype nobody runs these layers in for speed */
#define DW_SPEC32(f, g) (DW_SPECIALISE && sizeof(T) == 4 ? FN(f) : FN(g))

/* Register blocking: MM*RB*NV accumulators, NV input vectors and the weight broadcasts
 * that fit. 32 registers (AVX-512): 4 rows x up to 3 vectors (MM=2: 2); 16 registers:
 * 2 x 2 (MM=2: 1). A row's vectors go in groups of 3 and 2 (see dw_row_strip). */
#if VREGS >= 32
#define DW_RB 4
#define DW_NV 3
#define DW_NV2 2
#else
#define DW_RB 2
#define DW_NV 2
#define DW_NV2 1
#endif
/* dilation 2 shares fewer input rows between neighbouring output rows: taller strips */
#define DW_RB_D2 (2 * DW_RB)
#define DW_NV_D2 (VREGS >= 32 ? 2 : 1)
#define DW_RB_MAX (2 * DW_RB)

/* half-width vectors, for the ragged end of a row (see dw_row_strip) */
typedef T FN(hvec) __attribute__((vector_size(VLEN / 2 * sizeof(T))));
typedef T FN(uhvec) __attribute__((vector_size(VLEN / 2 * sizeof(T)), aligned(sizeof(T)),
                                   may_alias));
#define DW_HVEC FN(hvec)
#define DW_HLOADU(p) ((DW_HVEC)(*(const FN(uhvec) *)(p)))
#define DW_HSTOREU(p, v) (*(FN(uhvec) *)(p) = (v))
#if VLEN >= 16
#define DW_LO(v) __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7)
#elif VLEN >= 8
#define DW_LO(v) __builtin_shufflevector(v, v, 0, 1, 2, 3)
#elif VLEN >= 4
#define DW_LO(v) __builtin_shufflevector(v, v, 0, 1)
#else
#define DW_LO(v) __builtin_shufflevector(v, v, 0)
#endif

typedef __typeof__(_Generic((T)0, float: (int)0, double: (long long)0)) FN(ielem);
typedef FN(ielem) FN(ivec) __attribute__((vector_size(VLEN * sizeof(T))));

DW_INLINE FN(ivec) FN(dw_iota)(void)
{
    FN(ivec) v;
#pragma GCC unroll 16
    for (int i = 0; i < VLEN; i++) v[i] = (FN(ielem))i;
    return v;
}

/* Per-call geometry shared by the kernels of one sub-block. */
typedef struct {
    const gconv_params *p;
    long pitch;        /* elements between scratch rows (input rows in direct mode) */
    long wq;           /* elements per phase (generic kernel at stride > 1) */
    long OW, plane;    /* output row length; elements per output channel (OH*OW) */
} FN(dw_args);

/* y[0..n) = act(y + r), vectorisable loops; sigmoid/tanh/silu use the shared scalar code. */
static void FN(dw_epilogue)(const gconv_params *p, T *restrict y, const T *restrict r, long n)
{
    if (r)
        for (long q = 0; q < n; q++) y[q] += r[q];
    const T alpha = (T)p->alpha, lo = (T)p->lo, hi = (T)p->hi;
    switch (p->act) {
    case GCONV_ACT_NONE: break;
    /* NaN stays NaN, as in torch: compare so that a NaN fails the test */
    case GCONV_ACT_RELU:
        for (long q = 0; q < n; q++) y[q] = y[q] < 0 ? 0 : y[q];
        break;
    case GCONV_ACT_RELU6:
        for (long q = 0; q < n; q++) { T v = y[q]; v = v < 0 ? 0 : v; y[q] = v > 6 ? 6 : v; }
        break;
    case GCONV_ACT_LEAKY_RELU:
        for (long q = 0; q < n; q++) { T v = y[q]; y[q] = v > 0 ? v : alpha * v; }
        break;
    case GCONV_ACT_CLAMP:
        if (lo != lo || hi != hi) {     /* a NaN bound: NaN everywhere, as torch.clamp */
            for (long q = 0; q < n; q++) y[q] = lo + hi;
            break;
        }
        for (long q = 0; q < n; q++) { T v = y[q]; v = v < lo ? lo : v; y[q] = v > hi ? hi : v; }
        break;
    case GCONV_ACT_HARDSWISH:
        for (long q = 0; q < n; q++) {
            T v = y[q], t = v + 3;
            t = t > 0 ? t : 0;
            t = t < 6 ? t : 6;
            y[q] = v * t / 6;
        }
        break;
    default:
        FN(epilogue_block)(p, y, n, NULL, 1, n);
        break;
    }
}

/* VLEN input values from p, lane l being column c + l of its row; in a masked (direct
 * mode) strip the lanes outside the row [0, W) are zeroed: they are the zero padding (the
 * load read a neighbouring row's values there). */
DW_INLINE DW_VEC FN(dw_cols)(const int MASKED, const T *p, long c, long W)
{
    DW_VEC v = DW_LOADU(p);
    if (MASKED) {
        const FN(ivec) l = FN(dw_iota)();
        const FN(ielem) ce = (FN(ielem))c;
        v = (DW_VEC)((FN(ivec))v & ((l >= -ce) & (l < (FN(ielem))W - ce)));
    }
    return v;
}

/* --- stride 2 on 512-bit floats: even/odd columns in natural order ------------------ */
#if VBYTES == 64 && !GCONV_F64
#define DW_S2V 1
/* even (odd) elements of the 32 consecutive inputs (a, b), in order: one vpermt2ps */
DW_INLINE DW_VEC FN(dw_s2_half)(DW_VEC a, DW_VEC b, const int odd)
{
    const __m512i idx = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4,
                                         2, 0);
    const __m512i pick = _mm512_add_epi32(idx, _mm512_set1_epi32(odd));
    return (DW_VEC)_mm512_permutex2var_ps((__m512)a, pick, (__m512)b);
}
/* lanes s.. of v, then lanes 0..s-1 of next: one valignd */
#define DW_S2_SHIFT(v, next, s)                                                             \
    ((s) == 0 ? (v) : (DW_VEC)_mm512_alignr_epi32((__m512i)(next), (__m512i)(v), (s)))
#else
#define DW_S2V 0
#endif

/* --- stride-2 lane shuffles ------------------------------------------------------------ */

/* shufps-style split of a (VLEN) | b (VLEN) consecutive inputs: within each 128-bit lane
 * k (E elements), the even (odd) elements of a's lane k then of b's lane k. */
#define DW_E (16 / (int)sizeof(T))
DW_INLINE FN(ivec) FN(dw_split_mask)(const int odd)
{
    FN(ivec) m;
#pragma GCC unroll 16
    for (int l = 0; l < VLEN; l++) {
        const int k = l / DW_E, t = l % DW_E;
        m[l] = (FN(ielem))(t < DW_E / 2 ? k * DW_E + 2 * t + odd
                                        : VLEN + k * DW_E + 2 * (t - DW_E / 2) + odd);
    }
    return m;
}

/* Lane l of a split vector holds output column pos(l) of the 2*VLEN inputs' VLEN outputs;
 * this mask puts them back in order: out[pos(l)] = acc[l]. */
DW_INLINE FN(ivec) FN(dw_unsplit_mask)(void)
{
    FN(ivec) m;
#pragma GCC unroll 16
    for (int l = 0; l < VLEN; l++) {
        const int k = l / DW_E, t = l % DW_E;
        const int pos = t < DW_E / 2 ? k * DW_E / 2 + t : VLEN / 2 + k * DW_E / 2 + t - DW_E / 2;
        m[pos] = (FN(ielem))l;
    }
    return m;
}

/* --- row mode kernels ----------------------------------------------------------------- */

/* One register strip: RB rows x NV vectors x MM channels, all taps.
 *   src: scratch row of the strip's first output row, at the input column of the strip's
 *        first output column (S * c); rows pitch apart
 *   dst: output of channel 0, first row, first column; rows ld apart, channels plane apart
 *   vector j < NV-1 is at output offset j*VLEN, the last one at `last`
 *   wt:  MM * KH*KW weights (contiguous channels), bias: MM values or NULL
 * Input row i (relative) feeds output row r through kh when i = r*S + kh*D; every output
 * is accumulated as bias, then kh ascending, kw ascending. */
DW_INLINE void FN(dw_strip)(const int KH, const int KW, const int S, const int D, const int MM,
                            const int RB, const int NV, const int MASKED, const int HT,
                            const T *restrict src, long pitch, const T *restrict wt,
                            const T *restrict bias, T *restrict dst, long ld, long plane,
                            long last, long col0, long W)
{
    /* HT (S == 1, not MASKED): the last vector is a half-width one, at `last` */
    /* MASKED (direct mode): src is the input row itself at column col0 (which may be
     * < 0); lanes whose input column falls outside [0, W) read a neighbouring row's
     * values (before the row start, or past its end the next row's) and are zeroed,
     * which is the zero padding. (Masks apply to every vector of the group: fewer
     * variants to compile, and only the groups at a row's ends are masked.) */
#define DW_MASKED_J(j) (MASKED)
#define DW_OFF(j) ((j) == NV - 1 ? last : (long)(j) * VLEN)
#define DW_FULL(j) (!HT || (j) < NV - 1)
    DW_VEC acc[2][DW_RB_MAX][4];
    DW_HVEC hacc[2][DW_RB_MAX];
#pragma GCC unroll 4
    for (int m = 0; m < MM; m++) {
        DW_VEC seed = DW_BCAST(bias ? bias[m] : (T)0);
#pragma GCC unroll 8
        for (int r = 0; r < RB; r++) {
#pragma GCC unroll 4
            for (int j = 0; j < NV; j++) acc[m][r][j] = seed;
            if (HT) hacc[m][r] = DW_LO(seed);
        }
    }
    const FN(ivec) even = FN(dw_split_mask)(0), odd = FN(dw_split_mask)(1);
    /* S2V (stride 2, 512-bit floats): per input row, vector j's 2*VLEN input columns are
     * split once into even (E) and odd (O) columns in order, plus the few even / odd
     * columns right after them (from one more load: En, On); tap kw is then E (kw even)
     * or O (kw odd) moved kw/2 lanes on by one valignd. Each input column is loaded once
     * per row instead of once per tap pair, and the sums come out in order (no unsplit
     * permute): MobileNetV2's stride-2 3x3 (144 x 56x56) 430 -> 400 ns a channel. */
    const int S2V = DW_S2V && S == 2 && D == 1 && KW <= 7;   /* shifts within a vector */
    const int NI = (RB - 1) * S + (KH - 1) * D + 1;
    const T *rp = src;
    /* weights re-read per strip: hoisted out of the column loop, the broadcasts of a
     * 5x5 or 7x7 kernel would not fit in registers and go through the stack */
    const T *wp = wt;
    DW_OPAQUE(wp);
#pragma GCC unroll 32
    for (int i = 0; i < NI; i++, rp += pitch) {
        DW_OPAQUE(rp);
        const T *rl = rp + S * last;
        DW_VEC odd_x[4];
#if DW_S2V
        DW_VEC ev[4], od[4], evn[4], odn[4];
        if (S2V) {
#pragma GCC unroll 4
            for (int j = 0; j < NV; j++) {
                const T *xp = j == NV - 1 ? rl : rp + S * j * VLEN;
                const long c = col0 + S * DW_OFF(j);
                const DW_VEC a = FN(dw_cols)(MASKED, xp, c, W);
                const DW_VEC b = FN(dw_cols)(MASKED, xp + VLEN, c + VLEN, W);
                ev[j] = FN(dw_s2_half)(a, b, 0);
                od[j] = FN(dw_s2_half)(a, b, 1);
                DW_IN_REG(ev[j]);
                DW_IN_REG(od[j]);
                if (KW > 2) {             /* columns 2*VLEN.. after: lane 0 is the next even */
                    const DW_VEC n = FN(dw_cols)(MASKED, xp + 2 * VLEN, c + 2 * VLEN, W);
                    evn[j] = KW > 3 ? FN(dw_s2_half)(n, n, 0) : n;
                    odn[j] = KW > 4 ? FN(dw_s2_half)(n, n, 1) : n;
                }
            }
        }
#endif
#pragma GCC unroll 16
        for (int kw = 0; kw < KW; kw++) {
            DW_VEC xv[4];
            DW_HVEC hx;
            if (HT) {
                hx = DW_HLOADU(rl + kw * D);
                DW_IN_REG(hx);
            }
#pragma GCC unroll 4
            for (int j = 0; j < NV; j++) {
                if (!DW_FULL(j)) continue;
                const T *xp = (j == NV - 1 ? rl : rp + S * j * VLEN) + kw * D;
#if DW_S2V
                if (S2V) {
                    xv[j] = kw % 2 == 0 ? DW_S2_SHIFT(ev[j], evn[j], kw / 2)
                                        : DW_S2_SHIFT(od[j], odn[j], kw / 2);
                    DW_IN_REG(xv[j]);
                    continue;
                }
#endif
                const long c = col0 + S * DW_OFF(j) + kw * D;    /* xp's input column */
                if (S == 1) {
                    xv[j] = FN(dw_cols)(DW_MASKED_J(j), xp, c, W);
                } else if (kw % 2 == 0) {     /* S == 2, D == 1: columns kw, kw+2, ... */
                    const DW_VEC a = FN(dw_cols)(DW_MASKED_J(j), xp, c, W);
                    const DW_VEC b = FN(dw_cols)(DW_MASKED_J(j), xp + VLEN, c + VLEN, W);
                    xv[j] = __builtin_shuffle(a, b, even);
                    if (kw + 1 < KW) odd_x[j] = __builtin_shuffle(a, b, odd);
                } else {
                    xv[j] = odd_x[j];
                }
                DW_IN_REG(xv[j]);
            }
#pragma GCC unroll 8
            for (int r = 0; r < RB; r++) {
                const int dh = i - r * S;
                if (dh < 0 || dh % D != 0 || dh / D >= KH) continue;
                const int kh = dh / D;
#pragma GCC unroll 4
                for (int m = 0; m < MM; m++) {
                    DW_VEC wv = DW_BCAST(wp[m * KH * KW + kh * KW + kw]);
#pragma GCC unroll 4
                    for (int j = 0; j < NV; j++)
                        if (DW_FULL(j)) acc[m][r][j] += wv * xv[j];
                    if (HT) hacc[m][r] += ((T)wp[m * KH * KW + kh * KW + kw] - (DW_HVEC){0}) * hx;
                }
            }
        }
    }
    const FN(ivec) unsplit = FN(dw_unsplit_mask)();
#pragma GCC unroll 4
    for (int m = 0; m < MM; m++)
#pragma GCC unroll 8
        for (int r = 0; r < RB; r++)
#pragma GCC unroll 4
            for (int j = 0; j < NV; j++) {
                if (!DW_FULL(j)) {
                    DW_HSTOREU(dst + m * plane + r * ld + last, hacc[m][r]);
                    continue;
                }
                DW_VEC v = acc[m][r][j];
                if (S == 2 && !S2V) v = __builtin_shuffle(v, unsplit);
                DW_STOREU(dst + m * plane + r * ld + DW_OFF(j), v);
            }
#undef DW_FULL
}

/* The generic strip: one output row, NV vectors, MM channels, runtime taps; src is a
 * phase-split scratch row (SW phases of wq elements) at the strip's output column. */
DW_INLINE void FN(dw_strip_generic)(const int MM, const int NV, const gconv_params *p,
                                    const T *restrict src, long pitch, long wq,
                                    const T *restrict wt, const T *restrict bias,
                                    T *restrict dst, long plane, long last)
{
    const long KH = p->KH, KW = p->KW, SW = p->SW, DH = p->DH, DW = p->DW, KK = KH * KW;
    DW_VEC acc[2][4];
#pragma GCC unroll 2
    for (int m = 0; m < MM; m++) {
        DW_VEC seed = DW_BCAST(bias ? bias[m] : (T)0);
#pragma GCC unroll 4
        for (int j = 0; j < NV; j++) acc[m][j] = seed;
    }
    for (long kh = 0; kh < KH; kh++) {
        const T *row = src + kh * DH * pitch;
        const T *wr = wt + kh * KW;
        for (long kw = 0; kw < KW; kw++) {
            const long col = kw * DW;
            const T *xp = row + (col % SW) * wq + col / SW;
            DW_VEC xv[4];
#pragma GCC unroll 4
            for (int j = 0; j < NV; j++) {
                xv[j] = DW_LOADU(xp + DW_OFF(j));
                DW_IN_REG(xv[j]);
            }
#pragma GCC unroll 2
            for (int m = 0; m < MM; m++) {
                DW_VEC wv = DW_BCAST(wr[m * KK + kw]);
#pragma GCC unroll 4
                for (int j = 0; j < NV; j++) acc[m][j] += wv * xv[j];
            }
        }
    }
#pragma GCC unroll 2
    for (int m = 0; m < MM; m++)
#pragma GCC unroll 4
        for (int j = 0; j < NV; j++) DW_STOREU(dst + m * plane + DW_OFF(j), acc[m][j]);
#undef DW_OFF
#undef DW_MASKED_J
}

/* Strip of RB rows over the whole output width: ceil(OW/VLEN) vectors, NV at a time, the
 * row's last vector pulled back to end at OW; a row shorter than a vector goes through a
 * small buffer. GEN selects the generic strip (RB must then be 1). In direct mode the
 * vectors whose input crosses the row's ends run one at a time, masked. */
DW_INLINE void FN(dw_row_strip)(const int GEN, const int DIRECT, const int KH, const int KW,
                                const int S, const int D, const int MM, const int RB,
                                const int NV, const FN(dw_args) *a, const T *src,
                                const T *wt, const T *bias, T *dst)
{
    const long OW = a->OW, pitch = a->pitch, wq = a->wq, plane = a->plane;
    const int SI = GEN ? 1 : S;          /* input columns per output column in scratch */
    /* (for the 3x3 kernels: at 5x5 and 7x7 the half vector costs more than it saves) */
    const int HTOK = !GEN && !DIRECT && S == 1 && MM == 1 && VLEN >= 8 && KH < 5;
#define DW_STRIP_HT(nv_, masked_, ht_, c_, d_, ld_, pl_, last_, col0_)                     \
    do {                                                                                    \
        if (GEN)                                                                            \
            FN(dw_strip_generic)(MM, nv_, a->p, src + (c_), pitch, wq, wt, bias, d_, pl_,   \
                                 last_);                                                    \
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
    const gconv_params *p = a->p;
    const long OW = a->OW, plane = a->plane, step = (GEN ? p->SH : S) * a->pitch;
    const int epi = res != NULL || p->act != GCONV_ACT_NONE;
    long r = 0;
    if (!GEN && RB > 1 && rows >= RB)
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

static void FN(dw_generic_m1)(const FN(dw_args) *a, const T *src, const T *wt, const T *bias,
                              const T *res, T *dst, long rows)
{
    FN(dw_rows)(1, 0, 0, 0, 1, 1, 1, 1, 4, a, src, wt, bias, res, dst, rows);
}
static void FN(dw_generic_m2)(const FN(dw_args) *a, const T *src, const T *wt, const T *bias,
                              const T *res, T *dst, long rows)
{
    FN(dw_rows)(1, 0, 0, 0, 1, 1, 2, 1, 2, a, src, wt, bias, res, dst, rows);
}

/* Kernel table: [id][MM-1]; id 0 is the generic kernel. */
#ifndef GCONV_DW_KERNEL_IDS
#define GCONV_DW_KERNEL_IDS
enum { DW_K_GENERIC = 0, DW_K_3S1, DW_K_3S2, DW_K_3S1D2, DW_K_5S1, DW_K_5S2, DW_K_7S1,
       DW_K_7S2, DW_N_KERNELS };
#endif
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

static int FN(dw_kernel_id)(const gconv_params *p)
{
    if (!DW_SPECIALISE) return DW_K_GENERIC;
    if (p->KH != p->KW || p->SH != p->SW || p->DH != p->DW) return DW_K_GENERIC;
    const long k = p->KH, s = p->SH, d = p->DH;
    if (k == 3 && s == 1 && d == 1) return DW_K_3S1;
    if (k == 3 && s == 2 && d == 1) return DW_K_3S2;
    if (sizeof(T) != 4) return DW_K_GENERIC;       /* see DW_SPEC32 */
    if (k == 3 && s == 1 && d == 2) return DW_K_3S1D2;
    if (k == 5 && s == 1 && d == 1) return DW_K_5S1;
    if (k == 5 && s == 2 && d == 1) return DW_K_5S2;
    if (k == 7 && s == 1 && d == 1) return DW_K_7S1;
    if (k == 7 && s == 2 && d == 1) return DW_K_7S2;
    return DW_K_GENERIC;
}

/* --- plane mode kernels --------------------------------------------------------------- */

/* col = (col + step) mod W for lanes already < W, step < W */
#define DW_COL_ADVANCE(col, stepv, wv) ((col) + (stepv) - ((((col) + (stepv)) >= (wv)) & (wv)))

/* NV vectors of MM channels at flat positions f.. (lane columns col[j]); results go to
 * d (channels dplane apart). base[f + kh*DH*W + kw*DW] is the tap's input. KC, DC: the
 * compile-time square kernel size and dilation, 0 = read them from p. */
DW_INLINE void FN(dw_plane_vecs)(const int KC, const int DC, const int MM, const int NV,
                                 const gconv_params *p, const T *restrict base,
                                 const T *restrict wt, const T *restrict bias, long f,
                                 const FN(ivec) *col, T *restrict d, long dplane)
{
    const long KH = KC ? KC : p->KH, KW = KC ? KC : p->KW;
    const long DH = DC ? DC : p->DH, DW = DC ? DC : p->DW, W = p->W, PL = p->PL;
    const long KK = KH * KW, rstep = DH * W;
    DW_VEC acc[2][2];
#pragma GCC unroll 2
    for (int m = 0; m < MM; m++) {
        DW_VEC seed = DW_BCAST(bias ? bias[m] : (T)0);
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
            DW_VEC xv[2];
#pragma GCC unroll 2
            for (int j = 0; j < NV; j++) {
                xv[j] = (DW_VEC)((FN(ivec))DW_LOADU(xp + kh * rstep + j * VLEN) & keep[j]);
                DW_IN_REG(xv[j]);
            }
#pragma GCC unroll 2
            for (int m = 0; m < MM; m++) {
                DW_VEC wv = DW_BCAST(wt[m * KK + kh * KW + kw]);
#pragma GCC unroll 2
                for (int j = 0; j < NV; j++) acc[m][j] += wv * xv[j];
            }
        }
    }
#pragma GCC unroll 2
    for (int m = 0; m < MM; m++)
#pragma GCC unroll 2
        for (int j = 0; j < NV; j++) DW_STOREU(d + m * dplane + j * VLEN, acc[m][j]);
}

/* Flat positions [f0, f1) of MM channels (y: channel 0 at position 0, channels plane
 * apart). col0/col_tail: lane columns of the vectors at f0 and f1 - VLEN. */
DW_INLINE void FN(dw_plane_run)(const int KC, const int DC, const int MM,
                                const gconv_params *p, const T *base, const T *wt,
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

typedef void (*FN(dw_plane_fn))(const gconv_params *, const T *, const T *, const T *,
                                const T *, T *, long, long, long, FN(ivec), FN(ivec));

#define DW_PLANE_KERNEL(name, K_, D_, MM_)                                                  \
    static void FN(name)(const gconv_params *p, const T *base, const T *wt, const T *bias,  \
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

/* --- lanes mode ----------------------------------------------------------------------- */

/* Output columns per register tile: RB (1 or 2) rows x NB columns of accumulators, plus the
 * 9 weight vectors and the input vector being used: 2*7 + 9 + 1 = 24 of 32 registers. */
#define DW_LNB (VREGS >= 32 ? 7 : 4)

/* VLEN x VLEN transpose: row i is read at s[i] (s NULL: at s0 + i*lds) and column i
 * written to d[i] (d NULL: at d0 + doff[i]); any addresses, several d[i] may be the same
 * throw-away vector. transpose_block with gathered rows and scattered columns. */
DW_INLINE void FN(dw_tr)(const T *const *s, const T *s0, long lds, T *const *d, T *d0,
                         const int *doff)
{
    DW_VEC r[VLEN];
#pragma GCC unroll 16
    for (int i = 0; i < VLEN; i++) r[i] = DW_LOADU(s ? s[i] : s0 + i * lds);
    FN(transpose_regs)(r);
#pragma GCC unroll 16
    for (int i = 0; i < VLEN; i++) DW_STOREU(d ? d[i] : d0 + doff[i], r[i]);
}

/* One register tile of lanes mode: RB output rows x NB output columns, VLEN channels per
 * vector. g: the padded grid at the tile's first output (its top-left tap), gp elements
 * between grid rows; o: the stage at the tile's first output, op elements between output
 * rows. Every output: bias, then taps kh ascending, kw ascending (input row i = r + kh,
 * column c = j + kw, both loops ascending). */
DW_INLINE void FN(dw_lanes_tile)(const int RB, const int NB, const T *restrict g, long gp,
                                 const DW_VEC *restrict wv, DW_VEC bv, T *restrict o, long op)
{
    DW_VEC acc[2][DW_LNB];
#pragma GCC unroll 2
    for (int r = 0; r < RB; r++)
#pragma GCC unroll 8
        for (int j = 0; j < NB; j++) acc[r][j] = bv;
#pragma GCC unroll 4
    for (int i = 0; i < RB + 2; i++) {
        const T *gr = g + i * gp;
        DW_OPAQUE(gr);
#pragma GCC unroll 10
        for (int c = 0; c < NB + 2; c++) {
            DW_VEC xv = *(const DW_VEC *)(gr + c * VLEN);
            DW_IN_REG(xv);
#pragma GCC unroll 2
            for (int r = 0; r < RB; r++) {
                const int kh = i - r;
                if (kh < 0 || kh > 2) continue;
#pragma GCC unroll 3
                for (int kw = 0; kw < 3; kw++) {
                    const int j = c - kw;
                    if (j < 0 || j >= NB) continue;
                    acc[r][j] += wv[kh * 3 + kw] * xv;
                }
            }
        }
    }
#pragma GCC unroll 2
    for (int r = 0; r < RB; r++)
#pragma GCC unroll 8
        for (int j = 0; j < NB; j++) *(DW_VEC *)(o + r * op + j * VLEN) = acc[r][j];
}

/* RB output rows of lanes mode, the whole width: tiles of DW_LNB columns, then one of the
 * remaining columns. */
DW_INLINE void FN(dw_lanes_rows)(const int RB, const T *g, long gp, const DW_VEC *wv,
                                 DW_VEC bv, T *o, long op, long OW)
{
    long ow = 0;
    for (; ow + DW_LNB <= OW; ow += DW_LNB)
        FN(dw_lanes_tile)(RB, DW_LNB, g + ow * VLEN, gp, wv, bv, o + ow * VLEN, op);
    g += ow * VLEN;
    o += ow * VLEN;
    switch (OW - ow) {
#define DW_LCASE(k)                                                                         \
    case k:                                                                                 \
        if (k < DW_LNB) FN(dw_lanes_tile)(RB, k < DW_LNB ? k : 1, g, gp, wv, bv, o, op);    \
        break;
    DW_LCASE(1) DW_LCASE(2) DW_LCASE(3) DW_LCASE(4) DW_LCASE(5) DW_LCASE(6)
#undef DW_LCASE
    default: break;
    }
}

/* Lanes mode (see the top comment): image n, channels [c0, c1), blocks of VLEN channels
 * (c0 a multiple of VLEN). Scratch: the zero-padded grid of (OH+2) x (OW+2) pixel vectors
 * (its border is zero from the start and never written), the 9 weight vectors, the bias
 * vector, the output stage (OH*OW pixel vectors) and a throw-away vector. */
static void FN(dw_lanes_task)(const gconv_params *p, const T *x, const T *w, const T *bias,
                              const T *res, T *y, long n, long c0, long c1, T *scratch)
{
    const long H = p->H, W = p->W, HW = H * W, G = p->G, KK = 9;
    const long gp = (W + 2) * VLEN;
    T *grid = scratch;
    T *wts = grid + (H + 2) * gp;
    T *bv = wts + KK * VLEN;
    T *stage = bv + VLEN;
    T *dummy = stage + HW * VLEN;
    const int epi = res != NULL || p->act != GCONV_ACT_NONE;
    const T *s[VLEN];
    T *d[VLEN];
    /* where pixel q goes in the grid (the same for every block) */
    int goff[16 * 16];
    for (long oh = 0, q = 0; oh < H; oh++)
        for (long ow = 0; ow < W; ow++, q++) goff[q] = (int)((oh + 1) * gp + (ow + 1) * VLEN);
    for (long cb = c0; cb < c1; cb += VLEN) {
        const long nc = c1 - cb < VLEN ? c1 - cb : VLEN;
        /* missing channels (nc < VLEN) read the last valid one's values: finite, unused */
        const T *xc = x + (n * G + cb) * HW;
        for (long q0 = 0; q0 < HW; q0 += VLEN) {
            const long qs = q0 + VLEN <= HW ? q0 : HW - VLEN;    /* last block pulled back */
            if (nc == VLEN) {
                FN(dw_tr)(NULL, xc + qs, HW, NULL, grid, goff + qs);
            } else {
                for (int i = 0; i < VLEN; i++) s[i] = xc + (i < nc ? i : nc - 1) * HW + qs;
                FN(dw_tr)(s, NULL, 0, NULL, grid, goff + qs);
            }
        }
        /* weights: vector t = tap t of the block's channels */
        for (long t0 = 0; t0 < KK; t0 += VLEN) {
            if ((cb + nc - 1) * KK + t0 + VLEN <= G * KK) {
                for (int i = 0; i < VLEN; i++) {
                    s[i] = w + (cb + (i < nc ? i : nc - 1)) * KK + t0;
                    d[i] = t0 + i < KK ? wts + (t0 + i) * VLEN : dummy;
                }
                FN(dw_tr)(s, NULL, 0, d, NULL, NULL);
            } else {            /* the last block: the loads would run past w */
                for (long t = t0; t < KK && t < t0 + VLEN; t++)
                    for (int i = 0; i < VLEN; i++)
                        wts[t * VLEN + i] = w[(cb + (i < nc ? i : nc - 1)) * KK + t];
            }
        }
        for (int i = 0; i < VLEN; i++) bv[i] = bias ? bias[cb + (i < nc ? i : nc - 1)] : (T)0;
        DW_VEC wv[9];
#pragma GCC unroll 9
        for (int t = 0; t < 9; t++) wv[t] = *(const DW_VEC *)(wts + t * VLEN);
        const DW_VEC b = *(const DW_VEC *)bv;
        /* row pairs (and a last single row); after each, the activation on its stage rows
         * (alone, it is elementwise: all lanes at once) and the transposes out of the
         * pixel blocks it completes, interleaved with the FMAs of the next rows. The last
         * pixel block is pulled back to end at H*W (rewrites equal values). */
        T *yc = y + (n * G + cb) * HW;
        long qo = 0;                    /* next pixel block to transpose out */
        for (long oh = 0; oh < H;) {
            const long rb = oh + 2 <= H ? 2 : 1;
            T *so = stage + oh * W * VLEN;
            if (rb == 2) FN(dw_lanes_rows)(2, grid + oh * gp, gp, wv, b, so, W * VLEN, W);
            else FN(dw_lanes_rows)(1, grid + oh * gp, gp, wv, b, so, W * VLEN, W);
            if (epi && res == NULL) FN(dw_epilogue)(p, so, NULL, rb * W * VLEN);
            oh += rb;
            const long done = oh * W;
            for (; qo < HW && (qo + VLEN <= done || done == HW); qo += VLEN) {
                const long qs = qo + VLEN <= HW ? qo : HW - VLEN;
                if (nc == VLEN) {
                    FN(transpose_block)(stage + qs * VLEN, VLEN, yc + qs, HW);
                    continue;
                }
                for (int i = 0; i < VLEN; i++) d[i] = i < nc ? yc + i * HW + qs : dummy;
                FN(dw_tr)(NULL, stage + qs * VLEN, VLEN, d, NULL, NULL);
            }
        }
        if (res != NULL)        /* the residual is NCHW: per channel, after the transposes */
            for (long i = 0; i < nc; i++)
                FN(dw_epilogue)(p, yc + i * HW, res + (n * G + cb + i) * HW, HW);
    }
}

/* --- geometry and plan ---------------------------------------------------------------- */

static long FN(dw_round)(long n) { return (n + VLEN - 1) / VLEN * VLEN; }

/* Row mode scratch row: nph phases of wq elements (nph = SW for the generic kernel, else
 * 1: the plain padded row). wq covers the widest read: a whole vector (two at stride 2)
 * from the last output column, or from column 0 when OW < VLEN, plus the largest tap. */
static long FN(dw_nph)(const gconv_params *p) { return p->MR == DW_K_GENERIC ? p->SW : 1; }
static long FN(dw_wq)(const gconv_params *p)
{
    const long cols = p->OW > VLEN ? p->OW : VLEN;
    if (FN(dw_nph)(p) > 1) return FN(dw_round)(cols + ((p->KW - 1) * p->DW) / p->SW);
    return FN(dw_round)(p->SW * cols + (p->KW - 1) * p->DW + 1);
}

/* Scratch rows needed by `rows` output rows. */
static long FN(dw_in_rows)(const gconv_params *p, long rows)
{
    return (rows - 1) * p->SH + (p->KH - 1) * p->DH + 1;
}

static int FN(dw_use_plane)(const gconv_params *p)
{
    return p->SH == 1 && p->SW == 1 && p->OW == p->W && p->W < VLEN &&
           (p->OH + (p->KH - 1) * p->DH) * p->W <= 16384 / (long)sizeof(T);
}

/* Plane mode buffer: front margin (>= PL: the first taps read up to PL before the plane),
 * the padded rows, a tail margin for the last vectors' reads. */
static long FN(dw_plane_front)(const gconv_params *p) { return FN(dw_round)(p->PL) + VLEN; }
static long FN(dw_plane_elems)(const gconv_params *p)
{
    return FN(dw_plane_front)(p) + (p->OH + (p->KH - 1) * p->DH) * p->W + 2 * VLEN +
           (p->KW - 1) * p->DW;
}

/* Lanes mode: 3x3, stride 1, "same" padding, one output channel per input channel, small
 * planes (at least a vector of pixels, rows of at most 16) and at least VLEN channels. */
static int FN(dw_use_lanes)(const gconv_params *p)
{
    return DW_SPECIALISE && p->M == 1 && p->KH == 3 && p->KW == 3 && p->SH == 1 &&
           p->SW == 1 && p->DH == 1 && p->DW == 1 && p->PT == 1 && p->PL == 1 &&
           p->OH == p->H && p->OW == p->W && p->H * p->W >= VLEN && p->W <= 16 &&
           p->H <= 16 && p->G >= VLEN;
}

/* Units (groups, or lanes mode's blocks of VLEN channels) per task: enough work per task
 * (~64 K multiply-adds of work_unit each) to amortise scheduling, yet >= 4 tasks per
 * thread where the problem allows it. */
static long FN(dw_units_per_task)(long work_unit, long units, long N, int n_threads)
{
    long per = (65536 + work_unit - 1) / (work_unit > 0 ? work_unit : 1);
    const long max_per = N * units / (4L * n_threads);
    if (per > max_per) per = max_per;
    if (per < 1) per = 1;
    if (per > units) per = units;
    return per;
}

static void FN(dw_plan)(gconv_params *p, int n_threads)
{
    p->vlen = VLEN;
    p->zero_scratch = 1;     /* the tasks never write the padding (see dw_fill_row) */
    p->oc_vec = FN(dw_use_lanes)(p);
    p->MR = FN(dw_kernel_id)(p);
    if (p->oc_vec) {
        p->direct_b = 0;
        p->NV = 1;
        p->KC = p->NC = p->OH;
        p->n_ptiles = 1;
        p->scratch_elems = ((p->H + 2) * (p->W + 2) + 9 + 1 + p->H * p->W + 1) * VLEN;
        /* blocks of VLEN channels per task (any split gives the same results: every
         * channel is computed the same way in whichever lane and block it lands) */
        const long blocks = (p->G + VLEN - 1) / VLEN;
        const long nb = FN(dw_units_per_task)((long)VLEN * p->OH * p->OW * 9, blocks, p->N,
                                              n_threads);
        p->MB = nb * VLEN;
        p->n_mblocks = (blocks + nb - 1) / nb;
        p->n_tasks = p->N * p->n_mblocks;
        p->task_chunk = FN(task_chunk)(p->n_tasks, n_threads, FN(call_streams)(p));
        return;
    }
    p->direct_b = FN(dw_use_plane)(p);
    /* channels per strip: pairs when M >= 2 and the kernel has a pair variant */
    p->NV = p->M >= 2 && (p->direct_b ? FN(dw_plane_kernels)[p->MR][1] != NULL
                                      : FN(dw_kernels)[p->MR][1] != NULL) ? 2 : 1;
    const int rb = (p->MR == DW_K_GENERIC || p->direct_b) ? 1
                   : p->MR == DW_K_3S1D2 ? DW_RB_D2 : DW_RB;
    if (p->direct_b) {
        p->KC = p->OH;
        p->scratch_elems = 2 * FN(dw_plane_elems)(p);
    } else {
        /* sub-block: input rows of ~16 KB (stays in L1 with its output), whole strips */
        const long pitch = FN(dw_nph)(p) * FN(dw_wq)(p);
        long sb = (16 * 1024 / (long)sizeof(T) / pitch - (p->KH - 1) * p->DH - 1) / p->SH + 1;
        sb = sb / rb * rb;
        if (sb < rb) sb = rb;
        if (sb > p->OH) sb = p->OH;
        p->KC = sb;
        p->scratch_elems = FN(dw_in_rows)(p, sb) * pitch + 2 * VLEN;
    }

    const long want = 4L * n_threads;
    const long mb = FN(dw_units_per_task)(p->M * p->OH * p->OW * p->KH * p->KW, p->G, p->N,
                                          n_threads);
    p->MB = mb;
    p->n_mblocks = (p->G + mb - 1) / mb;
    /* rows per task: split the rows when images x group blocks are too few for the threads */
    const long base = p->N * p->n_mblocks;
    long rows = p->OH;
    if (n_threads > 1 && base < want) {
        const long split = (want + base - 1) / base;
        rows = (p->OH + split - 1) / split;
        rows = (rows + rb - 1) / rb * rb;
        if (rows < 1) rows = 1;
    }
    p->NC = rows;
    p->n_ptiles = (p->OH + rows - 1) / rows;
    p->n_tasks = base * p->n_ptiles;
    p->task_chunk = FN(task_chunk)(p->n_tasks, n_threads, FN(call_streams)(p));
}

/* --- copies into scratch -------------------------------------------------------------- */

/* d[0..n) = s[0..n) for n >= VLEN: whole vectors, the last one ending at n. */
DW_INLINE void FN(dw_copy_long)(T *restrict d, const T *restrict s, long n)
{
    long q = 0;
    for (; q + VLEN <= n; q += VLEN) {
        DW_VEC v = DW_LOADU(s + q);
        DW_IN_REG(v);              /* keeps GCC from turning the loop into a memmove call */
        DW_STOREU(d + q, v);
    }
    if (q < n) DW_STOREU(d + n - VLEN, DW_LOADU(s + n - VLEN));
}

/* Row mode, nph > 1 phases (dw_fill_rows does plain rows): input row xr (NULL: a zero
 * row) into scratch row dst (nph phases of wq; phase ph, position q holds padded column
 * q*nph + ph = input column q*nph + ph - PL).
 * Only the positions that hold input values are written: the padding around them is
 * zero from the start (zero_scratch) and never written. Every task lays its rows out the
 * same way, so this holds across the tasks sharing a thread's scratch. */
static void FN(dw_fill_row)(const gconv_params *p, const T *restrict xr, T *restrict dst,
                            long nph, long wq)
{
    const long PL = p->PL, W = p->W;
    for (long ph = 0; ph < nph; ph++) {
        /* valid q: 0 <= q*nph + ph - PL < W */
        long q_lo = PL - ph > 0 ? (PL - ph + nph - 1) / nph : 0;
        long q_hi = (W + PL - ph + nph - 1) / nph;
        if (q_hi > wq) q_hi = wq;
        if (q_lo > q_hi) q_lo = q_hi;
        const long n = q_hi - q_lo;
        T *d = dst + ph * wq + q_lo;
        const T *s = xr + q_lo * nph + ph - PL;      /* input of d[0] */
        if (xr == NULL) for (long q = 0; q < n; q++) d[q] = 0;
        else for (long q = 0; q < n; q++) d[q] = s[q * nph];
    }
}

/* Plain padded rows (nph == 1): input rows ih0 .. ih0+nin-1 of channel xc (zeros outside
 * the input) into scratch rows dst, pitch apart; only the input's columns are written (see
 * dw_fill_row). One loop for all rows: short rows (28 wide: two vector copies) made the
 * per-row call and set-up a fifth of some layers' time. */
static void FN(dw_fill_rows)(const gconv_params *p, const T *restrict xc, long ih0, long nin,
                             T *restrict dst, long pitch, long wq)
{
    const long PL = p->PL, W = p->W, H = p->H;
    const long q_lo = PL < wq ? PL : wq, q_hi = W + PL < wq ? W + PL : wq;
    const long n = q_hi - q_lo;
    dst += q_lo;
    for (long k = 0; k < nin; k++, dst += pitch) {
        const long ih = ih0 + k;
        if (ih < 0 || ih >= H) {
            for (long q = 0; q < n; q++) dst[q] = 0;
            continue;
        }
        const T *src = xc + ih * W;
        if (n < VLEN) {
            for (long q = 0; q < n; q++) dst[q] = src[q];
            continue;
        }
        /* dw_copy_long's loop, written out here: calling it measured 4-6 % slower on
         * effb0_dw5 and deeplab_dw_dil2 (A/B in the C harness, reproduced), for reasons of
         * code generation we did not pin down */
        long q = 0;
        for (; q + VLEN <= n; q += VLEN) {
            DW_VEC v = DW_LOADU(src + q);
            DW_IN_REG(v);          /* keeps GCC from turning the loop into a memmove call */
            DW_STOREU(dst + q, v);
        }
        if (q < n) DW_STOREU(dst + n - VLEN, DW_LOADU(src + n - VLEN));
    }
}

/* Direct mode: for the unrolled 3x3 kernels, on rows at least a vector wide. */
static int FN(dw_direct_ok)(const gconv_params *p)
{
    /* how far the masked loads reach before / past an input row: within one plane, so
     * they stay inside x when the first and last channel are left out */
    const long before = p->PL;
    const long past = p->SW * (p->OW - 1) + (p->KW - 1) * p->DW + p->SW * VLEN - p->PL - p->W;
    /* worth it for 3x3, where copying the input costs as much as a third of the
     * arithmetic; the larger kernels do enough work per input value */
    const int small_kernel = sizeof(T) == 4 &&       /* see DW_SPEC32 */
        (p->MR == DW_K_3S1 || p->MR == DW_K_3S2 || p->MR == DW_K_3S1D2);
    if (!(small_kernel && p->OW >= VLEN && before <= p->H * p->W && past <= p->H * p->W))
        return 0;
    /* at stride 2 the copy would move two input rows per output row: always worth it */
    if (p->SW == 2) return 1;
    /* and only if most of a row's vectors need no mask: masking costs an AND per load,
     * which on rows of a few vectors outweighs the copy it saves */
    const long nvec = (p->OW + VLEN - 1) / VLEN, span = p->SW * VLEN + (p->KW - 1) * p->DW;
    long masked = 0;
    for (long j = 0; j < nvec; j++) {
        const long c = j * VLEN < p->OW - VLEN ? j * VLEN : p->OW - VLEN;
        masked += !(p->SW * c - p->PL >= 0 && p->SW * c - p->PL + span <= p->W);
    }
    return 2 * masked <= nvec;
}

/* --- task ----------------------------------------------------------------------------- */

static void FN(dw_task)(const gconv_params *p, const T *x, const T *w, const T *bias,
                        const T *res, T *y, long task, T *scratch)
{
    const long per_n = p->n_mblocks * p->n_ptiles;
    const long n = task / per_n, rest = task % per_n;
    const long gb = rest / p->n_ptiles, rt = rest % p->n_ptiles;
    const long g0 = gb * p->MB, g1 = g0 + p->MB < p->G ? g0 + p->MB : p->G;
    const long oh0 = rt * p->NC, oh1 = oh0 + p->NC < p->OH ? oh0 + p->NC : p->OH;
    const long H = p->H, W = p->W, OW = p->OW, M = p->M, KK = p->KH * p->KW, SB = p->KC;
    const long plane = p->OH * OW;

    if (p->oc_vec) {
        FN(dw_lanes_task)(p, x, w, bias, res, y, n, g0, g1, scratch);
        return;
    }
    if (!p->direct_b) {
        const FN(dw_rows_fn) *fns = FN(dw_kernels)[p->MR];
        const long nph = FN(dw_nph)(p), wq = FN(dw_wq)(p), pitch = nph * wq;
        const FN(dw_args) a = {p, pitch, wq, OW, plane};
        const FN(dw_args) ad = {p, W, wq, OW, plane};
        /* rows start `lead` in, so the input's first column (padded column PL) lands on a
         * vector boundary: the copies' stores are then aligned (a store across two cache
         * lines costs two) */
        T *rows0 = scratch + (nph == 1 ? (VLEN - p->PL % VLEN) % VLEN : 0);
        /* Direct mode for the output rows whose input rows all exist: the kernels read the
         * input in place (no copy), masking the columns that fall in the left/right zero
         * padding. Their masked loads touch up to a vector before or after the row, so the
         * very first and last channel of x always go through the scratch copy. */
        long od0 = oh0, od1 = oh0;
        if (FN(dw_direct_ok)(p)) {
            const long S = p->SH, span = (p->KH - 1) * p->DH;
            od0 = (p->PT + S - 1) / S;                     /* oh*S - PT >= 0 */
            od1 = H - 1 - span + p->PT >= 0 ? (H - 1 - span + p->PT) / S + 1 : 0;
            od0 = od0 > oh0 ? od0 : oh0;
            od1 = od1 < oh1 ? od1 : oh1;
            if (od1 < od0) od1 = od0;
        }
        for (long g = g0; g < g1; g++) {
            const T *xc = x + (n * p->C_in + g) * H * W;
            const int edge_channel = (n == 0 && g == 0) || (n == p->N - 1 && g == p->G - 1);
            const long d0 = edge_channel ? oh0 : od0, d1 = edge_channel ? oh0 : od1;
            const FN(dw_rows_fn) *dfns = FN(dw_kernels_direct)[p->MR];
            for (long m0 = 0, mm; m0 < M && d1 > d0; m0 += mm) {
                mm = M - m0 >= 2 && dfns[1] ? 2 : 1;
                const long co = g * M + m0;
                const long off = (n * p->C_out + co) * plane + d0 * OW;
                dfns[mm - 1](&ad, xc + (d0 * p->SH - p->PT) * W, w + co * KK,
                             bias ? bias + co : NULL, res ? res + off : NULL, y + off, d1 - d0);
            }
            /* the other rows: [oh0, d0) and [d1, oh1), from padded copies */
            for (int part = 0; part < 2; part++) {
                /* no direct rows: all rows in part 0 */
                const long r0 = part ? (d1 > d0 ? d1 : oh1) : oh0;
                const long r1 = part ? oh1 : (d1 > d0 ? d0 : oh1);
                for (long ob = r0; ob < r1; ob += SB) {
                    const long rows = ob + SB < r1 ? SB : r1 - ob;
                    const long nin = FN(dw_in_rows)(p, rows), ih0 = ob * p->SH - p->PT;
                    if (nph == 1)
                        FN(dw_fill_rows)(p, xc, ih0, nin, rows0, pitch, wq);
                    else
                        for (long k = 0; k < nin; k++) {
                            const long ih = ih0 + k;
                            FN(dw_fill_row)(p, (ih >= 0 && ih < H) ? xc + ih * W : NULL,
                                            rows0 + k * pitch, nph, wq);
                        }
                    for (long m0 = 0, mm; m0 < M; m0 += mm) {
                        mm = M - m0 >= 2 && fns[1] ? 2 : 1;    /* no pair kernel: singly */
                        const long co = g * M + m0;
                        const long off = (n * p->C_out + co) * plane + ob * OW;
                        fns[mm - 1](&a, rows0, w + co * KK, bias ? bias + co : NULL,
                                    res ? res + off : NULL, y + off, rows);
                    }
                }
            }
        }
        return;
    }

    /* Plane mode: two buffers, each [front margin][zero rows PT][H input rows][zero rows]
     * [tail], zero but for the input rows (zero_scratch). The next channel is copied into one while the other is computed, so the
     * kernel never loads (at other offsets) what was stored just before: that would stall
     * on store-to-load forwarding. */
    const long front = FN(dw_plane_front)(p), pe = FN(dw_plane_elems)(p);
    const long f0 = oh0 * OW, f1 = oh1 * OW;
    FN(ivec) col0, col_tail;
    for (int l = 0; l < VLEN; l++) {
        col0[l] = (FN(ielem))((f0 + l) % W);
        col_tail[l] = (FN(ielem))((f1 - VLEN + l + VLEN * W) % W);
    }
    for (long g = g0; g <= g1; g++) {
        if (g < g1) {        /* copy channel g into buffer g % 2 */
            const T *xc = x + (n * p->C_in + g) * H * W;
            T *data = scratch + (g & 1) * pe + front + p->PT * W;
            if (H * W >= VLEN) FN(dw_copy_long)(data, xc, H * W);
            else for (long q = 0; q < H * W; q++) data[q] = xc[q];
        }
        if (g == g0) continue;
        const long gc = g - 1;          /* compute channel gc from buffer gc % 2 */
        const T *base = scratch + (gc & 1) * pe + front - p->PL;
        const FN(dw_plane_fn) *pfns = FN(dw_plane_kernels)[p->MR];
        for (long m0 = 0, mm; m0 < M; m0 += mm) {
            mm = M - m0 >= 2 && pfns[1] ? 2 : 1;
            const long co = gc * M + m0;
            const long off = (n * p->C_out + co) * plane;
            pfns[mm - 1](p, base, w + co * KK, bias ? bias + co : NULL, res ? res + off : NULL,
                         y + off, plane, f0, f1, col0, col_tail);
        }
    }
}

#undef DW_VEC
#undef DW_HVEC
#undef DW_HLOADU
#undef DW_HSTOREU
#undef DW_LO
#undef DW_LOADU
#undef DW_STOREU
#undef DW_BCAST
#undef DW_INLINE
#undef DW_IN_REG
#undef DW_OPAQUE
#undef DW_RB
#undef DW_RB_D2
#undef DW_NV_D2
#undef DW_RB_MAX
#undef DW_NV
#undef DW_NV2
#undef DW_E
#undef DW_KERNEL
#undef DW_LNB
#undef DW_COL_ADVANCE
#undef DW_PLANE_KERNEL
#undef DW_SPECIALISE
#undef DW_SPEC
#undef DW_SPEC32
#undef DW_S2V
#undef DW_S2_SHIFT

#pragma GCC pop_options
