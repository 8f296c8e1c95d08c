"""Row (i): an epoch of the digits CNN as ``autograd-core train --data digits``
trains it, and the same epoch written in PyTorch.

Ours is the app's own code, called as its ``run`` and ``fit`` call it
(``autograd_core.app.train``): the default options of ``train --data digits``
(the CNN conv 3x3 1->8, ReLU, max-pool 2, conv 3x3 8->16, ReLU, max-pool 2,
linear 64->10, float64; Adam at lr 0.01; batch 16; seed 0; a fifth of each
class held out), the data loaded, split and standardised by the app, the
network and its compiled step built by the app's ``_build_trainer``, and an
epoch as ``fit`` makes one: a new order of the examples, ``_run_epoch`` (the
mini-batches through ``train_epoch`` with the running loss and accuracy, then
the validation pass), the early-stopping bookkeeping and a copy of the weights
when the validation loss improved. Only the reporter is the quiet one (the
progress bar of a terminal is left out) and the backprop player of the first
step is not recorded (it belongs to the run's pictures, row (j)).

PyTorch's epoch is the same network with the same initial weights (copied
from ours), the same standardised images, the same order of examples, Adam at
the same learning rate, batch 16, and the same bookkeeping: the running loss
and accuracy after each mini-batch, the validation loss and accuracy in
batches of 1,024 in evaluation mode without a graph, and a copy of the weights
when the validation loss improved.

    python -m benchmarks.digits_epoch          # one epoch of each, seconds
"""

from __future__ import annotations

import io
import time

import numpy as np

EPOCH_DATA = "digits"


def _app_pieces(eager):
    """What ``autograd_core.app.train.run`` makes before its first epoch, in
    the same order (so the same random numbers): (config, trainer, split, rng)."""
    import nn
    from autograd_core.app import train as app_train
    from autograd_core.app.data import split_and_standardise
    from autograd_core.app.models import model_spec

    config = app_train.TrainConfig(data=EPOCH_DATA, eager=eager)
    dataset = app_train.load_data(config)
    spec = model_spec(config, dataset)
    rng = np.random.default_rng(config.seed)
    nn.manual_seed(config.seed)
    split = split_and_standardise(dataset, config.val_split, rng, images=spec["type"] == "cnn")
    trainer = app_train._build_trainer(config, spec, has_val=len(split.X_val) > 0)
    return config, trainer, split, rng


def ours_epoch_step(eager=False):
    """A function that trains one more epoch as ``fit`` does and returns its
    metrics row (``eager``: ``train --eager``, no compiled step)."""
    from autograd_core.app import train as app_train
    from autograd_core.app.models import copy_state
    from autograd_core.app.report import make_reporter

    config, trainer, split, rng = _app_pieces(eager)
    reporter, stop = make_reporter(quiet=True, stream=io.StringIO()), app_train._StopRequest()
    state = {"epoch": 0, "best": None}
    n_train = len(split.X_train)

    def epoch():
        state["epoch"] += 1
        order = rng.permutation(n_train)
        row, why = app_train._run_epoch(state["epoch"], order, config, trainer, split, reporter, stop)
        if why is not None:  # a shorter epoch would be timed as a whole one
            raise RuntimeError(f"the digits epoch stopped early: {why}")
        improved, _ = app_train._schedule_and_watch(config, trainer, row)
        if improved:
            state["best"] = copy_state(trainer.model)
        return row

    epoch.trainer = trainer
    return epoch


def torch_epoch_step(threads=2):
    """PyTorch's epoch of the same network, weights, data, order and optimizer."""
    import torch

    from autograd_core.app.train import DEFAULT_LR

    torch.set_num_threads(threads)
    config, trainer, split, rng = _app_pieces(eager=True)
    model = _torch_copy(trainer.model, torch)
    optimizer = torch.optim.Adam(model.parameters(), lr=DEFAULT_LR[config.optimizer])
    cross_entropy = torch.nn.functional.cross_entropy
    X_train, y_train = torch.from_numpy(split.X_train), torch.from_numpy(split.y_train)
    X_val, y_val = torch.from_numpy(split.X_val), torch.from_numpy(split.y_val)
    n_train, batch = len(split.X_train), config.batch_size
    state = {"epoch": 0, "best_loss": float("inf"), "best": None}

    def epoch():
        state["epoch"] += 1
        started = time.perf_counter()
        order = torch.from_numpy(rng.permutation(n_train))
        model.train()
        seen, loss_sum, correct = 0, 0.0, 0
        for start in range(0, n_train, batch):
            index = order[start:start + batch]
            xb, yb = X_train[index], y_train[index]
            optimizer.zero_grad()
            logits = model(xb)
            loss = cross_entropy(logits, yb)
            loss.backward()
            optimizer.step()
            seen += len(yb)
            loss_sum += loss.item() * len(yb)
            correct += int((logits.argmax(dim=1) == yb).sum())
        row = {"epoch": state["epoch"], "train_loss": loss_sum / seen, "train_accuracy": correct / seen}
        model.eval()
        val_loss, val_correct = 0.0, 0
        with torch.no_grad():
            for start in range(0, len(X_val), 1024):
                xb, yb = X_val[start:start + 1024], y_val[start:start + 1024]
                logits = model(xb)
                val_loss += cross_entropy(logits, yb).item() * len(xb)
                val_correct += int((logits.argmax(dim=1) == yb).sum())
        row["val_loss"], row["val_accuracy"] = val_loss / len(X_val), val_correct / len(X_val)
        if row["val_loss"] < state["best_loss"]:
            state["best_loss"] = row["val_loss"]
            state["best"] = {name: value.detach().clone() for name, value in model.state_dict().items()}
        row["seconds"] = time.perf_counter() - started
        return row

    epoch.model = model
    return epoch


def _torch_copy(model, torch):
    """The app's Sequential CNN as a torch.nn.Sequential with the same layers and weights."""
    import nn

    layers = []
    for layer in model:
        if isinstance(layer, nn.Conv2d):
            copy = torch.nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, padding=layer.padding,
                                   dtype=torch.float64)
        elif isinstance(layer, nn.Linear):
            copy = torch.nn.Linear(layer.in_features, layer.out_features, dtype=torch.float64)
        elif isinstance(layer, nn.ReLU):
            copy = torch.nn.ReLU()
        elif isinstance(layer, nn.MaxPool2d):
            copy = torch.nn.MaxPool2d(layer.kernel_size)
        elif isinstance(layer, nn.Flatten):
            copy = torch.nn.Flatten()
        else:
            raise NotImplementedError(f"no PyTorch copy of {type(layer).__name__} in the digits epoch")
        if hasattr(layer, "weight"):
            with torch.no_grad():
                copy.weight.copy_(torch.from_numpy(np.asarray(layer.weight.data, dtype=np.float64)))
                copy.bias.copy_(torch.from_numpy(np.asarray(layer.bias.data, dtype=np.float64)))
        layers.append(copy)
    return torch.nn.Sequential(*layers)


def main():
    steps = {"ours (eager)": ours_epoch_step(eager=True), "ours (compiled)": ours_epoch_step(eager=False)}
    try:
        steps["pytorch"] = torch_epoch_step()
    except ImportError:
        pass
    for name, step in steps.items():
        start = time.perf_counter()
        row = step()
        print(f"{name:<16} {time.perf_counter() - start:8.3f} s   train loss {row['train_loss']:.6f}, "
              f"val loss {row['val_loss']:.6f}, val accuracy {row['val_accuracy']:.1%}")


if __name__ == "__main__":
    main()
