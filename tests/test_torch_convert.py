"""gconv.torch.convert with fusion (the default): torch.fx tracing, BatchNorm folding, the
residual add and the activation fused, gconv regions on NumPy arrays, the fallback where
tracing fails, the report; and the bench's eight networks against the original models.

Tolerance for whole networks: max |converted - original| <= 1e-3 * max |original| (float32;
measured at most ~2e-4 on these seeds, EfficientNet-B0's random weights giving outputs of
~7e3). Single fused layers: torch.testing.assert_close's float32 defaults scaled by 10.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import gconv.torch as gtorch
from gconv._torch_fuse import GconvRegion, fold_batchnorm
from gconv.bench import networks

pytestmark = [pytest.mark.usefixtures("torch_single_thread")]

EPILOGUES = ("inplace", "kernel")


def randomize_bn(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
                m.running_mean.uniform_(-0.5, 0.5, generator=g)
                m.running_var.uniform_(0.5, 2.0, generator=g)
                if m.weight is not None:
                    m.weight.uniform_(0.5, 1.5, generator=g)
                    m.bias.uniform_(-0.3, 0.3, generator=g)
    return model.eval()


def check(model, x, epilogue="inplace", **kwargs):
    converted, report = gtorch.convert(model, x, report=True, epilogue=epilogue, **kwargs)
    with torch.no_grad():
        expected = model(x)
        got = converted(x)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    return converted, report


def regions(model):
    return [m for m in model.modules() if isinstance(m, GconvRegion)]


# -- BatchNorm folding -------------------------------------------------------------------
@pytest.mark.parametrize("epilogue", EPILOGUES)
@pytest.mark.parametrize("affine", [True, False])
def test_batchnorm_is_folded_into_the_conv(epilogue, affine):
    torch.manual_seed(0)
    model = randomize_bn(nn.Sequential(nn.Conv2d(8, 16, 3, padding=1, groups=4),
                                       nn.BatchNorm2d(16, affine=affine)))
    converted, report = check(model, torch.randn(2, 8, 9, 9), epilogue)
    assert report.counts()["batchnorm"] == 1
    assert report.fused[0] == dict(name="0", batchnorm="1", residual=None, activation=None,
                                   region=0)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in converted.modules())
    assert not report.torch_ops


def test_folding_is_done_in_float64():
    torch.manual_seed(1)
    conv = nn.Conv2d(4, 4, 1, bias=False)
    bn = randomize_bn(nn.BatchNorm2d(4))
    w, b = fold_batchnorm(conv.weight, None, bn)
    assert w.dtype == b.dtype == torch.float32
    scale = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
    expected = (conv.weight.double() * scale[:, None, None, None]).float()
    assert torch.equal(w, expected)
    assert torch.equal(b, (bn.bias.double() - bn.running_mean.double() * scale).float())


def test_a_conv1d_with_batchnorm1d_and_float64():
    torch.manual_seed(2)
    model = randomize_bn(nn.Sequential(nn.Conv1d(8, 8, 5, padding=2, groups=8),
                                       nn.BatchNorm1d(8), nn.ReLU())).double()
    converted, report = check(model, torch.randn(2, 8, 30, dtype=torch.float64))
    assert converted(torch.randn(1, 8, 7, dtype=torch.float64)).dtype == torch.float64
    assert report.counts() == {"conv": 1, "batchnorm": 1, "activation": 1, "residual": 0}


def test_batchnorm_without_running_stats_or_after_a_shared_conv_stays_in_torch():
    torch.manual_seed(3)

    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 3, padding=1)
            self.bn = nn.BatchNorm2d(4)
            self.batch_stats = nn.BatchNorm2d(4, track_running_stats=False)
            self.conv2 = nn.Conv2d(4, 4, 1)

        def forward(self, x):
            y = self.conv(x)
            return self.bn(y) + y + self.batch_stats(self.conv2(x))

    model = randomize_bn(Shared())
    _, report = check(model, torch.randn(2, 4, 6, 6))
    assert report.counts()["batchnorm"] == 0
    assert report.torch_ops["BatchNorm2d"] == 2


# -- activations -------------------------------------------------------------------------
class Functional(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.conv = nn.Conv2d(6, 6, 3, padding=1, groups=3)
        self.fn = fn

    def forward(self, x):
        return self.fn(self.conv(x))


ACTIVATIONS = [
    (nn.ReLU(), "relu"), (nn.ReLU(inplace=True), "relu"), (nn.ReLU6(), "relu6"),
    (nn.Hardtanh(-0.5, 0.25), "('clamp', -0.5, 0.25)"), (nn.Hardtanh(0.0, 6.0), "relu6"),
    (nn.SiLU(), "silu"), (nn.Sigmoid(), "sigmoid"), (nn.Tanh(), "tanh"),
    (nn.Hardswish(), "hardswish"), (nn.LeakyReLU(), "leaky_relu"),
    (nn.LeakyReLU(0.2), "('leaky_relu', 0.2)"),
    (Functional(F.relu), "relu"), (Functional(torch.relu), "relu"),
    (Functional(F.relu6), "relu6"), (Functional(F.silu), "silu"),
    (Functional(torch.sigmoid), "sigmoid"), (Functional(torch.tanh), "tanh"),
    (Functional(F.hardswish), "hardswish"),
    (Functional(lambda y: F.leaky_relu(y, 0.3)), "('leaky_relu', 0.3)"),
    (Functional(lambda y: F.hardtanh(y, -2.0, 2.0)), "('clamp', -2.0, 2.0)"),
    (Functional(lambda y: torch.clamp(y, min=-1.0, max=0.5)), "('clamp', -1.0, 0.5)"),
    (Functional(lambda y: y.clamp(0.0)), "('clamp', 0.0, inf)"),
    (Functional(lambda y: y.relu()), "relu"), (Functional(lambda y: y.sigmoid()), "sigmoid"),
]


@pytest.mark.parametrize("epilogue", EPILOGUES)
@pytest.mark.parametrize("act, spec", ACTIVATIONS, ids=[s for _, s in ACTIVATIONS])
def test_each_activation_is_fused(act, spec, epilogue):
    torch.manual_seed(4)
    model = (act if isinstance(act, Functional)
             else nn.Sequential(nn.Conv2d(6, 6, 3, padding=1, groups=3), act)).eval()
    x = torch.randn(2, 6, 7, 7) * 3
    _, report = check(model, x, epilogue)
    assert [f["activation"] for f in report.fused] == [spec]
    assert not report.torch_ops


@pytest.mark.parametrize("act", [nn.GELU(), nn.Hardsigmoid(), nn.Softplus(), nn.ELU()])
def test_other_activations_stay_in_torch(act):
    torch.manual_seed(5)
    model = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), act).eval()
    _, report = check(model, torch.randn(2, 4, 6, 6))
    assert report.counts()["activation"] == 0
    assert report.torch_ops == {type(act).__name__: 1}


def test_an_activation_of_a_value_with_two_users_is_not_fused():
    class TwoUsers(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 3, padding=1)

        def forward(self, x):
            y = self.conv(x)
            return torch.relu(y) * y

    _, report = check(TwoUsers().eval(), torch.randn(1, 4, 5, 5))
    assert report.counts()["activation"] == 0


# -- residual adds -----------------------------------------------------------------------
class Residual(nn.Module):
    def __init__(self, how, act=True):
        super().__init__()
        self.conv1 = nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 1, groups=2, bias=False)
        self.bn2 = nn.BatchNorm2d(8)
        self.how, self.act = how, act

    def forward(self, x):
        y = self.bn2(self.conv2(F.relu6(self.bn1(self.conv1(x)))))
        if self.how == "left":
            y = y + x
        elif self.how == "right":
            y = x + y
        elif self.how == "iadd":
            y += x
        elif self.how == "torch.add":
            y = torch.add(x, y)
        elif self.how == "method":
            y = y.add(x)
        return F.relu(y) if self.act else y


@pytest.mark.parametrize("epilogue", EPILOGUES)
@pytest.mark.parametrize("how", ["left", "right", "iadd", "torch.add", "method"])
@pytest.mark.parametrize("act", [True, False])
def test_residual_add_and_activation_are_fused(how, act, epilogue):
    torch.manual_seed(6)
    model = randomize_bn(Residual(how, act))
    converted, report = check(model, torch.randn(2, 8, 6, 5), epilogue)
    assert report.counts() == {"conv": 2, "batchnorm": 2, "residual": 1,
                               "activation": 1 + act}
    assert report.fused[1]["residual"] == "x"
    assert report.regions == [2]
    assert not report.torch_ops


def test_an_add_with_alpha_is_left_to_torch():
    class Alpha(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 1)

        def forward(self, x):
            return torch.add(self.conv(x), x, alpha=2)

    _, report = check(Alpha().eval(), torch.randn(1, 4, 3, 3))
    assert report.counts()["residual"] == 0 and report.torch_ops["add"] == 1


@pytest.mark.parametrize("epilogue", EPILOGUES)
def test_a_residual_that_broadcasts_falls_back_to_torch_add_at_run_time(epilogue):
    class Broadcast(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 3, padding=1)
            self.pool = nn.AdaptiveAvgPool2d(1)

        def forward(self, x):
            return F.silu(self.conv(x) + self.pool(x))      # (N, 4, H, W) + (N, 4, 1, 1)

    _, report = check(Broadcast().eval(), torch.randn(2, 4, 5, 6), epilogue)
    assert report.counts()["residual"] == 1


# -- regions ------------------------------------------------------------------------------
def test_consecutive_gconv_layers_form_one_region_on_numpy_arrays():
    model = networks.build("mobilenet_v2")
    x = networks.example_input("mobilenet_v2", 1, small=True)
    converted, report = check(model, x)
    assert len(regions(converted)) == 1 and report.regions == [52]
    seen = []
    region = regions(converted)[0]
    op = region.steps[0][0]
    layer_call = op.layer.__class__.__call__

    class Spy(type(op.layer)):
        def __call__(self, a, **kwargs):
            seen.append(a)
            return layer_call(self, a, **kwargs)

    op.layer.__class__ = Spy
    with torch.no_grad():
        converted(x)
    assert type(seen[0]) is np.ndarray and np.shares_memory(seen[0], x.numpy())   # zero-copy


def test_intermediate_arrays_are_released_inside_a_region():
    model = networks.build("tcn1d")
    converted = gtorch.convert(model)
    region = regions(converted)[0]
    outputs = set(region.outputs)
    freed = {s for step in region.steps for s in step[4]}
    produced = {step[3] for step in region.steps}
    assert produced - outputs <= freed          # every value not returned is dropped


def test_the_region_is_inference_only():
    model = randomize_bn(Residual("left"))
    converted = gtorch.convert(model)
    x = torch.randn(1, 8, 4, 4)
    converted.train()
    with pytest.raises(RuntimeError, match=r"inference-only.*eval\(\)"):
        converted(x)
    converted.eval()
    with pytest.raises(RuntimeError, match=r"no backward pass.*torch\.no_grad\(\)"):
        converted(x.requires_grad_())
    with torch.no_grad():
        assert converted(x).shape == (1, 8, 4, 4)


# -- tracing fails: children one by one ---------------------------------------------------
class DataDependent(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.b = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.c = nn.Sequential(nn.Conv2d(8, 4, 1), nn.BatchNorm2d(4), nn.Hardswish())

    def forward(self, x):
        y = self.a(x)
        if y.sum() > 0:                            # control flow on a value: fx cannot trace
            y = self.b(y)
        return self.c(y)


@pytest.mark.parametrize("epilogue", EPILOGUES)
def test_where_tracing_fails_the_children_are_converted(epilogue):
    torch.manual_seed(7)
    model = randomize_bn(DataDependent())
    converted, report = check(model, torch.randn(2, 3, 6, 6), epilogue)
    assert list(report.untraced) == [""]
    assert "TraceError" in report.untraced[""] or "control flow" in report.untraced[""]
    assert isinstance(converted.b, gtorch.GconvConv2d)        # a bare conv: swapped
    assert report.counts() == {"conv": 3, "batchnorm": 2, "activation": 2, "residual": 0}
    assert "could not trace" in str(report) and "(the model)" in str(report)


def test_unconvertible_convs_are_kept_with_a_reason():
    model = nn.Sequential(nn.Conv2d(4, 4, 3, dtype=torch.float16), nn.ReLU()).eval()
    converted, report = gtorch.convert(model, report=True)
    assert report.kept == [("0", "weights of torch.float16 (gconv computes in float32 / "
                                 "float64)")]
    assert isinstance(converted.get_submodule("0"), nn.Conv2d)


# -- the report and the API ----------------------------------------------------------------
def test_the_report_says_what_was_fused_and_what_was_not():
    model = networks.build("mobilenet_v3_large")
    x = networks.example_input("mobilenet_v3_large", 1, small=True)
    converted, report = gtorch.convert(model, x, report=True)
    assert converted.gconv_report is report
    text = str(report)
    assert "62 convolutions run by gconv in 17 region(s)" in text
    assert "Hardsigmoid x8" in text and "Linear x2" in text
    assert "[region 0] features.0.0 + features.0.1 -> hardswish" in text
    assert report.max_abs_error is not None and report.max_abs_error < 1e-3 * \
        report.max_abs_output
    assert gtorch.convert(model) is not model
    with pytest.raises(ValueError, match="epilogue"):
        gtorch.convert(model, epilogue="fast")


def test_the_original_model_is_untouched():
    model = randomize_bn(Residual("left"))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    gtorch.convert(model, torch.randn(1, 8, 4, 4))
    assert model.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k


# -- the bench's networks -------------------------------------------------------------------
@pytest.mark.parametrize("name", list(networks.NETWORKS))
def test_every_bench_network_matches_the_original(name):
    model = networks.build(name)
    x = networks.example_input(name, 2, small=True, seed=3)
    converted, report = gtorch.convert(model, report=True)
    with torch.inference_mode():
        expected = model(x)
        got = converted(x)
    assert got.shape == expected.shape
    scale = expected.abs().max().item()
    assert (got - expected).abs().max().item() <= 1e-3 * scale
    assert report.counts()["conv"] == sum(isinstance(m, (nn.Conv1d, nn.Conv2d))
                                          for m in model.modules())
    assert not report.untraced and not report.kept


@pytest.mark.parametrize("name", ["resnext50_32x4d", "efficientnet_b0"])
def test_bench_networks_with_the_kernel_epilogue(name):
    model = networks.build(name)
    x = networks.example_input(name, 1, small=True, seed=4)
    converted = gtorch.convert(model, epilogue="kernel")
    with torch.inference_mode():
        expected = model(x)
        got = converted(x)
    assert (got - expected).abs().max().item() <= 1e-3 * expected.abs().max().item()


def test_a_region_with_several_outputs_and_channels_last_inputs():
    class TwoHeads(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 8, 3, padding=1)
            self.a = nn.Conv2d(8, 4, 1)
            self.b = nn.Conv2d(8, 6, 3, padding=1, groups=2)

        def forward(self, x):
            y = F.relu(self.stem(x))
            return self.a(y).mean(), torch.sigmoid(self.b(y)), y.sum()

    torch.manual_seed(8)
    model = TwoHeads().eval()
    converted, report = gtorch.convert(model, report=True)
    # stem and a in one region with two outputs (y, a(y)); .mean() comes next in the graph
    assert report.regions == [2, 1]
    x = torch.randn(2, 3, 7, 5)
    with torch.no_grad():
        expected = model(x)
        for given in (x, x.contiguous(memory_format=torch.channels_last)):
            got = converted(given)
            for g, e in zip(got, expected):
                torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-4)


def test_the_copy_shares_no_torch_module_with_the_original_and_traces_in_eval_mode():
    class TrainOnly(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.fc = nn.Linear(4, 2)

        def forward(self, x):
            y = self.conv(x)
            if self.training:                       # fx sees the eval branch only
                y = y * 100.0
            return self.fc(y.mean([2, 3]))

    model = TrainOnly().train()
    converted = gtorch.convert(model, fuse=True)    # fused although in train mode
    assert model.training and model.fc.training
    assert converted.fc is not model.fc
    x = torch.randn(1, 3, 5, 5)
    with torch.no_grad():
        torch.testing.assert_close(converted(x), model.eval()(x), rtol=1e-4, atol=1e-5)
        model.fc.weight.add_(1.0)                   # the copy does not follow
        assert not torch.allclose(converted(x), model(x))


def test_a_converted_model_pickles():
    import io
    model = networks.build("tcn1d")
    x = networks.example_input("tcn1d", 1, small=True)
    converted = gtorch.convert(model, x)
    buffer = io.BytesIO()
    torch.save(converted, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    with torch.inference_mode():
        torch.testing.assert_close(loaded(x), converted(x))


def test_convert_fuses_an_eval_model_and_swaps_a_training_one():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
    fused = gtorch.convert(model.eval())
    assert isinstance(fused, torch.fx.GraphModule)
    swapped = gtorch.convert(model.train())
    assert isinstance(swapped[0], gtorch.GconvConv2d) and isinstance(swapped[1], nn.BatchNorm2d)
    x = torch.randn(2, 3, 6, 6)
    swapped(x).sum().backward()                     # trainable: gradients reach the weights
    assert swapped[0].weight.grad is not None
