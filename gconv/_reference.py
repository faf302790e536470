"""The plain NumPy reference convolution: the oracle every kernel is tested against.

It is written for clarity, not speed: zero-pad, then for each kernel tap (kh, kw) take the
strided, dilated window of the input and contract it with that tap's weights, group by
group, accumulating in float64. It is also ``algorithm='reference'`` of ``gconv.conv2d``;
``'auto'`` never picks it.
"""
import numpy as np


def conv2d_reference(x, w, bias=None, stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1),
                     groups=1):
    """Grouped 2-D cross-correlation, as ``torch.nn.functional.conv2d`` defines it.

    x: (N, C_in, H, W); w: (C_out, C_in // groups, KH, KW); bias: (C_out,) or None.
    stride, dilation: (sh, sw); padding: (top, bottom, left, right), zeros.
    Returns (N, C_out, OH, OW) in x's dtype, computed in float64.
    """
    x = np.asarray(x)
    w = np.asarray(w)
    N, C_in, H, W = x.shape
    C_out, CG, KH, KW = w.shape
    G = groups
    M = C_out // G
    sh, sw = stride
    dh, dw = dilation
    pt, pb, pl, pr = padding
    xp = np.zeros((N, C_in, H + pt + pb, W + pl + pr), dtype=np.float64)
    xp[:, :, pt:pt + H, pl:pl + W] = x
    OH = (H + pt + pb - dh * (KH - 1) - 1) // sh + 1
    OW = (W + pl + pr - dw * (KW - 1) - 1) // sw + 1
    out = np.zeros((N, G, M, OH, OW), dtype=np.float64)
    xg = xp.reshape(N, G, CG, xp.shape[2], xp.shape[3])
    wg = w.astype(np.float64).reshape(G, M, CG, KH, KW)
    for kh in range(KH):
        for kw in range(KW):
            r0, c0 = kh * dh, kw * dw
            window = xg[:, :, :, r0:r0 + sh * (OH - 1) + 1:sh, c0:c0 + sw * (OW - 1) + 1:sw]
            # out[n, g, m, i, j] += sum_c w[g, m, c, kh, kw] * window[n, g, c, i, j]
            out += np.einsum("gmc,ngcij->ngmij", wg[:, :, :, kh, kw], window)
    out = out.reshape(N, C_out, OH, OW)
    if bias is not None:
        out += np.asarray(bias, dtype=np.float64).reshape(1, C_out, 1, 1)
    return out.astype(x.dtype)


def apply_activation(y, name, alpha=0.0, lo=0.0, hi=0.0):
    """NumPy twin of the kernels' fused epilogue (torch's definitions), in place on y."""
    if name is None:
        return y
    with np.errstate(invalid="ignore", over="ignore"):    # NaN and inf in, as torch: quietly
        return _apply_activation(y, name, alpha, lo, hi)


def _apply_activation(y, name, alpha, lo, hi):
    if name == "relu":
        np.maximum(y, 0, out=y)
    elif name == "relu6":
        np.clip(y, 0, 6, out=y)
    elif name == "leaky_relu":
        y[...] = np.where(y > 0, y, alpha * y)      # torch: x > 0 ? x : slope * x
    elif name == "clamp":   # torch.clamp: min(max(y, lo), hi); a NaN bound gives NaN
        np.minimum(np.maximum(y, lo), hi, out=y)
    elif name == "sigmoid":
        y[...] = 1 / (1 + np.exp(-y))
    elif name == "tanh":
        np.tanh(y, out=y)
    elif name == "silu":
        y[...] = y / (1 + np.exp(-y))
    elif name == "hardswish":
        y[...] = y * np.clip(y + 3, 0, 6) / 6
    else:
        raise ValueError(f"unknown activation {name!r}")
    return y
