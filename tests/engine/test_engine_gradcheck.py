"""gradcheck itself: it must pass right gradients and catch wrong ones,
saying which input, which index and both numbers."""

import re

import numpy as np
import pytest

from autograd_core import GradcheckError, Value, gradcheck
from autograd_core.gradcheck import numerical_gradient
from autograd_core.ops import Op


def test_passes_a_correct_gradient():
    assert gradcheck(lambda x, y: (x * y).tanh().sum(), [np.array([0.5, -1.0]), np.array([2.0, 0.3])]) is True


def test_non_scalar_outputs_are_checked_along_a_random_direction():
    assert gradcheck(lambda x: x.exp() * 2, [np.array([[0.1, 0.2], [0.3, 0.4]])])


def _broken_square(x):
    """x**2 with a wrong gradient (3x instead of 2x) at one element."""
    wrong = Op(
        "broken_square", lambda x: x**2, inputs="x", elementwise=True,
        d_x=lambda x, out: 2 * x + (x == 5.0) * x, formula="wrong on purpose", register=False,
    )
    return wrong.apply(x)


def test_a_wrong_gradient_raises_naming_input_index_and_both_values():
    a = Value(np.array([1.0, 2.0]), label="a")
    x = Value(np.array([[1.0, 2.0], [3.0, 5.0]]), label="x")
    with pytest.raises(GradcheckError) as info:
        gradcheck(lambda a, x: a.sum() + _broken_square(x).sum(), [a, x])
    message = str(info.value)
    assert "input 1 ('x')" in message and "shape (2, 2)" in message
    assert "index (1, 1)" in message
    analytic, numeric = (float(v) for v in re.findall(r"analytic gradient ([-\d.e]+) but central difference ([-\d.e]+)", message)[0])
    assert analytic == pytest.approx(15.0) and numeric == pytest.approx(10.0, rel=1e-6)
    assert "1 of 4 entries differ" in message


def test_gradcheck_error_is_an_assertion_error():
    with pytest.raises(AssertionError):
        gradcheck(lambda x: _broken_square(x).sum(), [np.array([5.0])])


def test_inputs_not_requiring_grad_are_not_checked_but_used():
    c = Value(np.array([2.0, 3.0]), requires_grad=False)
    assert gradcheck(lambda x, c: (x * c).sum(), [np.array([1.0, 1.0]), c])
    with pytest.raises(ValueError, match="nothing to check"):
        gradcheck(lambda c: c.sum(), [c])


def test_checks_in_float64_even_for_float32_inputs():
    x = Value(np.array([0.3, 0.7], dtype=np.float32))
    assert gradcheck(lambda x: (x * x * x).sum(), [x])


def test_non_contiguous_inputs():
    """Regression: a transposed (Fortran-ordered) input was perturbed in a
    copy, so every central difference came out 0 and gradcheck failed."""
    data = np.arange(6.0).reshape(3, 2).T
    assert not data.flags.c_contiguous
    assert gradcheck(lambda x: (x * x).sum(), [data])
    np.testing.assert_allclose(numerical_gradient(lambda x: (x * x).sum(), [Value(data)], 0), 2 * data, rtol=1e-8)


def test_fn_must_return_a_value():
    with pytest.raises(TypeError, match="must return a Value"):
        gradcheck(lambda x: 1.0, [np.array([1.0])])
