"""What a replay compares of what the walk (``sources.py``) reached: numbers and
tuples by their type and bits (``True`` is not ``1``, ``-0.0`` is not ``0.0``,
NaN is NaN), sets whole, a dict's keys in their order, a class's count of
attributes, and the names of an object's or a module's attributes that the
code may read (``Names``). The guards (``guards.py``) test these at every call.
And what a random generator will draw next (``Draws``): a traced call that
draws itself is refused, as a replay would not draw again.

This module imports nothing from ``autograd_core.compile``.
"""

from __future__ import annotations

import math
import random
from collections import OrderedDict, namedtuple

import numpy as np

__all__ = ["GLOBAL_GENERATORS", "Draws", "Names", "changed_names", "class_size", "keys_of"]


def _module_counts(module):
    """(the names of its attributes, how many parameters, how many buffers) a module holds: a parameter or
    buffer added or removed is another module; an attribute, where the code may read it (see Names)."""
    d = module.__dict__
    return (frozenset(d),) + tuple(len(r) if isinstance(r := d.get(name), dict) else None
                                   for name in ("_parameters", "_buffers"))


# the names of an object's attributes at the trace, and those the code may read (None: any, where it reads
# them all, vars(self), or by names it makes): an attribute added since that the code may read retraces
Names = namedtuple("Names", "held readable")


def changed_names(d, names):
    """The names of the dict `d` (an object's __dict__) that differ from `names` (a Names) and matter."""
    if names.readable is None:
        return sorted(map(str, d.keys() ^ names.held))
    return sorted(name for name in d.keys() - names.held if name in names.readable)


def _member_order(member):
    return type(member).__qualname__, repr(member)


def _same_scalar(a, b):
    """Equality that also compares types: True != 1, NaN == NaN, 0.0 != -0.0."""
    stack = [(a, b)]
    while stack:
        x, y = stack.pop()
        if x is y:
            continue
        if type(x) in (set, frozenset) and type(y) in (set, frozenset):  # (a set, and what it held at the walk)
            if x != y:
                return False
            if len(x) > 64:  # (a large set of ids: equal members, compared at C's speed at every replay)
                continue
            # its members in the same order (repr tells 0.0 from -0.0 and True from 1), compared as scalars
            stack.extend(zip(sorted(x, key=_member_order), sorted(y, key=_member_order)))
            continue
        if type(x) is not type(y):
            return False
        if isinstance(x, tuple):
            if len(x) != len(y):
                return False
            stack.extend(zip(x, y))
        elif isinstance(x, (float, np.floating)):
            if not _same_float(x, y):
                return False
        elif isinstance(x, (complex, np.complexfloating)):
            if not (_same_float(x.real, y.real) and _same_float(x.imag, y.imag)):
                return False
        else:
            try:
                if not bool(x == y):
                    return False
            except Exception:  # noqa: BLE001 (what cannot be compared is not the same)
                return False
    return True


def _same_float(x, y):
    if x != x:  # NaN
        return y != y
    return x == y and math.copysign(1.0, x) == math.copysign(1.0, y)


def class_size(klass):
    """How many attributes a class has, but the one copy and pickle add to it (``__slotnames__``).

    >>> import copy
    >>> class Cfg:
    ...     scale = 1.0
    >>> before = class_size(Cfg); _ = copy.copy(Cfg()); class_size(Cfg) == before
    True
    """
    d = klass.__dict__
    return len(d) - ("__slotnames__" in d)


def keys_of(d):
    """A dict's keys in its order (an OrderedDict's own: move_to_end changes it; a subclass's as stored,
    without its own keys()).

    >>> d = OrderedDict(a=1, b=2); d.move_to_end("a"); keys_of(d)
    ('b', 'a')
    """
    return tuple(OrderedDict.keys(d) if type(d) is OrderedDict else dict.keys(d))


# the generators code draws from without holding them (nn adds its own, nn.get_generator()'s), by name
GLOBAL_GENERATORS = {"NumPy's global generator (np.random)": lambda: np.random.mtrand._rand,
                     "Python's random module": lambda: random._inst}
GENERATOR_TYPES = (np.random.Generator, np.random.BitGenerator, np.random.RandomState, np.random.SeedSequence,
                   random.Random)


def generator_state(generator):
    """What a generator will draw next, comparable with ``==``."""
    if isinstance(generator, random.Random):
        return generator.getstate()
    if isinstance(generator, np.random.RandomState):
        return _comparable(generator.get_state(legacy=False))
    if isinstance(generator, np.random.Generator):
        generator = generator.bit_generator
    if isinstance(generator, np.random.SeedSequence):  # (what it spawns: rng.spawn(1), SeedSequence.spawn)
        return generator.n_children_spawned
    return _comparable(generator.state), getattr(generator.seed_seq, "n_children_spawned", None)


def _comparable(state):
    stack, out = [state], []
    while stack:  # (a state is dicts of numbers and arrays: MT19937's key)
        x = stack.pop()
        if isinstance(x, dict):
            stack.extend(reversed(list(x.items())))
        elif isinstance(x, tuple):
            stack.extend(reversed(x))
        else:
            out.append(x.tobytes() if isinstance(x, np.ndarray) else x)
    return tuple(out)


class Draws:
    """Which of the `named` generators ((name, generator) pairs) the code drew from itself: the tracer
    looks before and after each host function (whose draws are its own, made again at every call).

    >>> rng = np.random.default_rng(0)
    >>> draws = Draws([("rng", rng)]); draws.look(); draws.drawn is None
    True
    >>> _ = rng.random(); draws.look(); draws.drawn
    'rng'
    """

    def __init__(self, named):
        self.named, self.drawn = named, None
        self.states = [generator_state(g) for _, g in named]

    def look(self, after_host=False, ours=False):
        """Note a generator drawn from since the last look (``after_host``: the host function's draws). Around
        this project's host functions (`ours`), which draw from no RandomState nor Python's random, only the
        others are looked at (the first two cost 40 and 10 µs a look; a draw of the code's shows later)."""
        states = [state if ours and isinstance(g, _NOT_OURS) else generator_state(g)
                  for (_, g), state in zip(self.named, self.states)]
        if not after_host and self.drawn is None:
            self.drawn = next((name for (name, _), a, b in zip(self.named, self.states, states) if a != b), None)
        self.states = states


_NOT_OURS = (np.random.RandomState, random.Random)  # (generators this project's host functions never draw from)
