/* common/twins.h: test-only, what every kind's plain twins share (gemm/twins.h,
 * dwconv/twins.h). Compiled once per dtype, in the baseline variant (GCONV_TWINS). */

/* c + a * b, rounded as the vector code rounds it: one fused multiply-add where the
 * variant's code fuses (GCONV_FUSED), else a rounded product and a rounded sum. (The
 * baseline variant has no FMA, so nothing here is fused behind the code's back.) */
static inline T FNT(twin_madd)(int fused, T a, T b, T c)
{
    return fused ? FMA_T(a, b, c) : c + a * b;
}
