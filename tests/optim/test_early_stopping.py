"""EarlyStopping: when to stop, and the best parameters kept and restored."""

import numpy as np
import pytest

import optim
from autograd_core import Value


def test_stops_after_patience_epochs_without_improvement():
    stopper = optim.EarlyStopping(patience=3)
    losses = [1.0, 0.8, 0.7, 0.71, 0.75, 0.7, 0.9]
    decisions = [stopper.step(loss) for loss in losses]
    # 0.7 again at epoch 5 is not an improvement: bad epochs are 3, 4, 5
    assert decisions == [False, False, False, False, False, True, True]
    assert stopper.best == 0.7 and stopper.best_epoch == 2


def test_min_delta_ignores_tiny_improvements():
    stopper = optim.EarlyStopping(patience=2, min_delta=0.05)
    assert [stopper.step(x) for x in [1.0, 0.97, 0.96]] == [False, False, True]
    assert stopper.best == 1.0


def test_max_mode_watches_an_accuracy():
    stopper = optim.EarlyStopping(patience=1, mode="max")
    assert [stopper.step(a) for a in [0.5, 0.7, 0.69]] == [False, False, True]
    assert stopper.best == 0.7


def test_patience_zero_stops_at_the_first_non_improvement():
    stopper = optim.EarlyStopping(patience=0)
    assert [stopper.step(x) for x in [3.0, 2.0, 2.5]] == [False, False, True]


def test_keeps_and_restores_the_best_parameters_during_training():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.normal(size=20)
    X_val = rng.normal(size=(10, 3))
    y_val = X_val @ np.array([1.0, -2.0, 0.5])
    w, b = Value(np.zeros(3)), Value(0.0)
    opt = optim.SGD([w, b], lr=0.05)
    stopper = optim.EarlyStopping(patience=3, params=[w, b])
    val_losses, snapshots = [], []
    for epoch in range(200):
        opt.zero_grad()
        loss = ((Value(X, requires_grad=False) @ w + b - Value(y, requires_grad=False)) ** 2).mean()
        loss.backward()
        opt.step()
        if epoch == 40:
            w.data = w.data + 5.0  # a bad jump: validation gets worse from here
        val = float(np.mean((X_val @ w.data + b.data - y_val) ** 2))
        val_losses.append(val)
        snapshots.append((w.data.copy(), float(b.data)))
        if stopper.step(val):
            break
    best = int(np.argmin(val_losses))
    assert stopper.best_epoch == best and stopper.best == val_losses[best]
    assert epoch == best + 3 and best < 40
    stopper.restore_best()
    np.testing.assert_array_equal(w.data, snapshots[best][0])
    assert float(b.data) == snapshots[best][1]
    assert isinstance(b.data, np.floating)  # a 0-d parameter stays a scalar


def test_restored_parameters_are_copies():
    w = Value(np.array([1.0, 2.0]))
    stopper = optim.EarlyStopping(patience=1, params=[w])
    stopper.step(1.0)
    w.data += 10  # in place, like an optimizer step
    stopper.restore_best()
    np.testing.assert_array_equal(w.data, [1.0, 2.0])
    w.data += 10
    stopper.restore_best()
    np.testing.assert_array_equal(w.data, [1.0, 2.0])


def test_errors_are_clear():
    with pytest.raises(ValueError, match="mode"):
        optim.EarlyStopping(mode="lowest")
    with pytest.raises(ValueError, match="patience"):
        optim.EarlyStopping(patience=-1)
    with pytest.raises(ValueError, match="min_delta"):
        optim.EarlyStopping(min_delta=-0.1)
    with pytest.raises(TypeError, match="not a Value"):
        optim.EarlyStopping(params=[np.zeros(2)])
    with pytest.raises(RuntimeError, match="no params"):
        optim.EarlyStopping().restore_best()
    with pytest.raises(RuntimeError, match="call step"):
        optim.EarlyStopping(params=[Value(1.0)]).restore_best()
    with pytest.raises(ValueError, match="NaN"):
        optim.EarlyStopping().step(float("nan"))
    with pytest.raises(TypeError, match="EarlyStopping.step: metric must be the epoch's number .* got NoneType"):
        optim.EarlyStopping().step(None)
