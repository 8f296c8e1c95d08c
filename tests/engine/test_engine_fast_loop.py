"""The fast backward loop (engine._backpropagate_fast, what backward() runs)
gives the reference loop's gradients (engine.backpropagate, the one the
lecture and the stepper follow) bit for bit: on every op case and on an MLP
with BatchNorm1d and Dropout."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autograd_core import Value, engine

from engine_op_cases import ALL_CASES

SOME = settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)


def _same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    # equal values, NaN where the other has NaN, and the same sign on zeros and infinities
    assert np.array_equal(a, b, equal_nan=True)
    finite_or_inf = ~np.isnan(a)
    assert np.array_equal(np.signbit(a[finite_or_inf]), np.signbit(b[finite_or_inf]))


def _both_loops(root, seed):
    reference = engine.backpropagate([root], [seed], retain_graph=True)
    fast = engine._backpropagate_fast([root], [seed], retain_graph=True)
    assert set(map(id, reference)) == set(map(id, fast))  # the same nodes reached
    for node, gradient in reference.items():
        _same_bits(gradient, fast[node])
    return len(reference)


@pytest.mark.parametrize("case", ALL_CASES, ids=lambda c: c.id)
@SOME
@given(data=st.data())
def test_both_loops_give_the_same_bits_on_every_op_case(case, data):
    arrays, params = case.draw(data, case.elements)
    values = [Value(a) for a in arrays]
    out = case.build(params, *values)
    weights = np.random.default_rng(0).standard_normal(out.shape).astype(out.dtype)
    root = (out * weights).sum()
    with np.errstate(all="ignore"):
        assert _both_loops(root, root.dtype.type(1)) >= 2
    # and through the operation directly, seeded with the weights (no sum or mul after it)
    with np.errstate(all="ignore"):
        _both_loops(out, weights[()] if weights.ndim == 0 else weights)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_both_loops_give_the_same_bits_on_an_mlp_with_batchnorm_and_dropout(dtype):
    import nn

    rng = np.random.default_rng(3)
    model = nn.Sequential(
        nn.Linear(4, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.3),
        nn.Linear(16, 16), nn.Tanh(), nn.Dropout(0.2), nn.Linear(16, 3),
    )
    if dtype == np.float32:
        model.float()
    model.train()
    x = Value(rng.standard_normal((32, 4)).astype(dtype), requires_grad=False)
    labels = rng.integers(0, 3, 32)
    loss = nn.CrossEntropyLoss()(model(x), labels) + 1e-3 * sum((p * p).sum() for p in model.parameters())
    reached = _both_loops(loss, loss.dtype.type(1))
    assert reached > 20
    # and backward() (the fast loop) fills .grad with those very numbers
    reference = engine.backpropagate([loss], [loss.dtype.type(1)], retain_graph=True)
    loss.backward()
    for p in model.parameters():
        _same_bits(p.grad, reference[p])


def test_backward_with_create_graph_or_anomaly_runs_the_reference_loop(monkeypatch):
    calls = []
    real = engine.backpropagate
    monkeypatch.setattr(engine, "backpropagate", lambda *a, **k: calls.append(1) or real(*a, **k))
    x = Value(2.0)
    (x * x).backward()
    assert calls == []  # the fast loop
    (x * x).backward(create_graph=True)
    with engine.detect_anomaly():
        (x * x).backward()
    assert calls == [1, 1]


def test_both_loops_give_the_same_bits_through_a_conv_layout_into_batch_norm():
    # a convolution's output is laid out channels-last in memory; the reference loop once multiplied
    # the upstream by add's local gradient 1 (a new C-ordered array), so batch norm's weight gradient,
    # a sum over a product in the other layout, added in another order than backward()'s loop
    import nn

    rng = np.random.default_rng(5)
    conv, bn = nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2)
    for _ in range(5):
        loss = bn(conv(Value(rng.random((2, 1, 5, 5)), requires_grad=False))).sum()
        reference = engine.backpropagate([loss], [loss.dtype.type(1)], retain_graph=True)
        fast = engine._backpropagate_fast([loss], [loss.dtype.type(1)], retain_graph=True)
        for node, gradient in reference.items():
            _same_bits(gradient, fast[node])
