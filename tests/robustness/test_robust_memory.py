"""No leaks: graphs are freed by reference counting alone (no reference
cycles for the garbage collector to find), and a long training loop keeps
memory flat, with and without retain_graph."""

import gc
import sys
import tracemalloc
import weakref

import numpy as np
import pytest

from autograd_core import Value, grad

nn = pytest.importorskip("nn")
optim = pytest.importorskip("optim")


class _GcOff:
    """Collect what is already garbage, then switch the collector off, so that
    whatever it finds afterwards was made by the code under test."""

    def __enter__(self):
        gc.collect()
        self._was_enabled = gc.isenabled()
        gc.disable()
        return self

    def __exit__(self, *exc):
        if self._was_enabled:
            gc.enable()


def _small_graph():
    x = Value(np.array([[0.5, -1.0], [2.0, 0.25]]), label="x")
    w = Value(np.array([[1.0], [-2.0]]), label="w")
    hidden = (x @ w).tanh()
    loss = (hidden * hidden).mean() + x.abs().max() + x.sigmoid().log().sum()
    return x, w, hidden, loss


def test_a_freed_graph_is_freed_by_reference_counting_alone():
    with _GcOff():
        x, w, hidden, loss = _small_graph()
        watched = [weakref.ref(hidden), weakref.ref(loss)]
        loss.backward()
        del hidden, loss
        freed = [ref() for ref in watched] == [None, None]  # gone at once, the collector is off
        collected = gc.collect()
    assert freed and collected == 0
    assert x.grad.shape == x.shape and w.grad.shape == w.shape


def test_a_graph_dropped_without_backward_leaves_no_cycle():
    with _GcOff():
        _, _, hidden, loss = _small_graph()
        watched = weakref.ref(hidden)
        del hidden, loss
        freed = watched() is None
        collected = gc.collect()
    assert freed and collected == 0


def test_retained_graph_and_second_order_grad_leave_no_cycle():
    with _GcOff():
        x, _, hidden, loss = _small_graph()
        loss.backward(retain_graph=True)
        loss.backward()
        (dx,) = grad((x**3).sum(), x, create_graph=True)
        (d2x,) = grad(dx.sum(), x)
        watched = [weakref.ref(hidden), weakref.ref(dx)]
        del hidden, loss, dx
        freed = [ref() for ref in watched] == [None, None]
        collected = gc.collect()
    assert freed and collected == 0
    np.testing.assert_allclose(d2x, 6 * x.data)


def test_backward_with_create_graph_cycle_is_documented_and_collectable():
    # As in PyTorch: backward(create_graph=True) stores a Value in x.grad whose
    # graph leads back to x, a cycle; grad(..., create_graph=True) has none.
    with _GcOff():
        x = Value(np.array([1.0, 2.0]))
        (x**2).sum().backward(create_graph=True)
        assert isinstance(x.grad, Value) and x.grad.data.tolist() == [2.0, 4.0]
        watched = weakref.ref(x)
        del x
        gc.collect()
        assert watched() is None  # the collector does free it


def _training_setup():
    nn.manual_seed(0)
    rng = np.random.default_rng(0)
    X = Value(rng.standard_normal((16, 2)), requires_grad=False)
    y = Value((X.data[:, :1] * X.data[:, 1:] > 0).astype(float), requires_grad=False)
    model = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loss_fn = nn.BCEWithLogitsLoss()

    def step(retain_graph):
        optimizer.zero_grad()
        loss = loss_fn(model(X), y)
        loss.backward(retain_graph=retain_graph)
        optimizer.step()
        return loss.item()

    return step


@pytest.mark.slow
@pytest.mark.parametrize("retain_graph", [False, True])
def test_ten_thousand_training_steps_keep_memory_flat(retain_graph):
    step = _training_setup()
    first_loss = step(retain_graph)
    for _ in range(200):  # warm up: optimizer state, caches
        step(retain_graph)
    with _GcOff():
        # 1) 10,000 steps untraced: Python's count of allocated memory blocks
        #    stays put once free lists and caches have filled (one leaked
        #    object per step would add 8,000 between steps 2,000 and 10,000)
        for k in range(1, 10_001):
            last_loss = step(retain_graph)
            if k == 2_000:
                blocks_at_2000 = sys.getallocatedblocks()
        block_growth = sys.getallocatedblocks() - blocks_at_2000
        # 2) 600 steps under tracemalloc, which also sees NumPy's array
        #    buffers: the bytes still allocated stay level
        tracemalloc.start()
        try:
            for _ in range(200):
                step(retain_graph)
            early = tracemalloc.get_traced_memory()[0]
            for _ in range(400):
                step(retain_graph)
            late = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
        collected = gc.collect()
    assert collected == 0, f"{collected} objects in reference cycles after 10,600 steps"
    assert block_growth < 100, f"{block_growth} memory blocks more at step 10,000 than at step 2,000"
    assert late - early < 8_000, f"{late - early} bytes more after 400 traced steps"
    assert last_loss < 0.5 * first_loss  # and it did train
