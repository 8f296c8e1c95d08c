"""Models of one's own and functions of Values, exported: the source a person
would write, the same numbers in PyTorch (float64, 1e-10) and ONNX Runtime
(float32, 1e-5), safe names and exact constants, and clear refusals."""

import sys

import numpy as np
import pytest

import autograd_core as ac
import nn
from autograd_core import Value, export
from autograd_core.export import ExportError

torch = pytest.importorskip("torch")

TOL64, TOL32 = 1e-10, 1e-5


class Block(nn.Module):
    """A model of one's own: named layers, a parameter of its own, a layer used
    twice, a list of layers looped over, and operations between the layers."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 8)
        self.norm = nn.BatchNorm1d(8)
        self.hidden = nn.ModuleList([nn.Linear(8, 8), nn.Linear(8, 8)])
        self.act = nn.GELU()
        self.drop = nn.Dropout(0.1)
        self.head = nn.Linear(8, 3)
        self.scale = nn.Parameter(np.array([0.5, -1.0, 2.0]))

    def forward(self, x):
        h = self.act(self.norm(self.fc1(x)))
        for layer in self.hidden:
            h = h + self.act(layer(h))  # a residual connection
        h = self.act(self.hidden[0](h))  # the first hidden layer again
        return self.head(self.drop(h)) * self.scale + ac.tanh(x[:, :3])


def _weights(shape):
    return np.random.default_rng(7).normal(size=shape)


def _our_gradients(fn, inputs, params):
    values = [Value(x) for x in inputs]
    for p in params:
        p.zero_grad()
    out = fn(*values)
    (out * _weights(out.shape)).sum().backward()
    return out.data, [v.grad for v in values], [p.grad for p in params]


def _their_gradients(module, inputs, params):
    tensors = [torch.tensor(x, requires_grad=True) for x in inputs]
    out = module(*tensors)
    (out * torch.from_numpy(_weights(tuple(out.shape)))).sum().backward()
    return out.detach().numpy(), [t.grad.numpy() for t in tensors], [p.grad.numpy() for p in params]


def _same(a, b, tol=TOL64):
    np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=tol, atol=tol)


def test_a_model_of_ones_own_keeps_its_layers_and_gives_our_numbers():
    nn.manual_seed(0)
    model = Block()
    model.train()
    model.drop.eval()  # (its random numbers would be PyTorch's own)
    x = np.random.default_rng(0).normal(size=(6, 4))
    exported = export.to_torch(model, x)
    ours = dict(model.named_parameters())
    theirs = dict(exported.named_parameters())
    assert set(theirs) == set(ours)  # the same state_dict names
    out, (gx,), grads = _our_gradients(model, [x], list(ours.values()))
    their_out, (their_gx,), their_grads = _their_gradients(exported, [x], [theirs[n] for n in ours])
    _same(out, their_out)
    _same(gx, their_gx)
    for ours_g, theirs_g in zip(grads, their_grads):
        _same(ours_g, theirs_g)
    np.testing.assert_allclose(exported.norm.running_mean.numpy(), model.norm.running_mean, rtol=1e-12)


def test_the_source_is_what_a_person_would_write():
    nn.manual_seed(0)
    source = export.torch_source(Block(), np.zeros((6, 4)))
    assert "class Block(nn.Module):" in source
    for line in ["self.fc1 = nn.Linear(4, 8, dtype=torch.float64)", "self.norm = nn.BatchNorm1d(8, dtype=torch.float64)",
                 "self.act = nn.GELU()", "self.drop = nn.Dropout(p=0.1)",
                 "self.scale = nn.Parameter(torch.zeros((3,), dtype=torch.float64))",
                 "h = self.fc1(x)", "h = self.norm(h)", "h = self.act(h)", "self.hidden[0](h)", "self.hidden[1](",
                 "h = self.head(h)", "h = h * self.scale", "x = x[:, :3]", "x = torch.tanh(x)", "h = h + x",
                 "return h"]:
        assert line in source, line
    assert "self.hidden = nn.ModuleList([" in source
    lines = source.split("def forward(self, x):\n")[1].strip().splitlines()
    assert len(lines) == 18  # one line per step: 11 layer calls, 6 operations, the return
    compile(source, "exported", "exec")


W = Value(np.random.default_rng(1).normal(size=(4, 3)), label="W")
b = Value(np.array([0.1, -0.2, 0.3]), label="b")


def leaky_net(x):
    z = x @ W + b
    return ac.where(z > 0, z, z * 0.1).logsumexp(axis=1)


def test_a_function_of_values_becomes_a_forward_of_torch_calls():
    x = np.random.default_rng(0).normal(size=(5, 4))
    source = export.torch_source(leaky_net, x)
    assert "class LeakyNet(nn.Module):" in source
    assert "self.W = nn.Parameter(torch.zeros((4, 3), dtype=torch.float64))" in source
    for line in ["x = x @ self.W", "x = x + self.b", "mask = x > 0", "h = x * 0.1", "x = torch.where(mask, x, h)",
                 "x = torch.logsumexp(x, dim=1)"]:
        assert line in source, line
    exported = export.to_torch(leaky_net, x)
    out, (gx,), (gW, gb) = _our_gradients(leaky_net, [x], [W, b])
    their_out, (their_gx,), (their_gW, their_gb) = _their_gradients(exported, [x], [exported.W, exported.b])
    for a, c in [(out, their_out), (gx, their_gx), (gW, their_gW), (gb, their_gb)]:
        _same(a, c)


def test_the_weight_layout_is_pytorchs_where_ours_is_and_a_hand_written_product_stays_as_written():
    # nn.Linear keeps (out_features, in_features), as PyTorch: nothing is transposed on the way
    layer = nn.Linear(4, 3)
    exported = export.to_torch(layer, np.zeros((2, 4)))
    np.testing.assert_array_equal(exported.weight.detach().numpy(), layer.weight.data)
    # x @ W with W of shape (in, out) is written as it is: W keeps its shape; nn.Linear's weight would be W.T
    exported = export.to_torch(leaky_net, np.zeros((2, 4)))
    assert tuple(exported.W.shape) == (4, 3)
    np.testing.assert_array_equal(exported.W.detach().numpy(), W.data)


def _random_chain(seed):
    """A random function: a few operations drawn from a list, on a parameter and the input."""
    rng = np.random.default_rng(seed)
    p = Value(rng.normal(size=(3, 4)), label="p")
    steps = [
        lambda h: h * p, lambda h: h + p.tanh(), lambda h: (h * h + 1.0).sqrt(), lambda h: ac.sigmoid(h) - 0.5,
        lambda h: h.softmax(axis=-1), lambda h: h.exp().log1p(), lambda h: ac.maximum(h, p), lambda h: h.abs() ** 1.5,
        lambda h: ac.clip(h, -0.5, 0.7), lambda h: (h @ p.T) @ p * 0.1, lambda h: h.log_softmax(axis=0),
        lambda h: ac.concatenate([h[:, :2], h[:, 2:] * 2.0], axis=1), lambda h: h.reshape(4, 3).T,
        lambda h: h - h.mean(axis=1, keepdims=True), lambda h: h / (h.var(axis=0) + 1.0), lambda h: ac.erf(h) * p,
        lambda h: ac.stack([h, h * p], axis=0).sum(axis=0), lambda h: h.swapaxes(0, 1).swapaxes(0, 1) ** 2,
    ]
    chosen = rng.choice(len(steps), size=4, replace=False)

    def fn(x):
        h = x * p
        for k in chosen:
            h = steps[k](h)
        return h

    return fn, p, rng.normal(size=(3, 4))


@pytest.mark.parametrize("seed", range(20))
def test_random_chains_of_ops_give_our_outputs_and_parameter_gradients(seed, tmp_path):
    fn, p, x = _random_chain(seed)
    exported = export.to_torch(fn, x)
    out, (gx,), (gp,) = _our_gradients(fn, [x], [p])
    their_out, (their_gx,), (their_gp,) = _their_gradients(exported, [x], [exported.p])
    for a, c in [(out, their_out), (gx, their_gx), (gp, their_gp)]:
        _same(a, c)
    ort = pytest.importorskip("onnxruntime")
    x32 = x.astype(np.float32)
    p.data = p.data.astype(np.float32)
    export.to_onnx(fn, x32, tmp_path / "chain.onnx")
    session = ort.InferenceSession(str(tmp_path / "chain.onnx"), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"x": x32})
    _same(fn(Value(x32)).data, got, TOL32)


def test_onnx_of_a_model_of_ones_own_is_the_model_in_evaluation_mode(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    nn.manual_seed(0)
    model = Block()
    x = np.random.default_rng(0).normal(size=(6, 4))
    model.train()(x)  # running statistics that are not 0 and 1
    proto = export.to_onnx(model, x, tmp_path / "block.onnx")  # a float64 model, written in float32
    assert model.training  # left as it was
    assert {init.data_type for init in proto.graph.initializer} <= {1, 7}  # FLOAT and INT64
    session = ort.InferenceSession(str(tmp_path / "block.onnx"), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"x": x.astype(np.float32)})
    ours = model.float().eval()(Value(x.astype(np.float32))).data
    _same(ours, got, TOL32)


def test_onnx_initializers_are_named_after_the_parameters(tmp_path):
    pytest.importorskip("onnx")
    proto = export.to_onnx(leaky_net, np.zeros((2, 4), dtype=np.float32), tmp_path / "f.onnx")
    names = {init.name for init in proto.graph.initializer}
    assert {"W", "b"} <= names
    assert [i.name for i in proto.graph.input] == ["x"] and [o.name for o in proto.graph.output] == ["output"]


# --------------------------------------------------------------------------
# Safety: names become identifiers, constants read back exactly
# --------------------------------------------------------------------------
HOSTILE = "x); import os; os.system('echo pwned') #"


def test_names_a_user_gave_become_checked_identifiers():
    table = {HOSTILE: Value(np.ones(3)), "W₁": Value(np.ones(3))}
    w = Value(np.ones(3), label="class")

    def fn(x):
        h = x * table[HOSTILE] + w * table["W₁"]
        h.label = '"""; raise SystemExit #'
        return h

    source = export.torch_source(fn, np.zeros(3))
    for line in ["self.class_ = nn.Parameter", "self.table_W1 = nn.Parameter",
                 "self.table_x_import_os_os_system_echo_pwned = nn.Parameter", "raise_SystemExit = x + h"]:
        assert line in source, line
    assert not any(c in source for c in "!;'\"#₁")  # nothing of the strings but letters, digits and _
    compile(source, "exported", "exec")
    exported = export.to_torch(fn, np.zeros(3))
    assert exported(torch.zeros(3, dtype=torch.float64)).tolist() == [1.0, 1.0, 1.0]


def test_layer_names_a_user_gave_become_checked_identifiers():
    class Named(nn.Module):
        def __init__(self):
            super().__init__()
            self.add_module("my layer!", nn.Linear(2, 2))
            self.add_module("0", nn.ReLU())

        def forward(self, x):
            return self._modules["0"](self._modules["my layer!"](x))

    source = export.torch_source(Named(), np.zeros((1, 2)))
    assert "self.my_layer = nn.Linear" in source and "self.layer0 = nn.ReLU()" in source
    assert "!" not in source
    exported = export.to_torch(Named(), np.zeros((1, 2)))
    assert exported(torch.zeros(1, 2, dtype=torch.float64)).shape == (1, 2)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_constants_read_back_exactly(dtype):
    constants = [0.1, 1 / 3, -2.5e-300 if dtype == np.float64 else -2.5e-30, 1e16, np.inf]

    def fn(x):
        h = x
        for c in constants[:-1]:
            h = h * c
        return ac.minimum(h, constants[-1]) + np.array([0.1, 0.7, 1 / 3], dtype=dtype)

    x = np.array([1.0, -2.0, 3.0], dtype=dtype)
    exported = export.to_torch(fn, x)
    ours = fn(Value(x)).data
    theirs = exported(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_array_equal(theirs, ours)  # bit for bit
    source = export.torch_source(fn, x)
    assert "float('inf')" in source
    assert "x = x * 0.1" in source  # a float32 0.1 too: the shortest text that gives its bits back
    third = "0.3333333333333333" if dtype == np.float64 else "0.33333334"
    assert f"torch.tensor([0.1, 0.7, {third}], dtype=torch.{np.dtype(dtype).name})" in source


def test_strings_in_parameters_are_written_as_literals():
    x = np.ones((2, 3))
    source = export.torch_source(lambda a: ac.einsum("ij,ij->i", a, a), x)
    assert "torch.einsum('ij,ij->i', a, a)" in source


# --------------------------------------------------------------------------
# What is refused, and how
# --------------------------------------------------------------------------
def test_an_op_without_a_form_is_refused_with_its_name(tmp_path):
    with pytest.raises(ExportError, match=r"'scatter' has no PyTorch form"):
        export.to_torch(lambda g: ac.scatter(g, shape=(4,), index=np.array([0, 0, 2])), np.ones(3))
    pytest.importorskip("onnx")
    with pytest.raises(ExportError, match=r"'sort' has no ONNX form"):
        export.to_onnx(lambda x: ac.sort(x), np.ones(3), tmp_path / "sort.onnx")
    assert not (tmp_path / "sort.onnx").exists()


def test_random_numbers_drawn_in_a_function_are_refused():
    with pytest.raises(ExportError, match="mask"):
        export.to_torch(lambda x: nn.functional.dropout(x, 0.5, training=True), np.ones((2, 3)))


def test_reading_a_traced_value_is_refused_naming_the_line():
    def fn(x):
        return x * 2.0 if float(x.sum()) > 0 else x  # Python deciding on the example's numbers

    with pytest.raises(ExportError, match=r"export: float\(\) reads a traced value.*test_export_models.py"):
        export.to_torch(fn, np.ones(2))


def test_a_refusal_the_models_own_code_catches_is_refused_all_the_same():
    def fn(x):
        try:
            scale = 2.0 if float(x.sum()) > 0 else 0.5
        except Exception:  # noqa: BLE001 (the user's defensive code)
            scale = 1.0
        return x * scale

    with pytest.raises(ExportError, match=r"export: float\(\) reads a traced value.*caught this error"):
        export.to_torch(fn, np.ones(2))


def test_a_model_must_return_values_and_take_an_example():
    with pytest.raises(ExportError, match="must return a Value"):
        export.to_torch(lambda x: 3.0, np.ones(2))
    with pytest.raises(ExportError, match="container of layers"):
        export.to_torch(nn.ModuleList([nn.Linear(2, 2)]), np.ones((1, 2)))


def test_without_pytorch_the_message_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # as if PyTorch were not installed
    with pytest.raises(ImportError, match=r'pip install -e "\.\[export\]"'):
        export.to_torch(nn.Linear(2, 2), np.ones((1, 2)))
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match=r"'onnx'.*pip install -e \"\.\[export\]\""):
        export.to_onnx(nn.Linear(2, 2), np.ones((1, 2)), "never.onnx")


def test_constants_are_buffers_that_move_with_the_module():
    # "meta" tensors stand for another device: a constant left on the CPU would not mix with them
    mask = np.array([True, False, True])

    def fn(x):
        picked = x[:, np.array([2, 0])] + np.arange(24.0).reshape(12, 2)[:4]   # an index, a larger constant
        return ac.where(mask, x[:, :3], 0.0).sum(axis=1) + picked.sum(axis=1) * np.array([1.0, 2.0, 3.0, 4.0])

    x = np.random.default_rng(0).normal(size=(4, 3))
    exported = export.to_torch(fn, x)
    _same(fn(Value(x)).data, exported(torch.from_numpy(x)).detach().numpy())
    out = exported.to("meta")(torch.empty(4, 3, dtype=torch.float64, device="meta"))
    assert out.device.type == "meta" and tuple(out.shape) == (4,)


# --------------------------------------------------------------------------
# Max pooling's indices: computed from the data, so they travel with it or are refused
# --------------------------------------------------------------------------
class Unpooling(nn.Module):
    """An encoder-decoder that puts each maximum back where it was."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, padding=1)
        self.pool = nn.MaxPool2d(2, return_indices=True)
        self.unpool = nn.MaxUnpool2d(2)

    def forward(self, x):
        values, indices = self.pool(self.conv(x))
        return self.unpool(values * 2.0, indices)


def test_pooling_indices_pass_from_layer_to_layer_in_pytorch():
    nn.manual_seed(0)
    model = Unpooling()
    rng = np.random.default_rng(0)
    exported = export.to_torch(model, rng.normal(size=(2, 2, 6, 6)))
    source = export.torch_source(model, rng.normal(size=(2, 2, 6, 6)))
    assert "self.pool = nn.MaxPool2d(2, return_indices=True)" in source
    assert ", out1 = self.pool(" in source and "self.unpool(" in source and ", out1)" in source
    x = rng.normal(size=(2, 2, 6, 6))  # other data: other maxima, found again by PyTorch
    np.testing.assert_allclose(exported(torch.from_numpy(x)).detach().numpy(), model(x).data, rtol=TOL64, atol=TOL64)


def test_indices_given_to_the_model_are_its_inputs_in_pytorch_and_onnx(tmp_path):
    ort = pytest.importorskip("onnxruntime")

    def unpool(values, indices):
        return ac.max_unpool2d(values, indices, 2)

    rng = np.random.default_rng(1)
    values = rng.normal(size=(1, 2, 2, 2))
    indices = np.stack([rng.permutation(16)[:4] for _ in range(2)]).reshape(1, 2, 2, 2)
    others = np.stack([rng.permutation(16)[:4] for _ in range(2)]).reshape(1, 2, 2, 2)  # a call with other indices
    expected = unpool(values, others).data
    exported = export.to_torch(unpool, values, indices)
    np.testing.assert_array_equal(exported(torch.from_numpy(values), torch.from_numpy(others)).numpy(), expected)
    export.to_onnx(unpool, values, tmp_path / "unpool.onnx", indices)
    session = ort.InferenceSession(str(tmp_path / "unpool.onnx"), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"values": values.astype(np.float32), "indices": others})
    np.testing.assert_allclose(got, expected, rtol=TOL32, atol=TOL32)


def test_indices_made_from_traced_values_outside_layers_are_refused(tmp_path):
    def autoencode(x):
        values, indices = ac.max_pool2d(x, 2, return_indices=True)
        return ac.max_unpool2d(values, indices, 2)

    x = np.random.default_rng(2).normal(size=(1, 1, 4, 4))
    with pytest.raises(ExportError, match=r"makes an array in NumPy from traced values \(indices"):
        export.to_torch(autoencode, x)
    with pytest.raises(ExportError, match=r"makes an array in NumPy from traced values \(indices\)"):
        export.to_onnx(autoencode, x, tmp_path / "refused.onnx")
    with pytest.raises(ExportError, match=r"makes an array in NumPy from traced values \(indices\)"):
        export.to_onnx(Unpooling(), np.zeros((1, 2, 4, 4)), tmp_path / "refused.onnx")  # ONNX has no layers
