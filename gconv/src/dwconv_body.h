/* dwconv_body.h: depthwise convolution (one input channel per group, M = C_out/G output
 * channels per input channel: M > 1 is a depth multiplier). Included per (dtype, ISA) like
 * conv_gemm_body.h, with the same T / VLEN / FN macros.
 *
 * Task = (image n, group g, block of output rows). Each task writes only its own rows of
 * the M output channels of group g, so results do not depend on the thread count.
 *
 * This is the plain direct version: bounds-checked taps, no SIMD specialisation yet.
 */

static void FN(dw_plan)(gconv_params *p, int n_threads)
{
    p->vlen = VLEN;
    /* rows per task: enough tasks for every thread, whole output otherwise */
    long base = p->N * p->G;
    long want = 4L * n_threads;
    long rows = p->OH;
    if (n_threads > 1 && base < want) {
        long split = (want + base - 1) / base;
        rows = (p->OH + split - 1) / split;
        if (rows < 1) rows = 1;
    }
    p->NC = rows;                                   /* output rows per task */
    p->n_ptiles = (p->OH + rows - 1) / rows;
    p->n_tasks = base * p->n_ptiles;
    p->scratch_elems = 64;
}

static void FN(dw_task)(const gconv_params *p, const T *x, const T *w, const T *bias,
                        const T *res, T *y, long task, T *scratch)
{
    (void)scratch;
    const long ng = task / p->n_ptiles, rt = task % p->n_ptiles;
    const long n = ng / p->G, g = ng % p->G;
    const long H = p->H, W = p->W, OH = p->OH, OW = p->OW, KH = p->KH, KW = p->KW;
    const long oh0 = rt * p->NC, oh1 = (oh0 + p->NC < OH) ? oh0 + p->NC : OH;
    const T *xc = x + (n * p->C_in + g) * H * W;
    for (long j = 0; j < p->M; j++) {
        const long co = g * p->M + j;
        const T *wk = w + co * KH * KW;
        const T b = bias ? bias[co] : (T)0;
        T *yc = y + (n * p->C_out + co) * OH * OW;
        const T *rc = res ? res + (n * p->C_out + co) * OH * OW : NULL;
        for (long oh = oh0; oh < oh1; oh++) {
            for (long ow = 0; ow < OW; ow++) {
                T acc = b;
                for (long kh = 0; kh < KH; kh++) {
                    long ih = oh * p->SH - p->PT + kh * p->DH;
                    if (ih < 0 || ih >= H) continue;
                    for (long kw = 0; kw < KW; kw++) {
                        long iw = ow * p->SW - p->PL + kw * p->DW;
                        if (iw < 0 || iw >= W) continue;
                        acc += wk[kh * KW + kw] * xc[ih * W + iw];
                    }
                }
                yc[oh * OW + ow] = acc;
            }
            FN(epilogue_block)(p, yc + oh * OW, OW, rc ? rc + oh * OW : NULL, 1, OW);
        }
    }
}
