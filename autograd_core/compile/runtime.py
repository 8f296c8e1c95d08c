"""The runtime: the compiled function and its cache of traced programs (their results: ``result.py``).

A call is keyed by its arguments (shapes, dtypes, Python numbers, modules
passed); each key holds the programs traced for it, each with its guards
(``guards.py``: everything the trace read outside its arguments). A call
replays the first program whose guards hold; when none does, it traces
again, up to `RETRACE_LIMIT` programs for one key (and `TRACE_LIMIT` in all),
then warns once, naming what keeps changing, and runs the function eagerly
for calls no traced program replays.

Threads: tracing is per thread (``tracer.py``) and serialised by a lock;
each thread replays with program functions and buffers of its own, so one
thread's replay never writes into arrays another thread's result reads.
"""

from __future__ import annotations

import builtins
import copy
import functools
import inspect
import struct
import threading
import types
import warnings
from collections import namedtuple

import numpy as np

from .. import engine
from ..conv import _size_text
from ..engine import Value
from ..modes import _current_modes, _place_text
from . import planner, reuse
from .result import CompiledResult, _give_back_freed_memory, _own, _returned, _watched
from .guards import EffectChanges, Guards, Sources, filled_caches, mode_of, modes_of, objects_held, set_modes
from .library import _is_library_class
from .snapshots import GENERATOR_TYPES, GLOBAL_GENERATORS, Draws
from .sources import WALK_LIMIT, array_digest
from .program import Line, evaluate, render, tuple_text
from .arguments import _ARRAY, ArrayArgument, _eager_kind
from .tracer import (_ARGUMENT_HINT, CompileError, Trace, TracedArgument, _FollowedArray, current,
                     is_python_like_number, is_tracing)
from .writer import Writer, _RandomNumbers, _agrees_on_other_numbers, nodes_made_during, same_bits

__all__ = ["Compiled", "CompiledResult", "RETRACE_LIMIT", "TRACE_LIMIT"]

CacheInfo = namedtuple("CacheInfo", "traces calls replays")
RETRACE_LIMIT = 8  # programs for one key before the function warns and runs eagerly (torch's cache_size_limit)
TRACE_LIMIT = 32  # programs in all (a Python number argument that changes at every call is a new key each time)


class _ArgumentTypeError(CompileError, TypeError):
    """A TypeError met while tracing a function given float arrays (there Values): a CompileError that
    ``except TypeError`` still catches, as it would eager's own."""


class _Instance:
    """One thread's copy of a program: its functions, buffers and generation."""

    def __init__(self, program):
        namespace = dict(program.namespace)
        namespace.update(planner.make_buffers(program.buffers))
        self.forward = types.FunctionType(program.forward_code, namespace)
        self.backward = types.FunctionType(program.backward_code, namespace)
        self.buffered = bool(program.buffers)
        self.program = program
        self.reuses_forward = program.reuses_forward
        self.generation = 0
        self.running = 0  # > 0 while its forward or backward runs (an effect may call the step again)

    def run(self, function, *args):
        """`function` (its forward or backward) on `args`, marked as running."""
        self.running += 1
        try:
            return function(*args)
        finally:
            self.running -= 1


class _Program:
    """One traced call made into a forward and a backward program, with the guards it replays under."""

    switched = ()  # (module or Value, the mode the call left it in): what a replay switches too

    def __init__(self, build, source, runs, namespace, buffers, reuses_forward, guards):
        self.source = source  # what source() shows: plain NumPy, one line per operation
        self.runs = runs  # what runs: the same lines, larger results written into buffers
        self.source_namespace = build.namespace
        self.namespace = namespace
        self.buffers = buffers
        self.reuses_forward = reuses_forward
        self.guards = guards
        code = _program_code(runs)
        functions = {c.co_name: c for c in code.co_consts if inspect.iscode(c)}
        self.forward_code = functions["forward"]
        self.backward_code = functions["backward"]
        self.arg_slots = build.arg_slots
        self.leaves = [leaf for _, leaf in build.leaves]
        self.grad_leaves = [target for target, _ in build.grad_leaves]
        # ("arg", k): the Value passed as argument k at each call, found per call; else the same leaves every call
        self.targets_are_fixed = not any(type(t) is tuple for t in self.grad_leaves)
        # the parameters and Value arguments eager's backward checks (inputs of a node it reaches from the loss)
        self.watched_leaves = [leaf for _, leaf in build.leaves if id(leaf) in build.checked]
        self.watched_arg_slots = build.checked_arg_slots
        self.extras = bool(build.extra_names)
        self._local = threading.local()
        self.same_signature = None  # set by the trace: a quick test of the arguments (see _signature_check)
        self.reads_grad_mode = False  # set by the trace: the code read the grad mode (not evaluated under no_grad)
        self.loss_requires_grad = True  # set by the trace: False for a loss made of constants only
        self.returned_as = None  # set by the trace: tuple, or a namedtuple class, when the function returned one

    def set_saved_names(self, names):
        """The forward's names the backward reads again (the arrays a call's result keeps)."""
        self.saved_names = names

    def instance(self):
        inst = getattr(self._local, "instance", None)
        if inst is None:
            inst = self._local.instance = _Instance(self)
        return inst


class Compiled:
    """A function compiled by `compile`: call it like the function.

    >>> import numpy as np, autograd_core as ag
    >>> w = ag.Value(np.array([3.0]))
    >>> step = ag.compile(lambda x: (x * w).sum())
    >>> _ = step(np.array([1.0])); _ = step(np.array([2.0])); step.cache_info()
    CacheInfo(traces=1, calls=2, replays=1)
    """

    _walked_attributes = ("fn",)  # (a compiled function reached, step itself: its cache is no state of the user's)

    def __init__(self, fn):
        if not callable(fn):
            raise TypeError(f"compile: expects a function returning a one-element Value, got {type(fn).__name__}")
        self.fn = fn
        self._cache = {}  # key -> [_Program]
        self._lock = threading.RLock()
        self._traces = 0
        self._calls = 0
        self._replays = 0
        self._last = None
        self._gave_up = None  # what kept changing, once RETRACE_LIMIT traces were made
        try:
            self._parameters = inspect.signature(fn, follow_wrapped=False)  # (a decorator's wrapper(*args) is called)
        except (TypeError, ValueError):
            self._parameters = None
        # the names the program gives the arguments
        self._argument_names = [p for p in self._parameters.parameters if p not in ("args", "kwargs")] \
            if self._parameters is not None else []

    # ---- the call ----------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        if kwargs:
            raise TypeError(f"compile: pass the arguments of {self._name()} by position (got keywords {sorted(kwargs)})")
        if is_tracing():  # (its result would be a constant of the outer program; its arguments are traced too)
            raise CompileError(f"compile: {self._name()}, a compiled function, was called while another traces; "
                               f"compile the outer function only (call the inner one's plain function there)")
        if current() is not None:  # inside a host function or an effect of a trace: eager code, run as eager
            return self.fn(*args)
        modes = _current_modes()
        if modes.anomaly:
            self._check_count(args)
            return self.fn(*args)  # detect_anomaly(): eager mode says which operation went wrong
        last = self._last
        if (last is not None and last.same_signature is not None and modes.grad_enabled
                and last.same_signature(args) and last.guards.check(self.fn, args) is None):
            # the call before's program again: its arguments' shapes and dtypes checked without building a key
            self._calls += 1
            self._replays += 1
            return self._replay(last, args)
        key = self._key(args)
        self._calls += 1
        program, reason = self._find(key, args)
        if not modes.grad_enabled:  # no_grad(): the forward only, or the function itself
            if program is None or program.reads_grad_mode:  # (is_grad_enabled() might decide otherwise now)
                return self.fn(*args)
            return self._evaluate(program, args)
        if program is None:
            with self._lock:
                program, reason = self._find(key, args)
                if program is None:
                    if len(self._cache.get(key, ())) >= RETRACE_LIMIT or self._traces >= TRACE_LIMIT:
                        self._give_up(reason, key)
                        return self.fn(*args)
                    self._check_count(args)
                    result = self._trace(key, args)
                    # (the trace's own arrays are garbage by now)
                    _give_back_freed_memory((result[0] if isinstance(result, tuple) else result)._traced_bytes)
                    return result
        self._replays += 1
        self._last = program
        return self._replay(program, args)

    def _find(self, key, args):
        reason = None
        for program in self._cache.get(key, ()):
            reason = program.guards.check(self.fn, args)
            if reason is None:
                return program, None
        return None, reason or "a new signature"

    def _give_up(self, reason, key):
        if self._gave_up is None:
            self._gave_up = reason
            if self._traces >= TRACE_LIMIT and any(type(part[0]) is str and part[0] == "static" for part in key):
                advice = ("A Python number argument is part of the key, so each new number traces again: pass it as a "
                          "one-element array (np.array([lam])), which every call reads")
            else:
                advice = "Pass what changes as an array argument, or compile a function that does not read it"
            warnings.warn(
                f"compile: {self._name()} was traced {self._traces} times ({reason}); calls that no traced program "
                f"replays run eagerly from now on. {advice}",
                stacklevel=3,
            )

    def _inputs(self, program, args):
        inputs = []
        for k, _ in program.arg_slots:
            arg = args[k]
            if isinstance(arg, Value):
                arg = arg._data
            elif arg.ndim == 0 and arg.dtype.kind == "f":
                arg = engine.as_data(arg)  # a 0-d float array: the scalar a Value of it holds
            inputs.append(arg)
        for leaf in program.leaves:
            inputs.append(leaf._data)
        return inputs

    def _replay(self, program, args):
        inst = program.instance()
        if inst.running:  # called from inside its own run (an effect logging a loss): its buffers are in use
            return self.fn(*args)
        inputs = self._inputs(program, args)
        inst.generation += 1  # (before the forward: one that raises halfway has written the buffers already)
        loss, saved, *extras = inst.run(inst.forward, *inputs)  # NumPy warns here as the eager forward pass would
        set_modes(program.switched)
        loss = _own(loss)
        watched = _watched(program, args)
        targets = program.grad_leaves if program.targets_are_fixed else [
            args[t[1]] if type(t) is tuple else t for t in program.grad_leaves]
        result = CompiledResult(inst, loss, saved, inst.generation, targets, watched)
        return _packed(program, result, extras[0] if program.extras else ())

    def _evaluate(self, program, args):
        inst = program.instance()
        if inst.running:  # (as in _replay)
            return self.fn(*args)
        inst.generation += 1  # (before the forward, as in _replay)
        loss, _, *extras = inst.run(inst.forward, *self._inputs(program, args))
        set_modes(program.switched)
        result = Value(np.array(loss, copy=True)[()], requires_grad=False)
        return _packed(program, result, extras[0] if program.extras else ())

    def eager(self, *args):
        """Run the function eagerly (no compilation): for `detect_anomaly()` and the stepper."""
        return self.fn(*args)

    def cache_info(self):
        """How many programs were traced, calls made, calls replayed."""
        return CacheInfo(self._traces, self._calls, self._replays)

    def guards(self, *args):
        """The guards of the last traced program (or of the one `args` replay), one line each:
        what a replay checks before it runs.

        >>> import numpy as np, autograd_core as ag
        >>> w = ag.Value(np.array([2.0]), label="w")
        >>> step = ag.compile(lambda x: (x * w).sum())
        >>> _ = step(np.array([1.0]))
        >>> step.guards()[-1]
        'w is <Value (1,) float64>, requires_grad=True'
        """
        return self._program_for(args).guards.describe()

    def source(self, *args):
        """The forward and backward program of the last traced call (or of the
        program `args` would replay), as runnable Python."""
        return self._program_for(args).source

    def program(self, *args):
        """``source()`` run as Python: a dict with its ``forward`` and ``backward``
        functions (and the helpers, rules and constants the source names), to
        call by hand: ``forward(*arguments, *parameters) -> (loss, saved, extras)``,
        ``backward(saved, dloss) -> the parameters' gradients``."""
        program = self._program_for(args)
        namespace = dict(program.source_namespace)
        exec(builtins.compile(program.source, "<autograd_core.compile source()>", "exec"), namespace)  # noqa: S102
        return namespace

    def _program_for(self, args):
        program = self._last
        if args:
            program, _ = self._find(self._key(args), args)
        if program is None:
            raise CompileError("compile: source(), program() and guards() need a traced call first: call the compiled "
                               "function once (with these arguments)")
        return program

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
            if type(arg) is np.ndarray:  # the common case first (another layout: another program)
                if is_python_like_number(arg):
                    parts.append(("static", "0-d float64", arg.tobytes()))
                else:
                    parts.append((arg.shape, arg.dtype.str) if arg.flags.c_contiguous else
                                 (arg.shape, arg.dtype.str, arg.strides))
            elif isinstance(arg, Value):  # (and where it was passed first: step(v, v) is another program)
                if not _is_library_class(type(arg)):
                    raise CompileError(
                        f"compile: argument {k} of {self._name()} is a {type(arg).__name__}, a Value of a class of "
                        f"yours, whose state a compiled function does not follow from call to call: hold it in the "
                        f"function's closure or a module (where what it keeps is guarded), or pass a Value")
                first = next(j for j in range(k + 1) if args[j] is arg)
                parts.append(("Value", arg._data.shape, arg._data.dtype.str, arg._data.strides, arg.requires_grad,
                              type(arg._data), first, arg.label, type(arg)))  # (the code may branch on its name)
            elif isinstance(arg, np.memmap):  # (an ndarray over a file: NumPy computes with it as with any)
                parts.append(("array", arg.shape, arg.dtype.str, arg.strides, type(arg)))
            elif isinstance(arg, np.ndarray):
                raise CompileError(
                    f"compile: argument {k} of {self._name()} is a {type(arg).__name__}, whose arithmetic is its own "
                    f"(np.matrix's * is a product, a masked array's sum skips masked entries); a compiled function "
                    f"reads arrays as plain ndarrays: pass np.asarray(x) (and mask it in the function), or run it "
                    f"eagerly"
                )
            elif isinstance(arg, float):  # (by its bits: nan and -nan, 0.0 and -0.0 are other programs)
                parts.append(("static", type(arg).__name__, struct.pack("<d", arg)))
            elif isinstance(arg, (bool, int, str, type(None))):
                parts.append(("static", type(arg).__name__, repr(arg)))
            elif hasattr(arg, "named_parameters"):
                parts.append(("module", id(arg)))
            else:
                raise TypeError(
                    f"compile: argument {k} of {self._name()} is a {type(arg).__name__}; a compiled function takes "
                    f"NumPy arrays, Values, modules and Python numbers (convert lists with np.asarray)"
                )
        return tuple(parts)

    # ---- tracing -------------------------------------------------------------------
    def _trace(self, key, args):
        sources = self._walk(args)
        call_args = _traced_arguments(args)
        modes = modes_of(sources)
        trace, result = self._traced_call(sources, call_args, args)
        switched = [(obj, before, mode_of(obj)) for obj, before in modes if mode_of(obj) is not before]
        loss, extras, returned_as = self._check_result(result)
        self._refuse_writes_into_host_arrays(trace)
        self._refuse_numpy_extras(extras, trace)
        writer, nodes = self._write_forward(loss, extras, call_args, args, trace)
        build = writer.b
        self._refuse_argument_also_held(args, build)
        set_modes((obj, before) for obj, before, _ in switched)  # (the guards hold the modes the call found)
        try:
            guards = self._guards_of(sources, build, trace, args, call_args)
        finally:
            set_modes((obj, after) for obj, _, after in switched)  # (as the call left them, and each replay does)
        self._warn_of_what_replays_skip(build, trace)
        traced_bytes = sum(a.nbytes for a in build.trace_env.values() if isinstance(a, np.ndarray))
        self._check_memory(traced_bytes)
        shape = reuse.structure_of(key, build, nodes)
        kept = reuse.recall(shape)
        program = _reused(kept, build, guards, loss) if kept is not None else None
        if kept is not None:
            reuse.counts["rejected" if program is None else "reused"] += 1
        if program is None:
            forward_names = set(build.namespace)
            with np.errstate(all="ignore"):  # (a check: the backward's warnings come when the result's runs)
                grad_positions = self._write_backward(writer, loss)
            program = _assemble(build, writer, guards)
            reuse.remember(shape, program, build, forward_names, grad_positions)
        program.same_signature = _signature_check(key)
        program.reads_grad_mode = bool(trace.grad_mode_reads)
        program.loss_requires_grad = _requires_grad_in_eager(loss, call_args, args)
        program.returned_as = returned_as
        program.switched = [(obj, after) for obj, _, after in switched]  # (model.train() at its start, done again)
        self._cache.setdefault(key, []).append(program)
        self._traces += 1
        self._last = program
        # the traced call's own result: its backward runs the program on the traced call's arrays, with
        # buffers of its own (the next calls' results hold the thread's), so it may come after theirs, as in eager
        # (as plain arrays: a mask's class, which the tracer follows, would pass to the gradients made from it)
        saved = tuple(_plain(build.trace_env[name]) for name in program.saved_names)
        targets = [args[t[1]] if type(t) is tuple else t for t in program.grad_leaves]
        result = CompiledResult(_Instance(program), _own(loss._data), saved, None, targets, _watched(program, args))
        result._traced_bytes = traced_bytes
        return _packed(program, result, [v._data for v in extras])

    def _walk(self, args):
        try:
            sources = Sources.walk(self.fn, args)
        except (RecursionError, MemoryError):
            raise
        except Exception as error:  # (an object of the user's whose __class__, __dict__ or __mro__ raises when read)
            raise CompileError(f"compile: reading what {self._name()} reaches raised {type(error).__name__}: {error}; "
                               f"run the function eagerly, or keep that object out of its reach") from error
        self._warn_if_truncated(sources)
        return sources

    def _warn_of_what_replays_skip(self, build, trace):
        """Warn of arrays a replay keeps as they were, and of the function's own prints."""
        if build.frozen:
            warnings.warn(
                f"compile: {self._name()} made {len(build.frozen)} array(s) outside the engine's operations "
                f"({build.frozen[0]}); a compiled step keeps them as they were at the first call. If they depend on "
                f"the arguments or change between calls, make them with autograd_core.compile.host_array "
                f"(one-hot rows np.eye(C)[y] of labels: write F.one_hot(y, C); a table indexed by labels, alpha[y]: "
                f"host_array(lambda y: alpha[y], y), made again at every call)", stacklevel=4)
        if trace.printed is not None:
            warnings.warn(
                f"compile: {self._name()} called print() ({_place_text(trace.printed)}); it printed at this traced "
                f"call only, as a replay runs none of the function's Python. Print outside the compiled function, "
                f"or from an effect (autograd_core.compile.effect(print, ...), called again at every call)", stacklevel=4)

    def _guards_of(self, sources, build, trace, args, call_args):
        """The guards of what the trace read, refusing what they cannot hold (see each refusal)."""
        changes = EffectChanges(trace.effect_states)
        build.effect_written = changes.written
        guards, rebound = Guards.build(sources, build.used + _held_by_hosts(trace), trace.labels_read
                                       ).without_effect_changes(self.fn, args, changes)
        self._refuse_unreached(guards, call_args)
        self._refuse_replaced_by_effects(rebound, changes, build)
        self._refuse_written(sources, changes)
        changed = guards.check(self.fn, args)  # (the guards hold what the walk saw before the call)
        if changed is not None and not _only_caches_filled(guards, sources, self.fn, args):
            raise CompileError(f"compile: the call of {self._name()} changed what it reads ({changed}); eager changes it "
                               f"at every call, a replay would not. Make the change outside the compiled function (or in an "
                               f"effect)")
        return guards

    def _traced_call(self, sources, call_args, args):
        """(the Trace, the function's result) of the call that runs it eagerly and records it."""
        with Trace() as trace:
            trace.held = lambda array: sources.path_of(array) is not None
            trace.path_of = sources.path_of
            trace.array_arguments = {id(c) for c, a in zip(call_args, args) if isinstance(a, np.ndarray) and c is not a}
            trace.arguments = {id(c) for c, a in zip(call_args, args) if isinstance(c, Value) and c is not a}
            trace.draws = Draws([(n, g()) for n, g in GLOBAL_GENERATORS.items()] + sources.reached(GENERATOR_TYPES))
            try:
                result = self.fn(*call_args)
            except TypeError as error:  # (x.reshape(3, 4, order="F") of an array argument, a Value here)
                if not any(isinstance(a, np.ndarray) and a.dtype.kind == "f" for a in args):
                    raise
                raise _ArgumentTypeError(f"compile: tracing {self._name()} raised TypeError: {error}. "
                                         f"{_ARGUMENT_HINT}") from error
            trace.draws.look()
            if trace.draws.drawn is not None:
                raise CompileError(
                    f"compile: {self._name()} drew random numbers from {trace.draws.drawn} during the call; eager "
                    f"draws new ones at every call, a replay would not draw at all. Draw them in a host_array "
                    f"function (host_array(lambda: rng.normal(size=shape)), called again at every call), or "
                    f"outside the compiled function and pass them as an argument (if another thread drew from "
                    f"it meanwhile, give that thread a generator of its own)")
            return trace, result

    def _warn_if_truncated(self, sources):
        if sources.truncated:
            warnings.warn(
                f"compile: the walk of what {self._name()} can reach stopped at {WALK_LIMIT:,} objects; what lies "
                f"beyond is not guarded (a change to it would not be seen). Keep large collections out of the "
                f"function's closure and objects (pass them as arguments), or run it eagerly",
                stacklevel=5,
            )

    def _write_forward(self, loss, extras, call_args, args, trace):
        """The forward program's lines, in the order the call made them."""
        writer = Writer(self._argument_names, loss, extras, call_args, args, trace)
        nodes = nodes_made_during([loss, *extras] + [x for r in trace.hosts for x in r.inputs if isinstance(x, Value)],
                          trace.start_id)
        if not any(n is loss for n in nodes):
            raise CompileError(f"compile: {self._name()} returned a Value made by no operation: nothing to compile")
        writer.preferred = _course_names(nodes, loss)
        writer.forward(nodes)
        writer.b.extra_names = [writer.value_name(v) for v in extras]
        writer.b.checked = _checked_by_eagers_backward(loss)
        writer.b.checked_arg_slots = [k for k, _ in writer.b.arg_slots if id(call_args[k]) in writer.b.checked]
        return writer, nodes

    def _write_backward(self, writer, loss):
        """The backward program's lines, written by the engine's backward loop on the traced
        arrays; returns where each gradient returned stands among the leaves that may get one."""
        build = writer.b
        writer.backward(engine._seed_gradient(loss, None, "backward()"))
        grads, build.expected_grads, positions = [], [], []
        leaf_ids = {id(value) for _, value in build.grad_leaves}
        node_gradients = {id(entry[1]) for key, entry in writer.grad.items() if key not in leaf_ids}
        for k, (target, value) in enumerate(build.grad_leaves):
            entry = writer.grad.get(id(value))
            if entry is not None:
                name, array = entry
                stored = _as_eager_stores(array, node_gradients)
                if stored is not array:
                    # passed on unchanged (x - mean: d/dx = 1): eager's .grad is a copy of the node's gradient,
                    # laid out in C order, which its sums follow
                    copied = writer.b.names.new(f"{name}_copy")
                    build.backward.append(Line((copied,), f"{name}.copy()", (name,),
                                               "eager's .grad is a copy: the gradient is also a node's", value=(stored,)))
                    name, array = copied, stored
                grads.append((target, name))
                build.expected_grads.append(array)
                positions.append(k)
        build.grad_leaves = grads
        build.seed_name = writer.seed_name
        return positions

    def _refuse_unreached(self, guards, call_args):
        if guards.unreached:
            obj = guards.unreached[0]
            if any(obj is arg for arg in call_args):  # (host_array(lambda: noise(X.shape)) of an argument X)
                raise CompileError(
                    f"compile: a host_array or effect function of {self._name()} holds one of its arguments in its "
                    f"closure; a replay would call it with the first call's argument. Pass the argument as an "
                    f"input instead (host_array(lambda x: ..., x)), or read what it needs of it outside (x.shape)")
            what = f"the Value {obj.label!r}" if isinstance(obj, Value) and obj.label else f"a {type(obj).__name__}"
            raise CompileError(
                f"compile: {self._name()} reads {what} (shape {np.shape(obj.data if isinstance(obj, Value) else obj)}) "
                f"that is not found in its closure, the globals it names, its defaults or its arguments, so a "
                f"compiled step could not tell if it were replaced. Pass it as an argument, or keep it in a module "
                f"or a closure the function reads (an array made inside the function from constants, such as a "
                f"loss's class weights np.array([...]), made once outside it and read from the closure)"
            )

    def _check_memory(self, traced):
        """Refuse, before allocating, a program whose checks would not fit: building it holds about
        CHECK_COPIES more copies of every array of the traced call (`traced` bytes: its backward's,
        the line checks', the planned program's), beyond what the traced call itself took."""
        needed = CHECK_COPIES * traced
        if needed < CHECKED_FROM_BYTES:  # (too little to matter: not worth reading /proc at every trace)
            return
        available = _available_memory()
        if available is not None and needed > available:
            raise CompileError(
                f"compile: building the program of {self._name()} needs about {_size_text(needed)} more memory "
                f"(its checks hold copies of the traced call's {_size_text(traced)} of arrays), and about "
                f"{_size_text(available)} is available; run the function eagerly, or with a smaller batch"
            )

    def _refuse_writes_into_host_arrays(self, trace):
        """A host array (a mask, labels made again at every call) written into through a NumPy view of it
        (``np.asarray(x > 0)[0] = True``): a replay makes it again without the write."""
        for record in trace.hosts:
            if record.digest is not None and array_digest(record.result) != record.digest:
                raise CompileError(
                    f"compile: {self._name()} wrote into {record.name or 'a host array'} (an array made again at "
                    f"every call: a comparison's mask, labels' NumPy) after it was made; a replay would make it "
                    f"without the write. Make the changed array in a host_array function")

    def _refuse_replaced_by_effects(self, rebound, changes, build):
        """An effect that replaces an array, a Value or a module the program reads or calls (``self.center
        = ...``; `rebound`: how the guards said so): eager reads the new one at every call, a replay the
        object it was traced with."""
        placed = [obj for obj in build.namespace.values() if changes.placed.get(id(obj)) is obj]
        if rebound or placed:
            what = rebound[0] if rebound else "an array it made"
            raise CompileError(
                f"compile: an effect of {self._name()} replaced what the program reads ({what}); a replay would "
                f"read the traced call's object. Write into it in place (self.center[...] = ...), or pass it as an "
                f"argument"
            )

    def _refuse_written(self, sources, changes):
        """An array or a Value's data the function holds that the call wrote into (``self.seen += n``): a
        replay would not write it again (an effect's writes into what it holds or is given are redone)."""
        for node in sources.written():
            if node.category == "value":  # (w._data *= 0.9, w._data = new: past the .data setter's refusal)
                array, (*_, contents) = node.snapshot  # (sources._value_digest: type, dtype, shape, bytes)
                if node.obj._data is array and changes.explains_contents(array, contents):
                    continue  # (an effect's write into its array, or into its input's: done again at every call)
                raise CompileError(f"compile: {self._name()} wrote into the data of {node.path} (a Value it holds) "
                                   f"during the call; a replay would not write it again. Do it outside the "
                                   f"compiled function")
            path, array = node.path, node.obj
            if not changes.explains_contents(array, node.snapshot) and not changes.explains(
                    node, "array", lambda value, data, node=node: value is node.obj and data == node.snapshot):
                raise CompileError(
                    f"compile: {self._name()} wrote into {path} (an array of shape {array.shape} it holds) with "
                    f"NumPy during the call; a replay would not write it again. Do the write through "
                    f"autograd_core.compile.effect(fn, *inputs) (done again at every call), or outside the "
                    f"compiled function"
                )

    def _check_result(self, result):
        """(loss, extras, the tuple type the function returned them in, or None)."""
        extras, returned_as = (), None
        if isinstance(result, tuple) and result and all(isinstance(v, Value) for v in result):
            returned_as = type(result)
            if returned_as is not tuple and not hasattr(returned_as, "_fields"):
                raise CompileError(f"compile: {self._name()} returned a {returned_as.__name__}; a compiled function "
                                   f"returns a Value, a tuple or a namedtuple of Values")
            result, extras = result[0], tuple(result[1:])  # (loss, logits, ...): the others come back as data
        if not isinstance(result, Value):
            raise CompileError(
                f"compile: {self._name()} must return a Value (the loss), or a tuple of Values whose first is "
                f"the loss, got {type(result).__name__}"
            )
        if result._data.size != 1:
            raise CompileError(
                f"compile: {self._name()} must return a one-element Value (the loss), got shape {result.shape}; "
                f"reduce it with .sum() or .mean()"
            )
        if result._op is None:
            raise CompileError(f"compile: {self._name()} returned a Value made by no operation: nothing to compile")
        return result, extras, returned_as

    def _refuse_argument_also_held(self, args, build):
        """A Value passed as an argument that the function also reads from its closure or objects: eager
        adds the gradients of its uses in one backward pass, in an order a program that keeps the argument
        apart (another Value at each call) would not follow."""
        passed = {id(arg): k for k, arg in enumerate(args) if isinstance(arg, Value)}
        for name, leaf in build.leaves:
            if id(leaf) in passed:
                raise CompileError(
                    f"compile: {self._name()} reads the Value passed as argument {passed[id(leaf)]} ({name}) also "
                    f"from its closure or objects; eager sums the gradients of both uses in one backward pass, in "
                    f"an order a compiled step would not follow. Pass it one way: as the argument only, or not at all"
                )

    def _refuse_numpy_extras(self, extras, trace):
        """An extra made from the float array arguments alone is a NumPy array in eager, a Value here:
        refused rather than returned as another type."""
        for k, extra in enumerate(extras, start=2):
            if _eager_kind(trace, extra) == _ARRAY:
                raise CompileError(
                    f"compile: {self._name()} returns as its value number {k} one computed from its array "
                    f"arguments alone: eager computes it with NumPy (an array), a compiled step from Values. "
                    f"Compute it outside the function, from the arrays"
                )


CHECK_COPIES = 3  # copies of the traced call's arrays that building a program holds at once, at most
CHECKED_FROM_BYTES = 64 << 20  # programs whose checks need less are built without asking the system


def _available_memory():
    """Bytes this process may still allocate: the system's available memory (Linux's MemAvailable)
    and what an address-space limit leaves; None where neither can be read."""
    limits = []
    try:
        with open("/proc/meminfo", "rb") as f:  # (a small file: one bounded read)
            for line in f.read(1 << 16).decode("ascii", "replace").splitlines():
                if line.startswith("MemAvailable:"):
                    limits.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource
        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            with open("/proc/self/status", "rb") as f:
                for line in f.read(1 << 16).decode("ascii", "replace").splitlines():
                    if line.startswith("VmSize:"):
                        limits.append(max(0, soft - int(line.split()[1]) * 1024))
    except (ImportError, OSError, ValueError, IndexError):
        pass
    return min(limits) if limits else None


def _traced_arguments(args):
    """What the function is called with while tracing: float arrays and Values as
    new Values (so every operation made from them is recorded), integer arrays
    marked as arguments (an array made from one in NumPy is refused, not frozen).
    A float argument's Value holds a view of its array: another object, so an
    array the function holds itself (a closure's constant) is never taken for the
    argument, even when the first call passed that very array; the same memory
    and layout, so the traced call computes as eager does (a Fortran-ordered or
    strided argument) and its backward reads what the caller wrote into it since.
    An integer argument is copied (its base names it in the program)."""
    call_args, traced = [], {}
    for arg in args:
        if is_python_like_number(arg):  # (as a Python number: part of the key)
            call_args.append(arg)
        elif isinstance(arg, np.ndarray) and arg.dtype.kind == "f":
            call_args.append(ArrayArgument(arg.view(), requires_grad=True))
        elif isinstance(arg, Value):  # one Value passed twice is one Value (its gradient summed as eager sums it)
            if id(arg) not in traced:
                data = arg._data.view() if isinstance(arg._data, np.ndarray) else arg._data
                traced[id(arg)] = _traced_value(arg, data)
            call_args.append(traced[id(arg)])
        elif isinstance(arg, np.ndarray):
            call_args.append(arg.copy(order="K").view(TracedArgument))  # (a copy: np.asarray of it is known by its base)
        else:
            call_args.append(arg)
    return call_args


def _traced_value(arg, data):
    """A Value of the argument's class (a Parameter: isinstance(w, nn.Parameter) holds while tracing) over
    `data`, holding what the argument's class keeps in slots of its own."""
    cls = type(arg)
    value = engine._new_value(cls)
    Value.__init__(value, data, requires_grad=True, label=arg.label)
    for klass in cls.__mro__[:cls.__mro__.index(Value)]:  # (the engine's classes: Parameter's _auto_label)
        for name in klass.__dict__.get("__slots__", ()):
            if hasattr(arg, name):
                object.__setattr__(value, name, getattr(arg, name))
    return value


def _packed(program, result, extras):
    """What the call returns: the result alone, or in the tuple (or namedtuple) the function returned."""
    returned_as = program.returned_as
    if returned_as is None:
        return result
    items = (result,) + _returned(extras)
    return items if returned_as is tuple else returned_as._make(items)


def _requires_grad_in_eager(loss, call_args, args):
    """Whether eager's loss would require grad: some leaf behind it does, an argument as the caller
    passed it (an array argument is a Value while tracing, so that its operations are recorded;
    in eager it is a constant)."""
    as_passed = {id(traced): arg for traced, arg in zip(call_args, args) if isinstance(traced, Value)}
    seen, stack = set(), [loss]
    while stack:
        node = stack.pop()
        if id(node) in seen or not node.requires_grad:
            continue
        seen.add(id(node))
        if node._op is None:
            arg = as_passed.get(id(node))
            if arg is None or (isinstance(arg, Value) and arg.requires_grad):
                return True
        stack.extend(node._inputs)
    return False


@functools.lru_cache(maxsize=256)  # (a new model of the same shapes: the same test)
def _signature_check(key):
    """``args -> bool``: whether `args` have the key's signature, for a key of plain
    C-ordered arrays only (the usual step(X, y)); None for any other key."""
    if not all(type(part[0]) is tuple and len(part) == 2 for part in key):
        return None
    tests = [f"len(args) == {len(key)}"]
    for k, (shape, dtype) in enumerate(key):
        tests.append(f"type(args[{k}]) is ndarray and args[{k}].shape == {shape!r} and args[{k}].dtype.str == {dtype!r}"
                     f" and args[{k}].flags.c_contiguous")
    return eval("lambda args: " + " and ".join(tests), {"ndarray": np.ndarray})  # noqa: S307 (shapes and dtype names)


def _held_by_hosts(trace):
    """Arrays and Values a host function or an effect holds in its closure or defaults, or a function it
    holds does (batch norm's running statistics): the program calls that function again, so they must
    still be the caller's."""
    return [obj for record in trace.hosts for obj in objects_held(record.fn)
            if isinstance(obj, (np.ndarray, Value)) and (obj.size > 1 or trace.held(obj))]  # (a one-channel BN's)


def _checked_by_eagers_backward(loss):
    """The ids of the Values eager's backward checks for writes since the call (engine._check_saved_data):
    the inputs of every node it reaches from the loss (engine.topological_order); not a teacher's weights
    read under no_grad(), nor those of a branch that needs no gradient."""
    return {id(inp) for node in engine.topological_order([loss]) for inp in node._inputs}


def _course_names(nodes, loss):
    """Z1 = X @ W1 + b1, A1 = act(Z1), ..., P, losses, loss: the names a course
    gives, from what each op declares it computes (``Op(course_name=...)``)."""
    preferred = {}
    layer = 0
    role = {}
    readers = {}
    for node in nodes:
        for inp in node._inputs:
            readers.setdefault(id(inp), []).append(node)
    for node in nodes:
        name = node._op.course_name
        if name == "Z":
            layer += 1
            after = readers.get(id(node), [])
            bias = after[0] if len(after) == 1 else None
            if bias is not None and bias._op.elementwise and bias._op.course_name is None and any(
                    inp._op is None and inp.requires_grad for inp in bias._inputs):
                # X @ W1, then + b1: the sum with the bias is Z1 (the product keeps its op's name)
                role[id(bias)] = layer
                preferred[id(bias)] = f"Z{layer}"
                continue
            role[id(node)] = layer
            preferred[id(node)] = f"Z{layer}"
        elif name == "A" and node._inputs and id(node._inputs[0]) in role:
            preferred[id(node)] = f"A{role[id(node._inputs[0])]}"
        elif name is not None and name not in ("Z", "A"):
            preferred[id(node)] = name
    preferred[id(loss)] = "loss"
    return preferred


def _assemble(build, writer, guards):
    """Dead lines out, every line checked against the engine, buffers planned, the program made."""
    returned = {name for _, name in build.grad_leaves}
    backward = _live(build.backward, returned)
    writer.narrow_uniform_gradients(returned, backward)
    backward = _live(backward, returned)
    forward = build.forward
    defined = set(build.params)
    for line in forward:
        defined.update(line.targets)
    checked = _check_lines(build, forward, backward)
    saved = {}  # (a dict: ordered, and a `not in` that does not grow with the program)
    for line in backward:
        for name in line.reads:
            if name in defined and name not in saved:
                saved[name] = None
    saved = list(saved)
    extras = tuple_text(build.extra_names)
    grads = tuple_text([name for _, name in build.grad_leaves])
    loss = build.loss_name

    def text(forward_lines, backward_lines):
        head = [f"{tuple_text(saved)} = saved"] if saved else []
        returns = f"{loss}, {tuple_text(saved)}" + (f", {extras}" if build.extra_names else "")
        return (render("forward", build.params, forward_lines, returns)
                + "\n\n" + render("backward", ["saved", writer.seed_name], head + backward_lines, grads))

    source = text([line.text() for line in forward], [line.text() for line in backward])
    recycled = {name for _, name in build.grad_leaves}
    fast_forward, fast_backward, buffers, reuses_forward = planner.plan(
        forward, backward, returned | {loss} | set(build.extra_names), recycled, checked,
        taken=set(build.namespace) | build.names.taken)
    runs = text(fast_forward, fast_backward)
    namespace = dict(build.namespace)
    namespace["recycled"] = planner.recycled
    program = _Program(build, source, runs, namespace, buffers, reuses_forward, guards)
    if (buffers or runs != source) and not _runs_like_the_engine(program, build):
        program = _Program(build, source, source, dict(namespace), {}, False, guards)
        if not _runs_like_the_engine(program, build):  # (each line gave the engine's bits: the whole must too)
            raise CompileError("compile: internal error: the program does not give the engine's loss and gradients "
                               "although each of its lines does; please report it, and run the function eagerly "
                               "meanwhile")
    program.set_saved_names(saved)
    return program


def _only_caches_filled(guards, sources, fn, args):
    """Whether the guards hold after the call but for the cached properties it filled (see filled_caches)."""
    filled = [(obj, name, obj.__dict__.pop(name)) for obj, name in filled_caches(sources)]
    try:
        return bool(filled) and guards.check(fn, args) is None
    finally:
        for obj, name, value in filled:
            obj.__dict__[name] = value


def _reused(kept, build, guards, loss):
    """The program kept for this trace's shape (`reuse.py`) with this trace's objects bound in: its
    parameters, host functions and constants, by the names the writer gave them. None (build it
    afresh) unless it gives the engine's loss and gradients on the traced call's arrays, bit for bit."""
    seed = engine._seed_gradient(loss, None, "backward()")
    with np.errstate(all="ignore"):  # (a check: the backward's warnings come when the result's runs)
        gradients = engine._backpropagate_fast([loss], [seed], retain_graph=True)
    reached = [k for k, (_, value) in enumerate(build.grad_leaves) if gradients.get(value) is not None]
    if reached != kept.grad_positions:
        return None
    view = copy.copy(build)  # (the build itself stays as the writer left it, for a build afresh)
    view.grad_leaves = [(build.grad_leaves[k][0], name) for k, name in zip(reached, kept.grad_names)]
    node_gradients = {id(g) for node, g in gradients.items() if node._op is not None}
    view.expected_grads = [_as_eager_stores(gradients[build.grad_leaves[k][1]], node_gradients) for k in reached]
    view.seed_name = kept.seed_name
    view.trace_env = {**build.trace_env, kept.seed_name: seed}
    view.namespace = _with_entries(build.namespace, kept.backward_source_namespace)
    namespace = _with_entries(build.namespace, kept.backward_namespace)
    if view.namespace is None or namespace is None:
        return None
    program = _Program(view, kept.source, kept.runs, namespace, kept.buffers, kept.reuses_forward, guards)
    program.set_saved_names(kept.saved_names)
    # its forward lines are the ones just written; the backward kept runs on the traced call's arrays
    saved = tuple(view.trace_env[name] for name in kept.saved_names)
    with np.errstate(all="ignore"):
        grads = program.instance().backward(saved, seed)
    same = len(grads) == len(view.expected_grads) and all(map(same_bits, grads, view.expected_grads))
    return program if same else None


def _plain(array):
    return array.view(np.ndarray) if isinstance(array, _FollowedArray) else array


def _as_eager_stores(gradient, node_gradients):
    """A leaf's gradient as eager's ``.grad`` gets it: a copy when it is also a node's gradient."""
    return gradient.copy() if id(gradient) in node_gradients and isinstance(gradient, np.ndarray) else gradient


def _with_entries(namespace, entries):
    """`namespace` with `entries` added; None when one of its names already means something else."""
    merged = dict(namespace)
    for name, obj in entries.items():
        if merged.setdefault(name, obj) is not obj:
            return None
    return merged


def _live(lines, returned):
    """The lines whose results are read by what is returned (gradients nobody asked for are not computed)."""
    live = set(returned)
    kept = []
    for line in reversed(lines):
        if line.keep or any(t in live for t in line.targets):
            kept.append(line)
            live.update(line.reads)
    return kept[::-1]


def _host_stubs(build):
    """The host functions of a program replaced by what the traced call got (the check must not draw
    new random numbers or update running statistics a second time)."""
    stubs = {}
    for name, record in build.host_fns.items():
        result = record.result
        stubs[name] = (lambda *a, _r=result: _r)
    return stubs


def _check_lines(build, forward, backward):
    """Run the lines once on the traced arrays; a line whose result is not the engine's,
    bit for bit, is written as the call of the engine's own function instead."""
    lines = forward + backward
    randoms = _RandomNumbers()
    env = dict(build.namespace)
    env.update(_host_stubs(build))
    env.update(build.trace_env)
    k = 0  # (a line written again is run again from where it stands: the lines before it are as they were)
    while True:
        bad = None
        with np.errstate(all="ignore"):
            for line in lines[k:]:
                try:
                    exec(_line_code(line.text()), env)  # noqa: S102
                except Exception:  # noqa: BLE001 (a readable form that fails falls back to the exact one)
                    bad = line
                    break
                if line.value is not None and not line.keep:
                    got = [env[t] for t in line.targets]
                    if not all(want is None or same_bits(g, want) for g, want in zip(got, line.value)) or (
                            line.exact is not None and not _agrees_on_other_numbers(line, env, randoms)):
                        bad = line
                        break
                k += 1
        if bad is None:
            return lambda text: evaluate(text, env)
        if bad.exact is None:
            written = [name for name in bad.reads + bad.targets if any(  # (a target: the traced array, the effect's)
                id(arrays.get(name)) in build.effect_written for arrays in (env, build.trace_env))]
            if written and written[0] in bad.targets:
                raise CompileError(
                    f"compile: an effect wrote into {written[0]}, the result of `{bad.text()}`, in place; the "
                    f"program cannot be checked against eager's numbers. Let the effect read it, and make what "
                    f"it computes a new array (autograd_core.compile.host_array(fn, h))")
            if written:  # (the check runs on the arrays as the call left them; eager's line read them before)
                raise CompileError(
                    f"compile: an effect wrote into {written[0]} after the operation `{bad.text()}` read it; the "
                    f"program cannot be checked against eager's numbers. Call the effect before the operation "
                    f"(a mean teacher's update before its forward), write into a copy, or read a copy (A.copy())")
            raise CompileError(
                f"compile: internal error: the program line `{bad.text()}` does not give the engine's result; "
                f"please report it, and run the function eagerly meanwhile"
            )
        bad.use_exact()


@functools.lru_cache(maxsize=256)  # (a model traced again, a new model of the same layers: the same program)
def _program_code(text):
    return builtins.compile(text, "<autograd_core.compile program>", "exec")


@functools.lru_cache(maxsize=8192)  # (the same lines come back at every trace of a network)
def _line_code(text):
    return builtins.compile(text, "<autograd_core.compile check>", "exec")


def _runs_like_the_engine(program, build):
    """Whether the planned program (with its buffers) gives the traced call's loss and gradients, bit for bit."""
    namespace = dict(program.namespace)
    namespace.update(_host_stubs(build))
    namespace.update(planner.make_buffers(program.buffers))
    forward = types.FunctionType(program.forward_code, namespace)
    backward = types.FunctionType(program.backward_code, namespace)
    inputs = [build.trace_env[name] for name in build.params]
    with np.errstate(all="ignore"):
        loss, saved_arrays, *_ = forward(*inputs)
        grads = backward(saved_arrays, build.trace_env[build.seed_name])
    return same_bits(loss, build.trace_env[build.loss_name]) and len(grads) == len(build.expected_grads) and all(
        same_bits(got, want) for got, want in zip(grads, build.expected_grads))
