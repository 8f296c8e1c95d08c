"""The operations of ops_math.py and ops_select.py by worked examples (numbers
computed by hand in the comments), their conventions (zeros, ties, constant
inputs), their errors, and their place in the registry, drawings and the
stepper. PyTorch comparisons are in test_engine_more_ops_vs_torch.py."""

import numpy as np
import pytest

import autograd_core as ac
from autograd_core import (
    OPS,
    BackpropStepper,
    ShapeError,
    Value,
    draw_graph,
    grad,
    gradcheck,
)


# ---- statistics: zeros, constant groups ---------------------------------------
def test_prod_gradient_with_one_zero_and_with_two():
    x = Value([2.0, 0.0, 5.0, 3.0])
    x.prod().backward()
    assert x.grad.tolist() == [0.0, 30.0, 0.0, 0.0]  # only the zero moves the product: by 2 * 5 * 3
    y = Value([0.0, 4.0, 0.0])
    y.prod().backward()
    assert y.grad.tolist() == [0.0, 0.0, 0.0]  # two zeros: moving any one element leaves a zero behind


def test_prod_over_an_axis_by_hand():
    x = Value([[1.0, 2.0, 3.0], [4.0, 0.0, 6.0]])
    p = x.prod(axis=1)
    assert p.data.tolist() == [6.0, 0.0]
    p.sum().backward()
    assert x.grad.tolist() == [[6.0, 3.0, 2.0], [0.0, 24.0, 0.0]]


def test_cumprod_gradient_with_a_zero_by_hand():
    # c = (2, 2*0, 2*0*3): d(sum c)/dx0 = 1 + x1 + x1 x2 = 1, /dx1 = x0 + x0 x2 = 8, /dx2 = x0 x1 = 0
    x = Value([2.0, 0.0, 3.0])
    ac.cumprod(x).sum().backward()
    assert x.grad.tolist() == [1.0, 8.0, 0.0]
    # two zeros: only the first one and what comes before it get a gradient
    x = Value([2.0, 0.0, 3.0, 0.0, 5.0])
    ac.cumprod(x).sum().backward()
    assert x.grad.tolist() == [1.0, 8.0, 0.0, 0.0, 0.0]


def test_cumprod_with_zeros_is_differentiable_twice():
    x = np.array([[1.5, 0.0, -2.0, 0.5], [0.0, 1.0, 0.0, 2.0]])
    assert gradcheck(lambda v: ac.cumprod(v, axis=1) * ac.cumprod(v, axis=1), [Value(x)])
    v = Value(x)
    (g,) = grad((ac.cumprod(v, 1) ** 2).sum(), v, create_graph=True)
    (h,) = grad(g.sum(), v)
    eps = 1e-6
    numeric = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        shifted = []
        for step in (eps, -eps):
            probe = x.copy()
            probe[i] += step
            w = Value(probe)
            (gw,) = grad((ac.cumprod(w, 1) ** 2).sum(), w)
            shifted.append(gw.sum())
        numeric[i] = (shifted[0] - shifted[1]) / (2 * eps)
    np.testing.assert_allclose(h, numeric, rtol=1e-5, atol=1e-6)


def test_std_by_hand_and_zero_gradient_on_a_constant_group():
    x = Value([1.0, 2.0, 3.0, 6.0])
    s = x.std(ddof=1)  # sample variance 14/3
    np.testing.assert_allclose(float(s.data), np.sqrt(14 / 3))
    s.backward()
    np.testing.assert_allclose(x.grad, (x.data - 3) / (3 * np.sqrt(14 / 3)))
    flat = Value([[2.0, 2.0], [1.0, 3.0]])
    flat.std(axis=1).sum().backward()
    assert flat.grad.tolist() == [[0.0, 0.0], [-0.5, 0.5]]  # PyTorch's 0 where std = 0, not 0/0


def test_cumsum_flattens_without_an_axis_as_numpy():
    x = Value([[1.0, 2.0], [3.0, 4.0]])
    assert ac.cumsum(x).data.tolist() == [1.0, 3.0, 6.0, 10.0]
    assert x.cumsum(1).data.tolist() == [[1.0, 3.0], [3.0, 7.0]]



@pytest.mark.parametrize("op", [ac.cumsum, ac.cumprod])
def test_cumulative_ops_of_a_0d_value_take_axis_0_or_minus_1_only(op):
    # a 0-d input has one axis to run along at most, as in PyTorch: 0 or -1 keep the shape ()
    for axis in (0, -1):
        x = Value(3.0)
        c = op(x, axis=axis)
        assert c.shape == () and float(c.data) == 3.0
        c.backward()
        assert x.grad == 1.0
    assert op(Value(3.0)).shape == (1,)  # axis=None flattens, as NumPy
    for axis in (1, 7, -2):
        with pytest.raises(ShapeError, match=rf"{op.__name__}: axis {axis} is out of range for an input with 0 dimensions"):
            op(Value(3.0), axis=axis)

# ---- selection: ties and indices ------------------------------------------------
def test_sort_is_stable_and_sends_each_gradient_back_to_its_element():
    x = Value([3.0, 1.0, 3.0, 1.0])
    s = ac.sort(x)
    assert s.data.tolist() == [1.0, 1.0, 3.0, 3.0]
    (s * Value([1.0, 10.0, 100.0, 1000.0])).sum().backward()
    # stable: the first 1.0 (index 1) is first, the first 3.0 (index 0) third
    assert x.grad.tolist() == [100.0, 1.0, 1000.0, 10.0]
    assert ac.argsort(x).tolist() == [1, 3, 0, 2]
    assert ac.argsort(x, descending=True).tolist() == [0, 2, 1, 3]  # ties keep their order descending too


def test_topk_values_indices_and_gradient():
    x = Value([[1.0, 5.0, 3.0], [4.0, 4.0, 0.0]])
    values, indices = ac.topk(x, 2, axis=1)
    assert values.data.tolist() == [[5.0, 3.0], [4.0, 4.0]]
    assert indices.tolist() == [[1, 2], [0, 1]]
    assert indices.dtype.kind == "i" and not isinstance(indices, Value)
    (values * Value([[1.0, 2.0], [3.0, 4.0]])).sum().backward()
    assert x.grad.tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 0.0]]
    smallest, where = ac.topk(Value([2.0, -1.0, 7.0]), 1, largest=False)
    assert smallest.data.tolist() == [-1.0] and where.tolist() == [1]


def test_argmin_argmax_are_plain_integer_arrays():
    x = Value([[1.0, 5.0], [7.0, 7.0]])
    assert int(ac.argmax(x)) == 2 and x.argmax(axis=1).tolist() == [1, 0]  # ties: the first
    assert ac.argmin(x, axis=0).tolist() == [0, 0]
    assert not isinstance(ac.argmax(x), Value)
    with pytest.raises(ShapeError, match="argmax"):
        ac.argmax(Value(np.zeros((0,))))


# ---- attention blocks --------------------------------------------------------------
def test_causal_attention_with_einsum_and_tril_by_hand():
    q = Value([[1.0, 0.0], [0.0, 1.0]])
    k = Value([[1.0, 1.0], [2.0, 0.0]])
    scores = ac.einsum("qd,kd->qk", q, k)
    assert scores.data.tolist() == [[1.0, 2.0], [1.0, 0.0]]
    masked = ac.where(np.tril(np.ones((2, 2))) == 1, scores, -np.inf)
    weights = ac.softmax(masked, axis=-1)
    assert weights.data[0].tolist() == [1.0, 0.0]  # the first query sees only the first key
    weights.sum().backward()
    assert q.grad.shape == (2, 2) and k.grad.shape == (2, 2)
    assert ac.tril(Value(np.ones((2, 3))), k=-1).data.tolist() == [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]


def test_einsum_gradient_of_a_letter_summed_in_one_operand():
    # y = sum_ij A_ij b_j: dy/dA_ij = b_j (broadcast over i), dy/db_j = sum_i A_ij
    A = Value([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    b = Value([10.0, 100.0])
    y = ac.einsum("ij,j->", A, b)
    assert float(y.data) == 9 * 10 + 12 * 100
    y.backward()
    assert A.grad.tolist() == [[10.0, 100.0]] * 3 and b.grad.tolist() == [9.0, 12.0]


def test_large_einsum_takes_the_blas_path_and_replays_it_bit_for_bit():
    rng = np.random.default_rng(0)
    q, k = Value(rng.standard_normal((4, 32, 40))), Value(rng.standard_normal((4, 48, 40)))
    scores = ac.einsum("bqd,bkd->bqk", q, k)
    assert scores._params["optimize"] is True
    replay = scores._op.forward(*[v.data for v in scores.inputs], **scores._params)
    assert np.array_equal(replay, scores.data)
    np.testing.assert_allclose(scores.data, q.data @ k.data.transpose(0, 2, 1), rtol=1e-12)
    small = ac.einsum("ij,jk->ik", Value(np.ones((2, 3))), Value(np.ones((3, 2))))
    assert small._params["optimize"] is False  # planning would cost more than the product


def test_einsum_errors_name_the_operation():
    with pytest.raises(ValueError, match="einsum: a letter repeated within one operand"):
        ac.einsum("ii->", Value(np.eye(2)))
    with pytest.raises(ValueError, match="einsum: 'ij,jk->ik' names 2 operands, got 1"):
        ac.einsum("ij,jk->ik", Value(np.eye(2)))
    with pytest.raises(ShapeError, match=r"einsum: operands of shapes \[\(2, 3\), \(2, 3\)\]"):
        ac.einsum("ij,jk->ik", Value(np.ones((2, 3))), Value(np.ones((2, 3))))
    with pytest.raises(ShapeError, match="einsum: subscripts 'ijk' do not fit"):
        ac.einsum("ijk->", Value(np.ones((2, 3))))


# ---- indexing ---------------------------------------------------------------------
def test_gather_and_scatter_add_are_each_others_backward():
    x = Value([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    index = np.array([[2, 2], [0, 1]])
    y = ac.gather(x, 1, index)
    assert y.data.tolist() == [[3.0, 3.0], [4.0, 5.0]]
    (dx,) = grad((y * Value([[1.0, 2.0], [3.0, 4.0]])).sum(), x, create_graph=True)
    assert dx.data.tolist() == [[0.0, 0.0, 3.0], [3.0, 4.0, 0.0]]  # x[0, 2] read twice: 1 + 2
    assert dx.op == "scatter_add"
    target = ac.scatter_add(Value(np.zeros((2, 3))), 1, index, Value([[1.0, 2.0], [3.0, 4.0]]))
    np.testing.assert_array_equal(target.data, dx.data)


def test_index_errors_name_the_operation():
    x = Value(np.zeros((2, 3)))
    with pytest.raises(IndexError, match=r"gather: index values must lie in \[0, 2\]"):
        ac.gather(x, 1, np.array([[3], [0]]))
    with pytest.raises(IndexError, match=r"gather: index values must lie in \[0, 2\]"):
        ac.gather(x, 1, np.array([[-1], [0]]))  # no negative indices, as in PyTorch
    with pytest.raises(ShapeError, match="gather: the input needs at least one dimension"):
        ac.gather(Value(1.0), 0, np.array(0))
    with pytest.raises(TypeError, match="gather: index must hold integers"):
        ac.gather(x, 1, np.array([[0.0], [1.0]]))
    with pytest.raises(ShapeError, match="gather: index must have as many dimensions"):
        ac.gather(x, 1, np.array([0, 1]))
    with pytest.raises(ShapeError, match="gather: index of shape"):
        ac.gather(x, 1, np.zeros((3, 1), dtype=int))
    with pytest.raises(ShapeError, match="scatter_add: src"):
        ac.scatter_add(x, 0, np.zeros((2, 3), dtype=int), Value(np.zeros((1, 3))))
    with pytest.raises(ShapeError, match="diag"):
        ac.diag(Value(np.zeros((2, 2, 2))))
    with pytest.raises(ShapeError, match="tril: needs a matrix"):
        ac.tril(Value([1.0, 2.0]))
    with pytest.raises(ShapeError, match="repeat: repeats must be"):
        ac.repeat(Value([1.0, 2.0]), [1, 2, 3])
    with pytest.raises(ShapeError, match="topk: k=4"):
        ac.topk(Value([1.0, 2.0]), 4)
    with pytest.raises(ShapeError, match="std: 1 elements"):
        ac.std(Value([1.0]), ddof=1)


def test_repeat_is_numpys_and_tile_is_pytorchs_tensor_repeat():
    x = Value([[1.0, 2.0]])
    assert ac.repeat(x, 2, axis=1).data.tolist() == [[1.0, 1.0, 2.0, 2.0]]
    assert x.tile((2, 2)).data.tolist() == [[1.0, 2.0, 1.0, 2.0], [1.0, 2.0, 1.0, 2.0]]
    y = ac.repeat(Value([1.0, 2.0, 3.0]), [2, 0, 1])
    assert y.data.tolist() == [1.0, 1.0, 3.0]


# ---- elementwise ------------------------------------------------------------------
def test_trigonometry_by_hand():
    x = Value([0.0, np.pi / 6, np.pi / 4])
    np.testing.assert_allclose(x.sin().data, [0.0, 0.5, np.sqrt(0.5)], atol=1e-15)
    x.sin().sum().backward()
    np.testing.assert_allclose(x.grad, np.cos(x.data))
    z = Value(0.5)
    ac.arctan(z).backward()
    assert float(z.grad) == 0.8  # 1 / (1 + 1/4)


def test_sign_has_gradient_zero_and_logaddexp_is_stable():
    x = Value([-2.0, 0.0, 3.0])
    x.sign().sum().backward()
    assert x.grad.tolist() == [0.0, 0.0, 0.0]
    a, b = Value(1000.0), Value(1000.0)
    y = ac.logaddexp(a, b)
    np.testing.assert_allclose(float(y.data), 1000 + np.log(2))
    y.backward()
    assert float(a.grad) == 0.5 and float(b.grad) == 0.5


def test_lerp_broadcasts_and_sums_gradients_back():
    start = Value([0.0, 10.0])
    end = Value([[1.0, 20.0], [2.0, 30.0]])
    weight = Value(0.25)
    y = ac.lerp(start, end, weight)
    assert y.data.tolist() == [[0.25, 12.5], [0.5, 15.0]]
    y.sum().backward()
    assert start.grad.tolist() == [1.5, 1.5] and float(weight.grad) == 1 + 10 + 2 + 20


# ---- predicates -------------------------------------------------------------------
def test_predicates_give_boolean_arrays_and_build_no_graph():
    x = Value([1.0, np.nan, np.inf, -np.inf])
    for fn, expected in ((ac.isnan, [False, True, False, False]), (ac.isinf, [False, False, True, True]),
                         (ac.isfinite, [True, False, False, False])):
        result = fn(x)
        assert isinstance(result, np.ndarray) and result.dtype == bool and result.tolist() == expected
    assert x.isnan().tolist() == [False, True, False, False]
    assert bool(ac.any(x > 2)) and not bool(ac.all(x > 0))
    assert ac.all(Value([[1.0, 0.0], [2.0, 3.0]]), axis=1).tolist() == [False, True]
    assert any([False, True]) is True  # Python's any is untouched by the engine's


# ---- the registry, drawings and the stepper ---------------------------------------------
def test_every_new_operation_is_registered_with_a_formula_and_its_numpy_forward():
    new = ["std", "prod", "cumsum", "cumprod", "sort", "topk", "einsum", "tril", "triu", "sin", "cos", "tan",
           "arcsin", "arccos", "arctan", "sinh", "cosh", "arcsinh", "arccosh", "arctanh", "log2", "log10", "exp2",
           "rsqrt", "sign", "logaddexp", "lerp", "relu6", "hardtanh", "hardsigmoid", "hardswish", "mish", "celu",
           "softsign", "logsigmoid", "gather", "scatter_add", "roll", "repeat", "tile", "diag"]
    for name in new:
        op = OPS[name]
        assert op.function is not None and op.formula and op.code, name
        assert getattr(ac, name) is op.function


def test_a_graph_of_new_operations_draws_and_steps():
    x = Value([[0.5, -1.0], [2.0, 0.25]], label="x")
    y = ac.einsum("ij,jk->ik", ac.sort(x, axis=1), ac.tril(x)).sin().cumsum(0).std()
    source = draw_graph(y).source
    for name in ("einsum", "sort", "tril", "sin", "cumsum", "std"):
        assert name in source
    stepper = BackpropStepper(y, retain_graph=True)
    explained = "\n".join(step.explain() for step in stepper)
    assert "sin" in explained and "einsum" in explained
    stepper.finish()
    expected = x.grad.copy()
    x.grad = None
    y.backward()
    np.testing.assert_allclose(x.grad, expected)
