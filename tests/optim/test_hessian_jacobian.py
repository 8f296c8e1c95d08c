"""autograd_core.hessian / jacobian / hvp against analytic derivatives (and PyTorch when present)."""

import numpy as np
import pytest

import autograd_core as ac
from autograd_core import Value, hessian, hvp, jacobian
from autograd_core.functional import gradient_and_hessian


def test_hessian_of_a_cubic_polynomial():
    # f = x^2 y + 3 y^2 + x y^3: H = [[2y, 2x + 3y^2], [2x + 3y^2, 6 + 6xy]]
    f = lambda v: v[0] ** 2 * v[1] + 3 * v[1] ** 2 + v[0] * v[1] ** 3
    x, y = 1.5, -0.5
    expected = np.array([[2 * y, 2 * x + 3 * y**2], [2 * x + 3 * y**2, 6 + 6 * x * y]])
    np.testing.assert_allclose(hessian(f, np.array([x, y])), expected, rtol=1e-12)


def test_hessian_of_a_quadratic_form_is_a_plus_a_transpose():
    A = np.array([[2.0, 1.0, 0.0], [3.0, 4.0, -1.0], [0.5, 0.0, 1.0]])
    f = lambda v: v @ Value(A, requires_grad=False) @ v
    np.testing.assert_allclose(hessian(f, np.array([0.3, -1.0, 2.0])), A + A.T, rtol=1e-12)


def test_hessian_of_elementwise_functions_is_diagonal_second_derivative():
    x = np.array([0.3, -0.7, 1.2])
    t = np.tanh(x)
    np.testing.assert_allclose(hessian(lambda v: v.tanh().sum(), x), np.diag(-2 * t * (1 - t**2)), atol=1e-14)
    s = 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(hessian(lambda v: v.sigmoid().sum(), x), np.diag(s * (1 - s) * (1 - 2 * s)), atol=1e-14)
    np.testing.assert_allclose(hessian(lambda v: v.exp().sum(), x), np.diag(np.exp(x)), rtol=1e-13)
    np.testing.assert_allclose(hessian(lambda v: (v * v + 1).log().sum(), x),
                               np.diag(2 * (1 - x**2) / (1 + x**2) ** 2), rtol=1e-12)


def test_hessian_of_logsumexp_is_diag_p_minus_p_p_transpose():
    x = np.array([0.1, 2.0, -1.0, 0.5])
    p = np.exp(x) / np.exp(x).sum()
    np.testing.assert_allclose(hessian(lambda v: ac.logsumexp(v), x), np.diag(p) - np.outer(p, p), atol=1e-14)


def test_hessian_of_a_scalar_and_of_a_matrix_argument():
    assert hessian(lambda v: v**3, 2.0) == pytest.approx(12.0)
    W = np.array([[1.0, 2.0], [-1.0, 0.5]])
    H = hessian(lambda w: (w**2).sum() + w[0, 0] * w[1, 1], W)
    assert H.shape == (2, 2, 2, 2)
    expected = 2 * np.eye(4)
    expected[0, 3] = expected[3, 0] = 1.0
    np.testing.assert_allclose(H.reshape(4, 4), expected)


def test_hessian_of_a_linear_function_is_zero():
    np.testing.assert_array_equal(hessian(lambda v: (3 * v).sum(), np.ones(3)), np.zeros((3, 3)))


def test_jacobian_of_a_linear_map_is_its_matrix():
    A = np.arange(6.0).reshape(2, 3)
    np.testing.assert_allclose(jacobian(lambda v: Value(A, requires_grad=False) @ v, np.ones(3)), A)


def test_jacobian_of_softmax_is_diag_s_minus_s_s_transpose():
    x = np.array([1.0, -0.5, 0.3])
    s = np.exp(x) / np.exp(x).sum()
    np.testing.assert_allclose(jacobian(lambda v: ac.softmax(v), x), np.diag(s) - np.outer(s, s), atol=1e-15)


def test_jacobian_leaves_the_callers_value_alone():
    x = Value(np.array([1.0, 2.0]))
    J = jacobian(lambda v: v * v, x)
    np.testing.assert_allclose(J, np.diag([2.0, 4.0]))
    assert x.grad is None


def test_hvp_equals_hessian_times_vector():
    f = lambda v: (v[0] ** 2 * v[1]).sum() + (v ** 4).sum()
    x = np.array([1.0, -2.0, 0.5])
    v = np.array([0.3, 1.0, -2.0])
    value, product = hvp(f, x, v)
    assert value == pytest.approx(1.0 * -2.0 + (x**4).sum())
    np.testing.assert_allclose(product, hessian(f, x) @ v, rtol=1e-12)


def test_hvp_checks_the_shape_of_v():
    with pytest.raises(ValueError, match="v has shape"):
        hvp(lambda v: (v**2).sum(), np.ones(3), np.ones(2))


def test_hessian_needs_a_scalar_function():
    with pytest.raises(ValueError, match="one number"):
        hessian(lambda v: v * v, np.ones(2))


@pytest.mark.parametrize("whole_derivative", [jacobian, hessian])
def test_fn_that_is_not_a_function_is_named(whole_derivative):
    with pytest.raises(TypeError, match=rf"{whole_derivative.__name__}: fn must be a function of one Value.*got ndarray"):
        whole_derivative(np.ones(2), np.ones(2))  # arguments swapped


def test_gradient_and_hessian_over_several_parameters():
    x, w = Value(np.array([1.0, 2.0])), Value(3.0)
    # f = w * (x0^2 + x1^3): g = (2 w x0, 3 w x1^2, x0^2 + x1^3)
    g, H = gradient_and_hessian(w * (x[0] ** 2 + x[1] ** 3), [x, w])
    np.testing.assert_allclose(g, [6.0, 36.0, 9.0])
    np.testing.assert_allclose(H, [[6.0, 0.0, 2.0], [0.0, 36.0, 12.0], [2.0, 12.0, 0.0]])


def test_transposed_gradient_can_be_differentiated_again():
    # regression: the transpose rule passed an index array to Value.transpose under create_graph=True
    A = np.array([[1.0, 2.0, 0.0], [0.0, 1.0, 3.0]])
    f = lambda v: (v.reshape(2, 3).T * Value(A.T, requires_grad=False)).sum() ** 2
    a = A.ravel()
    np.testing.assert_allclose(hessian(f, np.ones(6)), 2 * np.outer(a, a), rtol=1e-12)


def test_mlp_hessian_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    X = rng.normal(size=(5, 3))
    y = np.array([0, 1, 2, 1, 0])
    w0 = rng.normal(size=12)

    def ours(w):
        hidden = (Value(X, requires_grad=False) @ w[:9].reshape(3, 3)).tanh()
        logits = hidden.T.T @ w[9:].reshape(3, 1) * Value(np.ones((1, 3)), requires_grad=False)
        return -(ac.log_softmax(logits + hidden, axis=1)[np.arange(5), y]).mean()

    def theirs(w):
        hidden = torch.tanh(torch.tensor(X) @ w[:9].reshape(3, 3))
        logits = hidden.T.T @ w[9:].reshape(3, 1) * torch.ones(1, 3, dtype=torch.float64)
        return -(torch.log_softmax(logits + hidden, dim=1)[torch.arange(5), torch.tensor(y)]).mean()

    expected = torch.autograd.functional.hessian(theirs, torch.tensor(w0)).numpy()
    np.testing.assert_allclose(hessian(ours, w0), expected, atol=1e-12)
    _, product = hvp(ours, w0, np.ones(12))
    np.testing.assert_allclose(product, expected @ np.ones(12), atol=1e-12)
