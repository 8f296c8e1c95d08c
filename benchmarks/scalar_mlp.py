"""(e) and (g) written once for any micrograd-style scalar ``Value`` class
(ours and micrograd's share the operators, ``relu()`` and ``backward()``)."""

from __future__ import annotations

from . import workloads as W


def make_scalar_step(value_class, reset_grad):
    """One SGD step of an MLP 2-16-16-1 of scalar Values over 50 points with
    micrograd's demo loss (mean hinge loss plus L2 regularisation).

    `reset_grad(p)` clears a parameter's gradient the way that engine does it.
    """
    points, labels, weights = W.scalar_data()
    layers = [[([value_class(w) for w in ws], value_class(b)) for ws, b in layer] for layer in weights]
    params = [p for layer in layers for ws, b in layer for p in (*ws, b)]
    inputs = [[value_class(c, **_constant_kwargs(value_class)) for c in point] for point in points]
    lr = W.LEARNING_RATE

    def forward(x):
        for depth, layer in enumerate(layers):
            last = depth == len(layers) - 1
            out = []
            for ws, b in layer:
                act = sum((wi * xi for wi, xi in zip(ws, x)), b)
                out.append(act if last else act.relu())
            x = out
        return x[0]

    def step():
        scores = [forward(x) for x in inputs]
        losses = [(1 + -yi * score).relu() for yi, score in zip(labels, scores)]
        data_loss = sum(losses) * (1.0 / len(losses))
        reg_loss = 1e-4 * sum(p * p for p in params)
        loss = data_loss + reg_loss
        for p in params:
            reset_grad(p)
        loss.backward()
        for p in params:
            p.data = p.data - lr * p.grad
        return loss

    return step


def _constant_kwargs(value_class):
    # inputs are data: our engine marks them as constants, micrograd has no such notion
    return {"requires_grad": False} if "requires_grad" in getattr(value_class, "__slots__", ()) else {}


def chain_depth_ok(value_class, n):
    """Build y = x + 1 + 1 + ... (n additions) and backpropagate; True when the
    gradient arrives (it must be exactly 1), False on RecursionError."""
    x = value_class(0.0)
    y = x
    for _ in range(n):
        y = y + 1.0
    try:
        y.backward()
    except RecursionError:
        return False
    return float(x.grad) == 1.0
