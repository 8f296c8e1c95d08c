"""micrograd's own two tests, run on this engine, compared with PyTorch in
float64 with `==`: scalar Values must give bit-identical results and gradients.
Then the same class on tensors: broadcasting, with gradients summed back to
each input's shape."""

import numpy as np
import pytest

from autograd_core import Value


def micrograd_sanity_check(make):
    """micrograd's test_sanity_check: + * relu, reflected forms, reused nodes."""
    x = make(-4.0)
    z = 2 * x + 2 + x
    q = z.relu() + z * x
    h = (z * z).relu()
    y = h + q + q * x
    y.backward()
    return x, y


def micrograd_more_ops(make):
    """micrograd's test_more_ops: + - * / **, reflected forms, +=, unary minus, relu."""
    a = make(-4.0)
    b = make(2.0)
    c = a + b
    d = a * b + b**3
    c += c + 1
    c += 1 + c + (-a)
    d += d * 2 + (b + a).relu()
    d += 3 * d + (b - a).relu()
    e = c - d
    f = e**2
    g = f / 2.0
    g += 10.0 / f
    g.backward()
    return a, b, g


def _torch_scalar(torch):
    return lambda v: torch.tensor(v, dtype=torch.float64, requires_grad=True)


def test_sanity_check_is_bit_identical_to_pytorch():
    torch = pytest.importorskip("torch")
    x, y = micrograd_sanity_check(Value)
    xt, yt = micrograd_sanity_check(_torch_scalar(torch))
    assert y.data == yt.item()
    assert x.grad == xt.grad.item()
    # the numbers micrograd's README prints for this graph
    assert (y.data, x.grad) == (-20.0, 46.0)


def test_more_ops_is_bit_identical_to_pytorch():
    torch = pytest.importorskip("torch")
    a, b, g = micrograd_more_ops(Value)
    at, bt, gt = micrograd_more_ops(_torch_scalar(torch))
    assert g.data == gt.item()
    assert a.grad == at.grad.item()
    assert b.grad == bt.grad.item()
    # and close to the values micrograd's test file checks (to 1e-6)
    assert abs(g.data - 24.70408163265306) < 1e-6
    assert abs(a.grad - 138.83381924198252) < 1e-6
    assert abs(b.grad - 645.5772594752186) < 1e-6


def test_scalar_results_are_float64_scalars_like_python_numbers():
    x, y = micrograd_sanity_check(Value)
    assert y.shape == () and y.dtype == np.float64 and x.grad.dtype == np.float64
    assert isinstance(float(y.data), float)


def test_same_results_as_micrograd_itself():
    """Where micrograd is installed, its own engine agrees. Not bit for bit:
    micrograd walks each node's inputs from a Python set, so the order in
    which it adds up gradients (and the last bit of b.grad in test_more_ops)
    changes from run to run; PyTorch's order, which this engine matches, does not."""
    micrograd_engine = pytest.importorskip("micrograd.engine")
    x, y = micrograd_sanity_check(Value)
    xm, ym = micrograd_sanity_check(micrograd_engine.Value)
    assert (y.data, x.grad) == (ym.data, xm.grad)
    a, b, g = micrograd_more_ops(Value)
    am, bm, gm = micrograd_more_ops(micrograd_engine.Value)
    assert g.data == gm.data
    assert a.grad == pytest.approx(am.grad, rel=1e-15) and b.grad == pytest.approx(bm.grad, rel=1e-15)


def test_plus_equals_builds_a_new_node_and_keeps_the_old_one():
    a = Value(1.0)
    b = a
    b += 2  # micrograd semantics: b is a new node, a is untouched
    assert b is not a and a.data == 1.0 and b.data == 3.0 and b.op == "add"


# ---- tensors: NumPy broadcasting, gradients summed back to input shapes ----
BROADCAST_SHAPES = [
    ((2, 3), (3,)),
    ((2, 3), (1, 3)),
    ((2, 1), (1, 3)),
    ((4, 2, 3), (2, 1)),
    ((3,), ()),
    ((), (2, 2)),
    ((1,), (5,)),
]


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "pow"])
@pytest.mark.parametrize("shape_a,shape_b", BROADCAST_SHAPES)
def test_broadcast_gradients_match_pytorch(op, shape_a, shape_b):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    a_data = rng.uniform(0.5, 2.0, shape_a)
    b_data = rng.uniform(0.5, 2.0, shape_b)
    fn = {
        "add": lambda a, b: a + b,
        "sub": lambda a, b: a - b,
        "mul": lambda a, b: a * b,
        "div": lambda a, b: a / b,
        "pow": lambda a, b: a**b,
    }[op]
    a, b = Value(a_data), Value(b_data)
    out = fn(a, b)
    upstream = rng.standard_normal(out.shape)
    out.backward(upstream)

    at = torch.tensor(a_data, requires_grad=True)
    bt = torch.tensor(b_data, requires_grad=True)
    outt = fn(at, bt)
    outt.backward(torch.tensor(upstream))

    assert a.grad.shape == shape_a and b.grad.shape == shape_b
    np.testing.assert_allclose(out.data, outt.detach().numpy(), rtol=1e-15, atol=0)
    np.testing.assert_allclose(a.grad, at.grad.numpy(), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(b.grad, bt.grad.numpy(), rtol=1e-13, atol=1e-15)


def test_broadcast_gradient_is_the_sum_over_the_copies():
    """Worked by hand: a bias of shape (3,) added to 4 rows gets 4 x the upstream."""
    X = Value(np.zeros((4, 3)), requires_grad=False)
    bias = Value(np.array([1.0, 2.0, 3.0]))
    column = Value(np.ones((4, 1)))
    ((X + bias) * column).sum().backward()
    np.testing.assert_array_equal(bias.grad, [4.0, 4.0, 4.0])
    # d/d column_i of sum_j bias_j * column_i = sum_j bias_j = 6
    np.testing.assert_array_equal(column.grad, np.full((4, 1), 6.0))
