"""Numerically safe at the edges, checked against PyTorch (float64) when it is
installed: the subgradients at kinks and ties, functions of huge inputs
(|x| = 1e4), and float32 graphs keeping float32 gradients."""

import numpy as np
import pytest

import autograd_core as ac
from autograd_core import Value

torch = pytest.importorskip("torch")


def _both(fn_ours, fn_torch, *arrays, seed=None):
    """Value and input gradients of the same function in both engines (float64,
    or the arrays' dtype), with the same upstream gradient `seed`."""
    ours = [Value(a) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    y_ours, y_theirs = fn_ours(*ours), fn_torch(*theirs)
    seed = np.ones(y_ours.shape, dtype=y_ours.dtype) if seed is None else seed
    grads_ours = ac.grad(y_ours, ours, grad_outputs=seed, allow_unused=True)
    grads_theirs = torch.autograd.grad(y_theirs, theirs, grad_outputs=torch.tensor(seed), allow_unused=True)
    return (np.asarray(y_ours.data), y_theirs.detach().numpy(),
            [np.asarray(g) for g in grads_ours], [g.numpy() for g in grads_theirs])


# ---------------------------------------------------------------------------
# kinks and ties: the engine's documented subgradient is PyTorch's
# ---------------------------------------------------------------------------
KINKS = [
    ("abs at 0", lambda x: x.abs(), torch.abs, [np.array([0.0, -0.0, 2.0, -3.0])], [0.0, 0.0, 1.0, -1.0]),
    ("relu at 0", lambda x: x.relu(), torch.relu, [np.array([0.0, -1.0, 1.0])], [0.0, 0.0, 1.0]),
    ("clip at its bounds", lambda x: x.clip(-1.0, 1.0), lambda x: x.clamp(-1.0, 1.0),
     [np.array([-1.0, 1.0, 0.0, 2.0])], [1.0, 1.0, 1.0, 0.0]),
    ("max with ties", lambda x: x.max(), torch.amax, [np.array([3.0, 1.0, 3.0, 3.0])], [1 / 3, 0.0, 1 / 3, 1 / 3]),
    ("min with ties along an axis", lambda x: x.min(axis=1), lambda x: torch.amin(x, 1),
     [np.array([[1.0, 1.0], [0.0, 2.0]])], [[0.5, 0.5], [1.0, 0.0]]),
    ("L1 norm at 0", lambda x: x.abs().sum(), lambda x: x.abs().sum(), [np.zeros(3)], [0.0, 0.0, 0.0]),
    ("inf-norm with ties", lambda x: x.abs().max(), lambda x: torch.amax(x.abs()),
     [np.array([-2.0, 2.0, 1.0])], [-0.5, 0.5, 0.0]),
]


@pytest.mark.parametrize("name, ours, theirs, arrays, documented", KINKS, ids=[k[0] for k in KINKS])
def test_subgradients_at_kinks_are_finite_documented_and_match_pytorch(name, ours, theirs, arrays, documented):
    y, y_torch, grads, grads_torch = _both(ours, theirs, *arrays)
    np.testing.assert_array_equal(y, y_torch)
    assert np.isfinite(grads[0]).all()
    np.testing.assert_allclose(grads[0], documented, rtol=1e-15)
    np.testing.assert_allclose(grads[0], grads_torch[0], rtol=1e-15)


def test_maximum_and_minimum_split_a_tie_evenly_as_pytorch():
    a, b = np.array([1.0, 2.0, 3.0]), np.array([1.0, 0.0, 5.0])
    for ours, theirs in [(ac.maximum, torch.maximum), (ac.minimum, torch.minimum)]:
        y, y_torch, grads, grads_torch = _both(ours, theirs, a, b)
        np.testing.assert_array_equal(y, y_torch)
        for g, g_torch in zip(grads, grads_torch):
            np.testing.assert_array_equal(g, g_torch)
        assert grads[0][0] == grads[1][0] == 0.5


def test_euclidean_norm_composition_matches_pytorch_at_and_away_from_zero():
    norm_ours = lambda x: ((x**2).sum()).sqrt()  # noqa: E731
    norm_torch = lambda x: ((x**2).sum()).sqrt()  # noqa: E731
    # away from 0: x / |x|
    y, _, grads, grads_torch = _both(norm_ours, norm_torch, np.array([3.0, -4.0]))
    assert float(y) == 5.0
    np.testing.assert_allclose(grads[0], [0.6, -0.8], rtol=1e-15)
    np.testing.assert_allclose(grads[0], grads_torch[0], rtol=1e-15)
    # at 0, sqrt'(0) = inf meets d(x^2)/dx = 0: both engines give NaN (0 * inf); PyTorch's is not finite either
    _, _, grads, grads_torch = _both(norm_ours, norm_torch, np.zeros(2))
    assert np.isnan(grads[0]).all() and np.isnan(grads_torch[0]).all()
    # the usual remedy, sqrt(sum(x^2) + eps), is finite at 0: gradient 0
    smooth = lambda x: ((x**2).sum() + 1e-12).sqrt()  # noqa: E731
    _, _, grads, grads_torch = _both(smooth, smooth, np.zeros(2))
    np.testing.assert_array_equal(grads[0], [0.0, 0.0])
    np.testing.assert_array_equal(grads[0], grads_torch[0])


def test_sqrt_and_abs_at_zero_match_pytorch():
    y, _, grads, grads_torch = _both(lambda x: x.sqrt(), torch.sqrt, np.array([0.0, 4.0]))
    np.testing.assert_array_equal(grads[0], grads_torch[0])  # [inf, 0.25], as PyTorch documents
    assert grads[0][0] == np.inf and grads[0][1] == 0.25


# ---------------------------------------------------------------------------
# huge inputs: |x| = 1e4 (and 1e300 where it makes sense)
# ---------------------------------------------------------------------------
HUGE = np.array([-1e4, -50.0, -1.0, 0.0, 1.0, 50.0, 1e4])

SMOOTH = [
    ("sigmoid", lambda x: x.sigmoid(), torch.sigmoid),
    ("tanh", lambda x: x.tanh(), torch.tanh),
    ("softplus", lambda x: ac.softplus(x), torch.nn.functional.softplus),
    ("log_softmax", lambda x: ac.log_softmax(x, axis=-1), lambda x: torch.log_softmax(x, -1)),
    ("softmax", lambda x: ac.softmax(x, axis=-1), lambda x: torch.softmax(x, -1)),
    ("logsumexp", lambda x: ac.logsumexp(x, axis=-1), lambda x: torch.logsumexp(x, -1)),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name, ours, theirs", SMOOTH, ids=[s[0] for s in SMOOTH])
def test_functions_of_huge_inputs_stay_finite_and_match_pytorch(name, ours, theirs, dtype):
    seed = np.random.default_rng(0).standard_normal(ours(Value(HUGE)).shape).astype(dtype)
    y, y_torch, grads, grads_torch = _both(ours, theirs, HUGE.astype(dtype), seed=seed)
    assert np.isfinite(y).all() and np.isfinite(grads[0]).all(), f"{name}: {y}, {grads[0]}"
    assert y.dtype == dtype and grads[0].dtype == dtype
    rtol = 1e-12 if dtype == np.float64 else 2e-6
    np.testing.assert_allclose(y, y_torch, rtol=rtol, atol=1e-30)
    np.testing.assert_allclose(grads[0], grads_torch[0], rtol=rtol, atol=1e-6 if dtype == np.float32 else 1e-15)


def test_sigmoid_and_softplus_limits_are_exact_for_huge_inputs():
    x = Value(np.array([-1e300, -1e4, 1e4, 1e300]))
    np.testing.assert_array_equal(x.sigmoid().data, [0.0, 0.0, 1.0, 1.0])
    np.testing.assert_array_equal(ac.softplus(x).data, [0.0, 0.0, 1e4, 1e300])
    ac.softplus(x).sum().backward()  # d softplus = sigmoid: 0 and 1 at the ends
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 1.0, 1.0])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_nn_losses_with_logits_of_size_1e4_are_finite_and_match_pytorch(dtype):
    nn = pytest.importorskip("nn")
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 3.0], [0.0, 0.0, -1e4]], dtype=dtype)
    classes = np.array([1, 1, 2])
    # cross-entropy from class indices: -log softmax(x)[class]
    x = Value(logits)
    loss = nn.CrossEntropyLoss()(x, classes)
    loss.backward()
    x_t = torch.tensor(logits, requires_grad=True)
    loss_t = torch.nn.functional.cross_entropy(x_t, torch.tensor(classes))
    loss_t.backward()
    rtol = 1e-12 if dtype == np.float64 else 2e-6
    assert np.isfinite(loss.data) and np.isfinite(x.grad).all()
    assert loss.dtype == dtype and x.grad.dtype == dtype
    np.testing.assert_allclose(loss.data, loss_t.item(), rtol=rtol)
    np.testing.assert_allclose(x.grad, x_t.grad.numpy(), rtol=rtol, atol=1e-7)
    # BCE with logits: log(1 + exp(-x)) never overflows
    targets = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.5], [1.0, 1.0, 0.0]], dtype=dtype)
    x = Value(logits)
    loss = nn.BCEWithLogitsLoss()(x, Value(targets, requires_grad=False))
    loss.backward()
    x_t = torch.tensor(logits, requires_grad=True)
    loss_t = torch.nn.functional.binary_cross_entropy_with_logits(x_t, torch.tensor(targets))
    loss_t.backward()
    assert np.isfinite(loss.data) and np.isfinite(x.grad).all()
    assert loss.dtype == dtype and x.grad.dtype == dtype
    np.testing.assert_allclose(loss.data, loss_t.item(), rtol=rtol)
    np.testing.assert_allclose(x.grad, x_t.grad.numpy(), rtol=rtol, atol=1e-7)


# ---------------------------------------------------------------------------
# float32 stays float32
# ---------------------------------------------------------------------------
def test_a_float32_network_keeps_float32_data_and_gradients():
    nn = pytest.importorskip("nn")
    rng = np.random.default_rng(0)
    X = Value(rng.standard_normal((8, 4)).astype(np.float32), requires_grad=False)
    model = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3))
    for p in model.parameters():
        p.data = p.data.astype(np.float32)
    logits = model(X) * 0.5 + 1.0  # Python numbers take the Value's dtype
    hidden = (logits.relu().sqrt() + logits.abs().max() - ac.logsumexp(logits, axis=1, keepdims=True)).mean()
    loss = nn.CrossEntropyLoss()(logits, np.array([0, 1, 2, 0, 1, 2, 0, 1])) + hidden
    assert loss.dtype == np.float32
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad.dtype == np.float32, f"{name}.grad is {p.grad.dtype}"
