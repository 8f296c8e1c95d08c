# %% [markdown]
# # 10. From the graph to the code
#
# Every notebook so far ran the **eager** engine: each operation makes a `Value`, remembers its
# inputs, and `backward()` walks the nodes in reverse. That is the engine to learn from, and it is
# slow where operations are small: most of a step of a small network is Python making nodes and
# walking them.
#
# A course derives the backward pass of a two-layer network **by hand**, once, as a few lines of
# vectorised NumPy. `autograd_core.compile` does the same derivation automatically: it runs the step
# once with the eager engine, writes its forward and backward passes down as one line of NumPy per
# operation, and from then on runs those lines instead. This notebook shows the graph, the code it
# becomes (beside the course's formulas), that the numbers are the same, and the speed.

# %%
import time

import numpy as np

import autograd_core as ag
import nn
import nn.functional as F
import optim
from autograd_core import Value, draw_graph
from autograd_core.compile import CompileError

np.set_printoptions(precision=4, suppress=True)
rng = np.random.default_rng(0)

# %% [markdown]
# ## The course's two-layer network
#
# m examples of 4 features, 3 classes (one-hot rows Y); a sigmoid hidden layer of 5 units and a
# softmax output, with the mean cross-entropy as the loss. The parameters are labelled, so the
# drawings and the code use the course's names.

# %%
m = 8
X = rng.normal(size=(m, 4))
Y = np.eye(3)[rng.integers(0, 3, m)]
W1 = Value(rng.normal(size=(4, 5)) * 0.5, label="W1")
b1 = Value(np.zeros(5), label="b1")
W2 = Value(rng.normal(size=(5, 3)) * 0.5, label="W2")
b2 = Value(np.zeros(3), label="b2")


def loss_fn(X, Y):
    A1 = ag.sigmoid(X @ W1 + b1)
    Z2 = A1 @ W2 + b2
    return ag.softmax_cross_entropy(Z2, Y).mean()


eager_loss = loss_fn(Value(X, requires_grad=False, label="X"), Y)
draw_graph(eager_loss)

# %% [markdown]
# ## The graph, written as code
#
# `ag.compile(loss_fn)` gives a step that is called like the function. Its first call runs the
# function eagerly and records it; `source()` prints what it recorded: a `forward` with one line
# per node of the graph, and a `backward` with one line per gradient the engine computes, each
# with the lecture's formula as a comment. The names come from the labels and from each node's role
# (Z for a layer's pre-activation, A for its activation, `d` + name for a gradient).

# %%
step = ag.compile(loss_fn)
loss = step(X, Y)
loss.backward()
print(step.source())

# %% [markdown]
# Put it beside the vectorised back-propagation of the notes (they keep examples in columns,
# `W X`; the engine keeps them in rows, `X @ W`, so every product is transposed):
#
# | the notes | the compiled backward |
# |---|---|
# | dA⁽²⁾ = H⁽²⁾ − Y, divided by m | `dZ2 = dlosses * (P * Y.sum(axis=1, keepdims=True) - Y)`, where `dlosses` is `dloss` divided by the count of rows, 8 (the mean's rule, `_divide_by_count`, one number for every row): P minus Y (the rows of Y sum to 1), over m; `P = softmax(Z2)` was kept by the forward |
# | dW⁽²⁾ = 1/m dA⁽²⁾ H⁽¹⁾ᵀ | `dW2 = A1.T @ dZ2` (the 1/m is already in dZ2) |
# | db⁽²⁾ = 1/m Σ dA⁽²⁾ | `db2 = dZ2.sum(axis=0)` |
# | dA⁽¹⁾ = W⁽²⁾ᵀ dA⁽²⁾ * H⁽¹⁾(1 − H⁽¹⁾) | `dA1 = dZ2 @ W2.T`, then `dZ1 = dA1 * (A1 * (1 - A1))` |
# | dW⁽¹⁾ = 1/m dA⁽¹⁾ Xᵀ, db⁽¹⁾ = 1/m Σ dA⁽¹⁾ | `dW1 = X.T @ dZ1`, `db1 = dZ1.sum(axis=0)` |
#
# Nothing was derived by hand: each line is the gradient rule of one operation of the engine, in the
# order the eager backward pass runs them.

# %% [markdown]
# ## The same numbers
#
# The compiled gradients are the eager ones, bit for bit: the same rules compute them, in the same
# order. And the printed source is runnable Python that gives them too.

# %%
compiled_grads = [p.grad.copy() for p in (W1, b1, W2, b2)]
for p in (W1, b1, W2, b2):
    p.grad = None
eager_loss.backward()
for p, g in zip((W1, b1, W2, b2), compiled_grads):
    assert np.array_equal(p.grad, g), p.label
    p.grad = None

namespace = step.program()  # step.source() run as Python: its forward and backward functions
loss_value, saved = namespace["forward"](X, Y, W1.data, b1.data, W2.data, b2.data)
dW1, db1, dW2, db2 = namespace["backward"](saved, np.float64(1.0))
assert np.array_equal(dW2, compiled_grads[2]) and float(loss_value) == float(loss.data)
print("loss", float(loss_value), "- the compiled gradients, the eager ones and the printed program's agree")

# %% [markdown]
# ## Training with a compiled step
#
# Later calls **replay** the recorded lines: no `Value` per operation, no walk over nodes. The
# parameters are read afresh at every call, so an optimizer updates them as usual. Layers with
# effects keep them: `Dropout` draws a new mask at every call from the same generator as eager
# mode, `BatchNorm1d` updates its running statistics as eager mode does. Twenty steps of a small
# network with both give the same weights compiled and eager:

# %%
def train(compiled, steps=20):
    nn.manual_seed(1)
    model = nn.Sequential(nn.Linear(4, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 3))
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    labels = Y.argmax(axis=1)
    forward = (lambda X, y: F.cross_entropy(model(X), y))
    if compiled:
        forward = ag.compile(forward)
    for _ in range(steps):
        optimizer.zero_grad()
        forward(X, labels).backward()
        optimizer.step()
    return model


eager_model, compiled_model = train(compiled=False), train(compiled=True)
for (name, a), (_, b) in zip(eager_model.state_dict().items(), compiled_model.state_dict().items()):
    assert np.allclose(np.asarray(a), np.asarray(b), rtol=0, atol=1e-12), name
print("same weights and running statistics after 20 steps")

# %% [markdown]
# ## What a compiled step refuses
#
# A compiled step replays what the first call did. Python that looks at a value *while tracing*
# (an `if` on the loss, `.item()`, `float()`) would decide once and be replayed blindly, so it is
# refused, with the line and the way out (move it out of the function, or compute both branches and
# choose with `ag.where`):

# %%
def clipped(X, Y):
    loss = loss_fn(X, Y)
    if loss > 1.0:            # a Python decision on a traced value
        return loss * 0.5
    return loss


try:
    ag.compile(clipped)(X, Y)
except CompileError as error:
    print(error)

# %% [markdown]
# ## Speed
#
# For a small network most of an eager step is bookkeeping, which the compiled step does not do.
# (Timings depend on the machine; the benchmarks in `benchmarks/` measure them properly.)

# %%
def time_per_step(fn, repeats=300):
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def eager_step():
    for p in (W1, b1, W2, b2):
        p.grad = None
    loss_fn(X, Y).backward()


def compiled_step():
    for p in (W1, b1, W2, b2):
        p.grad = None
    step(X, Y).backward()


eager_time, compiled_time = time_per_step(eager_step), time_per_step(compiled_step)
print(f"eager {eager_time * 1e6:.0f} µs per step, compiled {compiled_time * 1e6:.0f} µs per step: "
      f"{eager_time / compiled_time:.1f} times faster")
assert compiled_time < eager_time
