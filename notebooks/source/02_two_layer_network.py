# %% [markdown]
# # 2. From logistic regression to a vectorised two-layer network
#
# Logistic regression is one neuron: a weighted sum and a sigmoid. Put several of them side by
# side and you have a hidden layer; feed their outputs into another neuron and you have a
# two-layer network. Then write the same thing for a whole batch of examples at once with
# matrices, derive the gradients by hand, and let the engine confirm them.
#
# Notation (the course's): examples are **columns**. For a batch X of shape (n features × m examples)
#
# * A¹ = W¹ X + b¹, H¹ = σ(A¹)  (hidden layer, p units)
# * A² = W² H¹ + b², H² = σ(A²)  (output)

# %%
import matplotlib.pyplot as plt
import numpy as np
from autograd_core import Value, draw_graph, grad, no_grad

np.set_printoptions(precision=4, suppress=True)

# %% [markdown]
# ## One neuron: logistic regression
#
# For one example with label y ∈ {0, 1}: z = w·x + b, ŷ = σ(z), and the binary cross-entropy
# loss L = −[y log ŷ + (1 − y) log(1 − ŷ)]. Chain rule: ∂L/∂ŷ = (ŷ − y) / (ŷ(1 − ŷ)) and
# ∂ŷ/∂z = ŷ(1 − ŷ), so the two factors cancel to the tidy **∂L/∂z = ŷ − y**, and ∂L/∂w = (ŷ − y)·x.

# %%
x = Value(np.array([0.2, 0.5, -0.9]), requires_grad=False)
w = Value(np.array([1.2, 0.9, 0.3]))
b = Value(0.1)
y = 1.0

z = w @ x + b
y_hat = z.sigmoid()
loss = -(y * y_hat.log() + (1 - y) * (1 - y_hat).log())
loss.backward()

print(f"z = {z.item():.2f}, y_hat = {y_hat.item():.4f}, loss = {loss.item():.4f}")
print("dL/dw from the engine:", w.grad, "  (y_hat - y) * x:", (y_hat.item() - y) * x.data)
assert np.allclose(w.grad, (y_hat.item() - y) * x.data, atol=1e-12)
assert np.isclose(b.grad, y_hat.item() - y, atol=1e-12)

# %% [markdown]
# ## The lecture's network, one example at a time
#
# Three inputs, three sigmoid hidden units and one sigmoid output; every bias is 0.1 and the
# input is ⟨0.2, 0.5, −0.9⟩. Row *j* of W¹ holds the weights into hidden unit *j*.

# %%
W1 = Value(np.array([[1.2, 0.9, 0.3],
                     [0.2, 0.3, 0.1],
                     [1.3, 1.9, 0.1]]), label="W1")
b1 = Value(np.full(3, 0.1), label="b1")
W2 = Value(np.array([0.2, 0.6, 0.2]), label="W2")
b2 = Value(0.1, label="b2")
x = Value(np.array([0.2, 0.5, -0.9]), requires_grad=False, label="x")

A1 = W1 @ x + b1
H1 = A1.sigmoid()
A2 = W2 @ H1 + b2
H2 = A2.sigmoid()

for j in range(3):
    terms = " + ".join(f"({xi:.1f}*{wi:.1f})" for xi, wi in zip(x.data, W1.data[j]))
    print(f"hidden {j + 1}: {terms} + 0.1 = {A1.data[j]:.2f}   sigmoid -> {H1.data[j]:.3f}")
print(f"output  : W2 . H1 + 0.1 = {A2.item():.4f}   sigmoid -> {H2.item():.3f}")

# %% [markdown]
# The same computation as a graph: with vectors, the whole hidden layer is one matrix product, one
# addition and one sigmoid, however many units it has.

# %%
A1.label, H1.label, A2.label, H2.label = "A1", "H1", "A2", "H2"
draw_graph(H2)

# %% [markdown]
# ### The engine catches a slip in the notes
#
# The lecture notes write the hidden outputs as 0.62, 0.63, 0.77 and the output as 0.68. The
# first and third hidden units agree with the engine (the notes cut 0.627 to 0.62 rather than rounding it). The second does not: the notes write its
# sum as 0.55, but
#
# 0.2·0.2 + 0.5·0.3 + (−0.9)·0.1 + 0.1 = 0.04 + 0.15 − 0.09 + 0.1 = **0.20**,
#
# and σ(0.20) = 0.550, not σ(0.55) = 0.63. The slip then carries into the output: with the
# notes' hidden values the output sum is 0.756 and σ(0.756) = 0.68; with the correct ones it is
# 0.710 and the output is **0.670**.

# %%
notes_hidden_sums = np.array([0.52, 0.55, 1.22])
notes_hidden = np.array([0.62, 0.63, 0.77])
notes_output = 0.68

print("hidden sums   notes:", notes_hidden_sums, "  engine:", A1.data)
print("hidden output notes:", notes_hidden, "  engine:", H1.data.round(3))
print("output        notes:", notes_output, "         engine:", round(H2.item(), 3))

# the engine's numbers, to the precision the course uses
assert np.allclose(A1.data, [0.52, 0.20, 1.22], atol=1e-12)
assert np.allclose(H1.data.round(3), [0.627, 0.550, 0.772])
assert round(H2.item(), 3) == 0.670

# the slip: only the second sum differs, and the notes' output follows from the notes' hidden values
assert np.isclose(0.2 * 0.2 + 0.5 * 0.3 + (-0.9) * 0.1 + 0.1, 0.20)
assert np.flatnonzero(~np.isclose(A1.data, notes_hidden_sums)).tolist() == [1]
notes_output_sum = notes_hidden @ W2.data + 0.1
assert np.isclose(notes_output_sum, 0.756)
assert round(1 / (1 + np.exp(-notes_output_sum)), 2) == notes_output

# %% [markdown]
# ## A batch as a matrix
#
# Stack m examples as the columns of X (3 × m). The same four lines now process the whole batch:
# W¹X is (3 × 3)(3 × m), b¹ is a column (3 × 1) that broadcasts across the m columns, and every
# row of H¹ is one hidden unit's output for every example. The first column is the lecture's
# example, so the first column of H¹ must be the numbers above.

# %%
rng = np.random.default_rng(0)
m = 8
X_data = np.column_stack([[0.2, 0.5, -0.9], rng.normal(size=(3, m - 1))])
Y_data = np.array([[1, 0, 1, 1, 0, 0, 1, 0]], dtype=float)  # 1 × m labels

X = Value(X_data, requires_grad=False)
Y = Value(Y_data, requires_grad=False)
W1 = Value(W1.data.copy(), label="W1")
b1 = Value(np.full((3, 1), 0.1), label="b1")
W2 = Value(np.array([[0.2, 0.6, 0.2]]), label="W2")   # 1 × 3
b2 = Value(np.full((1, 1), 0.1), label="b2")

A1 = W1 @ X + b1
H1 = A1.sigmoid()
A2 = W2 @ H1 + b2
H2 = A2.sigmoid()
print("shapes: X", X.shape, " H1", H1.shape, " H2", H2.shape)
print("first column of H1:", H1.data[:, 0], "  first output:", H2.data[0, 0].round(4))
assert np.allclose(H1.data[:, 0].round(3), [0.627, 0.550, 0.772])
assert round(H2.data[0, 0], 3) == 0.670

# %% [markdown]
# ## Vectorised backpropagation by hand
#
# Take the mean binary cross-entropy over the batch, L = (1/m) Σ BCE. Working backwards, with
# dA meaning "the gradient of one example's loss with respect to A", and the 1/m applied where
# the examples are summed:
#
# * dA² = H² − Y  (sigmoid and cross-entropy cancel, as for one neuron)
# * dW² = (1/m) dA² H¹ᵀ,  db² = (1/m) Σ over examples of dA²
# * dA¹ = W²ᵀ dA² ⊙ H¹(1 − H¹)  (back through W², then through the sigmoid)
# * dW¹ = (1/m) dA¹ Xᵀ,  db¹ = (1/m) Σ over examples of dA¹
#
# The matrix products do the summing over examples: dA² H¹ᵀ is (1 × m)(m × 3).

# %%
loss = -(Y * H2.log() + (1 - Y) * (1 - H2).log()).mean()
loss.backward()

H1_, H2_ = H1.data, H2.data
dA2 = H2_ - Y_data
dW2 = dA2 @ H1_.T / m
db2 = dA2.sum(axis=1, keepdims=True) / m
dA1 = (W2.data.T @ dA2) * H1_ * (1 - H1_)
dW1 = dA1 @ X_data.T / m
db1 = dA1.sum(axis=1, keepdims=True) / m

for name, by_hand, param in [("dW2", dW2, W2), ("db2", db2, b2), ("dW1", dW1, W1), ("db1", db1, b1)]:
    worst = np.abs(by_hand - param.grad).max()
    print(f"{name}: largest difference between hand formula and engine = {worst:.1e}")
    assert param.grad.shape == by_hand.shape
    assert np.allclose(by_hand, param.grad, rtol=1e-12, atol=1e-14)
print("dW1 =\n", dW1)

# %% [markdown]
# ## Gradient descent
#
# The update is the same for every parameter: W ← W − α dW. We train this network on a small
# two-class problem (points inside or outside a circle, which no single neuron can separate)
# and watch the loss fall. `no_grad()` keeps the updates themselves out of the graph.

# %%
rng = np.random.default_rng(1)
m = 200
X_data = rng.uniform(-1.5, 1.5, size=(2, m))
Y_data = (np.sum(X_data**2, axis=0, keepdims=True) < 1.0).astype(float)
X, Y = Value(X_data, requires_grad=False), Value(Y_data, requires_grad=False)

p = 8  # hidden units
W1 = Value(rng.normal(0, 1, size=(p, 2)))
b1 = Value(np.zeros((p, 1)))
W2 = Value(rng.normal(0, 1, size=(1, p)))
b2 = Value(np.zeros((1, 1)))
params = [W1, b1, W2, b2]

alpha, losses = 1.0, []
for step in range(600):
    H2 = (W2 @ (W1 @ X + b1).sigmoid() + b2).sigmoid()
    loss = -(Y * H2.log() + (1 - Y) * (1 - H2).log()).mean()
    for prm in params:
        prm.zero_grad()
    loss.backward()
    with no_grad():
        for prm in params:
            prm.data = prm.data - alpha * prm.grad
    losses.append(loss.item())

accuracy = ((H2.data > 0.5) == (Y_data > 0.5)).mean()
print(f"loss {losses[0]:.3f} -> {losses[-1]:.3f}, training accuracy {accuracy:.0%}")
assert losses[-1] < 0.5 * losses[0] and accuracy > 0.9

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.5))
ax1.plot(losses)
ax1.set(xlabel="step", ylabel="mean BCE", title="training loss")
grid = np.linspace(-1.5, 1.5, 120)
gx, gy = np.meshgrid(grid, grid)
with no_grad():
    G = Value(np.vstack([gx.ravel(), gy.ravel()]))
    prob = (W2 @ (W1 @ G + b1).sigmoid() + b2).sigmoid().data.reshape(gx.shape)
ax2.contourf(gx, gy, prob, levels=20, cmap="RdBu_r", alpha=0.6)
ax2.scatter(*X_data, c=Y_data[0], cmap="RdBu_r", edgecolors="k", s=12)
ax2.set(title="decision surface", aspect="equal")
plt.tight_layout()
plt.show()
