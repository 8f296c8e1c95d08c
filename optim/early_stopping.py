"""Early stopping: stop training when a validation metric stops improving, and keep the best weights."""

from __future__ import annotations

import math

import numpy as np

from autograd_core import Value

from .optimizer import metric_number

__all__ = ["EarlyStopping"]


class EarlyStopping:
    """Watch a validation metric; say when to stop; remember the best parameters.

    ``step(metric)`` returns True once the metric has failed to improve on the
    best so far by more than ``min_delta`` for ``patience`` calls in a row.
    In mode "min" (a loss) improving means ``metric < best - min_delta``; in
    mode "max" (an accuracy) ``metric > best + min_delta``.

    Given ``params`` (any iterable of Values, e.g. ``model.parameters()``),
    each new best also stores a copy of their data, and
    ``restore_best()`` writes it back.

    >>> from autograd_core import Value
    >>> w = Value(1.0)
    >>> stopper = EarlyStopping(patience=2, params=[w])
    >>> for epoch, val_loss in enumerate([0.9, 0.5, 0.6, 0.7]):
    ...     w.data = float(epoch)             # pretend training moved w
    ...     if stopper.step(val_loss):
    ...         break
    >>> epoch, stopper.best, stopper.best_epoch
    (3, 0.5, 1)
    >>> stopper.restore_best(); float(w.data)
    1.0
    """

    def __init__(self, patience=10, min_delta=0.0, mode="min", params=None):
        if int(patience) != patience or patience < 0:
            raise ValueError(f"EarlyStopping: patience must be a non-negative integer, got {patience}")
        if min_delta < 0:
            raise ValueError(f"EarlyStopping: min_delta must be >= 0 (it is the size of a real improvement), got {min_delta}")
        if mode not in ("min", "max"):
            raise ValueError(f"EarlyStopping: mode must be 'min' (for a loss) or 'max' (for an accuracy), got {mode!r}")
        self.patience = int(patience)
        self.min_delta = min_delta
        self.mode = mode
        self.params = None
        if params is not None:
            self.params = list(params)
            for i, p in enumerate(self.params):
                if not isinstance(p, Value):
                    raise TypeError(f"EarlyStopping: params[{i}] is a {type(p).__name__}, not a Value")
        self.best = math.inf if mode == "min" else -math.inf
        self.best_epoch = None
        self.best_params = None  # copies of the parameters' data at the best epoch
        self.num_bad_epochs = 0
        self.epoch = -1
        self.should_stop = False

    def is_improvement(self, metric):
        """Whether `metric` beats the best so far by more than ``min_delta``."""
        if self.mode == "min":
            return metric < self.best - self.min_delta
        return metric > self.best + self.min_delta

    def step(self, metric):
        """Record this epoch's metric (a number or a one-element Value); return True when it is time to stop."""
        metric = metric_number("EarlyStopping.step", metric)
        if math.isnan(metric):
            raise ValueError("EarlyStopping.step: the metric is NaN; training has diverged (try a smaller learning rate)")
        self.epoch += 1
        if self.is_improvement(metric):
            self.best = metric
            self.best_epoch = self.epoch
            self.num_bad_epochs = 0
            if self.params is not None:
                self.best_params = [np.array(p.data, copy=True) for p in self.params]
        else:
            self.num_bad_epochs += 1
        # patience=0 stops at the first epoch that does not improve
        self.should_stop = self.num_bad_epochs > 0 and self.num_bad_epochs >= self.patience
        return self.should_stop

    def restore_best(self):
        """Write the best epoch's parameter values back into the parameters."""
        if self.params is None:
            raise RuntimeError("EarlyStopping.restore_best: no params to restore; pass params= (e.g. model.parameters()) when creating it")
        if self.best_params is None:
            raise RuntimeError("EarlyStopping.restore_best: no best parameters yet; call step(metric) first")
        for p, best in zip(self.params, self.best_params):
            p.data = best.copy()[()] if best.ndim == 0 else best.copy()

    def state_dict(self):
        """The counters, the best metric and copies of the best parameters, to save with a checkpoint."""
        state = {key: value for key, value in self.__dict__.items() if key != "params"}
        if self.best_params is not None:
            state["best_params"] = [b.copy() for b in self.best_params]
        return state

    def load_state_dict(self, state_dict):
        """Resume from :meth:`state_dict` (the watched params stay those given at creation)."""
        self.__dict__.update(state_dict)
