"""What a function's code reads, from its bytecode: the names it loads, the
strings it holds, whether it makes strings it may read a dict with; each code
object with the code nested in it (comprehensions, lambdas, inner functions).
The walk (``sources.py``) follows what these say the user's code can read.

This module imports nothing from ``autograd_core.compile``.
"""

from __future__ import annotations

import dis
import functools
import re
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


_GETTERS = frozenset({"getattr", "__getattribute__"})  # (self.__getattribute__("w" + str(i)) too)
_MADE_NAMES = frozenset({"format", "join", "replace"})  # ("scale{}".format(i): a name made with a method)
_PIECE = re.compile(r"\w+")
_FORMAT_FIELDS = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(?:\d+|\*)?(?:\.(?:\d+|\*))?[a-zA-Z%]|\{[^{}]*\}")  # (%d,
# %(i)d, %*d, {}, {0}, {i:02d})


@functools.lru_cache(maxsize=4096)
def _name_pieces(code):
    """The pieces of text `code` (and the code nested in it) makes names from where it reads attributes by
    names it makes (getattr(self, f"scale{i}"), "w%d" % i, "fc{}".format(i)); an empty set where it does not."""
    codes, names = list(_codes_in(code)), _names_of(code)
    if names.isdisjoint(_GETTERS) or not (any(map(_reads_any_key, codes)) or not _MADE_NAMES.isdisjoint(names)):
        return frozenset()
    pieces = (piece for c in codes for k in _strings_in_consts(c) for piece in _FORMAT_FIELDS.split(k))
    # (pieces of a name, "scale" or "w": not a message's words, nor "_", which every other name holds)
    return frozenset(piece for piece in pieces if _PIECE.fullmatch(piece) and piece != "_")


_ASSIGNMENTS = frozenset({"STORE_ATTR", "DELETE_ATTR", "STORE_GLOBAL", "DELETE_GLOBAL"})


@functools.lru_cache(maxsize=4096)
def _constructor_names(code):
    """The names a constructor reads, and those it assigns on another object than the one it makes
    (stats.last = s, not self.epoch = 0): a write the call makes into what the function holds."""
    names = set()
    for c in _codes_in(code):
        made = c.co_varnames[0] if c.co_argcount else None
        previous = None
        for i in dis.get_instructions(c):
            if i.opname in _LOADS or (i.opname in _ASSIGNMENTS and not (
                    previous is not None and previous.opname == "LOAD_FAST" and previous.argval == made)):
                names.add(i.argval)
            previous = i
    return frozenset(names)


def _strings_in_consts(code):
    """The strings among `code`'s constants, and in its tuples of them (for n in ("wa", "wb"))."""
    stack = list(code.co_consts)
    while stack:
        k = stack.pop()
        if type(k) is str:
            yield k
        elif type(k) in (tuple, frozenset):
            stack.extend(k)
