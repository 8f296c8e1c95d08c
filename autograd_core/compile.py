"""Compile a training step: trace it once with the eager engine, replay it as flat NumPy.

>>> import numpy as np, autograd_core as ag
>>> w = ag.Value(np.array([1.0, -2.0]), label="w")
>>> step = ag.compile(lambda x: (ag.tanh(x * w) ** 2).sum())
>>> loss = step(np.array([0.5, 0.25]))      # the first call traces (runs eagerly, records)
>>> loss.backward(); g_first = w.grad.copy(); w.grad = None
>>> loss = step(np.array([0.5, 0.25]))      # later calls replay the recorded program
>>> loss.backward(); bool(np.array_equal(w.grad, g_first)), step.cache_info().traces
(True, 1)

How it works, in four steps:

1. **Trace.** The first call with a given *signature* (argument shapes and
   dtypes, Python-number arguments, the train/eval modes of the modules the
   function reaches) runs the function with the eager engine. Array arguments
   go in as Values that record every operation made from them.
2. **Linearise the forward.** The graph behind the result, oldest node first,
   becomes one line of NumPy per node: ``Z1 = X @ w_0_weight.T + w_0_bias``.
   Leaves (parameters) are *arguments* of that program: they are read afresh
   at every call, so optimizer updates are seen.
3. **Linearise the backward.** The engine's backward loop is run once, on the
   traced arrays, and each thing it does (call a gradient rule, sum a share
   back to its input's shape, add it to a running gradient) is written down
   as a line: the same rules, in the same order, so the same numbers.
4. **Replay.** Later calls run the two programs: one Python function each, no
   Value per operation, no walk over nodes. The program that runs is the
   printed one with its larger results written with ``out=`` into buffers
   planned once (see `_plan_buffers`).

Arrays the step makes outside the engine's operations (a dropout mask, one-hot
rows from class labels, a comparison ``x > 0`` fed to ``where``) are recorded
with `host_array` and recomputed at every call; see ``docs/compile.md``.
"""

from __future__ import annotations

import builtins
import inspect
import keyword
import re
import sys
import types
import warnings
from collections import namedtuple

import numpy as np

from . import engine, ops
from .engine import Value

__all__ = ["compile", "host_array", "effect", "Compiled", "CompileError", "is_tracing"]


class CompileError(RuntimeError):
    """A function that cannot be compiled as written (the message says why and what to do)."""


CacheInfo = namedtuple("CacheInfo", "traces calls replays")

# ==========================================================================
# Tracing: the record of one eager run
# ==========================================================================
_trace = None  # the _Trace being recorded, or None


def is_tracing():
    """True while `compile` is recording a function's first call."""
    return _trace is not None


def host_array(fn, *inputs, name=None):
    """``fn(*inputs)``: an array made in NumPy, outside the engine's operations,
    that a compiled step must make again at every call (a dropout mask, one-hot
    rows from class labels). `inputs` are arrays or Values the array is made
    from; `name` names it in ``source()``. Outside tracing this is just ``fn(*inputs)``.

    >>> import numpy as np
    >>> host_array(lambda y: np.eye(3)[y], np.array([2, 0])).tolist()
    [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    """
    arrays = [x._data if isinstance(x, Value) else x for x in inputs]
    data = fn(*arrays)
    if _trace is not None:
        _trace.hosts.append((data, fn, inputs))
        _trace.host_names[id(data)] = name
    return data


def effect(fn, *inputs):
    """Call ``fn(*inputs)`` for what it does, not for a result (batch norm's running
    statistics): a compiled step calls it again at every replay, with the same
    inputs recomputed. `inputs` are Values (or arrays); ``fn`` gets their data.

    >>> import numpy as np
    >>> seen = []
    >>> effect(lambda a: seen.append(float(a.sum())), np.array([1.0, 2.0])); seen
    [3.0]
    """
    arrays = [x._data if isinstance(x, Value) else x for x in inputs]
    fn(*arrays)
    if _trace is not None:
        _trace.effects.append((fn, inputs))


def _user_line():
    """'file:line: code' of the innermost frame outside this package and nn."""
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not any(part in filename for part in _OURS) and "contextlib" not in filename:
            try:
                import linecache

                code = linecache.getline(filename, frame.f_lineno).strip()
            except Exception:  # noqa: BLE001 (a line we cannot read is only left out)
                code = ""
            return f"{filename}:{frame.f_lineno}" + (f": {code}" if code else "")
        frame = frame.f_back
    return "an unknown line"


_OURS = (engine.__file__.rsplit("engine.py", 1)[0], "/nn/", "/optim/")


def _refuse(what, fix):
    def refused(self, *args):
        raise CompileError(
            f"compile: {what} reads a traced value's data while tracing, at {_user_line()}. "
            f"The compiled step would replay whatever that read decided on the first call. {fix}"
        )
    return refused


_IF_FIX = (
    "Move the check out of the compiled function (test the returned loss after the call), "
    "or compute both branches and pick with ag.where(condition, a, b)."
)


class _TracedMask(np.ndarray):
    """The result of comparing a traced Value (``x > 0``): an array that `where`
    can use and a compiled step recomputes, but that refuses to drive Python
    control flow."""

    def __bool__(self):
        _refuse("`if` (or bool()) on a comparison", _IF_FIX)(self)


def _compare(np_fn):
    def compare(self, other):
        data = host_array(lambda a, b: np_fn(a, b), self, other, name="condition")
        if not isinstance(data, np.ndarray):  # a 0-d comparison is a NumPy bool
            data = np.asarray(data)
        mask = data.view(_TracedMask)
        _trace.hosts.append((mask, _trace.hosts[-1][1], _trace.hosts[-1][2]))
        return mask
    return compare


_PATCHES = {
    "__bool__": _refuse("`if`, `while`, `and`/`or` or bool()", _IF_FIX),
    "__float__": _refuse("float()", "Return the value from the function and read it after the call."),
    "__int__": _refuse("int()", "Return the value from the function and read it after the call."),
    "__index__": _refuse("using a Value as an index", "Index with NumPy data instead."),
    "item": _refuse(".item()", "Return the value from the function and read .item() after the call."),
    "__gt__": _compare(np.greater),
    "__ge__": _compare(np.greater_equal),
    "__lt__": _compare(np.less),
    "__le__": _compare(np.less_equal),
}


class _Trace:
    """What one traced call saw besides the graph: host arrays and effects."""

    def __init__(self):
        self.hosts = []  # (array, fn, inputs)
        self.host_names = {}  # id(array) -> the name host_array was given
        self.effects = []  # (fn, inputs)
        self.saved = {}

    def __enter__(self):
        global _trace
        if _trace is not None:
            raise CompileError("compile: a compiled function called another while tracing; compile the outer one only")
        _trace = self
        for name, patch in _PATCHES.items():
            self.saved[name] = Value.__dict__.get(name)
            setattr(Value, name, patch)
        return self

    def __exit__(self, *exc):
        global _trace
        _trace = None
        for name, original in self.saved.items():
            if original is None:
                delattr(Value, name)
            else:
                setattr(Value, name, original)


# ==========================================================================
# Names: from labels, parameter names and argument names
# ==========================================================================
def _identifier(text, fallback):
    name = re.sub(r"\W+", "_", str(text)).strip("_") if text is not None else ""
    if not name:
        name = fallback
    if name[0].isdigit():
        name = "w_" + name  # a parameter of a Sequential's layer 0: w_0_weight
    if keyword.iskeyword(name) or name in _RESERVED:
        name += "_"
    return name


_RESERVED = {"np", "ops", "engine", "forward", "backward", "saved", "dloss", "effects", "hosts"}


class _Names:
    def __init__(self):
        self.taken = set(_RESERVED)
        self.count = {}  # wanted name -> how many times it was asked for (a graph may have 10,000 'mul's)

    def new(self, wanted):
        name = wanted
        k = self.count.get(wanted, 1)
        while name in self.taken:
            k += 1
            name = f"{wanted}_{k}"
        self.count[wanted] = k
        self.taken.add(name)
        return name


def _modules_reached(fn, args):
    """Modules (objects with ``training`` and ``named_modules``) the function
    can reach: its closure, the globals it names, a bound method's object and
    the arguments. Returned as [(name, module)], top-level modules only."""
    found = []
    seen = set()

    def consider(name, obj):
        if hasattr(obj, "named_parameters") and hasattr(obj, "training") and id(obj) not in seen:
            seen.add(id(obj))
            found.append((name, obj))

    target = inspect.unwrap(fn)
    if isinstance(target, types.MethodType):
        consider("self", target.__self__)
        target = target.__func__
    if not isinstance(target, types.FunctionType) and hasattr(target, "__call__"):
        consider("model", target)  # a module (or other callable object) compiled itself
        target = getattr(type(target), "forward", None) or type(target).__call__
    code = getattr(target, "__code__", None)
    if code is not None:
        for name, cell in zip(code.co_freevars, target.__closure__ or ()):
            try:
                consider(name, cell.cell_contents)
            except ValueError:  # an empty cell
                pass
        for name in code.co_names:
            if name in target.__globals__:
                consider(name, target.__globals__[name])
    for k, arg in enumerate(args):
        consider(f"arg{k}", arg)
    return found


def _arrays_held(fn):
    """ids of the NumPy arrays a function holds in its closure or names as globals:
    constants of the caller's, not made from the arguments."""
    target = inspect.unwrap(fn)
    target = getattr(target, "__func__", target)
    code = getattr(target, "__code__", None)
    held = set()
    if code is None:
        return held
    candidates = []
    for cell in target.__closure__ or ():
        try:
            candidates.append(cell.cell_contents)
        except ValueError:
            pass
    candidates += [target.__globals__[n] for n in code.co_names if n in target.__globals__]
    for obj in candidates:
        if isinstance(obj, np.ndarray):
            held.add(id(obj))
    return held


# ==========================================================================
# The forward pass of each operation as a line of NumPy
# ==========================================================================
# A node's line computes op.forward(*inputs, **params), the registry's own
# NumPy forward. Where that forward is one plain NumPy expression, the line
# is written as that expression (Z1 = X @ W1 + b1); otherwise it calls the
# forward by the op's name, with the op's `code` as a comment.
def _plain_forward(node, a):
    """The forward as a plain expression computing exactly what op.forward computes, or None."""
    name = node._op.name
    data = node._data
    array_result = type(data) is np.ndarray and data.ndim > 0
    if name in _OPERATORS and len(a) == 2:
        return f"{a[0]} {_OPERATORS[name]} {a[1]}"
    if name == "neg":
        return f"-{a[0]}"
    if name == "tanh":
        return f"np.tanh({a[0]})"
    if name == "relu" and array_result:
        return f"np.maximum({a[0]}, 0)"
    if name == "matmul" and array_result:
        return f"{a[0]} @ {a[1]}"
    if name == "linear" and len(a) == 2:
        return f"{a[0]} @ {a[1]}.T"
    if name == "linear" and np.result_type(data, node._inputs[2]._data) == data.dtype:
        return f"{a[0]} @ {a[1]}.T + {a[2]}"  # (the forward adds the bias into the product: the same numbers)
    if name == "transpose":
        return f"{a[0]}.transpose({node._params['axes']!r})"
    if name in ("sum", "mean"):  # (a reduction over every axis is a NumPy scalar: no _s needed)
        axis, keepdims = node._params["axis"], node._params["keepdims"]
        if not keepdims and axis == tuple(range(node._inputs[0]._data.ndim)):
            return f"{a[0]}.{name}(axis={axis!r})"
        return f"_s({a[0]}.{name}(axis={axis!r}, keepdims={keepdims!r}))"
    return None


_OPERATORS = {"add": "+", "sub": "-", "mul": "*", "div": "/"}


def _formula_for(op, i, n_inputs):
    """The lecture formula of an op, the part for input i when it lists one per input."""
    parts = op.formula.split(", ")
    if n_inputs > 1 and len(parts) == n_inputs and all("=" in part for part in parts):
        return parts[i]
    return op.formula


_ACTIVATIONS = {"tanh", "sigmoid", "relu", "softplus", "erf", "exp"}

# --------------------------------------------------------------------------
# The backward lines, written as a course writes them. Each expression computes
# exactly what the op's rule computes (the same NumPy calls on the same
# operands), so the numbers are the engine's; any other case calls the rule.
# --------------------------------------------------------------------------
def _local_expression(node, i, a, out):
    """The local gradient of an elementwise node for input i, as the NumPy its rule computes, or None."""
    name = node._op.name
    if name == "pow" and node._op.inputs == ("x",):  # x ** n for a number n
        n = node._params["exponent"]
        return None if n == 0 else f"({n!r} * {a[0]} ** {n - 1!r})"
    if name == "mul":
        return a[1] if i == 0 else a[0]
    if name == "div":
        return f"(1 / {a[1]})" if i == 0 else f"({out} / -{a[1]})"
    simple = {
        "tanh": f"(1 - {out}**2)", "sigmoid": f"({out} * (1 - {out}))", "relu": f"({out} > 0)",
        "exp": out, "log": f"(1 / {a[0]})", "sqrt": f"(1 / (2 * {out}))", "reciprocal": f"-({out} * {out})",
        "log1p": f"(1 / (1 + {a[0]}))",
    }
    return simple.get(name)


def _sum_to_shape_expression(expr, g_shape, shape):
    """engine.sum_to_shape(expr, shape) written out for a bias (only leading axes summed)."""
    lead = len(g_shape) - len(shape)
    if shape and lead > 0 and all(g_shape[lead + k] == n for k, n in enumerate(shape)):
        axes = tuple(range(lead))
        if not expr.isidentifier():
            expr = f"({expr})"
        return f"{expr}.sum(axis={axes[0] if len(axes) == 1 else axes!r})"
    return f"_sum_to_shape({expr}, {shape!r})"


_SAVED_NAMES = {"probs": "P"}  # what an op saves, named as a course names it (P = softmax(Z))


def _structural_expression(node, i, g, a, scalar_g=False, saved=None):
    """The vector-Jacobian product of a structural node for input i, as the NumPy its rule computes, or None
    (`saved`: the names of what the node's forward saved)."""
    name = node._op.name
    inputs = node._inputs
    x = inputs[0]._data
    params = node._params
    if name == "matmul" and x.ndim == 2 and inputs[1]._data.ndim == 2:
        return f"{g} @ {a[1]}.T" if i == 0 else f"{a[0]}.T @ {g}"
    if name == "linear" and x.ndim == 2:
        return (f"{g} @ {a[1]}", f"{g}.T @ {a[0]}", f"{g}.sum(axis=0)")[i]
    if name == "reshape":
        return f"{g}.reshape({x.shape!r})"
    if name == "softmax_cross_entropy" and i == 0 and x.ndim == 2 and params["axis"] == 1:
        Y = a[1]
        g = g if scalar_g else f"{g}.reshape(({x.shape[0]}, 1))"
        return f"{g} * ({saved['probs']} * {Y}.sum(axis=1, keepdims=True) - {Y})"
    return None


# --------------------------------------------------------------------------
# The program that runs: the same lines, the larger results written with out=
# into buffers made once per signature (NumPy then allocates nothing for them)
# --------------------------------------------------------------------------
_UFUNCS = {"add": "np.add", "sub": "np.subtract", "mul": "np.multiply", "div": "np.divide",
           "tanh": "np.tanh", "exp": "np.exp"}


def _writable_result(data):
    return type(data) is np.ndarray and data.ndim > 0 and data.size > 1


def _fast_forward(node, name, a):
    """The forward line writing into a buffer ({buf}), or None."""
    data = node._data
    if not _writable_result(data):
        return None
    op = node._op.name
    ins = [i._data for i in node._inputs]
    if any(type(x) is not np.ndarray for x in ins):
        return None
    if op == "matmul" and ins[0].ndim == 2 and ins[1].ndim == 2:
        return f"{name} = np.matmul({a[0]}, {a[1]}, out={{buf}})"
    if op == "linear" and ins[0].ndim == 2:
        if len(a) == 2:
            return f"{name} = np.matmul({a[0]}, {a[1]}.T, out={{buf}})"
        if np.result_type(data, ins[2]) == data.dtype:
            return f"{name} = np.matmul({a[0]}, {a[1]}.T, out={{buf}}); np.add({name}, {a[2]}, out={name})"
        return None
    if op == "relu":
        return f"{name} = np.maximum({a[0]}, 0, out={{buf}})"
    if op in _UFUNCS and len(ins) == len(a) and np.result_type(*ins) == data.dtype:
        return f"{name} = {_UFUNCS[op]}({', '.join(a)}, out={{buf}})"
    return None


def _fast_leaf_gradient(node, i, target, g_name, g_uniform, a, share, arg):
    """The line writing a weight's gradient (dW = A.T @ dZ) into {buf}, or None."""
    if not _writable_result(share) or share.shape != np.shape(arg) or share.dtype != arg.dtype or g_uniform:
        return None
    ins = [x._data for x in node._inputs]
    if node._op.name == "matmul" and i == 1 and ins[0].ndim == 2 and ins[1].ndim == 2:
        return f"{target} = np.matmul({a[0]}.T, {g_name}, out={{buf}})"
    if node._op.name == "linear" and i == 1 and ins[0].ndim == 2:
        return f"{target} = np.matmul({g_name}.T, {a[0]}, out={{buf}})"
    return None


def _fast_backward(node, i, target, g_name, g_uniform, a, expr, share, arg):
    """The backward line writing into a buffer ({buf}), or None."""
    if not _writable_result(share) or share.shape != np.shape(arg) or share.dtype != arg.dtype or g_uniform:
        return None
    op = node._op.name
    ins = [x._data for x in node._inputs]
    if op == "matmul" and i == 0 and ins[0].ndim == 2 and ins[1].ndim == 2:
        return f"{target} = np.matmul({g_name}, {a[1]}.T, out={{buf}})"
    if op == "linear" and i == 0 and ins[0].ndim == 2:
        return f"{target} = np.matmul({g_name}, {a[1]}, out={{buf}})"
    match = re.fullmatch(rf"{re.escape(g_name)} \* (\w+|\((\w+) > 0\))", expr)
    if match:
        local = match.group(2) + " > 0" if match.group(2) else match.group(1)
        return f"{target} = np.multiply({g_name}, {local}, out={{buf}})"
    return None


def _plan_buffers(builder):
    """Give each buffered line a buffer. Forward results get one each; in the
    backward pass a buffer whose value is read no more (a backward temporary,
    or a forward result the backward pass is done with) is taken by the next
    result of its shape and dtype. A result computed without out= may be a
    view of its inputs (a reshape, a transpose, a rule's slice), so its inputs'
    buffers stay taken while it is read.
    Returns (forward lines, backward lines, {buffer name: array}, whether
    backward temporaries reuse forward buffers)."""
    program = builder.program
    buffers = {}
    returned = {name for _, _, name, _ in builder.leaf_grads} | set(builder.extra_names)  # handed out: never buffers
    forward = list(program.forward_lines)
    forward_holder = {}  # forward value name -> its buffer
    for k, (name, fast, shape, dtype) in builder.fast_forward.items():
        if name in returned:
            continue
        buf = f"_buf_{name}"
        buffers[buf] = np.empty(shape, dtype)
        forward[k] = fast.replace("{buf}", buf)
        forward_holder[name] = buf
    backward = list(program.backward_lines)
    end = len(backward)
    last_use = {name: end for name in returned}  # (read after the last line: by the return)
    for k, line in enumerate(backward):
        for token in _tokens(line):
            last_use[token] = max(last_use.get(token, -1), k)
    # a view keeps what it views: its inputs are read as long as it is (newest first, so chains carry)
    views = [(line, k in builder.fast_backward) for k, line in enumerate(backward)]
    views = [(line, buffered) for line, buffered in reversed(views)]
    forward_views = [(line, k in builder.fast_forward) for k, line in enumerate(program.forward_lines)][::-1]
    for line, buffered in views + forward_views:
        if buffered or " = " not in line.split("  #")[0]:
            continue
        target, expression = line.split("  #")[0].split(" = ", 1)
        reach = max(last_use.get(t.strip(), -1) for t in target.split(","))
        for token in _tokens(expression):
            last_use[token] = max(last_use.get(token, -1), reach)
    free = {}  # (shape, dtype) -> buffer names no value needs any more
    holder = dict(forward_holder)  # value name -> its buffer
    reuses_forward = False
    for k, line in enumerate(backward):
        for name in [n for n in holder if last_use.get(n, -1) < k]:
            buf = holder.pop(name)
            free.setdefault((buffers[buf].shape, buffers[buf].dtype.str), []).append(buf)
        planned = builder.fast_backward.get(k)
        if planned is None:
            continue
        name, fast, shape, dtype = planned
        if name in returned:
            continue
        pool = free.get((tuple(shape), np.dtype(dtype).str))
        if pool:
            buf = pool.pop()
            reuses_forward = reuses_forward or buf in forward_holder.values()
        else:
            buf = f"_buf_{len(buffers)}"
            buffers[buf] = np.empty(shape, dtype)
        holder[name] = buf
        backward[k] = fast.replace("{buf}", buf) + "  # " + line.split("  # ", 1)[-1]
    # a leaf's gradient (its last share only: the one its .grad receives) goes into a recycled array
    pool = []
    for k, (name, fast, shape, dtype) in builder.fast_leaf.items():
        if name in returned and name not in builder.uniform:
            pool.append(None)
            backward[k] = (fast.replace("{buf}", f"_recycled(_gradients, {len(pool) - 1}, {tuple(shape)!r}, np.{np.dtype(dtype)})")
                           + "  # " + backward[k].split("  # ", 1)[-1])
    if pool:
        buffers["_gradients"] = pool
    return forward, backward, buffers, reuses_forward


def _tokens(line):
    """The names a program line reads or writes (its comment left out)."""
    return re.findall(r"[A-Za-z_]\w*", line.split("  #")[0])


def _recycled(pool, k, shape, dtype):
    """An array for a weight's gradient: the one the last call handed out, when
    nothing holds it any more (optimizer.zero_grad() set the .grad to None),
    else a new one. A new array of a large gradient costs the kernel a page
    fault per 4 KiB every step; a recycled one costs nothing."""
    array = pool[k]
    # 3 references: the pool's, `array` here, and getrefcount's own argument
    if array is None or sys.getrefcount(array) > 3:
        array = pool[k] = np.empty(shape, dtype)
    return array


def _accumulate_into_grad(leaf, gradient):
    """What backward() does with a leaf's gradient: a view or a read-only array
    is copied (a .grad is the leaf's own array); then store it or add it."""
    if type(gradient) is np.ndarray and (gradient.base is not None or not gradient.flags.writeable):
        gradient = gradient.copy()
    leaf.grad = gradient if leaf.grad is None else engine._add_to_grad(leaf, gradient)


_HELPERS = {
    "np": np, "_s": ops._scalar_or_array, "_sum_to_shape": engine.sum_to_shape, "_recycled": _recycled,
}


# ==========================================================================
# Building the program from one traced call
# ==========================================================================
class _Program:
    """The forward and backward programs of one signature, as Python source
    and as the functions compiled from it."""

    def __init__(self):
        self.names = _Names()
        self.namespace = dict(_HELPERS)
        self.forward_lines = []
        self.backward_lines = []
        self.by_identity = {}
        self.kept = []

    def constant(self, value, hint="c"):
        """An expression for a value fixed at trace time: written out when short."""
        if value is None or isinstance(value, (bool, int, float, str, slice)):
            return repr(value)
        if isinstance(value, np.generic) and value.dtype.kind in "fc":
            return f"np.{value.dtype}({value.item()!r})"
        if isinstance(value, tuple) and all(isinstance(v, (int, slice, type(None))) for v in value):
            return repr(value)
        known = self.by_identity.get(id(value))
        if known is not None:
            return known
        name = self.names.new(f"_{hint}")
        self.namespace[name] = value
        self.by_identity[id(value)] = name
        self.kept.append(value)  # so its id stays its own while the program lives
        return name


class _Builder:
    """Linearise one traced call into a `_Program`."""

    def __init__(self, fn, loss, arg_values, raw_args, modules, trace, start_id):
        self.program = _Program()
        self.loss = loss
        self.trace = trace
        self.start_id = start_id
        self.var = {}  # id(Value) -> its name in the program
        self.dynamic = {}  # id(array) -> expression that recomputes it at each call (arguments, host arrays)
        self.params = []  # names of the forward function's parameters, in order
        self.arg_slots = []  # (position in the call, name)
        self.leaves = []  # Values read afresh at every call: (name, Value)
        self.host_steps = []
        self.warned = []
        self.trace_env = {}  # name -> its array in the traced call (for the first call's backward)
        self.done_effects = set()
        self.fast_forward = {}  # line number -> (name, the line writing into {buf}, shape, dtype)
        self.fast_backward = {}
        self.fast_leaf = {}  # the same, for a leaf's gradient (see _recycled)
        self.uniform = {}  # gradient name -> shape, for a gradient kept as one number (see _backward_node)
        self.preferred = {}  # id(node) -> a name as a course writes it (Z1, A1, P, loss)
        self.kept_by_node = {}  # id(node) -> {what its forward kept for a rule: its name in the program}
        self._name_args(fn, arg_values, raw_args)
        self._name_parameters(modules)
        self.held = _arrays_held(fn)

    # ---- naming ------------------------------------------------------------
    def _name_args(self, fn, arg_values, raw_args):
        try:
            arg_names = list(inspect.signature(fn).parameters)
        except (TypeError, ValueError):
            arg_names = []
        for k, raw in enumerate(raw_args):
            wanted = arg_names[k] if k < len(arg_names) and arg_names[k] not in ("args", "kwargs") else f"arg{k}"
            value = arg_values[k]
            if isinstance(value, Value):
                name = self.program.names.new(_identifier(wanted, f"arg{k}"))
                self.var[id(value)] = name
                self.dynamic[id(value._data)] = name
                self.trace_env[name] = value._data
                self.params.append(name)
                self.arg_slots.append((k, name))
            elif isinstance(raw, np.ndarray):
                name = self.program.names.new(_identifier(wanted, f"arg{k}"))
                self.dynamic[id(raw)] = name
                self.trace_env[name] = raw
                self.params.append(name)
                self.arg_slots.append((k, name))

    def _name_parameters(self, modules):
        self.param_names = {}
        for top_name, module in modules:
            for name, p in module.named_parameters():
                self.param_names.setdefault(id(p), _identifier(f"{top_name}_{name}", "p"))

    def name_of(self, value, fallback):
        known = self.var.get(id(value))
        if known is not None:
            return known
        wanted = self.param_names.get(id(value)) or value.label or self.preferred.get(id(value)) or fallback
        name = self.program.names.new(_identifier(wanted, fallback))
        self.var[id(value)] = name
        return name

    # ---- values fixed at trace time, or recomputed --------------------------
    def expression(self, value, hint="c"):
        """The expression of a non-Value that a node keeps (a condition, an index, a bound)."""
        dyn = self._dynamic_of(value) or (self._host(value) if isinstance(value, np.ndarray) else None)
        if dyn is not None:
            return dyn
        if type(value) is tuple:  # a named tuple (a convolution's geometry) is kept whole, as a constant
            parts = [self.expression(v, hint) for v in value]
            return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"
        if isinstance(value, np.ndarray) and value.size > 1:
            self._warn_frozen(f"an array of shape {value.shape} kept by an operation ({hint})")
        return self.program.constant(value, hint)

    def _dynamic_of(self, array):
        if not isinstance(array, np.ndarray):
            return None
        for candidate in (array, array.base):
            if candidate is not None and id(candidate) in self.dynamic:
                return self.dynamic[id(candidate)]
        return None

    def _warn_frozen(self, what):
        self.warned.append(what)

    def _host(self, array):
        """If `array` came from host_array during tracing, emit its recomputation; return its name."""
        for k, (data, fn, inputs) in enumerate(self.trace.hosts):
            if data is array or (isinstance(array, np.ndarray) and array.base is data and data is not None):
                name = self.program.names.new(self.trace.host_names.get(id(data)) or f"host_{k}")
                fn_name = self.program.constant(fn, _identifier(getattr(fn, "__name__", ""), "host_fn").strip("_") or "host_fn")
                args = [self.input_expression(x) for x in inputs]
                self.program.forward_lines.append(f"{name} = {fn_name}({', '.join(args)})")
                self.trace_env[name] = data
                self.dynamic[id(data)] = name
                if isinstance(array, np.ndarray) and array is not data:
                    self.dynamic[id(array)] = name
                return name
        return None

    def input_expression(self, x):
        """The expression of a host function's input: a traced Value, an argument, or a constant."""
        if isinstance(x, Value):
            if id(x) not in self.var and x._op is not None:
                # made by operations outside the loss's graph (x in `where(x > 0, ...)`): emit them too
                self.build_forward([n for n in engine.topological_order([x])[::-1] if id(n) not in self.var and n._op is not None])
            if id(x) in self.var:
                return self.var[id(x)]
            return self.leaf_or_constant(x)
        dyn = self._dynamic_of(x)
        if dyn is not None:
            return dyn
        return self.program.constant(x, "host_input")

    def leaf_or_constant(self, value):
        """A Value without an op: a leaf (read at every call), or a constant."""
        if id(value) in self.var:
            return self.var[id(value)]
        if value.requires_grad or value.label is not None and value._id < self.start_id:
            name = self.name_of(value, "leaf")
            self.trace_env[name] = value._data
            self.params.append(name)
            self.leaves.append((name, value))
            return name
        dyn = self._dynamic_of(value._data) or self._host(value._data)
        if dyn is not None:
            self.var[id(value)] = dyn
            return dyn
        if value._id < self.start_id or id(value._data) in self.held:  # a buffer or an array the caller holds
            name = self.name_of(value, "const")
            self.trace_env[name] = value._data
            self.params.append(name)
            self.leaves.append((name, value))
            return name
        data = value._data
        # (a broadcast copy of one number, such as the seed ag.grad spreads over a sum, depends on nothing)
        if isinstance(data, np.ndarray) and data.size > 1 and 0 not in data.strides:
            self._warn_frozen(f"an array of shape {data.shape} made during the call outside the engine's operations")
        expr = self.program.constant(data, "const")
        self.var[id(value)] = expr
        return expr

    def name_like_a_course(self, nodes, loss):
        """Z1 = X @ W1 + b1, A1 = act(Z1), ..., P = softmax(Z), loss: names for unlabeled nodes."""
        layer = 0
        role = {}  # id(node) -> "Z" or "A" and its layer
        for node in nodes:  # oldest first
            name, inputs = node._op.name, node._inputs
            first = role.get(id(inputs[0])) if inputs else None
            if name in ("linear", "matmul"):
                layer += 1
                role[id(node)] = ("Z" if name == "linear" else "XW", layer)
                if name == "matmul":  # X @ W1 -> X_W1, A1 @ W2 -> A1_W2, from the operands' names
                    left, right = (self._known_name(i, role) for i in inputs)
                    if left and right:
                        self.preferred[id(node)] = f"{left}_{right}"
            elif name == "add" and first is not None and first[0] == "XW" and len(inputs) == 2 and inputs[1]._op is None:
                role[id(node)] = ("Z", first[1])
            elif name in _ACTIVATIONS and first is not None and first[0] == "Z":
                role[id(node)] = ("A", first[1])
            elif name == "softmax":
                self.preferred[id(node)] = "P"
            elif name == "softmax_cross_entropy":
                self.preferred[id(node)] = "losses"
        for node in nodes:
            if id(node) in role and id(node) not in self.preferred:
                kind, k = role[id(node)]
                self.preferred[id(node)] = f"{kind}{k}"
        self.preferred[id(loss)] = "loss"

    def _known_name(self, value, role):
        if id(value) in self.var:
            return self.var[id(value)]
        if value.label:
            return _identifier(value.label, "")
        if id(value) in role and role[id(value)][0] in ("Z", "A"):
            return f"{role[id(value)][0]}{role[id(value)][1]}"
        return self.param_names.get(id(value))

    # ---- forward ------------------------------------------------------------
    def build_forward(self, nodes):
        """One line per node, oldest first (and, as soon as their inputs are ready, the effects)."""
        lines = self.program.forward_lines
        for node in nodes:  # oldest first
            if id(node) in self.var:
                continue
            inputs = [self.var[id(i)] if id(i) in self.var else self.leaf_or_constant(i) for i in node._inputs]
            name = self.name_of(node, node._op.name)
            op = node._op
            if getattr(op, "random", False) or getattr(op, "forward", None) is None:
                raise CompileError(
                    f"compile: the operation {op.name!r} "
                    + ("draws random numbers or has effects, which a replay would repeat blindly"
                       if getattr(op, "random", False) else "has no NumPy forward to replay")
                    + "; run this function eagerly (call it without compile), or draw the random numbers with "
                    "autograd_core.compile.host_array"
                )
            params = ", ".join(f"{k}={self.expression(v, k)}" for k, v in node._params.items())
            plain = None if op.saves else _plain_forward(node, inputs)
            if op.saves:  # the forward also returns what the backward needs again (conv's im2col rows)
                kept = {key: self.program.names.new(_SAVED_NAMES.get(key) or f"{name}_{key}") for key in op.saves}
                self.kept_by_node[id(node)] = kept
                self.trace_env.update({kept_name: (node._saved or {}).get(key) for key, kept_name in kept.items()})
                name = ", ".join([name, *kept.values()])
            if plain is not None:
                lines.append(f"{name} = {plain}")
            else:
                forward = self.program.constant(op.forward, _identifier(op.name, "op"))
                call = ", ".join(inputs + ([params] if params else []))
                comment = f"  # {op.code}" if op.code else ""
                lines.append(f"{name} = {forward}({call}){comment}")
            fast = None if op.saves else _fast_forward(node, name, inputs)
            if fast is not None:
                self.fast_forward[len(lines) - 1] = (name, fast, node._data.shape, node._data.dtype)
            self.trace_env[self.var[id(node)]] = node._data
            self.emit_effects()

    def emit_effects(self, all_left=False):
        """The effects whose inputs are computed (or, at the end, all that are left), in the order they happened."""
        for k, (fn, inputs) in enumerate(self.trace.effects):
            if k in self.done_effects:
                continue
            if all_left or all(not isinstance(x, Value) or id(x) in self.var or x._op is None for x in inputs):
                fn_name = self.program.constant(fn, _identifier(getattr(fn, "__name__", ""), "effect").strip("_") or "effect")
                args = [self.input_expression(x) for x in inputs]
                self.program.forward_lines.append(f"{fn_name}({', '.join(args)})  # an effect, done at every call")
                self.done_effects.add(k)

    # ---- backward -------------------------------------------------------------
    def build_backward(self, nodes, real_leaves):
        """Run the engine's backward loop once on the traced arrays, writing each
        step down as a line (same rules, same order, same numbers)."""
        needed = set(id(leaf) for leaf in real_leaves)
        for node in nodes:  # oldest first: a node is needed when an input is
            if any(id(i) in needed for i in node._inputs):
                needed.add(id(node))
        grads = {}  # id(Value) -> (name of its running gradient, its current array, whether a rule made it)
        loss = self.loss
        grads[id(loss)] = ("d" + self.var[id(loss)], self.loss_seed, False)
        order = sorted((n for n in nodes if id(n) in needed), key=lambda n: n._id, reverse=True)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            for node in order:
                if id(node) not in grads:
                    continue
                g_name, g, _ = grads[id(node)]
                self._backward_node(node, g_name, g, grads, needed)
        self.leaf_grads = []
        for leaf in real_leaves:
            if id(leaf) in grads:
                name, value, owned = grads[id(leaf)]
                self.leaf_grads.append((self.var[id(leaf)], leaf, name, owned))
        return grads

    def _backward_node(self, node, g_name, g, grads, needed):
        """One node of the engine's backward loop (engine.backpropagate), run on
        the traced arrays and written down: for each input, the share (upstream
        times the local gradient summed back to the input's shape, or the
        op's vector-Jacobian product), cast to the input's dtype, added to the
        input's running gradient."""
        lines = self.program.backward_lines
        op = node._op
        out_name = self.var[id(node)]
        out = node._data
        inputs = node._inputs
        args = [i._data for i in inputs]
        arg_names = [self.var.get(id(i)) or self.leaf_or_constant(i) for i in inputs]
        params_expr = "".join(f", {k}={self.expression(v, k)}" for k, v in node._params.items())
        kept = self.kept_by_node.get(id(node), {})
        # A gradient every element of which is one number (below a sum or a mean
        # over everything) is kept as that number: multiplying by it gives the
        # same values as multiplying by its broadcast copy, without making one.
        g_uniform = g_name in self.uniform
        g_full = f"np.broadcast_to({g_name}, {self.uniform[g_name]!r})" if g_uniform else g_name
        for i, inp in enumerate(inputs):
            if id(inp) not in needed or not inp.requires_grad:
                continue
            rule = op.grads[i]
            # what the forward kept for this input's rule (conv's rows for dL/dW), passed to that rule only
            saved = {key: name for key, name in kept.items() if op.saves[key] == op.inputs[i]}
            params = {**node._params, **{key: (node._saved or {}).get(key) for key in saved}}
            rule_params_expr = params_expr + "".join(f", {key}={name}" for key, name in saved.items())
            uniform = False
            if op.elementwise:
                local = rule(*args, out, **params)
                share = g * local
                sums = np.shape(share) != inp.shape
                if type(local) is int and local in (1, -1):  # upstream x 1: the upstream gradient as it is
                    gx = g_full if sums else g_name
                    expr = gx if local == 1 else f"-{gx}"
                    uniform = g_uniform and not sums
                else:
                    readable = _local_expression(node, i, arg_names, out_name)
                    if readable is None:
                        rule_name = self.program.constant(rule, f"d_{_identifier(op.name, 'op')}_{op.inputs[min(i, len(op.inputs) - 1)].strip('*')}")
                        readable = f"{rule_name}({', '.join(arg_names)}, {out_name}{rule_params_expr})"
                    local_is_full = isinstance(local, np.ndarray) and local.shape == np.shape(share)
                    local_is_number = not isinstance(local, np.ndarray)
                    gx = g_name if g_uniform and (local_is_full or (local_is_number and not sums)) else g_full
                    expr = f"{gx} * {readable}"
                    uniform = g_uniform and local_is_number and not sums
                if sums:
                    expr = _sum_to_shape_expression(expr, np.shape(share), inp.shape)
                share = engine.sum_to_shape(share, inp.shape)
            else:
                share = rule(g, *args, out, **params)
                if share is None:
                    continue
                expr = None
                if op.name in ("sum", "mean") and params["axis"] == tuple(range(args[0].ndim)) and not params["keepdims"]:
                    # d sum/dx is the upstream number everywhere; d mean/dx that number over n
                    count = args[0].size
                    if op.name == "sum":
                        expr = g_name
                    elif np.result_type(g) == np.float16 and count > 2048:
                        expr = f"{g_name} * {float(1 / count)!r}"
                    else:
                        expr = f"{g_name} / {count!r}"
                    uniform = True
                elif g_uniform and op.name == "softmax_cross_entropy":
                    expr = _structural_expression(node, i, g_name, arg_names, scalar_g=True, saved=saved)
                if expr is None:
                    expr = _structural_expression(node, i, g_full, arg_names, saved=saved)
                if expr is None:
                    rule_name = self.program.constant(rule, f"d_{_identifier(op.name, 'op')}_{op.inputs[min(i, len(op.inputs) - 1)].strip('*')}")
                    call_args = ", ".join([g_full] + arg_names + [out_name])
                    expr = f"{rule_name}({call_args}{rule_params_expr})"
            if share.dtype != inp.dtype:
                share = share.astype(inp.dtype)
                if uniform:
                    expr, uniform = f"np.broadcast_to({expr}, {inp.shape!r})", False
                expr = f"({expr}).astype(np.{inp.dtype})"
            formula = f"  # {_formula_for(op, i, len(inputs))}"
            if id(inp) not in grads:
                same_shape = not uniform or self.uniform.get(g_name) == inp.shape
                if expr == g_name and same_shape:  # the upstream gradient passed through (a + b): no line, the same name
                    grads[id(inp)] = (g_name, share, False)
                    continue
                share_name = self.program.names.new(f"d{arg_names[i]}")
                lines.append(f"{share_name} = {expr}{formula}")
                fast = _fast_backward(node, i, share_name, g_name, g_uniform, arg_names, expr, share, args[i])
                if fast is not None and inp._op is not None:
                    self.fast_backward[len(lines) - 1] = (share_name, fast, share.shape, share.dtype)
                elif fast is None and inp._op is None and op.name in ("linear", "matmul"):
                    fast = _fast_leaf_gradient(node, i, share_name, g_name, g_uniform, arg_names, share, args[i])
                    if fast is not None:  # a weight's gradient: into a recycled array (see _recycled)
                        self.fast_leaf[len(lines) - 1] = (share_name, fast, share.shape, share.dtype)
                if uniform:
                    self.uniform[share_name] = inp.shape
                grads[id(inp)] = (share_name, share, True)
            else:
                total_name, total, _ = grads[id(inp)]
                if uniform and total_name in self.uniform:
                    expr = f"np.broadcast_to({expr}, {inp.shape!r})"
                new_name = self.program.names.new(f"d{arg_names[i]}")
                lines.append(f"{new_name} = {total_name} + {expr}{formula}, added to what {arg_names[i]} got before")
                grads[id(inp)] = (new_name, total + share, True)


# ==========================================================================
# The compiled function
# ==========================================================================
class _Signature:
    """One traced call made into programs: forward(*inputs) -> (loss, saved);
    backward(saved, dloss) -> leaf gradients."""

    def __init__(self, source, runs, namespace, source_namespace, arg_slots, leaves, leaf_grads, buffered, loss_node):
        self.source = source  # what source() shows: plain NumPy, one line per operation
        self.runs = runs  # what runs: the same lines, the larger results written into buffers
        self.namespace = source_namespace  # what `source` needs to run (helpers, rules, constants)
        # (builtins.compile: this module's own `compile` is the public function below)
        exec(builtins.compile(runs, "<autograd_core.compile program>", "exec"), namespace)  # noqa: S102
        self.forward = namespace["forward"]
        self.backward = namespace["backward"]
        self.arg_slots = arg_slots
        self.leaves = leaves
        self.leaf_grads = leaf_grads
        self.buffered = buffered
        self.generation = 0  # counts replays: a result's saved arrays live in buffers until the next one
        self.loss_dtype = loss_node._data.dtype
        self.loss_shape = loss_node._data.shape


class CompiledResult:
    """The result of a compiled call: its data, and a ``backward()`` that runs the
    compiled backward program (filling the leaves' ``.grad`` as eager does).

    It ends the compiled graph: it is not a Value, so no operation can be
    built on it (that operation would be outside the program, and its
    gradient lost); tools that walk a graph (``BackpropStepper``,
    ``draw_graph``) need an eager result: ``step.eager(*args)``.
    """

    __slots__ = ("_data", "grad", "_signature", "_saved", "_generation")
    requires_grad = True
    label = None
    # what grad(), draw_graph and BackpropStepper add to their "must be a Value" error
    not_a_value_hint = ("; this is the result of a compiled function, which keeps no graph to walk: "
                        "call step.eager(*args) (or the uncompiled function) for an eager Value")

    def __init__(self, signature, data, saved, generation=None):
        self._data = data
        self.grad = None
        self._signature = signature
        self._saved = saved
        self._generation = generation

    # ---- what a loss is read for --------------------------------------------
    @property
    def data(self):
        return self._data

    @property
    def shape(self):
        return np.shape(self._data)

    @property
    def dtype(self):
        return self._data.dtype

    @property
    def size(self):
        return np.size(self._data)

    def item(self):
        return self._data.item()

    def __float__(self):
        return float(self._data)

    def numpy(self):
        return np.asarray(self._data)

    def __repr__(self):
        return f"CompiledResult(data={self._data!r})"

    def _ends_the_graph(self, *args):
        raise CompileError(
            "compile: a compiled result ends the compiled graph: no operation can be built on it. Put the "
            "operation inside the compiled function (return the Value you need), or run the function eagerly"
        )

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = __rtruediv__ = _ends_the_graph
    __pow__ = __matmul__ = __neg__ = __getitem__ = _ends_the_graph
    __array_ufunc__ = None  # NumPy defers to the operators above

    # ---- the backward pass --------------------------------------------------------
    def backward(self, grad=None, retain_graph=False, create_graph=False):
        """Run the compiled backward pass; leaves accumulate ``.grad`` as in eager mode."""
        if create_graph:
            raise CompileError(
                "compile: backward(create_graph=True) needs eager mode (the compiled program computes arrays, "
                "not a graph); call the function without compile, or use ag.grad on an eager result"
            )
        if self._saved is None:
            if self._generation == -1:
                raise CompileError(
                    "compile: this compiled step's backward pass writes its temporaries over the forward results "
                    "it is done with, so it runs once per call even with retain_graph=True; call the step again "
                    "for another backward(), or run the function eagerly"
                )
            raise engine.GraphFreedError(
                "backward(): this compiled result's backward already ran and its saved arrays were freed; "
                "pass retain_graph=True to the first backward() to run it twice"
            )
        if self._generation is not None and self._generation != self._signature.generation:
            raise CompileError(
                "compile: a later call of the compiled step reused the buffers this result's backward() reads; "
                "call backward() on a result before calling the step again (or run the function eagerly)"
            )
        if engine._current_modes().anomaly:
            raise CompileError(
                "compile: detect_anomaly() needs eager mode to say which operation produced a NaN or inf; "
                "call the function inside detect_anomaly() without compile (step.eager(...))"
            )
        seed = engine._seed_gradient(self, grad, "backward()")
        signature = self._signature
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            gradients = signature.backward(self._saved, seed)
        for leaf, gradient in zip(signature.leaf_grads, gradients):
            _accumulate_into_grad(leaf, gradient)
        if not retain_graph:
            self._saved = None
        elif self._generation is not None and signature.reuses_forward:
            # this backward wrote its temporaries over forward results it was done with: a second one cannot run
            self._saved = None
            self._generation = -1


def _result(signature, data, saved, generation=None):
    return CompiledResult(signature, data, saved, generation)


class Compiled:
    """A function compiled by `compile`: call it like the function."""

    def __init__(self, fn, warn_frozen=True):
        if not callable(fn):
            raise TypeError(f"compile: expects a function returning a one-element Value, got {type(fn).__name__}")
        self.fn = fn
        self.warn_frozen = warn_frozen
        self._signatures = {}
        self._modules = None
        self._calls = 0
        self._replays = 0
        self._last = None
        try:
            self._parameters = inspect.signature(fn)
        except (TypeError, ValueError):
            self._parameters = None

    # ---- the call --------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        if kwargs:
            raise TypeError(f"compile: pass the arguments of {self._name()} by position (got keywords {sorted(kwargs)})")
        if engine._current_modes().anomaly:
            self._check_count(args)
            return self.fn(*args)  # detect_anomaly(): eager mode says which operation went wrong
        if self._modules is None:
            self._check_count(args)
            self._modules = _modules_reached(self.fn, args)
            # every module below them, once: their train/eval modes are part of the key
            self._all_modules = [m for _, top in self._modules for _, m in top.named_modules()]
        key = self._key(args)
        self._calls += 1
        signature = self._signatures.get(key)
        if signature is None:
            self._check_count(args)  # (a wrong count is a new key: checked here, not on every call)
            return self._trace(key, args)
        self._replays += 1
        self._last = signature
        inputs = [None] * len(signature.arg_slots)
        for slot, (k, _) in enumerate(signature.arg_slots):
            arg = args[k]
            inputs[slot] = arg._data if isinstance(arg, Value) else arg
        for _, leaf in signature.leaves:
            inputs.append(leaf._data)
        if signature.extras:
            loss, saved, extras = signature.forward(*inputs)
        else:
            loss, saved = signature.forward(*inputs)  # NumPy warns here as the eager forward pass would
        if signature.buffered:
            signature.generation += 1
        result = _result(signature, loss, saved, signature.generation if signature.buffered else None)
        if signature.extras:
            return (result,) + tuple(Value(v, requires_grad=False) for v in extras)
        return result

    def eager(self, *args):
        """Run the function eagerly (no compilation): for `detect_anomaly()` and the stepper."""
        return self.fn(*args)

    def cache_info(self):
        """How many signatures were traced, calls made, calls replayed."""
        return CacheInfo(len(self._signatures), self._calls, self._replays)

    def source(self, *args):
        """The forward and backward program of the last traced signature (or of
        the signature of `args`), as runnable Python."""
        signature = self._last
        if args:
            signature = self._signatures.get(self._key(args))
        if signature is None:
            raise CompileError("compile: source() needs a traced call first: call the compiled function once")
        return signature.source

    def program(self, *args):
        """``source()`` run as Python: a dict with its ``forward`` and ``backward``
        functions (and the helpers, rules and constants the source names), to
        call by hand: ``forward(*arguments, *parameters) -> (loss, saved)``,
        ``backward(saved, dloss) -> the parameters' gradients``."""
        signature = self._last if not args else self._signatures.get(self._key(args))
        source = self.source(*args)
        namespace = dict(signature.namespace)
        exec(builtins.compile(source, "<autograd_core.compile source()>", "exec"), namespace)  # noqa: S102
        return namespace

    def _name(self):
        return getattr(self.fn, "__name__", type(self.fn).__name__)

    def _check_count(self, args):
        if self._parameters is None:
            return
        try:
            self._parameters.bind(*args)
        except TypeError as exc:
            raise TypeError(f"compile: {self._name()}{self._parameters} cannot take {len(args)} arguments: {exc}") from None

    def _key(self, args):
        parts = []
        for k, arg in enumerate(args):
            if isinstance(arg, Value):
                parts.append(("Value", arg._data.shape, arg._data.dtype.str, arg.requires_grad))
            elif isinstance(arg, np.ndarray):
                parts.append(("array", arg.shape, arg.dtype.str))
            elif isinstance(arg, (bool, int, float, str, type(None))):
                parts.append(("static", type(arg).__name__, arg))
            elif hasattr(arg, "named_parameters"):
                parts.append(("module", id(arg)))
            else:
                raise TypeError(
                    f"compile: argument {k} of {self._name()} is a {type(arg).__name__}; a compiled function takes "
                    f"NumPy arrays, Values, modules and Python numbers (convert lists with np.asarray)"
                )
        return tuple(parts), tuple([m.training for m in self._all_modules])

    # ---- tracing -------------------------------------------------------------------
    def _trace(self, key, args):
        start_id = engine._next_id()
        arg_values = []
        call_args = []
        for arg in args:
            if isinstance(arg, np.ndarray) and arg.dtype.kind == "f":
                value = Value(arg, requires_grad=True)  # so every operation made from it is recorded
                arg_values.append(value)
                call_args.append(value)
            elif isinstance(arg, Value):
                value = arg if arg.requires_grad else Value(arg._data, requires_grad=True, label=arg.label)
                arg_values.append(value)
                call_args.append(value)
            else:
                arg_values.append(None)
                call_args.append(arg)
        with _Trace() as trace:
            loss = self.fn(*call_args)
        extras = ()
        if isinstance(loss, tuple) and loss and all(isinstance(v, Value) for v in loss):
            loss, extras = loss[0], loss[1:]  # (loss, logits, ...): the others come back as data
        if not isinstance(loss, Value):
            raise CompileError(
                f"compile: {self._name()} must return a Value (the loss), or a tuple of Values whose first is "
                f"the loss, got {type(loss).__name__}"
            )
        if loss._data.size != 1:
            raise CompileError(
                f"compile: {self._name()} must return a one-element Value (the loss), got shape {loss.shape}; "
                f"reduce it with .sum() or .mean()"
            )
        nodes = engine.topological_order([loss])[::-1]  # oldest first
        builder = _Builder(self.fn, loss, arg_values, args, self._modules, trace, start_id)
        real_leaves = []
        for node in nodes:
            if node._op is None and node.requires_grad:
                is_arg = any(node is v for v in arg_values) and not any(node is a for a in args)
                if not is_arg:
                    real_leaves.append(node)
        op_nodes = [n for n in nodes if n._op is not None]
        if not op_nodes:
            raise CompileError(f"compile: {self._name()} returned a Value made by no operation: nothing to compile")
        builder.name_like_a_course(op_nodes, loss)
        for leaf in real_leaves:
            builder.leaf_or_constant(leaf)
        builder.build_forward(op_nodes)
        builder.extra_names = [builder.input_expression(v) for v in extras]
        builder.emit_effects(all_left=True)
        builder.loss_seed = engine._seed_gradient(loss, None, "backward()")
        builder.build_backward(op_nodes, real_leaves)
        signature = self._assemble(builder, loss, op_nodes)
        if builder.warned and self.warn_frozen:
            warnings.warn(
                f"compile: {self._name()} made {len(builder.warned)} array(s) outside the engine's operations "
                f"({builder.warned[0]}); a compiled step keeps them as they were at the first call. If they "
                f"depend on the arguments, make them with autograd_core.compile.host_array",
                stacklevel=3,
            )
        self._signatures[key] = signature
        self._last = signature
        saved = tuple(builder.trace_env[name] for name in builder.saved_names)  # the traced call's own arrays
        result = _result(signature, loss._data, saved)
        if extras:
            return (result,) + tuple(Value(v._data, requires_grad=False) for v in extras)
        return result

    def _assemble(self, builder, loss, op_nodes):
        program = builder.program
        loss_name = builder.var[id(loss)]
        saved = {}  # (a dict: ordered, and a fast `in`)
        for line in program.backward_lines:
            for token in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", line.split("  #")[0]):
                if token not in saved and token in builder.trace_env:  # a name the forward program defines
                    saved[token] = None
        saved = list(saved)
        builder.saved_names = saved
        params = ", ".join(builder.params)
        results = [f"np.broadcast_to({name}, {leaf.shape!r})" if name in builder.uniform else name
                   for _, leaf, name, _ in builder.leaf_grads]

        def program_text(forward_lines, backward_lines):
            forward = [f"def forward({params}):"] + ["    " + line for line in forward_lines]
            extras = f", ({', '.join(builder.extra_names)},)" if builder.extra_names else ""
            forward.append(f"    return {loss_name}, ({', '.join(saved)}{',' if len(saved) == 1 else ''}){extras}")
            backward = ["def backward(saved, d" + loss_name + "):"]
            if saved:
                backward.append(f"    {', '.join(saved)}{',' if len(saved) == 1 else ''} = saved")
            backward += ["    " + line for line in backward_lines]
            backward.append(f"    return ({', '.join(results)}{',' if len(results) == 1 else ''})")
            return "\n".join(forward) + "\n\n\n" + "\n".join(backward) + "\n"

        fast_forward, fast_backward, buffers, reuses_forward = _plan_buffers(builder)
        source = program_text(program.forward_lines, program.backward_lines)
        runs = program_text(fast_forward, fast_backward)
        namespace = dict(program.namespace)
        namespace.update(buffers)
        signature = _Signature(
            source, runs, namespace, program.namespace, builder.arg_slots, builder.leaves,
            [leaf for _, leaf, _, _ in builder.leaf_grads], bool(buffers), loss,
        )
        signature.extras = bool(builder.extra_names)
        signature.reuses_forward = reuses_forward
        return signature


def compile(fn):  # noqa: A001 (the name the course uses: ag.compile)
    """Compile `fn` (arrays in, a one-element Value out) into a step that
    traces once per argument signature and then replays flat NumPy.

    >>> import numpy as np, autograd_core as ag
    >>> w = ag.Value(np.array([0.5]), label="w")
    >>> step = ag.compile(lambda x: ((x * w) ** 2).sum())
    >>> float(step(np.array([2.0])).data), float(step(np.array([4.0])).data)
    (1.0, 4.0)
    """
    return Compiled(fn)


# `autograd_core.compile` is this function once the package is imported; these
# keep the module's helpers reachable through it (ag.compile.host_array).
compile.host_array = host_array
compile.effect = effect
compile.CompileError = CompileError
compile.is_tracing = is_tracing
