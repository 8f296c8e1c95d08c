"""The writer: one traced call made into the lines of a forward and a backward program.

The forward program is the traced call replayed in the order it happened:
one line per recorded operation (``op.forward`` with its inputs and
parameters), the host arrays made again and the effects done again where
they were made. The backward program is written by the engine's own
backward loop: :func:`engine.backpropagate` runs once on the traced arrays
and, through its ``on_node`` hook, tells the writer each share it computed;
the writer writes that share as the loop computed it (the op's rule, times
the upstream gradient for an elementwise op, summed back to the input's
shape, cast, added to what the input got before).

Every line is then checked (`check`): the program runs once on the traced
arrays, and each line must give the bits the engine gave. A readable line
that does not falls back to calling the engine's function itself.
"""

from __future__ import annotations

import ast
import functools
import types

import numpy as np

from .. import engine, ops
from ..ops import F
from ..engine import Value
from .program import Line, Namespace, Names, _expression_code, call_text, dtype_text, evaluate, identifier

from ..modes import _place_text, _user_frame, quiet_float_errors
from .library import _is_library_function
from .guards import is_own
from .tracer import _ORIGINALS, CompileError, _FollowedArray, _TracedMask, is_python_like_number


def same_bits(a, b):
    """The same type, dtype, shape, memory layout and bytes (so -0.0 differs from 0.0), NaN equal to any NaN:
    the engine's two backward loops give NaNs of either sign (``-g`` and ``g * -1``), and a NaN's sign is no
    number of eager's. The layout is part of it: a sum goes in memory order, so a gradient laid out
    otherwise sums to other bits (the strides of axes of length 1 do not count)."""
    if type(a) is not type(b) and not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
        return False
    if type(a) is np.ndarray and _layout(a) != _layout(b):
        return False
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.tobytes() == b.tobytes():
        return True
    if a.dtype.kind != "f":
        return False
    nan = np.isnan(a)
    return bool(np.array_equal(nan, np.isnan(b))) and a[~nan].tobytes() == b[~nan].tobytes()


def _declared(op):
    """An op's ``as_numpy`` forms, where the library declares them: they are tested against its rules on
    every case; a user's op is written from its functions themselves (a form that agrees with them on the
    traced call's numbers only would be replayed on every other call)."""
    return op.as_numpy if _library_op(op) else {}


def _library_op(op):
    """Whether `op` is the library's: its functions are, a ufunc or an operator function (np.exp,
    operator.add) beside at least one written in the library (a user's op of ufuncs alone is not)."""
    kinds = [_is_library_code(fn) for fn in (op.forward, *(() if op.variadic else op.grads))]
    return False not in kinds and True in kinds


def _is_library_code(fn):
    """True for a function of the library's, None for a builtin one (np.exp, operator.add), else False (a
    callable object of the user's class too)."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    if getattr(fn, "__code__", None) is None:
        return None if isinstance(fn, (np.ufunc, types.BuiltinFunctionType)) else False
    return _is_library_function(fn) or False


def _share_given(share, op_name, i, none=False):
    """A user's rule's share (a replay's), refused where it is None and the traced call's was not, or the
    other way round (`none`): the program has the lines of the traced call's."""
    if (share is None) != none:
        raise CompileError(f"compile: the rule of your operation {op_name!r} for its input {i} gave "
                           f"{'a share' if none else 'None (no share)'} where the traced call's gave "
                           f"{'None' if none else 'one'}; a compiled step runs the traced call's lines. Give a "
                           f"share at every call (zeros for none), or run the function eagerly")
    return share


def _shape_checked(record):
    """The user's host function, its array checked at every call to have the traced call's shape and
    dtype: the program's buffers and lines have them (np.flatnonzero(mask) has as many as the mask holds)."""
    fn, shape, dtype = record.fn, record.result.shape, record.result.dtype

    def host(*inputs):
        result = fn(*inputs)
        got = getattr(result, "shape", None)
        if got != shape or np.asarray(result).dtype != dtype:
            got = np.shape(result) if got is None else got
            raise CompileError(
                f"compile: the host array {record.name or getattr(fn, '__name__', 'host')!r} has shape {got}, "
                f"{np.asarray(result).dtype} at this call and had {shape}, {dtype} at the traced call; a compiled "
                f"step computes with the traced call's shapes. Give it a fixed shape (a mask instead of the indices "
                f"it selects), or run the function eagerly"
            )
        return result

    host.__name__ = getattr(fn, "__name__", "host")
    return host


def _layout(a):
    return tuple(stride for stride, n in zip(a.strides, a.shape) if n > 1)


class Build:
    """Everything one trace made: the lines, the names, and what the runtime binds."""

    def __init__(self):
        self.names = Names()
        self.namespace = Namespace(self.names)
        self.forward = []  # Line
        self.backward = []  # Line
        self.params = []  # names of the forward function's parameters, in order
        self.arg_slots = []  # (position of the argument in the call, its name)
        self.leaves = []  # (name, Value): parameters read afresh at every call
        self.grad_leaves = []  # (Value or ("arg", k), name of its gradient): what backward returns
        self.trace_env = {}  # program name -> the traced call's array
        self.loss_name = None
        self.extra_names = []
        self.used = []  # objects outside the arguments the trace read: guarded by the runtime
        self.frozen = []  # arrays made during the call that the program keeps as they were (warned about)
        self.host_fns = {}  # program name of a host function -> its record (the check replays their results)
        self.effect_written = {}  # id -> an array an effect wrote into (set by the runtime: see guards.EffectChanges)
        self.checked = set()  # ids of the Values eager's backward checks (set by the runtime: the result watches them)
        self.checked_arg_slots = []  # the positions of the arguments among them


class Writer:
    def __init__(self, parameter_names, loss, extras, call_args, raw_args, trace):
        self.b = Build()
        self.trace = trace
        self.loss = loss
        self.extras = extras
        self.var = {}  # id(Value) -> its name
        self.known = {}  # id(array) -> the program name that holds it at every call
        self.values = {}  # id(Value) -> Value (keeps them alive while ids are keys)
        self.kept_names = {}  # id(node) -> {what its forward kept: its program name}
        self.preferred = {}  # id(node) -> a name as a course writes it (Z1, A1, P, losses, loss)
        self.uniform = {}  # gradient name -> (text of its one number, the shape it is repeated to)
        self.writing = None  # the node whose line is being written (its user's line names a refusal)
        self._name_args(parameter_names, call_args, raw_args)

    # ---- arguments and leaves ------------------------------------------------
    def _name_args(self, wanted, call_args, raw_args):
        """The forward function's parameters for the arguments, named as the compiled function names them."""
        for k, (arg, raw) in enumerate(zip(call_args, raw_args)):
            if isinstance(arg, Value):
                name = self.b.names.new(wanted[k] if k < len(wanted) else f"arg{k}", f"arg{k}")
                self.b.params.append(name)
                self.b.arg_slots.append((k, name))
                if id(arg) in self.var:  # the same Value passed again: the program reads it by its first name
                    self.b.trace_env[name] = arg._data
                    continue
                self._define(arg, name)
                if isinstance(raw, Value) and raw.requires_grad:
                    self.b.grad_leaves.append((("arg", k), arg))
            elif isinstance(raw, np.ndarray) and not is_python_like_number(raw):  # an integer array (labels)
                name = self.b.names.new(wanted[k] if k < len(wanted) else f"arg{k}", f"arg{k}")
                self.known[id(arg)] = name  # the traced view of it the function got,
                self.known[id(arg.base)] = name  # and the copy it views (np.asarray(labels) is a view of that)
                self.b.trace_env[name] = raw
                self.b.params.append(name)
                self.b.arg_slots.append((k, name))

    def _define(self, value, name):
        self.var[id(value)] = name
        self.values[id(value)] = value
        self.known.setdefault(id(value._data), name)
        self.b.trace_env[name] = value._data

    def value_name(self, value):
        """The program's name (or constant text) for a Value an operation reads."""
        name = self.var.get(id(value))
        if name is not None:
            return name
        start = self.trace.start_id
        if value._id < start:  # made before the call: a parameter (or a constant) of the caller's
            if value._op is not None and value.requires_grad:
                raise CompileError(
                    f"compile: the function uses a Value computed before the call ({value.op} of shape {value.shape}), "
                    f"whose graph lies outside the function: its gradient could not reach that graph. Compute it "
                    f"inside the function, or pass its .detach() (a constant)"
                )
            path = self.trace.path_of(value)  # model.0.weight: the name a reader knows it by
            name = self.b.names.new(path if path and value.requires_grad else value.label, "leaf")
            self._define(value, name)
            self.b.params.append(name)
            self.b.leaves.append((name, value))
            self.b.used.append(value)
            if value.requires_grad:
                self.b.grad_leaves.append((value, value))
            return name
        # made during the call without an operation: a constant, unless it holds an array the program makes
        data = value._data
        text = self.array_text(data, "const", made_here=not (isinstance(data, np.ndarray) and self._reachable_constant(
            data)), made_id=value._id)
        self.var[id(value)] = text
        self.values[id(value)] = value
        return text

    def array_text(self, data, hint, made_here=False, made_id=None):
        """The expression of an array (or number) an operation or a host function reads (`made_id`: the
        number of the constant Value holding it)."""
        converted = self.trace.converted.get(id(data))
        if converted is not None and converted[1] is data:  # a host array made into a Value's data
            record, name = converted[0], self.host_line(converted[0])
            if isinstance(data, np.generic) and record.result.ndim == 0 and record.result.dtype == data.dtype:
                return f"{name}[()]"  # a 0-d array's number (what engine.as_data makes of it)
            self.b.namespace.bind("_as_data", _ORIGINALS["as_data"])
            return f"_as_data({name})"
        if isinstance(data, np.ndarray):
            known = self.known.get(id(data))
            if known is not None:
                return known
            record = self.trace.host_record_of(data)
            if record is not None:
                return self.host_line(record)
            base = data.base
            while base is not None:
                if id(base) in self.known or id(base) in self.trace.by_result:
                    if _same_layout(data, base):  # np.asarray of it: the same numbers, seen as another class
                        return self.array_text(base, hint, made_here)
                    raise CompileError(
                        f"compile: a view of an array the compiled step remakes at every call (shape {data.shape}, "
                        f"a slice or a transpose made in NumPy) is read at {self._where()}; a replay could not remake "
                        f"the view. Make it with the engine's operations (v[::-1], v.T), or inside a host_array function"
                    )
                base = base.base
            chain, base = [data], data.base
            while base is not None:
                chain.append(base)
                base = base.base
            if any(isinstance(a, _FollowedArray) for a in chain):  # (a copy, a take, a fancy index of one)
                raise CompileError(
                    f"compile: an array computed in NumPy from an integer argument or from a traced mask or index "
                    f"(shape {data.shape}: y.copy(), (v > 0)[[0]], ag.argsort(v).take([0])) is read by an operation "
                    f"(at {self._where()}); a compiled step would keep the first call's numbers. Compute it with "
                    f"autograd_core.compile.host_array(fn, argument), which every call computes again"
                )
            if not made_here:  # an array of the caller's, of any size: guarded to be the same object at every call
                self.b.used.append(data)
            elif data.size > 1 and 0 not in data.strides and not any(map(ops.is_shape_constant, chain)):
                self.b.frozen.append(f"an array of shape {data.shape} made during the call outside the engine's operations")
                self._refuse_in_a_graph_backward(data, made_id)
        elif type(data) is _TracedMask:
            return self.host_line(self.trace.by_result[id(data)])
        if made_here and isinstance(data, (np.ndarray, np.generic)) and data.dtype == bool:
            self._refuse_in_a_graph_backward(data, made_id)  # (a mask of one number: relu's of a 0-d Value)
        return self.b.namespace.constant(data, hint)

    def _refuse_in_a_graph_backward(self, data, made_id=None):
        """An array computed in NumPy from the data that a backward with create_graph=True made (a gradient
        penalty through relu): its rule's mask, which a replay would keep. (`made_id`: the number of its
        constant Value, else that of the operation reading it: a table made before it is the forward's.)"""
        made_id = made_id if made_id is not None else self.writing._id if self.writing is not None else None
        if made_id is not None and any(a <= made_id < b for a, b in self.trace.graph_backwards):
            raise CompileError(
                f"compile: a gradient built with create_graph=True (a gradient penalty) reads an array of shape "
                f"{np.shape(data)} that a rule computed from the data in NumPy (relu's mask out > 0, a rule of "
                f"yours on its saved arrays); a replay would keep the first call's. Differentiate twice through "
                f"smooth operations (tanh, sigmoid, gelu), or compute this gradient eagerly")

    def param_text(self, value, hint):
        """A parameter of an operation (an axis, an index, a condition): arrays inside it are followed."""
        kind = type(value)
        if isinstance(value, np.ndarray):
            return self.array_text(value, hint, made_here=not self._reachable_constant(value))
        if kind is tuple or kind is list:
            if any(isinstance(v, (np.ndarray, tuple, list)) for v in value):
                parts = [self.param_text(v, hint) for v in value]
                if kind is list:
                    return "[" + ", ".join(parts) + "]"
                return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"
        return self.b.namespace.constant(value, hint)

    def _reachable_constant(self, array):
        return self.trace.held(array)

    # ---- forward -------------------------------------------------------------
    def host_line(self, record):
        """The line remaking a host array (once), or doing an effect again; returns its name."""
        if record.line_name is not None:
            return record.line_name
        fn_name = self.b.names.new("_" + identifier(record.name or getattr(record.fn, "__name__", ""), "host") + "_fn")
        self.b.namespace[fn_name] = record.fn if record.is_effect or is_own(record.fn) else _shape_checked(record)
        self.b.namespace.kept.append(record.fn)
        self.b.host_fns[fn_name] = record
        args = [self.value_name(x) if isinstance(x, Value) else self.param_text(x, "host_input") for x in record.inputs]
        if record.is_effect:
            line = Line((), f"{fn_name}({', '.join(args)})", args, "an effect, done again at every call", keep=True)
            record.line_name = ""
        else:
            name = self.b.names.new(record.name or "host", "host")
            line = Line((name,), f"{fn_name}({', '.join(args)})", args, keep=True, value=(record.result,))
            record.line_name = name
            self.known[id(record.result)] = name
            self.b.trace_env[name] = record.result
        self.b.forward.append(line)
        return record.line_name

    def forward(self, nodes):
        """The lines of the forward program: operations, host arrays and effects, in the order they happened."""
        hosts = sorted(self.trace.hosts, key=lambda r: r.when)
        h = 0
        for node in nodes:  # oldest first
            while h < len(hosts) and hosts[h].when < node._id:
                self.host_line(hosts[h])
                h += 1
            self.node_line(node)
        for record in hosts[h:]:
            self.host_line(record)
        self.b.loss_name = self.var[id(self.loss)]

    def _where(self):
        """The user's line that made the operation being written (else where the user's code is now)."""
        where = self.trace.made_at.get(id(self.writing))
        return _place_text(where, with_code=True) if where is not None else _user_frame(with_code=True)

    def node_line(self, node):
        self.writing = node
        op = node._op
        if op.random or op.forward is None:
            raise CompileError(
                f"compile: the operation {op.name!r} "
                + ("draws random numbers or has effects, which a replay would repeat blindly" if op.random
                   else "has no NumPy forward to replay")
                + "; run this function eagerly (call it without compile), or draw the random numbers with "
                "autograd_core.compile.host_array"
            )
        inputs = [self.value_name(v) for v in node._inputs]
        params = {k: self.param_text(v, k) for k, v in node._params.items()}
        name = self.b.names.new(node.label or self.preferred.get(id(node)) or op.name, op.name)
        targets = [name]
        values = [node._data]
        if op.saves:  # the forward also returns what a rule needs again (conv's im2col rows, cross-entropy's P)
            kept = {}
            for key in op.saves:
                kept[key] = self.b.names.new(_SAVED_NAMES.get(key) or f"{name}_{key}")
                targets.append(kept[key])
                values.append((node._saved or {}).get(key))
            self.kept_names[id(node)] = kept
        bound = dict(zip(op.inputs, inputs), **params)
        readable, plain = call_text(op.forward, inputs, params, self.b.namespace, op.name,
                                    _declared(op).get("forward"), bound)
        reads = _names_in(readable, self.b.names)
        comment = op.code if readable == plain and op.code else ""
        line = Line(targets, readable, reads, comment, exact=plain if readable != plain else None,
                    exact_reads=_names_in(plain, self.b.names), value=tuple(values), quiet=op.quiet)
        self.b.forward.append(line)
        self._define(node, name)
        for key, kept_name in self.kept_names.get(id(node), {}).items():
            array = (node._saved or {}).get(key)
            self.b.trace_env[kept_name] = array
            if array is not None:
                self.known.setdefault(id(array), kept_name)

    # ---- backward --------------------------------------------------------------
    def backward(self, seed):
        """Run the engine's backward loop on the traced arrays, writing each share down."""
        self.grad = {}  # id(Value) -> (name of its running gradient, its array)
        self.seed_name = self.b.names.new("d" + self.b.loss_name)
        self.grad[id(self.loss)] = (self.seed_name, seed)
        self.b.trace_env[self.seed_name] = seed
        engine.backpropagate([self.loss], [seed], retain_graph=True, on_node=self.on_node)

    def on_node(self, node, upstream, shares):
        self.writing = node
        op = node._op
        g_name, _ = self.grad[id(node)]
        args = [inp._data for inp in node._inputs]
        arg_names = [self.var[id(inp)] for inp in node._inputs]
        out_name = self.var[id(node)]
        params = dict(node._params)
        param_texts = {k: self.param_text(v, k) for k, v in params.items()}
        kept = self.kept_names.get(id(node), {})
        for key, array in (node._saved or {}).items():  # the engine passes what the forward kept to the rules
            params[key] = array
            param_texts[key] = kept[key]
        bound = dict(zip(op.inputs, arg_names), out=out_name, g=g_name, **param_texts)
        pending = list(shares)
        for i, inp in enumerate(node._inputs):
            if not inp.requires_grad:
                continue
            rule = op.grads[i]
            hint = f"_d_{op.name}_{op.inputs[min(i, len(op.inputs) - 1)].strip('*')}"
            if not pending or pending[0][0] is not inp:  # the rule gave no share (an index input)
                if not _library_op(op):  # (a user's rule may give one on other data: asked again at every call)
                    self._user_rule_checked(op, i, rule, [g_name] * (not op.elementwise) + arg_names + [out_name],
                                            param_texts, hint)
                continue
            _, share = pending.pop(0)
            template = _declared(op).get(op.inputs[i]) if not op.variadic else None
            with quiet_float_errors():
                passthrough = False
                if op.elementwise:
                    text, plain, mine, passthrough = self._upstream_times(
                        op, rule(*args, node._data, **params), upstream, g_name, lambda: call_text(
                            rule, arg_names + [out_name], param_texts, self.b.namespace, hint, template, bound))
                    if np.shape(mine) != inp.shape:
                        passthrough = False
                        text = _sum_to_shape_text(text, np.shape(mine), inp.shape)
                        plain = f"_sum_to_shape({plain}, {inp.shape!r})"
                        self.b.namespace.bind("_sum_to_shape", engine.sum_to_shape)
                        mine = engine.sum_to_shape(mine, inp.shape)
                else:
                    text, plain = call_text(rule, [g_name] + arg_names + [out_name], param_texts, self.b.namespace, hint,
                                            template, bound)
                    mine = rule(upstream, *args, node._data, **params)
            if mine.dtype != inp.dtype:
                passthrough = False
                cast = dtype_text(inp.dtype)
                text, plain = f"({text}).astype({cast})", f"({plain}).astype({cast})"
            elif not _library_op(op):  # (a user's rule may give another dtype on other data: cast as the loop does,
                cast = dtype_text(inp.dtype)  # and None, no share, where the program has one: refused)
                self.b.namespace.bind("_share_given", _share_given)
                text, plain = (f"_share_given({t}, {op.name!r}, {i}).astype({cast}, copy=False)" for t in (text, plain))
            formula = _formula_for(op, i, len(node._inputs))
            name = self._add_share(inp, text, plain, share, formula, passthrough)
            if name is not None and isinstance(mine, np.ndarray) and mine.size > 1 and not any(mine.strides):
                one_number = self._broadcast_operand(text)
                if one_number is not None and self._returns_its_argument(one_number, g_name, upstream):
                    one_number = g_name  # (a 0-d upstream given back as it is: d sum(x)/dx_i = 1)
                if one_number is not None:
                    self.uniform[name] = (one_number, mine.shape)

    def _user_rule_checked(self, op, i, rule, arg_names, param_texts, hint):
        """A line asking a user's rule, which gave no share at the traced call, again at every call: a share
        on other data is one the program does not have (refused, as a share where it gave none)."""
        readable, _ = call_text(rule, arg_names, param_texts, self.b.namespace, hint, None, {})
        self.b.namespace.bind("_share_given", _share_given)
        self.b.backward.append(Line((), f"_share_given({readable}, {op.name!r}, {i}, none=True)",
                                    _names_in(readable, self.b.names), "a user's rule gave no share", keep=True))

    def _upstream_times(self, op, local, upstream, g_name, rule_text):
        """(text, exact text, share, passed on as it is) of an elementwise share, upstream x local: a
        library rule's +-1 is the upstream itself, or negated, at every call; a user's rule may give 1
        on this call's data only, so it is written as the engine's loop takes it (a 1 passes it on)."""
        if not _library_op(op):
            readable, called = rule_text()
            self.b.namespace.bind("upstream_times", engine.upstream_times)
            return (f"upstream_times({g_name}, {readable})", f"upstream_times({g_name}, {called})",
                    engine.upstream_times(upstream, local), False)
        if type(local) is int and local in (1, -1):
            text = g_name if local == 1 else f"-{g_name}"
            return text, text, upstream * local, local == 1
        readable, called = rule_text()
        return _times(g_name, readable), _times(g_name, called), upstream * local, False

    def _broadcast_operand(self, text):
        """For a share written ``broadcast_to(small, shape)``, the text of ``small``."""
        parts = _call_of_two(text)
        if parts is None:
            return None
        fn = evaluate(parts[0], dict(self.b.namespace))
        return parts[1] if fn is not None and fn in _BROADCASTS else None

    def _returns_its_argument(self, text, g_name, upstream):
        """Whether `text`, run on the traced arrays, gives back the upstream gradient object itself."""
        return evaluate(text, {**self.b.namespace, **self.b.trace_env, g_name: upstream}) is upstream

    def narrow_uniform_gradients(self, returned, lines):
        """A gradient that is one number repeated (``d sum(x)/dx_i = 1`` gives every
        element the upstream number) stays that one number where every line reading
        it only multiplies by it: the product broadcasts it with the same bits, and
        the repeated array is never made. A speed device (the tiny MLP's step:
        two array passes of its loss rows fewer); the check still runs every line."""
        readers = {}
        for line in lines:
            for name in set(line.reads) | set(line.exact_reads or ()):
                if name in self.uniform:
                    readers.setdefault(name, []).append(line)
        for line in lines:
            name = line.targets[0] if len(line.targets) == 1 else None
            if name not in self.uniform or name in returned or name not in readers:
                continue
            if not all(_only_multiplies(r.expression, name) for r in readers[name]):
                continue
            one_number, shape = self.uniform[name]
            small = one_number if one_number.isidentifier() else name
            for reader in readers[name]:
                # the exact form reads the repeated array as the engine gave it (where the product's
                # shape would differ, the check falls back to it)
                reader.exact = _substitute(reader.exact or reader.expression, name, f"F.broadcast_to({small}, {shape!r})")
                reader.exact_reads = _names_in(reader.exact, self.b.names)
                # one number needs no new axis to be broadcast (np.expand_dims costs more than the product)
                reader.expression = _without_expand_dims(_substitute(reader.expression, name, small), small)
                reader.reads = _names_in(reader.expression, self.b.names)
            if small != name:  # the upstream itself: its readers read that, and this line goes
                line.targets = ()  # (read by no one now: dropped with the dead lines)
                continue
            line.expression, line.exact, line.exact_reads = one_number, None, None
            line.reads = _names_in(one_number, self.b.names)
            line.value = None  # (its readers are checked against the engine)
            line.comment += "; one number, repeated by the products that read it"

    def _add_share(self, inp, text, plain, share, formula, passthrough):
        inp_name = self.var[id(inp)]
        before = self.grad.get(id(inp))
        if before is None:
            if passthrough:  # the upstream gradient passed on as it is (a + b): no line, the same name
                self.grad[id(inp)] = (text, share)
                return
            name = self.b.names.new("d" + inp_name)
            self.b.backward.append(Line((name,), text, _names_in(text, self.b.names), formula,
                                        exact=plain if plain != text else None,
                                        exact_reads=_names_in(plain, self.b.names), value=(share,)))
            self.grad[id(inp)] = (name, share)
            return name
        else:
            old_name, old = before
            total = old + share  # what the engine's loop does (_add_share): never in place
            name = self.b.names.new("d" + inp_name)
            self.b.backward.append(Line((name,), f"{old_name} + {_wrap(text)}", _names_in(text, self.b.names) + (old_name,),
                                        f"{formula}, added to what {inp_name} got before",
                                        exact=f"{old_name} + {_wrap(plain)}" if plain != text else None,
                                        exact_reads=_names_in(plain, self.b.names) + (old_name,), value=(total,)))
            self.grad[id(inp)] = (name, total)


_SAVED_NAMES = {"probs": "P"}  # what an op keeps, named as a course names it (P = softmax(Z))
_BROADCASTS = (F.broadcast_to, np.broadcast_to)  # the engine's broadcast (a view repeating one number, here)


@functools.lru_cache(maxsize=4096)
def _call_of_two(text):
    """(function text, first argument's text) of a call ``f(a, b)``; else None."""
    top = ast.parse(text, mode="eval").body
    if not (isinstance(top, ast.Call) and len(top.args) == 2 and not top.keywords):
        return None
    return ast.unparse(top.func), ast.unparse(top.args[0])


@functools.lru_cache(maxsize=4096)
def _only_multiplies(text, name):
    """Whether `name` occurs once in `text`, as a factor of its top product
    (``name * local``, ``np.expand_dims(name, 1) * (P - Y)``, ``-name``)."""
    top = ast.parse(text, mode="eval").body
    if sum(isinstance(n, ast.Name) and n.id == name for n in ast.walk(top)) != 1:
        return False
    factors, stack = [], [top]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
            stack += [node.left, node.right]
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            stack.append(node.operand)
        else:
            factors.append(node)
    for factor in factors:
        if isinstance(factor, ast.Call) and ast.unparse(factor.func) == "np.expand_dims" and factor.args:
            factor = factor.args[0]
        if isinstance(factor, ast.Name) and factor.id == name:
            return True
    return False


@functools.lru_cache(maxsize=4096)
def _without_expand_dims(text, name):
    class Drop(ast.NodeTransformer):
        def visit_Call(self, node):
            if ast.unparse(node.func) == "np.expand_dims" and node.args and ast.unparse(node.args[0]) == name:
                return node.args[0]
            return self.generic_visit(node)

    return ast.unparse(Drop().visit(ast.parse(text, mode="eval")))


@functools.lru_cache(maxsize=4096)
def _substitute(text, name, replacement):
    tree = ast.parse(text, mode="eval")
    new = ast.parse(replacement, mode="eval").body

    class Swap(ast.NodeTransformer):
        def visit_Name(self, node):
            return new if node.id == name else node

    return ast.unparse(ast.fix_missing_locations(Swap().visit(tree)))


def _same_layout(a, b):
    return (a.shape == b.shape and a.strides == b.strides and a.dtype == b.dtype
            and a.__array_interface__["data"][0] == b.__array_interface__["data"][0])


@functools.lru_cache(maxsize=8192)  # (texts repeat from one trace to the next: work each out once)
def _times(g, local):
    return ast.unparse(ast.BinOp(ast.Name(g), ast.Mult(), ast.parse(local, mode="eval").body))


def _wrap(text):
    return text if text.isidentifier() else f"({text})"


def _sum_to_shape_text(text, g_shape, shape):
    """engine.sum_to_shape written out where it sums only leading axes (a bias), else called."""
    lead = len(g_shape) - len(shape)
    if shape and lead > 0 and all(g_shape[lead + k] == n for k, n in enumerate(shape)):
        axes = tuple(range(lead))
        return f"{_wrap(text)}.sum(axis={axes[0] if len(axes) == 1 else axes!r})"
    return f"_sum_to_shape({text}, {shape!r})"


def _formula_for(op, i, n_inputs):
    """The lecture formula of an op, the part for input i when it lists one per input."""
    return _formula_part(op.formula, i, n_inputs)


@functools.lru_cache(maxsize=4096)
def _formula_part(formula, i, n_inputs):
    parts = formula.split(", ")
    if n_inputs > 1 and len(parts) == n_inputs and all("=" in part for part in parts):
        return parts[i]
    return formula


def _names_in(text, names):
    """The program names an expression reads."""
    return tuple(name for name in _names_read(text) if name in names.taken)


@functools.lru_cache(maxsize=8192)
def _names_read(text):
    """Every name an expression reads, once each, in order."""
    return tuple(dict.fromkeys(node.id for node in ast.walk(ast.parse(text, mode="eval")) if isinstance(node, ast.Name)))


class _RandomNumbers:
    """The random arrays of one pass of line checks: one per name, shape and dtype, kept for every
    line; and which traced arrays hold one number repeated."""

    def __init__(self):
        self.rng = None  # (made at the first array: most programs never need one)
        self.arrays = {}  # (shape, dtype, name) -> its random array (another name, another array: a - b is not 0)
        self.repeated = {}  # id -> whether that traced array holds one number repeated

    def one_number_repeated(self, value):
        if not (isinstance(value, np.ndarray) and value.dtype.kind == "f" and value.size > 1):
            return False
        if id(value) not in self.repeated:
            self.repeated[id(value)] = bool((value == value.flat[0]).all())
        return self.repeated[id(value)]

    def like(self, name, value):
        key = (value.shape, value.dtype.str, name)
        if key not in self.arrays:
            self.rng = self.rng or np.random.default_rng(0)
            self.arrays[key] = self.rng.standard_normal(value.shape, dtype=np.float32).astype(value.dtype)
        return self.arrays[key]


def _agrees_on_other_numbers(line, env, randoms):
    """Whether a readable line gives its exact call's bits on random numbers of the traced arrays' shapes
    too (`randoms`, a _RandomNumbers): the traced call's may hide a form that is wrong elsewhere (a
    gradient of zeros, a 3-d A.T). Only where an array the line reads holds one number repeated (zeros):
    other numbers tell forms apart already."""
    names = set(line.reads) | set(line.exact_reads)
    if not any(randoms.one_number_repeated(env.get(name)) for name in names):
        return True
    probe = {name: randoms.like(name, env[name]) for name in names  # (as locals: env itself stays as it is)
             if isinstance(env.get(name), np.ndarray) and env[name].dtype.kind == "f" and env[name].size}
    try:
        with np.errstate(all="ignore"):
            readable = eval(_expression_code(line.expression), env, probe)  # noqa: S307 (our own lines)
            exact = eval(_expression_code(line.exact), env, probe)  # noqa: S307
    except Exception:  # noqa: BLE001 (a form that fails there is not the rule's)
        return False
    pairs = zip(readable, exact) if type(exact) is tuple else ((readable, exact),)
    return type(readable) is type(exact) and all(same_bits(r, e) for r, e in pairs)


def nodes_made_during(roots, start_id):
    """The operations made during a traced call (numbered from `start_id`) that `roots`
    depend on, oldest first: what the compiler writes and what export reads."""
    seen, stack, nodes = set(), list(roots), []
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if node._op is None or node._id < start_id:
            continue
        nodes.append(node)
        stack.extend(node._inputs)
    nodes.sort(key=lambda n: n._id)
    return nodes
