# %% [markdown]
# # 4. Cross-entropy, entropy and KL divergence
#
# Softmax gives a predicted distribution Q over the classes; the label gives the true one P.
# Cross-entropy measures how badly Q describes P. It is built from one idea, **surprise**:
# an outcome of probability p carries log(1/p) of surprise. Certain events (p = 1) surprise us
# not at all; rare ones a lot.
#
# Logs: base 2 (bits) for the coin, to match the course; natural logs (nats) for losses, as every
# deep-learning library uses. The base only scales the numbers.

# %%
import matplotlib.pyplot as plt
import numpy as np
from autograd_core import Value, grad, softmax

np.set_printoptions(precision=4, suppress=True)
LN2 = np.log(2.0)

def entropy(p, base=np.e):
    """H(P) = sum_i p_i log(1/p_i) of a Value holding a distribution (0 log 0 counts as 0)."""
    p = p if isinstance(p, Value) else Value(np.asarray(p, dtype=float))
    safe = Value(np.where(p.data > 0, p.data, 1.0), requires_grad=False)
    return -(p * safe.log()).sum() / np.log(base)

def cross_entropy(p, q, base=np.e):
    """H(P, Q) = sum_i p_i log(1/q_i)."""
    return -(Value(np.asarray(p, dtype=float), requires_grad=False) * q.log()).sum() / np.log(base)

def kl_divergence(p, q):
    """D_KL(P || Q) = sum_i p_i log(p_i / q_i) (terms with p_i = 0 are 0)."""
    p = np.asarray(p, dtype=float)
    mask = p > 0
    return (Value(p[mask], requires_grad=False) * (Value(p[mask], requires_grad=False) / q[mask]).log()).sum()

# %% [markdown]
# ## Surprise and entropy of a biased coin
#
# A coin lands heads 90% of the time. A head surprises us by log₂(1/0.9) = 0.152 bits, a tail by
# log₂(1/0.1) = **3.32** bits. In 100 tosses we expect 90 heads and 10 tails, so
# 90 × 0.152 + 10 × 3.32 = 46.9 bits in all: **0.469 bits per toss**. That average surprise is the
# **entropy** H(P) = Σ pᵢ log(1/pᵢ).

# %%
coin = Value(np.array([0.9, 0.1]))
surprise_bits = -coin.log() / LN2
print("surprise of heads, tails (bits):", surprise_bits.data.round(3))
assert np.allclose(surprise_bits.data.round(2), [0.15, 3.32])

total_100 = 90 * surprise_bits.data[0] + 10 * surprise_bits.data[1]
H_coin = entropy(coin, base=2)
print(f"100 tosses: {total_100:.1f} bits, entropy {H_coin.item():.3f} bits per toss")
assert round(total_100, 1) == 46.9 and round(H_coin.item(), 3) == 0.469

# %% [markdown]
# Entropy is largest when every outcome is equally likely (1 bit for a fair coin, log₂ N for N
# outcomes) and zero when the outcome is certain. The engine can tell us where the maximum is:
# the derivative dH/dp = log₂((1 − p)/p) crosses zero at p = 0.5.

# %%
ps = Value(np.linspace(0.001, 0.999, 999))
H_curve = -(ps * ps.log() + (1 - ps) * (1 - ps).log()) / LN2
H_curve.sum().backward()   # each H depends only on its own p, so this gives every dH/dp at once
assert np.allclose(ps.grad, np.log2((1 - ps.data) / ps.data))
assert abs(ps.data[np.argmax(H_curve.data)] - 0.5) < 1e-12 and np.isclose(H_curve.data.max(), 1.0)
assert entropy(np.full(4, 0.25), base=2).item() == 2.0   # log2(4) for four equal outcomes

fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(ps.data, H_curve.data)
ax.plot([0.9], [H_coin.item()], "o")
ax.annotate("our coin, 0.469 bits", (0.9, H_coin.item()), textcoords="offset points", xytext=(-120, -5))
ax.set(xlabel="P(heads)", ylabel="entropy (bits)", title="entropy of a coin")
plt.show()

# %% [markdown]
# ## KL divergence: how different two distributions are
#
# D_KL(P ‖ Q) = Σ pᵢ log(pᵢ / qᵢ) is the *extra* surprise we suffer, on average, when outcomes come
# from P but we expect Q. It is zero only when Q = P and never negative, but it is **not symmetric**:
# it is not a distance.

# %%
P = np.array([0.9, 0.1])   # the biased coin
Q = np.array([0.5, 0.5])   # a fair coin
kl_pq = kl_divergence(P, Value(Q)).item()
kl_qp = kl_divergence(Q, Value(P)).item()
print(f"KL(biased || fair) = {kl_pq:.3f} nats,  KL(fair || biased) = {kl_qp:.3f} nats")
assert round(kl_pq, 3) == 0.368 and round(kl_qp, 3) == 0.511
assert kl_divergence(P, Value(P)).item() == 0.0

# %% [markdown]
# ## Cross-entropy = entropy + KL
#
# Cross-entropy H(P, Q) = Σ pᵢ log(1/qᵢ) is the average surprise when outcomes follow P and we
# expect Q. Split log(1/qᵢ) = log(1/pᵢ) + log(pᵢ/qᵢ) and it falls apart into
# **H(P, Q) = H(P) + D_KL(P ‖ Q)**. In training, P (the labels) is fixed, so H(P) is a constant:
# minimising cross-entropy *is* minimising KL, and their gradients with respect to the model are equal.

# %%
rng = np.random.default_rng(0)
P = rng.dirichlet(np.ones(5))
logits = Value(rng.normal(size=5))
Q = softmax(logits)
ce, h, kl = cross_entropy(P, Q), entropy(P), kl_divergence(P, Q)
print(f"H(P,Q) = {ce.item():.4f},  H(P) + KL = {h.item():.4f} + {kl.item():.4f} = {h.item() + kl.item():.4f}")
assert np.isclose(ce.item(), h.item() + kl.item(), atol=1e-12)
(g_ce,) = grad(cross_entropy(P, softmax(logits)), logits)
(g_kl,) = grad(kl_divergence(P, softmax(logits)), logits)
assert np.allclose(g_ce, g_kl, atol=1e-12)
assert np.allclose(g_ce, Q.data - P, atol=1e-12)   # through softmax: predicted minus true

# %% [markdown]
# With a **one-hot** label, P = [1, 0], the entropy is 0 and cross-entropy equals KL: both are
# −log(q of the true class). For the course's example Q = [0.7, 0.3] that is −ln 0.7 = 0.357.

# %%
Q = Value(np.array([0.7, 0.3]))
ce = cross_entropy([1.0, 0.0], Q)
assert round(ce.item(), 3) == 0.357 and np.isclose(ce.item(), kl_divergence([1.0, 0.0], Q).item())
print(f"one-hot label: CE = KL = {ce.item():.3f}")

# %% [markdown]
# ### The slides' softmax example, and a base-10 log
#
# The slides score the softmax output ⟨0.952, 0.00037, 0.048⟩ (see notebook 3; the exact values are
# 0.9523, 0.00032, 0.0474). With the true class first they write the loss as −log 0.952 = −0.021;
# with the true class last, −log 0.048 = 1.31. Those are **base-10** logs (−log₁₀ 0.048 = 1.319, cut
# to 1.31), and the first has lost its sign: a cross-entropy is never negative. In natural logs, as every library computes it, the losses
# are 0.049 and 3.04 (3.05 from the exact 0.0474). Either way the point stands: a confident right
# answer costs almost nothing, a confident wrong one costs a lot.

# %%
q = softmax(Value(np.array([6.0, -2.0, 3.0])))
loss_right = cross_entropy([1.0, 0.0, 0.0], q).item()
loss_wrong = cross_entropy([0.0, 0.0, 1.0], q).item()
print(f"natural log: {loss_right:.3f} (true class first), {loss_wrong:.3f} (true class last)")
print(f"base 10, from the slides' rounded probabilities: {-np.log10(0.952):.3f}, {-np.log10(0.048):.3f}")
assert round(-np.log10(0.952), 3) == 0.021 and np.floor(-np.log10(0.048) * 100) / 100 == 1.31
assert round(-np.log(0.952), 3) == 0.049 and round(-np.log(0.048), 2) == 3.04
assert round(loss_right, 3) == 0.049 and round(loss_wrong, 2) == 3.05

# %% [markdown]
# ## Why cross-entropy rather than squared residuals?
#
# Suppose the model gives the true class probability q. Squared residual: (1 − q)², whose slope
# is −2(1 − q): never steeper than 2, however wrong the model is. Cross-entropy: −log q, whose slope
# −1/q grows without limit as q → 0. A **bad prediction gets a big push** with cross-entropy and
# a timid one with squared error. We let the engine compute both slopes over a grid of q.

# %%
q = Value(np.linspace(0.01, 0.99, 99))
ce_loss = -q.log()
sq_loss = (1 - q) ** 2
(d_ce,) = grad(ce_loss.sum(), q)
(d_sq,) = grad(sq_loss.sum(), q)
print(f"at q = 0.01: CE slope {d_ce[0]:.1f}, squared-residual slope {d_sq[0]:.2f}")
assert np.isclose(d_ce[0], -100.0) and np.isclose(d_sq[0], -1.98)
assert np.allclose(d_ce, -1 / q.data) and np.allclose(d_sq, -2 * (1 - q.data))

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.2))
ax1.plot(q.data, ce_loss.data, label="cross-entropy  -log q")
ax1.plot(q.data, sq_loss.data, label="squared residual  (1-q)^2")
ax1.set(xlabel="predicted probability of the true class", ylabel="loss")
ax1.legend()
ax2.semilogy(q.data, np.abs(d_ce), label="|slope| of cross-entropy")
ax2.semilogy(q.data, np.abs(d_sq), label="|slope| of squared residual")
ax2.set(xlabel="predicted probability of the true class", ylabel="size of the gradient")
ax2.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Binary cross-entropy and its derivative
#
# With two classes we keep one probability ŷ (from a sigmoid) and a target t ∈ [0, 1]:
# BCE = −[t log ŷ + (1 − t) log(1 − ŷ)]. Differentiating term by term,
# **∂BCE/∂ŷ = −t/ŷ + (1 − t)/(1 − ŷ) = (ŷ − t) / (ŷ(1 − ŷ))**.
# The sigmoid's own derivative is ŷ(1 − ŷ), so through the sigmoid the gradient with respect to the
# logit z is simply **ŷ − t**.

# %%
t = np.array([1.0, 0.0, 1.0, 0.3])
z = Value(np.array([2.0, 2.0, -3.0, 0.5]))
y_hat = z.sigmoid()
bce = -(t * y_hat.log() + (1 - t) * (1 - y_hat).log())
d_yhat, d_z = grad(bce.sum(), [y_hat, z])
yh = y_hat.data
assert np.allclose(d_yhat, -t / yh + (1 - t) / (1 - yh), atol=1e-12)
assert np.allclose(d_z, yh - t, atol=1e-12)
print("dBCE/dz from the engine:", d_z, "  y_hat - t:", yh - t)

# %% [markdown]
# For very wrong, very confident logits, log(σ(z)) underflows to log(0). Written in terms of z,
# BCE = softplus(z) − t·z (softplus(z) = log(1 + eᶻ)) never takes log(0); this is what a
# "BCE with logits" loss computes.

# %%
z = Value(np.array([-800.0, 0.0, 800.0]))
t = np.array([1.0, 1.0, 0.0])
with np.errstate(divide="ignore", over="ignore"):
    naive = -(t * np.log(1 / (1 + np.exp(-z.data))) + (1 - t) * np.log(1 - 1 / (1 + np.exp(-z.data))))
stable = z.softplus() - t * z
print("naive:", naive, "   stable:", stable.data)
assert np.isinf(naive).any() and np.allclose(stable.data, [800.0, np.log(2), 800.0])
(d_z,) = grad(stable.sum(), z)
assert np.allclose(d_z, z.sigmoid().data - t)
