"""Numbers, arrays and formulas as the short text a drawing shows.

A number as a learner reads it (``format_number``), an array as a few lines
(its numbers when small, else min / mean / max: ``describe_array``), the grad
field of a box (``grad_lines``, ``grad_text``), the symbol of an operation
(``op_symbol``) and the part of its formula about one input
(``rule_for_input``). The drawings, the stepper and the learner's reports all
write their numbers through here, so they agree.
"""

from __future__ import annotations

import numpy as np

__all__ = ["format_number", "shape_text", "describe_array", "grad_lines", "grad_text", "op_symbol",
           "rule_for_input", "NOT_COMPUTED", "NO_GRAD", "INFIX"]


def format_number(x, digits=4):
    """A number as a learner reads it: ``-2.0``, ``0.7071``, ``1.235e+04``.

    Integral values keep a ``.0`` so a float never looks like a count.

    >>> format_number(-2), format_number(0.70710678), format_number(12345.6)
    ('-2.0', '0.7071', '1.235e+04')
    """
    text = f"{float(x):.{digits}g}"
    if text.lstrip("-").isdigit():
        text += ".0"
    return text


def shape_text(shape):
    """A shape as NumPy writes it.

    >>> shape_text((3,)), shape_text((2, 4))
    ('(3,)', '(2, 4)')
    """
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
    head = f"{shape_text(array.shape)} {array.dtype}"
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
    matrix), or say plainly that there is none yet.

    >>> from autograd_core import Value
    >>> x = Value(3.0); grad_text(x)
    'grad: not computed yet'
    >>> (x * x).backward(); grad_text(x)
    'grad 6.0'
    """
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
    """What the operation's node shows: a symbol for arithmetic, else its name.

    >>> from autograd_core import Value
    >>> x = Value(2.0)
    >>> op_symbol(x * x), op_symbol(x ** 3), op_symbol(x.tanh())
    ('×', '^3', 'tanh')
    """
    name = node._op.name
    if name == "pow" and "exponent" in node._params:
        exponent = float(node._params["exponent"])
        return f"^{int(exponent)}" if exponent.is_integer() else f"^{format_number(exponent)}"
    return _SYMBOLS.get(name, name)


def rule_for_input(op, i, n_inputs):
    """The part of an op's formula about input i: ``d(a*b)/db = a`` from
    ``d(a*b)/da = b, d(a*b)/db = a``; the whole formula when it does not have
    one part per input. Parts are split at top-level ", d" or ", /d".

    >>> from autograd_core import OPS
    >>> rule_for_input(OPS["mul"], 1, 2)
    'd(a*b)/db = a'
    """
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
