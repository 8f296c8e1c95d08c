"""Modes are per thread: no_grad / detect_anomaly / name_scope in one thread
do not change what another records; two threads training two models at once
get exactly the results of training them one after the other."""

import sys
import threading

import numpy as np
import pytest

from autograd_core import AnomalyError, Value, detect_anomaly, is_grad_enabled, name_scope, no_grad


def _run_in_threads(*targets):
    """Start the targets together; re-raise the first exception of any."""
    errors = []

    def guarded(target):
        try:
            target()
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(t,)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    if errors:
        raise errors[0]


def test_no_grad_in_one_thread_does_not_switch_off_recording_in_another():
    inside_no_grad = threading.Event()
    other_has_recorded = threading.Event()
    seen = {}

    def evaluator():
        w = Value(np.array([1.0, 2.0]))
        with no_grad():
            inside_no_grad.set()
            assert other_has_recorded.wait(10)
            y = w * 3  # the other thread recorded meanwhile: still not recorded here
            seen["evaluator"] = (is_grad_enabled(), y.requires_grad, y.op)

    def trainer():
        assert inside_no_grad.wait(10)
        w = Value(np.array([1.0, 2.0]))
        y = (w * 3).sum()  # the other thread sits inside no_grad() right now
        seen["trainer"] = (is_grad_enabled(), y.requires_grad, y.op)
        y.backward()
        seen["trainer_grad"] = w.grad.tolist()
        other_has_recorded.set()

    _run_in_threads(evaluator, trainer)
    assert seen["evaluator"] == (False, False, "")
    assert seen["trainer"] == (True, True, "sum")
    assert seen["trainer_grad"] == [3.0, 3.0]
    assert is_grad_enabled()  # and the main thread was never touched


def test_detect_anomaly_and_name_scope_are_per_thread():
    entered = threading.Event()
    done = threading.Event()
    seen = {}

    def debugging():
        with detect_anomaly(), name_scope("debug"):
            entered.set()
            assert done.wait(10)
            with pytest.raises(AnomalyError, match="log"):
                Value(-1.0).log()
            seen["scope"] = (Value(1.0) * 2).scope

    def plain():
        assert entered.wait(10)
        with np.errstate(invalid="ignore"):
            y = Value(-1.0).log()  # NaN as in NumPy: anomaly mode is off in this thread
        seen["plain"] = (bool(np.isnan(y.data)), y.scope)
        done.set()

    _run_in_threads(debugging, plain)
    assert seen["plain"] == (True, None)
    assert seen["scope"] == "debug"


def _train_mlp(seed, steps=150):
    """A raw-Value MLP 3-8-1 with tanh, trained by SGD; returns the losses and weights."""
    rng = np.random.default_rng(seed)
    X = Value(rng.standard_normal((32, 3)), requires_grad=False)
    y = Value(np.sin(X.data.sum(axis=1, keepdims=True)), requires_grad=False)
    W1 = Value(rng.standard_normal((3, 8)) * 0.5)
    b1 = Value(np.zeros(8))
    W2 = Value(rng.standard_normal((8, 1)) * 0.5)
    params = [W1, b1, W2]
    losses = []
    for step in range(steps):
        for p in params:
            p.zero_grad()
        prediction = (X @ W1 + b1).tanh() @ W2
        loss = ((prediction - y) ** 2).mean()
        loss.backward()
        for p in params:
            p.data -= 0.05 * p.grad
        if step % 10 == 0:
            with no_grad():  # evaluation switches recording off in this thread only
                losses.append(((X @ W1 + b1).tanh() @ W2 - y).abs().max().item())
        losses.append(loss.item())
    return losses, [p.data.copy() for p in params]


def test_two_threads_training_two_models_match_training_them_one_after_the_other():
    sequential = {seed: _train_mlp(seed) for seed in (1, 2)}
    concurrent = {}
    previous_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads very often, to interleave the two graphs
    try:
        _run_in_threads(*(lambda s=seed: concurrent.__setitem__(s, _train_mlp(s)) for seed in (1, 2)))
    finally:
        sys.setswitchinterval(previous_interval)
    for seed in (1, 2):
        losses_seq, weights_seq = sequential[seed]
        losses_conc, weights_conc = concurrent[seed]
        assert losses_conc == losses_seq
        for a, b in zip(weights_conc, weights_seq):
            np.testing.assert_array_equal(a, b)
    assert sequential[1][0][-1] < sequential[1][0][1]  # they did train
    assert sequential[1][0] != sequential[2][0]  # and they are different models
