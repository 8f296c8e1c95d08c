"""Module, Parameter, Sequential, MLP: discovery, names, modes, state dicts, scopes."""

import re

import numpy as np
import pytest

import nn
from autograd_core import Value
from autograd_core.viz import collect_values


class TwoLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 5)
        self.fc2 = nn.Linear(5, 3)
        self.scale = nn.Parameter(np.array(2.0))
        self.register_buffer("calls", np.array(0))

    def forward(self, x):
        return self.fc2(self.fc1(x).relu()) * self.scale


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = TwoLayer()
        self.head = nn.Sequential(nn.Linear(3, 2), nn.Tanh())

    def forward(self, x):
        return self.head(self.encoder(x))


def test_parameters_found_from_attributes_with_pytorch_names():
    model = Encoder()
    names = [name for name, _ in model.named_parameters()]
    assert names == ["encoder.scale", "encoder.fc1.weight", "encoder.fc1.bias", "encoder.fc2.weight",
                     "encoder.fc2.bias", "head.0.weight", "head.0.bias"]
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in model.parameters())
    assert sum(p.size for p in model.parameters()) == 4 * 5 + 5 + 5 * 3 + 3 + 1 + 3 * 2 + 2


def test_parameter_order_follows_pytorch_own_params_first():
    model = Encoder()
    names = [name for name, _ in model.encoder.named_parameters()]
    # PyTorch lists a module's own parameters before its children's
    assert names == ["scale", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]


def test_shared_parameter_listed_once():
    layer = nn.Linear(2, 2)
    model = nn.Sequential(layer, nn.ReLU(), layer)
    assert len(list(model.parameters())) == 2


def test_labels_are_dotted_names_and_user_labels_survive():
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert model[0].weight.label == "0.weight"
    assert model[2].bias.label == "2.bias"
    outer = Encoder()
    assert outer.encoder.fc1.weight.label == "encoder.fc1.weight"
    assert outer.head[0].weight.label == "head.0.weight"
    mine = nn.Linear(2, 2)
    mine.weight.label = "W"
    wrapper = nn.Sequential(mine)
    assert wrapper[0].weight.label == "W" and wrapper[0].bias.label == "0.bias"


def test_forward_runs_in_module_path_scopes():
    model = Encoder()
    out = model(np.ones((2, 4)))
    assert out.scope == "head.1"
    scopes = {node.scope for node in collect_values([out]) if node.inputs}
    assert {"encoder.fc1", "encoder.fc2", "encoder", "head.0", "head.1"} <= scopes
    seq = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    y = seq(np.ones((1, 2)))
    assert y.scope == "1" and y.inputs[0].scope == "0"


@pytest.mark.parametrize("sizes", [(-1, 2), (2.5, 2), (4, "3"), (True, 2)])
def test_linear_refuses_sizes_that_are_not_whole_numbers(sizes):
    with pytest.raises(ValueError, match=r"Linear: (in|out)_features must be a whole number >= 0"):
        nn.Linear(*sizes)


def test_load_state_dict_refuses_what_is_not_a_mapping():
    layer = nn.Linear(2, 1)
    with pytest.raises(TypeError, match=r"load_state_dict into Linear: expects a mapping of names to arrays.*got list"):
        layer.load_state_dict([np.ones((1, 2)), np.ones(1)])


def cluster_labels(source):
    """The labels of the clusters (id c0, c1, ...) in a drawing's DOT source."""
    return sorted(label.strip('"') for label in re.findall(r' id=c\d+ label=("[^"]*"|\S+)', source))


def test_graph_clusters_are_titled_by_the_layer():
    from autograd_core import draw_graph

    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3, bias=False), nn.BatchNorm1d(3))
    source = draw_graph(model(np.ones((2, 4))).sum()).source
    assert cluster_labels(source) == ["0: Linear(4, 16)", "1: ReLU()", "2: Linear(16, 3, bias=False)",
                                      "3: BatchNorm1d(3)"]
    nested = Encoder()
    source = draw_graph(nested(np.ones((2, 4))).sum()).source
    assert cluster_labels(source) == ["0: Linear(3, 2)", "1: Tanh()", "encoder: TwoLayer", "fc1: Linear(4, 5)",
                                      "fc2: Linear(5, 3)", "head: Sequential"]


def test_layers_of_a_module_list_get_their_full_path():
    class Stack(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([nn.Linear(2, 2), nn.Linear(2, 1)])

        def forward(self, x):
            for layer in self.layers:
                x = layer(x)
            return x

    model = Stack()
    out = model(np.ones((3, 2)))
    assert out.scope == "layers.1"
    assert [name for name, _ in model.named_parameters()] == [
        "layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias"]
    assert model.layers[1].weight.label == "layers.1.weight"


def test_train_eval_propagate_and_return_self():
    model = nn.MLP([3, 4, 2], batchnorm=True, dropout=0.5)
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())


def test_zero_grad_forgets_every_gradient():
    model = nn.MLP([3, 4, 2])
    nn.CrossEntropyLoss()(model(np.ones((2, 3))), np.array([0, 1])).backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    model.zero_grad(set_to_none=False)
    assert all(np.all(p.grad == 0) for p in model.parameters())


def test_state_dict_roundtrip_and_strict_errors():
    source, target = nn.MLP([4, 6, 3], batchnorm=True), nn.MLP([4, 6, 3], batchnorm=True)
    source(np.random.default_rng(0).normal(size=(8, 4)))  # moves the running statistics
    state = source.state_dict()
    assert list(state) == ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
                           "1.num_batches_tracked", "3.weight", "3.bias"]
    target.load_state_dict(state)
    for key, value in target.state_dict().items():
        np.testing.assert_array_equal(value, state[key])
    x = np.ones((2, 4))
    np.testing.assert_array_equal(source.eval()(x).data, target.eval()(x).data)

    with pytest.raises(ValueError, match=r"0\.weight: shape \(6, 4\) in the state dict, \(7, 4\) in the model"):
        nn.MLP([4, 7, 3], batchnorm=True).load_state_dict(state)
    del state["3.bias"]
    state["extra"] = np.zeros(1)
    with pytest.raises(ValueError, match=r"missing keys: 3\.bias.*unexpected keys: extra"):
        target.load_state_dict(state)
    result = target.load_state_dict(state, strict=False)
    assert result.missing_keys == ["3.bias"] and result.unexpected_keys == ["extra"]


def test_state_dict_is_a_copy():
    layer = nn.Linear(2, 2)
    state = layer.state_dict()
    state["weight"][...] = 99
    assert not np.any(layer.weight.data == 99)


def test_repr_is_readable():
    text = repr(nn.Sequential(nn.Linear(2, 3), nn.LeakyReLU(0.2)))
    assert text == (
        "Sequential(\n  (0): Linear(in_features=2, out_features=3, bias=True)\n"
        "  (1): LeakyReLU(negative_slope=0.2)\n)"
    )


def test_assigning_before_init_says_what_to_do():
    class Broken(nn.Module):
        def __init__(self):
            self.w = nn.Parameter([1.0])

    with pytest.raises(AttributeError, match="super\\(\\).__init__\\(\\)"):
        Broken()


def test_parameter_copies_and_promotes():
    data = np.array([1, 2])
    p = nn.Parameter(data)
    assert p.dtype == np.float64 and p.requires_grad
    data[0] = 5
    assert p.data[0] == 1
    assert nn.Parameter(np.zeros(2, dtype=np.float32)).dtype == np.float32


def test_mlp_layout_and_activation_names():
    model = nn.MLP([4, 8, 8, 3], activation="tanh", batchnorm=True, dropout=0.2)
    kinds = [type(m).__name__ for m in model]
    assert kinds == ["Linear", "BatchNorm1d", "Tanh", "Dropout", "Linear", "BatchNorm1d", "Tanh", "Dropout", "Linear"]
    assert [type(m).__name__ for m in nn.MLP([2, 3, 1], activation=nn.ELU)] == ["Linear", "ELU", "Linear"]
    with pytest.raises(ValueError, match="unknown activation 'swishy'"):
        nn.MLP([2, 3, 1], activation="swishy")
    assert model(np.ones((5, 4))).shape == (5, 3)


def test_module_accepts_values_and_arrays():
    layer = nn.Linear(3, 2)
    x = Value(np.ones((4, 3)))
    out = layer(x)
    out.sum().backward()
    np.testing.assert_allclose(x.grad, np.tile(layer.weight.data.sum(axis=0), (4, 1)))
    np.testing.assert_allclose(layer(np.ones((4, 3))).data, out.data)


def test_linear_shape_error_names_both_shapes():
    with pytest.raises(ValueError, match=r"linear: input of shape \(2, 5\).*weight of shape \(3, 4\)"):
        nn.Linear(4, 3)(np.ones((2, 5)))


def test_manual_seed_makes_initialisation_repeatable():
    nn.manual_seed(7)
    a = nn.MLP([3, 5, 2]).state_dict()
    nn.manual_seed(7)
    b = nn.MLP([3, 5, 2]).state_dict()
    c = nn.MLP([3, 5, 2]).state_dict()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["0.weight"], c["0.weight"])


def test_astype_converts_parameters_and_buffers():
    model = nn.MLP([2, 3, 1], batchnorm=True).astype(np.float32)
    assert all(p.dtype == np.float32 for p in model.parameters())
    assert model[1].running_mean.dtype == np.float32
    assert model(np.ones((4, 2), dtype=np.float32)).dtype == np.float32


def test_float32_models_stay_float32_end_to_end():
    model = nn.MLP([4, 8, 3], batchnorm=True, dropout=0.2, activation="gelu", dtype=np.float32)
    X, y = nn.data.load_iris()
    out = model(X.astype(np.float32))
    loss = nn.CrossEntropyLoss(label_smoothing=0.1)(out, y)
    loss.backward()
    assert out.dtype == loss.dtype == np.float32
    assert all(p.grad.dtype == np.float32 for p in model.parameters())
    assert model[1].running_var.dtype == np.float32
    for loss_fn in (nn.BCEWithLogitsLoss(), nn.MSELoss(), nn.KLDivLoss(reduction="batchmean")):
        assert loss_fn(out, np.full(out.shape, 0.3, dtype=np.float32)).dtype == np.float32


def test_plain_values_are_not_parameters():
    class Holder(nn.Module):
        def __init__(self):
            super().__init__()
            self.constant = Value(np.ones(2))  # as in PyTorch, only Parameters are learned
            self.weight = nn.Parameter(np.ones(2))

    assert [name for name, _ in Holder().named_parameters()] == ["weight"]


def test_reassigned_parameter_keeps_its_place():
    layer = nn.Linear(2, 3)
    layer.weight = nn.Parameter(np.zeros((3, 2)))
    assert [name for name, _ in layer.named_parameters()] == ["weight", "bias"]
    assert not layer.weight.data.any()
    with pytest.raises(TypeError, match="cannot assign ndarray to parameter 'bias'"):
        layer.bias = np.zeros(3)


def test_the_registries_are_what_attribute_reads_see():
    # as in PyTorch, code that edits a registry directly (layer surgery) is seen by
    # attribute reads and by forward
    layer = nn.Linear(2, 3)
    weight = nn.Parameter(np.zeros((3, 2)))
    layer._parameters["weight"] = weight
    assert layer.weight is weight
    del layer._parameters["bias"]
    with pytest.raises(AttributeError, match="no attribute 'bias'"):
        layer.bias  # noqa: B018
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
    model._modules["1"] = nn.Tanh()
    assert isinstance(getattr(model, "1"), nn.Tanh)
    assert np.allclose(model(np.ones((1, 2))).data, np.tanh(model[0](np.ones((1, 2))).data))


def test_frozen_layers_get_no_gradient():
    model = nn.MLP([3, 4, 2])
    model[0].requires_grad_(False)
    nn.CrossEntropyLoss()(model(np.ones((2, 3))), np.array([0, 1])).backward()
    assert model[0].weight.grad is None and model[0].bias.grad is None
    assert model[2].weight.grad is not None
    assert model.float()[0].weight.dtype == np.float32 and model.double()[0].weight.dtype == np.float64
