"""The operations of ops_rounding.py, ops_scan.py and ops_scatter.py beyond
what the registry's op cases check: bad input refused with a clear error,
sizes checked before allocating, 0-d inputs, repeated scatter targets,
NumPy's functions refused with the engine's op named, and compile."""

import numpy as np
import pytest

import autograd_core as ac
from autograd_core import ShapeError, Value, gradcheck
from autograd_core import conv as conv_module
from autograd_core.compile import CompileError


# ---- rounding ---------------------------------------------------------------------
def test_rounding_keeps_the_dtype_and_gives_gradient_zero():
    for dtype in (np.float32, np.float64):
        x = Value(np.array([-1.5, 0.5, 2.5], dtype=dtype))
        for fn in (ac.floor, ac.ceil, ac.trunc, ac.round, lambda v: v.round(1), lambda v: v // 2.0,
                   lambda v: ac.div(v, 3.0, rounding_mode="trunc")):
            y = fn(x)
            assert y.dtype == dtype
            (g,) = ac.grad((y * 3.0).sum(), [x])
            assert g.dtype == dtype and not g.any()


def test_round_of_a_python_number_is_pythons():
    assert ac.round(2.5) == 2 and type(ac.round(2.5)) is int and ac.round(2.675, 2) == round(2.675, 2)
    assert isinstance(ac.round(np.array([2.5])), Value)  # arrays and Values: the op
    with pytest.raises(TypeError, match="decimals must be an int"):
        ac.round(Value(1.0), 1.5)


def test_unknown_rounding_mode_is_refused():
    with pytest.raises(ValueError, match=r"rounding_mode must be None .* 'trunc' .* 'floor'.*got 'ceil'"):
        ac.div(Value(1.0), 2.0, rounding_mode="ceil")
    assert float(ac.div(Value(1.0), 4.0).data) == 0.25


def test_remainder_gradients_are_one_and_minus_the_quotient():
    a, b = Value(np.array([7.0, -7.0, 7.0])), Value(np.array([2.0, 2.0, -2.0]))
    (a % b).sum().backward()
    assert a.grad.tolist() == [1.0, 1.0, 1.0] and b.grad.tolist() == [-3.0, 4.0, 4.0]  # -floor(a / b)
    a, b = Value(np.array([7.0, -7.0, 7.0])), Value(np.array([2.0, 2.0, -2.0]))
    ac.fmod(a, b).sum().backward()
    assert a.grad.tolist() == [1.0, 1.0, 1.0] and b.grad.tolist() == [-3.0, 3.0, 3.0]  # -trunc(a / b)
    assert gradcheck(lambda a, b: (a % b * a).sum() + ac.fmod(b, a).sum(), [np.array([2.3, -4.1]), np.array([0.7, 1.3])])


def test_broadcasting_shapes_that_do_not_fit_are_named():
    with pytest.raises(ShapeError, match=r"remainder: shapes \(3,\) and \(2,\)"):
        Value(np.ones(3)) % Value(np.ones(2))
    with pytest.raises(ValueError, match="isclose: shapes"):
        ac.isclose(Value(np.ones(3)), np.ones(2))
    with pytest.raises(ValueError, match="rtol must be a number >= 0"):
        ac.isclose(Value(1.0), 1.0, rtol=-1)


def test_numpys_functions_on_a_value_name_the_engines_operation():
    x = Value(np.array([1.5, -0.5]))
    for call, named in ((np.floor, "floor"), (np.trunc, "trunc"), (np.fmod, "fmod"), (np.isclose, "isclose")):
        with pytest.raises(TypeError, match=rf"autograd_core\.{named}"):
            call(x, x) if call in (np.fmod, np.isclose) else call(x)
    with pytest.raises(TypeError, match=r"autograd_core\.round"):
        np.round(x, 1)
    with pytest.raises(TypeError, match=r"autograd_core\.remainder"):
        np.remainder(x, 2.0)
