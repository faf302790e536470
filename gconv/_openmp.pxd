# The only file in gconv that touches omp.h (after scikit-learn's _openmp_helpers.pxd).
# Every OpenMP call must be cimported from here, so a serial build (no -fopenmp) still
# compiles: the functions then fall back to single-thread stubs.
cdef extern from *:
    """
    #ifdef _OPENMP
        #include <omp.h>
        #define GCONV_OPENMP_ENABLED 1
    #else
        #define GCONV_OPENMP_ENABLED 0
        static inline int omp_get_max_threads(void) { return 1; }
    #endif
    """
    bint GCONV_OPENMP_ENABLED
    int omp_get_max_threads() noexcept nogil
