"""JAX on the CPU, the way a user who wants speed writes a training step: the
loss, its gradient (jax.grad) and the SGD update in one function compiled by
jax.jit. Run in a process of its own, like PyTorch (XLA keeps thread pools of
its own). Optional: skipped when jax is not installed."""

from __future__ import annotations

import os

import numpy as np

from . import workloads as W

NAME = "jax"
WORKLOADS = ("mlp", "mlp_bn", "tiny", "chain")


def available():
    return W.importable("jax")


def _jax(dtype):
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import jax

    if np.dtype(dtype) == np.float64:
        jax.config.update("jax_enable_x64", True)  # float64 arrays stay float64
    return jax


def make_step(workload, dtype=np.float32, batch=None):
    return W.peer_step(workload, dtype, batch, _mlp_step, _chain_step)


def _mlp_step(sizes, batch, dtype, with_bn):
    jax = _jax(dtype)
    jnp = jax.numpy
    x_data, y_data, layers_data = W.mlp_data(sizes, batch, dtype)
    x, y = jnp.asarray(x_data), jnp.asarray(y_data)
    params = [(jnp.asarray(w), jnp.asarray(b)) for w, b in layers_data]
    hidden = sizes[1:-1]
    bn = [(jnp.ones(n, dtype), jnp.zeros(n, dtype)) for n in hidden] if with_bn else []
    running = [(jnp.zeros(n, dtype), jnp.ones(n, dtype)) for n in hidden] if with_bn else []
    lr = dtype(W.LEARNING_RATE)
    keep = 1.0 - W.DROPOUT_P

    def loss_fn(trained, x, y, running, key):
        layers, norms = trained
        h = x
        stats = []
        for k, (w, b) in enumerate(layers):
            z = h @ w + b
            if k == len(layers) - 1:
                h = z
                break
            if with_bn:
                mean, var = z.mean(axis=0), z.var(axis=0)
                gamma, beta = norms[k]
                z = (z - mean) / jnp.sqrt(var + W.BN_EPS) * gamma + beta
                stats.append((mean, var))
            h = jax.nn.relu(z)
            if with_bn:
                key, sub = jax.random.split(key)
                h = h * jax.random.bernoulli(sub, keep, h.shape).astype(h.dtype) / dtype(keep)
        log_p = jax.nn.log_softmax(h, axis=1)
        loss = -jnp.take_along_axis(log_p, y[:, None], axis=1).mean()
        return loss, stats

    @jax.jit
    def train_step(trained, running, key, x, y):
        key, sub = jax.random.split(key)
        (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(trained, x, y, running, sub)
        trained = jax.tree_util.tree_map(lambda p, g: p - lr * g, trained, grads)
        m = W.BN_MOMENTUM
        running = [((1 - m) * rm + m * mean, (1 - m) * rv + m * var * (batch / (batch - 1)))
                   for (rm, rv), (mean, var) in zip(running, stats)]
        return trained, running, key, loss

    state = {"trained": (params, bn), "running": running, "key": jax.random.PRNGKey(0)}

    def step():
        state["trained"], state["running"], state["key"], loss = train_step(
            state["trained"], state["running"], state["key"], x, y)
        return loss.block_until_ready()

    return step


def _chain_step():
    jax = _jax(np.float64)
    jnp = jax.numpy
    x = jnp.asarray(W.chain_input())
    gradient = jax.jit(jax.value_and_grad(lambda y: W.chain_forward(y, jnp.tanh).sum()))

    def step():
        total, g = gradient(x)
        g.block_until_ready()
        return total

    return step
