"""A compiled step changes with the state it read, or says why not: each case was a silent difference once."""

import threading
import warnings

import numpy as np
import pytest

import autograd_core as ag
import nn
import nn.functional as F
from autograd_core import Value
from autograd_core.compile import CompileError, host_array
from autograd_core.errors import SavedDataModifiedError


def _mlp(seed=0, batch_norm=False):
    nn.manual_seed(seed)
    layers = [nn.Linear(4, 8)] + ([nn.BatchNorm1d(8)] if batch_norm else []) + [nn.Tanh(), nn.Linear(8, 3)]
    return nn.Sequential(*layers)


def _data(n=6, seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 4)), rng.integers(0, 3, n)


def _grads(model):
    return [None if p.grad is None else p.grad.copy() for p in model.parameters()]


def _compiled_and_eager(model, fn, X, y):
    """The loss and gradients of one compiled call and of the eager function, from the same state."""
    for p in model.parameters():
        p.grad = None
    loss = fn.compiled(X, y)
    loss.backward()
    compiled = (np.array(loss.data), _grads(model))
    for p in model.parameters():
        p.grad = None
    loss = fn(X, y)
    loss.backward()
    eager = (np.array(loss.data), _grads(model))
    for p in model.parameters():
        p.grad = None
    return compiled, eager


def _assert_same(compiled, eager):
    np.testing.assert_array_equal(compiled[0], eager[0])
    assert len(compiled[1]) == len(eager[1])
    for c, e in zip(compiled[1], eager[1]):
        assert (c is None) == (e is None)
        if c is not None:
            np.testing.assert_array_equal(c, e)


def _step_for(model):
    def loss_fn(X, y):
        return F.cross_entropy(model(X), y)

    loss_fn.compiled = ag.compile(loss_fn)
    return loss_fn


def test_freezing_and_unfreezing_a_layer_after_the_first_call_retraces():
    model, (X, y) = _mlp(), _data()
    fn = _step_for(model)
    _assert_same(*_compiled_and_eager(model, fn, X, y))
    model[0].weight.requires_grad = False  # freeze: it must get no gradient
    compiled, eager = _compiled_and_eager(model, fn, X, y)
    assert compiled[1][0] is None
    _assert_same(compiled, eager)
    model[0].weight.requires_grad = True  # unfreeze: it must get one again
    compiled, eager = _compiled_and_eager(model, fn, X, y)
    assert compiled[1][0] is not None
    _assert_same(compiled, eager)


def test_load_state_dict_on_batch_norm_reads_and_updates_the_new_running_statistics():
    model, (X, y) = _mlp(batch_norm=True), _data()
    other = _mlp(seed=5, batch_norm=True)
    other[1].running_mean[...] = 3.0
    other[1].running_var[...] = 0.25
    fn = _step_for(model)
    fn.compiled(X, y).backward()
    model.load_state_dict(other.state_dict())
    model.eval()
    _assert_same(*_compiled_and_eager(model, fn, X, y))
    model.train()
    before = model[1].running_mean.copy()
    fn.compiled(X, y).backward()
    assert not np.array_equal(model[1].running_mean, before)  # the new array is the one updated


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(4, 8), nn.Linear(8, 3)

    def forward(self, x):
        return self.fc2(self.fc1(x).tanh())


def test_a_replaced_submodule_and_a_parameter_of_another_dtype_or_shape_are_used():
    nn.manual_seed(0)
    model, (X, y) = _Net(), _data()
    fn = _step_for(model)
    fn.compiled(X, y).backward()
    model.fc2 = nn.Linear(8, 3)  # a new last layer
    _assert_same(*_compiled_and_eager(model, fn, X, y))
    model.fc1.bias.data = model.fc1.bias.data.astype(np.float32)
    compiled, eager = _compiled_and_eager(model, fn, X, y)
    _assert_same(compiled, eager)
    assert compiled[1][1].dtype == np.float32


def test_eval_reached_through_a_plain_object_or_a_default_argument_is_seen():
    model, (X, y) = _mlp(), _data()
    model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5), nn.Linear(8, 3))

    class Trainer:
        def __init__(self, model):
            self.model = model

        def loss(self, X, y):
            return F.cross_entropy(self.model(X), y)

    trainer = Trainer(model)
    step = ag.compile(trainer.loss)
    step(X, y).backward()
    model.eval()  # dropout off: the compiled step must equal eager's deterministic loss
    np.testing.assert_array_equal(step(X, y).data, trainer.loss(X, y).data)

    def with_default(X, y, model=model):
        return F.cross_entropy(model(X), y)

    model.train()
    step = ag.compile(with_default)
    step(X, y).backward()
    model.eval()
    np.testing.assert_array_equal(step(X, y).data, with_default(X, y).data)


def test_a_closure_number_changed_between_calls_is_read_again():
    w = Value(np.array([1.0, -2.0]), label="w")
    beta = 0.5

    def fn(x):
        return (w * x * beta).sum()

    step = ag.compile(fn)
    assert float(step(np.array([1.0, 1.0])).data) == -0.5
    beta = 2.0
    assert float(step(np.array([1.0, 1.0])).data) == -2.0


def test_reading_data_of_a_traced_value_is_refused_and_a_flipped_view_too():
    w = Value(np.ones(3))

    def scaled(x):
        s = 1 / np.asarray(x).std()
        return (w * x * s).sum()

    with pytest.raises(CompileError, match="scaled|np.asarray"):
        ag.compile(scaled)(np.arange(3.0))

    def flipped(x):
        return (w * np.asarray(x)[::-1]).sum()

    with pytest.raises(CompileError):
        ag.compile(flipped)(np.arange(3.0))


def test_where_on_a_comparison_of_a_0d_value_recomputes_the_mask():
    def leaky(z):
        return ag.where(z > 0, z, 0.1 * z) * 1.0

    step = ag.compile(leaky)
    assert float(step(np.array(2.0)).data) == 2.0
    assert float(step(np.array(-2.0)).data) == pytest.approx(-0.2)


def test_value_arguments_get_their_own_gradients_at_every_call():
    w = Value(np.array([1.0, 2.0]))
    step = ag.compile(lambda x: (x * w).sum())
    x1, x2 = Value(np.array([1.0, 1.0])), Value(np.array([3.0, 3.0]))
    step(x1).backward()
    step(x2).backward()
    np.testing.assert_array_equal(x1.grad, [1.0, 2.0])
    np.testing.assert_array_equal(x2.grad, [1.0, 2.0])


def test_two_parameters_given_the_same_gradient_get_an_array_each():
    a, b = Value(np.array([1.0, 2.0])), Value(np.array([3.0, 4.0]))
    step = ag.compile(lambda x: ((a + b) * x).sum())
    for _ in range(2):
        a.grad = b.grad = None
        step(np.array([1.0, 1.0])).backward()
        assert a.grad is not b.grad
        np.testing.assert_array_equal(a.grad, b.grad)


def test_an_in_place_write_between_forward_and_backward_is_refused():
    w = Value(np.array([1.0, 2.0]))
    step = ag.compile(lambda x: (ag.tanh(x * w)).sum())
    step(np.array([1.0, 1.0])).backward()
    loss = step(np.array([1.0, 1.0]))
    w.data[0] = 5.0
    with pytest.raises(ag.SavedDataModifiedError):
        loss.backward()


def test_threads_replay_with_buffers_of_their_own():
    model, (X, y) = _mlp(), _data(n=16)
    step = ag.compile(lambda X, y: F.cross_entropy(model(X), y))
    inputs = [_data(n=16, seed=s) for s in range(4)]
    expected = [float(F.cross_entropy(model(Xi), yi).data) for Xi, yi in inputs]
    step(*inputs[0])  # traced here
    wrong = []

    def worker(k):
        for _ in range(50):
            Xi, yi = inputs[k]
            got = float(step(Xi, yi).data)
            if got != expected[k]:
                wrong.append((k, got))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []


def test_eager_code_in_another_thread_is_not_traced():
    started, done = threading.Event(), threading.Event()
    seen = []

    def slow(x):
        started.set()
        done.wait(5)
        return (x * 2.0).sum()

    def other():
        started.wait(5)
        v = Value(np.array([1.0, -1.0]))
        seen.append(bool((v.sum() > -5)))  # eager: no CompileError in this thread
        done.set()

    t = threading.Thread(target=other)
    t.start()
    ag.compile(slow)(np.array([1.0, 2.0]))
    t.join()
    assert seen == [True]


def test_infinite_constants_and_unicode_labels_make_runnable_programs():
    w = Value(np.array([1.0, -2.0]), label="W₁")
    v = Value(np.array([0.5, 0.5]), label="x²")
    step = ag.compile(lambda x: (ag.clip(x * w, 0, np.inf) + v).sum())
    for _ in range(3):
        assert float(step(np.array([1.0, 1.0])).data) == 2.0
    compile(step.source(), "<source>", "exec")  # the printed program parses


def test_a_host_array_name_is_never_pasted_into_the_program():
    w = Value(np.array([1.0, 2.0]))

    def fn(x):
        mask = host_array(lambda: np.array([1.0, 0.0]), name="m = __import__('os') #")
        return (w * x * mask).sum()

    step = ag.compile(fn)
    step(np.array([1.0, 1.0]))
    assert "__import__(" not in step.source()  # the name is made an identifier, never code
    assert float(step(np.array([1.0, 1.0])).data) == 1.0


def test_evaluating_under_no_grad_runs_the_forward():
    model, (X, y) = _mlp(), _data()
    step = ag.compile(lambda X, y: F.cross_entropy(model(X), y))
    with ag.no_grad():
        first = step(X, y)  # not traced yet: the function itself
    step(X, y).backward()
    with ag.no_grad():
        again = step(X, y)  # traced: the forward program only
    assert not again.requires_grad
    np.testing.assert_array_equal(first.data, again.data)


def test_a_changing_number_retraces_up_to_a_limit_then_runs_eagerly_with_one_warning():
    w = Value(np.array([1.0]))
    state = {"k": 0.0}

    def fn(x):
        return (w * x * state["k"]).sum()

    step = ag.compile(fn)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for k in range(12):
            state["k"] = float(k)
            assert float(step(np.array([1.0])).data) == float(k)
    assert sum("eagerly from now on" in str(c.message) for c in caught) == 1


def test_zero_d_float32_arguments_match_eager_bit_for_bit():
    w = Value(np.float32(0.3))
    step = ag.compile(lambda x: ag.tanh(x * w) * 1.7)
    for value in (np.float32(0.1), np.float32(-2.5)):
        eager = ag.tanh(Value(value) * w) * 1.7
        eager.backward()
        g = w.grad
        w.grad = None
        loss = step(np.array(value, dtype=np.float32))
        loss.backward()
        assert np.asarray(loss.data).tobytes() == np.asarray(eager.data).tobytes()
        assert np.asarray(w.grad).tobytes() == np.asarray(g).tobytes()
        w.grad = None


def test_a_zero_d_host_array_in_arithmetic_is_made_again_at_every_call():
    # engine.as_data turns a 0-d array into a new scalar: the program must still follow the host array
    w = Value(np.array([1.0, 2.0]))

    def loss(x):
        scale = host_array(lambda a: np.asarray(a.sum()), x, name="scale")
        return (w * scale).sum()

    step = ag.compile(loss)
    for x in (np.array([1.0, 1.0]), np.array([3.0, -7.0])):
        w.grad = None
        got = step(x)
        got.backward()
        compiled = (float(got.data), w.grad.copy())
        w.grad = None
        want = loss(x)
        want.backward()
        assert compiled[0] == float(want.data)
        assert np.array_equal(compiled[1], w.grad)
    assert "scale[()]" in step.source()


@pytest.mark.filterwarnings("ignore:invalid value encountered")  # (0 / 0 when every target is ignored)
def test_cross_entropy_with_ignored_targets_changing_between_calls_matches_eager():
    model = _mlp()
    fn = lambda X, y: F.cross_entropy(model(X), y)  # noqa: E731
    fn.compiled = ag.compile(fn)
    X, y = _data()
    for targets in (y, np.where(np.arange(6) % 2 == 0, -100, y), np.full(6, -100), y):
        compiled, eager = _compiled_and_eager(model, fn, X, targets)
        np.testing.assert_array_equal(compiled[0], eager[0])  # (NaN when every target is ignored, as PyTorch)
        for got, want in zip(compiled[1], eager[1]):
            np.testing.assert_array_equal(got, want)


def test_cross_entropy_shows_the_mean_as_the_notes_write_it():
    # J = (1/m) sum_i L_i: the sum of the losses divided by m, and in the backward dL/dsum = 1/m
    model = _mlp()
    X, y = _data()
    step = ag.compile(lambda X, y: F.cross_entropy(model(X), y))
    step(X, y).backward()
    source = step.source()
    assert "m = m_fn(Y)" in source and "/ m[()]" in source and "(1 / m[()])" in source
    eager = F.cross_entropy(model(X), y)
    assert eager._op.name == "div" and eager._inputs[0]._op.name == "sum"
    logits = model(X).data
    by_hand = np.mean(np.log(np.exp(logits).sum(axis=1)) - logits[np.arange(6), y])
    assert abs(float(eager.data) - by_hand) < 1e-12


def test_a_gradient_of_one_repeated_number_read_by_a_non_product_matches_eager():
    # the sum's gradient is one number repeated; kept as that number only where every reader multiplies
    w = Value(np.array([[1.0, -2.0], [0.5, 3.0]]))

    def loss(x):
        s = (w * x).sum(axis=1)
        return (ag.where(s > 0, s, 0.1 * s) + s.exp()).sum() + ag.maximum(w, 0.0).mean()

    step = ag.compile(loss)
    for x in (np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[-1.0, 2.0], [3.0, -4.0]])):
        w.grad = None
        step(x).backward()
        compiled = w.grad.copy()
        w.grad = None
        loss(x).backward()
        assert np.array_equal(compiled, w.grad)


def test_equality_comparisons_of_traced_values_are_recomputed_or_refused_like_the_others():
    # `==` and `!=` gave plain arrays at tracing: `if s == 0` decided its branch once, silently
    w = Value(np.array([1.0, 2.0]))

    def branchy(x):
        s = (w * x).sum()
        if s == 0:
            return s * 0.0 + 1.0
        return s * 2.0

    with pytest.raises(CompileError, match="comparison"):
        ag.compile(branchy)(np.array([1.0, 1.0]))

    def picked(x):
        v = w * x
        return ag.where(v == 0, 1.0, v).sum() + ag.where(v != 2.0, v, 0.0).sum()

    step = ag.compile(picked)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the masks are remade at every call: nothing is frozen, nothing warned
        for x in (np.array([1.0, 1.0]), np.array([0.0, 1.0]), np.array([1.0, 0.0])):
            assert float(step(x).data) == float(picked(Value(x)).data)


def test_indexing_with_a_traced_comparison_is_refused():
    # v[v > 0] has as many elements as the mask has True: replays ran the first call's shapes into
    # their buffers (a ValueError, or under no_grad() a silently broadcast result)
    w = Value(np.array([1.0, 2.0, 3.0]))

    def selected(x):
        v = w * x
        return (v[v > 0] * 2.0).sum()

    with pytest.raises(CompileError, match=r"shape depends on the data.*ag.where"):
        ag.compile(selected)(np.array([1.0, 1.0, 1.0]))
    keep = np.array([True, False, True])
    step = ag.compile(lambda x: ((w * x)[keep] * 2.0).sum())  # a mask the caller holds is fine
    assert float(step(np.array([1.0, 1.0, 1.0])).data) == 8.0
    assert float(step(np.array([2.0, 1.0, 1.0])).data) == 10.0


def test_masks_combined_in_numpy_from_traced_comparisons_are_remade_at_every_call():
    # ~(v > 0), (v > 0) & (v < 1.5): NumPy made them once, at tracing; replays kept the first call's (with a warning)
    w = Value(np.array([1.0, 2.0]))

    def fn(x):
        v = w * x
        inverted = ag.where(~(v > 0), 0.0, v).sum()
        both = ag.where((v > 0) & (v < 1.5), 0.0, v).sum()
        any_row = ag.where(np.logical_or.reduce(v > 1.0, keepdims=True), v, 0.0).sum()
        return inverted + both + any_row

    step = ag.compile(fn)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing kept from the first call
        for x in (np.array([1.0, 1.0]), np.array([0.5, -3.0]), np.array([-1.0, 0.25])):
            assert float(step(x).data) == float(fn(Value(x)).data)

    def branchy(x):
        return (w * x).sum() if ((w * x) > 0).any() else -(w * x).sum()

    with pytest.raises(CompileError, match="comparison"):  # still no Python branch on it
        ag.compile(branchy)(np.array([1.0, 1.0]))

    # a mask's products reach later rules (LeakyReLU's into BatchNorm's, whose mean writes with out=)
    nn.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2), nn.LeakyReLU(), nn.Linear(2, 3))
    X, y = _data(n=4)
    _assert_same(*_compiled_and_eager(model, _step_for(model), X[:, :3], y))


def test_one_channel_batch_norm_statistics_replaced_by_load_state_dict_are_the_ones_used():
    # one-element arrays the caller holds were not guarded: a replay updated (train) or read (eval)
    # the running statistics load_state_dict had replaced
    nn.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 1), nn.BatchNorm1d(1), nn.Linear(1, 2))
    X, y = np.random.default_rng(2).standard_normal((5, 3)), np.array([0, 1, 1, 0, 1])
    fn = _step_for(model)

    def load(mean, var):
        state = model.state_dict()
        state["1.running_mean"], state["1.running_var"] = np.array([mean]), np.array([var])
        model.load_state_dict(state)

    fn.compiled(X, y).backward()
    load(0.3, 2.0)
    fn.compiled(X, y).backward()
    compiled_mean = model[1].running_mean.copy()
    load(0.3, 2.0)
    fn(X, y).backward()
    np.testing.assert_array_equal(compiled_mean, model[1].running_mean)  # the new array, updated as eager does
    model.eval()
    fn.compiled(X, y).backward()
    load(-1.5, 0.5)
    _assert_same(*_compiled_and_eager(model, fn, X, y))  # the new statistics, read


def test_a_nan_gradient_through_a_subtraction_compiles_and_matches_eager():
    # eager negates (-g), the engine's reference loop multiplies (g * -1): their NaNs differ in sign only,
    # and the line check called `dw = -dsub` an internal error
    w = Value(np.array([0.0, 1.0]))

    def fn(x):
        return ag.arcsin(x - w).sum()  # arcsin(1.5) is NaN, and so is its gradient

    step = ag.compile(fn)
    for x in (np.array([1.5, 1.5]), np.array([0.5, 2.5])):
        w.grad = None
        step(x).backward()
        compiled = w.grad
        w.grad = None
        fn(Value(x)).backward()
        np.testing.assert_array_equal(compiled, w.grad)  # NaN where eager has NaN, the same numbers elsewhere
        assert np.isnan(compiled).any()


@pytest.mark.parametrize("read", [
    lambda mask: 1.0 if mask[0] else -1.0,
    lambda mask: int(mask.sum()),
    lambda mask: float(mask.sum()),
    lambda mask: mask.sum().item(),
    lambda mask: sum(mask.tolist()),
], ids=["mask[0]", "int", "float", "item", "tolist"])
def test_a_number_read_off_a_traced_comparison_is_refused(read):
    # these gave the first call's number to every replay, silently
    w = Value(np.array([1.0, 2.0]))

    def fn(x):
        v = w * x
        return v.sum() * read(v > 0)

    with pytest.raises(CompileError, match="comparison"):
        ag.compile(fn)(np.array([1.0, 1.0]))
    def count(mask):
        return mask.sum(keepdims=True).astype(np.float64)

    counted = ag.compile(lambda x: ((w * x).sum() * host_array(count, w * x > 0)).sum())  # the fix named
    assert float(counted(np.array([1.0, 1.0])).data) == 6.0
    assert float(counted(np.array([-1.0, 1.0])).data) == 1.0


def test_the_writers_refusals_name_the_line_that_made_the_operation():
    # found while writing the program (after the call returned): the message names the
    # user's line that made the operation, not the line that called the step
    w = Value(np.ones((4, 3)), label="w")

    def labels_in_numpy(x, y):
        shifted = y.view(np.ndarray)[::-1]  # a plain view of an integer argument: no replay could remake it
        picked = (x @ w)[np.arange(4), shifted]
        return picked.sum()

    with pytest.raises(CompileError, match=r"a view of an array the compiled step remakes") as info:
        ag.compile(labels_in_numpy)(np.ones((4, 4)), np.array([0, 1, 2, 0]))
    assert "in labels_in_numpy: picked = (x @ w)[np.arange(4), shifted]" in str(info.value)

    def flipped_host_array(x):
        noise = host_array(lambda a: np.ones_like(a), x)
        z = x * w[0] + Value(noise[::-1], requires_grad=False)
        return z.sum()

    # (a view of the user's host array is made again at every call, as the array itself)
    step, x = ag.compile(flipped_host_array), np.arange(12.0).reshape(4, 3)
    for _ in range(2):
        assert step(x).item() == flipped_host_array(x).item()


def test_indices_and_booleans_of_traced_data_are_made_again_or_refused():
    # argmax, isnan, any, topk's and cummax's indices read a traced Value's data without an
    # operation; compiled, they are made again at every call, or refused where they would
    # decide Python control flow or a Python number, never kept from the first call
    w = Value(np.array([1.0, 2.0, 3.0]), label="w")
    calls = [np.array([1.0, 1.0, 1.0]), np.array([np.nan, 1.0, -5.0]), np.array([3.0, -1.0, 0.5])]

    def nan_to_zero(x):
        z = x * w
        return ag.where(ag.isnan(z), 0.0, z).sum()

    def top_two(x):
        z = x * w
        _, indices = ag.topk(z, 2)
        return z[indices].sum()

    def running_max_positions(x):
        z = x * w
        _, indices = ag.cummax(z, 0)
        return (z[indices] * Value(np.array([1.0, 10.0, 100.0]), requires_grad=False)).sum()

    for fn in (nan_to_zero, top_two, running_max_positions):
        step = ag.compile(fn)
        for x in calls:
            compiled = step(x)
            compiled.backward()
            compiled_grad, w.grad = w.grad, None
            eager = fn(Value(x, requires_grad=False))
            eager.backward()
            eager_grad, w.grad = w.grad, None
            np.testing.assert_array_equal(compiled.data, eager.data)
            np.testing.assert_array_equal(compiled_grad, eager_grad)
        assert step.cache_info().traces == 1

    def branch_on_isnan(x):
        z = x * w
        return (z * 0).sum() if ag.isnan(z).any() else z.sum()

    def number_of_any(x):
        z = x * w
        return (z * float(ag.any(z > 2))).sum()

    def index_by_argmax(x):
        z = x * w
        return z[ag.argmax(z)]

    for fn, read in ((branch_on_isnan, "`if`"), (number_of_any, "float()")):
        with pytest.raises(CompileError, match=read):
            ag.compile(fn)(calls[0])
    step = ag.compile(index_by_argmax)  # (the index an operation's parameter: made again at every call)
    for x in calls[::2]:
        assert step(x).data.tobytes() == index_by_argmax(Value(x, requires_grad=False)).data.tobytes()


def test_the_compiler_reads_the_rules_of_every_operation_written_as_a_lambda():
    # a rule found by its source is written out as NumPy in the program (and narrowed where it
    # repeats one number); one it cannot find is called instead, slower and harder to read. A
    # module that imports F compiles F.exp(x) differently from the same lambda compiled alone
    from autograd_core.compile import program

    unread = []
    for name, op in ag.OPS.items():
        rules = [op.grads[0]] if op.variadic else list(op.grads)
        for fn in rules + [op.forward]:
            if getattr(fn, "__name__", "") == "<lambda>" and program._lambda_info(fn) is None:
                unread.append(name)
    # roll, tril and triu: rules whose lambda spans lines with a condition (called, as written)
    assert sorted(set(unread)) == ["roll", "tril", "triu"]


def test_the_tiny_mlp_step_keeps_the_mean_s_gradient_as_one_number():
    nn.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 3))
    step = ag.compile(lambda x, y: F.cross_entropy(model(x), y))
    step(np.ones((5, 2), dtype=np.float64), np.array([0, 1, 2, 0, 1]))
    source = step.source()
    assert "dlosses" not in source and "dZ2 = dtotal * (P" in source


@pytest.mark.parametrize("input_needs_grad", [True, False])
def test_batch_norm_running_statistics_from_the_statistics_computed_once(input_needs_grad):
    # the program's standardize line keeps the batch's mean and variance, and the running statistics'
    # update reads them; over an input that needs no gradient standardize keeps none, and the update
    # computes them from the batch: both as eager does, bit for bit
    C = np.random.default_rng(0).standard_normal((8, 3))

    def make():
        nn.manual_seed(0)
        return nn.BatchNorm1d(3)

    def loss_of(bn):
        if input_needs_grad:
            return lambda x, s: (bn(x) * s).sum()
        return lambda x, s: (bn(Value(C, requires_grad=False)) * s).sum()

    bn_c, bn_e = make(), make()
    step = ag.compile(loss_of(bn_c))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (the constant batch is an array the compiled step keeps)
        for k in range(3):
            x, s = np.random.default_rng(k).standard_normal((8, 3)), np.full((8, 3), 1.0 + k)
            compiled = step(Value(x) if input_needs_grad else x, s)  # (an array: a constant to nn, as in eager)
            compiled.backward()
            eager = loss_of(bn_e)(Value(x), Value(s))
            eager.backward()
            np.testing.assert_array_equal(np.asarray(compiled.data), np.asarray(eager.data))
            np.testing.assert_array_equal(bn_c.weight.grad, bn_e.weight.grad)
            bn_c.zero_grad()
            bn_e.zero_grad()
    np.testing.assert_array_equal(bn_c.running_mean, bn_e.running_mean)
    np.testing.assert_array_equal(bn_c.running_var, bn_e.running_var)
    assert ("standardize_mean, standardize_variance)" in step.source()) == input_needs_grad


def test_one_value_passed_as_several_arguments_gets_eagers_gradient():
    def loss(a, b, c):
        return (a * b * ag.tanh(c) + a.exp() * c).sum()

    step = ag.compile(loss)
    rng = np.random.default_rng(0)
    for _ in range(3):
        v = Value(rng.standard_normal(50))
        w = Value(v.data.copy())
        step(v, v, v).backward()  # eager sums the three shares in its own order: so does the program
        loss(w, w, w).backward()
        np.testing.assert_array_equal(v.grad, w.grad)
    v, u = Value(rng.standard_normal(50)), Value(rng.standard_normal(50))
    v2, u2 = Value(v.data.copy()), Value(u.data.copy())
    step(v, u, v).backward()  # another pattern of the same shapes: another program
    loss(v2, u2, v2).backward()
    np.testing.assert_array_equal(v.grad, v2.grad)
    np.testing.assert_array_equal(u.grad, u2.grad)
    assert step.cache_info().traces == 2


def test_one_hot_rows_are_made_again_from_each_calls_labels():
    nn.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3))
    loss = lambda X, y: F.mse_loss(model(X), F.one_hot(y, 3))  # noqa: E731
    step = ag.compile(loss)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (nothing is kept from the first call: no warning)
        for seed in range(3):
            X, y = _data(seed=seed)
            np.testing.assert_array_equal(np.asarray(step(X, y).data), np.asarray(loss(Value(X), y).data))
    with pytest.raises(CompileError, match="num_classes"):
        ag.compile(lambda X, y: F.mse_loss(model(X), F.one_hot(y)))(*_data())


def test_batch_norm_whose_output_the_loss_does_not_read_still_updates_its_statistics():
    def make():
        nn.manual_seed(0)
        return nn.BatchNorm1d(3), nn.Linear(3, 1)

    def loss_of(bn, linear):
        def loss(x):
            bn(x)  # called for its running statistics only
            return linear(x).sum()
        return loss

    (bn_c, lin_c), (bn_e, lin_e) = make(), make()
    step = ag.compile(loss_of(bn_c, lin_c))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for k in range(3):
            x = np.random.default_rng(k).standard_normal((6, 3)) * (k + 1) + k
            step(x).backward()
            loss_of(bn_e, lin_e)(Value(x)).backward()
    np.testing.assert_array_equal(bn_c.running_mean, bn_e.running_mean)
    np.testing.assert_array_equal(bn_c.running_var, bn_e.running_var)


@pytest.mark.parametrize("momentum", [0.1, None])
def test_batch_norm_2d_counts_every_compiled_batch(momentum):
    def make():
        nn.manual_seed(0)
        return nn.BatchNorm2d(2, momentum=momentum)

    compiled, eager = make(), make()
    step = ag.compile(lambda x: (compiled(x) ** 3).sum())
    if momentum is None:  # the cumulative average's momentum changes every batch: refused, as BatchNorm1d's
        with pytest.raises(CompileError, match=r"BatchNorm2d\(momentum=None\)"):
            step(np.ones((4, 2, 3, 3)))
        return
    for k in range(3):
        x = np.random.default_rng(k).standard_normal((4, 2, 3, 3)) + k
        step(x).backward()
        (eager(Value(x)) ** 3).sum().backward()
    assert int(compiled.num_batches_tracked) == int(eager.num_batches_tracked) == 3
    np.testing.assert_array_equal(compiled.running_mean, eager.running_mean)


@pytest.mark.parametrize("read", [lambda y: y.tolist(), list, tuple, lambda y: [int(v) for v in y],
                                  lambda y: [int(y[0])], lambda y: [y.item(0)]])
def test_an_integer_arguments_numbers_read_into_python_are_refused(read):
    # F.one_hot(y.tolist(), 3) would keep the first call's labels: a list is a constant to the program
    step = ag.compile(lambda x, y: ((x - F.one_hot(read(y), 3)[:, 0]) ** 2).sum())
    with pytest.raises(CompileError, match="integer argument"):
        step(np.ones(1), np.array([2]))


def test_one_hot_without_a_class_count_inside_a_host_function_is_made_again():
    loss = lambda x, y: ((x - host_array(lambda labels: F.one_hot(labels), y)) ** 2).sum()  # noqa: E731
    step = ag.compile(loss)
    x = np.zeros((4, 3))
    for y in (np.array([0, 1, 2, 0]), np.array([2, 2, 1, 0])):
        np.testing.assert_array_equal(np.asarray(step(x, y).data), np.asarray(loss(Value(x), y).data))


def test_an_array_the_function_holds_is_not_taken_for_the_argument_that_was_the_same_array():
    C = np.array([1.0, 2.0, 3.0])
    labels = np.array([0, 2, 1])
    first = lambda rows: np.eye(3)[rows][:, 0]  # noqa: E731
    loss = lambda x, y: (x * C).sum() + (x * host_array(first, labels)).sum() + (x * host_array(first, y)).sum()  # noqa: E731
    step = ag.compile(loss)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for x, y in ((C, labels), (np.array([10.0, 10.0, 10.0]), np.array([1, 1, 1]))):
            np.testing.assert_array_equal(np.asarray(step(x, y).data), np.asarray(loss(Value(x), y).data))


def test_writing_into_a_value_argument_before_the_compiled_backward_is_refused():
    def loss(a, b):
        return (a * b.exp()).sum()

    step = ag.compile(loss)
    for _ in range(2):  # the traced call's result, then a replay's
        v, u = Value(np.arange(3.0)), Value(np.arange(3.0))
        result = step(v, u)
        v.data[0] = 5.0
        with pytest.raises(SavedDataModifiedError):
            result.backward()
    w = Value(np.ones(3))
    result = ag.compile(lambda x: (x * w).sum())(np.arange(3.0))
    w.data[0] = 5.0  # a parameter the traced call's backward reads
    with pytest.raises(SavedDataModifiedError):
        result.backward()


def test_one_hot_of_labels_made_at_every_call_follows_them():
    W = Value(np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]), label="W")
    plain = lambda x, y: ((x @ W) * F.one_hot(np.asarray(y), 3)).sum()  # noqa: E731
    shifted = lambda x, y: ((x @ W) * F.one_hot(host_array(lambda y: (y + 1) % 3, y), 3)).sum()  # noqa: E731
    x = np.array([[1.0, 0.0], [0.0, 1.0]])
    for loss in (plain, shifted):
        step = ag.compile(loss)
        for y in (np.array([0, 1]), np.array([2, 2])):
            np.testing.assert_array_equal(np.asarray(step(x, y).data), np.asarray(loss(Value(x), y).data))


def test_an_integer_argument_as_a_value_or_an_index_is_read_at_every_call():
    E = Value(np.arange(12.0).reshape(4, 3), label="E")
    w = Value(np.array([1.0, 2.0, 3.0]), label="w")
    for loss, arguments in (
        (lambda token: (E[token] ** 2).sum(), (np.array(2), np.array(3))),  # a 0-d label as an index
        (lambda y: (w * y).sum(), (np.array([1, 0, 0]), np.array([2, 2, 1]))),  # integers as a Value's data
    ):
        step = ag.compile(loss)
        for y in arguments:
            np.testing.assert_array_equal(np.asarray(step(y).data), np.asarray(loss(y).data))


@pytest.mark.parametrize("read", [lambda y: (y == 2).sum(), lambda y: y.max(keepdims=True), lambda y: y + 1,
                                  lambda y: y.sum(), lambda y: (y + 1) % 3, lambda y: np.maximum(y, 1),
                                  lambda y: y.astype(np.float32), lambda y: (y == 1).astype(float),
                                  lambda y: y[0], lambda y: y[::-1], lambda y: (y > 0)[:, None].sum(axis=1),
                                  lambda y: y.copy()])
def test_numpy_ufuncs_casts_and_slices_of_an_integer_argument_are_made_again_at_every_call(read):
    w = Value(np.array([1.0, 2.0, 3.0]))
    loss = lambda y: (w * read(y)).sum()  # noqa: E731
    step = ag.compile(loss)
    for y in (np.array([1, 0, 0]), np.array([2, 2, 1]), np.array([0, 2, 2])):
        np.testing.assert_array_equal(np.asarray(step(y).data), np.asarray(loss(y).data))


@pytest.mark.parametrize("read", [lambda y: y.repeat(1), lambda y: y.take([0, 1, 2])])
def test_other_numpy_reads_of_an_integer_argument_are_refused_not_kept(read):
    w = Value(np.array([1.0, 2.0, 3.0]))
    with pytest.raises(CompileError, match="integer argument"):
        ag.compile(lambda y: (w * read(y)).sum())(np.array([1, 0, 0]))


@pytest.mark.parametrize("use", [lambda w, y: w[: y.max()].sum(), lambda w, y: w.sum() * [1.0, 10.0, 100.0][y[0]],
                                 lambda w, y: w[:3].sum() * np.ones(y.max()).sum(), lambda w, y: (w ** y[0]).sum(),
                                 lambda w, y: (w[y > 0] * 2.0).sum()])
def test_an_integer_argument_read_as_a_python_number_or_a_shape_is_refused(use):
    # a slice bound, a Python list index, a size, an exponent, a boolean selection: the first call's numbers
    w = Value(np.arange(1.0, 6.0))
    with pytest.raises(CompileError):
        ag.compile(lambda y: use(w, y))(np.array([1, 2]))


def test_a_call_without_backward_leaves_nothing_to_refuse_later():
    # a call whose result is not backpropagated (a validation loss), then the data refilled in place:
    # the next call reads the new data, and its backward is as eager's, not a SavedDataModifiedError
    w = Value(np.array([0.5, -2.0, 3.0]), label="w")
    loss = lambda x: (w * x).sum()  # noqa: E731
    for step in (loss, ag.compile(loss)):
        w.grad = None
        x = Value(np.array([1.0, 2.0, 3.0]), requires_grad=False)
        step(x)
        x.data[...] = [4.0, 5.0, 6.0]
        np.clip(w.data, -1.0, 1.0, out=w.data)
        step(x).backward()
        np.testing.assert_array_equal(w.grad, [4.0, 5.0, 6.0])
        w.data = np.array([0.5, -2.0, 3.0])


def test_returned_values_are_the_callers_to_keep_and_to_write_into():
    nn.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))
    def loss_and_hidden(X, y):  # the hidden activation is what the backward reads again (tanh's rule, dW2)
        hidden = model[1](model[0](X))
        return F.cross_entropy(model[2](hidden), y), hidden

    step = ag.compile(loss_and_hidden)
    X, y = _data()
    kept = []
    for _ in range(3):
        model.zero_grad()
        loss, hidden = step(X, y)
        first = hidden.data.copy()
        hidden.data[...] = 0.0  # the caller's copy: the backward reads its own arrays
        loss.backward()
        kept.append((hidden, first))
        compiled = _grads(model)
        model.zero_grad()
        F.cross_entropy(model(Value(X)), y).backward()
        for c, e in zip(compiled, _grads(model)):
            np.testing.assert_array_equal(c, e)
    assert all(np.all(hidden.data == 0.0) for hidden, _ in kept)  # later calls did not write over them


def _subtract_in_place(y):
    y -= 1
    return y


def _write_first(y):
    y[0] = 2
    return y


@pytest.mark.parametrize("numpy_on_labels", [
    lambda y: y.mean(), lambda y: (y == 1).mean(), lambda y: np.count_nonzero(y), lambda y: y[y > 0].sum(),
    lambda y: y.argmax(), lambda y: np.dot(y, y), lambda y: np.where(y > 1, 0, y).sum(),
    lambda y: np.bincount(y, minlength=3)[0], lambda y: _subtract_in_place(y).sum(), lambda y: _write_first(y).sum(),
])
def test_numpy_beyond_ufuncs_on_an_integer_argument_is_refused_not_kept(numpy_on_labels):
    # each gave the first call's number at every replay, without a word
    W = Value(np.ones((4, 3)))
    step = ag.compile(lambda X, y: (X @ W).sum() * numpy_on_labels(y))
    with pytest.raises(CompileError, match="integer argument"):
        step(np.ones((6, 4)), np.array([0, 1, 2, 0, 1, 2]))
