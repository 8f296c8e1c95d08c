"""backward(): seeds, depth, accumulation, freeing, and what it skips."""

import gc
import sys

import numpy as np
import pytest

import autograd_core as ac
from autograd_core import GraphFreedError, ShapeError, Value, grad
from autograd_core.ops import F


def test_grad_is_none_before_any_backward():
    x = Value(np.ones(3))
    y = (x * 2).sum()
    assert x.grad is None and y.grad is None


def test_backward_on_a_non_scalar_needs_an_explicit_grad():
    y = Value(np.array([1.0, 2.0])) * 3
    with pytest.raises(RuntimeError, match=r"shape \(2,\).*Pass grad=") as info:
        y.backward()
    assert ".sum()" in str(info.value)  # and says how else to get a scalar


def test_backward_with_an_explicit_grad_is_a_vector_jacobian_product():
    x = Value(np.array([1.0, 2.0, 3.0]))
    y = x * x
    y.backward(np.array([1.0, 0.0, -1.0]))
    np.testing.assert_array_equal(x.grad, [2.0, 0.0, -6.0])


def test_explicit_grad_of_the_wrong_shape_is_refused():
    y = Value(np.ones((2, 3))) * 2
    with pytest.raises(ShapeError, match=r"\(3,\).*\(2, 3\)"):
        y.backward(np.ones(3))


def test_one_element_non_scalar_gets_the_implicit_seed():
    x = Value(np.array([[3.0]]))
    (x * x).backward()
    assert x.grad.shape == (1, 1) and x.grad[0, 0] == 6.0


def test_backward_on_a_constant_explains():
    with pytest.raises(RuntimeError, match="does not require grad"):
        (Value(1.0, requires_grad=False) * 2).backward()


@pytest.mark.slow
def test_a_million_node_chain_backpropagates_without_recursion_error():
    # negation is the cheapest op; the chain is far deeper than the recursion
    # limit, which a recursive topological sort would hit
    # (the cyclic garbage collector is paused: it would rescan the million
    # live nodes again and again while they are built, which tests nothing)
    depth = 1_000_000
    assert depth > 100 * sys.getrecursionlimit()
    gc.disable()
    try:
        x = Value(0.5)
        y = x
        for _ in range(depth):
            y = -y
        y.backward()
        assert x.grad == 1.0  # an even number of negations
        assert y.data == 0.5
        del y
    finally:
        gc.enable()


def test_a_deep_chain_of_mixed_ops_gets_the_chain_rule_right():
    x = Value(0.3)
    y = x
    for _ in range(5000):  # 10 times the depth at which micrograd fails
        y = y * 1.0001 + 0.0
    y.backward()
    assert x.grad == pytest.approx(1.0001**5000, rel=1e-9)


def test_leaves_accumulate_across_backward_calls_like_pytorch():
    a = Value(3.0)
    (a * a).backward()
    (a * a).backward()
    assert a.grad == 12.0  # 6 + 6
    a.zero_grad()
    assert a.grad is None
    (a * 2).backward()
    assert a.grad == 2.0
    a.zero_grad(set_to_none=False)
    assert a.grad == 0.0


def test_tensor_leaf_grad_is_its_own_writable_array():
    x = Value(np.ones(3))
    y = x + 0  # add passes the upstream gradient through unchanged
    y.sum().backward(retain_graph=True)
    assert x.grad.flags.writeable
    x.grad *= 10  # an optimizer or a user may do this
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [11.0, 11.0, 11.0])


def test_interior_grads_are_fresh_on_every_backward():
    """micrograd accumulates into interior nodes too, so a second backward
    doubles them; here interior .grad is this pass's gradient, for display."""
    x = Value(2.0)
    y = x * x  # interior
    z = y * 3
    z.backward(retain_graph=True)
    assert (x.grad, y.grad, z.grad) == (12.0, 3.0, 1.0)
    z.backward()
    assert (x.grad, y.grad, z.grad) == (24.0, 3.0, 1.0)  # leaf accumulates, interior does not


def test_interior_grad_is_the_total_over_all_paths():
    a = Value(2.0)
    b = a * 3  # used twice
    c = b * b + b
    c.backward()
    assert b.grad == 2 * 6.0 + 1  # dc/db = 2b + 1
    assert a.grad == 13.0 * 3


def test_second_backward_through_a_freed_graph_mentions_retain_graph():
    x = Value(2.0)
    y = (x * x).exp()
    y.backward()
    with pytest.raises(GraphFreedError, match="retain_graph"):
        y.backward()
    with pytest.raises(RuntimeError, match="retain_graph"):  # catchable as a RuntimeError too
        grad(y, x)


def test_retain_graph_allows_a_second_backward():
    x = Value(2.0)
    y = (x * x).exp()
    y.backward(retain_graph=True)
    first = x.grad
    y.backward()
    assert x.grad == 2 * first


def test_a_new_graph_on_the_same_leaves_is_fine_after_freeing():
    w = Value(np.array([1.0, -1.0]))
    for step in range(3):
        loss = (w * w).sum()
        loss.backward()
    np.testing.assert_array_equal(w.grad, 3 * 2 * np.array([1.0, -1.0]))


class MatmulSpy:
    """Counts the matrix products the backward pass computes."""

    def __init__(self, monkeypatch):
        self.calls = []
        real = F.matmul

        def counting(a, b):
            self.calls.append((np.shape(a), np.shape(b)))
            return real(a, b)

        monkeypatch.setattr(F, "matmul", staticmethod(counting))


def test_inputs_that_do_not_require_grad_cost_nothing_in_backward(monkeypatch):
    spy = MatmulSpy(monkeypatch)
    X = Value(np.ones((4, 3)), requires_grad=False)  # data: no gradient wanted
    W = Value(np.ones((3, 2)))
    (X @ W).sum().backward()
    assert spy.calls == [((3, 4), (4, 2))]  # only X.T @ g, for W; no g @ W.T for X
    assert X.grad is None
    np.testing.assert_array_equal(W.grad, np.full((3, 2), 4.0))


def test_both_sides_of_matmul_are_computed_when_both_require_grad(monkeypatch):
    spy = MatmulSpy(monkeypatch)
    A, B = Value(np.ones((4, 3))), Value(np.ones((3, 2)))
    (A @ B).sum().backward()
    assert sorted(spy.calls) == sorted([((4, 2), (2, 3)), ((3, 4), (4, 2))])


def test_subgraphs_made_only_of_constants_are_not_visited(monkeypatch):
    spy = MatmulSpy(monkeypatch)
    X = Value(np.ones((4, 3)), requires_grad=False)
    features = (X @ np.ones((3, 3))).tanh()  # all constants: no graph is recorded
    assert not features.requires_grad and features.inputs == ()
    W = Value(np.ones((3, 1)))
    (features @ W).sum().backward()
    assert len(spy.calls) == 1
    order = ac.topological_order([(features @ W).sum()])
    assert all(node.requires_grad for node in order)


def test_grad_returns_gradients_without_touching_dot_grad():
    x, y = Value(3.0), Value(4.0)
    out = x * y
    gx, gy = grad(out, [x, y], retain_graph=True)
    assert (gx, gy) == (4.0, 3.0)
    assert x.grad is None and y.grad is None and out.grad is None
    (gx_only,) = grad(out, [x])
    assert gx_only == 4.0


def test_grad_of_an_unused_input():
    x, unused = Value(1.0), Value(2.0)
    with pytest.raises(ValueError, match="allow_unused"):
        grad(x * 2, [x, unused], retain_graph=True)
    assert grad(x * 2, [x, unused], allow_unused=True) == (2.0, None)


def test_grad_with_several_outputs_and_grad_outputs():
    x = Value(np.array([1.0, 2.0]))
    y1, y2 = x * 2, x * x
    (g,) = grad([y1, y2], [x], grad_outputs=[np.array([1.0, 1.0]), np.array([1.0, -1.0])])
    np.testing.assert_array_equal(g, [2.0 + 2.0, 2.0 - 4.0])


def test_backward_fills_grad_in_the_leaf_dtype_and_shape():
    x = Value(np.ones((2, 1), dtype=np.float32))
    (x * np.ones((2, 3))).sum().backward()  # float32 * float64 -> float64 result
    assert x.grad.dtype == np.float32 and x.grad.shape == (2, 1)
    np.testing.assert_array_equal(x.grad, [[3.0], [3.0]])


def test_backward_is_quiet_where_a_gradient_is_infinite_by_design():
    import warnings

    x = Value(0.0)
    y = x.sqrt()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a RuntimeWarning from NumPy would fail here
        y.backward()
    assert x.grad == np.inf  # d sqrt(x)/dx at 0, as PyTorch gives


def test_outputs_that_feed_each_other_or_repeat_each_count_once_per_mention():
    # the backward pass visits nodes newest first from a heap: an output that is
    # also an input of another output, or one named twice, must still be visited once
    x = Value(1.5)
    y = x * 2
    z = y * 3
    gx, gy = grad([y, z], [x, y], retain_graph=True)
    assert (float(gx), float(gy)) == (8.0, 4.0)  # dz/dx + dy/dx = 6 + 2; dz/dy + dy/dy = 3 + 1
    (gx,) = grad([z, y, z], [x])
    assert float(gx) == 14.0  # 6 + 2 + 6
