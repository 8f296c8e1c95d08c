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
