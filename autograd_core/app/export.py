"""``autograd-core export``: a trained run's network, for PyTorch or ONNX Runtime.

::

    autograd-core export runs/iris --to torch      # model_torch.py (the class) and model_torch.pt (the weights)
    autograd-core export runs/digits --to onnx     # model.onnx (float32), runnable in ONNX Runtime

The run folder is read by :func:`load_run` (its files checked, with bounded
reads); the exported network is run once on the run's own kind of input and
compared with ours, and the largest difference is printed.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np

from .errors import AppError
from .graph import _check_target, _writing
from .report import terminal_safe

DEFAULT_NAMES = {"torch": "model_torch.py", "onnx": "model.onnx"}
CLASS_NAME = "Model"  # the class in model_torch.py: `from model_torch import Model`


def _example(settings, count=8, seed=0):
    """Standardised inputs of the run's shape: what the network takes."""
    spec = settings["model"]
    shape = tuple(spec["image_shape"]) if spec.get("type", "mlp") == "cnn" else (spec["sizes"][0],)
    return np.random.default_rng(seed).standard_normal((count, *shape))


def export_command(args, stream=None):
    """Export the run's network; returns 0."""
    stream = stream if stream is not None else sys.stdout
    from .run_folder import load_run

    run = Path(args.run)
    if not run.is_dir():
        raise AppError(f"{args.run}: no such run folder; give a folder written by autograd-core train")
    model, settings = load_run(run)
    output = Path(args.output) if args.output else run / DEFAULT_NAMES[args.to]
    _check_target("-o", output, DEFAULT_NAMES[args.to])
    if args.to == "torch" and output.suffix != ".py":
        raise AppError(f"-o {output}: the PyTorch export is Python source; end the name with .py "
                       f"(the weights go beside it, with .pt)")
    x = _example(settings)
    ours = model(x).data  # (the model is in evaluation mode, as load_run gives it)
    from .. import export

    try:
        if args.to == "torch":
            written, difference = _to_torch(model, x, ours, output, export)
        else:
            written, difference = _to_onnx(model, x, ours, output, export)
    except ImportError as exc:
        raise AppError(str(exc)) from None
    except export.ExportError as exc:
        raise AppError(str(exc)) from None
    for path, what in written:
        print(f"{what:<15} {terminal_safe(path)}", file=stream)
    if difference is not None:
        print(f"checked         outputs on {len(x)} inputs equal ours to {difference:.1e}", file=stream)
    else:
        print("checked         (onnxruntime is not installed: not run)", file=stream)
    if args.to == "torch":
        print(f"use             from {output.stem} import {CLASS_NAME}; model = {CLASS_NAME}(); "
              f"model.load_state_dict(torch.load({terminal_safe(output.with_suffix('.pt').name)!r})); model.eval()",
              file=stream)
    print("inputs          standardised as in training: (x - mean) / std, with mean and std from "
          f"{terminal_safe(run / 'run.json')} (\"data\")", file=stream)
    return 0


def _to_torch(model, x, ours, output, export):
    source = export.torch_source(model, x, class_name=CLASS_NAME)  # (says what to install, without PyTorch)
    module = export.to_torch(model, x, class_name=CLASS_NAME)
    import torch

    with torch.no_grad():
        theirs = module(torch.from_numpy(x)).numpy()
    buffer = io.BytesIO()
    torch.save(module.state_dict(), buffer)
    from .._files import atomic_write

    weights = output.with_suffix(".pt")
    with _writing("-o", output):
        atomic_write(output, source)
        atomic_write(weights, buffer.getvalue())
    return [(output, "torch module"), (weights, "torch weights")], float(np.abs(theirs - ours).max())


def _to_onnx(model, x, ours, output, export):
    model.float()  # ONNX Runtime runs float32 everywhere (its Conv has no float64 kernel)
    x32 = x.astype(np.float32)
    with _writing("-o", output):
        export.to_onnx(model, x32[:1], output)  # one input at a time: the shape a browser feeds it
    try:
        import onnxruntime
    except ImportError:
        return [(output, "onnx model")], None
    session = onnxruntime.InferenceSession(str(output), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    theirs = np.concatenate([session.run(None, {name: x32[k:k + 1]})[0] for k in range(len(x32))])
    return [(output, "onnx model")], float(np.abs(theirs - model(x32).data).max())
