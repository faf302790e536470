/* dwconv/epilogue.h: the depthwise epilogue, y = act(y + r), as vectorisable loops (the
 * transcendental activations fall back to common/epilogue.h). Per variant. */

/* y[0..n) = act(y + r), vectorisable loops; sigmoid/tanh/silu use the shared scalar code. */
static void FN(dw_epilogue)(const dw_params *p, T *restrict y, const T *restrict r, long n)
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
        FN(epilogue_block)(GCONV_PB(p), y, n, NULL, 1, n);
        break;
    }
}
