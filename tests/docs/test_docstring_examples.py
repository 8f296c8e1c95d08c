"""Every public class and function of nn, optim, the engine, its operations and
errors, the drawing and the stepper shows a short example, and the examples
of autograd_core's modules run."""

import doctest
import importlib
import inspect

import pytest

import autograd_core.viz

RUN = [  # nn's and optim's run in their folders
    "autograd_core", "autograd_core.engine", "autograd_core.modes", "autograd_core.ops", "autograd_core.gradcheck",
    "autograd_core.functional", "autograd_core.viz", "autograd_core.stepper", "autograd_core._files",
    "autograd_core.errors", "autograd_core.conv", "autograd_core.conv_windows", "autograd_core.learner",
    "autograd_core.exercises",
    "autograd_core.compile", "autograd_core.compile.tracer", "autograd_core.compile.guards", "autograd_core.compile.sources", "autograd_core.compile.runtime",
    "autograd_core.compile.reuse",
]
VIZ_MODULES = ["autograd_core.viz.text", "autograd_core.viz.walk", "autograd_core.viz.fold",
               "autograd_core.viz.drawing", "autograd_core.viz.render"]  # the rooms of autograd_core.viz
RUN += VIZ_MODULES
NEEDS_RENDERER = {"autograd_core.viz", "autograd_core.viz.drawing", "autograd_core.viz.render", "autograd_core.stepper"}
OPERATION_MODULES = [  # the declarations (ops.py holds the machinery)
    "autograd_core.ops_arith", "autograd_core.ops_elementwise", "autograd_core.ops_matmul", "autograd_core.ops_reduce",
    "autograd_core.ops_softmax", "autograd_core.ops_shape", "autograd_core.ops_math", "autograd_core.ops_select",
    "autograd_core.ops_rounding", "autograd_core.ops_scan", "autograd_core.ops_scatter",
    "autograd_core.conv_transpose", "autograd_core.resample",
]
RUN += OPERATION_MODULES

DOCUMENTED = [
    "nn", "nn.module", "nn.layers", "nn.activations", "nn.losses", "nn.functional", "nn.init", "nn.utils",
    "nn.serialization", "nn.data", "optim", "optim.optimizer", "optim.sgd", "optim.adam", "optim.adagrad",
    "optim.adadelta", "optim.rmsprop", "optim.lbfgs", "optim.newton", "optim.lr_scheduler",
    "optim.early_stopping", "autograd_core.viz", "autograd_core.stepper", "autograd_core.functional",
    "autograd_core._files", "autograd_core.engine", "autograd_core.modes", "autograd_core.ops", "autograd_core.errors",
    "autograd_core.gradcheck", "autograd_core.conv", "autograd_core.conv_windows", "nn.conv", "autograd_core.compile",
    "autograd_core.compile.tracer",
    "autograd_core.learner", "autograd_core.exercises",
    "autograd_core.compile.guards", "autograd_core.compile.sources", "autograd_core.compile.runtime",
    "autograd_core.compile.reuse",
]


DOCUMENTED += OPERATION_MODULES + VIZ_MODULES


@pytest.mark.parametrize("name", RUN)
def test_docstring_examples_run(name):
    if name in NEEDS_RENDERER and autograd_core.viz.renderer_name() is None:
        pytest.skip("no Graphviz renderer")
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0


def _public_definitions(module):
    for name in getattr(module, "__all__", None) or [n for n in vars(module) if not n.startswith("_")]:
        obj = getattr(module, name, None)
        if (inspect.isclass(obj) or inspect.isfunction(obj)) and obj.__module__ == module.__name__:
            yield name, obj


@pytest.mark.parametrize("name", DOCUMENTED)
def test_public_classes_and_functions_have_an_example(name):
    module = importlib.import_module(name)
    missing = [n for n, obj in _public_definitions(module) if ">>>" not in (obj.__doc__ or "")]
    assert missing == [], f"{name}: no docstring example in {missing}"
