"""The command-line app: argument parsing, CSV loading, the safe expression
parser, atomic files, and end-to-end runs of `train` and `graph` on a small budget."""

import json
import re
import shlex
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from autograd_core import cli
from autograd_core.app.data import Dataset, load_csv, split_and_standardise
from autograd_core.app.errors import AppError
from autograd_core.app.expression import build_graph, parse_assignment
from autograd_core.app.files import prepare_output_dir, write_csv, write_file, write_text

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------
# Argument parsing
# --------------------------------------------------------------------------
def test_train_defaults_and_options_parse():
    args = cli.build_parser().parse_args(["train"])
    assert (args.data, args.csv, args.hidden, args.activation, args.optimizer) == (None, None, [16, 16], "relu", "adam")
    assert (args.batch_size, args.epochs, args.val_split, args.patience, args.seed) == (16, 100, 0.2, 20, 0)
    args = cli.build_parser().parse_args([
        "train", "--data", "moons", "--hidden", "8,4,2", "--activation", "gelu", "--batchnorm", "--dropout", "0.1",
        "--optimizer", "sgd", "--lr", "0.05", "--momentum", "0.5", "--schedule", "cosine", "--batch-size", "32",
        "--epochs", "7", "--seed", "3", "--val-split", "0.3", "--patience", "0", "--out", "x", "--jsonl",
    ])
    assert args.hidden == [8, 4, 2] and args.dropout == 0.1 and args.lr == 0.05 and args.momentum == 0.5
    assert args.batchnorm and args.jsonl and not args.quiet and args.schedule == "cosine"
    assert cli.build_parser().parse_args(["train", "--hidden", "none"]).hidden == []


@pytest.mark.parametrize("argv, complaint", [
    (["train", "--hidden", "16,x"], "integers"),
    (["train", "--hidden", "16,0"], "at least one unit"),
    (["train", "--dropout", "1"], "[0, 1)"),
    (["train", "--lr", "-0.1"], "positive"),
    (["train", "--lr", "nan"], "positive"),
    (["train", "--epochs", "0"], "at least 1"),
    (["train", "--seed", "-1"], "'-1': 0 or more"),
    (["train", "--seed", "1.5"], "not an integer"),
    (["train", "--val-split", "1.5"], "[0, 1)"),
    (["train", "--data", "mnist"], "invalid choice"),
    (["train", "--data", "iris", "--csv", "a.csv"], "not allowed with"),
    (["train", "--quiet", "--jsonl"], "not allowed with"),
])
def test_bad_options_are_refused_with_a_reason(argv, complaint, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    assert complaint in capsys.readouterr().err


@pytest.mark.parametrize("argv, command, unknown", [
    (["train", "--datas", "iris"], "train", "--datas iris"),
    (["train", "--epochs", "3", "extra"], "train", "extra"),
    (["graph", "a*a", "--set", "a=1", "--output-file", "g.svg"], "graph", "--output-file g.svg"),
])
def test_an_unknown_option_of_a_command_shows_that_commands_usage(argv, command, unknown, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"usage: autograd-core {command} [-h]")
    assert err.rstrip().endswith(f"autograd-core {command}: error: unrecognized arguments: {unknown}")


def test_no_command_prints_help(capsys):
    assert cli.main([]) == 0
    out = capsys.readouterr().out
    assert "train" in out and "graph" in out


# --------------------------------------------------------------------------
# CSV loading
# --------------------------------------------------------------------------
def _write(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_with_word_labels_parses(tmp_path):
    path = _write(tmp_path, "length,species,width\n1.5,setosa,0.2\n4.7,versicolor,1.4\n5.1,setosa,0.4\n\n")
    ds = load_csv(path, label="species")
    np.testing.assert_array_equal(ds.X, [[1.5, 0.2], [4.7, 1.4], [5.1, 0.4]])
    np.testing.assert_array_equal(ds.y, [0, 1, 0])
    assert ds.feature_names == ["length", "width"] and ds.class_names == ["setosa", "versicolor"]


def test_csv_numeric_labels_sort_numerically_and_last_column_is_the_default(tmp_path):
    path = _write(tmp_path, "a,b,class\n0,1,10\n1,0,2\n2,2,10\n")
    ds = load_csv(path)
    assert ds.class_names == ["2", "10"]
    np.testing.assert_array_equal(ds.y, [1, 0, 1])


@pytest.mark.parametrize("text, label, message", [
    ("", None, "empty"),
    ("\n\n", None, "empty"),
    ("a,b,label\n", None, "no examples"),
    ("a,b,label\n1,2,x\n3,4,y\n", "target", "no column named 'target'"),
    ("a,b,label\n1,2,x\n3,oops,y\n", None, "line 3, column 'b': 'oops' is not a number"),
    ("a,b,label\n1,,x\n3,4,y\n", None, "line 2, column 'b': the cell is empty"),
    ("a,b,label\n1,2,x\n3,4\n", None, "line 3: 2 cells"),
    ("a,b,label\n1,2,x\n3,4,x\n", None, "single class"),
    ("a,b,label\n1,inf,x\n3,4,y\n", None, "not a finite number"),
    ("label\nx\ny\n", None, "a feature column and a label column are needed"),
])
def test_bad_csv_gets_a_clear_error(tmp_path, text, label, message):
    path = _write(tmp_path, text)
    with pytest.raises(AppError) as error:
        load_csv(path, label=label)
    assert message in str(error.value)
    assert str(path) in str(error.value)


def test_missing_csv_file_is_a_clear_error(tmp_path):
    with pytest.raises(AppError, match="no such file"):
        load_csv(tmp_path / "nope.csv")


def test_split_is_stratified_and_standardised_with_training_statistics():
    X = np.arange(40.0).reshape(20, 2)
    y = np.array([0] * 10 + [1] * 10)
    split = split_and_standardise(Dataset(X, y, ["a", "b"], ["p", "q"]), 0.2, np.random.default_rng(0))
    assert len(split.X_val) == 4 and np.bincount(split.y_val).tolist() == [2, 2]
    np.testing.assert_allclose(split.X_train.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(split.X_train.std(axis=0), 1.0)
    raw_val = split.X_val * split.std + split.mean
    # every raw row appears exactly once across the two parts
    raw_train = split.X_train * split.std + split.mean
    assert sorted(np.concatenate([raw_train, raw_val])[:, 0].round(9).tolist()) == X[:, 0].tolist()


# --------------------------------------------------------------------------
# The safe expression parser
# --------------------------------------------------------------------------
def test_expression_builds_the_lecture_graph_with_labels():
    root, leaves = build_graph("e = a*b; d = e + c; L = d*f", {"a": 2, "b": -3, "c": 10, "f": -2})
    assert root.label == "L" and float(root.data) == -8.0
    assert root.inputs[0].label == "d" and root.inputs[0].inputs[0].label == "e"
    root.backward()
    assert [float(leaves[n].grad) for n in "abcf"] == [6.0, -4.0, -2.0, 4.0]


def test_expression_functions_and_precedence_follow_python():
    root, leaves = build_graph("tanh(x1*w1 + x2*w2 + b) + x1.sigmoid() - 2**-w1", {"x1": 2, "w1": -3, "x2": 0, "w2": 1, "b": 6.88})
    expected = np.tanh(2 * -3 + 0 * 1 + 6.88) + 1 / (1 + np.exp(-2)) - 2.0 ** 3
    assert float(root.data) == pytest.approx(expected)
    root, _ = build_graph("-a**2", {"a": 3})
    assert float(root.data) == -9.0  # ** binds tighter than unary minus, as in Python


@pytest.mark.parametrize("text, message", [
    ("__import__('os').system('echo hacked')", "this kind of call (only f(x) with an allowed f, or x.f()) is not allowed"),
    ("__import__('os')", "calling '__import__' (not one of the allowed functions)"),
    ("eval('1')", "calling 'eval' (not one of the allowed functions)"),
    ("a.__class__", "attribute access is not allowed"),
    ("a[0]", "indexing is not allowed"),
    ("(lambda: a)()", "this kind of call"),
    ("a if a else a", "if-expression is not allowed"),
    ("a // 2", "'//' is not allowed"),
    ("a @ a", "'@' is not allowed"),
    ("'text' + a", "only real numbers"),
    ("a < 3", "comparison is not allowed"),
    ("import os", "an import is not allowed"),
    ("[a]", "a list is not allowed"),
    ("exp(a, a)", "takes one argument"),
    ("exp(x=a)", "keyword arguments"),
    ("x + 1", "unknown name 'x'"),
    ("a +", "not valid syntax"),
    ("2 + 3", "uses none of the --set names"),
    ("a = a + 1", ""),  # rebinding is fine; checked below for the refusal wording
    ("exp = a", "the name of a function"),
    ("a" + " + a" * 1200, "too long"),
])
def test_expression_refusals_are_clear(text, message):
    if message == "":
        root, _ = build_graph(text, {"a": 1})
        assert float(root.data) == 2.0
        return
    with pytest.raises(AppError) as error:
        build_graph(text, {"a": 1})
    assert message in str(error.value)


def test_expression_is_never_evaluated(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    monkeypatch.chdir(tmp_path)
    with pytest.raises(AppError):
        build_graph(f"open('{marker.name}', 'w')", {"a": 1})
    assert not marker.exists()


@pytest.mark.parametrize("text, expected", [("a=2", ("a", 2.0)), (" b = -3.5 ", ("b", -3.5)), ("w1=1e-3", ("w1", 0.001))])
def test_set_assignments_parse(text, expected):
    assert parse_assignment(text) == expected


@pytest.mark.parametrize("text, message", [("a", "name=number"), ("1a=2", "not a valid name"), ("a=two", "not a number"),
                                           ("tanh=1", "name of a function")])
def test_bad_set_assignments_are_refused(text, message):
    with pytest.raises(AppError, match=message):
        parse_assignment(text)


# --------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------
def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "metrics.csv"
    target.write_text("old")

    def crash(file):
        file.write(b"half")
        raise RuntimeError("crash while writing")

    with pytest.raises(RuntimeError):
        write_file(target, crash)
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["metrics.csv"]


def test_written_files_get_the_usual_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        path = write_text(tmp_path / "run.json", "{}\n")
    finally:
        os.umask(umask)
    assert path.read_text() == "{}\n"
    assert path.stat().st_mode & 0o777 == 0o644  # not a private 0600 temporary file


def test_write_csv_round_trips(tmp_path):
    import csv

    path = write_csv(tmp_path / "m.csv", [{"epoch": 1, "loss": 0.25, "val": None}], ["epoch", "loss", "val"])
    rows = list(csv.DictReader(path.open()))
    assert rows == [{"epoch": "1", "loss": "0.25", "val": ""}]


def test_output_dir_refuses_a_file(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(AppError, match="is a file"):
        prepare_output_dir(tmp_path / "f")
    assert prepare_output_dir(tmp_path / "new" / "run").is_dir()


# --------------------------------------------------------------------------
# End to end: `train` and `graph` on a small budget
# --------------------------------------------------------------------------
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


def assert_well_formed_html(text):
    """Every non-void element is closed in order; nothing is fetched from elsewhere."""
    from html.parser import HTMLParser

    class Checker(HTMLParser):
        def __init__(self):
            super().__init__(convert_charrefs=True)
            self.open, self.tags = [], set()

        def handle_starttag(self, tag, attrs):
            self.tags.add(tag)
            attributes = dict(attrs)
            assert not (tag in ("script", "img", "iframe") and attributes.get("src")), f"<{tag}> loads {attributes['src']}"
            assert not (tag == "link" and attributes.get("href")), "<link> loads an external file"
            if tag not in _VOID:
                self.open.append(tag)

        def handle_startendtag(self, tag, attrs):
            self.tags.add(tag)

        def handle_endtag(self, tag):
            if tag in _VOID:
                return
            assert self.open and self.open[-1] == tag, f"</{tag}> closes <{self.open[-1] if self.open else None}>"
            self.open.pop()

    checker = Checker()
    checker.feed(text)
    checker.close()
    assert checker.open == [], f"unclosed elements: {checker.open}"
    return checker.tags


def assert_svg(path):
    root = ET.parse(path).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    return root


def assert_png(path):
    import matplotlib.image

    data = Path(path).read_bytes()
    assert data[:8] == PNG_SIGNATURE
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert image[..., :3].std() > 0.01  # not a blank canvas
    return image


def _quiet_run(**options):
    from autograd_core.app.report import QuietReporter
    from autograd_core.app.train import TrainConfig, run
    import io

    stream = io.StringIO()
    return run(TrainConfig(**options), QuietReporter(stream)), stream.getvalue()


@pytest.fixture(scope="module")
def iris_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("iris")
    result, printed = _quiet_run(out=str(out), epochs=12, patience=3, seed=1)
    return result, printed, out


def test_train_writes_every_file_and_prints_the_folder(iris_run):
    result, printed, out = iris_run
    assert printed.strip() == str(out)
    expected = {"weights", "settings", "metrics", "curves", "graph", "backprop_player"}
    assert set(result.files) == expected  # four features: no decision-region plot
    for path in result.files.values():
        assert Path(path).parent == out and Path(path).stat().st_size > 0
    assert not [name for name in os.listdir(out) if name.endswith(".tmp") or ".tmp." in name]


def test_weights_reload_and_predict_the_same(iris_run):
    import nn

    from autograd_core import Value, no_grad
    from autograd_core.app.run_folder import load_run

    result, _, out = iris_run
    state = nn.load(out / "model.npz")
    assert list(state) == list(result.model.state_dict())
    model, settings = load_run(out)
    raw = result.dataset.X
    X = (raw - np.array(settings["data"]["mean"])) / np.array(settings["data"]["std"])
    result.model.eval()
    with no_grad():
        expected = result.model(Value(X, requires_grad=False)).data
        reloaded = model(Value(X, requires_grad=False)).data
    np.testing.assert_array_equal(reloaded, expected)
    assert settings["data"]["classes"] == ["setosa", "versicolor", "virginica"]
    # and the predictions are those of a trained model, not of a random one
    assert (expected.argmax(axis=1) == result.dataset.y).mean() > 0.8


def test_metrics_csv_parses_and_matches_the_history(iris_run):
    import csv

    result, _, out = iris_run
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert [int(row["epoch"]) for row in rows] == list(range(1, len(result.history) + 1))
    for row, kept in zip(rows, result.history):
        for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr"):
            assert float(row[key]) == pytest.approx(kept[key], rel=1e-5)
        assert 0 <= float(row["train_accuracy"]) <= 1 and float(row["train_loss"]) > 0
    # the loss falls during training
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])


def test_early_stopping_keeps_the_best_epochs_weights(iris_run):
    result, _, _ = iris_run
    if result.best_epoch is None:
        pytest.skip("no validation loss was recorded")
    best = result.history[result.best_epoch - 1]
    assert best["val_loss"] == min(row["val_loss"] for row in result.history)
    assert result.final["val_loss"] == pytest.approx(best["val_loss"], rel=1e-9)


def test_graph_svg_has_module_clusters_and_player_html_is_self_contained(iris_run):
    _, _, out = iris_run
    svg = assert_svg(out / "graph.svg")
    titles = [element.text for element in svg.iter("{http://www.w3.org/2000/svg}title")]
    assert any(title and title.startswith("cluster") for title in titles)
    text = "".join(svg.itertext())
    assert "loss" in text and "0.weight" in text
    tags = assert_well_formed_html((out / "backprop.html").read_text(encoding="utf-8"))
    assert {"html", "svg", "script"} <= tags


def test_curves_png_opens(iris_run):
    _, _, out = iris_run
    assert_png(out / "curves.png")


def test_csv_two_feature_run_draws_decision_regions(tmp_path):
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(-2, 0.5, (30, 2)), rng.normal(2, 0.5, (30, 2))])
    labels = ["left"] * 30 + ["right"] * 30
    lines = ["width,kind,height"] + [f"{x:.4f},{k},{y:.4f}" for (x, y), k in zip(X, labels)]
    (tmp_path / "two.csv").write_text("\n".join(lines) + "\n")
    result, _ = _quiet_run(csv=str(tmp_path / "two.csv"), label="kind", out=str(tmp_path / "run"), epochs=8,
                           hidden=[4], batchnorm=True, dropout=0.1, optimizer="sgd", schedule="plateau")
    assert result.dataset.feature_names == ["width", "height"]
    assert result.final["val_accuracy"] == 1.0  # two well-separated blobs
    image = assert_png(result.files["decision_regions"])
    assert image.shape[1] > 300


def test_run_json_says_a_csv_run_trained_on_the_csv_file(tmp_path, capsys):
    path = tmp_path / "flowers.csv"
    path.write_text("a,b,kind\n" + "".join(f"{k % 7}.5,{k % 3}.0,{'xy'[k % 2]}\n" for k in range(40)))
    assert cli.main(["train", "--csv", str(path), "--epochs", "1", "--quiet", "--out", str(tmp_path / "run")]) == 0
    training = json.loads((tmp_path / "run" / "run.json").read_text())["training"]
    assert (training["data"], training["csv"]) == (f"csv:{path}", str(path))
    assert cli.main(["train", "--epochs", "1", "--quiet", "--out", str(tmp_path / "iris")]) == 0
    assert json.loads((tmp_path / "iris" / "run.json").read_text())["training"]["data"] == "iris"


def test_every_optimizer_and_schedule_is_wired():
    import optim

    from autograd_core import Value
    from autograd_core.app.train import DEFAULT_LR, TrainConfig, _build_optimizer, _build_schedule

    for name, cls in [("sgd", optim.SGD), ("adam", optim.Adam), ("adamw", optim.AdamW), ("rmsprop", optim.RMSprop),
                      ("adagrad", optim.Adagrad), ("adadelta", optim.Adadelta)]:
        opt = _build_optimizer(TrainConfig(optimizer=name), [Value(np.ones(2))])
        assert type(opt) is cls and opt.param_groups[0]["lr"] == DEFAULT_LR[name]
    sgd = _build_optimizer(TrainConfig(optimizer="sgd", lr=0.3), [Value(np.ones(2))])
    assert sgd.param_groups[0]["lr"] == 0.3 and sgd.param_groups[0]["momentum"] == 0.9
    with pytest.raises(AppError, match="--momentum applies to sgd and rmsprop"):
        _build_optimizer(TrainConfig(optimizer="adam", momentum=0.5), [Value(np.ones(2))])
    for schedule, cls in [("step", optim.lr_scheduler.StepLR), ("exponential", optim.lr_scheduler.ExponentialLR),
                          ("cosine", optim.lr_scheduler.CosineAnnealingLR),
                          ("plateau", optim.lr_scheduler.ReduceLROnPlateau)]:
        opt = _build_optimizer(TrainConfig(), [Value(np.ones(2))])
        assert type(_build_schedule(TrainConfig(schedule=schedule, epochs=30), opt)) is cls
    # the exponential schedule ends at a hundredth of the starting rate
    opt = _build_optimizer(TrainConfig(lr=1.0), [Value(np.ones(2))])
    scheduler = _build_schedule(TrainConfig(schedule="exponential", epochs=30), opt)
    for _ in range(30):
        opt.step()
        scheduler.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.01)


@pytest.mark.slow
def test_defaults_reach_95_percent_on_iris(tmp_path):
    result, _ = _quiet_run(out=str(tmp_path))
    assert result.final["val_accuracy"] >= 0.95
    assert result.final["train_accuracy"] >= 0.95


def test_bad_csv_through_the_command_line_exits_2_with_the_reason(tmp_path, capsys):
    (tmp_path / "bad.csv").write_text("a,b,label\n1,2,x\n3,four,y\n")
    status = cli.main(["train", "--csv", str(tmp_path / "bad.csv"), "--out", str(tmp_path / "run"), "--quiet"])
    assert status == 2
    err = capsys.readouterr().err
    assert err.startswith("autograd-core: error:") and "line 3, column 'b': 'four' is not a number" in err
    assert "Traceback" not in err


def test_graph_command_writes_svg_html_and_the_lecture_gradients(tmp_path, capsys):
    svg_path, html_path = tmp_path / "lecture.svg", tmp_path / "lecture.html"
    status = cli.main(["graph", "e = a*b; d = e + c; L = d*f", "--set", "a=2", "--set", "b=-3", "--set", "c=10",
                       "--set", "f=-2", "-o", str(svg_path), "--html", str(html_path)])
    assert status == 0
    out = capsys.readouterr().out
    assert "L = -8; dL/da = 6, dL/db = -4, dL/dc = -2, dL/df = 4" in out
    svg = assert_svg(svg_path)
    text = " ".join(svg.itertext())
    for name in ("a", "b", "e", "d", "L"):
        assert name in text.split()
    assert_well_formed_html(html_path.read_text(encoding="utf-8"))


def test_graph_command_refuses_code_and_exits_2(tmp_path, capsys):
    status = cli.main(["graph", "__import__('os').getcwd()", "--set", "a=1", "-o", str(tmp_path / "g.svg")])
    assert status == 2
    assert "is not allowed" in capsys.readouterr().err
    assert not (tmp_path / "g.svg").exists()


# --------------------------------------------------------------------------
# Processes: the console entry, JSON lines, Ctrl-C
# --------------------------------------------------------------------------
def _app(*args, **popen):
    return subprocess.Popen([sys.executable, "-m", "autograd_core", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **popen)


def test_ctrl_c_stops_after_the_current_batch_and_writes_what_it_has(tmp_path):
    out = tmp_path / "run"
    process = _app("train", "--data", "spirals", "--samples", "600", "--epochs", "100000", "--patience", "0",
                   "--batch-size", "8", "--out", str(out), "--jsonl")
    events = []
    deadline = time.monotonic() + 60
    try:
        for line in process.stdout:
            events.append(json.loads(line))
            if events[-1]["event"] == "epoch" and events[-1]["epoch"] >= 2:
                process.send_signal(signal.SIGINT)
                break
            assert time.monotonic() < deadline, "no epoch within a minute"
        rest, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    events += [json.loads(line) for line in rest.splitlines()]
    assert process.returncode == 130, err
    assert "Traceback" not in err
    done = events[-1]
    assert done["event"] == "done" and done["stopped"] == "interrupted"
    epochs = [event for event in events if event["event"] == "epoch"]
    assert done["epochs"] == len(epochs) >= 2
    rows = (out / "metrics.csv").read_text().splitlines()
    assert len(rows) == 1 + len(epochs)
    for name in ("model.npz", "curves.png", "decision_regions.png", "graph.svg", "backprop.html"):
        assert (out / name).stat().st_size > 0
    assert_png(out / "decision_regions.png")


def test_jsonl_into_a_reader_that_stops_early_exits_quietly(tmp_path):
    # `autograd-core train --jsonl | head -n 1`: the pipe closes under the run
    process = _app("train", "--epochs", "100000", "--patience", "0", "--jsonl", "--out", str(tmp_path / "run"))
    try:
        first = json.loads(process.stdout.readline())
        process.stdout.close()
        process.wait(timeout=60)
        err = process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
    assert first["event"] == "start"
    assert process.returncode == 141
    assert "Traceback" not in err and "BrokenPipe" not in err, err


# --------------------------------------------------------------------------
# The README's quick start and docs/cli.md say what the app does
# --------------------------------------------------------------------------
README = Path(__file__).resolve().parents[2] / "README.md"


def _cli_section():
    return (README.parent / "docs" / "cli.md").read_text(encoding="utf-8")


def test_quick_start_installs_and_runs_the_main_job_and_shows_its_pictures():
    text = README.read_text(encoding="utf-8")
    quick_start = text[text.index("## Quick start"):]
    first_command = re.search(r"```bash\n(.*?)\n", quick_start).group(1)
    assert first_command.startswith("pip install") and "autograd-core train" in first_command
    for picture in re.findall(r"\]\((docs/[^)]+\.(?:png|svg))\)", text):
        path = README.parent / picture
        assert path.exists(), picture
        assert_png(path) if picture.endswith(".png") else assert_svg(path)


def test_readme_graph_example_prints_what_it_says(tmp_path, capsys):
    section = _cli_section()
    block = re.search(r"autograd-core graph (.*?)\n# (.*?)\n", section.replace("\\\n", " "), flags=re.S)
    argv = shlex.split(block.group(1))
    argv = [str(tmp_path / arg) if arg.endswith((".svg", ".html")) else arg for arg in argv]
    assert cli.main(["graph", *argv]) == 0
    assert block.group(2) in capsys.readouterr().out


def test_readme_reload_example_runs(iris_run):
    _, _, out = iris_run
    code = re.findall(r"```python\n(.*?)```", _cli_section(), flags=re.S)[0]
    code = re.sub(r'load_run\("[^"]+"\)', f"load_run({str(out)!r})", code)
    namespace = {}
    exec(compile(code, "README cli example", "exec"), namespace)
    assert namespace["settings"]["data"]["classes"][0] == "setosa"


def test_a_nan_loss_stops_the_run_before_it_spoils_the_weights(tmp_path, monkeypatch):
    import nn

    calls = {"count": 0}

    class LossTurningNaN(nn.CrossEntropyLoss):
        def __call__(self, logits, target):
            calls["count"] += 1
            loss = super().__call__(logits, target)
            return loss * float("nan") if calls["count"] > 20 else loss

    monkeypatch.setattr(nn, "CrossEntropyLoss", LossTurningNaN)
    # eager: the counter in the loss is Python state, which a compiled step runs once, when it traces
    result, _ = _quiet_run(out=str(tmp_path), epochs=50, patience=0, eager=True)
    assert result.stopped == "diverged"
    assert 1 <= len(result.history) < 50
    for name, value in result.model.state_dict().items():
        assert np.isfinite(np.asarray(getattr(value, "data", value))).all(), name



@pytest.mark.parametrize("eager", [False, True])
def test_a_loss_grown_by_orders_of_magnitude_stops_the_run_as_diverged(tmp_path, capsys, eager):
    # lr 1e6: the loss stays finite (1.1, then 1e88, then ~1e6 for ever, at 33% accuracy) and the run
    # used to go through every epoch with exit status 0
    out = tmp_path / "run"
    argv = ["train", "--lr", "1e6", "--optimizer", "sgd", "--epochs", "30", "--out", str(out)]
    assert cli.main(argv + (["--eager"] if eager else [])) == 1
    printed = capsys.readouterr().out
    assert printed.count("try a smaller --lr") == 1
    stop = re.search(r"Stopped: the training loss grew from ([0-9.]+) to ([0-9.e+]+) in epoch (\d+): the training "
                     r"diverged; try a smaller --lr", printed)
    first, last, epoch = float(stop.group(1)), float(stop.group(2)), int(stop.group(3))
    assert 0.5 < first < 2 and last > 1000 * first  # ln 3 = 1.1 at the start
    rows = (out / "metrics.csv").read_text().splitlines()[1:]
    assert len(rows) == epoch < 30


def test_numpy_warnings_stay_out_of_a_diverging_runs_output(tmp_path, capsys):
    import warnings

    settings = np.geterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        status = cli.main(["train", "--lr", "1e200", "--optimizer", "sgd", "--epochs", "5", "--out", str(tmp_path / "run")])
    assert status == 1
    assert [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)] == []
    captured = capsys.readouterr()
    assert "RuntimeWarning" not in captured.err + captured.out
    assert captured.out.count("try a smaller --lr") == 1
    assert re.search(r"Stopped: the training loss became (nan|inf) \(it started at 1\.\d+\) in epoch 1: the training "
                     r"diverged", captured.out)
    assert np.geterr() == settings  # only the command silenced them, and only while it ran

def test_without_a_graphviz_renderer_the_run_warns_and_writes_the_rest(tmp_path, monkeypatch, capsys):
    from autograd_core import viz

    monkeypatch.setattr(viz.render, "renderer_name", lambda: None)  # where render_source looks it up
    result, _ = _quiet_run(out=str(tmp_path), epochs=2)
    assert "graph" not in result.files and "backprop_player" not in result.files
    assert {"weights", "metrics", "curves"} <= set(result.files)
    err = capsys.readouterr().err
    assert err.startswith("warning: no backprop.html") and "graphviz" in err.lower()
    assert "\nwarning: no graph.svg" in err
    assert cli.main(["graph", "a*a", "--set", "a=3", "-o", str(tmp_path / "g.svg")]) == 2
    assert "autograd-core: error: No Graphviz renderer found" in capsys.readouterr().err


def test_default_mode_shows_a_progress_bar_and_prints_where_each_file_went(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["train", "--data", "blobs", "--samples", "60", "--epochs", "3", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "training 3/3, val acc " in captured.err and ", loss " in captured.err  # tqdm's bar, numbers first
    lines = captured.out.splitlines()
    assert lines[0].startswith("blobs: 48 training / 12 validation examples, 2 features, 3 classes")
    written = {line.split()[-1] for line in lines[lines.index(f"Wrote to {out}:") + 1:]}
    assert written == {str(path) for path in out.iterdir()}
    assert len(written) == 7  # two features: the decision regions too


def test_the_same_seed_repeats_a_run_exactly_and_another_seed_does_not(tmp_path):
    options = dict(data="moons", samples=80, epochs=3, dropout=0.2)
    first, _ = _quiet_run(out=str(tmp_path / "a"), seed=5, **options)
    again, _ = _quiet_run(out=str(tmp_path / "b"), seed=5, **options)
    other, _ = _quiet_run(out=str(tmp_path / "c"), seed=6, **options)
    strip = lambda history: [{k: v for k, v in row.items() if k != "seconds"} for row in history]  # noqa: E731
    assert strip(first.history) == strip(again.history)
    assert strip(first.history) != strip(other.history)
    for name, value in first.model.state_dict().items():
        np.testing.assert_array_equal(np.asarray(value), np.asarray(again.model.state_dict()[name]))
