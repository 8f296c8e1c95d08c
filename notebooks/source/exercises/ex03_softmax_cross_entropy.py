# %% [markdown]
# # Exercises 3: softmax and cross-entropy
#
# A classifier's last layer gives raw scores z. Softmax turns them into probabilities
# p_i = e^(z_i) / Σ_j e^(z_j), and cross-entropy scores the probability given to the true class:
# L = −Σ_i y_i log p_i for a one-hot y. Their combined gradient is the famous **dL/dz = p − y**.
#
# Three exercises: softmax itself, its vector-Jacobian product, and the gradient p − y.
# Complete each cell where it says `raise NotImplementedError(...)`, then run the check under it.
# All results at once: `autograd-core grade ex03_softmax_cross_entropy.ipynb`.

# %%
import numpy as np
from autograd_core import Op, Value, softmax
from autograd_core.exercises import exercise


def engine_softmax(z):
    """The engine's softmax along the last axis, as an array: the later exercises use it, so that
    they do not depend on yours."""
    return softmax(Value(z, requires_grad=False), axis=-1).data

# %% [markdown]
# ## Exercise 3.1: softmax, without overflow
#
# Softmax along the last axis of `z` (one row per example). e^1000 overflows to infinity, so
# subtract each row's largest score first: that changes nothing in the result (the factor e^(−max)
# cancels between top and bottom) and keeps every exponent at most 0.
#
# The course's numbers: softmax of the iris scores (1.43, −0.4, 0.23) is (0.684, 0.110, 0.206), and
# softmax of (6, −2, 3) is (0.952, 0.00032, 0.047).

# %%
def my_softmax(z):
    ### SOLUTION
    shifted = z - z.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)
    ### BLANK
    raise NotImplementedError("exp of z minus its row's max, divided by the row's sum")
    ### END

# %%
with exercise("3.1", "softmax, without overflow") as ex:
    ex.close("softmax(1.43, -0.4, 0.23)", my_softmax(np.array([1.43, -0.4, 0.23])), [0.684, 0.110, 0.206],
             atol=5e-4, hint="exponentiate each score, then divide by the sum of the exponentials")
    ex.close("softmax(6, -2, 3)", my_softmax(np.array([6.0, -2.0, 3.0])), [0.952, 0.00032, 0.047],
             atol=5e-4, rtol=0)
    rows = np.array([[1.43, -0.4, 0.23], [6.0, -2.0, 3.0]])
    ex.close("softmax of two rows at once", my_softmax(rows), engine_softmax(rows),
             hint="normalise each row on its own: sum along axis -1 with keepdims=True")
    big = my_softmax(np.array([1006.0, 998.0, 1003.0]))
    ex.expect(np.all(np.isfinite(big)), "softmax(1006, 998, 1003) overflowed: subtract the row's max before exp")
    ex.close("softmax(1006, 998, 1003)", big, engine_softmax(np.array([6.0, -2.0, 3.0])),
             hint="adding the same number to every score changes nothing")

# %% [markdown]
# ## Exercise 3.2: softmax's vector-Jacobian product
#
# Every p_i depends on every z_j: ∂p_i/∂z_j = p_i(δ_ij − p_j). So softmax is a **structural** op:
# its rule receives the upstream gradient g = dL/dp and returns dL/dz directly,
#
# dL/dz_j = Σ_i g_i p_i(δ_ij − p_j) = p_j (g_j − Σ_i g_i p_i).
#
# Write it with `out` (= p) and sums along the last axis with `keepdims=True`. For the iris scores
# and g = (1, 0, 0) (the gradient of p_setosa alone) it gives the course's (0.216, −0.075, −0.141).

# %%
def softmax_d_z(g, z, out):
    ### SOLUTION
    return out * (g - (g * out).sum(axis=-1, keepdims=True))
    ### BLANK
    raise NotImplementedError("return dL/dz from g = dL/dp and out = p: p * (g - sum(g * p))")
    ### END


softmax_op = Op("softmax_rule", engine_softmax, inputs="z", d_z=softmax_d_z,
                formula="dL/dz = p * (g - sum(g * p))", register=False)

# %%
with exercise("3.2", "softmax's vector-Jacobian product") as ex:
    z = np.array([1.43, -0.4, 0.23])
    setosa = softmax_d_z(np.array([1.0, 0.0, 0.0]), z, engine_softmax(z))
    ex.close("dp_setosa/dz", setosa, [0.216, -0.075, -0.141], atol=5e-4,
             hint="p_setosa moves with every score: p1(1 - p1) for z1, -p1 p_j for the others")
    ex.check_rule(softmax_op, np.array([[1.43, -0.4, 0.23], [6.0, -2.0, 3.0]]),
                  hint="each p_i depends on all the z_j: the sum over i of g_i p_i appears in every entry.")

# %% [markdown]
# ## Exercise 3.3: cross-entropy's gradient is p − y
#
# For a batch of m examples (rows), the mean cross-entropy is L = −(1/m) Σ_rows Σ_i y_i log p_i.
# Through softmax, the log cancels the exponential and the gradient with respect to the scores
# is simply **dL/dZ = (P − Y)/m**. The op below takes the one-hot labels as a parameter `y`;
# write its rule (a structural rule: the upstream gradient g is a number here, multiply by it).
# `engine_softmax(z)` gives P.
#
# The slides' example: z = (6, −2, 3) with the true class first gives L = −ln 0.952 = 0.049
# (the slides print 0.021: that is −log₁₀ 0.952) and dL/dz = (−0.048, 0.00032, 0.047).

# %%
def cross_entropy(z, y):
    return -(y * np.log(engine_softmax(z))).sum() / len(z)


def cross_entropy_d_z(g, z, out, y):
    ### SOLUTION
    return g * (engine_softmax(z) - y) / len(z)
    ### BLANK
    raise NotImplementedError("return g times dL/dZ: softmax(z) minus the labels, over the batch size")
    ### END


ce_op = Op("my_cross_entropy", cross_entropy, inputs="z", d_z=cross_entropy_d_z,
           formula="dL/dZ = (P - Y) / m", register=False)

# %%
with exercise("3.3", "cross-entropy's gradient p - y") as ex:
    z, y = np.array([[6.0, -2.0, 3.0]]), np.array([[1.0, 0.0, 0.0]])
    ex.close("L for z = (6, -2, 3), class 1", cross_entropy(z, y), 0.049, atol=5e-4)
    ex.close("dL/dz for z = (6, -2, 3), class 1", cross_entropy_d_z(1.0, z, None, y), [[-0.048, 0.00032, 0.047]],
             atol=5e-4, rtol=0, hint="dL/dz = p - y: the probabilities, minus 1 at the true class")
    Z = np.array([[1.43, -0.4, 0.23], [6.0, -2.0, 3.0], [0.5, 0.5, -1.0], [-1.0, 2.0, 0.0]])
    Y = np.eye(3)[[0, 2, 1, 1]]
    ex.check_rule(ce_op, Z, params={"y": Y},
                  hint="the loss is a mean over the m rows: each row's p - y is divided by m.")
