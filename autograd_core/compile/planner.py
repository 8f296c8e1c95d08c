"""The buffer planner: which lines write with ``out=`` into arrays made once.

A line whose expression is one NumPy ufunc or operator (``Z1 = X @ W1``,
``dZ1 = dA1 * (1 - A1 ** 2)`` at its top) and whose result is an array can
write into a buffer instead of a new array: NumPy then allocates nothing.
Forward results get a buffer each (the backward pass may read them);
backward temporaries take a buffer whose value is read no more (a
temporary's, or a forward result's the backward pass is done with), found
by one pass over the lines. A line written without ``out=`` may return a
view of what it reads (a reshape, a transpose), so what it reads stays
taken while its result is read. A leaf's gradient goes into the array the
last call handed out, when nothing holds it any more (see `recycled`).
"""

from __future__ import annotations

import ast
import functools
import sys
from collections import defaultdict

import numpy as np

from .program import dtype_text

_UFUNC_OF = {ast.Add: "add", ast.Sub: "subtract", ast.Mult: "multiply", ast.Div: "divide", ast.MatMult: "matmul"}


@functools.lru_cache(maxsize=4096)
def out_form(expression):
    """The expression written with ``out={buf}``, or None when its top is not one ufunc call."""
    node = ast.parse(expression, mode="eval").body
    if isinstance(node, ast.BinOp) and type(node.op) in _UFUNC_OF:
        args = [ast.unparse(node.left), ast.unparse(node.right)]
        return f"np.{_UFUNC_OF[type(node.op)]}({', '.join(args)}, out={{buf}})"
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "np" and isinstance(getattr(np, node.func.attr, None), np.ufunc)
            and not node.keywords and not any(isinstance(a, ast.Starred) for a in node.args)):
        args = [ast.unparse(a) for a in node.args]
        return f"np.{node.func.attr}({', '.join(args)}, out={{buf}})"
    return None


def _bufferable(line, expression, value_of):
    if len(line.targets) != 1 or line.value is None or line.keep:
        return None
    value = line.value[0]
    if type(value) is not np.ndarray or value.ndim == 0 or value.size <= 1:
        return None
    if not value.flags.c_contiguous:  # eager's result keeps its inputs' layout (Fortran order): so must the line's
        return None
    return _two_step_form(line, expression, value, value_of) or out_form(expression)


class _DirectSums(ast.NodeTransformer):
    """``A.sum(axis=0)`` as ``np.add.reduce(A, axis=0)`` where A is an array: what
    ndarray.sum calls, without its Python wrapper (a microsecond a sum, which on a
    small network's step is 5% of it). Only in the program that runs; source() keeps .sum."""

    def __init__(self, value_of):
        self.value_of = value_of

    def visit_Call(self, node):
        self.generic_visit(node)
        func = node.func
        if (isinstance(func, ast.Attribute) and func.attr == "sum" and isinstance(func.value, ast.Name)
                and not any(isinstance(a, ast.Starred) for a in node.args)
                and all(k.arg in ("axis", "keepdims") for k in node.keywords) and len(node.args) <= 1
                and type(self.value_of(func.value.id)) is np.ndarray):
            reduce = ast.parse("np.add.reduce", mode="eval").body
            keywords = list(node.keywords)
            if node.args:
                keywords.insert(0, ast.keyword("axis", node.args[0]))
            elif not any(k.arg == "axis" for k in keywords):  # ndarray.sum() sums over every axis
                keywords.insert(0, ast.keyword("axis", ast.Constant(None)))
            return ast.Call(reduce, [func.value], keywords)
        return node


def _direct_sums(expression, value_of):
    if ".sum(" not in expression:
        return expression
    arrays = frozenset(n for n in _sum_receivers(expression) if type(value_of(n)) is np.ndarray)
    return _with_direct_sums(expression, arrays) if arrays else expression


@functools.lru_cache(maxsize=4096)  # (the same lines come back at every trace of a network)
def _sum_receivers(expression):
    return tuple(node.func.value.id for node in ast.walk(ast.parse(expression, mode="eval"))
                 if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "sum"
                 and isinstance(node.func.value, ast.Name))


@functools.lru_cache(maxsize=4096)
def _with_direct_sums(expression, arrays):
    tree = _DirectSums(lambda name: np.empty(0) if name in arrays else None).visit(ast.parse(expression, mode="eval"))
    return ast.unparse(ast.fix_missing_locations(tree))


def _two_step_form(line, expression, value, value_of):
    """``Z = A @ W.T + b`` as ``np.matmul(A, W.T, out={buf}); np.add(Z, b, out=Z)``: the
    inner product is written into the buffer and the outer operation is done in
    place there, so no temporary is made (the same operations in the same order).
    Only where the inner result already has the line's shape and dtype."""
    parts = _two_steps(expression)
    if parts is None:
        return None
    inner_text, outer, right = parts
    inner = value_of(inner_text)
    if (type(inner) is not np.ndarray or inner.shape != value.shape or inner.dtype != value.dtype
            or not inner.flags.c_contiguous):
        return None
    target = line.targets[0]
    return f"{out_form(inner_text)}; np.{outer}({target}, {right}, out={target})"


@functools.lru_cache(maxsize=4096)
def _two_steps(expression):
    """(inner, outer ufunc, right operand) of ``inner <op> right`` where both are ufunc operators."""
    node = ast.parse(expression, mode="eval").body
    if not (isinstance(node, ast.BinOp) and type(node.op) in _UFUNC_OF and isinstance(node.left, ast.BinOp)
            and type(node.left.op) in _UFUNC_OF):
        return None
    return ast.unparse(node.left), _UFUNC_OF[type(node.op)], ast.unparse(node.right)


def _runs_its_own_function(line):
    """Whether a line computing one NumPy scalar runs the call of the operation's own
    function instead of its readable NumPy form (``_relu_data(x)`` for ``np.maximum(x, 0)``):
    a NumPy function called on a scalar costs about a microsecond, the operation's
    function takes its scalar path (a scalar MLP's step: ~15% fewer instructions).
    Only in the program that runs; source() keeps the readable form."""
    return (line.exact is not None and line.value is not None and len(line.value) == 1
            and isinstance(line.value[0], np.generic) and line.expression.startswith("np."))


def plan(forward, backward, returned, recycled_names, value_of, taken=frozenset()):
    """The lines that run (texts), the buffers they write into ({name: (shape, dtype)}, and
    the pool of handed-out gradients: {name: its length}), and whether backward temporaries
    reuse forward buffers. `value_of(expression)` evaluates an expression on the traced
    call's arrays; `taken`: the names the program's namespace holds already (a helper of
    the user's called `_buf_0`)."""
    lines = forward + backward
    n_forward = len(forward)
    end = len(lines)
    # (a quiet operation's own function too: a replay warns where eager warns, see Op.quiet)
    scalar = [_runs_its_own_function(line) or (line.quiet and line.exact is not None) for line in lines]
    expressions = [line.exact if own else _direct_sums(line.expression, value_of) for line, own in zip(lines, scalar)]
    reads = [line.exact_reads if own else line.reads for line, own in zip(lines, scalar)]
    forms = [None if line.targets and line.targets[0] in returned and line.targets[0] not in recycled_names
             else _bufferable(line, expression, value_of) for line, expression in zip(lines, expressions)]
    last_use = defaultdict(lambda: -1)
    for name in returned:
        last_use[name] = end
    for k in range(end):
        for name in reads[k]:
            last_use[name] = max(last_use[name], k)
    # a line without out= may return a view of what it reads: that stays read as long as its result is
    for k in range(end - 1, -1, -1):
        if forms[k] is not None:
            continue
        reach = max((last_use[t] for t in lines[k].targets), default=-1)
        for name in reads[k]:
            if last_use[name] < reach:
                last_use[name] = reach
    texts = [line.text(expression) for line, expression in zip(lines, expressions)]
    buffers = {}
    free = defaultdict(list)  # (shape, dtype) -> buffers no value needs any more
    expires = defaultdict(list)  # line number -> buffers whose value is read for the last time before it
    forward_buffers = set()
    reuses_forward = False
    pool = []  # leaf gradients handed out (see recycled)
    pool_name = _fresh("_gradients", taken)
    for k, line in enumerate(lines):
        if k >= n_forward:
            for buf in expires.pop(k, ()):
                free[(buffers[buf][0], buffers[buf][1].str)].append(buf)
        form = forms[k]
        if form is None:
            continue
        target = line.targets[0]
        value = line.value[0]
        if target in recycled_names:
            pool.append(None)
            texts[k] = line.text(form.replace("{buf}", f"recycled({pool_name}, {len(pool) - 1}, "
                                                       f"{value.shape!r}, {dtype_text(value.dtype)})"))
            continue
        buf = None
        if k >= n_forward:
            candidates = free.get((value.shape, value.dtype.str))
            if candidates:
                buf = candidates.pop()
                reuses_forward = reuses_forward or buf in forward_buffers
        if buf is None:
            buf = _fresh(f"_buf_{len(buffers)}", taken)
            buffers[buf] = (value.shape, value.dtype)
            if k < n_forward:
                forward_buffers.add(buf)
        texts[k] = line.text(form.replace("{buf}", buf))
        expires[max(last_use[target] + 1, n_forward, k + 1)].append(buf)
    if pool:
        buffers[pool_name] = len(pool)
    return texts[:n_forward], texts[n_forward:], buffers, reuses_forward


def _fresh(name, taken):
    while name in taken:
        name += "_"
    return name


def make_buffers(specs):
    """Fresh arrays for one program instance (each thread has its own)."""
    made = {}
    for name, spec in specs.items():
        made[name] = [None] * spec if type(spec) is int else np.empty(spec[0], spec[1])
    return made


def recycled(pool, k, shape, dtype):
    """An array for a weight's gradient: the one the last call handed out, when
    nothing holds it any more (optimizer.zero_grad() set the .grad to None),
    else a new one. A new array of a large gradient costs the kernel a page
    fault per 4 KiB every step; a recycled one costs nothing."""
    array = pool[k]
    # 3 references: the pool's, `array` here, and getrefcount's own argument
    if array is None or sys.getrefcount(array) > 3:
        array = pool[k] = np.empty(shape, dtype)
    return array
