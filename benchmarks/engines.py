"""The engines compared, by name; each module has ``available()``,
``WORKLOADS`` and ``make_step(workload, dtype, batch)``."""

from __future__ import annotations

import importlib

ENGINE_MODULES = {
    "ours": "benchmarks.engine_ours",
    "numpy": "benchmarks.engine_numpy",
    "pytorch": "benchmarks.engine_torch",
    "jax": "benchmarks.engine_jax",
    "hips": "benchmarks.engine_hips",
    "mygrad": "benchmarks.engine_mygrad",
    "micrograd": "benchmarks.engine_micrograd",
}

# engines run in a process of their own (their thread pools fight OpenBLAS's)
OWN_PROCESS = {"pytorch", "jax"}


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
    base = "ours" if engine in ("ours-nn", "ours-compiled") else engine
    if engine == "ours-nn" and workload not in ("mlp", "mlp_bn", "tiny", "cnn"):
        return False
    if engine == "ours-compiled" and workload not in ("mlp", "mlp_bn", "tiny", "chain", "scalar"):
        return False
    return workload in load(base).WORKLOADS
