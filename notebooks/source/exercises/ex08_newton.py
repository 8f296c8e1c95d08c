# %% [markdown]
# # Exercises 8: Newton's step
#
# Gradient descent uses the slope only. Newton's method also uses the **curvature**, the Hessian H
# of second derivatives, and jumps to the minimum of the local quadratic model:
#
# w ← w − H⁻¹ ∇f(w)
#
# Three exercises: a Hessian by hand, the Newton step, and telling a minimum from a saddle.
# Complete each cell where it says `raise NotImplementedError(...)`, then run the check under it.
# All results at once: `autograd-core grade ex08_newton.ipynb`.

# %%
import numpy as np
from autograd_core import Value, grad, hessian
from autograd_core.exercises import exercise


def gradient(f, w):
    """∇f at the point w (an array), from the engine."""
    point = Value(np.array(w, dtype=float))
    return grad(f(point), point)[0]

# %% [markdown]
# ## Exercise 8.1: a Hessian by hand
#
# For f(x, y) = x²y + 3y²: ∂f/∂x = 2xy and ∂f/∂y = x² + 6y. Differentiate each once more to get
# H = [[∂²f/∂x², ∂²f/∂x∂y], [∂²f/∂y∂x, ∂²f/∂y²]]. At (1, 2) it is [[4, 2], [2, 6]].

# %%
def hessian_by_hand(x, y):
    ### SOLUTION
    return np.array([[2 * y, 2 * x],
                     [2 * x, 6.0]])
    ### BLANK
    raise NotImplementedError("return the 2x2 matrix of second derivatives at (x, y)")
    ### END

# %%
with exercise("8.1", "a Hessian by hand") as ex:
    f = lambda v: v[0] ** 2 * v[1] + 3 * v[1] ** 2
    ex.close("H at (1, 2)", hessian_by_hand(1.0, 2.0), [[4.0, 2.0], [2.0, 6.0]],
             hint="differentiate 2xy and x^2 + 6y once more, by x and by y")
    for point in ([-1.5, 0.5], [3.0, -2.0]):
        ex.close(f"H at {tuple(point)}", hessian_by_hand(*point), hessian(f, np.array(point)),
                 hint="right at (1, 2) only: write it with x and y")

# %% [markdown]
# ## Exercise 8.2: the Newton step
#
# Given f (a function of a Value) and a point w, return the next point. H⁻¹∇f is the solution s of
# the linear system H s = ∇f: solve it (`np.linalg.solve`) rather than inverting H.
#
# On a quadratic bowl f(w) = ½ wᵀAw − bᵀw the local model is f itself, so one step lands on the
# minimum A⁻¹b, however stretched the bowl: with A = [[50, 0], [0, 1]] and b = (1, 1), on (0.02, 1).

# %%
def newton_step(f, w):
    ### SOLUTION
    return w - np.linalg.solve(hessian(f, w), gradient(f, w))
    ### BLANK
    raise NotImplementedError("w minus the solution s of H s = gradient")
    ### END

# %%
with exercise("8.2", "the Newton step") as ex:
    A, b = np.array([[50.0, 0.0], [0.0, 1.0]]), np.array([1.0, 1.0])
    bowl = lambda w: 0.5 * (w @ Value(A, requires_grad=False) @ w) - Value(b, requires_grad=False) @ w
    start = np.array([2.0, -3.0])
    H, g = hessian(bowl, start), gradient(bowl, start)
    mine = newton_step(bowl, start)
    ex.expect(not np.allclose(mine, start + np.linalg.solve(H, g)), "the step goes uphill: subtract H^-1 g")
    ex.expect(not np.allclose(mine, start - H @ g), "H^-1 g is not H @ g: solve H s = g with np.linalg.solve")
    ex.close("one Newton step on the bowl", mine, [0.02, 1.0])
    f = lambda v: v[0] ** 2 * v[1] + 3 * v[1] ** 2
    point = np.array([1.0, 2.0])
    ex.close("a Newton step on x^2 y + 3 y^2 from (1, 2)", newton_step(f, point),
             point - np.linalg.solve([[4.0, 2.0], [2.0, 6.0]], [4.0, 13.0]))

# %% [markdown]
# ## Exercise 8.3: a minimum or a saddle?
#
# Newton's step goes to the point where the gradient of the quadratic model is zero, and that may
# be a saddle: on f = x² − y² one step from anywhere lands on (0, 0). The Hessian tells them apart:
# at a minimum every eigenvalue is positive, at a saddle some are positive and some negative.
# Return True when the symmetric matrix H has eigenvalues of both signs (`np.linalg.eigvalsh`).

# %%
def is_saddle(H):
    ### SOLUTION
    eigenvalues = np.linalg.eigvalsh(H)
    return bool(eigenvalues.min() < 0 < eigenvalues.max())
    ### BLANK
    raise NotImplementedError("look at the signs of the eigenvalues of H")
    ### END

# %%
with exercise("8.3", "a minimum or a saddle") as ex:
    ex.expect(bool(is_saddle(np.array([[2.0, 0.0], [0.0, -2.0]]))), "x^2 - y^2 curves up and down: a saddle")
    ex.expect(not is_saddle(np.array([[50.0, 0.0], [0.0, 1.0]])), "the bowl curves up everywhere: a minimum")
    ex.expect(not is_saddle(np.array([[4.0, 2.0], [2.0, 6.0]])), "eigenvalues 2.76 and 7.24: a minimum")
    ex.expect(bool(is_saddle(np.array([[1.0, 3.0], [3.0, 1.0]]))),
              "[[1, 3], [3, 1]] has eigenvalues 4 and -2: look at the eigenvalues, not the diagonal")
