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


# -- transposed convolution and gradients: written independently of the code under test -----
def conv_transpose2d_reference(x, w, bias=None, stride=(1, 1), padding=(0, 0, 0, 0),
                               dilation=(1, 1), groups=1, output_size=None):
    """Grouped 2-D transposed convolution, as ``torch.nn.functional.conv_transpose2d``, by
    scatter-add: every input pixel adds its weights times itself into the output window it
    reaches, tap by tap; then the padding is cropped away.

    x: (N, C_in, H, W); w: (C_in, C_out // groups, KH, KW); padding (top, bottom, left,
    right). output_size: (OH, OW), default (H-1)*s - top - bottom + d*(K-1) + 1 (torch's
    output_padding adds to it). Output pixel o reads the uncropped pixel o + top.
    Returns (N, C_out, OH, OW) in x's dtype, computed in float64.
    """
    x = np.asarray(x)
    w = np.asarray(w)
    N, C_in, H, W = x.shape
    _, M, KH, KW = w.shape
    G = groups
    CG = C_in // G
    sh, sw = stride
    dh, dw = dilation
    pt, pb, pl, pr = padding
    if output_size is None:
        output_size = ((H - 1) * sh - pt - pb + dh * (KH - 1) + 1,
                       (W - 1) * sw - pl - pr + dw * (KW - 1) + 1)
    OH, OW = output_size
    FH = max((H - 1) * sh + dh * (KH - 1) + 1, pt + OH)
    FW = max((W - 1) * sw + dw * (KW - 1) + 1, pl + OW)
    full = np.zeros((N, G, M, FH, FW))
    xg = x.astype(np.float64).reshape(N, G, CG, H, W)
    wg = w.astype(np.float64).reshape(G, CG, M, KH, KW)
    for kh in range(KH):
        for kw in range(KW):
            r0, c0 = kh * dh, kw * dw
            full[:, :, :, r0:r0 + sh * (H - 1) + 1:sh, c0:c0 + sw * (W - 1) + 1:sw] += \
                np.einsum("gcm,ngcij->ngmij", wg[:, :, :, kh, kw], xg)
    out = full[:, :, :, pt:pt + OH, pl:pl + OW].reshape(N, G * M, OH, OW)
    if bias is not None:
        out = out + np.asarray(bias, dtype=np.float64).reshape(1, -1, 1, 1)
    return out.astype(x.dtype)


def conv2d_input_grad_reference(input_size, w, grad_output, stride=(1, 1),
                                padding=(0, 0, 0, 0), dilation=(1, 1), groups=1):
    """d(sum(conv2d(x, w) * grad_output)) / dx for x of ``input_size`` (N, C_in, H, W): each
    output gradient scattered back through the taps into a zero-padded input, then cropped.
    """
    gy = np.asarray(grad_output).astype(np.float64)
    w = np.asarray(w)
    N, C_in, H, W = input_size
    C_out, CG, KH, KW = w.shape
    G = groups
    M = C_out // G
    _, _, OH, OW = gy.shape
    sh, sw = stride
    dh, dw = dilation
    pt, pb, pl, pr = padding
    dxp = np.zeros((N, G, CG, H + pt + pb, W + pl + pr))
    gyg = gy.reshape(N, G, M, OH, OW)
    wg = w.astype(np.float64).reshape(G, M, CG, KH, KW)
    for kh in range(KH):
        for kw in range(KW):
            for i in range(OH):
                r = i * sh + kh * dh
                # all columns of output row i at once (a strided slice of the padded row)
                dxp[:, :, :, r, kw * dw:kw * dw + sw * (OW - 1) + 1:sw] += np.einsum(
                    "gmc,ngmj->ngcj", wg[:, :, :, kh, kw], gyg[:, :, :, i, :])
    dx = dxp[:, :, :, pt:pt + H, pl:pl + W].reshape(N, C_in, H, W)
    return dx.astype(grad_output.dtype)


def conv2d_weight_grad_reference(x, weight_size, grad_output, stride=(1, 1),
                                 padding=(0, 0, 0, 0), dilation=(1, 1), groups=1):
    """d(sum(conv2d(x, w) * grad_output)) / dw for w of ``weight_size``: for each tap, the
    output gradient contracted with the window of the zero-padded input that tap reads."""
    x = np.asarray(x)
    gy = np.asarray(grad_output).astype(np.float64)
    N, C_in, H, W = x.shape
    C_out, CG, KH, KW = weight_size
    G = groups
    M = C_out // G
    _, _, OH, OW = gy.shape
    sh, sw = stride
    dh, dw = dilation
    pt, pb, pl, pr = padding
    xp = np.zeros((N, C_in, H + pt + pb, W + pl + pr))
    xp[:, :, pt:pt + H, pl:pl + W] = x
    xg = xp.reshape(N, G, CG, xp.shape[2], xp.shape[3])
    gyg = gy.reshape(N, G, M, OH, OW)
    dw_ = np.zeros((G, M, CG, KH, KW))
    for kh in range(KH):
        for kw in range(KW):
            r0, c0 = kh * dh, kw * dw
            window = xg[:, :, :, r0:r0 + sh * (OH - 1) + 1:sh, c0:c0 + sw * (OW - 1) + 1:sw]
            dw_[:, :, :, kh, kw] = np.einsum("ngmij,ngcij->gmc", gyg, window)
    return dw_.reshape(C_out, CG, KH, KW).astype(x.dtype)
