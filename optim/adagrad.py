"""Adagrad: a per-parameter learning rate from the sum of all past squared gradients."""

from __future__ import annotations

import numpy as np

from .optimizer import Optimizer, _apply

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    """Adagrad: each weight's step is divided by the root of the sum of its squared gradients::

        G_t = G_{t-1} + g_t^2                      (sum of squared gradients, starts at
                                                     initial_accumulator_value)
        w_t = w_{t-1} - lr_t * g_t / (sqrt(G_t) + eps),   lr_t = lr / (1 + (t - 1) * lr_decay)

    Weights with large past gradients take small steps, rarely-updated ones
    large steps; the sum only grows, so the steps shrink over time. Defaults
    are PyTorch's.

    >>> import numpy as np
    >>> from autograd_core import Value
    >>> w = Value(np.array([1.0, -2.0]))
    >>> opt = Adagrad([w], lr=0.1)
    >>> (w * w).sum().backward(); opt.step()
    >>> w.data.round(6)                          # first step: lr * sign(g)
    array([ 0.9, -1.9])
    """

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10, *, maximize=False):
        defaults = dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, eps=eps, maximize=maximize)
        super().__init__(params, defaults)

    def _validate_group(self, group, where):
        super()._validate_group(group, where)
        for key in ("lr_decay", "weight_decay", "initial_accumulator_value", "eps"):
            self._check_range(group, where, key)

    def _init_state(self, p, group):
        start = group["initial_accumulator_value"]
        return {"step": 0, "sum": np.full(p.shape, start, dtype=p.dtype)}

    def _update(self, p, g, group, state):
        state["step"] += 1
        t = state["step"]
        lr_t = group["lr"] / (1 + (t - 1) * group["lr_decay"])
        squared_sum = state["sum"]
        squared_sum += g * g  # G_t = G_{t-1} + g_t^2
        _apply(p, lr_t * g / (np.sqrt(squared_sum) + group["eps"]))
