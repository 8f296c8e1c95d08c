"""Adam and AdamW: momentum plus RMSprop, with bias correction."""

from __future__ import annotations

import numpy as np

from .optimizer import Optimizer, _apply

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    """Adam: a running average of gradients (first moment, the velocity) divided
    by the root of a running average of squared gradients (second moment)::

        m_t = beta1 * m_{t-1} + (1 - beta1) * g_t
        v_t = beta2 * v_{t-1} + (1 - beta2) * g_t^2
        m_hat = m_t / (1 - beta1^t),   v_hat = v_t / (1 - beta2^t)     (bias correction:
                                                                          m and v start at 0)
        w_t = w_{t-1} - lr * m_hat / (sqrt(v_hat) + eps)

    ``amsgrad=True`` divides by the largest v_hat seen so far. ``weight_decay``
    adds ``weight_decay * w`` to the gradient (L2), or, with
    ``decoupled_weight_decay=True`` (that is :class:`AdamW`), shrinks the
    weights directly. Defaults are PyTorch's.

    >>> import numpy as np
    >>> from autograd_core import Value
    >>> w = Value(np.array([1.0, -2.0]))
    >>> opt = Adam([w], lr=0.1)
    >>> (w * w).sum().backward(); opt.step()
    >>> w.data.round(6)                          # the first step is lr * sign(g)
    array([ 0.9, -1.9])
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, *,
                 maximize=False, decoupled_weight_decay=False):
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize, decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def _validate_group(self, group, where):
        super()._validate_group(group, where)
        self._check_range(group, where, "eps")
        self._check_range(group, where, "weight_decay")
        betas = group.get("betas")
        if betas is not None:
            if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
                raise ValueError(f"{type(self).__name__}: invalid betas={betas} in {where}; both must be in [0, 1)")
            group["betas"] = tuple(betas)

    def _init_state(self, p, group):
        state = {"step": 0, "exp_avg": np.zeros(p.shape, dtype=p.dtype), "exp_avg_sq": np.zeros(p.shape, dtype=p.dtype)}
        if group["amsgrad"]:
            state["max_exp_avg_sq"] = np.zeros(p.shape, dtype=p.dtype)
        return state

    def _update(self, p, g, group, state):
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        if group["decoupled_weight_decay"] and group["weight_decay"]:
            p.data *= 1 - lr * group["weight_decay"]  # AdamW: w <- w (1 - lr wd), apart from the gradient
        state["step"] += 1
        t = state["step"]
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m *= beta1  # m_t = beta1 m_{t-1} + (1 - beta1) g_t
        m += (1 - beta1) * g
        v *= beta2  # v_t = beta2 v_{t-1} + (1 - beta2) g_t^2
        v += (1 - beta2) * np.square(g)
        if group["amsgrad"]:
            v_max = state.setdefault("max_exp_avg_sq", np.zeros(p.shape, dtype=p.dtype))
            np.maximum(v_max, v, out=v_max)
            v = v_max
        # bias correction: m and v start at 0, so early averages are too small by (1 - beta^t):
        #   m_hat = m_t / (1 - beta1^t),  v_hat = v_t / (1 - beta2^t)
        #   w_t = w_{t-1} - lr * m_hat / (sqrt(v_hat) + eps)      (below with few temporary arrays)
        denominator = np.sqrt(v / (1 - beta2**t))  # sqrt(v_hat)
        denominator += eps
        step = m * (lr / (1 - beta1**t))  # lr * m_hat
        step /= denominator
        _apply(p, step)


class AdamW(Adam):
    """Adam with decoupled weight decay: ``w <- w * (1 - lr * weight_decay)`` at
    each step, apart from the adaptive gradient step (Loshchilov & Hutter), so
    the decay is not rescaled by the running averages. Default weight_decay=0.01,
    as in PyTorch.

    >>> import numpy as np
    >>> from autograd_core import Value
    >>> w = Value(np.array([1.0, -2.0]))
    >>> opt = AdamW([w], lr=0.1, weight_decay=0.5)
    >>> (w * w).sum().backward(); opt.step()
    >>> w.data.round(6)                          # w (1 - 0.05) - 0.1 sign(g)
    array([ 0.85, -1.8 ])
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *, maximize=False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                         maximize=maximize, decoupled_weight_decay=True)
