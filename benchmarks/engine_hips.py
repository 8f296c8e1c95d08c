"""HIPS autograd: functions of NumPy arrays, differentiated by tracing."""

from __future__ import annotations

import numpy as np

from . import workloads as W

NAME = "hips"
WORKLOADS = ("mlp", "mlp_bn", "tiny", "chain")


def available():
    return W.importable("autograd")


def make_step(workload, dtype=np.float32, batch=None):
    return W.peer_step(workload, dtype, batch, _mlp_step, _chain_step)


def _mlp_step(sizes, batch, dtype, with_bn):
    import autograd.numpy as anp
    from autograd import value_and_grad
    from autograd.scipy.special import logsumexp

    x, y, layers = W.mlp_data(sizes, batch, dtype)
    onehot = np.eye(sizes[-1], dtype=dtype)[y]
    hidden = sizes[1:-1]
    params = [p for layer in layers for p in layer]
    if with_bn:
        params += [np.ones(n, dtype) for n in hidden] + [np.zeros(n, dtype) for n in hidden]
    new_masks = W.dropout_mask_source(sizes, batch, dtype) if with_bn else None
    n_layers = len(layers)
    lr = dtype(W.LEARNING_RATE)

    def loss_fn(params, mask_set):
        h = x
        for k in range(n_layers):
            z = anp.dot(h, params[2 * k]) + params[2 * k + 1]
            if k == n_layers - 1:
                h = z
                break
            if with_bn:
                gamma, beta = params[2 * n_layers + k], params[2 * n_layers + len(hidden) + k]
                mu = anp.mean(z, axis=0)
                var = anp.var(z, axis=0)
                z = (z - mu) / anp.sqrt(var + W.BN_EPS) * gamma + beta
                h = anp.maximum(z, 0) * mask_set[k]
            else:
                h = anp.maximum(z, 0)
        log_p = h - logsumexp(h, axis=1, keepdims=True)
        return -anp.sum(log_p * onehot) / batch

    loss_and_grad = value_and_grad(loss_fn)

    def step():
        mask_set = new_masks() if with_bn else None
        loss, grads = loss_and_grad(params, mask_set)
        for p, g in zip(params, grads):
            p -= lr * g
        return loss

    return step


def _chain_step():
    import autograd.numpy as anp
    from autograd import grad

    def chain(y):
        return anp.sum(W.chain_forward(y, anp.tanh))

    gradient = grad(chain)
    x = W.chain_input()
    return lambda: gradient(x)
