"""Elementwise functions: ``exp``, ``log``, ``log1p``, ``sqrt``, ``abs``; the
activations ``tanh``, ``sigmoid``, ``relu``, ``softplus`` and ``erf``; ``clip``,
``maximum``, ``minimum`` and ``where``. Each is an operation of the registry of
``ops.py`` (see its docstring) with its local gradient beside it: for
``t = tanh(x)``, ``1 - t**2`` next to ``np.tanh``.

More elementwise math (``sin``, ``log2``...) and activations (``relu6``,
``mish``...) are in ``ops_math.py``.
"""

from __future__ import annotations

import math

import numpy as np

from .engine import Value, as_value  # noqa: F401  (Value: the examples)
from .errors import ShapeError
from .ops import F, Op, _binary, _data, _operands, _quiet_domain, _scalar_or_array
from .special import erf_data


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
    with _quiet_domain():
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
    with _quiet_domain():
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
    with _quiet_domain():
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
    formula="d|x|/dx = sign(x) (0 at 0)", methods=("abs", "__abs__"), numpy=("abs", "absolute"),
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
    return _scalar_or_array(np.asarray(np.clip(x, min, max), dtype=x.dtype))  # (-0.0 stays, as NumPy's and torch's)


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
    if isinstance(condition, Value):  # numbers as a condition: nonzero holds (a comparison: compile follows it)
        condition = condition != 0
    elif np.asarray(condition).dtype != bool:
        condition = np.not_equal(condition, 0)  # (a ufunc: compile makes it again from an argument's labels)
    condition = np.asarray(condition, dtype=bool)
    a, b = _operands(a, b)
    try:
        return WHERE.apply(a, b, condition=condition)
    except ValueError:
        raise ShapeError(
            f"where: condition {condition.shape}, a {a.shape} and b {b.shape} cannot be broadcast together"
        ) from None
