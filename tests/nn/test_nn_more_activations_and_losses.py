"""The activations ReLU6, Hardtanh, Hardsigmoid, Hardswish, Mish, CELU,
Softsign, LogSigmoid and Softmin (functional and modules), and cross-entropy /
NLL on (N, C, d1, ...) inputs: against PyTorch in float64 when it is
installed, and by central differences (gradcheck) always."""

import numpy as np
import pytest

import nn
from autograd_core import OPS, Value, gradcheck
from nn import functional as F

RNG = np.random.default_rng(7)

MODULES = {
    # name: (ours, PyTorch's name and arguments)
    "relu6": (nn.ReLU6(), ("ReLU6", {})),
    "hardtanh": (nn.Hardtanh(), ("Hardtanh", {})),
    "hardtanh -2, 0.5": (nn.Hardtanh(-2.0, 0.5), ("Hardtanh", {"min_val": -2.0, "max_val": 0.5})),
    "hardsigmoid": (nn.Hardsigmoid(), ("Hardsigmoid", {})),
    "hardswish": (nn.Hardswish(), ("Hardswish", {})),
    "mish": (nn.Mish(), ("Mish", {})),
    "celu": (nn.CELU(), ("CELU", {})),
    # (an alpha that float32 holds exactly: PyTorch's float64 celu takes 1/alpha through float32,
    # so for alpha = 0.3 its gradient is 9e-7 off exp(x / alpha), ours is not)
    "celu 0.5": (nn.CELU(alpha=0.5), ("CELU", {"alpha": 0.5})),
    "softsign": (nn.Softsign(), ("Softsign", {})),
    "logsigmoid": (nn.LogSigmoid(), ("LogSigmoid", {})),
    "softmin dim 1": (nn.Softmin(dim=1), ("Softmin", {"dim": 1})),
    "softmin dim 0": (nn.Softmin(dim=0), ("Softmin", {"dim": 0})),
}


def _inputs():
    # a spread over every piece of the hard activations, with the kinks themselves
    x = RNG.uniform(-7, 7, size=(4, 6))
    x[0, :6] = [-3.0, 0.0, 3.0, 6.0, -1.0, 1.0]
    return x


@pytest.mark.parametrize("name", list(MODULES))
def test_activation_modules_match_pytorch(name):
    torch = pytest.importorskip("torch")
    ours, (cls, kwargs) = MODULES[name]
    theirs = getattr(torch.nn, cls)(**kwargs)
    x = _inputs()
    v, t = Value(x), torch.tensor(x, requires_grad=True)
    w = RNG.standard_normal(x.shape)
    y, z = ours(v), theirs(t)
    np.testing.assert_allclose(y.data, z.detach().numpy(), rtol=1e-7, atol=1e-12)
    (y * w).sum().backward()
    (z * torch.tensor(w)).sum().backward()
    # 1e-7: PyTorch's float64 hardsigmoid and hardswish gradients take 1/6 and 1/3 as float32 constants
    np.testing.assert_allclose(v.grad, t.grad.numpy(), rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize("name", list(MODULES))
def test_activation_gradients_by_central_differences(name):
    ours, _ = MODULES[name]
    x = RNG.uniform(-5, 5, size=(3, 4))
    x = np.where(np.min(np.abs(x[..., None] - np.array([-3.0, -2.0, -1.0, 0.0, 0.5, 1.0, 3.0, 6.0])), axis=-1) < 0.05, 0.25, x)
    assert gradcheck(ours, [Value(x)])


def test_elementwise_activations_are_one_node_each():
    x = Value(np.linspace(-4, 4, 9))
    for fn, op in ((F.relu6, "relu6"), (F.hardtanh, "hardtanh"), (F.hardsigmoid, "hardsigmoid"), (F.hardswish, "hardswish"),
                   (F.mish, "mish"), (F.celu, "celu"), (F.softsign, "softsign"), (F.logsigmoid, "logsigmoid")):
        y = fn(x)
        assert y._op is OPS[op] and y.inputs == (x,)


def test_inplace_is_refused_with_a_clear_message():
    with pytest.raises(ValueError, match="inplace"):
        nn.ReLU6(inplace=True)
    with pytest.raises(ValueError, match="relu6: inplace"):
        F.relu6(np.zeros(2), inplace=True)


def test_mlp_accepts_the_new_activations_by_name():
    model = nn.MLP([3, 4, 2], activation="hardswish")
    assert any(isinstance(m, nn.Hardswish) for m in model.modules())


# ---- cross-entropy and NLL on (N, C, d1, ...) --------------------------------
def _segmentation(shape, ignore_index=-100):
    logits = RNG.standard_normal(shape)
    target = RNG.integers(0, shape[1], size=(shape[0],) + shape[2:])
    target.reshape(-1)[:2] = ignore_index  # two ignored positions
    return logits, target


CE_SETTINGS = [
    {},
    {"reduction": "sum"},
    {"reduction": "none"},
    {"weight": np.array([0.5, 2.0, 1.0, 0.25])},
    {"weight": np.array([0.5, 2.0, 1.0, 0.25]), "reduction": "none"},
    {"label_smoothing": 0.2},
    {"label_smoothing": 0.1, "weight": np.array([0.5, 2.0, 1.0, 0.25])},
    {"ignore_index": 1},
]


@pytest.mark.parametrize("shape", [(2, 4, 3), (2, 4, 3, 5), (1, 4, 2, 2, 2)])
@pytest.mark.parametrize("settings", CE_SETTINGS, ids=repr)
def test_cross_entropy_on_positions_matches_pytorch(shape, settings):
    torch = pytest.importorskip("torch")
    logits, target = _segmentation(shape, settings.get("ignore_index", -100))
    v = Value(logits)
    t = torch.tensor(logits, requires_grad=True)
    torch_settings = {k: torch.tensor(val) if k == "weight" else val for k, val in settings.items()}
    ours = F.cross_entropy(v, target, **settings)
    theirs = torch.nn.functional.cross_entropy(t, torch.tensor(target), **torch_settings)
    assert ours.shape == tuple(theirs.shape)
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-10, atol=1e-12)
    w = RNG.standard_normal(ours.shape)
    (ours * w).sum().backward()
    (theirs * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(v.grad, t.grad.numpy(), rtol=1e-10, atol=1e-12)
    # and the module, and nll_loss of log_softmax (without label smoothing, which nll_loss has not)
    module = nn.CrossEntropyLoss(**settings)(Value(logits), target)
    np.testing.assert_allclose(module.data, ours.data, rtol=1e-12)
    if "label_smoothing" not in settings:
        log_probs = Value(logits)
        nll = F.nll_loss(F.log_softmax(log_probs, dim=1), target, **settings)
        theirs_nll = torch.nn.functional.nll_loss(torch.log_softmax(torch.tensor(logits), dim=1), torch.tensor(target), **torch_settings)
        np.testing.assert_allclose(nll.data, theirs_nll.numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(nn.NLLLoss(**settings)(F.log_softmax(Value(logits), dim=1), target).data, nll.data, rtol=1e-12)


def test_cross_entropy_with_probabilities_on_positions_matches_pytorch():
    torch = pytest.importorskip("torch")
    logits = RNG.standard_normal((2, 3, 4))
    probs = RNG.dirichlet(np.ones(3), size=(2, 4)).transpose(0, 2, 1).copy()  # sums to 1 over the class axis
    for reduction in ("mean", "sum", "none"):
        v, t = Value(logits), torch.tensor(logits, requires_grad=True)
        ours = F.cross_entropy(v, probs, reduction=reduction, label_smoothing=0.1)
        theirs = torch.nn.functional.cross_entropy(t, torch.tensor(probs), reduction=reduction, label_smoothing=0.1)
        np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-10)
        ours.sum().backward()
        theirs.sum().backward()
        np.testing.assert_allclose(v.grad, t.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_cross_entropy_on_positions_is_the_mean_over_every_position_by_hand():
    # a worked example: 1 image of 2 pixels, 2 classes; pixel 0 has logits (0, log 3), class 1; pixel 1 (0, 0), class 0
    logits = np.array([[[0.0, 0.0], [np.log(3.0), 0.0]]])  # (N=1, C=2, d=2)
    loss = F.cross_entropy(logits, np.array([[1, 0]]))
    np.testing.assert_allclose(float(loss.data), (-np.log(0.75) - np.log(0.5)) / 2, rtol=1e-12)
    x = Value(logits)
    assert gradcheck(lambda v: F.cross_entropy(v, np.array([[1, 0]]), weight=np.array([2.0, 0.5])), [x])


def test_cross_entropy_on_positions_refuses_a_target_of_the_wrong_shape():
    with pytest.raises(Exception, match=r"cross_entropy: scores of shape \(2, 4, 3\).*need class indices of shape \(2, 3\)"):
        F.cross_entropy(np.zeros((2, 4, 3)), np.zeros((2, 4), dtype=int))
    with pytest.raises(Exception, match=r"nll_loss: scores of shape"):
        F.nll_loss(np.zeros((2, 4, 3)), np.zeros((3,), dtype=int))
