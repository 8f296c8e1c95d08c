"""Scans and windows along one axis, declared with the registry of ``ops.py``
(see its docstring): each op one declaration with its gradient beside it.

* ``cummax`` / ``cummin``: the running maximum (minimum) and where it was
  found, as ``torch.cummax``; each output's gradient goes to that position
  (ties: the latest one, as PyTorch picks it).
* ``logcumsumexp``: ``c_j = log(sum_{i <= j} exp(x_i))``, built pairwise with
  ``logaddexp`` so it never overflows; ``dL/dx_i = sum_{j >= i} g_j
  exp(x_i - c_j)``, each factor at most 1, summed in log space (positive and
  negative parts of g apart) as PyTorch does.
* ``windows``: PyTorch's ``Tensor.unfold(dim, size, step)``, every window of
  `size` elements along one axis, `step` apart, as a new last axis (not the
  im2col ``unfold`` of images). An element in several windows gets the sum
  of their gradients.

All are structural: the rule takes the upstream gradient ``g`` first. The
rules call the helpers below, which run NumPy on arrays and the engine's
ops on Values (``create_graph=True``), so every gradient here can be
differentiated again.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from . import ops as _ops  # (ops.derived_data by its attribute: compile replaces it while tracing)
from .conv import _check_workspace
from .engine import Value, as_value
from .errors import ShapeError
from .ops import F, Op, _axes, _data
from .ops_select import _flip, _one_axis_of, _scatter_add_into


class ValuesAndIndices(NamedTuple):
    """What ``cummax`` and ``cummin`` return (PyTorch's ``values`` and ``indices``).

    >>> result = cummax(Value([2.0, 1.0, 3.0])); result.values.data.tolist(), result.indices.tolist()
    ([2.0, 2.0, 3.0], [0, 0, 2])
    """

    values: Value
    indices: np.ndarray


def _along_one_axis(x, axis, name):
    """(the Value to scan, its axis, the shape to give the result): None flattens
    the input (as NumPy's cumsum); a 0-d input is scanned as one element (as PyTorch)."""
    if axis is None:
        return (x.reshape(-1) if x.ndim != 1 else x), 0, None
    if x.ndim == 0:
        _one_axis_of(x, axis, name)  # only 0 and -1 are in range
        return x.reshape(1), 0, ()
    return x, _one_axis_of(x, axis, name), None


# ==========================================================================
# Running maximum and minimum, and where they were found
# ==========================================================================
def _running_extreme_indices(x, out, axis):
    """Where each running extreme was found: the last i <= j at which x_i is the
    extreme so far (PyTorch's >= / <= scan, so ties take the latest), or is NaN
    (a NaN is the extreme from there on, and the latest NaN its position)."""
    shape = [1] * x.ndim
    shape[axis] = x.shape[axis]
    positions = np.arange(x.shape[axis]).reshape(shape)
    new_extreme = (x == out) | np.isnan(x)
    return np.maximum.accumulate(np.where(new_extreme, positions, 0), axis=axis)


def _cumulative_extreme_d_x(g, x, out, axis):
    # each output's gradient goes to the position its value came from
    return _scatter_add_into(g, x.shape, axis, _running_extreme_indices(_data(x), _data(out), axis))


CUMMAX = Op(
    "cummax", lambda x, axis: np.maximum.accumulate(x, axis=axis), inputs="x",
    code="np.maximum.accumulate(x, axis=axis)", numpy=(),
    as_torch="torch.cummax(x, dim=axis).values",
    d_x=_cumulative_extreme_d_x,
    formula="dL/dx_i = sum of dL/dm_j over the j whose running maximum m_j was found at i",
    methods=("cummax",),
)
CUMMIN = Op(
    "cummin", lambda x, axis: np.minimum.accumulate(x, axis=axis), inputs="x",
    code="np.minimum.accumulate(x, axis=axis)", numpy=(),
    as_torch="torch.cummin(x, dim=axis).values",
    d_x=_cumulative_extreme_d_x,
    formula="dL/dx_i = sum of dL/dm_j over the j whose running minimum m_j was found at i",
    methods=("cummin",),
)


def _cumulative_extreme(op, x, axis):
    x = as_value(x)
    scanned, ax, shape = _along_one_axis(x, axis, op.name)
    values = op.apply(scanned, axis=ax)
    indices = _ops.derived_data(lambda s, v: _running_extreme_indices(s, v, ax), scanned, values, name="indices")
    if shape is not None:  # a 0-d input: a 0-d result, as PyTorch
        return ValuesAndIndices(values.reshape(shape), indices.reshape(shape))
    return ValuesAndIndices(values, indices)


@CUMMAX.public
def cummax(x, axis=None):
    """The running maximum along `axis` (None: of the flattened input) and the
    index where each was found: ``(values, indices)`` as ``torch.cummax``
    (also ``.values`` and ``.indices``); `values` is a Value, `indices` an
    integer array. Ties take the latest index, a NaN stays the maximum from
    where it appears. Each value's gradient goes to its index.

    >>> x = Value([1.0, 3.0, 2.0, 3.0]); values, indices = cummax(x)
    >>> values.data.tolist(), indices.tolist()
    ([1.0, 3.0, 3.0, 3.0], [0, 1, 1, 3])
    >>> values.sum().backward(); x.grad.tolist()     # x[1] was the maximum twice
    [1.0, 2.0, 0.0, 1.0]
    """
    return _cumulative_extreme(CUMMAX, x, axis)


@CUMMIN.public
def cummin(x, axis=None):
    """The running minimum along `axis` (None: of the flattened input) and the
    index where each was found: ``(values, indices)`` as ``torch.cummin``.
    Ties take the latest index; each value's gradient goes to its index.

    >>> values, indices = cummin(Value([[3.0, 1.0, 2.0]]), axis=1)
    >>> values.data.tolist(), indices.tolist()
    ([[3.0, 1.0, 1.0]], [[0, 1, 1]])
    """
    return _cumulative_extreme(CUMMIN, x, axis)


# ==========================================================================
# Log-cumsum-exp
# ==========================================================================
def _logcumsumexp_data(x, axis):
    return np.logaddexp.accumulate(x, axis=axis)  # pairwise log(e^a + e^b): no overflow, no underflow to log(0)


def _logcumsumexp_any(x, axis):
    return LOGCUMSUMEXP.apply(x, axis=axis) if isinstance(x, Value) else _logcumsumexp_data(x, axis)


def _reverse_logcumsumexp(x, axis):
    """log(sum_{j >= i} exp(x_j)) along `axis`."""
    return _flip(_logcumsumexp_any(_flip(x, axis), axis), axis)


def _tail_sums(log_weights, x, out, axis):
    """sum_{j >= i} w_j exp(x_i - c_j), from log w: exp(x_i + log sum_{j >= i} exp(log w_j - c_j)),
    every exponent at most what it adds up to (no overflow)."""
    return F.exp(_reverse_logcumsumexp(log_weights - out, axis) + x)


# c_j = log sum_{i <= j} exp(x_i):  dL/dx_i = sum_{j >= i} g_j exp(x_i - c_j), each factor at most 1,
# summed in log space with the positive and the negative g_j apart (PyTorch's way).
def _logcumsumexp_d_x(g, x, out, axis):
    if isinstance(g, Value) or isinstance(x, Value):
        return _logcumsumexp_d_x_differentiable(g, x, out, axis)
    if g.size == 0:
        return g
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        lowest = np.finfo(g.dtype).min  # exp(lowest - c) is 0: no term
        magnitude = np.log(np.abs(g))
        rising = _tail_sums(np.where(g > 0, magnitude, lowest), x, out, axis)
        falling = _tail_sums(np.where(g < 0, magnitude, lowest), x, out, axis)
    return rising - falling


def _logcumsumexp_d_x_differentiable(g, x, out, axis):
    """The rule with create_graph: exactly the numbers of the split sums above, in a Value
    whose derivatives are right where some g_j = 0 too (log |g_j| has none there). Those come
    from the same sums written for g/s + t and for t, with t = 1 + |g/s| (both in [1, 3];
    their difference is g/s, s the row's largest |g_j|, at least the smallest normal
    number): that form minus its own value (exactly 0) is added to the numbers."""
    g, x, out = (as_value(v) for v in (g, x, out))
    exact = _logcumsumexp_d_x(g._data, x._data, out._data, axis)
    if g.size == 0:
        return g + exact
    # (at least the smallest normal number: 1 / scale, the derivative of g / scale, stays finite)
    scale = np.maximum(np.abs(g._data).max(axis=axis, keepdims=True), np.finfo(g.dtype).tiny)
    unit = g / scale
    shift = 1 + np.abs(unit._data)  # unit + shift is in [1, 3]: no log of 0, no overflow in its derivative
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        form = scale * (_tail_sums(F.log(unit + shift), x, out, axis) - _tail_sums(np.log(shift), x, out, axis))
        return (form - form._data) + exact


LOGCUMSUMEXP = Op(
    "logcumsumexp", _logcumsumexp_data, inputs="x", code="np.logaddexp.accumulate(x, axis=axis)",
    as_numpy={"forward": "np.logaddexp.accumulate(x, axis=axis)"},
    as_torch="torch.logcumsumexp(x, dim=axis)",
    d_x=_logcumsumexp_d_x,
    formula="dL/dx_i = sum_{j >= i} dL/dc_j exp(x_i - c_j)", methods=("logcumsumexp",),
)


@LOGCUMSUMEXP.public
def logcumsumexp(x, axis=None):
    """``log(cumsum(exp(x)))`` along `axis` (None: of the flattened input),
    computed without overflow (``torch.logcumsumexp``).

    >>> x = Value([0.0, 0.0, 1000.0]); c = logcumsumexp(x)
    >>> [round(v, 4) for v in c.data.tolist()]        # log 1, log 2, and 1000 (exp(1000) would overflow)
    [0.0, 0.6931, 1000.0]
    >>> c.sum().backward(); [round(v, 4) for v in x.grad.tolist()]   # sum_{j >= i} exp(x_i - c_j)
    [1.5, 0.5, 1.0]
    """
    x = as_value(x)
    scanned, ax, shape = _along_one_axis(x, axis, "logcumsumexp")
    out = LOGCUMSUMEXP.apply(scanned, axis=ax)
    return out.reshape(shape) if shape is not None else out


# ==========================================================================
# Windows along one axis (PyTorch's Tensor.unfold)
# ==========================================================================
def _window_count(length, size, step):
    return (length - size) // step + 1


def _windows_data(x, axis, size, step):
    # every window as a view, one every `step`, then copied (the result owns its data)
    view = sliding_window_view(x, size, axis=axis)
    return np.ascontiguousarray(view[(slice(None),) * axis + (slice(None, None, step),)])


def _windows_d_x(g, x, out, axis, size, step):
    # each window's gradient added back where the window came from: overlaps add up
    count = out.shape[axis]
    if isinstance(g, Value):  # create_graph: one scatter_add of every element of every window
        moved = g.transpose(_window_next_to_axis(g.ndim, axis))  # (..., count, size, ...)
        flat = moved.reshape(x.shape[:axis] + (count * size,) + x.shape[axis + 1:])
        starts = np.arange(count).reshape(-1, 1) * step + np.arange(size)  # position of each element
        index_shape = [1] * x.ndim
        index_shape[axis] = count * size
        index = np.broadcast_to(starts.reshape(index_shape), flat.shape)
        return _scatter_add_into(flat, x.shape, axis, np.ascontiguousarray(index))
    grad = np.zeros(x.shape, dtype=g.dtype)
    before = (slice(None),) * axis
    if size <= count:  # one strided add per tap of the window
        for k in range(size):
            grad[before + (slice(k, k + step * (count - 1) + 1, step),)] += g[..., k]
    else:  # one add per window
        for j in range(count):
            grad[before + (slice(j * step, j * step + size),)] += np.moveaxis(g[before + (j,)], -1, axis)
    return grad


def _window_next_to_axis(ndim, axis):
    """The transpose that puts the window's own (last) axis right after the windows' axis."""
    order = list(range(ndim - 1))
    order.insert(axis + 1, ndim - 1)
    return tuple(order)


def _windows_onnx(g, x, axis, size, step):
    count = _window_count(g.shapes[0][axis], size, step)
    positions = np.arange(count).reshape(-1, 1) * step + np.arange(size)  # (count, size)
    gathered = g.op("Gather", x, g.const(positions.astype(np.int64)), axis=axis)  # (..., count, size, ...)
    ndim = len(g.shapes[0]) + 1
    order = list(range(ndim))
    order.append(order.pop(axis + 1))  # the window's own axis last
    return g.op("Transpose", gathered, perm=order)


WINDOWS = Op(
    "windows", _windows_data, inputs="x", code="sliding_window_view(x, size, axis)[every step-th window]",
    numpy=("sliding_window_view",),
    as_torch="x.unfold(axis, size, step)", as_onnx=_windows_onnx,
    d_x=_windows_d_x,
    formula="dL/dx_i = sum of the gradients of every window element that is x_i", methods=("windows",),
)


@WINDOWS.public
def windows(x, axis, size, step=1):
    """Every window of `size` consecutive elements along `axis`, one each
    `step` elements: PyTorch's ``x.unfold(dim, size, step)``. The windows'
    axis replaces `axis` and the window's own elements come last: shape
    ``(..., (n - size) // step + 1, ..., size)``. The result is a copy, so
    its size (windows times size) is checked first. An element in several
    windows gets the sum of their gradients.

    >>> x = Value([0.0, 1.0, 2.0, 3.0, 4.0]); w = windows(x, 0, size=3, step=1)
    >>> w.data.tolist()
    [[0.0, 1.0, 2.0], [1.0, 2.0, 3.0], [2.0, 3.0, 4.0]]
    >>> w.sum().backward(); x.grad.tolist()           # x[2] is in all three windows
    [1.0, 2.0, 3.0, 2.0, 1.0]
    """
    x = as_value(x)
    for name, value in (("size", size), ("step", step)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"windows: {name} must be an int, got {value!r}")
    size, step = int(size), int(step)
    if step <= 0:
        raise ValueError(f"windows: step must be at least 1 (the distance between window starts), got {step}")
    if size < 0:
        raise ValueError(f"windows: size must be >= 0, got {size}")
    if x.ndim == 0:  # a 0-d input: one element, so one window of size 0 or 1 (as PyTorch)
        _one_axis_of(x, axis, "windows")
        if size > 1:
            raise ShapeError(f"windows: size {size} is larger than the 1 element of a 0-d input")
        return WINDOWS.apply(x.reshape(1), axis=0, size=size, step=step).reshape(size)
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise TypeError(f"windows: axis must be one int, got {axis!r}")
    (ax,) = _axes(axis, x.ndim, "windows")
    length = x.shape[ax]
    if size > length:
        raise ShapeError(f"windows: size {size} is larger than axis {axis} of shape {x.shape} ({length} elements)")
    out_shape = x.shape[:ax] + (_window_count(length, size, step),) + x.shape[ax + 1:] + (size,)
    _check_workspace("windows", f"input {x.shape} with size {size} and step {step} along axis {axis} "
                     f"({out_shape[ax]:,} windows)", {"windows": out_shape}, x.dtype.itemsize,
                     "use a larger step, a smaller size or a smaller input")
    return WINDOWS.apply(x, axis=ax, size=size, step=step)

