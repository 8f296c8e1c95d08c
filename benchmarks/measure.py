"""How a figure is taken: median per-step times over interleaved rounds, and
peak resident memory of a fresh process."""

from __future__ import annotations

import gc
import os
import statistics
import time

try:
    import resource  # page-fault counts: Unix only
except ImportError:
    resource = None

# Python's garbage collector stays on throughout (as users run their code):
# an engine that makes reference cycles pays for them here.


def time_steps(steps, rounds=15, block_seconds=0.05, warmup=2, charge_gc=False):
    """Time several engines' ``step()`` on one workload, interleaved.

    Each engine gets a block of `k` steps per round (k chosen so a block takes
    about `block_seconds`), the engines take turns round by round (so a slow
    spell of the machine hits them all alike), and the figure is the median
    over rounds of the time per step. Returns {name: {"median_ms", "p25_ms",
    "p75_ms", "rounds", "steps_per_round", "faults_per_step", ...}}.

    ``faults_per_step`` is the median over rounds of the minor page faults per
    step: memory the allocator handed back to the system and took again,
    which costs time that no instruction count shows.

    Each block starts from a collected heap, so no engine pays for another's
    reference cycles. With `charge_gc` each block ends with ``gc.collect()``,
    timed: the engine pays for all the garbage it made, cycles included
    (micrograd's closures make cycles; its cost is mostly their collection).

    A step that raises (a compiled step whose first call, the trace, is
    refused) gets ``{"error": "<type>: <message>"}`` and leaves the rounds;
    the other engines are timed as usual.
    """
    repeats, errors = {}, {}
    for name, step in steps.items():
        try:
            for _ in range(warmup):
                step()
            start = time.perf_counter()
            step()
        except Exception as exc:  # noqa: BLE001 (the cell shows it; the run goes on)
            errors[name] = _error(exc)
            continue
        single = time.perf_counter() - start
        repeats[name] = max(1, int(block_seconds / max(single, 1e-9)))
    samples = {name: [] for name in repeats}
    cpu_samples = {name: [] for name in repeats}
    fault_samples = {name: [] for name in repeats}
    for _ in range(rounds):
        for name, k in repeats.items():
            if name in errors:
                continue
            step = steps[name]
            gc.collect()
            faults_start = _minor_faults()
            start, cpu_start = time.perf_counter(), time.process_time()
            try:
                for _ in range(k):
                    step()
            except Exception as exc:  # noqa: BLE001
                errors[name] = _error(exc)
                continue
            if charge_gc:
                gc.collect()
            samples[name].append((time.perf_counter() - start) / k * 1e3)
            cpu_samples[name].append((time.process_time() - cpu_start) / k * 1e3)
            fault_samples[name].append((_minor_faults() - faults_start) / k)
    return {name: errors[name] if name in errors else
            _summary(samples[name], cpu_samples[name], repeats[name], fault_samples[name]) for name in steps}


def _error(exc):
    """A failed step's cell: the exception's type and message, as the runner records a step it could not build."""
    return {"error": f"{type(exc).__name__}: {exc}"}


def _minor_faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt if resource else 0


def _summary(times_ms, cpu_ms, k, faults=None):
    """Wall-clock median and quartiles, and the median CPU time of this process
    (all its threads): on a busy machine the CPU time is the steadier figure."""
    times = sorted(times_ms)
    quartiles = statistics.quantiles(times, n=4) if len(times) > 1 else [times[0]] * 3
    return {
        "median_ms": statistics.median(times),
        "p25_ms": quartiles[0],
        "p75_ms": quartiles[2],
        "min_ms": times[0],
        "cpu_median_ms": statistics.median(cpu_ms),
        "rounds": len(times),
        "steps_per_round": k,
        "faults_per_step": statistics.median(faults) if faults and resource else None,
    }


# ---- memory: the kernel's count of resident pages (RSS), because PyTorch's
# allocations are invisible to tracemalloc; VmHWM is the peak since the last
# reset, which writing "5" to /proc/self/clear_refs performs.
def _status_kib(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not found in /proc/self/status")


def reset_peak_rss():
    """Make the current RSS the new peak; returns it in KiB."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _status_kib("VmRSS")


def peak_rss_kib():
    return _status_kib("VmHWM")


def rss_measurable():
    """True on Linux with /proc/self/clear_refs writable."""
    return os.path.exists("/proc/self/clear_refs") and os.access("/proc/self/clear_refs", os.W_OK)
