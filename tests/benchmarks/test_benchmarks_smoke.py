"""The benchmark suite runs: every engine computes the same thing, and the
quick mode goes through every code path once. No timing is asserted here
(speed is measured only by ``python -m benchmarks``)."""

import json
import mmap

import numpy as np
import pytest

from benchmarks import engines, measure, runner
from benchmarks import workloads as W


def _present(names):
    return [name for name in names if engines.load(name).available()]


@pytest.mark.parametrize("workload", ["mlp", "tiny"])
def test_every_engine_computes_the_same_first_loss(workload):
    # same data and weights: the first step's loss agrees across engines in float64
    # (ln 10 ~ 2.3 for 10 classes at initialisation, so the check is not vacuous)
    losses = {}
    for name in _present(["ours", "numpy", "pytorch", "hips", "mygrad"]):
        loss = engines.step_for(name, workload, np.float64)()
        losses[name] = float(loss.item() if hasattr(loss, "item") else loss)
    assert {"ours", "numpy"} <= set(losses)
    reference = losses["numpy"]
    assert 0.5 < reference < 20
    for name, value in losses.items():
        assert value == pytest.approx(reference, rel=1e-9), name


def test_ours_and_handwritten_numpy_take_the_same_sgd_step():
    ours, by_hand = engines.step_for("ours", "mlp", np.float64), engines.step_for("numpy", "mlp", np.float64)
    first = (float(ours().item()), by_hand())
    second = (float(ours().item()), by_hand())
    assert second[0] == pytest.approx(second[1], rel=1e-9)
    assert second[0] != first[0]  # the step changed the weights


def test_batchnorm_dropout_workload_agrees_with_numpy():
    ours = engines.step_for("ours", "mlp_bn", np.float64)
    by_hand = engines.step_for("numpy", "mlp_bn", np.float64)
    for _ in range(2):
        assert float(ours().item()) == pytest.approx(by_hand(), rel=1e-8)


def test_chain_gradient_agrees_with_numpy():
    total, grad = engines.step_for("numpy", "chain", np.float64)()
    from autograd_core import Value

    x = Value(W.chain_input())
    y = x
    for k in range(W.CHAIN_LENGTH):
        y = [lambda v: v * 1.01, lambda v: v + 0.01, lambda v: v.tanh(), lambda v: v - 0.005][k % 4](y)
    y.sum().backward()
    assert float(y.sum().item()) == pytest.approx(float(total), rel=1e-12)
    np.testing.assert_allclose(x.grad, grad, rtol=1e-12)


def test_scalar_mlp_matches_micrograd():
    pytest.importorskip("micrograd")
    ours, theirs = engines.step_for("ours", "scalar", np.float64), engines.step_for("micrograd", "scalar", np.float64)
    for _ in range(2):
        assert float(ours().item()) == pytest.approx(theirs().data, rel=1e-12)


def test_quick_run_writes_a_table_and_json(tmp_path, capsys):
    out = tmp_path / "quick.json"
    present = _present(["ours", "numpy", "micrograd"])
    report = runner.main(["--quick", "--only", "a_f32,c,d,f_f32,g", "--engines", ",".join(present), "--output", str(out)])
    table = capsys.readouterr().out
    assert "(a) MLP 784-256-256-10" in table and "(g) chain depth" in table
    saved = json.loads(out.read_text())
    assert saved["quick"] is True and saved["results"]["a_f32"]["ours"]["median_ms"] > 0
    assert saved["results"]["g"]["ours"]["reached_target"] is True
    assert report["targets"]["a_f32"]["reference"] == "numpy"
    if runner.rss_measurable():
        assert saved["results"]["f_f32"]["ours"]["peak_above_imports_mib"] > 1  # the batch alone is 3 MiB


def test_compiled_step_is_judged_against_its_own_targets_and_its_first_call():
    results = {
        "a_f32": {"ours-compiled": {"median_ms": 0.9, "cpu_median_ms": 0.9, "first_call_ms": 12.0},
                  "ours-nn": {"median_ms": 1.5, "cpu_median_ms": 1.5},
                  "numpy": {"median_ms": 1.0, "cpu_median_ms": 1.0}, "jax": {"median_ms": 0.5, "cpu_median_ms": 0.5}},
        "c": {"ours-compiled": {"median_ms": 0.04, "cpu_median_ms": 0.04}, "pytorch": {"error": "not installed"}},
    }
    verdicts = {(v["row"], v["reference"]): v for v in runner.compiled_targets(results)}
    assert verdicts[("a_f32", "numpy")]["ratio"] == pytest.approx(0.9) and verdicts[("a_f32", "numpy")]["met"]
    assert verdicts[("a_f32", "jax")]["ratio"] == pytest.approx(1.8) and not verdicts[("a_f32", "jax")]["met"]
    assert verdicts[("a_f32", "eager")]["ratio"] == pytest.approx(8.0) and verdicts[("a_f32", "eager")]["met"]
    assert ("c", "pytorch") not in verdicts and ("c", "eager") not in verdicts  # no reference: no verdict
    assert "vs jax" in runner.format_compiled_targets(list(verdicts.values()))


def test_a_figure_from_another_process_is_scaled_by_numpy_timed_in_both():
    # PyTorch's process ran in a slow spell: NumPy took 2.0 ms there, 1.0 ms here
    there = {"median_ms": 6.0, "cpu_median_ms": 5.0, "p25_ms": 5.0, "p75_ms": 7.0, "min_ms": 4.0,
             "numpy_same_process": {"median_ms": 2.0, "cpu_median_ms": 2.5}}
    here = {"median_ms": 1.0, "cpu_median_ms": 1.0}
    scaled = runner.anchor(there, here)
    assert scaled["median_ms"] == 3.0 and scaled["raw_median_ms"] == 6.0
    assert scaled["cpu_median_ms"] == 2.0 and scaled["min_ms"] == 2.0
    assert scaled["anchor_factor"] == 0.5
    assert runner.anchor(there, None) is there  # no NumPy here (not installed / not chosen): left raw


def test_dropout_masks_are_drawn_anew_each_step_and_alike_for_every_engine():
    # every engine that takes masks draws from its own source with the same seed
    source, twin = W.dropout_mask_source(W.MLP_SIZES, 128, np.float32), W.dropout_mask_source(W.MLP_SIZES, 128, np.float32)
    first = source()
    for mask, same in zip(first, twin()):
        np.testing.assert_array_equal(mask, same)
    second = source()
    assert not np.array_equal(first[0], second[0])  # a new draw every step, as training makes
    mask = first[0]
    assert mask.shape == (128, 256) and mask.dtype == np.float32
    assert set(np.unique(mask).tolist()) == {0.0, 1.25}  # inverted dropout: kept / (1 - 0.2)
    assert 0.77 < (mask != 0).mean() < 0.83  # 32,768 draws: the kept share is 0.8 to within 0.03


@pytest.mark.skipif(measure.resource is None, reason="page faults are counted with the resource module (Unix)")
def test_page_faults_per_step_are_counted_and_shown_under_the_row():
    # each step maps 1,024 fresh pages and writes one byte into each
    def fresh_memory():
        pages = mmap.mmap(-1, 1024 * mmap.PAGESIZE)
        pages[:: mmap.PAGESIZE] = b"\x01" * 1024
        pages.close()

    def no_memory():
        sum(range(100))

    summary = measure.time_steps({"fresh": fresh_memory, "none": no_memory}, rounds=3, block_seconds=0.01, warmup=1)
    assert 1000 <= summary["fresh"]["faults_per_step"] < 1100
    assert summary["none"]["faults_per_step"] < 1
    line = runner._faults_line({"ours": summary["fresh"], "numpy": summary["none"]}, ["ours", "numpy", "pytorch"])
    assert line.split() == [f"{summary['fresh']['faults_per_step']:.0f}", "0", "-"]
    assert runner._faults_line({"ours": summary["none"]}, ["ours"]) == ""  # nobody faulted: no line


def test_cnn_row_takes_the_same_sgd_steps_in_every_engine():
    # (h): the digits CNN by hand in NumPy, on the engine's ops, through nn (eager and compiled as
    # `autograd-core train` compiles its step) and in PyTorch, float64:
    # the same losses over three SGD steps (the flat regions of the digits make ties in max pooling,
    # so this also checks that every engine sends a tie's gradient to the same, first, element)
    names = ["numpy", "ours", "ours-nn", "ours-compiled"] + _present(["pytorch"])
    steps = {name: engines.step_for(name, "cnn", np.float64) for name in names}
    for _ in range(3):
        losses = {}
        for name, step in steps.items():
            loss = step()
            losses[name] = float(loss.item() if hasattr(loss, "item") else loss)
        reference = losses["numpy"]
        assert 0.1 < reference < 10
        for name, value in losses.items():
            assert value == pytest.approx(reference, rel=1e-9), name


# ---- the floor: a step's matrix products alone ------------------------------
def test_blas_products_are_the_products_of_the_hand_written_steps():
    from benchmarks import engine_blas

    # (a): three layers forward; backward dW for each and dh for all but the first (X needs no gradient)
    assert engine_blas.products_of("mlp", np.float32) == [
        ("forward 1: h @ W", (128, 784), (784, 256)), ("forward 2: h @ W", (128, 256), (256, 256)),
        ("forward 3: h @ W", (128, 256), (256, 10)),
        ("dW3 = h^T @ dZ", (256, 128), (128, 10)), ("dh2 = dZ @ W^T", (128, 10), (10, 256)),
        ("dW2 = h^T @ dZ", (256, 128), (128, 256)), ("dh1 = dZ @ W^T", (128, 256), (256, 256)),
        ("dW1 = h^T @ dZ", (784, 128), (128, 256)),
    ]
    assert [shapes for _, *shapes in engine_blas.products_of("tiny")][0] == [(32, 2), (2, 16)]
    # (h): each convolution one product of its im2col rows (64 images of 8x8, then 4x4 after pooling)
    assert [shapes for _, *shapes in engine_blas.products_of("cnn")] == [
        [(4096, 9), (9, 16)], [(1024, 144), (144, 32)], [(64, 128), (128, 10)],
        [(10, 64), (64, 128)], [(64, 10), (10, 128)], [(32, 1024), (1024, 144)], [(1024, 32), (32, 144)],
        [(16, 4096), (4096, 9)],
    ]
    for workload in ("mlp", "mlp_bn", "tiny", "cnn"):
        for dtype in (np.float32, np.float64):
            step = engines.step_for("blas", workload, dtype)
            out = step()
            assert out.dtype == dtype and np.isfinite(out).all()
            for _, a, b, product in step.products:  # each buffer holds its product
                np.testing.assert_allclose(product, a @ b, rtol=1e-5)


def test_blas_products_are_timed_but_their_memory_is_not_measured():
    assert engines.supports("blas", "mlp") and engines.supports("blas", "cnn")
    assert not engines.supports("blas", "chain") and not engines.supports("blas", "epoch")
    assert "blas" in engines.TIME_ONLY


def test_floor_ratios_put_every_step_over_its_products():
    results = {"a_f32": {"blas": {"median_ms": 0.5, "cpu_median_ms": 0.5},
                         "numpy": {"median_ms": 0.6, "cpu_median_ms": 0.6},
                         "ours-compiled": {"median_ms": 0.75, "cpu_median_ms": 0.75}, "ours-nn": {"error": "x"}},
               "d": {"numpy": {"median_ms": 1.0, "cpu_median_ms": 1.0}}}
    floors = runner.floor_ratios(results)
    assert floors == [{"row": "a_f32", "blas": 0.5, "numpy": pytest.approx(1.2), "ours-compiled": pytest.approx(1.5)}]
    assert runner.cell_figure("a_f32", results["a_f32"], "numpy/blas") == pytest.approx(1.2)
    assert runner.cell_figure("d", results["d"], "numpy/blas") is None
    assert "numpy/blas" in runner.table_columns(["ours", "numpy", "blas"])
    assert "numpy/blas" not in runner.table_columns(["ours", "numpy"])
    assert "BLAS" in runner.format_floor(floors)


def test_a_step_that_fails_gets_its_error_in_the_cell_and_the_others_are_timed():
    def refused():
        raise RuntimeError("compile: cannot trace this\nsecond line")

    summary = measure.time_steps({"fine": lambda: None, "refused": refused}, rounds=2, block_seconds=0.0, warmup=1)
    assert summary["refused"] == {"error": "RuntimeError: compile: cannot trace this\nsecond line"}
    assert summary["fine"]["rounds"] == 2
    table = runner.format_table({"h": {"ours-compiled": summary["refused"], "numpy": summary["fine"]}}, {})
    assert "err" in table and "ours-compiled: RuntimeError: compile: cannot trace this" in table


# ---- (i) the digits epoch of `autograd-core train`, and PyTorch's ------------
def test_digits_epoch_is_the_apps_epoch_and_pytorchs_is_the_same_epoch():
    from benchmarks import digits_epoch

    eager, compiled = digits_epoch.ours_epoch_step(eager=True), digits_epoch.ours_epoch_step(eager=False)
    assert eager.trainer.step is None and compiled.trainer.step is not None  # train --eager, and train as it is
    rows = {"eager": eager(), "compiled": compiled()}
    if engines.load("pytorch").available():
        rows["pytorch"] = digits_epoch.torch_epoch_step(threads=1)()
    # the app's first epoch of `train --data digits` (seed 0): 1,438 training and 359 validation images
    reference = rows["eager"]
    assert 0.5 < reference["train_loss"] < 2 and reference["val_accuracy"] > 0.5
    for name, row in rows.items():
        for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy"):
            assert row[key] == pytest.approx(reference[key], rel=1e-9), (name, key)
    assert compiled()["epoch"] == 2  # the next call trains the next epoch


def test_quick_run_of_the_cnn_rows_has_the_floor_the_compiled_step_and_the_epoch(tmp_path, capsys):
    out = tmp_path / "quick.json"
    report = runner.main(["--quick", "--only", "h,i", "--engines", "ours-nn,ours-compiled,numpy,blas",
                          "--output", str(out)])
    table = capsys.readouterr().out
    saved = json.loads(out.read_text())
    h, i = saved["results"]["h"], saved["results"]["i"]
    for engine in ("ours-nn", "ours-compiled", "numpy", "blas"):
        assert h[engine]["median_ms"] > 0, engine
    assert i["ours-nn"]["median_ms"] > 0 and i["ours-compiled"]["median_ms"] > 0
    assert [f["row"] for f in saved["floor"]] == ["h"] and saved["floor"][0]["ours-compiled"] > 0
    assert "blas" in table and "numpy/blas" in table and "(i) an epoch" in table
    assert {"h (nn)", "h (compiled)"} <= set(report["targets"])
    assert not any(key.startswith("i") for key in report["targets"])  # (i)'s reference, PyTorch, was not run
    if runner.rss_measurable():
        assert saved["results"]["h_mem"]["ours-compiled"]["peak_above_imports_mib"] > 0
        assert "blas" not in saved["results"]["h_mem"]


# ---- (j) the whole command, phase by phase -----------------------------------
def test_imports_are_counted_in_the_phase_that_made_them():
    from benchmarks import app_phases

    stderr = "\n".join([
        "import time: self [us] | cumulative | imported package",
        "import time:       100 |        100 |   _io",
        "import time:      1000 |       1100 | encodings",
        "benchmarks.app_phases: enter command",
        "import time:      2000 |       2000 | autograd_core",
        "benchmarks.app_phases: enter pictures",
        "\rtraining 1/1 |####|benchmarks.app_phases: enter evaluation",  # a progress bar's line before a mark
        "import time:       500 |        500 |   matplotlib.colors",
        "import time:      3000 |       3500 | matplotlib",
        "benchmarks.app_phases: exit evaluation",
        "import time:       300 |        300 | benchmarks",  # the driver itself is not the command's
        "benchmarks.app_phases: exit pictures",
        "benchmarks.app_phases: exit command",
    ])
    assert app_phases.imports_by_phase(stderr) == {"start-up": 0.0011, "command": 0.002, "evaluation": 0.0035}
    split = app_phases.split_wall_clock(
        10.0, {"phases": {"data": 1.0, "training": 4.0, "evaluation": 1.0035, "pictures": 2.0}, "span": 9.0,
               "status": 0, "epochs": 3, "stopped": "finished"}, stderr)
    assert split["seconds"]["imports"] == pytest.approx(0.0066)
    assert split["seconds"]["evaluation"] == pytest.approx(1.0)
    assert sum(split["seconds"].values()) == pytest.approx(10.0)
    assert list(split["seconds"]) == list(app_phases.PHASES)


@pytest.mark.slow
def test_quick_run_of_the_whole_train_command(tmp_path, capsys):
    out = tmp_path / "quick.json"
    runner.main(["--quick", "--only", "j", "--engines", "ours-nn", "--output", str(out)])
    table = capsys.readouterr().out
    phases = json.loads(out.read_text())["command_phases"]
    assert "error" not in phases, phases
    assert phases["epochs"] == 1 and phases["exit_status"] == 0
    seconds = phases["seconds"]
    assert list(seconds) == ["imports", "data", "training", "evaluation", "pictures", "other"]
    assert sum(seconds.values()) == pytest.approx(phases["total_seconds"])
    assert seconds["imports"] > 0 and seconds["training"] > 0 and seconds["pictures"] > 0
    assert "--epochs 1" in phases["command"] and "from the interpreter's start to its exit" in table
