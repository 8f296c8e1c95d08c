"""The two engine pieces nn added: the fused softmax_cross_entropy op and the vectorised erf."""

import math

import numpy as np
import pytest

import autograd_core as ac
from autograd_core import Value, gradcheck, grad
from autograd_core.ops import OPS


def test_erf_matches_math_erf_over_a_wide_range():
    x = np.concatenate([
        np.linspace(-8, 8, 40001),
        np.logspace(-300, 1.5, 4000), -np.logspace(-300, 1.5, 4000),
        [0.46875, 0.46875 + 1e-15, 4.0, 4.0 + 1e-14, 5.9, 6.0, 26.0, 1e300, -1e300],
    ])
    expected = np.array([math.erf(v) for v in x])
    got = ac.erf(Value(x)).data
    relative = np.abs(got - expected) / np.maximum(np.abs(expected), np.finfo(float).tiny)
    assert relative.max() < 1e-15


def test_erf_special_values_dtypes_and_shapes():
    out = ac.erf(Value(np.array([0.0, -0.0, np.inf, -np.inf, np.nan]))).data
    assert out[0] == 0 and math.copysign(1, out[1]) == -1
    assert out[2] == 1 and out[3] == -1 and np.isnan(out[4])
    scalar = ac.erf(Value(0.5))
    assert scalar.shape == () and float(scalar.data) == pytest.approx(math.erf(0.5), rel=1e-16)
    single = ac.erf(Value(np.array([0.5, 2.0], dtype=np.float32)))
    assert single.dtype == np.float32
    np.testing.assert_allclose(single.data, [math.erf(0.5), math.erf(2.0)], rtol=1e-7)
    assert ac.erf(Value(np.zeros((2, 0, 3)))).shape == (2, 0, 3)


def test_erf_gradient():
    assert gradcheck(ac.erf, [Value(np.linspace(-3, 3, 13))])


def test_softmax_cross_entropy_is_a_registered_structural_op():
    assert OPS["softmax_cross_entropy"].name == "softmax_cross_entropy"
    assert not OPS["softmax_cross_entropy"].elementwise  # a Jacobian: shown by its formula
    out = ac.softmax_cross_entropy(Value(np.zeros((2, 3))), np.eye(3)[:2])
    assert out.op == "softmax_cross_entropy" and out.shape == (2,)


def test_softmax_cross_entropy_values_and_gradient_p_minus_y():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4, 5))
    y = np.eye(5)[[0, 4, 2, 2]]
    x = Value(logits)
    loss = ac.softmax_cross_entropy(x, y)
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(loss.data, -np.log(p[np.arange(4), [0, 4, 2, 2]]), rtol=1e-14)
    loss.sum().backward()
    np.testing.assert_allclose(x.grad, p - y, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_softmax_cross_entropy_gradcheck_both_inputs(axis):
    rng = np.random.default_rng(1)
    x = Value(rng.normal(size=(3, 4)))
    y = Value(rng.uniform(size=(3, 4)))  # unnormalised weights: the general p * sum(y) - y
    assert gradcheck(lambda a, b: ac.softmax_cross_entropy(a, b, axis=axis), [x, y])


def test_softmax_cross_entropy_second_derivatives_match_the_composed_form():
    rng = np.random.default_rng(2)
    data = rng.normal(size=(2, 3))
    y = rng.dirichlet(np.ones(3), size=2)
    direction = rng.normal(size=(2, 3))
    results = []
    for loss_fn in (lambda x: ac.softmax_cross_entropy(x, y),
                    lambda x: -(ac.log_softmax(x, axis=-1) * y).sum(axis=-1)):
        x = Value(data.copy())
        (g,) = grad(loss_fn(x).sum(), x, create_graph=True)
        (hv,) = grad((g * direction).sum(), x)
        results.append(np.asarray(hv))
    np.testing.assert_allclose(results[0], results[1], rtol=1e-12, atol=1e-14)


def test_softmax_cross_entropy_stable_for_huge_logits():
    x = Value(np.array([[1e5, -1e5, 0.0]]))
    loss = ac.softmax_cross_entropy(x, [[0.0, 1.0, 0.0]])
    assert float(loss.data[0]) == pytest.approx(2e5)
    loss.sum().backward()
    np.testing.assert_allclose(x.grad, [[1.0, -1.0, 0.0]])


def test_softmax_cross_entropy_shape_error():
    with pytest.raises(ValueError, match=r"softmax_cross_entropy: logits have shape \(2, 3\) but targets \(2,\)"):
        ac.softmax_cross_entropy(Value(np.zeros((2, 3))), np.zeros(2))


def test_softmax_cross_entropy_matches_pytorch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    logits, probs = rng.normal(size=(5, 4)) * 10, rng.dirichlet(np.ones(4), size=5)
    x = Value(logits)
    ours = ac.softmax_cross_entropy(x, probs)
    tx = torch.tensor(logits, requires_grad=True)
    theirs = torch.nn.functional.cross_entropy(tx, torch.tensor(probs), reduction="none")
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-13)
    ours.sum().backward()
    theirs.sum().backward()
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-12, atol=1e-15)
