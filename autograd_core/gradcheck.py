"""Check analytic gradients against central differences."""

from __future__ import annotations

import numpy as np

from .engine import Value, grad, no_grad
from .errors import GradcheckError

__all__ = ["gradcheck", "numerical_gradient"]


def _scalar_objective(fn, inputs, projection_seed=0):
    """fn(*inputs) reduced to one number. A non-scalar output is weighted by
    a fixed random array, which checks a random direction of its Jacobian."""
    out = fn(*inputs)
    if not isinstance(out, Value):
        raise TypeError(f"gradcheck: fn must return a Value, got {type(out).__name__}")
    if out.size == 1:
        return out.sum() if out.ndim else out
    weights = np.random.default_rng(projection_seed).standard_normal(out.shape)
    return (out * weights).sum()


def numerical_gradient(fn, inputs, index, eps=1e-6):
    """Central-difference gradient of the scalar objective of fn with respect
    to ``inputs[index]``, computed in float64.

    >>> x = Value([1.0, 2.0])
    >>> np.round(numerical_gradient(lambda v: (v * v).sum(), [x], 0), 6).tolist()   # 2 x
    [2.0, 4.0]
    """
    x = inputs[index]
    # C order, so that reshape(-1) below is a view we can perturb (a transposed input is not)
    base = np.array(x.data, dtype=np.float64, order="C")
    numeric = np.zeros_like(base)
    flat = base.reshape(-1)
    for k in range(flat.size):
        original = flat[k]
        values = []
        for step in (eps, -eps):
            flat[k] = original + step
            probe = list(inputs)
            probe[index] = Value(base.copy(), requires_grad=False)
            with no_grad():
                values.append(float(_scalar_objective(fn, probe).data))
        flat[k] = original
        numeric.reshape(-1)[k] = (values[0] - values[1]) / (2 * eps)
    return numeric


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3):
    """Compare the engine's gradients of ``fn(*inputs)`` with central differences.

    `inputs` is a sequence of Values (or arrays, which are turned into
    float64 Values); every input that requires grad is checked, in float64.
    A non-scalar output is reduced with fixed random weights. Returns True,
    or raises :class:`GradcheckError` naming the input, the worst index and
    both values.

    >>> from autograd_core import Value, gradcheck
    >>> gradcheck(lambda x: (x * x).tanh(), [Value([0.5, -1.0])])
    True
    """
    inputs = [
        Value(np.array(x.data, dtype=np.float64), requires_grad=x.requires_grad, label=x.label)
        if isinstance(x, Value) else Value(np.array(x, dtype=np.float64))
        for x in inputs
    ]
    checked = [k for k, x in enumerate(inputs) if x.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad, so there is nothing to check")
    objective = _scalar_objective(fn, inputs)
    if not objective.requires_grad:
        raise GradcheckError("gradcheck: the output does not depend on any input that requires grad")
    analytic = grad(objective, [inputs[k] for k in checked], allow_unused=True)
    for k, analytic_k in zip(checked, analytic):
        x = inputs[k]
        analytic_k = np.zeros(x.shape) if analytic_k is None else np.asarray(analytic_k, dtype=np.float64)
        numeric_k = numerical_gradient(fn, inputs, k, eps)
        close = np.isclose(analytic_k, numeric_k, atol=atol, rtol=rtol, equal_nan=False)
        if not np.all(close):
            error = np.abs(analytic_k - numeric_k)
            error = np.where(np.isnan(error), np.inf, error)
            worst = np.unravel_index(np.argmax(error), x.shape) if x.ndim else ()
            name = f"input {k}" + (f" ({x.label!r})" if x.label else "") + f" of shape {x.shape}"
            raise GradcheckError(
                f"gradcheck: {name}, index {tuple(int(i) for i in worst)}: analytic gradient "
                f"{float(np.asarray(analytic_k)[worst]):.10g} but central difference "
                f"{float(numeric_k[worst]):.10g} (atol={atol}, rtol={rtol}, eps={eps}); "
                f"{int((~close).sum())} of {close.size} entries differ"
            )
    return True
