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


def notebook_from_source(path: Path) -> nbformat.NotebookNode:
    """A fresh, unexecuted notebook holding the cells of one source file."""
    nb = nbformat.v4.new_notebook()
    requires = required_packages(path.read_text(encoding="utf-8"))
    if requires:
        nb.metadata["requires"] = requires
    for kind, source in parse_cells(path.read_text(encoding="utf-8")):
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
    chosen = sources(args.patterns)
    if not chosen:
        print("no notebook sources matched", file=sys.stderr)
        return 2
    if args.check:
        problems = [msg for src in chosen for msg in out_of_date(src)]
        print("\n".join(problems) or f"{len(chosen)} notebooks match their sources")
        return 1 if problems else 0
    for src in chosen:
        start = time.perf_counter()
        nb = make_reproducible(execute(notebook_from_source(src)))
        write_atomically(nb, NOTEBOOKS / f"{src.stem}.ipynb")
        print(f"{src.stem}.ipynb  executed in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
