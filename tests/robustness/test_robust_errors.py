"""Regression tests for what the fuzzer found: bad arguments get a documented
exception naming the operation, and edge shapes get PyTorch's answers."""

import numpy as np
import pytest

import autograd_core as ac
from autograd_core import ShapeError, Value


@pytest.mark.parametrize("call, error, words", [
    (lambda x: x.transpose(5), ShapeError, "transpose"),            # was silently taken as axis 0
    (lambda x: x.transpose(-2), ShapeError, "transpose"),
    (lambda x: x.swapaxes(0, 5), ShapeError, "swapaxes"),          # was IndexError: list index out of range
    (lambda x: x.sum(axis=1.5), TypeError, "sum: axis must be"),    # was TypeError: 'float' object is not iterable
    (lambda x: x.mean(axis="a"), TypeError, "mean: axis must be"),
    (lambda x: x.max(axis=True), TypeError, "max: axis must be"),
    (lambda x: ac.softmax(x, axis=None), TypeError, "softmax: axis must be one int"),  # was: too many values to unpack
    (lambda x: ac.log_softmax(x, axis=(0,)), TypeError, "log_softmax: axis must be one int"),
    (lambda x: x.reshape("a"), TypeError, "reshape"),               # was NumPy's message alone
    (lambda x: x.astype("banana"), TypeError, "astype"),
])
def test_bad_arguments_raise_documented_errors_naming_the_operation(call, error, words):
    with pytest.raises(error, match=words):
        call(Value(np.zeros(3)))


def test_broadcast_to_takes_an_int_shape_like_numpy():
    y = ac.broadcast_to(Value(np.array([2.0])), 3)  # was TypeError: 'int' object is not iterable
    np.testing.assert_array_equal(y.data, [2.0, 2.0, 2.0])


def test_softmax_family_over_an_empty_axis_is_empty_not_a_numpy_error():
    torch = pytest.importorskip("torch")
    data = np.zeros((3, 0))
    for ours, theirs in [(ac.softmax, torch.softmax), (ac.log_softmax, torch.log_softmax)]:
        x = Value(data)
        y = ours(x, axis=-1)
        assert y.shape == tuple(theirs(torch.from_numpy(data), dim=-1).shape) == (3, 0)
        y.sum().backward()
        assert x.grad.shape == (3, 0)
    x = Value(data)
    lse = ac.logsumexp(x, axis=-1)  # log(0) = -inf, as torch.logsumexp
    np.testing.assert_array_equal(lse.data, torch.logsumexp(torch.from_numpy(data), dim=-1).numpy())
    np.testing.assert_array_equal(lse.data, [-np.inf] * 3)


@pytest.mark.parametrize("method", ["sum", "mean", "max", "min", "logsumexp"])
def test_axis_zero_of_a_0d_value_means_all_of_it_as_in_pytorch(method):
    torch = pytest.importorskip("torch")
    x = Value(2.5)
    y = getattr(x, method)(axis=0)  # mean, max... raised NumPy's AxisError
    expected = getattr(torch, method)(torch.tensor(2.5, dtype=torch.float64, requires_grad=True), 0)
    expected = expected[0] if isinstance(expected, tuple) else expected
    assert y.shape == () and float(y.data) == pytest.approx(float(expected.detach()))
    y.backward()
    assert float(x.grad) == 1.0


def test_backward_and_grad_refuse_junk_with_their_own_names():
    y = Value(np.ones(3)) * 2
    with pytest.raises(TypeError, match=r"backward\(\): grad must be numbers of shape \(3,\), got str"):
        y.backward("a")  # was: could not convert string to float
    with pytest.raises(TypeError, match=r"grad\(\): outputs must be a Value or a list of Values, got int"):
        ac.grad(3, Value(1.0))  # was: 'int' object is not iterable
    with pytest.raises(TypeError, match=r"grad\(\): inputs must be"):
        ac.grad(y.sum(), {"x": 1})


def test_grad_still_takes_any_iterable_of_values():
    w = Value(np.array([1.0, 2.0]))
    b = Value(0.5)
    (gw, gb) = ac.grad((w * 3).sum() + b, (v for v in [w, b]))  # e.g. model.parameters(), a generator
    np.testing.assert_array_equal(gw, [3.0, 3.0])
    assert gb == 1.0


@pytest.mark.parametrize("wrong, error, held", [
    (np.zeros((3, 1)), ShapeError, r"shape \(3, 1\)"),  # was: .grad silently became (3, 3)
    (np.zeros(5), ShapeError, r"shape \(5,\)"),        # was: NumPy's broadcast error
    ("abc", TypeError, "str"),                          # was: UFuncTypeError
])
def test_a_grad_set_by_hand_to_the_wrong_shape_is_refused_at_backward(wrong, error, held):
    w = Value(np.ones(3), label="w")
    w.grad = wrong
    with pytest.raises(error, match=rf"\.grad of the Value 'w' \(shape \(3,\)\): \.grad holds {held}"):
        (w * 2).sum().backward()


def test_micrograd_style_grad_reset_to_zero_still_accumulates_and_keeps_dtype():
    w = Value(np.ones(3, dtype=np.float32))
    w.grad = 0  # how micrograd zeroes gradients
    (w * 2).sum().backward()
    np.testing.assert_array_equal(w.grad, [2.0, 2.0, 2.0])
    assert w.grad.dtype == np.float32
    w.grad = np.zeros(3)  # float64 zeros set by hand: the float32 Value keeps float32 gradients
    (w * 3).sum().backward()
    assert w.grad.dtype == np.float32 and w.grad.tolist() == [3.0, 3.0, 3.0]
