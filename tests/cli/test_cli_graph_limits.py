"""`autograd-core graph` at its limits: long and deep expressions, huge
literals, and output paths that cannot be written: a result or one clear
error line with exit status 2, never a traceback."""

import os
import sys
from pathlib import Path

import pytest

from autograd_core import cli


def _graph(capsys, expression, *options, value="1.5"):
    code = cli.main(["graph", expression, "--set", f"a={value}", *options])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("expression, value, derivative", [
    ("+".join(["a"] * 500), 500 * 1.5, 500.0),                       # 500 levels deep, left to right
    ("+".join(["a"] * 999), 999 * 1.5, 999.0),                       # as long as the length cap allows
    ("0+" + "-" * 1990 + "a", 1.5, 1.0),                              # 1990 nested negations (an even count)
    ("0+" + "-" * 1991 + "a", -1.5, -1.0),
    ("a" + ".tanh()" * 280, None, None),                              # 280 nested calls
], ids=["500-terms", "999-terms", "1990-negations", "1991-negations", "280-calls"])
def test_long_and_deep_expressions_are_built_without_recursion(tmp_path, capsys, expression, value, derivative):
    assert len(expression) <= 2000
    code, out, err = _graph(capsys, expression, "-o", str(tmp_path / "g.svg"))
    assert code == 0, err
    assert (tmp_path / "g.svg").read_bytes().startswith(b"<?xml") or b"<svg" in (tmp_path / "g.svg").read_bytes()
    result = out.strip().splitlines()[-1]
    if value is not None:
        assert result == f"out = {value:.6g}; dout/da = {derivative:.6g}"
    else:  # tanh applied 280 times to 1.5, and its derivative by the chain rule
        import math
        x, slope = 1.5, 1.0
        for _ in range(280):
            x = math.tanh(x)
            slope *= 1 - x * x
        assert result == f"out = {x:.6g}; dout/da = {slope:.6g}"


def test_nesting_the_parser_refuses_is_a_syntax_error_line(tmp_path, capsys):
    code, out, err = _graph(capsys, "(" * 250 + "a" + ")" * 250, "-o", str(tmp_path / "g.svg"))
    assert code == 2
    assert err.startswith("autograd-core: error: expression: not valid syntax") and "Traceback" not in err
    assert err.count("\n") == 1


@pytest.mark.parametrize("literal, shown", [
    ("9" * 400, "the constant 999999999999... (400 digits) (too large to be a finite number)"),
    ("-" + "9" * 400, "the constant 999999999999... (400 digits)"),
    ("1e400", "the constant inf (too large to be a finite number)"),
], ids=["400-digits", "minus-400-digits", "1e400"])
def test_literals_too_large_for_a_float_are_one_error_line(tmp_path, capsys, literal, shown):
    code, out, err = _graph(capsys, f"a*{literal}", "-o", str(tmp_path / "g.svg"))
    assert code == 2
    assert err.startswith("autograd-core: error: expression: " + shown)
    assert err.count("\n") == 1
    assert not (tmp_path / "g.svg").exists()


def test_an_output_that_is_a_folder_is_one_error_line(tmp_path, capsys):
    (tmp_path / "pictures.svg").mkdir()
    code, _, err = _graph(capsys, "a*a", "-o", str(tmp_path / "pictures.svg"))
    assert (code, err.count("\n")) == (2, 1)
    assert "-o " in err and "pictures.svg: this is a folder; give a file name, e.g." in err
    code, _, err = _graph(capsys, "a*a", "-o", str(tmp_path / "g.svg"), "--html", str(tmp_path))
    assert (code, err.count("\n")) == (2, 1)
    assert "--html " in err and "this is a folder" in err
    assert not (tmp_path / "g.svg").exists()  # refused before anything was written


def test_an_output_that_cannot_be_written_is_one_error_line(tmp_path, capsys):
    long_name = "x" * 300 + ".svg"  # longer than any file system allows
    code, _, err = _graph(capsys, "a*a", "-o", str(tmp_path / long_name))
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("autograd-core: error: -o ") and "cannot write it (File name too long)" in err
    code, _, err = _graph(capsys, "a*a", "-o", "/proc/graph.svg")  # a folder no one may create files in
    assert code == 2 and err.count("\n") == 1 and "-o /proc/graph.svg: cannot write it" in err


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_is_one_error_line(tmp_path, capsys):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        code, _, err = _graph(capsys, "a*a", "-o", str(folder / "g.svg"))
    finally:
        folder.chmod(0o755)
    assert code == 2 and "cannot write it (Permission denied)" in err


def test_an_output_folder_without_a_suffix_is_called_a_folder(tmp_path, capsys):
    """`-o pictures/` names the folder and what to pass, not an unknown format ''."""
    (tmp_path / "pictures").mkdir()
    for given in (tmp_path / "pictures", f"{tmp_path / 'pictures'}{os.sep}"):
        code, _, err = _graph(capsys, "a*a", "-o", str(given))
        assert (code, err.count("\n")) == (2, 1), err
        assert "this is a folder; give a file name, e.g. " + str(tmp_path / "pictures" / "graph.svg") in err, err
        assert "format" not in err
    code, _, err = _graph(capsys, "a*a", "-o", f"{tmp_path / 'new'}{os.sep}")  # a folder that is not there
    assert code == 2 and "this names a folder, and there is none; give a file name, e.g. " in err
    assert str(tmp_path / "new.svg") in err and "format" not in err
    code, _, err = _graph(capsys, "a*a", "-o", str(tmp_path / "picture"))  # a file name without a suffix
    assert code == 2 and "no picture format in the name; end the name with .svg, .png or .pdf" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pictures"]
