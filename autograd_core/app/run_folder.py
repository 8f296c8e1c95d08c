"""The run folder: what ``autograd-core train`` writes, and reading it back.

:func:`write_outputs` writes the files of a finished run (the table in
:mod:`.train`'s docstring lists them): the weights, ``run.json`` and
``metrics.csv`` first, then the pictures, each of which may fail with a
warning. :func:`load_run` rebuilds the trained model from a folder, checking
``run.json`` against the weights before anything is built.
"""

from __future__ import annotations

import json
from pathlib import Path

from .._files import FileTooLargeError, NotARegularFileError, open_regular_file
from .errors import AppError
from .files import write_csv, write_json
from .models import (ACTIVATIONS, MODELS, build_network, cnn_features, copy_state, describe_model, libraries,
                     predict_classes)

RUN_FORMAT = "autograd-core run 1"
FILE_NAMES = {
    "weights": "model.npz",
    "settings": "run.json",
    "metrics": "metrics.csv",
    "curves": "curves.png",
    "decision_regions": "decision_regions.png",
    "confusion_matrix": "confusion_matrix.png",
    "misclassified": "misclassified.png",
    "graph": "graph.svg",
    "backprop_player": "backprop.html",
}
METRIC_COLUMNS = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "seconds")
GRAPH_EXAMPLES = 8  # graph.svg's batch: at most this many examples, so their numbers can be shown
MAX_SETTINGS_BYTES = 16 << 20  # run.json of 1,000 classes and 10,000 features is well under 1 MB


# --------------------------------------------------------------------------
# Writing the run's files
# --------------------------------------------------------------------------
def write_outputs(out_dir, config, dataset, split, model, loss_fn, history, best_epoch, spec, reporter):
    """Write every file of the run; returns {description: path}.

    The weights, run.json and metrics.csv come first; a picture that cannot
    be drawn is reported as a warning and the run still succeeds.
    """
    nn, _ = libraries()
    from . import plots

    files = {}
    path = out_dir / FILE_NAMES["weights"]
    nn.save(model.state_dict(), path)  # nn.save writes atomically itself
    files["weights"] = path
    training = {key: value for key, value in vars(config).items() if key != "out"}
    if config.csv is not None:  # the rows came from the file, whatever `data` was left at
        training["data"] = f"csv:{config.csv}"
    settings = {
        "format": RUN_FORMAT,
        "model": spec,
        "data": {"name": dataset.name, "features": dataset.feature_names, "classes": [str(c) for c in dataset.class_names],
                 "mean": split.mean.ravel().tolist(), "std": split.std.ravel().tolist()},
        "training": training,
        "epochs_run": len(history), "best_epoch": best_epoch,
    }
    files["settings"] = write_json(out_dir / FILE_NAMES["settings"], settings)
    files["metrics"] = write_csv(out_dir / FILE_NAMES["metrics"], history, METRIC_COLUMNS)

    def picture(name, draw):
        try:
            files[name] = draw()
        except Exception as exc:  # the weights are written: a picture must not fail the run
            reporter.warn(f"no {FILE_NAMES[name]}: {type(exc).__name__}: {exc}")

    if history:
        picture("curves", lambda: plots.plot_curves(history, out_dir / FILE_NAMES["curves"], best_epoch=best_epoch,
                                                     title=f"{dataset.name}: {describe_model(spec)}"))
    if dataset.X.shape[1] == 2:
        raw_train = split.X_train * split.std + split.mean
        raw_val = split.X_val * split.std + split.mean
        picture("decision_regions", lambda: plots.plot_decision_regions(
            lambda X: predict_classes(model, split.standardise(X)), raw_train, split.y_train, raw_val, split.y_val,
            dataset.class_names, dataset.feature_names, out_dir / FILE_NAMES["decision_regions"],
            title=f"{dataset.name}: decision regions",
        ))
    if dataset.image_shape is not None:
        _image_pictures(out_dir, dataset, split, model, picture)
    picture("graph", lambda: _write_graph(out_dir, split, model, loss_fn, config.batch_size, reporter))
    if "graph" in files and files["graph"] is None:
        del files["graph"]
    return files


def _image_pictures(out_dir, dataset, split, model, picture):
    """The confusion matrix and the misclassified images, on the validation
    images (the training images when nothing is held out)."""
    from . import plots

    part = "validation" if len(split.X_val) else "training"
    X, y = (split.X_val, split.y_val) if len(split.X_val) else (split.X_train, split.y_train)
    predicted = predict_classes(model, X)
    raw_images = (X * split.std + split.mean).reshape((len(X), *dataset.image_shape))  # back to pixel values
    picture("confusion_matrix", lambda: plots.plot_confusion_matrix(
        y, predicted, dataset.class_names, out_dir / FILE_NAMES["confusion_matrix"],
        title=f"{dataset.name}, {part} images"))
    picture("misclassified", lambda: plots.plot_misclassified(
        raw_images, y, predicted, dataset.class_names, out_dir / FILE_NAMES["misclassified"],
        title=f"{dataset.name}, {part} images"))


def _write_graph(out_dir, split, model, loss_fn, batch_size, reporter):
    """The graph of one training step of the trained model (a mini-batch in
    train mode, its loss and backward), with the model's state put back after.
    Without a Graphviz renderer it is skipped with a warning (returns None)."""
    import autograd_core as ag
    from autograd_core.viz import RendererNotFoundError

    state = copy_state(model)
    try:
        model.train()
        count = min(batch_size, len(split.X_train), GRAPH_EXAMPLES)
        xb = ag.Value(split.X_train[:count], requires_grad=False, label=f"x (batch of {count})")
        loss = loss_fn(model(xb), split.y_train[:count])
        loss.label = "loss"
        model.zero_grad()
        loss.backward()
        path = out_dir / FILE_NAMES["graph"]
        ag.render_graph(loss, path, format="svg", direction="TB")  # top to bottom: layers read downwards
        return path
    except RendererNotFoundError as exc:
        reporter.warn(f"no graph.svg: {exc}")
        return None
    finally:
        model.zero_grad()
        model.load_state_dict(state)


# --------------------------------------------------------------------------
# Reading a run folder back
# --------------------------------------------------------------------------
def load_run(out_dir):
    """Rebuild a trained model from a run folder: ``(model, settings)``.

    ``settings["data"]`` holds the standardisation (``mean``, ``std``: one per
    feature for an MLP, one per channel for a CNN) and the class names, so new
    raw features or images can be classified. The layer shapes (an MLP's
    widths, a CNN's channels) come from the weights file (``model.npz``), and
    ``run.json`` must agree with them; a damaged or edited folder gets an
    :class:`AppError` saying what is wrong, before any model is built.

    >>> model, settings = load_run("runs/2026-01-01_120000")   # doctest: +SKIP
    >>> x = (raw - np.array(settings["data"]["mean"])) / np.array(settings["data"]["std"])   # doctest: +SKIP
    """
    nn, _ = libraries()
    out_dir = Path(out_dir)
    settings = _read_settings(out_dir / FILE_NAMES["settings"])
    weights = out_dir / FILE_NAMES["weights"]
    try:
        state = nn.load(weights)
    except (OSError, nn.CheckpointError) as exc:
        raise AppError(f"load_run: cannot read the weights: {exc}") from None
    spec = settings["model"]
    if spec.get("type", "mlp") == "cnn":
        _check_cnn_shapes(spec, _cnn_shapes(state, weights), out_dir / FILE_NAMES["settings"], weights)
        inputs, classes = spec["image_shape"][0], spec["classes"]
    else:
        sizes = _layer_sizes(state, weights)
        if spec["sizes"] != sizes:
            raise AppError(f"load_run: {out_dir / FILE_NAMES['settings']} says the layer widths are {spec['sizes']}, "
                           f"but {weights} holds layers of widths {sizes}; the two files are from different runs")
        inputs, classes = sizes[0], sizes[-1]
    _check_data_settings(settings["data"], inputs, classes, out_dir / FILE_NAMES["settings"])
    model = build_network(spec)
    try:
        model.load_state_dict(state)
    except ValueError as exc:
        raise AppError(f"load_run: {weights} does not fit the model run.json describes: {exc}") from None
    model.eval()
    return model, settings


def _read_settings(path):
    """run.json, parsed as strict JSON and checked key by key."""
    too_large = f"load_run: {path} is larger than {MAX_SETTINGS_BYTES:,} bytes; it is not a run's settings"
    try:
        with open_regular_file(path, MAX_SETTINGS_BYTES) as file:
            raw = _read_at_most(file, MAX_SETTINGS_BYTES + 1)
    except FileNotFoundError:
        raise AppError(f"load_run: no {path.name} in {path.parent}; is it a folder written by autograd-core train?") from None
    except NotARegularFileError as exc:
        raise AppError(f"load_run: {exc}; a run folder's {path.name} is a file written by autograd-core train") from None
    except FileTooLargeError:
        raise AppError(too_large) from None
    except OSError as exc:
        raise AppError(f"load_run: cannot read {path} ({exc.strerror or exc})") from None
    if len(raw) > MAX_SETTINGS_BYTES:  # (it grew while it was read)
        raise AppError(too_large)

    def refuse_constant(name):
        raise ValueError(f"{name} is not valid JSON")

    try:
        settings = json.loads(raw.decode("utf-8"), parse_constant=refuse_constant)
    except UnicodeDecodeError as exc:
        raise AppError(f"load_run: {path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except (ValueError, RecursionError) as exc:
        raise AppError(f"load_run: {path} is not valid JSON ({exc})") from None
    _expect(settings, dict, "the file", path)
    if settings.get("format") != RUN_FORMAT:
        raise AppError(f"load_run: {path} has format {str(settings.get('format'))[:60]!r}; "
                       f"this version reads {RUN_FORMAT!r}")
    model = _expect(settings.get("model"), dict, '"model"', path)
    kind = model.get("type", "mlp")
    if kind not in MODELS:
        raise AppError(f'load_run: {path}: "model"."type" is {str(kind)[:40]!r}; expected "mlp" or "cnn"')
    if kind == "mlp":
        sizes = _expect(model.get("sizes"), list, '"model"."sizes"', path)
        if len(sizes) < 2 or not all(_is_count(n) for n in sizes):
            raise AppError(f'load_run: {path}: "model"."sizes" must list two or more whole widths >= 1, '
                           f"got {str(sizes)[:80]}")
    else:
        _check_cnn_settings(model, path)
    activation = _expect(model.get("activation"), str, '"model"."activation"', path)
    if activation not in ACTIVATIONS:
        raise AppError(f'load_run: {path}: "model"."activation" is {activation[:40]!r}; '
                       f"expected one of {', '.join(ACTIVATIONS)}")
    _expect(model.get("batchnorm"), bool, '"model"."batchnorm"', path)
    dropout = _expect(model.get("dropout"), (int, float), '"model"."dropout"', path)
    if isinstance(dropout, bool) or not 0.0 <= dropout < 1.0:
        raise AppError(f'load_run: {path}: "model"."dropout" must be a number in [0, 1), got {dropout!r}')
    _expect(settings.get("data"), dict, '"data"', path)
    return settings


def _read_at_most(file, limit, chunk=1 << 16):
    """Up to `limit` bytes, read in chunks (read(limit) would reserve all of it at once)."""
    parts, size = [], 0
    while size < limit:
        part = file.read(min(chunk, limit - size))
        if not part:
            break
        parts.append(part)
        size += len(part)
    return b"".join(parts)


def _expect(value, kind, where, path):
    names = {dict: "an object", list: "a list", str: "a string", bool: "true or false", (int, float): "a number"}
    if value is None or not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        shown = "missing" if value is None else f"{type(value).__name__} {str(value)[:40]}"
        raise AppError(f"load_run: {path}: {where} should be {names[kind]}, it is {shown}")
    return value


def _is_count(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _check_cnn_settings(model, path):
    """run.json's description of a CNN: image shape, channels, kernel, classes."""
    image_shape = _expect(model.get("image_shape"), list, '"model"."image_shape"', path)
    if len(image_shape) != 3 or not all(_is_count(n) for n in image_shape):
        raise AppError(f'load_run: {path}: "model"."image_shape" must be [channels, height, width], '
                       f"got {str(image_shape)[:80]}")
    channels = _expect(model.get("channels"), list, '"model"."channels"', path)
    if not channels or not all(_is_count(n) for n in channels):
        raise AppError(f'load_run: {path}: "model"."channels" must list one or more whole channel counts >= 1, '
                       f"got {str(channels)[:80]}")
    for key in ("kernel_size", "classes"):
        if not _is_count(model.get(key)):
            raise AppError(f'load_run: {path}: "model"."{key}" must be a whole number >= 1, '
                           f"got {str(model.get(key))[:40]}")


def _cnn_shapes(state, weights):
    """The CNN's shapes as its weights hold them: (convolution weight shapes,
    linear weight shape), in layer order ("0.weight", "3.weight", ...)."""
    layers = sorted((int(name.split(".")[0]), array.shape) for name, array in state.items()
                    if name.endswith(".weight") and name.split(".")[0].isdigit() and array.ndim in (2, 4))
    convolutions = [shape for _, shape in layers if len(shape) == 4]
    linear = [shape for _, shape in layers if len(shape) == 2]
    if not convolutions or len(linear) != 1 or len(layers[-1][1]) != 2:
        raise AppError(f"load_run: {weights} does not hold a CNN's weights (convolutions, then one linear layer)")
    return convolutions, linear[0]


def _check_cnn_shapes(spec, shapes, settings_path, weights):
    """run.json's CNN against the shapes in the weights file."""
    convolutions, (classes, features) = shapes
    channels = [shape[0] for shape in convolutions]
    kernels = {shape[2:] for shape in convolutions}
    described = (spec["channels"], spec["image_shape"][0], spec["kernel_size"], spec["classes"])
    found = (channels, convolutions[0][1], next(iter(kernels))[0], classes)
    if described != found or len(kernels) != 1:
        raise AppError(f"load_run: {settings_path} describes a CNN of channels {spec['channels']} on "
                       f"{spec['image_shape'][0]}-channel images with {spec['kernel_size']}x{spec['kernel_size']} "
                       f"kernels and {spec['classes']} classes, but {weights} holds convolutions of shapes "
                       f"{[list(s) for s in convolutions]} and {classes} classes; the two files are from different runs")
    expected = cnn_features(spec["image_shape"], channels)
    if features != expected:
        raise AppError(f"load_run: {weights}: the linear layer takes {features} numbers, but {spec['image_shape']} "
                       f"images through {len(channels)} poolings give {expected}; the two files are from different runs")


def _check_data_settings(data, inputs, classes, path):
    for key, length in (("mean", inputs), ("std", inputs), ("classes", classes)):
        values = _expect(data.get(key), list, f'"data"."{key}"', path)
        if len(values) != length:
            raise AppError(f'load_run: {path}: "data"."{key}" has {len(values)} entries, the model needs {length}')
        kind = str if key == "classes" else (int, float)
        if not all(isinstance(v, kind) and not isinstance(v, bool) for v in values):
            raise AppError(f'load_run: {path}: "data"."{key}" must hold only {"strings" if kind is str else "numbers"}')


def _layer_sizes(state, weights):
    """The MLP's widths from its Linear weights ("0.weight", "4.weight", ...: 2-D, in layer order)."""
    linear = sorted((int(name.split(".")[0]), array.shape) for name, array in state.items()
                    if name.endswith(".weight") and name.split(".")[0].isdigit() and array.ndim == 2)
    if not linear:
        raise AppError(f"load_run: {weights} holds no Linear layer weights; it is not an MLP's state dict")
    sizes = [linear[0][1][1]]
    for _, (n_out, n_in) in linear:
        if n_in != sizes[-1]:
            raise AppError(f"load_run: {weights}: the layers do not chain ({n_in} inputs after a layer of {sizes[-1]})")
        sizes.append(n_out)
    return [int(n) for n in sizes]
