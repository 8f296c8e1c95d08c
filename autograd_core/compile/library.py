"""What is library code: this project's packages, NumPy, the standard library and
site-packages. The walk (``sources.py``) does not walk library code or look into
its objects, and the writer takes a library operation's declared NumPy forms;
the user's code, wherever it lies, is walked and written from its functions.

This module imports nothing from ``autograd_core.compile``.
"""

from __future__ import annotations

import argparse
import functools
import inspect
import os
import sys
import sysconfig
import types

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
def _is_library_class(cls):
    name = getattr(cls, "__module__", None)
    if not isinstance(name, str):  # (a class whose __module__ is a descriptor of its metaclass's)
        name = None
    module = sys.modules.get(name or "")
    filename = getattr(module, "__file__", None) if module is not None else None
    return _is_library_source(name, filename) and _held_by(module, cls)


def _is_read_by_its_methods(cls):
    """A class of this project's packages (an optimizer, a scheduler; not NumPy's), or a container of
    the standard library's ``collections`` (ChainMap, UserList): what its methods read is guarded."""
    top = (getattr(cls, "__module__", None) or "").partition(".")[0]
    return ((top in _LIBRARY_PACKAGES and top != "numpy") or top == "collections") and _is_library_class(cls)


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


_DATA_CLASSES = (types.SimpleNamespace, argparse.Namespace)  # (the library's objects that only hold data)


def _is_record(cls):
    """A class of records: a dataclass, an attrs or a pydantic class (asdict(cfg), cfg.model_dump())."""
    return any(not {"__dataclass_fields__", "__attrs_attrs__", "model_fields", "__fields__"}.isdisjoint(klass.__dict__)
               for klass in cls.__mro__)
