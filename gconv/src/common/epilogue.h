/* common/epilogue.h: the fused epilogue, out = act(out + residual), on finished sums in L1
 * (scalar: the reference every kind's faster loops must agree with). Per variant; expects
 * T, EXP, TANH and gconv_problem's act, alpha, lo, hi. */

/* torch.clamp: min(max(v, lo), hi), NaN in v, lo or hi giving NaN (lo > hi gives hi). */
static inline T FN(clamp)(T v, T lo, T hi)
{
    v = v < lo ? lo : v;
    v = v > hi ? hi : v;
    return (lo != lo || hi != hi) ? lo + hi : v;
}

/* Epilogue on an m x n block of C (rows ldc apart) that holds finished sums:
 * add the residual (same layout as C) and apply the activation while the block is in L1. */
static void FN(epilogue_block)(const gconv_problem *p, T *C, long ldc, const T *R, int m,
                                long n)
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
