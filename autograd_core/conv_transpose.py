"""Transposed convolution: a convolution's input gradient, run forwards.

A convolution ``Y = conv(X, W)`` sends each window of X to one output pixel.
Its gradient with respect to X does the reverse: each output pixel's
gradient is spread back over the window it came from, ``col2im(dL/dY @ W)``.
A *transposed* convolution is exactly that map used as a layer: every input
pixel, times the weights, is added onto a window of a larger output, so a
stride of 2 doubles the image's size (a decoder's "upsampling convolution").
So its three rules are the convolution's own, with the roles swapped:

    y      = col2im(x_rows @ W)          (the convolution's dL/dX rule, applied to x)
    dL/dx  = conv(dL/dy, W)              (the convolution itself: each window of
                                          dL/dy gathered back to its input pixel)
    dL/dW  = x_rows^T @ im2col(dL/dy)    (the convolution's dL/dW rule, x in the
                                          place of dL/dY and dL/dy in the place of X)
    dL/db  = dL/dy summed over the batch and every output pixel

The window geometry is the one of the convolution whose input gradient this
is: that convolution reads the output, with ``padding`` on both sides, and
has one window per input pixel. ``output_padding`` adds rows and columns at
the end of the output (to pick one of the sizes a strided convolution maps
onto the same input size); where they reach past every window they are 0,
plus the bias.

Names, arguments, weight layout ``(in_channels, out_channels / groups, kH,
kW)`` and output size are PyTorch's (``torch.nn.functional.conv_transpose2d``):

    out = (in - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1

>>> import numpy as np
>>> from autograd_core import Value
>>> x = Value(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]))
>>> w = Value(np.ones((1, 1, 2, 2)))                  # each pixel fills a 2x2 block
>>> y = conv_transpose2d(x, w, stride=2)
>>> y.data[0, 0].tolist()
[[1.0, 1.0, 2.0, 2.0], [1.0, 1.0, 2.0, 2.0], [3.0, 3.0, 4.0, 4.0], [3.0, 3.0, 4.0, 4.0]]
>>> y.sum().backward(); x.grad[0, 0].tolist()          # dL/dx = conv(dL/dy, W): each block summed
[[4.0, 4.0], [4.0, 4.0]]
"""

from __future__ import annotations

import math

import numpy as np

from .engine import Value, as_value
from .errors import ShapeError
from .ops import Op
# The window machinery of the convolutions (geometry, size checks, the convolution's own rules)
from .conv import (
    CONV1D, CONV2D, _argument_key, _cached_geometry, _check_workspace, _conv_d_weight, _conv_d_x, _conv_data,
    _images_and_weight, _padding_text,
)
from .conv_windows import _geometry, _ints, _one, _Shape, _strides

__all__ = ["conv_transpose1d", "conv_transpose2d"]


def _uncovered(geo, output_padding):
    """Per axis, how many of output_padding's rows lie past every window (they are 0)."""
    return tuple(max(0, extra - lo) for extra, (lo, _) in zip(output_padding, geo.pads))


def _crop(g, geo):
    """dL/dy without the rows that no window reaches: the part the convolution reads."""
    if g.shape[2:] == geo.in_sizes:
        return g
    return g[(slice(None), slice(None)) + tuple(slice(0, n) for n in geo.in_sizes)]


# y = col2im(x_rows @ W) + b, per group of channels:
#   dL/dx = conv(dL/dy, W)                each window of dL/dy gathered back to its input pixel
#   dL/dW = x_rows^T @ im2col(dL/dy)      the convolution's dL/dW with x and dL/dy in each other's place
#   dL/db = dL/dy summed over the batch and every output pixel
def _conv_transpose_data(x, weight, bias=None, *, geo, groups, output_padding):
    n, out_channels = x.shape[0], weight.shape[1] * groups
    # the convolution whose input gradient this is reads an image of out_channels channels
    y = _conv_d_x(x, _Shape((n, out_channels) + geo.in_sizes), weight, geo=geo, groups=groups)
    uncovered = _uncovered(geo, output_padding)
    if any(uncovered):  # output_padding past every window: zeros
        y = np.pad(y, ((0, 0), (0, 0)) + tuple((0, e) for e in uncovered))
    if bias is not None:
        y = y + bias.reshape((-1,) + (1,) * len(geo.kernel))
    return y


def _conv_transpose_d_x(g, x, weight, *bias_and_out, geo, groups, output_padding):
    conv = CONV2D if len(geo.kernel) == 2 else CONV1D
    if isinstance(g, Value):  # create_graph: the convolution as a node, to differentiate again
        return conv.apply(_crop(g, geo), weight, geo=geo, groups=groups)
    return _conv_data(_crop(g, geo), weight, geo=geo, groups=groups)[0]


def _conv_transpose_d_weight(g, x, weight, *bias_and_out, geo, groups, output_padding):
    return _conv_d_weight(x, _crop(g, geo), weight, geo=geo, groups=groups)


def _conv_transpose_d_bias(g, x, weight, bias, out, geo, groups, output_padding):
    return g.sum(axis=(0,) + tuple(range(2, g.ndim)))


def _torch_arguments(geo, output_padding):
    """stride, padding, output_padding and dilation as PyTorch is given them. An axis
    with one input pixel has no step to take: its stride is any one PyTorch accepts."""
    strides = tuple(max(s, extra + 1) if count == 1 else s
                    for s, extra, count in zip(_strides(geo), output_padding, geo.out_sizes))
    return strides, tuple(lo for lo, _ in geo.pads), tuple(output_padding), tuple(geo.dilation)


def _conv_transpose_torch(t, x, weight, bias="None", *, geo, groups, output_padding):
    strides, pads, extra, dilation = _torch_arguments(geo, output_padding)
    parts = [x, weight] + ([] if bias == "None" else [bias])
    for name, value, default in (("stride", strides, 1), ("padding", pads, 0), ("output_padding", extra, 0),
                                 ("groups", (groups,), 1), ("dilation", dilation, 1)):
        if any(v != default for v in value):
            parts.append(f"{name}={t.const(_one(value))}")
    return f"F.conv_transpose{len(geo.kernel)}d({', '.join(parts)})"


def _conv_transpose_onnx(g, x, weight, bias=None, *, geo, groups, output_padding):
    strides, pads, extra, dilation = _torch_arguments(geo, output_padding)
    window = {"kernel_shape": list(geo.kernel), "strides": list(strides), "dilations": list(dilation), "group": groups}
    if all(e < s for e, s in zip(extra, strides)):
        return g.op("ConvTranspose", x, weight, bias, pads=list(pads) * 2, output_padding=list(extra), **window)
    # ONNX Runtime takes no output_padding as large as the stride (PyTorch does, below the dilation): less
    # padding at the end instead, the rows past every window as zeros, then the bias
    y = g.op("ConvTranspose", x, weight, None, pads=[lo for lo, _ in geo.pads] + [hi for _, hi in geo.pads], **window)
    uncovered = _uncovered(geo, output_padding)
    if any(uncovered):
        y = g.op("Pad", y, g.ints([0] * (2 + len(uncovered)) + [0, 0] + list(uncovered)))
    if bias is not None:
        y = g.op("Add", y, g.op("Reshape", bias, g.ints([-1] + [1] * len(uncovered))))
    return y


_FORMULA = "Y = col2im(X_rows @ W) + b: dL/dX = conv(dL/dY, W), dL/dW = X_rows^T @ im2col(dL/dY), dL/db = sum(dL/dY)"
CONV_TRANSPOSE2D = Op(
    "conv_transpose2d", _conv_transpose_data, inputs="x, weight, bias",
    code="col2im(x_rows @ weight_rows) + bias  # (N, O, H', W'): a convolution's input gradient",
    as_torch=_conv_transpose_torch, as_onnx=_conv_transpose_onnx,
    d_x=_conv_transpose_d_x, d_weight=_conv_transpose_d_weight, d_bias=_conv_transpose_d_bias,
    formula=_FORMULA, output="Y",
)
CONV_TRANSPOSE1D = Op(
    "conv_transpose1d", _conv_transpose_data, inputs="x, weight, bias",
    code="col2im(x_rows @ weight_rows) + bias  # (N, O, L'): a convolution's input gradient",
    as_torch=_conv_transpose_torch, as_onnx=_conv_transpose_onnx,
    d_x=_conv_transpose_d_x, d_weight=_conv_transpose_d_weight, d_bias=_conv_transpose_d_bias,
    formula=_FORMULA, output="Y",
)


def _output_sizes(name, spatial, kernel, strides, pads, extras, dilations):
    """PyTorch's output size per axis, after its checks on output_padding and on the size."""
    sizes = []
    for n, k, s, p, extra, d in zip(spatial, kernel, strides, pads, extras, dilations):
        if extra >= s and extra >= d:
            raise ValueError(
                f"{name}: output_padding {extras} must be smaller than the stride {strides} or the dilation "
                f"{dilations} along each axis (PyTorch's rule: it only chooses among the sizes a strided "
                f"convolution maps onto the same input)"
            )
        sizes.append((n - 1) * s - 2 * p + d * (k - 1) + extra + 1)
    if any(size < 1 for size in sizes) or any(n < 1 for n in spatial):
        raise ShapeError(
            f"{name}: an input of spatial size {tuple(spatial)} with kernel {tuple(kernel)}, stride {strides}, "
            f"padding {pads}, output_padding {extras} and dilation {dilations} gives an output of size "
            f"{tuple(sizes)}, which is empty; use less padding or a larger input"
        )
    return tuple(sizes)


def _conv_transpose(op, nd, input, weight, bias, stride, padding, output_padding, groups, dilation):
    name = op.name
    w_layout = ("(in_channels, out_channels / groups, kH, kW)" if nd == 2
                else "(in_channels, out_channels / groups, kL)")
    x, w, unbatched = _images_and_weight(name, nd, input, weight, groups, w_layout)
    in_channels, out_per_group = w.shape[:2]
    if in_channels % groups:
        raise ValueError(f"{name}: groups={groups} must divide the weight's in_channels ({in_channels}) "
                         f"(weight {w.shape}, laid out {w_layout})")
    if x.shape[1] != in_channels:
        raise ShapeError(
            f"{name}: the input has {x.shape[1]} channels (shape {x.shape}) but the weight {w.shape} expects "
            f"{in_channels} (its first axis: the weight of a transposed convolution is {w_layout})"
        )
    out_channels = out_per_group * groups
    kernel = w.shape[2:]

    def make():
        strides = _ints(stride, nd, name, "stride", 1)
        pads = _ints(padding, nd, name, "padding", 0)
        extras = _ints(output_padding, nd, name, "output_padding", 0)
        dilations = _ints(dilation, nd, name, "dilation", 1)
        sizes = _output_sizes(name, x.shape[2:], kernel, strides, pads, extras, dilations)
        # the convolution whose input gradient this is: it reads the output but for the
        # rows past every window, padded by `padding` before and what is left of it after
        uncovered = tuple(max(0, e - p) for e, p in zip(extras, pads))
        read = tuple(size - u for size, u in zip(sizes, uncovered))
        pairs = tuple((p, max(0, p - e)) for p, e in zip(pads, extras))
        itemsize = np.result_type(x.dtype, w.dtype).itemsize

        def budget(kernel_, pads_, out_sizes, padded_sizes):
            n = x.shape[0]
            _check_workspace(
                name, f"input {x.shape} with kernel {tuple(kernel)}, stride {strides} and padding "
                f"{_padding_text(pads_)}",
                {"window rows": (n * math.prod(out_sizes), math.prod(kernel) * out_channels),
                 "padded output": (n, out_channels) + padded_sizes, "output": (n, out_channels) + sizes},
                itemsize, "use a smaller stride, a smaller input or a smaller batch")

        geo = _geometry(name, read, kernel, strides, dilations, pairs, budget=budget)
        assert geo.out_sizes == tuple(x.shape[2:]), (geo.out_sizes, x.shape)  # one window per input pixel
        return geo, extras

    geo, extras = _cached_geometry(
        (name, x.shape, w.shape, x.dtype, w.dtype) + _argument_key(stride, padding, output_padding, dilation), make)
    if bias is None:
        out = op.apply(x, w, geo=geo, groups=int(groups), output_padding=extras)
    else:
        b = as_value(bias, w)
        if b.shape != (out_channels,):
            raise ShapeError(f"{name}: bias must have shape ({out_channels},) (out_channels) for a weight of shape "
                             f"{w.shape} and groups={groups}, got {b.shape}")
        out = op.apply(x, w, b, geo=geo, groups=int(groups), output_padding=extras)
    return out.reshape(out.shape[1:]) if unbatched else out


@CONV_TRANSPOSE2D.public
def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """2-d transposed convolution of ``input`` (N, C_in, H, W) with ``weight``
    (C_in, C_out / groups, kH, kW), plus ``bias`` (C_out,): each input pixel,
    times its weights, added onto a window of the output. It is the gradient
    of ``conv2d`` with respect to its input, so ``stride=2`` doubles the size.
    ``padding`` trims that many rows and columns off each border of the
    result; ``output_padding`` (smaller than the stride or the dilation) adds
    some at the end. PyTorch's arguments, in PyTorch's order.

    >>> x = Value(np.ones((1, 1, 3, 3)))
    >>> w = Value(np.ones((1, 2, 3, 3)))                     # 1 channel in, 2 out
    >>> conv_transpose2d(x, w, stride=2, padding=1).shape     # (3 - 1) * 2 - 2 + 3 = 5
    (1, 2, 5, 5)
    >>> conv_transpose2d(x, w, stride=2, padding=1, output_padding=1).shape
    (1, 2, 6, 6)
    """
    return _conv_transpose(CONV_TRANSPOSE2D, 2, input, weight, bias, stride, padding, output_padding, groups,
                           dilation)


@CONV_TRANSPOSE1D.public
def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """1-d transposed convolution of ``input`` (N, C_in, L) with ``weight``
    (C_in, C_out / groups, k): `conv_transpose2d` along one axis.

    >>> y = conv_transpose1d(Value([[[1.0, 2.0]]]), Value([[[1.0, 10.0, 100.0]]]), stride=2)
    >>> y.data.tolist()                                     # each input copies the kernel, 2 apart
    [[[1.0, 10.0, 102.0, 20.0, 200.0]]]
    """
    return _conv_transpose(CONV_TRANSPOSE1D, 1, input, weight, bias, stride, padding, output_padding, groups,
                           dilation)
