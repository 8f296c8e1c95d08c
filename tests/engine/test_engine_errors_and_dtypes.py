"""Bad input gets a clear error, never a wrong answer; dtypes follow
documented rules (ints and bools become float64, float32 stays float32)."""

import numpy as np
import pytest

import autograd_core as ac
from autograd_core import ShapeError, Value, detect_anomaly, grad


# ---- shapes ------------------------------------------------------------------
@pytest.mark.parametrize(
    "name,fn",
    [
        ("add", lambda a, b: a + b),
        ("sub", lambda a, b: a - b),
        ("mul", lambda a, b: a * b),
        ("div", lambda a, b: a / b),
        ("pow", lambda a, b: a**b),
        ("maximum", ac.maximum),
        ("minimum", ac.minimum),
    ],
)
def test_mismatched_shapes_name_the_op_and_both_shapes(name, fn):
    a, b = Value(np.ones((2, 3))), Value(np.ones((4,)))
    with pytest.raises(ShapeError) as info:
        fn(a, b)
    message = str(info.value)
    assert message.startswith(name + ":") and "(2, 3)" in message and "(4,)" in message


def test_shape_errors_are_value_errors():
    with pytest.raises(ValueError):
        Value(np.ones(3)) + np.ones(2)


@pytest.mark.parametrize(
    "fn,needle",
    [
        (lambda: Value(np.ones((2, 3))) @ Value(np.ones((2, 3))), ["matmul", "(2, 3)", "(3)", "(2)"]),
        (lambda: Value(np.ones(3)) @ Value(2.0), ["matmul", "(3,)", "()"]),
        (lambda: Value(np.ones(6)).reshape(4, 2), ["reshape", "(6,)", "(4, 2)"]),
        (lambda: ac.concatenate([Value(np.ones((2, 2))), Value(np.ones((3, 3)))], axis=0), ["concatenate", "(2, 2)", "(3, 3)"]),
        (lambda: ac.stack([Value(np.ones(2)), Value(np.ones(3))]), ["stack", "(2,)", "(3,)"]),
        (lambda: ac.where(np.ones(3, bool), Value(np.ones(4)), 0.0), ["where", "(3,)", "(4,)"]),
        (lambda: ac.broadcast_to(Value(np.ones(3)), (2, 4)), ["broadcast_to", "(3,)", "(2, 4)"]),
        (lambda: Value(np.ones((2, 3))).sum(axis=2), ["sum", "axis 2"]),
        (lambda: Value(np.ones((2, 3))).transpose(0, 0), ["transpose", "(2, 3)"]),
    ],
)
def test_other_shape_errors_are_explicit(fn, needle):
    with pytest.raises(ShapeError) as info:
        fn()
    for part in needle:
        assert part in str(info.value)


def test_out_of_range_index_names_the_shape():
    with pytest.raises(IndexError, match=r"\(3,\)"):
        Value(np.ones(3))[5]


# ---- non-numeric data ----------------------------------------------------------
@pytest.mark.parametrize(
    "data",
    ["abc", ["1", "2"], object(), [object()], None, 1 + 2j, np.array([1 + 1j]), [[1.0, 2.0], [3.0]],
     np.array(["2020-01-01"], dtype="datetime64[D]")],
    ids=["str", "list of str", "object", "list of objects", "None", "complex", "complex array", "ragged", "datetime"],
)
def test_non_numeric_data_is_refused_with_a_type_error(data):
    with pytest.raises(TypeError) as info:
        Value(data)
    assert "Value" in str(info.value)
    with pytest.raises(TypeError):
        Value(1.0) + data  # mixed into an expression: refused too


def test_complex_is_named_in_the_message():
    with pytest.raises(TypeError, match="complex"):
        Value(np.array([1 + 2j]))


# ---- dtypes ----------------------------------------------------------------------
@pytest.mark.parametrize("data", [3, [1, 2, 3], np.arange(3), np.arange(3, dtype=np.uint8), True, np.array([True, False])])
def test_integers_and_bools_are_promoted_to_float64(data):
    v = Value(data)
    assert v.dtype == np.float64
    np.testing.assert_array_equal(v.data, np.asarray(data, dtype=np.float64))


def test_python_floats_are_float64_scalars():
    v = Value(2.5)
    assert v.shape == () and v.dtype == np.float64


def test_float32_stays_float32_through_ops_and_gradients():
    x = Value(np.array([0.5, -1.0, 2.0], dtype=np.float32))
    y = ((x * 2.5 + 1) ** 2 / 3 - x.exp() + 1 / (x * x + 1)).tanh().relu().sum()
    assert y.dtype == np.float32
    y.backward()
    assert x.grad.dtype == np.float32
    s = Value(np.float32(1.5))
    out = s**2 + 1 / s + 2 * s
    out.backward()
    assert out.dtype == np.float32 and s.grad.dtype == np.float32


def test_float32_gradients_agree_with_float64_to_float32_precision():
    data = np.array([0.5, -1.0, 2.0])
    grads = []
    for dtype in (np.float32, np.float64):
        x = Value(data.astype(dtype))
        (x.sigmoid() * x).sum().backward()
        grads.append(x.grad)
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-6)


def test_integer_and_boolean_arrays_mixed_into_a_float32_graph_keep_it_float32():
    """Regression: an int or bool array (a mask, labels) turned a float32 graph into float64."""
    x = Value(np.ones(3, dtype=np.float32))
    mask = np.array([True, False, True])
    for y in (x * mask, x + np.arange(3), np.arange(3) - x, x * True, ac.where(mask, x, np.zeros(3, dtype=np.int64))):
        assert y.dtype == np.float32
    (x * mask).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad, [1.0, 0.0, 1.0])


def test_float32_mixed_with_float64_arrays_follows_numpy_promotion():
    x = Value(np.ones(2, dtype=np.float32))
    y = x * np.ones(2)  # float64 data (not a Python number) promotes, as in NumPy and PyTorch
    assert y.dtype == np.float64
    y.sum().backward()
    assert x.grad.dtype == np.float32  # but the gradient is in the leaf's dtype


def test_astype_moves_between_float_dtypes_and_refuses_ints():
    x = Value(np.array([1.0, 2.0]))
    y = x.astype(np.float32)
    assert y.dtype == np.float32
    (y * y).sum().backward()
    assert x.grad.dtype == np.float64
    np.testing.assert_array_equal(x.grad, [2.0, 4.0])
    with pytest.raises(TypeError, match="float"):
        x.astype(np.int64)


# ---- log and sqrt of negatives ------------------------------------------------------
def test_log_and_sqrt_of_negatives_are_nan_as_in_numpy_and_caught_by_detect_anomaly():
    x = Value(np.array([-1.0, 4.0]))
    with np.errstate(invalid="ignore"):
        assert np.isnan(x.log().data[0]) and np.isnan(x.sqrt().data[0])
    for fn in (lambda v: v.log(), lambda v: v.sqrt(), lambda v: ac.log1p(v - 1), lambda v: v**0.5):
        with detect_anomaly():
            with pytest.raises(ac.AnomalyError, match="NaN in its forward output"):
                fn(x)


def test_log_of_zero_is_minus_inf_and_caught():
    with detect_anomaly():
        with pytest.raises(ac.AnomalyError, match=r"^log produced Inf"):
            Value(np.array([0.0, 1.0])).log()


# ---- misc misuse ------------------------------------------------------------------
def test_item_needs_one_element():
    assert Value(np.array([[2.5]])).item() == 2.5
    with pytest.raises(ValueError, match=r"\(2,\)"):
        Value(np.ones(2)).item()


def test_grad_argument_errors():
    x = Value(1.0)
    with pytest.raises(TypeError, match="must be Values"):
        grad(x * 2, [np.ones(1)])
    with pytest.raises(ValueError, match="grad_outputs"):
        grad([x * 2, x * 3], [x], grad_outputs=[1.0])


def test_indexing_with_a_value_is_refused():
    with pytest.raises(TypeError, match="not a Value"):
        Value(np.ones(3))[Value(1.0)]


@pytest.mark.parametrize("bad", [-0.1, 1.5, np.nan])
def test_binary_cross_entropy_refuses_what_is_not_a_probability(bad):
    with pytest.raises(ValueError, match=r"binary_cross_entropy: .*probabilities in \[0, 1\].*with_logits"):
        ac.binary_cross_entropy(Value([0.5, bad]), [1.0, 0.0])
