"""Sources: what a compiled function can reach before it runs, each object
with the access path it is reached by (``self.model.fc.weight``, ``beta``,
``arg0.bn.running_mean``). ``guards.py`` turns what a trace used of it into
guards checked before each replay.

`Sources.walk(fn, args)` walks, without recursion and once per object, the
function's closure cells, the globals its code names (and the strings it
holds, where it reads globals by name: ``globals()["k"]``, ``vars(mod)``), the
builtins it calls (not shadowed since, nor replaced), its defaults, a bound
method's object, modules passed as arguments, and from there modules, plain
objects, dicts, lists, helper functions (the user's behind a library's
decorator too, ``@contextmanager``) and the descriptors of the user's classes.

What the code reached can read is guarded: what was reached through a
closure cell, a named global, a default, an attribute whose name appears in
the code reached (``co_names``, or a string constant of user code:
``getattr(self, "a b")``), and every item of a list or dict the code can read
(``scales[0]``, ``cfg[key]``, ``sum(d.values())``). The code reached is the
function's own (nested code included), that of the helper functions it
reaches, and the methods named by that code on the classes of reached
objects (and by the strings the walk reaches, ``getattr(self, "act")``),
``forward``, ``__call__``, ``__getattr__`` and the other methods Python
calls implicitly included (a user class's operators, comparisons,
``__enter__``...): ``self.eps`` read by ``BatchNorm1d.forward`` is guarded,
a ``self.steps`` counter the loss never reads is not. Library
functions, classes and opaque objects (a random generator) are guarded by
identity, and so are the names the user's code reads in a library's module
(``ag.tanh``) and the ``forward`` of a library's module class; library
objects (an optimizer) by the names the code reads, once it reads them. A
walk snapshot holds a list's length, a dict's keys, an object's (or a user
module's) attribute names, a class's count of them, and an array's bytes (a
CRC-32 of them over 1 MiB), compared before and after the traced call, which
must not write into what it holds.

What is not guarded: the contents of arrays the program reads (it reads them
afresh at every call) and of large arrays of modules it does not read;
library code. A walk that stopped at ``WALK_LIMIT`` says so in
``Sources.truncated`` (the runtime warns), and a used object it did not
reach is in ``Guards.unreached``.

Of ``autograd_core.compile`` it imports what reads code (``bytecode``), what
tells the library's objects (``library``) and what a replay compares
(``snapshots``).
"""

from __future__ import annotations

import builtins
import functools
import inspect
import itertools
import reprlib
import types
import zlib
from collections import OrderedDict, deque

import numpy as np

from ..engine import Value
from .bytecode import (_BUILTIN_METHODS, _BY_NAME, _BY_NAME_STRING, _COMPUTING, _CONSTRUCTORS, _EVERY_ATTRIBUTE,
                       _EVERY_FIELD, _EVERY_ITEM, _READ_BY_ITS_OBJECT, _READ_BY_STRINGS, _READERS, _SPECIAL,
                       _constructor_names, _format_attributes, _global_loads, _matches_classes, _name_pieces,
                       _names_of, _reads_any_key, _strings_in_consts, _strings_of, _with_dotted_names)
from .library import (_DATA_CLASSES, _is_library_class, _is_library_function, _is_library_module,
                      _is_read_by_its_methods, _is_record)
from .snapshots import Names, _module_counts, class_size, keys_of

__all__ = ["Sources", "WALK_LIMIT", "LOOK_LIMIT"]

WALK_LIMIT = 20_000  # objects (and numbers) the walk records before it stops
LOOK_LIMIT = 10 * WALK_LIMIT  # objects it looks at (a long list of numbers is looked at, not recorded)

# ==========================================================================
# Kinds of objects
# ==========================================================================
SNAPSHOT_BYTES = 1 << 20  # arrays reached up to this size are compared byte for byte before and after the call,
DIGEST_TOTAL = 1 << 30  # larger ones by a CRC-32 of their bytes (up to this much in all: 0.3 s or so)
SMALL_ARRAY = 64  # an array of at most this many numbers is compared whole (Python may read its numbers)


def array_digest(array):
    """What an array holds, to tell if a call wrote into it: its bytes, or a larger one's CRC-32."""
    if array.nbytes <= SNAPSHOT_BYTES:
        return array.tobytes()
    return "crc32", zlib.crc32(np.ascontiguousarray(array).view(np.uint8))


# methods Python calls without naming them: their code is walked like the code that names methods
_CALLED_IMPLICITLY = frozenset({"forward", "__call__", "__getattr__", "__getattribute__", "__getitem__",
                                "__contains__", "__len__", "__iter__", "__bool__", "__float__", "__index__",
                                "__get__"})


_BUILTINS = frozenset(vars(builtins))
def _value_digest(data):
    """A Value's data as a replay would find it: its type, dtype, shape and numbers (model.double() of a
    float64 model makes other arrays of the same: nothing a replay could tell)."""
    array = np.asarray(data)
    return type(data), array.dtype, array.shape, array_digest(array)


def _value_written(value, array, digest):
    """Whether the call wrote into a Value's data since the walk found it as `array` with `digest`: replaced
    it by other numbers, or wrote into the array itself (digested once where it is still the same array)."""
    return _value_digest(value._data) != digest or (value._data is not array and _value_digest(array) != digest)


def _wraps_user_code(fn):
    """Whether a library's function wraps the user's (``functools.wraps`` sets ``__wrapped__``)."""
    wrapped = getattr(fn, "__dict__", {}).get("__wrapped__")
    return isinstance(wrapped, types.FunctionType) and not _is_library_function(wrapped)


@functools.lru_cache(maxsize=1024)
def _slot_names(cls):
    """(name as written, name it is stored under) of the instance attributes a class with
    ``__slots__`` keeps outside a ``__dict__`` (``__beta`` of class Cfg is stored as ``_Cfg__beta``)."""
    names = []
    for klass in cls.__mro__:
        slots = klass.__dict__.get("__slots__", ())
        for name in (slots,) if isinstance(slots, str) else slots:
            stored = f"_{klass.__name__.lstrip('_')}{name}" if name.startswith("__") and not name.endswith("__") else name
            if name not in ("__dict__", "__weakref__") and all(stored != s for _, s in names):
                names.append((name, stored))
    return tuple(names)


def _slot_value(obj, stored):
    """A slot's value, read through its descriptor on the class (no ``__getattr__`` of the user's runs)."""
    for klass in type(obj).__mro__:
        descriptor = klass.__dict__.get(stored)
        if descriptor is not None:
            return descriptor.__get__(obj, type(obj))
    raise AttributeError(stored)
_SCALAR_TYPES = frozenset({int, float, bool, complex, str, bytes, type(None)})
_REGISTRIES = ("_parameters", "_buffers", "_modules")
_FIXED_ATTRIBUTES = frozenset({"__self__", "__func__", "func", "args", "keywords", "__defaults__", "__kwdefaults__",
                               "cell_contents", "__dict__"})


def _is_scalar(obj):
    """A Python number/bool/str/None, a NumPy scalar, or a tuple of those."""
    stack = [obj]
    count = 0
    while stack:
        x = stack.pop()
        t = type(x)
        if t in _SCALAR_TYPES or issubclass(t, np.generic):  # (type: a __class__ property is the user's code)
            continue
        if (t is tuple or t is frozenset or (t is set and x is obj)) and count + len(x) <= 64:  # (a set: on top only,
            # kept as a frozenset of what it held; see Sources._finish)
            count += len(x)
            stack.extend(x)
            continue
        return False
    return True


def _strings_in(scalar):
    """The strings of a scalar (see _is_scalar), a str Enum's member as the string it equals."""
    stack, strings = [scalar], []
    while stack:
        x = stack.pop()
        if isinstance(x, str):
            strings.append(str.__str__(x))
        elif type(x) in (tuple, frozenset, set):
            stack.extend(x)
    return strings


def _instance_dict(obj):
    try:
        d = object.__getattribute__(obj, "__dict__")
    except (AttributeError, TypeError):
        return None
    return d if isinstance(d, dict) else None


def _is_module(obj):
    """An nn-style module: ``training`` and the three registries in its ``__dict__``, ``named_parameters``."""
    if issubclass(type(obj), (type, Value, np.ndarray)):  # (type: a __class__ property is the user's code)
        return False
    d = _instance_dict(obj)
    return (
        d is not None and "training" in d and "_parameters" in d and "_modules" in d
        and callable(getattr(type(obj), "named_parameters", None))
    )


def _key_text(key):
    """A dict key as a path shows it; never raises (a 4,300-digit int's repr does)."""
    try:
        return repr(key) if type(key) in (str, int, bool) else _short.repr(key)
    except Exception:  # noqa: BLE001
        return f"<{type(key).__name__}>"


_short = reprlib.Repr()
_short.maxstring = 40
_short.maxother = 40


def _describe_object(obj):
    if isinstance(obj, (types.FunctionType, types.MethodType)):
        return f"<function {getattr(obj, '__qualname__', obj.__name__)}>"
    if isinstance(obj, Value):
        return f"<{type(obj).__name__} {obj._data.shape} {obj._data.dtype}>"
    if isinstance(obj, np.ndarray):
        return f"<ndarray {obj.shape} {obj.dtype}>"
    return f"<{type(obj).__name__}>"


def _brief(value):
    """A short repr that never raises (Values, arrays and modules as ``<Parameter (3,) float64>``)."""
    if isinstance(value, (Value, np.ndarray, types.FunctionType, types.MethodType)) or _is_module(value):
        return _describe_object(value)
    try:
        return _short.repr(value)
    except Exception:  # noqa: BLE001
        return f"<{type(value).__name__}>"


def _attribute_path(base, name):
    if type(name) is str and name.isidentifier():
        return f"{base}.{name}" if base else name
    return f"{base}.__dict__[{name!r}]" if base else f"__dict__[{name!r}]"


def _registry_path(base, name):
    plain = type(name) is str and name and name.replace("_", "a").isalnum()
    if plain:
        return f"{base}.{name}" if base else name
    return f"{base}[{name!r}]"


# ==========================================================================
# The walk
# ==========================================================================
class _Node:
    """One object reached, with how to reach it again from its parent."""

    __slots__ = ("index", "parent", "kind", "key", "obj", "path", "hidden", "category", "children", "primary",
                 "in_module", "phrase", "reason", "snapshot", "readable")

    def __init__(self, index, parent, kind, key, obj, path, hidden, category):
        # kind: "root" (key "fn"/"args"), "const", "fixed", "item", "dget", "attr"
        self.index, self.parent, self.kind, self.key, self.obj, self.path = index, parent, kind, key, obj, path
        self.hidden = hidden  # a step of no interest to a reader (a registry, __defaults__, a cell)
        self.category, self.children = category, []
        self.primary = None  # the node where this object was first reached, for a second path to it
        self.in_module = False
        self.phrase = None  # the root's own failure phrase
        self.reason = None  # when the code reached can read it (see Sources._readable); None: as its parent
        self.snapshot = None  # what it held when the walk reached it (a dict's keys, a list's length...)
        self.readable = None  # set by the walk's end

    def label(self):
        return self.path or "the compiled function"


class Sources:
    """What a function can reach before it is traced, each object with its access path.

    >>> import numpy as np
    >>> from autograd_core import Value
    >>> class Config:
    ...     pass
    >>> cfg = Config(); cfg.w = Value(np.ones(2)); cfg.scale = 2.0
    >>> def loss(x):
    ...     return (x * cfg.w * cfg.scale).sum()
    >>> sources = Sources.walk(loss, (np.ones(2),))
    >>> sources.path_of(cfg.w), sources.path_of(cfg), sources.path_of(np.ones(2))
    ('cfg.w', 'cfg', None)
    """

    def __init__(self):
        self._nodes, self._roots, self._first = [], [], {}  # (_first: id(obj) -> the node of its first path)
        self._scalar_first, self._edges, self._queue, self._module_queue = {}, set(), deque(), deque()
        self._code_names = set()
        self._user_names = set()  # the names the user's own code reads (a plain object's attributes: only these)
        self._reads_every_item = False  # whether the user's code iterates over or unpacks dicts
        self._reads_every_attribute = False  # whether it reads an object's attributes without naming them
        self._reads_every_field = False  # whether it reads a dataclass object's fields so (asdict(cfg))
        self._name_parts = set()  # the pieces of text it makes attribute names with (getattr(self, f"scale{i}"))
        self._literals = set()  # the strings of the user's code that calls getattr (the names it may read)
        self._code_consts = set()  # the strings of the user's code: names and keys it reads
        self._reached_strings = set()  # strings the walk reached (values): keys; names where it reads by strings
        self._library_keys = set()  # string constants of the library's code reached (group["lr"] in a scheduler)
        self._codes, self._code_ids = [], set()  # the code objects reached (kept so their ids stay theirs)
        self._classes, self._class_ids = [], set()  # [class, names looked up, the dicts of its MRO's classes]
        self._class_nodes = {}  # class -> the node its attributes are read from
        self._instantiable = set()  # ids of the classes the code reads as objects (it may make instances)
        self._deferred = []  # library objects reached, walked once the code is seen to read them
        self._snapshot_bytes = 0
        self._python_modules = []  # [node, names looked up, a library's (only the user's code's names)]
        self._globals_nodes = {}
        self._root_globals = None
        self._candidates = []  # numbers and opaque objects: (parent, kind, key, value, path, reason, category)
        self._method_ids, self._root_guard, self._looked = set(), None, 0
        self._kept = []  # objects whose ids are keys above
        self.modules = []
        self.truncated = False  # True if the walk stopped at WALK_LIMIT: some guards may be missing

    # ---- public ----------------------------------------------------------------
    @classmethod
    def walk(cls, fn, args):
        """Walk what `fn` can reach when called with `args` (iteratively, each object once,
        at most about ``WALK_LIMIT`` objects). Arrays and Values among the arguments
        are not walked (the runtime keys on them); modules among them are.

        >>> import numpy as np
        >>> from autograd_core import Value
        >>> def make(beta):
        ...     w = Value(np.ones(2))
        ...     return w, lambda x: (x * w * beta).sum()
        >>> w, loss = make(0.5)
        >>> Sources.walk(loss, (np.ones(2),)).path_of(w)
        'w'
        """
        sources = cls()
        sources._walk(fn, tuple(args))
        return sources

    def path_of(self, obj):
        """The readable path of an object reached (``"self.model.fc.weight"``), or None.

        >>> import numpy as np
        >>> table = {"w": np.zeros(2)}
        >>> Sources.walk(lambda x: x * table["w"], ()).path_of(table["w"])
        "table['w']"
        """
        node = self._first.get(id(obj))
        if node is None:
            node = self._scalar_first.get(id(obj))
            if node is None or node.obj is not obj:
                return None
        return node.path

    def __repr__(self):
        return f"<Sources: {len(self._nodes)} objects reached, {len(self.modules)} modules>"

    # ---- nodes -----------------------------------------------------------------
    def _new(self, parent, kind, key, obj, path, hidden=False, category=None):
        node = _Node(len(self._nodes), parent, kind, key, obj, path, hidden, category)
        self._nodes.append(node)
        if parent is None:
            self._roots.append(node)
        else:
            parent.children.append(node)
            if parent.category == "module" or (
                parent.category == "registry" and parent.parent is not None and parent.parent.category == "module"
            ):
                node.in_module = True
        return node

    def _full(self):
        if len(self._nodes) + len(self._candidates) >= WALK_LIMIT or self._looked >= LOOK_LIMIT:
            self.truncated = True
            return True
        return False

    def _budget(self):
        """How many more objects the walk may look at (a long list is not even copied whole)."""
        return max(0, LOOK_LIMIT - self._looked) + 1

    def _child(self, parent, kind, key, obj, path, reason=None):
        """Record `obj`, reached from `parent` by one step; queue it to be walked. Numbers
        are kept as candidates (`reason` says when they are guarded)."""
        self._looked += 1
        try:
            edge = (parent.index, kind, key)
            if edge in self._edges:
                return None
            self._edges.add(edge)
        except TypeError:  # an unhashable key: no duplicate check
            pass
        if _is_scalar(obj):
            if not self._full():
                self._candidates.append((parent, kind, key, obj, path, reason, "scalar"))
                if type(obj) is str:  # (a key or a name the code may read by: getattr(helpers, cfg["coef"]))
                    self._reached_strings.add(obj)
            return None
        category = self._category(obj)
        if category is None:  # a library function, a class, a random generator: the same object, or retrace
            if id(obj) in _READERS:  # (getattr, vars, astuple under another name)
                self._reads_by(_READERS[id(obj)])
            elif isinstance(obj, _BUILTIN_METHODS) and getattr(obj, "__name__", None) in _READ_BY_STRINGS:
                self._reads_by(obj.__name__)  # (read = object.__getattribute__)
            if not isinstance(obj, types.ModuleType) and not self._full():
                self._candidates.append((parent, kind, key, obj, path, reason, "opaque"))
            return None
        first = self._first.get(id(obj))
        if first is not None:
            if category in ("value", "array", "module", "function", "dict", "sequence", "object", "class"):
                if self._full():
                    return None
                node = self._new(parent, kind, key, obj, path, category=category)
                node.primary = first
                node.reason = reason
                return node
            return None
        if self._full():
            return None
        node = self._new(parent, kind, key, obj, path, category=category)
        node.reason = reason
        self._first[id(obj)] = node
        if category == "array" and (obj.size <= SMALL_ARRAY or self._snapshot_bytes < DIGEST_TOTAL):
            self._snapshot_bytes += obj.nbytes  # (what the call writes into it, eager does again and a replay not)
            node.snapshot = array_digest(obj)
        elif category == "value" and isinstance(obj._data, (np.ndarray, np.generic)) and (
                self._snapshot_bytes < DIGEST_TOTAL):
            self._snapshot_bytes += obj._data.nbytes  # (w._data *= 0.9, w._data = ...: its array and numbers)
            node.snapshot = (obj._data, _value_digest(obj._data))
        if category == "module":
            self._module_queue.append(node)
        elif category == "object" and _is_library_class(type(obj)):
            self._deferred.append(node)  # a library's object (an optimizer): walked only if the code reads it
        elif category not in ("value", "array") or not _is_library_class(type(obj)):
            self._queue.append(node)
        return node

    def _category(self, obj):
        cls = type(obj)  # (not isinstance: it reads __class__, which runs a user's __getattribute__)
        if hasattr(cls, "_ends_the_graph"):  # a compiled call's result (trainer.last = loss): its data only
            return None
        if issubclass(cls, Value):
            return "value"
        if issubclass(cls, np.ndarray):
            return "array"
        if issubclass(cls, type):  # a class the code reads itself (Cfg.beta): the user's is walked
            return None if _is_library_class(obj) else "class"
        if _is_module(obj):
            return "module"
        if issubclass(cls, types.FunctionType):  # (a library's wrapper of the user's: @contextmanager, walked)
            return None if _is_library_function(obj) and not _wraps_user_code(obj) else "function"
        if issubclass(cls, types.MethodType) or (issubclass(cls, _BUILTIN_METHODS) and isinstance(
                getattr(obj, "__self__", None), _READ_BY_ITS_OBJECT)):  # (record = sizes.append: its list too)
            return "method"
        if issubclass(cls, functools.partial):
            return "partial"
        if issubclass(cls, types.ModuleType):
            return "library_module" if _is_library_module(obj) else "python_module"
        if issubclass(cls, dict):
            return "dict"
        if issubclass(cls, (list, tuple, deque)):
            return "sequence"
        if _instance_dict(obj) is not None or _slot_names(cls):
            return "object"
        return None

    # ---- roots -----------------------------------------------------------------
    def _walk(self, fn, args):
        self._reached_strings.update(_strings_in(tuple(a for a in args if isinstance(a, str))))  # (step(x, "ce"))
        root = self._new(None, "root", "fn", fn, "", hidden=True, category="root")
        self._root(root, fn)
        if any(_is_module(a) for a in args):
            args_node = self._new(None, "root", "args", args, "", hidden=True, category="root")
            for k, arg in enumerate(args):
                if _is_module(arg):
                    self._child(args_node, "item", k, arg, f"arg{k}")
        self._run()
        self._finish()

    def _root(self, node, fn):
        """The roots of the compiled callable at `node` (the ``fn`` argument of a check)."""
        if self._root_guard is None:
            self._root_guard = node
            node.phrase = "the compiled function is another object than the one traced"
        if isinstance(fn, types.MethodType):
            func_node = self._new(node, "fixed", "__func__", fn.__func__, "", hidden=True, category="root")
            if self._root_guard is node:
                self._root_guard = func_node
                func_node.phrase = "the compiled method is another function than the one traced"
            self._child(node, "fixed", "__self__", fn.__self__, "self")
            self._root(func_node, fn.__func__)
        elif isinstance(fn, functools.partial):
            args_node = self._new(node, "fixed", "args", fn.args, "partial.args", hidden=True, category="sequence")
            for k, arg in enumerate(fn.args):
                self._child(args_node, "item", k, arg, f"partial.args[{k}]", reason="always")
            if fn.keywords:
                kw_node = self._new(node, "fixed", "keywords", fn.keywords, "partial.keywords", hidden=True,
                                    category="dict")
                for name, arg in fn.keywords.items():
                    self._child(kw_node, "item", name, arg, f"partial.keywords[{name!r}]", reason="always")
            func_node = self._new(node, "fixed", "func", fn.func, "partial.func", hidden=True, category="root")
            self._root(func_node, fn.func)
        elif isinstance(fn, types.FunctionType):
            self._root_function(node, fn)
        else:  # a callable object (a module compiled itself): "self", and its class's forward/__call__
            node.path = "self"
            node.hidden = False
            node.phrase = "self was replaced"
            category = self._category(fn)
            if category is not None:
                node.category = category
                self._first[id(fn)] = node
                (self._module_queue if category == "module" else self._queue).append(node)
            self._register_class(type(fn))

    def _root_function(self, node, fn):
        try:
            target = inspect.unwrap(fn)
        except ValueError:  # a cycle of __wrapped__
            target = fn
        if target is not fn:  # decorated: the original function's names read as the user wrote them
            target_node = self._new(node, "const", target, target, "", hidden=True, category="root")
            if isinstance(target, types.FunctionType):
                self._function(target_node, target, cell_prefix="", default_prefix="")
                self._first.setdefault(id(target), target_node)
            else:
                self._root(target_node, target)
            if not _is_library_function(fn):
                self._function(node, fn, cell_prefix="<wrapper>.", default_prefix="<wrapper>.")
        else:  # the compiled function itself is walked wherever it was written (the trainer's own step too)
            self._function(node, fn, cell_prefix="", default_prefix="")
            self._first.setdefault(id(fn), node)

    # ---- functions and code ------------------------------------------------------
    def _function(self, node, fn, cell_prefix=None, default_prefix=None):
        """A user function's closure cells, defaults and the globals its code names."""
        code = fn.__code__
        if cell_prefix is None:
            cell_prefix = f"{node.path}.<closure>."
            default_prefix = f"{node.path}.<default>."
        self._add_code(code, user=True)
        for name, cell in zip(code.co_freevars, fn.__closure__ or ()):
            if name == "__class__":  # (super()'s cell: the method's own class, not one the code makes objects of)
                continue
            try:
                value = cell.cell_contents
            except ValueError:  # an empty cell (a name bound later)
                continue
            cell_node = self._new(node, "const", cell, cell, node.path, hidden=True, category="cell")
            self._child(cell_node, "fixed", "cell_contents", value, cell_prefix + name, reason="always")
        if fn.__defaults__:
            positional = code.co_varnames[:code.co_argcount]
            names = positional[len(positional) - len(fn.__defaults__):]
            defaults_node = self._new(node, "fixed", "__defaults__", fn.__defaults__, node.path, hidden=True,
                                      category="sequence")
            for k, (name, value) in enumerate(zip(names, fn.__defaults__)):
                self._child(defaults_node, "item", k, value, default_prefix + name, reason="always")
        if fn.__kwdefaults__:
            kw_node = self._new(node, "fixed", "__kwdefaults__", fn.__kwdefaults__, node.path, hidden=True,
                                category="dict")
            for name, value in fn.__kwdefaults__.items():
                self._child(kw_node, "item", name, value, default_prefix + name, reason="always")
        for name, value in list(getattr(fn, "__dict__", {}).items()):  # loss.scale = 2.0, read as loss.scale
            if type(name) is str:
                self._child(node, "attr", name, value, _attribute_path(node.path or fn.__name__, name),
                            reason=("name", name))
        g = fn.__globals__
        names = _names_of(code)
        loaded = _global_loads(code)
        if not _BY_NAME_STRING.isdisjoint(names):  # globals()["SCALE"], vars(mod)["scale"]: strings name globals
            names = names | _strings_of(code)
            if "globals" in names:  # (globals().get("SCALE"): one defined later retraces)
                loaded = loaded | {k for k in _strings_of(code) if k.isidentifier()}
        named = [name for name in sorted(names) if name in g]
        if named:
            g_node = self._globals_node(g)
            prefix = g_node.path
            for name in named:
                self._child(g_node, "item", name, g[name], prefix + name, reason="always")
        absent = [name for name in sorted(loaded) if name not in g]
        if absent:  # max(...) is the builtin while no global `max` shadows it, a `try: SCALE except NameError`
            g_node = self._globals_node(g)  # finds none: one defined later retraces
            g_node.snapshot = tuple(sorted(set(g_node.snapshot or ()) | set(absent)))

    def _globals_node(self, g):
        node = self._globals_nodes.get(id(g))
        if node is None:
            if self._root_globals is None:
                self._root_globals = g
            prefix = "" if g is self._root_globals else f"{g.get('__name__', '<globals>')}."
            node = self._new(None, "const", g, g, prefix, hidden=True, category="globals")
            self._globals_nodes[id(g)] = node
            self._kept.append(g)
        return node

    def _add_code(self, code, user, constructor=False):
        """Note what `code` (and the code nested in it) reads: the user's (`user`), or the library's;
        a `constructor`'s assignments to the object it makes are no reads (self.epoch = 0)."""
        if user:  # (over its nested code too: the name may be made in a comprehension, getattr called outside)
            names = _names_of(code)
            self._reads_every_attribute |= not _EVERY_ATTRIBUTE.isdisjoint(names)  # vars(self).values()
            self._reads_every_field |= not _EVERY_FIELD.isdisjoint(names)  # dataclasses.astuple(cfg)
            self._name_parts |= _name_pieces(code)
        strings = bool(_strings_of(code))  # (the function's, for its comprehensions too)
        stack = [code]
        while stack:
            c = stack.pop()
            if id(c) in self._code_ids:
                continue
            self._code_ids.add(id(c))
            self._codes.append(c)
            names = _constructor_names(c) if constructor else c.co_names  # (self.epoch = 0 in one is no read)
            self._code_names.update(names)
            if user:
                self._user_names.update(names)
                if _reads_any_key(c, strings):
                    self._reads_every_item = True  # d.values(), f(**opts): every item of a dict is read
            stack.extend(k for k in c.co_consts if isinstance(k, types.CodeType))
            by_name = user and not _BY_NAME.isdisjoint(c.co_names)
            for k in _strings_in_consts(c):  # (and a tuple's: for n in ("wa", "wb"): getattr(cfg, n))
                (self._code_consts if user else self._library_keys).add(k)
                if user:  # (a dotted path's names: names where the code reads attributes by strings)
                    self._reached_strings.update(_with_dotted_names(k)[1:])
                if user and "{" in k:
                    self._user_names.update(_format_attributes(k))
                if by_name:  # (getattr(self, "act_a"): a method's name; trainer.phase == "fit" names no method)
                    self._literals.add(k)
                    if k in _EVERY_ATTRIBUTE or k in _EVERY_FIELD:  # (getattr(cfg, "__dict__"))
                        self._reads_by(k)
            if user and _matches_classes(c):  # (match cfg: case Cfg(a, b): reads __match_args__'s attributes)
                self._reads_every_attribute = True

    def _reads_by(self, name):
        """The code may call the function `name` (held under another name): it reads attributes by strings
        (getattr), or every attribute (vars, dir), or every field of records (astuple), or every item of
        a dict (values)."""
        if name in _READ_BY_STRINGS or name in _EVERY_ATTRIBUTE or name in _EVERY_FIELD:
            self._user_names.add(name)
        self._reads_every_attribute |= name in _EVERY_ATTRIBUTE
        self._reads_every_field |= name in _EVERY_FIELD
        self._reads_every_item |= name in _EVERY_ITEM

    def _register_class(self, cls):
        if id(cls) not in self._class_ids:
            self._class_ids.add(id(cls))
            # its classes' dicts, as the walk found them (a name is looked up in them, not copied out)
            self._classes.append([cls, set(), [klass.__dict__ for klass in cls.__mro__ if klass is not object]])
            self._reached_strings.add(cls.__name__)  # (a registry's key: SCALES[type(self).__name__])
            for klass in cls.__mro__[:-1]:  # (getattr(cfg, "scale", 1.0), then Base.scale = 3.0: retrace)
                if not _is_library_class(klass) and getattr(klass, "__module__", None) != "builtins":
                    self._class_node(klass)
            if not _is_library_class(type(cls)):
                self._register_class(type(cls))  # a metaclass of the user's (type(self).factor found on Meta)

    def _method(self, cls, name):
        """(class, function) of each definition of `cls`'s attribute `name` along its MRO (a method, a
        property's getter): the first one, and the ones ``super()`` reaches, up to the library's."""
        found = []
        for klass in cls.__mro__[:-1]:
            if name not in klass.__dict__:
                continue
            attr = klass.__dict__[name]
            library = _is_library_class(klass)
            if name == "__call__" and library:
                break  # the library's calling machinery (Module.__call__), not the model's code
            if isinstance(attr, (staticmethod, classmethod)):
                attr = attr.__func__
            if isinstance(attr, property):
                attr = attr.fget
            if isinstance(attr, functools.cached_property):
                attr = attr.func
            if isinstance(attr, types.FunctionType):
                found.append((klass, attr))
            if library:
                break
        return found

    def _class_attribute(self, cls, name):
        """A class attribute the code reads (``self.temperature`` set on the class): a number is
        guarded, an object walked; methods and other descriptors are code, walked as such. Every
        class of the MRO that defines it (a property's ``super().scale`` reads the next one's)."""
        for klass in cls.__mro__[:-1]:
            if name in klass.__dict__:
                attr = klass.__dict__[name]
                if hasattr(type(attr), "__get__"):  # a function, a property, a slot: code, walked as such
                    if not _is_library_class(type(attr)):
                        self._register_class(type(attr))  # (a descriptor of the user's: its __get__ too,
                        self._guard_class_attribute(cls, klass, name)  # and the state it keeps, walked)
                else:
                    self._guard_class_attribute(cls, klass, name)

    def _guard_class_attribute(self, cls, klass, name):
        """`name`, read on `cls`, found on `klass`: its value there, and the attribute count of each class
        before it in the MRO (Sub.t set later would shadow Base.t), are guarded."""
        for earlier in cls.__mro__[:cls.__mro__.index(klass)]:
            self._class_node(earlier)
        self._child(self._class_node(klass), "attr", name, klass.__dict__[name], f"{klass.__qualname__}.{name}",
                    reason="always")

    def _class_node(self, klass):
        """The node a class's attributes are read from, its attribute count kept (a name added to it retraces)."""
        node = self._class_nodes.get(klass)
        if node is None:
            node = self._class_nodes[klass] = self._new(None, "const", klass, klass, klass.__qualname__,
                                                        hidden=True, category="class")
            node.snapshot = class_size(klass)  # (nn.Linear.__call__ = wrapper later shadows Module.__call__)
            self._kept.append(klass)
        return node

    def _add_method(self, cls, klass, name, fn):
        library = _is_library_function(fn)
        self._add_code(fn.__code__, user=not library, constructor=name in _CONSTRUCTORS)
        # Net.forward = other, a staticmethod swapped: retrace; of a library's class, its forward and __call__
        # only (nn.Linear.forward patched; what the library's code calls inside is not followed)
        if not _is_library_class(cls) or name in ("forward", "__call__"):
            self._guard_class_attribute(cls, klass, name)
        if library or id(fn) in self._method_ids:
            return
        self._method_ids.add(id(fn))
        self._kept.append(fn)
        path = f"{cls.__qualname__}.{name}"
        node = self._new(None, "const", fn, fn, path, hidden=True, category="method_code")
        self._function(node, fn)

    # ---- the loop ------------------------------------------------------------------
    def _run(self):
        while True:
            while self._module_queue or self._queue:
                node = (self._module_queue or self._queue).popleft()
                self._visit(node)
            if self._grow():
                continue
            readable = [node for node in self._deferred if self._readable_now(node)]
            if not readable:
                return
            self._deferred = [node for node in self._deferred if node not in readable]
            self._queue.extend(readable)

    def _readable_now(self, node):
        """`_readable` of a node before the walk's end, with the names the code reached so far."""
        while node is not None:
            if node.reason is not None:
                return self._readable(node.reason, node.parent)
            node = node.parent
        return True

    def _grow(self):
        """Look up, in classes and Python modules reached, the names the code reached
        reads; True if that reached anything new."""
        grew = False
        while True:
            before = (len(self._code_names), len(self._nodes), len(self._classes))
            for entry in self._classes:
                cls, done, dicts = entry
                user_class = not _is_library_class(cls)  # (the user's: also by the strings its code holds,
                names = (self._code_names | _CALLED_IMPLICITLY | (self._literals if user_class else set()) | (
                    self._reached_strings if user_class and self._by_strings() else set())) - done
                if id(cls) not in self._instantiable:  # getattr(self, "act_a"); constructors: of a class the code
                    names -= _CONSTRUCTORS  # reads itself, Scaler(), not of every class a super().__init__() names)
                done |= names
                defined = set()
                for d in dicts:
                    defined |= d.keys() & names  # (C's intersection walks the smaller of the two)
                    if user_class and self._name_parts:  # (getattr(self, f"act_{i}")(): act_1, act_2)
                        defined |= {n for n in d.keys() - done if type(n) is str and self._made_name(n)}
                    if user_class:  # (Python calls a user class's special methods itself: x * s, s < x, with s:;
                        # its constructors where the code reads the class itself, and may make one: Scaler())
                        special = d.keys() & (_SPECIAL if id(cls) in self._instantiable else _COMPUTING)
                        defined |= special - done
                done |= defined
                for name in sorted(defined):  # (only names some class of its MRO defines)
                    for klass, fn in self._method(cls, name):
                        self._add_method(cls, klass, name, fn)
                    if name == "__call__" and not user_class:  # (Module.__call__: not walked, but patched later)
                        self._guard_class_attribute(cls, next(k for k in cls.__mro__ if name in k.__dict__), name)
                    if user_class and not name.startswith("__"):
                        self._class_attribute(cls, name)
            for entry in self._python_modules:
                node, done, library = entry
                d = _instance_dict(node.obj) or {}
                names = self._user_names if library else self._code_names | self._strings("name")  # (mod.__dict__["s"])
                for name in sorted((names & d.keys()) - done):
                    done.add(name)
                    self._child(node, "attr", name, d[name], _attribute_path(node.path, name), reason="always")
            after = (len(self._code_names), len(self._nodes), len(self._classes))
            if after == before:
                return grew or bool(self._queue or self._module_queue)
            grew = True

    def _attributes(self, node, holder, d, how, slots):
        """Walk the attributes of `node`'s object: those in its ``__dict__`` `d` (children of `holder`),
        and its `slots` ((name, name stored under) pairs)."""
        obj, path = node.obj, node.path
        kind = "attr" if holder is node else "item"
        for name, value in list((d or {}).items()):  # (of a compiled function: its function, not its cache)
            if type(name) is str and name in getattr(type(obj), "_walked_attributes", (name,)):
                self._child(holder, kind, name, value, _attribute_path(path, name), reason=(how, name))
        for name, stored in slots:
            try:
                value = _slot_value(obj, stored)
            except Exception:  # noqa: BLE001 (an empty slot; a __getattr__ that raises: nothing to guard)
                continue
            self._child(node, "slot", stored, value, _attribute_path(path, name), reason=(how, stored))

    def _own_state(self, node):
        """The class and the instance attributes of the user's subclass of Value, ndarray, dict, list or tuple
        (a scale kept on a Parameter, a temperature on a Config(dict)), besides the data or items it holds."""
        obj = node.obj
        self._register_class(type(obj))
        d = _instance_dict(obj)
        holder = node
        if d is not None:  # (its attributes' names guarded as the keys of its __dict__)
            holder = self._new(node, "fixed", "__dict__", d, node.path, category="dict")
            holder.snapshot = keys_of(d)
        library = {s for klass in type(obj).__mro__ if _is_library_class(klass) for _, s in _slot_names(klass)}
        self._attributes(node, holder, d, "user", [(n, s) for n, s in _slot_names(type(obj)) if s not in library])

    def _visit(self, node):
        obj, category, path = node.obj, node.category, node.path
        if category == "module":
            self.modules.append((path, obj))
            self._register_class(type(obj))
            node.snapshot = _module_counts(obj)  # (a parameter or buffer registered later retraces)
            for name, value in list(obj.__dict__.items()):
                if type(name) is not str or name in ("training", "_non_persistent"):
                    continue
                if name in _REGISTRIES and isinstance(value, dict):
                    registry = self._new(node, "attr", name, value, path, hidden=True, category="registry")
                    for key, item in list(value.items()):
                        if type(key) is str:
                            self._child(registry, "item", key, item, _registry_path(path, key), reason=("name", key))
                else:
                    self._child(node, "attr", name, value, _attribute_path(path, name), reason=("name", name))
        elif category == "object":
            self._register_class(type(obj))
            # a plain object's attributes are read by the user's code; an object of this project's (a scheduler,
            # the user's subclass of one) or a container of the standard library's (a ChainMap), also by its
            # methods the code calls (get_last_lr() reads _last_lr, cfg["k"] reads cfg.maps); another library's
            # (a threading.Event) is state of its own, read by the user's code only
            how = "name" if any(map(_is_read_by_its_methods, type(obj).__mro__[:-1])) else "user"
            d = _instance_dict(obj)
            if d is not None:
                node.snapshot = tuple(d)  # (its names: `del c.a; c.b = 1` keeps their count)
            self._attributes(node, node, d, how, _slot_names(type(obj)))
        elif category in ("value", "array"):  # (of a subclass of the user's: queued for its attributes)
            self._own_state(node)
        elif category == "function":
            self._function(node, obj)
        elif category == "method":  # (a bound method; the builtin one of a dict or list: weights.get)
            self._child(node, "fixed", "__self__", obj.__self__, f"{path}.__self__")
            func = getattr(obj, "__func__", obj)
            self._reads_by(getattr(func, "__name__", None))  # (dump = cfg.model_dump, vals = weights.values)
            if func is not obj:
                self._child(node, "fixed", "__func__", obj.__func__, f"{path}.__func__")
        elif category == "partial":
            self._child(node, "fixed", "func", obj.func, f"{path}.func")
            args_node = self._new(node, "fixed", "args", obj.args, path, hidden=True, category="sequence")
            for k, arg in enumerate(obj.args):
                self._child(args_node, "item", k, arg, f"{path}.args[{k}]", reason="always")
            if obj.keywords:
                kw_node = self._new(node, "fixed", "keywords", obj.keywords, path, hidden=True, category="dict")
                for name, arg in obj.keywords.items():
                    self._child(kw_node, "item", name, arg, f"{path}.keywords[{name!r}]", reason="always")
        elif category == "library_module":  # (ag.tanh = ag.sigmoid after the trace: what the user's code names)
            self._python_modules.append([node, set(), True])
        elif category == "python_module":
            self._python_modules.append([node, set(), False])
            getter = (_instance_dict(obj) or {}).get("__getattr__")
            if type(getter) is types.FunctionType and not _is_library_function(getter):
                self._child(node, "attr", "__getattr__", getter, _attribute_path(path, "__getattr__"), reason="always")
        elif category == "class":
            node.snapshot = len(obj.__dict__)
            self._instantiable.add(id(obj))
            self._register_class(obj)  # its attributes and methods, by the names the code reads
            if not _is_library_class(type(obj)):
                self._register_class(type(obj))  # (a metaclass's: C.beta found on Meta)
        elif category == "dict":
            kind = "item" if type(obj) in (dict, OrderedDict) else "dget"
            if kind == "dget" and not _is_library_class(type(obj)):
                self._own_state(node)  # (its __getitem__ is code the walk reads; its attributes, state)
            node.snapshot = keys_of(obj)
            for key, value in list(itertools.islice(dict.items(obj), self._budget())):
                if self._full():
                    break
                # an item under a string key is read where the code names the key; under another key, or
                # where the user's code iterates over dicts (.values(), .items()), wherever the dict is
                self._child(node, kind, key, value, f"{path}[{_key_text(key)}]",
                            reason=("key", key) if type(key) is str else None)
        elif category == "sequence":
            base = list if isinstance(obj, list) else tuple if isinstance(obj, tuple) else deque
            plain = type(obj) is base
            if not plain:  # a subclass: its own __getitem__ and __iter__ are code the walk reads
                self._register_class(type(obj))
                if not _is_library_class(type(obj)):
                    self._own_state(node)
            node.snapshot = base.__len__(obj)
            for k, value in enumerate(itertools.islice(base.__iter__(obj), self._budget())):
                if self._full():
                    break
                self._child(node, "item" if plain else "sget", k, value, f"{path}[{k}]")

    def _readable(self, reason, parent):
        """Whether the code reached can read what was reached for `reason` from `parent`:
        "always" (a closure cell, a named global, a default); ("name", n), a module's attribute
        the code reached reads; ("user", n), a plain object's attribute the user's code reads;
        ("key", k), a dict's item under a key the user's code names (or any key, where it
        iterates over or unpacks dicts), in a dict it can read; any of them named as a string
        constant of the user's code; and, with no reason, whatever its container is (an item
        of a list the code can read)."""
        if reason == "always":
            return True
        if reason is None:
            return parent is None or parent.readable
        how, name = reason  # ("name" | "user", an attribute's name) or ("key", a dict's string key)
        if name in self._code_consts or (name in self._reached_strings and (how == "key" or self._by_strings())):
            return True
        if how == "key":  # (a name the user's code reads may be served from a dict: cfg.beta by __getattr__)
            return (name in self._user_names or name in self._library_keys or self._reads_every_item) and (
                parent is None or parent.readable)
        # (a module's own forward, set on the instance, is called by Module.__call__, which is not walked)
        return name in (self._code_names if how == "name" else self._user_names) or (
            how == "name" and name in _CALLED_IMPLICITLY) or self._read_without_its_name(how, name, parent)

    def _strings(self, how):
        """The strings that may name what is read for `how`: a key, any string the code holds or reaches; an
        attribute's name, those the code holds, and those it reaches where it reads attributes by strings
        (getattr(helpers, cfg["coef"]), vars(mod)[KEY]; not self.epoch beside log_every="epoch")."""
        return self._code_consts | self._reached_strings if how == "key" or self._by_strings() else self._code_consts

    def _by_strings(self):
        return not self._user_names.isdisjoint(_READ_BY_STRINGS)

    def _read_without_its_name(self, how, name, parent):
        """Whether the code may read attribute `name` of `parent`'s object by a name it makes (see _add_code):
        any attribute of a user object where it reads them all, one named with the pieces it makes names of."""
        if parent is None:
            return False
        cls = type(parent.obj)
        every = self._reads_every_attribute or (self._reads_every_field and _is_record(cls))
        if every and how == "user" and (not _is_library_class(cls) or cls in _DATA_CLASSES):
            return True
        return self._made_name(name)

    def _made_name(self, name):
        """Whether `name` may be one the code makes: it holds a piece it makes names of (a one-letter piece,
        "w" of "w%d", at its start or end: not forward_calls)."""
        return any(part in name if len(part) > 1 else name.startswith(part) or name.endswith(part)
                   for part in self._name_parts)

    def _finish(self):
        """Which objects the code reached can read; numbers and opaque objects become nodes where it can."""
        # the strings the code can reach may be dict keys it reads: KEY = "scale" read as cfg[KEY], TERMS = ("ce",
        # "l2") looped over, a str Enum's member (cfg[Term.L2]), a key held in another dict (taken as reachable)
        for _, _, _, value, _, _, category in self._candidates:
            if category in ("scalar", "opaque"):
                self._reached_strings.update(_strings_in(value))
        self._reached_strings.update(str.__str__(node.obj) for node in self._nodes if isinstance(node.obj, str))
        self._reached_strings.update(*map(_with_dotted_names, list(self._reached_strings)))
        for node in self._nodes:  # (a parent is made before its children)
            node.readable = node.parent is None or self._readable(node.reason, node.parent)
        # the names the user's code may read that a module or class of the user's lacks: one defined later
        # retraces (getattr(cfg, "OVERRIDE", 1.0), `try: cfg.S except AttributeError`, Base.scale = 3.0)
        readable = self._user_names | {k for k in self._strings("user") if k.isidentifier()}
        for node, _, library in self._python_modules:
            if not library:
                node.snapshot = frozenset(readable - (_instance_dict(node.obj) or {}).keys())
        for klass, node in self._class_nodes.items():
            if not _is_library_class(klass) and getattr(klass, "__module__", None) != "builtins":
                node.snapshot = frozenset(readable - klass.__dict__.keys())
        self._names_readable(frozenset(readable))
        for parent, kind, key, value, path, reason, category in self._candidates:
            if not self._readable(reason, parent):
                continue
            if category == "scalar" and reason == ("name", "training") and parent.category == "module":
                continue  # (the module's guard has its mode)
            if type(value) is set:  # (`x in allowed`: what the set held, compared as a whole)
                value, category = frozenset(value), "scalar"
            elif type(value) is np.void:  # (a structured array's record: a view of it, compared by its fields)
                value = value.copy()
            node = self._new(parent, kind, key, value, path, category=category)
            node.readable = True
            if category == "scalar":
                self._scalar_first.setdefault(id(value), node)
            else:  # (an opaque object held, found by path_of: a generator given to dropout)
                self._first.setdefault(id(value), node)
        self._candidates = []
        self._edges = set()

    def _names_readable(self, readable):
        """Make the names of objects and modules reached a Names (what a replay compares)."""
        every = self._reads_every_attribute or bool(self._name_parts)
        by_modules = None if every else frozenset(  # (a module's attributes: read by its code too)
            self._code_names | _CALLED_IMPLICITLY | {k for k in self._strings("name") if k.isidentifier()})
        for node in self._nodes:
            if node.primary is not None or node.snapshot is None:
                continue
            if node.category == "object" and type(node.snapshot) is tuple:
                cls = type(node.obj)  # (an object of the library's: read by its methods, any name)
                mine = not any(map(_is_read_by_its_methods, cls.__mro__[:-1]))
                fields = self._reads_every_field and _is_record(cls)
                node.snapshot = Names(frozenset(node.snapshot), readable if mine and not (every or fields) else None)
            elif node.category == "module":
                node.snapshot = (Names(node.snapshot[0], by_modules),) + node.snapshot[1:]

    def reached(self, classes):
        """(path, object) of each object reached, or method's object, of `classes` (generators: draw = rng.random)."""
        methods = (types.BuiltinMethodType, types.MethodWrapperType, types.MethodType)
        return [(node.path, obj) for node in self._nodes for obj in (
            node.obj, node.obj.__self__ if isinstance(node.obj, methods) else None) if isinstance(obj, classes)]

    def written(self):
        """The nodes of the arrays reached whose contents the call changed since the walk, and of the
        Values whose array it replaced or wrote into."""
        return [node for node in self._nodes if node.snapshot is not None and (
            (node.category == "array" and array_digest(node.obj) != node.snapshot) or (
                node.category == "value" and _value_written(node.obj, *node.snapshot)))]
