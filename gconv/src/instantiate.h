/* instantiate.h: compile every kind once for one (dtype, ISA) variant. Included repeatedly
 * by gconv_kernels.h (no include guard, on purpose), after it defines
 *   VBYTES     vector width in bytes (16 SSE2, 32 AVX2, 64 AVX-512)
 *   VREGS      vector registers the ISA has (16 or 32)
 *   GCONV_F64  0 for float, 1 for double
 *   SUF        the name suffix, e.g. _f32_avx512
 * It gives the bodies T, ITYPE (integer lanes of T's width), EXP, TANH, VLEN,
 * FN(x) = x SUF, FNT(x) = x _f32 or x _f64 (the plain twins, compiled once per dtype: in
 * the baseline variant, GCONV_TWINS) and GCONV_FUSED (the variant's vector code fuses
 * a * b + c into one FMA), includes common/ (vector types, scheduling, transposes,
 * epilogue) and then each kind's folder, and undefines everything per variant afterwards. */
#if GCONV_F64
#define T double
#define ITYPE long long
#define EXP exp
#define TANH tanh
#define VLEN (VBYTES / 8)
#else
#define T float
#define ITYPE int
#define EXP expf
#define TANH tanhf
#define VLEN (VBYTES / 4)
#endif
#define FN(x) GCONV_PASTE(x, SUF)
#if GCONV_F64
#define FNT(x) x##_f64
#define FMA_T fma
#else
#define FNT(x) x##_f32
#define FMA_T fmaf
#endif
#define GCONV_TWINS (VBYTES == 16)
#if VBYTES >= 32 || defined(__FMA__) || defined(__ARM_FEATURE_FMA)
#define GCONV_FUSED 1
#else
#define GCONV_FUSED 0
#endif

#include "common/simd.h"
#include "common/schedule.h"
#include "common/transpose.h"
#include "common/epilogue.h"
#if GCONV_TWINS
#include "common/twins.h"
#endif

#include "gemm/gemm.h"
#include "dwconv/dwconv.h"

#undef VEC
#undef LOADU
#undef STOREU
#undef BCAST
#undef HAVE_MASKED_STORES
#undef MASK_STORE
#undef MASK_LOAD
#undef T
#undef ITYPE
#undef EXP
#undef TANH
#undef VLEN
#undef FN
#undef FNT
#undef FMA_T
#undef GCONV_TWINS
#undef GCONV_FUSED
#undef GCONV_F64
#undef SUF
