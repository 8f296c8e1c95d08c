"""Builders of the PyTorch and ONNX forms that several operations declare alike.

An op declares how its forward is written in PyTorch and in ONNX beside its
NumPy code (``Op(as_torch=..., as_onnx=...)``, see ``autograd_core.export``).
Most forms are one expression or one operator name; the reductions share
their shape (an ``axis`` tuple, ``keepdims``), so their forms are made here.
Nothing here knows an operation by name: each declaration passes its own
PyTorch function or ONNX operator.

>>> form = torch_reduction("torch.sum")
>>> class Writer:
...     shapes = [(2, 3)]
...     const = staticmethod(repr)
>>> form(Writer(), "x", axis=(1,), keepdims=False), form(Writer(), "x", axis=(0, 1), keepdims=False)
('torch.sum(x, dim=1)', 'torch.sum(x)')
"""

from __future__ import annotations

import math

__all__ = ["torch_reduction", "onnx_reduction", "onnx_variance", "torch_keywords"]


def torch_keywords(t, **keywords):
    """``, name=value`` for each keyword whose value is not None."""
    return "".join(f", {name}={t.const(value)}" for name, value in keywords.items() if value is not None)


def torch_reduction(function, needs_dim=False, **fixed):
    """The PyTorch form of a reduction over ``axis`` (a tuple) with
    ``keepdims``: ``function(x)`` over every axis (unless the function
    `needs_dim`), else with ``dim=``. `fixed` maps a keyword of `function`
    to the op's parameter it takes (``correction="ddof"``)."""

    def form(t, x, axis, keepdims, **params):
        extra = "".join(f", {key}={t.const(params[name])}" for key, name in fixed.items())
        if tuple(axis) == tuple(range(len(t.shapes[0]))) and not keepdims and not needs_dim:
            return f"{function}({x}{extra})"
        dim = axis[0] if len(axis) == 1 else tuple(axis) if axis else 0
        return f"{function}({x}, dim={t.const(dim)}{extra}{', keepdim=True' if keepdims else ''})"

    return form


def onnx_reduction(operator):
    """The ONNX form of a reduction: `operator` with the axes as an input (opset 18)."""

    def form(g, x, axis, keepdims, **params):
        if not axis:  # a 0-d input: nothing to reduce
            return g.op("Identity", x)
        return g.op(operator, x, g.ints(axis), keepdims=int(keepdims))

    return form


def onnx_variance(square_root=False):
    """Variance (or standard deviation) over ``axis`` with ``ddof``, from
    ReduceMean and ReduceSum: ``sum((x - mean)^2) / (n - ddof)``."""

    def form(g, x, axis, ddof, keepdims):
        axes = g.ints(axis)
        centred = g.op("Sub", x, g.op("ReduceMean", x, axes, keepdims=1))
        squares = g.op("ReduceSum", g.op("Mul", centred, centred), axes, keepdims=int(keepdims))
        count = math.prod(g.shapes[0][k] for k in axis)
        variance = g.op("Div", squares, g.const(float(count - ddof)))
        return g.op("Sqrt", variance) if square_root else variance

    return form
