"""gconv: fast grouped 2-D convolution for NumPy on the CPU, with PyTorch's semantics.

    import gconv
    y = gconv.conv2d(x, w, b, stride=1, padding=1, groups=32)   # as torch.nn.functional.conv2d
    layer = gconv.Conv2d(128, 128, 3, padding=1, groups=32)     # as torch.nn.Conv2d
    y = layer(x)

The torch adapter (``gconv.torch``) is imported only on demand; ``import gconv`` never
imports torch.
"""
try:
    from . import _kernels  # noqa: F401  (the compiled module: fail early and readably)
except ImportError as e:  # pragma: no cover - only in an unbuilt source tree
    raise ImportError(
        f"gconv's compiled kernels (gconv._kernels) could not be imported: {e}. If you are "
        "running from a source checkout, build them first: `pip install .` (or "
        "`python setup.py build_ext --inplace` for development), and run Python from "
        "outside the checkout so the installed package is found.") from e

from ._conv import Conv2d, conv2d, conv2d_output_shape
from ._conv1d import Conv1d, conv1d
from ._dispatch import ALGORITHMS
from ._explain import Explanation, explain
from ._isa import available_isas, get_isa, set_isa
from ._kernels import openmp_enabled
from ._problem import ConvProblem
from ._threads import get_num_threads, set_num_threads
from ._transpose import ConvTranspose1d, ConvTranspose2d, conv_transpose1d, conv_transpose2d
from . import grad  # noqa: E402  (gconv.grad: the gradients)

__version__ = "0.1.0"

__all__ = [
    "conv2d", "Conv2d", "conv2d_output_shape", "ConvProblem", "ALGORITHMS",
    "openmp_enabled", "get_num_threads", "set_num_threads",
    "available_isas", "get_isa", "set_isa", "__version__",
    "conv1d", "Conv1d", "explain", "Explanation",
    "conv_transpose2d", "conv_transpose1d", "ConvTranspose2d", "ConvTranspose1d", "grad",
]
