"""`train --csv` with hostile or odd files: names that look like mathtext,
line numbers after blank lines and multi-line fields, endless or huge files,
another delimiter, a thousand classes, values near the float limit; and the
progress bar on an 80-column terminal."""

import contextlib
import io
import json
import os
import signal
import struct
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from autograd_core import cli
from autograd_core.app import data as app_data
from autograd_core.app import plots
from autograd_core.app.data import load_csv
from autograd_core.app.errors import AppError
from autograd_core.app.report import BarReporter, QuietReporter
from autograd_core.app.train import TrainConfig, run

ROOT = str(Path(__file__).resolve().parents[2])
MATHTEXT_TRAPS = ["$x^$", r"$\frac{$", "a$b", r"\$", "$$", r"$\undefinedcommand$", "cost ($)", "$_{$"]


def _png_size(path):
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])


def _quiet(tmp_path, **options):
    stream = io.StringIO()
    return run(TrainConfig(out=str(tmp_path / "run"), **options), QuietReporter(stream))


@pytest.mark.parametrize("text", MATHTEXT_TRAPS + ["tab\there", "new\nline", "x" * 500])
def test_matplotlib_shows_a_name_exactly_as_written(text):
    from matplotlib.text import Text

    shown = plots.plain_text(text, limit=1000)
    displayed, is_math = Text()._preprocess_math(shown)
    expected = text.replace("\t", " ").replace("\n", " ")
    assert (displayed, is_math) == (expected, False)


def test_names_with_dollars_train_and_draw(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "$x^$ prices.csv"
    rows = [f"{a:.3f},{b:.3f},{MATHTEXT_TRAPS[k % 4]}" for k, (a, b) in enumerate(rng.normal(size=(80, 2)))]
    path.write_text("$\\sqrt{$ cost,$_{$ size,label\n" + "\n".join(rows) + "\n")
    result = _quiet(tmp_path, csv=str(path), epochs=2)
    assert {"weights", "curves", "decision_regions", "graph", "backprop_player"} <= set(result.files)
    width, height = _png_size(result.files["decision_regions"])
    assert width < 1200 and height < 1200
    settings = json.loads(result.files["settings"].read_text())
    assert settings["data"]["features"] == ["$\\sqrt{$ cost", "$_{$ size"]  # stored as given, escaped only when drawn


def test_a_thousand_classes_get_a_legend_of_bounded_size(tmp_path):
    rng = np.random.default_rng(1)
    path = tmp_path / "many.csv"
    rows = [f"{a:.3f},{b:.3f},class {k % 1000}" for k, (a, b) in enumerate(rng.normal(size=(2000, 2)))]
    path.write_text("a,b,label\n" + "\n".join(rows) + "\n")
    result = _quiet(tmp_path, csv=str(path), epochs=1, hidden=[4], val_split=0.0)
    assert result.dataset.num_classes == 1000
    width, height = _png_size(result.files["decision_regions"])
    assert width < 1200 and height < 1200  # was 550 x 20,496 with every class in the legend


def test_error_lines_are_the_file_lines(tmp_path):
    path = tmp_path / "gaps.csv"
    path.write_text('a,b,label\n'          # 1
                    '\n'                   # 2 blank
                    '1,2,"two\n'           # 3 a label over two lines
                    'lines"\n'             # 4
                    '\n'                   # 5 blank
                    '3,4,y\n'              # 6
                    '5,oops,z\n')          # 7
    with pytest.raises(AppError, match=r"gaps.csv, line 7, column 'b': 'oops' is not a number"):
        load_csv(path)
    path.write_text('a,b,label\n\n1,"oo\nps",x\n')
    with pytest.raises(AppError, match=r"line 3-4, column 'b': 'oo\\nps' is not a number"):
        load_csv(path)
    path.write_text('a,b,label\n\n\n1,2\n')
    with pytest.raises(AppError, match=r"line 4: 2 cells, but the header has 3 columns"):
        load_csv(path)


def test_old_mac_line_ends_still_read(tmp_path):
    path = tmp_path / "mac.csv"
    path.write_bytes(b"a,b,label\r1,2,x\r3,4,y\r5,oops,z\r")
    with pytest.raises(AppError, match="line 4, column 'b'"):
        load_csv(path)
    path.write_bytes(b"a,b,label\r1,2,x\r3,4,y\r")
    assert load_csv(path).X.tolist() == [[1.0, 2.0], [3.0, 4.0]]



@pytest.mark.parametrize("header", [",,", " , ,\t", '"","",""'])
def test_a_header_of_empty_names_is_refused_not_skipped(tmp_path, header, capsys):
    # skipped as a blank line, it made the first example the header: 5,6,x was lost without a word
    path = tmp_path / "nameless.csv"
    path.write_text(f"{header}\n5,6,x\n1,2,x\n3,4,y\n7,8,y\n")
    with pytest.raises(AppError, match=r"nameless.csv, line 1: the header row has 3 columns but no names; "
                                       r"write a name for each column"):
        load_csv(path)
    assert cli.main(["train", "--csv", str(path), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("autograd-core: error: --csv ")
    # blank lines before the header, and lines of empty cells after it, are still skipped
    path.write_text("\n\na,b,label\n5,6,x\n,,\n1,2,x\n3,4,y\n")
    assert load_csv(path).X.tolist() == [[5.0, 6.0], [1.0, 2.0], [3.0, 4.0]]


def _table(path, labels, rng):
    X = rng.normal(size=(len(labels), 2))
    path.write_text("a,b,target\n" + "".join(f"{p:.3f},{q:.3f},{t}\n" for (p, q), t in zip(X, labels)))
    return path


def test_a_label_column_of_measurements_or_ids_is_refused(tmp_path, capsys):
    rng = np.random.default_rng(5)
    path = tmp_path / "prices.csv"
    # a regression target: 300 rows of prices trained as a 290-class problem (0% validation accuracy, exit 0)
    _table(path, [f"{v:.2f}" for v in rng.normal(50, 10, size=300)], rng)
    with pytest.raises(AppError, match=r"prices.csv: the label column 'target' holds numbers that are not whole, "
                                       r"such as '\d+\.\d\d'.*regression.*name the column of classes with --label"):
        load_csv(path)
    assert cli.main(["train", "--csv", str(path), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--label" in err and not (tmp_path / "run").exists()
    # ids: 300 whole numbers, 290 of them different
    _table(path, [str(k) for k in range(290)] + ["7"] * 10, rng)
    with pytest.raises(AppError, match=r"the label column 'target' holds 290 different labels in 300 rows, so most "
                                       r"examples are a class of their own: it looks like an id .*--label"):
        load_csv(path)
    _table(path, [f"user{k}" for k in range(40)], rng)  # names of one example each
    with pytest.raises(AppError, match=r"holds 40 different labels in 40 rows"):
        load_csv(path)


def test_labels_that_are_classes_still_load(tmp_path):
    rng = np.random.default_rng(6)
    path = tmp_path / "classes.csv"
    _table(path, ["0.0", "1.0", "2.0"] * 20, rng)  # whole numbers written as floats are classes
    assert load_csv(path).class_names == ["0.0", "1.0", "2.0"]
    _table(path, [str(k) for k in range(10)] * 2, rng)  # exactly half the rows: each class has two examples
    assert load_csv(path).num_classes == 10
    _table(path, ["x", "y", "z", "w"], rng)  # a tiny file of one example per class is not judged
    assert load_csv(path).num_classes == 4

@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_an_endless_file_is_refused_with_bounded_memory(tmp_path, monkeypatch):
    tracemalloc.start()
    try:
        with pytest.raises(AppError, match=r"--csv /dev/zero: '/dev/zero' is not a regular file \(a character "
                                           r"device\); save the data to a file and give its path"):
            load_csv("/dev/zero")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20
    # a regular file with an endless line (a binary file) stops at the line limit
    path = tmp_path / "binary.csv"
    path.write_bytes(b"a,b,label\n" + b"\x01" * 5000)
    monkeypatch.setattr(app_data, "MAX_LINE_BYTES", 4096)
    with pytest.raises(AppError, match=r"binary.csv: a line is longer than 4,096 bytes"):
        load_csv(path)


@contextlib.contextmanager
def _deadline(seconds):
    """Fail, instead of hanging, when the body is still blocked (opening a pipe) after `seconds`."""
    def expire(signum, frame):
        raise TimeoutError(f"still blocked after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.skipif(not hasattr(os, "mkfifo") or not hasattr(signal, "SIGALRM"), reason="needs named pipes")
def test_a_named_pipe_is_refused_without_waiting_for_a_writer(tmp_path):
    pipe = tmp_path / "data.csv"
    os.mkfifo(pipe)  # opening it to read would wait for a writer forever
    with _deadline(10):
        with pytest.raises(AppError, match=r"--csv .*data.csv: '.*data.csv' is not a regular file \(a named pipe\); "
                                           r"save the data to a file"):
            load_csv(pipe)
    # the command: one line and status 2, in a process of its own (a hang would end at the timeout)
    finished = subprocess.run([sys.executable, "-m", "autograd_core", "train", "--csv", str(pipe), "--out",
                               str(tmp_path / "run")], capture_output=True, text=True, timeout=120,
                              env=dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")))
    assert finished.returncode == 2
    assert finished.stderr.count("\n") == 1 and "is not a regular file (a named pipe)" in finished.stderr

def test_a_file_over_the_size_limit_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "big.csv"
    path.write_text("a,b,label\n" + "1,2,x\n3,4,y\n" * 1000)
    monkeypatch.setattr(app_data, "MAX_CSV_BYTES", 4096)
    with pytest.raises(AppError, match=r"larger than 4,096 bytes"):
        load_csv(path)
    monkeypatch.setattr(app_data, "MAX_CSV_BYTES", 1 << 20)
    monkeypatch.setattr(app_data, "MAX_CELLS", 100)
    with pytest.raises(AppError, match=r"more than 100 feature values"):
        load_csv(path)
    path.write_bytes(b"a,b,label\n1,2,x\x00\n")
    with pytest.raises(AppError, match="NUL bytes"):
        load_csv(path)


@pytest.mark.parametrize("text", [
    "a;b;label\n1;2;x\n3;4;y\n",
    "a;b;label\n1,5;2,5;x\n3,5;4,5;y\n",
    "a\tb\tlabel\n1\t2\tx\n",
])
def test_another_delimiter_gets_a_hint(tmp_path, text):
    path = tmp_path / "european.csv"
    path.write_text(text)
    with pytest.raises(AppError, match=r"seems to separate its columns with (semicolons|tabs): save it as comma-separated"):
        load_csv(path)


def test_values_that_overflow_when_standardised_are_refused(tmp_path, capsys):
    path = tmp_path / "huge.csv"
    rows = [f"{(-1) ** k * 1e308:g},{k},{'xy'[k % 2]}" for k in range(20)]
    path.write_text("big,small,label\n" + "\n".join(rows) + "\n")
    code = cli.main(["train", "--csv", str(path), "--epochs", "1", "--out", str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert "column(s) 'big': values as large as 1e+308 overflow a float64 when the column is standardised" in err
    assert not (tmp_path / "run" / "run.json").exists()


def test_run_json_is_strict_json(tmp_path):
    from autograd_core.app.files import write_json

    path = write_json(tmp_path / "r.json", {"loss": float("nan"), "history": [{"val": float("inf")}, 1.5]})

    def refuse(name):
        raise ValueError(name)

    assert json.loads(path.read_text(), parse_constant=refuse) == {"loss": None, "history": [{"val": None}, 1.5]}


def test_a_picture_that_fails_after_the_weights_are_written_is_a_warning(tmp_path, monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise RuntimeError("the plotting library broke")

    monkeypatch.setattr(plots, "plot_curves", broken)
    result = _quiet(tmp_path, epochs=2)
    assert "curves" not in result.files and result.files["weights"].exists() and result.files["settings"].exists()
    assert "warning: no curves.png: RuntimeError: the plotting library broke" in capsys.readouterr().err


def test_the_progress_bar_keeps_validation_accuracy_in_80_columns():
    output = io.StringIO()
    reporter = BarReporter(bar_file=output, ncols=80)
    reporter.start(100, 10)
    reporter.epoch({"train_loss": 0.123456, "train_accuracy": 0.95, "val_loss": 0.145678, "val_accuracy": 0.9333})
    reporter.close()
    last = [line for line in output.getvalue().replace("\r", "\n").splitlines() if line.strip()][-1]
    assert len(last) <= 80
    assert last.startswith("training 1/100, val acc 93.3%, acc 95.0%, loss 0.1235")


def test_the_notebooks_extra_brings_ipywidgets():
    if sys.version_info < (3, 11):
        pytest.skip("tomllib is in Python 3.11+")
    import tomllib

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "pyproject.toml"), "rb") as file:
        extras = tomllib.load(file)["project"]["optional-dependencies"]
    assert any(requirement.split(">")[0].split("=")[0].strip() == "ipywidgets" for requirement in extras["notebooks"])


def test_a_column_of_ids_is_not_taken_for_classes(tmp_path, monkeypatch):
    path = tmp_path / "ids.csv"
    path.write_text("a,b,id\n" + "".join(f"{k},{k},row{k}\n" for k in range(50)))
    monkeypatch.setattr(app_data, "MAX_CLASSES", 40)
    with pytest.raises(AppError, match=r"column 'id' holds 50 different labels, more than the 40 classes"):
        load_csv(path)


def test_a_file_name_cannot_send_escape_sequences_to_the_terminal(tmp_path, capsys):
    folder = tmp_path / "in\x1b]0;owned\x07side"
    folder.mkdir()
    path = folder / "data.csv"
    path.write_text("a,b,label\n1,2,x\n3,oops,y\n")
    assert cli.main(["train", "--csv", str(path), "--epochs", "1", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\x07" not in err
    assert "in\\x1b]0;owned\\x07side" in err
