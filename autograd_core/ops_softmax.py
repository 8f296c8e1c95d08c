"""Log-sum-exp, softmax, log-softmax and the cross-entropies built on them,
stable by construction: each subtracts the maximum before ``exp``, and the
losses go through ``log_softmax`` or clamp their logs, so they never take
``log(0)``. Operations of the registry of ``ops.py`` (see its docstring).
"""

from __future__ import annotations

import numpy as np

from . import _forms
from .engine import Value, as_value
from .errors import ShapeError
from . import ops as _ops  # (ops.data_check by its attribute: compile replaces it while tracing)
from .ops import F, Op, _axes, _expand_reduced, _one_axis, _operands, _scalar_or_array


def _shifted_by_max(data, axis):
    """x - max(x) along `axis`, so exp() never overflows (all-(-inf) rows stay -inf)."""
    if data.size == 0:  # nothing to shift (and np.max refuses an empty axis)
        return data, np.zeros_like(data.sum(axis=axis, keepdims=True))
    peak = data.max(axis=axis, keepdims=True)  # the method: np.max's Python wrapper costs 1.5 µs more
    peak = np.where(np.isfinite(peak), peak, 0)
    return data - peak, peak


def _logsumexp_onnx(g, x, axis, keepdims):
    if not axis:
        return g.op("Identity", x)
    axes = g.ints(axis)
    peak = g.op("ReduceMax", x, axes, keepdims=1)  # (finite logits: the shift keeps exp from overflowing)
    total = g.op("ReduceSum", g.op("Exp", g.op("Sub", x, peak)), axes, keepdims=1)
    result = g.op("Add", g.op("Log", total), peak)
    return result if keepdims else g.op("Squeeze", result, axes)


def _logsumexp_data(x, axis, keepdims):
    shifted, peak = _shifted_by_max(x, axis)
    with np.errstate(divide="ignore"):
        data = np.log(np.exp(shifted).sum(axis=axis, keepdims=True)) + peak
    if not keepdims:
        data = data.reshape([n for k, n in enumerate(x.shape) if k not in axis])
    return _scalar_or_array(data)


# d logsumexp(x)/dx_i = exp(x_i - logsumexp(x)) = softmax(x)_i
LOGSUMEXP = Op(
    "logsumexp", _logsumexp_data, inputs="x", code="np.log(np.exp(x).sum(axis=axis, keepdims=keepdims))",
    as_torch=_forms.torch_reduction("torch.logsumexp", needs_dim=True), as_onnx=_logsumexp_onnx,
    d_x=lambda g, x, out, axis, keepdims: (
        F.exp(x - _expand_reduced(out, x.shape, axis, keepdims)) * _expand_reduced(g, x.shape, axis, keepdims)
    ),
    formula="d logsumexp(x)/dx_i = softmax(x)_i", methods=("logsumexp",),
)


@LOGSUMEXP.public
def logsumexp(x, axis=None, keepdims=False):
    """``log(sum(exp(x)))`` over `axis`, without overflow for large x.

    >>> x = Value([0.0, np.log(3.0)]); y = logsumexp(x); y.backward()
    >>> round(float(y.data), 4), np.round(x.grad, 4).tolist()   # log(1 + 3); the gradient is softmax(x)
    (1.3863, [0.25, 0.75])
    >>> round(float(logsumexp(Value([1000.0, 1000.0])).data), 4)   # 1000 + log 2, no overflow
    1000.6931
    """
    x = as_value(x)
    return LOGSUMEXP.apply(x, axis=_axes(axis, x.ndim, "logsumexp"), keepdims=keepdims)


def _softmax_data(x, axis):
    e = np.exp(_shifted_by_max(x, axis)[0])
    return _scalar_or_array(e / e.sum(axis=axis, keepdims=True))


# ds_i/dx_j = s_i (delta_ij - s_j), so dL/dx = s * (g - sum(g * s))
SOFTMAX = Op(
    "softmax", _softmax_data, inputs="x", code="np.exp(x) / np.exp(x).sum(axis=axis, keepdims=True)",
    as_torch="torch.softmax(x, dim=axis)", as_onnx=lambda g, x, axis: g.op("Softmax", x, axis=axis),
    d_x=lambda g, x, out, axis: out * (g - (g * out).sum(axis=axis, keepdims=True)),
    formula="ds_i/dx_j = s_i (delta_ij - s_j)", methods=("softmax",),
    course_name='P',
)


@SOFTMAX.public
def softmax(x, axis=-1):
    """``exp(x) / sum(exp(x))`` along `axis`: positive, sums to 1, keeps the order.

    >>> x = Value([1.0, 2.0, 3.0]); p = softmax(x); p[2].backward()
    >>> np.round(p.data, 4).tolist()
    [0.09, 0.2447, 0.6652]
    >>> np.round(x.grad, 4).tolist()                  # d p_2/dx_j = p_2 (delta_2j - p_j): sums to 0
    [-0.0599, -0.1628, 0.2227]
    """
    x = as_value(x)
    return SOFTMAX.apply(x, axis=_one_axis(axis, x.ndim, "softmax"))


def _log_softmax_data(x, axis):
    shifted, _ = _shifted_by_max(x, axis)
    with np.errstate(divide="ignore"):
        return _scalar_or_array(shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True)))


# d log_softmax(x)_i/dx_j = delta_ij - softmax(x)_j
LOG_SOFTMAX = Op(
    "log_softmax", _log_softmax_data, inputs="x", code="x - np.log(np.exp(x).sum(axis=axis, keepdims=True))",
    as_torch="torch.log_softmax(x, dim=axis)", as_onnx=lambda g, x, axis: g.op("LogSoftmax", x, axis=axis),
    d_x=lambda g, x, out, axis: g - F.exp(out) * g.sum(axis=axis, keepdims=True),
    formula="d log_softmax(x)_i/dx_j = delta_ij - softmax(x)_j", methods=("log_softmax",),
)


@LOG_SOFTMAX.public
def log_softmax(x, axis=-1):
    """``x - logsumexp(x)`` along `axis`, finite for logits of any size.

    >>> x = Value([1.0, 2.0, 3.0]); y = log_softmax(x); y[2].backward()
    >>> np.round(y.data, 4).tolist()
    [-2.4076, -1.4076, -0.4076]
    >>> np.round(x.grad, 4).tolist()                  # delta_2j - softmax(x)_j
    [-0.09, -0.2447, 0.3348]
    """
    x = as_value(x)
    return LOG_SOFTMAX.apply(x, axis=_one_axis(axis, x.ndim, "log_softmax"))


# loss = -sum_c y_c log p_c with p = softmax(x) (a class with y_c = 0 adds 0, even at p_c = 0),
# p kept for the backward (the forward has it):
#   d loss/dx = p * sum_c(y_c) - y   (p - y when y is a probability vector)
#   d loss/dy = -log p
def _softmax_cross_entropy_onnx(g, x, y, axis):
    terms = g.op("Mul", y, g.op("LogSoftmax", x, axis=axis))
    return g.op("Neg", g.op("ReduceSum", terms, g.ints([axis]), keepdims=0))


def _softmax_cross_entropy_data(x, y, axis):
    shifted, _ = _shifted_by_max(x, axis)
    exps = np.exp(shifted)
    total = exps.sum(axis=axis, keepdims=True)
    with np.errstate(divide="ignore"):
        log_p = shifted - np.log(total)
    if np.minimum.reduce(log_p, axis=None) == -np.inf:
        # A logit of -inf has log p = -inf; where its class has target 0 the term is
        # 0 (0 log 0 = 0, as xlogy and PyTorch's class-index loss count it), not 0 * -inf = NaN.
        # (Only then: on a small network's step the two extra passes cost 3%.)
        log_p = np.where(y == 0, 0, log_p)
    return _scalar_or_array(-(y * log_p).sum(axis=axis)), exps / total


def _per_class(g, x, axis):
    return _expand_reduced(g, x.shape, () if axis is None else (axis,), False)


def _softmax_cross_entropy_d_x(g, x, y, out, axis, probs=None):
    if probs is None or isinstance(x, Value):  # not kept, or create_graph: p as a node, to differentiate again
        probs = F.softmax(x, axis)
    return _per_class(g, x, axis) * (probs * y.sum(axis=axis, keepdims=True) - y)


SOFTMAX_CROSS_ENTROPY = Op(
    "softmax_cross_entropy", _softmax_cross_entropy_data, inputs="x, y", saves={"probs": "x"},
    as_torch="-(y * torch.log_softmax(x, dim=axis)).sum(dim=axis)", as_onnx=_softmax_cross_entropy_onnx,
    code="-(y * log_softmax(x, axis)).sum(axis=axis), and P = softmax(x, axis)",
    d_x=_softmax_cross_entropy_d_x,
    d_y=lambda g, x, y, out, axis, probs=None: -(_per_class(g, x, axis) * F.log_softmax(x, axis)),
    formula="d CE(softmax(x), y)/dx = p - y (p = softmax(x))",
    course_name='losses',
    as_numpy={"x": "np.expand_dims(g, axis) * (probs * y.sum(axis=axis, keepdims=True) - y)"},
)


@SOFTMAX_CROSS_ENTROPY.public
def softmax_cross_entropy(logits, targets, axis=-1):
    """Cross-entropy of `targets` against ``softmax(logits)`` along `axis`, fused:
    ``-sum(targets * log_softmax(logits), axis)``, with the gradient ``p - y``
    computed in one step (stable for logits of any size). `targets` has the
    logits' shape (one-hot rows, probabilities, or weighted rows); the result
    has the logits' shape without `axis`.

    >>> loss = softmax_cross_entropy(Value([[2.0, 0.0]]), [[1.0, 0.0]])
    >>> round(float(loss.data[0]), 4)                 # -log(e^2 / (e^2 + 1))
    0.1269
    """
    x = as_value(logits)
    if isinstance(targets, Value):
        y = targets
    else:
        y = as_value(np.asarray(targets, dtype=x.dtype))
    if x.shape != y.shape:
        raise ShapeError(
            f"softmax_cross_entropy: logits have shape {x.shape} but targets {y.shape}; targets must be "
            f"one row of class weights per row of logits (for class indices, use nn.functional.cross_entropy)"
        )
    return SOFTMAX_CROSS_ENTROPY.apply(x, y, axis=_one_axis(axis, x.ndim, "softmax_cross_entropy"))


# l = -(y log p + (1 - y) log(1 - p)), each log clamped at -100 (PyTorch's BCELoss):
#   dl/dp = (p - y) / (p (1 - p)), the denominator kept >= 1e-12 so that a
#           confidently wrong p of exactly 0 or 1 still gets a (huge, finite) gradient
#   dl/dy = log(1 - p) - log(p), with the same clamps
_BCE_LOG_FLOOR = -100.0
_BCE_EPS = float(np.float32(1e-12))  # PyTorch keeps this epsilon as a float32 (9.99999996e-13)


def _binary_cross_entropy_onnx(g, p, y):
    floor, one = g.const(_BCE_LOG_FLOOR), g.const(1.0)
    log_p = g.op("Max", g.op("Log", p), floor)
    log_not_p = g.op("Max", g.op("Log", g.op("Sub", one, p)), floor)
    return g.op("Neg", g.op("Add", g.op("Mul", y, log_p), g.op("Mul", g.op("Sub", one, y), log_not_p)))


def _binary_cross_entropy_data(p, y):
    with np.errstate(divide="ignore"):
        log_p = np.maximum(np.log(p), _BCE_LOG_FLOOR)
        log_not_p = np.maximum(np.log1p(-p), _BCE_LOG_FLOOR)
    return _scalar_or_array(-(y * log_p + (1 - y) * log_not_p))


BINARY_CROSS_ENTROPY = Op(
    "binary_cross_entropy", _binary_cross_entropy_data, inputs="p, y", elementwise=True,
    as_torch="-(y * torch.log(p).clamp(min=-100.0) + (1 - y) * torch.log1p(-p).clamp(min=-100.0))",
    as_onnx=_binary_cross_entropy_onnx,
    code="-(y * np.log(p) + (1 - y) * np.log1p(-p))",
    d_p=lambda p, y, out: (p - y) / F.maximum(p * (1 - p), _BCE_EPS),
    d_y=lambda p, y, out: F.maximum(F.log(1 - p), _BCE_LOG_FLOOR) - F.maximum(F.log(p), _BCE_LOG_FLOOR),
    formula="d BCE(p, y)/dp = (p - y) / (p (1 - p))",
)


def _probabilities(p):
    if not np.all((p >= 0) & (p <= 1)):  # NaN fails both comparisons too
        raise ValueError(
            "binary_cross_entropy: all input elements must be probabilities in [0, 1]; "
            "for raw scores (logits) use binary_cross_entropy_with_logits"
        )


@BINARY_CROSS_ENTROPY.public
def binary_cross_entropy(probs, targets):
    """Elementwise binary cross-entropy ``-(y log p + (1 - y) log(1 - p))`` of
    probabilities `probs` against `targets`, each log clamped at -100 as in
    PyTorch, so ``p = 0`` or ``1`` gives a finite loss and a finite gradient.
    A `probs` outside [0, 1] (or NaN) is refused with a ValueError.

    >>> round(float(binary_cross_entropy(Value(0.8), 1.0).data), 4)   # -log 0.8
    0.2231
    """
    p, y = _operands(probs, targets)
    _ops.data_check(_probabilities, p)
    try:
        return BINARY_CROSS_ENTROPY.apply(p, y)
    except ValueError:
        raise ShapeError(f"binary_cross_entropy: probs {p.shape} and targets {y.shape} cannot be broadcast together") from None
