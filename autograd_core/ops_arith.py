"""Arithmetic: ``+``, ``-``, ``*``, ``/``, ``**``, unary minus and ``1 / x``,
each an operation of the registry of ``ops.py`` (see its docstring) with its
local gradient beside it, and installed as Value's operators.

Also here, Value's operators that are not operations of their own:
``number / v`` (``reciprocal(v) * number``, as PyTorch computes it), unary
``+``, and the comparisons, which give plain boolean arrays (masks), never
graph nodes.
"""

from __future__ import annotations

import operator

import numpy as np

from . import engine
from .engine import Value, as_value
from .ops import F, Op, _binary, _data, _quiet_domain


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
    formula="d(a-b)/da = 1, d(a-b)/db = -1", methods=("__sub__",), reflected=("__rsub__",), numpy=("subtract",),
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
    formula="d(a*b)/da = b, d(a*b)/db = a", methods=("__mul__",), reflected=("__rmul__",), numpy=("multiply",),
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
    formula="d(a/b)/da = 1/b, d(a/b)/db = -a/b^2", methods=("__truediv__",), numpy=("divide", "true_divide"),
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
    formula="d(-x)/dx = -1", methods=("__neg__",), numpy=("negative",),
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
    with _quiet_domain():
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
    with _quiet_domain():
        return F.where((_data(b) == 0) & (_data(a) == 0), 0.0, b * a ** (b - 1))


def _pow_d_exponent(a, b, out):
    # where a == 0 and b >= 0, a**b does not move with b (PyTorch's convention); where a == 0
    # and b < 0, a**b log(a) = inf * -inf = -inf (PyTorch's too). The log is taken of 1 where its
    # result is not used, so a second derivative meets no inf there.
    flat = (_data(a) == 0) & (_data(b) >= 0)
    with _quiet_domain():
        return F.where(flat, 0.0, out * F.log(F.where(flat, 1.0, a)))


def _power(a, b):
    with _quiet_domain():
        return a ** b


POW = Op(
    "pow", _power, inputs="a, b", elementwise=True, code="a ** b",
    as_torch="a ** b", as_onnx="Pow",
    d_a=_pow_d_base,
    d_b=_pow_d_exponent,
    formula="d(a^b)/da = b a^(b-1), d(a^b)/db = a^b log(a)", methods=("__pow__",), reflected=("__rpow__",),
    numpy=("power",),
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
        engine._refuse_if_it_ends_the_graph(exponent)
        exponent_data = exponent if isinstance(exponent, np.ndarray) else np.asarray(exponent)  # (its class kept)
        if exponent_data.ndim == 0 and exponent_data.dtype.kind in "biuf":
            return POW_CONST.apply(base, exponent=exponent_data.item())
    return _binary(POW, base, exponent)


# ==========================================================================
# Operators of Value that are not operations of their own
# ==========================================================================
def _rtruediv(self, other):
    # number / Value is reciprocal(Value) * number, as PyTorch computes it
    return mul(reciprocal(self), other)


def _compare(np_fn):
    # comparisons give plain boolean arrays, never graph nodes
    return lambda self, other: np_fn(self._data, _compared(other))


def _compared(other):
    """What a comparison reads of `other`: a Value's data, the array of an object that gives one
    (a compiled step's result, which refuses NumPy's arithmetic), anything else as it is."""
    if isinstance(other, Value):
        return other._data
    if not isinstance(other, np.ndarray) and hasattr(type(other), "__array__"):
        return np.asarray(other)
    return other


for _name, _fn in {
    "__rtruediv__": _rtruediv, "__pos__": lambda self: self,
    "__lt__": _compare(np.less), "__le__": _compare(np.less_equal),
    "__gt__": _compare(np.greater), "__ge__": _compare(np.greater_equal),
    "__eq__": _compare(np.equal), "__ne__": _compare(np.not_equal),
}.items():
    setattr(Value, _name, _fn)
del _name, _fn
