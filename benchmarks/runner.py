"""The benchmark runner: every workload for every engine present, one table,
one JSON file.

    python -m benchmarks                 # full run (a few minutes)
    python -m benchmarks --quick         # smoke run: every code path, few repeats
    python -m benchmarks --only a_f32,d  # some rows only

In-process engines are timed together, interleaved (``measure.time_steps``);
PyTorch runs in a process of its own; each memory figure comes from a fresh
process per engine. The BLAS products of a step (``engine_blas``) are timed
with the engines, as the floor of rows (a), (b), (c) and (h); row (j), the
whole ``autograd-core train --data digits``, runs in a fresh interpreter
(``app_phases``).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from autograd_core._files import atomic_write

from . import workloads as W
from .cases import CASES, timing_settings
from .engines import ENGINE_MODULES, OWN_PROCESS, TIME_ONLY, load, step_for, supports
from .measure import rss_measurable, time_steps

RESULTS_DIR = Path(__file__).resolve().parent / "results"
COLUMNS = ["ours", "ours-nn", "ours-compiled", "numpy", "blas", "numpy/blas", "pytorch", "jax", "hips", "mygrad",
           "micrograd"]
# columns that are not an engine but the ratio of two engines' figures in the row
RATIO_COLUMNS = {"numpy/blas": ("numpy", "blas")}
# the flavours of our engine judged against each row's BLAS products (the floor table)
FLOOR_ENGINES = ("ours", "ours-nn", "ours-compiled")
MEMORY_CASES = {"f_f32": np.float32, "f_f64": np.float64, "h_mem": np.float32}
MEMORY_TARGET = 1.2
# memory rows of other workloads than (a) at batch 1024: (workload, batch, target)
MEMORY_OF = {"h_mem": ("cnn", W.CNN_BATCH, 1.3)}
COMMAND_ROW = "j"  # the whole `autograd-core train --data digits`, phase by phase (app_phases)
ALL_IDS = list(CASES) + list(MEMORY_CASES) + ["g", COMMAND_ROW]
# ours-compiled's own targets: (row, reference engine, ours-compiled / reference must be <= this).
# "eager" is the first (tracing) call of a fresh compiled step against an ours-nn step.
COMPILE_TARGETS = [
    ("a_f32", "numpy", 0.95), ("a_f32", "jax", 1.2), ("a_f64", "numpy", 0.95), ("a_f64", "jax", 1.2),
    ("b_f32", "numpy", 1.0), ("b_f64", "numpy", 1.0), ("c", "pytorch", 0.3), ("c", "jax", 1.0),
    ("d", "pytorch", 0.25), ("e", "micrograd", 0.05), ("f_f32", "numpy", 1.0), ("f_f64", "numpy", 1.0),
    ("a_f32", "eager", 10), ("c", "eager", 5),
]
FIRST_CALL_CASES = sorted({row for row, reference, _ in COMPILE_TARGETS if reference == "eager"})


def available_engines():
    """Engines importable here; "ours-nn" when nn and optim have the layers."""
    present = [name for name in ENGINE_MODULES if load(name).available()]
    if "ours" in present and load("ours").nn_available():
        present.insert(1, "ours-nn")
    if "ours" in present and load("ours").compile_available():
        present.insert(present.index("ours") + 1 + ("ours-nn" in present), "ours-compiled")
    return present


def _run_worker(args, timeout=900):
    """Run ``python -m benchmarks.worker ARGS`` and parse its last output line."""
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.worker", *args],
        cwd=root, capture_output=True, text=True, timeout=timeout,
    )
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_timings(case_ids, engines, quick, log):
    """{case_id: {engine: summary}} for the timed cases."""
    results = {case_id: {} for case_id in case_ids}
    info = {}
    for case_id in case_ids:
        case = CASES[case_id]
        steps = {}
        for engine in engines:
            if engine in OWN_PROCESS or not supports(engine, case.workload):
                continue
            try:
                steps[engine] = step_for(engine, case.workload, case.dtype)
            except Exception as exc:  # a missing piece skips that engine, not the run
                results[case_id][engine] = {"error": f"{type(exc).__name__}: {exc}"}
        if case.anchor and "numpy" in engines and any(e in OWN_PROCESS and supports(e, case.workload) for e in engines):
            # no hand-written NumPy of this workload: another NumPy step is timed here and in the other
            # process, to put that process's figures on this clock (see anchor)
            steps["numpy_anchor"] = step_for("numpy", case.anchor, case.dtype)
        log(f"  {case_id}: {', '.join(steps)}")
        results[case_id].update(time_steps(steps, charge_gc=case.charge_gc, **timing_settings(quick)))
    for engine in engines:
        if engine not in OWN_PROCESS:
            continue
        wanted = [c for c in case_ids if supports(engine, CASES[c].workload)]
        if not wanted:
            continue
        log(f"  {engine} (own process): {', '.join(wanted)}")
        out = _run_worker(["time", engine, ",".join(wanted)] + (["--quick"] if quick else []))
        if "error" in out:
            for c in wanted:
                results[c][engine] = {"error": out["error"]}
            continue
        info.update(out["info"])
        for c, summary in out["results"].items():
            results[c][engine] = anchor(summary, results[c].get("numpy_anchor") or results[c].get("numpy"))
    return results, info


def anchor(summary, numpy_here):
    """Put a figure from another process on this process's clock.

    The machine's speed drifts (other tenants, clock changes) by tens of
    percent over minutes, and an engine in its own process is timed at
    another moment than the engines here. Both processes time hand-written
    NumPy too, interleaved with their engines, so the other process's figures
    are scaled by NumPy's time here over NumPy's time there. The raw figures
    stay in the summary (``raw_median_ms``, ``raw_cpu_median_ms``).
    """
    there = summary.get("numpy_same_process")
    if not there or not numpy_here or "error" in numpy_here or "error" in summary or "error" in there:
        return summary
    wall, cpu = (numpy_here[clock] / there[clock] for clock in ("median_ms", "cpu_median_ms"))
    scaled = dict(summary, anchor_factor=wall)
    for key in ("median_ms", "cpu_median_ms", "p25_ms", "p75_ms", "min_ms"):
        scaled["raw_" + key] = summary[key]
        scaled[key] = summary[key] * (cpu if key == "cpu_median_ms" else wall)
    return scaled


def run_first_calls(case_ids, results, quick, log):
    """The first call of a fresh ours-compiled step (it traces: runs the step
    eagerly, records it and builds the program), median of 3 fresh steps, kept
    as ``first_call_ms`` beside that engine's timings."""
    for case_id in case_ids:
        cell = results.get(case_id, {}).get("ours-compiled")
        if not cell or "error" in cell:
            continue
        log(f"  {case_id}: ours-compiled, first (tracing) calls")
        times = []
        for _ in range(1 if quick else 3):
            step = step_for("ours-compiled", CASES[case_id].workload, CASES[case_id].dtype)
            gc.collect()
            start = time.perf_counter()
            step()
            times.append((time.perf_counter() - start) * 1e3)
        cell["first_call_ms"] = float(np.median(times))


def run_memory(dtype_ids, engines, log):
    """{case_id: {engine: {"peak_above_imports_mib": ...}}}, a fresh process each."""
    results = {}
    if not rss_measurable():
        log("  memory: /proc/self/clear_refs is not writable here; skipped")
        return results
    for case_id in dtype_ids:
        dtype_name = np.dtype(MEMORY_CASES[case_id]).name
        results[case_id] = {}
        workload, batch, _ = MEMORY_OF.get(case_id, ("mlp", W.MEMORY_BATCH, None))
        for engine in engines:
            if engine in TIME_ONLY or not supports(engine, workload):
                continue
            log(f"  {case_id}: {engine}")
            results[case_id][engine] = _run_worker(["memory", engine, dtype_name, str(batch), workload])
    return results


def run_depth(engines, quick, log):
    """Depth reached by a chain of additions: ours at the target length (the
    time it takes too), micrograd's largest depth that still works."""
    results = {}
    if "ours" in engines:
        n = W.DEPTH_TARGET_QUICK if quick else W.DEPTH_TARGET
        log(f"  g: ours, chain of {n:,}")
        start = time.perf_counter()
        ok = load("ours").depth_ok(n)
        results["ours"] = {"depth": n if ok else 0, "reached_target": ok, "seconds": time.perf_counter() - start}
    if "micrograd" in engines:
        log("  g: micrograd, searching its largest depth")
        results["micrograd"] = {"depth": _largest_working_depth(load("micrograd").depth_ok)}
    return results


def run_command(quick, log):
    """Row (j): the whole ``autograd-core train --data digits`` in a fresh
    interpreter, its wall clock split into phases (see app_phases); one epoch
    with --quick."""
    from . import app_phases

    options = app_phases.QUICK_OPTIONS if quick else []
    log(f"  {COMMAND_ROW}: autograd-core {' '.join(app_phases.COMMAND + options)}, in a fresh interpreter")
    try:
        return app_phases.measure(options)
    except Exception as exc:  # noqa: BLE001 (a timeout or a child that printed no figures: the row says so)
        return {"error": f"{type(exc).__name__}: {exc}"}


def _largest_working_depth(depth_ok, limit=1_000_000):
    """Doubling then bisection for the largest n with depth_ok(n)."""
    good, bad = 0, 1
    while bad <= limit and depth_ok(bad):
        good, bad = bad, bad * 2
    if bad > limit:
        return good
    while bad - good > 1:
        middle = (good + bad) // 2
        good, bad = (middle, bad) if depth_ok(middle) else (good, middle)
    return good


# ---- reporting -------------------------------------------------------------
CLOCK_KEYS = {"wall": "median_ms", "cpu": "cpu_median_ms"}
_clock = ["wall"]  # which median the table and the ratios use (--clock)


def _figure(case_id, summary):
    if summary is None or "error" in summary:
        return None
    if case_id in MEMORY_CASES:
        return summary.get("peak_above_imports_mib")
    if case_id == "g":
        return summary.get("depth")
    case = CASES[case_id]
    scale = {"us/op": 1e3 / case.per, "s/epoch": 1e-3}.get(case.unit, 1.0)
    return summary[CLOCK_KEYS[_clock[0]]] * scale


def cell_figure(case_id, row, column):
    """The figure of one cell of the table: an engine's, or a ratio of two (RATIO_COLUMNS)."""
    if column in RATIO_COLUMNS:
        top, bottom = (_figure(case_id, row.get(engine)) for engine in RATIO_COLUMNS[column])
        return top / bottom if top is not None and bottom else None
    return _figure(case_id, row.get(column))


def table_columns(engines):
    """The table's columns for a run of these engines, in COLUMNS' order."""
    return [c for c in COLUMNS if c in engines or (c in RATIO_COLUMNS and set(RATIO_COLUMNS[c]) <= set(engines))]


def floor_ratios(results):
    """Each step against its matrix products alone: [{"row", "blas" (ms), and
    for hand-written NumPy and each flavour of ours, its time / BLAS's}], for
    the rows that have a BLAS figure ((a), (b), (c), (h))."""
    floors = []
    for case_id, row in results.items():
        blas = _figure(case_id, row.get("blas")) if case_id in CASES else None
        if not blas:
            continue
        entry = {"row": case_id, "blas": blas}
        for engine in ("numpy",) + FLOOR_ENGINES:
            value = _figure(case_id, row.get(engine))
            if value is not None:
                entry[engine] = value / blas
        floors.append(entry)
    return floors


def format_floor(floors):
    """The console lines of the floor table."""
    if not floors:
        return ""
    engines = [e for e in ("numpy",) + FLOOR_ENGINES if any(e in f for f in floors)]
    lines = ["", "each step against its matrix products alone (time / BLAS products, same run)",
             f"  {'':<58}{'BLAS ms':>9}" + "".join(f"{e:>15}" for e in engines)]
    for f in floors:
        lines.append(f"  {_title(f['row']):<58}{f['blas']:>9.3g}"
                     + "".join(f"{'-' if e not in f else format(f[e], '.2f'):>15}" for e in engines))
    return "\n".join(lines)


def epochs_run(phases):
    """'12 epochs, stopped early' for row (j)'s run."""
    n, stopped = phases["epochs"], phases["stopped"]
    return f"{n} epoch{'' if n == 1 else 's'}, " + {"early": "stopped early"}.get(stopped, stopped)


def format_command(phases):
    """The console lines of row (j): the command's wall clock, phase by phase."""
    if not phases:
        return ""
    if "error" in phases:
        return f"\n{_title(COMMAND_ROW)}: error: {phases['error']}"
    total = phases["total_seconds"]
    lines = ["", f"(j) `{phases['command']}`: {total:.2f} s from the interpreter's start to its exit "
                 f"({epochs_run(phases)})"]
    for phase, seconds in phases["seconds"].items():
        lines.append(f"  {phase:<12}{seconds:>9.2f} s{seconds / total:>7.0%}")
    return "\n".join(lines)


def targets(results, quick=False):
    """{case_id: {"ratio", "target", "met", "reference"}} for ours against each case's reference."""
    verdicts = {}
    for case_id, row in results.items():
        if case_id == "g":
            depth = _figure("g", row.get("ours"))
            goal = W.DEPTH_TARGET_QUICK if quick else W.DEPTH_TARGET
            if depth is not None:
                verdicts[case_id] = {"value": depth, "target": goal, "met": depth >= goal}
            continue
        if case_id in MEMORY_CASES:
            reference, target = "numpy", MEMORY_OF.get(case_id, (None, None, MEMORY_TARGET))[2]
        else:
            reference, target = CASES[case_id].reference, CASES[case_id].target
        ref = _figure(case_id, row.get(reference))
        for engine in ("ours", "ours-nn", "ours-compiled"):
            ours = _figure(case_id, row.get(engine))
            if ours is None or not ref:
                continue
            ratio = ours / ref
            verdicts[case_id if engine == "ours" else f"{case_id} ({engine[5:]})"] = {
                "reference": reference, "ratio": ratio, "target": target, "met": ratio <= target,
            }
    return verdicts


def compiled_targets(results):
    """[{"row", "reference", "ratio", "target", "met"}] for ours-compiled against COMPILE_TARGETS."""
    verdicts = []
    for case_id, reference, target in COMPILE_TARGETS:
        row = results.get(case_id, {})
        cell = row.get("ours-compiled")
        if reference == "eager":
            ours, ref = (cell or {}).get("first_call_ms"), _figure(case_id, row.get("ours-nn"))
        else:
            ours, ref = _figure(case_id, cell), _figure(case_id, row.get(reference))
        if ours is None or not ref:
            continue
        verdicts.append({"row": case_id, "reference": reference, "ratio": ours / ref, "target": target,
                         "met": ours / ref <= target})
    return verdicts


def format_compiled_targets(verdicts):
    """The console lines of ours-compiled against its own targets."""
    if not verdicts:
        return ""
    lines = ["", "ours-compiled against its own targets (ours-compiled / reference; eager: its first, tracing call"
             " / an ours-nn step)"]
    for v in verdicts:
        lines.append(f"  {_title(v['row']):<58}{'vs ' + v['reference']:<14}{v['ratio']:>8.2f}  <= {v['target']:<5} "
                     f"{'ok' if v['met'] else 'MISSED'}")
    return "\n".join(lines)


def _title(case_id):
    if case_id in MEMORY_OF:
        return f"(h) peak memory of (h), batch {MEMORY_OF[case_id][1]}, float32"
    if case_id in MEMORY_CASES:
        return f"(f) peak memory of (a), batch {W.MEMORY_BATCH}, {np.dtype(MEMORY_CASES[case_id]).name}"
    if case_id == "g":
        return "(g) chain depth that backpropagates"
    if case_id == COMMAND_ROW:
        return "(j) the whole `autograd-core train --data digits`"
    return CASES[case_id].title


def _unit(case_id):
    if case_id in MEMORY_CASES:
        return "MiB"
    if case_id == "g":
        return "nodes"
    return CASES[case_id].unit


def format_table(results, verdicts):
    present = [c for c in COLUMNS if any(c in row or (c in RATIO_COLUMNS and cell_figure(case_id, row, c) is not None)
                                         for case_id, row in results.items())]
    width = max(len(_title(c)) for c in results) + 2
    header = f"{'workload':<{width}}{'unit':<9}" + "".join(f"{c:>{_width(c)}}" for c in present) + "   ours/ref  target"
    lines = [header, "-" * len(header)]
    for case_id, row in results.items():
        cells = []
        for engine in present:
            value, w = cell_figure(case_id, row, engine), _width(engine)
            if value is None:
                cells.append(f"{'err' if engine in row else '-':>{w}}")
            elif case_id == "g":
                cells.append(f"{value:>{w},}")
            elif engine in RATIO_COLUMNS:
                cells.append(f"{value:>{w}.2f}")
            else:
                cells.append(f"{value:>{w}.3g}" if value < 100 else f"{value:>{w}.0f}")
        verdict = verdicts.get(case_id)
        if verdict and "ratio" in verdict:
            tail = f"   {verdict['ratio']:>8.2f}  <= {verdict['target']:<5} {'ok' if verdict['met'] else 'MISSED'}"
        elif verdict:
            tail = f"   {'':>8}  >= {verdict['target']:,} {'ok' if verdict['met'] else 'MISSED'}"
        else:
            tail = ""
        lines.append(f"{_title(case_id):<{width}}{_unit(case_id):<9}" + "".join(cells) + tail)
        for flavour in ("nn", "compiled"):
            nn_verdict = verdicts.get(f"{case_id} ({flavour})")
            if nn_verdict:
                label = f"ours-{flavour} / {nn_verdict['reference']}"
                lines.append(f"{'':<{width}}{'':<9}{label:>{sum(map(_width, present))}}"
                             f"   {nn_verdict['ratio']:>8.2f}  <= {nn_verdict['target']:<5} {'ok' if nn_verdict['met'] else 'MISSED'}")
        faults = _faults_line(row, present)
        if faults:
            lines.append(f"{'  page faults per step':<{width}}{'':<9}" + faults)
    return "\n".join(lines + _error_lines(results, present))


def _error_lines(results, present):
    """What each "err" cell of the table holds: the engine's error, first line."""
    lines = []
    for case_id, row in results.items():
        for engine in present:
            cell = row.get(engine)
            if isinstance(cell, dict) and "error" in cell:
                text = str(cell["error"]).strip().splitlines() or [""]
                lines.append(f"  err in {_title(case_id)}, {engine}: {text[0]}")
    return lines


def _faults_line(row, present):
    """The cells of a row's page faults per step, when any engine took one or
    more: they are where wall-clock time and instruction counts part ways."""
    counts = [row.get(engine, {}).get("faults_per_step") if isinstance(row.get(engine), dict) else None for engine in present]
    if not any(count is not None and count >= 1 for count in counts):
        return ""
    return "".join(f"{'-' if count is None else f'{count:.0f}':>{_width(engine)}}"
                   for count, engine in zip(counts, present))


def _width(column):
    """A console column's width: 11, or its name and two spaces."""
    return max(11, len(column) + 2)


def machine_info():
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    blas = ""
    try:
        config = np.show_config(mode="dicts")
        blas_info = config["Build Dependencies"]["blas"]
        blas = f"{blas_info.get('name')} {blas_info.get('version')}"
    except Exception:
        pass
    return {
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "cpu": cpu,
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": blas,
        "malloc_env": {k: v for k, v in os.environ.items() if k.startswith("MALLOC_")},
    }


def _ratio_to_pytorch_note(results):
    """(h)'s closing note: how far our CNN step is from PyTorch's."""
    row = results.get("h", {})
    torch_ms = _figure("h", row.get("pytorch"))
    notes = [f"{engine} {_figure('h', row.get(engine)) / torch_ms:.2f}"
             for engine in ("ours", "ours-nn", "ours-compiled")
             if torch_ms and _figure("h", row.get(engine))]
    return f"\n(h) against PyTorch (time / PyTorch's): {', '.join(notes)}" if notes else ""


def write_json_atomically(data, path):
    return atomic_write(path, json.dumps(data, indent=2, default=float) + "\n", make_parents=True)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few repeats, short depth chain: a smoke run")
    parser.add_argument("--only", default="", help=f"comma-separated rows among {','.join(ALL_IDS)}")
    parser.add_argument("--engines", default="", help="comma-separated engines (default: all present)")
    parser.add_argument("--output", default=None, help="JSON path (default benchmarks/results/latest.json)")
    parser.add_argument("--clock", choices=sorted(CLOCK_KEYS), default="wall",
                        help="the median the table uses: wall-clock (default) or this process's CPU time, "
                             "steadier when other programs load the machine (both are in the JSON)")
    args = parser.parse_args(argv)
    _clock[0] = args.clock

    wanted = [c.strip() for c in args.only.split(",") if c.strip()] or ALL_IDS
    if "h" in wanted and "h_mem" not in wanted:  # (h) has a time and a memory target
        wanted.append("h_mem")
    unknown = [c for c in wanted if c not in ALL_IDS]
    if unknown:
        parser.error(f"unknown rows {unknown}; choose among {ALL_IDS}")
    engines = available_engines()
    missing = [e for e in ENGINE_MODULES if e not in engines]
    if args.engines:
        chosen = [e.strip() for e in args.engines.split(",")]
        engines = [e for e in engines if e in chosen]
    log = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    log(f"engines: {', '.join(engines)}" + (f" (not installed: {', '.join(missing)})" if missing else ""))

    started = time.time()
    timed = [c for c in wanted if c in CASES]
    results, info = run_timings(timed, engines, args.quick, log)
    memory_ids = [c for c in wanted if c in MEMORY_CASES]
    if args.quick:
        memory_ids = memory_ids[:1] + [c for c in memory_ids[1:] if c in MEMORY_OF]
    results.update(run_memory(memory_ids, engines, log))
    if "g" in wanted:
        results["g"] = run_depth(engines, args.quick, log)
    command = run_command(args.quick, log) if COMMAND_ROW in wanted and "ours-nn" in engines else None
    if "ours-compiled" in engines:
        run_first_calls([c for c in FIRST_CALL_CASES if c in timed], results, args.quick, log)
    results = {c: results[c] for c in ALL_IDS if c in results}
    verdicts = targets(results, args.quick)
    compiled_verdicts = compiled_targets(results)
    floors = floor_ratios(results)
    table = (format_table(results, verdicts) if results else "") + format_compiled_targets(compiled_verdicts)
    table += format_floor(floors) + format_command(command)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    table += f"\n{args.clock} clock, medians; load average {load:.1f} on {os.cpu_count()} cores"
    anchored = [c for c, row in results.items() if isinstance(row.get("pytorch"), dict) and "anchor_factor" in row["pytorch"]]
    if anchored:
        factors = ", ".join(f"{c} x{results[c]['pytorch']['anchor_factor']:.2f}" for c in anchored)
        table += (f"\npytorch ran in its own process; where it is the reference, its figures are put on this "
                  f"process's clock by hand-written NumPy timed in both ({factors}; raw figures in the JSON)")
    table += _ratio_to_pytorch_note(results)
    if load > (os.cpu_count() or 1):
        table += " (busy: other programs shared the cores, wall-clock figures are unreliable; try --clock cpu)"
    print(table)

    report = {
        "command": "python -m benchmarks " + " ".join(argv if argv is not None else sys.argv[1:]),
        "quick": args.quick,
        "clock": args.clock,
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "seconds": round(time.time() - started, 1),
        "machine": {**machine_info(), **info},
        "engines": engines,
        "not_installed": missing,
        "memory_method": (
            "resident memory (RSS, from /proc/self/status): peak (VmHWM) over steps 2-4 minus the RSS "
            "right after the imports, in a fresh process per engine; the first step's peak is kept too"
        ),
        "results": results,
        "targets": verdicts,
        "compiled_targets": compiled_verdicts,
        "floor": floors,
        "command_phases": command,
        "table": table,
    }
    path = args.output or RESULTS_DIR / "latest.json"
    write_json_atomically(report, path)
    log(f"wrote {path}")
    return report
