"""The traced call written as a ``torch.nn.Module``: its source, then the module itself.

Layers that declare their ``torch.nn`` counterpart (``Module.as_torch()``)
are kept whole: ``self.fc1 = nn.Linear(4, 16)`` in ``__init__`` and
``x = self.fc1(x)`` in ``forward``; everything else is written op by op,
each operation as its declaration says (``Op(as_torch=...)``); parameters
read by those operations become ``nn.Parameter``s of the module. A model
that is itself a layer with a counterpart (``nn.Sequential``, ``nn.MLP``,
``nn.Linear``) becomes a subclass of that counterpart, so its
``state_dict`` keeps the same names.

Everything a user named (labels, module and parameter names, the function's
arguments) becomes a checked identifier (compile's :func:`identifier` and
:class:`Names`); every constant is written so that it reads back exactly.
"""

from __future__ import annotations

import ast
import inspect
import math
import re

import numpy as np

from ..compile.program import Names, identifier, literal
from ..engine import Value
from .trace import ExportError, counterpart, is_module

__all__ = ["TorchProgram", "write_torch"]

INLINE_LIMIT = 16  # constant arrays up to this many elements are written out in __init__; larger ones are filled in
_COMPARISONS = {np.greater: ">", np.greater_equal: ">=", np.less: "<", np.less_equal: "<="}
_TORCH_DTYPES = {"float16": "torch.float16", "float32": "torch.float32", "float64": "torch.float64",
                 "int64": "torch.int64", "int32": "torch.int32", "bool": "torch.bool", "uint8": "torch.uint8",
                 "int8": "torch.int8", "int16": "torch.int16"}
_RESERVED = {"torch", "nn", "F", "self", "super", "math"}


class TorchProgram:
    """The source of the exported module and how to fill it: ``source``
    (Python text), ``class_name``, and ``bindings``: (where in the module,
    what to copy there) for every layer, parameter and buffer."""

    def __init__(self, source, class_name, bindings, root_module):
        self.source = source
        self.class_name = class_name
        self.bindings = bindings  # (kind, accessor path, ours): kind "module", "parameter" or "buffer"
        self.root_module = root_module  # our model when it is a module (its mode is copied)

    def build(self):
        """Run the source and fill the module: weights, buffers, modes, requires_grad."""
        import torch

        namespace = {"__name__": "autograd_core.export.generated"}
        exec(compile(self.source, f"<autograd_core.export: class {self.class_name}>", "exec"), namespace)  # noqa: S102
        module = namespace[self.class_name]()
        for kind, path, ours in self.bindings:
            target = _walk(module, path)
            if kind == "module":
                _load_layer(target, ours, torch)
            else:
                owner, name = _walk(module, path[:-1]), path[-1][1]
                tensor = getattr(owner, name)
                with torch.no_grad():
                    tensor.copy_(torch.from_numpy(np.array(ours._data if isinstance(ours, Value) else ours)))
                if kind == "parameter":
                    tensor.requires_grad_(bool(ours.requires_grad))
        if self.root_module is not None:
            module.training = bool(self.root_module.training)
            if counterpart(self.root_module) is not None:
                _copy_modes(module, self.root_module)
        return module


def _walk(module, path):
    for kind, key in path:
        module = module[key] if kind == "item" else getattr(module, key)
    return module


def _load_layer(target, ours, torch):
    state = {name: torch.from_numpy(np.array(array)) for name, array in ours.state_dict().items()}
    result = target.load_state_dict(state, strict=False)
    if result.unexpected_keys:
        raise ExportError(f"export: {type(ours).__name__}'s state {result.unexpected_keys} has no place in "
                          f"torch.nn.{type(target).__name__} (its state_dict names must be PyTorch's)")
    _copy_modes(target, ours)
    params = dict(target.named_parameters())
    for name, param in ours.named_parameters():
        params[name].requires_grad_(bool(param.requires_grad))


def _copy_modes(target, ours):
    theirs = dict(target.named_modules())
    for name, module in ours.named_modules():
        if name in theirs:
            theirs[name].training = bool(module.training)


# --------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------
def _number(value):
    """A Python number's text that reads back exactly (as the given float type, for a NumPy scalar)."""
    if isinstance(value, (bool, np.bool_)):
        return repr(bool(value))
    if isinstance(value, (int, np.integer)):
        return repr(int(value))
    x = float(value)
    if math.isnan(x):
        return "float('nan')"
    if math.isinf(x):
        return "float('inf')" if x > 0 else "-float('inf')"
    if isinstance(value, np.floating) and value.dtype != np.float64:
        short = str(value)  # the shortest text that gives this float32 (or float16) back
        if type(value)(float(short)) == value and re.fullmatch(r"-?[0-9.e+-]+", short):
            return short if any(c in short for c in ".e") else short + ".0"
    return repr(x)


def _dtype_text(dtype):
    text = _TORCH_DTYPES.get(np.dtype(dtype).name)
    if text is None:
        raise ExportError(f"export: PyTorch has no dtype for NumPy's {np.dtype(dtype)}")
    return text


def _nested_text(array):
    """A NumPy array as nested lists of exact number texts."""
    if array.ndim == 0:
        return _number(array[()])
    return "[" + ", ".join(_nested_text(part) for part in array) + "]"


def _default_of(torch_class, name):
    try:
        parameter = inspect.signature(torch_class).parameters.get(name)
    except (TypeError, ValueError):
        return inspect.Parameter.empty
    return inspect.Parameter.empty if parameter is None else parameter.default


class _Operand(str):
    """The text of an operation's input; `number` is its text as a plain
    Python number when it is a 0-d constant (``x * 2.0``)."""

    number = None


class Writer:
    """Writes one traced call as a module's source (see the module docstring)."""

    def __init__(self, traced, class_name=None):
        import torch

        self.torch = torch
        self.traced = traced
        self.names = Names()
        self.names.taken |= _RESERVED
        self.attributes = Names()  # the module's attribute names (a namespace of their own)
        self.attributes.taken |= _RESERVED | set(dir(torch.nn.Module))
        self.init_lines = []
        self.body = []
        self.bindings = []
        self.uses_functional = False
        self.attached = {}  # id(module) -> (text, accessor path)
        self.containers = {"": ("self", (), self.attributes)}  # our dotted path -> where it is in the module
        self.by_path = dict(traced.model.named_modules()) if traced.model is not None else {}
        self.owners = []  # (module, text, accessor path) of the layers attached whole
        self.leaves = {}  # id(Value) -> its text
        self.constants = {}  # id(array) -> (its buffer's text, the array)
        self.variables = {}  # step key -> [names of its outputs]
        self.returned_arrays = {}  # id(array a layer kept whole returned: MaxPool2d's indices) -> its name
        self.root = traced.model
        self.subclass = self.root is not None and counterpart(self.root) is not None
        self.class_name = class_name or self._class_name()

    # ---- names ----------------------------------------------------------------
    def _class_name(self):
        if self.root is not None:
            name = type(self.root).__name__
            if self.subclass and counterpart(self.root)[0] == name:
                return "Model" if name in ("Sequential", "ModuleList") else name
            return identifier(name, "Model")
        name = getattr(self.traced.fn, "__name__", "")
        if not name.isidentifier() or name == "<lambda>":
            return "Model"
        name = "".join(part[:1].upper() + part[1:] for part in identifier(name, "model").split("_") if part)
        return name if name and name not in _RESERVED and len(name) > 1 else "Model"

    def _attribute(self, hint):
        segment = str(hint)
        if segment.isdigit():
            segment = f"layer{segment}"
        return self.attributes.new(identifier(segment.replace(".", "_"), "layer"), "layer")

    # ---- constants -------------------------------------------------------------
    def const(self, value, hint="c"):
        """Text for a fixed value: a literal, a tensor written out, or a buffer of the module."""
        if isinstance(value, Value):
            value = value._data
        if isinstance(value, (float, np.floating)):
            return _number(value)
        if isinstance(value, (bool, np.bool_, int, np.integer)):
            return _number(value)
        if isinstance(value, np.dtype) or (isinstance(value, type) and issubclass(value, np.generic)):
            return _dtype_text(value)
        if isinstance(value, np.ndarray):
            return self.array(value, hint)
        if isinstance(value, (tuple, list)):
            parts = [self.const(v, hint) for v in value]
            if isinstance(value, list):
                return "[" + ", ".join(parts) + "]"
            return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"
        text = literal(value)
        if text is None or text in ("inf", "-inf", "nan"):
            raise ExportError(f"export: cannot write the constant {type(value).__name__} {value!r:.60} in PyTorch")
        return text

    def array(self, array, hint="c"):
        """An array an operation reads: an argument, a comparison of traced Values, or a constant."""
        kind, source = self.traced.array_source(array)
        if kind == "argument":  # an integer array given to the model (indices): the module's argument too
            return self.params[source]
        if kind == "host":
            if ("host", id(source)) not in self.variables:  # made inside a layer kept whole, not returned by it
                what = source.name or getattr(source.fn, "__name__", "an array")
                raise ExportError(f"export: an array made in NumPy from traced values ({what!s:.40}) is read "
                                  f"outside the layer that made it, which PyTorch cannot make again here; use "
                                  f"it where the layer's own result is used too")
            return self.variables[("host", id(source))][0]
        array = source
        known = self.constants.get(id(array))
        if known is not None:
            return known[0]
        # a buffer of the module, so that it moves with it (tm.to("cuda")): a small one written out
        # (and left out of the state_dict), a larger one filled by to_torch (and saved with the weights)
        original, array = array, np.asarray(array)
        name = self._attribute(hint if hint != "c" else "constant")
        dtype = _dtype_text(array.dtype)
        if array.size <= INLINE_LIMIT:
            self.init_lines.append(f'self.register_buffer("{name}", torch.tensor({_nested_text(array)}, '
                                   f'dtype={dtype}), persistent=False)')
        else:
            self.init_lines.append(f'self.register_buffer("{name}", torch.zeros({_shape_text(array.shape)}, '
                                   f'dtype={dtype}))')
            self.bindings.append(("buffer", (("attr", name),), array.copy()))
        self.constants[id(original)] = (f"self.{name}", original)  # (kept: its id stays its own)
        return f"self.{name}"

    def index(self, index):
        """The subscript of ``x[index]``: slices written as ``a:b``, arrays as tensors."""
        parts = index if isinstance(index, tuple) else (index,)
        texts = []
        for part in parts:
            if part is None:
                texts.append("None")
            elif part is Ellipsis:
                texts.append("...")
            elif isinstance(part, slice):
                bounds = ["" if b is None else _number(b) for b in (part.start, part.stop, part.step)]
                texts.append(":".join(bounds[:2]) + (f":{bounds[2]}" if part.step is not None else ""))
            elif isinstance(part, np.ndarray):
                texts.append(self.array(part, "index"))
            else:
                texts.append(self.const(part, "index"))
        if not isinstance(index, tuple):
            return texts[0]
        return ", ".join(texts) if len(texts) > 1 else (texts[0] + "," if texts else "()")

    # ---- layers kept whole -------------------------------------------------------
    def construct(self, module, indent):
        """``nn.Linear(4, 16, dtype=torch.float64)``: a layer's constructor from its declaration."""
        name, args, kwargs = counterpart(module)
        torch_class = getattr(self.torch.nn, name, None) if name.isidentifier() else None
        if torch_class is None:
            raise ExportError(f"export: {type(module).__name__} declares torch.nn.{name!s:.40}, which PyTorch does not have")
        parts = [self._argument(a, indent + 1) for a in args]
        for key, value in kwargs.items():
            if not key.isidentifier():
                raise ExportError(f"export: {type(module).__name__} declares an argument {key!r:.40}")
            default = _default_of(torch_class, key)
            if default is not inspect.Parameter.empty and _same_value(value, default):
                continue
            if key == "dtype" and np.dtype(value) == np.float32:
                continue  # PyTorch's default dtype
            parts.append(f"{key}={self._argument(value, indent + 1)}")
        if len(args) == 1 and not kwargs and isinstance(args[0], list):  # nn.ModuleList([...])
            pad = "    " * (indent + 1)
            items = "".join(f"{pad}{self._argument(v, indent + 1)},\n" for v in args[0])
            return f"nn.{name}([\n{items}{'    ' * indent}])"
        if any("\n" in p for p in parts) or any(is_module(a) for a in args):
            pad = "    " * (indent + 1)
            inner = "".join(f"{pad}{p},\n" for p in parts)
            return f"nn.{name}(\n{inner}{'    ' * indent})"
        return f"nn.{name}({', '.join(parts)})"

    def _argument(self, value, indent):
        if is_module(value):
            return self.construct(value, indent)
        if isinstance(value, list) and any(is_module(v) for v in value):
            pad = "    " * (indent + 1)
            return "[\n" + "".join(f"{pad}{self._argument(v, indent + 1)},\n" for v in value) + "    " * indent + "]"
        if isinstance(value, (Value, np.ndarray)):
            array = np.asarray(value._data if isinstance(value, Value) else value)
            return f"torch.tensor({_nested_text(array)}, dtype={_dtype_text(array.dtype)})"
        return self.const(value)

    def _names(self):
        names = Names()
        names.taken |= _RESERVED | set(dir(self.torch.nn.Module))
        return names

    def _place(self, dotted):
        """Where the model's module at `dotted` lives in the exported one: ``(text,
        accessor, names)``; a module of the user's own on the way becomes an
        ``nn.Module()`` holding what is attached below it, so the names of the
        ``state_dict`` stay ours."""
        if dotted in self.containers:
            return self.containers[dotted]
        parent, _, segment = dotted.rpartition(".")
        text, accessor, names = self._place(parent)
        name = self._segment(names, segment)
        text, accessor = f"{text}.{name}", accessor + (("attr", name),)
        self.init_lines.append(f"{text} = nn.Module()")
        self.containers[dotted] = (text, accessor, self._names())
        return self.containers[dotted]

    def _segment(self, names, segment):
        segment = str(segment)
        return names.new(identifier(f"layer{segment}" if segment.isdigit() else segment, "layer"), "layer")

    def attach(self, module, path):
        """The text of a layer kept whole (``self.fc1``, ``self[0]``), adding it to ``__init__`` once."""
        if id(module) in self.attached:
            return self.attached[id(module)][0]
        for owner, text, accessor in self.owners:
            sub = _sub_path(owner, module)
            if sub is not None:
                full_text, full_accessor = _extend(text, accessor, sub)
                self.attached[id(module)] = (full_text, full_accessor)
                return full_text
        if self.root is not None:  # a model: the highest layer with a counterpart that holds this one
            segments = path.split(".")
            for k in range(1, len(segments) + 1):
                anchor = self.by_path.get(".".join(segments[:k]))
                if anchor is not None and counterpart(anchor) is not None:
                    text, accessor, names = self._place(".".join(segments[:k - 1]))
                    name = self._segment(names, segments[k - 1])
                    self._attach_whole(anchor, f"{text}.{name}", accessor + (("attr", name),))
                    return self.attach(module, path)
        name = self._attribute(_short_path(path))
        self._attach_whole(module, f"self.{name}", (("attr", name),))
        return f"self.{name}"

    def _attach_whole(self, module, text, accessor):
        self.init_lines.append(f"{text} = {self.construct(module, 0)}")  # (indented with the rest of __init__)
        self.bindings.append(("module", accessor, module))
        self.owners.append((module, text, accessor))
        self.attached[id(module)] = (text, accessor)

    # ---- leaves: parameters and constants of the caller's ---------------------------
    def leaf(self, value):
        known = self.leaves.get(id(value))
        if known is not None:
            return known
        for owner, text, accessor in self.owners:
            for name, param in owner.named_parameters():
                if param is value:
                    full_text, _ = _extend(text, accessor, name.split("."))
                    self.leaves[id(value)] = full_text
                    return full_text
        dotted = self.traced.leaf_paths.get(id(value))
        if dotted is not None:  # a parameter of the model: where its module is
            parent, _, own = dotted.rpartition(".")
            text, accessor, names = self._place(parent)
            name = self._segment(names, own)
        else:  # a Value a function reads: by its label, or by how the function reaches it
            text, accessor = "self", ()
            name = self._attribute(value.label or _short_path(self.traced.leaf_path_of(value)) or "param")
        where, accessor = f"{text}.{name}", accessor + (("attr", name),)
        dtype = _dtype_text(value.dtype)
        shape = _shape_text(value.shape)
        if value.requires_grad or dotted is not None or _is_parameter(value, self.traced):
            frozen = "" if value.requires_grad else ", requires_grad=False"
            self.init_lines.append(f"{where} = nn.Parameter(torch.zeros({shape}, dtype={dtype}){frozen})")
            self.bindings.append(("parameter", accessor, value))
        else:
            holder = text if text != "self" else "self"
            self.init_lines.append(f'{holder}.register_buffer("{name}", torch.zeros({shape}, dtype={dtype}))')
            self.bindings.append(("buffer", accessor, value._data.copy()))
        self.leaves[id(value)] = where
        return where

    # ---- operands ----------------------------------------------------------------
    def operand(self, value, time):
        """The text of a Value as read at `time`: a variable, an argument, a parameter or a constant."""
        traced = self.traced
        step = traced.producer(value, time, self.whole)
        if step is not None:
            key = step.key
            names = self.variables[key]
            return _Operand(names[step.obj[1]] if step.kind == "call" else names[0])
        k = traced.argument_index(value)
        if k is not None:
            return _Operand(self.params[k])
        if traced.is_leaf(value):
            return _Operand(self.leaf(value))
        data = value._data
        if np.ndim(data) == 0 and traced.host_record(data) is None:
            operand = _Operand(f"torch.tensor({_number(np.asarray(data)[()])}, dtype={_dtype_text(value.dtype)})")
            operand.number = _number(np.asarray(data)[()])
            return operand
        return _Operand(self.array(np.asarray(data) if np.ndim(data) == 0 else data, "constant"))

    # ---- the program ----------------------------------------------------------------
    def write(self):
        traced = self.traced
        self.params = []
        for name in traced.arg_names:
            self.params.append(self.names.new(name if name != "self" else "x", "x"))
        calls = [c for c in traced.calls if c.module is not self.root and counterpart(c.module) is not None]
        self.whole = {id(c) for c in calls}
        if self.subclass:
            self.owners.append((self.root, "self", ()))
            self.bindings.append(("module", (), self.root))
        if self.root is not None:  # in the model's own order (each placed under the highest layer holding it)
            position = {id(m): k for k, (_, m) in enumerate(self.root.named_modules())}
            order = sorted(calls, key=lambda c: position.get(id(c.module), len(position)))
        else:  # a function: the largest first, so that a layer inside another is reached through it
            order = sorted(calls, key=lambda c: -len(list(c.module.named_modules())))
        for call in order:
            self.attach(call.module, call.path)
        leaf_layer = self.subclass and not self.root._modules
        steps = [] if leaf_layer else traced.steps(self.whole)  # a layer's forward is PyTorch's own
        last_use = self._last_uses(steps)
        for position, step in enumerate(steps):
            self._write_step(step, position, last_use)
        outputs = ["x"] if leaf_layer else [self.operand(v, math.inf) for v in traced.outputs]
        returns = ", ".join(outputs) if traced.output_is_tuple else outputs[0]
        if traced.output_is_tuple and len(outputs) == 1:
            returns += ","
        return TorchProgram(self._source(returns), self.class_name, self.bindings, self.root)

    def _step_inputs(self, step):
        """(Value, time) pairs a step reads."""
        if step.kind == "op":
            return [(v, step.obj._id) for v in step.obj._inputs]
        if step.kind == "call":
            call = step.obj[0]
            return [(v, call.enter) for v in _values(call.args) + _values(tuple(call.kwargs.values()))]
        return [(x, step.obj.when) for x in step.obj.inputs if isinstance(x, Value)]

    def _last_uses(self, steps):
        """For each producing step's output: the position of the last step reading it (outputs: never)."""
        last = {}
        for position, step in enumerate(steps):
            for value, time in self._step_inputs(step):
                source = self._source_key(value, time)
                if source is not None:
                    last[source] = position
            if step.kind == "op":
                for param in step.obj._params.values():
                    for array in _arrays(param):
                        record = self.traced.host_record(array)
                        if record is not None:
                            last[(("host", id(record)), 0)] = position
        for value in self.traced.outputs:
            source = self._source_key(value, math.inf)
            if source is not None:
                last[source] = math.inf
            k = self.traced.argument_index(value)
            if k is not None:
                last[("arg", k)] = math.inf
        return last

    def _source_key(self, value, time):
        step = self.traced.producer(value, time, self.whole)
        if step is not None:
            return (step.key, step.obj[1] if step.kind == "call" else 0)
        k = self.traced.argument_index(value)
        return ("arg", k) if k is not None else None

    def _target(self, step, position, last_use, hint, label=None):
        """The variable a step assigns: the user's label, or the name of the input it
        replaces when that input is read here for the last time (``x = self.fc1(x)``)."""
        if label:
            return self.names.new(label, "x")
        inputs = self._step_inputs(step)
        if inputs:
            value, time = inputs[0]
            source = self._source_key(value, time)
            if source is not None and last_use.get(source) == position:
                text = self.operand(value, time)
                if text.isidentifier():
                    return str(text)
        return self.names.new(hint, "x")

    def _write_step(self, step, position, last_use):
        if step.kind == "host":
            record = step.obj
            symbol = _COMPARISONS.get(record.fn)
            if symbol is None or len(record.inputs) != 2:
                what = record.name or getattr(record.fn, "__name__", "an array")
                raise ExportError(
                    f"export: the model makes an array in NumPy from traced values ({what!s:.40}, by "
                    f"{getattr(record.fn, '__qualname__', record.fn)!s:.60}), which cannot be written in PyTorch; "
                    f"compute it with the engine's operations, or keep it inside a layer that has a torch.nn "
                    f"counterpart")
            a, b = [self.operand(x, record.when) if isinstance(x, Value) else _Operand(self.const(x))
                    for x in record.inputs]
            a, b = (a.number or a), (b.number or b)
            target = self.names.new("mask", "mask")
            self.variables[step.key] = [target]
            self.body.append(f"{target} = {a} {symbol} {b}")
            return
        if step.kind == "call":
            call = step.obj[0]
            module_text = self.attached[id(call.module)][0]
            args = [self._call_argument(a, call.enter) for a in call.args]
            for key, value in call.kwargs.items():
                if not key.isidentifier():
                    raise ExportError(f"export: a layer is called with the keyword {key!r:.40}, not a Python name")
                args.append(f"{key}={self._call_argument(value, call.enter)}")
            results = call.results()
            if isinstance(call.result, tuple):
                targets = [self.names.new(f"out{k}", "out") for k in range(len(results))]
            else:
                targets = [self._target(step, position, last_use, "h")]
            self.variables[step.key] = targets
            self.returned_arrays.update((id(v), t) for t, v in zip(targets, results) if isinstance(v, np.ndarray))
            self.body.append(f"{', '.join(targets)} = {module_text}({', '.join(args)})")
            return
        node = step.obj
        op = node._op
        if op.random:
            raise ExportError(f"export: the operation {op.name!r} draws random numbers; it cannot be exported")
        inputs = [self.operand(v, node._id) for v in node._inputs]
        text = self.op_text(op, inputs, node)
        target = self._target(step, position, last_use, "h", node.label)
        self.variables[step.key] = [target]
        self.body.append(f"{target} = {text}")

    def _call_argument(self, value, time):
        if isinstance(value, Value):
            return self.operand(value, time)
        for k, arg in enumerate(self.traced.call_args):
            if arg is value:
                return self.params[k]
        if id(value) in self.returned_arrays:  # the indices of a MaxPool2d(return_indices=True) kept whole
            return self.returned_arrays[id(value)]
        return self.const(value)

    def op_text(self, op, inputs, node):
        form = op.as_torch
        if form is None:
            raise ExportError(
                f"export: the operation {op.name!r} has no PyTorch form (Op(as_torch=...)), so a model using it "
                f"cannot be exported to PyTorch; declare one with the op, or compute it with other operations")
        if callable(form):
            text = form(_View(self, node), *[str(t) for t in inputs], **node._params)
        else:
            text = self._fill(op, form, inputs, node._params)
        if "F." in text:
            self.uses_functional = True
        return text

    def _fill(self, op, form, inputs, params):
        """A template (a PyTorch expression over the op's input and parameter names) filled in."""
        tree = ast.parse(form, mode="eval")
        bound = {}
        names = list(op.inputs)
        if op.variadic:
            bound[names[0].lstrip("*")] = ("list", inputs)
        else:
            for k, name in enumerate(names):
                bound[name] = ("input", inputs[k] if k < len(inputs) else _Operand("None"))
        for name, value in params.items():
            bound[name] = ("param", value)
        writer = self

        class Fill(ast.NodeTransformer):
            def generic_visit(self, node):
                for field, old in ast.iter_fields(node):
                    if isinstance(old, list):
                        setattr(node, field, [self._replace(item, node) for item in old])
                    elif isinstance(old, ast.AST):
                        setattr(node, field, self._replace(old, node))
                return node

            def _replace(self, child, parent):
                if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Load) and child.id in bound:
                    kind, value = bound[child.id]
                    if kind == "list":
                        return ast.parse("[" + ", ".join(value) + "]", mode="eval").body
                    if kind == "input":
                        in_operator = isinstance(parent, (ast.BinOp, ast.UnaryOp))
                        text = value.number if (in_operator and value.number is not None) else str(value)
                        node = ast.parse(text, mode="eval").body
                        return node
                    return ast.parse(writer.const(value, child.id), mode="eval").body
                return self.visit(child) if isinstance(child, ast.AST) else child

        return ast.unparse(Fill().visit(tree))

    # ---- the class ----------------------------------------------------------------
    def _source(self, returns):
        lines = ["import torch", "from torch import nn"]
        if self.uses_functional or any("F." in line for line in self.init_lines):
            lines.append("from torch.nn import functional as F")
        lines += ["", ""]
        if self.subclass:
            name, args, kwargs = counterpart(self.root)
            header = self.construct(self.root, 2)
            call = header[len(f"nn.{name}("):]
            lines.append(f"class {self.class_name}(nn.{name}):")
            lines.append("    def __init__(self):")
            lines.append(f"        super().__init__({call}")
            for line in self.init_lines:
                lines.append("        " + line)
            if not self.root._modules:  # a layer: its forward is PyTorch's own
                return "\n".join(lines) + "\n"
        else:
            lines.append(f"class {self.class_name}(nn.Module):")
            lines.append("    def __init__(self):")
            lines.append("        super().__init__()")
            for line in self.init_lines:
                lines.extend("        " + part for part in line.split("\n"))
        lines.append("")
        lines.append(f"    def forward(self, {', '.join(self.params)}):")
        for line in self.body:
            lines.append("        " + line)
        lines.append(f"        return {returns}")
        return "\n".join(lines) + "\n"


def _short_path(path):
    """How a function reaches a Value or a layer, without Python's inner workings:
    ``steps[0].__closure__.p`` -> ``p``."""
    if not path:
        return None
    path = path[5:] if path.startswith("self.") else path
    tail = re.split(r"\.__\w+__\b(?:\[[^]]*\])?", path)[-1].lstrip(".")
    return tail or path


def _shape_text(shape):
    return "(" + ", ".join(str(int(n)) for n in shape) + ("," if len(shape) == 1 else "") + ")"


def _same_value(value, default):
    if isinstance(value, (np.ndarray, Value)) or isinstance(default, (np.ndarray,)):
        return False
    if type(value) is not type(default) and not (isinstance(value, (int, float)) and isinstance(default, (int, float))
                                                  and not isinstance(value, bool) and not isinstance(default, bool)):
        return False
    try:
        return bool(value == default)
    except Exception:  # noqa: BLE001
        return False


def _sub_path(owner, module):
    """The path of `module` inside `owner` (a list of names), or None."""
    for name, candidate in owner.named_modules():
        if candidate is module:
            return name.split(".") if name else []
    return None


def _extend(text, accessor, segments):
    for segment in segments:
        if segment.isdigit():
            text, accessor = f"{text}[{int(segment)}]", accessor + (("item", int(segment)),)
        elif segment.isidentifier():
            text, accessor = f"{text}.{segment}", accessor + (("attr", segment),)
        else:
            raise ExportError(f"export: the layer name {segment!r:.40} is not a Python name")
    return text, accessor


def _is_parameter(value, traced):
    for module in traced.modules.values():
        for _, param in module.named_parameters():
            if param is value:
                return True
    return False


def _values(items):
    found = []
    for item in items:
        if isinstance(item, Value):
            found.append(item)
        elif isinstance(item, (list, tuple)):
            found.extend(_values(item))
    return found


def _arrays(param):
    if isinstance(param, np.ndarray):
        return [param]
    if isinstance(param, (tuple, list)):
        return [p for p in param if isinstance(p, np.ndarray)]
    return []


class _View:
    """What an op's PyTorch form (a function) is given: ``const`` and
    ``index`` to write its parameters, and the shapes of the node."""

    def __init__(self, writer, node):
        self._writer = writer
        self.shapes = [v.shape for v in node._inputs]
        self.out_shape = node.shape
        self.dtype = node.dtype

    def const(self, value, hint="c"):
        """The text of a parameter: a number, a tuple, a dtype, a tensor."""
        return self._writer.const(value, hint)

    def index(self, index):
        """The subscript for ``x[...]``."""
        return self._writer.index(index)


def write_torch(traced, class_name=None):
    """The :class:`TorchProgram` of a traced call."""
    if class_name is not None and (not isinstance(class_name, str) or identifier(class_name, "Model") != class_name):
        raise ExportError(f"export: class_name must be a Python identifier, got {class_name!r:.60}")
    return Writer(traced, class_name).write()
