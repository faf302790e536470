/* instantiate.h: compile both kernel bodies for one (dtype, ISA). Included repeatedly by
 * gconv_kernels.h (no include guard, on purpose), after it defines
 *   VBYTES     vector width in bytes (16 SSE2, 32 AVX2, 64 AVX-512)
 *   VREGS      vector registers the ISA has (16 or 32)
 *   GCONV_F64  0 for float, 1 for double
 *   SUF        the name suffix, e.g. _f32_avx512
 * It gives the bodies T, ITYPE (shuffle-mask lanes), EXP, TANH, VLEN and FN(x) = x SUF, and
 * undefines them, GCONV_F64 and SUF afterwards. */
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

#include "conv_gemm_body.h"
#include "dwconv_body.h"

#undef T
#undef ITYPE
#undef EXP
#undef TANH
#undef VLEN
#undef FN
#undef GCONV_F64
#undef SUF
