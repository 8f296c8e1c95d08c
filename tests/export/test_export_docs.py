"""docs/export.md and the README's export example run and say what they show;
the export modules' docstring examples run."""

import contextlib
import doctest
import importlib
import io
import re
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "export.md"

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")


def _blocks(path, language="python"):
    return re.findall(rf"```{language}\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.S)


def test_the_pages_examples_run_in_order_and_print_what_it_shows(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = {}
    printed = []
    for k, block in enumerate(_blocks(PAGE)):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(block, f"docs/export.md example {k}", "exec"), namespace)  # noqa: S102
        printed.append(out.getvalue())
    (shown_source,) = _blocks(PAGE, "text")  # the block after the first example
    assert printed[0] == shown_source + "\n"
    assert (tmp_path / "model.onnx").is_file()
    assert float(printed[1]) < 1.0  # the loss after 20 steps of Adam on 8 examples
    assert printed[2].strip() == "(8, 3)"
    from autograd_core import export

    import nn

    model = nn.Sequential(nn.Linear(3, 3), namespace["Swish"]())
    assert "nn.SiLU()," in export.torch_source(model, np.zeros((2, 3)))
    x = np.random.default_rng(0).standard_normal((2, 3))
    np.testing.assert_allclose(export.to_torch(model, x)(torch.from_numpy(x)).detach().numpy(), model(x).data,
                               rtol=1e-12, atol=1e-12)


def test_the_readmes_export_example_runs(tmp_path, monkeypatch):
    block = next(b for b in _blocks(ROOT / "README.md") if "export.to_torch" in b)
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(block, "README export example", "exec"), namespace)  # noqa: S102
    assert isinstance(namespace["tm"], torch.nn.Sequential) and (tmp_path / "model.onnx").is_file()


@pytest.mark.parametrize("name", ["autograd_core.export", "autograd_core.export.trace", "autograd_core._forms"])
def test_docstring_examples_of_the_export_run(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_the_page_lists_the_ops_without_an_onnx_form():
    from autograd_core.ops import OPS

    missing = {name for name, op in OPS.items() if op.as_onnx is None}
    text = " ".join(PAGE.read_text(encoding="utf-8").split())
    listed = text[text.index("an operation without a form"):text.index("at opset 18)")]
    assert missing - {"scatter"} == set(re.findall(r"`(\w+)`", listed)) - {"scatter"}
