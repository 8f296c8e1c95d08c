"""What is measured: the workloads, their sizes and their data.

Every engine builds the same network from the same arrays (made here with a
fixed seed), so the engines differ only in how they compute.

(a) mlp      MLP 784-256-256-10, ReLU, softmax cross-entropy, SGD step, batch 128
(b) mlp_bn   the same with BatchNorm1d (before each ReLU) and Dropout(0.2) after it
(c) tiny     MLP 2-16-16-3, batch 32 (per-operation overhead dominates)
(d) chain    1,000 elementwise operations on shape (10,), forward and backward
(e) scalar   MLP 2-16-16-1 of scalar Values over 50 points (micrograd's setting)
(f) memory   peak memory of (a) at batch 1024, a fresh process per engine
(g) depth    the longest chain that backpropagates without failing
(h) cnn      the digits CNN: conv 3x3 (1->16), ReLU, max-pool 2, conv 3x3 (16->32),
             ReLU, max-pool 2, linear 128->10, softmax cross-entropy, SGD step,
             batch 64 of the shipped 8x8 digits
    blas     (a), (b), (c) and (h)'s matrix products alone, forward and backward:
             the physical floor of each step (engine_blas)
(i) epoch    an epoch of `autograd-core train --data digits` (the app's CNN
             1->8->16, Adam, batch 16, its validation pass), and the same in
             PyTorch (digits_epoch)
(j)          the whole `autograd-core train --data digits` command, phase by
             phase (app_phases)
"""

from __future__ import annotations

import importlib

import numpy as np

LEARNING_RATE = 0.01
DROPOUT_P = 0.2
BN_EPS = 1e-5
BN_MOMENTUM = 0.1

MLP_SIZES = (784, 256, 256, 10)
TINY_SIZES = (2, 16, 16, 3)


def importable(module):
    """True when `module` imports: a peer that is not installed is skipped."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def mlp_shape(workload, batch=None):
    """Layer sizes and batch of an MLP workload: "tiny" is 2-16-16-3 at batch
    32, "mlp" and "mlp_bn" are 784-256-256-10 at batch 128."""
    sizes, default_batch = (TINY_SIZES, 32) if workload == "tiny" else (MLP_SIZES, 128)
    return sizes, batch or default_batch


def peer_step(workload, dtype, batch, mlp_step, chain_step):
    """``make_step`` of a peer whose MLP workloads share one builder,
    ``mlp_step(sizes, batch, dtype, with_bn)``, beside ``chain_step()``."""
    if workload in ("mlp", "tiny", "mlp_bn"):
        sizes, batch = mlp_shape(workload, batch)
        return mlp_step(sizes, batch, dtype, workload == "mlp_bn")
    if workload == "chain":
        return chain_step()
    raise NotImplementedError(workload)


SCALAR_SIZES = (2, 16, 16, 1)

CHAIN_LENGTH = 1000  # (d): operations per forward pass
CHAIN_SHAPE = (10,)
SCALAR_POINTS = 50  # (e)
MEMORY_BATCH = 1024  # (f)
DEPTH_TARGET = 1_000_000  # (g)
DEPTH_TARGET_QUICK = 10_000


def mlp_data(sizes, batch, dtype, seed=0):
    """Inputs, integer labels and He-initialised layers [(W, b), ...] with W of
    shape (fan_in, fan_out), so a layer is ``x @ W + b``."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, sizes[0])).astype(dtype)
    y = rng.integers(0, sizes[-1], size=batch)
    layers = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        w = (rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)).astype(dtype)
        layers.append((w, np.zeros(fan_out, dtype=dtype)))
    return x, y, layers


def dropout_mask_source(sizes, batch, dtype, seed=1):
    """A function that draws new inverted-dropout masks (kept / (1 - p)), one
    per hidden layer, each time it is called. The engines that take masks call
    it inside the timed step, as training must (``nn.Dropout`` and
    ``torch.nn.Dropout`` draw inside theirs), and draw the way
    ``nn.functional.dropout`` does: uniforms in the data's precision, compared
    with p, times 1 / (1 - p) in the data's dtype."""
    rng = np.random.default_rng(seed)
    shapes = [(batch, n) for n in sizes[1:-1]]
    uniform_dtype = np.float32 if dtype == np.float32 else np.float64
    scale = np.dtype(dtype).type(1.0 / (1.0 - DROPOUT_P))

    def new_masks():
        return [(rng.random(shape, dtype=uniform_dtype) >= DROPOUT_P) * scale for shape in shapes]

    return new_masks


def chain_input():
    return np.linspace(-1.0, 1.0, CHAIN_SHAPE[0])


def chain_forward(y, tanh):
    """Workload (d): CHAIN_LENGTH operations cycling through ``* 1.01``,
    ``+ 0.01``, ``tanh``, ``- 0.005`` (the tanh keeps it bounded, so no engine
    meets overflow), with the engine's own `tanh`; every autograd engine runs
    this same loop."""
    for k in range(CHAIN_LENGTH):
        kind = k % 4
        if kind == 0:
            y = y * 1.01
        elif kind == 1:
            y = y + 0.01
        elif kind == 2:
            y = tanh(y)
        else:
            y = y - 0.005
    return y


def scalar_data(seed=0):
    """50 points in 2-d with labels +-1 (two interleaved half-moons, as in
    micrograd's demo, drawn with NumPy) and the initial MLP weights."""
    rng = np.random.default_rng(seed)
    n = SCALAR_POINTS
    angle = rng.uniform(0, np.pi, n)
    upper = np.arange(n) % 2 == 0
    xs = np.where(upper, np.cos(angle), 1 - np.cos(angle))
    ys = np.where(upper, np.sin(angle), 0.5 - np.sin(angle))
    points = np.stack([xs, ys], axis=1) + rng.normal(0, 0.1, (n, 2))
    labels = np.where(upper, 1.0, -1.0)
    weights = []  # per layer: a list of neurons, each (w list, b)
    for fan_in, fan_out in zip(SCALAR_SIZES[:-1], SCALAR_SIZES[1:]):
        weights.append([(rng.uniform(-1, 1, fan_in).tolist(), 0.0) for _ in range(fan_out)])
    return points.tolist(), labels.tolist(), weights


CNN_CHANNELS = (1, 16, 32)  # (h): input, first and second convolution
CNN_CLASSES = 10
CNN_BATCH = 64
CNN_KERNEL = 3  # every convolution 3x3, stride 1, padding 1; every pooling 2x2


def cnn_data(batch=CNN_BATCH, dtype=np.float32, seed=0):
    """The first `batch` digits as (N, 1, 8, 8) in [0, 1], their labels, and
    He-initialised layers in PyTorch's layout: [(W1 (16, 1, 3, 3), b1),
    (W2 (32, 16, 3, 3), b2), (W3 (10, 128), b3)]. The digits repeat when the
    batch is larger than the data set."""
    from nn.data import load_digits

    digits = load_digits()
    take = np.arange(batch) % len(digits.y)
    x = (digits.images[take] / 16.0).astype(dtype)
    y = digits.y[take]
    rng = np.random.default_rng(seed)
    layers = []
    for c_in, c_out in zip(CNN_CHANNELS[:-1], CNN_CHANNELS[1:]):
        fan_in = c_in * CNN_KERNEL * CNN_KERNEL
        w = rng.standard_normal((c_out, c_in, CNN_KERNEL, CNN_KERNEL)) * np.sqrt(2.0 / fan_in)
        layers.append((w.astype(dtype), np.zeros(c_out, dtype=dtype)))
    flat = CNN_CHANNELS[-1] * 2 * 2  # 8x8 pooled twice: 2x2 pixels
    w = rng.standard_normal((CNN_CLASSES, flat)) * np.sqrt(2.0 / flat)
    layers.append((w.astype(dtype), np.zeros(CNN_CLASSES, dtype=dtype)))
    return x, y, layers
