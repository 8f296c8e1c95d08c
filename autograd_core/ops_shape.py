"""Shape operations: ``reshape``, ``transpose``, ``broadcast_to``, ``astype``,
indexing (``v[i]``, ``v[:, 0]``, ``v[idx_array]``) and its backward
``scatter``, ``concatenate`` and ``stack``. Operations of the registry of
``ops.py`` (see its docstring) whose gradient is moved, not changed: it is
reshaped or transposed back, summed over copies, placed back at the index,
or cut into each input's slice.
"""

from __future__ import annotations

import builtins

import numpy as np

from .engine import Value, as_value, sum_to_shape
from .errors import ShapeError
from .ops import F, Op, _export, _scalar_or_array


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


# swapaxes and .T are transposes, not operations of their own: a function of the package and Value's
_export(swapaxes)
Value.swapaxes = swapaxes
Value.T = property(lambda self: transpose(self), doc="The Value with its axes reversed (a matrix transposed).")
