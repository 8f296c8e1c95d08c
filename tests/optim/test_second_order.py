"""Newton and L-BFGS on classic problems, and the saddle point of the course notes."""

import numpy as np
import pytest

import optim
from autograd_core import Value


def rosenbrock(w):
    return (1 - w[0]) ** 2 + 100 * (w[1] - w[0] ** 2) ** 2


def test_newton_solves_a_quadratic_in_one_step():
    rng = np.random.default_rng(0)
    M = rng.normal(size=(4, 4))
    A = M @ M.T + 4 * np.eye(4)  # positive definite
    b = rng.normal(size=4)
    w = Value(rng.normal(size=4))
    opt = optim.Newton([w])
    loss = lambda: 0.5 * (w @ Value(A, requires_grad=False) @ w) - w @ Value(b, requires_grad=False) + 7.0
    opt.step(loss)
    np.testing.assert_allclose(w.data, np.linalg.solve(A, b), rtol=1e-12)
    assert opt.state[w]["damping"] == 0.0  # a plain Newton step: no damping was needed


def test_newton_over_several_parameters_including_a_scalar():
    # f = (a - 1)^2 + 2 (b0 + a)^2 + 3 (b1 - 2)^2: a quadratic in (a, b0, b1), minimum (1, -1, 2)
    a, b = Value(5.0), Value(np.array([3.0, -4.0]))
    opt = optim.Newton([a, b])
    opt.step(lambda: (a - 1) ** 2 + 2 * (b[0] + a) ** 2 + 3 * (b[1] - 2) ** 2)
    assert float(a.data) == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(b.data, [-1.0, 2.0], atol=1e-12)


@pytest.mark.parametrize("fallback", ["levenberg", "gradient", None])
def test_newton_reaches_rosenbrocks_minimum_in_under_50_steps(fallback):
    w = Value(np.array([-1.5, 2.0]))
    opt = optim.Newton([w], fallback=fallback)
    for steps in range(1, 50):
        opt.step(lambda: rosenbrock(w))
        if np.abs(w.data - 1.0).max() < 1e-10:
            break
    np.testing.assert_allclose(w.data, [1.0, 1.0], atol=1e-10)
    assert steps < 50


def test_levenberg_fallback_handles_an_indefinite_hessian():
    # at (0, 1) Rosenbrock's Hessian is diag(-398, 200): not positive definite
    w = Value(np.array([0.0, 1.0]))
    opt = optim.Newton([w])
    opt.step(lambda: rosenbrock(w))
    assert opt.state[w]["damping"] > 398  # damped until H + lambda I was positive definite
    for _ in range(60):
        opt.step(lambda: rosenbrock(w))
    np.testing.assert_allclose(w.data, [1.0, 1.0], atol=1e-8)


def test_newton_closure_must_not_call_backward():
    w = Value(np.array([1.0, 2.0]))
    opt = optim.Newton([w])

    def closure():
        loss = (w**2).sum()
        loss.backward()
        return loss

    with pytest.raises(RuntimeError, match="without calling backward"):
        opt.step(closure)
    with pytest.raises(TypeError, match="closure"):
        opt.step()


# ---- the saddle point of f = x^2 - y^2 + y^4 / 4 ----------------------------
# grad f = (2x, -2y + y^3): a saddle at (0, 0) (curvature +2 along x, -2 along y)
# and the two minima (0, +-sqrt(2)) where f = -1.
def saddle(w):
    return w[0] ** 2 - w[1] ** 2 + 0.25 * w[1] ** 4


def gradient_descent(start, steps, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    w = Value(np.array(start))
    opt = optim.SGD([w], lr=0.1)
    for _ in range(steps):
        opt.zero_grad()
        saddle(w).backward()
        if noise:  # noisy gradient: g + N(0, noise^2), one way the course escapes saddles
            w.grad = w.grad + noise * rng.standard_normal(2)
        opt.step()
    return w.data


def test_gradient_descent_is_stuck_at_the_saddle_from_an_exact_start():
    np.testing.assert_array_equal(gradient_descent([0.0, 0.0], 300), [0.0, 0.0])
    # and from anywhere on the x axis it slides into the saddle, not a minimum
    np.testing.assert_allclose(gradient_descent([1.5, 0.0], 300), [0.0, 0.0], atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gradient_noise_escapes_the_saddle_to_a_minimum(seed):
    w = gradient_descent([0.0, 0.0], 300, noise=0.01, seed=seed)
    assert abs(w[0]) < 0.05
    assert abs(abs(w[1]) - np.sqrt(2)) < 0.05
    assert saddle(Value(w)).item() < -0.99


def test_pure_newton_is_attracted_by_the_saddle_but_levenberg_escapes():
    w = Value(np.array([0.3, 0.1]))
    pure = optim.Newton([w], fallback=None)
    for _ in range(10):
        pure.step(lambda: saddle(w))
    np.testing.assert_allclose(w.data, [0.0, 0.0], atol=1e-12)  # converged to the saddle

    w = Value(np.array([0.3, 0.1]))
    damped = optim.Newton([w])  # Levenberg damping where the Hessian is indefinite
    for _ in range(30):
        damped.step(lambda: saddle(w))
    np.testing.assert_allclose(w.data, [0.0, np.sqrt(2)], atol=1e-8)


# ---- L-BFGS ------------------------------------------------------------------
def lbfgs_closure(opt, loss_fn):
    def closure():
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss
    return closure


def test_lbfgs_with_strong_wolfe_reaches_rosenbrocks_minimum():
    w = Value(np.array([-1.5, 2.0]))
    opt = optim.LBFGS([w], line_search_fn="strong_wolfe", max_iter=200, tolerance_grad=1e-10, tolerance_change=1e-14)
    opt.step(lbfgs_closure(opt, lambda: rosenbrock(w)))
    np.testing.assert_allclose(w.data, [1.0, 1.0], atol=1e-6)


def test_lbfgs_without_line_search_solves_a_quadratic():
    A = np.diag([1.0, 3.0, 10.0])
    w = Value(np.array([1.0, 1.0, 1.0]))
    opt = optim.LBFGS([w], tolerance_grad=1e-12, tolerance_change=1e-15)
    closure = lbfgs_closure(opt, lambda: 0.5 * (w @ Value(A, requires_grad=False) @ w))
    for _ in range(3):
        opt.step(closure)
    np.testing.assert_allclose(w.data, 0.0, atol=1e-7)


@pytest.mark.parametrize("option", ["history_size", "max_iter", "max_eval"])
def test_lbfgs_refuses_counts_below_one(option):
    # history_size=0 used to fail inside step() with an IndexError
    with pytest.raises(ValueError, match=rf"LBFGS: {option} must be a whole number >= 1, got 0"):
        optim.LBFGS([Value(np.ones(2))], **{option: 0})


def test_lbfgs_resumes_from_its_state_dict():
    def run(split):
        w = Value(np.array([-1.5, 2.0]))
        opt = optim.LBFGS([w], max_iter=4, history_size=3, lr=0.1)
        closure = lbfgs_closure(opt, lambda: rosenbrock(w))
        for _ in range(split):
            opt.step(closure)
        if split < 6:
            saved, data = opt.state_dict(), w.data.copy()
            w = Value(data)
            opt = optim.LBFGS([w], max_iter=4, history_size=3, lr=0.1)
            opt.load_state_dict(saved)
            closure = lbfgs_closure(opt, lambda: rosenbrock(w))
        for _ in range(6 - split):
            opt.step(closure)
        return w.data

    np.testing.assert_array_equal(run(3), run(6))


def test_lbfgs_takes_one_group_and_needs_a_closure():
    with pytest.raises(ValueError, match="one parameter group"):
        optim.LBFGS([{"params": [Value(1.0)]}, {"params": [Value(2.0)]}])
    with pytest.raises(TypeError, match="closure"):
        optim.LBFGS([Value(1.0)]).step()
    with pytest.raises(ValueError, match="line_search_fn"):
        optim.LBFGS([Value(1.0)], line_search_fn="armijo")
