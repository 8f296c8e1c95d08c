"""What the traced code itself calls of the engine's backward and NumPy's
generators, as the tracer sees it: a backward with ``create_graph=True``
(a gradient penalty) is recorded, so that a mask its rules compute from the
data in NumPy is refused, or followed where it comes from a traced mask;
``ag.grad`` without it (arrays, the first call's in every replay) and an
unseeded ``np.random.default_rng()`` are refused. The tracer installs these
functions in the engine's and NumPy's place while any thread traces.
"""

from __future__ import annotations

import numpy as np

from .. import engine
from ..modes import _user_frame
from .tracer import _ORIGINALS, CompileError, _FollowedArray, current, host_array, is_tracing


def unseeded_refused(seed=None):
    """np.random.default_rng() while tracing: a generator without a seed draws anew at every eager call."""
    trace = current()
    if seed is None and trace is not None and not trace.inside_host:
        raise CompileError(f"compile: np.random.default_rng() without a seed, at {_user_frame(with_code=True)}, "
                           f"draws new numbers at every eager call; a replay would keep the first call's. Draw in "
                           f"a host_array function (called again at every call), or make the generator outside")
    return _ORIGINALS["default_rng"](seed)


def backward_recorded(outputs, seeds, retain_graph=False, create_graph=False, on_node=None):
    """engine.backpropagate while tracing: the Values a backward with create_graph=True makes are numbered
    (a gradient penalty's), and the masks its rules make are checked (see constant_of_a_mask); without
    create_graph (ag.grad under detect_anomaly()), refused as first_order_refused refuses it."""
    trace, start = current(), engine._next_id()
    if trace is None or trace.inside_host or on_node is not None:
        return _ORIGINALS["backpropagate"](outputs, seeds, retain_graph, create_graph, on_node)
    if not create_graph:
        first_order_refused()
    trace.graph_depth += 1
    try:
        return _ORIGINALS["backpropagate"](outputs, seeds, retain_graph, create_graph, on_node)
    finally:
        trace.graph_depth -= 1
        trace.graph_backwards.append((start, engine._next_id()))
        trace.grad_mode_reads.append("a backward with create_graph=True")  # (under no_grad(), no graph)


def constant_of_a_mask(trace, x, other):
    """A mask a rule multiplies by in a backward with create_graph=True: one the tracer follows (where's
    condition, a traced comparison) is cast again at every call; one computed from the data in NumPy
    (relu's out > 0) is refused, as a replay would keep the first call's."""
    if not trace.graph_depth or other is None or not isinstance(x, (np.ndarray, np.generic)) or (
            x.dtype != bool and np.size(x) > 1):  # (a float of one number, np.sign of a 0-d x, too; larger
        return x  # arrays are the writer's to refuse: see writer._refuse_in_a_graph_backward)
    if _followed(trace, x):
        return host_array(lambda mask, dtype=other._data.dtype: np.asarray(mask).astype(dtype), x, name="mask")
    raise CompileError(
        f"compile: a gradient built with create_graph=True (a gradient penalty) reads a mask of shape "
        f"{np.shape(x)} that a rule computed from the data in NumPy (relu's out > 0), at "
        f"{_user_frame(with_code=True)}; a replay would keep the first call's. Differentiate twice through "
        f"smooth operations (tanh, sigmoid, gelu), or compute this gradient eagerly")


def first_order_refused(*args, **kwargs):
    """engine._backpropagate_fast while tracing: ag.grad without create_graph gives arrays, which a replay
    would keep from the first call."""
    if is_tracing() and not current().inside_host:
        raise CompileError(f"compile: ag.grad (or hessian, jacobian, hvp) without create_graph=True inside a "
                           f"compiled function, at {_user_frame(with_code=True)}: its arrays would be the first "
                           f"call's in every replay. Pass create_graph=True (the gradient is then part of the "
                           f"program), or compute it outside the compiled function")
    return _ORIGINALS["_backpropagate_fast"](*args, **kwargs)


def seed_followed(output, grad, where):
    """engine._seed_gradient while tracing: a seed given as labels or a mask (grad_outputs=(y == 1)) is cast
    again at every call (eager's copy in its dtype would be the first call's)."""
    seed, trace = _ORIGINALS["_seed_gradient"](output, grad, where), current()
    if trace is None or trace.inside_host or not isinstance(grad, np.ndarray) or not _followed(trace, grad):
        return seed
    return host_array(lambda g, dtype=output.dtype: np.asarray(g, dtype=dtype), grad, name="seed")


def _followed(trace, x):
    """Whether `x` is, or is a NumPy view of, an array the tracer makes again at every call."""
    chain = [x]
    while isinstance(chain[-1], np.ndarray) and chain[-1].base is not None:
        chain.append(chain[-1].base)
    return any(isinstance(a, _FollowedArray) or trace.host_record_of(a) is not None for a in chain)
