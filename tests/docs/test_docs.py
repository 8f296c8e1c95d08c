"""The README and the pages in docs/: short, free of workflow notes, every link
leads to a file, and every example runs and computes what its comments say."""

import contextlib
import io
import os
import re
import shlex
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PAGES = [README, ROOT / "benchmarks" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# Notes about how the work was organised, which do not belong in the product:
# an HTML comment opening a section, or a parenthesised issue number.
WORKFLOW_MARKERS = re.compile(r"<!-{2}\s*section:|\(issue\s+#?\d+\)", re.IGNORECASE)
SKIPPED_DIRS = {".git", "__pycache__", ".pytest_cache", ".hypothesis", ".ipynb_checkpoints", "runs",
                "build", "dist", "node_modules", ".venv", "venv"}
BINARY_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".pdf", ".npz", ".npy", ".pt", ".zip", ".gz", ".whl",
                   ".so", ".pyc", ".ico", ".woff", ".woff2", ".wasm"}
READ_LIMIT = 5_000_000  # bytes read of any one file


def python_blocks(path):
    return re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.S)


def run_block(code, where, namespace=None):
    """exec a documented example; returns (namespace, what it printed)."""
    namespace = {} if namespace is None else namespace
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, where, "exec"), namespace)
    return namespace, printed.getvalue()


# --------------------------------------------------------------------------
# The front page
# --------------------------------------------------------------------------
def test_readme_is_a_front_page():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines; move reference material to docs/"
    text = "\n".join(lines)
    for heading in ["## Quick start", "## Read the engine in this order"]:
        assert heading in text
    # no dated diary on the front page
    assert not re.search(r"\b20\d\d-\d\d-\d\d\b|\d\d:\d\d UTC|this morning|this afternoon", text)


def test_readme_test_command_is_the_one_ci_runs():
    text = README.read_text(encoding="utf-8")
    quick_start = re.search(r"## Quick start\n+```bash\n(.*?)```", text, flags=re.S).group(1)
    commands = [line.split("#", 1)[0].strip() for line in quick_start.splitlines() if line.strip()]
    assert len(commands) == 2
    assert commands[0].startswith("pip install -e .") and "autograd-core train" in commands[0]
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
    assert commands[1] == 'pip install -e ".[test]" && python -m pytest -q'
    assert commands[1] in ci_lines


def test_readme_says_how_long_the_suite_takes_and_how_to_turn_on_the_pytorch_tests():
    text = " ".join(README.read_text(encoding="utf-8").split())
    ci_pin = re.search(r'pip install -q "(torch==[^"]+)"', (ROOT / ".ci" / "run").read_text()).group(1)
    assert f"`pip install {ci_pin}`" in text  # the version CI installs
    assert re.search(r"test suite takes about [\w ]+ minutes", text)
    assert re.search(r"About \d+ of its tests check the numbers against PyTorch and skip without it", text)


def test_readme_reading_order_links_the_engine_files():
    text = README.read_text(encoding="utf-8")
    order = text[text.index("## Read the engine in this order"):]
    order = order[:order.index("\n## ", 1)]
    positions = [order.index(f"](autograd_core/{name})") for name in ("engine.py", "ops.py", "stepper.py")]
    assert positions == sorted(positions)
    assert "Value" in order and "sum_to_shape" in order and "BackpropStepper" in order


def test_no_file_in_the_repository_holds_a_workflow_marker():
    offenders = []
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in SKIPPED_DIRS and not d.endswith(".egg-info")]
        for name in files:
            path = Path(folder) / name
            if path.suffix.lower() in BINARY_SUFFIXES:
                continue
            with open(path, "rb") as file:
                data = file.read(READ_LIMIT)
            if b"\0" in data:
                continue
            for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
                if WORKFLOW_MARKERS.search(line):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:80]}")
    assert offenders == []


def test_the_marker_pattern_finds_markers():
    # the check above can fail: these are the markers it looks for
    # (written in pieces, or this file would hold the markers it forbids)
    assert WORKFLOW_MARKERS.search("<!-" + "- section: cli -->")
    assert WORKFLOW_MARKERS.search("the CLI (iss" + "ue 12)")
    assert not WORKFLOW_MARKERS.search("see the open issues on the tracker")


def _anchor(heading):
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to dashes."""
    heading = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return heading.replace(" ", "-")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_leads_to_a_file_of_the_repository(page):
    text = page.read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    for link in links:
        assert not link.startswith(("http://", "https://", "/")), f"{page.name}: {link} should be a relative path"
        target, _, anchor = link.partition("#")
        path = (page.parent / target).resolve() if target else page
        assert path.is_file(), f"{page.relative_to(ROOT)}: {link} does not exist"
        assert ROOT in path.parents, f"{page.relative_to(ROOT)}: {link} leaves the repository"
        if anchor:
            headings = re.findall(r"^#+ (.*)$", path.read_text(encoding="utf-8"), flags=re.M)
            assert anchor in {_anchor(h) for h in headings}, f"{page.name}: no heading for #{anchor}"


def test_every_docs_page_is_linked_from_the_readme():
    text = README.read_text(encoding="utf-8")
    for page in (ROOT / "docs").glob("*.md"):
        assert f"](docs/{page.name})" in text, f"docs/{page.name} is not linked from README.md's Documentation list"
    assert "](benchmarks/README.md)" in text


# --------------------------------------------------------------------------
# The README's examples
# --------------------------------------------------------------------------
def test_readme_scalar_example_gives_the_lectures_gradients():
    block = next(b for b in python_blocks(README) if "L = (a * b + c) * f" in b)
    namespace, printed = run_block(block, "README scalar example")
    # L = (a*b + c) * f at a=2, b=-3, c=10, f=-2: dL/da = b f, dL/db = a f, dL/dc = f, dL/df = a b + c
    assert [float(namespace[k].grad) for k in "abcf"] == [6.0, -4.0, -2.0, 4.0]
    assert printed.split() == ["6.0", "-4.0", "-2.0", "4.0"]


def test_readme_tensor_example_gives_the_hand_derived_gradients():
    block = next(b for b in python_blocks(README) if "X @ W" in b)
    namespace, printed = run_block(block, "README tensor example")
    X, W = namespace["X"].data, namespace["W"].data
    hidden = np.tanh(X @ W)  # bias is zero
    upstream = (1 - hidden**2) / hidden.size  # d mean / d t times d tanh / d z
    np.testing.assert_allclose(namespace["W"].grad, X.T @ upstream, rtol=1e-12)
    np.testing.assert_allclose(namespace["bias"].grad, upstream.sum(axis=0), rtol=1e-12)
    assert printed.strip() == "(3, 2) (2,)"


def test_readme_stepper_example_explains_the_last_step_and_writes_the_player(tmp_path, monkeypatch):
    block = next(b for b in python_blocks(README) if "BackpropStepper(L)" in b)
    monkeypatch.chdir(tmp_path)
    _, printed = run_block(block, "README stepper example")
    # the last step sends dL/de = f = -2 back to a and b: -2 * b and -2 * a
    assert "dL/da += dL/de * de/da = -2.0 * -3.0 = 6.0" in printed
    assert "dL/db += dL/de * de/db = -2.0 * 2.0 = -4.0" in printed
    page = (tmp_path / "backprop.html").read_text(encoding="utf-8")
    assert "<svg" in page and "<script" in page


def test_readme_graph_command_draws_the_neuron(tmp_path, capsys):
    from autograd_core import cli

    text = README.read_text(encoding="utf-8")
    (command,) = re.findall(r"^autograd-core graph (.*)$", text, flags=re.M)
    argv = shlex.split(command)
    argv[argv.index("-o") + 1] = str(tmp_path / argv[argv.index("-o") + 1])
    assert cli.main(["graph", *argv]) == 0
    # o = tanh(x1 w1 + x2 w2 + b) = tanh(0.8813...) = 1/sqrt(2); do/dx1 = (1 - o^2) w1 = -1.5
    printed = capsys.readouterr().out
    assert "o = 0.707107" in printed and "do/dx1 = -1.5" in printed
    assert "</svg>" in (tmp_path / "neuron.svg").read_text(encoding="utf-8")


# --------------------------------------------------------------------------
# The examples of the docs pages (the engine's, optim's, the CLI's and the
# drawings' examples are run by tests beside their code)
# --------------------------------------------------------------------------
def test_nn_page_example_trains_iris_and_saves(tmp_path, monkeypatch):
    import nn

    (block,) = python_blocks(ROOT / "docs" / "nn.md")
    monkeypatch.chdir(tmp_path)
    namespace, _ = run_block(block, "docs/nn.md example")
    assert namespace["accuracy"] > 0.9  # three classes: chance is 1/3
    loaded = nn.load(tmp_path / "iris.npz")
    for name, value in namespace["model"].state_dict().items():
        np.testing.assert_array_equal(np.asarray(getattr(value, "data", value)), loaded[name])


def test_cli_page_python_run_reports_the_kept_model(tmp_path, monkeypatch):
    block = next(b for b in python_blocks(ROOT / "docs" / "cli.md") if "TrainConfig" in b)
    monkeypatch.chdir(tmp_path)
    namespace, _ = run_block(block, "docs/cli.md run example")
    result = namespace["result"]
    assert (tmp_path / "runs" / "moons").is_dir()
    assert Path(namespace["picture"]).is_file()
    # the accuracy the page shows is the kept model's: measured again here on the validation part
    split = result.split
    from autograd_core import Value, no_grad

    result.model.eval()
    with no_grad():
        predicted = result.model(Value(split.X_val, requires_grad=False)).data.argmax(axis=1)
    assert namespace["kept_accuracy"] == pytest.approx(float((predicted == split.y_val).mean()), abs=1e-12)
    kept_epoch = namespace["kept_epoch"] or len(result.history)
    assert result.history[kept_epoch - 1]["val_accuracy"] == pytest.approx(namespace["kept_accuracy"], abs=1e-12)


def test_cli_page_says_which_weights_and_batch_each_picture_shows():
    """graph.svg: the kept weights on the first GRAPH_EXAMPLES training examples;
    backprop.html: the initial weights on epoch 1's first mini-batch (both
    checked against the run in tests/app/test_app_run_folder.py)."""
    from autograd_core.app.run_folder import GRAPH_EXAMPLES

    page = " ".join((ROOT / "docs" / "cli.md").read_text(encoding="utf-8").split())
    graph = page[page.index("- `graph.svg` is drawn"):page.index("- `backprop.html` is recorded")]
    player = page[page.index("- `backprop.html` is recorded"):]
    assert "the weights the run kept" in graph
    assert f"the first {GRAPH_EXAMPLES} examples of the training part" in graph
    assert "before the first update" in player and "the weights as initialised" in player
    assert "the first mini-batch of epoch 1" in player


def test_cli_page_train_commands_run_as_pasted(tmp_path):
    """Each `autograd-core train` line of docs/cli.md, with its files found from the
    repository's root; run for one epoch into a temporary folder."""
    from autograd_core import cli

    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    commands = re.findall(r"^autograd-core train (.*)$", text, flags=re.M)
    assert len(commands) >= 3
    for number, command in enumerate(commands):
        argv = shlex.split(command.split(" | ")[0])
        if "--csv" in argv:
            path = ROOT / argv[argv.index("--csv") + 1]
            assert path.is_file(), f"docs/cli.md names {path}, which is not shipped"
            argv[argv.index("--csv") + 1] = str(path)
        argv = [arg for arg in argv if arg not in ("--jsonl",)]
        out = tmp_path / f"run{number}"
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            status = cli.main(["train", *argv, "--epochs", "1", "--quiet", "--out", str(out)])
        assert status == 0, command
        assert (out / "model.npz").is_file()


def test_shipped_iris_csv_is_where_the_cli_page_says():
    import nn.data

    assert (Path(nn.data.__file__).with_name("iris.csv")).resolve() == (ROOT / "nn" / "data" / "iris.csv").resolve()
