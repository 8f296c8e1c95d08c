"""Programs reused across traces of the same shape: a speed device for the first call.

A new model of layers already compiled (a notebook cell run again, a sweep
over learning rates, a test making a fresh network) traces to the same
program: the same forward lines, the same operations on arrays of the same
shapes. The backward lines, the check of every line against the engine and
the buffer plan depend on nothing else, so they are made once and kept here,
keyed by what the new trace wrote:

* the forward lines as the writer wrote them (every name, constant and call),
  the arguments' signature and the parameters' names;
* every operation object, with the shape, dtype and ``requires_grad`` of
  each input, of its result and of what it kept for its rules;
* the names of the program's namespace, with what kind of object each holds
  (a function by its code, an array by its shape and dtype).

A hit binds the new trace's own objects (its parameters, host functions and
constants, all found by name in what the writer made of the new trace) into
the kept program, then runs its backward once on the traced call's arrays and
compares the gradients, bit for bit, with the engine's own backward pass on
the new graph (its forward lines are the ones just written). A mismatch is a
miss: the program is built from the start, as if nothing were kept. What it saves: the backward
writing, the line checks and the plan, about half of the first call of the
tiny MLP (see benchmarks/README.md).
"""

from __future__ import annotations

import functools
import threading
import types
from collections import OrderedDict

import numpy as np

from .library import _is_library_function

__all__ = ["Kept", "structure_of", "recall", "remember", "forget", "counts", "LIMIT"]

LIMIT = 64  # programs kept per process (the least recently used goes first)
_kept = OrderedDict()
_lock = threading.Lock()
counts = {"reused": 0, "rejected": 0}  # traces that took a kept program; kept programs the check turned down


class Kept:
    """What a program keeps for another trace of its shape: its texts, its plan,
    and the namespace entries its backward lines added (the engine's functions).

    >>> import numpy as np, autograd_core as ag
    >>> forget(); w = ag.Value(np.ones(2), label="w")
    >>> _ = ag.compile(lambda x: (x * w).sum())(np.ones(2))
    >>> kept = next(iter(_kept.values())); kept.grad_names, kept.saved_names
    (['dw'], ['x'])
    """

    __slots__ = ("source", "runs", "buffers", "reuses_forward", "saved_names", "grad_positions", "grad_names",
                 "seed_name", "backward_namespace", "backward_source_namespace")


def _library_object(obj):
    """What a backward line may name in a kept program: the library's functions, NumPy's, modules,
    classes (never the caller's numbers, arrays or functions, which a later trace may see changed)."""
    if isinstance(obj, (types.ModuleType, type, np.ufunc, types.BuiltinFunctionType)):
        return True
    if isinstance(obj, (types.FunctionType, functools.partial)):
        fn = obj.func if isinstance(obj, functools.partial) else obj
        return isinstance(fn, types.FunctionType) and _is_library_function(fn) and all(
            _library_object(arg) or type(arg) in (int, float, bool, str, type(None), tuple)
            for arg in (obj.args + tuple(obj.keywords.values()) if isinstance(obj, functools.partial) else ()))
    return False


def _kind(obj):
    """What a namespace entry is, as far as the backward lines depend on it."""
    if isinstance(obj, np.ndarray):
        return (type(obj), obj.shape, obj.dtype.str)
    if isinstance(obj, types.FunctionType):
        return (types.FunctionType, obj.__code__)
    if isinstance(obj, (types.BuiltinFunctionType, types.ModuleType, type, np.ufunc)):
        return obj
    return type(obj)


def _data_facts(data):
    if type(data) is np.ndarray:  # (the common case first; another layout plans and sums otherwise)
        return data.shape, data.dtype, data.strides
    return type(data), np.shape(data), getattr(data, "dtype", None), getattr(data, "strides", None)


def _op_facts(op):
    """An operation as its backward lines depend on it: the object, by number (a kept program does
    not keep a model's own operations alive; its functions, held here, cannot be another's), its
    forward and its rules (a rule replaced on the same object makes another program), and how
    they are written."""
    rules = (op.grads.rule,) if op.variadic else tuple(op.grads)
    return (id(op), op.forward, rules, op.elementwise, tuple(op.saves), tuple(sorted(op.as_numpy.items())))


def structure_of(call_key, build, nodes):
    """The key of a trace's program, from its forward lines and its operations' shapes.

    >>> import numpy as np, autograd_core as ag
    >>> forget(); w = ag.Value(np.ones(2), label="w")
    >>> _ = ag.compile(lambda x: (x * w).sum())(np.ones(2))
    >>> key = next(iter(_kept)); key[0], key[1]          # the arguments' signature, the parameters' names
    ((((2,), '<f8'),), ('x', 'w'))
    """
    lines = tuple((line.targets, line.expression, line.exact, line.comment, line.keep) for line in build.forward)
    leaves = tuple((name, _data_facts(v._data), v.requires_grad) for name, v in build.leaves)
    operations = []
    facts = {}
    for node in nodes:
        op = node._op
        op_facts = facts.get(id(op))
        if op_facts is None:
            op_facts = facts[id(op)] = _op_facts(op)
        inputs = tuple((_data_facts(inp._data), inp.requires_grad) for inp in node._inputs)
        kept = tuple((k, _data_facts(a)) for k, a in (node._saved or {}).items())
        operations.append((op_facts, inputs, _data_facts(node._data), kept))
    namespace = tuple((name, _kind(obj)) for name, obj in build.namespace.items())
    grad_leaves = tuple(target if type(target) is tuple else "leaf" for target, _ in build.grad_leaves)
    return (call_key, tuple(build.params), tuple(build.arg_slots), leaves, lines, tuple(operations), namespace,
            tuple(build.extra_names), grad_leaves)


def recall(key):
    """The kept program of this shape, or None.

    >>> recall(("a shape", "never traced")) is None
    True
    """
    with _lock:
        kept = _kept.get(key)
        if kept is not None:
            _kept.move_to_end(key)
        return kept


def remember(key, program, build, forward_names, grad_positions):
    """Keep `program` for later traces of `key`'s shape; not when its backward lines name
    anything but the library's functions, modules and classes (an array, a Value, a number or
    function a rule reads from the caller's globals: this trace's own, which a later one may see changed).

    >>> import numpy as np, autograd_core as ag
    >>> def new_model():
    ...     w = ag.Value(np.ones(2))
    ...     return ag.compile(lambda x: (x * w).sum())
    >>> forget(); _ = new_model()(np.ones(2))          # built, and kept
    >>> before = counts["reused"]
    >>> _ = new_model()(np.ones(2))                     # another model of that shape: reused
    >>> len(_kept), counts["reused"] - before
    (1, 1)
    """
    added = {k: v for k, v in program.namespace.items() if k not in forward_names}
    added_source = {k: v for k, v in build.namespace.items() if k not in forward_names}
    if not all(map(_library_object, (*added.values(), *added_source.values()))):
        return  # (an array, or a number or function a rule reads from the caller's globals: this trace's own)
    kept = Kept()
    kept.source, kept.runs = program.source, program.runs
    kept.buffers, kept.reuses_forward = program.buffers, program.reuses_forward
    kept.saved_names = program.saved_names
    kept.grad_positions = grad_positions
    kept.grad_names = [name for _, name in build.grad_leaves]
    kept.seed_name = build.seed_name
    kept.backward_namespace = added
    kept.backward_source_namespace = added_source
    with _lock:
        _kept[key] = kept
        _kept.move_to_end(key)
        while len(_kept) > LIMIT:
            _kept.popitem(last=False)


def forget():
    """Drop every kept program (a trace then builds its program from the start).

    >>> forget(); recall(("a shape", "never traced")) is None
    True
    """
    with _lock:
        _kept.clear()
