"""Differential test of `autograd_core.compile` against eager: random programs, bit for bit, or a refusal.

Hypothesis draws small programs over the whole op registry: every case of
``tests/engine/engine_op_cases.py`` (one or more per registered op, with their
shapes, broadcasting and parameters) in a program with up to two more ops, in
float64 or float32, each op's result sometimes passed through an elementwise op
and through ``ag.where(out > 0, ...)``, its inputs the parameters of a module
(some shared) or the arguments, and often a small MLP beside it (Linear,
BatchNorm1d, an activation, Dropout, a loss). The function reaches the model
and a number it multiplies the loss by through a closure, a global, a default,
an object's attribute, a bound method's object, the items of a list, the
attributes of the user's class, or takes the model as an argument.

Each program is compiled and called with new data, then taken through random
state changes, each followed by two calls (the first may trace again, the
second replays): a parameter frozen or unfrozen, given new values (assigned or
in place), another dtype, shape or memory layout, ``load_state_dict`` (batch norm's running
statistics included), a submodule replaced, ``eval()``/``train()``, the number
changed, arguments passed as arrays or as Values, a call under ``no_grad()``,
calls from two threads at once.

After every call the compiled step must give eager's loss, the ``.grad`` of
every parameter and Value argument, and every buffer bit for bit (the same
dtype and shape, ``np.array_equal`` with NaN equal to NaN, the same sign on
zeros), or raise ``CompileError`` (not an internal one); where eager raises,
the compiled step must raise the same error or ``CompileError``. Dropout's
masks are compared by seeding ``nn``'s generator the same way before the
compiled and the eager call: the compiled step draws them from that generator
in eager's order. ``COMPILE_DIFFERENTIAL_EXAMPLES=50`` explores randomly for longer.

Each difference it found is also a minimal program at the end of this file.
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st

import autograd_core as ag
import nn
from autograd_core import Value
from autograd_core.compile import CompileError, host_array
from nn.activations import ACTIVATIONS

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "engine"))
from engine_op_cases import ALL_CASES, CASES_BY_ID  # noqa: E402  (the registry's cases: shapes, params, domains)

# elementwise ops of one input: applied after another op's result, whatever its shape
UNARY_ELEMENTWISE = [c.id for c in ALL_CASES if c.op_object.elementwise and len(c.op_object.inputs) == 1]
CASE_IDS = [c.id for c in ALL_CASES]

# a fixed sample in the suite (about 30 s on two cores); COMPILE_DIFFERENTIAL_EXAMPLES=50 explores randomly for longer
DEEP = int(os.environ.get("COMPILE_DIFFERENTIAL_EXAMPLES", "0"))
DIFFERENTIAL = settings(
    max_examples=DEEP or 3, deadline=None, derandomize=not DEEP,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)

pytestmark = [
    # the pooling ops make their divisors from shapes during the call: constants, which compile says it keeps
    # (a kept array that should have changed shows as a difference in the numbers)
    pytest.mark.filterwarnings("ignore:compile.*made .* outside the engine.s operations:UserWarning"),
    pytest.mark.filterwarnings("ignore::RuntimeWarning"),
]


# ==========================================================================
# The programs
# ==========================================================================
class Holder(nn.Module):
    """The op terms' parameters, p0, p1, ... (a submodule, so it can be replaced whole)."""

    def __init__(self, arrays):
        super().__init__()
        for name, array in arrays.items():
            setattr(self, name, nn.Parameter(np.array(array, copy=True)))


class Net(nn.Module):
    """Op terms on the holder's parameters and the arguments, plus an optional small MLP with a loss."""

    def __init__(self, hold, terms, mlp):
        super().__init__()
        self.hold = hold
        self.terms = terms  # [(build, params, refs, weight, after)]: refs name a parameter ("p0") or an argument (0)
        self.mlp = mlp is not None
        if mlp is not None:
            self.fc1, self.norm, self.act, self.drop, self.fc2, self.criterion = mlp


def _as_value(x):
    # arrays come in as constants (eager); a traced call gets Values already
    return x if isinstance(x, Value) else Value(x, requires_grad=False)


def leaky(params, out):
    """A branch picked by traced comparisons (combined in NumPy): masks every replay makes again."""
    return ag.where((out > 0) & ~(out == 0), out, out * 0.25)


def program(net, args, scale):
    """The drawn program's loss: sum of (term * weight) over the op terms, the MLP's loss, times `scale`."""
    total = None
    for build, params, refs, weight, after in net.terms:
        inputs = [getattr(net.hold, ref) if type(ref) is str else _as_value(args[ref]) for ref in refs]
        out = build(params, *inputs)
        for then, then_params in after:
            out = then(then_params, out)
        term = (out * weight).sum()
        total = term if total is None else total + term
    if net.mlp:
        X, target = args[-2], args[-1]
        h = net.drop(net.act(net.norm(net.fc1(X))))
        term = net.criterion(net.fc2(h), target)
        total = term if total is None else total + term
    return total * scale


# the ways a compiled function reaches its model and the number it reads
_NET = None
_SCALE = 1.0


def _global_loss(*args):
    return program(_NET, args, _SCALE)


class _Box:
    pass


class _Runner:
    def __init__(self, net, scale):
        self.net, self.scale = net, scale

    def loss(self, *args):
        return program(self.net, args, self.scale)


def make_function(reach, net, scale):
    """(fn, leading arguments, set_scale): `fn` reads `net` and `scale` the way `reach` says."""
    global _NET, _SCALE
    if reach == "closure":
        def fn(*args):
            return program(net, args, scale)

        def set_scale(value):
            nonlocal scale
            scale = value

        return fn, (), set_scale
    if reach == "global":
        _NET, _SCALE = net, scale

        def set_scale(value):
            global _SCALE
            _SCALE = value

        return _global_loss, (), set_scale
    if reach == "default":
        def fn(*args, net=net, scale=scale):
            return program(net, args, scale)

        return fn, (), lambda value: fn.__kwdefaults__.__setitem__("scale", value)
    if reach == "object":
        box = _Box()
        box.net, box.scale = net, scale

        def fn(*args):
            return program(box.net, args, box.scale)

        return fn, (), lambda value: setattr(box, "scale", value)
    if reach == "bound":
        runner = _Runner(net, scale)
        return runner.loss, (), lambda value: setattr(runner, "scale", value)
    if reach == "list":  # the model and the number as items of a list the function reads
        held = [net, scale]

        def fn(*args):
            return program(held[0], args, held[1])

        return fn, (), lambda value: held.__setitem__(1, value)
    if reach == "class":  # the model and the number as attributes of the user's class
        class Settings:
            pass

        Settings.net, Settings.scale = net, scale
        settings = Settings()

        def fn(*args):
            return program(settings.net, args, settings.scale)

        return fn, (), lambda value: setattr(Settings, "scale", value)
    assert reach == "argument"

    def fn(net, *args):  # the model passed as an argument, the number in a closure
        return program(net, args, scale)

    def set_scale(value):
        nonlocal scale
        scale = value

    return fn, (net,), set_scale


REACHES = ["closure", "global", "default", "object", "bound", "list", "class", "argument"]

# small MLP heads: the loss module, what its target is
CRITERIA = {
    "cross_entropy": (nn.CrossEntropyLoss, "labels"),
    "mse": (nn.MSELoss, "values"),
    "l1": (nn.L1Loss, "values"),
    "bce_with_logits": (nn.BCEWithLogitsLoss, "probabilities"),
}


# ==========================================================================
# Drawing a program
# ==========================================================================
@dataclass
class Spec:
    dtype: object
    params: dict  # holder parameter name -> array
    args: list  # op argument arrays (their shapes and dtypes; new values at every call)
    terms: list
    mlp: dict | None
    reach: str
    scale: object
    texts: list = field(default_factory=list)

    def __str__(self):
        shapes = lambda arrays: ", ".join(f"{k}: {a.dtype}{a.shape}" for k, a in arrays)  # noqa: E731
        return (f"terms {self.texts}; parameters {{{shapes(self.params.items())}}}; "
                f"arguments [{shapes(enumerate(self.args))}]; mlp {self.mlp}; reached by {self.reach}; "
                f"scale {self.scale!r}")


def draw_op(data, case):
    arrays, params = case.draw(data, case.elements)
    return arrays, params


def draw_spec(data, main_case, dtype, with_mlp=None):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    more = data.draw(st.lists(st.sampled_from(CASE_IDS), max_size=2), label="more ops")
    cases = ([main_case] if main_case is not None else []) + [CASES_BY_ID[c] for c in more]
    params, args, terms, texts = {}, [], [], []
    domains = {}  # parameter name -> the elements it was drawn from (shared only within one domain)
    for case in cases:
        arrays, op_params = draw_op(data, case)
        arrays = [np.asarray(a, dtype=dtype) for a in arrays]
        refs = []
        for a in arrays:
            where = data.draw(st.sampled_from(["parameter", "parameter", "argument"]), label=f"{case.id} input")
            if where == "parameter":
                # (another op's parameter may lie outside this op's inputs: binary_cross_entropy's probabilities)
                same = [n for n, p in params.items()
                        if p.shape == a.shape and p.dtype == a.dtype and domains[n] == case.elements]
                if same and data.draw(st.booleans(), label="share a parameter"):  # gradients add up
                    refs.append(same[0])
                    continue
                name = f"p{len(params)}"
                params[name] = a
                domains[name] = case.elements
                refs.append(name)
            else:
                refs.append(len(args))
                args.append(a)
        after, text = [], f"{case.id}({', '.join(map(str, refs))}; {op_params})"
        if data.draw(st.booleans(), label="an elementwise op after it"):
            then = CASES_BY_ID[data.draw(st.sampled_from(UNARY_ELEMENTWISE), label="elementwise op")]
            _, then_params = draw_op(data, then)
            after.append((then.build, then_params))
            text = f"{then.id}({text}; {then_params})"
        if data.draw(st.booleans(), label="where(out > 0, ...) after it"):
            after.append((leaky, {}))
            text = f"leaky({text})"
        with np.errstate(all="ignore"):
            out = case.build(op_params, *[Value(a) for a in arrays])
            for then, then_params in after:
                out = then(then_params, out)
        weight = rng.standard_normal(out.shape).astype(out.dtype)  # every entry of the result matters
        terms.append((case.build, op_params, tuple(refs), weight, tuple(after)))
        texts.append(f"{text} -> {out.dtype}{out.shape}")
    mlp = None
    if with_mlp if with_mlp is not None else data.draw(st.booleans(), label="with an MLP"):
        mlp = {
            "dtype": data.draw(st.sampled_from([np.float64, np.float32]), label="MLP dtype"),
            "batch": data.draw(st.integers(2, 5), label="batch"),
            "hidden": data.draw(st.integers(1, 4), label="hidden"),
            "norm": data.draw(st.booleans(), label="BatchNorm1d"),
            "act": data.draw(st.sampled_from(ACTIVATIONS), label="activation"),
            "drop": data.draw(st.sampled_from([0.0, 0.3, 0.5]), label="dropout"),
            "criterion": data.draw(st.sampled_from(sorted(CRITERIA)), label="loss"),
        }
    assume(terms or mlp is not None)  # (a program computes something)
    reach = data.draw(st.sampled_from(REACHES), label="the model is reached through")
    scale = data.draw(st.sampled_from([1.0, 0.5, -2.0, 3]), label="scale")
    return Spec(dtype, params, args, terms, mlp, reach, scale, texts), rng


def build_mlp(mlp, rng):
    dtype, h = mlp["dtype"], mlp["hidden"]
    fc1 = nn.Linear(3, h, dtype=dtype)
    norm = nn.BatchNorm1d(h, dtype=dtype) if mlp["norm"] else nn.Identity()
    act = mlp["act"]()
    drop = nn.Dropout(mlp["drop"]) if mlp["drop"] else nn.Identity()
    fc2 = nn.Linear(h, 3, dtype=dtype)
    return fc1, norm, act, drop, fc2, CRITERIA[mlp["criterion"]][0]()


# ==========================================================================
# One call, compiled and eager, from the same state
# ==========================================================================
def new_values(array, rng):
    """New data in the drawn array's domain: its own values reshuffled and repeated
    (ties), and sometimes 0 or +-1 where they lie within its range (kinks, zeros of rules)."""
    array = np.asarray(array)
    if array.size == 0:  # (nothing to draw from, nothing to draw)
        return array.copy()
    specials = [x for x in (0.0, 1.0, -1.0) if array.min() <= x <= array.max()]
    pool = np.concatenate([array.ravel(), np.array(specials, dtype=array.dtype)])
    weights = np.full(pool.size, 1.0)
    weights[array.size:] = 0.15 * max(array.size, 1)
    values = rng.choice(pool, size=array.shape, p=weights / weights.sum())
    return np.asarray(values, dtype=array.dtype)


@dataclass
class Outcome:
    kind: str  # "ok", "compile error", "error"
    loss: object = None
    grads: list = None
    buffers: list = None
    error: BaseException = None


def _buffers(net):
    return [(name, np.array(b, copy=True)) for name, b in net.named_buffers()]


def _restore_buffers(net, saved):
    for (_, b), (_, s) in zip(net.named_buffers(), saved):
        b[...] = s  # in place: the arrays stay the ones the guards know


def run(fn, args, leaves, net, seed, no_grad=False):
    nn.manual_seed(seed)  # the same dropout masks for the compiled and the eager call
    for leaf in leaves:
        leaf.grad = None
    try:
        with np.errstate(all="ignore"):
            if no_grad:
                with ag.no_grad():
                    loss = fn(*args)
            else:
                loss = fn(*args)
                if loss.requires_grad:  # (eager: a loss made of constants only has nothing to differentiate)
                    loss.backward()
    except CompileError as error:
        return Outcome("compile error", error=error)
    except Exception as error:  # noqa: BLE001 (compared with the other side's)
        return Outcome("error", error=error)
    grads = [None if leaf.grad is None else np.array(leaf.grad, copy=True) for leaf in leaves]
    return Outcome("ok", np.array(loss.data, copy=True), grads, _buffers(net))


def _layout(a):
    return type(a), tuple(s for s, n in zip(a.strides, a.shape) if n > 1) if isinstance(a, np.ndarray) else None


def same_bits(got, want):
    """Same class, dtype, shape and memory layout (a sum goes in memory order), equal numbers (NaN equal
    to NaN), and the same sign on zeros."""
    if got is None or want is None:
        return got is None and want is None
    if isinstance(want, np.ndarray) and _layout(got) != _layout(want):
        return False
    got, want = np.asarray(got), np.asarray(want)
    if got.dtype != want.dtype or got.shape != want.shape:
        return False
    if not np.array_equal(got, want, equal_nan=want.dtype.kind == "f"):
        return False
    if want.dtype.kind == "f":
        zeros = want == 0
        return bool(np.array_equal(np.signbit(got[zeros]), np.signbit(want[zeros])))
    return True


def describe(x):
    if x is None:
        return "None"
    x = np.asarray(x)
    return f"{x.dtype}{x.shape} {np.array2string(x.ravel()[:8], precision=17)}"


def assert_same(compiled, eager, names, what):
    if compiled.kind == "compile error":
        # refusing is allowed, silently differing is not; an internal error is compile's own bug
        assert "internal error" not in str(compiled.error), f"{what}: {compiled.error}"
        return
    if eager.kind == "error":
        assert compiled.kind == "error" and type(compiled.error) is type(eager.error), (
            f"{what}: eager raised {eager.error!r}, compiled gave {compiled.kind} {compiled.error!r}")
        return
    assert compiled.kind == "ok", f"{what}: eager ran, compiled raised {compiled.error!r}"
    assert same_bits(compiled.loss, eager.loss), (
        f"{what}: loss compiled {describe(compiled.loss)} != eager {describe(eager.loss)}")
    for name, got, want in zip(names, compiled.grads, eager.grads):
        assert same_bits(got, want), f"{what}: {name}.grad compiled {describe(got)} != eager {describe(want)}"
    for (name, got), (_, want) in zip(compiled.buffers or (), eager.buffers or ()):
        assert same_bits(got, want), f"{what}: buffer {name} compiled {describe(got)} != eager {describe(want)}"


# ==========================================================================
# State changes between calls
# ==========================================================================
class Session:
    """A compiled program and its eager twin (the same function), called and compared."""

    def __init__(self, spec, rng, data):
        self.spec, self.rng, self.data = spec, rng, data
        nn.manual_seed(int(rng.integers(2**31)))
        self.net = Net(Holder(spec.params), spec.terms, build_mlp(spec.mlp, rng) if spec.mlp else None)
        self.fn, self.lead, self.set_scale = make_function(spec.reach, self.net, spec.scale)
        self.step = ag.compile(self.fn)
        self.arg_kinds = ["array"] * (len(spec.args) + (2 if spec.mlp else 0))  # (labels stay arrays)
        self.compared = 0
        self.ambiguous = 0  # calls refused because eager's result depends on whether an argument was made a Value

    # ---- the arguments of a call ---------------------------------------------------
    def arrays(self, first=False):
        # the first call gets the drawn arrays (valid for their ops by construction), later calls new values
        arrays = [a if first else new_values(a, self.rng) for a in self.spec.args]
        if self.spec.mlp:
            mlp = self.spec.mlp
            n = mlp["batch"]
            arrays.append(self.rng.standard_normal((n, 3)).astype(mlp["dtype"]))
            kind = CRITERIA[mlp["criterion"]][1]
            if kind == "labels":
                arrays.append(self.rng.integers(0, 3, n))
            elif kind == "values":
                arrays.append(self.rng.standard_normal((n, 3)).astype(mlp["dtype"]))
            else:
                arrays.append(self.rng.uniform(0, 1, (n, 3)).astype(mlp["dtype"]))
        return arrays

    def wrap(self, arrays):
        """The call's arguments (arrays or Values, as the kinds say) and the Values among them."""
        out, values = [], []
        for k, a in enumerate(arrays):
            kind = self.arg_kinds[k] if k < len(self.arg_kinds) else "array"
            if kind == "array" or a.dtype.kind != "f":
                out.append(a)
            else:
                v = Value(a.copy(), requires_grad=(kind == "value"), label=f"arg{k}")
                out.append(v)
                values.append(v)
        return out, values

    # ---- one call ---------------------------------------------------------------------
    def call(self, what, no_grad=False, first=False):
        arrays = self.arrays(first)
        seed = int(self.rng.integers(2**31))
        before = _buffers(self.net)
        args, values = self.wrap(arrays)
        params = list(self.net.named_parameters())
        leaves = [p for _, p in params] + values
        names = [n for n, _ in params] + [v.label for v in values]
        compiled = run(self.step, self.lead + tuple(args), leaves, self.net, seed, no_grad)
        _restore_buffers(self.net, before)
        args, values = self.wrap(arrays)  # eager gets Values of its own (their .grad is compared)
        leaves = [p for _, p in params] + values
        eager = run(self.fn, self.lead + tuple(args), leaves, self.net, seed, no_grad)
        note(f"{what}: compiled {compiled.kind} {compiled.error or ''}, eager {eager.kind} {eager.error or ''}")
        assert_same(compiled, eager, names, what)
        if compiled.kind == "ok":
            self.compared += 1
        elif compiled.kind == "compile error" and any(why in str(compiled.error) for why in (
                "cannot tell which", "of a 0-d float", "made from an array argument")):  # (eager's result depends
            # on what the code had: refused)
            self.ambiguous += 1  # (x / W of an array argument; a 0-d float32 argument, which NumPy has as an array;
            # W ** x of a 0-d argument, a constant exponent in eager)
        for leaf in leaves:
            leaf.grad = None
        return eager

    def threaded(self, what):
        """Two threads call the step at once with data of their own; each must get eager's loss
        and gradients of its Value arguments (parameters' .grad are shared by the threads: not compared)."""
        inputs = [self.arrays() for _ in range(2)]
        kinds = self.arg_kinds
        self.arg_kinds = ["value"] * len(kinds)
        expected = []
        for arrays in inputs:
            args, values = self.wrap(arrays)
            expected.append(run(self.fn, self.lead + tuple(args), values, self.net, 0))
        results = [None, None]
        barrier = threading.Barrier(2)

        def worker(k):
            args, values = self.wrap(inputs[k])
            barrier.wait(10)
            results[k] = [run(self.step, self.lead + tuple(args), values, self.net, 0) for _ in range(2)]

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.arg_kinds = kinds
        for p in self.net.parameters():
            p.grad = None
        for k in range(2):
            names = [f"thread {k} arg{j}" for j in range(len(inputs[k]))]
            for outcome in results[k]:
                outcome.buffers = expected[k].buffers = None
                assert_same(outcome, expected[k], names, f"{what} (thread {k})")

    # ---- the changes ------------------------------------------------------------------
    def parameter(self, label, frozen_too=True):
        # (new values, another dtype or shape of a frozen parameter: test_new_values_of_a_frozen_parameter_...)
        params = [(n, p) for n, p in self.net.named_parameters() if frozen_too or p.requires_grad]
        if not params:
            return None, None
        name, p = params[self.data.draw(st.integers(0, len(params) - 1), label=label)]
        return name, p

    def change(self, kind):
        """Apply one state change; returns a phrase, and an undo for a change eager may refuse."""
        net, data, rng = self.net, self.data, self.rng
        if kind == "freeze or unfreeze":
            name, p = self.parameter("parameter to freeze or unfreeze")
            if p is None:
                return "no parameter", None
            p.requires_grad = not p.requires_grad
            return f"{name}.requires_grad = {p.requires_grad}", None
        if kind == "new parameter values":
            name, p = self.parameter("parameter to change", frozen_too=False)
            if p is None:
                return "no parameter", None
            if np.ndim(p.data) and data.draw(st.booleans(), label="in place"):
                p.data[...] = new_values(p.data, rng)
                return f"{name}.data[...] = new values", None
            p.data = new_values(p.data, rng)
            return f"{name}.data = new values", None
        if kind == "load_state_dict":
            state = net.state_dict()
            frozen = {name for name, p in net.named_parameters() if not p.requires_grad}
            for key, array in state.items():
                if key in frozen:
                    continue  # (loaded as it is: test_new_values_of_a_frozen_parameter_...)
                if key.endswith("num_batches_tracked"):
                    state[key] = np.array(int(rng.integers(0, 5)))
                elif key.endswith("running_var"):
                    state[key] = rng.uniform(0.5, 2.0, array.shape).astype(array.dtype)
                else:
                    state[key] = new_values(array, rng) if array.size else array
            net.load_state_dict(state)
            return "load_state_dict (new buffers too)", None
        if kind == "replace a submodule":
            choices = ["hold"] + (["fc1", "fc2", "act", "norm"] if self.spec.mlp else [])
            which = data.draw(st.sampled_from(choices), label="submodule")
            if which == "hold":
                net.hold = Holder({n: new_values(p.data, rng) for n, p in net.hold.named_parameters()})
            elif which in ("fc1", "fc2"):
                old = getattr(net, which)
                dtype = data.draw(st.sampled_from([np.float64, np.float32]), label="dtype of the new layer")
                setattr(net, which, nn.Linear(old.in_features, old.out_features, dtype=dtype))
            elif which == "act":
                net.act = data.draw(st.sampled_from(ACTIVATIONS), label="new activation")()
            else:
                h = self.spec.mlp["hidden"]
                net.norm = nn.Identity() if isinstance(net.norm, nn.BatchNorm1d) else nn.BatchNorm1d(h, dtype=self.spec.mlp["dtype"])
            return f"net.{which} replaced", None
        if kind == "dtype":
            name, p = self.parameter("parameter to convert", frozen_too=False)
            if p is None:
                return "no parameter", None
            old = p.data
            p.data = old.astype(np.float32 if old.dtype == np.float64 else np.float64)
            return f"{name} as {p.data.dtype}", lambda: setattr(p, "data", old)
        if kind == "shape":
            name, p = self.parameter("parameter to reshape", frozen_too=False)
            if p is None or np.ndim(p.data) == 0:
                return "no parameter to reshape", None
            old = p.data
            if data.draw(st.booleans(), label="drop the first axis"):
                p.data = np.array(old[0], copy=True)
            else:
                p.data = np.array(old[..., :1], copy=True)  # a length-1 axis: broadcasts where the old one did
            return f"{name} reshaped {old.shape} -> {np.shape(p.data)}", lambda: setattr(p, "data", old)
        if kind == "layout":
            name, p = self.parameter("parameter to lay out otherwise", frozen_too=False)
            if p is None or np.ndim(p.data) < 2:
                return "no parameter of two axes", None
            p.data = np.asfortranarray(p.data) if p.data.flags.c_contiguous else np.ascontiguousarray(p.data)
            return f"{name} {'Fortran' if p.data.flags.f_contiguous else 'C'}-ordered", None
        if kind == "eval or train":
            module = data.draw(st.sampled_from(["net", "drop", "norm"]) if self.spec.mlp else st.just("net"),
                               label="module")
            target = net if module == "net" else getattr(net, module)
            target.train(not target.training)
            return f"{module}.train({target.training})", None
        if kind == "scale":
            value = data.draw(st.sampled_from([0.5, 2.0, 2, -1.0, 0.0, -0.0]), label="new scale")
            self.set_scale(value)
            return f"scale = {value!r}", None
        if kind == "argument kinds":
            self.arg_kinds = [data.draw(st.sampled_from(["array", "value", "constant value"]), label=f"arg{k} as")
                              for k in range(len(self.arg_kinds))]
            return f"arguments as {self.arg_kinds}", None
        raise AssertionError(kind)


CHANGES = ["freeze or unfreeze", "new parameter values", "load_state_dict", "replace a submodule", "dtype", "shape",
           "layout", "eval or train", "scale", "argument kinds", "two threads", "no_grad"]


def has_effects(net):
    """Dropout drawing masks or batch norm updating statistics: calls in two threads would race for them."""
    return any(isinstance(m, nn.Dropout) and m.training and m.p > 0
               or isinstance(m, nn.BatchNorm1d) and m.training for m in net.modules())


def exercise(spec, rng, data, changes):
    """The first call, then `changes` times: a state change, a call, and a call with new data only
    (the first call after a change may trace again; the second replays, into the buffers of the first)."""
    session = Session(spec, rng, data)
    session.call("first call (traced)", first=True)
    session.call("call 1 (replayed)")
    for k in range(1, changes + 1):
        kind = data.draw(st.sampled_from(CHANGES), label=f"change {k}")
        if kind == "two threads":
            if has_effects(session.net):  # dropout's draws, batch norm's updates: the threads would race for them
                session.net.eval()
                session.call(f"change {k}: a call after net.eval()")
            session.threaded(f"change {k}: calls from two threads")
            continue
        if kind == "no_grad":
            session.call(f"change {k}: a call under no_grad()", no_grad=True)
        else:
            phrase, undo = session.change(kind)
            eager = session.call(f"change {k}: a call after {phrase}")
            if eager.kind == "error" and undo is not None:
                undo()  # a change eager refuses too: back to a state the program runs in
        session.call(f"change {k}: the next call")
    return session


# ==========================================================================
# The tests
# ==========================================================================
@pytest.mark.parametrize("case_id", CASE_IDS)
@DIFFERENTIAL
@given(data=st.data())
def test_random_programs_over_every_op_compiled_equal_eager_or_refuse(case_id, data):
    """Each registered op (its cases) in a drawn program, with up to two more ops, elementwise ops after
    them, sometimes an MLP, through 1 to 3 state changes."""
    dtype = data.draw(st.sampled_from([np.float64, np.float32]), label="dtype")
    spec, rng = draw_spec(data, CASES_BY_ID[case_id], dtype)
    note(f"program: {spec}")
    session = exercise(spec, rng, data, changes=data.draw(st.integers(1, 3), label="changes"))
    # the first call of every drawn program compiles (none needs refusing), but for an array argument that
    # this harness makes a Value only in eager (isinstance(x, Value) holds while tracing) divided by a Value
    assert session.compared >= 1 or session.ambiguous >= 1


@settings(DIFFERENTIAL, max_examples=DEEP or 30)
@given(data=st.data())
def test_random_models_through_many_state_changes_compiled_equal_eager_or_refuse(data):
    """An MLP with a loss (and up to two op terms) through 3 to 6 state changes in a row."""
    dtype = data.draw(st.sampled_from([np.float64, np.float32]), label="dtype")
    spec, rng = draw_spec(data, None, dtype, with_mlp=True)
    note(f"program: {spec}")
    session = exercise(spec, rng, data, changes=data.draw(st.integers(3, 6), label="changes"))
    assert session.compared >= 1 or session.ambiguous >= 1  # (as above: a term eager computes either way, refused)


# ==========================================================================
# Differences this test found that are not fixed here (left out of the draws above)
# ==========================================================================
def compiled_and_eager(fn, leaves, *args):
    """[(compiled, eager) outcome] for each argument tuple in `args`, in order: `fn` compiled once (traced at
    the first call) and eager, from the same state and the same seed of nn's generator (one per call)."""
    step = ag.compile(fn)
    pairs = []
    for seed, call_args in enumerate(args):
        outcomes = []
        for f in (step, fn):
            outcome = run(f, call_args, leaves, _NO_NET, seed)
            assert outcome.kind == "ok", outcome.error
            outcomes.append(outcome)
        pairs.append(outcomes)
    return pairs


class _NoNet:
    def named_buffers(self):
        return ()


_NO_NET = _NoNet()


def assert_pairs_same(pairs):
    for k, (compiled, eager) in enumerate(pairs):
        assert_same(compiled, eager, [f"leaf{j}" for j in range(len(compiled.grads))], f"call {k}")


def test_x_to_the_power_0_replays_eagers_gradient_at_0():
    w = Value(np.array([1.0, 2.0]))
    assert_pairs_same(compiled_and_eager(lambda x: ((w * x) ** 0).sum(), [w], (np.array([1.0, 1.0]),),
                                         (np.array([0.0, 1.0]),)))


@pytest.mark.parametrize("shape", [(), (3,)])  # a constant of the program silently; an array kept with a warning
def test_new_values_of_a_frozen_parameter_are_read(shape):
    hold = Holder({"frozen": np.full(shape, 0.5), "trained": np.ones(3)})
    hold.frozen.requires_grad = False

    def fn(x):
        return ((1.5 - hold.frozen) * 2.0).sum() + (hold.trained * x).sum()

    step = ag.compile(fn)
    step(np.ones(3)).backward()
    hold.load_state_dict({"frozen": np.full(shape, -4.0), "trained": np.ones(3)})
    compiled, eager = (run(f, (np.ones(3),), [hold.trained], _NO_NET, 0) for f in (step, fn))
    assert_same(compiled, eager, ["trained"], "after load_state_dict")


@pytest.mark.parametrize("loss", [nn.NLLLoss(), nn.MultiMarginLoss()], ids=["nll_loss", "multi_margin_loss"])
def test_losses_of_class_labels_read_each_calls_labels(loss):
    nn.manual_seed(0)
    layer = nn.Linear(3, 3)
    X = np.random.default_rng(0).standard_normal((4, 3))
    pairs = compiled_and_eager(lambda X, y: loss(layer(X), y), list(layer.parameters()),
                               (X, np.array([0, 1, 2, 0])), (X, np.array([2, 2, 1, 1])))
    assert_pairs_same(pairs)


def test_dropout2d_draws_a_new_mask_at_every_call_as_eager():
    drop = nn.Dropout2d(0.5)
    w = Value(np.ones((1, 8, 2, 2)))
    assert_pairs_same(compiled_and_eager(lambda: (drop(w) * 1.0).sum(), [w], (), (), ()))


def test_a_comparison_multiplied_in_is_remade_at_every_call():
    w = Value(np.array([1.0, 2.0]))

    def fn(x):
        v = w * x
        return (v * (v > 0)).sum()

    assert_pairs_same(compiled_and_eager(fn, [w], (np.array([1.0, 1.0]),), (np.array([-1.0, 1.0]),)))


def test_einsum_gradient_of_an_operand_against_a_broadcast_one_has_its_shape():
    a, b = Value(np.arange(6.0).reshape(2, 3)), Value(np.array([0.5]))
    ag.einsum("ij,j->i", a, b).sum().backward()
    assert a.grad.shape == a.shape


def test_where_between_constants_on_a_traced_comparison_is_remade():
    w = Value(np.array([1.0, 2.0]))

    def fn(x):
        return (w * x).sum() * ag.where(w * x > 0, 1.0, 0.0).sum()

    assert_pairs_same(compiled_and_eager(fn, [w], (np.array([1.0, 1.0]),), (np.array([-1.0, 1.0]),)))


def test_a_0d_host_array_is_remade_at_every_call():
    w = Value(np.array([1.0, 2.0]))

    def fn(x):
        return (w * x).sum() * host_array(lambda mask: np.asarray(mask.sum(), dtype=np.float64), w * x > 0)

    assert_pairs_same(compiled_and_eager(fn, [w], (np.array([1.0, 1.0]),), (np.array([-1.0, 1.0]),)))
