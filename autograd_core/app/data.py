"""The data a run trains on: a built-in set or a CSV file, split and standardised.

A CSV file has a header row, numeric feature columns and one label column
(numbers or names; each distinct label is a class). Problems are reported with
the file, the row and the column, and what to do about them.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import AppError

BUILTIN = ("iris", "moons", "spirals", "blobs")


@dataclass
class Dataset:
    """Features ``X`` (n, d) float64, class indices ``y`` (n,) int64, and names."""

    X: np.ndarray
    y: np.ndarray
    feature_names: list
    class_names: list
    name: str = ""

    @property
    def num_classes(self):
        return len(self.class_names)


@dataclass
class Split:
    """A train/validation split, standardised with the training part's statistics."""

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


def load_csv(path, label=None):
    """Read a CSV file of numeric features and one label column.

    ``label`` names the label column (default: the last column). Labels may
    be numbers or words; classes are numbered in sorted order of their labels.

    >>> ds = load_csv("flowers.csv", label="species")        # doctest: +SKIP
    >>> ds.X.shape, ds.class_names                              # doctest: +SKIP
    ((150, 4), ['setosa', 'versicolor', 'virginica'])
    """
    path = Path(path)
    where = f"--csv {path}"
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = [row for row in csv.reader(handle) if any(cell.strip() for cell in row)]
    except FileNotFoundError:
        raise AppError(f"{where}: no such file") from None
    except IsADirectoryError:
        raise AppError(f"{where}: this is a folder; give the path of a .csv file") from None
    except UnicodeDecodeError as exc:
        raise AppError(f"{where}: not a UTF-8 text file ({exc.reason} at byte {exc.start})") from None
    except csv.Error as exc:
        raise AppError(f"{where}: not a readable CSV file ({exc})") from None
    except OSError as exc:
        raise AppError(f"{where}: cannot read it ({exc.strerror})") from None

    if not rows:
        raise AppError(f"{where}: the file is empty; it needs a header row and one row per example")
    header = [name.strip() for name in rows[0]]
    body = rows[1:]
    if not body:
        raise AppError(f"{where}: the file has a header row but no examples")
    if label is None:
        label = header[-1]
    if label not in header:
        raise AppError(f"{where}: no column named {label!r} for --label; the columns are {', '.join(map(repr, header))}")
    if len(header) < 2:
        raise AppError(f"{where}: only the label column {label!r} is there; at least one feature column is needed")
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise AppError(f"{where}: the header repeats the column name(s) {', '.join(map(repr, duplicates))}")

    label_index = header.index(label)
    feature_index = [i for i in range(len(header)) if i != label_index]
    features = np.empty((len(body), len(feature_index)), dtype=np.float64)
    labels = []
    for row_number, row in enumerate(body, start=2):  # line 1 is the header
        if len(row) != len(header):
            raise AppError(f"{where}, row {row_number}: {len(row)} cells, but the header has {len(header)} columns")
        labels.append(row[label_index].strip())
        if not labels[-1]:
            raise AppError(f"{where}, row {row_number}: the label cell (column {label!r}) is empty")
        for j, i in enumerate(feature_index):
            features[row_number - 2, j] = _number(row[i], where, row_number, header[i])

    class_names = _sorted_labels(set(labels))
    if len(class_names) < 2:
        raise AppError(f"{where}: column {label!r} holds a single class ({class_names[0]!r}); a classifier needs at least two")
    index = {name: k for k, name in enumerate(class_names)}
    y = np.array([index[name] for name in labels], dtype=np.int64)
    return Dataset(features, y, [header[i] for i in feature_index], class_names, name=path.name)


def _number(cell, where, row_number, column):
    text = cell.strip()
    if not text:
        raise AppError(f"{where}, row {row_number}, column {column!r}: the cell is empty; fill in or drop missing values")
    try:
        value = float(text)
    except ValueError:
        raise AppError(f"{where}, row {row_number}, column {column!r}: {text!r} is not a number "
                       f"(feature columns must be numeric; is {column!r} the label column? then pass --label {column})") from None
    if not np.isfinite(value):
        raise AppError(f"{where}, row {row_number}, column {column!r}: {text!r} is not a finite number")
    return value


def _sorted_labels(labels):
    """Numeric labels in numeric order (2 before 10), words alphabetically."""
    try:
        return sorted(labels, key=float)
    except ValueError:
        return sorted(labels)


def split_and_standardise(dataset, val_split, rng):
    """Stratified train/validation split, then standardise with the train statistics.

    Every class keeps the same share of examples in the validation part (at
    least one when ``val_split > 0`` and the class has two or more).

    >>> X = np.arange(20.0).reshape(10, 2); y = np.array([0] * 5 + [1] * 5)
    >>> split = split_and_standardise(Dataset(X, y, ["a", "b"], ["p", "q"]), 0.2, np.random.default_rng(0))
    >>> len(split.X_train), np.bincount(split.y_val).tolist()
    (8, [1, 1])
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
    X_train, y_train = dataset.X[train_index], dataset.y[train_index]
    mean = X_train.mean(axis=0)
    std = X_train.std(axis=0)
    std = np.where(std > 0, std, 1.0)  # a constant column stays 0 instead of becoming NaN
    return Split(
        X_train=(X_train - mean) / std, y_train=y_train,
        X_val=(dataset.X[val_index] - mean) / std, y_val=dataset.y[val_index],
        mean=mean, std=std,
    )
