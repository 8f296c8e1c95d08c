"""Whole derivatives of a function: its Jacobian, its Hessian, a Hessian-vector product.

These are built on :func:`autograd_core.grad`. A Jacobian is one backward pass
per output element (each pass gives one row); a Hessian is the Jacobian of the
gradient, where the gradient itself was computed with ``create_graph=True`` so
that it is a graph that can be differentiated again. A Hessian-vector product
needs only two backward passes, whatever the size of ``x``.

They take ``fn`` (a function of one Value) and ``x`` (a Value, an array or a
number). ``x`` is copied into a fresh leaf, so the caller's Value and its
``.grad`` are left alone (as in ``torch.autograd.functional``). Results are
NumPy arrays.

>>> import numpy as np
>>> from autograd_core import hessian
>>> hessian(lambda v: (v ** 3).sum(), np.array([1.0, 2.0]))    # diag(6 x)
array([[ 6.,  0.],
       [ 0., 12.]])
"""

from __future__ import annotations

import numpy as np

from .engine import Value, enable_grad, grad

__all__ = ["jacobian", "hessian", "hvp", "gradient_and_hessian"]


def _fresh_leaf(x, where):
    """A new leaf holding a copy of x's data, so differentiating never touches the caller's Value."""
    data = x.data if isinstance(x, Value) else x
    leaf = Value(np.array(data, copy=True) if np.ndim(data) else data, requires_grad=True)
    if leaf.dtype.kind != "f":
        raise TypeError(f"{where}: x must hold real numbers, got dtype {leaf.dtype}")
    return leaf


def _call(fn, x, where):
    if not callable(fn):
        raise TypeError(f"{where}: fn must be a function of one Value (e.g. lambda v: (v ** 2).sum()), got {type(fn).__name__}")
    with enable_grad():
        y = fn(x)
    if not isinstance(y, Value):
        raise TypeError(
            f"{where}: fn must return a Value computed from its argument, got {type(y).__name__}; "
            f"build the result with autograd_core operations"
        )
    return y


def _rows_of(outputs, x):
    """The Jacobian of `outputs` (a Value) with respect to leaf `x`: one backward
    pass per output element, each seeded with a one-hot gradient.

    Returns an array of shape ``outputs.shape + x.shape``. An output that does
    not depend on x (or a graph with no path to x) gives zero rows.
    """
    rows = np.zeros((outputs.size,) + x.shape, dtype=x.dtype)
    if outputs.requires_grad:
        seed = np.zeros(outputs.size, dtype=outputs.dtype)
        for k in range(outputs.size):
            seed[k] = 1
            (row,) = grad(outputs, x, grad_outputs=seed.reshape(outputs.shape), retain_graph=True, allow_unused=True)
            seed[k] = 0
            if row is not None:
                rows[k] = row.data if isinstance(row, Value) else row
    return rows.reshape(outputs.shape + x.shape)


def jacobian(fn, x):
    """The Jacobian of ``fn`` at ``x``: ``J[i..., j...] = d fn(x)[i...] / d x[j...]``.

    Its shape is ``fn(x).shape + x.shape``. It takes one backward pass per
    element of the output (reverse mode), so it suits functions with few outputs.

    >>> import numpy as np
    >>> jacobian(lambda v: v * v, np.array([1.0, 2.0, 3.0]))   # diag(2 x)
    array([[2., 0., 0.],
           [0., 4., 0.],
           [0., 0., 6.]])
    """
    leaf = _fresh_leaf(x, "jacobian")
    y = _call(fn, leaf, "jacobian")
    return _rows_of(y, leaf)


def _gradient_graph(fn, x, where):
    """Evaluate fn at a fresh leaf and return (leaf, output, gradient as a Value
    whose graph can be differentiated again)."""
    leaf = _fresh_leaf(x, where)
    y = _call(fn, leaf, where)
    if y.size != 1:
        raise ValueError(f"{where}: fn must return one number (a Value of size 1), got shape {y.shape}; reduce it with .sum() or .mean()")
    if not y.requires_grad:  # fn does not depend on x: every derivative is 0
        return leaf, y, None
    (gradient,) = grad(y, leaf, create_graph=True, allow_unused=True)
    return leaf, y, gradient


def gradient_and_hessian(output, inputs):
    """The gradient and Hessian of a scalar `output` with respect to a list of
    leaf Values, flattened and concatenated in order: ``(g, H)`` with ``g`` of
    shape ``(n,)`` and ``H`` of shape ``(n, n)``, n the total number of elements.

    For optimizers over several parameters (``optim.Newton``); ``output``'s
    graph must still be alive. One backward pass with ``create_graph=True``,
    then one per element.

    >>> from autograd_core import Value
    >>> x, y = Value(1.0), Value(2.0)
    >>> g, H = gradient_and_hessian(x * x * y, [x, y])      # g = (2xy, x^2)
    >>> g, H
    (array([4., 1.]), array([[4., 2.],
           [2., 0.]]))
    """
    inputs = list(inputs)
    sizes = [x.size for x in inputs]
    n = int(np.sum(sizes))
    dtype = np.result_type(*[x.dtype for x in inputs])
    g = np.zeros(n, dtype=dtype)
    H = np.zeros((n, n), dtype=dtype)
    if output.size != 1:
        raise ValueError(f"gradient_and_hessian: output must be one number, got shape {output.shape}")
    if not output.requires_grad:
        return g, H
    gradients = grad(output, inputs, create_graph=True, allow_unused=True)
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    for j, gradient in enumerate(gradients):
        if gradient is None:
            continue
        g[offsets[j]:offsets[j + 1]] = np.ravel(gradient.data)
        if not gradient.requires_grad:
            continue  # the gradient is constant: these rows of H are 0
        seed = np.zeros(gradient.size, dtype=gradient.dtype)
        for k in range(gradient.size):
            seed[k] = 1
            row = grad(gradient, inputs, grad_outputs=seed.reshape(gradient.shape), retain_graph=True, allow_unused=True)
            seed[k] = 0
            for i, part in enumerate(row):
                if part is not None:
                    H[offsets[j] + k, offsets[i]:offsets[i + 1]] = np.ravel(part)
    return g, H


def hessian(fn, x):
    """The Hessian of a scalar function: ``H[i..., j...] = d^2 fn / dx[i...] dx[j...]``.

    The gradient is computed with ``create_graph=True`` and then differentiated
    once per element of ``x``. Its shape is ``x.shape + x.shape``.

    >>> import numpy as np
    >>> f = lambda v: v[0] ** 2 * v[1] + 3 * v[1] ** 2     # H = [[2y, 2x], [2x, 6]]
    >>> hessian(f, np.array([1.0, 2.0]))
    array([[4., 2.],
           [2., 6.]])
    """
    leaf, _, gradient = _gradient_graph(fn, x, "hessian")
    if gradient is None:
        return np.zeros(leaf.shape + leaf.shape, dtype=leaf.dtype)
    return _rows_of(gradient, leaf)


def hvp(fn, x, v):
    """Hessian-vector product of a scalar function, without forming the Hessian.

    Returns ``(fn(x), H @ v)`` as NumPy data, like ``torch.autograd.functional.hvp``:
    the gradient ``g(x)`` is built as a graph, and the gradient of ``g . v`` is
    ``H v``. Two backward passes, whatever the size of ``x``.

    >>> import numpy as np
    >>> value, Hv = hvp(lambda w: (w ** 2).sum(), np.array([1.0, 2.0]), np.array([1.0, 0.0]))
    >>> float(value), Hv
    (5.0, array([2., 0.]))
    """
    leaf, y, gradient = _gradient_graph(fn, x, "hvp")
    direction = np.asarray(v.data if isinstance(v, Value) else v, dtype=leaf.dtype)
    if direction.shape != leaf.shape:
        raise ValueError(f"hvp: v has shape {direction.shape}, but x has shape {leaf.shape}; they must match")
    if gradient is None or not gradient.requires_grad:  # fn is at most linear in x
        return y.data, np.zeros_like(np.asarray(leaf.data))[()]
    (product,) = grad(gradient, leaf, grad_outputs=direction[()] if direction.ndim == 0 else direction, allow_unused=True)
    if product is None:
        product = np.zeros_like(np.asarray(leaf.data))[()]
    return y.data, product
