"""detect_anomaly(): the first operation whose forward output or backward
gradient holds NaN or Inf raises, naming the operation and the line of user
code that created it."""

import inspect
import re
import warnings

import numpy as np
import pytest

import autograd_core as ac
from autograd_core import AnomalyError, Value, detect_anomaly


def _this_line(offset=0):
    frame = inspect.currentframe().f_back
    return f"{__file__}:{frame.f_lineno + offset}"


def test_log_of_a_negative_names_log_and_the_user_line():
    x = Value(np.array([1.0, -1.0]))
    with detect_anomaly():
        y = x * 2
        with pytest.raises(AnomalyError) as info:
            where = _this_line(1)
            y.log()
    message = str(info.value)
    assert message.startswith("log produced NaN in its forward output")
    assert where in message


def test_sqrt_of_a_negative():
    with detect_anomaly():
        x = Value(-4.0)
        with pytest.raises(AnomalyError, match=r"^sqrt produced NaN in its forward output") as info:
            where = _this_line(1)
            x.sqrt()
    assert where in str(info.value)


def test_the_first_bad_op_is_named_not_a_later_one():
    with detect_anomaly():
        x = Value(np.array([800.0]))
        with pytest.raises(AnomalyError, match=r"^exp produced Inf"):
            (x.exp() - x.exp()).log()  # exp overflows first; the NaN of inf - inf comes later


def test_inf_in_the_backward_gradient_names_the_op_that_made_it():
    with detect_anomaly():
        x = Value(np.array([0.0, 4.0]))
        where = _this_line(1)
        y = x.sqrt()  # fine forward (sqrt(0) = 0), but d sqrt/dx = inf at 0
        loss = y.sum()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            with pytest.raises(AnomalyError) as info:
                loss.backward()
    message = str(info.value)
    assert message.startswith("sqrt produced Inf in the gradient for its input 0 during backward")
    assert where in message


def test_nan_in_backward_from_a_where_branch():
    # the classic: where() masks a NaN forward, but the masked branch's gradient is NaN * 0
    with detect_anomaly():
        x = Value(np.array([-1.0, 4.0]))
        safe = ac.where(x.data > 0, x, 1.0)  # the right way: no NaN anywhere
        (safe.sqrt().sum()).backward()
    np.testing.assert_allclose(x.grad, [0.0, 0.25])


def test_nothing_is_raised_for_finite_graphs_and_mode_is_restored():
    with detect_anomaly():
        x = Value(np.array([1.0, 2.0]))
        (x.log() * x.sqrt()).sum().backward()
    assert not ac.modes._current_modes().anomaly
    # outside, NaN is allowed through silently, as NumPy does
    with np.errstate(invalid="ignore"):
        assert np.isnan(Value(-1.0).log().data)


def test_anomaly_error_is_a_floating_point_error():
    with detect_anomaly():
        with pytest.raises(FloatingPointError):
            Value(0.0).log()


def test_an_op_created_outside_the_mode_says_so():
    x = Value(0.0)
    y = x.sqrt()  # created outside detect_anomaly: its place is unknown
    with detect_anomaly():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            with pytest.raises(AnomalyError, match=re.escape("create it inside to see where")):
                y.backward()


def test_nan_data_entering_a_graph_is_caught_at_the_first_op():
    with detect_anomaly():
        x = Value(np.array([1.0, np.nan]))
        with pytest.raises(AnomalyError, match=r"^mul produced NaN"):
            x * 2
