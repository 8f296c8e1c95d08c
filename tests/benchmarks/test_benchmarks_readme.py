"""benchmarks/README.md shows the run that benchmarks/results/latest.json holds.

When a new run is committed, print the block to paste into the README with
``python tests/benchmarks/test_benchmarks_readme.py``.
"""

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "benchmarks" / "README.md"
LATEST = ROOT / "benchmarks" / "results" / "latest.json"

COLUMN_NAMES = {"numpy": "NumPy by hand", "blas": "BLAS products", "numpy/blas": "NumPy / BLAS", "pytorch": "PyTorch",
                "jax": "JAX", "hips": "HIPS", "mygrad": "MyGrad"}
REFERENCE_NAMES = {"numpy": "NumPy", "pytorch": "PyTorch", "micrograd": "micrograd"}
UNITS = {"ms/step": "ms", "us/op": "µs", "s/epoch": "s"}


def _number(value):
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def _command(run):
    words = run["command"].split()
    if "--output" in words:  # where the JSON went is not part of what was measured
        at = words.index("--output")
        del words[at:at + 2]
    return " ".join(words)


def render(run):
    """The README's description line and table of one run of `python -m benchmarks`."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from benchmarks import runner

    clock, runner._clock[0] = runner._clock[0], run["clock"]
    try:
        return _render(run, runner)
    finally:
        runner._clock[0] = clock


def _render(run, runner):
    machine = run["machine"]
    columns = runner.table_columns(run["engines"])
    rounds = next(cell["rounds"] for row in run["results"].values() for cell in row.values() if "rounds" in cell)
    date, time = run["date_utc"][:10], run["date_utc"][11:16]
    load = machine["load_average"][0]
    torch = f", PyTorch {machine['torch_version']} on {machine['torch_threads']} threads" if "torch_version" in machine else ""
    quick = " A `--quick` smoke run." if run["quick"] else ""
    lines = [
        f"Run of {date} {time} UTC (`{_command(run)}`): {machine['cpu']}, {machine['cores']} cores, "
        f"Python {machine['python']}, NumPy {machine['numpy']} ({machine['blas']}){torch}, load average {load:.1f}; "
        f"medians of {rounds} interleaved rounds, {run['clock']} clock.{quick}",
        "",
        "| workload | unit | " + " | ".join(COLUMN_NAMES.get(c, c) for c in columns) + " | ours / reference | target |",
        "|" + "---|" * (len(columns) + 4),
    ]
    verdicts = run["targets"]
    mark = {True: "✓", False: "✗"}
    for case_id, row in run["results"].items():
        cells = []
        for engine in columns:
            value = runner.cell_figure(case_id, row, engine)
            if value is None:
                cells.append("err" if "error" in row.get(engine, {}) else "–")
            else:
                cells.append(f"{value:,}" if case_id == "g" else f"{value:.2f}" if engine in runner.RATIO_COLUMNS
                             else _number(value))
        ours = verdicts.get(case_id)
        # the other flavours of our engine ("a_f32 (nn)", "a_f32 (compiled)"), in the JSON's order
        flavours = [(key[len(case_id) + 2:-1], verdict) for key, verdict in verdicts.items()
                    if key.startswith(f"{case_id} (") and key.endswith(")")]
        if ours and "ratio" in ours:
            ratio = f"{ours['ratio']:.2f}" + "".join(f" ({name} {v['ratio']:.2f})" for name, v in flavours)
            target = (f"≤ {ours['target']} vs {REFERENCE_NAMES.get(ours['reference'], ours['reference'])}: "
                      f"{mark[ours['met']]}" + "".join(f" ({name} {mark[v['met']]})" for name, v in flavours))
        elif flavours:  # a row that only the flavours of ours run, as (i): "– (nn 0.80) (compiled 0.45)"
            first = flavours[0][1]
            ratio = "–" + "".join(f" ({name} {v['ratio']:.2f})" for name, v in flavours)
            target = (f"≤ {first['target']} vs {REFERENCE_NAMES.get(first['reference'], first['reference'])}:"
                      + "".join(f" ({name} {mark[v['met']]})" for name, v in flavours))
        elif ours:
            ratio, target = "–", f"≥ {ours['target']:,}: {mark[ours['met']]}"
        else:
            ratio, target = "–", "–"
        unit = UNITS.get(runner._unit(case_id), runner._unit(case_id))
        lines.append(f"| {runner._title(case_id)} | {unit} | " + " | ".join(cells) + f" | {ratio} | {target} |")
    if run.get("compiled_targets"):
        lines += ["", "`ours-compiled` against its own targets, from the same run:", "",
                  "| row | against | ours-compiled / reference | target |", "|---|---|---|---|"]
        for v in run["compiled_targets"]:
            against = ("its first (tracing) call, in `ours-nn` steps" if v["reference"] == "eager"
                       else COLUMN_NAMES.get(v["reference"], v["reference"]))
            lines.append(f"| {runner._title(v['row'])} | {against} | {v['ratio']:.2f} | "
                         f"≤ {v['target']}: {mark[v['met']]} |")
    lines += _floor(run, runner) + _command_phases(run)
    return "\n".join(lines)


def _floor(run, runner):
    """Each step against its matrix products alone (runner.floor_ratios)."""
    floors = run.get("floor")
    if not floors:
        return []
    engines = [e for e in ("numpy",) + runner.FLOOR_ENGINES if any(e in f for f in floors)]
    lines = ["", "Each step against its matrix products alone (its time / BLAS products' time), from the same run:", "",
             "| row | BLAS products (ms) | " + " | ".join(f"{COLUMN_NAMES.get(e, e)} / BLAS" for e in engines) + " |",
             "|" + "---|" * (len(engines) + 2)]
    for f in floors:
        lines.append(f"| {runner._title(f['row'])} | {_number(f['blas'])} | "
                     + " | ".join("–" if e not in f else f"{f[e]:.2f}" for e in engines) + " |")
    return lines


def _command_phases(run):
    """Row (j): the whole command's wall clock, phase by phase (runner.run_command)."""
    phases = run.get("command_phases")
    if not phases:
        return []
    from benchmarks import runner

    if "error" in phases:
        return ["", f"(j) `autograd-core train --data digits`: error: {phases['error']}"]
    total = phases["total_seconds"]
    lines = ["", f"(j) `{phases['command']}`, from the interpreter's start to its exit ({runner.epochs_run(phases)}), "
                 f"in the same run:", "", "| phase | seconds | share |", "|---|---|---|"]
    for phase, seconds in phases["seconds"].items():
        lines.append(f"| {phase} | {_number(seconds)} | {seconds / total:.0%} |")
    lines.append(f"| total | {_number(total)} | 100% |")
    return lines


def test_benchmarks_readme_shows_the_latest_run():
    run = json.loads(LATEST.read_text(encoding="utf-8"))
    expected = render(run)
    assert expected in README.read_text(encoding="utf-8"), (
        "benchmarks/README.md does not show the run in benchmarks/results/latest.json; put this in its place "
        "(python tests/benchmarks/test_benchmarks_readme.py prints it):\n\n" + expected
    )


def test_benchmarks_readme_has_one_table_of_figures_and_no_diary():
    text = README.read_text(encoding="utf-8")
    run_tables = [block for block in re.split(r"\n\s*\n", text) if block.lstrip().startswith("| workload |")]
    assert len(run_tables) == 1
    assert len(set(re.findall(r"\b20\d\d-\d\d-\d\d\b", text))) == 1  # one dated run
    assert not re.search(r"this morning|this afternoon|today", text, flags=re.I)
    for row in "abcdefghij":
        assert f"| ({row}) " in text, f"row ({row}) is not described"


def test_benchmarks_readme_commands_name_real_rows_and_engines():
    from benchmarks import runner

    text = README.read_text(encoding="utf-8")
    for ids in re.findall(r"--only ([\w,]+)", text):
        assert set(ids.split(",")) <= set(runner.ALL_IDS), ids
    for names in re.findall(r"--engines ([\w,-]+)", text):
        assert set(names.split(",")) <= set(runner.COLUMNS), names


def test_the_floor_the_epoch_and_the_command_are_rendered_when_a_run_has_them():
    cell = lambda ms: {"median_ms": ms, "cpu_median_ms": ms, "rounds": 15}  # noqa: E731
    run = {
        "command": "python -m benchmarks --only h,i,j", "clock": "wall", "quick": False, "date_utc": "2026-12-05T10:00:00Z",
        "machine": {"cpu": "CPU", "cores": 2, "python": "3.11", "numpy": "2", "blas": "openblas", "load_average": [0.5]},
        "engines": ["ours", "ours-nn", "ours-compiled", "numpy", "blas", "pytorch"],
        "results": {"h": {"ours-nn": cell(1.0), "ours-compiled": {"error": "CompileError: refused"}, "numpy": cell(0.8),
                          "blas": cell(0.4), "pytorch": cell(1.1)},
                    "i": {"ours-nn": cell(400.0), "ours-compiled": cell(200.0), "pytorch": cell(500.0)}},
        "targets": {"h (nn)": {"reference": "numpy", "ratio": 1.25, "target": 1.2, "met": False},
                    "i (nn)": {"reference": "pytorch", "ratio": 0.8, "target": 0.5, "met": False},
                    "i (compiled)": {"reference": "pytorch", "ratio": 0.4, "target": 0.5, "met": True}},
        "floor": [{"row": "h", "blas": 0.4, "numpy": 2.0, "ours-nn": 2.5}],
        "command_phases": {"command": "autograd-core train --data digits", "total_seconds": 10.0, "epochs": 30,
                           "stopped": "early", "seconds": {"imports": 2.0, "data": 0.01, "training": 5.0,
                                                           "evaluation": 0.49, "pictures": 2.0, "other": 0.5}},
    }
    text = render(run)
    assert ("| workload | unit | ours | ours-nn | ours-compiled | NumPy by hand | BLAS products | NumPy / BLAS | PyTorch |"
            in text)
    assert "| (h) digits CNN (conv-pool x2, linear), batch 64, float32 | ms | – | 1.00 | err | 0.800 | 0.400 | 2.00 |" in text
    assert "| s | – | 0.400 | 0.200 | – | – | – | 0.500 | – (nn 0.80) (compiled 0.40) | ≤ 0.5 vs PyTorch: (nn ✗) (compiled ✓) |" in text
    assert "| (h) digits CNN (conv-pool x2, linear), batch 64, float32 | 0.400 | 2.00 | 2.50 |" in text
    assert "(j) `autograd-core train --data digits`, from the interpreter's start to its exit (30 epochs, stopped early)" in text
    assert "| training | 5.00 | 50% |" in text and "| total | 10.0 | 100% |" in text


if __name__ == "__main__":
    print(render(json.loads(LATEST.read_text(encoding="utf-8"))))
