"""What the command line's subcommands share (gconv/_cli.py, and the bench's in
gconv/bench/cli.py): a progress bar, positive-integer arguments, the matplotlib probe."""
import argparse
import importlib.util
import sys


class ProgressBar:
    """A one-line progress bar redrawn in place (on a terminal only, unless forced)."""

    def __init__(self, total, label="", stream=None, enabled=None, width=30):
        self.total, self.label, self.width = max(int(total), 1), label, width
        self.stream = sys.stderr if stream is None else stream
        if enabled is None:
            enabled = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.enabled = enabled
        self._shown = False

    def update(self, done, total=None, text=""):
        if total is not None:
            self.total = max(int(total), 1)
        if not self.enabled:
            return
        frac = min(max(done / self.total, 0.0), 1.0)
        filled = int(round(frac * self.width))
        bar = "#" * filled + "." * (self.width - filled)
        line = f"{self.label} [{bar}] {done}/{self.total} {text}".rstrip()
        self.stream.write("\r" + line[:119].ljust(119))
        self.stream.flush()
        self._shown = True

    def close(self):
        if self.enabled and self._shown:
            self.stream.write("\r" + " " * 119 + "\r")
            self.stream.flush()
            self._shown = False


def positive_int(text):
    """argparse type: a positive integer."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if n <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {n}")
    return n


def have_matplotlib():
    """True when matplotlib can be imported (for --plot)."""
    try:
        return importlib.util.find_spec("matplotlib") is not None
    except (ImportError, ValueError):
        return False
