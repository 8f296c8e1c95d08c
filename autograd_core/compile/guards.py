"""Guards: every Python-visible fact a compiled trace read outside its arguments,
recorded with the path it was read through and checked before each replay.

A trace run once with the eager engine depends on more than its arguments: the
modules it reached and their train/eval modes, each parameter's identity,
shape, dtype and ``requires_grad``, buffers, and the Python numbers it read
(``beta`` in a closure, ``self.eps``, ``cfg.lr``). Replaying the recorded
program after one of them changed would silently compute with the old value.
As torch.compile's guards do, this module records each such fact with its
*source*, the access path from the function's roots (``self.model.fc.weight``,
``beta``, ``arg0.bn.running_mean``), and checks them all on each call:

1. `Sources.walk(fn, args)` walks, without recursion and once per object,
   everything the function can reach before it runs: its closure cells, the
   globals its code names, its defaults, a bound method's object, modules
   passed as arguments, and from there modules, plain objects, dicts, lists
   and helper functions.
2. `Guards.build(sources, used)` turns what the trace used (parameters,
   buffers, constants) and what the code can read (modules' modes, numbers
   named in the code reached) into guards, and compiles them into one
   generated Python function that reads each path with direct ``__dict__``
   and item access and stops at the first fact that changed.
3. `Guards.check(fn, args)` runs it: ``None`` when the trace still holds,
   else a short phrase naming the first change (``"beta changed (0.5 -> 0.7)"``).

>>> import numpy as np
>>> from autograd_core import Value
>>> w = Value(np.ones(3), label="w")
>>> beta = 0.5
>>> def loss(x):
...     return (x * w * beta).sum()
>>> guards = Guards.build(Sources.walk(loss, (np.ones(3),)), used=[w])
>>> guards.check(loss, (np.ones(3),)) is None
True
>>> beta = 0.7
>>> guards.check(loss, (np.ones(3),))
'beta changed (0.5 -> 0.7)'

Which numbers are guarded: those in closure cells, named globals, defaults,
attributes of Python modules named by the code, and attributes of reached
objects (dict entries) whose name appears in the code reached (``co_names``,
or a string constant of user code: ``getattr(self, "a b")``, ``cfg["lr"]``).
The code reached is the function's own (nested code included), that of the
helper functions it reaches, and the methods named by that code on the
classes of reached objects, ``forward`` and a user-defined ``__call__``
included. So ``self.eps`` read by ``BatchNorm1d.forward`` is guarded, and a
``self.steps`` counter the loss never reads is not (no needless retrace).

What is deliberately not guarded (the walk does not look there): the contents
of arrays (the program reads them afresh), library code and objects (NumPy,
autograd_core, nn, optim, the standard library, site-packages; nn modules and
Parameters excepted), class attributes, numbers inside lists (histories,
mostly: only tuples of numbers are compared whole), and objects without a
``__dict__``. A walk that stopped at ``WALK_LIMIT`` says so in
``Sources.truncated``: what it did not reach is not guarded, and a used
object it did not reach is in ``Guards.unreached``.

The generated check holds strong references to the objects it compares by
identity (``is``), so an id is never reused while the guards live.

This module imports nothing from ``autograd_core.compile``: the runtime uses it.
"""

from __future__ import annotations

import builtins
import functools
import inspect
import itertools
import keyword
import math
import os
import reprlib
import sys
import sysconfig
import types
from collections import OrderedDict, deque

import numpy as np

from ..engine import Value

__all__ = ["Sources", "Guards"]

WALK_LIMIT = 20_000  # objects (and numbers) the walk records before it stops
LOOK_LIMIT = 10 * WALK_LIMIT  # objects it looks at (a long list of numbers is looked at, not recorded)

# ==========================================================================
# What is library code: not walked, its objects not looked into
# ==========================================================================
_LIBRARY_PACKAGES = frozenset({"numpy", "autograd_core", "nn", "optim"})
_STDLIB = frozenset(getattr(sys, "stdlib_module_names", ())) | {"builtins", "__builtin__"}


def _library_dirs():
    dirs = set()
    paths = sysconfig.get_paths()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        if paths.get(key):
            dirs.add(os.path.normcase(os.path.realpath(paths[key])).rstrip(os.sep) + os.sep)
    return tuple(sorted(dirs))


_LIBRARY_DIRS = _library_dirs()


@functools.lru_cache(maxsize=4096)
def _is_library_file(filename):
    if not filename:
        return False
    if filename.startswith("<frozen"):
        return True
    if filename.startswith("<"):  # "<string>", "<stdin>", a notebook cell: the user's
        return False
    path = os.path.normcase(os.path.realpath(filename))
    parts = path.split(os.sep)
    return "site-packages" in parts or "dist-packages" in parts or path.startswith(_LIBRARY_DIRS)


def _is_library_source(module_name, filename):
    """Library code: this project's packages and NumPy by name; otherwise by where its file
    lies (the standard library, site-packages); a module without a file by its name."""
    top = (module_name or "").partition(".")[0]
    if top in _LIBRARY_PACKAGES:
        return True
    if filename:
        return _is_library_file(filename)
    return top in _STDLIB


def _is_library_module(module):
    return _is_library_source(getattr(module, "__name__", None), getattr(module, "__file__", None))


@functools.lru_cache(maxsize=1024)  # (the same source at every trace of the same model)
def _guard_code(source):
    return builtins.compile(source, "<autograd_core guards>", "exec")


def _is_library_class(cls):
    name = getattr(cls, "__module__", None)
    module = sys.modules.get(name or "")
    filename = getattr(module, "__file__", None) if module is not None else None
    return _is_library_source(name, filename) and _held_by(module, cls)


def _held_by(module, cls):
    """Whether `module` holds `cls` under its qualified name: a class made in a doctest or
    by ``exec`` carries the name of the module it ran in without being part of it."""
    qualname = getattr(cls, "__qualname__", "")
    if module is None or "<locals>" in qualname:
        return module is not None  # made inside one of the library's own functions
    obj = module
    for part in qualname.split("."):
        obj = inspect.getattr_static(obj, part, None)
        if obj is None:
            return False
    return obj is cls


def _is_library_function(func):
    code = getattr(func, "__code__", None)
    filename = code.co_filename if code is not None else ""
    if filename.startswith("<"):  # a doctest, ``exec``, an interactive session: the user's; "<frozen os>": not
        return filename.startswith("<frozen")
    return _is_library_source(getattr(func, "__module__", None), filename)


def _walkable_stdlib(cls):
    """Standard-library classes that hold a user's settings: walked like the user's own."""
    return cls is types.SimpleNamespace or (cls.__module__ == "argparse" and cls.__name__ == "Namespace")


# ==========================================================================
# Kinds of objects
# ==========================================================================
_SCALAR_TYPES = frozenset({int, float, bool, complex, str, bytes, type(None)})
_REGISTRIES = ("_parameters", "_buffers", "_modules")
_FIXED_ATTRIBUTES = frozenset({"__self__", "__func__", "func", "args", "keywords", "__defaults__", "__kwdefaults__",
                               "cell_contents"})


def _is_scalar(obj):
    """A Python number/bool/str/None, a NumPy scalar, or a tuple of those."""
    stack = [obj]
    count = 0
    while stack:
        x = stack.pop()
        t = type(x)
        if t in _SCALAR_TYPES or isinstance(x, np.generic):
            continue
        if isinstance(x, tuple) and count + len(x) <= 64:
            count += len(x)
            stack.extend(x)
            continue
        return False
    return True


def _instance_dict(obj):
    try:
        d = object.__getattribute__(obj, "__dict__")
    except (AttributeError, TypeError):
        return None
    return d if isinstance(d, dict) else None


def _is_module(obj):
    """An nn-style module: ``training`` and the three registries in its ``__dict__``, ``named_parameters``."""
    if isinstance(obj, (type, Value, np.ndarray)):
        return False
    d = _instance_dict(obj)
    return (
        d is not None and "training" in d and "_parameters" in d and "_modules" in d
        and callable(getattr(type(obj), "named_parameters", None))
    )


def _same_scalar(a, b):
    """Equality that also compares types: True != 1, NaN == NaN, 0.0 != -0.0."""
    stack = [(a, b)]
    while stack:
        x, y = stack.pop()
        if x is y:
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


_short = reprlib.Repr()
_short.maxstring = 40
_short.maxother = 40


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


def _names_of(code):
    """co_names of a code object and of every code object nested in it."""
    names = set()
    stack = [code]
    while stack:
        c = stack.pop()
        names.update(c.co_names)
        stack.extend(k for k in c.co_consts if isinstance(k, types.CodeType))
    return names


# ==========================================================================
# The walk
# ==========================================================================
class _Node:
    """One object reached, with how to reach it again from its parent."""

    __slots__ = ("index", "parent", "kind", "key", "obj", "path", "hidden", "category", "children", "primary",
                 "in_module", "phrase")

    def __init__(self, index, parent, kind, key, obj, path, hidden, category):
        self.index = index
        self.parent = parent
        self.kind = kind  # "root" (key "fn"/"args"), "const", "fixed", "item", "dget", "attr"
        self.key = key
        self.obj = obj
        self.path = path
        self.hidden = hidden  # a step of no interest to a reader (a registry, __defaults__, a cell)
        self.category = category
        self.children = []
        self.primary = None  # the node where this object was first reached, for a second path to it
        self.in_module = False
        self.phrase = None  # the root's own failure phrase

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
        self._nodes = []
        self._roots = []
        self._first = {}  # id(obj) -> the node of its first path
        self._scalar_first = {}
        self._edges = set()
        self._queue = deque()
        self._module_queue = deque()
        self._code_names = set()
        self._code_consts = set()
        self._codes = []  # the code objects reached (kept so their ids stay theirs)
        self._code_ids = set()
        self._classes = []  # [class, names looked up]
        self._class_ids = set()
        self._python_modules = []  # [node, names looked up]
        self._globals_nodes = {}
        self._root_globals = None
        self._candidates = []  # numbers: (parent, kind, key, value, path, reason)
        self._method_ids = set()
        self._root_guard = None
        self._kept = []  # objects whose ids are keys above
        self._looked = 0
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
            if reason is not None and not self._full():
                self._candidates.append((parent, kind, key, obj, path, reason))
            return None
        category = self._category(obj)
        if category is None:
            return None
        first = self._first.get(id(obj))
        if first is not None:
            if category in ("value", "array", "module", "function"):
                if self._full():
                    return None
                node = self._new(parent, kind, key, obj, path, category=category)
                node.primary = first
                return node
            return None
        if self._full():
            return None
        node = self._new(parent, kind, key, obj, path, category=category)
        self._first[id(obj)] = node
        if category == "module":
            self._module_queue.append(node)
        elif category not in ("value", "array"):
            self._queue.append(node)
        return node

    def _category(self, obj):
        if isinstance(obj, Value):
            return "value"
        if isinstance(obj, np.ndarray):
            return "array"
        if isinstance(obj, type):
            return None
        if _is_module(obj):
            return "module"
        if isinstance(obj, types.FunctionType):
            return None if _is_library_function(obj) else "function"
        if isinstance(obj, types.MethodType):
            return "method"
        if isinstance(obj, functools.partial):
            return "partial"
        if isinstance(obj, types.ModuleType):
            return None if _is_library_module(obj) else "python_module"
        if isinstance(obj, dict):
            return "dict"
        if isinstance(obj, (list, tuple)):
            return "sequence"
        cls = type(obj)
        if _is_library_class(cls) and not _walkable_stdlib(cls):
            return None
        if _instance_dict(obj) is not None:
            return "object"
        return None

    # ---- roots -----------------------------------------------------------------
    def _walk(self, fn, args):
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
        g = fn.__globals__
        named = [name for name in sorted(_names_of(code)) if name in g]
        if named:
            g_node = self._globals_node(g)
            prefix = g_node.path
            for name in named:
                self._child(g_node, "item", name, g[name], prefix + name, reason="always")

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

    def _add_code(self, code, user):
        stack = [code]
        while stack:
            c = stack.pop()
            if id(c) in self._code_ids:
                continue
            self._code_ids.add(id(c))
            self._codes.append(c)
            self._code_names.update(c.co_names)
            for k in c.co_consts:
                if isinstance(k, types.CodeType):
                    stack.append(k)
                elif user and type(k) is str:
                    self._code_consts.add(k)

    def _register_class(self, cls):
        if id(cls) not in self._class_ids:
            self._class_ids.add(id(cls))
            self._classes.append([cls, set()])

    def _method(self, cls, name):
        """The function(s) behind `cls`'s attribute `name` (a method, a property's getter), or ()."""
        for klass in cls.__mro__:
            if klass is object:
                return ()
            if name in klass.__dict__:
                attr = klass.__dict__[name]
                if name == "__call__" and _is_library_class(klass):
                    return ()  # the library's calling machinery (Module.__call__), not the model's code
                if isinstance(attr, (staticmethod, classmethod)):
                    attr = attr.__func__
                if isinstance(attr, property):
                    return tuple(f for f in (attr.fget,) if isinstance(f, types.FunctionType))
                if isinstance(attr, functools.cached_property):
                    attr = attr.func
                return (attr,) if isinstance(attr, types.FunctionType) else ()
        return ()

    def _add_method(self, cls, name, fn):
        library = _is_library_function(fn)
        self._add_code(fn.__code__, user=not library)
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
            if not self._grow():
                return

    def _grow(self):
        """Look up, in classes and Python modules reached, the names the code reached
        reads; True if that reached anything new."""
        grew = False
        while True:
            before = (len(self._code_names), len(self._nodes), len(self._classes))
            for entry in self._classes:
                cls, done = entry
                for name in (self._code_names | {"forward", "__call__"}) - done:
                    done.add(name)
                    for fn in self._method(cls, name):
                        self._add_method(cls, name, fn)
            for entry in self._python_modules:
                node, done = entry
                d = _instance_dict(node.obj) or {}
                for name in sorted((self._code_names & d.keys()) - done):
                    done.add(name)
                    self._child(node, "attr", name, d[name], _attribute_path(node.path, name), reason="always")
            after = (len(self._code_names), len(self._nodes), len(self._classes))
            if after == before:
                return grew or bool(self._queue or self._module_queue)
            grew = True

    def _visit(self, node):
        obj, category, path = node.obj, node.category, node.path
        if category == "module":
            self.modules.append((path, obj))
            self._register_class(type(obj))
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
            for name, value in list(obj.__dict__.items()):
                if type(name) is str:
                    self._child(node, "attr", name, value, _attribute_path(path, name), reason=("name", name))
        elif category == "function":
            self._function(node, obj)
        elif category == "method":
            self._child(node, "fixed", "__self__", obj.__self__, f"{path}.__self__")
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
        elif category == "python_module":
            self._python_modules.append([node, set()])
        elif category == "dict":
            kind = "item" if type(obj) in (dict, OrderedDict) else "dget"
            for key, value in list(itertools.islice(obj.items(), self._budget())):
                if self._full():
                    break
                if type(key) is str:
                    self._child(node, kind, key, value, f"{path}[{key!r}]", reason=("const", key))
                elif type(key) is int:
                    self._child(node, kind, key, value, f"{path}[{key!r}]")
        elif category == "sequence":
            for k, value in enumerate(list(itertools.islice(obj, self._budget()))):
                if self._full():
                    break
                self._child(node, "item", k, value, f"{path}[{k}]")

    def _finish(self):
        """Numbers become nodes where the code reached can read them."""
        names, consts = self._code_names, self._code_consts
        for parent, kind, key, value, path, reason in self._candidates:
            if reason != "always":
                how, name = reason  # ("name", an attribute's name) or ("const", a dict's key)
                readable = name in consts or (how == "name" and name in names)
                if not readable or (how == "name" and name == "training" and parent.category == "module"):
                    continue
            node = self._new(parent, kind, key, value, path, category="scalar")
            self._scalar_first.setdefault(id(value), node)
        self._candidates = []
        self._edges = set()


# ==========================================================================
# The guards
# ==========================================================================
class _Guard:
    __slots__ = ("node", "kind", "expected")

    def __init__(self, node, kind, expected):
        self.node = node
        self.kind = kind  # "root", "same", "module", "value", "requires_grad", "array", "scalar", "length"
        self.expected = expected


class _Unreadable(Exception):
    def __init__(self, node, error):
        super().__init__(node.label())
        self.node = node
        self.error = error


def _error_text(error):
    if isinstance(error, KeyError) and error.args:
        text = _brief(error.args[0])
    else:
        text = str(error)
        text = text if len(text) <= 80 else text[:77] + "..."
    return f"{type(error).__name__}: {text}"


def _dict_get(d, key, _missing=object()):
    """``d[key]`` for a dict subclass without running its ``__missing__`` (no defaultdict insertions)."""
    value = dict.get(d, key, _missing)
    if value is _missing:
        raise KeyError(key)
    return value


class Guards:
    """The facts a trace depended on, compiled into one check run before each replay.

    >>> import numpy as np
    >>> from autograd_core import Value
    >>> w = Value(np.ones((2, 3)), label="w")
    >>> loss = lambda x: (x @ w).sum()
    >>> guards = Guards.build(Sources.walk(loss, (np.ones((4, 2)),)), used=[w])
    >>> guards.describe()
    ['the compiled function is <function <lambda>>', 'w is <Value (2, 3) float64>, requires_grad=True']
    >>> w.data = np.ones((2, 3), dtype=np.float32)
    >>> guards.check(loss, (np.ones((4, 2)),))
    "w's dtype changed (float64 -> float32)"
    """

    def __init__(self, sources, guards, unreached):
        self.sources = sources
        self._guards = guards
        self.unreached = unreached
        self.source, self._fast = self._compile()

    # ---- building --------------------------------------------------------------
    @classmethod
    def build(cls, sources, used):
        """Guards for what `sources` reached, given the objects the trace `used` outside its
        arguments (Values and arrays, in any order). Used objects the walk did not reach
        are listed in ``unreached`` (the runtime refuses them).

        >>> import numpy as np
        >>> from autograd_core import Value
        >>> w = Value(np.ones(2)); hidden = Value(np.ones(2))
        >>> guards = Guards.build(Sources.walk(lambda x: (x * w).sum(), ()), used=[w, hidden])
        >>> len(guards), guards.unreached == [hidden]
        (2, True)
        """
        used_ids = {}
        for obj in used:
            used_ids.setdefault(id(obj), obj)
        unreached = [obj for key, obj in used_ids.items() if key not in sources._first]
        module_reached = {id(n.obj) for n in sources._nodes if n.in_module and n.category == "value"}
        guards = []

        def add(node):
            category, obj = node.category, node.obj
            own = []
            if node is sources._root_guard:
                own.append(_Guard(node, "root", obj))
            if category == "module":
                if node.primary is None:
                    children = obj.__dict__.get("_modules")
                    count = len(children) if isinstance(children, dict) and children else None
                    own.append(_Guard(node, "module", (obj, obj.__dict__.get("training"), count,
                                                       node is not sources._root_guard)))
                else:
                    own.append(_Guard(node, "same", obj))
            elif category == "value":
                if node.primary is None and id(obj) in used_ids:
                    own.append(_Guard(node, "value", (obj, obj.requires_grad, obj._data.shape, obj._data.dtype)))
                elif node.primary is None and id(obj) in module_reached:
                    own.append(_Guard(node, "requires_grad", obj.requires_grad))
                elif node.primary is not None and id(obj) in used_ids:
                    own.append(_Guard(node, "same", obj))
            elif category == "array":
                if id(obj) in used_ids:
                    kind = "array" if node.primary is None else "same"
                    own.append(_Guard(node, kind, (obj, obj.shape, obj.dtype) if kind == "array" else obj))
            elif category == "function" and node.kind != "const" and node is not sources._root_guard:
                own.append(_Guard(node, "same", obj))
            elif category == "scalar":
                own.append(_Guard(node, "scalar", obj))
            return own

        # depth first over the tree of paths: a module's guards before those of what it holds
        needed = set()
        per_node = {}
        for node in sources._nodes:
            own = add(node)
            if own:
                per_node[node.index] = own
        for node in sources._nodes:  # a list or dict of guarded modules or Values: its length too
            if node.category in ("sequence", "dict") and not node.hidden and any(
                child.index in per_node and child.category in ("module", "value", "array", "function")
                for child in node.children
            ):
                per_node.setdefault(node.index, []).insert(0, _Guard(node, "length", len(node.obj)))
        for index in per_node:
            node = sources._nodes[index]
            while node is not None and node.index not in needed:
                needed.add(node.index)
                node = node.parent
        stack = [n for n in reversed(sources._roots) if n.index in needed]
        while stack:
            node = stack.pop()
            guards.extend(per_node.get(node.index, ()))
            stack.extend(c for c in reversed(node.children) if c.index in needed)
        return cls(sources, guards, unreached)

    # ---- the generated check -------------------------------------------------------
    def _compile(self):
        """One Python function: each path read once with direct access, each guard one
        test, the index of the first failed guard returned (None when all hold)."""
        namespace = {"SAME": _same_scalar, "DGET": _dict_get, "__builtins__": {"len": len, "Exception": Exception}}
        lines = ["def check(fn, args):", "    try:"]
        var = {}  # node index -> the name its object has in the generated code
        dicts = set()

        def key_source(node):
            key = node.key
            if type(key) is str and key.isidentifier() and not keyword.iskeyword(key):
                return repr(key)
            if type(key) is int:
                return repr(key)
            name = f"K{node.index}"
            namespace[name] = key
            return name

        def emit_node(node):
            chain = []
            n = node
            while n is not None and n.index not in var:
                chain.append(n)
                n = n.parent
            for n in reversed(chain):
                if n.kind == "root":  # the check's own arguments, "fn" or "args"
                    var[n.index] = n.key
                    continue
                if n.kind == "const":  # a globals dict, a closure cell, a function: held as a constant
                    var[n.index] = f"C{n.index}"
                    namespace[var[n.index]] = n.key
                    continue
                parent = var[n.parent.index]
                if n.kind == "fixed":
                    assert n.key in _FIXED_ATTRIBUTES
                    expr = f"{parent}.{n.key}"
                elif n.kind == "item":
                    expr = f"{parent}[{key_source(n)}]"
                elif n.kind == "dget":
                    expr = f"DGET({parent}, {key_source(n)})"
                else:  # "attr"
                    expr = f"{need_dict(n.parent)}[{key_source(n)}]"
                var[n.index] = f"v{n.index}"
                lines.append(f"        v{n.index} = {expr}")

        def need_dict(node):
            if node.index not in dicts:
                dicts.add(node.index)
                lines.append(f"        d{node.index} = {var[node.index]}.__dict__")
            return f"d{node.index}"

        def condition(g, k):
            v = var[g.node.index]
            if g.kind in ("root", "same"):
                namespace[f"O{k}"] = g.expected
                return [f"{v} is not O{k}"]
            if g.kind == "module":
                obj, training, count, identity = g.expected
                namespace[f"O{k}"], namespace[f"T{k}"] = obj, training
                d = need_dict(g.node)
                tests = [f"{v} is not O{k}"] if identity else []
                tests.append(f"{d}['training'] is not T{k}")
                if count is not None:
                    namespace[f"N{k}"] = count
                    tests.append(f"len({d}['_modules']) != N{k}")
                return tests
            if g.kind == "value":
                obj, requires_grad, shape, dtype = g.expected
                namespace.update({f"O{k}": obj, f"R{k}": requires_grad, f"S{k}": shape, f"D{k}": dtype})
                return [f"{v} is not O{k}", f"{v}.requires_grad is not R{k}", f"(a := {v}._data).shape != S{k}",
                        f"(a.dtype is not D{k} and a.dtype != D{k})"]
            if g.kind == "requires_grad":
                namespace[f"R{k}"] = g.expected
                return [f"{v}.requires_grad is not R{k}"]
            if g.kind == "array":
                obj, shape, dtype = g.expected
                namespace.update({f"O{k}": obj, f"S{k}": shape, f"D{k}": dtype})
                return [f"{v} is not O{k}", f"{v}.shape != S{k}", f"({v}.dtype is not D{k} and {v}.dtype != D{k})"]
            if g.kind == "scalar":
                namespace[f"V{k}"] = g.expected
                return [f"({v} is not V{k} and not SAME({v}, V{k}))"]
            if g.kind == "length":
                namespace[f"N{k}"] = g.expected
                return [f"len({v}) != N{k}"]
            raise AssertionError(g.kind)

        k = 0
        guards = self._guards
        while k < len(guards):
            node = guards[k].node
            first = k
            tests = []
            while k < len(guards) and guards[k].node is node:
                emit_node(node)
                tests += condition(guards[k], k)
                k += 1
            lines.append(f"        if {' or '.join(tests)}:")
            lines.append(f"            return {first}")
        lines += ["    except Exception:", "        return 0", "    return None", ""]
        source = "\n".join(lines)
        # our own text: every user string and object is a constant of the namespace, never pasted
        exec(_guard_code(source), namespace)  # noqa: S102
        return source, namespace["check"]

    # ---- checking ----------------------------------------------------------------------
    def check(self, fn, args):
        """None when every guard holds for a call ``fn(*args)``; else a short phrase naming
        the first fact that changed (``"model.1.training changed (True -> False)"``). A path
        that cannot be read any more is a failed guard, never an exception.

        >>> import numpy as np
        >>> from autograd_core import Value
        >>> class Box:
        ...     pass
        >>> box = Box(); box.w = Value(np.ones(2))
        >>> loss = lambda x: (x * box.w).sum()
        >>> guards = Guards.build(Sources.walk(loss, ()), used=[box.w])
        >>> del box.w
        >>> guards.check(loss, ())
        "box.w can no longer be read (KeyError: 'w')"
        """
        first = self._fast(fn, args)
        if first is None:
            return None
        return self._explain(first, fn, args)

    def _explain(self, start, fn, args):
        """The phrase for the first failed guard from `start` on, read slowly, one path at a time."""
        cache = {}
        for guard in self._guards[start:]:
            try:
                value = self._resolve(guard.node, fn, args, cache)
                phrase = self._test(guard, value, fn, args, cache)
            except _Unreadable as unreadable:
                return f"{unreadable.node.label()} can no longer be read ({_error_text(unreadable.error)})"
            except Exception as error:  # noqa: BLE001 (a comparison that raises is a failed guard)
                return f"{guard.node.label()} can no longer be checked ({_error_text(error)})"
            if phrase is not None:
                return phrase
        return None

    @staticmethod
    def _resolve(node, fn, args, cache):
        chain = []
        n = node
        while n is not None and n.index not in cache:
            chain.append(n)
            n = n.parent
        value = cache[n.index] if n is not None else None
        for n in reversed(chain):
            try:
                if n.kind == "root":
                    value = fn if n.key == "fn" else args
                elif n.kind == "const":
                    value = n.key
                elif n.kind == "fixed":
                    value = getattr(value, n.key)
                elif n.kind == "item":
                    value = value[n.key]
                elif n.kind == "dget":
                    value = _dict_get(value, n.key)
                else:
                    value = value.__dict__[n.key]
            except Exception as error:  # noqa: BLE001
                raise _Unreadable(n, error) from None
            cache[n.index] = value
        return value

    def _test(self, guard, value, fn, args, cache):
        node, kind, expected = guard.node, guard.kind, guard.expected
        path = node.label()
        if kind == "root":
            return None if value is expected else node.phrase
        if kind == "same":
            return None if value is expected else f"{path} was replaced"
        if kind == "module":
            obj, training, count, identity = expected
            if identity and value is not obj:
                return f"{path} was replaced" + self._replaced_inside(node, fn, args, cache)
            now = value.__dict__["training"]
            if now is not training:
                return f"{path}.training changed ({training!r} -> {_brief(now)})"
            if count is not None and len(value.__dict__["_modules"]) != count:
                return f"{path}'s submodules changed ({count} -> {len(value.__dict__['_modules'])})"
            return None
        if kind == "value":
            obj, requires_grad, shape, dtype = expected
            if value is not obj:
                return f"{path} was replaced"
            if value.requires_grad is not requires_grad:
                return f"{path}.requires_grad changed ({requires_grad!r} -> {_brief(value.requires_grad)})"
            return self._shape_dtype(path, value._data, shape, dtype)
        if kind == "requires_grad":
            if value.requires_grad is not expected:
                return f"{path}.requires_grad changed ({expected!r} -> {_brief(value.requires_grad)})"
            return None
        if kind == "array":
            obj, shape, dtype = expected
            if value is not obj:
                return f"{path} was replaced"
            return self._shape_dtype(path, value, shape, dtype)
        if kind == "scalar":
            if value is expected or _same_scalar(value, expected):
                return None
            return f"{path} changed ({_brief(expected)} -> {_brief(value)})"
        if kind == "length":
            if len(value) != expected:
                return f"len({path}) changed ({expected} -> {len(value)})"
            return None
        raise AssertionError(kind)

    @staticmethod
    def _shape_dtype(path, data, shape, dtype):
        if data.shape != shape:
            return f"{path}'s shape changed ({shape} -> {data.shape})"
        if data.dtype is not dtype and data.dtype != dtype:
            return f"{path}'s dtype changed ({dtype} -> {data.dtype})"
        return None

    def _replaced_inside(self, module_node, fn, args, cache):
        """' (model.fc.weight is another object)': the first used object below a replaced module."""
        for guard in self._guards:
            if guard.kind not in ("value", "array", "same") or guard.node is module_node:
                continue
            n = guard.node.parent
            while n is not None and n is not module_node:
                n = n.parent
            if n is None:
                continue
            expected = guard.expected[0] if isinstance(guard.expected, tuple) else guard.expected
            try:
                now = self._resolve(guard.node, fn, args, dict(cache))
            except _Unreadable:
                return f" ({guard.node.label()} is gone)"
            if now is not expected:
                return f" ({guard.node.label()} is another object)"
        return ""

    # ---- reading -------------------------------------------------------------------------
    def describe(self):
        """One line per guard, in the order they are checked.

        >>> beta = 0.5
        >>> Guards.build(Sources.walk(lambda x: x * beta, ()), used=[]).describe()[1]
        'beta == 0.5 (float)'
        """
        lines = []
        for guard in self._guards:
            node, kind, expected = guard.node, guard.kind, guard.expected
            path = node.label()
            if kind == "root":
                lines.append(f"the compiled function is {_describe_object(expected)}")
            elif kind == "same":
                first = node.primary.label() if node.primary is not None else None
                lines.append(f"{path} is {_describe_object(expected)}" + (f", as {first}" if first else ""))
            elif kind == "module":
                obj, training, count, _ = expected
                children = f", {count} submodules" if count is not None else ""
                lines.append(f"{path} is <{type(obj).__name__}>, training={training!r}{children}")
            elif kind == "value":
                obj, requires_grad, shape, dtype = expected
                lines.append(f"{path} is <{type(obj).__name__} {shape} {dtype}>, requires_grad={requires_grad!r}")
            elif kind == "requires_grad":
                lines.append(f"{path}.requires_grad is {expected!r}")
            elif kind == "array":
                obj, shape, dtype = expected
                lines.append(f"{path} is <{type(obj).__name__} {shape} {dtype}>")
            elif kind == "scalar":
                lines.append(f"{path} == {_brief(expected)} ({type(expected).__name__})")
            elif kind == "length":
                lines.append(f"len({path}) == {expected}")
        return lines

    def __len__(self):
        return len(self._guards)

    def __repr__(self):
        return f"<Guards: {len(self._guards)} guards, {len(self.unreached)} unreached>"


def _describe_object(obj):
    if isinstance(obj, (types.FunctionType, types.MethodType)):
        return f"<function {getattr(obj, '__qualname__', obj.__name__)}>"
    if isinstance(obj, Value):
        return f"<{type(obj).__name__} {obj._data.shape} {obj._data.dtype}>"
    if isinstance(obj, np.ndarray):
        return f"<ndarray {obj.shape} {obj.dtype}>"
    return f"<{type(obj).__name__}>"
