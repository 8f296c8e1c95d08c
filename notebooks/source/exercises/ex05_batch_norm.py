# %% [markdown]
# # Exercises 5: batch normalisation
#
# For a mini-batch of m examples (rows), batch normalisation works on each feature (column) on
# its own:
#
# 1. the batch mean μ = (1/m) Σ xᵢ and variance σ² = (1/m) Σ (xᵢ − μ)²;
# 2. normalise: x̂ᵢ = (xᵢ − μ) / √(σ² + ε), so the column has mean 0 and variance 1;
# 3. scale and shift with learned γ and β: yᵢ = γ x̂ᵢ + β.
#
# Three exercises: the forward pass, the rules of γ and β, and the gradient through the
# normalisation itself. Complete each cell where it says `raise NotImplementedError(...)`, then
# run the check under it. All results at once: `autograd-core grade ex05_batch_norm.ipynb`.

# %%
import numpy as np
import nn
from autograd_core import Op, Value
from autograd_core.exercises import exercise

rng = np.random.default_rng(5)
EPS = 1e-5

# %% [markdown]
# ## Exercise 5.1: the forward pass in training mode
#
# The course's batch: four examples of three features on very different scales. Its column means
# are (3, 50, 1) and its variances (3.5, 350, 5). Return y, μ and σ².

# %%
x = np.array([[1.0, 50.0, -2.0],
              [2.0, 60.0, 0.0],
              [3.0, 70.0, 2.0],
              [6.0, 20.0, 4.0]])
gamma = np.array([1.0, 2.0, 0.5])
beta = np.array([0.0, -1.0, 3.0])


def batch_norm_forward(x, gamma, beta, eps=EPS):
    ### SOLUTION
    mu = x.mean(axis=0)
    var = ((x - mu) ** 2).mean(axis=0)
    x_hat = (x - mu) / np.sqrt(var + eps)
    return gamma * x_hat + beta, mu, var
    ### BLANK
    raise NotImplementedError("return y, the batch mean and the batch variance (one per column)")
    ### END

# %%
with exercise("5.1", "the forward pass in training mode") as ex:
    y, mu, var = batch_norm_forward(x, gamma, beta)
    ex.close("the batch mean", mu, [3.0, 50.0, 1.0], hint="average each column: axis 0")
    ex.close("the batch variance", var, [3.5, 350.0, 5.0],
             hint="in training, batch norm divides by m, not m - 1 (the biased variance)")
    layer = nn.BatchNorm1d(3)
    layer.weight.data, layer.bias.data = gamma, beta
    ex.close("y", y, layer(Value(x, requires_grad=False)).data,
             hint="normalise with the square root of var + eps, then scale by gamma and shift by beta")

# %% [markdown]
# ## Exercise 5.2: the rules of γ and β
#
# y = γ x̂ + β, with γ and β of shape (n,) used by every one of the m rows. Write the three
# rules of this op (structural rules: each receives the upstream gradient g = dL/dy, of shape
# (m, n), and returns an array of its input's shape).

# %%
def scale_shift_d_x_hat(g, x_hat, gamma, beta, out):
    ### SOLUTION
    return g * gamma
    ### BLANK
    raise NotImplementedError("return dL/dx_hat, of shape (m, n)")
    ### END


def scale_shift_d_gamma(g, x_hat, gamma, beta, out):
    ### SOLUTION
    return (g * x_hat).sum(axis=0)
    ### BLANK
    raise NotImplementedError("return dL/dgamma, of shape (n,)")
    ### END


def scale_shift_d_beta(g, x_hat, gamma, beta, out):
    ### SOLUTION
    return g.sum(axis=0)
    ### BLANK
    raise NotImplementedError("return dL/dbeta, of shape (n,)")
    ### END


scale_shift = Op("scale_shift", lambda x_hat, gamma, beta: gamma * x_hat + beta, inputs="x_hat, gamma, beta",
                 d_x_hat=scale_shift_d_x_hat, d_gamma=scale_shift_d_gamma, d_beta=scale_shift_d_beta,
                 formula="dL/dx_hat = g gamma, dL/dgamma = sum(g x_hat), dL/dbeta = sum(g)", register=False)

# %%
with exercise("5.2", "the rules of gamma and beta") as ex:
    ex.check_rule(scale_shift, rng.normal(size=(4, 3)), rng.normal(size=3), rng.normal(size=3))

# %% [markdown]
# ## Exercise 5.3: the gradient through the normalisation
#
# x̂ = (x − μ)/√(σ² + ε) reaches each xᵢ along three paths: directly, through μ and through σ².
# Adding them up gives a compact rule, per column, with s = 1/√(σ² + ε):
#
# dL/dxᵢ = (s/m) · (m·gᵢ − Σⱼ gⱼ − x̂ᵢ Σⱼ gⱼ x̂ⱼ)
#
# where g = dL/dx̂ and the sums run over the m rows. Write it; `out` is x̂.

# %%
def normalise(x, eps):
    mu = x.mean(axis=0)
    return (x - mu) / np.sqrt(x.var(axis=0) + eps)


def normalise_d_x(g, x, out, eps):
    ### SOLUTION
    m = len(x)
    s = 1 / np.sqrt(x.var(axis=0) + eps)
    return s / m * (m * g - g.sum(axis=0) - out * (g * out).sum(axis=0))
    ### BLANK
    raise NotImplementedError("return dL/dx from g = dL/dx_hat and out = x_hat")
    ### END


normalise_op = Op("normalise", normalise, inputs="x", d_x=normalise_d_x,
                  formula="dL/dx = s/m (m g - sum(g) - x_hat sum(g x_hat))", register=False)

# %%
with exercise("5.3", "the gradient through the normalisation") as ex:
    ex.check_rule(normalise_op, rng.normal(size=(5, 3)) * [1.0, 10.0, 0.1], params={"eps": EPS},
                  hint="three paths: the direct one (m g), through the mean (-sum(g)), through the variance "
                       "(-x_hat sum(g x_hat)); all scaled by s/m.")
