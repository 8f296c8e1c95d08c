"""A small MLP with BatchNorm and Dropout learns iris (plain momentum SGD written here,
so the test needs nothing but nn)."""

import numpy as np

import nn
from autograd_core import no_grad


def test_mlp_with_batchnorm_and_dropout_fits_iris():
    nn.manual_seed(0)
    X, y = nn.data.load_iris()
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    model = nn.MLP([4, 32, 32, 3], activation="relu", batchnorm=True, dropout=0.1)
    loss_fn = nn.CrossEntropyLoss()
    params = list(model.parameters())
    velocity = [np.zeros_like(p.data) for p in params]
    loader = nn.data.DataLoader((X, y), batch_size=32, shuffle=True, seed=0)
    first_loss = None
    for epoch in range(60):
        for xb, yb in loader:
            loss = loss_fn(model(xb), yb)
            first_loss = loss.item() if first_loss is None else first_loss
            model.zero_grad()
            loss.backward()
            with no_grad():
                for p, v in zip(params, velocity):
                    v *= 0.9
                    v += p.grad
                    p.data = p.data - 0.05 * v
    model.eval()
    predictions = nn.functional.argmax(model(X), dim=1)
    accuracy = float(np.mean(predictions == y))
    assert accuracy >= 0.95, accuracy
    assert loss.item() < first_loss / 5
    # BatchNorm learned the statistics of its inputs during training
    assert model[1].num_batches_tracked == 60 * len(loader)
    assert not np.allclose(model[1].running_mean, 0)
