"""Every operation of the engine: its forward pass and, beside it, its gradient.

Two kinds of operation:

* **Elementwise** ops (``a * b``, ``tanh``, ...) give their *local gradient*:
  how the output moves when one input moves, element by element (for
  ``c = a * b``: ``dc/da = b``; for ``t = tanh(x)``: ``1 - t**2``). The engine
  multiplies it by the upstream gradient and sums the product back to the
  input's shape (broadcasting is handled there, once).
* **Structural** ops (``matmul``, ``sum``, ``reshape``, ``softmax``, ...) mix
  elements, so their local gradient is a Jacobian too big to write out; they
  give the product directly (a vector-Jacobian product: for ``C = A @ B``,
  ``dL/dA = dL/dC @ B.T``).

Each rule takes ``(i, g, out, args, ctx, F)``: which input, the upstream
gradient, the op's output, its inputs, the op's context (an axis, an index...)
and a math namespace ``F``. In a first-order pass they are NumPy arrays and
``F`` is NumPy; with ``create_graph=True`` they are Values and ``F`` is this
module, so the same rule builds a differentiable graph.
"""

from __future__ import annotations

import builtins
import math
import operator

import numpy as np

from . import engine
from .engine import Value, _constant, as_value, record, sum_to_shape
from .errors import ShapeError

__all__ = [
    "linear", "standardize", "add", "sub", "mul", "div", "neg", "pow", "reciprocal", "exp", "log", "log1p",
    "sqrt", "abs", "tanh", "sigmoid", "relu", "softplus", "erf", "clip", "maximum",
    "minimum", "where", "matmul", "sum", "mean", "max", "min", "var", "logsumexp",
    "softmax", "log_softmax", "softmax_cross_entropy", "binary_cross_entropy", "reshape", "transpose", "swapaxes", "broadcast_to",
    "concatenate", "stack", "getitem", "astype", "OPS",
]

OPS = {}  # name -> Op, for documentation, tests and the graph renderer


class Op:
    """An operation's identity and gradient rule, shared by all its nodes.

    ``local_rule`` is the rule when it gives a local gradient (elementwise
    ops: the engine multiplies it by the upstream gradient), None when it
    gives the product itself (structural ops). ``expands_to`` is None except
    for the ops that keep a Python number on the node (see `WithNumber`).
    ``mirrors_input`` is True for an elementwise op whose one-input nodes
    have their input's shape and dtype, and local gradients that keep them
    (tanh, exp, x * k...): the engine then has nothing to sum back or cast;
    an op defined outside this module is always checked."""

    __slots__ = ("name", "rule", "formula", "local_rule", "expands_to", "mirrors_input")

    def __init__(self, name, rule, formula, register=True):
        self.name = name
        self.rule = rule
        self.formula = formula  # the derivative as a lecture writes it, for display
        self.local_rule = None
        self.expands_to = None
        self.mirrors_input = False
        if register:
            OPS[name] = self

    def __repr__(self):
        return f"<{type(self).__name__} {self.name}: {self.formula}>"


class Elementwise(Op):
    """``rule(i, out, args, ctx, F)`` returns the local gradient d out / d args[i]
    (an array broadcastable to the output, or the number 1 or -1). The engine
    multiplies the upstream gradient by it and sums the product back to the
    input's shape."""

    __slots__ = ()

    def __init__(self, name, rule, formula, register=True):
        super().__init__(name, rule, formula, register)
        self.local_rule = rule

    def local_gradient(self, i, out, args, ctx, F):
        return self.rule(i, out, args, ctx, F)


class Structural(Op):
    """``rule(i, g, out, args, ctx, F)`` returns the upstream gradient times the
    Jacobian, already in the shape of args[i] (or None: no gradient)."""

    __slots__ = ()

    def local_gradient(self, i, out, args, ctx, F):
        return None  # a Jacobian: shown as the op's formula instead


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


def _binary(op, fn, a, b):
    """Compute ``fn(a, b)`` elementwise and record it; `a` or `b` may be a number.

    A Python number is computed with as it is: NumPy then keeps the Value's
    dtype and takes its fast path for scalars, with the same result as the
    number cast to that dtype (NEP 50), which is what the graph records. The
    number stays on the node (see `WithNumber`) where the op has that form.
    """
    if isinstance(a, Value):
        if isinstance(b, Value):
            try:  # (_broadcast written out: the commonest case of all, one call fewer)
                data = fn(a._data, b._data)
            except ValueError:
                raise _cannot_broadcast(op.name, a, b) from None
            return record(op, data, (a, b))
        if type(b) is float or type(b) is int:
            data = a._data
            kept = _NUMBER_ON_RIGHT.get(op)
            if kept is not None:
                out = record(kept, fn(data, b), (a,), b)
                out._number = b  # for engine.expand_number: ctx is let go at backward
                return out
            return record(op, fn(data, b), (a, _constant(data.dtype.type(b))))
    elif type(a) is float or type(a) is int:
        if isinstance(b, Value):
            data = b._data
            kept = _NUMBER_ON_LEFT.get(op)
            if kept is not None:
                out = record(kept, fn(a, data), (b,), a)
                out._number = a
                return out
            return record(op, fn(a, data), (_constant(data.dtype.type(a)), b))
    a, b = _operands(a, b)
    return record(op, _broadcast(op.name, fn, a, b), (a, b))


def _broadcast(name, fn, a, b):
    try:
        return fn(a._data, b._data)
    except ValueError:
        raise _cannot_broadcast(name, a, b) from None


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
    """Put back the reduced axes of an upstream gradient (as length 1)."""
    return g if keepdims else g.reshape(_kept_shape(in_shape, axes))


# ==========================================================================
# Elementwise arithmetic
# ==========================================================================

# c = a + b:  dc/da = 1,  dc/db = 1
ADD = Elementwise("add", lambda i, out, args, ctx, F: 1, "d(a+b)/da = 1, d(a+b)/db = 1")


def add(a, b):
    """Elementwise ``a + b`` with NumPy broadcasting.

    >>> a = Value([1.0, 2.0]); b = Value(10.0)
    >>> c = add(a, b); c.sum().backward()
    >>> c.data.tolist(), a.grad.tolist(), float(b.grad)   # b was broadcast to both: its gradient sums them
    ([11.0, 12.0], [1.0, 1.0], 2.0)
    """
    return _binary(ADD, operator.add, a, b)


# c = a - b:  dc/da = 1,  dc/db = -1
SUB = Elementwise("sub", lambda i, out, args, ctx, F: 1 if i == 0 else -1, "d(a-b)/da = 1, d(a-b)/db = -1")


def sub(a, b):
    """Elementwise ``a - b`` with NumPy broadcasting.

    >>> a = Value(5.0); b = Value(3.0)
    >>> c = sub(a, b); c.backward()
    >>> float(c.data), float(a.grad), float(b.grad)
    (2.0, 1.0, -1.0)
    """
    return _binary(SUB, operator.sub, a, b)


# c = a * b:  dc/da = b,  dc/db = a
MUL = Elementwise("mul", lambda i, out, args, ctx, F: args[1] if i == 0 else args[0], "d(a*b)/da = b, d(a*b)/db = a")


def mul(a, b):
    """Elementwise ``a * b`` with NumPy broadcasting.

    >>> a = Value(2.0); b = Value(-3.0)
    >>> c = mul(a, b); c.backward()
    >>> float(c.data), float(a.grad), float(b.grad)   # dc/da = b, dc/db = a
    (-6.0, -3.0, 2.0)
    """
    return _binary(MUL, operator.mul, a, b)


# c = a / b:  dc/da = 1/b,  dc/db = -a/b**2 = -c/b
def _div_local(i, out, args, ctx, F):
    a, b = args
    # c / -b, not -(c / b): the sign goes on b, often small (a divisor broadcast
    # over a batch), instead of a second pass over c
    return 1 / b if i == 0 else out / -b


DIV = Elementwise("div", _div_local, "d(a/b)/da = 1/b, d(a/b)/db = -a/b^2")


def div(a, b):
    """Elementwise ``a / b`` with NumPy broadcasting.

    >>> a = Value(1.0); b = Value(4.0)
    >>> c = div(a, b); c.backward()
    >>> float(c.data), float(a.grad), float(b.grad)   # 1/b and -a/b**2
    (0.25, 0.25, -0.0625)
    """
    return _binary(DIV, operator.truediv, a, b)


# --------------------------------------------------------------------------
# A Python number in an expression: x * 1.01, 1 - x
#
# The number is not made into a node of its own: the result keeps it (as
# PyTorch keeps a scalar operand), which spares a Value per operation on the
# paths where operations are smallest (scalar graphs, long elementwise chains).
# Anything that looks at the graph (Value.inputs, drawings, the stepper)
# sees the classic form, the binary op with the number as a constant input:
# engine.expand_number() turns the node into it when it is first looked at.
# --------------------------------------------------------------------------
class WithNumber(Elementwise):
    """`binary` with a Python number as its input `position` (0 or 1), kept on
    the node; ``rule(i, out, args, k, F)`` gives the local gradient for the
    one Value input ``args[0]``, the number being ``k``, an int or float:
    NumPy computes with it in the other operand's dtype (NEP 50), as it did
    in the forward pass."""

    __slots__ = ()

    def __init__(self, binary, position, rule):
        super().__init__(binary.name, rule, binary.formula, register=False)
        self.expands_to = (binary, position)
        self.mirrors_input = True  # a number takes the Value's shape and dtype


# a + k, k + a:  d/da = 1
# a - k: d/da = 1;  k - a: d/da = -1
# a * k, k * a:  d/da = k
# a / k:  d/da = 1/k   (k / a is computed as reciprocal(a) * k)
_NUMBER_ON_RIGHT = {
    ADD: WithNumber(ADD, 1, lambda i, out, args, k, F: 1),
    SUB: WithNumber(SUB, 1, lambda i, out, args, k, F: 1),
    MUL: WithNumber(MUL, 1, lambda i, out, args, k, F: k),
    # 1/k in a's dtype: NumPy's division (inf for k = 0, where Python's would raise)
    DIV: WithNumber(DIV, 1, lambda i, out, args, k, F: 1 / args[0].dtype.type(k)),
}
_NUMBER_ON_LEFT = {
    ADD: WithNumber(ADD, 0, lambda i, out, args, k, F: 1),
    SUB: WithNumber(SUB, 0, lambda i, out, args, k, F: -1),
    MUL: WithNumber(MUL, 0, lambda i, out, args, k, F: k),
}


# y = -x:  dy/dx = -1
NEG = Elementwise("neg", lambda i, out, args, ctx, F: -1, "d(-x)/dx = -1")


def neg(x):
    """Elementwise ``-x``.

    >>> x = Value(3.0); y = neg(x); y.backward()
    >>> float(y.data), float(x.grad)
    (-3.0, -1.0)
    """
    return record(NEG, -x._data, (x,))


# y = 1/x:  dy/dx = -1/x**2 = -y*y
RECIPROCAL = Elementwise("reciprocal", lambda i, out, args, ctx, F: -(out * out), "d(1/x)/dx = -1/x^2")


def reciprocal(x):
    """Elementwise ``1 / x`` (what ``number / Value`` computes, as in PyTorch).

    >>> x = Value(2.0); y = reciprocal(x); y.backward()
    >>> float(y.data), float(x.grad)                  # -1/x**2
    (0.5, -0.25)
    """
    x = as_value(x)
    return record(RECIPROCAL, 1 / x._data, (x,))


# y = x**n for a constant n:  dy/dx = n * x**(n-1)
# (x**0 is the constant 1, so its gradient is 0 even at x = 0, where n x**(n-1) would be 0 * inf)
POW_CONST = Elementwise(
    "pow", lambda i, out, args, ctx, F: 0.0 if ctx == 0 else ctx * args[0] ** (ctx - 1), "d(x^n)/dx = n x^(n-1)"
)


# y = a**b for Values a, b:  dy/da = b * a**(b-1),  dy/db = a**b * log(a)
def _pow_local(i, out, args, ctx, F):
    a, b = args
    if i == 0:
        # at a == 0 with b == 0, b * a**(b-1) is 0 * inf: a**0 is the constant 1 there, so the
        # gradient is 0 (PyTorch's convention); everywhere else the formula stands as it is
        with np.errstate(divide="ignore", invalid="ignore"):
            return F.where((_data(b) == 0) & (_data(a) == 0), 0.0, b * a ** (b - 1))
    # where a == 0 and b >= 0, a**b does not move with b (PyTorch's convention); where a == 0
    # and b < 0, a**b log(a) = inf * -inf = -inf (PyTorch's too). The log is taken of 1 where its
    # result is not used, so a second derivative meets no inf there.
    flat = (_data(a) == 0) & (_data(b) >= 0)
    return F.where(flat, 0.0, out * F.log(F.where(flat, 1.0, a)))


POW = Elementwise("pow", _pow_local, "d(a^b)/da = b a^(b-1), d(a^b)/db = a^b log(a)")


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
            n = exponent_data.item()
            with np.errstate(divide="ignore", invalid="ignore"):
                data = base._data ** base._data.dtype.type(n) if isinstance(n, float) else base._data ** n
            return record(POW_CONST, data, (base,), n)
    base, exponent = _operands(base, exponent)
    with np.errstate(divide="ignore", invalid="ignore"):
        data = _broadcast("pow", operator.pow, base, exponent)
    return record(POW, data, (base, exponent))


def _data(x):
    """The NumPy data of a Value, or an array as it is (for masks in rules)."""
    return x._data if isinstance(x, Value) else x


# ==========================================================================
# Elementwise functions
# ==========================================================================

# y = exp(x):  dy/dx = exp(x) = y
EXP = Elementwise("exp", lambda i, out, args, ctx, F: out, "d exp(x)/dx = exp(x)")


def exp(x):
    """Elementwise ``e ** x``.

    >>> x = Value(1.0); y = exp(x); y.backward()
    >>> round(float(y.data), 4), round(float(x.grad), 4)   # the gradient is exp(x) itself
    (2.7183, 2.7183)
    """
    x = as_value(x)
    with np.errstate(over="ignore"):
        return record(EXP, np.exp(x._data), (x,))


# y = log(x):  dy/dx = 1/x
LOG = Elementwise("log", lambda i, out, args, ctx, F: 1 / args[0], "d log(x)/dx = 1/x")


def log(x):
    """Elementwise natural logarithm (NaN for negatives, -inf at 0, as NumPy;
    run inside ``detect_anomaly()`` to stop there).

    >>> x = Value(2.0); y = log(x); y.backward()
    >>> round(float(y.data), 4), float(x.grad)        # 1/x
    (0.6931, 0.5)
    """
    x = as_value(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        return record(LOG, np.log(x._data), (x,))


# y = log(1 + x):  dy/dx = 1/(1 + x)
LOG1P = Elementwise("log1p", lambda i, out, args, ctx, F: 1 / (1 + args[0]), "d log(1+x)/dx = 1/(1+x)")


def log1p(x):
    """Elementwise ``log(1 + x)``, accurate for small x.

    >>> x = Value(1e-20); y = log1p(x); y.backward()
    >>> float(y.data), float(log(1 + x).data)         # 1 + 1e-20 rounds to 1 before log sees it
    (1e-20, 0.0)
    >>> float(x.grad)                                 # 1/(1 + x)
    1.0
    """
    x = as_value(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        return record(LOG1P, np.log1p(x._data), (x,))


# y = sqrt(x):  dy/dx = 1/(2 sqrt(x)) = 1/(2y)
SQRT = Elementwise("sqrt", lambda i, out, args, ctx, F: 1 / (2 * out), "d sqrt(x)/dx = 1/(2 sqrt(x))")


def sqrt(x):
    """Elementwise square root (its gradient at 0 is inf, as in PyTorch).

    >>> x = Value(4.0); y = sqrt(x); y.backward()
    >>> float(y.data), float(x.grad)                  # 1/(2 sqrt(x))
    (2.0, 0.25)
    """
    x = as_value(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        return record(SQRT, np.sqrt(x._data), (x,))


# y = |x|:  dy/dx = sign(x), and 0 at x = 0 (the subgradient PyTorch uses)
ABS = Elementwise("abs", lambda i, out, args, ctx, F: np.sign(_data(args[0])), "d|x|/dx = sign(x) (0 at 0)")


def abs(x):
    """Elementwise absolute value; its gradient at 0 is 0.

    >>> x = Value([-2.0, 0.0, 3.0]); abs(x).sum().backward()
    >>> x.grad.tolist()                               # sign(x), and 0 at the kink
    [-1.0, 0.0, 1.0]
    """
    x = as_value(x)
    return record(ABS, np.abs(x._data), (x,))


# t = tanh(x):  dt/dx = 1 - t**2
TANH = Elementwise("tanh", lambda i, out, args, ctx, F: 1 - out**2, "d tanh(x)/dx = 1 - tanh(x)^2")


def tanh(x):
    """Elementwise hyperbolic tangent.

    >>> x = Value(0.5); t = tanh(x); t.backward()
    >>> round(float(t.data), 4), round(float(x.grad), 4)   # the gradient is 1 - t**2
    (0.4621, 0.7864)
    """
    x = as_value(x)
    return record(TANH, np.tanh(x._data), (x,))


# s = sigmoid(x) = 1/(1 + e^-x):  ds/dx = s (1 - s)
SIGMOID = Elementwise("sigmoid", lambda i, out, args, ctx, F: out * (1 - out), "d sigmoid(x)/dx = s(1 - s)")


def _sigmoid_data(x):
    # exp(-x) overflows to inf for x < -709 and 1/(1 + inf) = 0 is the right limit
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-x))


def sigmoid(x):
    """Elementwise logistic function ``1 / (1 + exp(-x))``, finite for any x.

    >>> x = Value(0.0); s = sigmoid(x); s.backward()
    >>> float(s.data), float(x.grad)                  # s (1 - s), largest at 0
    (0.5, 0.25)
    """
    x = as_value(x)
    return record(SIGMOID, _sigmoid_data(x._data), (x,))


# y = max(x, 0):  dy/dx = 1 where x > 0, else 0 (0 at the kink, as PyTorch)
RELU = Elementwise("relu", lambda i, out, args, ctx, F: _data(out) > 0, "d relu(x)/dx = 1 if x > 0 else 0")


def relu(x):
    """Elementwise ``max(x, 0)``; its gradient at 0 is 0.

    >>> x = Value([-1.0, 0.0, 2.0]); y = relu(x); y.sum().backward()
    >>> y.data.tolist(), x.grad.tolist()              # the gradient at the kink x = 0 is 0
    ([0.0, 0.0, 2.0], [0.0, 0.0, 1.0])
    """
    x = as_value(x)
    data = x._data
    # a scalar takes the fast path; NaN stays NaN either way
    if data.ndim == 0:
        return record(RELU, data.dtype.type(0) if data <= 0 else data, (x,))
    return record(RELU, np.maximum(data, 0), (x,))


# y = log(1 + e^x):  dy/dx = sigmoid(x)
SOFTPLUS = Elementwise("softplus", lambda i, out, args, ctx, F: F.sigmoid(args[0]), "d softplus(x)/dx = sigmoid(x)")


def softplus(x):
    """Elementwise ``log(1 + exp(x))``, computed without overflow for any x.

    >>> x = Value(0.0); y = softplus(x); y.backward()
    >>> round(float(y.data), 4), float(x.grad)        # log 2, and the gradient sigmoid(0)
    (0.6931, 0.5)
    >>> float(softplus(Value(1000.0)).data)           # no overflow: about x for large x
    1000.0
    """
    x = as_value(x)
    return record(SOFTPLUS, np.logaddexp(x._data.dtype.type(0), x._data), (x,))


# y = erf(x):  dy/dx = 2/sqrt(pi) * exp(-x**2)
_TWO_OVER_SQRT_PI = 2 / math.sqrt(math.pi)
ERF = Elementwise("erf", lambda i, out, args, ctx, F: _TWO_OVER_SQRT_PI * F.exp(-(args[0] * args[0])), "d erf(x)/dx = 2/sqrt(pi) exp(-x^2)")

# NumPy has no erf. W. J. Cody's rational approximations (Math. Comp. 23, 1969)
# give it to about 1e-16 relative, vectorised: x P(x^2)/Q(x^2) near 0, and
# erf = 1 - erfc with erfc(x) = exp(-x^2) R(x) further out.
_ERF_SMALL_P = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02,
                3.20937758913846947e03, 1.85777706184603153e-1)
_ERF_SMALL_Q = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03,
                2.84423683343917062e03)
_ERFC_MID_P = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01,
               2.98635138197400131e02, 8.81952221241769090e02, 1.71204761263407058e03,
               2.05107837782607147e03, 1.23033935479799725e03, 2.15311535474403846e-8)
_ERFC_MID_Q = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02,
               1.62138957456669019e03, 3.29079923573345963e03, 4.36261909014324716e03,
               3.43936767414372164e03, 1.23033935480374942e03)
_ERFC_TAIL_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1,
                1.60837851487422766e-2, 6.58749161529837803e-4, 1.63153871373020978e-2)
_ERFC_TAIL_Q = (2.56852019228982242e00, 1.87295284992346725e00, 5.27905102951428412e-1,
                6.05183413124413191e-2, 2.33520497626869185e-3)


def _cody_ratio(t, p, q):
    """Cody's nested evaluation of the rational function P(t)/Q(t) (Q monic), in place."""
    n = len(q)
    num = p[n] * t
    den = t.copy()
    for k in range(n - 1):
        num += p[k]
        num *= t
        den += q[k]
        den *= t
    num += p[n - 1]
    den += q[n - 1]
    num /= den
    return num


def _erf_data(x):
    # Each range's formula runs on the whole array, clipped into its range (so
    # nothing overflows), and np.where picks per element: cheaper than gathering
    # and scattering each range's elements. A range no element needs is skipped.
    y = np.abs(np.asarray(x, dtype=np.float64))
    result = np.ones_like(y)
    in_tail = y > 4.0
    if in_tail.any():  # erfc(y) = exp(-y^2) / y * (1/sqrt(pi) - R(1/y^2)/y^2); erf rounds to 1 beyond 6
        yt = np.clip(y, 4.0, 6.0)
        inverse_square = 1 / (yt * yt)
        erfc = (1 / math.sqrt(math.pi) - inverse_square * _cody_ratio(inverse_square, _ERFC_TAIL_P, _ERFC_TAIL_Q)) / yt
        result = np.where(in_tail, 1 - np.exp(-yt * yt) * erfc, result)
    in_middle = (y > 0.46875) & (y <= 4.0)
    if in_middle.any():  # erfc(y) = exp(-y^2) R(y) <= 0.5 here, so rounding y*y barely moves erf
        ym = np.clip(y, 0.46875, 4.0)
        result = np.where(in_middle, 1 - np.exp(-ym * ym) * _cody_ratio(ym, _ERFC_MID_P, _ERFC_MID_Q), result)
    in_small = y <= 0.46875
    if in_small.any():  # erf(y) = y R(y^2)
        ys = np.minimum(y, 0.46875)
        result = np.where(in_small, ys * _cody_ratio(ys * ys, _ERF_SMALL_P, _ERF_SMALL_Q), result)
    result = np.where(np.isnan(y), np.nan, result)
    return _scalar_or_array(np.copysign(result, x).astype(np.result_type(x), copy=False))


def erf(x):
    """Elementwise error function (used by the exact GELU).

    >>> x = Value(0.5); y = erf(x); y.backward()
    >>> round(float(y.data), 4), round(float(x.grad), 4)   # 2/sqrt(pi) exp(-x**2)
    (0.5205, 0.8788)
    """
    x = as_value(x)
    return record(ERF, _erf_data(x._data), (x,))


# y = clip(x, lo, hi):  dy/dx = 1 where lo <= x <= hi, else 0 (bounds inclusive, as PyTorch)
def _clip_local(i, out, args, ctx, F):
    lo, hi = ctx
    x = _data(args[0])
    inside = np.ones(np.shape(x), dtype=bool)
    if lo is not None:
        inside &= x >= lo
    if hi is not None:
        inside &= x <= hi
    return inside


CLIP = Elementwise("clip", _clip_local, "d clip(x)/dx = 1 inside [lo, hi], else 0")


def clip(x, min=None, max=None):
    """Elementwise clamp to ``[min, max]`` (either may be None).

    >>> x = Value([-2.0, 0.0, 1.0, 3.0]); y = clip(x, 0.0, 1.0); y.sum().backward()
    >>> y.data.tolist(), x.grad.tolist()              # bounds inclusive: gradient 1 at x = 0 and at x = 1
    ([0.0, 0.0, 1.0, 1.0], [0.0, 1.0, 1.0, 0.0])
    """
    x = as_value(x)
    if min is None and max is None:
        raise ValueError("clip: give at least one of min and max")
    data = x._data
    if min is not None:
        data = np.maximum(data, min)
    if max is not None:
        data = np.minimum(data, max)
    return record(CLIP, _scalar_or_array(np.asarray(data, dtype=x.dtype)), (x,), (min, max))


# m = maximum(a, b):  dm/da = 1 where a > b, 1/2 at ties (PyTorch splits ties evenly)
def _maximum_local(i, out, args, ctx, F):
    a, b = _data(args[0]), _data(args[1])
    mine, other = (a, b) if i == 0 else (b, a)
    return (mine > other) + 0.5 * (mine == other)


MAXIMUM = Elementwise("maximum", _maximum_local, "d max(a,b)/da = 1 if a > b, 1/2 if a == b, else 0")


def maximum(a, b):
    """Elementwise larger of ``a`` and ``b``; ties share the gradient equally.

    >>> a = Value([1.0, 2.0, 3.0]); b = Value([2.0, 2.0, 2.0])
    >>> m = maximum(a, b); m.sum().backward()
    >>> m.data.tolist(), a.grad.tolist(), b.grad.tolist()   # the tie splits its gradient
    ([2.0, 2.0, 3.0], [0.0, 0.5, 1.0], [1.0, 0.5, 0.0])
    """
    a, b = _operands(a, b)
    return record(MAXIMUM, _broadcast("maximum", np.maximum, a, b), (a, b))


def _minimum_local(i, out, args, ctx, F):
    a, b = _data(args[0]), _data(args[1])
    mine, other = (a, b) if i == 0 else (b, a)
    return (mine < other) + 0.5 * (mine == other)


MINIMUM = Elementwise("minimum", _minimum_local, "d min(a,b)/da = 1 if a < b, 1/2 if a == b, else 0")


def minimum(a, b):
    """Elementwise smaller of ``a`` and ``b``; ties share the gradient equally.

    >>> a = Value([1.0, 2.0, 3.0]); b = Value([2.0, 2.0, 2.0])
    >>> m = minimum(a, b); m.sum().backward()
    >>> m.data.tolist(), a.grad.tolist(), b.grad.tolist()   # the tie splits its gradient
    ([1.0, 2.0, 2.0], [1.0, 0.5, 0.0], [0.0, 0.5, 1.0])
    """
    a, b = _operands(a, b)
    return record(MINIMUM, _broadcast("minimum", np.minimum, a, b), (a, b))


# y = where(cond, a, b):  dy/da = cond,  dy/db = not cond
WHERE = Elementwise("where", lambda i, out, args, ctx, F: ctx if i == 0 else ~ctx, "d where(c,a,b)/da = c, /db = not c")


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
        data = np.where(condition, a._data, b._data)
    except ValueError:
        raise ShapeError(
            f"where: condition {condition.shape}, a {a.shape} and b {b.shape} cannot be broadcast together"
        ) from None
    if data.dtype != np.result_type(a._data, b._data):
        data = data.astype(np.result_type(a._data, b._data))
    return record(WHERE, _scalar_or_array(data), (a, b), condition)


# ==========================================================================
# Matrix product
# ==========================================================================
def _matmul_rule(i, g, out, args, ctx, F):
    # C = A @ B:  dL/dA = dL/dC @ B^T,  dL/dB = A^T @ dL/dC
    # A 1-d operand acts as a row (on the left) or a column (on the right).
    a, b = args
    if a.ndim == 1 and b.ndim == 1:  # dot product: a scalar
        return g * b if i == 0 else g * a
    if a.ndim == 1:  # (k,) @ (..., k, m) -> (..., m)
        g_row = g.reshape(g.shape[:-1] + (1, g.shape[-1]))
        share = F.matmul(g_row, b.swapaxes(-1, -2)) if i == 0 else a.reshape(-1, 1) * g_row
        if i == 0:
            share = share.reshape(share.shape[:-2] + (share.shape[-1],))
    elif b.ndim == 1:  # (..., n, k) @ (k,) -> (..., n)
        g_col = g.reshape(g.shape + (1,))
        share = g_col * b if i == 0 else F.matmul(a.swapaxes(-1, -2), g_col)
        if i == 1:
            share = share.reshape(share.shape[:-1])
    else:
        share = F.matmul(g, b.swapaxes(-1, -2)) if i == 0 else F.matmul(a.swapaxes(-1, -2), g)
    return sum_to_shape(share, args[i].shape)


MATMUL = Structural("matmul", _matmul_rule, "dL/dA = dL/dC @ B^T, dL/dB = A^T @ dL/dC")


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
        data = np.matmul(a._data, b._data)
    except ValueError:
        k_a = a.shape[-1]
        k_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
        raise ShapeError(
            f"matmul: shapes {a.shape} and {b.shape} do not fit: the last dimension of the first "
            f"({k_a}) must equal the {'only' if b.ndim == 1 else 'second-to-last'} dimension of the second ({k_b})"
        ) from None
    return record(MATMUL, _scalar_or_array(data), (a, b))


def _linear_rule(i, g, out, args, ctx, F):
    # y = x W^T + b, every leading dimension of x a batch dimension:
    #   dL/dx = dL/dy @ W,   dL/dW = dL/dy^T @ x (summed over the batch),   dL/db = dL/dy summed over the batch
    # (dL/dW comes out as a fresh (out, in) array: no transposed view to copy into the weight's .grad)
    x, weight = args[0], args[1]
    if i == 0:
        return F.matmul(g, weight)
    g_rows = g.reshape(-1, weight.shape[0])
    if i == 1:
        return F.matmul(g_rows.swapaxes(-1, -2), x.reshape(-1, weight.shape[1]))
    return g_rows.sum(axis=0)


LINEAR = Structural("linear", _linear_rule, "dL/dx = dL/dy @ W, dL/dW = dL/dy^T @ x, dL/db = sum(dL/dy)")


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
    data = x._data @ weight._data.T
    if bias is None:
        return record(LINEAR, data, (x, weight))
    bias = as_value(bias, weight)
    if bias.shape != (weight.shape[0],):
        raise ShapeError(f"linear: bias must have shape ({weight.shape[0]},) for a weight of shape {weight.shape}, got {bias.shape}")
    if np.result_type(data, bias._data) == data.dtype:
        data += bias._data  # into the fresh product: one array fewer per layer
    else:
        data = data + bias._data
    return record(LINEAR, data, (x, weight, bias))


# ==========================================================================
# Reductions
# ==========================================================================
def _sum_rule(i, g, out, args, ctx, F):
    # every input element contributes once to its sum: the gradient is copied back
    axes, keepdims = ctx
    shape = args[0].shape
    return F.broadcast_to(_expand_reduced(g, shape, axes, keepdims), shape)


SUM = Structural("sum", _sum_rule, "d sum(x)/dx_i = 1")


def sum(x, axis=None, keepdims=False):
    """Sum over `axis` (None for all; an int or a tuple of ints).

    >>> x = Value([[1.0, 2.0], [3.0, 4.0]])
    >>> s = sum(x, axis=0); s.sum().backward()
    >>> s.data.tolist(), x.grad.tolist()              # every element counts once
    ([4.0, 6.0], [[1.0, 1.0], [1.0, 1.0]])
    """
    x = as_value(x)
    axes = _axes(axis, x.ndim, "sum")
    return record(SUM, _scalar_or_array(x._data.sum(axis=axes, keepdims=keepdims)), (x,), (axes, keepdims))


def _mean_rule(i, g, out, args, ctx, F):
    # d mean(x)/dx_i = 1/n
    axes, keepdims, count = ctx
    shape = args[0].shape
    # divided before it is broadcast: one pass over the reduced gradient, not the input's shape
    return F.broadcast_to(_divide_by_count(_expand_reduced(g, shape, axes, keepdims), count), shape)


def _divide_by_count(g, count):
    """g / count, where count is a number of elements. float16 cannot hold a
    count above 65504 (it would become inf, and the gradient 0): there 1/count
    is computed in float64 and then cast, as PyTorch does."""
    if g.dtype == np.float16 and count > 2048:  # 2048: float16 holds every integer up to it
        return g * float(1 / count)
    return g / count


MEAN = Structural("mean", _mean_rule, "d mean(x)/dx_i = 1/n")


def mean(x, axis=None, keepdims=False):
    """Mean over `axis` (None for all).

    >>> x = Value([1.0, 2.0, 3.0, 6.0]); m = mean(x); m.backward()
    >>> float(m.data), x.grad.tolist()                # each element gets 1/n
    (3.0, [0.25, 0.25, 0.25, 0.25])
    """
    x = as_value(x)
    axes = _axes(axis, x.ndim, "mean")
    count = _count(x.shape, axes)
    if count == 0:
        raise ShapeError(f"mean: cannot average over an empty axis of shape {x.shape}")
    data = x._data.mean(axis=axes, keepdims=keepdims)
    return record(MEAN, _scalar_or_array(data), (x,), (axes, keepdims, count))


def _extreme_rule(i, g, out, args, ctx, F):
    # the gradient goes to the elements equal to the extreme, split evenly among ties
    axes, keepdims = ctx
    x = args[0]
    shape = x.shape
    winners = _data(x) == _data(_expand_reduced(out, shape, axes, keepdims))
    share_of_each = winners / winners.sum(axis=axes, keepdims=True)
    return share_of_each * _expand_reduced(g, shape, axes, keepdims)


MAX = Structural("max", _extreme_rule, "d max(x)/dx_i = 1 for the maximum (split among ties)")
MIN = Structural("min", _extreme_rule, "d min(x)/dx_i = 1 for the minimum (split among ties)")


def _extreme(op, reducer, x, axis, keepdims):
    x = as_value(x)
    axes = _axes(axis, x.ndim, op.name)
    if any(x.shape[k] == 0 for k in axes):
        raise ShapeError(f"{op.name}: cannot take the {op.name} over an empty axis of shape {x.shape}")
    return record(op, _scalar_or_array(reducer(x._data, axis=axes, keepdims=keepdims)), (x,), (axes, keepdims))


def max(x, axis=None, keepdims=False):
    """Largest element over `axis`; tied maxima share the gradient equally.

    >>> x = Value([1.0, 3.0, 3.0]); m = max(x); m.backward()
    >>> float(m.data), x.grad.tolist()                # the two tied maxima split the gradient
    (3.0, [0.0, 0.5, 0.5])
    """
    return _extreme(MAX, np.max, x, axis, keepdims)


def min(x, axis=None, keepdims=False):
    """Smallest element over `axis`; tied minima share the gradient equally.

    >>> x = Value([[4.0, 1.0], [2.0, 5.0]]); m = min(x, axis=1); m.sum().backward()
    >>> m.data.tolist(), x.grad.tolist()              # each row's smallest element gets the gradient
    ([1.0, 2.0], [[0.0, 1.0], [1.0, 0.0]])
    """
    return _extreme(MIN, np.min, x, axis, keepdims)


def _var_rule(i, g, out, args, ctx, F):
    # d var(x)/dx_i = 2 (x_i - mean) / (n - ddof)
    axes, keepdims, ddof, count = ctx
    x = args[0]
    centred = x - x.mean(axis=axes, keepdims=True)
    return centred * (_expand_reduced(g, x.shape, axes, keepdims) * (2 / (count - ddof)))  # the reduced g scaled first


VAR = Structural("var", _var_rule, "d var(x)/dx_i = 2 (x_i - mean) / (n - ddof)")


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
    data = x._data.var(axis=axes, ddof=ddof, keepdims=keepdims)
    return record(VAR, _scalar_or_array(data), (x,), (axes, keepdims, ddof, count))


def _standardize_rule(i, g, out, args, ctx, F):
    # z = (x - mean) / sqrt(var + eps), mean and (biased) var taken over `axes`:
    #   dL/dx = (g - mean(g) - z * mean(g * z)) / sqrt(var + eps)
    # (the mean and the variance depend on every x: hence the two mean terms)
    axes, eps, inv_std = ctx
    x = args[0]
    if isinstance(x, Value):  # create_graph: 1/sqrt(var + eps) as a node of x, to differentiate it again
        inv_std = (x.var(axis=axes, keepdims=True) + eps) ** -0.5
    return (g - g.mean(axis=axes, keepdims=True) - out * (g * out).mean(axis=axes, keepdims=True)) * inv_std


STANDARDIZE = Structural(
    "standardize", _standardize_rule, "dL/dx = (g - mean(g) - z mean(g z)) / sqrt(var + eps)"
)


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
    mean = x._data.mean(axis=axes, keepdims=True)
    centred = x._data - mean
    variance = (centred * centred).mean(axis=axes, keepdims=True)
    inv_std = 1 / np.sqrt(variance + eps)
    out = record(STANDARDIZE, centred * inv_std, (x,), (axes, eps, inv_std))
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


def _logsumexp_rule(i, g, out, args, ctx, F):
    # d logsumexp(x)/dx_i = exp(x_i - logsumexp(x)) = softmax(x)_i
    axes, keepdims = ctx
    x = args[0]
    return F.exp(x - _expand_reduced(out, x.shape, axes, keepdims)) * _expand_reduced(g, x.shape, axes, keepdims)


LOGSUMEXP = Structural("logsumexp", _logsumexp_rule, "d logsumexp(x)/dx_i = softmax(x)_i")


def logsumexp(x, axis=None, keepdims=False):
    """``log(sum(exp(x)))`` over `axis`, without overflow for large x.

    >>> x = Value([0.0, np.log(3.0)]); y = logsumexp(x); y.backward()
    >>> round(float(y.data), 4), np.round(x.grad, 4).tolist()   # log(1 + 3); the gradient is softmax(x)
    (1.3863, [0.25, 0.75])
    >>> round(float(logsumexp(Value([1000.0, 1000.0])).data), 4)   # 1000 + log 2, no overflow
    1000.6931
    """
    x = as_value(x)
    axes = _axes(axis, x.ndim, "logsumexp")
    shifted, peak = _shifted_by_max(x._data, axes)
    with np.errstate(divide="ignore"):
        data = np.log(np.exp(shifted).sum(axis=axes, keepdims=True)) + peak
    if not keepdims:
        data = data.reshape([n for k, n in enumerate(x.shape) if k not in axes])
    return record(LOGSUMEXP, _scalar_or_array(data), (x,), (axes, keepdims))


def _softmax_rule(i, g, out, args, ctx, F):
    # ds_i/dx_j = s_i (delta_ij - s_j), so dL/dx = s * (g - sum(g * s))
    return out * (g - (g * out).sum(axis=ctx, keepdims=True))


SOFTMAX = Structural("softmax", _softmax_rule, "ds_i/dx_j = s_i (delta_ij - s_j)")


def softmax(x, axis=-1):
    """``exp(x) / sum(exp(x))`` along `axis`: positive, sums to 1, keeps the order.

    >>> x = Value([1.0, 2.0, 3.0]); p = softmax(x); p[2].backward()
    >>> np.round(p.data, 4).tolist()
    [0.09, 0.2447, 0.6652]
    >>> np.round(x.grad, 4).tolist()                  # d p_2/dx_j = p_2 (delta_2j - p_j): sums to 0
    [-0.0599, -0.1628, 0.2227]
    """
    x = as_value(x)
    axis = _one_axis(axis, x.ndim, "softmax")
    shifted, _ = _shifted_by_max(x._data, axis)
    e = np.exp(shifted)
    return record(SOFTMAX, _scalar_or_array(e / e.sum(axis=axis, keepdims=True)), (x,), axis)


def _log_softmax_rule(i, g, out, args, ctx, F):
    # d log_softmax(x)_i/dx_j = delta_ij - softmax(x)_j
    return g - F.exp(out) * g.sum(axis=ctx, keepdims=True)


LOG_SOFTMAX = Structural("log_softmax", _log_softmax_rule, "d log_softmax(x)_i/dx_j = delta_ij - softmax(x)_j")


def log_softmax(x, axis=-1):
    """``x - logsumexp(x)`` along `axis`, finite for logits of any size.

    >>> x = Value([1.0, 2.0, 3.0]); y = log_softmax(x); y[2].backward()
    >>> np.round(y.data, 4).tolist()
    [-2.4076, -1.4076, -0.4076]
    >>> np.round(x.grad, 4).tolist()                  # delta_2j - softmax(x)_j
    [-0.09, -0.2447, 0.3348]
    """
    x = as_value(x)
    axis = _one_axis(axis, x.ndim, "log_softmax")
    shifted, _ = _shifted_by_max(x._data, axis)
    with np.errstate(divide="ignore"):
        data = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
    return record(LOG_SOFTMAX, _scalar_or_array(data), (x,), axis)


def _softmax_cross_entropy_rule(i, g, out, args, ctx, F):
    # loss = -sum_c y_c log p_c with p = softmax(x):
    #   d loss/dx = p * sum_c(y_c) - y   (p - y when y is a probability vector)
    #   d loss/dy = -log p
    x, y = args
    axis, log_p = ctx
    if isinstance(x, Value):  # create_graph: rebuild log p as a node, to differentiate it again
        log_p = log_softmax(x, axis)
    g = _expand_reduced(g, x.shape, (axis,), False)
    if i == 0:
        return g * (F.exp(log_p) * y.sum(axis=axis, keepdims=True) - y)
    return -(g * log_p)


SOFTMAX_CROSS_ENTROPY = Structural(
    "softmax_cross_entropy", _softmax_cross_entropy_rule, "d CE(softmax(x), y)/dx = p - y (p = softmax(x))"
)


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
    axis = _one_axis(axis, x.ndim, "softmax_cross_entropy")
    shifted, _ = _shifted_by_max(x._data, axis)
    with np.errstate(divide="ignore"):
        log_p = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
    data = -(y._data * log_p).sum(axis=axis)
    return record(SOFTMAX_CROSS_ENTROPY, _scalar_or_array(data), (x, y), (axis, log_p))


# l = -(y log p + (1 - y) log(1 - p)), each log clamped at -100 (PyTorch's BCELoss):
#   dl/dp = (p - y) / (p (1 - p)), the denominator kept >= 1e-12 so that a
#           confidently wrong p of exactly 0 or 1 still gets a (huge, finite) gradient
#   dl/dy = log(1 - p) - log(p), with the same clamps
_BCE_LOG_FLOOR = -100.0
_BCE_EPS = float(np.float32(1e-12))  # PyTorch keeps this epsilon as a float32 (9.99999996e-13)


def _binary_cross_entropy_local(i, out, args, ctx, F):
    p, y = args
    if i == 0:
        return (p - y) / F.maximum(p * (1 - p), _BCE_EPS)
    return F.maximum(F.log(1 - p), _BCE_LOG_FLOOR) - F.maximum(F.log(p), _BCE_LOG_FLOOR)


BINARY_CROSS_ENTROPY = Elementwise(
    "binary_cross_entropy", _binary_cross_entropy_local, "d BCE(p, y)/dp = (p - y) / (p (1 - p))"
)

# one-input elementwise ops whose result has the input's shape (clip is not
# among them: array bounds can broadcast the result beyond its input)
for _op in (NEG, RECIPROCAL, POW_CONST, EXP, LOG, LOG1P, SQRT, ABS, TANH, SIGMOID, RELU, SOFTPLUS, ERF):
    _op.mirrors_input = True
del _op


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
    with np.errstate(divide="ignore"):
        log_p = np.maximum(np.log(p._data), _BCE_LOG_FLOOR)
        log_not_p = np.maximum(np.log1p(-p._data), _BCE_LOG_FLOOR)
    try:
        data = -(y._data * log_p + (1 - y._data) * log_not_p)
    except ValueError:
        raise ShapeError(f"binary_cross_entropy: probs {p.shape} and targets {y.shape} cannot be broadcast together") from None
    return record(BINARY_CROSS_ENTROPY, _scalar_or_array(data), (p, y))


# ==========================================================================
# Shape operations: the gradient is moved, not changed
# ==========================================================================
RESHAPE = Structural("reshape", lambda i, g, out, args, ctx, F: g.reshape(args[0].shape), "gradient reshaped back")


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
        data = x._data.reshape(shape)
    except ValueError:
        raise ShapeError(f"reshape: cannot reshape shape {x.shape} ({x.size} elements) into {shape}") from None
    except TypeError:
        raise TypeError(f"reshape: the new shape must be ints (one may be -1), got {shape!r}") from None
    return record(RESHAPE, _scalar_or_array(data), (x,))


TRANSPOSE = Structural(
    "transpose", lambda i, g, out, args, ctx, F: g.transpose(tuple(np.argsort(ctx).tolist())), "gradient transposed back"
)


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
    axes = tuple(a % x.ndim for a in axes)
    return record(TRANSPOSE, x._data.transpose(axes), (x,), axes)


def swapaxes(x, axis1, axis2):
    """Exchange two axes.

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


BROADCAST_TO = Structural(
    "broadcast_to", lambda i, g, out, args, ctx, F: sum_to_shape(g, args[0].shape), "gradient summed over the copies"
)


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
        data = np.broadcast_to(x._data, shape)
    except (ValueError, TypeError):
        raise ShapeError(f"broadcast_to: cannot broadcast shape {x.shape} to {shape}") from None
    return record(BROADCAST_TO, _scalar_or_array(data), (x,))


ASTYPE = Structural("astype", lambda i, g, out, args, ctx, F: g.astype(args[0].dtype), "gradient cast back")


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
    return record(ASTYPE, _scalar_or_array(np.asarray(x._data).astype(dtype)), (x,))


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


GETITEM = Structural(
    "getitem", lambda i, g, out, args, ctx, F: F.scatter(g, args[0].shape, ctx), "gradient placed back at the index"
)


def _clean_index(index):
    if isinstance(index, Value):
        raise TypeError("indexing: index with NumPy data (ints, slices, int or bool arrays), not a Value")
    if isinstance(index, list):
        index = np.asarray(index)
    if isinstance(index, tuple):
        index = tuple(np.asarray(p) if isinstance(p, list) else p for p in index)
    return index


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
        data = x._data[index]
    except IndexError as exc:
        raise IndexError(f"getitem: index {index!r} does not fit shape {x.shape}: {exc}") from None
    return record(GETITEM, _scalar_or_array(np.asarray(data) if np.ndim(data) else data), (x,), index)


SCATTER = Structural(
    "scatter", lambda i, g, out, args, ctx, F: g[ctx[1]], "gradient read back at the index"
)


def scatter(g, shape, index):
    """zeros(shape) with `g` added at `index`: the backward of indexing, as an
    operation of its own so that it can be differentiated again."""
    g = as_value(g)
    return record(SCATTER, _scatter_data(g._data, shape, index), (g,), (shape, index))


# ---- joining
def _concatenate_rule(i, g, out, args, ctx, F):
    # each input gets back its own slice of the gradient
    axis, bounds = ctx
    start, stop = bounds[i], bounds[i + 1]
    return g[(slice(None),) * axis + (slice(start, stop),)]


CONCATENATE = Structural("concatenate", _concatenate_rule, "each input gets its slice of the gradient")


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
    try:
        data = np.concatenate([v._data for v in values], axis=axis)
    except ValueError as exc:
        raise ShapeError(f"concatenate: shapes {[v.shape for v in values]} do not fit along axis {axis}: {exc}") from None
    axis = axis % data.ndim
    bounds = np.concatenate([[0], np.cumsum([v.shape[axis] for v in values])]).tolist()
    return record(CONCATENATE, data, values, (axis, bounds))


STACK = Structural(
    "stack", lambda i, g, out, args, ctx, F: g[(slice(None),) * ctx + (i,)], "each input gets its slice of the gradient"
)


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
    try:
        data = np.stack([v._data for v in values], axis=axis)
    except ValueError as exc:
        raise ShapeError(f"stack: shapes {[v.shape for v in values]} must all be equal: {exc}") from None
    return record(STACK, data, values, axis % data.ndim)


# ==========================================================================
# The two math namespaces the rules are written against
# ==========================================================================
class ArrayMath:
    """First-order backward: rules run on NumPy arrays."""

    exp = staticmethod(np.exp)
    log = staticmethod(np.log)
    matmul = staticmethod(np.matmul)
    broadcast_to = staticmethod(np.broadcast_to)
    sigmoid = staticmethod(_sigmoid_data)
    scatter = staticmethod(_scatter_data)
    maximum = staticmethod(np.maximum)

    @staticmethod
    def where(condition, a, b):
        return np.where(condition, a, b)


class ValueMath:
    """Backward with ``create_graph=True``: rules run on Values and are recorded."""

    exp = staticmethod(exp)
    log = staticmethod(log)
    matmul = staticmethod(matmul)
    broadcast_to = staticmethod(broadcast_to)
    sigmoid = staticmethod(sigmoid)
    scatter = staticmethod(scatter)
    where = staticmethod(where)
    maximum = staticmethod(maximum)


engine.ARRAY_MATH = ArrayMath
engine.VALUE_MATH = ValueMath


# ==========================================================================
# Operators and methods on Value
# ==========================================================================
def _reflected(fn):
    return lambda self, other: fn(other, self)


def _rtruediv(self, other):
    # number / Value is reciprocal(Value) * number, as PyTorch computes it
    return mul(reciprocal(self), other)


def _compare(np_fn):
    # comparisons give plain boolean arrays, never graph nodes
    return lambda self, other: np_fn(self._data, _data(other))


_METHODS = {
    "__add__": add, "__radd__": _reflected(add),
    "__sub__": sub, "__rsub__": _reflected(sub),
    "__mul__": mul, "__rmul__": _reflected(mul),
    "__truediv__": div, "__rtruediv__": _rtruediv,
    "__pow__": pow, "__rpow__": _reflected(pow),
    "__matmul__": matmul, "__rmatmul__": _reflected(matmul),
    "__neg__": neg, "__pos__": lambda self: self,
    "__getitem__": getitem,
    "__lt__": _compare(np.less), "__le__": _compare(np.less_equal),
    "__gt__": _compare(np.greater), "__ge__": _compare(np.greater_equal),
    "__eq__": _compare(np.equal), "__ne__": _compare(np.not_equal),
    "sum": sum, "mean": mean, "max": max, "min": min, "var": var,
    "exp": exp, "log": log, "log1p": log1p, "sqrt": sqrt, "abs": abs, "__abs__": abs,
    "tanh": tanh, "sigmoid": sigmoid, "relu": relu, "softplus": softplus, "erf": erf,
    "clip": clip, "logsumexp": logsumexp, "softmax": softmax, "log_softmax": log_softmax,
    "reshape": reshape, "transpose": transpose, "swapaxes": swapaxes,
    "broadcast_to": broadcast_to, "astype": astype,
}
for _name, _fn in _METHODS.items():
    setattr(Value, _name, _fn)
Value.T = property(lambda self: transpose(self), doc="The Value with its axes reversed (a matrix transposed).")
