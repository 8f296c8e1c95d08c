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

import math
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
    op_attr: str | None = None  # the Op's name in ops.py when two Ops share a display name

    @property
    def op_object(self):
        return getattr(ops, self.op_attr) if self.op_attr else ops.OPS[self.op]

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
    OpCase("scatter", "scatter", draw_scatter, lambda p, g: ops.scatter(g, p["shape"], p["index"]), scatter_reference),
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

CASES_BY_ID = {case.id: case for case in ALL_CASES}


def all_registered_ops():
    """Every Op object the engine defines: the OPS registry plus any Op bound
    at module level (two ops may share a display name, like the two pows)."""
    found = {id(op): op for op in ops.OPS.values()}
    for value in vars(ops).values():
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
