"""Saved data is guarded: changing data that a pending backward still needs
raises SavedDataModifiedError naming the Value and the operation, whether the
change is an assignment (``p.data -= x`` bumps the version) or a write into the
array (``x.data[0] = 5``). Legitimate patterns (read .data, step the optimizer
after backward, drop a graph without backward, retain_graph loops) never
raise and never leave data read-only."""

import tracemalloc

import numpy as np
import pytest

from autograd_core import SavedDataModifiedError, Value, grad, no_grad


def _weights():
    x = Value(np.array([1.0, 2.0, 3.0]), label="x")
    w = Value(np.array([0.5, -1.0, 2.0]), label="w")
    return x, w


def test_assigning_data_between_forward_and_backward_raises_naming_value_and_op():
    x, w = _weights()
    loss = (x * w).sum()
    w.data -= 0.1  # an optimizer step too early: a new version of w
    with pytest.raises(SavedDataModifiedError, match=r"'w' \(shape \(3,\), float64\).*'mul'"):
        loss.backward()


def test_writing_into_the_array_between_forward_and_backward_raises():
    x, w = _weights()
    loss = (x * w).sum()
    x.data[0] = 5.0  # no assignment, only a write through the array
    with pytest.raises(SavedDataModifiedError, match=r"'x' \(shape \(3,\), float64\).*'mul'.*in place"):
        loss.backward()


@pytest.mark.parametrize("write", [
    lambda v: v.numpy().__setitem__(1, 7.0),
    lambda v: v.detach().data.__setitem__(1, 7.0),
    lambda v: np.copyto(v.data, 0.0),
    lambda v: v.data.__imul__(2.0),
])
def test_every_way_of_reaching_the_array_is_watched(write):
    x, w = _weights()
    loss = (x * w).sum()
    write(x)
    with pytest.raises(SavedDataModifiedError, match="'x'"):
        loss.backward()


def test_a_constant_input_is_guarded_too():
    # X does not require grad, but matmul saved it: W's gradient is X^T @ g
    X = Value(np.arange(6.0).reshape(2, 3), requires_grad=False, label="X")
    W = Value(np.ones((3, 2)), label="W")
    loss = (X @ W).sum()
    X.data[1, 1] = -100.0
    with pytest.raises(SavedDataModifiedError, match=r"'X' \(shape \(2, 3\).*'matmul'"):
        loss.backward()


def test_an_intermediate_result_is_guarded():
    x, _ = _weights()
    t = x.tanh()  # tanh's gradient is 1 - t**2: it reads its own output
    t.data[0] = 0.0
    with pytest.raises(SavedDataModifiedError, match="'tanh'"):
        t.sum().backward()


def test_reading_data_between_forward_and_backward_is_fine_and_gradient_exact():
    x, w = _weights()
    loss = (x * w).sum()
    seen = x.data.sum() + w.data.max() + float(np.asarray(w).mean())  # reads only
    assert seen == pytest.approx(6.0 + 2.0 + 1.5 / 3)
    loss.backward()
    np.testing.assert_array_equal(w.grad, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(x.grad, [0.5, -1.0, 2.0])


def test_writing_the_same_numbers_back_is_not_a_change():
    x, w = _weights()
    loss = (x * w).sum()
    x.data[:] = x.data.copy()  # a write, but of the same numbers: the gradient is still right
    loss.backward()
    np.testing.assert_array_equal(w.grad, [1.0, 2.0, 3.0])


def test_nan_data_that_is_not_touched_is_not_reported():
    x = Value(np.array([np.nan, 1.0]), label="x")
    loss = (x * 2.0).sum()
    _ = x.data  # handed out (a copy is kept) but not written
    loss.backward()
    np.testing.assert_array_equal(x.grad, [2.0, 2.0])


def test_optimizer_step_after_backward_is_in_place_and_copies_nothing():
    rng = np.random.default_rng(0)
    w = Value(rng.standard_normal(200_000), label="w")
    x = Value(rng.standard_normal(200_000), requires_grad=False)
    step = np.empty_like(w.data)
    array_before = w.data
    for _ in range(3):
        w.zero_grad()
        loss = (w * x).sum()
        loss.backward()
        np.multiply(w.grad, 0.1, out=step)
        tracemalloc.start()
        np.subtract(w.data, step, out=w.data)  # the in-place update
        w.data -= step
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert peak < w.data.nbytes / 10, f"the update allocated {peak} bytes: a copy of w was made"
    assert w.data is array_before  # still the very same array
    assert w.data.flags.writeable


def test_graph_dropped_without_backward_leaves_data_writable_and_later_steps_work():
    x, w = _weights()
    for _ in range(3):
        _evaluation = (x * w).sum()  # recorded, never backpropagated (no no_grad)
    w.data[0] = 10.0  # legitimate: no backward will use that graph
    assert w.data.flags.writeable
    loss = (x * w).sum()
    loss.backward()
    np.testing.assert_array_equal(w.grad, [1.0, 2.0, 3.0])
    assert loss.item() == 10.0 * 1 + -1.0 * 2 + 2.0 * 3


def test_backward_through_a_graph_made_before_a_write_raises_but_the_new_graph_is_fine():
    x, w = _weights()
    old = (x * w).sum()
    w.data[2] = 0.0
    new = (x * w).sum()  # saw the new numbers: its gradient is right
    new.backward()
    np.testing.assert_array_equal(x.grad, [0.5, -1.0, 0.0])
    with pytest.raises(SavedDataModifiedError, match="'w'"):
        old.backward()


def test_retain_graph_second_backward_sees_a_write_in_between():
    x, w = _weights()
    loss = (x * x * w).sum()
    loss.backward(retain_graph=True)
    np.testing.assert_array_equal(w.grad, [1.0, 4.0, 9.0])
    loss.backward(retain_graph=True)  # nothing changed: gradients accumulate
    np.testing.assert_array_equal(w.grad, [2.0, 8.0, 18.0])
    x.data[1] = 0.0
    with pytest.raises(SavedDataModifiedError, match="'x'"):
        loss.backward()


def test_retain_graph_training_loop_with_in_place_updates_runs():
    # the graph of the last step is still alive when the optimizer writes
    x, w = _weights()
    for _ in range(5):
        w.zero_grad()
        loss = ((x * w).sum() - 1.0) ** 2
        loss.backward(retain_graph=True)
        w.data -= 0.01 * w.grad
    expected = np.array([0.5, -1.0, 2.0])
    for _ in range(5):
        residual = (x.data * expected).sum() - 1.0
        expected = expected - 0.01 * 2 * residual * x.data
    np.testing.assert_allclose(w.data, expected, rtol=1e-12)


def test_grad_function_is_guarded_too():
    x, w = _weights()
    y = (x * w).sum()
    w.data[0] = 3.0
    with pytest.raises(SavedDataModifiedError, match="'w'"):
        grad(y, [x])


def test_no_grad_results_are_not_guarded():
    x, w = _weights()
    with no_grad():
        y = x * w
    x.data[0] = 4.0  # nothing was recorded, nothing to protect
    assert y.requires_grad is False
    np.testing.assert_array_equal(y.data, [0.5, -2.0, 6.0])


@pytest.mark.parametrize("optimizer_name", ["SGD", "Adam", "RMSprop"])
def test_an_optimizer_step_between_forward_and_backward_is_named(optimizer_name):
    nn = pytest.importorskip("nn")
    optim = pytest.importorskip("optim")
    nn.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1))
    optimizer = getattr(optim, optimizer_name)(model.parameters(), lr=0.1)
    X = Value(np.ones((4, 2)), requires_grad=False)
    model(X).sum().backward()  # gradients from an earlier step
    loss = model(X).sum()
    optimizer.step()  # too early: the new graph saved the weights
    with pytest.raises(SavedDataModifiedError, match=r"'\d\.(weight|bias)' \(shape \(\d, ?\d?\),? float64\)"):
        loss.backward()
    # the usual order works, and after it the parameters moved
    before = [p.data.copy() for p in model.parameters()]
    optimizer.zero_grad()
    model(X).sum().backward()
    optimizer.step()
    assert all(not np.array_equal(b, p.data) for b, p in zip(before, model.parameters()))


def test_np_array_of_a_value_is_a_copy_and_np_asarray_shares():
    # np.array(v) asks for a copy (copy=True); it used to share v's data, so a
    # history of weights kept with np.array(w) changed as w trained
    w = Value(np.array([1.0, 2.0]), label="w")
    history = [np.array(w)]
    w.data -= 0.5
    np.testing.assert_array_equal(history[0], [1.0, 2.0])
    assert not np.shares_memory(np.array(w, copy=True), w.data)
    assert np.shares_memory(np.asarray(w), w.data)  # asarray: no copy, as documented for .numpy()
    assert np.array(w, dtype=np.float32).dtype == np.float32


@pytest.mark.parametrize("which", ["later graph", "earlier graph"])
def test_a_write_through_an_array_taken_between_two_forward_passes_is_seen_by_both(which):
    x, w = _weights()
    first = (x * w).sum()
    array = x.data  # handed out after the first forward pass
    second = (x * w * 2.0).sum()  # saves x again
    array[0] = 5.0  # written after both forward passes
    with pytest.raises(SavedDataModifiedError, match="'x'"):
        (second if which == "later graph" else first).backward()


def test_a_backward_stopped_by_an_error_keeps_watching_its_inputs():
    import autograd_core as ac
    from autograd_core import Value
    from autograd_core.errors import AnomalyError, SavedDataModifiedError

    x = Value(np.array([0.0, 1.0]))
    with ac.detect_anomaly():
        y = x ** 0.5
        with pytest.raises(AnomalyError):
            y.backward(np.ones(2))  # d sqrt(x)/dx is inf at 0: stops before the node is freed
    x.data[0] = 4.0  # a write into the array that y's rule still needs
    with pytest.raises(SavedDataModifiedError):
        y.backward(np.ones(2))
