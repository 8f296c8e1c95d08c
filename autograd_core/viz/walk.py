"""Walking the graph behind a Value, and naming its nodes.

The walk is iterative (a deep graph cannot reach Python's recursion limit)
and returns the Values oldest first, the order in which the forward pass made
them; every drawing lays them out and names them in that order.
"""

from __future__ import annotations

from .text import format_number

__all__ = ["collect_values", "display_names", "kind_of"]


def collect_values(roots):
    """Every Value that leads to `roots` (constants included), oldest first.

    >>> from autograd_core import Value
    >>> a = Value(2.0, label="a"); b = Value(3.0, label="b")
    >>> [v.label for v in collect_values([a * b + a])]
    ['a', 'b', None, None]
    """
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
    otherwise, numbered in creation order so they read left to right.

    >>> from autograd_core import Value
    >>> a = Value(2.0, label="a")
    >>> L = (a * 3 + 1).tanh()
    >>> values = collect_values([L])
    >>> [display_names(values, L)[id(v)] for v in values]
    ['a', '3.0', 't1', '1.0', 't2', 'L']
    """
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


def kind_of(v):
    """``"op"`` for a Value an operation made, ``"leaf"`` for an input or
    parameter, ``"const"`` for a constant (a leaf that needs no grad).

    >>> from autograd_core import Value
    >>> kind_of(Value(1.0)), kind_of(Value(1.0, requires_grad=False)), kind_of(Value(1.0) * 2)
    ('leaf', 'const', 'op')
    """
    if v._op is not None:
        return "op"
    return "leaf" if v.requires_grad else "const"
