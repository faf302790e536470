"""gconv.explain: shapes and counts against torch.nn.Conv2d, connections against what a
convolution actually computes, the kernel path against the dispatcher, the text report and
the pictures. The seed write-up's 16 -> 4 example (shared/seeds/000_*.txt) is the anchor.
"""
import re
import sys

import numpy as np
import pytest
import torch

import gconv
from gconv import _dispatch
from gconv._validation import build_problem

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")


@pytest.mark.parametrize("groups, weight_shape", [(1, (4, 16, 1, 1)), (2, (4, 8, 1, 1)),
                                                  (4, (4, 4, 1, 1))])
def test_seed_16_to_4_shapes_and_parameters(groups, weight_shape):
    e = gconv.explain(16, 4, groups=groups)
    module = torch.nn.Conv2d(16, 4, kernel_size=1, groups=groups)
    assert e.weight_shape == weight_shape == tuple(module.weight.shape)
    assert e.bias_shape == (4,) == tuple(module.bias.shape)
    assert e.parameters == sum(p.numel() for p in module.parameters())
    assert e.weight_count == module.weight.numel()
    assert e.dense_parameters == 16 * 4 + 4
    assert e.parameter_ratio == pytest.approx(e.parameters / 68)
    assert e.valid_groups == [1, 2, 4]
    assert e.in_channels_per_group == 16 // groups and e.out_channels_per_group == 4 // groups


def test_parameters_without_bias():
    e = gconv.explain(8, 4, kernel_size=5, groups=4, bias=False)
    module = torch.nn.Conv2d(8, 4, 5, groups=4, bias=False)
    assert e.bias_shape is None
    assert e.parameters == module.weight.numel() == 4 * 2 * 25
    assert e.parameter_ratio == pytest.approx(1 / 4)


@pytest.mark.parametrize("c_in, c_out", [(16, 4), (3, 9), (8, 4), (12, 18), (7, 5), (64, 64)])
def test_valid_groups_are_exactly_the_values_torch_accepts(c_in, c_out):
    accepted = []
    for g in range(1, max(c_in, c_out) + 1):
        try:
            torch.nn.Conv2d(c_in, c_out, 1, groups=g)
            accepted.append(g)
        except ValueError:
            pass
    assert gconv.explain(c_in, c_out).valid_groups == accepted


CONNECTION_CASES = [(16, 4, 1), (16, 4, 2), (16, 4, 4), (8, 16, 4), (6, 6, 6), (4, 8, 2),
                    (12, 6, 3)]


@pytest.mark.parametrize("c_in, c_out, groups", CONNECTION_CASES)
def test_connections_are_what_the_convolution_computes(c_in, c_out, groups):
    """Feed one input channel at a time through an all-ones convolution: the output
    channels that light up are the ones that input feeds."""
    e = gconv.explain(c_in, c_out, groups=groups)
    weight = torch.ones(c_out, c_in // groups, 1, 1)
    fed_by = {o: set() for o in range(c_out)}
    for i in range(c_in):
        x = torch.zeros(1, c_in, 1, 1)
        x[0, i] = 1
        lit = torch.nn.functional.conv2d(x, weight, groups=groups)[0, :, 0, 0]
        lit_outputs = {o for o in range(c_out) if lit[o] != 0}
        assert set(e.outputs_of(i)) == lit_outputs
        for o in lit_outputs:
            fed_by[o].add(i)
    for o in range(c_out):
        assert set(e.inputs_of(o)) == fed_by[o] == set(e.connections[o])
    assert [set(r) for r in e.group_inputs] == [set(e.inputs_of(g * (c_out // groups)))
                                                for g in range(groups)]


def test_seed_values_follow_from_the_connections():
    """The seed's conv_g4 (weights 3, bias 0) on x[:, c] = c + 1 gives channel means
    30, 78, 126, 174: three times the sum of the inputs each output sees."""
    e = gconv.explain(16, 4, groups=4)
    assert [3 * sum(c + 1 for c in e.inputs_of(o)) for o in range(4)] == [30, 78, 126, 174]
    x = np.tile((np.arange(16) + 1.0).reshape(1, 16, 1, 1), (2, 1, 10, 10)).astype(np.float32)
    y = gconv.conv2d(x, np.full(e.weight_shape, 3.0, np.float32), groups=4)
    assert [float(y[:, o].mean()) for o in range(4)] == [30, 78, 126, 174]


# -- the kernel path ------------------------------------------------------------------------
@pytest.mark.parametrize("args, kwargs, path, declined", [
    ((16, 4), dict(groups=4), "pointwise", ["depthwise"]),
    ((16, 4), dict(kernel_size=3, groups=4, padding=1), "general", ["depthwise", "pointwise"]),
    ((16, 4), dict(groups=4, stride=2), "general", ["depthwise", "pointwise"]),
    ((16, 16), dict(kernel_size=3, groups=16, padding=1), "depthwise", []),
    ((8, 16), dict(kernel_size=5, groups=8, stride=2), "depthwise", []),
])
def test_path_and_why_agree_with_the_dispatcher(args, kwargs, path, declined):
    e = gconv.explain(*args, **kwargs, input_size=(2, args[0], 12, 12))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, args[0], 12, 12)).astype(np.float32)
    w = np.zeros(e.weight_shape, np.float32)
    problem = build_problem(x, w, None, kwargs.get("stride", 1), kwargs.get("padding", 0), 1,
                            kwargs["groups"])
    assert e.algorithm == path == _dispatch.select(problem).name
    assert [name for name, _ in e.declined] == declined
    for name, reason in e.declined:
        assert reason == _dispatch.BY_NAME[name].why_not(problem)
    # and it is the same without an input size
    assert gconv.explain(*args, **kwargs).algorithm == path


def test_seed_example_path_reason_in_words():
    e = gconv.explain(16, 4, groups=4)
    (name, reason), = e.declined
    assert name == "depthwise" and "16/4 = 4" in reason
    text = str(e)
    assert "kernel path: pointwise" in text
    assert "depthwise declined: " + reason in text


# -- the path inside the implementation: the compiled planner's choice, named and explained --
@pytest.fixture
def isa_restored():
    isa = gconv.get_isa()
    yield
    gconv.set_isa(isa)


# (args, kwargs, input_size, {ISA: path}); every path the planners choose, named
PATH_CASES = [
    ((672, 672), dict(kernel_size=3, groups=672, padding=1), 14,
     {"avx512": "depthwise / lanes mode, 3x3 unrolled",
      "avx2": "depthwise / lanes mode, 3x3 unrolled",
      "generic": "depthwise / lanes mode, runtime taps"}),
    ((4, 4), dict(kernel_size=3, groups=4, padding=1), 7,
     {"avx512": "depthwise / plane mode, 3x3 unrolled",
      "avx2": "depthwise / plane mode, 3x3 unrolled"}),
    ((32, 32), dict(kernel_size=3, groups=32, padding=1), 56,
     {"avx512": "depthwise / row mode, 3x3 unrolled, input read in place",
      "avx2": "depthwise / row mode, 3x3 unrolled, input read in place"}),
    ((32, 64), dict(kernel_size=3, groups=32, stride=2, padding=1), 56,
     {"avx512": "depthwise / row mode, 3x3 stride 2 unrolled, input read in place, "
                "channels in pairs"}),
    ((32, 32), dict(kernel_size=7, groups=32, padding=3), 40,
     {"avx512": "depthwise / row mode, 7x7 unrolled"}),
    ((32, 32), dict(kernel_size=(3, 5), groups=32, padding=(1, 2)), 56,
     {"avx512": "depthwise / lanes mode, runtime taps",
      "generic": "depthwise / lanes mode, runtime taps"}),
    ((4, 4), dict(kernel_size=(3, 5), groups=4, padding=(1, 2)), 56,
     {"avx512": "depthwise / row mode, generic kernel"}),
    ((64, 64), dict(kernel_size=3, groups=64, padding=1, dilation=1, stride=3), 30,
     {"avx512": "depthwise / lanes mode, runtime taps",
      "avx2": "depthwise / lanes mode, runtime taps"}),
    ((144, 24), dict(), 56, {"avx512": "pointwise / B in place, 4x6 pixel-vector tiles"}),
    ((2048, 512), dict(), 7, {"avx512": "pointwise / plane copy, 7x4 channel-vector tiles"}),
    ((128, 128), dict(kernel_size=3, groups=32, padding=1), 56,
     {"avx512": "general / phase planes, 4x4 pixel-vector tiles, masked stores"}),
    ((128, 128), dict(kernel_size=3, groups=32, padding=1), 4,
     {"avx512": "general / phase planes, 4x6 pixel-vector tiles, staged"}),
    ((64, 64), dict(kernel_size=3, padding=1), 7,
     {"avx512": "general / phase planes, 7x4 channel-vector tiles"}),
]


@pytest.mark.parametrize("args, kwargs, input_size, paths", PATH_CASES,
                         ids=lambda c: str(c) if isinstance(c, int) else None)
def test_path_inside_the_implementation_is_named_with_its_reason(args, kwargs, input_size,
                                                                  paths, isa_restored):
    for isa in gconv.available_isas():
        gconv.set_isa(isa)
        e = gconv.explain(*args, **kwargs, input_size=input_size)
        plan = _dispatch.select(e.problem).make_plan(e.problem, gconv._isa.isa_level(),
                                                     e.plan_threads)
        assert (e.path, e.path_reason) == (plan.path, plan.path_reason)
        assert e.plan_isa == isa and e.path.startswith(e.algorithm + " / ")
        if isa in paths:
            assert e.path == paths[isa], (isa, e.path_reason)
        text = str(e)
        assert f"plan ({isa}, float32, " in text and e.path in text
        assert "because: " + e.path_reason[:40] in text


def test_lanes_mode_reason_gives_the_numbers_that_decided_it(isa_restored):
    if "avx512" not in gconv.available_isas():
        pytest.skip("the numbers below are AVX-512's")
    gconv.set_isa("avx512")
    e = gconv.explain(672, 672, 3, groups=672, padding=1, input_size=14)
    assert e.path == "depthwise / lanes mode, 3x3 unrolled"
    assert "14x14 plane" in e.path_reason and "672 channels" in e.path_reason
    few = gconv.explain(4, 4, 3, groups=4, padding=1, input_size=16)
    assert few.path == "depthwise / row mode, 3x3 unrolled"
    assert "lanes mode declined: 4 channels, fewer than a vector of 16" in few.path_reason
    large = gconv.explain(672, 672, 3, groups=672, padding=1, input_size=17)
    assert "lanes mode declined: the 17x17 plane is over 16x16" in large.path_reason


def test_pointwise_is_decided_once_in_python():
    """Pointwise.why_not decides; the planner reads its flag (B in place) and never checks
    the geometry again: a forced 'general' on a 1x1 problem plans phase planes, and the
    pointwise implementation refuses to plan a problem it declined."""
    x = np.empty((1, 16, 9, 9), np.float32)
    one = build_problem(x, np.empty((8, 16, 1, 1), np.float32), None, 1, 0, 1, 1)
    level = gconv._isa.isa_level()
    assert _dispatch.select(one).make_plan(one, level, 1).path.startswith("pointwise / ")
    general = _dispatch.select(one, "general").make_plan(one, level, 1)
    assert general.path.startswith("general / phase planes") and not general.blocking["direct_b"]
    three = build_problem(x, np.empty((8, 16, 3, 3), np.float32), None, 1, 1, 1, 1)
    with pytest.raises(ValueError, match="pointwise needs a 1x1 kernel"):
        _dispatch.POINTWISE.make_plan(three, level, 1)


# -- an input size: output shape and FLOPs ---------------------------------------------------
@pytest.mark.parametrize("args, kwargs, input_size", [
    ((16, 4), dict(kernel_size=1, groups=4), (2, 16, 10, 10)),
    ((32, 64), dict(kernel_size=3, groups=8, stride=2, padding=1), 15),
    ((12, 12), dict(kernel_size=(3, 5), groups=12, padding=(1, 2), dilation=(2, 1)), (9, 11)),
    ((8, 8), dict(kernel_size=4, groups=2, padding="same"), (8, 9, 7)),
])
def test_output_shape_and_flops_match_torch(args, kwargs, input_size):
    e = gconv.explain(*args, **kwargs, input_size=input_size)
    module = torch.nn.Conv2d(*args, **kwargs)
    shape = e.input_shape
    with torch.no_grad():
        torch_out = module(torch.zeros(shape)).shape
    assert e.output_shape == tuple(torch_out)
    N, C_out, OH, OW = e.output_shape
    K = args[0] // kwargs["groups"] * module.kernel_size[0] * module.kernel_size[1]
    assert e.flops == 2 * N * C_out * OH * OW * K
    assert e.dense_flops == e.flops * kwargs["groups"]
    assert e.flops_ratio == pytest.approx(1 / kwargs["groups"])


def test_onnx_same_upper_with_stride_resolves_padding():
    e = gconv.explain(8, 8, 3, groups=4, stride=2, padding="same_upper", input_size=(7, 8))
    assert e.output_shape == (1, 8, 4, 4)                 # ceil(7/2), ceil(8/2)
    assert e.padding_resolved == (1, 1, 0, 1)             # ONNX: the odd pixel at the end
    x = np.zeros((1, 8, 7, 8), np.float32)
    assert gconv.conv2d(x, np.zeros(e.weight_shape, np.float32), stride=2,
                        padding="same_upper", groups=4).shape == e.output_shape


def test_without_input_size_there_is_no_shape_or_flops():
    e = gconv.explain(16, 4, groups=4)
    assert e.output_shape is None and e.flops is None and e.problem is None
    assert "FLOPs" not in str(e)


# -- invalid arguments: the layer's own errors -----------------------------------------------
@pytest.mark.parametrize("args, kwargs", [
    ((16, 4), dict(groups=3)),
    ((16, 6), dict(groups=4)),
    ((16, 4), dict(groups=0)),
    ((16, 4), dict(kernel_size=0)),
    ((16, 4), dict(padding="full")),
    ((16, 4), dict(kernel_size=3, stride=2, padding="same")),
    ((16, 4), dict(kernel_size=(3, 3, 3))),
])
def test_invalid_combinations_raise_what_conv2d_raises(args, kwargs):
    kwargs = dict(kwargs)
    kernel_size = kwargs.pop("kernel_size", 1)
    with pytest.raises((ValueError, TypeError)) as layer_error:
        gconv.Conv2d(*args, kernel_size, **kwargs)
    with pytest.raises(type(layer_error.value)) as explain_error:
        gconv.explain(*args, kernel_size, **kwargs)
    assert str(explain_error.value) == str(layer_error.value)


def test_invalid_input_sizes_raise_what_a_call_raises():
    layer = gconv.Conv2d(8, 4, 5, groups=2)
    for size, x_shape in [((3, 3), (1, 8, 3, 3)), ((1, 6, 9, 9), (1, 6, 9, 9))]:
        with pytest.raises(ValueError) as call_error:
            layer(np.zeros(x_shape, np.float32))
        with pytest.raises(ValueError) as explain_error:
            gconv.explain(8, 4, 5, groups=2, input_size=size)
        assert str(explain_error.value) == str(call_error.value)
    with pytest.raises(ValueError, match="input_size"):
        gconv.explain(8, 4, input_size=(1, 2, 3, 4, 5))


# -- the text report --------------------------------------------------------------------------
def diagram_rows(text):
    """{output channel: set of input channels marked '#'} from the channel diagram."""
    rows = {}
    for line in text.splitlines():
        m = re.match(r"^\s+out (\d+)\s+((?:[#.] )*[#.])(\s|$)", line)
        if m:
            cells = m.group(2).split(" ")
            rows[int(m.group(1))] = {i for i, c in enumerate(cells) if c == "#"}
    return rows


@pytest.mark.parametrize("c_in, c_out, groups", CONNECTION_CASES)
def test_text_diagram_draws_the_connections(c_in, c_out, groups):
    e = gconv.explain(c_in, c_out, groups=groups)
    rows = diagram_rows(str(e))
    assert rows == {o: set(e.inputs_of(o)) for o in range(c_out)}


def test_seed_report_reads_well():
    text = str(gconv.explain(16, 4, groups=4))
    for expected in ["Conv2d(16, 4, kernel_size=1, groups=4)", "weight (4, 4, 1, 1)",
                     "20 parameters", "groups=1 would have weight (4, 16, 1, 1): 68 parameters",
                     "valid groups for 16 -> 4 channels: 1, 2, 4",
                     "each group: 4 input channels -> 1 output channel",
                     "out 0 <- in 0-3", "out 1 <- in 4-7", "out 3 <- in 12-15",
                     "kernel path: pointwise"]:
        assert expected in text, expected
    assert len(text.splitlines()) < 40


def test_large_layers_are_drawn_as_group_blocks():
    e = gconv.explain(128, 256, 3, groups=32, padding=1, input_size=56)
    text = str(e)
    assert "blocks of 4" in text
    assert "out 0-7" in text and "in 0-3" in text and "in 124-127" in text
    assert "FLOPs" in text and "groups=1" in text
    assert len(text.splitlines()) < 45          # first and last groups only, not 32 rows
    depthwise = str(gconv.explain(256, 512, 3, groups=256))
    assert "depthwise convolution with channel multiplier 2" in depthwise


def test_repr_is_one_line():
    r = repr(gconv.explain(16, 4, groups=4))
    assert "\n" not in r and "(4, 4, 1, 1)" in r and "pointwise" in r


def test_exported():
    assert gconv.explain is not None and "explain" in gconv.__all__
    assert isinstance(gconv.explain(4, 4), gconv.Explanation)


# -- pictures (matplotlib: the "plot" extra, also in the "test" extra) ------------------------
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_plot_writes_png_and_svg(tmp_path):
    e = gconv.explain(16, 4, groups=4)
    png, svg = tmp_path / "groups.png", tmp_path / "groups.svg"
    e.plot(png)
    e.plot(svg)
    data = png.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 10_000
    text = svg.read_text()
    assert text.lstrip().startswith("<?xml") and "<svg" in text and len(text) > 10_000


def test_plot_colours_each_group(tmp_path):
    import matplotlib
    import matplotlib.image
    path = tmp_path / "g.png"
    gconv.explain(16, 4, groups=4).plot(path, dpi=60)
    pixels = matplotlib.image.imread(path)[..., :3]
    tab10 = matplotlib.colormaps["tab10"]
    for g in range(4):
        colour = np.array(tab10(g)[:3])
        close = np.all(np.abs(pixels - colour) < 0.03, axis=-1).sum()
        assert close > 50, f"group {g}'s colour is missing"
    unused = np.array(tab10(4)[:3])                   # a fifth group colour: not drawn
    assert np.all(np.abs(pixels - unused) < 0.03, axis=-1).sum() == 0


def test_plot_large_and_onto_given_axes(tmp_path):
    from matplotlib.figure import Figure
    fig = Figure()
    ax = fig.add_subplot()
    assert gconv.explain(256, 512, 3, groups=256).plot(ax=ax) is fig
    path = tmp_path / "dw.png"
    gconv.explain(256, 512, 3, groups=256).plot(path)
    assert path.read_bytes()[:8] == PNG_MAGIC


def test_plot_refuses_unknown_extensions(tmp_path):
    with pytest.raises(ValueError, match=r"\.png, \.svg"):
        gconv.explain(16, 4, groups=4).plot(tmp_path / "groups.bmp")


def test_plot_without_matplotlib_says_how_to_install(monkeypatch, tmp_path):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)      # import matplotlib fails
    with pytest.raises(ImportError, match=r'pip install "gconv\[plot\]"'):
        gconv.explain(16, 4, groups=4).plot(tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_explain_names_the_path_a_gathered_call_runs():
    """A stride far past the kernel is gathered before the kernels run (WindowGather):
    explain plans the same problem the call does, so it names the same path and reason."""
    for stride, size in ((100, 300), (9, 40), (2, 16)):
        shape = (1, 4, size, size)
        e = gconv.explain(4, 8, groups=2, kernel_size=3, stride=stride, input_size=shape)
        report = gconv.Conv2d(4, 8, 3, stride=stride, groups=2).plan(shape)
        assert (e.algorithm, e.path, e.path_reason) == (report.implementation, report.path,
                                                         report.reason)
