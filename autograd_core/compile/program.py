"""The program: one record per line, names, constants, and the text of a call.

A compiled step is a list of :class:`Line` records (what a line assigns,
the names it reads, its expression, its comment), printed by
:func:`render` as the Python that ``source()`` shows and planned by
``planner.py``. Nothing here knows an operation by name: the text of a line
is made from the function the engine itself calls (an op's forward, a
gradient rule), by :func:`call_text`, which writes a lambda's own body with
its arguments filled in, or a call of the function when its body is more
than one expression.
"""

from __future__ import annotations

import ast
import builtins
import dis
import functools
import inspect
import keyword
import math
import operator
import re
import struct
import textwrap
import unicodedata

import numpy as np

from .._files import source_lines
from ..ops import F


class Line:
    """One line of the program: ``targets = expression  # comment``.

    `reads` are the program names the expression reads; `exact` is a second
    expression computing the same thing by calling the engine's function
    itself (used when the readable one does not reproduce its bits);
    `value` is what the traced call computed (checked against the line);
    `quiet`: the engine's function silences NumPy's float warnings where the
    readable expression would not (the program that runs calls it, see
    ``Op.quiet``).
    """

    __slots__ = ("targets", "expression", "reads", "comment", "exact", "exact_reads", "value", "keep", "quiet")

    def __init__(self, targets, expression, reads, comment="", exact=None, exact_reads=None, value=None, keep=False,
                 quiet=False):
        self.targets = tuple(targets)
        self.expression = expression
        self.reads = tuple(reads)
        self.comment = _one_line(comment)  # (an op's code= or formula= text: a newline would end the comment)
        self.exact = exact
        self.exact_reads = tuple(exact_reads) if exact_reads is not None else None
        self.value = value  # the traced value of each target (a tuple, as targets)
        self.keep = keep  # an effect or a host array: done at every call even if nothing reads it
        self.quiet = quiet

    def use_exact(self):
        self.expression, self.reads, self.exact = self.exact, self.exact_reads, None

    def text(self, expression=None):
        head = ", ".join(self.targets)
        body = expression if expression is not None else self.expression
        line = f"{head} = {body}" if head else body
        return f"{line}  # {self.comment}" if self.comment else line


def render(name, params, lines, returns):
    """``def name(params): <lines>; return returns`` as text."""
    out = [f"def {name}({', '.join(params)}):"]
    out += ["    " + line for line in lines] or ["    pass"]
    out.append(f"    return {returns}")
    return "\n".join(out) + "\n"


def tuple_text(names):
    return "(" + ", ".join(names) + ("," if len(names) == 1 else "") + ")"


# --------------------------------------------------------------------------
# Names: every identifier the program defines is ASCII, checked, and unique
# --------------------------------------------------------------------------
_RESERVED = (
    set(keyword.kwlist) | set(keyword.softkwlist) | set(dir(builtins))
    | {"np", "inf", "nan", "math", "saved", "forward", "backward", "F", "recycled"}
)


def identifier(text, fallback):
    """A Python identifier made from a label: NFKC-folded (``W₁`` -> ``W1``),
    anything but ASCII letters, digits and ``_`` replaced, never a keyword."""
    return _identifier(None if text is None else str(text), fallback)


@functools.lru_cache(maxsize=8192)  # (the same labels come back at every trace of a network)
def _identifier(text, fallback):
    name = ""
    if text is not None:
        folded = unicodedata.normalize("NFKC", text)
        name = re.sub(r"[^A-Za-z0-9_]+", "_", folded).strip("_")
    if not name:
        name = fallback
    if name[0].isdigit():
        name = "w_" + name  # a parameter of a Sequential's layer 0: w_0_weight
    if keyword.iskeyword(name) or name in _RESERVED:
        name += "_"
    assert name.isidentifier(), name
    return name


class Names:
    """Unique program names, counted per wanted name (a graph may have 10,000 'mul's).
    Names from labels never start with ``_``; helpers and constants always do."""

    def __init__(self):
        self.taken = set(_RESERVED)
        self.count = {}

    def new_private(self, hint):
        return self.new(None, "c", "_" + identifier(hint, "c"))

    def new(self, wanted, fallback="v", exact=None):
        wanted = exact or identifier(wanted, fallback)
        name = wanted
        k = self.count.get(wanted, 1)
        while name in self.taken:
            k += 1
            name = f"{wanted}_{k}"
        self.count[wanted] = k
        self.taken.add(name)
        return name


# --------------------------------------------------------------------------
# Constants: written out when the text reads back exactly, else kept by name
# --------------------------------------------------------------------------
_INF_BITS = struct.pack("<d", math.inf)
_NAN_BITS = struct.pack("<d", math.nan)


def _float_text(x):
    bits = struct.pack("<d", x)
    if math.isfinite(x):
        return repr(x)
    if bits == _INF_BITS:
        return "inf"
    if bits == struct.pack("<d", -math.inf):
        return "-inf"
    if bits == _NAN_BITS:
        return "nan"
    return None  # a NaN of another sign or payload: kept as an object


def literal(value):
    """Text that evaluates (in the program's namespace) to exactly `value`, or None."""
    kind = type(value)
    if value is None or kind is bool or kind is int or kind is str or value is Ellipsis:
        return repr(value) if value is not Ellipsis else "..."
    if kind is float:
        return _float_text(value)
    if kind is tuple or kind is list:
        parts = [literal(v) for v in value]
        if any(p is None for p in parts):
            return None
        if kind is list:
            return "[" + ", ".join(parts) + "]"
        return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"
    if kind is slice:
        parts = [literal(v) for v in (value.start, value.stop, value.step)]
        return None if any(p is None for p in parts) else f"slice({', '.join(parts)})"
    if isinstance(value, np.generic) and getattr(np, kind.__name__, None) is kind:
        if value.dtype.kind == "f":
            text = _float_text(float(value))
            # a float32/16 constant written as its float64 repr rounds back to the same value
            if text is not None and kind(float(value)).tobytes() == value.tobytes():
                return f"np.{kind.__name__}({text})"
            return None
        if value.dtype.kind in "biu":
            return f"np.{kind.__name__}({value.item()!r})"
        return None
    if isinstance(value, np.dtype) and getattr(np, value.name, None) is value.type:
        return f"np.dtype({(value.name if value.isnative else value.str)!r})"  # ('>f4': big-endian, as given)
    if isinstance(value, type) and getattr(np, value.__name__, None) is value:
        return f"np.{value.__name__}"
    return None


def dtype_text(dtype):
    """How a program writes `dtype`: ``np.float32``, or ``np.dtype('>f4')`` in another byte order.

    >>> dtype_text(np.dtype(np.float32)), dtype_text(np.dtype(">f4"))
    ('np.float32', "np.dtype('>f4')")
    """
    if dtype.isnative and getattr(np, dtype.name, None) is dtype.type:
        return f"np.{dtype.name}"
    return f"np.dtype({dtype.str!r})"


# --------------------------------------------------------------------------
# The text of a call: a lambda's body with its arguments filled in
# --------------------------------------------------------------------------
_OPERATORS = {
    operator.add: ast.Add(), operator.sub: ast.Sub(), operator.mul: ast.Mult(), operator.truediv: ast.Div(),
    operator.matmul: ast.MatMult(), operator.pow: ast.Pow(), operator.floordiv: ast.FloorDiv(), operator.mod: ast.Mod(),
}
_UNARY = {operator.neg: ast.USub(), operator.pos: ast.UAdd()}
_bodies = {}  # code object -> (the lambda's ast, its parameter names) or None


def _lambda_body(fn):
    """The AST of a lambda's body (found in its source by matching its code), or None."""
    code = getattr(fn, "__code__", None)
    if code is None or fn.__name__ != "<lambda>":
        return None
    if code not in _bodies:
        _bodies[code] = _find_lambda(code)
    return _bodies[code]


_LAMBDA_LINES = 60  # the longest lambda looked for, in lines


def _find_lambda(code):
    """The lambda whose code is `code`, parsed from the lines that start at its first line (one
    more at a time, up to _LAMBDA_LINES: a lambda inside a call spans the call's lines), or None."""
    lines = source_lines(code.co_filename)
    start = code.co_firstlineno - 1
    for end in range(start + 1, min(start + _LAMBDA_LINES, len(lines)) + 1):
        tree = _parse_fragment(textwrap.dedent("".join(lines[start:end])))
        if tree is not None:
            found = next((node for node in ast.walk(tree) if isinstance(node, ast.Lambda) and _same_code(node, code)),
                         None)
            if found is not None:
                return found
    return None


def _parse_fragment(source):
    """Parse the lines around a lambda (a keyword argument in a call may be cut mid-call)."""
    for text in (source, "(" + source.strip().rstrip(",") + ")", "f(" + source.strip().rstrip(",") + ")"):
        try:
            return ast.parse(text)
        except SyntaxError:
            continue
    return None


def _same_code(node, code):
    try:
        compiled = builtins.compile(ast.Expression(node), "<lambda>", "eval")
    except (SyntaxError, ValueError, TypeError):
        return False
    candidate = next((c for c in compiled.co_consts if inspect.iscode(c)), None)
    return (candidate is not None and candidate.co_varnames == code.co_varnames
            and _instructions(candidate) == _instructions(code))


def _instructions(code):
    """A code object's instructions, as (operation, argument) pairs that do not depend on
    where it was compiled: CPython 3.11 reads a method of an imported name (``F.exp(x)``
    in a module that imports F) with LOAD_ATTR, of the same name compiled alone with
    LOAD_METHOD, and the cache entries and call preparations differ with them."""
    pairs = []
    for instruction in dis.get_instructions(code):
        name = instruction.opname
        if name in ("CACHE", "PRECALL", "RESUME", "PUSH_NULL"):
            continue
        argument = instruction.argval
        if inspect.iscode(argument):
            argument = _instructions(argument)
        elif instruction.opname == "LOAD_CONST":  # (0.0 == -0.0 and 1 == True: told apart by type and text)
            argument = (type(argument), repr(argument))
        pairs.append(("LOAD_ATTR" if name == "LOAD_METHOD" else name, argument))
    return pairs


class _Fill(ast.NodeTransformer):
    def __init__(self, bound):
        self.bound = bound

    def visit_Name(self, node):
        if isinstance(node.ctx, ast.Load) and node.id in self.bound:
            return self.bound[node.id]
        return node


def _means_what_the_program_means(name, obj):
    """Whether a reserved name may be bound to `obj`: a builtin as itself, ``math`` and ``F`` as the modules."""
    if name == "math":
        return obj is math
    if name == "F":  # (the engine's functions as the program names them)
        return obj is F
    return hasattr(builtins, name) and getattr(builtins, name) is obj


def _one_line(text):
    return " ".join(str(text).split()) if text else ""


class Namespace(dict):
    """The program's globals: helpers and constants by name, each name one object."""

    def __init__(self, names):
        super().__init__(np=np, inf=math.inf, nan=math.nan)
        self.names = names
        self.by_identity = {}
        self.kept = []  # constants stay alive while the program lives, so their ids stay theirs

    def bind(self, name, obj):
        """Make `name` mean `obj`; False when it already means something else."""
        if name in self:
            return self[name] is obj
        if name in self.names.taken and name not in _RESERVED:
            return False  # a variable of the program has that name
        if name in _RESERVED and not _means_what_the_program_means(name, obj):
            return False  # (a user's global called `slice` or `saved`: the program's text uses those names)
        self[name] = obj
        self.names.taken.add(name)
        return True

    def constant(self, value, hint="c"):
        """Text for a value fixed when the program was made: a literal, or a name for the object."""
        text = literal(value)
        if text is not None:
            return text
        known = self.by_identity.get(id(value))
        if known is not None:
            return known
        name = self.names.new_private(hint)
        self[name] = value
        self.by_identity[id(value)] = name
        self.kept.append(value)
        return name


def template_text(template, bound):
    """An op's ``as_numpy`` expression with its names (inputs, ``out``, ``g``,
    parameters) filled in; None when it names something not bound."""
    if template is None:
        return None
    names = _template_names(template)
    if not names <= set(bound) | {"np"}:
        return None
    return filled(template, tuple(sorted((k, v) for k, v in bound.items() if k in names)))


@functools.lru_cache(maxsize=1024)
def _template_names(template):
    return frozenset(n.id for n in ast.walk(_parse(template)) if isinstance(n, ast.Name))


@functools.lru_cache(maxsize=8192)  # (the same texts come back at every trace of a network)
def filled(body_text, fills):
    """`body_text` with the names of `fills` ((name, text) pairs) replaced by those texts, folded."""
    return ast.unparse(_fold(_Fill({k: _parse(v) for k, v in fills}).visit(_parse(body_text))))


def call_text(fn, args, kwargs, namespace, hint, template=None, bound=None):
    """The text of ``fn(*args, **kwargs)`` (args: texts) and the call written
    plainly; the first is the op's declared NumPy expression (`template`,
    filled from `bound`) or the function's own expression where it has one
    (a lambda's body, an operator, a NumPy ufunc), else the same as the second."""
    own = getattr(fn, "__name__", "")
    if own.isidentifier() and own != "<lambda>" and getattr(fn, "__globals__", {}).get(own) is fn and own.startswith("_") \
            and namespace.bind(own, fn):
        name = own  # a helper of the engine's, called by its own name
    else:
        name = namespace.constant(fn, hint)
    plain = f"{name}({', '.join(list(args) + [f'{k}={v}' for k, v in kwargs.items()])})"
    readable = template_text(template, bound or {}) or _expression_of(fn, args, kwargs, namespace)
    return (readable if readable is not None else plain), plain


def _expression_of(fn, args, kwargs, namespace):
    if kwargs == {} and (fn in _OPERATORS and len(args) == 2 or fn in _UNARY and len(args) == 1):
        return _operator_text(fn, tuple(args))
    if isinstance(fn, np.ufunc) and getattr(np, fn.__name__, None) is fn:
        return f"np.{fn.__name__}({', '.join(list(args) + [f'{k}={v}' for k, v in kwargs.items()])})"
    info = _lambda_info(fn)
    if info is None:
        return None
    signature, body_text, free = info
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError:
        return None
    bound.apply_defaults()
    fills = {}
    for param, value in bound.arguments.items():
        if param not in free.params:
            if param in free.varargs_read:
                return None  # (rules of ops with any number of inputs are called, not written out)
            continue  # a *rest the body does not read
        fills[param] = value if isinstance(value, str) else namespace.constant(value, param)
    # the names the body reads besides its arguments mean what they mean where the lambda was written
    for name, obj in free.objects():
        if obj is _UNRESOLVED or not namespace.bind(name, obj):
            return None
    return filled(body_text, tuple(sorted(fills.items())))


@functools.lru_cache(maxsize=8192)
def _operator_text(fn, args):
    if len(args) == 2:
        return ast.unparse(ast.BinOp(_parse(args[0]), _OPERATORS[fn], _parse(args[1])))
    return ast.unparse(ast.UnaryOp(_UNARY[fn], _parse(args[0])))


_UNRESOLVED = object()
_infos = {}  # function -> (its signature, its body's text, _FreeNames) or None


class _FreeNames:
    """What a lambda's body reads: its parameters, the *rest names it reads, and the other names (their objects
    looked up at each use: the lambda's information is kept for the process)."""

    def __init__(self, fn, body, signature):
        loads = {n.id for n in ast.walk(body) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        stores = {n.id for n in ast.walk(body) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)}
        variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        self.params = {p.name for p in signature.parameters.values() if p.kind not in variadic}
        self.varargs_read = {p.name for p in signature.parameters.values() if p.kind in variadic} & loads
        self.fn = fn
        self.names = sorted(loads - stores - set(signature.parameters))

    def objects(self):
        """Each name with what it holds now (a global or a closure's cell rebound since: its new object)."""
        fn = self.fn
        closure = dict(zip(fn.__code__.co_freevars, fn.__closure__ or ()))
        found = []
        for name in self.names:
            if name in closure:
                try:
                    obj = closure[name].cell_contents
                except ValueError:  # an empty cell
                    obj = _UNRESOLVED
            elif name in fn.__globals__:
                obj = fn.__globals__[name]
            else:
                obj = getattr(builtins, name, _UNRESOLVED)
            found.append((name, obj))
        return found


def _lambda_info(fn):
    """A lambda's signature, body text and free names, worked out once per function."""
    try:
        return _infos[fn]
    except KeyError:
        pass
    except TypeError:  # an unhashable callable
        return None
    node = _lambda_body(fn)
    info = None
    if node is not None and not _rebinds_a_parameter(node):
        signature = inspect.signature(fn)
        info = (signature, ast.unparse(node.body), _FreeNames(fn, node.body, signature))
    _infos[fn] = info
    return info


def _rebinds_a_parameter(node):
    """Whether a lambda's body gives one of its parameters' names another meaning inside
    (``[x for x in (x, -x)]``, ``lambda x: ...``): filling the parameter in by name would be wrong."""
    params = {a.arg for a in ast.walk(node.args) if isinstance(a, ast.arg)}
    for inner in ast.walk(node.body):
        if isinstance(inner, ast.Name) and not isinstance(inner.ctx, ast.Load) and inner.id in params:
            return True
        if isinstance(inner, ast.Lambda) and params & {a.arg for a in ast.walk(inner.args) if isinstance(a, ast.arg)}:
            return True
    return False


class _Folder(ast.NodeTransformer):
    """Work out what only Python numbers decide (``0.0 if 2 == 0 else 2 * x ** (2 - 1)``
    becomes ``2 * x ** 1``): Python computes the same numbers whether the program does or not."""

    def generic_visit(self, node):
        node = super().generic_visit(node)
        if isinstance(node, ast.IfExp) and isinstance(node.test, ast.Constant):
            return node.body if node.test.value else node.orelse
        if isinstance(node, (ast.BinOp, ast.UnaryOp, ast.Compare, ast.BoolOp)) and all(
                isinstance(n, (ast.Constant, ast.operator, ast.unaryop, ast.cmpop, ast.boolop, ast.expr_context))
                or n is node for n in ast.walk(node)):
            try:
                value = eval(builtins.compile(ast.Expression(node), "<fold>", "eval"), {"__builtins__": {}})  # noqa: S307
            except Exception:  # noqa: BLE001 (left as written)
                return node
            if type(value) in (int, float, bool) and literal(value) is not None and literal(value) == repr(value):
                return ast.Constant(value)
        return node


def _fold(node):
    return ast.fix_missing_locations(_Folder().visit(node))


def _parse(text):
    return ast.parse(text, mode="eval").body


def evaluate(text, env):
    """An expression's value in `env` (the traced call's arrays and the program's
    helpers), or None where it cannot be worked out."""
    try:
        code = _expression_code(text)
        with np.errstate(all="ignore"):
            return eval(code, env)  # noqa: S307
    except Exception:  # noqa: BLE001 (the caller then leaves the line as it is)
        return None


@functools.lru_cache(maxsize=8192)  # (the same expressions come back at every trace of a network)
def _expression_code(text):
    return builtins.compile(text, "<autograd_core.compile>", "eval")


