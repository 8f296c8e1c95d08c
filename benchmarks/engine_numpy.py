"""The floor: forward and backward written out by hand in vectorised NumPy,
the way the course derives them. No graph, no bookkeeping."""

from __future__ import annotations

import numpy as np

from . import workloads as W

NAME = "numpy"
WORKLOADS = ("mlp", "mlp_bn", "tiny", "chain")


def available():
    return True


def make_step(workload, dtype=np.float32, batch=None):
    if workload in ("mlp", "tiny"):
        sizes, batch = W.mlp_shape(workload, batch)
        return _mlp_step(sizes, batch, dtype)
    if workload == "mlp_bn":
        return _mlp_bn_step(W.MLP_SIZES, batch or 128, dtype)
    if workload == "chain":
        return _chain_step()
    raise NotImplementedError(workload)


def _softmax_cross_entropy(logits, y):
    """Mean cross-entropy and its gradient wrt the logits: (softmax - onehot) / N."""
    n = len(y)
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    total = e.sum(axis=1, keepdims=True)
    loss = np.log(total[:, 0]).sum() - shifted[np.arange(n), y].sum()
    p = e / total
    p[np.arange(n), y] -= 1
    p /= n
    return loss / n, p


def _mlp_step(sizes, batch, dtype):
    x, y, layers = W.mlp_data(sizes, batch, dtype)
    params = [p for layer in layers for p in layer]
    lr = dtype(W.LEARNING_RATE)

    def step():
        # forward: keep each layer's input and pre-activation
        inputs, pre = [], []
        h = x
        for k, (w, b) in enumerate(layers):
            inputs.append(h)
            z = h @ w + b
            pre.append(z)
            h = np.maximum(z, 0) if k < len(layers) - 1 else z
        loss, dz = _softmax_cross_entropy(h, y)
        # backward: dW = h^T dz, db = sum dz, dh = dz W^T, dz = dh * (z > 0)
        grads = []
        for k in range(len(layers) - 1, -1, -1):
            w, _ = layers[k]
            grads.append((inputs[k].T @ dz, dz.sum(axis=0)))
            if k:
                dz = (dz @ w.T) * (pre[k - 1] > 0)
        for (w, b), (dw, db) in zip(layers, reversed(grads)):
            w -= lr * dw
            b -= lr * db
        return loss

    step.params = params
    return step


def _mlp_bn_step(sizes, batch, dtype):
    x, y, layers = W.mlp_data(sizes, batch, dtype)
    hidden = sizes[1:-1]
    gammas = [np.ones(n, dtype) for n in hidden]
    betas = [np.zeros(n, dtype) for n in hidden]
    running = [[np.zeros(n, dtype), np.ones(n, dtype)] for n in hidden]
    new_masks = W.dropout_mask_source(sizes, batch, dtype)
    lr, eps, m = dtype(W.LEARNING_RATE), dtype(W.BN_EPS), dtype(W.BN_MOMENTUM)

    def step():
        mask_set = new_masks()
        saved = []
        h = x
        for k, (w, b) in enumerate(layers[:-1]):
            z = h @ w + b
            mu = z.mean(axis=0)
            var = z.var(axis=0)
            inv_std = 1 / np.sqrt(var + eps)
            xhat = (z - mu) * inv_std
            bn = gammas[k] * xhat + betas[k]
            mask = mask_set[k]
            out = np.maximum(bn, 0) * mask
            rm, rv = running[k]
            rm *= 1 - m
            rm += m * mu
            rv *= 1 - m
            rv += m * var * (batch / (batch - 1))
            saved.append((h, xhat, inv_std, bn, mask))
            h = out
        w3, b3 = layers[-1]
        logits = h @ w3 + b3
        loss, dz = _softmax_cross_entropy(logits, y)
        dw3, db3 = h.T @ dz, dz.sum(axis=0)
        dh = dz @ w3.T
        updates = [(w3, dw3), (b3, db3)]
        for k in range(len(layers) - 2, -1, -1):
            h_in, xhat, inv_std, bn, mask = saved[k]
            dbn = dh * mask * (bn > 0)
            updates.append((gammas[k], (dbn * xhat).sum(axis=0)))
            updates.append((betas[k], dbn.sum(axis=0)))
            dxhat = dbn * gammas[k]
            # batch-norm backward: (1/N) inv_std (N dxhat - sum dxhat - xhat sum(dxhat xhat))
            dz = inv_std / batch * (batch * dxhat - dxhat.sum(axis=0) - xhat * (dxhat * xhat).sum(axis=0))
            w, b = layers[k]
            updates.append((w, h_in.T @ dz))
            updates.append((b, dz.sum(axis=0)))
            if k:
                dh = dz @ w.T
        for p, g in updates:
            p -= lr * g
        return loss

    return step


def _chain_step():
    x0 = W.chain_input()
    n = W.CHAIN_LENGTH

    def step():
        # forward, saving what each backward needs (tanh saves its output)
        saved = []
        y = x0
        for k in range(n):
            kind = k % 4
            if kind == 0:
                y = y * 1.01
            elif kind == 1:
                y = y + 0.01
            elif kind == 2:
                y = np.tanh(y)
                saved.append(y)
            else:
                y = y - 0.005
        total = y.sum()
        g = np.ones_like(y)
        for k in range(n - 1, -1, -1):
            kind = k % 4
            if kind == 0:
                g = g * 1.01
            elif kind == 2:
                t = saved.pop()
                g = g * (1 - t * t)
            # add / sub pass the gradient through unchanged (no work)
        return total, g

    return step
