"""Regressions of the second round of attacks on compile: each case is run
eagerly and compiled over several calls, and the two must agree bit for bit
(or the compiled step must raise CompileError, or warn as documented)."""

import warnings

import numpy as np
import pytest

import autograd_core as ag
import nn
from autograd_core import Value
from autograd_core.compile import CompileError


def _bits(a):
    a = np.asarray(a)
    return a.dtype.str, a.shape, a.tobytes()


def _run(fn, params, calls, compiled):
    """[(loss bits, [grad bits])] over `calls` (argument tuples), each call with fresh grads."""
    step = ag.compile(fn) if compiled else fn
    out = []
    for args in calls:
        for p in params:
            p.grad = None
        loss = step(*args)
        loss.backward()
        out.append((_bits(loss.data), [_bits(p.grad) for p in params]))
    return out


# ---- layouts: the traced call and the replays compute as eager on any memory layout ------------------------
@pytest.mark.parametrize("layout", ["fortran", "reversed", "every_other"])
def test_arguments_of_any_memory_layout_give_eager_bits(layout):
    w = Value(np.random.default_rng(0).standard_normal((1, 7)), label="w")
    fn = lambda x: (x * w).sum()  # noqa: E731  (eager's product keeps x's layout; its sum goes in memory order)

    def arg(k):
        base = np.random.default_rng(k).standard_normal((300, 7))
        if layout == "fortran":
            return np.asfortranarray(base)
        if layout == "reversed":
            return base[::-1]
        return np.random.default_rng(k).standard_normal((600, 7))[::2]

    calls = [(arg(k),) for k in range(3)]
    assert _run(fn, [w], calls, compiled=True) == _run(fn, [w], calls, compiled=False)


def test_a_fortran_ordered_parameter_gives_eager_bits_on_every_replay():
    w = Value(np.random.default_rng(5).standard_normal((7, 300)).T, label="w")
    fn = lambda s: ((w * s) ** 2).sum()  # noqa: E731
    calls = [(np.random.default_rng(k).standard_normal((1, 1)),) for k in range(4)]
    assert _run(fn, [w], calls, compiled=True) == _run(fn, [w], calls, compiled=False)


def test_a_parameter_whose_layout_changes_retraces():
    w = Value(np.arange(12.0).reshape(3, 4), label="w")
    step = ag.compile(lambda x: (x * w).sum())
    step(np.ones((3, 4)))
    w.data = np.asfortranarray(w.data)
    step(np.ones((3, 4)))
    assert step.cache_info().traces == 2


def test_an_argument_written_into_before_backward_is_read_by_the_traced_call_as_by_eager():
    rng = np.random.default_rng(2)
    fc = nn.Linear(4, 3)
    fn = lambda x: (ag.tanh(fc(x)) ** 2).sum()  # noqa: E731
    results = []
    for step in (fn, ag.compile(fn)):
        x = rng.standard_normal((6, 4))
        fc.weight.grad = None
        loss = step(x)
        x *= 2.0  # a loader refilling its batch buffer before the backward
        loss.backward()
        results.append(fc.weight.grad.tobytes())
        rng = np.random.default_rng(2)
    assert results[0] == results[1]


# ---- results: what the caller holds stays as it was returned ------------------------------------------
def test_a_loss_that_is_a_view_of_an_intermediate_is_not_written_over_by_the_next_call():
    w = Value(np.linspace(0.1, 1.0, 12).reshape(3, 4), label="w")
    step = ag.compile(lambda x: ag.tanh(x * w)[1:2, 2:3])  # a one-element loss that is a view
    kept = []
    for k in range(3):
        result = step(np.full((3, 4), float(k + 1)))
        kept.append((result, float(np.asarray(result.data).item())))
        result.backward()
    assert [float(np.asarray(r.data).item()) for r, _ in kept] == [v for _, v in kept]


def test_the_traced_calls_result_may_be_backpropagated_after_later_calls_as_in_eager():
    rng = np.random.default_rng(0)
    W, b, W2 = (Value(rng.standard_normal(shape)) for shape in ((3, 4), (4,), (4, 4)))
    fn = lambda x: (ag.relu(ag.relu(x @ W + b) @ W2 + b) * 3).sum()  # noqa: E731
    xs = [rng.standard_normal((5, 3)) for _ in range(2)]
    grads = []
    for step in (fn, ag.compile(fn)):
        first, second = step(xs[0]), step(xs[1])  # the traced call and a replay, then their backwards in order
        for result in (first, second):
            for p in (W, b, W2):
                p.grad = None
            result.backward()
            grads.append([p.grad.tobytes() for p in (W, b, W2)])
    assert grads[:2] == grads[2:]


# ---- detach: a stop-gradient is read again at every call --------------------------------------------------
@pytest.mark.parametrize("fn_of", [
    lambda W: lambda x: ((x @ W) / ag.sqrt(((x @ W) ** 2).sum()).detach()).sum(),  # a 0-d normaliser
    lambda W: lambda x: ((x @ W).detach() * (x @ W)).sum(),  # an array
    lambda W: lambda x: (x @ W.detach() + (W * W).sum().detach() * x @ W).sum(),  # of a parameter
])
def test_detach_inside_the_function_is_read_again_at_every_call(fn_of):
    W = Value(np.random.default_rng(0).standard_normal((4, 4)), label="W")
    fn = fn_of(W)
    calls = [(np.random.default_rng(k).standard_normal((6, 4)),) for k in range(3)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and nothing is frozen: no warning
        assert _run(fn, [W], calls, compiled=True) == _run(fn, [W], calls, compiled=False)


# ---- NumPy on a float argument: eager's argument is an array, the trace's a Value ---------------------------
@pytest.mark.parametrize("use", [lambda x: np.exp(x), lambda x: np.clip(x, 0, 1), lambda x: np.maximum(x, 0),
                                 lambda x: np.isnan(x), lambda x: x.copy(), lambda x: x.ravel(),
                                 lambda x: x.dot(np.ones(4)), lambda x: np.concatenate([x, x])[:4]])
def test_numpy_on_a_float_argument_is_a_compile_error_that_says_why(use):
    w = Value(np.arange(4.0))
    with pytest.raises(CompileError, match="float array argument is a Value"):
        ag.compile(lambda x: (use(x) * w).sum())(np.ones(4))
    assert not hasattr(Value(np.ones(2)), "ravel")  # (the patch is gone after the trace)
