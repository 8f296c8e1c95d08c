"""The checks of the course's exercise notebooks (``notebooks/exercises/``).

Each exercise in a notebook is a cell the student completes, then a check
cell: a ``with exercise(...)`` block that runs the student's code, compares
it with ``check_rule``, ``gradcheck`` or a worked number, and prints one
line: passed, or not yet with a hint. It never raises: an unfinished cell
(``NotImplementedError``), a typo or a wrong shape becomes a failed exercise
with its hint, and the cells after it still run.

    >>> with exercise("0.1", "the slope of x^2 at 3") as ex:
    ...     ex.close("the slope", 2 * 3.0, 6.0)
    ✓ Exercise 0.1 passes: the slope of x^2 at 3.
    >>> with exercise("0.2", "not written yet") as ex:
    ...     raise NotImplementedError("compute the slope")
    ✗ Exercise 0.2 (not written yet) does not pass yet.
      Not done yet: compute the slope.

In a notebook each result is also displayed as JSON under :data:`MIME`, which
``autograd-core grade`` reads to make its table.
"""

from __future__ import annotations

import os
import textwrap
import traceback

import numpy as np

from .engine import Value
from .learner import _sentence, check_rule, explain_difference

__all__ = ["exercise", "Exercise", "MIME"]

MIME = "application/vnd.autograd-core.exercise+json"  # the result, for `autograd-core grade`
_PACKAGE = os.path.dirname(os.path.abspath(__file__))


class _NotYet(Exception):
    """A check failed: its hint ends the exercise."""


class Exercise:
    """One exercise's checks; made by :func:`exercise`. The first check that
    fails ends the block with its hint.

    >>> with exercise("0.3", "d(x^2)/dx at 3") as ex:
    ...     ex.close("d(x^2)/dx", 3.0 ** 2, 6.0, hint="the exponent comes down: 2x")
    ✗ Exercise 0.3 (d(x^2)/dx at 3) does not pass yet.
      d(x^2)/dx is 9 but should be 6. Hint: the exponent comes down: 2x.
    >>> ex.passed, ex.hint
    (False, 'd(x^2)/dx is 9 but should be 6. Hint: the exponent comes down: 2x.')
    """

    def __init__(self, id, title):
        self.id, self.title = str(id), str(title)
        self.passed = None  # True or False once the block has run
        self.hint = None

    def check_rule(self, rule, *inputs, params=None, hint=None):
        """The rule (an Op or a function of Values) must pass :func:`check_rule`;
        else the report's paragraph (and `hint`) is the hint. Returns the report."""
        report = check_rule(rule, *inputs, params=params)
        if isinstance(report.error, NotImplementedError):  # the rule is still a blank
            self.fail(_hint_for_error(report.error, None))
        if not report.ok:
            self.fail(" ".join(str(report).split()) + (f" For this exercise: {hint}" if hint else ""))
        return report

    def close(self, what, got, expected, hint=None, atol=1e-6, rtol=1e-6, sizes=None):
        """`got` must equal `expected` (numbers or arrays) within the
        tolerances; else a hint says where and, when it can tell, what the
        mistake looks like (sign, factor, transpose, missing sum). `sizes`
        names lengths that may hide in a factor: ``{"m, the batch size": 4}``."""
        if got is None:
            self.fail(f"{what} is None: does the function return its result?")
        try:
            got = np.asarray(got.data if isinstance(got, Value) else got, dtype=np.float64)
        except (TypeError, ValueError):
            self.fail(f"{what} should be numbers, got {type(got).__name__}")
        expected = np.asarray(expected, dtype=np.float64)
        extra = f" Hint: {hint.rstrip('.')}." if hint else ""
        if got.shape != expected.shape:
            if got.size == expected.size == 1:
                got = got.reshape(expected.shape)
            else:
                found = explain_difference(got, expected, name=what, sizes=sizes, atol=atol, rtol=rtol)
                self.fail(f"{what} has shape {got.shape} but should have shape {expected.shape}: "
                          f"{_sentence(found)}{extra}")
        close = np.isclose(got, expected, atol=atol, rtol=rtol)
        if close.all():
            return
        if got.size == 1:
            self.fail(f"{what} is {_shown(got)} but should be {_shown(expected)}.{extra}")
        index = tuple(int(i) for i in np.argwhere(~close)[0])
        found = explain_difference(got, expected, name=what, sizes=sizes, atol=atol, rtol=rtol)
        self.fail(f"{what}, element {list(index)}, is {_shown(got[index])} but should be {_shown(expected[index])} "
                  f"({int((~close).sum())} of {close.size} elements differ); {_sentence(found)}{extra}")

    def expect(self, condition, hint):
        """`condition` must be true; else `hint` is the hint."""
        if not condition:
            self.fail(hint)

    def fail(self, hint):
        """End the exercise here, not passed, with `hint`."""
        raise _NotYet(hint)

    # the with block
    def __enter__(self):
        return self

    def __exit__(self, kind, error, trace):
        if kind is None:
            self.passed = True
        elif issubclass(kind, _NotYet):
            self.passed, self.hint = False, str(error)
        elif issubclass(kind, Exception):  # the student's code raised: a hint, not a traceback
            self.passed, self.hint = False, _hint_for_error(error, trace)
        else:
            return False  # KeyboardInterrupt (a grader's timeout) and the like go on
        _show(self)
        return True

    def result(self):
        """The result as the grader reads it."""
        return {"id": self.id, "title": self.title, "passed": bool(self.passed), "hint": self.hint or ""}


def exercise(id, title):
    """The checks of exercise `id` (``"2.1"``), as a ``with`` block: see
    :class:`Exercise` and the module docstring.

    >>> with exercise("0.4", "one plus one") as ex:
    ...     ex.expect(1 + 1 == 2, "count again")
    ✓ Exercise 0.4 passes: one plus one.
    """
    return Exercise(id, title)


def _hint_for_error(error, trace):
    if isinstance(error, NotImplementedError):
        message = str(error).strip()
        return f"Not done yet{': ' + message if message else ''}" + ("" if message.endswith((".", "?", "!")) else ".")
    if isinstance(error, NameError):
        return f"{error}: run the cells above this one first (or define it in the exercise's cell)."
    place = _student_line(trace)
    return f"Your code raised {type(error).__name__}: {error}{place}."


def _student_line(trace):
    """' (line 3 of your cell: return g @ b)' for the innermost frame of the
    student's code (not the package's, not the check cell's)."""
    frames = [f for f in traceback.extract_tb(trace) if not os.path.abspath(f.filename).startswith(_PACKAGE)]
    if len(frames) < 2:  # only the check cell itself
        return ""
    frame = frames[-1]
    code = f": {frame.line.strip()}" if frame.line else ""
    return f" (in {frame.name}, line {frame.lineno}{code})"


def _shown(x):
    x = np.asarray(x, dtype=np.float64)
    return f"{float(x.reshape(-1)[0]):.6g}" if x.size == 1 else np.array2string(x, precision=4, separator=", ")


def _show(ex):
    """Print the result; in a notebook also display it as JSON for the grader."""
    if ex.passed:
        text = f"✓ Exercise {ex.id} passes: {ex.title}."
    else:
        hint = textwrap.fill(ex.hint, width=96, initial_indent="  ", subsequent_indent="  ")
        text = f"✗ Exercise {ex.id} ({ex.title}) does not pass yet.\n{hint}"
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        get_ipython = None
    if get_ipython is None or get_ipython() is None:
        print(text)
        return
    display({"text/plain": text, MIME: ex.result()}, raw=True)
