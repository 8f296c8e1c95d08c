"""`autograd-core train --data digits --model cnn`: a small CNN on the 8x8
handwritten digits, its files (confusion matrix, misclassified images, a graph
with one box per layer, the player), reloading it, and the errors."""

import io
import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import nn
from autograd_core import cli
from autograd_core.app import plots
from autograd_core.app.errors import AppError
from autograd_core.app.report import QuietReporter
from autograd_core.app.models import build_cnn
from autograd_core.app.run_folder import load_run
from autograd_core.app.train import TrainConfig, run

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SVG = "{http://www.w3.org/2000/svg}"


def _run(**options):
    return run(TrainConfig(**options), QuietReporter(io.StringIO()))


def _png(path, min_side=100):
    import matplotlib.image

    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and min(image.shape[:2]) > min_side
    assert image[..., :3].std() > 0.01  # something is drawn on it
    return image


@pytest.fixture(scope="module")
def cnn_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cnn")
    return _run(data="digits", model="cnn", epochs=3, patience=0, out=str(out)), out


# --------------------------------------------------------------------------
# A short run
# --------------------------------------------------------------------------
def test_three_epochs_of_the_cnn_learn_the_digits(cnn_run):
    result, _ = cnn_run
    assert len(result.history) == 3
    assert result.final["val_accuracy"] >= 0.90  # a tenth for guessing; ~96% after three epochs
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"] < np.log(10)
    layers = [type(layer).__name__ for layer in result.model]
    assert layers == ["Conv2d", "ReLU", "MaxPool2d", "Conv2d", "ReLU", "MaxPool2d", "Flatten", "Linear"]
    assert result.model[0].weight.shape == (8, 1, 3, 3) and result.model[3].weight.shape == (16, 8, 3, 3)
    assert result.model[7].weight.shape == (10, 16 * 2 * 2)


def test_the_cnn_run_writes_every_file(cnn_run):
    result, out = cnn_run
    assert set(result.files) == {"weights", "settings", "metrics", "curves", "confusion_matrix", "misclassified",
                                 "graph", "backprop_player"}
    for name in ("curves", "confusion_matrix", "misclassified"):
        _png(result.files[name])
    assert not (out / "decision_regions.png").exists()
    rows = (out / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,train_loss") and len(rows) == 4


def test_images_are_standardised_per_channel_not_per_pixel(cnn_run):
    result, out = cnn_run
    split = result.split
    assert split.X_train.shape[1:] == (1, 8, 8) and split.X_val.shape[1:] == (1, 8, 8)
    assert split.X_train.mean() == pytest.approx(0, abs=1e-12) and split.X_train.std() == pytest.approx(1)
    # the top-left pixel is blank (0) in every digit: per pixel it would become 0, per channel it is -mean/std
    assert np.allclose(split.X_train[:, 0, 0, 0], -split.mean.item() / split.std.item())
    digits = nn.data.load_digits()
    assert 0 < split.mean.item() < digits.X.max()
    settings = json.loads((out / "run.json").read_text())
    assert settings["data"]["mean"] == [split.mean.item()] and settings["data"]["std"] == [split.std.item()]
    assert settings["model"] == {"type": "cnn", "image_shape": [1, 8, 8], "channels": [8, 16], "kernel_size": 3,
                                 "classes": 10, "activation": "relu", "batchnorm": False, "dropout": 0.0}


def test_the_graph_has_one_box_per_layer(cnn_run):
    result, _ = cnn_run
    svg = ET.parse(result.files["graph"]).getroot()
    clusters = [g for g in svg.iter(f"{SVG}g") if g.get("class") == "cluster"]
    titles = [next(g.iter(f"{SVG}text")).text for g in clusters]
    assert [title.split("(")[0] for title in titles] == [
        "0: Conv2d", "1: ReLU", "2: MaxPool2d", "3: Conv2d", "4: ReLU", "5: MaxPool2d", "6: Flatten", "7: Linear"]
    assert titles[0] == "0: Conv2d(1, 8, 3x3)" and titles[3] == "3: Conv2d(8, 16, 3x3)"
    # a convolution is one operation node, not a graph of its pixels
    operations = [text.text for text in svg.iter(f"{SVG}text")]
    assert operations.count("conv2d") == 2 and operations.count("max_pool2d") == 2


def test_the_player_steps_through_the_first_training_step_of_the_cnn(cnn_run):
    result, _ = cnn_run
    page = result.files["backprop_player"].read_text(encoding="utf-8")
    assert "Training step 1 (epoch 1, mini-batch 1 of 16 examples)" in page
    assert "conv2d" in page and "max_pool2d" in page
    assert "<script src" not in page  # self-contained


def test_the_confusion_matrix_counts_the_validation_predictions(cnn_run):
    result, _ = cnn_run
    from autograd_core.app.models import predict_classes

    predicted = predict_classes(result.model, result.split.X_val)
    counts = plots.confusion_counts(result.split.y_val, predicted, 10)
    assert counts.sum() == len(result.split.y_val) == 359  # a fifth of each digit's images, rounded
    assert np.trace(counts) / counts.sum() == pytest.approx(result.final["val_accuracy"])
    assert counts.sum(axis=1).tolist() == np.bincount(result.split.y_val, minlength=10).tolist()


# --------------------------------------------------------------------------
# Reloading a CNN run
# --------------------------------------------------------------------------
def test_load_run_rebuilds_the_cnn_from_the_checkpoint(cnn_run):
    result, out = cnn_run
    model, settings = load_run(out)
    assert [type(layer).__name__ for layer in model] == [type(layer).__name__ for layer in result.model]
    x = result.split.X_val[:20]
    np.testing.assert_array_equal(model(x).data, result.model.eval()(x).data)
    # new raw images, standardised with run.json's numbers, are classified as well as during training
    digits = nn.data.load_digits()
    mean = np.array(settings["data"]["mean"]).reshape(-1, 1, 1)
    std = np.array(settings["data"]["std"]).reshape(-1, 1, 1)
    predicted = model((digits.images - mean) / std).data.argmax(axis=1)
    assert (predicted == digits.y).mean() >= 0.9
    assert settings["data"]["classes"] == [str(d) for d in range(10)]


def _copy(out, tmp_path, edit=None, weights=None):
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "model.npz").write_bytes((weights or out / "model.npz").read_bytes())
    settings = json.loads((out / "run.json").read_text())
    if edit is not None:
        edit(settings)
    (copy / "run.json").write_text(json.dumps(settings))
    return copy


@pytest.mark.parametrize("edit, message", [
    (lambda s: s["model"].update(channels=[8, 32]), r"describes a CNN of channels \[8, 32\].*different runs"),
    (lambda s: s["model"].update(classes=3), r"and 3 classes, but .* holds .* and 10 classes"),
    (lambda s: s["model"].update(kernel_size=5), r"5x5 kernels.*different runs"),
    (lambda s: s["model"].update(image_shape=[1, 16, 16]), r"the linear layer takes 64 numbers.*give 256"),
    (lambda s: s["model"].update(image_shape=[8, 8]), r'"model"."image_shape" must be \[channels, height, width\]'),
    (lambda s: s["model"].update(channels=[]), r'"model"."channels" must list one or more'),
    (lambda s: s["model"].update(channels="8,16"), r'"model"."channels" should be a list, it is str'),
    (lambda s: s["model"].update(kernel_size=True), r'"model"."kernel_size" must be a whole number'),
    (lambda s: s["model"].update(type="rnn"), r'"model"."type" is \'rnn\'; expected "mlp" or "cnn"'),
    (lambda s: s["model"].update(activation="__import__"), r'"model"."activation" is \'__import__\''),
    (lambda s: s["data"].update(mean=[0.0, 1.0]), r'"data"."mean" has 2 entries, the model needs 1'),
    (lambda s: s["data"].update(classes=["a", "b"]), r'"data"."classes" has 2 entries, the model needs 10'),
])
def test_a_damaged_cnn_run_json_gets_a_clear_error(cnn_run, tmp_path, edit, message):
    _, out = cnn_run
    with pytest.raises(AppError, match=message):
        load_run(_copy(out, tmp_path, edit))


def test_mlp_weights_under_a_cnn_run_json_are_refused(cnn_run, tmp_path):
    _, out = cnn_run
    mlp = _run(data="digits", model="mlp", epochs=1, out=str(tmp_path / "mlp"))
    with pytest.raises(AppError, match="does not hold a CNN's weights"):
        load_run(_copy(out, tmp_path, weights=mlp.files["weights"]))
    # and the other way round: the MLP's run.json names widths the CNN's weights do not have
    (tmp_path / "mlp" / "model.npz").write_bytes((out / "model.npz").read_bytes())
    with pytest.raises(AppError, match=r"says the layer widths are \[64, 16, 16, 10\], but .* holds layers of "
                                       r"widths \[64, 10\]; the two files are from different runs"):
        load_run(tmp_path / "mlp")


def test_batch_norm_and_dropout_in_the_cnn_train_and_reload(tmp_path):
    result = _run(data="digits", epochs=1, batchnorm=True, dropout=0.25, channels=[4, 6, 8], out=str(tmp_path))
    names = [type(layer).__name__ for layer in result.model]
    assert names == ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d"] * 3 + ["Flatten", "Dropout", "Linear"]
    assert result.model[-1].weight.shape == (10, 8 * 1 * 1)  # 8x8 -> 4x4 -> 2x2 -> 1x1
    assert np.abs(result.model[1].running_mean).max() > 0  # batch norm saw the batches
    model, settings = load_run(tmp_path)
    assert settings["model"]["channels"] == [4, 6, 8]
    x = result.split.X_val[:10]
    np.testing.assert_array_equal(model(x).data, result.model.eval()(x).data)


def test_an_mlp_on_the_digits_reads_pixels_as_features_and_draws_the_same_pictures(tmp_path):
    result = _run(data="digits", model="mlp", epochs=2, out=str(tmp_path))
    assert result.split.X_train.shape[1] == 64
    assert [layer.weight.shape for layer in result.model if hasattr(layer, "weight")] == [(16, 64), (16, 16), (10, 16)]
    _png(result.files["confusion_matrix"])
    _png(result.files["misclassified"])
    model, settings = load_run(tmp_path)
    assert settings["model"]["type"] == "mlp" and settings["model"]["sizes"] == [64, 16, 16, 10]


@pytest.mark.slow
def test_the_default_digits_run_reaches_97_percent(tmp_path):
    # `autograd-core train --data digits --model cnn` with every default (seed 0)
    result = _run(data="digits", model="cnn", out=str(tmp_path))
    assert result.final["val_accuracy"] >= 0.97
    assert result.stopped == "early"


# --------------------------------------------------------------------------
# The command line
# --------------------------------------------------------------------------
def test_digits_default_to_the_cnn_and_tables_to_the_mlp():
    from autograd_core.app.data import Dataset
    from autograd_core.app.models import model_spec

    args = cli.build_parser().parse_args(["train", "--data", "digits"])
    assert args.model is None and args.channels is None
    images = Dataset(np.zeros((4, 64)), np.arange(4) % 2, [], ["a", "b"], image_shape=(1, 8, 8))
    table = Dataset(np.zeros((4, 3)), np.arange(4) % 2, ["x", "y", "z"], ["a", "b"])
    assert model_spec(TrainConfig.from_args(args), images)["type"] == "cnn"
    assert model_spec(TrainConfig(), table) == {"type": "mlp", "sizes": [3, 16, 16, 2], "activation": "relu",
                                                "batchnorm": False, "dropout": 0.0}
    parsed = cli.build_parser().parse_args(["train", "--model", "cnn", "--channels", "4,12"])
    assert parsed.model == "cnn" and parsed.channels == [4, 12]


def test_jsonl_names_the_model(tmp_path, capsys):
    assert cli.main(["train", "--data", "digits", "--epochs", "1", "--out", str(tmp_path), "--jsonl"]) == 0
    start = json.loads(capsys.readouterr().out.splitlines()[0])
    assert start["event"] == "start" and start["model"] == "cnn" and start["channels"] == [8, 16]
    assert start["features"] == 64 and start["train_examples"] + start["val_examples"] == 1797


@pytest.mark.parametrize("argv, message", [
    (["--model", "cnn"], "--model cnn needs images, and 'iris' is a table of 4 features; use --model mlp"),
    (["--data", "moons", "--model", "cnn"], "'moons' is a table of 2 features"),
    (["--data", "digits", "--hidden", "32"], "--hidden sets the layers of an MLP (for an MLP on digits, add --model mlp)"),
    (["--data", "digits", "--model", "cnn", "--hidden", "32"], "--hidden sets the layers of an MLP; a CNN's are set"),
    (["--data", "iris", "--channels", "4"], "--channels sets the convolutions of --model cnn"),
    (["--data", "digits", "--samples", "100"], "digits has its own 1,797 images"),
])
def test_a_model_that_does_not_fit_the_data_exits_2_with_the_reason(argv, message, tmp_path, capsys):
    status = cli.main(["train", *argv, "--out", str(tmp_path / "run"), "--quiet"])
    assert status == 2
    err = capsys.readouterr().err
    assert err.startswith("autograd-core: error: ") and message in err
    assert "Traceback" not in err
    assert not (tmp_path / "run").exists()  # refused before any file is written


def test_a_csv_table_with_model_cnn_is_refused(tmp_path, capsys):
    (tmp_path / "t.csv").write_text("a,b,label\n1,2,x\n3,4,y\n5,6,x\n7,8,y\n")
    status = cli.main(["train", "--csv", str(tmp_path / "t.csv"), "--model", "cnn", "--out", str(tmp_path / "r")])
    assert status == 2
    assert "'t.csv' is a table of 2 features" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--model", "vgg"], "invalid choice: 'vgg'"),
    (["--data", "mnist"], "invalid choice: 'mnist'"),
    (["--channels", "8,x"], "integers separated by commas"),
    (["--channels", "4,4,4,4"], "from 1 to 3 convolutions"),
    (["--channels", "0"], "from 1 to 512 channels"),
])
def test_unknown_names_and_bad_channels_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", *argv])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_the_python_api_checks_the_model_name_and_channels(tmp_path):
    with pytest.raises(AppError, match="--model 'vgg': choose mlp or cnn"):
        _run(data="digits", model="vgg", out=str(tmp_path))
    with pytest.raises(AppError, match="--channels .*from 1 to 3 convolutions"):
        _run(data="digits", channels=[2, 2, 2, 2], out=str(tmp_path))


# --------------------------------------------------------------------------
# The pictures, on their own
# --------------------------------------------------------------------------
HOSTILE = ["$\\frac{1}{$", "ok", "tab\there", "$x^$", "a" * 200]


def test_class_names_are_shown_literally_in_both_pictures(tmp_path):
    # an unescaped "$\frac{" is a malformed formula: matplotlib raises while saving
    y_true = np.array([0, 1, 2, 3, 4, 0, 1])
    y_pred = np.array([1, 1, 3, 3, 0, 0, 2])
    plots.plot_confusion_matrix(y_true, y_pred, HOSTILE, tmp_path / "confusion.png", title="$\\frac{ run")
    images = np.random.default_rng(0).uniform(0, 16, size=(7, 1, 8, 8))
    plots.plot_misclassified(images, y_true, y_pred, HOSTILE, tmp_path / "wrong.png", title="$\\frac{ run")
    _png(tmp_path / "confusion.png")
    _png(tmp_path / "wrong.png", min_side=50)


def test_plain_text_is_what_the_pictures_use(tmp_path, monkeypatch):
    seen = []
    original = plots.plain_text
    monkeypatch.setattr(plots, "plain_text", lambda text, **kw: seen.append(str(text)) or original(text, **kw))
    y = np.array([0, 1, 1])
    plots.plot_confusion_matrix(y, np.array([1, 1, 0]), ["cat$", "dog$"], tmp_path / "c.png")
    plots.plot_misclassified(np.zeros((3, 1, 4, 4)) + np.arange(16).reshape(4, 4), y, np.array([1, 1, 0]),
                             ["cat$", "dog$"], tmp_path / "m.png")
    assert seen.count("cat$") >= 2 and seen.count("dog$") >= 2


def test_misclassified_grid_with_nothing_wrong_and_with_more_than_fit(tmp_path):
    images = np.random.default_rng(1).uniform(0, 16, size=(60, 1, 8, 8))
    y = np.arange(60) % 10
    plots.plot_misclassified(images, y, y, [str(d) for d in range(10)], tmp_path / "none.png")
    assert (tmp_path / "none.png").read_bytes()[:8] == PNG_SIGNATURE
    wrong = (y + 1) % 10
    plots.plot_misclassified(images, y, wrong, [str(d) for d in range(10)], tmp_path / "many.png", limit=40)
    image = _png(tmp_path / "many.png")
    assert image.shape[0] > image.shape[1] * 0.5  # five rows of eight, not sixty images in a row


def test_confusion_counts_match_a_worked_example():
    counts = plots.confusion_counts([2, 0, 2, 2, 0, 1], [0, 0, 2, 2, 0, 2], 3)
    assert counts.tolist() == [[2, 0, 0], [0, 0, 1], [1, 0, 2]]


def test_build_cnn_matches_the_same_network_in_pytorch():
    torch = pytest.importorskip("torch")
    nn.manual_seed(0)
    ours = build_cnn((1, 8, 8), [8, 16], 10)
    theirs = torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(8, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(64, 10)).double()
    theirs.load_state_dict({name: torch.tensor(np.asarray(value.data)) for name, value in ours.state_dict().items()})
    x = np.random.default_rng(0).normal(size=(5, 1, 8, 8))
    np.testing.assert_allclose(ours(x).data, theirs(torch.tensor(x)).detach().numpy(), rtol=1e-10, atol=1e-12)


def test_misclassified_mosaic_places_each_image_scaled_to_its_own_range():
    pictures = [plots._unit_range(np.arange(16.0).reshape(1, 4, 4) * scale) for scale in (1.0, 3.0, 0.5)]
    mosaic, (cell_h, cell_w, band, width) = plots._mosaic(pictures, columns=2)
    assert (cell_h, cell_w, band, width) == (4 + 2, 4 + 1, 2, 4)
    assert mosaic.shape == (2 * cell_h, 2 * cell_w - 1)
    for i, picture in enumerate(pictures):  # each at its cell, under its caption's band, 0 to 1 as imshow scales it
        row, column = divmod(i, 2)
        top, left = row * cell_h + band, column * cell_w
        np.testing.assert_array_equal(mosaic[top:top + 4, left:left + 4], np.arange(16.0).reshape(4, 4) / 15)
    assert mosaic[:band].sum() == 0 and mosaic[:, 4].sum() == 0  # bands and gaps: white under gray_r
