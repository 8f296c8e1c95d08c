"""Drawing the computation graph, in five rooms, in reading order:

- :mod:`.text`: numbers, arrays and formulas as the short text a box shows;
- :mod:`.walk`: the Values behind a root, oldest first, and their names;
- :mod:`.fold`: big graphs folded, repeated structure in one summary box;
- :mod:`.drawing`: the DOT drawing built from them (``draw_graph``,
  ``render_graph``);
- :mod:`.render`: DOT text laid out as SVG, PNG or PDF, by the system ``dot``
  or by Graphviz in WebAssembly.

Everything a caller needs is importable from here (``from autograd_core.viz
import draw_graph``, ``viz.render_source``).

>>> from autograd_core import Value, viz
>>> a = Value(2.0, label="a")
>>> "data 2.0" in viz.draw_graph(a * 3).source
True
"""

from .drawing import (
    Layout,
    check_layout_options,
    dot_text,
    draw_graph,
    draw_with_layout,
    new_drawing,
    render_graph,
)
from .fold import fold, summary_lines
from .render import (
    CONVERTED_FORMATS,
    IMAGE_FONT,
    INSTALL_HINT,
    WASM_FORMATS,
    GraphDrawing,
    RendererNotFoundError,
    dot_in_font,
    render_source,
    renderer_name,
    svg_for_image,
    svg_to_image,
    write_image,
)
from .text import (
    INFIX,
    NO_GRAD,
    NOT_COMPUTED,
    describe_array,
    format_number,
    grad_lines,
    grad_text,
    op_symbol,
    rule_for_input,
    shape_text,
)
from .walk import collect_values, display_names, kind_of
from .render import _DOT_STRING, _font_folder, _wasm_available  # noqa: F401  (the tests read these)

__all__ = ["draw_graph", "render_graph", "renderer_name", "RendererNotFoundError", "GraphDrawing"]
