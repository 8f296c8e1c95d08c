# %% [markdown]
# # 5. Activation functions
#
# Without a non-linear activation, stacked linear layers collapse into one linear layer. The
# activation is what lets a network bend. Which one we pick also decides how well gradients
# survive the trip back through many layers.
#
# Every curve and every derivative below comes from the engine: we evaluate each activation on a
# grid of inputs and ask the engine for its gradient. None of the derivative formulas is typed in
# for the plots; they appear only in the asserts that check the engine.

# %%
import matplotlib.pyplot as plt
import numpy as np
import nn
import nn.functional as F
from autograd_core import Value, grad, no_grad

np.set_printoptions(precision=4, suppress=True)

# %% [markdown]
# ## The functions and their derivatives
#
# * **sigmoid** σ(x) = 1/(1 + e⁻ˣ), between 0 and 1, derivative σ(1 − σ) ≤ 0.25
# * **tanh**, between −1 and 1 and centred on 0, derivative 1 − tanh² ≤ 1
# * **ReLU** max(0, x): slope 1 for positive inputs, 0 for negative ones
# * **leaky ReLU**: a small slope (0.01) for negative inputs instead of 0
# * **PReLU**: leaky ReLU whose negative slope is a learned parameter (starts at 0.25)
# * **ELU**: α(eˣ − 1) for negative inputs, smooth at 0 when α = 1
# * **SELU**: a scaled ELU (λ ≈ 1.0507, α ≈ 1.6733) chosen so activations keep mean 0 and variance 1
# * **GELU**: x·Φ(x), the input weighted by the normal distribution's CDF

# %%
activations = {
    "sigmoid": nn.Sigmoid(),
    "tanh": nn.Tanh(),
    "ReLU": nn.ReLU(),
    "leaky ReLU": nn.LeakyReLU(0.01),
    "PReLU": nn.PReLU(),
    "ELU": nn.ELU(),
    "SELU": nn.SELU(),
    "GELU": nn.GELU(),
}
xs = np.linspace(-4, 4, 801)
curves = {}
for name, act in activations.items():
    x = Value(xs)
    y = act(x)
    (dy,) = grad(y.sum(), x)   # elementwise, so d(sum)/dx_i = f'(x_i)
    curves[name] = (y.data, dy)

fig, axes = plt.subplots(2, 4, figsize=(12, 5), sharex=True)
for ax, (name, (y, dy)) in zip(axes.ravel(), curves.items()):
    ax.plot(xs, y, label="f(x)")
    ax.plot(xs, dy, "--", label="f'(x) from the engine")
    ax.axhline(0, color="grey", lw=0.5)
    ax.axvline(0, color="grey", lw=0.5)
    ax.set_title(name)
axes[0, 0].legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# The engine's derivatives against the textbook formulas:

# %%
def at(name, point):
    """f and f' of an activation at one input, read off the grid."""
    i = int(np.argmin(np.abs(xs - point)))
    assert np.isclose(xs[i], point)
    return curves[name][0][i], curves[name][1][i]

sig = 1 / (1 + np.exp(-xs))
assert np.allclose(curves["sigmoid"][1], sig * (1 - sig))
assert np.isclose(at("sigmoid", 0)[1], 0.25) and curves["sigmoid"][1].max() <= 0.25
assert np.allclose(curves["tanh"][1], 1 - np.tanh(xs) ** 2) and np.isclose(at("tanh", 0)[1], 1.0)
assert at("ReLU", -2)[1] == 0.0 and at("ReLU", 2)[1] == 1.0
assert np.isclose(at("leaky ReLU", -2)[1], 0.01) and np.isclose(at("PReLU", -2)[1], 0.25)
assert np.isclose(at("ELU", -1)[1], np.exp(-1)) and at("ELU", 1)[1] == 1.0
selu_lambda, selu_alpha = 1.0507009873554805, 1.6732632423543772
assert np.isclose(at("SELU", 1)[1], selu_lambda)
assert np.isclose(at("SELU", -1)[1], selu_lambda * selu_alpha * np.exp(-1))
assert np.isclose(at("GELU", 0)[1], 0.5) and np.isclose(at("GELU", 0)[0], 0.0)
print("sigmoid'(0) = 0.25, tanh'(0) = 1, leaky slope 0.01, PReLU slope 0.25, SELU slope for x > 0:", selu_lambda)

# %% [markdown]
# PReLU's slope is a parameter like any weight: the engine gives it a gradient (the sum of the
# negative inputs times the upstream gradient), and training moves it.

# %%
prelu = nn.PReLU()
out = prelu(Value(np.array([-2.0, -1.0, 3.0]), requires_grad=False)).sum()
out.backward()
slope = next(iter(prelu.parameters()))
print("PReLU slope:", slope.data, "  its gradient:", slope.grad)
assert np.allclose(slope.grad, -3.0)   # d/da of a*(-2) + a*(-1) + 3

# %% [markdown]
# ## Vanishing gradients: a deep sigmoid stack versus ReLU
#
# Backpropagation multiplies one local gradient per layer. Sigmoid's is at most 0.25, so through
# ten sigmoid layers the gradient reaching the first layer is tiny compared to the last one's;
# ReLU's is exactly 1 wherever a unit is active, so the gradient keeps its size.
#
# Two 10-layer networks of width 32, with the same input, the same target and the same weight
# scale (normal, standard deviation 1/√fan-in), differing only in the activation. We measure the
# size of each layer's weight gradient.

# %%
def deep_stack(activation, depth=10, width=32, seed=0):
    nn.manual_seed(seed)
    layers = []
    for _ in range(depth):
        linear = nn.Linear(width, width)
        nn.init.normal_(linear.weight, std=1 / np.sqrt(width))
        nn.init.zeros_(linear.bias)
        layers += [linear, activation()]
    return nn.Sequential(*layers[:-1])   # no activation after the last layer

def layer_gradient_norms(model, X, Y):
    model.zero_grad()
    loss = ((model(X) - Y) ** 2).mean()
    loss.backward()
    return np.array([np.linalg.norm(m.weight.grad) for m in model if isinstance(m, nn.Linear)])

rng = np.random.default_rng(0)
X = Value(rng.normal(size=(64, 32)), requires_grad=False)
Y = Value(rng.normal(size=(64, 32)), requires_grad=False)
norms = {name: layer_gradient_norms(deep_stack(act), X, Y) for name, act in [("sigmoid", nn.Sigmoid), ("ReLU", nn.ReLU)]}
for name, g in norms.items():
    print(f"{name:8} first layer / last layer gradient: {g[0] / g[-1]:.2e}")

fig, ax = plt.subplots(figsize=(6, 3.2))
for name, g in norms.items():
    ax.semilogy(range(1, 11), g, "o-", label=name)
ax.set(xlabel="layer (1 = nearest the input)", ylabel="‖dL/dW‖", title="gradient size, layer by layer")
ax.legend()
plt.show()

assert norms["sigmoid"][0] / norms["sigmoid"][-1] < 1e-4
assert norms["ReLU"][0] / norms["ReLU"][-1] > 0.1
# with sigmoid, every step back towards the input shrinks the gradient
assert (np.diff(norms["sigmoid"][:-1]) > 0).all()

# %% [markdown]
# ## Dying ReLU
#
# A ReLU unit whose input is negative for *every* example outputs 0 and passes back gradient 0, so
# nothing ever changes its weights again: it is dead for good. One oversized update is enough to
# push units there. Below, a single step with a far-off target and a large learning rate leaves
# about a fifth of a ReLU layer's units inactive on every example; then we train normally for 200
# Adam steps and check whether those units' weights move at all. Leaky ReLU's small negative slope
# keeps a gradient flowing to the same units.

# %%
import optim

rng = np.random.default_rng(0)
X = Value(rng.normal(size=(200, 2)), requires_grad=False)
Y = Value(np.sin(X.data[:, :1]) + X.data[:, 1:] ** 2, requires_grad=False)

def inactive_units(model):
    with no_grad():
        return (model[0](X).data <= 0).all(axis=0)   # negative input on every example

def mse(model, target):
    return ((model(X) - target) ** 2).mean()

for name, activation in [("ReLU", nn.ReLU), ("leaky ReLU", nn.LeakyReLU)]:
    nn.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 50), activation(), nn.Linear(50, 1))
    before = inactive_units(model).mean()
    mse(model, Y - 10.0).backward()                  # one oversized step towards a far-off target
    with no_grad():
        for p in model.parameters():
            p.data = p.data - 1.0 * p.grad
    dead = inactive_units(model)
    model.zero_grad()
    mse(model, Y).backward()
    gradient_to_dead = np.abs(model[0].weight.grad[dead]).sum()
    frozen = model[0].weight.data[dead].copy()
    opt = optim.Adam(model.parameters(), lr=0.01)
    for step in range(200):
        opt.zero_grad()
        mse(model, Y).backward()
        opt.step()
    moved = np.abs(model[0].weight.data[dead] - frozen).max()
    print(f"{name:10}: units inactive on every example: {before:.0%} before the big step, {dead.mean():.0%} after; "
          f"gradient reaching them {gradient_to_dead:.3g}; largest change of their weights in 200 steps {moved:.3g}")
    if name == "ReLU":
        assert before == 0 and dead.mean() > 0.15
        assert gradient_to_dead == 0.0 and moved == 0.0   # dead for good
    else:
        assert gradient_to_dead > 0.0 and moved > 0.0      # still learning
