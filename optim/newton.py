"""Newton's method with the exact Hessian, for problems with few parameters."""

from __future__ import annotations

import numpy as np

from autograd_core import GraphFreedError, Value, enable_grad, no_grad
from autograd_core.compile import CompileError, CompiledResult
from autograd_core.functional import gradient_and_hessian

from .optimizer import Optimizer

__all__ = ["Newton"]

_FALLBACKS = ("levenberg", "gradient", None)


class Newton(Optimizer):
    """Damped Newton steps from the exact gradient ``g`` and Hessian ``H``::

        w <- w - lr * (H + lambda I)^-1 g

    The second derivatives come from the engine itself (``grad(...,
    create_graph=True)`` differentiated again), so each step costs one
    backward pass per parameter element: use it for small problems.

    Newton's step only goes downhill when ``H`` is positive definite. When it
    is not (a saddle point, a concave region), the ``fallback`` decides:

    * ``"levenberg"`` (default): add ``lambda = 2 |e_min| + 1e-3 max(1, |e|_max)``
      to ``damping``, where ``e`` are the eigenvalues of ``H + damping I``, so
      the most negative curvature becomes positive (Levenberg damping: a step
      between Newton's and a short gradient step). Near a saddle this moves
      away from it, downhill along the negative curvature.
    * ``"gradient"``: take a plain gradient step ``w <- w - lr * g``.
    * ``None``: solve ``H d = -g`` anyway (pure Newton; it is attracted to
      saddle points, as the course notes warn).

    ``step(closure)`` needs a closure that recomputes and *returns* the loss
    (a one-element Value built from the parameters); it must not call
    ``backward()`` itself, because the Hessian needs the loss's graph.
    ``state`` of the first parameter records ``n_iter`` and the
    ``damping`` used by the last step.

    >>> import numpy as np
    >>> from autograd_core import Value
    >>> w = Value(np.array([3.0, -1.0]))
    >>> opt = Newton([w])
    >>> A = np.array([[3.0, 1.0], [1.0, 2.0]])
    >>> loss = lambda: 0.5 * (w @ Value(A, requires_grad=False) @ w) - w[0]
    >>> _ = opt.step(loss)                       # one step to the minimum of a quadratic
    >>> np.allclose(w.data, np.linalg.solve(A, [1.0, 0.0]))
    True
    """

    def __init__(self, params, lr=1.0, damping=0.0, fallback="levenberg"):
        if fallback not in _FALLBACKS:
            raise ValueError(f"Newton: fallback must be one of {_FALLBACKS}, got {fallback!r}")
        super().__init__(params, dict(lr=lr, damping=damping, fallback=fallback))
        if len(self.param_groups) != 1:
            raise ValueError("Newton: works on one parameter group (the Hessian couples all parameters)")

    def _validate_group(self, group, where):
        super()._validate_group(group, where)
        self._check_range(group, where, "damping")

    def step(self, closure=None):
        """One Newton step; returns the loss at the starting point."""
        if closure is None:
            raise TypeError("Newton.step: needs a closure that recomputes and returns the loss, e.g. opt.step(lambda: loss_fn(w))")
        group = self.param_groups[0]
        params = group["params"]
        with enable_grad():
            loss = closure()
        if isinstance(loss, CompiledResult):
            raise CompileError("Newton.step: the closure returned a compiled step's result; Newton's method needs "
                               "second derivatives (a backward pass of the backward pass), which a compiled program "
                               "does not record: call the uncompiled function in the closure")
        if not isinstance(loss, Value) or loss.size != 1:
            raise TypeError("Newton.step: the closure must return the loss as a one-element Value")
        try:
            g, H = gradient_and_hessian(loss, params)
        except GraphFreedError as exc:
            raise RuntimeError(
                "Newton.step: the loss's graph was already freed; the closure must return the loss "
                "without calling backward() on it"
            ) from exc
        direction, damping = self._direction(g, H, group)
        state = self.state.setdefault(params[0], {"n_iter": 0})
        state["n_iter"] += 1
        state["damping"] = damping
        step = group["lr"] * direction
        with no_grad():
            start = 0
            for p in params:
                piece = step[start:start + p.size]
                start += p.size
                p.data += piece.reshape(p.shape)[()] if p.ndim == 0 else piece.reshape(p.shape).astype(p.dtype, copy=False)
        return loss

    @staticmethod
    def _direction(g, H, group):
        """The step direction d (w moves by lr * d) and the damping lambda used."""
        n = len(g)
        identity = np.eye(n, dtype=H.dtype)
        fallback = group["fallback"]
        damping = float(group["damping"])
        if fallback is None:
            try:
                return np.linalg.solve(H + damping * identity, -g), damping
            except np.linalg.LinAlgError:  # singular: the least-squares Newton step
                return np.linalg.lstsq(H + damping * identity, -g, rcond=None)[0], damping
        shifted = H + damping * identity
        if not np.all(np.isfinite(shifted)):
            raise FloatingPointError("Newton.step: the Hessian holds NaN or Inf; check the loss (detect_anomaly() helps)")
        eigenvalues = np.linalg.eigvalsh(shifted)  # ascending; n is small
        lowest, scale = eigenvalues[0], max(1.0, float(np.abs(eigenvalues).max()))
        if lowest <= 1e-10 * scale:  # not (safely) positive definite
            if fallback == "gradient":
                return -g, None
            # Levenberg: add lambda = 2|lowest| (+ a little), so the most negative
            # curvature is mirrored to positive and the step goes downhill
            damping += 2 * abs(lowest) + 1e-3 * scale
            shifted = H + damping * identity
        factor = np.linalg.cholesky(shifted)  # L L^T = H + lambda I
        return -np.linalg.solve(factor.T, np.linalg.solve(factor, g)), damping
