"""Regressions of the second round of attacks on compile: each case is run
eagerly and compiled over several calls, and the two must agree bit for bit
(or the compiled step must raise CompileError, or warn as documented)."""

import array
import dataclasses
import functools
import inspect
import math
import warnings

import numpy as np
import pytest

import autograd_core as ag
import nn
import optim
from autograd_core import Value
from autograd_core.compile import CompileError, effect, host_array
from nn import functional as F


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


# ---- what the trace read outside its arguments, changed between calls -------------------------------------
_X = np.random.default_rng(0).standard_normal((8, 4))
_Y = np.random.default_rng(1).integers(0, 3, 8)


def _agree(fn, params, changes):
    """Call `fn` eagerly and compiled after each change of the state; both must give the same bits."""
    step = ag.compile(fn)
    for change in changes:
        change()
        got = []
        for run in (fn, step):
            for p in params:
                p.grad = None
            loss = run(_X, _Y)
            loss.backward()
            got.append((_bits(loss.data), [_bits(p.grad) for p in params]))
        assert got[0] == got[1]
    return step


def test_a_class_attribute_changed_on_the_class_retraces():
    class Net(nn.Module):
        temperature = 1.0

        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 3)

        def forward(self, x):
            return self.fc(x) / self.temperature

    nn.manual_seed(0)
    net, lf = Net(), nn.CrossEntropyLoss()
    values = iter([1.0, 2.0, 4.0])
    _agree(lambda x, y: lf(net(x), y), list(net.parameters()), [lambda: setattr(Net, "temperature", next(values))] * 3)


@pytest.mark.parametrize("first, second", [(ag.tanh, ag.sigmoid), (nn.functional.relu, ag.tanh)])
def test_a_library_function_swapped_in_an_attribute_retraces(first, second):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.act = nn.Linear(4, 3), first

        def forward(self, x):
            return self.act(self.fc(x))

    nn.manual_seed(0)
    net, lf = Net(), nn.CrossEntropyLoss()
    acts = iter([first, second, second])
    _agree(lambda x, y: lf(net(x), y), list(net.parameters()), [lambda: setattr(net, "act", next(acts))] * 3)


def test_a_layer_class_swapped_in_a_dict_retraces():
    nn.manual_seed(0)
    fc, lf = nn.Linear(4, 3), nn.CrossEntropyLoss()
    cfg = {"Act": nn.Tanh}
    classes = iter([nn.Tanh, nn.Sigmoid, nn.Sigmoid])
    _agree(lambda x, y: lf(cfg["Act"]()(fc(x)), y), list(fc.parameters()),
           [lambda: cfg.__setitem__("Act", next(classes))] * 3)


def test_a_dropout_generator_replaced_between_calls_is_drawn_from_as_eager():
    class Drop(nn.Module):
        def __init__(self):
            super().__init__()
            self.generator = None

        def forward(self, x):
            return nn.functional.dropout(x, 0.5, self.training, generator=self.generator)

    def run(compiled):
        nn.manual_seed(0)
        net, lf = nn.Sequential(nn.Linear(4, 6), Drop(), nn.Linear(6, 3)), nn.CrossEntropyLoss()
        fn = lambda x, y: lf(net(x), y)  # noqa: E731
        step = ag.compile(fn) if compiled else fn
        out = []
        for epoch in range(3):
            net[1].generator = np.random.default_rng(1000 + epoch)  # a fresh, seeded generator per epoch
            net.zero_grad()
            loss = step(_X, _Y)
            loss.backward()
            out.append((_bits(loss.data), _bits(net[0].weight.grad)))
        return out

    assert run(True) == run(False)


@pytest.mark.parametrize("case", ["list", "int_key", "key_in_a_variable", "values", "length"])
def test_numbers_inside_containers_the_function_reads_are_guarded(case):
    nn.manual_seed(0)
    fc, lf = nn.Linear(4, 3), nn.CrossEntropyLoss()
    scales, table, named, history = [1.0], {1: 1.0}, {"scale": 1.0}, [0.0]
    key = "scale"
    read = {
        "list": lambda: scales[0],
        "int_key": lambda: table[1],
        "key_in_a_variable": lambda: named[key],
        "values": lambda: sum(named.values()),
        "length": lambda: float(len(history)),
    }[case]
    fn = lambda x, y: lf(fc(x) * read(), y)  # noqa: E731

    def change():
        scales[0] += 1.0
        table[1] += 1.0
        named["scale"] += 1.0
        history.append(0.0)

    _agree(fn, list(fc.parameters()), [lambda: None, change, change])


@pytest.mark.parametrize("case", ["module_buffer", "closure_0d_in_place", "float_of_closure", "element_of_closure"])
def test_numbers_taken_from_arrays_the_function_holds_are_read_again_or_guarded(case):
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 3)
            self.register_buffer("scale", np.array(1.0))

        def forward(self, x):
            return self.fc(x) * self.scale

    nn.manual_seed(0)
    net, lf = Scaled(), nn.CrossEntropyLoss()
    c0, c1 = np.array(1.0), np.array([1.0, 5.0])
    fn = {
        "module_buffer": lambda x, y: lf(net(x), y),
        "closure_0d_in_place": lambda x, y: lf(net.fc(x) * c0, y),
        "float_of_closure": lambda x, y: lf(net.fc(x) * float(c0), y),
        "element_of_closure": lambda x, y: lf(net.fc(x) * c1[0], y),
    }[case]

    def change():
        net.scale[...] = net.scale * 2
        c0[...] = c0 * 2
        c1[0] *= 2

    _agree(fn, list(net.fc.parameters()), [lambda: None, change, change])
    net.scale = np.array(3.0)  # replaced: read from the new array
    _agree(fn, list(net.fc.parameters()), [lambda: None])


@pytest.mark.parametrize("case", ["getattr", "get", "in"])
def test_what_was_absent_at_the_trace_and_is_added_later_retraces(case):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 3)

        def forward(self, x):
            return self.fc(x) * getattr(self, "temperature", 1.0)

    nn.manual_seed(0)
    net, lf, cfg = Net(), nn.CrossEntropyLoss(), {}
    fn = {
        "getattr": lambda x, y: lf(net(x), y),
        "get": lambda x, y: lf(net.fc(x) * cfg.get("scale", 1.0), y),
        "in": lambda x, y: lf(net.fc(x) * (2.0 if "flip" in cfg else 1.0), y),
    }[case]

    def add():
        net.temperature = 0.5
        cfg["scale"], cfg["flip"] = 3.0, True

    _agree(fn, list(net.fc.parameters()), [lambda: None, add, lambda: None])


def test_a_config_served_by_getattr_or_slots_is_guarded():
    import dataclasses

    class Config:
        def __init__(self):
            self._values = {"scale": 1.0}

        def __getattr__(self, name):
            try:
                return self.__dict__["_values"][name]
            except KeyError:
                raise AttributeError(name) from None

    @dataclasses.dataclass(slots=True)
    class Slots:
        scale: float = 1.0

    nn.manual_seed(0)
    fc, lf = nn.Linear(4, 3), nn.CrossEntropyLoss()
    served, slotted = Config(), Slots()
    fn = lambda x, y: lf(fc(x) * served.scale * slotted.scale, y)  # noqa: E731

    def change():
        served._values["scale"] *= 2
        slotted.scale *= 3

    _agree(fn, list(fc.parameters()), [lambda: None, change, change])


def test_an_attribute_of_the_compiled_function_itself_is_guarded():
    nn.manual_seed(0)
    fc, lf = nn.Linear(4, 3), nn.CrossEntropyLoss()

    def loss_fn(x, y):
        return lf(fc(x) * loss_fn.scale, y)

    loss_fn.scale = 1.0
    _agree(loss_fn, list(fc.parameters()), [lambda: None, lambda: setattr(loss_fn, "scale", 2.0)])


def test_the_order_of_layers_is_guarded():
    nn.manual_seed(0)
    layers = {"a": nn.Linear(4, 4), "b": nn.Tanh()}
    head, lf = nn.Linear(4, 3), nn.CrossEntropyLoss()

    def fn(x, y):
        for layer in layers.values():
            x = layer(x)
        return lf(head(x), y)

    seq = nn.Sequential()
    seq.add_module("fc", nn.Linear(4, 4))
    seq.add_module("act", nn.Tanh())

    def reorder_sequential():  # the same layers, the same count, another order
        fc, act = seq.fc, seq.act
        del seq.fc
        seq.add_module("fc", fc)
        del seq.act
        seq.add_module("act", act)
        del seq.fc
        seq.add_module("fc", fc)  # act, fc

    _agree(fn, list(layers["a"].parameters()), [lambda: None, lambda: layers.__setitem__("a", layers.pop("a"))])
    _agree(lambda x, y: lf(head(seq(x)), y), list(head.parameters()), [lambda: None, reorder_sequential])


def test_an_array_written_with_numpy_during_the_call_is_refused():
    class Counting(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 3)
            self.register_buffer("samples_seen", np.zeros((), dtype=np.int64))

        def forward(self, x):
            self.samples_seen += x.shape[0]  # eager counts at every call; a replay would not
            return self.fc(x)

    net, lf = Counting(), nn.CrossEntropyLoss()
    with pytest.raises(CompileError, match="samples_seen"):
        ag.compile(lambda x, y: lf(net(x), y))(_X, _Y)


def test_bce_with_logits_reads_the_callers_pos_weight_at_every_call_without_a_warning():
    nn.manual_seed(0)
    fc = nn.Linear(4, 3)
    loss = nn.BCEWithLogitsLoss(pos_weight=np.array([1.0, 2.0, 3.0]))
    targets = (np.arange(24).reshape(8, 3) % 2).astype(float)
    fn = lambda x, y: loss(fc(x), targets)  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _agree(fn, list(fc.parameters()), [lambda: None, lambda: loss.pos_weight.__imul__(2.0)])


def test_a_number_read_from_an_optimizer_is_guarded():
    import optim

    nn.manual_seed(0)
    fc, lf = nn.Linear(4, 3), nn.CrossEntropyLoss()
    opt = optim.SGD(fc.parameters(), lr=0.1)
    fn = lambda x, y: lf(fc(x), y) + (fc.weight * fc.weight).sum() * opt.param_groups[0]["lr"]  # noqa: E731
    _agree(fn, list(fc.parameters()), [lambda: None, lambda: opt.param_groups[0].__setitem__("lr", 0.01)])


# ---- checks of the data run at every call, as eager runs them ----------------------------------------------
def test_binary_cross_entropy_checks_its_probabilities_at_every_call():
    w, targets = Value(np.full(4, 0.5), label="w"), np.ones(4)
    fn = lambda p: ag.binary_cross_entropy(w * p, targets).sum()  # noqa: E731
    step = ag.compile(fn)
    step(np.full(4, 0.9)).backward()
    with pytest.raises(ValueError, match="probabilities"):
        fn(np.full(4, 3.0))
    with pytest.raises(ValueError, match="probabilities"):
        step(np.full(4, 3.0))


@pytest.mark.parametrize("op", ["gather", "scatter_add"])
def test_an_index_out_of_range_is_refused_at_every_call(op):
    w = Value(np.arange(10.0).reshape(2, 5), label="w")
    if op == "gather":
        fn = lambda index: ag.gather(w, 1, index).sum()  # noqa: E731
    else:
        fn = lambda index: ag.scatter_add(w, 1, index, w[:, :2]).sum()  # noqa: E731
    step = ag.compile(fn)
    step(np.array([[0, 4], [1, 2]])).backward()
    for bad in (np.array([[0, -1], [1, 2]]), np.array([[0, 5], [1, 2]])):
        with pytest.raises(IndexError, match="index values must lie"):
            fn(bad)
        with pytest.raises(IndexError, match="index values must lie"):
            step(bad)


def test_a_0d_float64_argument_is_taken_as_eager_takes_it_a_python_number():
    # eager's NumPy makes np.float64 numbers of it, which the engine casts to a float32 Value's dtype
    w = Value(np.array([1.5, -2.0, 0.3], dtype=np.float32), label="w")
    fn = lambda x: (w / (x + 3)).sum() + (w * x).sum()  # noqa: E731
    calls = [(np.array(0.1 * (k + 1)),) for k in range(3)] + [(np.array(0.1),)]
    step = ag.compile(fn)
    assert _run(fn, [w], calls, compiled=True) == _run(fn, [w], calls, compiled=False)
    _run(fn, [w], calls, compiled=False)
    for args in calls:
        step(*args)
    assert step.cache_info().traces == 3  # one per number, as for a Python float


def test_a_program_whose_checks_would_not_fit_in_memory_is_refused_before_they_are_made(monkeypatch):
    import sys

    runtime = sys.modules["autograd_core.compile.runtime"]
    w = Value(np.ones(1000), label="w")
    fn = lambda x: ag.tanh(x * w).sum()  # noqa: E731  (some 3 x 8 kB of traced arrays)
    monkeypatch.setattr(runtime, "CHECKED_FROM_BYTES", 0)  # (small programs are built without asking)
    monkeypatch.setattr(runtime, "_available_memory", lambda: 10_000)
    with pytest.raises(CompileError, match="needs about .* more memory"):
        ag.compile(fn)(np.ones(1000))
    monkeypatch.setattr(runtime, "_available_memory", lambda: 10 << 20)
    assert float(ag.compile(fn)(np.ones(1000)).data) == float(fn(np.ones(1000)).data)


# ---- the third round: realistic loops, and the walk's corners ----------------------------------------------
def _head():
    nn.manual_seed(0)
    return nn.Linear(4, 3), nn.CrossEntropyLoss()


def test_what_is_computed_under_no_grad_inside_the_function_is_computed_again_at_every_call():
    nn.manual_seed(0)
    student, teacher = nn.Linear(4, 3), nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))

    def fn(x, y):
        with ag.no_grad():
            target = teacher(x)  # a teacher's output (its batch norm counting in train mode too)
        return nn.functional.mse_loss(student(x), target)

    xs = [np.random.default_rng(k).standard_normal((8, 4)) for k in range(3)]
    results = []
    for step in (fn, ag.compile(fn)):
        teacher.load_state_dict({k: np.zeros_like(v) if "running_mean" in k else v
                                 for k, v in teacher.state_dict().items()})
        out = []
        for x in xs:
            student.weight.grad = None
            loss = step(x, None)
            loss.backward()
            out.append((_bits(loss.data), _bits(student.weight.grad), _bits(teacher[1].running_mean)))
        results.append(out)
    assert results[0] == results[1]


def test_a_buffer_registered_after_the_first_call_retraces():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 3)

        def forward(self, x):
            mask = getattr(self, "mask", None)
            return self.fc(x) if mask is None else self.fc(x) * mask

    nn.manual_seed(0)
    net, lf = Net(), nn.CrossEntropyLoss()
    _agree(lambda x, y: lf(net(x), y), list(net.fc.parameters()),
           [lambda: None, lambda: net.register_buffer("mask", np.array([1.0, 0.0, 2.0]))])


def test_state_the_loss_never_reads_does_not_retrace():
    fc, lf = _head()

    class Trainer:
        def __init__(self):
            self.data, self.cfg = [1, 2], {"label_smoothing": 0.0, "epoch": 0, "history": []}

        def loss(self, x, y):
            return nn.functional.cross_entropy(fc(x), y, label_smoothing=self.cfg["label_smoothing"])

    trainer = Trainer()
    step = ag.compile(trainer.loss)
    for epoch in range(12):
        trainer.data = trainer.data[::-1] + [epoch]  # named like the library's own attributes (Value.data)
        trainer.cfg["epoch"] = epoch  # beside the key the loss reads
        trainer.cfg["history"].append(float(epoch))
        step(_X, _Y).backward()
    assert step.cache_info().traces == 1


def test_classes_the_code_reads_and_their_bases_are_guarded():
    class Base:
        t = 1.0

    class Sub(Base):
        pass

    class Cfg:  # a namespace class, read as Cfg.beta
        beta = 1.0

    fc, lf = _head()
    obj = Sub()
    fn = lambda x, y: lf(fc(x) * obj.t * Cfg.beta, y)  # noqa: E731
    _agree(fn, list(fc.parameters()), [lambda: None, lambda: setattr(Sub, "t", 2.0), lambda: setattr(Cfg, "beta", 3.0)])


def test_objects_rebound_and_enum_members_are_guarded_by_identity():
    import enum

    class Mode(enum.Enum):
        A = 1
        B = 2

    fc, lf = _head()
    holder = type("Holder", (), {})()
    holder.mode = Mode.A
    fn = lambda x, y: lf(fc(x) * (2.0 if holder.mode is Mode.A else 0.5), y)  # noqa: E731
    _agree(fn, list(fc.parameters()), [lambda: None, lambda: setattr(holder, "mode", Mode.B)])


@pytest.mark.parametrize("case", ["tuple_key", "float_key_sign", "set", "dict_subclass", "huge_int_key"])
def test_containers_of_every_kind_are_guarded(case):
    fc, lf = _head()
    scale = {"s": 1.0}

    class Scaled(dict):
        def __getitem__(self, key):
            return dict.__getitem__(self, key) * scale["s"]

    table, allowed, sub = {("a", 1): 1.0, 10 ** 5000: 0.0}, {1, 2}, Scaled(w=1.0)
    keyed = {0.0: "zero"}
    fn = {
        "tuple_key": lambda x, y: lf(fc(x) * table[("a", 1)], y),
        "float_key_sign": lambda x, y: lf(fc(x) * math.copysign(1.0, next(iter(keyed))), y),
        "set": lambda x, y: lf(fc(x) * (2.0 if 3 in allowed else 1.0), y),
        "dict_subclass": lambda x, y: lf(fc(x) * sub["w"], y),
        "huge_int_key": lambda x, y: lf(fc(x) * table[("a", 1)], y),
    }[case]

    def change():
        table[("a", 1)] = 2.0
        keyed.clear()
        keyed[-0.0] = "zero"
        allowed.add(3)
        scale["s"] = 3.0

    _agree(fn, list(fc.parameters()), [lambda: None, change])


def test_a_list_subclass_that_transforms_its_items_replays_without_retracing():
    class Doubled(list):
        def __getitem__(self, k):
            return list.__getitem__(self, k) * 2

    fc, lf = _head()
    scales = Doubled([0.25])
    step = _agree(lambda x, y: lf(fc(x) * scales[0], y), list(fc.parameters()), [lambda: None] * 3)
    assert step.cache_info().traces == 1


@pytest.mark.parametrize("name", ["private", "ligature"])
def test_slots_are_read_through_their_descriptors_whatever_their_names(name):
    class Cfg:
        __slots__ = ("__beta", "\ufb01", "fi")  # "\ufb01" folds to "fi" where Python reads it as an identifier

        def __init__(self):
            self.__beta = 1.0
            setattr(self, "\ufb01", 1.0)
            self.fi = 1.0

        def beta(self):
            return self.__beta

    fc, lf = _head()
    cfg = Cfg()
    if name == "private":
        fn = lambda x, y: lf(fc(x) * cfg.beta(), y)  # noqa: E731
        change = lambda: setattr(cfg, "_Cfg__beta", 2.0)  # noqa: E731
    else:
        fn = lambda x, y: lf(fc(x) * getattr(cfg, "\ufb01"), y)  # noqa: E731
        change = lambda: setattr(cfg, "\ufb01", 3.0)  # noqa: E731
    _agree(fn, list(fc.parameters()), [lambda: None, change])


def test_code_replaced_between_calls_retraces():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 3)

        def forward(self, x):
            return self.fc(x)

    def helper(z):
        return z * 2.0

    def other(z):
        return z * 3.0

    nn.manual_seed(0)
    net, lf = Net(), nn.CrossEntropyLoss()
    fn = lambda x, y: lf(helper(net(x)), y)  # noqa: E731
    _agree(fn, list(net.fc.parameters()), [lambda: None, lambda: setattr(helper, "__code__", other.__code__),
                                           lambda: setattr(Net, "forward", lambda self, x: self.fc(x) * 0.5)])


def test_a_dict_reached_by_two_paths_is_guarded_on_both():
    fc, lf = _head()
    config = {"scale": 1.0}
    box = type("Box", (), {})()
    box.cfg = config
    fn = lambda x, y: lf(fc(x) * box.cfg["scale"] * config["scale"], y)  # noqa: E731
    _agree(fn, list(fc.parameters()), [lambda: None, lambda: setattr(box, "cfg", {"scale": 2.0})])


def test_a_call_that_changes_a_number_it_reads_is_refused():
    fc, lf = _head()
    counter = {"k": 0}

    def fn(x, y):
        counter["k"] = (counter["k"] + 1) % 2  # eager toggles it at every call; a replay would not
        return lf(fc(x) * (1.0 + counter["k"]), y)

    with pytest.raises(CompileError, match="changed what it reads"):
        ag.compile(fn)(_X, _Y)


def test_the_trace_limit_counts_programs_per_key_and_advises_on_number_arguments():
    fc, lf = _head()
    step = ag.compile(lambda x, y: lf(fc(x), y))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for frozen in (None, fc.bias, fc.weight):  # gradual unfreezing: each stage's programs, batches of two
            for p in fc.parameters():  # sizes, evaluation too
                p.requires_grad = p is not frozen
            for n in (8, 5):
                step(_X[:n], _Y[:n]).backward()
            fc.eval()
            step(_X, _Y)
            fc.train()
    assert step.cache_info().traces == 9  # more than 8 in all, at most 8 for one key: no warning
    scaled = ag.compile(lambda x, y, lam: lf(fc(x) * lam, y))
    with pytest.warns(UserWarning, match=r"one-element array \(np.array\(\[lam\]\)\)"):
        for k in range(40):
            scaled(_X, _Y, 1.0 + k / 100)


@pytest.mark.parametrize("smoothing, weight", [(0.1, None), (0.0, np.array([1.0, 2.0, 0.5]))])
@pytest.mark.parametrize("first_all_ignored", [False, True])
def test_a_batch_whose_targets_are_all_ignored_gives_eager_numbers_whichever_came_first(smoothing, weight,
                                                                                          first_all_ignored):
    fc, _ = _head()
    fn = lambda x, y: nn.functional.cross_entropy(fc(x), y, weight=weight, ignore_index=-1,  # noqa: E731
                                                    label_smoothing=smoothing)
    ignored = np.full(8, -1)
    calls = [(_X, ignored), (_X, _Y), (_X, _Y[::-1]), (_X, ignored)][0 if first_all_ignored else 1:]
    with np.errstate(all="ignore"):
        assert _run(fn, [fc.weight, fc.bias], calls, compiled=True) == _run(fn, [fc.weight, fc.bias], calls,
                                                                            compiled=False)


def test_what_a_descriptor_of_the_users_reads_is_guarded():
    class Scaled:
        def __get__(self, obj, owner=None):
            return obj._raw * 2.0

    class Cfg:
        scale = Scaled()

        def __init__(self):
            self._raw = 0.5

    fc, lf = _head()
    cfg = Cfg()
    _agree(lambda x, y: lf(fc(x) * cfg.scale, y), list(fc.parameters()),
           [lambda: None, lambda: setattr(cfg, "_raw", 1.5)])


# ---- the fourth round ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("condition", ["int_flag", "argmax", "labels", "int_mask"])
def test_a_condition_that_is_not_boolean_is_made_again_at_every_call(condition):
    w, ones = Value(np.array([1.0, -2.0, 3.0, 0.5]), label="w"), np.ones(4, dtype=np.int64)
    make = {
        "int_flag": lambda x, c: c,
        "argmax": lambda x, c: ag.argmax(x * w),
        "labels": lambda x, c: c * ones,
        "int_mask": lambda x, c: (x * w > 0).astype(np.int64),
    }[condition]
    fn = lambda x, c: ag.where(make(x, c), x * w, -x * w).sum()  # noqa: E731
    calls = [(np.array([1.0, 2.0, -1.0, 4.0]) * (k - 1), np.array(k % 2)) for k in range(3)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _run(fn, [w], calls, compiled=True) == _run(fn, [w], calls, compiled=False)


def test_detach_of_a_value_made_inside_the_function_is_kept_as_eager_keeps_it():
    W = Value(np.random.default_rng(0).standard_normal((3, 4)), label="W")
    h0 = Value(np.zeros(4))

    def fn(x):
        h = h0
        for t in range(3):
            h = ag.tanh(x[t] * W[t] + h.detach())  # truncated backpropagation through time
        return h.sum()

    calls = [(np.random.default_rng(k).standard_normal((3, 4)),) for k in range(3)]
    assert _run(fn, [W], calls, compiled=True) == _run(fn, [W], calls, compiled=False)


def test_a_result_kept_over_a_replay_that_raised_halfway_is_refused_not_wrong():
    w, ones = Value(np.full(4, 0.5), label="w"), np.ones(4)
    step = ag.compile(lambda p: ag.binary_cross_entropy(w * p, ones).sum())
    step(np.full(4, 0.9)).backward()
    kept = step(np.full(4, 0.8))
    with pytest.raises(ValueError, match="probabilities"):
        step(np.full(4, 3.0))  # raises after its forward wrote some of the buffers kept's backward reads
    with pytest.raises(CompileError, match="reused the buffers"):
        kept.backward()


def test_state_an_effect_keeps_is_neither_guarded_nor_refused():
    from autograd_core.compile import effect

    class Counting(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.calls, self.history = nn.Linear(4, 3), 0, []

        def _count(self):
            self.calls += 1

        def forward(self, x):
            effect(self._count)
            effect(lambda: self.history.append(1))
            return self.fc(x)

    nn.manual_seed(0)
    net, lf = Counting(), nn.CrossEntropyLoss()
    step = ag.compile(lambda x, y: lf(net(x), y))
    for _ in range(4):
        step(_X, _Y).backward()
    assert (net.calls, len(net.history), step.cache_info().traces) == (4, 4, 1)


def test_a_forward_that_keeps_its_output_on_the_module_is_refused_at_every_call():
    class Keeping(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.last = nn.Linear(4, 3), None

        def forward(self, x):
            self.last = self.fc(x)  # eager keeps each call's; a replay would keep the traced call's
            return self.last

    nn.manual_seed(0)
    net, lf = Keeping(), nn.CrossEntropyLoss()
    step = ag.compile(lambda x, y: lf(net(x), y))
    for _ in range(3):
        with pytest.raises(CompileError, match="changed what it reads"):
            step(_X, _Y)


def test_a_kept_program_never_binds_a_number_or_function_a_rule_reads_from_the_callers_globals():
    from autograd_core.ops import Op

    slope = {"beta": 0.1}
    op = Op("leaky_for_probe", lambda x: np.maximum(x, 0), inputs="x", formula="d/dx = 1 or beta",
            elementwise=True, register=False, d_x=lambda x, out: np.where(x > 0, 1.0, slope["beta"]))

    def new_step():
        w = Value(np.array([1.0, -1.0, 2.0]), label="w")
        return w, ag.compile(lambda x: op.apply(x * w).sum())

    w, step = new_step()
    step(np.ones(3)).backward()
    slope["beta"] = 0.5
    w, step = new_step()  # a model of the same shape: a kept program must not bring the old slope
    step(np.ones(3)).backward()
    assert w.grad.tolist() == [1.0, 0.5, 1.0]


def test_a_decorated_function_is_called_with_its_wrappers_signature():
    import functools

    fc, lf = _head()

    def with_model(f):
        @functools.wraps(f)
        def wrapper(*args):
            return f(fc, *args)
        return wrapper

    @with_model
    def loss_fn(model, x, y):
        return lf(model(x), y)

    _agree(loss_fn, list(fc.parameters()), [lambda: None, lambda: None])


def test_a_method_set_later_on_a_subclass_shadowing_the_bases_retraces():
    class Base(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 3)

        def act(self, z):
            return ag.tanh(z)

        def forward(self, x):
            return self.act(self.fc(x))

    class Net(Base):
        pass

    nn.manual_seed(0)
    net, lf = Net(), nn.CrossEntropyLoss()
    _agree(lambda x, y: lf(net(x), y), list(net.fc.parameters()),
           [lambda: None, lambda: setattr(Net, "act", lambda self, z: z.relu())])


def test_a_kept_program_is_taken_only_by_parameters_of_the_same_memory_layout():
    def run(fortran):
        w = Value(np.random.default_rng(5).standard_normal((7, 300)).T, label="w")
        if not fortran:
            w.data = np.ascontiguousarray(w.data)
        fn = lambda s: ((w * s) ** 2).sum()  # noqa: E731
        return _run(fn, [w], [(np.random.default_rng(k).standard_normal((1, 1)),) for k in range(3)], compiled=True), \
            _run(fn, [w], [(np.random.default_rng(k).standard_normal((1, 1)),) for k in range(3)], compiled=False)

    run(fortran=False)  # kept: a C-ordered parameter's program
    compiled, eager = run(fortran=True)
    assert compiled == eager


def test_a_module_under_a_dict_key_the_function_never_reads_is_not_guarded():
    import copy

    fc, lf = _head()
    state = {"model": fc, "best": copy.deepcopy(fc), "epoch": 0}
    step = ag.compile(lambda x, y: lf(state["model"](x), y))
    for epoch in range(10):
        state["best"], state["epoch"] = copy.deepcopy(fc), epoch
        state["best"].eval()
        step(_X, _Y).backward()
    assert step.cache_info().traces == 1


# ---- the fifth round -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("inside", ["optimizer", "module", "backward", "aux_backward"])
def test_what_sets_gradients_inside_the_function_is_refused(inside):
    import optim

    fc, lf = _head()
    opt = optim.SGD(fc.parameters(), lr=0.1)

    def fn(x, y):
        if inside == "optimizer":
            opt.zero_grad()  # (all grads None at the first call: refused by the call itself)
        elif inside == "module":
            fc.zero_grad()
        loss = lf(fc(x), y)
        if inside == "backward":
            loss.backward(retain_graph=True)
        elif inside == "aux_backward":
            (fc.weight * fc.weight).sum().backward()
        return loss

    fc.weight.grad = np.zeros_like(fc.weight.data)  # (so the module's zero_grad has something to reset)
    with pytest.raises(CompileError, match="inside a compiled function"):
        ag.compile(fn)(_X, _Y)


@pytest.mark.parametrize("name, value", [("eps", 0.5), ("momentum", 0.5)])
def test_the_state_an_effect_leaves_alone_stays_guarded(name, value):
    # batch norm counts its batches in an effect: that count is the effect's, its eps and momentum are not
    def run(compiled):
        nn.manual_seed(0)
        model, lf = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3)), nn.CrossEntropyLoss()
        fn = lambda x, y: lf(model(x), y)  # noqa: E731
        step = ag.compile(fn) if compiled else fn
        out = []
        for k in range(3):
            if k == 1:
                setattr(model[1], name, value)
            model.zero_grad()
            loss = step(_X, _Y)
            loss.backward()
            out.append((_bits(loss.data), _bits(model[0].weight.grad), _bits(model[1].running_mean)))
        return out

    assert run(True) == run(False)


_STATS, _HISTORY = {"batches": 0}, []


def test_containers_an_effect_updates_through_its_globals_are_its_own_state():
    from autograd_core.compile import effect

    def count():
        _STATS["batches"] += 1

    fc, lf = _head()
    _STATS["batches"] = 0
    _HISTORY.clear()

    def fn(x, y):
        effect(count)
        effect(lambda: _HISTORY.append(1))
        return lf(fc(x), y)

    step = ag.compile(fn)
    for _ in range(3):
        step(_X, _Y).backward()
    assert (_STATS["batches"], len(_HISTORY), step.cache_info().traces) == (3, 3, 1)


def test_another_threads_training_of_other_values_does_not_refuse_a_trace():
    import threading

    fc, lf = _head()
    other = nn.Linear(4, 3)
    models = {"a": fc, "b": other}
    tracing, trained = threading.Event(), threading.Event()

    def fn(x, y):
        if not tracing.is_set():  # (the trace's call: the other thread trains meanwhile)
            tracing.set()
            trained.wait(10)
        return lf(models["a"](x), y)

    def train_b():
        tracing.wait(10)
        other.zero_grad()
        lf(other(_X), _Y).backward()
        trained.set()

    worker = threading.Thread(target=train_b)
    worker.start()
    try:
        ag.compile(fn)(_X, _Y).backward()
    finally:
        worker.join()
    assert other.weight.grad is not None


def test_a_dict_unpacked_into_a_call_is_guarded_item_by_item():
    fc, _ = _head()
    loss_opts = {"label_smoothing": 0.0}
    fn = lambda x, y: nn.functional.cross_entropy(fc(x), y, **loss_opts)  # noqa: E731
    _agree(fn, list(fc.parameters()), [lambda: None, lambda: loss_opts.__setitem__("label_smoothing", 0.2)])


def test_a_convolution_into_batch_norm_summed_compiles_to_eager_bits():
    # the convolution's output is channels-last in memory; batch norm's weight gradient sums a product in
    # that layout (the engine's backward loops once disagreed here, and the compiler refused it)
    conv, bn = nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2)
    fn = lambda x: bn(conv(x)).sum()  # noqa: E731
    params = list(conv.parameters()) + list(bn.parameters())
    state = [(b, b.copy()) for b in (bn.running_mean, bn.running_var)]
    calls = [(np.random.default_rng(k).random((2, 1, 5, 5)),) for k in range(3)]
    eager = _run(fn, params, calls, compiled=False)
    for buffer, first in state:
        buffer[...] = first
    assert _run(fn, params, calls, compiled=True) == eager


# ---- eighth round: grad mode, reads of .grad and .label, a module's class and arrays -----------------------
def _mlp_and_data():
    rng = np.random.default_rng(1)
    nn.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3)), rng.standard_normal((8, 4)), rng.integers(0, 3, 8)


def test_a_function_that_reads_the_grad_mode_runs_itself_under_no_grad():
    model, X, y = _mlp_and_data()

    def loss_fn(X, y):
        loss = F.cross_entropy(model(X), y)
        if ag.is_grad_enabled():  # a regulariser while training only
            loss = loss + 0.01 * (model[0].weight ** 2).sum()
        return loss

    step = ag.compile(loss_fn)
    step(X, y).backward()
    with ag.no_grad():
        assert _bits(step(X, y).data) == _bits(loss_fn(X, y).data)


def test_enable_grad_inside_the_function_gives_a_graph_under_an_outer_no_grad():
    model, X, y = _mlp_and_data()

    def loss_fn(X, y):
        with ag.enable_grad():
            return F.cross_entropy(model(X), y)

    step = ag.compile(loss_fn)
    step(X, y).backward()
    model.zero_grad()
    with ag.no_grad():
        loss = step(X, y)
    loss.backward()  # (eager: the graph the function recorded itself)
    compiled = model[0].weight.grad.copy()
    model.zero_grad()
    with ag.no_grad():
        loss_fn(X, y).backward()
    assert compiled.tobytes() == model[0].weight.grad.tobytes()


def test_reading_a_parameters_grad_inside_the_function_is_refused():
    model, X, y = _mlp_and_data()

    def loss_fn(X, y):
        loss = F.cross_entropy(model(X), y)
        return loss + (0.1 * loss if model[0].weight.grad is not None else 0)

    with pytest.raises(CompileError, match=r"\.grad"):
        ag.compile(loss_fn)(X, y)


def test_a_branch_on_a_parameters_label_retraces_when_it_is_renamed():
    model, X, y = _mlp_and_data()
    w = model[0].weight
    fn = lambda X, y: F.cross_entropy(model(X), y) * (2.0 if w.label == "special" else 1.0)  # noqa: E731
    step = ag.compile(fn)
    step(X, y)
    w.label = "special"
    assert _bits(step(X, y).data) == _bits(fn(X, y).data)
    assert step.cache_info().traces == 2


def test_a_module_whose_class_is_swapped_retraces():
    model, X, y = _mlp_and_data()
    fn = lambda X, y: F.cross_entropy(model(X), y)  # noqa: E731
    step = ag.compile(fn)
    step(X, y)
    model[1].__class__ = nn.Sigmoid
    assert _bits(step(X, y).data) == _bits(fn(X, y).data)


def test_an_object_whose_class_is_swapped_retraces():
    class Double:
        def scale(self, v):
            return v * 2.0

    class Triple:
        def scale(self, v):
            return v * 3.0

    helper = Double()
    w = Value(np.ones(3))
    fn = lambda x: helper.scale(x * w).sum()  # noqa: E731
    step = ag.compile(fn)
    step(np.ones(3))
    helper.__class__ = Triple
    assert float(step(np.ones(3)).data) == 9.0


@pytest.mark.parametrize("as_buffer", [False, True])
def test_an_array_of_the_users_module_read_in_python_retraces_when_replaced(as_buffer):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 3)
            if as_buffer:
                self.register_buffer("scales", np.array([0.5, 1.0]))
            else:
                self.scales = np.array([0.5, 1.0])

        def forward(self, x):
            return self.fc(x) * float(self.scales[0]) * len(self.scales)

    _, X, y = _mlp_and_data()
    net = Net()
    fn = lambda X, y: F.cross_entropy(net(X), y)  # noqa: E731
    step = ag.compile(fn)
    step(X, y)
    net.scales = np.array([2.0, 1.0, 1.0])
    assert _bits(step(X, y).data) == _bits(fn(X, y).data)


_LIBRARY_ORIGINALS = (ag.tanh, F.cross_entropy, nn.Linear.forward)


@pytest.mark.parametrize("patch", ["ag.tanh", "F.cross_entropy", "nn.Linear.forward"])
def test_a_library_function_or_forward_rebound_after_the_first_call_retraces(patch):
    _, X, y = _mlp_and_data()
    nn.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.Linear(6, 3))
    fn = lambda X, y: F.cross_entropy(ag.tanh(model(X)), y)  # noqa: E731
    step = ag.compile(fn)
    step(X, y)
    try:
        if patch == "ag.tanh":
            ag.tanh = ag.sigmoid
        elif patch == "F.cross_entropy":
            F.cross_entropy = lambda z, t: _LIBRARY_ORIGINALS[1](z * 2.0, t)
        else:
            nn.Linear.forward = lambda self, x: _LIBRARY_ORIGINALS[2](self, x) * 2.0
        assert _bits(step(X, y).data) == _bits(fn(X, y).data)
    finally:
        ag.tanh, F.cross_entropy, nn.Linear.forward = _LIBRARY_ORIGINALS


def _elementwise_ops():
    from autograd_core.ops import OPS

    return sorted(name for name, op in OPS.items() if op.elementwise and op.function is not None
                  and len(op.inputs) in (1, 2) and not op.random and name not in ("clip", "where"))


def _result_and_warnings(fn, data):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            got = np.asarray(fn(data).data).tobytes()
        except Exception as error:  # noqa: BLE001 (the same exception in both is what is compared)
            got = type(error).__name__
    return got, sorted({str(w.message) for w in caught})


@pytest.mark.parametrize("name", _elementwise_ops())
def test_a_replay_warns_where_eager_warns_on_values_outside_a_domain(name):
    # log(0), exp(800), sqrt(-1): eager's forward is quiet for some operations (as PyTorch), and a replay
    # must be quiet there too (and warn where eager warns)
    from autograd_core.ops import OPS

    op = OPS[name]
    if len(op.inputs) == 1:
        fn = lambda x: op.function(x * 1.0).sum()  # noqa: E731
    else:
        fn = lambda x: op.function(x * 1.0, x[::-1] * 1.0).sum()  # noqa: E731
    step = ag.compile(fn)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        step(np.full(9, 0.5))
    provoking = np.array([0.0, -1.0, -800.0, 800.0, 1e308, -1e308, np.inf, np.nan, 0.5])
    assert _result_and_warnings(step, provoking) == _result_and_warnings(fn, provoking)


def _grad_facts(g):
    return type(g), g.strides, g.tobytes()


def test_an_input_gradient_passed_on_unchanged_is_laid_out_as_eagers_copy():
    # eval batch norm, then a convolution: x's gradient is the subtraction's (d(x - mean)/dx = 1), which
    # eager's .grad copies into C order; a sum of it then adds in the same order
    import copy

    nn.manual_seed(0)
    bn = nn.BatchNorm2d(3)
    bn.eval()
    eager_model = nn.Sequential(bn, nn.Conv2d(3, 2, 3))
    compiled_model = copy.deepcopy(eager_model)
    step = ag.compile(lambda x: (compiled_model(x) ** 2).sum())
    rng = np.random.default_rng(0)
    for _ in range(3):
        X = rng.standard_normal((2, 3, 9, 9))
        xa, xb = Value(X), Value(X)
        (eager_model(xa) ** 2).sum().backward()
        step(xb).backward()
        assert _grad_facts(xb.grad) == _grad_facts(xa.grad)


def test_the_traced_calls_gradients_are_plain_arrays_in_eagers_layout():
    # softplus's mask made the traced call's weight gradient an array of the tracer's class, which
    # kept its channels-last layout where eager's copy is in C order
    import copy

    nn.manual_seed(0)
    eager_model = nn.Sequential(nn.Conv2d(8, 16, 3, bias=False), nn.Softplus())
    compiled_model = copy.deepcopy(eager_model)
    step = ag.compile(lambda x: (compiled_model(x) ** 2).sum())
    rng = np.random.default_rng(1)
    for _ in range(2):
        X = rng.standard_normal((4, 8, 10, 10))
        eager_model[0].weight.grad = compiled_model[0].weight.grad = None
        (eager_model(X) ** 2).sum().backward()
        step(X).backward()
        assert _grad_facts(compiled_model[0].weight.grad) == _grad_facts(eager_model[0].weight.grad)


@pytest.mark.parametrize("weight", [np.array([0.5, 1.0, 2.0]), [0.5, 1.0, 2.0], np.array([1, 2, 3])])
def test_class_weights_of_another_dtype_than_the_scores_compile(weight):
    nn.manual_seed(0)
    model = nn.Linear(4, 3, dtype=np.float32)
    loss_fn = nn.CrossEntropyLoss(weight=weight)
    fn = lambda x, y: loss_fn(model(x), y)  # noqa: E731
    rng = np.random.default_rng(0)
    calls = [(rng.standard_normal((5, 4)).astype(np.float32), rng.integers(0, 3, 5)) for _ in range(3)]
    assert _run(fn, list(model.parameters()), calls, compiled=True) == _run(fn, list(model.parameters()), calls,
                                                                            compiled=False)


@pytest.mark.parametrize("loss", ["cross_entropy", "nll_loss"])
def test_a_loss_over_class_scores_per_pixel_compiles(loss):
    nn.manual_seed(0)
    conv = nn.Conv2d(2, 3, 1)
    fn = (lambda x, y: F.cross_entropy(conv(x), y)) if loss == "cross_entropy" else (  # noqa: E731
        lambda x, y: F.nll_loss(F.log_softmax(conv(x), 1), y))
    rng = np.random.default_rng(0)
    calls = [(rng.standard_normal((2, 2, 4, 4)), rng.integers(0, 3, (2, 4, 4))) for _ in range(3)]
    assert _run(fn, list(conv.parameters()), calls, compiled=True) == _run(fn, list(conv.parameters()), calls,
                                                                           compiled=False)


def test_a_compiled_loss_takes_the_idioms_of_a_training_loop():
    model, X, y = _mlp_and_data()
    fn = lambda X, y: F.cross_entropy(model(X), y)  # noqa: E731
    step = ag.compile(fn)
    eager = fn(X, y)
    for loss in (step(X, y), step(X, y)):  # the traced call's result and a replay's
        best = float(eager.data) + 1.0
        assert (loss < best) == (eager < best) and bool(loss <= eager) and not bool(loss > eager)
        assert min(best, loss) is loss
        assert loss.detach().item() == eager.detach().item() and loss.ndim == eager.ndim == 0
        assert np.array([loss]).dtype == np.float64 and np.array([loss])[0] == eager.item()
        loss.backward()
        assert loss.grad == 1.0


def test_newton_with_a_compiled_closure_says_why_it_needs_eager():
    import optim

    w = Value(np.array([3.0, -1.0]))
    step = ag.compile(lambda w: (w * w).sum())
    with pytest.raises(CompileError, match="second derivatives"):
        optim.Newton([w]).step(lambda: step(w))


# ---- ninth round: globals and builtins, argument labels, wrapped helpers, descriptors, iteration, warnings -
SCALE = 2.0


def test_a_global_read_through_globals_by_its_name_retraces():
    global SCALE
    w = Value(np.ones(3))
    fn = lambda x: (x * w * globals()["SCALE"]).sum()  # noqa: E731
    step = ag.compile(fn)
    step(np.arange(3.0))
    SCALE = 3.0
    try:
        assert float(step(np.arange(3.0)).data) == float(fn(np.arange(3.0)).data) == 9.0
    finally:
        SCALE = 2.0


def test_a_builtin_shadowed_later_by_a_global_retraces():
    namespace = {"Value": Value, "np": np}
    exec("w = Value(np.ones(3))\ndef fn(x):\n    return (x * w * max(1.0, 0.5)).sum()", namespace)  # noqa: S102
    step = ag.compile(namespace["fn"])
    step(np.arange(3.0))
    exec("def max(a, b):\n    return 7.0", namespace)  # noqa: S102
    assert float(step(np.arange(3.0)).data) == float(namespace["fn"](np.arange(3.0)).data) == 21.0


def test_the_label_of_a_value_argument_is_part_of_the_key():
    w = Value(np.ones(3))
    fn = lambda x: (x * w * (1.0 if x.label == "train" else 2.5)).sum()  # noqa: E731
    step = ag.compile(fn)
    step(Value(np.arange(3.0), label="train"))
    assert float(step(Value(np.arange(3.0), label="val")).data) == 7.5


def test_a_helper_behind_a_standard_library_decorator_is_walked():
    import contextlib

    namespace = {"Value": Value, "np": np, "contextlib": contextlib}
    exec("K = 2.0\nw = Value(np.ones(3))\n@contextlib.contextmanager\ndef scaled():\n    yield K\n"  # noqa: S102
         "def fn(x):\n    with scaled() as s:\n        return (x * w * s).sum()", namespace)
    step = ag.compile(namespace["fn"])
    step(np.arange(3.0))
    namespace["K"] = 3.0
    assert float(step(np.arange(3.0)).data) == 9.0


def test_an_instance_forward_set_to_a_library_function_retraces_when_swapped():
    act = nn.Module()
    act.forward = ag.tanh
    w = Value(np.ones(3))
    fn = lambda x: act(x * w).sum()  # noqa: E731
    step = ag.compile(fn)
    step(np.arange(3.0))
    act.forward = ag.sigmoid
    assert _bits(step(np.arange(3.0)).data) == _bits(fn(np.arange(3.0)).data)


def test_the_state_a_users_descriptor_keeps_is_guarded():
    class Knob:
        def __init__(self, v):
            self.v = v

        def __get__(self, obj, owner=None):
            return self.v

    class Net:
        scale = Knob(2.0)

    net, w = Net(), Value(np.ones(3))
    fn = lambda x: (x * w * net.scale).sum()  # noqa: E731
    step = ag.compile(fn)
    step(np.arange(3.0))
    Net.__dict__["scale"].v = 3.0
    assert float(step(np.arange(3.0)).data) == 9.0


def test_a_dict_iterated_by_its_items_has_every_item_guarded():
    weights = {"alpha": 2.0}
    w = Value(np.ones(3))

    def fn(x):
        total = 0.0
        for _, weight in weights.items():
            total = total + weight
        return (x * w * total).sum()

    step = ag.compile(fn)
    step(np.arange(3.0))
    weights["alpha"] = 3.0
    assert float(step(np.arange(3.0)).data) == 9.0


def test_a_branch_on_an_intermediates_requires_grad_runs_itself_under_no_grad():
    w = Value(np.ones(3))

    def fn(x):
        y = x * w
        return (y * (2.0 if y.requires_grad else 3.0)).sum()

    step = ag.compile(fn)
    step(np.arange(3.0)).backward()
    with ag.no_grad():
        assert float(step(np.arange(3.0)).data) == float(fn(np.arange(3.0)).data) == 9.0


def test_the_traced_calls_checks_neither_warn_nor_raise_under_the_callers_error_state():
    p = Value(np.array([1e-200, 0.5]))
    step = ag.compile(lambda x: (ag.tanh(p) * x).sum())
    with np.errstate(all="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = step(np.ones(2))  # eager's forward does not underflow; its backward's rule would
    with np.errstate(all="ignore"):
        loss.backward()
    assert p.grad[1] == 1 - np.tanh(0.5) ** 2


def test_a_zero_d_parameter_returned_as_an_extra_keeps_eagers_class():
    p = Value(0.0)
    p.data = np.array(1.5)
    fn = lambda x: ((x * p).sum(), p)  # noqa: E731
    step = ag.compile(fn)
    for _ in range(2):
        _, extra = step(np.ones(2))
        assert type(extra.data) is type(fn(np.ones(2))[1].data) is np.ndarray


def test_backward_of_a_loss_of_constants_raises_as_in_eager():
    def fn(x):
        x = x if isinstance(x, Value) else Value(x, requires_grad=False)
        return (x * 2.0).sum()

    step = ag.compile(fn)
    for _ in range(2):
        loss = step(np.array([1.0, 2.0]))
        assert loss.requires_grad is False
        with pytest.raises(RuntimeError, match="does not require grad"):
            loss.backward()


# ---- tenth round: loops, copies of a result, comparisons with eager, a module's dict, builtins --------------
def test_a_loop_in_the_function_does_not_guard_a_state_dict_it_never_reads():
    model, X, y = _mlp_and_data()
    state = {"step": 0, "losses": []}

    def fn(X, y):
        penalty = sum((p * p).sum() for p in model.parameters())  # a generator: a loop in the user's code
        return F.cross_entropy(model(X), y) + 1e-4 * penalty

    step = ag.compile(fn)
    for _ in range(5):
        loss = step(X, y)
        state["step"] += 1
        state["losses"].append(float(loss))
    assert step.cache_info().traces == 1


def test_a_copy_or_a_pickle_of_a_compiled_result_is_a_new_value_without_its_backward():
    import copy
    import pickle

    w = Value(np.ones(2))
    loss = ag.compile(lambda x: (x * w).sum())(np.ones(2))
    for other in (copy.copy(loss), copy.deepcopy(loss), pickle.loads(pickle.dumps(loss))):
        assert type(other) is Value and float(other.data) == 2.0 and other.is_leaf
        other.backward()
    assert w.grad is None


def test_an_eager_loss_compares_with_a_compiled_one():
    w = Value(np.array([1.0, 2.0]))
    fn = lambda x: (x * w).sum()  # noqa: E731
    best = ag.compile(fn)(np.ones(2))
    eager = fn(np.ones(2) * 0.5)
    assert bool(eager < best) and min(best, eager) is eager and not bool(eager == best) and bool(best > eager)


SCALE_B = 2.0


def test_a_global_read_through_its_modules_dict_by_name_retraces():
    global SCALE_B
    import sys as _sys

    this = _sys.modules[__name__]
    w = Value(np.ones(3))
    fn = lambda x: (x * w).sum() * vars(this)["SCALE_B"]  # noqa: E731
    step = ag.compile(fn)
    step(np.arange(3.0))
    SCALE_B = 3.0
    try:
        assert float(step(np.arange(3.0)).data) == 9.0
    finally:
        SCALE_B = 2.0


def test_a_builtin_replaced_after_the_first_call_retraces():
    import builtins as _builtins

    w = Value(np.ones(3))
    fn = lambda x: (x * w * abs(-2.0)).sum()  # noqa: E731
    step = ag.compile(fn)
    step(np.arange(3.0))
    original = _builtins.abs
    _builtins.abs = lambda v: 3.0
    try:
        assert float(step(np.arange(3.0)).data) == float(fn(np.arange(3.0)).data) == 9.0
    finally:
        _builtins.abs = original


# ---- eleventh round: a custom op's globals, zero keys, generated names, threads ----------------------------
K_SCALE = 2.0


def test_a_custom_ops_rule_reads_its_globals_as_they_are_at_each_trace():
    global K_SCALE
    from autograd_core import Op

    scale = Op("scale_k", lambda x: x * K_SCALE, inputs="x", elementwise=True,
               d_x=lambda x, out: K_SCALE, formula="d(kx)/dx = k", register=False)
    w = Value(np.zeros(3))
    fn = lambda x: scale.apply(x * w).sum()  # noqa: E731
    x = np.array([0.3, -0.7, 1.1])
    ag.compile(fn)(x).backward()  # an earlier compiled function, traced with K_SCALE = 2
    K_SCALE = 5.0
    try:
        w.grad = None
        step = ag.compile(fn)
        step(x).backward()
        assert step.program()["K_SCALE"] == 5.0 and w.grad.tolist() == (5.0 * x).tolist()
    finally:
        K_SCALE = 2.0


@pytest.mark.parametrize("before, after", [({0: 1.0}, {-0.0: 1.0}), ({1: 1.0}, {True: 1.0})])
def test_a_dict_key_replaced_by_an_equal_key_of_another_type_or_sign_retraces(before, after):
    powers = dict(before)
    w = Value(np.array([-1.0, -2.0, 3.0]))

    def fn(x):
        out = x * w
        for key, value in powers.items():
            out = out * (key * value)
        return out.sum()

    step = ag.compile(fn)
    step(np.ones(3))
    powers.clear()
    powers.update(after)
    assert step(np.ones(3)) is not None and step.cache_info().traces == 2


def test_a_set_of_zero_replaced_by_negative_zero_retraces():
    holder = {"factors": {0.0}}
    w = Value(np.array([-1.0, 2.0]))

    def fn(x):
        out = x * w
        for factor in holder["factors"]:
            out = out * factor
        return out.sum()

    step = ag.compile(fn)
    step(np.ones(2)).backward()
    holder["factors"] = {-0.0}
    w.grad = None
    step(np.ones(2)).backward()
    compiled = w.grad.tobytes()
    w.grad = None
    fn(np.ones(2)).backward()
    assert compiled == w.grad.tobytes()


def test_a_label_or_an_argument_named_like_a_program_helper_compiles():
    w = Value(np.ones((3, 4)), label="recycled")
    h = Value(np.ones(4), label="_buf_0")

    def recycled_loss(recycled):
        return ((recycled @ w) * h).sum()

    step = ag.compile(recycled_loss)
    for _ in range(2):
        w.grad = None
        step(np.ones((2, 3))).backward()
        compiled = w.grad.copy()
        w.grad = None
        recycled_loss(np.ones((2, 3))).backward()
        assert compiled.tobytes() == w.grad.tobytes()


def test_another_threads_backward_during_a_trace_is_not_taken_for_the_functions_own():
    import threading

    w = Value(np.ones(3))

    def other_thread_trains():
        (w * 2.0).sum().backward()  # a training step elsewhere: w.grad set, in its own thread

    def fn(x):
        thread = threading.Thread(target=other_thread_trains)
        thread.start()
        thread.join()
        return (x * w).sum()

    ag.compile(fn)(np.ones(3))  # (refused before: "set w.grad during the call")


def test_setting_a_parameters_grad_inside_the_function_is_refused():
    w = Value(np.ones(3))

    def fn(x):
        w.grad = None
        return (x * w).sum()

    with pytest.raises(CompileError, match=r"setting `\.grad`"):
        ag.compile(fn)(np.ones(3))


# ---- twelfth round: the user's own operations -----------------------------------------------------------
def _user_op_runs(op_apply, xs):
    w = Value(np.array([1.0, 2.0, 3.0]))
    fn = lambda x: (op_apply(w * x) * x).sum()  # noqa: E731
    step = ag.compile(fn)
    for x in xs:
        w.grad = None
        eager = fn(x)
        eager.backward()
        eager_grad = w.grad.copy()
        w.grad = None
        compiled = step(x)
        compiled.backward()
        assert _bits(compiled.data) == _bits(eager.data) and w.grad.tobytes() == eager_grad.tobytes()
    return step


def test_a_users_op_is_written_from_its_functions_not_from_its_numpy_forms():
    from autograd_core.ops import Op

    relu = Op("my_relu", lambda x: np.maximum(x, 0.0), inputs="x", elementwise=True,
              d_x=lambda x, out: (x > 0).astype(x.dtype), formula="relu", register=False,
              as_numpy={"forward": "np.abs(x)", "x": "np.ones_like(x)"})  # wrong for x < 0, on purpose
    _user_op_runs(relu.apply, [np.ones(3), -np.ones(3), np.array([1.0, -1.0, 2.0])])


def test_a_lambda_that_rebinds_its_parameter_inside_is_called_not_written_out():
    from autograd_core.ops import Op

    my_abs = Op("my_abs", lambda x: np.maximum.reduce([x for x in (x, -x)]), inputs="x", elementwise=True,
                d_x=lambda x, out: np.sign(x), formula="|x|", register=False)
    _user_op_runs(my_abs.apply, [np.ones(3), -np.ones(3)])


def test_a_lambda_is_told_from_one_with_an_equal_constant_of_another_sign():
    from autograd_core.ops import Op

    forwards = [lambda x: x + 0.0, lambda x: x + -0.0]
    keep = Op("keep_sign", forwards[1], inputs="x", elementwise=True, d_x=lambda x, out: 1, formula="x",
              register=False)
    step = _user_op_runs(keep.apply, [np.ones(3)])
    assert "+ -0.0" in step.source() or "keep_sign(" in step.source()


@pytest.mark.parametrize("text", ["code", "formula"])
def test_an_ops_code_or_formula_text_stays_a_comment(text):
    from autograd_core.ops import Op

    injected = "x * 2\ndef forward(x, w):\n    mul = w * x\n    double = mul * 200.0"
    texts = {"code": injected, "formula": "d/dx = 2"} if text == "code" else {"formula": "d(2x)/dx = 2\n(a slope)"}

    def doubled(x):  # (a named function: called by name, its op's code= text written beside it)
        return x * 2.0

    double = Op("double", doubled, inputs="x", elementwise=True, d_x=lambda x, out: 2.0 + 0 * x,
                register=False, **texts)
    step = _user_op_runs(double.apply, [np.ones(3), np.ones(3)])
    for text in (step.source(), step._last.runs):
        assert sum(line.startswith("def forward") for line in text.splitlines()) == 1


# ---- thirteenth round: refusals the function catches, and what a refusal leaves behind -------------------
def test_a_refusal_the_functions_own_except_catches_is_raised_after_the_call():
    w = Value(np.ones(3))

    def fn(x):
        loss = (x * w).sum()
        try:
            scale = 2.0 if float(loss.data) > 0 else 0.5
        except Exception:  # noqa: BLE001 (the user's defensive code)
            scale = 1.0
        return loss * scale

    with pytest.raises(CompileError, match="caught this error"):
        ag.compile(fn)(np.ones(3))


def test_batch_norm_with_cumulative_momentum_is_refused_before_it_counts_the_batch():
    bn = nn.BatchNorm1d(2, momentum=None)
    with pytest.raises(CompileError, match="momentum=None"):
        ag.compile(lambda x: bn(x).sum())(np.random.default_rng(0).standard_normal((4, 2)))
    assert int(bn.num_batches_tracked) == 0


# ---- fourteenth round: hyperparameters held as arrays, results as operands, odd arguments ----------------
def _agree_over_calls(make, change, calls=3, x_shape=(6, 4), classes=3):
    """The loss and every gradient of a model `make()` builds, compiled and eager, over `calls` calls with
    `change(parts)` between them: equal bit for bit, or the compiled step refuses."""
    results = []
    for compiled in (False, True):
        nn.manual_seed(0)
        parts = make()
        step = ag.compile(parts["fn"]) if compiled else parts["fn"]
        out = []
        for k in range(calls):
            rng = np.random.default_rng(k)
            x, y = rng.standard_normal(x_shape), rng.integers(0, classes, x_shape[0])
            for p in parts["params"]:
                p.grad = None
            nn.manual_seed(10 + k)
            loss = step(x, y)
            loss.backward()
            out.append((_bits(loss.data), [_bits(p.grad) for p in parts["params"]]))
            change(parts, k)
        results.append(out)
    assert results[0] == results[1]


@pytest.mark.parametrize("layer, attribute, value", [
    (lambda: nn.Dropout(np.array(0.5)), "p", 0.2),
    (lambda: nn.Hardtanh(-1.0, np.array(1.0)), "max_val", 0.25),
    (lambda: nn.CELU(np.array(1.0)), "alpha", 2.5),
    (lambda: nn.Softplus(np.array(1.0)), "beta", 2.0),
])
def test_a_layers_number_given_as_a_0d_array_and_changed_in_place_is_seen(layer, attribute, value):
    def make():
        lin, act, head = nn.Linear(4, 5), layer(), nn.Linear(5, 3)
        return {"fn": lambda x, y: F.cross_entropy(head(act(lin(x))), y), "act": act,
                "params": [lin.weight, lin.bias, head.weight, head.bias]}

    def change(parts, k):
        getattr(parts["act"], attribute)[...] = value - 0.05 * k

    _agree_over_calls(make, change)


def test_label_smoothing_given_as_a_0d_array_and_changed_in_place_is_seen():
    def make():
        lin, criterion = nn.Linear(4, 3), nn.CrossEntropyLoss(label_smoothing=np.array(0.0))
        return {"fn": lambda x, y: criterion(lin(x), y), "criterion": criterion, "params": [lin.weight, lin.bias]}

    _agree_over_calls(make, lambda parts, k: parts["criterion"].label_smoothing.__setitem__(..., 0.1 * (k + 1)))


@pytest.mark.parametrize("through", ["module", "function"])
def test_class_weights_given_as_a_value_are_read_after_their_data_is_replaced(through):
    def make():
        lin, weight = nn.Linear(4, 3), Value(np.array([1.0, 2.0, 0.5]))
        criterion = nn.CrossEntropyLoss(weight=weight)
        fn = (lambda x, y: criterion(lin(x), y)) if through == "module" else (
            lambda x, y: F.cross_entropy(lin(x), y, weight=weight))
        return {"fn": fn, "weight": weight, "params": [lin.weight, lin.bias]}

    _agree_over_calls(make, lambda parts, k: setattr(parts["weight"], "data", np.array([0.5, 1.0 + k, 3.0])))


def test_a_learning_rate_read_from_a_scheduler_inside_the_step_is_seen():
    import optim

    def make():
        lin = nn.Linear(4, 3)
        sched = optim.lr_scheduler.StepLR(optim.SGD(lin.parameters(), lr=0.1), step_size=1, gamma=0.5)
        fn = lambda x, y: F.cross_entropy(lin(x), y) + (lin.weight ** 2).sum() * sched.get_last_lr()[0]  # noqa: E731
        return {"fn": fn, "sched": sched, "params": [lin.weight, lin.bias]}

    _agree_over_calls(make, lambda parts, k: parts["sched"].step())


@pytest.mark.parametrize("python_read", ["sum", "float"])
def test_a_small_held_array_read_by_the_program_and_by_python_is_guarded_by_its_numbers(python_read):
    w = Value(np.linspace(-1.0, 1.0, 4), label="w")
    c = np.ones(4)
    fn = (lambda x: (x * w * c + w * c.sum()).sum()) if python_read == "sum" else (  # noqa: E731
        lambda x: (x * w * c).sum() + float(c[0]))
    step = ag.compile(fn)
    for k in range(3):
        c[...] = np.arange(4.0) + k  # the same array, new numbers
        x = np.random.default_rng(k).standard_normal((2, 4))
        w.grad = None
        compiled = step(x)
        compiled.backward()
        got = (_bits(compiled.data), _bits(w.grad))
        w.grad = None
        eager = fn(x)
        eager.backward()
        assert got == (_bits(eager.data), _bits(w.grad))


def test_big_endian_arguments_and_parameters_compile():
    w = Value(np.linspace(-1.0, 1.0, 3).astype(">f4"), label="w")
    calls = [(np.random.default_rng(k).standard_normal((5, 3)).astype(">f8"),) for k in range(3)]
    fn = lambda x: ((x * w) ** 2).sum()  # noqa: E731
    assert _run(fn, [w], calls, compiled=True) == _run(fn, [w], calls, compiled=False)


@pytest.mark.parametrize("make", [lambda a: np.asmatrix(a), lambda a: np.ma.masked_array(a, mask=a > 1)])
def test_array_subclasses_with_arithmetic_of_their_own_are_refused(make):
    w = Value(np.ones((2, 2)))
    with pytest.raises(CompileError, match="plain ndarrays"):
        ag.compile(lambda m: (w * (m * m)).sum())(make(np.arange(4.0).reshape(2, 2)))


def test_nan_and_minus_nan_python_arguments_are_other_programs():
    w = Value(np.ones(2))
    step = ag.compile(lambda x, s: (x * w).sum() * s)
    for s in (math.nan, -math.nan):
        assert np.signbit(step(np.ones(2), s).data) == np.signbit((np.ones(2) * w).sum().data * s)
    assert step.cache_info().traces == 2


def test_a_value_argument_the_function_also_reads_from_its_closure_is_refused():
    w = Value(np.array([0.1, 0.7, -0.3]), label="w")
    with pytest.raises(CompileError, match="also from its closure"):
        ag.compile(lambda v: (v * 1e16).sum() + (w * 1.0).sum() + (v * -1e16).sum())(w)


def test_an_integer_argument_written_into_before_backward_does_not_reach_the_backward():
    w = Value(np.linspace(-1.0, 1.0, 4))
    fn = lambda labels: (w * w * labels).sum()  # noqa: E731
    step = ag.compile(fn)
    for k in range(3):
        grads = []
        for f in (fn, step):
            labels = np.random.default_rng(k).integers(0, 5, 4)
            w.grad = None
            loss = f(labels)
            labels[...] = 7  # the caller reuses its buffer before backward()
            loss.backward()
            grads.append(w.grad.copy())
        assert np.array_equal(*grads)


@pytest.mark.parametrize("body", [lambda x: x.reshape(3, 4, order="F").sum(), lambda x: x.sum(dtype=np.float32)])
def test_numpy_keywords_on_a_float_argument_raise_a_compile_error_that_is_a_type_error(body):
    w = Value(np.ones(()))
    with pytest.raises(CompileError, match="array argument is a Value") as caught:
        ag.compile(lambda x: body(x) * w)(np.ones((4, 3)))
    assert isinstance(caught.value, TypeError)


@pytest.mark.parametrize("fn", [lambda x, w: (x / w).sum(), lambda x, w: (w * (3.0 / x)).sum(),
                                lambda x, w: (w * x.sum()).sum(), lambda x, w: (w * x[0, 1]).sum()])
def test_what_eager_computes_as_an_array_or_as_a_value_depending_on_the_code_is_refused(fn):
    w = Value(np.linspace(0.5, 1.0, 3).astype(np.float32))
    with pytest.raises(CompileError, match="cannot tell which"):
        ag.compile(lambda x: fn(x, w))(np.random.default_rng(0).uniform(1, 2, (4, 3)))


def test_division_as_one_operation_compiles_as_eager():
    w = Value(np.linspace(0.5, 1.0, 3))
    fn = lambda x: (ag.div(x, w) + ag.div(3.0, x) * w).sum()  # noqa: E731
    calls = [(np.random.default_rng(k).uniform(1, 2, (4, 3)),) for k in range(3)]
    assert _run(fn, [w], calls, compiled=True) == _run(fn, [w], calls, compiled=False)


@pytest.mark.parametrize("use", [
    lambda r, v: r + (v ** 2).sum(), lambda r, v: (v ** 2).sum() + r, lambda r, v: v * r,
    lambda r, v: ag.stack([r, r]).mean(), lambda r, v: ag.exp(r), lambda r, v: abs(r),
])
def test_a_compiled_result_as_an_operand_is_refused_on_either_side(use):
    w, v = Value(np.array([1.0, -2.0])), Value(np.array([0.5, 0.25]))
    result = ag.compile(lambda x: (x * w).sum())(np.ones(2))
    with pytest.raises(CompileError, match="ends the compiled graph"):
        use(result, v)


def test_a_compiled_result_converts_and_tests_as_an_eager_one():
    w = Value(np.array([1.0, -2.0]))
    keep = ag.compile(lambda x: (x * w).sum(keepdims=True))(np.ones(2))
    assert float(keep) == -1.0 and len(keep) == 1 and bool(keep) is True and keep.is_leaf is False
    zero = ag.compile(lambda x: (x * w).sum() * 0.0)(np.ones(2))
    assert bool(zero) is False


def test_a_one_tuple_and_a_namedtuple_come_back_as_returned():
    from collections import namedtuple

    Out = namedtuple("Out", "loss logits")
    w = Value(np.array([1.0, -2.0]))
    (alone,) = ag.compile(lambda x: ((x * w).sum(),))(np.ones(2))
    assert float(alone.data) == -1.0
    out = ag.compile(lambda x: Out((x * w).sum(), x * w))(np.ones(2))
    assert type(out) is Out and out.logits.data.tolist() == [1.0, -2.0]
    out.loss.backward()


def test_an_extra_made_from_array_arguments_alone_is_refused():
    w = Value(np.array([1.0, -2.0]))
    with pytest.raises(CompileError, match="array arguments alone"):
        ag.compile(lambda x: ((x * w).sum(), x * 2))(np.ones(2))


# ---- fifteenth round: an engine function's result is a Value in eager too; labels made in the step -------
@pytest.mark.parametrize("fn", [
    lambda x, w: (3.0 / ag.exp(x) * w).sum(),
    lambda x, w: (F.softmax(x, dim=1) / w).sum(),
    lambda x, w: (ag.log1p(x) / w).sum(),
    lambda x, w: (w * ag.exp(x).sum()).sum(),
])
def test_what_an_engine_function_made_of_an_array_argument_compiles_as_eager(fn):
    w = Value(np.linspace(0.5, 1.0, 3).astype(np.float32), label="w")
    calls = [(np.random.default_rng(k).uniform(0.1, 1.0, (4, 3)),) for k in range(3)]
    step = lambda x: fn(x, w)  # noqa: E731
    assert _run(step, [w], calls, compiled=True) == _run(step, [w], calls, compiled=False)


def test_an_extra_an_engine_function_made_of_an_array_argument_comes_back():
    w = Value(np.array([1.0, -2.0]))
    loss, extra = ag.compile(lambda x: ((x * w).sum(), ag.exp(x).mean()))(np.zeros(2))
    assert float(extra.data) == 1.0


def test_a_float64_arguments_number_as_a_float32_lerps_weight_is_refused():
    w = Value(np.linspace(-1.0, 1.0, 3).astype(np.float32))
    with pytest.raises(CompileError, match="cannot tell which"):
        ag.compile(lambda x: ag.lerp(w, w * 2, x.mean()).sum())(np.random.default_rng(0).uniform(0, 1, (4, 3)))


def _labels_made_in_the_step(fn, dtype):
    """fn(model, x, y) compiled and eager over four calls of new labels: losses and gradients, bit for bit."""
    results = []
    for compiled in (False, True):
        nn.manual_seed(0)
        model = nn.Linear(4, 3, dtype=dtype)
        step = ag.compile(lambda x, y: fn(model, x, y)) if compiled else (lambda x, y: fn(model, x, y))
        out = []
        for k in range(4):
            rng = np.random.default_rng(k)
            x, y = rng.standard_normal((6, 4)).astype(dtype), rng.integers(0, 3, 6)
            model.zero_grad()
            loss = step(x, y)
            loss.backward()
            out.append((_bits(loss.data), _bits(model.weight.grad), _bits(model.bias.grad)))
        results.append(out)
    assert results[0] == results[1]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("fn", [
    lambda m, x, y: F.cross_entropy(m(x), F.one_hot(y, 3)),
    lambda m, x, y: F.cross_entropy(m(x), F.one_hot(y, 3).astype(m.weight.dtype) * 0.9 + 0.1 / 3),
    lambda m, x, y: F.cross_entropy(m(x), F.argmax(m(x * 2.0).detach(), dim=1)),
    lambda m, x, y: F.cross_entropy(m(x), y, weight=ag.softmax(m(x).sum(axis=0).detach(), axis=0)),
    lambda m, x, y: F.nll_loss(F.log_softmax(m(x), 1), y, weight=ag.softmax(m(x).sum(axis=0).detach(), axis=0)),
    lambda m, x, y: F.multi_margin_loss(m(x), y, weight=ag.softmax(m(x).sum(axis=0).detach(), axis=0)),
])
def test_targets_and_class_weights_made_in_the_step_are_made_again_at_every_call(fn, dtype):
    _labels_made_in_the_step(fn, dtype)


# ---- sixteenth round: course code, and what NumPy's scalars do in eager ---------------------------------
def test_an_operations_parameter_that_is_a_float_argument_is_refused():
    from autograd_core.ops import Op

    squared_error = Op("squared_error", lambda p, target: ((p - target) ** 2).sum(), inputs="p",
                       d_p=lambda g, p, out, target: g * 2 * (p - target), formula="d/dp (p-t)^2 = 2(p-t)",
                       register=False)
    w = Value(np.ones(3))
    with pytest.raises(CompileError, match="as its parameter 'target'"):
        ag.compile(lambda x, t: squared_error.apply(w * x, target=t))(np.full(3, 2.0), np.array([1.0, 2.0, 3.0]))


def test_a_value_made_of_an_array_argument_inside_the_step_is_read_at_every_call():
    nn.manual_seed(0)
    model = nn.Linear(4, 3)
    fn = lambda x, y: F.cross_entropy(model(Value(x, requires_grad=False)), y)  # noqa: E731  (the notebooks' way)
    rng = np.random.default_rng(0)
    calls = [(rng.standard_normal((5, 4)), rng.integers(0, 3, 5)) for _ in range(3)]
    assert _run(fn, list(model.parameters()), calls, compiled=True) == _run(fn, list(model.parameters()), calls,
                                                                            compiled=False)


@pytest.mark.parametrize("fn, dtype, refused", [
    (lambda x, w: (w ** x.mean()).sum(), np.float32, True),      # eager: a constant exponent (another operation)
    (lambda x, w: ag.maximum(x, (x * 2.0).max().astype(np.float64) + w.sum() * 0).sum(), np.float16, True),
    (lambda x, w: (w * 2.3 ** x[0]).sum(), np.float32, False),   # a scalar in eager too
])
def test_numbers_of_array_arguments_the_engine_takes_otherwise_than_numpy_are_refused(fn, dtype, refused):
    w = Value(np.linspace(0.5, 1.0, 3).astype(np.float32))
    x = np.random.default_rng(0).uniform(0.5, 1.0, 3).astype(dtype)
    if refused:
        with pytest.raises(CompileError, match="array argument"):
            ag.compile(lambda x: fn(x, w))(x)
        return
    assert _bits(ag.compile(lambda x: fn(x, w))(x).data) == _bits(fn(x, w).data)


def test_a_0d_float32_argument_under_numpys_own_power_is_refused():
    w = Value(np.ones(3))
    with pytest.raises(CompileError, match="0-d float32 array argument"):
        ag.compile(lambda x: ag.sum(w * (2.3 ** x)))(np.array(1.2345678, dtype=np.float32))


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_a_numpy_float64_scalar_with_an_array_argument_is_numpys_strong_float64(dtype):
    w = Value(np.linspace(0.5, 1.0, 3))
    fn = lambda x: (w * (x / np.sqrt(2.0))).sum() + (w * (x * np.float64(0.3))).sum()  # noqa: E731
    calls = [(np.random.default_rng(k).standard_normal(3).astype(dtype),) for k in range(3)]
    assert _run(fn, [w], calls, compiled=True) == _run(fn, [w], calls, compiled=False)


# ---- seventeenth round: what nn makes a Value, in-place operators, numbers first ---------------------------
@pytest.mark.parametrize("fn", [
    lambda x, w: ((x * w).sum(), x.__iadd__(1.0))[0],                 # x += 1: eager writes the caller's array
    lambda x, w: (ag.div(2.5, x) * w).sum(),                           # eager: float64 (a number and an array)
    lambda x, w: (w * (np.float64(3.0) / x)).sum(),                    # eager: NumPy's division
    lambda x, w: (w * (x / F.dropout(w * 1.0, 0.0))).sum(),            # eager: w's __rtruediv__
])
def test_what_eager_does_to_an_array_argument_and_a_value_would_not_is_refused(fn):
    w = Value(np.linspace(0.5, 1.0, 3).astype(np.float32))
    with pytest.raises(CompileError, match="array argument"):
        ag.compile(lambda x: fn(x, w))(np.random.default_rng(0).uniform(0.5, 1.0, 3).astype(np.float32))


def test_the_way_every_refusal_of_an_array_argument_proposes_compiles_as_eager():
    w = Value(np.linspace(0.5, 1.0, 3).astype(np.float32))

    def fn(x):
        x = Value(x, requires_grad=False)  # (what nn's layers do with an array)
        return (ag.div(2.5, x) * w + w ** x.mean() + 3.0 / x).sum()

    calls = [(np.random.default_rng(k).uniform(0.5, 1.0, 3).astype(np.float32),) for k in range(3)]
    assert _run(fn, [w], calls, compiled=True) == _run(fn, [w], calls, compiled=False)


def test_an_nn_loss_given_a_number_of_an_array_argument_compiles_as_eager():
    nn.manual_seed(0)
    model = nn.Linear(4, 1, dtype=np.float32)
    fn = lambda x, y: F.mse_loss(model(x).mean(), y.mean())  # noqa: E731  (nn makes y.mean() a Value, as eager)
    calls = [(np.random.default_rng(k).standard_normal((5, 4)).astype(np.float32),
              np.random.default_rng(k + 9).standard_normal(5)) for k in range(3)]
    assert _run(fn, list(model.parameters()), calls, compiled=True) == _run(fn, list(model.parameters()), calls,
                                                                            compiled=False)


def test_a_compiled_function_called_inside_another_while_it_traces_says_so():
    w = Value(np.ones(3))
    inner = ag.compile(lambda x, y: (x * w).sum() * 1.0)
    inner(np.ones(3), np.arange(3))  # (its program exists: the call inside would replay it)
    with pytest.raises(CompileError, match="called while another traces"):
        ag.compile(lambda x, y: inner(x, y) * 2.0)(np.ones(3), np.arange(3))


def test_class_weights_given_as_a_list_compile_as_eager():
    nn.manual_seed(0)
    model = nn.Linear(4, 3)
    weight = [1.0, 2.0, 0.5]
    fn = lambda x, y: F.cross_entropy(model(x), y, weight=weight)  # noqa: E731  (a host array that is its input)
    rng = np.random.default_rng(0)
    calls = [(rng.standard_normal((6, 4)), rng.integers(0, 3, 6)) for _ in range(3)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (the list's array is made in the call: kept, with the compile's warning)
        assert _run(fn, list(model.parameters()), calls, compiled=True) == _run(fn, list(model.parameters()), calls,
                                                                                compiled=False)


@pytest.mark.parametrize("fn", [
    lambda x, w: ag.sum(ag.where(x > 0, 0.3, x) * w),   # eager: 0.3 stays float64 beside an array
    lambda x, w: ag.sum(ag.lerp(0.1, x, 0.3) * w),
])
def test_an_engine_function_of_a_number_first_and_an_array_argument_is_refused(fn):
    w = Value(np.linspace(-1.0, 1.0, 3))
    with pytest.raises(CompileError, match="a number and a float array argument"):
        ag.compile(lambda x: fn(x, w))(np.array([1.0, -1.0, 2.0], dtype=np.float32))


@pytest.mark.parametrize("fn", [
    lambda x, y, w: ((x * w) * (y[:, None] == np.arange(5))).sum(),   # one-hot rows by broadcasting
    lambda x, y, w: (x * w * (y > 1)[:, None]).sum(),
    lambda x, y, w: (x * w * y[::-1, None]).sum(),
])
def test_the_label_idioms_of_slices_and_new_axes_are_made_again_at_every_call(fn):
    w = Value(np.linspace(-1.0, 1.0, 5))
    rng = np.random.default_rng(0)
    calls = [(rng.standard_normal((4, 5)), rng.integers(0, 5, 4)) for _ in range(3)]
    step = lambda x, y: fn(x, y, w)  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (np.arange(5), a constant made in the call: kept, with a warning)
        assert _run(step, [w], calls, compiled=True) == _run(step, [w], calls, compiled=False)


# ---- nineteenth round: the step called from inside its own run, a backward stopped halfway -----------------
def test_a_step_called_again_from_its_own_effect_gives_eager_numbers():
    from autograd_core.compile import effect

    rng = np.random.default_rng(0)
    x_val, y_val = rng.standard_normal((8, 4)), rng.standard_normal((8, 1))

    def run(compiled):
        nn.manual_seed(0)
        l1, l2 = nn.Linear(4, 6), nn.Linear(6, 1)
        state = array.array("i", [0, 0])  # ready (not at the traced call), busy (not inside the logging call)
        logged = array.array("d")  # (a list would be guarded: its length, read by the code, changes)

        def log_validation(_):  # a validation loss logged with the same step, under no_grad
            if state[0] and not state[1]:
                state[1] = 1
                with ag.no_grad():
                    logged.append(float(step(x_val, y_val).data))
                state[1] = 0

        def f(x, y):
            h = ag.tanh(l1(x))
            effect(log_validation, h)
            return ((l2(h) - y) ** 2).mean()

        step = ag.compile(f) if compiled else f
        calls = np.random.default_rng(1)
        out = []
        for _ in range(3):
            x, y = calls.standard_normal((8, 4)), calls.standard_normal((8, 1))
            for p in (*l1.parameters(), *l2.parameters()):
                p.grad = None
            loss = step(x, y)
            loss.backward()
            state[0] = 1
            out.append((_bits(loss.data), _bits(l1.weight.grad)))
        return out, logged.tolist()

    assert run(compiled=True) == run(compiled=False)


@pytest.mark.parametrize("retain_graph", [True, False])
def test_a_backward_stopped_halfway_is_not_run_again_on_what_it_wrote(retain_graph):
    stop = {"now": False}

    def d_square(x, out):
        if stop["now"]:
            stop["now"] = False
            raise KeyboardInterrupt  # Ctrl-C arriving while this rule runs
        return 2 * x

    square = ag.Op("probe_square", np.square, inputs="x", elementwise=True, d_x=d_square, formula="2x",
                   register=False)

    def run(compiled):
        nn.manual_seed(0)
        l1, l2, l3 = nn.Linear(4, 16), nn.Linear(16, 16), nn.Linear(16, 1)
        f = lambda x: (l3(ag.tanh(l2(ag.tanh(square.apply(l1(x)))))) ** 2).mean()  # noqa: E731
        step = ag.compile(f) if compiled else f
        rng = np.random.default_rng(0)
        step(rng.standard_normal((8, 4))).backward()  # (compiled: the traced call)
        result = step(rng.standard_normal((8, 4)))
        stop["now"] = True
        with pytest.raises(KeyboardInterrupt):
            result.backward(retain_graph=retain_graph)
        for p in l1.parameters():
            p.grad = None
        try:
            result.backward()
        except Exception as error:  # noqa: BLE001
            return type(error)
        return _bits(l1.weight.grad)

    eager, compiled = run(compiled=False), run(compiled=True)
    # eager retries with what it retained, or says its graph is freed; compiled runs it again or refuses
    assert compiled == eager or compiled is CompileError
    if not retain_graph:
        assert compiled is eager is ag.GraphFreedError


def _losses(fn, params, calls, compiled, between=None):
    """The losses' bits and the parameters' after SGD steps over `calls`; `between(k)` runs after call k."""
    step = ag.compile(fn) if compiled else fn
    out = []
    for k, args in enumerate(calls):
        for p in params:
            p.grad = None
        loss = step(*args)
        loss.backward()
        for p in params:
            p.data = p.data - 0.1 * p.grad
        out.append((_bits(loss.data), [_bits(p.data) for p in params]))
        if between is not None:
            between(k)
    return out


def _twice(make, calls, between=None):
    """`make()` -> (fn, params, between-state); compiled, then eagerly, from the same seed."""
    results = []
    for compiled in (True, False):
        nn.manual_seed(0)
        fn, params, hook = make()
        results.append(_losses(fn, params, calls, compiled, hook))
    return results


_CALLS = [(np.random.default_rng(k).standard_normal((6, 4)), np.random.default_rng(k + 7).integers(0, 3, 6))
          for k in range(3)]


def test_a_change_the_forward_makes_to_a_module_with_an_effect_is_refused():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.bn = nn.Linear(4, 3), nn.BatchNorm1d(3)

        def forward(self, x):
            self.bn.momentum = self.bn.momentum * 0.5  # (the batch count is the effect's; this is not)
            return self.bn(self.fc(x))

    nn.manual_seed(0)
    model = Net()
    with pytest.raises(CompileError, match="momentum changed"):
        ag.compile(lambda x, y: F.cross_entropy(model(x), y))(*_CALLS[0])


def test_a_change_next_to_a_users_own_effect_is_refused_and_the_effects_own_replayed():
    from autograd_core.compile import effect

    class Logger(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.tau, self.seen = nn.Linear(4, 3), 1.0, 0

        def record(self, _):
            self.seen = self.seen + 1  # (the effect's own state: replayed)

        def forward(self, x):
            h = self.fc(x)
            effect(self.record, h)
            return h * self.tau

    def make(anneal):
        model = Logger()

        def fn(x, y):
            if anneal:
                model.tau = model.tau * 0.5
            return F.cross_entropy(model(x), y)
        return fn, list(model.parameters()), None, model

    nn.manual_seed(0)
    fn, _, _, _ = make(anneal=True)
    with pytest.raises(CompileError, match="tau changed"):
        ag.compile(fn)(*_CALLS[0])
    counts = []
    for compiled in (True, False):
        nn.manual_seed(0)
        fn, params, _, model = make(anneal=False)
        counts.append((_losses(fn, params, _CALLS, compiled), model.seen))
    assert counts[0] == counts[1] and counts[0][1] == 3


def test_a_users_scheduler_subclass_read_in_the_step_retraces_when_it_steps():
    from optim.lr_scheduler import LRScheduler

    class Warmup(LRScheduler):
        def get_lr(self):
            return [base * min(1.0, (self.last_epoch + 1) / 3) for base in self.base_lrs]

    def make():
        model = nn.Linear(4, 3)
        sched = Warmup(optim.SGD(model.parameters(), lr=0.5))
        return (lambda x, y: F.cross_entropy(model(x), y) * sched.get_last_lr()[0]), list(model.parameters()), (
            lambda k: sched.step())

    compiled, eager = _twice(make, _CALLS)
    assert compiled == eager


def test_a_learning_rate_a_library_method_reads_from_a_param_group_is_guarded():
    from optim.lr_scheduler import StepLR

    def make():
        model = nn.Linear(4, 3)
        opt = optim.SGD(model.parameters(), lr=0.5)
        sched = StepLR(opt, step_size=100)

        def decay(k):
            for group in opt.param_groups:
                group["lr"] = group["lr"] * 0.5
        return (lambda x, y: F.cross_entropy(model(x), y) * sched.get_lr()[0]), list(model.parameters()), decay

    compiled, eager = _twice(make, _CALLS)
    assert compiled == eager


def test_a_chain_map_config_and_keys_held_in_a_tuple_are_guarded():
    from collections import ChainMap

    terms = ("ce", "l2")

    def make_chain():
        model, overrides = nn.Linear(4, 3), {}
        cfg = ChainMap(overrides, {"label_smoothing": 0.0})
        return (lambda x, y: F.cross_entropy(model(x), y, label_smoothing=cfg["label_smoothing"])), list(
            model.parameters()), (lambda k: cfg.__setitem__("label_smoothing", 0.2))

    def make_terms():
        model, weights = nn.Linear(4, 3), {"ce": 1.0, "l2": 1e-2}

        def fn(x, y):
            parts = [F.cross_entropy(model(x), y), (model.weight * model.weight).sum()]
            return sum(weights[k] * v for k, v in zip(terms, parts))
        return fn, list(model.parameters()), (lambda k: weights.__setitem__("l2", 0.0))

    for make in (make_chain, make_terms):
        compiled, eager = _twice(make, _CALLS)
        assert compiled == eager


def test_lbfgs_with_a_compiled_closure_reads_the_loss_without_a_warning():
    def run(compiled):
        nn.manual_seed(0)
        model = nn.Linear(4, 3)
        opt = optim.LBFGS(model.parameters(), lr=1, max_iter=4)
        fn = lambda x, y: F.cross_entropy(model(x), y)  # noqa: E731
        step = ag.compile(fn) if compiled else fn

        def closure():
            opt.zero_grad()
            loss = step(*_CALLS[0])
            loss.backward()
            return loss

        with warnings.catch_warnings():
            warnings.simplefilter("error")
            opt.step(closure)
        return _bits(model.weight.data)

    assert run(compiled=True) == run(compiled=False)


@pytest.mark.parametrize("per_pixel", [False, True])
@pytest.mark.parametrize("dtypes", [(np.float32, np.float64), (np.float64, np.float32)])
def test_probability_targets_of_another_dtype_are_cast_as_eager_casts_them(per_pixel, dtypes):
    model_dtype, target_dtype = dtypes
    shape = (3, 4, 2, 2) if per_pixel else (5, 4)
    rng = np.random.default_rng(0)
    calls = []
    for _ in range(3):
        p = rng.random(shape)
        calls.append((rng.standard_normal(shape).astype(model_dtype), (p / p.sum(1, keepdims=True)).astype(target_dtype)))
    w = Value(np.linspace(0.5, 1.5, 4).reshape((1, 4) + (1,) * (len(shape) - 2)).astype(model_dtype))
    fn = lambda x, t: F.cross_entropy(x * w, t)  # noqa: E731
    assert _run(fn, [w], calls, compiled=True) == _run(fn, [w], calls, compiled=False)


@pytest.mark.parametrize("fn", [
    lambda x, y, w: (w * (x * y)).sum(),                 # float32 times an int64 argument: float64 in NumPy
    lambda x, y, w: (w * (x / (y > 0).sum())).sum(),
    lambda x, y, w: (w * (x * np.int64(3))).sum(),
    lambda x, y, w: (w * (abs(x) ** np.array(1.5))).sum(),  # a 0-d float64 exponent
])
def test_numpy_promotions_of_an_array_argument_that_the_engine_would_not_make_are_refused(fn):
    w = Value(np.array([0.5, 1.5, 2.5], np.float32))
    with pytest.raises(CompileError, match="float array argument gives NumPy's float64"):
        ag.compile(lambda x, y: fn(x, y, w))(np.array([1.0, -2.0, 3.0], np.float32), np.array([1, 2, 3]))


@pytest.mark.parametrize("body", [
    lambda s: s[ag.topk(s, 1)[1].copy()].sum(),
    lambda s: ag.where((s.sum() > 0).copy(), s, -s).sum(),
])
def test_a_copy_of_a_traced_index_or_mask_is_made_again_even_of_one_element(body):
    w = Value(np.array([0.3, -1.2, 0.5]))
    fn = lambda x: body(w * x)  # noqa: E731
    calls = [(np.array(v),) for v in ([1.0, 2.0, 3.0], [-1.0, 2.0, -3.0], [1.0, -2.0, 3.0])]
    assert _run(fn, [w], calls, compiled=True) == _run(fn, [w], calls, compiled=False)


def test_take_of_a_traced_index_is_refused():
    w = Value(np.array([0.3, -1.2, 0.5]))
    with pytest.raises(CompileError, match=r"take\(\) of an integer argument, a traced mask or a host array"):
        ag.compile(lambda x: (w * x)[ag.argsort(w * x).take([0])].sum())(np.array([1.0, 2.0, 3.0]))


def test_a_traced_mask_fancy_indexed_is_made_again_at_every_call():
    w = Value(np.array([0.3, -1.2, 0.5]))
    fn = lambda x: ag.where((w * x > 0)[[0]], w * x, -w * x).sum()  # noqa: E731
    calls = [(np.array(v),) for v in ([1.0, 2.0, 3.0], [-1.0, 2.0, 3.0], [1.0, -2.0, 3.0])]
    assert _run(fn, [w], calls, compiled=True) == _run(fn, [w], calls, compiled=False)


@pytest.mark.parametrize("body", [
    lambda w, x, y: ag.where(_filled(x > 0), w, -w).sum(),
    lambda w, x, y: (w[_sorted(ag.argsort(x))] * np.arange(3.0)).sum(),
    lambda w, x, y: w[_filled(y + 0, 0)].sum(),
    lambda w, x, y: (w * _sorted(x)).sum(),                      # x.sort() of a float argument: in place in eager
])
def test_writes_into_arrays_a_replay_remakes_by_their_methods_are_refused(body):
    w = Value(np.array([0.5, 1.5, 2.5]))
    with pytest.raises(CompileError, match=r"\.fill\(\)|\.sort\(\)|x\.sort\(\)"):
        ag.compile(lambda x, y: body(w, x, y))(np.array([1.0, -2.0, 3.0]), np.array([2, 0, 1]))


def _filled(array, value=True):
    array.fill(value)
    return array


def _sorted(array):
    array.sort()
    return array


def test_reshaping_an_array_argument_in_place_is_refused():
    w = Value(np.ones((2, 2)))

    def fn(x):
        x.shape = (2, 2)
        return (w * x).sum()

    with pytest.raises(CompileError, match="x.shape = "):
        ag.compile(fn)(np.arange(4.0))


def test_a_host_array_whose_shape_changes_with_the_data_is_refused_at_that_call():
    from autograd_core.compile import host_array

    w = Value(np.array([1.0, 2.0, 3.0, 4.0]))
    step = ag.compile(lambda x, y: (ag.exp(w[host_array(np.flatnonzero, y > 0)] * x[:3]) * 2.0).sum())
    x = np.array([0.1, 0.2, 0.3, 0.4])
    step(x, np.array([1, 1, 1, 0])).backward()
    with pytest.raises(CompileError, match="has shape \\(1,\\), int64 at this call and had \\(3,\\)"):
        with ag.no_grad():
            step(x, np.array([0, 1, 0, 0]))


def test_a_users_rule_that_gives_1_on_the_traced_call_is_run_at_every_call():
    clamp = ag.Op("probe_clamp", lambda x: np.minimum(x, 1.0), inputs="x", elementwise=True,
                  d_x=lambda x, out: 1 if (x < 1.0).all() else (x < 1.0) * 1.0,  # a fast path: nothing clipped
                  formula="d min(x, 1)/dx = [x < 1]", register=False)
    w = Value(np.array([0.5, 0.2, 0.3]))
    fn = lambda x: (clamp.apply(w * x) * np.array([1.0, 2.0, 3.0])).sum()  # noqa: E731
    calls = [(np.array([1.0, 1.0, 1.0]),), (np.array([4.0, 1.0, 1.0]),), (np.array([1.0, 1.0, 1.0]),)]
    assert _run(fn, [w], calls, compiled=True) == _run(fn, [w], calls, compiled=False)


# ---- twentieth round: what host functions and effects change, NumPy's readings of an argument ------------
def test_an_effect_that_replaces_an_array_the_program_reads_is_refused():
    from autograd_core.compile import effect

    class Center(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin, self.center = nn.Linear(100, 100), np.zeros(100)

        def _update(self, h):
            self.center = self.center * 0.9 + h.mean(0) * 0.1  # (a new array at every call)

        def forward(self, x):
            h = self.lin(x)
            effect(self._update, h)
            return ((h - self.center) ** 2).mean()

    with pytest.raises(CompileError, match="an effect of Center replaced what the program reads"):
        ag.compile(Center())(np.ones((4, 100)))


@pytest.mark.parametrize("size", [128, 300_000])  # (a large array: compared by a digest of its bytes)
def test_writes_into_an_array_a_host_function_holds_made_by_other_code_are_refused(size):
    from autograd_core.compile import host_array

    counts = np.zeros(size)
    w = Value(np.ones(3))

    def fn(x):
        counts[:4] += 1  # (the function's own code, not the host function's)
        return (w * x).sum() * host_array(lambda: np.asarray(1.0 / np.sqrt(counts[:1] + 1.0)))

    with pytest.raises(CompileError, match="wrote into counts"):
        ag.compile(fn)(np.ones(3))


def test_small_arrays_are_compared_whole_however_many_large_ones_the_walk_compared(monkeypatch):
    from autograd_core.compile import sources

    monkeypatch.setattr(sources, "DIGEST_TOTAL", 1)  # (no budget left after the first array)
    big, coef = np.zeros(1000), np.array([1.5])
    w = Value(np.ones(3))
    fn = lambda x: (w * x).sum() * float(coef[0]) + float(big[0])  # noqa: E731
    step = ag.compile(fn)
    step(np.ones(3))
    coef[0] = 2.5
    assert float(step(np.ones(3)).data) == 7.5 and step.cache_info().traces == 2


def test_a_host_function_returning_a_number_is_refused():
    from autograd_core.compile import host_array

    w = Value(np.ones(3, np.float32))
    with pytest.raises(CompileError, match="returned a float64, a number"):
        ag.compile(lambda x: (w * x * host_array(lambda: np.float64(0.99))).sum())(np.ones(3, np.float32))


def test_dict_items_read_through_a_counter_a_str_enum_or_a_made_key_are_guarded():
    import collections
    import enum

    class Term(str, enum.Enum):
        L2 = "l2"

    w = Value(np.linspace(0.5, 1.5, 3))
    seen, weights, cfg = collections.Counter(a=1, b=1), {"l2": 0.01}, {"w_0": 1.0}
    fns = [lambda x: (w * x).sum() * seen.total(), lambda x: (w * w).sum() * weights[Term.L2],
           lambda x: (w * x).sum() * cfg[f"w_{0}"]]
    changes = [lambda: seen.update(c=2), lambda: weights.__setitem__("l2", 0.5), lambda: cfg.__setitem__("w_0", 3.0)]
    for fn, change in zip(fns, changes):
        step = ag.compile(fn)
        step(np.ones(3))
        change()
        assert _bits(step(np.ones(3)).data) == _bits(fn(np.ones(3)).data)


def test_what_host_functions_and_effects_change_of_their_own_is_replayed_as_eager():
    from autograd_core.compile import effect, host_array

    class RunMean(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)
            self.register_buffer("mean", np.zeros(4))

        def _update(self, h):
            self.mean *= 0.9
            self.mean += 0.1 * h.mean(0)

        def forward(self, x):
            h = self.fc(x)
            effect(self._update, h)
            return (h ** 2).mean()

    def make():
        model, hist, state = RunMean(), [], {"t": 0}

        def schedule():
            state["t"] += 1
            return np.full(4, 0.99 ** state["t"])

        def fn(x):
            effect(hist.append, 1.0)  # (a bound builtin method: its list is its own)
            return model(x) * Value(host_array(schedule), requires_grad=False).sum()
        return fn, list(model.parameters()), (model, hist, state)

    results = []
    for compiled in (True, False):
        nn.manual_seed(0)
        fn, params, (model, hist, state) = make()
        calls = [(np.random.default_rng(k).standard_normal((3, 4)),) for k in range(3)]
        results.append((_losses(fn, params, calls, compiled), _bits(model.mean), len(hist), state["t"]))
    assert results[0] == results[1] and results[0][2:] == (3, 3)


def test_a_step_reading_its_own_validation_loss_in_an_effect_compiles_as_eager():
    from autograd_core.compile import effect

    def run(compiled):
        w, log, busy, x_val = Value(np.ones(3)), [], [False], np.full(3, 2.0)

        def validate(_):
            if not busy[0]:
                busy[0] = True
                with ag.no_grad():
                    log.append(step(x_val).item())
                busy[0] = False

        def fn(x):
            loss = (w * x).sum()
            effect(validate, loss)
            return loss

        step = ag.compile(fn) if compiled else fn
        for k in range(3):
            step(np.full(3, float(k))).backward()
            w.data = w.data - 0.1 * w.grad
            w.grad = None
        return log

    assert run(compiled=True) == run(compiled=False)


def test_isinstance_of_an_array_argument_takes_eagers_branch():
    w = Value(np.ones(3))

    def prepare(x):
        if isinstance(x, (list, tuple)):
            x = np.asarray(x)
        return x / 255.0 if isinstance(x, np.ndarray) and x.__class__.__name__ == "ndarray" else x

    fn = lambda x: (w * prepare(x)).sum()  # noqa: E731
    calls = [(np.arange(3.0),), (np.full(3, 7.0),)]
    assert _run(fn, [w], calls, compiled=True) == _run(fn, [w], calls, compiled=False)


@pytest.mark.parametrize("fn, dtype", [
    (lambda x, w: (w * x.round().mean()).sum(), np.float64),               # a float64 number, a float32 Value
    (lambda x, w: (w * x ** 0.5).sum(), np.float16),                       # NumPy's sqrt: -0.0 and -inf otherwise
])
def test_numpy_methods_of_an_argument_checked_both_ways_and_on_special_numbers(fn, dtype):
    w = Value(np.array([1.0, 2.0, 3.0], np.float32))
    with pytest.raises(CompileError, match="float(64)? array argument"):
        ag.compile(lambda x: fn(x, w))(np.array([1.5, 2.0, 4.0], dtype))


def test_one_over_an_array_argument_compiles_as_numpy_divides():
    w = Value(np.array([1.0, 2.0, 3.0], np.float32))
    fn = lambda x: (w * (1.0 / (x.std(0) + 1e-5))).sum()  # noqa: E731
    calls = [(np.random.default_rng(k).standard_normal((5, 3)).astype(np.float32),) for k in range(3)]
    assert _run(fn, [w], calls, compiled=True) == _run(fn, [w], calls, compiled=False)


def test_ufuncs_of_labels_given_a_mask_by_keyword_or_an_out_array():
    w = Value(np.linspace(0.5, 1.0, 6))
    calls = [(np.arange(6),), (np.array([5, 4, 0, 1, 3, 3]),)]
    with pytest.raises(CompileError, match="out="):
        ag.compile(lambda y: (w * np.add(y, 1, where=y > 2, out=np.zeros(6, np.int64))).sum())(*calls[0])
    fn = lambda y: (w * np.add(y, 1, where=y > 2, out=None)).sum() if False else (w * np.maximum(y, 2, where=y > 2,  # noqa: E731
                                                                                                 out=y + 0)).sum()
    assert fn is not None  # (out= of a remade array: made again, its where= too)
    with pytest.raises(CompileError, match="out="):
        ag.compile(fn)(*calls[0])


@pytest.mark.parametrize("body", [
    lambda w, x: (w * (x.sum() > 0).copy()).sum(),
    lambda w, x: (w * ag.argmax(x.sum(1)).copy()).sum(),
])
def test_a_copy_of_a_traced_mask_as_a_values_data_is_made_again(body):
    w = Value(np.random.default_rng(0).standard_normal(4))
    fn = lambda x: body(w, x)  # noqa: E731
    calls = [(np.ones((6, 4)),), (-np.ones((6, 4)),), (np.arange(24.0).reshape(6, 4),)]
    assert _run(fn, [w], calls, compiled=True) == _run(fn, [w], calls, compiled=False)


def test_an_accuracy_of_labels_is_refused_by_name_and_views_of_an_image_argument_compile():
    nn.manual_seed(0)
    model = nn.Linear(16, 3)
    with pytest.raises(CompileError, match=r"\.mean\(\) of an integer argument"):
        ag.compile(lambda x, y: F.cross_entropy(model(x), y) * (ag.argmax(model(x), 1) == y).mean())(
            np.ones((5, 16)), np.zeros(5, int))
    fn = lambda x, y: F.cross_entropy(model(x.reshape(len(x), -1) / 255.0), y)  # noqa: E731  (uint8 images)
    rng = np.random.default_rng(0)
    calls = [(rng.integers(0, 256, (5, 4, 4)).astype(np.uint8), rng.integers(0, 3, 5)) for _ in range(3)]
    params = list(model.parameters())
    assert _run(fn, params, calls, compiled=True) == _run(fn, params, calls, compiled=False)


@pytest.mark.parametrize("fn", [
    lambda W, y: ag.where((y > 0)[:, None], W, 0.0).sum(),
    lambda W, y: ag.gather(W, 1, y[:, None]).sum(),
])
def test_a_label_or_mask_with_a_new_axis_as_a_condition_or_an_index(fn):
    W = Value(np.arange(6.0).reshape(3, 2))
    calls = [(np.array([1, 0, 1]),), (np.array([0, 1, 1]),), (np.array([1, 1, 0]),)]
    step = lambda y: fn(W, y)  # noqa: E731
    assert _run(step, [W], calls, compiled=True) == _run(step, [W], calls, compiled=False)


@pytest.mark.parametrize("option", [{"label_smoothing": 0.2}, {"weight": np.array([1.0, 2.0, 0.5, 1.0])}])
def test_probability_targets_cast_then_smoothed_or_weighted_are_made_again(option):
    rng = np.random.default_rng(0)
    calls = [(rng.standard_normal((5, 4)).astype(np.float32), rng.dirichlet(np.ones(4), 5)) for _ in range(3)]
    w = Value(np.linspace(0.5, 1.5, 4).astype(np.float32))
    fn = lambda x, t: F.cross_entropy(x * w, t, **option)  # noqa: E731
    assert _run(fn, [w], calls, compiled=True) == _run(fn, [w], calls, compiled=False)


# ---- twenty-first round: the course's own code compiled ----------------------------------------------------
def test_a_students_op_given_labels_or_a_mask_as_a_parameter_compiles_as_eager():
    keep = 0.8
    dropout = ag.Op("probe_dropout", lambda a, mask, keep_prob: a * mask / keep_prob, inputs="a", elementwise=True,
                    d_a=lambda a, out, mask, keep_prob: mask / keep_prob, formula="d out/da = mask / keep_prob",
                    register=False)
    hinge = ag.Op("probe_hinge", lambda z, y: np.maximum(0.0, 1 - z * (2 * y - 1)), inputs="z", elementwise=True,
                  d_z=lambda z, out, y: -(2 * y - 1) * (out > 0), formula="", register=False)
    w = Value(np.linspace(-1.0, 1.0, 6))
    rng = np.random.default_rng(0)
    masks = [(rng.normal(size=(4, 6)), rng.random((4, 6)) < keep) for _ in range(3)]
    fn = lambda x, mask: dropout.apply(x * w, mask=mask, keep_prob=keep).sum()  # noqa: E731
    assert _run(fn, [w], masks, compiled=True) == _run(fn, [w], masks, compiled=False)
    labels = [(rng.normal(size=(8, 6)), rng.integers(0, 2, 8)) for _ in range(3)]
    fn = lambda x, y: hinge.apply(x @ w, y=y).mean()  # noqa: E731
    assert _run(fn, [w], labels, compiled=True) == _run(fn, [w], labels, compiled=False)


def test_one_hot_rows_made_by_numpy_indexing_are_kept_with_a_warning_that_names_the_fix():
    w = Value(np.ones((4, 3)))
    with pytest.warns(UserWarning, match=r"F\.one_hot\(y, C\)"):
        ag.compile(lambda x, y: ag.softmax_cross_entropy(x @ w, np.eye(3)[y]).mean())(np.ones((6, 4)),
                                                                                      np.arange(6) % 3)


# ---- twenty-second round: what effects replace, views written into, keys from arguments, a 3-d product ------
def test_an_effect_that_replaces_a_module_or_an_array_reached_twice_is_refused():
    from autograd_core.compile import effect

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.act, self.center = nn.Linear(3, 3), nn.Tanh(), np.zeros(100)
            self.centers = [self.center]

        def swap(self, _):
            self.act = nn.ReLU() if isinstance(self.act, nn.Tanh) else nn.Tanh()

        def forward(self, x):
            h = self.act(self.fc(x))
            effect(self.swap, h)
            return h.sum()

    with pytest.raises(CompileError, match="replaced what the program reads"):
        ag.compile(Net())(np.ones((2, 3)))

    class Held:
        pass

    holder = Held()
    holder.center, holder.n = np.zeros(100), 0
    centers = [holder.center]  # (reached first through the list)
    w = Value(np.ones(100))

    def renew(_):
        holder.center = holder.center + 1.0

    def fn(x):
        loss = (w * x * holder.center).sum() + len(centers)
        effect(renew, loss)
        return loss

    with pytest.raises(CompileError, match="replaced what the program reads"):
        ag.compile(fn)(np.ones(100))


def test_a_write_into_a_traced_mask_through_a_numpy_view_is_refused():
    w = Value(np.array([1.0, -2.0, 3.0, 4.0]))

    def fn(x):
        keep = np.asarray(w * x > 0)
        keep[0] = True
        return ag.where(keep, w * x, 0.0).sum()

    with pytest.raises(CompileError, match="wrote into condition"):
        ag.compile(fn)(np.array([-1.0, 1.0, 1.0, 1.0]))


@pytest.mark.parametrize("key_of", [lambda term: term, lambda term: "w_" + term, lambda term: "w_%s" % term])
def test_a_dict_item_read_under_a_key_from_an_argument_or_built_from_strings_is_guarded(key_of):
    w = Value(np.ones(3))
    weights = {"ce": 2.0, "w_ce": 2.0}
    fn = lambda x, term: (w * x).sum() * weights[key_of(term)]  # noqa: E731
    step = ag.compile(fn)
    step(np.ones(3), "ce")
    weights["ce"] = weights["w_ce"] = 14.0
    assert float(step(np.ones(3), "ce").data) == 42.0


def test_an_effect_logging_into_a_deque_or_a_small_array_it_holds_compiles_as_eager():
    import collections

    from autograd_core.compile import effect

    def run(compiled):
        w, recent, seen = Value(np.ones(3)), collections.deque(maxlen=2), np.zeros(3)

        def log(loss):
            recent.append(float(loss))
            seen[:] += 1.0

        def fn(x):
            loss = (w * x).sum()
            effect(log, loss)
            effect(recent.append, loss)
            return loss

        step = ag.compile(fn) if compiled else fn
        for k in range(3):
            step(np.full(3, float(k))).backward()
        return list(recent), seen.tolist()

    assert run(compiled=True) == run(compiled=False)


def test_an_effect_writing_into_an_array_an_operation_read_is_refused_with_a_reason():
    from autograd_core.compile import effect

    held = np.ones(3)
    w = Value(np.ones(3))

    def scale(_):
        held[:] *= 2.0

    def fn(x):
        loss = (w * held * x).sum()
        effect(scale, loss)
        return loss

    with pytest.raises(CompileError, match="an effect wrote into"):
        ag.compile(fn)(np.ones(3))


def test_isclose_of_a_float32_argument_computes_as_numpy_does():
    w = Value(np.ones(3, np.float32))
    fn = lambda x: ag.where(ag.isclose(x, 0.1, rtol=0, atol=1e-9), w, 0.0).sum()  # noqa: E731
    calls = [(np.array([0.1, 0.2, 0.3], np.float32),), (np.array([0.3, 0.1, 0.2], np.float32),)]
    assert _run(fn, [w], calls, compiled=True) == _run(fn, [w], calls, compiled=False)


def test_clip_with_keywords_of_an_argument_gives_numpys_signed_zeros():
    w = Value(np.ones(3))
    fn = lambda x: (w / x.clip(min=0.0, max=1.0)).sum()  # noqa: E731
    calls = [(np.array([0.5, 0.25, 2.0]),), (np.array([-0.0, 0.25, -2.0]),)]
    with np.errstate(divide="ignore"):
        assert _run(fn, [w], calls, compiled=True) == _run(fn, [w], calls, compiled=False)


def test_a_batched_product_whose_first_gradient_is_zero_is_written_as_the_engines_rule():
    w = Value(np.random.default_rng(0).standard_normal((3, 3, 3)))
    fn = lambda x: ag.relu(x @ w).sum()  # noqa: E731  (the first call: zeros, a zero gradient through relu)
    calls = [(np.zeros((3, 3, 3)),)] + [(np.random.default_rng(k).standard_normal((3, 3, 3)),) for k in (2, 3)]
    assert _run(fn, [w], calls, compiled=True) == _run(fn, [w], calls, compiled=False)


def test_standardising_a_uint8_image_batch_over_its_axis_compiles_as_eager():
    nn.manual_seed(0)
    model = nn.Linear(16, 3)

    def fn(x, y):
        x = x.reshape(len(x), -1) / 255.0
        return F.cross_entropy(model((x - x.mean(0)) / (x.std(0) + 1e-5)), y)

    rng = np.random.default_rng(0)
    calls = [(rng.integers(0, 256, (6, 4, 4)).astype(np.uint8), rng.integers(0, 3, 6)) for _ in range(3)]
    assert _run(fn, list(model.parameters()), calls, compiled=True) == _run(fn, list(model.parameters()), calls,
                                                                            compiled=False)


# ---- twenty-third round: the report's kinds again, and the newest checks ----------------------------------
def test_an_op_made_in_the_function_around_its_labels_is_refused():
    w = Value(np.linspace(-1.0, 1.0, 6))

    def fn(x, y):
        hinge = ag.Op("probe_inner_hinge", lambda z: np.maximum(0.0, 1 - z * (2 * y - 1)), inputs="z",
                      elementwise=True, d_z=lambda z, out: -(2 * y - 1) * (out > 0), formula="", register=False)
        return hinge.apply(x @ w).mean()

    with pytest.raises(CompileError, match="hold a traced value in their closure"):
        ag.compile(fn)(np.ones((4, 6)), np.array([0, 1, 1, 0]))


def test_a_students_batch_norm_and_weight_average_reassigned_by_effects_compile_as_eager():
    from autograd_core.compile import effect

    class MyNorm(nn.Module):
        def __init__(self, n):
            super().__init__()
            self.fc, self.running_mean = nn.Linear(n, n), np.zeros(n)

        def track(self, mu):
            self.running_mean = 0.9 * self.running_mean + 0.1 * mu  # (not read by the program in training)

        def forward(self, x):
            h = self.fc(x)
            mu = h.mean(axis=0)
            effect(self.track, mu)
            return ((h - mu) ** 2).mean()

    def run(compiled):
        nn.manual_seed(0)
        model = MyNorm(80)
        calls = [(np.random.default_rng(k).standard_normal((4, 80)),) for k in range(3)]
        return _losses(model, list(model.parameters()), calls, compiled), _bits(model.running_mean)

    assert run(compiled=True) == run(compiled=False)


def test_a_callable_object_as_an_effect_keeps_its_own_state_as_eager():
    from autograd_core.compile import effect

    class Meter:
        def __init__(self):
            self.count, self.best = 0, np.inf

        def __call__(self, loss):
            self.count += 1
            self.best = min(self.best, float(loss))

    def run(compiled):
        w, meter = Value(np.ones(3)), Meter()

        def fn(x):
            loss = (w * x).sum()
            effect(meter, loss)
            return loss

        step = ag.compile(fn) if compiled else fn
        for k in range(3):
            step(np.full(3, 3.0 - k)).backward()
        return meter.count, meter.best

    assert run(compiled=True) == run(compiled=False) == (3, 3.0)


def test_a_students_op_reading_its_labels_parameter_in_python_compiles_as_eager():
    def signed(z, y):
        t = y.copy()
        t[t == 0] = -1
        return np.maximum(0.0, 1 - z * t)

    hinge = ag.Op("probe_signed_hinge", signed, inputs="z", elementwise=True,
                  d_z=lambda z, out, y: -np.where(y == 0, -1, 1) * (out > 0), formula="", register=False)
    w = Value(np.linspace(-1.0, 1.0, 6))
    rng = np.random.default_rng(0)
    calls = [(rng.normal(size=(8, 6)), rng.integers(0, 2, 8)) for _ in range(3)]
    fn = lambda x, y: hinge.apply(x @ w, y=y).mean()  # noqa: E731
    assert _run(fn, [w], calls, compiled=True) == _run(fn, [w], calls, compiled=False)


def test_numpy_means_of_a_uint8_batch_over_an_axis_compile_as_eager():
    nn.manual_seed(0)
    model = nn.Linear(16, 3)

    def fn(x, y):
        x = x.reshape(len(x), -1) / 255.0
        return F.cross_entropy(model((x - np.mean(x, axis=0)) / (np.std(x, axis=0) + 1e-5)), y)

    rng = np.random.default_rng(0)
    calls = [(rng.integers(0, 256, (6, 16)).astype(np.uint8), rng.integers(0, 3, 6)) for _ in range(3)]
    params = list(model.parameters())
    assert _run(fn, params, calls, compiled=True) == _run(fn, params, calls, compiled=False)


def test_a_key_built_from_a_string_and_an_attribute_is_guarded():
    class Cfg:
        term = "ce"

    w, cfg, weights = Value(np.ones(3)), Cfg(), {"w_ce": 2.0}
    fn = lambda x: (w * x).sum() * weights["w_" + cfg.term]  # noqa: E731
    step = ag.compile(fn)
    step(np.ones(3))
    weights["w_ce"] = 14.0
    assert float(step(np.ones(3)).data) == 42.0


def test_a_parameter_frozen_between_the_call_and_its_backward_gets_no_gradient():
    w, v = Value(np.ones(2)), Value(np.full(2, 2.0))
    step = ag.compile(lambda x: (w * v * x).sum())
    for x in (np.ones(2), np.full(2, 3.0)):
        result = step(x)
        w.requires_grad = False  # (a GAN freezing its discriminator after the forward)
        result.backward()
        assert w.grad is None and v.grad is not None
        w.requires_grad, v.grad = True, None


def test_dropout_drawing_from_the_global_generator_follows_manual_seed():
    def run(compiled):
        w = Value(np.linspace(1.0, 2.0, 6))
        fn = lambda x: F.dropout(w * x, 0.5, generator=nn.get_generator()).sum()  # noqa: E731
        step = ag.compile(fn) if compiled else fn
        out = []
        for seed in (1, 2, 1):
            nn.manual_seed(seed)
            out.append(_bits(step(np.ones(6)).data))
        return out

    assert run(compiled=True) == run(compiled=False)


def test_patching_a_library_modules_call_after_the_first_call_retraces():
    model = nn.Linear(3, 2)
    fn = lambda x: model(x).sum()  # noqa: E731
    step = ag.compile(fn)
    step(np.ones((2, 3)))
    original = nn.Module.__call__
    try:
        nn.Module.__call__ = lambda self, *a, **k: original(self, *a, **k) * 2.0
        assert _bits(step(np.ones((2, 3))).data) == _bits(fn(np.ones((2, 3))).data)
    finally:
        nn.Module.__call__ = original


# ---- twenty-fourth round: names a trace found missing, special methods, sets, a print ----------------------
def _same_as_eager(fn, w, change, calls=4):
    """fn compiled and eager, with `change(k)` before call k, give the same loss and gradient bits."""
    step, x = ag.compile(fn), np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]])
    for k in range(calls):
        change(k)
        results = []
        for f in (fn, step):
            w.grad = None
            loss = f(x)
            loss.backward()
            results.append((_bits(loss.data), _bits(w.grad)))
        assert results[0] == results[1], f"call {k}"
    return step


_SHIFT_OVERRIDE_ABSENT = 1.0  # (a module-level default the functions below fall back to)


def test_a_class_attribute_added_after_a_getattr_default_retraces():
    class Base:
        pass

    class Cfg(Base):
        pass

    cfg, w = Cfg(), Value(np.array([1.0, 2.0, 3.0]))
    step = _same_as_eager(lambda x: (x * w * getattr(cfg, "scale", 1.0)).sum(), w,
                          lambda k: setattr(Base, "scale", 3.0) if k == 2 else None)
    assert step.cache_info().traces == 2


def test_a_global_or_a_module_attribute_defined_after_the_trace_retraces():
    import types

    cfg, w = types.ModuleType("user_cfg"), Value(np.array([1.0, 2.0, 3.0]))

    def fn(x):
        try:
            extra = SHIFT_DEFINED_LATER  # noqa: F821 (defined by the change below)
        except NameError:
            extra = 0.0
        return (x * w * getattr(cfg, "OVERRIDE", 1.0) + extra).sum()

    def change(k):
        if k == 1:
            cfg.OVERRIDE = 2.5
        if k == 2:
            globals()["SHIFT_DEFINED_LATER"] = 4.0

    try:
        step = _same_as_eager(fn, w, change)
    finally:
        globals().pop("SHIFT_DEFINED_LATER", None)
    assert step.cache_info().traces == 3


def test_a_global_the_function_creates_is_refused():
    w = Value(np.array([1.0, 2.0]))

    def fn(x):
        globals()["CALLS_MADE_BY_FN"] = globals().get("CALLS_MADE_BY_FN", 0) + 1
        return (x * w).sum()

    try:
        with pytest.raises(CompileError, match="CALLS_MADE_BY_FN is now defined"):
            ag.compile(fn)(np.ones(2))
    finally:
        globals().pop("CALLS_MADE_BY_FN", None)


def test_what_special_methods_and_constructors_read_is_guarded():
    class Temp:
        def __init__(self):
            self.s = 1.0

        def __mul__(self, other):
            return other * self.s

        def __lt__(self, other):
            return self.s < other

    class Scaler:
        def __init__(self):
            self.s = SMOOTHING[0]

    SMOOTHING = [1.0]
    temp, w = Temp(), Value(np.array([1.0, 2.0, 3.0]))

    def change(k):
        temp.s = SMOOTHING[0] = 1.0 + k

    _same_as_eager(lambda x: (temp * (x * w)).sum(), w, change)
    _same_as_eager(lambda x: (x * w * (2.0 if temp < 1.5 else 1.0)).sum(), w, change)
    _same_as_eager(lambda x: (x * w * Scaler().s).sum(), w, change)


def test_a_property_reading_super_sees_the_base_class_change():
    class Base:
        scale = 1.5

    class Sub(Base):
        @property
        def scale(self):
            return super().scale * 2

    sub, w = Sub(), Value(np.array([1.0, 2.0, 3.0]))
    _same_as_eager(lambda x: (x * w * sub.scale).sum(), w, lambda k: setattr(Base, "scale", 1.5 + k))


def test_sets_of_objects_compile_and_their_changes_retrace():
    import enum

    class Mode(enum.Enum):
        A = 1
        B = 2

    active, big, w = {Mode.A}, set(range(100)), Value(np.array([1.0, 2.0, 3.0]))
    fn = lambda x: (x * w * (2.0 if Mode.B in active else 1.0) * (3.0 if 150 in big else 1.0)).sum()  # noqa: E731

    def change(k):
        (active.add(Mode.B) if k == 1 else big.add(150) if k == 2 else None)

    assert _same_as_eager(fn, w, change).cache_info().traces == 3


def test_a_record_of_a_structured_array_is_compared_by_its_fields():
    table = np.zeros(2, dtype=[("s", "f8")])
    table["s"] = 1.0
    record, w = table[0], Value(np.array([1.0, 2.0, 3.0]))
    _same_as_eager(lambda x: (x * w * float(record["s"])).sum(), w, lambda k: table.__setitem__(0, (1.0 + k,)))


def test_dataclass_fields_read_without_their_names_are_guarded():
    import dataclasses

    @dataclasses.dataclass
    class Terms:
        a: float = 1.0
        b: float = 2.0

    terms, w = Terms(), Value(np.array([1.0, 2.0, 3.0]))
    _same_as_eager(lambda x: (x * w).sum() * sum(dataclasses.astuple(terms)), w,
                   lambda k: setattr(terms, "b", 2.0 + k))


def test_an_object_whose_class_cannot_be_read_is_refused_clearly():
    class Lazy:
        @property
        def __class__(self):
            raise RuntimeError("not loaded")

    lazy, w = Lazy(), Value(np.array([1.0, 2.0]))
    with pytest.raises(CompileError, match="RuntimeError: not loaded"):
        ag.compile(lambda x: (x * w).sum() * (1.0 if lazy else 2.0))(np.ones(2))


def test_a_print_in_the_function_is_warned_about(capsys):
    w = Value(np.array([1.0, 2.0]))

    def fn(x):
        print("step")
        return (x * w).sum()

    step = ag.compile(fn)
    with pytest.warns(UserWarning, match=r"called print\(\) .*printed at this traced call only"):
        step(np.ones(2))
    step(np.ones(2))
    assert capsys.readouterr().out == "step\n"


# ---- twenty-fourth round: what a result's backward checks, as eager's ---------------------------------------
def _backward_outcome(loss):
    try:
        loss.backward()
        return "ok"
    except Exception as error:  # noqa: BLE001 (the kind of error is what is compared)
        return type(error).__name__


def test_a_loss_written_into_or_assigned_before_backward_is_refused_as_in_eager():
    w = Value(np.full((4, 3), 0.1))
    fn = lambda x: ag.exp((x @ w).sum(keepdims=True))  # noqa: E731 (exp's rule reads the loss itself)
    step = ag.compile(fn)
    for change in ("write", "assign"):
        outcomes = []
        for f in (fn, step, step):
            w.grad = None
            loss = f(np.ones((5, 4)))
            if change == "write":
                loss.data[...] = 100.0
            else:
                loss.data = np.full((1, 1), 100.0)
            outcomes.append(_backward_outcome(loss))
        assert outcomes == ["SavedDataModifiedError"] * 3, change


def test_weights_eagers_backward_never_checks_may_change_before_backward():
    nn.manual_seed(0)
    student, teacher = nn.Linear(4, 3), nn.Linear(4, 3)

    def fn(x):
        with ag.no_grad():
            target = teacher(x)
        return ((student(x) - target) ** 2).mean()

    outcomes = {}
    for name, f in (("eager", fn), ("compiled", ag.compile(fn))):
        outcomes[name] = []
        for _ in range(3):
            loss = f(np.ones((8, 4)))
            for p in teacher.parameters():  # a mean teacher's update, between the call and the backward
                p.data *= 0.99
            outcomes[name].append(_backward_outcome(loss))
    assert outcomes["eager"] == outcomes["compiled"] == ["ok"] * 3


def test_a_value_argument_the_backward_does_not_read_is_still_checked_for_writes():
    w = Value(np.arange(12.0).reshape(4, 3) / 10)
    fn = lambda x, v: ag.tanh(x @ w + v).sum()  # noqa: E731 (v is only added: the rule never reads it)
    step = ag.compile(fn)
    outcomes = []
    for f in (fn, step, step):
        v = Value(np.array([0.1, 0.2, 0.3]))
        loss = f(np.ones((5, 4)), v)
        v.data[0] += 1.0
        outcomes.append(_backward_outcome(loss))
    assert outcomes == ["SavedDataModifiedError"] * 3


def test_a_parameter_unfrozen_between_the_call_and_its_backward_is_refused():
    g, d = Value(np.ones(3)), Value(np.full(3, 2.0))
    step = ag.compile(lambda x: (d * (g * x)).sum())
    for _ in range(2):
        d.requires_grad = False
        loss = step(np.ones(3))
        d.requires_grad = True  # eager's backward would give d a gradient; the program has none for it
        with pytest.raises(CompileError, match="made to require grad after the compiled call"):
            loss.backward()


def test_a_compiled_loss_as_an_exponent_ends_the_graph():
    w = Value(np.ones(3))
    loss = ag.compile(lambda x: (w * x).sum())(np.ones(3))
    with pytest.raises(CompileError, match="ends the compiled graph"):
        _ = Value(np.full(3, 2.0)) ** loss


def test_a_compiled_result_answers_a_values_read_only_methods():
    w = Value(np.ones(3))
    fn = lambda x: (w * x).sum()  # noqa: E731
    eager, compiled = fn(np.ones(3)), ag.compile(fn)(np.ones(3))
    for name in ("isfinite", "isnan", "isinf"):
        assert _bits(getattr(compiled, name)()) == _bits(getattr(eager, name)())
    assert compiled.allclose(compiled) and compiled.allclose(eager)
    compiled.zero_grad()
    assert compiled.grad is None
    with pytest.raises(CompileError, match="ends the compiled graph"):
        compiled.exp()


# ---- twenty-fourth round: NumPy made from the user's host arrays ---------------------------------------------
def _host_compiled_as_eager(body, calls=3):
    """body(x, h) with h a host array of fresh random numbers at every call, compiled and eager alike."""
    w = Value(np.linspace(0.5, 1.5, 8))

    def make():
        rng = np.random.default_rng(7)
        return lambda x: body(x * w, host_array(lambda: rng.random(8), name="h"))

    fn, step = make(), ag.compile(make())
    for k in range(calls):
        results = []
        for f in (fn, step):
            w.grad = None
            loss = f(np.full(8, 1.0 + k))
            loss.backward()
            results.append((_bits(loss.data), _bits(w.grad)))
        assert results[0] == results[1], f"call {k}"


@pytest.mark.parametrize("body", [
    lambda z, h: (z * h.sum()).sum(),                  # a reduction: a number of each call
    lambda z, h: (z * h[0]).sum(),                     # one element: a host array of its own
    lambda z, h: (h[0] * z + (1 - h[0]) * z[::-1]).sum(),  # mixup's blend of two inputs
    lambda z, h: (z * (h / h.sum())[:, None].T).sum(),  # a view of NumPy made from it
], ids=["sum", "element", "mixup", "view"])
def test_numpy_made_from_a_host_array_is_made_again_at_every_call(body):
    _host_compiled_as_eager(body)


@pytest.mark.parametrize("body", [
    lambda z, h: (z * float(h[3])).sum(),              # its number read into Python
    lambda z, h: (z[: int(h[0] * 4) + 2] * 1.0).sum(),  # a slice bound
    lambda z, h: (ag.abs(z) ** h[0]).sum(),            # a parameter the op converts (.item())
    lambda z, h: F.dropout(z, p=h[0] * 0.5).sum(),     # a hyperparameter nn converts (float())
], ids=["float", "slice", "pow", "dropout"])
def test_numbers_read_off_a_host_array_are_refused(body):
    with pytest.raises(CompileError, match="host array"):
        _host_compiled_as_eager(body, calls=1)


def test_a_host_function_holding_an_argument_is_refused_with_what_to_do():
    w, rng = Value(np.ones((2, 3))), np.random.default_rng(0)

    def fn(x):
        noise = host_array(lambda: rng.normal(0, 0.05, x.shape))
        return (x * w + noise).sum()

    with pytest.raises(CompileError, match=r"holds one of its arguments in its closure.*host_array\(lambda x"):
        ag.compile(fn)(np.ones((2, 3)))


def test_attributes_read_by_names_made_at_run_time_are_guarded():
    class Cfg:
        pass

    cfg, w = Cfg(), Value(np.array([1.0, 2.0, 3.0]))
    cfg.w_ce, cfg.w_l2 = 1.0, 0.5
    fn = lambda x: sum(getattr(cfg, f"w_{t}") * (w * x).sum() for t in ("ce", "l2"))  # noqa: E731
    _same_as_eager(fn, w, lambda k: setattr(cfg, "w_l2", 0.5 + k))


# ---- twenty-fifth round: what the walk of round 24 must not guard, and a metaclass ---------------------------
def test_counters_a_models_repr_or_init_names_do_not_retrace():
    import dataclasses

    @dataclasses.dataclass
    class Config:
        smoothing: float = 0.0
        epoch: int = 0

    class Net(nn.Sequential):
        def __init__(self):
            super().__init__(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
            self.steps = 0

        def forward(self, x):
            return super().forward(x)

        def __repr__(self):
            return f"Net(steps={self.steps}, {vars(self)})"

    cfg, model = Config(), Net()
    step = ag.compile(lambda x, y: F.cross_entropy(model(x), y, label_smoothing=cfg.smoothing))
    x, y = np.ones((4, 3)), np.array([0, 1, 1, 0])
    for _ in range(4):
        step(x, y).backward()
        model.steps += 1
        cfg.epoch += 1
    assert step.cache_info().traces == 1


def test_a_loop_binding_a_global_named_like_a_key_does_not_retrace():
    import types

    opts, model = types.SimpleNamespace(reduction="mean"), nn.Linear(3, 2)

    def fn(x, y):
        terms = {"loss_of_the_loop": F.cross_entropy(model(x), y, **vars(opts))}
        return terms["loss_of_the_loop"]

    step = ag.compile(fn)
    try:
        for _ in range(3):
            globals()["loss_of_the_loop"] = step(np.ones((4, 3)), np.array([0, 1, 1, 0]))
            globals()["loss_of_the_loop"].backward()
    finally:
        globals().pop("loss_of_the_loop", None)
    assert step.cache_info().traces == 1


def test_a_metaclass_property_read_through_an_instance_is_guarded():
    settings = {"factor": 1.0}

    class Meta(type):
        @property
        def factor(cls):
            return settings["factor"]

    class Layer(metaclass=Meta):
        def apply(self, h):
            return h * type(self).factor

    layer, w = Layer(), Value(np.array([1.0, 2.0, 3.0]))
    _same_as_eager(lambda x: layer.apply(x * w).sum(), w, lambda k: settings.__setitem__("factor", 1.0 + k))


def test_mixup_of_array_arguments_by_a_0d_host_array_is_made_again():
    w = Value(np.linspace(0.5, 1.5, 6).reshape(2, 3))

    def make():
        rng = np.random.default_rng(3)

        def fn(x):
            lam = host_array(lambda: np.asarray(rng.beta(0.4, 0.4)), name="lam")
            return ((lam * x + (1 - lam) * x[::-1]) @ w.T).sum()
        return fn

    fn, step = make(), ag.compile(make())
    x = np.arange(12.0).reshape(4, 3)
    assert [_bits(fn(x).data) for _ in range(3)] == [_bits(step(x).data) for _ in range(3)]


# ---- twenty-sixth round: host arrays again, special methods, names of objects and modules -------------------
def _each_call_as_eager(make, x, calls=4):
    """make() -> (fn, params), made twice alike: compiled and eager give the same loss and gradient bits."""
    (fn, params), (other, other_params) = make(), make()
    step = ag.compile(other)
    for k in range(calls):
        eager, compiled = fn(x), step(x)
        eager.backward()
        compiled.backward()
        assert _bits(eager.data) == _bits(compiled.data), f"call {k}"
        assert [_bits(p.grad) for p in params] == [_bits(p.grad) for p in other_params], f"call {k}"
        for p in params + other_params:
            p.grad = None


def test_a_one_hot_of_host_labels_against_a_fresh_arange_is_made_again():
    def make():
        w, g = Value(np.linspace(-1.0, 1.0, 18).reshape(6, 3)), np.random.default_rng(5)
        return (lambda x: (w * x * (host_array(lambda: g.integers(0, 3, 6))[:, None] == np.arange(3))).sum()), [w]
    _each_call_as_eager(make, np.ones((6, 3)))


def test_numbers_numpy_makes_of_a_host_array_keep_a_float32_graph_float32():
    def make():
        w, g = Value(np.linspace(0.5, 1.5, 4).astype(np.float32)), np.random.default_rng(7)

        def fn(x):
            lam = host_array(lambda: np.asarray(g.beta(0.4, 0.4)), name="lam")
            return ((w * x).sum() * (1.0 * lam) + (w * x[::-1]).sum() * (1 - lam)) / (1 - lam[()] * 0.5)
        return fn, [w]
    _each_call_as_eager(make, np.arange(4.0, dtype=np.float32))


@pytest.mark.parametrize("read", [lambda h: h.take(0), lambda h: h.flat[0], lambda h: float(str(h[0]))],
                         ids=["take", "flat", "str"])
def test_other_reads_of_a_host_arrays_numbers_are_refused(read):
    w, g = Value(np.ones(4)), np.random.default_rng(5)
    with pytest.raises(CompileError, match="of an integer argument, a traced mask or a host array"):
        ag.compile(lambda x: (x * w).sum() * read(host_array(lambda: g.uniform(0.5, 1.5, 4))))(np.ones(4))


def test_a_host_function_may_read_the_numbers_of_a_host_array_it_is_given():
    def make():
        w, g, log = Value(np.linspace(0.5, 1.5, 6)), np.random.default_rng(3), []

        def fn(x):
            pos = host_array(lambda: g.integers(0, 6, 3), name="pos")
            neg = host_array(lambda p: np.array([(int(i) + 1) % 6 for i in p]), pos, name="neg")
            effect(lambda p: log.append(p[0].item()), pos)
            return (w * x)[pos].sum() - (w * x)[neg].sum()
        return fn, [w]
    _each_call_as_eager(make, np.arange(6.0))


def test_what_ne_and_a_metaclass_of_a_users_class_read_is_guarded():
    coef = {"warm": 1.0}

    class Phase:
        def __ne__(self, other):
            return coef["warm"] != other

    phase, w = Phase(), Value(np.array([1.0, 2.0, 3.0]))
    _same_as_eager(lambda x: (x * w).sum() * (2.0 if phase != 1.0 else 1.0), w,
                   lambda k: coef.__setitem__("warm", 1.0 + k))


def test_a_repr_eq_or_copy_reading_every_attribute_does_not_retrace_on_counters():
    import copy

    class Config:
        def __init__(self):
            self.smoothing, self.epoch = 0.1, 0

        def __eq__(self, other):
            return vars(self) == vars(other)

        __hash__ = object.__hash__

        def __copy__(self):
            return type(self)(**vars(self))

        def __format__(self, spec):
            return str(vars(self))

    class Trainer:
        def __init__(self):
            self.phase, self.epoch, self.best = "fit", 0, None

        def fit(self):
            return self.epoch, self.best

    cfg, trainer, model = Config(), Trainer(), nn.Linear(3, 2)
    assert copy is not None
    step = ag.compile(lambda x, y: F.cross_entropy(model(x), y, label_smoothing=cfg.smoothing)
                      * (1.0 if trainer.phase == "fit" else 0.0))
    for epoch in range(4):
        step(np.ones((4, 3)), np.array([0, 1, 1, 0])).backward()
        cfg.epoch, trainer.epoch, trainer.best = epoch, epoch, float(epoch)
    assert step.cache_info().traces == 1


def test_a_name_a_users_module_or_object_gains_is_seen():
    import types

    cfg, opts, w = types.ModuleType("user_cfg"), types.SimpleNamespace(warmup=1), Value(np.array([1.0, 2.0, 3.0]))

    def fn(x):
        try:
            smoothing = cfg.SMOOTHING
        except AttributeError:
            smoothing = 0.0
        return (x * w).sum() * (1.0 + smoothing) * getattr(opts, "scale", 1.0)

    def change(k):
        if k == 1:
            cfg.SMOOTHING = 0.5
        if k == 2:  # (as many attributes as before: another name)
            del opts.warmup
            opts.scale = 3.0

    assert _same_as_eager(fn, w, change).cache_info().traces == 3


def test_methods_modules_and_registries_named_by_strings_are_guarded():
    import types

    helpers = types.ModuleType("user_helpers")
    helpers.coef_a = 1.0
    cfg, scales = {"coef": "coef_a"}, {}

    class Net:
        def __init_subclass__(cls):
            scales[cls.__name__] = 1.0

        def act_a(self, v):
            return v * helpers.coef_a

    class Small(Net):
        pass

    net, w = Small(), Value(np.array([1.0, 2.0, 3.0]))

    def fn(x):
        v = getattr(net, "act_a")(x * w)
        return v.sum() * getattr(helpers, cfg["coef"]) * scales[type(net).__name__]

    def change(k):
        helpers.coef_a = scales["Small"] = 1.0 + k

    _same_as_eager(fn, w, change)


def test_an_ordered_dicts_new_order_retraces():
    from collections import OrderedDict

    terms, w = OrderedDict([("a", 1.0), ("b", 1e-17)]), Value(np.array([1.0, 2.0, 3.0]))
    fn = lambda x: (x * w).sum() * next(iter(terms.values()))  # noqa: E731
    _same_as_eager(fn, w, lambda k: terms.move_to_end("a") if k == 2 else None)


# ---- twenty-seventh round: numbers NumPy makes of labels and host arrays, as eager has them ----------------
def _labels_compiled_as_eager(body, dtype=np.float32):
    w = Value(np.linspace(0.5, 1.5, 4).astype(dtype))
    fn = lambda y: body(w, y)  # noqa: E731
    calls = [(np.array(y),) for y in ([1, 0, 2, 3], [2, 2, 1, 0], [3, 1, 1, 2])]
    assert _run(fn, [w], calls, compiled=True) == _run(fn, [w], calls, compiled=False)


@pytest.mark.parametrize("body", [
    lambda w, y: (w * y[0].astype(np.float64)).sum(),          # a cast of a number: a number
    lambda w, y: (w * (y.sum() / 7).copy()).sum(),             # a copy of one: a number
    lambda w, y: (w * (y * 0.5).sum()[()]).sum(),
    lambda w, y: (w * (y * 0.5)[0, ...]).sum(),                # an index with an Ellipsis: a 0-d array
    lambda w, y: (w * (1 - host_array(lambda: np.asarray(0.3))).view()).sum(),  # a view of a number
    lambda w, y: (w * (y * 0.5).view()[:]).sum(),              # a whole slice of a view
    lambda w, y: (w * y[0].round()).sum(),
], ids=["astype", "copy", "empty-index", "ellipsis", "view", "whole-slice", "round"])
def test_numbers_numpy_makes_of_labels_keep_eagers_dtype_and_bits(body):
    _labels_compiled_as_eager(body)


@pytest.mark.parametrize("body", [
    lambda w, y: (w * np.divmod(y.sum(), 3)[0]).sum(),
    lambda w, y: (w * round(y[0] * 0.5)).sum(),
], ids=["divmod", "round-builtin"])
def test_two_results_of_a_ufunc_and_round_of_labels_are_refused(body):
    w = Value(np.linspace(0.5, 1.5, 4).astype(np.float32))
    with pytest.raises(CompileError, match="integer argument, a traced mask or a host array"):
        ag.compile(lambda y: body(w, y))(np.array([1, 0, 2, 3]))


def test_bookkeeping_a_models_methods_or_constructors_only_assign_does_not_retrace():
    import copy

    class MyLinear(nn.Linear):
        def __init__(self, i, o, decay=True):
            super().__init__(i, o)
            self.decay = decay

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            for i in range(2):
                setattr(self, f"fc{i}", MyLinear(3, 3))
            self.epoch = 0  # bookkeeping: assigned here, read by nothing the loss runs

        def forward(self, x):
            for i in range(2):
                x = getattr(self, f"fc{i}")(x).tanh()
            return x

    class Config:
        def __init__(self):
            self.smoothing, self.epoch = 0.0, 0

    nn.manual_seed(0)
    model, cfg = Net(), Config()

    def fn(x, y):
        loss = F.cross_entropy(model(x), y, label_smoothing=cfg.smoothing)
        for m in model.modules():
            if isinstance(m, MyLinear) and m.decay:
                loss = loss + 1e-4 * (m.weight ** 2).sum()
        return loss

    step = ag.compile(fn)
    for epoch in range(4):
        step(np.ones((4, 3)), np.array([0, 1, 2, 0])).backward()
        model.epoch = cfg.epoch = epoch + 1
        copy.deepcopy(cfg)  # (a checkpoint: copyreg adds __slotnames__ to the class)
    assert step.cache_info().traces == 1


def test_hasattr_of_a_values_method_on_a_compiled_result_is_false():
    w = Value(np.ones(3))
    loss = ag.compile(lambda x: (w * x).sum())(np.ones(3))
    assert not hasattr(loss, "exp") and getattr(loss, "op", None) is None
    assert hasattr(loss, "item") and hasattr(loss, "backward")


# ---- twenty-eighth round: names made in other forms, constructors that write, generated and special methods --
def test_attributes_named_with_percent_format_or_a_helpers_base_method_are_guarded():
    class Base:
        def weighted(self, v):
            return sum(getattr(self, "scale%d" % i) * v for i in range(2))

    class A(Base):
        pass

    class B(Base):
        pass

    a, b, w = A(), B(), Value(np.array([1.0, 2.0, 3.0]))
    a.scale0 = a.scale1 = b.scale0 = b.scale1 = 1.0
    _same_as_eager(lambda x: (a.weighted(x * w) + b.weighted(x * w)).sum(), w,
                   lambda k: setattr(b, "scale1", 1.0 + k))


def test_a_method_named_with_pieces_and_a_functions_module_attribute_are_guarded():
    factor = {"k": 1.0}

    class Net(nn.Module):
        def act_1(self, v):
            return v * factor["k"]

    net, w = Net(), Value(np.array([1.0, 2.0, 3.0]))
    net.scale1 = 1.0
    fn = lambda x: getattr(net, f"act_{1}")(x * w).sum() * getattr(net, f"scale{1}")  # noqa: E731

    def change(k):
        factor["k"] = net.scale1 = 1.0 + k

    _same_as_eager(fn, w, change)


def test_a_constructor_writing_into_what_the_function_holds_is_refused():
    class Stats:
        pass

    stats, w = Stats(), Value(np.array([1.0, 2.0]))
    stats.last = 0.0

    class Logged:
        def __init__(self, s):
            stats.last = s  # (on another object than the one it makes: eager does it at every call)

    def fn(x):
        Logged(1.0)
        return (x * w).sum()

    with pytest.raises(CompileError, match="changed what it reads"):
        ag.compile(fn)(np.ones(2))


def test_bytes_and_a_dataclasss_generated_order_are_walked():
    import dataclasses

    limit, weights = [1.5], {b"a": 1.0, b"b": 2.0}

    class Mode:
        def __init__(self):
            self.name = "a"

        def __bytes__(self):
            return self.name.encode()

    @dataclasses.dataclass(order=True)
    class Level:
        v: float = 1.0

    mode, w = Mode(), Value(np.array([1.0, 2.0, 3.0]))

    def change(k):
        mode.name = "b" if k == 1 else "a"
        limit[0] = 0.5 if k == 3 else 1.5

    _same_as_eager(lambda x: (x * w).sum() * weights[bytes(mode)] * (2.0 if Level() < Level(limit[0]) else 1.0),
                   w, change)


# ---- twenty-ninth round: bookkeeping that must not retrace ---------------------------------------------------
def test_names_added_to_a_users_module_class_or_model_each_epoch_do_not_retrace():
    import types

    settings = types.ModuleType("user_settings")

    class Trainer:
        def __init__(self):
            self.forward_calls, self.w0, self.w1 = 0, 1.0, 2.0

        def loss(self, x):
            scale = sum(getattr(self, "w%d" % i) for i in range(2)) * getattr(settings, "SMOOTHING", 1.0)
            self.forward_calls += 0  # (read, not changed)
            return (x * w).sum() * scale

    trainer, w = Trainer(), Value(np.array([1.0, 2.0, 3.0]))
    step = ag.compile(trainer.loss)
    for epoch in range(4):
        step(np.ones(3)).backward()
        setattr(settings, f"LOSS_EPOCH_{epoch}", 0.5)  # (a log kept on the module, on the class, on the object)
        setattr(Trainer, f"loss_ep{epoch}", 0.5)
    assert step.cache_info().traces == 1
    settings.SMOOTHING = 2.0  # (a name the code reads: retraces)
    assert float(step(np.ones(3)).data) == float(trainer.loss(np.ones(3)).data) and step.cache_info().traces == 2


# ---- thirtieth round: names held in tuples, made in more forms -----------------------------------------------
class _Named:
    def __init__(self):
        self.wa, self.w1, self.xa1by, self.v1 = 1.0, 1.0, 1.0, 1.0


@pytest.mark.parametrize("read", [
    lambda o: sum(getattr(o, n) for n in ("wa",)),                   # a tuple literal of names
    lambda o: getattr(o, "w%(i)d" % {"i": 1}),                      # %(name)d
    lambda o: sum(getattr(o, f"{p}a{1}b{q}") for p, q in (("x", "y"),)),  # pieces in a nested tuple
    lambda o: o.__getattribute__("v" + str(1)),                      # __getattribute__
], ids=["tuple", "percent-mapping", "nested-pieces", "getattribute"])
def test_names_in_a_tuple_literal_or_made_by_other_forms_are_guarded(read):
    o, w = _Named(), Value(np.array([1.0, 2.0, 3.0]))

    def change(k):
        o.wa, o.w1, o.xa1by, o.v1 = (1.0 + k,) * 4

    _same_as_eager(lambda x: (x * w).sum() * read(o), w, change)


# ---- thirty-first round: state kept on the user's subclasses of Value and of containers ---------------------
class _ScaledParameter(nn.Parameter):
    scale_class = 1.0  # (a class attribute: read as w.scale_class)

    def __init__(self, data):
        super().__init__(data)
        self.scale = 1.0

    @property
    def twice(self):
        return 2.0 * self.scale


class _SlottedParameter(nn.Parameter):
    __slots__ = ("scale",)

    def __init__(self, data):
        super().__init__(data)
        self.scale = 1.0


@pytest.mark.parametrize("kind", ["dict-attribute", "slot", "class-attribute", "property"])
def test_numbers_kept_on_a_users_subclass_of_parameter_are_guarded(kind):
    w = (_SlottedParameter if kind == "slot" else _ScaledParameter)(np.array([1.0, 2.0, 3.0]))
    read = {"class-attribute": lambda: w.scale_class, "property": lambda: w.twice}.get(kind, lambda: w.scale)

    def change(k):
        if kind == "class-attribute":
            _ScaledParameter.scale_class = 1.0 + k
        else:
            w.scale = 1.0 + k

    try:
        step = _same_as_eager(lambda x: (x * w).sum() * read(), w, change)
    finally:
        _ScaledParameter.scale_class = 1.0
    assert step.cache_info().traces == 4


class _ConfigDict(dict):
    pass


class _ConfigList(list):
    pass


class _ConfigArray(np.ndarray):
    pass


@pytest.mark.parametrize("kind", ["dict", "list", "deque", "ndarray"])
def test_attributes_kept_on_a_users_subclass_of_a_container_or_array_are_guarded(kind):
    import collections

    deque_class = type("ConfigDeque", (collections.deque,), {})
    cfg = {"dict": lambda: _ConfigDict(lr=0.1), "list": lambda: _ConfigList([0.1]), "deque": lambda: deque_class([1]),
           "ndarray": lambda: np.zeros(2).view(_ConfigArray)}[kind]()
    cfg.temperature, w = 1.0, Value(np.array([1.0, 2.0, 3.0]))
    step = _same_as_eager(lambda x: (x * w).sum() / cfg.temperature, w,
                          lambda k: setattr(cfg, "temperature", 1.0 + k))
    assert step.cache_info().traces == 4


def test_a_parameter_argument_is_traced_as_a_parameter_and_its_class_is_part_of_the_key():
    def loss_fn(w, x):
        decay = 0.1 * (w ** 2).sum() if isinstance(w, nn.Parameter) else 0.0
        return (x @ w).sum() + decay

    step, x = ag.compile(loss_fn), np.array([[0.5, -1.0], [1.5, 0.25]])
    for w in (nn.Parameter(np.array([1.0, 2.0])), Value(np.array([1.0, 2.0]), requires_grad=True)):
        results = []
        for f in (loss_fn, step):
            w.grad = None
            loss = f(w, x)
            loss.backward()
            results.append((_bits(loss.data), _bits(w.grad)))
        assert results[0] == results[1]
    assert step.cache_info().traces == 2


def test_a_value_of_the_users_class_as_an_argument_is_refused():
    class Scaled(nn.Parameter):
        pass

    w = Scaled(np.ones(2))
    w.scale = 2.0
    with pytest.raises(CompileError, match="a Value of a class of yours"):
        ag.compile(lambda w: (w * w.scale).sum())(w)


def test_ufunc_at_with_labels_is_refused_not_run_twice():
    w = Value(np.array([1.0, 2.0, 3.0]))

    def loss_fn(x, y):
        counts = np.zeros(3)
        np.add.at(counts, y, 1.0)
        return (x * w * Value(counts)).sum()

    with pytest.raises(CompileError, match=r"np\.add\.at"):
        ag.compile(loss_fn)(np.ones((2, 3)), np.array([0, 2]))


def test_a_large_held_mask_selecting_another_count_retraces():
    w, mask = Value(np.random.default_rng(0).standard_normal(100)), np.zeros(100, dtype=bool)
    mask[:10] = True

    def change(k):
        mask[:] = False
        mask[5:5 + 3 * k + 1] = True  # (1, 4, 7, 10 selected: in place, the same array)

    x = np.random.default_rng(1).standard_normal(100)
    step = ag.compile(lambda x: ((w * x)[mask] * 3.0).sum())
    for k in range(4):
        change(k)
        results = []
        for f in (lambda x: ((w * x)[mask] * 3.0).sum(), step):
            w.grad = None
            loss = f(x)
            loss.backward()
            results.append((_bits(loss.data), _bits(w.grad)))
        assert results[0] == results[1], f"call {k}"
    assert step.cache_info().traces == 4


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # (0 / 0 in thread A, as eager's)
def test_weighted_cross_entropy_from_two_threads_never_mixes_their_batches():
    import sys
    import threading

    model, weight = nn.Linear(4, 3), np.array([1.0, 2.0, 0.5])
    model.requires_grad_(False)
    fn = lambda x, y: F.cross_entropy(model(x), y, weight=weight, ignore_index=0)  # noqa: E731
    step, x = ag.compile(fn), np.random.default_rng(0).standard_normal((6, 4))
    y_ok, y_ignored = np.array([1, 2, 1, 2, 1, 2]), np.zeros(6, dtype=np.int64)  # (every target ignored: 0 / 0)
    step(Value(x), y_ok).backward()
    paused, done, result = threading.Event(), threading.Event(), {}

    def pause_after_the_rows(frame, event, arg):  # (thread A waits between its rows and its divisor)
        if event == "return" and frame.f_code.co_name == "target_rows" and not paused.is_set():
            paused.set()
            done.wait(10)
        return pause_after_the_rows

    def thread_a():
        sys.settrace(lambda frame, event, arg: pause_after_the_rows if frame.f_code.co_name == "target_rows" else None)
        try:
            result["a"] = float(step(Value(x), y_ignored).data)
        finally:
            sys.settrace(None)

    def thread_b():
        paused.wait(10)
        result["b"] = float(step(Value(x), y_ok).data)
        done.set()

    threads = [threading.Thread(target=thread_a), threading.Thread(target=thread_b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert np.isnan(result["a"]) and np.isnan(float(fn(Value(x), y_ignored).data))
    assert result["b"] == float(fn(Value(x), y_ok).data)


# a dict's items are all guarded where the code makes keys; not where it only adds numbers or writes messages
def _keys_made_in_a_comprehension(cfg, a, b):
    """(A function holding a string: its comprehension's + may make keys.)"""
    return sum(cfg[k] for k in [a + n for n in (b,)])


def _key_plus(cfg, a, b):
    k = a + b
    return cfg[k]


@pytest.mark.parametrize("read, a", [
    (lambda cfg, a, b: cfg["w_" + b], "w_"),
    (lambda cfg, a, b: cfg[a + "_b"], "a"),
    (lambda cfg, a, b: cfg["w_%s" % b], "w_"),
    (lambda cfg, a, b: cfg[a + b], "w_"),
    (_key_plus, "w_"),
    (lambda cfg, a, b: cfg.get(a + b, 0.0), "w_"),
    (lambda cfg, a, b: cfg[f"w_{b}"], "w_"),
    (lambda cfg, a, b: math.log(cfg["w_" + b]) + 1.0, "w_"),
    (lambda cfg, a, b: cfg.get(
        (a + b), 0.0), "w_"),
    (lambda cfg, a, b: dict.get(cfg, a + b), "w_"),
    (_keys_made_in_a_comprehension, "w_"),
], ids=["literal-plus", "plus-literal", "percent", "sum-as-key", "sum-kept", "sum-to-get", "f-string", "in-a-log",
        "get-laid-out", "unbound-get", "comprehension"])
def test_a_dict_read_under_a_key_the_code_makes_is_guarded(read, a):
    cfg, b, w = {"w_b": 1.0, "a_b": 1.0}, "b", Value(np.array([1.0, 2.0, 3.0]))

    def change(k):
        cfg["w_b"] = cfg["a_b"] = 1.0 + k

    step = _same_as_eager(lambda x: (x * w).sum() * read(cfg, a, b), w, change)
    assert step.cache_info().traces == 4


_NUMBERS_AND_MESSAGES = '''
def numbers_and_messages(cfg, x, total):
    """Sums of numbers, and strings made for messages only."""
    assert x.shape[-1] == 3, f"expected 3 features, got {x.shape[-1]}"
    if total < 0:
        raise ValueError("a negative total: " + str(total))
    total += cfg["wd"] * 2.0
    return total + x.shape[0] * 0.5
'''
_numbers_and_messages = {}
exec(_NUMBERS_AND_MESSAGES, _numbers_and_messages)  # (not in this module: pytest rewrites its asserts into
_numbers_and_messages = _numbers_and_messages["numbers_and_messages"]  # code that makes strings)


def test_sums_of_numbers_and_messages_do_not_guard_every_item_of_a_dict():
    cfg, w = {"wd": 0.5, "epoch": 0}, Value(np.array([1.0, 2.0, 3.0]))
    step = _same_as_eager(lambda x: (x * w).sum() * _numbers_and_messages(cfg, x, 1.0), w,
                          lambda k: cfg.update(epoch=k))
    assert step.cache_info().traces == 1
    cfg["wd"] = 2.0  # (the item the code names: retraces)
    step = _same_as_eager(lambda x: (x * w).sum() * _numbers_and_messages(cfg, x, 1.0), w,
                          lambda k: cfg.update(wd=1.0 + k))
    assert step.cache_info().traces == 4


def test_without_column_positions_a_get_is_not_refused():
    import subprocess
    import sys

    code = ("import numpy as np, autograd_core as ag\nfrom autograd_core import Value\n"
            "cfg, w = {'a': 2.0}, Value(np.ones(3))\n"
            "step = ag.compile(lambda x: (x * w).sum() * cfg.get('a', 1.0))\n"
            "print(float(step(np.ones(3)).data))\n")
    out = subprocess.run([sys.executable, "-X", "no_debug_ranges", "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "6.0", out.stderr


def test_bookkeeping_a_trainer_adds_or_names_in_strings_does_not_retrace():
    import dataclasses

    @dataclasses.dataclass
    class LossConfig:
        smoothing: float = 0.5

    class Trainer(nn.Module):  # (a module: its own attributes, added as it trains)
        def __init__(self):
            super().__init__()
            self.fc, self.loss_cfg, self.log_every, self.epoch = nn.Linear(3, 2), LossConfig(), "epoch", 0

        def loss(self, x):
            return (self.fc(x) * dataclasses.asdict(self.loss_cfg)["smoothing"]).sum()

    class Book:  # (a plain object: the step counter of a history the loss never reads)
        pass

    def scale_of(book):
        try:
            return book.scale
        except AttributeError:
            return 1.0

    trainer, book, x = Trainer(), Book(), np.ones((2, 3))
    step = ag.compile(lambda x: trainer.loss(x) * scale_of(book))
    for epoch in range(4):
        step(x).backward()
        trainer.epoch, book.step_num = epoch + 1, epoch  # (named by "epoch", a string it holds; asdict reads
        setattr(trainer, f"best_{epoch}", 0.5)  # only the dataclass; attributes added that nothing reads)
        setattr(book, f"seen_{epoch}", epoch)
    assert step.cache_info().traces == 1
    book.scale = 3.0  # (a name the code reads, added: retraces)
    assert float(step(x).data) == float((trainer.loss(x) * 3.0).data) and step.cache_info().traces == 2
    trainer.loss_cfg.smoothing = 0.25  # (a field asdict reads: retraces)
    assert float(step(x).data) == float((trainer.loss(x) * 3.0).data) and step.cache_info().traces == 3


# ---- thirty-third round: keys and names the narrowed rules missed -------------------------------------------
_W_OF = dict(zip("ab", (1.0, 0.5)))  # (keys that no string of the code below spells)
_PARTS = ("w", "b", 2, 1)  # (a prefix, a name, a number, a level)


def _weights_summed_in_a_loop(x, w):
    total = 0.0
    for k in _W_OF:
        total = total + _W_OF[k] * (x * w).sum()
    return total


_KEYED = {"w4": 1.0, "-b": 1.0, "w_bb": 1.0, "wb": 1.0}


@pytest.mark.parametrize("read", [
    _weights_summed_in_a_loop,
    lambda x, w: sum(_W_OF[k] * (x * w).sum() for k in _W_OF),
    lambda x, w: (x * w).sum() * _KEYED["w%d" % _PARTS[2] ** _PARTS[2]],
    lambda x, w: (x * w).sum() * _KEYED["-" * _PARTS[3] + _PARTS[1]],
    lambda x, w: (x * w).sum() * _KEYED["w_" + _PARTS[1] * _PARTS[2]],
    lambda x, w: (x * w).sum() * _KEYED[(k := _PARTS[0] + _PARTS[1])],
    lambda x, w: (x * w).sum() * _KEYED[_PARTS[0] + _PARTS[1] if _PARTS[3] else _PARTS[1]],
], ids=["loop-over-keys", "generator-over-keys", "percent-of-a-power", "repeated-prefix", "literal-plus-product",
        "walrus", "ternary"])
def test_dict_items_read_under_keys_from_a_loop_or_a_join_of_strings_are_guarded(read):
    w = Value(np.array([1.0, 2.0, 3.0]))

    def change(k):
        _W_OF["b"] = 0.5 ** (k + 1)
        for key in _KEYED:
            _KEYED[key] = 1.0 + k

    try:
        step = _same_as_eager(lambda x: read(x, w), w, change)
    finally:
        _W_OF["b"] = 0.5
        _KEYED.update(dict.fromkeys(_KEYED, 1.0))
    assert step.cache_info().traces == 4


def test_a_key_made_in_a_print_and_kept_is_guarded():
    scales, parts, w = {"w_b": 1.0}, ["w_", "b"], Value(np.array([1.0, 2.0, 3.0]))

    def loss(x):
        print("reading", key := parts[0] + parts[1])
        return (x * w).sum() * scales[key]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (the print's warning)
        step = _same_as_eager(loss, w, lambda k: scales.update(w_b=1.0 + k))
    assert step.cache_info().traces == 4


class _Coefs:
    scale_a = 1.0


_READ_ATTRIBUTE = getattr  # (a reader held under another name)


@pytest.mark.parametrize("read", [
    lambda o, cfg: _READ_ATTRIBUTE(o, cfg["coef"]),
    lambda o, cfg: inspect.getattr_static(o, cfg["coef"]),
    lambda o, cfg: float(("{0.%s}" % cfg["coef"]).format(o)),
    lambda o, cfg: getattr(_Coefs, cfg["coef"]),
    lambda o, cfg: sum(getattr(o, n) for n in dir(o) if n.startswith("scale")),
], ids=["getattr-alias", "getattr-static", "format-field", "class-attribute", "dir"])
def test_attributes_read_by_strings_held_in_data_are_guarded(read):
    o, cfg, w = _Coefs(), {"coef": "scale_a"}, Value(np.array([1.0, 2.0, 3.0]))
    o.scale_a = 1.0

    def change(k):
        o.scale_a = _Coefs.scale_a = 1.0 + k

    try:
        step = _same_as_eager(lambda x: (x * w).sum() * read(o, cfg), w, change)
    finally:
        _Coefs.scale_a = 1.0
    assert step.cache_info().traces == 4


@pytest.mark.parametrize("make", ["namespace", "argparse", "attrs", "pydantic"])
def test_every_field_of_a_namespace_or_a_record_read_at_once_is_guarded(make):
    import argparse
    import types

    def penalty(wd=0.0, smoothing=0.0):
        return wd + smoothing

    if make in ("namespace", "argparse"):
        cfg = (types.SimpleNamespace if make == "namespace" else argparse.Namespace)(wd=0.5, smoothing=0.1)
        read = lambda: penalty(**vars(cfg))  # noqa: E731
    elif make == "attrs":
        attr = pytest.importorskip("attr")
        cfg = attr.make_class("Cfg", ["wd", "smoothing"])(0.5, 0.1)
        read = lambda: penalty(**attr.asdict(cfg))  # noqa: E731
    else:
        pydantic = pytest.importorskip("pydantic")
        cfg = pydantic.create_model("Cfg", wd=(float, 0.5), smoothing=(float, 0.1))()
        read = lambda: penalty(**cfg.model_dump())  # noqa: E731
    w = Value(np.array([1.0, 2.0, 3.0]))
    step = _same_as_eager(lambda x: (x * w).sum() * read(), w, lambda k: setattr(cfg, "wd", 0.5 + k))
    assert step.cache_info().traces == 4


@pytest.mark.parametrize("read", [
    lambda o: sum(getattr(o, n) for n in dir(o) if n.startswith("scale")),
    lambda o: _READ_ATTRIBUTE(o, "extra", 1.0),
], ids=["dir", "getattr-alias-default"])
def test_an_attribute_added_since_the_trace_and_read_without_its_name_retraces(read):
    o, w = _Coefs(), Value(np.array([1.0, 2.0, 3.0]))
    step = _same_as_eager(lambda x: (x * w).sum() * read(o), w,
                          lambda k: (setattr(o, "scale_b", 2.0), setattr(o, "extra", 3.0)) if k == 2 else None)
    assert step.cache_info().traces == 2


# ---- thirty-fourth round: keys taken from the dict, held getters, readers under other names ----------------
_TASKS = {"cls": 1.0, "box": 2.0}


def _repeated_prefix_key(sep, name):
    """(A function holding a string: sep * 2 + name may be a key.)"""
    return _KEYED2[sep * 2 + name]


_KEYED2 = {"..b": 1.0}
_GET_TASK = _TASKS.get  # (a getter held, never called by name)
_BY_DTYPE, _BY_ACTIVATION, _ACTIVATION = {"float64": 1.0}, {"tanh": 1.0}, ag.tanh  # (keys read off objects)


@pytest.mark.parametrize("read", [
    lambda x: _repeated_prefix_key(".", "b"),
    lambda x: _TASKS[max(_TASKS, key=_TASKS.get)],
    lambda x: _TASKS[next(iter(_TASKS))] + _TASKS[sorted(_TASKS)[-1]],
    lambda x: sum(_TASKS[k] for i, k in enumerate(_TASKS)),
    lambda x: _GET_TASK("cls") + _GET_TASK("box"),
    lambda x: _BY_DTYPE[x.dtype.name] * _BY_ACTIVATION[_ACTIVATION.__name__],
], ids=["repeated-prefix", "max-by-get", "taken-from-the-dict", "enumerate", "held-getter", "key-off-an-object"])
def test_dict_items_under_keys_the_code_takes_from_the_dict_or_an_object_are_guarded(read):
    w = Value(np.array([1.0, 2.0, 3.0]))

    def change(k):
        _TASKS.update(cls=1.0 + k, box=2.0 + 2 * k)
        _KEYED2["..b"] = _BY_DTYPE["float64"] = _BY_ACTIVATION["tanh"] = 1.0 + k

    try:
        step = _same_as_eager(lambda x: (x * w).sum() * read(x), w, change)
    finally:
        _TASKS.update(cls=1.0, box=2.0)
        _KEYED2["..b"] = _BY_DTYPE["float64"] = _BY_ACTIVATION["tanh"] = 1.0
    assert step.cache_info().traces == 4


_GET_ATTRIBUTE = object.__getattribute__  # (a reader held under another name)


@dataclasses.dataclass
class _Pair:
    a: float = 1.0
    b: float = 2.0


def _matched(pair):
    match pair:
        case _Pair(a, b):
            return a + b


@pytest.mark.parametrize("read", [
    lambda cfg, pair, names: sum(_GET_ATTRIBUTE(cfg, n) for n in names),
    lambda cfg, pair, names: float("{0.inner.scale}".format(cfg)),
    lambda cfg, pair, names: sum(getattr(cfg, "__dict__")[n] for n in names),
    lambda cfg, pair, names: _matched(pair),
], ids=["held-getattribute", "format-chain", "getattr-of-dict", "match-class"])
def test_attributes_read_through_a_held_getattribute_a_dict_name_a_format_chain_or_a_match_are_guarded(read):
    class Inner:
        scale = 1.0

    class Cfg:
        pass

    cfg, pair, names, w = Cfg(), _Pair(), ["scale"], Value(np.array([1.0, 2.0, 3.0]))
    cfg.scale, cfg.inner = 1.0, Inner()

    def change(k):
        cfg.scale, cfg.inner.scale, pair.a = (1.0 + k,) * 3

    step = _same_as_eager(lambda x: (x * w).sum() * read(cfg, pair, names), w, change)
    assert step.cache_info().traces == 4


# ---- thirty-fifth round: random generators and parameter writes inside the step ----------------------------
@pytest.mark.parametrize("body", [
    lambda layer, x: F.dropout(layer(x), 0.5, generator=np.random.default_rng(3)).sum(),
    lambda layer, x: (nn.manual_seed(42), F.dropout(layer(x), 0.5).sum())[1],
    lambda layer, x: (nn.init.constant_(layer.bias, 0.0), layer(x).sum())[1],
    lambda layer, x: (nn.utils.max_norm_(layer, 0.3), layer(x).sum())[1],
], ids=["generator-made-in-the-call", "manual-seed", "init-constant", "max-norm"])
def test_reseeding_a_fresh_generator_or_rewriting_a_parameter_inside_the_step_is_refused(body):
    layer = nn.Linear(3, 2)
    with pytest.raises(CompileError, match="generator made during the call|manual_seed|replaced the data"):
        ag.compile(lambda x: body(layer, x))(np.ones((4, 3)))


def test_a_held_generator_stays_that_generator_after_a_reseed():
    layer, gen = nn.Linear(3, 4), nn.get_generator()  # (held before the call: eager draws from it after reseeds)
    fn = lambda x: F.dropout(layer(x), 0.5, generator=gen).sum()  # noqa: E731
    step, x = ag.compile(fn), np.ones((8, 3))
    state = gen.bit_generator.state
    compiled = [float(step(x).data) for _ in range(2)]
    nn.manual_seed(7)
    compiled.append(float(step(x).data))
    gen.bit_generator.state = state
    nn.manual_seed(0)
    eager = [float(fn(x).data) for _ in range(2)]
    nn.manual_seed(7)
    eager.append(float(fn(x).data))
    assert compiled == eager


# ---- thirty-sixth round: generators asked for and held, bit generators, writes past the .data setter ---------
def test_generators_made_in_a_host_function_are_its_own_and_other_made_ones_are_refused():
    from autograd_core.compile import host_array

    layer, x = nn.Linear(3, 4), np.ones((8, 3))

    def masked(h):  # (runs again at every call: its generator is made afresh, as eager's)
        return F.dropout(Value(h), 0.5, generator=np.random.default_rng(0)).data

    ones = np.ones((8, 4))
    fn = lambda x: (layer(x) * Value(host_array(masked, ones))).sum()  # noqa: E731
    step = ag.compile(fn)
    assert [float(step(x).data) for _ in range(3)] == [float(fn(x).data) for _ in range(3)]
    for made in (lambda: np.random.PCG64(3), lambda: np.random.RandomState(3)):
        with pytest.raises(CompileError, match="generator made during the call"):
            ag.compile(lambda x: F.dropout(layer(x), 0.5, generator=made()).sum())(x)


def test_the_global_generator_held_and_asked_for_is_refused():
    layer, held = nn.Linear(3, 4), nn.get_generator()
    fn = lambda x: (F.dropout(layer(x), 0.5, generator=held) + F.dropout(layer(x), 0.5, generator=nn.get_generator())).sum()  # noqa: E731,E501
    with pytest.raises(CompileError, match="both held by the function and asked for"):
        ag.compile(fn)(np.ones((8, 3)))


@pytest.mark.parametrize("write", [
    lambda w: w._data.__imul__(0.9),
    lambda w: setattr(w, "_data", w._data * 0.9),
    lambda w: effect(lambda: nn.init.constant_(w, 0.5)),
    lambda w: _HELD_FILL(0.0),
], ids=["in-place-array", "array-replaced", "data-replaced-in-an-effect", "held-fill"])
def test_writes_into_what_the_function_holds_past_the_data_setter_are_refused(write):
    w = Value(np.array([1.0, 2.0, 3.0]))
    with pytest.raises(CompileError, match="wrote into|replaced the data"):
        ag.compile(lambda x: (write(w), (x * w).sum())[1])(np.ones(3))


_HELD_FLAGS = np.ones(3)
_HELD_FILL = _HELD_FLAGS.fill  # (a bound method that writes, held: its array is walked)


# ---- thirty-seventh round: what the write refusals must let through ----------------------------------------
_LOSS_LOG = []
_LOG_LOSS = _LOSS_LOG.append  # (a held bound method that writes, called from an effect)


def test_effects_writing_into_their_inputs_or_through_a_held_method_and_no_change_are_not_refused():
    model, ema = nn.Linear(3, 2), nn.Linear(3, 2)
    ema_params, params = list(ema.parameters()), list(model.parameters())

    def average(*arrays):  # (Polyak averaging into the EMA's own arrays, in place)
        for e, p in zip(arrays[:len(arrays) // 2], arrays[len(arrays) // 2:]):
            e *= 0.9
            e += 0.1 * p

    def loss_fn(x):
        model.double()  # (float64 already: nothing changes)
        loss = model(x).sum()
        effect(average, *ema_params, *params)
        effect(lambda v: _LOG_LOSS(float(v.sum())), loss)
        return loss

    step, x = ag.compile(loss_fn), np.ones((4, 3))
    before = [p.data.copy() for p in ema_params]
    for _ in range(3):
        step(x).backward()
    want = before
    for _ in range(3):
        want = [0.9 * e + 0.1 * p.data for e, p in zip(want, params)]
    assert all(np.array_equal(w, e.data) for w, e in zip(want, ema_params)) and len(_LOSS_LOG) == 3
    assert step.cache_info().traces == 1


def test_a_mean_teacher_updated_by_an_effect_after_its_forward_is_refused_clearly():
    student = nn.Linear(5, 3)
    teacher = nn.Linear(5, 3)
    teacher.requires_grad_(False)

    def ema(tw, tb, sw, sb):
        for t, s in ((tw, sw), (tb, sb)):
            t *= 0.9
            t += 0.1 * s

    def loss_fn(x):
        logits = student(x)
        with ag.no_grad():
            target = teacher(x)
        effect(ema, teacher.weight, teacher.bias, student.weight, student.bias)
        return F.mse_loss(logits, target)

    with pytest.raises(CompileError, match="Call the effect before the operation"):
        ag.compile(loss_fn)(np.ones((4, 5)))


# ---- thirty-eighth round: effects' writes told apart, keys by other routes, draws of the function's own ------
def test_an_effect_given_a_value_does_not_excuse_the_functions_own_write_into_it():
    w, norms = Value(np.ones(3)), []

    def fn(x):
        effect(lambda a: norms.append(float(np.linalg.norm(a))), w)  # (it only reads w)
        w._data *= 0.9  # (the function's own write: eager decays w at every call)
        return (w * x).sum()

    with pytest.raises(CompileError, match="wrote into the data of w"):
        ag.compile(fn)(np.arange(1.0, 4.0))


def test_an_effect_writing_into_a_value_the_call_made_is_refused_clearly():
    w = Value(np.array([0.5, -2.0, 3.0]))

    def fn(x):
        h = w * x
        effect(lambda a: np.clip(a, -1, 1, out=a), h)
        return (h * h).sum()

    with pytest.raises(CompileError, match="an effect wrote into .* in place") as error:
        ag.compile(fn)(np.arange(1.0, 4.0))
    assert "internal" not in str(error.value)


_MADE_KEYS = '''
import operator
PREFIX, TERM = "w_", "l2"
def by_dict_get(weights, x):
    key = PREFIX + TERM
    return x * dict.get(weights, key)
def by_getitem(weights, x):
    key = PREFIX + TERM
    return x * operator.getitem(weights, key)
def by_getitem_of_a_join(weights, x):
    return x * operator.getitem(weights, PREFIX + TERM)
def by_format_map(weights, opts, x):
    return x * weights["{kind}_weight".format_map(opts)]
'''
_made_keys = {}
exec(_MADE_KEYS, _made_keys)  # (not in this module: pytest rewrites its asserts into code that makes strings)


@pytest.mark.parametrize("how", ["by_dict_get", "by_getitem", "by_getitem_of_a_join"])
def test_a_made_key_read_by_dict_get_or_operator_getitem_is_guarded(how):
    w, weights, read = Value(np.array([1.0, 2.0, 3.0])), {"w_l2": 1.0}, _made_keys[how]
    step = _same_as_eager(lambda x: read(weights, x * w).sum(), w, lambda k: weights.update(w_l2=1.0 + k))
    assert step.cache_info().traces == 4


def test_the_keys_of_a_format_map_template_are_guarded():
    w, weights, opts = Value(np.array([1.0, 2.0, 3.0])), {"ce_weight": 1.0, "l2_weight": 0.5}, {"kind": "ce"}
    read = _made_keys["by_format_map"]
    step = _same_as_eager(lambda x: read(weights, opts, x * w).sum(), w,
                          lambda k: opts.update(kind="l2") if k == 2 else None)
    assert step.cache_info().traces == 2


def test_an_attribute_read_by_a_dotted_path_is_guarded():
    import functools
    import operator

    class Holder:
        pass

    net = Holder()
    net.head = Holder()
    w = Value(np.array([1.0, 2.0, 3.0]))
    path = "head.temperature"

    def change(k):
        net.head.temperature = 2.0 + k

    for read in (lambda obj: functools.reduce(getattr, path.split("."), obj),
                 lambda obj: operator.attrgetter("head.temperature")(obj)):
        step = _same_as_eager(lambda x, read=read: (x * w / read(net)).sum(), w, change, calls=3)
        assert step.cache_info().traces == 3


def test_draws_of_the_functions_own_from_a_generator_are_refused():
    import random

    w, rng = Value(np.ones((2, 3))), np.random.default_rng(0)
    draws = {"np.random": lambda: np.random.randint(0, 2),
             "random": lambda: random.random(),
             "nn.get_generator()": lambda: nn.get_generator().random(),
             "rng": lambda: rng.random()}
    for name, draw in draws.items():
        with pytest.raises(CompileError, match="drew random numbers from"):
            ag.compile(lambda x, draw=draw: (x * w).sum() * draw())(np.ones((2, 3)))
    # drawn in a host function, made again at every call: allowed, and as eager draws
    noise = lambda x: x * host_array(lambda: np.random.standard_normal((2, 3)))  # noqa: E731
    step = ag.compile(lambda x: (noise(x) * w).sum())
    np.random.seed(1)
    compiled = [float(step(np.ones((2, 3))).data) for _ in range(3)]
    np.random.seed(1)
    eager = [float((noise(np.ones((2, 3))) * w).sum().data) for _ in range(3)]
    assert compiled == eager and len(set(compiled)) == 3


_RANGE_LOOP = '''
def forward(layers, x):
    for i in range(len(layers)):
        x = layers[i](x)
    return x
'''
_range_loop = {}
exec(_RANGE_LOOP, _range_loop)


def test_a_loop_over_a_range_does_not_guard_every_item_of_a_dict():
    nn.manual_seed(0)
    layers, cfg = [nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1)], {"lr": 0.1, "epoch": 0}
    forward = _range_loop["forward"]
    step = ag.compile(lambda x: forward(layers, x).sum() * cfg["scale"])
    cfg["scale"] = 2.0
    for epoch in range(4):
        cfg["epoch"], cfg["lr"] = epoch, 0.1 * 0.9 ** epoch  # (the loop's bookkeeping, read by no step)
        step(np.ones((2, 3))).backward()
    assert step.cache_info().traces == 1


class _Centers:
    def __init__(self):
        self.center = np.array([1.0, 2.0, 3.0])
        self.hist = {"loss": []}

    def update(self, h):
        self.center[...] = 0.5 * self.center + 0.1 * h  # (in place, into the array its object holds)
        self.hist["loss"].append(float(h.sum()))  # (into a list it holds in a dict)


def test_an_effect_writing_into_what_its_object_holds_compiles_and_gives_eager_bits():
    results = []
    for compiled in (False, True):
        w, centers = Value(np.ones(3)), _Centers()

        def fn(x, w=w, centers=centers):
            h = w * x
            effect(centers.update, h.detach())  # (before the loss reads the center, as eager's order)
            return ((h - centers.center) ** 2).sum()

        step = ag.compile(fn) if compiled else fn
        results.append(_run(step, [w], [(np.arange(1.0, 4.0),)] * 4, compiled=False)
                       + [(_bits(centers.center), centers.hist["loss"])])
    assert results[0] == results[1]


class _EMA:
    def __init__(self, teacher, student, decay):
        self.teacher, self.student, self.decay = teacher, student, decay

    def update(self):
        for t, s in zip(self.teacher.parameters(), self.student.parameters()):
            t.data *= self.decay
            t.data += (1 - self.decay) * s.data


def test_an_ema_updating_a_teachers_parameters_through_data_in_an_effect_gives_eager_bits():
    import copy

    results = []
    for compiled in (False, True):
        nn.manual_seed(0)
        student = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))
        teacher = copy.deepcopy(student)
        teacher.requires_grad_(False)
        ema = _EMA(teacher, student, 0.9)

        def fn(x, y, ema=ema, teacher=teacher, student=student):
            effect(ema.update)
            with ag.no_grad():
                target = teacher(x)
            logits = student(x)
            return F.cross_entropy(logits, y) + F.mse_loss(F.softmax(logits, 1), F.softmax(target, 1))

        step, opt = ag.compile(fn) if compiled else fn, optim.SGD(student.parameters(), lr=0.1)
        rng = np.random.default_rng(0)
        x, y, losses = rng.standard_normal((8, 4)), rng.integers(0, 3, 8), []
        for _ in range(4):
            opt.zero_grad()
            loss = step(x, y)
            loss.backward()
            opt.step()
            losses.append(_bits(loss.data))
        results.append((losses, [_bits(p.data) for p in teacher.parameters()]))
    assert results[0] == results[1]


class _MaskedNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 3)

    @functools.cached_property
    def mask(self):  # (computed once, at the first forward, as eager does)
        return np.tril(np.ones((3, 3)))

    def forward(self, x):
        return self.fc(x) * self.mask


def test_a_cached_property_filled_by_the_first_call_is_not_refused():
    results = []
    for compiled in (False, True):
        nn.manual_seed(0)
        net = _MaskedNet()
        fn = lambda x, net=net: net(x).sum()  # noqa: E731
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # (the mask is an array made outside the engine's operations)
            results.append(_run(fn, list(net.parameters()), [(np.full((3, 3), k + 1.0),) for k in range(3)],
                                compiled))
    assert results[0] == results[1]


# ---- thirty-ninth round: gradients inside the step, user rules, layouts, draws the first check missed -------
def test_a_gradient_penalty_through_relu_is_refused_not_frozen():
    critic = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 1))  # (relu's mask comes from the data)
    with pytest.raises(CompileError, match="create_graph=True"):
        ag.compile(_penalty_of(critic))(np.random.default_rng(0).standard_normal((4, 3)))


def test_a_gradient_penalty_through_tanh_gives_eager_bits_and_runs_eagerly_under_no_grad():
    nn.manual_seed(0)
    critic = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1))
    params, penalty = list(critic.parameters()), _penalty_of(critic)
    calls = [(np.random.default_rng(k).standard_normal((4, 3)),) for k in range(3)]
    assert _run(penalty, params, calls, compiled=True) == _run(penalty, params, calls, compiled=False)
    step = ag.compile(penalty)
    step(*calls[0]).backward()
    with ag.no_grad(), pytest.raises(ValueError, match="not used"):  # (as eager: no graph under no_grad)
        step(*calls[1])


def test_a_first_order_grad_inside_the_function_is_refused():
    w = Value(np.array([0.5, -1.0, 2.0]))

    def sam(x):
        (g,) = ag.grad((w * x).sum() ** 2, w)  # (arrays: the first call's in every replay)
        return ((w + 0.05 * g) * x).sum()

    with pytest.raises(CompileError, match="without create_graph=True"):
        ag.compile(sam)(np.ones(3))


def test_numpy_on_standardizes_statistics_is_refused_not_frozen():
    w = Value(np.array([0.3, -0.5, 0.8]))

    def fn(x):
        z, mean, var = ag.standardize(x * w, axis=0, return_stats=True)
        return (z * z * w).sum() + 0.5 * var.mean()

    with pytest.raises(CompileError, match="mean"):
        ag.compile(fn)(np.random.default_rng(0).standard_normal((5, 3)))


def test_a_users_op_of_ufuncs_is_not_taken_for_the_librarys():
    import operator

    class AbsRule:  # (a callable object, no __code__: a local gradient of 1 where nothing is negative)
        def __call__(self, x, out):
            return 1 if (x >= 0).all() else np.sign(x)

    declared = ag.Op("user_abs_declared", np.abs, inputs="x", elementwise=True, d_x=operator.truediv, formula="",
                     as_numpy={"forward": "x"}, register=False)  # (a form right on positive numbers only)
    passed_on = ag.Op("user_abs_rule", np.abs, inputs="x", elementwise=True, d_x=AbsRule(), formula="",
                      register=False)
    w = Value(np.array([1.0, 2.0, 3.0]))
    calls = [(np.array([1.0, 2.0, 3.0]),), (np.array([-1.0, 2.0, -3.0]),)]
    for op in (declared, passed_on):
        fn = lambda x, op=op: op.apply(x * w).sum()  # noqa: E731
        assert _run(fn, [w], calls, compiled=True) == _run(fn, [w], calls, compiled=False)


def test_a_users_rule_giving_no_share_on_some_calls_only_is_refused_at_that_call():
    def d_b(g, a, b, out):
        return None if not g.any() else g * a

    op = ag.Op("mul_skipping", lambda a, b: a * b, inputs="a, b", formula="", d_a=lambda g, a, b, out: g * b,
               d_b=d_b, register=False)
    w, s = Value(np.array([1.0, 2.0, 3.0])), Value(np.full(3, 0.5))
    for first, then in ((np.zeros(3), np.ones(3)), (np.ones(3), np.zeros(3))):
        step = ag.compile(lambda x, m: (op.apply(x * w, s) * m).sum())
        step(np.ones(3), first).backward()
        with pytest.raises(CompileError, match="mul_skipping"):
            step(np.ones(3), then).backward()


@pytest.mark.parametrize("layout", ["transposed", "fortran"])
def test_integer_arguments_keep_their_memory_layout(layout):
    w = Value(np.random.default_rng(0).standard_normal((6, 5)))

    def arg(k):
        counts = np.random.default_rng(k).integers(0, 9, (5, 6))
        return counts.T if layout == "transposed" else np.asfortranarray(counts.T)

    fn = lambda counts: ag.einsum("ij,ij->", w, counts)  # noqa: E731
    calls = [(arg(k),) for k in range(4)]
    assert _run(fn, [w], calls, compiled=True) == _run(fn, [w], calls, compiled=False)


def test_empty_axes_of_a_float_argument_match_eager_or_are_refused():
    w = Value(np.array([1.0, 2.0, 3.0]))
    x = np.zeros((2, 0, 3))
    prod = lambda x: (w * ag.prod(x, axis=1)).sum()  # noqa: E731
    assert _run(prod, [w], [(x,)] * 2, compiled=True) == _run(prod, [w], [(x,)] * 2, compiled=False)
    with pytest.raises(CompileError, match="mean"):
        ag.compile(lambda x: (w * x.mean(1)).sum())(x)


def test_draws_by_spawning_or_a_held_method_or_an_unseeded_generator_are_refused():
    import random

    rng, draw = np.random.default_rng(0), random.Random(0).random
    w = Value(np.ones(3))
    for extra in (lambda: rng.spawn(1)[0].uniform(), lambda: draw(),
                  lambda: float(np.random.default_rng().beta(0.4, 0.4))):
        with pytest.raises(CompileError, match="drew random numbers|without a seed"):
            ag.compile(lambda x, extra=extra: (w * x).sum() * extra())(np.ones(3))


def test_an_effect_restoring_weights_it_holds_is_refused_clearly():
    model = nn.Linear(3, 2)
    params = list(model.parameters())

    def sam_like(x):
        saved = [host_array(lambda p=p: p._data.copy()) for p in params]
        for p in params:
            p._data += 0.05  # (the function's own perturbation)
        loss = model(x).sum()
        for p, s in zip(params, saved):
            effect(lambda s, p=p: p._data.__setitem__(Ellipsis, s), s)
        return loss

    with pytest.raises(CompileError) as error:
        ag.compile(sam_like)(np.ones((4, 3)))
    assert "internal" not in str(error.value)


def test_an_ema_of_a_deep_or_long_model_through_data_gives_eager_bits():
    import copy

    results = []
    for compiled in (False, True):
        nn.manual_seed(0)
        student = nn.Sequential(*[nn.Linear(3, 3) for _ in range(70)])
        teacher = copy.deepcopy(student)
        teacher.requires_grad_(False)
        ema = _EMA(teacher, student, 0.9)

        def fn(x, ema=ema, student=student):
            effect(ema.update)
            return student(x).sum()

        step, losses = ag.compile(fn) if compiled else fn, []
        for _ in range(3):
            losses.append(_bits(step(np.ones((2, 3))).data))
        results.append((losses, [_bits(p.data) for p in teacher.parameters()]))
    assert results[0] == results[1]


def test_a_dotted_string_logged_does_not_guard_an_attribute_of_that_name():
    class Trainer:
        loss = 0.0

    trainer, logged, w = Trainer(), {}, Value(np.ones(3))

    def fn(x):
        loss = (w * x).sum()
        effect(lambda l: logged.update({"train.loss": float(l)}), loss)
        return loss * trainer.scale

    trainer.scale = 2.0
    step = ag.compile(fn)
    for k in range(4):
        trainer.loss = float(step(np.full(3, 1.0 + k)).data)  # (the loop's bookkeeping)
    assert step.cache_info().traces == 1


def test_a_compiled_step_reached_as_a_global_is_not_guarded():
    import logging

    namespace = {"np": np, "Value": Value, "ag": ag, "effect": effect, "logging": logging}
    exec("w = Value(np.ones(3))\n"  # noqa: S102 (a logger held: its formatter reads every attribute)
         "class Tracker:\n    def __init__(self):\n        self.step, self.log = 0, logging.getLogger('t')\n"
         "    def __call__(self, l):\n        self.step += 1\n"
         "        if self.step % 100 == 0:\n            self.log.info('step %d', self.step)\n"
         "tracker = Tracker()\n"
         "def fn(x):\n    loss = (w * x).sum()\n    effect(tracker, loss)\n    return loss\n"
         "step = ag.compile(fn)\n", namespace)
    for _ in range(4):
        namespace["step"](np.ones(3))
    assert namespace["step"].cache_info().traces == 1


# ---- fortieth round: masks of a gradient penalty, nested compiled functions, small running statistics ------
def _penalty_of(critic):
    def penalty(x):
        xv = Value(x)
        (g,) = ag.grad(critic(xv).sum(), xv, create_graph=True)
        return ((g * g).sum(axis=(1, 2, 3) if x.ndim == 4 else 1) - 1.0).mean()
    return penalty


@pytest.mark.parametrize("activation", ["celu", "hardswish", "leaky_relu", "softplus"])
def test_a_gradient_penalty_through_a_rule_with_a_mask_is_refused(activation):
    act = {"celu": nn.CELU(), "hardswish": nn.Hardswish(), "leaky_relu": nn.LeakyReLU(0.2),
           "softplus": nn.Softplus()}[activation]
    critic = nn.Sequential(nn.Linear(3, 8), act, nn.Linear(8, 1))
    with pytest.raises(CompileError, match="create_graph=True"):
        ag.compile(_penalty_of(critic))(np.random.default_rng(0).standard_normal((4, 3)))


def test_an_inner_step_through_a_one_element_hinge_is_refused():
    w = Value(np.array([[0.3, -0.2, 0.5]]))

    def maml(x, y):
        inner = ag.relu(0.1 - y * (x @ w.T)).mean()  # (relu's mask of one number)
        (g,) = ag.grad(inner, w, create_graph=True)
        return ((w - 0.5 * g) ** 2).sum()

    with pytest.raises(CompileError, match="mask of shape"):
        ag.compile(maml)(np.array([[0.3, -1.2, 0.8]]), np.array([[1.0]]))


def test_a_first_order_grad_under_detect_anomaly_is_refused():
    w = Value(np.array([0.5, -1.0, 2.0]))

    def sam(x):
        with ag.detect_anomaly():
            (g,) = ag.grad((w * x).sum() ** 2, w)
        return ((w + 0.05 * g) * x).sum()

    with pytest.raises(CompileError, match="without create_graph=True"):
        ag.compile(sam)(np.ones(3))


@pytest.mark.parametrize("layer", ["adaptive_pool", "upsample"])
def test_a_gradient_penalty_through_shape_constants_gives_eager_bits(layer):
    nn.manual_seed(0)
    last = nn.AdaptiveAvgPool2d(1) if layer == "adaptive_pool" else nn.Upsample(scale_factor=2)
    critic = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Tanh(), last)
    params = list(critic.parameters())
    calls = [(np.random.default_rng(k).standard_normal((2, 1, 4, 4)),) for k in range(3)]
    assert _run(_penalty_of(critic), params, calls, compiled=True) == _run(_penalty_of(critic), params, calls,
                                                                           compiled=False)


def test_an_inner_compiled_functions_reads_are_guarded():
    class Cfg:
        smoothing = 0.1

    w = Value(np.array([1.0, 2.0, 3.0]))
    inner = ag.compile(lambda x: (x * w).sum() * Cfg.smoothing)
    step = _same_as_eager(lambda x: inner.fn(x) * 2.0, w,
                          lambda k: setattr(Cfg, "smoothing", 0.1 * (k + 1)), calls=3)
    assert step.cache_info().traces == 3


def test_a_users_op_of_a_library_forward_and_a_callable_rule_is_the_users():
    class StepRule:
        def __call__(self, x, out):
            return 1 if (x > 0).all() else (x > 0).astype(x.dtype)

    op = ag.Op("user_relu", ag.ops.OPS["relu"].forward, inputs="x", elementwise=True, d_x=StepRule(),
               formula="", register=False)
    w = Value(np.array([1.0, 2.0, 3.0]))
    calls = [(np.array([1.0, 2.0, 3.0]),), (np.array([-1.0, 4.0, -3.0]),)]
    fn = lambda x: (op.apply(x * w) * x).sum()  # noqa: E731
    assert _run(fn, [w], calls, compiled=True) == _run(fn, [w], calls, compiled=False)


class _SmallBatchNorm:
    def __init__(self, n):
        self.running_mean = np.zeros(n)  # (of 64 numbers or fewer: guarded by its bytes)

    def update(self, mean):
        self.running_mean = 0.9 * self.running_mean + 0.1 * mean  # (rebound, not written in place)


def test_an_effect_rebinding_a_small_running_mean_it_does_not_read_compiles():
    results = []
    for compiled in (False, True):
        w, bn = Value(np.linspace(-1.0, 1.0, 16)), _SmallBatchNorm(16)

        def fn(x, w=w, bn=bn):
            h = x * w
            effect(bn.update, h.mean(axis=0))
            return (h * h).sum()

        step = ag.compile(fn) if compiled else fn
        calls = [(np.random.default_rng(k).standard_normal((4, 16)),) for k in range(3)]
        results.append((_run(step, [w], calls, compiled=False), _bits(bn.running_mean)))
    assert results[0] == results[1]


class _KeyErrorAttrDict(dict):
    def __getattr__(self, name):
        return self[name]  # (a KeyError, not an AttributeError, for a missing name: getattr(cfg, x, None) raises)


def test_an_attribute_dict_whose_getattr_raises_key_error_is_walked():
    cfg, w = _KeyErrorAttrDict(scale=2.0), Value(np.array([1.0, 2.0, 3.0]))
    step = _same_as_eager(lambda x: (x * w).sum() * cfg.scale, w, lambda k: cfg.update(scale=2.0 + k), calls=3)
    assert step.cache_info().traces == 3


def test_clip_of_an_array_argument_keeps_negative_zero_as_numpy_does():
    w = Value(np.array([1.0, 2.0, 3.0], np.float32))
    fn = lambda x: (w / x.clip(0.0, 1.0)).sum()  # noqa: E731  (1 / -0.0 is -inf: the sign of the zero shows)
    calls = [(np.array([-0.0, 0.5, 2.0], np.float32),), (np.array([0.25, -0.0, -3.0], np.float32),)]
    with np.errstate(divide="ignore"):
        assert _run(fn, [w], calls, compiled=True) == _run(fn, [w], calls, compiled=False)


# ---- forty-first round: one-number masks, seeds from labels, modes changed by the call, errors caught -------
def test_a_gradient_penalty_through_a_sign_of_one_number_is_refused():
    w = Value(np.array(0.7))

    def penalty(x):
        xv = Value(x)
        (g,) = ag.grad(ag.abs(xv * w), xv, create_graph=True)  # (np.sign of a 0-d value: a float, not a mask)
        return (g * g).sum()

    with pytest.raises(CompileError, match="create_graph=True"):
        ag.compile(penalty)(np.array(1.5))


def test_a_seed_made_from_labels_is_made_again_at_every_call():
    w = Value(np.array([0.5, -1.0, 2.0]))

    def fn(x, y):
        out = (x * w).sum(keepdims=True)
        (g,) = ag.grad(out, w, grad_outputs=(y == 1), create_graph=True)  # (one element, from the labels)
        return (g * g).sum() + out.sum()

    calls = [(np.ones(3), np.array([k % 2])) for k in range(3)]
    assert _run(fn, [w], calls, compiled=True) == _run(fn, [w], calls, compiled=False)


def test_a_gradient_penalty_through_std_and_a_table_made_in_the_forward_gives_eager_bits():
    nn.manual_seed(0)
    critic = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 4))
    params = list(critic.parameters())

    def penalty(x):
        xv = Value(x)
        h = critic(xv)
        h = (h - h.mean(axis=-1, keepdims=True)) / (ag.std(h, axis=-1, keepdims=True) + 1e-5)
        weights = np.linspace(0.0, 1.0, 4)  # (a table of the forward's, from no data)
        (g,) = ag.grad((h * weights).sum(), xv, create_graph=True)
        return ((g * g).sum(axis=1) - 1.0).mean()

    calls = [(np.random.default_rng(k).standard_normal((3, 4)),) for k in range(3)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (the table is an array made outside the engine's operations)
        assert _run(penalty, params, calls, compiled=True) == _run(penalty, params, calls, compiled=False)


def test_a_call_that_switches_a_modules_mode_or_a_parameters_requires_grad_is_guarded_and_replayed():
    results = []
    for compiled in (False, True):
        nn.manual_seed(0)
        model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Dropout(0.5), nn.Linear(4, 2))
        model[0].requires_grad_(False)

        def train_step(x, model=model):
            model.train()  # (at its start: after a validation in eval mode, outside)
            loss = model(x).sum()
            model[0].requires_grad_(True)  # (the backbone joins after the first step)
            return loss

        step, out = ag.compile(train_step) if compiled else train_step, []
        for k in range(4):
            if k == 2:
                model.eval()  # (a validation pass between epochs)
            for p in model.parameters():
                p.grad = None
            nn.manual_seed(k)
            loss = step(np.random.default_rng(k).standard_normal((4, 3)))
            loss.backward()
            out.append((_bits(loss.data), [_bits(p.grad) for p in model.parameters() if p.grad is not None],
                        model.training, _bits(model[1].running_mean)))
        results.append(out)
    assert results[0] == results[1]


def test_an_error_of_a_check_or_a_numpy_keyword_caught_by_the_function_is_refused():
    model = nn.Linear(3, 1)

    def probabilities_or_logits(x, t):
        out = model(x)
        try:
            return F.binary_cross_entropy(out, t)  # (a check of the data: raises on logits)
        except ValueError:
            return F.binary_cross_entropy_with_logits(out, t)

    def duck_typed(x):
        try:
            return (model(x) * (x * x).sum(dtype=np.float64)).sum()
        except TypeError:
            return (model(x) * (x * x).sum()).sum()

    x = np.array([[3.0, -2.0, 1.0], [0.5, 0.5, 0.5]])
    with pytest.raises(CompileError, match="raised ValueError"):
        ag.compile(probabilities_or_logits)(x, np.array([[1.0], [0.0]]))
    with pytest.raises(CompileError, match="raised TypeError"):
        ag.compile(duck_typed)(x.astype(np.float32))


def test_a_call_that_switches_requires_grad_of_a_value_argument_is_refused():
    lin = nn.Linear(3, 2)

    def step(x):
        x.requires_grad = True  # (the caller's Value: eager's caller sees the change)
        return (lin(x) ** 2).sum()

    with pytest.raises(CompileError, match="requires_grad of a Value given as an argument"):
        ag.compile(step)(Value(np.ones((2, 3)), requires_grad=False))
