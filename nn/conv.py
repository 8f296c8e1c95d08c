"""Layers for images and sequences: convolution, pooling, 2-d batch norm and
channel dropout, with PyTorch's names, arguments, weight layout, defaults and
initialisation, so a PyTorch ``state_dict`` of the same model loads.

Each layer is one engine operation (``autograd_core.conv``) with its
parameters; a convolution is one node in the graph, whatever its size.

>>> import numpy as np, nn
>>> nn.manual_seed(0)
>>> model = nn.Sequential(
...     nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
...     nn.Flatten(), nn.Linear(4 * 4 * 4, 10))
>>> model(np.zeros((2, 1, 8, 8))).shape
(2, 10)
>>> model[0].weight.shape                       # (out_channels, in_channels, kH, kW), as PyTorch
(4, 1, 3, 3)
"""

from __future__ import annotations

import math

import numpy as np

from autograd_core.errors import ShapeError

from . import functional as F
from . import init
from .layers import BatchNorm1d
from .module import Module, Parameter

__all__ = ["Conv1d", "Conv2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "BatchNorm2d", "Dropout2d",
           "ConvTranspose1d", "ConvTranspose2d", "MaxUnpool2d", "Upsample"]


def _check_channels(layer, in_channels, out_channels, groups):
    """A convolution layer's channel counts: positive ints, both divisible by `groups`."""
    for name, size in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)):
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
            raise ValueError(f"{layer}: {name} must be a positive int, got {size!r}")
    if in_channels % groups or out_channels % groups:
        raise ValueError(
            f"{layer}: groups={groups} must divide in_channels ({in_channels}) and out_channels ({out_channels})"
        )


class _NamesItself:
    """A shape error from the operation inside a layer is reported with the
    layer's name in front: ``Conv2d(1, 2, 5x5): conv2d: the kernel ...``."""

    def _run(self, fn, *args):
        try:
            return fn(*args)
        except ShapeError as error:
            raise ShapeError(f"{self._title()}: {error}") from None


def _one(values):
    """(3, 3) -> 3: a size the same along every axis as PyTorch's layers are usually given it."""
    if isinstance(values, tuple) and values and all(v == values[0] for v in values):
        return values[0]
    return values


def _n_tuple(value, n, layer, name, minimum):
    values = (value,) * n if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else value
    try:
        values = tuple(int(v) if not isinstance(v, bool) and float(v).is_integer() else None for v in values)
    except (TypeError, ValueError):
        values = None
    if values is None or len(values) != n or any(v is None or v < minimum for v in values):
        raise ValueError(f"{layer}: {name} must be an int >= {minimum} or {n} of them, got {value!r}")
    return values


class _ConvNd(_NamesItself, Module):
    """What Conv1d and Conv2d share: the arguments, the parameters, PyTorch's
    initialisation and repr. ``weight`` has shape (out_channels,
    in_channels / groups, *kernel_size); ``bias`` (out_channels,)."""

    _dims = 2
    _padding_modes = ("zeros", "reflect", "replicate", "circular")

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", dtype=np.float64):
        super().__init__()
        layer, nd = type(self).__name__, self._dims
        _check_channels(layer, in_channels, out_channels, groups)
        if padding_mode not in self._padding_modes:
            raise ValueError(f"{layer}: padding_mode must be one of {', '.join(self._padding_modes)}, got {padding_mode!r}")
        self.in_channels, self.out_channels, self.groups = int(in_channels), int(out_channels), int(groups)
        self.kernel_size = _n_tuple(kernel_size, nd, layer, "kernel_size", 1)
        self.stride = _n_tuple(stride, nd, layer, "stride", 1)
        self.dilation = _n_tuple(dilation, nd, layer, "dilation", 1)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"{layer}: padding must be 'same', 'valid', an int or {nd} ints, got {padding!r}")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError(f"{layer}: padding='same' is not supported for strided convolutions (stride={self.stride})")
            self.padding = padding
        else:
            self.padding = _n_tuple(padding, nd, layer, "padding", 0)
        self.padding_mode = padding_mode
        self.weight = Parameter(np.empty((self.out_channels, self.in_channels // groups) + self.kernel_size, dtype=dtype))
        if bias:
            self.bias = Parameter(np.empty(self.out_channels, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        """PyTorch's initialisation: ``kaiming_uniform_(a=sqrt(5))`` for the weight,
        i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = in_channels / groups
        * kernel taps, and the same bound for the bias."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight.shape[1] * math.prod(self.kernel_size)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            init.uniform_(self.bias, -bound, bound)

    def _border_widths(self):
        """F.pad's widths (last axis first) for a padding_mode other than zeros."""
        if self.padding == "valid":
            return None
        if self.padding == "same":
            pairs = []
            for k, d in zip(self.kernel_size, self.dilation):
                total = d * (k - 1)
                pairs.append((total // 2, total - total // 2))
        else:
            pairs = [(p, p) for p in self.padding]
        return tuple(w for lo, hi in reversed(pairs) for w in (lo, hi))

    def _check_channels(self, x):
        layer = type(self).__name__
        if x.ndim not in (self._dims + 1, self._dims + 2) or x.shape[-self._dims - 1] != self.in_channels:
            layout = "(N, C, H, W)" if self._dims == 2 else "(N, C, L)"
            raise ShapeError(
                f"{layer}({self.in_channels}, {self.out_channels}): expected input of shape {layout} with "
                f"C = {self.in_channels} channels, got {x.shape}"
            )

    def forward(self, x):
        x = F._value(x)
        self._check_channels(x)
        conv = F.conv2d if self._dims == 2 else F.conv1d
        if self.padding_mode != "zeros":
            widths = self._border_widths()
            if widths is not None and any(widths):
                x = F.pad(x, widths, mode=self.padding_mode)
            return self._run(conv, x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)
        return self._run(conv, x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def extra_repr(self):
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        zero = (0,) * self._dims
        if self.padding != zero:
            text += f", padding={self.padding}"
        if self.dilation != (1,) * self._dims:
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        if self.padding_mode != "zeros":
            text += f", padding_mode={self.padding_mode}"
        return text

    def _title(self):
        kernel = "x".join(str(k) for k in self.kernel_size)
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, {kernel})"

    def as_torch(self):
        options = {"stride": _one(self.stride), "padding": _one(self.padding), "dilation": _one(self.dilation),
                   "groups": self.groups, "bias": self.bias is not None, "padding_mode": self.padding_mode,
                   "dtype": self.weight.dtype}
        return f"Conv{self._dims}d", (self.in_channels, self.out_channels, _one(self.kernel_size)), options


class Conv2d(_ConvNd):
    """2-d convolution over ``(N, C, H, W)`` images: ``weight`` (out_channels,
    in_channels / groups, kH, kW) and ``bias`` (out_channels,), initialised as
    PyTorch does. ``padding`` is an int, a pair, "valid" or "same";
    ``padding_mode`` is "zeros", "reflect", "replicate" or "circular".

    >>> conv = Conv2d(3, 8, kernel_size=3, padding=1)
    >>> conv
    Conv2d(3, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))
    >>> conv(np.zeros((2, 3, 5, 5))).shape
    (2, 8, 5, 5)
    """

    _dims = 2


class Conv1d(_ConvNd):
    """1-d convolution over ``(N, C, L)`` sequences: ``weight`` (out_channels,
    in_channels / groups, k), as PyTorch.

    >>> Conv1d(2, 4, 3, padding="same")(np.zeros((1, 2, 10))).shape
    (1, 4, 10)
    """

    _dims = 1


class MaxPool2d(_NamesItself, Module):
    """The largest value of each ``kernel_size`` window, per channel; ``stride``
    defaults to the kernel size.

    >>> MaxPool2d(2)
    MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)
    >>> MaxPool2d(2)(np.arange(16.0).reshape(1, 1, 4, 4)).data[0, 0].tolist()
    [[5.0, 7.0], [13.0, 15.0]]
    """

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.dilation, self.ceil_mode = padding, dilation, ceil_mode
        self.return_indices = bool(return_indices)  # (values, indices), for MaxUnpool2d

    def forward(self, x):
        return self._run(F.max_pool2d, F._value(x), self.kernel_size, self.stride, self.padding, self.dilation,
                         self.ceil_mode, self.return_indices)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}"
                + (", return_indices=True" if self.return_indices else ""))

    def as_torch(self):
        stride = None if self.stride == self.kernel_size else self.stride
        return "MaxPool2d", (self.kernel_size,), {"stride": stride, "padding": self.padding,
                                                  "dilation": self.dilation, "ceil_mode": self.ceil_mode,
                                                  "return_indices": self.return_indices}


class AvgPool2d(_NamesItself, Module):
    """The mean of each ``kernel_size`` window, per channel (zero padding counted
    unless ``count_include_pad=False``).

    >>> AvgPool2d(2)(np.arange(16.0).reshape(1, 1, 4, 4)).data[0, 0].tolist()
    [[2.5, 4.5], [10.5, 12.5]]
    """

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.ceil_mode = padding, ceil_mode
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override

    def forward(self, x):
        return self._run(F.avg_pool2d, F._value(x), self.kernel_size, self.stride, self.padding, self.ceil_mode,
                         self.count_include_pad, self.divisor_override)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"

    def as_torch(self):
        stride = None if self.stride == self.kernel_size else self.stride
        return "AvgPool2d", (self.kernel_size,), {"stride": stride, "padding": self.padding, "ceil_mode": self.ceil_mode,
                                                  "count_include_pad": self.count_include_pad,
                                                  "divisor_override": self.divisor_override}


class AdaptiveAvgPool2d(_NamesItself, Module):
    """Average pooling to a fixed output size; ``AdaptiveAvgPool2d(1)`` is global
    average pooling (one number per channel).

    >>> AdaptiveAvgPool2d(1)(np.arange(8.0).reshape(1, 2, 2, 2)).data.ravel().tolist()
    [1.5, 5.5]
    """

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, x):
        return self._run(F.adaptive_avg_pool2d, F._value(x), self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"

    def as_torch(self):
        return "AdaptiveAvgPool2d", (self.output_size,), {}


class BatchNorm2d(BatchNorm1d):
    """Batch normalisation of ``(N, C, H, W)`` images per channel: the mean and
    variance are taken over the batch and every pixel. Same arguments, buffers
    and running statistics as ``BatchNorm1d`` (and PyTorch's ``BatchNorm2d``).

    >>> bn = BatchNorm2d(2)
    >>> y = bn(np.arange(16.0).reshape(2, 2, 2, 2))
    >>> np.round(y.data.mean(axis=(0, 2, 3)), 6).tolist(), np.round(bn.running_mean, 6).tolist()
    ([0.0, 0.0], [0.55, 0.95])
    """

    def forward(self, x):
        x = F._value(x)
        if x.ndim != 4 or x.shape[1] != self.num_features:
            raise ShapeError(
                f"BatchNorm2d({self.num_features}): expected input of shape (N, {self.num_features}, H, W), got {x.shape}"
            )
        momentum = self._count_batch_and_momentum()
        use_batch_stats = self.training or not self.track_running_stats
        keep_stats = (self.training and self.track_running_stats) or not use_batch_stats
        return F.batch_norm(
            x,
            self.running_mean if keep_stats else None,
            self.running_var if keep_stats else None,
            self.weight, self.bias, use_batch_stats, momentum, self.eps,
        )

    def _title(self):
        return f"BatchNorm2d({self.num_features})"

    def as_torch(self):
        return "BatchNorm2d", (self.num_features,), self._torch_options()


class Dropout2d(Module):
    """Channel dropout: in training, each whole channel is zeroed with
    probability ``p`` and the kept ones scaled by ``1 / (1 - p)``; the identity
    in eval mode.

    >>> Dropout2d(0.5).eval()(np.ones((1, 2, 2, 2))).data.sum()
    np.float64(8.0)
    """

    def __init__(self, p=0.5):
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"Dropout2d: p is a probability and must lie in [0, 1], got {p}")
        self.p = p

    def forward(self, x):
        return F.dropout2d(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"

    def as_torch(self):
        return "Dropout2d", (), {"p": self.p}


class _ConvTransposeNd(_NamesItself, Module):
    """What ConvTranspose1d and ConvTranspose2d share: PyTorch's arguments (in
    its order), parameters, initialisation and repr. ``weight`` has shape
    (in_channels, out_channels / groups, *kernel_size): a transposed
    convolution is the gradient of a convolution with respect to its input, so
    its weight is laid out as that convolution's; ``bias`` (out_channels,)."""

    _dims = 2

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, padding_mode="zeros", dtype=np.float64):
        super().__init__()
        layer, nd = type(self).__name__, self._dims
        _check_channels(layer, in_channels, out_channels, groups)
        if padding_mode != "zeros":
            raise ValueError(f'{layer}: only padding_mode="zeros" is supported (as in PyTorch), got {padding_mode!r}')
        self.in_channels, self.out_channels, self.groups = int(in_channels), int(out_channels), int(groups)
        self.kernel_size = _n_tuple(kernel_size, nd, layer, "kernel_size", 1)
        self.stride = _n_tuple(stride, nd, layer, "stride", 1)
        self.padding = _n_tuple(padding, nd, layer, "padding", 0)
        self.output_padding = _n_tuple(output_padding, nd, layer, "output_padding", 0)
        self.dilation = _n_tuple(dilation, nd, layer, "dilation", 1)
        if any(e >= s and e >= d for e, s, d in zip(self.output_padding, self.stride, self.dilation)):
            raise ValueError(f"{layer}: output_padding {self.output_padding} must be smaller than the stride "
                             f"{self.stride} or the dilation {self.dilation} along each axis")
        self.padding_mode = padding_mode
        self.weight = Parameter(np.empty((self.in_channels, self.out_channels // groups) + self.kernel_size, dtype=dtype))
        if bias:
            self.bias = Parameter(np.empty(self.out_channels, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    # PyTorch's: kaiming_uniform_(a=sqrt(5)) with fan_in = weight.shape[1] * kernel taps (here out_channels /
    # groups * taps, as PyTorch reads the transposed weight), the same bound for the bias
    reset_parameters = _ConvNd.reset_parameters

    def _output_padding(self, x, output_size):
        """The output_padding that gives `output_size` (PyTorch's forward(x, output_size)), or a ValueError
        naming the sizes this input can give."""
        nd = self._dims
        size = tuple(output_size)
        if len(size) == x.ndim:  # the whole shape: its spatial part
            size = size[-nd:]
        if len(size) != nd:
            raise ValueError(f"{self._title()}: output_size must have {nd} spatial sizes, got {tuple(output_size)}")
        smallest = tuple((n - 1) * s - 2 * p + d * (k - 1) + 1 for n, s, p, d, k in
                         zip(x.shape[-nd:], self.stride, self.padding, self.dilation, self.kernel_size))
        largest = tuple(n + s - 1 for n, s in zip(smallest, self.stride))
        if any(not lo <= n <= hi for n, lo, hi in zip(size, smallest, largest)):
            raise ValueError(f"{self._title()}: requested an output size of {size}, but an input of spatial size "
                             f"{x.shape[-nd:]} gives sizes from {smallest} to {largest}")
        return tuple(n - lo for n, lo in zip(size, smallest))

    def forward(self, x, output_size=None):
        x = F._value(x)
        if x.ndim not in (self._dims + 1, self._dims + 2) or x.shape[-self._dims - 1] != self.in_channels:
            layout = "(N, C, H, W)" if self._dims == 2 else "(N, C, L)"
            raise ShapeError(f"{self._title()}: expected input of shape {layout} with C = {self.in_channels} "
                             f"channels, got {x.shape}")
        extra = self.output_padding if output_size is None else self._output_padding(x, output_size)
        conv = F.conv_transpose2d if self._dims == 2 else F.conv_transpose1d
        return self._run(conv, x, self.weight, self.bias, self.stride, self.padding, extra, self.groups, self.dilation)

    def extra_repr(self):
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        for name, default in (("padding", 0), ("dilation", 1), ("output_padding", 0)):
            if getattr(self, name) != (default,) * self._dims:
                text += f", {name}={getattr(self, name)}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        return text

    def _title(self):
        kernel = "x".join(str(k) for k in self.kernel_size)
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, {kernel})"

    def as_torch(self):
        options = {"stride": _one(self.stride), "padding": _one(self.padding),
                   "output_padding": _one(self.output_padding), "groups": self.groups, "bias": self.bias is not None,
                   "dilation": _one(self.dilation), "dtype": self.weight.dtype}
        return f"ConvTranspose{self._dims}d", (self.in_channels, self.out_channels, _one(self.kernel_size)), options


class ConvTranspose2d(_ConvTransposeNd):
    """2-d transposed convolution over ``(N, C, H, W)`` images (a decoder's
    upsampling layer): ``weight`` (in_channels, out_channels / groups, kH, kW),
    ``bias`` (out_channels,), initialised as PyTorch does. The output has
    ``(H - 1) * stride - 2 * padding + dilation * (kH - 1) + output_padding + 1``
    rows; ``forward(x, output_size)`` picks the output_padding that gives a size.

    >>> up = ConvTranspose2d(8, 4, kernel_size=2, stride=2)
    >>> up
    ConvTranspose2d(8, 4, kernel_size=(2, 2), stride=(2, 2))
    >>> up(np.zeros((1, 8, 7, 7))).shape, up.weight.shape
    ((1, 4, 14, 14), (8, 4, 2, 2))
    """

    _dims = 2


class ConvTranspose1d(_ConvTransposeNd):
    """1-d transposed convolution over ``(N, C, L)`` sequences: ``weight``
    (in_channels, out_channels / groups, k), as PyTorch.

    >>> ConvTranspose1d(2, 3, 4, stride=2, padding=1)(np.zeros((1, 2, 5))).shape
    (1, 3, 10)
    """

    _dims = 1


class MaxUnpool2d(_NamesItself, Module):
    """Undo a ``MaxPool2d(..., return_indices=True)``: each value goes back to
    the place its index names, in an output of zeros; the output is
    ``(H - 1) * stride - 2 * padding + kernel_size`` rows high unless
    ``forward(x, indices, output_size)`` gives the size.

    >>> pool, unpool = MaxPool2d(2, return_indices=True), MaxUnpool2d(2)
    >>> y, indices = pool(np.array([[[[1.0, 2.0], [4.0, 3.0]]]]))
    >>> unpool(y, indices).data.tolist()
    [[[[0.0, 0.0], [4.0, 0.0]]]]
    """

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = _n_tuple(kernel_size, 2, "MaxUnpool2d", "kernel_size", 1)
        self.stride = self.kernel_size if stride is None else _n_tuple(stride, 2, "MaxUnpool2d", "stride", 1)
        self.padding = _n_tuple(padding, 2, "MaxUnpool2d", "padding", 0)

    def forward(self, x, indices, output_size=None):
        return self._run(F.max_unpool2d, F._value(x), indices, self.kernel_size, self.stride, self.padding,
                         output_size)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"

    def _title(self):
        return f"MaxUnpool2d({self.kernel_size[0]}x{self.kernel_size[1]})"

    def as_torch(self):
        return "MaxUnpool2d", (self.kernel_size,), {"stride": self.stride, "padding": self.padding}


class Upsample(_NamesItself, Module):
    """Resize images (or sequences) to ``size``, or by ``scale_factor``:
    ``mode`` "nearest", "linear" (sequences), "bilinear" (images), with
    ``align_corners`` for the linear modes; `nn.functional.interpolate` as a
    layer, as in PyTorch.

    >>> Upsample(scale_factor=2)
    Upsample(scale_factor=2.0, mode='nearest')
    >>> Upsample(size=(3, 4), mode="bilinear")(np.zeros((1, 1, 2, 2))).shape
    (1, 1, 3, 4)
    """

    def __init__(self, size=None, scale_factor=None, mode="nearest", align_corners=None, recompute_scale_factor=None):
        super().__init__()
        if mode not in ("nearest", "linear", "bilinear"):
            raise ValueError(f"Upsample: mode must be 'nearest', 'linear' or 'bilinear', got {mode!r}")
        self.size = tuple(size) if isinstance(size, list) else size
        if isinstance(scale_factor, (tuple, list)):
            self.scale_factor = tuple(float(f) for f in scale_factor)
        else:
            self.scale_factor = float(scale_factor) if scale_factor else None
        self.mode, self.align_corners, self.recompute_scale_factor = mode, align_corners, recompute_scale_factor

    def forward(self, x):
        return self._run(F.interpolate, F._value(x), self.size, self.scale_factor, self.mode, self.align_corners,
                         self.recompute_scale_factor)

    def extra_repr(self):
        what = f"scale_factor={self.scale_factor!r}" if self.scale_factor is not None else f"size={self.size!r}"
        return f"{what}, mode={self.mode!r}"

    def _title(self):
        return f"Upsample({self.extra_repr()})"

    def as_torch(self):
        return "Upsample", (), {"size": self.size, "scale_factor": self.scale_factor, "mode": self.mode,
                                "align_corners": self.align_corners,
                                "recompute_scale_factor": self.recompute_scale_factor}
