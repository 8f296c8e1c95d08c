"""``autograd-core train``: train a classifier and write everything about it.

The run, in order: load the data (a built-in set or a CSV), split it
(stratified) and standardise it with the training statistics, build the model
(an MLP, or for images a small CNN: convolution, activation and max pooling
twice, then a linear layer), train with mini-batches while a reporter shows
the loss and accuracy, stop early when the validation loss stops improving
(keeping the best weights), then write to the output folder:

==========================  ==================================================
``model.npz``               the weights, a state dict loadable with ``nn.load``
``run.json``                what is needed to rebuild the model (sizes or
                            channels, activation, standardisation, class names)
``metrics.csv``             loss, accuracy and learning rate per epoch
``curves.png``              training and validation curves
``decision_regions.png``    the classes over the plane (two-feature data only)
``confusion_matrix.png``    true against predicted classes (images only)
``misclassified.png``       the images the model got wrong (images only)
``graph.svg``               the graph of one training step, one cluster per module
``backprop.html``           the backprop player of the first training step
==========================  ==================================================

Ctrl-C stops after the current mini-batch; the run then writes what it has.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._files import FileTooLargeError, NotARegularFileError, open_regular_file
from ..cli import DefaultWidths
from .data import BUILTIN, IMAGE_DATA, Dataset, load_csv, split_and_standardise
from .errors import AppError
from .files import prepare_output_dir, write_csv, write_json
from .report import make_reporter

MAX_PARAMETERS = 50_000_000  # 400 MB of float64 weights, before gradients and optimizer state
DEFAULT_LR = {"sgd": 0.1, "adagrad": 0.1, "adadelta": 1.0, "adam": 0.01, "adamw": 0.01, "rmsprop": 0.01}
METRIC_COLUMNS = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "seconds")

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


@dataclass
class TrainConfig:
    """Every option of ``autograd-core train``, with the command's defaults."""

    data: str = "iris"
    csv: str | None = None
    label: str | None = None
    samples: int | None = None
    val_split: float = 0.2
    model: str | None = None  # "mlp" or "cnn"; None: cnn for images, mlp otherwise
    hidden: list = field(default_factory=lambda: DefaultWidths([16, 16]))
    channels: list | None = None  # the CNN's channels per convolution; None: [8, 16]
    activation: str = "relu"
    batchnorm: bool = False
    dropout: float = 0.0
    optimizer: str = "adam"
    lr: float | None = None
    momentum: float | None = None
    schedule: str = "none"
    batch_size: int = 16
    epochs: int = 100
    patience: int = 20
    seed: int = 0
    out: str | None = None
    eager: bool = False  # True: no compiled training step (see autograd_core.compile)

    @classmethod
    def from_args(cls, args):
        names = cls.__dataclass_fields__
        config = cls(**{name: getattr(args, name) for name in names if getattr(args, name, None) is not None})
        if args.csv is None and args.data is None:
            config.data = "iris"
        return config


@dataclass
class RunResult:
    """What a run produced: the trained model, its history and the files written."""

    model: object
    history: list
    files: dict
    out_dir: Path
    split: object
    dataset: Dataset
    stopped: str
    best_epoch: int | None
    final: dict


def train_command(args):
    """The ``train`` command: options -> :func:`run` -> exit status."""
    config = TrainConfig.from_args(args)
    reporter = make_reporter(quiet=args.quiet, jsonl=args.jsonl)
    # A diverging run overflows on its way to being stopped, and says so itself:
    # NumPy's warnings (with source paths) would only break up the progress
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = run(config, reporter)
    return {"interrupted": 130, "diverged": 1}.get(result.stopped, 0)


# ==========================================================================
# The seam with nn and optim: every call into them is in this section.
# ==========================================================================
def _libraries():
    try:
        import nn
        import optim
    except ImportError as exc:  # pragma: no cover - both ship with the project
        raise AppError(f"the nn and optim packages are needed for training ({exc})") from None
    return nn, optim


def _load_builtin(name, samples, seed):
    nn, _ = _libraries()
    if name == "iris":
        if samples is not None:
            raise AppError("--samples: iris has its own 150 examples; --samples is for moons, spirals and blobs")
        iris = nn.data.load_iris()
        return Dataset(iris.X, iris.y, iris.feature_names, iris.target_names, name="iris")
    if name == "digits":
        if samples is not None:
            raise AppError("--samples: digits has its own 1,797 images; --samples is for moons, spirals and blobs")
        digits = nn.data.load_digits()
        return Dataset(digits.X, digits.y, digits.feature_names, digits.target_names, name="digits",
                       image_shape=tuple(digits.images.shape[1:]))
    samples = 300 if samples is None else samples
    generated = {
        "moons": lambda: nn.data.make_moons(samples, noise=0.2, seed=seed),
        "spirals": lambda: nn.data.make_spirals(samples, n_classes=3, noise=0.2, seed=seed),
        "blobs": lambda: nn.data.make_blobs(samples, centers=3, seed=seed),
    }
    X, y = generated[name]()
    classes = [f"class {k}" for k in range(int(y.max()) + 1)]
    return Dataset(np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.int64), ["x1", "x2"], classes, name=name)


def build_model(sizes, activation, batchnorm, dropout):
    """The MLP of a run: ``sizes`` = [inputs, *hidden, classes].

    >>> build_model([4, 16, 3], "tanh", batchnorm=False, dropout=0.0)[0]   # doctest: +SKIP
    Linear(in_features=4, out_features=16, bias=True)
    """
    nn, _ = _libraries()
    return nn.MLP(sizes, activation=activation, batchnorm=batchnorm, dropout=dropout)


CNN_KERNEL = 3          # every convolution: 3x3, padded by 1, so only the pooling shrinks the image
DEFAULT_CHANNELS = [8, 16]


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
    nn, _ = _libraries()
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


def _build_optimizer(config, parameters):
    _, optim = _libraries()
    lr = config.lr if config.lr is not None else DEFAULT_LR[config.optimizer]
    if config.momentum is not None and config.optimizer not in ("sgd", "rmsprop"):
        raise AppError(f"--momentum applies to sgd and rmsprop; {config.optimizer} keeps its own moving averages "
                       f"(drop --momentum, or use --optimizer sgd)")
    if config.optimizer == "sgd":
        return optim.SGD(parameters, lr=lr, momentum=0.9 if config.momentum is None else config.momentum)
    if config.optimizer == "rmsprop":
        return optim.RMSprop(parameters, lr=lr, momentum=config.momentum or 0.0)
    classes = {"adam": optim.Adam, "adamw": optim.AdamW, "adagrad": optim.Adagrad, "adadelta": optim.Adadelta}
    return classes[config.optimizer](parameters, lr=lr)


def _build_schedule(config, optimizer):
    if config.schedule == "none":
        return None
    _, optim = _libraries()
    schedulers = optim.lr_scheduler
    if config.schedule == "step":
        return schedulers.StepLR(optimizer, step_size=max(1, config.epochs // 3), gamma=0.1)
    if config.schedule == "exponential":
        return schedulers.ExponentialLR(optimizer, gamma=0.01 ** (1 / max(1, config.epochs)))  # lr/100 at the end
    if config.schedule == "cosine":
        return schedulers.CosineAnnealingLR(optimizer, T_max=config.epochs)
    if config.schedule == "plateau":
        return schedulers.ReduceLROnPlateau(optimizer, mode="min", factor=0.5, patience=5)
    raise AppError(f"--schedule {config.schedule!r}: choose none, step, exponential, cosine or plateau")


def _current_lr(optimizer):
    return float(optimizer.param_groups[0]["lr"])


def _early_stopping(patience):
    """Decides when the validation loss has stopped improving. The run keeps
    the best state dict itself, so batch-norm running statistics come back
    with the weights."""
    _, optim = _libraries()
    return optim.EarlyStopping(patience=patience, min_delta=0.0, mode="min")


def _best_epoch(early):
    """The best epoch so far, 1-based (EarlyStopping counts its steps from 0)."""
    return None if early.best_epoch is None else early.best_epoch + 1


# ==========================================================================
# Training
# ==========================================================================
class DivergenceWatch:
    """Tells a diverging run by its training loss: not finite, or grown to
    ``GROWTH`` times its first value (or 1, when that is smaller). A loss of
    1.1 that reaches 1,100 is not a bad patch but a learning rate too large:
    at ``--lr 1e6`` it reaches 1e88 in the first epoch while the accuracy stays
    at chance.

    >>> watch = DivergenceWatch()
    >>> watch.diverged(1.1), watch.diverged(900.0), watch.diverged(1200.0)
    (False, False, True)
    """

    GROWTH = 1e3

    def __init__(self):
        self.first = None
        self.last = None  # the loss that was found diverged

    def diverged(self, loss):
        if self.first is None and math.isfinite(loss):
            self.first = loss
        if not math.isfinite(loss) or loss > self.GROWTH * max(self.first, 1.0):
            self.last = loss
            return True
        return False


def train_epoch(model, loss_fn, optimizer, batches, after_batch=None, step=None, watch=None):
    """One pass over the mini-batches: the training loop of the lecture.

    Returns None, or why it stopped early: ``"diverged"`` (the loss is not
    finite or has grown by orders of magnitude, see :class:`DivergenceWatch`;
    no step is taken with it) or ``"interrupted"`` (``after_batch``, which
    does the bookkeeping, returned True). `step`, when given, is the forward
    pass compiled (``ag.compile``: ``(x, y) -> (loss, logits)``); the numbers
    are the same. `watch` keeps the run's first loss from epoch to epoch (a
    new one is made when none is given).

    >>> train_epoch(model, nn.CrossEntropyLoss(), optimizer, [(X, y)])   # doctest: +SKIP
    """
    import autograd_core as ag

    watch = DivergenceWatch() if watch is None else watch
    model.train()
    for xb, yb in batches:
        optimizer.zero_grad()                               # forget the previous step's gradients
        if step is not None:
            loss, logits = step(xb, yb)                     # forward and loss, compiled
        else:
            logits = model(ag.Value(xb, requires_grad=False))   # forward
            loss = loss_fn(logits, yb)                      # loss
        if watch.diverged(float(loss.data)):
            return "diverged"                               # before a NaN step spoils the weights
        loss.backward()                                     # backward: d loss / d every parameter
        optimizer.step()                                    # update: a step against the gradient
        if after_batch is not None and after_batch(loss, logits, yb):
            return "interrupted"
    return None


def _minibatches(X, y, batch_size, order, smallest=1):
    """The mini-batches in `order`; a last one smaller than `smallest` is left
    out (batch norm cannot train on a batch of one example)."""
    for start in range(0, len(order), batch_size):
        index = order[start:start + batch_size]
        if len(index) >= smallest:
            yield X[index], y[index]


class _StopRequest:
    """Ctrl-C sets a flag that the loop reads after each mini-batch; a second
    Ctrl-C interrupts at once (for a run that is stuck)."""

    def __init__(self):
        self.requested = False

    @contextlib.contextmanager
    def installed(self, reporter):
        if threading.current_thread() is not threading.main_thread():
            yield self  # signals reach only the main thread; nothing to install
            return

        def handler(signum, frame):
            if self.requested:
                raise KeyboardInterrupt
            self.requested = True
            reporter.info("Ctrl-C: stopping after this mini-batch and writing what there is (press again to abort)")

        previous = signal.signal(signal.SIGINT, handler)
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, previous)


class _RunningMetrics:
    """Loss and accuracy over the mini-batches of one epoch so far."""

    def __init__(self):
        self.seen, self.loss_sum, self.correct = 0, 0.0, 0

    def add(self, loss, logits, yb):
        self.seen += len(yb)
        self.loss_sum += float(loss.data) * len(yb)
        self.correct += int((np.argmax(logits.data, axis=1) == yb).sum())

    @property
    def loss(self):
        return self.loss_sum / self.seen

    @property
    def accuracy(self):
        return self.correct / self.seen


def _evaluate(model, loss_fn, X, y, batch_size=1024):
    """Mean loss and accuracy of ``model`` on standardised ``X`` (eval mode, no graph)."""
    import autograd_core as ag

    total_loss, correct = 0.0, 0
    model.eval()
    with ag.no_grad():
        for start in range(0, len(X), batch_size):
            xb, yb = X[start:start + batch_size], y[start:start + batch_size]
            logits = model(ag.Value(xb, requires_grad=False))
            total_loss += float(loss_fn(logits, yb).data) * len(xb)
            correct += int((np.argmax(logits.data, axis=1) == yb).sum())
    return total_loss / len(X), correct / len(X)


def predict_classes(model, X_standardised):
    """Class indices for standardised features (eval mode, no graph).

    >>> predict_classes(model, split.X_val)                      # doctest: +SKIP
    array([0, 2, 1, ...])
    """
    import autograd_core as ag

    model.eval()
    with ag.no_grad():
        return np.argmax(model(ag.Value(np.asarray(X_standardised, dtype=np.float64), requires_grad=False)).data, axis=1)


@dataclass
class _Trainer:
    """What the epochs need: the model and what trains it."""

    model: object
    loss_fn: object
    optimizer: object
    schedule: object
    early: object
    step: object = None  # the compiled forward (x, y) -> (loss, logits), or None: eager
    watch: DivergenceWatch = field(default_factory=DivergenceWatch)


def _build_trainer(config, spec, has_val):
    import autograd_core as ag

    nn, _ = _libraries()
    model = build_network(spec)
    optimizer = _build_optimizer(config, list(model.parameters()))
    schedule = _build_schedule(config, optimizer)
    early = _early_stopping(config.patience) if (has_val and config.patience > 0) else None
    loss_fn = nn.CrossEntropyLoss()

    def loss_and_logits(x, y):
        logits = model(x)
        return loss_fn(logits, y), logits

    step = None if config.eager else ag.compile(loss_and_logits)  # traced once per batch shape, then replayed
    return _Trainer(model, loss_fn, optimizer, schedule, early, step)


@dataclass
class _Outcome:
    history: list
    stopped: str = "finished"
    best_epoch: int | None = None
    player: Path | None = None
    stopped_in: int | None = None  # the epoch that was cut short (diverged or interrupted)


def fit(config, trainer, split, rng, reporter, out_dir):
    """The epochs: train, measure, schedule the learning rate, stop early.

    Keeps the best weights (batch-norm statistics included) and puts them back
    at the end; before the first update it records the backprop player of
    that first step.
    """
    n_train = len(split.X_train)
    outcome, best_state, stop = _Outcome(history=[]), None, _StopRequest()
    reporter.start(config.epochs, -(-n_train // config.batch_size))
    try:
        with stop.installed(reporter):
            for epoch in range(1, config.epochs + 1):
                order = rng.permutation(n_train)
                if epoch == 1:
                    first = order[:config.batch_size]
                    outcome.player = _record_first_step(trainer, split.X_train[first], split.y_train[first],
                                                        out_dir / FILE_NAMES["backprop_player"], reporter)
                row, why = _run_epoch(epoch, order, config, trainer, split, reporter, stop)
                if why is not None:
                    outcome.stopped, outcome.stopped_in = why, epoch
                if row is None:
                    break
                outcome.history.append(row)
                reporter.epoch(row)
                if why is not None:
                    break
                improved, should_stop = _schedule_and_watch(config, trainer, row)
                if improved:
                    best_state = _copy_state(trainer.model)
                if should_stop:
                    outcome.stopped = "early"
                    break
    finally:
        reporter.close()
    if best_state is not None:
        trainer.model.load_state_dict(best_state)
        outcome.best_epoch = _best_epoch(trainer.early)
    return outcome


def _run_epoch(epoch, order, config, trainer, split, reporter, stop):
    """Train one epoch and measure it: (its metrics row, or None when no
    mini-batch ran; why it stopped early, or None)."""
    started, running, lr = time.perf_counter(), _RunningMetrics(), _current_lr(trainer.optimizer)

    def after_batch(loss, logits, yb):
        running.add(loss, logits, yb)
        reporter.batch(epoch, running.loss, running.accuracy)
        return stop.requested

    batches = _minibatches(split.X_train, split.y_train, config.batch_size, order, 2 if config.batchnorm else 1)
    why = train_epoch(trainer.model, trainer.loss_fn, trainer.optimizer, batches, after_batch, trainer.step,
                      trainer.watch)
    if running.seen == 0:
        return None, why
    row = {"epoch": epoch, "train_loss": running.loss, "train_accuracy": running.accuracy,
           "val_loss": None, "val_accuracy": None, "lr": lr}
    if len(split.X_val):
        row["val_loss"], row["val_accuracy"] = _evaluate(trainer.model, trainer.loss_fn, split.X_val, split.y_val)
    row["seconds"] = time.perf_counter() - started
    return row, why


def _schedule_and_watch(config, trainer, row):
    """The learning-rate schedule's and early stopping's turn after an epoch:
    (is this the best epoch so far, should training stop)."""
    monitored = row["val_loss"] if row["val_loss"] is not None else row["train_loss"]
    if config.schedule == "plateau":
        trainer.schedule.step(monitored)  # it watches the loss
    elif trainer.schedule is not None:
        trainer.schedule.step()
    if trainer.early is None:
        return False, False
    should_stop = trainer.early.step(monitored)
    return _best_epoch(trainer.early) == row["epoch"], should_stop


def load_data(config):
    """The run's Dataset: ``--csv`` or a built-in set, with the option checks."""
    if config.csv is not None:
        if config.samples is not None:
            raise AppError("--samples sets the size of the generated data sets (moons, spirals, blobs), not of a --csv file")
        return load_csv(config.csv, config.label)
    if config.label is not None:
        raise AppError("--label names the label column of a --csv file; built-in data sets have their own labels")
    if config.data not in BUILTIN:
        raise AppError(f"--data {config.data!r}: choose one of {', '.join(BUILTIN)}")
    return _load_builtin(config.data, config.samples, config.seed)


def run(config, reporter=None):
    """Train as ``config`` says and write the run's files; returns a :class:`RunResult`.

    >>> result = run(TrainConfig(epochs=5, out="quick-run"))   # doctest: +SKIP
    >>> sorted(result.files)                                    # doctest: +SKIP
    """
    nn, _ = _libraries()
    reporter = reporter or make_reporter()
    dataset = load_data(config)
    spec = model_spec(config, dataset)
    rng = np.random.default_rng(config.seed)
    nn.manual_seed(config.seed)
    split = split_and_standardise(dataset, config.val_split, rng, images=spec["type"] == "cnn")
    has_norm_layers = spec["type"] == "cnn" or config.hidden
    if config.batchnorm and has_norm_layers and min(config.batch_size, len(split.X_train)) < 2:
        raise AppError(f"--batchnorm needs mini-batches of two or more examples (batch norm divides by the batch's "
                       f"spread); use --batch-size 2 or more (it is {config.batch_size}, with "
                       f"{len(split.X_train)} training examples)")
    out_dir = prepare_output_dir(config.out)
    trainer = _build_trainer(config, spec, has_val=len(split.X_val) > 0)
    _announce(config, dataset, split, spec, trainer, out_dir, reporter)

    outcome = fit(config, trainer, split, rng, reporter, out_dir)
    _report_stop(config, outcome, trainer.watch, reporter)
    final = _final_metrics(trainer, split) if outcome.history else {}
    files = write_outputs(out_dir, config, dataset, split, trainer.model, trainer.loss_fn, outcome.history,
                          outcome.best_epoch, spec, reporter)
    if outcome.player is not None:
        files["backprop_player"] = outcome.player
    reporter.event("done", stopped=outcome.stopped, epochs=len(outcome.history), best_epoch=outcome.best_epoch,
                   out=str(out_dir), files={name: str(path) for name, path in files.items()}, **final)
    reporter.finished(out_dir, files, _summary(outcome, final))
    return RunResult(trainer.model, outcome.history, files, out_dir, split, dataset, outcome.stopped,
                     outcome.best_epoch, final)


def model_spec(config, dataset):
    """run.json's ``"model"``: the kind of network and its sizes, checked against the data.

    An MLP reads any data as rows of features; a CNN needs images. Without
    ``--model`` images get the CNN and every other data set the MLP.
    """
    kind = config.model or ("cnn" if dataset.image_shape is not None else "mlp")
    if kind not in ("mlp", "cnn"):
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
    from ..cli import MAX_CHANNELS, MAX_CONV_LAYERS

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


def _announce(config, dataset, split, spec, trainer, out_dir, reporter):
    features = (f"{'x'.join(map(str, dataset.image_shape))} images" if spec["type"] == "cnn"
                else f"{dataset.X.shape[1]} features")
    reporter.info(f"{dataset.name}: {len(split.X_train)} training / {len(split.X_val)} validation examples, "
                  f"{features}, {dataset.num_classes} classes")
    has_layers = spec["type"] == "cnn" or config.hidden
    layers = [config.activation] if has_layers else ["no hidden layer"]
    layers += (["batch norm"] if config.batchnorm and has_layers else [])
    layers += ([f"dropout {config.dropout:g}"] if config.dropout and has_layers else [])
    reporter.info(f"{describe_model(spec)} ({', '.join(layers)}), "
                  f"{config.optimizer} lr={_current_lr(trainer.optimizer):g}, batch {config.batch_size}, "
                  f"up to {config.epochs} epochs")
    shape = {"sizes": spec["sizes"]} if spec["type"] == "mlp" else {"channels": spec["channels"]}
    reporter.event("start", data=dataset.name, train_examples=len(split.X_train), val_examples=len(split.X_val),
                   features=dataset.X.shape[1], classes=dataset.class_names, model=spec["type"], **shape,
                   out=str(out_dir))


def _report_stop(config, outcome, watch, reporter):
    epochs, best_epoch = len(outcome.history), outcome.best_epoch
    if outcome.stopped == "early":
        reporter.info(f"Early stopping: no better validation loss for {config.patience} epochs; "
                      f"kept the weights of epoch {best_epoch}")
    elif outcome.stopped == "diverged":
        if math.isfinite(watch.last):
            change = f"grew from {watch.first:.4g} to {watch.last:.4g}"
        else:
            change = f"became {watch.last}" + ("" if watch.first is None else f" (it started at {watch.first:.4g})")
        reporter.info(f"Stopped: the training loss {change} in epoch {outcome.stopped_in}: the training diverged; "
                      f"try a smaller --lr")
    elif outcome.stopped == "interrupted":
        reporter.info(f"Interrupted in epoch {epochs}; writing what there is")
    if best_epoch is not None and outcome.stopped in ("diverged", "interrupted"):
        reporter.info(f"Kept the weights of the best epoch so far, {best_epoch}")


def _final_metrics(trainer, split):
    """Loss and accuracy of the kept weights (the best epoch's, with early stopping)."""
    final = {}
    final["train_loss"], final["train_accuracy"] = _evaluate(trainer.model, trainer.loss_fn, split.X_train, split.y_train)
    if len(split.X_val):
        final["val_loss"], final["val_accuracy"] = _evaluate(trainer.model, trainer.loss_fn, split.X_val, split.y_val)
    return final


def _summary(outcome, final):
    if not outcome.history:
        return "No epoch was completed; the weights are the initial ones"
    return (f"Final accuracy: training {final['train_accuracy']:.1%}"
            + (f", validation {final['val_accuracy']:.1%}" if "val_accuracy" in final else "")
            + f" after {len(outcome.history)} epochs"
            + (f" (best epoch {outcome.best_epoch})" if outcome.best_epoch else ""))


# ==========================================================================
# Writing the run's files
# ==========================================================================
def write_outputs(out_dir, config, dataset, split, model, loss_fn, history, best_epoch, spec, reporter):
    """Write every file of the run; returns {description: path}.

    The weights, run.json and metrics.csv come first; a picture that cannot
    be drawn is reported as a warning and the run still succeeds.
    """
    nn, _ = _libraries()
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


GRAPH_EXAMPLES = 8  # graph.svg's batch: at most this many examples, so their numbers can be shown


def _write_graph(out_dir, split, model, loss_fn, batch_size, reporter):
    """The graph of one training step of the trained model (a mini-batch in
    train mode, its loss and backward), with the model's state put back after.
    Without a Graphviz renderer it is skipped with a warning (returns None)."""
    import autograd_core as ag
    from autograd_core.viz import RendererNotFoundError

    state = _copy_state(model)
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


def _record_first_step(trainer, xb, yb, path, reporter):
    """The backprop player of the first training step: the first mini-batch
    through the untrained model, before the first update, when the gradients
    are large enough to see. The model's state and the random generator
    (dropout) are put back, so the real first step is the same one.
    Returns the path, or None when no Graphviz renderer is available."""

    import autograd_core as ag
    from autograd_core.viz import RendererNotFoundError

    nn, _ = _libraries()
    model = trainer.model
    state, generator = _copy_state(model), nn.get_generator()
    random_state = generator.bit_generator.state
    try:
        model.train()
        x = ag.Value(xb, requires_grad=False, label=f"x (batch of {len(xb)})")
        loss = trainer.loss_fn(model(x), yb)
        loss.label = "loss"
        caption = (f"Training step 1 (epoch 1, mini-batch 1 of {len(xb)} examples), before the first update: "
                   f"the gradients the optimizer's first step uses.")
        # top to bottom, as graph.svg: the first steps (at the loss, at the bottom) open under the last
        # layer; left to right they sat alone at the end of a long, mostly empty strip
        return ag.BackpropStepper(loss, direction="TB").save_html(path, caption=caption)  # leaves .grad alone
    except RendererNotFoundError as exc:
        reporter.warn(f"no backprop.html: {exc}")
        return None
    except Exception as exc:  # an optional picture must not stop the training
        reporter.warn(f"no backprop.html: {type(exc).__name__}: {exc}")
        return None
    finally:
        generator.bit_generator.state = random_state
        model.zero_grad()
        model.load_state_dict(state)


def _copy_state(model):
    """A state dict whose arrays do not change when the model trains on."""
    return {name: np.array(getattr(value, "data", value), copy=True) for name, value in model.state_dict().items()}


MAX_SETTINGS_BYTES = 16 << 20  # run.json of 1,000 classes and 10,000 features is well under 1 MB


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
    nn, _ = _libraries()
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
    import json

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
    if kind not in ("mlp", "cnn"):
        raise AppError(f'load_run: {path}: "model"."type" is {str(kind)[:40]!r}; expected "mlp" or "cnn"')
    if kind == "mlp":
        sizes = _expect(model.get("sizes"), list, '"model"."sizes"', path)
        if len(sizes) < 2 or not all(_is_count(n) for n in sizes):
            raise AppError(f'load_run: {path}: "model"."sizes" must list two or more whole widths >= 1, '
                           f"got {str(sizes)[:80]}")
    else:
        _check_cnn_settings(model, path)
    activation = _expect(model.get("activation"), str, '"model"."activation"', path)
    from ..cli import ACTIVATIONS

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
