"""The generator behind initialisation, dropout, shuffling and the toy data sets.

``nn.manual_seed(seed)`` replaces it, so a seeded run repeats exactly.
"""

from __future__ import annotations

import numpy as np

from autograd_core.compile import CompileError, is_tracing
from autograd_core.compile.snapshots import GLOBAL_GENERATORS
from autograd_core.compile.tracer import current

_state = {"generator": np.random.default_rng()}
GLOBAL_GENERATORS["nn.get_generator()"] = lambda: _state["generator"]  # (a compiled function's own draws: refused)
_GENERATORS = (np.random.Generator, np.random.BitGenerator, np.random.RandomState)


def manual_seed(seed):
    """Seed the generator used by ``nn.init``, ``Dropout``, ``DataLoader(shuffle=True)``
    without a seed of its own, and the ``nn.data`` generators without a seed.

    >>> from nn import Linear, manual_seed
    >>> manual_seed(0); a = Linear(2, 2).weight.data.copy()
    >>> manual_seed(0); b = Linear(2, 2).weight.data
    >>> bool((a == b).all())
    True
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"manual_seed: seed must be an int, got {type(seed).__name__}")
    if is_tracing():
        raise CompileError("compile: nn.manual_seed inside a compiled function reseeds at every eager call, a "
                           "replay would not; seed outside it (or give dropout a seed of its own: generator=3)")
    _state["generator"] = np.random.default_rng(int(seed))


def get_generator():
    """The current global ``numpy.random.Generator`` (reseeded by ``manual_seed``).

    >>> manual_seed(3); a = get_generator().normal()
    >>> manual_seed(3); b = get_generator().normal()
    >>> a == b
    True
    """
    trace = current()
    if trace is not None and not trace.inside_host:  # (asked for in a compiled call: see of_each_call)
        trace.asked_for_the_generator = True
    return _state["generator"]


def generator_from(seed):
    """A generator for `seed`: a fresh one for an int, the given one for a
    Generator, the global one for None.

    >>> generator_from(None) is get_generator()
    True
    >>> float(generator_from(7).random()) == float(np.random.default_rng(7).random())
    True
    """
    if seed is None:
        return _state["generator"]
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def of_each_call(generator):
    """`generator` as a function drawing at every call should hold it: None (the global generator
    of that call, which ``manual_seed`` replaces) for the global generator itself, passed as
    ``nn.get_generator()``; any other as it is. While compiling, the global generator the function
    holds is that generator, and one made during the call is refused (eager's starts afresh).

    >>> of_each_call(get_generator()) is None, of_each_call(7)
    (True, 7)
    """
    trace = current()
    if trace is None or trace.inside_host or not isinstance(generator, _GENERATORS):  # (a host function runs
        return None if generator is _state["generator"] else generator  # again at every call, as eager)
    held, asked = trace.path_of(generator) is not None, trace.asked_for_the_generator
    if generator is _state["generator"] and held and asked:
        raise CompileError("compile: the global generator is both held by the function and asked for in it "
                           "(nn.get_generator()): after nn.manual_seed, eager draws from the new one where it "
                           "asks and from the old one where it holds it; a replay cannot tell which. Hold a "
                           "generator of your own, or ask at every call")
    if held:
        return generator  # (a generator the function holds, even the global one: manual_seed since leaves it)
    if generator is not _state["generator"]:  # (np.random.default_rng(3) made in the call: afresh at each)
        raise CompileError("compile: a random generator made during the call starts afresh at every eager call, "
                           "a replay would draw on from the first call's; make it outside the compiled function, "
                           "or pass a seed (generator=3)")
    return None  # (nn.get_generator() called in the function: the global one of each call)
