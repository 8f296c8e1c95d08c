"""Convolution, pooling and padding: each one operation with its gradient beside it.

A convolution is a matrix product in disguise. ``im2col`` lays every window
of the (padded) input out as one row, so that

    Y = im2col(X) @ W^T          (rows: every output pixel; columns: C*kh*kw)

and the gradients are the two products of ``matmul`` plus a scatter back:

    dL/dW = im2col(X)^T @ dL/dY            (one BLAS product)
    dL/dX = col2im(dL/dY @ W)              (each window's gradient added back
                                            where the window came from)
    dL/db = dL/dY summed over batch and pixels

``im2col`` is a *strided view* (``numpy.lib.stride_tricks.as_strided``)
of the image kept channels-last: no Python loop over pixels, one copy when
the rows are made contiguous for the product. ``col2im`` loops over the
kh*kw kernel offsets only (9 for a 3x3 kernel), each a strided add over the
whole batch. They, and the geometry of the windows, are in
``conv_windows.py``; this module declares the operations.

Pooling uses the same windows: max pooling sends the gradient to the first
largest element of each window, or to its last NaN (PyTorch's rule), average pooling spreads it
evenly over the window. ``pad`` copies borders (constant, reflect, replicate,
circular) and sends the gradient of every copy back to where it came from.

Each operation is declared once in the engine's registry (``ops.Op``): its
NumPy forward, one gradient rule per input, the formula. The rules get NumPy
arrays in a first-order backward and Values with ``create_graph=True``; there
they are built from `unfold` and `fold` (each the other's gradient), so every
operation here can be differentiated again. A convolution keeps its im2col
rows for the backward pass when its weight needs a gradient (the op
``saves`` them): dL/dW is their product with dL/dY, and making them again
would cost a second copy of the windows. Everything else is recomputed from
the inputs and the output (the winner of each max-pooling window).

Names, arguments and defaults are PyTorch's (``torch.nn.functional``); shapes
are ``(N, C, H, W)`` for images and ``(N, C, L)`` for sequences.

>>> import numpy as np
>>> from autograd_core import Value
>>> x = Value(np.arange(16.0).reshape(1, 1, 4, 4))
>>> w = Value(np.ones((1, 1, 2, 2)))                  # sums each 2x2 window
>>> y = conv2d(x, w, stride=2)
>>> y.data[0, 0].tolist()
[[10.0, 18.0], [42.0, 50.0]]
>>> y.sum().backward(); w.grad[0, 0].tolist()          # dL/dW = im2col(X)^T @ dL/dY: each tap sums its pixels
[[20.0, 24.0], [36.0, 40.0]]
"""

from __future__ import annotations

import math
import os

import numpy as np

from .conv_windows import (
    _border,
    _channels_first,
    _channels_last,
    _geometry,
    _ints,
    _onnx_window,
    _Shape,
    _symmetric,
    _taps_of_rows,
    _torch_window,
    _window_args,
    col2im,
    im2col,
    window_view,
)
from .engine import Value, as_value
from .errors import ShapeError
from .ops import F, Op, shape_constant

__all__ = [
    "conv1d", "conv2d", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "pad", "unfold", "fold",
    "im2col", "col2im", "window_view",
]


# ==========================================================================
# Sizes too large to compute are refused before anything is allocated; the
# checked geometry of a layer's calls is kept
# ==========================================================================
# A layer calls its operation with the same shapes and arguments batch after
# batch: the checked geometry is kept, keyed by them (bounded; arguments that
# cannot be dict keys, such as lists, are worked out every time).
_GEOMETRY_CACHE = {}


def _argument_key(*arguments):
    """Window arguments as part of a cache key that tells True from 1: they are
    equal with equal hashes, so stride=True would find stride=1's geometry
    and skip the check that refuses a bool."""
    return tuple((a, type(a), tuple(map(type, a)) if isinstance(a, (tuple, list)) else None) for a in arguments)


def _cached_geometry(key, make):
    try:
        geo = _GEOMETRY_CACHE.get(key)
    except TypeError:
        return make()
    if geo is None:
        geo = make()  # raises on bad arguments: only valid ones are kept
        if len(_GEOMETRY_CACHE) >= 256:
            _GEOMETRY_CACHE.clear()
        _GEOMETRY_CACHE[key] = geo
    return geo


def _physical_memory():
    """This machine's memory in bytes, or 16 GiB where the system does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # (Windows has no sysconf)
        return 16 << 30


# The most the arrays of one convolution, pooling or padding may take: sizes
# past it (padding=10**9, a huge batch) are refused before anything is
# allocated, with the op and the shapes named, instead of NumPy's "array is
# too big" or a machine brought to a halt. Raise it for a larger machine.
MAX_WORKSPACE_BYTES = _physical_memory()


def _size_text(n):
    """Bytes for people: '298.0 GiB'."""
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if n < 1024 or unit == "EiB":
            return f"{n:,} bytes" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024


def _check_workspace(op, setting, arrays, itemsize, advice):
    """Refuse with a MemoryError naming `op` when the arrays it is about to make
    ({what: shape}, of `itemsize` bytes an element) exceed MAX_WORKSPACE_BYTES."""
    sizes = {what: math.prod(shape) * itemsize for what, shape in arrays.items()}
    total = sum(sizes.values())
    if total > MAX_WORKSPACE_BYTES:
        listed = ", ".join(f"{what} {shape}: {_size_text(sizes[what])}" for what, shape in arrays.items())
        raise MemoryError(
            f"{op}: {setting} needs {_size_text(total)} for its arrays ({listed}), more than the "
            f"{_size_text(MAX_WORKSPACE_BYTES)} allowed (autograd_core.conv.MAX_WORKSPACE_BYTES, by default this "
            f"machine's memory); {advice}"
        )


def _padding_text(pads):
    """((1, 1), (2, 3)) -> '(1, (2, 3))': each axis's padding as an int when both sides are alike."""
    return str(tuple(lo if lo == hi else (lo, hi) for lo, hi in pads))


def _window_budget(op, shape, itemsize, out_channels=None, rows=False):
    """The budget of `_geometry` for an (N, C, *spatial) input of `itemsize`
    bytes an element: its padded copy, the im2col rows (with `rows`: a
    convolution's, or unfold's output) and the output."""
    n, c = shape[:2]

    def budget(kernel, pads, out_sizes, padded_sizes):
        arrays = {}
        if padded_sizes != tuple(shape[2:]):
            arrays["padded copy"] = (n, c) + padded_sizes
        if rows:
            arrays["im2col rows"] = (n * math.prod(out_sizes), math.prod(kernel) * c)
        if out_channels is not None or not rows:
            arrays["output"] = (n, c if out_channels is None else out_channels) + out_sizes
        _check_workspace(op, f"input {tuple(shape)} with kernel {kernel} and padding {_padding_text(pads)}", arrays,
                         itemsize, "use less padding, a smaller input or a smaller batch")

    return budget


# ==========================================================================
# unfold and fold: im2col and col2im as operations (PyTorch's layout)
# ==========================================================================
# unfold: (N, C, *spatial) -> (N, C*taps, L), L = number of windows; fold: back
def _unfold_data(x, geo):
    """(N, C, *spatial) -> (N, C * taps, L), channel-major (PyTorch's layout)."""
    n, c = x.shape[:2]
    nd = len(geo.kernel)
    view = window_view(x, geo)  # (N, *out, *k, C)
    order = (0, 1 + 2 * nd) + tuple(range(1 + nd, 1 + 2 * nd)) + tuple(range(1, 1 + nd))
    return view.transpose(order).reshape(n, c * math.prod(geo.kernel), math.prod(geo.out_sizes))


def _fold_data(cols, geo):
    n, c = cols.shape[0], cols.shape[1] // math.prod(geo.kernel)
    nd = len(geo.kernel)
    taps = cols.reshape((n, c) + geo.kernel + geo.out_sizes)  # -> (N, *out, *k, C) as a view
    order = (0,) + tuple(range(2 + nd, 2 + 2 * nd)) + tuple(range(2, 2 + nd)) + (1,)
    return col2im(taps.transpose(order), geo)


# unfold copies each pixel into every window that covers it, so its gradient
# adds the copies back (col2im); fold is exactly that adjoint, and its
# gradient is unfold again.
UNFOLD = Op(
    "unfold", _unfold_data, inputs="x", code="im2col(x, geo)  # (N, C*kh*kw, L)",
    as_torch=lambda t, x, geo: f"F.unfold({x}, {_torch_window(t, geo)})",
    d_x=lambda g, x, out, geo: _fold_any(g, geo),
    formula="dL/dX = col2im(dL/dY) (each window's gradient added back where it came from)",
)
FOLD = Op(
    "fold", _fold_data, inputs="cols", code="col2im(cols, geo)  # (N, C, H, W)",
    as_torch=lambda t, cols, geo: f"F.fold({cols}, {t.const(geo.in_sizes)}, {_torch_window(t, geo)})",
    d_cols=lambda g, cols, out, geo: _unfold_any(g, geo),
    formula="dL/dcols = im2col(dL/dY)",
)


def _unfold_any(x, geo):
    """unfold of an array or (create_graph) of a Value."""
    return UNFOLD.apply(x, geo=geo) if isinstance(x, Value) else _unfold_data(x, geo)


def _fold_any(cols, geo):
    return FOLD.apply(cols, geo=geo) if isinstance(cols, Value) else _fold_data(cols, geo)


@UNFOLD.public
def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    """im2col as an operation (``torch.nn.functional.unfold``): the sliding
    windows of ``input`` (N, C, H, W) as columns, shape (N, C*kh*kw, L) with L
    windows, channel-major then kernel taps. A convolution is then
    ``W.reshape(O, -1) @ unfold(x)``: this is for seeing that; `conv2d` does it
    in one node.

    >>> x = Value(np.arange(16.0).reshape(1, 1, 4, 4))
    >>> cols = unfold(x, 2, stride=2)
    >>> cols.shape, cols.data[0, :, 0].tolist()        # 4 taps x 4 windows; the first window
    ((1, 4, 4), [0.0, 1.0, 4.0, 5.0])
    >>> cols.sum().backward(); x.grad[0, 0, 0].tolist()   # every pixel is in one window
    [1.0, 1.0, 1.0, 1.0]
    """
    x = as_value(input)
    budget = _window_budget("unfold", x.shape, x.dtype.itemsize, rows=True) if x.ndim == 4 else None
    geo = _window_args("unfold", x, 4, kernel_size, stride, padding, dilation, budget=budget)
    return UNFOLD.apply(x, geo=geo)


@FOLD.public
def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """col2im as an operation (``torch.nn.functional.fold``): columns (N, C*kh*kw, L)
    added back onto an (N, C, *output_size) image, overlaps summed; the adjoint
    of `unfold`.

    >>> cols = Value(np.ones((1, 4, 9)))                 # 2x2 windows, stride 1, over a 4x4 image
    >>> fold(cols, (4, 4), 2).data[0, 0].tolist()       # how many windows cover each pixel
    [[1.0, 2.0, 2.0, 1.0], [2.0, 4.0, 4.0, 2.0], [2.0, 4.0, 4.0, 2.0], [1.0, 2.0, 2.0, 1.0]]
    """
    cols = as_value(input)
    size = _ints(output_size, 2, "fold", "output_size", 1)
    kernel = _ints(kernel_size, 2, "fold", "kernel_size", 1)
    if cols.ndim != 3 or cols.shape[1] % math.prod(kernel):
        raise ShapeError(
            f"fold: input must have shape (N, C * {kernel[0]} * {kernel[1]}, L), got {cols.shape}"
        )
    c = cols.shape[1] // math.prod(kernel)

    def budget(kernel, pads, out_sizes, padded_sizes):  # the image the columns are added onto
        _check_workspace("fold", f"output_size {size} with kernel {kernel} and padding {_padding_text(pads)}",
                         {"output": (cols.shape[0], c) + padded_sizes}, cols.dtype.itemsize,
                         "use a smaller output_size or less padding")

    geo = _window_args("fold", _Shape((cols.shape[0], c) + size), 4, kernel, stride, padding, dilation, budget=budget)
    if math.prod(geo.out_sizes) != cols.shape[2]:
        raise ShapeError(
            f"fold: an output of size {size} with kernel {kernel} has {math.prod(geo.out_sizes)} windows "
            f"{geo.out_sizes}, but the input {cols.shape} has L = {cols.shape[2]}"
        )
    return FOLD.apply(cols, geo=geo)


# ==========================================================================
# Convolution
# ==========================================================================
# The matrices of a convolution with `groups` groups of channels: each group is
# its own product (groups=1, the usual case: one product).
def _grouped_output(g, groups):
    """dL/dY (N, O, *out) as (groups, N * out pixels, O / groups) (a view when it can be)."""
    rows = _channels_last(g).reshape(-1, groups, g.shape[1] // groups)
    return rows.transpose(1, 0, 2)


def _grouped_rows(rows, groups, taps):
    """im2col rows (M, taps * C) as (groups, M, taps * C / groups)."""
    if groups == 1:
        return rows[None]
    m, per_group = rows.shape[0], rows.shape[1] // (taps * groups)  # (no -1: m is 0 for an empty batch)
    return rows.reshape(m, taps, groups, per_group).transpose(2, 0, 1, 3).reshape(groups, m, taps * per_group)


def _grouped_weight(weight, groups):
    """W (O, C/groups, *kernel) as (groups, O/groups, taps * C/groups), the taps
    in the order of the im2col rows (each tap's channels side by side)."""
    moved = weight.transpose((0,) + tuple(range(2, weight.ndim)) + (1,))
    return moved.reshape(groups, weight.shape[0] // groups, -1)


def _conv_data(x, weight, bias=None, *, geo, groups):
    """Y = im2col(X) @ W^T + b: (N, C, *spatial) -> (N, O, *out), channels last in
    memory; and the im2col rows, saved for dL/dW."""
    dtype = np.result_type(x, weight)
    rows = im2col(x.astype(dtype, copy=False), geo)  # (M, taps * C): the one copy of the windows
    w_rows = _grouped_weight(weight, groups)
    if groups == 1:
        y = rows @ w_rows[0].T  # one BLAS product: (M, taps*C) @ (taps*C, O)
    else:
        y = np.matmul(_grouped_rows(rows, groups, math.prod(geo.kernel)), w_rows.transpose(0, 2, 1))
        y = y.transpose(1, 0, 2).reshape(rows.shape[0], weight.shape[0])
    if bias is not None:
        y += bias  # into the fresh product
    # (M, O) -> (N, O, *out): a transposed view, channels last in memory (no copy)
    return _channels_first(y.reshape((x.shape[0],) + geo.out_sizes + (weight.shape[0],))), rows


# Y = im2col(X) @ W^T + b, per group of channels (groups=1: one product):
#   dL/dX = col2im(dL/dY @ W)           each window's gradient, added back where it came from
#   dL/dW = dL/dY^T @ im2col(X)         in W's layout (im2col(X)^T @ dL/dY, transposed)
#   dL/db = dL/dY summed over the batch and every output pixel
def _grad_rows_of(g, groups):
    """dL/dY (N, O, *out) of a Value (create_graph) as (groups, M, O/groups)."""
    rows = g.transpose((0,) + tuple(range(2, g.ndim)) + (1,)).reshape(-1, groups, g.shape[1] // groups)
    return rows.transpose(1, 0, 2)


def _conv_d_x(g, x, weight, *bias_and_out, geo, groups, rows=None):
    n, c = x.shape[:2]
    taps = math.prod(geo.kernel)
    if isinstance(g, Value):  # create_graph: through fold, to differentiate again
        w_rows = weight.reshape(groups, weight.shape[0] // groups, -1)  # channel-major, as unfold
        grad_windows = F.matmul(_grad_rows_of(g, groups), w_rows).transpose(1, 0, 2)  # (M, groups, C/groups * taps)
        return _fold_any(grad_windows.reshape(n, math.prod(geo.out_sizes), c * taps).transpose(0, 2, 1), geo)
    grad_windows = np.matmul(_grouped_output(g, groups), _grouped_weight(weight, groups))  # (groups, M, taps*C/groups)
    if groups == 1:
        grad_windows = grad_windows[0]
    else:
        m = grad_windows.shape[1]
        grad_windows = grad_windows.reshape(groups, m, taps, c // groups).transpose(1, 2, 0, 3).reshape(m, taps * c)
    return col2im(_taps_of_rows(grad_windows, n, c, geo), geo)


def _conv_d_weight(g, x, weight, *bias_and_out, geo, groups, rows=None):
    c = x.shape[1]
    taps = math.prod(geo.kernel)
    if isinstance(g, Value):  # create_graph: im2col as a node, to differentiate through it
        x_rows = _unfold_any(x, geo).transpose(0, 2, 1).reshape(-1, groups, c // groups * taps).transpose(1, 0, 2)
        return F.matmul(_grad_rows_of(g, groups).transpose(0, 2, 1), x_rows).reshape(weight.shape)
    if rows is None:  # not kept by the forward (the weight needed no gradient then)
        rows = im2col(x.astype(g.dtype, copy=False), geo)
    grad_w = np.matmul(_grouped_output(g, groups).transpose(0, 2, 1), _grouped_rows(rows, groups, taps))
    grad_w = grad_w.reshape((weight.shape[0],) + geo.kernel + (weight.shape[1],))
    return grad_w.transpose((0, weight.ndim - 1) + tuple(range(1, weight.ndim - 1)))


def _conv_d_bias(g, x, weight, bias, out, geo, groups, rows=None):
    return g.sum(axis=(0,) + tuple(range(2, g.ndim)))


def _conv_torch(t, x, weight, bias="None", *, geo, groups):
    nd = len(geo.kernel)
    if not _symmetric(geo):  # "same" padding of an even kernel: more after than before
        x = _border(t, x, geo)
    parts = [x, weight] + ([] if bias == "None" else [bias])
    window = _torch_window(t, geo, padding=_symmetric(geo), kernel=False)
    parts += ([window] if window else []) + ([f"groups={groups}"] if groups != 1 else [])
    return f"F.conv{nd}d({', '.join(parts)})"


def _conv_onnx(g, x, weight, bias=None, *, geo, groups):
    return g.op("Conv", x, weight, bias, dilations=list(geo.dilation), group=groups, **_onnx_window(geo))


_CONV_FORMULA = "dL/dX = col2im(dL/dY @ W), dL/dW = im2col(X)^T @ dL/dY, dL/db = sum(dL/dY)"
CONV2D = Op(
    "conv2d", _conv_data, inputs="x, weight, bias", saves={"rows": "weight"},
    as_torch=_conv_torch, as_onnx=_conv_onnx,
    code="im2col(x, geo) @ weight_rows.T + bias, and the rows  # (N, O, H', W')",
    d_x=_conv_d_x, d_weight=_conv_d_weight, d_bias=_conv_d_bias, formula=_CONV_FORMULA, output="Y",
)
CONV1D = Op(
    "conv1d", _conv_data, inputs="x, weight, bias", saves={"rows": "weight"},
    as_torch=_conv_torch, as_onnx=_conv_onnx,
    code="im2col(x, geo) @ weight_rows.T + bias, and the rows  # (N, O, L')",
    d_x=_conv_d_x, d_weight=_conv_d_weight, d_bias=_conv_d_bias, formula=_CONV_FORMULA, output="Y",
)


def _conv_padding(op, padding, kernel, dilation, stride, nd):
    """PyTorch's padding argument: an int, a tuple, "valid" (none) or "same"
    (the output keeps the input's size; stride 1 only; an odd total puts the
    extra row after)."""
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * nd
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(f"{op}: padding='same' is not supported for strided convolutions (stride={stride})")
            pads = []
            for k, d in zip(kernel, dilation):
                total = d * (k - 1)
                pads.append((total // 2, total - total // 2))
            return tuple(pads)
        raise ValueError(f"{op}: padding must be 'valid', 'same', an int or a tuple of ints, got {padding!r}")
    return tuple((p, p) for p in _ints(padding, nd, op, "padding", 0))


def _images_and_weight(name, nd, input, weight, groups, w_layout):
    """The input as a batch of images (one image without N becomes a batch of one)
    and the weight, both Values, with their ranks and `groups` checked: what a
    convolution and a transposed convolution check alike. Returns (x, w, unbatched)."""
    x, w = as_value(input), as_value(weight)
    layout = "(N, C, H, W)" if nd == 2 else "(N, C, L)"
    if w.ndim != nd + 2:
        raise ShapeError(f"{name}: weight must have shape {w_layout}, got {w.shape}")
    unbatched = x.ndim == nd + 1
    if unbatched:  # (C, H, W): one image, as PyTorch allows
        x = x.reshape((1,) + x.shape)
    if x.ndim != nd + 2:
        raise ShapeError(f"{name}: expects input of shape {layout} (or one image without N), got {x.shape}")
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"{name}: groups must be a positive int, got {groups!r}")
    return x, w, unbatched


def _conv(op, nd, input, weight, bias, stride, padding, dilation, groups):
    name = op.name
    w_layout = "(out_channels, in_channels / groups, kH, kW)" if nd == 2 else "(out_channels, in_channels / groups, kL)"
    x, w, unbatched = _images_and_weight(name, nd, input, weight, groups, w_layout)
    out_channels, in_per_group = w.shape[:2]
    if x.shape[1] % groups or out_channels % groups:
        raise ValueError(
            f"{name}: groups={groups} must divide both the input channels ({x.shape[1]}) and the output "
            f"channels ({out_channels}) (input {x.shape}, weight {w.shape})"
        )
    if x.shape[1] != in_per_group * groups:
        raise ShapeError(
            f"{name}: the input has {x.shape[1]} channels (shape {x.shape}) but the weight {w.shape} expects "
            f"{in_per_group * groups} (in_channels / groups = {in_per_group}, groups = {groups})"
        )
    kernel = w.shape[2:]

    def make():
        strides = _ints(stride, nd, name, "stride", 1)
        dilations = _ints(dilation, nd, name, "dilation", 1)
        pads = _conv_padding(name, padding, kernel, dilations, strides, nd)
        itemsize = np.result_type(x.dtype, w.dtype).itemsize
        return _geometry(name, x.shape[2:], kernel, strides, dilations, pads,
                         budget=_window_budget(name, x.shape, itemsize, out_channels=out_channels, rows=True))

    geo = _cached_geometry((name, x.shape, w.shape, x.dtype, w.dtype) + _argument_key(stride, padding, dilation), make)
    if bias is None:
        out = op.apply(x, w, geo=geo, groups=int(groups))
    else:
        b = as_value(bias, w)
        if b.shape != (out_channels,):
            raise ShapeError(f"{name}: bias must have shape ({out_channels},) for a weight of shape {w.shape}, got {b.shape}")
        out = op.apply(x, w, b, geo=geo, groups=int(groups))
    return out.reshape(out.shape[1:]) if unbatched else out


@CONV2D.public
def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-d convolution (cross-correlation, as in every deep-learning library) of
    ``input`` (N, C, H, W) with ``weight`` (O, C/groups, kH, kW), plus ``bias`` (O,).
    ``padding`` is an int, a pair, "valid" or "same"; ``groups`` splits the
    channels into independent convolutions. One node in the graph: im2col of
    the input, one matrix product, and its rule ``dL/dW = im2col(X)^T @ dL/dY``.

    >>> x = Value(np.arange(9.0).reshape(1, 1, 3, 3))
    >>> w = Value(np.array([[[[1.0, 0.0], [0.0, -1.0]]]]))      # top-left minus bottom-right
    >>> y = conv2d(x, w, Value([0.5]))
    >>> y.data[0, 0].tolist()
    [[-3.5, -3.5], [-3.5, -3.5]]
    >>> conv2d(x, w, padding="same").shape                     # the input's size kept
    (1, 1, 3, 3)
    """
    return _conv(CONV2D, 2, input, weight, bias, stride, padding, dilation, groups)


@CONV1D.public
def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-d convolution of ``input`` (N, C, L) with ``weight`` (O, C/groups, k),
    the same operation as `conv2d` along one axis.

    >>> x = Value([[[1.0, 2.0, 3.0, 4.0]]])
    >>> y = conv1d(x, Value([[[1.0, -1.0]]]))                  # differences of neighbours
    >>> y.data.tolist()
    [[[-1.0, -1.0, -1.0]]]
    """
    return _conv(CONV1D, 1, input, weight, bias, stride, padding, dilation, groups)


# ==========================================================================
# Pooling
# ==========================================================================
def _pool_args(op, x, kernel_size, stride, padding, dilation, ceil_mode):
    """The Windows of a pooling of `x` (N, C, H, W) or (C, H, W), its arguments checked."""
    if x.ndim not in (3, 4):
        raise ShapeError(f"{op}: expects input of shape (N, C, H, W) or (C, H, W), got {x.shape}")
    kernel = _ints(kernel_size, 2, op, "kernel_size", 1)
    stride = kernel if stride is None or stride == () or stride == [] else _ints(stride, 2, op, "stride", 1)
    dilation = _ints(dilation, 2, op, "dilation", 1)
    padding = _ints(padding, 2, op, "padding", 0)
    for p, k, d in zip(padding, kernel, dilation):
        if p > (d * (k - 1) + 1) // 2:
            raise ValueError(
                f"{op}: padding {padding} must be at most half the kernel size {kernel} (dilated: "
                f"{tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))})"
            )
    shape = x.shape if x.ndim == 4 else (1,) + x.shape
    return _geometry(op, shape[2:], kernel, stride, dilation, tuple((p, p) for p in padding), ceil_mode,
                     budget=_window_budget(op, shape, x.dtype.itemsize))


def _max_pool_data(x, geo):
    """The maximum tap by tap, over the whole batch at once (padding counts as -inf)."""
    view = window_view(x, geo, fill=-np.inf)  # (N, oh, ow, kh, kw, C)
    taps = iter(geo.tap_slices)
    best = view[(slice(None),) * 3 + next(taps)[0]].copy()
    for offset, _ in taps:
        np.maximum(best, view[(slice(None),) * 3 + offset], out=best)
    return _channels_first(best)


def _first_winners(x, out, geo):
    """Per window, a boolean mask per tap: the first tap (in row order) equal to
    the window's maximum, as PyTorch picks it; found again from x and y. A
    window holding NaN has the maximum NaN, which equals nothing: its winner is
    its last NaN (PyTorch's rule too)."""
    view = window_view(x, geo, fill=-np.inf)
    best = _channels_last(out)
    nan_winners = _last_nans(view, geo) if best.dtype.kind == "f" and np.isnan(best).any() else None
    free = None  # windows whose winner is still to be found
    for t, (offset, target) in enumerate(geo.tap_slices):
        hit = view[(slice(None),) * 3 + offset] == best
        if any(lo or hi for lo, hi in geo.pads):  # a window of -inf: its first element inside wins, not the padding
            hit &= _reads_inside(geo, offset)
        if free is None:
            free = ~hit
        else:
            hit &= free
            if t < len(geo.tap_slices) - 1:
                free &= ~hit
        if nan_winners is not None:
            hit |= nan_winners[t]  # (no tap equals a NaN maximum, so these windows had no hit)
        yield hit, target


def _reads_inside(geo, offset):
    """(oh, ow, 1): the windows in which the tap at `offset` reads the input, not its padding."""
    inside = []
    for count, s, (lo, _), o, d, n in zip(geo.out_sizes, geo.stride, geo.pads, offset, geo.dilation, geo.in_sizes):
        at = np.arange(count) * s - lo + o * d  # where the tap reads, window by window
        inside.append((0 <= at) & (at < n))
    return (inside[0][:, None] & inside[1][None, :])[:, :, None]


def _last_nans(view, geo):
    """Per tap, the windows whose last NaN (in row order) is under that tap."""
    lead = (slice(None),) * 3
    masks, seen = [None] * len(geo.tap_slices), None
    for t in reversed(range(len(geo.tap_slices))):
        is_nan = np.isnan(view[lead + geo.tap_slices[t][0]])
        masks[t] = is_nan if seen is None else is_nan & ~seen
        seen = is_nan if seen is None else seen | is_nan
    return masks


# y = max of each window:  dL/dx = dL/dy at the first largest element of its window (at its last
# NaN when it holds NaN, as PyTorch), 0 elsewhere
def _max_pool_d_x(g, x, out, geo):
    if isinstance(g, Value):  # create_graph: each window's gradient on its winner, through fold
        hits = np.stack([_channels_first(hit) for hit, _ in _first_winners(x._data, out._data, geo)], axis=2)
        n, c = g.shape[:2]
        spread = hits.astype(g.dtype) * g.reshape((n, c, 1) + g.shape[2:])  # (N, C, taps, oh, ow)
        return _fold_any(spread.reshape(n, c * hits.shape[2], math.prod(geo.out_sizes)), geo)
    g_last = _channels_last(g)
    shape = (g.shape[0],) + geo.padded_sizes + (g.shape[1],)
    if geo.tiles:  # every pixel in exactly one window: each tap writes its own pixels
        image = np.empty(shape, dtype=g.dtype)
        for hit, target in _first_winners(x, out, geo):
            np.multiply(g_last, hit, out=image[target])
        return _channels_first(image)
    image = np.zeros(shape, dtype=g.dtype)
    for hit, target in _first_winners(x, out, geo):
        image[target] += g_last * hit
    return _channels_first(image[geo.inner])


def _max_pool_torch(t, x, geo):
    if _symmetric(geo) and all(lo <= k // 2 for (lo, _), k in zip(geo.pads, geo.kernel)):  # PyTorch's limit
        return f"F.max_pool2d({x}, {_torch_window(t, geo, pool=True)})"
    padded = _border(t, x, geo, value="-float('inf')")  # ceil_mode's last windows run past the input
    return f"F.max_pool2d({padded}, {_torch_window(t, geo, padding=False, pool=True)})"


def _max_pool_onnx(g, x, geo):
    if all(lo < k and hi < k for (lo, hi), k in zip(geo.pads, geo.kernel)):  # ONNX Runtime's limit
        return g.op("MaxPool", x, dilations=list(geo.dilation), **_onnx_window(geo))
    pads = [0, 0] + [lo for lo, _ in geo.pads] + [0, 0] + [hi for _, hi in geo.pads]
    x = g.op("Pad", x, g.ints(pads), g.const(-math.inf))
    return g.op("MaxPool", x, dilations=list(geo.dilation), **_onnx_window(geo, pads=False))


MAX_POOL2D = Op(
    "max_pool2d", _max_pool_data, inputs="x", code="window_view(x, geo).max(axis=(kh, kw))",
    as_torch=_max_pool_torch, as_onnx=_max_pool_onnx,
    d_x=_max_pool_d_x, formula="dL/dx = dL/dy at each window's maximum, 0 elsewhere",
)


@MAX_POOL2D.public
def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """The largest value of each window of ``input`` (N, C, H, W), per channel;
    ``stride`` defaults to the kernel size. Padding counts as -inf. The
    gradient goes to the first maximum of each window, or to its last NaN
    when it holds NaN (as in PyTorch). ``return_indices=True`` returns
    ``(values, indices)``: where each maximum was, ``row * W + column`` in its
    plane (int64), for `max_unpool2d`.

    >>> x = Value(np.array([[[[1.0, 2.0, 5.0, 0.0], [3.0, 4.0, 1.0, 1.0]]]]))
    >>> y = max_pool2d(x, 2)
    >>> y.data.tolist()
    [[[[4.0, 5.0]]]]
    >>> y.sum().backward(); x.grad[0, 0].tolist()
    [[0.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 0.0]]
    """
    x = as_value(input)
    geo = _cached_geometry(
        ("max_pool2d", x.shape, x.dtype) + _argument_key(kernel_size, stride, padding, dilation, ceil_mode),
        lambda: _pool_args("max_pool2d", x, kernel_size, stride, padding, dilation, ceil_mode),
    )
    unbatched = x.ndim == 3
    if unbatched:
        x = x.reshape((1,) + x.shape)
    out = MAX_POOL2D.apply(x, geo=geo)
    if return_indices:  # (values, PyTorch's flat index of each maximum in its plane): for max_unpool2d
        from .resample import max_pool2d_indices  # (declared with max_unpool2d, which reads them)

        indices = max_pool2d_indices(x, out, geo, unbatched)
        return (out.reshape(out.shape[1:]) if unbatched else out), indices
    return out.reshape(out.shape[1:]) if unbatched else out


# y = mean of each window:  dL/dx = dL/dy / divisor, spread evenly over the window
def _avg_pool_data(x, geo, divisor):
    return _channels_first(window_view(x, geo).sum(axis=(3, 4))) / divisor


def _avg_pool_d_x(g, x, out, geo, divisor):
    scaled = g / divisor  # (N, C, oh, ow)
    if isinstance(g, Value):
        n, c = g.shape[:2]
        taps = math.prod(geo.kernel)
        spread = scaled.reshape((n, c, 1) + geo.out_sizes).broadcast_to((n, c, taps) + geo.out_sizes)
        return _fold_any(spread.reshape(n, c * taps, math.prod(geo.out_sizes)), geo)
    share = _channels_last(scaled)
    taps_view = np.broadcast_to(share[:, :, :, None, None, :], share.shape[:3] + geo.kernel + share.shape[3:])
    return col2im(taps_view, geo, dtype=g.dtype)


def _avg_pool_torch(t, x, geo, divisor):
    window = math.prod(geo.kernel)
    even = np.all(np.asarray(divisor) == window)
    if even and _symmetric(geo):  # PyTorch's own mean of each window, padding counted
        return f"F.avg_pool2d({x}, {_torch_window(t, geo, pool=True)})"
    padded = x if all(lo == hi == 0 for lo, hi in geo.pads) else _border(t, x, geo)
    sums = f"F.avg_pool2d({padded}, {_torch_window(t, geo, padding=False, pool=True)}, divisor_override=1)"
    return f"{sums} / {t.const(divisor, 'divisor')}"


def _avg_pool_onnx(g, x, geo, divisor):
    if any(lo or hi for lo, hi in geo.pads):
        pads = [0, 0] + [lo for lo, _ in geo.pads] + [0, 0] + [hi for _, hi in geo.pads]
        x = g.op("Pad", x, g.ints(pads))
    mean = g.op("AveragePool", x, **_onnx_window(geo, pads=False))
    window = math.prod(geo.kernel)
    if np.all(np.asarray(divisor) == window):
        return mean
    return g.op("Mul", mean, g.const(window / np.asarray(divisor, dtype=np.float64)))


AVG_POOL2D = Op(
    "avg_pool2d", _avg_pool_data, inputs="x", code="window_view(x, geo).sum(axis=(kh, kw)) / divisor",
    as_torch=_avg_pool_torch, as_onnx=_avg_pool_onnx,
    d_x=_avg_pool_d_x, formula="dL/dx = dL/dy / (window size), spread over the window",
)


def _avg_divisor(geo, count_include_pad, dtype):
    """PyTorch's divisor per output pixel: the window clipped to the padded input
    (count_include_pad) or to the input itself; an outer product over axes."""
    divisor = np.ones((), dtype=np.int64)
    for n, k, s, (lo, _), count in zip(geo.in_sizes, geo.kernel, geo.stride, geo.pads, geo.out_sizes):
        start = np.arange(count) * s - lo
        end = np.minimum(start + k, n + lo)
        if not count_include_pad:
            start, end = np.maximum(start, 0), np.minimum(end, n)
        divisor = np.multiply.outer(divisor, end - start)
    return shape_constant(divisor.astype(dtype))


@AVG_POOL2D.public
def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """The mean of each window of ``input`` (N, C, H, W), per channel; ``stride``
    defaults to the kernel size. Zero padding counts in the mean unless
    ``count_include_pad=False``; windows that ``ceil_mode`` lets run past the
    padding are averaged over their part inside (PyTorch's rule).

    >>> x = Value(np.array([[[[1.0, 2.0, 5.0, 0.0], [3.0, 4.0, 1.0, 1.0]]]]))
    >>> avg_pool2d(x, 2).data.tolist()
    [[[[2.5, 1.75]]]]
    """
    x = as_value(input)
    geo = _cached_geometry(
        ("avg_pool2d", x.shape, x.dtype) + _argument_key(kernel_size, stride, padding, ceil_mode),
        lambda: _pool_args("avg_pool2d", x, kernel_size, stride, padding, 1, ceil_mode),
    )
    unbatched = x.ndim == 3
    if unbatched:
        x = x.reshape((1,) + x.shape)
    if divisor_override is not None:
        if isinstance(divisor_override, bool) or not isinstance(divisor_override, (int, np.integer)) or divisor_override < 1:
            raise ValueError(f"avg_pool2d: divisor_override must be a positive int, got {divisor_override!r}")
        divisor = x.dtype.type(divisor_override)
    else:
        divisor = _avg_divisor(geo, count_include_pad, x.dtype)
    out = AVG_POOL2D.apply(x, geo=geo, divisor=divisor)
    return out.reshape(out.shape[1:]) if unbatched else out


# y = A_h @ x @ A_w^T, A's rows averaging each output's span of rows (columns):
#   dL/dx = A_h^T @ dL/dy @ A_w
ADAPTIVE_AVG_POOL2D = Op(
    "adaptive_avg_pool2d", lambda x, rows, cols: rows @ x @ cols.T, inputs="x", code="rows @ x @ cols.T",
    as_torch=lambda t, x, rows, cols: f"F.adaptive_avg_pool2d({x}, {t.const((len(rows), len(cols)))})",
    as_onnx=lambda g, x, rows, cols: g.op("MatMul", g.op("MatMul", g.const(rows), x), g.const(cols.T.copy())),
    d_x=lambda g, x, out, rows, cols: F.matmul(F.matmul(rows.T, g), cols),
    formula="dL/dx = A_h^T @ dL/dy @ A_w (spread evenly over each output's span)",
)


def _averaging_matrix(n_in, n_out, dtype):
    """(n_out, n_in): row i averages inputs floor(i n_in / n_out) .. ceil((i+1) n_in / n_out) - 1."""
    matrix = np.zeros((n_out, n_in), dtype=dtype)
    for i in range(n_out):  # one row per output size (a loop over outputs, not pixels)
        start, end = (i * n_in) // n_out, -((-(i + 1) * n_in) // n_out)
        matrix[i, start:end] = 1 / (end - start)
    return shape_constant(matrix)


@ADAPTIVE_AVG_POOL2D.public
def adaptive_avg_pool2d(input, output_size):
    """Average pooling to a fixed output size (``output_size`` an int, a pair,
    None in a pair keeps that axis): output (i, j) is the mean of rows
    floor(i H / oh) .. ceil((i+1) H / oh) - 1 and the same for columns.
    ``output_size=1`` is global average pooling.

    >>> x = Value(np.arange(8.0).reshape(1, 2, 2, 2))
    >>> adaptive_avg_pool2d(x, 1).data.ravel().tolist()       # each channel's mean
    [1.5, 5.5]
    """
    x = as_value(input)
    if x.ndim not in (3, 4):
        raise ShapeError(f"adaptive_avg_pool2d: expects input of shape (N, C, H, W) or (C, H, W), got {x.shape}")
    sizes = (output_size, output_size) if output_size is None or isinstance(output_size, (int, np.integer)) else tuple(output_size)
    if len(sizes) != 2:
        raise ValueError(f"adaptive_avg_pool2d: output_size must be an int or a pair, got {output_size!r}")
    sizes = tuple(x.shape[-2 + k] if s is None else s for k, s in enumerate(sizes))
    sizes = _ints(sizes, 2, "adaptive_avg_pool2d", "output_size", 1)
    if min(x.shape[-2:]) < 1:
        raise ShapeError(f"adaptive_avg_pool2d: the input {x.shape} has an empty spatial axis")
    rows = _averaging_matrix(x.shape[-2], sizes[0], x.dtype)
    cols = _averaging_matrix(x.shape[-1], sizes[1], x.dtype)
    return ADAPTIVE_AVG_POOL2D.apply(x, rows=rows, cols=cols)


# ==========================================================================
# Padding
# ==========================================================================
# y = x with borders added. constant: the gradient is the inner part of dL/dy;
# reflect / replicate / circular: each border element is a copy of some x
# element, so its gradient is added to that element's (a scatter-add per axis).
_NUMPY_MODES = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def _pad_data(x, mode, widths, value):
    if mode == "constant":
        return np.pad(x, widths, mode="constant", constant_values=value)
    return np.pad(x, widths, mode=_NUMPY_MODES[mode])


def _pad_d_x(g, x, out, mode, widths, value):
    if mode == "constant":
        return g[tuple(slice(lo, g.shape[k] - hi) for k, (lo, hi) in enumerate(widths))]
    shape = list(g.shape)
    for axis in reversed(range(len(widths))):
        lo, hi = widths[axis]
        if not (lo or hi):
            continue
        n = shape[axis] - lo - hi
        sources = np.pad(np.arange(n), (lo, hi), mode=_NUMPY_MODES[mode])  # where each element was copied from
        shape[axis] = n
        g = F.scatter(g, tuple(shape), (slice(None),) * axis + (sources,))
    return g


def _pad_torch(t, x, mode, widths, value):
    first = next((k for k, (lo, hi) in enumerate(widths) if lo or hi), len(widths))
    if first == len(widths):
        return f"{x}.clone()"  # no border at all
    if mode != "constant":  # PyTorch pads 1 to 3 last axes of an input with 1 or 2 more: count a few unpadded ones
        first = min(first, max(len(widths) - 3, 2 if len(widths) > 2 else 1))
    flat = tuple(w for lo, hi in reversed(widths[first:]) for w in (lo, hi))
    if mode == "constant":
        return f"F.pad({x}, {t.const(flat)}" + ("" if value == 0 else f", value={t.const(value)}") + ")"
    return f"F.pad({x}, {t.const(flat)}, mode={t.const(mode)})"


def _pad_onnx(g, x, mode, widths, value):
    if not any(lo or hi for lo, hi in widths):
        return g.op("Identity", x)
    if mode == "circular":
        raise ShapeError("pad: circular padding has no ONNX form at opset 18 (its 'wrap' mode came with opset 19)")
    pads = g.ints([lo for lo, _ in widths] + [hi for _, hi in widths])
    onnx_mode = {"constant": "constant", "reflect": "reflect", "replicate": "edge"}[mode]
    if mode == "constant":
        return g.op("Pad", x, pads, g.const(float(value)), mode=onnx_mode)
    return g.op("Pad", x, pads, mode=onnx_mode)


PAD = Op(
    "pad", _pad_data, inputs="x", code="np.pad(x, widths, mode)",
    as_torch=_pad_torch, as_onnx=_pad_onnx,
    d_x=_pad_d_x, formula="dL/dx = dL/dy of each element and of its border copies, added up",
)


@PAD.public
def pad(input, pad, mode="constant", value=0.0):
    """Add borders, PyTorch's way (``torch.nn.functional.pad``): `pad` lists
    (before, after) widths from the *last* axis backwards, e.g. ``(1, 1, 2, 0)``
    pads the last axis by 1 on each side and the one before by 2 at the top.
    ``mode`` is "constant" (filled with ``value``), "reflect" (mirrored, the
    edge not repeated), "replicate" (the edge repeated) or "circular".

    >>> x = Value([[1.0, 2.0, 3.0]])
    >>> pad(x, (2, 1), mode="reflect").data.tolist()
    [[3.0, 2.0, 1.0, 2.0, 3.0, 2.0]]
    >>> y = pad(x, (1, 1), mode="replicate"); y.sum().backward(); x.grad.tolist()   # the edges were copied
    [[2.0, 1.0, 2.0]]
    """
    x = as_value(input)
    widths_given = _ints(tuple(pad), len(pad), "pad", "pad", 0) if isinstance(pad, (tuple, list)) else None
    if widths_given is None or len(widths_given) % 2 or len(widths_given) // 2 > x.ndim:
        raise ValueError(
            f"pad: pad must be an even number of non-negative ints (before, after) for at most {x.ndim} "
            f"axes of the input {x.shape}, last axis first; got {pad!r}"
        )
    if mode not in ("constant", *_NUMPY_MODES):
        raise ValueError(f"pad: mode must be 'constant', 'reflect', 'replicate' or 'circular', got {mode!r}")
    padded_axes = len(widths_given) // 2
    widths = [(0, 0)] * (x.ndim - padded_axes) + [
        (widths_given[2 * k], widths_given[2 * k + 1]) for k in reversed(range(padded_axes))
    ]
    if mode != "constant":
        _check_copied_widths(x, mode, padded_axes, widths)
    out_shape = tuple(n + lo + hi for n, (lo, hi) in zip(x.shape, widths))
    _check_workspace("pad", f"{mode} padding {tuple(widths_given)} of the input {x.shape}", {"output": out_shape},
                     x.dtype.itemsize, "use narrower borders")
    return PAD.apply(x, mode=mode, widths=tuple(widths), value=value if mode == "constant" else 0.0)


def _check_copied_widths(x, mode, padded_axes, widths):
    """The limits of the modes that copy the input's elements into the borders."""
    if padded_axes > x.ndim - 1:
        raise ValueError(f"pad: mode {mode!r} pads at most the last {x.ndim - 1} axes of the input {x.shape}")
    for n, (lo, hi) in zip(x.shape, widths):
        if not (lo or hi):
            continue
        if n == 0:
            raise ShapeError(f"pad: {mode} padding of ({lo}, {hi}) copies from an axis of size 0 (input {x.shape}); "
                             f"the axis needs at least one element")
        # replicate repeats the edge any number of times; a reflection stops before the far edge
        # and a circular copy wraps around once at most (PyTorch's limits)
        limit = {"reflect": n - 1, "circular": n}.get(mode)
        if limit is not None and max(lo, hi) > limit:
            raise ShapeError(
                f"pad: {mode} padding of ({lo}, {hi}) on an axis of size {n} (input {x.shape}) needs widths "
                f"at most {limit}" + (" (less than the axis size)" if mode == "reflect" else "")
                + "; use replicate or constant padding for wider borders"
            )
