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
    # (h): the digits CNN by hand in NumPy, on the engine's ops, through nn and in PyTorch, float64:
    # the same losses over three SGD steps (the flat regions of the digits make ties in max pooling,
    # so this also checks that every engine sends a tie's gradient to the same, first, element)
    names = ["numpy", "ours", "ours-nn"] + _present(["pytorch"])
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
