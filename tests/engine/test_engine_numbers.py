"""A Python number in an expression (``x * 1.01``, ``1 - x``) becomes a
constant input of the operation, in the Value's dtype; looking at the graph
never changes it, and every gradient is what NumPy's arithmetic gives."""

import numpy as np
import pytest

import autograd_core as ac
from autograd_core import Value, gradcheck
from autograd_core.errors import SavedDataModifiedError

NUMBER_EXPRESSIONS = {
    "x + k": lambda x: x + 1.5,
    "k + x": lambda x: 1.5 + x,
    "x - k": lambda x: x - 1.5,
    "k - x": lambda x: 1.5 - x,
    "x * k": lambda x: x * -2.5,
    "k * x": lambda x: -2.5 * x,
    "x / k": lambda x: x / 4.0,
    "k / x": lambda x: 3.0 / x,
    "x * int": lambda x: x * 3,
}


@pytest.mark.parametrize("name", NUMBER_EXPRESSIONS)
def test_gradients_match_central_differences(name):
    build = NUMBER_EXPRESSIONS[name]
    x = np.array([0.7, -1.3, 2.1])
    weights = np.array([1.0, -2.0, 0.5])
    assert gradcheck(lambda v: (build(v).tanh() * weights).sum(), [x])


@pytest.mark.parametrize("name", NUMBER_EXPRESSIONS)
def test_the_same_gradient_whether_or_not_the_graph_was_looked_at(name):
    build = NUMBER_EXPRESSIONS[name]
    grads = []
    for look in (False, True):
        x = Value(np.array([0.7, -1.3, 2.1]))
        y = build(x)
        if look:
            assert len(y.inputs) == 2  # turns the node into its classic form before backward
        (y * y).sum().backward()
        grads.append(x.grad)
    np.testing.assert_array_equal(grads[0], grads[1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_data_and_gradient_keep_the_dtype(dtype):
    x = Value(np.array([1.0, 2.0], dtype=dtype))
    y = (1.0 - x * 0.1) / 3.0
    y.sum().backward()
    assert y.dtype == dtype and x.grad.dtype == dtype
    np.testing.assert_allclose(x.grad, [-0.1 / 3, -0.1 / 3], rtol=1e-6)


def test_the_graph_shows_the_number_as_a_constant_input_created_just_before():
    x = Value(2.0, label="x")
    y = x * 2.5
    constant = y.inputs[1]
    assert y.op == "mul" and y.inputs[0] is x
    assert constant.data == 2.5 and constant.dtype == np.float64
    assert not constant.requires_grad and constant.is_leaf
    assert x._id < constant._id < y._id
    z = 1 - x
    assert z.inputs[0].data == 1.0 and z.inputs[1] is x
    w = Value(np.ones(2, dtype=np.float32)) * 0.1
    assert w.inputs[1].dtype == np.float32 and w.inputs[1].data == np.float32(0.1)


def test_division_by_a_zero_number_gives_inf_as_numpy_does():
    x = Value(np.array([1.0, 2.0]))
    with np.errstate(divide="ignore"):
        y = x / 0.0
        y.sum().backward()
    assert np.isinf(y.data).all() and np.isinf(x.grad).all()


def test_a_drawing_after_backward_shows_the_number():
    a = Value(-3.0, label="a")
    loss = a * 7.25 + 1.5
    loss.backward()  # frees the graph; the numbers stay on their nodes
    source = ac.draw_graph(loss).source
    assert "7.25" in source and "1.5" in source
    assert float(a.grad) == 7.25


def test_the_stepper_shows_the_number_and_its_local_gradient():
    x = Value(3.0, label="x")
    y = x * 4.0
    y.label = "y"
    (step,) = list(ac.BackpropStepper(y))
    (inp, local, product) = step.contributions[0]
    assert inp is x and float(local) == 4.0 and float(product) == 4.0
    assert "x * 4" in step.explain()


def test_second_derivative_through_numbers():
    x = Value(1.5)
    (dy,) = ac.grad((x * 3.0 - 1.0) ** 2, x, create_graph=True)  # 6 (3x - 1) = 21
    (d2y,) = ac.grad(dy, x)  # 18
    assert float(dy.data) == pytest.approx(21.0) and float(d2y) == pytest.approx(18.0)


def test_inside_no_grad_nothing_is_kept_for_backward():
    x = Value(2.0)
    with ac.no_grad():
        y = x * 3.0
    assert not y.requires_grad and y.inputs == () and y.op == ""


def test_writing_into_the_input_after_the_forward_pass_is_still_caught():
    x = Value(np.array([1.0, 2.0]))
    y = (x * 2.0).tanh()  # tanh saves its output; mul by a number saves nothing of x but its version
    x.data = np.array([5.0, 6.0])
    with pytest.raises(SavedDataModifiedError, match="mul"):
        y.sum().backward()


def test_looking_at_the_graph_does_not_change_it():
    x = Value(1.0)
    y = x + 2.0
    first = y._inputs
    assert len(first) == 2 and y.inputs is first and y._inputs is first
    ac.draw_graph(y)
    assert y._inputs is first and y._op is ac.ops.OPS["add"]


def test_an_elementwise_op_from_outside_that_broadcasts_its_one_input_is_summed_back():
    from autograd_core.ops import Op

    scale_by = Op(
        "scale_by_rows", lambda x, rows: x * rows, inputs="x", elementwise=True,
        d_x=lambda x, out, rows: rows, formula="d(x c)/dx = c", register=False,
    )
    rows = np.arange(6.0).reshape(2, 3)
    x = Value(np.ones(3))
    scale_by.apply(x, rows=rows).sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 5.0, 7.0])


def test_a_value_seed_of_the_wrong_shape_is_refused():
    from autograd_core.errors import ShapeError

    x = Value(np.ones(3))
    with pytest.raises(ShapeError, match="grad_outputs has shape"):
        ac.grad(x * 2.0, x, grad_outputs=Value(np.ones((2, 3))), create_graph=True)


ONE_INPUT = {  # ops of one input (a number beside it is a constant): the gradient keeps its shape and dtype
    "neg": lambda x: -x, "reciprocal": ac.reciprocal, "pow": lambda x: x ** 2.5, "exp": ac.exp,
    "log": ac.log, "log1p": ac.log1p, "sqrt": ac.sqrt, "abs": ac.abs, "tanh": ac.tanh,
    "sigmoid": ac.sigmoid, "relu": ac.relu, "softplus": ac.softplus, "erf": ac.erf,
    "x + k": lambda x: x + 1.5, "k - x": lambda x: 1.5 - x, "x * k": lambda x: x * 3, "x / k": lambda x: x / 7.0,
}


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("name", ONE_INPUT)
def test_one_input_ops_give_gradients_in_their_inputs_shape_and_dtype(name, dtype):
    x = Value(np.array([[0.5, 1.5, 2.0]], dtype=dtype))
    y = ONE_INPUT[name](x)
    assert y.dtype == dtype
    y.backward(np.ones_like(y.data))
    assert x.grad.dtype == dtype and x.grad.shape == x.shape
    local = y._op.local_gradient(y, [i for i, inp in enumerate(y.inputs) if inp is x][0])
    np.testing.assert_allclose(x.grad, np.broadcast_to(local, x.shape), rtol=1e-3)
