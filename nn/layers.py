"""Layers with parameters or modes: Linear, BatchNorm1d, Dropout, and the MLP builder."""

from __future__ import annotations

import math

import numpy as np

from autograd_core.compile import CompileError, effect, is_tracing

from . import functional as F
from . import init
from .module import Module, Parameter, Sequential

__all__ = ["Linear", "BatchNorm1d", "Dropout", "MLP"]


class Linear(Module):
    """``y = x @ weight.T + bias``, with ``weight`` of shape ``(out_features, in_features)``.

    Initialised as PyTorch does: ``weight`` by ``kaiming_uniform_(a=sqrt(5))``,
    i.e. U(-1/sqrt(in), 1/sqrt(in)), and ``bias`` by U(-1/sqrt(in), 1/sqrt(in)).

    >>> layer = Linear(3, 2)
    >>> layer.weight.shape, layer.bias.shape
    ((2, 3), (2,))
    """

    def __init__(self, in_features, out_features, bias=True, dtype=np.float64):
        super().__init__()
        for name, size in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 0:
                raise ValueError(f"Linear: {name} must be a whole number >= 0, got {size!r}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.weight = Parameter(np.empty((self.out_features, self.in_features), dtype=dtype))
        self.bias = Parameter(np.empty(self.out_features, dtype=dtype)) if bias else None
        if not bias:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        """Draw new weights and bias, as at construction (from the global generator)."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features) if self.in_features > 0 else 0.0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"

    def _title(self):
        return f"Linear({self.in_features}, {self.out_features}" + ("" if self.bias is not None else ", bias=False") + ")"

    def as_torch(self):
        return "Linear", (self.in_features, self.out_features), {"bias": self.bias is not None, "dtype": self.weight.dtype}


class BatchNorm1d(Module):
    """Batch normalisation of ``(N, C)`` (or ``(N, C, L)``) inputs, per channel.

    Training: ``(x - batch mean) / sqrt(batch var + eps) * weight + bias``, and
    the running mean and the *unbiased* running variance move towards the
    batch's with ``momentum`` (``momentum=None``: a cumulative average).
    Evaluation: the running statistics replace the batch's. Matches PyTorch.

    >>> bn = BatchNorm1d(2)
    >>> y = bn(np.array([[1.0, 10.0], [3.0, 30.0]]))
    >>> np.round(y.data, 3), bn.running_mean
    (array([[-1., -1.],
           [ 1.,  1.]]), array([0.2, 2. ]))
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 dtype=np.float64):
        super().__init__()
        self.num_features, self.eps, self.momentum = int(num_features), eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        if affine:
            self.weight = Parameter(np.ones(self.num_features, dtype=dtype))
            self.bias = Parameter(np.zeros(self.num_features, dtype=dtype))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(self.num_features, dtype=dtype))
            self.register_buffer("running_var", np.ones(self.num_features, dtype=dtype))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self):
        """Forget the running statistics: mean 0, variance 1, no batches seen."""
        if self.track_running_stats:
            self.running_mean[...] = 0
            self.running_var[...] = 1
            self.num_batches_tracked = np.array(0, dtype=np.int64)

    def forward(self, x):
        x = F._value(x)
        if x.ndim not in (2, 3) or x.shape[1] != self.num_features:
            raise ValueError(
                f"BatchNorm1d({self.num_features}): expected input of shape (N, {self.num_features}) "
                f"or (N, {self.num_features}, L), got {x.shape}"
            )
        momentum = self._count_batch_and_momentum()
        use_batch_stats = self.training or not self.track_running_stats
        update = self.training and self.track_running_stats
        return F.batch_norm(
            x,
            self.running_mean if (update or not use_batch_stats) else None,
            self.running_var if (update or not use_batch_stats) else None,
            self.weight, self.bias, use_batch_stats, momentum, self.eps,
        )

    def _count_batch_and_momentum(self):
        """Count a training batch (an effect: a compiled step counts its batches too) and
        return the momentum of the running statistics' update."""
        if not (self.training and self.track_running_stats):
            return 0.0 if self.momentum is None else self.momentum
        if self.momentum is None and is_tracing():  # cumulative moving average (refused before counting)
            raise CompileError(
                f"{type(self).__name__}(momentum=None): the cumulative average's momentum changes at every batch, "
                f"which a compiled step cannot replay; give a momentum (e.g. 0.1) or run eagerly"
            )
        effect(self._count_batch)
        if self.momentum is not None:
            return self.momentum
        return 1.0 / float(self.num_batches_tracked)

    def _count_batch(self):
        self.num_batches_tracked = self.num_batches_tracked + 1

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")

    def _title(self):
        return f"BatchNorm1d({self.num_features})"

    def as_torch(self):
        return "BatchNorm1d", (self.num_features,), self._torch_options()

    def _torch_options(self):
        state = self.weight if self.weight is not None else self.running_mean
        options = {"eps": self.eps, "momentum": self.momentum, "affine": self.affine,
                   "track_running_stats": self.track_running_stats}
        if state is not None:
            options["dtype"] = state.dtype
        return options


class Dropout(Module):
    """Inverted dropout: in training, each element is zeroed with probability ``p``
    and the kept ones are scaled by ``1 / (1 - p)``; in eval mode, the identity.
    Random draws come from the global generator (``nn.manual_seed``).

    >>> drop = Dropout(0.5).eval()
    >>> drop(np.ones(3)).data
    array([1., 1., 1.])
    """

    def __init__(self, p=0.5):
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"Dropout: p is a probability and must lie in [0, 1], got {p}")
        self.p = p

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"

    def as_torch(self):
        return "Dropout", (), {"p": self.p}


def _activation_factory(activation):
    from . import activations

    if isinstance(activation, str):
        key = activation.lower().replace("_", "")
        for cls in activations.ACTIVATIONS:
            if cls.__name__.lower() == key:
                return cls
        names = ", ".join(cls.__name__.lower() for cls in activations.ACTIVATIONS)
        raise ValueError(f"MLP: unknown activation {activation!r}; choose one of {names}")
    if isinstance(activation, type) and issubclass(activation, Module):
        return activation
    if isinstance(activation, Module):
        return lambda: activation  # a stateless instance may be shared between layers
    if callable(activation):
        return activation
    raise TypeError(f"MLP: activation must be a name, a Module class or a factory, got {activation!r}")


class MLP(Sequential):
    """A multi-layer perceptron as a ``Sequential``:
    ``Linear -> [BatchNorm1d] -> activation -> [Dropout]`` for each hidden layer,
    then a final ``Linear`` (raw scores, for ``CrossEntropyLoss``).

    `sizes` lists the widths from input to output, e.g. ``[4, 16, 3]``;
    `activation` is a name ("relu", "tanh", ...), an ``nn`` activation class,
    or a factory. The same layers in a ``torch.nn.Sequential`` have the same
    ``state_dict`` names.

    >>> MLP([4, 8, 3], activation="tanh", batchnorm=True, dropout=0.1)
    MLP(
      (0): Linear(in_features=4, out_features=8, bias=True)
      (1): BatchNorm1d(8, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)
      (2): Tanh()
      (3): Dropout(p=0.1)
      (4): Linear(in_features=8, out_features=3, bias=True)
    )
    """

    def __init__(self, sizes, activation="relu", batchnorm=False, dropout=0.0, bias=True, dtype=np.float64):
        if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__"):
            raise TypeError(f"MLP: sizes must be a list of layer widths such as [4, 16, 3], got {type(sizes).__name__}")
        sizes = list(sizes)
        for k, size in enumerate(sizes):
            # the rule nn.Linear applies: a whole number, not a bool, a float or a string
            if isinstance(size, bool) or not isinstance(size, (int, np.integer)):
                raise TypeError(f"MLP: sizes[{k}] is {size!r} ({type(size).__name__}); every width must be an int, "
                                f"e.g. [4, 16, 3]")
        sizes = [int(n) for n in sizes]
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"MLP: sizes must list at least an input and an output width (all >= 1), got {sizes}")
        make_activation = _activation_factory(activation)
        layers = []
        for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(Linear(n_in, n_out, bias=bias, dtype=dtype))
            if k < len(sizes) - 2:
                if batchnorm:
                    layers.append(BatchNorm1d(n_out, dtype=dtype))
                layers.append(make_activation())
                if dropout:
                    layers.append(Dropout(dropout))
        super().__init__(*layers)
        self.sizes = sizes
