"""Writing the run's files: atomically, so a crash or Ctrl-C never leaves half a file.

Every writer here goes through the package's one helper,
:func:`autograd_core._files.atomic_write`: a temporary file in the
destination's folder, flushed to disk, then moved into place with
``os.replace`` (atomic on one file system).
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import math
from pathlib import Path

from .._files import atomic_write
from .errors import AppError


def write_file(path, writer):
    """Write ``path`` atomically by calling ``writer(binary_file)``; returns the path.

    For writers that take an open file (matplotlib's ``savefig``). If the
    writer raises, ``path`` is left as it was and no temporary file remains.

    >>> write_file("curves.png", lambda file: figure.savefig(file, format="png"))   # doctest: +SKIP
    PosixPath('curves.png')
    """
    return atomic_write(path, writer)


def write_text(path, text):
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path.

    >>> write_text("notes.txt", "trained on iris\\n")            # doctest: +SKIP
    PosixPath('notes.txt')
    """
    return atomic_write(path, text)


def write_json(path, data):
    """Write ``data`` as indented, strict JSON, atomically; returns the path.

    Strict: a NaN or infinite number is written as ``null`` (JSON has no
    NaN or Infinity; Python's ``json`` would write them and other readers
    refuse the file).

    >>> write_json("run.json", {"epochs": 100})                 # doctest: +SKIP
    PosixPath('run.json')
    """
    return write_text(path, json.dumps(_strict(data), indent=2, sort_keys=False, allow_nan=False) + "\n")


def _strict(value):
    """`value` with every non-finite float replaced by None (containers walked with a stack)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if not isinstance(value, (dict, list, tuple)):
        return value
    root = [value]
    stack = [(root, 0)]
    while stack:
        container, key = stack.pop()
        item = container[key]
        if isinstance(item, float) and not math.isfinite(item):
            container[key] = None
        elif isinstance(item, dict):
            container[key] = dict(item)
            stack.extend((container[key], k) for k in container[key])
        elif isinstance(item, (list, tuple)):
            container[key] = list(item)
            stack.extend((container[key], k) for k in range(len(container[key])))
    return root[0]


def write_csv(path, rows, columns):
    """Write a list of dicts as CSV with a header row, atomically.

    >>> write_csv("metrics.csv", [{"epoch": 1, "loss": 0.5}], ["epoch", "loss"])   # doctest: +SKIP
    """
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: _csv_cell(row.get(key)) for key in columns})
    return write_text(path, buffer.getvalue())


def _csv_cell(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return value


def prepare_output_dir(out=None, now=None):
    """Create the folder a run writes to and return it.

    ``out=None`` means ``runs/<date>_<time>`` under the current folder (with a
    suffix if two runs start in the same second). An existing folder is reused:
    files the run writes are replaced, other files are left alone.
    """
    if out is None:
        stamp = (now or _dt.datetime.now()).strftime("%Y-%m-%d_%H%M%S")
        base = Path("runs") / stamp
        out, suffix = base, 1
        while out.exists():
            suffix += 1
            out = base.with_name(f"{stamp}-{suffix}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise AppError(f"--out {out}: this is a file, not a folder; give a folder name for the run's files")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AppError(f"--out {out}: cannot create the folder ({exc.strerror})") from None
    return out
