"""PyTorch's ``scatter`` and ``scatter_reduce``, declared with the registry of
``ops.py`` (see its docstring): each op one declaration with its gradient
beside it.

Both write `src` into a copy of `x` along `axis` at `index` (an integer
array with x's number of dimensions; for axis 0, ``src[i, j]`` goes to
``out[index[i, j], j]``), as ``gather`` reads, and as ``scatter_add`` (in
``ops_select.py``) adds:

* ``scatter_elements`` (``ac.scatter(x, axis, index, src)``, ``x.scatter``)
  *replaces*: ``dL/dx`` is g where nothing was written, 0 where something
  was; ``dL/dsrc`` is g read back at the index. Where an index repeats, the
  element written last is the one kept, and the only one with a gradient
  (PyTorch leaves which one unspecified, and gives each the gradient).
* ``scatter_reduce`` *combines* the values that land on one element with
  ``"sum"``, ``"prod"``, ``"mean"``, ``"amax"`` or ``"amin"``, with x's own
  element among them (``include_self=True``) or not. The gradients are
  PyTorch's: each value of a sum gets g; of a mean, g / (how many); of a
  product, g times the product of the others (exact with zeros); of a
  maximum or minimum, g split evenly among the values equal to it. Where
  ``include_self=False``, x's element takes no part, so it is not one of the
  tied values either (PyTorch 2.13 counts it among them when it happens to
  equal the result, and the tied values of src then get too little).

Rules run on NumPy arrays in a first-order backward and on Values with
``create_graph=True``; the masks and counts they use are data (steps).
"""

from __future__ import annotations

import numpy as np

from .engine import Value, as_value
from .errors import ShapeError
from .ops import F, Op, _data
from .ops_select import (
    _checked_index,
    _gather_along,
    _index_grid,
    _leading,
    _one_axis_of,
    _scatter_add_into,
    scatter_add,
)


def _positions_written(shape, axis, index):
    """For each element of the output, the flat position in `index` of the element
    of src written there, or -1 where none is (repeats: the one NumPy writes last)."""
    written = np.full(shape, -1, dtype=np.intp)
    written[_index_grid(index, axis)] = np.arange(index.size).reshape(index.shape)
    return written


def _touched(shape, axis, index):
    """Where some element of src lands."""
    touched = np.zeros(shape, dtype=bool)
    touched[_index_grid(index, axis)] = True
    return touched


def _padded_to(picked, shape):
    """`picked` (index's shape) as a gradient of src (src may be larger than index: the rest got 0)."""
    if tuple(picked.shape) == tuple(shape):
        return picked
    return F.scatter(picked, shape, _leading(picked.shape))


def _torch_scatter(function, extra=()):
    """The PyTorch form: `function`(x, axis, index, src cut to index's shape, ...)."""

    def form(t, x, src, axis, index, **params):
        cut = ", ".join(f":{n}" for n in index.shape)
        keywords = "".join(f", {key}={t.const(value)}" for key, value in params.items() if key in extra)
        reduce = f", {t.const(params['reduce'])}" if "reduce" in params else ""
        return f"{function}({x}, {axis}, {t.const(index, 'index')}, {src}[{cut}]{reduce}{keywords})"

    return form


# ==========================================================================
# scatter: src written over x's elements
# ==========================================================================
def _scatter_elements_data(x, src, axis, index):
    written = _positions_written(x.shape, axis, index)
    hit = written >= 0
    out = np.array(x, copy=True)
    out[hit] = src[_leading(index.shape)].reshape(-1)[written[hit]]
    return out


def _scatter_elements_d_x(g, x, src, out, axis, index):
    # an element of x written over does not reach the output
    return g * (_positions_written(x.shape, axis, index) < 0)


def _scatter_elements_d_src(g, x, src, out, axis, index):
    # each element of src reaches the output where it was written, if it was the one kept there
    kept = _positions_written(x.shape, axis, index)[_index_grid(index, axis)] == np.arange(index.size).reshape(index.shape)
    return _padded_to(_gather_along(g, axis, index) * kept, src.shape)


SCATTER_ELEMENTS = Op(
    "scatter_elements", _scatter_elements_data, inputs="x, src", numpy=("put_along_axis",),
    code="x.copy() with src written along axis at index",
    as_torch=_torch_scatter("torch.scatter"),
    d_x=_scatter_elements_d_x,
    d_src=_scatter_elements_d_src,
    formula="dL/dx = g where nothing is written, 0 where src is; dL/dsrc = g read at the index",
    methods=("scatter",),
)


def _scatter_arguments(name, x, axis, index, src, number_src=False):
    """x and src as Values of one dtype, the axis as a positive int, index checked (PyTorch's rules)."""
    x = as_value(x)
    ax = _one_axis_of(x, axis, name) if x.ndim else 0
    index = _checked_index(x, ax, index, name)
    if number_src and not isinstance(src, (Value, np.ndarray, list, tuple)):
        if isinstance(src, bool) or not isinstance(src, (int, float, np.integer, np.floating)):
            raise TypeError(f"{name}: src must be a Value, an array or a number, got {type(src).__name__}")
        src = np.full(index.shape, src, dtype=x.dtype)  # PyTorch's scatter(x, dim, index, value)
    src = as_value(src, x)
    if src.dtype != x.dtype:
        raise TypeError(f"{name}: src ({src.dtype}) must have the dtype of x ({x.dtype}); use src.astype(...)")
    if src.ndim != index.ndim or any(n > s for n, s in zip(index.shape, src.shape)):
        raise ShapeError(f"{name}: src of shape {src.shape} must have index's {index.ndim} dimensions and be at "
                         f"least as large as index {index.shape} in each")
    return x, ax, index, src


@SCATTER_ELEMENTS.public
def scatter_elements(x, axis, index, src, reduce=None):
    """PyTorch's ``scatter`` (also ``autograd_core.scatter(x, axis, index,
    src)`` and ``x.scatter(axis, index, src)``): a copy of `x` with `src`
    written along `axis` at `index`: for axis 0, ``out[index[i, j], j] =
    src[i, j]``. `src` may be a number (written at every index). Where an
    index repeats, the last element written is kept, and it alone gets a
    gradient. ``reduce="add"`` adds instead (``scatter_add``),
    ``reduce="multiply"`` multiplies (``scatter_reduce(..., "prod")``), with
    those ops' gradients.

    >>> x = Value(np.zeros((2, 3))); src = Value([[1.0, 2.0, 3.0]])
    >>> out = scatter_elements(x, 0, np.array([[1, 0, 1]]), src); out.data.tolist()
    [[0.0, 2.0, 0.0], [1.0, 0.0, 3.0]]
    >>> out.sum().backward(); x.grad.tolist(), src.grad.tolist()   # written over: no gradient for x there
    ([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]], [[1.0, 1.0, 1.0]])
    """
    if reduce is not None:
        if reduce == "add":
            x_value, ax, index, src = _scatter_arguments("scatter", x, axis, index, src, number_src=True)
            return scatter_add(x_value, ax, index, src)
        if reduce == "multiply":
            x_value, ax, index, src = _scatter_arguments("scatter", x, axis, index, src, number_src=True)
            return scatter_reduce(x_value, ax, index, src, "prod")
        raise ValueError(f"scatter: reduce must be None, 'add' or 'multiply', got {reduce!r} "
                         f"(scatter_reduce has 'sum', 'prod', 'mean', 'amax' and 'amin')")
    x, ax, index, src = _scatter_arguments("scatter", x, axis, index, src, number_src=True)
    return SCATTER_ELEMENTS.apply(x, src, axis=ax, index=index)


# ==========================================================================
# scatter_reduce: the values landing on one element combined
# ==========================================================================
_REDUCTIONS = ("sum", "prod", "mean", "amax", "amin")
_COMBINE = {"sum": np.add, "mean": np.add, "prod": np.multiply, "amax": np.maximum, "amin": np.minimum}
_START = {"sum": 0.0, "mean": 0.0, "prod": 1.0, "amax": -np.inf, "amin": np.inf}  # where x takes no part


def _counts(shape, axis, index, include_self, dtype):
    """How many values each output element is the mean of (1 where it is x's own, untouched)."""
    count = np.full(shape, 1 if include_self else 0, dtype=dtype)
    np.add.at(count, _index_grid(index, axis), 1)
    count[count == 0] = 1
    return count


def _scatter_reduce_data(x, src, axis, index, reduce, include_self):
    grid = _index_grid(index, axis)
    out = np.array(x, copy=True)
    if not include_self:
        out[grid] = _START[reduce]
    _COMBINE[reduce].at(out, grid, src[_leading(index.shape)])
    if reduce == "mean":
        out /= _counts(x.shape, axis, index, include_self, x.dtype)
    return out


def _scatter_reduce_any(x, src, axis, index, reduce, include_self):
    """scatter_reduce of arrays, or (create_graph) of Values."""
    if isinstance(x, Value) or isinstance(src, Value):
        x, src = as_value(x), as_value(src, x)
        return SCATTER_REDUCE.apply(x, src, axis=axis, index=index, reduce=reduce, include_self=include_self)
    return _scatter_reduce_data(x, src, axis, index, reduce, include_self)


def _ties(x, src, out, axis, index, include_self):
    """For amax / amin: which of x's elements and of src's equal the result they
    take part in, and how many values each result is shared among."""
    x, src, out = _data(x), _data(src)[_leading(index.shape)], _data(out)
    self_ties = x == out
    if not include_self:
        self_ties &= ~_touched(x.shape, axis, index)  # x took no part there
    src_ties = src == _gather_along(out, axis, index)
    count = _scatter_add_into(src_ties.astype(x.dtype), x.shape, axis, index) + self_ties
    count[count == 0] = 1  # (only where the result is NaN: nothing equals it)
    return self_ties, src_ties, count


def _scatter_reduce_d_x(g, x, src, out, axis, index, reduce, include_self):
    touched = _touched(x.shape, axis, index)
    if not include_self:
        return g * ~touched  # where src lands, x takes no part
    if reduce == "sum":
        return g
    if reduce == "mean":
        share = g / _counts(x.shape, axis, index, True, _data(x).dtype)
    elif reduce == "prod":  # d(x * product of src there)/dx = the product of src there (exact with zeros)
        ones = np.ones(x.shape, dtype=_data(x).dtype)
        share = g * _scatter_reduce_any(ones, src, axis, index, "prod", True)
    else:  # amax, amin: split evenly among the values equal to the result
        self_ties, _, count = _ties(x, src, out, axis, index, True)
        share = g * (self_ties / count)
    return F.where(touched, share, g)


def _scatter_reduce_d_src(g, x, src, out, axis, index, reduce, include_self):
    if reduce == "sum":
        picked = _gather_along(g, axis, index)
    elif reduce == "mean":
        picked = _gather_along(g / _counts(x.shape, axis, index, include_self, _data(x).dtype), axis, index)
    elif reduce == "prod":
        # g * (the product of the others): out / src, but where src is the one zero of its product,
        # the product made again with a 1 in its place (PyTorch's way)
        cut = src[_leading(index.shape)]
        zero = _data(cut) == 0
        zeros_there = _scatter_add_into(zero.astype(_data(cut).dtype), x.shape, axis, index)
        only_zero = zero & (_gather_along(zeros_there, axis, index) == 1)
        without_it = _scatter_reduce_any(x, F.where(only_zero, 1.0, cut), axis, index, "prod", include_self)
        picked = F.where(only_zero, _gather_along(g * without_it, axis, index),
                         _gather_along(g * out, axis, index) / F.where(zero, 1.0, cut))
    else:
        _, src_ties, count = _ties(x, src, out, axis, index, include_self)
        picked = _gather_along(g / count, axis, index) * src_ties
    return _padded_to(picked, src.shape)


SCATTER_REDUCE = Op(
    "scatter_reduce", _scatter_reduce_data, inputs="x, src",
    code="x.copy() with src combined (reduce) along axis at index",
    as_torch=_torch_scatter("torch.scatter_reduce", extra=("include_self",)),
    d_x=_scatter_reduce_d_x,
    d_src=_scatter_reduce_d_src,
    formula="sum: g; mean: g / count; prod: g * product of the others; amax/amin: g split among the ties",
    methods=("scatter_reduce",),
)


@SCATTER_REDUCE.public
def scatter_reduce(x, axis, index, src, reduce, include_self=True):
    """PyTorch's ``scatter_reduce``: a copy of `x` where each element that
    `src` lands on (along `axis` at `index`, as :func:`scatter_elements`)
    becomes the ``"sum"``, ``"prod"``, ``"mean"``, ``"amax"`` or ``"amin"``
    of the values landing there, x's own element included unless
    ``include_self=False``. Elements nothing lands on keep x's value.
    Gradients are PyTorch's: ties of amax / amin share evenly, a product's
    are exact with zeros.

    >>> x = Value([1.0, 5.0, 2.0]); src = Value([4.0, 4.0, 3.0])
    >>> out = scatter_reduce(x, 0, np.array([0, 0, 2]), src, "amax"); out.data.tolist()
    [4.0, 5.0, 3.0]
    >>> out.sum().backward(); x.grad.tolist(), src.grad.tolist()   # the two 4.0s share the maximum
    ([0.0, 1.0, 0.0], [0.5, 0.5, 1.0])
    >>> scatter_reduce(Value([1.0, 5.0]), 0, np.array([0, 0]), Value([4.0, 2.0]), "mean", include_self=False).data.tolist()
    [3.0, 5.0]
    """
    if reduce not in _REDUCTIONS:
        raise ValueError(f"scatter_reduce: reduce must be one of {', '.join(map(repr, _REDUCTIONS))}, got {reduce!r}")
    if not isinstance(include_self, (bool, np.bool_)):
        raise TypeError(f"scatter_reduce: include_self must be True or False, got {include_self!r}")
    x, ax, index, src = _scatter_arguments("scatter_reduce", x, axis, index, src)
    return SCATTER_REDUCE.apply(x, src, axis=ax, index=index, reduce=reduce, include_self=bool(include_self))
