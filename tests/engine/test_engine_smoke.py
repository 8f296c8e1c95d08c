import numpy as np

from autograd_core import Value


def test_lecture_graph_gradients():
    a, b, c, f = Value(2.0), Value(-3.0), Value(10.0), Value(-2.0)
    L = (a * b + c) * f
    L.backward()
    assert L.data == -8.0
    assert (a.grad, b.grad, c.grad, f.grad) == (6.0, -4.0, -2.0, 4.0)


def test_tensor_broadcast_gradient_is_summed_back():
    X = Value(np.arange(6.0).reshape(2, 3), requires_grad=False)
    bias = Value(np.zeros(3))
    (X + bias).sum().backward()
    assert X.grad is None
    np.testing.assert_array_equal(bias.grad, [2.0, 2.0, 2.0])
