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

COLUMN_NAMES = {"numpy": "NumPy by hand", "pytorch": "PyTorch", "jax": "JAX", "hips": "HIPS", "mygrad": "MyGrad"}
REFERENCE_NAMES = {"numpy": "NumPy", "pytorch": "PyTorch", "micrograd": "micrograd"}
UNITS = {"ms/step": "ms", "us/op": "µs"}


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
    columns = [c for c in runner.COLUMNS if c in run["engines"]]
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
            value = runner._figure(case_id, row.get(engine))
            cells.append("–" if value is None else f"{value:,}" if case_id == "g" else _number(value))
        ours = verdicts.get(case_id)
        # the other flavours of our engine ("a_f32 (nn)", "a_f32 (compiled)"), in the JSON's order
        flavours = [(key[len(case_id) + 2:-1], verdict) for key, verdict in verdicts.items()
                    if key.startswith(f"{case_id} (") and key.endswith(")")]
        if ours and "ratio" in ours:
            ratio = f"{ours['ratio']:.2f}" + "".join(f" ({name} {v['ratio']:.2f})" for name, v in flavours)
            target = (f"≤ {ours['target']} vs {REFERENCE_NAMES.get(ours['reference'], ours['reference'])}: "
                      f"{mark[ours['met']]}" + "".join(f" ({name} {mark[v['met']]})" for name, v in flavours))
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
    return "\n".join(lines)


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
    for row in "abcdefg":
        assert f"| ({row}) " in text, f"row ({row}) is not described"


def test_benchmarks_readme_commands_name_real_rows_and_engines():
    from benchmarks import runner

    text = README.read_text(encoding="utf-8")
    for ids in re.findall(r"--only ([\w,]+)", text):
        assert set(ids.split(",")) <= set(runner.ALL_IDS), ids
    for names in re.findall(r"--engines ([\w,-]+)", text):
        assert set(names.split(",")) <= set(runner.COLUMNS), names


if __name__ == "__main__":
    print(render(json.loads(LATEST.read_text(encoding="utf-8"))))
