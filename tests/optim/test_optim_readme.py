"""The README's optim section runs as written."""

import re
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_optim_examples_run():
    text = README.read_text()
    section = text.split("<!-- section: optim (issue 5) -->", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 2
    namespace = {}
    np.random.seed(0)
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
    assert namespace["checkpoint"]["param_groups"][1]["weight_decay"] == 0.0
    assert namespace["loss"].item() < 1.0986  # below chance level, log(3): it trained
