"""Folding big graphs: repeated structure drawn as one summary box.

Beyond ``max_nodes`` Values, nodes that repeat the same structure (same
scope, operation, shapes and kinds of inputs) are put in one part, drawn as
a box ``N × op``. The keys that say "the same structure" get coarser level by
level until the drawing fits; the root and the nodes nearest it always stay
in boxes of their own.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from .text import NO_GRAD, NOT_COMPUTED, format_number, shape_text
from .walk import kind_of

__all__ = ["fold", "summary_lines"]


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
    inputs = tuple((inp._op.name if inp._op is not None else kind_of(inp), inp.shape) for inp in v._inputs)
    return (v._scope, kind_of(v), v.op, v.shape, v.dtype.str, inputs)


def _key_shape(v, keep):
    return None if _is_named_leaf(v, keep) else (v._scope, kind_of(v), v.op, v.shape)


def _key_op(v, keep):
    return None if _is_named_leaf(v, keep) else (v._scope, kind_of(v), v.op)


def _key_op_with_params(v, keep):
    return (v._scope, kind_of(v), v.op)


def _key_top_scope(v, keep):
    return (_top_scope(v._scope), kind_of(v))


def _key_kind(v, keep):
    return (kind_of(v),)


_FOLD_LEVELS = (_key_motif, _key_shape, _key_op, _key_op_with_params, _key_top_scope, _key_kind)


def fold(values, root, max_nodes):
    """Assign every Value to a part: itself, or a summary part of repeated
    structure. Returns ``part`` (index -> part id; ids >= len(values) are
    summaries). The root and the nodes nearest it stay individual.

    >>> from autograd_core import Value
    >>> from autograd_core.viz import collect_values
    >>> total = Value(0.0, label="start")
    >>> for k in range(10):
    ...     total = total + Value(float(k)) * 2.0
    >>> values = collect_values([total])
    >>> part = fold(values, total, max_nodes=12)
    >>> len(values), len(set(part)) <= 12       # 41 Values, drawn in at most 12 boxes
    (41, True)
    """
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


def summary_lines(members, show_grads, digits):
    """The lines of a summary box: how many of which operation, their shapes,
    the range of their data (and grads), and that they were folded.

    >>> from autograd_core import Value
    >>> members = [Value(float(k)) * 2.0 for k in range(3)]
    >>> summary_lines(members, show_grads=False, digits=4)
    ['3 × mul', 'scalars', 'data 0.0 … 4.0', '(folded: repeated structure)']
    """
    ops = sorted({m.op or kind_of(m) for m in members},
                 key=lambda name: -sum(1 for m in members if (m.op or kind_of(m)) == name))
    what = {"leaf": "inputs / parameters", "const": "constants"}
    names = [what.get(name, name) for name in ops]
    lines = [f"{len(members):,} × " + (", ".join(names[:3]) + (", …" if len(names) > 3 else ""))]
    shapes = {m.shape for m in members}
    if len(shapes) == 1:
        shape = next(iter(shapes))
        lines.append("scalars" if shape == () else f"each {shape_text(shape)}")
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
    return lines
