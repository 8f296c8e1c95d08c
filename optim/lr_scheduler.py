"""Learning-rate schedules: change each parameter group's ``lr`` as training goes on.

Call ``scheduler.step()`` once per epoch (or per iteration, for warm-up),
*after* ``optimizer.step()``, as in PyTorch. Like PyTorch's, the schedules are
*chainable*: each step multiplies or moves the group's current ``lr``, so two
schedulers on one optimizer compose, and their learning-rate sequences are
PyTorch's to the last bit or so.

>>> import numpy as np
>>> from autograd_core import Value
>>> from optim import SGD
>>> from optim.lr_scheduler import StepLR
>>> opt = SGD([Value(np.zeros(2))], lr=1.0)
>>> schedule = StepLR(opt, step_size=2, gamma=0.5)
>>> lrs = []
>>> for epoch in range(6):
...     lrs.append(schedule.get_last_lr()[0])
...     opt.step(); schedule.step()
>>> lrs
[1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
"""

from __future__ import annotations

import math

from .optimizer import Optimizer, metric_number

__all__ = [
    "LRScheduler", "StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR", "LinearLR",
    "ReduceLROnPlateau",
]


class LRScheduler:
    """Base class: subclasses give ``get_lr()``, the new lr of each group at ``last_epoch``.

    On creation each group remembers its starting ``initial_lr`` (the
    ``base_lrs``) and the schedule takes its step 0. A subclass computes the
    next lr from the current one (chainable, as PyTorch's):

    >>> import numpy as np; from autograd_core import Value; from optim import SGD
    >>> class Halve(LRScheduler):
    ...     def get_lr(self):
    ...         return [lr * (0.5 if self.last_epoch > 0 else 1.0) for lr in self._current_lrs()]
    >>> opt = SGD([Value(np.zeros(1))], lr=1.0)
    >>> s = Halve(opt); opt.step(); s.step(); opt.step(); s.step(); s.get_last_lr()
    [0.25]
    """

    def __init__(self, optimizer, last_epoch=-1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: expected an optim Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for k, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(
                        f"{type(self).__name__}: resuming with last_epoch={last_epoch} needs 'initial_lr' in "
                        f"param_groups[{k}]; load the optimizer's state_dict first"
                    )
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()

    def get_lr(self):
        """The lr of each group at ``last_epoch``; every schedule defines it."""
        raise NotImplementedError

    def get_last_lr(self):
        """The learning rate of each group, as set by the latest ``step()``."""
        return list(self._last_lr)

    def step(self):
        """Advance the schedule by one epoch and write the new lrs into the optimizer."""
        self.last_epoch += 1
        for group, lr in zip(self.optimizer.param_groups, self.get_lr()):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _current_lrs(self):
        return [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self):
        """Everything but the optimizer, to save with a checkpoint."""
        return {key: value for key, value in self.__dict__.items() if key != "optimizer"}

    def load_state_dict(self, state_dict):
        """Resume from :meth:`state_dict` (load the optimizer's state too)."""
        self.__dict__.update(state_dict)


class StepLR(LRScheduler):
    """Multiply the lr by ``gamma`` every ``step_size`` epochs (step decay):
    ``lr_t = base_lr * gamma ** (t // step_size)``.

    >>> import numpy as np; from autograd_core import Value; from optim import SGD
    >>> opt = SGD([Value(np.zeros(1))], lr=0.1)
    >>> s = StepLR(opt, step_size=1, gamma=0.5); opt.step(); s.step(); s.get_last_lr()
    [0.05]
    """

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        if int(step_size) != step_size or step_size <= 0:
            raise ValueError(f"StepLR: step_size must be a positive integer, got {step_size}")
        self.step_size = int(step_size)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._current_lrs()
        return [lr * self.gamma for lr in self._current_lrs()]


class MultiStepLR(LRScheduler):
    """Multiply the lr by ``gamma`` at each epoch listed in ``milestones``.

    >>> import numpy as np; from autograd_core import Value; from optim import SGD
    >>> opt = SGD([Value(np.zeros(1))], lr=1.0)
    >>> s = MultiStepLR(opt, milestones=[2, 4], gamma=0.1)
    >>> lrs = []
    >>> for _ in range(5):
    ...     opt.step(); s.step(); lrs.append(s.get_last_lr()[0])
    >>> [round(lr, 6) for lr in lrs]
    [1.0, 0.1, 0.1, 0.01, 0.01]
    """

    def __init__(self, optimizer, milestones, gamma=0.1, last_epoch=-1):
        self.milestones = sorted(int(m) for m in milestones)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        hits = self.milestones.count(self.last_epoch)  # a milestone listed twice decays twice
        if hits == 0:
            return self._current_lrs()
        return [lr * self.gamma**hits for lr in self._current_lrs()]


class ExponentialLR(LRScheduler):
    """Multiply the lr by ``gamma`` every epoch: ``lr_t = base_lr * gamma ** t``.

    >>> import numpy as np; from autograd_core import Value; from optim import SGD
    >>> opt = SGD([Value(np.zeros(1))], lr=1.0)
    >>> s = ExponentialLR(opt, gamma=0.9); opt.step(); s.step(); s.get_last_lr()
    [0.9]
    """

    def __init__(self, optimizer, gamma, last_epoch=-1):
        if not gamma > 0:
            raise ValueError(f"ExponentialLR: gamma multiplies the lr every epoch and must be > 0, got {gamma}")
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch == 0:
            return self._current_lrs()
        return [lr * self.gamma for lr in self._current_lrs()]


class CosineAnnealingLR(LRScheduler):
    """Anneal the lr from its start to ``eta_min`` along half a cosine over ``T_max`` epochs::

        lr_t = eta_min + (base_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2

    Computed step by step from the current lr, as PyTorch does (so it composes
    with other schedulers); after ``T_max`` it rises again along the cosine.

    >>> import numpy as np; from autograd_core import Value; from optim import SGD
    >>> opt = SGD([Value(np.zeros(1))], lr=1.0)
    >>> s = CosineAnnealingLR(opt, T_max=2)
    >>> opt.step(); s.step(); round(s.get_last_lr()[0], 12)
    0.5
    """

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):
        if T_max <= 0:
            raise ValueError(f"CosineAnnealingLR: T_max must be positive, got {T_max}")
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        t, T, low = self.last_epoch, self.T_max, self.eta_min
        if t == 0:
            return self._current_lrs()
        if (t - 1 - T) % (2 * T) == 0:  # leaving the bottom of the cosine: the ratio below would be 0/0
            return [lr + (base - low) * (1 - math.cos(math.pi / T)) / 2
                    for lr, base in zip(self._current_lrs(), self.base_lrs)]
        # the ratio of consecutive (1 + cos) factors moves lr_{t-1} to lr_t
        ratio = (1 + math.cos(math.pi * t / T)) / (1 + math.cos(math.pi * (t - 1) / T))
        return [ratio * (lr - low) + low for lr in self._current_lrs()]


class LinearLR(LRScheduler):
    """Warm-up: scale the lr linearly from ``start_factor * lr`` to ``end_factor * lr``
    over ``total_iters`` steps, then keep it.

    >>> import numpy as np; from autograd_core import Value; from optim import SGD
    >>> opt = SGD([Value(np.zeros(1))], lr=1.0)
    >>> s = LinearLR(opt, start_factor=0.25, total_iters=3)
    >>> lrs = [s.get_last_lr()[0]]
    >>> for _ in range(4):
    ...     opt.step(); s.step(); lrs.append(round(s.get_last_lr()[0], 12))
    >>> lrs
    [0.25, 0.5, 0.75, 1.0, 1.0]
    """

    def __init__(self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5, last_epoch=-1):
        if not 0 < start_factor <= 1:
            raise ValueError(f"LinearLR: start_factor must be in (0, 1], got {start_factor}")
        if not 0 <= end_factor <= 1:
            raise ValueError(f"LinearLR: end_factor must be in [0, 1], got {end_factor}")
        self.start_factor = start_factor
        self.end_factor = end_factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        t, start, end = self.last_epoch, self.start_factor, self.end_factor
        if t == 0:
            return [lr * start for lr in self._current_lrs()]
        if t > self.total_iters:
            return self._current_lrs()
        # factor(t) / factor(t - 1) with factor(t) = start + (end - start) * t / total_iters
        ratio = 1.0 + (end - start) / (self.total_iters * start + (t - 1) * (end - start))
        return [lr * ratio for lr in self._current_lrs()]


class ReduceLROnPlateau:
    """Cut the lr by ``factor`` when a watched metric stops improving (performance scheduling).

    Call ``step(metric)`` after each validation. A metric counts as better than
    the best so far only by more than ``threshold`` (relative: ``best * (1 -
    threshold)`` in mode "min"; absolute with ``threshold_mode="abs"``). After
    more than ``patience`` epochs without improvement each group's lr becomes
    ``max(lr * factor, min_lr)``, then ``cooldown`` epochs pass before bad
    epochs are counted again. Changes smaller than ``eps`` are skipped.

    >>> import numpy as np; from autograd_core import Value; from optim import SGD
    >>> opt = SGD([Value(np.zeros(1))], lr=1.0)
    >>> s = ReduceLROnPlateau(opt, patience=1, factor=0.5)
    >>> for loss in [1.0, 0.9, 0.9, 0.9]:    # two epochs without improvement > patience
    ...     s.step(loss)
    >>> s.get_last_lr()
    [0.5]
    """

    def __init__(self, optimizer, mode="min", factor=0.1, patience=10, threshold=1e-4, threshold_mode="rel",
                 cooldown=0, min_lr=0, eps=1e-8):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"ReduceLROnPlateau: expected an optim Optimizer, got {type(optimizer).__name__}")
        if factor >= 1.0:
            raise ValueError(f"ReduceLROnPlateau: factor must be < 1.0 (it multiplies the lr), got {factor}")
        if mode not in ("min", "max"):
            raise ValueError(f"ReduceLROnPlateau: mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"ReduceLROnPlateau: threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
        self.optimizer = optimizer
        if isinstance(min_lr, (list, tuple)):
            if len(min_lr) != len(optimizer.param_groups):
                raise ValueError(f"ReduceLROnPlateau: {len(min_lr)} min_lr values for {len(optimizer.param_groups)} parameter groups")
            self.min_lrs = list(min_lr)
        else:
            self.min_lrs = [min_lr] * len(optimizer.param_groups)
        self.mode, self.factor, self.patience = mode, factor, patience
        self.threshold, self.threshold_mode = threshold, threshold_mode
        self.cooldown, self.eps = cooldown, eps
        self.last_epoch = 0
        self._last_lr = [group["lr"] for group in optimizer.param_groups]
        self._reset()

    def _reset(self):
        self.best = math.inf if self.mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0

    def is_better(self, metric, best):
        """Whether `metric` improves on `best` by more than the threshold."""
        if self.mode == "min":
            return metric < (best * (1 - self.threshold) if self.threshold_mode == "rel" else best - self.threshold)
        return metric > (best * (1 + self.threshold) if self.threshold_mode == "rel" else best + self.threshold)

    @property
    def in_cooldown(self):
        return self.cooldown_counter > 0

    def step(self, metrics):
        """Record one epoch's metric (a number, or a one-element Value) and maybe reduce the lr."""
        current = metric_number("ReduceLROnPlateau.step", metrics)
        self.last_epoch += 1
        if self.is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs during cooldown do not count
        if self.num_bad_epochs > self.patience:
            for group, min_lr in zip(self.optimizer.param_groups, self.min_lrs):
                old_lr = float(group["lr"])
                new_lr = max(old_lr * self.factor, min_lr)
                if old_lr - new_lr > self.eps:
                    group["lr"] = new_lr
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def get_last_lr(self):
        """The learning rate of each group after the latest ``step()``."""
        return list(self._last_lr)

    state_dict = LRScheduler.state_dict
    load_state_dict = LRScheduler.load_state_dict
