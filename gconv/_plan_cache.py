"""The one cache of call plans.

A CallPlan (gconv/_conv.py) holds everything fixed for one call signature: the checked
problem, the implementation and the compiled kernel's plan. Making one validates the call
and plans the kernel (tens of microseconds); using one costs a dictionary lookup. conv2d and
every Conv2d layer find their plans here, under

    key = (input shape, input dtype, the rest of the signature, layout, algorithm, setting())

where "the rest of the signature" (for a layer: its signature_id) is the weight's shape and
dtype, the bias's, and the
options exactly as given (only exact ints and strings, see _conv.plain_signature: a key
never equates an argument validation would refuse with one it takes), and ``setting()`` is
what else shapes a plan: the ISA variant and the thread state. So a change of ISA or threads
(set_isa, set_num_threads, a threadpoolctl limit, a fork) finds or makes another plan, never
an old one. A layer keeps beside its plans only what depends on its weights: the weights
packed for a plan and the LeanCall of its last signature (gconv/_kernels.pyx).
"""
from . import _isa, _threads

LIMIT = 512      # plans kept; past it the cache starts again (a plan is cheap to remake)

PLANS = {}      # key -> CallPlan; read directly on the hot path (PLANS.get), filled by put
_signature_ids = {}


def signature_id(signature):
    """A small int standing for a layer's signature in its keys (None stays None: not
    cachable). A layer's signature is fixed until its weights change, and hashing the nested
    tuple on every call cost ~0.4 us of a ~2 us call; an int costs nothing. One id per
    distinct layer configuration, kept for the process."""
    if signature is None:
        return None
    return _signature_ids.setdefault(signature, len(_signature_ids))
_omp_max_threads = _threads._omp_max_threads


def setting():
    """The ISA level and the thread state (what get_num_threads() is made of, cheaper than
    computing it): what shapes a plan besides the call. The one place that reads them."""
    return (_isa._current, _threads._n_threads, _omp_max_threads(), _threads._in_forked_child)


def put(key, plan):
    """Keep ``plan`` under ``key`` (None: an uncachable call, not kept); returns it."""
    if key is not None:
        if len(PLANS) >= LIMIT:
            PLANS.clear()
        PLANS[key] = plan
    return plan
