"""Every operation, driven by hypothesis: value against NumPy, gradient against
central differences (gradcheck), shapes with broadcasting, values that hit the
kinks. At a kink the engine's documented convention is asserted instead of a
central difference (which is a different, equally arbitrary number there):
relu'(0) = 0, clip's bounds count as inside, tied maxima/minima share evenly.
"""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import autograd_core as ac
from autograd_core import Value, gradcheck
from autograd_core.gradcheck import numerical_gradient

from engine_op_cases import ALL_CASES, all_registered_ops, ops_in_graph

# a fixed, fast sample in the suite; ENGINE_HYPOTHESIS_EXAMPLES=500 explores randomly for longer
DEEP = int(os.environ.get("ENGINE_HYPOTHESIS_EXAMPLES", "0"))
EVERY_OP = settings(max_examples=DEEP or 20, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=not DEEP)


def _weights(data, shape):
    # a random upstream gradient, so every entry of the Jacobian matters
    return data.draw(st.integers(0, 2**32 - 1).map(lambda seed: np.random.default_rng(seed).standard_normal(shape)))


@pytest.mark.parametrize("case", ALL_CASES, ids=lambda c: c.id)
@EVERY_OP
@given(data=st.data())
def test_value_matches_numpy_and_gradient_matches_central_differences(case, data):
    arrays, params = case.draw(data, case.elements)
    values = [Value(a) for a in arrays]
    out = case.build(params, *values)

    # the value: NumPy's answer, in NumPy's shape, in the input dtype
    expected = np.asarray(case.reference(params, *arrays))
    assert out.shape == expected.shape
    assert out.dtype == expected.dtype
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-15)

    # the op under test really is in the graph
    assert id(case.op_object) in ops_in_graph(out)

    w = _weights(data, out.shape)

    def objective(*xs):
        return (case.build(params, *xs) * w).sum()

    if case.kinks is None:
        assert gradcheck(objective, arrays, eps=case.eps, atol=case.atol, rtol=case.rtol)
        return

    # piecewise op: central differences away from the kinks, the convention at them
    inputs = [Value(a) for a in arrays]
    analytic = ac.grad(objective(*inputs), inputs, allow_unused=True)
    for k, ((at_kink, convention), got) in enumerate(zip(case.kinks(params, arrays, w), analytic)):
        got = np.zeros(arrays[k].shape) if got is None else np.asarray(got)
        numeric = numerical_gradient(objective, inputs, k, eps=case.eps)
        expected = np.where(at_kink, convention, numeric)
        np.testing.assert_allclose(got, expected, rtol=case.rtol, atol=case.atol, err_msg=f"input {k}")


def test_every_registered_operation_has_a_case():
    """A new operation added to ops.py without a case here fails this test."""
    cases_by_op = {case.op for case in ALL_CASES}
    missing = sorted(op.name for op in all_registered_ops() if op.name not in cases_by_op)
    assert not missing, f"operations without a test case in engine_op_cases.py: {missing}"
    assert set(ac.ops.OPS) <= cases_by_op


def test_every_op_object_is_tested_by_some_case():
    """By identity, not by name: the constant-exponent and the Value-exponent
    pow share the name 'pow' but are two gradient rules; both must be tested
    (the test above checks that each case's op object is in its graph)."""
    tested = {id(case.op_object) for case in ALL_CASES}
    untested = [repr(op) for op in all_registered_ops() if id(op) not in tested]
    assert not untested, f"no case builds a node with these ops: {untested}"


@pytest.mark.parametrize("case", [c for c in ALL_CASES if c.id != "astype float64"], ids=lambda c: c.id)
@settings(max_examples=5, deadline=None, derandomize=True)
@given(data=st.data())
def test_float32_inputs_give_float32_outputs_and_gradients(case, data):
    arrays, params = case.draw(data, case.elements)
    values = [Value(a.astype(np.float32)) for a in arrays]
    out = case.build(params, *values)
    assert out.dtype == np.float32
    grads = ac.grad((out * _weights(data, out.shape)).sum(), values, allow_unused=True)
    for value, g in zip(values, grads):
        if g is not None:
            assert g.dtype == np.float32 and g.shape == value.shape
