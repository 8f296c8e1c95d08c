"""Compile a training step: trace it once with the eager engine, replay it as flat NumPy.

>>> import numpy as np, autograd_core as ag
>>> w = ag.Value(np.array([1.0, -2.0]), label="w")
>>> step = ag.compile(lambda x: (ag.tanh(x * w) ** 2).sum())
>>> loss = step(np.array([0.5, 0.25]))      # the first call traces (runs eagerly, records)
>>> loss.backward(); g_first = w.grad.copy(); w.grad = None
>>> loss = step(np.array([0.5, 0.25]))      # later calls replay the recorded program
>>> loss.backward(); bool(np.array_equal(w.grad, g_first)), step.cache_info().traces
(True, 1)

The rooms, in reading order:

* ``tracer.py``: the first call runs eagerly while the tracer watches what the
  graph does not show (host arrays, effects) and refuses reads of traced data
  that would freeze the first call's numbers into the program.
* ``arguments.py``: the float array arguments, arrays in eager and Values
  while tracing: where eager's result depends on which, refused (or run both
  ways and refused where the two differ).
* ``inner_calls.py``: the engine's backward and NumPy's generators called by
  the traced code itself (a gradient penalty's masks checked, first-order
  gradients and unseeded generators refused).
* ``library.py``: which code and objects are the library's (not walked; its
  operations written from their declared NumPy forms).
* ``bytecode.py``: what a function's code reads (the names it loads, the
  strings it holds).
* ``sources.py``: what the function can reach before it runs (closure,
  globals, defaults, modules, plain objects), each with the path it is
  reached by.
* ``snapshots.py``: what a replay compares of what the walk reached (numbers
  by type and bits, sets whole, a dict's keys, the names of an object's
  attributes the code may read), and what a random generator draws next.
* ``guards.py``: everything the trace read of that (modules, parameters,
  buffers, train/eval modes, numbers), compiled into one check run before
  every replay.
* ``program.py``: a line is a record (targets, reads, expression); its text
  is made from the engine's own functions (a lambda's body, or a call).
* ``writer.py``: the forward lines in the order the call made them; the
  backward lines written by the engine's backward loop through its
  ``on_node`` hook; every line checked against the engine's bits.
* ``planner.py``: buffers written with ``out=``, planned in one pass.
* ``reuse.py``: a program kept for another trace of the same shape.
* ``result.py``: what a call returns: its backward, the Values it watches.
* ``runtime.py``: the compiled function, its cache and threads.
"""

from .runtime import Compiled, CompiledResult
from .tracer import CompileError, effect, host_array, is_tracing

__all__ = ["compile", "host_array", "effect", "Compiled", "CompiledResult", "CompileError", "is_tracing"]


def compile(fn):  # noqa: A001 (the name the course uses: ag.compile)
    """Compile `fn` (arrays in, a one-element Value out) into a step that
    traces once per argument signature and then replays flat NumPy.

    >>> import numpy as np, autograd_core as ag
    >>> w = ag.Value(np.array([0.5]), label="w")
    >>> step = ag.compile(lambda x: ((x * w) ** 2).sum())
    >>> float(step(np.array([2.0])).data), float(step(np.array([4.0])).data)
    (1.0, 4.0)
    """
    return Compiled(fn)


# `autograd_core.compile` is this function once the package is imported; these
# keep the package's names reachable through it (ag.compile.host_array).
compile.host_array = host_array
compile.effect = effect
compile.CompileError = CompileError
compile.is_tracing = is_tracing
