"""What a function's code reads, from its bytecode: the names it loads, the
strings it holds, whether it makes strings it may read a dict with; each code
object with the code nested in it (comprehensions, lambdas, inner functions).
The walk (``sources.py``) follows what these say the user's code can read.

This module imports nothing from ``autograd_core.compile``.
"""

from __future__ import annotations

import dis
import functools
import types

_MAKES_STRINGS = frozenset({"FORMAT_VALUE", "BUILD_STRING"})  # (an f-string's bytecode)
_STRING_ARITHMETIC = frozenset({"BINARY_OP", "BINARY_ADD", "BINARY_MODULO", "INPLACE_ADD"})  # (+ or % of strings)
_JOINING = frozenset({"", "+", "%", "+=", "%="})  # (BINARY_OP's argrepr)
_UNPACKING = frozenset({"DICT_MERGE", "DICT_UPDATE"})  # the bytecode of f(**d) and {**d}


def _codes_in(code):
    """`code` and every code object nested in it (comprehensions, lambdas, inner functions)."""
    stack = [code]
    while stack:
        c = stack.pop()
        yield c
        stack.extend(k for k in c.co_consts if isinstance(k, types.CodeType))


@functools.lru_cache(maxsize=4096)
def _global_loads(code):
    """The names `code` (and the code nested in it) looks up as globals (or builtins)."""
    return frozenset(i.argval for c in _codes_in(code) for i in dis.get_instructions(c) if i.opname == "LOAD_GLOBAL")


_LOADS = frozenset({"LOAD_ATTR", "LOAD_METHOD", "LOAD_GLOBAL", "LOAD_NAME", "LOAD_SUPER_ATTR", "IMPORT_FROM"})


@functools.lru_cache(maxsize=4096)
def _loaded_names(code):
    """The names `code` (and the code nested in it) reads, not those it only assigns (self.epoch = 0)."""
    return frozenset(i.argval for c in _codes_in(code) for i in dis.get_instructions(c) if i.opname in _LOADS)


@functools.lru_cache(maxsize=4096)
def _strings_of(code):
    """The string constants of `code` and the code nested in it."""
    return frozenset(k for c in _codes_in(code) for k in c.co_consts if type(k) is str)


@functools.lru_cache(maxsize=4096)
def _reads_any_key(code):
    """Whether `code` itself unpacks a mapping (``f(**opts)``, ``{**cfg}``) or makes strings (an
    f-string, ``"w_" + name``, ``"w_%s" % n``: a key it may read a dict with)."""
    strings = any(type(c) is str for c in code.co_consts)  # (a + or % where the code holds a string: a key)
    for instruction in dis.get_instructions(code):
        if instruction.opname in _UNPACKING or instruction.opname in _MAKES_STRINGS or (
                strings and instruction.opname in _STRING_ARITHMETIC and instruction.argrepr in _JOINING):
            return True
    return False


def _names_of(code):
    """co_names of a code object and of every code object nested in it."""
    return {name for c in _codes_in(code) for name in c.co_names}
