/* common/simd.h: the vector types, loads and stores of one (dtype, ISA) variant, shared by
 * every kind. Included per variant by instantiate.h, which defines T, ITYPE, VLEN, VBYTES,
 * GCONV_F64 and FN(x) first and undefines the macros below after the variant:
 *
 *   FN(vec), FN(uvec)    VLEN elements of T; uvec is the unaligned, aliasing view for loads
 *   FN(ivec), FN(ielem)  VLEN integer lanes of T's width (shuffle indices, lane masks)
 *   VEC LOADU STOREU BCAST
 *   HAVE_MASKED_STORES   1 on AVX-512: FN(mask), MASK_STORE(p, k, v), MASK_LOAD(old, k, p)
 *   FN(iota)()           {0, 1, ..., VLEN-1}, folded into constants
 */

typedef T FN(vec) __attribute__((vector_size(VLEN * sizeof(T))));
typedef T FN(uvec) __attribute__((vector_size(VLEN * sizeof(T)), aligned(sizeof(T)), may_alias));
typedef ITYPE FN(ielem);                                                 /* lane indices */
typedef ITYPE FN(ivec) __attribute__((vector_size(VLEN * sizeof(T))));   /* shuffle masks */

#define VEC FN(vec)
#define LOADU(p) ((VEC)(*(const FN(uvec) *)(p)))
#define STOREU(p, v) (*(FN(uvec) *)(p) = (v))
/* s - 0 == s exactly (also for -0.0), so this folds to a plain broadcast */
#define BCAST(s) ((T)(s) - (VEC){0})

#if VBYTES == 64
#define HAVE_MASKED_STORES 1
#if GCONV_F64
typedef __mmask8 FN(mask);
#define MASK_STORE(p, k, v) _mm512_mask_storeu_pd((p), (k), (__m512d)(v))
#define MASK_LOAD(old, k, p) ((VEC)_mm512_mask_loadu_pd((__m512d)(old), (k), (p)))
#else
typedef __mmask16 FN(mask);
#define MASK_STORE(p, k, v) _mm512_mask_storeu_ps((p), (k), (__m512)(v))
#define MASK_LOAD(old, k, p) ((VEC)_mm512_mask_loadu_ps((__m512)(old), (k), (p)))
#endif
#else
#define HAVE_MASKED_STORES 0
#endif

/* {0, 1, ..., VLEN-1}, loaded from a constant table so that the compiler folds the masks
 * computed from it into constants. */
static const ITYPE FN(iota_tab)[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
typedef ITYPE FN(uivec) __attribute__((vector_size(VLEN * sizeof(T)), aligned(sizeof(T)), may_alias));
static inline FN(ivec) FN(iota)(void) { return (FN(ivec))(*(const FN(uivec) *)FN(iota_tab)); }
