"""Loss layers: each one holds its options and calls its function in ``nn.functional``.

All take ``reduction`` = ``'mean'`` (default), ``'sum'`` or ``'none'``, as in PyTorch.
"""

from __future__ import annotations

from . import functional as F
from .module import Module

__all__ = [
    "CrossEntropyLoss", "NLLLoss", "BCELoss", "BCEWithLogitsLoss", "MSELoss", "L1Loss", "KLDivLoss",
    "MultiMarginLoss",
]


class _Loss(Module):
    _reductions = ("mean", "sum", "none")

    def __init__(self, reduction="mean"):
        super().__init__()
        if reduction not in self._reductions:  # refused here, not at the first call in a training loop
            raise ValueError(
                f"{type(self).__name__}: reduction must be one of {', '.join(map(repr, self._reductions))}, got {reduction!r}"
            )
        self.reduction = reduction

    def extra_repr(self):
        return f"reduction={self.reduction!r}" if self.reduction != "mean" else ""


class CrossEntropyLoss(_Loss):
    """Cross-entropy from logits ``(N, C)`` against class indices ``(N,)`` or
    class probabilities ``(N, C)``, or from ``(N, C, d1, ...)`` against
    ``(N, d1, ...)`` (a class per position, e.g. per pixel); optional per-class ``weight``,
    ``ignore_index`` and ``label_smoothing`` (PyTorch's semantics).
    The gradient with respect to the logits is ``(softmax - target) / N``.

    >>> import numpy as np
    >>> loss = CrossEntropyLoss()(np.array([[2.0, 0.0], [0.0, 2.0]]), np.array([0, 1]))
    >>> round(float(loss.data), 4)
    0.1269
    """

    def __init__(self, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
        super().__init__(reduction)
        self.weight, self.ignore_index, self.label_smoothing = weight, ignore_index, label_smoothing

    def forward(self, input, target):
        return F.cross_entropy(input, target, self.weight, self.ignore_index, self.reduction, self.label_smoothing)

    def as_torch(self):
        return "CrossEntropyLoss", (), {"weight": self.weight, "ignore_index": self.ignore_index, "reduction": self.reduction,
                                     "label_smoothing": self.label_smoothing}


class NLLLoss(_Loss):
    """Negative log-likelihood of class indices under log-probabilities (after
    ``LogSoftmax``), ``(N, C)`` or ``(N, C, d1, ...)`` against ``(N, d1, ...)``.

    >>> import numpy as np
    >>> log_probs = np.log(np.array([[0.5, 0.5], [0.25, 0.75]]))
    >>> round(float(NLLLoss()(log_probs, np.array([0, 0])).data), 4)   # (log 2 + log 4) / 2
    1.0397
    """

    def __init__(self, weight=None, ignore_index=-100, reduction="mean"):
        super().__init__(reduction)
        self.weight, self.ignore_index = weight, ignore_index

    def forward(self, input, target):
        return F.nll_loss(input, target, self.weight, self.ignore_index, self.reduction)

    def as_torch(self):
        return "NLLLoss", (), {"weight": self.weight, "ignore_index": self.ignore_index, "reduction": self.reduction}


class BCELoss(_Loss):
    """Binary cross-entropy of probabilities in [0, 1] (logs clamped at -100, as PyTorch).

    >>> import numpy as np
    >>> round(float(BCELoss()(np.array([0.5, 0.5]), np.array([1.0, 0.0])).data), 4)   # log 2
    0.6931
    """

    def __init__(self, weight=None, reduction="mean"):
        super().__init__(reduction)
        self.weight = weight

    def forward(self, input, target):
        return F.binary_cross_entropy(input, target, self.weight, self.reduction)

    def as_torch(self):
        return "BCELoss", (), {"weight": self.weight, "reduction": self.reduction}


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy of ``sigmoid(logits)``, computed stably from the logits.

    >>> import numpy as np
    >>> round(float(BCEWithLogitsLoss()(np.array([0.0]), np.array([1.0])).data), 4)   # log 2
    0.6931
    >>> float(BCEWithLogitsLoss()(np.array([-1e4]), np.array([1.0])).data)          # no log(0)
    10000.0
    """

    def __init__(self, weight=None, reduction="mean", pos_weight=None):
        super().__init__(reduction)
        self.weight, self.pos_weight = weight, pos_weight

    def forward(self, input, target):
        return F.binary_cross_entropy_with_logits(input, target, self.weight, self.reduction, self.pos_weight)

    def as_torch(self):
        return "BCEWithLogitsLoss", (), {"weight": self.weight, "reduction": self.reduction, "pos_weight": self.pos_weight}


class MSELoss(_Loss):
    """Mean squared error ``mean((x - y)^2)``.

    >>> import numpy as np
    >>> float(MSELoss()(np.array([1.0, 2.0]), np.array([0.0, 0.0])).data)   # (1 + 4) / 2
    2.5
    """

    def forward(self, input, target):
        return F.mse_loss(input, target, self.reduction)

    def as_torch(self):
        return "MSELoss", (), {"reduction": self.reduction}


class L1Loss(_Loss):
    """Mean absolute error ``mean(|x - y|)``.

    >>> import numpy as np
    >>> float(L1Loss()(np.array([1.0, -3.0]), np.array([0.0, 0.0])).data)  # (1 + 3) / 2
    2.0
    """

    def forward(self, input, target):
        return F.l1_loss(input, target, self.reduction)

    def as_torch(self):
        return "L1Loss", (), {"reduction": self.reduction}


class KLDivLoss(_Loss):
    """KL divergence with log-probability inputs (PyTorch's ``KLDivLoss``);
    use ``reduction='batchmean'`` for the mathematically correct mean.

    >>> import numpy as np
    >>> log_q = np.log(np.array([[0.5, 0.5]])); p = np.array([[1.0, 0.0]])
    >>> round(float(KLDivLoss(reduction="batchmean")(log_q, p).data), 4)   # 1 * log(1 / 0.5)
    0.6931
    """

    _reductions = ("mean", "sum", "none", "batchmean")

    def __init__(self, reduction="mean", log_target=False):
        super().__init__(reduction)
        self.log_target = log_target

    def forward(self, input, target):
        return F.kl_div(input, target, self.reduction, self.log_target)

    def as_torch(self):
        return "KLDivLoss", (), {"reduction": self.reduction, "log_target": self.log_target}


class MultiMarginLoss(_Loss):
    """Multi-class hinge loss: ``sum over i != y of max(0, margin - x[y] + x[i])^p / C``.

    >>> import numpy as np
    >>> x = np.array([[0.1, 0.2, 0.4, 0.8]])
    >>> round(float(MultiMarginLoss()(x, np.array([3])).data), 4)  # (0.3 + 0.4 + 0.6) / 4
    0.325
    """

    def __init__(self, p=1, margin=1.0, weight=None, reduction="mean"):
        super().__init__(reduction)
        if p not in (1, 2):
            raise ValueError(f"MultiMarginLoss: p must be 1 or 2, got {p}")
        self.p, self.margin, self.weight = p, margin, weight

    def forward(self, input, target):
        return F.multi_margin_loss(input, target, self.p, self.margin, self.weight, self.reduction)

    def as_torch(self):
        return "MultiMarginLoss", (), {"p": self.p, "margin": self.margin, "weight": self.weight, "reduction": self.reduction}
