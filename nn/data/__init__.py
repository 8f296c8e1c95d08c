"""Data for small networks: a ``DataLoader``, the iris data set and the 8x8
handwritten digits (both shipped, no download) and generators for two moons, spirals and blobs.

>>> from nn.data import DataLoader, load_iris
>>> X, y = load_iris()
>>> X.shape, y.shape
((150, 4), (150,))
>>> loader = DataLoader((X, y), batch_size=64, shuffle=True, seed=0)
>>> [len(xb) for xb, yb in loader]
[64, 64, 22]
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from autograd_core import Value

from .._random import generator_from

__all__ = ["DataLoader", "ArrayDataset", "LabelledData", "load_iris", "load_digits", "make_moons", "make_spirals", "make_blobs"]


class ArrayDataset:
    """Equal-length arrays seen as a dataset: item ``i`` is ``(a[i], b[i], ...)``
    (like PyTorch's ``TensorDataset``).

    >>> data = ArrayDataset(np.arange(6.0).reshape(3, 2), np.array([0, 1, 1]))
    >>> len(data), data[2]
    (3, (array([4., 5.]), np.int64(1)))
    """

    def __init__(self, *arrays):
        if not arrays:
            raise ValueError("ArrayDataset: give at least one array")
        self.arrays = tuple(np.asarray(a.data if isinstance(a, Value) else a) for a in arrays)
        lengths = {len(a) for a in self.arrays}
        if len(lengths) != 1:
            raise ValueError(
                f"ArrayDataset: all arrays need the same length along dim 0, got "
                f"{[a.shape for a in self.arrays]}"
            )

    def __len__(self):
        return len(self.arrays[0])

    def __getitem__(self, index):
        items = tuple(a[index] for a in self.arrays)
        return items if len(items) > 1 else items[0]


class DataLoader:
    """Mini-batches from a dataset.

    `dataset` is a tuple of arrays ``(X, y)`` (or one array, or an
    ``ArrayDataset``), sliced a whole batch at a time; or any object with
    ``__len__`` and ``__getitem__`` whose items are stacked into batches.
    Each pass over the loader is one epoch. With ``shuffle=True`` every epoch
    uses a new permutation, drawn from a generator seeded once with `seed`
    (so a seeded run repeats), or from the global generator
    (``nn.manual_seed``) when `seed` is None. ``drop_last=True`` skips the last
    batch when it is smaller than `batch_size`.

    Batches are NumPy arrays; layers and losses accept them directly.

    >>> X, y = np.arange(10.0).reshape(5, 2), np.array([0, 1, 0, 1, 1])
    >>> [xb.shape for xb, yb in DataLoader((X, y), batch_size=2)]
    [(2, 2), (2, 2), (1, 2)]
    >>> len(DataLoader((X, y), batch_size=2, drop_last=True))
    2
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, seed=None, drop_last=False):
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive integer, got {batch_size!r}")
        if isinstance(dataset, LabelledData):
            dataset = ArrayDataset(dataset.X, dataset.y)
        elif isinstance(dataset, (tuple, list)) and dataset and all(
            isinstance(a, (np.ndarray, Value)) for a in dataset
        ):
            dataset = ArrayDataset(*dataset)
        elif isinstance(dataset, (np.ndarray, Value)):
            dataset = ArrayDataset(dataset)
        if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
            raise TypeError(
                f"DataLoader: dataset must be arrays (X, y) or have __len__ and __getitem__, got {type(dataset).__name__}"
            )
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = seed
        self._generator = np.random.default_rng(seed) if seed is not None else None

    def __len__(self):
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def _order(self):
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        generator = self._generator if self._generator is not None else generator_from(None)
        return generator.permutation(n)

    def __iter__(self):
        order = self._order()
        n = len(order)
        stop = n - n % self.batch_size if self.drop_last else n
        for start in range(0, stop, self.batch_size):
            indices = order[start:start + self.batch_size]
            if isinstance(self.dataset, ArrayDataset):
                arrays = tuple(a[indices] for a in self.dataset.arrays)
                yield arrays if len(arrays) > 1 else arrays[0]
            else:
                yield _collate([self.dataset[int(i)] for i in indices])


def _collate(items):
    first = items[0]
    if isinstance(first, (tuple, list)):
        return tuple(np.stack([np.asarray(item[k]) for item in items]) for k in range(len(first)))
    return np.stack([np.asarray(item) for item in items])


class LabelledData:
    """Features ``X`` (float64, one row per sample) and integer labels ``y``,
    with names; unpacks as ``X, y = data``.

    >>> data = load_iris()
    >>> X, y = data
    >>> X.shape, data.feature_names[0], data.target_names
    ((150, 4), 'sepal_length', ['setosa', 'versicolor', 'virginica'])
    """

    def __init__(self, X, y, feature_names=(), target_names=(), description=""):
        self.X, self.y = X, y
        self.feature_names = list(feature_names)
        self.target_names = list(target_names)
        self.description = description

    # scikit-learn's names for the same arrays
    data = property(lambda self: self.X)
    target = property(lambda self: self.y)

    def __iter__(self):
        return iter((self.X, self.y))

    def __len__(self):
        return len(self.X)

    def __repr__(self):
        return f"LabelledData(X: {self.X.shape}, y: {self.y.shape}, classes={self.target_names})"


_IRIS_SPECIES = ("setosa", "versicolor", "virginica")


def load_iris():
    """Fisher's iris data, shipped with the package: 150 flowers, 50 of each
    species (0 setosa, 1 versicolor, 2 virginica), with sepal length, sepal
    width, petal length and petal width in cm.

    >>> data = load_iris()
    >>> data.target_names, data.X[0].tolist()
    (['setosa', 'versicolor', 'virginica'], [5.1, 3.5, 1.4, 0.2])
    """
    path = Path(__file__).with_name("iris.csv")
    lines = path.read_text().strip().splitlines()
    header = lines[0].split(",")
    rows = [line.split(",") for line in lines[1:]]
    X = np.array([[float(v) for v in row[:4]] for row in rows])
    y = np.array([_IRIS_SPECIES.index(row[4]) for row in rows], dtype=np.int64)
    return LabelledData(
        X, y, header[:4], list(_IRIS_SPECIES),
        "Fisher's iris data (1936): 3 species x 50 flowers, 4 measurements in cm",
    )


_DIGITS_FILE_LIMIT = 1 << 20  # the table is 260 kB unpacked: refuse anything far larger


def load_digits():
    """The 8x8 handwritten digits, shipped with the package: 1,797 images of the
    digits 0-9 written by 13 people, each pixel the count (0 to 16) of inked
    cells in a 4x4 block of a 32x32 bitmap. ``X`` holds the images as rows of
    64 pixels (float64, 0 to 16: divide by 16 for inputs in [0, 1]), ``y`` the
    digits, and ``images`` the same pixels as (1797, 1, 8, 8), the (N, C, H, W)
    layout of ``nn.Conv2d``.

    Source: the test set (optdigits.tes) of "Optical Recognition of Handwritten
    Digits", E. Alpaydin and C. Kaynak (1998), UCI Machine Learning Repository,
    https://doi.org/10.24432/C50P49, licensed CC BY 4.0; the same table as
    scikit-learn's ``load_digits``. Cite: C. Kaynak (1995), Methods of Combining
    Multiple Classifiers and Their Applications to Handwritten Digit
    Recognition, MSc thesis, Bogazici University; E. Alpaydin, C. Kaynak (1998),
    Cascading Classifiers, Kybernetika.

    >>> digits = load_digits()
    >>> digits.X.shape, digits.images.shape, np.bincount(digits.y).tolist()[:3]
    ((1797, 64), (1797, 1, 8, 8), [178, 182, 177])
    """
    import gzip
    import io

    path = Path(__file__).with_name("digits.csv.gz")
    with gzip.open(path, "rb") as packed:
        raw = packed.read(_DIGITS_FILE_LIMIT + 1)
    if len(raw) > _DIGITS_FILE_LIMIT:
        raise ValueError(f"load_digits: {path} unpacks to more than {_DIGITS_FILE_LIMIT} bytes; the file is damaged")
    table = np.loadtxt(io.StringIO(raw.decode("ascii")), delimiter=",", dtype=np.int64, ndmin=2)
    if table.shape != (1797, 65):
        raise ValueError(f"load_digits: {path} holds a table of shape {table.shape}, expected (1797, 65)")
    X = table[:, :64].astype(np.float64)
    data = LabelledData(
        X, table[:, 64].copy(), [f"pixel_{r}_{c}" for r in range(8) for c in range(8)], [str(d) for d in range(10)],
        "UCI optical recognition of handwritten digits (test set): 1,797 8x8 images, 10 classes, pixels 0-16",
    )
    data.images = X.reshape(-1, 1, 8, 8)
    return data


def _split_counts(n_samples, parts, name):
    if isinstance(n_samples, (tuple, list)):
        counts = [int(c) for c in n_samples]
        if len(counts) != parts:
            raise ValueError(f"{name}: {len(counts)} counts given for {parts} classes")
        return counts
    if n_samples < parts:
        raise ValueError(f"{name}: n_samples={n_samples} is fewer than the {parts} classes")
    base, extra = divmod(int(n_samples), parts)
    return [base + (1 if k < extra else 0) for k in range(parts)]


def _finish(X, y, shuffle, rng):
    if shuffle:
        order = rng.permutation(len(y))
        X, y = X[order], y[order]
    return X, y


def make_moons(n_samples=100, noise=0.0, shuffle=True, seed=None):
    """Two interleaving half circles in 2-d: class 0 the upper arc
    ``(cos t, sin t)``, class 1 the lower arc ``(1 - cos t, 1/2 - sin t)``,
    ``t`` in ``[0, pi]``, plus Gaussian noise of std `noise`. Returns ``(X, y)``.

    >>> X, y = make_moons(100, noise=0.1, seed=0)
    >>> X.shape, np.bincount(y).tolist()
    ((100, 2), [50, 50])
    """
    n_upper, n_lower = _split_counts(n_samples, 2, "make_moons")
    rng = generator_from(seed)
    t_upper = np.linspace(0, np.pi, n_upper)
    t_lower = np.linspace(0, np.pi, n_lower)
    X = np.concatenate([
        np.stack([np.cos(t_upper), np.sin(t_upper)], axis=1),
        np.stack([1 - np.cos(t_lower), 0.5 - np.sin(t_lower)], axis=1),
    ])
    y = np.concatenate([np.zeros(n_upper, dtype=np.int64), np.ones(n_lower, dtype=np.int64)])
    if noise:
        X = X + rng.normal(0.0, noise, X.shape)
    return _finish(X, y, shuffle, rng)


def make_spirals(n_samples=300, n_classes=3, noise=0.2, turns=1.0, shuffle=True, seed=None):
    """`n_classes` spiral arms around the origin in 2-d (the classic picture a
    linear classifier cannot separate). Arm ``k`` has radius growing from 0
    to 1 and angle ``2 pi turns r + 2 pi k / n_classes``, plus Gaussian noise
    of std `noise` on the angle. Returns ``(X, y)``.

    >>> X, y = make_spirals(300, n_classes=3, seed=0)
    >>> X.shape, np.bincount(y).tolist()
    ((300, 2), [100, 100, 100])
    """
    counts = _split_counts(n_samples, n_classes, "make_spirals")
    rng = generator_from(seed)
    points, labels = [], []
    for k, count in enumerate(counts):  # one loop step per class, not per point
        radius = np.linspace(0.0, 1.0, count)
        angle = 2 * np.pi * (turns * radius + k / n_classes) + rng.normal(0.0, noise, count)
        points.append(np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1))
        labels.append(np.full(count, k, dtype=np.int64))
    return _finish(np.concatenate(points), np.concatenate(labels), shuffle, rng)


def make_blobs(n_samples=100, centers=3, n_features=2, cluster_std=1.0, center_box=(-10.0, 10.0),
               shuffle=True, seed=None):
    """Gaussian clusters: `centers` is a number of clusters (centres drawn
    uniformly in `center_box`) or an array of centres; each point is its
    centre plus N(0, cluster_std^2) noise. Returns ``(X, y)``.

    >>> X, y = make_blobs(100, centers=3, seed=0)
    >>> X.shape, np.bincount(y).tolist()
    ((100, 2), [34, 33, 33])
    """
    rng = generator_from(seed)
    if isinstance(centers, (int, np.integer)):
        centres = rng.uniform(center_box[0], center_box[1], (int(centers), n_features))
    else:
        centres = np.asarray(centers, dtype=np.float64)
        if centres.ndim != 2:
            raise ValueError(f"make_blobs: centers must be a count or an array (k, n_features), got shape {centres.shape}")
    counts = _split_counts(n_samples, len(centres), "make_blobs")
    stds = np.broadcast_to(np.asarray(cluster_std, dtype=np.float64), (len(centres),))
    y = np.repeat(np.arange(len(centres)), counts)
    X = centres[y] + rng.normal(0.0, 1.0, (len(y), centres.shape[1])) * stds[y][:, None]
    return _finish(X, y.astype(np.int64), shuffle, rng)
