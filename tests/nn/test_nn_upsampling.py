"""nn's decoder layers (ConvTranspose1d, ConvTranspose2d, Upsample, MaxUnpool2d,
MaxPool2d(return_indices=True)): PyTorch's arguments, weight layout,
initialisation and repr, a PyTorch state_dict loading into the same model with
the same outputs and gradients, forward(x, output_size), and errors that name
the layer."""

import math

import numpy as np
import pytest

import nn
from autograd_core import Value
from autograd_core.errors import ShapeError
from nn import functional as F


def _decoder(torch_nn):
    """The same small encoder-decoder in either library (torch.nn or nn)."""
    return torch_nn.Sequential(
        torch_nn.Conv2d(1, 4, 3, padding=1), torch_nn.ReLU(), torch_nn.MaxPool2d(2),
        torch_nn.ConvTranspose2d(4, 3, 3, stride=2, padding=1, output_padding=1), torch_nn.Tanh(),
        torch_nn.Upsample(scale_factor=1.5, mode="bilinear"),
        torch_nn.ConvTranspose2d(3, 2, (2, 3), groups=1, dilation=(2, 1), bias=False),
    )


def test_a_pytorch_state_dict_loads_into_a_decoder_with_the_same_outputs_and_gradients():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    theirs = _decoder(torch.nn).double()
    ours = _decoder(nn)
    state = {name: tensor.numpy() for name, tensor in theirs.state_dict().items()}
    assert {k: v.shape for k, v in state.items()} == {k: v.shape for k, v in ours.state_dict().items()}
    ours.load_state_dict(state)
    x = np.random.default_rng(0).standard_normal((3, 1, 8, 8))
    y_ours, y_theirs = ours(x), theirs(torch.from_numpy(x))
    assert y_ours.shape == tuple(y_theirs.shape) == (3, 2, 14, 14)
    np.testing.assert_allclose(y_ours.data, y_theirs.detach().numpy(), rtol=1e-11, atol=1e-12)
    upstream = np.random.default_rng(1).standard_normal(y_ours.shape)
    (y_ours * upstream).sum().backward()
    (y_theirs * torch.from_numpy(upstream)).sum().backward()
    their_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad, their_params[name].grad.numpy(), rtol=1e-9, atol=1e-11, err_msg=name)


def test_reprs_match_pytorch():
    torch = pytest.importorskip("torch")
    pairs = [
        ("ConvTranspose2d", (3, 8, 3), dict(stride=2, padding=1, output_padding=1)),
        ("ConvTranspose2d", (4, 8, (3, 5)), dict(dilation=(1, 2), groups=2, bias=False)),
        ("ConvTranspose1d", (2, 4, 5), dict(padding=2)),
        ("MaxUnpool2d", (2,), {}),
        ("MaxUnpool2d", ((3, 2),), dict(stride=1, padding=1)),
        ("Upsample", (), dict(scale_factor=2)),
        ("Upsample", (), dict(scale_factor=(1.5, 2), mode="bilinear", align_corners=True)),
        ("Upsample", (), dict(size=(3, 4), mode="bilinear")),
    ]
    for name, args, kwargs in pairs:
        assert repr(getattr(nn, name)(*args, **kwargs)) == repr(getattr(torch.nn, name)(*args, **kwargs))


def test_conv_transpose_initialisation_is_pytorchs():
    layer = nn.ConvTranspose2d(8, 6, (3, 5), groups=2)
    assert layer.weight.shape == (8, 3, 3, 5) and layer.bias.shape == (6,)  # (in, out / groups, kH, kW)
    bound = 1 / math.sqrt(3 * 3 * 5)  # PyTorch's fan_in: weight.shape[1] * kernel taps
    for p in (layer.weight, layer.bias):
        assert np.abs(p.data).max() <= bound
        assert np.abs(p.data).max() > 0.8 * bound
    assert layer.weight.data.var() == pytest.approx(bound**2 / 3, rel=0.2)
    assert nn.ConvTranspose1d(2, 3, 4, bias=False).bias is None


def test_conv_transpose_forward_picks_the_output_padding_for_an_output_size():
    torch = pytest.importorskip("torch")
    ours = nn.ConvTranspose2d(2, 3, 3, stride=3, padding=1)
    theirs = torch.nn.ConvTranspose2d(2, 3, 3, stride=3, padding=1).double()
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(2).standard_normal((1, 2, 4, 4))
    for size in [(10, 10), (11, 12), (1, 2, 12, 11)]:
        y = ours(x, output_size=size)
        np.testing.assert_allclose(y.data, theirs(torch.from_numpy(x), output_size=size).detach().numpy(), rtol=1e-12)
    with pytest.raises(ValueError, match=r"ConvTranspose2d\(2, 3, 3x3\): requested an output size of \(13, 10\), "
                                         r"but an input of spatial size \(4, 4\) gives sizes from \(10, 10\) to "
                                         r"\(12, 12\)"):
        ours(x, output_size=(13, 10))


def test_max_pool2d_returns_the_indices_that_max_unpool2d_reads():
    pool, unpool = nn.MaxPool2d(2, return_indices=True), nn.MaxUnpool2d(2)
    x = Value(np.array([[[[1.0, 5.0, 2.0, 0.0], [3.0, 2.0, 7.0, 8.0]]]]))
    values, indices = pool(x)
    assert values.data.tolist() == [[[[5.0, 8.0]]]] and indices.tolist() == [[[[1, 7]]]]
    y = unpool(values, indices, output_size=x.shape)
    assert y.data.tolist() == [[[[0.0, 5.0, 0.0, 0.0], [0.0, 0.0, 0.0, 8.0]]]]
    y.sum().backward()
    assert x.grad.tolist() == [[[[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]]]
    values, indices = F.max_pool2d(x, 2, return_indices=True)  # the functional form, PyTorch's name
    assert indices.tolist() == [[[[1, 7]]]]


def test_upsample_is_interpolate_as_a_layer():
    x = np.arange(4.0).reshape(1, 1, 2, 2)
    np.testing.assert_array_equal(nn.Upsample(scale_factor=2)(x).data, F.interpolate(x, scale_factor=2).data)
    y = nn.Upsample(size=(3, 3), mode="bilinear", align_corners=True)(x)
    assert y.data[0, 0].tolist() == [[0.0, 0.5, 1.0], [1.0, 1.5, 2.0], [2.0, 2.5, 3.0]]


def test_errors_name_the_layer_and_the_shapes():
    with pytest.raises(ShapeError, match=r"ConvTranspose2d\(3, 8, 3x3\): expected input of shape \(N, C, H, W\) "
                                         r"with C = 3 channels, got \(2, 4, 8, 8\)"):
        nn.ConvTranspose2d(3, 8, 3)(np.zeros((2, 4, 8, 8)))
    with pytest.raises(ValueError, match=r"ConvTranspose2d: output_padding \(2, 2\) must be smaller than the "
                                         r"stride \(2, 2\) or the dilation \(1, 1\)"):
        nn.ConvTranspose2d(3, 8, 3, stride=2, output_padding=2)
    with pytest.raises(ValueError, match=r'ConvTranspose1d: only padding_mode="zeros" is supported'):
        nn.ConvTranspose1d(1, 1, 3, padding_mode="reflect")
    with pytest.raises(ValueError, match=r"ConvTranspose2d: groups=3 must divide in_channels \(4\)"):
        nn.ConvTranspose2d(4, 6, 3, groups=3)
    with pytest.raises(ShapeError, match=r"ConvTranspose2d\(1, 1, 1x1\): conv_transpose2d: an input of spatial size "
                                         r"\(1, 1\) .* which is empty"):
        nn.ConvTranspose2d(1, 1, 1, padding=1)(np.zeros((1, 1, 1, 1)))
    with pytest.raises(ValueError, match="Upsample: mode must be"):
        nn.Upsample(scale_factor=2, mode="bicubic")
    with pytest.raises(ShapeError, match=r"Upsample\(scale_factor=2.0, mode='bilinear'\): interpolate: mode "
                                         r"'bilinear' takes an input of shape \(N, C, H, W\)"):
        nn.Upsample(scale_factor=2, mode="bilinear")(np.zeros((1, 1, 4)))
    with pytest.raises(ValueError, match=r"MaxUnpool2d: kernel_size must be an int >= 1"):
        nn.MaxUnpool2d(0)
    with pytest.raises(ValueError, match=r"max_unpool2d: the index 9 is outside an output plane of 2 x 2"):
        nn.MaxUnpool2d(2)(np.zeros((1, 1, 1, 1)), np.array([[[[9]]]]))
