"""A small MLP written twice, on autograd_core Values and on PyTorch tensors,
with identical weights, for trajectory comparisons (optim must not need nn)."""

import numpy as np

from autograd_core import Value, log_softmax


def make_data(seed=0, n=12, n_in=3, n_classes=3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_in))
    y = rng.integers(0, n_classes, size=n)
    return X, y


def make_weights(seed=1, n_in=3, n_hidden=5, n_out=3):
    rng = np.random.default_rng(seed)
    return {
        "W1": rng.normal(scale=0.7, size=(n_in, n_hidden)),
        "b1": rng.normal(scale=0.1, size=n_hidden),
        "W2": rng.normal(scale=0.7, size=(n_hidden, n_out)),
        "b2": rng.normal(scale=0.1, size=n_out),
        "scale": np.float64(1.3),  # a 0-d parameter: the logits' temperature
    }


def value_params(weights):
    return [Value(np.array(w, copy=True)[()] if np.ndim(w) == 0 else np.array(w, copy=True), label=k) for k, w in weights.items()]


def value_loss(params, X, y, kind="nll"):
    W1, b1, W2, b2, scale = params
    hidden = (Value(X, requires_grad=False) @ W1 + b1).tanh()
    out = (hidden @ W2 + b2) * scale
    if kind == "mse":
        target = np.eye(out.shape[1])[y]
        return ((out - Value(target, requires_grad=False)) ** 2).mean()
    return -log_softmax(out, axis=1)[np.arange(len(y)), y].mean()


def torch_params(torch, weights):
    return [torch.tensor(np.array(w, dtype=np.float64), requires_grad=True) for w in weights.values()]


def torch_loss(torch, params, X, y, kind="nll"):
    W1, b1, W2, b2, scale = params
    hidden = torch.tanh(torch.tensor(X) @ W1 + b1)
    out = (hidden @ W2 + b2) * scale
    if kind == "mse":
        target = torch.tensor(np.eye(out.shape[1])[y])
        return ((out - target) ** 2).mean()
    return -torch.log_softmax(out, dim=1)[torch.arange(len(y)), torch.tensor(y)].mean()
