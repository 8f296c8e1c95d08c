"""``autograd-core graph``: the picture of an expression, for a teacher, in one line."""

from __future__ import annotations

import sys
from pathlib import Path

from .errors import AppError
from .expression import build_graph, parse_assignment

FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf"}


def graph_command(args, stream=None):
    """Build the expression's graph, run backward (unless told not to), write the files."""
    stream = stream if stream is not None else sys.stdout
    variables = {}
    for text in args.assignments:
        name, value = parse_assignment(text)
        if name in variables:
            raise AppError(f"--set {text!r}: {name!r} was already given a value ({variables[name]:g})")
        variables[name] = value
    root, leaves = build_graph(args.expression, variables)
    if root.label is None:
        root.label = "out"
    unused = sorted(set(variables) - _names_used(root))
    if unused:
        print(f"note: --set {', '.join(unused)} not used in the expression", file=sys.stderr)

    output = Path(args.output)
    graph_format = FORMATS.get(output.suffix.lower())
    if graph_format is None:
        raise AppError(f"-o {output}: unknown picture format {output.suffix!r}; end the name with .svg, .png or .pdf")
    _check_folder(output)
    if args.html:
        _check_folder(Path(args.html))

    from .. import render_graph
    from ..viz import RendererNotFoundError

    if not args.no_backward:
        if root.size != 1:  # cannot happen with scalars, kept for a clear message
            raise AppError("expression: backward needs a single number as the result")
        root.backward(retain_graph=True)
    try:
        render_graph(root, output, format=graph_format)
        print(f"graph           {output}", file=stream)
        if args.html:
            from .. import BackpropStepper

            fresh_root, _ = build_graph(args.expression, variables)  # the player runs its own backward
            fresh_root.label = root.label
            BackpropStepper(fresh_root).save_html(args.html)
            print(f"backprop player {args.html}", file=stream)
    except RendererNotFoundError as exc:
        raise AppError(str(exc)) from None
    except ValueError as exc:  # a format the available renderer cannot write
        raise AppError(f"-o {output}: {exc}") from None
    value = float(root.data)
    grads = ", ".join(f"d{root.label}/d{name} = {float(leaf.grad):.6g}" for name, leaf in leaves.items()
                      if leaf.grad is not None)
    print(f"{root.label} = {value:.6g}" + (f"; {grads}" if grads else ""), file=stream)
    return 0


def _names_used(root):
    from ..engine import topological_order

    return {node.label for node in topological_order([root]) if node.is_leaf and node.label}


def _check_folder(path):
    if not path.parent.exists():
        raise AppError(f"{path}: the folder {path.parent} does not exist")
