"""The optim page (docs/optim.md) runs as written."""

import re
from pathlib import Path

import numpy as np

PAGE = Path(__file__).resolve().parents[2] / "docs" / "optim.md"


def test_optim_page_examples_run():
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(encoding="utf-8"), re.S)
    assert len(blocks) == 2
    namespace = {}
    np.random.seed(0)
    for block in blocks:
        exec(compile(block, str(PAGE), "exec"), namespace)
    assert namespace["checkpoint"]["param_groups"][1]["weight_decay"] == 0.0
    assert namespace["loss"].item() < 1.0986  # below chance level, log(3): it trained
    # f = x^2 y + 3 y^2 at (1, 2): f_xx = 2y, f_xy = 2x, f_yy = 6
    np.testing.assert_allclose(namespace["H"], [[4.0, 2.0], [2.0, 6.0]], rtol=1e-12)
