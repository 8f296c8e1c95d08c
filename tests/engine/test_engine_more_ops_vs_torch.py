"""The operations of ops_math.py and ops_select.py against PyTorch (float64):
forward values and gradients, including PyTorch's conventions at zeros, kinks
and ties. Skipped cleanly when PyTorch is not installed."""

import numpy as np
import pytest

import autograd_core as ac
from autograd_core import Value

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(21)


def _compare(ours, theirs, arrays, rtol=1e-10, atol=1e-12, weights_seed=0):
    """ours(*Values) and theirs(*tensors): the same values, and the same gradients of a weighted sum."""
    values = [Value(a) for a in arrays]
    tensors = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    out, expected = ours(*values), theirs(*tensors)
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=rtol, atol=atol)
    w = np.random.default_rng(weights_seed).standard_normal(out.shape)
    (out * w).sum().backward()
    (expected * torch.tensor(w)).sum().backward()
    for v, t in zip(values, tensors):
        got = np.zeros(v.shape) if v.grad is None else v.grad
        want = np.zeros(v.shape) if t.grad is None else t.grad.numpy()
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


UNARY = {
    # name: (ours, torch, domain)
    "sin": (ac.sin, torch.sin, (-3, 3)),
    "cos": (ac.cos, torch.cos, (-3, 3)),
    "tan": (ac.tan, torch.tan, (-1.2, 1.2)),
    "arcsin": (ac.arcsin, torch.asin, (-0.95, 0.95)),
    "arccos": (ac.arccos, torch.acos, (-0.95, 0.95)),
    "arctan": (ac.arctan, torch.atan, (-3, 3)),
    "sinh": (ac.sinh, torch.sinh, (-3, 3)),
    "cosh": (ac.cosh, torch.cosh, (-3, 3)),
    "arcsinh": (ac.arcsinh, torch.asinh, (-3, 3)),
    "arccosh": (ac.arccosh, torch.acosh, (1.05, 4)),
    "arctanh": (ac.arctanh, torch.atanh, (-0.95, 0.95)),
    "log2": (ac.log2, torch.log2, (0.1, 5)),
    "log10": (ac.log10, torch.log10, (0.1, 5)),
    "exp2": (ac.exp2, torch.exp2, (-3, 3)),
    "rsqrt": (ac.rsqrt, torch.rsqrt, (0.1, 5)),
    "sign": (ac.sign, torch.sign, (-3, 3)),
    "relu6": (ac.relu6, torch.nn.functional.relu6, (-2, 8)),
    "hardtanh": (ac.hardtanh, torch.nn.functional.hardtanh, (-3, 3)),
    "hardsigmoid": (ac.hardsigmoid, torch.nn.functional.hardsigmoid, (-5, 5)),
    "hardswish": (ac.hardswish, torch.nn.functional.hardswish, (-5, 5)),
    "mish": (ac.mish, torch.nn.functional.mish, (-5, 5)),
    "celu": (ac.celu, torch.nn.functional.celu, (-3, 3)),
    "softsign": (ac.softsign, torch.nn.functional.softsign, (-3, 3)),
    "logsigmoid": (ac.logsigmoid, torch.nn.functional.logsigmoid, (-30, 30)),
}


@pytest.mark.parametrize("name", list(UNARY))
def test_elementwise_function_matches_pytorch(name):
    ours, theirs, (lo, hi) = UNARY[name]
    x = RNG.uniform(lo, hi, size=(3, 5))
    _compare(ours, theirs, [x], rtol=LOOSER.get(name, 1e-10))


# PyTorch's float64 kernels of these take 1/6 and 1/3 as float32 constants (a relative 3e-8 off)
LOOSER = {"hardsigmoid": 1e-7, "hardswish": 1e-7}


KINKS = {
    # the exact points where a piecewise op's gradient is a convention: PyTorch's must be ours
    "relu6": (ac.relu6, torch.nn.functional.relu6, [0.0, 6.0, -1.0, 3.0, 7.0]),
    "hardtanh": (ac.hardtanh, torch.nn.functional.hardtanh, [-1.0, 1.0, 0.0, -2.0, 2.0]),
    "hardsigmoid": (ac.hardsigmoid, torch.nn.functional.hardsigmoid, [-3.0, 3.0, 0.0, -4.0, 4.0]),
    "hardswish": (ac.hardswish, torch.nn.functional.hardswish, [-3.0, 3.0, 0.0, -4.0, 4.0]),
    "celu": (ac.celu, torch.nn.functional.celu, [0.0, -1.0, 1.0]),
    "sign": (ac.sign, torch.sign, [0.0, -1.0, 1.0]),
}


@pytest.mark.parametrize("name", list(KINKS))
def test_gradient_at_the_kinks_is_pytorchs(name):
    ours, theirs, points = KINKS[name]
    _compare(ours, theirs, [np.array(points)], rtol=LOOSER.get(name, 1e-10))


def test_celu_and_hardtanh_parameters_match_pytorch():
    x = RNG.uniform(-3, 3, size=(4, 4))
    _compare(lambda v: ac.celu(v, alpha=0.5), lambda t: torch.nn.functional.celu(t, alpha=0.5), [x])
    _compare(lambda v: ac.hardtanh(v, -0.5, 2.0), lambda t: torch.nn.functional.hardtanh(t, -0.5, 2.0), [x])


def test_logaddexp_and_lerp_match_pytorch_with_broadcasting():
    a, b = RNG.standard_normal((3, 1)), RNG.standard_normal((4,))
    _compare(ac.logaddexp, torch.logaddexp, [a, b])
    w = RNG.uniform(0, 1, size=(3, 4))
    _compare(ac.lerp, torch.lerp, [a, np.broadcast_to(b, (3, 4)).copy(), w])
    _compare(lambda s, e: ac.lerp(s, e, 0.3), lambda s, e: torch.lerp(s, e, 0.3), [a, b * np.ones((3, 1))])


# ---- statistics and selection ----------------------------------------------
@pytest.mark.parametrize("axis, ddof", [(None, 0), (None, 1), (1, 1), ((0, 2), 0), (-1, 0)])
def test_std_matches_pytorch(axis, ddof):
    x = RNG.standard_normal((3, 4, 2))
    dims = None if axis is None else axis
    _compare(lambda v: ac.std(v, axis=axis, ddof=ddof), lambda t: torch.std(t, dim=dims, correction=ddof), [x])


@pytest.mark.parametrize("zeros", [0, 1, 2])
@pytest.mark.parametrize("axis", [None, 0, 1])
def test_prod_matches_pytorch_with_zeros(zeros, axis):
    x = RNG.uniform(0.5, 1.5, size=(4, 5)) * RNG.choice([-1, 1], size=(4, 5))
    x[0, :zeros] = 0.0  # a row with `zeros` zeros
    x[:zeros, 0] = 0.0  # and a column
    if axis is None:
        _compare(lambda v: ac.prod(v), lambda t: torch.prod(t), [x])
    else:
        _compare(lambda v: ac.prod(v, axis=axis), lambda t: torch.prod(t, dim=axis), [x])


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_cumsum_matches_pytorch(axis):
    _compare(lambda v: ac.cumsum(v, axis), lambda t: torch.cumsum(t, dim=axis), [RNG.standard_normal((3, 4))])



@pytest.mark.parametrize("name", ["cumsum", "cumprod"])
def test_cumulative_ops_of_a_0d_input_match_pytorch(name):
    for axis in (0, -1):
        _compare(lambda v: getattr(ac, name)(v, axis), lambda t: getattr(torch, name)(t, dim=axis), [np.array(2.5)])
    for axis in (1, -2):
        with pytest.raises(IndexError):
            getattr(torch, name)(torch.tensor(2.5), dim=axis)
        with pytest.raises(ValueError, match="out of range"):
            getattr(ac, name)(Value(2.5), axis)

@pytest.mark.parametrize("zeros", [[], [2], [1, 3], [0]])
def test_cumprod_matches_pytorch_with_zeros(zeros):
    x = RNG.uniform(0.5, 1.5, size=(3, 6))
    x[1, zeros] = 0.0
    _compare(lambda v: ac.cumprod(v, 1), lambda t: torch.cumprod(t, dim=1), [x])
    _compare(lambda v: ac.cumprod(v, 0), lambda t: torch.cumprod(t, dim=0), [x.T.copy()])


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_sort_matches_pytorch(axis, descending):
    x = RNG.standard_normal((4, 5))
    _compare(lambda v: ac.sort(v, axis=axis, descending=descending),
             lambda t: torch.sort(t, dim=axis, descending=descending).values, [x])
    np.testing.assert_array_equal(ac.argsort(Value(x), axis=axis, descending=descending),
                                  torch.sort(torch.tensor(x), dim=axis, descending=descending).indices.numpy())


@pytest.mark.parametrize("largest", [True, False])
@pytest.mark.parametrize("k", [1, 3])
def test_topk_matches_pytorch(k, largest):
    x = RNG.standard_normal((4, 6))
    _compare(lambda v: ac.topk(v, k, axis=1, largest=largest)[0],
             lambda t: torch.topk(t, k, dim=1, largest=largest).values, [x])
    _, indices = ac.topk(Value(x), k, axis=0, largest=largest)
    np.testing.assert_array_equal(indices, torch.topk(torch.tensor(x), k, dim=0, largest=largest).indices.numpy())


def test_argmin_argmax_match_pytorch():
    x = RNG.standard_normal((4, 6))
    for ours, theirs in ((ac.argmin, torch.argmin), (ac.argmax, torch.argmax)):
        assert int(ours(Value(x))) == int(theirs(torch.tensor(x)))
        np.testing.assert_array_equal(ours(Value(x), axis=1), theirs(torch.tensor(x), dim=1).numpy())
        np.testing.assert_array_equal(ours(Value(x), axis=0, keepdims=True), theirs(torch.tensor(x), dim=0, keepdim=True).numpy())


# ---- attention blocks -------------------------------------------------------
@pytest.mark.parametrize("spec, shapes", [
    ("ij,jk->ik", [(2, 3), (3, 4)]),
    ("bqd,bkd->bqk", [(2, 3, 4), (2, 5, 4)]),
    ("bhqk,bhkd->bhqd", [(2, 2, 3, 4), (2, 2, 4, 5)]),
    ("i,i->", [(4,), (4,)]),
    ("ij->j", [(3, 4)]),
    ("ij,k->ijk", [(2, 3), (4,)]),
    ("...ij,...jk->...ik", [(2, 3, 4), (4, 2)]),
    ("ij,jk", [(2, 3), (3, 2)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)]),
    ("bqd,bkd->bqk", [(4, 32, 40), (4, 48, 40)]),  # large enough for NumPy's optimized (BLAS) path
])
def test_einsum_matches_pytorch(spec, shapes):
    arrays = [RNG.standard_normal(s) for s in shapes]
    _compare(lambda *v: ac.einsum(spec, *v), lambda *t: torch.einsum(spec, *t), arrays)


@pytest.mark.parametrize("k", [-1, 0, 2])
def test_tril_triu_match_pytorch(k):
    x = RNG.standard_normal((2, 3, 4))
    _compare(lambda v: ac.tril(v, k), lambda t: torch.tril(t, k), [x])
    _compare(lambda v: ac.triu(v, k), lambda t: torch.triu(t, k), [x])


# ---- indexing ----------------------------------------------------------------
@pytest.mark.parametrize("axis", [0, 1])
def test_gather_matches_pytorch_including_repeats_and_a_smaller_index(axis):
    x = RNG.standard_normal((4, 5))
    index = RNG.integers(0, x.shape[axis], size=(3, 4))  # smaller than x in the other dimension, repeats likely
    _compare(lambda v: ac.gather(v, axis, index), lambda t: torch.gather(t, axis, torch.tensor(index)), [x])


@pytest.mark.parametrize("axis", [0, 1])
def test_scatter_add_matches_pytorch(axis):
    x = RNG.standard_normal((4, 5))
    index = RNG.integers(0, x.shape[axis], size=(3, 4))  # repeats likely: they accumulate
    src = RNG.standard_normal((3, 4))  # (PyTorch cannot differentiate a src larger than index; the op cases gradcheck it)
    _compare(lambda v, s: ac.scatter_add(v, axis, index, s),
             lambda t, s: torch.scatter_add(t, axis, torch.tensor(index), s), [x, src])


@pytest.mark.parametrize("shift, axis", [(1, None), (-2, 0), (3, 1), ((1, -1), (0, 1))])
def test_roll_matches_pytorch(shift, axis):
    x = RNG.standard_normal((3, 4))
    _compare(lambda v: ac.roll(v, shift, axis), lambda t: torch.roll(t, shift, axis), [x])


@pytest.mark.parametrize("repeats, axis", [(2, None), (3, 0), (2, 1), ([1, 0, 3], 0)])
def test_repeat_matches_pytorch_repeat_interleave(repeats, axis):
    x = RNG.standard_normal((3, 2))
    r = torch.tensor(repeats) if isinstance(repeats, list) else repeats
    _compare(lambda v: ac.repeat(v, repeats, axis), lambda t: torch.repeat_interleave(t, r, dim=axis), [x])


@pytest.mark.parametrize("reps", [(2,), (2, 3), (2, 1, 2)])
def test_tile_matches_pytorch(reps):
    x = RNG.standard_normal((3, 2))
    _compare(lambda v: ac.tile(v, reps), lambda t: torch.tile(t, reps), [x])


@pytest.mark.parametrize("shape, k", [((4,), 0), ((3,), 1), ((3,), -2), ((3, 3), 0), ((3, 5), 1), ((4, 2), -1)])
def test_diag_matches_pytorch(shape, k):
    _compare(lambda v: ac.diag(v, k), lambda t: torch.diag(t, k), [RNG.standard_normal(shape)])


def test_predicates_match_pytorch():
    x = np.array([[0.0, np.nan, np.inf], [-np.inf, 1.0, 0.0]])
    t = torch.tensor(x)
    for name in ("isnan", "isinf", "isfinite"):
        np.testing.assert_array_equal(getattr(ac, name)(Value(x)), getattr(torch, name)(t).numpy())
    np.testing.assert_array_equal(ac.any(Value(x), axis=1), torch.any(t, dim=1).numpy())
    np.testing.assert_array_equal(ac.all(Value(x), axis=0), torch.all(t, dim=0).numpy())
    assert bool(ac.all(Value(x))) == bool(torch.all(t)) and bool(ac.any(Value(x))) == bool(torch.any(t))
