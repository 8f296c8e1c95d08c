# %% [markdown]
# # 3. Argmax versus softmax
#
# A classifier with several output units produces raw numbers ("logits") that can be any size:
# in the course's iris example a flower gives **1.43** for setosa, **−0.4** for versicolor and
# **0.23** for virginica. Two ways to turn them into a decision:
#
# * **argmax** puts 1 on the largest and 0 everywhere else: easy to read, useless for training;
# * **softmax** turns them into positive numbers that sum to one: smooth, so it can be trained.

# %%
import matplotlib.pyplot as plt
import numpy as np
from autograd_core import Value, grad, softmax

np.set_printoptions(precision=4, suppress=True)
classes = ["setosa", "versicolor", "virginica"]
raw = np.array([1.43, -0.4, 0.23])

# %% [markdown]
# ## Argmax

# %%
one_hot = (raw == raw.max()).astype(float)
print({name: int(v) for name, v in zip(classes, one_hot)})
assert one_hot.tolist() == [1.0, 0.0, 0.0]

# the library's argmax returns plain integer indices, not a Value: nothing to backpropagate through
import nn.functional as F

prediction = F.argmax(Value(raw[None, :]), dim=1)
print("nn.functional.argmax:", classes[int(prediction[0])], "| a Value?", isinstance(prediction, Value))
assert int(prediction[0]) == 0 and not isinstance(prediction, Value)

# %% [markdown]
# ### Argmax has no useful gradient
#
# Hold setosa and versicolor fixed and slide virginica's raw output. Argmax's output for
# virginica stays 0 until virginica overtakes setosa at 1.43, then jumps to 1. The curve is
# flat on both sides, so its slope is **0 almost everywhere** (and undefined at the jump).
# Gradient descent multiplies by that slope in the chain rule, and a zero there stops every
# weight behind it from learning.
#
# We can watch the engine discover this. Argmax is the limit of softmax with a temperature T → 0:
# softmax(z / T) sharpens into the one-hot vector as T shrinks. The engine's gradient of the
# setosa output with respect to the raw outputs shrinks to zero along with it.

# %%
z = Value(raw)
for T in (1.0, 0.1, 0.01):
    p = softmax(z / T)
    (dp_setosa,) = grad(p[0], z)
    print(f"T = {T:<5} softmax = {np.array2string(p.data, precision=4)}   "
          f"d p_setosa / d z = [{', '.join(f'{g:.2g}' for g in dp_setosa)}]")
assert np.allclose(p.data, one_hot, atol=1e-12)
assert np.abs(dp_setosa).max() < 1e-20

sweep = np.linspace(-1, 3, 401)
hard = (sweep > raw[0]).astype(float)
soft = np.array([softmax(Value(np.array([raw[0], raw[1], v]))).data[2] for v in sweep])
slope = np.gradient(hard, sweep)
assert np.count_nonzero(slope) <= 2  # flat everywhere but at the jump

fig, ax = plt.subplots(figsize=(6, 3.2))
ax.plot(sweep, hard, label="argmax output for virginica")
ax.plot(sweep, soft, label="softmax output for virginica")
ax.axvline(raw[0], color="grey", ls=":", lw=1)
ax.set(xlabel="virginica's raw output", ylabel="output")
ax.legend()
plt.show()

# %% [markdown]
# ## Softmax
#
# softmax(z)ᵢ = e^{zᵢ} / Σⱼ e^{zⱼ}. For the iris outputs the engine gives **0.684, 0.110, 0.206**.
#
# The video shows 0.69, 0.10, 0.21. It presumably worked from the network's unrounded outputs and
# rounded its answers loosely; from the values printed on screen the exact figures are those above.
# No choice of raw outputs that round to 1.43, −0.4 and 0.23 gives 0.10 for versicolor (its smallest
# possible value is 0.109), so the difference is rounding, not a different formula.

# %%
z = Value(raw, label="z")
p = softmax(z)
print("engine:", p.data.round(3), "   video:", [0.69, 0.10, 0.21])
assert np.allclose(p.data.round(3), [0.684, 0.110, 0.206])

# the three properties the course lists
assert (np.argsort(p.data) == np.argsort(raw)).all()      # order is preserved
assert ((p.data > 0) & (p.data < 1)).all()                  # each one between 0 and 1
assert np.isclose(p.data.sum(), 1.0)                        # they sum to one

# every raw output within rounding of the printed ones: versicolor never drops to 0.105
corners = np.array(np.meshgrid(*[[-0.005, 0.005]] * 3)).reshape(3, -1).T + raw
smallest_versicolor = min(softmax(Value(c)).data[1] for c in corners)
print(f"smallest versicolor output within rounding: {smallest_versicolor:.4f}")
assert smallest_versicolor > 0.105

# %% [markdown]
# ### Softmax's derivatives
#
# Write pᵢ for softmax's outputs. Then ∂pᵢ/∂zᵢ = pᵢ(1 − pᵢ) and, for j ≠ i, ∂pᵢ/∂zⱼ = −pᵢ pⱼ:
# raising another class's raw output takes probability away from class i. For setosa:
#
# * ∂p_setosa/∂z_setosa = 0.684 × 0.316 = **0.216**
# * ∂p_setosa/∂z_versicolor = −0.684 × 0.110 = **−0.075**
# * ∂p_setosa/∂z_virginica = −0.684 × 0.206 = **−0.141**
#
# The video works from its rounded probabilities (0.69, 0.10, 0.21) and shows 0.21, −0.07 and −0.15.
# The engine's softmax has its own backward rule (a vector-Jacobian product); differentiating
# exp, sum and divide one step at a time lands on the same numbers.

# %%
(dp_setosa,) = grad(softmax(z)[0], z)
formula = np.array([p.data[0] * (1 - p.data[0]), -p.data[0] * p.data[1], -p.data[0] * p.data[2]])
print("engine :", dp_setosa.round(3))
print("formula:", formula.round(3), "   video:", [0.21, -0.07, -0.15])
assert np.allclose(dp_setosa.round(3), [0.216, -0.075, -0.141])
assert np.allclose(dp_setosa, formula, atol=1e-15)

# the same from the definition, built out of exp / sum / divide
t = z.exp()
(dp_from_parts,) = grad((t / t.sum())[0], z)
assert np.allclose(dp_from_parts, dp_setosa, atol=1e-15)

# the video's figures from its rounded probabilities: 0.69*0.31, -0.69*0.10, -0.69*0.21
print("from rounded probabilities:", np.round([0.69 * 0.31, -0.69 * 0.10, -0.69 * 0.21], 3))

# %% [markdown]
# ### The slides' example: softmax of 6, −2, 3
#
# e⁶ = 403.4, e⁻² = 0.135, e³ = 20.09, sum 423.7, so softmax is **0.9523, 0.00032, 0.0474**.
# The slides write 0.952, 0.00037 and 0.048. The first is right. The other two are slips: the slides
# also write e³ as 20.0 and the sum as 423.5, but even with those numbers 0.135 / 423.5 = 0.00032
# and 20.0 / 423.5 = 0.047.

# %%
s = softmax(Value(np.array([6.0, -2.0, 3.0])))
print("engine:", [f"{v:.3g}" for v in s.data], "   slides:", [0.952, 0.00037, 0.048])
assert round(s.data[0], 4) == 0.9523
assert round(s.data[1], 5) == 0.00032
assert round(s.data[2], 4) == 0.0474
assert round(0.135 / 423.5, 5) == 0.00032 and round(20.0 / 423.5, 3) == 0.047

# softmax only looks at differences: adding a constant changes nothing,
# which is why the engine subtracts the max before exp (no overflow for large logits)
assert np.allclose(softmax(Value(np.array([1006.0, 998.0, 1003.0]))).data, s.data)

# %% [markdown]
# ## Why the "probabilities" should not be trusted too far
#
# Softmax's outputs look like probabilities, but they are whatever the trained weights make them,
# and the trained weights depend on the random weights training started from. We train the same
# small network (petal width and sepal width in, three species out, as in the video) on the iris
# data from four different random starts, to about the same accuracy, and ask each one about the
# same flower: petal width 1.6 cm and sepal width 2.8 cm, between versicolor and virginica.

# %%
import nn
import optim
from autograd_core import no_grad

iris = nn.data.load_iris()
widths = iris.X[:, [iris.feature_names.index("petal_width"), iris.feature_names.index("sepal_width")]]
low, high = widths.min(axis=0), widths.max(axis=0)
X = Value((widths - low) / (high - low), requires_grad=False)   # scaled to [0, 1]
flower = Value((np.array([[1.6, 2.8]]) - low) / (high - low), requires_grad=False)

results = []
for seed in (0, 1, 2, 3):
    nn.manual_seed(seed)
    model = nn.MLP([2, 4, 3])
    opt = optim.Adam(model.parameters(), lr=0.05)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(60):
        opt.zero_grad()
        loss = loss_fn(model(X), iris.y)
        loss.backward()
        opt.step()
    with no_grad():
        accuracy = (model(X).data.argmax(axis=1) == iris.y).mean()
        probs = softmax(model(flower)).data[0]
    results.append((seed, accuracy, probs))
    print(f"seed {seed}: training accuracy {accuracy:.1%},  softmax for the flower {probs.round(3)}")

accuracies = np.array([r[1] for r in results])
versicolor = np.array([r[2][1] for r in results])
assert accuracies.min() > 0.94                       # every run is a good classifier...
assert versicolor.max() - versicolor.min() > 0.05    # ...yet they disagree on how sure to be
decisions = {int(np.argmax(r[2])) for r in results}
assert versicolor.max() > 0.55 and decisions == {1, 2}   # and even on the answer

fig, ax = plt.subplots(figsize=(6, 3))
width = 0.2
for k, (seed, _, probs) in enumerate(results):
    ax.bar(np.arange(3) + (k - 1.5) * width, probs, width, label=f"seed {seed}")
ax.set_xticks(range(3), classes)
ax.set(ylabel="softmax output", title="one flower, four equally good networks")
ax.legend()
plt.show()

# %% [markdown]
# All four networks classify about 95% of the flowers correctly, yet one is well over half "sure" the
# flower is versicolor and another puts virginica ahead. Softmax's outputs rank the classes and train well
# with cross-entropy; reading them as calibrated probabilities needs more care than that.
