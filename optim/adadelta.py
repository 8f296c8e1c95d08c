"""Adadelta: step sizes from running averages of squared gradients and squared steps."""

from __future__ import annotations

import numpy as np

from .optimizer import Optimizer, _apply

__all__ = ["Adadelta"]


class Adadelta(Optimizer):
    """Adadelta: like RMSprop, but the numerator is the RMS of past steps, so no
    learning rate needs tuning (``lr`` only scales the step, 1.0 by default)::

        v_t = rho * v_{t-1} + (1 - rho) * g_t^2                    (running average of g^2)
        dw_t = sqrt(u_{t-1} + eps) / sqrt(v_t + eps) * g_t         (step, in the units of w)
        u_t = rho * u_{t-1} + (1 - rho) * dw_t^2                   (running average of steps^2)
        w_t = w_{t-1} - lr * dw_t

    Defaults are PyTorch's (rho=0.9, eps=1e-6).

    >>> import numpy as np
    >>> from autograd_core import Value
    >>> w = Value(np.array([1.0]))
    >>> opt = Adadelta([w])
    >>> (w * w).sum().backward(); opt.step()
    >>> w.data.round(6)                          # 1 - sqrt(1e-6) / sqrt(0.1 * 4 + 1e-6) * 2
    array([0.996838])
    """

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, *, maximize=False):
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    def _validate_group(self, group, where):
        super()._validate_group(group, where)
        self._check_range(group, where, "rho", 0.0, 1.0, high_open=False)
        self._check_range(group, where, "eps")
        self._check_range(group, where, "weight_decay")

    def _init_state(self, p, group):
        return {"step": 0, "square_avg": np.zeros(p.shape, dtype=p.dtype), "acc_delta": np.zeros(p.shape, dtype=p.dtype)}

    def _update(self, p, g, group, state):
        state["step"] += 1
        rho, eps = group["rho"], group["eps"]
        square_avg, acc_delta = state["square_avg"], state["acc_delta"]
        square_avg *= rho  # v_t = rho v_{t-1} + (1 - rho) g_t^2
        square_avg += (1 - rho) * g * g
        delta = np.sqrt(acc_delta + eps) / np.sqrt(square_avg + eps) * g
        acc_delta *= rho  # u_t = rho u_{t-1} + (1 - rho) dw_t^2
        acc_delta += (1 - rho) * delta * delta
        _apply(p, group["lr"] * delta)
