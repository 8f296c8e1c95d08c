"""autograd_core, written as a user of the course would write each workload.

Two flavours of (a) and (b): from the engine's raw operations (matmul, relu,
log_softmax), and from ``nn`` / ``optim`` when those packages are installed;
the ``nn`` step traced by ``autograd_core.compile`` is a third. The digits
epoch (i) is the app's own training loop (``digits_epoch``), eager or compiled.
"""

from __future__ import annotations

import numpy as np

from . import workloads as W

NAME = "ours"
WORKLOADS = ("mlp", "mlp_bn", "tiny", "chain", "scalar", "cnn", "epoch")


def available():
    return W.importable("autograd_core")


def nn_available():
    """True when nn (Linear, BatchNorm1d, Dropout, CrossEntropyLoss) and optim.SGD exist."""
    try:
        import nn
        import optim

        nn.Linear, nn.BatchNorm1d, nn.Dropout, nn.ReLU, nn.Sequential, nn.CrossEntropyLoss, optim.SGD  # noqa: B018
    except (ImportError, AttributeError):
        return False
    return True


def compile_available():
    """True when autograd_core.compile exists (the ours-compiled column)."""
    import autograd_core

    return callable(getattr(autograd_core, "compile", None)) and nn_available()


def make_step(workload, dtype=np.float32, batch=None, flavour="raw"):
    compiled = flavour == "compiled"
    if workload in ("mlp", "tiny", "mlp_bn"):
        sizes, batch = W.mlp_shape(workload, batch)
        if flavour in ("nn", "compiled"):
            return _nn_step(sizes, batch, dtype, with_bn=workload == "mlp_bn", compiled=compiled)
        return _raw_step(sizes, batch, dtype, with_bn=workload == "mlp_bn")
    if workload == "chain":
        return _chain_step(compiled)
    if workload == "cnn" and flavour in ("nn", "compiled"):
        return _cnn_nn_step(batch or W.CNN_BATCH, dtype, compiled=compiled)
    if workload == "cnn":
        return _cnn_raw_step(batch or W.CNN_BATCH, dtype)
    if workload == "epoch" and flavour in ("nn", "compiled"):  # `autograd-core train` trains through nn
        from .digits_epoch import ours_epoch_step

        return ours_epoch_step(eager=not compiled)
    if workload == "scalar" and compiled:
        return _scalar_compiled_step()
    if workload == "scalar":
        from autograd_core import Value

        from .scalar_mlp import make_scalar_step

        return make_scalar_step(Value, _reset_grad)
    raise NotImplementedError(workload)


def _reset_grad(p):
    p.grad = None


def _raw_step(sizes, batch, dtype, with_bn=False):
    import autograd_core as ag
    from autograd_core import Value

    x_data, y, layers_data = W.mlp_data(sizes, batch, dtype)
    x = Value(x_data, requires_grad=False)
    onehot = np.eye(sizes[-1], dtype=dtype)[y]
    layers = [(Value(w), Value(b)) for w, b in layers_data]
    hidden = sizes[1:-1]
    gammas = [Value(np.ones(n, dtype)) for n in hidden]
    betas = [Value(np.zeros(n, dtype)) for n in hidden]
    new_masks = W.dropout_mask_source(sizes, batch, dtype) if with_bn else None
    params = [p for layer in layers for p in layer] + (gammas + betas if with_bn else [])
    lr = dtype(W.LEARNING_RATE)

    def step():
        masks = new_masks() if with_bn else None
        h = x
        for k, (w, b) in enumerate(layers):
            z = h @ w + b
            if k == len(layers) - 1:
                h = z
                break
            if with_bn:
                mu = z.mean(axis=0)
                centred = z - mu
                var = (centred * centred).mean(axis=0)
                z = centred / (var + W.BN_EPS).sqrt() * gammas[k] + betas[k]
                h = z.relu() * masks[k]
            else:
                h = z.relu()
        # cross-entropy as the course writes it: -sum(Y * log softmax(z)) / N
        loss = -(h.log_softmax(axis=1) * onehot).sum() / batch
        for p in params:
            p.grad = None
        loss.backward()
        with ag.no_grad():
            for p in params:
                p.data -= lr * p.grad
        return loss

    return step


def _nn_step(sizes, batch, dtype, with_bn=False, compiled=False):
    import nn
    import optim
    from autograd_core import Value

    x_data, y, layers_data = W.mlp_data(sizes, batch, dtype)
    x = Value(x_data, requires_grad=False)
    modules = []
    for k, (w, b) in enumerate(layers_data):
        linear = nn.Linear(w.shape[0], w.shape[1])
        # PyTorch's layout: weight is (out, in) and the layer computes x @ W^T + b
        linear.weight.data = np.ascontiguousarray(w.T)
        linear.bias.data = b.copy()
        modules.append(linear)
        if k < len(layers_data) - 1:
            if with_bn:
                modules.append(nn.BatchNorm1d(w.shape[1]))
                _cast_parameters(modules[-1], dtype)
            modules.append(nn.ReLU())
            if with_bn:
                modules.append(nn.Dropout(W.DROPOUT_P))
    model = nn.Sequential(*modules)
    model.train()
    loss_fn = nn.CrossEntropyLoss()
    optimizer = optim.SGD(model.parameters(), lr=W.LEARNING_RATE)
    forward = _compiled(lambda x, y: loss_fn(model(x), y)) if compiled else (lambda x, y: loss_fn(model(x), y))
    if compiled:
        x = x_data

    def step():
        optimizer.zero_grad()
        loss = forward(x, y)
        loss.backward()
        optimizer.step()
        return loss

    return step


def _cast_parameters(module, dtype):
    for p in module.parameters():
        p.data = p.data.astype(dtype)
    for name in ("running_mean", "running_var"):
        buffer = getattr(module, name, None)
        if isinstance(buffer, np.ndarray):
            setattr(module, name, buffer.astype(dtype))


def _scalar_compiled_step():
    """(e) through autograd_core.compile: the network and loss of
    scalar_mlp.make_scalar_step, its forward and backward traced once (some
    65,000 NumPy scalar lines) and replayed; the update as there."""
    from autograd_core import Value

    points, labels, weights = W.scalar_data()
    layers = [[([Value(w) for w in ws], Value(b)) for ws, b in layer] for layer in weights]
    params = [p for layer in layers for ws, b in layer for p in (*ws, b)]
    inputs = [[Value(c, requires_grad=False) for c in point] for point in points]

    def forward(x):
        for depth, layer in enumerate(layers):
            out = [sum((wi * xi for wi, xi in zip(ws, x)), b) for ws, b in layer]
            x = out if depth == len(layers) - 1 else [act.relu() for act in out]
        return x[0]

    def loss_fn():
        losses = [(1 + -yi * forward(x)).relu() for x, yi in zip(inputs, labels)]
        return sum(losses) * (1.0 / len(losses)) + 1e-4 * sum(p * p for p in params)

    compiled = _compiled(loss_fn)

    def step():
        loss = compiled()
        for p in params:
            p.grad = None
        loss.backward()
        for p in params:
            p.data = p.data - W.LEARNING_RATE * p.grad
        return loss

    return step


def _compiled(fn):
    import autograd_core as ag

    return ag.compile(fn)


def _chain_step(compiled=False):
    from autograd_core import Value

    x = Value(W.chain_input())
    forward = lambda: W.chain_forward(x, Value.tanh).sum()  # noqa: E731
    if compiled:
        forward = _compiled(forward)

    def step():
        total = forward()
        x.grad = None
        total.backward()
        return total

    return step


def _cnn_raw_step(batch, dtype):
    import autograd_core as ag
    from autograd_core import Value
    from autograd_core.conv import conv2d, max_pool2d

    x_data, y, layers_data = W.cnn_data(batch, dtype)
    x = Value(x_data, requires_grad=False)
    onehot = np.eye(W.CNN_CLASSES, dtype=dtype)[y]
    (w1, b1), (w2, b2), (w3, b3) = layers = [(Value(w), Value(b)) for w, b in layers_data]
    params = [p for layer in layers for p in layer]
    lr = dtype(W.LEARNING_RATE)

    def step():
        h = max_pool2d(conv2d(x, w1, b1, padding=1).relu(), 2)
        h = max_pool2d(conv2d(h, w2, b2, padding=1).relu(), 2)
        logits = ag.linear(h.reshape(batch, -1), w3, b3)
        loss = -(logits.log_softmax(axis=1) * onehot).sum() / batch
        for p in params:
            p.grad = None
        loss.backward()
        with ag.no_grad():
            for p in params:
                p.data -= lr * p.grad
        return loss

    return step


def _cnn_nn_step(batch, dtype, compiled=False):
    """(h) from nn and optim; `compiled`: the forward and loss traced by
    ``ag.compile`` as ``autograd-core train`` compiles its step (a function of
    the batch's arrays returning the loss and the logits, called with NumPy
    arrays), then backward and the update as there."""
    import nn
    import optim
    from autograd_core import Value

    x_data, y, layers_data = W.cnn_data(batch, dtype)
    x = Value(x_data, requires_grad=False)
    (c_in, c_mid, c_out), k = W.CNN_CHANNELS, W.CNN_KERNEL
    model = nn.Sequential(
        nn.Conv2d(c_in, c_mid, k, padding=1, dtype=dtype), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(c_mid, c_out, k, padding=1, dtype=dtype), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(c_out * 2 * 2, W.CNN_CLASSES, dtype=dtype),
    )
    for layer, (w, b) in zip((model[0], model[3], model[7]), layers_data):
        layer.weight.data = w.copy()
        layer.bias.data = b.copy()
    model.train()
    loss_fn = nn.CrossEntropyLoss()
    optimizer = optim.SGD(model.parameters(), lr=W.LEARNING_RATE)

    def loss_and_logits(x, y):
        logits = model(x)
        return loss_fn(logits, y), logits

    if compiled:
        forward, x = _compiled(loss_and_logits), x_data
    else:
        forward = loss_and_logits

    def step():
        optimizer.zero_grad()
        loss, _ = forward(x, y)
        loss.backward()
        optimizer.step()
        return loss

    return step


def depth_ok(n):
    from autograd_core import Value

    from .scalar_mlp import chain_depth_ok

    return chain_depth_ok(Value, n)
