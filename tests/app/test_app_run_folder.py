"""A run folder read back (load_run) when it is damaged or edited, the MLP
builder's checks, and the backprop player of the first training step."""

import io
import json
import os
import signal
import tracemalloc

import numpy as np
import pytest

import nn
from autograd_core.app.errors import AppError
from autograd_core.app.report import QuietReporter
from autograd_core.app.run_folder import load_run
from autograd_core.app.train import TrainConfig, run


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    result = run(TrainConfig(out=str(out), epochs=2, hidden=[5]), QuietReporter(io.StringIO()))
    return out, result


def _edited(run_folder, tmp_path, edit):
    """A copy of the run folder whose run.json went through `edit` (a function of the text)."""
    out, _ = run_folder
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "model.npz").write_bytes((out / "model.npz").read_bytes())
    (copy / "run.json").write_text(edit((out / "run.json").read_text()))
    return copy


def _set(path_in_settings, value):
    def edit(text):
        settings = json.loads(text)
        *parents, last = path_in_settings
        target = settings
        for key in parents:
            target = target[key]
        if value is KeyError:
            del target[last]
        else:
            target[last] = value
        return json.dumps(settings)
    return edit


def test_an_intact_folder_loads_the_model_that_was_trained(run_folder):
    out, result = run_folder
    model, settings = load_run(out)
    x = np.random.default_rng(0).normal(size=(6, 4))
    np.testing.assert_array_equal(model(x).data, result.model.eval()(x).data)
    assert settings["model"]["sizes"] == [4, 5, 3]


@pytest.mark.parametrize("edit, message", [
    (lambda text: text[:len(text) // 2], r"run.json is not valid JSON"),
    (lambda text: text.replace('"dropout": 0.0', '"dropout": NaN'), r"NaN is not valid JSON"),
    (lambda text: "[1, 2]", r"the file should be an object, it is list"),
    (_set(["model"], KeyError), r'"model" should be an object, it is missing'),
    (_set(["model", "sizes"], 7), r'"model"."sizes" should be a list, it is int 7'),
    (_set(["model", "sizes"], ["4", "5", "3"]), r'"model"."sizes" must list two or more whole widths'),
    (_set(["model", "sizes"], [4, True, 3]), r'"model"."sizes" must list two or more whole widths'),
    (_set(["model", "activation"], "os.system"), r'"model"."activation" is \'os.system\'; expected one of relu'),
    (_set(["model", "batchnorm"], "yes"), r'"model"."batchnorm" should be true or false, it is str yes'),
    (_set(["model", "dropout"], 1.5), r'"model"."dropout" must be a number in \[0, 1\), got 1.5'),
    (_set(["data", "mean"], [0.0]), r'"data"."mean" has 1 entries, the model needs 4'),
    (_set(["data", "classes"], [1, 2, 3]), r'"data"."classes" must hold only strings'),
    (_set(["format"], "something else"), r"has format 'something else'"),
])
def test_a_damaged_run_json_gets_a_clear_error(run_folder, tmp_path, edit, message):
    folder = _edited(run_folder, tmp_path, edit)
    with pytest.raises(AppError, match=message):
        load_run(folder)


def test_huge_sizes_in_run_json_allocate_nothing(run_folder, tmp_path):
    # the widths come from the weights; run.json only has to agree with them
    folder = _edited(run_folder, tmp_path, _set(["model", "sizes"], [4, 1_000_000_000, 3]))
    tracemalloc.start()
    try:
        with pytest.raises(AppError, match=r"says the layer widths are \[4, 1000000000, 3\], but .*model.npz "
                                           r"holds layers of widths \[4, 5, 3\]"):
            load_run(folder)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20


@pytest.mark.skipif(not hasattr(os, "mkfifo") or not hasattr(signal, "SIGALRM"), reason="needs named pipes")
@pytest.mark.parametrize("name, message", [
    ("run.json", r"load_run: '.*run.json' is not a regular file \(a named pipe\); a run folder's run.json is a file"),
    ("model.npz", r"load_run: cannot read the weights: nn.load: '.*model.npz' is not a regular file \(a named pipe\)"),
])
def test_a_named_pipe_in_the_folder_is_refused_without_waiting_for_a_writer(run_folder, tmp_path, name, message):
    folder = _edited(run_folder, tmp_path, lambda text: text)
    (folder / name).unlink()
    os.mkfifo(folder / name)  # opening it to read would wait for a writer forever

    def expire(signum, frame):
        raise TimeoutError("load_run is still blocked on the pipe after 10 s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(10)
    try:
        with pytest.raises(AppError, match=message):
            load_run(folder)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_missing_or_foreign_files_are_named(run_folder, tmp_path):
    with pytest.raises(AppError, match="no run.json in"):
        load_run(tmp_path)
    folder = _edited(run_folder, tmp_path, lambda text: text)
    (folder / "model.npz").write_bytes(b"not a zip")
    with pytest.raises(AppError, match="cannot read the weights: .*not a readable nn.save archive"):
        load_run(folder)
    (folder / "model.npz").unlink()
    with pytest.raises(AppError, match="cannot read the weights: nn.load: no such file"):
        load_run(folder)


@pytest.mark.parametrize("sizes, shown", [
    (["4", "16", "3"], r"sizes\[0\] is '4' \(str\)"),
    ([4, True, 3], r"sizes\[1\] is True \(bool\)"),
    ([4, 16.0, 3], r"sizes\[1\] is 16.0 \(float\)"),
    (7, "sizes must be a list of layer widths"),
    ("4,16,3", "sizes must be a list of layer widths"),
])
def test_mlp_refuses_widths_that_are_not_integers(sizes, shown):
    with pytest.raises(TypeError, match="MLP: " + shown):
        nn.MLP(sizes)
    assert nn.MLP((np.int64(4), 3))[0].weight.shape == (3, 4)


def test_the_player_shows_the_first_training_step(tmp_path, monkeypatch):
    # One mini-batch holds all the training data and plain SGD takes one step,
    # so the first step's gradient is (initial weights - final weights) / lr.
    import autograd_core as ag
    from autograd_core.app.models import build_model

    recorded = {}

    class Recording(ag.BackpropStepper):
        def save_html(self, path, caption=None):
            written = super().save_html(path, caption=caption)
            for _ in self:  # stepping past the end writes .grad, as backward() would
                pass
            recorded.update({id(v): np.array(v.grad) for v in self.values if v.is_leaf and v.grad is not None})
            return written

    monkeypatch.setattr(ag, "BackpropStepper", Recording)
    lr = 0.5
    result = run(TrainConfig(out=str(tmp_path), epochs=1, hidden=[6], optimizer="sgd", momentum=0.0, lr=lr,
                             batch_size=1000, seed=3), QuietReporter(io.StringIO()))
    nn.manual_seed(3)
    initial = build_model([4, 6, 3], "relu", False, 0.0)
    steps = 0
    for before, after in zip(initial.parameters(), result.model.parameters()):
        np.testing.assert_allclose(recorded[id(after)], (before.data - after.data) / lr, rtol=1e-9, atol=1e-12)
        assert np.abs(recorded[id(after)]).max() > 1e-3  # a gradient worth looking at
        steps += 1
    assert steps == 4
    page = (tmp_path / "backprop.html").read_text()
    assert '<p class="agc-caption">' in page
    assert "Training step 1 (epoch 1, mini-batch 1 of 120 examples), before the first update" in page


def test_recording_the_player_does_not_change_the_training(tmp_path, monkeypatch):
    # batch norm statistics and dropout's random draws are put back after the recording
    from autograd_core.app import train

    options = dict(epochs=2, data="moons", batchnorm=True, dropout=0.3, seed=5)
    with_player = run(TrainConfig(out=str(tmp_path / "a"), **options), QuietReporter(io.StringIO()))
    assert "backprop_player" in with_player.files
    monkeypatch.setattr(train, "_record_first_step", lambda *args: None)
    without = run(TrainConfig(out=str(tmp_path / "b"), **options), QuietReporter(io.StringIO()))
    assert "backprop_player" not in without.files
    for a, b in zip(with_player.model.state_dict().values(), without.model.state_dict().values()):
        np.testing.assert_array_equal(getattr(a, "data", a), getattr(b, "data", b))


def test_batch_norm_never_trains_on_a_batch_of_one(tmp_path):
    # 120 training examples in batches of 17 leave one example over: it is left out
    result = run(TrainConfig(out=str(tmp_path / "a"), epochs=2, batchnorm=True, batch_size=17),
                 QuietReporter(io.StringIO()))
    assert len(result.history) == 2 and "backprop_player" in result.files
    with pytest.raises(AppError, match="--batchnorm needs mini-batches of two or more examples"):
        run(TrainConfig(out=str(tmp_path / "b"), epochs=1, batchnorm=True, batch_size=1), QuietReporter(io.StringIO()))
    # without batch norm a batch of one is a plain SGD step
    assert len(run(TrainConfig(out=str(tmp_path / "c"), epochs=1, batch_size=1),
                   QuietReporter(io.StringIO())).history) == 1


def test_sizes_that_would_not_fit_in_memory_are_refused_up_front(tmp_path, capsys):
    from autograd_core import cli

    tracemalloc.start()
    try:
        with pytest.raises(AppError, match=r"MLP 4-100000000-3 would have 800,000,003 parameters, more than the 50,000,000"):
            run(TrainConfig(out=str(tmp_path / "a"), epochs=1, hidden=[100_000_000]), QuietReporter(io.StringIO()))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20
    assert not (tmp_path / "a").exists()
    with pytest.raises(SystemExit):
        cli.main(["train", "--data", "moons", "--samples", "1000000000"])
    assert "--samples: '1000000000': from 10 to 1,000,000" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["train", "--hidden", ",".join(["4"] * 65)])
    assert "65 hidden layers: at most 64" in capsys.readouterr().err


def test_graph_svg_shows_the_kept_weights_on_the_first_training_examples(tmp_path):
    """What docs/cli.md says of graph.svg: the kept model, the first
    min(batch size, 8) examples of the training part, after backward."""
    import xml.etree.ElementTree as ET

    from autograd_core.viz import describe_array

    result = run(TrainConfig(out=str(tmp_path), epochs=3, hidden=[3], batch_size=5), QuietReporter(io.StringIO()))
    ns = "{http://www.w3.org/2000/svg}"
    boxes = {}
    for group in ET.parse(result.files["graph"]).getroot().iter(f"{ns}g"):
        texts = [t.text for t in group.findall(f"{ns}text")]
        if "node" in group.get("class", "") and texts:
            boxes[texts[0]] = texts[1:]
    assert "x (batch of 5)" in boxes
    kept_bias = dict(result.model.named_parameters())["0.bias"]
    shown = boxes["0.bias"]
    assert describe_array(kept_bias.data)[1] in shown  # the kept values, number by number
    assert any(line.startswith("grad [") for line in shown)  # after backward
    from autograd_core.app.models import build_model

    nn.manual_seed(0)  # the weights the run started from (seed 0) are not the ones shown
    start = dict(build_model([4, 3, 3], "relu", False, 0.0).named_parameters())["0.bias"]
    assert describe_array(start.data)[1] not in shown
