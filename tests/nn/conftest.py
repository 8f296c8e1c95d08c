import pytest

import nn


@pytest.fixture(autouse=True)
def _seeded():
    """Every nn test starts from the same global generator state."""
    nn.manual_seed(1234)
    yield
