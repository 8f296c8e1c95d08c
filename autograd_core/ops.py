"""Every operation of the engine: its forward pass and, beside it, its gradient.

An operation is declared ONCE, as an :class:`Op`: its name, its NumPy
forward, one gradient rule per input, the formula as a lecture writes it, and
flags. The Value methods and operators, ``__all__`` here and the package's
exports are derived from these declarations. Two kinds of operation:

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

How to declare an operation (from any module; ``nn`` or a convolution module
can do it too)::

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
(``linear``'s bias) is declared last; its rules then take ``*rest``.

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
the first item of what it returns). ``op.code`` shows the forward
as a line of NumPy, for printed programs. ``op.numpy`` names the NumPy functions the op replaces (its own name unless
declared: ``numpy=("take_along_axis",)``), so that ``np.sort(v)`` is refused
with the engine's ``sort`` named. ``op.random`` marks an op that
draws random numbers or has effects (none in the engine today).
"""

from __future__ import annotations

import builtins
import math
import operator
import sys
from functools import partial

import numpy as np

from . import _forms
from .engine import Value, _constant, as_value, record, sum_to_shape
from .errors import ShapeError
from .special import erf_data

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
# Operands
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


# ==========================================================================
# Elementwise arithmetic
# ==========================================================================

# c = a + b:  dc/da = 1,  dc/db = 1
ADD = Op(
    "add", operator.add, inputs="a, b", elementwise=True, code="a + b",
    as_torch="a + b", as_onnx="Add",
    d_a=lambda a, b, out: 1,
    d_b=lambda a, b, out: 1,
    formula="d(a+b)/da = 1, d(a+b)/db = 1", methods=("__add__",), reflected=("__radd__",),
)


@ADD.public
def add(a, b):
    """Elementwise ``a + b`` with NumPy broadcasting.

    >>> a = Value([1.0, 2.0]); b = Value(10.0)
    >>> c = add(a, b); c.sum().backward()
    >>> c.data.tolist(), a.grad.tolist(), float(b.grad)   # b was broadcast to both: its gradient sums them
    ([11.0, 12.0], [1.0, 1.0], 2.0)
    """
    return _binary(ADD, a, b)


# c = a - b:  dc/da = 1,  dc/db = -1
SUB = Op(
    "sub", operator.sub, inputs="a, b", elementwise=True, code="a - b",
    as_torch="a - b", as_onnx="Sub",
    d_a=lambda a, b, out: 1,
    d_b=lambda a, b, out: -1,
    formula="d(a-b)/da = 1, d(a-b)/db = -1", methods=("__sub__",), reflected=("__rsub__",),
)


@SUB.public
def sub(a, b):
    """Elementwise ``a - b`` with NumPy broadcasting.

    >>> a = Value(5.0); b = Value(3.0)
    >>> c = sub(a, b); c.backward()
    >>> float(c.data), float(a.grad), float(b.grad)
    (2.0, 1.0, -1.0)
    """
    return _binary(SUB, a, b)


# c = a * b:  dc/da = b,  dc/db = a
MUL = Op(
    "mul", operator.mul, inputs="a, b", elementwise=True, code="a * b",
    as_torch="a * b", as_onnx="Mul",
    d_a=lambda a, b, out: b,
    d_b=lambda a, b, out: a,
    formula="d(a*b)/da = b, d(a*b)/db = a", methods=("__mul__",), reflected=("__rmul__",),
)


@MUL.public
def mul(a, b):
    """Elementwise ``a * b`` with NumPy broadcasting.

    >>> a = Value(2.0); b = Value(-3.0)
    >>> c = mul(a, b); c.backward()
    >>> float(c.data), float(a.grad), float(b.grad)   # dc/da = b, dc/db = a
    (-6.0, -3.0, 2.0)
    """
    return _binary(MUL, a, b)


# c = a / b:  dc/da = 1/b,  dc/db = -a/b**2 = -c/b
# (c / -b, not -(c / b): the sign goes on b, often small, a divisor broadcast over a batch)
DIV = Op(
    "div", operator.truediv, inputs="a, b", elementwise=True, code="a / b",
    as_torch="a / b", as_onnx="Div",
    d_a=lambda a, b, out: 1 / b,
    d_b=lambda a, b, out: out / -b,
    formula="d(a/b)/da = 1/b, d(a/b)/db = -a/b^2", methods=("__truediv__",),
)


@DIV.public
def div(a, b, rounding_mode=None):
    """Elementwise ``a / b`` with NumPy broadcasting. As in PyTorch,
    ``rounding_mode="trunc"`` rounds the quotient toward zero and ``"floor"``
    down (``a // b``), each with gradient 0 (ops ``trunc_divide`` and
    ``floor_divide``, in ``ops_rounding.py``).

    >>> a = Value(1.0); b = Value(4.0)
    >>> c = div(a, b); c.backward()
    >>> float(c.data), float(a.grad), float(b.grad)   # 1/b and -a/b**2
    (0.25, 0.25, -0.0625)
    >>> div(Value(-7.0), 2.0, rounding_mode="trunc").data.tolist(), div(Value(-7.0), 2.0, rounding_mode="floor").data.tolist()
    (-3.0, -4.0)
    """
    if rounding_mode is not None:
        from .ops_rounding import _rounded_quotient  # (declared after this module, which it imports)

        return _rounded_quotient(a, b, rounding_mode)
    return _binary(DIV, a, b)


# y = -x:  dy/dx = -1
NEG = Op(
    "neg", operator.neg, inputs="x", elementwise=True, code="-x",
    as_torch="-x", as_onnx="Neg",
    d_x=lambda x, out: -1,
    formula="d(-x)/dx = -1", methods=("__neg__",),
)


@NEG.public
def neg(x):
    """Elementwise ``-x``.

    >>> x = Value(3.0); y = neg(x); y.backward()
    >>> float(y.data), float(x.grad)
    (-3.0, -1.0)
    """
    return NEG.apply(as_value(x))


# y = 1/x:  dy/dx = -1/x**2 = -y*y
RECIPROCAL = Op(
    "reciprocal", lambda x: 1 / x, inputs="x", elementwise=True, code="1 / x",
    as_torch="1 / x", as_onnx="Reciprocal",
    d_x=lambda x, out: -(out * out),
    formula="d(1/x)/dx = -1/x^2",
)


@RECIPROCAL.public
def reciprocal(x):
    """Elementwise ``1 / x`` (what ``number / Value`` computes, as in PyTorch).

    >>> x = Value(2.0); y = reciprocal(x); y.backward()
    >>> float(y.data), float(x.grad)                  # -1/x**2
    (0.5, -0.25)
    """
    return RECIPROCAL.apply(as_value(x))


# y = x**n for a constant n:  dy/dx = n * x**(n-1)
# (x**0 is the constant 1, so its gradient is 0 even at x = 0, where n x**(n-1) would be 0 * inf)
def _power_of_number(x, exponent):
    # a float exponent in x's dtype (NumPy's scalar path); an int exponent as it is (exact powers)
    with np.errstate(divide="ignore", invalid="ignore"):
        return x ** x.dtype.type(exponent) if isinstance(exponent, float) else x ** exponent


POW_CONST = Op(
    "pow", _power_of_number, inputs="x", elementwise=True, code="x ** exponent",
    as_torch="x ** exponent", as_onnx=lambda g, x, exponent: g.op("Pow", x, g.const(float(exponent))),
    d_x=lambda x, out, exponent: 0.0 if exponent == 0 else exponent * x ** (exponent - 1),
    formula="d(x^n)/dx = n x^(n-1)",
    register=False,  # shares the name "pow" (and the function) with POW below: one registry entry each name
    as_numpy={"forward": "x ** exponent", "x": "0.0 if exponent == 0 else exponent * x ** (exponent - 1)"},
)


# y = a**b for Values a, b:  dy/da = b * a**(b-1),  dy/db = a**b * log(a)
def _pow_d_base(a, b, out):
    # at a == 0 with b == 0, b * a**(b-1) is 0 * inf: a**0 is the constant 1 there, so the
    # gradient is 0 (PyTorch's convention); everywhere else the formula stands as it is
    with np.errstate(divide="ignore", invalid="ignore"):
        return F.where((_data(b) == 0) & (_data(a) == 0), 0.0, b * a ** (b - 1))


def _pow_d_exponent(a, b, out):
    # where a == 0 and b >= 0, a**b does not move with b (PyTorch's convention); where a == 0
    # and b < 0, a**b log(a) = inf * -inf = -inf (PyTorch's too). The log is taken of 1 where its
    # result is not used, so a second derivative meets no inf there.
    flat = (_data(a) == 0) & (_data(b) >= 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return F.where(flat, 0.0, out * F.log(F.where(flat, 1.0, a)))


def _power(a, b):
    with np.errstate(divide="ignore", invalid="ignore"):
        return a ** b


POW = Op(
    "pow", _power, inputs="a, b", elementwise=True, code="a ** b",
    as_torch="a ** b", as_onnx="Pow",
    d_a=_pow_d_base,
    d_b=_pow_d_exponent,
    formula="d(a^b)/da = b a^(b-1), d(a^b)/db = a^b log(a)", methods=("__pow__",), reflected=("__rpow__",),
)


@POW.public
def pow(base, exponent):
    """Elementwise ``base ** exponent``; a number exponent is a constant.

    >>> a = Value(2.0); b = Value(3.0)
    >>> y = pow(a, b); y.backward()
    >>> float(y.data), float(a.grad), round(float(b.grad), 4)   # b a^(b-1) = 12, a^b log(a) = 8 log 2
    (8.0, 12.0, 5.5452)
    """
    if isinstance(base, Value) and not isinstance(exponent, Value):
        exponent_data = np.asarray(exponent)
        if exponent_data.ndim == 0 and exponent_data.dtype.kind in "biuf":
            return POW_CONST.apply(base, exponent=exponent_data.item())
    return _binary(POW, base, exponent)


def _data(x):
    """The NumPy data of a Value, or an array as it is (for masks in rules)."""
    return x._data if isinstance(x, Value) else x


# ==========================================================================
# Elementwise functions
# ==========================================================================

# y = exp(x):  dy/dx = exp(x) = y
def _exp_data(x):
    with np.errstate(over="ignore"):
        return np.exp(x)


EXP = Op(
    "exp", _exp_data, inputs="x", elementwise=True, code="np.exp(x)",
    as_torch="torch.exp(x)", as_onnx="Exp",
    d_x=lambda x, out: out,
    formula="d exp(x)/dx = exp(x)", methods=("exp",),
    as_numpy={"forward": "np.exp(x)"},
)


@EXP.public
def exp(x):
    """Elementwise ``e ** x``.

    >>> x = Value(1.0); y = exp(x); y.backward()
    >>> round(float(y.data), 4), round(float(x.grad), 4)   # the gradient is exp(x) itself
    (2.7183, 2.7183)
    """
    return EXP.apply(as_value(x))


# y = log(x):  dy/dx = 1/x
def _log_data(x):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(x)


LOG = Op(
    "log", _log_data, inputs="x", elementwise=True, code="np.log(x)",
    as_torch="torch.log(x)", as_onnx="Log",
    d_x=lambda x, out: 1 / x,
    formula="d log(x)/dx = 1/x", methods=("log",),
    as_numpy={"forward": "np.log(x)"},
)


@LOG.public
def log(x):
    """Elementwise natural logarithm (NaN for negatives, -inf at 0, as NumPy;
    run inside ``detect_anomaly()`` to stop there).

    >>> x = Value(2.0); y = log(x); y.backward()
    >>> round(float(y.data), 4), float(x.grad)        # 1/x
    (0.6931, 0.5)
    """
    return LOG.apply(as_value(x))


# y = log(1 + x):  dy/dx = 1/(1 + x)
def _log1p_data(x):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log1p(x)


LOG1P = Op(
    "log1p", _log1p_data, inputs="x", elementwise=True, code="np.log1p(x)",
    as_torch="torch.log1p(x)", as_onnx=lambda g, x: g.op("Log", g.op("Add", x, g.const(1.0))),
    d_x=lambda x, out: 1 / (1 + x),
    formula="d log(1+x)/dx = 1/(1+x)", methods=("log1p",),
)


@LOG1P.public
def log1p(x):
    """Elementwise ``log(1 + x)``, accurate for small x.

    >>> x = Value(1e-20); y = log1p(x); y.backward()
    >>> float(y.data), float(log(1 + x).data)         # 1 + 1e-20 rounds to 1 before log sees it
    (1e-20, 0.0)
    >>> float(x.grad)                                 # 1/(1 + x)
    1.0
    """
    return LOG1P.apply(as_value(x))


# y = sqrt(x):  dy/dx = 1/(2 sqrt(x)) = 1/(2y)
def _sqrt_data(x):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt(x)


SQRT = Op(
    "sqrt", _sqrt_data, inputs="x", elementwise=True, code="np.sqrt(x)",
    as_torch="torch.sqrt(x)", as_onnx="Sqrt",
    d_x=lambda x, out: 1 / (2 * out),
    formula="d sqrt(x)/dx = 1/(2 sqrt(x))", methods=("sqrt",),
    as_numpy={"forward": "np.sqrt(x)"},
)


@SQRT.public
def sqrt(x):
    """Elementwise square root (its gradient at 0 is inf, as in PyTorch).

    >>> x = Value(4.0); y = sqrt(x); y.backward()
    >>> float(y.data), float(x.grad)                  # 1/(2 sqrt(x))
    (2.0, 0.25)
    """
    return SQRT.apply(as_value(x))


# y = |x|:  dy/dx = sign(x), and 0 at x = 0 (the subgradient PyTorch uses)
ABS = Op(
    "abs", np.abs, inputs="x", elementwise=True, code="np.abs(x)",
    as_torch="torch.abs(x)", as_onnx="Abs",
    d_x=lambda x, out: np.sign(_data(x)),
    as_numpy={"x": "np.sign(x)"},
    formula="d|x|/dx = sign(x) (0 at 0)", methods=("abs", "__abs__"),
)


@ABS.public
def abs(x):
    """Elementwise absolute value; its gradient at 0 is 0.

    >>> x = Value([-2.0, 0.0, 3.0]); abs(x).sum().backward()
    >>> x.grad.tolist()                               # sign(x), and 0 at the kink
    [-1.0, 0.0, 1.0]
    """
    return ABS.apply(as_value(x))


# t = tanh(x):  dt/dx = 1 - t**2
TANH = Op(
    "tanh", np.tanh, inputs="x", elementwise=True, code="np.tanh(x)",
    as_torch="torch.tanh(x)", as_onnx="Tanh",
    d_x=lambda x, out: 1 - out**2,
    formula="d tanh(x)/dx = 1 - tanh(x)^2", methods=("tanh",),
    course_name='A',
)


@TANH.public
def tanh(x):
    """Elementwise hyperbolic tangent.

    >>> x = Value(0.5); t = tanh(x); t.backward()
    >>> round(float(t.data), 4), round(float(x.grad), 4)   # the gradient is 1 - t**2
    (0.4621, 0.7864)
    """
    return TANH.apply(as_value(x))


# s = sigmoid(x) = 1/(1 + e^-x):  ds/dx = s (1 - s)
def _sigmoid_data(x):
    # exp(-x) overflows to inf for x < -709 and 1/(1 + inf) = 0 is the right limit
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-x))


SIGMOID = Op(
    "sigmoid", _sigmoid_data, inputs="x", elementwise=True, code="1 / (1 + np.exp(-x))",
    as_torch="torch.sigmoid(x)", as_onnx="Sigmoid",
    d_x=lambda x, out: out * (1 - out),
    formula="d sigmoid(x)/dx = s(1 - s)", methods=("sigmoid",),
    course_name='A',
    as_numpy={"forward": "1 / (1 + np.exp(-x))"},
)


@SIGMOID.public
def sigmoid(x):
    """Elementwise logistic function ``1 / (1 + exp(-x))``, finite for any x.

    >>> x = Value(0.0); s = sigmoid(x); s.backward()
    >>> float(s.data), float(x.grad)                  # s (1 - s), largest at 0
    (0.5, 0.25)
    """
    return SIGMOID.apply(as_value(x))


# y = max(x, 0):  dy/dx = 1 where x > 0, else 0 (0 at the kink, as PyTorch)
def _relu_data(x):
    if x.ndim == 0:  # a scalar: no ufunc call (NaN stays NaN either way)
        return x.dtype.type(0) if x <= 0 else x
    return np.maximum(x, 0)


RELU = Op(
    "relu", _relu_data, inputs="x", elementwise=True, code="np.maximum(x, 0)",
    as_torch="torch.relu(x)", as_onnx="Relu",
    d_x=lambda x, out: _data(out) > 0,
    formula="d relu(x)/dx = 1 if x > 0 else 0", methods=("relu",),
    course_name='A',
    as_numpy={"forward": "np.maximum(x, 0)", "x": "out > 0"},
)


@RELU.public
def relu(x):
    """Elementwise ``max(x, 0)``; its gradient at 0 is 0.

    >>> x = Value([-1.0, 0.0, 2.0]); y = relu(x); y.sum().backward()
    >>> y.data.tolist(), x.grad.tolist()              # the gradient at the kink x = 0 is 0
    ([0.0, 0.0, 2.0], [0.0, 0.0, 1.0])
    """
    return RELU.apply(as_value(x))


# y = log(1 + e^x):  dy/dx = sigmoid(x)
SOFTPLUS = Op(
    "softplus", lambda x: np.logaddexp(x.dtype.type(0), x), inputs="x", elementwise=True,
    as_torch="torch.logaddexp(x, torch.zeros_like(x))", as_onnx="Softplus",  # (F.softplus turns linear past 20)
    code="np.logaddexp(0, x)",
    d_x=lambda x, out: F.sigmoid(x),
    formula="d softplus(x)/dx = sigmoid(x)", methods=("softplus",),
    course_name='A',
)


@SOFTPLUS.public
def softplus(x):
    """Elementwise ``log(1 + exp(x))``, computed without overflow for any x.

    >>> x = Value(0.0); y = softplus(x); y.backward()
    >>> round(float(y.data), 4), float(x.grad)        # log 2, and the gradient sigmoid(0)
    (0.6931, 0.5)
    >>> float(softplus(Value(1000.0)).data)           # no overflow: about x for large x
    1000.0
    """
    return SOFTPLUS.apply(as_value(x))


# y = erf(x):  dy/dx = 2/sqrt(pi) * exp(-x**2)   (the numerics of erf are in special.py)
_TWO_OVER_SQRT_PI = 2 / math.sqrt(math.pi)
ERF = Op(
    "erf", erf_data, inputs="x", elementwise=True, code="special.erf_data(x)",
    as_torch="torch.erf(x)", as_onnx="Erf",
    d_x=lambda x, out: _TWO_OVER_SQRT_PI * F.exp(-(x * x)),
    formula="d erf(x)/dx = 2/sqrt(pi) exp(-x^2)", methods=("erf",),
)


@ERF.public
def erf(x):
    """Elementwise error function (used by the exact GELU).

    >>> x = Value(0.5); y = erf(x); y.backward()
    >>> round(float(y.data), 4), round(float(x.grad), 4)   # 2/sqrt(pi) exp(-x**2)
    (0.5205, 0.8788)
    """
    return ERF.apply(as_value(x))


# y = clip(x, lo, hi):  dy/dx = 1 where lo <= x <= hi, else 0 (bounds inclusive, as PyTorch)
def _clip_data(x, min, max):
    data = x
    if min is not None:
        data = np.maximum(data, min)
    if max is not None:
        data = np.minimum(data, max)
    return _scalar_or_array(np.asarray(data, dtype=x.dtype))


def _clip_d_x(x, out, min, max):
    x = _data(x)
    inside = np.ones(np.shape(x), dtype=bool)
    if min is not None:
        inside &= x >= min
    if max is not None:
        inside &= x <= max
    return inside


CLIP = Op(
    "clip", _clip_data, inputs="x", elementwise=True, code="np.clip(x, min, max)",
    as_torch="torch.clamp(x, min, max)",
    as_onnx=lambda g, x, min, max: g.op("Clip", x, *[None if b is None else g.const(float(b)) for b in (min, max)]),
    d_x=_clip_d_x,
    formula="d clip(x)/dx = 1 inside [lo, hi], else 0", methods=("clip",),
)


@CLIP.public
def clip(x, min=None, max=None):
    """Elementwise clamp to ``[min, max]`` (either may be None).

    >>> x = Value([-2.0, 0.0, 1.0, 3.0]); y = clip(x, 0.0, 1.0); y.sum().backward()
    >>> y.data.tolist(), x.grad.tolist()              # bounds inclusive: gradient 1 at x = 0 and at x = 1
    ([0.0, 0.0, 1.0, 1.0], [0.0, 1.0, 1.0, 0.0])
    """
    x = as_value(x)
    if min is None and max is None:
        raise ValueError("clip: give at least one of min and max")
    return CLIP.apply(x, min=min, max=max)


# m = maximum(a, b):  dm/da = 1 where a > b, 1/2 at ties (PyTorch splits ties evenly)
def _wins(mine, other):
    mine, other = _data(mine), _data(other)
    return (mine > other) + 0.5 * (mine == other)


MAXIMUM = Op(
    "maximum", np.maximum, inputs="a, b", elementwise=True, code="np.maximum(a, b)",
    as_torch="torch.maximum(a, b)", as_onnx="Max",
    d_a=lambda a, b, out: _wins(a, b),
    d_b=lambda a, b, out: _wins(b, a),
    formula="d max(a,b)/da = 1 if a > b, 1/2 if a == b, else 0",
)


@MAXIMUM.public
def maximum(a, b):
    """Elementwise larger of ``a`` and ``b``; ties share the gradient equally.

    >>> a = Value([1.0, 2.0, 3.0]); b = Value([2.0, 2.0, 2.0])
    >>> m = maximum(a, b); m.sum().backward()
    >>> m.data.tolist(), a.grad.tolist(), b.grad.tolist()   # the tie splits its gradient
    ([2.0, 2.0, 3.0], [0.0, 0.5, 1.0], [1.0, 0.5, 0.0])
    """
    return _binary(MAXIMUM, a, b)


# m = minimum(a, b):  dm/da = 1 where a < b, 1/2 at ties
MINIMUM = Op(
    "minimum", np.minimum, inputs="a, b", elementwise=True, code="np.minimum(a, b)",
    as_torch="torch.minimum(a, b)", as_onnx="Min",
    d_a=lambda a, b, out: _wins(b, a),
    d_b=lambda a, b, out: _wins(a, b),
    formula="d min(a,b)/da = 1 if a < b, 1/2 if a == b, else 0",
)


@MINIMUM.public
def minimum(a, b):
    """Elementwise smaller of ``a`` and ``b``; ties share the gradient equally.

    >>> a = Value([1.0, 2.0, 3.0]); b = Value([2.0, 2.0, 2.0])
    >>> m = minimum(a, b); m.sum().backward()
    >>> m.data.tolist(), a.grad.tolist(), b.grad.tolist()   # the tie splits its gradient
    ([1.0, 2.0, 2.0], [1.0, 0.5, 0.0], [0.0, 0.5, 1.0])
    """
    return _binary(MINIMUM, a, b)


# y = where(cond, a, b):  dy/da = cond,  dy/db = not cond
def _where_data(a, b, condition):
    data = np.where(condition, a, b)
    dtype = np.result_type(a, b)
    return _scalar_or_array(data if data.dtype == dtype else data.astype(dtype))


WHERE = Op(
    "where", _where_data, inputs="a, b", elementwise=True, code="np.where(condition, a, b)",
    as_torch="torch.where(condition, a, b)", as_onnx=lambda g, a, b, condition: g.op("Where", g.const(condition), a, b),
    d_a=lambda a, b, out, condition: condition,
    d_b=lambda a, b, out, condition: ~condition,
    formula="d where(c,a,b)/da = c, /db = not c",
)


@WHERE.public
def where(condition, a, b):
    """Elementwise ``a`` where `condition` holds, else ``b`` (condition is data,
    not differentiated).

    >>> x = Value([-1.0, 0.0, 2.0])
    >>> y = where(x > 0, x, 0.0); y.sum().backward()
    >>> y.data.tolist(), x.grad.tolist()              # only the branch taken gets gradient (x = 0: the 0.0)
    ([0.0, 0.0, 2.0], [0.0, 0.0, 1.0])
    """
    condition = np.asarray(_data(condition), dtype=bool)
    a, b = _operands(a, b)
    try:
        return WHERE.apply(a, b, condition=condition)
    except ValueError:
        raise ShapeError(
            f"where: condition {condition.shape}, a {a.shape} and b {b.shape} cannot be broadcast together"
        ) from None


# ==========================================================================
# Matrix product
# ==========================================================================
# C = A @ B:  dL/dA = dL/dC @ B^T,  dL/dB = A^T @ dL/dC
# A 1-d operand acts as a row (on the left) or a column (on the right); every
# share is summed back over broadcast batch dimensions.
def _matmul_d_a(g, a, b, out):
    if a.ndim == 1 and b.ndim == 1:  # dot product: a scalar
        return g * b
    if a.ndim == 1:  # (k,) @ (..., k, m) -> (..., m)
        share = F.matmul(g.reshape(g.shape[:-1] + (1, g.shape[-1])), b.swapaxes(-1, -2))
        share = share.reshape(share.shape[:-2] + (share.shape[-1],))
    elif b.ndim == 1:  # (..., n, k) @ (k,) -> (..., n)
        share = g.reshape(g.shape + (1,)) * b
    else:
        share = F.matmul(g, b.swapaxes(-1, -2))
    return sum_to_shape(share, a.shape)


def _matmul_d_b(g, a, b, out):
    if a.ndim == 1 and b.ndim == 1:
        return g * a
    if a.ndim == 1:
        share = a.reshape(-1, 1) * g.reshape(g.shape[:-1] + (1, g.shape[-1]))
    elif b.ndim == 1:
        share = F.matmul(a.swapaxes(-1, -2), g.reshape(g.shape + (1,)))
        share = share.reshape(share.shape[:-1])
    else:
        share = F.matmul(a.swapaxes(-1, -2), g)
    return sum_to_shape(share, b.shape)


MATMUL = Op(
    "matmul", lambda a, b: _scalar_or_array(np.matmul(a, b)), inputs="A, B", code="A @ B",
    as_torch="A @ B", as_onnx="MatMul",
    d_A=_matmul_d_a,
    d_B=_matmul_d_b,
    formula="dL/dA = dL/dC @ B^T, dL/dB = A^T @ dL/dC", output="C",
    methods=("__matmul__",), reflected=("__rmatmul__",),
    shown_local=lambda i, a, b: b if i == 0 else a,  # the local gradient of a product: the other operand
    course_name='Z',
    as_numpy={"forward": "A @ B", "A": "g @ B.T", "B": "A.T @ g"},
)


@MATMUL.public
def matmul(a, b):
    """Matrix product ``a @ b``: 1-d, 2-d and batched (leading dimensions broadcast).

    >>> A = Value(np.ones((2, 3))); B = Value(np.ones((3, 4)))
    >>> C = matmul(A, B); C.sum().backward()
    >>> C.shape, A.grad.shape, B.grad.shape           # (2, 3) @ (3, 4) -> (2, 4); each grad has its input's shape
    ((2, 4), (2, 3), (3, 4))
    >>> float(A.grad[0, 0])                           # dL/dA = dL/dC @ B.T: a sum over the 4 columns
    4.0
    """
    a, b = _operands(a, b)
    if a.ndim == 0 or b.ndim == 0:
        raise ShapeError(f"matmul: operands must have at least one dimension, got shapes {a.shape} and {b.shape}; use * for scalars")
    try:
        return MATMUL.apply(a, b)
    except ValueError:
        k_a = a.shape[-1]
        k_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
        raise ShapeError(
            f"matmul: shapes {a.shape} and {b.shape} do not fit: the last dimension of the first "
            f"({k_a}) must equal the {'only' if b.ndim == 1 else 'second-to-last'} dimension of the second ({k_b})"
        ) from None


def _linear_onnx(g, x, weight, bias=None):
    if len(g.shapes[0]) == 2:  # a batch of rows: one Gemm
        return g.op("Gemm", x, weight, bias, transB=1)
    product = g.op("MatMul", x, g.op("Transpose", weight, perm=[1, 0]))
    return product if bias is None else g.op("Add", product, bias)


# y = x W^T + b, every leading dimension of x a batch dimension:
#   dL/dx = dL/dy @ W,   dL/dW = dL/dy^T @ x (summed over the batch),   dL/db = dL/dy summed over the batch
# (dL/dW comes out as a fresh (out, in) array: no transposed view to copy into the weight's .grad)
def _linear_data(x, weight, bias=None):
    data = x @ weight.T
    if bias is None:
        return data
    if np.result_type(data, bias) == data.dtype:
        data += bias  # into the fresh product: one array fewer per layer
        return data
    return data + bias


def _linear_d_weight(g, x, weight, *bias_and_out):
    g_rows = g.reshape(-1, weight.shape[0])
    return F.matmul(g_rows.swapaxes(-1, -2), x.reshape(-1, weight.shape[1]))


LINEAR = Op(
    "linear", _linear_data, inputs="x, weight, bias", code="x @ weight.T + bias",
    as_torch="F.linear(x, weight, bias)", as_onnx=_linear_onnx,
    d_x=lambda g, x, weight, *bias_and_out: F.matmul(g, weight),
    d_weight=_linear_d_weight,
    d_bias=lambda g, x, weight, bias, out: g.reshape(-1, weight.shape[0]).sum(axis=0),
    formula="dL/dx = dL/dy @ W, dL/dW = dL/dy^T @ x, dL/db = sum(dL/dy)",
    course_name='Z',
    as_numpy={"forward": "x @ weight.T + bias", "x": "g @ weight", "weight": "g.T @ x", "bias": "g.sum(axis=0)"},
)


@LINEAR.public
def linear(x, weight, bias=None):
    """The affine map of a neural-network layer, ``x @ weight.T + bias``, with
    ``weight`` of shape ``(out, in)`` (PyTorch's layout) and ``bias`` of shape
    ``(out,)``; every leading dimension of `x` is a batch dimension. One node
    in the graph, where ``x @ weight.T + bias`` would make three.

    >>> x = Value([[1.0, 2.0]]); W = Value([[0.5, -1.0], [2.0, 0.0]]); b = Value([0.1, 0.2])
    >>> y = linear(x, W, b)
    >>> y.data.tolist()
    [[-1.4, 2.2]]
    >>> y.sum().backward(); W.grad.tolist(), b.grad.tolist()   # dL/dW = dL/dy^T @ x
    ([[1.0, 2.0], [1.0, 2.0]], [1.0, 1.0])
    """
    x, weight = as_value(x), as_value(weight)
    if weight.ndim != 2:
        raise ShapeError(f"linear: weight must have shape (out_features, in_features), got {weight.shape}")
    if x.ndim == 0 or x.shape[-1] != weight.shape[1]:
        raise ShapeError(
            f"linear: input of shape {x.shape} does not fit a weight of shape {weight.shape} "
            f"(out_features, in_features): the input's last dimension must be {weight.shape[1]}"
        )
    if bias is None:
        return LINEAR.apply(x, weight)
    bias = as_value(bias, weight)
    if bias.shape != (weight.shape[0],):
        raise ShapeError(f"linear: bias must have shape ({weight.shape[0]},) for a weight of shape {weight.shape}, got {bias.shape}")
    return LINEAR.apply(x, weight, bias)


# ==========================================================================
# Reductions
# ==========================================================================
# s = sum(x):  ds/dx_i = 1, so every input element gets the upstream gradient copied back
SUM = Op(
    "sum", lambda x, axis, keepdims: _scalar_or_array(x.sum(axis=axis, keepdims=keepdims)), inputs="x",
    as_torch=_forms.torch_reduction("torch.sum"), as_onnx=_forms.onnx_reduction("ReduceSum"),
    code="x.sum(axis=axis, keepdims=keepdims)",
    as_numpy={"forward": "x.sum(axis=axis, keepdims=keepdims)"},  # (an array's sum is never a 0-d array)
    d_x=lambda g, x, out, axis, keepdims: F.broadcast_to(_expand_reduced(g, x.shape, axis, keepdims), x.shape),
    formula="d sum(x)/dx_i = 1", methods=("sum",),
)


@SUM.public
def sum(x, axis=None, keepdims=False):
    """Sum over `axis` (None for all; an int or a tuple of ints).

    >>> x = Value([[1.0, 2.0], [3.0, 4.0]])
    >>> s = sum(x, axis=0); s.sum().backward()
    >>> s.data.tolist(), x.grad.tolist()              # every element counts once
    ([4.0, 6.0], [[1.0, 1.0], [1.0, 1.0]])
    """
    x = as_value(x)
    return SUM.apply(x, axis=_axes(axis, x.ndim, "sum"), keepdims=keepdims)


# m = mean(x):  dm/dx_i = 1/n   (divided before it is broadcast: one pass over the reduced gradient)
def _divide_by_count(g, count):
    """g / count, where count is a number of elements. float16 cannot hold a
    count above 65504 (it would become inf, and the gradient 0): there 1/count
    is computed in float64 and then cast, as PyTorch does."""
    if g.dtype == np.float16 and count > 2048:  # 2048: float16 holds every integer up to it
        return g * float(1 / count)
    return g / count


MEAN = Op(
    "mean", lambda x, axis, keepdims: _scalar_or_array(x.mean(axis=axis, keepdims=keepdims)), inputs="x",
    as_torch=_forms.torch_reduction("torch.mean"), as_onnx=_forms.onnx_reduction("ReduceMean"),
    code="x.mean(axis=axis, keepdims=keepdims)",
    as_numpy={"forward": "x.mean(axis=axis, keepdims=keepdims)"},
    d_x=lambda g, x, out, axis, keepdims: F.broadcast_to(
        _divide_by_count(_expand_reduced(g, x.shape, axis, keepdims), _count(x.shape, axis)), x.shape),
    formula="d mean(x)/dx_i = 1/n", methods=("mean",),
)


@MEAN.public
def mean(x, axis=None, keepdims=False):
    """Mean over `axis` (None for all).

    >>> x = Value([1.0, 2.0, 3.0, 6.0]); m = mean(x); m.backward()
    >>> float(m.data), x.grad.tolist()                # each element gets 1/n
    (3.0, [0.25, 0.25, 0.25, 0.25])
    """
    x = as_value(x)
    axes = _axes(axis, x.ndim, "mean")
    if _count(x.shape, axes) == 0:
        raise ShapeError(f"mean: cannot average over an empty axis of shape {x.shape}")
    return MEAN.apply(x, axis=axes, keepdims=keepdims)


# m = max(x): the gradient goes to the elements equal to the extreme, split evenly among ties
def _extreme_d_x(g, x, out, axis, keepdims):
    winners = _data(x) == _data(_expand_reduced(out, x.shape, axis, keepdims))
    share_of_each = winners / winners.sum(axis=axis, keepdims=True)
    return share_of_each * _expand_reduced(g, x.shape, axis, keepdims)


MAX = Op(
    "max", lambda x, axis, keepdims: _scalar_or_array(np.max(x, axis=axis, keepdims=keepdims)), inputs="x",
    as_torch=_forms.torch_reduction("torch.amax"), as_onnx=_forms.onnx_reduction("ReduceMax"),
    code="np.max(x, axis=axis, keepdims=keepdims)",
    d_x=_extreme_d_x,
    formula="d max(x)/dx_i = 1 for the maximum (split among ties)", methods=("max",),
)
MIN = Op(
    "min", lambda x, axis, keepdims: _scalar_or_array(np.min(x, axis=axis, keepdims=keepdims)), inputs="x",
    as_torch=_forms.torch_reduction("torch.amin"), as_onnx=_forms.onnx_reduction("ReduceMin"),
    code="np.min(x, axis=axis, keepdims=keepdims)",
    d_x=_extreme_d_x,
    formula="d min(x)/dx_i = 1 for the minimum (split among ties)", methods=("min",),
)


def _extreme(op, x, axis, keepdims):
    x = as_value(x)
    axes = _axes(axis, x.ndim, op.name)
    if any(x.shape[k] == 0 for k in axes):
        raise ShapeError(f"{op.name}: cannot take the {op.name} over an empty axis of shape {x.shape}")
    return op.apply(x, axis=axes, keepdims=keepdims)


@MAX.public
def max(x, axis=None, keepdims=False):
    """Largest element over `axis`; tied maxima share the gradient equally.

    >>> x = Value([1.0, 3.0, 3.0]); m = max(x); m.backward()
    >>> float(m.data), x.grad.tolist()                # the two tied maxima split the gradient
    (3.0, [0.0, 0.5, 0.5])
    """
    return _extreme(MAX, x, axis, keepdims)


@MIN.public
def min(x, axis=None, keepdims=False):
    """Smallest element over `axis`; tied minima share the gradient equally.

    >>> x = Value([[4.0, 1.0], [2.0, 5.0]]); m = min(x, axis=1); m.sum().backward()
    >>> m.data.tolist(), x.grad.tolist()              # each row's smallest element gets the gradient
    ([1.0, 2.0], [[0.0, 1.0], [1.0, 0.0]])
    """
    return _extreme(MIN, x, axis, keepdims)


# v = var(x):  dv/dx_i = 2 (x_i - mean) / (n - ddof)
def _var_d_x(g, x, out, axis, ddof, keepdims):
    centred = x - x.mean(axis=axis, keepdims=True)
    scale = 2 / (_count(x.shape, axis) - ddof)
    return centred * (_expand_reduced(g, x.shape, axis, keepdims) * scale)  # the reduced g scaled first


VAR = Op(
    "var", lambda x, axis, ddof, keepdims: _scalar_or_array(x.var(axis=axis, ddof=ddof, keepdims=keepdims)),
    as_torch=_forms.torch_reduction("torch.var", correction="ddof"), as_onnx=_forms.onnx_variance(),
    inputs="x", code="x.var(axis=axis, ddof=ddof, keepdims=keepdims)",
    d_x=_var_d_x,
    formula="d var(x)/dx_i = 2 (x_i - mean) / (n - ddof)", methods=("var",),
)


@VAR.public
def var(x, axis=None, ddof=0, keepdims=False):
    """Variance over `axis`; ``ddof=0`` divides by n (NumPy's default), 1 by n - 1.

    >>> x = Value([1.0, 2.0, 3.0, 6.0]); v = var(x); v.backward()
    >>> float(v.data), x.grad.tolist()                # mean 3: (4+1+0+9)/4, gradient 2 (x - 3)/4
    (3.5, [-1.0, -0.5, 0.0, 1.5])
    >>> round(float(var(x, ddof=1).data), 4)          # 14/3
    4.6667
    """
    x = as_value(x)
    axes = _axes(axis, x.ndim, "var")
    count = _count(x.shape, axes)
    if count - ddof <= 0:
        raise ShapeError(f"var: {count} elements over axis {axis} of shape {x.shape} are too few for ddof={ddof}")
    return VAR.apply(x, axis=axes, ddof=ddof, keepdims=keepdims)


# z = (x - mean) / sqrt(var + eps), mean and (biased) var taken over `axis`:
#   dL/dx = (g - mean(g) - z * mean(g * z)) / sqrt(var + eps)
# (the mean and the variance depend on every x: hence the two mean terms)
def _standardize_onnx(g, x, axis, eps):
    axes = g.ints(axis)
    centred = g.op("Sub", x, g.op("ReduceMean", x, axes, keepdims=1))
    variance = g.op("ReduceMean", g.op("Mul", centred, centred), axes, keepdims=1)
    return g.op("Div", centred, g.op("Sqrt", g.op("Add", variance, g.const(float(eps)))))


def _standardize_parts(x, axis, eps):
    """The forward's steps: (mean, x - mean, variance, 1 / sqrt(variance + eps))."""
    mean = x.mean(axis=axis, keepdims=True)
    centred = x - mean
    variance = (centred * centred).mean(axis=axis, keepdims=True)
    return mean, centred, variance, 1 / np.sqrt(variance + eps)


def _standardize_data(x, axis, eps):
    _, centred, _, inv_std = _standardize_parts(x, axis, eps)
    return centred * inv_std


def _standardize_d_x(g, x, out, axis, eps):
    if isinstance(x, Value):  # create_graph: 1/sqrt(var + eps) as a node of x, to differentiate it again
        inv_std = (x.var(axis=axis, keepdims=True) + eps) ** -0.5
    else:
        inv_std = _standardize_parts(x, axis, eps)[3]
    return (g - g.mean(axis=axis, keepdims=True) - out * (g * out).mean(axis=axis, keepdims=True)) * inv_std


STANDARDIZE = Op(
    "standardize", _standardize_data, inputs="x", code="(x - x.mean(axis, keepdims=True)) / np.sqrt(x.var(axis, keepdims=True) + eps)",
    as_torch="(x - x.mean(dim=axis, keepdim=True)) / torch.sqrt(x.var(dim=axis, correction=0, keepdim=True) + eps)",
    as_onnx=_standardize_onnx,
    d_x=_standardize_d_x,
    formula="dL/dx = (g - mean(g) - z mean(g z)) / sqrt(var + eps)",
)


@STANDARDIZE.public
def standardize(x, axis=0, eps=1e-5, return_stats=False):
    """``(x - mean) / sqrt(var + eps)`` over `axis`, the normalising step of batch
    normalisation, as one operation (fewer passes over the data than composing
    mean, var and sqrt). The variance is the biased one (divides by n). With
    ``return_stats=True`` also returns the mean and the variance (NumPy arrays,
    reduced axes kept), for running statistics.

    >>> x = Value([[1.0], [2.0], [6.0]])                # mean 3, variance 14/3
    >>> z = standardize(x, axis=0, eps=0.0)
    >>> [round(v, 4) for v in z.data.ravel().tolist()]
    [-0.9258, -0.4629, 1.3887]
    >>> z[0, 0].backward()                               # moving every x together leaves z alone:
    >>> round(float(x.grad.sum()), 12)                   # the gradient sums to 0
    0.0
    """
    x = as_value(x)
    axes = _axes(axis, x.ndim, "standardize")
    if _count(x.shape, axes) == 0:
        raise ShapeError(f"standardize: cannot normalise over an empty axis of shape {x.shape}")
    mean, centred, variance, inv_std = _standardize_parts(x._data, axes, eps)
    # the same steps as STANDARDIZE.forward, kept here for the statistics
    out = record(STANDARDIZE, centred * inv_std, (x,), {"axis": axes, "eps": eps})
    return (out, mean, variance) if return_stats else out


# ==========================================================================
# Log-sum-exp, softmax, log-softmax: stable by subtracting the maximum
# ==========================================================================
def _shifted_by_max(data, axis):
    """x - max(x) along `axis`, so exp() never overflows (all-(-inf) rows stay -inf)."""
    if data.size == 0:  # nothing to shift (and np.max refuses an empty axis)
        return data, np.zeros_like(data.sum(axis=axis, keepdims=True))
    peak = data.max(axis=axis, keepdims=True)  # the method: np.max's Python wrapper costs 1.5 µs more
    peak = np.where(np.isfinite(peak), peak, 0)
    return data - peak, peak


def _logsumexp_onnx(g, x, axis, keepdims):
    if not axis:
        return g.op("Identity", x)
    axes = g.ints(axis)
    peak = g.op("ReduceMax", x, axes, keepdims=1)  # (finite logits: the shift keeps exp from overflowing)
    total = g.op("ReduceSum", g.op("Exp", g.op("Sub", x, peak)), axes, keepdims=1)
    result = g.op("Add", g.op("Log", total), peak)
    return result if keepdims else g.op("Squeeze", result, axes)


def _logsumexp_data(x, axis, keepdims):
    shifted, peak = _shifted_by_max(x, axis)
    with np.errstate(divide="ignore"):
        data = np.log(np.exp(shifted).sum(axis=axis, keepdims=True)) + peak
    if not keepdims:
        data = data.reshape([n for k, n in enumerate(x.shape) if k not in axis])
    return _scalar_or_array(data)


# d logsumexp(x)/dx_i = exp(x_i - logsumexp(x)) = softmax(x)_i
LOGSUMEXP = Op(
    "logsumexp", _logsumexp_data, inputs="x", code="np.log(np.exp(x).sum(axis=axis, keepdims=keepdims))",
    as_torch=_forms.torch_reduction("torch.logsumexp", needs_dim=True), as_onnx=_logsumexp_onnx,
    d_x=lambda g, x, out, axis, keepdims: (
        F.exp(x - _expand_reduced(out, x.shape, axis, keepdims)) * _expand_reduced(g, x.shape, axis, keepdims)
    ),
    formula="d logsumexp(x)/dx_i = softmax(x)_i", methods=("logsumexp",),
)


@LOGSUMEXP.public
def logsumexp(x, axis=None, keepdims=False):
    """``log(sum(exp(x)))`` over `axis`, without overflow for large x.

    >>> x = Value([0.0, np.log(3.0)]); y = logsumexp(x); y.backward()
    >>> round(float(y.data), 4), np.round(x.grad, 4).tolist()   # log(1 + 3); the gradient is softmax(x)
    (1.3863, [0.25, 0.75])
    >>> round(float(logsumexp(Value([1000.0, 1000.0])).data), 4)   # 1000 + log 2, no overflow
    1000.6931
    """
    x = as_value(x)
    return LOGSUMEXP.apply(x, axis=_axes(axis, x.ndim, "logsumexp"), keepdims=keepdims)


def _softmax_data(x, axis):
    e = np.exp(_shifted_by_max(x, axis)[0])
    return _scalar_or_array(e / e.sum(axis=axis, keepdims=True))


# ds_i/dx_j = s_i (delta_ij - s_j), so dL/dx = s * (g - sum(g * s))
SOFTMAX = Op(
    "softmax", _softmax_data, inputs="x", code="np.exp(x) / np.exp(x).sum(axis=axis, keepdims=True)",
    as_torch="torch.softmax(x, dim=axis)", as_onnx=lambda g, x, axis: g.op("Softmax", x, axis=axis),
    d_x=lambda g, x, out, axis: out * (g - (g * out).sum(axis=axis, keepdims=True)),
    formula="ds_i/dx_j = s_i (delta_ij - s_j)", methods=("softmax",),
    course_name='P',
)


@SOFTMAX.public
def softmax(x, axis=-1):
    """``exp(x) / sum(exp(x))`` along `axis`: positive, sums to 1, keeps the order.

    >>> x = Value([1.0, 2.0, 3.0]); p = softmax(x); p[2].backward()
    >>> np.round(p.data, 4).tolist()
    [0.09, 0.2447, 0.6652]
    >>> np.round(x.grad, 4).tolist()                  # d p_2/dx_j = p_2 (delta_2j - p_j): sums to 0
    [-0.0599, -0.1628, 0.2227]
    """
    x = as_value(x)
    return SOFTMAX.apply(x, axis=_one_axis(axis, x.ndim, "softmax"))


def _log_softmax_data(x, axis):
    shifted, _ = _shifted_by_max(x, axis)
    with np.errstate(divide="ignore"):
        return _scalar_or_array(shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True)))


# d log_softmax(x)_i/dx_j = delta_ij - softmax(x)_j
LOG_SOFTMAX = Op(
    "log_softmax", _log_softmax_data, inputs="x", code="x - np.log(np.exp(x).sum(axis=axis, keepdims=True))",
    as_torch="torch.log_softmax(x, dim=axis)", as_onnx=lambda g, x, axis: g.op("LogSoftmax", x, axis=axis),
    d_x=lambda g, x, out, axis: g - F.exp(out) * g.sum(axis=axis, keepdims=True),
    formula="d log_softmax(x)_i/dx_j = delta_ij - softmax(x)_j", methods=("log_softmax",),
)


@LOG_SOFTMAX.public
def log_softmax(x, axis=-1):
    """``x - logsumexp(x)`` along `axis`, finite for logits of any size.

    >>> x = Value([1.0, 2.0, 3.0]); y = log_softmax(x); y[2].backward()
    >>> np.round(y.data, 4).tolist()
    [-2.4076, -1.4076, -0.4076]
    >>> np.round(x.grad, 4).tolist()                  # delta_2j - softmax(x)_j
    [-0.09, -0.2447, 0.3348]
    """
    x = as_value(x)
    return LOG_SOFTMAX.apply(x, axis=_one_axis(axis, x.ndim, "log_softmax"))


# loss = -sum_c y_c log p_c with p = softmax(x) (a class with y_c = 0 adds 0, even at p_c = 0),
# p kept for the backward (the forward has it):
#   d loss/dx = p * sum_c(y_c) - y   (p - y when y is a probability vector)
#   d loss/dy = -log p
def _softmax_cross_entropy_onnx(g, x, y, axis):
    terms = g.op("Mul", y, g.op("LogSoftmax", x, axis=axis))
    return g.op("Neg", g.op("ReduceSum", terms, g.ints([axis]), keepdims=0))


def _softmax_cross_entropy_data(x, y, axis):
    shifted, _ = _shifted_by_max(x, axis)
    exps = np.exp(shifted)
    total = exps.sum(axis=axis, keepdims=True)
    with np.errstate(divide="ignore"):
        log_p = shifted - np.log(total)
    if np.minimum.reduce(log_p, axis=None) == -np.inf:
        # A logit of -inf has log p = -inf; where its class has target 0 the term is
        # 0 (0 log 0 = 0, as xlogy and PyTorch's class-index loss count it), not 0 * -inf = NaN.
        # (Only then: on a small network's step the two extra passes cost 3%.)
        log_p = np.where(y == 0, 0, log_p)
    return _scalar_or_array(-(y * log_p).sum(axis=axis)), exps / total


def _per_class(g, x, axis):
    return _expand_reduced(g, x.shape, () if axis is None else (axis,), False)


def _softmax_cross_entropy_d_x(g, x, y, out, axis, probs=None):
    if probs is None or isinstance(x, Value):  # not kept, or create_graph: p as a node, to differentiate again
        probs = F.softmax(x, axis)
    return _per_class(g, x, axis) * (probs * y.sum(axis=axis, keepdims=True) - y)


SOFTMAX_CROSS_ENTROPY = Op(
    "softmax_cross_entropy", _softmax_cross_entropy_data, inputs="x, y", saves={"probs": "x"},
    as_torch="-(y * torch.log_softmax(x, dim=axis)).sum(dim=axis)", as_onnx=_softmax_cross_entropy_onnx,
    code="-(y * log_softmax(x, axis)).sum(axis=axis), and P = softmax(x, axis)",
    d_x=_softmax_cross_entropy_d_x,
    d_y=lambda g, x, y, out, axis, probs=None: -(_per_class(g, x, axis) * F.log_softmax(x, axis)),
    formula="d CE(softmax(x), y)/dx = p - y (p = softmax(x))",
    course_name='losses',
    as_numpy={"x": "np.expand_dims(g, axis) * (probs * y.sum(axis=axis, keepdims=True) - y)"},
)


@SOFTMAX_CROSS_ENTROPY.public
def softmax_cross_entropy(logits, targets, axis=-1):
    """Cross-entropy of `targets` against ``softmax(logits)`` along `axis`, fused:
    ``-sum(targets * log_softmax(logits), axis)``, with the gradient ``p - y``
    computed in one step (stable for logits of any size). `targets` has the
    logits' shape (one-hot rows, probabilities, or weighted rows); the result
    has the logits' shape without `axis`.

    >>> loss = softmax_cross_entropy(Value([[2.0, 0.0]]), [[1.0, 0.0]])
    >>> round(float(loss.data[0]), 4)                 # -log(e^2 / (e^2 + 1))
    0.1269
    """
    x = as_value(logits)
    if isinstance(targets, Value):
        y = targets
    else:
        y = as_value(np.asarray(targets, dtype=x.dtype))
    if x.shape != y.shape:
        raise ShapeError(
            f"softmax_cross_entropy: logits have shape {x.shape} but targets {y.shape}; targets must be "
            f"one row of class weights per row of logits (for class indices, use nn.functional.cross_entropy)"
        )
    return SOFTMAX_CROSS_ENTROPY.apply(x, y, axis=_one_axis(axis, x.ndim, "softmax_cross_entropy"))


# l = -(y log p + (1 - y) log(1 - p)), each log clamped at -100 (PyTorch's BCELoss):
#   dl/dp = (p - y) / (p (1 - p)), the denominator kept >= 1e-12 so that a
#           confidently wrong p of exactly 0 or 1 still gets a (huge, finite) gradient
#   dl/dy = log(1 - p) - log(p), with the same clamps
_BCE_LOG_FLOOR = -100.0
_BCE_EPS = float(np.float32(1e-12))  # PyTorch keeps this epsilon as a float32 (9.99999996e-13)


def _binary_cross_entropy_onnx(g, p, y):
    floor, one = g.const(_BCE_LOG_FLOOR), g.const(1.0)
    log_p = g.op("Max", g.op("Log", p), floor)
    log_not_p = g.op("Max", g.op("Log", g.op("Sub", one, p)), floor)
    return g.op("Neg", g.op("Add", g.op("Mul", y, log_p), g.op("Mul", g.op("Sub", one, y), log_not_p)))


def _binary_cross_entropy_data(p, y):
    with np.errstate(divide="ignore"):
        log_p = np.maximum(np.log(p), _BCE_LOG_FLOOR)
        log_not_p = np.maximum(np.log1p(-p), _BCE_LOG_FLOOR)
    return _scalar_or_array(-(y * log_p + (1 - y) * log_not_p))


BINARY_CROSS_ENTROPY = Op(
    "binary_cross_entropy", _binary_cross_entropy_data, inputs="p, y", elementwise=True,
    as_torch="-(y * torch.log(p).clamp(min=-100.0) + (1 - y) * torch.log1p(-p).clamp(min=-100.0))",
    as_onnx=_binary_cross_entropy_onnx,
    code="-(y * np.log(p) + (1 - y) * np.log1p(-p))",
    d_p=lambda p, y, out: (p - y) / F.maximum(p * (1 - p), _BCE_EPS),
    d_y=lambda p, y, out: F.maximum(F.log(1 - p), _BCE_LOG_FLOOR) - F.maximum(F.log(p), _BCE_LOG_FLOOR),
    formula="d BCE(p, y)/dp = (p - y) / (p (1 - p))",
)


@BINARY_CROSS_ENTROPY.public
def binary_cross_entropy(probs, targets):
    """Elementwise binary cross-entropy ``-(y log p + (1 - y) log(1 - p))`` of
    probabilities `probs` against `targets`, each log clamped at -100 as in
    PyTorch, so ``p = 0`` or ``1`` gives a finite loss and a finite gradient.
    A `probs` outside [0, 1] (or NaN) is refused with a ValueError.

    >>> round(float(binary_cross_entropy(Value(0.8), 1.0).data), 4)   # -log 0.8
    0.2231
    """
    p, y = _operands(probs, targets)
    if not np.all((p._data >= 0) & (p._data <= 1)):  # NaN fails both comparisons too
        raise ValueError(
            "binary_cross_entropy: all input elements must be probabilities in [0, 1]; "
            "for raw scores (logits) use binary_cross_entropy_with_logits"
        )
    try:
        return BINARY_CROSS_ENTROPY.apply(p, y)
    except ValueError:
        raise ShapeError(f"binary_cross_entropy: probs {p.shape} and targets {y.shape} cannot be broadcast together") from None


# ==========================================================================
# Shape operations: the gradient is moved, not changed
# ==========================================================================
def _reshape_data(x, shape):
    return _scalar_or_array(x.reshape(shape))


RESHAPE = Op(
    "reshape", _reshape_data, inputs="x", code="x.reshape(shape)",
    as_torch="x.reshape(shape)", as_onnx=lambda g, x, shape: g.op("Reshape", x, g.ints(shape)),
    d_x=lambda g, x, out, shape: g.reshape(x.shape),
    formula="gradient reshaped back", methods=("reshape",),
)


@RESHAPE.public
def reshape(x, *shape):
    """Same data in a new shape (one dimension may be -1).

    >>> x = Value([0.0, 1.0, 2.0, 3.0, 4.0, 5.0]); y = reshape(x, 2, 3); y.shape
    (2, 3)
    >>> (y * y).sum().backward(); x.grad.tolist()     # 2 x, back in x's shape
    [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
    """
    x = as_value(x)
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    try:
        return RESHAPE.apply(x, shape=shape)
    except ValueError:
        raise ShapeError(f"reshape: cannot reshape shape {x.shape} ({x.size} elements) into {shape}") from None
    except TypeError:
        raise TypeError(f"reshape: the new shape must be ints (one may be -1), got {shape!r}") from None


TRANSPOSE = Op(
    "transpose", lambda x, axes: x.transpose(axes), inputs="x", code="x.transpose(axes)",
    as_torch="x.permute(axes)", as_onnx=lambda g, x, axes: g.op("Transpose", x, perm=list(axes)) if axes else g.op("Identity", x),
    d_x=lambda g, x, out, axes: g.transpose(tuple(np.argsort(axes).tolist())),
    formula="gradient transposed back", methods=("transpose",),
)


@TRANSPOSE.public
def transpose(x, *axes):
    """Permute the axes (reverse them when none are given), like NumPy.

    >>> x = Value([[1.0, 2.0, 3.0]]); y = transpose(x); y.shape
    (3, 1)
    >>> (y * Value([[1.0], [10.0], [100.0]])).sum().backward(); x.grad.tolist()   # transposed back
    [[1.0, 10.0, 100.0]]
    """
    x = as_value(x)
    if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
        axes = tuple(axes[0])
    if not axes:
        axes = tuple(range(x.ndim))[::-1]
    if not all(isinstance(a, (int, np.integer)) and -x.ndim <= a < x.ndim for a in axes) or sorted(
        a % x.ndim for a in axes
    ) != list(range(x.ndim)):
        raise ShapeError(f"transpose: axes {axes} are not a permutation of the {x.ndim} axes of shape {x.shape}")
    return TRANSPOSE.apply(x, axes=tuple(a % x.ndim for a in axes))


def swapaxes(x, axis1, axis2):
    """Exchange two axes (a transpose).

    >>> x = Value(np.zeros((2, 3, 4))); y = swapaxes(x, 0, 2); y.shape
    (4, 3, 2)
    >>> y.sum().backward(); x.grad.shape              # the gradient is swapped back
    (2, 3, 4)
    """
    x = as_value(x)
    for axis in (axis1, axis2):
        if not isinstance(axis, (int, np.integer)) or not -x.ndim <= axis < x.ndim:
            raise ShapeError(f"swapaxes: axis {axis!r} is out of range for shape {x.shape}")
    axes = list(range(x.ndim))
    axes[axis1], axes[axis2] = axes[axis2], axes[axis1]
    return transpose(x, axes)


BROADCAST_TO = Op(
    "broadcast_to", lambda x, shape: _scalar_or_array(np.broadcast_to(x, shape)), inputs="x",
    as_torch="x.expand(shape)", as_onnx=lambda g, x, shape: g.op("Expand", x, g.ints(shape)),
    code="np.broadcast_to(x, shape)",
    d_x=lambda g, x, out, shape: sum_to_shape(g, x.shape),
    formula="gradient summed over the copies", methods=("broadcast_to",),
)


@BROADCAST_TO.public
def broadcast_to(x, shape):
    """Repeat `x` along new or length-1 axes to `shape` (a read-only view).

    >>> x = Value([1.0, 2.0]); y = broadcast_to(x, (3, 2)); y.data.tolist()
    [[1.0, 2.0], [1.0, 2.0], [1.0, 2.0]]
    >>> y.sum().backward(); x.grad.tolist()           # three copies: the gradient sums them
    [3.0, 3.0]
    """
    x = as_value(x)
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    try:
        return BROADCAST_TO.apply(x, shape=shape)
    except (ValueError, TypeError):
        raise ShapeError(f"broadcast_to: cannot broadcast shape {x.shape} to {shape}") from None


ASTYPE = Op(
    "astype", lambda x, dtype: _scalar_or_array(np.asarray(x).astype(dtype)), inputs="x", code="x.astype(dtype)",
    as_torch="x.to(dtype)", as_onnx=lambda g, x, dtype: g.op("Cast", x, to=g.elem_type(dtype)),
    d_x=lambda g, x, out, dtype: g.astype(x.dtype),
    formula="gradient cast back", methods=("astype",),
)


@ASTYPE.public
def astype(x, dtype):
    """The same numbers in another float dtype.

    >>> x = Value([1.5, 2.5]); y = astype(x, np.float32); str(y.dtype)
    'float32'
    >>> (y * 2).sum().backward(); str(x.grad.dtype), x.grad.tolist()   # the gradient is cast back
    ('float64', [2.0, 2.0])
    """
    x = as_value(x)
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"astype: {dtype!r} is not a dtype; use float16, float32 or float64") from None
    if dtype.kind != "f":
        raise TypeError(f"astype: Values hold floats; {dtype} is not a float dtype")
    return ASTYPE.apply(x, dtype=dtype)


def _getitem_onnx(g, x, index):
    """Basic indexing (ints, slices, None, ...) and one integer array, as Gather, Slice and Unsqueeze."""
    parts = list(index) if isinstance(index, tuple) else [index]
    shape = list(g.shapes[0])
    if builtins.sum(isinstance(p, np.ndarray) for p in parts) > 1 or any(
            isinstance(p, np.ndarray) and p.dtype == bool and p.ndim != 1 for p in parts):
        raise ShapeError("getitem: an index with several arrays (or a mask of more than one axis) has no ONNX form")
    if Ellipsis in [p for p in parts if not isinstance(p, np.ndarray)]:
        k = next(i for i, p in enumerate(parts) if p is Ellipsis)
        used = builtins.sum(1 for p in parts if p is not None and p is not Ellipsis)
        parts[k:k + 1] = [slice(None)] * (len(shape) - used)
    axis = 0
    for part in parts:
        if part is None:
            x = g.op("Unsqueeze", x, g.ints([axis]))
            shape.insert(axis, 1)
            axis += 1
        elif isinstance(part, slice):
            start, stop, step = part.indices(shape[axis])
            if (start, stop, step) != (0, shape[axis], 1):
                stop = stop if stop >= 0 else -(1 << 63)  # a negative step running past the first element
                x = g.op("Slice", x, g.ints([start]), g.ints([stop]), g.ints([axis]), g.ints([step]))
            shape[axis] = len(range(*part.indices(shape[axis])))
            axis += 1
        elif isinstance(part, np.ndarray) and part.dtype == bool:
            x = g.op("Compress", x, g.const(part), axis=axis)
            shape[axis] = int(part.sum())
            axis += 1
        else:
            positions = np.asarray(part) % shape[axis]
            x = g.op("Gather", x, g.const(positions.astype(np.int64)), axis=axis)
            shape[axis:axis + 1] = list(positions.shape)
            axis += positions.ndim
    return x


# ---- indexing: y = x[index];  dL/dx = zeros with dL/dy added at `index`
def _is_plain_index(index):
    """Slices, ints, None and Ellipsis select each element at most once;
    integer arrays may repeat an element, so their gradients must add up."""
    parts = index if isinstance(index, tuple) else (index,)
    for part in parts:
        if isinstance(part, np.ndarray) and part.dtype == bool and len(parts) == 1:
            continue
        if not (part is None or part is Ellipsis or isinstance(part, (slice, int, np.integer))):
            return False
    return True


def _scatter_data(g, shape, index):
    """zeros(shape) with g added at `index` (repeated positions accumulate)."""
    dtype = g.dtype if hasattr(g, "dtype") else np.float64
    grad = np.zeros(shape, dtype=dtype)
    if _is_plain_index(index):
        grad[index] = g
    else:
        np.add.at(grad, index, g)
    return _scalar_or_array(grad)


def _getitem_data(x, index):
    data = x[index]
    return _scalar_or_array(np.asarray(data) if np.ndim(data) else data)


GETITEM = Op(
    "getitem", _getitem_data, inputs="x", code="x[index]",
    as_torch=lambda t, x, index: f"{x}[{t.index(index)}]", as_onnx=_getitem_onnx,
    d_x=lambda g, x, out, index: F.scatter(g, x.shape, index),
    formula="gradient placed back at the index", methods=("__getitem__",),
)


def _clean_index(index):
    if isinstance(index, Value):
        raise TypeError("indexing: index with NumPy data (ints, slices, int or bool arrays), not a Value")
    if isinstance(index, list):
        index = np.asarray(index)
    if isinstance(index, tuple):
        index = tuple(np.asarray(p) if isinstance(p, list) else p for p in index)
    return index


@GETITEM.public
def getitem(x, index):
    """``x[index]`` with NumPy indexing: ints, slices, integer arrays, boolean masks.
    Repeated integer indices accumulate their gradients.

    >>> x = Value([1.0, 2.0, 3.0]); y = getitem(x, [0, 0, 2]); y.data.tolist()
    [1.0, 1.0, 3.0]
    >>> y.sum().backward(); x.grad.tolist()           # index 0 was taken twice: its gradients add up
    [2.0, 0.0, 1.0]
    """
    x = as_value(x)
    index = _clean_index(index)
    try:
        return GETITEM.apply(x, index=index)
    except IndexError as exc:
        raise IndexError(f"getitem: index {index!r} does not fit shape {x.shape}: {exc}") from None


# the backward of indexing, as an operation of its own so that it can be differentiated again
SCATTER = Op(
    "scatter", _scatter_data, inputs="x", code="np.add.at(np.zeros(shape), index, x)",
    d_x=lambda g, x, out, shape, index: g[index],
    formula="gradient read back at the index",
)


@SCATTER.public
def scatter(x, axis=None, index=None, src=None, reduce=None, *, shape=None):
    """Two forms, told apart by ``shape=``:

    * ``scatter(g, shape=..., index=...)``: zeros(shape) with `g` added at the
      NumPy `index` (repeated positions accumulate): the backward of indexing.
    * ``scatter(x, axis, index, src, reduce=None)``: PyTorch's ``scatter``, a
      copy of `x` with `src` (a Value or a number) written along `axis` at
      `index`; ``reduce="add"`` or ``"multiply"`` combines instead (see
      ``scatter_elements`` in ``ops_scatter.py``; also ``x.scatter(...)``).

    >>> y = scatter(Value([1.0, 2.0]), shape=(3,), index=np.array([0, 0])); y.data.tolist()
    [3.0, 0.0, 0.0]
    >>> scatter(Value(np.zeros(3)), 0, np.array([2, 0]), Value([1.0, 2.0])).data.tolist()
    [2.0, 0.0, 1.0]
    """
    if shape is None:
        from .ops_scatter import scatter_elements  # (declared after this module, which it imports)

        return scatter_elements(x, axis, index, src, reduce=reduce)
    return SCATTER.apply(as_value(x), shape=shape, index=index)


# ---- joining: each input gets back its own slice of the gradient
def _concatenate_data(*values, axis):
    return np.concatenate(values, axis=axis)


def _concatenate_d_each(i, g, *values_and_out, axis):
    values = values_and_out[:-1]
    start = builtins.sum(v.shape[axis] for v in values[:i])
    return g[(slice(None),) * axis + (slice(start, start + values[i].shape[axis]),)]


CONCATENATE = Op(
    "concatenate", _concatenate_data, inputs="*values", code="np.concatenate(values, axis=axis)",
    as_torch="torch.cat(values, dim=axis)", as_onnx=lambda g, *values, axis: g.op("Concat", *values, axis=axis),
    d_each=_concatenate_d_each,
    formula="each input gets its slice of the gradient",
)


@CONCATENATE.public
def concatenate(values, axis=0):
    """Join Values along an existing axis.

    >>> a = Value([1.0, 2.0]); b = Value([3.0]); c = concatenate([a, b]); c.data.tolist()
    [1.0, 2.0, 3.0]
    >>> (c * Value([10.0, 20.0, 30.0])).sum().backward(); a.grad.tolist(), b.grad.tolist()   # each its slice
    ([10.0, 20.0], [30.0])
    """
    values = tuple(as_value(v) for v in values)
    if not values:
        raise ValueError("concatenate: needs at least one Value")
    if not isinstance(axis, (int, np.integer)) or not -values[0].ndim <= axis < builtins.max(values[0].ndim, 1):
        raise ShapeError(f"concatenate: axis {axis!r} is out of range for shapes {[v.shape for v in values]}")
    try:
        return CONCATENATE.apply(*values, axis=int(axis) % builtins.max(values[0].ndim, 1))
    except ValueError as exc:
        raise ShapeError(f"concatenate: shapes {[v.shape for v in values]} do not fit along axis {axis}: {exc}") from None


STACK = Op(
    "stack", lambda *values, axis: np.stack(values, axis=axis), inputs="*values", code="np.stack(values, axis=axis)",
    as_torch="torch.stack(values, dim=axis)",
    as_onnx=lambda g, *values, axis: g.op("Concat", *[g.op("Unsqueeze", v, g.ints([axis])) for v in values], axis=axis),
    d_each=lambda i, g, *values_and_out, axis: g[(slice(None),) * axis + (i,)],
    formula="each input gets its slice of the gradient",
)


@STACK.public
def stack(values, axis=0):
    """Join Values of one shape along a new axis.

    >>> a = Value([1.0, 2.0]); b = Value([3.0, 4.0]); s = stack([a, b]); s.data.tolist()   # a new first axis
    [[1.0, 2.0], [3.0, 4.0]]
    >>> (s * Value([[1.0], [10.0]])).sum().backward(); a.grad.tolist(), b.grad.tolist()    # each its row
    ([1.0, 1.0], [10.0, 10.0])
    """
    values = tuple(as_value(v) for v in values)
    if not values:
        raise ValueError("stack: needs at least one Value")
    if not isinstance(axis, (int, np.integer)) or not -values[0].ndim - 1 <= axis <= values[0].ndim:
        raise ShapeError(f"stack: axis {axis!r} is out of range for shapes {[v.shape for v in values]}")
    try:
        return STACK.apply(*values, axis=int(axis) % (values[0].ndim + 1))
    except ValueError as exc:
        raise ShapeError(f"stack: shapes {[v.shape for v in values]} must all be equal: {exc}") from None


# ==========================================================================
# Methods and operators of Value that are not operations of their own
# ==========================================================================
def _rtruediv(self, other):
    # number / Value is reciprocal(Value) * number, as PyTorch computes it
    return mul(reciprocal(self), other)


def _compare(np_fn):
    # comparisons give plain boolean arrays, never graph nodes
    return lambda self, other: np_fn(self._data, _data(other))


for _name, _fn in {
    "__rtruediv__": _rtruediv, "__pos__": lambda self: self, "swapaxes": swapaxes,
    "__lt__": _compare(np.less), "__le__": _compare(np.less_equal),
    "__gt__": _compare(np.greater), "__ge__": _compare(np.greater_equal),
    "__eq__": _compare(np.equal), "__ne__": _compare(np.not_equal),
}.items():
    setattr(Value, _name, _fn)
Value.T = property(lambda self: transpose(self), doc="The Value with its axes reversed (a matrix transposed).")
__all__.append("swapaxes")
