"""A safe little language for ``autograd-core graph``: arithmetic over named scalars.

The text is parsed with :mod:`ast` and then *walked*, never evaluated: each
node type must be on an allow-list (numbers, the names given with ``--set``,
``+ - * / **``, unary ``-`` and ``+``, and the engine's one-input functions),
and anything else, such as attribute access, subscripts, strings, lambdas or
imports, is refused with a message naming what was found and where.

Several statements separated by ``;`` or newlines may name intermediate
results, as the lecture does: ``e = a*b; d = e + c; L = d*f``. The last
statement is the root of the graph.
"""

from __future__ import annotations

import ast
import math
import re

from .. import engine, ops
from .errors import AppError

# The engine's functions an expression may call, by the name written.
FUNCTIONS = {
    "exp": ops.exp, "log": ops.log, "log1p": ops.log1p, "sqrt": ops.sqrt, "abs": ops.abs,
    "tanh": ops.tanh, "sigmoid": ops.sigmoid, "relu": ops.relu, "softplus": ops.softplus,
    "erf": ops.erf,
}
TWO_INPUT_FUNCTIONS = {"maximum": ops.maximum, "minimum": ops.minimum}

BINARY_OPERATORS = {
    ast.Add: ops.add, ast.Sub: ops.sub, ast.Mult: ops.mul, ast.Div: ops.div, ast.Pow: ops.pow,
}
UNARY_OPERATORS = {ast.USub: ops.neg, ast.UAdd: lambda value: value}

_OPERATOR_SYMBOLS = {
    ast.FloorDiv: "//", ast.Mod: "%", ast.MatMult: "@", ast.LShift: "<<", ast.RShift: ">>",
    ast.BitOr: "|", ast.BitXor: "^", ast.BitAnd: "&", ast.Invert: "~", ast.Not: "not",
}
MAX_LENGTH = 2000  # expressions are for pictures; this also bounds the parser's nesting
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

ALLOWED = (
    "numbers, names given with --set, + - * / ** (and unary -), parentheses, "
    f"the functions {', '.join(sorted(FUNCTIONS))} (also as methods: x.tanh()) and "
    f"{', '.join(sorted(TWO_INPUT_FUNCTIONS))}(a, b), and 'name = expression' statements "
    "separated by ';'"
)


def parse_assignment(text):
    """Parse one ``--set`` argument ``name=number`` into ``(name, float)``.

    >>> parse_assignment("b=-3")
    ('b', -3.0)
    """
    name, sep, number = text.partition("=")
    name = name.strip()
    if not sep:
        raise AppError(f"--set {text!r}: write it as name=number, e.g. --set a=2")
    if not _NAME.match(name):
        raise AppError(f"--set {text!r}: {name!r} is not a valid name (letters, digits and _; not starting with a digit)")
    if name in FUNCTIONS or name in TWO_INPUT_FUNCTIONS:
        raise AppError(f"--set {text!r}: {name!r} is the name of a function; choose another name")
    try:
        value = float(number)
    except ValueError:
        raise AppError(f"--set {text!r}: {number.strip()!r} is not a number") from None
    if not math.isfinite(value):
        raise AppError(f"--set {text!r}: give a finite number (not inf or nan)")
    return name, value


def build_graph(text, variables):
    """Build the graph of ``text`` over the named scalars in ``variables``.

    Returns ``(root, leaves)``: the Value of the last statement and a dict of
    the named input Values (each labelled with its name). Intermediate results
    named with ``=`` get that label too.

    >>> root, leaves = build_graph("L = (a*b + c) * f", {"a": 2, "b": -3, "c": 10, "f": -2})
    >>> root.label, float(root.data)
    ('L', -8.0)
    """
    if len(text) > MAX_LENGTH:
        raise AppError(f"expression: {len(text)} characters is too long for a picture (at most {MAX_LENGTH})")
    try:
        tree = ast.parse(text.strip(), mode="exec")
    except SyntaxError as exc:
        column = f" at column {exc.offset}" if exc.offset else ""
        shown = text if len(text) <= 60 else text[:57] + "..."
        raise AppError(f"expression: not valid syntax{column} ({exc.msg}): {shown!r}") from None
    except (RecursionError, MemoryError):
        raise AppError("expression: nested too deeply to parse") from None
    if not tree.body:
        raise AppError("expression: it is empty; write something like \"(a*b + c) * f\"")

    leaves = {name: engine.Value(float(value), label=name) for name, value in variables.items()}
    scope = dict(leaves)
    root = None
    for statement in tree.body:
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1 and isinstance(statement.targets[0], ast.Name):
            name = statement.targets[0].id
            if name in FUNCTIONS or name in TWO_INPUT_FUNCTIONS:
                _refuse(statement, f"assigning to {name!r}, the name of a function")
            root = _Builder(scope).build(statement.value)
            if not isinstance(root, engine.Value):  # `k = 2`: a named constant
                root = engine.Value(root, requires_grad=False)
            elif root.label is not None:  # `d = e`: a new node, so `e` keeps its own name
                root = ops.mul(root, 1.0)
            root.label = name
            scope[name] = root
        elif isinstance(statement, ast.Expr):
            root = _Builder(scope).build(statement.value)
        else:
            _refuse(statement, _describe(statement))
    if not isinstance(root, engine.Value) or not root.requires_grad:
        raise AppError("expression: it uses none of the --set names, so it has no graph to draw; "
                       "use at least one name, e.g. --set a=2 and \"a*a\"")
    return root, leaves


class _Builder:
    """Turns an allowed expression tree into engine operations.

    The tree is walked with an explicit stack, not by recursion, so a long
    sum (``a+a+...+a``, 500 terms, is 500 levels deep) needs no deep Python
    call stack: each node is checked when it is first reached (outermost
    first, so an error names the outermost offending part) and combined once
    its children are done.
    """

    def __init__(self, scope):
        self.scope = scope

    def build(self, root):
        done = {}  # id(node) -> its result (a float or a Value)
        stack = [(root, None)]
        while stack:
            node, children = stack.pop()
            if children is None:  # first visit: check it, then do its children first
                children = self._check(node)
                stack.append((node, children))
                stack.extend((child, None) for child in reversed(children))
            else:
                done[id(node)] = self._combine(node, [done.pop(id(child)) for child in children])
        return done[id(root)]

    def _check(self, node):
        """Refuse what is not allowed; return the child nodes to build first."""
        if isinstance(node, ast.Constant):
            value = node.value
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                _refuse(node, f"the constant {value!r} (only real numbers are allowed)")
            if not _finite_float(value):
                shown = repr(value) if len(repr(value)) <= 24 else f"{repr(value)[:12]}... ({len(repr(value))} digits)"
                _refuse(node, f"the constant {shown} (too large to be a finite number)")
            return []
        if isinstance(node, ast.Name):
            if node.id in self.scope:
                return []
            if node.id in FUNCTIONS or node.id in TWO_INPUT_FUNCTIONS:
                _wrong(node, f"{node.id!r} is a function; call it, e.g. {node.id}(a)")
            raise AppError(f"expression: unknown name {node.id!r} (column {node.col_offset + 1}); "
                           f"give it a value with --set {node.id}=1.5")
        if isinstance(node, ast.BinOp):
            if type(node.op) not in BINARY_OPERATORS:
                _refuse(node, f"the operator {_OPERATOR_SYMBOLS.get(type(node.op), type(node.op).__name__)!r}")
            return [node.left, node.right]
        if isinstance(node, ast.UnaryOp):
            if type(node.op) not in UNARY_OPERATORS:
                _refuse(node, f"the operator {_OPERATOR_SYMBOLS.get(type(node.op), type(node.op).__name__)!r}")
            return [node.operand]
        if isinstance(node, ast.Call):
            name, args = self._call_parts(node)
            return args
        _refuse(node, _describe(node))

    def _combine(self, node, values):
        """The result of one checked node from its children's results."""
        if isinstance(node, ast.Constant):
            return float(node.value)
        if isinstance(node, ast.Name):
            return self.scope[node.id]
        if isinstance(node, ast.BinOp):
            return BINARY_OPERATORS[type(node.op)](*map(_as_value, values))
        if isinstance(node, ast.UnaryOp):
            operand = values[0]
            if isinstance(operand, float):  # -3 is a number, not a graph node
                return -operand if isinstance(node.op, ast.USub) else operand
            return UNARY_OPERATORS[type(node.op)](operand)
        name, _ = self._call_parts(node)
        function = FUNCTIONS.get(name) or TWO_INPUT_FUNCTIONS[name]
        return function(*map(_as_value, values))

    def _call_parts(self, node):
        """(function name, argument nodes) of an allowed call, or an error."""
        if node.keywords:
            _refuse(node, "keyword arguments in a function call")
        if isinstance(node.func, ast.Name):
            name, args = node.func.id, node.args
        elif isinstance(node.func, ast.Attribute) and not node.args:  # x.tanh()
            name, args = node.func.attr, [node.func.value]
        else:
            _refuse(node, "this kind of call (only f(x) with an allowed f, or x.f())")
        if any(isinstance(arg, ast.Starred) for arg in args):
            _refuse(node, "*arguments in a function call")
        if name in FUNCTIONS:
            if len(args) != 1:
                _wrong(node, f"{name}() takes one argument, got {len(args)}")
        elif name in TWO_INPUT_FUNCTIONS:
            if len(args) != 2:
                _wrong(node, f"{name}() takes two arguments, got {len(args)}")
        else:
            _refuse(node, f"calling {name!r} (not one of the allowed functions)")
        return name, list(args)


def _as_value(value):
    return value if isinstance(value, engine.Value) else engine.Value(value, requires_grad=False)


def _finite_float(number):
    """Whether a literal is a finite float (a 400-digit integer is not: float() overflows)."""
    try:
        return math.isfinite(float(number))
    except OverflowError:
        return False


def _describe(node):
    kinds = {
        ast.Attribute: "attribute access", ast.Subscript: "indexing", ast.Lambda: "a lambda",
        ast.Compare: "a comparison", ast.BoolOp: "and/or", ast.IfExp: "an if-expression",
        ast.List: "a list", ast.Tuple: "a tuple", ast.Dict: "a dict", ast.Set: "a set",
        ast.ListComp: "a comprehension", ast.GeneratorExp: "a comprehension",
        ast.JoinedStr: "an f-string", ast.Import: "an import", ast.ImportFrom: "an import",
        ast.NamedExpr: "the := operator", ast.Await: "await",
        ast.AugAssign: "an augmented assignment (+= and the like)",
        ast.Assign: "this assignment (only 'name = expression')",
    }
    for kind, description in kinds.items():
        if isinstance(node, kind):
            return description
    return f"a {type(node).__name__} statement" if isinstance(node, ast.stmt) else type(node).__name__


def _wrong(node, message):
    column = getattr(node, "col_offset", None)
    where = f" (column {column + 1})" if column is not None else ""
    raise AppError(f"expression: {message}{where}")


def _refuse(node, what):
    column = getattr(node, "col_offset", None)
    where = f" (column {column + 1})" if column is not None else ""
    raise AppError(f"expression: {what} is not allowed{where}. Allowed: {ALLOWED}")
