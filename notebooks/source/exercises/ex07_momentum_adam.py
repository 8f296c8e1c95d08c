# %% [markdown]
# # Exercises 7: momentum and Adam
#
# Both are written here as PyTorch writes them (`optim.SGD` and `optim.Adam` follow the same
# formulas), and both are tried on the course's long narrow valley f(w) = w₁²/20 + w₂², starting
# from (−4, 2), where the gradient is (w₁/10, 2w₂) = (−0.4, 4).
#
# Complete each cell where it says `raise NotImplementedError(...)`, then run the check under it.
# All results at once: `autograd-core grade ex07_momentum_adam.ipynb`.

# %%
import numpy as np
import optim
from autograd_core import Value
from autograd_core.exercises import exercise

START = np.array([-4.0, 2.0])


def valley_gradient(w):
    return np.array([w[0] / 10, 2 * w[1]])


def optimizer_path(make_optimizer, steps):
    """The points the library's optimizer visits on the valley."""
    w = Value(START.copy())
    opt = make_optimizer([w])
    path = []
    for _ in range(steps):
        opt.zero_grad()
        (w[0] ** 2 / 20 + w[1] ** 2).backward()
        opt.step()
        path.append(w.data.copy())
    return np.array(path)

# %% [markdown]
# ## Exercise 7.1: a momentum step
#
# Momentum keeps a velocity: the gradients of past steps, fading by a factor μ per step.
#
# v ← μ·v + g,  w ← w − lr·v
#
# With lr = 0.4 and μ = 0.8, the first step from (−4, 2) is a plain gradient step to (−3.84, 0.4);
# the second adds the remembered velocity and lands on (−3.5584, −1.2).

# %%
def momentum_step(w, v, g, lr, mu):
    ### SOLUTION
    v = mu * v + g
    return w - lr * v, v
    ### BLANK
    raise NotImplementedError("return the new w and the new v")
    ### END

# %%
with exercise("7.1", "a momentum step") as ex:
    w, v = START, np.zeros(2)
    w, v = momentum_step(w, v, valley_gradient(w), 0.4, 0.8)
    ex.close("w after one step", w, [-3.84, 0.4], hint="the first step has no memory yet: w - lr * g")
    w, v = momentum_step(w, v, valley_gradient(w), 0.4, 0.8)
    ex.close("v after two steps", v, [-0.704, 4.0],
             hint="v = mu * v + g (PyTorch's form: the learning rate is applied to w, not folded into v)")
    ex.close("w after two steps", w, [-3.5584, -1.2])
    w, v = START, np.zeros(2)
    for _ in range(30):
        w, v = momentum_step(w, v, valley_gradient(w), 0.4, 0.8)
    library = optimizer_path(lambda params: optim.SGD(params, lr=0.4, momentum=0.8), 30)
    ex.close("w after 30 steps, against optim.SGD", w, library[-1])

# %% [markdown]
# ## Exercise 7.2: an Adam step
#
# Adam keeps two fading averages: m of the gradients (like momentum) and v of their squares
# (like RMSprop), both starting at 0. Early on they are too small, biased towards their start, so
# they are divided by 1 − βᵗ (t counts steps from 1):
#
# m ← β₁m + (1 − β₁)g,  v ← β₂v + (1 − β₂)g²,  m̂ = m/(1 − β₁ᵗ),  v̂ = v/(1 − β₂ᵗ),
# w ← w − lr·m̂/(√v̂ + ε)
#
# At t = 1 the corrected m̂/√v̂ is g/|g|: every weight moves by lr against the sign of its gradient,
# whatever the gradient's size.

# %%
def adam_step(w, m, v, g, t, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    ### SOLUTION
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    m_hat = m / (1 - beta1 ** t)
    v_hat = v / (1 - beta2 ** t)
    return w - lr * m_hat / (np.sqrt(v_hat) + eps), m, v
    ### BLANK
    raise NotImplementedError("return the new w, m and v")
    ### END

# %%
with exercise("7.2", "an Adam step") as ex:
    w, m, v = adam_step(START, np.zeros(2), np.zeros(2), valley_gradient(START), 1, 0.3)
    ex.expect(np.all(np.isfinite(w)), "the step is not finite: t counts from 1 (with t = 0, 1 - beta**t is 0)")
    ex.close("the first step", w - START, [0.3, -0.3],
             hint="without the bias correction m/(1 - beta1**t), v/(1 - beta2**t) the first step is about "
                  "3.16 times too long")
    ex.close("m after one step", m, 0.1 * valley_gradient(START), hint="m = beta1 * m + (1 - beta1) * g")
    ex.close("v after one step", v, 0.001 * valley_gradient(START) ** 2, hint="v = beta2 * v + (1 - beta2) * g**2")
    w, m, v = START, np.zeros(2), np.zeros(2)
    for t in range(1, 21):
        w, m, v = adam_step(w, m, v, valley_gradient(w), t, 0.3)
    library = optimizer_path(lambda params: optim.Adam(params, lr=0.3), 20)
    ex.close("w after 20 steps, against optim.Adam", w, library[-1],
             hint="pass t = 1, 2, 3, ...: the bias correction depends on the step number")
