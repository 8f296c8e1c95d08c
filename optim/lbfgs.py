"""L-BFGS: a quasi-Newton method that learns the curvature from recent steps."""

from __future__ import annotations

import numpy as np

from autograd_core import Value, enable_grad, no_grad

from .optimizer import Optimizer


def _number(loss):
    # the loss as a plain number, on purpose (float() of a Value that requires grad warns)
    return loss.item() if isinstance(loss, Value) else float(loss)

__all__ = ["LBFGS"]


class LBFGS(Optimizer):
    """Limited-memory BFGS, as ``torch.optim.LBFGS`` (same arguments, defaults and iterations).

    Newton's step ``-H^-1 g`` without the Hessian: the last ``history_size``
    pairs of steps ``s = w_{k+1} - w_k`` and gradient changes
    ``y = g_{k+1} - g_k`` describe the curvature, and the two-loop recursion
    applies the resulting inverse-Hessian estimate to ``-g``. One ``step()``
    runs up to ``max_iter`` such iterations and re-evaluates the loss through
    ``closure`` (at most ``max_eval`` times).

    The closure clears the gradients, computes the loss, calls ``backward()``
    and returns the loss, exactly as for PyTorch::

        def closure():
            opt.zero_grad()
            loss = loss_fn(params)
            loss.backward()
            return loss

    ``line_search_fn=None`` (default) takes fixed steps of ``lr`` (the very
    first one scaled down to ``min(1, 1/|g|_1) * lr``); ``"strong_wolfe"``
    searches along each direction for a step satisfying the strong Wolfe
    conditions. All parameters are treated as one flat vector.

    >>> import numpy as np
    >>> from autograd_core import Value
    >>> w = Value(np.array([-1.5, 2.0]))
    >>> opt = LBFGS([w], line_search_fn="strong_wolfe", max_iter=100)
    >>> def closure():
    ...     opt.zero_grad()
    ...     loss = (1 - w[0]) ** 2 + 100 * (w[1] - w[0] ** 2) ** 2   # Rosenbrock
    ...     loss.backward()
    ...     return loss
    >>> _ = opt.step(closure)
    >>> np.allclose(w.data, [1.0, 1.0], atol=1e-5)
    True
    """

    _free_shape_state = ("d", "prev_flat_grad", "old_dirs", "old_stps", "ro", "al")

    def __init__(self, params, lr=1, max_iter=20, max_eval=None, tolerance_grad=1e-7, tolerance_change=1e-9,
                 history_size=100, line_search_fn=None):
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        if line_search_fn not in (None, "strong_wolfe"):
            raise ValueError(f"LBFGS: line_search_fn must be None or 'strong_wolfe', got {line_search_fn!r}")
        for name, count in (("history_size", history_size), ("max_iter", max_iter), ("max_eval", max_eval)):
            if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
                raise ValueError(f"LBFGS: {name} must be a whole number >= 1, got {count!r}")
        defaults = dict(lr=lr, max_iter=max_iter, max_eval=max_eval, tolerance_grad=tolerance_grad,
                        tolerance_change=tolerance_change, history_size=history_size, line_search_fn=line_search_fn)
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS: works on one parameter group (all parameters form one vector)")
        self._params = self.param_groups[0]["params"]

    # ---- the parameters as one flat vector ---------------------------------
    def _flat_grad(self):
        parts = []
        for p in self._params:
            g = p.grad
            if g is None:
                parts.append(np.zeros(p.size, dtype=p.dtype))
            else:
                parts.append(np.ravel(g.data if isinstance(g, Value) else g))
        return np.concatenate(parts)

    def _move(self, step_size, direction):
        """w <- w + step_size * direction, parameter by parameter."""
        start = 0
        with no_grad():
            for p in self._params:
                piece = direction[start:start + p.size].reshape(p.shape)
                start += p.size
                p.data += step_size * piece if p.ndim else step_size * piece[()]

    def _copy_params(self):
        return [np.array(p.data, copy=True) for p in self._params]

    def _set_params(self, saved):
        with no_grad():
            for p, data in zip(self._params, saved):
                if p.ndim:
                    np.copyto(p.data, data)
                    p.data = p.data  # bump the version: the data changed
                else:
                    p.data = data[()]

    def _evaluate_at(self, closure, start, step_size, direction):
        """Loss and flat gradient at ``start + step_size * direction`` (the
        parameters are put back to ``start`` afterwards)."""
        self._move(step_size, direction)
        with enable_grad():
            loss = _number(closure())
        flat_grad = self._flat_grad()
        self._set_params(start)
        return loss, flat_grad

    # ---- the iterations ----------------------------------------------------
    def step(self, closure=None):
        """Run up to ``max_iter`` L-BFGS iterations; return the loss from the first closure call."""
        if closure is None:
            raise TypeError("LBFGS.step: needs a closure that zeroes the grads, computes the loss, calls backward() and returns the loss")
        group = self.param_groups[0]
        lr, max_iter, max_eval = group["lr"], group["max_iter"], group["max_eval"]
        tolerance_grad, tolerance_change = group["tolerance_grad"], group["tolerance_change"]
        history_size = group["history_size"]

        state = self.state.setdefault(self._params[0], {})
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)

        with enable_grad():
            first_loss = closure()
        loss = _number(first_loss)
        evals = 1
        state["func_evals"] += 1
        flat_grad = self._flat_grad()
        if np.abs(flat_grad).max() <= tolerance_grad:
            return first_loss  # already at a stationary point

        d, t = state.get("d"), state.get("t")
        old_dirs, old_stps, ro = state.get("old_dirs"), state.get("old_stps"), state.get("ro")
        H_diag, prev_flat_grad, prev_loss = state.get("H_diag"), state.get("prev_flat_grad"), state.get("prev_loss")

        n_iter = 0
        while n_iter < max_iter:
            n_iter += 1
            state["n_iter"] += 1

            if state["n_iter"] == 1:  # no history yet: steepest descent
                d = -flat_grad
                old_dirs, old_stps, ro = [], [], []
                H_diag = 1.0
            else:
                y = flat_grad - prev_flat_grad  # change of gradient
                s = d * t  # the step just taken
                ys = float(y @ s)
                if ys > 1e-10:  # keep the pair only if it shows positive curvature
                    if len(old_dirs) == history_size:
                        del old_dirs[0], old_stps[0], ro[0]  # forget the oldest pair
                    old_dirs.append(y)
                    old_stps.append(s)
                    ro.append(1.0 / ys)
                    H_diag = ys / float(y @ y)  # initial inverse-Hessian scale gamma = s.y / y.y
                d = self._two_loop(-flat_grad, old_dirs, old_stps, ro, H_diag)

            prev_flat_grad = flat_grad.copy()
            prev_loss = loss

            # step length: the first step ever is kept short, then lr
            t = min(1.0, 1.0 / np.abs(flat_grad).sum()) * lr if state["n_iter"] == 1 else lr

            directional_derivative = float(flat_grad @ d)
            if directional_derivative > -tolerance_change:
                break  # not a descent direction (or a negligible one)

            used_evals = 0
            if group["line_search_fn"] == "strong_wolfe":
                start = self._copy_params()

                def objective(step_size, direction):
                    return self._evaluate_at(closure, start, step_size, direction)

                loss, flat_grad, t, used_evals = _strong_wolfe(
                    objective, t, d, loss, flat_grad, directional_derivative, max_ls=max_eval - evals)
                self._move(t, d)
                converged = np.abs(flat_grad).max() <= tolerance_grad
            else:
                self._move(t, d)
                converged = False
                if n_iter != max_iter:  # re-evaluate, except after the last iteration
                    with enable_grad():
                        loss = _number(closure())
                    flat_grad = self._flat_grad()
                    converged = np.abs(flat_grad).max() <= tolerance_grad
                    used_evals = 1
            evals += used_evals
            state["func_evals"] += used_evals

            if n_iter == max_iter or evals >= max_eval or converged:
                break
            if np.abs(d * t).max() <= tolerance_change:
                break  # the step has become negligible
            if abs(loss - prev_loss) < tolerance_change:
                break  # the loss has stopped changing

        state.update(d=d, t=t, old_dirs=old_dirs, old_stps=old_stps, ro=ro, H_diag=H_diag,
                     prev_flat_grad=prev_flat_grad, prev_loss=prev_loss)
        return first_loss

    @staticmethod
    def _two_loop(q, old_dirs, old_stps, ro, H_diag):
        """The two-loop recursion: the inverse-Hessian estimate times q, from the stored pairs."""
        alphas = [0.0] * len(old_dirs)
        for i in range(len(old_dirs) - 1, -1, -1):  # newest pair first
            alphas[i] = float(old_stps[i] @ q) * ro[i]
            q = q - alphas[i] * old_dirs[i]
        r = q * H_diag
        for i in range(len(old_dirs)):  # oldest pair first
            beta = float(old_dirs[i] @ r) * ro[i]
            r = r + (alphas[i] - beta) * old_stps[i]
        return r


# --------------------------------------------------------------------------
# Strong-Wolfe line search (Nocedal & Wright, algorithms 3.5 and 3.6), with the
# minimiser of a cubic through two points as the trial step.
# --------------------------------------------------------------------------
def _cubic_minimizer(x1, f1, g1, x2, f2, g2, bounds=None):
    """Minimiser of the cubic through (x1, f1) and (x2, f2) with slopes g1, g2,
    clipped to `bounds` (the bisection point if the cubic has no minimum)."""
    low, high = bounds if bounds is not None else sorted((x1, x2))
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    discriminant = d1 * d1 - g1 * g2
    if discriminant >= 0:
        d2 = np.sqrt(discriminant)
        if x1 <= x2:
            x = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
        else:
            x = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
        return min(max(x, low), high)
    return (low + high) / 2.0


def _strong_wolfe(objective, t, d, f, g, gtd, c1=1e-4, c2=0.9, tolerance_change=1e-9, max_ls=25):
    """Find a step t along d with sufficient decrease (Armijo, c1) and a small
    enough slope (|g(t).d| <= -c2 g(0).d). Returns (f, g, t, evaluations)."""
    d_norm = np.abs(d).max()
    g = g.copy()
    f_new, g_new = objective(t, d)
    evals = 1
    gtd_new = float(g_new @ d)

    # bracketing phase: grow t until an interval [t_prev, t] holds an acceptable step
    t_prev, f_prev, g_prev, gtd_prev = 0.0, f, g, gtd
    done = False
    iterations = 0
    while iterations < max_ls:
        if f_new > f + c1 * t * gtd or (iterations > 1 and f_new >= f_prev):
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new.copy()], [gtd_prev, gtd_new]
            break
        if abs(gtd_new) <= -c2 * gtd:
            bracket, bracket_f, bracket_g = [t], [f_new], [g_new]
            done = True
            break
        if gtd_new >= 0:
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new.copy()], [gtd_prev, gtd_new]
            break
        # extrapolate: a cubic step between 1.01 t and 10 t
        min_step = t + 0.01 * (t - t_prev)
        max_step = t * 10
        t_next = _cubic_minimizer(t_prev, f_prev, gtd_prev, t, f_new, gtd_new, bounds=(min_step, max_step))
        t_prev, f_prev, g_prev, gtd_prev = t, f_new, g_new.copy(), gtd_new
        t = t_next
        f_new, g_new = objective(t, d)
        evals += 1
        gtd_new = float(g_new @ d)
        iterations += 1
    if iterations == max_ls:  # ran out of evaluations while extrapolating
        bracket, bracket_f, bracket_g = [0.0, t], [f, f_new], [g, g_new]

    # zoom phase: shrink the bracket until a step satisfies both conditions
    insufficient_progress = False
    low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[-1] else (1, 0)
    while not done and iterations < max_ls:
        if abs(bracket[1] - bracket[0]) * d_norm < tolerance_change:
            break  # the bracket is too small to matter
        t = _cubic_minimizer(bracket[0], bracket_f[0], bracket_gtd[0], bracket[1], bracket_f[1], bracket_gtd[1])
        # keep away from the ends of the bracket, or bisect if stuck near one
        span_max, span_min = max(bracket), min(bracket)
        eps = 0.1 * (span_max - span_min)
        if min(span_max - t, t - span_min) < eps:
            if insufficient_progress or t >= span_max or t <= span_min:
                t = span_max - eps if abs(t - span_max) < abs(t - span_min) else span_min + eps
                insufficient_progress = False
            else:
                insufficient_progress = True
        else:
            insufficient_progress = False

        f_new, g_new = objective(t, d)
        evals += 1
        gtd_new = float(g_new @ d)
        iterations += 1

        if f_new > f + c1 * t * gtd or f_new >= bracket_f[low_pos]:
            # not enough decrease: t becomes the high end
            bracket[high_pos], bracket_f[high_pos] = t, f_new
            bracket_g[high_pos], bracket_gtd[high_pos] = g_new.copy(), gtd_new
            low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True  # both Wolfe conditions hold
            elif gtd_new * (bracket[high_pos] - bracket[low_pos]) >= 0:
                # the slope points out of the bracket: the old low end becomes the high end
                bracket[high_pos], bracket_f[high_pos] = bracket[low_pos], bracket_f[low_pos]
                bracket_g[high_pos], bracket_gtd[high_pos] = bracket_g[low_pos], bracket_gtd[low_pos]
            bracket[low_pos], bracket_f[low_pos] = t, f_new
            bracket_g[low_pos], bracket_gtd[low_pos] = g_new.copy(), gtd_new

    t = bracket[low_pos]
    return bracket_f[low_pos], bracket_g[low_pos], t, evals
