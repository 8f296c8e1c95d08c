import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def torch_or_skip():
    """Import PyTorch for oracle tests, or skip them cleanly."""
    return pytest.importorskip("torch")
