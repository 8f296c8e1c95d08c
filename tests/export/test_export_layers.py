"""Every nn layer exported to PyTorch: its torch.nn counterpart, our weights in
PyTorch's layout, the same outputs and the same gradients (float64, to 1e-10),
in training and in evaluation mode; train/eval, running statistics and
requires_grad carried over. And every layer in ONNX Runtime (float32, 1e-5)."""

import numpy as np
import pytest

import nn
from autograd_core import Value, export

torch = pytest.importorskip("torch")

TOL64, TOL32 = 1e-10, 1e-5


def _rng(seed=0):
    return np.random.default_rng(seed)


def images(n=4, c=3, h=6, w=6, seed=0):
    return _rng(seed).normal(size=(n, c, h, w))


def rows(n=6, k=4, seed=0):
    return _rng(seed).normal(size=(n, k))


def compare(module, inputs, train=True, grad_inputs=(0,), tol=TOL64, grad_tol=None):
    """Export `module` on `inputs`, run both on them, compare outputs and the
    gradients of every parameter and of the inputs in `grad_inputs` (`train`
    None: the modules' modes as they are)."""
    if train is not None:
        module.train(train)
    module.zero_grad()
    exported = export.to_torch(module, *inputs)
    assert [m.training for m in exported.modules()] == [m.training for m in module.modules()]
    ours_in = [Value(x) if k in grad_inputs else x for k, x in enumerate(inputs)]
    out = module(*ours_in)
    weights = _rng(7).normal(size=out.shape)
    (out * weights).sum().backward()
    theirs_in = [torch.tensor(x, requires_grad=k in grad_inputs) if np.asarray(x).dtype.kind == "f"
                 else torch.from_numpy(np.asarray(x)) for k, x in enumerate(inputs)]
    their_out = exported(*theirs_in)
    (their_out * torch.from_numpy(weights.astype(out.dtype))).sum().backward()
    np.testing.assert_allclose(their_out.detach().numpy(), out.data, rtol=tol, atol=tol, err_msg="output")
    theirs = dict(exported.named_parameters())
    ours = dict(module.named_parameters())
    assert set(theirs) == set(ours)  # the same names: PyTorch's state_dict names are ours
    for name, param in ours.items():
        assert tuple(theirs[name].shape) == param.shape, name  # PyTorch's layout is ours: nothing transposed
        np.testing.assert_allclose(theirs[name].grad.numpy(), param.grad, rtol=tol, atol=tol, err_msg=name)
    grad_tol = tol if grad_tol is None else grad_tol
    for k in grad_inputs:
        np.testing.assert_allclose(theirs_in[k].grad.numpy(), ours_in[k].grad, rtol=grad_tol, atol=grad_tol,
                                   err_msg=f"input {k}")
    return exported


def _pool_indices(x, *args):
    """The indices a max pooling of `x` picks (for unpooling; distinct in each plane)."""
    return nn.functional.max_pool2d(x, *args, return_indices=True)[1]


class _Sized(nn.Module):
    """An unpooling layer called with an output_size."""

    def __init__(self, unpool, size):
        super().__init__()
        self.unpool, self.size = unpool, size

    def forward(self, x, indices):
        return self.unpool(x, indices, output_size=self.size)


LAYERS = {
    "Linear": (lambda: nn.Linear(4, 3), lambda: [rows()]),
    "Linear without bias": (lambda: nn.Linear(4, 3, bias=False), lambda: [rows()]),
    "Linear on a batch of sequences": (lambda: nn.Linear(4, 3), lambda: [_rng().normal(size=(2, 5, 4))]),
    "BatchNorm1d": (lambda: nn.BatchNorm1d(4), lambda: [rows()]),
    "BatchNorm1d (N, C, L)": (lambda: nn.BatchNorm1d(3, momentum=0.3), lambda: [_rng().normal(size=(4, 3, 5))]),
    "BatchNorm1d not affine": (lambda: nn.BatchNorm1d(4, affine=False), lambda: [rows()]),
    "BatchNorm1d cumulative": (lambda: nn.BatchNorm1d(4, momentum=None), lambda: [rows()]),
    "BatchNorm2d": (lambda: nn.BatchNorm2d(3), lambda: [images()]),
    "Conv2d": (lambda: nn.Conv2d(3, 4, 3, padding=1), lambda: [images()]),
    "Conv2d strided, dilated, grouped": (lambda: nn.Conv2d(4, 6, (3, 2), stride=(2, 1), dilation=(1, 2), groups=2),
                                         lambda: [images(c=4, h=7, w=7)]),
    "Conv2d same padding, even kernel": (lambda: nn.Conv2d(3, 2, 4, padding="same", bias=False), lambda: [images()]),
    "Conv2d reflect padding": (lambda: nn.Conv2d(3, 2, 3, padding=1, padding_mode="reflect"), lambda: [images()]),
    "Conv2d circular padding": (lambda: nn.Conv2d(3, 2, 3, padding=2, padding_mode="circular"), lambda: [images()]),
    "Conv1d": (lambda: nn.Conv1d(3, 5, 3, stride=2, padding=1), lambda: [_rng().normal(size=(2, 3, 9))]),
    "MaxPool2d": (lambda: nn.MaxPool2d(2), lambda: [images()]),
    "MaxPool2d padded, ceil mode": (lambda: nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True), lambda: [images(h=8)]),
    "MaxPool2d dilated": (lambda: nn.MaxPool2d(2, stride=1, dilation=2), lambda: [images()]),
    "AvgPool2d": (lambda: nn.AvgPool2d(2), lambda: [images()]),
    "AvgPool2d padding not counted": (lambda: nn.AvgPool2d(3, 2, 1, count_include_pad=False), lambda: [images(w=7)]),
    "AvgPool2d ceil mode": (lambda: nn.AvgPool2d(2, ceil_mode=True), lambda: [images(h=5, w=7)]),
    "ConvTranspose2d": (lambda: nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1), lambda: [images()]),
    "ConvTranspose2d grouped, dilated, output_padding past the stride": (
        lambda: nn.ConvTranspose2d(4, 6, (3, 2), stride=(1, 2), dilation=(2, 1), output_padding=(1, 0), groups=2,
                                   bias=False), lambda: [images(c=4, h=5, w=4)]),
    "ConvTranspose1d": (lambda: nn.ConvTranspose1d(3, 2, 4, stride=3, padding=2), lambda: [_rng().normal(size=(2, 3, 6))]),
    "MaxUnpool2d": (lambda: nn.MaxUnpool2d(2), lambda: [images(h=3, w=3), _pool_indices(images(h=6, w=6), 2)]),
    "MaxUnpool2d to a given size": (lambda: _Sized(nn.MaxUnpool2d(3, stride=2, padding=1), (6, 7)),
                                    lambda: [images(h=3, w=4), _pool_indices(images(h=6, w=7), 3, 2, 1)]),
    "Upsample nearest": (lambda: nn.Upsample(scale_factor=2), lambda: [images(h=3, w=5)]),
    "Upsample nearest to a size": (lambda: nn.Upsample(size=(5, 9)), lambda: [images(h=3, w=4)]),
    "Upsample bilinear": (lambda: nn.Upsample(scale_factor=(1.5, 2.5), mode="bilinear"), lambda: [images(h=3, w=5)]),
    "Upsample bilinear, corners aligned": (lambda: nn.Upsample(size=(4, 7), mode="bilinear", align_corners=True),
                                           lambda: [images(h=3, w=5)]),
    "Upsample linear": (lambda: nn.Upsample(scale_factor=1.7, mode="linear"), lambda: [_rng().normal(size=(2, 3, 6))]),
    "AdaptiveAvgPool2d": (lambda: nn.AdaptiveAvgPool2d((2, 4)), lambda: [images(h=5, w=7)]),
    "AdaptiveAvgPool2d global": (lambda: nn.AdaptiveAvgPool2d(1), lambda: [images()]),
    "Dropout": (lambda: nn.Dropout(0.3), lambda: [rows()]),
    "Dropout2d": (lambda: nn.Dropout2d(0.3), lambda: [images()]),
    "Identity": (lambda: nn.Identity(), lambda: [rows()]),
    "Flatten": (lambda: nn.Flatten(), lambda: [images()]),
    "Flatten some axes": (lambda: nn.Flatten(0, 2), lambda: [images()]),
    "Sequential": (lambda: nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2)), lambda: [rows()]),
    "MLP with batchnorm and dropout": (lambda: nn.MLP([4, 8, 8, 3], batchnorm=True, dropout=0.2), lambda: [rows()]),
}
ACTIVATIONS = {
    "Sigmoid": nn.Sigmoid(), "Tanh": nn.Tanh(), "ReLU": nn.ReLU(), "LeakyReLU": nn.LeakyReLU(0.1),
    "PReLU": nn.PReLU(), "ELU": nn.ELU(0.5), "SELU": nn.SELU(), "GELU": nn.GELU(), "GELU tanh": nn.GELU("tanh"),
    "Softplus": nn.Softplus(2.0, 1.5), "SiLU": nn.SiLU(), "ReLU6": nn.ReLU6(), "Hardtanh": nn.Hardtanh(-0.5, 1.5),
    "Hardsigmoid": nn.Hardsigmoid(), "Hardswish": nn.Hardswish(), "Mish": nn.Mish(), "CELU": nn.CELU(0.5),
    "Softsign": nn.Softsign(), "LogSigmoid": nn.LogSigmoid(), "Softmin": nn.Softmin(dim=1),
    "Softmax": nn.Softmax(dim=1), "LogSoftmax": nn.LogSoftmax(dim=1),
}
for _name, _layer in ACTIVATIONS.items():
    LAYERS[_name] = (lambda layer=_layer: layer, lambda: [rows() * 3])  # spread over the kinks (-3, 0, 6 ...)
LAYERS["PReLU per channel"] = (lambda: nn.PReLU(3, init=0.1), lambda: [images()])


def test_every_layer_of_nn_is_covered():
    exported = {type(make()).__name__ for make, _ in LAYERS.values()}
    layers = {name for name in nn.__all__ if isinstance(getattr(nn, name), type)
              and issubclass(getattr(nn, name), nn.Module) and not name.endswith("Loss")}
    assert layers - exported == {"Module", "ModuleList", "MLP"} - exported  # a container; tested in a model below


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("name", LAYERS)
def test_each_layer_gives_our_outputs_and_gradients_in_pytorch(name, train):
    make, inputs = LAYERS[name]
    nn.manual_seed(0)
    layer = make()
    if isinstance(layer, (nn.BatchNorm1d,)) and not train:  # running statistics that are not 0 and 1
        layer.train()(_rng(3).normal(size=inputs()[0].shape) * 2 + 1)
    if "Dropout" in name and train:
        layer.train()
        exported = export.to_torch(layer, *inputs())
        assert type(exported).__mro__[1] is getattr(torch.nn, type(layer).__name__) and exported.training
        assert exported.p == layer.p
        return  # its random numbers are PyTorch's own: compared in evaluation mode
    if train:  # a model holding a dropout layer: that layer in evaluation mode (modes carry over layer by layer)
        layer.train()
        for module in layer.modules():
            if isinstance(module, (nn.Dropout, nn.Dropout2d)):
                module.eval()
        train = None
    # PyTorch's Hardsigmoid multiplies the gradient by 1/6 rounded to float32, even in float64
    compare(layer, inputs(), train=train, grad_tol=1e-7 if name == "Hardsigmoid" else None)


def test_pytorchs_hardsigmoid_gradient_is_the_one_rounded_to_float32():
    x = rows() * 3
    exported = export.to_torch(nn.Hardsigmoid(), x)
    inside = (x > -3) & (x < 3)
    t = torch.tensor(x, requires_grad=True)
    exported(t).sum().backward()
    np.testing.assert_array_equal(t.grad.numpy(), np.where(inside, float(np.float32(1 / 6)), 0.0))
    ours = Value(x)
    nn.Hardsigmoid()(ours).sum().backward()
    np.testing.assert_array_equal(ours.grad, np.where(inside, 1 / 6, 0.0))


def test_batch_norm_running_statistics_carry_over_and_move_the_same():
    nn.manual_seed(0)
    bn = nn.BatchNorm2d(3, momentum=0.2)
    bn.train()(images(seed=1))
    bn(images(seed=2))
    exported = export.to_torch(bn, images(seed=3))
    np.testing.assert_array_equal(exported.running_mean.numpy(), bn.running_mean)
    np.testing.assert_array_equal(exported.running_var.numpy(), bn.running_var)
    assert int(exported.num_batches_tracked) == int(bn.num_batches_tracked) == 2
    bn(images(seed=4))
    exported(torch.from_numpy(images(seed=4)))
    np.testing.assert_allclose(exported.running_mean.numpy(), bn.running_mean, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(exported.running_var.numpy(), bn.running_var, rtol=1e-12, atol=1e-14)
    # the export's own call ran in evaluation mode: it moved no statistics of ours
    assert int(bn.num_batches_tracked) == 3


def test_modes_and_requires_grad_carry_over_layer_by_layer():
    nn.manual_seed(0)
    model = nn.MLP([4, 8, 3], batchnorm=True, dropout=0.5)
    model.train()
    model[1].eval()  # a frozen batch norm inside a training model
    model[0].weight.requires_grad = False
    exported = export.to_torch(model, rows())
    assert [m.training for m in exported] == [m.training for m in model] == [True, False, True, True, True]
    assert exported.training is True
    assert [p.requires_grad for p in exported.parameters()] == [p.requires_grad for p in model.parameters()]
    assert exported[0].weight.requires_grad is False and exported[0].bias.requires_grad is True
    assert model.training and model[3].training  # the export's call in evaluation mode was undone


def test_float32_layers_stay_float32():
    nn.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(64, 2)).float()
    x = images().astype(np.float32)
    exported = compare(model.eval(), [x], train=False, tol=TOL32)
    assert {p.dtype for p in exported.parameters()} == {torch.float32}
    assert "dtype" not in export.torch_source(model, x)  # PyTorch's default: nothing to say


LOSSES = {
    "CrossEntropyLoss": (lambda: nn.CrossEntropyLoss(weight=np.array([1.0, 2.0, 0.5]), label_smoothing=0.1),
                         lambda: [rows(k=3), np.array([0, 2, 1, 1, 0, 2])]),
    "CrossEntropyLoss per pixel": (lambda: nn.CrossEntropyLoss(reduction="sum"),
                                   lambda: [images(c=3), _rng(1).integers(0, 3, size=(4, 6, 6))]),
    "NLLLoss": (lambda: nn.NLLLoss(ignore_index=1), lambda: [np.log(_rng().dirichlet(np.ones(3), 6)), np.array([0, 1, 2, 2, 0, 1])]),
    "BCELoss": (lambda: nn.BCELoss(), lambda: [_rng().uniform(0.05, 0.95, (6, 2)), _rng(1).uniform(0, 1, (6, 2))]),
    "BCEWithLogitsLoss": (lambda: nn.BCEWithLogitsLoss(pos_weight=np.array([2.0, 0.5])),
                          lambda: [rows(k=2), _rng(1).uniform(0, 1, (6, 2))]),
    "MSELoss": (lambda: nn.MSELoss(), lambda: [rows(), rows(seed=1)]),
    "L1Loss": (lambda: nn.L1Loss(reduction="none"), lambda: [rows(), rows(seed=1)]),
    "KLDivLoss": (lambda: nn.KLDivLoss(reduction="batchmean"),
                  lambda: [np.log(_rng().dirichlet(np.ones(3), 6)), _rng(1).dirichlet(np.ones(3), 6)]),
    "MultiMarginLoss": (lambda: nn.MultiMarginLoss(p=2, margin=0.5), lambda: [rows(k=3), np.array([0, 2, 1, 1, 0, 2])]),
}


def test_every_loss_of_nn_is_covered():
    losses = {name for name in nn.__all__ if name.endswith("Loss")}
    assert losses == {type(make()).__name__ for make, _ in LOSSES.values()}


@pytest.mark.parametrize("name", LOSSES)
def test_each_loss_gives_our_value_and_gradient_in_pytorch(name):
    make, inputs = LOSSES[name]
    compare(make(), inputs(), train=True)


# --------------------------------------------------------------------------
# ONNX Runtime
# --------------------------------------------------------------------------
@pytest.mark.parametrize("name", LAYERS)
def test_each_layer_gives_our_outputs_in_onnx_runtime(name, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    make, inputs = LAYERS[name]
    nn.manual_seed(0)
    layer = make().float()
    if isinstance(layer, nn.BatchNorm1d):
        layer.train()(_rng(3).normal(size=inputs()[0].shape).astype(np.float32) * 2 + 1)
    x, *more = [a.astype(np.float32) if a.dtype.kind == "f" else a for a in inputs()]  # (unpooling's indices)
    layer.train()  # ONNX is for inference: the export is the layer in evaluation mode
    try:
        export.to_onnx(layer, x, tmp_path / "layer.onnx", *more)
    except export.ExportError as error:
        assert "circular" in str(error) and "'pad'" in str(error)  # opset 18 has no circular padding
        return
    session = ort.InferenceSession(str(tmp_path / "layer.onnx"), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {i.name: a for i, a in zip(session.get_inputs(), [x, *more])})
    ours = layer.eval()(x, *more).data
    assert got.dtype == np.float32 and got.shape == ours.shape
    np.testing.assert_allclose(got, ours, rtol=TOL32, atol=TOL32)
