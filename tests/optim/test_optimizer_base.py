"""The Optimizer base: groups, zero_grad, skipping, in-place updates, errors, save and resume."""

import copy
import doctest
import pickle

import numpy as np
import pytest

import autograd_core.functional
import optim
import optim.adadelta
import optim.adagrad
import optim.adam
import optim.early_stopping
import optim.lbfgs
import optim.lr_scheduler
import optim.newton
import optim.optimizer
import optim.rmsprop
import optim.sgd
from autograd_core import SavedDataModifiedError, Value

ALL = [
    (optim.SGD, dict(lr=0.1, momentum=0.9)),
    (optim.Adagrad, dict(lr=0.1)),
    (optim.RMSprop, dict(lr=0.01, centered=True, momentum=0.5)),
    (optim.Adadelta, dict()),
    (optim.Adam, dict(lr=0.01, amsgrad=True)),
    (optim.AdamW, dict(lr=0.01)),
]


def quadratic_loss(w, b):
    return ((w - Value(np.array([1.0, 2.0, 3.0]), requires_grad=False)) ** 2).sum() + (b + 1.0) ** 2


def train(opt, w, b, steps):
    for _ in range(steps):
        opt.zero_grad()
        quadratic_loss(w, b).backward()
        opt.step()


@pytest.mark.parametrize("cls,options", ALL, ids=[c.__name__ for c, _ in ALL])
def test_stop_and_resume_gives_the_same_numbers(cls, options):
    w, b = Value(np.zeros(3)), Value(0.5)
    opt = cls([w, b], **options)
    train(opt, w, b, 10)
    straight = (w.data.copy(), float(b.data))

    w2, b2 = Value(np.zeros(3)), Value(0.5)
    first = cls([w2, b2], **options)
    train(first, w2, b2, 4)
    saved = pickle.loads(pickle.dumps({"w": w2.data.copy(), "b": b2.data, "opt": first.state_dict()}))
    train(first, w2, b2, 3)  # keeps going after the snapshot: must not leak into it

    w3, b3 = Value(saved["w"]), Value(saved["b"])
    resumed = cls([w3, b3], **{**options, "lr": 123.0})  # the saved lr replaces this one
    resumed.load_state_dict(saved["opt"])
    assert resumed.param_groups[0]["lr"] == options.get("lr", opt.defaults["lr"])
    train(resumed, w3, b3, 6)
    np.testing.assert_array_equal(w3.data, straight[0])
    assert float(b3.data) == straight[1]


@pytest.mark.parametrize("cls,options", ALL, ids=[c.__name__ for c, _ in ALL])
def test_update_is_in_place_and_bumps_the_version(cls, options):
    w, b = Value(np.zeros(3)), Value(0.5)
    array = w.data
    opt = cls([w, b], **options)
    y = (w * w).sum()  # a graph that saved w's data
    quadratic_loss(w, b).backward()
    opt.step()
    assert w.data is array  # same buffer, changed in place
    assert not np.all(array == 0)
    assert isinstance(b.data, np.floating) and float(b.data) != 0.5  # 0-d: a new scalar
    with pytest.raises(SavedDataModifiedError):
        y.backward()


@pytest.mark.parametrize("cls,options", ALL, ids=[c.__name__ for c, _ in ALL])
def test_float32_parameters_stay_float32(cls, options):
    w = Value(np.zeros(3, dtype=np.float32))
    opt = cls([w], **options)
    for _ in range(3):
        opt.zero_grad()
        ((w - 1) ** 2).sum().backward()
        opt.step()
    assert w.dtype == np.float32
    assert np.all(w.data > 0)
    assert all(v.dtype == np.float32 for v in opt.state[w].values() if isinstance(v, np.ndarray))


def test_step_skips_parameters_without_gradient():
    used, unused = Value(np.ones(2)), Value(np.ones(2))
    opt = optim.Adam([used, unused], lr=0.1)
    (used * 3).sum().backward()
    opt.step()
    np.testing.assert_array_equal(unused.data, [1.0, 1.0])
    assert unused not in opt.state
    np.testing.assert_allclose(used.data, [0.9, 0.9])


def test_zero_grad_sets_none_by_default_or_zeros_in_place():
    w = Value(np.ones(2))
    opt = optim.SGD([w], lr=0.1)
    (w * w).sum().backward()
    grad = w.grad
    opt.zero_grad(set_to_none=False)
    assert w.grad is grad and np.all(grad == 0)
    opt.zero_grad()
    assert w.grad is None


def test_gradients_accumulate_without_zero_grad():
    w = Value(np.array([1.0]))
    opt = optim.SGD([w], lr=0.1)
    (w * 2).sum().backward()
    (w * 2).sum().backward()  # grad is now 4
    opt.step()
    np.testing.assert_allclose(w.data, [0.6])


def test_param_groups_have_their_own_options():
    a, b = Value(np.ones(2)), Value(np.ones(2))
    opt = optim.SGD([{"params": [a]}, {"params": b, "lr": 0.5, "momentum": 0.9}], lr=0.1)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    assert opt.param_groups[0]["momentum"] == 0 and opt.param_groups[1]["momentum"] == 0.9
    (a.sum() + b.sum()).backward()
    opt.step()
    np.testing.assert_allclose(a.data, [0.9, 0.9])
    np.testing.assert_allclose(b.data, [0.5, 0.5])
    c = Value(np.ones(1))
    opt.add_param_group({"params": [c], "lr": 0.01})
    assert opt.param_groups[2]["momentum"] == 0


def test_changing_a_groups_lr_takes_effect():
    w = Value(np.array([1.0]))
    opt = optim.SGD([w], lr=0.1)
    opt.param_groups[0]["lr"] = 0.5
    w.sum().backward()
    opt.step()
    np.testing.assert_allclose(w.data, [0.5])


@pytest.mark.parametrize("bad,match", [
    ([], "empty parameter list"),
    ([np.ones(2)], "not a Value"),
    ([1.0], "not a Value"),
    (Value(1.0), "single Value"),
    ({Value(1.0)}, "not a set"),
    ([{"params": []}], "empty 'params'"),
    (3, "iterable of Values.*got int"),
])
def test_bad_params_are_refused_clearly(bad, match):
    with pytest.raises((TypeError, ValueError), match=match):
        optim.SGD(bad, lr=0.1)


def test_a_learning_rate_given_as_text_is_refused():
    with pytest.raises(TypeError, match=r"SGD: lr='0.1' in defaults must be a number, not a string"):
        optim.SGD([Value(1.0)], lr="0.1")


def test_a_model_instead_of_its_parameters_says_to_call_parameters():
    import nn

    for model in (nn.Linear(2, 1), nn.Sequential(nn.Linear(2, 1))):
        with pytest.raises(TypeError, match=rf"got the module {type(model).__name__} itself; pass model.parameters\(\)"):
            optim.SGD(model, lr=0.1)


def test_load_state_dict_refuses_what_is_not_an_optimizer_state():
    import nn

    opt = optim.SGD([Value(np.ones(2))], lr=0.1)
    with pytest.raises(ValueError, match=r"SGD.load_state_dict: expects the dict made by optimizer.state_dict\(\).*keys \['bias', 'weight'\]"):
        opt.load_state_dict(nn.Linear(2, 1).state_dict())  # a model's state dict, not the optimizer's
    with pytest.raises(ValueError, match="got list"):
        opt.load_state_dict([1, 2])


def test_non_leaf_and_duplicate_parameters_are_refused():
    w = Value(np.ones(2))
    with pytest.raises(ValueError, match="not a leaf"):
        optim.Adam([w * 2])
    with pytest.raises(ValueError, match="appears twice"):
        optim.Adam([w, w])
    with pytest.raises(ValueError, match="appears twice"):
        optim.Adam([{"params": [w]}, {"params": [w]}])


@pytest.mark.parametrize("cls", [optim.SGD, optim.Adagrad, optim.RMSprop, optim.Adadelta, optim.Adam, optim.AdamW, optim.LBFGS, optim.Newton])
def test_negative_learning_rate_is_refused(cls):
    with pytest.raises(ValueError, match="invalid learning rate"):
        cls([Value(np.ones(2))], lr=-0.1)
    with pytest.raises(ValueError, match="invalid learning rate"):
        cls([{"params": [Value(np.ones(2))], "lr": -1.0}], lr=0.1)


@pytest.mark.parametrize("make,match", [
    (lambda p: optim.SGD(p, lr=0.1, momentum=-0.5), "momentum"),
    (lambda p: optim.SGD(p, lr=0.1, nesterov=True), "nesterov"),
    (lambda p: optim.Adam(p, betas=(0.9, 1.0)), "betas"),
    (lambda p: optim.Adam(p, eps=-1.0), "eps"),
    (lambda p: optim.Adadelta(p, rho=1.5), "rho"),
    (lambda p: optim.RMSprop(p, alpha=-0.1), "alpha"),
])
def test_bad_hyperparameters_are_refused(make, match):
    with pytest.raises(ValueError, match=match):
        make([Value(np.ones(2))])


def test_load_state_dict_checks_the_layout():
    a, b = Value(np.ones(2)), Value(np.ones(3))
    opt = optim.Adam([a, b])
    (a.sum() + b.sum()).backward()
    opt.step()
    saved = opt.state_dict()
    with pytest.raises(ValueError, match="parameters"):
        optim.Adam([a]).load_state_dict(saved)
    with pytest.raises(ValueError, match="shape"):
        optim.Adam([b, a]).load_state_dict(saved)
    scalar = Value(1.0)
    opt = optim.SGD([scalar], lr=0.1, momentum=0.9)
    scalar.backward()
    opt.step()
    with pytest.raises(ValueError, match=r"shape \(\)"):
        optim.SGD([Value(np.ones(2))], lr=0.1, momentum=0.9).load_state_dict(opt.state_dict())


def test_state_dict_uses_pytorchs_layout():
    a, b = Value(np.ones(2)), Value(np.ones(3))
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1, momentum=0.9)
    (a.sum() + b.sum()).backward()
    opt.step()
    saved = opt.state_dict()
    assert [g["params"] for g in saved["param_groups"]] == [[0], [1]]
    assert saved["param_groups"][1]["lr"] == 0.5
    np.testing.assert_array_equal(saved["state"][1]["momentum_buffer"], np.ones(3))
    saved_copy = copy.deepcopy(saved)
    opt.step()
    np.testing.assert_array_equal(saved["state"][1]["momentum_buffer"], saved_copy["state"][1]["momentum_buffer"])


def test_sgd_on_scalar_values_like_micrograd():
    # the course's first example: minimise (w - 3)^2 from w = 0 with lr 0.1
    w = Value(0.0)
    opt = optim.SGD([w], lr=0.1)
    for _ in range(50):
        opt.zero_grad()
        ((w - 3) ** 2).backward()
        opt.step()
    # w_t = 3 - 3 * 0.8^t
    assert float(w.data) == pytest.approx(3 - 3 * 0.8**50, rel=1e-12)


MODULES = [optim, optim.optimizer, optim.sgd, optim.adagrad, optim.rmsprop, optim.adadelta, optim.adam,
           optim.lr_scheduler, optim.early_stopping, optim.newton, optim.lbfgs, autograd_core.functional]


@pytest.mark.parametrize("module", MODULES, ids=[m.__name__ for m in MODULES])
def test_docstring_examples_run(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_step_with_a_closure_returns_its_loss():
    w = Value(np.array([2.0]))
    opt = optim.SGD([w], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss.item() == 4.0
    np.testing.assert_allclose(w.data, [1.0])  # 2 - 0.25 * 4


def test_step_accepts_a_gradient_from_create_graph_backward():
    w = Value(np.array([1.0, 2.0]))
    (w**3).sum().backward(create_graph=True)  # .grad is a Value: 3 w^2
    optim.SGD([w], lr=0.1).step()
    np.testing.assert_allclose(w.data, [1.0 - 0.3, 2.0 - 1.2])
