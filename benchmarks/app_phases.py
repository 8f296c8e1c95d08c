"""Row (j): the whole ``autograd-core train --data digits`` command, from the
start of the interpreter to its exit, split into where the time goes.

The runner starts this module in a fresh interpreter under ``python -X
importtime`` and times that process from outside (its wall clock is the row's
total). Inside, the command is run as the console script runs it
(``autograd_core.cli.main(["train", "--data", "digits", ...])``, the default
progress bar included), with the app's phase functions wrapped in timers from
outside (the app is not changed): each phase's time is its own, without the
phases called inside it.

==============  ==============================================================
imports         every module imported, when and wherever it is (Python's own
                start-up modules, the CLI's, and those a phase imports when it
                first needs them: nn and optim, tqdm, matplotlib, graphviz),
                as ``-X importtime`` counts them: the cumulative time of each
                top-level import
data            ``load_data`` and ``split_and_standardise``: the digits file
                read, split and standardised
training        ``_build_trainer`` (the network, the optimizer, the compiled
                step) and ``fit`` (every epoch's mini-batches, the compiled
                step's traces included), without the validation passes and the
                backprop player
evaluation      ``_evaluate``: the validation pass after each epoch, and the
                final loss and accuracy on both parts (``_final_metrics``)
pictures        ``write_outputs`` (model.npz, run.json, metrics.csv, then the
                curves, the confusion matrix, the misclassified images and
                graph.svg) and ``_record_first_step`` (backprop.html)
other           the rest: the interpreter's start and exit, the arguments, the
                output folder, the lines the run prints
==============  ==============================================================

A phase's imports are taken out of its time and counted under imports. The
child prints its figures as JSON on the last line of stdout:

    python -X importtime -m benchmarks.app_phases OUT_DIR [train options]
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

MARK = "benchmarks.app_phases:"
COMMAND = ["train", "--data", "digits"]
PHASES = ("imports", "data", "training", "evaluation", "pictures", "other")
# the app's functions timed as each phase, in autograd_core.app.train's namespace (where run, fit and
# _run_epoch look them up)
TIMED = {
    "load_data": "data", "split_and_standardise": "data",
    "_build_trainer": "training", "fit": "training",
    "_evaluate": "evaluation", "_final_metrics": "evaluation",
    "_record_first_step": "pictures", "write_outputs": "pictures",
}
QUICK_OPTIONS = ["--epochs", "1"]
_IMPORT_LINE = re.compile(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|( +)(\S+)")  # "| name" at depth 0, "|   name" at 1
_MARK_LINE = re.compile(re.escape(MARK) + r" (enter|exit) (\w+)")


# ---- the parent: start the child, read its stderr ---------------------------
def measure(options=(), timeout=3600, out_dir=None):
    """Run the command in a fresh ``python -X importtime`` and split its wall
    clock: {"seconds": {phase: s}, "total_seconds", "epochs", "command", ...}."""
    import shutil
    import tempfile

    root = Path(__file__).resolve().parent.parent
    made = out_dir is None
    out_dir = Path(tempfile.mkdtemp(prefix="bench-train-")) if made else Path(out_dir)
    try:
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-X", "importtime", "-m", "benchmarks.app_phases", str(out_dir / "run"),
                               *options], cwd=root, capture_output=True, text=True, timeout=timeout)
        total = time.perf_counter() - start
        if done.returncode != 0:
            lines = [line for line in done.stderr.splitlines() if not _IMPORT_LINE.search(line)]
            return {"error": lines[-1].strip() if lines else f"exit {done.returncode}"}
        child = json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        if made:
            shutil.rmtree(out_dir, ignore_errors=True)
    return split_wall_clock(total, child, done.stderr, options)


def split_wall_clock(total, child, stderr, options=()):
    """The row's figures from the child's own phase times and its stderr
    (``-X importtime`` lines and the phase marks, in the order they were written)."""
    imports_in = imports_by_phase(stderr)
    seconds = {"imports": sum(imports_in.values())}
    for phase in PHASES[1:-1]:
        seconds[phase] = child["phases"].get(phase, 0.0) - imports_in.get(phase, 0.0)
    seconds["other"] = total - sum(seconds.values())
    # the part of "other" outside the command: the interpreter's start (after its own imports) and exit
    interpreter = total - child["span"] - imports_in.get("start-up", 0.0)
    return {
        "command": "autograd-core " + " ".join(COMMAND + list(options)),
        "total_seconds": total,
        "seconds": seconds,
        "imports_by_phase": imports_in,
        "other_outside_the_command_seconds": interpreter,
        "epochs": child["epochs"],
        "stopped": child["stopped"],
        "exit_status": child["status"],
    }


def imports_by_phase(stderr):
    """{phase: seconds} of the top-level imports made in each phase: "start-up"
    before the command starts (the interpreter's own), "command" in the
    command outside the timed phases (the CLI's, at its start)."""
    stack, seconds = [], {}
    for line in stderr.splitlines():
        for kind, phase in _MARK_LINE.findall(line):
            if kind == "enter":
                stack.append(phase)
            elif stack:
                stack.pop()
        found = _IMPORT_LINE.search(line)
        # depth 0 only (an import's own imports are in its cumulative time), and not this driver
        if found and len(found.group(3)) == 1 and not found.group(4).startswith("benchmarks"):
            where = stack[-1] if stack else "start-up"
            seconds[where] = seconds.get(where, 0.0) + int(found.group(2)) / 1e6
    return seconds


# ---- the child: the command with its phases timed ---------------------------
def _mark(kind, phase):
    print(f"{MARK} {kind} {phase}", file=sys.stderr, flush=True)


def _timed(function, phase, totals, stack):
    def timed(*args, **kwargs):
        _mark("enter", phase)
        stack.append(0.0)  # the time of the phases called inside this one
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            elapsed = time.perf_counter() - start
            inner = stack.pop()
            totals[phase] = totals.get(phase, 0.0) + elapsed - inner
            if stack:
                stack[-1] += elapsed
            _mark("exit", phase)

    return timed


def _child(out, options):
    _mark("enter", "command")
    started = time.perf_counter()
    from autograd_core import cli
    from autograd_core.app import train

    totals, stack, history = {}, [], []
    for name, phase in TIMED.items():
        setattr(train, name, _timed(getattr(train, name), phase, totals, stack))
    fit = train.fit

    def fit_and_keep(*args, **kwargs):
        outcome = fit(*args, **kwargs)
        history.append(outcome)
        return outcome

    train.fit = fit_and_keep
    status = cli.main([*COMMAND, "--out", out, *options])
    span = time.perf_counter() - started
    _mark("exit", "command")
    outcome = history[-1] if history else None
    return {"phases": totals, "span": span, "status": status, "epochs": len(outcome.history) if outcome else 0,
            "stopped": outcome.stopped if outcome else None}


if __name__ == "__main__":
    result = _child(sys.argv[1], sys.argv[2:])
    sys.stdout.flush()
    print(json.dumps(result))
