"""PyTorch on the CPU with 2 threads, written the idiomatic way (nn.Linear,
F.cross_entropy, optim.SGD). Run in a process of its own: its thread pool and
OpenBLAS's fight over the cores when they share one."""

from __future__ import annotations

import numpy as np

from . import workloads as W

NAME = "pytorch"
WORKLOADS = ("mlp", "mlp_bn", "tiny", "chain", "cnn", "epoch")
THREADS = 2


def available():
    return W.importable("torch")


def _torch():
    import torch

    torch.set_num_threads(THREADS)
    return torch


def make_step(workload, dtype=np.float32, batch=None):
    if workload == "cnn":
        return _cnn_step(batch or W.CNN_BATCH, dtype)
    if workload == "epoch":  # (i): the digits epoch of `autograd-core train`, written in PyTorch
        from .digits_epoch import torch_epoch_step

        return torch_epoch_step(THREADS)
    return W.peer_step(workload, dtype, batch, _mlp_step, _chain_step)


def _mlp_step(sizes, batch, dtype, with_bn):
    torch = _torch()
    x_data, y_data, layers_data = W.mlp_data(sizes, batch, dtype)
    x, y = torch.from_numpy(x_data), torch.from_numpy(y_data)
    modules = []
    for k, (w, b) in enumerate(layers_data):
        linear = torch.nn.Linear(w.shape[0], w.shape[1], dtype=x.dtype)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(w.T.copy()))
            linear.bias.copy_(torch.from_numpy(b))
        modules.append(linear)
        if k < len(layers_data) - 1:
            if with_bn:
                modules.append(torch.nn.BatchNorm1d(w.shape[1], eps=W.BN_EPS, momentum=W.BN_MOMENTUM, dtype=x.dtype))
            modules.append(torch.nn.ReLU())
            if with_bn:
                modules.append(torch.nn.Dropout(W.DROPOUT_P))
    model = torch.nn.Sequential(*modules).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=W.LEARNING_RATE)
    cross_entropy = torch.nn.functional.cross_entropy

    def step():
        optimizer.zero_grad()
        loss = cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        return loss

    return step


def _chain_step():
    torch = _torch()
    x = torch.tensor(W.chain_input(), requires_grad=True)

    def step():
        total = W.chain_forward(x, torch.tanh).sum()
        x.grad = None
        total.backward()
        return total

    return step


def _cnn_step(batch, dtype):
    torch = _torch()
    x_data, y_data, layers_data = W.cnn_data(batch, dtype)
    x, y = torch.from_numpy(x_data), torch.from_numpy(y_data)
    (c_in, c_mid, c_out), k = W.CNN_CHANNELS, W.CNN_KERNEL
    nn = torch.nn
    model = nn.Sequential(
        nn.Conv2d(c_in, c_mid, k, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(c_mid, c_out, k, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(c_out * 2 * 2, W.CNN_CLASSES),
    ).to(x.dtype)
    with torch.no_grad():
        for layer, (w, b) in zip((model[0], model[3], model[7]), layers_data):
            layer.weight.copy_(torch.from_numpy(w))
            layer.bias.copy_(torch.from_numpy(b))
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=W.LEARNING_RATE)
    cross_entropy = torch.nn.functional.cross_entropy

    def step():
        optimizer.zero_grad()
        loss = cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        return loss

    return step
