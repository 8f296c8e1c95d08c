"""What an operation of the engine is, and the registry of every one.

An operation is declared ONCE, as an :class:`Op`: its name, its NumPy
forward, one gradient rule per input, the formula as a lecture writes it, and
flags. The Value methods and operators, ``__all__`` here and the package's
exports are derived from these declarations. This module holds the machinery
(``Op``, ``F``, the operand helpers, the registry ``OPS``); the declarations
are grouped by topic, in reading order (each registers its operations, in
this order, when this module imports it):

* ``ops_arith.py``: ``+ - * / **``, unary minus, ``1 / x`` (and Value's
  comparisons, which give masks, not nodes);
* ``ops_elementwise.py``: ``exp``, ``log``, ``sqrt``, ``abs``, ``tanh``,
  ``sigmoid``, ``relu``, ``softplus``, ``erf``, ``clip``, ``maximum``,
  ``minimum``, ``where``;
* ``ops_matmul.py``: ``matmul`` (``@``) and ``linear``;
* ``ops_reduce.py``: ``sum``, ``mean``, ``max``, ``min``, ``var``,
  ``standardize``;
* ``ops_softmax.py``: ``logsumexp``, ``softmax``, ``log_softmax``,
  ``softmax_cross_entropy``, ``binary_cross_entropy``;
* ``ops_shape.py``: ``reshape``, ``transpose``, ``broadcast_to``, ``astype``,
  indexing, ``concatenate``, ``stack``;
* ``ops_math.py``: more elementwise math (``sin``, ``log2``...) and
  activations (``relu6``, ``mish``...);
* ``ops_select.py``: statistics, sorting, gathering, ``einsum``, and the
  functions that give indices or booleans (``argmax``, ``isnan``...);
* ``conv.py``: convolution, pooling, padding, ``unfold`` and ``fold`` (the
  windows' geometry in ``conv_windows.py``);
* ``ops_rounding.py``: ``floor``, ``ceil``, ``trunc``, ``round``, ``fmod``,
  ``remainder`` (``%``), ``floor_divide`` (``//``), ``isclose``;
* ``ops_scan.py``: ``cummax``, ``cummin``, ``logcumsumexp``, ``windows``;
* ``ops_scatter.py``: PyTorch's ``scatter`` and ``scatter_reduce``;
* ``conv_transpose.py``: ``conv_transpose2d``, ``conv_transpose1d``;
* ``resample.py``: ``interpolate``, ``max_unpool2d`` (and max pooling's indices).

Two kinds of operation:

* **Elementwise** ops (``a * b``, ``tanh``, ...) give, per input, the *local
  gradient*: how the output moves when that input moves, element by element
  (for ``c = a * b``: ``dc/da = b``). The engine multiplies it by the
  upstream gradient and sums the product back to the input's shape
  (broadcasting is handled there, once).
* **Structural** ops (``matmul``, ``sum``, ``reshape``, ``softmax``, ...) mix
  elements, so their local gradient is a Jacobian too big to write out; their
  rule takes the upstream gradient ``g`` first and returns the product, in the
  input's shape (a vector-Jacobian product: for ``C = A @ B``,
  ``dL/dA = g @ B.T``).

A rule receives the op's inputs, its output ``out`` and its parameters (the
non-Value arguments: an axis, an index...) by keyword. In a first-order
backward pass they are NumPy arrays; with ``create_graph=True`` they are
Values, so the same rule builds a graph that can be differentiated again.
Rules use operators and methods that both have (``+``, ``*``, ``.sum(axis=)``,
``.reshape``) and, for functions, the namespace ``F`` (``F.exp``, ``F.where``,
``F.matmul``...), which calls NumPy on arrays and the engine on Values.

How to declare an operation (an operation of the engine goes in the module
of its topic, with a case in ``tests/engine/engine_op_cases.py``, which a
test asks for; your own may be declared from any module)::

    from autograd_core.ops import Op, as_value

    CUBE = Op(
        "cube", lambda x: x ** 3, inputs="x", elementwise=True,
        d_x=lambda x, out: 3 * x * x,            # d(x^3)/dx = 3 x^2, the local gradient
        formula="d(x^3)/dx = 3 x^2",
        methods=("cube",),                       # so that v.cube() works
    )

    @CUBE.public
    def cube(x):                                 # its docstring and checks go here
        return CUBE.apply(as_value(x))

That is all: ``cube`` and ``v.cube()`` work, it is exported by
``autograd_core`` (and listed in ``ops.__all__``), drawings, the stepper,
``gradcheck`` and ``create_graph=True`` use its rule. A structural rule takes
the upstream gradient first: ``d_x=lambda g, x, out, axis: ...``. An op with
any number of inputs (``concatenate``) declares ``inputs="*values"`` and one
rule ``d_each=lambda i, g, *values_and_out, **params: ...`` for input ``i``
(its last positional argument is the output). An input that may be left out
(``linear``'s bias) is declared last; its rules then take ``*rest``. The
NumPy functions it replaces are named with ``numpy=("power",)`` (its own name
when not given), so that ``np.power(v, 2)`` is refused naming it.

Most rules recompute what they need from the inputs and the output. An op
whose forward makes something costly that a rule needs again (the im2col
rows of a convolution, for dL/dW; the softmax inside cross-entropy, for
dL/dx) may keep it instead, as PyTorch's ``ctx.save_for_backward`` does: it
declares ``saves={"rows": "weight"}`` (what it keeps, and the input whose
rule reads it), its forward returns ``(output, rows)``, and its rules take
``rows=None`` by keyword beside the parameters. The node holds it
(``v._saved``) only if that input will get a gradient, and until a backward
pass through the node is done: memory traded for time. A rule given None
(nothing kept) computes it again.

The contract other code builds on (``autograd_core.compile`` replays it):
``OPS`` maps a name to its Op; ``op.forward(*input_arrays, **params)`` is pure
NumPy (no Values, no graph) and returns the output data; every recorded node
``v`` has ``v._op``, ``v._inputs`` (Values) and ``v._params`` (a dict, never
written after recording) with ``v._op.forward(*[i._data for i in v._inputs],
**v._params)`` equal to ``v._data`` bit for bit (for an op that ``saves``,
the first item of what it returns). ``op.code`` shows the forward as a line
of NumPy, for printed programs. ``op.numpy`` names the NumPy functions the op
replaces, for the message that refuses ``np.sort(v)`` (see
``engine._numpy_refusal``). ``op.random`` marks an op that draws random
numbers or has effects, which ``compile`` and ``export`` refuse, as a replay
would repeat them blindly (``nn``'s dropout draws its mask as a host array,
remade at every call, instead).

Every result is recorded through ``record`` as this module names it:
``Op.apply``, ``Op.record_result`` and the operators' fast path
(``_binary``) call it; no declaration calls the engine's ``record`` itself.
``compile`` replaces ``ops.record`` while it traces (so that an operation on
inputs that need no gradient is a node of the program too), and that
reaches every operation.
"""

from __future__ import annotations

import builtins
import math
import sys
import weakref
from functools import partial

import numpy as np

from .engine import Value, _constant, as_value, record
from .errors import ShapeError

OPS = {}  # name -> Op: every operation, for the methods and exports, drawings, the stepper, compile
__all__ = ["OPS", "Op", "F"]  # + the function of every op, added as it is declared (see Op.public)
_NO_PARAMS = {}  # the params of an op without any (shared: params are never written after recording)


class Op:
    """One operation: its name, its NumPy forward, one gradient rule per
    input, the lecture formula, and flags (see the module docstring).

    ``grads[i]`` is the gradient rule for input i. ``elementwise`` says which
    kind of rule it is: a local gradient (multiplied by the upstream
    gradient by the engine) or a vector-Jacobian product (given the upstream
    gradient). ``methods`` are the Value methods and operators that call the
    op's function; ``reflected`` the reflected operators (``__radd__``).
    ``shown_local`` gives, for structural ops that have one to show, the
    local gradient drawings and the stepper display (matmul: the other operand).
    ``output`` names the output in the formula when the formula uses letters
    of its own (``C`` of ``C = A @ B``). ``saves`` maps what the forward
    returns after the output to the input whose rule reads it (see the module
    docstring). ``as_numpy`` writes the forward and rules that are helper
    functions as the one NumPy expression they compute, for the programs
    ``compile`` prints and runs (``{"forward": "x @ weight.T + bias",
    "weight": "g.T @ x"}``; names: the inputs, ``out``, ``g``, the
    parameters); ``compile`` checks it gives the helper's bits and calls
    the helper where it does not. ``course_name`` is what a course calls
    the result (``"Z"`` for a layer's product, ``"A"`` for an activation).
    ``as_torch`` and ``as_onnx`` write the forward in PyTorch and in ONNX,
    for ``autograd_core.export``: a PyTorch expression over the same names
    (``"torch.tanh(x)"``) and an ONNX operator (``"Tanh"``), or functions
    of a writer, the inputs and the parameters for what takes more (the
    export package's docstring says how); None: the op cannot be exported.

    >>> op = OPS["mul"]
    >>> op.name, op.elementwise, op.formula
    ('mul', True, 'd(a*b)/da = b, d(a*b)/db = a')
    >>> op.forward(np.array([2.0, 3.0]), np.array([4.0, 5.0])).tolist()   # pure NumPy
    [8.0, 15.0]
    >>> a, b = np.array(2.0), np.array(4.0)
    >>> float(op.grads[0](a, b, a * b)), float(op.grads[1](a, b, a * b))   # d(a*b)/da = b, d(a*b)/db = a
    (4.0, 2.0)
    """

    def __init__(self, name, forward, *, inputs, formula, elementwise=False, code=None, methods=(),
                 reflected=(), shown_local=None, output=None, random=False, register=True, numpy=None, saves=None,
                 course_name=None, as_numpy=None, as_torch=None, as_onnx=None, **rules):
        self.name = name
        self.forward = forward
        self.inputs = tuple(part.strip() for part in inputs.split(",")) if isinstance(inputs, str) else tuple(inputs)
        self.formula = formula  # the derivative as a lecture writes it, for display
        self.elementwise = elementwise
        self.code = code  # the forward as a line of NumPy, where `forward` is a helper or a lambda
        self.methods = tuple(methods)
        self.reflected = tuple(reflected)
        self.shown_local = shown_local
        self.output = output
        self.as_numpy = dict(as_numpy or {})  # "forward" and input names -> the same computation as one NumPy expression
        unknown = set(self.as_numpy) - {"forward", *self.inputs}
        if unknown:
            raise TypeError(f"Op {name!r}: as_numpy names {sorted(unknown)}, which are neither 'forward' nor inputs {self.inputs}")
        # the forward in PyTorch and in ONNX, for autograd_core.export (see its docstring)
        self.as_torch, self.as_onnx = as_torch, as_onnx
        self.course_name = course_name  # what a course calls its result: "Z" (a layer's product), "A" (an activation), "P"...
        self.random = random  # draws random numbers or has effects: a compiled program may not replay it blindly
        self.numpy = (name,) if numpy is None else tuple(numpy)  # the NumPy functions it replaces (np.sort(v) names it)
        if saves is not None and not isinstance(saves, dict):
            raise TypeError(f"Op {name!r}: saves must map what the forward keeps to the input whose rule reads it, "
                            f"e.g. saves={{'rows': 'weight'}}; got {saves!r}")
        self.saves = dict(saves or {})  # what the forward also returns -> the input whose rule reads it
        if not set(self.saves.values()) <= set(self.inputs):
            raise TypeError(f"Op {name!r}: saves={saves!r} names an input that is not among {self.inputs}")
        self.function = None  # the public function, set by the @op.public decorator
        self.quiet = self._is_quiet(forward)  # its forward silences NumPy's float warnings (see _is_quiet)
        self.variadic = len(self.inputs) == 1 and self.inputs[0].startswith("*")
        if self.variadic:
            each = rules.pop("d_each")
            self.grads = _EachInput(each)
        else:
            self.grads = tuple(rules.pop(f"d_{name_}") for name_ in self.inputs)
        if rules:
            raise TypeError(f"Op {name!r}: unknown arguments {sorted(rules)} (rules are d_<input name>)")
        if register:
            OPS[name] = self

    def __repr__(self):
        return f"<Op {self.name}: {self.formula}>"

    @staticmethod
    def _is_quiet(forward):
        """Whether `forward` silences NumPy's float warnings (``np.log(0)`` is -inf without a
        warning, as in PyTorch), read from its code: it enters ``np.errstate``, ``quiet_float_errors``
        or ``_quiet_domain``. A compiled program calls such a forward itself, not its NumPy line,
        so that a replay warns (or raises, under ``np.seterr(all="raise")``) exactly where eager does."""
        stack, seen = [forward], set()
        while stack:
            fn = stack.pop()
            code = getattr(fn, "__code__", None)
            if code is None or id(code) in seen:
                continue
            seen.add(id(code))
            if _QUIETING & set(code.co_names) or _QUIETING & set(code.co_freevars):
                return True
            stack.extend(cell.cell_contents for cell in (fn.__closure__ or ()) if callable(cell.cell_contents))
        return False

    def apply(self, *inputs, **params):
        """Run the forward on the inputs' data and record the result (inputs are Values)."""
        if self.saves:  # the forward also returns what a rule needs again: kept if that rule will run
            result = self.forward(*[v._data for v in inputs], **params)
            if type(result) is not tuple or len(result) != 1 + len(self.saves):
                raise TypeError(f"{self.name}: an op that saves {tuple(self.saves)} must return (output, "
                                f"{', '.join(self.saves)}) from its forward, got {type(result).__name__}")
            data, *kept = result
            saved = {name: array for (name, reader), array in zip(self.saves.items(), kept)
                     if inputs[self.inputs.index(reader)].requires_grad}
            return record(self, data, inputs, params or _NO_PARAMS, saved or None)
        if len(inputs) == 1:  # the commonest cases, without a list
            return record(self, self.forward(inputs[0]._data, **params), inputs, params or _NO_PARAMS)
        if len(inputs) == 2:
            return record(self, self.forward(inputs[0]._data, inputs[1]._data, **params), inputs, params or _NO_PARAMS)
        return record(self, self.forward(*[v._data for v in inputs], **params), inputs, params or _NO_PARAMS)

    def record_result(self, data, inputs, params):
        """Record `data`, computed by the caller exactly as the forward computes
        it, as this op's result of `inputs` (Values): for a function that also
        returns what it computed on the way (``standardize``'s statistics)."""
        return record(self, data, inputs, params or _NO_PARAMS)

    def public(self, fn):
        """Decorator: `fn` is the op's public function (``op.function``). Installs its methods on
        Value and exports it from ``ops`` and from the ``autograd_core`` package."""
        self.function = fn
        fn.op = self
        for method in self.methods:
            setattr(Value, method, fn)
        for method in self.reflected:
            setattr(Value, method, _reflected(fn))
        _export(fn)
        return fn

    def local_gradient(self, node, i):
        """d node / d input i at a recorded node, as NumPy data, for display
        (drawings, the stepper): the rule of an elementwise op; the
        ``shown_local`` of a structural op that has one; None otherwise (the
        formula says it)."""
        args = [inp._data for inp in node._inputs]
        if self.elementwise:
            local = self.grads[i](*args, node._data, **node._params, **(node._saved or _NO_PARAMS))
            return np.asarray(local, dtype=node.dtype)[()] if np.ndim(local) == 0 else np.asarray(local)
        if self.shown_local is not None:
            return self.shown_local(i, *args)
        return None


class _EachInput:
    """The rules of an op with any number of inputs: ``grads[i]`` is its one
    rule with i filled in."""

    def __init__(self, rule):
        self.rule = rule

    def __getitem__(self, i):
        return partial(self.rule, i)


def _reflected(fn):
    return lambda self, other: fn(other, self)


def _export(fn):
    """Make an op's function a name of ``ops`` and of the ``autograd_core``
    package (for ops declared after the package was imported too)."""
    name = fn.__name__
    module = sys.modules[__name__]
    if getattr(module, name, fn) is fn and name not in __all__:
        setattr(module, name, fn)
        __all__.append(name)
    package = sys.modules.get(__package__)
    if package is not None and hasattr(package, "__all__") and name not in package.__all__:
        setattr(package, name, fn)
        package.__all__.append(name)


class F:
    """The functions gradient rules call: NumPy on arrays, the engine's
    operations on Values (``create_graph=True``), so one rule serves both.

    >>> F.exp(np.array(0.0))                        # an array: NumPy
    np.float64(1.0)
    >>> F.exp(Value(0.0)).op                        # a Value: the engine's exp, recorded
    'exp'
    """

    @staticmethod
    def exp(x):
        return exp(x) if isinstance(x, Value) else np.exp(x)

    @staticmethod
    def log(x):
        return log(x) if isinstance(x, Value) else np.log(x)

    @staticmethod
    def sigmoid(x):
        return sigmoid(x) if isinstance(x, Value) else _sigmoid_data(x)

    @staticmethod
    def matmul(a, b):
        return matmul(a, b) if isinstance(a, Value) or isinstance(b, Value) else np.matmul(a, b)

    @staticmethod
    def maximum(a, b):
        return maximum(a, b) if isinstance(a, Value) or isinstance(b, Value) else np.maximum(a, b)

    @staticmethod
    def where(condition, a, b):
        if isinstance(a, Value) or isinstance(b, Value):
            return where(condition, a, b)
        return np.where(condition, a, b)

    @staticmethod
    def broadcast_to(x, shape):
        return broadcast_to(x, shape) if isinstance(x, Value) else np.broadcast_to(x, shape)

    @staticmethod
    def scatter(g, shape, index):
        return scatter(g, shape=shape, index=index) if isinstance(g, Value) else _scatter_data(g, shape, index)

    @staticmethod
    def log_softmax(x, axis):
        return log_softmax(x, axis) if isinstance(x, Value) else _log_softmax_data(x, axis)

    @staticmethod
    def softmax(x, axis):
        return softmax(x, axis) if isinstance(x, Value) else _softmax_data(x, axis)


# --------------------------------------------------------------------------
# Operands and axes: the helpers the declaration modules share
# --------------------------------------------------------------------------
def _operands(a, b):
    """Make both operands Values; a Python number takes the other's dtype."""
    # fast paths for the commonest cases: two Values, and a Value with a float
    if isinstance(a, Value):
        if isinstance(b, Value):
            return a, b
        if type(b) is float:
            return a, _constant(a._data.dtype.type(b))
    if not isinstance(a, Value):
        a = as_value(a, b if isinstance(b, Value) else None)
    if not isinstance(b, Value):
        b = as_value(b, a)
    return a, b


def _binary(op, a, b):
    """Record ``op`` of `a` and `b` with NumPy broadcasting; either may be a
    number or an array, which becomes a constant input in the Value's dtype."""
    if isinstance(a, Value):
        if isinstance(b, Value):  # the commonest case
            try:
                data = op.forward(a._data, b._data)
            except ValueError:
                raise _cannot_broadcast(op.name, a, b) from None
            return record(op, data, (a, b), _NO_PARAMS)
        if type(b) is float or type(b) is int:
            # x * 1.01: NumPy computes with the number in x's dtype (NEP 50), taking its fast
            # path for Python numbers; the constant input holds that number in that dtype,
            # so the op's forward on the inputs' data gives these very bits
            data = a._data
            return record(op, op.forward(data, b), (a, _constant(data.dtype.type(b))), _NO_PARAMS)
    elif isinstance(b, Value) and (type(a) is float or type(a) is int):  # 1 - x, the same on the left
        data = b._data
        return record(op, op.forward(a, data), (_constant(data.dtype.type(a)), b), _NO_PARAMS)
    a, b = _operands(a, b)
    try:
        data = op.forward(a._data, b._data)
    except ValueError:
        raise _cannot_broadcast(op.name, a, b) from None
    return record(op, data, (a, b), _NO_PARAMS)


def _cannot_broadcast(name, a, b):
    return ShapeError(
        f"{name}: shapes {a.shape} and {b.shape} cannot be broadcast together "
        f"(trailing dimensions must be equal or 1)"
    )


def _scalar_or_array(x):
    """NumPy returns 0-d results as scalars from ufuncs but not from every
    function; a Value's data is always the scalar for shape ()."""
    return x[()] if type(x) is np.ndarray and x.ndim == 0 else x


def _axes(axis, ndim, name):
    """Normalise `axis` (None, int or tuple) to a sorted tuple of positive axes."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else axis
    if not isinstance(axes, (tuple, list)):
        raise TypeError(f"{name}: axis must be None, an int or a tuple of ints, got {axis!r}")
    normalised = []
    for ax in axes:
        if not isinstance(ax, (int, np.integer)) or isinstance(ax, bool):
            raise TypeError(f"{name}: axis must be None, an int or a tuple of ints, got {axis!r}")
        if not -builtins.max(ndim, 1) <= ax < builtins.max(ndim, 1):  # a 0-d input takes 0 and -1, as in PyTorch
            raise ShapeError(f"{name}: axis {ax} is out of range for an input with {ndim} dimensions")
        normalised.append(ax % ndim if ndim else 0)
    if len(set(normalised)) != len(normalised):
        raise ShapeError(f"{name}: repeated axis in {axis}")
    if ndim == 0:
        return ()  # a 0-d input has no axes to reduce: axis 0 or -1 means all of it (as in PyTorch)
    return tuple(sorted(normalised))


def _one_axis(axis, ndim, name):
    """The single axis softmax-like operations work along, as a positive int."""
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise TypeError(f"{name}: axis must be one int (it normalises along one axis), got {axis!r}")
    _axes(axis, ndim, name)  # range check
    return axis % ndim if ndim else None  # a 0-d input: the one element is the whole axis (softmax of it is 1)


def _count(shape, axes):
    """How many elements a reduction over `axes` takes in (Python ints: no NumPy call)."""
    return math.prod([shape[k] for k in axes])


def _kept_shape(shape, axes):
    """The shape of a reduction's result with keepdims=True."""
    return tuple(1 if k in axes else n for k, n in enumerate(shape))


def _expand_reduced(g, in_shape, axes, keepdims):
    """Put back the reduced axes of an upstream gradient (as length 1). A 0-d
    gradient (of a sum over everything) broadcasts as it is: no reshape."""
    return g if keepdims or g.ndim == 0 else g.reshape(_kept_shape(in_shape, axes))


def _data(x):
    """The NumPy data of a Value, or an array as it is (for masks in rules)."""
    return x._data if isinstance(x, Value) else x


def derived_data(fn, *inputs, name=None):
    """An array computed from Values' data by no operation (indices and
    booleans: ``argmax``, ``isnan``, ``topk``'s indices): ``fn`` of the inputs'
    data. Every such function of the engine computes it through here, by this
    module's attribute, because ``autograd_core.compile`` replaces it while it
    traces: the compiled step then computes the array again at every call (and
    refuses to branch on it) instead of keeping the first call's.

    >>> derived_data(np.argmax, Value([1.0, 3.0, 2.0]), name="argmax")
    np.int64(1)
    """
    return fn(*[x._data if isinstance(x, Value) else x for x in inputs])


def is_value(x):
    """Whether `x` is a Value, for a function that computes otherwise on arrays (``isclose``: NumPy's
    rule, in NumPy's dtypes). By this module's attribute, because ``autograd_core.compile`` replaces it
    while it traces: a float array argument is a Value there, and an array in eager.

    >>> is_value(Value([1.0])), is_value(np.ones(1))
    (True, False)
    """
    return isinstance(x, Value)


_SHAPE_CONSTANTS = weakref.WeakValueDictionary()  # id -> an array computed from shapes alone


def shape_constant(array):
    """Mark `array` as computed from shapes alone (average pooling's divisors,
    adaptive pooling's averaging matrices): ``compile`` keeps it in a program
    without warning that it was made outside the engine's operations, since
    every call with the same shapes makes the same array.

    >>> divisor = shape_constant(np.full((2, 2), 4.0))
    >>> is_shape_constant(divisor), is_shape_constant(np.full((2, 2), 4.0))
    (True, False)
    """
    _SHAPE_CONSTANTS[id(array)] = array
    return array


def is_shape_constant(array):
    """Whether `array` was marked by `shape_constant` (see its example)."""
    return _SHAPE_CONSTANTS.get(id(array)) is array


def data_check(check, *inputs):
    """A check of Values' data that raises on bad input (probabilities outside
    [0, 1], an index out of range): ``check`` of the inputs' data. Every such
    check of the engine runs through here, by this module's attribute, because
    ``autograd_core.compile`` replaces it while it traces: the compiled step then
    checks again at every call instead of only at the first.

    >>> def positive(d):
    ...     if (d <= 0).any():
    ...         raise ValueError("must be positive")
    >>> data_check(positive, Value([1.0, 2.0]))
    """
    check(*[x._data if isinstance(x, Value) else x for x in inputs])


# Outside a function's domain NumPy gives what PyTorch gives (log(0) = -inf, sqrt(-1) = NaN,
# 0 ** -1 = inf) and warns; the forwards and rules that reach those points compute them
# quietly, ``with _quiet_domain():`` (detect_anomaly() is how to stop at the first one)
_quiet_domain = partial(np.errstate, divide="ignore", invalid="ignore")
_QUIETING = {"errstate", "quiet_float_errors", "_quiet_domain"}  # what a quiet forward enters (Op.quiet)


# ==========================================================================
# The declarations, by topic, in reading order. Each module declares its
# operations as it is imported, so OPS lists them in this order.
# ==========================================================================
from . import ops_arith, ops_elementwise, ops_matmul, ops_reduce, ops_softmax, ops_shape  # noqa: E402,F401
from . import ops_math, ops_select, conv  # noqa: E402,F401
from . import ops_rounding, ops_scan, ops_scatter  # noqa: E402,F401  rounding and remainders; running scans and windows; scatters
from . import conv_transpose, resample  # noqa: E402,F401  transposed convolution; interpolation and unpooling
from .ops_elementwise import _sigmoid_data, exp, log, maximum, sigmoid, where  # noqa: E402  (for F)
from .ops_matmul import matmul  # noqa: E402
from .ops_shape import _scatter_data, broadcast_to, scatter  # noqa: E402
from .ops_softmax import _log_softmax_data, _softmax_data, log_softmax, softmax  # noqa: E402
