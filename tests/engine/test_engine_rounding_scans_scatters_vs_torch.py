"""The operations of ops_rounding.py, ops_scan.py and ops_scatter.py against
PyTorch: values and gradients in float64 (to 1e-12) and float32 (to 1e-5),
at the places where a convention decides (rounding halves, the jumps of a
remainder, ties of a running or scattered maximum, zeros of a product,
repeated scatter targets). Skipped cleanly when PyTorch is not installed."""

import warnings

import numpy as np
import pytest

import autograd_core as ac
from autograd_core import Value

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(31)
TOLERANCE = {np.float64: 1e-12, np.float32: 1e-5}
DTYPES = [np.float64, np.float32]


def _compare(ours, theirs, arrays, dtype=np.float64, weights_seed=0, exact=False):
    """ours(*Values) and theirs(*tensors): the same values and the same gradients of a weighted sum."""
    tolerance = 0.0 if exact else TOLERANCE[dtype]
    arrays = [np.asarray(a, dtype=dtype) for a in arrays]
    values = [Value(a) for a in arrays]
    tensors = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, expected = ours(*values), theirs(*tensors)
    assert out.dtype == dtype and out.shape == tuple(expected.shape)
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=tolerance, atol=tolerance)
    w = np.random.default_rng(weights_seed).standard_normal(out.shape).astype(dtype)
    (out * w).sum().backward()
    (expected * torch.tensor(w)).sum().backward()
    for v, t in zip(values, tensors):
        got = np.zeros(v.shape, dtype) if v.grad is None else v.grad
        want = np.zeros(v.shape, dtype) if t.grad is None else t.grad.numpy()
        assert np.asarray(got).dtype == dtype
        np.testing.assert_allclose(got, want, rtol=tolerance, atol=tolerance)


# ---- rounding ----------------------------------------------------------------
HALVES = [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 0.25, 0.35, -0.35, 1.26, 12345.5, -0.0, 0.0]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["floor", "ceil", "trunc"])
def test_floor_ceil_trunc_match_pytorch_at_and_between_whole_numbers(name, dtype):
    x = np.concatenate([HALVES, [-2.0, -1.0, 1.0, 3.0], RNG.uniform(-5, 5, 20)])
    _compare(getattr(ac, name), getattr(torch, name), [x], dtype, exact=True)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("decimals", [0, 1, 2, 3, -1, -2])
def test_round_is_pytorchs_halves_to_even_bit_for_bit(decimals, dtype):
    x = np.concatenate([np.array(HALVES) / 10.0 ** decimals, RNG.standard_normal(50) * 300])
    _compare(lambda v: ac.round(v, decimals), lambda t: torch.round(t, decimals=decimals), [x], dtype, exact=True)
    assert ac.round(Value(np.array([0.5, 1.5, 2.5]))).data.tolist() == [0.0, 2.0, 2.0]


@pytest.mark.parametrize("dtype", DTYPES)
def test_remainders_match_pytorch_with_every_sign_and_at_the_jumps(dtype):
    a = np.array([5.0, -5.0, 5.0, -5.0, 6.0, -6.0, 0.0, 7.5, -7.5, 1e-3])
    b = np.array([3.0, 3.0, -3.0, -3.0, 3.0, 3.0, 2.0, 2.5, 2.5, -0.7])
    _compare(ac.fmod, torch.fmod, [a, b], dtype)
    _compare(ac.remainder, torch.remainder, [a, b], dtype)
    _compare(lambda x, y: x % y, lambda x, y: x % y, [a, b], dtype)
    a, b = RNG.standard_normal((4, 5)) * 10, RNG.uniform(0.3, 3, (5,)) * RNG.choice([-1, 1], 5)
    _compare(ac.fmod, torch.fmod, [a, b], dtype)  # broadcasting: b's gradient summed over the rows
    _compare(ac.remainder, torch.remainder, [a, b], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_remainder_and_floor_division_by_numbers_on_either_side(dtype):
    x = RNG.uniform(0.3, 4, 12) * RNG.choice([-1, 1], 12)
    _compare(lambda v: v % 2, lambda t: t % 2, [x], dtype)
    _compare(lambda v: 2 % v, lambda t: torch.remainder(torch.full_like(t, 2.0), t), [x], dtype)  # (PyTorch's 2 % t has no gradient)
    _compare(lambda v: 2.5 // v, lambda t: torch.div(torch.full_like(t, 2.5), t, rounding_mode="floor"), [x], dtype)
    _compare(lambda v: v // 0.75, lambda t: torch.div(t, 0.75, rounding_mode="floor"), [x], dtype)
    assert (np.ones(3) % Value(np.array([0.75, 2.0, -0.6]))).data.tolist() == pytest.approx([0.25, 1.0, -0.2])
    assert (np.full(2, 7.0) // Value(np.array([2.0, -2.0]))).data.tolist() == [3.0, -4.0]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", ["floor", "trunc"])
def test_rounded_division_matches_pytorch_with_gradient_zero(mode, dtype):
    a, b = RNG.standard_normal((3, 4)) * 5, RNG.uniform(0.3, 2, (3, 1)) * RNG.choice([-1, 1], (3, 1))
    _compare(lambda x, y: ac.div(x, y, rounding_mode=mode), lambda x, y: torch.div(x, y, rounding_mode=mode), [a, b], dtype)
    exact = [[-7.0, 7.0, -6.0, 0.5]], [[2.0, -2.0, 3.0, -1.0]]
    _compare(lambda x, y: ac.div(x, y, rounding_mode=mode), lambda x, y: torch.div(x, y, rounding_mode=mode), exact, dtype)


def test_division_by_zero_gives_pytorchs_inf_and_nan():
    a, b = np.array([1.0, -1.0, 0.0]), np.zeros(3)
    for ours, theirs in ((ac.fmod, torch.fmod), (ac.floor_divide, lambda x, y: torch.div(x, y, rounding_mode="floor")),
                         (ac.trunc_divide, lambda x, y: torch.div(x, y, rounding_mode="trunc")), (ac.remainder, torch.remainder)):
        got, want = ours(Value(a), Value(b)).data, theirs(torch.tensor(a), torch.tensor(b)).numpy()
        np.testing.assert_array_equal(got, want)


# ---- isclose, allclose -----------------------------------------------------------
@pytest.mark.parametrize("equal_nan", [False, True])
def test_isclose_and_allclose_match_pytorch(equal_nan):
    a = np.array([1.0, 1.0, np.nan, np.inf, -np.inf, 0.0, 1e-9, 100.0])
    b = np.array([1.0 + 1e-9, 1.1, np.nan, np.inf, np.inf, 1e-9, 0.0, 100.001])
    for rtol, atol in ((1e-5, 1e-8), (1e-3, 0.0), (0.0, 1e-2)):
        want = torch.isclose(torch.tensor(a), torch.tensor(b), rtol=rtol, atol=atol, equal_nan=equal_nan).numpy()
        np.testing.assert_array_equal(ac.isclose(Value(a), Value(b), rtol, atol, equal_nan), want)
        np.testing.assert_array_equal(Value(a).isclose(b, rtol=rtol, atol=atol, equal_nan=equal_nan), want)
        for k in range(a.size):
            expected = torch.allclose(torch.tensor(a[k:]), torch.tensor(b[k:]), rtol=rtol, atol=atol, equal_nan=equal_nan)
            got = ac.allclose(Value(a[k:]), b[k:], rtol=rtol, atol=atol, equal_nan=equal_nan)
            assert type(got) is bool and got == expected


# ---- running maximum and minimum -------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["cummax", "cummin"])
def test_running_extremes_match_pytorch_with_ties_and_nan(name, dtype):
    ours, theirs = getattr(ac, name), getattr(torch, name)
    tied = np.array([[1.0, 3.0, 3.0, 2.0, 3.0, 0.0, 0.0], [2.0, 2.0, 2.0, 1.0, 5.0, 5.0, -1.0]])
    for x, axis in ((tied, 1), (tied.T.copy(), 0), (RNG.standard_normal((3, 4, 5)), 1), (RNG.standard_normal((3, 4)), -1)):
        _compare(lambda v: ours(v, axis).values, lambda t: theirs(t, dim=axis).values, [x], dtype)
        np.testing.assert_array_equal(ours(Value(x.astype(dtype)), axis).indices,
                                      theirs(torch.tensor(x.astype(dtype)), dim=axis).indices.numpy())
    with_nan = np.array([1.0, np.nan, 3.0, np.nan, 0.5])
    values, indices = ours(Value(with_nan), 0)
    result = theirs(torch.tensor(with_nan), dim=0)
    np.testing.assert_array_equal(values.data, result.values.numpy())
    np.testing.assert_array_equal(indices, result.indices.numpy())


def test_running_extremes_of_a_0d_input_match_pytorch():
    for name in ("cummax", "cummin"):
        values, indices = getattr(ac, name)(Value(2.5), 0)
        result = getattr(torch, name)(torch.tensor(2.5, dtype=torch.float64), dim=0)
        assert values.shape == () and float(values.data) == float(result.values) and indices.shape == ()
        assert int(indices) == int(result.indices)


# ---- logcumsumexp -------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_logcumsumexp_matches_pytorch(axis, dtype):
    x = RNG.standard_normal((3, 4, 2)) * 3
    _compare(lambda v: ac.logcumsumexp(v, axis), lambda t: torch.logcumsumexp(t, dim=axis), [x], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_logcumsumexp_is_finite_far_beyond_exps_range(dtype):
    limit = 1000.0 if dtype == np.float64 else 100.0  # exp overflows past 709 (float64) and 88 (float32)
    x = np.array([[-limit, 0.0, limit, limit, -limit], [limit, -limit, 0.0, 2 * limit, -2 * limit]])
    _compare(lambda v: ac.logcumsumexp(v, 1), lambda t: torch.logcumsumexp(t, dim=1), [x], dtype)
    assert np.all(np.isfinite(ac.logcumsumexp(Value(x.astype(dtype)), 1).data))


def test_logcumsumexp_second_derivative_matches_pytorch_where_the_upstream_gradient_is_zero():
    # L = sum(w * c^2): where c_j = 0 the upstream gradient 2 w c_j is 0, and its derivative is not
    x = np.array([[0.0, -50.0, 1.0, 0.3], [-2.0, 0.5, 0.5, 3.0]])
    x[0, 0] = 0.0  # c_0 = x_0 = 0 in the first row
    w = RNG.standard_normal(x.shape)
    v = Value(x)
    (g,) = ac.grad((w * ac.logcumsumexp(v, 1) ** 2).sum(), [v], create_graph=True)
    (h,) = ac.grad(g.sum(), [v])
    t = torch.tensor(x, requires_grad=True)
    (gt,) = torch.autograd.grad((torch.tensor(w) * torch.logcumsumexp(t, dim=1) ** 2).sum(), [t], create_graph=True)
    np.testing.assert_allclose(g.data, gt.detach().numpy(), rtol=1e-12, atol=1e-12)
    # PyTorch drops the part of the second derivative through the zero upstream gradient (log|0| has no
    # derivative); central differences of the first derivative say what it is
    eps = 1e-6
    numeric = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        shifted = []
        for step in (eps, -eps):
            probe = x.copy()
            probe[index] += step
            pv = Value(probe)
            (gp,) = ac.grad((w * ac.logcumsumexp(pv, 1) ** 2).sum(), [pv])
            shifted.append(gp.sum())
        numeric[index] = (shifted[0] - shifted[1]) / (2 * eps)
    np.testing.assert_allclose(h, numeric, rtol=1e-5, atol=1e-7)


# ---- windows (Tensor.unfold) ---------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, axis, size, step", [
    ((10,), 0, 3, 1), ((10,), 0, 3, 4), ((10,), 0, 10, 1), ((10,), 0, 1, 3), ((10,), 0, 0, 2),
    ((2, 7, 3), 1, 4, 2), ((2, 7, 3), -1, 2, 1), ((5, 4), 0, 2, 5), ((3, 9), 1, 5, 2),
])
def test_windows_match_pytorchs_unfold_with_overlapping_gradients(shape, axis, size, step, dtype):
    _compare(lambda v: ac.windows(v, axis, size, step), lambda t: t.unfold(axis, size, step), [RNG.standard_normal(shape)], dtype)
    _compare(lambda v: v.windows(axis, size, step), lambda t: t.unfold(axis, size, step), [RNG.standard_normal(shape)], dtype)


def test_windows_of_a_0d_input_match_pytorch():
    _compare(lambda v: ac.windows(v, 0, 1, 1), lambda t: t.unfold(0, 1, 1), [np.array(5.0)])


# ---- scatter and scatter_reduce ----------------------------------------------------------
def _distinct_targets(shape, axis, index_shape, seed):
    lines = list(index_shape)
    lines[axis] = shape[axis]
    targets = np.argsort(np.random.default_rng(seed).random(lines), axis=axis)
    return np.take(targets, np.arange(index_shape[axis]), axis=axis)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis", [0, 1])
def test_scatter_matches_pytorch(axis, dtype):
    x = RNG.standard_normal((4, 5))
    index = _distinct_targets(x.shape, axis, (3, 4) if axis == 0 else (4, 3), seed=axis)
    src = RNG.standard_normal((4, 5))  # larger than index: its extra elements get no gradient
    cut = (slice(0, index.shape[0]), slice(0, index.shape[1]))
    _compare(lambda v, s: ac.scatter(v, axis, index, s), lambda t, s: torch.scatter(t, axis, torch.tensor(index), s[cut]),
             [x, src], dtype)
    _compare(lambda v: v.scatter(axis, index, 2.5), lambda t: torch.scatter(t, axis, torch.tensor(index), 2.5), [x], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_scatter_with_reduce_matches_scatter_add_and_the_product_of_pytorch(dtype):
    x, src = RNG.uniform(0.5, 2, (3, 4)), RNG.uniform(0.5, 2, (3, 4))
    index = np.array([[0, 1, 2, 0], [2, 1, 0, 0], [0, 0, 0, 1]])
    with warnings.catch_warnings():  # (PyTorch deprecates scatter's reduce= for scatter_reduce; the values agree)
        warnings.simplefilter("ignore", UserWarning)
        want_add = torch.scatter(torch.tensor(x), 0, torch.tensor(index), torch.tensor(src), reduce="add").numpy()
        want_mul = torch.scatter(torch.tensor(x), 0, torch.tensor(index), torch.tensor(src), reduce="multiply").numpy()
    np.testing.assert_allclose(ac.scatter(Value(x), 0, index, Value(src), reduce="add").data, want_add, rtol=1e-12)
    np.testing.assert_allclose(ac.scatter(Value(x), 0, index, Value(src), reduce="multiply").data, want_mul, rtol=1e-12)
    # PyTorch has no gradient for scatter(reduce=...); its scatter_add and scatter_reduce(prod) do
    _compare(lambda v, s: v.scatter(0, index, s, reduce="add"), lambda t, s: t.scatter_add(0, torch.tensor(index), s),
             [x, src], dtype)
    _compare(lambda v, s: v.scatter(0, index, s, reduce="multiply"),
             lambda t, s: t.scatter_reduce(0, torch.tensor(index), s, "prod"), [x, src], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("include_self", [True, False])
@pytest.mark.parametrize("reduce", ["sum", "prod", "mean", "amax", "amin"])
def test_scatter_reduce_matches_pytorch(reduce, include_self, dtype):
    x, src = RNG.standard_normal((4, 3)), RNG.standard_normal((6, 3))
    index = np.array([[0, 1, 0], [0, 2, 0], [3, 1, 0], [0, 1, 2], [3, 3, 3]])  # repeats; x[1, 0] and x[2, 0] get nothing
    src_cut = (slice(0, 5), slice(None))
    _compare(lambda v, s: ac.scatter_reduce(v, 0, index, s, reduce, include_self=include_self),
             lambda t, s: torch.scatter_reduce(t, 0, torch.tensor(index), s[src_cut], reduce, include_self=include_self),
             [x, src], dtype)
    _compare(lambda v, s: v.scatter_reduce(1, index.T.copy() % 3, s, reduce, include_self=include_self),
             lambda t, s: t.scatter_reduce(1, torch.tensor(index.T.copy() % 3), s[:, :5], reduce, include_self=include_self),
             [x.T.copy(), src.T.copy()], dtype)


@pytest.mark.parametrize("include_self", [True, False])
@pytest.mark.parametrize("reduce", ["amax", "amin"])
def test_ties_of_scattered_maxima_share_the_gradient_evenly_as_pytorch(reduce, include_self):
    x = np.array([[2.0, 1.0, 0.0], [0.0, 5.0, 0.0]])
    src = np.array([[2.0, 1.0, 4.0], [2.0, 1.0, -4.0], [0.0, 3.0, 4.0]])  # ties with each other and with x
    index = np.array([[0, 0, 0], [0, 0, 1], [1, 0, 0]])
    if not include_self:  # x takes no part where src lands: no x equal to a result there (see the next test)
        x = x + 10.0 * np.array([[1.0, 1.0, 1.0], [1.0, 0.0, 1.0]]) * (1 if reduce == "amax" else -1)
    _compare(lambda v, s: ac.scatter_reduce(v, 0, index, s, reduce, include_self=include_self),
             lambda t, s: torch.scatter_reduce(t, 0, torch.tensor(index), s, reduce, include_self=include_self), [x, src])


def test_an_excluded_element_of_x_equal_to_the_result_is_not_one_of_the_ties():
    # PyTorch 2.13 counts x[0] (excluded, but equal to the result 3) among the ties and gives
    # src[0], the one maximum, half its gradient; the maximum moves one for one with src[0]
    x, src = Value(np.array([3.0, 5.0])), Value(np.array([3.0, 1.0]))
    ac.scatter_reduce(x, 0, np.array([0, 0]), src, "amax", include_self=False).sum().backward()
    assert src.grad.tolist() == [1.0, 0.0] and x.grad.tolist() == [0.0, 1.0]
    t, s = torch.tensor([3.0, 5.0], requires_grad=True), torch.tensor([3.0, 1.0], requires_grad=True)
    torch.scatter_reduce(t, 0, torch.tensor([0, 0]), s, "amax", include_self=False).sum().backward()
    assert s.grad.tolist() == [0.5, 0.0]  # (if this fails, PyTorch fixed it: drop this line)
    assert ac.gradcheck(lambda s: ac.scatter_reduce(np.array([3.0, 5.0]), 0, np.array([0, 0]), s, "amax",
                                                    include_self=False).sum(), [np.array([3.0, 1.0])])


@pytest.mark.parametrize("include_self", [True, False])
def test_scatter_reduce_prod_gradients_with_zeros_match_pytorch(include_self):
    x = np.array([[2.0, 0.0, 3.0, 1.5], [0.0, 4.0, 1.0, 2.0]])
    src = np.array([[0.0, 2.0, 0.0, 3.0], [5.0, 0.0, 0.0, 0.5], [2.0, 3.0, 1.5, 0.0]])  # one zero, two zeros, none
    index = np.array([[0, 0, 1, 0], [0, 1, 1, 1], [1, 0, 0, 1]])
    _compare(lambda v, s: ac.scatter_reduce(v, 0, index, s, "prod", include_self=include_self),
             lambda t, s: torch.scatter_reduce(t, 0, torch.tensor(index), s, "prod", include_self=include_self), [x, src])
