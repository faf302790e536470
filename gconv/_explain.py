"""``gconv.explain``: what a grouped convolution connects, costs and runs as.

    >>> print(gconv.explain(16, 4, groups=4))

reports the weight shape, parameters (against groups=1), the valid groups values, which input
channels feed each output channel (as text and, with ``.plot(path)``, as a picture), and for
an input size the output shape, the FLOPs and which of gconv's kernel paths runs it and why.

Nothing is computed: the arguments are checked by gconv.Conv2d's own constructor (so a
mistake gets the same error as the layer would give) and the kernel path comes from the
dispatcher, asked about a ConvProblem built from shape-only stand-in arrays; the path
inside it (mode, micro-kernel, ...) and its reason come from the compiled planner, asked for
a plan at the current ISA and thread count (gconv.set_isa, gconv.set_num_threads).
"""
import math
import textwrap

import numpy as np

from . import _dispatch, _isa, _threads
from ._conv import UninitializedConv2d, select_implementation
from ._validation import problem_from_shapes

# Above this many channels on either side, diagrams draw groups as blocks, not channels.
TEXT_CHANNEL_LIMIT = 16
PLOT_CHANNEL_LIMIT = 48
# Above this many groups, the text diagram shows the first and last few only.
TEXT_GROUP_LIMIT = 16
# The input size used to name the kernel path when no input_size is given (the
# implementation depends on kernel, stride, padding and channels per group, not on H and W;
# the planner's path inside it does depend on them, and the report says so).
NOMINAL_INPUT = 32
# Width of the wrapped reason lines in the text report.
REASON_WIDTH = 92


def _divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


def _span(r):
    """range -> '4-7' (or '4' for one channel)."""
    return f"{r.start}" if len(r) == 1 else f"{r.start}-{r.stop - 1}"


def _human_flops(f):
    for unit, scale in (("GFLOP", 1e9), ("MFLOP", 1e6), ("kFLOP", 1e3)):
        if f >= scale:
            return f"{f / scale:.3g} {unit}"
    return f"{f} FLOP"


def _normalize_input_size(input_size, in_channels):
    """int, (H, W), (C, H, W) or (N, C, H, W) -> (N, C, H, W)."""
    if isinstance(input_size, (int, np.integer)) and not isinstance(input_size, bool):
        return (1, in_channels, int(input_size), int(input_size))
    size = tuple(int(s) for s in input_size)
    if len(size) == 2:
        return (1, in_channels, *size)
    if len(size) == 3:
        return (1, *size)
    if len(size) == 4:
        return size
    raise ValueError(f"input_size must be an int, (H, W), (C, H, W) or (N, C, H, W), got "
                     f"{input_size!r}")


class Explanation:
    """The anatomy of one grouped convolution; see ``gconv.explain``.

    Attributes
      in_channels, out_channels, groups, kernel_size (kh, kw), stride, padding, dilation, bias
      weight_shape            (C_out, C_in // groups, kh, kw), as torch
      bias_shape              (C_out,) or None
      weight_count            number of weights
      parameters              weights + bias
      dense_parameters        the same layer's parameters with groups=1
      parameter_ratio         parameters / dense_parameters
      valid_groups            every groups value both channel counts allow
      in_channels_per_group, out_channels_per_group
      connections             per output channel, the range of input channels feeding it
      group_inputs, group_outputs   per group, its range of input / output channels
      algorithm               the kernel path gconv takes ('depthwise', 'pointwise', 'general')
      algorithm_summary       what that path does
      declined                [(path, reason)] for the paths tried before it, in order
      path                    the path its planner chooses inside it, by name
                              ('depthwise / lanes mode, 3x3 unrolled', ...)
      path_reason             why, with the numbers that decided it
      plan_isa, plan_dtype, plan_threads   what that plan was made for
      kernel_plan             that plan (gconv._kernels.Plan: .blocking, .path, ...)
      With input_size (else None):
      input_shape, output_shape (N, C, H, W), padding_resolved (top, bottom, left, right),
      flops, dense_flops, flops_ratio, problem (the ConvProblem)
    """

    def __init__(self, in_channels, out_channels, kernel_size=1, groups=1, stride=1,
                 padding=0, dilation=1, input_size=None, *, bias=True):
        layer = UninitializedConv2d(in_channels, out_channels, kernel_size, stride=stride,
                                 padding=padding, dilation=dilation, groups=groups, bias=bias)
        self.in_channels, self.out_channels = layer.in_channels, layer.out_channels
        self.groups = G = layer.groups
        self.kernel_size, self.stride = layer.kernel_size, layer.stride
        self.dilation = layer.dilation
        self.padding = layer.padding
        self.bias = bool(bias)
        kh, kw = self.kernel_size
        self.in_channels_per_group = cin_g = self.in_channels // G
        self.out_channels_per_group = cout_g = self.out_channels // G
        self.weight_shape = (self.out_channels, cin_g, kh, kw)
        self.bias_shape = (self.out_channels,) if self.bias else None
        self.weight_count = self.out_channels * cin_g * kh * kw
        n_bias = self.out_channels if self.bias else 0
        self.parameters = self.weight_count + n_bias
        self.dense_parameters = self.out_channels * self.in_channels * kh * kw + n_bias
        self.parameter_ratio = self.parameters / self.dense_parameters
        self.valid_groups = _divisors(math.gcd(self.in_channels, self.out_channels))
        self.group_inputs = [range(g * cin_g, (g + 1) * cin_g) for g in range(G)]
        self.group_outputs = [range(g * cout_g, (g + 1) * cout_g) for g in range(G)]
        self.connections = [self.group_inputs[o // cout_g] for o in range(self.out_channels)]

        # the kernel path, from a problem on the given input or on a nominal one
        ext_h = self.dilation[0] * (kh - 1) + 1
        ext_w = self.dilation[1] * (kw - 1) + 1
        if input_size is None:
            shape = (1, self.in_channels, max(NOMINAL_INPUT, ext_h), max(NOMINAL_INPUT, ext_w))
        else:
            shape = _normalize_input_size(input_size, self.in_channels)
        problem = problem_from_shapes(shape, self.weight_shape, self.stride, self.padding,
                                      self.dilation, G,
                                      bias_shape=self.bias_shape if self.bias else None)
        # the problem the kernels run: a stride far past the kernel is gathered first
        run, _, impl = select_implementation(problem, "auto")
        self.algorithm = impl.name
        self.algorithm_summary = impl.summary
        self.decisions = _dispatch.decisions(run)
        order = [i.name for i in _dispatch.AUTO_ORDER]
        self.declined = [(name, reason) for name, reason in self.decisions
                         if name in order[:order.index(impl.name)]]
        self.path_input_shape = shape
        # the path inside the implementation: the compiled planner's choice
        self.plan_isa = _isa.ISA_NAMES[_isa.isa_level()]
        self.plan_dtype = np.dtype(problem.dtype).name
        self.plan_threads = _threads.threads_for(run)
        self.kernel_plan = impl.make_plan(run, _isa.isa_level(), self.plan_threads)
        self.path = self.kernel_plan.path if self.kernel_plan is not None else impl.name
        self.path_reason = (self.kernel_plan.path_reason if self.kernel_plan is not None
                            else impl.summary)
        if input_size is None:
            self.problem = self.input_shape = self.output_shape = None
            self.padding_resolved = self.flops = self.dense_flops = self.flops_ratio = None
        else:
            self.problem = problem
            self.input_shape = shape
            self.output_shape = problem.output_shape
            self.padding_resolved = problem.padding
            self.flops = problem.flops
            self.dense_flops = problem.flops * G     # K grows by `groups` with groups=1
            self.flops_ratio = 1 / G                 # also for an empty batch

    # -- queries ---------------------------------------------------------------------------
    def inputs_of(self, out_channel):
        """The input channels that feed output channel ``out_channel``."""
        return self.connections[out_channel]

    def outputs_of(self, in_channel):
        """The output channels that input channel ``in_channel`` feeds."""
        return self.group_outputs[in_channel // self.in_channels_per_group]

    @property
    def kind(self):
        """'dense', 'depthwise' or 'grouped', in words."""
        if self.groups == 1:
            return "dense convolution (groups=1: every input channel feeds every output)"
        if self.in_channels_per_group == 1:
            m = self.out_channels_per_group
            mult = "" if m == 1 else f" with channel multiplier {m}"
            return f"depthwise convolution{mult} ({self.groups} groups of one input channel)"
        return f"grouped convolution ({self.groups} groups)"

    def signature(self):
        kh, kw = self.kernel_size
        kernel = kh if kh == kw else self.kernel_size
        s = f"Conv2d({self.in_channels}, {self.out_channels}, kernel_size={kernel}"
        if self.stride != (1, 1):
            s += f", stride={self.stride[0] if len(set(self.stride)) == 1 else self.stride}"
        if self.padding not in ((0, 0), "valid"):
            p = self.padding
            s += f", padding={p!r}" if isinstance(p, str) else (
                f", padding={p[0] if p[0] == p[1] and not isinstance(p[0], tuple) else p}")
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation[0] if len(set(self.dilation)) == 1 else self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if not self.bias:
            s += ", bias=False"
        return s + ")"

    # -- text ------------------------------------------------------------------------------
    def __repr__(self):
        return (f"<gconv.Explanation {self.signature()}: weight {self.weight_shape}, "
                f"{self.parameters} parameters, path {self.algorithm!r}>")

    def _repr_pretty_(self, printer, cycle):   # IPython shows the full report
        printer.text(repr(self) if cycle else str(self))

    def __str__(self):
        G, cin_g, cout_g = self.groups, self.in_channels_per_group, self.out_channels_per_group
        kh, kw = self.kernel_size
        lines = [f"{self.signature()}: {self.kind}"]
        plural = lambda n, w: f"{n} {w}{'' if n == 1 else 's'}"   # noqa: E731
        lines.append(f"  each group: {plural(cin_g, 'input channel')} -> "
                     f"{plural(cout_g, 'output channel')}")
        bias = f" + bias {self.bias_shape}" if self.bias else ""
        lines.append(f"  weight {self.weight_shape}{bias}: {self.parameters:,} parameters")
        if G > 1:
            dense_w = (self.out_channels, self.in_channels, kh, kw)
            lines.append(f"  groups=1 would have weight {dense_w}: {self.dense_parameters:,} "
                         f"parameters; this is {self.parameter_ratio:.3g}x of that "
                         f"({1 / self.parameter_ratio:.3g}x fewer)")
        lines.append(f"  valid groups for {self.in_channels} -> {self.out_channels} channels: "
                     f"{', '.join(map(str, self.valid_groups))}")
        if self.output_shape is not None:
            pt, pb, pl, pr = self.padding_resolved
            lines.append(f"  input {self.input_shape} -> output {self.output_shape}, padding "
                         f"(top, bottom, left, right) = ({pt}, {pb}, {pl}, {pr})")
            flops = f"  FLOPs: {_human_flops(self.flops)} (a multiply-add counts 2)"
            if G > 1:
                flops += (f"; groups=1: {_human_flops(self.dense_flops)} "
                          f"({self.flops_ratio:.3g}x)")
            lines.append(flops)
        lines.append("")
        lines += self._connection_lines()
        lines.append("")
        lines += self._path_lines()
        return "\n".join(lines)

    def _connection_lines(self):
        lines = ["  which input channels feed each output channel:"]
        if self.out_channels <= TEXT_CHANNEL_LIMIT:   # else the block matrix below says it
            width = len(str(self.out_channels - 1))
            lines += [f"    out {o:>{width}} <- in {_span(r)}"
                      for o, r in enumerate(self.connections)]
            lines.append("")
        if max(self.in_channels, self.out_channels) <= TEXT_CHANNEL_LIMIT:
            lines += self._channel_matrix()
        else:
            lines += self._group_matrix()
        return lines

    def _channel_matrix(self):
        """Rows: output channels; columns: input channels; '#' where one feeds the other."""
        C_in, C_out = self.in_channels, self.out_channels
        label = len(f"out {C_out - 1}")
        pad = " " * (4 + label + 2)
        lines = ["    rows: output channels, columns: input channels, # = connected"]
        if C_in > 10:
            lines.append(pad + " ".join(str(i // 10) if i >= 10 else " " for i in range(C_in)))
        lines.append(pad[:-len("in") - 2] + "in  " + " ".join(str(i % 10) for i in range(C_in)))
        for o in range(C_out):
            feeds = self.connections[o]
            row = " ".join("#" if i in feeds else "." for i in range(C_in))
            group = f"   group {o // self.out_channels_per_group}" if self.groups > 1 else ""
            lines.append(f"    {f'out {o}':<{label}}  {row}{group}")
        return lines

    def _shown_groups(self):
        G = self.groups
        if G <= TEXT_GROUP_LIMIT:
            return list(range(G))
        return [0, 1, 2, 3, 4, 5, None, G - 2, G - 1]

    def _group_matrix(self):
        """Rows: output channel blocks; columns: input channel blocks, one per group."""
        shown = self._shown_groups()
        cells = ["g" + str(g) if g is not None else "..." for g in shown]
        width = max(len(c) for c in cells)
        row_labels = [f"out {_span(self.group_outputs[g])}" if g is not None else "..."
                      for g in shown]
        label = max(len(r) for r in row_labels)
        lines = [f"    rows: output channels, columns: input channels in blocks of "
                 f"{self.in_channels_per_group}, ## = connected"]
        lines.append(" " * (4 + label + 2) + " ".join(c.ljust(width) for c in cells))
        for g, row_label in zip(shown, row_labels):
            if g is None:
                lines.append(f"    {row_label:<{label}}")
                continue
            row = " ".join(("#" * width if h == g else ("." * width if h is not None
                                                      else " " * width)) for h in shown)
            lines.append(f"    {row_label:<{label}}  {row}   in {_span(self.group_inputs[g])}")
        return lines

    def _path_lines(self):
        order = ", ".join(i.name for i in _dispatch.AUTO_ORDER)
        lines = [f"  kernel path: {self.algorithm} ({self.algorithm_summary})"]
        if self.output_shape is None:
            n, c, h, w = self.path_input_shape
            lines.append(f"    (asked for a {n}x{c}x{h}x{w} input; pass input_size= for yours)")
        lines.append(f"    why: gconv tries {order} and takes the first that accepts")
        for name, reason in self.declined:
            lines.append(f"      - {name} declined: {reason}")
        lines.append(f"      - {self.algorithm} accepts")
        threads = f"{self.plan_threads} thread{'s' * (self.plan_threads != 1)}"
        lines.append(f"    plan ({self.plan_isa}, {self.plan_dtype}, {threads}): {self.path}")
        lines += textwrap.wrap(self.path_reason, REASON_WIDTH, initial_indent="      because: ",
                               subsequent_indent="        ")
        return lines

    # -- picture ---------------------------------------------------------------------------
    def plot(self, path=None, *, ax=None, dpi=150, title=None):
        """Draw the channel connections: inputs on the left, outputs on the right, coloured
        by group (channels one by one up to 48 a side, else groups as blocks).

        path: file to write, PNG, SVG or PDF by its extension (None: don't save);
        ax: a matplotlib Axes to draw on (default: a new figure). Returns the Figure.
        Needs matplotlib (``pip install "gconv[plot]"``).
        """
        fmt = None
        if path is not None:
            fmt = str(path).rsplit(".", 1)[-1].lower() if "." in str(path) else ""
            if fmt not in ("png", "svg", "pdf"):
                raise ValueError(f"plot writes .png, .svg or .pdf files; got {str(path)!r}")
        fig = _draw_connections(self, ax, title)
        if path is not None:
            fig.savefig(path, format=fmt, dpi=dpi, bbox_inches="tight",
                        facecolor="white")
        return fig


def explain(in_channels, out_channels, kernel_size=1, groups=1, stride=1, padding=0,
            dilation=1, input_size=None, *, bias=True):
    """Explain a grouped convolution ``Conv2d(in_channels, out_channels, kernel_size, ...)``.

    input_size: None, an int (H = W), (H, W), (C, H, W) or (N, C, H, W): adds the output
    shape, the resolved padding and the FLOPs. Returns an ``Explanation`` (print it, or
    ``.plot("groups.png")``). Invalid arguments raise the errors gconv.Conv2d raises.

        >>> e = gconv.explain(16, 4, groups=4)
        >>> e.weight_shape, e.valid_groups, e.inputs_of(1)
        ((4, 4, 1, 1), [1, 2, 4], range(4, 8))
    """
    return Explanation(in_channels, out_channels, kernel_size, groups, stride, padding,
                       dilation, input_size, bias=bias)


# -- drawing --------------------------------------------------------------------------------
def _import_matplotlib():
    try:
        import matplotlib  # noqa: F401
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError('Explanation.plot needs matplotlib: pip install "gconv[plot]" '
                          '(or pip install matplotlib)') from e
    return matplotlib, Figure


def _group_colors(matplotlib, G):
    """One colour per group: qualitative palettes while they last, then a smooth hue wheel."""
    if G <= 10:
        cmap = matplotlib.colormaps["tab10"]
        return [cmap(g) for g in range(G)]
    if G <= 20:
        cmap = matplotlib.colormaps["tab20"]
        return [cmap(g) for g in range(G)]
    cmap = matplotlib.colormaps["hsv"]
    return [cmap(0.9 * g / G) for g in range(G)]


def _positions(e):
    """Vertical positions (top = first channel) of inputs and outputs.

    Each group owns the same horizontal slot on both sides, so a group reads as one band;
    channels are spread evenly inside their group's slot.
    """
    G = e.groups
    n = max(e.in_channels, e.out_channels)
    slot = n / G

    def spread(per_group):
        ys = []
        for g in range(G):
            for j in range(per_group):
                ys.append(n - (g * slot + (j + 0.5) * slot / per_group))
        return ys

    return spread(e.in_channels_per_group), spread(e.out_channels_per_group), n


def _draw_connections(e, ax, title):
    matplotlib, Figure = _import_matplotlib()
    from matplotlib.patches import Polygon, FancyBboxPatch

    y_in, y_out, n = _positions(e)
    by_channel = max(e.in_channels, e.out_channels) <= PLOT_CHANNEL_LIMIT
    if ax is None:
        height = min(9.0, max(3.2, 0.26 * n + 1.6)) if by_channel else 6.0
        fig = Figure(figsize=(6.4, height))
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    colors = _group_colors(matplotlib, e.groups)
    x_in, x_out = 0.0, 1.0
    G, cin_g, cout_g = e.groups, e.in_channels_per_group, e.out_channels_per_group
    slot = n / G
    pad = 0.42 if by_channel else 0.0

    for g in range(G):
        ins, outs = e.group_inputs[g], e.group_outputs[g]
        top_in, bottom_in = y_in[ins.start] + pad, y_in[ins.stop - 1] - pad
        top_out, bottom_out = y_out[outs.start] + pad, y_out[outs.stop - 1] - pad
        if not by_channel:       # blocks fill their slot
            top_in = top_out = n - g * slot
            bottom_in = bottom_out = n - (g + 1) * slot
        gap = 0.0 if by_channel or G > 64 else min(0.15 * slot, 0.3)
        band = Polygon([(x_in + 0.05, top_in - gap / 2), (x_out - 0.05, top_out - gap / 2),
                        (x_out - 0.05, bottom_out + gap / 2), (x_in + 0.05, bottom_in + gap / 2)],
                       closed=True, facecolor=colors[g], edgecolor="none",
                       alpha=0.16 if by_channel else 0.45)
        ax.add_patch(band)
        if not by_channel:
            for x in (x_in, x_out):
                ax.add_patch(FancyBboxPatch((x - 0.05, bottom_in + gap / 2), 0.1,
                                            max(top_in - bottom_in - gap, 1e-3),
                                            boxstyle="round,pad=0,rounding_size=0.02",
                                            facecolor=colors[g],
                                            edgecolor="white" if G <= 64 else "none",
                                            linewidth=0.5))
            # every block's channel range while they fit, else the first and last two
            if G <= 24 or g in ((0, 1, G - 2, G - 1) if G <= 48 else (0, G - 1)):
                for x, r, ha in ((x_in - 0.08, ins, "right"), (x_out + 0.08, outs, "left")):
                    ax.text(x, n - (g + 0.5) * slot, _span(r), ha=ha, va="center",
                            fontsize=8 if G <= 24 else 7, color="0.25")

    if by_channel:
        n_lines = e.out_channels * cin_g
        width = 1.6 if n_lines <= 64 else (1.0 if n_lines <= 256 else 0.5)
        alpha = 0.85 if n_lines <= 64 else (0.6 if n_lines <= 256 else 0.35)
        for o, feeds in enumerate(e.connections):
            g = o // cout_g
            for i in feeds:
                ax.plot([x_in, x_out], [y_in[i], y_out[o]], color=colors[g], lw=width,
                        alpha=alpha, solid_capstyle="round", zorder=2)
        size = 180 if n <= 16 else (90 if n <= 32 else 45)
        font = 9 if n <= 16 else (7 if n <= 32 else 5.5)
        for ys, x, count, per, ha, dx in ((y_in, x_in, e.in_channels, cin_g, "right", -0.06),
                                          (y_out, x_out, e.out_channels, cout_g, "left", 0.06)):
            node_colors = [colors[c // per] for c in range(count)]
            ax.scatter([x] * count, ys, s=size, c=node_colors, edgecolors="white",
                       linewidths=1.2, zorder=3)
            for c in range(count):
                ax.text(x + dx, ys[c], str(c), ha=ha, va="center", fontsize=font,
                        color="0.2")
        if 1 < G <= 12:
            for g in range(G):
                ax.text(0.5, n - (g + 0.5) * slot, f"group {g}", ha="center", va="center",
                        fontsize=8, color=colors[g], zorder=4, fontweight="bold",
                        bbox=dict(boxstyle="round,pad=0.25", facecolor="white",
                                  edgecolor="none", alpha=0.85))

    if not by_channel:
        each = (f"{G} groups, each: {cin_g} input channel{'s' * (cin_g > 1)} -> "
                f"{cout_g} output channel{'s' * (cout_g > 1)}")
        ax.text(0.5, -0.015 * n, each, ha="center", va="top", fontsize=8.5, color="0.25")
    top = n + (0.2 if by_channel else 0.05 * n)
    ax.text(x_in, top, f"input channels\n({e.in_channels})", ha="center", va="bottom",
            fontsize=9, color="0.15")
    ax.text(x_out, top, f"output channels\n({e.out_channels})", ha="center", va="bottom",
            fontsize=9, color="0.15")
    ax.set_xlim(-0.35, 1.35)
    ax.set_ylim(-0.3 if by_channel else -0.07 * n, n + (1.6 if by_channel else 0.14 * n))
    ax.axis("off")
    if title is None:
        title = e.signature()
        sub = f"weight {e.weight_shape}: {e.parameters:,} parameters"
        if G > 1:
            sub += f" (groups=1: {e.dense_parameters:,})"
        title = f"{title}\n{sub}"
    ax.set_title(title, fontsize=10, color="0.1")
    return fig
