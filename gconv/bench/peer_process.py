"""Peers with thread pools of their own (peers.POOLED_PEERS: onnxruntime, OpenVINO) run in a
child process each, frozen by the bench while any other library is timed.

Why a process: at more than one thread their pools keep spinning for a while after a run
and take the cores from the OpenMP threads of gconv and torch in the bench's process (and
are slowed by them). Measured at 2 threads: gconv's ResNeXt 14x14 took 261 us with an
onnxruntime session beside it against 179 us alone, even after a 20 ms pause. Turning
onnxruntime's spinning off costs onnxruntime itself 1.6-1.8x, so that would not be a fair
comparison either. A stopped process (SIGSTOP) cannot spin: the peer runs as configured,
and only while its own samples are taken.

The parent talks to the child over its stdin / stdout with pickled messages:

    ("setup", peer, layer, inputs, threads) -> build the peer's runner for a bench layer
    ("call",)                               -> the runner's output, as an ndarray
    ("time", n_calls)                       -> seconds per call of n_calls back-to-back calls
    ("quit",)

and every reply is ("ok", value) or ("error", "TypeName: message"). The child timed its
own calls, so no pipe latency enters a sample. gconv itself can run in a child too (the
tests use it: it needs no peer library).
"""
import contextlib
import os
import pickle
import signal
import subprocess
import sys
import time

import numpy as np

from .machine import threads_stopped
from .peers import make_runner
from .timing import time_sample

# How long a SIGSTOP may take to reach all of a child's threads.
STOP_TIMEOUT_S = 2.0


@contextlib.contextmanager
def peer_processes(peers):
    """{peer: PeerProcess} for each of ``peers``, closed when the block ends."""
    processes = {p: PeerProcess(p) for p in peers}
    try:
        yield processes
    finally:
        for process in processes.values():
            process.close()


class PeerProcess:
    """One child process that runs one peer's runners, one bench layer at a time."""

    def __init__(self, peer):
        self.peer = peer
        self._proc = None
        self._stopped = False

    # -- the child's life --------------------------------------------------------------

    def _start(self):
        # the directory holding this gconv package: the child imports the same build
        package_root = os.path.dirname(os.path.dirname(os.path.dirname(
            os.path.abspath(__file__))))
        code = (f"import sys; sys.path.insert(0, {package_root!r}); "
                "from gconv.bench.peer_process import serve; serve()")
        self._proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE)
        self._stopped = False

    @property
    def pid(self):
        return self._proc.pid if self._proc else None

    def alive(self):
        return self._proc is not None and self._proc.poll() is None

    def close(self):
        """End the child (resumed first: a stopped process would not act on the request)."""
        if self._proc is None:
            return
        try:
            self.resume()
            if self._proc.poll() is None:
                try:
                    pickle.dump(("quit",), self._proc.stdin)
                    self._proc.stdin.flush()
                except OSError:
                    pass
                try:
                    self._proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait()
        finally:
            for stream in (self._proc.stdin, self._proc.stdout):
                try:
                    stream.close()
                except OSError:
                    pass
            self._proc = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # -- freezing ----------------------------------------------------------------------

    def pause(self):
        """Stop the child (SIGSTOP) and wait until all its threads are stopped."""
        if not self.alive() or self._stopped or not hasattr(signal, "SIGSTOP"):
            return
        os.kill(self._proc.pid, signal.SIGSTOP)
        self._stopped = True
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while not threads_stopped(self._proc.pid) and time.monotonic() < deadline:
            time.sleep(0.0005)

    def resume(self):
        if self._stopped and self.alive():
            os.kill(self._proc.pid, signal.SIGCONT)
        self._stopped = False

    # -- requests ----------------------------------------------------------------------

    def request(self, *message):
        """Send one message, return the child's value; its errors raise RuntimeError.
        A "setup" starts a new child if there is none (or it died); any other request to
        a dead child raises: the runner it served is gone with it."""
        if message[0] == "setup" and not self.alive():
            self.close()                     # the dead one's pipes
            self._start()
        if not self.alive():
            raise self._ended(message[0])
        self.resume()
        try:
            pickle.dump(message, self._proc.stdin)
            self._proc.stdin.flush()
            status, value = pickle.load(self._proc.stdout)
        except (OSError, EOFError, pickle.UnpicklingError) as e:
            raise self._ended(message[0]) from e
        if status != "ok":
            raise RuntimeError(value)
        return value

    def _ended(self, kind):
        """The RuntimeError for a child that is gone (or, having broken the protocol, is
        ended here)."""
        code = None
        if self._proc is not None:
            try:
                code = self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                code = self._proc.wait()
        self.close()
        return RuntimeError(f"{self.peer}'s process is not running (exit code {code}) for "
                            f"{kind!r}")

    def runner(self, layer, inputs, threads):
        """A runner of `layer` in the child (replacing the child's previous one)."""
        self.request("setup", self.peer, layer, inputs, threads)
        return RemoteRunner(self)


class RemoteRunner:
    """A bench runner whose calls run in a PeerProcess: calling it returns the output;
    time_sample(n) times n calls in the child; pause() / resume() freeze the child."""

    def __init__(self, process):
        self.process = process

    def __call__(self):
        return self.process.request("call")

    def time_sample(self, n_calls):
        return self.process.request("time", n_calls)

    def pause(self):
        self.process.pause()

    def resume(self):
        self.process.resume()


# -- the child's side ------------------------------------------------------------------

def _die_with_parent():
    """Linux: have the kernel kill this process when the parent dies, so that a child
    stopped by a bench that crashed does not stay behind (SIGKILL also ends a stopped
    process)."""
    try:
        import ctypes
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def serve():
    """The child's loop (see the module docstring)."""
    _die_with_parent()
    # Ctrl-C in the terminal reaches the whole process group: the parent handles it and
    # ends its children (PeerProcess.close), which would otherwise print tracebacks
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # the replies own the original stdout; anything the libraries print goes to stderr
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    requests = sys.stdin.buffer
    run = None
    while True:
        try:
            message = pickle.load(requests)
        except EOFError:
            return
        kind = message[0]
        if kind == "quit":
            return
        try:
            if kind == "setup":
                _, peer, layer, inputs, threads = message
                run = None                   # the previous session goes first
                run = make_runner(peer, layer, inputs, threads)
                value = None
            elif kind not in ("call", "time"):
                raise ValueError(f"unknown request {kind!r}")
            elif run is None:
                raise RuntimeError(f"{kind!r} before a successful 'setup'")
            elif kind == "call":
                value = _as_array(run())
            else:
                value = time_sample(run, message[1])
            reply = ("ok", value)
        except Exception as e:               # reported to the parent, which goes on
            reply = ("error", f"{type(e).__name__}: {e}")
        pickle.dump(reply, replies)
        replies.flush()


def _as_array(output):
    return np.array(output, copy=True)
