# %% [markdown]
# # 9. Second-order methods and saddle points
#
# Gradient descent only uses the slope. Second-order methods also use the **curvature**, the
# matrix of second derivatives (the Hessian H), to choose both the direction and the length of a
# step. Newton's method jumps to the minimum of the local quadratic model:
#
# w ← w − H⁻¹ ∇f(w)
#
# On a convex bowl that is excellent. Where the surface curves down in some direction, at a
# **saddle point**, the same step walks *towards* the saddle. In high dimensions saddle points are far
# more common than local minima, which is one reason deep learning mostly sticks to first-order
# methods, with some noise to shake them off saddles.

# %%
import matplotlib.pyplot as plt
import numpy as np
import optim
from autograd_core import Value, grad, hessian

np.set_printoptions(precision=4, suppress=True)

# %% [markdown]
# ## The Hessian from the engine
#
# The engine can differentiate its own backward pass (`grad(..., create_graph=True)`), so second
# derivatives come from the same rules as first ones. For f(x, y) = x²y + 3y²:
# ∂f/∂x = 2xy, ∂f/∂y = x² + 6y, and H = [[2y, 2x], [2x, 6]]; at (1, 2) that is [[4, 2], [2, 6]].

# %%
f = lambda v: v[0] ** 2 * v[1] + 3 * v[1] ** 2
point = np.array([1.0, 2.0])
H = hessian(f, point)
print("Hessian at (1, 2):\n", H)
assert np.allclose(H, [[4.0, 2.0], [2.0, 6.0]])

# the same by hand with grad(create_graph=True), one row at a time
v = Value(point)
(g,) = grad(f(v), v, create_graph=True)
rows = [grad(g[i], v, retain_graph=True)[0] for i in range(2)]
assert np.allclose(np.array(rows), H)

# and against finite differences of the gradient
def gradient_at(p):
    w = Value(p)
    return grad(f(w), w)[0]

h = 1e-6
numeric = np.array([(gradient_at(point + h * e) - gradient_at(point - h * e)) / (2 * h) for e in np.eye(2)])
assert np.allclose(numeric, H, atol=1e-6)

# %% [markdown]
# ## Newton's method on a convex bowl
#
# For a quadratic f(w) = ½ wᵀAw − bᵀw the local model *is* the function, so one Newton step lands
# exactly on the minimum w* = A⁻¹b, however stretched the bowl. Gradient descent on the same bowl
# (condition number 50) needs many steps.

# %%
A = np.array([[50.0, 0.0], [0.0, 1.0]])
b = np.array([1.0, 1.0])
A_, b_ = Value(A, requires_grad=False), Value(b, requires_grad=False)
bowl = lambda w: 0.5 * (w @ A_ @ w) - b_ @ w
w_star = np.linalg.solve(A, b)

w = Value(np.array([2.0, -3.0]))
newton = optim.Newton([w], lr=1.0)
newton.step(lambda: bowl(w))
print("after one Newton step:", w.data, "  minimum:", w_star)
assert np.allclose(w.data, w_star, atol=1e-12)

w = Value(np.array([2.0, -3.0]))
sgd = optim.SGD([w], lr=1 / 50)   # about the largest stable rate for the steep direction
steps = 0
while np.linalg.norm(w.data - w_star) > 1e-6:
    sgd.zero_grad()
    bowl(w).backward()
    sgd.step()
    steps += 1
print("gradient descent needs", steps, "steps to get within 1e-6")
assert steps > 500

# %% [markdown]
# On a convex function that is not quadratic, Newton's method converges **quadratically**: near the
# minimum the number of correct digits roughly doubles at each step. For f(w) = eʷ − 2w the minimum is
# at w = ln 2.

# %%
w = Value(np.array([2.0]))
newton = optim.Newton([w], lr=1.0)
errors = []
for _ in range(6):
    newton.step(lambda: (w.exp() - 2 * w).sum())
    errors.append(abs(w.data[0] - np.log(2)))
print("error after each step:", ["%.1e" % e for e in errors])
assert errors[5] < 1e-15
# theory: e_{k+1} ≈ f'''(w*) / (2 f''(w*)) · e_k² = e_k² / 2 here (f'' = f''' = e^w = 2 at w*)
ratios = [errors[k + 1] / errors[k] ** 2 for k in range(1, 4)]
print("e_{k+1} / e_k^2:", np.round(ratios, 3))
assert all(0.4 < r < 0.6 for r in ratios)

# %% [markdown]
# ## Where Newton fails: a saddle point
#
# f(x, y) = x² − y² has zero slope at (0, 0), but that point is a minimum along x and a maximum along
# y: a saddle. Its Hessian [[2, 0], [0, −2]] has a negative eigenvalue. Newton's step solves for the
# point where the *gradient* is zero, and that is the saddle: pure Newton jumps there in one step from
# anywhere, and stays.

# %%
saddle = lambda v: (v[0] ** 2 - v[1] ** 2)
H_saddle = hessian(saddle, np.array([0.5, 0.3]))
print("Hessian of x² − y²:\n", H_saddle, "  eigenvalues:", np.linalg.eigvalsh(H_saddle))
assert np.allclose(H_saddle, [[2, 0], [0, -2]]) and np.linalg.eigvalsh(H_saddle).min() < 0

w = Value(np.array([0.5, 0.3]))
pure_newton = optim.Newton([w], lr=1.0, fallback=None)
pure_newton.step(lambda: saddle(w))
print("pure Newton from (0.5, 0.3) goes to", w.data, " f =", saddle(w).item())
assert np.allclose(w.data, [0.0, 0.0])

# gradient descent from the same point moves away from the saddle along y
w = Value(np.array([0.5, 0.3]))
sgd = optim.SGD([w], lr=0.1)
for _ in range(10):
    sgd.zero_grad()
    saddle(w).backward()
    sgd.step()
print("10 gradient steps from (0.5, 0.3) go to", w.data, " f =", saddle(w).item())
assert abs(w.data[1]) > 1.0 and saddle(w).item() < 0

# `optim.Newton`'s default guard adds damping when the Hessian is not positive definite,
# turning the step into a descent step:
w = Value(np.array([0.5, 0.3]))
optim.Newton([w], lr=1.0).step(lambda: saddle(w))
print("damped Newton from (0.5, 0.3) goes to", w.data, " f =", saddle(w).item())
assert saddle(w).item() < saddle(Value(np.array([0.5, 0.3]))).item()

# %% [markdown]
# ## Gradient noise escapes a saddle
#
# Plain gradient descent is not immune either. On f(x, y) = x² + y⁴/4 − y²/2 (a saddle at the
# origin, minima at (0, ±1)) a start exactly on the line y = 0 has no gradient in y, ever, so descent
# slides into the saddle and stops. Adding a little Gaussian noise to each gradient step (as the
# course suggests, and as mini-batch gradients do naturally) breaks the symmetry and the iterate rolls
# off to a minimum.

# %%
def surface(v):
    return v[0] ** 2 + v[1] ** 4 / 4 - v[1] ** 2 / 2

def descend(noise, steps=200, lr=0.1, seed=0):
    rng = np.random.default_rng(seed)
    w = Value(np.array([1.5, 0.0]))
    path = [w.data.copy()]
    for _ in range(steps):
        (g,) = grad(surface(w), w)
        w = Value(w.data - lr * (g + noise * rng.normal(size=2)))
        path.append(w.data.copy())
    return np.array(path)

plain, noisy = descend(0.0), descend(0.01)
print("without noise ends at (%.4f, %.4f);  with noise ends at (%.3f, %.3f)" % (*plain[-1], *noisy[-1]))
assert np.allclose(plain[-1], [0.0, 0.0], atol=1e-8)           # stuck at the saddle
assert abs(abs(noisy[-1][1]) - 1.0) < 0.05 and abs(noisy[-1][0]) < 0.05   # found a minimum
assert surface(Value(noisy[-1])).item() < -0.24 < surface(Value(plain[-1])).item()

gx, gy = np.meshgrid(np.linspace(-1.7, 1.7, 200), np.linspace(-1.6, 1.6, 200))
fig, ax = plt.subplots(figsize=(6, 4.5))
ax.contour(gx, gy, gx ** 2 + gy ** 4 / 4 - gy ** 2 / 2, levels=20, colors="lightgrey")
ax.plot(plain[:, 0], plain[:, 1], ".-", ms=3, label="gradient descent")
ax.plot(noisy[:, 0], noisy[:, 1], ".-", ms=3, label="with gradient noise (σ = 0.01)")
ax.plot([0], [0], "kx", ms=10, label="saddle point")
ax.plot([0, 0], [-1, 1], "k*", ms=10, label="minima")
ax.set(xlabel="x", ylabel="y", aspect="equal", title="f = x² + y⁴/4 − y²/2")
ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))
plt.show()
