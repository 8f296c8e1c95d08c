"""MyGrad: NumPy-backed tensors with backpropagation."""

from __future__ import annotations

import numpy as np

from . import workloads as W

NAME = "mygrad"
WORKLOADS = ("mlp", "mlp_bn", "tiny", "chain")


def available():
    return W.importable("mygrad")


def make_step(workload, dtype=np.float32, batch=None):
    return W.peer_step(workload, dtype, batch, _mlp_step, _chain_step)


def _mlp_step(sizes, batch, dtype, with_bn):
    import mygrad as mg
    from mygrad.nnet import batchnorm, relu, softmax_crossentropy

    x_data, y, layers_data = W.mlp_data(sizes, batch, dtype)
    x = mg.tensor(x_data, constant=True)
    layers = [(mg.tensor(w), mg.tensor(b)) for w, b in layers_data]
    hidden = sizes[1:-1]
    gammas = [mg.tensor(np.ones(n, dtype)) for n in hidden]
    betas = [mg.tensor(np.zeros(n, dtype)) for n in hidden]
    params = [p for layer in layers for p in layer] + (gammas + betas if with_bn else [])
    new_masks = W.dropout_mask_source(sizes, batch, dtype) if with_bn else None
    lr = dtype(W.LEARNING_RATE)

    def step():
        masks = new_masks() if with_bn else None
        h = x
        for k, (w, b) in enumerate(layers):
            z = mg.matmul(h, w) + b
            if k == len(layers) - 1:
                h = z
                break
            if with_bn:
                z = batchnorm(z, gamma=gammas[k], beta=betas[k], eps=W.BN_EPS)
                h = relu(z) * masks[k]
            else:
                h = relu(z)
        loss = softmax_crossentropy(h, y)
        loss.backward()
        for p in params:
            p.data -= lr * p.grad
        return loss

    return step


def _chain_step():
    import mygrad as mg

    x = mg.tensor(W.chain_input())

    def step():
        total = mg.sum(W.chain_forward(x, mg.tanh))
        total.backward()
        return total

    return step
