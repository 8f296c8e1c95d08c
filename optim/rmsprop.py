"""RMSprop: divide by a running average of squared gradients."""

from __future__ import annotations

import numpy as np

from .optimizer import Optimizer, _apply

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    """RMSprop: Adagrad's sum replaced by an exponentially decaying average::

        v_t = alpha * v_{t-1} + (1 - alpha) * g_t^2          (running average of g^2)
        w_t = w_{t-1} - lr * g_t / (sqrt(v_t) + eps)

    ``centered=True`` also keeps the running average of the gradient, m_t, and
    divides by an estimate of its standard deviation, ``sqrt(v_t - m_t^2) + eps``.
    ``momentum = mu > 0`` accumulates the scaled step in a velocity
    ``b_t = mu * b_{t-1} + g_t / (sqrt(v_t) + eps)`` and moves by ``lr * b_t``.
    Defaults are PyTorch's (alpha=0.99, eps=1e-8).

    >>> import numpy as np
    >>> from autograd_core import Value
    >>> w = Value(np.array([1.0, -2.0]))
    >>> opt = RMSprop([w], lr=0.01)
    >>> (w * w).sum().backward(); opt.step()
    >>> w.data.round(4)                          # g / sqrt(0.01 g^2) = 10 sign(g)
    array([ 0.9, -1.9])
    """

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False, *, maximize=False):
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                        centered=centered, maximize=maximize)
        super().__init__(params, defaults)

    def _validate_group(self, group, where):
        super()._validate_group(group, where)
        for key in ("eps", "weight_decay", "momentum", "alpha"):
            self._check_range(group, where, key)

    def _init_state(self, p, group):
        state = {"step": 0, "square_avg": np.zeros(p.shape, dtype=p.dtype)}
        if group["momentum"] > 0:
            state["momentum_buffer"] = np.zeros(p.shape, dtype=p.dtype)
        if group["centered"]:
            state["grad_avg"] = np.zeros(p.shape, dtype=p.dtype)
        return state

    def _update(self, p, g, group, state):
        state["step"] += 1
        alpha = group["alpha"]
        square_avg = state["square_avg"]
        square_avg *= alpha  # v_t = alpha v_{t-1} + (1 - alpha) g_t^2
        square_avg += (1 - alpha) * np.square(g)
        if group["centered"]:
            grad_avg = state["grad_avg"]
            grad_avg *= alpha  # m_t = alpha m_{t-1} + (1 - alpha) g_t
            grad_avg += (1 - alpha) * g
            denominator = np.sqrt(square_avg - np.square(grad_avg))  # sqrt(v_t - m_t^2) + eps
        else:
            denominator = np.sqrt(square_avg)  # sqrt(v_t) + eps
        denominator += group["eps"]
        scaled_gradient = g / denominator
        if group["momentum"] > 0:
            velocity = state.setdefault("momentum_buffer", np.zeros(p.shape, dtype=p.dtype))
            velocity *= group["momentum"]  # b_t = mu b_{t-1} + g_t / denominator
            velocity += scaled_gradient
            _apply(p, group["lr"] * velocity)
        else:
            scaled_gradient *= group["lr"]  # lr * g_t / denominator
            _apply(p, scaled_gradient)
