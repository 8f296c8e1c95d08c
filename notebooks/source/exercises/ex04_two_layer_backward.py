# %% [markdown]
# # Exercises 4: a two-layer network, vectorised
#
# The lecture's network: 3 inputs, 3 sigmoid hidden units, 1 sigmoid output, every bias 0.1, and
# binary cross-entropy as the loss. Here a batch holds one example per **row** (as in PyTorch):
#
# Z1 = X W1 + b1,  A1 = σ(Z1),  Z2 = A1 W2 + b2,  A2 = σ(Z2),  L = mean binary cross-entropy.
#
# Four exercises: the rules of a matrix product and of a bias, then the forward pass and the
# whole backward pass by hand. Complete each cell where it says `raise NotImplementedError(...)`,
# then run the check under it. All results at once:
# `autograd-core grade ex04_two_layer_backward.ipynb`.

# %%
import numpy as np
from autograd_core import Op, Value
from autograd_core.exercises import exercise

rng = np.random.default_rng(4)

# %% [markdown]
# ## Exercise 4.1: the rules of a matrix product
#
# For C = A B (A of shape (m, k), B of shape (k, n)) the upstream gradient g = dL/dC has C's
# shape (m, n). Each rule must return an array of its input's shape; the shapes alone tell you
# where the transposes go: dL/dA must be (m, k), and only one product of g with B gives that.

# %%
def matmul_d_a(g, a, b, out):
    ### SOLUTION
    return g @ b.T
    ### BLANK
    raise NotImplementedError("return dL/dA, of A's shape, from g and b")
    ### END


def matmul_d_b(g, a, b, out):
    ### SOLUTION
    return a.T @ g
    ### BLANK
    raise NotImplementedError("return dL/dB, of B's shape, from a and g")
    ### END


my_matmul = Op("my_matmul", lambda a, b: a @ b, inputs="a, b", d_a=matmul_d_a, d_b=matmul_d_b,
               formula="dL/dA = g B^T, dL/dB = A^T g", register=False)

# %%
with exercise("4.1", "the rules of a matrix product") as ex:
    ex.check_rule(my_matmul, rng.normal(size=(2, 3)), rng.normal(size=(3, 4)))
    ex.check_rule(my_matmul, rng.normal(size=(3, 3)), rng.normal(size=(3, 3)),
                  hint="with square matrices every product has the right shape: the numbers decide.")

# %% [markdown]
# ## Exercise 4.2: the rule of a bias
#
# Z + b adds the same bias row b (shape (n,)) to every one of the m rows of Z. A nudge to b_j
# therefore moves all m entries of column j, and its gradient collects all of them.

# %%
def add_bias_d_z(g, z, b, out):
    ### SOLUTION
    return g
    ### BLANK
    raise NotImplementedError("return dL/dZ")
    ### END


def add_bias_d_b(g, z, b, out):
    ### SOLUTION
    return g.sum(axis=0)
    ### BLANK
    raise NotImplementedError("return dL/db, of b's shape (n,)")
    ### END


add_bias = Op("add_bias", lambda z, b: z + b, inputs="z, b", d_z=add_bias_d_z, d_b=add_bias_d_b,
              formula="dL/dZ = g, dL/db = sum of g over the rows", register=False)

# %%
with exercise("4.2", "the rule of a bias") as ex:
    ex.check_rule(add_bias, rng.normal(size=(4, 3)), rng.normal(size=3))

# %% [markdown]
# ## Exercise 4.3: the forward pass
#
# The lecture's weights: hidden unit 1 has weights (1.2, 0.9, 0.3), unit 2 (0.2, 0.3, 0.1), unit 3
# (1.3, 1.9, 0.1): they are the **columns** of W1, so that X W1 works on rows of examples. The
# output unit has weights (0.2, 0.6, 0.2). For the lecture's example x = (0.2, 0.5, −0.9) the
# hidden units give 0.627, 0.550, 0.772 and the output 0.670. (The notes show 0.55 for the second
# hidden sum: 0.2·0.2 + 0.5·0.3 − 0.9·0.1 + 0.1 is 0.20, and σ(0.20) = 0.550.)

# %%
X = np.array([[0.2, 0.5, -0.9],
              [1.0, -0.5, 0.3],
              [-0.4, 0.8, 0.6],
              [0.0, -1.2, 0.5]])
Y = np.array([[1.0], [0.0], [1.0], [0.0]])
W1 = np.array([[1.2, 0.2, 1.3],
               [0.9, 0.3, 1.9],
               [0.3, 0.1, 0.1]])
b1 = np.full(3, 0.1)
W2 = np.array([[0.2], [0.6], [0.2]])
b2 = np.array([0.1])


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def forward(X, W1, b1, W2, b2):
    ### SOLUTION
    A1 = sigmoid(X @ W1 + b1)
    A2 = sigmoid(A1 @ W2 + b2)
    return A1, A2
    ### BLANK
    raise NotImplementedError("return A1 (m, 3) and A2 (m, 1)")
    ### END

# %%
with exercise("4.3", "the forward pass") as ex:
    A1, A2 = forward(X, W1, b1, W2, b2)
    ex.close("A1 of the lecture's example", A1[0], [0.627, 0.550, 0.772], atol=5e-4,
             hint="Z1 = X @ W1 + b1, one row per example, then the sigmoid")
    ex.close("A2 of the lecture's example", A2[0, 0], 0.670, atol=5e-4)
    ex.close("A2 of the whole batch", A2, sigmoid(sigmoid(X @ W1 + b1) @ W2 + b2))

# %% [markdown]
# ## Exercise 4.4: the backward pass, vectorised
#
# With the sigmoid output and binary cross-entropy averaged over the m examples, the lecture's
# recipe in the row convention is:
#
# * dZ2 = A2 − Y
# * dW2 = A1ᵀ dZ2 / m,   db2 = Σ_rows dZ2 / m
# * dZ1 = (dZ2 W2ᵀ) ⊙ A1 ⊙ (1 − A1)   (the sigmoid's local gradient is A(1 − A))
# * dW1 = Xᵀ dZ1 / m,   db1 = Σ_rows dZ1 / m
#
# The check compares each with the engine's gradients of the same loss.

# %%
def backward(X, Y, A1, A2, W2):
    m = len(X)
    ### SOLUTION
    dZ2 = A2 - Y
    dW2 = A1.T @ dZ2 / m
    db2 = dZ2.sum(axis=0) / m
    dZ1 = (dZ2 @ W2.T) * A1 * (1 - A1)
    dW1 = X.T @ dZ1 / m
    db1 = dZ1.sum(axis=0) / m
    ### BLANK
    raise NotImplementedError("compute dZ2, dW2, db2, then dZ1, dW1, db1")
    ### END
    return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}

# %%
with exercise("4.4", "the backward pass, vectorised") as ex:
    params = {"W1": Value(W1), "b1": Value(b1), "W2": Value(W2), "b2": Value(b2)}
    inputs, labels = Value(X, requires_grad=False), Value(Y, requires_grad=False)
    H = ((inputs @ params["W1"] + params["b1"]).sigmoid() @ params["W2"] + params["b2"]).sigmoid()
    loss = -(labels * H.log() + (1 - labels) * (1 - H).log()).mean()
    loss.backward()
    A1, A2 = sigmoid(X @ W1 + b1), sigmoid(sigmoid(X @ W1 + b1) @ W2 + b2)
    mine = backward(X, Y, A1, A2, W2)
    hints = {
        "W2": "dW2 = A1.T @ dZ2 / m: (3, m) @ (m, 1) gives W2's shape (3, 1)",
        "b2": "db2 adds dZ2 over the examples (axis 0) and divides by m",
        "W1": "dZ1 = (dZ2 @ W2.T) * A1 * (1 - A1), then dW1 = X.T @ dZ1 / m",
        "b1": "db1 adds dZ1 over the examples (axis 0) and divides by m",
    }
    for name in ("W2", "b2", "W1", "b1"):
        ex.close(f"d{name}", mine[name], params[name].grad, hint=hints[name],
                 sizes={"m, the number of examples": len(X)})
