"""Run one engine's measurements in this process and print them as JSON on
the last line of stdout: the runner starts it for engines that need a process
of their own (timings) and for every memory figure (a fresh process each).

    python -m benchmarks.worker time pytorch a_f32,d,i [--quick]
    python -m benchmarks.worker memory ours float32 1024
    python -m benchmarks.worker memory ours-nn float32 64 cnn
"""

from __future__ import annotations

import json
import sys


def _time(engine, case_ids, quick):
    from . import cases
    from .engines import step_for, supports
    from .measure import time_steps

    results = {}
    for case_id in case_ids:
        case = cases.CASES[case_id]
        try:
            steps = {engine: step_for(engine, case.workload, case.dtype)}
        except NotImplementedError:
            continue
        # Where this engine is the reference of a target, hand-written NumPy is
        # timed again, interleaved with it: the anchor that puts this process's
        # figures on the main process's clock (see runner.anchor). Only there:
        # on the BLAS-bound rows PyTorch's threads would slow NumPy's here.
        # (JAX is a peer on every row: anchored on every row). A row without a
        # hand-written NumPy step of its own (the digits epoch) names another.
        if (case.reference == engine or engine == "jax") and supports("numpy", case.anchor_workload):
            steps["numpy"] = step_for("numpy", case.anchor_workload, case.dtype)
        timed = time_steps(steps, charge_gc=case.charge_gc, **cases.timing_settings(quick))
        results[case_id] = timed[engine]
        if "numpy" in timed:
            results[case_id]["numpy_same_process"] = timed["numpy"]
    extra = {}
    if engine == "pytorch":
        import torch

        extra = {"torch_version": torch.__version__, "torch_threads": torch.get_num_threads()}
    if engine == "jax":
        import jax

        extra = {"jax_version": jax.__version__}
    return {"results": results, "info": extra}


def _memory(engine, dtype_name, batch, workload="mlp"):
    import numpy as np

    from .engines import load, step_for
    from .measure import peak_rss_kib, reset_peak_rss

    base = "ours" if engine in ("ours-nn", "ours-compiled") else engine
    load(base).available()  # imports the engine's library: counted as "imports"
    if engine in ("ours-nn", "ours-compiled"):
        import nn  # noqa: F401
        import optim  # noqa: F401
    if engine == "pytorch":
        import torch

        torch.set_num_threads(2)
    if workload == "cnn":
        # every engine reads the digits through nn.data: the import and the file's
        # parsing (whose scratch the allocator keeps) are not the step's memory
        from .workloads import cnn_data

        cnn_data(batch)
    baseline = reset_peak_rss()
    step = step_for(engine, workload, np.dtype(dtype_name).type, batch)
    step()  # the first step also pays one-time costs (thread pools, BLAS buffers, caches)
    first_peak = peak_rss_kib()
    reset_peak_rss()
    for _ in range(3):
        step()
    peak = peak_rss_kib()
    return {
        "peak_above_imports_mib": (peak - baseline) / 1024,  # steady state: steps 2-4
        "first_step_peak_above_imports_mib": (first_peak - baseline) / 1024,
        "baseline_mib": baseline / 1024,
    }


def main(argv):
    mode = argv[0]
    if mode == "time":
        out = _time(argv[1], argv[2].split(","), "--quick" in argv)
    elif mode == "memory":
        out = _memory(argv[1], argv[2], int(argv[3]), *argv[4:5])
    else:
        raise SystemExit(f"worker: unknown mode {mode!r} (time or memory)")
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
