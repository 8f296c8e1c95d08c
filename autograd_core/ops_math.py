"""Elementwise math and activations, declared with the registry of ``ops.py``
(see its docstring): each op one declaration with its local gradient beside it.

Names are NumPy's (``arcsin``, ``log2``...); PyTorch's activation names
(``relu6``, ``hardtanh``...) are the engine's too. Every local gradient is
written with operators and the functions ``_sin``, ``_cos``... below, which
call NumPy on arrays and the engine on Values (``create_graph=True``).
"""

from __future__ import annotations

import math

import numpy as np

from .engine import Value, as_value
from .errors import ShapeError
from .modes import quiet_float_errors
from .ops import F, Op, _binary, _data, _operands, _quiet_domain, _scalar_or_array
from .ops_elementwise import softplus, tanh


def _either(np_fn, name):
    """A function of arrays (NumPy) and of Values (the engine's op `name`)."""
    return lambda x: OPS_BY_NAME[name].function(x) if isinstance(x, Value) else np_fn(x)


OPS_BY_NAME = {}
_sin, _cos = _either(np.sin, "sin"), _either(np.cos, "cos")
_sinh, _cosh = _either(np.sinh, "sinh"), _either(np.cosh, "cosh")


def _quiet(np_fn):
    """NumPy's function without warnings for values outside its domain (NaN or inf, as PyTorch)."""

    def forward(x):
        with quiet_float_errors():
            return np_fn(x)

    forward.__name__ = np_fn.__name__
    return forward


def _unary(name, np_fn, local, formula, doc_example, methods=None, as_torch=None, as_onnx=None):
    """Declare an elementwise op of one input with its local gradient `local(x, out)`
    (and its PyTorch function, its ONNX operator)."""
    op = Op(
        name, _quiet(np_fn), inputs="x", elementwise=True, code=f"np.{np_fn.__name__}(x)",
        as_torch=as_torch, as_onnx=as_onnx,
        d_x=local, formula=formula, methods=(name,) if methods is None else methods,
    )
    OPS_BY_NAME[name] = op

    def function(x):
        return op.apply(as_value(x))

    function.__name__ = function.__qualname__ = name
    function.__doc__ = doc_example
    op.public(function)
    globals()[name] = function  # a name of this module too, like the functions written out below
    return op


_LN2, _LN10 = math.log(2.0), math.log(10.0)

SIN = _unary("sin", np.sin, lambda x, out: _cos(x), "d sin(x)/dx = cos(x)", """Elementwise sine.

    >>> x = Value(0.0); y = sin(x); y.backward(); float(y.data), float(x.grad)   # cos(0)
    (0.0, 1.0)
    """, as_torch="torch.sin(x)", as_onnx="Sin")
COS = _unary("cos", np.cos, lambda x, out: -_sin(x), "d cos(x)/dx = -sin(x)", """Elementwise cosine.

    >>> x = Value(0.0); y = cos(x); y.backward(); float(y.data), float(x.grad)   # -sin(0)
    (1.0, -0.0)
    """, as_torch="torch.cos(x)", as_onnx="Cos")
TAN = _unary("tan", np.tan, lambda x, out: 1 + out * out, "d tan(x)/dx = 1 + tan(x)^2", """Elementwise tangent.

    >>> x = Value(0.0); y = tan(x); y.backward(); float(y.data), float(x.grad)   # 1 + tan(0)^2
    (0.0, 1.0)
    """, as_torch="torch.tan(x)", as_onnx="Tan")
ARCSIN = _unary("arcsin", np.arcsin, lambda x, out: (1 - x * x) ** -0.5, "d arcsin(x)/dx = 1/sqrt(1 - x^2)",
                """Elementwise inverse sine (NaN outside [-1, 1]); PyTorch's ``asin``.

    >>> x = Value(0.5); y = arcsin(x); y.backward(); round(float(y.data), 4), round(float(x.grad), 4)   # pi/6, 1/sqrt(0.75)
    (0.5236, 1.1547)
    """, as_torch="torch.asin(x)", as_onnx="Asin")
ARCCOS = _unary("arccos", np.arccos, lambda x, out: -((1 - x * x) ** -0.5), "d arccos(x)/dx = -1/sqrt(1 - x^2)",
                """Elementwise inverse cosine (NaN outside [-1, 1]); PyTorch's ``acos``.

    >>> x = Value(0.5); y = arccos(x); y.backward(); round(float(y.data), 4), round(float(x.grad), 4)   # pi/3
    (1.0472, -1.1547)
    """, as_torch="torch.acos(x)", as_onnx="Acos")
ARCTAN = _unary("arctan", np.arctan, lambda x, out: 1 / (1 + x * x), "d arctan(x)/dx = 1/(1 + x^2)",
                """Elementwise inverse tangent; PyTorch's ``atan``.

    >>> x = Value(1.0); y = arctan(x); y.backward(); round(float(y.data), 4), float(x.grad)   # pi/4, 1/2
    (0.7854, 0.5)
    """, as_torch="torch.atan(x)", as_onnx="Atan")
SINH = _unary("sinh", np.sinh, lambda x, out: _cosh(x), "d sinh(x)/dx = cosh(x)", """Elementwise hyperbolic sine.

    >>> x = Value(0.0); y = sinh(x); y.backward(); float(y.data), float(x.grad)
    (0.0, 1.0)
    """, as_torch="torch.sinh(x)", as_onnx="Sinh")
COSH = _unary("cosh", np.cosh, lambda x, out: _sinh(x), "d cosh(x)/dx = sinh(x)", """Elementwise hyperbolic cosine.

    >>> x = Value(0.0); y = cosh(x); y.backward(); float(y.data), float(x.grad)
    (1.0, 0.0)
    """, as_torch="torch.cosh(x)", as_onnx="Cosh")
ARCSINH = _unary("arcsinh", np.arcsinh, lambda x, out: (x * x + 1) ** -0.5, "d arcsinh(x)/dx = 1/sqrt(x^2 + 1)",
                 """Elementwise inverse hyperbolic sine; PyTorch's ``asinh``.

    >>> x = Value(0.0); y = arcsinh(x); y.backward(); float(y.data), float(x.grad)
    (0.0, 1.0)
    """, as_torch="torch.asinh(x)", as_onnx="Asinh")
ARCCOSH = _unary("arccosh", np.arccosh, lambda x, out: ((x - 1) * (x + 1)) ** -0.5, "d arccosh(x)/dx = 1/sqrt(x^2 - 1)",
                 """Elementwise inverse hyperbolic cosine (NaN below 1); PyTorch's ``acosh``.

    >>> x = Value(2.0); y = arccosh(x); y.backward(); round(float(y.data), 4), round(float(x.grad), 4)   # 1/sqrt(3)
    (1.317, 0.5774)
    """, as_torch="torch.acosh(x)", as_onnx="Acosh")
ARCTANH = _unary("arctanh", np.arctanh, lambda x, out: 1 / (1 - x * x), "d arctanh(x)/dx = 1/(1 - x^2)",
                 """Elementwise inverse hyperbolic tangent (NaN outside [-1, 1]); PyTorch's ``atanh``.

    >>> x = Value(0.5); y = arctanh(x); y.backward(); round(float(y.data), 4), round(float(x.grad), 4)   # 1/0.75
    (0.5493, 1.3333)
    """, as_torch="torch.atanh(x)", as_onnx="Atanh")
LOG2 = _unary("log2", np.log2, lambda x, out: 1 / (x * _LN2), "d log2(x)/dx = 1/(x ln 2)", """Elementwise base-2 logarithm.

    >>> x = Value(8.0); y = log2(x); y.backward(); float(y.data), round(float(x.grad), 4)   # 1/(8 ln 2)
    (3.0, 0.1803)
    """, as_torch="torch.log2(x)", as_onnx=lambda g, x: g.op("Div", g.op("Log", x), g.const(_LN2)))
LOG10 = _unary("log10", np.log10, lambda x, out: 1 / (x * _LN10), "d log10(x)/dx = 1/(x ln 10)", """Elementwise base-10 logarithm.

    >>> x = Value(100.0); y = log10(x); y.backward(); float(y.data), round(float(x.grad), 6)   # 1/(100 ln 10)
    (2.0, 0.004343)
    """, as_torch="torch.log10(x)", as_onnx=lambda g, x: g.op("Div", g.op("Log", x), g.const(_LN10)))
EXP2 = _unary("exp2", np.exp2, lambda x, out: out * _LN2, "d 2^x/dx = 2^x ln 2", """Elementwise ``2 ** x``.

    >>> x = Value(3.0); y = exp2(x); y.backward(); float(y.data), round(float(x.grad), 4)   # 8 ln 2
    (8.0, 5.5452)
    """, as_torch="torch.exp2(x)", as_onnx=lambda g, x: g.op("Pow", g.const(2.0), x))


def _rsqrt_data(x):
    with _quiet_domain():
        return 1 / np.sqrt(x)


# y = x^(-1/2):  dy/dx = -1/2 x^(-3/2) = -y^3 / 2
RSQRT = Op(
    "rsqrt", _rsqrt_data, inputs="x", elementwise=True, code="1 / np.sqrt(x)",
    as_torch="torch.rsqrt(x)", as_onnx=lambda g, x: g.op("Reciprocal", g.op("Sqrt", x)),
    d_x=lambda x, out: -0.5 * out * out * out,
    formula="d x^(-1/2)/dx = -x^(-3/2) / 2", methods=("rsqrt",),
)


@RSQRT.public
def rsqrt(x):
    """Elementwise ``1 / sqrt(x)`` (PyTorch's ``rsqrt``).

    >>> x = Value(4.0); y = rsqrt(x); y.backward(); float(y.data), float(x.grad)   # -1/2 * 4^(-3/2)
    (0.5, -0.0625)
    """
    return RSQRT.apply(as_value(x))


# y = sign(x): flat everywhere it is defined, so dy/dx = 0 (PyTorch's convention at 0 too)
SIGN = Op(
    "sign", np.sign, inputs="x", elementwise=True, code="np.sign(x)",
    as_torch="torch.sign(x)", as_onnx="Sign",
    d_x=lambda x, out: 0.0,
    formula="d sign(x)/dx = 0", methods=("sign",),
)


@SIGN.public
def sign(x):
    """Elementwise -1, 0 or 1; its gradient is 0 everywhere.

    >>> x = Value([-2.0, 0.0, 3.0]); y = sign(x); y.sum().backward()
    >>> y.data.tolist(), x.grad.tolist()
    ([-1.0, 0.0, 1.0], [0.0, 0.0, 0.0])
    """
    return SIGN.apply(as_value(x))


# y = log(e^a + e^b):  dy/da = e^a / (e^a + e^b) = sigmoid(a - b),  dy/db = sigmoid(b - a)
# (the softmax of the pair; from a - b rather than e^(a - y), which carries y's rounding)
def _logaddexp_onnx(g, a, b):
    peak = g.op("Max", a, b)  # log(e^a + e^b) = m + log(e^(a-m) + e^(b-m)): no overflow
    total = g.op("Add", g.op("Exp", g.op("Sub", a, peak)), g.op("Exp", g.op("Sub", b, peak)))
    return g.op("Add", peak, g.op("Log", total))


LOGADDEXP = Op(
    "logaddexp", np.logaddexp, inputs="a, b", elementwise=True, code="np.logaddexp(a, b)",
    as_torch="torch.logaddexp(a, b)", as_onnx=_logaddexp_onnx,
    d_a=lambda a, b, out: F.sigmoid(a - b),
    d_b=lambda a, b, out: F.sigmoid(b - a),
    formula="d log(e^a + e^b)/da = e^a / (e^a + e^b)",
)


@LOGADDEXP.public
def logaddexp(a, b):
    """Elementwise ``log(exp(a) + exp(b))``, without overflow, broadcasting.

    >>> a = Value(0.0); b = Value(0.0); y = logaddexp(a, b); y.backward()
    >>> round(float(y.data), 4), float(a.grad), float(b.grad)   # log 2; each gets half
    (0.6931, 0.5, 0.5)
    """
    return _binary(LOGADDEXP, a, b)


# y = start + weight (end - start):  dy/dstart = 1 - weight,  dy/dend = weight,  dy/dweight = end - start
def _lerp_data(start, end, weight):
    return _scalar_or_array(start + weight * (end - start))


LERP = Op(
    "lerp", _lerp_data, inputs="start, end, weight", elementwise=True, code="start + weight * (end - start)",
    as_torch="torch.lerp(start, end, weight)",
    as_onnx=lambda g, start, end, weight: g.op("Add", start, g.op("Mul", weight, g.op("Sub", end, start))),
    d_start=lambda start, end, weight, out: 1 - weight,
    d_end=lambda start, end, weight, out: weight,
    d_weight=lambda start, end, weight, out: end - start,
    formula="d lerp/dstart = 1 - w, d lerp/dend = w, d lerp/dw = end - start",
)


@LERP.public
def lerp(start, end, weight):
    """``start + weight * (end - start)``, elementwise with broadcasting
    (PyTorch's ``lerp``); `weight` may be a number or a Value.

    >>> s = Value(1.0); e = Value(3.0); y = lerp(s, e, 0.25); y.backward()
    >>> float(y.data), float(s.grad), float(e.grad)
    (1.5, 0.75, 0.25)
    """
    start, end = _operands(start, end)
    weight = weight if isinstance(weight, Value) else as_value(weight, start)
    try:
        return LERP.apply(start, end, weight)
    except ValueError:
        raise ShapeError(f"lerp: start {start.shape}, end {end.shape} and weight {weight.shape} cannot be broadcast together") from None


# ==========================================================================
# Activations, each one op with its local gradient (PyTorch's conventions at the kinks)
# ==========================================================================
def _between(x, lo, hi):
    """1 strictly inside (lo, hi), else 0: the gradient of a clamp, as PyTorch's hardtanh
    (unlike clip, the bounds count as outside)."""
    x = _data(x)
    return (x > lo) & (x < hi)


def _hardtanh_data(x, min_val, max_val):
    return _scalar_or_array(np.asarray(np.minimum(np.maximum(x, x.dtype.type(min_val)), x.dtype.type(max_val))))


HARDTANH = Op(
    "hardtanh", _hardtanh_data, inputs="x", elementwise=True, code="np.clip(x, min_val, max_val)",
    as_torch="F.hardtanh(x, min_val, max_val)",
    as_onnx=lambda g, x, min_val, max_val: g.op("Clip", x, g.const(min_val), g.const(max_val)),
    d_x=lambda x, out, min_val, max_val: _between(x, min_val, max_val),
    formula="d hardtanh(x)/dx = 1 if min < x < max, else 0",
)


@HARDTANH.public
def hardtanh(x, min_val=-1.0, max_val=1.0):
    """``x`` clamped to ``[min_val, max_val]``; gradient 1 strictly inside, 0 at
    and beyond the bounds (PyTorch's hardtanh).

    >>> x = Value([-2.0, -1.0, 0.5, 3.0]); y = hardtanh(x); y.sum().backward()
    >>> y.data.tolist(), x.grad.tolist()
    ([-1.0, -1.0, 0.5, 1.0], [0.0, 0.0, 1.0, 0.0])
    """
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val ({min_val}) must not exceed max_val ({max_val})")
    return HARDTANH.apply(as_value(x), min_val=float(min_val), max_val=float(max_val))


def _relu6_data(x):
    return _hardtanh_data(x, 0.0, 6.0)


RELU6 = Op(
    "relu6", _relu6_data, inputs="x", elementwise=True, code="np.clip(x, 0, 6)",
    as_torch="F.relu6(x)", as_onnx=lambda g, x: g.op("Clip", x, g.const(0.0), g.const(6.0)),
    d_x=lambda x, out: _between(x, 0.0, 6.0),
    formula="d relu6(x)/dx = 1 if 0 < x < 6, else 0",
)


@RELU6.public
def relu6(x):
    """``min(max(x, 0), 6)``; gradient 1 for 0 < x < 6, else 0 (PyTorch's at both kinks).

    >>> x = Value([-1.0, 3.0, 7.0]); relu6(x).sum().backward(); x.grad.tolist()
    [0.0, 1.0, 0.0]
    """
    return RELU6.apply(as_value(x))


def _hardsigmoid_data(x):
    return _scalar_or_array(np.asarray(np.minimum(np.maximum(x / 6 + x.dtype.type(0.5), 0), 1)))


HARDSIGMOID = Op(
    "hardsigmoid", _hardsigmoid_data, inputs="x", elementwise=True, code="np.clip(x / 6 + 0.5, 0, 1)",
    as_torch="F.relu6(x + 3) / 6",  # (F.hardsigmoid rounds its slope 1/6 to float32)
    as_onnx=lambda g, x: g.op("HardSigmoid", x, alpha=1 / 6, beta=0.5),
    d_x=lambda x, out: _between(x, -3.0, 3.0) / 6,
    formula="d hardsigmoid(x)/dx = 1/6 if -3 < x < 3, else 0",
)


@HARDSIGMOID.public
def hardsigmoid(x):
    """``relu6(x + 3) / 6``, a piecewise-linear sigmoid; gradient 1/6 for -3 < x < 3.

    >>> x = Value([-4.0, 0.0, 4.0]); y = hardsigmoid(x); y.sum().backward()
    >>> y.data.tolist(), np.round(x.grad, 4).tolist()
    ([0.0, 0.5, 1.0], [0.0, 0.1667, 0.0])
    """
    return HARDSIGMOID.apply(as_value(x))


def _hardswish_data(x):
    return _scalar_or_array(x * _hardsigmoid_data(x))


def _hardswish_local(x, out):
    # PyTorch's: 0 up to -3, x/3 + 1/2 strictly between, 1 from 3 on
    xd = _data(x)
    return F.where(xd <= -3, 0.0, F.where(xd < 3, x / 3 + 0.5, 1.0))


HARDSWISH = Op(
    "hardswish", _hardswish_data, inputs="x", elementwise=True, code="x * np.clip(x / 6 + 0.5, 0, 1)",
    as_torch="F.hardswish(x)", as_onnx="HardSwish",
    d_x=_hardswish_local,
    formula="d hardswish(x)/dx = x/3 + 1/2 on (-3, 3), 0 below, 1 above",
)


@HARDSWISH.public
def hardswish(x):
    """``x * relu6(x + 3) / 6`` (MobileNetV3); gradient ``x/3 + 1/2`` on (-3, 3), 0 below, 1 above.

    >>> x = Value([-4.0, 0.0, 4.0]); y = hardswish(x); y.sum().backward()
    >>> y.data.tolist(), x.grad.tolist()
    ([-0.0, 0.0, 4.0], [0.0, 0.5, 1.0])
    """
    return HARDSWISH.apply(as_value(x))


def _softplus_data(x):
    return np.logaddexp(x.dtype.type(0), x)


def _mish_data(x):
    return _scalar_or_array(x * np.tanh(_softplus_data(x)))


def _mish_local(x, out):
    # d/dx x tanh(sp(x)) = tanh(sp) + x sigmoid(x) (1 - tanh(sp)^2)
    t = tanh(softplus(x)) if isinstance(x, Value) else np.tanh(_softplus_data(x))
    return t + x * F.sigmoid(x) * (1 - t * t)


MISH = Op(
    "mish", _mish_data, inputs="x", elementwise=True, code="x * np.tanh(np.logaddexp(0, x))",
    as_torch="F.mish(x)", as_onnx="Mish",
    d_x=_mish_local,
    formula="d mish(x)/dx = tanh(sp(x)) + x sigmoid(x) (1 - tanh(sp(x))^2)",
)


@MISH.public
def mish(x):
    """``x * tanh(softplus(x))`` (Misra 2019).

    >>> x = Value(0.0); y = mish(x); y.backward(); float(y.data), round(float(x.grad), 4)   # tanh(log 2)
    (0.0, 0.6)
    """
    return MISH.apply(as_value(x))


def _celu_data(x, alpha):
    with np.errstate(over="ignore"):
        negative = alpha * np.expm1(np.minimum(x, 0) / x.dtype.type(alpha))
    return _scalar_or_array(np.where(x > 0, x, negative).astype(x.dtype))


CELU = Op(
    "celu", _celu_data, inputs="x", elementwise=True, code="np.where(x > 0, x, alpha * np.expm1(x / alpha))",
    as_torch="F.celu(x, alpha)", as_onnx=lambda g, x, alpha: g.op("Celu", x, alpha=alpha),
    # e^(x/alpha) of min(x, 0), so that the branch not taken cannot overflow
    d_x=lambda x, out, alpha: F.where(_data(x) > 0, 1.0, F.exp(-F.maximum(-x, 0.0) / alpha)),
    formula="d celu(x)/dx = 1 if x > 0, else exp(x / alpha)",
)


@CELU.public
def celu(x, alpha=1.0):
    """``x`` for x > 0, else ``alpha * (exp(x / alpha) - 1)`` (continuously
    differentiable ELU, Barron 2017).

    >>> x = Value([-1.0, 2.0]); y = celu(x, alpha=2.0); y.sum().backward()
    >>> np.round(y.data, 4).tolist(), np.round(x.grad, 4).tolist()   # 2 (e^-0.5 - 1); e^-0.5
    ([-0.7869, 2.0], [0.6065, 1.0])
    """
    if alpha == 0:
        raise ValueError("celu: alpha must not be 0 (it divides x)")
    return CELU.apply(as_value(x), alpha=float(alpha))


SOFTSIGN = Op(
    "softsign", lambda x: x / (1 + np.abs(x)), inputs="x", elementwise=True, code="x / (1 + np.abs(x))",
    as_torch="F.softsign(x)", as_onnx="Softsign",
    d_x=lambda x, out: (1 - abs(out)) ** 2,  # 1/(1 + |x|)^2, and 1 - |softsign(x)| = 1/(1 + |x|)
    formula="d softsign(x)/dx = 1/(1 + |x|)^2",
)


@SOFTSIGN.public
def softsign(x):
    """``x / (1 + |x|)``.

    >>> x = Value(1.0); y = softsign(x); y.backward(); float(y.data), float(x.grad)   # 1/(1 + 1)^2
    (0.5, 0.25)
    """
    return SOFTSIGN.apply(as_value(x))


def _logsigmoid_data(x):
    return _scalar_or_array(-np.logaddexp(x.dtype.type(0), -x))


LOGSIGMOID = Op(
    "logsigmoid", _logsigmoid_data, inputs="x", elementwise=True, code="-np.logaddexp(0, -x)",
    as_torch="F.logsigmoid(x)", as_onnx=lambda g, x: g.op("Neg", g.op("Softplus", g.op("Neg", x))),
    d_x=lambda x, out: F.sigmoid(-x),  # d log s(x)/dx = 1 - s(x) = s(-x)
    formula="d log sigmoid(x)/dx = 1 - sigmoid(x)",
)


@LOGSIGMOID.public
def logsigmoid(x):
    """``log(sigmoid(x)) = -softplus(-x)``, finite for any x.

    >>> x = Value(0.0); y = logsigmoid(x); y.backward(); round(float(y.data), 4), float(x.grad)   # -log 2; 1 - 1/2
    (-0.6931, 0.5)
    >>> float(logsigmoid(Value(-1000.0)).data)        # no overflow
    -1000.0
    """
    return LOGSIGMOID.apply(as_value(x))
