"""The graph and the backward pass.

A :class:`Value` is a node of a computation graph. An operation (see
``ops.py``) computes its result with NumPy and records, on the result, which
operation made it, from which inputs and with which parameters.
:func:`backpropagate` then visits the graph once, newest node first, and at
every node asks the operation for each input's share of the gradient:
*upstream gradient times local gradient* (elementwise ops) or the op's
vector-Jacobian product (structural ops), summed back to the input's shape.
That one loop serves ``backward()``, ``grad()``, ``grad(create_graph=True)``
and the backprop stepper.

Read it in this order: :class:`Value` (its anatomy is a table in its
docstring), :func:`record` (what an operation leaves on its result),
:func:`backpropagate` (the loop) with :func:`sum_to_shape` (broadcasting),
:func:`_backpropagate_fast` (the same loop written for speed, which
``backward()`` runs) and :func:`grad`.

Two neighbours hold what the loop consults but a first reading can skip:
``modes.py`` (``no_grad``, ``detect_anomaly``, ``name_scope``: what
``record`` reads on every operation) and ``saved.py`` (how a backward
notices that data it saved was changed in place, or freed).
"""

from __future__ import annotations

import contextlib
import itertools
import warnings
from heapq import heappop, heappush
from operator import attrgetter

import numpy as np

from .errors import AnomalyError, GraphDroppedWarning, ShapeError
from .modes import _current_modes, _set_mode, _user_frame, quiet_float_errors
from .modes import detect_anomaly, enable_grad, is_grad_enabled, name_scope, no_grad  # noqa: F401 (engine.no_grad... are public)
from .modes import _titled_scope  # noqa: F401 (pickles made before modes.py name engine._titled_scope)
from .saved import (
    _FREED,
    _check_not_freed_or_modified,
    _check_saved_data,
    _data_epoch,
    _free,
    _settle_snapshot,
    _watch_in_place_writes,
)

__all__ = [
    "Value",
    "no_grad",
    "enable_grad",
    "is_grad_enabled",
    "detect_anomaly",
    "name_scope",
    "grad",
]


# --------------------------------------------------------------------------
# The Value
# --------------------------------------------------------------------------
_next_id = itertools.count().__next__  # creation numbers: an input is always numbered before its results
_new_value = object.__new__  # Value has no __new__ of its own: skip the lookup


class Value:
    """A node of the graph: NumPy data, its gradient, and how it was made.

    ``data`` is a float array (or a NumPy float scalar for shape ``()``);
    Python numbers become float64, float32 stays float32, integers and
    booleans are promoted to float64. An array whose dtype already fits is
    used without a copy (like ``torch.as_tensor``).

    ``grad`` is ``None`` until a backward pass reaches the Value, then an
    array of the same shape and dtype as ``data``. Leaves (Values you create)
    accumulate gradients across backward calls, as in PyTorch; results of
    operations get a fresh ``grad`` on every backward, for display.

    >>> a = Value(2.0, label="a"); b = Value(-3.0, label="b")
    >>> c = a * b + a
    >>> c.backward()
    >>> a.grad, b.grad
    (np.float64(-2.0), np.float64(2.0))

    Where its operators and methods are. This class holds the data, the
    slots and ``backward()``; ``__mul__``, ``__add__``, ``tanh``, ``sum`` and
    every other operation are not written here. Each operation is declared
    once in ``ops.py`` (or ``ops_math.py``, ``ops_select.py``, ``conv.py``),
    and its declaration names the methods it becomes (``mul``'s says
    ``methods=("__mul__",), reflected=("__rmul__",)``); ``Op.public`` then
    sets them on this class when those modules are imported. What is no
    operation of its own (the comparisons, ``.T``, ``__rtruediv__``;
    ``argmax``, ``isnan``...) is set at the end of ``ops.py`` and of
    ``ops_select.py``.

    Anatomy. Every slot is set in one place, :func:`_fill` (called by
    ``Value(...)``, by :func:`record` for an operation's result and by
    :func:`_constant`); the table says what each one is for.

    ================== ===================================== ======================== ==============================
    slot               what it serves                        written by               read by
    ================== ===================================== ======================== ==============================
    ``_data``          the numbers (``.data``)               _fill, ``.data = ...``    ops, the backward loop, views
    ``grad``           the gradient, after backward          the backward pass, user   user, optimizers, views
    ``requires_grad``  whether gradients flow to it          _fill (user, for leaves)  record, the backward loop
    ``label``          a name for drawings and messages      user                      drawings, stepper, errors
    ``_op``            the Op that made it (None: a leaf)    _fill (record)            the backward loop, views, compile
    ``_inputs``        the Values it was made from           _fill (record)            the backward loop, views, compile
    ``_params``        the op's non-Value arguments (axis…)  _fill (record)            gradient rules, compile, views
    ``_saved``         kept by the forward for the backward  _fill (record), freed by  gradient rules, compile
                       (an op that ``saves``; else None)     the backward
    ``_id``            creation number: the backward order   _fill, unpickling         the backward loop
    ``_version``       bumped when ``.data`` is assigned     ``.data = ...``           in-place checks at backward
    ``_input_versions`` the inputs' versions when recorded   _fill (record)            in-place checks at backward
    ``_guard``         saved for backward: True, or a copy   _fill, in-place watching  in-place checks at backward
                       of the array handed out by ``.data``
    ``_epoch``         data counter when recorded; None      _fill, backward (frees)   the backward loop (checks)
                       once a backward freed the node
    ``_scope``         the ``name_scope`` it was made in     _fill                     drawings (clusters)
    ``_trace``         where user code made it               record, in detect_anomaly anomaly messages
    ================== ===================================== ======================== ==============================
    """

    __slots__ = (
        "_data", "grad", "requires_grad", "label", "_op", "_inputs", "_params", "_saved",
        "_id", "_version", "_input_versions", "_scope", "_trace", "_guard", "_epoch",
        "__weakref__",
    )

    # ---- NumPy meets a Value -------------------------------------------------
    # NumPy would otherwise turn the Value into a plain array (through
    # __array__) and compute a result that has no graph behind it: the
    # gradient would be silently lost. So NumPy functions and ufuncs called
    # with a Value are refused with the engine operation to use instead,
    # except the operators, which NumPy routes here for `ndarray + Value`:
    # those run the Value's own reflected operator, as Python would.
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        reflected = _REFLECTED_UFUNCS.get(ufunc.__name__)
        if (
            reflected is not None and method == "__call__" and not kwargs
            and len(inputs) == 2 and inputs[1] is self and not isinstance(inputs[0], Value)
        ):
            return getattr(self, reflected)(inputs[0])
        raise TypeError(_numpy_refusal(f"np.{ufunc.__name__}", ufunc.__name__, method, kwargs))

    def __array_function__(self, func, types, args, kwargs):
        name = func.__name__
        if name in _DESCRIPTIVE_FUNCTIONS:  # np.shape(v), np.ndim(v), np.size(v): no data flows
            return func(*[a._data if isinstance(a, Value) else a for a in args], **kwargs)
        module = func.__module__ or "numpy"
        qualified = "np.linalg." + name if "linalg" in module else "np." + name
        raise TypeError(_numpy_refusal(qualified, name, "__call__", {}))

    def __init__(self, data, requires_grad=True, label=None):
        _fill(self, as_data(data), bool(requires_grad), label, _current_modes().scope)

    # ---- data and its description ------------------------------------------
    @property
    def data(self):
        """The NumPy data. Assigning a new array bumps the Value's version so a
        pending backward that saved the old one notices; writing into the
        array in place (``v.data[0] = 5``) while a pending backward needs it
        is noticed at that backward (see ``saved.py``)."""
        if self._guard is True:
            _watch_in_place_writes(self)
        return self._data

    @data.setter
    def data(self, new):
        self._data = new if type(new) is np.ndarray and new.dtype.kind == "f" else as_data(new)
        self._version += 1
        _data_epoch[0] += 1
        self._guard = None  # the version bump already tells every pending backward

    @property
    def shape(self):
        return self._data.shape

    @property
    def dtype(self):
        return self._data.dtype

    @property
    def ndim(self):
        return self._data.ndim

    @property
    def size(self):
        return self._data.size

    @property
    def op(self):
        """Name of the operation that produced this Value ('' for a leaf)."""
        return self._op.name if self._op is not None else ""

    @property
    def inputs(self):
        """The Values this one was computed from (empty for a leaf); a
        Python number in the expression is a constant Value among them."""
        return self._inputs

    @property
    def is_leaf(self):
        return self._op is None

    @property
    def scope(self):
        """The ``name_scope`` (for nn layers, the module path) it was made in."""
        return self._scope

    def __len__(self):
        if self._data.ndim == 0:
            raise TypeError("len() of a scalar Value (shape ())")
        return len(self._data)

    def __iter__(self):
        # without this, Python would iterate a scalar through __getitem__ and find nothing
        if self._data.ndim == 0:
            raise TypeError("iteration over a scalar Value (shape ()); use v.item() for its number")
        return (self[k] for k in range(len(self._data)))

    def __bool__(self):
        # NumPy's rule: one element is true when nonzero; more are ambiguous and raise
        return bool(self._data)

    def item(self):
        """The value of a one-element Value as a Python float."""
        if self._data.size != 1:
            raise ValueError(f"item() needs a Value with one element, this one has shape {self.shape}")
        return self._data.item()

    def numpy(self):
        """The data as a NumPy array (shared, not copied)."""
        return np.asarray(self.data)

    def __array__(self, dtype=None, copy=None):
        # NumPy's protocol: copy=True (what np.array(v) asks) must not share the
        # data, or a saved "snapshot" of a parameter would change as it trains
        if copy:
            return np.array(self._data, dtype=dtype, copy=True)
        array = np.asarray(self.data)
        if dtype is None or array.dtype == dtype:
            return array
        if copy is False:
            raise ValueError(f"Value.__array__: converting {array.dtype} to {np.dtype(dtype)} needs a copy (copy=False)")
        return array.astype(dtype)

    def __float__(self):
        """``float(v)`` (and ``math.exp(v)``, which calls it) gives a plain Python
        number, as PyTorch does for a one-element tensor. That number is
        outside the graph: used again in an expression it is a constant, and
        no gradient flows through it. So for a Value that requires grad,
        while recording is on, a :class:`GraphDroppedWarning` says so (once
        per place in your code); use ``v.item()`` when a number is what you
        want, or the engine's operation (``v.exp()``...) to stay in the graph.

        >>> import math, warnings
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     y = math.exp(Value(0.0))
        >>> y, caught[0].category.__name__
        (1.0, 'GraphDroppedWarning')
        """
        if self.requires_grad and _current_modes().grad_enabled:
            _warn_float_drops_the_graph()
        return float(self.item())

    def __reduce_ex__(self, protocol):
        """Pickling and copying. A leaf keeps its data, ``requires_grad``,
        label and ``.grad``; the result of an operation is pickled as a new
        leaf holding its data (what PyTorch does with a non-leaf tensor: the
        graph behind it is not pickled, ``requires_grad`` is kept). Either way
        the copy is a new node with its own place in creation order.

        >>> import pickle
        >>> x = Value([1.0, 2.0]); y = pickle.loads(pickle.dumps(x * 2))
        >>> y.data.tolist(), y.requires_grad, y.is_leaf
        ([2.0, 4.0], True, True)
        """
        if self._op is not None:
            return (_unpickled_leaf, (self._data, self.requires_grad, self.label, self._scope))
        return super().__reduce_ex__(protocol)

    def __setstate__(self, state):
        _, slots = state
        _fill(self, slots["_data"], slots["requires_grad"], slots.get("label"), slots.get("_scope"))
        for name, value in slots.items():
            if name == "grad" or name not in Value.__slots__:  # its gradient, and a subclass's own slots
                object.__setattr__(self, name, value)

    def detach(self):
        """A constant Value sharing this one's data, outside any graph."""
        return Value(self.data, requires_grad=False, label=self.label)

    def zero_grad(self, set_to_none=True):
        """Forget the gradient: ``None`` by default (as PyTorch), zeros if asked."""
        self.grad = None if set_to_none else np.zeros_like(self._data)[()]

    def __repr__(self):
        label = f", label={self.label!r}" if self.label is not None else ""
        if self._data.ndim == 0:
            grad = "None" if self.grad is None else _format_scalar(self.grad)
            return f"Value(data={_format_scalar(self._data)}, grad={grad}{label})"
        data = np.array2string(self._data, precision=4, threshold=20, edgeitems=2)
        grad = "None" if self.grad is None else "<computed>"
        return f"Value(shape={self.shape}, dtype={self.dtype}, data={data}, grad={grad}{label})"

    # Values are nodes: hashed by identity, while == compares data elementwise.
    __hash__ = object.__hash__

    # ---- backward ----------------------------------------------------------
    def backward(self, grad=None, retain_graph=False, create_graph=False):
        """Backpropagate from this Value, filling ``.grad`` on the graph behind it.

        On a one-element Value the seed gradient is 1; on any other shape pass
        ``grad`` (an array of this Value's shape). Leaves accumulate into
        ``.grad``; every other node gets a fresh ``.grad`` for display. The
        graph is freed afterwards unless ``retain_graph=True``. With
        ``create_graph=True`` the leaves' ``.grad`` are Values whose own graph
        can be differentiated again.

        >>> x = Value(3.0); y = x * x
        >>> y.backward(); x.grad
        np.float64(6.0)
        """
        if not self.requires_grad:
            raise RuntimeError(
                "backward(): this Value does not require grad, so no graph leads to it "
                "(it was made from constants or inside no_grad())"
            )
        seed = _seed_gradient(self, grad, "backward()")
        if create_graph or _current_modes().anomaly:
            gradients = backpropagate([self], [seed], retain_graph, create_graph)
        else:
            gradients = _backpropagate_fast([self], [seed], retain_graph)
        _store_gradients(gradients.items(), [seed])


def _unpickled_leaf(data, requires_grad, label, scope):
    leaf = Value(data, requires_grad=requires_grad, label=label)
    leaf._scope = scope  # drawings still group it with its layer
    return leaf


# ufuncs that are Python operators: `ndarray + Value` reaches Value.__array_ufunc__
# as np.add(ndarray, Value), and runs Value.__radd__ as Python would have
_REFLECTED_UFUNCS = {
    "add": "__radd__", "subtract": "__rsub__", "multiply": "__rmul__", "true_divide": "__rtruediv__",
    "divide": "__rtruediv__", "power": "__rpow__", "matmul": "__rmatmul__",
    "remainder": "__rmod__", "floor_divide": "__rfloordiv__",
    "less": "__gt__", "less_equal": "__ge__", "greater": "__lt__", "greater_equal": "__le__",
    "equal": "__eq__", "not_equal": "__ne__",
}
_DESCRIPTIVE_FUNCTIONS = frozenset({"shape", "ndim", "size"})

# What to use instead of a NumPy function or ufunc called with a Value: the operation
# that declares it (Op(numpy=...)), else the package's function of that name (argsort,
# isnan...), found by _engine_equivalent. Besides them, two compositions of operations,
# and what the engine does not have.
_ENGINE_RECIPES = {"norm": "(v ** 2).sum().sqrt()", "square": "v * v (or v ** 2)"}
_NOT_IN_THE_ENGINE = frozenset({"median", "percentile", "quantile"})
_OPERATOR_FORMS = {  # an op installed as this method of Value is written so
    "__add__": "a + b", "__sub__": "a - b", "__mul__": "a * b", "__truediv__": "a / b", "__pow__": "a ** b",
    "__matmul__": "a @ b", "__neg__": "-v", "__abs__": "abs(v)",
}


def _engine_equivalent(name):
    """How to call the engine's replacement of NumPy's `name`, or None:
    the operation that names it in its declaration (``Op.numpy``), or a
    function the package exports under that name, written as
    :func:`_how_to_call` writes it."""
    import autograd_core
    from .ops import OPS

    if name in _ENGINE_RECIPES:
        return _ENGINE_RECIPES[name]
    for op in OPS.values():
        if name in op.numpy and op.function is not None:
            return _how_to_call(op.function, op.methods)
    fn = getattr(autograd_core, name, None) if name in getattr(autograd_core, "__all__", ()) else None
    if callable(fn):
        return _how_to_call(fn, (name,) if getattr(Value, name, None) is fn else ())
    return None


def _how_to_call(fn, methods):
    """The call of the engine's function `fn`, installed as `methods` of Value:
    its method with its parameters, or its operator, then the other way to
    call it (``v.sum(axis=None, keepdims=False) (or autograd_core.sum(v, ...))``,
    ``a @ b (or autograd_core.matmul(a, b))``, ``v.abs() (or abs(v))``); a
    function that is neither, with its parameters
    (``autograd_core.where(condition, a, b)``)."""
    import inspect

    signature = inspect.signature(fn)
    first, *rest = signature.parameters.values()
    function = f"autograd_core.{fn.__name__}"
    operator = next((_OPERATOR_FORMS[m] for m in methods if m in _OPERATOR_FORMS), None)
    method = next((m for m in methods if not m.startswith("__")), None)
    if method is not None:
        alternative = operator or f"{function}(v{', ...' if rest else ''})"
        return f"v.{method}{signature.replace(parameters=rest)} (or {alternative})"
    if operator is not None:
        on_v = "b" not in operator  # a unary operator: -v
        parameters = [first.replace(name="v")] + rest if on_v else [first, *rest]
        return f"{operator} (or {function}{signature.replace(parameters=parameters)})"
    return f"{function}{signature}"


def _numpy_refusal(called, name, method, kwargs):
    """The message for a NumPy function or ufunc called with a Value."""
    what = f"{called}(...)" if method == "__call__" else f"{called}.{method}(...)"
    head = f"{what} got a Value: NumPy would compute on its data and drop the graph, so its gradient would be lost."
    if "out" in kwargs:
        return f"{head} A Value's data cannot be written through out= either: compute a new Value instead."
    if name in _NOT_IN_THE_ENGINE:
        return (f"{head} The engine has no {name} yet: use v.data (or v.detach()) for a constant copy "
                f"if you do not need its gradient.")
    use = _engine_equivalent(name)
    if use is not None:
        return f"{head} Use the engine's operation: {use}."
    return (f"{head} Use the engine's operation of that name (see autograd_core.ops.OPS), or pass "
            f"v.data (or v.detach()) when you want a constant without gradient.")


def _format_scalar(x):
    return f"{float(x):.6g}"


def _seed_gradient(output, grad, where):
    if grad is None:
        if output.size != 1:
            raise RuntimeError(
                f"{where}: the output has shape {output.shape}; an implicit gradient exists only "
                f"for one-element outputs. Pass grad= an array of shape {output.shape} "
                f"(e.g. np.ones_like(y.data)), or reduce it first with .sum() or .mean()"
            )
        data = output._data
        # a one-element output: 1 of its dtype (np.ones_like is a Python-level call, 3 µs a step)
        return data.dtype.type(1) if data.ndim == 0 else np.ones_like(data)
    if isinstance(grad, Value):
        grad = grad._data
    try:
        grad = np.asarray(grad, dtype=output.dtype)
    except (ValueError, TypeError):
        raise TypeError(f"{where}: grad must be numbers of shape {output.shape}, got {type(grad).__name__}") from None
    if grad.shape != output.shape:
        raise ShapeError(f"{where}: grad has shape {grad.shape}, but the output has shape {output.shape}")
    return grad[()] if grad.ndim == 0 else grad


# --------------------------------------------------------------------------
# Data conversion
# --------------------------------------------------------------------------
_FLOAT_KINDS = "f"
_PROMOTED_KINDS = "biu"  # bool, signed and unsigned integers become float64


def _warn_float_drops_the_graph():
    """The warning of ``float(v)`` (and of a compiled result's): the code that called float() is named."""
    warnings.warn(
        "float() of a Value that requires grad (also through math.exp(v), math.log(v)...) gives a "
        "plain number outside the graph: no gradient will flow through it. Use the engine's "
        "operation to stay in the graph (v.exp(), v.log(), v.sqrt(), v.tanh()...), or v.item() "
        "(or float(v.detach())) when a constant number is what you want",
        GraphDroppedWarning,
        stacklevel=3,
    )


def _refuse_if_it_ends_the_graph(x):
    """Raise where `x` is a compiled function's result: taken as a constant, its gradient would be lost."""
    ends_the_graph = getattr(type(x), "_ends_the_graph", None)
    if ends_the_graph is not None:
        ends_the_graph(x)


def as_data(x, what="Value"):
    """Turn user data into what a Value holds: a floating NumPy array, or a
    NumPy float scalar for shape ``()``.

    Python numbers become float64; float16/32/64 arrays keep their dtype;
    booleans and integers are promoted to float64; anything else (strings,
    objects, complex numbers) is refused with a TypeError.
    """
    if isinstance(x, Value):
        raise TypeError(
            f"{what}: got a Value where data was expected; use v.data for its "
            f"array, or v.detach() for a constant copy in the graph"
        )
    if isinstance(x, float):  # the commonest case first
        return np.float64(x)
    _refuse_if_it_ends_the_graph(x)
    try:
        array = np.asarray(x)
    except (ValueError, TypeError) as exc:  # ragged lists and the like
        raise TypeError(f"{what}: cannot turn {type(x).__name__} into a numeric array ({exc})") from None
    kind = array.dtype.kind
    if kind in _PROMOTED_KINDS:
        array = array.astype(np.float64)
    elif kind not in _FLOAT_KINDS:
        described = "complex numbers" if kind == "c" else f"dtype {array.dtype}"
        sample = repr(x) if len(repr(x)) < 60 else type(x).__name__
        raise TypeError(
            f"{what}: data must be real numbers (float16/32/64; ints and bools are "
            f"promoted to float64), got {described} from {sample}"
        )
    return array[()] if array.ndim == 0 else array


def _constant_like(x, other):
    """A Python number mixed into an expression takes the dtype of the Value
    it meets (as NumPy does with Python scalars); arrays are converted as data."""
    if isinstance(x, (int, float)) and not isinstance(x, bool) and other is not None:
        dtype = other._data.dtype
        return dtype.type(x)
    # integer and boolean arrays (masks, labels) take the float dtype of the
    # Value they meet, as in PyTorch, so that a float32 graph stays float32
    if other is not None and not isinstance(x, Value):
        try:
            array = x if isinstance(x, np.ndarray) else np.asarray(x)
        except (ValueError, TypeError):  # (as_data says what is wrong with it)
            array = None
        if array is not None and array.dtype.kind in _PROMOTED_KINDS and other._data.dtype != np.float64:
            x = array.astype(other._data.dtype)  # (a traced mask's cast is made again at every call)
    return as_data(x, "constant")


# --------------------------------------------------------------------------
# Recording an operation
# --------------------------------------------------------------------------
def _fill(value, data, requires_grad, label, scope, op=None, inputs=(), params=None, input_versions=None, saved=None):
    """Set every slot of a new Value (the one place that does; see the table in Value's docstring)."""
    value._id = _next_id()  # (first: code watching the other slots' writes may ask which Value it is)
    value._data = data
    value.grad = None
    value.requires_grad = requires_grad
    value.label = label
    value._op = op
    value._inputs = inputs
    value._params = params
    value._saved = saved
    value._version = 0
    value._input_versions = input_versions
    value._scope = scope
    value._guard = True if op is not None else None  # a recorded node is saved for its backward
    value._epoch = _data_epoch[0]


def record(op, data, inputs, params, saved=None):
    """Wrap an operation's result in a Value and, when any input requires a
    gradient and recording is on, remember the op, its inputs, its
    parameters (the non-Value arguments: an axis, an index...) and what its
    forward saved for the backward. Every operation ends with a call to this
    (through ``Op.apply``)."""
    modes = _current_modes()
    out = _new_value(Value)
    tracked = False
    if modes.grad_enabled:
        for inp in inputs:
            if inp.requires_grad:
                tracked = True
                break
    if not tracked:
        _fill(out, data, False, None, modes.scope)
    else:
        # Mark the inputs as saved for backward (`_guard`), so in-place writes are
        # noticed, and keep their versions (None while all are 0, the usual case)
        changed = snapshot_taken = False
        for inp in inputs:
            guard = inp._guard
            if guard is None:
                inp._guard = True
            elif guard is not True:  # its array was handed out: compare it, keep watching
                _settle_snapshot(inp)
                snapshot_taken = True
            if inp._version:
                changed = True
        if not changed:
            versions = None
        elif len(inputs) == 2:  # a parameter updated by an optimizer meets its first op, e.g. x @ W
            versions = (inputs[0]._version, inputs[1]._version)
        else:
            versions = tuple([inp._version for inp in inputs])
        _fill(out, data, True, None, modes.scope, op, inputs, params, versions, saved)
        if snapshot_taken:
            out._epoch = -1  # an input's array was handed out: always check this node at backward
    if modes.anomaly:
        out._trace = _user_frame()  # the slot is set only here: read it with getattr(node, "_trace", None)
        _check_finite(data, f"{op.name} produced {{bad}} in its forward output", out)
    return out


def _constant(data):
    """A Value that holds data and never requires a gradient (no checks: the
    caller already made `data` valid)."""
    out = _new_value(Value)
    _fill(out, data, False, None, _current_modes().scope)
    return out


def as_value(x, like=None):
    """Values pass through; numbers and arrays become constants in the graph."""
    if isinstance(x, Value):
        return x
    return _constant(_constant_like(x, like))


# --------------------------------------------------------------------------
# Inside detect_anomaly(): stop at the first NaN or Inf
# --------------------------------------------------------------------------
def _check_finite(array, message, node):
    """Raise AnomalyError with `message` if `array` holds NaN or Inf, naming
    where user code made `node` (``record`` keeps it in ``node._trace``)."""
    if isinstance(array, Value):
        array = array._data
    array = np.asarray(array)
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        bad = "NaN" if np.isnan(array).any() else "Inf"
        where = getattr(node, "_trace", None) or "an unknown place (it was created outside detect_anomaly(); create it inside to see where)"
        raise AnomalyError(message.format(bad=bad) + f" (the operation was created at {where})")


# --------------------------------------------------------------------------
# The backward pass
# --------------------------------------------------------------------------
_by_creation = attrgetter("_id")


def topological_order(roots):
    """All nodes that require grad and lead to `roots`, outputs first.

    Iterative (no recursion, so a graph a million nodes deep is fine). Nodes
    are numbered as they are created, and an input is always created before
    the results that use it, so sorting by that number, newest first, is a
    valid order for the backward pass.

    >>> a = Value(2.0, label="a"); b = a * 3; b.label = "b"; c = b + a; c.label = "c"
    >>> [v.label for v in topological_order([c])]      # outputs first; the constant 3 is left out
    ['c', 'b', 'a']
    """
    # `seen` holds the nodes themselves: Values hash by identity (their `==`
    # compares data, but a set only calls it for equal hashes, i.e. the same object)
    seen = set()
    stack = [root for root in roots if root.requires_grad]
    nodes = []
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        nodes.append(node)
        for inp in node._inputs:
            if inp.requires_grad and inp not in seen:
                stack.append(inp)
    nodes.sort(key=_by_creation, reverse=True)
    return nodes


def sum_to_shape(g, shape):
    """Sum a broadcast gradient back to the shape of the input it belongs to.

    NumPy broadcasting prepends axes and stretches axes of length 1; the
    gradient of a stretched input is the sum over the stretched copies.

    >>> g = np.ones((4, 2, 3))                        # the gradient of b + x, x of shape (4, 2, 3)
    >>> sum_to_shape(g, (3,)).tolist()                # b of shape (3,): prepended axes summed
    [8.0, 8.0, 8.0]
    >>> sum_to_shape(g, (2, 1)).tolist()              # b of shape (2, 1): the stretched axis too
    [[12.0], [12.0]]
    """
    g_shape = g.shape
    if g_shape == shape:
        return g
    if shape == ():
        return g.sum()
    lead = len(g_shape) - len(shape)
    stretched = tuple(lead + k for k, n in enumerate(shape) if n == 1 and g_shape[lead + k] != 1)
    if not stretched:  # only prepended axes (a bias added to a batch): the sum has the shape already,
        return g.sum(axis=tuple(range(lead)))  # and is a new array (no reshaped view), which a leaf's .grad can take as it is
    return g.sum(axis=tuple(range(lead)) + stretched, keepdims=True).reshape(shape)


def backpropagate(outputs, seeds, retain_graph=False, create_graph=False, on_node=None):
    """The backward pass: ``{node: dL/dnode}`` for every node the seeds reach.

    Nodes wait in a heap, newest first: an input is always created before the
    nodes that use it, so when a node comes out, every node that uses it has
    already passed its gradient back (no sort, no recursion). ``backward()``,
    ``grad()``, ``create_graph=True`` (rules run on Values, so the backward is
    itself a graph) and the stepper (through ``on_node``) all run this loop.
    """
    gradients, waiting, queued = {}, [], {}
    for node, seed in zip(outputs, seeds):
        _add_share(gradients, waiting, queued, node, _constant(seed) if create_graph and not isinstance(seed, Value) else seed)
    anomaly = _current_modes().anomaly
    with _backward_modes(create_graph):
        while waiting:
            node = queued.pop(heappop(waiting))  # the newest node still waiting
            upstream = gradients[node]  # complete: every node that uses it came before
            _check_saved_data(node)  # freed by an earlier backward, or changed in place since?
            op, params, inputs = node._op, node._params, node._inputs
            if node._saved is not None:  # what the forward kept for the rules (conv's im2col rows)
                params = {**params, **node._saved}
            args = inputs if create_graph else [inp._data for inp in inputs]
            out = node if create_graph else node._data
            shares = []
            for i, inp in enumerate(inputs):
                if not inp.requires_grad:
                    continue  # constants get no gradient
                rule = op.grads[i]
                if op.elementwise:  # upstream x local, summed back over broadcast axes
                    share = sum_to_shape(upstream_times(upstream, rule(*args, out, **params)), inp.shape)
                else:  # the op's vector-Jacobian product, already in the input's shape
                    share = rule(upstream, *args, out, **params)
                    if share is None:
                        continue
                if share.dtype != inp.dtype:  # e.g. a float32 input of a float64 result
                    share = share.astype(inp.dtype)
                if anomaly:  # inside detect_anomaly(): stop at the first NaN or inf
                    _check_finite(share, f"{op.name} produced {{bad}} in the gradient for its input {i} during backward", node)
                _add_share(gradients, waiting, queued, inp, share)
                shares.append((inp, share))
            if on_node is not None:
                on_node(node, upstream, shares)
            if not retain_graph:
                _free(node)
    return gradients


def upstream_times(upstream, local):
    """An elementwise rule's share, upstream x local; a local gradient of 1 (a + b) passes the upstream
    on as it is: a product would be a new array, laid out in C order, and later sums would add in
    another order.

    >>> g = np.array([1.0, 2.0])
    >>> upstream_times(g, 1) is g, upstream_times(g, np.array([3.0, 0.5])).tolist()
    (True, [3.0, 1.0])
    """
    return upstream if type(local) is int and local == 1 else upstream * local


def _add_share(gradients, waiting, queued, node, share):
    """Add a share into a node's running gradient; a node reached for the
    first time that an operation made joins the heap (keyed by its negated
    creation number: ints compare faster than nodes)."""
    total = gradients.get(node)
    if total is not None:
        gradients[node] = total + share  # never in place: the share may be someone else's array
        return
    gradients[node] = share
    if node._op is not None:
        heappush(waiting, -node._id)
        queued[-node._id] = node


@contextlib.contextmanager
def _backward_modes(create_graph):
    """What the backward pass runs inside: recording on when it builds a
    graph (create_graph), off otherwise; NumPy quiet about inf and NaN, which
    some gradients are by design (sqrt at 0), as PyTorch is; detect_anomaly()
    reports them instead (see _check_finite)."""
    with quiet_float_errors():
        previous = _set_mode("grad_enabled", create_graph)
        try:
            yield
        finally:
            _set_mode("grad_enabled", previous)


def _backpropagate_fast(outputs, seeds, retain_graph, create_graph=False):
    """The reference loop, :func:`backpropagate`, written for speed: the same
    gradients, bit for bit, for the first-order passes that ``backward()``
    and ``grad()`` run outside ``detect_anomaly()``. Everything else
    (``create_graph=True``, the stepper, anomaly checks) runs the reference
    loop, which stays the one to read.

    It is a loop of its own because on scalars and small arrays the Python
    work around each node costs as much as the NumPy work in it, and the
    reference loop spends it on readable steps. This one differs in three
    ways, numbered in the code: (1) a local gradient of -1 (sub, neg)
    negates the upstream gradient instead of multiplying it by a Python
    int, NumPy's slow path (+1 passes it on in both loops); (2) the saved-data
    check, adding a share and freeing are written out in the loop, the
    inputs' data is read without a list for one or two inputs and the rules
    are called with one tuple, so a node calls no Python function but its
    rules; (3) ``sum_to_shape`` and the dtype cast run only when the share's
    shape or dtype differs from the input's. Counted with callgrind (see
    benchmarks/README.md), a step of the benchmarks' scalar MLP, row (e),
    runs 0.88 G instructions with this loop and 1.30 G with the reference
    loop; the 1,000-op chain of row (d), 36 M and 46 M.

    It may stay long: its length is those savings written out, and
    tests/engine/test_engine_fast_loop.py holds it to the reference loop's
    bits on every op case and on an MLP with BatchNorm1d and Dropout. A
    change to what the backward pass computes is made in both loops.
    """
    gradients = {}
    waiting, queued = [], {}
    for node, seed in zip(outputs, seeds):
        total = gradients.get(node)
        gradients[node] = seed if total is None else total + seed
        if total is None and node._op is not None:
            heappush(waiting, -node._id)
            queued[-node._id] = node
    epoch = _data_epoch
    ndarray = np.ndarray
    with quiet_float_errors():
        while waiting:
            node = queued.pop(heappop(waiting))
            upstream = gradients[node]
            if node._epoch != epoch[0]:  # (2) the data check, only when some data changed since
                _check_not_freed_or_modified(node)
            op = node._op
            params = node._params
            if node._saved is not None:
                params = {**params, **node._saved}
            inputs = node._inputs
            n_inputs = len(inputs)
            if n_inputs == 1:  # (2)
                args = (inputs[0]._data,)
            elif n_inputs == 2:
                args = (inputs[0]._data, inputs[1]._data)
            else:
                args = [inp._data for inp in inputs]
            out = node._data
            call = (*args, out)  # (2) one tuple per node, passed on as it is
            elementwise = op.elementwise
            grads = op.grads
            i = -1
            for inp in inputs:
                i += 1
                if not inp.requires_grad:
                    continue
                if elementwise:
                    local = grads[i](*call, **params) if params else grads[i](*call)
                    if type(local) is int and (local == 1 or local == -1):  # (1)
                        share = upstream if local == 1 else -upstream
                    else:
                        share = upstream * local
                    if type(share) is ndarray and share.shape != inp._data.shape:  # (3)
                        share = sum_to_shape(share, inp._data.shape)
                else:
                    share = grads[i](upstream, *call, **params) if params else grads[i](upstream, *call)
                    if share is None:
                        continue
                data = inp._data
                if type(share) is not type(data) or type(data) is ndarray:  # (3) a NumPy scalar of data's own type has its dtype
                    if share.dtype != data.dtype:
                        share = share.astype(data.dtype)
                total = gradients.get(inp)
                if total is None:  # (2) _add_share written out
                    gradients[inp] = share
                    if inp._op is not None:
                        key = -inp._id
                        heappush(waiting, key)
                        queued[key] = inp
                else:
                    gradients[inp] = total + share
            if not retain_graph:  # (2) _free written out
                node._epoch = _FREED
                node._guard = None
                node._saved = None
                for inp in inputs:
                    inp._guard = None
    return gradients


def _store_gradients(gradients, seeds=()):
    """Write a backward pass's results, pairs ``(node, gradient)``, into
    ``.grad``: leaves accumulate, every other node gets this pass's gradient.
    A leaf's ``.grad`` is an array of its own: a share that is a view,
    read-only, the caller's seed, another node's gradient passed on, or an
    array already given to another leaf is copied first."""
    held_elsewhere = set(map(id, seeds))
    leaves = []
    for node, gradient in gradients:
        if node._op is None:
            leaves.append((node, gradient))
            continue
        if isinstance(gradient, Value):  # create_graph=True: the node's .grad is data, a leaf's stays a Value
            gradient = gradient._data
        node.grad = gradient
        held_elsewhere.add(id(gradient))
    for leaf, gradient in leaves:
        if type(gradient) is np.ndarray:
            if gradient.base is not None or not gradient.flags.writeable or id(gradient) in held_elsewhere:
                gradient = gradient.copy()
            held_elsewhere.add(id(gradient))  # two leaves given the same array get one each
        leaf.grad = gradient if leaf.grad is None else _add_to_grad(leaf, gradient)


def _add_to_grad(leaf, gradient):
    """``leaf.grad + gradient``, refusing a ``.grad`` set by hand to something
    that would change the gradient's shape or dtype (micrograd's ``p.grad = 0``
    is fine)."""
    name = f"'{leaf.label}' " if leaf.label else ""
    try:
        total = leaf.grad + gradient
    except (TypeError, ValueError):
        total = None
    if total is None or getattr(total, "shape", np.shape(total)) != leaf.shape:
        numeric = hasattr(leaf.grad, "shape") or isinstance(leaf.grad, (int, float))
        held = f"shape {np.shape(leaf.grad)}" if numeric else type(leaf.grad).__name__
        raise (ShapeError if numeric else TypeError)(
            f"backward(): cannot add the new gradient to the .grad of the Value {name}(shape {leaf.shape}): "
            f".grad holds {held}. Reset it with zero_grad() (or set it to 0 or to an array of shape {leaf.shape})"
        )
    if total.dtype.kind != "f":  # a complex .grad set by hand: casting would drop the imaginary part
        raise TypeError(
            f"backward(): the .grad of the Value {name}(shape {leaf.shape}, {leaf.dtype}) holds {np.asarray(leaf.grad).dtype} "
            f"numbers; gradients are real. Reset it with zero_grad() (or set it to real numbers)"
        )
    if total.dtype != leaf._data.dtype:
        total = total.astype(leaf._data.dtype)  # a float32 Value keeps float32 gradients
    return total


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=False):
    """Gradients of `outputs` with respect to `inputs`, without touching ``.grad``.

    `outputs` and `inputs` are a Value or a sequence of Values; the result is
    a tuple with one gradient per input (NumPy data, or Values when
    ``create_graph=True``, which records the backward pass so the result can
    be differentiated again). An input that the outputs do not depend on
    raises, unless ``allow_unused=True`` (then its gradient is None).

    >>> x = Value(3.0)
    >>> (dy,) = grad(x ** 3, x, create_graph=True)   # 3 x^2 = 27
    >>> (d2y,) = grad(dy, x)                          # 6 x = 18
    >>> float(dy.data), float(d2y)
    (27.0, 18.0)
    """
    for what, given in (("outputs", outputs), ("inputs", inputs)):
        if not isinstance(given, Value) and (not hasattr(given, "__iter__") or isinstance(given, (str, dict))):
            raise TypeError(f"grad(): {what} must be a Value or a list of Values, got {type(given).__name__}"
                            f"{getattr(given, 'not_a_value_hint', '')}")
    outputs = [outputs] if isinstance(outputs, Value) else list(outputs)
    single_input = isinstance(inputs, Value)
    inputs = [inputs] if single_input else list(inputs)
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif isinstance(grad_outputs, (Value, np.ndarray)) or np.isscalar(grad_outputs):
        grad_outputs = [grad_outputs]
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"grad(): {len(outputs)} outputs but {len(grad_outputs)} grad_outputs")
    for i, v in enumerate(list(outputs) + inputs):
        if not isinstance(v, Value):
            raise TypeError(f"grad(): outputs and inputs must be Values, got {type(v).__name__}")
    for i, x in enumerate(inputs):
        if not x.requires_grad:
            raise ValueError(f"grad(): input {i} does not require grad (requires_grad=False)")
    if retain_graph is None:
        retain_graph = create_graph
    seeds = []
    for out, g in zip(outputs, grad_outputs):
        if create_graph and isinstance(g, Value):
            if g.shape != out.shape:
                raise ShapeError(f"grad(): grad_outputs has shape {g.shape}, but the output has shape {out.shape}")
            seeds.append(g)
        else:
            seed = _seed_gradient(out, g, "grad()")
            seeds.append(_constant(seed) if create_graph else seed)
    live = [(o, s) for o, s in zip(outputs, seeds) if o.requires_grad]
    loop = backpropagate if create_graph or _current_modes().anomaly else _backpropagate_fast
    gradients = loop([o for o, _ in live], [s for _, s in live], retain_graph, create_graph)
    result = []
    for i, x in enumerate(inputs):
        gradient = gradients.get(x)
        if gradient is None:
            if not allow_unused:
                raise ValueError(
                    f"grad(): input {i} (shape {x.shape}) is not used to compute the outputs; "
                    f"pass allow_unused=True to get None for it"
                )
            result.append(None)
        else:
            result.append(gradient)
    return tuple(result)
