"""Rounding, integer division and remainders, and closeness tests, declared
with the registry of ``ops.py`` (see its docstring): each op one declaration
with its local gradient beside it.

The rounding functions are steps: flat between the jumps, so their local
gradient is 0 everywhere (PyTorch's convention at the jumps too), and so is
that of a rounded quotient (``a // b``, ``div(a, b, rounding_mode=...)``).
A remainder moves one for one with its dividend and, between the jumps,
against the divisor by the number of times it fits:

* ``fmod(a, b) = a - trunc(a / b) * b``:  d/da = 1,  d/db = -trunc(a / b)
* ``remainder(a, b) = a - floor(a / b) * b`` (Python's ``%``):  d/da = 1,  d/db = -floor(a / b)

Values are NumPy's, which are PyTorch's bit for bit (``np.round`` rounds
half to even, as ``torch.round``; ``np.floor_divide`` and ``np.remainder``
use the same steps as ``torch.div(..., rounding_mode="floor")`` and
``torch.remainder``), but for the sign of a zero remainder: it takes the
divisor's sign (NumPy's and Python's ``%``), where PyTorch's takes the
dividend's.

``isclose`` and ``allclose`` compare data: a boolean array and a Python
bool, never graph nodes (like the comparisons ``<``, ``==``).

>>> from autograd_core import Value
>>> x = Value([-1.5, 0.5, 2.5]); (x // 1.0).data.tolist(), (x % 1.0).data.tolist()
([-2.0, 0.0, 2.0], [0.5, 0.5, 0.5])
"""

from __future__ import annotations

import builtins

import numpy as np

from .engine import Value, as_value
from .errors import ShapeError
from . import ops as _ops  # (ops.is_value and ops.derived_data by their attributes: compile replaces them)
from .ops import Op, _binary, _data, _export, _operands
from .ops_select import _data_of

# --------------------------------------------------------------------------
# ONNX forms that take more than one operator (the PyTorch forms are one call each)
# --------------------------------------------------------------------------


def _onnx_trunc(g, x):
    """trunc(x) = ceil(x) below 0, floor(x) above: ONNX (opset 18) has no Trunc."""
    return g.op("Where", g.op("Less", x, g.const(0.0)), g.op("Ceil", x), g.op("Floor", x))


def _onnx_round(g, x, decimals):
    """Round half to even at `decimals` places, by NumPy's and PyTorch's steps:
    scale by 10**decimals (divide for negative decimals), round, scale back."""
    if decimals == 0:
        return g.op("Round", x)
    scale = g.const(float(10.0 ** abs(decimals)))
    if decimals > 0:
        return g.op("Div", g.op("Round", g.op("Mul", x, scale)), scale)
    return g.op("Mul", g.op("Round", g.op("Div", x, scale)), scale)


def _onnx_remainder(g, a, b):
    """fmod, then + b where the result's sign is not b's (as PyTorch's remainder)."""
    mod = g.op("Mod", a, b, fmod=1)
    zero = g.const(0.0)
    signs_differ = g.op("Xor", g.op("Less", mod, zero), g.op("Less", b, zero))
    wraps = g.op("And", g.op("Not", g.op("Equal", mod, zero)), signs_differ)
    return g.op("Where", wraps, g.op("Add", mod, b), mod)


def _onnx_floor_divide(g, a, b):
    """PyTorch's (and NumPy's) floor division: (a - fmod(a, b)) / b, one less where
    the remainder's sign is not b's, then the nearest whole number below (rounded
    up when the quotient is more than half past it)."""
    mod = g.op("Mod", a, b, fmod=1)
    zero, one, half = g.const(0.0), g.const(1.0), g.const(0.5)
    quotient = g.op("Div", g.op("Sub", a, mod), b)
    signs_differ = g.op("Xor", g.op("Less", mod, zero), g.op("Less", b, zero))
    wraps = g.op("And", g.op("Not", g.op("Equal", mod, zero)), signs_differ)
    quotient = g.op("Where", wraps, g.op("Sub", quotient, one), quotient)
    below = g.op("Floor", quotient)
    return g.op("Where", g.op("Greater", g.op("Sub", quotient, below), half), g.op("Add", below, one), below)


# ==========================================================================
# Rounding: steps, so the local gradient is 0
# ==========================================================================
# y = floor(x): the largest whole number <= x;  dy/dx = 0
FLOOR = Op(
    "floor", np.floor, inputs="x", elementwise=True, code="np.floor(x)",
    as_torch="torch.floor(x)", as_onnx="Floor",
    d_x=lambda x, out: 0.0,
    formula="d floor(x)/dx = 0", methods=("floor",),
)


@FLOOR.public
def floor(x):
    """Elementwise largest whole number not above `x`; its gradient is 0 everywhere.

    >>> x = Value([-1.5, 0.5, 2.0]); y = floor(x); y.sum().backward()
    >>> y.data.tolist(), x.grad.tolist()
    ([-2.0, 0.0, 2.0], [0.0, 0.0, 0.0])
    """
    return FLOOR.apply(as_value(x))


# y = ceil(x): the smallest whole number >= x;  dy/dx = 0
CEIL = Op(
    "ceil", np.ceil, inputs="x", elementwise=True, code="np.ceil(x)",
    as_torch="torch.ceil(x)", as_onnx="Ceil",
    d_x=lambda x, out: 0.0,
    formula="d ceil(x)/dx = 0", methods=("ceil",),
)


@CEIL.public
def ceil(x):
    """Elementwise smallest whole number not below `x`; its gradient is 0 everywhere.

    >>> x = Value([-1.5, 0.5, 2.0]); ceil(x).data.tolist()
    [-1.0, 1.0, 2.0]
    """
    return CEIL.apply(as_value(x))


# y = trunc(x): x rounded toward 0;  dy/dx = 0
TRUNC = Op(
    "trunc", np.trunc, inputs="x", elementwise=True, code="np.trunc(x)", numpy=("trunc", "fix"),
    as_torch="torch.trunc(x)", as_onnx=_onnx_trunc,
    d_x=lambda x, out: 0.0,
    formula="d trunc(x)/dx = 0", methods=("trunc",),
)


@TRUNC.public
def trunc(x):
    """Elementwise `x` rounded toward zero (its whole part); gradient 0 everywhere.

    >>> x = Value([-1.5, 0.5, 2.7]); trunc(x).data.tolist()
    [-1.0, 0.0, 2.0]
    """
    return TRUNC.apply(as_value(x))


# y = round(x, decimals): the nearest multiple of 10**-decimals, halves to even;  dy/dx = 0
ROUND = Op(
    "round", lambda x, decimals: np.round(x, decimals), inputs="x", elementwise=True,
    code="np.round(x, decimals)", numpy=("round", "around", "rint"),
    as_torch="torch.round(x, decimals=decimals)", as_onnx=_onnx_round,
    d_x=lambda x, out, decimals: 0.0,
    formula="d round(x)/dx = 0", methods=("round",),
)


@ROUND.public
def round(x, decimals=None):
    """Elementwise `x` rounded to `decimals` places (None or 0: whole numbers;
    negative: tens, hundreds...), halves to the even neighbour as
    ``torch.round`` and ``np.round``; gradient 0. A plain Python number is
    rounded by Python's own ``round``, so code that has this ``round`` in its
    namespace (``ops`` gets every op's function) rounds numbers as before.

    >>> x = Value([0.5, 1.5, 2.5, -0.5, 1.26]); round(x).data.tolist()
    [0.0, 2.0, 2.0, -0.0, 1.0]
    >>> round(x, decimals=1).data.tolist(), round(Value(1250.0), -2).data.tolist()
    ([0.5, 1.5, 2.5, -0.5, 1.3], 1200.0)
    >>> round(2.5), round(0.125, 2)                  # Python numbers: Python's round
    (2, 0.12)
    """
    if type(x) in (int, float):
        return builtins.round(x, decimals)
    if decimals is None:
        decimals = 0
    if isinstance(decimals, bool) or not isinstance(decimals, (int, np.integer)):
        raise TypeError(f"round: decimals must be an int (places after the point; negative for tens, "
                        f"hundreds...), got {decimals!r}")
    return ROUND.apply(as_value(x), decimals=int(decimals))


# ==========================================================================
# Remainders and rounded quotients
# ==========================================================================
# r = fmod(a, b) = a - trunc(a/b) b, the sign of a:  dr/da = 1,  dr/db = -trunc(a/b)
# (a zero divisor gives NaN, as in PyTorch: NumPy's warnings are silenced)
def _fmod_data(a, b):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.fmod(a, b)


def _fmod_d_b(a, b, out):
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.trunc(_data(a) / _data(b))  # (a step of a and b: a constant even with create_graph)


FMOD = Op(
    "fmod", _fmod_data, inputs="a, b", elementwise=True, code="np.fmod(a, b)",
    as_torch="torch.fmod(a, b)", as_onnx=lambda g, a, b: g.op("Mod", a, b, fmod=1),
    d_a=lambda a, b, out: 1,
    d_b=_fmod_d_b,
    as_numpy={"forward": "np.fmod(a, b)", "b": "-np.trunc(a / b)"},
    formula="d fmod(a,b)/da = 1, d fmod(a,b)/db = -trunc(a/b)", methods=("fmod",),
)


@FMOD.public
def fmod(a, b):
    """Elementwise C remainder ``a - trunc(a / b) * b``: the sign of `a`
    (``torch.fmod``, ``np.fmod``), broadcasting. Its gradient is 1 for `a`
    and ``-trunc(a / b)`` for `b`.

    >>> a = Value([5.0, -5.0]); b = Value([3.0, 3.0]); r = fmod(a, b); r.sum().backward()
    >>> r.data.tolist(), a.grad.tolist(), b.grad.tolist()
    ([2.0, -2.0], [1.0, 1.0], [-1.0, 1.0])
    """
    return _binary(FMOD, a, b)


# r = remainder(a, b) = a - floor(a/b) b, the sign of b:  dr/da = 1,  dr/db = -floor(a/b)
def _remainder_data(a, b):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.remainder(a, b)


def _remainder_d_b(a, b, out):
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.floor_divide(_data(a), _data(b))  # floor(a/b) as a // b computes it (PyTorch's too)


REMAINDER = Op(
    "remainder", _remainder_data, inputs="a, b", elementwise=True, code="a % b", numpy=("remainder", "mod"),
    as_torch="torch.remainder(a, b)", as_onnx=_onnx_remainder,
    d_a=lambda a, b, out: 1,
    d_b=_remainder_d_b,
    as_numpy={"forward": "a % b", "b": "-(a // b)"},
    formula="d (a mod b)/da = 1, d (a mod b)/db = -floor(a/b)",
    methods=("remainder", "__mod__"), reflected=("__rmod__",),
)


@REMAINDER.public
def remainder(a, b):
    """Elementwise ``a - floor(a / b) * b``, the sign of `b`: Python's ``a % b``
    (``v % 2`` and ``2 % v`` call it), ``torch.remainder``, ``np.remainder``.
    Its gradient is 1 for `a` and ``-floor(a / b)`` for `b`.

    >>> a = Value([5.0, -5.0]); b = Value([3.0, 3.0]); r = a % b; r.sum().backward()
    >>> r.data.tolist(), a.grad.tolist(), b.grad.tolist()
    ([2.0, 1.0], [1.0, 1.0], [-1.0, 2.0])
    >>> (7 % Value(2.5)).data.tolist()
    2.0
    """
    return _binary(REMAINDER, a, b)


# q = floor(a / b), as a // b:  dq/da = dq/db = 0 (a step, as div(..., rounding_mode="floor") in PyTorch)
def _floor_divide_data(a, b):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.floor_divide(a, b)


FLOOR_DIVIDE = Op(
    "floor_divide", _floor_divide_data, inputs="a, b", elementwise=True, code="a // b",
    as_torch="torch.div(a, b, rounding_mode='floor')", as_onnx=_onnx_floor_divide,
    d_a=lambda a, b, out: 0.0,
    d_b=lambda a, b, out: 0.0,
    as_numpy={"forward": "a // b"},
    formula="d floor(a/b)/da = 0, d floor(a/b)/db = 0",
    methods=("floor_divide", "__floordiv__"), reflected=("__rfloordiv__",),
)


@FLOOR_DIVIDE.public
def floor_divide(a, b):
    """Elementwise quotient rounded down, ``floor(a / b)``: Python's ``a // b``
    (``v // 2`` and ``2 // v`` call it), ``torch.div(a, b, rounding_mode="floor")``,
    ``np.floor_divide``. Its gradient is 0 (``torch.floor_divide`` has none).

    >>> a = Value([5.0, -5.0]); q = a // 3; q.sum().backward()
    >>> q.data.tolist(), a.grad.tolist()
    ([1.0, -2.0], [0.0, 0.0])
    """
    return _binary(FLOOR_DIVIDE, a, b)


def _trunc_divide_data(a, b):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.trunc(a / b)


# q = trunc(a / b):  dq/da = dq/db = 0 (a step)
TRUNC_DIVIDE = Op(
    "trunc_divide", _trunc_divide_data, inputs="a, b", elementwise=True, code="np.trunc(a / b)", numpy=(),
    as_torch="torch.div(a, b, rounding_mode='trunc')",
    as_onnx=lambda g, a, b: _onnx_trunc(g, g.op("Div", a, b)),
    d_a=lambda a, b, out: 0.0,
    d_b=lambda a, b, out: 0.0,
    as_numpy={"forward": "np.trunc(a / b)"},
    formula="d trunc(a/b)/da = 0, d trunc(a/b)/db = 0",
)


@TRUNC_DIVIDE.public
def trunc_divide(a, b):
    """Elementwise quotient rounded toward zero, ``trunc(a / b)``
    (``torch.div(a, b, rounding_mode="trunc")``, C's integer division); gradient 0.

    >>> trunc_divide(Value([5.0, -5.0]), 3.0).data.tolist()
    [1.0, -1.0]
    """
    return _binary(TRUNC_DIVIDE, a, b)


_ROUNDED_QUOTIENTS = {"trunc": trunc_divide, "floor": floor_divide}


def _rounded_quotient(a, b, rounding_mode):
    """``div(a, b, rounding_mode=...)`` for a rounding mode (ops.div's own is None: a / b)."""
    quotient = _ROUNDED_QUOTIENTS.get(rounding_mode) if isinstance(rounding_mode, str) else None
    if quotient is None:
        raise ValueError(f"div: rounding_mode must be None (a / b), 'trunc' (toward zero) or 'floor' (down, "
                         f"as a // b), got {rounding_mode!r}")
    return quotient(a, b)


# ==========================================================================
# Closeness: plain booleans, no graph (like the comparisons)
# ==========================================================================
def isclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    """Where ``|a - b| <= atol + rtol * |b|`` elementwise (equal infinities are
    close; NaN is close to NaN only with ``equal_nan=True``): a boolean array
    with broadcasting, no gradient. ``torch.isclose``'s and ``np.isclose``'s
    rule and defaults.

    >>> isclose(Value([1.0, 1.0, np.nan]), [1.0 + 1e-9, 1.1, np.nan]).tolist()
    [True, False, False]
    """
    for name, tolerance in (("rtol", rtol), ("atol", atol)):
        if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float, np.integer, np.floating)) \
                or not tolerance >= 0:
            raise ValueError(f"isclose: {name} must be a number >= 0, got {tolerance!r}")
    if not _ops.is_value(a) and not _ops.is_value(b):  # (arrays: NumPy's own, in its dtypes; a mask of the data)
        return _ops.derived_data(lambda x, y: np.isclose(x, y, rtol=rtol, atol=atol, equal_nan=bool(equal_nan)),
                                 *(v if isinstance(v, Value) else _data_of(v, "isclose") for v in (a, b)),
                                 name="isclose")
    # np.isclose's rule step by step with the Values' own operators and comparisons, so that inside
    # autograd_core.compile the result is a comparison the program makes again at every call
    a, b = _operands(a, b)
    try:
        with np.errstate(invalid="ignore", over="ignore"):
            within = abs(a - b) <= atol + rtol * abs(b)
            finite = (abs(a) < np.inf) & (abs(b) < np.inf)
            close = (within & finite) | (a == b)  # infinities: close only to themselves
            if equal_nan:
                close = close | ((a != a) & (b != b))
    except ShapeError:
        raise ShapeError(f"isclose: shapes {a.shape} and {b.shape} cannot be broadcast together") from None
    return close


def allclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    """True when every element of `a` is close to `b` (see :func:`isclose`): a
    Python bool, as ``torch.allclose`` (so ``autograd_core.compile`` refuses it
    on a traced Value, as it refuses ``if v > 0``).

    >>> allclose(Value([1.0, 2.0]), [1.0, 2.0 + 1e-9]), allclose(Value([1.0]), [1.1])
    (True, False)
    """
    return bool(np.all(isclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan)))


# exported beside the ops, and Value methods (v.isclose(w), as PyTorch)
for _fn in (isclose, allclose):
    _export(_fn)
    setattr(Value, _fn.__name__, _fn)
del _fn
