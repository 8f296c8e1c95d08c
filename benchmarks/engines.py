"""The engines compared, by name; each module has ``available()``,
``WORKLOADS`` and ``make_step(workload, dtype, batch)``."""

from __future__ import annotations

import importlib

ENGINE_MODULES = {
    "ours": "benchmarks.engine_ours",
    "numpy": "benchmarks.engine_numpy",
    "blas": "benchmarks.engine_blas",
    "pytorch": "benchmarks.engine_torch",
    "jax": "benchmarks.engine_jax",
    "hips": "benchmarks.engine_hips",
    "mygrad": "benchmarks.engine_mygrad",
    "micrograd": "benchmarks.engine_micrograd",
}

# engines run in a process of their own (their thread pools fight OpenBLAS's)
OWN_PROCESS = {"pytorch", "jax"}
# engines that are a floor made of part of a step, timed but not a step whose memory means anything
TIME_ONLY = {"blas"}
# the workloads of our engine's flavours: "epoch" is a training epoch of the app, which trains through nn
FLAVOUR_WORKLOADS = {
    "ours": ("mlp", "mlp_bn", "tiny", "chain", "scalar", "cnn"),
    "ours-nn": ("mlp", "mlp_bn", "tiny", "cnn", "epoch"),
    "ours-compiled": ("mlp", "mlp_bn", "tiny", "chain", "scalar", "cnn", "epoch"),
}


def load(name):
    return importlib.import_module(ENGINE_MODULES[name])


def step_for(engine, workload, dtype, batch=None):
    """`make_step` of an engine; "ours-nn" is our engine through nn and optim."""
    if engine == "ours-nn":
        return load("ours").make_step(workload, dtype, batch, flavour="nn")
    if engine == "ours-compiled":  # the same step through autograd_core.compile
        return load("ours").make_step(workload, dtype, batch, flavour="compiled")
    return load(engine).make_step(workload, dtype, batch)


def supports(engine, workload):
    if engine in FLAVOUR_WORKLOADS and workload not in FLAVOUR_WORKLOADS[engine]:
        return False
    base = "ours" if engine in FLAVOUR_WORKLOADS else engine
    return workload in load(base).WORKLOADS
