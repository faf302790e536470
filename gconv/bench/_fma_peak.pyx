# gconv/bench/_fma_peak.pyx: this core's measured fp32 FMA peak, the bench's "% peak"
# denominator (fma_peak.h). Bench tooling, apart from the kernels (gconv/_kernels.pyx).


cdef extern from "fma_peak.h" nogil:
    double gconv_fma_peak(int isa, long iters)


def fma_peak_gflops(int isa, long iters=20_000_000):
    """Measured fp32 FMA peak of one core for ISA level ``isa`` (0.0 for 'generic').

    Best of three runs of a register-only FMA loop (~0.1 s each at the default iters)."""
    cdef double best = 0.0, r
    cdef int i
    with nogil:
        for i in range(3):
            r = gconv_fma_peak(isa, iters)
            if r > best:
                best = r
    return best
