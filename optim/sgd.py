"""Stochastic gradient descent, with momentum and Nesterov momentum."""

from __future__ import annotations

import numpy as np

from .optimizer import Optimizer, _apply

__all__ = ["SGD"]


class SGD(Optimizer):
    """Gradient descent: ``w <- w - lr * g``, optionally with momentum.

    With ``momentum = mu > 0`` the step follows a *velocity*, a running sum of
    past gradients (PyTorch's form; the first velocity is the first gradient)::

        v_t = mu * v_{t-1} + (1 - dampening) * g_t
        w_t = w_{t-1} - lr * v_t                       (or, with nesterov=True,
        w_t = w_{t-1} - lr * (g_t + mu * v_t))         a look-ahead step)

    The lecture writes ``v_t = mu v_{t-1} + lr g_t, w_t = w_{t-1} - v_t``: the
    same weights while lr is constant (PyTorch's form keeps lr outside the
    velocity, so changing lr takes effect at once).

    ``weight_decay`` adds ``weight_decay * w`` to the gradient (L2 regularisation);
    ``maximize=True`` climbs instead of descending. Defaults are PyTorch's.

    >>> import numpy as np
    >>> from autograd_core import Value
    >>> w = Value(np.array([1.0, -2.0]))
    >>> opt = SGD([w], lr=0.1, momentum=0.9)
    >>> (w * w).sum().backward(); opt.step()
    >>> w.data                                   # w - 0.1 * 2w
    array([ 0.8, -1.6])
    """

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, *, maximize=False):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults)

    def _validate_group(self, group, where):
        super()._validate_group(group, where)
        self._check_range(group, where, "momentum")
        self._check_range(group, where, "weight_decay")
        if group.get("nesterov") and (group.get("momentum", 0) <= 0 or group.get("dampening", 0) != 0):
            raise ValueError(f"SGD: nesterov=True needs momentum > 0 and dampening = 0 (in {where})")

    def _init_state(self, p, group):
        return {"momentum_buffer": None}

    def _update(self, p, g, group, state):
        mu = group["momentum"]
        if mu != 0:
            velocity = state["momentum_buffer"]
            if velocity is None:  # v_1 = g_1
                velocity = state["momentum_buffer"] = np.array(g, dtype=p.dtype, copy=True)
            else:  # v_t = mu v_{t-1} + (1 - dampening) g_t
                velocity *= mu
                velocity += (1 - group["dampening"]) * g if group["dampening"] else g
            g = g + mu * velocity if group["nesterov"] else velocity
        _apply(p, group["lr"] * g)
