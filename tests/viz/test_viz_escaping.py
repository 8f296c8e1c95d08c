"""Hostile user strings in drawings: every label, scope name, cluster title,
op name and formula reaches DOT escaped, so it shows as typed and never adds
an attribute, a link or markup to the SVG."""

import shutil
import xml.etree.ElementTree as ET

import pytest

import autograd_core as ag
from autograd_core import viz
from autograd_core.ops import Op
from autograd_core.viz import dot_text, draw_graph, render_graph, render_source

# each string is written to leave a mark (document.title) if anything runs it
HOSTILE = [
    '<x> URL="javascript:document.title=1" class=<y>',
    '" URL="javascript:document.title=2" x="',
    "</script><script>document.title=3</script>",
    '<img src=x onerror="document.title=4">',
    "javascript:document.title=5",
    "a&amp;b &lt;c&gt; &#60;d",
    "x\\",
    "\\N \\G \\l \\\\ end\\",
    "{rec|ord} <port> |",
    "$\\frac{1}{2}$ $x_1$",
    "]]> <![CDATA[ <!-- -->",
    "quote ' and \" \"\"",
]
HOSTILE_IDS = [f"s{k}" for k in range(len(HOSTILE))]

# the attributes Graphviz writes into our SVG; a hostile string must add none
SVG_ATTRIBUTES = {"width", "height", "viewBox", "id", "class", "transform", "fill", "stroke", "points", "d",
                  "text-anchor", "x", "y", "font-family", "font-size", "font-weight", "font-style", "cx", "cy",
                  "rx", "ry", "stroke-width", "stroke-dasharray", "version", "preserveAspectRatio",
                  "space"}  # xml:space="preserve", from newer Graphviz


def renderers():
    found = [name for name, ok in [("dot", shutil.which("dot")), ("wasm", viz._wasm_available())] if ok]
    return found or pytest.skip("no Graphviz renderer")


def custom_op(name, formula):
    """An op declared by user code, with a hostile name and formula."""
    return Op(name, lambda x: x ** 2, inputs="x", elementwise=True, d_x=lambda x, out: 2 * x,
              formula=formula, register=False)


def hostile_graph(text):
    """A graph where `text` is a label, a scope name, a cluster title (given
    as a function), an op name and an op formula (shown on the edge of a
    tensor input)."""
    x = ag.Value([1.5, -2.0], label=text)
    with ag.name_scope(text, title=lambda: text):
        y = x * x + x
        z = custom_op(text, f"d{text}/dx = 2x").apply(y)
    z.label = text + " (out)"
    return z


def svg_elements(svg):
    """Parse the SVG (it must be well-formed XML) into its elements."""
    root = ET.fromstring(svg.encode("utf-8"))
    return list(root.iter())


def shown_texts(elements):
    return [el.text for el in elements if el.tag.endswith("}text") and el.text]


@pytest.mark.parametrize("text", HOSTILE, ids=HOSTILE_IDS)
def test_hostile_strings_show_as_typed_and_add_nothing_to_the_svg(text):
    drawing = draw_graph(hostile_graph(text), show_local_gradients=True)
    for renderer in renderers():
        svg = render_source(drawing.source, "svg", renderer).decode("utf-8")
        elements = svg_elements(svg)
        tags = {el.tag.split("}")[-1] for el in elements}
        assert tags <= {"svg", "g", "title", "polygon", "path", "ellipse", "polyline", "text"}, (renderer, tags)
        attributes = {name.split("}")[-1] for el in elements for name in el.attrib}
        assert attributes <= SVG_ATTRIBUTES, (renderer, attributes - SVG_ATTRIBUTES)
        assert "href" not in svg
        texts = shown_texts(elements)
        assert text in texts  # the box of x: its name, exactly as typed
        assert text + " (out)" in texts
        # the cluster: its name (after the last dot: dots nest scopes) and its title
        assert text.split(".")[-1] + ": " + text in texts
        assert f"d{text}/dx = 2x" in texts  # the op's formula on its edge
        assert text in [el.text for el in elements if el.get("class") == "node agc-op" for el in el.iter()]
        classes = {el.get("class") for el in elements if el.get("class")}
        assert classes <= {"graph", "cluster", "node agc-value", "node agc-op", "edge"}


def test_a_line_break_in_a_name_breaks_the_line_and_nothing_else():
    x = ag.Value(2.0, label="line one\nline <two>")
    with ag.name_scope("scope\nsecond line"):
        y = x * 3
    for renderer in renderers():
        texts = shown_texts(svg_elements(render_source(draw_graph(y).source, "svg", renderer).decode()))
        assert "line one line <two>" in texts  # in a box, a name stays on one line
        assert "scope" in texts and "second line" in texts  # a cluster title may break


def test_the_reported_scope_name_writes_no_link(tmp_path):
    x = ag.Value(2.0, label="x")
    with ag.name_scope('<x> URL="javascript:document.write(1)" class=<y>'):
        c = x * x
    with ag.name_scope("x\\"):
        d = c + 1
    svg = render_graph(d, tmp_path / "s.svg").read_text()
    assert "href=" not in svg and "URL=&quot;javascript:document" in svg  # as text only
    assert '<g id="c0" class="cluster">' in svg and "x\\" in shown_texts(svg_elements(svg))


def test_dot_text_escapes_every_special_character():
    assert dot_text('a"b') == "a&quot;b"
    assert dot_text("<b>") == "&lt;b&gt;"
    assert dot_text("&") == "&amp;"
    assert dot_text("x\\") == "x\\\\"
    assert dot_text("a\nb\r\nc\td") == "a\\nb\\nc d"
    assert dot_text("{a|b}", record=True) == "\\{a\\|b\\}"
    assert dot_text("{a|b}") == "{a|b}"  # only record boxes draw fields
    # the graphviz package would pass "<...>" through unquoted as an HTML-like label
    assert dot_text("<x>") == "&lt;x&gt;" and type(dot_text("<x>")).__name__ == "NoHtml"


@pytest.mark.parametrize("text", HOSTILE, ids=HOSTILE_IDS)
def test_hostile_strings_render_to_png_and_pdf(text, monkeypatch):
    drawing = draw_graph(hostile_graph(text), show_local_gradients=True)
    for renderer in renderers():
        if renderer == "wasm":
            monkeypatch.setenv("PATH", "")  # PNG and PDF drawn from the WebAssembly Graphviz's SVG
        assert drawing.pipe("png")[:8] == b"\x89PNG\r\n\x1a\n"
        assert drawing.pipe("pdf")[:4] == b"%PDF"
        monkeypatch.undo()
