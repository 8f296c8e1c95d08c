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


# ---- running extremes, logcumsumexp -------------------------------------------------
def test_cummax_returns_values_and_indices_by_name_and_by_position():
    result = ac.cummax(Value(np.array([[1.0, 0.0], [2.0, 3.0]])), axis=0)
    values, indices = result
    assert values is result.values and indices is result.indices
    assert values.data.tolist() == [[1.0, 0.0], [2.0, 3.0]] and indices.tolist() == [[0, 0], [1, 1]]
    flat_values, flat_indices = ac.cummin(Value(np.array([[3.0, 1.0], [2.0, 5.0]])))  # axis None: flattened
    assert flat_values.data.tolist() == [3.0, 1.0, 1.0, 1.0] and flat_indices.tolist() == [0, 1, 1, 1]


def test_a_tied_running_maximum_sends_its_gradient_to_the_latest_tie():
    x = Value(np.array([3.0, 1.0, 3.0, 2.0]))
    ac.cummax(x, 0).values.sum().backward()
    assert x.grad.tolist() == [2.0, 0.0, 2.0, 0.0]  # indices [0, 0, 2, 2], as PyTorch's


@pytest.mark.parametrize("name", ["cummax", "cummin", "logcumsumexp"])
def test_scans_refuse_axes_out_of_range(name):
    fn = getattr(ac, name)
    with pytest.raises(ShapeError, match=f"{name}: axis 2 is out of range"):
        fn(Value(np.ones((2, 3))), 2)
    with pytest.raises(TypeError, match="axis must be one int"):
        fn(Value(np.ones((2, 3))), (0, 1))
    with pytest.raises(ShapeError, match="out of range"):
        fn(Value(2.0), 1)


def test_logcumsumexp_of_empty_and_0d_inputs():
    x = Value(np.zeros((0, 3)))
    y = ac.logcumsumexp(x, 0)
    assert y.shape == (0, 3)
    y.sum().backward()
    assert x.grad.shape == (0, 3)
    z = Value(1.5)
    c = ac.logcumsumexp(z, 0)
    c.backward()
    assert c.shape == () and float(c.data) == 1.5 and float(z.grad) == 1.0


def test_logcumsumexp_gradient_with_create_graph_is_the_first_order_one_bit_for_bit():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 5)) * 4
    w = rng.standard_normal((3, 5))
    v = Value(x)
    (plain,) = ac.grad((ac.logcumsumexp(v, 1) * w).sum(), [v])
    v = Value(x)
    (graph,) = ac.grad((ac.logcumsumexp(v, 1) * w).sum(), [v], create_graph=True)
    np.testing.assert_array_equal(graph.data, plain)


# ---- windows ---------------------------------------------------------------------
def test_windows_refuse_bad_sizes_steps_and_axes():
    x = Value(np.arange(10.0))
    with pytest.raises(ShapeError, match=r"windows: size 11 is larger than axis 0 of shape \(10,\) \(10 elements\)"):
        ac.windows(x, 0, 11)
    with pytest.raises(ValueError, match="step must be at least 1"):
        ac.windows(x, 0, 3, 0)
    with pytest.raises(ValueError, match="step must be at least 1"):
        x.windows(0, 3, -2)
    with pytest.raises(ValueError, match="size must be >= 0"):
        ac.windows(x, 0, -1)
    with pytest.raises(TypeError, match="size must be an int"):
        ac.windows(x, 0, 2.5)
    with pytest.raises(ShapeError, match="windows: axis 1 is out of range"):
        ac.windows(x, 1, 2)
    with pytest.raises(TypeError, match="axis must be one int"):
        ac.windows(x, None, 2)
    with pytest.raises(ShapeError, match="larger than the 1 element of a 0-d input"):
        ac.windows(Value(1.0), 0, 2)


def test_windows_of_a_huge_count_are_refused_before_anything_is_allocated(monkeypatch):
    x = Value(np.zeros(2_000_000, dtype=np.float32))
    with pytest.raises(MemoryError, match=r"windows: input \(2000000,\) with size 1000000 and step 1 .*1,000,001 windows.* "
                                          r"needs 3\.6 TiB .*use a larger step"):
        ac.windows(x, 0, 1_000_000, 1)
    monkeypatch.setattr(conv_module, "MAX_WORKSPACE_BYTES", 1000)
    with pytest.raises(MemoryError, match="windows"):
        ac.windows(Value(np.zeros(100)), 0, 10, 1)
    assert ac.windows(Value(np.zeros(100)), 0, 10, 50).shape == (2, 10)  # 160 bytes


def test_overlapping_windows_add_their_gradients_and_gaps_get_none():
    x = Value(np.arange(7.0))
    (ac.windows(x, 0, 3, 2) * np.array([[1.0, 10.0, 100.0]] * 3)).sum().backward()
    # windows [0 1 2], [2 3 4], [4 5 6]: x[2] and x[4] end one window and start the next
    assert x.grad.tolist() == [1.0, 10.0, 101.0, 10.0, 101.0, 10.0, 100.0]
    y = Value(np.arange(7.0))
    ac.windows(y, 0, 2, 3).sum().backward()  # windows [0 1], [3 4]: x[2], x[5] and x[6] are in none
    assert y.grad.tolist() == [1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0]


def test_windows_gradient_twice_both_ways_of_adding_up():
    # more windows than taps (one add per tap) and more taps than windows (one add per window)
    for size, step in ((2, 1), (6, 1), (3, 2)):
        x = np.random.default_rng(size).standard_normal((2, 7))
        assert gradcheck(lambda v: (ac.windows(v, 1, size, step) ** 2).sum(), [x])
        v = Value(np.random.default_rng(1).standard_normal((2, 7)))
        (g,) = ac.grad((ac.windows(v, 1, size, step) ** 3).sum(), [v], create_graph=True)
        (h,) = ac.grad(g.sum(), [v])
        count = np.zeros(7)
        for j in range((7 - size) // step + 1):
            count[j * step:j * step + size] += 1
        np.testing.assert_allclose(h, 6 * v.data * count, rtol=1e-12)  # d2/dx2 of x^3 per window: 6x


# ---- scatter and scatter_reduce -------------------------------------------------------
def test_repeated_scatter_targets_keep_the_last_element_and_only_it_gets_a_gradient():
    x, src = Value(np.zeros(3)), Value(np.array([1.0, 2.0, 3.0, 4.0]))
    out = ac.scatter(x, 0, np.array([0, 2, 0, 0]), src)
    assert out.data.tolist() == [4.0, 0.0, 2.0]
    out.sum().backward()
    assert src.grad.tolist() == [0.0, 1.0, 0.0, 1.0] and x.grad.tolist() == [0.0, 1.0, 0.0]
    assert gradcheck(lambda x, s: (ac.scatter(x, 1, np.array([[1, 1, 0]]), s) ** 2).sum(),
                     [np.random.default_rng(0).standard_normal((2, 3)), np.random.default_rng(1).standard_normal((1, 3))])


def test_both_forms_of_scatter():
    # PyTorch's form, and the backward of indexing (shape=): told apart by shape=
    assert ac.scatter(Value(np.zeros(3)), 0, np.array([1]), Value(np.array([5.0]))).op == "scatter_elements"
    back = ac.scatter(Value(np.array([1.0, 2.0])), shape=(3,), index=np.array([0, 0]))
    assert back.op == "scatter" and back.data.tolist() == [3.0, 0.0, 0.0]
    assert Value(np.zeros(2)).scatter(0, np.array([1]), 7.0).data.tolist() == [0.0, 7.0]


def test_scatter_refuses_bad_input_with_pytorchs_rules():
    x = Value(np.zeros((2, 3)))
    with pytest.raises(IndexError, match=r"index values must lie in \[0, 1\] along axis 0"):
        ac.scatter(x, 0, np.array([[2, 0, 0]]), Value(np.ones((1, 3))))
    with pytest.raises(IndexError, match="index values must lie in"):
        ac.scatter_reduce(x, 1, np.array([[-1]]), Value(np.ones((1, 1))), "sum")
    with pytest.raises(ShapeError, match="index must have as many dimensions"):
        ac.scatter(x, 0, np.array([0, 1]), Value(np.ones(2)))
    with pytest.raises(ShapeError, match="src of shape .* at least as large as index"):
        ac.scatter(x, 0, np.array([[0, 1, 1]]), Value(np.ones((1, 2))))
    with pytest.raises(TypeError, match="index must hold integers"):
        ac.scatter(x, 0, np.array([[0.0]]), Value(np.ones((1, 1))))
    with pytest.raises(ShapeError, match="axis 2 is out of range"):
        ac.scatter(x, 2, np.array([[0]]), Value(np.ones((1, 1))))
    with pytest.raises(TypeError, match=r"src \(float32\) must have the dtype of x \(float64\)"):
        ac.scatter(x, 0, np.array([[0]]), Value(np.ones((1, 1), dtype=np.float32)))
    with pytest.raises(ValueError, match="reduce must be None, 'add' or 'multiply', got 'mean'"):
        ac.scatter(x, 0, np.array([[0]]), Value(np.ones((1, 1))), reduce="mean")
    with pytest.raises(ValueError, match="reduce must be one of 'sum', 'prod', 'mean', 'amax', 'amin', got 'max'"):
        ac.scatter_reduce(x, 0, np.array([[0]]), Value(np.ones((1, 1))), "max")
    with pytest.raises(TypeError, match="include_self must be True or False"):
        ac.scatter_reduce(x, 0, np.array([[0]]), Value(np.ones((1, 1))), "sum", include_self=1)
    with pytest.raises(TypeError, match="src must be a Value, an array or a number"):
        ac.scatter(x, 0, np.array([[0]]), "one")


def test_scatter_reduce_mean_and_untouched_elements():
    x, src = Value(np.array([1.0, 5.0, 9.0])), Value(np.array([2.0, 4.0, 6.0]))
    out = ac.scatter_reduce(x, 0, np.array([0, 0, 2]), src, "mean")
    assert out.data.tolist() == [7.0 / 3.0, 5.0, 7.5]
    out.sum().backward()
    np.testing.assert_allclose(x.grad, [1 / 3, 1.0, 0.5])
    np.testing.assert_allclose(src.grad, [1 / 3, 1 / 3, 0.5])


def test_scatter_reduce_gradients_twice():
    rng = np.random.default_rng(4)
    index = np.array([[0, 1], [0, 0], [2, 1]])
    for reduce in ("sum", "prod", "mean", "amax", "amin"):
        for include_self in (True, False):
            x, src = rng.uniform(0.5, 2, (3, 2)), rng.uniform(0.5, 2, (3, 2))

            def objective(x, s):
                return (ac.scatter_reduce(x, 0, index, s, reduce, include_self=include_self) ** 2).sum()

            xv, sv = Value(x), Value(src)
            first = ac.grad(objective(xv, sv), [xv, sv], create_graph=True)
            second = ac.grad(sum((g * d).sum() for g, d in zip(first, (np.ones_like(x), np.ones_like(src)))), [xv, sv],
                             allow_unused=True)
            eps = 1e-6
            for k, base in enumerate((x, src)):
                numeric = np.zeros_like(base)
                for position in np.ndindex(base.shape):
                    shifted = []
                    for step in (eps, -eps):
                        probe = [x.copy(), src.copy()]
                        probe[k][position] += step
                        pv = [Value(p) for p in probe]
                        shifted.append(sum(float(g.sum()) for g in ac.grad(objective(*pv), pv, allow_unused=True)
                                           if g is not None))
                    numeric[position] = (shifted[0] - shifted[1]) / (2 * eps)
                got = np.zeros_like(base) if second[k] is None else second[k]
                np.testing.assert_allclose(got, numeric, rtol=1e-5, atol=1e-6, err_msg=f"{reduce}, {include_self}, input {k}")


# ---- compile -------------------------------------------------------------------------
def test_compiled_steps_with_the_new_operations_replay_eagers_numbers():
    rng = np.random.default_rng(5)
    w = Value(rng.standard_normal((4, 6)), label="w")
    index = np.array([[0, 1, 2, 3, 0, 1]])

    def loss(x):
        h = x * w
        parts = [
            (h % 0.7).sum(), (h // 0.5 * h).sum(), ac.round(h, 1).sum() * h.sum(), ac.fmod(h, 0.3).sum(),
            ac.cummax(h, 1).values.sum(), ac.cummin(h, 0).values.sum(), ac.logcumsumexp(h, 1).sum(),
            (ac.windows(h, 1, 3, 2) ** 2).sum(), ac.scatter(h, 0, index, h[:1] * 2.0).sum(),
            ac.scatter_reduce(h, 0, index, h[1:2], "amax", include_self=False).sum(),
            ac.scatter_reduce(h, 0, index, h[2:3], "prod").sum(),
        ]
        total = parts[0]
        for part in parts[1:]:
            total = total + part
        return total

    step = ac.compile(loss)
    for call in range(3):
        x = rng.standard_normal((4, 6))
        w.grad = None
        compiled = step(x)
        compiled.backward()
        compiled_grad = w.grad.copy()
        w.grad = None
        eager = loss(x)
        eager.backward()
        assert np.array_equal(compiled.data, eager.data) and np.array_equal(compiled_grad, w.grad), call
    assert step.cache_info()[0] == 1  # traced once, replayed after


def test_compile_remakes_isclose_at_every_call_and_refuses_python_deciding_on_allclose():
    w = Value(np.ones(3), label="w")

    def pick(x):
        v = x * w
        return ac.where(ac.isclose(v, 1.0), v, v * 10.0).sum()  # a mask of the call's own data

    step = ac.compile(pick)
    for x in (np.ones(3), np.array([1.0, 2.0, 1.0 + 1e-9])):
        assert float(step(x).data) == float(pick(x).data)

    def branch(x):
        v = x * 2.0
        return v.sum() if ac.allclose(v, 0.0) else (v * v).sum()

    with pytest.raises(CompileError, match=r"`if` \(or bool\(\)\) on a comparison"):
        ac.compile(branch)(np.ones(3))
