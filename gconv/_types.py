"""Type aliases of the public API (annotations only: nothing here runs on a call)."""
from typing import Literal, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.floating]
IntOrPair = Union[int, Tuple[int, int], Sequence[int]]
#: int, (h, w), ((top, bottom), (left, right)) or a rule name
Padding = Union[int, Tuple[int, int], Tuple[Tuple[int, int], Tuple[int, int]], Sequence[int],
                Literal["valid", "same", "same_upper", "same_lower"]]
#: None, a name ('relu', 'relu6', 'sigmoid', 'tanh', 'silu', 'hardswish', 'leaky_relu'),
#: ('leaky_relu', slope) or ('clamp', min, max)
ActivationSpec = Optional[Union[str, Tuple[str, float], Tuple[str, float, float]]]
PaddingMode = Literal["zeros", "reflect", "replicate", "circular"]
Layout = Literal["NCHW", "NHWC"]
Algorithm = Literal["auto", "depthwise", "pointwise", "general", "reference"]
