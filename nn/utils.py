"""Gradient clipping, max-norm constraints and weight penalties.

>>> import numpy as np
>>> from nn import Parameter, utils
>>> w = Parameter([3.0, 4.0]); w.grad = np.array([3.0, 4.0])
>>> float(utils.clip_grad_norm_([w], max_norm=1.0))     # the norm before clipping
5.0
>>> np.round(w.grad, 4)
array([0.6, 0.8])
"""

from __future__ import annotations

import numpy as np

from autograd_core import Value

from .module import Module

__all__ = ["clip_grad_norm_", "clip_grad_value_", "max_norm_", "l1_penalty", "l2_penalty"]


def _non_negative(where, name, value):
    """`value` as a float; a negative or NaN bound would flip or wipe the gradients silently."""
    value = float(value)
    if not value >= 0:
        raise ValueError(f"{where}: {name} must be a number >= 0, got {value}")
    return value


def _parameter_list(parameters):
    if isinstance(parameters, Module):
        return list(parameters.parameters())
    if isinstance(parameters, Value):
        return [parameters]
    return list(parameters)


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Scale all gradients together so that their joint norm is at most `max_norm`.

    The norm is taken over every gradient as if concatenated into one vector
    (``norm_type`` 2 by default, ``inf`` for the largest entry). When it
    exceeds `max_norm`, each gradient is multiplied by
    ``max_norm / (norm + 1e-6)`` (PyTorch's formula). Returns the total norm
    before clipping.

    >>> from nn import Parameter
    >>> a = Parameter([0.0]); a.grad = np.array([6.0])
    >>> b = Parameter([0.0]); b.grad = np.array([8.0])
    >>> float(clip_grad_norm_([a, b], max_norm=5.0))      # sqrt(6^2 + 8^2)
    10.0
    >>> np.round(np.concatenate([a.grad, b.grad]), 4)      # halved together, direction kept
    array([3., 4.])
    """
    max_norm = _non_negative("clip_grad_norm_", "max_norm", max_norm)
    params = [p for p in _parameter_list(parameters) if p.grad is not None]
    if not params:
        return np.float64(0.0)
    norm_type = float(norm_type)
    if norm_type == np.inf:
        total = max(float(np.max(np.abs(p.grad))) for p in params)
    else:
        total = float(sum(float(np.sum(np.abs(np.asarray(p.grad, dtype=np.float64)) ** norm_type)) for p in params))
        total = total ** (1.0 / norm_type)
    if error_if_nonfinite and not np.isfinite(total):
        raise RuntimeError(
            f"clip_grad_norm_: the total norm of the gradients is {total}, so they cannot be clipped; "
            f"pass error_if_nonfinite=False to clip anyway, or look for the NaN with autograd_core.detect_anomaly()"
        )
    coefficient = max_norm / (total + 1e-6)
    if coefficient < 1:
        for p in params:
            p.grad = p.grad * p.grad.dtype.type(coefficient)
    return np.float64(total)


def clip_grad_value_(parameters, clip_value):
    """Clamp every gradient entry to ``[-clip_value, clip_value]``.

    >>> from nn import Parameter
    >>> w = Parameter([0.0, 0.0]); w.grad = np.array([-3.0, 0.5])
    >>> clip_grad_value_([w], 1.0); w.grad
    array([-1. ,  0.5])
    """
    clip_value = _non_negative("clip_grad_value_", "clip_value", clip_value)
    for p in _parameter_list(parameters):
        if p.grad is not None:
            p.grad = np.clip(p.grad, -clip_value, clip_value)


def max_norm_(weights, max_norm, eps=1e-7):
    """Max-norm constraint: rescale each neuron's incoming weights (each row of
    a ``(out, in)`` weight) whose L2 norm exceeds `max_norm` down to `max_norm`.

    `weights` is a Parameter, a list of them, or a Module (then every
    Parameter with two or more dimensions, i.e. the weights and not the
    biases). Call it after each optimizer step. Returns the row norms before
    rescaling (one array per weight).

    >>> import numpy as np
    >>> from nn import Parameter
    >>> w = Parameter([[3.0, 4.0], [0.3, 0.4]])
    >>> _ = max_norm_(w, 1.0)
    >>> np.round(w.data, 3)
    array([[0.6, 0.8],
           [0.3, 0.4]])
    """
    max_norm = _non_negative("max_norm_", "max_norm", max_norm)
    if isinstance(weights, Module):
        params = [p for p in weights.parameters() if p.ndim >= 2]
    else:
        params = _parameter_list(weights)
    norms = []
    for p in params:
        if p.ndim < 2:
            raise ValueError(f"max_norm_: expects weights of shape (out, in), got shape {p.shape}; biases have no rows")
        data = np.asarray(p.data)
        row_norms = np.sqrt((data.reshape(data.shape[0], -1) ** 2).sum(axis=1))
        scale = np.where(row_norms > max_norm, max_norm / (row_norms + eps), 1.0)
        p.data = (data * scale.reshape((-1,) + (1,) * (data.ndim - 1))).astype(data.dtype)
        norms.append(row_norms)
    return norms


def l1_penalty(parameters, coefficient=1.0):
    """``coefficient * sum |w|`` over the given Parameters, as a Value to add to a loss.

    Pass only the weights to leave biases unpenalised:
    ``[p for name, p in model.named_parameters() if name.endswith("weight")]``.

    >>> from nn import Parameter
    >>> w = Parameter([1.0, -2.0])
    >>> penalty = l1_penalty([w], 0.1); round(float(penalty.data), 4)    # 0.1 * (1 + 2)
    0.3
    >>> penalty.backward(); w.grad                          # coefficient * sign(w)
    array([ 0.1, -0.1])
    """
    params = _parameter_list(parameters)
    if not params:
        raise ValueError("l1_penalty: no parameters given")
    total = params[0].abs().sum()
    for p in params[1:]:
        total = total + p.abs().sum()
    return total * coefficient


def l2_penalty(parameters, coefficient=1.0):
    """``coefficient * sum w^2`` over the given Parameters (no factor 1/2), as a
    Value to add to a loss; its gradient is ``2 * coefficient * w``.

    >>> from nn import Parameter
    >>> float(l2_penalty([Parameter([1.0, 2.0])], 0.1).data)
    0.5
    """
    params = _parameter_list(parameters)
    if not params:
        raise ValueError("l2_penalty: no parameters given")
    total = (params[0] * params[0]).sum()
    for p in params[1:]:
        total = total + (p * p).sum()
    return total * coefficient
