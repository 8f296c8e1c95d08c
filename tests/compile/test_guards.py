"""Guards of a compiled trace (autograd_core/compile/guards.py): what the walk reaches,
and that each change to what a trace read outside its arguments is named by
the path it was read through, while nothing else fails a guard."""

import doctest
import functools
import sys
import types

import numpy as np
import pytest

import nn
import nn.functional as F
from autograd_core import Value
from autograd_core.compile import guards as _guards_module
from autograd_core.compile.sources import SMALL_ARRAY
from autograd_core.compile import sources as _sources
from autograd_core.compile import library as _library
from autograd_core.compile.guards import Guards, Sources

X = np.linspace(-1.0, 1.0, 20).reshape(5, 4)
Y = np.array([0, 1, 2, 0, 1])


def build(fn, args, used):
    """Walk and build as the runtime does, and check that nothing failed yet."""
    guards = Guards.build(Sources.walk(fn, args), used)
    assert guards.check(fn, args) is None, guards.check(fn, args)
    return guards


def mlp():
    nn.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 3))


def mlp_step():
    model = mlp()
    fn = lambda x, y: F.cross_entropy(model(x), y)  # noqa: E731 (as users compile it)
    return model, fn, build(fn, (X, Y), list(model.parameters()))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(x)


class Trainer:
    def __init__(self, model):
        self.model = model
        self.steps = 0  # counted by the training loop; the loss never reads it
        self.scale = 1.0

    def loss(self, x):
        return self.model(x).sum() * self.scale


# ---- the walk ----------------------------------------------------------------------
def test_an_mlp_is_walked_with_pytorch_names_and_guarded_cheaply():
    model, fn, guards = mlp_step()
    sources = guards.sources
    assert [path for path, _ in sources.modules] == ["model", "model.0", "model.1", "model.2"]
    assert sources.path_of(model[2].bias) == "model.2.bias"
    assert sources.path_of(np.ones(3)) is None
    lines = guards.describe()
    assert len(lines) == len(guards) == 19  # (each library class's attribute count and Module.__call__: patched later)
    assert "model.0.weight is <Parameter (16, 4) float64>, requires_grad=True" in lines
    assert "model is <Sequential>, training=True, 3 submodules" in lines
    # what the code names in a library's module, and the forward of each library class it calls
    assert "F.cross_entropy is <function cross_entropy>" in lines and "Linear.forward is <function Linear.forward>" in lines
    # one generated function, no timing asserted: it only has to keep answering None
    assert guards.source.count("def ") == 1
    for _ in range(1000):
        assert guards.check(fn, (X, Y)) is None


def test_a_bound_method_reaches_its_object_as_self():
    trainer = Trainer(Net())
    sources = Sources.walk(trainer.loss, (X,))
    assert sources.path_of(trainer.model.fc.weight) == "self.model.fc.weight"
    assert [path for path, _ in sources.modules] == ["self.model", "self.model.fc"]


def test_modules_passed_as_arguments_are_walked_arrays_are_not():
    model = mlp()
    fn = lambda x, m: m(x).sum()  # noqa: E731
    guards = build(fn, (X, model), list(model.parameters()))
    assert guards.sources.path_of(model[0].weight) == "arg1.0.weight"
    assert guards.sources.path_of(X) is None
    model[0].weight.requires_grad = False
    assert guards.check(fn, (X, model)) == "arg1.0.weight.requires_grad changed (True -> False)"


def test_a_cycle_terminates():
    class Node:
        pass

    w = Value(np.ones(4))
    obj = Node()
    obj.self_ref = obj
    obj.w = w
    obj.items = [obj, {"again": obj}]
    model = mlp()
    object.__setattr__(model[0], "owner", model)  # a child pointing back at its parent, not registered
    fn = lambda x: (x @ obj.w).sum() + model(x).sum()  # noqa: E731
    guards = build(fn, (X,), [w, *model.parameters()])
    assert guards.sources.path_of(w) == "obj.w"
    assert "model.0.owner is <Sequential>, as model" in guards.describe()


def test_the_walk_is_bounded():
    many = [[k] for k in range(30_000)]
    w = Value(np.ones(4))
    fn = lambda x: (x @ w).sum() + len(many)  # noqa: E731
    sources = Sources.walk(fn, (X,))
    assert sources.truncated
    assert len(sources._nodes) <= _sources.WALK_LIMIT


# ---- parameters ------------------------------------------------------------------------
def test_freezing_a_parameter_fails_its_guard():
    model, fn, guards = mlp_step()
    model[0].weight.requires_grad = False
    assert guards.check(fn, (X, Y)) == "model.0.weight.requires_grad changed (True -> False)"


@pytest.mark.parametrize("frozen_is_used", [True, False])
def test_unfreezing_a_parameter_fails_its_guard(frozen_is_used):
    model = mlp()
    model[0].requires_grad_(False)
    fn = lambda x, y: F.cross_entropy(model(x), y)  # noqa: E731
    used = list(model.parameters()) if frozen_is_used else [p for p in model.parameters() if p.requires_grad]
    guards = build(fn, (X, Y), used)
    model[0].bias.requires_grad = True
    assert guards.check(fn, (X, Y)) == "model.0.bias.requires_grad changed (False -> True)"


def test_updates_of_a_parameters_data_keep_the_guards():
    model, fn, guards = mlp_step()
    weight = model[0].weight
    weight.data -= 0.1  # an optimizer's step, in place
    weight.data = weight.data * 0.5  # or by assignment, same shape and dtype
    model.load_state_dict(model.state_dict())  # copies into the same Parameters
    assert guards.check(fn, (X, Y)) is None


def test_data_of_another_dtype_or_shape_fails():
    model, fn, guards = mlp_step()
    model[0].weight.data = model[0].weight.data.astype(np.float32)
    assert guards.check(fn, (X, Y)) == "model.0.weight's dtype changed (float64 -> float32)"
    model, fn, guards = mlp_step()
    model[2].weight.data = np.zeros((3, 17))
    assert guards.check(fn, (X, Y)) == "model.2.weight's shape changed ((3, 16) -> (3, 17))"


def test_a_replaced_parameter_fails():
    model, fn, guards = mlp_step()
    model[2].bias = nn.Parameter(np.zeros(3))
    assert guards.check(fn, (X, Y)) == "model.2.bias was replaced"


def test_a_used_value_out_of_reach_is_listed_as_unreached():
    w = Value(np.ones(4))
    hidden = Value(np.ones(4))
    fn = lambda x: (x @ w).sum()  # noqa: E731
    guards = build(fn, (X,), [w, hidden, w])
    assert len(guards.unreached) == 1 and guards.unreached[0] is hidden


# ---- modules -------------------------------------------------------------------------------
def test_replacing_a_layer_names_the_layer_and_the_parameter():
    trainer = Trainer(Net())
    guards = build(trainer.loss, (X,), list(trainer.model.parameters()))
    trainer.model.fc = nn.Linear(4, 3)
    assert guards.check(trainer.loss, (X,)) == "self.model.fc was replaced (self.model.fc.weight is another object)"


def test_eval_through_a_plain_objects_attribute():
    trainer = Trainer(mlp())
    guards = build(trainer.loss, (X,), list(trainer.model.parameters()))
    trainer.steps += 1  # not read by the loss: no guard
    assert guards.check(trainer.loss, (X,)) is None
    trainer.model[1].eval()
    assert guards.check(trainer.loss, (X,)) == "self.model.1.training changed (True -> False)"
    trainer.model.eval()
    assert guards.check(trainer.loss, (X,)) == "self.model.training changed (True -> False)"
    trainer.model.train()
    assert guards.check(trainer.loss, (X,)) is None


def test_a_fresh_bound_method_of_the_same_object_passes():
    trainer = Trainer(mlp())
    guards = build(trainer.loss, (X,), list(trainer.model.parameters()))
    assert guards.check(trainer.loss, (X,)) is None  # `trainer.loss` makes a new bound method each time
    trainer.scale = 2.0
    assert guards.check(trainer.loss, (X,)) == "self.scale changed (1.0 -> 2.0)"


def test_eval_through_a_default_argument():
    model = mlp()

    def f(x, model=model):
        return model(x).sum()

    guards = build(f, (X,), list(model.parameters()))
    assert guards.sources.path_of(model) == "model"
    model.eval()
    assert guards.check(f, (X,)) == "model.training changed (True -> False)"


def test_a_module_compiled_directly_is_self():
    model = mlp()
    guards = build(model, (X,), list(model.parameters()))
    model[0].weight.requires_grad = False
    assert guards.check(model, (X,)) == "self.0.weight.requires_grad changed (True -> False)"
    model[0].weight.requires_grad = True
    model.eval()
    assert guards.check(model, (X,)) == "self.training changed (True -> False)"
    assert guards.check(mlp(), (X,)) == "self was replaced"


def test_appending_a_layer_fails():
    model, fn, guards = mlp_step()
    model.append(nn.Tanh())
    assert guards.check(fn, (X, Y)) == "model's submodules changed (['0', '1', '2'] -> ['0', '1', '2', '3'])"


def test_dropout_p():
    nn.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.Dropout(0.5))
    fn = lambda x: model(x).sum()  # noqa: E731
    guards = build(fn, (X,), list(model.parameters()))
    assert "model.1.p == 0.5 (float)" in guards.describe()
    model[1].p = 0.2
    assert guards.check(fn, (X,)) == "model.1.p changed (0.5 -> 0.2)"


def test_numbers_a_module_does_not_read_are_not_guarded():
    model, fn, guards = mlp_step()
    model[0].in_features = 5  # not read by Linear.forward
    assert guards.check(fn, (X, Y)) is None


def test_a_user_modules_forward_reads_its_numbers_and_globals():
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 3)
            self.alpha = 2.0
            self.unread = 1

        def forward(self, x):
            return self.fc(x) * self.alpha * SCALE

    model = Scaled()
    fn = lambda x: model(x).sum()  # noqa: E731
    guards = build(fn, (X,), list(model.parameters()))
    model.unread = 2
    assert guards.check(fn, (X,)) is None
    model.alpha = 3.0
    assert guards.check(fn, (X,)) == "model.alpha changed (2.0 -> 3.0)"


# ---- buffers ---------------------------------------------------------------------------
def batchnorm_step():
    nn.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    bn = model[1]
    fn = lambda x: model(x).sum()  # noqa: E731
    used = [*model.parameters(), bn.running_mean, bn.running_var]
    return model, bn, fn, build(fn, (X,), used)


def test_buffers_written_in_place_keep_the_guards():
    model, bn, fn, guards = batchnorm_step()
    bn.running_mean[...] = 1.0
    bn.running_var *= 2.0
    model(X)  # a training step updates the statistics in place
    assert guards.check(fn, (X,)) is None


def test_load_state_dict_replaces_the_buffers_and_fails():
    model, bn, fn, guards = batchnorm_step()
    before = bn.running_mean
    model.load_state_dict(model.state_dict())
    assert bn.running_mean is not before  # load_state_dict puts new arrays in the buffers
    assert guards.check(fn, (X,)) == "model.1.running_mean was replaced"


def test_batchnorm_eps_and_eval():
    model, bn, fn, guards = batchnorm_step()
    bn.eps = 1e-3
    assert guards.check(fn, (X,)) == "model.1.eps changed (1e-05 -> 0.001)"
    model, bn, fn, guards = batchnorm_step()
    bn.eval()
    assert guards.check(fn, (X,)) == "model.1.training changed (True -> False)"


def test_a_constant_array_in_a_closure():
    mask = np.ones(4)
    fn = lambda x: (x * mask).sum()  # noqa: E731
    guards = build(fn, (X,), [mask])
    mask[0] = 0.0  # the program reads it afresh, but the code might also have read its numbers (mask.sum())
    assert "mask" in guards.check(fn, (X,))
    mask = np.zeros(4)
    assert guards.check(fn, (X,)) == "mask was replaced"


def test_a_large_array_the_program_reads_is_guarded_by_identity():
    table = np.ones(SMALL_ARRAY + 1)
    fn = lambda x: (x.sum() * table).sum()  # noqa: E731
    guards = build(fn, (X,), [table])
    table[0] = 0.0  # read afresh by the program at every call
    assert guards.check(fn, (X,)) is None


# ---- numbers -------------------------------------------------------------------------------
def closure_step(beta):
    w = Value(np.ones(4))

    def fn(x):
        return (x @ w).sum() * beta

    def set_beta(value):
        nonlocal beta
        beta = value

    return fn, w, set_beta


def test_a_closure_number():
    fn, w, set_beta = closure_step(0.5)
    guards = build(fn, (X,), [w])
    set_beta(0.5)
    assert guards.check(fn, (X,)) is None
    set_beta(0.7)
    assert guards.check(fn, (X,)) == "beta changed (0.5 -> 0.7)"


@pytest.mark.parametrize("old, new, phrase", [
    (True, 1, "beta changed (True -> 1)"),
    (1, 1.0, "beta changed (1 -> 1.0)"),
    (0.0, -0.0, "beta changed (0.0 -> -0.0)"),
    (0.5, np.float64(0.5), "beta changed (0.5 -> np.float64(0.5))"),
    ((2, 3), (2, 4), "beta changed ((2, 3) -> (2, 4))"),
    (None, 0, "beta changed (None -> 0)"),
    ("mean", "sum", "beta changed ('mean' -> 'sum')"),
])
def test_numbers_are_compared_with_their_type(old, new, phrase):
    fn, w, set_beta = closure_step(old)
    guards = build(fn, (X,), [w])
    set_beta(new)
    assert guards.check(fn, (X,)) == phrase


def test_nan_equals_nan():
    fn, w, set_beta = closure_step(float("nan"))
    guards = build(fn, (X,), [w])
    set_beta(float("nan"))  # another NaN object
    assert guards.check(fn, (X,)) is None


SCALE = 2.0
W = Value(np.ones(4))
cfg = types.ModuleType("cfg")
cfg.beta = 0.5
cfg.unread = 1.0


def global_loss(x):
    return (x @ W).sum() * SCALE


def cfg_loss(x):
    return (x @ W).sum() * cfg.beta


def helper(x):
    return x * SCALE


def helper_loss(x):
    return helper(x @ W).sum()


def test_a_global_number(monkeypatch):
    guards = build(global_loss, (X,), [W])
    monkeypatch.setattr(sys.modules[__name__], "SCALE", 3.0)
    assert guards.check(global_loss, (X,)) == "SCALE changed (2.0 -> 3.0)"


def test_a_python_modules_attribute(monkeypatch):
    guards = build(cfg_loss, (X,), [W])
    monkeypatch.setattr(cfg, "unread", 2.0)  # not named by the code: no guard
    assert guards.check(cfg_loss, (X,)) is None
    monkeypatch.setattr(cfg, "beta", 0.7)
    assert guards.check(cfg_loss, (X,)) == "cfg.beta changed (0.5 -> 0.7)"


def test_a_helper_function_and_its_globals(monkeypatch):
    guards = build(helper_loss, (X,), [W])
    assert "SCALE == 2.0 (float)" in guards.describe()
    monkeypatch.setattr(sys.modules[__name__], "SCALE", 3.0)
    assert guards.check(helper_loss, (X,)) == "SCALE changed (2.0 -> 3.0)"
    monkeypatch.undo()
    monkeypatch.setattr(sys.modules[__name__], "helper", lambda x: x)
    assert guards.check(helper_loss, (X,)) == "helper was replaced"


def test_partial_and_decorated_functions():
    w = Value(np.ones(4))
    beta = 0.5

    def loss(x, scale, shift=0.0):
        return (x @ w).sum() * scale * beta + shift

    step = functools.partial(loss, scale=2.0)
    guards = build(step, (X,), [w])
    step.keywords["scale"] = 3.0
    assert guards.check(step, (X,)) == "partial.keywords['scale'] changed (2.0 -> 3.0)"

    def decorate(func):
        @functools.wraps(func)
        def wrapper(*args):
            return func(*args)
        return wrapper

    decorated = decorate(loss)
    guards = build(decorated, (X, 1.0), [w])
    assert guards.sources.path_of(w) == "w"
    loss.__defaults__ = (1.0,)
    assert guards.check(decorated, (X, 1.0)) == "shift changed (0.0 -> 1.0)"
    assert guards.check(loss, (X, 1.0)) == "the compiled function is another object than the one traced"


# ---- containers, hostile names, unreadable paths ------------------------------------------------
def test_a_dict_of_values_and_the_numbers_read_from_it():
    w = Value(np.ones(4))
    params = {"w": w, "scale": 2.0, "history": [1.0]}
    fn = lambda x: (x @ params["w"]).sum() * params["scale"]  # noqa: E731
    guards = build(fn, (X,), [w])
    params["history"].append(2.0)  # under a key the code never names (and it iterates over no dict): no guard
    assert guards.check(fn, (X,)) is None
    params["scale"] = 2.5
    assert guards.check(fn, (X,)) == "params['scale'] changed (2.0 -> 2.5)"
    params["scale"] = 2.0
    params["w2"] = Value(np.ones(4))
    assert guards.check(fn, (X,)) == "params's keys changed (['w', 'scale', 'history'] -> ['w', 'scale', 'history', 'w2'])"


def test_hostile_names_are_constants_never_source():
    class Box:
        pass

    w = Value(np.ones(4))
    v = Value(np.ones(4))
    box = Box()
    box.__dict__["a b"] = w
    box.__dict__["c) or __import__('os').system('true') #"] = 0.5
    table = {"x'); import os #": 0.25, 'y"\n': v}
    nasty = "x'] or __import__('os') #"
    model = nn.Sequential()
    model.add_module(nasty, nn.Linear(4, 3))

    def fn(x):
        scale = getattr(box, "c) or __import__('os').system('true') #") * table["x'); import os #"]
        return ((x @ box.__dict__["a b"]) * scale).sum() + (x @ table['y"\n']).sum() + model(x).sum()

    guards = build(fn, (X,), [w, v, *model.parameters()])
    for text in ("a b", "import", "__import__", 'y"'):
        assert text not in guards.source
    assert guards.sources.path_of(w) == "box.__dict__['a b']"
    assert guards.sources.path_of(model[0].weight) == f"model[{nasty!r}].weight"

    table["x'); import os #"] = 0.5
    assert guards.check(fn, (X,)) == "table[\"x'); import os #\"] changed (0.25 -> 0.5)"
    table["x'); import os #"] = 0.25
    box.__dict__["c) or __import__('os').system('true') #"] = 0.75
    assert guards.check(fn, (X,)).endswith("changed (0.5 -> 0.75)")
    box.__dict__["c) or __import__('os').system('true') #"] = 0.5
    box.__dict__["a b"] = Value(np.ones(4))
    assert guards.check(fn, (X,)) == "box.__dict__['a b'] was replaced"
    box.__dict__["a b"] = w
    model[0].weight.requires_grad = False
    assert guards.check(fn, (X,)) == f"model[{nasty!r}].weight.requires_grad changed (True -> False)"


def test_a_path_that_cannot_be_read_is_a_failed_guard():
    trainer = Trainer(mlp())
    guards = build(trainer.loss, (X,), list(trainer.model.parameters()))
    del trainer.model
    assert guards.check(trainer.loss, (X,)) == "self.model can no longer be read (KeyError: 'model')"
    trainer.model = 42  # not a module any more: not even a __dict__
    assert guards.check(trainer.loss, (X,)) == "self.model was replaced (self.model.0.weight is gone)"

    w = Value(np.ones(4))
    holder = types.SimpleNamespace(params=[w])
    fn = lambda x: (x @ holder.params[0]).sum()  # noqa: E731
    guards = build(fn, (X,), [w])
    holder.params = "no list"
    assert guards.check(fn, (X,)) == "len(holder.params) changed (1 -> 7)"
    holder.params = []
    assert guards.check(fn, (X,)) == "len(holder.params) changed (1 -> 0)"


def test_a_defaultdict_is_read_without_inserting():
    from collections import defaultdict

    w = Value(np.ones(4))
    table = defaultdict(float, {"beta": 0.5})
    fn = lambda x: (x @ w).sum() * table["beta"]  # noqa: E731
    guards = build(fn, (X,), [w])
    del table["beta"]
    assert guards.check(fn, (X,)) == "table['beta'] can no longer be read (KeyError: 'beta')"
    assert "beta" not in table


def test_library_objects_are_walked_by_the_names_the_code_reads():
    import optim

    model = mlp()
    trainer = Trainer(model)
    trainer.optimizer = optim.SGD(model.parameters(), lr=0.1)
    guards = build(trainer.loss, (X,), list(model.parameters()))
    assert not any(line.startswith("self.optimizer") for line in guards.describe())  # never named: not walked
    trainer.optimizer.param_groups[0]["lr"] = 0.01
    assert guards.check(trainer.loss, (X,)) is None

    opt = optim.SGD(model.parameters(), lr=0.1)
    fn = lambda x: model(x).sum() * opt.param_groups[0]["lr"]  # noqa: E731  (an lr-scaled penalty)
    guards = build(fn, (X,), list(model.parameters()))
    opt.param_groups[0]["lr"] = 0.01
    assert guards.check(fn, (X,)) == "opt.param_groups[0]['lr'] changed (0.1 -> 0.01)"


def test_docstring_examples_run():
    result = doctest.testmod(_guards_module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


# ---- more shapes of models ---------------------------------------------------------------------
def test_a_missing_bias_is_guarded_as_none():
    nn.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3, bias=False))
    fn = lambda x: model(x).sum()  # noqa: E731
    guards = build(fn, (X,), list(model.parameters()))
    assert "model.0.bias == None (NoneType)" in guards.describe()
    model[0].bias = nn.Parameter(np.zeros(3))
    assert guards.check(fn, (X,)) == "model.0.bias changed (None -> <Parameter (3,) float64>)"


def test_a_layer_shared_at_two_places():
    nn.manual_seed(0)
    layer = nn.Linear(4, 4)
    model = nn.Sequential(layer, nn.Tanh(), layer)
    fn = lambda x: model(x).sum()  # noqa: E731
    guards = build(fn, (X,), list(model.parameters()))
    assert "model.2 is <Linear>, as model.0" in guards.describe()
    model._modules["2"] = nn.Linear(4, 4)
    assert guards.check(fn, (X,)) == "model.2 was replaced"


def test_a_modules_path_is_preferred_and_requires_grad_is_guarded_wherever_first_seen():
    class Holder:
        pass

    model = mlp()
    holder = Holder()
    holder.params = list(model.parameters())  # found before the model, walked after it
    holder.first = model[0].weight  # a Value found directly, before the model is walked
    holder.model = model
    fn = lambda x: holder.model(x).sum()  # noqa: E731
    guards = build(fn, (X,), [])
    assert guards.sources.path_of(model[2].weight) == "holder.model.2.weight"
    assert guards.sources.path_of(model[0].weight) == "holder.first"
    model[0].weight.requires_grad = False
    assert guards.check(fn, (X,)) == "holder.first.requires_grad changed (True -> False)"
    model[0].weight.requires_grad = True
    holder.params.append(Value(np.ones(3)))  # a list of Values nobody used: no guard
    assert guards.check(fn, (X,)) is None


def test_a_module_list_looped_over_by_the_users_forward():
    class Stack(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([nn.Linear(4, 4), nn.Linear(4, 4)])

        def forward(self, x):
            for layer in self.layers:
                x = layer(x).tanh()
            return x

    model = Stack()
    fn = lambda x: model(x).sum()  # noqa: E731
    guards = build(fn, (X,), list(model.parameters()))
    assert guards.sources.path_of(model.layers[1].bias) == "model.layers.1.bias"
    model.layers.append(nn.Linear(4, 4))
    assert guards.check(fn, (X,)) == "model.layers's submodules changed (['0', '1'] -> ['0', '1', '2'])"


def test_a_long_list_of_numbers_is_not_walked_whole():
    history = [0.5] * 1_000_000  # a training loop's losses: never guarded, only looked at
    w = Value(np.ones(4))
    fn = lambda x: (x @ w).sum() + len(history)  # noqa: E731
    sources = Sources.walk(fn, (X,))
    assert sources.truncated and sources._looked <= _sources.LOOK_LIMIT + 1
    assert sources.path_of(w) == "w"


def test_library_and_user_code_are_told_apart():
    import collections
    import optim

    assert _library._is_library_module(np) and _library._is_library_module(collections)
    assert _library._is_library_module(F) and _library._is_library_module(optim)
    assert not _library._is_library_module(cfg)  # types.ModuleType("cfg"): the user's
    assert not _library._is_library_module(sys.modules[__name__])
    assert _library._is_library_class(nn.Linear) and _library._is_library_class(optim.SGD)
    assert not _library._is_library_class(Trainer)
    assert _library._is_library_function(F.cross_entropy) and _library._is_library_function(np.linalg.norm)
    assert not _library._is_library_function(helper)
    user_code = types.ModuleType("code")  # a user's module named like a standard one, with its own file
    user_code.__file__ = __file__
    assert not _library._is_library_module(user_code)
