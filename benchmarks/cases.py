"""The rows of the table: a workload in a dtype, its unit, and its target."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import workloads as W


@dataclass(frozen=True)
class Case:
    id: str
    title: str
    workload: str
    dtype: type
    unit: str = "ms/step"
    per: int = 1  # the figure is time per step divided by this (per-op for the chain)
    reference: str | None = None  # the engine the target ratio is taken against
    target: float | None = None  # ours / reference must be <= this
    charge_gc: bool = False  # time a gc.collect() after each block (see measure.time_steps)
    # the hand-written NumPy workload that puts an engine of its own process on this process's clock
    # (runner.anchor), when the row's own workload has no NumPy step
    anchor: str | None = None

    @property
    def anchor_workload(self):
        return self.anchor or self.workload


CASES = {
    c.id: c
    for c in [
        Case("a_f32", "(a) MLP 784-256-256-10, batch 128, float32", "mlp", np.float32, reference="numpy", target=1.10),
        Case("a_f64", "(a) MLP 784-256-256-10, batch 128, float64", "mlp", np.float64, reference="numpy", target=1.10),
        Case("b_f32", "(b) + BatchNorm1d, Dropout, float32", "mlp_bn", np.float32, reference="numpy", target=1.15),
        Case("b_f64", "(b) + BatchNorm1d, Dropout, float64", "mlp_bn", np.float64, reference="numpy", target=1.15),
        Case("c", "(c) tiny MLP 2-16-16-3, batch 32, float32", "tiny", np.float32, reference="pytorch", target=0.6),
        Case("d", "(d) chain of 1,000 ops on (10,), per op", "chain", np.float64, unit="us/op",
             per=W.CHAIN_LENGTH, reference="pytorch", target=0.5),
        Case("e", "(e) scalar MLP 2-16-16-1, 50 points", "scalar", np.float64, reference="micrograd", target=0.25,
             charge_gc=True),
        Case("h", "(h) digits CNN (conv-pool x2, linear), batch 64, float32", "cnn", np.float32, reference="numpy",
             target=1.2),
        Case("i", "(i) an epoch of `train --data digits` (CNN 8-16, Adam, batch 16), float64", "epoch", np.float64,
             unit="s/epoch", reference="pytorch", target=0.5, anchor="cnn"),
    ]
}


def timing_settings(quick):
    return {"rounds": 2, "block_seconds": 0.0, "warmup": 1} if quick else {"rounds": 15, "block_seconds": 0.05, "warmup": 2}
