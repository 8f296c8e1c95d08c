"""grad(..., create_graph=True): the backward pass recorded as a graph, so
gradients can be differentiated again. Checked for every operation against
central differences of first derivatives, and against second derivatives
worked out by hand."""

import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import autograd_core as ac
from autograd_core import Value, grad

from engine_op_cases import ALL_CASES, all_registered_ops

# a fixed, fast sample in the suite; ENGINE_HYPOTHESIS_EXAMPLES=500 explores randomly for longer
DEEP = int(os.environ.get("ENGINE_HYPOTHESIS_EXAMPLES", "0"))
SECOND_ORDER = settings(max_examples=DEEP or 8, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=not DEEP)


def _first_derivative_along(objective, arrays, directions):
    """v . grad L(x), first order (the thing central differences are taken of)."""
    values = [Value(a) for a in arrays]
    grads = grad(objective(*values), values, allow_unused=True)
    return sum(float(np.sum(np.asarray(g) * v)) for g, v in zip(grads, directions) if g is not None)


@pytest.mark.parametrize("case", [c for c in ALL_CASES if "lossy" not in c.tags], ids=lambda c: c.id)
@SECOND_ORDER
@given(data=st.data())
def test_hessian_vector_product_matches_central_differences_of_the_gradient(case, data):
    arrays, params = case.draw(data, case.second_order_elements)
    if case.safe is not None:
        assume(case.safe(params, arrays))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    out_shape = case.build(params, *[Value(a) for a in arrays]).shape
    w = rng.standard_normal(out_shape)

    # squaring makes the upstream gradient depend on x, so the rule is
    # differentiated both through its inputs and through its upstream g
    def objective(*xs):
        y = case.build(params, *xs)
        return (w * y * y).sum()

    values = [Value(a) for a in arrays]
    first = grad(objective(*values), values, create_graph=True, allow_unused=True)
    directions = [rng.standard_normal(a.shape) for a in arrays]
    along = [(g * v).sum() for g, v in zip(first, directions) if isinstance(g, Value) and g.requires_grad]
    assume(along)  # some rules (a linear op of a constant...) leave nothing to differentiate
    analytic = grad(ac.stack(along).sum(), values, allow_unused=True)

    eps = 1e-5
    for k, a in enumerate(arrays):
        numeric = np.zeros(a.shape)
        for j in range(a.size):
            shifted = []
            for step in (eps, -eps):
                probe = [x.copy() for x in arrays]
                probe[k].reshape(-1)[j] += step
                shifted.append(_first_derivative_along(objective, probe, directions))
            numeric.reshape(-1)[j] = (shifted[0] - shifted[1]) / (2 * eps)
        got = np.zeros(a.shape) if analytic[k] is None else np.asarray(analytic[k])
        np.testing.assert_allclose(got, numeric, rtol=1e-4, atol=1e-6, err_msg=f"{case.id}, input {k}")


def test_every_registered_operation_is_differentiated_twice():
    covered = {id(case.op_object) for case in ALL_CASES if "lossy" not in case.tags}
    missing = [op.name for op in all_registered_ops() if id(op) not in covered]
    assert not missing


# ---- analytic second derivatives, elementwise: d2/dx2 f(x) ------------------
def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


SECOND_DERIVATIVES = {
    # name: (f on Values, f'' on arrays, domain)
    "exp": (lambda v: v.exp(), np.exp, (-2, 2)),
    "log": (lambda v: v.log(), lambda x: -1 / x**2, (0.3, 3)),
    "log1p": (lambda v: ac.log1p(v), lambda x: -1 / (1 + x) ** 2, (-0.5, 3)),
    "sqrt": (lambda v: v.sqrt(), lambda x: -0.25 * x**-1.5, (0.3, 3)),
    "reciprocal": (lambda v: 1 / v, lambda x: 2 / x**3, (0.3, 3)),
    "pow 3": (lambda v: v**3, lambda x: 6 * x, (-2, 2)),
    "pow 2.5": (lambda v: v**2.5, lambda x: 2.5 * 1.5 * x**0.5, (0.3, 3)),
    "pow -2": (lambda v: v**-2, lambda x: 6 * x**-4, (0.3, 3)),
    "rpow 2**x": (lambda v: 2.0**v, lambda x: np.log(2) ** 2 * 2.0**x, (-2, 2)),
    "tanh": (lambda v: v.tanh(), lambda x: -2 * np.tanh(x) * (1 - np.tanh(x) ** 2), (-2, 2)),
    "sigmoid": (lambda v: v.sigmoid(), lambda x: _sigmoid(x) * (1 - _sigmoid(x)) * (1 - 2 * _sigmoid(x)), (-3, 3)),
    "softplus": (lambda v: ac.softplus(v), lambda x: _sigmoid(x) * (1 - _sigmoid(x)), (-3, 3)),
    "erf": (lambda v: ac.erf(v), lambda x: -4 * x / math.sqrt(math.pi) * np.exp(-(x**2)), (-2, 2)),
    "neg": (lambda v: -v, np.zeros_like, (-2, 2)),
    "mul x*x": (lambda v: v * v, lambda x: np.full_like(x, 2.0), (-2, 2)),
    "div 1/x via div": (lambda v: Value(np.ones(v.shape), requires_grad=False) / v, lambda x: 2 / x**3, (0.3, 3)),
    "relu (away from 0)": (lambda v: v.relu(), np.zeros_like, (0.1, 2)),
    "abs (away from 0)": (lambda v: v.abs(), np.zeros_like, (-2, -0.1)),
    "clip (inside)": (lambda v: v.clip(-3, 3) * v, lambda x: np.full_like(x, 2.0), (-2, 2)),
}


@pytest.mark.parametrize("name", list(SECOND_DERIVATIVES))
def test_elementwise_second_derivative_matches_the_formula(name):
    fn, second, (lo, hi) = SECOND_DERIVATIVES[name]
    x_data = np.linspace(lo, hi, 7)
    x = Value(x_data)
    (first,) = grad(fn(x).sum(), x, create_graph=True)
    (d2,) = grad(first.sum(), x, allow_unused=True)
    d2 = np.zeros_like(x_data) if d2 is None else d2
    np.testing.assert_allclose(d2, second(x_data), rtol=1e-10, atol=1e-12)


def test_binary_second_derivatives_by_hand():
    a, b = Value(1.5), Value(-0.5)
    # mul: d2(ab)/da db = 1
    (ga,) = grad(a * b, a, create_graph=True)
    assert grad(ga, b) == (1.0,)
    # div: d2(a/b)/db2 = 2a/b^3, d2/da db = -1/b^2
    ga, gb = grad(a / b, [a, b], create_graph=True)
    assert grad(gb, b)[0] == pytest.approx(2 * 1.5 / (-0.5) ** 3)
    assert grad(ga, b)[0] == pytest.approx(-1 / 0.25)
    # pow: a^b with both Values
    p, q = Value(1.7), Value(0.6)
    gp, gq = grad(p**q, [p, q], create_graph=True)
    d2p, d2pq = grad(gp, [p, q])
    (d2q,) = grad(gq, q)
    assert d2p == pytest.approx(0.6 * -0.4 * 1.7**-1.4)
    assert d2pq == pytest.approx(1.7**-0.4 * (1 + 0.6 * math.log(1.7)))
    assert d2q == pytest.approx(1.7**0.6 * math.log(1.7) ** 2)
    # regression: the exponent-0 mask must not erase the mixed derivative
    # d2(a^b)/da db = a^(b-1) (1 + b log a), which is 1/a at b = 0
    p, q = Value(2.0), Value(0.0)
    (gp,) = grad(p**q, p, create_graph=True)
    assert gp.data == 0.0 and grad(gp, q) == (0.5,)
    # maximum picks a branch: its second derivative is the branch's
    m = Value(2.0)
    (gm,) = grad(ac.maximum(m * m, 1.0), m, create_graph=True)
    assert grad(gm, m) == (2.0,)


# ---- analytic second derivatives, structural ----------------------------------
def _softmax(x):
    e = np.exp(x - x.max())
    return e / e.sum()


def test_logsumexp_hessian_is_diag_s_minus_s_s_transpose():
    x_data = np.array([0.2, -1.0, 0.7, 1.5])
    x = Value(x_data)
    (g,) = grad(ac.logsumexp(x), x, create_graph=True)
    s = _softmax(x_data)
    hessian = np.stack([grad(g[i], x, retain_graph=True)[0] for i in range(4)])
    np.testing.assert_allclose(hessian, np.diag(s) - np.outer(s, s), rtol=1e-12, atol=1e-15)


def test_log_softmax_hessian_of_one_component():
    # log_softmax(x)_k = x_k - logsumexp(x): its Hessian is -(diag(s) - s s^T)
    x_data = np.array([1.0, -0.5, 0.3])
    x = Value(x_data)
    (g,) = grad(ac.log_softmax(x)[1], x, create_graph=True)
    s = _softmax(x_data)
    hessian = np.stack([grad(g[i], x, retain_graph=True)[0] for i in range(3)])
    np.testing.assert_allclose(hessian, -(np.diag(s) - np.outer(s, s)), rtol=1e-12, atol=1e-15)


def test_softmax_second_derivative_tensor():
    # d2 s_i / dx_j dx_k = s_i[(d_ij - s_j)(d_ik - s_k) - s_j(d_jk - s_k)]
    x_data = np.array([0.4, -0.3, 1.1])
    x = Value(x_data)
    s = _softmax(x_data)
    eye = np.eye(3)
    for i in range(3):
        (g,) = grad(ac.softmax(x)[i], x, create_graph=True)
        hessian = np.stack([grad(g[j], x, retain_graph=True)[0] for j in range(3)])
        expected = s[i] * (np.outer(eye[i] - s, eye[i] - s) - (np.diag(s) - np.outer(s, s)))
        np.testing.assert_allclose(hessian, expected, rtol=1e-12, atol=1e-15)


def test_var_hessian():
    # var(x) = mean((x - mean x)^2) * n/(n - ddof): Hessian 2/(n - ddof) (I - 11^T/n)
    n = 4
    x = Value(np.array([1.0, 4.0, -2.0, 0.5]))
    for ddof in (0, 1):
        (g,) = grad(x.var(ddof=ddof), x, create_graph=True)
        hessian = np.stack([grad(g[i], x, retain_graph=True)[0] for i in range(n)])
        np.testing.assert_allclose(hessian, 2 / (n - ddof) * (np.eye(n) - np.ones((n, n)) / n), rtol=1e-12)


def test_matmul_mixed_second_derivative():
    # L = sum(W * (A @ B)): grad_A = W B^T, and d(grad_A . V)/dB = V^T W
    rng = np.random.default_rng(4)
    A, B = Value(rng.standard_normal((2, 3))), Value(rng.standard_normal((3, 4)))
    W, V = rng.standard_normal((2, 4)), rng.standard_normal((2, 3))
    (gA,) = grad((W * (A @ B)).sum(), A, create_graph=True)
    np.testing.assert_allclose(gA.data, W @ B.data.T, rtol=1e-13)
    (d2,) = grad((gA * V).sum(), B)
    np.testing.assert_allclose(d2, V.T @ W, rtol=1e-13)


def test_linear_ops_have_zero_second_derivative_but_pass_curvature_through():
    # f(x) = sum(reshape/transpose/index/sum of x)^2 : Hessian 2 * J^T J
    x = Value(np.arange(6.0).reshape(2, 3))
    y = x.T.reshape(-1)[np.array([0, 0, 5])].sum()
    (g,) = grad(y * y, x, create_graph=True)
    # d y / dx: x.T.reshape(-1)[0] = x[0, 0] twice, [5] = x[1, 2] once
    j = np.zeros((2, 3))
    j[0, 0], j[1, 2] = 2.0, 1.0
    hessian = np.stack([grad(g.reshape(-1)[k], x, retain_graph=True)[0].reshape(-1) for k in range(6)])
    np.testing.assert_allclose(hessian, 2 * np.outer(j.reshape(-1), j.reshape(-1)))


def test_third_derivative():
    x = Value(1.5)
    (d1,) = grad(x**4, x, create_graph=True)
    (d2,) = grad(d1, x, create_graph=True)
    (d3,) = grad(d2, x)
    assert (d1.data, d2.data, d3) == (4 * 1.5**3, 12 * 1.5**2, 24 * 1.5)


def test_backward_with_create_graph_leaves_differentiable_grads():
    x = Value(np.array([1.0, 2.0]))
    (x**3).sum().backward(create_graph=True)
    assert isinstance(x.grad, Value)
    np.testing.assert_array_equal(x.grad.data, [3.0, 12.0])
    (d2,) = grad(x.grad.sum(), x)
    np.testing.assert_array_equal(d2, [6.0, 12.0])


def test_first_order_results_do_not_build_a_graph():
    x = Value(np.array([1.0, 2.0]))
    (g,) = grad((x**3).sum(), x)
    assert type(g) is np.ndarray  # plain data: nothing recorded


def test_transpose_rule_under_create_graph():
    """Regression: the transpose rule passed an index array that transpose()
    refused, so any second derivative through .T failed."""
    x = Value(np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]))
    (g,) = grad((x.T * x.T).sum(), x, create_graph=True)
    (d2,) = grad(g.sum(), x)
    np.testing.assert_array_equal(d2, np.full((2, 3), 2.0))


def test_gradient_is_differentiable_with_respect_to_grad_outputs():
    # g = J^T v for y = x**2: g = 2 x v, so dg/dv = 2x and dg/dx = 2v (the double-backward trick)
    x = Value(np.array([1.0, 2.0, 3.0]))
    v = Value(np.array([1.0, -1.0, 2.0]))
    (g,) = grad(x**2, x, grad_outputs=v, create_graph=True)
    np.testing.assert_array_equal(g.data, [2.0, -4.0, 12.0])
    dv, dx = grad(g.sum(), [v, x])
    np.testing.assert_array_equal(dv, [2.0, 4.0, 6.0])
    np.testing.assert_array_equal(dx, [2.0, -2.0, 4.0])


def test_second_derivatives_stay_float32():
    x = Value(np.array([1.0, 2.0], dtype=np.float32))
    (g,) = grad((x**3).sum(), x, create_graph=True)
    (h,) = grad(g.sum(), x)
    assert g.dtype == np.float32 and h.dtype == np.float32
    np.testing.assert_array_equal(h, [6.0, 12.0])
