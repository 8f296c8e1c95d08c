"""The course notebooks run top to bottom in a fresh Jupyter kernel.

Every worked number in a notebook is checked there with an ``assert``, so a
notebook that drifts from the engine fails here. The notebooks are committed
with their outputs; the second test makes sure their cells still match the
sources in ``notebooks/source/`` they are built from (``python notebooks/build.py``).
"""

import importlib.util
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOK_FILES = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def _load_build():
    spec = importlib.util.spec_from_file_location("notebooks_build", NOTEBOOKS / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = _load_build()


def test_there_is_a_notebook_for_every_source():
    sources = {p.stem for p in build.sources()}
    notebooks = {p.stem for p in NOTEBOOK_FILES}
    assert sources, "no notebook sources found in notebooks/source/"
    assert sources == notebooks


@pytest.mark.parametrize("source", build.sources(), ids=lambda p: p.stem)
def test_notebook_matches_its_source(source):
    assert build.out_of_date(source) == []
    nbformat.validate(nbformat.read(NOTEBOOKS / f"{source.stem}.ipynb", as_version=4))


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOK_FILES, ids=lambda p: p.stem)
def test_notebook_runs_in_a_fresh_kernel(path):
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(path, as_version=4)
    for package in nb.metadata.get("requires", []):  # optional packages (notebook 12: torch, onnx)
        pytest.importorskip(package)
    for cell in nb.cells:  # run from the source alone, not from the saved outputs
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    try:
        build.execute(nb, cwd=NOTEBOOKS, timeout=120)
    except CellExecutionError as error:
        pytest.fail(f"{path.name} failed:\n{error}", pytrace=False)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert errors == []


def test_a_failing_assert_in_a_notebook_fails_the_run():
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 0.627"), nbformat.v4.new_code_cell("assert round(x, 2) == 0.62")]
    with pytest.raises(CellExecutionError, match="AssertionError"):
        build.execute(nb, cwd=NOTEBOOKS, timeout=60)


def test_make_reproducible_removes_addresses_and_random_player_ids():
    nb = nbformat.v4.new_notebook()
    out = nbformat.v4.new_output(
        "execute_result",
        data={"text/plain": "<GraphDrawing at 0x7f36b5714890>", "text/html": '<div id="agc0c1506398a">#agc0c1506398a'},
    )
    nb.cells = [nbformat.v4.new_code_cell("x", outputs=[out])]
    data = build.make_reproducible(nb).cells[0].outputs[0]["data"]
    assert data["text/plain"] == "<GraphDrawing>"
    assert data["text/html"] == '<div id="agc0000000000">#agc0000000000'


def test_parse_cells_splits_markdown_and_code():
    text = "'''module docstring'''\n# %% [markdown]\n# # Title\n#\n# text\n\n# %%\nx = 1\n\n# %%\n\n"
    assert build.parse_cells(text) == [("markdown", "# Title\n\ntext"), ("code", "x = 1")]


def test_make_reproducible_joins_printed_chunks():
    nb = nbformat.v4.new_notebook()
    chunks = [nbformat.v4.new_output("stream", name="stdout", text=t) for t in ("a\n", "b\n")]
    chunks.append(nbformat.v4.new_output("stream", name="stderr", text="warning\n"))
    nb.cells = [nbformat.v4.new_code_cell("print('a'); print('b')", outputs=chunks)]
    outputs = build.make_reproducible(nb).cells[0].outputs
    assert [(o.name, o.text) for o in outputs] == [("stdout", "a\nb\n"), ("stderr", "warning\n")]
