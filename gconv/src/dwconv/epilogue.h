/* dwconv/epilogue.h: the depthwise epilogue, y = act(y + r), on a kernel's finished rows:
 * common/epilogue.h's block epilogue on one row. Per variant. */

/* y[0..n) = act(y + r): common/epilogue.h's on one row. */
static inline void FN(dw_epilogue)(const dw_params *p, T *y, const T *r, long n)
{
    FN(epilogue_block)(GCONV_PB(p), y, 0, r, 1, n);
}
