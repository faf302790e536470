"""gconv.torch (from_torch, convert, cross_check), gconv.testing.assert_matches_torch and
gconv._check.run_check (behind `python -m gconv check`), on small models with Conv2d and
Conv1d layers of various groups, paddings and padding modes.
"""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import gconv
import gconv.torch as gtorch
from gconv._check import run_check
from gconv.testing import assert_matches_torch

pytestmark = [pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel"),
              pytest.mark.usefixtures("torch_single_thread")]




# the folder holding the gconv this test imported (site-packages after `pip install .`,
# the checkout for an in-place build), so the subprocess imports the same, built, gconv
GCONV_PARENT = str(Path(gconv.__file__).resolve().parents[1])


def run_python(code):
    env = dict(os.environ, PYTHONPATH=GCONV_PARENT)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=GCONV_PARENT, env=env, timeout=120)


# -- optional: never imported by gconv, a clear message without torch ------------------------
def test_import_gconv_imports_neither_torch_nor_matplotlib():
    r = run_python("import sys, gconv; gconv.explain(16, 4, groups=4); "
                   "print(sorted(m for m in sys.modules if m.split('.')[0] in "
                   "('torch', 'matplotlib') or m == 'gconv.torch'))")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_without_torch_the_adapter_says_how_to_install():
    r = run_python("import sys; sys.modules['torch'] = None\n"
                   "import gconv\n"
                   "try:\n    import gconv.torch\nexcept ImportError as e:\n    print(e)\n"
                   "from gconv.testing import assert_matches_torch\n"
                   "try:\n    assert_matches_torch({}, None)\nexcept ImportError as e:\n"
                   "    print(e)\n")
    assert r.returncode == 0, r.stderr
    first, second = r.stdout.strip().splitlines()
    assert "pip install torch==2.13.0" in first and 'pip install "gconv[torch]"' in first
    assert "pip install torch==2.13.0" in second


def test_run_check_without_torch_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match=r"pip install torch==2\.13\.0"):
        run_check(cases=1)


# -- from_torch ------------------------------------------------------------------------------
CONV2D = [
    dict(in_channels=8, out_channels=16, kernel_size=3, padding=1, groups=4),
    dict(in_channels=8, out_channels=8, kernel_size=3, padding=1, groups=8,
         padding_mode="reflect"),
    dict(in_channels=6, out_channels=12, kernel_size=(3, 5), padding=(1, 2), groups=3,
         padding_mode="replicate", bias=False),
    dict(in_channels=4, out_channels=8, kernel_size=4, padding="same", groups=2,
         padding_mode="circular"),
    dict(in_channels=16, out_channels=4, kernel_size=1, groups=4),
    dict(in_channels=6, out_channels=6, kernel_size=3, stride=2, dilation=2, padding="valid",
         groups=2),
]
CONV1D = [
    dict(in_channels=8, out_channels=16, kernel_size=3, padding=1, groups=4),
    dict(in_channels=6, out_channels=6, kernel_size=5, padding=2, groups=6,
         padding_mode="reflect", bias=False),
    dict(in_channels=4, out_channels=8, kernel_size=4, padding="same", groups=2,
         padding_mode="circular"),
    dict(in_channels=4, out_channels=4, kernel_size=3, stride=2, dilation=2, groups=1,
         padding_mode="replicate", padding=3),
]


def _ids(configs):
    return [",".join(f"{k}={v}" for k, v in c.items() if k not in ("in_channels",
                                                                    "out_channels"))
            for c in configs]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("config", CONV2D, ids=_ids(CONV2D))
def test_from_torch_conv2d(config, dtype):
    torch.manual_seed(0)
    module = nn.Conv2d(**config, dtype=dtype)
    layer = gtorch.from_torch(module)
    assert isinstance(layer, gconv.Conv2d)
    assert layer.dtype == np.dtype(str(dtype).split(".")[1])
    np.testing.assert_array_equal(layer.weight, module.weight.detach().numpy())
    assert (layer.bias is None) == (module.bias is None)
    x = torch.randn(2, config["in_channels"], 9, 11, dtype=dtype)
    report = gtorch.cross_check(module, x, gconv_layer=layer)
    assert report.ok, str(report)


@pytest.mark.parametrize("config", CONV1D, ids=_ids(CONV1D))
def test_from_torch_conv1d(config):
    torch.manual_seed(1)
    module = nn.Conv1d(**config)
    layer = gtorch.from_torch(module)
    assert isinstance(layer, gconv.Conv1d)
    np.testing.assert_array_equal(layer.weight, module.weight.detach().numpy())
    report = gtorch.cross_check(module, torch.randn(3, config["in_channels"], 17),
                                gconv_layer=layer)
    assert report.ok, str(report)


def test_from_torch_copies_the_weights():
    module = nn.Conv2d(4, 4, 3, groups=2)
    layer = gtorch.from_torch(module)
    before = layer.weight.copy()
    with torch.no_grad():
        module.weight.add_(1.0)
    np.testing.assert_array_equal(layer.weight, before)


@pytest.mark.parametrize("module, name", [
    (nn.Linear(4, 4), "Linear"),
    (nn.ConvTranspose3d(4, 4, 3), "ConvTranspose3d"),
    (nn.Conv3d(4, 4, 3), "Conv3d"),
    (nn.Sequential(nn.Conv2d(4, 4, 3)), "Sequential"),
])
def test_from_torch_refuses_other_modules_by_name(module, name):
    with pytest.raises(TypeError, match=name):
        gtorch.from_torch(module)


def test_from_torch_refuses_half_precision():
    with pytest.raises(TypeError, match="float16"):
        gtorch.from_torch(nn.Conv2d(4, 4, 3, dtype=torch.float16))


# -- convert ---------------------------------------------------------------------------------
class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.norm = nn.BatchNorm2d(16)
        self.branches = nn.ModuleList([
            nn.Conv2d(16, 16, 3, padding=1, groups=16, padding_mode="reflect"),
            nn.Conv2d(16, 16, 3, padding="same", groups=4, bias=False,
                      padding_mode="circular"),
        ])
        self.project = nn.Sequential(nn.Conv2d(16, 8, 1, groups=2), nn.ReLU())
        self.temporal = nn.Conv1d(8, 8, 5, padding=2, groups=4, padding_mode="replicate")
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        x = torch.relu(self.norm(self.stem(x)))
        x = self.branches[0](x) + self.branches[1](x)
        x = self.project(x)
        x = self.temporal(x.flatten(2))          # (N, 8, H*W)
        return self.head(x.mean(-1))


def make_model():
    torch.manual_seed(2)
    model = Block()
    with torch.no_grad():                        # BatchNorm statistics that do something
        model.norm.running_mean.uniform_(-0.5, 0.5)
        model.norm.running_var.uniform_(0.5, 2.0)
    return model.eval()


def conv_modules(model):
    return [m for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d))]


def test_convert_without_fusion_replaces_every_conv_and_keeps_the_rest():
    model = make_model()
    converted = gtorch.convert(model, fuse=False)
    assert converted is not model
    assert conv_modules(converted) == []
    assert len(conv_modules(model)) == 5                     # the original is untouched
    kinds = [type(m).__name__ for m in converted.modules()]
    assert kinds.count("GconvConv2d") == 4 and kinds.count("GconvConv1d") == 1
    assert isinstance(converted.norm, nn.BatchNorm2d) and isinstance(converted.head, nn.Linear)
    assert isinstance(converted.project[1], nn.ReLU)
    assert converted.state_dict().keys() == model.state_dict().keys()
    for key, value in model.state_dict().items():
        assert torch.equal(converted.state_dict()[key], value), key
    x = torch.randn(2, 3, 10, 9)
    with torch.no_grad():
        expected, got = model(x), converted(x)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    with torch.inference_mode():
        torch.testing.assert_close(converted(x), expected, rtol=1e-4, atol=1e-5)


def test_convert_inplace_and_a_bare_conv():
    model = make_model()
    assert gtorch.convert(model, inplace=True, fuse=False) is model
    assert conv_modules(model) == []
    bare = nn.Conv2d(4, 8, 3, groups=2)
    wrapped = gtorch.convert(bare)
    assert isinstance(wrapped, gtorch.GconvConv2d)
    assert "groups=2" in repr(wrapped)


def test_converted_layer_channels_last_and_strided_inputs():
    torch.manual_seed(3)
    conv = nn.Conv2d(8, 8, 3, padding=1, groups=4).eval()
    layer = gtorch.convert(conv).eval()
    x = torch.randn(2, 8, 7, 6)
    with torch.no_grad():
        expected = conv(x)
        cl = layer(x.contiguous(memory_format=torch.channels_last))
        strided = layer(torch.randn(2, 8, 7, 12)[..., ::2].copy_(x))
    assert cl.is_contiguous(memory_format=torch.channels_last)     # as torch returns it
    torch.testing.assert_close(cl, expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(strided, expected, rtol=1e-4, atol=1e-5)


def test_converted_layer_passes_memory_without_copies():
    """The tensor's memory goes to gconv as a NumPy view and gconv's output array comes
    back as the output tensor's memory, for NCHW and for channels-last inputs."""
    seen = {}

    class Recording(gconv.Conv2d):
        def forward(self, input, **kwargs):
            seen["input"] = input
            seen["output"] = super().forward(input, **kwargs)
            return seen["output"]

        __call__ = forward

    layer = gtorch.convert(nn.Conv2d(4, 4, 3, padding=1)).eval()
    layer._gconv().__class__ = Recording
    for x in (torch.randn(2, 4, 5, 6),
              torch.randn(2, 4, 5, 6).contiguous(memory_format=torch.channels_last)):
        with torch.no_grad():
            y = layer(x)
        assert seen["input"].__array_interface__["data"][0] == x.data_ptr()
        assert np.shares_memory(seen["input"], x.numpy())
        assert y.data_ptr() == seen["output"].__array_interface__["data"][0]


def test_converted_model_trains_and_runs_under_autograd():
    """Formerly refused (gconv had no backward pass): train mode and autograd now work and
    give torch's gradients (tests/test_grad.py checks them in depth)."""
    model = make_model()
    converted = gtorch.convert(model, fuse=False)
    x = torch.randn(2, 3, 6, 6)
    model.train()
    converted.train()
    expected, got = model(x), converted(x)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    expected.sum().backward()
    got.sum().backward()
    for (name, p), q in zip(model.named_parameters(), converted.parameters()):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-4, atol=1e-4, msg=name)
    converted.eval()
    xg = x.clone().requires_grad_()
    converted(xg).sum().backward()
    assert xg.grad is not None and xg.grad.shape == x.shape


def test_converted_layer_refuses_other_devices_and_dtypes():
    layer = gtorch.convert(nn.Conv2d(4, 4, 3)).eval()
    with torch.no_grad():
        with pytest.raises(RuntimeError, match="CPU"):
            layer(torch.empty(1, 4, 5, 5, device="meta"))
        with pytest.raises(TypeError, match="int64"):
            layer(torch.zeros(1, 4, 5, 5, dtype=torch.int64))
        with pytest.raises(TypeError, match="float16"):
            layer(torch.zeros(1, 4, 5, 5, dtype=torch.float16))
    with pytest.raises(TypeError, match="cannot convert"):
        gtorch.convert(nn.Sequential(nn.Conv2d(4, 4, 3, dtype=torch.float16)), fuse=False)


def test_converted_layer_follows_new_weights_and_dtype():
    torch.manual_seed(4)
    model = nn.Sequential(nn.Conv2d(4, 8, 3, groups=2), nn.ReLU(),
                          nn.Conv2d(8, 8, 1, groups=8)).eval()
    converted = gtorch.convert(model, fuse=False).eval()
    x = torch.randn(2, 4, 7, 7)
    with torch.no_grad():
        before = converted(x)
        for p in model.parameters():
            p.mul_(-2.0)
        converted.load_state_dict(model.state_dict())          # weights change in place
        after = converted(x)
        torch.testing.assert_close(after, model(x), rtol=1e-4, atol=1e-5)
        assert not torch.allclose(before, after)
        converted.double()
        model.double()
        y64 = converted(x.double())
        assert y64.dtype == torch.float64
        torch.testing.assert_close(y64, model(x.double()))


# -- cross_check and assert_matches_torch -----------------------------------------------------
def test_cross_check_report():
    torch.manual_seed(5)
    module = nn.Conv2d(8, 4, 3, padding=1, groups=2)
    x = torch.randn(2, 8, 6, 6)
    report = gtorch.cross_check(module, x)
    assert report.ok and bool(report)
    assert report.input_shape == (2, 8, 6, 6)
    assert report.torch_shape == report.gconv_shape == (2, 4, 6, 6)
    assert report.reduction_length == 4 * 9
    assert 0 <= report.max_abs_error <= report.atol + report.rtol * 10
    assert report.rtol > 0 and report.atol > 0
    text = str(report)
    assert text.startswith("MATCH") and "(2, 4, 6, 6)" in text and "tolerance" in text
    # a NumPy input works the same
    assert gtorch.cross_check(module, x.numpy()).ok


@pytest.mark.parametrize("make", [lambda: nn.Conv2d(8, 8, 3, padding=1, groups=8),
                                  lambda: nn.Conv2d(8, 4, 1, groups=2),
                                  lambda: nn.Conv1d(6, 6, 3, groups=3)])
def test_a_perturbed_weight_fails_the_cross_check(make):
    torch.manual_seed(6)
    module = make()
    x = torch.randn(2, module.in_channels, *([7, 7] if isinstance(module, nn.Conv2d) else [9]))
    layer = gtorch.from_torch(module)
    weight = np.array(layer.weight)
    weight.flat[weight.size // 2] += 1e-3                # one weight, slightly off
    layer.weight = weight
    report = gtorch.cross_check(module, x, gconv_layer=layer)
    assert not report.ok and not bool(report)
    assert report.max_abs_error > report.atol
    assert str(report).startswith("MISMATCH") and "worst element" in str(report)
    with pytest.raises(AssertionError, match="does not match torch"):
        assert_matches_torch(module, x, gconv_layer=layer)


def test_explicit_tolerances_are_used():
    torch.manual_seed(7)
    module = nn.Conv2d(4, 4, 3, groups=2)
    x = torch.randn(1, 4, 6, 6)
    report = gtorch.cross_check(module, x, rtol=0.5, atol=0.25)
    assert (report.rtol, report.atol) == (0.5, 0.25) and report.ok


def test_assert_matches_torch_one_liners():
    x = np.random.default_rng(8).standard_normal((2, 8, 9, 9))
    report = assert_matches_torch(dict(in_channels=8, out_channels=16, kernel_size=3,
                                       groups=4, padding=1), x)
    assert report.ok and report.dtype == "float64"            # the module follows x's dtype
    assert_matches_torch((8, 8, 3, 2, 1, 1, 8), x.astype(np.float32))   # positional args
    assert_matches_torch(nn.Conv2d(8, 4, 3, groups=2, padding_mode="reflect", padding=1),
                         torch.from_numpy(x.astype(np.float32)))
    signal = torch.randn(2, 6, 20)                             # 3-D: a batch of signals
    assert "Conv1d" in assert_matches_torch(dict(in_channels=6, out_channels=6,
                                                 kernel_size=5, groups=3), signal).layer


# -- run_check (python -m gconv check) -------------------------------------------------------
def test_run_check_passes_and_reports_progress():
    calls = []
    summary = run_check(cases=30, seed=1, progress=lambda done, total: calls.append((done,
                                                                                    total)))
    assert summary.ok and bool(summary), str(summary)
    assert summary.n_cases == 30 and summary.failures == []
    assert calls == [(i, 30) for i in range(1, 31)]
    assert sum(summary.paths.values()) == 30 and set(summary.paths) <= {
        "depthwise", "pointwise", "general"}
    assert "all 30 match" in str(summary)


def test_run_check_is_reproducible_by_seed():
    a, b = run_check(cases=10, seed=5), run_check(cases=10, seed=5)
    assert a.paths == b.paths and a.max_abs_error == b.max_abs_error


def test_run_check_catches_a_wrong_result(monkeypatch):
    real = gconv.conv2d

    def off_by_a_little(*args, **kwargs):
        y = real(*args, **kwargs)
        return y + np.asarray(1e-3, y.dtype) * np.abs(y).max()

    monkeypatch.setattr(gconv, "conv2d", off_by_a_little)
    summary = run_check(cases=12, seed=2)
    assert not summary.ok and len(summary.failures) == 12
    failure = summary.failures[0]
    assert failure.max_abs_error > failure.atol and failure.error is None
    assert "_g" in failure.descriptor and "ic" in failure.descriptor
    assert "12 of 12 MISMATCH" in str(summary)


def test_run_check_reports_an_exception_as_a_failure(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("kernel exploded")

    monkeypatch.setattr(gconv, "conv2d", broken)
    summary = run_check(cases=3, seed=0)
    assert not summary.ok
    assert all("kernel exploded" in f.error for f in summary.failures)
    assert "kernel exploded" in str(summary)
