"""Fuzz test of the argument handling (issue 14): huge and odd integers, float / bool /
NumPy-scalar arguments, tuples of every length, NaN and inf data.

The cases are plain descriptions made by a seeded generator (tests/fuzz_child.py:
``make_cases(seed, n)``, ``make_layer_cases(seed, n)`` and the issue's own reproducers),
so each one is reproducible on its own, in any process, by its id::

    python tests/fuzz_child.py conv:1:37              # run it, and compare it with torch
    python tests/fuzz_child.py --list conv:1 50       # list a seed's cases

They run in child processes, a batch per child, one line of output per call, so that a
call that kills its process or never returns is named, and the batch goes on after it in a
new child. What is asserted, per case:

1. no crash (a signal) and no hang (no answer within GCONV_FUZZ_STEP_TIMEOUT seconds), and
   no call for a small output that takes over GCONV_FUZZ_SLOW (2) seconds or raises the
   process's peak memory by over 1 GB (each child runs with a 4 GB address-space ceiling,
   GCONV_FUZZ_MEMORY_GB, so that a huge allocation fails instead of swamping the machine);
2. every refusal is a ValueError or TypeError; a MemoryError only when the call asks for a
   large output (> 2**26 elements, counted here with torch's formula);
3. the same answer whatever was called before: the child runs its batch twice, the second
   time shuffled and with, before each hostile case, the same call with plain ints
   (stride=1 before stride=True); outputs must be bitwise identical (NaN positions
   included), refusals of the same type;
4. with torch installed: where torch refuses, gconv refuses (ValueError / TypeError); where
   torch computes, gconv computes the same shape and values (torch in float64, the
   activation applied with torch's own functions), NaN in the same places. Not compared
   (fuzz_child.torch_skip_reason): C_in == 0 (gconv refuses it, torch returns an empty
   tensor), gconv's own 'same_upper'/'same_lower' and nested pads, outputs over 2**26
   elements, a forced algorithm= that cannot run the problem. Either answer accepted
   (fuzz_child._quirk_retries, run_torch), because torch's verdict there is a quirk of its
   parser: a bool first in a tuple (torch takes (1, True), refuses (True, 1)); padding=(p,)
   with a padding mode; nn.Conv2d's kernel_size=(k,) and bools as its channels or kernel
   size. Where torch computes only because its int64 sizes wrap (dilation 2**62), gconv
   must refuse. A clamp with min > max is not a difference: torch gives max everywhere.

The same checks run on gconv.Conv2d(...) constructions with the same hostile pools, then a
call, with torch.nn.Conv2d as the oracle (the test_layer_* tests).

CI runs ~300 cases (two children at a time, GCONV_FUZZ_JOBS); GCONV_FUZZ_CASES=5000
runs more, GCONV_FUZZ_SEED=7 others (seeds 7 and 8).
"""
import importlib.util
import json
import os
import pickle
import random
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

import gconv
import fuzz_child as fc

HERE = os.path.dirname(os.path.abspath(__file__))
CHILD = os.path.join(HERE, "fuzz_child.py")
# the directory gconv was imported from: the children must import the same build
GCONV_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(gconv.__file__)))

TOTAL_CASES = int(os.environ.get("GCONV_FUZZ_CASES", "300"))
FIRST_SEED = int(os.environ.get("GCONV_FUZZ_SEED", "1"))
SEEDS = (FIRST_SEED, FIRST_SEED + 1)
STEP_TIMEOUT = float(os.environ.get("GCONV_FUZZ_STEP_TIMEOUT", "5"))
BATCH_BUDGET = float(os.environ.get("GCONV_FUZZ_BATCH_BUDGET", "300"))   # s per batch
JOBS = int(os.environ.get("GCONV_FUZZ_JOBS", "2"))      # children at a time
START_TIMEOUT = 60.0        # a child's start: Python, numpy, gconv, the batch
TORCH_TIMEOUT = 60.0        # the first torch comparison imports torch
SLOW = float(os.environ.get("GCONV_FUZZ_SLOW", "2"))   # seconds: too long for a small call
PEAK_MB = 1024              # and too much memory for one
BATCH = 400                 # cases per child at most (both passes run in the same child)
ALLOWED = ("ValueError", "TypeError")
REPRO = "python tests/fuzz_child.py"


def plan():
    """The cases of this run, in batches: [(name, [case, ...])]."""
    n_layer = max(10, TOTAL_CASES // 5)
    issue = fc.issue_cases()
    n_conv = max(2, TOTAL_CASES - n_layer - len(issue))
    batches = []
    for j, seed in enumerate(SEEDS):
        cases = fc.make_cases(seed, -(-n_conv // len(SEEDS)))
        cases += fc.make_layer_cases(seed, -(-n_layer // len(SEEDS)))
        if j == 0:
            cases = issue + cases
        for start in range(0, len(cases), BATCH):
            batches.append((f"seed {seed}", cases[start:start + BATCH]))
    return batches


def steps_of(cases, seed):
    """Pass 1 in order; pass 2 shuffled, each hostile case after its priming call."""
    steps = [(c, "run", 1) for c in cases]
    order = list(cases)
    random.Random(f"gconv-fuzz-shuffle:{seed}").shuffle(order)
    for c in order:
        p = fc.prime_of(c)
        if p is not None:
            steps.append((p, "prime", 2))
        steps.append((c, "run", 2))
    return steps


def _signal_name(rc):
    try:
        return signal.Signals(-rc).name
    except ValueError:
        return f"signal {-rc}"


def run_child(steps, want_torch):
    """Run steps in one child. Returns (records [(k, kind, payload)], end, stderr):
    end is ('done',), ('hang', (k, phase)) or ('died', returncode, (k, phase) or None)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = GCONV_PARENT + os.pathsep + env.get("PYTHONPATH", "")
    records = []
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([sys.executable, CHILD, "--serve"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=err, env=env, cwd=GCONV_PARENT)
        try:
            proc.stdin.write(pickle.dumps({"steps": steps, "torch": want_torch}))
            proc.stdin.close()
        except BrokenPipeError:
            pass
        try:
            end = _read_child(proc, records)
        finally:
            if proc.poll() is None:       # interrupted: this child only, by its pid
                proc.kill()
                proc.wait()
        proc.stdout.close()
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    return records, end, stderr


def _read_child(proc, records):
    """Collect a child's records until it ends; kill it when a call outlives its timeout."""
    fd, buf = proc.stdout.fileno(), b""
    pending, finished = None, False
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            proc.kill()            # this child only, by its pid
            proc.wait()
            return ("hang", pending)
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            proc.wait()
            return ("done",) if finished and proc.returncode == 0 else \
                ("died", proc.returncode, pending)
        buf += chunk
        *lines, buf = buf.split(b"\n")
        for line in lines:
            parts = line.decode(errors="replace").split(" ", 2)
            if len(parts) != 3 or parts[0] not in ("S", "B", "R", "T", "E"):
                continue              # not ours: something else wrote to stdout
            kind, k, payload = parts[0], int(parts[1]), parts[2]
            now = time.monotonic()
            if kind == "B":
                pending = (k, payload)
                deadline = now + (TORCH_TIMEOUT if payload == "torch" else STEP_TIMEOUT)
            elif kind in ("R", "T"):
                records.append((k, kind, json.loads(payload)))
                pending = None
                deadline = now + STEP_TIMEOUT
            elif kind == "S":
                deadline = now + STEP_TIMEOUT
            elif kind == "E":
                finished = True


def _base_id(case):
    return case["id"][:-len(":prime")] if case["id"].endswith(":prime") else case["id"]


def run_batch(cases, seed, want_torch):
    """Run a batch (both passes) through as many children as its crashes and hangs need.
    Returns {case id: {'case', 'p1', 'p2', 'prime', 'torch'}} and a list of events."""
    steps = steps_of(cases, seed)
    results = {c["id"]: {"case": c} for c in cases}
    events = []
    remaining = list(range(len(steps)))
    dead = set()
    budget = time.monotonic() + BATCH_BUDGET
    while remaining:
        if time.monotonic() > budget:
            events.append({"what": f"batch budget of {BATCH_BUDGET:g} s spent: "
                                   f"{len(remaining)} calls not run", "id": None,
                           "detail": "(too many hangs?)"})
            break
        records, end, stderr = run_child([steps[i] for i in remaining], want_torch)
        done = -1
        for k, kind, payload in records:
            case, mode, pas = steps[remaining[k]]
            slot = "torch" if kind == "T" else ("prime" if mode == "prime" else f"p{pas}")
            results[_base_id(case)][slot] = payload
            if mode == "prime":
                results[_base_id(case)]["prime_case"] = case
            done = max(done, k)
        if end[0] == "done":
            break
        pending = end[-1]
        k, phase = pending if pending is not None else (done + 1, "between calls")
        if k >= len(remaining):
            events.append({"what": "child error", "id": None, "detail": stderr[-3000:]})
            break
        case, mode, pas = steps[remaining[k]]
        if end[0] == "hang":
            what = f"hang (no answer in {STEP_TIMEOUT:g} s)" if phase != "torch" else \
                f"hang in torch (no answer in {TORCH_TIMEOUT:g} s)"
        else:
            rc = end[1]
            what = _signal_name(rc) if rc < 0 else f"exit status {rc}"
            if phase == "torch":
                what += " while torch ran it, after gconv did"
            elif phase == "between calls":
                what += " between calls (in the harness?)"
        events.append({"what": what, "id": _base_id(case), "case": case, "mode": mode,
                       "pass": pas, "phase": phase, "detail": stderr[-2500:]})
        dead.add(_base_id(case))
        remaining = [i for i in remaining[k + 1:]
                     if steps[i][2] == 1 or _base_id(steps[i][0]) not in dead]
    return results, events


@pytest.fixture(scope="module")
def fuzz():
    """Every batch run (JOBS children at a time: the parent only waits on their output)."""
    want_torch = importlib.util.find_spec("torch") is not None
    results, events = {}, []
    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=JOBS) as pool:
        runs = [pool.submit(run_batch, cases, name, want_torch) for name, cases in plan()]
        for run in runs:
            r, e = run.result()
            results.update(r)
            events += e
    return {"results": results, "events": events, "torch": want_torch,
            "seconds": time.monotonic() - t0}


# ---------------------------------------------------------------------------------------
# reporting

def _line(case, problem, reproduce=None):
    rid = _base_id(case)
    return (f"{rid}: {problem}\n      {fc.describe(case)}\n"
            f"      reproduce: {reproduce or f'{REPRO} {rid}'}")


def _report(title, lines, limit=60):
    head = f"{len(lines)} {title}:\n"
    body = "\n".join(f"  - {s}" for s in lines[:limit])
    more = f"\n  ... and {len(lines) - limit} more" if len(lines) > limit else ""
    return head + body + more


def _stderr_summary(stderr):
    """faulthandler's first lines: the error and the innermost Python frames."""
    lines = stderr.strip().splitlines()
    keep = [s for s in lines if s.startswith("Fatal Python error")]
    keep += [s.strip() for s in lines if s.strip().startswith("File ")][:2]
    return ("\n      stderr: " + " | ".join(keep)) if keep else ""


def _select(fuzz, kind):
    return {cid: r for cid, r in fuzz["results"].items() if r["case"]["kind"] == kind}


def _crashes(fuzz, kind):
    lines = []
    for e in fuzz["events"]:
        if e["id"] is None:
            if kind == "conv":        # a child that failed outside any call: reported once
                lines.append(f"{e['what']}\n{e['detail']}")
            continue
        if e["case"]["kind"] != kind:
            continue
        where = "its priming call" if e["mode"] == "prime" else f"pass {e['pass']}"
        lines.append(_line(e["case"], f"{e['what']} during {where}")
                     + _stderr_summary(e["detail"]))
    for cid, r in _select(fuzz, kind).items():
        if "p1" not in r and not any(e["id"] == cid for e in fuzz["events"]):
            lines.append(_line(r["case"], "no result (the harness lost it)"))
        # a call that returns, but takes seconds or gigabytes for a small output, is a
        # hang or a MemoryError that this machine happened to survive
        for slot in ("p1", "p2", "prime"):
            rec = r.get(slot)
            case = r.get("prime_case") if slot == "prime" else r["case"]
            if rec is None or rec["o"] == "refused" and rec["cls"] == "MemoryError":
                continue
            n = fc.requested_elements(case)
            if n is not None and n > fc.LARGE:
                continue
            if rec["seconds"] > SLOW or rec["peak_mb"] > PEAK_MB:
                lines.append(_line(case, f"took {rec['seconds']:.2f} s and raised the peak "
                                         f"memory by {rec['peak_mb']:.0f} MB ({_say(rec)})"))
                break
    return lines


def _wrong_errors(fuzz, kind):
    lines = []
    for cid, r in _select(fuzz, kind).items():
        for slot in ("p1", "p2", "prime"):
            rec = r.get(slot)
            if rec is None or rec["o"] != "refused" or rec["cls"] in ALLOWED:
                continue
            case = r["prime_case"] if slot == "prime" else r["case"]
            n = fc.requested_elements(case)
            if rec["cls"] == "MemoryError" and n is not None and n > fc.LARGE:
                continue
            size = f"asks for {n} elements" if n is not None else "asks for no valid size"
            what = f"{rec['type']} ({size}) at {rec['where']}: {rec['msg'][:160]}"
            if slot == "prime":
                what += " [in the priming call]"
            lines.append(_line(case, what))
            break
    return lines


def _key(rec):
    if rec["o"] == "ok":
        return ("ok", tuple(rec["shape"]), rec["dtype"], rec["digest"])
    return ("refused", rec["type"])


def _say(rec):
    if rec["o"] == "ok":
        return f"output {tuple(rec['shape'])} {rec['dtype']} digest {rec['digest']}"
    return f"{rec['type']}: {rec['msg'][:120]}"


def _history(fuzz, kind):
    lines = []
    for cid, r in _select(fuzz, kind).items():
        if "p1" in r and "p2" in r and _key(r["p1"]) != _key(r["p2"]):
            primed = "prime" in r
            after = ("after the same call with plain ints and the rest of the batch"
                     if primed else "after the rest of the batch, shuffled")
            repro = f"{REPRO} {cid}:prime {cid}" if primed else None
            lines.append(_line(r["case"], f"first run: {_say(r['p1'])}; run again {after}: "
                                          f"{_say(r['p2'])}", repro))
    return lines


def _torch(fuzz, kind):
    lines = []
    for cid, r in _select(fuzz, kind).items():
        t = r.get("torch")
        if t is not None and t["verdict"] == "disagree":
            lines.append(_line(r["case"], t["detail"]))
        elif t is not None and t["torch"] == "error":
            lines.append(_line(r["case"], t["detail"]))
    return lines


# ---------------------------------------------------------------------------------------
# the tests

def test_cases_are_reproducible_descriptions():
    """make_cases gives the same plain, picklable cases every time, and includes the
    issue's reproducers; every case can be described as source and found by its id."""
    same = lambda a, b: pickle.dumps(a) == pickle.dumps(b)  # noqa: E731 (nan != nan)
    a = fc.make_cases(3, 40)
    assert same(a, fc.make_cases(3, 40))
    assert same(a, fc.make_cases(3, 50)[:40])          # case i does not depend on n
    assert pickle.loads(pickle.dumps(a))[7]["id"] == "conv:3:7"
    issue = fc.issue_cases()
    assert fc.describe(issue[0]).startswith(
        "gconv.conv2d(x, w, None, stride=2**63-1, padding=3, dilation=2, groups=2)")
    assert fc.requested_elements(issue[0]) == 1 * 2 * 1 * 1
    for c in a + issue + fc.make_layer_cases(3, 10):
        assert same(fc.case_by_id(c["id"]), c)
        assert fc.describe(c)
    # the priming call of stride=True is stride=1, and a plain case has none
    c = dict(issue[0], args=dict(issue[0]["args"], stride=("b", True)))
    assert fc.prime_of(c)["args"]["stride"] == ("i", 1)
    assert fc.prime_of(issue[0]) is None


def test_fuzz_no_crash_and_no_hang(fuzz):
    lines = _crashes(fuzz, "conv") + _crashes(fuzz, "layer")
    assert not lines, _report("calls killed their process or never returned", lines)


def test_fuzz_refusals_are_value_or_type_errors(fuzz):
    lines = _wrong_errors(fuzz, "conv")
    assert not lines, _report(
        "refusals were not ValueError/TypeError (MemoryError is allowed only for an output "
        "of more than 2**26 elements)", lines)


def test_fuzz_same_answer_whatever_was_called_before(fuzz):
    lines = _history(fuzz, "conv")
    assert not lines, _report("calls answered differently the second time", lines)


def test_fuzz_agrees_with_torch(fuzz):
    pytest.importorskip("torch")
    assert fuzz["torch"]
    lines = _torch(fuzz, "conv")
    assert not lines, _report("calls disagree with torch.nn.functional.conv2d", lines)
    verdicts = Counter(r["torch"]["verdict"] for r in _select(fuzz, "conv").values()
                       if "torch" in r)
    assert verdicts["agree"] >= 0.5 * len(_select(fuzz, "conv")), verdicts


def test_fuzz_cases_mostly_compute(fuzz):
    """The generator's point is real computation with unusual arguments: most random cases
    are valid calls. (A gconv that refused everything would pass the checks above.)"""
    conv = [r for r in _select(fuzz, "conv").values() if not r["case"]["id"].startswith("issue")]
    ok = sum(r.get("p1", {}).get("o") == "ok" for r in conv)
    refused = sum(r.get("p1", {}).get("o") == "refused" for r in conv)
    assert ok >= 0.4 * len(conv), f"only {ok} of {len(conv)} cases computed an output"
    assert refused >= 0.1 * len(conv), f"only {refused} of {len(conv)} cases were refused"
    assert sum("prime" in r for r in conv) >= 0.15 * len(conv)


# -- gconv.Conv2d: construction with the same hostile pools, then a call ----------------

def test_layer_fuzz_no_wrong_errors_and_same_answer_twice(fuzz):
    lines = _wrong_errors(fuzz, "layer") + _history(fuzz, "layer")
    assert not lines, _report("Conv2d constructions or calls raised the wrong error or "
                              "answered differently the second time", lines)


def test_layer_fuzz_accepts_and_refuses_as_torch_nn_conv2d(fuzz):
    pytest.importorskip("torch")
    lines = _torch(fuzz, "layer")
    assert not lines, _report("Conv2d constructions + calls disagree with torch.nn.Conv2d",
                              lines)
    layer = _select(fuzz, "layer")
    compared = sum(r.get("torch", {}).get("verdict") == "agree" for r in layer.values())
    assert compared >= 0.5 * len(layer), f"only {compared} of {len(layer)} compared"
