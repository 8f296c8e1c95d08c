import numpy as np
import pytest

import nn


@pytest.fixture(autouse=True)
def _seeded():
    """Every nn test starts from the same global generator state."""
    nn.manual_seed(1234)
    yield


def as_torch(array, requires_grad=False):
    torch = pytest.importorskip("torch")
    return torch.tensor(np.asarray(array, dtype=np.float64), requires_grad=requires_grad)
