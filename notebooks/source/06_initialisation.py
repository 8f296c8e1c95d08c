# %% [markdown]
# # 6. Initialisation
#
# Training starts from the initial weights, and a bad start can make training impossible:
#
# 1. **zero or constant** weights make every unit of a layer compute the same thing, forever;
# 2. weights that are **too small** make the signal fade layer by layer, weights that are **too large**
#    make it blow up (or saturate tanh and sigmoid);
# 3. **Xavier/Glorot** and **He** initialisation pick the scale from the layer's width so that the
#    variance of the activations stays about the same from layer to layer.

# %%
import matplotlib.pyplot as plt
import numpy as np
import nn
import optim
from autograd_core import Value, no_grad

np.set_printoptions(precision=4, suppress=True)

# %% [markdown]
# ## Constant initialisation keeps neurons symmetric
#
# If every weight into a hidden layer starts equal, every hidden unit computes the same output and
# receives the same gradient, so after any number of steps they are still equal: the layer behaves
# like a single unit. Random initialisation breaks the tie.

# %%
rng = np.random.default_rng(0)
X = Value(rng.normal(size=(100, 2)), requires_grad=False)
Y = Value((X.data[:, :1] * X.data[:, 1:] > 0).astype(float), requires_grad=False)   # XOR-like

def train(model, steps=100):
    opt = optim.SGD(model.parameters(), lr=0.5)
    for _ in range(steps):
        opt.zero_grad()
        loss = nn.BCEWithLogitsLoss()(model(X), Y)
        loss.backward()
        opt.step()
    return loss.item()

def hidden_rows_distinct(model):
    W = model[0].weight.data
    return len({tuple(row.round(12)) for row in W})

nn.manual_seed(0)
constant = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))
for p in constant.parameters():
    nn.init.constant_(p, 0.5)
random_init = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))   # PyTorch's default init

loss_constant, loss_random = train(constant), train(random_init)
print(f"constant init: {hidden_rows_distinct(constant)} distinct hidden unit(s) after training, loss {loss_constant:.3f}")
print(f"random init  : {hidden_rows_distinct(random_init)} distinct hidden units after training, loss {loss_random:.3f}")
print("first-layer weights after training with constant init:\n", constant[0].weight.data)
assert hidden_rows_distinct(constant) == 1 and hidden_rows_distinct(random_init) == 8
assert loss_random < loss_constant

# %% [markdown]
# With **all-zero** weights it is worse: the output layer's weights are zero, so no gradient at all
# reaches the first layer (every path back goes through a zero weight).

# %%
zero = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))
for p in zero.parameters():
    nn.init.zeros_(p)
nn.BCEWithLogitsLoss()(zero(X), Y).backward()
print("first-layer weight gradient with zero init:", np.abs(zero[0].weight.grad).max())
assert np.abs(zero[0].weight.grad).max() == 0.0

# %% [markdown]
# ## Keeping the variance across layers
#
# A unit sums fan_in inputs, each multiplied by a weight. If inputs and weights are independent with
# mean 0, Var(output) = fan_in · Var(w) · Var(input). To keep the variance constant we want
# Var(w) = 1/fan_in, adjusted for what the activation does:
#
# * **Xavier/Glorot** (for tanh and sigmoid): Var(w) = 2/(fan_in + fan_out), a compromise between the
#   forward pass (1/fan_in) and the backward pass (1/fan_out);
# * **He/Kaiming** (for ReLU): Var(w) = 2/fan_in, because ReLU zeroes half of its inputs and so halves
#   the variance.
#
# We push a batch through 10 layers of width 256 and record the standard deviation of every layer's
# output, for several initialisations.

# %%
width, depth = 256, 10
X = Value(np.random.default_rng(1).normal(size=(500, width)), requires_grad=False)

def activation_stds(init, activation):
    nn.manual_seed(0)
    h, stds = X, []
    with no_grad():
        for _ in range(depth):
            layer = nn.Linear(width, width)
            init(layer.weight)
            nn.init.zeros_(layer.bias)
            h = activation(layer(h))
            stds.append(h.data.std())
    return np.array(stds)

schemes = {
    "tanh, N(0, 0.01²)  (too small)": (lambda w: nn.init.normal_(w, std=0.01), nn.Tanh()),
    "tanh, N(0, 1)      (too large)": (lambda w: nn.init.normal_(w, std=1.0), nn.Tanh()),
    "tanh, Xavier normal": (lambda w: nn.init.xavier_normal_(w, gain=nn.init.calculate_gain("tanh")), nn.Tanh()),
    "ReLU, Xavier normal": (nn.init.xavier_normal_, nn.ReLU()),
    "ReLU, He normal": (lambda w: nn.init.kaiming_normal_(w, nonlinearity="relu"), nn.ReLU()),
}
stds = {name: activation_stds(*scheme) for name, scheme in schemes.items()}
for name, s in stds.items():
    print(f"{name:32} std of layer 1: {s[0]:.3g}   layer 10: {s[-1]:.3g}")

fig, ax = plt.subplots(figsize=(7, 3.8))
for name, s in stds.items():
    ax.semilogy(range(1, depth + 1), s, "o-", label=name)
ax.set(xlabel="layer", ylabel="std of the layer's output", title="activations through 10 layers")
ax.legend(fontsize=8)
plt.show()

# %%
tanh_small, tanh_large = stds["tanh, N(0, 0.01²)  (too small)"], stds["tanh, N(0, 1)      (too large)"]
assert tanh_small[-1] < 1e-6                     # the signal has died out
assert tanh_large[-1] > 0.95                     # every unit saturated at -1 or +1
xavier_tanh, he_relu, xavier_relu = stds["tanh, Xavier normal"], stds["ReLU, He normal"], stds["ReLU, Xavier normal"]
assert 0.3 < xavier_tanh[-1] < 1.0               # Xavier keeps tanh in its useful range
assert 0.5 < he_relu[-1] / he_relu[0] < 2.0      # He keeps ReLU's scale across 10 layers
assert xavier_relu[-1] / xavier_relu[0] < 0.1    # Xavier with ReLU halves the variance per layer
assert 0.6 < (xavier_relu[1:] / xavier_relu[:-1]).mean() < 0.8   # about 1/√2 per layer

# %% [markdown]
# Xavier with ReLU loses about half of the variance per layer (about a factor √2 in standard
# deviation: from layer 1 to layer 10 it falls twentyfold, √2⁹ ≈ 23), which is the factor of 2
# He's rule puts back.
#
# ## Exploding gradients with large initial weights
#
# Each layer multiplies the forward signal by its weights, and the backward pass multiplies the
# gradient by the same weights transposed. With weights N(0, 1) instead of He's N(0, 2/256), each of
# the 10 ReLU layers scales both by about √(256/2) ≈ 11, and a layer's weight gradient (the upstream
# gradient times the layer's input) collects both growths. Any gradient step with these gradients
# would throw the weights far away: training diverges at once.

# %%
def gradient_norms(std):
    nn.manual_seed(0)
    layers = []
    for _ in range(depth):
        layer = nn.Linear(width, width)
        nn.init.normal_(layer.weight, std=std)
        nn.init.zeros_(layer.bias)
        layers += [layer, nn.ReLU()]
    model = nn.Sequential(*layers[:-1])
    out = model(X[:32])
    (out * out).mean().backward()   # any loss will do: we look at how the gradient scales
    return np.array([np.linalg.norm(m.weight.grad) for m in model if isinstance(m, nn.Linear)])

he_std = np.sqrt(2 / width)
g_large, g_he = gradient_norms(1.0), gradient_norms(he_std)
print(f"N(0, 1):  ‖dL/dW‖ at layer 1 = {g_large[0]:.3g}, at layer 10 = {g_large[-1]:.3g}")
print(f"He     :  ‖dL/dW‖ at layer 1 = {g_he[0]:.3g}, at layer 10 = {g_he[-1]:.3g}")
assert g_large.min() > 1e15 and g_large.min() / g_he.max() > 1e15
assert g_he.max() < 10 and 0.1 < g_he[0] / g_he[-1] < 10
