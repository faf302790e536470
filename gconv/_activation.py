"""The fused epilogue's activation argument: out = act(conv + bias + residual).

Forms (torch's definitions):
  None, 'relu', 'relu6', 'sigmoid', 'tanh', 'silu', 'hardswish'
  'leaky_relu' (slope 0.01, torch's default) or ('leaky_relu', slope)
  ('clamp', min, max)   min(max(x, min), max); ('clamp', 0, 6) is relu6
NaN propagates as in torch: relu(NaN), clamp(NaN, ...) and a clamp with a NaN bound are NaN.
"""
import numbers

# codes shared with src/common/problem.h (enum gconv_activation)
ACTIVATION_CODES = {None: 0, "relu": 1, "relu6": 2, "leaky_relu": 3, "clamp": 4, "sigmoid": 5,
                    "tanh": 6, "silu": 7, "hardswish": 8}
SIMPLE = ("relu", "relu6", "sigmoid", "tanh", "silu", "hardswish")


class Activation(tuple):
    """(name, code, alpha, lo, hi), hashable so it can key the plan cache."""
    __slots__ = ()

    name = property(lambda self: self[0])
    code = property(lambda self: self[1])
    alpha = property(lambda self: self[2])
    lo = property(lambda self: self[3])
    hi = property(lambda self: self[4])

    @property
    def spec(self):
        """The argument that makes this activation, e.g. 'relu' or ('clamp', -1.0, 1.0)."""
        if self.name == "leaky_relu":
            return "leaky_relu" if self.alpha == 0.01 else ("leaky_relu", self.alpha)
        if self.name == "clamp":
            return ("clamp", self.lo, self.hi)
        return self.name


NONE = Activation((None, 0, 0.0, 0.0, 0.0))


def _number(v, what):
    """A real parameter; a bool counts as 0 or 1, as torch.clamp and F.leaky_relu take it."""
    if not isinstance(v, numbers.Real):
        raise TypeError(f"{what} must be a real number, got {v!r}")
    return float(v)


def parse_activation(activation):
    if activation is None:
        return NONE
    if isinstance(activation, Activation):
        return activation
    if isinstance(activation, str):
        if activation in SIMPLE:
            return Activation((activation, ACTIVATION_CODES[activation], 0.0, 0.0, 0.0))
        if activation == "leaky_relu":
            return Activation(("leaky_relu", 3, 0.01, 0.0, 0.0))
    elif isinstance(activation, tuple) and activation:
        head = activation[0]
        if head == "leaky_relu" and len(activation) == 2:
            return Activation(("leaky_relu", 3, _number(activation[1], "leaky_relu slope"),
                               0.0, 0.0))
        if head == "clamp" and len(activation) == 3:
            # torch.clamp's rule: min > max gives max everywhere, a NaN bound NaN
            lo = _number(activation[1], "clamp min")
            hi = _number(activation[2], "clamp max")
            return Activation(("clamp", 4, 0.0, lo, hi))
    raise ValueError(
        f"activation must be None, one of {SIMPLE + ('leaky_relu',)}, ('leaky_relu', slope) "
        f"or ('clamp', min, max); got {activation!r}")
