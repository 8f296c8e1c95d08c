"""The floor: forward and backward written out by hand in vectorised NumPy,
the way the course derives them. No graph, no bookkeeping."""

from __future__ import annotations

import numpy as np

from . import workloads as W

NAME = "numpy"
WORKLOADS = ("mlp", "mlp_bn", "tiny", "chain", "cnn")


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
    if workload == "cnn":
        return _cnn_step(batch or W.CNN_BATCH, dtype)
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


# ---- (h) the digits CNN, by hand: images kept channels-last (N, H, W, C), so
# im2col is one strided view made contiguous and each convolution one product
def _im2col_3x3(h):
    """(N, H, W, C) -> rows (N*H*W, 9*C) of the 3x3 windows, zero padding 1."""
    n, height, width, c = h.shape
    padded = np.zeros((n, height + 2, width + 2, c), dtype=h.dtype)
    padded[:, 1:-1, 1:-1] = h
    s_n, s_h, s_w, s_c = padded.strides
    windows = np.lib.stride_tricks.as_strided(
        padded, (n, height, width, 3, 3, c), (s_n, s_h, s_w, s_h, s_w, s_c), writeable=False)
    if c == 1:  # one channel: tap by tap, each copy running along whole image rows (faster than 3-pixel runs)
        rows = np.empty(windows.shape, dtype=h.dtype)
        for i in range(3):
            for j in range(3):
                rows[:, :, :, i, j] = windows[:, :, :, i, j]
        windows = rows
    return windows.reshape(n * height * width, 9 * c)


def _col2im_3x3(d_rows, shape):
    """The adjoint of _im2col_3x3: rows (N*H*W, 9*C) added back onto (N, H, W, C)."""
    n, height, width, c = shape
    d_windows = d_rows.reshape(n, height, width, 3, 3, c)
    padded = np.zeros((n, height + 2, width + 2, c), dtype=d_rows.dtype)
    for i in range(3):
        for j in range(3):
            padded[:, i:i + height, j:j + width] += d_windows[:, :, :, i, j]
    return padded[:, 1:-1, 1:-1]


def _pool_2x2(z):
    """Max over 2x2 blocks of (N, H, W, C), tap by tap over strided views, and
    which tap won: the first maximum in row order, as PyTorch picks it (the
    digits have flat regions, so positive ties are common and a plain mask
    would count them twice)."""
    best = z[:, 0::2, 0::2].copy()
    winner = np.zeros(best.shape, dtype=np.uint8)
    for t, (i, j) in enumerate(((0, 1), (1, 0), (1, 1)), start=1):
        tap = z[:, i::2, j::2]
        np.putmask(winner, tap > best, t)
        np.maximum(best, tap, out=best)
    return best, winner


def _unpool_2x2(d_pooled, winner):
    """The gradient of _pool_2x2: each block's gradient on its winner."""
    n, h2, w2, c = d_pooled.shape
    d_z = np.empty((n, 2 * h2, 2 * w2, c), dtype=d_pooled.dtype)
    for t, (i, j) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        np.multiply(d_pooled, winner == t, out=d_z[:, i::2, j::2])
    return d_z


def _cnn_step(batch, dtype):
    x, y, layers = W.cnn_data(batch, dtype)
    (w1, b1), (w2, b2), (w3, b3) = layers
    x_last = np.ascontiguousarray(x.transpose(0, 2, 3, 1))  # (N, 8, 8, 1)
    lr = dtype(W.LEARNING_RATE)

    def conv_layer(h, w, b):
        rows = _im2col_3x3(h)
        w_rows = w.transpose(0, 2, 3, 1).reshape(w.shape[0], -1)  # (O, 3*3*C): the rows' tap order
        z = rows @ w_rows.T
        z += b
        return z.reshape(h.shape[:3] + (w.shape[0],)), rows, w_rows

    def step():
        z1, rows1, _ = conv_layer(x_last, w1, b1)
        a1 = np.maximum(z1, 0)
        p1, winner1 = _pool_2x2(a1)
        z2, rows2, w2_rows = conv_layer(p1, w2, b2)
        a2 = np.maximum(z2, 0)
        p2, winner2 = _pool_2x2(a2)
        flat = p2.transpose(0, 3, 1, 2).reshape(batch, -1)  # PyTorch's flatten order: C, H, W
        logits = flat @ w3.T + b3
        loss, d_logits = _softmax_cross_entropy(logits, y)
        # backward
        d_w3, d_b3 = d_logits.T @ flat, d_logits.sum(axis=0)
        d_p2 = (d_logits @ w3).reshape(batch, -1, 2, 2).transpose(0, 2, 3, 1)
        d_a2 = _unpool_2x2(d_p2, winner2)
        d_z2 = (d_a2 * (z2 > 0)).reshape(-1, w2.shape[0])
        d_w2 = (d_z2.T @ rows2).reshape(w2.shape[0], 3, 3, -1).transpose(0, 3, 1, 2)
        d_b2 = d_z2.sum(axis=0)
        d_p1 = _col2im_3x3(d_z2 @ w2_rows, p1.shape)
        d_a1 = _unpool_2x2(d_p1, winner1)
        d_z1 = (d_a1 * (z1 > 0)).reshape(-1, w1.shape[0])
        d_w1 = (d_z1.T @ rows1).reshape(w1.shape[0], 3, 3, -1).transpose(0, 3, 1, 2)
        d_b1 = d_z1.sum(axis=0)
        for p, g in ((w1, d_w1), (b1, d_b1), (w2, d_w2), (b2, d_b2), (w3, d_w3), (b3, d_b3)):
            p -= lr * g
        return loss

    return step
