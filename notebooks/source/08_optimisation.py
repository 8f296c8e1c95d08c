# %% [markdown]
# # 8. Optimisation
#
# Backpropagation gives the gradient; an **optimizer** decides what step to take with it. This
# notebook walks through the course's toolbox:
#
# 1. batch, mini-batch and stochastic gradient descent;
# 2. momentum, Adagrad, RMSprop, Adadelta and Adam on a 2-D loss surface;
# 3. learning-rate schedules: step, exponential, reduce-on-plateau;
# 4. gradient clipping by value versus by norm, and the max-norm constraint;
# 5. L1 and L2 regularisation;
# 6. early stopping.
#
# The optimizers in `optim` follow PyTorch's update formulas, so the same settings give the same
# trajectories as there.

# %%
import matplotlib.pyplot as plt
import numpy as np
import nn
import optim
from autograd_core import Value, no_grad
from optim import lr_scheduler

np.set_printoptions(precision=4, suppress=True)

# %% [markdown]
# ## Batch, mini-batch and stochastic gradient descent
#
# The loss is an average over the training set. **Batch** gradient descent computes its gradient
# exactly, from all m examples, once per epoch; **stochastic** gradient descent estimates it from one
# example and updates m times per epoch; **mini-batch** sits in between (here 16 examples). More,
# noisier updates usually get further in the same number of epochs. The price is noise: near the
# minimum, single-example gradients keep pushing the weights around, so SGD's loss wobbles at a level
# set by the learning rate instead of settling (which is one reason to lower the rate later on).
#
# The task: linear regression, y = 3x₁ − 2x₂ + 1 + noise, 256 examples.

# %%
rng = np.random.default_rng(0)
m = 256
X_data = rng.normal(size=(m, 2))
y_data = X_data @ np.array([3.0, -2.0]) + 1.0 + 0.1 * rng.normal(size=m)
X_all, y_all = Value(X_data, requires_grad=False), Value(y_data, requires_grad=False)

def run_gd(batch_size, epochs=10, lr=0.02, seed=0):
    order_rng = np.random.default_rng(seed)
    w, b = Value(np.zeros(2)), Value(0.0)
    opt = optim.SGD([w, b], lr=lr)
    history = []
    for epoch in range(epochs):
        order = order_rng.permutation(m)
        for start in range(0, m, batch_size):
            idx = order[start:start + batch_size]
            opt.zero_grad()
            residual = Value(X_data[idx], requires_grad=False) @ w + b - y_data[idx]
            (residual * residual).mean().backward()
            opt.step()
            with no_grad():
                history.append(((X_all @ w + b - y_all) ** 2).mean().item())
    return np.array(history), w.data

curves = {name: run_gd(size) for name, size in [("batch (256)", m), ("mini-batch (16)", 16), ("stochastic (1)", 1)]}
fig, ax = plt.subplots(figsize=(6.5, 3.2))
for name, (history, _) in curves.items():
    updates_per_epoch = len(history) / 10
    ax.semilogy(np.arange(1, len(history) + 1) / updates_per_epoch, history, label=f"{name}: {int(updates_per_epoch)} updates/epoch")
ax.set(xlabel="epoch", ylabel="training MSE", title="same learning rate, same 10 epochs")
ax.legend(fontsize=8)
plt.show()

for name, (history, w) in curves.items():
    print(f"{name:16} after 10 epochs: MSE {history[-1]:.4f}, w = {w}")
batch_h, mini_h, sgd_h = (curves[k][0] for k in ("batch (256)", "mini-batch (16)", "stochastic (1)"))
assert mini_h[-1] < 0.01 * batch_h[-1] and sgd_h[-1] < 0.01 * batch_h[-1]   # more updates, much further
assert np.ptp(sgd_h[-m:]) > 2 * np.ptp(mini_h[-16:])                     # but one example is a noisy guide
assert np.allclose(curves["stochastic (1)"][1], [3.0, -2.0], atol=0.05)

# %% [markdown]
# ## Optimizers on a 2-D loss surface
#
# The surface f(w) = w₁²/20 + w₂² is a long, narrow valley: 20 times steeper across (w₂) than along
# (w₁). Plain gradient descent must use a learning rate small enough for the steep direction and
# then crawls along the flat one.
#
# * **momentum** keeps a running velocity, v ← μv + g, w ← w − lr·v: steps along the valley add up,
#   zig-zags across it cancel;
# * **Adagrad** divides each coordinate's step by the root of the sum of all its past squared
#   gradients: every direction gets a similar step size, but the steps keep shrinking;
# * **RMSprop** uses a decaying average of squared gradients instead, so the steps do not die out;
# * **Adadelta** also scales by the ratio of past step sizes to past gradient sizes, so it needs no
#   learning rate, but starts with tiny steps (its step memory starts at zero);
# * **Adam** combines momentum (the first moment) with RMSprop's scaling (the second moment), with a
#   bias correction for the first steps.

# %%
def valley(w):
    return w[0] ** 2 / 20 + w[1] ** 2

start = np.array([-4.0, 2.0])
settings = {
    "SGD lr=0.4": (optim.SGD, dict(lr=0.4)),
    "momentum lr=0.4, 0.8": (optim.SGD, dict(lr=0.4, momentum=0.8)),
    "Adagrad lr=1": (optim.Adagrad, dict(lr=1.0)),
    "RMSprop lr=0.1": (optim.RMSprop, dict(lr=0.1)),
    "Adadelta (default lr=1)": (optim.Adadelta, dict()),
    "Adam lr=0.3": (optim.Adam, dict(lr=0.3)),
}
paths = {}
for name, (Optimizer, options) in settings.items():
    w = Value(start.copy())
    opt = Optimizer([w], **options)
    path = [w.data.copy()]
    for step in range(60):
        opt.zero_grad()
        valley(w).backward()
        opt.step()
        path.append(w.data.copy())
    paths[name] = np.array(path)

g1, g2 = np.meshgrid(np.linspace(-4.5, 1.5, 200), np.linspace(-2.2, 2.2, 200))
fig, ax = plt.subplots(figsize=(8, 4.5))
ax.contour(g1, g2, g1 ** 2 / 20 + g2 ** 2, levels=np.geomspace(0.01, 5, 12), colors="lightgrey")
for name, path in paths.items():
    ax.plot(path[:, 0], path[:, 1], ".-", ms=3, lw=1, label=name)
ax.plot(0, 0, "k*", ms=10)
ax.set(xlabel="w1", ylabel="w2", title="60 steps from (-4, 2) on f = w1²/20 + w2²", aspect="equal")
ax.legend(fontsize=7, loc="lower right")
plt.show()

final = {name: valley(path[-1]) for name, path in paths.items()}
for name, value in final.items():
    print(f"{name:24} f after 60 steps = {value:.2e}")
start_value = valley(start)
assert all(value < start_value for value in final.values())
assert final["momentum lr=0.4, 0.8"] < 0.01 * final["SGD lr=0.4"]   # momentum beats plain SGD in the valley
assert final["Adagrad lr=1"] < 1e-6 and final["RMSprop lr=0.1"] < 1e-6
assert final["Adadelta (default lr=1)"] > 0.5 * start_value          # barely started

# %% [markdown]
# The first momentum step is exactly a plain gradient step; the second adds the remembered velocity.
# Checking the update formula by hand at the start point (gradient (w₁/10, 2w₂) = (−0.4, 4)):

# %%
g0 = np.array([start[0] / 10, 2 * start[1]])
w1_by_hand = start - 0.4 * g0
g1_ = np.array([w1_by_hand[0] / 10, 2 * w1_by_hand[1]])
w2_by_hand = w1_by_hand - 0.4 * (0.8 * g0 + g1_)
assert np.allclose(paths["momentum lr=0.4, 0.8"][1], w1_by_hand)
assert np.allclose(paths["momentum lr=0.4, 0.8"][2], w2_by_hand)
print("momentum, first two steps:", paths["momentum lr=0.4, 0.8"][1], paths["momentum lr=0.4, 0.8"][2])

# %% [markdown]
# ## Learning-rate schedules
#
# A large learning rate makes fast progress early; a smaller one settles into a minimum. Schedules
# lower it as training goes:
#
# * **StepLR**: multiply by γ every `step_size` epochs;
# * **ExponentialLR**: multiply by γ every epoch;
# * **ReduceLROnPlateau**: watch a validation loss and multiply by `factor` once it has not improved
#   for `patience` epochs.

# %%
def lr_history(make_scheduler, metric=None, epochs=40):
    opt = optim.SGD([Value(0.0)], lr=0.1)
    scheduler = make_scheduler(opt)
    lrs = []
    for epoch in range(epochs):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step() if metric is None else scheduler.step(metric[epoch])
    return np.array(lrs)

val_loss = np.concatenate([np.linspace(1.0, 0.5, 10), np.full(30, 0.5)])   # improves, then stalls
schedules = {
    "StepLR(step_size=10, gamma=0.5)": lr_history(lambda o: lr_scheduler.StepLR(o, step_size=10, gamma=0.5)),
    "ExponentialLR(gamma=0.9)": lr_history(lambda o: lr_scheduler.ExponentialLR(o, gamma=0.9)),
    "ReduceLROnPlateau(factor=0.5, patience=5)": lr_history(
        lambda o: lr_scheduler.ReduceLROnPlateau(o, factor=0.5, patience=5), metric=val_loss),
}
fig, ax = plt.subplots(figsize=(6.5, 3.2))
for name, lrs in schedules.items():
    ax.step(range(40), lrs, where="post", label=name)
ax.set(xlabel="epoch", ylabel="learning rate", yscale="log")
ax.legend(fontsize=8)
plt.show()

step_lrs, exp_lrs, plateau_lrs = schedules.values()
assert np.isclose(step_lrs[25], 0.1 * 0.5 ** 2)
assert np.isclose(exp_lrs[10], 0.1 * 0.9 ** 10)
# the loss stops improving after epoch 9; six epochs without improvement (more than patience=5)
first_cut = int(np.argmax(plateau_lrs < 0.1))
print("ReduceLROnPlateau first lowers the rate for epoch", first_cut)
assert first_cut == 16 and np.isclose(plateau_lrs[first_cut], 0.05)

# %% [markdown]
# ## Gradient clipping: by value versus by norm
#
# When a gradient explodes, one bad step can wreck training; clipping caps it. Take the course's
# gradient g = [0.9, 100].
#
# * **Clip by value** (threshold 1) clamps each component to [−1, 1] and gives [0.9, 1.0]. The step
#   is now small, but it points in a **different direction**: almost diagonal instead of almost
#   straight along the second axis.
# * **Clip by norm** (maximum norm 1) rescales the whole vector, g · 1/‖g‖ = [0.0090, 0.99996]. The
#   **direction is preserved**; only the length changes.

# %%
def clipped(clip, threshold):
    w = Value(np.zeros(2))
    w.grad = np.array([0.9, 100.0])
    clip([w], threshold)
    return w.grad

by_value = clipped(nn.utils.clip_grad_value_, 1.0)
by_norm = clipped(nn.utils.clip_grad_norm_, 1.0)
angle = lambda v: np.degrees(np.arctan2(v[1], v[0]))
print(f"original [0.9, 100]: angle {angle([0.9, 100.0]):.2f} deg")
print(f"clip by value: {by_value}   angle {angle(by_value):.2f} deg")
print(f"clip by norm : [{by_norm[0]:.4f} {by_norm[1]:.5f}]   angle {angle(by_norm):.2f} deg, length {np.linalg.norm(by_norm):.4f}")
assert np.allclose(by_value, [0.9, 1.0])
assert np.allclose(np.round(by_norm, 5), [0.009, 0.99996])
assert np.isclose(angle(by_norm), angle([0.9, 100.0])) and abs(angle(by_value) - angle([0.9, 100.0])) > 40

# %% [markdown]
# ## Max-norm regularisation
#
# Instead of adding a penalty to the loss, max-norm caps the length of every neuron's incoming weight
# vector: after each optimizer step, any row of the weight matrix with ‖w‖₂ > c is scaled back to
# length c. Rows already shorter are left alone.

# %%
layer = nn.Linear(3, 4)
with no_grad():
    layer.weight.data = np.array([[3.0, 4.0, 0.0], [0.1, 0.2, 0.2], [0.0, 0.0, 10.0], [1.0, 1.0, 1.0]])
before = np.linalg.norm(layer.weight.data, axis=1)
nn.utils.max_norm_(layer, 2.0)
after = np.linalg.norm(layer.weight.data, axis=1)
print("row norms before:", before, "  after max_norm_(2.0):", after)
assert np.allclose(after, np.minimum(before, 2.0))
assert np.allclose(layer.weight.data[0], [1.2, 1.6, 0.0])   # same direction, length 2

# %% [markdown]
# ## L1 and L2 regularisation
#
# Adding λ‖w‖² (L2) to the loss adds 2λw to the gradient: every weight is pulled towards zero in
# proportion to its size ("weight decay"). Adding λΣ|w| (L1) adds λ·sign(w): a constant pull, which
# pushes the weights of useless features all the way to (about) zero, a sparse model.
#
# Ten input features, of which only the first two matter, and only 30 examples. L2 shrinks the whole
# weight vector, the useful weights included, but leaves small weights small rather than zero; L1
# sets most of the useless ones to (nearly) zero. (Plain gradient steps on |w| overshoot zero by
# up to lr·λ each time, so "zero" here means within a few thousandths.)

# %%
rng = np.random.default_rng(3)
Xr = rng.normal(size=(30, 10))
yr = Xr[:, 0] * 2.0 - Xr[:, 1] + 0.5 * rng.normal(size=30)
Xr_, yr_ = Value(Xr, requires_grad=False), Value(yr, requires_grad=False)

def fit_linear(penalty, strength, steps=2000):
    w = Value(np.zeros(10))
    opt = optim.SGD([w], lr=0.01)
    for _ in range(steps):
        opt.zero_grad()
        loss = ((Xr_ @ w - yr_) ** 2).mean()
        if penalty == "L1":
            loss = loss + nn.utils.l1_penalty([w], strength)
        elif penalty == "L2":
            loss = loss + nn.utils.l2_penalty([w], strength)
        loss.backward()
        opt.step()
    return w.data

weights = {"none": fit_linear(None, 0), "L2 (0.3)": fit_linear("L2", 0.3), "L1 (0.3)": fit_linear("L1", 0.3)}
for name, w in weights.items():
    near_zero = int((np.abs(w[2:]) < 0.01).sum())
    print(f"{name:9} ‖w‖ = {np.linalg.norm(w):.3f}   useful: {w[:2]}   useless weights below 0.01: {near_zero} of 8")
near_zero = {name: int((np.abs(w[2:]) < 0.01).sum()) for name, w in weights.items()}
assert np.linalg.norm(weights["L2 (0.3)"]) < np.linalg.norm(weights["L1 (0.3)"]) < np.linalg.norm(weights["none"])
assert near_zero["L1 (0.3)"] >= 6 and near_zero["L2 (0.3)"] <= 1 and near_zero["none"] <= 1

fig, ax = plt.subplots(figsize=(6.5, 3))
for k, (name, w) in enumerate(weights.items()):
    ax.bar(np.arange(10) + (k - 1) * 0.27, w, 0.27, label=name)
ax.set(xlabel="feature", ylabel="learned weight", xticks=range(10))
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## Early stopping
#
# Train a network that can overfit, watch the loss on held-out data, and stop once it has not
# improved for `patience` epochs; then go back to the weights from the best epoch.

# %%
rng = np.random.default_rng(1)
def noisy_sine(n):
    x = rng.uniform(-3, 3, size=(n, 1))
    return Value(x, requires_grad=False), Value(np.sin(x) + 0.5 * rng.normal(size=(n, 1)), requires_grad=False)

Xt, Yt = noisy_sine(20)
Xv, Yv = noisy_sine(200)
nn.manual_seed(0)
model = nn.MLP([1, 128, 128, 1])
opt = optim.Adam(model.parameters(), lr=0.005)
stopper = optim.EarlyStopping(patience=50, params=model.parameters())
train_curve, val_curve = [], []
for epoch in range(1000):
    opt.zero_grad()
    loss = ((model(Xt) - Yt) ** 2).mean()
    loss.backward()
    opt.step()
    with no_grad():
        val = ((model(Xv) - Yv) ** 2).mean().item()
    train_curve.append(loss.item())
    val_curve.append(val)
    if stopper.step(val):
        break

stopper.restore_best()
with no_grad():
    restored = ((model(Xv) - Yv) ** 2).mean().item()
print(f"stopped at epoch {epoch}; best validation MSE {stopper.best:.3f} at epoch {stopper.best_epoch}; "
      f"after restoring: {restored:.3f}; training MSE then {train_curve[-1]:.3f}")
assert epoch < 999 and epoch == stopper.best_epoch + 50
assert np.isclose(restored, stopper.best) and stopper.best == min(val_curve)

fig, ax = plt.subplots(figsize=(6.5, 3.2))
ax.plot(train_curve, label="training")
ax.plot(val_curve, label="validation")
ax.axvline(stopper.best_epoch, color="grey", ls=":", label="best epoch (weights restored)")
ax.set(xlabel="epoch", ylabel="MSE", yscale="log")
ax.legend(fontsize=8)
plt.show()
