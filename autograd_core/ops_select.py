"""Statistics, selection, indexing, einsum and predicates: operations declared
with the registry of ``ops.py`` (see its docstring), each with its gradient
beside it.

Two families live here:

* **Statistics and selection** (``std``, ``prod``, ``sort``, ``topk``,
  ``cumsum``, ``cumprod``) and **indexing** (``gather``, ``scatter_add``,
  ``roll``, ``repeat``, ``tile``, ``diag``, ``tril``, ``triu``, ``einsum``):
  structural ops, whose rule takes the upstream gradient ``g`` first. Most of
  them *move* elements, so their gradient moves ``g`` back: a sort's
  gradient goes back to where each element came from.
* **Indices and predicates** (``argmin``, ``argmax``, ``argsort``, ``any``,
  ``all``, ``isnan``, ``isinf``, ``isfinite``): plain NumPy integer or
  boolean arrays, never graph nodes (like the comparisons ``<``, ``==``): a
  step function has no useful gradient.

Rules run on NumPy arrays in a first-order backward and on Values with
``create_graph=True``; the helpers ``_cumsum``, ``_scatter_add_into`` ...
below call NumPy or the engine's op accordingly, so one rule serves both.
"""

from __future__ import annotations

import builtins
import functools
import string

import numpy as np

from . import _forms
from . import ops as _ops  # (ops.derived_data by its attribute: compile replaces it while tracing)
from .engine import Value, as_value
from .errors import ShapeError
from .ops import (
    F,
    Op,
    _axes,
    _count,
    _data,
    _expand_reduced,
    _export,
    _scalar_or_array,
)
from .ops_shape import concatenate

# --------------------------------------------------------------------------
# Helpers that work on arrays and on Values (create_graph=True)
# --------------------------------------------------------------------------


def _flip(x, axis):
    """x reversed along `axis` (a slice: NumPy view, or the engine's getitem)."""
    return x[(slice(None),) * axis + (slice(None, None, -1),)]


def _cumsum(x, axis):
    return CUMSUM.apply(x, axis=axis) if isinstance(x, Value) else np.cumsum(x, axis=axis)


def _cumprod(x, axis):
    return CUMPROD.apply(x, axis=axis) if isinstance(x, Value) else np.cumprod(x, axis=axis)


def _reverse_cumsum(g, axis):
    """sum_{j >= i} g_j along `axis`: the backward of a cumulative sum."""
    return _flip(_cumsum(_flip(g, axis), axis), axis)


def _zeros_like_shape(shape, like):
    return np.zeros(shape, dtype=_data(like).dtype)


def _scatter_add_into(g, shape, axis, index):
    """zeros(shape) with g added along `axis` at `index` (the backward of gather)."""
    if isinstance(g, Value):
        return SCATTER_ADD.apply(as_value(_zeros_like_shape(shape, g)), g, axis=axis, index=index)
    return _scatter_add_data(_zeros_like_shape(shape, g), g, axis, index)


def _gather_along(x, axis, index):
    return GATHER.apply(x, axis=axis, index=index) if isinstance(x, Value) else _gather_data(x, axis, index)


def _moved_to_end(x, axes):
    """x with the `axes` moved to the end and flattened into one: shape (..., n)."""
    rest = [k for k in range(x.ndim) if k not in axes]
    order = tuple(rest) + tuple(axes)
    moved = x.transpose(order) if order != tuple(range(x.ndim)) else x
    return moved.reshape(tuple(x.shape[k] for k in rest) + (-1,)), order


def _moved_back(y, x_shape, order):
    """Undo _moved_to_end for an array of the flattened shape."""
    y = y.reshape(tuple(x_shape[k] for k in order))
    inverse = tuple(np.argsort(order).tolist())
    return y.transpose(inverse) if inverse != tuple(range(len(order))) else y


def _exclusive_cumprod(x, axis):
    """prod_{k < i} x_k along `axis` (1 for the first): cumprod of x shifted right by one."""
    ones_shape = list(x.shape)
    ones_shape[axis] = 1
    ones = np.ones(ones_shape, dtype=_data(x).dtype)
    head = x[(slice(None),) * axis + (slice(None, -1),)]
    if isinstance(x, Value):
        return _cumprod(concatenate([ones, head], axis=axis), axis)
    return _cumprod(np.concatenate([ones, head], axis=axis), axis)


# ==========================================================================
# Statistics
# ==========================================================================
# s = std(x) = sqrt(var(x)):  ds/dx_i = (x_i - mean) / ((n - ddof) s)
# Where every element is equal (s = 0) that is 0/0: the gradient is 0 there, as in PyTorch
# (the division is by 1 there, so that no inf or NaN is made even in a second derivative)
def _std_d_x(g, x, out, axis, ddof, keepdims):
    centred = x - x.mean(axis=axis, keepdims=True)
    scale = 1 / (_count(x.shape, axis) - ddof)
    s = _expand_reduced(out, x.shape, axis, keepdims)
    flat = s == 0  # (a comparison of the Value s in a second derivative: one a compiled step makes again)
    per_group = _expand_reduced(g, x.shape, axis, keepdims) * scale / F.where(flat, 1.0, s)
    return centred * F.where(flat, 0.0, per_group)


STD = Op(
    "std", lambda x, axis, ddof, keepdims: _scalar_or_array(x.std(axis=axis, ddof=ddof, keepdims=keepdims)),
    as_torch=_forms.torch_reduction("torch.std", correction="ddof"), as_onnx=_forms.onnx_variance(square_root=True),
    inputs="x", code="x.std(axis=axis, ddof=ddof, keepdims=keepdims)",
    d_x=_std_d_x,
    formula="d std(x)/dx_i = (x_i - mean) / ((n - ddof) std), 0 where std = 0", methods=("std",),
)


@STD.public
def std(x, axis=None, ddof=0, keepdims=False):
    """Standard deviation over `axis`; ``ddof=0`` divides by n (NumPy's
    default), ``ddof=1`` by n - 1 (PyTorch's default, ``correction=1``).

    >>> x = Value([1.0, 2.0, 3.0, 6.0]); s = std(x); s.backward()
    >>> round(float(s.data), 4), np.round(x.grad, 4).tolist()   # sqrt(3.5); (x - 3) / (4 sqrt(3.5))
    (1.8708, [-0.2673, -0.1336, 0.0, 0.4009])
    """
    x = as_value(x)
    axes = _axes(axis, x.ndim, "std")
    count = _count(x.shape, axes)
    if count - ddof <= 0:
        raise ShapeError(f"std: {count} elements over axis {axis} of shape {x.shape} are too few for ddof={ddof}")
    return STD.apply(x, axis=axes, ddof=ddof, keepdims=keepdims)


# p = prod(x):  dp/dx_i = prod_{k != i} x_k, computed as (product of those before i) *
# (product of those after i): exact with zeros, no division (one zero: only it gets a
# gradient, the product of the others; two zeros: none does, as in PyTorch)
def _prod_of_others(x, axes):
    flat, order = _moved_to_end(x, axes)
    before = _exclusive_cumprod(flat, flat.ndim - 1)
    after = _flip(_exclusive_cumprod(_flip(flat, flat.ndim - 1), flat.ndim - 1), flat.ndim - 1)
    return _moved_back(before * after, x.shape, order)


def _prod_d_x(g, x, out, axis, keepdims):
    if _data(x).size == 0:  # (an empty axis: no element to differentiate)
        return np.zeros(x.shape, dtype=_data(x).dtype)
    if not axis:
        return g * np.ones(x.shape, dtype=_data(x).dtype)  # nothing reduced (a 0-d input)
    return _prod_of_others(x, axis) * _expand_reduced(g, x.shape, axis, keepdims)


def _prod_torch(t, x, axis, keepdims):
    ndim = len(t.shapes[0])
    if tuple(axis) == tuple(range(ndim)) and not keepdims:
        return f"torch.prod({x})"
    for k in sorted(axis, reverse=True):  # torch.prod takes one dim at a time
        x = f"torch.prod({x}, dim={k}{', keepdim=True' if keepdims else ''})"
    return x


PROD = Op(
    "prod", lambda x, axis, keepdims: _scalar_or_array(x.prod(axis=axis, keepdims=keepdims)), inputs="x",
    as_torch=_prod_torch, as_onnx=_forms.onnx_reduction("ReduceProd"),
    code="x.prod(axis=axis, keepdims=keepdims)",
    d_x=_prod_d_x,
    formula="d prod(x)/dx_i = prod of the other x_k", methods=("prod",),
)


@PROD.public
def prod(x, axis=None, keepdims=False):
    """Product over `axis` (None for all). The gradient of each element is the
    product of the others, exact where elements are zero.

    >>> x = Value([2.0, 0.0, 5.0]); p = prod(x); p.backward()
    >>> float(p.data), x.grad.tolist()                # only the zero moves the product: by 2 * 5
    (0.0, [0.0, 10.0, 0.0])
    """
    x = as_value(x)
    return PROD.apply(x, axis=_axes(axis, x.ndim, "prod"), keepdims=keepdims)


def _one_axis_of(x, axis, name):
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise TypeError(f"{name}: axis must be one int, got {axis!r}")
    (ax,) = _axes(axis, x.ndim, name) or (0,)
    return ax


def _cumulative(op, x, axis):
    """cumsum / cumprod along one axis: None flattens the input (as NumPy); a
    0-d input takes axis 0 or -1 only and keeps its shape (as PyTorch)."""
    if axis is None:
        return op.apply(x.reshape(-1) if x.ndim != 1 else x, axis=0)
    if x.ndim == 0:
        _one_axis_of(x, axis, op.name)  # any other axis is out of range
        return op.apply(x.reshape(1), axis=0).reshape(())
    return op.apply(x, axis=_one_axis_of(x, axis, op.name))


# c = cumsum(x):  c_j = sum_{i <= j} x_i, so dL/dx_i = sum_{j >= i} g_j (a reversed cumulative sum)
CUMSUM = Op(
    "cumsum", lambda x, axis: np.cumsum(x, axis=axis), inputs="x", code="np.cumsum(x, axis=axis)",
    as_torch="torch.cumsum(x, dim=axis)", as_onnx=lambda g, x, axis: g.op("CumSum", x, g.const(np.int64(axis))),
    d_x=lambda g, x, out, axis: _reverse_cumsum(g, axis),
    formula="dL/dx_i = sum_{j >= i} dL/dc_j", methods=("cumsum",),
)


@CUMSUM.public
def cumsum(x, axis=None):
    """Cumulative sum along `axis` (None: of the flattened input, as NumPy).

    >>> x = Value([1.0, 2.0, 3.0]); c = cumsum(x); c.data.tolist()
    [1.0, 3.0, 6.0]
    >>> c.sum().backward(); x.grad.tolist()           # x_0 is in all three sums, x_2 in one
    [3.0, 2.0, 1.0]
    """
    return _cumulative(CUMSUM, as_value(x), axis)


# c = cumprod(x):  c_j = prod_{i <= j} x_i, dL/dx_i = sum_{j >= i} g_j prod_{k <= j, k != i} x_k.
# Without zeros that is revcumsum(g c) / x_i. With zeros (PyTorch's case analysis), take
# the first zero z of the row: before z the same formula holds (every c_j with j >= z is 0);
# at z, dL/dx_z = c_{z-1} * sum_{j >= z} g_j prod_{z < k <= j} x_k; after z every product
# holds x_z = 0, so the gradient is 0.
def _cumprod_d_x(g, x, out, axis):
    xd = _data(x)
    zero = xd == 0
    if not zero.any():
        return _reverse_cumsum(g * out, axis) / x
    seen_zero = np.cumsum(zero, axis=axis)  # how many zeros up to and including i
    before_first = seen_zero == 0
    first_zero = zero & (seen_zero == 1)
    safe_x = F.where(before_first, x, 1.0)  # the division only where it is used
    part_before = _reverse_cumsum(g * out, axis) / safe_x
    # at the first zero: prefix product before it, times sum_{j >= z} g_j prod_{z < k <= j} x_k
    after_zero_products = _cumprod(F.where(before_first | first_zero, 1.0, x), axis)  # 1 up to z, then x_k
    tail = _reverse_cumsum(F.where(seen_zero >= 1, g * after_zero_products, 0.0), axis)
    at_zero = _exclusive_cumprod(x, axis) * tail
    return F.where(before_first, part_before, F.where(first_zero, at_zero, 0.0))


CUMPROD = Op(
    "cumprod", lambda x, axis: np.cumprod(x, axis=axis), inputs="x", code="np.cumprod(x, axis=axis)",
    as_torch="torch.cumprod(x, dim=axis)",
    d_x=_cumprod_d_x,
    formula="dL/dx_i = sum_{j >= i} dL/dc_j * prod_{k <= j, k != i} x_k", methods=("cumprod",),
)


@CUMPROD.public
def cumprod(x, axis=None):
    """Cumulative product along `axis` (None: of the flattened input, as
    NumPy); the gradient is exact where elements are zero.

    >>> x = Value([2.0, 3.0, 4.0]); c = cumprod(x); c.data.tolist()
    [2.0, 6.0, 24.0]
    >>> c.sum().backward(); x.grad.tolist()           # d/dx_0 (2 + 2*3 + 2*3*4) = 1 + 3 + 12
    [16.0, 10.0, 6.0]
    """
    return _cumulative(CUMPROD, as_value(x), axis)


# ==========================================================================
# Selection: sort and topk move elements, so their gradient is moved back
# ==========================================================================
def _order(x, axis, descending):
    """Stable sorting indices along `axis` (ties keep their order, ascending or descending)."""
    if descending:
        # reversing the stable ascending order would reverse ties too: sort the negated keys instead
        return np.argsort(-x, axis=axis, kind="stable")
    return np.argsort(x, axis=axis, kind="stable")


def _sort_data(x, axis, descending):
    return np.take_along_axis(x, _order(x, axis, descending), axis=axis)


SORT = Op(
    "sort", _sort_data, inputs="x", code="np.take_along_axis(x, np.argsort(-x if descending else x, axis, kind='stable'), axis)",
    as_torch="torch.sort(x, dim=axis, descending=descending, stable=True).values",
    d_x=lambda g, x, out, axis, descending: _scatter_add_into(g, x.shape, axis, _order(_data(x), axis, descending)),
    formula="each gradient goes back to where its element came from", methods=("sort",),
)


@SORT.public
def sort(x, axis=-1, descending=False):
    """The elements sorted along `axis` (NumPy's ``np.sort``; PyTorch's
    ``torch.sort(x, dim).values``); ties keep their order. Use
    :func:`argsort` for the indices. The gradient of each sorted element goes
    back to where it came from.

    >>> x = Value([3.0, 1.0, 2.0]); s = sort(x); s.data.tolist()
    [1.0, 2.0, 3.0]
    >>> (s * Value([1.0, 10.0, 100.0])).sum().backward(); x.grad.tolist()   # 3.0 was last: it gets 100
    [100.0, 1.0, 10.0]
    """
    x = as_value(x)
    if x.ndim == 0:
        return x * 1.0
    return SORT.apply(x, axis=_one_axis_of(x, axis, "sort"), descending=bool(descending))


def _topk_indices(x, k, axis, largest):
    order = _order(x, axis, descending=largest)
    return order[(slice(None),) * axis + (slice(0, k),)]


TOPK = Op(
    "topk", lambda x, k, axis, largest: np.take_along_axis(x, _topk_indices(x, k, axis, largest), axis=axis),
    as_torch="torch.sort(x, dim=axis, descending=largest, stable=True).values.narrow(axis, 0, k)",
    inputs="x", code="np.take_along_axis(x, np.argsort(-x if largest else x, axis, kind='stable')[first k along axis], axis)",
    d_x=lambda g, x, out, k, axis, largest: _scatter_add_into(g, x.shape, axis, _topk_indices(_data(x), k, axis, largest)),
    formula="each gradient goes back to where its element came from; the others get 0", methods=("topk",),
)


@TOPK.public
def topk(x, k, axis=-1, largest=True, sorted=True):
    """The `k` largest (or smallest, ``largest=False``) elements along `axis`,
    in order, and their indices: ``(values, indices)`` as PyTorch's
    ``torch.topk``; `values` is a Value, `indices` an integer array. Ties are
    taken in the order they appear. ``sorted=False`` is accepted (the values
    come sorted anyway).

    >>> x = Value([1.0, 5.0, 3.0, 4.0]); values, indices = topk(x, 2)
    >>> values.data.tolist(), indices.tolist()
    ([5.0, 4.0], [1, 3])
    >>> values.sum().backward(); x.grad.tolist()      # only the chosen elements get a gradient
    [0.0, 1.0, 0.0, 1.0]
    """
    x = as_value(x)
    if x.ndim == 0:
        x = x.reshape(1)
        if k not in (0, 1):
            raise ShapeError(f"topk: k={k} is out of range for a 0-d input (one element)")
        values, indices = topk(x, k, 0, largest, sorted)
        return values.reshape(()) if k else values, indices
    ax = _one_axis_of(x, axis, "topk")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k <= x.shape[ax]:
        raise ShapeError(f"topk: k={k!r} must be an int in [0, {x.shape[ax]}] for axis {axis} of shape {x.shape}")
    values = TOPK.apply(x, k=int(k), axis=ax, largest=bool(largest))
    k, largest = int(k), bool(largest)
    return values, _ops.derived_data(lambda d: _topk_indices(d, k, ax, largest), x, name="indices")


def argsort(x, axis=-1, descending=False):
    """Indices that sort `x` along `axis` (a plain integer array: no
    gradient); stable, so ties keep their order.

    >>> argsort(Value([3.0, 1.0, 2.0])).tolist()
    [1, 2, 0]
    >>> argsort(Value([3.0, 1.0, 3.0]), descending=True).tolist()
    [0, 2, 1]
    """
    data = _data_of(x, "argsort")
    if data.ndim == 0:
        return np.zeros((), dtype=np.int64)
    ax = _one_axis_of(as_value(x), axis, "argsort")
    return _ops.derived_data(lambda d: _order(d, ax, descending), _derived_input(x, "argsort"), name="order")


def _derived_input(x, name):
    """`x` for ``ops.derived_data``: a Value as it is (compile follows it), else its array."""
    return x if isinstance(x, (Value, np.ndarray)) else _data_of(x, name)


def _data_of(x, name):
    if isinstance(x, Value):
        return x._data
    try:
        return np.asarray(x)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expects a Value or array data, got {type(x).__name__}") from None


def _arg_extreme(np_fn, name):
    def arg_extreme(x, axis=None, keepdims=False):
        data = _data_of(x, name)
        if axis is not None:
            _one_axis_of(as_value(data) if not isinstance(x, Value) else x, axis, name)
        if data.size == 0:
            raise ShapeError(f"{name}: an empty input of shape {data.shape} has no {name[3:]}")
        return _ops.derived_data(lambda d: np.asarray(np_fn(d, axis=axis, keepdims=keepdims)),
                                 _derived_input(x, name), name=name)

    return arg_extreme


argmax = _arg_extreme(np.argmax, "argmax")
argmax.__name__ = "argmax"
argmax.__doc__ = """Index of the largest element (of the flattened input when `axis`
is None, as NumPy and PyTorch), a plain integer array: no gradient. Ties
give the first.

>>> argmax(Value([[1.0, 5.0], [7.0, 2.0]])).tolist(), argmax(Value([[1.0, 5.0], [7.0, 2.0]]), axis=1).tolist()
(2, [1, 0])
"""
argmin = _arg_extreme(np.argmin, "argmin")
argmin.__name__ = "argmin"
argmin.__doc__ = """Index of the smallest element (of the flattened input when `axis`
is None), a plain integer array: no gradient. Ties give the first.

>>> argmin(Value([[1.0, 5.0], [7.0, 0.5]]), axis=0).tolist()
[0, 1]
"""


# ==========================================================================
# Gathering and scattering along an axis (PyTorch's gather and scatter_add)
# ==========================================================================
def _index_grid(index, axis):
    """The full NumPy index for `index` along `axis`: open ranges on the other axes."""
    grid = list(np.ogrid[tuple(slice(n) for n in index.shape)])
    grid[axis] = index
    return tuple(grid)


def _leading(shape):
    return tuple(slice(0, n) for n in shape)


def _gather_data(x, axis, index):
    # out[i, j] = x[i, index[i, j]] along axis 1; the other axes run over index's shape
    return x[_index_grid(index, axis)]


def _scatter_add_data(x, src, axis, index):
    out = np.array(x, copy=True)
    np.add.at(out, _index_grid(index, axis), src[_leading(index.shape)])
    return out


GATHER = Op(
    "gather", _gather_data, inputs="x", code="np.take_along_axis(x, index, axis)", numpy=("gather", "take_along_axis"),
    as_torch="torch.gather(x, axis, index)",
    as_onnx=lambda g, x, axis, index: g.op("GatherElements", x, g.const(index), axis=axis),
    d_x=lambda g, x, out, axis, index: _scatter_add_into(g, x.shape, axis, index),
    formula="dL/dx: each gradient added back at the position it was read from", methods=("gather",),
)


def _checked_index(x, axis, index, name, what="input"):
    index = np.asarray(_data(index))
    if index.dtype.kind not in "iu":
        raise TypeError(f"{name}: index must hold integers, got dtype {index.dtype}")
    if x.ndim == 0:
        raise ShapeError(f"{name}: the {what} needs at least one dimension, got a 0-d Value")
    if index.ndim != x.ndim:
        raise ShapeError(f"{name}: index must have as many dimensions as the {what} ({x.ndim}), got shape {index.shape}")
    for k, n in enumerate(index.shape):
        if k != axis and n > x.shape[k]:
            raise ShapeError(
                f"{name}: index of shape {index.shape} is larger than the {what} of shape {x.shape} "
                f"in dimension {k} (only dimension {axis}, the axis, may differ)"
            )
    _ops.data_check(functools.partial(_index_in_range, name=name, size=x.shape[axis], axis=axis, shape=x.shape), index)
    return index


def _index_in_range(index, name, size, axis, shape):
    if index.size and (index.min() < 0 or index.max() >= size):  # no negative indices, as in PyTorch
        raise IndexError(f"{name}: index values must lie in [0, {size - 1}] along axis {axis} of shape {shape}")


@GATHER.public
def gather(x, axis, index):
    """PyTorch's ``gather``: along `axis`, read ``x`` at `index` (an integer
    array with x's number of dimensions): for axis 1, ``out[i, j] = x[i,
    index[i, j]]``; the result has index's shape. The gradient adds each
    upstream gradient back where its element was read (repeats accumulate).

    >>> x = Value([[1.0, 2.0], [3.0, 4.0]]); y = gather(x, 1, np.array([[1, 1], [0, 1]]))
    >>> y.data.tolist()
    [[2.0, 2.0], [3.0, 4.0]]
    >>> y.sum().backward(); x.grad.tolist()           # x[0, 1] was read twice
    [[0.0, 2.0], [1.0, 1.0]]
    """
    x = as_value(x)
    ax = _one_axis_of(x, axis, "gather") if x.ndim else 0
    return GATHER.apply(x, axis=ax, index=_checked_index(x, ax, index, "gather"))


def _scatter_add_d_src(g, x, src, out, axis, index):
    picked = _gather_along(g, axis, index)
    if picked.shape == src.shape:
        return picked
    # src larger than index: the elements past index's shape were not used (gradient 0)
    return F.scatter(picked, src.shape, _leading(picked.shape))


SCATTER_ADD = Op(
    "scatter_add", _scatter_add_data, inputs="x, src", code="np.add.at(x.copy(), index along axis, src)",
    as_torch=lambda t, x, src, axis, index: f"torch.scatter_add({x}, {axis}, {t.const(index, 'index')}, "
                                            f"{src}[{', '.join(f':{n}' for n in index.shape)}])",
    d_x=lambda g, x, src, out, axis, index: g,
    d_src=_scatter_add_d_src,
    formula="dL/dx = g, dL/dsrc = g read at the index",
)


@SCATTER_ADD.public
def scatter_add(x, axis, index, src):
    """PyTorch's ``scatter_add``: a copy of `x` with `src` added along `axis` at
    `index`: for axis 0, ``out[index[i, j], j] += src[i, j]`` (repeated
    positions accumulate). The gradient: `x` gets the upstream gradient as it
    is, `src` gets it read back at `index` (a gather).

    >>> out = scatter_add(Value(np.zeros(3)), 0, np.array([0, 2, 0]), Value([1.0, 2.0, 3.0]))
    >>> out.data.tolist()
    [4.0, 0.0, 2.0]
    """
    x = as_value(x)
    src = as_value(src, x)
    ax = _one_axis_of(x, axis, "scatter_add") if x.ndim else 0
    index = _checked_index(x, ax, index, "scatter_add")
    if src.ndim != index.ndim or builtins.any(n > s for n, s in zip(index.shape, src.shape)):
        raise ShapeError(f"scatter_add: src of shape {src.shape} must be at least as large as index {index.shape} in every dimension")
    return SCATTER_ADD.apply(x, src, axis=ax, index=index)


# ==========================================================================
# Rearranging: roll, repeat, tile, diag, tril, triu
# ==========================================================================
def _negated(shift):
    return tuple(-s for s in shift) if isinstance(shift, tuple) else -shift


ROLL = Op(
    "roll", lambda x, shift, axis: np.roll(x, shift, axis=axis), inputs="x", code="np.roll(x, shift, axis=axis)",
    as_torch=lambda t, x, shift, axis: f"torch.roll({x}, {t.const(shift)}{'' if axis is None else ', ' + t.const(axis)})",
    d_x=lambda g, x, out, shift, axis: ROLL.apply(g, shift=_negated(shift), axis=axis) if isinstance(g, Value)
    else np.roll(g, _negated(shift), axis=axis),
    formula="the gradient rolled back by -shift", methods=("roll",),
)


@ROLL.public
def roll(x, shift, axis=None):
    """Shift elements along `axis` (None: the flattened input), wrapping
    around, as ``np.roll`` (PyTorch: ``torch.roll(x, shifts, dims)``).

    >>> x = Value([1.0, 2.0, 3.0]); y = roll(x, 1); y.data.tolist()
    [3.0, 1.0, 2.0]
    >>> (y * Value([1.0, 10.0, 100.0])).sum().backward(); x.grad.tolist()   # rolled back
    [10.0, 100.0, 1.0]
    """
    x = as_value(x)
    shift = tuple(int(s) for s in shift) if isinstance(shift, (tuple, list)) else int(shift)
    if axis is not None:
        axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
        for a in axes:
            _one_axis_of(x, a, "roll")
        if isinstance(shift, tuple) != isinstance(axis, (tuple, list)) or (isinstance(shift, tuple) and len(shift) != len(axes)):
            raise ShapeError(f"roll: shift {shift} and axis {axis} must be both ints or sequences of one length")
        axis = tuple(a % x.ndim for a in axes) if isinstance(axis, (tuple, list)) else int(axis) % x.ndim
    return ROLL.apply(x, shift=shift, axis=axis)


# y = repeat(x, r, axis): each element along axis copied r times; dL/dx sums the r copies
def _repeat_d_x(g, x, out, repeats, axis):
    n = x.shape[axis]
    if isinstance(repeats, int):
        g = g.reshape(x.shape[:axis] + (n, repeats) + x.shape[axis + 1:])
        return g.sum(axis=axis + 1)
    source = np.repeat(np.arange(n), repeats)  # the element each output position copies
    index = (slice(None),) * axis + (source,)
    return F.scatter(g, x.shape, index)


REPEAT = Op(
    "repeat", lambda x, repeats, axis: np.repeat(x, repeats, axis=axis), inputs="x",
    as_torch=lambda t, x, repeats, axis: f"torch.repeat_interleave({x}, "
                                         f"{t.const(np.asarray(repeats) if isinstance(repeats, tuple) else repeats)}, "
                                         f"dim={axis})",
    code="np.repeat(x, repeats, axis=axis)",
    d_x=_repeat_d_x,
    formula="dL/dx_i = sum of the gradients of its copies", methods=("repeat",),
)


@REPEAT.public
def repeat(x, repeats, axis=None):
    """Repeat each element `repeats` times along `axis` (None: of the
    flattened input), as ``np.repeat`` and PyTorch's ``repeat_interleave``.
    (PyTorch's ``Tensor.repeat`` tiles the whole tensor: that is :func:`tile`.)

    >>> x = Value([1.0, 2.0]); y = repeat(x, 3); y.data.tolist()
    [1.0, 1.0, 1.0, 2.0, 2.0, 2.0]
    >>> y.sum().backward(); x.grad.tolist()           # each element has three copies
    [3.0, 3.0]
    """
    x = as_value(x)
    if axis is None:
        x = x.reshape(-1) if x.ndim != 1 else x
        axis = 0
    ax = _one_axis_of(x, axis, "repeat")
    if isinstance(repeats, (int, np.integer)) and not isinstance(repeats, bool):
        if repeats < 0:
            raise ValueError(f"repeat: repeats must be >= 0, got {repeats}")
        repeats = int(repeats)
    else:
        repeats = np.asarray(repeats)
        if repeats.dtype.kind not in "iu" or repeats.shape not in ((x.shape[ax],), (1,)) or (repeats < 0).any():
            raise ShapeError(f"repeat: repeats must be an int >= 0 or one per element along axis {axis} ({x.shape[ax]}), got {repeats!r}")
        repeats = int(repeats[0]) if repeats.shape == (1,) and x.shape[ax] != 1 else tuple(int(r) for r in repeats)
    return REPEAT.apply(x, repeats=repeats, axis=ax)


# y = tile(x, reps): the whole array copied reps[k] times along axis k; dL/dx sums the copies
def _tile_d_x(g, x, out, reps):
    ndim = builtins.max(len(reps), x.ndim)
    shape = (1,) * (ndim - x.ndim) + tuple(x.shape)
    reps = (1,) * (ndim - len(reps)) + tuple(reps)
    interleaved = tuple(n for pair in zip(reps, shape) for n in pair)  # (r0, n0, r1, n1, ...)
    summed = g.reshape(interleaved).sum(axis=tuple(range(0, 2 * ndim, 2)))
    return summed.reshape(x.shape)


def _tile_onnx(g, x, reps):
    shape = g.shapes[0]
    if len(reps) > len(shape):  # np.tile adds leading axes first
        x = g.op("Reshape", x, g.ints((1,) * (len(reps) - len(shape)) + tuple(shape)))
    reps = (1,) * (len(shape) - len(reps)) + tuple(reps)
    return g.op("Tile", x, g.ints(reps))


TILE = Op(
    "tile", lambda x, reps: np.tile(x, reps), inputs="x", code="np.tile(x, reps)",
    as_torch="torch.tile(x, reps)", as_onnx=_tile_onnx,
    d_x=_tile_d_x,
    formula="dL/dx = the sum of the gradients of every copy", methods=("tile",),
)


@TILE.public
def tile(x, reps):
    """Copy the whole array `reps` times along each axis, as ``np.tile`` (and
    ``torch.tile``; PyTorch's ``Tensor.repeat`` does the same).

    >>> x = Value([1.0, 2.0]); y = tile(x, 2); y.data.tolist()
    [1.0, 2.0, 1.0, 2.0]
    >>> (y * Value([1.0, 2.0, 3.0, 4.0])).sum().backward(); x.grad.tolist()   # 1 + 3, 2 + 4
    [4.0, 6.0]
    """
    x = as_value(x)
    reps = (reps,) if isinstance(reps, (int, np.integer)) else tuple(reps)
    if not builtins.all(isinstance(r, (int, np.integer)) and not isinstance(r, bool) and r >= 0 for r in reps):
        raise ValueError(f"tile: reps must be ints >= 0, got {reps!r}")
    return TILE.apply(x, reps=tuple(int(r) for r in reps))


def _diagonal_index(shape, k):
    """(rows, cols) of the k-th diagonal of a matrix of `shape`."""
    rows, cols = shape
    length = builtins.max(0, builtins.min(rows + builtins.min(k, 0), cols - builtins.max(k, 0)))
    start_row, start_col = builtins.max(-k, 0), builtins.max(k, 0)
    return np.arange(start_row, start_row + length), np.arange(start_col, start_col + length)


def _diag_d_x(g, x, out, k):
    if x.ndim == 1:  # x was put on a diagonal: read it back
        return g[_diagonal_index(out.shape, k)]
    return F.scatter(g, x.shape, _diagonal_index(x.shape, k))  # x's diagonal was read: put it back


DIAG = Op(
    "diag", lambda x, k: np.diag(x, k), inputs="x", code="np.diag(x, k)",
    as_torch="torch.diag(x, k)",
    d_x=_diag_d_x,
    formula="the gradient of the diagonal's elements, moved back",
)


@DIAG.public
def diag(x, k=0):
    """As ``np.diag`` (and ``torch.diag(x, diagonal)``): a 1-d input becomes a
    square matrix with it on diagonal `k`; a 2-d input gives its diagonal `k`.

    >>> diag(Value([1.0, 2.0])).data.tolist()
    [[1.0, 0.0], [0.0, 2.0]]
    >>> x = Value([[1.0, 2.0], [3.0, 4.0]]); d = diag(x); d.sum().backward(); x.grad.tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    """
    x = as_value(x)
    if x.ndim not in (1, 2):
        raise ShapeError(f"diag: the input must be 1-d (to make a matrix) or 2-d (to read a diagonal), got shape {x.shape}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"diag: k must be an int, got {k!r}")
    return DIAG.apply(x, k=int(k))


def _triangle(np_fn, name):
    op = Op(
        name, lambda x, k: np_fn(x, k), inputs="x", code=f"np.{name}(x, k)",
        as_torch=f"torch.{name}(x, k)",
        as_onnx=lambda g, x, k: g.op("Trilu", x, g.const(np.int64(k)), upper=int(name == "triu")),
        d_x=lambda g, x, out, k: op.apply(g, k=k) if isinstance(g, Value) else np_fn(g, k),
        formula=f"dL/dx = {name}(dL/dy): the zeroed elements get no gradient", methods=(name,),
    )
    return op


TRIL = _triangle(np.tril, "tril")
TRIU = _triangle(np.triu, "triu")


def _check_matrix(x, name):
    x = as_value(x)
    if x.ndim < 2:
        raise ShapeError(f"{name}: needs a matrix (or a batch of them), got shape {x.shape}")
    return x


@TRIL.public
def tril(x, k=0):
    """The lower triangle of the last two axes (on and below diagonal `k`),
    zeros elsewhere: ``np.tril`` (``torch.tril(x, diagonal)``), e.g. a causal
    attention mask.

    >>> tril(Value(np.ones((3, 3)))).data.tolist()
    [[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [1.0, 1.0, 1.0]]
    """
    return TRIL.apply(_check_matrix(x, "tril"), k=int(k))


@TRIU.public
def triu(x, k=0):
    """The upper triangle of the last two axes (on and above diagonal `k`),
    zeros elsewhere: ``np.triu`` (``torch.triu(x, diagonal)``).

    >>> triu(Value(np.ones((2, 3))), k=1).data.tolist()
    [[0.0, 1.0, 1.0], [0.0, 0.0, 1.0]]
    """
    return TRIU.apply(_check_matrix(x, "triu"), k=int(k))


# ==========================================================================
# einsum: the gradient of each operand is another einsum
# ==========================================================================
# y = einsum("ij,jk->ik", A, B):  dL/dA = einsum("ik,jk->ij", g, B),  dL/dB = einsum("ij,ik->jk", A, g).
# In general: operand i's gradient is the einsum of g with the other operands, written to
# operand i's letters; a letter that only operand i has (summed away) comes back by broadcasting.
def _parse_einsum(subscripts, shapes):
    """Explicit subscripts: ([letters of each operand], output letters), '...' spelled out."""
    spec = subscripts.replace(" ", "")
    if "->" in spec:
        inputs_part, output = spec.split("->")
    else:
        inputs_part, output = spec, None
    inputs = inputs_part.split(",")
    if len(inputs) != len(shapes):
        raise ValueError(f"einsum: {subscripts!r} names {len(inputs)} operands, got {len(shapes)}")
    used = set(spec) - set(".,->")
    spare = [c for c in string.ascii_letters if c not in used]
    broadcast_ndim = 0
    explicit = []
    for term, shape in zip(inputs, shapes):
        if "..." in term:
            n = len(shape) - (len(term) - 3)
            broadcast_ndim = builtins.max(broadcast_ndim, n)
        explicit.append(term)
    ellipsis_letters = "".join(spare[:broadcast_ndim])
    letters = []
    for term, shape in zip(explicit, shapes):
        if "..." in term:
            n = len(shape) - (len(term) - 3)
            term = term.replace("...", ellipsis_letters[broadcast_ndim - n:])
        if len(term) != len(shape):
            raise ShapeError(f"einsum: subscripts {term!r} do not fit an operand of shape {shape}")
        if len(set(term)) != len(term):
            raise ValueError(f"einsum: a letter repeated within one operand ({term!r}, a diagonal or trace) is not supported")
        letters.append(term)
    if output is None:  # NumPy's implicit output: the letters seen once, in order, after the broadcast ones
        counts = {}
        for term in inputs:
            for c in term.replace("...", ""):
                counts[c] = counts.get(c, 0) + 1
        output = ellipsis_letters + "".join(sorted(c for c, n in counts.items() if n == 1))
    else:
        output = output.replace("...", ellipsis_letters)
    return letters, output


def _einsum_forward(*operands, subscripts, optimize):
    return _scalar_or_array(np.einsum(subscripts, *operands, optimize=optimize))


def _worth_optimizing(operands):
    """NumPy's einsum contracts in its own loops unless asked to optimize, which
    finds an order and hands pairs to BLAS (6x faster for (8, 128, 64) attention
    scores) but costs ~7 us of planning: worth it for large operands only.
    Recorded as a parameter, so that a replay takes the same path (the same bits)."""
    return len(operands) >= 2 and builtins.sum(np.size(o) for o in operands) >= 4096


def _einsum_d_each(i, g, *operands_and_out, subscripts, optimize):
    operands = operands_and_out[:-1]
    letters, output = _parse_einsum(subscripts, [o.shape for o in operands])
    mine = letters[i]
    others = [k for k in range(len(operands)) if k != i]
    available = set(output).union(*(letters[k] for k in others))
    kept = "".join(c for c in mine if c in available)
    spec = ",".join([output] + [letters[k] for k in others]) + "->" + kept
    parts = [g] + [operands[k] for k in others]
    share = einsum(spec, *parts) if isinstance(g, Value) else np.einsum(spec, *parts, optimize=_worth_optimizing(parts))
    # letters summed away in operand i alone: the gradient is the same along them (broadcast back)
    size = dict(zip(mine, operands[i].shape))
    if kept != mine:
        with_axes = share.reshape(tuple(size[c] if c in kept else 1 for c in mine))
        share = F.broadcast_to(with_axes, operands[i].shape)
    # a length-1 axis of operand i that others broadcast: sum the gradient over it
    stretched = tuple(k for k, (n, m) in enumerate(zip(operands[i].shape, share.shape)) if n == 1 and m != 1)
    if stretched:
        share = share.sum(axis=stretched, keepdims=True)
    # a length-1 axis of another operand, broadcast against this one's: the gradient is the same along it
    if tuple(share.shape) != tuple(operands[i].shape):
        share = F.broadcast_to(share, operands[i].shape)
    return share


EINSUM = Op(
    "einsum", _einsum_forward, inputs="*operands", code="np.einsum(subscripts, *operands, optimize=optimize)",
    as_torch=lambda t, *operands, subscripts, optimize: f"torch.einsum({t.const(subscripts)}, {', '.join(operands)})",
    as_onnx=lambda g, *operands, subscripts, optimize: g.op("Einsum", *operands, equation=subscripts),
    d_each=_einsum_d_each,
    formula="dL/d(operand i) = einsum of dL/dy with the other operands, to operand i's letters",
)


@EINSUM.public
def einsum(subscripts, *operands):
    """Einstein summation, as ``np.einsum`` / ``torch.einsum``: ``"ij,jk->ik"``
    is a matrix product, ``"bqd,bkd->bqk"`` attention scores. ``...`` stands
    for broadcast leading axes. A letter repeated within one operand
    (``"ii->"``) is not supported.

    >>> A = Value([[1.0, 2.0]]); B = Value([[3.0], [4.0]])
    >>> C = einsum("ij,jk->ik", A, B); C.data.tolist()
    [[11.0]]
    >>> C.sum().backward(); A.grad.tolist()           # einsum("ik,jk->ij", g, B)
    [[3.0, 4.0]]
    """
    if not isinstance(subscripts, str):
        raise TypeError("einsum: the first argument is the subscripts string, e.g. einsum('ij,jk->ik', a, b)")
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    values = tuple(as_value(o) for o in operands)
    letters, output = _parse_einsum(subscripts, [v.shape for v in values])
    spec = ",".join(letters) + "->" + output
    try:
        return EINSUM.apply(*values, subscripts=spec, optimize=_worth_optimizing([v._data for v in values]))
    except ValueError as exc:
        raise ShapeError(f"einsum: operands of shapes {[v.shape for v in values]} do not fit {subscripts!r}: {exc}") from None


# ==========================================================================
# Predicates: plain boolean arrays, no graph (like the comparisons)
# ==========================================================================
def any(x, axis=None, keepdims=False):
    """True where any element over `axis` is nonzero (a boolean array, no gradient).

    >>> any(Value([0.0, 2.0])), any(Value([[0.0, 0.0], [0.0, 1.0]]), axis=1).tolist()
    (np.True_, [False, True])
    """
    return _ops.derived_data(lambda d: np.any(d, axis=axis, keepdims=keepdims), _derived_input(x, "any"), name="any")


def all(x, axis=None, keepdims=False):
    """True where every element over `axis` is nonzero (a boolean array, no gradient).

    >>> all(Value([1.0, 2.0])), all(Value([1.0, 0.0]))
    (np.True_, np.False_)
    """
    return _ops.derived_data(lambda d: np.all(d, axis=axis, keepdims=keepdims), _derived_input(x, "all"), name="all")


def isnan(x):
    """Where the elements are NaN (a boolean array, no gradient).

    >>> isnan(Value([1.0, np.nan])).tolist()
    [False, True]
    """
    return _ops.derived_data(lambda d: np.isnan(d), _derived_input(x, "isnan"), name="isnan")


def isinf(x):
    """Where the elements are +inf or -inf (a boolean array, no gradient).

    >>> isinf(Value([1.0, -np.inf, np.nan])).tolist()
    [False, True, False]
    """
    return _ops.derived_data(lambda d: np.isinf(d), _derived_input(x, "isinf"), name="isinf")


def isfinite(x):
    """Where the elements are neither inf nor NaN (a boolean array, no gradient).

    >>> isfinite(Value([1.0, np.inf, np.nan])).tolist()
    [True, False, False]
    """
    return _ops.derived_data(lambda d: np.isfinite(d), _derived_input(x, "isfinite"), name="isfinite")


# functions that give indices or booleans: exported beside the ops, and Value methods. any and
# all are not put into ops' namespace (its code calls Python's any and all): the package
# exports them (autograd_core/__init__.py)
for _fn in (argmax, argmin, argsort, any, all, isnan, isinf, isfinite):
    if _fn not in (any, all):
        _export(_fn)
    setattr(Value, _fn.__name__, _fn)
del _fn
