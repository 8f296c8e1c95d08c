"""Leaving with your model: the same model as a ``torch.nn.Module`` or as an ONNX file.

::

    from autograd_core import export
    tm = export.to_torch(model, X)          # a torch.nn.Module with the weights copied
    src = export.torch_source(model, X)     # that module as Python source
    export.to_onnx(model, X, "model.onnx")  # a file ONNX Runtime runs

`model` is an ``nn`` module or any function of Values; `X` is an example
input (more may follow). The model is called once on them and watched
(``export.trace``): layers that declare their ``torch.nn`` counterpart
(``Module.as_torch()``) are kept whole in PyTorch, and every other
operation is written as its own declaration says, beside its NumPy code:

* ``Op(as_torch=...)``: a PyTorch expression over the op's input and
  parameter names (``"torch.tanh(x)"``, ``"torch.clamp(x, min, max)"``),
  or a function ``(t, *inputs, **params)`` returning one, where the inputs
  are texts and ``t.const(value)``, ``t.index(index)`` write parameters;
* ``Op(as_onnx=...)``: the name of the ONNX operator that takes the op's
  inputs as they are (``"Tanh"``), or a function ``(g, *inputs, **params)``
  that adds nodes with ``g.op(type, *inputs, **attributes)``,
  ``g.const(value)`` and ``g.ints(values)`` and returns its output's name.

An operation without a form is refused with its name. PyTorch, ``onnx`` and
``onnxruntime`` are optional: ``pip install -e ".[export]"``.
"""

from __future__ import annotations

import numpy as np

from .trace import ExportError
from .trace import trace as _trace

__all__ = ["to_torch", "torch_source", "to_onnx", "ExportError", "EXTRA"]

EXTRA = 'pip install -e ".[export]"'  # torch==2.13.0, onnx, onnxruntime


def _need(module, what):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"export.{what} needs the package {module!r}, which is not installed: {EXTRA} "
                          f"installs PyTorch 2.13.0, onnx and onnxruntime") from None


def torch_source(model, X, *args, class_name=None):
    """`model` as the source of a ``torch.nn.Module`` subclass: named layers
    in ``__init__``, one line per step in ``forward``. Load the weights with
    ``load_state_dict`` (or use :func:`to_torch`, which does).

    >>> import numpy as np, nn
    >>> from autograd_core import export
    >>> print(export.torch_source(nn.Sequential(nn.Linear(4, 3), nn.ReLU()), np.zeros((2, 4))))
    import torch
    from torch import nn
    <BLANKLINE>
    <BLANKLINE>
    class Model(nn.Sequential):
        def __init__(self):
            super().__init__(
                nn.Linear(4, 3, dtype=torch.float64),
                nn.ReLU(),
            )
    <BLANKLINE>
        def forward(self, x):
            x = self[0](x)
            x = self[1](x)
            return x
    """
    _need("torch", "torch_source")
    from .torch_writer import write_torch

    return write_torch(_trace(model, (X, *args)), class_name).source


def to_torch(model, X, *args, class_name=None):
    """`model` as a ``torch.nn.Module``: the class of :func:`torch_source`,
    built, with our weights and buffers copied (exactly: same dtype), the
    train/eval mode of every layer and each parameter's ``requires_grad``.
    Outputs and gradients equal ours to rounding.

    >>> import numpy as np, nn, torch
    >>> from autograd_core import export
    >>> layer = nn.Linear(4, 3)
    >>> tm = export.to_torch(layer, np.zeros((2, 4)))
    >>> isinstance(tm, torch.nn.Linear), tuple(tm.weight.shape), tm.weight.dtype   # PyTorch's layout: (out, in)
    (True, (3, 4), torch.float64)
    >>> bool((tm.weight.detach().numpy() == layer.weight.data).all())
    True
    """
    _need("torch", "to_torch")
    from .torch_writer import write_torch

    return write_torch(_trace(model, (X, *args)), class_name).build()


def to_onnx(model, X, path, *args, dtype=np.float32):
    """Write `model` as an ONNX file at `path` (atomically) and return the
    ``onnx.ModelProto``; checked with ``onnx.checker``. Floats are written
    in `dtype` (float32 runs everywhere ONNX Runtime does); shapes are the
    example's.

    >>> import os, tempfile, numpy as np, nn
    >>> from autograd_core import export
    >>> path = os.path.join(tempfile.mkdtemp(), "linear.onnx")
    >>> proto = export.to_onnx(nn.Linear(4, 3), np.zeros((1, 4)), path)
    >>> [node.op_type for node in proto.graph.node], os.path.getsize(path) > 0
    (['Gemm', 'Identity'], True)
    """
    _need("onnx", "to_onnx")
    from .._files import atomic_write
    from .onnx_writer import write_onnx

    name = getattr(model, "__name__", None) or type(model).__name__
    proto = write_onnx(_trace(model, (X, *args)), dtype=dtype, name=name)
    atomic_write(path, proto.SerializeToString())
    return proto
