"""One call of the model, watched: its operations, its layer calls, and what they read.

The model (an ``nn`` module, or any function of Values) is called once on
the example arguments, the way ``autograd_core.compile`` traces a step: the
eager engine records every operation, and compile's tracer records the
arrays made in NumPy outside them (the mask of ``x > 0``) and refuses reads
of traced data that would freeze the example's numbers into the export.
Besides, every module reached is watched while the call runs (its
``forward`` wrapped for that time), so each layer call is known with its
arguments and its result, even a call that adds no node (``Identity``,
``Dropout`` in evaluation mode).

The call runs in evaluation mode: no random numbers are drawn and no running
statistics move (the modes are set back afterwards). Layers that behave
differently in training (Dropout, BatchNorm) are exported as the layers they
are, with their mode; what a model's own ``forward`` does only in training is
not seen.

A traced call is then read backwards from its outputs (:meth:`Traced.steps`):
each Value is produced either by an operation or, when a writer keeps layers
whole (PyTorch: ``self.fc1(x)``), by the call of a layer that returned it.
"""

from __future__ import annotations

import inspect
import math
import threading

import numpy as np

from .. import engine
from ..compile.tracer import CompileError, Trace, TracedArgument
from ..compile.writer import nodes_made_during
from ..engine import Value

__all__ = ["ExportError", "trace", "counterpart", "is_module"]


class ExportError(ValueError):
    """A model that cannot be exported as it is; the message says what and why.

    >>> import numpy as np
    >>> try:
    ...     trace(lambda x: x.sum().item(), (np.ones(2),))
    ... except ExportError as error:
    ...     print(str(error)[:36])
    export: .item() reads a traced value
    """


NEVER = math.inf  # the time of the outputs: after everything


def is_module(obj):
    """An ``nn``-style module (the engine does not import ``nn``: it looks at the object)."""
    d = getattr(obj, "__dict__", None)
    return (isinstance(d, dict) and "_modules" in d and "_parameters" in d and "training" in d
            and callable(getattr(type(obj), "named_modules", None)))


def _owner(cls, attribute):
    return next((c for c in cls.__mro__ if attribute in c.__dict__), None)


def counterpart(module):
    """The ``torch.nn`` layer a module declares (``module.as_torch()``:
    ``(class name, args, kwargs)``), or None: a model of the user's own, or a
    subclass whose ``forward`` is not the one the declaration describes, or
    a container holding such a module."""
    if not is_module(module):
        return None
    cls = type(module)
    declared, forward = _owner(cls, "as_torch"), _owner(cls, "forward")
    if declared is None or forward is None or not issubclass(declared, forward):
        return None  # a subclass with a forward of its own: its declaration does not describe it
    spec = module.as_torch()
    if spec is None:
        return None
    name, args, kwargs = spec
    stack = list(args) + list(kwargs.values())
    while stack:
        item = stack.pop()
        if isinstance(item, (list, tuple)):
            stack.extend(item)
        elif is_module(item) and counterpart(item) is None:
            return None
    return name, tuple(args), dict(kwargs)


class Call:
    """One call of a module during the trace: its arguments, its result, and
    the creation numbers just before it started and just after it ended."""

    __slots__ = ("module", "path", "args", "kwargs", "result", "enter", "exit", "key")

    def __init__(self, module, path, args, kwargs, enter):
        self.module, self.path, self.args, self.kwargs = module, path, args, kwargs
        self.result, self.enter, self.exit = None, enter, None
        self.key = ("call", enter)

    def results(self):
        return self.result if isinstance(self.result, tuple) else (self.result,)


class Step:
    """What produces one Value in the exported program: an operation's node,
    a layer call, or a comparison (a NumPy array the call made from traced Values)."""

    __slots__ = ("kind", "obj", "time", "key")

    def __init__(self, kind, obj, time, key):
        self.kind, self.obj, self.time, self.key = kind, obj, time, key

    def __repr__(self):
        return f"<Step {self.kind} at {self.time}>"


class Traced:
    """The record of one call: the arguments as the call saw them, the outputs,
    the operations and layer calls made, and where everything was found."""

    def __init__(self):
        self.model = None  # the module exported (None for a function)
        self.fn = None
        self.arg_names = []  # one per argument: the forward's parameter names
        self.call_args = []  # what the call got: Values (float data), arrays (integers), numbers
        self.outputs = ()
        self.output_is_tuple = False
        self.calls = []
        self.trace = None  # compile's Trace: host arrays and effects
        self.start_id = None
        self.module_paths = {}  # id(module) -> its path (dotted from the model, or how the function reaches it)
        self.modules = {}  # id -> module
        self.leaf_paths = {}  # id(Value) -> its path, for the Values made before the call
        self.leaf_path_of = lambda value: None  # for a function: how its closure reaches a Value
        self._producers = None

    # ---- what a Value is ---------------------------------------------------------
    def argument_index(self, value):
        for k, arg in enumerate(self.call_args):
            if arg is value:
                return k
        return None

    def is_leaf(self, value):
        """A Value made before the call (a parameter or a constant of the caller's)."""
        return value._id < self.start_id and self.argument_index(value) is None

    def host_record(self, array):
        """The host array record of an array (or of the array it is a view of), or None."""
        by_result = self.trace.by_result
        seen = array
        while seen is not None:
            record = by_result.get(id(seen))
            if record is not None:
                return record
            seen = getattr(seen, "base", None)
        return None

    def constant_of(self, record):
        """The array a host function made from no traced Value, as a constant of the
        export (batch norm's running statistics in evaluation mode); refused when it
        was made from nothing (a random draw: a dropout mask) or from an argument
        (class labels), which a constant cannot stand for."""
        what = record.name or getattr(record.fn, "__name__", "an array")
        if not record.inputs:
            raise ExportError(
                f"export: the model draws an array ({what!s:.40}) from nothing at every call, as a dropout mask "
                f"in training is drawn; an export cannot keep it. Use the layer (nn.Dropout: exported as "
                f"torch.nn.Dropout), or call it with training=False")
        if any(isinstance(x, np.ndarray) and any(x is arg for arg in self.call_args) for x in record.inputs):
            raise ExportError(
                f"export: the model makes an array ({what!s:.40}) in NumPy from an argument (class labels?), which "
                f"an export cannot compute again; keep it inside a layer with a torch.nn counterpart "
                f"(nn.CrossEntropyLoss), or leave it out of the exported model")
        return np.asarray(record.result)

    def array_source(self, array):
        """Where an array an operation reads comes from: ``("argument", k)`` for an
        array passed to the model, ``("host", record)`` for one made in NumPy from
        traced Values, else ``("constant", its value)``."""
        for k, arg in enumerate(self.call_args):
            if arg is array:  # an integer array given to the model (indices)
                return "argument", k
        record = self.host_record(array)
        if record is None:
            return "constant", array
        if any(isinstance(x, Value) for x in record.inputs):
            return "host", record
        return "constant", self.constant_of(record)

    # ---- who produced what ---------------------------------------------------------
    def _index(self):
        producers = {}
        start = self.start_id
        stack = list(self.outputs)
        for call in self.calls:
            stack.extend(v for v in call.results() if isinstance(v, Value))
            stack.extend(_values_in(call.args) + _values_in(tuple(call.kwargs.values())))
        for record in self.trace.hosts:
            stack.extend(x for x in record.inputs if isinstance(x, Value))
        for node in nodes_made_during(stack, start):
            producers[id(node)] = [Step("op", node, node._id, ("op", node._id))]
        for call in self.calls:
            for k, value in enumerate(call.results()):
                if isinstance(value, Value):
                    producers.setdefault(id(value), []).append(Step("call", (call, k), call.exit, call.key))
        for steps in producers.values():
            steps.sort(key=lambda s: s.time)
        self._producers = producers

    def producer(self, value, time, whole):
        """The step that gave `value` to something happening at `time`: its
        operation, or the latest call of a module in `whole` (ids of calls
        kept whole) that returned it before then; None for a leaf, an
        argument or a constant."""
        if self._producers is None:
            self._index()
        found = None
        for step in self._producers.get(id(value), ()):
            if step.time >= time:
                break
            if step.kind == "op" or id(step.obj[0]) in whole:
                found = step
        return found

    def steps(self, whole=frozenset()):
        """The steps the outputs need, in the order they happened (calls in
        `whole`, a set of ids of Call, are kept whole: what they did inside is
        not listed)."""
        needed = {}
        stack = [(v, NEVER) for v in self.outputs]
        while stack:
            value, time = stack.pop()
            if not isinstance(value, Value):
                continue
            step = self.producer(value, time, whole)
            if step is None:
                if value._id >= self.start_id and value._op is None:
                    self._follow_host(value._data, stack, needed)
                continue
            if step.key in needed:
                continue
            needed[step.key] = step
            if step.kind == "op":
                node = step.obj
                stack.extend((inp, node._id) for inp in node._inputs)
                for param in node._params.values():
                    for array in _arrays_in(param):
                        self._follow_host(array, stack, needed)
            else:
                call = step.obj[0]
                for arg in _values_in(call.args) + _values_in(tuple(call.kwargs.values())):
                    stack.append((arg, call.enter))
        return sorted(needed.values(), key=lambda s: (s.time, s.kind != "host"))

    def _follow_host(self, array, stack, needed):
        record = self.host_record(array)
        if record is None or not any(isinstance(x, Value) for x in record.inputs):
            return  # a constant (made from no traced Value)
        key = ("host", id(record))
        if key not in needed:
            needed[key] = Step("host", record, record.when - 0.5, key)
            stack.extend((x, record.when) for x in record.inputs if isinstance(x, Value))


def _values_in(items):
    found = []
    stack = list(items)
    while stack:
        item = stack.pop()
        if isinstance(item, Value):
            found.append(item)
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return found


def _arrays_in(param):
    if isinstance(param, np.ndarray):
        return [param]
    if isinstance(param, (tuple, list)):
        return [p for p in param if isinstance(p, np.ndarray)]
    return []


# --------------------------------------------------------------------------
# Running the call
# --------------------------------------------------------------------------
def argument_names(fn, count):
    """The names of the first `count` parameters of `fn` (``x`` for a module's
    forward(self, x)), ``arg<k>`` where it has none."""
    try:
        params = [p for p in inspect.signature(fn).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    names = [p.name for p in params[:count]]
    return names + [f"arg{k}" for k in range(len(names), count)]


def _as_call_argument(arg, k):
    if isinstance(arg, Value):
        return Value(arg._data, requires_grad=True, label=arg.label)
    if isinstance(arg, np.ndarray) or isinstance(arg, (list, tuple)) and not _is_static(arg):
        array = np.asarray(arg)
        if array.dtype.kind == "f":
            return Value(array, requires_grad=True)
        if array.dtype.kind in "iub":
            return array.view(TracedArgument)
        raise ExportError(f"export: argument {k} is an array of dtype {array.dtype}; give float data (or integer "
                          f"class labels)")
    if _is_static(arg):
        return arg
    raise ExportError(f"export: argument {k} is a {type(arg).__name__}; give NumPy arrays, Values or Python numbers")


def _is_static(arg):
    return arg is None or isinstance(arg, (bool, int, float, str)) or (
        isinstance(arg, tuple) and all(isinstance(a, (bool, int, float, str)) for a in arg))


class _Watch:
    """The modules' calls while the trace runs, in this thread only."""

    def __init__(self, traced):
        self.traced = traced
        self.thread = threading.get_ident()

    def wrap(self, module, path):
        original = module.__dict__.get("forward")
        bound = original if original is not None else type(module).forward.__get__(module)
        watch = self

        def forward(*args, **kwargs):
            if threading.get_ident() != watch.thread:
                return bound(*args, **kwargs)
            call = Call(module, path, args, kwargs, engine._next_id())
            watch.traced.calls.append(call)
            result = bound(*args, **kwargs)
            call.result = tuple(result) if isinstance(result, list) else result
            call.exit = engine._next_id()
            return result

        object.__setattr__(module, "forward", forward)
        return original


def trace(model, args):
    """Call `model` on `args` once, watched (see the module docstring); returns a :class:`Traced`.

    >>> import numpy as np
    >>> from autograd_core import Value
    >>> w = Value(np.array([1.0, -2.0]), label="w")
    >>> traced = trace(lambda x: (x * w).sum(), (np.array([3.0, 4.0]),))
    >>> traced.arg_names, traced.outputs[0].item()
    (['x'], -5.0)
    """
    if not callable(model):
        raise ExportError(f"export: expects an nn module or a function of Values, got {type(model).__name__}")
    if not args:
        raise ExportError("export: give an example input after the model, e.g. export.to_torch(model, X)")
    traced = Traced()
    traced.fn = model
    module_root = is_module(model)
    traced.model = model if module_root else None
    traced.arg_names = argument_names(model.forward if module_root else model, len(args))
    traced.call_args = [_as_call_argument(arg, k) for k, arg in enumerate(args)]
    reachable = _modules_reached(model, args, traced, module_root)
    _keep_outputs(traced, _call_watched(model, traced, reachable))
    return traced


def _modules_reached(model, args, traced, module_root):
    """The modules the call may reach, as (path, module): a module's own, or
    those a function's closure and globals lead to. Notes in `traced` the
    paths of the parameters made before the call."""
    if module_root:
        for name, param in model.named_parameters():
            traced.leaf_paths.setdefault(id(param), name)
        return list(model.named_modules())
    from ..compile.guards import Sources

    sources = Sources.walk(model, args)
    traced.leaf_path_of = sources.path_of
    return list(sources.modules)


def _call_watched(model, traced, reachable):
    """The one call, under compile's tracer, with every module reached watched
    and in evaluation mode; their ``forward`` and modes are put back after."""
    watch = _Watch(traced)
    wrapped, modes = [], []
    try:
        for path, module in reachable:
            if id(module) in traced.modules:
                continue
            traced.modules[id(module)] = module
            traced.module_paths[id(module)] = path
            wrapped.append((module, watch.wrap(module, path)))
            modes.append((module, module.training))
            object.__setattr__(module, "training", False)
        try:
            with Trace() as compile_trace:  # (a refusal the model's own code caught is raised as it ends)
                traced.trace = compile_trace
                traced.start_id = compile_trace.start_id
                result = model(*traced.call_args)
        except NotImplementedError as error:
            raise ExportError(f"export: {error} (a container of layers is not a model: export a module "
                              f"that computes something)") from None
        except CompileError as error:
            raise ExportError(str(error).replace("compile: ", "export: ", 1).replace(
                "A compiled step would replay", "An exported model would keep")) from None
    finally:
        for module, original in wrapped:
            if original is None:
                module.__dict__.pop("forward", None)
            else:
                object.__setattr__(module, "forward", original)
        for module, mode in modes:
            object.__setattr__(module, "training", mode)
    return result


def _keep_outputs(traced, result):
    """The call's result as the traced outputs: a Value, or a tuple of Values
    computed from the inputs."""
    if isinstance(result, Value):
        traced.outputs = (result,)
    elif isinstance(result, (tuple, list)) and result and all(isinstance(v, Value) for v in result):
        traced.outputs, traced.output_is_tuple = tuple(result), True
    else:
        raise ExportError(f"export: the model must return a Value (or a tuple of Values), got {type(result).__name__}")
    for k, value in enumerate(traced.outputs):
        if traced.argument_index(value) is None and value._id < traced.start_id:
            raise ExportError(f"export: output {k} is a Value made before the call (a parameter?), not computed "
                              f"from the inputs")
