"""autograd_core.compile: traced once, replayed as flat NumPy, the same numbers as eager."""

import os
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import autograd_core as ag
from autograd_core import Value
from autograd_core.compile import CompileError

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "engine"))
from engine_op_cases import ALL_CASES  # noqa: E402

import nn  # noqa: E402
import nn.functional as F  # noqa: E402
import optim  # noqa: E402

EVERY_OP = settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)


def _eager_and_compiled(build, arrays, w):
    """Values and gradients of (build(*leaves) * w).sum(), eager and compiled (first call and a replay)."""
    leaves = [Value(a.copy(), label=f"x{k}") for k, a in enumerate(arrays)]

    def objective():
        return (build(*leaves) * w).sum()

    eager = objective()
    eager.backward()
    eager_grads = [None if v.grad is None else np.array(v.grad) for v in leaves]
    for v in leaves:
        v.grad = None
    step = ag.compile(objective)
    runs = []
    for _ in range(2):  # the tracing call, then a replay
        loss = step()
        loss.backward()
        runs.append((np.array(loss.data), [None if v.grad is None else np.array(v.grad) for v in leaves]))
        for v in leaves:
            v.grad = None
    assert step.cache_info().traces == 1 and step.cache_info().replays == 1
    return (np.array(eager.data), eager_grads), runs, leaves, step


# The cases keep index arrays, conditions and pooling divisors fixed, so the
# compiler's notice that it freezes such arrays at the first call is expected here.
@pytest.mark.filterwarnings("ignore:compile.*made .* outside the engine's operations:UserWarning")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", ALL_CASES, ids=lambda c: c.id)
@EVERY_OP
@given(data=st.data())
def test_every_op_compiled_matches_eager(case, dtype, data):
    arrays, params = case.draw(data, case.elements)
    arrays = [a.astype(dtype) for a in arrays]
    out_shape = np.shape(case.build(params, *[Value(a) for a in arrays]).data)
    w = np.random.default_rng(0).standard_normal(out_shape).astype(dtype)
    (value, grads), runs, leaves, step = _eager_and_compiled(lambda *xs: case.build(params, *xs), arrays, w)
    for got_value, got_grads in runs:
        np.testing.assert_array_equal(got_value, value)
        for g_eager, g_compiled in zip(grads, got_grads):
            if g_eager is None:
                assert g_compiled is None
            else:
                assert g_compiled.dtype == g_eager.dtype and g_compiled.shape == g_eager.shape
                np.testing.assert_array_equal(g_compiled, g_eager)
    # new data in the same leaves: the replay reads them afresh
    for v in leaves:
        v.data = v.data * dtype(0.5) + dtype(0.125) if case.op not in ("getitem", "scatter") else v.data
    eager = (case.build(params, *leaves) * w).sum()
    eager.backward()
    eager_grads = [None if v.grad is None else np.array(v.grad) for v in leaves]
    for v in leaves:
        v.grad = None
    replay = step()
    replay.backward()
    np.testing.assert_allclose(replay.data, eager.data, rtol=1e-12, atol=0, equal_nan=True)
    for v, g in zip(leaves, eager_grads):
        if g is not None:
            np.testing.assert_allclose(v.grad, g, rtol=1e-12, atol=0, equal_nan=True)


def _mlp_run(compiled, steps=20, dtype=np.float64):
    nn.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 3))
    if dtype != np.float64:
        for p in model.parameters():
            p.data = p.data.astype(dtype)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    rng = np.random.default_rng(1)
    X = rng.normal(size=(64, 6)).astype(dtype)
    y = rng.integers(0, 3, 64)

    def loss_fn(X, y):
        return F.cross_entropy(model(X), y)

    step = ag.compile(loss_fn) if compiled else loss_fn
    losses = []
    for k in range(steps):
        batch = slice(32 * (k % 2), 32 * (k % 2) + 32)  # two batches: new targets reach the one-hot rows
        opt.zero_grad()
        loss = step(X[batch], y[batch])
        loss.backward()
        opt.step()
        losses.append(float(loss.data))
    return model, losses, step


def test_twenty_training_steps_with_batch_norm_and_dropout_match_eager():
    eager_model, eager_losses, _ = _mlp_run(compiled=False)
    model, losses, step = _mlp_run(compiled=True)
    assert step.cache_info().traces == 1 and step.cache_info().replays == 19
    np.testing.assert_allclose(losses, eager_losses, rtol=0, atol=1e-12)
    assert len(set(losses)) > 10  # the loss moves: the weights are trained, masks are redrawn
    eager_state, state = eager_model.state_dict(), model.state_dict()
    assert set(state) == set(eager_state)
    for name in state:
        np.testing.assert_allclose(np.asarray(state[name]), np.asarray(eager_state[name]), rtol=0, atol=1e-12, err_msg=name)
    assert int(model[1].num_batches_tracked) == 20


def test_dropout_draws_a_new_mask_at_every_replay():
    nn.manual_seed(3)
    w = Value(np.ones(200))
    step = ag.compile(lambda: F.dropout(w, 0.5).sum())
    totals = {float(step().data) for _ in range(5)}
    assert len(totals) > 1  # with 200 units, five equal masks would be a broken replay


def test_eval_mode_is_its_own_signature_and_reads_the_running_statistics_afresh():
    nn.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    X = np.random.default_rng(0).normal(size=(8, 3))
    step = ag.compile(lambda X: model(X).sum())
    model.eval()
    first_eval = float(step(X).data)
    model.train()
    step(X).backward()  # updates the running statistics
    model.eval()
    again = float(step(X).data)
    assert step.cache_info().traces == 2
    eager = float(model(X).sum().data)
    assert again == eager and again != first_eval


def test_parameters_are_read_afresh_in_place_and_by_assignment():
    W = Value(np.array([[1.0, 2.0], [3.0, 4.0]]), label="W")
    x = np.array([1.0, -1.0])
    step = ag.compile(lambda x: (ag.tanh(ag.matmul(W, x)) ** 2).sum())
    step(x)
    W.data[0, 0] = 0.5  # in place
    assert float(step(x).data) == float((ag.tanh(ag.matmul(W, x)) ** 2).sum().data)
    W.data = np.array([[0.0, 1.0], [1.0, 0.0]])  # by assignment
    assert float(step(x).data) == float((ag.tanh(ag.matmul(W, x)) ** 2).sum().data)


def test_gradients_accumulate_as_in_eager_and_a_second_backward_needs_retain_graph():
    w = Value(np.array([1.0, 2.0]))
    step = ag.compile(lambda x: (w * x).sum())
    x = np.array([3.0, 5.0])
    step(x).backward()
    loss = step(x)
    loss.backward(retain_graph=True)
    np.testing.assert_array_equal(w.grad, [6.0, 10.0])
    loss.backward()
    np.testing.assert_array_equal(w.grad, [9.0, 15.0])
    with pytest.raises(ag.GraphFreedError, match="retain_graph"):
        loss.backward()


def test_new_shapes_and_dtypes_trace_again():
    w = Value(2.0)
    step = ag.compile(lambda x: (x * w).sum())
    assert float(step(np.ones(3)).data) == 6.0
    assert float(step(np.ones(4)).data) == 8.0
    assert float(step(np.ones(4)).data) == 8.0
    step(np.ones(4, dtype=np.float32))
    assert step.cache_info() == (3, 4, 1)


@pytest.mark.parametrize("body, what", [
    (lambda v: v * (2.0 if v.sum() else 1.0), "bool"),
    (lambda v: v * v.sum().item(), r"\.item\(\)"),
    (lambda v: v * float(v.sum()), r"float\(\)"),
])
def test_python_control_flow_on_traced_values_is_refused_with_the_line_and_a_fix(body, what):
    w = Value(np.array([1.0, 2.0]))
    step = ag.compile(lambda: body(w).sum())
    with pytest.raises(CompileError, match=what) as info:
        step()
    assert "test_compile.py" in str(info.value)  # the user's line
    assert "out of the compiled function" in str(info.value) or "after the call" in str(info.value)


def test_if_on_a_comparison_is_refused_but_where_on_it_is_replayed():
    w = Value(np.array([1.0, -2.0]))

    def branchy():
        loss = (w * w).sum()
        if loss > 0:
            return loss
        return -loss

    with pytest.raises(CompileError, match="where"):
        ag.compile(branchy)()
    step = ag.compile(lambda x: ag.where(w * x > 0, w * x, 0.0).sum())
    assert float(step(np.array([1.0, 1.0])).data) == 1.0
    assert float(step(np.array([-1.0, -1.0])).data) == 2.0  # the condition is recomputed


def test_wrong_arguments_get_clear_errors():
    w = Value(1.0)
    step = ag.compile(lambda x, y: (w * x * y).sum())
    with pytest.raises(TypeError, match="cannot take 1 arguments"):
        step(np.ones(2))
    with pytest.raises(TypeError, match="is a list.*np.asarray"):
        step([1.0], np.ones(1))
    with pytest.raises(CompileError, match="one-element"):
        ag.compile(lambda x: w * x)(np.ones(2))


def test_detect_anomaly_runs_eagerly_and_the_stepper_takes_the_eager_result():
    w = Value(np.array([0.0, 1.0]))
    step = ag.compile(lambda: ag.log(w).sum())
    step()
    with ag.detect_anomaly():
        with pytest.raises(ag.AnomalyError, match="log produced Inf"):  # eager: it names the operation
            step()
    stepper = ag.BackpropStepper(step.eager())
    assert len(stepper.values) > 1


def test_reading_a_traced_values_data_outside_the_engine_is_refused_with_the_line():
    w = Value(np.ones(3))

    def fn(x):
        scale = np.exp(np.asarray(x))  # NumPy on the data: would be frozen at tracing
        return (w * scale).sum()

    with pytest.raises(CompileError, match="host_array") as info:
        ag.compile(fn)(np.zeros(3))
    assert "np.exp(np.asarray(x))" in str(info.value)  # the user's line


def test_an_array_made_during_the_call_outside_the_engine_is_warned_about():
    w = Value(np.ones(3))

    def fn(x):
        table = np.arange(3.0) ** 2  # (made in NumPy: a replay keeps the first call's, here rightly)
        return (w * x * table).sum()

    with pytest.warns(UserWarning, match="host_array"):
        ag.compile(fn)(np.zeros(3))


def test_an_array_computed_in_numpy_from_an_integer_argument_is_refused():
    w = Value(np.ones(3))

    def fn(x, labels):
        mask = np.where(labels == 1, 1.0, 0.0)  # NumPy beyond ufuncs on the labels: a replay could not compute it again
        return (w * x * mask).sum()

    with pytest.raises(CompileError, match="integer argument"):
        ag.compile(fn)(np.zeros(3), np.array([0, 1, 1]))


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("make", [lambda x, y: x > 0, lambda x, y: y == 2, lambda x, y: y, lambda x, y: (y == 1).astype(float)])
def test_masks_and_labels_meeting_a_value_are_made_again_at_every_call_in_every_float_dtype(dtype, make):
    # a float32 graph casts the mask it meets to float32: that cast is made again too, not frozen
    w = Value(np.array([1.0, 2.0, 3.0, 4.0], dtype=dtype), label="w")
    fn = lambda x, y: (w * make(x, y)).sum()  # noqa: E731
    step = ag.compile(fn)
    for k in range(3):
        x = np.roll(np.array([1.0, -1.0, 1.0, -1.0], dtype=dtype), k)
        y = np.roll(np.array([2, 0, 1, 0]), k) * (k + 1) % 3
        w.grad = None
        want = fn(x, y)
        want.backward()
        want_grad = w.grad
        w.grad = None
        got = step(x, y)
        got.backward()
        assert got.data.dtype == want.data.dtype and got.data.tobytes() == want.data.tobytes()
        assert w.grad.tobytes() == want_grad.tobytes()


def test_source_is_runnable_and_gives_the_replay_numbers():
    model, losses, step = _mlp_run(compiled=True, steps=3)
    source = step.source()
    assert source.startswith("def forward(") and "\ndef backward(saved, " in source
    assert "model_0_weight" in source and "# d" in source
    namespace = step.program()  # source() run as Python
    rng = np.random.default_rng(1)
    X = rng.normal(size=(64, 6))[:32]
    y = rng.integers(0, 3, 64)[:32]
    params = [p.data for p in model.parameters()]
    nn.manual_seed(11)
    loss_src, saved = namespace["forward"](X, y, *params)
    grads_src = namespace["backward"](saved, np.float64(1.0))
    nn.manual_seed(11)
    for p in model.parameters():
        p.grad = None
    replay = step(X, y)
    replay.backward()
    assert float(loss_src) == float(replay.data)
    for g, p in zip(grads_src, model.parameters()):
        np.testing.assert_array_equal(g, p.grad)


def test_replays_write_into_buffers_planned_once_and_refuse_a_stale_backward():
    nn.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3))
    X = np.random.default_rng(0).normal(size=(16, 4))
    y = np.arange(16) % 3
    step = ag.compile(lambda X, y: F.cross_entropy(model(X), y))
    step(X, y).backward()
    runs = step._last.runs
    assert runs.count("out=_buf_") >= 5  # forward results and backward temporaries
    # backward temporaries share buffers: fewer buffers than buffered lines
    buffers = set(__import__("re").findall(r"out=(_buf_\w+)", runs))
    assert len(buffers) < runs.count("out=_buf_")
    first = step(X, y)
    step(X, y).backward()  # a second replay reuses the buffers the first one's backward needs
    with pytest.raises(CompileError, match="before calling the step again"):
        first.backward()
    # the gradients handed out are the leaves' own arrays, not buffers a later replay writes into
    for p in model.parameters():
        p.grad = None
    step(X, y).backward()
    grads = [p.grad for p in model.parameters()]
    kept = [g.copy() for g in grads]
    for p in model.parameters():
        p.grad = None
    step(X, y).backward()
    for g, g_then, p in zip(grads, kept, model.parameters()):
        assert not np.shares_memory(g, p.grad)
        np.testing.assert_array_equal(g, g_then)  # untouched by the later replay
        np.testing.assert_array_equal(p.grad, g_then)  # same data, same gradient


def test_a_gradient_penalty_made_with_grad_create_graph_is_compiled_too():
    """The backward graph ag.grad(create_graph=True) records is made of registry nodes like any other."""
    rng = np.random.default_rng(4)
    W = Value(rng.normal(size=(3, 2)), label="W")

    def penalised(x):
        x_value = x
        out = ag.tanh(ag.matmul(x_value, W)).sum()
        (dx,) = ag.grad(out, [x_value], create_graph=True)
        return out + (dx * dx).sum()

    x = rng.normal(size=(4, 3))
    eager = penalised(Value(x))
    eager.backward()
    eager_grad = W.grad.copy()
    W.grad = None
    step = ag.compile(penalised)
    for _ in range(2):
        loss = step(x)
        loss.backward()
        np.testing.assert_allclose(float(loss.data), float(eager.data), rtol=1e-14)
        np.testing.assert_allclose(W.grad, eager_grad, rtol=1e-12, atol=1e-15)
        W.grad = None


def test_a_function_may_return_the_loss_and_other_values_which_come_back_as_data():
    nn.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3))
    X = np.random.default_rng(2).normal(size=(6, 4))
    y = np.array([0, 1, 2, 0, 1, 2])

    def loss_and_logits(X, y):
        logits = model(X)
        return F.cross_entropy(logits, y), logits

    step = ag.compile(loss_and_logits)
    kept = []
    for _ in range(3):
        loss, logits = step(X, y)
        kept.append(logits.data)
        eager_logits = model(X).data
        np.testing.assert_array_equal(logits.data, eager_logits)
        assert not logits.requires_grad
        loss.backward()
        for p in model.parameters():
            p.data = p.data - 0.1 * p.grad
            p.grad = None
    assert not np.array_equal(kept[0], kept[2])  # each call's own logits, not a buffer overwritten later


def test_operations_are_recorded_through_ops_record_which_tracing_patches():
    """While tracing, compile replaces ops.record so that an operation on inputs
    that need no gradient is a node of the program too; a module calling the
    engine's record itself would get past that (its result frozen at the first call)."""
    from autograd_core import engine

    holders = [name for name, module in sorted(sys.modules.items()) if name.split(".")[0] in ("autograd_core", "nn", "optim")
               and name != "autograd_core.engine" and any(v is engine.record for v in vars(module).values())]
    assert holders == ["autograd_core.ops"]
    frozen = Value(np.array([[1.0], [2.0], [6.0]]), requires_grad=False)
    x = Value(np.array([[1.0], [2.0], [3.0]]))
    step = ag.compile(lambda: (ag.standardize(frozen, axis=0) * x).sum())  # standardize records its own result
    step()
    frozen.data = np.array([[0.0], [0.0], [1.0]])
    assert float(step()) == float(step.eager().data) == pytest.approx(2 ** 0.5 * 1.5, rel=1e-4)


def test_an_operation_marked_random_is_refused_and_names_itself():
    from autograd_core.ops import Op

    noisy = Op("noisy_identity_for_a_test", lambda x: x + 0.0, inputs="x", elementwise=True,
               d_x=lambda x, out: 1, formula="d x/dx = 1", random=True, register=False)
    w = Value(np.ones(3))
    step = ag.compile(lambda: noisy.apply(w).sum())
    with pytest.raises(CompileError, match="'noisy_identity_for_a_test' draws random numbers.*eagerly"):
        step()


def test_a_compiled_result_ends_the_graph_and_graph_tools_ask_for_an_eager_one():
    w = Value(np.array([1.0, 2.0]))
    step = ag.compile(lambda: (w * w).sum())
    loss = step()
    with pytest.raises(CompileError, match="ends the compiled graph"):
        loss * 2  # noqa: B018 (its gradient would be lost: refused)
    for graph_tool in (ag.BackpropStepper, ag.draw_graph, lambda r: ag.grad(r, w)):
        with pytest.raises(TypeError, match=r"must be a Value.*compiled function.*step\.eager\(\*args\)"):
            graph_tool(loss)
    eager_loss = step.eager()
    assert ag.grad(eager_loss, w)[0].tolist() == [2.0, 4.0]  # the remedy the message names works
    with pytest.raises(CompileError, match="create_graph=True"):
        loss.backward(create_graph=True)
    assert float(loss) == 5.0 and loss.item() == 5.0 and loss.shape == ()


def test_a_weight_gradient_nobody_holds_is_recycled_and_one_still_held_is_not():
    nn.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    X = np.random.default_rng(5).normal(size=(16, 4))
    y = np.arange(16) % 3
    step = ag.compile(lambda X, y: F.cross_entropy(model(X), y))
    weight = model[0].weight
    addresses = []
    for k in range(4):
        weight.grad = None  # what optimizer.zero_grad() does
        step(X, y).backward()
        addresses.append(weight.grad.__array_interface__["data"][0])
        eager_grad = None
        if k == 3:
            held = weight.grad  # a reference kept by the caller
            weight.grad = None
            step(X, y).backward()
            assert weight.grad is not held  # not written into the array the caller holds
            weight.grad = None
            eager = F.cross_entropy(model(X), y)
            eager.backward()
            eager_grad = weight.grad
            np.testing.assert_array_equal(held, eager_grad)
    assert len(set(addresses[1:])) == 1  # replays after the first reuse one array


def test_a_backward_that_reuses_forward_buffers_runs_once_and_says_why_on_a_second_try():
    nn.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3))
    X = np.random.default_rng(0).normal(size=(16, 4))
    y = np.arange(16) % 3
    step = ag.compile(lambda X, y: F.cross_entropy(model(X), y))
    step(X, y).backward()
    assert step._last.reuses_forward
    for p in model.parameters():
        p.grad = None
    loss = step(X, y)
    loss.backward(retain_graph=True)
    first = [p.grad.copy() for p in model.parameters()]
    with pytest.raises(CompileError, match="runs once per call"):
        loss.backward()
    for p, g in zip(model.parameters(), first):  # the one backward gave eager's gradients
        p.grad = None
    F.cross_entropy(model(X), y).backward()
    for p, g in zip(model.parameters(), first):
        np.testing.assert_array_equal(p.grad, g)


def test_views_among_buffered_results_keep_their_buffers_while_read():
    """Transposes and reshapes are views: the buffers under them must not be
    handed to a later result while the view is still read."""
    rng = np.random.default_rng(9)
    W1, W2, W3 = (Value(rng.normal(size=(8, 8)), label=f"W{k}") for k in (1, 2, 3))
    M = rng.normal(size=(8, 8))

    def fn(X):
        H = ag.tanh(X @ W1)
        S = H.T @ W2
        T = ag.relu(S) * M
        U = (T.reshape(4, 16).reshape(8, 8) @ W3) * T.T
        return (U * U).sum() + (H * H).sum() + (S[2:, :] * 3.0).sum()

    step = ag.compile(fn)
    for k in range(3):
        X = rng.normal(size=(8, 8))
        for p in (W1, W2, W3):
            p.grad = None
        fn_eager = fn(Value(X))
        fn_eager.backward()
        eager = [p.grad.copy() for p in (W1, W2, W3)]
        for p in (W1, W2, W3):
            p.grad = None
        loss = step(X)
        loss.backward()
        assert float(loss.data) == float(fn_eager.data)
        for p, g in zip((W1, W2, W3), eager):
            np.testing.assert_array_equal(p.grad, g)
        for p in (W1, W2, W3):
            p.data = p.data - 0.01 * p.grad


def test_modules_and_python_numbers_as_arguments():
    nn.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    X = np.random.default_rng(1).normal(size=(5, 3))

    def scaled(model, X, scale):
        return (model(X) * scale).sum()

    step = ag.compile(scaled)
    for scale in (1.0, 2.0, 2.0):
        for p in model.parameters():
            p.grad = None
        step(model, X, scale).backward()
        got = [p.grad.copy() for p in model.parameters()]
        for p in model.parameters():
            p.grad = None
        scaled(model, Value(X), scale).backward()
        for p, g in zip(model.parameters(), got):
            np.testing.assert_array_equal(p.grad, g)
    assert step.cache_info().traces == 2  # a Python number is part of the signature
    with pytest.raises(TypeError, match="by position"):
        step(model, X, scale=1.0)


def test_what_an_op_saves_flows_from_the_forward_to_the_backward_in_the_program():
    # softmax cross-entropy keeps P = softmax(Z); a convolution keeps its im2col rows
    nn.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 4 * 4, 3))
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(5, 1, 4, 4)), np.array([0, 1, 2, 1, 0])
    step = ag.compile(lambda X, y: F.cross_entropy(model(X), y))
    step(X, y).backward()
    compiled = [p.grad.copy() for p in model.parameters()]
    source = step.source()
    assert "losses, P = " in source and "(P * Y.sum(axis=1, keepdims=True) - Y)" in source
    assert "conv2d, conv2d_rows = " in source and "rows=conv2d_rows" in source
    for p in model.parameters():
        p.grad = None
    F.cross_entropy(model(Value(X, requires_grad=False)), y).backward()
    for eager, replayed in zip((p.grad for p in model.parameters()), compiled):
        np.testing.assert_array_equal(replayed, eager)
    namespace = step.program()
    loss, saved = namespace["forward"](X, y, *[p.data for p in model.parameters()])
    for from_source, replayed in zip(namespace["backward"](saved, np.float64(1.0)), compiled):
        np.testing.assert_array_equal(from_source, replayed)
