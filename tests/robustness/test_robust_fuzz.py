"""Fuzzing the public API with hypothesis.

Random programs (sequences of operations on a pool of Values) over random
shapes (zero-size and broadcasting edge cases included), dtypes (float16/32/64,
ints, bools) and values (0, -0, negatives, 1e300, NaN, Inf, ...). Every
outcome must be one of:

* a correct result: the value equals NumPy's (or, for the functions NumPy does
  not have, the exact value from mpmath rounded to the dtype), with the dtype
  NumPy gives; after backward every gradient has its Value's shape and dtype,
  and in float64 where the function is smooth it equals central differences;
* one of the documented exceptions (ShapeError/ValueError, TypeError,
  IndexError; at backward also GraphFreedError, SavedDataModifiedError,
  RuntimeError for a missing seed gradient) with a message that names the
  operation.

Anything else (a KeyError, an AttributeError, a NumPy error that escapes
unexplained, a wrong number) fails the test.
"""

import math

import mpmath
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import autograd_core as ac
from autograd_core import GraphFreedError, SavedDataModifiedError, Value, no_grad

FUZZ = settings(
    max_examples=1500, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)

OP_ERRORS = (ValueError, TypeError, IndexError)  # ShapeError is a ValueError
BACKWARD_ERRORS = OP_ERRORS + (GraphFreedError, SavedDataModifiedError, RuntimeError)

LEAF_DTYPES = [np.float16, np.float32, np.float64, np.int64, np.int32, np.uint8, np.bool_]
SHAPES = [(), (1,), (3,), (0,), (2, 3), (1, 3), (3, 1), (2, 1, 3), (0, 3), (3, 0), (1, 1)]
SPECIAL = [0.0, -0.0, 1.0, -1.0, 0.5, -2.5, 3.0, 1e4, -1e4, 1e300, -1e300, 1e-300, 65504.0,
           math.nan, math.inf, -math.inf]
TOLERANCE = {np.dtype(np.float16): 4e-3, np.dtype(np.float32): 2e-6, np.dtype(np.float64): 1e-12}


# ---------------------------------------------------------------------------
# drawing data
# ---------------------------------------------------------------------------
def _draw_array(data, shape=None, dtype=None):
    dtype = np.dtype(dtype or data.draw(st.sampled_from(LEAF_DTYPES), label="dtype"))
    shape = shape if shape is not None else data.draw(st.sampled_from(SHAPES), label="shape")
    size = int(np.prod(shape))
    if dtype.kind == "b":
        elements = st.booleans()
    elif dtype.kind in "iu":
        elements = st.integers(0 if dtype.kind == "u" else -5, 200)
    else:
        elements = st.one_of(st.sampled_from(SPECIAL), st.floats(-10, 10, width=16))
    values = data.draw(st.lists(elements, min_size=size, max_size=size), label="values")
    with np.errstate(all="ignore"):
        return np.array(values, dtype=np.float64 if dtype.kind == "f" else None).astype(dtype).reshape(shape)


def _draw_axis(data, ndim):
    choices = [None] + list(range(-ndim, ndim)) + [ndim, -ndim - 1, 1.5, "a", (0, 0)]  # the last five are wrong
    if ndim >= 2:
        choices.append((0, ndim - 1))
    return data.draw(st.sampled_from(choices), label="axis")


# ---------------------------------------------------------------------------
# exact references for the functions NumPy does not have
# ---------------------------------------------------------------------------
mpmath.mp.prec = 113


def _mp(x):
    x = float(x)
    if math.isnan(x):
        return mpmath.mpf("nan")
    return mpmath.mpf(x)


def _mp_array(fn, a):
    flat = [fn(_mp(x)) for x in np.asarray(a, dtype=np.float64).reshape(-1)]
    return np.array([float(v) for v in flat], dtype=np.float64).reshape(np.shape(a))


def _mp_sigmoid(x):
    if mpmath.isnan(x):
        return x
    return 1 / (1 + mpmath.exp(-x))


def _mp_softplus(x):
    if mpmath.isnan(x):
        return x
    return mpmath.log(1 + mpmath.exp(x)) if x < 0 or not mpmath.isinf(x) else x


def _mp_erf(x):
    return x if mpmath.isnan(x) else mpmath.erf(x)


def _mp_logsumexp_rows(a, axes, keepdims, mode):
    """logsumexp / softmax / log_softmax over `axes`, exactly."""
    a = np.asarray(a, dtype=np.float64)
    moved = np.moveaxis(a, axes, tuple(range(a.ndim - len(axes), a.ndim)))
    lead = int(np.prod(moved.shape[: a.ndim - len(axes)]))
    rows = moved.reshape(lead, int(np.prod([a.shape[k] for k in axes])))
    out = []
    for row in rows:
        exps = [mpmath.exp(_mp(v)) if not math.isnan(v) else mpmath.mpf("nan") for v in row]
        total = mpmath.fsum(exps) if exps else mpmath.mpf(0)
        if mode == "logsumexp":
            out.append([float(mpmath.log(total)) if total != 0 else -math.inf])
        elif total == 0 or mpmath.isnan(total):  # a row of -inf (0/0), or a NaN in the row: NaN, as in PyTorch
            out.append([math.nan] * len(exps))
        elif mode == "softmax":
            out.append([float(e / total) for e in exps])
        else:
            out.append([float(mpmath.log(e) - mpmath.log(total)) if e != 0 else -math.inf for e in exps])
    if mode == "logsumexp":
        kept = np.array(out, dtype=np.float64).reshape(moved.shape[: a.ndim - len(axes)])
        if keepdims:
            kept = np.expand_dims(kept, axes)
        return kept
    return np.moveaxis(np.array(out, dtype=np.float64).reshape(moved.shape), tuple(range(a.ndim - len(axes), a.ndim)), axes)


# ---------------------------------------------------------------------------
# the operations a program may use: (name, apply(data, pool) -> (Value, expected))
# `expected` is (array, exact) where exact means "NumPy in the same dtype".
# ---------------------------------------------------------------------------
def _numpy(fn, *args, **kwargs):
    """NumPy's answer, or None where NumPy refuses the arguments."""
    try:
        with np.errstate(all="ignore"):
            return fn(*args, **kwargs)
    except (ValueError, TypeError, IndexError):
        return None


def _pick(data, pool):
    return pool[data.draw(st.integers(0, len(pool) - 1), label="operand")]


def _arr(v):
    return np.asarray(v.data)


def _binary(name, fn, np_fn):
    def apply(data, pool):
        a = _pick(data, pool)
        if data.draw(st.integers(0, 4), label="number operand") == 0:
            number = data.draw(st.sampled_from([2, -1, 0.5, 1e300, 0.0]), label="number")
            result = fn(a, number)
            with np.errstate(all="ignore"):
                return result, _numpy(np_fn, _arr(a), a.dtype.type(number))
        b = _pick(data, pool)
        result = fn(a, b)
        return result, _numpy(np_fn, _arr(a), _arr(b))
    return name, apply


def _unary(name, fn, reference, exact=True):
    def apply(data, pool):
        a = _pick(data, pool)
        with np.errstate(all="ignore"):
            expected = reference(_arr(a))
        return fn(a), (expected if exact else _round_to(expected, a.dtype))
    return name, apply


def _round_to(x, dtype):
    with np.errstate(all="ignore"):
        return np.asarray(x, dtype=np.float64).astype(dtype)


class _Exact:
    """Marks a reference computed exactly (then rounded), compared with a
    tolerance relative to the result and to the input's size (a result near 0
    computed as a difference of numbers near `scale` is good to eps * scale)."""

    def __init__(self, compute, inputs=()):
        self._compute = compute  # computed only when checked (not while replaying a program)
        finite = [np.abs(a[np.isfinite(a)]).max() for a in map(np.asarray, inputs) if np.isfinite(a).any()]
        self.scale = max([1.0] + [float(m) for m in finite])

    @property
    def array(self):
        return self._compute()


def _reduction(name, method, np_fn):
    def apply(data, pool):
        a = _pick(data, pool)
        axis = _draw_axis(data, a.ndim)
        keepdims = data.draw(st.booleans(), label="keepdims")
        result = getattr(a, method)(axis=axis, keepdims=keepdims)
        if a.ndim == 0 and axis in (0, -1, (0, 0)):
            axis = None  # a 0-d input: axis 0 or -1 means all of it (PyTorch's convention)
        return result, _numpy(np_fn, _arr(a), axis=axis, keepdims=keepdims)
    return name, apply


def _var(data, pool):
    a = _pick(data, pool)
    axis = _draw_axis(data, a.ndim)
    ddof = data.draw(st.sampled_from([0, 1]), label="ddof")
    result = a.var(axis=axis, ddof=ddof)
    if a.ndim == 0 and axis in (0, -1):
        axis = None
    return result, _numpy(np.var, _arr(a), axis=axis, ddof=ddof)


def _softmax_family(name, fn, mode):
    def apply(data, pool):
        a = _pick(data, pool)
        if mode == "logsumexp":
            axis = _draw_axis(data, a.ndim)
            keepdims = data.draw(st.booleans(), label="keepdims")
            result = fn(a, axis=axis, keepdims=keepdims)
            if a.ndim == 0:  # axis 0 or -1 of a 0-d input: all of it
                return result, _Exact(lambda: _mp_logsumexp_rows(_arr(a).reshape(1), (0,), False, mode).reshape(()), [_arr(a)])
            axes = tuple(range(a.ndim)) if axis is None else tuple(sorted(k % a.ndim for k in np.atleast_1d(axis)))
            return result, _Exact(lambda: _mp_logsumexp_rows(_arr(a), axes, keepdims, mode), [_arr(a)])
        axis = data.draw(st.sampled_from([-1, 0, a.ndim, None, (0,), 1.5]), label="axis")
        result = fn(a, axis=axis)
        assert isinstance(axis, int), f"{name} accepted axis={axis!r}"
        if a.ndim == 0:  # one element along the axis
            return result, _Exact(lambda: _mp_logsumexp_rows(_arr(a).reshape(1), (0,), False, mode).reshape(()), [_arr(a)])
        return result, _Exact(lambda: _mp_logsumexp_rows(_arr(a), (axis % a.ndim,), False, mode), [_arr(a)])
    return name, apply


def _matmul(data, pool):
    a, b = _pick(data, pool), _pick(data, pool)
    result = a @ b
    return result, _numpy(np.matmul, _arr(a), _arr(b)) if a.ndim and b.ndim else None


def _clip(data, pool):
    a = _pick(data, pool)
    lo = data.draw(st.sampled_from([None, -1.0, 0.0]), label="lo")
    hi = data.draw(st.sampled_from([None, 1.0, 2.5]), label="hi")
    expected = None if lo is None and hi is None else np.clip(_arr(a), lo, hi)
    return a.clip(lo, hi), expected


def _where(data, pool):
    a, b = _pick(data, pool), _pick(data, pool)
    condition = _arr(a) > 0
    result = ac.where(condition, a, b)
    return result, _numpy(np.where, condition, _arr(a), _arr(b))


def _reshape(data, pool):
    a = _pick(data, pool)
    shape = data.draw(st.sampled_from([(-1,), (a.size,), (1, -1), (-1, 1), (3, -1), (2, 2), (), "a", (1.5,)]), label="shape")
    try:
        expected = _arr(a).reshape(shape)
    except (ValueError, TypeError):
        expected = None  # must raise ShapeError
    return a.reshape(shape), expected


def _transpose(data, pool):
    a = _pick(data, pool)
    axes = data.draw(st.sampled_from([
        None, tuple(range(a.ndim))[::-1], (0,) * a.ndim, (1, 0), tuple(range(a.ndim))[:-1] + (a.ndim + 3,),
        ("swap", 0, -1), ("swap", 0, 5),
    ]), label="axes")
    if axes is None:
        return a.T, _arr(a).T
    if axes and axes[0] == "swap":
        try:
            expected = np.swapaxes(_arr(a), axes[1], axes[2])
        except ValueError:
            expected = None
        return a.swapaxes(axes[1], axes[2]), expected
    try:
        expected = np.transpose(_arr(a), axes)
    except ValueError:
        expected = None
    return a.transpose(axes), expected


def _broadcast_to(data, pool):
    a = _pick(data, pool)
    shape = data.draw(st.sampled_from([(2, 3), (4, 1, 3), (3,), (0, 3), (2, 0), 3, (-1,)]), label="target")
    try:
        expected = np.broadcast_to(_arr(a), shape)
    except ValueError:
        expected = None
    return ac.broadcast_to(a, shape), expected


def _getitem(data, pool):
    a = _pick(data, pool)
    index = data.draw(st.sampled_from([
        0, -1, 5, slice(None, None, -1), slice(1, None), (Ellipsis, 0), (0, 0), None,
        [0, 0, -1], np.array([True, False, True]), (slice(None), [1, 1]), 1.5, "a",
    ]), label="index")
    try:
        expected = np.asarray(_arr(a)[index])
    except (IndexError, TypeError, ValueError):
        expected = None
    return a[index], expected


def _join(name, fn, np_fn):
    def apply(data, pool):
        values = [_pick(data, pool) for _ in range(data.draw(st.integers(1, 3), label="count"))]
        axis = data.draw(st.sampled_from([0, -1, 1]), label="axis")
        try:
            expected = np_fn([_arr(v) for v in values], axis=axis)
        except ValueError:
            expected = None
        return fn(values, axis=axis), expected
    return name, apply


def _astype(data, pool):
    a = _pick(data, pool)
    dtype = data.draw(st.sampled_from([np.float16, np.float32, np.float64, np.int32, "banana"]), label="dtype")
    expected = _arr(a).astype(dtype) if dtype != "banana" and np.dtype(dtype).kind == "f" else None
    with np.errstate(all="ignore"):
        return a.astype(dtype), expected


def _power(data, pool):
    a = _pick(data, pool)
    exponent = data.draw(st.sampled_from([2, 3, 0.5, -1, 0, 2.5]), label="exponent")
    with np.errstate(all="ignore"):
        # on a.data itself: NumPy's scalar and array powers differ at the edges
        # ((-inf) ** 0.5 is inf for a NumPy scalar, nan for an array)
        expected = a.data ** (a.dtype.type(exponent) if isinstance(exponent, float) else exponent)
    return a**exponent, expected


def _relu_reference(x):
    return np.maximum(x, x.dtype.type(0))


OPERATIONS = [
    _binary("add", lambda a, b: a + b, np.add),
    _binary("sub", lambda a, b: a - b, np.subtract),
    _binary("mul", lambda a, b: a * b, np.multiply),
    _binary("div", lambda a, b: a / b, np.divide),
    _binary("maximum", ac.maximum, np.maximum),
    _binary("minimum", ac.minimum, np.minimum),
    ("pow", _power),
    _unary("neg", lambda a: -a, np.negative),
    _unary("exp", ac.exp, np.exp),
    _unary("log", ac.log, np.log),
    _unary("log1p", ac.log1p, np.log1p),
    _unary("sqrt", ac.sqrt, np.sqrt),
    _unary("abs", abs, np.abs),
    _unary("tanh", ac.tanh, np.tanh),
    _unary("relu", ac.relu, _relu_reference),
    ("sigmoid", lambda data, pool: (lambda a: (ac.sigmoid(a), _Exact(lambda: _mp_array(_mp_sigmoid, _arr(a)))))(_pick(data, pool))),
    ("softplus", lambda data, pool: (lambda a: (ac.softplus(a), _Exact(lambda: _mp_array(_mp_softplus, _arr(a)))))(_pick(data, pool))),
    ("erf", lambda data, pool: (lambda a: (ac.erf(a), _Exact(lambda: _mp_array(_mp_erf, _arr(a)))))(_pick(data, pool))),
    ("clip", _clip),
    ("where", _where),
    ("matmul", _matmul),
    _reduction("sum", "sum", np.sum),
    _reduction("mean", "mean", np.mean),
    _reduction("max", "max", np.max),
    _reduction("min", "min", np.min),
    ("var", _var),
    _softmax_family("logsumexp", ac.logsumexp, "logsumexp"),
    _softmax_family("softmax", ac.softmax, "softmax"),
    _softmax_family("log_softmax", ac.log_softmax, "log_softmax"),
    ("reshape", _reshape),
    ("transpose/swapaxes", _transpose),
    ("broadcast_to", _broadcast_to),
    ("getitem", _getitem),
    _join("concatenate", ac.concatenate, np.concatenate),
    _join("stack", ac.stack, np.stack),
    ("astype", _astype),
]


# ---------------------------------------------------------------------------
# checking one outcome
# ---------------------------------------------------------------------------
def _assert_documented(exc, name, allowed):
    assert isinstance(exc, allowed), f"{name}: undocumented {type(exc).__name__}: {exc}"
    message = str(exc)
    assert message.strip(), f"{name}: {type(exc).__name__} without a message"
    # the message names the operation (or, for data that is not numbers, the conversion)
    assert any(part in message for part in name.split("/")) or message.startswith(("constant:", "Value:")), (
        f"{name}: the {type(exc).__name__} does not name the operation: {message}")


def _assert_matches(result, expected, name):
    exact = isinstance(expected, _Exact)
    scale = expected.scale if exact else 1.0
    expected = np.asarray(expected.array if exact else expected)
    assert isinstance(result, Value), f"{name} returned {type(result).__name__}"
    assert result.shape == expected.shape, f"{name}: shape {result.shape}, NumPy gives {expected.shape}"
    if exact:
        expected = _round_to(expected, result.dtype)
    else:
        assert result.dtype == expected.dtype, f"{name}: dtype {result.dtype}, NumPy gives {expected.dtype}"
    assert result.dtype.kind == "f"
    rtol = TOLERANCE[result.dtype] * (8 if exact else 1)
    tiny = float(np.finfo(result.dtype).smallest_normal)
    np.testing.assert_allclose(
        np.asarray(result.data, dtype=np.float64), np.asarray(expected, dtype=np.float64),
        rtol=rtol, atol=4 * tiny + (rtol * scale if exact else 0.0), equal_nan=True, err_msg=f"{name} value",
    )


def _leaf(data):
    kind = data.draw(st.integers(0, 9), label="leaf kind")
    if kind == 0:  # Python numbers and lists
        raw = data.draw(st.sampled_from([3, -2.5, True, [1, 2, 3], [[0.5], [1e300]], 0]), label="python data")
    elif kind == 1:  # not numbers at all
        raw = data.draw(st.sampled_from(["abc", None, 1 + 2j, [[1, 2], [3]], object(), np.array(["x"])]), label="junk")
    else:
        raw = _draw_array(data)
    requires_grad = data.draw(st.sampled_from([True, True, False]), label="requires_grad")
    try:
        value = Value(raw, requires_grad=requires_grad)
    except OP_ERRORS as exc:
        _assert_documented(exc, "Value", (TypeError,))
        return None
    assert value.dtype.kind == "f"
    expected_dtype = np.asarray(raw).dtype if np.asarray(raw).dtype.kind == "f" else np.float64
    if isinstance(raw, float):
        expected_dtype = np.float64
    assert value.dtype == expected_dtype
    return value


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@FUZZ
@given(data=st.data())
def test_random_programs_give_numpy_results_or_documented_errors(data):
    pool = [v for v in (_leaf(data) for _ in range(data.draw(st.integers(1, 3), label="leaves"))) if v is not None]
    assume(pool)
    leaves = list(pool)
    for _ in range(data.draw(st.integers(1, 4), label="steps")):
        name, apply = data.draw(st.sampled_from(OPERATIONS), label="operation")
        try:
            result, expected = apply(data, pool)
        except OP_ERRORS as exc:
            _assert_documented(exc, name, OP_ERRORS)
            continue
        assert expected is not None, f"{name} succeeded where NumPy refuses"
        _assert_matches(result, expected, name)
        pool.append(result)

    out = pool[-1]
    if not out.requires_grad:
        return
    seed = np.ones(out.shape, dtype=out.dtype)
    misuse = data.draw(st.sampled_from(["none", "none", "twice", "no seed", "write"]), label="misuse")
    if misuse == "write" and out.inputs and out.inputs[0].size and out.inputs[0].ndim:
        victim = out.inputs[0]
        corner = (0,) * victim.ndim
        if not victim.data.flags.writeable:  # a broadcast view: NumPy refuses the write itself
            with pytest.raises(ValueError, match="read-only"):
                victim.data[corner] = 7.0
            return
        victim.data[corner] = 7.0 if victim.data[corner] != 7.0 else 8.0  # a write a pending backward needs
        with pytest.raises(SavedDataModifiedError, match=out.op):
            out.backward(seed)
        return
    try:
        out.backward(None if misuse == "no seed" else seed)
    except BACKWARD_ERRORS as exc:
        _assert_documented(exc, "backward", BACKWARD_ERRORS)
        assert misuse == "no seed" and out.size != 1, f"backward raised {type(exc).__name__}: {exc}"
        return
    for leaf in leaves:
        if leaf.grad is not None:
            assert leaf.grad.shape == leaf.shape and leaf.grad.dtype == leaf.dtype, (
                f"grad {leaf.grad.shape} {leaf.grad.dtype} for a Value {leaf.shape} {leaf.dtype}")
    if misuse == "twice" and any(node.op for node in [out]):
        with pytest.raises(GraphFreedError, match="retain_graph"):
            out.backward(seed)


# ---------------------------------------------------------------------------
# gradients of random float64 programs against central differences
# ---------------------------------------------------------------------------
SMOOTH_OPS = [op for op in OPERATIONS if op[0] not in ("astype",)]
H = 1e-6


def _program(data, n_inputs):
    """A random program as a list of (name, choices); replayed on any inputs."""
    steps = []
    for _ in range(data.draw(st.integers(1, 4), label="steps")):
        steps.append(data.draw(st.sampled_from(SMOOTH_OPS), label="operation"))
    return steps


class _Replay:
    """Replays recorded hypothesis choices, so the same program can run again
    on perturbed inputs (for central differences)."""

    def __init__(self, choices):
        self.choices = list(choices)
        self.position = 0

    def draw(self, strategy, label=None):
        value = self.choices[self.position]
        self.position += 1
        return value


class _Recorder:
    def __init__(self, data):
        self.data = data
        self.choices = []

    def draw(self, strategy, label=None):
        value = self.data.draw(strategy, label=label)
        self.choices.append(value)
        return value


def _run(steps, choices, inputs):
    source = _Replay(choices)
    pool = list(inputs)
    for _name, apply in steps:
        try:
            result, _ = apply(source, pool)
        except OP_ERRORS:
            continue
        pool.append(result)
    return pool[-1]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@FUZZ
@given(data=st.data())
def test_random_float64_programs_have_central_difference_gradients(data):
    n_inputs = data.draw(st.integers(1, 2), label="inputs")
    shapes = [data.draw(st.sampled_from([(), (3,), (2, 3), (1, 3), (3, 1)]), label="shape") for _ in range(n_inputs)]
    # tiny magnitudes (1e-75) make x/x carry 1e75-sized partial gradients that
    # cancel in floating point: a real result, but not a well-conditioned one
    moderate = st.one_of(st.sampled_from([0.0, 1.0, -1.0, 0.5, 2.0]), st.floats(1e-3, 3), st.floats(-3, -1e-3))
    arrays = [np.array(data.draw(st.lists(moderate, min_size=int(np.prod(s)), max_size=int(np.prod(s))), label="x"),
                       dtype=np.float64).reshape(s) for s in shapes]
    steps = _program(data, n_inputs)
    recorder = _Recorder(data)
    inputs = [Value(a.copy()) for a in arrays]
    out = _run_recording(steps, recorder, inputs)
    assume(out is not None and out.requires_grad and out.size and np.all(np.isfinite(out.data)))
    assume(not _evaluated_at_a_kink(out))
    # (x + 1e300) - 1e300 is flat in floating point: central differences see 0, the chain rule 1
    assume(all(np.abs(np.asarray(node.data)).max(initial=0) < 1e6 for node in ac.topological_order([out])))
    assume(np.abs(out.data).max() < 1e6)
    weights = np.random.default_rng(len(recorder.choices)).standard_normal(out.shape)
    objective = (out * weights).sum()
    analytic = ac.grad(objective, inputs, allow_unused=True)

    def evaluate(perturbed):
        with no_grad():
            result = _run(steps, recorder.choices, [Value(p) for p in perturbed])
            return float((result * weights).sum().data)

    f0 = evaluate(arrays)
    checked = 0
    # sqrt, log, division and powers have an infinite derivative at 0; a program
    # such as sqrt(x - x) meets it, and the chain rule gives 0 * inf = NaN there
    # (as PyTorch does) while the function itself is flat: not a smooth point
    singular = any(name in ("sqrt", "log", "log1p", "div", "pow") for name, _ in steps)
    for k, array in enumerate(arrays):
        got = np.zeros(array.shape) if analytic[k] is None else np.asarray(analytic[k])
        assert got.shape == array.shape and got.dtype == np.float64
        if singular and not np.isfinite(got).all():
            continue
        for j in range(array.size):
            plus, minus = [a.copy() for a in arrays], [a.copy() for a in arrays]
            plus[k].reshape(-1)[j] += H
            minus[k].reshape(-1)[j] -= H
            f_plus, f_minus = evaluate(plus), evaluate(minus)
            forward, backward = (f_plus - f0) / H, (f0 - f_minus) / H
            central = (f_plus - f_minus) / (2 * H)
            scale = max(1.0, abs(central))
            if not np.isfinite([forward, backward]).all() or abs(forward - backward) > 1e-3 * scale:
                continue  # a kink or a steep curve within H: central differences say nothing here
            checked += 1
            assert abs(got.reshape(-1)[j] - central) <= 1e-4 * scale, (
                f"program {[name for name, _ in steps]}: input {k} entry {j}: analytic "
                f"{got.reshape(-1)[j]!r}, central difference {central!r}")
    assume(checked)


def _evaluated_at_a_kink(out):
    """True when the forward pass met a piecewise operation exactly at a kink
    or tie (relu(0), |0|, max of equal numbers, a clip bound, a where whose
    condition sits on its boundary). There the engine's documented subgradient
    applies (see test_robust_edges.py), and a composite can be smooth while a
    part of it is at a kink: central differences do not decide it."""
    for node in ac.topological_order([out]):
        args = [np.asarray(v.data) for v in node.inputs]
        if node.op in ("relu", "abs", "where") and (args[0] == 0).any():
            return True
        if node.op in ("maximum", "minimum") and (args[0] == args[1]).any():
            return True
        if node.op in ("max", "min") and np.unique(args[0]).size < args[0].size:
            return True
        if node.op == "clip" and np.isin(args[0], (-1.0, 0.0, 1.0, 2.5)).any():
            return True
    return False


def _run_recording(steps, recorder, inputs):
    pool = list(inputs)
    for name, apply in steps:
        try:
            result, _ = apply(recorder, pool)
        except OP_ERRORS as exc:
            _assert_documented(exc, name, OP_ERRORS)
            continue
        pool.append(result)
    return pool[-1]


# ---------------------------------------------------------------------------
# detect_anomaly: the first operation to make NaN or Inf is named
# ---------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@settings(FUZZ, max_examples=500)
@given(data=st.data())
def test_inside_detect_anomaly_every_result_is_finite_or_the_operation_is_named(data):
    pool = [v for v in (_leaf(data) for _ in range(data.draw(st.integers(1, 2), label="leaves"))) if v is not None]
    assume(pool)
    with ac.detect_anomaly():
        for _ in range(data.draw(st.integers(1, 4), label="steps")):
            name, apply = data.draw(st.sampled_from(OPERATIONS), label="operation")
            try:
                result, _ = apply(data, pool)
            except ac.AnomalyError as exc:
                assert any(part in str(exc) for part in name.split("/")), f"{name}: {exc}"
                assert "NaN" in str(exc) or "Inf" in str(exc)
                return
            except OP_ERRORS as exc:
                _assert_documented(exc, name, OP_ERRORS)
                continue
            assert np.isfinite(result.data).all(), f"{name} made NaN/Inf inside detect_anomaly without raising"
            pool.append(result)
        out = pool[-1]
        if not out.requires_grad:
            return
        try:
            out.backward(np.ones(out.shape, dtype=out.dtype))
        except ac.AnomalyError as exc:
            assert "during backward" in str(exc) and ("NaN" in str(exc) or "Inf" in str(exc))
            return
    for leaf in pool:
        if leaf.grad is not None and leaf.is_leaf:
            assert np.isfinite(leaf.grad).all(), "a NaN/Inf gradient got through detect_anomaly"
