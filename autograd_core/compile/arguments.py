"""The float array arguments of a compiled function: NumPy arrays in eager, Values while tracing.

Inside a compiled function a float array argument is a Value (so that every
operation made from it is recorded); in eager it is an ndarray, which follows
NumPy's rules. Where eager's result depends on which it was, the tracer works
out what eager had (`_eager_kind`) and refuses, or runs the operation both
ways and refuses where the two differ. The tracer installs these checks as
patches of Value while it traces (`tracer._save_originals_and_make_patches`).
"""

from __future__ import annotations

import numpy as np

from .. import engine
from ..engine import Value
from ..modes import _user_frame
from .tracer import (_ARGUMENT_HINT, _ORIGINALS, _OPERATOR_SYMBOLS, CompileError, _called_from_user, _same_data,
                     _tracing_threads, current, host_array)

# Where eager's result depends on whether the code still had an array or had made it a Value (nn's
# layers make one with Value(x), code of its own may test isinstance(x, Value)), the trace cannot
# tell which: `x / W` is W.__rtruediv__ (reciprocal(W) * x) while x is an array, a division once it
# is a Value; `3.0 / x` NumPy's division, or reciprocal(x) * 3.0; `x.sum()` a np.float64 that takes
# the dtype of the Value it meets, or a float64 Value that does not. Those are refused, or run both
# ways (the array as an array, unrecorded) and refused where the two differ.
_ARRAY, _VALUE, _CONSTANT = "array", "value", "constant"


def _eager_kind(trace, value):
    """What `value` may be in the eager call: _ARRAY for a float array argument and what ndarray's own
    methods and operators made from it (and numbers: x * 2, x.sum(), x[0]; see _as_numpy_method),
    _CONSTANT for the engine's constants and what is made of them alone, _VALUE otherwise (a Value
    the caller or the code made, or an engine function's result: ag.exp(x) is a Value in eager)."""
    kinds = trace.eager_kinds
    stack = [value]
    while stack:
        node = stack[-1]
        if id(node) in kinds:
            stack.pop()
            continue
        if id(node) in trace.array_arguments or id(node) in trace.numpy_made:
            kind = _ARRAY
        elif node._id < trace.start_id or id(node) in trace.made_by_user:
            kind = _VALUE
        elif node._op is None:
            kind = _CONSTANT
        else:
            pending = [inp for inp in node._inputs if id(inp) not in kinds]
            if pending:
                stack.extend(pending)
                continue
            # an engine function's result (ag.exp(x), F.softmax(x)) is a Value in eager too
            kind = _CONSTANT if all(kinds[id(inp)][0] == _CONSTANT for inp in node._inputs) else _VALUE
        stack.pop()
        kinds[id(node)] = (kind, node)  # (the Value kept: its id is not reused during the call)
    return kinds[id(value)][0]


def as_eager_value(x):
    """What eager's ``x if isinstance(x, Value) else Value(x)`` gives (nn's layers make their input a
    Value so): while tracing, a float array argument, an array in eager, becomes a new Value as
    there, not the Value the tracer made of it (whose ndarray-like use follows NumPy's rules).

    >>> import numpy as np
    >>> v = Value(np.ones(2))
    >>> as_eager_value(v) is v          # not tracing: the Value itself
    True
    """
    if not _tracing_threads[0]:  # (nn calls this for every input of every layer: no thread-local read in eager)
        return x
    trace = current()
    if trace is not None and not trace.inside_host and _eager_kind(trace, x) == _ARRAY:
        return Value(x, requires_grad=False)
    return x


def is_eager_value(x):
    """Whether eager's code has `x` as a Value: a Value, but not, while tracing, a float array
    argument (or what ndarray's methods made of it), which eager has as an array.

    >>> import numpy as np
    >>> is_eager_value(Value(np.ones(2))), is_eager_value(np.ones(2))
    (True, False)
    """
    if not isinstance(x, Value):
        return False
    trace = current() if _tracing_threads[0] else None
    return trace is None or trace.inside_host or _eager_kind(trace, x) != _ARRAY


def _made_by_user(self, *args, **kwargs):
    """Value.__init__ while tracing: noted (see _eager_kind); ``Value(x)`` of what eager has as an array
    (a float argument) is a constant holding it as a host array, read again at every call."""
    trace = current()
    if trace is not None and args and isinstance(args[0], Value) and _eager_kind(trace, args[0]) == _ARRAY:
        args = (host_array(_same_data, args[0], name="as_value"),) + args[1:]
    _ORIGINALS["__init__"](self, *args, **kwargs)
    if trace is not None:
        trace.made_by_user[id(self)] = self


_MAKE_IT_A_VALUE = ("Make the argument a Value first, as nn's layers do (x = ag.Value(x, requires_grad=False): "
                    "the same in eager and compiled), or compute this outside the function")
_EAGER_DEPENDS = ("eager divides (or casts) as NumPy does while the argument is an array, as the engine does "
                  "once the code made it a Value, and a compiled step cannot tell which it was")


def _truediv_checked(self, other):
    """``x / W`` of an array argument and a Value: refused (see above)."""
    trace = current()
    if (trace is not None and isinstance(other, Value) and _eager_kind(trace, self) == _ARRAY
            and _eager_kind(trace, other) == _VALUE):
        raise _refusal_of(f"`x / W` of a float array argument (or NumPy made from it) and a Value: {_EAGER_DEPENDS}",
                          _MAKE_IT_A_VALUE)
    return _ORIGINALS["__truediv__"](self, other)


def _rtruediv_checked(self, other):
    """``3.0 / x`` (or ``np.float64(3) / x``) of an array argument: refused (see above)."""
    trace = current()
    one = type(other) in (int, float) and other == 1  # (1 / x is reciprocal(x) * 1, NumPy's 1 / x bit for bit)
    if trace is not None and _eager_kind(trace, self) == _ARRAY and not one and (
            not isinstance(other, Value) or _eager_kind(trace, other) != _VALUE):  # (np.float64(3) / x too)
        raise _refusal_of(f"`3.0 / x` of a float array argument (or NumPy made from it): {_EAGER_DEPENDS}",
                          _MAKE_IT_A_VALUE)
    return _ORIGINALS["__rtruediv__"](self, other)


class ArrayArgument(Value):
    """A float array argument while tracing: a Value (every operation made from it is recorded) whose
    ``__class__``, which ``isinstance`` reads when the type itself does not match, is ``np.ndarray`` to
    the user's code, as in eager: ``isinstance(x, np.ndarray)`` holds, ``isinstance(x, (list, tuple))``
    does not, and what the branch computes on the argument is checked as NumPy's (see above). (``type(x)``
    and ``isinstance(x, Value)`` see the Value: see docs/compile.md's known limits.)"""

    __slots__ = ()

    @property
    def __class__(self):
        trace = current()
        if trace is not None and not trace.inside_host and _called_from_user(2):
            return np.ndarray
        return type(self)


def _sort_checked(self, *args, **kwargs):
    """``x.sort()`` of an array argument: refused (eager sorts the caller's array in place and returns None)."""
    trace = current()
    if trace is not None and not trace.inside_host and _eager_kind(trace, self) == _ARRAY:
        raise _refusal_of("`x.sort()` of a float array argument (or NumPy made from it): eager sorts the array in "
                          "place (the caller's) and returns None, the engine's sort returns a sorted Value",
                          "Write x = ag.sort(x) (or np.sort outside the function) instead")
    return _ORIGINALS["sort"](self, *args, **kwargs)


def _shape_set_refused(self, shape):
    """``x.shape = (2, 2)``: eager reshapes an array argument in place; a Value's shape is its data's."""
    trace = current()
    if trace is not None and not trace.inside_host and _eager_kind(trace, self) == _ARRAY:
        raise _refusal_of("`x.shape = ...` of a float array argument: eager reshapes the caller's array in place",
                          "Write x = x.reshape(...) instead")
    raise AttributeError("a Value's shape is its data's: write v = v.reshape(...)")


_NUMPY_METHODS = ("T", "sum", "mean", "max", "min", "prod", "std", "var", "reshape", "transpose", "swapaxes", "astype",
                  "clip", "cumsum", "cumprod", "round", "repeat", "__getitem__", "__neg__", "__pos__", "__abs__",
                  "__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__", "__truediv__", "__rtruediv__",
                  "__floordiv__", "__rfloordiv__", "__mod__", "__rmod__", "__pow__", "__rpow__", "__matmul__",
                  "__rmatmul__")


def _as_numpy_method(method, name):
    """A method of Value that ndarray has too (x.sum(), x * 2, x[0]): called on what eager has as an
    array, what it makes is NumPy's in eager, an array too (_record_every_operation marks it)."""
    def numpy_method(self, *args, **kwargs):
        trace = current()
        if trace is None or trace.inside_host:
            return method(self, *args, **kwargs)
        if _eager_kind(trace, self) != _ARRAY:
            if any(isinstance(a, Value) and a._data.ndim == 0 and _eager_kind(trace, a) == _ARRAY for a in args):
                return _as_eager_with_numbers(trace, method, self, args, kwargs)
            return method(self, *args, **kwargs)
        # (x32 / np.sqrt(2.0) is float64 in NumPy; to the engine a np.float64 is a Python float)
        numbers = [engine._constant(a) if isinstance(a, np.floating) else a for a in args]
        trace.numpy_calls += 1
        try:
            traced = method(self, *numbers, **kwargs)
        except TypeError as error:  # (x.sum(dtype=...): recorded, so that an `except TypeError` does not hide it)
            CompileError(f"compile: `.{name}` of a float array argument raised TypeError ({error}). {_ARGUMENT_HINT}")
            raise
        except (ValueError, IndexError) as error:  # (the engine's mean of an empty axis; NumPy's is NaN)
            try:
                getattr(self._data, name)(*[a._data if isinstance(a, Value) else a for a in args], **kwargs)
            except Exception:  # noqa: BLE001 (NumPy refuses it too: eager's error)
                raise error from None
            raise CompileError(f"compile: `.{name}` of a float array argument, at {_user_frame(with_code=True)}: "
                               f"the engine's raises {type(error).__name__} ({error}) where eager's NumPy may not. "
                               f"{_ARGUMENT_HINT}") from error
        finally:
            trace.numpy_calls -= 1
        _refuse_unless_numpy_agrees(trace, name, self, args, numbers, kwargs, traced)
        return traced
    numpy_method.__name__ = getattr(method, "__name__", name)
    return numpy_method


_ELEMENTWISE = frozenset({"__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__", "__truediv__",
                          "__rtruediv__", "__floordiv__", "__rfloordiv__", "__mod__", "__rmod__", "__pow__", "__rpow__",
                          "__neg__", "__pos__", "__abs__", "clip", "round"})
_PROBE = np.array([-0.0, 0.0, -np.inf, np.inf, np.nan, -1.0, 1.0, 0.5, -2.5, 3.0, 1e-30, -1e30])


def _refuse_unless_numpy_agrees(trace, name, self, args, numbers, kwargs, traced):
    """What ndarray's own method makes in eager (x32 * counts64 is float64 there, x32 ** np.array(1.5)
    too), run unrecorded on the arrays: refused unless it has the traced Value's dtype, shape and bits.
    `numbers`: the `args` the engine's method was given. (Where an operand is a Value eager has too, or
    NumPy refuses the call, there is nothing to compare.)"""
    raw = []
    for a in args:
        if isinstance(a, Value):
            if _eager_kind(trace, a) != _ARRAY:
                return
            a = a._data
        raw.append(a.view(np.ndarray) if isinstance(a, np.ndarray) and type(a) is not np.ndarray else a)
    if not isinstance(traced, Value) or any(isinstance(v, Value) for v in kwargs.values()):
        return
    try:
        eager = _unrecorded(trace, lambda: self._data.T if name == "T" else getattr(self._data, name)(*raw, **kwargs))
    except Exception:  # noqa: BLE001 (another signature than the engine's: nothing to compare)
        return
    eager = np.asarray(eager)
    differs = not (eager.dtype == traced._data.dtype and eager.shape == np.shape(traced._data)
                   and eager.tobytes() == np.asarray(traced._data).tobytes())
    if not differs and name in _ELEMENTWISE and not any(np.ndim(a) for a in (*raw, *kwargs.values())):
        # (and on the numbers where NumPy's fast paths part from the engine's: x ** 0.5 is sqrt in NumPy,
        # -0.0 and -inf give another sign or a nan there; this call's data may hold none of them)
        with np.errstate(all="ignore"):
            probe = _PROBE.astype(self._data.dtype)
            eager_probe = np.asarray(getattr(probe, name)(*raw, **kwargs))
        traced_probe = _unrecorded(trace, lambda: np.asarray(
            getattr(Value(probe, requires_grad=False), name)(*numbers, **kwargs)._data))
        differs = eager_probe.dtype != traced_probe.dtype or eager_probe.tobytes() != traced_probe.tobytes()
    if differs:
        symbol = _OPERATOR_SYMBOLS.get(name.replace("__r", "__", 1))
        what = f"`x {symbol} ...`" if symbol else f"x.{name}" if name == "T" else f"x.{name}(...)"
        raise _refusal_of(
            f"{what} of a float array argument gives NumPy's {eager.dtype} {eager.shape} in eager (the argument is "
            f"an array there), the engine's {traced._data.dtype} {np.shape(traced._data)} or other bits while "
            f"tracing (it is a Value), on this call's numbers or on -0.0, inf or nan", _MAKE_IT_A_VALUE)


def _in_place_refused(operator_name):
    """``x += 1`` while tracing: eager writes into an array argument (the caller's array, and every view
    of it); on a Value it rebinds the name, as here."""
    def in_place(self, other):
        trace = current()
        if trace is not None and not trace.inside_host and _eager_kind(trace, self) == _ARRAY:
            symbol = _OPERATOR_SYMBOLS[operator_name]
            raise _refusal_of(
                f"`x {symbol}= ...` of a float array argument (or NumPy made from it): eager writes into the array "
                f"(the caller's), a compiled step would not", f"Write x = x {symbol} ... instead")
        return getattr(self, operator_name)(other)
    in_place.__name__ = operator_name.replace("__", "__i", 1)
    return in_place


def _binary_as_eager(op, a, b):
    """ops._binary while tracing: ag.div(2.5, x) of a number and an array argument is, in eager, of a
    number and an array (the number float64, not in x's dtype): refused where that differs."""
    return _as_eager_too(_ORIGINALS["_binary"], (op,), (a, b), f"the engine's {op.name} of a number and a float "
                         f"array argument (ag.div(2.5, x))")


def _operands_as_eager(a, b):
    """ops._operands while tracing (the operands of ag.where, ag.lerp...): as _binary_as_eager."""
    return _as_eager_too(_ORIGINALS["_operands"], (), (a, b), "an engine function given a number and a float array "
                         "argument (ag.where(c, 0.3, x), ag.lerp(0.1, x, w))")


def _as_eager_too(fn, head, values, what):
    """``fn(*head, *values)``; where an array argument and no Value the code made is among `values`, also
    run as eager has them (the array arguments as arrays), unrecorded, and refused unless the two give
    the same dtypes and bits."""
    trace = current()
    kinds = [_eager_kind(trace, v) if isinstance(v, Value) else None for v in values] if trace is not None else ()
    if trace is None or trace.inside_host or trace.numpy_calls or _ARRAY not in kinds or _VALUE in kinds:
        return fn(*head, *values)
    traced = fn(*head, *values)
    eager = _unrecorded(trace, fn, *head, *(v._data if kind == _ARRAY else v for v, kind in zip(values, kinds)))
    pairs = zip(eager, traced) if type(traced) is tuple else ((eager, traced),)
    if not all(_same_result(e, t) for e, t in pairs):
        raise _refusal_of(f"{what}: eager has an array there and makes the number in another dtype than with "
                          f"the Value it is while tracing", _MAKE_IT_A_VALUE)
    return traced


def _as_eager_with_numbers(trace, method, self, args, kwargs):
    """``W ** x.mean()``: eager gives the method a NumPy scalar, which the engine may take otherwise
    than a Value (a constant exponent: another operation). Called both ways (the scalar's way not
    recorded); refused unless the two made the same operation, dtype and bits."""
    as_numbers = [a._data if isinstance(a, Value) and a._data.ndim == 0 and _eager_kind(trace, a) == _ARRAY
                  else a for a in args]
    eager = _unrecorded(trace, method, self, *as_numbers, **kwargs)
    traced = method(self, *args, **kwargs)
    if not (isinstance(eager, Value) and isinstance(traced, Value) and eager._op is traced._op
            and _same_result(eager, traced)):
        raise _refusal_of(
            f"a number made from an array argument (x.mean(), x[0]) given to a Value's {method.__name__}: eager "
            f"gives it a NumPy scalar, which the engine takes otherwise (another operation or dtype) than the "
            f"Value it is while tracing", _MAKE_IT_A_VALUE)
    return traced


def _unrecorded(trace, fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` run as eager has its arguments: what it records is no part of the program,
    and its NumPy warnings are the traced run's to give."""
    trace.inside_host = True
    try:
        with np.errstate(all="ignore"):
            return fn(*args, **kwargs)
    finally:
        trace.inside_host = False


def _same_result(eager, traced):
    """The same dtype and bits, of two Values made both ways."""
    return eager._data.dtype == traced._data.dtype and (
        np.asarray(eager._data).tobytes() == np.asarray(traced._data).tobytes())


def _eager_kind_of_result(trace, op, out, data, inputs):
    """Mark what an ndarray method made from arrays (and constants) alone; refuse a float64 number of
    the array arguments meeting a Value of another float dtype: eager's np.float64 (x.sum(), x[0, 1])
    is a Python number to the engine, which takes that dtype, a float64 Value does not."""
    if trace.numpy_calls and all(_eager_kind(trace, inp) != _VALUE for inp in inputs):
        trace.numpy_made[id(out)] = out
        if op.elementwise and any(inp._data.ndim == 0 and inp._data.dtype != np.float64
                                  and id(inp) in trace.array_arguments for inp in inputs):  # (x.T, x.sum(): exact)
            raise _refusal_of(
                f"NumPy's {op.name} of a 0-d {data.dtype} array argument: eager computes it on the 0-d array, "
                f"which may round otherwise (2.3 ** x) than on the scalar a Value holds",
                "Pass it as an array of shape (1,), or as a Python float")
    if len(inputs) < 2:
        return
    numbers = [inp for inp in inputs if inp._data.ndim == 0 and inp._data.dtype == np.float64]
    if numbers:
        for inp in inputs:  # (x16 * y64.max() in NumPy gives float64 as the trace; ag.maximum(x16, ...) casts)
            theirs = inp._data.dtype
            met = _eager_kind(trace, inp)
            if theirs.kind == "f" and theirs != np.float64 and (met == _VALUE or (
                    met == _ARRAY and not trace.numpy_calls)) and any(
                    _eager_kind(trace, number) == _ARRAY for number in numbers):
                raise _refusal_of(
                    f"a number made from a float64 array argument (x.sum(), x[0, 1]) meeting a {theirs} Value: "
                    f"{_EAGER_DEPENDS}",
                    f"{_MAKE_IT_A_VALUE}, or cast the number (x.sum().astype(np.{theirs}))")


def _refusal_of(what, fix):
    return CompileError(f"compile: {what}, at {_user_frame(with_code=True)}. {fix}.")


def _refuse_value_parameters(op, params):
    """A Value given to an operation as a parameter (a float array argument is one while tracing):
    the program would pass that Value, the first call's numbers, at every call."""
    for key, param in (params or {}).items():
        if isinstance(param, Value):
            raise _refusal_of(
                f"the operation {op.name!r} was given a Value as its parameter {key!r} (inside a compiled function "
                f"a float array argument is a Value): a replay would keep its first numbers",
                f"Make it an input of the operation (Op(..., inputs=\"..., {key}\")), or compute it outside")


def _numpy_refused_as_compile_error(name):
    """A NumPy function or ufunc on a Value, refused by the engine with a TypeError: while tracing,
    a CompileError saying why (the Value may be the float array the caller passed)."""
    def refuse(self, *args, **kwargs):
        try:
            return _ORIGINALS[name](self, *args, **kwargs)
        except TypeError as error:
            if current() is None:
                raise
            raise CompileError(f"compile: {error} {_ARGUMENT_HINT}") from None
    refuse.__name__ = name
    return refuse


def _array_method_refused(self, name):
    """``x.copy()``, ``x.ravel()`` of a Value (Values have no such method): while tracing, a CompileError
    saying that the float array argument is a Value there."""
    if current() is not None and hasattr(np.ndarray, name) and not name.startswith("_"):
        raise CompileError(f"compile: `.{name}` of a Value at {_user_frame(with_code=True)}. {_ARGUMENT_HINT}")
    raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
