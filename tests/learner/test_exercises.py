"""The exercise notebooks and `autograd-core grade`.

Every solution notebook grades as all passed; every blank one grades as all
failed, each exercise with a hint, and no cell of it raises. Each notebook is
run once (in a module fixture); the command's own behaviour is checked on
small notebooks made here and on paths that are not notebooks.
"""

import contextlib
import importlib.util
import io
import os
import re
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

from autograd_core import cli  # noqa: E402
from autograd_core.app import grade  # noqa: E402
from autograd_core.exercises import MIME, exercise  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"


def _load_build():
    spec = importlib.util.spec_from_file_location("notebooks_build", NOTEBOOKS / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = _load_build()
SOURCES = build.exercise_sources()
BLANKS = [NOTEBOOKS / "exercises" / f"{s.stem}.ipynb" for s in SOURCES]
SOLUTIONS = [NOTEBOOKS / "exercises" / "solutions" / f"{s.stem}.ipynb" for s in SOURCES]


def run_cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli.main(["grade", *map(str, argv)])
    return status, out.getvalue(), err.getvalue()


# --------------------------------------------------------------------------
# The notebooks and their sources (no kernel)
# --------------------------------------------------------------------------
def test_there_are_eight_topics_each_with_a_blank_and_a_solution():
    topics = ["chain_rule", "tanh_neuron", "softmax_cross_entropy", "two_layer_backward", "batch_norm", "dropout",
              "momentum_adam", "newton"]
    assert [s.stem[5:] for s in SOURCES] == topics
    assert all(path.is_file() for path in BLANKS + SOLUTIONS)


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_exercise_notebooks_match_their_source(source):
    assert build.exercise_out_of_date(source) == []
    blank = nbformat.read(NOTEBOOKS / "exercises" / f"{source.stem}.ipynb", as_version=4)
    nbformat.validate(blank)
    code = [c for c in blank.cells if c.cell_type == "code"]
    assert all(c.outputs == [] for c in code), "a blank notebook is handed out without outputs"
    text = "\n".join(c.source for c in code)
    listed = blank.metadata["autograd_core"]["exercises"]
    assert len(listed) >= 2
    assert text.count("raise NotImplementedError(") >= len(listed)
    assert "### SOLUTION" not in text and "### BLANK" not in text


def test_a_build_gives_the_same_notebook_twice():
    source = SOURCES[0]
    first = nbformat.writes(build.exercise_notebook(source, "BLANK"))
    assert first == nbformat.writes(build.exercise_notebook(source, "BLANK"))
    assert first + "\n" == (NOTEBOOKS / "exercises" / f"{source.stem}.ipynb").read_text(encoding="utf-8")  # nbformat.write ends in a newline


def test_the_markers_must_come_in_order():
    assert build.version("a\n  ### SOLUTION\n  b\n  ### BLANK\n  c\n  ### END\nd", "SOLUTION") == "a\n  b\nd"
    with pytest.raises(ValueError, match="line 2: ### BLANK where ### SOLUTION was expected"):
        build.version("a\n### BLANK\nb\n### END\n", "BLANK")
    with pytest.raises(ValueError, match="no ### END"):
        build.version("### SOLUTION\nb\n### BLANK\nc\n", "BLANK")


# --------------------------------------------------------------------------
# Grading every notebook, once each
# --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def graded():
    """{path: (rows, the executed notebook)} for every blank and solution notebook."""
    found = {}
    for path in BLANKS + SOLUTIONS:
        notebook = grade.read_notebook(path)
        exercises = grade.exercises_of(notebook, path)
        stopped = grade.run_notebook(notebook, path.parent, timeout=120)
        assert stopped is None
        found[path] = (grade.results(notebook, exercises), notebook)
    return found


@pytest.mark.slow
@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_every_solution_passes(graded, path):
    rows, _ = graded[path]
    assert [row["id"] for row in rows if not row["passed"]] == [], [row["hint"] for row in rows]


@pytest.mark.slow
@pytest.mark.parametrize("path", BLANKS, ids=lambda p: p.stem)
def test_every_blank_fails_with_a_hint_and_nothing_crashes(graded, path):
    rows, notebook = graded[path]
    assert rows and not any(row["passed"] for row in rows)
    for row in rows:
        assert row["hint"].startswith("Not done yet: "), row
        assert len(row["hint"]) > len("Not done yet: ") + 10
    errors = [(c.source[:60], o.get("ename")) for c in notebook.cells if c.cell_type == "code"
              for o in c.outputs if o.output_type == "error"]
    assert errors == [], "a blank notebook's cells must run without raising"
    # the student sees a line per exercise, not a traceback
    printed = [o["data"]["text/plain"] for c in notebook.cells if c.cell_type == "code"
               for o in c.outputs if MIME in o.get("data", {})]
    assert len(printed) == len(rows) and all(p.startswith("✗ Exercise") for p in printed)


# --------------------------------------------------------------------------
# A student's first try and second try, in-process (no kernel)
# --------------------------------------------------------------------------
def student_run(stem, answers):
    """Run the blank notebook's cells in-process with each blank line replaced by an answer
    ({blank line: answer}); returns what the checks printed."""
    text = build.version((build.EXERCISE_SOURCES / f"{stem}.py").read_text(encoding="utf-8"), "BLANK")
    for blank, answer in answers.items():
        assert blank in text
        text = text.replace(blank, answer)
    namespace, printed = {}, io.StringIO()
    with contextlib.redirect_stdout(printed):
        for kind, code in build.parse_cells(text):
            if kind == "code":
                exec(compile(code, f"<{stem}>", "exec"), namespace)
    return " ".join(printed.getvalue().split())


def test_a_student_gets_a_targeted_hint_then_a_pass_for_tanh():
    blank = '    raise NotImplementedError("return d tanh(x)/dx, written with out = tanh(x)")'
    wrong = student_run("ex02_tanh_neuron", {blank: "    return out ** 2 - 1"})
    assert "✗ Exercise 2.1 (tanh's local gradient) does not pass yet." in wrong
    assert "Hint: the sign is wrong: every element has the right size and the opposite sign." in wrong
    right = student_run("ex02_tanh_neuron", {blank: "    return 1 - out ** 2"})
    assert "✓ Exercise 2.1 passes: tanh's local gradient." in right


def test_a_student_gets_the_missing_transpose_then_a_pass_for_matmul():
    blank_a = '    raise NotImplementedError("return dL/dA, of A\'s shape, from g and b")'
    blank_b = '    raise NotImplementedError("return dL/dB, of B\'s shape, from a and g")'
    wrong = student_run("ex04_two_layer_backward", {blank_a: "    return g @ b", blank_b: "    return a.T @ g"})
    assert "✗ Exercise 4.1 (the rules of a matrix product) does not pass yet." in wrong
    assert "the right value is g @ b.T (shapes (2, 4) @ (4, 3))" in wrong
    right = student_run("ex04_two_layer_backward", {blank_a: "    return g @ b.T", blank_b: "    return a.T @ g"})
    assert "✓ Exercise 4.1 passes: the rules of a matrix product." in right


def test_an_exercise_block_turns_errors_into_hints():
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        with exercise("9.1", "typo") as ex:
            undefined_name  # noqa: F821
        with exercise("9.2", "a crash in student code") as crashed:
            [1, 2][5]
    assert ex.passed is False and "name 'undefined_name' is not defined: run the cells above" in ex.hint
    assert crashed.hint.startswith("Your code raised IndexError: list index out of range")
    assert printed.getvalue().count("does not pass yet") == 2


def test_an_exercise_block_lets_keyboard_interrupt_through():
    with pytest.raises(KeyboardInterrupt):
        with exercise("9.3", "interrupted"):
            raise KeyboardInterrupt


def test_close_explains_shapes_and_factors():
    with contextlib.redirect_stdout(io.StringIO()):
        with exercise("9.4", "shapes") as ex:
            ex.close("db", [[1.0], [2.0], [3.0], [4.0]], [10.0])
        with exercise("9.5", "factor") as factor:
            ex2 = factor
            ex2.close("dW", [4.0, 8.0], [1.0, 2.0], sizes={"m, the number of examples": 4})
    assert ex.hint.startswith("db has shape (4, 1) but should have shape (1,): the shape (4, 1) is db's shape (1,) "
                              "stretched over axis 0 (the batch)")
    assert "with that sum the numbers are right" in ex.hint
    assert factor.hint == ("dW, element [0], is 4 but should be 1 (2 of 2 elements differ); every element is 4 times "
                           "the right value: a constant factor is off (4 is m, the number of examples: a division by "
                           "it missing?).")


# --------------------------------------------------------------------------
# The command: tables, exit statuses, hostile files
# --------------------------------------------------------------------------
def small_notebook(tmp_path, cells, name="small.ipynb", exercises=None, kernel="python3"):
    """A notebook of code cells; a cell given as (source, id) is the check cell of exercise id."""
    nb = nbformat.v4.new_notebook()
    listed = []
    for cell in cells:
        source, exercise_id = cell if isinstance(cell, tuple) else (cell, None)
        made = nbformat.v4.new_code_cell(source)
        if exercise_id:
            made.metadata["autograd_core"] = {"exercise": exercise_id}
            listed.append({"id": exercise_id, "title": f"exercise {exercise_id}"})
        nb.cells.append(made)
    nb.metadata["autograd_core"] = {"exercises": listed if exercises is None else exercises}
    nb.metadata["kernelspec"] = {"name": kernel, "display_name": kernel, "language": kernel}
    path = tmp_path / name
    nbformat.write(nb, path)
    return path


@pytest.mark.slow
def test_grade_runs_every_cell_and_tabulates_with_exit_status_one(tmp_path):
    forged = nbformat.v4.new_output("display_data", data={"text/plain": "✓", MIME: {"id": "1", "title": "t",
                                                                                      "passed": True, "hint": ""}})
    path = small_notebook(tmp_path, [
        "from autograd_core.exercises import exercise",
        "def answer():\n    raise NotImplementedError('write the answer')",
        ("with exercise('1', 'first') as ex:\n    ex.expect(answer() == 42, 'not 42')", "1"),
        "raise RuntimeError('a broken cell in between')",
        ("with exercise('2', 'second') as ex:\n    ex.expect(True, '')", "2"),
        ("import time\nwith exercise('3', 'slow') as ex:\n    time.sleep(60)", "3"),
        ("with exercise('4', 'after the slow one') as ex:\n    ex.expect(1 + 1 == 2, '')", "4"),
        ("print('this check cell prints no result')", "5"),
    ], exercises=[{"id": str(k), "title": f"exercise {k}"} for k in range(1, 7)], kernel="bash")
    nb = nbformat.read(path, as_version=4)
    nb.cells[2].outputs = [forged]  # a saved "passed" is never believed: outputs are cleared before the run
    nbformat.write(nb, path)
    status, out, err = run_cli(path, "--timeout", "3")
    assert status == 1 and err == ""
    lines = out.splitlines()
    assert lines[0] == str(path) and lines[-1] == "2 of 6 exercises pass"
    table = "\n".join(lines)
    assert re.search(r"^  1  exercise 1 +failed\n +Not done yet: write the answer\.$", table, flags=re.M)
    assert re.search(r"^  2  exercise 2 +passed$", table, flags=re.M)  # after an error, still run
    assert re.search(r"^  3  exercise 3 +failed\n +the check cell was stopped: it ran longer than 3 s \(--timeout\)$",
                     table, flags=re.M)
    assert re.search(r"^  4  exercise 4 +passed$", table, flags=re.M)  # after a timeout, still run
    assert "the check cell printed no result" in table
    assert re.search(r"^  6  exercise 6 +failed\n +its check cell is missing", table, flags=re.M)
    assert "Traceback" not in out + err


@pytest.mark.slow
def test_grade_exit_status_zero_when_all_pass_and_a_summary_for_several(tmp_path):
    passing = small_notebook(tmp_path, ["from autograd_core.exercises import exercise",
                                        ("with exercise('1', 'one') as ex:\n    ex.close('x', 2.0, 2.0)", "1")])
    status, out, _ = run_cli(passing)
    assert status == 0 and out.splitlines()[-1] == "1 of 1 exercises pass"
    status, out, err = run_cli(passing, tmp_path / "missing.ipynb")
    assert status == 2 and "summary" in out and f"{passing}: 1 of 1" in out
    assert "missing.ipynb: no such file" in err


@pytest.mark.parametrize("make, message", [
    (lambda tmp: tmp / "nope.ipynb", "no such file"),
    (lambda tmp: tmp, "is a folder"),
    (lambda tmp: Path("/dev/zero"), "not a regular file"),
    (lambda tmp: (tmp / "a.ipynb").write_text("not json {") and tmp / "a.ipynb", "not a Jupyter notebook"),
    (lambda tmp: (tmp / "b.ipynb").write_text('{"cells": 3}') and tmp / "b.ipynb", "not a Jupyter notebook"),
    (lambda tmp: (tmp / "c.ipynb").write_bytes(b"\xff\xfe\x00") and tmp / "c.ipynb", "not a Jupyter notebook"),
    (lambda tmp: (tmp / "d.ipynb").write_text("[" * 100_000) and tmp / "d.ipynb", "not a Jupyter notebook"),
])
def test_grade_refuses_what_is_not_a_notebook_with_status_two(tmp_path, make, message):
    status, out, err = run_cli(make(tmp_path))
    assert status == 2 and out == ""
    assert message in err and err.startswith("autograd-core: error: ") and "Traceback" not in err


def test_grade_refuses_a_fifo_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "pipe.ipynb"
    os.mkfifo(fifo)
    status, _, err = run_cli(fifo)
    assert status == 2 and "not a regular file (a named pipe)" in err


def test_grade_refuses_a_notebook_over_the_size_limit_before_reading_it(tmp_path, monkeypatch):
    path = small_notebook(tmp_path, ["x = 1"])
    monkeypatch.setattr(grade, "MAX_NOTEBOOK_BYTES", 100)
    status, _, err = run_cli(path)
    assert status == 2 and "more than the 100 its reader takes" in err


def test_grade_refuses_a_notebook_without_exercises(tmp_path):
    course = NOTEBOOKS / "01_chain_rule.ipynb"
    status, _, err = run_cli(course)
    assert status == 2 and "no exercises in this notebook" in err


def test_grade_prints_notebook_text_safely(tmp_path):
    rows = [{"id": "1", "title": "evil\x1b]0;title\x07", "passed": False, "hint": "see \x1b[31mred"}]
    out = io.StringIO()
    grade.print_table("x\x1b[2J.ipynb", rows, out)
    assert "\x1b" not in out.getvalue() and "\\x1b" in out.getvalue()


def test_results_ignore_a_result_of_another_exercise_or_of_the_wrong_type():
    cell = nbformat.v4.new_code_cell("", metadata={"autograd_core": {"exercise": "1"}})
    cell.outputs = [nbformat.v4.new_output("display_data", data={MIME: {"id": "2", "passed": True}}),
                    nbformat.v4.new_output("display_data", data={MIME: {"id": "1", "passed": "yes"}})]
    nb = nbformat.v4.new_notebook(cells=[cell])
    (row,) = grade.results(nb, [("1", "one")])
    assert row["passed"] is False and "printed no result" in row["hint"]


def test_grade_help_names_the_exit_statuses():
    parser = cli.build_parser()
    text = parser.commands["grade"].format_help()
    assert "Exit status 0" in " ".join(text.split()) and "--timeout" in text
