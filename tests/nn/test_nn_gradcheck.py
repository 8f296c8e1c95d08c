"""Every layer, activation and loss against central differences (autograd_core.gradcheck)."""

import numpy as np
import pytest

import nn
from autograd_core import Value, gradcheck
from nn import functional as F


def away_from_zero(rng, shape, gap=0.1):
    """Random inputs that keep clear of the kinks at 0 (ReLU family), where
    central differences straddle two slopes."""
    x = rng.normal(size=shape)
    return np.where(np.abs(x) < gap, np.sign(x + 1e-12) * gap + x, x)


def module_with(module, names):
    """fn(x, *params) that runs `module` with the given Values as its parameters,
    so gradcheck can vary the parameters of a real layer."""
    def fn(x, *params):
        for name, value in zip(names, params):
            module._parameters[name] = value
        return module(x)
    return fn


ACTIVATIONS = [
    nn.Sigmoid(), nn.Tanh(), nn.ReLU(), nn.LeakyReLU(0.05), nn.ELU(), nn.ELU(alpha=0.7), nn.SELU(),
    nn.GELU(), nn.GELU(approximate="tanh"), nn.Softplus(), nn.Softplus(beta=2.0, threshold=5.0), nn.SiLU(),
    nn.Softmax(dim=1), nn.LogSoftmax(dim=1), nn.Softmax(dim=0), nn.LogSoftmax(dim=-1),
]


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=repr)
def test_activation_gradients(activation, rng):
    x = Value(away_from_zero(rng, (3, 4)) * 2)
    assert gradcheck(activation, [x])


def test_softplus_threshold_branch_gradient(rng):
    # beta * x > threshold: the identity, gradient exactly 1
    x = Value(np.array([30.0, 40.0]))
    F.softplus(x, beta=1.0, threshold=20.0).sum().backward()
    np.testing.assert_array_equal(x.grad, [1.0, 1.0])
    assert gradcheck(lambda v: F.softplus(v, 1.0, 20.0), [Value(np.array([19.0, 21.0, -3.0]))])


def test_prelu_gradients_for_input_and_slopes(rng):
    single = nn.PReLU()
    x = Value(away_from_zero(rng, (4, 3)))
    assert gradcheck(module_with(single, ["weight"]), [x, Value(np.array([0.3]))])
    per_channel = nn.PReLU(3)
    assert gradcheck(module_with(per_channel, ["weight"]), [x, Value(np.array([0.1, -0.2, 0.4]))])
    x3 = Value(away_from_zero(rng, (2, 3, 5)))
    assert gradcheck(module_with(per_channel, ["weight"]), [x3, Value(np.array([0.1, -0.2, 0.4]))])


def test_linear_gradients(rng):
    layer = nn.Linear(4, 3)
    inputs = [Value(rng.normal(size=(5, 4))), Value(layer.weight.data), Value(layer.bias.data)]
    assert gradcheck(module_with(layer, ["weight", "bias"]), inputs)
    no_bias = nn.Linear(4, 3, bias=False)
    assert gradcheck(module_with(no_bias, ["weight"]), inputs[:2])


@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5)])
def test_batchnorm_training_gradients(shape, rng):
    bn = nn.BatchNorm1d(3)
    inputs = [Value(rng.normal(size=shape) * 2 + 1), Value(rng.normal(size=3)), Value(rng.normal(size=3))]
    assert gradcheck(module_with(bn, ["weight", "bias"]), inputs, atol=1e-6)


def test_batchnorm_eval_gradients(rng):
    bn = nn.BatchNorm1d(3)
    bn.running_mean[...] = [0.5, -1.0, 2.0]
    bn.running_var[...] = [2.0, 0.5, 1.5]
    bn.eval()
    inputs = [Value(rng.normal(size=(4, 3))), Value(rng.normal(size=3)), Value(rng.normal(size=3))]
    assert gradcheck(module_with(bn, ["weight", "bias"]), inputs)


def test_dropout_gradient_with_a_fixed_mask(rng):
    # a seeded generator per call gives the same mask in every evaluation
    assert gradcheck(lambda x: F.dropout(x, p=0.3, generator=4), [Value(rng.normal(size=(5, 4)))])


def _targets(rng, n, c):
    return rng.integers(0, c, size=n)


LOSS_CASES = {
    "cross_entropy": lambda x, r: F.cross_entropy(x, _targets(r, 5, 4)),
    "cross_entropy weight smoothing ignore": lambda x, r: F.cross_entropy(
        x, np.array([0, 3, -100, 1, 2]), weight=np.array([1.0, 2.0, 0.5, 3.0]), label_smoothing=0.2),
    "cross_entropy sum": lambda x, r: F.cross_entropy(x, _targets(r, 5, 4), reduction="sum"),
    "cross_entropy none": lambda x, r: F.cross_entropy(x, _targets(r, 5, 4), reduction="none"),
    "cross_entropy probabilities": lambda x, r: F.cross_entropy(
        x, r.dirichlet(np.ones(4), size=5), weight=np.array([1.0, 2.0, 0.5, 3.0]), label_smoothing=0.1),
    "nll_loss": lambda x, r: F.nll_loss(F.log_softmax(x, dim=1), _targets(r, 5, 4), weight=np.array([1.0, 2.0, 0.5, 3.0])),
    "binary_cross_entropy": lambda x, r: F.binary_cross_entropy(F.sigmoid(x), r.uniform(size=(5, 4)),
                                                                weight=r.uniform(size=4)),
    "bce_with_logits": lambda x, r: F.binary_cross_entropy_with_logits(x * 3, r.uniform(size=(5, 4)),
                                                                        pos_weight=np.array([1.0, 2.0, 3.0, 0.5])),
    "mse_loss": lambda x, r: F.mse_loss(x, r.normal(size=(5, 4))),
    "l1_loss": lambda x, r: F.l1_loss(x, r.normal(size=(5, 4))),
    "kl_div batchmean": lambda x, r: F.kl_div(F.log_softmax(x, dim=1), r.dirichlet(np.ones(4), size=5),
                                             reduction="batchmean"),
    "kl_div log_target": lambda x, r: F.kl_div(F.log_softmax(x, dim=1), np.log(r.dirichlet(np.ones(4), size=5)),
                                              log_target=True),
    "multi_margin p=1": lambda x, r: F.multi_margin_loss(x, _targets(r, 5, 4)),
    "multi_margin p=2 weight": lambda x, r: F.multi_margin_loss(x, _targets(r, 5, 4), p=2, margin=0.7,
                                                               weight=np.array([1.0, 2.0, 0.5, 3.0])),
    "entropy": lambda x, r: F.entropy(F.softmax(x, dim=1), dim=1),
    "kl_divergence": lambda x, r: F.kl_divergence(F.softmax(x, dim=1), r.dirichlet(np.ones(4), size=5), dim=1),
    "kl_divergence q": lambda x, r: F.kl_divergence(r.dirichlet(np.ones(4), size=5), F.softmax(x, dim=1), dim=1),
}


@pytest.mark.parametrize("name", list(LOSS_CASES))
def test_loss_gradients(name):
    x = Value(np.random.default_rng(3).normal(size=(5, 4)))
    case = LOSS_CASES[name]
    # the same targets in every evaluation: re-seed inside fn
    assert gradcheck(lambda v: case(v, np.random.default_rng(11)), [x])


def test_loss_gradients_with_respect_to_targets(rng):
    logits = Value(rng.normal(size=(3, 4)), requires_grad=False)
    probs = Value(rng.dirichlet(np.ones(4), size=3))
    assert gradcheck(lambda t: F.cross_entropy(logits, t), [probs])
    assert gradcheck(lambda t: F.mse_loss(logits, t), [Value(rng.normal(size=(3, 4)))])
    assert gradcheck(lambda t: F.binary_cross_entropy_with_logits(logits, t), [Value(rng.uniform(size=(3, 4)))])


def test_loss_modules_match_functions(rng):
    x, t = rng.normal(size=(5, 4)), _targets(rng, 5, 4)
    w = np.array([1.0, 2.0, 0.5, 3.0])
    pairs = [
        (nn.CrossEntropyLoss(weight=w, label_smoothing=0.1), F.cross_entropy(x, t, weight=w, label_smoothing=0.1)),
        (nn.NLLLoss(reduction="sum"), F.nll_loss(x, t, reduction="sum")),
        (nn.MultiMarginLoss(p=2), F.multi_margin_loss(x, t, p=2)),
    ]
    for module, expected in pairs:
        np.testing.assert_array_equal(module(x, t).data, expected.data)
