"""The tracer: what one eager call of a compiled function is watched for.

While a thread traces, every operation is recorded by the eager engine as
usual; this module adds what the graph alone does not show:

* arrays made in NumPy outside the engine's operations that a replay must
  make again (`host_array`: a dropout mask, one-hot rows from class labels,
  the mask of a comparison ``x > 0``), and calls made for what they do
  (`effect`: batch norm's running statistics), each stamped with its place
  among the operations so the program replays them in the order they happened,
  and what each of them changes of what it holds, taken before and after its
  call (``guards.EffectChanges`` tells it from what the rest of the call changed);
* reads of a traced value that would freeze the first call's data into the
  program (``if loss > 0``, ``float(v)``, ``np.asarray(x)``): refused with a
  `CompileError` naming the user's line.

The trace is per thread: another thread's eager code runs as usual while one
thread traces.
"""

from __future__ import annotations

import builtins
import sys
import threading

import numpy as np

from .. import engine, modes, ops
from ..engine import Value
from ..modes import _PACKAGE_DIRS, _user_frame, _user_place
from .guards import effect_owners, filled, state_of
from .snapshots import Draws
from .sources import _value_digest, array_digest


__all__ = ["CompileError", "host_array", "effect", "is_tracing"]


class CompileError(RuntimeError):
    """A function that cannot be compiled as written (the message says why and what to do).

    >>> import numpy as np, autograd_core as ag
    >>> def fn(x):
    ...     return x.sum() if x.sum() > 0 else -x.sum()     # Python deciding on a traced value
    >>> try:
    ...     ag.compile(fn)(np.ones(2))
    ... except CompileError as error:
    ...     print(str(error)[:41])
    compile: `if` (or bool()) on a comparison
    """

    def __init__(self, *args):
        super().__init__(*args)
        trace = current()
        if trace is not None:  # (a refusal the function's own `except` catches must not go unseen)
            trace.refusals.append(str(self))


_local = threading.local()  # .trace: the _Trace this thread records, or None


def current():
    """The trace this thread is recording, or None."""
    return getattr(_local, "trace", None)


def is_tracing():
    """True while `compile` is recording a function's first call in this thread
    (False inside a `host_array` or `effect` function, which every call runs again).

    >>> import numpy as np, autograd_core as ag
    >>> step = ag.compile(lambda x: print("tracing:", is_tracing()) or (x * 2.0).sum())
    >>> _ = step(np.ones(2)); _ = step(np.ones(2))      # (the replay runs no Python of the function's)
    tracing: True
    >>> is_tracing()
    False
    """
    trace = getattr(_local, "trace", None)
    return trace is not None and not trace.inside_host


class _HostRecord:
    """An array made outside the engine (or a call made for its effect), and how to make it again."""

    __slots__ = ("result", "fn", "inputs", "name", "when", "is_effect", "line_name", "digest")

    def __init__(self, result, fn, inputs, name, when, is_effect):
        self.result = result  # the array the traced call got (None for an effect)
        self.fn = fn
        self.inputs = inputs
        self.name = name
        self.when = when  # creation number of the next node: its place among the operations
        self.is_effect = is_effect
        self.line_name = None  # its name in the program, once written
        self.digest = None if not isinstance(result, np.ndarray) else array_digest(result)  # (written into since?)


def host_array(fn, *inputs, name=None):
    """``fn(*inputs)``: an array made in NumPy, outside the engine's operations,
    that a compiled step must make again at every call (a dropout mask, one-hot
    rows from class labels). `inputs` are arrays or Values the array is made
    from; `name` names it in ``source()``. Outside tracing this is just ``fn(*inputs)``.

    >>> import numpy as np
    >>> host_array(lambda y: np.eye(3)[y], np.array([2, 0])).tolist()
    [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    """
    if name is not None and not isinstance(name, str):
        raise TypeError(f"host_array: name must be a string, got {type(name).__name__}")
    trace = current()
    data = _call_host(trace, fn, inputs)
    if trace is not None and not trace.inside_host:
        if not isinstance(data, np.ndarray):  # a NumPy scalar: a 0-d array, whose identity the program can follow
            if _called_from_user(2):  # (eager's engine takes a number in the dtype of the Value it meets; an array not)
                raise CompileError(
                    f"compile: host_array({name or getattr(fn, '__name__', 'fn')}) returned a {type(data).__name__}, "
                    f"a number, which eager's engine takes in the dtype of the Value it meets and a compiled step "
                    f"would hold as a float64 array; return an array (np.asarray(value, dtype=...))")
            data = np.asarray(data)
        if any(data is _raw(x) for x in inputs):  # (np.asarray(w, dtype) of w in that dtype: another object, named
            data = data.copy(order="K")             # apart from the input it is made from)
        trace.record_host(_HostRecord(data, fn, inputs, name, engine._next_id(), False))
        if _called_from_user(2):  # (the user's: what NumPy makes of it is made again too, lam * X, 1 - lam)
            traced = data.view(_HostResult)
            trace.alias(traced, data)
            return traced
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
    trace = current()
    _call_host(trace, fn, inputs)
    if trace is not None and not trace.inside_host:
        trace.record_host(_HostRecord(None, fn, inputs, None, engine._next_id(), True))


def _call_host(trace, fn, inputs):
    """``fn`` on the inputs' data; a host array or effect made inside it is part of it (its
    call makes it again), not one of its own."""
    if trace is None or trace.inside_host:
        return fn(*[_raw(x) for x in inputs])
    ours = getattr(getattr(fn, "__code__", None), "co_filename", "").startswith(_PACKAGE_DIRS)  # (nn's)
    owners = effect_owners(fn, inputs, deep=not ours)  # (what it changes of theirs is its own, done again)
    before = [state_of(owner) for owner in owners]
    trace.inside_host, trace.host_from = True, engine._next_id()
    trace.draws.look(ours=ours)  # (the code's draws so far; the host function's own are made again at every call)
    try:
        return fn(*[_raw(x) for x in inputs])
    except Exception as error:  # (recorded: one the function catches, a check's, must not pick its path unseen)
        CompileError(f"compile: {getattr(fn, '__name__', 'a host function')} raised {type(error).__name__} ({error}) "
                     f"while tracing; a replay would take the path the traced call took after it")
        raise
    finally:
        trace.inside_host = False
        trace.draws.look(after_host=True, ours=ours)
        trace.effect_states.append((owners, before, [state_of(owner) for owner in owners]))


def _raw(x):
    if isinstance(x, Value):
        return x._data
    if isinstance(x, _FollowedArray):
        return x.view(np.ndarray)
    return x


# --------------------------------------------------------------------------
# Reads of traced data: refused, naming the user's line
# --------------------------------------------------------------------------
def _called_from_user(depth):
    """True when the frame `depth` levels up is not this project's code (nn's and
    optim's reads of their own data are theirs to make traceable)."""
    return not sys._getframe(depth).f_code.co_filename.startswith(_PACKAGE_DIRS)


def _refusal(what, fix):
    return CompileError(
        f"compile: {what} reads a traced value's data while tracing, at {_user_frame(with_code=True)}. "
        f"A compiled step would replay whatever that read gave on the first call. {fix}"
    )


_IF_FIX = ("Move the check out of the compiled function (test the returned loss after the call), "
           "or compute both branches and pick with ag.where(condition, a, b).")
_RETURN_FIX = "Return the value from the function and read it after the call."
_COUNT_FIX = ("Return it and read it after the call, or make an array of it with "
              "autograd_core.compile.host_array(fn, mask) (recomputed at every call).")
_FOLLOWED = "an integer argument, a traced mask or a host array"  # (what the refusals below name)
_HOST_FIX = ("Read its numbers inside the host_array function, which runs again at every call (pass them on as "
             "arrays), or compute with the engine's operations.")
_DATA_FIX = ("Compute it with the engine's operations (they are replayed), or with "
             "autograd_core.compile.host_array(fn, value) (recomputed at every call).")


def _read_refused(name, what, fix, users_only=False):
    """An ndarray method that reads numbers into Python, refused while tracing (the
    number would be the first call's in every replay); with `users_only`, only
    where the user's code calls it."""
    def read(self, *args, **kwargs):  # (inside an operation's forward, given labels: run again at every call)
        if current() is not None and (not users_only or _called_from_user(2)) and not _inside_an_operation():
            raise _refusal(what, fix)
        return getattr(np.ndarray, name)(self, *args, **kwargs)
    read.__name__ = name
    return read


_MEANS = ("mean", "std", "var")
_METHOD_FORMS = frozenset(_MEANS + ("reshape", "transpose", "ravel", "squeeze", "swapaxes"))  # (np.mean(x, 0) too)


def _made_again(name, reduction=False):
    """A view of labels, a mask or an image argument (y.reshape(len(y), -1), mask.T): a host array of its
    own, made again at every call; so is, with `reduction`, a mean over an axis (x.mean(0) of a uint8
    batch), while a mean of all of it, a float64 number that eager's engine casts to the dtype of the Value
    it meets, is refused ((y_hat == y).mean(), an accuracy: compute it after the call)."""
    def method(self, *args, **kwargs):
        return _made_again_by(self, name, reduction, _called_from_user(2), args, kwargs)
    method.__name__ = name
    return method


def _made_again_by(array, name, reduction, users, args, kwargs):
    """`array`'s method `name` as _made_again makes it (`users`: called by the user's code)."""
    trace = current()
    if trace is None or trace.inside_host or (reduction and not users):
        return getattr(np.ndarray, name)(array.view(np.ndarray) if reduction else array, *args, **kwargs)
    if _inside_an_operation():  # (an operation's forward given labels: NumPy's own, the operation's data)
        return getattr(np.ndarray, name)(array.view(np.ndarray), *args, **kwargs)
    if any(isinstance(a, (np.ndarray, Value)) for a in (*args, *kwargs.values())):
        raise _refusal(f".{name}() of {_FOLLOWED}, given an array", _DATA_FIX)
    if reduction and np.ndim(getattr(array.view(np.ndarray), name)(*args, **kwargs)) == 0:
        raise _refusal(f".{name}() of {_FOLLOWED} (a number)", _DATA_FIX)
    made = _followed_host_array(trace, type(array), lambda x: np.asarray(getattr(x, name)(*args, **kwargs)),
                                (array,), array._host_name)
    return _as_eager_has_it(made, getattr(_eagerly(array), name)(*args, **kwargs))


def _written_refused(name):
    def write(self, *args, **kwargs):
        if current() is not None and not _inside_an_operation():
            raise _refusal(f".{name}() of {_FOLLOWED} (a write into it)", _DATA_FIX)
        return getattr(np.ndarray, name)(self, *args, **kwargs)
    write.__name__ = name
    return write


class _FollowedArray(np.ndarray):
    """An array a compiled step gets afresh at every call (an integer argument, a mask):
    while tracing, its NumPy ufuncs (``y + 1``, ``~mask``, ``mask.any(axis=0)``) are host
    arrays of their own, made again at every call, and one element of it (``y[0]``) stays
    a 0-d array of its class, not a Python number to branch on."""

    _host_name = "host"
    _eager_number = False  # (see _as_eager_has_it)

    def __array_finalize__(self, obj):  # (h.view() of a number eager has: that number still)
        if getattr(obj, "_eager_number", False) and self.shape == obj.shape:
            self._eager_number = True

    def __getitem__(self, index):
        trace = current()
        if trace is not None and _selects_by_mask(index):
            raise _refusal("selecting from an integer argument with a traced mask (y[y > 0]): its shape",
                           _DATA_FIX)
        if trace is not None and not trace.inside_host:
            if any(isinstance(part, _FollowedArray) for part in (index if type(index) is tuple else (index,))):
                raise _refusal(f"indexing {_FOLLOWED} with another (y[order])", _DATA_FIX)
            # y[:, None], (y > 1)[:, None], y[0], mask[[0, 2]]: a host array of its own, made again at every call
            # (a view or a copy of the first call's array would be read by the replays)
            made = _followed_host_array(trace, type(self), lambda x: np.asarray(x[index]), (self,),
                                        self._host_name)
            return _as_eager_has_it(made, _eagerly(self)[index])  # (h[0]: a number in eager; h[0, ...] not)
        part = np.ndarray.__getitem__(self, index)
        if isinstance(part, np.generic) and trace is not None:
            return np.asarray(part).view(type(self))
        return part

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return _remade(type(self), self._host_name, ufunc, method, inputs, kwargs)

    def astype(self, dtype, *args, **kwargs):
        # a cast (a float32 graph casts the mask or labels it meets) is a host array of its own, as a ufunc's is
        trace = current()
        if trace is None or trace.inside_host:
            return np.ndarray.astype(self, dtype, *args, **kwargs)
        made = _followed_host_array(trace, type(self), lambda x: np.asarray(x).astype(dtype, *args, **kwargs),
                                    (self,), self._host_name)
        return _as_eager_has_it(made, _eagerly(self).astype(dtype, *args, **kwargs))

    # its methods that are NumPy functions beyond ufuncs, refused as those are (see __array_function__)
    argmax, argmin, nonzero, dot = (
        _read_refused(name, f".{name}() of {_FOLLOWED}", _DATA_FIX, users_only=True)
        for name in ("argmax", "argmin", "nonzero", "dot"))

    def __array_function__(self, func, types, args, kwargs):
        # np.where(y > 1, 0, y), np.count_nonzero(y), np.dot(y, y): NumPy beyond its ufuncs gives arrays and
        # numbers a compiled step could not make again; the library's own calls make theirs host arrays
        if current() is not None and _called_from_user(2) and not _inside_an_operation():
            if func.__name__ in _METHOD_FORMS and args and args[0] is self:  # (np.mean(x, 0): x.mean(0))
                return _made_again_by(self, func.__name__, func.__name__ in _MEANS, True, args[1:], kwargs)
            raise _refusal(f"np.{func.__name__} of {_FOLLOWED}", _DATA_FIX)
        return super().__array_function__(func, types, args, kwargs)

    def __setitem__(self, index, value):
        if current() is not None and not _inside_an_operation():  # y[0] = 2: a replay reads the argument as passed
            raise _refusal(f"writing into {_FOLLOWED}", _DATA_FIX)
        np.ndarray.__setitem__(self, index, value)

    # its views: host arrays of their own, made again at every call (x.reshape(len(x), -1) / 255.0 of a uint8
    # image, mask[None]); its means, float64 numbers that eager's engine casts to the dtype of the Value they
    # meet, refused by name ((y_hat == y).mean(): an accuracy, computed outside from the returned logits)
    reshape, ravel, flatten, transpose, swapaxes, squeeze, copy, round = (
        _made_again(name) for name in ("reshape", "ravel", "flatten", "transpose", "swapaxes", "squeeze", "copy",
                                       "round"))
    T = property(lambda self: self.transpose())
    mean, std, var = (_made_again(name, reduction=True) for name in _MEANS)
    # (and the reads of its numbers that NumPy's own methods offer: y.tobytes(), format(y[0]), complex(y[0]))
    tobytes, __format__, __complex__, __str__, __repr__, take, __round__ = (
        _read_refused(name, f"{name}() of {_FOLLOWED}", _DATA_FIX, users_only=True)
        for name in ("tobytes", "__format__", "__complex__", "__str__", "__repr__", "take", "__round__"))

    @property
    def flat(self):
        if current() is not None and _called_from_user(2) and not _inside_an_operation():
            raise _refusal(f"`.flat` of {_FOLLOWED}", _DATA_FIX)
        return np.ndarray.flat.__get__(self)

    # (and its methods that write into it: m.fill(True), order.sort(), y.put(0, 2))
    fill, sort, put, partition, resize, itemset, setfield = (
        _written_refused(name) for name in ("fill", "sort", "put", "partition", "resize", "itemset", "setfield"))


class TracedArgument(_FollowedArray):
    """An integer array argument (class labels) as the traced call sees it: arrays
    computed from it in NumPy keep this class, so the writer can tell them from
    constants and refuse them (a replay could not compute them again); its numbers
    read into Python (``y.tolist()``, ``for label in y``, ``int(y[0])``, ``range(y.max())``)
    are refused; NumPy computations on it are host arrays, made again at every call."""

    __iter__ = _read_refused("__iter__", "iterating over an integer argument (for label in y, list(y))", _DATA_FIX)
    # (NumPy reads a 0-d integer array used as an index through __index__, inside the engine's own operation)
    __index__ = _read_refused("__index__", "an integer argument as a Python index, a slice bound or a size",
                              _DATA_FIX, users_only=True)
    tolist = _read_refused("tolist", ".tolist() of an integer argument", _DATA_FIX)
    item = _read_refused("item", ".item() of an integer argument", _DATA_FIX)
    __int__ = _read_refused("__int__", "int() of an integer argument", _DATA_FIX)
    __float__ = _read_refused("__float__", "float() of an integer argument", _DATA_FIX)
    __bool__ = _read_refused("__bool__", "`if` (or bool()) on an integer argument", _IF_FIX)

    _host_name = "from_argument"


class _TracedMask(_FollowedArray):
    """The result of comparing a traced Value (``x > 0``), or of another engine
    function that gives indices or booleans of traced data (``argmax``,
    ``isnan``): an array that `where` and indexing can use and a compiled step
    recomputes, but that refuses to drive Python control flow."""

    _host_name = "condition"

    def __bool__(self):
        raise _refusal("`if` (or bool()) on a comparison (or argmax, isnan, any...)", _IF_FIX)

    # a number read off a mask (int((v > 0).sum()), mask[0]) would be the first call's in every replay
    __float__ = _read_refused("__float__", "float() of a comparison (or argmax, any...)", _COUNT_FIX)
    __int__ = _read_refused("__int__", "int() of a comparison (or argmax, any...)", _COUNT_FIX)
    __index__ = _read_refused("__index__", "using a comparison (or argmax...) as a Python index", _COUNT_FIX)
    item = _read_refused("item", ".item() of a comparison (or argmax, any...)", _COUNT_FIX)
    tolist = _read_refused("tolist", ".tolist() of a comparison (or argmax, any...)", _COUNT_FIX)


class _HostResult(_FollowedArray):
    """What `host_array` gives the user's code while tracing: made again at every call, and so is what
    NumPy computes from it (``1 - lam``, ``w / w.sum()``, ``h[0]``); its numbers read into Python
    (``float(lam)``, a slice bound, a parameter a layer converts with float()) are refused, as a
    replay would keep the first call's."""

    __iter__ = _read_refused("__iter__", "iterating over a host array", _HOST_FIX)
    __index__ = _read_refused("__index__", "a host array as a Python index, a slice bound or a size", _HOST_FIX,
                              users_only=True)
    tolist = _read_refused("tolist", ".tolist() of a host array", _HOST_FIX)
    item = _read_refused("item", ".item() of a host array", _HOST_FIX)
    __int__ = _read_refused("__int__", "int() of a host array", _HOST_FIX)
    __float__ = _read_refused("__float__", "float() of a host array", _HOST_FIX)
    __bool__ = _read_refused("__bool__", "`if` (or bool()) on a host array", _IF_FIX)


def _selects_by_mask(index):
    """Whether an index selects with a traced mask or a boolean argument: its result's shape is the
    mask's count, and a replay runs the first call's shapes."""
    return any(isinstance(part, _FollowedArray) and part.dtype == bool
               for part in (index if isinstance(index, tuple) else (index,)))


def _remade(cls, name, ufunc, method, inputs, kwargs):
    """A NumPy ufunc on a traced mask or integer argument: while tracing, a host array of its
    own, made again at every call (computed once, it would be the first call's in every
    replay), seen as `cls` again so that what is made from it is followed too."""
    if any(isinstance(x, Value) for x in inputs):
        return NotImplemented  # mask * v: the Value's operator
    plain = [x.view(np.ndarray) if isinstance(x, _FollowedArray) else x for x in inputs]
    call = getattr(ufunc, method)
    out = kwargs.get("out")
    if out is Ellipsis:  # (NumPy's out=...: a 0-d array, not a number; nothing written)
        out = None
    trace = current()
    if trace is not None and not trace.inside_host and _inside_an_operation():
        # an operation's forward given labels or a mask as a parameter (a student's dropout op): NumPy's own
        # result, the operation's data; its line passes this call's labels at every replay
        kwargs = {k: v.view(np.ndarray) if isinstance(v, _FollowedArray) else v for k, v in kwargs.items()}
        return call(*plain, **kwargs)
    if trace is not None and not trace.inside_host and out is not None and any(
            isinstance(x, _FollowedArray) for x in out):
        # y -= 1, np.clip(y, 0, 1, out=y), a reduction NumPy finishes in place (y.mean()): a replay would
        # make the array again without the write
        raise _refusal(f"writing the result of np.{ufunc.__name__} into {_FOLLOWED}", _DATA_FIX)
    if trace is not None and not trace.inside_host and (out is not None or method == "at"):  # (np.add(y, 1, out=buf)
        # and np.add.at(counts, y, 1) write into an array a replay keeps as the first call left it)
        raise _refusal(f"np.{ufunc.__name__}{'.at' if method == 'at' else '(..., out=)'} of {_FOLLOWED}", _DATA_FIX)
    if trace is not None and not trace.inside_host and ufunc.nout != 1:  # (np.divmod(y.sum(), 3): numbers kept)
        raise _refusal(f"np.{ufunc.__name__} of {_FOLLOWED} (its {ufunc.nout} results)", _DATA_FIX)
    masks = [k for k, v in kwargs.items() if k != "out" and isinstance(v, _FollowedArray)]  # (where=y > 2)
    if trace is None or trace.inside_host or out is not None or ufunc.nout != 1:  # NumPy's own result, as `cls`
        kwargs = {k: v.view(np.ndarray) if k in masks else v for k, v in kwargs.items()}
        if out is not None:
            kwargs["out"] = tuple(x.view(np.ndarray) if isinstance(x, _FollowedArray) else x for x in out)
        result = call(*plain, **kwargs)
        if out is not None:
            return out[0] if len(out) == 1 else out
        if isinstance(result, tuple):
            return tuple(r.view(cls) if isinstance(r, np.ndarray) else r for r in result)
        return result.view(cls) if isinstance(result, np.ndarray) else result
    # (a mask given by keyword is an input too, made again at every call)
    fixed, n = {k: v for k, v in kwargs.items() if k not in masks}, len(inputs)
    made = _followed_host_array(trace, cls, lambda *xs: call(*xs[:n], **fixed, **dict(zip(masks, xs[n:]))),
                                tuple(inputs) + tuple(kwargs[k] for k in masks), name)
    return _as_eager_has_it(made, call(*map(_eagerly, inputs), **fixed, **{k: _eagerly(kwargs[k]) for k in masks}))


def _eagerly(x):
    """A followed array as eager's NumPy has it: a 0-d one eager has as a NumPy number (a ufunc's 0-d
    result, y[0]) as that number, another as a plain array."""
    if not isinstance(x, _FollowedArray):
        return x
    return x.view(np.ndarray)[()] if getattr(x, "_eager_number", False) else x.view(np.ndarray)


def _as_eager_has_it(made, eager):
    """`made`, marked as a number where eager's NumPy (`eager`: the same computed on `_eagerly` inputs)
    gives one: the engine takes a np.float64 number in the dtype of the Value it meets, a 0-d array not."""
    made._eager_number = isinstance(eager, np.generic)
    return made


def _inside_an_operation():
    """Whether the caller runs inside an operation's forward (``Op.apply``), a few frames up."""
    frame = sys._getframe(2)
    for _ in range(32):
        if frame is None:
            return False
        if frame.f_code is _APPLY_CODE:
            return True
        frame = frame.f_back
    return False


_APPLY_CODE = ops.Op.apply.__code__


def _followed_host_array(trace, cls, fn, inputs, name):
    """``host_array(fn, *inputs)`` seen as `cls`: the view the user gets is the host array itself."""
    made = host_array(fn, *inputs, name=name)
    traced = made.view(cls)
    trace.alias(traced, made)
    return traced


def _comparison(np_fn, name):
    def compare(self, other):
        trace = current()
        if trace is None:
            return _ORIGINALS[name](self, other)
        return _followed_host_array(trace, _TracedMask, np_fn, (self, other), "condition")
    compare.__name__ = name
    return compare


def _indexing():
    def getitem(self, index):
        if current() is not None:
            parts = index if isinstance(index, tuple) else (index,)
            if _selects_by_mask(index):
                # its result's shape is the mask's count: a replay would run the first call's shapes
                raise CompileError(
                    f"compile: indexing with a traced comparison or a boolean argument (v[v > 0], v[mask]) at "
                    f"{_user_frame(with_code=True)} gives a result whose shape depends on the data, and a compiled "
                    f"step replays the shapes of the first call. Keep the shape (ag.where(v > 0, v, 0.0)), or "
                    f"select outside the compiled function"
                )
            if any(isinstance(part, slice) and any(isinstance(bound, _FollowedArray)
                                                   for bound in (part.start, part.stop, part.step)) for part in parts):
                raise _refusal("a slice bound from an integer argument (v[:y.max()])", _DATA_FIX)
        return _ORIGINALS["__getitem__"](self, index)
    return getitem


def _made_in_this_host_call(trace, value):
    """A Value a host function or an effect made itself, from no Value of the traced call (a validation
    loss it computes): remade whenever it runs, so its numbers may be read there."""
    if not trace.inside_host or trace.start_id <= value._id < trace.host_from:
        return False
    if value._id < trace.start_id:  # (a parameter: read as it is at every call)
        return True
    stack, seen = [value], set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if node._id < trace.host_from:
            if node._id >= trace.start_id:  # (a traced Value its closure holds: the first call's numbers)
                return False
            continue
        stack.extend(node._inputs)
    return True


def _refusing(name, what, fix, depth_check=None):
    def refused(self, *args, **kwargs):
        trace = current()
        if trace is not None and (depth_check is None or _called_from_user(2)) and not _made_in_this_host_call(
                trace, self):
            raise _refusal(what, fix)
        return _ORIGINALS[name](self, *args, **kwargs)
    refused.__name__ = name
    return refused


def _data_property():
    original = _ORIGINALS["data"]

    def get(self):
        trace = current()
        if trace is not None and _called_from_user(2) and not _made_in_this_host_call(trace, self):
            raise _refusal("`.data` (or np.asarray(v), v.numpy())", _DATA_FIX)
        return original.fget(self)

    def set_(self, new):  # (nn.init.constant_, max_norm_; in an effect too; not a float64 model's .double())
        trace = current()
        if trace is not None and self._id < trace.start_id and _value_digest(self._data) != _value_digest(new):
            raise CompileError(f"compile: the call replaced the data of a Value it did not make, at "
                               f"{_user_frame(with_code=True)}; eager does it at every call, a replay would not. "
                               f"Do it outside the compiled function (or write into its array in an effect)")
        original.fset(self, new)

    return property(get, set_, None, original.__doc__)


def _watched_slot(name, on_read, doc, on_write=None):
    """A slot of Value as a property for as long as some thread traces: `on_read(trace, value)`
    runs at each read in a tracing thread, by any code (``repr(w)`` reads a Value's grad and label),
    and `on_write(trace, value)` at each write there."""
    slot = _ORIGINALS[name]

    def get(self):
        trace = current()
        if trace is not None:
            on_read(trace, self)
        return slot.__get__(self, Value)

    def set(self, new):
        if on_write is not None:
            trace = current()
            if trace is not None:
                on_write(trace, self)
        slot.__set__(self, new)

    return property(get, set, None, doc)


def _grad_read(trace, value):
    raise CompileError(
        f"compile: reading `.grad` of a Value inside a compiled function (print(w) and repr(w) read it "
        f"too), at {_user_frame(with_code=True)}: a replay would see what it was at the first call, and it "
        f"changes with every backward(). Read it outside the compiled function, after backward()"
    )


def _grad_written(trace, value):
    try:
        made_before = value._id < trace.start_id
    except AttributeError:  # (a Value made without _fill, its id not set yet)
        return
    if made_before:  # (another thread's backward writes in its own thread: not this trace's)
        raise CompileError(
            f"compile: setting `.grad` of a Value{f' {value.label!r}' if value.label else ''} inside a compiled "
            f"function (a zero_grad() or a backward() inside it), at {_user_frame(with_code=True)}: a replay would "
            f"not do it again. Call them outside: opt.zero_grad(); step(x, y).backward(); opt.step()"
        )


def _label_read(trace, value):
    trace.labels_read[id(value)] = value  # (guarded: code may branch on a name)


def _requires_grad_written(trace, value):
    if id(value) in trace.arguments:  # (the traced call's copy of the caller's Value: the caller's keeps its own)
        raise CompileError(f"compile: setting requires_grad of a Value given as an argument, at "
                           f"{_user_frame(with_code=True)}: eager's caller sees the change, a replay's would not. "
                           f"Set it before the call")


def _requires_grad_read(trace, value):
    if value._op is not None and _called_from_user(3):  # (the engine reads it at every operation)
        # an intermediate's is False under no_grad(): the code depends on the grad mode
        trace.grad_mode_reads.append("requires_grad of a result")


def is_python_like_number(arg):
    """A 0-d float64 array argument: eager's NumPy makes a ``np.float64`` of whatever it computes from it,
    a Python float the engine casts to the dtype of the Value it meets, as a traced Value would not be; so
    the compiled step takes it as it takes a Python number (part of the key: another number, another trace)."""
    return type(arg) is np.ndarray and arg.ndim == 0 and arg.dtype == np.float64


def _detach_read_again(self):
    """Value.detach while tracing: a constant whose data is a host array of the Value (its own array,
    as eager's detach shares it), so a replay reads this call's numbers, not the first call's."""
    trace = current()
    if trace is None or trace.inside_host:
        return _ORIGINALS["detach"](self)
    return Value(host_array(_same_data, self, name="detached"), requires_grad=False, label=self.label)


_ARGUMENT_HINT = ("Inside a compiled function a float array argument is a Value, so that every operation made "
                  "from it is recorded: use the engine's operations on it (ag.exp(x), x.clip(0, 1), x.reshape(-1)), "
                  "or compute the array outside the function and pass it in.")


_STEP_FIX = ("A replay would not do it again: call it outside the compiled function, on its result "
             "(opt.zero_grad(); step(x, y).backward(); opt.step()).")


def _gradient_step_refused(name):
    """Value.backward / Value.zero_grad while tracing: what sets .grad belongs outside the compiled function."""
    original = _ORIGINALS[name]

    def refuse(self, *args, **kwargs):
        if is_tracing():
            raise CompileError(f"compile: {name}() inside a compiled function, at {_user_frame(with_code=True)}. "
                               f"{_STEP_FIX}")
        return original(self, *args, **kwargs)
    refuse.__name__ = name
    return refuse


_OPERATOR_SYMBOLS = {"__add__": "+", "__sub__": "-", "__mul__": "*", "__truediv__": "/", "__floordiv__": "//",
                     "__mod__": "%", "__pow__": "**", "__matmul__": "@"}
_IN_PLACE = ("__iadd__", "__isub__", "__imul__", "__itruediv__", "__ifloordiv__", "__imod__", "__ipow__", "__imatmul__")
_ADDED = ("__getattr__",) + _IN_PLACE  # patches of what Value does not define itself
_COMPARISONS = ("__gt__", "__ge__", "__lt__", "__le__", "__eq__", "__ne__")
_ORIGINALS = {}
_PATCHES = {}
_patch_lock = threading.Lock()
_tracing_threads = [0]


def _save_originals_and_make_patches():
    """(Once, under the patch lock.) What the patches replace, and the patches."""
    for name in ("__bool__", "__float__", "__int__", "__index__", "item", "__gt__", "__ge__", "__lt__",
                 "__le__", "__eq__", "__ne__", "__getitem__", "numpy", "__array__", "tolist", "detach",
                 "__array_ufunc__", "__array_function__", "__getattr__", "backward", "zero_grad",
                 "__init__", "__truediv__", "__rtruediv__", "sort"):
        _ORIGINALS[name] = getattr(Value, name, None)
    for name in ("shape", "data", "grad", "label", "requires_grad"):  # (properties; slots' member descriptors)
        _ORIGINALS[name] = Value.__dict__[name]
    _PATCHES.update({
        "__bool__": _refusing("__bool__", "`if`, `while`, `and`/`or` or bool()", _IF_FIX),
        "__float__": _refusing("__float__", "float()", _RETURN_FIX),
        "__int__": _refusing("__int__", "int()", _RETURN_FIX),
        "__index__": _refusing("__index__", "using a Value as an index", "Index with NumPy data instead."),
        "item": _refusing("item", ".item()", _RETURN_FIX),
        "tolist": _refusing("tolist", ".tolist()", _RETURN_FIX),
        "numpy": _refusing("numpy", "`.numpy()`", _DATA_FIX, depth_check=True),
        "__array__": _refusing("__array__", "np.asarray(v) (or another NumPy call on a Value)", _DATA_FIX,
                               depth_check=True),
        "__gt__": _comparison(np.greater, "__gt__"),
        "__ge__": _comparison(np.greater_equal, "__ge__"),
        "__lt__": _comparison(np.less, "__lt__"),
        "__le__": _comparison(np.less_equal, "__le__"),
        # == and != too: `if loss == 0` would otherwise decide the branch once, at tracing
        "__eq__": _comparison(np.equal, "__eq__"),
        "__ne__": _comparison(np.not_equal, "__ne__"),
        "__getitem__": _indexing(),
        "data": _data_property(),
        "grad": _watched_slot("grad", _grad_read, "The gradient, after backward (refused while tracing).",
                              _grad_written),
        "label": _watched_slot("label", _label_read, "The Value's name, shown in drawings and programs."),
        "requires_grad": _watched_slot("requires_grad", _requires_grad_read, "Whether gradients flow to it.",
                                       _requires_grad_written),
        "detach": _detach_read_again,
        "__array_ufunc__": arguments._numpy_refused_as_compile_error("__array_ufunc__"),
        "__array_function__": arguments._numpy_refused_as_compile_error("__array_function__"),
        "__getattr__": arguments._array_method_refused,
        "backward": _gradient_step_refused("backward"),
        "zero_grad": _gradient_step_refused("zero_grad"),
        "__init__": arguments._made_by_user,
        "__truediv__": arguments._truediv_checked,
        "__rtruediv__": arguments._rtruediv_checked,
        "sort": arguments._sort_checked,
        "shape": property(_ORIGINALS["shape"].fget, arguments._shape_set_refused, None, _ORIGINALS["shape"].__doc__),
    })
    _ORIGINALS["item"] = Value.item
    for module, name, _ in _module_patches():
        _ORIGINALS[name] = getattr(module, name)
    for name in _IN_PLACE:
        _PATCHES[name] = arguments._in_place_refused(name.replace("__i", "__", 1))
    for name in ("_binary", "_operands"):  # (and where the engine's modules imported them)
        _ORIGINALS[name] = getattr(ops, name)
        _ORIGINALS[name + " modules"] = [m for key, m in list(sys.modules.items())
                                         if key.startswith(__package__.partition(".")[0] + ".")
                                         and getattr(m, name, None) is _ORIGINALS[name]]
    for name in arguments._NUMPY_METHODS:  # (over the patches above: x[0] of an argument is an index and NumPy's)
        method = _PATCHES.get(name) or Value.__dict__[name]
        _ORIGINALS.setdefault(name, Value.__dict__[name])
        _PATCHES[name] = (property(arguments._as_numpy_method(method.fget, name)) if isinstance(method, property)
                          else arguments._as_numpy_method(method, name))


def _module_patches():
    """(module, name, patch) of the engine's functions replaced while any thread traces."""
    return [(engine, "as_data", _as_data_following_hosts), (engine, "_constant_like", _constant_like_of_eager_numbers),
            (ops, "record", _record_every_operation), (ops, "derived_data", _derived_data_made_again),
            (ops, "data_check", effect),  # (a check of the data, done again at every call)
            (ops, "is_value", arguments.is_eager_value),  # (a float array argument: an array in eager)
            (engine, "backpropagate", inner_calls.backward_recorded),
            (engine, "_backpropagate_fast", inner_calls.first_order_refused),
            (engine, "_seed_gradient", inner_calls.seed_followed),
            (np.random, "default_rng", inner_calls.unseeded_refused)]


def _install_patches():
    """Patch Value's reads for as long as any thread traces; each patch checks
    whether *its* thread traces and otherwise behaves as the original."""
    with _patch_lock:  # (the originals too: two threads tracing at once must not save a patch as one)
        if not _ORIGINALS:
            _save_originals_and_make_patches()
        if _tracing_threads[0] == 0:
            for name, patch in _PATCHES.items():
                if _ORIGINALS.get(name) is not None or name in _COMPARISONS or name in _ADDED:
                    setattr(Value, name, patch)
            for module, name, patch in _module_patches():
                setattr(module, name, patch)
            for name, patch in (("_binary", arguments._binary_as_eager), ("_operands", arguments._operands_as_eager)):
                for module in _ORIGINALS[name + " modules"]:
                    setattr(module, name, patch)
            modes.grad_mode_observer = _grad_mode_read
            _ORIGINALS["print"], builtins.print = builtins.print, _print_seen
        _tracing_threads[0] += 1


def _remove_patches():
    with _patch_lock:
        _tracing_threads[0] -= 1
        if _tracing_threads[0] == 0:
            for name in _PATCHES:
                original = _ORIGINALS.get(name)
                if original is None:
                    if name in Value.__dict__:
                        delattr(Value, name)
                else:
                    setattr(Value, name, original)
            for module, name, _ in _module_patches():
                setattr(module, name, _ORIGINALS[name])
            for name in ("_binary", "_operands"):
                for module in _ORIGINALS[name + " modules"]:
                    setattr(module, name, _ORIGINALS[name])
            modes.grad_mode_observer = None
            if builtins.print is _print_seen:  # (unless other code has replaced it since)
                builtins.print = _ORIGINALS["print"]


def _print_seen(*args, **kwargs):
    """print() while a thread traces: the traced code's own prints happen at the traced call only."""
    trace = current()
    if trace is not None and not trace.inside_host and trace.printed is None:
        trace.printed = _user_place() or ("<unknown>", 0, "?")
    return _ORIGINALS["print"](*args, **kwargs)


def _grad_mode_read(what):
    """modes' observer while tracing: the traced code read the grad mode or switched recording on."""
    trace = current()
    if trace is not None:
        trace.grad_mode_reads.append(what)


def _record_every_operation(op, data, inputs, params, saved=None):
    """ops.record while tracing: an operation whose inputs need no gradient (a frozen
    parameter, a comparison's mask, anything under ``no_grad()``: a teacher's output)
    is a node all the same, so that the program computes it again at every call
    instead of keeping its first result. The user's line that made it is kept, for
    the writer's refusals to name."""
    out = _ORIGINALS["record"](op, data, inputs, params, saved)
    trace = current()
    if trace is not None:
        if out._op is None:
            engine._fill(out, data, False, None, out._scope, op, inputs, params, None, saved)
            out._guard = None  # (no backward reads it)
        trace.made_at[id(out)] = _user_place()
        if not trace.inside_host:
            _refuse_traced_closures(trace, op)
            arguments._refuse_value_parameters(op, params)
            arguments._eager_kind_of_result(trace, op, out, data, inputs)
    return out


def _refuse_traced_closures(trace, op):
    """An operation made inside the function whose forward or rules hold this call's labels, masks or
    Values in their closure (a hinge op built around y): a replay would call the first call's functions."""
    for fn in (op.forward, *(() if op.variadic else op.grads)):
        for held in (c.cell_contents for c in getattr(fn, "__closure__", None) or () if filled(c)):
            if isinstance(held, _FollowedArray) or (isinstance(held, Value) and held._id >= trace.start_id):
                raise _refusal(f"the operation {op.name!r}, whose functions hold a traced value in their closure "
                               f"(labels, a mask, a Value of this call)", "Pass it to the operation as an input "
                               "or a parameter (op.apply(x, y=y)), which every call passes afresh.")


def _derived_data_made_again(fn, *inputs, name=None):
    """ops.derived_data while tracing: indices and booleans computed from traced
    data (argmax, isnan, topk's indices) are a host array, made again at every
    call, that refuses to drive Python control flow (as a comparison's mask)."""
    trace = current()
    if trace is None:
        return _ORIGINALS["derived_data"](fn, *inputs, name=name)
    made = host_array(fn, *inputs, name=name)
    traced = made.view(_TracedMask)
    trace.alias(traced, made)
    return traced


def _as_data_following_hosts(x, what="Value"):
    """engine.as_data while tracing: a host array made into a Value's data by a
    conversion (a 0-d array to its scalar, integers to floats) stays that host
    array, converted, in the program (not a constant frozen at its first value);
    so do an integer argument and a 0-d array the function holds."""
    trace = current()
    if trace is not None and not trace.inside_host:
        if isinstance(x, TracedArgument):
            # an integer argument made into a Value's data (w * y): a host array, read again at every call
            # (its ufuncs, y + 1, and indexing, y[0], are host arrays already; another array made from it,
            # y.copy(), the writer refuses, naming the line)
            x = host_array(_copy_of, x, name="argument")
        elif isinstance(x, _FollowedArray) and trace.host_record_of(x) is None:  # ((v > 0).copy(), a divmod's)
            raise _refusal("an array NumPy made of a traced mask or index (a copy, np.divmod's results) as a "
                           "Value's data", _DATA_FIX)
        elif type(x) is np.ndarray and x.ndim == 0 and trace.held(x):
            # a 0-d array the function holds (a module's scale buffer) becomes a number: read again at every call
            x = host_array(_number_of, x, name="held")
    data = _ORIGINALS["as_data"](x, what)
    if trace is not None and data is not x and isinstance(x, np.ndarray):
        record = trace.host_record_of(x)  # (by its object, or by its memory: h0.view())
        if record is not None:
            trace.converted[id(data)] = (record, data)
    return data


def _constant_like_of_eager_numbers(x, other):
    """engine._constant_like while tracing: what eager has as a np.float64 number (a NumPy ufunc's 0-d
    result, h[0], of a host array or labels) takes the dtype of the Value it meets, as a Python float
    does; a traced call has it as a followed 0-d array, which would make a float32 graph float64."""
    if (other is not None and isinstance(x, _FollowedArray) and x.ndim == 0 and x.dtype == np.float64
            and getattr(x, "_eager_number", False)):
        x = host_array(_cast_number, x, other._data.dtype.type, name="number")
    trace = current()
    return _ORIGINALS["_constant_like"](x if trace is None else inner_calls.constant_of_a_mask(trace, x, other), other)


def _cast_number(array, kind):
    return np.asarray(kind(array[()]))


def _copy_of(array):
    """An integer argument as a Value's data: eager converts it to a new float array at the call, so a
    write into the caller's array before backward() does not reach the backward; nor does it the copy's."""
    return array.copy(order="K")


def _number_of(array):
    return array[()]


def _same_data(array):
    """A detached Value's data: the same memory, another object (the program names it apart)."""
    return array.view() if isinstance(array, np.ndarray) else array


class Trace:
    """What one traced call saw besides the graph: host arrays and effects in
    the order they happened, and which Values were made during the call."""

    def __init__(self):
        self.hosts = []  # _HostRecord, in the order they happened
        self.by_result = {}  # id(array the user got) -> its _HostRecord
        self.converted = {}  # id(a host array's conversion by engine.as_data) -> (its _HostRecord, the conversion)
        self.start_id = None  # Values numbered from here on were made during the call
        self.made_at = {}  # id(Value made by an operation) -> the user's line that made it (modes._user_place)
        self.inside_host = False  # True while a host function or an effect runs
        self.held = lambda array: False  # whether the function holds `array` (the runtime sets it from its walk)
        self.asked_for_the_generator = False  # (nn.get_generator() called: nn._random.of_each_call reads it)
        self.path_of = lambda obj: None  # the path it holds it at
        self.grad_mode_reads = []  # is_grad_enabled(), enable_grad(): what the code did that depends on no_grad()
        self.labels_read = {}  # id -> Value whose .label was read during the call (by any code: repr too)
        self.refusals = []  # CompileErrors raised during the call (the function may have caught them)
        self.array_arguments = set()  # ids of the Values the float array arguments are (the runtime sets them)
        self.arguments = set()  # ids of the Values made for the arguments, Value ones included
        self.made_by_user = {}  # id -> a Value the code made itself, Value(...), during the call
        self.numpy_made = {}  # id -> a Value made by an ndarray method or operator of an array argument (x.sum())
        self.numpy_calls = 0  # > 0 while such a method runs
        self.eager_kinds = {}  # id -> (_eager_kind's answer, the Value): see _eager_kind
        self.effect_states = []  # (owners, their states before, after) of each host call: see guards.EffectChanges
        self.host_from = None  # the first Value number of the host call running (its own Values, see _refusing)
        self.by_memory = {}  # (address, shape, strides, dtype) of each host array -> its _HostRecord
        self.aliased = []  # host arrays seen as another class (see alias)
        self.printed = None  # the user's line of the first print() the traced code made (a replay prints nothing)
        self.graph_backwards = []  # (first, last + 1) Value numbers made by each backward with create_graph=True
        self.graph_depth = 0  # > 0 while one runs
        self.draws = Draws([])  # the generators the code may draw from (the runtime sets them: see snapshots)

    def record_host(self, record):
        self.hosts.append(record)
        if record.result is not None:
            self.by_result[id(record.result)] = record
            if isinstance(record.result, np.ndarray):  # (the first keeps it: h.view()[:] has the same memory)
                self.by_memory.setdefault(_memory_of(record.result), record)

    def host_record_of(self, array):
        """The host array `array` is, or is NumPy's view of with the same memory and layout (np.asarray(mask,
        bool), which NumPy bases on the array that owns the memory, not on the host array), or None."""
        record = self.by_result.get(id(array))
        return record if record is not None else self.by_memory.get(_memory_of(array))

    def alias(self, view, of):
        """`view` is `of` seen as another class (a traced mask): the same host array."""
        self.by_result[id(view)] = self.by_result[id(of)]
        self.hosts[-1].result = view  # the object the program follows is the one the user holds
        self.aliased.append(of)  # (kept for the call: its id, a key above, must not be another array's)

    def __enter__(self):
        if current() is not None:
            raise CompileError("compile: a compiled function called another while tracing; compile the outer one only")
        self.start_id = engine._next_id()  # (a number of its own: later Values are numbered above it)
        _local.trace = self
        _install_patches()
        return self

    def __exit__(self, exc_type, *exc):
        _local.trace = None
        _remove_patches()
        if exc_type is None and self.refusals:  # raised, and caught by the function's own code
            raise CompileError(f"{self.refusals[0]} (the function caught this error and went on; a compiled step "
                               f"would replay the path it took instead)")
        return False


def _memory_of(array):
    return array.__array_interface__["data"][0], array.shape, array.strides, array.dtype.str


# the float array arguments' checks, and the engine's backward and NumPy's generators called by the traced
# code (these modules read this module's names: imported once they are defined)
from . import arguments, inner_calls  # noqa: E402
# (what nn imports, with the tracer's other names)
from .arguments import as_eager_value, is_eager_value  # noqa: E402,F401
