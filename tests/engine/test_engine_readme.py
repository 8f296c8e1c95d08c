"""The engine's rules page (docs/engine.md): its examples run and say what they compute."""

import re
from pathlib import Path

import numpy as np

PAGE = Path(__file__).resolve().parents[2] / "docs" / "engine.md"


def examples():
    return re.findall(r"```python\n(.*?)```", PAGE.read_text(encoding="utf-8"), flags=re.S)


def test_engine_page_higher_order_example_runs():
    block = next(b for b in examples() if "create_graph=True" in b)
    namespace = {}
    exec(compile(block, "docs/engine.md example", "exec"), namespace)
    # the numbers its comments promise: d2/dx2 of x^3 is 6x at x = [0.5, -1, 2]
    assert list(namespace["d2y"]) == [3.0, -6.0, 12.0]
    # and the update under no_grad moved x by -0.1 * 6x
    np.testing.assert_allclose(namespace["x"].data, [0.2, -0.4, 0.8], rtol=1e-12)


def test_engine_page_in_place_example_catches_the_write(capsys):
    block = next(b for b in examples() if "SavedDataModifiedError" in b)
    exec(compile(block, "docs/engine.md in-place example", "exec"), {})
    printed = capsys.readouterr().out
    assert "'x'" in printed and "'mul'" in printed and "(3,)" in printed


def test_engine_page_rounding_scan_and_scatter_example_computes_what_it_says(capsys):
    block = next(b for b in examples() if "scatter_reduce" in b)
    namespace = {}
    exec(compile(block, "docs/engine.md rounding example", "exec"), namespace)
    assert namespace["r"].data.tolist() == [0.0, 2.0, 2.0, -2.0]
    assert namespace["q"].data.tolist() == [0.0, 1.0, 2.0, -2.0] and namespace["m"].data.tolist() == [0.5, 0.5, 0.5, 0.25]
    assert namespace["values"].data.tolist() == [0.5, 1.5, 2.5, 2.5] and namespace["indices"].tolist() == [0, 1, 2, 2]
    assert namespace["w"].data.tolist() == [[0.5, 1.5], [1.5, 2.5], [2.5, -1.75]]
    assert namespace["top"].data.tolist() == [2.5, 1.5] and namespace["x"].grad.tolist() == [0.0, 1.0, 1.0, 0.0]
    assert capsys.readouterr().out.strip() == "[0. 1. 1. 0.]"


def test_engine_page_states_the_rules():
    page = PAGE.read_text(encoding="utf-8")
    for rule in ["`None`", "accumulate", "retain_graph", "create_graph", "float32", "no_grad", "detach",
                 "relu'(0) = 0", "ShapeError", "detect_anomaly", "gradcheck", "sum_to_shape",
                 "SavedDataModifiedError", "np.asarray"]:
        assert rule in page, rule
