"""no_grad, enable_grad, detach, requires_grad=False, and plain data mixed
into expressions as constants."""

import threading

import numpy as np
import pytest

import autograd_core as ac
from autograd_core import Value, grad, no_grad


def test_nothing_is_recorded_inside_no_grad():
    w = Value(np.array([1.0, 2.0]))
    with no_grad():
        y = (w * 3).exp().sum()
    assert not y.requires_grad and y.inputs == () and y.op == ""
    np.testing.assert_allclose(y.data, np.exp(3.0) + np.exp(6.0))
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.backward()
    assert ac.is_grad_enabled()  # restored on exit


def test_no_grad_is_restored_after_an_exception_and_works_as_a_decorator():
    with pytest.raises(ZeroDivisionError):
        with no_grad():
            1 / 0
    assert ac.is_grad_enabled()

    @no_grad()
    def evaluate(w):
        return w * 2

    assert not evaluate(Value(1.0)).requires_grad


def test_a_decorated_function_that_calls_itself_restores_the_modes_at_every_level():
    @no_grad()
    def depth_under_no_grad(n):
        return depth_under_no_grad(n - 1) if n else ac.is_grad_enabled()

    @ac.name_scope("block")
    def scoped(n):
        return scoped(n - 1) if n else (Value(1.0) * 2).scope

    assert depth_under_no_grad(3) is False
    assert ac.is_grad_enabled()  # one shared context manager would leave it switched off here
    assert scoped(2) == "block"
    assert (Value(1.0) * 2).scope is None


def test_enable_grad_inside_no_grad():
    w = Value(1.0)
    with no_grad():
        with ac.enable_grad():
            y = w * 2
        z = w * 2
    assert y.requires_grad and not z.requires_grad


def test_parameter_update_under_no_grad_is_not_part_of_the_next_graph():
    w = Value(np.array([1.0, -2.0]))
    for _ in range(2):
        loss = (w * w).sum()
        loss.backward()
        with no_grad():
            w.data = w.data - 0.25 * w.grad
        w.zero_grad()
    np.testing.assert_allclose(w.data, np.array([1.0, -2.0]) * 0.5 * 0.5)


def test_no_grad_is_per_thread():
    seen = {}
    inside = threading.Event()
    release = threading.Event()

    def other_thread():
        inside.wait()
        seen["recorded"] = (Value(1.0) * 2).requires_grad
        release.set()

    t = threading.Thread(target=other_thread)
    t.start()
    with no_grad():
        inside.set()
        release.wait(5)
    t.join(5)
    assert seen["recorded"] is True


def test_detach_cuts_the_graph_and_shares_the_data():
    x = Value(np.array([1.0, 2.0]))
    y = x * 3
    d = y.detach()
    assert not d.requires_grad and d.inputs == () and np.shares_memory(d.data, y.data)
    z = (d * x).sum()  # d is a constant here: dz/dx = d, nothing flows into y
    (g,) = grad(z, x)
    np.testing.assert_array_equal(g, [3.0, 6.0])
    assert y.grad is None


def test_requires_grad_false_constant_gets_no_gradient():
    c = Value(np.array([5.0, 6.0]), requires_grad=False)
    x = Value(np.array([1.0, 1.0]))
    (c * x).sum().backward()
    assert c.grad is None
    np.testing.assert_array_equal(x.grad, [5.0, 6.0])
    with pytest.raises(ValueError, match="does not require grad"):
        grad((c * x).sum(), c)


def test_numpy_arrays_and_python_numbers_are_constants():
    x = Value(np.array([1.0, 2.0]))
    a = np.array([3.0, 4.0])
    y = ((a * x + 2 - np.ones(2)) / np.array([2.0, 4.0]) + 1.5 * x - x / 2 + 2**x).sum()
    y.backward()
    expected = a / np.array([2.0, 4.0]) + 1.5 - 0.5 + np.log(2) * 2 ** np.array([1.0, 2.0])
    np.testing.assert_allclose(x.grad, expected, rtol=1e-14)
    # every leaf of the graph besides x is a constant: backward reaches only x
    leaves = [node for node in ac.topological_order([y]) if node.is_leaf]
    assert leaves == [x]


def test_reflected_operators_with_numpy_arrays_give_values():
    x = Value(np.array([1.0, 2.0]))
    for result in (np.ones(2) + x, np.ones(2) - x, np.ones(2) * x, np.ones(2) / x, np.ones(2) ** x, np.ones((2, 2)) @ x):
        assert isinstance(result, Value) and result.requires_grad


def test_a_value_cannot_be_used_as_data():
    with pytest.raises(TypeError, match="detach"):
        Value(Value(1.0))


def test_a_generator_leaving_no_grad_inside_another_mode_restores_only_its_own_mode():
    def batches():
        with no_grad():
            yield 1
            yield 2

    g = batches()
    next(g)  # no_grad entered here
    with ac.name_scope("block"):
        for _ in g:  # ... and left here, inside the name scope
            pass
        assert ac.is_grad_enabled()
        assert (Value(1.0) * Value(2.0)).scope == "block"
    assert ac.is_grad_enabled() and (Value(1.0) * 2).scope is None


def test_a_scope_left_while_a_generator_keeps_no_grad_on_restores_only_the_scope():
    def batches():
        with no_grad():
            yield 1
            yield 2

    with ac.name_scope("outer"):
        g = batches()
        next(g)  # no_grad entered inside the scope
    assert not ac.is_grad_enabled()  # still the generator's no_grad ...
    assert Value(1.0).scope is None  # ... but the scope is gone
    list(g)
    assert ac.is_grad_enabled() and (Value(1.0) * 2).scope is None
