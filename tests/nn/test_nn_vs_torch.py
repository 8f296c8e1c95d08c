"""Forward values, gradients and BatchNorm running statistics against PyTorch, in float64."""

import numpy as np
import pytest

import nn
from autograd_core import Value
from nn import functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def both(array):
    """The same float64 data as a Value and as a torch tensor, both requiring grad."""
    array = np.asarray(array, dtype=np.float64)
    return Value(array.copy()), torch.tensor(array, requires_grad=True)


def check(ours, theirs, inputs, rtol=1e-10, atol=1e-12):
    """Same forward values; same gradients for a fixed random upstream gradient."""
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=rtol, atol=atol)
    upstream = np.random.default_rng(0).normal(size=ours.shape)
    (ours * upstream).sum().backward()
    (theirs * torch.tensor(upstream)).sum().backward()
    for mine, reference in inputs:
        np.testing.assert_allclose(mine.grad, reference.grad.numpy(), rtol=rtol, atol=atol)


def interesting_inputs():
    rng = np.random.default_rng(42)
    x = rng.normal(size=(6, 5)) * 3
    x[0, :] = [0.0, 1e-3, -1e-3, 25.0, -25.0]  # the kink, tiny values and the tails
    return x


ACTIVATION_PAIRS = {
    "sigmoid": (nn.Sigmoid(), torch.nn.Sigmoid()),
    "tanh": (nn.Tanh(), torch.nn.Tanh()),
    "relu": (nn.ReLU(), torch.nn.ReLU()),
    "leaky_relu": (nn.LeakyReLU(0.1), torch.nn.LeakyReLU(0.1)),
    "elu": (nn.ELU(0.8), torch.nn.ELU(0.8)),
    "selu": (nn.SELU(), torch.nn.SELU()),
    "gelu": (nn.GELU(), torch.nn.GELU()),
    "gelu tanh": (nn.GELU("tanh"), torch.nn.GELU("tanh")),
    "softplus": (nn.Softplus(), torch.nn.Softplus()),
    "softplus beta": (nn.Softplus(beta=2.0, threshold=4.0), torch.nn.Softplus(beta=2.0, threshold=4.0)),
    "silu": (nn.SiLU(), torch.nn.SiLU()),
    "softmax": (nn.Softmax(dim=1), torch.nn.Softmax(dim=1)),
    "softmax dim0": (nn.Softmax(dim=0), torch.nn.Softmax(dim=0)),
    "log_softmax": (nn.LogSoftmax(dim=1), torch.nn.LogSoftmax(dim=1)),
}


@pytest.mark.parametrize("name", list(ACTIVATION_PAIRS))
def test_activations_match_pytorch(name):
    ours_layer, torch_layer = ACTIVATION_PAIRS[name]
    x, tx = both(interesting_inputs())
    check(ours_layer(x), torch_layer(tx), [(x, tx)])


def test_softmax_stable_for_huge_logits():
    x, tx = both([[1000.0, 0.0, -1000.0], [-5e4, 5e4, 5e4]])
    check(F.log_softmax(x, dim=1), TF.log_softmax(tx, dim=1), [(x, tx)])
    with np.errstate(over="ignore"):
        assert np.all(np.isfinite(F.softmax(np.array([[1e308, -1e308]]), dim=1).data))


def test_prelu_matches_pytorch():
    x, tx = both(interesting_inputs())
    ours, theirs = nn.PReLU(5, init=0.2), torch.nn.PReLU(5, init=0.2).double()
    ours.load_state_dict(theirs.state_dict())  # PyTorch made its 0.2 in float32
    check(ours(x), theirs(tx), [(x, tx), (ours.weight, theirs.weight)])


def test_linear_matches_pytorch_with_copied_weights():
    ours, theirs = nn.Linear(5, 3), torch.nn.Linear(5, 3).double()
    ours.load_state_dict(theirs.state_dict())
    x, tx = both(interesting_inputs())
    check(ours(x), theirs(tx), [(x, tx), (ours.weight, theirs.weight), (ours.bias, theirs.bias)])


def test_linear_initialisation_has_pytorch_bounds():
    nn.manual_seed(0)
    layer = nn.Linear(50, 400)
    bound = 1 / np.sqrt(50)
    for p in (layer.weight, layer.bias):
        assert np.abs(p.data).max() <= bound
        assert np.abs(p.data).max() > 0.95 * bound  # uses the whole range
    # U(-b, b) has variance b^2 / 3, whatever the generator
    assert layer.weight.data.var() == pytest.approx(bound**2 / 3, rel=0.05)


@pytest.mark.parametrize("momentum", [0.1, 0.3, None])
@pytest.mark.parametrize("shape", [(8, 4), (5, 4, 3)])
def test_batchnorm_matches_pytorch_in_training_and_eval(momentum, shape):
    rng = np.random.default_rng(7)
    ours = nn.BatchNorm1d(4, momentum=momentum, eps=1e-3)
    theirs = torch.nn.BatchNorm1d(4, momentum=momentum, eps=1e-3).double()
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(rng.normal(size=4)))
        theirs.bias.copy_(torch.tensor(rng.normal(size=4)))
    ours.load_state_dict(theirs.state_dict())
    for step in range(3):  # the running statistics after several batches
        x, tx = both(rng.normal(size=shape) * 3 + 2)
        ours.zero_grad()
        theirs.zero_grad()
        check(ours(x), theirs(tx), [(x, tx), (ours.weight, theirs.weight), (ours.bias, theirs.bias)], rtol=1e-9)
        np.testing.assert_allclose(ours.running_mean, theirs.running_mean.numpy(), rtol=1e-12)
        np.testing.assert_allclose(ours.running_var, theirs.running_var.numpy(), rtol=1e-12)
        assert int(ours.num_batches_tracked) == int(theirs.num_batches_tracked)
    ours.eval()
    theirs.eval()
    ours.zero_grad()
    theirs.zero_grad()
    x, tx = both(rng.normal(size=shape))
    check(ours(x), theirs(tx), [(x, tx), (ours.weight, theirs.weight), (ours.bias, theirs.bias)])


def test_batchnorm_without_running_stats_matches_pytorch():
    ours = nn.BatchNorm1d(3, affine=False, track_running_stats=False).eval()
    theirs = torch.nn.BatchNorm1d(3, affine=False, track_running_stats=False).double().eval()
    x, tx = both(np.random.default_rng(1).normal(size=(6, 3)))
    check(ours(x), theirs(tx), [(x, tx)])


def test_batchnorm_refuses_a_single_sample_in_training():
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(3)(np.ones((1, 3)))


def _class_problem():
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(7, 4)) * 2
    target = np.array([0, 3, 1, 1, 2, 3, 0])
    probs = rng.dirichlet(np.ones(4), size=7)
    return logits, target, probs


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.25])
def test_cross_entropy_with_indices_matches_pytorch(reduction, weighted, smoothing):
    logits, target, _ = _class_problem()
    target = target.copy()
    target[2] = -1  # ignored
    weight = np.array([0.5, 2.0, 1.0, 3.0]) if weighted else None
    x, tx = both(logits)
    ours = F.cross_entropy(x, target, weight=weight, ignore_index=-1, reduction=reduction, label_smoothing=smoothing)
    theirs = TF.cross_entropy(tx, torch.tensor(target), weight=None if weight is None else torch.tensor(weight),
                              ignore_index=-1, reduction=reduction, label_smoothing=smoothing)
    check(ours, theirs, [(x, tx)])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.25])
def test_cross_entropy_with_probabilities_matches_pytorch(reduction, weighted, smoothing):
    logits, _, probs = _class_problem()
    weight = np.array([0.5, 2.0, 1.0, 3.0]) if weighted else None
    x, tx = both(logits)
    p, tp = both(probs)
    ours = F.cross_entropy(x, p, weight=weight, reduction=reduction, label_smoothing=smoothing)
    theirs = TF.cross_entropy(tx, tp, weight=None if weight is None else torch.tensor(weight),
                              reduction=reduction, label_smoothing=smoothing)
    check(ours, theirs, [(x, tx), (p, tp)])


def test_cross_entropy_single_sample_and_huge_logits():
    x, tx = both([3.0, -1.0, 0.5])
    check(F.cross_entropy(x, np.array(2)), TF.cross_entropy(tx, torch.tensor(2)), [(x, tx)])
    x, tx = both([[1e4, -1e4, 0.0], [0.0, 5e3, -5e3]])
    ours = F.cross_entropy(x, np.array([1, 2]))
    check(ours, TF.cross_entropy(tx, torch.tensor([1, 2])), [(x, tx)])
    assert np.isfinite(ours.data)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_nll_loss_matches_pytorch(reduction):
    logits, target, _ = _class_problem()
    weight = np.array([0.5, 2.0, 1.0, 3.0])
    x, tx = both(np.log(np.random.default_rng(0).dirichlet(np.ones(4), size=7)))
    ours = F.nll_loss(x, target, weight=weight, ignore_index=3, reduction=reduction)
    theirs = TF.nll_loss(tx, torch.tensor(target), weight=torch.tensor(weight), ignore_index=3, reduction=reduction)
    check(ours, theirs, [(x, tx)])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_binary_cross_entropy_matches_pytorch_including_clamping(reduction):
    rng = np.random.default_rng(2)
    probs = rng.uniform(size=(4, 3))
    probs[0] = [0.0, 1.0, 1e-50]  # log clamped at -100
    target = rng.uniform(size=(4, 3))
    weight = rng.uniform(size=3)
    x, tx = both(probs)
    ours = F.binary_cross_entropy(x, target, weight=weight, reduction=reduction)
    theirs = TF.binary_cross_entropy(tx, torch.tensor(target), weight=torch.tensor(weight), reduction=reduction)
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-10)
    # gradients agree everywhere, the clamped entries included (both divide by max(x(1-x), 1e-12))
    ours.sum().backward()
    theirs.sum().backward()
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-10)
    assert np.all(np.isfinite(x.grad))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_with_logits_matches_pytorch_for_large_logits(reduction):
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(4, 3)) * 4
    logits[0] = [100.0, -100.0, 30.0]
    target = rng.uniform(size=(4, 3))
    target[0] = [0.0, 1.0, 1.0]
    pos_weight = np.array([1.0, 3.0, 0.5])
    x, tx = both(logits)
    ours = F.binary_cross_entropy_with_logits(x, target, weight=np.array([1.0, 2.0, 3.0]), reduction=reduction,
                                              pos_weight=pos_weight)
    theirs = TF.binary_cross_entropy_with_logits(tx, torch.tensor(target), weight=torch.tensor([1.0, 2.0, 3.0]).double(),
                                                 reduction=reduction, pos_weight=torch.tensor(pos_weight))
    check(ours, theirs, [(x, tx)])
    assert float(np.max(F.binary_cross_entropy_with_logits(np.array([100.0]), np.array([0.0]), reduction="none").data)) == 100.0


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_and_l1_match_pytorch(reduction):
    rng = np.random.default_rng(4)
    x, tx = both(rng.normal(size=(5, 2)))
    y = rng.normal(size=(5, 2))
    check(F.mse_loss(x, y, reduction), TF.mse_loss(tx, torch.tensor(y), reduction=reduction), [(x, tx)])
    x, tx = both(rng.normal(size=(5, 2)))
    check(F.l1_loss(x, y, reduction), TF.l1_loss(tx, torch.tensor(y), reduction=reduction), [(x, tx)])


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides")
@pytest.mark.parametrize("reduction", ["batchmean", "mean", "sum", "none"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div_matches_pytorch(reduction, log_target):
    rng = np.random.default_rng(6)
    x, tx = both(np.log(rng.dirichlet(np.ones(4), size=5)))
    target = rng.dirichlet(np.ones(4), size=5)
    target[0, 1] = 0.0  # 0 log 0 = 0
    if log_target:
        target = np.log(target + 0.01)
    ours = F.kl_div(x, target, reduction=reduction, log_target=log_target)
    theirs = TF.kl_div(tx, torch.tensor(target), reduction=reduction, log_target=log_target)
    check(ours, theirs, [(x, tx)])


@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_multi_margin_matches_pytorch(p, reduction):
    logits, target, _ = _class_problem()
    weight = np.array([0.5, 2.0, 1.0, 3.0])
    x, tx = both(logits)
    ours = F.multi_margin_loss(x, target, p=p, margin=0.8, weight=weight, reduction=reduction)
    theirs = TF.multi_margin_loss(tx, torch.tensor(target), p=p, margin=0.8, weight=torch.tensor(weight),
                                  reduction=reduction)
    check(ours, theirs, [(x, tx)])


@pytest.mark.parametrize("nonlinearity,param", [("linear", None), ("tanh", None), ("relu", None),
                                                ("leaky_relu", None), ("leaky_relu", 0.2), ("selu", None),
                                                ("sigmoid", None)])
def test_init_gains_match_pytorch(nonlinearity, param):
    assert nn.init.calculate_gain(nonlinearity, param) == pytest.approx(
        torch.nn.init.calculate_gain(nonlinearity, param), rel=1e-15)


def test_init_fans_match_pytorch():
    from torch.nn.init import _calculate_fan_in_and_fan_out as torch_fans

    for shape in [(3, 5), (4, 2, 3), (6, 2, 3, 3)]:
        assert nn.init._calculate_fan_in_and_fan_out(np.empty(shape)) == torch_fans(torch.empty(shape))


def test_mlp_matches_pytorch_sequential_end_to_end():
    torch.manual_seed(0)
    reference = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.Tanh(),
                                    torch.nn.Linear(8, 3)).double()
    model = nn.MLP([4, 8, 3], activation="tanh", batchnorm=True)
    model.load_state_dict(reference.state_dict())
    X, y = nn.data.load_iris()
    x, tx = both(X[::10])
    ours = F.cross_entropy(model(x), y[::10])
    theirs = TF.cross_entropy(reference(tx), torch.tensor(y[::10]))
    check(ours, theirs, [(x, tx)] + [(p, q) for p, q in zip(model.parameters(), reference.parameters())])
    for key, value in model.state_dict().items():
        np.testing.assert_allclose(value, reference.state_dict()[key].numpy(), rtol=1e-12)
