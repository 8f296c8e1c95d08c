"""The data a run trains on: a built-in set or a CSV file, split and standardised.

A CSV file has a header row, numeric feature columns and one label column
(numbers or names; each distinct label is a class). Problems are reported with
the file, the row and the column, and what to do about them.

Images (the digits) are rows of pixels like any table, with their
``image_shape`` (channels, height, width) beside them: an MLP reads the rows,
a CNN the images (see :func:`split_and_standardise`).
"""

from __future__ import annotations

import csv
import math
import re
from array import array
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._files import FileTooLargeError, NotARegularFileError, open_regular_file
from .errors import AppError

BUILTIN = ("iris", "moons", "spirals", "blobs", "digits")
IMAGE_DATA = ("digits",)  # the built-in sets whose rows are images


@dataclass
class Dataset:
    """Features ``X`` (n, d) float64, class indices ``y`` (n,) int64, and names.

    ``image_shape`` is ``(channels, height, width)`` when each row is an image
    (its pixels channel by channel, row by row, so ``d = C * H * W``), else None.
    """

    X: np.ndarray
    y: np.ndarray
    feature_names: list
    class_names: list
    name: str = ""
    image_shape: tuple | None = None

    @property
    def num_classes(self):
        return len(self.class_names)


@dataclass
class Split:
    """A train/validation split, standardised with the training part's statistics.

    For a CNN the examples are images ``(n, C, H, W)`` and ``mean`` and ``std``
    have shape ``(C, 1, 1)``: one pair per channel; otherwise rows ``(n, d)``
    with one pair per feature.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    extra: dict = field(default_factory=dict)

    def standardise(self, X):
        """Apply the training statistics to new raw features."""
        return (np.asarray(X, dtype=np.float64) - self.mean) / self.std


MAX_CSV_BYTES = 256 << 20     # a CSV file larger than this is refused before it is read
MAX_LINE_BYTES = 1 << 20      # one line of the file (a /dev/zero or a binary file has none shorter)
MAX_CELLS = 32_000_000        # feature values (256 MB as float64)
MAX_CLASSES = 10_000          # more distinct labels than this is a column of ids or numbers, not classes


def load_csv(path, label=None):
    """Read a CSV file of numeric features and one label column.

    ``label`` names the label column (default: the last column). Labels may
    be numbers or words; classes are numbered in sorted order of their labels.
    Errors name the file's line (blank lines and quoted fields that span
    lines counted), and the file is read in bounded pieces: at most
    ``MAX_CSV_BYTES`` in all and ``MAX_LINE_BYTES`` a line. A pipe or a
    device is refused before anything is read.

    >>> ds = load_csv("flowers.csv", label="species")        # doctest: +SKIP
    >>> ds.X.shape, ds.class_names                              # doctest: +SKIP
    ((150, 4), ['setosa', 'versicolor', 'virginica'])
    """
    path = Path(path)
    where = f"--csv {path}"
    try:
        with open_regular_file(path, MAX_CSV_BYTES) as handle:
            header, header_line, values, labels = _read_rows(csv.reader(_bounded_lines(handle, where)), where, label)
    except FileNotFoundError:
        raise AppError(f"{where}: no such file") from None
    except IsADirectoryError:
        raise AppError(f"{where}: this is a folder; give the path of a .csv file") from None
    except NotARegularFileError as exc:
        raise AppError(f"{where}: {exc}; save the data to a file and give its path") from None
    except FileTooLargeError as exc:
        raise AppError(f"{where}: the file is larger than {exc.limit:,} bytes, the most a run reads") from None
    except UnicodeDecodeError as exc:
        raise AppError(f"{where}: not a UTF-8 text file ({exc.reason} at byte {exc.start} of a line)") from None
    except OSError as exc:
        raise AppError(f"{where}: cannot read it ({exc.strerror or exc})") from None

    label = header[-1] if label is None else label
    label_index = header.index(label)
    feature_names = [name for i, name in enumerate(header) if i != label_index]
    features = np.frombuffer(values, dtype=np.float64).reshape(len(labels), len(feature_names)).copy()
    class_names = _sorted_labels(set(labels))
    if len(class_names) > MAX_CLASSES:
        raise AppError(f"{where}: column {label!r} holds {len(class_names):,} different labels, more than the "
                       f"{MAX_CLASSES:,} classes a run trains; is it an id or a measurement? name the label column "
                       f"with --label")
    _check_classes(class_names, len(labels), label, where)
    if len(class_names) < 2:
        raise AppError(f"{where}: column {label!r} holds a single class ({class_names[0]!r}); a classifier needs at least two")
    index = {name: k for k, name in enumerate(class_names)}
    y = np.array([index[name] for name in labels], dtype=np.int64)
    return Dataset(features, y, feature_names, class_names, name=path.name)


def _check_classes(class_names, rows, label, where):
    """Refuse a label column that holds no classes: measurements (numbers that
    are not whole) or ids (more than half the rows a class of their own; files
    of ten classes or fewer are not judged). Training on it would run as a
    classifier of hundreds of one-example classes and learn nothing."""
    fractional = next((name for name in class_names if _is_fraction(name)), None)
    if fractional is not None:
        raise AppError(f"{where}: the label column {_shorten(label)!r} holds numbers that are not whole, such as "
                       f"{_shorten(fractional)!r}: it looks like a measurement to predict (regression), and a run "
                       f"trains a classifier; name the column of classes with --label")
    if len(class_names) > max(rows / 2, 10):
        raise AppError(f"{where}: the label column {_shorten(label)!r} holds {len(class_names):,} different labels "
                       f"in {rows:,} rows, so most examples are a class of their own: it looks like an id or a "
                       f"measurement, not classes; name the column of classes with --label")


def _is_fraction(text):
    """'2.5' and '1e-3' are; '2', '2.0', 'setosa' are not."""
    try:
        value = float(text)
    except ValueError:
        return False
    return math.isfinite(value) and not value.is_integer()


def _bounded_lines(handle, where):
    """The file's lines as text, refusing a line or a file over the limits
    before decoding it (so /dev/zero or a huge file costs no more than the limit)."""
    total = 0
    first = True
    while True:
        line = handle.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        total += len(line)
        if len(line) > MAX_LINE_BYTES:
            raise AppError(f"{where}: a line is longer than {MAX_LINE_BYTES:,} bytes; "
                           f"this does not look like a CSV text file")
        if total > MAX_CSV_BYTES:
            raise AppError(f"{where}: the file is larger than {MAX_CSV_BYTES:,} bytes, the most a run reads")
        if b"\0" in line:
            raise AppError(f"{where}: the file holds NUL bytes; it is not a CSV text file")
        text = line.decode("utf-8-sig" if first else "utf-8")
        first = False
        # A file with old Mac line ends (\r only) arrives as one line: give the reader its lines.
        if "\r" in text.rstrip("\r\n"):
            yield from re.split(r"(?<=\r)(?!\n)", text)
        else:
            yield text


def _read_rows(reader, where, label):
    """(header, its line, feature values as float64 bytes, labels), converting
    row by row so only the numbers are kept in memory."""
    header, header_line, label_index, feature_index = None, 0, None, None
    values, labels = array("d"), []
    first_line = 1
    try:
        for row in reader:
            line = first_line if reader.line_num == first_line else f"{first_line}-{reader.line_num}"
            first_line = reader.line_num + 1
            if not any(cell.strip() for cell in row):
                if header is None and len(row) > 1:
                    # a header whose names are all empty (",,"): skipping it would make the
                    # first example the header, and that example would be lost
                    raise AppError(f"{where}, line {line}: the header row has {len(row)} columns but no names; "
                                   f"write a name for each column (the label column's is what --label takes)")
                continue  # blank lines (and lines of empty cells after the header) are skipped, but counted
            if header is None:
                header, header_line = [name.strip() for name in row], line
                label_index, feature_index = _check_header(header, label, where)
                continue
            if len(row) != len(header):
                hint = _delimiter_hint(row) if len(row) < len(header) else ""
                raise AppError(f"{where}, line {line}: {len(row)} cells, but the header has {len(header)} columns{hint}")
            labels.append(row[label_index].strip())
            if not labels[-1]:
                raise AppError(f"{where}, line {line}: the label cell (column {header[label_index]!r}) is empty")
            for i in feature_index:
                values.append(_number(row[i], where, line, header[i]))
            if len(values) > MAX_CELLS:
                raise AppError(f"{where}: more than {MAX_CELLS:,} feature values, the most a run reads")
    except csv.Error as exc:
        raise AppError(f"{where}, line {reader.line_num}: not a readable CSV file ({exc})") from None
    if header is None:
        raise AppError(f"{where}: the file is empty; it needs a header row and one row per example")
    if not labels:
        raise AppError(f"{where}: the file has a header row but no examples")
    return header, header_line, values, labels


def _check_header(header, label, where):
    if label is None:
        label = header[-1]
    if len(header) < 2:
        raise AppError(f"{where}: only one column, {_shorten(header[0])!r}; a feature column and a label column "
                       f"are needed{_delimiter_hint(header)}")
    if label not in header:
        raise AppError(f"{where}: no column named {label!r} for --label; the columns are "
                       f"{', '.join(map(repr, map(_shorten, header[:20])))}" + (" ..." if len(header) > 20 else ""))
    duplicates = sorted({name for name in header if header.count(name) > 1}) if len(header) <= 10_000 else \
        sorted(name for name, count in Counter(header).items() if count > 1)
    if duplicates:
        raise AppError(f"{where}: the header repeats the column name(s) {', '.join(map(repr, duplicates[:10]))}")
    label_index = header.index(label)
    return label_index, [i for i in range(len(header)) if i != label_index]


def _delimiter_hint(cells):
    """A hint when the cells look separated by something other than commas."""
    text = ",".join(cells)
    for delimiter, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "'|'")):
        if delimiter in text:
            return (f"; the file seems to separate its columns with {name}: save it as comma-separated "
                    f"(in a spreadsheet: CSV with ',' as the separator, '.' as the decimal point)")
    return ""


def _shorten(text, limit=60):
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _number(cell, where, line, column):
    text = cell.strip()
    if not text:
        raise AppError(f"{where}, line {line}, column {_shorten(column)!r}: the cell is empty; fill in or drop missing values")
    try:
        value = float(text)
    except ValueError:
        raise AppError(f"{where}, line {line}, column {_shorten(column)!r}: {_shorten(text)!r} is not a number "
                       f"(feature columns must be numeric; is {_shorten(column)!r} the label column? then pass "
                       f"--label {_shorten(column)}){_delimiter_hint([text])}") from None
    if not np.isfinite(value):
        raise AppError(f"{where}, line {line}, column {_shorten(column)!r}: {_shorten(text)!r} is not a finite number")
    return value


def _sorted_labels(labels):
    """Numeric labels in numeric order (2 before 10), words alphabetically."""
    try:
        return sorted(labels, key=float)
    except ValueError:
        return sorted(labels)


def split_and_standardise(dataset, val_split, rng, images=False):
    """Stratified train/validation split, then standardise with the train statistics.

    Every class keeps the same share of examples in the validation part (at
    least one when ``val_split > 0`` and the class has two or more).

    ``images=True`` (for a CNN; ``dataset.image_shape`` must be set) keeps the
    examples as ``(n, C, H, W)`` images and standardises each channel with one
    mean and spread over all its pixels, so the picture keeps its contrast;
    otherwise each feature (pixel) is standardised on its own, as an MLP's
    inputs are.

    >>> X = np.arange(20.0).reshape(10, 2); y = np.array([0] * 5 + [1] * 5)
    >>> split = split_and_standardise(Dataset(X, y, ["a", "b"], ["p", "q"]), 0.2, np.random.default_rng(0))
    >>> len(split.X_train), np.bincount(split.y_val).tolist()
    (8, [1, 1])
    >>> pictures = Dataset(X, y, ["a", "b"], ["p", "q"], image_shape=(1, 1, 2))
    >>> split = split_and_standardise(pictures, 0.2, np.random.default_rng(0), images=True)
    >>> split.X_train.shape, split.mean.shape
    ((8, 1, 1, 2), (1, 1, 1))
    """
    if not 0.0 <= val_split < 1.0:
        raise AppError(f"--val-split {val_split}: must be in [0, 1), e.g. 0.2 for a fifth of the data")
    train_index, val_index = [], []
    for k in range(dataset.num_classes):
        members = rng.permutation(np.flatnonzero(dataset.y == k))
        n_val = int(round(val_split * len(members)))
        if val_split > 0 and len(members) >= 2:
            n_val = min(max(n_val, 1), len(members) - 1)
        val_index.append(members[:n_val])
        train_index.append(members[n_val:])
    train_index = rng.permutation(np.concatenate(train_index))
    val_index = np.sort(np.concatenate(val_index))
    if images:
        return _standardise_images(dataset, train_index, val_index)
    X_train, y_train = dataset.X[train_index], dataset.y[train_index]
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is checked for below, by column
        mean = X_train.mean(axis=0)
        std = X_train.std(axis=0)
        std = np.where(std > 0, std, 1.0)  # a constant column stays 0 instead of becoming NaN
        split = Split(
            X_train=(X_train - mean) / std, y_train=y_train,
            X_val=(dataset.X[val_index] - mean) / std, y_val=dataset.y[val_index],
            mean=mean, std=std,
        )
    _check_finite(split, dataset)
    return split


def _standardise_images(dataset, train_index, val_index):
    """The split as (n, C, H, W) images, standardised channel by channel."""
    if dataset.image_shape is None:
        raise AppError(f"{dataset.name or 'the data'}: its rows are not images, so it cannot be split into images")
    images = dataset.X.reshape((len(dataset.X), *dataset.image_shape))
    X_train = images[train_index]
    mean = X_train.mean(axis=(0, 2, 3)).reshape(-1, 1, 1)
    std = X_train.std(axis=(0, 2, 3)).reshape(-1, 1, 1)
    std = np.where(std > 0, std, 1.0)  # a blank channel stays 0 instead of becoming NaN
    return Split(
        X_train=(X_train - mean) / std, y_train=dataset.y[train_index],
        X_val=(images[val_index] - mean) / std, y_val=dataset.y[val_index],
        mean=mean, std=std,
    )


def _check_finite(split, dataset):
    """Values near the float limit (1e308) overflow the mean or the spread:
    name the column instead of training on zeros or NaN."""
    bad = ~(np.isfinite(split.mean) & np.isfinite(split.std))
    for X in (split.X_train, split.X_val):
        if len(X):
            bad |= ~np.isfinite(X).all(axis=0)
    if bad.any():
        names = [repr(_shorten(str(dataset.feature_names[j]))) for j in np.flatnonzero(bad)[:5]]
        largest = float(np.abs(dataset.X[:, np.flatnonzero(bad)]).max())
        raise AppError(f"column(s) {', '.join(names)}: values as large as {largest:.3g} overflow a float64 when "
                       f"the column is standardised (its mean or spread is not finite); rescale the column, "
                       f"e.g. divide it by a power of ten")
