"""nn: the layers, losses and initialisers of a first deep-learning course,
built from ``autograd_core`` operations, with PyTorch's names and formulas.

>>> import numpy as np, nn
>>> nn.manual_seed(0)
>>> X, y = nn.data.load_iris()
>>> model = nn.MLP([4, 16, 3])
>>> loss = nn.CrossEntropyLoss()(model(X), y)
>>> loss.backward()
>>> model[0].weight.grad.shape
(16, 4)
"""

from . import data, functional, init, utils
from ._random import get_generator, manual_seed
from .conv import AdaptiveAvgPool2d, AvgPool2d, BatchNorm2d, Conv1d, Conv2d, Dropout2d, MaxPool2d
from .conv import ConvTranspose1d, ConvTranspose2d, MaxUnpool2d, Upsample  # noqa: E402,I001
from .activations import ELU, GELU, SELU, LeakyReLU, LogSoftmax, PReLU, ReLU, Sigmoid, SiLU, Softmax, Softplus, Tanh
from .layers import MLP, BatchNorm1d, Dropout, Linear
from .activations import CELU, LogSigmoid, Hardsigmoid, Hardswish, Hardtanh, Mish, ReLU6, Softmin, Softsign  # noqa: E402,I001
from .losses import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    KLDivLoss,
    L1Loss,
    MSELoss,
    MultiMarginLoss,
    NLLLoss,
)
from .module import Flatten, Identity, Module, ModuleList, Parameter, Sequential
from .serialization import CheckpointError, load, save

__all__ = [
    "Module", "Parameter", "Sequential", "ModuleList", "Identity", "Flatten",
    "Linear", "BatchNorm1d", "Dropout", "MLP",
    "Conv1d", "Conv2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "BatchNorm2d", "Dropout2d",
    "ConvTranspose1d", "ConvTranspose2d", "MaxUnpool2d", "Upsample",
    "Sigmoid", "Tanh", "ReLU", "LeakyReLU", "PReLU", "ELU", "SELU", "GELU", "Softplus", "SiLU",
    "ReLU6", "Hardtanh", "Hardsigmoid", "Hardswish", "Mish", "CELU", "Softsign", "LogSigmoid", "Softmin",
    "Softmax", "LogSoftmax",
    "CrossEntropyLoss", "NLLLoss", "BCELoss", "BCEWithLogitsLoss", "MSELoss", "L1Loss", "KLDivLoss",
    "MultiMarginLoss",
    "functional", "init", "utils", "data", "manual_seed", "get_generator", "save", "load", "CheckpointError",
]
