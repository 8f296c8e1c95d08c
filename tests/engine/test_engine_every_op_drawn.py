"""Every operation of the registry is drawn and stepped like the rest: its case's
graph becomes DOT text naming the operation, and the backprop stepper walks it
with the same gradients as backward()."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import autograd_core as ac
from autograd_core import Value
from autograd_core.viz import dot_text, op_symbol

from engine_op_cases import ALL_CASES


@pytest.mark.parametrize("case", ALL_CASES, ids=lambda c: c.id)
@settings(max_examples=2, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_operation_is_drawn_and_stepped(case, data):
    arrays, params = case.draw(data, case.elements)
    inputs = [Value(a, label=f"x{k}") for k, a in enumerate(arrays)]
    loss = (case.build(params, *inputs) * 1.0).sum()
    source = ac.draw_graph(loss, show_local_gradients=True).source
    made = [v for v in ac.topological_order([loss]) if v.op == case.op_object.name]
    assert made and all(dot_text(op_symbol(v)) in source for v in made)

    stepper = ac.BackpropStepper(loss)
    steps = list(stepper)
    assert steps and all(isinstance(step.explain(), str) for step in steps)
    stepped = [None if x.grad is None else np.array(x.grad, copy=True) for x in inputs]

    for x in inputs:
        x.grad = None
    (case.build(params, *inputs) * 1.0).sum().backward()  # (the stepper's walk freed its graph, as backward does)
    for x, got in zip(inputs, stepped):
        if x.grad is None:
            assert got is None or not np.any(got)
        else:
            np.testing.assert_array_equal(got, x.grad)
