"""Learner mode: check a gradient rule you wrote, and find its mistake.

A course derives gradients by hand. :func:`check_rule` checks one the way a
teacher would: against central differences, element by element, in float64;
when they disagree it says which input, which element, both numbers, and what
the mistake looks like (a constant factor, the sign, a transpose, a missing
sum over a broadcast axis, the rule of another input).

    >>> import numpy as np
    >>> from autograd_core import Op, check_rule
    >>> cube = Op("my_cube", lambda x: x ** 3, inputs="x", elementwise=True,
    ...           d_x=lambda x, out: 2 * x * x, formula="d(x^3)/dx = 3 x^2", register=False)
    >>> report = check_rule(cube, np.array([1.0, 2.0, -3.0]))
    >>> report.ok, report.input, report.index, report.expected, report.got
    (False, 'x', (0,), 3.0, 2.0)
    >>> print(report.hint)
    every element is 2/3 of the right value: a constant factor is off (2 instead of 3?)

It checks two kinds of rule, as the engine runs them (see ``ops.py``):

* an **elementwise** rule returns the local gradient d out/d input; it is
  compared with the local gradient measured by central differences, so
  ``expected`` and ``got`` are local gradients;
* a **structural** rule takes the upstream gradient ``g`` and returns
  dL/dinput (a vector-Jacobian product); ``g`` is random (seeded), and
  ``expected`` and ``got`` are entries of dL/dinput for L = sum(g * out).

It also takes a plain Python function of Values: then it is ``gradcheck``
with the first wrong element located and explained.
"""

from __future__ import annotations

import inspect
import math
import re
import textwrap
from fractions import Fraction

import numpy as np

from .engine import Value, grad, no_grad, sum_to_shape
from .ops import Op

__all__ = ["check_rule", "RuleReport", "explain_difference"]

MAX_ELEMENTS = 10_000  # per input: every element is nudged twice, so keep examples small
_DIGITS = 7  # central differences with eps=1e-6 are good to about 7 significant digits


class RuleReport:
    """What :func:`check_rule` found. ``print(report)`` explains it in a paragraph.

    Fields: ``ok``; ``input`` (the first input whose rule is wrong, by name),
    ``index`` (its first wrong element, a tuple), ``expected`` (central
    differences, to 7 significant digits) and ``got`` (the rule), ``hint``
    (what the mistake looks like); all None when ``ok``. ``problem`` says
    what went wrong: None, ``"values"``, ``"shape"``, ``"error"`` (the rule
    raised; ``error`` is the exception) or ``"forward"`` (the forward
    raised). ``draw()`` shows the graph with the wrong input's edge in red.

    >>> report = check_rule(lambda x: (x * x).sum(), np.array([1.0, 2.0]))
    >>> report.ok, report.problem, report.input
    (True, None, None)
    >>> print(report)
    check_rule(<lambda>): the gradient for x agrees with central differences at all 2 elements.
    """

    not_a_value_hint = "; a check_rule report draws itself: report.draw()"  # for draw_graph(report)

    def __init__(self, name, ok, *, input=None, index=None, expected=None, got=None, hint=None,
                 problem=None, error=None, where="", checked=(), elements=0, formula=None, noun="rule",
                 redraw=None):
        self.name = name
        self.ok = ok
        self.input = input
        self.index = index
        self.expected = expected
        self.got = got
        self.hint = hint
        self.problem = problem
        self.error = error  # the exception the rule (or forward) raised, when problem is "error" or "forward"
        self.where = where  # the sentence that says where and by how much
        self.checked = tuple(checked)  # the names of the inputs checked (all of them when ok)
        self.elements = elements  # how many elements were compared
        self.formula = formula  # the op's formula, as declared
        self.noun = noun  # "rule" (an Op's) or "gradient" (a function's, from the engine)
        self._redraw = redraw  # () -> (drawing, layout, {input name: its leaf Value})

    def __bool__(self):
        return self.ok

    def __repr__(self):
        if self.ok:
            return f"<RuleReport {self.name}: ok>"
        at = f" at {self.index}" if self.index is not None else ""
        return f"<RuleReport {self.name}: {self.problem} wrong for {self.input}{at}>"

    def __str__(self):
        if self.ok:
            many = len(self.checked) > 1
            return (f"check_rule({self.name}): the {self.noun}{'s' if many else ''} for "
                    f"{', '.join(self.checked)} {'agree' if many else 'agrees'} with central differences "
                    f"at all {self.elements:,} elements.")
        parts = [self.where]
        if self.hint:
            parts.append(_sentence(f"Hint: {self.hint}"))
        if self.formula:
            parts.append(_sentence(f"The op's formula: {self.formula}"))
        return textwrap.fill(" ".join(parts), width=88)

    def _repr_pretty_(self, printer, cycle):  # IPython shows the paragraph, not the one-line repr
        printer.text(str(self))

    def draw(self):
        """The small graph of the op (or the function), the wrong input's
        edge in red with both numbers on it; a ``graphviz.Digraph`` that shows
        inline in Jupyter.

        >>> report = check_rule(lambda x: x * x, np.array([3.0]))
        >>> "digraph" in report.draw().source
        True
        """
        from .viz import dot_text, new_drawing

        title = " ".join(str(self).split()).split(". ")[0].rstrip(".") + "."  # the first sentence
        try:
            graph, layout, leaves = self._redraw()
        except Exception:  # the forward itself fails: nothing to draw but the title
            graph, layout, leaves = new_drawing("LR"), None, {}
        if not self.ok and self.input in leaves:
            for tail, head, edge_id in _edges_from(layout, leaves[self.input]):
                _mark_edge(graph, tail, head, edge_id, self._edge_text())
        graph.attr(label=dot_text(title), fontsize="11", fontcolor="#2e7d32" if self.ok else "#b22222")
        return graph

    def _edge_text(self):
        if self.problem == "values" and self.index is not None:
            return f"wrong: {_shown(self.got)} where {_shown(self.expected)} is due, at {list(self.index)}"
        return {"shape": "wrong shape", "error": "the rule raised"}.get(self.problem, "wrong")


def check_rule(rule, *inputs, params=None, seed=0, eps=1e-6, atol=1e-5, rtol=1e-3):
    """Check a gradient rule against central differences and explain the first mistake.

    `rule` is an :class:`~autograd_core.ops.Op` (its rule for every input
    is checked) or a Python function of Values (its gradients from the
    engine are checked, as ``gradcheck`` does). `inputs` are arrays, numbers
    or Values, turned into float64; `params` the op's parameters (an
    ``axis``...). Upstream gradients are random, from `seed`. Returns a
    :class:`RuleReport`; a rule that raises or returns the wrong shape gets
    a report too, never an exception.

    >>> import numpy as np
    >>> mul = Op("my_mul", lambda a, b: a * b, inputs="a, b", elementwise=True,
    ...          d_a=lambda a, b, out: a, d_b=lambda a, b, out: a,
    ...          formula="d(a*b)/da = b, d(a*b)/db = a", register=False)
    >>> report = check_rule(mul, np.array([2.0, 5.0]), np.array([-3.0, 4.0]))
    >>> report.input, report.expected, report.got
    ('a', -3.0, 2.0)
    >>> print(report.hint)
    the rule for a gives what the rule for b should give: are the two swapped?
    """
    if isinstance(rule, Op):
        return _check_op(rule, inputs, dict(params or {}), seed, eps, atol, rtol)
    if callable(rule):
        if params:
            raise TypeError("check_rule: params= are for an Op; a function takes its own arguments")
        return _check_function(rule, inputs, seed, eps, atol, rtol)
    raise TypeError(f"check_rule: give an Op or a function of Values, got {type(rule).__name__}")


# --------------------------------------------------------------------------
# An Op: each rule called as the engine calls it, on float64 arrays
# --------------------------------------------------------------------------
def _check_op(op, inputs, params, seed, eps, atol, rtol):
    names = _input_names(op, len(inputs))
    arrays = [_float64(x, name) for x, name in zip(inputs, names)]
    redraw = lambda: _draw_op(op, names, arrays, params)  # noqa: E731
    report = _report_maker(op.name, formula=op.formula, noun="rule", redraw=redraw)
    forward = lambda *xs: _forward(op, list(xs), params)[0]  # noqa: E731
    try:
        out, saved = _forward(op, arrays, params)
        g = np.random.default_rng(seed).standard_normal(out.shape)
        expected = [_numeric_vjp(forward, arrays, i, g, eps) for i in range(len(arrays))]
    except Exception as error:  # the student's forward: say so, do not raise
        return report(problem="forward", input=None, error=error,
                      where=f"check_rule({op.name}): the forward raised {_error_text(error)}.",
                      hint="check the forward on these inputs first; the rules are checked after it runs")

    # first pass: every rule runs and has the right shape
    shares = []
    for i, name in enumerate(names):
        share, problem = _rule_share(op, i, arrays, out, g, params, saved)
        if problem is not None:
            kind, where, hint, error = problem
            if kind == "shape" and share is not None:
                hint = _shape_hint(share, arrays[i].shape, name, expected[i], _named(g, names, arrays)) or hint
            elif kind == "error" and hint is None:  # a shape error inside the rule: which product fits?
                hint = (_error_products_hint(expected[i], _named(g, names, arrays))
                        or "compare the shapes of each product and sum in the rule with the shapes above")
            return report(problem=kind, input=name, error=error, where=f"check_rule({op.name}): {where}", hint=hint)
        shares.append(share)

    # second pass: the numbers, input by input
    for i, name in enumerate(names):
        if op.elementwise and not _is_elementwise(forward, arrays, i, out):
            return report(problem="values", input=name, hint=_NOT_ELEMENTWISE.format(name=name),
                          where=f"check_rule({op.name}): the op is declared elementwise, but it is not.")
        if op.elementwise:
            found = _compare_local(op, i, names, arrays, out, params, saved, forward, eps, atol, rtol)
            if found is not None:
                return report(**found)
        wrong = _first_wrong(shares[i], expected[i], atol, rtol)
        if wrong is None:
            continue
        index, count = wrong
        others = [(names[j], expected[j]) for j in range(len(names)) if j != i]
        if not op.elementwise and _ignores_upstream(op, i, arrays, out, g, params, saved, shares[i]):
            hint = ("the rule gives the same result whatever the upstream gradient g is: multiply by g "
                    "(the chain rule: dL/dinput = upstream times local)")
        elif op.elementwise:  # the local gradients agree, so the op is not elementwise at all
            hint = _NOT_ELEMENTWISE.format(name=name)
        else:
            hint = explain_difference(shares[i], expected[i], name=name, others=others, atol=atol, rtol=rtol,
                                      products=_named(g, names, arrays), sizes=_sizes(names, arrays))
        where = (f"check_rule({op.name}): the rule for {name} is wrong. At {_at(name, index)}, with a random "
                 f"upstream gradient g, dL/d{name} should be {_shown(expected[i][index])} (central differences), "
                 f"but the rule gives {_shown(shares[i][index])}{_count(count, shares[i].size)}.")
        return report(problem="values", input=name, index=index, expected=_rounded(expected[i][index]),
                      got=float(shares[i][index]), hint=hint, where=where)
    return report(ok=True, checked=names, elements=sum(a.size for a in arrays))


def _report_maker(name, **common):
    """A maker of RuleReports that share `common` fields; not ok unless told."""
    def make(ok=False, **fields):
        return RuleReport(name, ok, **common, **fields)
    return make


def _input_names(op, count):
    if op.variadic:  # concatenate(*values): values[0], values[1], ...
        base = op.inputs[0].lstrip("*")
        return [f"{base}[{k}]" for k in range(count)]
    if count > len(op.inputs):
        raise TypeError(f"check_rule: {op.name} takes the inputs {', '.join(op.inputs)}; got {count} arrays")
    if count == 0:
        raise TypeError(f"check_rule: give {op.name} its inputs ({', '.join(op.inputs)}) as arrays")
    return list(op.inputs[:count])  # an optional last input (linear's bias) may be left out


def _float64(x, name):
    """An input as a float64 array (Values give their data)."""
    data = x.data if isinstance(x, Value) else x
    try:
        array = np.array(data, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"check_rule: input {name} must be numbers or an array, got {type(data).__name__}") from None
    if array.size > MAX_ELEMENTS:
        raise ValueError(f"check_rule: input {name} has {array.size:,} elements; every element is nudged by "
                         f"central differences, so give a small example (at most {MAX_ELEMENTS:,})")
    return array


def _forward(op, arrays, params):
    """(output, what the forward saved for the rules) as float64."""
    result = op.forward(*arrays, **params)
    saved = {}
    if op.saves:  # the forward also returned what a rule reads again (see ops.py)
        result, *kept = result
        saved = dict(zip(op.saves, kept))
    return np.asarray(result, dtype=np.float64), saved


def _numeric_vjp(forward, arrays, i, g, eps):
    """dL/d arrays[i] for L = sum(g * forward(*arrays)), by central
    differences: nudge one element up and down, watch L."""
    x = arrays[i].copy()  # a C-ordered copy, so that reshape(-1) is a view we can nudge
    flat, result = x.reshape(-1), np.empty(x.size)
    probe = list(arrays)
    probe[i] = x
    for k in range(x.size):
        keep = flat[k]
        flat[k] = keep + eps
        up = np.sum(g * forward(*probe))
        flat[k] = keep - eps
        down = np.sum(g * forward(*probe))
        flat[k] = keep
        result[k] = (up - down) / (2 * eps)
    return result.reshape(x.shape)


def _rule_share(op, i, arrays, out, g, params, saved):
    """dL/d input i by the op's rule, as the engine computes it:
    (share, None), or (share or None, (problem, where, hint, the exception or None))."""
    name = _input_names(op, len(arrays))[i]
    call = _call_text(op, i, len(arrays), params)
    try:
        if op.elementwise:
            local = np.asarray(op.grads[i](*arrays, out, **params, **saved), dtype=np.float64)
        else:
            share = op.grads[i](g, *arrays, out, **params, **saved)
            share = np.zeros(arrays[i].shape) if share is None else np.asarray(share, dtype=np.float64)
    except Exception as error:  # the student's rule: report it, do not raise
        given = _shapes_text(op, arrays, out, g)
        where = (f"the rule for {name}, called as {call}, raised {_error_text(error)}. It was given {given} "
                 f"and must return {'a local gradient of the output' if op.elementwise else name}'s shape "
                 f"{out.shape if op.elementwise else arrays[i].shape}.")
        return None, ("error", where, _error_hint(error, op, call), error)
    if op.elementwise:
        if not _broadcasts_to(local.shape, out.shape):
            where = (f"the rule for {name} returns a local gradient of shape {local.shape}, which does not "
                     f"fit the output's shape {out.shape}.")
            return None, ("shape", where, "an elementwise rule gives one local gradient per output element "
                                          "(or a number for all of them)", None)
        return sum_to_shape(g * local, arrays[i].shape), None  # upstream x local, summed back: the engine's step
    if share.shape != arrays[i].shape:
        where = (f"the rule for {name} returns an array of shape {share.shape}, but {name} has shape "
                 f"{arrays[i].shape}: a vector-Jacobian product has the shape of its input.")
        return share, ("shape", where, f"return an array of {name}'s shape {arrays[i].shape}", None)
    return share, None


_NOT_ELEMENTWISE = ("an output element moves when another element of {name} moves, so the op mixes elements: "
                    "declare it elementwise=False and write its rule as a vector-Jacobian product (it takes "
                    "the upstream gradient g first)")


def _is_elementwise(forward, arrays, i, out):
    """Whether nudging the first or the last element of input i (broadcast
    to the output's shape) moves that output element only."""
    if out.size <= 1:
        return True
    for k in (0, out.size - 1):
        probe = list(arrays)
        probe[i] = np.array(np.broadcast_to(arrays[i], out.shape))
        flat = probe[i].reshape(-1)
        flat[k] += 1e-3 * (1 + abs(flat[k]))
        moved = forward(*probe) != out
        moved.reshape(-1)[k] = False
        if moved.any():
            return False
    return True


def _input_for_output_hint(op, arrays, out, params, saved, measured, atol, rtol):
    """For a one-input elementwise rule written with its output (tanh's 1 - out**2,
    sigmoid's out * (1 - out)): a hint when the rule mixed up x and out."""
    if len(arrays) != 1:
        return None
    x, name = arrays[0], op.inputs[0]
    for given, meant, wrong_name, right_name in ((out, out, name, "out"), (x, x, "out", name)):
        try:
            local = np.asarray(op.grads[0](given, meant, **params, **saved), dtype=np.float64)
        except Exception:
            continue
        if local.shape == measured.shape and np.allclose(local, measured, atol=atol, rtol=rtol):
            return (f"the rule uses {wrong_name} where {right_name} belongs: with {right_name} in its place the "
                    f"numbers are right ({name} is the input, out the output the forward computed from it)")
    return None


def _ignores_upstream(op, i, arrays, out, g, params, saved, share):
    """True when a structural rule returns the same for 2 g as for g (a
    vector-Jacobian product is linear in g: it must double)."""
    try:
        doubled = np.asarray(op.grads[i](2 * g, *arrays, out, **params, **saved), dtype=np.float64)
    except Exception:
        return False
    return doubled.shape == share.shape and np.allclose(doubled, share) and not np.allclose(share, 0)


def _compare_local(op, i, names, arrays, out, params, saved, forward, eps, atol, rtol):
    """For an elementwise rule: its local gradient against the one measured
    by nudging every element of input i at once (each output element moves
    only with its own input element). The report's fields, or None."""
    name = names[i]
    local = np.broadcast_to(np.asarray(op.grads[i](*arrays, out, **params, **saved), dtype=np.float64), out.shape)
    nudged = [np.broadcast_to(a, out.shape) if k == i else a for k, a in enumerate(arrays)]
    up, down = list(nudged), list(nudged)
    up[i], down[i] = nudged[i] + eps, nudged[i] - eps
    measured = (forward(*up) - forward(*down)) / (2 * eps)
    wrong = _first_wrong(local, measured, atol, rtol)
    if wrong is None:
        return None
    index, count = wrong
    others = []
    for j, other in enumerate(names):
        if j != i:
            shifted_up, shifted_down = list(arrays), list(arrays)
            shifted_up[j], shifted_down[j] = (np.broadcast_to(arrays[j], out.shape) + s for s in (eps, -eps))
            others.append((other, (forward(*shifted_up) - forward(*shifted_down)) / (2 * eps)))
    hint = (_input_for_output_hint(op, arrays, out, params, saved, measured, atol, rtol)
            or explain_difference(local, measured, name=name, others=others, atol=atol, rtol=rtol))
    broadcast = arrays[i].shape != out.shape
    place = f"output element {list(index)} ({name} is broadcast)" if broadcast else _at(name, index, arrays[i])
    where = (f"check_rule({op.name}): the rule for {name} is wrong. At {place}, the local gradient "
             f"d({op.name})/d{name} should be {_shown(measured[index])} (central differences), but the rule gives "
             f"{_shown(local[index])}{_count(count, local.size)}.")
    return dict(problem="values", input=name, index=index, expected=_rounded(measured[index]),
                got=float(local[index]), hint=hint, where=where)


# --------------------------------------------------------------------------
# A function of Values: gradcheck, explained
# --------------------------------------------------------------------------
def _check_function(fn, inputs, seed, eps, atol, rtol):
    fn_name = getattr(fn, "__name__", type(fn).__name__)
    names = _argument_names(fn, inputs)
    values = [_leaf(x, name) for x, name in zip(inputs, names)]
    checked = [k for k, v in enumerate(values) if v.requires_grad]
    redraw = lambda: _draw_function(fn, names, values)  # noqa: E731
    report = _report_maker(fn_name, noun="gradient", redraw=redraw)
    if not checked:
        raise ValueError("check_rule: no input requires grad, so there is nothing to check")
    try:
        out = fn(*values)
        if not isinstance(out, Value):
            raise TypeError(f"it returned {type(out).__name__}, not a Value")
        # a number's gradient as it is (as gradcheck does); an array's with random weights g
        g = np.ones(()) if out.size == 1 else np.random.default_rng(seed).standard_normal(out.shape)
        objective = (out * g).sum()
        if objective.requires_grad:
            analytic = grad(objective, [values[k] for k in checked], allow_unused=True)
        else:  # the output left the graph: no input reaches it
            analytic = [None] * len(checked)
    except Exception as error:  # the student's function: report it, do not raise
        where = f"check_rule({fn_name}): calling it and its backward raised {_error_text(error)}."
        return report(problem="error", error=error, where=where, hint=_error_hint(error, None, None))

    def loss(*probe):  # L = sum(g * fn(...)), with the same g, for central differences
        with no_grad():
            return np.sum(g * fn(*[Value(p, requires_grad=False) for p in probe]).data)

    arrays = [v.data for v in values]
    expected = {k: _numeric_vjp(loss, arrays, k, np.float64(1.0), eps) for k in checked}
    got = {k: np.zeros(values[k].shape) if a is None else np.asarray(a, dtype=np.float64)
           for k, a in zip(checked, analytic)}
    for k in checked:
        wrong = _first_wrong(got[k], expected[k], atol, rtol)
        if wrong is None:
            continue
        index, count = wrong
        name = names[k]
        others = [(names[j], expected[j]) for j in checked if j != k]
        if analytic[checked.index(k)] is None:
            hint = (f"the graph never reaches {name}: it was used through .data, .item(), float() or a NumPy "
                    f"function, which leave the graph; use the engine's operations on the Value itself")
        else:
            hint = explain_difference(got[k], expected[k], name=name, others=others, atol=atol, rtol=rtol,
                                      sizes=_sizes(names, arrays))
        where = (f"check_rule({fn_name}): the gradient for {name} is wrong. At {_at(name, index, arrays[k])}, "
                 f"dL/d{name} should be {_shown(expected[k][index])} (central differences), but the engine "
                 f"gives {_shown(got[k][index])}{_count(count, got[k].size)}.")
        return report(problem="values", input=name, index=index, expected=_rounded(expected[k][index]),
                      got=float(got[k][index]), hint=hint, where=where)
    return report(ok=True, checked=[names[k] for k in checked], elements=sum(arrays[k].size for k in checked))


def _argument_names(fn, inputs):
    """The names of fn's parameters (``def f(w, x)``: w, x), else a Value's
    label, else input 0, input 1..."""
    try:
        parameters = [p.name for p in inspect.signature(fn).parameters.values()
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        parameters = []
    names = []
    for k, x in enumerate(inputs):
        name = parameters[k] if k < len(parameters) else getattr(x, "label", None) or f"input {k}"
        names.append(name)
    return names


def _leaf(x, name):
    wants_grad = x.requires_grad if isinstance(x, Value) else True
    return Value(_float64(x, name), requires_grad=wants_grad, label=name)


# --------------------------------------------------------------------------
# Recognising the classic mistakes from the numbers
# --------------------------------------------------------------------------
def explain_difference(got, expected, *, name="x", others=(), products=None, sizes=None, atol=1e-5, rtol=1e-3):
    """A hint that names the mistake behind `got` (should be `expected`):
    the sign, a constant factor, the numbers of another input, a transpose,
    a missing sum over a broadcast axis; a general hint when none fits.

    `others` are (name, expected) of the other inputs; `products` the named
    2-D arrays a matrix rule may multiply (``{"g": g, "a": a, "b": b}``);
    `sizes` named lengths that may hide in a factor (``{"m": 4}``).

    >>> explain_difference(np.array([1.0, -2.0]), np.array([-1.0, 2.0]))
    'the sign is wrong: every element has the right size and the opposite sign'
    >>> explain_difference(np.array([8.0, 4.0]), np.array([2.0, 1.0]), sizes={"m, the rows of X": 4})
    'every element is 4 times the right value: a constant factor is off (4 is m, the rows of X: a division by it missing?)'
    """
    got, expected = np.asarray(got, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    close = lambda a, b: a.shape == b.shape and np.allclose(a, b, atol=atol, rtol=rtol)  # noqa: E731
    if got.shape != expected.shape:
        return _shape_hint(got, expected.shape, name, expected, products, sizes) or (
            f"the result has shape {got.shape}, {name} has shape {expected.shape}")
    bad = ~np.isfinite(got)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        return (f"the result is {got[first]} at {list(first)}: a division by zero, or the log or square root "
                f"of a number that cannot take it?")
    if close(got, -expected):
        return "the sign is wrong: every element has the right size and the opposite sign"
    for other, other_expected in others:
        if close(got, np.asarray(other_expected)) and not close(got, expected):
            return f"the rule for {name} gives what the rule for {other} should give: are the two swapped?"
    factor = _constant_factor(got, expected, atol)
    if factor is not None:
        return _factor_hint(factor, sizes)
    if got.ndim == 2 and close(got, expected.T):
        return "it is the transpose of the right answer: transpose it (or the product inside it)"
    product_hint = _products_hint(got, expected, products, atol, rtol)
    if product_hint:
        return product_hint
    if np.allclose(got, 0, atol=atol) and not np.allclose(expected, 0, atol=atol):
        return "it is 0 everywhere: is a term missing, or is the result thrown away?"
    offset = _constant_offset(got - expected, atol, rtol)
    if offset is not None:
        return offset
    return ("the difference is not a constant factor, a sign, a swap or a transpose: check the formula term by "
            "term at this element")


def _constant_factor(got, expected, atol):
    """r when got = r * expected at every element (r not 1 or -1), else None."""
    big = np.abs(expected) > max(atol, 1e-8 * np.abs(expected).max(initial=0.0))
    if not big.any() or not np.allclose(got[~big], 0, atol=10 * atol):
        return None
    ratios = got[big] / expected[big]
    r = float(np.median(ratios))
    if not np.allclose(ratios, r, rtol=1e-4, atol=1e-9) or abs(abs(r) - 1) < 1e-4 or abs(r) < 1e-12:
        return None
    return r


def _constant_offset(difference, atol, rtol):
    """A hint when got - expected is one number everywhere (a constant term
    missing), or the same along an axis (a term summed over that axis)."""
    tolerance = atol + rtol * np.abs(difference).max()
    if difference.size > 1 and np.ptp(difference) <= tolerance:
        return (f"every element is off by the same amount ({difference.reshape(-1)[0]:+.4g}): "
                f"a constant term is missing or wrong")
    for axis in range(difference.ndim):
        if difference.shape[axis] > 1 and np.ptp(difference, axis=axis).max() <= tolerance:
            return (f"the error is the same at every position along axis {axis}: a term that is a sum over "
                    f"axis {axis} (over the batch, for axis 0) is missing or wrong")
    return None


def _factor_hint(r, sizes):
    fraction = Fraction(r).limit_denominator(12)
    simple = abs(float(fraction) - r) <= 1e-6 * abs(r)
    text = str(fraction) if simple else f"{r:.4g}"
    if simple and fraction.denominator > 1:
        size = f"{text} of the right value"
    else:
        size = f"{text} times the right value"
    hint = f"every element is {size}: a constant factor is off"
    for what, n in (sizes or {}).items():  # a mean's 1/m missing or doubled shows up as a factor m
        if n > 1 and math.isclose(abs(r), n, rel_tol=1e-6):
            return f"{hint} ({n} is {what}: a division by it missing?)"
        if n > 1 and math.isclose(abs(r), 1 / n, rel_tol=1e-6):
            return f"{hint} (1/{n}, and {n} is {what}: divided by it once too often?)"
    if simple and 1 < fraction.numerator <= 4 and 1 < fraction.denominator <= 4:  # 2/3: x^3's 3 written as 2?
        hint += f" ({fraction.numerator} instead of {fraction.denominator}?)"
    return hint + (" and the sign is wrong too" if r < 0 else "")


def _shape_hint(got, shape, name, expected, products, sizes=None):
    """Why a rule's result has the wrong shape: a sum over a broadcast axis
    missing, a transpose, a product of the wrong arrays."""
    got = np.asarray(got)
    if got.ndim >= len(shape) and _broadcasts_to(shape, got.shape):
        summed = sum_to_shape(got, shape)
        lead = got.ndim - len(shape)
        axes = tuple(range(lead)) + tuple(lead + k for k, n in enumerate(shape) if n == 1 and got.shape[lead + k] != 1)
        axis = axes[0] if len(axes) == 1 else axes
        keep = ", keepdims=True" if lead == 0 else ""
        hint = (f"the shape {got.shape} is {name}'s shape {tuple(shape)} stretched over axis {axis}"
                f"{' (the batch)' if axes == (0,) else ''}: what is stretched over an axis collects the "
                f"gradient of every copy, so sum over axis {axis} (.sum(axis={axis}{keep}))")
        if np.allclose(summed, expected, atol=1e-5, rtol=1e-3):
            return hint + "; with that sum the numbers are right"
        factor = _constant_factor(summed, np.asarray(expected), 1e-5)
        if factor is not None:
            return hint + "; after that sum, " + _factor_hint(factor, sizes)
        return hint
    if got.ndim == 2 and got.shape == tuple(shape)[::-1]:
        hint = f"the shape {got.shape} is the transpose of {name}'s shape {tuple(shape)}"
        if np.allclose(got.T, expected, atol=1e-5, rtol=1e-3):
            return hint + ": transposed, the numbers are right (for C = A @ B, dL/dB = A.T @ g, not g.T @ A)"
        return hint + ": a transpose is misplaced; " + (_products_hint(None, expected, products, 1e-5, 1e-3) or
                                                         "check which operand of each product is transposed")
    return _products_hint(got if got.shape == tuple(shape) else None, expected, products, 1e-5, 1e-3)


def _broadcasts_to(small, big):
    try:
        return np.broadcast_shapes(tuple(small), tuple(big)) == tuple(big)
    except ValueError:
        return False


def _products(shape, products):
    """(text, value) of every product X @ Y of two of the named 2-D arrays,
    each as it is or transposed, that has `shape`."""
    if not products or len(shape) != 2:
        return []
    operands = []
    for name, array in products.items():
        array = np.asarray(array)
        if array.ndim == 2:
            operands += [(name, array), (f"{name}.T", array.T)]
    found = []
    for left, a in operands:
        for right, b in operands:
            if left.split(".")[0] != right.split(".")[0] and a.shape[1] == b.shape[0] and (a.shape[0], b.shape[1]) == shape:
                found.append((f"{left} @ {right}", a @ b))
    return found


def _products_hint(got, expected, products, atol, rtol):
    """For a matrix product's rule: which product gives the right numbers,
    and which one the rule computed."""
    candidates = _products(expected.shape, products)
    right = [text for text, value in candidates if np.allclose(value, expected, atol=atol, rtol=rtol)]
    if len(right) != 1:
        return None
    computed = []
    if got is not None:
        computed = [text for text, value in candidates if np.allclose(value, got, atol=atol, rtol=rtol)]
    if computed:
        return f"a transpose is misplaced: the rule computes {computed[0]}, the right value is {right[0]}"
    return f"the right value is {right[0]} (shapes {_product_shapes(right[0], products)})"


def _product_shapes(text, products):
    shapes = []
    for operand in text.split(" @ "):
        array = np.asarray(products[operand.split(".")[0]])
        shapes.append(str(array.T.shape if operand.endswith(".T") else array.shape))
    return " @ ".join(shapes)


def _error_products_hint(expected, products):
    hint = _products_hint(None, expected, products, 1e-5, 1e-3)
    return f"the shapes of a product do not line up; {hint}" if hint else None


def _error_hint(error, op, call):
    """A hint for a rule (or function) that raised."""
    if isinstance(error, NotImplementedError):
        return f"this part is not written yet{': ' + str(error) if str(error) else ''}"
    if isinstance(error, TypeError) and re.search(r"argument|positional|keyword", str(error)) and op is not None:
        kind = ("an elementwise rule takes the inputs and out, and returns the local gradient"
                if op.elementwise else "a structural rule takes the upstream gradient g first, then the inputs and out")
        return f"{kind}: the engine calls it as {call}"
    if "could not be broadcast" in str(error):
        return ("two arrays of the rule do not line up: a sum or mean over an axis drops that axis, "
                "and .sum(axis=..., keepdims=True) keeps it (as length 1) so the result broadcasts back")
    if "matmul" in str(error) or "shapes" in str(error):
        return None  # the shapes speak; the products hint may follow
    return "run the rule by hand on these inputs to see where it fails"


# --------------------------------------------------------------------------
# Small helpers: where, how many, numbers, names
# --------------------------------------------------------------------------
def _first_wrong(got, expected, atol, rtol):
    """(index of the first element that differs, how many differ), or None."""
    close = np.isclose(got, expected, atol=atol, rtol=rtol)
    if close.all():
        return None
    index = tuple(int(i) for i in np.argwhere(~close)[0]) if got.ndim else ()
    return index, int((~close).sum())


def _at(name, index, array=None):
    where = f"{name}[{', '.join(map(str, index))}]" if index else name
    return f"{where} = {_shown(array[index])}" if array is not None else where


def _count(count, size):
    return "" if size == 1 else f"; {count:,} of {size:,} elements differ"


def _sentence(text):
    """`text` ending in a full stop, unless it ends in a question mark or one already."""
    return text if text.endswith((".", "?", "!")) else text + "."


def _shown(x):
    """A number as a sentence shows it (4 significant digits)."""
    return f"{float(x):.4g}"


def _number(x):
    return f"{float(x):.{_DIGITS}g}"


def _rounded(x):
    return float(_number(x))


def _error_text(error):
    text = str(error).strip().splitlines()
    first = re.sub(r", with gufunc signature \S+", "", text[0]) if text else ""  # NumPy's matmul says it twice
    return f"{type(error).__name__}" + (f": {first}" if first else "")


def _call_text(op, i, count, params):
    names = _input_names(op, count)
    arguments = ([] if op.elementwise else ["g"]) + names + ["out"] + [f"{k}=..." for k in params]
    rule = f"d_{names[i]}" if not op.variadic else f"d_each({i}, ...)"
    return f"{rule}({', '.join(arguments)})"


def _shapes_text(op, arrays, out, g):
    names = _input_names(op, len(arrays))
    parts = ([] if op.elementwise else [f"g {g.shape}"]) + [f"{n} {a.shape}" for n, a in zip(names, arrays)]
    return ", ".join(parts + [f"out {out.shape}"])


def _named(g, names, arrays):
    return {"g": g, **dict(zip(names, arrays))}


def _sizes(names, arrays):
    """The lengths of the inputs' axes, named, for factor hints (a batch size m)."""
    sizes = {}
    for name, array in zip(names, arrays):
        for axis, n in enumerate(np.shape(array)):
            sizes.setdefault(f"the length of axis {axis} of {name}", n)
    return sizes


# --------------------------------------------------------------------------
# Drawing: the small graph, the wrong edge in red
# --------------------------------------------------------------------------
def _draw_op(op, names, arrays, params):
    from .viz import draw_with_layout

    leaves = {name: Value(a, label=name) for name, a in zip(names, arrays)}
    out = op.apply(*leaves.values(), **params)
    out.label = "out"
    graph, layout = draw_with_layout(out, show_grads=False)
    return graph, layout, leaves


def _draw_function(fn, names, values):
    from .viz import draw_with_layout

    leaves = {name: Value(v.data, requires_grad=v.requires_grad, label=name) for name, v in zip(names, values)}
    graph, layout = draw_with_layout(fn(*leaves.values()), show_grads=False)
    return graph, layout, leaves


def _edges_from(layout, leaf):
    """(tail, head, edge id) of every edge that leaves `leaf`'s box."""
    return [(layout.box[id(leaf)], layout.op_node[id(node)], layout.input_edge[(id(node), i)])
            for node in layout.values if node._op is not None
            for i, inp in enumerate(node._inputs) if inp is leaf]


def _mark_edge(graph, tail, head, edge_id, text):
    """Draw one edge of a finished drawing again, in red with `text`: its
    old line goes (a drawing is DOT text; an edge named twice is drawn twice)."""
    from .viz import dot_text

    pattern = re.compile(rf"\[id={re.escape(edge_id)}[\] ]")
    graph.body[:] = [line for line in graph.body if not pattern.search(line)]
    graph.edge(tail, head, id=edge_id, color="#d62728", penwidth="2.5", fontcolor="#d62728", label=dot_text(text))
