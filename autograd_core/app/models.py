"""The networks a run trains: an MLP, or a small CNN for images.

:func:`model_spec` checks the options against the data and writes the
description run.json keeps (``"model"``); :func:`build_network` builds the
untrained network from it, for a new run and for :func:`~.run_folder.load_run`
alike. The choices and limits here are the ones the command line offers.
"""

from __future__ import annotations

import numpy as np

from .data import IMAGE_DATA
from .errors import AppError

ACTIVATIONS = ("relu", "leaky_relu", "elu", "selu", "gelu", "tanh", "sigmoid")
MODELS = ("mlp", "cnn")
MAX_PARAMETERS = 50_000_000  # 400 MB of float64 weights, before gradients and optimizer state
MAX_CONV_LAYERS = 3  # an 8x8 image halves at each pooling: 4x4, 2x2, 1x1
MAX_CHANNELS = 512
CNN_KERNEL = 3  # every convolution: 3x3, padded by 1, so only the pooling shrinks the image
DEFAULT_CHANNELS = [8, 16]


class DefaultWidths(list):
    """The default ``--hidden`` (16,16): a list like any other, but a run can
    tell it from widths the user typed (a CNN has no use for them).

    >>> DefaultWidths([16, 16]) == [16, 16], isinstance([16, 16], DefaultWidths)
    (True, False)
    """


def libraries():
    """``(nn, optim)``, imported when a run needs them (the engine never imports them).

    >>> nn, optim = libraries(); nn.Linear.__name__, optim.SGD.__name__
    ('Linear', 'SGD')
    """
    try:
        import nn
        import optim
    except ImportError as exc:  # pragma: no cover - both ship with the project
        raise AppError(f"the nn and optim packages are needed for training ({exc})") from None
    return nn, optim


def build_model(sizes, activation, batchnorm, dropout):
    """The MLP of a run: ``sizes`` = [inputs, *hidden, classes].

    >>> build_model([4, 16, 3], "tanh", batchnorm=False, dropout=0.0)[0]   # doctest: +SKIP
    Linear(in_features=4, out_features=16, bias=True)
    """
    nn, _ = libraries()
    return nn.MLP(sizes, activation=activation, batchnorm=batchnorm, dropout=dropout)


def build_cnn(image_shape, channels, classes, activation="relu", batchnorm=False, dropout=0.0, kernel_size=CNN_KERNEL):
    """The CNN of a run, LeNet's pattern at the size of 8x8 images: for each
    entry of ``channels`` a ``kernel_size`` convolution (padding keeps the size),
    [BatchNorm2d], the activation and 2x2 max pooling; then Flatten,
    [Dropout] and one Linear to the classes.

    >>> build_cnn((1, 8, 8), [8, 16], 10)            # doctest: +NORMALIZE_WHITESPACE
    Sequential(
      (0): Conv2d(1, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))
      (1): ReLU()
      (2): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)
      (3): Conv2d(8, 16, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))
      (4): ReLU()
      (5): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)
      (6): Flatten(start_dim=1, end_dim=-1)
      (7): Linear(in_features=64, out_features=10, bias=True)
    )
    """
    nn, _ = libraries()
    from nn.layers import _activation_factory  # the name -> layer lookup nn.MLP uses

    make_activation = _activation_factory(activation)
    layers, previous = [], image_shape[0]
    for count in channels:
        layers.append(nn.Conv2d(previous, count, kernel_size, padding=kernel_size // 2))
        if batchnorm:
            layers.append(nn.BatchNorm2d(count))
        layers += [make_activation(), nn.MaxPool2d(2)]
        previous = count
    layers.append(nn.Flatten())
    if dropout:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(cnn_features(image_shape, channels), classes))
    return nn.Sequential(*layers)


def cnn_features(image_shape, channels):
    """How many numbers reach the CNN's linear layer: the last channel count
    times the image's size after one 2x2 pooling per convolution.

    >>> cnn_features((1, 8, 8), [8, 16])
    64
    """
    height, width = image_shape[1] >> len(channels), image_shape[2] >> len(channels)
    return channels[-1] * height * width


def build_network(spec):
    """The model run.json's ``"model"`` describes (an MLP or a CNN), untrained."""
    if spec.get("type", "mlp") == "cnn":
        return build_cnn(spec["image_shape"], spec["channels"], spec["classes"], spec["activation"],
                         spec["batchnorm"], spec["dropout"], spec["kernel_size"])
    return build_model(spec["sizes"], spec["activation"], spec["batchnorm"], spec["dropout"])


def model_spec(config, dataset):
    """run.json's ``"model"``: the kind of network and its sizes, checked against the data.

    An MLP reads any data as rows of features; a CNN needs images. Without
    ``--model`` images get the CNN and every other data set the MLP.
    """
    kind = config.model or ("cnn" if dataset.image_shape is not None else "mlp")
    if kind not in MODELS:
        raise AppError(f"--model {str(kind)[:40]!r}: choose mlp or cnn")
    common = {"activation": config.activation, "batchnorm": config.batchnorm, "dropout": config.dropout}
    if kind == "mlp":
        if config.channels is not None:
            raise AppError("--channels sets the convolutions of --model cnn; an MLP's layers are set with --hidden")
        sizes = [dataset.X.shape[1], *config.hidden, dataset.num_classes]
        parameters = sum((n_in + 1) * n_out for n_in, n_out in zip(sizes[:-1], sizes[1:]))
        if parameters > MAX_PARAMETERS:
            raise AppError(f"MLP {'-'.join(map(str, sizes))} would have {parameters:,} parameters, more than the "
                           f"{MAX_PARAMETERS:,} a run trains; choose smaller --hidden widths")
        return {"type": "mlp", "sizes": sizes, **common}
    if dataset.image_shape is None:
        images = ", ".join(IMAGE_DATA)
        raise AppError(f"--model cnn needs images, and {str(dataset.name)[:60]!r} is a table of "
                       f"{dataset.X.shape[1]} features; use --model mlp for it, or --data {images} for a CNN")
    if not isinstance(config.hidden, DefaultWidths):
        hint = "" if config.model else f" (for an MLP on {dataset.name}, add --model mlp)"
        raise AppError(f"--hidden sets the layers of an MLP{hint}; a CNN's are set with --channels "
                       f"(e.g. --channels 8,16)")
    return _cnn_spec(config, dataset, common)


def _cnn_spec(config, dataset, common):
    channels = list(DEFAULT_CHANNELS if config.channels is None else config.channels)
    if not (1 <= len(channels) <= MAX_CONV_LAYERS and all(isinstance(n, int) and 1 <= n <= MAX_CHANNELS
                                                            for n in channels)):
        raise AppError(f"--channels {channels}: from 1 to {MAX_CONV_LAYERS} convolutions of 1 to {MAX_CHANNELS} "
                       f"channels each")
    height, width = dataset.image_shape[1:]
    if min(height, width) >> len(channels) < 1:
        raise AppError(f"--channels {','.join(map(str, channels))}: {len(channels)} poolings would shrink the "
                       f"{height}x{width} images to nothing; use fewer convolutions")
    return {"type": "cnn", "image_shape": list(dataset.image_shape), "channels": channels,
            "kernel_size": CNN_KERNEL, "classes": dataset.num_classes, **common}


def describe_model(spec):
    """One line about the network, for the terminal and the pictures' titles.

    >>> describe_model({"type": "mlp", "sizes": [4, 16, 3]})
    'MLP 4-16-3'
    >>> describe_model({"type": "cnn", "image_shape": [1, 8, 8], "channels": [8, 16], "kernel_size": 3, "classes": 10})
    'CNN 1x8x8 > conv8 > pool > conv16 > pool > linear 10'
    """
    if spec.get("type", "mlp") == "mlp":
        return f"MLP {'-'.join(map(str, spec['sizes']))}"
    blocks = " > ".join(f"conv{count} > pool" for count in spec["channels"])
    return f"CNN {'x'.join(map(str, spec['image_shape']))} > {blocks} > linear {spec['classes']}"


def predict_classes(model, X_standardised):
    """Class indices for standardised features (eval mode, no graph).

    >>> predict_classes(model, split.X_val)                      # doctest: +SKIP
    array([0, 2, 1, ...])
    """
    import autograd_core as ag

    model.eval()
    with ag.no_grad():
        return np.argmax(model(ag.Value(np.asarray(X_standardised, dtype=np.float64), requires_grad=False)).data, axis=1)


def copy_state(model):
    """A state dict whose arrays do not change when the model trains on.

    >>> model = build_model([2, 1], "relu", batchnorm=False, dropout=0.0)
    >>> state = copy_state(model)
    >>> model[0].weight.data += 1.0
    >>> bool((state["0.weight"] == model[0].weight.data).any())
    False
    """
    return {name: np.array(getattr(value, "data", value), copy=True) for name, value in model.state_dict().items()}
