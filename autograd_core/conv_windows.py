"""Where the windows of a convolution or a pooling lie, and the windows
themselves: the im2col machinery under the operations of ``conv.py``.

* ``Windows``: the geometry of a kernel sliding over an input (sizes,
  strides, dilation, padding, the output size), worked out and checked once
  by ``_geometry``, from a layer's arguments by ``_window_args``;
* ``window_view``: every window of an image as a read-only strided view, no
  copy but the padding; ``im2col``: the windows as the rows of one matrix
  product; ``col2im``: its adjoint, each window's values added back where the
  window came from;
* how a geometry is written as PyTorch arguments and ONNX attributes, for
  ``autograd_core.export``.

NumPy arrays only: the operations built on these (``conv.py``) are what a
graph records.
"""

from __future__ import annotations

import itertools
import math
from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .errors import ShapeError

__all__ = ["window_view", "im2col", "col2im"]


# ==========================================================================
# Geometry: where the windows are
# ==========================================================================
class Windows(NamedTuple):
    """Where the windows of a convolution or a pooling lie, per spatial axis:
    kernel size, stride, dilation, padding before and after, the input's size
    (unpadded) and the number of windows (the output size); and, worked out
    once, the padded size, the index of the unpadded part of a padded
    channels-last image, and for each kernel tap the slice of that image it
    reads in every window."""

    kernel: tuple
    stride: tuple
    dilation: tuple
    pads: tuple  # ((before, after), ...)
    in_sizes: tuple
    out_sizes: tuple
    padded_sizes: tuple
    inner: tuple
    tap_slices: tuple  # ((tap offset, slice of the padded (N, *padded, C) image), ...)
    tiles: bool  # the windows cover the input exactly once (no padding or dilation, stride = kernel)


def _ints(value, n, op, name, minimum):
    """An int or a sequence of `n` ints, each >= minimum, as a tuple of n ints."""
    values = (value,) * n if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else value
    try:
        values = tuple(values)
    except TypeError:
        values = None
    if (
        values is None or len(values) != n
        or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= minimum for v in values)
    ):
        raise ValueError(f"{op}: {name} must be an int >= {minimum} or {n} of them, got {_shown(value)}")
    if any(v > _LARGEST_SIZE for v in values):
        raise ValueError(f"{op}: {name} {_shown(value)} is past 2**63 - 1, the largest size NumPy (and PyTorch) "
                         f"can index; use a smaller {name}")
    return tuple(int(v) for v in values)


_LARGEST_SIZE = 2**63 - 1


def _shown(value):
    """repr(value), unless it holds an int too long for Python to print."""
    try:
        return repr(value)
    except ValueError:
        return "(a number too long to print)"


def _geometry(op, spatial, kernel, stride, dilation, pads, ceil_mode=False, budget=None):
    """The Windows of a kernel sliding over `spatial` sizes, or a ShapeError
    naming the op when the kernel does not fit in the padded input.
    ``budget(kernel, pads, out_sizes, padded_sizes)``, when given, is called
    before the windows are laid out, to refuse sizes too large to compute."""
    out_sizes, all_pads, strides = [], [], []
    for n, k, s, d, (lo, hi) in zip(spatial, kernel, stride, dilation, pads):
        span = d * (k - 1) + 1  # the dilated kernel's extent
        room = n + lo + hi - span
        if room < 0:
            raise ShapeError(
                f"{op}: the kernel {tuple(kernel)} (dilated extent {span}) is larger than the padded input "
                f"(spatial size {tuple(spatial)}, padded to {n + lo + hi} along this axis); "
                f"use a smaller kernel, more padding or a larger input"
            )
        count = (room + s - 1) // s + 1 if ceil_mode else room // s + 1
        if ceil_mode and (count - 1) * s >= n + lo:
            count -= 1  # PyTorch: the last window must start inside the input or its left padding
        extra = max(0, (count - 1) * s + span - (n + lo + hi))  # ceil_mode's windows past the end
        out_sizes.append(count)
        all_pads.append((lo, hi + extra))
        # One window along this axis never takes a step: a stride of 10**18 would only overflow
        # the byte strides of the window view, so it is kept within the kernel's extent.
        strides.append(min(s, span) if count == 1 else s)
    stride = strides
    padded = tuple(n + lo + hi for n, (lo, hi) in zip(spatial, all_pads))
    if budget is not None:
        budget(tuple(kernel), tuple(pads), tuple(out_sizes), padded)
    inner = (slice(None),) + tuple(slice(lo, lo + n) for n, (lo, _) in zip(spatial, all_pads)) + (slice(None),)
    tap_slices = tuple(
        (offset, (slice(None),) + tuple(
            slice(o * d, o * d + s * (count - 1) + 1, s) for o, d, s, count in zip(offset, dilation, stride, out_sizes)
        ) + (slice(None),))
        for offset in itertools.product(*[range(k) for k in kernel])
    )
    tiles = all(
        lo == hi == 0 and d == 1 and s == k and count * k == n
        for (lo, hi), d, s, k, count, n in zip(all_pads, dilation, stride, kernel, out_sizes, spatial)
    )
    return Windows(tuple(kernel), tuple(stride), tuple(dilation), tuple(all_pads), tuple(spatial), tuple(out_sizes),
                   padded, inner, tap_slices, tiles)


class _Shape(NamedTuple):
    shape: tuple

    @property
    def ndim(self):
        return len(self.shape)


def _window_args(op, x, ndim, kernel_size, stride, padding, dilation, ceil_mode=False, budget=None):
    """Check an (N, C, *spatial) input of `ndim` dimensions and the window
    arguments; return the Windows. `padding` may be an int or a tuple (both
    sides alike) or pairs per axis (internal); `budget` is `_geometry`'s."""
    if x.ndim != ndim:
        layout = "(N, C, H, W)" if ndim == 4 else "(N, C, L)"
        raise ShapeError(f"{op}: expects input of shape {layout}, got {x.shape}")
    nd = ndim - 2
    kernel = _ints(kernel_size, nd, op, "kernel_size", 1)
    stride = kernel if stride is None else _ints(stride, nd, op, "stride", 1)
    dilation = _ints(dilation, nd, op, "dilation", 1)
    if isinstance(padding, tuple) and padding and isinstance(padding[0], tuple):
        pads = padding
    else:
        pads = tuple((p, p) for p in _ints(padding, nd, op, "padding", 0))
    return _geometry(op, x.shape[2:], kernel, stride, dilation, pads, ceil_mode, budget)


# ==========================================================================
# The windows: a view, rows for a matrix product (im2col), and back (col2im)
# ==========================================================================
def _channels_last(x):
    """(N, C, *spatial) as a view (N, *spatial, C)."""
    return x.transpose((0,) + tuple(range(2, x.ndim)) + (1,))


def _channels_first(x):
    """(N, *spatial, C) as a view (N, C, *spatial)."""
    return x.transpose((0, x.ndim - 1) + tuple(range(1, x.ndim - 1)))


def _padded_channels_last(x, geo, fill=0):
    """`x` (N, C, *spatial) with the geometry's padding, as (N, *padded, C):
    channels last in memory, so that each pixel's channels lie side by side
    for the window copies. No copy without padding."""
    if not any(lo or hi for lo, hi in geo.pads):
        return _channels_last(x)
    shape = (x.shape[0],) + geo.padded_sizes + (x.shape[1],)
    out = np.zeros(shape, dtype=x.dtype) if fill == 0 else np.full(shape, fill, dtype=x.dtype)
    out[geo.inner] = _channels_last(x)
    return out


def window_view(x, geo, fill=0):
    """All windows of `x` (N, C, *spatial) as a read-only strided view of shape
    (N, *out_sizes, *kernel, C): element [n, p, q, i, j, c] is the pixel under
    kernel tap (i, j) of window (p, q), channel c. No copy but the padding.

    >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> geo = _geometry("demo", (3, 3), (2, 2), (1, 1), (1, 1), ((0, 0), (0, 0)))
    >>> window_view(x, geo)[0, 0, 0, :, :, 0].tolist()     # the window at the top left
    [[0.0, 1.0], [3.0, 4.0]]
    """
    xp = _padded_channels_last(x, geo, fill)  # (N, *padded, C)
    if geo.tiles and xp.flags.c_contiguous:  # windows side by side (2x2 pooling): a reshape is the view
        nd = len(geo.kernel)
        split = (xp.shape[0],) + tuple(n for pair in zip(geo.out_sizes, geo.kernel) for n in pair) + (xp.shape[-1],)
        order = (0,) + tuple(range(1, 2 * nd, 2)) + tuple(range(2, 2 * nd + 1, 2)) + (2 * nd + 1,)
        return xp.reshape(split).transpose(order)
    strides_sp = xp.strides[1:-1]
    tap = tuple(st * d for st, d in zip(strides_sp, geo.dilation))
    step = tuple(st * s for st, s in zip(strides_sp, geo.stride))
    shape = (xp.shape[0],) + geo.out_sizes + geo.kernel + (xp.shape[-1],)
    strides = (xp.strides[0],) + step + tap + (xp.strides[-1],)
    if xp.base is None and xp.flags.c_contiguous:  # a padded copy: a view of it without as_strided's Python layers
        view = np.ndarray(shape, xp.dtype, xp, 0, strides)
        view.flags.writeable = False
        return view
    return as_strided(xp, shape, strides, writeable=False)


def im2col(x, geo):
    """The windows of `x` as rows, for one matrix product: shape
    (N * out pixels, kernel taps * C), row (n, p, q) holding window (p, q) of
    image n, tap by tap, the channels of each tap side by side. One copy (the
    view made contiguous); no loop.

    >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> geo = _geometry("demo", (3, 3), (2, 2), (1, 1), (1, 1), ((0, 0), (0, 0)))
    >>> im2col(x, geo).tolist()                          # four windows of four pixels
    [[0.0, 1.0, 3.0, 4.0], [1.0, 2.0, 4.0, 5.0], [3.0, 4.0, 6.0, 7.0], [4.0, 5.0, 7.0, 8.0]]
    """
    view = window_view(x, geo)
    if view.shape[-1] == 1 and len(geo.tap_slices) > 1:
        # one channel (a first layer): copied tap by tap, each copy running along whole
        # image rows, instead of kernel-row runs of a few pixels (2.4x faster for 3x3)
        rows = np.empty(view.shape, dtype=view.dtype)
        lead = (slice(None),) * (1 + len(geo.kernel))
        for offset, _ in geo.tap_slices:
            rows[lead + offset] = view[lead + offset]
        view = rows
    return view.reshape(x.shape[0] * math.prod(geo.out_sizes), math.prod(geo.kernel) * view.shape[-1])


def col2im(taps, geo, dtype=None):
    """The adjoint of the window view: `taps` of shape (N, *out_sizes, *kernel, C)
    (any strides) added back onto an image where each came from, overlapping
    windows adding up; the padding is cut off. Returns (N, C, *spatial) (a
    view of a channels-last array). One strided add per kernel tap, over the
    whole batch.

    >>> geo = _geometry("demo", (3, 3), (2, 2), (1, 1), (1, 1), ((0, 0), (0, 0)))
    >>> col2im(np.ones((1, 2, 2, 2, 2, 1)), geo)[0, 0].tolist()   # how many windows cover each pixel
    [[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]
    """
    nd = len(geo.kernel)
    image = np.zeros((taps.shape[0],) + geo.padded_sizes + (taps.shape[-1],), dtype=dtype or taps.dtype)
    for offset, target in geo.tap_slices:
        image[target] += taps[(slice(None),) * (1 + nd) + offset]
    return _channels_first(image[geo.inner])


def _taps_of_rows(rows, n, c, geo):
    """Rows (N * out pixels, taps * C) as taps (N, *out, *kernel, C) (a view)."""
    return rows.reshape((n,) + geo.out_sizes + geo.kernel + (c,))


# ==========================================================================
# How a window geometry is written in PyTorch and ONNX (for autograd_core.export)
# ==========================================================================
def _strides(geo):
    """The geometry's strides, with a lone window's stride (shortened to the kernel's
    extent) made long enough again that no second window fits."""
    strides = []
    for n, k, d, s, (lo, hi), count in zip(geo.in_sizes, geo.kernel, geo.dilation, geo.stride, geo.pads, geo.out_sizes):
        room = n + lo + hi - (d * (k - 1) + 1)
        strides.append(max(s, room + 1) if count == 1 else s)
    return tuple(strides)


def _symmetric(geo):
    return all(lo == hi for lo, hi in geo.pads)


def _border(t, x, geo, value=None):
    """x padded in PyTorch by the geometry's (maybe uneven) borders: F.pad's widths, last axis first."""
    widths = tuple(w for lo, hi in reversed(geo.pads) for w in (lo, hi))
    return f"F.pad({x}, {t.const(widths)}{'' if value is None else ', value=' + value})"


def _torch_window(t, geo, padding=True, kernel=True, pool=False):
    """``kernel, stride=..., padding=..., dilation=...``, defaults left out (a
    pooling's stride is its kernel by default, others' 1)."""
    parts = [t.const(_one(geo.kernel))] if kernel else []
    strides = _strides(geo)
    if strides != (tuple(geo.kernel) if pool else (1,) * len(strides)):
        parts.append(f"stride={t.const(_one(strides))}")
    for name, value, default in (("padding", tuple(lo for lo, _ in geo.pads), 0), ("dilation", geo.dilation, 1)):
        if (name != "padding" or padding) and any(v != default for v in value):
            parts.append(f"{name}={t.const(_one(value))}")
    return ", ".join(parts)


def _one(values):
    return values[0] if all(v == values[0] for v in values) else tuple(values)


def _onnx_window(geo, pads=True):
    attributes = {"kernel_shape": list(geo.kernel), "strides": list(_strides(geo))}
    if pads:
        attributes["pads"] = [lo for lo, _ in geo.pads] + [hi for _, hi in geo.pads]
    return attributes
