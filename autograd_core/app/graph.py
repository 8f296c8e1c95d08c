"""``autograd-core graph``: the picture of an expression, for a teacher, in one line."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

from .errors import AppError
from .expression import build_graph, parse_assignment
from .report import terminal_safe

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
    _check_target("-o", output, "graph.svg")  # a folder is named as such, not as a file with no suffix
    if args.output.endswith(("/", os.sep)):
        raise AppError(f"-o {args.output}: this names a folder, and there is none; give a file name, "
                       f"e.g. {output.with_name(output.name + '.svg')}")
    graph_format = FORMATS.get(output.suffix.lower())
    if graph_format is None:
        what = f"unknown picture format {output.suffix!r}" if output.suffix else "no picture format in the name"
        raise AppError(f"-o {output}: {what}; end the name with .svg, .png or .pdf")
    if args.html:
        _check_target("--html", Path(args.html), "player.html")

    from .. import render_graph

    if not args.no_backward:
        if root.size != 1:  # cannot happen with scalars, kept for a clear message
            raise AppError("expression: backward needs a single number as the result")
        root.backward(retain_graph=True)
    with _writing("-o", output):
        render_graph(root, output, format=graph_format)
    print(f"graph           {terminal_safe(output)}", file=stream)
    if args.html:
        from .. import BackpropStepper

        fresh_root, _ = build_graph(args.expression, variables)  # the player runs its own backward
        fresh_root.label = root.label
        with _writing("--html", args.html):
            BackpropStepper(fresh_root).save_html(args.html)
        print(f"backprop player {terminal_safe(args.html)}", file=stream)
    value = float(root.data)
    grads = ", ".join(f"d{root.label}/d{name} = {float(leaf.grad):.6g}" for name, leaf in leaves.items()
                      if leaf.grad is not None)
    print(f"{root.label} = {value:.6g}" + (f"; {grads}" if grads else ""), file=stream)
    return 0


def _names_used(root):
    from ..engine import topological_order

    return {node.label for node in topological_order([root]) if node.is_leaf and node.label}


def _check_target(option, path, example):
    """A file that can be written: not a folder, in a folder that exists."""
    try:
        is_folder, folder_exists = path.is_dir(), path.parent.exists()
    except OSError as exc:  # a name too long for the file system, say
        raise AppError(f"{option} {path}: cannot write it ({exc.strerror or exc})") from None
    if is_folder:
        raise AppError(f"{option} {path}: this is a folder; give a file name, e.g. {path / example}")
    if not folder_exists:
        raise AppError(f"{path}: the folder {path.parent} does not exist")


@contextlib.contextmanager
def _writing(option, path):
    """Errors while writing `path` become one line naming the option and the file."""
    from ..viz import RendererNotFoundError

    try:
        yield
    except RendererNotFoundError as exc:
        raise AppError(str(exc)) from None
    except OSError as exc:  # a folder we may not write to, a name too long, a full disk...
        raise AppError(f"{option} {path}: cannot write it ({exc.strerror or exc})") from None
    except ValueError as exc:  # a format the available renderer cannot write
        raise AppError(f"{option} {path}: {exc}") from None
