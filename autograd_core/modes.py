"""Modes and scopes: what is switched on while operations run.

Three modes decide what an operation does besides computing its result:
whether it records the graph (:class:`no_grad`, :class:`enable_grad`),
whether it checks for NaN and Inf and remembers where the user made it
(:class:`detect_anomaly`), and which name its node is tagged with for the
drawings (:class:`name_scope`). :func:`engine.record` reads all three on
every operation with one call, ``_current_modes()``.

The modes live in a context variable, so ``no_grad()`` in one thread (or
asyncio task) does not switch off recording in another; each thread starts
with the defaults. The modes object is never changed in place: entering or
leaving a mode sets a copy with that one mode changed.

Also here, for the engine's backward pass and the compiler:
:func:`quiet_float_errors`, NumPy's error mode while gradients are computed,
and ``_user_frame``, the user's line that anomaly messages and the
compiler's refusals name.
"""

from __future__ import annotations

import contextvars
import copy
import sys
from contextlib import ContextDecorator
from pathlib import Path

import numpy as np

from ._files import source_lines

__all__ = ["no_grad", "enable_grad", "is_grad_enabled", "detect_anomaly", "name_scope"]


class _ModeState:
    """The modes of one context, as plain attributes: `record` reads them on
    every operation, with one call to get this object."""

    __slots__ = ("grad_enabled", "anomaly", "scope")

    def __init__(self, grad_enabled=True, anomaly=False, scope=None):
        self.grad_enabled = grad_enabled
        self.anomaly = anomaly
        self.scope = scope  # the name of the innermost `name_scope`, e.g. an nn module's path


_mode_state = contextvars.ContextVar("autograd_core_modes", default=_ModeState())  # noqa: B039 (never changed in place: see _set_mode)
_current_modes = _mode_state.get


def _set_mode(name, value):
    """Make current a copy of the modes with `name` set to `value`; return
    the value it replaces, for the exit to set back (only that one mode: a
    generator may leave its `no_grad()` inside another mode's block)."""
    current = _current_modes()
    previous = getattr(current, name)
    modes = _ModeState(current.grad_enabled, current.anomaly, current.scope)
    setattr(modes, name, value)
    _mode_state.set(modes)
    return previous


class _ModeSwitch(ContextDecorator):
    """What no_grad, enable_grad, detect_anomaly and name_scope share: a
    context manager that is also a decorator. Used as a decorator, each call
    gets a fresh copy (`_recreate_cm`), so a decorated function that calls
    itself restores the right modes at every level."""

    _mode = None  # the name of the mode this switch sets

    def _value(self, before):
        """The value the mode takes inside the block (`before`: the modes found at entry)."""
        raise NotImplementedError

    def _recreate_cm(self):
        return copy.copy(self)

    def __enter__(self):
        before = _current_modes()
        inside = _ModeState(before.grad_enabled, before.anomaly, before.scope)
        setattr(inside, self._mode, self._value(before))
        self._before, self._inside = before, inside
        _mode_state.set(inside)
        return self

    def __exit__(self, *exc):
        if _current_modes() is self._inside:
            # the usual case, nothing changed modes inside the block: put the
            # modes object from before back (every nn module call passes here)
            _mode_state.set(self._before)
        else:
            _set_mode(self._mode, getattr(self._before, self._mode))
        return False


# While some thread traces a compiled function, the tracer's function told when code reads the grad
# mode or switches recording on: a program of such code is not replayed under no_grad(), where the
# code itself might do something else (None otherwise: one test per call)
grad_mode_observer = None


def is_grad_enabled() -> bool:
    """True when operations record the graph in this thread.

    >>> is_grad_enabled()
    True
    >>> with no_grad():
    ...     print(is_grad_enabled())
    False
    """
    if grad_mode_observer is not None:
        grad_mode_observer("is_grad_enabled()")
    return _current_modes().grad_enabled


class _GradMode(_ModeSwitch):
    _mode = "grad_enabled"
    _enabled = True

    def __new__(cls, function=None):
        # `@no_grad` without parentheses (PyTorch accepts it): decorate at once
        switch = super().__new__(cls)
        if function is None:
            return switch
        if not callable(function):
            raise TypeError(f"{cls.__name__}() takes no arguments (or, as a decorator, a function), got {type(function).__name__}")
        return switch(function)

    def _value(self, before):
        if self._enabled and grad_mode_observer is not None:
            grad_mode_observer("enable_grad()")
        return self._enabled


class no_grad(_GradMode):
    """Context manager (or decorator) inside which nothing is recorded.

    Results computed inside are constants: they have ``requires_grad=False``
    and no graph behind them. Use it for evaluation and for parameter updates.

    >>> from autograd_core import Value
    >>> w = Value(2.0)
    >>> with no_grad():
    ...     y = w * 3
    >>> y.requires_grad
    False

    As a decorator, with or without parentheses:

    >>> @no_grad
    ... def evaluate(v):
    ...     return v * 2
    >>> evaluate(w).requires_grad
    False
    """

    _enabled = False


class enable_grad(_GradMode):
    """Switch recording back on inside a ``no_grad()`` block.

    >>> from autograd_core import Value
    >>> with no_grad():
    ...     with enable_grad():
    ...         y = Value(2.0) * 3
    >>> y.requires_grad
    True
    """

    _enabled = True


class detect_anomaly(_ModeSwitch):
    """Context manager that stops at the first NaN or Inf.

    Inside it, every operation remembers where user code created it; the first
    operation whose forward output, or whose backward gradient for one of its
    inputs, holds NaN or Inf raises :class:`AnomalyError` naming the operation
    and that place. It slows every operation down, so use it for debugging.

    >>> from autograd_core import Value
    >>> x = Value(-1.0)
    >>> with detect_anomaly():
    ...     x.log()                                  # doctest: +ELLIPSIS, +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    AnomalyError: log produced NaN in its forward output ...
    """

    _mode = "anomaly"

    def _value(self, before):
        return True


class _TitledScope(str):
    """A scope name with a display title for drawings (a string, or a function
    that returns one when the graph is drawn), and the titled scope it was
    opened in (``outer``), so the titles of enclosing clusters are found too.
    Nodes keep a reference to it as their ``_scope``: no cost per operation."""

    def __reduce__(self):  # copy / pickle a Value made in a titled scope
        return (_titled_scope, (str(self), self.title, self.outer))


def _titled_scope(name, title, outer):
    scope = _TitledScope(name)
    scope.title = title
    scope.outer = outer
    return scope


class name_scope(_ModeSwitch):
    """Tag every node created inside with a name (``nn`` uses the module path).

    Graph drawings group the nodes of one scope into a labelled cluster; an
    optional `title` is shown after the name (``nn`` passes the layer:
    ``0: Linear(4, 16)``). It may be a function returning the title, called
    only when a graph is drawn.

    >>> from autograd_core import Value
    >>> with name_scope("layer1", title="hidden layer"):
    ...     y = Value(1.0) * 2
    >>> y.scope
    'layer1'
    """

    def __init__(self, name: str, title=None):
        if title is not None and not isinstance(title, str) and not callable(title):
            raise TypeError(f"name_scope: title must be a string, a function returning one, or None; got {type(title).__name__}")
        self.name = name
        self.title = title

    _mode = "scope"

    def _value(self, before):
        # a title, or an enclosing titled scope, makes the scope a _TitledScope
        outer = before.scope
        if type(outer) is not _TitledScope:
            outer = None
        if self.title is None and outer is None:
            return self.name
        return _titled_scope(self.name, self.title, outer)


# --------------------------------------------------------------------------
# NumPy's error mode for gradients
# --------------------------------------------------------------------------
def quiet_float_errors():
    """NumPy quiet about division by zero, invalid values and overflow, for a
    ``with`` block: some gradients are inf or NaN by design (sqrt's at 0), and
    PyTorch computes them without a word; :class:`detect_anomaly` reports them
    instead. The backward loops, the compiled backward and the quiet forwards
    of ``ops_math`` run inside it.

    >>> with quiet_float_errors():
    ...     print(np.float64(1.0) / 0)
    inf
    """
    return np.errstate(divide="ignore", invalid="ignore", over="ignore")


# --------------------------------------------------------------------------
# The user's line, for messages
# --------------------------------------------------------------------------
_PACKAGE_DIRS = tuple(str(Path(__file__).resolve().parent.parent / name) for name in ("autograd_core", "nn", "optim"))


def _user_place():
    """(file, line, function) of the innermost frame outside this project, or
    None: a walk up the frames (cheap enough to keep for every operation the
    compiler traces); the line's text is looked up only when it is shown."""
    frame = sys._getframe(1)
    while frame is not None and (frame.f_code.co_filename.startswith(_PACKAGE_DIRS)
                                 or "contextlib" in frame.f_code.co_filename):
        frame = frame.f_back
    return None if frame is None else (frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name)


def _place_text(place, with_code=False):
    """'file:line in function' of a `_user_place()` answer (and, `with_code`, ': the line's code')."""
    if place is None:
        return "an unknown place"
    filename, lineno, function = place
    lines = source_lines(filename) if with_code else ()
    code = lines[lineno - 1].strip() if 0 < lineno <= len(lines) else ""
    return f"{filename}:{lineno} in {function}" + (f": {code}" if code else "")


def _user_frame(with_code=False):
    """'file:line in function' of the innermost frame outside this project
    (and, `with_code`, ': the line's code'): where an anomaly's operation was
    made (``record`` keeps it) and where the compiler met what it refuses."""
    return _place_text(_user_place(), with_code)
