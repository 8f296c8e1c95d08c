"""Activation layers: each one calls its function in ``nn.functional``."""

from __future__ import annotations

import numpy as np

from . import functional as F
from .module import Module, Parameter

__all__ = [
    "Sigmoid", "Tanh", "ReLU", "LeakyReLU", "PReLU", "ELU", "SELU", "GELU", "Softplus", "SiLU",
    "ReLU6", "Hardtanh", "Hardsigmoid", "Hardswish", "Mish", "CELU", "Softsign", "LogSigmoid", "Softmin",
    "Softmax", "LogSoftmax", "ACTIVATIONS",
]


class Sigmoid(Module):
    """``1 / (1 + exp(-x))``; its local gradient is ``s (1 - s)``.

    >>> Sigmoid()(np.array([0.0, 1e4])).data
    array([0.5, 1. ])
    """

    def forward(self, x):
        return F.sigmoid(x)

    def as_torch(self):
        return "Sigmoid", (), {}


class Tanh(Module):
    """``tanh(x)``; its local gradient is ``1 - tanh(x)^2``.

    >>> Tanh()(np.array([0.0, -1e4])).data
    array([ 0., -1.])
    """

    def forward(self, x):
        return F.tanh(x)

    def as_torch(self):
        return "Tanh", (), {}


class ReLU(Module):
    """``max(x, 0)``; its local gradient is 1 where ``x > 0``, else 0.

    >>> ReLU()(np.array([-1.0, 2.0])).data
    array([0., 2.])
    """

    def forward(self, x):
        return F.relu(x)

    def as_torch(self):
        return "ReLU", (), {}


class LeakyReLU(Module):
    """``x`` where ``x > 0``, else ``negative_slope * x``.

    >>> LeakyReLU(0.1)(np.array([-2.0, 3.0])).data
    array([-0.2,  3. ])
    """

    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"

    def as_torch(self):
        return "LeakyReLU", (), {"negative_slope": self.negative_slope}


class PReLU(Module):
    """Leaky ReLU whose negative slope is learned: one slope, or one per
    channel (dim 1) with ``num_parameters=C``, starting at ``init``.

    >>> act = PReLU()
    >>> act(np.array([-2.0, 3.0])).data, act.weight.data
    (array([-0.5,  3. ]), array([0.25]))
    """

    def __init__(self, num_parameters=1, init=0.25, dtype=np.float64):
        super().__init__()
        if isinstance(num_parameters, bool) or not isinstance(num_parameters, (int, np.integer)) or num_parameters < 1:
            raise ValueError(f"PReLU: num_parameters is 1 or the number of channels, a whole number >= 1; got {num_parameters!r}")
        self.num_parameters = int(num_parameters)
        self.weight = Parameter(np.full(self.num_parameters, init, dtype=dtype))

    def forward(self, x):
        return F.prelu(x, self.weight)

    def extra_repr(self):
        return f"num_parameters={self.num_parameters}"

    def as_torch(self):
        return "PReLU", (), {"num_parameters": self.num_parameters, "dtype": self.weight.dtype}


class ELU(Module):
    """``x`` where ``x > 0``, else ``alpha * (exp(x) - 1)``.

    >>> ELU(alpha=2.0)(np.array([-1e4, 3.0])).data
    array([-2.,  3.])
    """

    def __init__(self, alpha=1.0):
        super().__init__()
        self.alpha = alpha

    def forward(self, x):
        return F.elu(x, self.alpha)

    def extra_repr(self):
        return f"alpha={self.alpha}"

    def as_torch(self):
        return "ELU", (), {"alpha": self.alpha}


class SELU(Module):
    """Scaled ELU with the self-normalising constants (scale 1.0507, alpha 1.6733).

    >>> SELU()(np.array([-1e4, 0.0, 1.0])).data.round(4)        # -scale * alpha, 0, scale
    array([-1.7581,  0.    ,  1.0507])
    """

    def forward(self, x):
        return F.selu(x)

    def as_torch(self):
        return "SELU", (), {}


class GELU(Module):
    """``x * Phi(x)``: exact with ``approximate='none'`` (through erf), or the
    ``'tanh'`` approximation.

    >>> GELU()(np.array([-1e4, 0.0, 1e4])).data.tolist()    # 0 far left, x far right
    [-0.0, 0.0, 10000.0]
    """

    def __init__(self, approximate="none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x):
        return F.gelu(x, self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"

    def as_torch(self):
        return "GELU", (), {"approximate": self.approximate}


class Softplus(Module):
    """``log(1 + exp(beta * x)) / beta`` (the identity where ``beta * x > threshold``).

    >>> Softplus()(np.array([0.0, 30.0])).data.round(4)        # log 2, and 30 itself
    array([ 0.6931, 30.    ])
    """

    def __init__(self, beta=1.0, threshold=20.0):
        super().__init__()
        if beta == 0:
            raise ValueError(f"Softplus: beta must not be 0 (the result is divided by it), got {beta}")
        self.beta, self.threshold = beta, threshold

    def forward(self, x):
        return F.softplus(x, self.beta, self.threshold)

    def extra_repr(self):
        return f"beta={self.beta}, threshold={self.threshold}"

    def as_torch(self):
        return "Softplus", (), {"beta": self.beta, "threshold": self.threshold}


class SiLU(Module):
    """``x * sigmoid(x)``.

    >>> SiLU()(np.array([0.0, 2.0])).data.round(4)              # 0, 2 * sigmoid(2)
    array([0.    , 1.7616])
    """

    def forward(self, x):
        return F.silu(x)

    def as_torch(self):
        return "SiLU", (), {}


class _Inplace(Module):
    """An activation with PyTorch's ``inplace`` argument, which is refused (an
    operation never overwrites a Value's data)."""

    def __init__(self, inplace=False):
        super().__init__()
        if inplace:
            raise ValueError(f"{type(self).__name__}: inplace=True is not supported; operations never overwrite a Value's data")
        self.inplace = False


class ReLU6(_Inplace):
    """``min(max(x, 0), 6)``; its local gradient is 1 for ``0 < x < 6``, else 0.

    >>> ReLU6()(np.array([-1.0, 3.0, 9.0])).data
    array([0., 3., 6.])
    """

    def forward(self, x):
        return F.relu6(x)

    def as_torch(self):
        return "ReLU6", (), {}


class Hardtanh(_Inplace):
    """``x`` clamped to ``[min_val, max_val]``; local gradient 1 strictly inside, else 0.

    >>> Hardtanh(-2.0, 2.0)(np.array([-3.0, 1.0, 3.0])).data
    array([-2.,  1.,  2.])
    """

    def __init__(self, min_val=-1.0, max_val=1.0, inplace=False):
        super().__init__(inplace)
        if min_val > max_val:
            raise ValueError(f"Hardtanh: min_val ({min_val}) must not exceed max_val ({max_val})")
        self.min_val, self.max_val = min_val, max_val

    def forward(self, x):
        return F.hardtanh(x, self.min_val, self.max_val)

    def extra_repr(self):
        return f"min_val={self.min_val}, max_val={self.max_val}"

    def as_torch(self):
        return "Hardtanh", (), {"min_val": self.min_val, "max_val": self.max_val}


class Hardsigmoid(_Inplace):
    """``relu6(x + 3) / 6``; local gradient 1/6 for ``-3 < x < 3``, else 0.

    >>> Hardsigmoid()(np.array([-4.0, 0.0, 4.0])).data
    array([0. , 0.5, 1. ])
    """

    def forward(self, x):
        return F.hardsigmoid(x)

    def as_torch(self):
        return "Hardsigmoid", (), {}


class Hardswish(_Inplace):
    """``x * relu6(x + 3) / 6``; local gradient ``x/3 + 1/2`` for ``-3 < x < 3``.

    >>> Hardswish()(np.array([-4.0, 4.0])).data
    array([-0.,  4.])
    """

    def forward(self, x):
        return F.hardswish(x)

    def as_torch(self):
        return "Hardswish", (), {}


class Mish(_Inplace):
    """``x * tanh(softplus(x))``.

    >>> Mish()(np.array([0.0])).data
    array([0.])
    """

    def forward(self, x):
        return F.mish(x)

    def as_torch(self):
        return "Mish", (), {}


class CELU(_Inplace):
    """``x`` for ``x > 0``, else ``alpha * (exp(x / alpha) - 1)``.

    >>> CELU(alpha=0.5)(np.array([-1e4, 2.0])).data
    array([-0.5,  2. ])
    """

    def __init__(self, alpha=1.0, inplace=False):
        super().__init__(inplace)
        if alpha == 0:
            raise ValueError("CELU: alpha must not be 0 (x is divided by it)")
        self.alpha = alpha

    def forward(self, x):
        return F.celu(x, self.alpha)

    def extra_repr(self):
        return f"alpha={self.alpha}"

    def as_torch(self):
        return "CELU", (), {"alpha": self.alpha}


class Softsign(Module):
    """``x / (1 + |x|)``.

    >>> Softsign()(np.array([-1.0, 3.0])).data
    array([-0.5 ,  0.75])
    """

    def forward(self, x):
        return F.softsign(x)

    def as_torch(self):
        return "Softsign", (), {}


class LogSigmoid(Module):
    """``log(sigmoid(x))``, finite for any x.

    >>> LogSigmoid()(np.array([-1e4])).data
    array([-10000.])
    """

    def forward(self, x):
        return F.logsigmoid(x)

    def as_torch(self):
        return "LogSigmoid", (), {}


class Softmin(Module):
    """``softmax(-x)`` along ``dim``.

    >>> Softmin(dim=0)(np.array([0.0, np.log(3.0)])).data.round(4)
    array([0.75, 0.25])
    """

    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return F.softmin(x, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"

    def as_torch(self):
        return "Softmin", (), {"dim": self.dim}


class Softmax(Module):
    """``exp(x) / sum(exp(x))`` along ``dim`` (stable for large logits).

    >>> Softmax(dim=1)(np.array([[1.43, -0.4, 0.23]])).data.round(2)
    array([[0.68, 0.11, 0.21]])
    """

    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return F.softmax(x, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"

    def as_torch(self):
        return "Softmax", (), {"dim": self.dim}


class LogSoftmax(Module):
    """``x - logsumexp(x)`` along ``dim``.

    >>> LogSoftmax(dim=1)(np.array([[0.0, 0.0]])).data.round(4)  # log(1/2) twice
    array([[-0.6931, -0.6931]])
    """

    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return F.log_softmax(x, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"

    def as_torch(self):
        return "LogSoftmax", (), {"dim": self.dim}


# the activations MLP accepts by name ("relu", "tanh", "leakyrelu", ...)
ACTIVATIONS = (Sigmoid, Tanh, ReLU, LeakyReLU, PReLU, ELU, SELU, GELU, Softplus, SiLU,
               ReLU6, Hardtanh, Hardsigmoid, Hardswish, Mish, CELU, Softsign, LogSigmoid)
