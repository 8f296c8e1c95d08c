"""``Module`` and ``Parameter``: how layers hold their weights and find each other.

A Module keeps its Parameters, buffers (non-learned state such as BatchNorm's
running mean) and child Modules in three ordered dictionaries, filled simply by
assigning attributes, as in PyTorch::

    class TwoLayer(Module):
        def __init__(self):
            super().__init__()
            self.fc1 = Linear(4, 8)      # a child: its parameters become fc1.weight, fc1.bias
            self.fc2 = Linear(8, 3)

        def forward(self, x):
            return self.fc2(self.fc1(x).relu())

Calling a module runs ``forward`` inside ``autograd_core.name_scope(path)``,
where ``path`` is its dotted name from the model being called ("fc1",
"0", "encoder.fc1"), so graph drawings can group each layer's nodes in a
cluster titled by the layer (``0: Linear(4, 16)``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict, namedtuple
from collections.abc import Mapping

import numpy as np

from autograd_core import Value, name_scope
from autograd_core.compile.tracer import as_eager_value

__all__ = ["Module", "Parameter", "Sequential", "ModuleList", "Identity", "Flatten"]


class Parameter(Value):
    """A Value that a Module learns: it always requires grad and owns its data.

    It is found by ``Module.parameters()`` when assigned as a Module attribute;
    its ``label`` becomes its dotted name ("0.weight") for graph drawings,
    unless you gave it a label of your own.

    >>> w = Parameter([1.0, 2.0])
    >>> w.requires_grad, w.shape
    (True, (2,))
    """

    __slots__ = ("_auto_label",)

    def __init__(self, data, requires_grad=True, label=None):
        array = np.array(data.data if isinstance(data, Value) else data)  # an own copy
        if array.dtype.kind in "biu":
            array = array.astype(np.float64)
        super().__init__(array, requires_grad=requires_grad, label=label)
        self._auto_label = None

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


def _set_auto_label(param, name, only_if_unlabelled=False):
    """Label a Parameter with its dotted name, never overwriting a user's own label."""
    if param.label is None or (not only_if_unlabelled and param.label == param._auto_label):
        param.label = name
        param._auto_label = name


# The module whose forward is running in this thread, and its path, so a child
# called inside it can work out its own dotted path.
class _CallStack(threading.local):
    frames = None


_calls = _CallStack()

_IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class Module:
    """Base class of every layer and model.

    Subclasses call ``super().__init__()`` first, assign Parameters, buffers
    and child Modules as attributes, and define ``forward``. Calling the module
    calls ``forward``. As in PyTorch, only ``Parameter`` attributes are learned:
    wrap a weight in ``Parameter(...)``, a plain ``Value`` attribute is a constant
    to the module.

    >>> from nn import Linear, ReLU, Sequential
    >>> model = Sequential(Linear(2, 3), ReLU(), Linear(3, 1))
    >>> [name for name, _ in model.named_parameters()]
    ['0.weight', '0.bias', '2.weight', '2.bias']
    """

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # ---- attributes ------------------------------------------------------
    def _check_initialised(self, name):
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"cannot assign {name!r} before Module.__init__() is called: "
                f"call super().__init__() first in {type(self).__name__}.__init__"
            )

    def __setattr__(self, name, value):
        d = self.__dict__
        if isinstance(value, Parameter):
            self._check_initialised(name)
            self._forget(name, keep="_parameters")
            d["_parameters"][name] = value
            _set_auto_label(value, name)
        elif isinstance(value, Module):
            self._check_initialised(name)
            self._forget(name, keep="_modules")
            d["_modules"][name] = value
            for child_name, param in value._named_parameters():
                _set_auto_label(param, f"{name}.{child_name}")
        elif "_parameters" in d and name in d["_parameters"]:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} to parameter {name!r} (a Parameter or None is expected)")
            d["_parameters"][name] = None
        elif "_modules" in d and name in d["_modules"]:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} to child module {name!r} (a Module or None is expected)")
            d["_modules"][name] = None
        elif "_buffers" in d and name in d["_buffers"]:
            d["_buffers"][name] = None if value is None else np.asarray(value)
        else:
            object.__setattr__(self, name, value)

    def _forget(self, name, keep=None):
        """Drop `name` from the instance and the registries (except `keep`, so a
        reassigned parameter keeps its place in the order, as in PyTorch)."""
        d = self.__dict__
        d.pop(name, None)
        for registry in ("_parameters", "_buffers", "_modules"):
            if registry != keep:
                d[registry].pop(name, None)

    def __getattr__(self, name):
        # only called when normal lookup fails: look in the three registries
        d = self.__dict__
        for registry in ("_parameters", "_buffers", "_modules"):
            if registry in d and name in d[registry]:
                return d[registry][name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name):
        d = self.__dict__
        for registry in ("_parameters", "_buffers", "_modules"):
            if name in d.get(registry, ()):
                del d[registry][name]
                return
        object.__delattr__(self, name)

    def register_parameter(self, name, param):
        """Add a Parameter (or None) under `name`, like assigning ``self.name = param``."""
        if param is None:
            self._check_initialised(name)
            self._forget(name)
            self.__dict__["_parameters"][name] = None
        elif not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: {name!r} must be a Parameter or None, got {type(param).__name__}")
        else:
            setattr(self, name, param)

    def register_buffer(self, name, array, persistent=True):
        """Keep a NumPy array that is state but not learned (e.g. a running mean).
        Persistent buffers are part of ``state_dict()``."""
        self._check_initialised(name)
        self._forget(name)
        self.__dict__["_buffers"][name] = None if array is None else np.asarray(array)
        if not persistent:
            self._non_persistent.add(name)

    def add_module(self, name, module):
        """Add a child Module under `name` (names may be digits, as in Sequential)."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: {name!r} must be a Module, got {type(module).__name__}")
        if module is None:
            self._check_initialised(name)
            self._forget(name)
            self.__dict__["_modules"][name] = None
        else:
            setattr(self, name, module)

    # ---- walking the tree (iteratively, in definition order) --------------
    def named_modules(self, prefix=""):
        """``(dotted name, module)`` for this module (name ``prefix``, "" by
        default) and every descendant, each module once."""
        seen = set()
        stack = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            children = [
                (f"{name}.{child_name}" if name else child_name, child)
                for child_name, child in module._modules.items() if child is not None
            ]
            stack.extend(reversed(children))

    def modules(self):
        """This module and every descendant, each once (as ``named_modules`` without the names).

        >>> from nn import Linear, ReLU
        >>> [type(m).__name__ for m in Sequential(Linear(2, 3), ReLU()).modules()]
        ['Sequential', 'Linear', 'ReLU']
        """
        for _, module in self.named_modules():
            yield module

    def named_children(self):
        """``(name, module)`` for the direct children only (not grandchildren).

        >>> from nn import Linear, ReLU
        >>> [name for name, _ in Sequential(Linear(2, 3), ReLU()).named_children()]
        ['0', '1']
        """
        for name, child in self._modules.items():
            if child is not None:
                yield name, child

    def children(self):
        """The direct child modules, in the order they were assigned."""
        for _, child in self.named_children():
            yield child

    def _named_parameters(self, prefix="", recurse=True):
        seen = set()
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        for module_name, module in modules:
            for name, param in module._parameters.items():
                if param is None or id(param) in seen:
                    continue
                seen.add(id(param))
                yield (f"{module_name}.{name}" if module_name else name), param

    def named_parameters(self, prefix="", recurse=True):
        """``(dotted name, Parameter)`` pairs, PyTorch-style ("0.weight", "fc1.bias"),
        each shared Parameter once. A Parameter still without a label gets its name."""
        for name, param in self._named_parameters(prefix, recurse):
            _set_auto_label(param, name, only_if_unlabelled=True)
            yield name, param

    def parameters(self, recurse=True):
        """Every learnable Parameter, each once (what an optimizer is given)."""
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_buffers(self, prefix="", recurse=True):
        """``(dotted name, array)`` for the non-learned state (BatchNorm's running statistics).

        >>> from nn import BatchNorm1d
        >>> [name for name, _ in Sequential(BatchNorm1d(3)).named_buffers()]
        ['0.running_mean', '0.running_var', '0.num_batches_tracked']
        """
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        for module_name, module in modules:
            for name, buffer in module._buffers.items():
                if buffer is not None:
                    yield (f"{module_name}.{name}" if module_name else name), buffer

    def buffers(self, recurse=True):
        """The buffer arrays (``named_buffers`` without the names)."""
        for _, buffer in self.named_buffers(recurse=recurse):
            yield buffer

    def apply(self, fn):
        """Call ``fn(module)`` on every descendant and on this module (children first)."""
        for module in reversed(list(self.modules())):
            fn(module)
        return self

    # ---- modes and gradients ------------------------------------------------
    def train(self, mode=True):
        """Training mode (Dropout drops, BatchNorm uses batch statistics); returns self."""
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self):
        """Evaluation mode (Dropout is the identity, BatchNorm uses running statistics)."""
        return self.train(False)

    def zero_grad(self, set_to_none=True):
        """Forget every parameter's gradient (``None`` by default, as PyTorch)."""
        for param in self.parameters():
            param.zero_grad(set_to_none=set_to_none)

    def astype(self, dtype):
        """Convert every Parameter and floating buffer to `dtype` (e.g. ``np.float32``); returns self."""
        dtype = np.dtype(dtype)
        for param in self.parameters():
            param.data = param.data.astype(dtype)
        for module in self.modules():
            for name, buffer in module._buffers.items():
                if buffer is not None and buffer.dtype.kind == "f":
                    module._buffers[name] = buffer.astype(dtype)
        return self

    def double(self):
        """Parameters and buffers in float64 (as PyTorch's ``.double()``); returns self."""
        return self.astype(np.float64)

    def float(self):
        """Parameters and buffers in float32 (as PyTorch's ``.float()``); returns self."""
        return self.astype(np.float32)

    def requires_grad_(self, requires_grad=True):
        """Freeze (``False``) or unfreeze every Parameter; returns self.
        A frozen parameter gets no gradient and costs nothing in backward."""
        for param in self.parameters():
            param.requires_grad = bool(requires_grad)
        return self

    # ---- state ---------------------------------------------------------------
    def state_dict(self):
        """An ordered ``{dotted name: NumPy array}`` of every Parameter and
        persistent buffer (copies), with PyTorch's names, so it can be compared
        with or loaded from a PyTorch model of the same architecture."""
        state = OrderedDict()
        for module_name, module in self.named_modules():
            prefix = f"{module_name}." if module_name else ""
            for name, param in module._parameters.items():
                if param is not None:
                    state[prefix + name] = np.array(param.data)
            for name, buffer in module._buffers.items():
                if buffer is not None and name not in module._non_persistent:
                    state[prefix + name] = np.array(buffer)
        return state

    def load_state_dict(self, state_dict, strict=True):
        """Copy arrays from `state_dict` into this module's Parameters and buffers.

        Values may be NumPy arrays, or anything ``numpy.asarray`` understands
        (a PyTorch tensor after ``.detach()``; tensors are detached here). With
        ``strict=True`` every name must match exactly; any shape mismatch is an
        error naming the entry and both shapes. Returns the missing and
        unexpected names.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(
                f"load_state_dict into {type(self).__name__}: expects a mapping of names to arrays "
                f"(from state_dict() or nn.load(path)), got {type(state_dict).__name__}"
            )
        targets = OrderedDict()
        for module_name, module in self.named_modules():
            prefix = f"{module_name}." if module_name else ""
            for name, param in module._parameters.items():
                if param is not None:
                    targets[prefix + name] = ("parameter", module, name)
            for name, buffer in module._buffers.items():
                if buffer is not None and name not in module._non_persistent:
                    targets[prefix + name] = ("buffer", module, name)
        missing = [k for k in targets if k not in state_dict]
        unexpected = [k for k in state_dict if k not in targets]
        problems = []
        if strict and missing:
            problems.append(f"missing keys: {', '.join(missing)}")
        if strict and unexpected:
            problems.append(f"unexpected keys: {', '.join(unexpected)}")
        arrays = {}
        for key, (kind, module, name) in targets.items():
            if key not in state_dict:
                continue
            array = _to_array(state_dict[key], key)
            current = module._parameters[name] if kind == "parameter" else module._buffers[name]
            expected = tuple(current.shape)
            if array.shape != expected:
                problems.append(f"{key}: shape {array.shape} in the state dict, {expected} in the model")
            arrays[key] = (array, current.dtype)
        if problems:
            raise ValueError(
                f"load_state_dict into {type(self).__name__}: the state dict does not fit the model; "
                + "; ".join(problems)
            )
        converted, lost = {}, []
        for key, (array, dtype) in arrays.items():
            converted[key] = _converted(array, dtype, key, lost)
        if lost:
            from .serialization import CheckpointError  # (serialization imports this module)

            raise CheckpointError(
                f"load_state_dict into {type(self).__name__}: " + "; ".join(lost)
                + "; nothing was loaded. Load into a model of a wider dtype (e.g. model.float()), "
                  "or rescale the values first"
            )
        for key, array in converted.items():
            kind, module, name = targets[key]
            if kind == "parameter":
                module._parameters[name].data = array
            else:
                module._buffers[name] = array
        return _IncompatibleKeys(missing, unexpected)

    # ---- calling -------------------------------------------------------------
    def forward(self, *args, **kwargs):
        """The computation; every subclass defines it. Call the module (``model(x)``),
        not ``forward``, so the graph gets the module's scope for drawings."""
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args, **kwargs):
        frames = _calls.frames
        if frames is None:
            frames = _calls.frames = []
        if frames:
            parent, parent_path = frames[-1]
            name = _child_name(parent, self)
            path = parent_path if name is None else (f"{parent_path}.{name}" if parent_path else name)
        else:
            path = ""  # the model being called: its children are named from here
        frames.append((self, path))
        try:
            if path:
                with name_scope(path, title=self._title):  # the title is made only if the graph is drawn
                    return self.forward(*args, **kwargs)
            return self.forward(*args, **kwargs)
        finally:
            frames.pop()

    # ---- leaving for PyTorch ---------------------------------------------------
    def as_torch(self):
        """This layer's counterpart in ``torch.nn``, for ``autograd_core.export``:
        the class name and the arguments that build it, ``("Linear", (4, 16),
        {"dtype": float64})``; its ``state_dict`` must load into it as it is.
        None (the default) for a model of your own: its forward is traced and
        written step by step.

        >>> from nn import Linear, ReLU
        >>> ReLU().as_torch(), Linear(4, 16).as_torch()[:2], Module().as_torch()
        (('ReLU', (), {}), ('Linear', (4, 16)), None)
        """
        return None

    # ---- display -------------------------------------------------------------
    def extra_repr(self):
        """The arguments shown between the parentheses of ``repr``."""
        return ""

    def _title(self):
        """The module in one short line, for its cluster in graph drawings
        (``0: ReLU()``): a container by its class, a layer as its repr."""
        return type(self).__name__ if self._modules else f"{type(self).__name__}({self.extra_repr()})"

    def __repr__(self):
        extra = self.extra_repr()
        children = list(self.named_children())
        if not children:
            return f"{type(self).__name__}({extra})"
        lines = [f"{type(self).__name__}(" + (extra if extra else "")]
        for name, child in children:
            child_text = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {child_text}")
        return "\n".join(lines) + "\n)"


def _child_name(parent, child):
    """The dotted name of `child` inside `parent`: a direct child, or a deeper
    descendant called directly (a layer of a ModuleList the parent loops over)."""
    for name, module in parent._modules.items():
        if module is child:
            return name
    for name, module in parent.named_modules():
        if module is child and name:
            return name
    return None


def _converted(array, dtype, key, lost):
    """A copy of `array` in the model's `dtype`; when that changes a value's
    kind (a finite number past the dtype's range becomes inf, an integer
    wraps), a line naming the entry is added to `lost` instead of NumPy's
    RuntimeWarning."""
    with np.errstate(over="ignore", invalid="ignore"):
        result = np.array(array, dtype=dtype)
    if not array.size or array.dtype.kind not in "biuf":
        return result
    if dtype.kind == "f":
        spoilt = np.isinf(result) & ~np.isinf(array)
        limit = f"its largest finite value is {np.finfo(dtype).max}"
    elif dtype.kind in "iu":
        info = np.iinfo(dtype)
        spoilt = (array < info.min) | (array > info.max)
        if array.dtype.kind == "f":
            spoilt |= ~np.isfinite(array)
        limit = f"it holds whole numbers from {info.min} to {info.max}"
    else:
        return result
    if spoilt.any():
        first = tuple(int(i) for i in np.argwhere(spoilt)[0])
        where = f" at index {first}" if first else ""
        lost.append(f"{key!r} ({array.dtype}, shape {array.shape}) holds {array[first].item()!r}{where}, which "
                    f"{dtype} cannot hold ({limit}; {int(spoilt.sum())} such value(s) in the entry)")
    return result


def _to_array(value, key):
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a PyTorch tensor
        value = value.detach().cpu().numpy()
    elif isinstance(value, Value):
        value = value.data
    try:
        return np.asarray(value)
    except Exception as exc:
        raise TypeError(f"load_state_dict: entry {key!r} is not array data ({type(value).__name__}: {exc})") from None


class Sequential(Module):
    """Modules applied one after another; children are named "0", "1", ...

    >>> from nn import Linear, Tanh
    >>> net = Sequential(Linear(2, 4), Tanh(), Linear(4, 1))
    >>> net(np.zeros((5, 2))).shape
    (5, 1)
    """

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], (dict, OrderedDict)):
            for name, module in modules[0].items():
                self.add_module(name, module)
        else:
            for index, module in enumerate(modules):
                self.add_module(str(index), module)

    def forward(self, x):
        for module in self._modules.values():
            if module is not None:
                x = module(x)
        return x

    def __getitem__(self, index):
        modules = list(self._modules.values())
        if isinstance(index, slice):
            return Sequential(*modules[index])
        return modules[index]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module):
        """Add `module` as the last step, named by its position; returns the Sequential."""
        self.add_module(str(len(self._modules)), module)
        return self

    def as_torch(self):
        names = list(self._modules)
        if names != [str(k) for k in range(len(names))] or any(m is None for m in self._modules.values()):
            return None  # named steps: written as a module of its own, one attribute per step
        return "Sequential", tuple(self._modules.values()), {}


class ModuleList(Module):
    """A list of Modules whose parameters the parent can see (named "0", "1", ...).

    Unlike Sequential it has no ``forward``: the parent calls the layers itself.

    >>> from nn import Linear
    >>> layers = ModuleList([Linear(2, 2), Linear(2, 1)])
    >>> x = np.ones((4, 2))
    >>> for layer in layers:
    ...     x = layer(x)
    >>> x.shape, len(list(layers.parameters()))
    ((4, 1), 4)
    """

    def __init__(self, modules=()):
        super().__init__()
        for module in modules:
            self.append(module)

    def append(self, module):
        """Add `module` at the end, named by its position; returns the list."""
        self.add_module(str(len(self._modules)), module)
        return self

    def __getitem__(self, index):
        return list(self._modules.values())[index]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def as_torch(self):
        if any(m is None for m in self._modules.values()):
            return None
        return "ModuleList", (list(self._modules.values()),), {}


class Identity(Module):
    """Returns its input unchanged (a placeholder layer).

    >>> Identity()(np.array([1.0, 2.0]))
    array([1., 2.])
    """

    def forward(self, x):
        return x

    def as_torch(self):
        return "Identity", (), {}


class Flatten(Module):
    """Flattens dims ``start_dim..end_dim`` into one (by default all but the batch dim).

    >>> Flatten()(np.zeros((5, 2, 3))).shape
    (5, 6)
    """

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        x = as_eager_value(x) if isinstance(x, Value) else Value(x, requires_grad=False)
        start = self.start_dim % x.ndim
        end = self.end_dim % x.ndim
        flat = 1
        for n in x.shape[start:end + 1]:  # (not -1: a batch of 0 leaves it undetermined)
            flat *= n
        return x.reshape(x.shape[:start] + (flat,) + x.shape[end + 1:])

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"

    def as_torch(self):
        return "Flatten", (), {"start_dim": self.start_dim, "end_dim": self.end_dim}
