"""Run by test_input_reads.py in a child process: every kernel path on inputs that sit right
against a page that cannot be read (after their last byte, then before their first), on
every ISA, at 1 and 2 threads. A read outside an input kills this process (SIGSEGV), which
the parent reports; the last line printed names the call that did it."""
import ctypes
import mmap
import sys

import numpy as np

import gconv
from gconv._reference import conv2d_reference

libc = ctypes.CDLL(None, use_errno=True)
libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
PAGE = mmap.PAGESIZE
PROT_NONE = 0
_mappings = []          # the guarded arrays' memory lives as long as the process


def guarded_copy(a, guard_after):
    """A copy of `a` whose last byte is followed (guard_after) or whose first byte is preceded
    by a page that cannot be read."""
    pages = -(-a.nbytes // PAGE) + 1
    buf = mmap.mmap(-1, pages * PAGE)
    base = ctypes.addressof(ctypes.c_char.from_buffer(buf))
    guard = base + (pages - 1) * PAGE if guard_after else base
    if libc.mprotect(guard, PAGE, PROT_NONE) != 0:
        raise OSError(ctypes.get_errno(), "mprotect failed")
    offset = (pages - 1) * PAGE - a.nbytes if guard_after else PAGE
    out = np.frombuffer(buf, a.dtype, count=a.size, offset=offset).reshape(a.shape)
    out[...] = a
    _mappings.append(buf)
    return out


# N, C_in, H, W, C_out, groups, k, stride, padding, dilation: every path and fill
CASES = [
    (1, 24, 9, 13, 40, 2, 1, 1, 0, 1),       # 1x1: B read in place
    (1, 160, 7, 7, 96, 2, 1, 1, 0, 1),       # 1x1 on 7x7: through a plane, channel vectors
    (1, 32, 23, 29, 32, 8, 3, 1, 1, 1),      # pixel vectors, planes filled by rows
    (1, 16, 30, 30, 16, 2, 3, 2, 1, 1),      # stride 2 (de-interleaved rows)
    (1, 16, 30, 30, 16, 2, 3, 3, 1, 1),      # stride 3 (through a row buffer)
    (1, 128, 7, 7, 128, 4, 3, 1, 1, 1),      # channel vectors, flat planes
    (2, 64, 4, 4, 32, 2, 3, 1, 2, 1),        # flat planes, load window at the channel's end
    (1, 64, 3, 3, 64, 2, 3, 1, 1, 1),        # planes of a 3x3 image
    (1, 32, 26, 20, 64, 1, 3, 1, 1, 1),      # rows split over tasks
    (2, 8, 5, 3, 8, 2, 3, 1, 1, 1),          # outputs narrower than a vector
    (1, 32, 7, 7, 32, 32, 3, 1, 1, 1),       # depthwise 3x3
    (1, 32, 14, 14, 32, 32, 3, 2, 1, 1),     # depthwise 3x3 stride 2
    (1, 32, 13, 13, 32, 32, 5, 1, 2, 1),     # depthwise 5x5
    (1, 32, 9, 9, 32, 32, 7, 1, 3, 1),       # depthwise 7x7
    (1, 16, 17, 17, 16, 16, 3, 1, 2, 2),     # depthwise dilated
    (1, 16, 9, 9, 32, 16, 3, 1, 1, 1),       # depth multiplier 2
    (1, 8, 6, 5, 8, 8, 4, 1, 0, 1),          # depthwise generic kernel
]

for dtype in (np.float32, np.float64):
    for case in CASES:
        N, C, H, W, Co, g, k, s, p, d = case
        rng = np.random.default_rng(0)
        x = rng.standard_normal((N, C, H, W)).astype(dtype)
        w = rng.standard_normal((Co, C // g, k, k)).astype(dtype)
        b = rng.standard_normal(Co).astype(dtype)
        expected = conv2d_reference(x, w, b, (s, s), (p, p, p, p), (d, d), g)
        r = rng.standard_normal(expected.shape).astype(dtype)
        expected = np.maximum(expected + r, 0)
        tol = 1e-4 if dtype == np.float32 else 1e-10
        for isa in gconv.available_isas():
            gconv.set_isa(isa)
            for threads in (1, 2):
                gconv.set_num_threads(threads)
                for guard_after in (True, False):
                    print(dtype.__name__, case, isa, f"{threads} thread(s)",
                          "guard after" if guard_after else "guard before", flush=True)
                    x_g, w_g, b_g, r_g = (guarded_copy(a, guard_after) for a in (x, w, b, r))
                    y = gconv.conv2d(x_g, w_g, b_g, s, p, d, g, activation="relu", residual=r_g)
                    if not np.allclose(y, expected, rtol=tol, atol=tol * np.abs(expected).max()):
                        sys.exit("wrong result")
print("all calls read inside their inputs")
