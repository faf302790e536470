/* dwconv/twins.h: test-only plain C twins of the depthwise kernels: the contract of the row,
 * direct, plane and lanes-tile kernels, one output at a time, each reduced in the kernels'
 * order (bias, then the taps kh-major, or kw-major in plane mode, one multiply-add each,
 * fused where the variant's code fuses), then the epilogue. Compiled once per dtype (FNT,
 * in the baseline variant: GCONV_TWINS) and called by every variant's
 * dwconv/microkernel_test.h; expects common/twins.h and common/epilogue.h. */

/* MM channels of a depthwise convolution over g's geometry (input H x W, output OH x OW,
 * KH x KW taps, strides, dilations, top/left padding PT/PL, epilogue): for flat output
 * positions f in [f0, f1) of each channel m (oh = f / OW, ow = f % OW),
 *   out[m*OH*OW + f] = act(bias[m] + sum of w[m][kh][kw] * x[ih][iw] + res[m*OH*OW + f])
 * with ih = oh*SH + kh*DH - PT, iw = ow*SW + kw*DW - PL, and x = 0 outside the input. */
static void FNT(dw_twin)(int fused, int kw_outer, const gconv_problem *g, int MM, const T *x,
                         const T *w, const T *bias, const T *res, T *out, long f0, long f1)
{
    const long plane = g->OH * g->OW, KK = g->KH * g->KW;
    const long outer = kw_outer ? g->KW : g->KH, inner = kw_outer ? g->KH : g->KW;
    for (int m = 0; m < MM; m++) {
        for (long f = f0; f < f1; f++) {
            const long oh = f / g->OW, ow = f % g->OW;
            T acc = bias ? bias[m] : (T)0;
            for (long a = 0; a < outer; a++)
                for (long b = 0; b < inner; b++) {
                    const long kh = kw_outer ? b : a, kw = kw_outer ? a : b;
                    const long ih = oh * g->SH + kh * g->DH - g->PT;
                    const long iw = ow * g->SW + kw * g->DW - g->PL;
                    const int in = ih >= 0 && ih < g->H && iw >= 0 && iw < g->W;
                    acc = FNT(twin_madd)(fused, w[m * KK + kh * g->KW + kw],
                                         in ? x[ih * g->W + iw] : (T)0, acc);
                }
            out[m * plane + f] = acc;
        }
        FN(epilogue_block)(g, out + m * plane + f0, 0, res ? res + m * plane + f0 : NULL, 1,
                           f1 - f0);
    }
}

/* A lanes-mode register tile: RB output rows x NB output columns x VL channels (lanes),
 *   o[r*op + j*VL + l] = bv[l] + sum over kh, kw of wv[(kh*3 + kw)*VL + l] *
 *                        g[(r + kh)*gp + (j + kw)*VL + l]. */
static void FNT(dw_lanes_tile_twin)(int fused, int RB, int NB, int VL, const T *g, long gp,
                                    const T *wv, const T *bv, T *o, long op)
{
    for (int r = 0; r < RB; r++)
        for (int j = 0; j < NB; j++)
            for (int l = 0; l < VL; l++) {
                T acc = bv[l];
                for (int kh = 0; kh < 3; kh++)
                    for (int kw = 0; kw < 3; kw++)
                        acc = FNT(twin_madd)(fused, wv[(kh * 3 + kw) * VL + l],
                                             g[(r + kh) * gp + (j + kw) * VL + l], acc);
                o[r * op + j * VL + l] = acc;
            }
}

/* A lanes-mode-for-any-kernel tile (dwconv/lanes_any.h): RB output rows x NB output
 * columns x VL channels, taps t in order,
 *   o[r*op + j*VL + l] = bv[l] + sum over t of wv[t*VL + l] * g[toff[t] + r*rstep + j*VL + l]. */
static void FNT(dw_any_tile_twin)(int fused, int RB, int NB, int VL, const T *g, long rstep,
                                  const long *toff, long KK, const T *wv, const T *bv, T *o,
                                  long op)
{
    for (int r = 0; r < RB; r++)
        for (int j = 0; j < NB; j++)
            for (int l = 0; l < VL; l++) {
                T acc = bv[l];
                for (long t = 0; t < KK; t++)
                    acc = FNT(twin_madd)(fused, wv[t * VL + l],
                                         g[toff[t] + r * rstep + j * VL + l], acc);
                o[r * op + j * VL + l] = acc;
            }
}
