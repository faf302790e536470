# gconv/_kernels.pyx: the compiled kernels. This module only computes.
#
# Design:
#   (a) The Python façade (gconv/_conv.py) validates, normalises and allocates; nothing
#       here checks user input. Entry points take C-contiguous arrays of the plan's dtype and
#       a preallocated output, and write into it.
#   (b) The arithmetic lives in C headers (src/), by role: common/ (vector types, transposes,
#       epilogue, scheduling), one folder per kind (gemm/: pointwise and general paths,
#       pack -> macro-kernel -> register-tiled micro-kernel; dwconv/: depthwise). Each kind
#       is compiled once per (dtype, ISA); src/registry.h lists one row of entry points per
#       (kind, dtype, ISA) and gconv_kernels.h picks the ISA at run time from the CPU's
#       features. Nothing here knows a kind's internals: a Plan calls its registry row.
#   (c) A Plan holds the problem and its blocking (the kind's parameters, which begin with
#       the problem, src/common/problem.h), made once per problem and cached by the façade.
#       The same Plan must be used to pack weights and to run.
#   (d) Parallelism: prange over independent tasks (image x group x tile), dynamic schedule
#       in chunks of the plan's task_chunk (runs of consecutive tasks for calls that stream
#       from memory). Each task writes its own block of the output and reduces every
#       element in a fixed order, so results are bitwise identical for any thread count
#       and split. Per-thread scratch is allocated inside `with nogil, parallel()`. OpenMP
#       calls come only from _openmp.pxd.
#   (e) The GIL is released around every kernel, also in a serial build.
#   (f) LeanCall: a layer's repeated call, its arguments checked by C comparisons against
#       the signature it was made for (the one exception to (a): the façade made the
#       signature, this only recognises it again).

cimport cython
from cython.parallel cimport parallel, prange
from libc.stdlib cimport calloc, free
from libc.string cimport memset
cimport numpy as cnp

from gconv._openmp cimport GCONV_OPENMP_ENABLED, omp_get_max_threads

import numpy as np

cnp.import_array()


cdef extern from "stdlib.h" nogil:
    void *aligned_alloc(size_t alignment, size_t size)


cdef extern from "gconv_kernels.h" nogil:
    ctypedef struct gconv_problem:    # src/common/problem.h: the head of every kind's params
        long N, G, C_in, H, W, C_out, KH, KW, SH, SW, DH, DW, PT, PL, OH, OW
        long M, CG, K, P
        int act
        double alpha, lo, hi

    enum: GCONV_MAX_FIELDS
    ctypedef struct gconv_field:
        const char *name
        long value
        const char *text
        int is_flag
    ctypedef struct gconv_report:     # src/common/kind.h
        long n_tasks, task_chunk, scratch_elems
        int zero_scratch
        int n_fields
        gconv_field fields[GCONV_MAX_FIELDS]
        char path[128]
        char reason[1024]
    int GCONV_PLAN_POINTWISE

    ctypedef struct gconv_ukr_info:   # src/common/microkernel_test.h (test-only)
        const char *family
        char name[48]
        int shape[4]
    ctypedef struct gconv_ukr_call:
        const void *w
        const void *x
        const long *offs
        const void *bias
        const void *res
        void *out
        long n[12]
        double d[3]
    ctypedef struct gconv_ukr_tests:
        int (*list)(int index, gconv_ukr_info *info) noexcept nogil
        int (*run)(int index, int twin, const gconv_ukr_call *call) noexcept nogil

    ctypedef void (*gconv_task_fn)(const void *params, const void *x, const void *w,
                                   const void *bias, const void *residual, void *y,
                                   long task_index, void *scratch) noexcept nogil
    ctypedef struct gconv_kind:       # src/common/kind.h: one registry row
        const char *name
        size_t params_size
        void (*plan)(void *params, int n_threads, int flags) noexcept nogil
        void (*report)(const void *params, gconv_report *out) noexcept nogil
        long (*weight_elems)(const void *params, long *tmp_elems) noexcept nogil
        void (*pack_weights)(const void *params, const void *w, void *packed,
                             void *tmp) noexcept nogil
        gconv_task_fn task
        gconv_ukr_tests tests

    const gconv_kind *gconv_kind_row(int kind, int is_f64, int isa)
    int GCONV_N_KINDS

    ctypedef struct gconv_dw_kernel_info:
        const char *name
        int k, stride, dilation
    const gconv_dw_kernel_info *gconv_dw_kernels
    int DW_N_KERNELS

    int gconv_cpu_max_isa()
    int GCONV_ISA_GENERIC, GCONV_ISA_AVX2, GCONV_ISA_AVX512


ISA_NAMES = ("generic", "avx2", "avx512")
# The kinds the registry lists (src/registry.h), name -> index: 'gemm' (pointwise and general
# paths), 'depthwise'.
KINDS = {gconv_kind_row(k, 0, GCONV_ISA_GENERIC).name.decode(): k for k in range(GCONV_N_KINDS)}
# The depthwise kind's row-mode kernels by id (src/dwconv/params.h): (name, kernel size,
# stride, dilation); id 0, 'generic', has runtime taps (size 0).
DW_KERNELS = tuple((gconv_dw_kernels[i].name.decode(), gconv_dw_kernels[i].k,
                    gconv_dw_kernels[i].stride, gconv_dw_kernels[i].dilation)
                   for i in range(DW_N_KERNELS))
# Plan flags (src/common/kind.h): what Python decided before the planner runs.
PLAN_POINTWISE = GCONV_PLAN_POINTWISE


def openmp_enabled():
    """True when this build was compiled with OpenMP."""
    return bool(GCONV_OPENMP_ENABLED)


def omp_max_threads():
    """omp_get_max_threads(): honours OMP_NUM_THREADS; 1 in a serial build."""
    return omp_get_max_threads()


def cpu_max_isa():
    """Index into ISA_NAMES of the best variant this CPU can run."""
    return gconv_cpu_max_isa()


@cython.final
cdef class Plan:
    """One problem's kernel plan: its kind's parameters (the problem, then the blocking the
    kind's planner chose), kind, dtype and ISA.

    Plan(problem, kind, isa, n_threads, flags=0): problem is a ConvProblem (read by
    attribute: N, C_in, H, W, C_out, groups, KH, KW, stride, padding, dilation, OH, OW,
    dtype); kind an index of KINDS; flags PLAN_* bits."""
    cdef void *params                # the kind's parameter struct (row.params_size bytes)
    cdef gconv_problem *pb           # its head
    cdef const gconv_kind *ops       # the registry row of (kind, dtype, ISA)
    cdef gconv_report rep            # the schedule and the blocking, as the kind reports it
    cdef readonly int kind
    cdef readonly int isa
    cdef readonly bint is_f64
    cdef readonly int n_threads

    def __cinit__(self, problem, int kind, int isa, int n_threads, int flags=0):
        if not 0 <= kind < GCONV_N_KINDS or not 0 <= isa <= GCONV_ISA_AVX512:
            raise ValueError(f"Plan: no kind {kind} or ISA {isa}")
        self.kind = kind
        self.is_f64 = np.dtype(problem.dtype) == np.float64
        self.isa = isa
        self.n_threads = n_threads
        self.ops = gconv_kind_row(kind, self.is_f64, isa)
        if self.ops == NULL:
            raise ValueError(f"Plan: this build has no {ISA_NAMES[isa]} variant")
        self.params = calloc(1, self.ops.params_size)
        if self.params == NULL:
            raise MemoryError("gconv: could not allocate a plan")
        cdef gconv_problem *pb = <gconv_problem *>self.params
        self.pb = pb
        pb.N, pb.C_in, pb.H, pb.W = problem.N, problem.C_in, problem.H, problem.W
        pb.C_out, pb.G, pb.KH, pb.KW = problem.C_out, problem.groups, problem.KH, problem.KW
        pb.SH, pb.SW = problem.stride
        pb.DH, pb.DW = problem.dilation
        pb.PT, _, pb.PL, _ = problem.padding
        pb.OH, pb.OW = problem.OH, problem.OW
        pb.M = pb.C_out // pb.G
        pb.CG = pb.C_in // pb.G
        pb.K = pb.CG * pb.KH * pb.KW
        pb.P = pb.OH * pb.OW
        self.ops.plan(self.params, n_threads, flags)
        self.ops.report(self.params, &self.rep)

    def __dealloc__(self):
        free(self.params)

    @property
    def n_tasks(self):
        return self.rep.n_tasks

    @property
    def path(self):
        """The path the kind's planner chose, by name: 'depthwise / lanes mode, 3x3
        unrolled', 'pointwise / B in place, 12x2 pixel-vector tiles', ..."""
        return self.rep.path.decode()

    @property
    def path_reason(self):
        """Why the planner chose that path, with the numbers that decided it."""
        return self.rep.reason.decode()

    @property
    def blocking(self):
        """The planner's choices, named by the kind (src/*/report.h), for explain() and
        tests; scratch_bytes: per-thread scratch."""
        cdef int i
        cdef const gconv_field *f
        out = {}
        for i in range(self.rep.n_fields):
            f = &self.rep.fields[i]
            out[f.name.decode()] = (f.text.decode() if f.text != NULL
                                    else bool(f.value) if f.is_flag else f.value)
        out["scratch_bytes"] = self.rep.scratch_elems * (8 if self.is_f64 else 4)
        return out

    def packed_weight_size(self):
        """Elements of the kernel's packed weights, or None when it reads the weights
        (C_out, C_in/groups, KH, KW) as given."""
        cdef long tmp_elems
        if self.ops.weight_elems == NULL:
            return None
        return self.ops.weight_elems(self.params, &tmp_elems)

    def pack_weights(self, cnp.ndarray w, cnp.ndarray out):
        """Pack weights (C_out, CG, KH, KW), C-contiguous, into out (packed_weight_size,)."""
        if self.ops.pack_weights == NULL:
            raise ValueError("this kind reads the weights as given: nothing to pack")
        cdef void *wd = cnp.PyArray_DATA(w)
        cdef void *od = cnp.PyArray_DATA(out)
        cdef long tmp_elems
        self.ops.weight_elems(self.params, &tmp_elems)
        cdef void *tmp = _scratch_alloc(tmp_elems, 8 if self.is_f64 else 4)
        if tmp == NULL:
            raise MemoryError("gconv: could not allocate the weight-packing buffer")
        with nogil:
            self.ops.pack_weights(self.params, wd, od, tmp)
        free(tmp)

    def set_epilogue(self, int act, double alpha, double lo, double hi):
        self.pb.act = act
        self.pb.alpha = alpha
        self.pb.lo = lo
        self.pb.hi = hi

    def run(self, cnp.ndarray x, cnp.ndarray w, object bias, object residual, cnp.ndarray out):
        """Compute out = act(conv(x, w) + bias + residual) into out.

        x: (N, C_in, H, W); w: packed weights (GEMM kind) or (C_out, 1, KH, KW)
        (depthwise kind); bias: (C_out,) or None; residual: like out, or None;
        out: (N, C_out, OH, OW). All C-contiguous, of the plan's dtype.
        """
        self._execute(cnp.PyArray_DATA(x), cnp.PyArray_DATA(w),
                      NULL if bias is None else cnp.PyArray_DATA(<cnp.ndarray>bias),
                      NULL if residual is None else cnp.PyArray_DATA(<cnp.ndarray>residual),
                      cnp.PyArray_DATA(out))

    cdef int _execute(self, const void *xd, const void *wd, const void *bd, const void *rd,
                      void *yd) except -1:
        if self.rep.n_tasks == 0:
            return 0
        cdef int failed = 0
        with nogil:
            failed = _run(self.params, &self.rep, self.ops.task, self.is_f64, xd, wd, bd, rd,
                          yd, self.n_threads)
        if failed:
            raise MemoryError("gconv: could not allocate per-thread scratch memory")
        return 0


# -- test-only: one micro-kernel alone, and its plain twin --------------------------------------
def microkernels(int isa, dtype):
    """Test-only. Every kind's micro-kernels compiled for ISA level ``isa`` and ``dtype``, as
    [(family, name, shape)] in each kind's list order: GEMM's tile tables (GEMM_UKR_LIST,
    GEMM_UKRC_LIST), the depthwise kernel tables and lanes tiles. ``shape`` holds the
    family's compile-time parameters (src/<kind>/microkernel_test.h)."""
    cdef bint is_f64 = np.dtype(dtype) == np.float64
    cdef const gconv_kind *row
    cdef gconv_ukr_info info
    cdef int kind, i
    found = []
    for kind in range(GCONV_N_KINDS):
        row = gconv_kind_row(kind, is_f64, isa)
        if row == NULL:
            continue
        i = 0
        while row.tests.list(i, &info):
            found.append((info.family.decode(), info.name.decode(),
                          (info.shape[0], info.shape[1], info.shape[2], info.shape[3])))
            i += 1
    return found


cdef const void *_test_array(object a, object dtype, str what) except? NULL:
    if a is None:
        return NULL
    if (not isinstance(a, np.ndarray) or a.dtype != dtype
            or not a.flags.c_contiguous):
        raise TypeError(f"run_microkernel: {what} must be a C-contiguous {np.dtype(dtype).name} "
                        f"ndarray")
    return cnp.PyArray_DATA(<cnp.ndarray>a)


def run_microkernel(str family, str name, int isa, dtype, out, *, x=None, w=None, offs=None,
                    bias=None, residual=None, ints=(), reals=(), bint twin=False):
    """Test-only. Run one micro-kernel alone on given arrays, or (twin=True) its plain C twin
    on the same arrays, writing into ``out``.

    family, name: as microkernels(isa, dtype) lists them ("gemm.ukr", "12x2"); x, w, bias,
    residual, out: C-contiguous arrays of dtype; offs: int64 offsets into x; ints (up to 12)
    and reals (up to 3: the epilogue's alpha, lo, hi): the family's arguments, documented in
    src/<kind>/microkernel_test.h with the sizes the arrays must have. The kernel trusts
    them as it trusts its planner: an array too small is an out-of-bounds access, not an
    error. ValueError when the kernel is not listed or declines the arguments."""
    cdef bint is_f64 = np.dtype(dtype) == np.float64
    cdef object dt = np.dtype(np.float64 if is_f64 else np.float32)
    cdef const gconv_kind *row
    cdef gconv_ukr_info info
    cdef gconv_ukr_call call
    cdef int kind, i, j, rc
    if len(ints) > 12 or len(reals) > 3:
        raise ValueError("run_microkernel: at most 12 ints and 3 reals")
    memset(&call, 0, sizeof(call))
    call.x = _test_array(x, dt, "x")
    call.w = _test_array(w, dt, "w")
    call.bias = _test_array(bias, dt, "bias")
    call.res = _test_array(residual, dt, "residual")
    call.out = <void *>_test_array(out, dt, "out")
    if call.out == NULL:
        raise TypeError("run_microkernel: out is required")
    if offs is not None:
        call.offs = <const long *>_test_array(offs, np.dtype(np.int64), "offs")
    for j in range(len(ints)):
        call.n[j] = ints[j]
    for j in range(len(reals)):
        call.d[j] = reals[j]
    for kind in range(GCONV_N_KINDS):
        row = gconv_kind_row(kind, is_f64, isa) if 0 <= isa <= GCONV_ISA_AVX512 else NULL
        if row == NULL:
            continue
        i = 0
        while row.tests.list(i, &info):
            if info.family.decode() == family and info.name.decode() == name:
                with nogil:
                    rc = row.tests.run(i, twin, &call)
                if rc != 0:
                    raise ValueError(f"run_microkernel: {family} {name} declines {ints}")
                return out
            i += 1
    raise ValueError(f"run_microkernel: no {family} {name!r} for ISA {isa}, "
                     f"{np.dtype(dtype).name}")


# Bumped by set_isa and set_num_threads: a LeanCall made before a change no longer matches.
cdef unsigned long _state_epoch = 0


def phase_scatter(cython.floating[:, :, :, ::1] src, cython.floating[:, :, :, ::1] dst,
                  Py_ssize_t a, Py_ssize_t b, Py_ssize_t sh, Py_ssize_t sw, int n_threads):
    """dst[:, :, a::sh, b::sw] = src (src has that view's shape): a transposed convolution's
    phase output put in place, plane by plane in parallel. (NumPy's copy of the same view is
    serial and moves ~0.5 G elements/s with a stride in the last axis: 75 % of a stride-2
    depthwise input gradient's time.)"""
    cdef Py_ssize_t C = src.shape[1], H = src.shape[2], W = src.shape[3]
    cdef Py_ssize_t plane, n, c, i, j
    with nogil:
        for plane in prange(src.shape[0] * C, num_threads=max(n_threads, 1),
                            schedule='static'):
            n = plane // C
            c = plane % C
            for i in range(H):
                for j in range(W):
                    dst[n, c, a + i * sh, b + j * sw] = src[n, c, i, j]


def bump_state_epoch():
    """The ISA or the thread count changed: every LeanCall made before stops matching."""
    global _state_epoch
    _state_epoch += 1


@cython.final
cdef class LeanCall:
    """A Conv2d layer's call of one signature with no options but ``out``, checked and run
    here.

    ``lean(x, bias, out)`` returns the output, or None when this call does not match: x is
    not an ndarray (exactly) of the signature's shape and dtype, C-contiguous, in native
    byte order; out (if given) is not such an ndarray of the output's shape, writeable and
    apart from x; or the ISA or thread count changed since (set_isa, set_num_threads, a
    fork, or OpenMP's own count moved, as threadpoolctl's limits move it). The layer then takes its general
    path, which raises the errors. The checks are C comparisons, so a repeated small call
    costs little more than its kernel (the seed layer: ~2 -> ~0.9 us; with out=, ~2.8 ->
    ~0.9 us). bias: None, or the layer's own (C-contiguous, of the plan's dtype: the layer's
    bias setter makes it so).
    """
    cdef readonly Plan plan      # for tests: the ISA and thread count it runs with
    cdef cnp.ndarray packed
    cdef unsigned long epoch
    cdef int omp_limit            # omp_get_max_threads() when made (threadpoolctl moves it)
    cdef int type_num
    cdef cnp.npy_intp in_dims[4]     # (N, C_in, H, W)
    cdef cnp.npy_intp out_dims[4]    # (N, C_out, OH, OW)

    def __cinit__(self, Plan plan, cnp.ndarray packed, tuple in_shape, tuple out_shape,
                  int type_num):
        if len(in_shape) != 4 or len(out_shape) != 4:
            raise ValueError("LeanCall: batched NCHW shapes only")
        self.plan = plan
        self.packed = packed
        self.type_num = type_num
        for i in range(4):
            self.in_dims[i] = in_shape[i]
            self.out_dims[i] = out_shape[i]
        self.epoch = _state_epoch
        self.omp_limit = omp_get_max_threads()

    def renew(self):
        """Match again after an ISA or thread change: the caller found this LeanCall under
        a key holding the current ISA and thread count, so its plan is the current one."""
        self.epoch = _state_epoch
        self.omp_limit = omp_get_max_threads()

    cdef bint _matches(self, object arr, const cnp.npy_intp *want):
        """arr is an ndarray (exactly) of shape want and the plan's dtype, C-contiguous,
        in native byte order."""
        if not cnp.PyArray_CheckExact(arr):
            return False
        cdef cnp.ndarray a = <cnp.ndarray>arr
        if (cnp.PyArray_NDIM(a) != 4 or cnp.PyArray_TYPE(a) != self.type_num
                or not cnp.PyArray_IS_C_CONTIGUOUS(a) or not cnp.PyArray_ISNOTSWAPPED(a)):
            return False
        cdef cnp.npy_intp *dims = cnp.PyArray_DIMS(a)
        cdef int i
        for i in range(4):
            if dims[i] != want[i]:
                return False
        return True

    def __call__(self, x, bias, out=None):
        if (self.epoch != _state_epoch or self.omp_limit != omp_get_max_threads()
                or not self._matches(x, self.in_dims)):
            return None
        cdef cnp.ndarray a = <cnp.ndarray>x
        cdef cnp.ndarray y
        cdef char *x0
        cdef char *y0
        if out is None:
            y = cnp.PyArray_EMPTY(4, self.out_dims, self.type_num, 0)
        else:
            if not self._matches(out, self.out_dims):
                return None
            y = <cnp.ndarray>out
            x0 = <char *>cnp.PyArray_DATA(a)
            y0 = <char *>cnp.PyArray_DATA(y)
            # both are contiguous: their bytes are exactly these two ranges
            if (not cnp.PyArray_ISWRITEABLE(y)
                    or (x0 < y0 + cnp.PyArray_NBYTES(y) and y0 < x0 + cnp.PyArray_NBYTES(a))):
                return None
        self.plan._execute(cnp.PyArray_DATA(a), cnp.PyArray_DATA(self.packed),
                           NULL if bias is None else cnp.PyArray_DATA(<cnp.ndarray>bias),
                           NULL, cnp.PyArray_DATA(y))
        return y


cdef inline void *_scratch_alloc(long n_elems, size_t elem, bint zero=False) noexcept nogil:
    # 64-byte aligned (a cache line; a full AVX-512 vector), size rounded up as C11 asks;
    # zeroed when the plan asks (its report's zero_scratch)
    cdef size_t nbytes = <size_t>n_elems * elem
    nbytes = (nbytes + 63) & ~(<size_t>63)
    cdef void *mem = aligned_alloc(64, nbytes)
    if mem != NULL and zero:
        memset(mem, 0, nbytes)
    return mem


cdef int _run(const void *p, const gconv_report *s, gconv_task_fn task, bint is_f64,
              const void *x, const void *w, const void *b, const void *r, void *y,
              int n_threads) noexcept nogil:
    """Run every task of a plan; returns 1 if per-thread scratch could not be allocated."""
    cdef void *scratch
    cdef long t
    cdef size_t elem = 8 if is_f64 else 4
    cdef int failed = 0
    cdef int *failed_p = &failed     # written through a pointer: shared by all threads
    if n_threads == 1:   # no OpenMP team for a serial call: it costs ~1 us on small problems
        scratch = _scratch_alloc(s.scratch_elems, elem, s.zero_scratch)
        if scratch == NULL:
            return 1
        for t in range(s.n_tasks):
            task(p, x, w, b, r, y, t, scratch)
        free(scratch)
        return 0
    with parallel(num_threads=n_threads):
        scratch = _scratch_alloc(s.scratch_elems, elem, s.zero_scratch)
        if scratch == NULL:
            failed_p[0] = 1
        for t in prange(s.n_tasks, schedule='dynamic', chunksize=s.task_chunk):
            if scratch != NULL:
                task(p, x, w, b, r, y, t, scratch)
        # end: prange
        free(scratch)
    # end: parallel
    return failed
