"""nn.data: the shipped iris table, the DataLoader, and the toy generators."""

import numpy as np
import pytest

import nn
from nn.data import DataLoader, load_iris, make_blobs, make_moons, make_spirals


def test_iris_is_fishers_table():
    data = load_iris()
    X, y = data
    assert X.shape == (150, 4) and y.shape == (150,) and y.dtype == np.int64
    assert np.bincount(y).tolist() == [50, 50, 50]
    assert data.target_names == ["setosa", "versicolor", "virginica"]
    # first rows of each species, as printed in Fisher (1936)
    assert X[0].tolist() == [5.1, 3.5, 1.4, 0.2]
    assert X[50].tolist() == [7.0, 3.2, 4.7, 1.4]
    assert X[100].tolist() == [6.3, 3.3, 6.0, 2.5]
    # the published per-species means (cm)
    means = np.array([X[y == k].mean(axis=0) for k in range(3)])
    np.testing.assert_allclose(means, [[5.006, 3.428, 1.462, 0.246],
                                       [5.936, 2.770, 4.260, 1.326],
                                       [6.588, 2.974, 5.552, 2.026]], atol=1e-9)
    # and the well-known correlation of petal length with petal width
    assert np.corrcoef(X[:, 2], X[:, 3])[0, 1] == pytest.approx(0.9628654, abs=1e-7)


def test_loader_batches_cover_every_sample_once():
    X = np.arange(10.0).reshape(10, 1)
    y = np.arange(10)
    loader = DataLoader((X, y), batch_size=4)
    batches = list(loader)
    assert len(loader) == 3 and [len(b[1]) for b in batches] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), y)
    np.testing.assert_array_equal(np.concatenate([b[0] for b in batches])[:, 0], X[:, 0])


def test_loader_drop_last_and_shuffle_with_seed():
    X = np.arange(10.0)
    loader = DataLoader(X, batch_size=4, shuffle=True, seed=3, drop_last=True)
    first, second = [np.concatenate(list(loader)) for _ in range(2)]
    assert len(loader) == 2 and len(first) == 8
    assert not np.array_equal(first, second)  # a new order every epoch
    assert len(set(first.tolist())) == 8
    again = DataLoader(X, batch_size=4, shuffle=True, seed=3, drop_last=True)
    np.testing.assert_array_equal(np.concatenate(list(again)), first)  # same seed, same epochs


def test_loader_shuffle_follows_manual_seed_without_seed():
    nn.manual_seed(5)
    a = np.concatenate(list(DataLoader(np.arange(20.0), batch_size=7, shuffle=True)))
    nn.manual_seed(5)
    b = np.concatenate(list(DataLoader(np.arange(20.0), batch_size=7, shuffle=True)))
    np.testing.assert_array_equal(a, b)
    assert sorted(a.tolist()) == list(range(20))


def test_loader_collates_a_map_style_dataset():
    class Squares:
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return np.array([i, i * i], dtype=float), i % 2

    xb, yb = next(iter(DataLoader(Squares(), batch_size=3)))
    np.testing.assert_array_equal(xb, [[0, 0], [1, 1], [2, 4]])
    np.testing.assert_array_equal(yb, [0, 1, 0])


def test_loader_rejects_bad_arguments():
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(np.zeros(3), batch_size=0)
    with pytest.raises(ValueError, match="same length"):
        DataLoader((np.zeros(3), np.zeros(4)))


def test_moons_geometry():
    X, y = make_moons(200, noise=0.0, seed=0)
    upper, lower = X[y == 0], X[y == 1]
    np.testing.assert_allclose(np.hypot(upper[:, 0], upper[:, 1]), 1.0)
    np.testing.assert_allclose(np.hypot(lower[:, 0] - 1, lower[:, 1] - 0.5), 1.0)
    assert (upper[:, 1] >= -1e-12).all() and (lower[:, 1] <= 0.5 + 1e-12).all()
    X2, y2 = make_moons(200, noise=0.1, seed=0)
    np.testing.assert_array_equal(make_moons(200, noise=0.1, seed=0)[0], X2)
    clean = make_moons(2000, noise=0.0, shuffle=False)[0]
    noisy = make_moons(2000, noise=0.1, shuffle=False, seed=1)[0]
    assert np.std(noisy - clean) == pytest.approx(0.1, rel=0.05)


def test_spirals_and_blobs():
    X, y = make_spirals(300, n_classes=3, noise=0.0, seed=0)
    assert X.shape == (300, 2) and np.bincount(y).tolist() == [100, 100, 100]
    assert np.abs(np.hypot(X[:, 0], X[:, 1])).max() <= 1 + 1e-12
    centres = np.array([[0.0, 0.0], [10.0, 10.0]])
    Xb, yb = make_blobs(2000, centers=centres, cluster_std=0.5, seed=0)
    for k in range(2):
        np.testing.assert_allclose(Xb[yb == k].mean(axis=0), centres[k], atol=0.05)
        np.testing.assert_allclose(Xb[yb == k].std(axis=0), 0.5, atol=0.05)
