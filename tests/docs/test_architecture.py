"""The rooms of the house (docs/architecture.md): files a reader can find their
way in. Sizes are held here so that a room that grows too big is noticed."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("autograd_core", "nn", "optim")


def _modules():
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def _lines_of_code(source_lines, function):
    """Non-blank, non-comment lines of a function, its docstring left out."""
    body = function.body
    doc = None
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        doc = range(body[0].lineno, body[0].end_lineno + 1)
    count = 0
    for number in range(function.lineno, function.end_lineno + 1):
        text = source_lines[number - 1].strip()
        if text and not text.startswith("#") and not (doc and number in doc):
            count += 1
    return count


def test_no_module_is_over_1000_lines():
    long = {str(p.relative_to(ROOT)): n for p in _modules() if (n := len(p.read_text(encoding="utf-8").splitlines())) > 1000}
    assert long == {}


def test_at_most_three_functions_over_60_lines_of_code_and_none_over_100():
    sizes = {}
    for path in _modules():
        source = path.read_text(encoding="utf-8")
        lines = source.splitlines()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = _lines_of_code(lines, node)
                if n > 60:
                    sizes[f"{path.relative_to(ROOT)}:{node.name}"] = n
    assert len(sizes) <= 3, sizes
    assert all(n <= 100 for n in sizes.values()), sizes


def test_the_tests_mirror_the_packages():
    loose = [p.name for p in (ROOT / "tests").glob("test_*.py")]
    assert len(loose) <= 5, loose


def test_the_architecture_page_names_every_module_of_the_engine():
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    engine = ROOT / "autograd_core"
    missing = [str(p.relative_to(engine)) for p in engine.rglob("*.py")
               if p.name not in ("__init__.py", "__main__.py") and p.name not in page]
    assert missing == []
