"""Test helpers: a torch comparison in one line.

    from gconv.testing import assert_matches_torch

    def test_my_layer():
        assert_matches_torch(dict(in_channels=32, out_channels=64, kernel_size=3,
                                  groups=8, padding=1), np.random.rand(2, 32, 16, 16))

torch is imported only when a helper runs, so importing this module costs nothing.
"""
import numpy as np


def _torch_conv_class(torch, args, kwargs, x):
    """nn.Conv2d or nn.Conv1d for these constructor arguments and this input.

    A 2-element kernel_size means Conv2d, a 1-element one Conv1d; an int kernel_size is
    decided by the input: 4-D -> Conv2d, 2-D or 3-D -> Conv1d (a 3-D input is read as a
    batched 1-D signal; pass kernel_size=(k, k) for an unbatched 2-D image).
    """
    ks = kwargs.get("kernel_size", args[2] if len(args) > 2 else None)
    if isinstance(ks, (tuple, list)):
        return torch.nn.Conv2d if len(ks) == 2 else torch.nn.Conv1d
    return torch.nn.Conv2d if x.ndim == 4 else torch.nn.Conv1d


def assert_matches_torch(module_or_args, x, *, rtol=None, atol=None, gconv_layer=None,
                         seed=0):
    """Assert that gconv computes what torch computes for this layer and input.

    module_or_args: an ``nn.Conv2d`` / ``nn.Conv1d``, or its constructor arguments as a
        dict (keyword arguments) or tuple (positional); the module is then built with
        torch's initialisation under ``torch.manual_seed(seed)`` in ``x``'s dtype.
    x: the input, a torch.Tensor or a NumPy array.
    rtol, atol, gconv_layer: as ``gconv.torch.cross_check``.

    Raises AssertionError with the cross-check report on a mismatch; returns the report.
    """
    from ._check import import_torch
    torch = import_torch("assert_matches_torch")
    from .torch import cross_check

    xt = torch.from_numpy(x) if isinstance(x, np.ndarray) else x
    module = module_or_args
    if isinstance(module_or_args, (dict, tuple, list)):
        args = tuple(module_or_args) if not isinstance(module_or_args, dict) else ()
        kwargs = dict(module_or_args) if isinstance(module_or_args, dict) else {}
        cls = _torch_conv_class(torch, args, kwargs, xt)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            module = cls(*args, **kwargs, dtype=xt.dtype)
    report = cross_check(module, xt, rtol=rtol, atol=atol, gconv_layer=gconv_layer)
    if not report.ok:
        raise AssertionError("gconv does not match torch:\n" + str(report))
    return report
