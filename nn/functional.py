"""The layers, activations and losses of ``nn`` as plain functions.

Each one is a few ``autograd_core`` operations, so its gradient comes from the
engine; only the fused softmax-cross-entropy has a rule of its own, and that
rule is an engine operation (``autograd_core.softmax_cross_entropy``).
Arguments follow PyTorch's ``torch.nn.functional`` (``dim=``, ``reduction=``).
Inputs may be Values or NumPy data (data becomes a constant in the graph).

>>> import numpy as np
>>> from nn import functional as F
>>> logits = np.array([[1.43, -0.4, 0.23]])       # the iris example of the course
>>> np.round(F.softmax(logits, dim=1).data, 2)
array([[0.68, 0.11, 0.21]])
"""

from __future__ import annotations

import math

import numpy as np

import autograd_core as ac
from autograd_core import Value
from autograd_core.conv import adaptive_avg_pool2d, avg_pool2d, conv1d, conv2d, fold, max_pool2d, pad, unfold
from autograd_core.conv_transpose import conv_transpose1d, conv_transpose2d
from autograd_core.resample import interpolate, max_unpool2d
from autograd_core.errors import ShapeError

from autograd_core.compile import CompileError, effect, host_array, is_tracing
from autograd_core.compile.tracer import as_eager_value, is_eager_value

from ._random import generator_from, of_each_call

__all__ = [
    "linear", "relu", "sigmoid", "tanh", "leaky_relu", "prelu", "elu", "selu", "gelu", "softplus",
    "silu", "relu6", "hardtanh", "hardsigmoid", "hardswish", "mish", "celu", "softsign", "logsigmoid",
    "softmin", "softmax", "log_softmax", "dropout", "batch_norm", "one_hot", "argmax", "Indices",
    "cross_entropy", "nll_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits",
    "mse_loss", "l1_loss", "kl_div", "multi_margin_loss", "entropy", "kl_divergence",
    "conv1d", "conv2d", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "pad", "unfold", "fold", "dropout2d",
    "conv_transpose1d", "conv_transpose2d", "interpolate", "max_unpool2d",
]


def _value(x, what="input"):
    """Values pass through; NumPy data becomes a constant Value."""
    if isinstance(x, Value):
        return as_eager_value(x)  # (an array argument of a compiled function: made a Value, as eager does)
    try:
        return Value(x, requires_grad=False)
    except TypeError as exc:
        raise TypeError(f"{what}: {exc}") from None


def _data(x):
    return x.data if isinstance(x, Value) else np.asarray(x)


# ==========================================================================
# Layers
# ==========================================================================
def linear(input, weight, bias=None):
    """``input @ weight.T + bias`` with ``weight`` of shape ``(out, in)`` (PyTorch's layout).

    >>> linear(np.ones((1, 2)), Value([[1.0, 2.0]]), Value([0.5])).data
    array([[3.5]])
    """
    return ac.linear(_value(input), weight, bias)  # one engine op: dW = dy^T x comes out in W's own layout


# ==========================================================================
# Activations
# ==========================================================================
def relu(input):
    """``max(x, 0)``; the gradient at 0 is 0 (as PyTorch).

    >>> relu(np.array([-1.0, 2.0])).data
    array([0., 2.])
    """
    return ac.relu(_value(input))


def sigmoid(input):
    """``1 / (1 + exp(-x))``.

    >>> float(sigmoid(np.array(0.0)).data)
    0.5
    """
    return ac.sigmoid(_value(input))


def tanh(input):
    """Hyperbolic tangent.

    >>> float(tanh(np.array(0.0)).data)
    0.0
    """
    return ac.tanh(_value(input))


def leaky_relu(input, negative_slope=0.01):
    """``x`` where ``x > 0``, else ``negative_slope * x``.

    >>> leaky_relu(np.array([-2.0, 3.0]), 0.1).data
    array([-0.2,  3. ])
    """
    x = _value(input)
    # `x > 0` is a plain boolean array; reading `x.data` here would make the
    # engine keep a copy of x (it guards data a pending backward needs)
    return ac.where(x > 0, x, x * negative_slope)


def _channel_shaped(param, x):
    """A per-channel parameter of shape (C,) laid out to broadcast over (N, C, ...)."""
    if param.ndim == 1 and param.shape[0] > 1 and x.ndim > 2:
        return param.reshape((param.shape[0],) + (1,) * (x.ndim - 2))
    return param


def prelu(input, weight):
    """``x`` where ``x > 0``, else ``weight * x`` (one learnable slope, or one per channel, dim 1).

    >>> prelu(np.array([-2.0, 3.0]), Value([0.25])).data
    array([-0.5,  3. ])
    """
    x = _value(input)
    if weight.size > 1 and (x.ndim < 2 or x.shape[1] != weight.size):
        raise ShapeError(f"prelu: {weight.size} slopes need inputs (N, {weight.size}, ...), got shape {x.shape}")
    return ac.where(x > 0, x, x * _channel_shaped(weight, x))


def elu(input, alpha=1.0):
    """``x`` where ``x > 0``, else ``alpha * (exp(x) - 1)``.

    >>> np.round(elu(np.array([-1.0, 2.0])).data, 4)
    array([-0.6321,  2.    ])
    """
    x = _value(input)
    # exp of the clipped input: the unused branch must not overflow, or its
    # zero gradient would meet an infinite local gradient (0 * inf = NaN)
    negative_part = (ac.clip(x, max=0.0).exp() - 1) * alpha
    return ac.where(x > 0, x, negative_part)


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def selu(input):
    """``scale * elu(x, alpha)`` with the self-normalising constants
    ``alpha = 1.6733``, ``scale = 1.0507``.

    >>> round(float(selu(np.array(1.0)).data), 4)
    1.0507
    """
    return elu(input, _SELU_ALPHA) * _SELU_SCALE


_SQRT_HALF = math.sqrt(0.5)
_SQRT_TWO_OVER_PI = math.sqrt(2 / math.pi)


def gelu(input, approximate="none"):
    """``x * Phi(x)`` with Phi the standard normal CDF: exactly through ``erf``
    (``approximate='none'``) or through PyTorch's ``tanh`` formula
    (``approximate='tanh'``).

    >>> round(float(gelu(np.array(1.0)).data), 6)
    0.841345
    """
    x = _value(input)
    if approximate == "none":
        return x * 0.5 * (1 + ac.erf(x * _SQRT_HALF))
    if approximate == "tanh":
        return x * 0.5 * (1 + ac.tanh((x + 0.044715 * x * x * x) * _SQRT_TWO_OVER_PI))
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def softplus(input, beta=1.0, threshold=20.0):
    """``log(1 + exp(beta * x)) / beta``, and ``x`` itself where ``beta * x > threshold``
    (as PyTorch, which switches to the identity there).

    >>> round(float(softplus(np.array(0.0)).data), 4)      # log 2
    0.6931
    """
    if beta == 0:
        raise ValueError(f"softplus: beta must not be 0 (the result is divided by it), got {beta}")
    x = _value(input)
    scaled = x * beta if beta != 1 else x
    smooth = ac.softplus(scaled) / beta if beta != 1 else ac.softplus(scaled)
    return ac.where(scaled > threshold, x, smooth)


def silu(input):
    """``x * sigmoid(x)`` (also called swish).

    >>> round(float(silu(np.array(1.0)).data), 4)          # 1 / (1 + e^-1)
    0.7311
    """
    x = _value(input)
    return x * ac.sigmoid(x)


def relu6(input, inplace=False):
    """``min(max(x, 0), 6)``; gradient 1 for 0 < x < 6, else 0 (one engine op).

    >>> relu6(np.array([-1.0, 3.0, 9.0])).data
    array([0., 3., 6.])
    """
    _no_inplace(inplace, "relu6")
    return ac.relu6(_value(input))


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    """``x`` clamped to ``[min_val, max_val]``; gradient 1 strictly inside, else 0.

    >>> hardtanh(np.array([-2.0, 0.5, 2.0])).data
    array([-1. ,  0.5,  1. ])
    """
    _no_inplace(inplace, "hardtanh")
    return ac.hardtanh(_value(input), min_val, max_val)


def hardsigmoid(input, inplace=False):
    """``relu6(x + 3) / 6``: 0 below -3, 1 above 3, linear between.

    >>> hardsigmoid(np.array([-4.0, 0.0, 4.0])).data
    array([0. , 0.5, 1. ])
    """
    _no_inplace(inplace, "hardsigmoid")
    return ac.hardsigmoid(_value(input))


def hardswish(input, inplace=False):
    """``x * relu6(x + 3) / 6`` (MobileNetV3).

    >>> hardswish(np.array([-4.0, 1.0, 4.0])).data.round(4)
    array([-0.    ,  0.6667,  4.    ])
    """
    _no_inplace(inplace, "hardswish")
    return ac.hardswish(_value(input))


def mish(input, inplace=False):
    """``x * tanh(softplus(x))``.

    >>> round(float(mish(np.array(1.0)).data), 4)     # tanh(log(1 + e))
    0.8651
    """
    _no_inplace(inplace, "mish")
    return ac.mish(_value(input))


def celu(input, alpha=1.0, inplace=False):
    """``x`` for x > 0, else ``alpha * (exp(x / alpha) - 1)``.

    >>> celu(np.array([-1e4, 2.0]), alpha=0.5).data
    array([-0.5,  2. ])
    """
    _no_inplace(inplace, "celu")
    return ac.celu(_value(input), alpha)


def softsign(input):
    """``x / (1 + |x|)``.

    >>> softsign(np.array([-1.0, 3.0])).data
    array([-0.5 ,  0.75])
    """
    return ac.softsign(_value(input))


def logsigmoid(input):
    """``log(sigmoid(x))``, finite for any x.

    >>> logsigmoid(np.array([0.0, -1e4])).data.round(4).tolist()   # log 1/2, and no overflow far left
    [-0.6931, -10000.0]
    """
    return ac.logsigmoid(_value(input))


def softmin(input, dim=None):
    """``softmax(-x)`` along `dim`: the smallest entries get the largest weights.

    >>> softmin(np.array([0.0, np.log(3.0)]), dim=0).data.round(4)
    array([0.75, 0.25])
    """
    x = _value(input)
    return ac.softmax(-x, axis=_softmax_dim(x, dim, "softmin"))


def _no_inplace(inplace, name):
    if inplace:
        raise ValueError(f"{name}: inplace=True is not supported: a Value's data is never overwritten by an operation "
                         f"(the graph may need it); call it without inplace")


def _softmax_dim(x, dim, name):
    if dim is None:
        # PyTorch's choice when no dim is given: 0 for 0-, 1- and 3-d inputs, else 1
        return 0 if x.ndim in (0, 1, 3) else 1
    if not -x.ndim <= dim < max(x.ndim, 1):
        raise ShapeError(f"{name}: dim {dim} is out of range for an input of shape {x.shape}")
    return dim


def softmax(input, dim=None):
    """``exp(x) / sum(exp(x))`` along `dim`, stable for large logits (the max is
    subtracted first). Pass `dim` (for a batch of rows ``(N, C)`` it is 1).

    >>> softmax(np.array([1000.0, 1000.0]), dim=0).data
    array([0.5, 0.5])
    """
    x = _value(input)
    return ac.softmax(x, axis=_softmax_dim(x, dim, "softmax"))


def log_softmax(input, dim=None):
    """``x - logsumexp(x)`` along `dim`: finite for logits of any size.

    >>> log_softmax(np.array([0.0, 1e4]), dim=0).data
    array([-10000.,      0.])
    """
    x = _value(input)
    return ac.log_softmax(x, axis=_softmax_dim(x, dim, "log_softmax"))


class Indices(np.ndarray):
    """Integer indices returned by :func:`argmax`: plain NumPy data with no graph.

    Picking the largest entry is a step function, whose derivative is zero
    almost everywhere and undefined at ties, so no gradient flows through it.
    Calling ``backward()`` on it explains this instead of failing obscurely.

    >>> predicted = argmax(np.array([[0.1, 2.0, -1.0], [3.0, 0.0, 0.5]]), dim=1)
    >>> predicted.tolist()
    [1, 0]
    >>> predicted.backward()                          # doctest: +ELLIPSIS
    Traceback (most recent call last):
    RuntimeError: argmax has no gradient: ...
    """

    def backward(self, *args, **kwargs):
        """Refuse, explaining why argmax carries no gradient."""
        raise RuntimeError(
            "argmax has no gradient: choosing the index of the largest entry is a step function "
            "(its derivative is 0 almost everywhere), so it carries no graph. Train with a smooth "
            "loss on the logits instead, e.g. cross_entropy(logits, target), and use argmax only "
            "to read off predictions"
        )

    @property
    def requires_grad(self):
        return False

    def __array_wrap__(self, array, context=None, return_scalar=False):
        # results computed from indices (predictions == labels, .mean()) are plain NumPy data
        array = np.asarray(array).view(np.ndarray)
        return array[()] if return_scalar else array


def argmax(input, dim=None, keepdim=False):
    """Index of the largest entry along `dim` (over everything when None).

    The result is NumPy integer data, **not** a Value: argmax has no gradient
    (it is a step function), so nothing can be backpropagated through it; use
    it to read predictions, and ``softmax`` / ``cross_entropy`` to train.

    >>> argmax(np.array([[1.43, -0.4, 0.23]]), dim=1)
    Indices([0])
    """
    def indices(data):
        if dim is None:
            result = np.asarray(np.argmax(data))
            return result.reshape((1,) * data.ndim) if keepdim else result
        return np.argmax(data, axis=dim, keepdims=keepdim)

    if isinstance(input, Value) and is_tracing():  # (a compiled step finds them again at every call)
        return ac.ops.derived_data(indices, input, name="argmax")
    return np.asarray(indices(_data(input))).view(Indices)


def one_hot(indices, num_classes=-1):
    """Rows of zeros with a 1 at each index: shape ``indices.shape + (num_classes,)``
    (float64; ``num_classes=-1`` uses ``max(indices) + 1``). A compiled step makes
    the rows again from each call's indices (give `num_classes` there).

    >>> one_hot(np.array([0, 2]), 3)
    array([[1., 0., 0.],
           [0., 0., 1.]])
    """
    if is_tracing():  # a host array: a compiled step makes the rows again from each call's labels
        if num_classes < 0:
            raise CompileError(
                "one_hot(num_classes=-1): the number of classes would be read from the largest index of the "
                "traced call, and kept; pass num_classes (e.g. one_hot(y, 10)) in a compiled function"
            )
        # (followed as a comparison's mask is: its casts and arithmetic, oh.astype(np.float32), are made again too)
        return ac.ops.derived_data(_one_hot_rows, indices, num_classes, name="one_hot")
    if num_classes < 0:
        labels = np.asarray(indices)
        num_classes = int(labels.max()) + 1 if labels.size and labels.dtype.kind in "iu" else 0
    return _one_hot_rows(indices, num_classes)


def _one_hot_rows(indices, num_classes):
    indices = np.asarray(indices)
    if indices.dtype.kind not in "iu":
        raise TypeError(f"one_hot: indices must be integers, got dtype {indices.dtype}")
    if indices.size and (indices.min() < 0 or indices.max() >= num_classes):
        raise IndexError(f"one_hot: indices must lie in [0, {num_classes}), got {indices.min()}..{indices.max()}")
    return np.eye(num_classes)[indices]


# ==========================================================================
# Regularisation layers
# ==========================================================================
def dropout(input, p=0.5, training=True, generator=None):
    """Inverted dropout: in training, zero each element with probability `p`
    and scale the kept ones by ``1 / (1 - p)`` so the expected value is
    unchanged; outside training (or with ``p=0``) return the input as it is.
    ``p=1`` gives zeros. `generator` (a seed or ``numpy.random.Generator``)
    defaults to the global one set by ``nn.manual_seed``.

    >>> y = dropout(np.ones(8), p=0.5, generator=0)
    >>> sorted(set(y.data.tolist()))
    [0.0, 2.0]
    """
    if not 0 <= p <= 1:
        raise ValueError(f"dropout: p is a probability and must lie in [0, 1], got {p}")
    x = _value(input)
    if not training or p == 0:
        return x
    if p == 1:
        return x * 0.0  # every unit dropped; no division by 1 - p = 0
    # float32 draws for float32 data: half the random bits, about 4x faster
    # (a float32 uniform still resolves probabilities to 2^-24)
    draw = np.float32 if x.dtype == np.float32 else np.float64
    shape, scale = x.shape, x.dtype.type(1 / (1 - p))
    generator = of_each_call(generator)  # (nn.get_generator(): the global one of each call)

    def draw_mask():  # a host array: a compiled step draws a new mask at every call, from the same generator
        keep = generator_from(generator).random(shape, dtype=draw) >= p
        return keep * scale  # bool times a scalar of x's dtype: the mask in x's dtype, in one pass

    return x * host_array(draw_mask, name="mask")


def dropout2d(input, p=0.5, training=True, generator=None):
    """Channel dropout for images: in training, zero each whole channel of
    ``input`` (N, C, H, W) (or (C, H, W)) with probability `p` and scale the
    kept ones by ``1 / (1 - p)``; neighbouring pixels are too alike for
    dropping single ones to regularise much.

    >>> y = dropout2d(np.ones((1, 8, 2, 2)), p=0.5, generator=0)
    >>> sorted(set(y.data[0, :, 0, 0].tolist())), bool((y.data == y.data[:, :, :1, :1]).all())
    ([0.0, 2.0], True)
    """
    if not 0 <= p <= 1:
        raise ValueError(f"dropout2d: p is a probability and must lie in [0, 1], got {p}")
    x = _value(input)
    if x.ndim not in (3, 4):
        raise ShapeError(f"dropout2d: expects input of shape (N, C, H, W) or (C, H, W), got {x.shape}")
    if not training or p == 0:
        return x
    if p == 1:
        return x * 0.0
    draw = np.float32 if x.dtype == np.float32 else np.float64
    shape, scale = x.shape[:-2] + (1, 1), x.dtype.type(1 / (1 - p))  # one draw per channel
    generator = of_each_call(generator)

    def draw_mask():  # a host array: a compiled step draws a new mask at every call
        return (generator_from(generator).random(shape, dtype=draw) >= p) * scale

    return x * host_array(draw_mask, name="mask")


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Batch normalisation over dim 0 and every dim after the channels
    (``(N, C)``, ``(N, C, L)``, ``(N, C, H, W)``), per channel.

    Training: normalise with the batch mean and the biased batch variance, and
    update ``running_mean`` / ``running_var`` (NumPy arrays, in place, when
    given) with ``new = (1 - momentum) * old + momentum * batch``, the running
    variance using the unbiased batch variance. Evaluation: normalise with the
    running statistics. Then scale by `weight` and shift by `bias`.

    >>> np.round(batch_norm(np.array([[1.0], [3.0]]), None, None, training=True).data, 3)
    array([[-1.],
           [ 1.]])
    """
    x = _value(input)
    if x.ndim < 2:
        raise ShapeError(f"batch_norm: expects input of shape (N, C), (N, C, L) or (N, C, H, W), got {x.shape}")
    channels = x.shape[1]
    axes = (0,) + tuple(range(2, x.ndim))
    stat_shape = (1, channels) + (1,) * (x.ndim - 2)
    for name, stat in (("running_mean", running_mean), ("running_var", running_var)):
        if stat is not None and np.shape(stat) != (channels,):
            raise ShapeError(f"batch_norm: {name} has shape {np.shape(stat)} but the input has {channels} channels")
    if training:
        count = math.prod([x.shape[k] for k in axes])
        if count <= 1:
            raise ValueError(f"batch_norm: expected more than 1 value per channel when training, got input of "
                             f"shape {x.shape}; use a larger batch or call .eval()")
        # (x - mean) / sqrt(var + eps) with the batch's mean and biased variance, as one engine op that keeps the
        normalised = ac.standardize(x, axis=axes, eps=eps)  # two for its rule (none where x needs no gradient)
        kept = normalised._saved

        def update_running_stats(mean, var, old_mean=running_mean, old_var=running_var):  # in place
            if old_mean is not None:
                old_mean *= 1 - momentum
                old_mean += momentum * mean.reshape(channels)
            if old_var is not None:
                old_var *= 1 - momentum
                old_var += momentum * var.reshape(channels) * (count / (count - 1))

        if is_tracing() and kept is not None:
            # an effect: a compiled step updates the statistics at every call, from the mean and variance
            # its standardize line keeps (the batch's statistics are computed once); the normalised batch
            # goes in too, so that line is in the program even where the loss does not read it
            effect(lambda z, mean, var: update_running_stats(mean, var), normalised, kept["mean"], kept["variance"])
        elif is_tracing():  # (standardize kept nothing: the update computes them from the batch)
            def update_running_statistics(data):
                update_running_stats(*_batch_stats(data, axes))

            effect(update_running_statistics, x)
        else:
            update_running_stats(*((kept["mean"], kept["variance"]) if kept else _batch_stats(x.data, axes)))
    else:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm: evaluation needs running_mean and running_var (or pass training=True)")
        # host arrays: a compiled step reads the running statistics afresh at every call
        dtype = x.dtype  # (the functions below keep the dtype, not the Value x and the graph behind it)
        scale = host_array(lambda var: (1 / np.sqrt(np.asarray(var) + eps)).astype(dtype).reshape(stat_shape),
                           running_var, name="inv_std")
        shift = host_array(lambda mean: np.asarray(mean, dtype=dtype).reshape(stat_shape), running_mean, name="mean")
        normalised = (x - shift) * scale
    if weight is not None:
        normalised = normalised * _channel_shaped(weight, x)
    if bias is not None:
        normalised = normalised + _channel_shaped(bias, x)
    return normalised


def _batch_stats(data, axes):
    """The batch mean and biased variance, computed as ``standardize`` computes them."""
    mean = data.mean(axis=axes, keepdims=True)
    centred = data - mean
    return mean, (centred * centred).mean(axis=axes, keepdims=True)


# ==========================================================================
# Losses
# ==========================================================================
_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction, name, allowed=_REDUCTIONS):
    if reduction not in allowed:
        raise ValueError(f"{name}: reduction must be one of {', '.join(map(repr, allowed))}, got {reduction!r}")


def _reduce(losses, reduction):
    if reduction == "none":
        return losses
    return losses.sum() if reduction == "sum" else losses.mean()


def _class_rows(x, name):
    """Logits / log-probabilities as (N, C); also says whether the input was a single (C,) row."""
    if x.ndim == 2:
        return x, False
    if x.ndim == 1:
        return x.reshape(1, x.shape[0]), True
    raise ShapeError(f"{name}: input must have shape (N, C) or (C,), got {x.shape}")


def _class_indices(target, n, classes, ignore_index, name):
    """Validate integer class targets; return them (N,) and the mask of counted samples."""
    target = np.asarray(target.data if isinstance(target, Value) else target)
    if target.dtype.kind == "f" and np.all(target == np.round(target)):
        target = target.astype(np.int64)
    if target.dtype.kind not in "iu":
        raise TypeError(f"{name}: class-index targets must be integers, got dtype {target.dtype}")
    target = target.reshape(-1) if target.ndim == 0 else target
    if target.shape != (n,):
        raise ShapeError(f"{name}: {n} rows of scores need {n} class indices, got target of shape {target.shape}")
    counted = target != ignore_index
    in_range = (target >= 0) & (target < classes)
    if in_range.all():  # the usual case; an ignored target in range is a valid index too
        return target, counted
    bad = counted & ~in_range
    if bad.any():
        raise IndexError(
            f"{name}: target {int(target[bad][0])} is not a class index in [0, {classes - 1}] "
            f"(the input has {classes} classes)"
        )
    return np.where(counted, target, 0), counted


def _weights_read(weight):
    """(inputs, kept) of class weights a host function reads: a Value (the loop's own, made in the step)
    or an array as its input, read at every call; other weights (a list) kept by the function."""
    return ((weight,), None) if isinstance(weight, (Value, np.ndarray)) else ((), weight)


def _check_class_weights(weight, classes, name):
    shape = np.shape(_data(weight))
    if shape != (classes,):
        raise ShapeError(f"{name}: weight must have one entry per class, shape ({classes},), got {shape}")


def _class_weights(weight, classes, dtype, name):
    if weight is None:
        return np.ones(classes, dtype=dtype)
    _check_class_weights(weight, classes, name)
    if isinstance(weight, np.ndarray) and weight.dtype == dtype:
        return weight
    # in the scores' dtype, made again at every call from the weights it holds (a Value's read from it:
    # its .data may be replaced)
    return _cast_again(weight if isinstance(weight, (Value, np.ndarray)) else np.asarray(weight), dtype,
                       "class_weights")


def _probabilities(target, target_data, dtype):
    """Class probabilities as eager has them: a Value as it is; an array (a float array argument of a
    compiled function too, a Value only while tracing) in the scores' dtype, by a cast a compiled step
    makes again at every call from the array it is given."""
    if is_eager_value(target):
        return target
    array = target if isinstance(target, Value) else target_data
    array = array if array.dtype == dtype else _cast_again(array, dtype, "target")  # (then smoothed, weighted
    return array if isinstance(array, Value) else Value(array, requires_grad=False)  # by the engine's operations)


def _cast_again(data, dtype, name):
    return host_array(lambda a: np.asarray(a, dtype=dtype), data, name=name)


def _positions_as_rows(x, target, name):
    """Scores ``(N, C, d1, ...)`` (an image of class scores per pixel, as
    PyTorch's losses take them) as rows ``(N * d1 * ..., C)``, with the targets
    flattened to match: class indices ``(N, d1, ...)``, or class probabilities
    of the input's shape. Returns the rows, the targets and ``(N, d1, ...)``,
    the shape of a loss per position."""
    classes, positions = x.shape[1], (x.shape[0],) + x.shape[2:]
    classes_last = (0,) + tuple(range(2, x.ndim)) + (1,)
    rows = x.transpose(classes_last).reshape(-1, classes)
    target_data = _data(target)
    if target_data.dtype.kind == "f" and target_data.shape == x.shape:  # probabilities per position
        target = _probabilities(target, target_data, x.dtype)
        return rows, target.transpose(classes_last).reshape(-1, classes), positions
    if target_data.shape != positions:
        raise ShapeError(
            f"{name}: scores of shape {x.shape} (N, C, d1, ...) need class indices of shape {positions} "
            f"(N, d1, ...) or class probabilities of shape {x.shape}; got target of shape {target_data.shape}"
        )
    # (flattened in a host array: a compiled step makes it again from each call's targets)
    return rows, host_array(np.ravel, target_data, name="targets"), positions


def _total_of(rows):
    """Everything in `rows` added up: m, the count of one-hot rows (a sum of ones, exact
    below 2**24 rows), or the summed weights of weighted ones."""
    return np.add.reduce(rows, axis=None)  # (the ufunc: .sum()'s Python wrapper costs more than the sum)


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """Cross-entropy between ``softmax(input)`` and the targets, from logits ``(N, C)``,
    ``(C,)`` or ``(N, C, d1, d2, ...)`` (a score per class at every position, e.g. per pixel).

    `target` is either class indices (integers, shape ``(N,)``, or ``(N, d1, ...)``) or class
    probabilities (floats, the input's shape). As in PyTorch: `weight` scales
    each class; with class indices, ``reduction='mean'`` divides by the summed
    weights of the counted targets and ``ignore_index`` targets count for
    nothing; ``label_smoothing`` mixes the target with the uniform
    distribution, ``(1 - eps) * target + eps / C``. Computed by the fused
    ``autograd_core.softmax_cross_entropy`` (gradient ``p - y``).

    >>> round(float(cross_entropy(np.array([[1.43, -0.4, 0.23]]), np.array([0])).data), 4)   # -log 0.684
    0.3795
    """
    _check_reduction(reduction, "cross_entropy")
    if not 0 <= label_smoothing <= 1:
        raise ValueError(f"cross_entropy: label_smoothing must lie in [0, 1], got {label_smoothing}")
    if _value(input).ndim > 2:  # (N, C, d1, ...): one row of class scores per position
        rows, targets, positions = _positions_as_rows(_value(input), target, "cross_entropy")
        losses = cross_entropy(rows, targets, weight, ignore_index, reduction, label_smoothing)
        return losses.reshape(positions) if reduction == "none" else losses
    x, single = _class_rows(_value(input), "cross_entropy")
    n, classes = x.shape
    weights = None if weight is None else _class_weights(weight, classes, x.dtype, "cross_entropy")
    target_data = _data(target)
    if target_data.dtype.kind == "f" and target_data.shape == tuple(_value(input).shape):
        losses = _cross_entropy_of_probabilities(x, target, target_data, single, weights, label_smoothing)
        if reduction == "mean":
            return losses.mean()  # (not sum / n: a float16 sum of many rows overflows)
    elif reduction == "mean" and weights is None and not label_smoothing and x.dtype != np.float16:
        return _mean_cross_entropy(x, target, ignore_index)
    else:
        # class indices: each row of `rows` is the one-hot target times the sample's weight
        make_rows = _target_rows(n, classes, x.dtype, ignore_index, label_smoothing, reduction)
        # a compiled step makes the rows from each call's targets (and the weights it holds)
        given = (target,) if weights is None else (target, weights)
        rows = host_array(make_rows, *given, name="Y")
        if reduction == "mean":
            # 1, or 0 for a total weight of 0 (every target ignored), made from each call's targets by itself
            divisor = host_array(lambda *given: make_rows(*given, divisor=True), *given, name="divisor")
            return _weighted_mean_cross_entropy(x, rows, divisor)
        losses = ac.softmax_cross_entropy(x, rows, axis=1)
    if reduction == "sum":
        return losses.sum()
    return losses.reshape(()) if single else losses


def _cross_entropy_of_probabilities(x, target, target_data, single, weights, label_smoothing):
    """The loss of each row against class probabilities (a distribution per row)."""
    probs = _probabilities(target, target_data, x.dtype)
    if single:
        probs = probs.reshape(1, x.shape[1])
    if label_smoothing:
        probs = probs * (1 - label_smoothing) + label_smoothing / x.shape[1]
    if weights is not None:
        probs = probs * weights
    return ac.softmax_cross_entropy(x, probs, axis=1)


def _mean_cross_entropy(x, target, ignore_index):
    """J = (1/m) sum_i L_i, the mean as the notes write it, over the m targets
    that count (all but ignore_index); a compiled step counts them again at
    every call."""
    (n, classes), dtype = x.shape, x.dtype  # (one_hot_rows keeps the dtype, not the Value x and the graph behind it)

    def one_hot_rows(target):
        indices, counted = _class_indices(target, n, classes, ignore_index, "cross_entropy")
        rows = np.zeros((n, classes), dtype=dtype)
        rows[np.arange(n), indices] = counted  # 1 in the target's column; an ignored row stays 0
        return rows

    rows = host_array(one_hot_rows, target, name="Y")
    m = host_array(_total_of, rows, name="m")
    total = ac.softmax_cross_entropy(x, rows, axis=1).sum()
    total.label = "total"  # (the name drawings and compiled programs give it)
    with np.errstate(divide="ignore", invalid="ignore"):  # every target ignored: 0 / 0, NaN as PyTorch
        return total / Value(m, requires_grad=False, label="m")


def _target_rows(n, classes, dtype, ignore_index, label_smoothing, reduction):
    """The function that makes the target rows from class indices (and the class weights, or None): the
    one-hot target times the sample's weight, smoothed, and for the mean divided by the total weight (or,
    with divisor=True, 1, or 0 where that total is 0)."""

    def target_rows(target, weights=None, divisor=False):
        indices, counted = _class_indices(target, n, classes, ignore_index, "cross_entropy")
        rows = np.zeros((n, classes), dtype=dtype)
        if weights is None and not label_smoothing and counted.all():
            # the usual case, apart: the general one below costs a small network a tenth of its step
            rows[np.arange(n), indices] = 1
            total_weight = n
        else:
            every = np.ones(classes, dtype=dtype) if weights is None else weights
            sample_weights = every[indices] * counted
            rows[np.arange(n), indices] = (1 - label_smoothing) * sample_weights
            if label_smoothing:
                rows += (label_smoothing / classes) * every * counted[:, None]
            # (summed in float64 for float16 data, which holds no total above 65504)
            total_weight = sample_weights.sum(dtype=np.float64 if dtype == np.float16 else None)
        if divisor:
            return np.asarray(1 if total_weight else 0, dtype=dtype)
        if reduction == "mean" and total_weight:
            # the weighted mean sum_i w_i l_i / sum_i w_i, with the division put
            # into the rows (l_i is linear in them): one node fewer in the graph
            if rows.dtype == np.float16:  # 1/total in float64, then cast: float16 cannot hold a total above 65504
                rows *= 1 / float(total_weight)
            else:
                rows /= total_weight
        return rows

    return target_rows


def _weighted_mean_cross_entropy(x, rows, divisor):
    """The weighted mean of the losses, its division already in `rows`; the sum
    divided by `divisor`, 1 (exact) or, for a total weight of 0 (every target
    ignored, or weights that cancel), 0: the NaN or infinity PyTorch gives.
    Never a branch on the data, so a compiled step gives both cases."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return ac.softmax_cross_entropy(x, rows, axis=1).sum() / Value(divisor, requires_grad=False)


def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):
    """Negative log-likelihood of class indices under log-probabilities ``(N, C)``
    (or ``(N, C, d1, ...)`` with targets ``(N, d1, ...)``):
    ``-weight[y] * input[n, y]``; the mean divides by the summed weights of the
    counted targets (PyTorch's convention). Feed it ``log_softmax`` outputs.

    >>> round(float(nll_loss(np.log(np.array([[0.5, 0.5]])), np.array([0])).data), 4)   # -log 0.5
    0.6931
    """
    _check_reduction(reduction, "nll_loss")
    if _value(input).ndim > 2:  # (N, C, d1, ...): one row of log-probabilities per position
        rows, targets, positions = _positions_as_rows(_value(input), target, "nll_loss")
        losses = nll_loss(rows, targets, weight, ignore_index, reduction)
        return losses.reshape(positions) if reduction == "none" else losses
    x, single = _class_rows(_value(input), "nll_loss")
    n, classes = x.shape
    dtype = x.dtype

    read, kept = _weights_read(weight)  # (a host function holding a Value made in the step could not be replayed)

    def picks_of(target, *given):  # a host array: a compiled step makes it from each call's labels (and weights)
        weights = _class_weights(given[0] if given else kept, classes, dtype, "nll_loss")
        indices, counted = _class_indices(target, n, classes, ignore_index, "nll_loss")
        picks = np.zeros((n, classes), dtype=dtype)
        picks[np.arange(n), indices] = weights[indices] * counted
        return picks

    picks = host_array(picks_of, target, *read, name="picks")
    losses = -(x * picks).sum(axis=1)
    if reduction == "mean":  # divided by the summed weights of the counted targets
        return losses.sum() / host_array(_total_of, picks, name="total_weight")
    if reduction == "sum":
        return losses.sum()
    return losses.reshape(()) if single else losses


def _same_shape(x, y, name):
    if x.shape != y.shape:
        raise ShapeError(f"{name}: input has shape {x.shape} but target has shape {y.shape}; they must match")


def binary_cross_entropy(input, target, weight=None, reduction="mean"):
    """``-weight * (y log x + (1 - y) log(1 - x))`` for probabilities `x` in [0, 1].

    Each log is clamped at -100 as in PyTorch, so ``x = 0`` or ``1`` gives a
    finite loss and a finite gradient.

    >>> round(float(binary_cross_entropy(np.array([0.8]), np.array([1.0])).data), 4)   # -log 0.8
    0.2231
    """
    _check_reduction(reduction, "binary_cross_entropy")
    x, y = _value(input), _value(target, "target")
    _same_shape(x, y, "binary_cross_entropy")
    # fused: probabilities checked, logs clamped at -100, PyTorch's gradient at 0 and 1
    losses = ac.binary_cross_entropy(x, y)
    if weight is not None:
        losses = losses * weight
    return _reduce(losses, reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, reduction="mean", pos_weight=None):
    """Binary cross-entropy of ``sigmoid(input)``, computed from the logits as
    ``(1 - y) x + softplus(-x)`` (times ``1 + (pos_weight - 1) y`` on the second
    term), which never takes ``log(0)``: stable for logits of any size.

    >>> round(float(binary_cross_entropy_with_logits(np.array([100.0]), np.array([0.0])).data), 6)
    100.0
    """
    _check_reduction(reduction, "binary_cross_entropy_with_logits")
    x, y = _value(input), _value(target, "target")
    _same_shape(x, y, "binary_cross_entropy_with_logits")
    softplus_minus_x = ac.softplus(-x)  # = -log(sigmoid(x))
    if pos_weight is not None:  # (a Value: a compiled step reads the caller's pos_weight at every call)
        softplus_minus_x = softplus_minus_x * ((_value(pos_weight, "pos_weight") - 1) * y + 1)
    losses = (1 - y) * x + softplus_minus_x
    if weight is not None:
        losses = losses * weight
    return _reduce(losses, reduction)


def mse_loss(input, target, reduction="mean"):
    """Squared error ``(x - y)^2``, averaged by default.

    >>> float(mse_loss(np.array([1.0, 3.0]), np.array([0.0, 0.0])).data)
    5.0
    """
    _check_reduction(reduction, "mse_loss")
    x, y = _value(input), _value(target, "target")
    _same_shape(x, y, "mse_loss")
    difference = x - y
    return _reduce(difference * difference, reduction)


def l1_loss(input, target, reduction="mean"):
    """Absolute error ``|x - y|``, averaged by default.

    >>> float(l1_loss(np.array([1.0, -3.0]), np.array([0.0, 0.0])).data)
    2.0
    """
    _check_reduction(reduction, "l1_loss")
    x, y = _value(input), _value(target, "target")
    _same_shape(x, y, "l1_loss")
    return _reduce(ac.abs(x - y), reduction)


def kl_div(input, target, reduction="mean", log_target=False):
    """PyTorch's KL-divergence loss: `input` holds log-probabilities, `target`
    probabilities (log-probabilities if ``log_target``); pointwise
    ``target * (log target - input)``, 0 where the target is 0.
    ``reduction='batchmean'`` divides the sum by the batch size, which gives
    the true KL divergence per sample; ``'mean'`` divides by every element.

    >>> p = np.array([[0.5, 0.5]])
    >>> float(kl_div(np.log(p), p, reduction="batchmean").data)   # identical distributions
    0.0
    """
    _check_reduction(reduction, "kl_div", _REDUCTIONS + ("batchmean",))
    x, t = _value(input), _value(target, "target")
    _same_shape(x, t, "kl_div")
    if log_target:
        pointwise = ac.exp(t) * (t - x)
    else:
        positive = t > 0  # a plain boolean array, read without copying guarded data
        pointwise = t * (ac.where(positive, t, 1.0).log() - x)
    if reduction == "batchmean":
        return pointwise.sum() / (x.shape[0] if x.ndim else 1)
    return _reduce(pointwise, reduction)


def multi_margin_loss(input, target, p=1, margin=1.0, weight=None, reduction="mean"):
    """Multi-class hinge loss (PyTorch's ``multi_margin_loss``): for each sample,
    ``sum over i != y of max(0, margin - x[y] + x[i])^p / C``, times ``weight[y]``.

    >>> round(float(multi_margin_loss(np.array([[0.1, 0.2, 0.4, 0.8]]), np.array([3])).data), 4)
    0.325
    """
    _check_reduction(reduction, "multi_margin_loss")
    if p not in (1, 2):
        raise ValueError(f"multi_margin_loss: p must be 1 or 2, got {p}")
    x, single = _class_rows(_value(input), "multi_margin_loss")
    n, classes = x.shape
    dtype = x.dtype
    if weight is not None:
        _check_class_weights(weight, classes, "multi_margin_loss")  # (here, where the error belongs)

    def one_hot(target):  # host arrays: a compiled step makes them from each call's labels
        indices, _ = _class_indices(target, n, classes, None, "multi_margin_loss")
        is_target = np.zeros((n, classes), dtype=dtype)
        is_target[np.arange(n), indices] = 1
        return is_target

    read, kept = _weights_read(weight)  # (as nll_loss's)

    def scale_of(is_target, *given):  # each other class's hinge counts 1/C (times the target's class weight)
        scale = (1 - is_target) / classes
        if not given and kept is None:  # (no weights)
            return scale
        weights = _class_weights(given[0] if given else kept, classes, dtype, "multi_margin_loss")
        return scale * weights[is_target.argmax(axis=1)][:, None]

    is_target = host_array(one_hot, target, name="is_target")
    target_score = (x * is_target).sum(axis=1, keepdims=True)
    hinge = ac.relu(margin - target_score + x)
    if p == 2:
        hinge = hinge * hinge
    losses = (hinge * host_array(scale_of, is_target, *read, name="scale")).sum(axis=1)
    if reduction == "none":
        return losses.reshape(()) if single else losses
    return _reduce(losses, reduction)


# ==========================================================================
# Information measures of probability vectors
# ==========================================================================
def _log_base(base):
    return 1.0 if base is None else math.log(base)


def entropy(p, dim=-1, base=None):
    """Shannon entropy ``H(p) = -sum_i p_i log p_i`` along `dim`, with ``0 log 0 = 0``.

    Natural log by default (nats); ``base=2`` gives bits. Differentiable.

    >>> float(entropy(np.array([0.5, 0.5]), base=2).data)
    1.0
    """
    p = _value(p, "entropy")
    positive = p > 0  # a plain boolean array, read without copying guarded data
    # log of p where p > 0 and of 1 elsewhere: no log(0) in the graph at all
    terms = p * ac.where(positive, p, 1.0).log()
    return -terms.sum(axis=dim) / _log_base(base)


def kl_divergence(p, q, dim=-1, base=None):
    """Kullback-Leibler divergence ``D_KL(p || q) = sum_i p_i log(p_i / q_i)``
    along `dim`: 0 when ``p == q``, terms with ``p_i = 0`` count 0, infinite when
    ``q_i = 0 < p_i``. Not symmetric. Natural log unless `base` is given.

    >>> round(float(kl_divergence(np.array([1.0, 0.0]), np.array([0.7, 0.3])).data), 4)   # -log 0.7
    0.3567
    """
    p, q = _value(p, "kl_divergence"), _value(q, "kl_divergence")
    _same_shape(p, q, "kl_divergence")
    positive = p > 0  # a plain boolean array, read without copying guarded data
    with np.errstate(divide="ignore"):
        log_ratio = ac.where(positive, p, 1.0).log() - ac.where(positive, q, 1.0).log()
    return (p * log_ratio).sum(axis=dim) / _log_base(base)
