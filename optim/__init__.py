"""optim: optimizers and learning-rate schedules over any Values.

PyTorch's names, arguments, defaults and update formulas, so a model trained
here with the same hyperparameters follows the same trajectory as in PyTorch.
It needs only ``autograd_core`` (not ``nn``): pass any iterable of leaf Values.

>>> import numpy as np
>>> from autograd_core import Value
>>> import optim
>>> w = Value(np.array([3.0, -1.0]))
>>> opt = optim.SGD([w], lr=0.25)
>>> for _ in range(3):
...     opt.zero_grad()
...     loss = (w * w).sum()
...     loss.backward()
...     opt.step()
>>> w.data                                   # each step halves w
array([ 0.375, -0.125])
"""

from . import lr_scheduler
from .adadelta import Adadelta
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .early_stopping import EarlyStopping
from .lbfgs import LBFGS
from .newton import Newton
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = [
    "Optimizer", "SGD", "Adagrad", "RMSprop", "Adadelta", "Adam", "AdamW", "Newton", "LBFGS",
    "EarlyStopping", "lr_scheduler",
]
