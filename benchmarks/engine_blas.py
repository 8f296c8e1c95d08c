"""The physical floor of a step: its matrix products alone.

For each workload whose time is mostly matrix products, the same products the
hand-written NumPy step makes (``engine_numpy``), forward and backward, with
the same shapes, dtypes and layouts (a transposed operand is passed as the
same ``.T`` view, so BLAS gets the same transpose flags), and nothing else:
no activation, no loss, no update, no im2col copy. Each product writes into a
buffer made once (``np.matmul(a, b, out=...)``), so not even an allocation is
timed: what remains is what BLAS itself takes.

(a) and (b) MLP 784-256-256-10 at batch 128, (c) 2-16-16-3 at batch 32, each
layer ``h @ W`` (W is (fan_in, fan_out)):

    forward   X @ W1, A1 @ W2, A2 @ W3
    backward  A2^T @ dZ3, dZ3 @ W3^T, A1^T @ dZ2, dZ2 @ W2^T, X^T @ dZ1

(no ``dZ1 @ W1^T``: the input needs no gradient). (b)'s batch norm and dropout
are elementwise, so its products are (a)'s.

(h) the digits CNN at batch 64, each convolution one product of its im2col
rows (N*H*W, 9*C) with the weights as rows (O, 9*C):

    forward   R1 @ V1^T, R2 @ V2^T, F @ W3^T
    backward  dL^T @ F, dL @ W3, dZ2^T @ R2, dZ2 @ V2, dZ1^T @ R1

The operands hold the workload's own inputs and weights where the step reads
them (X, W, the first im2col rows) and random numbers of the right shape
elsewhere: BLAS takes the same time whatever the values are.
"""

from __future__ import annotations

import numpy as np

from . import workloads as W

NAME = "blas"
WORKLOADS = ("mlp", "mlp_bn", "tiny", "cnn")


def available():
    return True


def make_step(workload, dtype=np.float32, batch=None):
    if workload in ("mlp", "mlp_bn", "tiny"):
        sizes, batch = W.mlp_shape(workload, batch)
        return _step(_mlp_products(sizes, batch, dtype))
    if workload == "cnn":
        return _step(_cnn_products(batch or W.CNN_BATCH, dtype))
    raise NotImplementedError(workload)


def products_of(workload, dtype=np.float32, batch=None):
    """[(name, a.shape, b.shape)] of a workload's products, in the step's order."""
    if workload == "cnn":
        products = _cnn_products(batch or W.CNN_BATCH, dtype)
    else:
        products = _mlp_products(*W.mlp_shape(workload, batch), dtype)
    return [(name, a.shape, b.shape) for name, a, b, _ in products]


def _step(products):
    calls = [(a, b, out) for _, a, b, out in products]
    matmul = np.matmul

    def step():
        for a, b, out in calls:
            matmul(a, b, out=out)
        return calls[-1][2]

    step.products = products
    return step


def _product(name, a, b):
    return name, a, b, np.empty((a.shape[0], b.shape[1]), dtype=np.result_type(a, b))


def _random(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


def _mlp_products(sizes, batch, dtype):
    x, _, layers = W.mlp_data(sizes, batch, dtype)
    rng = np.random.default_rng(2)
    inputs = [x] + [_random(rng, (batch, n), dtype) for n in sizes[1:-1]]  # each layer's input: X, A1, A2, ...
    d_z = [_random(rng, (batch, n), dtype) for n in sizes[1:]]  # dL/dZ of each layer
    products = [_product(f"forward {k + 1}: h @ W", h, w) for k, (h, (w, _)) in enumerate(zip(inputs, layers))]
    for k in range(len(layers) - 1, -1, -1):
        products.append(_product(f"dW{k + 1} = h^T @ dZ", inputs[k].T, d_z[k]))
        if k:
            products.append(_product(f"dh{k} = dZ @ W^T", d_z[k], layers[k][0].T))
    return products


def _cnn_products(batch, dtype):
    x, _, layers = W.cnn_data(batch, dtype)
    (w1, _), (w2, _), (w3, _) = layers
    rng = np.random.default_rng(2)
    side = x.shape[-1]
    pixels1, pixels2, classes = batch * side * side, batch * (side // 2) ** 2, w3.shape[0]
    # the im2col rows, tap order (kernel row, kernel column, channel) as engine_numpy makes them
    rows1 = _im2col_rows(x)
    rows2 = _random(rng, (pixels2, 9 * w2.shape[1]), dtype)
    w1_rows = np.ascontiguousarray(w1.transpose(0, 2, 3, 1).reshape(w1.shape[0], -1))
    w2_rows = np.ascontiguousarray(w2.transpose(0, 2, 3, 1).reshape(w2.shape[0], -1))
    flat = _random(rng, (batch, w3.shape[1]), dtype)
    d_logits = _random(rng, (batch, classes), dtype)
    d_z2 = _random(rng, (pixels2, w2.shape[0]), dtype)
    d_z1 = _random(rng, (pixels1, w1.shape[0]), dtype)
    return [
        _product("conv1: R1 @ V1^T", rows1, w1_rows.T),
        _product("conv2: R2 @ V2^T", rows2, w2_rows.T),
        _product("linear: F @ W3^T", flat, w3.T),
        _product("dW3 = dL^T @ F", d_logits.T, flat),
        _product("dF = dL @ W3", d_logits, w3),
        _product("dV2 = dZ2^T @ R2", d_z2.T, rows2),
        _product("dR2 = dZ2 @ V2", d_z2, w2_rows),
        _product("dV1 = dZ1^T @ R1", d_z1.T, rows1),
    ]


def _im2col_rows(x):
    from .engine_numpy import _im2col_3x3

    return np.ascontiguousarray(_im2col_3x3(np.ascontiguousarray(x.transpose(0, 2, 3, 1))))
