"""The base class of every optimizer: parameter groups, state, zero_grad, save/load.

An optimizer holds references to Values (the parameters) and, after each
``backward()``, moves their data against their ``.grad``. Parameters are kept
in *parameter groups*: a list of dicts, each with its own ``"params"`` and its
own hyperparameters (``lr``, ``momentum``...), as in PyTorch:

>>> import numpy as np
>>> from autograd_core import Value
>>> from optim import SGD
>>> w, b = Value(np.ones(3)), Value(0.0)
>>> opt = SGD([{"params": [w]}, {"params": [b], "lr": 0.5}], lr=0.1)
>>> [group["lr"] for group in opt.param_groups]
[0.1, 0.5]
"""

from __future__ import annotations

import copy

import numpy as np

from autograd_core import Value, enable_grad, no_grad
from autograd_core.compile import CompileError, is_tracing

__all__ = ["Optimizer", "required"]


class _Required:
    """Marks a hyperparameter that has no default (e.g. SGD's lr)."""

    def __repr__(self):
        return "<required parameter>"


required = _Required()


class Optimizer:
    """Base class: subclasses define ``_init_state`` and ``_update``.

    ``params`` is an iterable of Values, or of dicts (parameter groups) with a
    ``"params"`` entry and any hyperparameters that differ from ``defaults``.
    Parameters must be leaf Values (ones you created, not results of
    operations); a parameter may appear in only one group.

    Per-parameter state (momentum buffers, running averages, step counts) is
    in ``optimizer.state[param]``, a dict of NumPy arrays and numbers.

    A new optimizer gives its defaults and writes ``_update``: plain gradient
    descent with a fixed step, ``p <- p - lr * g``:

    >>> class PlainGD(Optimizer):
    ...     def __init__(self, params, lr=0.1):
    ...         super().__init__(params, dict(lr=lr))
    ...     def _update(self, p, g, group, state):
    ...         p.data = p.data - group["lr"] * g
    >>> w = Value(3.0)
    >>> opt = PlainGD([w], lr=0.25)
    >>> (w * w).backward(); opt.step(); float(w.data)      # 3 - 0.25 * 6
    1.5
    """

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self.state = {}
        self.param_groups = []
        self._validate_group(self.defaults, "defaults")
        if isinstance(params, Value):
            raise TypeError(
                f"{type(self).__name__}: params must be an iterable of Values (e.g. [w, b] or "
                f"model.parameters()), got a single Value; wrap it in a list"
            )
        if isinstance(params, (set, frozenset)):
            raise TypeError(f"{type(self).__name__}: params must be an ordered iterable (a list), not a set: the order fixes state_dict()")
        if callable(getattr(params, "parameters", None)):  # an nn Module (optim does not import nn)
            raise TypeError(
                f"{type(self).__name__}: params must be an iterable of Values, got the module "
                f"{type(params).__name__} itself; pass model.parameters()"
            )
        try:
            param_groups = list(params)
        except TypeError:
            raise TypeError(
                f"{type(self).__name__}: params must be an iterable of Values (e.g. [w, b] or "
                f"model.parameters()), got {type(params).__name__}"
            ) from None
        if not param_groups:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list; pass the Values to optimize, e.g. [w, b]")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(group)

    # ---- groups ------------------------------------------------------------
    def add_param_group(self, param_group):
        """Add a dict with ``"params"`` and its own options (missing ones take the defaults).

        Useful to train new layers with their own learning rate, e.g.
        ``opt.add_param_group({"params": [w2], "lr": 1e-3})``.
        """
        name = type(self).__name__
        if not isinstance(param_group, dict):
            raise TypeError(f"{name}: a parameter group must be a dict with a 'params' entry, got {type(param_group).__name__}")
        group = dict(param_group)
        params = group.get("params")
        if params is None:
            raise ValueError(f"{name}: a parameter group needs a 'params' entry")
        if isinstance(params, Value):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError(f"{name}: 'params' must be an ordered iterable (a list), not a set")
        params = list(params)
        if not params:
            raise ValueError(f"{name}: a parameter group has an empty 'params' list")
        for i, p in enumerate(params):
            if not isinstance(p, Value):
                raise TypeError(
                    f"{name}: parameter {i} is a {type(p).__name__}, not a Value; optimizers update "
                    f"Values (wrap arrays with Value(array))"
                )
            if p._op is not None:
                raise ValueError(
                    f"{name}: parameter {i} (shape {p.shape}) is the result of a '{p.op}' operation, "
                    f"not a leaf; optimize the Values you created, not expressions computed from them"
                )
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if len({id(p) for p in params}) != len(params) or any(id(p) in seen for p in params):
            raise ValueError(f"{name}: a parameter appears twice (in one group or in two groups); give each Value once")
        for key, default in self.defaults.items():
            if default is required and key not in group:
                raise TypeError(f"{name}: parameter group didn't specify '{key}', which has no default; pass {key}=...")
            group.setdefault(key, default)
        group["params"] = params
        self._validate_group(group, f"parameter group {len(self.param_groups)}")
        self.param_groups.append(group)

    def _validate_group(self, group, where):
        """Check hyperparameters; subclasses extend this with their own checks."""
        lr = group.get("lr")
        if isinstance(lr, (str, bytes)):
            raise TypeError(f"{type(self).__name__}: lr={lr!r} in {where} must be a number, not a string")
        if lr is not None and lr is not required and not lr >= 0:
            raise ValueError(f"{type(self).__name__}: invalid learning rate lr={lr} in {where}; it must be >= 0")

    def _check_range(self, group, where, key, low=0.0, high=None, low_open=False, high_open=True):
        value = group.get(key)
        if value is None or value is required:
            return
        too_low = value <= low if low_open else value < low
        too_high = high is not None and (value >= high if high_open else value > high)
        if too_low or too_high or value != value:
            interval = f"{'(' if low_open else '['}{low}, {'inf' if high is None else high}{')' if high_open or high is None else ']'}"
            raise ValueError(f"{type(self).__name__}: invalid {key}={value} in {where}; it must be in {interval}")

    # ---- gradients and steps -----------------------------------------------
    def zero_grad(self, set_to_none=True):
        """Forget the gradients of all parameters before the next backward().

        ``set_to_none=True`` (the default, as in PyTorch) sets each ``.grad``
        to None, so the next backward stores a fresh gradient and ``step()``
        skips parameters that get none. ``set_to_none=False`` fills existing
        gradients with zeros instead (a parameter whose grad is None stays None).
        """
        if is_tracing():  # (its grads may all be None at the first call: refused by the call, not by a write)
            raise CompileError(f"compile: {type(self).__name__}.zero_grad() inside a compiled function; a replay "
                               f"would not do it again. Call it outside: opt.zero_grad(); step(x, y).backward(); "
                               f"opt.step()")
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                elif isinstance(p.grad, np.ndarray) and p.grad.flags.writeable:
                    p.grad.fill(0)
                else:
                    p.grad = np.zeros_like(np.asarray(p.grad))[()]

    def _gradient(self, p, group):
        """The gradient this step uses: .grad as data, negated to maximize,
        plus L2 weight decay ``wd * p`` when the optimizer couples it to the gradient."""
        g = p.grad
        if isinstance(g, Value):  # a grad from backward(create_graph=True)
            g = g.data
        if group.get("maximize", False):
            g = -g
        weight_decay = group.get("weight_decay", 0)
        if weight_decay and not group.get("decoupled_weight_decay", False):  # AdamW decays the weights directly
            g = g + weight_decay * p.data
        return g

    def step(self, closure=None):
        """Update every parameter that has a gradient; return the closure's loss if given.

        The closure (optional) re-evaluates the model and returns the loss; it
        is called with gradient recording on.
        """
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with no_grad():  # updates are arithmetic on data, never part of a graph
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue  # not used by this loss: no update, no state
                    state = self.state.get(p)
                    if state is None:
                        state = self.state[p] = self._init_state(p, group)
                    self._update(p, self._gradient(p, group), group, state)
        return loss

    def _init_state(self, p, group):
        return {}

    def _update(self, p, g, group, state):
        raise NotImplementedError

    # ---- saving and resuming -----------------------------------------------
    def state_dict(self):
        """The optimizer's state as plain data, in PyTorch's layout.

        ``{"state": {index: {name: array or number}}, "param_groups": [{options..., "params": [indices]}]}``
        where parameters are numbered in the order of the groups. Arrays are
        copies, so the dict is a snapshot.
        """
        index_of = {}
        groups = []
        for group in self.param_groups:
            packed = {k: copy.deepcopy(v) for k, v in group.items() if k != "params"}
            packed["params"] = []
            for p in group["params"]:
                index_of.setdefault(id(p), len(index_of))
                packed["params"].append(index_of[id(p)])
            groups.append(packed)
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                if p in self.state:
                    state[index_of[id(p)]] = copy.deepcopy(self.state[p])
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore a snapshot from :meth:`state_dict` so training resumes with the same numbers.

        The optimizer must have been built over parameters of the same shapes,
        in the same group layout.
        """
        name = type(self).__name__
        if not isinstance(state_dict, dict) or not {"state", "param_groups"} <= set(state_dict):
            raise ValueError(
                f"{name}.load_state_dict: expects the dict made by optimizer.state_dict(), with 'state' and "
                f"'param_groups' entries, got {type(state_dict).__name__}"
                + (f" with keys {sorted(map(str, state_dict))}" if isinstance(state_dict, dict) else "")
            )
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{name}.load_state_dict: the saved state has {len(saved_groups)} parameter groups, this optimizer has {len(self.param_groups)}")
        for k, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(
                    f"{name}.load_state_dict: group {k} has {len(saved['params'])} parameters in the saved state "
                    f"but {len(group['params'])} here"
                )
        param_of = {}
        for saved, group in zip(saved_groups, self.param_groups):
            for index, p in zip(saved["params"], group["params"]):
                param_of[index] = p
        new_state = {}
        for index, entry in state_dict["state"].items():
            p = param_of.get(int(index))
            if p is None:
                raise ValueError(f"{name}.load_state_dict: saved state for parameter {index}, which no group holds")
            restored = {}
            for key, value in entry.items():
                value = copy.deepcopy(value)
                if isinstance(value, np.ndarray) and key not in self._free_shape_state:
                    if value.shape != p.shape:
                        raise ValueError(
                            f"{name}.load_state_dict: state '{key}' of parameter {index} has shape {value.shape}, "
                            f"but the parameter has shape {p.shape}; build the optimizer over the same parameters in the same order"
                        )
                    value = value.astype(p.dtype, copy=False)  # the parameter's float dtype
                restored[key] = value
            new_state[p] = restored
        self.state = new_state
        for saved, group in zip(saved_groups, self.param_groups):
            for key, value in saved.items():
                if key != "params":
                    group[key] = copy.deepcopy(value)

    _free_shape_state = ()  # state entries not shaped like their parameter (LBFGS's history)

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for k, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {k}")
            for key in sorted(group):
                if key != "params":
                    lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)


def as_number(x):
    """`x` as a plain float, on purpose: ``item()`` of a Value or a compiled step's result (whose
    ``float()`` warns that the graph is dropped), ``float()`` of anything else.

    >>> as_number(Value([2.5])), as_number(3)
    (2.5, 3.0)
    """
    return x.item() if hasattr(x, "item") else float(x)


def metric_number(where, metric):
    """A watched metric (a number, or a one-element Value such as a loss) as a float,
    or a TypeError naming `where` (``"EarlyStopping.step"``)."""
    try:
        return as_number(metric)
    except (TypeError, ValueError):
        raise TypeError(
            f"{where}: metric must be the epoch's number to watch (e.g. the validation loss), "
            f"got {type(metric).__name__}"
        ) from None


def _apply(p, step):
    """``p <- p - step``, in place on array data (NumPy float scalars are
    immutable, so a 0-d Value gets a new scalar). Assigning through ``p.data``
    bumps the Value's version, so a graph that saved the old data notices."""
    p.data -= step
