"""Random programs, built the same way on this engine and on PyTorch (float64):
values and gradients of every leaf must agree. Hypothesis picks the ops and
their operands, so the ops meet each other in orders no hand-written test
lists: broadcasting into reductions, relu zeros into max ties, softmax of
sums of products... Skipped without PyTorch."""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import autograd_core as ac
from autograd_core import Value

torch = pytest.importorskip("torch")

LEAF_SHAPES = [(2, 3), (3,), (2, 1), ()]

# name: (engine, torch); every op keeps values bounded so a deep program stays finite
UNARY = {
    "neg": (lambda a: -a, lambda a: -a),
    "tanh": (lambda a: a.tanh(), torch.tanh),
    "sigmoid": (lambda a: a.sigmoid(), torch.sigmoid),
    "relu": (lambda a: a.relu(), torch.relu),
    "abs": (lambda a: a.abs(), torch.abs),
    "exp of tanh": (lambda a: a.tanh().exp(), lambda a: torch.exp(torch.tanh(a))),
    "log(1 + a^2)": (lambda a: (a * a + 1).log(), lambda a: torch.log(a * a + 1)),
    "sqrt(1 + a^2)": (lambda a: (1 + a**2).sqrt(), lambda a: torch.sqrt(1 + a**2)),
    "1 / (1 + a^2)": (lambda a: 1 / (1 + a**2), lambda a: 1 / (1 + a**2)),
    "clip": (lambda a: a.clip(-0.5, 0.5), lambda a: torch.clamp(a, -0.5, 0.5)),
    "softplus": (lambda a: ac.softplus(a), torch.nn.functional.softplus),
    "square": (lambda a: a**2, lambda a: a**2),
}
BINARY = {
    "add": (lambda a, b: a + b, lambda a, b: a + b),
    "sub": (lambda a, b: a - b, lambda a, b: a - b),
    "mul": (lambda a, b: a * b, lambda a, b: a * b),
    "div": (lambda a, b: a / (1 + b * b), lambda a, b: a / (1 + b * b)),
    "maximum": (ac.maximum, torch.maximum),
    "minimum": (ac.minimum, torch.minimum),
    "where": (lambda a, b: ac.where(a > b, a, b * 2), lambda a, b: torch.where(a > b, a, b * 2)),
}


def _reduce(name):
    def ours(a, axis):
        return getattr(a, name)(axis=axis, keepdims=True) if name != "logsumexp" else ac.logsumexp(a, axis=axis, keepdims=True)

    def theirs(a, axis):
        if name == "sum":
            return a.sum(dim=axis, keepdim=True)
        if name == "mean":
            return a.mean(dim=axis, keepdim=True)
        if name == "max":
            return a.amax(dim=axis, keepdim=True)  # amax splits ties evenly, like this engine
        if name == "min":
            return a.amin(dim=axis, keepdim=True)
        if name == "var":
            return a.var(dim=axis, keepdim=True, unbiased=False)
        return torch.logsumexp(a, dim=axis, keepdim=True)

    return ours, theirs


REDUCTIONS = {name: _reduce(name) for name in ["sum", "mean", "max", "min", "var", "logsumexp"]}
ALONG_AXIS = {
    "softmax": (lambda a, axis: ac.softmax(a, axis=axis), lambda a, axis: torch.softmax(a, dim=axis)),
    "log_softmax tanh": (lambda a, axis: ac.log_softmax(a, axis=axis).tanh(), lambda a, axis: torch.tanh(torch.log_softmax(a, dim=axis))),
    "flip": (lambda a, axis: a[(slice(None),) * axis + (slice(None, None, -1),)], lambda a, axis: torch.flip(a, dims=(axis,))),
    "pick rows": (lambda a, axis: a[(slice(None),) * axis + (np.array([0, 0, -1]),)],
                  lambda a, axis: a[(slice(None),) * axis + (torch.tensor([0, 0, -1]),)]),
}


@st.composite
def programs(draw):
    steps = []
    shapes = list(LEAF_SHAPES)
    for _ in range(draw(st.integers(2, 8))):
        kind = draw(st.sampled_from(["unary", "binary", "reduce", "axis", "matmul", "transpose"]))
        a = draw(st.integers(0, len(shapes) - 1))
        shape = shapes[a]
        if kind == "unary":
            steps.append(("unary", draw(st.sampled_from(sorted(UNARY))), a))
            shapes.append(shape)
        elif kind == "binary":
            b = draw(st.integers(0, len(shapes) - 1))
            try:
                out = np.broadcast_shapes(shape, shapes[b])
            except ValueError:
                continue
            steps.append(("binary", draw(st.sampled_from(sorted(BINARY))), a, b))
            shapes.append(out)
        elif kind in ("reduce", "axis") and shape:
            axis = draw(st.integers(0, len(shape) - 1))
            table = REDUCTIONS if kind == "reduce" else ALONG_AXIS
            name = draw(st.sampled_from(sorted(table)))
            steps.append((kind, name, a, axis))
            new = list(shape)
            if kind == "reduce":
                new[axis] = 1
            elif name == "pick rows":
                new[axis] = 3
            shapes.append(tuple(new))
        elif kind == "matmul" and len(shape) == 2:
            b = draw(st.integers(0, len(shapes) - 1))
            if len(shapes[b]) == 2 and shapes[b][0] == shape[1]:
                steps.append(("matmul", "", a, b))
                shapes.append((shape[0], shapes[b][1]))
            elif len(shapes[b]) == 2 and shapes[b][1] == shape[1]:  # a @ b.T
                steps.append(("matmul T", "", a, b))
                shapes.append((shape[0], shapes[b][0]))
        elif kind == "transpose" and len(shape) == 2:
            steps.append(("transpose", "", a))
            shapes.append(shape[::-1])
    seed = draw(st.integers(0, 2**32 - 1))
    return steps, shapes[-1], seed


def run(program, leaves, lib):
    steps, _, _ = program
    pool = list(leaves)
    engine = lib == "engine"
    pick = 0 if engine else 1
    for step in steps:
        kind, name, a = step[0], step[1], step[2]
        if kind == "unary":
            pool.append(UNARY[name][pick](pool[a]))
        elif kind == "binary":
            pool.append(BINARY[name][pick](pool[a], pool[step[3]]))
        elif kind == "reduce":
            pool.append(REDUCTIONS[name][pick](pool[a], step[3]))
        elif kind == "axis":
            pool.append(ALONG_AXIS[name][pick](pool[a], step[3]))
        elif kind == "matmul":
            pool.append(pool[a] @ pool[step[3]])
        elif kind == "matmul T":
            pool.append(pool[a] @ pool[step[3]].T)
        elif kind == "transpose":
            pool.append(pool[a].T)
    return pool[-1]


# a fixed, fast sample in the suite; ENGINE_HYPOTHESIS_EXAMPLES=2000 explores randomly for longer
DEEP = int(os.environ.get("ENGINE_HYPOTHESIS_EXAMPLES", "0"))


@settings(max_examples=DEEP or 60, deadline=None, derandomize=not DEEP, suppress_health_check=[HealthCheck.too_slow])
@given(program=programs())
def test_random_programs_agree_with_pytorch(program):
    _, out_shape, seed = program
    rng = np.random.default_rng(seed)
    data = [rng.standard_normal(shape) for shape in LEAF_SHAPES]
    data[3] = np.float64(0.0)  # a scalar leaf at relu's and abs's kink
    weights = rng.standard_normal(out_shape)

    leaves = [Value(d) for d in data]
    out = run(program, leaves, "engine")
    (out * weights).sum().backward()

    leaves_t = [torch.tensor(d, requires_grad=True) for d in data]
    out_t = run(program, leaves_t, "torch")
    (out_t * torch.tensor(weights)).sum().backward()

    np.testing.assert_allclose(out.data, out_t.detach().numpy(), rtol=1e-12, atol=1e-14)
    for k, (ours, theirs) in enumerate(zip(leaves, leaves_t)):
        if theirs.grad is None:
            assert ours.grad is None or not np.any(ours.grad), f"leaf {k}"
            continue
        assert ours.grad is not None, f"leaf {k} got no gradient"
        np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=f"leaf {k}")


@settings(max_examples=DEEP or 30, deadline=None, derandomize=not DEEP, suppress_health_check=[HealthCheck.too_slow])
@given(program=programs())
def test_random_programs_second_derivatives_agree_with_pytorch(program):
    """Hessian-vector products through create_graph=True, against torch's double backward."""
    _, out_shape, seed = program
    rng = np.random.default_rng(seed)
    data = [rng.standard_normal(shape) for shape in LEAF_SHAPES]
    weights = rng.standard_normal(out_shape)
    directions = [rng.standard_normal(shape) for shape in LEAF_SHAPES]

    leaves = [Value(d) for d in data]
    out = run(program, leaves, "engine")
    grads = ac.grad((out * weights).sum(), leaves, create_graph=True, allow_unused=True)
    along = [(g * v).sum() for g, v in zip(grads, directions) if isinstance(g, Value) and g.requires_grad]

    leaves_t = [torch.tensor(d, requires_grad=True) for d in data]
    out_t = run(program, leaves_t, "torch")
    grads_t = torch.autograd.grad((out_t * torch.tensor(weights)).sum(), leaves_t, create_graph=True, allow_unused=True)
    along_t = [(g * torch.tensor(v)).sum() for g, v in zip(grads_t, directions) if g is not None and g.requires_grad]

    for g, g_t in zip(grads, grads_t):
        if g_t is not None:
            np.testing.assert_allclose(np.asarray(g.data if isinstance(g, Value) else g), g_t.detach().numpy(), rtol=1e-9, atol=1e-12)
    if not along_t:
        return
    hvp_t = torch.autograd.grad(sum(along_t), leaves_t, allow_unused=True)
    hvp = ac.grad(ac.stack(along).sum(), leaves, allow_unused=True) if along else [None] * len(leaves)
    for k, (ours, theirs) in enumerate(zip(hvp, hvp_t)):
        theirs = np.zeros(np.shape(data[k])) if theirs is None else theirs.numpy(force=True)  # may be a ZeroTensor
        ours = np.zeros(np.shape(data[k])) if ours is None else np.asarray(ours)
        np.testing.assert_allclose(ours, theirs, rtol=1e-8, atol=1e-11, err_msg=f"leaf {k}")
