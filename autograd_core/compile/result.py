"""The result of a compiled call: its data, and a ``backward()`` that runs the
compiled backward program into the leaves' ``.grad`` as eager's does; with it,
what a result holds and checks (the Values its backward reads again, watched
for in-place writes) and the memory a large trace leaves behind, given back.
"""

from __future__ import annotations

import ctypes

import numpy as np

from .. import engine
from ..engine import Value
from ..errors import GraphFreedError, SavedDataModifiedError
from ..modes import _current_modes, quiet_float_errors
from ..saved import _changed_since_snapshot, _settle_snapshot
from .tracer import CompileError

__all__ = ["CompiledResult"]

_REPLACED = object()  # (a result whose .data was assigned)


class _GraphEnded(CompileError, AttributeError):
    """A Value's method that builds an operation, asked of a compiled result: a CompileError that
    ``hasattr`` and ``getattr(loss, name, default)`` take for a missing attribute."""


# a Value's methods that read its data without building an operation (a compiled result answers them)
_READ_ONLY_METHODS = frozenset({"all", "any", "allclose", "isclose", "isfinite", "isinf", "isnan", "argmax", "argmin",
                                "argsort"})


class CompiledResult:
    """The result of a compiled call: its data, and a ``backward()`` that runs the
    compiled backward program (filling the leaves' ``.grad`` as eager does).

    It ends the compiled graph: it is not a Value, so no operation can be
    built on it (that operation would be outside the program, and its
    gradient lost); tools that walk a graph (``BackpropStepper``,
    ``draw_graph``) need an eager result: ``step.eager(*args)``.

    >>> import numpy as np, autograd_core as ag
    >>> w = ag.Value(np.array([3.0]))
    >>> result = ag.compile(lambda x: (x * w).sum())(np.array([2.0]))
    >>> result.backward(); float(result.data), w.grad.tolist()
    (6.0, [2.0])
    """

    __slots__ = ("_data", "grad", "_program", "_saved", "_generation", "_targets", "_watched", "_traced_bytes",
                 "requires_grad", "_handed")
    label = None
    # what grad(), draw_graph and BackpropStepper add to their "must be a Value" error
    not_a_value_hint = ("; this is the result of a compiled function, which keeps no graph to walk: "
                        "call step.eager(*args) (or the uncompiled function) for an eager Value")

    def __init__(self, program, data, saved, generation, targets, watched):
        self._data = data
        self.grad = None
        self._program = program  # the thread's instance of the program that made it
        self._saved = saved
        self._generation = generation
        self._targets = targets  # the Value each returned gradient belongs to, for this call
        self._watched = watched  # (Value, version, requires_grad) eager's backward checks: see _check_unchanged
        self._handed = None  # a copy of its data once handed out through .data (a write into it is a change)
        self._traced_bytes = 0  # the traced call's result: how much its trace made (see _give_back_freed_memory)
        self.requires_grad = program.program.loss_requires_grad  # (a loss of constants only: no graph, as in eager)

    @property
    def data(self):
        if self._handed is None and type(self._data) is np.ndarray:  # (eager's backward refuses a loss written into)
            self._handed = self._data.copy()
        return self._data

    @data.setter
    def data(self, value):  # (as eager's: allowed, and its backward() refuses the changed loss)
        self._data, self._handed = engine.as_data(value, "data"), _REPLACED

    @property
    def shape(self):
        return np.shape(self._data)

    @property
    def dtype(self):
        return self._data.dtype

    @property
    def size(self):
        return self._data.size

    def item(self):
        if self._data.size != 1:
            raise ValueError(f"item() needs a result with one element, this one has shape {self.shape}")
        return self._data.item()

    def __float__(self):  # (as eager's: a warning while its gradient could still flow)
        if self.requires_grad and _current_modes().grad_enabled:
            engine._warn_float_drops_the_graph()
        return float(self.item())

    def __bool__(self):
        return bool(self._data)

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a scalar result (shape ())")
        return len(self._data)

    @property
    def is_leaf(self):
        return not self.requires_grad  # (a loss of constants only is a leaf in eager too)

    @property
    def ndim(self):
        return np.ndim(self._data)

    def numpy(self):
        return np.asarray(self._data)

    def __array__(self, dtype=None, copy=None):  # np.array([loss]), np.mean(losses): its number, as eager's
        return np.array(self._data, dtype=dtype, copy=True) if copy else np.asarray(self._data, dtype=dtype)

    def __reduce_ex__(self, protocol):
        """Copying and pickling give a new leaf holding its data, as an eager result's copy does
        (never a second handle on this call's backward)."""
        return (engine._unpickled_leaf, (self._data, self.requires_grad, None, None))

    def detach(self):
        """Its data as a Value without a graph (``loss.detach().item()``), as eager's ``detach()``."""
        return Value(self._data, requires_grad=False)

    def _compared(np_fn):  # noqa: N805 (a helper of the class body)
        # comparisons give plain booleans, as eager's do (`if loss < best`, `min(best, loss)`)
        return lambda self, other: np_fn(self._data, other._data if isinstance(other, (CompiledResult, Value)) else other)

    __lt__, __le__, __gt__, __ge__ = (_compared(np.less), _compared(np.less_equal), _compared(np.greater),
                                      _compared(np.greater_equal))
    __eq__, __ne__ = _compared(np.equal), _compared(np.not_equal)
    __hash__ = object.__hash__  # (identity, as a Value's)
    del _compared

    def __repr__(self):
        return f"CompiledResult(data={self._data!r})"

    def _ends_the_graph(self, *args, error=CompileError):
        raise error(
            "compile: a compiled result ends the compiled graph: no operation can be built on it. Put the "
            "operation inside the compiled function (return the Value you need), or run the function eagerly"
        )

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = __rtruediv__ = _ends_the_graph
    __pow__ = __rpow__ = __matmul__ = __rmatmul__ = __neg__ = __pos__ = __abs__ = __getitem__ = _ends_the_graph
    __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = _ends_the_graph  # (iterating: through __getitem__)
    __array_ufunc__ = None  # NumPy defers to the operators above

    def __getattr__(self, name):
        """A Value's methods that build no graph answer as on its detached data (``loss.isfinite()``); the
        others would build an operation on the result, which ends the compiled graph."""
        if name in _READ_ONLY_METHODS:  # (another result given to it: its data too, loss.allclose(previous))
            method = getattr(self.detach(), name)
            return lambda *args, **kw: method(*[a.detach() if isinstance(a, CompiledResult) else a for a in args], **kw)
        if hasattr(Value, name) and not name.startswith("__"):
            self._ends_the_graph(error=_GraphEnded)  # (hasattr(loss, "exp") is False, as for a number)
        raise AttributeError(f"'CompiledResult' object has no attribute {name!r}")

    def zero_grad(self, set_to_none=True):
        """Forget the gradient, as a Value's ``zero_grad``.

        >>> import numpy as np, autograd_core as ag
        >>> w = ag.Value(np.array([3.0]))
        >>> loss = ag.compile(lambda x: (x * w).sum())(np.array([2.0]))
        >>> loss.backward(); loss.zero_grad(); loss.grad is None
        True
        """
        self.grad = None if set_to_none else np.zeros_like(self._data)[()]

    def backward(self, grad=None, retain_graph=False, create_graph=False):
        """Run the compiled backward pass; leaves accumulate ``.grad`` as in eager mode."""
        if create_graph:
            raise CompileError(
                "compile: backward(create_graph=True) needs eager mode (the compiled program computes arrays, "
                "not a graph); call the function without compile, or use ag.grad on an eager result"
            )
        program = self._program
        if not self.requires_grad:
            raise RuntimeError("backward(): this Value does not require grad, so no graph leads to it (it was made "
                               "from constants or inside no_grad())")
        if self._saved is None:
            if self._generation == -1:
                raise CompileError(
                    "compile: this compiled step's backward pass writes its temporaries over the forward results "
                    "it is done with (its first call's too), so it runs once per call even with retain_graph=True "
                    "(and not again after one stopped halfway); "
                    "call the step again for another backward(), or run the function eagerly (step.eager(...))"
                )
            raise GraphFreedError(
                "backward(): this compiled result's backward already ran and its saved arrays were freed; "
                "pass retain_graph=True to the first backward() to run it twice"
            )
        if program.buffered and self._generation is not None and self._generation != program.generation:
            raise CompileError(
                "compile: a later call of the compiled step (in this thread) reused the buffers this result's "
                "backward() reads; call backward() on a result before calling the step again (or run eagerly)"
            )
        if _current_modes().anomaly:
            raise CompileError(
                "compile: detect_anomaly() needs eager mode to say which operation produced a NaN or inf; "
                "call the function inside detect_anomaly() without compile (step.eager(...))"
            )
        _check_unchanged(self._watched)
        if self._handed is not None and (self._handed is _REPLACED or self._data.tobytes() != self._handed.tobytes()):
            raise SavedDataModifiedError(
                "backward(): this compiled result's data was changed (assigned or written into through .data) "
                "after the call made it, so its gradient would be wrong (eager's backward refuses it too). Change "
                "a copy (loss.data.copy()), or call backward() first")
        seed = engine._seed_gradient(self, grad, "backward()")
        saved = self._saved
        # given up before the program runs: one stopped halfway (Ctrl-C, a rule's error) has written its
        # temporaries already, and eager's frees its saved arrays as it goes
        if not retain_graph:
            self._saved = None
        elif program.buffered and program.reuses_forward:
            self._saved = None  # its temporaries are written over forward results: a second one cannot run
            self._generation = -1
        try:
            with quiet_float_errors():
                gradients = program.run(program.backward, saved, seed)
        finally:
            if not retain_graph:
                _stop_watching(self._watched)
                _give_back_freed_memory(self._traced_bytes)  # (the traced call's arrays went with its saved ones)
                self._traced_bytes = 0
        # (a parameter frozen since the call, D.requires_grad_(False) between a GAN's forward and backward:
        # eager's loop skips it at backward time)
        engine._store_gradients([(t, g) for t, g in zip(self._targets, gradients) if t.requires_grad], [seed])
        self.grad = seed  # (eager's result keeps its gradient too, for display)


def _check_unchanged(watched):
    """Eager's saved-data check for the Values its backward would check: written into since the call (or, a
    frozen one, made to require grad since: eager's loop would give it a gradient, which the program lacks)."""
    for value, version, requires_grad in watched:
        guard = value._guard
        modified = guard is not None and guard is not True and _changed_since_snapshot(value)
        if value.requires_grad and not requires_grad:
            name = f"'{value.label}' " if value.label else ""
            raise CompileError(
                f"compile: the Value {name}(shape {value.shape}) was made to require grad after the compiled call "
                f"that read it and before its backward(); eager's backward would give it a gradient, which the "
                f"program, traced with it frozen, does not compute. Unfreeze it before the call or after backward()")
        if modified or value._version != version:
            name = f"'{value.label}' " if value.label else ""
            raise SavedDataModifiedError(
                f"backward(): the data of the Value {name}(shape {value.shape}, {value.dtype}) was changed (assigned "
                f"or written into) after the compiled forward pass read it, so the gradient would be wrong. Change "
                f".data only after backward() (as optimizers do), or call the step again"
            )


def _stop_watching(watched):
    for value, _, _ in watched:
        value._guard = None



def _malloc_trim():
    """glibc's ``malloc_trim``, or None (another C library, another system)."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


_TRIM = _malloc_trim()
TRIM_AFTER_BYTES = 1 << 20  # a smaller trace leaves too little behind to be worth the call (30 us or more)


def _give_back_freed_memory(traced_bytes):
    """A memory device: tracing holds several copies of every array at once (the traced call's, the
    line checks', the planned program's check); glibc keeps the freed memory in its heap, where the
    steps that follow never need it, so the process's resident size stays at the trace's. Giving it
    back to the system brings a steady step's peak to what its buffers need: (f), the 784-256-256-10
    MLP at batch 1024, from 25.6 to 14.8 MiB in float32 (hand-written NumPy: 20.7); (h), the digits
    CNN at batch 64 (a 1.6 MiB trace), from 3.5 to 6.2 MiB by where the heap happened to end, to 3.1."""
    if _TRIM is not None and traced_bytes >= TRIM_AFTER_BYTES:
        _TRIM(0)


def _own(loss):
    """The loss's data, copied when it is a view (``z[1:2, 2:3]`` of a buffer the next call writes over)."""
    return loss.copy() if isinstance(loss, np.ndarray) and loss.base is not None else loss


def _returned(arrays):
    """The other values a function returned, as Values of copies: the program's arrays are its
    buffers, which the backward reads and the next call writes over, as eager's are not."""
    returned = []
    for a in arrays:
        value = Value(0.0, requires_grad=False)
        value.data = np.array(a, copy=True) if isinstance(a, np.ndarray) else a  # (a 0-d array stays one, as eager's)
        returned.append(value)
    return tuple(returned)


def _watched(program, args):
    """(Value, its version, its requires_grad) for each parameter and Value argument that eager's backward
    checks (an input of a node it reaches from the loss): checked before the backward runs, as eager's."""
    watched = []
    values = list(program.watched_leaves)
    values += [args[k] for k in program.watched_arg_slots if isinstance(args[k], Value)]
    for value in values:
        guard = value._guard
        if guard is None:
            value._guard = True  # handing its array out through .data now keeps a copy to compare with
        elif guard is not True:  # its array was handed out since an earlier call: as eager's record does,
            _settle_snapshot(value)  # a write before this call counts as a new version, not a change after it
        watched.append((value, value._version, value.requires_grad))
    return watched
