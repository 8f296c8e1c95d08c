"""One test case per engine operation, shared by the first- and second-order tests.

A case knows how to draw inputs with hypothesis (shapes including
broadcasting, values from a domain where the operation is defined), how to
build the operation on Values, how NumPy computes the same thing (the
reference for values), and, for the piecewise operations, where the kinks are
and which gradient the engine promises there (the documented conventions:
relu'(0) = 0, abs'(0) = 0, ties of max/min/maximum/minimum split evenly, clip
bounds inclusive).

`ALL_CASES` lists them; tests assert that every registered operation in
``autograd_core.ops`` is produced by at least one case, so a new operation
without a case makes the suite fail.
"""

from __future__ import annotations

import itertools
import math
import sys
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import autograd_core as ac
from autograd_core import ops

# ---- element strategies ---------------------------------------------------
SMOOTH = st.floats(-2.0, 2.0, allow_nan=False, allow_infinity=False)
WIDE = st.floats(-3.0, 3.0, allow_nan=False, allow_infinity=False)
POSITIVE = st.floats(0.2, 3.0)
NONZERO = st.floats(0.2, 3.0).flatmap(lambda m: st.sampled_from([m, -m]))
ABOVE_MINUS_ONE = st.floats(-0.8, 3.0)
# quarter steps: hit the kinks (0, clip bounds, ties) exactly and often, and
# keep every other value at least 0.25 from a kink (far beyond the 1e-6 step
# of central differences)
GRID = st.integers(-8, 8).map(lambda k: k / 4)
# for second derivatives of piecewise ops: continuous, but never at a kink
AWAY_FROM_ZERO = st.floats(0.1, 2.0).flatmap(lambda m: st.sampled_from([m, -m]))

CLIP_LO, CLIP_HI = -0.5, 0.5


def shapes(min_dims=0, max_dims=3, max_side=3, min_side=1):
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


def array_of(data, shape, elements):
    return data.draw(hnp.arrays(np.float64, shape, elements=elements))


@dataclass
class OpCase:
    """How to draw, build and check one operation."""

    id: str  # test id (several cases may exercise one op)
    op: str  # the name in ops.OPS of the operation it must produce
    draw: Callable  # draw(data, elements) -> (list of input arrays, params)
    build: Callable  # build(params, *values) -> Value
    reference: Callable  # reference(params, *arrays) -> ndarray (NumPy's answer)
    elements: object = SMOOTH  # values for first-order tests
    smooth_elements: object = None  # values for second-order tests (default: elements)
    kinks: Callable | None = None  # kinks(params, arrays, w) -> [(mask, expected grad) per input]
    safe: Callable | None = None  # safe(params, arrays) -> bool: far enough from kinks for differences
    eps: float = 1e-6
    atol: float = 1e-5
    rtol: float = 1e-3
    tags: set = field(default_factory=set)
    op_attr: str | None = None  # the Op's name in the module declaring it, when two Ops share a display name

    @property
    def op_object(self):
        if self.op_attr is None:
            return ops.OPS[self.op]
        return next(op for module in operation_modules() if isinstance(op := getattr(module, self.op_attr, None), ops.Op))

    @property
    def second_order_elements(self):
        return self.smooth_elements if self.smooth_elements is not None else self.elements


# ---- drawing helpers -------------------------------------------------------
def unary(elements_shape=None):
    def draw(data, elements):
        shape = data.draw(shapes() if elements_shape is None else elements_shape)
        return [array_of(data, shape, elements)], {}

    return draw


def binary(second_elements=None, num_shapes=2):
    def draw(data, elements):
        result = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=num_shapes, max_dims=3, max_side=3))
        arrays = [array_of(data, s, elements) for s in result.input_shapes[:2]]
        if second_elements is not None:
            arrays[1] = array_of(data, result.input_shapes[1], second_elements)
        return arrays, {}

    return draw


def reduction(min_dims=0, allow_none=True, allow_tuple=True, with_keepdims=True):
    def draw(data, elements):
        shape = data.draw(shapes(min_dims=min_dims))
        ndim = len(shape)
        choices = []
        if allow_none:
            choices.append(st.none())
        if ndim:
            choices.append(st.integers(-ndim, ndim - 1))
            if allow_tuple:
                choices.append(st.sets(st.integers(0, ndim - 1), min_size=1).map(tuple))
        axis = data.draw(st.one_of(*choices))
        keepdims = data.draw(st.booleans()) if with_keepdims else False
        return [array_of(data, shape, elements)], {"axis": axis, "keepdims": keepdims}

    return draw


def np_axis(axis):
    return axis


# ---- kink conventions ------------------------------------------------------
def relu_kinks(params, arrays, w):
    (x,) = arrays
    return [(x == 0, np.zeros_like(x))]  # relu'(0) = 0


def clip_kinks(params, arrays, w):
    (x,) = arrays
    return [((x == CLIP_LO) | (x == CLIP_HI), np.broadcast_to(w, x.shape) * 1.0)]  # bounds inclusive


def extreme_kinks(reducer):
    def kinks(params, arrays, w):
        (x,) = arrays
        axis, keepdims = params["axis"], params["keepdims"]
        peak = reducer(x, axis=axis, keepdims=True)
        winners = x == peak
        count = winners.sum(axis=axis, keepdims=True)
        w_kept = np.reshape(w, peak.shape) if not keepdims else w
        # ties share the upstream gradient evenly: each of k tied entries gets 1/k
        expected = winners * np.broadcast_to(w_kept, x.shape) / count
        return [(winners & (count >= 2), expected)]

    return kinks


def far_apart(arrays, bound=1e-3):
    a, b = np.broadcast_arrays(*arrays)
    return bool(np.all(np.abs(a - b) > bound))


def no_near_ties(arrays, bound=1e-3):
    values = np.sort(arrays[0].ravel())
    return values.size < 2 or bool(np.min(np.diff(values)) > bound)


# ---- matmul shapes ----------------------------------------------------------
def draw_matmul(data, elements):
    n, k, m = (data.draw(st.integers(1, 3)) for _ in range(3))
    kind = data.draw(st.sampled_from(["1d@1d", "1d@2d", "2d@1d", "2d@2d", "batched", "1d@batched", "batched@1d", "broadcast batch"]))
    a_shape, b_shape = {
        "1d@1d": ((k,), (k,)),
        "1d@2d": ((k,), (k, m)),
        "2d@1d": ((n, k), (k,)),
        "2d@2d": ((n, k), (k, m)),
        "batched": ((2, n, k), (2, k, m)),
        "1d@batched": ((k,), (2, k, m)),
        "batched@1d": ((2, n, k), (k,)),
        "broadcast batch": ((2, 1, n, k), (3, k, m)),
    }[kind]
    return [array_of(data, a_shape, elements), array_of(data, b_shape, elements)], {"kind": kind}


# ---- linear: x @ W.T + b ------------------------------------------------------
def draw_linear(data, elements, with_bias=True):
    n_in, n_out = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    batch = data.draw(st.sampled_from([(), (2,), (2, 3)]))
    arrays = [array_of(data, batch + (n_in,), elements), array_of(data, (n_out, n_in), elements)]
    if with_bias:
        arrays.append(array_of(data, (n_out,), elements))
    return arrays, {}


# ---- standardize: batch normalisation's (x - mean) / sqrt(var + eps) -------------
def draw_standardize(data, elements):
    kind = data.draw(st.sampled_from(["(N, C) over 0", "(N, C, L) over 0 and 2", "(N,) over all"]))
    shape, axis = {
        "(N, C) over 0": ((data.draw(st.integers(2, 4)), data.draw(st.integers(1, 3))), 0),
        "(N, C, L) over 0 and 2": ((data.draw(st.integers(2, 3)), 2, data.draw(st.integers(1, 3))), (0, 2)),
        "(N,) over all": ((data.draw(st.integers(2, 5)),), None),
    }[kind]
    x = array_of(data, shape, elements)
    # near-constant groups make 1/sqrt(var + eps) huge: central differences lose their digits there
    assume(bool(np.all(x.var(axis=axis) > 0.05)))
    return [x], {"axis": axis}


def standardize_reference(params, x):
    mean = x.mean(axis=params["axis"], keepdims=True)
    return (x - mean) / np.sqrt(x.var(axis=params["axis"], keepdims=True) + 1e-5)


# ---- indexing ---------------------------------------------------------------
def draw_index(data, elements):
    shape = data.draw(shapes(min_dims=1, max_dims=3, max_side=4))
    kind = data.draw(st.sampled_from(["int", "negative int", "slice", "int array", "repeated ints", "bool mask", "full mask", "tuple"]))
    n0 = shape[0]
    if kind == "int":
        index = data.draw(st.integers(0, n0 - 1))
    elif kind == "negative int":
        index = data.draw(st.integers(-n0, -1))
    elif kind == "slice":
        start = data.draw(st.integers(0, n0 - 1))
        index = slice(start, None, data.draw(st.integers(1, 2)))
    elif kind in ("int array", "repeated ints"):
        size = data.draw(st.integers(1, 5))
        index = np.array(data.draw(st.lists(st.integers(-n0, n0 - 1), min_size=size, max_size=size)))
        if kind == "repeated ints":
            index = np.concatenate([index, index[:1], index[:1]])
    elif kind == "bool mask":
        index = np.array(data.draw(st.lists(st.booleans(), min_size=n0, max_size=n0)))
    elif kind == "full mask":
        index = np.array(data.draw(st.lists(st.booleans(), min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))).reshape(shape)
    else:  # integer array with repeats on the first axis, a slice on the rest
        rows = np.array(data.draw(st.lists(st.integers(0, n0 - 1), min_size=1, max_size=4)))
        index = (rows,) + (slice(None, None, -1),) * (len(shape) - 1)
    return [array_of(data, shape, elements)], {"index": index}


def draw_concat(data, elements):
    base = list(data.draw(shapes(min_dims=1, max_dims=3)))
    axis = data.draw(st.integers(-len(base), len(base) - 1))
    count = data.draw(st.integers(1, 3))
    arrays = []
    for _ in range(count):
        shape = list(base)
        shape[axis] = data.draw(st.integers(1, 3))
        arrays.append(array_of(data, tuple(shape), elements))
    return arrays, {"axis": axis}


def draw_stack(data, elements):
    shape = data.draw(shapes(min_dims=0, max_dims=2))
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)))
    count = data.draw(st.integers(1, 3))
    return [array_of(data, shape, elements) for _ in range(count)], {"axis": axis}


def draw_transpose(data, elements):
    shape = data.draw(shapes(min_dims=0, max_dims=4))
    axes = tuple(data.draw(st.permutations(range(len(shape)))))
    return [array_of(data, shape, elements)], {"axes": axes}


def draw_reshape(data, elements):
    shape = data.draw(shapes(min_dims=0, max_dims=3))
    size = int(np.prod(shape))
    target = data.draw(st.sampled_from([(size,), (1, size), (size, 1), (-1,), (1, -1, 1)] + ([()] if size == 1 else [])))
    return [array_of(data, shape, elements)], {"shape": target}


def draw_broadcast_to(data, elements):
    shape = data.draw(shapes(min_dims=0, max_dims=2))
    stretched = tuple(data.draw(st.integers(1, 3)) if n == 1 else n for n in shape)
    lead = tuple(data.draw(st.lists(st.integers(1, 3), max_size=2)))
    return [array_of(data, shape, elements)], {"shape": lead + stretched}


def draw_where(data, elements):
    result = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=3, max_dims=3, max_side=3))
    cond_shape, a_shape, b_shape = result.input_shapes
    condition = data.draw(hnp.arrays(np.bool_, cond_shape))
    return [array_of(data, a_shape, elements), array_of(data, b_shape, elements)], {"condition": condition}


def draw_pow_const(data, elements):
    exponent = data.draw(st.sampled_from([0, 1, 2, 3, -1, -2, 0.5, 1.5, -0.5, 2.0, 3.7]))
    shape = data.draw(shapes())
    if isinstance(exponent, int) and exponent >= 0:
        values = SMOOTH  # defined everywhere, including at 0
    elif isinstance(exponent, int) or float(exponent).is_integer():
        values = NONZERO
    else:
        values = POSITIVE  # a fractional power of a negative number is NaN
    return [array_of(data, shape, values)], {"exponent": exponent}


def draw_scatter(data, elements):
    # the backward of indexing, as an op: zeros(shape) with g added at the index
    (x,), params = draw_index(data, elements)
    g = np.asarray(x[params["index"]])
    return [array_of(data, g.shape, elements)], {"shape": x.shape, "index": params["index"]}


def scatter_reference(params, g):
    out = np.zeros(params["shape"])
    np.add.at(out, params["index"], g)
    return out


def logsumexp_reference(params, x):
    return np.log(np.sum(np.exp(x), axis=params["axis"], keepdims=params["keepdims"]))


def softmax_reference(params, x):
    e = np.exp(x)
    return e / e.sum(axis=params["axis"], keepdims=True)


_erf = np.vectorize(math.erf, otypes=[np.float64])


def softmax_draw(data, elements):
    shape = data.draw(shapes(min_dims=1))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    return [array_of(data, shape, elements)], {"axis": axis}


def var_draw(data, elements):
    arrays, params = reduction()(data, elements)
    (x,) = arrays
    axes = range(x.ndim) if params["axis"] is None else np.atleast_1d(params["axis"])
    count = int(np.prod([x.shape[a] for a in axes]))
    params["ddof"] = data.draw(st.sampled_from([0, 1])) if count > 1 else 0
    return arrays, params


ALL_CASES = [
    # elementwise arithmetic (binary ones with broadcasting)
    OpCase("add", "add", binary(), lambda p, a, b: a + b, lambda p, a, b: a + b),
    OpCase("radd number", "add", unary(), lambda p, a: 2.5 + a, lambda p, a: 2.5 + a),
    OpCase("sub", "sub", binary(), lambda p, a, b: a - b, lambda p, a, b: a - b),
    OpCase("rsub number", "sub", unary(), lambda p, a: 1.5 - a, lambda p, a: 1.5 - a),
    OpCase("mul", "mul", binary(), lambda p, a, b: a * b, lambda p, a, b: a * b),
    OpCase("div", "div", binary(second_elements=NONZERO), lambda p, a, b: a / b, lambda p, a, b: a / b),
    OpCase("neg", "neg", unary(), lambda p, a: -a, lambda p, a: -a),
    OpCase("reciprocal (number / Value)", "reciprocal", unary(), lambda p, a: 1 / a, lambda p, a: 1 / a, elements=NONZERO),
    OpCase("pow constant exponent", "pow", draw_pow_const, lambda p, a: a ** p["exponent"], lambda p, a: a ** p["exponent"],
           op_attr="POW_CONST"),
    OpCase("pow Value exponent", "pow", binary(second_elements=SMOOTH), lambda p, a, b: a ** b, lambda p, a, b: a ** b, elements=POSITIVE,
           op_attr="POW"),
    OpCase("rpow number base", "pow", unary(), lambda p, b: 2.0 ** b, lambda p, b: 2.0 ** b, op_attr="POW"),
    # elementwise functions
    OpCase("exp", "exp", unary(), lambda p, a: a.exp(), lambda p, a: np.exp(a), elements=WIDE),
    OpCase("log", "log", unary(), lambda p, a: a.log(), lambda p, a: np.log(a), elements=POSITIVE),
    OpCase("log1p", "log1p", unary(), lambda p, a: ac.log1p(a), lambda p, a: np.log1p(a), elements=ABOVE_MINUS_ONE),
    OpCase("sqrt", "sqrt", unary(), lambda p, a: a.sqrt(), lambda p, a: np.sqrt(a), elements=POSITIVE),
    OpCase("abs", "abs", unary(), lambda p, a: abs(a), lambda p, a: np.abs(a), elements=GRID,
           smooth_elements=AWAY_FROM_ZERO),  # abs'(0) = 0 equals the central difference at 0
    OpCase("tanh", "tanh", unary(), lambda p, a: a.tanh(), lambda p, a: np.tanh(a), elements=WIDE),
    OpCase("sigmoid", "sigmoid", unary(), lambda p, a: a.sigmoid(), lambda p, a: 1 / (1 + np.exp(-a)), elements=WIDE),
    OpCase("relu", "relu", unary(), lambda p, a: a.relu(), lambda p, a: np.maximum(a, 0), elements=GRID,
           smooth_elements=AWAY_FROM_ZERO, kinks=relu_kinks),
    OpCase("softplus", "softplus", unary(), lambda p, a: ac.softplus(a), lambda p, a: np.log1p(np.exp(a)), elements=WIDE),
    OpCase("erf", "erf", unary(), lambda p, a: ac.erf(a), lambda p, a: _erf(a)),
    OpCase("clip", "clip", unary(), lambda p, a: a.clip(CLIP_LO, CLIP_HI), lambda p, a: np.clip(a, CLIP_LO, CLIP_HI),
           elements=GRID, smooth_elements=SMOOTH, kinks=clip_kinks,
           safe=lambda p, arrays: bool(np.all(np.abs(np.abs(arrays[0]) - 0.5) > 1e-3))),
    OpCase("maximum", "maximum", binary(), lambda p, a, b: ac.maximum(a, b), lambda p, a, b: np.maximum(a, b),
           elements=GRID, smooth_elements=SMOOTH, safe=lambda p, arrays: far_apart(arrays)),
    OpCase("minimum", "minimum", binary(), lambda p, a, b: ac.minimum(a, b), lambda p, a, b: np.minimum(a, b),
           elements=GRID, smooth_elements=SMOOTH, safe=lambda p, arrays: far_apart(arrays)),
    OpCase("where", "where", draw_where, lambda p, a, b: ac.where(p["condition"], a, b),
           lambda p, a, b: np.where(p["condition"], a, b)),
    # matrix product
    OpCase("matmul", "matmul", draw_matmul, lambda p, a, b: a @ b, lambda p, a, b: a @ b),
    OpCase("standardize", "standardize", draw_standardize, lambda p, x: ac.standardize(x, axis=p["axis"]),
           standardize_reference, elements=WIDE),
    OpCase("linear", "linear", draw_linear, lambda p, x, w, b: ac.linear(x, w, b), lambda p, x, w, b: x @ w.T + b),
    OpCase("linear_no_bias", "linear", lambda data, elements: draw_linear(data, elements, with_bias=False),
           lambda p, x, w: ac.linear(x, w), lambda p, x, w: x @ w.T),
    # reductions
    OpCase("sum", "sum", reduction(), lambda p, a: a.sum(**p), lambda p, a: np.sum(a, **p)),
    OpCase("mean", "mean", reduction(), lambda p, a: a.mean(**p), lambda p, a: np.mean(a, **p)),
    OpCase("max", "max", reduction(), lambda p, a: a.max(**p), lambda p, a: np.max(a, **p), elements=GRID,
           smooth_elements=SMOOTH, kinks=extreme_kinks(np.max), safe=lambda p, arrays: no_near_ties(arrays)),
    OpCase("min", "min", reduction(), lambda p, a: a.min(**p), lambda p, a: np.min(a, **p), elements=GRID,
           smooth_elements=SMOOTH, kinks=extreme_kinks(np.min), safe=lambda p, arrays: no_near_ties(arrays)),
    OpCase("var", "var", var_draw, lambda p, a: a.var(**p), lambda p, a: np.var(a, **p)),
    OpCase("logsumexp", "logsumexp", reduction(), lambda p, a: ac.logsumexp(a, **p), logsumexp_reference, elements=WIDE),
    OpCase("softmax", "softmax", softmax_draw, lambda p, a: ac.softmax(a, **p), softmax_reference, elements=WIDE),
    OpCase("log_softmax", "log_softmax", softmax_draw, lambda p, a: ac.log_softmax(a, **p),
           lambda p, a: np.log(softmax_reference(p, a)), elements=WIDE),
    # shape operations
    OpCase("reshape", "reshape", draw_reshape, lambda p, a: a.reshape(p["shape"]), lambda p, a: a.reshape(p["shape"])),
    OpCase("transpose", "transpose", draw_transpose, lambda p, a: a.transpose(p["axes"]), lambda p, a: a.transpose(p["axes"])),
    OpCase(".T", "transpose", unary(), lambda p, a: a.T, lambda p, a: a.T),
    OpCase("swapaxes", "transpose", unary(shapes(min_dims=2)), lambda p, a: ac.swapaxes(a, 0, -1),
           lambda p, a: np.swapaxes(a, 0, -1)),
    OpCase("broadcast_to", "broadcast_to", draw_broadcast_to, lambda p, a: ac.broadcast_to(a, p["shape"]),
           lambda p, a: np.broadcast_to(a, p["shape"])),
    OpCase("astype float64", "astype", unary(), lambda p, a: ac.astype(a, np.float64), lambda p, a: a),
    # float32 rounds to 7 digits: central differences need a larger step
    OpCase("astype float32", "astype", unary(), lambda p, a: ac.astype(a, np.float32), lambda p, a: a.astype(np.float32),
           eps=1e-3, atol=1e-3, rtol=1e-3, tags={"lossy"}),
    OpCase("getitem", "getitem", draw_index, lambda p, a: a[p["index"]], lambda p, a: a[p["index"]]),
    OpCase("scatter", "scatter", draw_scatter, lambda p, g: ops.scatter(g, shape=p["shape"], index=p["index"]), scatter_reference),
    OpCase("concatenate", "concatenate", draw_concat, lambda p, *xs: ac.concatenate(xs, axis=p["axis"]),
           lambda p, *xs: np.concatenate(xs, axis=p["axis"])),
    OpCase("stack", "stack", draw_stack, lambda p, *xs: ac.stack(xs, axis=p["axis"]),
           lambda p, *xs: np.stack(xs, axis=p["axis"])),
]



def draw_cross_entropy(data, elements):
    shape = data.draw(shapes(min_dims=1))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    targets = array_of(data, shape, st.floats(0.0, 1.0))  # class weights / probabilities
    return [array_of(data, shape, elements), targets], {"axis": axis}


def cross_entropy_reference(params, x, y):
    return -(y * np.log(softmax_reference(params, x))).sum(axis=params["axis"])


if hasattr(ops, "softmax_cross_entropy"):
    ALL_CASES.append(
        OpCase("softmax_cross_entropy", "softmax_cross_entropy", draw_cross_entropy,
               lambda p, x, y: ops.softmax_cross_entropy(x, y, axis=p["axis"]), cross_entropy_reference, elements=WIDE)
    )

def draw_binary_cross_entropy(data, elements):
    shape = data.draw(shapes())
    probs = array_of(data, shape, elements)
    targets = array_of(data, shape, st.floats(0.0, 1.0))
    return [probs, targets], {}


def binary_cross_entropy_reference(params, p, y):
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


ALL_CASES.append(
    OpCase("binary_cross_entropy", "binary_cross_entropy", draw_binary_cross_entropy,
           lambda p, x, y: ac.binary_cross_entropy(x, y), binary_cross_entropy_reference,
           elements=st.floats(0.1, 0.9))
)


# ==========================================================================
# The operations of ops_math.py and ops_select.py
# ==========================================================================
FIVE_GRID = st.integers(-24, 24).map(lambda k: k / 4)  # quarter steps over [-6, 6]: every kink of the hard activations
UNIT = st.floats(-0.9, 0.9)  # inside the domain of arcsin, arccos, arctanh
ABOVE_ONE = st.floats(1.1, 3.0)


def kinks_at(points, convention):
    """At x in `points` the gradient is `convention(x)` (PyTorch's), times the upstream weight."""

    def kinks(params, arrays, w):
        (x,) = arrays
        at = np.isin(x, points)
        return [(at, np.broadcast_to(w, x.shape) * convention(x))]

    return kinks


def away_from(points, bound=1e-3):
    return lambda p, arrays: bool(np.all(np.abs(arrays[0][..., None] - np.asarray(points)) > bound))


def _numpy_hardswish_grad(x):
    return np.where(x <= -3, 0.0, np.where(x < 3, x / 3 + 0.5, 1.0))


def _softplus_np(x):
    return np.logaddexp(0, x)


def draw_lerp(data, elements):
    result = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=3, max_dims=3, max_side=3))
    return [array_of(data, s, elements) for s in result.input_shapes], {}


def std_draw(data, elements):
    arrays, params = var_draw(data, elements)
    (x,) = arrays
    axis = params["axis"]
    # a near-constant group makes 1/std huge: central differences lose their digits there
    assume(x.size > 1 and bool(np.all(x.var(axis=axis) > 0.05)))
    return arrays, params


def one_axis_draw(min_dims=1, distinct=False, max_side=4):
    def draw(data, elements):
        shape = data.draw(shapes(min_dims=min_dims, max_side=max_side))
        axis = data.draw(st.integers(-len(shape), len(shape) - 1))
        if distinct:  # far apart (0.3 at least): a tie is a kink of sort (see test_engine_more_ops.py)
            size = int(np.prod(shape))
            ranks = np.array(data.draw(st.permutations(range(size))), dtype=np.float64).reshape(shape)
            x = (ranks - size / 2) * 0.4 + array_of(data, shape, st.floats(0.0, 0.1))
        else:
            x = array_of(data, shape, elements)
        return [x], {"axis": axis}

    return draw


def draw_sort(data, elements):
    arrays, params = one_axis_draw(distinct=True)(data, elements)  # ties: see test_engine_more_ops.py
    params["descending"] = data.draw(st.booleans())
    return arrays, params


def draw_topk(data, elements):
    arrays, params = one_axis_draw(distinct=True)(data, elements)
    params["k"] = data.draw(st.integers(0, arrays[0].shape[params["axis"]]))
    params["largest"] = data.draw(st.booleans())
    return arrays, params


def topk_reference(p, x):
    order = np.argsort(-x if p["largest"] else x, axis=p["axis"], kind="stable")
    return np.take_along_axis(x, np.take(order, range(p["k"]), axis=p["axis"]), axis=p["axis"])


def draw_gather(data, elements):
    shape = data.draw(shapes(min_dims=1, max_side=4))
    axis = data.draw(st.integers(0, len(shape) - 1))
    index_shape = tuple(data.draw(st.integers(1, 4)) if k == axis else data.draw(st.integers(1, n)) for k, n in enumerate(shape))
    index = data.draw(hnp.arrays(np.int64, index_shape, elements=st.integers(0, shape[axis] - 1)))
    return [array_of(data, shape, elements)], {"axis": axis, "index": index}


def gather_reference(p, x):
    index, axis = p["index"], p["axis"]
    others = tuple(slice(None) if k == axis else slice(0, n) for k, n in enumerate(index.shape))
    return np.take_along_axis(x[others], index, axis=axis)


def draw_scatter_add(data, elements):
    (x,), params = draw_gather(data, elements)
    index = params["index"]
    src_shape = tuple(n + data.draw(st.integers(0, 1)) for n in index.shape)  # src may be larger than index
    return [x, array_of(data, src_shape, elements)], params


def scatter_add_reference(p, x, src):
    out = x.copy()
    index, axis = p["index"], p["axis"]
    for position in np.ndindex(index.shape):  # the definition, element by element (a test: small arrays)
        target = list(position)
        target[axis] = index[position]
        out[tuple(target)] += src[position]
    return out


def draw_roll(data, elements):
    shape = data.draw(shapes(min_dims=1))
    kind = data.draw(st.sampled_from(["flat", "one axis", "two axes"]))
    if kind == "flat" or len(shape) < 2 and kind == "two axes":
        return [array_of(data, shape, elements)], {"shift": data.draw(st.integers(-4, 4)), "axis": None}
    if kind == "one axis":
        return [array_of(data, shape, elements)], {"shift": data.draw(st.integers(-4, 4)), "axis": data.draw(st.integers(-len(shape), len(shape) - 1))}
    return [array_of(data, shape, elements)], {"shift": (data.draw(st.integers(-3, 3)), data.draw(st.integers(-3, 3))), "axis": (0, -1)}


def draw_repeat(data, elements):
    shape = data.draw(shapes(min_dims=0))
    axis = None if not shape or data.draw(st.booleans()) else data.draw(st.integers(-len(shape), len(shape) - 1))
    n = int(np.prod(shape)) if axis is None else shape[axis]
    repeats = data.draw(st.one_of(st.integers(0, 3), st.lists(st.integers(0, 3), min_size=n, max_size=n)))
    return [array_of(data, shape, elements)], {"repeats": repeats, "axis": axis}


def draw_tile(data, elements):
    shape = data.draw(shapes(min_dims=0))
    reps = tuple(data.draw(st.lists(st.integers(1, 3), min_size=1, max_size=3)))
    return [array_of(data, shape, elements)], {"reps": reps}


def draw_diag(data, elements):
    shape = data.draw(shapes(min_dims=1, max_dims=2, max_side=4))
    return [array_of(data, shape, elements)], {"k": data.draw(st.integers(-2, 2))}


def draw_triangle(data, elements):
    shape = data.draw(shapes(min_dims=2, max_dims=3, max_side=4))
    return [array_of(data, shape, elements)], {"k": data.draw(st.integers(-2, 2))}


EINSUM_SPECS = [
    ("ij,jk->ik", [(2, 3), (3, 4)]),
    ("bqd,bkd->bqk", [(2, 3, 2), (2, 4, 2)]),
    ("i,i->", [(3,), (3,)]),
    ("ij->j", [(3, 2)]),
    ("ij->", [(2, 3)]),
    ("ij->ji", [(2, 3)]),
    ("i,j->ij", [(2,), (3,)]),
    ("ij,k->ijk", [(2, 3), (2,)]),
    ("...ij,...jk->...ik", [(2, 2, 3), (3, 2)]),
    ("bij,bjk", [(2, 2, 3), (2, 3, 2)]),
    ("ij,jk,kl->il", [(2, 3), (3, 2), (2, 2)]),
    ("ij,j->i", [(2, 3), (1,)]),  # a length-1 axis broadcast against 3
]


def draw_einsum(data, elements):
    spec, shapes_ = data.draw(st.sampled_from(EINSUM_SPECS))
    return [array_of(data, s, elements) for s in shapes_], {"spec": spec}


def einsum_reference(p, *arrays):
    return np.einsum(p["spec"], *arrays)


def _repeat_reference(p, x):
    return np.repeat(x, p["repeats"], axis=p["axis"])


_between = lambda x, lo, hi: ((x > lo) & (x < hi)) * 1.0  # noqa: E731

ALL_CASES += [
    # elementwise math (ops_math.py)
    OpCase("sin", "sin", unary(), lambda p, a: a.sin(), lambda p, a: np.sin(a), elements=WIDE),
    OpCase("cos", "cos", unary(), lambda p, a: a.cos(), lambda p, a: np.cos(a), elements=WIDE),
    OpCase("tan", "tan", unary(), lambda p, a: a.tan(), lambda p, a: np.tan(a), elements=st.floats(-1.2, 1.2)),
    OpCase("arcsin", "arcsin", unary(), lambda p, a: ac.arcsin(a), lambda p, a: np.arcsin(a), elements=UNIT),
    OpCase("arccos", "arccos", unary(), lambda p, a: ac.arccos(a), lambda p, a: np.arccos(a), elements=UNIT),
    OpCase("arctan", "arctan", unary(), lambda p, a: a.arctan(), lambda p, a: np.arctan(a), elements=WIDE),
    OpCase("sinh", "sinh", unary(), lambda p, a: a.sinh(), lambda p, a: np.sinh(a)),
    OpCase("cosh", "cosh", unary(), lambda p, a: a.cosh(), lambda p, a: np.cosh(a)),
    OpCase("arcsinh", "arcsinh", unary(), lambda p, a: a.arcsinh(), lambda p, a: np.arcsinh(a), elements=WIDE),
    OpCase("arccosh", "arccosh", unary(), lambda p, a: a.arccosh(), lambda p, a: np.arccosh(a), elements=ABOVE_ONE),
    OpCase("arctanh", "arctanh", unary(), lambda p, a: a.arctanh(), lambda p, a: np.arctanh(a), elements=UNIT),
    OpCase("log2", "log2", unary(), lambda p, a: a.log2(), lambda p, a: np.log2(a), elements=POSITIVE),
    OpCase("log10", "log10", unary(), lambda p, a: a.log10(), lambda p, a: np.log10(a), elements=POSITIVE),
    OpCase("exp2", "exp2", unary(), lambda p, a: a.exp2(), lambda p, a: np.exp2(a), elements=WIDE),
    OpCase("rsqrt", "rsqrt", unary(), lambda p, a: a.rsqrt(), lambda p, a: 1 / np.sqrt(a), elements=POSITIVE),
    OpCase("sign", "sign", unary(), lambda p, a: a.sign(), lambda p, a: np.sign(a), elements=GRID,
           smooth_elements=AWAY_FROM_ZERO, kinks=kinks_at([0.0], lambda x: 0.0)),
    OpCase("logaddexp", "logaddexp", binary(), lambda p, a, b: ac.logaddexp(a, b), lambda p, a, b: np.logaddexp(a, b), elements=WIDE),
    OpCase("lerp", "lerp", draw_lerp, lambda p, s, e, w: ac.lerp(s, e, w), lambda p, s, e, w: s + w * (e - s)),
    OpCase("lerp number weight", "lerp", binary(), lambda p, s, e: ac.lerp(s, e, 0.3), lambda p, s, e: s + 0.3 * (e - s)),
    # activations: PyTorch's gradients at the kinks
    OpCase("relu6", "relu6", unary(), lambda p, a: ac.relu6(a), lambda p, a: np.clip(a, 0, 6), elements=FIVE_GRID,
           smooth_elements=st.floats(-2, 8), kinks=kinks_at([0.0, 6.0], lambda x: 0.0), safe=away_from([0.0, 6.0])),
    OpCase("hardtanh", "hardtanh", unary(), lambda p, a: ac.hardtanh(a, -1.0, 1.5), lambda p, a: np.clip(a, -1.0, 1.5),
           elements=GRID, smooth_elements=SMOOTH, kinks=kinks_at([-1.0, 1.5], lambda x: 0.0), safe=away_from([-1.0, 1.5])),
    OpCase("hardsigmoid", "hardsigmoid", unary(), lambda p, a: ac.hardsigmoid(a), lambda p, a: np.clip(a / 6 + 0.5, 0, 1),
           elements=FIVE_GRID, smooth_elements=st.floats(-5, 5), kinks=kinks_at([-3.0, 3.0], lambda x: 0.0),
           safe=away_from([-3.0, 3.0])),
    OpCase("hardswish", "hardswish", unary(), lambda p, a: ac.hardswish(a), lambda p, a: a * np.clip(a / 6 + 0.5, 0, 1),
           elements=FIVE_GRID, smooth_elements=st.floats(-5, 5), kinks=kinks_at([-3.0, 3.0], _numpy_hardswish_grad),
           safe=away_from([-3.0, 3.0])),
    OpCase("mish", "mish", unary(), lambda p, a: ac.mish(a), lambda p, a: a * np.tanh(_softplus_np(a)), elements=WIDE),
    OpCase("celu", "celu", unary(), lambda p, a: ac.celu(a, alpha=1.5), lambda p, a: np.where(a > 0, a, 1.5 * np.expm1(a / 1.5)),
           elements=GRID, smooth_elements=AWAY_FROM_ZERO, kinks=kinks_at([0.0], lambda x: 1.0)),
    OpCase("softsign", "softsign", unary(), lambda p, a: ac.softsign(a), lambda p, a: a / (1 + np.abs(a)), elements=WIDE),
    OpCase("logsigmoid", "logsigmoid", unary(), lambda p, a: ac.logsigmoid(a), lambda p, a: -np.log1p(np.exp(-a)), elements=WIDE),
    # statistics and selection (ops_select.py)
    OpCase("std", "std", std_draw, lambda p, a: a.std(**p), lambda p, a: np.std(a, **p), elements=WIDE),
    OpCase("prod (zeros included)", "prod", reduction(), lambda p, a: a.prod(**p), lambda p, a: np.prod(a, **p), elements=GRID),
    OpCase("cumsum", "cumsum", one_axis_draw(), lambda p, a: a.cumsum(p["axis"]), lambda p, a: np.cumsum(a, axis=p["axis"])),
    OpCase("cumsum flattened", "cumsum", unary(), lambda p, a: ac.cumsum(a), lambda p, a: np.cumsum(a)),
    OpCase("cumprod (zeros included)", "cumprod", one_axis_draw(), lambda p, a: a.cumprod(p["axis"]),
           lambda p, a: np.cumprod(a, axis=p["axis"]), elements=GRID),
    OpCase("sort", "sort", draw_sort, lambda p, a: ac.sort(a, **p),
           lambda p, a: np.flip(np.sort(a, axis=p["axis"]), axis=p["axis"]) if p["descending"] else np.sort(a, axis=p["axis"])),
    OpCase("topk", "topk", draw_topk, lambda p, a: ac.topk(a, **p)[0], topk_reference),
    # attention blocks
    OpCase("einsum", "einsum", draw_einsum, lambda p, *xs: ac.einsum(p["spec"], *xs), einsum_reference),
    OpCase("tril", "tril", draw_triangle, lambda p, a: ac.tril(a, p["k"]), lambda p, a: np.tril(a, p["k"])),
    OpCase("triu", "triu", draw_triangle, lambda p, a: a.triu(p["k"]), lambda p, a: np.triu(a, p["k"])),
    # indexing
    OpCase("gather", "gather", draw_gather, lambda p, a: ac.gather(a, p["axis"], p["index"]), gather_reference),
    OpCase("scatter_add", "scatter_add", draw_scatter_add, lambda p, a, s: ac.scatter_add(a, p["axis"], p["index"], s),
           scatter_add_reference),
    OpCase("roll", "roll", draw_roll, lambda p, a: ac.roll(a, p["shift"], p["axis"]), lambda p, a: np.roll(a, p["shift"], p["axis"])),
    OpCase("repeat", "repeat", draw_repeat, lambda p, a: ac.repeat(a, p["repeats"], p["axis"]), _repeat_reference),
    OpCase("tile", "tile", draw_tile, lambda p, a: ac.tile(a, p["reps"]), lambda p, a: np.tile(a, p["reps"])),
    OpCase("diag", "diag", draw_diag, lambda p, a: ac.diag(a, p["k"]), lambda p, a: np.diag(a, p["k"])),
]


# ==========================================================================
# Rounding, remainders and rounded quotients (ops_rounding.py)
# ==========================================================================
# a quotient kept at least 0.1 from a whole number: every rounding step and remainder jump is far
OFF_WHOLE = st.integers(-3, 2).flatmap(lambda k: st.floats(k + 0.1, k + 0.9))
# for round(x, decimals): x * 10**decimals kept at least 0.05 from a half (where round jumps)
OFF_HALF = st.integers(-8, 8).flatmap(lambda k: st.floats(k / 4 + 0.05, k / 4 + 0.2))
WHOLE_NUMBERS = [float(k) for k in range(-3, 4)]


def draw_round(data, elements):
    shape = data.draw(shapes())
    decimals = data.draw(st.sampled_from([0, 1, 2, -1]))
    # drawn in units of 10**-decimals, so the grid's halves are round's jumps and OFF_HALF stays away from them
    return [np.asarray(array_of(data, shape, elements) * 10.0 ** -decimals)], {"decimals": decimals}


def round_kinks(params, arrays, w):
    (x,) = arrays
    scaled = np.abs(x * 10.0 ** params["decimals"])
    at_jump = np.abs(scaled % 1 - 0.5) < 1e-6
    return [(at_jump, np.zeros_like(x))]  # PyTorch's gradient at the jump: 0, as everywhere


def draw_quotient(data, elements):
    """a and b with a / b = a drawn quotient (`elements`), b away from 0; b broadcasts against a."""
    result = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3))
    b = array_of(data, result.input_shapes[1], NONZERO)
    quotient = array_of(data, result.result_shape, elements)
    return [np.asarray(quotient * b), b], {}  # (0-d stays an array)


def draw_number_over(data, elements):
    """b for `2.5 % b` and `2.5 // b`: 2.5 / b kept 0.1 from a whole number."""
    shape = data.draw(shapes())
    quotient = array_of(data, shape, st.sampled_from([1, -1]).flatmap(lambda s: st.floats(0.9, 11.9).filter(
        lambda q: abs(q - np.round(q)) > 0.1).map(lambda q: s * q)))
    return [np.asarray(2.5 / quotient)], {}


ALL_CASES += [
    # rounding: steps, gradient 0 (PyTorch's at the jumps too)
    OpCase("floor", "floor", unary(), lambda p, a: a.floor(), lambda p, a: np.floor(a), elements=GRID,
           smooth_elements=OFF_WHOLE, kinks=kinks_at(WHOLE_NUMBERS, lambda x: 0.0)),
    OpCase("ceil", "ceil", unary(), lambda p, a: ac.ceil(a), lambda p, a: np.ceil(a), elements=GRID,
           smooth_elements=OFF_WHOLE, kinks=kinks_at(WHOLE_NUMBERS, lambda x: 0.0)),
    OpCase("trunc", "trunc", unary(), lambda p, a: a.trunc(), lambda p, a: np.trunc(a), elements=GRID,
           smooth_elements=OFF_WHOLE, kinks=kinks_at(WHOLE_NUMBERS, lambda x: 0.0)),
    OpCase("round", "round", draw_round, lambda p, a: a.round(p["decimals"]), lambda p, a: np.round(a, p["decimals"]),
           elements=GRID, smooth_elements=OFF_HALF, kinks=round_kinks),
    # remainders (d/da = 1, d/db = -trunc or -floor of a / b) and rounded quotients (gradient 0)
    OpCase("fmod", "fmod", draw_quotient, lambda p, a, b: ac.fmod(a, b), lambda p, a, b: np.fmod(a, b), elements=OFF_WHOLE),
    OpCase("remainder (a % b)", "remainder", draw_quotient, lambda p, a, b: a % b, lambda p, a, b: np.remainder(a, b),
           elements=OFF_WHOLE),
    OpCase("rmod number % Value", "remainder", draw_number_over, lambda p, b: 2.5 % b, lambda p, b: np.remainder(2.5, b)),
    OpCase("floor_divide (a // b)", "floor_divide", draw_quotient, lambda p, a, b: a // b,
           lambda p, a, b: np.floor_divide(a, b), elements=OFF_WHOLE),
    OpCase("rfloordiv number // Value", "floor_divide", draw_number_over, lambda p, b: 2.5 // b,
           lambda p, b: np.floor_divide(2.5, b)),
    OpCase("div rounding_mode='floor'", "floor_divide", draw_quotient, lambda p, a, b: ac.div(a, b, rounding_mode="floor"),
           lambda p, a, b: np.floor_divide(a, b), elements=OFF_WHOLE),
    OpCase("div rounding_mode='trunc'", "trunc_divide", draw_quotient, lambda p, a, b: ac.div(a, b, rounding_mode="trunc"),
           lambda p, a, b: np.trunc(a / b), elements=OFF_WHOLE),
]


# ==========================================================================
# Scans and windows along one axis (ops_scan.py)
# ==========================================================================
draw_cumulative_extreme = one_axis_draw(distinct=True)  # (no ties: they are tested against PyTorch on their own)


def draw_windows(data, elements):
    shape = data.draw(shapes(min_dims=1, max_side=5))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    size = data.draw(st.integers(0, shape[axis]))
    return [array_of(data, shape, elements)], {"axis": axis, "size": size, "step": data.draw(st.integers(1, 3))}


def windows_reference(p, x):
    axis, size, step = p["axis"] % x.ndim, p["size"], p["step"]
    count = (x.shape[axis] - size) // step + 1
    stacked = np.stack([np.take(x, np.arange(j * step, j * step + size), axis=axis) for j in range(count)], axis=axis)
    return np.moveaxis(stacked, axis + 1, -1)  # (..., count, size along axis + 1, ...) -> the window's elements last


ALL_CASES += [
    OpCase("cummax", "cummax", draw_cumulative_extreme, lambda p, a: ac.cummax(a, p["axis"]).values,
           lambda p, a: np.maximum.accumulate(a, axis=p["axis"])),
    OpCase("cummin", "cummin", draw_cumulative_extreme, lambda p, a: a.cummin(p["axis"])[0],
           lambda p, a: np.minimum.accumulate(a, axis=p["axis"])),
    OpCase("cummax flattened", "cummax", draw_cumulative_extreme, lambda p, a: ac.cummax(a).values,
           lambda p, a: np.maximum.accumulate(a.ravel())),
    OpCase("logcumsumexp", "logcumsumexp", one_axis_draw(), lambda p, a: ac.logcumsumexp(a, p["axis"]),
           lambda p, a: np.log(np.cumsum(np.exp(a), axis=p["axis"])), elements=WIDE),
    OpCase("logcumsumexp flattened", "logcumsumexp", unary(), lambda p, a: a.logcumsumexp(),
           lambda p, a: np.log(np.cumsum(np.exp(a.ravel()))), elements=WIDE),
    OpCase("windows", "windows", draw_windows, lambda p, a: a.windows(p["axis"], p["size"], p["step"]), windows_reference),
]


# ==========================================================================
# PyTorch's scatter and scatter_reduce (ops_scatter.py)
# ==========================================================================
def draw_scatter_elements(data, elements, number_src=False):
    """x, an index whose targets along the axis differ within each line (PyTorch keeps the last of
    repeats only in practice: repeats are tested on their own), and src at least index's size."""
    shape = data.draw(shapes(min_dims=1, max_side=4))
    axis = data.draw(st.integers(0, len(shape) - 1))
    index_shape = tuple(data.draw(st.integers(1, n)) for n in shape)
    seed = data.draw(st.integers(0, 2**32 - 1))
    lines = list(index_shape)
    lines[axis] = shape[axis]
    targets = np.argsort(np.random.default_rng(seed).random(lines), axis=axis)  # a permutation per line
    index = np.take(targets, np.arange(index_shape[axis]), axis=axis)
    params = {"axis": axis, "index": index}
    if number_src:
        return [array_of(data, shape, elements)], dict(params, value=data.draw(st.sampled_from([0.5, -2.0])))
    src_shape = tuple(n + data.draw(st.integers(0, 1)) for n in index_shape)
    return [array_of(data, shape, elements), array_of(data, src_shape, elements)], params


def scatter_elements_reference(p, x, src=None):
    out = x.copy()
    index, axis = p["index"], p["axis"]
    for position in np.ndindex(index.shape):  # the definition, element by element
        target = list(position)
        target[axis] = index[position]
        out[tuple(target)] = p["value"] if src is None else src[position]
    return out


def draw_scatter_reduce(reductions, distinct=False):
    def draw(data, elements):
        arrays, params = draw_scatter_add(data, elements)  # repeated targets: values are combined
        if distinct:  # every value of x and src its own, 0.3 apart at least: no ties for amax / amin
            sizes = [a.size for a in arrays]
            ranks = np.array(data.draw(st.permutations(range(sum(sizes)))), dtype=np.float64)
            values = (ranks - sum(sizes) / 2) * 0.4 + array_of(data, (sum(sizes),), st.floats(0.0, 0.1))
            arrays = [values[:sizes[0]].reshape(arrays[0].shape), values[sizes[0]:].reshape(arrays[1].shape)]
        params["reduce"] = data.draw(st.sampled_from(reductions))
        params["include_self"] = data.draw(st.booleans())
        return arrays, params

    return draw


_REDUCE_OF = {"sum": np.sum, "prod": np.prod, "mean": np.mean, "amax": np.max, "amin": np.min}


def scatter_reduce_reference(p, x, src):
    index, axis = p["index"], p["axis"]
    landing = {}
    for position in np.ndindex(index.shape):  # the definition: gather the values landing on each element
        target = list(position)
        target[axis] = index[position]
        landing.setdefault(tuple(target), [x[tuple(target)]] if p["include_self"] else []).append(src[position])
    out = x.copy()
    for target, values in landing.items():
        out[target] = _REDUCE_OF[p["reduce"]](values)
    return out


def build_scatter_reduce(p, x, src):
    return ac.scatter_reduce(x, p["axis"], p["index"], src, p["reduce"], include_self=p["include_self"])


ALL_CASES += [
    OpCase("scatter (PyTorch's)", "scatter_elements", draw_scatter_elements,
           lambda p, a, s: ac.scatter(a, p["axis"], p["index"], s), scatter_elements_reference),
    OpCase("scatter of a number", "scatter_elements", lambda data, elements: draw_scatter_elements(data, elements, True),
           lambda p, a: a.scatter(p["axis"], p["index"], p["value"]), scatter_elements_reference),
    OpCase("scatter reduce='multiply'", "scatter_reduce", draw_scatter_add,
           lambda p, a, s: ac.scatter(a, p["axis"], p["index"], s, reduce="multiply"),
           lambda p, a, s: scatter_reduce_reference(dict(p, reduce="prod", include_self=True), a, s), elements=GRID),
    OpCase("scatter reduce='add'", "scatter_add", draw_scatter_add,
           lambda p, a, s: a.scatter(p["axis"], p["index"], s, reduce="add"), scatter_add_reference),
    OpCase("scatter_reduce sum, mean", "scatter_reduce", draw_scatter_reduce(["sum", "mean"]), build_scatter_reduce,
           scatter_reduce_reference),
    OpCase("scatter_reduce prod (zeros included)", "scatter_reduce", draw_scatter_reduce(["prod"]), build_scatter_reduce,
           scatter_reduce_reference, elements=GRID),
    # continuous values: no ties (ties share evenly, tested against PyTorch on their own)
    OpCase("scatter_reduce amax, amin", "scatter_reduce", draw_scatter_reduce(["amax", "amin"], distinct=True), build_scatter_reduce,
           scatter_reduce_reference),
]


CASES_BY_ID = {case.id: case for case in ALL_CASES}


def operation_modules():
    """The engine's modules that declare operations (ops.py imports every one)."""
    return [module for name, module in sorted(sys.modules.items())
            if name.startswith("autograd_core.") and any(isinstance(v, ops.Op) for v in vars(module).values())]


def all_registered_ops():
    """Every Op object the engine defines: the OPS registry plus any Op bound
    at module level (two ops may share a display name, like the two pows)."""
    found = {id(op): op for op in ops.OPS.values()}
    for module in operation_modules():
        for value in vars(module).values():
            if isinstance(value, ops.Op):
                found[id(value)] = value
    return list(found.values())


def ops_in_graph(root):
    """The Op objects of every node behind `root`."""
    found = {}
    for node in ac.topological_order([root]):
        op = node._op
        if op is not None:
            found[id(op)] = op
    return found


# ---- convolution, pooling, padding (autograd_core.conv) ------------------------
# References are written out with loops over output pixels (small shapes), so
# they share nothing with the engine's im2col. GRID values keep every sum
# exact; max pooling gets distinct values (no ties) from a permutation.
from autograd_core import conv as conv_ops  # noqa: E402  (registers the operations)


def conv_reference(params, x, w, b=None):
    stride, dilation, groups, pads = params["stride"], params["dilation"], params["groups"], params["pads"]
    nd = x.ndim - 2
    xp = np.pad(x, [(0, 0), (0, 0)] + list(pads))
    out_ch, in_per_group = w.shape[:2]
    kernel = w.shape[2:]
    out_sizes = [(xp.shape[2 + k] - dilation[k] * (kernel[k] - 1) - 1) // stride[k] + 1 for k in range(nd)]
    y = np.zeros((x.shape[0], out_ch, *out_sizes))
    per_group_out = out_ch // groups
    for o in range(out_ch):
        first = (o // per_group_out) * in_per_group
        for pos in np.ndindex(*out_sizes):
            window = xp[(slice(None), slice(first, first + in_per_group)) + tuple(
                slice(pos[k] * stride[k], pos[k] * stride[k] + dilation[k] * (kernel[k] - 1) + 1, dilation[k])
                for k in range(nd))]
            y[(slice(None), o) + pos] = (window * w[o]).reshape(x.shape[0], -1).sum(axis=1)
    if b is not None:
        y += b.reshape((1, -1) + (1,) * nd)
    return y


def draw_conv(nd):
    def draw(data, elements):
        groups = data.draw(st.sampled_from([1, 2]))
        in_per_group, out_per_group = data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2))
        kernel = tuple(data.draw(st.integers(1, 3)) for _ in range(nd))
        stride = tuple(data.draw(st.integers(1, 2)) for _ in range(nd))
        dilation = tuple(data.draw(st.integers(1, 2)) for _ in range(nd))
        same = all(s == 1 for s in stride) and data.draw(st.booleans())
        if same:
            padding = "same"
            pads = tuple(((d * (k - 1)) // 2, d * (k - 1) - (d * (k - 1)) // 2) for k, d in zip(kernel, dilation))
        else:
            padding = tuple(data.draw(st.integers(0, 2)) for _ in range(nd))
            pads = tuple((p, p) for p in padding)
        sizes = tuple(
            max(1, d * (k - 1) + 1 - lo - hi + data.draw(st.integers(0, 2)))
            for k, d, (lo, hi) in zip(kernel, dilation, pads)
        )
        x = array_of(data, (data.draw(st.integers(1, 2)), groups * in_per_group) + sizes, elements)
        w = array_of(data, (groups * out_per_group, in_per_group) + kernel, elements)
        arrays = [x, w]
        if data.draw(st.booleans()):
            arrays.append(array_of(data, (groups * out_per_group,), elements))
        params = {"stride": stride, "dilation": dilation, "groups": groups, "padding": padding, "pads": pads}
        return arrays, params

    return draw


def build_conv(fn):
    def build(p, x, w, b=None):
        return fn(x, w, b, stride=p["stride"], padding=p["padding"], dilation=p["dilation"], groups=p["groups"])

    return build


def draw_pool(with_dilation):
    def draw(data, elements):
        kernel = (data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)))
        stride = (data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)))
        dilation = (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2))) if with_dilation else (1, 1)
        padding = tuple(data.draw(st.integers(0, (d * (k - 1) + 1) // 2)) for k, d in zip(kernel, dilation))
        sizes = tuple(d * (k - 1) + 1 + data.draw(st.integers(0, 3)) for k, d in zip(kernel, dilation))
        shape = (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2))) + sizes
        if with_dilation:  # distinct values, far apart: no ties for the maximum
            seed = data.draw(st.integers(0, 2**32 - 1))
            x = np.random.default_rng(seed).permutation(math.prod(shape)).reshape(shape) * 0.25 - 1.0
        else:
            x = array_of(data, shape, elements)
        params = {"kernel_size": kernel, "stride": stride, "padding": padding, "ceil_mode": data.draw(st.booleans())}
        if with_dilation:
            params["dilation"] = dilation
        else:
            params["count_include_pad"] = data.draw(st.booleans())
        return [x], params

    return draw


def _pool_windows(p, x):
    """Per output pixel: the index of its window (clipped to the input) and the
    window's extent in the padded input (clipped to it), PyTorch's bounds."""
    kernel, stride, padding = p["kernel_size"], p["stride"], p["padding"]
    dilation = p.get("dilation", (1, 1))
    counts = []
    for k in range(2):
        span = dilation[k] * (kernel[k] - 1) + 1
        room = x.shape[2 + k] + 2 * padding[k] - span
        count = -(-room // stride[k]) + 1 if p["ceil_mode"] else room // stride[k] + 1
        if p["ceil_mode"] and (count - 1) * stride[k] >= x.shape[2 + k] + padding[k]:
            count -= 1
        counts.append(count)
    for pos in np.ndindex(*counts):
        taps = []
        extent = 1
        for k in range(2):
            start = pos[k] * stride[k] - padding[k]
            rows = [start + t * dilation[k] for t in range(kernel[k])]
            taps.append([r for r in rows if 0 <= r < x.shape[2 + k]])
            extent *= min(start + kernel[k], x.shape[2 + k] + padding[k]) - start
        yield pos, np.ix_(*taps), extent, counts


def max_pool_reference(p, x):
    out = None
    for pos, index, _, counts in _pool_windows(p, x):
        out = np.zeros(x.shape[:2] + tuple(counts)) if out is None else out
        out[(slice(None), slice(None)) + pos] = x[:, :, index[0], index[1]].max(axis=(2, 3))
    return out


def avg_pool_reference(p, x):
    out = None
    for pos, index, extent, counts in _pool_windows(p, x):
        out = np.zeros(x.shape[:2] + tuple(counts)) if out is None else out
        window = x[:, :, index[0], index[1]]
        divisor = extent if p["count_include_pad"] else window.shape[2] * window.shape[3]
        out[(slice(None), slice(None)) + pos] = window.sum(axis=(2, 3)) / divisor
    return out


def draw_adaptive(data, elements):
    shape = (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2)), data.draw(st.integers(1, 5)), data.draw(st.integers(1, 5)))
    size = (data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4)))
    return [array_of(data, shape, elements)], {"output_size": size}


def adaptive_reference(p, x):
    (oh, ow), (h, w) = p["output_size"], x.shape[2:]
    out = np.zeros(x.shape[:2] + (oh, ow))
    for i, j in np.ndindex(oh, ow):
        rows = slice(i * h // oh, -(-(i + 1) * h // oh))
        cols = slice(j * w // ow, -(-(j + 1) * w // ow))
        out[:, :, i, j] = x[:, :, rows, cols].mean(axis=(2, 3))
    return out


def draw_pad(data, elements):
    mode = data.draw(st.sampled_from(["constant", "reflect", "replicate", "circular"]))
    shape = (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2)), data.draw(st.integers(2, 4)), data.draw(st.integers(2, 4)))
    axes = data.draw(st.integers(1, 2))
    widths = []
    for k in range(axes):
        n = shape[-1 - k]
        limit = {"reflect": n - 1, "circular": n}.get(mode, n + 3)  # replicate and constant: any width
        widths += [data.draw(st.integers(0, limit)), data.draw(st.integers(0, limit))]
    return [array_of(data, shape, elements)], {"pad": tuple(widths), "mode": mode, "value": 0.5 if mode == "constant" else 0.0}


def pad_reference(p, x):
    widths = p["pad"]
    pairs = [(0, 0)] * (x.ndim - len(widths) // 2) + [(widths[2 * k], widths[2 * k + 1]) for k in reversed(range(len(widths) // 2))]
    out = np.full(tuple(n + lo + hi for n, (lo, hi) in zip(x.shape, pairs)), p["value"])
    # every output position reads the input element its mode maps it to
    for pos in np.ndindex(*out.shape):
        source = []
        for k, (lo, _) in enumerate(pairs):
            i, n = pos[k] - lo, x.shape[k]
            if 0 <= i < n:
                source.append(i)
            elif p["mode"] == "constant":
                source = None
                break
            elif p["mode"] == "reflect":
                source.append(-i if i < 0 else 2 * (n - 1) - i)
            elif p["mode"] == "replicate":
                source.append(min(max(i, 0), n - 1))
            else:
                source.append(i % n)
        if source is not None:
            out[pos] = x[tuple(source)]
    return out


def draw_unfold(data, elements):
    kernel = (data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)))
    params = {"kernel_size": kernel, "dilation": (data.draw(st.integers(1, 2)), 1),
              "padding": (data.draw(st.integers(0, 1)), data.draw(st.integers(0, 1))),
              "stride": (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2)))}
    sizes = tuple(d * (k - 1) + 1 + data.draw(st.integers(0, 2)) for k, d in zip(kernel, params["dilation"]))
    return [array_of(data, (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2))) + sizes, elements)], params


def unfold_reference(p, x):
    # a 1x1-channel convolution per kernel tap picks that tap out of every window
    kh, kw = p["kernel_size"]
    c = x.shape[1]
    columns = []
    for ch in range(c):
        for t in range(kh * kw):
            w = np.zeros((1, 1, kh, kw))
            w.reshape(-1)[t] = 1.0
            y = conv_reference({"stride": p["stride"], "dilation": p["dilation"], "groups": 1,
                                "pads": tuple((q, q) for q in p["padding"])}, x[:, ch:ch + 1], w)
            columns.append(y.reshape(x.shape[0], -1))
    return np.stack(columns, axis=1)


def draw_fold(data, elements):
    (image,), params = draw_unfold(data, elements)
    params = dict(params, output_size=image.shape[2:])
    geo = conv_ops._window_args("fold", image, 4, params["kernel_size"], params["stride"], params["padding"], params["dilation"])
    cols = array_of(data, (image.shape[0], image.shape[1] * math.prod(params["kernel_size"]), math.prod(geo.out_sizes)), elements)
    return [cols], params


def fold_reference(p, cols):
    # fold is unfold's adjoint: <fold(c), x> = <c, unfold(x)> for every x; build it column by column
    c = cols.shape[1] // math.prod(p["kernel_size"])
    shape = (cols.shape[0], c) + tuple(p["output_size"])
    out = np.zeros(shape)
    unfold_params = {k: p[k] for k in ("kernel_size", "dilation", "padding", "stride")}
    for pos in np.ndindex(*shape[1:]):
        basis = np.zeros((1,) + shape[1:])
        basis[(0,) + pos] = 1.0
        picked = unfold_reference(unfold_params, basis)[0]  # where pixel pos lands among the columns
        out[(slice(None),) + pos] = (cols * picked).sum(axis=(1, 2))
    return out


ALL_CASES += [
    OpCase("conv2d", "conv2d", draw_conv(2), build_conv(conv_ops.conv2d), conv_reference, elements=GRID),
    OpCase("conv1d", "conv1d", draw_conv(1), build_conv(conv_ops.conv1d), conv_reference, elements=GRID),
    OpCase("max_pool2d", "max_pool2d", draw_pool(True), lambda p, x: conv_ops.max_pool2d(x, **p), max_pool_reference),
    OpCase("avg_pool2d", "avg_pool2d", draw_pool(False), lambda p, x: conv_ops.avg_pool2d(x, **p), avg_pool_reference,
           elements=GRID),
    OpCase("adaptive_avg_pool2d", "adaptive_avg_pool2d", draw_adaptive,
           lambda p, x: conv_ops.adaptive_avg_pool2d(x, p["output_size"]), adaptive_reference, elements=GRID),
    OpCase("pad", "pad", draw_pad, lambda p, x: conv_ops.pad(x, p["pad"], p["mode"], p["value"]), pad_reference,
           elements=GRID),
    OpCase("unfold", "unfold", draw_unfold, lambda p, x: conv_ops.unfold(x, **p), unfold_reference, elements=GRID),
    OpCase("fold", "fold", draw_fold, lambda p, x: conv_ops.fold(x, **p), fold_reference, elements=GRID),
]


# ---- transposed convolution, interpolation, max unpooling (autograd_core.conv_transpose, .resample) -----------
# References are loops over input (or output) pixels again: a transposed convolution adds each input
# pixel times the kernel onto the output; interpolation reads each output pixel from the place its
# index maps to, with PyTorch's formulas written out per pixel.
from autograd_core import conv_transpose as conv_transpose_ops  # noqa: E402
from autograd_core import resample as resample_ops  # noqa: E402


def draw_conv_transpose(nd):
    def draw(data, elements):
        groups = data.draw(st.sampled_from([1, 2]))
        in_per_group, out_per_group = data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2))
        kernel = tuple(data.draw(st.integers(1, 3)) for _ in range(nd))
        stride = tuple(data.draw(st.integers(1, 3)) for _ in range(nd))
        dilation = tuple(data.draw(st.integers(1, 2)) for _ in range(nd))
        padding = tuple(data.draw(st.integers(0, 2)) for _ in range(nd))
        output_padding = tuple(data.draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
        sizes = tuple(data.draw(st.integers(1, 3)) for _ in range(nd))
        out = [(n - 1) * s - 2 * p + d * (k - 1) + e + 1
               for n, s, p, d, k, e in zip(sizes, stride, padding, dilation, kernel, output_padding)]
        assume(min(out) >= 1)
        x = array_of(data, (data.draw(st.integers(1, 2)), groups * in_per_group) + sizes, elements)
        w = array_of(data, (groups * in_per_group, out_per_group) + kernel, elements)
        arrays = [x, w]
        if data.draw(st.booleans()):
            arrays.append(array_of(data, (groups * out_per_group,), elements))
        params = {"stride": stride, "padding": padding, "output_padding": output_padding, "groups": groups,
                  "dilation": dilation}
        return arrays, params

    return draw


def build_conv_transpose(fn):
    def build(p, x, w, b=None):
        return fn(x, w, b, **p)

    return build


def conv_transpose_reference(p, x, w, b=None):
    nd = x.ndim - 2
    kernel, groups = w.shape[2:], p["groups"]
    stride, padding, dilation, extra = p["stride"], p["padding"], p["dilation"], p["output_padding"]
    out_sizes = [(x.shape[2 + k] - 1) * stride[k] - 2 * padding[k] + dilation[k] * (kernel[k] - 1) + extra[k] + 1
                 for k in range(nd)]
    in_per_group, out_per_group = x.shape[1] // groups, w.shape[1]
    y = np.zeros((x.shape[0], out_per_group * groups, *out_sizes))
    for ci in range(x.shape[1]):
        first_out = (ci // in_per_group) * out_per_group
        for pos in np.ndindex(*x.shape[2:]):
            for tap in np.ndindex(*kernel):
                at = tuple(pos[k] * stride[k] - padding[k] + tap[k] * dilation[k] for k in range(nd))
                if all(0 <= at[k] < out_sizes[k] for k in range(nd)):
                    for co in range(out_per_group):
                        y[(slice(None), first_out + co) + at] += x[(slice(None), ci) + pos] * w[(ci, co) + tap]
    if b is not None:
        y += b.reshape((1, -1) + (1,) * nd)
    return y


def draw_interpolate(data, elements):
    nd = data.draw(st.sampled_from([1, 2]))
    mode = data.draw(st.sampled_from(["nearest", "linear" if nd == 1 else "bilinear"]))
    shape = (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2))) + tuple(data.draw(st.integers(1, 4)) for _ in range(nd))
    params = {"mode": mode, "align_corners": None if mode == "nearest" else data.draw(st.booleans())}
    if data.draw(st.booleans()):
        params["size"] = tuple(data.draw(st.integers(1, 7)) for _ in range(nd))
    else:
        factors = tuple(data.draw(st.sampled_from([0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0])) for _ in range(nd))
        sizes = [math.floor(n * f) for n, f in zip(shape[2:], factors)]
        assume(min(sizes) >= 1)
        # PyTorch's 1-d nearest backward takes shortcuts its forward does not (out == in or 2 in, from another
        # factor): there the engine follows the forward, and its gradient differs from PyTorch's (tested apart)
        assume(not (nd == 1 and mode == "nearest" and sizes[0] in (shape[2], 2 * shape[2]) and factors[0] not in (1.0, 2.0)))
        params["scale_factor"] = factors
        params["recompute_scale_factor"] = data.draw(st.booleans())
    return [array_of(data, shape, elements)], params


def interpolate_reference(p, x):
    """Each output pixel from the input place it maps to: PyTorch's formulas, pixel by pixel (float64)."""
    nd = x.ndim - 2
    if "size" in p:
        sizes, scales = p["size"], (None,) * nd
    else:
        sizes = tuple(math.floor(n * f) for n, f in zip(x.shape[2:], p["scale_factor"]))
        scales = (None,) * nd if p["recompute_scale_factor"] else p["scale_factor"]
    reads = []  # per axis, per output pixel: [(input pixel, weight)]
    for n_in, n_out, scale in zip(x.shape[2:], sizes, scales):
        axis = []
        for j in range(n_out):
            if n_in == n_out and (p["mode"] != "nearest" or nd == 2):
                axis.append([(j, 1.0)])
            elif p["mode"] == "nearest":
                if nd == 2 and n_out == 2 * n_in:
                    axis.append([(j // 2, 1.0)])
                else:
                    ratio = 1 / scale if scale else n_in / n_out
                    axis.append([(min(math.floor(j * ratio), n_in - 1), 1.0)])
            else:
                if p["align_corners"]:
                    src = j * (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
                else:
                    ratio = 1 / scale if scale else n_in / n_out
                    src = max((j + 0.5) * ratio - 0.5, 0.0)
                i0 = min(math.floor(src), n_in - 1)
                lam = min(max(src - i0, 0.0), 1.0)
                axis.append([(i0, 1 - lam), (min(i0 + 1, n_in - 1), lam)])
        reads.append(axis)
    y = np.zeros(x.shape[:2] + tuple(sizes))
    for pos in np.ndindex(*sizes):
        total = 0.0
        for taps in itertools.product(*[reads[k][pos[k]] for k in range(nd)]):
            weight = math.prod(w for _, w in taps)
            total = total + weight * x[(slice(None), slice(None)) + tuple(i for i, _ in taps)]
        y[(slice(None), slice(None)) + pos] = total
    return y


def draw_max_unpool(data, elements):
    kernel = (data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)))
    stride = (data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)))
    padding = tuple(data.draw(st.integers(0, k // 2)) for k in kernel)
    shape = (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2)), data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)))
    default = [(n - 1) * s - 2 * p + k for n, s, p, k in zip(shape[2:], stride, padding, kernel)]
    params = {"kernel_size": kernel, "stride": stride, "padding": padding}
    if data.draw(st.booleans()):  # another size, within a stride of the default (PyTorch's range)
        params["output_size"] = tuple(d + data.draw(st.integers(1 - s, s - 1)) for d, s in zip(default, stride))
    sizes = params.get("output_size", default)
    assume(min(sizes) >= 1 and sizes[0] * sizes[1] >= shape[2] * shape[3])
    # distinct places in each plane: a repeated index has no gradient of its own (the last value wins)
    seed = data.draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    places = np.stack([rng.permutation(sizes[0] * sizes[1])[:shape[2] * shape[3]] for _ in range(shape[0] * shape[1])])
    params["indices"] = places.reshape(shape)
    return [array_of(data, shape, elements)], params


def max_unpool_reference(p, x):
    sizes = p.get("output_size") or tuple((n - 1) * s - 2 * q + k for n, s, q, k in
                                          zip(x.shape[2:], p["stride"], p["padding"], p["kernel_size"]))
    y = np.zeros(x.shape[:2] + tuple(sizes))
    for pos in np.ndindex(*x.shape):
        place = p["indices"][pos]
        y[pos[:2] + (place // sizes[1], place % sizes[1])] = x[pos]
    return y


ALL_CASES += [
    OpCase("conv_transpose2d", "conv_transpose2d", draw_conv_transpose(2),
           build_conv_transpose(conv_transpose_ops.conv_transpose2d), conv_transpose_reference, elements=GRID),
    OpCase("conv_transpose1d", "conv_transpose1d", draw_conv_transpose(1),
           build_conv_transpose(conv_transpose_ops.conv_transpose1d), conv_transpose_reference, elements=GRID),
    OpCase("interpolate", "interpolate", draw_interpolate, lambda p, x: resample_ops.interpolate(x, **p),
           interpolate_reference),
    OpCase("max_unpool2d", "max_unpool2d", draw_max_unpool,
           lambda p, x: resample_ops.max_unpool2d(x, p["indices"], p["kernel_size"], p["stride"], p["padding"],
                                                  p.get("output_size")),
           max_unpool_reference, elements=GRID),
]

CASES_BY_ID = {case.id: case for case in ALL_CASES}
