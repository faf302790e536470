/* common/epilogue.h: the fused epilogue, out = act(out + residual), on finished sums still
 * in L1, for every kind. Per variant; expects T, EXP, TANH and gconv_problem's act, alpha,
 * lo, hi. */

/* y[0, n) = act(y[0, n)), one loop per activation, so that the compiler vectorises the
 * simple ones (a switch per element kept the loop scalar: relu6 fused into a 16 -> 96 1x1
 * layer at 112x112 cost 10x the convolution). Per element the same expressions as ever. */
static inline __attribute__((always_inline)) void FN(activate)(const gconv_problem *p,
                                                                T *restrict y, long n)
{
    const T alpha = (T)p->alpha, lo = (T)p->lo, hi = (T)p->hi;
    switch (p->act) {
    /* NaN stays NaN, as in torch: compare so that a NaN fails the test */
    case GCONV_ACT_RELU:
        for (long q = 0; q < n; q++) y[q] = y[q] < 0 ? 0 : y[q];
        break;
    case GCONV_ACT_RELU6:
        for (long q = 0; q < n; q++) { T v = y[q]; v = v < 0 ? 0 : v; y[q] = v > 6 ? 6 : v; }
        break;
    case GCONV_ACT_LEAKY_RELU:      /* torch: x > 0 ? x : slope * x, so 0 * inf is NaN */
        for (long q = 0; q < n; q++) { T v = y[q]; y[q] = v > 0 ? v : alpha * v; }
        break;
    case GCONV_ACT_CLAMP:               /* torch.clamp: min(max(v, lo), hi); lo > hi gives hi */
        if (lo != lo || hi != hi) {     /* a NaN bound: NaN everywhere, as torch.clamp */
            for (long q = 0; q < n; q++) y[q] = lo + hi;
            break;
        }
        for (long q = 0; q < n; q++) { T v = y[q]; v = v < lo ? lo : v; y[q] = v > hi ? hi : v; }
        break;
    case GCONV_ACT_SIGMOID:
        for (long q = 0; q < n; q++) y[q] = (T)1 / ((T)1 + EXP(-y[q]));
        break;
    case GCONV_ACT_TANH:
        for (long q = 0; q < n; q++) y[q] = TANH(y[q]);
        break;
    case GCONV_ACT_SILU:
        for (long q = 0; q < n; q++) { T v = y[q]; y[q] = v / ((T)1 + EXP(-v)); }
        break;
    case GCONV_ACT_HARDSWISH:
        for (long q = 0; q < n; q++) {
            T v = y[q], t = v + 3;
            t = t > 0 ? (t < 6 ? t : 6) : 0;
            y[q] = v * t / 6;
        }
        break;
    default:
        break;
    }
}

/* Epilogue on an m x n block of C (rows ldc apart) that holds finished sums:
 * add the residual (same layout as C) and apply the activation while the block is in L1. */
static void FN(epilogue_block)(const gconv_problem *p, T *C, long ldc, const T *R, int m,
                                long n)
{
    if (R == NULL && p->act == GCONV_ACT_NONE) return;
    for (int i = 0; i < m; i++) {
        T *restrict c = C + i * ldc;
        if (R) {
            const T *restrict r = R + i * ldc;
            for (long q = 0; q < n; q++) c[q] += r[q];
        }
        FN(activate)(p, c, n);
    }
}
