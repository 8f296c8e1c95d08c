"""Weight initialisers with PyTorch's names, gains and fan conventions.

Each function fills a Parameter (or Value, or NumPy array) in place and returns
it. Random ones draw from the global generator (``nn.manual_seed``) unless a
``generator`` (a seed or ``numpy.random.Generator``) is passed.

For a weight of shape ``(out, in)``: ``fan_in = in``, ``fan_out = out``; for
more dimensions both are multiplied by the size of the trailing dimensions.

>>> import numpy as np
>>> from nn import Parameter, init
>>> w = Parameter(np.empty((3, 4)))
>>> bound = init.calculate_gain("relu") * np.sqrt(3 / 4)          # kaiming: gain * sqrt(3 / fan_in)
>>> bool(np.all(np.abs(init.kaiming_uniform_(w, nonlinearity="relu").data) <= bound))
True
"""

from __future__ import annotations

import math

import numpy as np

from autograd_core import Value

from ._random import generator_from

__all__ = [
    "calculate_gain", "uniform_", "normal_", "constant_", "zeros_", "ones_", "xavier_uniform_",
    "xavier_normal_", "kaiming_uniform_", "kaiming_normal_",
]


def calculate_gain(nonlinearity, param=None):
    """PyTorch's recommended gain for a nonlinearity: 1 for linear / sigmoid,
    5/3 for tanh, sqrt(2) for relu, sqrt(2 / (1 + slope^2)) for leaky_relu
    (slope `param`, default 0.01), 3/4 for selu.

    >>> round(calculate_gain("tanh"), 4)
    1.6667
    """
    linear_like = ("linear", "identity", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
                   "conv_transpose2d", "conv_transpose3d", "sigmoid")
    if nonlinearity in linear_like:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        if isinstance(slope, bool) or not isinstance(slope, (int, float)):
            raise ValueError(f"calculate_gain: negative_slope {slope!r} is not a number")
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def _calculate_fan_in_and_fan_out(tensor):
    shape = tuple(np.shape(tensor.data if isinstance(tensor, Value) else tensor))
    if len(shape) < 2:
        raise ValueError(
            f"fan in and fan out need at least 2 dimensions (out, in), got shape {shape}; "
            f"initialise biases with uniform_ / zeros_ instead"
        )
    receptive_field = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive_field, shape[0] * receptive_field


def _fan(tensor, mode):
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def _fill(tensor, values):
    """Write `values` into `tensor` (a Value's data is replaced, an array is overwritten)."""
    if isinstance(tensor, Value):
        tensor.data = np.asarray(values, dtype=tensor.dtype).reshape(tensor.shape)
    else:
        tensor[...] = values
    return tensor


def _shape(tensor):
    return tuple(np.shape(tensor.data if isinstance(tensor, Value) else tensor))


def uniform_(tensor, a=0.0, b=1.0, generator=None):
    """Fill with draws from U(a, b).

    >>> bool(np.all(np.abs(uniform_(np.empty(100), -0.1, 0.1, generator=0)) <= 0.1))
    True
    """
    return _fill(tensor, generator_from(generator).uniform(a, b, _shape(tensor)))


def normal_(tensor, mean=0.0, std=1.0, generator=None):
    """Fill with draws from N(mean, std^2).

    >>> w = normal_(np.empty(10_000), mean=1.0, std=0.5, generator=0)
    >>> round(float(w.mean()), 1), round(float(w.std()), 1)
    (1.0, 0.5)
    """
    return _fill(tensor, generator_from(generator).normal(mean, std, _shape(tensor)))


def constant_(tensor, val):
    """Fill with `val`.

    >>> constant_(np.empty(2), 0.5)
    array([0.5, 0.5])
    """
    return _fill(tensor, np.full(_shape(tensor), val))


def zeros_(tensor):
    """Fill with 0.

    >>> from nn import Parameter
    >>> zeros_(Parameter(np.ones(2))).data
    array([0., 0.])
    """
    return constant_(tensor, 0.0)


def ones_(tensor):
    """Fill with 1.

    >>> ones_(np.zeros(2))
    array([1., 1.])
    """
    return constant_(tensor, 1.0)


def xavier_uniform_(tensor, gain=1.0, generator=None):
    """Glorot uniform: U(-a, a) with ``a = gain * sqrt(6 / (fan_in + fan_out))``.

    >>> w = xavier_uniform_(np.empty((200, 300)), generator=0)    # a = sqrt(6 / 500) = 0.1095
    >>> round(float(np.abs(w).max()), 3)
    0.11
    """
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor, gain=1.0, generator=None):
    """Glorot normal: N(0, std^2) with ``std = gain * sqrt(2 / (fan_in + fan_out))``.

    >>> w = xavier_normal_(np.empty((200, 300)), generator=0)     # std = sqrt(2 / 500) = 0.063
    >>> round(float(w.std()), 3)
    0.063
    """
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator)


def kaiming_uniform_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """He uniform: U(-b, b) with ``b = gain * sqrt(3 / fan)``, gain from
    ``calculate_gain(nonlinearity, a)``. ``Linear`` uses it with ``a = sqrt(5)``,
    which gives ``b = 1 / sqrt(fan_in)``.

    >>> w = kaiming_uniform_(np.empty((300, 100)), nonlinearity="relu", generator=0)
    >>> round(float(np.abs(w).max()), 3)                  # b = sqrt(2) * sqrt(3 / 100) = 0.245
    0.245
    """
    gain = calculate_gain(nonlinearity, a)
    bound = gain * math.sqrt(3.0 / _fan(tensor, mode))
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """He normal: N(0, std^2) with ``std = gain / sqrt(fan)``.

    >>> w = kaiming_normal_(np.empty((300, 100)), nonlinearity="relu", generator=0)
    >>> round(float(w.std()), 2)                          # sqrt(2) / sqrt(100) = 0.14
    0.14
    """
    gain = calculate_gain(nonlinearity, a)
    return normal_(tensor, 0.0, gain / math.sqrt(_fan(tensor, mode)), generator)
