"""``autograd-core train``: train a classifier and write everything about it.

The run, in order: load the data (a built-in set or a CSV), split it
(stratified) and standardise it with the training statistics, build the model
(an MLP, or for images a small CNN: convolution, activation and max pooling
twice, then a linear layer), train with mini-batches while a reporter shows
the loss and accuracy, stop early when the validation loss stops improving
(keeping the best weights), then write to the output folder
(:mod:`.run_folder` writes it and reads it back; :mod:`.models` builds the
networks):

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

from .data import BUILTIN, Dataset, load_csv, split_and_standardise
from .errors import AppError
from .files import prepare_output_dir
from .models import DefaultWidths, build_network, copy_state, describe_model, libraries, model_spec
from .report import make_reporter
from .run_folder import FILE_NAMES, write_outputs

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad", "adadelta")
SCHEDULES = ("none", "step", "exponential", "cosine", "plateau")
DEFAULT_LR = {"sgd": 0.1, "adagrad": 0.1, "adadelta": 1.0, "adam": 0.01, "adamw": 0.01, "rmsprop": 0.01}


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
# What a run takes from nn and optim: the data sets, the optimizer, the
# schedule, early stopping (the networks are built in .models)
# ==========================================================================
def _load_builtin(name, samples, seed):
    nn, _ = libraries()
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


def _build_optimizer(config, parameters):
    _, optim = libraries()
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
    _, optim = libraries()
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
    _, optim = libraries()
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

    nn, _ = libraries()
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
                    best_state = copy_state(trainer.model)
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
    nn, _ = libraries()
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


def _record_first_step(trainer, xb, yb, path, reporter):
    """The backprop player of the first training step: the first mini-batch
    through the untrained model, before the first update, when the gradients
    are large enough to see. The model's state and the random generator
    (dropout) are put back, so the real first step is the same one.
    Returns the path, or None when no Graphviz renderer is available."""
    import autograd_core as ag
    from autograd_core.viz import RendererNotFoundError

    nn, _ = libraries()
    model = trainer.model
    state, generator = copy_state(model), nn.get_generator()
    random_state = generator.bit_generator.state
    try:
        model.train()
        x = ag.Value(xb, requires_grad=False, label=f"x (batch of {len(xb)})")
        loss = trainer.loss_fn(model(x), yb)
        loss.label = "loss"
        caption = (f"Training step 1 (epoch 1, mini-batch 1 of {len(xb)} examples), before the first update: "
                   f"the gradients the optimizer's first step uses.")
        # top to bottom, as graph.svg: the first steps (at the loss, at the bottom) open under the last
        # layer; left to right they would sit alone at the end of a long, mostly empty strip
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


