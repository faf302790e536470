/* dwconv/epilogue.h: the depthwise epilogue, y = act(y + r), on a kernel's finished rows:
 * the activation loops are common/epilogue.h's. Per variant. */

/* y[0..n) = act(y + r): the residual, then common/epilogue.h's activation loops. */
static void FN(dw_epilogue)(const dw_params *p, T *restrict y, const T *restrict r, long n)
{
    if (r)
        for (long q = 0; q < n; q++) y[q] += r[q];
    FN(activate)(GCONV_PB(p), y, n);
}
