"""The contract between the engine and an operation's gradient rule."""

import numpy as np
import pytest

from autograd_core import Value, grad
from autograd_core.ops import OPS, Op


@pytest.fixture
def scratch_op():
    """Make a throwaway Op and take it out of the registry afterwards."""
    made = []

    def make(name, local_gradient, formula="test"):
        op = Op(name, lambda x: x, inputs="x", elementwise=True, d_x=local_gradient, formula=formula)
        made.append(name)
        return op

    yield make
    for name in made:
        OPS.pop(name, None)


@pytest.mark.parametrize("constant", [0, 2, -3, 1, -1])
def test_an_integer_local_gradient_is_multiplied_not_taken_as_a_sign(scratch_op, constant):
    """Regression: any int other than 1 was treated as -1 (so a rule returning
    0 or 2 gave -g)."""
    op = scratch_op("times_const_test", lambda x, out: constant)
    x = Value(np.array([1.0, 2.0]))
    y = op.apply(x)
    (g,) = grad((y * np.array([1.0, 10.0])).sum(), x)
    np.testing.assert_array_equal(g, np.array([1.0, 10.0]) * constant)


def test_elementwise_ops_expose_their_local_gradient_and_formula():
    x = Value(0.5)
    t = x.tanh()
    local = t._op.local_gradient(t, 0)
    assert local == pytest.approx(1 - np.tanh(0.5) ** 2)
    assert "1 - tanh(x)^2" in t._op.formula


def test_structural_ops_have_no_local_gradient_but_a_formula():
    s = Value(np.ones((2, 2))).sum(axis=0)
    assert not s._op.elementwise
    assert s._op.local_gradient(s, 0) is None
    assert "B^T" in OPS["matmul"].formula


def test_matmul_shows_the_other_operand_as_its_local_gradient():
    a, b = Value(np.arange(4.0).reshape(2, 2)), Value(np.ones((2, 3)))
    c = a @ b
    assert not c._op.elementwise
    np.testing.assert_array_equal(c._op.local_gradient(c, 0), b.data)
    np.testing.assert_array_equal(c._op.local_gradient(c, 1), a.data)


def test_every_registered_op_has_a_formula_and_a_unique_name():
    for name, op in OPS.items():
        assert op.name == name and op.formula
