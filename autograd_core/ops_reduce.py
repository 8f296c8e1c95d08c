"""Reductions: ``sum``, ``mean``, ``max``, ``min``, ``var`` over an axis (or
several, or all), and ``standardize``, batch normalisation's normalising step.
Operations of the registry of ``ops.py`` (see its docstring); their rules
take the upstream gradient ``g``, of the reduced shape, and spread it back
over the input (``sum``: copied to every element; ``max``: to the maxima).
"""

from __future__ import annotations

import numpy as np

from . import _forms
from . import ops as _ops  # (ops.derived_data by its attribute: compile replaces it while tracing)
from .engine import Value, as_value
from .errors import ShapeError
from .ops import F, Op, _axes, _count, _data, _expand_reduced, _scalar_or_array


# s = sum(x):  ds/dx_i = 1, so every input element gets the upstream gradient copied back
SUM = Op(
    "sum", lambda x, axis, keepdims: _scalar_or_array(x.sum(axis=axis, keepdims=keepdims)), inputs="x",
    as_torch=_forms.torch_reduction("torch.sum"), as_onnx=_forms.onnx_reduction("ReduceSum"),
    code="x.sum(axis=axis, keepdims=keepdims)",
    as_numpy={"forward": "x.sum(axis=axis, keepdims=keepdims)"},  # (an array's sum is never a 0-d array)
    d_x=lambda g, x, out, axis, keepdims: F.broadcast_to(_expand_reduced(g, x.shape, axis, keepdims), x.shape),
    formula="d sum(x)/dx_i = 1", methods=("sum",),
)


@SUM.public
def sum(x, axis=None, keepdims=False):
    """Sum over `axis` (None for all; an int or a tuple of ints).

    >>> x = Value([[1.0, 2.0], [3.0, 4.0]])
    >>> s = sum(x, axis=0); s.sum().backward()
    >>> s.data.tolist(), x.grad.tolist()              # every element counts once
    ([4.0, 6.0], [[1.0, 1.0], [1.0, 1.0]])
    """
    x = as_value(x)
    return SUM.apply(x, axis=_axes(axis, x.ndim, "sum"), keepdims=keepdims)


# m = mean(x):  dm/dx_i = 1/n   (divided before it is broadcast: one pass over the reduced gradient)
def _divide_by_count(g, count):
    """g / count, where count is a number of elements. float16 cannot hold a
    count above 65504 (it would become inf, and the gradient 0): there 1/count
    is computed in float64 and then cast, as PyTorch does."""
    if g.dtype == np.float16 and count > 2048:  # 2048: float16 holds every integer up to it
        return g * float(1 / count)
    return g / count


MEAN = Op(
    "mean", lambda x, axis, keepdims: _scalar_or_array(x.mean(axis=axis, keepdims=keepdims)), inputs="x",
    as_torch=_forms.torch_reduction("torch.mean"), as_onnx=_forms.onnx_reduction("ReduceMean"),
    code="x.mean(axis=axis, keepdims=keepdims)",
    as_numpy={"forward": "x.mean(axis=axis, keepdims=keepdims)"},
    d_x=lambda g, x, out, axis, keepdims: F.broadcast_to(
        _divide_by_count(_expand_reduced(g, x.shape, axis, keepdims), _count(x.shape, axis)), x.shape),
    formula="d mean(x)/dx_i = 1/n", methods=("mean",),
)


@MEAN.public
def mean(x, axis=None, keepdims=False):
    """Mean over `axis` (None for all).

    >>> x = Value([1.0, 2.0, 3.0, 6.0]); m = mean(x); m.backward()
    >>> float(m.data), x.grad.tolist()                # each element gets 1/n
    (3.0, [0.25, 0.25, 0.25, 0.25])
    """
    x = as_value(x)
    axes = _axes(axis, x.ndim, "mean")
    if _count(x.shape, axes) == 0:
        raise ShapeError(f"mean: cannot average over an empty axis of shape {x.shape}")
    return MEAN.apply(x, axis=axes, keepdims=keepdims)


# m = max(x): the gradient goes to the elements equal to the extreme, split evenly among ties
def _extreme_d_x(g, x, out, axis, keepdims):
    winners = _data(x) == _data(_expand_reduced(out, x.shape, axis, keepdims))
    share_of_each = winners / winners.sum(axis=axis, keepdims=True)
    return share_of_each * _expand_reduced(g, x.shape, axis, keepdims)


MAX = Op(
    "max", lambda x, axis, keepdims: _scalar_or_array(np.max(x, axis=axis, keepdims=keepdims)), inputs="x",
    as_torch=_forms.torch_reduction("torch.amax"), as_onnx=_forms.onnx_reduction("ReduceMax"),
    code="np.max(x, axis=axis, keepdims=keepdims)",
    d_x=_extreme_d_x,
    formula="d max(x)/dx_i = 1 for the maximum (split among ties)", methods=("max",), numpy=("max", "amax"),
)
MIN = Op(
    "min", lambda x, axis, keepdims: _scalar_or_array(np.min(x, axis=axis, keepdims=keepdims)), inputs="x",
    as_torch=_forms.torch_reduction("torch.amin"), as_onnx=_forms.onnx_reduction("ReduceMin"),
    code="np.min(x, axis=axis, keepdims=keepdims)",
    d_x=_extreme_d_x,
    formula="d min(x)/dx_i = 1 for the minimum (split among ties)", methods=("min",), numpy=("min", "amin"),
)


def _extreme(op, x, axis, keepdims):
    x = as_value(x)
    axes = _axes(axis, x.ndim, op.name)
    if any(x.shape[k] == 0 for k in axes):
        raise ShapeError(f"{op.name}: cannot take the {op.name} over an empty axis of shape {x.shape}")
    return op.apply(x, axis=axes, keepdims=keepdims)


@MAX.public
def max(x, axis=None, keepdims=False):
    """Largest element over `axis`; tied maxima share the gradient equally.

    >>> x = Value([1.0, 3.0, 3.0]); m = max(x); m.backward()
    >>> float(m.data), x.grad.tolist()                # the two tied maxima split the gradient
    (3.0, [0.0, 0.5, 0.5])
    """
    return _extreme(MAX, x, axis, keepdims)


@MIN.public
def min(x, axis=None, keepdims=False):
    """Smallest element over `axis`; tied minima share the gradient equally.

    >>> x = Value([[4.0, 1.0], [2.0, 5.0]]); m = min(x, axis=1); m.sum().backward()
    >>> m.data.tolist(), x.grad.tolist()              # each row's smallest element gets the gradient
    ([1.0, 2.0], [[0.0, 1.0], [1.0, 0.0]])
    """
    return _extreme(MIN, x, axis, keepdims)


# v = var(x):  dv/dx_i = 2 (x_i - mean) / (n - ddof)
def _var_d_x(g, x, out, axis, ddof, keepdims):
    centred = x - x.mean(axis=axis, keepdims=True)
    scale = 2 / (_count(x.shape, axis) - ddof)
    return centred * (_expand_reduced(g, x.shape, axis, keepdims) * scale)  # the reduced g scaled first


VAR = Op(
    "var", lambda x, axis, ddof, keepdims: _scalar_or_array(x.var(axis=axis, ddof=ddof, keepdims=keepdims)),
    as_torch=_forms.torch_reduction("torch.var", correction="ddof"), as_onnx=_forms.onnx_variance(),
    inputs="x", code="x.var(axis=axis, ddof=ddof, keepdims=keepdims)",
    d_x=_var_d_x,
    formula="d var(x)/dx_i = 2 (x_i - mean) / (n - ddof)", methods=("var",),
)


@VAR.public
def var(x, axis=None, ddof=0, keepdims=False):
    """Variance over `axis`; ``ddof=0`` divides by n (NumPy's default), 1 by n - 1.

    >>> x = Value([1.0, 2.0, 3.0, 6.0]); v = var(x); v.backward()
    >>> float(v.data), x.grad.tolist()                # mean 3: (4+1+0+9)/4, gradient 2 (x - 3)/4
    (3.5, [-1.0, -0.5, 0.0, 1.5])
    >>> round(float(var(x, ddof=1).data), 4)          # 14/3
    4.6667
    """
    x = as_value(x)
    axes = _axes(axis, x.ndim, "var")
    count = _count(x.shape, axes)
    if count - ddof <= 0:
        raise ShapeError(f"var: {count} elements over axis {axis} of shape {x.shape} are too few for ddof={ddof}")
    return VAR.apply(x, axis=axes, ddof=ddof, keepdims=keepdims)


# z = (x - mean) / sqrt(var + eps), mean and (biased) var taken over `axis`:
#   dL/dx = (g - mean(g) - z * mean(g * z)) / sqrt(var + eps)
# (the mean and the variance depend on every x: hence the two mean terms)
def _standardize_onnx(g, x, axis, eps):
    axes = g.ints(axis)
    centred = g.op("Sub", x, g.op("ReduceMean", x, axes, keepdims=1))
    variance = g.op("ReduceMean", g.op("Mul", centred, centred), axes, keepdims=1)
    return g.op("Div", centred, g.op("Sqrt", g.op("Add", variance, g.const(float(eps)))))


def _standardize_parts(x, axis, eps):
    """The forward's steps: (mean, x - mean, variance, 1 / sqrt(variance + eps))."""
    mean = x.mean(axis=axis, keepdims=True)
    centred = x - mean
    variance = (centred * centred).mean(axis=axis, keepdims=True)
    return mean, centred, variance, 1 / np.sqrt(variance + eps)


def _standardize_data(x, axis, eps):
    """The output, and the statistics it was made with: the rule reads ``inv_std`` again,
    batch norm's running statistics read ``mean`` and ``variance``."""
    mean, centred, variance, inv_std = _standardize_parts(x, axis, eps)
    return centred * inv_std, mean, variance, inv_std


def _standardize_d_x(g, x, out, axis, eps, mean=None, variance=None, inv_std=None):
    if isinstance(x, Value):  # create_graph: 1/sqrt(var + eps) as a node of x, to differentiate it again
        inv_std = (x.var(axis=axis, keepdims=True) + eps) ** -0.5
    elif inv_std is None:
        inv_std = _standardize_parts(x, axis, eps)[3]
    return (g - g.mean(axis=axis, keepdims=True) - out * (g * out).mean(axis=axis, keepdims=True)) * inv_std


STANDARDIZE = Op(
    "standardize", _standardize_data, inputs="x", code="(x - x.mean(axis, keepdims=True)) / np.sqrt(x.var(axis, keepdims=True) + eps)",
    as_torch="(x - x.mean(dim=axis, keepdim=True)) / torch.sqrt(x.var(dim=axis, correction=0, keepdim=True) + eps)",
    as_onnx=_standardize_onnx,
    # the batch's statistics, computed once: the rule reads inv_std, batch norm's running statistics mean and variance
    saves={"mean": "x", "variance": "x", "inv_std": "x"},
    d_x=_standardize_d_x,
    formula="dL/dx = (g - mean(g) - z mean(g z)) / sqrt(var + eps)",
)


@STANDARDIZE.public
def standardize(x, axis=0, eps=1e-5, return_stats=False):
    """``(x - mean) / sqrt(var + eps)`` over `axis`, the normalising step of batch
    normalisation, as one operation (fewer passes over the data than composing
    mean, var and sqrt). The variance is the biased one (divides by n). With
    ``return_stats=True`` also returns the mean and the variance (NumPy arrays,
    reduced axes kept), for running statistics.

    >>> x = Value([[1.0], [2.0], [6.0]])                # mean 3, variance 14/3
    >>> z = standardize(x, axis=0, eps=0.0)
    >>> [round(v, 4) for v in z.data.ravel().tolist()]
    [-0.9258, -0.4629, 1.3887]
    >>> z[0, 0].backward()                               # moving every x together leaves z alone:
    >>> round(float(x.grad.sum()), 12)                   # the gradient sums to 0
    0.0
    """
    x = as_value(x)
    axes = _axes(axis, x.ndim, "standardize")
    if _count(x.shape, axes) == 0:
        raise ShapeError(f"standardize: cannot normalise over an empty axis of shape {x.shape}")
    out = STANDARDIZE.apply(x, axis=axes, eps=eps)
    if not return_stats:
        return out
    # (derived data: a compiled step makes them again at every call, from the arrays its program keeps)
    if out._saved:
        return (out, *(_ops.derived_data(_same, out._saved[name], name=name) for name in ("mean", "variance")))
    return (out, *(_ops.derived_data(lambda d, k=k: _standardize_parts(d, axes, eps)[k], x, name=name)
                   for k, name in ((0, "mean"), (2, "variance"))))


def _same(array):
    return array
