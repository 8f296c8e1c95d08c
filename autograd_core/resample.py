"""Resampling images: interpolation to another size, and max unpooling.

**Interpolation** (``interpolate``, PyTorch's ``F.interpolate``) reads each
output pixel from the input pixels around the place it maps to, one spatial
axis at a time. Along an axis of n_in pixels resized to n_out, output j maps
to the input position

    src = j * n_in / n_out                                  nearest (then floor)
    src = (j + 0.5) * n_in / n_out - 0.5  (at least 0)      linear
    src = j * (n_in - 1) / (n_out - 1)                      linear, align_corners=True

(``n_in / n_out`` is ``1 / scale_factor`` when a scale factor is given, as
PyTorch computes it), and reads

    y[j] = x[i0]                                 nearest, i0 = floor(src)
    y[j] = (1 - l) * x[i0] + l * x[i0 + 1]       linear, i0 = floor(src), l = src - i0

So along each axis the output is a matrix times the input, ``y = A @ x``,
with one 1 per row of A (nearest) or two weights that add up to 1 (linear);
for an image ``Y = A_h @ X @ A_w^T`` and, as for any product with a
constant, ``dL/dX = A_h^T @ dL/dY @ A_w``: each output's gradient goes back
to the pixels it was read from, in the same proportions. The forward pass
reads the pixels instead of multiplying by A (an infinite pixel stays where
it is, and is not multiplied by the zeros of A); the gradient multiplies by
A^T.

**Max unpooling** (``max_unpool2d``) is the inverse of max pooling with
``return_indices=True``: each value goes back to the place its index names
in an output of zeros, so ``dL/dx = dL/dy read at the indices``.

>>> import numpy as np
>>> from autograd_core import Value
>>> x = Value(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]))
>>> interpolate(x, scale_factor=2).data[0, 0].tolist()             # nearest: each pixel becomes 2x2
[[1.0, 1.0, 2.0, 2.0], [1.0, 1.0, 2.0, 2.0], [3.0, 3.0, 4.0, 4.0], [3.0, 3.0, 4.0, 4.0]]
>>> y = interpolate(x, size=(3, 3), mode="bilinear", align_corners=True)
>>> y.data[0, 0].tolist()
[[1.0, 1.5, 2.0], [2.0, 2.5, 3.0], [3.0, 3.5, 4.0]]
>>> y.sum().backward(); x.grad[0, 0].tolist()                      # dL/dX = A_h^T @ dL/dY @ A_w
[[2.25, 2.25], [2.25, 2.25]]
"""

from __future__ import annotations

import functools
import math

import numpy as np

from .engine import Value, as_value  # noqa: F401  (Value: the examples below use it)
from .errors import ShapeError
from . import ops as _ops  # (ops.derived_data by its attribute: compile replaces it while tracing)
from .ops import F, Op
# The window machinery of the poolings (geometry, size checks, max pooling's winners)
from .conv import _check_workspace, _first_winners
from .conv_windows import _channels_first, _ints, _shown

__all__ = ["interpolate", "max_unpool2d"]


# ==========================================================================
# Interpolation
# ==========================================================================
_MODES = {"nearest": (3, 4), "linear": (3,), "bilinear": (4,)}  # mode -> input dimensions it takes


def _sampling(n_in, n_out, mode, align_corners, scale, dtype, ndim):
    """Along one axis of an `ndim` input, PyTorch's sampling: for each output
    pixel the two input pixels it reads (i0, i1) and their weights (l0, l1),
    computed in the input's precision as PyTorch does (float32 positions for
    float32 images)."""
    real = np.float32 if dtype == np.float32 else np.float64
    j = np.arange(n_out)
    # PyTorch's exact shortcuts: the same size is a copy (and, for nearest, only in 2-d, twice the size
    # reads each pixel twice), whatever the scale factor would say
    if n_out == n_in and (mode != "nearest" or ndim == 4) or (mode == "nearest" and ndim == 4 and n_out == 2 * n_in):
        i0 = j if n_out == n_in else j // 2
        return i0, i0, np.ones(n_out, real), np.zeros(n_out, real)
    if align_corners:
        ratio = real(n_in - 1) / real(n_out - 1) if n_out > 1 else real(0)
    else:  # the scale factor as given, or the ratio of the sizes
        ratio = real(1.0 / scale) if scale else real(n_in) / real(n_out)
    if mode == "nearest":
        i0 = np.minimum(np.floor(j.astype(real) * ratio).astype(np.int64), n_in - 1)
        return i0, i0, np.ones(n_out, real), np.zeros(n_out, real)
    if align_corners:
        src = ratio * j.astype(real)
    else:
        src = np.maximum(ratio * (j.astype(real) + real(0.5)) - real(0.5), real(0))
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    l1 = np.clip(src - i0.astype(real), real(0), real(1))
    i1 = np.where(i0 < n_in - 1, i0 + 1, i0)
    return i0, i1, real(1) - l1, l1


def _interpolation_matrix(n_in, n_out, mode, align_corners, scale, dtype, ndim):
    """A (n_out, n_in): row j holds output j's weights on the input pixels it reads."""
    i0, i1, l0, l1 = _sampling(n_in, n_out, mode, align_corners, scale, dtype, ndim)
    matrix = np.zeros((n_out, n_in), dtype=l0.dtype)
    rows = np.arange(n_out)
    matrix[rows, i0] += l0
    matrix[rows, i1] += l1
    return _ops.shape_constant(matrix)  # (from the sizes alone: a compiled step may keep it)


def _along(axis, ndim, values):
    """A 1-d array shaped to broadcast along `axis` of an ndim array."""
    return values.reshape((-1,) + (1,) * (ndim - 1 - axis))


def _interpolate_data(x, mode, sizes, scales, align_corners):
    y = x
    for axis in reversed(range(2, x.ndim)):  # the last axis first: PyTorch's order of the sums
        k = axis - 2
        i0, i1, l0, l1 = _sampling(x.shape[axis], sizes[k], mode, align_corners, scales[k], x.dtype, x.ndim)
        if mode == "nearest":
            y = np.take(y, i0, axis=axis)
        else:
            y = np.take(y, i0, axis=axis) * _along(axis, x.ndim, l0) + np.take(y, i1, axis=axis) * _along(axis, x.ndim, l1)
    return y


# y = A_h @ x @ A_w^T (each A: one 1 per row for nearest, two weights for linear):
#   dL/dx = A_h^T @ dL/dy @ A_w
def _interpolate_d_x(g, x, out, mode, sizes, scales, align_corners):
    for axis in range(2, x.ndim):  # undo the axes in the reverse order of the forward pass
        k = axis - 2
        a = _interpolation_matrix(x.shape[axis], sizes[k], mode, align_corners, scales[k], x.dtype, x.ndim)
        g = F.matmul(g, a) if axis == x.ndim - 1 else F.matmul(a.T, g)
    return g


def _torch_mode(mode, ndim):
    return {"linear": "linear" if ndim == 3 else "bilinear", "bilinear": "bilinear"}.get(mode, mode)


def _interpolate_torch(t, x, mode, sizes, scales, align_corners):
    how = f"scale_factor={t.const(tuple(scales))}" if scales[0] else f"size={t.const(tuple(sizes))}"
    corners = "" if mode == "nearest" else f", align_corners={align_corners}"
    return f"F.interpolate({x}, {how}, mode={t.const(mode)}{corners})"


def _interpolate_onnx(g, x, mode, sizes, scales, align_corners):
    shape = g.shapes[0]
    ndim = len(shape)
    for axis in reversed(range(2, ndim)):  # the forward pass's own reads and weights, as constants
        k = axis - 2
        i0, i1, l0, l1 = _sampling(shape[axis], sizes[k], mode, align_corners, scales[k], g.dtype, ndim)
        first = g.op("Gather", x, g.ints(i0, "rows"), axis=axis)
        if mode == "nearest":
            x = first
            continue
        second = g.op("Gather", x, g.ints(i1, "rows"), axis=axis)
        x = g.op("Add", g.op("Mul", first, g.const(_along(axis, ndim, l0).astype(g.float_type), "weights")),
                 g.op("Mul", second, g.const(_along(axis, ndim, l1).astype(g.float_type), "weights")))
    return x


INTERPOLATE = Op(
    "interpolate", _interpolate_data, inputs="x",
    code="x read at each output's source pixels along each axis (linear: two, weighted)",
    as_torch=_interpolate_torch, as_onnx=_interpolate_onnx,
    d_x=_interpolate_d_x, formula="Y = A_h @ X @ A_w^T: dL/dX = A_h^T @ dL/dY @ A_w",
)


def _scale_factors(scale_factor, n, name):
    """scale_factor as n positive finite floats."""
    values = (scale_factor,) * n if isinstance(scale_factor, (int, float, np.integer, np.floating)) else scale_factor
    try:
        values = tuple(values)
        ok = len(values) == n and all(
            isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
            and math.isfinite(v) and v > 0 for v in values)
    except TypeError:
        ok = False
    if not ok:
        raise ValueError(f"{name}: scale_factor must be a positive number or {n} of them, got {_shown(scale_factor)}")
    return tuple(float(v) for v in values)


@INTERPOLATE.public
def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None):
    """Resize ``input`` (N, C, L) or (N, C, H, W) to ``size``, or by
    ``scale_factor`` (output size ``floor(in * scale_factor)``), as PyTorch's
    ``F.interpolate``: ``mode`` "nearest" (input pixel ``floor(j * in / out)``),
    "linear" (for (N, C, L)) or "bilinear" (for (N, C, H, W)), with
    ``align_corners`` for the linear modes (True: the corner pixels of input
    and output are aligned). A scale factor, unless ``recompute_scale_factor``,
    sets the spacing itself (``1 / scale_factor``), as in PyTorch.

    >>> x = Value(np.array([[[0.0, 10.0]]]))
    >>> interpolate(x, size=4, mode="linear").data.tolist()
    [[[0.0, 2.5, 7.5, 10.0]]]
    >>> interpolate(x, size=4, mode="linear", align_corners=True).data.round(4).tolist()
    [[[0.0, 3.3333, 6.6667, 10.0]]]
    """
    name = "interpolate"
    x = as_value(input)
    if mode not in _MODES:
        raise ValueError(f"{name}: mode must be 'nearest', 'linear' or 'bilinear', got {mode!r}")
    if x.ndim not in _MODES[mode]:
        layout = {3: "(N, C, L)", 4: "(N, C, H, W)"}
        wanted = " or ".join(layout[n] for n in _MODES[mode])
        raise ShapeError(f"{name}: mode {mode!r} takes an input of shape {wanted}, got {x.shape}")
    if mode == "nearest" and align_corners is not None:
        raise ValueError(f"{name}: align_corners only applies to the linear modes, not to 'nearest' (as in PyTorch)")
    align_corners = bool(align_corners)
    nd = x.ndim - 2
    if (size is None) == (scale_factor is None):
        raise ValueError(f"{name}: give either size or scale_factor (exactly one of them)")
    if size is not None:
        sizes = _ints(size, nd, name, "size", 1)
        scales = (None,) * nd
    else:
        scales = _scale_factors(scale_factor, nd, name)
        sizes = tuple(math.floor(n * s) for n, s in zip(x.shape[2:], scales))
        if any(s < 1 for s in sizes):
            raise ShapeError(f"{name}: scale_factor {scale_factor!r} makes the input {x.shape} an output of size "
                             f"{sizes}, which is empty; use a larger scale factor")
        if recompute_scale_factor:  # the spacing from the sizes, not from the factor
            scales = (None,) * nd
    if min(x.shape[2:]) < 1:
        raise ShapeError(f"{name}: the input {x.shape} has an empty spatial axis")
    # the output, an intermediate array as large, and for the gradient one matrix (out, in) per axis
    n, c = x.shape[:2]
    arrays = {"output": (n, c) + sizes, "intermediate": (n, c) + sizes[:-1] + x.shape[-1:]}
    arrays.update({f"matrix of axis {2 + k}": (out, inp) for k, (out, inp) in enumerate(zip(sizes, x.shape[2:]))})
    _check_workspace(name, f"resizing the input {x.shape} to {sizes}", arrays, x.dtype.itemsize,
                     "use a smaller size or scale factor, or a smaller batch")
    return INTERPOLATE.apply(x, mode=mode, sizes=sizes, scales=scales, align_corners=align_corners)


# ==========================================================================
# Max pooling's indices, and max unpooling
# ==========================================================================
def _pool_indices_data(x, out, geo):
    """PyTorch's index of each window's maximum: the flat position (row * W + column)
    in its input plane of the element max pooling picked, for the same windows as
    its gradient (the first maximum, or the last NaN). Returns int64 (N, C, oh, ow)."""
    width = geo.in_sizes[1]
    indices = np.zeros(out.shape[:1] + out.shape[2:] + out.shape[1:2], dtype=np.int64)  # channels last
    starts = [np.arange(count) * s - lo for count, s, (lo, _) in zip(geo.out_sizes, geo.stride, geo.pads)]
    for (offset, _), (hit, _) in zip(geo.tap_slices, _first_winners(x, out, geo)):
        rows = starts[0] + offset[0] * geo.dilation[0]
        cols = starts[1] + offset[1] * geo.dilation[1]
        flat = rows[:, None] * width + cols[None, :]  # (oh, ow): this tap's position in every window
        indices += hit * flat[None, :, :, None]
    return _channels_first(indices)


def max_pool2d_indices(x, out, geo, unbatched):
    """The indices for ``max_pool2d(..., return_indices=True)``, made from the
    data of `x` and of the pooled `out` (4-d Values) through
    ``ops.derived_data``, so that a compiled step makes them again at every
    call and an export, which cannot, says so instead of keeping the example's."""

    def indices_of(x_data, out_data):
        indices = _pool_indices_data(x_data, out_data, geo)
        return indices[0] if unbatched else indices

    return _ops.derived_data(indices_of, x, out, name="indices")


def _unpool_data(x, indices, out_sizes, kernel, stride, padding):
    n, c = x.shape[:2]
    out = np.zeros((n, c, math.prod(out_sizes)), dtype=x.dtype)
    np.put_along_axis(out, indices.reshape(n, c, -1), x.reshape(n, c, -1), axis=2)  # a repeated index: the last
    return out.reshape((n, c) + tuple(out_sizes))


# y = zeros with y.flat[index] = x, per plane:  dL/dx = dL/dy read at the indices (PyTorch's rule)
def _unpool_d_x(g, x, out, indices, out_sizes, kernel, stride, padding):
    n, c = x.shape[:2]
    planes = (np.arange(n)[:, None, None], np.arange(c)[None, :, None], indices.reshape(n, c, -1))
    return g.reshape(n, c, -1)[planes].reshape(x.shape)


def _unpool_torch(t, x, indices, out_sizes, kernel, stride, padding):
    index = t.const(indices, "indices") + (".unsqueeze(0)" if indices.ndim == 3 else "")  # (one image)
    return (f"F.max_unpool2d({x}, {index}, {t.const(kernel)}, stride={t.const(stride)}, "
            f"padding={t.const(padding)}, output_size={t.const(tuple(out_sizes))})")


def _unpool_onnx(g, x, indices, out_sizes, kernel, stride, padding):
    # zeros with each value scattered to its index, plane by plane (ONNX's MaxUnpool counts the
    # places over the whole tensor and, in ONNX Runtime, takes no output smaller than the default)
    n, c = g.shapes[0][:2]
    index = g.op("Reshape", g.const(indices, "indices"), g.ints([n, c, -1]))
    zeros = g.op("Expand", g.const(0.0), g.ints([n, c, math.prod(out_sizes)]))
    flat = g.op("ScatterElements", zeros, index, g.op("Reshape", x, g.ints([n, c, -1])), axis=2)
    return g.op("Reshape", flat, g.ints([n, c] + list(out_sizes)))


MAX_UNPOOL2D = Op(
    "max_unpool2d", _unpool_data, inputs="x",
    code="zeros(N, C, H' * W'), x put at the indices of each plane, reshaped  # (N, C, H', W')",
    as_torch=_unpool_torch, as_onnx=_unpool_onnx,
    d_x=_unpool_d_x, formula="dL/dx = dL/dy read at the indices",
)


def _indices_in_plane(values, name, sizes):
    plane = math.prod(sizes)
    if values.size and (values.min() < 0 or values.max() >= plane):
        bad = values.min() if values.min() < 0 else values.max()
        raise ValueError(f"{name}: the index {int(bad)} is outside an output plane of {sizes[0]} x {sizes[1]} = "
                         f"{plane} places (indices count row * {sizes[1]} + column from 0)")


@MAX_UNPOOL2D.public
def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Undo ``max_pool2d(..., return_indices=True)``: an output of zeros,
    (N, C, H', W'), with each value of ``input`` (N, C, H, W) put at the place
    its index names in its plane (``row * W' + column``). ``H' = (H - 1) *
    stride - 2 * padding + kernel_size`` unless ``output_size`` says otherwise
    (within a stride of it, as PyTorch requires). A repeated index keeps the
    last value; each value's gradient is read at its index (PyTorch's rules).

    >>> from autograd_core import max_pool2d
    >>> x = Value(np.array([[[[1.0, 5.0], [3.0, 2.0]]]]))
    >>> y, idx = max_pool2d(x, 2, return_indices=True); idx.tolist()
    [[[[1]]]]
    >>> max_unpool2d(y, idx, 2).data.tolist()
    [[[[0.0, 5.0], [0.0, 0.0]]]]
    """
    name = "max_unpool2d"
    x = as_value(input)
    if x.ndim not in (3, 4):
        raise ShapeError(f"{name}: expects input of shape (N, C, H, W) or (C, H, W), got {x.shape}")
    index_array = np.asanyarray(indices)  # (an argument of a traced call stays itself: compile and export follow it)
    if index_array.dtype.kind not in "iu":
        raise TypeError(f"{name}: indices must be an integer array (as max_pool2d(..., return_indices=True) gives), "
                        f"got dtype {index_array.dtype}")
    if index_array.shape != x.shape:
        raise ShapeError(f"{name}: indices must have the input's shape {x.shape}, got {index_array.shape}")
    kernel = _ints(kernel_size, 2, name, "kernel_size", 1)
    strides = kernel if stride is None else _ints(stride, 2, name, "stride", 1)
    pads = _ints(padding, 2, name, "padding", 0)
    default = tuple((n - 1) * s - 2 * p + k for n, s, p, k in zip(x.shape[-2:], strides, pads, kernel))
    if output_size is None:
        sizes = default
    else:
        given = tuple(output_size)
        if len(given) == x.ndim:  # PyTorch also takes the whole shape
            given = given[-2:]
        sizes = _ints(given, 2, name, "output_size", 0)
        for k, (size, d, s) in enumerate(zip(sizes, default, strides)):
            if not d - s < size < d + s:
                raise ValueError(f"{name}: output_size {tuple(output_size)} must lie strictly between "
                                 f"{d - s} and {d + s} along axis {k} (the default size {d}, give or take the stride)")
    if any(s < 1 for s in sizes):
        raise ShapeError(f"{name}: the input {x.shape} with kernel {kernel}, stride {strides} and padding {pads} gives "
                         f"an empty output {sizes}; use less padding")
    _ops.data_check(functools.partial(_indices_in_plane, name=name, sizes=sizes), index_array)
    _check_workspace(name, f"an output of size {sizes} for the input {x.shape}",
                     {"output": x.shape[:-2] + sizes}, x.dtype.itemsize, "use a smaller output_size or batch")
    unbatched = x.ndim == 3
    if unbatched:  # (the indices keep their shape: the op reads them plane by plane)
        x = x.reshape((1,) + x.shape)
    out = MAX_UNPOOL2D.apply(x, indices=index_array if index_array.dtype == np.int64 else index_array.astype(np.int64), out_sizes=sizes,
                             kernel=kernel, stride=strides, padding=pads)
    return out.reshape(out.shape[1:]) if unbatched else out
