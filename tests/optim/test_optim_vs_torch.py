"""25-step trajectories of a small MLP match PyTorch's to 1e-8 in float64."""

import numpy as np
import pytest

import optim
from optim_models import make_data, make_weights, torch_loss, torch_params, value_loss, value_params

torch = pytest.importorskip("torch")

STEPS = 25

CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.02)),
    ("SGD", dict(lr=0.05, momentum=0.5, maximize=True)),
    ("Adagrad", dict()),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.01, initial_accumulator_value=0.1, eps=1e-8)),
    ("RMSprop", dict()),
    ("RMSprop", dict(lr=0.01, alpha=0.9, momentum=0.8)),
    ("RMSprop", dict(lr=0.005, alpha=0.95, centered=True, weight_decay=0.01)),
    ("RMSprop", dict(lr=0.005, centered=True, momentum=0.5, eps=1e-6)),
    ("Adadelta", dict()),
    ("Adadelta", dict(lr=0.5, rho=0.95, eps=1e-5, weight_decay=0.01)),
    ("Adam", dict()),
    ("Adam", dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6)),
    ("Adam", dict(lr=0.02, weight_decay=0.05)),
    ("Adam", dict(lr=0.02, amsgrad=True)),
    ("Adam", dict(lr=0.02, amsgrad=True, weight_decay=0.1, maximize=True)),
    ("AdamW", dict()),
    ("AdamW", dict(lr=0.02, weight_decay=0.1)),
    ("AdamW", dict(lr=0.02, weight_decay=0.1, amsgrad=True, betas=(0.5, 0.9))),
]


def _run_both(name, options, kind):
    X, y = make_data()
    weights = make_weights()
    ours = value_params(weights)
    theirs = torch_params(torch, weights)
    opt = getattr(optim, name)(ours, **options)
    topt = getattr(torch.optim, name)(theirs, **options)
    for step in range(STEPS):
        opt.zero_grad()
        loss = value_loss(ours, X, y, kind)
        loss.backward()
        opt.step()
        topt.zero_grad()
        tloss = torch_loss(torch, theirs, X, y, kind)
        tloss.backward()
        topt.step()
        assert abs(loss.item() - tloss.item()) < 1e-8, f"{name} {options}: loss differs at step {step}"
        for p, t in zip(ours, theirs):
            np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=0, atol=1e-8,
                                       err_msg=f"{name} {options}: {p.label} differs at step {step}")
    return ours, weights


@pytest.mark.parametrize("name,options", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_trajectory_matches_torch(name, options):
    ours, start = _run_both(name, options, "nll")
    moved = max(np.abs(np.asarray(p.data) - w).max() for p, w in zip(ours, start.values()))
    assert moved > 1e-3  # the comparison is not between two runs that stood still


@pytest.mark.parametrize("name", ["SGD", "Adam", "RMSprop"])
def test_trajectory_matches_torch_on_mse(name):
    _run_both(name, dict(lr=0.01, **({"momentum": 0.9} if name == "SGD" else {})), "mse")


def test_param_groups_with_their_own_lr_match_torch():
    X, y = make_data()
    weights = make_weights()
    ours, theirs = value_params(weights), torch_params(torch, weights)
    groups = lambda ps: [{"params": ps[:2], "lr": 0.05}, {"params": ps[2:], "momentum": 0.5}]
    opt = optim.SGD(groups(ours), lr=0.1, momentum=0.9)
    topt = torch.optim.SGD(groups(theirs), lr=0.1, momentum=0.9)
    for _ in range(10):
        opt.zero_grad(); value_loss(ours, X, y).backward(); opt.step()
        topt.zero_grad(); torch_loss(torch, theirs, X, y).backward(); topt.step()
    for p, t in zip(ours, theirs):
        np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=0, atol=1e-10)


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_lbfgs_matches_torch(line_search_fn):
    X, y = make_data()
    weights = make_weights()
    ours, theirs = value_params(weights), torch_params(torch, weights)
    opt = optim.LBFGS(ours, lr=0.5 if line_search_fn is None else 1, max_iter=5, history_size=4, line_search_fn=line_search_fn)
    topt = torch.optim.LBFGS(theirs, lr=0.5 if line_search_fn is None else 1, max_iter=5, history_size=4, line_search_fn=line_search_fn)

    def closure():
        opt.zero_grad()
        loss = value_loss(ours, X, y)
        loss.backward()
        return loss

    def tclosure():
        topt.zero_grad()
        loss = torch_loss(torch, theirs, X, y)
        loss.backward()
        return loss

    losses = []
    for step in range(5):
        loss = opt.step(closure)
        tloss = topt.step(tclosure)
        losses.append(loss.item())
        assert abs(loss.item() - tloss.item()) < 1e-8
        for p, t in zip(ours, theirs):
            np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=0, atol=1e-8, err_msg=f"step {step}")
    assert opt.state[ours[0]]["func_evals"] == topt.state[theirs[0]]["func_evals"]
    assert losses[-1] < 0.8 * losses[0]
