"""micrograd: Karpathy's scalar engine (scalar workloads only), run with
Python's garbage collector on, as its users run it."""

from __future__ import annotations

import numpy as np

from . import workloads as W

NAME = "micrograd"
WORKLOADS = ("scalar",)


def available():
    return W.importable("micrograd.engine")


def _reset_grad(p):
    p.grad = 0


def make_step(workload, dtype=np.float64, batch=None):
    if workload != "scalar":
        raise NotImplementedError(workload)
    from micrograd.engine import Value

    from .scalar_mlp import make_scalar_step

    return make_scalar_step(Value, _reset_grad)


def depth_ok(n):
    from micrograd.engine import Value

    from .scalar_mlp import chain_depth_ok

    return chain_depth_ok(Value, n)
