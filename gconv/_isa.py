"""Which SIMD variant of the kernels runs.

Every kernel is compiled for three instruction sets and the best one the CPU supports is
used; ``GCONV_ISA`` (read at import) or ``set_isa`` can force a lower one, for testing or
to compare. Variants give the same results up to rounding (FMA contraction differs).
"""
from __future__ import annotations

import os
from typing import List, Optional

from . import _kernels

ISA_NAMES = _kernels.ISA_NAMES          # ("generic", "avx2", "avx512"), lowest first
_MAX = _kernels.cpu_max_isa()


def available_isas() -> List[str]:
    """The variants this CPU can run, best first."""
    return [ISA_NAMES[i] for i in range(_MAX, -1, -1)]


def _parse(name):
    if name not in ISA_NAMES:
        raise ValueError(f"unknown ISA {name!r}: expected one of {list(ISA_NAMES)}")
    level = ISA_NAMES.index(name)
    if level > _MAX:
        raise ValueError(f"this CPU cannot run the {name!r} kernels; it supports "
                         f"{available_isas()}")
    return level


_current = _parse(os.environ["GCONV_ISA"]) if os.environ.get("GCONV_ISA") else _MAX


def get_isa() -> str:
    """Name of the variant in use."""
    return ISA_NAMES[_current]


def set_isa(name: Optional[str] = None) -> None:
    """Use variant ``name`` (None: the best this CPU has)."""
    global _current
    _current = _MAX if name is None else _parse(name)
    _kernels.bump_state_epoch()


def isa_level():
    return _current
