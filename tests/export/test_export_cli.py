"""`autograd-core export RUN_FOLDER --to torch|onnx`: a trained run's network
(the iris MLP, the digits CNN) for PyTorch and ONNX Runtime, the same
predictions, and the errors."""

import importlib.util
import io
import sys

import numpy as np
import pytest

from autograd_core import cli
from autograd_core.app.report import QuietReporter
from autograd_core.app.run_folder import load_run
from autograd_core.app.train import TrainConfig, run

torch = pytest.importorskip("torch")


def _module_from(path):
    spec = importlib.util.spec_from_file_location(f"exported_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("runs")
    quiet = QuietReporter(io.StringIO())
    iris = run(TrainConfig(epochs=5, patience=0, out=str(folder / "iris"), eager=True), quiet)
    digits = run(TrainConfig(data="digits", model="cnn", epochs=1, patience=0, batchnorm=True, dropout=0.2,
                             out=str(folder / "digits")), quiet)
    return {"iris": (iris, folder / "iris"), "digits": (digits, folder / "digits")}


@pytest.mark.parametrize("name", ["iris", "digits"])
def test_a_run_exported_to_pytorch_predicts_as_the_run_does(runs, name, capsys):
    result, folder = runs[name]
    assert cli.main(["export", str(folder), "--to", "torch"]) == 0
    printed = capsys.readouterr().out
    assert "model_torch.py" in printed and "model_torch.pt" in printed and "equal ours to" in printed
    Model = _module_from(folder / "model_torch.py").Model
    exported = Model()
    exported.load_state_dict(torch.load(folder / "model_torch.pt"))
    exported.eval()
    model, _ = load_run(folder)
    x = result.split.X_val  # standardised, as the run feeds its network
    with torch.no_grad():
        theirs = exported(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(theirs, model(x).data, rtol=1e-10, atol=1e-10)
    assert (theirs.argmax(axis=1) == result.split.y_val).mean() == pytest.approx(result.final["val_accuracy"])


@pytest.mark.parametrize("name", ["iris", "digits"])
def test_a_run_exported_to_onnx_predicts_as_the_run_does(runs, name, tmp_path, capsys):
    ort = pytest.importorskip("onnxruntime")
    result, folder = runs[name]
    target = tmp_path / f"{name}.onnx"
    assert cli.main(["export", str(folder), "--to", "onnx", "-o", str(target)]) == 0
    assert "equal ours to" in capsys.readouterr().out
    session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    model, _ = load_run(folder)
    model.float()
    x = result.split.X_val[:20].astype(np.float32)
    theirs = np.concatenate([session.run(None, {"x": x[k:k + 1]})[0] for k in range(len(x))])
    np.testing.assert_allclose(theirs, model(x).data, rtol=1e-5, atol=1e-5)


def test_what_the_export_command_refuses(runs, tmp_path, capsys, monkeypatch):
    _, folder = runs["iris"]
    assert cli.main(["export", str(tmp_path / "nothing"), "--to", "torch"]) == 2
    assert "no such run folder" in capsys.readouterr().err
    assert cli.main(["export", str(tmp_path), "--to", "torch"]) == 2  # a folder, but not a run's
    assert "run.json" in capsys.readouterr().err
    assert cli.main(["export", str(folder), "--to", "torch", "-o", str(tmp_path / "model.txt")]) == 2
    assert "end the name with .py" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["export", str(folder), "--to", "keras"])
    capsys.readouterr()
    monkeypatch.setitem(sys.modules, "torch", None)  # as without the optional packages
    assert cli.main(["export", str(folder), "--to", "torch", "-o", str(tmp_path / "m.py")]) == 2
    assert 'pip install -e ".[export]"' in capsys.readouterr().err
    assert not (tmp_path / "m.py").exists()
