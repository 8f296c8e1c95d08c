"""``autograd-core grade``: run an exercise notebook and say which exercises pass.

The notebook runs top to bottom in a fresh Python kernel (nbclient), every
cell even after an error, so an unfinished exercise fails with its hint and
the ones after it are still graded. Each check cell displays its result as
JSON (``autograd_core.exercises.MIME``); the table is made from those.

Which exercises a notebook has is written in its metadata when it is built
(``notebooks/build.py``): the notebook lists them, and each check cell names
its own. An exercise whose check cell is missing, stopped or never ran
counts as failed, with the reason.

Exit status: 0 when every exercise passes, 1 when some fail, 2 when a path
is not a readable notebook file (or holds no exercises).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

from .._files import FileTooLargeError, NotARegularFileError, open_regular_file
from ..exercises import MIME
from .errors import AppError
from .report import terminal_safe

MAX_NOTEBOOK_BYTES = 32 * 1024 * 1024  # an exercise notebook is a few hundred kB even with its pictures
CELL_TIMEOUT = 120  # seconds a cell may run before it is interrupted
KERNEL = "python3"  # always this kernel: the notebook's own kernelspec is not obeyed
TITLE_WIDTH = 44
HINT_LIMIT = 2_000  # characters of a hint shown (a result is the notebook's output: bounded)


def grade_command(args, stream=None):
    """Grade each notebook of ``args.notebooks``; returns the exit status."""
    stream = stream if stream is not None else sys.stdout
    statuses, totals = [], []
    for path in args.notebooks:
        try:
            notebook = read_notebook(path)
            exercises = exercises_of(notebook, path)
        except AppError as error:
            print(f"autograd-core: error: {terminal_safe(error)}", file=sys.stderr)
            statuses.append(2)
            continue
        stopped = run_notebook(notebook, Path(path).resolve().parent, args.timeout)
        rows = results(notebook, exercises, stopped, args.timeout)
        print_table(path, rows, stream)
        passed = sum(row["passed"] for row in rows)
        totals.append((path, passed, len(rows)))
        statuses.append(0 if passed == len(rows) else 1)
    if len(args.notebooks) > 1:
        print("\nsummary", file=stream)
        for path, passed, count in totals:
            print(f"  {terminal_safe(path)}: {passed} of {count}", file=stream)
    return max(statuses)


def read_notebook(path):
    """The notebook at `path`, read only if it is a regular file of bounded
    size and parses as a Jupyter notebook; else AppError."""
    try:
        import nbformat
    except ImportError:
        raise AppError('grade needs nbformat and nbclient: pip install -e ".[notebooks]"') from None
    try:
        with open_regular_file(path, MAX_NOTEBOOK_BYTES) as file:
            data = file.read(MAX_NOTEBOOK_BYTES + 1)
    except FileNotFoundError:
        raise AppError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise AppError(f"{path}: is a folder; give notebook files, e.g. autograd-core grade {path}/*.ipynb") from None
    except (NotARegularFileError, FileTooLargeError) as error:
        raise AppError(f"{path}: {_reason(error)}") from None
    except OSError as error:
        raise AppError(f"{path}: cannot read it ({error.strerror or error})") from None
    try:
        with warnings.catch_warnings():  # nbformat warns about old ids and such: not the user's business here
            warnings.simplefilter("ignore")
            notebook = nbformat.reads(data.decode("utf-8"), as_version=4)
            nbformat.validate(notebook)
    except Exception as error:  # undecodable bytes, not JSON, JSON that is not a notebook, too deep...
        detail = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        raise AppError(f"{path}: not a Jupyter notebook ({detail})") from None
    return notebook


def _reason(error):
    """The part of an _files error after the path it quotes."""
    text = str(error)
    return text.split("' ", 1)[1] if text.startswith("'") and "' " in text else text


def exercises_of(notebook, path):
    """[(id, title)] of the notebook's exercises, in order, from its
    metadata (the check cells' own, when the notebook's list is gone)."""
    listed = _metadata(notebook).get("exercises")
    found = []
    if isinstance(listed, list):
        for entry in listed:
            if isinstance(entry, dict) and isinstance(entry.get("id"), str):
                found.append((entry["id"][:20], str(entry.get("title", ""))[:200]))
    if not found:
        for cell in notebook.cells:
            exercise_id = _metadata(cell).get("exercise")
            if isinstance(exercise_id, str):
                found.append((exercise_id[:20], ""))
    if not found:
        raise AppError(f"{path}: no exercises in this notebook (its check cells carry them in their metadata; "
                       f"the exercise notebooks are in notebooks/exercises/)")
    return found


def _metadata(node):
    data = node.get("metadata", {}).get("autograd_core")
    return data if isinstance(data, dict) else {}


def run_notebook(notebook, folder, timeout):
    """Run every code cell in a fresh kernel, errors or not. Returns None,
    or why the run stopped early (the kernel died)."""
    try:
        from nbclient import NotebookClient
        from nbclient.exceptions import DeadKernelError
    except ImportError:
        raise AppError('grade needs nbclient and a Jupyter kernel: pip install -e ".[notebooks]"') from None
    for cell in notebook.cells:  # run from the sources alone, never trust saved outputs
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    client = NotebookClient(
        notebook, kernel_name=KERNEL, timeout=timeout, allow_errors=True, record_timing=False,
        interrupt_on_timeout=True,  # a cell that runs too long is stopped, and the next cells still run
        error_on_timeout={"ename": "CellTimeoutError", "evalue": f"it ran longer than {timeout} s and was stopped",
                          "traceback": []},
        resources={"metadata": {"path": str(folder)}},
    )
    try:
        client.execute(stderr=subprocess.DEVNULL)  # the kernel's own log lines (a TCP warning) are not the user's
    except DeadKernelError:
        return "the Python kernel died"
    except Exception as error:
        if client.code_cells_executed == 0:  # the kernel never started: nothing was graded
            raise AppError(f"could not start a Python kernel to run the notebook ({type(error).__name__}: "
                           f"{str(error).strip()[:200]}); pip install -e \".[notebooks]\"") from None
        return f"the run stopped ({type(error).__name__})"
    return None


def results(notebook, exercises, stopped=None, timeout=CELL_TIMEOUT):
    """One row per exercise: id, title, passed, hint (from the executed notebook)."""
    cells = {}
    for cell in notebook.cells:
        exercise_id = _metadata(cell).get("exercise")
        if cell.cell_type == "code" and isinstance(exercise_id, str):
            cells.setdefault(exercise_id[:20], cell)
    rows = []
    for exercise_id, title in exercises:
        cell = cells.get(exercise_id)
        row = {"id": exercise_id, "title": title, "passed": False, "hint": ""}
        if cell is None:
            row["hint"] = "its check cell is missing from the notebook (it ends in the exercise's `with exercise(...)`)"
        else:
            found = _result(cell, exercise_id)
            if found is not None:
                row.update(passed=found["passed"] is True, hint=str(found.get("hint", ""))[:HINT_LIMIT])
                row["title"] = title or str(found.get("title", ""))[:200]
            else:
                row["hint"] = _why_no_result(cell, stopped, timeout)
        rows.append(row)
    return rows


def _result(cell, exercise_id):
    """The last result the check cell displayed for this exercise, or None."""
    found = None
    for output in cell.get("outputs", []):
        data = output.get("data", {}) if output.get("output_type") in ("display_data", "execute_result") else {}
        result = data.get(MIME)
        if isinstance(result, dict) and result.get("id") == exercise_id and isinstance(result.get("passed"), bool):
            found = result
    return found


def _why_no_result(cell, stopped, timeout):
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            name, value = str(output.get("ename", "")), str(output.get("evalue", "")).strip()
            if name in ("CellTimeoutError", "KeyboardInterrupt"):  # what a timeout's interrupt leaves
                return f"the check cell was stopped: it ran longer than {timeout} s (--timeout)"
            return f"the check cell stopped with {name}{': ' + value if value else ''}"[:HINT_LIMIT]
    if stopped:
        return f"the check cell did not run: {stopped} before it"
    return "the check cell printed no result (was its `with exercise(...)` block changed?)"


def print_table(path, rows, stream):
    """The exercises, one line each, a hint under each failed one, and the count."""
    print(terminal_safe(path), file=stream)
    width = max(len(row["id"]) for row in rows)
    for row in rows:
        title = row["title"] if len(row["title"]) <= TITLE_WIDTH else row["title"][:TITLE_WIDTH - 1] + "…"
        status = "passed" if row["passed"] else "failed"
        print(terminal_safe(f"  {row['id']:<{width}}  {title:<{TITLE_WIDTH}}  {status}"), file=stream)
        if not row["passed"] and row["hint"]:
            indent = " " * (width + 4)
            hint = textwrap.fill(" ".join(row["hint"].split()), width=96, initial_indent=indent, subsequent_indent=indent)
            print(terminal_safe(hint), file=stream)
    passed = sum(row["passed"] for row in rows)
    print(f"{passed} of {len(rows)} exercises pass", file=stream)
