"""The library and its bench apart: ``import gconv`` (and a convolution) loads neither the
bench tooling (gconv/bench/) nor any peer library; no core module imports gconv.bench but
the command line's dispatch of ``gconv bench``; gconv's modules import each other without a
cycle."""
import ast
import os
import subprocess
import sys
from pathlib import Path

import gconv

PACKAGE = Path(gconv.__file__).resolve().parent
PEER_LIBRARIES = ("torch", "onnxruntime", "onnx", "openvino")


def test_import_gconv_loads_neither_the_bench_nor_the_peer_libraries():
    code = ("import sys, numpy as np, gconv\n"
            "y = gconv.conv2d(np.ones((1, 2, 4, 4), np.float32), "
            "np.ones((2, 1, 3, 3), np.float32), groups=2)\n"
            "gconv.Conv2d(4, 4, 3, groups=2)(np.ones((1, 4, 5, 5), np.float32))\n"
            f"peers = {PEER_LIBRARIES!r}\n"
            "print(sorted(m for m in sys.modules if m.startswith('gconv.bench') "
            "or m.split('.')[0] in peers))")
    env = dict(os.environ, PYTHONPATH=str(PACKAGE.parent) + os.pathsep
               + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120, cwd=str(PACKAGE.parent))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# -- the import graph, from the sources ------------------------------------------------------

def _modules():
    """{dotted name: path} of gconv's Python modules and compiled extensions (.pyx)."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")) + sorted(PACKAGE.rglob("*.pyx")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _imports(name, path, modules):
    """[(target, top_level)]: the gconv modules that module ``name`` imports, and whether
    the import runs when the module is imported (not inside a function)."""
    is_package = path.name == "__init__.py"
    found = []

    def resolve(base, names):
        for alias in names:
            full = f"{base}.{alias}" if alias != "*" else base
            yield full if full in modules else base

    def visit(node, top_level):
        for child in ast.iter_child_nodes(node):
            inner = top_level and not isinstance(child, (ast.FunctionDef,
                                                         ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend((a.name, top_level) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    package = name.split(".") if is_package else name.split(".")[:-1]
                    base = ".".join(package[:len(package) - child.level + 1])
                    base = f"{base}.{child.module}" if child.module else base
                else:
                    base = child.module
                found.extend((t, top_level)
                             for t in resolve(base, [a.name for a in child.names]))
            visit(child, inner)
    if path.suffix == ".py":
        visit(ast.parse(path.read_text()), True)
    return [(t, top) for t, top in found if t in modules]


def _graph(top_level_only=False):
    modules = _modules()
    return {name: sorted({t for t, top in _imports(name, path, modules)
                          if t != name and (top or not top_level_only)})
            for name, path in modules.items()}


def _cycle(graph):
    """One import cycle of ``graph`` as a list of names, or None."""
    state, stack = {}, []

    def dfs(node):
        state[node] = "open"
        stack.append(node)
        for nxt in graph.get(node, ()):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = dfs(nxt)
                if found:
                    return found
        state[node] = "done"
        stack.pop()
        return None
    for node in graph:
        if node not in state:
            found = dfs(node)
            if found:
                return found
    return None


def test_the_import_graph_is_read_from_the_sources():
    graph = _graph()
    # a few edges every layout has: the facade, the bench's own, the lazy dispatch
    assert "gconv._conv" in graph["gconv"]
    assert "gconv.bench.peers" in graph["gconv.bench.peer_process"]
    assert "gconv._validation" in graph["gconv.bench.layers"]          # from .. import
    assert "gconv.bench.cli" in graph["gconv._cli"]
    assert "gconv.bench.cli" not in _graph(top_level_only=True)["gconv._cli"]
    assert _cycle({"a": ["b"], "b": ["c"], "c": ["a"]}) == ["a", "b", "c", "a"]


# The optional extras a core module imports on demand, inside a function only: a layer
# called on a dask array hands it to gconv.dask; gconv.testing's torch comparison uses the
# adapter. These edges are the designated ways into
# an extra; every other import counts for cycles, also those inside functions.
ON_DEMAND = {("gconv._conv", "gconv.dask"), ("gconv._conv1d", "gconv.dask"),
             ("gconv._cli", "gconv.bench.cli"), ("gconv.testing", "gconv.torch")}


def test_gconv_modules_import_each_other_without_a_cycle():
    graph = {name: [t for t in targets if (name, t) not in ON_DEMAND]
             for name, targets in _graph().items()}
    assert _cycle(graph) is None


def test_the_on_demand_imports_of_extras_run_only_inside_functions():
    modules = _modules()
    top = {(name, t) for name, path in modules.items()
           for t, top_level in _imports(name, path, modules) if top_level}
    assert not ON_DEMAND & top
    assert ON_DEMAND <= {(name, t) for name, targets in _graph().items() for t in targets}
    extras = ("gconv.dask", "gconv.torch", "gconv.bench")
    into_extras = {(name, t) for name, targets in _graph().items() for t in targets
                   if t.startswith(extras) and not name.startswith(extras)}
    assert into_extras == ON_DEMAND


def test_no_core_module_imports_the_bench_but_the_bench_subcommand():
    modules = _modules()
    into_bench = sorted((name, target, top)
                        for name, path in modules.items() if not name.startswith("gconv.bench")
                        for target, top in _imports(name, path, modules)
                        if target.startswith("gconv.bench"))
    # gconv/_cli.py imports the bench's command line inside build_parser, for `gconv bench`
    assert into_bench == [("gconv._cli", "gconv.bench.cli", False)]
