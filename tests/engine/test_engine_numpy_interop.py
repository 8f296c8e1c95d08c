"""NumPy functions called with a Value, float(v), and the small API gaps:
nothing may silently drop the graph or silently change a gradient."""

import copy
import math
import pickle
import warnings

import numpy as np
import pytest

import autograd_core as ac
from autograd_core import GraphDroppedWarning, Value, no_grad


# ---- NumPy functions and ufuncs are refused, naming the engine operation ----
def test_the_reproducer_np_clip_is_refused_naming_clip():
    x = Value(np.array([0.5, 2.0]))
    with pytest.raises(TypeError, match=r"np\.clip.*v\.clip\(min=None, max=None\) \(or autograd_core\.clip\(v, \.\.\.\)\)"):
        (x * np.clip(x, 0, 1)).sum().backward()
    # what to do instead gives the true gradient [1, 1]: d(x clip(x))/dx = clip(x) + x * inside
    (x * x.clip(0, 1)).sum().backward()
    assert x.grad.tolist() == [1.0, 1.0]


@pytest.mark.parametrize(
    "call, engine_op",
    [
        (lambda x: np.where(x.data > 1, x, 0.0), "autograd_core.where"),
        (lambda x: np.concatenate([x, x]), "autograd_core.concatenate"),
        (lambda x: np.stack([x, x]), "autograd_core.stack"),
        (lambda x: np.dot(x, x), "a @ b"),
        (lambda x: np.linalg.norm(x), r"\(v \*\* 2\)\.sum\(\)\.sqrt\(\)"),
        (lambda x: np.sum(x), r"v\.sum\("),
        (lambda x: np.mean(x), r"v\.mean\("),
        (lambda x: np.exp(x), r"v\.exp\(\)"),
        (lambda x: np.tanh(x), r"v\.tanh\(\)"),
        (lambda x: np.maximum(x, 0.0), "autograd_core.maximum"),
    ],
)
def test_numpy_functions_and_ufuncs_name_the_engine_operation(call, engine_op):
    x = Value(np.array([0.5, 2.0]))
    with pytest.raises(TypeError, match=engine_op) as caught:
        call(x)
    assert "drop the graph" in str(caught.value)
    assert "out=" not in str(caught.value)  # np.sum used to complain about out=


def test_functions_the_engine_lacks_say_so_and_point_to_data():
    x = Value(np.array([2.0, 0.5]))
    with pytest.raises(TypeError, match=r"no median yet.*v\.data"):
        np.median(x)
    with pytest.raises(TypeError, match=r"v\.data.*v\.detach\(\)"):
        np.flip(x)  # no table entry: the generic message


@pytest.mark.parametrize(
    "call, engine_op",
    [
        (lambda x: np.sort(x), r"v\.sort\(axis=-1, descending=False\) \(or autograd_core\.sort\(v, \.\.\.\)\)"),
        (lambda x: np.cumsum(x), r"v\.cumsum\(axis=None\) \(or autograd_core\.cumsum\(v, \.\.\.\)\)"),
        (lambda x: np.prod(x), r"autograd_core\.prod"),
        (lambda x: np.std(x), r"autograd_core\.std"),
        (lambda x: np.sin(x), r"v\.sin\(\) \(or autograd_core\.sin\(v\)\)"),
        (lambda x: np.logaddexp(x, x), r"autograd_core\.logaddexp\(a, b\)"),
        (lambda x: np.take_along_axis(x, np.array([0]), 0), r"autograd_core\.gather"),
        (lambda x: np.einsum("i->", x), r"autograd_core\.einsum"),
        (lambda x: np.argsort(x), r"v\.argsort\(axis=-1, descending=False\) \(or autograd_core\.argsort\(v, \.\.\.\)\)"),
        (lambda x: np.isnan(x), r"autograd_core\.isnan"),
    ],
)
def test_numpy_functions_the_new_operations_replace_are_named_from_the_registry(call, engine_op):
    x = Value(np.array([0.5, 2.0]))
    with pytest.raises(TypeError, match=engine_op):
        call(x)


def test_every_numpy_function_an_operation_declares_is_refused_naming_it():
    # Op(numpy=...) is where the message finds the engine's replacement: every name declared
    # there is answered with the operation's function, operator or method
    from autograd_core.engine import _numpy_refusal

    for op in ac.ops.OPS.values():
        for name in op.numpy:
            message = _numpy_refusal(f"np.{name}", name, "__call__", {})
            written = [f"autograd_core.{op.function.__name__}("] + [f"v.{m}(" for m in op.methods if not m.startswith("__")]
            assert "Use the engine's operation: " in message and any(w in message for w in written), (name, message)


def test_operators_and_methods_are_named_with_their_parameters():
    x = Value(np.array([0.5, 2.0]))
    for call, expected in [
        (lambda: np.negative(x), "Use the engine's operation: -v (or autograd_core.neg(v))."),
        (lambda: np.power(x, x), "Use the engine's operation: a ** b (or autograd_core.pow(base, exponent))."),
        (lambda: np.amax(x), "Use the engine's operation: v.max(axis=None, keepdims=False) (or autograd_core.max(v, ...))."),
        (lambda: np.absolute(x), "Use the engine's operation: v.abs() (or abs(v))."),
        (lambda: np.swapaxes(x, 0, 0), "Use the engine's operation: v.swapaxes(axis1, axis2) (or autograd_core.swapaxes(v, ...))."),
    ]:
        with pytest.raises(TypeError) as caught:
            call()
        assert str(caught.value).endswith(expected)


def test_writing_through_out_is_refused():
    x = Value(np.array([1.0, 2.0]))
    buffer = np.zeros(2)
    with pytest.raises(TypeError, match="out="):
        np.add(buffer, x, out=buffer)
    assert buffer.tolist() == [0.0, 0.0]


def test_np_array_and_asarray_still_give_the_data():
    x = Value(np.array([1.0, 2.0]))
    copied = np.array(x)
    copied[0] = 9.0
    assert x.data.tolist() == [1.0, 2.0]  # np.array copies
    assert np.asarray(x).tolist() == [1.0, 2.0]
    assert np.shape(x) == (2,) and np.ndim(x) == 1 and np.size(x) == 2


def test_operators_with_an_ndarray_on_the_left_still_build_the_graph():
    x = Value(np.array([1.0, 2.0]))
    left = np.array([3.0, 4.0])
    for result, expected_grad in (
        (left + x, [1.0, 1.0]),
        (left - x, [-1.0, -1.0]),
        (left * x, [3.0, 4.0]),
        (left / x, [-3.0, -1.0]),  # -a / x**2
    ):
        assert isinstance(result, Value)
        x.grad = None
        result.sum().backward()
        np.testing.assert_allclose(x.grad, expected_grad)
    assert (np.array([1.5, 1.5]) < x).tolist() == [False, True]
    y = np.eye(2) @ x
    assert isinstance(y, Value) and y.op == "matmul"


# ---- float(v) and math functions ------------------------------------------
def test_math_exp_gives_the_number_and_warns_that_the_graph_is_dropped():
    x = Value(1.0)
    with pytest.warns(GraphDroppedWarning, match=r"v\.exp\(\)"):
        y = math.exp(x)
    assert y == math.exp(1.0) and type(y) is float
    # used again, the number is a constant: the gradient is that of x * const (what the warning says)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GraphDroppedWarning)
        z = x * math.exp(x)
    z.backward()
    assert x.grad == pytest.approx(math.e)


def test_float_is_quiet_where_nothing_is_recorded():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert float(Value(2.0, requires_grad=False)) == 2.0
        with no_grad():
            assert float(Value(2.0)) == 2.0
        assert Value(2.0).item() == 2.0


# ---- x ** y at x = 0, float16 reductions, 0-d axes -------------------------
POW_AT_ZERO = [(0.0, -1.0), (0.0, 0.0), (0.0, 2.0), (0.0, 0.5), (0.0, -0.5)]


@pytest.mark.parametrize("x, y", POW_AT_ZERO)
def test_pow_at_zero_matches_pytorch(x, y):
    torch = pytest.importorskip("torch")
    a, b = Value(x), Value(y)
    (a ** b).backward()
    ta = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    tb = torch.tensor(y, dtype=torch.float64, requires_grad=True)
    (ta ** tb).backward()
    assert float(a.grad) == ta.grad.item() or (np.isnan(a.grad) and math.isnan(ta.grad.item()))
    assert float(b.grad) == tb.grad.item()


def test_pow_at_zero_by_hand():
    # d(a^b)/db = a^b log a: at a = 0 and b < 0 that is inf * -inf = -inf; for b >= 0, a^b is flat in b
    for y, expected in ((-1.0, -np.inf), (-0.5, -np.inf), (0.0, 0.0), (2.0, 0.0)):
        b = Value(y)
        (0 ** b).backward()
        assert float(b.grad) == expected
        b = Value(y)
        (Value(0.0, requires_grad=False) ** b).backward()
        assert float(b.grad) == expected


def test_pow_at_zero_second_derivative_is_not_poisoned_by_the_unused_log():
    b = Value(2.0)
    (g,) = ac.grad(Value(0.0, requires_grad=False) ** b, b, create_graph=True)
    (g2,) = ac.grad(g, b, allow_unused=True)
    assert float(g.data) == 0.0 and (g2 is None or float(g2) == 0.0)


def test_float16_mean_over_70000_elements_has_gradient_one_over_n():
    x = Value(np.ones(70_000, dtype=np.float16))
    x.mean().backward()
    assert x.grad.dtype == np.float16
    assert np.all(x.grad == np.float16(1 / 70_000)) and x.grad[0] > 0


def test_float16_mean_gradient_matches_pytorch():
    torch = pytest.importorskip("torch")
    data = np.random.default_rng(0).standard_normal((70_000, 2)).astype(np.float16)
    x = Value(data)
    x.mean(axis=0).sum().backward()
    t = torch.tensor(data, requires_grad=True)
    t.mean(dim=0).sum().backward()
    assert np.array_equal(x.grad, t.grad.numpy())


@pytest.mark.parametrize("targets", ["indices", "probabilities", "weighted"])
def test_float16_cross_entropy_over_70000_rows_is_the_float64_one(targets):
    from nn import functional as F

    rng = np.random.default_rng(1)
    logits = rng.standard_normal((70_000, 3))
    labels = rng.integers(0, 3, 70_000)
    target = np.eye(3)[labels] if targets == "probabilities" else labels
    weight = np.array([1.0, 2.0, 0.5]) if targets == "weighted" else None
    half, full = Value(logits.astype(np.float16)), Value(logits)
    loss_half = F.cross_entropy(half, target, weight=None if weight is None else weight.astype(np.float16))
    loss_full = F.cross_entropy(full, target, weight=weight)
    loss_half.backward()
    loss_full.backward()
    assert loss_half.dtype == np.float16
    assert float(loss_full.data) > 1.0
    assert float(loss_half.data) == pytest.approx(float(loss_full.data), rel=2e-3)  # float16 rounding
    np.testing.assert_allclose(half.grad.astype(np.float64), full.grad, rtol=0.02, atol=2e-7)
    assert np.abs(half.grad).max() > 0


def test_softmax_of_a_0d_value_is_one_as_in_pytorch():
    x = Value(0.5)
    s = x.softmax()
    s.backward()
    assert float(s.data) == 1.0 and float(x.grad) == 0.0
    assert float(Value(0.5).log_softmax().data) == 0.0
    assert float(Value(3.0).sum(axis=-1).data) == 3.0
    with pytest.raises(ac.ShapeError):
        Value(0.5).softmax(axis=1)
    torch = pytest.importorskip("torch")
    t = torch.tensor(0.5, requires_grad=True)
    torch.softmax(t, dim=-1).backward()
    assert float(x.grad) == t.grad.item()


# ---- decorators, pickling, complex gradients ------------------------------
def test_no_grad_works_as_a_decorator_without_parentheses():
    @no_grad
    def double(v):
        return v * 2

    @no_grad()
    def triple(v):
        return v * 3

    x = Value(1.0)
    assert double(x).requires_grad is False and triple(x).requires_grad is False
    assert ac.is_grad_enabled()
    assert (x * 2).requires_grad
    with pytest.raises(TypeError, match="no_grad"):
        no_grad(5)


def test_pickling_a_non_leaf_keeps_its_data_as_a_leaf_like_pytorch():
    x = Value(np.array([1.0, 2.0]), label="x")
    y = x * 2
    y.label = "y"
    copy_of_y = pickle.loads(pickle.dumps(y))
    assert copy_of_y.is_leaf and copy_of_y.requires_grad and copy_of_y.label == "y"
    assert copy_of_y.data.tolist() == [2.0, 4.0] and copy_of_y.grad is None
    (copy_of_y * copy_of_y).sum().backward()  # a leaf of its own graph
    assert copy_of_y.grad.tolist() == [4.0, 8.0] and x.grad is None
    torch = pytest.importorskip("torch")
    t = torch.tensor([1.0, 2.0], requires_grad=True) * 2
    t_copy = pickle.loads(pickle.dumps(t))
    assert (t_copy.is_leaf, t_copy.requires_grad) == (copy_of_y.is_leaf, copy_of_y.requires_grad)


def test_a_copied_leaf_is_a_new_node_usable_beside_the_original():
    w = Value(np.array([1.0, 2.0]))
    w2 = copy.deepcopy(w)
    assert w2 is not w and w2._id != w._id
    (w * 3 + w2 * 5).sum().backward()  # both in one graph: each gets its own gradient
    assert w.grad.tolist() == [3.0, 3.0] and w2.grad.tolist() == [5.0, 5.0]


def test_a_complex_grad_set_by_hand_is_refused():
    x = Value(np.array([1.0, 2.0]))
    x.grad = np.array([1j, 2j])
    with pytest.raises(TypeError, match="complex128.*real"):
        (x * 3).sum().backward()
    x.zero_grad()
    (x * 3).sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]
