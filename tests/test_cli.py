"""The command line (gconv/_cli.py): `python -m gconv bench | explain | check`.

The entry points and the dispatch; explain and check are tested for their wiring with
stand-in back ends (their own tests cover what they compute). ``bench`` is the bench
tooling's: tests/bench/test_bench_cli.py."""
import io
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

import gconv
from gconv import _cli, _console


def _run_gconv(*args):
    """`python -m gconv ARGS` in a fresh interpreter importing this same gconv."""
    root = str(Path(gconv.__file__).resolve().parent.parent)
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "gconv", *args], capture_output=True,
                          text=True, env=env, cwd=os.path.dirname(root) or "/", timeout=120)


# -- the entry points --------------------------------------------------------------------

def test_python_m_gconv_help_lists_the_subcommands():
    r = _run_gconv("--help")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("usage: gconv")
    for command in ("bench", "explain", "check"):
        assert re.search(rf"^\s+{command}\s+\S", r.stdout, re.M), r.stdout


def test_python_m_gconv_without_a_command_is_a_usage_error():
    r = _run_gconv()
    assert r.returncode == 2
    assert "usage: gconv" in r.stderr and "required" in r.stderr


def test_console_script_points_at_main():
    # pyproject declares the `gconv` console script; its target must be this main
    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    match = re.search(r'^gconv\s*=\s*"([\w.]+):(\w+)"', pyproject.read_text(), re.M)
    assert match, "pyproject.toml declares no gconv console script"
    module, func = match.groups()
    assert (module, func) == ("gconv._cli", "main")
    assert callable(_cli.main)


def test_only_the_bench_subcommand_loads_the_bench_tooling():
    code = ("import sys; from gconv import _cli\n"
            "for argv in {argv!r}:\n"
            "    try:\n"
            "        _cli.main(argv)\n"
            "    except SystemExit:\n"
            "        pass\n"
            "print(sorted(m for m in sys.modules if m.startswith('gconv.bench')))")
    root = str(Path(gconv.__file__).resolve().parent.parent)
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))

    def loaded(*argvs):
        # not from the checkout: there `python -c` would import the unbuilt source tree
        r = subprocess.run([sys.executable, "-c", code.format(argv=list(argvs))],
                           capture_output=True, text=True, env=env, timeout=120,
                           cwd=os.path.dirname(root) or "/")
        assert r.returncode == 0, r.stderr
        return r.stdout.strip().splitlines()[-1]      # after the commands' output
    assert loaded(["--help"], ["explain", "16", "4", "-g", "4"], ["explain", "--help"],
                  ["check", "--help"]) == "[]"
    assert "'gconv.bench.cli'" in loaded(["bench", "--help"])


@pytest.mark.parametrize("argv, message", [
    (["explain", "16"], "required"),
    (["explain", "16", "4", "--kernel-size", "1", "2", "3"], "one or two integers"),
    (["check", "--cases", "-1"], "positive integer"),
])
def test_usage_errors_exit_2_and_say_why(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        _cli.main(argv)
    assert e.value.code == 2
    assert message in capsys.readouterr().err


def test_progress_bar_draws_and_clears():
    stream = io.StringIO()
    bar = _console.ProgressBar(4, "bench", stream=stream, enabled=True, width=8)
    bar.update(3, text="dense_3x3")
    assert "\rbench [######..] 3/4 dense_3x3" in stream.getvalue()
    bar.close()
    assert stream.getvalue().endswith("\r")
    quiet = io.StringIO()
    _console.ProgressBar(4, stream=quiet).update(1)      # StringIO is no terminal: no bar
    assert quiet.getvalue() == ""


# -- explain and check: wiring to their back ends -----------------------------------------

@pytest.fixture
def fake_explain(monkeypatch):
    seen = {}

    class Report:
        def __str__(self):
            return "EXPLAINED"

        def plot(self, path):
            seen["plot"] = path

    def explain(in_channels, out_channels, **kwargs):
        seen.update(args=(in_channels, out_channels), kwargs=kwargs)
        return Report()
    monkeypatch.setitem(sys.modules, "gconv._explain",
                        types.SimpleNamespace(explain=explain))
    return seen


def test_explain_passes_its_arguments(fake_explain, capsys):
    assert _cli.main(["explain", "16", "4", "--groups", "4", "--kernel-size", "3",
                      "--padding", "same", "--input-size", "10", "12"]) == 0
    assert capsys.readouterr().out.strip() == "EXPLAINED"
    assert fake_explain["args"] == (16, 4)
    assert fake_explain["kwargs"] == dict(kernel_size=3, groups=4, stride=1, padding="same",
                                          dilation=1, input_size=(10, 12))


def test_explain_pairs_and_defaults(fake_explain, capsys):
    assert _cli.main(["explain", "8", "8", "-k", "3", "5", "-s", "2", "-p", "1", "2",
                      "-d", "2"]) == 0
    assert fake_explain["kwargs"] == dict(kernel_size=(3, 5), groups=1, stride=2,
                                          padding=(1, 2), dilation=2, input_size=None)
    assert "plot" not in fake_explain


def test_explain_plot(fake_explain, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    path = str(tmp_path / "g.png")
    assert _cli.main(["explain", "16", "4", "-g", "4", "--plot", path]) == 0
    assert fake_explain["plot"] == path


def test_explain_reports_a_bad_configuration(monkeypatch, capsys):
    def explain(in_channels, out_channels, **kwargs):
        raise ValueError("in_channels must be divisible by groups")
    monkeypatch.setitem(sys.modules, "gconv._explain", types.SimpleNamespace(explain=explain))
    assert _cli.main(["explain", "16", "4", "--groups", "3"]) == 2
    assert "divisible by groups" in capsys.readouterr().err


@pytest.mark.parametrize("ok, code", [(True, 0), (False, 1)])
def test_check_prints_the_summary_and_exits_by_it(monkeypatch, capsys, ok, code):
    seen = {}

    class Summary:
        def __init__(self):
            self.ok = ok

        def __str__(self):
            return f"SUMMARY ok={self.ok}"

    def run_check(cases, seed, progress):
        seen.update(cases=cases, seed=seed)
        for i in range(cases):
            progress(i + 1, cases)
        return Summary()
    monkeypatch.setitem(sys.modules, "gconv._check", types.SimpleNamespace(run_check=run_check))
    assert _cli.main(["check", "--cases", "5", "--seed", "7"]) == code
    assert capsys.readouterr().out.strip() == f"SUMMARY ok={ok}"
    assert seen == {"cases": 5, "seed": 7}


def test_check_without_torch_says_so(monkeypatch, capsys):
    def run_check(cases, seed, progress):
        raise ImportError("gconv check compares gconv with PyTorch, which is not installed")
    monkeypatch.setitem(sys.modules, "gconv._check", types.SimpleNamespace(run_check=run_check))
    assert _cli.main(["check"]) == 2
    assert "gconv check: gconv check compares gconv with PyTorch" in capsys.readouterr().err

