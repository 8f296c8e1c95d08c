"""Worked examples for the operations: the conventions at kinks (written out
by hand), stability for huge logits, indexing, comparisons, and the matrix
product against PyTorch."""

import numpy as np
import pytest

import autograd_core as ac
from autograd_core import Value, grad, gradcheck


# ---- conventions at kinks, as documented -----------------------------------
def test_relu_gradient_at_zero_is_zero():
    x = Value(np.array([-1.0, 0.0, 2.0]))
    (g,) = grad(x.relu().sum(), x)
    np.testing.assert_array_equal(g, [0.0, 0.0, 1.0])
    s = Value(0.0)  # the scalar fast path too
    assert grad(s.relu(), s) == (0.0,)


def test_abs_gradient_at_zero_is_zero():
    x = Value(np.array([-3.0, 0.0, 0.5]))
    (g,) = grad(x.abs().sum(), x)
    np.testing.assert_array_equal(g, [-1.0, 0.0, 1.0])


def test_reduction_max_and_min_split_ties_evenly():
    x = Value(np.array([1.0, 3.0, 3.0, 3.0, 0.0]))
    (g,) = grad(x.max(), x)
    np.testing.assert_allclose(g, [0, 1 / 3, 1 / 3, 1 / 3, 0])
    y = Value(np.array([[2.0, 2.0], [5.0, 1.0]]))
    (g,) = grad(y.min(axis=1).sum(), y)
    np.testing.assert_array_equal(g, [[0.5, 0.5], [0.0, 1.0]])


def test_maximum_and_minimum_split_ties_evenly():
    a, b = Value(np.array([1.0, 2.0, 3.0])), Value(np.array([1.0, 5.0, 0.0]))
    ga, gb = grad(ac.maximum(a, b).sum(), [a, b])
    np.testing.assert_array_equal(ga, [0.5, 0.0, 1.0])
    np.testing.assert_array_equal(gb, [0.5, 1.0, 0.0])
    ga, gb = grad(ac.minimum(a, b).sum(), [a, b])
    np.testing.assert_array_equal(ga, [0.5, 1.0, 0.0])
    np.testing.assert_array_equal(gb, [0.5, 0.0, 1.0])


def test_clip_bounds_are_inclusive():
    x = Value(np.array([-2.0, -1.0, 0.0, 1.0, 2.0]))
    (g,) = grad(x.clip(-1.0, 1.0).sum(), x)
    np.testing.assert_array_equal(g, [0.0, 1.0, 1.0, 1.0, 0.0])
    (g,) = grad(x.clip(min=0.0).sum(), x)  # one bound only
    np.testing.assert_array_equal(g, [0.0, 0.0, 1.0, 1.0, 1.0])


def test_kink_conventions_agree_with_pytorch():
    torch = pytest.importorskip("torch")
    data = np.array([-1.0, 0.0, 0.0, 1.0, 1.0])
    for fn in [
        lambda v: v.relu(),
        lambda v: v.abs(),
        lambda v: v.clip(0.0, 1.0),
        lambda v: v.max().reshape(1) if isinstance(v, Value) else v.amax().reshape(1),
    ]:
        x = Value(data)
        fn(x).sum().backward()
        xt = torch.tensor(data, requires_grad=True)
        fn(xt).sum().backward()
        np.testing.assert_array_equal(x.grad, xt.grad.numpy())
    a, b = Value(data), Value(data[::-1].copy())
    ac.maximum(a, b).sum().backward()
    at, bt = torch.tensor(data, requires_grad=True), torch.tensor(data[::-1].copy(), requires_grad=True)
    torch.maximum(at, bt).sum().backward()
    np.testing.assert_array_equal(a.grad, at.grad.numpy())
    np.testing.assert_array_equal(b.grad, bt.grad.numpy())


def test_pow_with_zero_exponent_has_zero_gradient_even_at_zero():
    """Regression: x**0 at x = 0 gave 0 * 0**-1 = NaN; it is the constant 1."""
    x = Value(np.array([0.0, 2.0]))
    (g,) = grad((x**0).sum(), x)
    np.testing.assert_array_equal(g, [0.0, 0.0])
    a, b = Value(np.array([0.0, 0.0])), Value(np.array([0.0, 2.0]))
    ga, gb = grad((a**b).sum(), [a, b])
    np.testing.assert_array_equal(ga, [0.0, 0.0])
    np.testing.assert_array_equal(gb, [0.0, 0.0])


def test_pow_gradients_at_zero_match_pytorch():
    torch = pytest.importorskip("torch")
    base = np.array([0.0, 0.0, 0.0, 2.0])
    exponent = np.array([0.0, 1.0, 2.0, 0.0])
    a, b = Value(base), Value(exponent)
    (a**b).sum().backward()
    at, bt = torch.tensor(base, requires_grad=True), torch.tensor(exponent, requires_grad=True)
    (at**bt).sum().backward()
    np.testing.assert_array_equal(a.grad, at.grad.numpy())
    np.testing.assert_array_equal(b.grad, bt.grad.numpy())


# ---- stability --------------------------------------------------------------
LOGITS = np.array([[1000.0, -1000.0, 999.0], [-1000.0, -1001.0, -1000.0]])


def test_softmax_log_softmax_logsumexp_are_finite_for_logits_of_magnitude_1e3():
    x = Value(LOGITS)
    s = ac.softmax(x, axis=1)
    ls = ac.log_softmax(x, axis=1)
    lse = ac.logsumexp(x, axis=1)
    # worked by hand: row 0 is softmax([1, -2000, 0]) shifted by 999
    e = np.exp([1.0, 0.0])
    np.testing.assert_allclose(s.data[0], [e[0] / e.sum(), 0.0, e[1] / e.sum()], rtol=1e-15)
    np.testing.assert_allclose(lse.data, [1000 + np.log(1 + np.exp(-1.0)), -1000 + np.log(2 + np.exp(-1.0))], rtol=1e-15)
    # log_softmax: the logits shifted by their row maximum, minus log of the shifted sum
    expected_ls = [np.array([0.0, -2000.0, -1.0]) - np.log(1 + np.exp(-1.0)), np.array([0.0, -1.0, 0.0]) - np.log(2 + np.exp(-1.0))]
    np.testing.assert_allclose(ls.data, expected_ls, rtol=1e-15)
    for out in (s, ls, lse):
        assert np.all(np.isfinite(out.data))
        weights = np.random.default_rng(0).standard_normal(out.shape)
        (g,) = grad((out * weights).sum(), x)
        assert np.all(np.isfinite(g))


def test_stable_ops_gradcheck_at_large_logits():
    for fn in (lambda v: ac.softmax(v, axis=1), lambda v: ac.log_softmax(v, axis=0), lambda v: ac.logsumexp(v, axis=1)):
        assert gradcheck(fn, [LOGITS + np.array([[0.3, 0.0, -0.2]])])


def test_stable_ops_match_pytorch_at_large_logits():
    torch = pytest.importorskip("torch")
    w = np.random.default_rng(1).standard_normal(LOGITS.shape)
    pairs = [
        (lambda v: ac.softmax(v, axis=1), lambda t: torch.softmax(t, dim=1)),
        (lambda v: ac.log_softmax(v, axis=1), lambda t: torch.log_softmax(t, dim=1)),
        (lambda v: ac.logsumexp(v, axis=1, keepdims=True), lambda t: torch.logsumexp(t, dim=1, keepdim=True)),
    ]
    for ours, theirs in pairs:
        x = Value(LOGITS)
        out = ours(x)
        (out * w[:, : out.shape[1]]).sum().backward()
        xt = torch.tensor(LOGITS, requires_grad=True)
        outt = theirs(xt)
        (outt * torch.tensor(w[:, : outt.shape[1]])).sum().backward()
        np.testing.assert_allclose(out.data, outt.detach().numpy(), rtol=1e-14)
        np.testing.assert_allclose(x.grad, xt.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_fused_softmax_cross_entropy_is_stable_and_matches_pytorch():
    torch = pytest.importorskip("torch")
    if not hasattr(ac.ops, "softmax_cross_entropy"):
        pytest.skip("no fused cross-entropy op in this version")
    targets = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    x = Value(LOGITS)
    loss = ac.ops.softmax_cross_entropy(x, targets)
    loss.sum().backward()
    xt = torch.tensor(LOGITS, requires_grad=True)
    losst = torch.nn.functional.cross_entropy(xt, torch.tensor(targets), reduction="none")
    losst.sum().backward()
    np.testing.assert_allclose(loss.data, losst.detach().numpy(), rtol=1e-14)
    np.testing.assert_allclose(x.grad, xt.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_sigmoid_and_softplus_are_finite_far_out():
    x = Value(np.array([-800.0, 800.0]))
    np.testing.assert_array_equal(x.sigmoid().data, [0.0, 1.0])
    np.testing.assert_array_equal(ac.softplus(x).data, [0.0, 800.0])


# ---- indexing ----------------------------------------------------------------
def test_indexing_values_and_gradients_by_hand():
    x = Value(np.arange(12.0).reshape(3, 4))
    cases = [
        (1, [[0] * 4, [1] * 4, [0] * 4]),  # an int: a row
        ((2, -1), [[0] * 4, [0] * 4, [0, 0, 0, 1]]),
        ((slice(None), 0), [[1, 0, 0, 0]] * 3),  # v[:, 0]
        ((slice(0, 3, 2), slice(1, 3)), [[0, 1, 1, 0], [0] * 4, [0, 1, 1, 0]]),
        (np.array([0, 2, 0]), [[2] * 4, [0] * 4, [1] * 4]),  # rows, repeated
        ([0, 0, 0], [[3] * 4, [0] * 4, [0] * 4]),  # a list is an integer array
        ((np.array([1, 1]), np.array([3, 3])), [[0] * 4, [0, 0, 0, 2], [0] * 4]),
        (np.array([True, False, True]), [[1] * 4, [0] * 4, [1] * 4]),
    ]
    for index, expected_grad in cases:
        out = x[index]
        np.testing.assert_array_equal(out.data, x.data[index if not isinstance(index, list) else np.array(index)])
        (g,) = grad(out.sum(), x)
        np.testing.assert_array_equal(g, expected_grad, err_msg=repr(index))


def test_boolean_mask_from_a_comparison():
    x = Value(np.array([[-1.0, 2.0], [3.0, -4.0]]))
    positive = x[x > 0]  # the comparison is a plain mask, the result a Value
    np.testing.assert_array_equal(positive.data, [2.0, 3.0])
    (g,) = grad((positive * positive).sum(), x)
    np.testing.assert_array_equal(g, [[0.0, 4.0], [6.0, 0.0]])


def test_repeated_indices_accumulate_like_pytorch():
    torch = pytest.importorskip("torch")
    data = np.arange(5.0)
    index = np.array([4, 0, 4, 4, 1])
    w = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    x = Value(data)
    (x[index] * w).sum().backward()
    xt = torch.tensor(data, requires_grad=True)
    (xt[torch.tensor(index)] * torch.tensor(w)).sum().backward()
    np.testing.assert_array_equal(x.grad, xt.grad.numpy())
    np.testing.assert_array_equal(x.grad, [2.0, 5.0, 0.0, 0.0, 8.0])


def test_iterating_a_vector_yields_its_elements_and_a_scalar_refuses():
    x = Value(np.array([1.0, 2.0, 3.0]))
    total = sum(v * v for v in x)
    (g,) = grad(total, x)
    np.testing.assert_array_equal(g, [2.0, 4.0, 6.0])
    with pytest.raises(TypeError, match="scalar Value"):
        list(Value(2.0))  # regression: used to give [] silently


# ---- comparisons ---------------------------------------------------------------
def test_comparisons_return_plain_boolean_arrays():
    a = Value(np.array([1.0, 2.0, 3.0]))
    b = Value(np.array([3.0, 2.0, 1.0]))
    for result, expected in [
        (a < b, [True, False, False]),
        (a <= b, [True, True, False]),
        (a > 2, [False, False, True]),
        (a >= np.array([1.0, 3.0, 3.0]), [True, False, True]),
        (a == b, [False, True, False]),
        (a != b, [True, False, True]),
        (2.0 < a, [False, False, True]),  # reflected
    ]:
        assert type(result) is np.ndarray and result.dtype == bool
        np.testing.assert_array_equal(result, expected)
    scalar = Value(1.0) > 0
    assert not isinstance(scalar, Value) and scalar.dtype == bool and bool(scalar)


def test_truth_value_follows_numpy():
    """Regression: bool(Value) fell back to len(), so a scalar raised a
    confusing TypeError and a vector of zeros was True."""
    assert bool(Value(2.0)) and not bool(Value(0.0))
    with pytest.raises(ValueError, match="ambiguous"):
        bool(Value(np.zeros(3)))


# ---- matrix product -----------------------------------------------------------
MATMUL_SHAPES = [
    ((3,), (3,)),
    ((3,), (3, 2)),
    ((2, 3), (3,)),
    ((2, 3), (3, 4)),
    ((5, 2, 3), (5, 3, 4)),
    ((5, 2, 3), (3, 4)),
    ((3,), (5, 3, 4)),
    ((5, 2, 3), (3,)),
    ((2, 1, 2, 3), (4, 3, 2)),
]


@pytest.mark.parametrize("shape_a,shape_b", MATMUL_SHAPES, ids=str)
def test_matmul_values_and_gradients_match_pytorch(shape_a, shape_b):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    a_data, b_data = rng.standard_normal(shape_a), rng.standard_normal(shape_b)
    a, b = Value(a_data), Value(b_data)
    out = a @ b
    upstream = rng.standard_normal(out.shape)
    out.backward(upstream) if out.ndim else out.backward()
    at, bt = torch.tensor(a_data, requires_grad=True), torch.tensor(b_data, requires_grad=True)
    outt = at @ bt
    outt.backward(torch.tensor(upstream)) if outt.ndim else outt.backward()
    np.testing.assert_allclose(out.data, outt.detach().numpy(), rtol=1e-12, atol=1e-14)
    assert a.grad.shape == shape_a and b.grad.shape == shape_b
    np.testing.assert_allclose(a.grad, at.grad.numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(b.grad, bt.grad.numpy(), rtol=1e-12, atol=1e-14)


def test_matmul_by_hand():
    A = Value(np.array([[1.0, 2.0], [3.0, 4.0]]))
    x = Value(np.array([1.0, -1.0]))
    y = A @ x
    np.testing.assert_array_equal(y.data, [-1.0, -1.0])
    y.sum().backward()
    np.testing.assert_array_equal(A.grad, [[1.0, -1.0], [1.0, -1.0]])  # outer(ones, x)
    np.testing.assert_array_equal(x.grad, [4.0, 6.0])  # A.T @ ones


def test_matmul_reflected_with_a_numpy_array():
    W = Value(np.eye(2) * 2)
    out = np.array([[1.0, 2.0]]) @ W
    assert isinstance(out, Value)
    np.testing.assert_array_equal(out.data, [[2.0, 4.0]])


# ---- the other tensor ops, worked examples ---------------------------------
def test_reductions_over_axes_with_keepdims_match_numpy():
    x_data = np.arange(24.0).reshape(2, 3, 4) ** 1.5
    x = Value(x_data)
    for name in ("sum", "mean", "max", "min", "var"):
        for axis in (None, 0, -1, (0, 2)):
            for keepdims in (False, True):
                got = getattr(x, name)(axis=axis, keepdims=keepdims)
                expected = getattr(np, name)(x_data, axis=axis, keepdims=keepdims)
                assert got.shape == np.shape(expected)
                np.testing.assert_allclose(got.data, expected, rtol=1e-14)


def test_var_with_ddof_matches_pytorch_unbiased():
    torch = pytest.importorskip("torch")
    data = np.random.default_rng(2).standard_normal((3, 4))
    x = Value(data)
    x.var(axis=1, ddof=1).sum().backward()
    xt = torch.tensor(data, requires_grad=True)
    xt.var(dim=1, unbiased=True).sum().backward()
    np.testing.assert_allclose(x.grad, xt.grad.numpy(), rtol=1e-12)


def test_concatenate_and_stack_route_each_slice_back():
    a, b = Value(np.ones((2, 2))), Value(np.ones((2, 1)))
    out = ac.concatenate([a, b], axis=1)
    (out * np.array([1.0, 2.0, 3.0])).sum().backward()
    np.testing.assert_array_equal(a.grad, [[1.0, 2.0], [1.0, 2.0]])
    np.testing.assert_array_equal(b.grad, [[3.0], [3.0]])
    p, q = Value(np.array([1.0, 2.0])), Value(np.array([3.0, 4.0]))
    s = ac.stack([p, q], axis=1)
    assert s.shape == (2, 2)
    (s * np.array([[1.0, 10.0], [2.0, 20.0]])).sum().backward()
    np.testing.assert_array_equal(p.grad, [1.0, 2.0])
    np.testing.assert_array_equal(q.grad, [10.0, 20.0])


def test_reshape_transpose_T():
    x = Value(np.arange(6.0).reshape(2, 3))
    assert x.T.shape == (3, 2) and x.reshape(3, 2).shape == (3, 2) and x.reshape(-1).shape == (6,)
    (x.T * np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])).sum().backward()
    np.testing.assert_array_equal(x.grad, [[1.0, 3.0, 5.0], [2.0, 4.0, 6.0]])


def test_where_routes_the_gradient_by_the_condition():
    a, b = Value(np.array([1.0, 2.0, 3.0])), Value(10.0)
    out = ac.where(np.array([True, False, True]), a, b)
    np.testing.assert_array_equal(out.data, [1.0, 10.0, 3.0])
    out.sum().backward()
    np.testing.assert_array_equal(a.grad, [1.0, 0.0, 1.0])
    assert b.grad == 1.0  # a scalar broadcast into one position
