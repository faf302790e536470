"""``python -m gconv`` / the ``gconv`` console script.

    gconv bench [--layers a,b | --sweep N [--seed S] | --model module:function]
                [--threads 1,2] [--repeat R] [--json FILE] [--plot FILE] [--quick]
    gconv explain IN OUT [--groups G] [--kernel-size K] ... [--plot FILE]
    gconv check [--cases N] [--seed S]

This module only parses and dispatches. ``bench`` is bench tooling: its options and driver
live in gconv/bench/cli.py, imported only when ``bench`` runs. ``explain`` and ``check``
live in gconv/_explain.py and gconv/_check.py, imported only when those subcommands run.
"""
import argparse
import sys

from ._console import ProgressBar, have_matplotlib, positive_int


def _int_or_pair(values, what, parser):
    if values is None:
        return None
    if len(values) > 2:
        parser.error(f"{what} takes one or two integers, got {len(values)}")
    return values[0] if len(values) == 1 else tuple(values)


def _padding(values, parser):
    if values is None:
        return 0
    if len(values) == 1 and not values[0].lstrip("-").isdigit():
        return values[0]                           # 'same', 'valid', 'same_upper', ...
    try:
        ints = [int(v) for v in values]
    except ValueError:
        parser.error(f"--padding takes one or two integers or a padding string, got {values}")
    return _int_or_pair(ints, "--padding", parser)


def cmd_explain(args, parser):
    from ._explain import explain
    kwargs = dict(kernel_size=_int_or_pair(args.kernel_size, "--kernel-size", parser) or 1,
                  groups=args.groups,
                  stride=_int_or_pair(args.stride, "--stride", parser) or 1,
                  padding=_padding(args.padding, parser),
                  dilation=_int_or_pair(args.dilation, "--dilation", parser) or 1,
                  input_size=tuple(args.input_size) if args.input_size else None)
    if args.plot and not have_matplotlib():
        print("gconv explain: --plot needs matplotlib, which is not installed: "
              "pip install matplotlib", file=sys.stderr)
        return 2
    try:
        report = explain(args.in_channels, args.out_channels, **kwargs)
    except (ValueError, TypeError) as e:
        print(f"gconv explain: {e}", file=sys.stderr)
        return 2
    print(report)
    if args.plot:
        report.plot(args.plot)
        print(f"wrote {args.plot}")
    return 0


def cmd_check(args, parser):
    from ._check import run_check
    bar = ProgressBar(args.cases, "check")
    try:
        summary = run_check(cases=args.cases, seed=args.seed,
                            progress=lambda done, total: bar.update(done, total))
    except ImportError as e:           # torch missing: the back end says how to install it
        bar.close()
        print(f"gconv check: {e}", file=sys.stderr)
        return 2
    finally:
        bar.close()
    print(summary)
    return 0 if summary.ok else 1


# ---------------------------------------------------------------------------------------

def build_parser(command=None):
    """The argument parser. The bench's options come from gconv/bench/cli.py, imported only
    when ``command`` (see _command) is "bench", so explain and check never load the bench."""
    parser = argparse.ArgumentParser(
        prog="gconv", description="gconv: fast grouped 2-D convolution for NumPy on the CPU.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    b = sub.add_parser(
        "bench", help="time the bench layers in gconv against torch (onnxruntime, OpenVINO)")
    if command == "bench":
        from .bench.cli import add_arguments
        add_arguments(b)

    e = sub.add_parser("explain", help="what a grouped convolution computes, and how gconv "
                                       "runs it",
                       description="Weight shape, parameters, FLOPs, valid groups, which input "
                                   "channels feed each output channel, and gconv's kernel path.")
    e.add_argument("in_channels", type=positive_int, metavar="IN")
    e.add_argument("out_channels", type=positive_int, metavar="OUT")
    e.add_argument("--groups", "-g", type=positive_int, default=1)
    e.add_argument("--kernel-size", "-k", type=int, nargs="+", metavar="K")
    e.add_argument("--stride", "-s", type=int, nargs="+", metavar="S")
    e.add_argument("--padding", "-p", nargs="+", metavar="P",
                   help="one or two integers, or 'same', 'valid', 'same_upper', 'same_lower'")
    e.add_argument("--dilation", "-d", type=int, nargs="+", metavar="D")
    e.add_argument("--input-size", type=positive_int, nargs=2, metavar=("H", "W"))
    e.add_argument("--plot", metavar="FILE", help="draw the channel connections (PNG or SVG; "
                                                  "needs matplotlib)")
    e.set_defaults(func=cmd_explain)

    c = sub.add_parser("check", help="cross-check random configurations against torch",
                       description="Run random conv2d configurations in gconv and torch and "
                                   "compare; exit status 1 on any mismatch.")
    c.add_argument("--cases", type=positive_int, default=200, metavar="N")
    c.add_argument("--seed", type=int, default=0, metavar="S")
    c.set_defaults(func=cmd_check)
    return parser


def _command(argv):
    """The subcommand argv names: its first argument that is no option (the top level has
    no options but --help), or None."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_command(argv))
    args = parser.parse_args(argv)
    try:
        return args.func(args, parser)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":       # pragma: no cover
    sys.exit(main())
