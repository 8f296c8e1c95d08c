"""Backpropagation one step at a time, and a player to watch it in a notebook.

:class:`BackpropStepper` runs the engine's own backward loop once, with its
``on_node`` hook, and keeps what happened at every node: the upstream
gradient, and for each input the local gradient recorded on the forward pass
and the product added to that input's grad. The steps therefore come in the
order, and with the numbers, of ``backward()`` itself. With
``mode="forward"`` it steps through the forward pass instead: each node's
value in the order it was computed.

In Jupyter the stepper displays as a player (its ``_repr_html_``): the graph
with the current node and edges highlighted, the explanation under it,
first / previous / next / last buttons, a slider and the arrow keys.
``save_html(path)`` writes the same player as a standalone page. The page is
self-contained: one inline SVG and a small inline script, nothing fetched.
"""

from __future__ import annotations

import html
import json
import re
import uuid
from pathlib import Path

import numpy as np

from . import engine
from ._files import atomic_write
from .engine import Value
from .viz import (
    INFIX,
    NO_GRAD,
    NOT_COMPUTED,
    check_layout_options,
    collect_values,
    describe_array,
    display_names,
    draw_with_layout,
    format_number,
    grad_lines,
    render_source,
    rule_for_input,
)

__all__ = ["BackpropStepper", "BackwardStep", "ForwardStep"]

_ASSETS = Path(__file__).resolve().parent


def _copy(x):
    return x.copy() if isinstance(x, np.ndarray) else x


def _is_scalar(*arrays):
    return all(np.ndim(a) == 0 for a in arrays)


def expression(node, names, with_values=False, digits=4):
    """How `node` was computed, as a lecture writes it: ``a * b``, ``tanh(n)``;
    with numbers instead of names when `with_values` (scalars only)."""
    def show(inp):
        if with_values and inp.ndim == 0:
            return format_number(inp._data, digits)
        return names[id(inp)]

    op = node._op.name
    inputs = node._inputs
    if op == "pow" and len(inputs) == 1 and "exponent" in node._params:
        return f"{show(inputs[0])} ** {format_number(node._params['exponent'], digits).removesuffix('.0')}"
    if op in INFIX and len(inputs) == 2:
        return f"{show(inputs[0])} {INFIX[op]} {show(inputs[1])}"
    if op == "neg":
        return f"-{show(inputs[0])}"
    return f"{op}({', '.join(show(inp) for inp in inputs)})"


class _Step:
    """What both kinds of step share: their position, their node, their stepper."""

    __slots__ = ("index", "node", "_stepper")

    def __repr__(self):
        return f"<{type(self).__name__} {self.index + 1}: {self._stepper.names[id(self.node)]}>"


class BackwardStep(_Step):
    """One node of the backward pass.

    ``node`` passes its gradient ``upstream`` (dL/dnode, complete by now) back
    to its inputs; ``contributions`` holds one ``(input, local_gradient,
    product)`` triple per input that needs a gradient: ``product`` is what is
    added to that input's grad. ``local_gradient`` is d node / d input as
    recorded on the forward pass (for a matrix product: the other operand;
    None for other structural ops such as sum or reshape, whose rule is
    ``node.op`` 's formula).

    >>> a = Value(2.0, label="a"); b = Value(-3.0, label="b")
    >>> e = a * b; e.label = "e"
    >>> step = BackpropStepper(e)[0]
    >>> [(x.label, float(local), float(product)) for x, local, product in step.contributions]
    [('a', -3.0, -3.0), ('b', 2.0, 2.0)]
    """

    __slots__ = ("upstream", "contributions", "input_indices")

    def __init__(self, index, node, upstream, contributions, input_indices, stepper):
        self.index = index
        self.node = node
        self.upstream = upstream
        self.contributions = contributions
        self.input_indices = input_indices
        self._stepper = stepper

    def explain(self):
        """The step in words and numbers, e.g.
        ``dL/da += dL/de * de/da = -2.0 * -3.0 = 6.0``."""
        return self._stepper._explain_backward(self)


class ForwardStep(_Step):
    """One operation of the forward pass: ``node`` computed from ``inputs``;
    ``value`` is its data.

    >>> a = Value(2.0, label="a"); b = Value(-3.0, label="b")
    >>> e = a * b; e.label = "e"
    >>> BackpropStepper(e, mode="forward")[0].explain()
    'Step 1 of 1: e = a * b = 2.0 * -3.0 = -6.0'
    """

    __slots__ = ("inputs", "value")

    def __init__(self, index, node, stepper):
        self.index = index
        self.node = node
        self.inputs = node._inputs
        self.value = node._data
        self._stepper = stepper

    def explain(self):
        """The step in words and numbers, e.g. ``e = a * b = 2.0 * -3.0 = -6.0``."""
        return self._stepper._explain_forward(self)


class BackpropStepper:
    """The backward pass from `root`, one node at a time, in the engine's order.

    Creating the stepper runs the engine's backward loop once (freeing the
    graph afterwards unless ``retain_graph=True``, as ``backward()`` does) and
    records every step; ``.grad`` is written when you step past the last step
    (or call ``finish()``), and is then exactly what ``root.backward()`` would
    have left. Iterate over it, index it, or call ``step()`` repeatedly.
    ``mode="forward"`` steps through the forward pass instead (no backward is
    run and no grad is touched).

    In a notebook it displays as an interactive player; ``save_html(path)``
    writes that player to a self-contained HTML file.

    >>> a = Value(2.0, label="a"); b = Value(-3.0, label="b")
    >>> c = Value(10.0, label="c"); f = Value(-2.0, label="f")
    >>> e = a * b; e.label = "e"; d = e + c; d.label = "d"
    >>> L = d * f; L.label = "L"
    >>> stepper = BackpropStepper(L)
    >>> print(stepper[-1].explain().splitlines()[1])
    dL/da += dL/de * de/da = -2.0 * -3.0 = 6.0
    >>> for step in stepper: pass
    >>> a.grad
    np.float64(6.0)
    """

    def __init__(self, root, grad=None, retain_graph=False, mode="backward", digits=4, max_nodes=200,
                 direction="LR"):
        if not isinstance(root, Value):
            raise TypeError(f"BackpropStepper: root must be a Value, got {type(root).__name__}"
                            f"{getattr(root, 'not_a_value_hint', '')}")
        if mode not in ("backward", "forward"):
            raise ValueError(f"BackpropStepper: mode must be 'backward' or 'forward', got {mode!r}")
        check_layout_options("BackpropStepper", direction, max_nodes, digits)
        self.root = root
        self.mode = mode
        self.digits = digits
        self.max_nodes = max_nodes
        self.direction = direction
        self.position = 0  # how many steps have been taken with step()
        self._finished = False
        self._gradients = None
        self.values = collect_values([root])
        self.names = display_names(self.values, root)
        if mode == "forward":
            self.steps = [ForwardStep(k, v, self) for k, v in enumerate(v for v in self.values if v._op is not None)]
            return
        if not root.requires_grad:
            raise RuntimeError(
                "BackpropStepper: the root does not require grad, so no graph leads to it "
                "(it was made from constants or inside no_grad()); mode='forward' still steps through it"
            )
        self.seed = engine._seed_gradient(root, grad, "BackpropStepper")
        self.previous_grads = {id(v): _copy(v.grad) for v in self.values if v._op is None and v.grad is not None}
        self.steps = []
        self._gradients = engine.backpropagate([root], [self.seed], retain_graph, on_node=self._record)

    # ---- recording (called by the engine's loop after each node) ----------
    def _record(self, node, upstream, shares):
        """Called by the engine's backward loop after each node: keep what
        happened there, with each input's local gradient as the op gives it
        for display (None where only the formula can say it)."""
        contributions, indices = [], []
        position = {id(inp): [] for inp, _ in shares}
        for i, inp in enumerate(node._inputs):
            if id(inp) in position:
                position[id(inp)].append(i)
        for inp, share in shares:
            i = position[id(inp)].pop(0)  # an input used twice (x * x) gets one share per use
            contributions.append((inp, node._op.local_gradient(node, i), _copy(share)))
            indices.append(i)
        self.steps.append(BackwardStep(len(self.steps), node, _copy(upstream), contributions, indices, self))

    # ---- stepping ----------------------------------------------------------
    def __len__(self):
        return len(self.steps)

    def __getitem__(self, index):
        return self.steps[index]

    def __iter__(self):
        for step in self.steps:
            yield step
        self.finish()

    def step(self):
        """Take the next step and return it (None when there are no more).
        Taking the last one writes the grads."""
        if self.position >= len(self.steps):
            self.finish()
            return None
        step = self.steps[self.position]
        self.position += 1
        if self.position == len(self.steps):
            self.finish()
        return step

    def finish(self):
        """Write every ``.grad`` as ``root.backward()`` would (once; forward
        mode writes nothing). Returns the stepper."""
        if self.mode == "backward" and not self._finished:
            self._finished = True
            engine._store_gradients(self._gradients.items(), [self.seed])
        return self

    def __repr__(self):
        return f"<BackpropStepper {self.mode}: {len(self.steps)} steps to {self.names[id(self.root)]}>"

    # ---- words -------------------------------------------------------------
    def _d(self, value):
        return f"d{self.names[id(self.root)]}/d{self.names[id(value)]}"

    def _num(self, x):
        return format_number(x, self.digits)

    def _arr(self, x):
        return describe_array(x, self.digits, small=6, one_line=True)[0]  # a sentence keeps to a few numbers

    def _explain_backward(self, step):
        names, node, up = self.names, step.node, step.upstream
        y = names[id(node)]
        receivers = " and ".join(names[id(inp)] for inp, _, _ in step.contributions) or "no input that needs a grad"
        header = f"Step {step.index + 1} of {len(self.steps)}: {y} = {expression(node, names)}; "
        if node is self.root:
            # the seed on a line of its own: every product below starts from it
            lines = [header + f"its gradient goes back to {receivers}", self._seed_line(up)]
        else:
            upstream_text = self._num(up) if np.ndim(up) == 0 else self._arr(up)
            lines = [header + f"{self._d(node)} = {upstream_text} goes back to {receivers}"]
        received, totals, operations = self._receipt_counts()
        for (inp, local, product), i in zip(step.contributions, step.input_indices):
            x = names[id(inp)]
            rule = rule_for_input(node._op, i, len(node._inputs))
            elementwise = node._op.elementwise
            if local is not None and elementwise and _is_scalar(up, local, product, inp._data):
                line = (f"{self._d(inp)} += {self._d(node)} * d{y}/d{x} = "
                        f"{self._num(up)} * {self._num(local)} = {self._num(product)}")
            elif local is not None and elementwise:
                shapes = f"{np.shape(up)} * {np.shape(local)}"
                if np.shape(product) != np.broadcast_shapes(np.shape(up), np.shape(local)):
                    shapes += f", summed back to {inp.shape}"
                line = (f"{self._d(inp)} += {self._d(node)} * d{y}/d{x}   elementwise, {rule}; {shapes}\n"
                        f"      = {self._arr(product)}")
            elif _is_scalar(product):
                line = f"{self._d(inp)} += {self._num(product)}   (rule: {rule})"
            else:
                where = ""
                if node._op.output is not None:  # the formula names the operands with letters of its own (C = A @ B)
                    where = " with " + ", ".join(
                        f"{letter} = {names[id(v)]} {v.shape}" for letter, v in zip(node._op.inputs, node._inputs)
                    ) + f", {node._op.output} = {y}"
                line = (f"{self._d(inp)} += rule {rule}{where}; {self._d(node)} {np.shape(up)} -> {inp.shape}\n"
                        f"      = {self._arr(product)}")
            key = (step.index, id(inp), i)
            uses = totals[id(inp)]
            if uses > 1:
                running = received[key]
                shown = self._num(running) if np.ndim(running) == 0 else self._arr(running)
                count = operations[id(inp)]
                used = (f"{x} is used by {uses} operations" if count == uses else
                        f"{x} is used {uses} times, by {count} operation{'s' if count > 1 else ''}")
                line += (f"\n      ({used}: this is contribution {self._receipt_number[key]} of {uses}; "
                         f"{self._d(inp)} so far = {shown})")
            lines.append(line)
        if step.index == len(self.steps) - 1:
            lines.append("Done: every gradient is complete (stepping past here writes them into .grad).")
        return "\n".join(lines)

    def _seed_line(self, seed):
        """``dL/dL = 1`` and where it comes from: the first line of the first step."""
        R = self.names[id(self.root)]
        if np.ndim(seed) == 0 and float(seed) == 1:
            return f"{self._d(self.root)} = 1   (the seed: {R} moves one for one with itself)"
        shown = self._num(seed) if np.ndim(seed) == 0 else self._arr(seed)
        return f"{self._d(self.root)} = {shown}   (the seed: the grad given to backward)"

    def _receipt_counts(self):
        """For each contribution: the input's running gradient after it; for
        each input, how many contributions it receives in total (its uses)
        and from how many operations (cached). ``y = x*x + x`` uses x three
        times, in two operations."""
        if getattr(self, "_receipts", None) is None:
            running, received, totals, number, steps_of = {}, {}, {}, {}, {}
            for step in self.steps:
                for (inp, _, product), i in zip(step.contributions, step.input_indices):
                    key = id(inp)
                    running[key] = product if key not in running else running[key] + product
                    totals[key] = totals.get(key, 0) + 1
                    steps_of.setdefault(key, set()).add(step.index)
                    received[(step.index, key, i)] = running[key]
                    number[(step.index, key, i)] = totals[key]
            operations = {key: len(found) for key, found in steps_of.items()}
            self._receipts = (received, totals, operations)
            self._receipt_number = number
        return self._receipts

    def _explain_forward(self, step):
        node, names = step.node, self.names
        y = names[id(node)]
        header = f"Step {step.index + 1} of {len(self.steps)}: "
        if all(inp.ndim == 0 for inp in node._inputs) and node.ndim == 0:
            return (header + f"{y} = {expression(node, names)} = "
                    f"{expression(node, names, with_values=True, digits=self.digits)} = {self._num(node._data)}")
        shapes = ", ".join(f"{names[id(inp)]} {inp.shape}" for inp in node._inputs)
        return header + f"{y} = {expression(node, names)}   from {shapes}\n      = {self._arr(node._data)}"

    # ---- the player --------------------------------------------------------
    def _value_text(self, value, data):
        """The last field of a box in the player (lines joined by newlines):
        its data (forward) or grad (backward) at this point of the pass."""
        if self.mode == "forward":
            if data is None:
                return "data: not computed yet"
            lines = describe_array(data, self.digits)
            return "\n".join(["data " + lines[0]] + lines[1:])
        if not value.requires_grad:
            return NO_GRAD
        if data is None:
            return NOT_COMPUTED
        return "\n".join(grad_lines(data, self.digits))

    def _frames(self):
        """Frame 0 (before the first step) and one frame per step: the ids to
        highlight, the text changes of the boxes, and the explanation.
        Element ids are relative to the drawing's prefix."""
        values = self.values
        if self.mode == "forward":
            state = {id(v): (v._data if v._op is None else None) for v in values}
            intro = ("Forward pass: the inputs and parameters (blue) are given; each step computes one "
                     "operation from values already known, in the order the program ran them.")
            frames = [{"c": [], "r": [], "e": [], "t": {}, "x": intro}]
            for step in self.steps:
                node = step.node
                state[id(node)] = node._data
                frames.append({"c": [("box", node), ("op", node)], "r": [("box", inp) for inp in node._inputs],
                               "e": [("in", node, i) for i in range(len(node._inputs))] + [("out", node)],
                               "t": {id(node): self._value_text(node, node._data)}, "x": step.explain()})
            return state, frames
        R = self.names[id(self.root)]
        previous = self.previous_grads
        state = {id(v): previous.get(id(v)) for v in values}
        for v in values:
            if v._op is not None:
                state[id(v)] = None
        state[id(self.root)] = self.seed if id(self.root) not in previous else previous[id(self.root)] + self.seed
        intro = (f"Backward pass from {R}. Every grad starts as not computed; the start is "
                 f"d{R}/d{R} = 1 ({R} moves one for one with itself). Each step takes a node whose gradient is "
                 f"complete and passes it back to its inputs: upstream gradient times local gradient.")
        if previous:
            intro += (f"\nNote: {', '.join(self.names[k] for k in previous)} already held a grad from an earlier "
                      f"backward(); leaves add to it (call zero_grad() first to start from nothing).")
        frames = [{"c": [], "r": [("box", self.root)], "e": [], "t": {id(self.root): self._value_text(self.root, state[id(self.root)])},
                   "x": intro}]
        for step in self.steps:
            texts = {}
            for inp, _, product in step.contributions:
                state[id(inp)] = product if state[id(inp)] is None else state[id(inp)] + product
                texts[id(inp)] = self._value_text(inp, state[id(inp)])
            node = step.node
            frames.append({"c": [("box", node), ("op", node)], "r": [("box", inp) for inp, _, _ in step.contributions],
                           "e": [("in", node, i) for i in step.input_indices] + [("out", node)],
                           "t": texts, "x": step.explain()})
        return state, frames

    def player_html(self, standalone=False, caption=None):
        """The player as HTML: a fragment for a notebook, or a whole page.
        `caption` is plain text shown under the title (escaped: it may say
        anything, e.g. which training step was recorded)."""
        prefix = "agc" + uuid.uuid4().hex[:10]
        final_state, frames = self._frames()
        # every text each box will show, so the layout makes room for the widest
        texts_of = {}
        initial_texts = {}
        for v in self.values:
            if self.mode == "forward" or v.requires_grad:
                initial = self._value_text(v, (v._data if v._op is None else None) if self.mode == "forward"
                                           else (self.previous_grads.get(id(v)) if v._op is None else None))
                initial_texts[id(v)] = initial
                texts_of[id(v)] = [initial]
        for frame in frames:
            for key, text in frame["t"].items():
                texts_of.setdefault(key, []).append(text)
        # a box's last field gets as many lines as its longest text, each as wide as its widest line
        line_count = {key: max(text.count("\n") + 1 for text in texts) for key, texts in texts_of.items()}
        widest = {key: max((line for text in texts for line in text.split("\n")), key=len)
                  for key, texts in texts_of.items()}
        graph, layout = draw_with_layout(self.root, self.direction, show_grads=self.mode == "backward",
                                         max_nodes=self.max_nodes, digits=self.digits, id_prefix=prefix + "_",
                                         last_field={key: [widest[key]] * line_count[key] for key in widest})
        svg = render_source(graph.source, "svg").decode("utf-8")
        dynamic = {key: layout.box[key] for key in widest if key in layout.individual}

        def lines_of(key, text):
            """{element id: line} for the text elements of the box's last field."""
            return dict(zip(_line_ids(dynamic[key], line_count[key]), _centred_lines(text, line_count[key])))

        final = {key: lines_of(key, self._value_text(v, final_state[id(v)])) for v in self.values
                 for key in [id(v)] if key in dynamic}
        svg = _tag_dynamic_texts(svg, {dynamic[key]: lines for key, lines in final.items()})
        svg = re.sub(r"<title>[^<]*</title>\n?", "", svg)

        def element(ref):
            kind, value = ref[0], ref[1]
            if kind == "box":
                return layout.box.get(id(value))
            if kind == "op":
                return layout.op_node.get(id(value))
            if kind == "out":
                return layout.result_edge.get(id(value))
            return layout.input_edge.get((id(value), ref[2]))

        data = {
            "initial": {k: line for key in dynamic for k, line in lines_of(key, initial_texts[key]).items()},
            "frames": [
                {"c": sorted({e for e in map(element, f["c"]) if e}), "r": sorted({e for e in map(element, f["r"]) if e}),
                 "e": sorted({e for e in map(element, f["e"]) if e}),
                 "t": {k: line for key, text in f["t"].items() if key in dynamic
                       for k, line in lines_of(key, text).items()}, "x": f["x"]}
                for f in frames
            ],
        }
        svg = svg[svg.find("<svg"):]  # natural size: the player scrolls to the current step
        return _player_page(prefix, svg, data, self, standalone, caption)

    def _repr_html_(self):
        return self.player_html(standalone=False)

    def save_html(self, path, caption=None):
        """Write the player to `path` as a self-contained HTML page (nothing is
        fetched when it is opened); return the Path. `caption`, plain text, is
        shown under the title.

        >>> import tempfile, pathlib
        >>> from autograd_core import Value
        >>> x = Value(2.0, label="x"); y = x * x
        >>> page = BackpropStepper(y).save_html(pathlib.Path(tempfile.mkdtemp()) / "p.html", caption="a <b> & c")
        >>> "a &lt;b&gt; &amp; c" in page.read_text()
        True
        """
        return atomic_write(path, self.player_html(standalone=True, caption=caption), make_parents=True)


def _line_ids(box_id, count):
    """The element ids of the lines of a box's last field: box id + 't' for the
    first, + 't1', 't2', ... for the others."""
    return [f"{box_id}t{k or ''}" for k in range(count)]


def _centred_lines(text, count):
    """`text` in `count` lines, centred vertically (blank lines around it)."""
    lines = text.split("\n")
    top = (count - len(lines)) // 2
    return [""] * top + lines + [""] * (count - len(lines) - top)


_TEXT = re.compile(r"<text\b([^>]*)>.*?</text>", flags=re.S)


def _tag_dynamic_texts(svg, final_lines):
    """Give the text elements of the last field of each listed box their ids
    (see _line_ids), so the player's script can change them, and show the
    final state meanwhile. `final_lines`: {box id: {element id: line}}."""
    def retag(match):
        box_id, classes, body = html.unescape(match.group(1)), match.group(2), match.group(3)
        lines = final_lines.get(box_id)
        texts = list(_TEXT.finditer(body))
        if not lines or len(texts) < len(lines):
            return match.group(0)
        # the last field's lines are the box's last text elements
        wanted = dict(zip((text.start() for text in texts[-len(lines):]), lines.items()))

        def replace(text):
            if text.start() not in wanted:
                return text.group(0)
            element_id, line = wanted[text.start()]
            return f'<text{text.group(1)} id="{element_id}">{html.escape(line, quote=False)}</text>'

        return f'<g id="{box_id}" class="node{classes}">{_TEXT.sub(replace, body)}</g>'

    return re.sub(r'<g id="([^"]+)" class="node([^"]*)">(.*?)</g>', retag, svg, flags=re.S)


def _script_json(data):
    """`data` as a JavaScript literal safe inside ``<script>``: every ``<``,
    ``>`` and ``&`` is a ``\\u`` escape, so no text in it (``</script>``,
    ``<!--``) can end or change the script element; line and paragraph
    separators are escaped too."""
    text = json.dumps(data, ensure_ascii=False)
    for char in "<>&\u2028\u2029":
        text = text.replace(char, f"\\u{ord(char):04x}")
    return text


def _player_page(prefix, svg, data, stepper, standalone, caption=None):
    css = (_ASSETS / "player.css").read_text(encoding="utf-8").replace("#PLAYER", f"#{prefix}")
    script = (_ASSETS / "player.js").read_text(encoding="utf-8")
    payload = _script_json(data)
    steps = data["frames"]
    listed = steps[:500]
    items = "".join(f"<li><pre>{html.escape(f['x'])}</pre></li>" for f in listed)
    if len(steps) > len(listed):
        items += f"<li>… and {len(steps) - len(listed)} more steps</li>"
    title = f"{'Backward' if stepper.mode == 'backward' else 'Forward'} pass of {stepper.names[id(stepper.root)]}"
    fragment = f"""<div class="agc-player" id="{prefix}" tabindex="0" aria-label="{html.escape(title)} player">
<style>{css}</style>
<div class="agc-title">{html.escape(title)}: {len(steps) - 1} steps</div>
{"" if caption is None else f'<p class="agc-caption">{html.escape(str(caption))}</p>'}
<div class="agc-graph">{svg}</div>
<div class="agc-controls" style="display:none">
<button type="button" data-go="first" title="first (Home)">&laquo; first</button>
<button type="button" data-go="prev" title="previous (&#x2190;)">&lsaquo; prev</button>
<input type="range" min="0" max="{len(steps) - 1}" value="0" step="1" aria-label="step">
<button type="button" data-go="next" title="next (&#x2192;)">next &rsaquo;</button>
<button type="button" data-go="last" title="last (End)">last &raquo;</button>
<button type="button" data-play="1" title="step through by itself">play &#x25B6;</button>
<span class="agc-counter"></span>
<button type="button" data-zoom="1" title="scale the graph to the player's width">fit to width</button>
</div>
<pre class="agc-explain" aria-live="polite" style="display:none"></pre>
<ol class="agc-steps" start="0">{items}</ol>
<script>
var AGC_PLAYER_DATA_{prefix} = {payload};
{script.replace("__PLAYER_ID__", prefix)}
</script>
</div>"""
    if not standalone:
        return fragment
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"></head>\n"
            f"<body style=\"margin:16px\">\n{fragment}\n</body></html>\n")
