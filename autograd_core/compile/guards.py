"""Guards: every Python-visible fact a compiled trace read outside its arguments,
recorded with the path it was read through and checked before each replay.

A trace run once with the eager engine depends on more than its arguments: the
modules it reached and their train/eval modes, each parameter's identity,
shape, dtype and ``requires_grad``, buffers, and the Python numbers it read
(``beta`` in a closure, ``self.eps``, ``cfg.lr``). Replaying the recorded
program after one of them changed would silently compute with the old value.
As torch.compile's guards do, this module records each such fact with its
*source*, the access path from the function's roots (``self.model.fc.weight``,
``beta``, ``arg0.bn.running_mean``), and checks them all on each call:

1. `Sources.walk(fn, args)` (``sources.py``) walks, without recursion and once per object,
   everything the function can reach before it runs: its closure cells, the
   globals its code names, its defaults, a bound method's object, modules
   passed as arguments, and from there modules, plain objects, dicts, lists
   and helper functions.
2. `Guards.build(sources, used)` turns what the trace used (parameters,
   buffers, constants) and what the code can read (modules' modes, numbers
   named in the code reached) into guards, and compiles them into one
   generated Python function that reads each path with direct ``__dict__``
   and item access and stops at the first fact that changed.
3. `Guards.check(fn, args)` runs it: ``None`` when the trace still holds,
   else a short phrase naming the first change (``"beta changed (0.5 -> 0.7)"``).

>>> import numpy as np
>>> from autograd_core import Value
>>> w = Value(np.ones(3), label="w")
>>> beta = 0.5
>>> def loss(x):
...     return (x * w * beta).sum()
>>> guards = Guards.build(Sources.walk(loss, (np.ones(3),)), used=[w])
>>> guards.check(loss, (np.ones(3),)) is None
True
>>> beta = 0.7
>>> guards.check(loss, (np.ones(3),))
'beta changed (0.5 -> 0.7)'

The generated check holds strong references to the objects it compares by
identity (``is``), so an id is never reused while the guards live.

This module imports only ``sources.py`` from ``autograd_core.compile``: the tracer and the runtime use it.
"""

from __future__ import annotations

import builtins
import functools
import inspect
import keyword
import types
from collections import OrderedDict, deque
from collections.abc import MutableSequence

import numpy as np

from ..engine import Value
from .bytecode import _names_of
from .snapshots import Names, _module_counts, _same_scalar, changed_names, class_size, keys_of
from .sources import (SMALL_ARRAY, _FIXED_ATTRIBUTES, Sources, _brief, _describe_object, _is_library_class, _slot_value,
                      array_digest)

__all__ = ["Sources", "Guards"]


@functools.lru_cache(maxsize=256)  # (the text names objects by number: a new model of the same layers, the same text)
def _guard_code(source):
    return builtins.compile(source, "<autograd_core guards>", "exec")


class _Guard:
    __slots__ = ("node", "kind", "expected")

    def __init__(self, node, kind, expected):
        self.node = node
        # "root", "same", "class", "label", "absent", "module", "value", "requires_grad", "array", "contents", "scalar", "length", "keys",
        # "size", "missing"
        self.kind = kind
        self.expected = expected


class _Unreadable(Exception):
    def __init__(self, node, error):
        super().__init__(node.label())
        self.node = node
        self.error = error


def _error_text(error):
    if isinstance(error, KeyError) and error.args:
        text = _brief(error.args[0])
    else:
        text = str(error)
        text = text if len(text) <= 80 else text[:77] + "..."
    return f"{type(error).__name__}: {text}"


def _dict_get(d, key, _missing=object()):
    """``d[key]`` for a dict subclass without running its ``__missing__`` (no defaultdict insertions)."""
    value = dict.get(d, key, _missing)
    if value is _missing:
        raise KeyError(key)
    return value


# ---- an effect's own state -------------------------------------------------------------
# An effect (batch norm counting its batches, a user's logger) changes state of its own at every
# call, and a replay calls it again: what it changed is neither guarded nor refused. What the
# traced call's *other* code changed of that state (a momentum annealed in the forward) is: the
# tracer takes the state of each effect's owners before and after the effect runs.
_SIZE = ("size",)  # (a key of its own: a list's length, a dict's keys)
_MISSING = object()
# what an effect may change of its own and a replay change again: numbers, sizes, an array's contents; an
# object it replaces (an array or module the program reads or calls) would stay the traced call's in a replay
_STATE_KINDS = frozenset({"scalar", "length", "keys", "contents", "size", "missing", "label"})


def is_own(fn):
    """A function of this project's (nn's one-hot rows, a dropout mask): its array's shape is its
    inputs', and its module's globals hold no state of a call's.

    >>> import nn.functional as F
    >>> is_own(F.dropout), is_own(np.exp)
    (True, False)
    """
    return (getattr(fn, "__module__", None) or "").partition(".")[0] in ("autograd_core", "nn", "optim")


def objects_held(fn, with_globals=False):
    """What the function `fn` holds in its closure and defaults (with `with_globals`, and in the
    globals its code names, unless it is this project's), and what the functions it holds do, each
    function once: the state a host function or an effect may read or update.

    >>> def make(scale):
    ...     def helper(x, factor=3.0):
    ...         return x * scale * factor
    ...     return lambda x: helper(x)
    >>> objects_held(make([2.0]))
    [[2.0], 3.0]
    """
    functions, seen, held = [fn], set(), []
    while functions:
        fn = functions.pop()
        if not isinstance(fn, types.FunctionType) or id(fn) in seen:
            continue
        seen.add(id(fn))
        objects = [c.cell_contents for c in fn.__closure__ or () if filled(c)] + list(fn.__defaults__ or ())
        if with_globals and not is_own(fn):  # (stats["n"] += 1)
            objects += [fn.__globals__[n] for n in fn.__code__.co_names if n in fn.__globals__]
        for obj in objects:
            (functions if isinstance(obj, types.FunctionType) else held).append(obj)
            if isinstance(obj, (types.BuiltinMethodType, types.MethodWrapperType)) and not isinstance(
                    getattr(obj, "__self__", None), types.ModuleType):
                held.append(obj.__self__)  # (log = history.append: its list)
    return held


def effect_owners(fn, inputs=(), deep=True):
    """The objects a host function or an effect may update: a method's object (a BatchNorm counting
    its batches, `hist.append`'s list), a callable object itself, the dicts, lists and objects it
    holds or names in its globals (`lambda: m.seen.append(1)`, `stats["n"] += 1`), and the arrays it
    holds (batch norm's running statistics): see `objects_held`.

    >>> seen = []
    >>> effect_owners(seen.append) == [seen]
    True
    """
    owners = []
    if not isinstance(fn, (types.FunctionType, types.MethodType, types.BuiltinMethodType)) and callable(fn):
        owners.append(fn)  # (a callable object, a meter: its state, and its __call__'s code)
        fn = getattr(type(fn), "__call__", None)
    elif isinstance(fn, (types.MethodType, types.BuiltinMethodType)) and not isinstance(
            getattr(fn, "__self__", None), types.ModuleType):
        owners.append(fn.__self__)
        fn = getattr(fn, "__func__", None)
    held = objects_held(fn, with_globals=True)
    owners += [obj for obj in held if isinstance(obj, (dict, list, set, np.ndarray, MutableSequence)) or (
        not isinstance(obj, (Value, types.ModuleType, type)) and hasattr(obj, "__dict__"))]
    code = getattr(fn, "__code__", None)  # (code that writes Values' data, an EMA's t.data *= d: their arrays too)
    values = code is not None and not {"data", "_data"}.isdisjoint(_names_of(code))
    owners += [x._data for x in held if values and isinstance(x, Value) and isinstance(x._data, np.ndarray)]
    owners += [data for data in (x._data if isinstance(x, Value) else x for x in inputs) if isinstance(
        data, np.ndarray) and not any(data is owner for owner in owners)]  # (what it writes into its inputs)
    return (owners + _containers_in(owners, values)) if deep else owners  # (not deep: this project's own)


def _containers_in(owners, values):
    """The dicts, lists and sets the owners hold, and, with `values`, the arrays of the Values they hold,
    some levels down: a meter's ``self.hist["loss"].append(v)`` updates a list its object holds in a dict,
    an EMA's ``t.data *= d`` a teacher's parameter."""
    depth, limit = (12, 4096) if values else (6, 256)
    seen, found, level = {id(o) for o in owners}, [], owners
    for _ in range(depth):
        inner = []
        for owner in level:
            if isinstance(owner, Value):
                items = (owner._data,) if values else ()
            elif isinstance(owner, (dict, list, set, tuple)):
                items = owner.values() if isinstance(owner, dict) else owner
            else:
                items = vars(owner).values() if hasattr(owner, "__dict__") and not isinstance(
                    owner, (np.ndarray, type, types.ModuleType, types.FunctionType)) else ()
            inner += [v for v in items if id(v) not in seen and not seen.add(id(v)) and (
                type(v) in (dict, list, set, tuple, np.ndarray) or isinstance(v, Value) or (
                    hasattr(v, "__dict__") and not isinstance(v, (type, types.ModuleType, types.FunctionType))))]
        found += [v for v in inner if type(v) in (dict, list, set, np.ndarray)][:limit - len(found)]
        level = inner[:limit]
    return found


def modes_of(sources):
    """(object, its train/eval mode or requires_grad) of each module and Value the walk reached: a call that
    switches one (model.train() at its start) is guarded on the mode it found, and replays switch it too."""
    return [(node.obj, mode_of(node.obj)) for node in sources._nodes if node.category in ("module", "value")]


def mode_of(obj):
    return obj.requires_grad if isinstance(obj, Value) else obj.__dict__.get("training")


def set_modes(modes):
    for obj, mode in modes:
        if isinstance(obj, Value):
            obj.requires_grad = mode
        else:
            obj.__dict__["training"] = mode


def _with_bases(used):
    """The ids of what the program reads (`used`: id -> object), and of the arrays its arrays are views of."""
    ids = set(used)
    for obj in used.values():
        while isinstance(obj, np.ndarray) and obj.base is not None:
            obj = obj.base
            ids.add(id(obj))
    return ids


def filled_caches(sources):
    """(object, name) of each ``functools.cached_property`` the call filled on an object reached (a
    causal mask): eager computes it once too, and the next call, which finds it, traces again."""
    found = []
    for node in sources._nodes:
        names = node.snapshot[0] if node.category == "module" else node.snapshot
        if type(names) is Names and isinstance(getattr(node.obj, "__dict__", None), dict):
            found += [(node.obj, name) for name in node.obj.__dict__.keys() - names.held if isinstance(
                inspect.getattr_static(type(node.obj), name, None), functools.cached_property)]
    return found


def filled(cell):
    try:
        cell.cell_contents
    except ValueError:
        return False
    return True


def state_of(obj):
    """{key: (object, what it holds: see _contents)} of what `obj` holds (a module's parameters and
    buffers by their names), and (None, its size) under ``_SIZE`` (an array's: its bytes)."""
    if isinstance(obj, np.ndarray):
        return {_SIZE: (None, array_digest(obj))}
    if isinstance(obj, dict):
        entries, size = list(dict.items(obj)), tuple(dict.keys(obj))
    elif isinstance(obj, list):
        entries, size = list(enumerate(list.__iter__(obj))), list.__len__(obj)
    elif isinstance(obj, set):
        entries, size = [], frozenset(obj)
    elif not hasattr(obj, "__dict__"):  # (a deque, an array.array: what it holds, by position)
        entries, size = (list(enumerate(obj)), len(obj)) if hasattr(obj, "__len__") else ([], None)
    else:
        d = obj.__dict__
        entries, size = list(d.items()), len(d)
        for registry in ("_parameters", "_buffers", "_modules"):
            if isinstance(d.get(registry), dict):
                entries += d[registry].items()
    state = {key: (value, _contents(value)) for key, value in entries}
    state[_SIZE] = (None, size)  # (compared by value, as the contents of an entry are)
    return state


def _contents(value):
    """What an entry holds beside its identity: an array's bytes, a list's length, a dict's keys."""
    if isinstance(value, np.ndarray):
        return array_digest(value)
    if isinstance(value, list):
        return list.__len__(value)
    if isinstance(value, dict):
        return tuple(dict.keys(value))
    return None


def _differences(owner_id, before, after):
    keys = set(before) | set(after)
    return {(owner_id, key) for key in keys
            if before.get(key, _MISSING) is _MISSING or after.get(key, _MISSING) is _MISSING
            or before[key][0] is not after[key][0] or before[key][1] != after[key][1]}


class EffectChanges:
    """What the traced call's effects changed of their owners' state, and what else changed it.

    `effects`: (owners, their states before, their states after) of each effect, in order; `now`:
    a function giving an owner's state after the call."""

    def __init__(self, effects, now=state_of):
        self.by_effects, self.elsewhere, self.first = set(), set(), {}
        self.placed = {}  # id -> an object an effect put into its owner's state (self.center = a new array)
        self.written = {}  # id -> an array an effect wrote into (in place, or its owner's entry)
        last = {}  # id(owner) -> its state after the last effect that updated it
        for owners, before, after in effects:
            for owner, b, a in zip(owners, before, after):
                key = id(owner)
                if key in last:  # (changed between two effects: by the call's own code)
                    self.elsewhere |= _differences(key, last[key][1], b)
                else:
                    self.first.update(((key, k), v) for k, v in b.items())
                changed = _differences(key, b, a)
                self.by_effects |= changed
                self.placed.update((id(a[k][0]), a[k][0]) for _, k in changed if a.get(k, (None,))[0] is not None
                                   and b.get(k, (None,))[0] is not a[k][0])  # (not one written in place)
                arrays = [owner] if isinstance(owner, np.ndarray) and changed else [
                    a[k][0] for _, k in changed if isinstance(a.get(k, (None,))[0], np.ndarray)]
                self.written.update((id(array), array) for array in arrays)
                last[key] = (owner, a)
        for key, (owner, a) in last.items():  # (and after the last)
            self.elsewhere |= _differences(key, a, now(owner))

    def _key(self, node, kind):
        holder = _holder(node) if node.parent is not None else None
        held = (id(holder.obj), node.key) if holder is not None else None
        if kind in ("length", "keys", "contents") and (id(node.obj), _SIZE) in self.first and (
                held not in self.by_effects):  # (a list, an array the host function holds itself; not one
            return id(node.obj), _SIZE  # its owner's entry an effect replaced: self.running_mean = ...)
        return held

    def explains_contents(self, array, snapshot):
        """Whether the host functions and effects alone wrote into `array` (one they hold), which held
        `snapshot` when the walk saw it."""
        key = (id(array), _SIZE)
        return key in self.by_effects and key not in self.elsewhere and self.first[key][1] == snapshot

    def explains(self, node, kind, before_holds):
        """Whether the effects alone changed `node` (under a guard of `kind`): changed by an effect,
        by nothing else, and found unchanged before the first effect (`before_holds(value, bytes)`,
        what it was then)."""
        key = self._key(node, kind)
        if key is None or key not in self.by_effects or key in self.elsewhere:
            return False
        value, data = self.first.get(key, (_MISSING, None))
        return value is not _MISSING and before_holds(value, data)


def _holder(node):
    """The object holding `node` (through a module's parameter or buffer registry: the module)."""
    parent = node.parent
    return parent.parent if parent.category == "registry" else parent


_ONE_TEST = {  # the guards tested by one condition on the expected value N{k}
    "label": "{v}.label != N{k}", "class": "type({v}) is not N{k}", "requires_grad": "{v}.requires_grad is not N{k}",
    "length": "len({v}) != N{k}", "scalar": "({v} is not N{k} and not SAME({v}, N{k}))"}


def _true_count(array):
    """How many True a boolean array holds (None for another dtype)."""
    return int(np.count_nonzero(array)) if array.dtype == bool else None


def _sequence_get(sequence, index):
    """``sequence[index]`` of a list, tuple or deque subclass as stored, without its own ``__getitem__``."""
    return (list if isinstance(sequence, list) else tuple if isinstance(sequence, tuple) else deque).__getitem__(
        sequence, index)


def _own_guards(node, sources, used_ids, module_reached):
    """The guards of one reached object: what about it a replay must find unchanged."""
    category, obj = node.category, node.obj
    own = []
    if node is sources._root_guard:
        own.append(_Guard(node, "root", obj))
    if category == "module":
        if node.primary is None:
            children = obj.__dict__.get("_modules")
            names = tuple(children) if isinstance(children, dict) and children else None
            own.append(_Guard(node, "module", (obj, obj.__dict__.get("training"), names,
                                               node is not sources._root_guard, node.snapshot, type(obj))))
        else:
            own.append(_Guard(node, "same", obj))
    elif category == "value":
        if node.primary is None and id(obj) in used_ids:
            own.append(_Guard(node, "value", (obj, obj.requires_grad, obj._data.shape, obj._data.dtype, obj._data.strides)))
        elif node.primary is not None and id(obj) in used_ids:
            own.append(_Guard(node, "same", obj))
        else:
            if node.primary is None and id(obj) in module_reached:
                own.append(_Guard(node, "requires_grad", obj.requires_grad))
            if node.readable and node.parent is not None and node.parent.category != "registry":
                own.append(_Guard(node, "same", obj))  # not read by the program (self.last = out): the same one
    elif category == "array":
        small = node.primary is None and node.snapshot is not None and obj.size <= SMALL_ARRAY
        held_by_library = node.in_module and _is_library_class(type(_holder(node).obj))
        library_buffer = held_by_library and node.parent.category == "registry"  # (running statistics, a count)
        if id(obj) in used_ids:
            kind = "array" if node.primary is None else "same"
            own.append(_Guard(node, kind, (obj, obj.shape, obj.dtype, obj.strides, _true_count(obj))
                              if kind == "array" else obj))
            # the code may also have read its numbers in Python (c.sum(), float(c): frozen in the program); a
            # library module's arrays are read by its operations, but for a number given as a 0-d array
            # (Dropout(np.array(0.5)): its 1 / (1 - p) is taken once)
            if small and node.readable and not library_buffer and (not held_by_library or obj.ndim == 0):
                own.append(_Guard(node, "contents", (obj, node.snapshot)))
        elif node.readable and not library_buffer and (small or not held_by_library):
            # not read by the program, but Python may have (float(c), a layer's Hardtanh(max_val=np.array(1.0)));
            # a library module's buffers are read by its operations and effects, or not at all (a batch norm's
            # count, rebound at every training step, is read in train mode only)
            own.append(_Guard(node, "contents", (obj, node.snapshot)) if small else _Guard(node, "same", obj))
    elif category in ("opaque", "library_module"):  # a library function, class or module, a random generator
        own.append(_Guard(node, "same", obj))
    elif category == "object":  # the same object (an enum member, a config rebound), with as many attributes
        if node.readable and not node.hidden and node is not sources._root_guard:
            own.append(_Guard(node, "same", obj))
            if node.primary is None:  # (obj.__class__ = Other: other methods)
                own.append(_Guard(node, "class", type(obj)))
            if node.primary is None and node.snapshot is not None:  # (one added, read before through getattr's default)
                own.append(_Guard(node, "size", node.snapshot))
    elif category == "class":  # a class the code reads: the same class, with as many attributes
        if node.kind != "const" and node.readable:
            own.append(_Guard(node, "same", obj))
        if node.primary is None and node.snapshot is not None:  # (the user's: the names it lacks; another's: a count)
            own.append(_Guard(node, "missing" if type(node.snapshot) is frozenset else "size", node.snapshot))
    elif category in ("dict", "sequence") and node.primary is not None and node.readable:
        own.append(_Guard(node, "same", obj))  # a second path to a dict or list: the same one
    elif category == "function" and node.kind != "const" and node is not sources._root_guard:
        own.append(_Guard(node, "code", (obj, obj.__code__)))  # (a helper's __code__ replaced)
    elif category == "scalar":
        own.append(_Guard(node, "scalar", obj))
    elif category == "globals" and node.snapshot:  # names the code loads that it lacks: still not defined, and
        # the builtins among them the same
        own.append(_Guard(node, "absent", tuple((name, vars(builtins).get(name)) for name in node.snapshot)))
    elif category == "python_module" and node.snapshot and node.readable:
        own.append(_Guard(node, "missing", node.snapshot))  # (a module of the user's: the names it lacks)
    return own


class Guards:
    """The facts a trace depended on, compiled into one check run before each replay.

    >>> import numpy as np
    >>> from autograd_core import Value
    >>> w = Value(np.ones((2, 3)), label="w")
    >>> loss = lambda x: (x @ w).sum()
    >>> guards = Guards.build(Sources.walk(loss, (np.ones((4, 2)),)), used=[w])
    >>> guards.describe()
    ['the compiled function is <function <lambda>>', 'w is <Value (2, 3) float64>, requires_grad=True']
    >>> w.data = np.ones((2, 3), dtype=np.float32)
    >>> guards.check(loss, (np.ones((4, 2)),))
    "w's dtype changed (float64 -> float32)"
    """

    def __init__(self, sources, guards, unreached, used_ids=frozenset()):
        self.sources = sources
        self._guards = guards
        root = sources._root_guard.obj if sources._root_guard is not None else None
        self._root_code = getattr(root, "__code__", None)
        self.unreached = unreached
        self.used_ids = used_ids  # ids of what the trace used
        self.source, self._fast = self._compile()

    # ---- building --------------------------------------------------------------
    @classmethod
    def build(cls, sources, used, labels=()):
        """Guards for what `sources` reached, given the objects the trace `used` outside its
        arguments (Values and arrays, in any order). Used objects the walk did not reach
        are listed in ``unreached`` (the runtime refuses them). `labels`: ids of the Values whose
        ``.label`` the code read (it may branch on a name).

        >>> import numpy as np
        >>> from autograd_core import Value
        >>> w = Value(np.ones(2)); hidden = Value(np.ones(2))
        >>> guards = Guards.build(Sources.walk(lambda x: (x * w).sum(), ()), used=[w, hidden])
        >>> len(guards), guards.unreached == [hidden]
        (2, True)
        """
        used_ids = {}
        for obj in used:
            used_ids.setdefault(id(obj), obj)
        unreached = [obj for key, obj in used_ids.items() if key not in sources._first]
        used_ids.update((key, None) for key in _with_bases(used_ids) if key in sources._first)  # (a view's array)
        module_reached = {id(n.obj) for n in sources._nodes if n.in_module and n.category == "value"}
        guards = []

        # depth first over the tree of paths: a module's guards before those of what it holds
        needed = set()
        per_node = {}
        unread = set()  # modules under a dict key or list the code never reads, and all they hold
        for node in sources._nodes:
            parent = node.parent
            if parent is not None and (parent.index in unread or (
                    node.category == "module" and parent.category in ("dict", "sequence") and not node.readable)):
                unread.add(node.index)
                if id(node.obj) not in used_ids:  # (what the program reads is guarded wherever it is)
                    continue
            own = _own_guards(node, sources, used_ids, module_reached)
            if node.category == "value" and node.primary is None and id(node.obj) in labels:
                own.append(_Guard(node, "label", node.obj.label))
            if own:
                per_node[node.index] = own
        for node in sources._nodes:  # a list or dict the code reads, or of guarded objects: its length, its keys
            if node.category in ("sequence", "dict") and not node.hidden and node.primary is None and (node.readable or any(
                child.index in per_node and child.category in ("module", "value", "array", "function", "opaque")
                for child in node.children
            )):
                kind = "keys" if node.category == "dict" else "length"
                per_node.setdefault(node.index, []).insert(0, _Guard(node, kind, node.snapshot))
        for index in per_node:
            node = sources._nodes[index]
            while node is not None and node.index not in needed:
                needed.add(node.index)
                node = node.parent
        stack = [n for n in reversed(sources._roots) if n.index in needed]
        while stack:
            node = stack.pop()
            guards.extend(per_node.get(node.index, ()))
            stack.extend(c for c in reversed(node.children) if c.index in needed)
        return cls(sources, guards, unreached, frozenset(used_ids))

    def without_effect_changes(self, fn, args, changes):
        """(these guards without those on an effect's own state that the effects of the traced call
        changed, and nothing else (a count its effect keeps: every replay changes it as eager does),
        what of the program's an effect replaced, which a replay could not follow). The state the call
        left alone (a BatchNorm's eps), or changed otherwise, stays guarded."""
        if not changes.by_effects:  # (no host function or effect changed anything of its own)
            return self, []
        kept, cache, rebound = [], {}, []
        for guard in self._guards:
            if changes.explains(guard.node, guard.kind, lambda value, data: self._held_before(
                    guard, value, data, fn, args, cache)):
                try:
                    changed = self._test(guard, self._resolve(guard.node, fn, args, cache), fn, args, cache)
                except Exception as error:  # noqa: BLE001 (what cannot be read now was changed too)
                    changed = str(error)
                if changed is not None:
                    # (an array or Value the program reads, a module, a function replaced; an array it does not
                    # read, a student's running mean reassigned in train mode, is the effect's own)
                    array = guard.expected[0] if guard.kind == "contents" else guard.expected
                    if guard.kind not in _STATE_KINDS and not (
                            guard.kind in ("same", "contents") and isinstance(array, np.ndarray)
                            and id(array) not in self.used_ids):
                        rebound.append(changed)
                    continue
            kept.append(guard)
        if len(kept) == len(self._guards):
            return self, rebound
        return Guards(self.sources, kept, self.unreached, self.used_ids), rebound

    def _held_before(self, guard, value, data, fn, args, cache):
        """Whether `guard` held for `value` (with `data`, its bytes then): the state before an effect."""
        if guard.kind in ("length", "keys"):  # (the owner's own size, or that of a list or dict it holds)
            return data == guard.expected
        if guard.kind == "contents":  # (an array of its owner's, or itself an owner: no object, its bytes)
            return (value is guard.expected[0] or value is None) and data == guard.expected[1]
        try:
            return self._test(guard, value, fn, args, cache) is None
        except Exception:  # noqa: BLE001
            return False

    # ---- the generated check -------------------------------------------------------
    def _compile(self):
        """One Python function: each path read once with direct access, each guard one
        test, the index of the first failed guard returned (None when all hold)."""
        return _CheckWriter().write(self._guards)

    # ---- checking ----------------------------------------------------------------------
    def check(self, fn, args):
        """None when every guard holds for a call ``fn(*args)``; else a short phrase naming
        the first fact that changed (``"model.1.training changed (True -> False)"``). A path
        that cannot be read any more is a failed guard, never an exception.

        >>> import numpy as np
        >>> from autograd_core import Value
        >>> class Box:
        ...     pass
        >>> box = Box(); box.w = Value(np.ones(2))
        >>> loss = lambda x: (x * box.w).sum()
        >>> guards = Guards.build(Sources.walk(loss, ()), used=[box.w])
        >>> del box.w
        >>> guards.check(loss, ())
        "box.w can no longer be read (KeyError: 'w')"
        """
        first = self._fast(fn, args)
        if first is None:
            return None
        return self._explain(first, fn, args)

    def _test_module(self, node, path, value, expected, fn, args, cache):
        obj, training, names, identity, size, cls = expected
        if identity and value is not obj:
            return f"{path} was replaced" + self._replaced_inside(node, fn, args, cache)
        if type(value) is not cls:
            return f"{path}'s class changed ({cls.__qualname__} -> {type(value).__qualname__})"
        now = value.__dict__["training"]
        if now is not training:
            return f"{path}.training changed ({training!r} -> {_brief(now)})"
        if names is not None and tuple(value.__dict__["_modules"]) != names:
            return f"{path}'s submodules changed ({list(names)} -> {list(value.__dict__['_modules'])})"
        if size is not None:
            now, changed = _module_counts(value), changed_names(value.__dict__, size[0])
            if changed or now[1:] != size[1:]:
                return (f"{path} has attributes, parameters or buffers added or removed ({_brief(changed)}; "
                        f"{size[1:]} -> {now[1:]})")
        return None

    def _explain(self, start, fn, args):
        """The phrase for the first failed guard from `start` on, read slowly, one path at a time
        (an object's or dict's added or removed names say less than what failed below them:
        theirs is the phrase only when nothing below failed)."""
        cache = {}
        structural = None
        for guard in self._guards[start:]:
            try:
                value = self._resolve(guard.node, fn, args, cache)
                phrase = self._test(guard, value, fn, args, cache)
            except _Unreadable as unreadable:
                return f"{unreadable.node.label()} can no longer be read ({_error_text(unreadable.error)})"
            except Exception as error:  # noqa: BLE001 (a comparison that raises is a failed guard)
                return f"{guard.node.label()} can no longer be checked ({_error_text(error)})"
            if phrase is not None and guard.kind in ("size", "missing", "keys"):
                structural = structural or phrase
            elif phrase is not None:
                return phrase
        return structural

    @staticmethod
    def _resolve(node, fn, args, cache):
        chain = []
        n = node
        while n is not None and n.index not in cache:
            chain.append(n)
            n = n.parent
        value = cache[n.index] if n is not None else None
        for n in reversed(chain):
            try:
                if n.kind == "root":
                    value = fn if n.key == "fn" else args
                elif n.kind == "const":
                    value = n.key
                elif n.kind == "fixed":
                    value = getattr(value, n.key)
                elif n.kind == "item":
                    value = value[n.key]
                elif n.kind == "dget":
                    value = _dict_get(value, n.key)
                elif n.kind == "sget":
                    value = _sequence_get(value, n.key)
                elif n.kind == "slot":
                    value = _slot_value(value, n.key)
                else:
                    value = value.__dict__[n.key]
            except Exception as error:  # noqa: BLE001
                raise _Unreadable(n, error) from None
            cache[n.index] = value
        return value

    def _test(self, guard, value, fn, args, cache):
        node, kind, expected = guard.node, guard.kind, guard.expected
        path = node.label()
        if kind == "root":
            if value is not expected:
                return node.phrase
            if type(value) is types.FunctionType and value.__code__ is not self._root_code:
                return "the compiled function's __code__ was replaced"
            return None
        if kind == "same":
            return None if value is expected else f"{path} was replaced"
        if kind == "absent":
            for name, builtin in expected:
                if name in value:
                    return f"the global {node.path}{name} is now defined"
                if vars(builtins).get(name) is not builtin:
                    return f"the builtin {name!r} was replaced"
            return None
        if kind == "label":
            return None if value.label == expected else f"{path}.label changed ({expected!r} -> {_brief(value.label)})"
        if kind == "class":
            return None if type(value) is expected else f"{path}'s class changed ({expected.__qualname__} -> {type(value).__qualname__})"
        if kind == "module":
            return self._test_module(node, path, value, expected, fn, args, cache)
        if kind == "code":
            obj, code = expected
            if value is not obj:
                return f"{path} was replaced"
            return None if value.__code__ is code else f"{path}.__code__ was replaced"
        if kind == "contents":
            obj, contents = expected
            if value is not obj:
                return f"{path} was replaced"
            return None if value.tobytes() == contents else f"{path}'s numbers changed"
        if kind == "keys":
            now = keys_of(value)
            return None if _same_scalar(now, expected) else f"{path}'s keys changed ({_brief(list(expected))} -> {_brief(list(now))})"
        if kind == "missing":
            defined = sorted(name for name in expected if name in value.__dict__)
            return f"{path}.{defined[0]} is now defined" if defined else None
        if kind == "size" and type(expected) is Names:  # (the names of an object's attributes)
            changed = changed_names(value.__dict__, expected)
            return f"{path} has attributes added or removed ({_brief(changed)})" if changed else None
        if kind == "size":  # (a count of a class's attributes)
            now = class_size(value)
            return None if now == expected else f"{path} has attributes added or removed ({expected} -> {now})"
        if kind == "value":
            obj, requires_grad, shape, dtype, strides = expected
            if value is not obj:
                return f"{path} was replaced"
            if value.requires_grad is not requires_grad:
                return f"{path}.requires_grad changed ({requires_grad!r} -> {_brief(value.requires_grad)})"
            return self._shape_dtype(path, value._data, shape, dtype, strides)
        if kind == "requires_grad":
            if value.requires_grad is not expected:
                return f"{path}.requires_grad changed ({expected!r} -> {_brief(value.requires_grad)})"
            return None
        if kind == "array":
            obj, shape, dtype, strides, count = expected
            if value is not obj:
                return f"{path} was replaced"
            if count is not None and np.count_nonzero(value) != count:
                return f"{path} holds {np.count_nonzero(value)} True, not {count} (the size of a selection by it)"
            return self._shape_dtype(path, value, shape, dtype, strides)
        if kind == "scalar":
            if value is expected or _same_scalar(value, expected):
                return None
            return f"{path} changed ({_brief(expected)} -> {_brief(value)})"
        if kind == "length":
            if len(value) != expected:
                return f"len({path}) changed ({expected} -> {len(value)})"
            return None
        raise AssertionError(kind)

    @staticmethod
    def _shape_dtype(path, data, shape, dtype, strides):
        if data.shape != shape:
            return f"{path}'s shape changed ({shape} -> {data.shape})"
        if data.dtype is not dtype and data.dtype != dtype:
            return f"{path}'s dtype changed ({dtype} -> {data.dtype})"
        if data.strides != strides:  # (eager's results keep a Fortran-ordered or strided array's layout)
            return f"{path}'s memory layout changed (strides {strides} -> {data.strides})"
        return None

    def _replaced_inside(self, module_node, fn, args, cache):
        """' (model.fc.weight is another object)': the first used object below a replaced module."""
        for guard in self._guards:
            if guard.kind not in ("value", "array", "same") or guard.node is module_node:
                continue
            n = guard.node.parent
            while n is not None and n is not module_node:
                n = n.parent
            if n is None:
                continue
            expected = guard.expected[0] if isinstance(guard.expected, tuple) else guard.expected
            try:
                now = self._resolve(guard.node, fn, args, dict(cache))
            except _Unreadable:
                return f" ({guard.node.label()} is gone)"
            if now is not expected:
                return f" ({guard.node.label()} is another object)"
        return ""

    # ---- reading -------------------------------------------------------------------------
    def describe(self):
        """One line per guard, in the order they are checked.

        >>> beta = 0.5
        >>> Guards.build(Sources.walk(lambda x: x * beta, ()), used=[]).describe()[1]
        'beta == 0.5 (float)'
        """
        lines = []
        for guard in self._guards:
            node, kind, expected = guard.node, guard.kind, guard.expected
            path = node.label()
            if kind == "root":
                lines.append(f"the compiled function is {_describe_object(expected)}")
            elif kind == "same":
                first = node.primary.label() if node.primary is not None else None
                lines.append(f"{path} is {_describe_object(expected)}" + (f", as {first}" if first else ""))
            elif kind == "module":
                obj, training, names, _, _, _ = expected
                children = f", {len(names)} submodules" if names is not None else ""
                lines.append(f"{path} is <{type(obj).__name__}>, training={training!r}{children}")
            elif kind == "label":
                lines.append(f"{path}.label == {expected!r}")
            elif kind == "absent":
                names = ", ".join(name for name, _ in expected)
                lines.append(f"no global {node.path}{{{names}}} is defined, and the builtins among them are the same")
            elif kind == "class":
                lines.append(f"{path} is of the class {expected.__qualname__}")
            elif kind == "code":
                lines.append(f"{path} is {_describe_object(expected[0])}, with its code")
            elif kind == "contents":
                lines.append(f"{path} is <{type(expected[0]).__name__} {expected[0].shape} {expected[0].dtype}> "
                             f"holding the same numbers")
            elif kind == "keys":
                lines.append(f"{path} has the keys {_brief(list(expected))}")
            elif kind == "missing":
                lines.append(f"{path} has none of the {len(expected)} names the code may read that it lacked")
            elif kind == "size":
                lines.append(f"{path} has the attributes {_brief(sorted(expected.held))}" if type(expected) is Names
                             else f"{path} has {expected} attributes")
            elif kind == "value":
                obj, requires_grad, shape, dtype, _ = expected
                lines.append(f"{path} is <{type(obj).__name__} {shape} {dtype}>, requires_grad={requires_grad!r}")
            elif kind == "requires_grad":
                lines.append(f"{path}.requires_grad is {expected!r}")
            elif kind == "array":
                obj, shape, dtype, *_ = expected
                lines.append(f"{path} is <{type(obj).__name__} {shape} {dtype}>")
            elif kind == "scalar":
                lines.append(f"{path} == {_brief(expected)} ({type(expected).__name__})")
            elif kind == "length":
                lines.append(f"len({path}) == {expected}")
        return lines

    def __len__(self):
        return len(self._guards)

    def __repr__(self):
        return f"<Guards: {len(self._guards)} guards, {len(self.unreached)} unreached>"


class _CheckWriter:
    """Writes the guards' check as Python: every user string and object is a
    constant of its namespace (``C3``, ``O5``, ``K7``), never pasted into the text."""

    def __init__(self):
        self.namespace = {"SAME": _same_scalar, "DGET": _dict_get, "SGET": _sequence_get, "SLOT": _slot_value,
                          "NONZERO": np.count_nonzero,
                          "__builtins__": {"len": len, "tuple": tuple, "dict": dict, "type": type, "Exception": Exception}}
        self.lines = ["def check(fn, args):", "    try:"]
        self.var = {}  # node index -> the name its object has in the generated code
        self.dicts = set()  # node indices whose __dict__ has a name already

    def write(self, guards):
        """(source, check function) for `guards`, tested in order, a node's guards together."""
        k = 0
        while k < len(guards):
            node = guards[k].node
            first = k
            tests = []
            while k < len(guards) and guards[k].node is node:
                self.read_path(node)
                tests += self.tests(guards[k], k)
                k += 1
            self.lines.append(f"        if {' or '.join(tests)}:")
            self.lines.append(f"            return {first}")
        self.lines += ["    except Exception:", "        return 0", "    return None", ""]
        source = "\n".join(self.lines)
        exec(_guard_code(source), self.namespace)  # noqa: S102 (our own text; user objects are constants)
        return source, self.namespace["check"]

    def key_text(self, node):
        key = node.key
        if type(key) is str and key.isidentifier() and not keyword.iskeyword(key):
            return repr(key)
        if type(key) is int and -(1 << 62) < key < 1 << 62:  # (a 4,300-digit int has no repr)
            return repr(key)
        name = f"K{node.index}"
        self.namespace[name] = key
        return name

    def read_path(self, node):
        """Lines reading `node`'s object from the nearest ancestor already read."""
        var = self.var
        chain = []
        n = node
        while n is not None and n.index not in var:
            chain.append(n)
            n = n.parent
        for n in reversed(chain):
            if n.kind == "root":  # the check's own arguments, "fn" or "args"
                var[n.index] = n.key
                continue
            if n.kind == "const":  # a globals dict, a closure cell, a function: held as a constant
                var[n.index] = f"C{n.index}"
                self.namespace[var[n.index]] = n.key
                continue
            parent = var[n.parent.index]
            if n.kind == "fixed":
                assert n.key in _FIXED_ATTRIBUTES
                expr = f"{parent}.{n.key}"
            elif n.kind == "item":
                expr = f"{parent}[{self.key_text(n)}]"
            elif n.kind == "dget":
                expr = f"DGET({parent}, {self.key_text(n)})"
            elif n.kind == "sget":
                expr = f"SGET({parent}, {self.key_text(n)})"
            elif n.kind == "slot":  # (a string constant: a name pasted as an identifier would be NFKC-folded)
                expr = f"SLOT({parent}, {self.key_text(n)})"
            else:  # "attr"
                expr = f"{self.dict_of(n.parent)}[{self.key_text(n)}]"
            var[n.index] = f"v{n.index}"
            self.lines.append(f"        v{n.index} = {expr}")

    def dict_of(self, node):
        if node.index not in self.dicts:
            self.dicts.add(node.index)
            self.lines.append(f"        d{node.index} = {self.var[node.index]}.__dict__")
        return f"d{node.index}"

    def module_tests(self, g, k, v):
        """The conditions under which a module's guard number `k` fails (`v`: its variable)."""
        obj, training, names, identity, size, cls = g.expected
        ns = self.namespace
        ns[f"O{k}"], ns[f"T{k}"], ns[f"Y{k}"] = obj, training, cls
        d = self.dict_of(g.node)
        tests = [f"{v} is not O{k}"] if identity else []
        tests += [f"type({v}) is not Y{k}", f"{d}['training'] is not T{k}"]
        if names is not None:  # (their order too: a Sequential runs them in it)
            ns[f"M{k}"] = names
            tests.append(f"tuple({d}['_modules']) != M{k}")
        if size is not None:
            names, parameters, buffers = size
            tests.append(self.names_test(names, k, d, counted=True))
            for name, n in (("_parameters", parameters), ("_buffers", buffers)):
                if n is not None:  # register_parameter / register_buffer after the trace
                    tests.append(f"len({d}[{name!r}]) != {n}")
        return tests

    def names_test(self, names, k, d, counted=False):
        """The condition under which the dict `d` (an object's __dict__) changed its names so that it matters;
        `counted`: where its count of names changed only (a module's: `len` costs a replay less than a set)."""
        self.namespace[f"Z{k}"], self.namespace[f"R{k}"] = names.held, names.readable
        changed = f"len({d}) != {len(names.held)}" if counted else f"{d}.keys() != Z{k}"
        return changed if names.readable is None else f"({changed} and not R{k}.isdisjoint({d}.keys() - Z{k}))"

    def absent_tests(self, g, k, v):
        """The conditions under which an "absent" guard fails: a name is defined (or a builtin replaced)."""
        ns = self.namespace
        ns["BUILTINS"] = vars(builtins)
        tests = []
        for j, (name, builtin) in enumerate(g.expected):  # (each name a constant of the namespace, as every
            ns[f"A{k}_{j}"], ns[f"O{k}_{j}"] = name, builtin  # string the user wrote)
            tests += [f"A{k}_{j} in {v}", f"BUILTINS.get(A{k}_{j}) is not O{k}_{j}"]
        return tests

    def tests(self, g, k):
        """The conditions under which guard number `k` fails."""
        v, ns = self.var[g.node.index], self.namespace
        if g.kind in ("root", "same"):
            ns[f"O{k}"] = g.expected
            if g.kind == "root" and type(g.expected) is types.FunctionType:  # (fn.__code__ = other.__code__)
                ns[f"C{k}c"] = g.expected.__code__
                return [f"{v} is not O{k}", f"{v}.__code__ is not C{k}c"]
            return [f"{v} is not O{k}"]
        if g.kind == "module":
            return self.module_tests(g, k, v)
        if g.kind == "code":
            ns[f"O{k}"], ns[f"C{k}c"] = g.expected
            return [f"{v} is not O{k}", f"{v}.__code__ is not C{k}c"]
        if g.kind == "contents":
            ns[f"O{k}"], ns[f"B{k}"] = g.expected
            return [f"{v} is not O{k}", f"{v}.tobytes() != B{k}"]
        if g.kind == "keys":
            ns[f"Y{k}"] = g.expected
            keys = f"tuple({v})" if type(g.node.obj) in (dict, OrderedDict) else f"tuple(dict.keys({v}))"
            if any(type(key) is not str for key in g.expected):  # (0 and -0.0, 1 and True are equal keys)
                return [f"not SAME({keys}, Y{k})"]
            return [f"{keys} != Y{k}"]
        if g.kind == "missing":
            ns[f"M{k}"] = g.expected
            return [f"not M{k}.isdisjoint({self.dict_of(g.node)})"]
        if g.kind == "size" and type(g.expected) is Names:  # (an object's names)
            return [self.names_test(g.expected, k, self.dict_of(g.node))]
        if g.kind == "size":  # (a class's count of attributes: snapshots.class_size, inline)
            ns[f"Z{k}"] = g.expected
            d = self.dict_of(g.node)
            return [f"len({d}) - ('__slotnames__' in {d}) != Z{k}"]
        if g.kind == "value":
            obj, requires_grad, shape, dtype, strides = g.expected
            ns.update({f"O{k}": obj, f"R{k}": requires_grad, f"S{k}": shape, f"D{k}": dtype, f"L{k}": strides})
            return [f"{v} is not O{k}", f"{v}.requires_grad is not R{k}", f"(a := {v}._data).shape != S{k}",
                    f"(a.dtype is not D{k} and a.dtype != D{k})", f"a.strides != L{k}"]
        if g.kind == "absent":
            return self.absent_tests(g, k, v)
        if g.kind in _ONE_TEST:  # (a label, a class, requires_grad, a length, a number)
            ns[f"N{k}"] = g.expected
            return [_ONE_TEST[g.kind].format(v=v, k=k)]
        if g.kind == "array":  # (a boolean array: as many True, for a selection by it has as many elements)
            obj, shape, dtype, strides, count = g.expected
            ns.update({f"O{k}": obj, f"S{k}": shape, f"D{k}": dtype, f"L{k}": strides, f"N{k}": count})
            return [f"{v} is not O{k}", f"{v}.shape != S{k}", f"({v}.dtype is not D{k} and {v}.dtype != D{k})",
                    f"{v}.strides != L{k}"] + ([f"NONZERO({v}) != N{k}"] if count is not None else [])
        raise AssertionError(g.kind)
