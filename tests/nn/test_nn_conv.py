"""nn's image layers (Conv1d, Conv2d, pooling, BatchNorm2d, Dropout2d): PyTorch's
layout, defaults, initialisation and repr, a PyTorch state_dict loading into
the same model with the same outputs and gradients, errors that name the
layer and the shapes, the shipped digits, and a small CNN learning them."""

import math

import numpy as np
import pytest

import nn
import optim
from autograd_core import Value
from autograd_core.errors import ShapeError
from nn import functional as F
from nn.data import DataLoader, load_digits


def _lenet(torch_nn, **conv_args):
    """The same small network in either library (torch.nn or nn)."""
    return torch_nn.Sequential(
        torch_nn.Conv2d(1, 6, 3, padding=1, **conv_args), torch_nn.BatchNorm2d(6), torch_nn.ReLU(), torch_nn.MaxPool2d(2),
        torch_nn.Conv2d(6, 8, 3, padding=1, groups=2, bias=False), torch_nn.ReLU(), torch_nn.AvgPool2d(2),
        torch_nn.Conv2d(8, 8, 1), torch_nn.Dropout2d(0.0), torch_nn.AdaptiveAvgPool2d(1), torch_nn.Flatten(),
        torch_nn.Linear(8, 10),
    )


@pytest.mark.parametrize("padding_mode", ["zeros", "reflect", "replicate", "circular"])
def test_a_pytorch_state_dict_loads_and_gives_the_same_outputs_and_gradients(padding_mode):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    theirs = _lenet(torch.nn, padding_mode=padding_mode).double().train()
    ours = _lenet(nn, padding_mode=padding_mode).train()
    state = {name: tensor.numpy() for name, tensor in theirs.state_dict().items()}
    assert sorted(state) == sorted(ours.state_dict())
    ours.load_state_dict(state)
    x = np.random.default_rng(0).standard_normal((4, 1, 8, 8))
    y = np.array([3, 1, 4, 1])
    loss_ours = nn.CrossEntropyLoss()(ours(x), y)
    loss_theirs = torch.nn.functional.cross_entropy(theirs(torch.from_numpy(x)), torch.from_numpy(y))
    assert float(loss_ours.data) == pytest.approx(loss_theirs.item(), rel=1e-12)
    loss_ours.backward()
    loss_theirs.backward()
    their_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad, their_params[name].grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=name)
    # batch norm's running statistics moved the same way
    np.testing.assert_allclose(ours[1].running_var, theirs[1].running_var.numpy(), rtol=1e-12)
    ours.eval()
    theirs.eval()
    np.testing.assert_allclose(ours(x).data, theirs(torch.from_numpy(x)).detach().numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("padding_mode", ["reflect", "replicate", "circular"])
def test_same_padding_with_a_border_mode_matches_pytorch(padding_mode):
    torch = pytest.importorskip("torch")
    theirs = torch.nn.Conv2d(2, 3, (3, 4), padding="same", dilation=(2, 1), padding_mode=padding_mode).double()
    ours = nn.Conv2d(2, 3, (3, 4), padding="same", dilation=(2, 1), padding_mode=padding_mode)
    ours.load_state_dict({name: t.detach().numpy() for name, t in theirs.state_dict().items()})
    x = np.random.default_rng(4).standard_normal((2, 2, 6, 7))
    x_theirs = torch.tensor(x, requires_grad=True)
    x_ours = Value(x)
    np.testing.assert_allclose(ours(x_ours).data, theirs(x_theirs).detach().numpy(), rtol=1e-12, atol=1e-12)
    ours(x_ours).sum().backward()
    theirs(x_theirs).sum().backward()
    np.testing.assert_allclose(x_ours.grad, x_theirs.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_reprs_match_pytorch():
    torch = pytest.importorskip("torch")
    pairs = [
        ("Conv2d", (3, 8, 3), dict(padding=1)),
        ("Conv2d", (4, 8, (3, 5)), dict(stride=2, dilation=(1, 2), groups=2, bias=False, padding_mode="reflect")),
        ("Conv2d", (3, 8, 3), dict(padding="same")),
        ("Conv1d", (2, 4, 5), dict(padding=2)),
        ("MaxPool2d", (2,), {}),
        ("MaxPool2d", (3,), dict(stride=2, padding=1, ceil_mode=True)),
        ("AvgPool2d", (2,), {}),
        ("AdaptiveAvgPool2d", (1,), {}),
    ]
    for name, args, kwargs in pairs:
        assert repr(getattr(nn, name)(*args, **kwargs)) == repr(getattr(torch.nn, name)(*args, **kwargs))


def test_conv_initialisation_is_pytorchs():
    conv = nn.Conv2d(8, 16, (3, 5), groups=2)
    assert conv.weight.shape == (16, 4, 3, 5) and conv.bias.shape == (16,)
    bound = 1 / math.sqrt(4 * 3 * 5)  # fan_in = in_channels / groups * kernel taps
    for p in (conv.weight, conv.bias):
        assert np.abs(p.data).max() <= bound
        assert np.abs(p.data).max() > 0.9 * bound  # uniform over the whole range
    # U(-b, b) has variance b^2 / 3
    assert conv.weight.data.var() == pytest.approx(bound**2 / 3, rel=0.15)
    assert nn.Conv1d(2, 3, 4, bias=False).bias is None


def test_functional_names_follow_pytorch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(1).standard_normal((2, 4, 6, 6))
    w = np.random.default_rng(2).standard_normal((6, 2, 3, 3))
    ours = F.conv2d(x, w, None, 2, 1, 1, 2)  # positional arguments in PyTorch's order
    theirs = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), None, 2, 1, 1, 2)
    np.testing.assert_allclose(ours.data, theirs.numpy(), rtol=1e-12)
    ours = F.max_pool2d(x, 3, 2, 1, 1, True)
    theirs = torch.nn.functional.max_pool2d(torch.from_numpy(x), 3, 2, 1, 1, True)
    np.testing.assert_allclose(ours.data, theirs.numpy())
    for name in ("conv1d", "avg_pool2d", "adaptive_avg_pool2d", "pad", "unfold", "fold", "dropout2d"):
        assert callable(getattr(F, name)) and hasattr(torch.nn.functional, name)


def test_batchnorm2d_normalises_each_channel_over_batch_and_pixels():
    bn = nn.BatchNorm2d(3, momentum=0.5)
    x = np.random.default_rng(3).normal(5.0, 2.0, (4, 3, 5, 5))
    y = bn(x).data
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1, rtol=1e-3)  # eps = 1e-5 keeps it just under 1
    n = 4 * 5 * 5
    np.testing.assert_allclose(bn.running_mean, 0.5 * x.mean(axis=(0, 2, 3)))
    np.testing.assert_allclose(bn.running_var, 0.5 + 0.5 * x.var(axis=(0, 2, 3)) * n / (n - 1))
    bn.eval()
    expected = (x - bn.running_mean[:, None, None]) / np.sqrt(bn.running_var[:, None, None] + 1e-5)
    np.testing.assert_allclose(bn(x).data, expected, rtol=1e-12)


def test_dropout2d_drops_whole_channels():
    drop = nn.Dropout2d(0.5)
    y = drop(np.ones((8, 16, 3, 3))).data
    per_channel = y.reshape(8, 16, 9)
    assert np.all(per_channel == per_channel[:, :, :1])  # a channel is kept or dropped as a whole
    assert set(np.unique(y).tolist()) == {0.0, 2.0}
    assert 0.3 < (per_channel[:, :, 0] == 0).mean() < 0.7
    drop.eval()
    assert np.all(drop(np.ones((2, 3, 2, 2))).data == 1.0)
    x = Value(np.ones((2, 4, 2, 2)))
    nn.Dropout2d(0.25)(x).sum().backward()  # the gradient goes through the kept channels, scaled
    assert set(np.unique(x.grad).tolist()) <= {0.0, 4 / 3}


def test_errors_name_the_layer_and_the_shapes():
    with pytest.raises(ShapeError, match=r"Conv2d\(3, 8\): expected input of shape \(N, C, H, W\) with C = 3 "
                                         r"channels, got \(2, 4, 8, 8\)"):
        nn.Conv2d(3, 8, 3)(np.zeros((2, 4, 8, 8)))
    with pytest.raises(ValueError, match=r"Conv2d: groups=3 must divide in_channels \(4\) and out_channels \(6\)"):
        nn.Conv2d(4, 6, 3, groups=3)
    with pytest.raises(ShapeError, match=r"Conv2d\(1, 2, 5x5\): conv2d: the kernel \(5, 5\).*larger than the padded "
                                         r"input.*\(3, 3\)"):
        nn.Conv2d(1, 2, 5)(np.zeros((1, 1, 3, 3)))
    with pytest.raises(ShapeError, match=r"MaxPool2d\(kernel_size=4.*\): max_pool2d: the kernel \(4, 4\)"):
        nn.MaxPool2d(4)(np.zeros((1, 1, 3, 3)))
    with pytest.raises(ShapeError, match=r"BatchNorm2d\(3\): expected input of shape \(N, 3, H, W\), got \(2, 3\)"):
        nn.BatchNorm2d(3)(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="Conv1d: padding_mode must be one of"):
        nn.Conv1d(1, 1, 3, padding_mode="mirror")
    with pytest.raises(ValueError, match=r"Conv2d: kernel_size must be an int >= 1"):
        nn.Conv2d(1, 1, 0)


# ---- the digits ---------------------------------------------------------------
def test_digits_are_the_uci_test_set():
    digits = load_digits()
    X, y = digits
    assert X.shape == (1797, 64) and digits.images.shape == (1797, 1, 8, 8)
    assert y.dtype == np.int64 and X.min() == 0 and X.max() == 16
    # the class counts of optdigits.tes as the UCI description lists them
    assert np.bincount(y).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    np.testing.assert_array_equal(digits.images[5, 0], X[5].reshape(8, 8))
    # each class's mean image is closer to its own images than to the others' (nearest-mean accuracy)
    means = np.array([X[y == k].mean(axis=0) for k in range(10)])
    nearest = np.argmin(((X[:, None, :] - means[None]) ** 2).sum(axis=2), axis=1)
    assert (nearest == y).mean() > 0.85


def _train_cnn(epochs, seed=0):
    nn.manual_seed(seed)
    digits = load_digits()
    X, y = (digits.images / 16.0).astype(np.float32), digits.y
    order = np.random.default_rng(seed).permutation(len(y))
    valid, train = order[:360], order[360:]
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 2 * 2, 10),
    ).float()
    optimizer = optim.Adam(model.parameters(), lr=3e-3)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(epochs):
        model.train()
        for xb, yb in DataLoader((X[train], y[train]), batch_size=64, shuffle=True, seed=epoch):
            optimizer.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            optimizer.step()
    model.eval()
    return float((model(X[valid]).data.argmax(axis=1) == y[valid]).mean())


def test_a_small_cnn_learns_the_digits_in_a_few_epochs():
    # chance is 10%; three epochs of the LeNet-style network already separate most digits
    assert _train_cnn(epochs=3) > 0.85


@pytest.mark.slow
def test_a_small_cnn_reaches_97_percent_on_the_digits():
    assert _train_cnn(epochs=15) >= 0.97
