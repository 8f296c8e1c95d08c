# %% [markdown]
# # 7. Batch normalisation and dropout
#
# Two layers that behave differently in training and in evaluation:
#
# * **batch normalisation** standardises each feature over the mini-batch, then lets the network
#   rescale it; it keeps the inputs of every layer in a good range and speeds up training;
# * **dropout** switches units off at random during training, so the network cannot rely on any
#   one of them; it fights overfitting.
#
# Both are built from ordinary engine operations, so backpropagation through them needs nothing new.

# %%
import matplotlib.pyplot as plt
import numpy as np
import nn
import optim
from autograd_core import Value, gradcheck, no_grad

np.set_printoptions(precision=4, suppress=True)

# %% [markdown]
# ## Batch normalisation, step by step
#
# For a mini-batch of m examples and each feature separately:
#
# 1. batch mean μ = (1/m) Σ xᵢ
# 2. batch variance σ² = (1/m) Σ (xᵢ − μ)²
# 3. normalise x̂ᵢ = (xᵢ − μ) / √(σ² + ε)  (mean 0, variance 1; ε avoids dividing by zero)
# 4. scale and shift yᵢ = γ x̂ᵢ + β  (γ and β are learned, so the network can undo the
#    normalisation if that is what helps)
#
# It also keeps **running averages** of μ and σ² for evaluation, when there may be no batch to
# average over: running ← (1 − momentum) · running + momentum · batch statistic (momentum 0.1;
# the running variance uses the unbiased batch variance, with m − 1).

# %%
x = np.array([[1.0, 50.0, -2.0],
              [2.0, 60.0, 0.0],
              [3.0, 70.0, 2.0],
              [6.0, 20.0, 4.0]])
m = len(x)
mu = x.mean(axis=0)
var = ((x - mu) ** 2).mean(axis=0)
x_hat = (x - mu) / np.sqrt(var + 1e-5)
gamma, beta = np.array([1.0, 2.0, 0.5]), np.array([0.0, -1.0, 3.0])
y_by_hand = gamma * x_hat + beta
print("batch mean", mu, "  batch variance", var)
print("x_hat (each column: mean 0, variance 1):\n", x_hat)

bn = nn.BatchNorm1d(3)
bn.weight.data = gamma
bn.bias.data = beta
y = bn(Value(x, requires_grad=False))
assert np.allclose(y.data, y_by_hand, atol=1e-12)
assert np.allclose(x_hat.mean(axis=0), 0, atol=1e-12) and np.allclose(x_hat.var(axis=0), 1, atol=1e-4)
assert np.allclose(bn.running_mean, 0.1 * mu)
assert np.allclose(bn.running_var, 0.9 * 1.0 + 0.1 * var * m / (m - 1))
print("nn.BatchNorm1d agrees; running mean", bn.running_mean, " running variance", bn.running_var)

# %% [markdown]
# Backpropagation through the layer is the engine's chain rule through mean, subtract, variance,
# square root and divide; a gradient check against finite differences confirms it, for the input
# and for γ and β, both for the formulas above and for the library's batch norm.

# %%
def batch_norm_by_parts(x, g, b):
    mean = x.mean(axis=0, keepdims=True)
    centred = x - mean
    variance = (centred * centred).mean(axis=0, keepdims=True)
    return centred / (variance + 1e-5).sqrt() * g + b

assert gradcheck(batch_norm_by_parts, [Value(x), Value(gamma), Value(beta)])

def library_batch_norm(x_, g, b):   # what nn.BatchNorm1d calls in training mode
    return nn.functional.batch_norm(x_, np.zeros(3), np.ones(3), g, b, training=True)

assert gradcheck(library_batch_norm, [Value(x), Value(gamma), Value(beta)])

# %% [markdown]
# ### Training mode versus evaluation mode
#
# In training mode an example's output depends on **the rest of its batch** (through μ and σ²). In
# evaluation mode (`model.eval()`) the layer uses the running statistics instead, so an example gets
# the same output whatever it is batched with, even alone. (Here the layer has seen only two
# batches, so its running statistics are still close to their starting values 0 and 1 and the
# evaluation outputs are far from standardised; over many batches they settle on the data's.)

# %%
bn = nn.BatchNorm1d(3)
first = Value(x[:1], requires_grad=False)
other_batch = Value(np.vstack([x[:1], x[:1] + 10.0]), requires_grad=False)
train_a = bn(Value(x, requires_grad=False)).data[0]
train_b = bn(other_batch).data[0]
print("training mode, first example in two different batches:", train_a, train_b)
assert not np.allclose(train_a, train_b)

bn.eval()
eval_alone, eval_batched = bn(first).data[0], bn(other_batch).data[0]
print("evaluation mode, alone and in a batch:                 ", eval_alone, eval_batched)
assert np.allclose(eval_alone, eval_batched)
assert np.allclose(eval_alone, (x[0] - bn.running_mean) / np.sqrt(bn.running_var + 1e-5))

# %% [markdown]
# ### Faster convergence on a deep network
#
# A 7-layer sigmoid MLP on the iris data (features standardised), plain SGD with the same learning
# rate, with and without batch normalisation after each hidden linear layer. Without it, the
# sigmoids' small gradients barely reach the early layers and the loss sits at log 3 ≈ 1.10 (a
# uniform guess); with it, the network learns within a few epochs.

# %%
iris = nn.data.load_iris()
X = (iris.X - iris.X.mean(axis=0)) / iris.X.std(axis=0)
y = iris.y
X_all = Value(X, requires_grad=False)
loss_fn = nn.CrossEntropyLoss()

def train_deep(batchnorm, epochs=40, seed=0):
    nn.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = nn.MLP([4, 32, 32, 32, 32, 32, 32, 3], activation="sigmoid", batchnorm=batchnorm)
    opt = optim.SGD(model.parameters(), lr=0.1)
    history = []
    for epoch in range(epochs):
        model.train()
        order = rng.permutation(len(X))
        for start in range(0, len(X), 30):
            batch = order[start:start + 30]
            opt.zero_grad()
            loss_fn(model(Value(X[batch], requires_grad=False)), y[batch]).backward()
            opt.step()
        model.eval()
        with no_grad():
            history.append(loss_fn(model(X_all), y).item())
    return history

plain, with_bn = train_deep(False), train_deep(True)
print(f"loss after 40 epochs: without batch norm {plain[-1]:.3f}, with batch norm {with_bn[-1]:.3f}")
assert plain[-1] > 1.0 and with_bn[-1] < 0.4

fig, ax = plt.subplots(figsize=(6, 3.2))
ax.plot(plain, label="without batch norm")
ax.plot(with_bn, label="with batch norm")
ax.axhline(np.log(3), color="grey", ls=":", lw=1)
ax.set(xlabel="epoch", ylabel="cross-entropy (whole data set)", title="7-layer sigmoid MLP on iris")
ax.legend()
plt.show()

# %% [markdown]
# ## Dropout
#
# In training, dropout zeroes each element with probability p and multiplies the survivors by
# 1/(1 − p) (**inverted dropout**). The scaling keeps the expected value of every unit unchanged, so
# in evaluation dropout can simply do nothing: no rescaling is needed at test time.

# %%
nn.manual_seed(0)
drop = nn.Dropout(p=0.25)
ones = Value(np.ones(100_000), requires_grad=False)
out = drop(ones).data
kept = out[out != 0]
print(f"zeroed: {np.mean(out == 0):.3f} (p = 0.25), survivors scaled to {kept[0]:.4f} = 1/(1 - p), mean {out.mean():.4f}")
assert abs(np.mean(out == 0) - 0.25) < 0.01
assert np.all(kept == 1 / (1 - 0.25))
assert abs(out.mean() - 1.0) < 0.01

drop.eval()
assert np.array_equal(drop(ones).data, ones.data)   # evaluation: the identity

# the gradient flows only through the kept units, scaled the same way
drop.train()
v = Value(np.ones(8))
mask_out = drop(v)
mask_out.sum().backward()
assert np.array_equal(v.grad, mask_out.data)
print("output:", mask_out.data, "  gradient:", v.grad)

# %% [markdown]
# ### Dropout against overfitting
#
# Twenty noisy samples of a sine curve and a network with two hidden layers of 128 units: far more
# capacity than the data justify. Without dropout the network fits the noise (tiny training error,
# large error on fresh data); with dropout p = 0.5 the training error stays honest and the error on
# new data drops.

# %%
rng = np.random.default_rng(1)
def noisy_sine(n):
    x = rng.uniform(-3, 3, size=(n, 1))
    return x, np.sin(x) + 0.5 * rng.normal(size=(n, 1))

x_train, y_train = noisy_sine(20)
x_val, y_val = noisy_sine(300)
Xt, Yt, Xv, Yv = (Value(a, requires_grad=False) for a in (x_train, y_train, x_val, y_val))

def fit(p):
    nn.manual_seed(0)
    model = nn.MLP([1, 128, 128, 1], activation="relu", dropout=p)
    opt = optim.Adam(model.parameters(), lr=0.005)
    for step in range(800):
        opt.zero_grad()
        ((model(Xt) - Yt) ** 2).mean().backward()
        opt.step()
    model.eval()
    with no_grad():
        train_mse = ((model(Xt) - Yt) ** 2).mean().item()
        val_mse = ((model(Xv) - Yv) ** 2).mean().item()
        grid = Value(np.linspace(-3, 3, 200)[:, None])
        curve = model(grid).data[:, 0]
    return train_mse, val_mse, curve

results = {p: fit(p) for p in (0.0, 0.5)}
for p, (tr, va, _) in results.items():
    print(f"dropout p = {p}: training MSE {tr:.3f}, validation MSE {va:.3f}")
(tr0, va0, curve0), (tr5, va5, curve5) = results[0.0], results[0.5]
assert tr0 < tr5 and va5 < va0 and va0 - tr0 > 2 * (va5 - tr5)

fig, ax = plt.subplots(figsize=(6, 3.2))
ax.scatter(x_train, y_train, color="k", s=14, label="training data", zorder=3)
grid = np.linspace(-3, 3, 200)
ax.plot(grid, np.sin(grid), "k:", lw=1, label="sin x")
ax.plot(grid, curve0, label="no dropout")
ax.plot(grid, curve5, label="dropout 0.5")
ax.legend(fontsize=8)
plt.show()
