"""What the bench reads of the machine (gconv/bench/machine.py): the CPU model, the FMA
peak probe (gconv/bench/_fma_peak.pyx), a process's CPU time."""
import os

import pytest

import gconv
from gconv import _isa
from gconv.bench import _fma_peak, machine


def test_cpu_model_names_the_cpuid_family_and_model_of_the_first_cpu(tmp_path):
    # a hypervisor may show only "AMD EPYC"; family and model tell Zen 4 from Zen 5
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\n"
                       "model\t\t: 17\nmodel name\t: AMD EPYC\n\n"
                       "processor\t: 1\ncpu family\t: 26\nmodel\t\t: 2\nmodel name\t: Other\n")
    assert machine.cpu_model(str(cpuinfo)) == "AMD EPYC (CPUID family 25, model 17)"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Some CPU\n")
    assert machine.cpu_model(str(cpuinfo)) == "Some CPU"
    assert machine.cpu_model(str(tmp_path / "missing")) != ""


def test_process_cpu_seconds():
    t = os.times()
    assert machine.process_cpu_seconds(os.getpid()) == pytest.approx(t.user + t.system, abs=0.05)
    assert machine.process_cpu_seconds(2 ** 22 + 12345) is None     # above pid_max: no such pid


def test_fma_peak_probe_is_the_bench_s_own_extension():
    # the probe left the kernel module (gconv._kernels computes only)
    from gconv import _kernels
    assert not hasattr(_kernels, "fma_peak_gflops")
    assert _fma_peak.fma_peak_gflops(0, 1000) == 0.0              # no loop for 'generic'
    level = _isa.ISA_NAMES.index(gconv.get_isa())
    if level == 0:
        pytest.skip("the generic ISA has no FMA loop")
    # some GFLOP/s, and below what 8 FMA ports at 10 GHz could retire
    assert 1.0 < _fma_peak.fma_peak_gflops(level, 200_000) < 8 * 32 * 10
    assert 1.0 < machine.measure_fma_peak(500_000) < 8 * 32 * 10


def test_measure_fma_peak_is_zero_on_the_generic_isa(monkeypatch):
    monkeypatch.setattr(gconv, "get_isa", lambda: "generic")
    assert machine.measure_fma_peak(1_000_000) == 0.0


def test_machine_info_names_the_timed_peers(monkeypatch):
    monkeypatch.setattr(machine.peers, "peer_version", lambda name: f"{name}-9")
    info = machine.machine_info(["torch"], 100_000)
    assert info["peers"] == {"torch": "torch-9"}
    assert info["isa"] == gconv.get_isa() and info["gconv"] == gconv.__version__
    assert (info["fma_peak_gflops_per_core"] is None) == (gconv.get_isa() == "generic")
