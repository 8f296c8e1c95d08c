"""The command-line app: argument parsing, CSV loading, the safe expression
parser, atomic files, and end-to-end runs of `train` and `graph` on a small budget."""

import json
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
from autograd_core.app.files import atomic_path, prepare_output_dir, write_csv

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
    ("a,b,label\n1,2,x\n3,oops,y\n", None, "row 3, column 'b': 'oops' is not a number"),
    ("a,b,label\n1,,x\n3,4,y\n", None, "row 2, column 'b': the cell is empty"),
    ("a,b,label\n1,2,x\n3,4\n", None, "row 3: 2 cells"),
    ("a,b,label\n1,2,x\n3,4,x\n", None, "single class"),
    ("a,b,label\n1,inf,x\n3,4,y\n", None, "not a finite number"),
    ("label\nx\ny\n", None, "at least one feature column"),
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
    ("__import__('os')", "'__import__', which is not one of the allowed functions"),
    ("eval('1')", "'eval', which is not one of the allowed functions"),
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
def test_atomic_path_leaves_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "metrics.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            Path(tmp).write_text("half")
            raise RuntimeError("crash while writing")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["metrics.csv"]


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
