"""The GEMM-shaped kernels' three ways of feeding the micro-kernel, each pinned and checked.

The planner picks, per problem, between B read in place (1x1, stride 1), pixel-vector tiles
on phase planes and channel-vector tiles on phase planes. These tests choose problems that
land on each one (asserting that they do, so a planner change cannot silently drop a path
from the tests) and compare with the NumPy reference on every ISA, with bias, a residual and
an activation, at 1 and 2 threads.
"""
import numpy as np
import pytest

import gconv
from gconv import _kernels
from gconv._dispatch import select
from gconv._reference import apply_activation, conv2d_reference
from gconv._validation import build_problem

# (name, N, C_in, H, W, C_out, groups, k, stride, padding, dilation, expected feed)
CASES = [
    ("direct_b", 2, 24, 9, 13, 40, 2, 1, 1, 0, 1, "direct"),
    # 1x1 on a 7x7 image: 49 pixels waste a quarter of four pixel vectors, so the input
    # is copied into a plane for channel-vector tiles
    ("pointwise_small_image", 2, 160, 7, 7, 96, 2, 1, 1, 0, 1, "channel"),
    ("pixel_vectors_small_M", 1, 32, 23, 29, 32, 8, 3, 1, 1, 1, "pixel"),
    ("pixel_vectors_stride2", 1, 16, 30, 30, 16, 2, 3, 2, 1, 1, "pixel"),
    ("pixel_vectors_k_blocks", 1, 32, 20, 37, 4, 1, 3, 1, 1, 1, "pixel"),    # K 288 in 4 blocks
    ("pixel_vectors_ragged_m", 2, 48, 12, 40, 11, 1, 3, 1, 1, 1, "pixel"),   # panels 4, 4, 3
    ("channel_vectors", 2, 64, 7, 7, 64, 2, 3, 1, 1, 1, "channel"),
    ("channel_vectors_dilated", 1, 48, 15, 11, 96, 1, 3, 1, 2, 2, "channel"),
    ("channel_vectors_5x5", 1, 32, 13, 13, 64, 1, 5, 1, 2, 1, "channel"),
    # K = 198 and M = 50 fit whole vectors of neither: the weight panels' edges
    ("channel_vectors_ragged", 1, 22, 9, 9, 50, 1, 3, 1, 1, 1, "channel"),
]


def feed_of_blocking(b):
    return "direct" if b["direct_b"] else ("channel" if b["channel_vectors"] else "pixel")


# what Plan.path says for each feed
PATH_OF_FEED = {"direct": "/ B in place, ", "channel": " channel-vector tiles",
                "pixel": "/ phase planes, "}


@pytest.fixture
def restore_isa_threads():
    isa, threads = gconv.get_isa(), gconv.get_num_threads()
    yield
    gconv.set_isa(isa)
    gconv.set_num_threads(threads)


def random_conv(dims, dtype, seed, bias=True):
    """Random x, w, b (None without bias) and their problem for dims (N, C_in, H, W, C_out,
    groups, k, stride, padding, dilation), with the tolerance the comparisons use."""
    N, C, H, W, Co, g, k, s, p, d = dims
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((Co, C // g, k, k)).astype(dtype)
    b = rng.standard_normal(Co).astype(dtype) if bias else None
    prob = build_problem(x, w, b, s, p, d, g)
    tol = (2e-5 if dtype == np.float32 else 1e-12) * np.sqrt(prob.K)
    return x, w, b, prob, tol


def reference_of(x, w, b, prob):
    return conv2d_reference(x, w, b, prob.stride, prob.padding, prob.dilation, prob.groups)


def outputs_on_every_isa(run, expected, tol, label):
    """{isa: run()} for every ISA this CPU has, each checked against `expected` and run at 1
    and 2 threads with bitwise-identical results."""
    outs = {}
    for isa in gconv.available_isas():
        gconv.set_isa(isa)
        by_threads = []
        for threads in (1, 2):
            gconv.set_num_threads(threads)
            by_threads.append(run())
        np.testing.assert_allclose(by_threads[0], expected, rtol=tol,
                                   atol=tol * np.abs(expected).max())
        assert np.array_equal(by_threads[0], by_threads[1]), \
            f"{label}: 1 and 2 threads differ on {isa}"
        outs[isa] = by_threads[0]
    return outs


@pytest.mark.parametrize("case", CASES, ids=lambda c: c[0])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_each_feed_matches_the_reference(case, dtype, restore_isa_threads):
    name, *dims, feed = case
    x, w, b, prob, tol = random_conv(dims, dtype, seed=7)
    N, C, H, W, Co, g, k, s, p, d = dims
    r = np.random.default_rng(8).standard_normal(prob.output_shape).astype(dtype)
    expected = apply_activation(reference_of(x, w, b, prob).astype(np.float64) + r,
                                "silu").astype(dtype)
    if _kernels.cpu_max_isa() >= 2:      # the tile shapes below are AVX-512's
        plan = select(prob).make_plan(prob, 2, 1)
        blocking = plan.blocking
        assert feed_of_blocking(blocking) == feed, (name, blocking)
        # ... and the plan names that path (gemm/report.h)
        assert PATH_OF_FEED[feed] in plan.path, (name, plan.path)
        # pixel tiles go straight into the output (masked stores) when rows hold a vector
        assert blocking["direct_out"] == (feed == "pixel" and
                                          prob.output_shape[-1] >= blocking["VLEN"])
    outputs_on_every_isa(
        lambda: gconv.conv2d(x, w, b, s, p, d, g, activation="silu", residual=r),
        expected, tol, name)


def test_forced_general_on_a_1x1_problem_uses_phase_planes():
    x = np.ones((1, 1, 1, 1), np.float32)
    w = np.arange(1, 5, dtype=np.float32).reshape(4, 1, 1, 1)
    prob = build_problem(x, w, None, 1, 0, 1, 1)
    plan = select(prob, "general").make_plan(prob, gconv._isa.isa_level(), 1)
    assert not plan.blocking["direct_b"]
    np.testing.assert_array_equal(gconv.conv2d(x, w, algorithm="general").ravel(), [1, 2, 3, 4])


def test_scratch_is_bounded_by_cache_sized_tiles():
    # ResNeXt-50's widest grouped layer at batch 8: per-thread scratch stays well under the
    # 1 MB L2, far below an im2col of the input (8 x 128 x 9 x 56 x 56 floats = 58 MB)
    x = np.empty((8, 128, 56, 56), np.float32)
    w = np.empty((128, 4, 3, 3), np.float32)
    prob = build_problem(x, w, None, 1, 1, 1, 32)
    for isa_level in range(_kernels.cpu_max_isa() + 1):
        plan = select(prob).make_plan(prob, isa_level, 2)
        assert plan.blocking["scratch_bytes"] < 512 * 1024


def test_two_threads_split_pixels_before_channels(restore_isa_threads):
    # MobileNetV2's 144 -> 24 projection at 56x56: enough pixel tiles for ~4 tasks per
    # thread, so the 24 output channels stay one block (each channel block would read the
    # whole input again), and 1 and 2 threads agree bitwise
    rng = np.random.default_rng(11)
    x = rng.standard_normal((1, 144, 56, 56)).astype(np.float32)
    w = rng.standard_normal((24, 144, 1, 1)).astype(np.float32)
    prob = build_problem(x, w, None, 1, 0, 1, 1)
    for isa_level in range(_kernels.cpu_max_isa() + 1):
        blocking = select(prob).make_plan(prob, isa_level, 2).blocking
        assert blocking["MB"] >= 24 and blocking["n_tasks"] >= 8, (isa_level, blocking)
    outs = []
    for n in (1, 2):
        gconv.set_num_threads(n)
        outs.append(gconv.conv2d(x, w))
    np.testing.assert_allclose(outs[1], conv2d_reference(x, w, None, (1, 1), (0,) * 4, (1, 1), 1),
                               rtol=1e-4, atol=1e-4)
    assert np.array_equal(outs[0], outs[1])


# Plain outputs (no epilogue) go out in whole vectors that may run into the next output row
# of the same task, or by masked stores straight from the micro-kernel (AVX-512): both must
# stay inside the task (calls big enough to prefetch are tested below).
# Outputs narrower than a vector, ragged row blocks and 2 threads (rows split over tasks),
# written into the middle of a sentinel-filled buffer.
EDGE_CASES = [
    # N, C_in, H, W, C_out, groups, k, stride, padding
    (1, 8, 5, 3, 8, 2, 3, 1, 1),        # OW 3: every row shorter than a vector
    (2, 4, 17, 6, 4, 4, 3, 1, 1),       # depthwise-shaped groups, OW 6
    (1, 8, 23, 19, 8, 8, 3, 1, 1),      # OW 19: one full vector and a tail
    (3, 16, 31, 33, 16, 8, 3, 2, 1),    # stride 2
    (1, 32, 20, 37, 4, 1, 3, 1, 1),     # written straight from the micro-kernel, K in blocks
    (1, 64, 9, 9, 64, 1, 3, 1, 1),      # channel vectors
]


def outputs_inside_sentinels(prob, label, run):
    """run(out) at 1 and 2 threads, out in the middle of a sentinel-filled buffer; asserts
    that nothing outside out was written and returns the two outputs."""
    size = int(np.prod(prob.output_shape))
    outs = []
    for threads in (1, 2):
        gconv.set_num_threads(threads)
        buf = np.full(size + 64, 12345.0, np.float32)
        out = buf[32:32 + size].reshape(prob.output_shape)
        run(out)
        assert np.all(buf[:32] == 12345.0) and np.all(buf[32 + size:] == 12345.0), label
        outs.append(out.copy())
    return outs


@pytest.mark.parametrize("case", EDGE_CASES)
def test_plain_outputs_stay_inside_their_tasks(case, restore_isa_threads):
    N, C, H, W, Co, g, k, s, p = case
    rng = np.random.default_rng(3)
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    w = rng.standard_normal((Co, C // g, k, k)).astype(np.float32)
    b = rng.standard_normal(Co).astype(np.float32)
    prob = build_problem(x, w, b, s, p, 1, g)
    expected = conv2d_reference(x, w, b, prob.stride, prob.padding, prob.dilation, g)
    for isa in gconv.available_isas():
        gconv.set_isa(isa)
        outs = outputs_inside_sentinels(prob, (case, isa), lambda out: gconv.conv2d(
            x, w, b, s, p, 1, g, out=out, algorithm="general"))
        np.testing.assert_allclose(outs[0], expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
        assert np.array_equal(outs[0], outs[1]), (case, isa)


def test_calls_that_stream_prefetch_the_next_task_and_match(restore_isa_threads):
    # input + output above 4 MiB: the phase-plane tasks prefetch the next task's rows
    # (a guess that may be wrong: it must never change results or write anywhere)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 64, 48, 48)).astype(np.float32)
    w = rng.standard_normal((64, 8, 3, 3)).astype(np.float32)
    prob = build_problem(x, w, None, 1, 1, 1, 8)
    small = build_problem(x[:1, :, :24, :24], w, None, 1, 1, 1, 8)
    level = gconv._isa.isa_level()
    assert select(prob).make_plan(prob, level, 2).blocking["prefetch"]
    assert not select(small).make_plan(small, level, 2).blocking["prefetch"]
    # ... and each thread takes runs of consecutive tasks (one at a time in cache, or alone)
    assert select(prob).make_plan(prob, level, 2).blocking["task_chunk"] > 1
    assert select(prob).make_plan(prob, level, 1).blocking["task_chunk"] == 1
    assert select(small).make_plan(small, level, 2).blocking["task_chunk"] == 1
    expected = conv2d_reference(x, w, None, prob.stride, prob.padding, prob.dilation, 8)
    for isa in gconv.available_isas():
        gconv.set_isa(isa)
        outs = outputs_inside_sentinels(prob, isa, lambda out: gconv.conv2d(
            x, w, None, 1, 1, 1, 8, out=out))
        np.testing.assert_allclose(outs[0], expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
        assert np.array_equal(outs[0], outs[1]), isa


# Phase planes filled as flat runs (fill_flat_planes: a load, a permute and a mask per plane
# vector) or row by row. (name, N, C_in, H, W, C_out, groups, k, stride, padding, dilation,
# flat on AVX-512)
FILL_CASES = [
    ("flat_7x7", 1, 128, 7, 7, 128, 4, 3, 1, 1, 1, True),
    # 16 input elements per channel, padding 2: the load window is pulled back to stay
    # inside the channel (the last channel's window ends exactly at the input's end)
    ("flat_4x4_window_at_channel_end", 2, 64, 4, 4, 32, 2, 3, 1, 2, 1, True),
    ("flat_dilated_uneven_padding", 1, 48, 11, 13, 48, 2, 3, 1, (0, 2), 2, True),
    # groups 1 at 2 threads: rows split over tasks, so planes start inside the image
    ("flat_row_blocks", 1, 32, 26, 20, 64, 1, 3, 1, 1, 1, True),
    ("rows_3x3_image", 1, 64, 3, 3, 64, 2, 3, 1, 1, 1, False),      # fewer than 16 elements
    ("rows_few_channels", 1, 16, 30, 30, 16, 4, 3, 1, 1, 1, False),  # recipes not worth it
    ("rows_stride2", 1, 64, 14, 14, 64, 2, 3, 2, 1, 1, False),
    # strides 3..6: each phase's vectors picked out of the row's vectors by shuffle chains
    # (fill_strided_rows); rows ending near the input's end read exactly; stride 7 still
    # through the row buffer
    ("rows_stride3", 2, 32, 59, 47, 32, 8, 3, 3, 1, 1, False),
    ("rows_stride4_5x5", 1, 16, 40, 70, 24, 4, 5, (4, 3), 2, 1, False),
    ("rows_stride5_dilated", 1, 12, 33, 81, 12, 3, 3, (2, 5), 2, 2, False),
    ("rows_stride6_small", 2, 8, 13, 17, 16, 2, 2, 6, 1, 1, False),
    ("rows_stride7", 1, 8, 30, 50, 8, 1, 3, 7, 1, 1, False),
]


@pytest.mark.parametrize("case", FILL_CASES, ids=lambda c: c[0])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_flat_and_row_plane_fills_match_the_reference(case, dtype, restore_isa_threads):
    name, *dims, flat = case
    x, w, _, prob, tol = random_conv(dims, dtype, seed=11, bias=False)
    N, C, H, W, Co, g, k, s, p, d = dims
    expected = reference_of(x, w, None, prob)
    if dtype == np.float32 and _kernels.cpu_max_isa() >= 2:
        blocking = select(prob).make_plan(prob, 2, 2).blocking
        assert blocking["flat_planes"] == flat, (name, blocking)
        if name == "flat_row_blocks":
            assert blocking["NC"] < prob.output_shape[2], blocking
    outputs_on_every_isa(lambda: gconv.conv2d(x, w, None, s, p, d, g, algorithm="general"),
                         expected, tol, name)


# Channel-vector tiles leave out the kernel rows that read only zero padding rows (in their
# tap order those are the ends of the reduction). (name, N, C_in, H, W, C_out, groups, k,
# stride, padding, dilation)
PADDING_ROW_CASES = [
    ("every_row_in_padding", 1, 32, 2, 5, 32, 1, 3, 1, 3, 1),   # rows 0, 5: bias only
    ("dilated", 1, 32, 6, 6, 32, 1, 3, 1, 2, 2),
    ("strided", 1, 32, 9, 9, 32, 1, 3, 2, 1, 1),
    ("5x5", 1, 16, 7, 7, 32, 1, 5, 1, 2, 1),
    ("groups", 2, 64, 5, 5, 32, 2, 3, 1, 2, 1),
    ("top_padding_only", 1, 32, 7, 7, 32, 1, 3, 1, (3, 0), 1),
]


@pytest.mark.parametrize("case", PADDING_ROW_CASES, ids=lambda c: c[0])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_channel_vector_tiles_skip_padding_rows_exactly(case, dtype, restore_isa_threads):
    name, *dims = case
    x, w, b, prob, tol = random_conv(dims, dtype, seed=13)
    N, C, H, W, Co, g, k, s, p, d = dims
    if dtype == np.float32 and _kernels.cpu_max_isa() >= 2:
        assert select(prob).make_plan(prob, 2, 1).blocking["channel_vectors"], name
    expected = reference_of(x, w, b, prob)
    outs = outputs_on_every_isa(lambda: gconv.conv2d(x, w, b, s, p, d, g), expected, tol, name)
    if name == "every_row_in_padding":          # nothing but the bias, exactly
        for y in outs.values():
            assert np.array_equal(y[:, :, [0, 5]],
                                  np.broadcast_to(b[None, :, None, None], (N, Co, 2, 9)))
