"""The operation registry: the contract that compiled programs, drawings and
the stepper build on, and declaring a new operation in one place."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import autograd_core as ac
from autograd_core import Value
from autograd_core.ops import OPS, Op

from engine_op_cases import ALL_CASES

FEW = settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)


def _replays_bit_for_bit(root):
    """Every recorded node behind `root`: forward(*input data, **params) is its data, bit for bit."""
    checked = 0
    for node in ac.topological_order([root]):
        if node._op is None:
            continue
        assert isinstance(node._params, dict) and isinstance(node._inputs, tuple)
        assert all(isinstance(inp, Value) for inp in node._inputs)
        assert OPS.get(node._op.name) is node._op or node._op.name == "pow"  # pow's number form shares the name
        again = node._op.forward(*[inp._data for inp in node._inputs], **node._params)
        if node._op.saves:  # (output, what a rule needs again), the latter kept on the node if that rule will run
            again, *kept = again
            for (key, reader), array in zip(node._op.saves.items(), kept):
                if node._inputs[node._op.inputs.index(reader)].requires_grad:
                    assert np.array_equal(array, node._saved[key], equal_nan=True), (node._op.name, key)
                else:
                    assert node._saved is None or key not in node._saved, (node._op.name, key)
        else:
            assert node._saved is None, node._op.name
        assert type(again) is type(node._data), node._op.name
        assert np.asarray(again).dtype == node.dtype and np.shape(again) == node.shape, node._op.name
        assert np.array_equal(again, node._data, equal_nan=True), node._op.name
        checked += 1
    return checked


@pytest.mark.parametrize("case", ALL_CASES, ids=lambda c: c.id)
@FEW
@given(data=st.data())
def test_forward_with_params_reproduces_every_node_and_every_backward_node(case, data):
    arrays, params = case.draw(data, case.elements)
    values = [Value(a) for a in arrays]
    out = case.build(params, *values)
    assert _replays_bit_for_bit(out) >= 1
    # the backward graph (create_graph=True) is made of such nodes too
    weights = np.random.default_rng(0).standard_normal(out.shape)
    grads = ac.grad((out * weights).sum(), values, create_graph=True, allow_unused=True)
    for g in grads:
        if isinstance(g, Value) and g.requires_grad:
            _replays_bit_for_bit(g)


def test_every_op_declares_its_parts():
    for name, op in OPS.items():
        assert op.name == name and op.formula and callable(op.forward)
        assert op.variadic or len(op.grads) == len(op.inputs)
        assert op.random is False  # no op of the engine draws random numbers today
        assert op.function is not None and getattr(ac, op.function.__name__) is op.function
        for method in op.methods:
            assert getattr(Value, method) is op.function


def test_exports_and_methods_are_derived_from_the_registry():
    names = {op.function.__name__ for op in OPS.values()}
    assert names <= set(ac.__all__) and names <= set(ac.ops.__all__)
    assert Value.__add__ is ac.add and Value.tanh is ac.tanh and Value.__matmul__ is ac.matmul


def test_a_new_operation_in_a_few_lines_works_everywhere():
    # d(x^3)/dx = 3 x^2: one declaration and its function
    cube_op = Op(
        "cube_for_test", lambda x: x ** 3, inputs="x", elementwise=True,
        d_x=lambda x, out: 3 * x * x, formula="d(x^3)/dx = 3 x^2", methods=("cube_for_test",),
    )

    @cube_op.public
    def cube_for_test(x):
        """x ** 3, elementwise."""
        return cube_op.apply(ac.ops.as_value(x))

    try:
        x = Value(np.array([0.5, -2.0]), label="x")
        y = x.cube_for_test()  # a method
        assert y.op == "cube_for_test" and ac.cube_for_test is cube_for_test  # exported by the package
        y.sum().backward()
        np.testing.assert_allclose(x.grad, 3 * x.data ** 2)
        assert ac.gradcheck(lambda v: v.cube_for_test().tanh(), [np.array([0.3, -1.2])])
        source = ac.draw_graph(Value(2.0, label="u").cube_for_test(), show_local_gradients=True).source
        assert "cube_for_test" in source and "dL/du = 12" in source  # the node, and its local gradient on the edge
        u = Value(2.0, label="u")
        v = u.cube_for_test()
        v.label = "v"
        (step,) = list(ac.BackpropStepper(v))
        (inp, local, product) = step.contributions[0]
        assert inp is u and float(local) == 12.0 and float(product) == 12.0  # 3 u^2 at u = 2
        w = Value(2.0)
        (first,) = ac.grad(w.cube_for_test(), w, create_graph=True)
        (second,) = ac.grad(first, w)
        assert float(first.data) == 12.0 and float(second) == 12.0  # 6 w
    finally:
        OPS.pop("cube_for_test")
        delattr(Value, "cube_for_test")
        ac.ops.__all__.remove("cube_for_test")
        ac.__all__.remove("cube_for_test")
        del ac.ops.cube_for_test, ac.cube_for_test


def test_an_operation_with_parameters_and_a_vector_jacobian_product():
    # a structural op declared outside ops.py: the rule gets the upstream gradient first
    scale_rows = Op(
        "scale_rows_for_test", lambda x, factor: x * factor, inputs="x",
        d_x=lambda g, x, out, factor: g * factor, formula="dL/dx = g * factor", register=False,
    )
    x = Value(np.ones((2, 2)))
    y = scale_rows.apply(x, factor=np.array([[1.0], [3.0]]))
    assert y._params["factor"].tolist() == [[1.0], [3.0]]
    y.sum().backward()
    assert x.grad.tolist() == [[1.0, 1.0], [3.0, 3.0]]
    assert ac.gradcheck(lambda v: scale_rows.apply(v, factor=2.5).sum(), [np.ones(3)])


def test_an_operation_that_saves_for_its_backward():
    # y = x / sum(x): the forward keeps the sum it computed; the rule reads it instead of summing again
    calls = []

    def forward(x):
        total = x.sum()
        calls.append("forward")
        return x / total, total

    def d_x(g, x, out, total=None):
        calls.append("rule")
        total = x.sum() if total is None else total  # None: not kept, computed again
        return (g - (g * out).sum()) / total

    normalise = Op("normalise_for_test", forward, inputs="x", saves={"total": "x"}, d_x=d_x,
                   formula="dL/dx = (g - sum(g * y)) / sum(x)", register=False)
    x = Value(np.array([1.0, 2.0, 5.0]))
    y = normalise.apply(x)
    assert y.data.tolist() == [0.125, 0.25, 0.625] and y._saved == {"total": 8.0}
    (y * np.array([1.0, 0.0, 0.0])).sum().backward(retain_graph=True)
    # d(x0 / s)/dx = (1/s - x0/s^2, -x0/s^2, -x0/s^2) with s = 8
    np.testing.assert_allclose(x.grad, [7 / 64, -1 / 64, -1 / 64])
    assert y._saved is not None  # kept: the graph was retained
    x.grad = None
    (y * np.array([1.0, 0.0, 0.0])).sum().backward()
    np.testing.assert_allclose(x.grad, [7 / 64, -1 / 64, -1 / 64])
    assert y._saved is None  # a backward that frees the graph lets it go
    assert calls == ["forward", "rule", "rule"]  # the sum was computed once
    with ac.no_grad():
        assert normalise.apply(x)._saved is None  # nothing recorded, nothing kept
    assert ac.gradcheck(lambda v: (normalise.apply(v) * np.array([1.0, 2.0, 3.0])).sum(), [np.array([1.0, 2.0, 5.0])])


def test_a_convolution_keeps_its_im2col_rows_until_its_backward():
    from autograd_core.conv import conv2d, im2col

    rng = np.random.default_rng(0)
    x, w = Value(rng.standard_normal((2, 3, 5, 5)), label="x"), Value(rng.standard_normal((4, 3, 3, 3)))
    y = conv2d(x, w, padding=1)
    rows = y._saved["rows"]
    assert rows.shape == (2 * 5 * 5, 3 * 3 * 3)
    np.testing.assert_array_equal(rows, im2col(x.data, y._params["geo"]))
    y.sum().backward()
    assert y._saved is None
    # dL/dW = im2col(X)^T @ dL/dY with dL/dY = 1: each tap's sum over every window, in W's layout
    expected = rows.sum(axis=0).reshape(3, 3, 3).transpose(2, 0, 1)  # rows are (tap i, tap j, channel)
    np.testing.assert_allclose(w.grad, np.broadcast_to(expected, w.shape), rtol=1e-12)
    # a frozen weight (a fixed filter bank): no rule will read the rows, so the node does not keep them
    y = conv2d(x, Value(w.data, requires_grad=False), padding=1)
    assert y._saved is None
    # a rule given no rows makes them again: the same dL/dW
    y = conv2d(x, w, padding=1)
    y._saved = None
    w.grad = None
    y.sum().backward()
    np.testing.assert_allclose(w.grad, np.broadcast_to(expected, w.shape), rtol=1e-12)


def test_a_saving_op_declared_wrongly_is_told_what_to_write():
    with pytest.raises(TypeError, match=r"saves must map .* saves=\{'rows': 'weight'\}"):
        Op("bad_saves_for_test", lambda x: (x, x), inputs="x", saves="rows", d_x=lambda g, x, out, rows=None: g,
           formula="-", register=False)
    with pytest.raises(TypeError, match="names an input that is not among"):
        Op("bad_saves_for_test", lambda x: (x, x), inputs="x", saves={"rows": "w"}, d_x=lambda g, x, out, rows=None: g,
           formula="-", register=False)
    # a forward that forgets to return what it saves: refused, not unpacked along the array's first axis
    forgetful = Op("forgetful_for_test", lambda x: x * 2, inputs="x", saves={"rows": "x"},
                   d_x=lambda g, x, out, rows=None: 2 * g, formula="-", register=False)
    with pytest.raises(TypeError, match=r"must return \(output, rows\) from its forward, got ndarray"):
        forgetful.apply(Value(np.ones((2, 3))))
