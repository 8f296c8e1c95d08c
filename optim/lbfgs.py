"""L-BFGS: a quasi-Newton method that learns the curvature from recent steps."""

from __future__ import annotations

import numpy as np

from autograd_core import Value, enable_grad, no_grad

from .optimizer import Optimizer, as_number

__all__ = ["LBFGS"]

# What the state keeps from one step() to the next besides the counters (torch.optim.LBFGS's names).
_MEMORY = ("d", "t", "old_dirs", "old_stps", "ro", "H_diag", "prev_flat_grad", "prev_loss")


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
            loss = as_number(closure())
        flat_grad = self._flat_grad()
        self._set_params(start)
        return loss, flat_grad

    # ---- the iterations ----------------------------------------------------
    def step(self, closure=None):
        """Run up to ``max_iter`` L-BFGS iterations; return the loss from the first closure call."""
        if closure is None:
            raise TypeError("LBFGS.step: needs a closure that zeroes the grads, computes the loss, calls backward() and returns the loss")
        group = self.param_groups[0]
        state = self.state.setdefault(self._params[0], {})
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)

        with enable_grad():
            first_loss = closure()
        loss = as_number(first_loss)
        state["func_evals"] += 1
        flat_grad = self._flat_grad()
        if np.abs(flat_grad).max() <= group["tolerance_grad"]:
            return first_loss  # already at a stationary point

        # what one iteration hands the next (and one step() the next): the last
        # direction and step length, the curvature pairs, the last gradient and loss
        memory = {key: state.get(key) for key in _MEMORY}
        self._iterate(closure, group, state, memory, loss, flat_grad)
        state.update(memory)
        return first_loss

    def _iterate(self, closure, group, state, memory, loss, flat_grad):
        """The iterations of one step(): a direction, a step along it, until
        ``max_iter`` or ``max_eval`` is reached or progress stops."""
        max_iter, max_eval = group["max_iter"], group["max_eval"]
        tolerance_grad, tolerance_change = group["tolerance_grad"], group["tolerance_change"]
        evals, n_iter = 1, 0
        while n_iter < max_iter:
            n_iter += 1
            state["n_iter"] += 1
            first_ever = state["n_iter"] == 1
            d = self._direction(memory, flat_grad, first_ever, group["history_size"])
            memory.update(d=d, prev_flat_grad=flat_grad.copy(), prev_loss=loss)
            # step length: the first step ever is kept short, then lr
            t = min(1.0, 1.0 / np.abs(flat_grad).sum()) * group["lr"] if first_ever else group["lr"]
            memory["t"] = t

            directional_derivative = float(flat_grad @ d)
            if directional_derivative > -tolerance_change:
                break  # not a descent direction (or a negligible one)

            if group["line_search_fn"] == "strong_wolfe":
                loss, flat_grad, t, used_evals = self._search_along(
                    closure, d, t, loss, flat_grad, directional_derivative, max_ls=max_eval - evals)
            else:
                loss, flat_grad, used_evals = self._fixed_step(closure, d, t, loss, flat_grad,
                                                               last=n_iter == max_iter)
            memory["t"] = t
            evals += used_evals
            state["func_evals"] += used_evals

            # (after the last iteration without a line search, flat_grad is not
            # re-evaluated, but then the first test already stops)
            if n_iter == max_iter or evals >= max_eval or np.abs(flat_grad).max() <= tolerance_grad:
                break
            if np.abs(d * t).max() <= tolerance_change:
                break  # the step has become negligible
            if abs(loss - memory["prev_loss"]) < tolerance_change:
                break  # the loss has stopped changing

    @classmethod
    def _direction(cls, memory, flat_grad, first_ever, history_size):
        """Where to step: steepest descent at the first iteration ever; after
        that the two-loop recursion, once the last step's pair (s, y) is added
        to the history (if it shows positive curvature)."""
        if first_ever:  # no history yet: steepest descent
            memory.update(old_dirs=[], old_stps=[], ro=[], H_diag=1.0)
            return -flat_grad
        old_dirs, old_stps, ro = memory["old_dirs"], memory["old_stps"], memory["ro"]
        y = flat_grad - memory["prev_flat_grad"]  # change of gradient
        s = memory["d"] * memory["t"]  # the step just taken
        ys = float(y @ s)
        if ys > 1e-10:  # keep the pair only if it shows positive curvature
            if len(old_dirs) == history_size:
                del old_dirs[0], old_stps[0], ro[0]  # forget the oldest pair
            old_dirs.append(y)
            old_stps.append(s)
            ro.append(1.0 / ys)
            memory["H_diag"] = ys / float(y @ y)  # initial inverse-Hessian scale gamma = s.y / y.y
        return cls._two_loop(-flat_grad, old_dirs, old_stps, ro, memory["H_diag"])

    def _search_along(self, closure, d, t, loss, flat_grad, directional_derivative, max_ls):
        """A strong-Wolfe line search along d from t, then the step it found:
        (loss, flat gradient, step length, closure calls)."""
        start = self._copy_params()

        def objective(step_size, direction):
            return self._evaluate_at(closure, start, step_size, direction)

        loss, flat_grad, t, used_evals = _strong_wolfe(
            objective, t, d, loss, flat_grad, directional_derivative, max_ls=max_ls)
        self._move(t, d)
        return loss, flat_grad, t, used_evals

    def _fixed_step(self, closure, d, t, loss, flat_grad, last):
        """A step of length t along d, then the loss and gradient there (not
        after the `last` iteration): (loss, flat gradient, closure calls)."""
        self._move(t, d)
        if last:
            return loss, flat_grad, 0
        with enable_grad():
            loss = as_number(closure())
        return loss, self._flat_grad(), 1

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
    enough slope (|g(t).d| <= -c2 g(0).d). Returns (f, g, t, evaluations).

    `objective(t, d)` is the loss and gradient at the start plus t d; f, g and
    gtd are the loss, gradient and slope g.d at the start. Every trial step
    costs one evaluation, at most `max_ls` after the first.
    """
    g = g.copy()
    bracket, done, iterations = _bracket(objective, t, d, f, g, gtd, c1, c2, max_ls)
    return _zoom(objective, bracket, done, iterations, d, f, gtd, c1, c2, tolerance_change, max_ls)


def _bracket(objective, t, d, f, g, gtd, c1, c2, max_ls):
    """The bracketing phase: grow t until an interval [t_prev, t] holds an
    acceptable step. Returns the bracket (steps, losses, gradients, slopes;
    slopes None when the zoom has no use for them), whether its one step
    already satisfies both conditions, and how many steps were tried after
    the first."""
    f_new, g_new = objective(t, d)
    gtd_new = float(g_new @ d)
    t_prev, f_prev, g_prev, gtd_prev = 0.0, f, g, gtd
    iterations = 0
    while iterations < max_ls:
        if f_new > f + c1 * t * gtd or (iterations > 1 and f_new >= f_prev):
            return ([t_prev, t], [f_prev, f_new], [g_prev, g_new.copy()], [gtd_prev, gtd_new]), False, iterations
        if abs(gtd_new) <= -c2 * gtd:
            return ([t], [f_new], [g_new], None), True, iterations
        if gtd_new >= 0:
            return ([t_prev, t], [f_prev, f_new], [g_prev, g_new.copy()], [gtd_prev, gtd_new]), False, iterations
        # extrapolate: a cubic step between 1.01 t and 10 t
        min_step = t + 0.01 * (t - t_prev)
        max_step = t * 10
        t_next = _cubic_minimizer(t_prev, f_prev, gtd_prev, t, f_new, gtd_new, bounds=(min_step, max_step))
        t_prev, f_prev, g_prev, gtd_prev = t, f_new, g_new.copy(), gtd_new
        t = t_next
        f_new, g_new = objective(t, d)
        gtd_new = float(g_new @ d)
        iterations += 1
    # ran out of evaluations while extrapolating (the zoom will not run)
    return ([0.0, t], [f, f_new], [g, g_new], None), False, iterations


def _zoom(objective, bracket, done, iterations, d, f, gtd, c1, c2, tolerance_change, max_ls):
    """The zoom phase: shrink the bracket until a step satisfies both
    conditions (or the evaluations run out). Returns (f, g, t, evaluations)
    of the bracket's end with the lower loss."""
    steps, losses, grads, slopes = bracket
    d_norm = np.abs(d).max()
    insufficient_progress = False
    low_pos, high_pos = (0, 1) if losses[0] <= losses[-1] else (1, 0)
    while not done and iterations < max_ls:
        if abs(steps[1] - steps[0]) * d_norm < tolerance_change:
            break  # the bracket is too small to matter
        t = _cubic_minimizer(steps[0], losses[0], slopes[0], steps[1], losses[1], slopes[1])
        t, insufficient_progress = _away_from_the_ends(t, steps, insufficient_progress)
        f_new, g_new = objective(t, d)
        gtd_new = float(g_new @ d)
        iterations += 1

        if f_new > f + c1 * t * gtd or f_new >= losses[low_pos]:
            # not enough decrease: t becomes the high end
            steps[high_pos], losses[high_pos] = t, f_new
            grads[high_pos], slopes[high_pos] = g_new.copy(), gtd_new
            low_pos, high_pos = (0, 1) if losses[0] <= losses[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True  # both Wolfe conditions hold
            elif gtd_new * (steps[high_pos] - steps[low_pos]) >= 0:
                # the slope points out of the bracket: the old low end becomes the high end
                steps[high_pos], losses[high_pos] = steps[low_pos], losses[low_pos]
                grads[high_pos], slopes[high_pos] = grads[low_pos], slopes[low_pos]
            steps[low_pos], losses[low_pos] = t, f_new
            grads[low_pos], slopes[low_pos] = g_new.copy(), gtd_new
    return losses[low_pos], grads[low_pos], steps[low_pos], iterations + 1


def _away_from_the_ends(t, steps, insufficient_progress):
    """Keep the trial step t away from the ends of the bracket, or bisect
    if it was stuck near one the time before: (t, insufficient_progress)."""
    span_max, span_min = max(steps), min(steps)
    eps = 0.1 * (span_max - span_min)
    if min(span_max - t, t - span_min) < eps:
        if insufficient_progress or t >= span_max or t <= span_min:
            t = span_max - eps if abs(t - span_max) < abs(t - span_min) else span_min + eps
            return t, False
        return t, True
    return t, False
