"""Every operation, exported on its own: PyTorch's outputs and gradients equal
the engine's (float64, to 1e-10), and ONNX Runtime's outputs too (float32, to
1e-5). The inputs are drawn as the engine's own tests draw them
(``tests/engine/engine_op_cases.py``), so every registered op is covered; and
random chains of ops with parameters check the gradients of parameters."""

import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import autograd_core as ac
from autograd_core import Value, export
from autograd_core.export import ExportError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
from engine_op_cases import ALL_CASES, all_registered_ops  # noqa: E402

torch = pytest.importorskip("torch")

FEW = settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
NO_TORCH_FORM = {"scatter"}  # the backward of indexing: no PyTorch function does it in one call
NO_ONNX_FORM = {"scatter", "cumprod", "sort", "topk", "scatter_add", "roll", "repeat", "diag", "unfold", "fold",
                "cummax", "cummin", "logcumsumexp", "scatter_elements", "scatter_reduce"}


def _case_ops(kind):
    return {c.op for c in ALL_CASES if (c.op_object.as_torch if kind == "torch" else c.op_object.as_onnx) is not None}


def test_the_ops_without_a_form_are_the_listed_ones():
    names = {op.name for op in all_registered_ops()}
    with_torch = {op.name for op in all_registered_ops() if op.as_torch is not None}
    with_onnx = {op.name for op in all_registered_ops() if op.as_onnx is not None}
    assert names - with_torch == NO_TORCH_FORM
    assert names - with_onnx == NO_ONNX_FORM


def _ours(fn, arrays, seed_weights):
    values = [Value(a) for a in arrays]
    out = fn(*values)
    weights = seed_weights(out.shape)
    (out * weights).sum().backward()
    return out.data, [v.grad for v in values], weights


def _theirs(module, arrays, weights):
    tensors = [torch.tensor(a, requires_grad=True) for a in arrays]
    out = module(*tensors)
    (out * torch.from_numpy(np.asarray(weights, dtype=arrays[0].dtype))).sum().backward()
    grads = [None if t.grad is None else t.grad.numpy() for t in tensors]
    return out.detach().numpy(), grads


def _close(ours, theirs, tolerance, what):
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    assert ours.shape == theirs.shape, (what, ours.shape, theirs.shape)
    np.testing.assert_allclose(theirs, ours, rtol=tolerance, atol=tolerance, err_msg=what)


TORCH_CASES = [c for c in ALL_CASES if c.op_object.as_torch is not None]


@pytest.mark.parametrize("case", TORCH_CASES, ids=lambda c: c.id)
@FEW
@given(data=st.data())
def test_each_op_in_pytorch_gives_our_outputs_and_gradients(case, data):
    arrays, params = case.draw(data, case.second_order_elements)
    fn = lambda *values: case.build(params, *values)  # noqa: E731
    module = export.to_torch(fn, *arrays)
    rng = np.random.default_rng(0)
    out, grads, weights = _ours(fn, arrays, lambda shape: rng.standard_normal(shape))
    their_out, their_grads = _theirs(module, arrays, weights)
    _close(out, their_out, 1e-10, f"{case.id}: output")
    for k, (g, h) in enumerate(zip(grads, their_grads)):
        _close(g, np.zeros_like(g) if h is None else h, 1e-10, f"{case.id}: gradient of input {k}")


ONNX_CASES = [c for c in ALL_CASES if c.op_object.as_onnx is not None]


@pytest.mark.parametrize("case", ONNX_CASES, ids=lambda c: c.id)
@FEW
@given(data=st.data())
def test_each_op_in_onnx_runtime_gives_our_outputs(case, data, tmp_path_factory):
    ort = pytest.importorskip("onnxruntime")
    arrays, params = case.draw(data, case.second_order_elements)
    arrays = [a.astype(np.float32) for a in arrays]
    fn = lambda *values: case.build(params, *values)  # noqa: E731
    path = tmp_path_factory.mktemp("onnx") / "op.onnx"
    try:
        export.to_onnx(fn, *arrays[:1], path, *arrays[1:])
    except ExportError as error:  # the one case the op's form refuses, with the op and the case named
        assert "'pad'" in str(error) and "circular" in str(error) and params["mode"] == "circular"
        return
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {i.name: a for i, a in zip(session.get_inputs(), arrays)}
    (got,) = session.run(None, feeds)
    ours = fn(*[Value(a) for a in arrays]).data
    _close(ours, got, 1e-5, f"{case.id}: output")
