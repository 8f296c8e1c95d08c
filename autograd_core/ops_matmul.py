"""The matrix product ``A @ B`` and the affine map of a layer,
``linear(x, W, b) = x @ W.T + b``: operations of the registry of ``ops.py``
(see its docstring). Their rules are vector-Jacobian products, the two
products of the lecture: ``dL/dA = dL/dC @ B^T``, ``dL/dB = A^T @ dL/dC``.
"""

from __future__ import annotations

import numpy as np

from .engine import Value, as_value, sum_to_shape  # noqa: F401  (Value: the examples)
from .errors import ShapeError
from .ops import F, Op, _operands, _scalar_or_array


# C = A @ B:  dL/dA = dL/dC @ B^T,  dL/dB = A^T @ dL/dC
# A 1-d operand acts as a row (on the left) or a column (on the right); every
# share is summed back over broadcast batch dimensions.
def _matmul_d_a(g, a, b, out):
    if a.ndim == 1 and b.ndim == 1:  # dot product: a scalar
        return g * b
    if a.ndim == 1:  # (k,) @ (..., k, m) -> (..., m)
        share = F.matmul(g.reshape(g.shape[:-1] + (1, g.shape[-1])), b.swapaxes(-1, -2))
        share = share.reshape(share.shape[:-2] + (share.shape[-1],))
    elif b.ndim == 1:  # (..., n, k) @ (k,) -> (..., n)
        share = g.reshape(g.shape + (1,)) * b
    else:
        share = F.matmul(g, b.swapaxes(-1, -2))
    return sum_to_shape(share, a.shape)


def _matmul_d_b(g, a, b, out):
    if a.ndim == 1 and b.ndim == 1:
        return g * a
    if a.ndim == 1:
        share = a.reshape(-1, 1) * g.reshape(g.shape[:-1] + (1, g.shape[-1]))
    elif b.ndim == 1:
        share = F.matmul(a.swapaxes(-1, -2), g.reshape(g.shape + (1,)))
        share = share.reshape(share.shape[:-1])
    else:
        share = F.matmul(a.swapaxes(-1, -2), g)
    return sum_to_shape(share, b.shape)


MATMUL = Op(
    "matmul", lambda a, b: _scalar_or_array(np.matmul(a, b)), inputs="A, B", code="A @ B",
    as_torch="A @ B", as_onnx="MatMul",
    d_A=_matmul_d_a,
    d_B=_matmul_d_b,
    formula="dL/dA = dL/dC @ B^T, dL/dB = A^T @ dL/dC", output="C",
    methods=("__matmul__",), reflected=("__rmatmul__",), numpy=("matmul", "dot"),
    shown_local=lambda i, a, b: b if i == 0 else a,  # the local gradient of a product: the other operand
    course_name='Z',
    as_numpy={"forward": "A @ B", "A": "g @ B.T", "B": "A.T @ g"},
)


@MATMUL.public
def matmul(a, b):
    """Matrix product ``a @ b``: 1-d, 2-d and batched (leading dimensions broadcast).

    >>> A = Value(np.ones((2, 3))); B = Value(np.ones((3, 4)))
    >>> C = matmul(A, B); C.sum().backward()
    >>> C.shape, A.grad.shape, B.grad.shape           # (2, 3) @ (3, 4) -> (2, 4); each grad has its input's shape
    ((2, 4), (2, 3), (3, 4))
    >>> float(A.grad[0, 0])                           # dL/dA = dL/dC @ B.T: a sum over the 4 columns
    4.0
    """
    a, b = _operands(a, b)
    if a.ndim == 0 or b.ndim == 0:
        raise ShapeError(f"matmul: operands must have at least one dimension, got shapes {a.shape} and {b.shape}; use * for scalars")
    try:
        return MATMUL.apply(a, b)
    except ValueError:
        k_a = a.shape[-1]
        k_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
        raise ShapeError(
            f"matmul: shapes {a.shape} and {b.shape} do not fit: the last dimension of the first "
            f"({k_a}) must equal the {'only' if b.ndim == 1 else 'second-to-last'} dimension of the second ({k_b})"
        ) from None


def _linear_onnx(g, x, weight, bias=None):
    if len(g.shapes[0]) == 2:  # a batch of rows: one Gemm
        return g.op("Gemm", x, weight, bias, transB=1)
    product = g.op("MatMul", x, g.op("Transpose", weight, perm=[1, 0]))
    return product if bias is None else g.op("Add", product, bias)


# y = x W^T + b, every leading dimension of x a batch dimension:
#   dL/dx = dL/dy @ W,   dL/dW = dL/dy^T @ x (summed over the batch),   dL/db = dL/dy summed over the batch
# (dL/dW comes out as a fresh (out, in) array: no transposed view to copy into the weight's .grad)
def _linear_data(x, weight, bias=None):
    data = x @ weight.T
    if bias is None:
        return data
    if np.result_type(data, bias) == data.dtype:
        data += bias  # into the fresh product: one array fewer per layer
        return data
    return data + bias


def _linear_d_weight(g, x, weight, *bias_and_out):
    g_rows = g.reshape(-1, weight.shape[0])
    return F.matmul(g_rows.swapaxes(-1, -2), x.reshape(-1, weight.shape[1]))


LINEAR = Op(
    "linear", _linear_data, inputs="x, weight, bias", code="x @ weight.T + bias",
    as_torch="F.linear(x, weight, bias)", as_onnx=_linear_onnx,
    d_x=lambda g, x, weight, *bias_and_out: F.matmul(g, weight),
    d_weight=_linear_d_weight,
    d_bias=lambda g, x, weight, bias, out: g.reshape(-1, weight.shape[0]).sum(axis=0),
    formula="dL/dx = dL/dy @ W, dL/dW = dL/dy^T @ x, dL/db = sum(dL/dy)",
    course_name='Z',
    as_numpy={"forward": "x @ weight.T + bias", "x": "g @ weight", "weight": "g.T @ x", "bias": "g.sum(axis=0)"},
)


@LINEAR.public
def linear(x, weight, bias=None):
    """The affine map of a neural-network layer, ``x @ weight.T + bias``, with
    ``weight`` of shape ``(out, in)`` (PyTorch's layout) and ``bias`` of shape
    ``(out,)``; every leading dimension of `x` is a batch dimension. One node
    in the graph, where ``x @ weight.T + bias`` would make three.

    >>> x = Value([[1.0, 2.0]]); W = Value([[0.5, -1.0], [2.0, 0.0]]); b = Value([0.1, 0.2])
    >>> y = linear(x, W, b)
    >>> y.data.tolist()
    [[-1.4, 2.2]]
    >>> y.sum().backward(); W.grad.tolist(), b.grad.tolist()   # dL/dW = dL/dy^T @ x
    ([[1.0, 2.0], [1.0, 2.0]], [1.0, 1.0])
    """
    x, weight = as_value(x), as_value(weight)
    if weight.ndim != 2:
        raise ShapeError(f"linear: weight must have shape (out_features, in_features), got {weight.shape}")
    if x.ndim == 0 or x.shape[-1] != weight.shape[1]:
        raise ShapeError(
            f"linear: input of shape {x.shape} does not fit a weight of shape {weight.shape} "
            f"(out_features, in_features): the input's last dimension must be {weight.shape[1]}"
        )
    if bias is None:
        return LINEAR.apply(x, weight)
    bias = as_value(bias, weight)
    if bias.shape != (weight.shape[0],):
        raise ShapeError(f"linear: bias must have shape ({weight.shape[0]},) for a weight of shape {weight.shape}, got {bias.shape}")
    return LINEAR.apply(x, weight, bias)
