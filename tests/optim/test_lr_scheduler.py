"""Learning-rate schedules: worked sequences, and PyTorch's sequences when it is installed."""


import numpy as np
import pytest

import optim
from autograd_core import Value
from optim import lr_scheduler


def two_group_sgd(lr=(0.1, 0.02)):
    return optim.SGD([{"params": [Value(np.zeros(2))], "lr": lr[0]}, {"params": [Value(0.0)], "lr": lr[1]}], lr=1.0)


def sequence(scheduler, optimizer, epochs, metrics=None):
    """get_last_lr() before each epoch's training, stepping as PyTorch asks (optimizer first)."""
    lrs = []
    for epoch in range(epochs):
        lrs.append(scheduler.get_last_lr())
        optimizer.step()
        if metrics is None:
            scheduler.step()
        else:
            scheduler.step(metrics[epoch])
    return np.array(lrs)


def test_step_lr_halves_every_three_epochs():
    opt = two_group_sgd()
    lrs = sequence(lr_scheduler.StepLR(opt, step_size=3, gamma=0.5), opt, 9)
    np.testing.assert_allclose(lrs[:, 0], 0.1 * 0.5 ** (np.arange(9) // 3))


def test_exponential_and_cosine_follow_their_closed_forms():
    opt = two_group_sgd()
    lrs = sequence(lr_scheduler.ExponentialLR(opt, gamma=0.9), opt, 10)
    np.testing.assert_allclose(lrs[:, 1], 0.02 * 0.9 ** np.arange(10), rtol=1e-13)
    opt = two_group_sgd()
    lrs = sequence(lr_scheduler.CosineAnnealingLR(opt, T_max=8, eta_min=0.001), opt, 20)
    t = np.arange(20)
    np.testing.assert_allclose(lrs[:, 0], 0.001 + (0.1 - 0.001) * (1 + np.cos(np.pi * t / 8)) / 2, rtol=1e-12)


def test_linear_warmup_then_constant():
    opt = two_group_sgd()
    lrs = sequence(lr_scheduler.LinearLR(opt, start_factor=0.2, total_iters=4), opt, 7)
    np.testing.assert_allclose(lrs[:, 0], 0.1 * np.array([0.2, 0.4, 0.6, 0.8, 1.0, 1.0, 1.0]), rtol=1e-12)


def test_reduce_on_plateau_waits_for_patience_then_cools_down():
    opt = two_group_sgd()
    schedule = lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=2, cooldown=1, min_lr=0.03)
    losses = [1.0, 0.9, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95]
    seen = []
    for loss in losses:
        schedule.step(loss)
        seen.append(schedule.get_last_lr()[0])
    # bad epochs: 3rd, 4th, 5th -> the 5th is the third > patience: cut; 6th is cooldown;
    # 7th, 8th, 9th bad again -> cut at the 9th, but not below min_lr
    np.testing.assert_allclose(seen, [0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.03, 0.03])


def test_scheduler_needs_an_optimizer_and_valid_arguments():
    with pytest.raises(TypeError, match="Optimizer"):
        lr_scheduler.StepLR(object(), step_size=2)
    opt = two_group_sgd()
    with pytest.raises(ValueError, match="step_size"):
        lr_scheduler.StepLR(opt, step_size=0)
    with pytest.raises(ValueError, match="factor"):
        lr_scheduler.ReduceLROnPlateau(opt, factor=1.5)
    with pytest.raises(ValueError, match="mode"):
        lr_scheduler.ReduceLROnPlateau(opt, mode="lowest")
    with pytest.raises(ValueError, match="ExponentialLR: gamma .* must be > 0, got -0.5"):
        lr_scheduler.ExponentialLR(opt, gamma=-0.5)  # would make the lr negative every other epoch
    plateau = lr_scheduler.ReduceLROnPlateau(opt)
    with pytest.raises(TypeError, match="ReduceLROnPlateau.step: metric must be .* got NoneType"):
        plateau.step(None)
    plateau.step(Value(0.5))  # a loss Value is a number
    assert plateau.best == 0.5


def test_scheduler_state_dict_resumes():
    opt = two_group_sgd()
    schedule = lr_scheduler.CosineAnnealingLR(opt, T_max=10)
    sequence(schedule, opt, 4)
    saved_sched, saved_opt = schedule.state_dict(), opt.state_dict()
    rest = sequence(schedule, opt, 5)
    opt2 = two_group_sgd()
    opt2.load_state_dict(saved_opt)
    schedule2 = lr_scheduler.CosineAnnealingLR(opt2, T_max=10)
    schedule2.load_state_dict(saved_sched)
    np.testing.assert_allclose(sequence(schedule2, opt2, 5), rest, rtol=1e-15)


# ---- PyTorch as the oracle ------------------------------------------------
CASES = [
    ("StepLR", dict(step_size=3, gamma=0.5)),
    ("StepLR", dict(step_size=1)),
    ("MultiStepLR", dict(milestones=[2, 5, 5, 9], gamma=0.3)),
    ("ExponentialLR", dict(gamma=0.93)),
    ("CosineAnnealingLR", dict(T_max=7)),
    ("CosineAnnealingLR", dict(T_max=5, eta_min=0.004)),
    ("LinearLR", dict()),
    ("LinearLR", dict(start_factor=0.1, end_factor=0.6, total_iters=8)),
]


def torch_two_group_sgd(torch):
    return torch.optim.SGD([{"params": [torch.zeros(2, requires_grad=True)], "lr": 0.1},
                            {"params": [torch.zeros((), requires_grad=True)], "lr": 0.02}], lr=1.0)


@pytest.mark.parametrize("name,options", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_sequence_matches_torch(name, options):
    torch = pytest.importorskip("torch")
    opt, topt = two_group_sgd(), torch_two_group_sgd(torch)
    ours = sequence(getattr(lr_scheduler, name)(opt, **options), opt, 30)
    theirs = sequence(getattr(torch.optim.lr_scheduler, name)(topt, **options), topt, 30)
    np.testing.assert_allclose(ours, theirs, rtol=1e-13, atol=0)
    assert len(np.unique(ours[:, 0])) > 1


def test_chained_warmup_and_cosine_match_torch():
    torch = pytest.importorskip("torch")
    opt, topt = two_group_sgd(), torch_two_group_sgd(torch)
    ours = [lr_scheduler.LinearLR(opt, start_factor=0.25, total_iters=4), lr_scheduler.CosineAnnealingLR(opt, T_max=12)]
    theirs = [torch.optim.lr_scheduler.LinearLR(topt, start_factor=0.25, total_iters=4),
              torch.optim.lr_scheduler.CosineAnnealingLR(topt, T_max=12)]
    for epoch in range(20):
        np.testing.assert_allclose([g["lr"] for g in opt.param_groups], [g["lr"] for g in topt.param_groups], rtol=1e-13)
        opt.step(); topt.step()
        for s in ours:
            s.step()
        for s in theirs:
            s.step()


PLATEAU_CASES = [
    dict(),
    dict(mode="min", factor=0.5, patience=2, threshold=0.05, threshold_mode="rel", cooldown=2, min_lr=0.01),
    dict(mode="min", factor=0.2, patience=1, threshold=0.02, threshold_mode="abs", min_lr=[0.005, 0.0]),
    dict(mode="max", factor=0.5, patience=0, threshold=0.01, threshold_mode="rel", cooldown=1),
    dict(mode="max", factor=0.7, patience=3, threshold=0.1, threshold_mode="abs", eps=1e-3),
]


@pytest.mark.parametrize("options", PLATEAU_CASES)
def test_reduce_on_plateau_matches_torch(options):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    # a metric that improves, then plateaus with noise
    metrics = np.concatenate([np.linspace(1.0, 0.5, 8), 0.5 + 0.02 * rng.standard_normal(40)])
    if options.get("mode") == "max":
        metrics = 1 - metrics
    opt, topt = two_group_sgd(), torch_two_group_sgd(torch)
    ours = sequence(lr_scheduler.ReduceLROnPlateau(opt, **options), opt, len(metrics), metrics)
    theirs = sequence(torch.optim.lr_scheduler.ReduceLROnPlateau(topt, **options), topt, len(metrics), metrics)
    np.testing.assert_allclose(ours, theirs, rtol=1e-15)
    assert ours[-1, 0] < ours[0, 0]  # it did cut the learning rate
