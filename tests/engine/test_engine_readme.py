"""The README's engine section: its example runs and says what it computes."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def engine_section():
    text = README.read_text()
    start = text.index("<!-- section: engine (issue 2) -->")
    end = text.index("<!-- section:", start + 1)
    return text[start:end]


def test_engine_section_example_runs():
    blocks = re.findall(r"```python\n(.*?)```", engine_section(), flags=re.S)
    assert blocks, "the engine section has a Python example"
    namespace = {}
    exec(compile(blocks[0], "README engine example", "exec"), namespace)
    # the numbers its comments promise
    assert list(namespace["d2y"]) == [3.0, -6.0, 12.0]


def test_engine_section_states_the_rules():
    section = engine_section()
    for rule in ["`None`", "accumulate", "retain_graph", "create_graph", "float32", "no_grad", "detach",
                 "relu'(0) = 0", "ShapeError", "detect_anomaly", "gradcheck"]:
        assert rule in section, rule
