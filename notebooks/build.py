"""Build the course notebooks from their Python sources and run them.

Each notebook is written as a plain Python file in ``notebooks/source/``, in
the "percent" format that editors and jupytext understand: a line ``# %%``
starts a code cell, ``# %% [markdown]`` starts a text cell whose lines are
written as comments. This script turns every source into ``notebooks/<name>.ipynb``,
executes it top to bottom in a fresh ``python3`` kernel and saves it *with its
outputs*, so the notebooks read well on a code host and stay current.

    python notebooks/build.py              # build and execute every notebook
    python notebooks/build.py 03 05        # only the notebooks whose names contain 03 or 05
    python notebooks/build.py --check      # fail if a notebook's cells differ from its source

Everything in the sources is seeded, so executing twice gives the same outputs.
A source that needs optional packages says so before its first cell, in a line
``# requires: torch, onnx``: the notebook records it (``metadata["requires"]``)
and the tests skip it where those packages are missing.

The exercise notebooks come from ``notebooks/source/exercises/``, in the same
format, where each answer the student writes sits between marker lines::

    ### SOLUTION
    return 1 - out ** 2
    ### BLANK
    raise NotImplementedError("the local gradient of tanh, written with out")
    ### END

Each source gives two notebooks: ``notebooks/exercises/<name>.ipynb`` keeps the
BLANK lines and is saved without outputs (the handout);
``notebooks/exercises/solutions/<name>.ipynb`` keeps the SOLUTION lines and is
executed like a course notebook, and the build fails unless every exercise
passes. A check cell (``with exercise("2.1", "title") as ex:``) is marked in
the cell's metadata, and the notebook lists its exercises, for
``autograd-core grade``.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import nbformat

NOTEBOOKS = Path(__file__).resolve().parent
SOURCES = NOTEBOOKS / "source"
KERNEL = "python3"
CELL_TIMEOUT = 300  # seconds; every cell is meant to take well under one


def parse_cells(text: str) -> list[tuple[str, str]]:
    """Split a percent-format source into ``(kind, source)`` pairs.

    >>> parse_cells("# %% [markdown]\\n# # Title\\n\\n# %%\\nx = 1\\n")
    [('markdown', '# Title'), ('code', 'x = 1')]
    """
    cells: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("# %%"):
            kind = "markdown" if "[markdown]" in line else "code"
            cells.append((kind, []))
            continue
        if not cells:
            continue  # anything before the first marker (a module docstring) is not a cell
        kind, lines = cells[-1]
        if kind == "markdown":
            if line.startswith("# "):
                line = line[2:]
            elif line.strip() == "#":
                line = ""
        lines.append(line)
    return [(kind, "\n".join(lines).strip("\n")) for kind, lines in cells if "".join(lines).strip()]


def required_packages(text: str) -> list[str]:
    """The packages named in a ``# requires:`` line before the first cell.

    >>> required_packages("# requires: torch, onnx")
    ['torch', 'onnx']
    """
    head = text.split("\n# %%", 1)[0]
    match = re.search(r"^# requires:(.*)$", head, flags=re.M)
    return [name.strip() for name in match.group(1).split(",") if name.strip()] if match else []


def notebook_from_source(path: Path, text: str | None = None) -> nbformat.NotebookNode:
    """A fresh, unexecuted notebook holding the cells of one source file
    (or of `text`, a version of it)."""
    nb = nbformat.v4.new_notebook()
    text = path.read_text(encoding="utf-8") if text is None else text
    requires = required_packages(text)
    if requires:
        nb.metadata["requires"] = requires
    for kind, source in parse_cells(text):
        make = nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_code_cell
        nb.cells.append(make(source))
    nb.metadata["kernelspec"] = {"name": KERNEL, "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    # Stable cell ids keep re-builds from producing a diff when nothing changed.
    for index, cell in enumerate(nb.cells):
        cell["id"] = f"{path.stem[:40]}-{index}"
    return nb


def execute(nb: nbformat.NotebookNode, cwd: Path = NOTEBOOKS, timeout: int = CELL_TIMEOUT) -> nbformat.NotebookNode:
    """Run every cell in a fresh kernel (raises ``CellExecutionError`` on the first error)."""
    from nbclient import NotebookClient

    client = NotebookClient(
        nb,
        kernel_name=KERNEL,
        timeout=timeout,
        record_timing=False,  # no timestamps in the saved file
        resources={"metadata": {"path": str(cwd)}},
    )
    client.execute()
    nb.metadata["language_info"] = {"name": "python"}  # drop the patch version the kernel reports
    return nb


_ADDRESS = re.compile(r" at 0x[0-9a-f]+>")
_PLAYER_ID = re.compile(r"agc[0-9a-f]{10}")  # the backprop player's random element id


def make_reproducible(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Replace what differs from run to run and carries no meaning (object
    addresses in plain-text reprs, the players' random HTML ids, how printed
    text happened to be split into chunks) so that re-building an unchanged
    notebook gives a byte-identical file."""
    player_ids: dict[str, str] = {}

    def renumber(match):
        return player_ids.setdefault(match.group(0), f"agc{len(player_ids):010d}")

    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = _merge_streams(cell.outputs)
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if isinstance(data.get("text/plain"), str):
                data["text/plain"] = _ADDRESS.sub(">", data["text/plain"])
            if isinstance(data.get("text/html"), str):
                data["text/html"] = _PLAYER_ID.sub(renumber, data["text/html"])
    return nb


def _merge_streams(outputs):
    """Join consecutive stdout (or stderr) chunks into one output."""
    merged = []
    for output in outputs:
        previous = merged[-1] if merged else None
        if (output.output_type == "stream" and previous is not None and previous.output_type == "stream"
                and previous.name == output.name):
            previous.text += output.text
        else:
            merged.append(output)
    return merged


def write_atomically(nb: nbformat.NotebookNode, target: Path) -> None:
    """Write the notebook to a temporary file beside ``target``, then rename it."""
    fd, tmp = tempfile.mkstemp(prefix=target.name, suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            nbformat.write(nb, handle)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a notebook is an ordinary readable file
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------
# Exercise notebooks: a blank and a solution from one source
# --------------------------------------------------------------------------
EXERCISE_SOURCES = SOURCES / "exercises"
EXERCISES = NOTEBOOKS / "exercises"
SOLUTIONS = EXERCISES / "solutions"
_MARKER = re.compile(r"^[ \t]*### (SOLUTION|BLANK|END)[ \t]*$")
_CHECK = re.compile(r'^with exercise\(\s*"([^"\n]+)"\s*,\s*"([^"\n]+)"\s*\)', re.M)


def version(text: str, keep: str) -> str:
    """The source with only the SOLUTION or only the BLANK parts (`keep`),
    marker lines removed.

    >>> version("a\\n### SOLUTION\\nb\\n### BLANK\\nc\\n### END\\nd", "BLANK")
    'a\\nc\\nd'
    """
    kept, part = [], None
    for number, line in enumerate(text.splitlines(), 1):
        marker = _MARKER.match(line)
        if marker is None:
            if part is None or part == keep:
                kept.append(line)
            continue
        expected = {None: "SOLUTION", "SOLUTION": "BLANK", "BLANK": "END"}[part]
        if marker.group(1) != expected:
            raise ValueError(f"line {number}: ### {marker.group(1)} where ### {expected} was expected")
        part = None if marker.group(1) == "END" else marker.group(1)
    if part is not None:
        raise ValueError(f"the ### {part} part that starts near the end has no ### END")
    return "\n".join(kept)


def exercise_notebook(source: Path, keep: str) -> nbformat.NotebookNode:
    """The blank (keep="BLANK") or solution notebook of one exercise source,
    its check cells and its list of exercises in the metadata."""
    nb = notebook_from_source(source, version(source.read_text(encoding="utf-8"), keep))
    listed = []
    for cell in nb.cells:
        found = _CHECK.findall(cell.source) if cell.cell_type == "code" else []
        if len(found) > 1:
            raise ValueError(f"{source.name}: one exercise per check cell, found {len(found)}: {found}")
        if found:
            (exercise_id, title), = found
            cell.metadata["autograd_core"] = {"exercise": exercise_id}
            listed.append({"id": exercise_id, "title": title})
    if not listed:
        raise ValueError(f"{source.name}: no check cell (with exercise(\"1.1\", \"title\") as ex:)")
    nb.metadata["autograd_core"] = {"exercises": listed}
    return nb


def exercise_sources(patterns=()) -> list[Path]:
    found = sorted(EXERCISE_SOURCES.glob("ex[0-9][0-9]_*.py"))
    if patterns:
        found = [p for p in found if any(pat in p.stem for pat in patterns)]
    return found


def exercise_out_of_date(source: Path) -> list[str]:
    """Differences between an exercise source and its two notebooks ([] when in sync)."""
    problems = []
    for folder, keep in ((EXERCISES, "BLANK"), (SOLUTIONS, "SOLUTION")):
        target = folder / f"{source.stem}.ipynb"
        rebuild = f"run python notebooks/build.py {source.stem[:4]}"
        if not target.exists():
            problems.append(f"{target.relative_to(NOTEBOOKS)} is missing; {rebuild}")
            continue
        committed = nbformat.read(target, as_version=4)
        wanted = exercise_notebook(source, keep)
        have = [(c.cell_type, c.source, c.metadata.get("autograd_core")) for c in committed.cells]
        want = [(c.cell_type, c.source, c.metadata.get("autograd_core")) for c in wanted.cells]
        if have != want or committed.metadata.get("autograd_core") != wanted.metadata["autograd_core"]:
            problems.append(f"{target.relative_to(NOTEBOOKS)} differs from source/exercises/{source.name}; {rebuild}")
    return problems


def build_exercises(source: Path) -> list[str]:
    """Execute the solution notebook; when all its exercises pass, write it
    and the blank. Returns the solution's exercises that do not pass."""
    from autograd_core.app.grade import results  # the grader's own reading of the check cells

    blank, solution = exercise_notebook(source, "BLANK"), exercise_notebook(source, "SOLUTION")
    execute(solution, cwd=SOLUTIONS)
    listed = [(e["id"], e["title"]) for e in solution.metadata["autograd_core"]["exercises"]]
    failing = [f"{row['id']}: {row['hint']}" for row in results(solution, listed) if not row["passed"]]
    if not failing:  # both or neither: a blank is only handed out with a solution that passes
        write_atomically(blank, EXERCISES / f"{source.stem}.ipynb")
        write_atomically(make_reproducible(solution), SOLUTIONS / f"{source.stem}.ipynb")
    return failing


def sources(patterns=()) -> list[Path]:
    found = sorted(SOURCES.glob("[0-9][0-9]_*.py"))
    if patterns:
        found = [p for p in found if any(pat in p.stem for pat in patterns)]
    return found


def out_of_date(source: Path) -> list[str]:
    """Differences between a source and its committed notebook ([] when in sync)."""
    target = NOTEBOOKS / f"{source.stem}.ipynb"
    if not target.exists():
        return [f"{target.name} is missing; run python notebooks/build.py {source.stem[:2]}"]
    committed = nbformat.read(target, as_version=4)
    wanted = notebook_from_source(source)
    have = [(c.cell_type, c.source) for c in committed.cells] + [committed.metadata.get("requires")]
    want = [(c.cell_type, c.source) for c in wanted.cells] + [wanted.metadata.get("requires")]
    if have != want:
        return [f"{target.name} differs from source/{source.name}; run python notebooks/build.py {source.stem[:2]}"]
    return []


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("patterns", nargs="*", help="build only notebooks whose name contains one of these")
    parser.add_argument("--check", action="store_true", help="only check that notebooks match their sources")
    args = parser.parse_args(argv)
    chosen, exercises = sources(args.patterns), exercise_sources(args.patterns)
    if not chosen and not exercises:
        print("no notebook sources matched", file=sys.stderr)
        return 2
    if args.check:
        problems = [msg for src in chosen for msg in out_of_date(src)]
        problems += [msg for src in exercises for msg in exercise_out_of_date(src)]
        print("\n".join(problems) or f"{len(chosen)} notebooks and {len(exercises)} exercise notebooks "
                                      f"match their sources")
        return 1 if problems else 0
    for src in chosen:
        start = time.perf_counter()
        nb = make_reproducible(execute(notebook_from_source(src)))
        write_atomically(nb, NOTEBOOKS / f"{src.stem}.ipynb")
        print(f"{src.stem}.ipynb  executed in {time.perf_counter() - start:.1f} s")
    failed = False
    for src in exercises:
        start = time.perf_counter()
        failing = build_exercises(src)
        if failing:
            failed = True
            print(f"exercises/solutions/{src.stem}.ipynb NOT written: its solutions fail", file=sys.stderr)
            print("\n".join(f"  {line}" for line in failing), file=sys.stderr)
        else:
            print(f"exercises/{src.stem}.ipynb and its solution  built in {time.perf_counter() - start:.1f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
