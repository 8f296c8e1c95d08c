"""``autograd-core train``: train an MLP classifier and write everything about it.

The run, in order: load the data (a built-in set or a CSV), split it
(stratified) and standardise it with the training statistics, build the MLP,
train with mini-batches while a reporter shows the loss and accuracy, stop
early when the validation loss stops improving (keeping the best weights),
then write to the output folder:

==========================  ==================================================
``model.npz``               the weights, a state dict loadable with ``nn.load``
``run.json``                what is needed to rebuild the model (sizes,
                            activation, standardisation, class names)
``metrics.csv``             loss, accuracy and learning rate per epoch
``curves.png``              training and validation curves
``decision_regions.png``    the classes over the plane (two-feature data only)
``graph.svg``               the graph of one training step, one cluster per module
``backprop.html``           the backprop player for one example
==========================  ==================================================

Ctrl-C stops after the current mini-batch; the run then writes what it has.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .data import BUILTIN, Dataset, load_csv, split_and_standardise
from .errors import AppError
from .files import prepare_output_dir, write_csv, write_json
from .report import make_reporter

DEFAULT_LR = {"sgd": 0.1, "adagrad": 0.1, "adadelta": 1.0, "adam": 0.01, "adamw": 0.01, "rmsprop": 0.01}
METRIC_COLUMNS = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "seconds")

FILE_NAMES = {
    "weights": "model.npz",
    "settings": "run.json",
    "metrics": "metrics.csv",
    "curves": "curves.png",
    "decision_regions": "decision_regions.png",
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
    hidden: list = field(default_factory=lambda: [16, 16])
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


def run(config, reporter=None):
    """Train as ``config`` says and write the run's files; returns a :class:`RunResult`.

    >>> result = run(TrainConfig(epochs=5, out="quick-run"))   # doctest: +SKIP
    >>> sorted(result.files)                                    # doctest: +SKIP
    """
    import autograd_core as ag

    nn, _ = _libraries()
    reporter = reporter or make_reporter()
    if config.csv is not None:
        if config.samples is not None:
            raise AppError("--samples sets the size of the generated data sets (moons, spirals, blobs), not of a --csv file")
        dataset = load_csv(config.csv, config.label)
    else:
        if config.label is not None:
            raise AppError("--label names the label column of a --csv file; built-in data sets have their own labels")
        if config.data not in BUILTIN:
            raise AppError(f"--data {config.data!r}: choose one of {', '.join(BUILTIN)}")
        dataset = _load_builtin(config.data, config.samples, config.seed)

    rng = np.random.default_rng(config.seed)
    nn.manual_seed(config.seed)
    split = split_and_standardise(dataset, config.val_split, rng)
    has_val = len(split.X_val) > 0
    out_dir = prepare_output_dir(config.out)

    sizes = [dataset.X.shape[1], *config.hidden, dataset.num_classes]
    model = build_model(sizes, config.activation, config.batchnorm, config.dropout)
    optimizer = _build_optimizer(config, list(model.parameters()))
    schedule = _build_schedule(config, optimizer)
    loss_fn = nn.CrossEntropyLoss()
    early = _early_stopping(config.patience) if (has_val and config.patience > 0) else None

    n_train = len(split.X_train)
    batches = -(-n_train // config.batch_size)
    reporter.info(f"{dataset.name}: {n_train} training / {len(split.X_val)} validation examples, "
                  f"{dataset.X.shape[1]} features, {dataset.num_classes} classes")
    layers = [config.activation] if config.hidden else ["no hidden layer"]
    layers += (["batch norm"] if config.batchnorm and config.hidden else [])
    layers += ([f"dropout {config.dropout:g}"] if config.dropout and config.hidden else [])
    reporter.info(f"MLP {'-'.join(map(str, sizes))} ({', '.join(layers)}), "
                  f"{config.optimizer} lr={_current_lr(optimizer):g}, batch {config.batch_size}, up to {config.epochs} epochs")
    reporter.event("start", data=dataset.name, train_examples=n_train, val_examples=len(split.X_val),
                   features=dataset.X.shape[1], classes=dataset.class_names, sizes=sizes, out=str(out_dir))

    history, stopped, best_epoch, best_state = [], "finished", None, None
    stop = _StopRequest()
    reporter.start(config.epochs, batches)
    try:
        with stop.installed(reporter):
            for epoch in range(1, config.epochs + 1):
                started = time.perf_counter()
                model.train()
                order = rng.permutation(n_train)
                seen, loss_sum, correct = 0, 0.0, 0
                lr = _current_lr(optimizer)
                for start in range(0, n_train, config.batch_size):
                    index = order[start:start + config.batch_size]
                    xb, yb = split.X_train[index], split.y_train[index]
                    logits = model(ag.Value(xb, requires_grad=False))
                    loss = loss_fn(logits, yb)
                    batch_loss = float(loss.data)
                    if not np.isfinite(batch_loss):  # stop before a NaN step spoils the weights
                        stopped = "diverged"
                        break
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                    seen += len(index)
                    loss_sum += batch_loss * len(index)
                    correct += int((np.argmax(logits.data, axis=1) == yb).sum())
                    reporter.batch(epoch, loss_sum / seen, correct / seen)
                    if stop.requested:
                        stopped = "interrupted"
                        break
                if seen == 0:
                    break
                row = {"epoch": epoch, "train_loss": loss_sum / seen, "train_accuracy": correct / seen,
                       "val_loss": None, "val_accuracy": None, "lr": lr}
                if has_val:
                    row["val_loss"], row["val_accuracy"] = _evaluate(model, loss_fn, split.X_val, split.y_val)
                row["seconds"] = time.perf_counter() - started
                history.append(row)
                reporter.epoch(row)
                if stopped != "finished":
                    break
                monitored = row["val_loss"] if has_val else row["train_loss"]
                if config.schedule == "plateau":
                    schedule.step(monitored)  # it watches the loss
                elif schedule is not None:
                    schedule.step()
                if early is not None:
                    should_stop = early.step(monitored)
                    if _best_epoch(early) == epoch:
                        best_state = _copy_state(model)
                    if should_stop:
                        stopped = "early"
                        break
    finally:
        reporter.close()

    if best_state is not None:
        model.load_state_dict(best_state)
        best_epoch = _best_epoch(early)
    if stopped == "early":
        reporter.info(f"Early stopping: no better validation loss for {config.patience} epochs; "
                      f"kept the weights of epoch {best_epoch}")
    elif stopped == "diverged":
        reporter.info(f"Stopped: the loss became NaN or infinite in epoch {len(history) + 1}; "
                      f"try a smaller --lr")
    elif stopped == "interrupted":
        reporter.info(f"Interrupted in epoch {len(history)}; writing what there is")
    if best_epoch is not None and stopped in ("diverged", "interrupted"):
        reporter.info(f"Kept the weights of the best epoch so far, {best_epoch}")

    final = {}
    if history:
        final["train_loss"], final["train_accuracy"] = _evaluate(model, loss_fn, split.X_train, split.y_train)
        if has_val:
            final["val_loss"], final["val_accuracy"] = _evaluate(model, loss_fn, split.X_val, split.y_val)
    files = write_outputs(out_dir, config, dataset, split, model, loss_fn, history, best_epoch, sizes, reporter)
    if history:
        summary = (f"Final accuracy: training {final['train_accuracy']:.1%}"
                   + (f", validation {final['val_accuracy']:.1%}" if "val_accuracy" in final else "")
                   + f" after {len(history)} epochs" + (f" (best epoch {best_epoch})" if best_epoch else ""))
    else:
        summary = "No epoch was completed; the weights are the initial ones"
    reporter.event("done", stopped=stopped, epochs=len(history), best_epoch=best_epoch, out=str(out_dir),
                   files={name: str(path) for name, path in files.items()}, **final)
    reporter.finished(out_dir, files, summary)
    return RunResult(model, history, files, out_dir, split, dataset, stopped, best_epoch, final)


# ==========================================================================
# Writing the run's files
# ==========================================================================
def write_outputs(out_dir, config, dataset, split, model, loss_fn, history, best_epoch, sizes, reporter):
    """Write every file of the run; returns {description: path}."""
    nn, _ = _libraries()
    from . import plots

    files = {}
    path = out_dir / FILE_NAMES["weights"]
    nn.save(model.state_dict(), path)  # nn.save writes atomically itself
    files["weights"] = path

    settings = {
        "format": "autograd-core run 1",
        "model": {"sizes": sizes, "activation": config.activation, "batchnorm": config.batchnorm,
                  "dropout": config.dropout},
        "data": {"name": dataset.name, "features": dataset.feature_names, "classes": [str(c) for c in dataset.class_names],
                 "mean": split.mean.tolist(), "std": split.std.tolist()},
        "training": {key: value for key, value in vars(config).items() if key != "out"},
        "epochs_run": len(history), "best_epoch": best_epoch,
    }
    files["settings"] = write_json(out_dir / FILE_NAMES["settings"], settings)
    files["metrics"] = write_csv(out_dir / FILE_NAMES["metrics"], history, METRIC_COLUMNS)
    if history:
        files["curves"] = plots.plot_curves(history, out_dir / FILE_NAMES["curves"], best_epoch=best_epoch,
                                            title=f"{dataset.name}: MLP {'-'.join(map(str, sizes))}")
    if dataset.X.shape[1] == 2:
        raw_train = split.X_train * split.std + split.mean
        raw_val = split.X_val * split.std + split.mean
        files["decision_regions"] = plots.plot_decision_regions(
            lambda X: predict_classes(model, split.standardise(X)), raw_train, split.y_train, raw_val, split.y_val,
            dataset.class_names, dataset.feature_names, out_dir / FILE_NAMES["decision_regions"],
            title=f"{dataset.name}: decision regions",
        )
    files.update(_write_graph_and_player(out_dir, split, model, loss_fn, config.batch_size, reporter))
    return files


def _write_graph_and_player(out_dir, split, model, loss_fn, batch_size, reporter):
    """The graph of one training step (a mini-batch through the model in train
    mode, its loss and backward) and the backprop player for one example.

    Both passes would change the model (batch-norm running statistics, the
    gradients), so its state is put back afterwards. Without a Graphviz
    renderer both are skipped with a warning; the other files are written.
    """
    import autograd_core as ag
    from autograd_core.viz import RendererNotFoundError

    state = _copy_state(model)
    files = {}
    try:
        model.train()
        count = min(batch_size, len(split.X_train), 8)
        xb = ag.Value(split.X_train[:count], requires_grad=False, label=f"x (batch of {count})")
        loss = loss_fn(model(xb), split.y_train[:count])
        loss.label = "loss"
        model.zero_grad()
        loss.backward(retain_graph=True)
        path = out_dir / FILE_NAMES["graph"]
        ag.render_graph(loss, path, format="svg", direction="TB")  # top to bottom: layers read downwards
        files["graph"] = path

        model.eval()
        model.zero_grad()
        x_one = ag.Value(split.X_train[:1], requires_grad=False, label="x")
        loss_one = loss_fn(model(x_one), split.y_train[:1])
        loss_one.label = "loss"
        path = out_dir / FILE_NAMES["backprop_player"]
        ag.BackpropStepper(loss_one).save_html(path)
        files["backprop_player"] = path
    except RendererNotFoundError as exc:
        reporter.warn(f"no graph.svg or backprop.html: {exc}")
    finally:
        model.zero_grad()
        model.load_state_dict(state)
    return files


def _copy_state(model):
    """A state dict whose arrays do not change when the model trains on."""
    return {name: np.array(getattr(value, "data", value), copy=True) for name, value in model.state_dict().items()}


def load_run(out_dir):
    """Rebuild a trained model from a run folder: ``(model, settings)``.

    ``settings["data"]`` holds the standardisation (``mean``, ``std``) and the
    class names, so new raw features can be classified:

    >>> model, settings = load_run("runs/2026-01-01_120000")          # doctest: +SKIP
    >>> x = (raw - np.array(settings["data"]["mean"])) / np.array(settings["data"]["std"])
    """
    import json

    nn, _ = _libraries()
    out_dir = Path(out_dir)
    settings = json.loads((out_dir / FILE_NAMES["settings"]).read_text(encoding="utf-8"))
    spec = settings["model"]
    model = build_model(spec["sizes"], spec["activation"], spec["batchnorm"], spec["dropout"])
    model.load_state_dict(nn.load(out_dir / FILE_NAMES["weights"]))
    model.eval()
    return model, settings
