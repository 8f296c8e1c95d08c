"""The examples in nn's docstrings run and print what they claim."""

import doctest
import importlib

import pytest

MODULES = ["nn", "nn._random", "nn.module", "nn.layers", "nn.activations", "nn.losses", "nn.functional",
           "nn.init", "nn.utils", "nn.serialization", "nn.data", "nn.conv"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0
