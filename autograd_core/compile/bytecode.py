"""What a function's code reads, from its bytecode: the names it loads, the
strings it holds, whether it makes strings it may read a dict with; each code
object with the code nested in it (comprehensions, lambdas, inner functions);
and the functions that read attributes by strings or all at once (getattr,
vars, dataclasses.astuple), by name and by the object.
The walk (``sources.py``) follows what these say the user's code can read.

This module imports nothing from ``autograd_core.compile``.
"""

from __future__ import annotations

import collections
import dataclasses
import dis
import functools
import inspect
import operator
import re
import sys
import types

import numpy as np

_MAKES_STRINGS = frozenset({"FORMAT_VALUE", "BUILD_STRING"})  # (an f-string's bytecode)
_STRING_ARITHMETIC = frozenset({"BINARY_OP", "BINARY_ADD", "BINARY_MODULO", "INPLACE_ADD"})  # (+ or % of strings)
_JOINING = frozenset({"", "+", "%", "+=", "%="})  # (BINARY_OP's argrepr)
_JOINS = _MAKES_STRINGS | _STRING_ARITHMETIC
_UNPACKING = frozenset({"DICT_MERGE", "DICT_UPDATE"})  # the bytecode of f(**d) and {**d}

# the special methods of a user's class that compute what an expression gives (s * x, s < x, with s as k:,
# float(s)), walked as the code that names methods is; not its __repr__, __str__, __format__, __eq__, __hash__,
# __copy__ (a display, a comparison, a copy, often of every attribute through vars(self): the counters they
# name would be guarded for nothing, and retrace at every epoch)
_OPERATORS = ("add", "sub", "mul", "matmul", "truediv", "floordiv", "mod", "divmod", "pow", "lshift", "rshift", "and",
              "xor", "or")
_COMPUTING = frozenset([f"__{p}{op}__" for op in _OPERATORS for p in ("", "r", "i")] + [
    f"__{name}__" for name in ("neg", "pos", "abs", "invert", "lt", "le", "gt", "ge", "ne", "int", "complex",
                               "round", "trunc", "floor", "ceil", "enter", "exit", "next", "reversed", "missing",
                               "length_hint", "array", "array_ufunc", "array_function", "class_getitem",
                               "instancecheck", "subclasscheck", "bytes", "set", "delete")])
_CONSTRUCTORS = frozenset({"__init__", "__new__", "__post_init__"})
_SPECIAL = _COMPUTING | _CONSTRUCTORS  # (and its constructors, for a class the code reads itself)
_BY_NAME = frozenset({"getattr", "hasattr", "methodcaller", "__getattribute__"})  # what reads an attribute by a string
# what reads every attribute of an object, and every field of a record's (a dataclass's, attrs', pydantic's)
_EVERY_ATTRIBUTE = frozenset({"vars", "__dict__", "dir", "getmembers", "__getstate__", "__reduce__", "__reduce_ex__"})
_EVERY_FIELD = frozenset({"astuple", "asdict", "fields", "model_dump", "dict", "model_fields"})

_BY_NAME_STRING = frozenset({"globals", "vars", "__dict__"})  # what reads a module's names from strings
# what reads attributes by the strings it is given (format: "{0.%s}" % name), and the names of functions that do,
# by the function (read_attr = getattr at a module's top, then read_attr(cfg, key))
_READ_BY_STRINGS = _BY_NAME | _BY_NAME_STRING | {"attrgetter", "getattr_static", "format", "format_map"}
_READERS = {id(f): f.__name__ for f in (getattr, hasattr, vars, dir, operator.attrgetter, operator.methodcaller,
                                        inspect.getattr_static, inspect.getmembers, dataclasses.asdict,
                                        dataclasses.astuple, dataclasses.fields)}
_BUILTIN_METHODS = (types.BuiltinMethodType, types.MethodWrapperType, types.WrapperDescriptorType)
_READ_BY_ITS_OBJECT = (dict, list, tuple, np.ndarray)  # (weights.get held: a bound method that reads its object)
_REPLACEMENT_FIELDS = re.compile(r"\{([^{}]*)\}")


def _format_attributes(text):
    """The attributes the replacement fields of a format string read ("{0.inner.scale}".format(cfg):
    inner and scale)."""
    return {name for field in _REPLACEMENT_FIELDS.findall(text) for name in re.findall(r"\.(\w+)", field)}


def _with_dotted_names(text):
    """A string, and the names of a dotted path it spells ("head.temperature": attrgetter's path, and
    functools.reduce(getattr, path.split("."), obj)'s)."""
    names = text.split(".")
    return [text, *names] if len(names) > 1 and all(map(str.isidentifier, names)) else [text]


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
def _makes_strings(code):
    """Whether `code` itself unpacks a mapping (``f(**opts)``, ``{**cfg}``) or may make strings (an
    f-string; a + or a % where it holds a string)."""
    strings = any(type(c) is str for c in code.co_consts)
    for instruction in dis.get_instructions(code):
        if instruction.opname in _UNPACKING or instruction.opname in _MAKES_STRINGS or (
                strings and instruction.opname in _STRING_ARITHMETIC and instruction.argrepr in _JOINING):
            return True
    return False


# what reads every item of a dict: its views, a Counter's totals, and keys the code makes itself (str(i),
# .format, .join, .upper()), which no name in it spells
_EVERY_ITEM = frozenset({"values", "items", "keys", "total", "most_common", "elements", "copy",
                        "str", "format", "format_map", "join", "upper", "lower", "capitalize", "title", "replace",
                        "strip"})
_KEY_METHODS = frozenset({"get", "pop", "setdefault", "__getitem__", "getitem", "itemgetter"})  # (and operator's)
_SUBSCRIPTS = frozenset({"BINARY_SUBSCR", "STORE_SUBSCR"})
_STORES = frozenset({"STORE_FAST", "STORE_DEREF", "STORE_NAME"})


def _span(p):
    return (p.lineno, p.col_offset), (p.end_lineno, p.end_col_offset)


def _messages(instructions):
    """The indices of the instructions that make what the code raises (raise X(f"..."), assert ok, "...") or
    prints (print(f"...")): strings made there are messages, and what they read is not computed with."""
    found, start = set(), None
    for k, i in enumerate(instructions):
        if i.opname == "LOAD_ASSERTION_ERROR":  # (an assert's message: up to its raise)
            start = k
        elif i.opname == "RAISE_VARARGS" and start is not None:
            found.update(range(start, k + 1))
            start = None
        elif i.opname == "RAISE_VARARGS" or (
                i.opname == "CALL" and _callee(instructions, k) == ("LOAD_GLOBAL", "print")):
            first, last = _span(i.positions)  # (what stands within its text, going back from it)
            n = k
            while n >= 0 and first <= _span(instructions[n].positions)[0] and \
                    _span(instructions[n].positions)[1] <= last:
                found.add(n)
                n -= 1
    return found


def _callee(instructions, k):
    """(opname, name) of the load a call's text starts with, the longest (self.log.info of self.log.info(...)),
    or None."""
    j = _operand(instructions, k, _LOADS)
    return None if j is None else (instructions[j].opname, instructions[j].argval)


def _operand(instructions, k, kinds=None):
    """The index of the instruction before k whose text starts where k's does, the longest: the left operand
    of a binary operation, a call's callee (None where none does: a parenthesised operand)."""
    first, last = _span(instructions[k].positions)
    best, best_last = None, None
    for j in range(max(0, k - 64), k):
        q_first, q_last = _span(instructions[j].positions)
        if q_first == first and q_last <= last and (kinds is None or instructions[j].opname in kinds) and (
                best is None or q_last > best_last):
            best, best_last = j, q_last
    return best


_ITERATING = frozenset({"GET_ITER", "LIST_EXTEND", "CALL_FUNCTION_EX", "UNPACK_SEQUENCE", "UNPACK_EX"})
_TAKING_KEYS = frozenset({"iter", "next", "sorted", "min", "max", "list", "tuple", "enumerate", "zip", "reversed"})
_NUMBERS = frozenset({"UNARY_NEGATIVE", "UNARY_INVERT", "UNARY_NOT", "COMPARE_OP", "IS_OP", "CONTAINS_OP"})


def _kind_of(instructions, k, kinds):
    """What the instruction at k makes, as far as its text shows: "number" (a number's literal, -x, a
    comparison, an arithmetic operation on no string's, a sum with a number and no string), "string" (a
    string's literal, an f-string, an operation on one: "w%d" % i, "-" * depth), or None (a name, a
    call, a subscript: either). `kinds`: what the instructions before k make, by index."""
    i = instructions[k]
    if i.opname == "LOAD_CONST":
        constant = type(i.argval)
        return "string" if constant is str else "number" if constant in (int, float, complex, bool) else None
    if i.opname in _MAKES_STRINGS:
        return "string"
    if i.opname in _NUMBERS:
        return "number"
    if i.opname not in _STRING_ARITHMETIC:
        return None
    left = kinds.get(_operand(instructions, k))
    right = kinds.get(k - 1) if _span(instructions[k - 1].positions)[1] == _span(i.positions)[1] else None
    if "string" in (left, right):
        return "string"
    if i.argrepr in ("%", "%="):  # (the string a % formats stands on its left: FMT % 0 is not a number)
        return "number" if left == "number" else None
    if i.argrepr in _JOINING:
        return "number" if "number" in (left, right) else "product" if "product" in (left, right) else None
    if (left, right) == ("number", "number") or i.argrepr not in ("*", "*="):
        return "number"
    return "product"  # (a * b of a name: a number, but for sep * 2, a string; sep * 2 + name, a key)


_LOCALS = frozenset({"LOAD_FAST", "LOAD_DEREF", "LOAD_NAME"})


def _counters(instructions):
    """The names only a loop over a range stores (for i in range(len(self.layers))): numbers, no keys."""
    stores = collections.Counter(i.argval for i in instructions if i.opname in _STORES)
    return {instructions[k + 1].argval for k, i in enumerate(instructions[:-1]) if i.opname == "FOR_ITER" and (
        instructions[k - 1].opname == "GET_ITER" and instructions[k - 2].opname == "CALL" and _callee(
            instructions, k - 2) == ("LOAD_GLOBAL", "range") and instructions[k + 1].opname in _STORES and
        stores[instructions[k + 1].argval] == 1)}


@functools.lru_cache(maxsize=4096)
def _reads_any_key(code, holds_strings=False):
    """Whether `code` itself may read a dict under any key: it unpacks one (``f(**opts)``, ``{**cfg}``),
    reads its views (``.values()``), makes strings (an f-string, ``str(i)``, ``.format``), or joins
    with + or % what is not a number where it holds a string (``"w_" + name``, ``"w_%s" % n``,
    ``PREFIX + NAME`` in code with a docstring) or uses the join as a key (``d[a + b]``,
    ``d.get(a + b)``, ``k = a + b`` then ``d[k]``); not in the messages it raises, asserts or
    prints, nor a sum with a number (``total + cfg["wd"] * l2``, ``i + 1``). Without the source
    positions of its instructions (Python 3.10, ``-X no_debug_ranges``): wherever it may make strings.
    `holds_strings`: the function `code` is nested in holds strings (a comprehension's keys)."""
    instructions = list(dis.get_instructions(code))
    if sys.version_info < (3, 11) or any(i.positions.col_offset is None or i.positions.end_col_offset is None
                                         for i in instructions if i.opname in _JOINS or i.opname == "CALL"):
        return _makes_strings(code) or not _EVERY_ITEM.isdisjoint(code.co_names)
    messages = _messages(instructions)
    holds_strings = holds_strings or any(type(c) is str for c in code.co_consts)
    keys = [_span(i.positions) for k, i in enumerate(instructions)  # (the text of d[...], d.get(...), d.pop(...))
            if i.opname in _SUBSCRIPTS or (
                i.opname == "CALL" and (_callee(instructions, k) or (None, None))[1] in _KEY_METHODS)]
    made, kinds, numbers = set(), {}, _counters(instructions)
    iterates = any(i.opname in _ITERATING or (i.opname in _LOADS and i.argval in _TAKING_KEYS) for i in instructions)
    for k, i in enumerate(instructions):
        after = instructions[k + 1] if k + 1 < len(instructions) else i
        stored = after.opname in _STORES or after.opname in ("COPY", "DUP_TOP")  # (k = ..., a walrus)
        if i.opname in _UNPACKING:
            return True
        kinds[k] = "number" if i.argval in numbers and i.opname in _LOCALS else _kind_of(instructions, k, kinds)
        if k in messages and not stored:  # (a message's string; not print(key := "w_" + name))
            continue
        if i.opname in _MAKES_STRINGS or (i.opname in _LOADS and i.argval in _EVERY_ITEM) or (
                i.opname == "LOAD_ATTR" and i.argval in _KEY_METHODS and "NULL" not in i.argrepr):
            return True  # (max(d, key=d.get): a getter held, not called)
        if i.opname in _SUBSCRIPTS and (instructions[k - 1].opname == "LOAD_ATTR" or (
                iterates and instructions[k - 1].opname != "LOAD_CONST" and kinds[k - 1] != "number")):
            return True  # (a key read off an object, eps[x.dtype.name]; one the code may take from the dict
            # itself: d[next(iter(d))], for i, k in enumerate(d))
        if i.opname == "FOR_ITER" and after.opname in _STORES and after.argval not in numbers:  # (for k in w: w[k])
            made.add(after.argval)
        if i.opname in _STRING_ARITHMETIC and i.argrepr in _JOINING and kinds[k] != "number":
            first, last = _span(i.positions)
            if (holds_strings and kinds[k] != "product") or any(a <= first and last <= b for a, b in keys):
                return True  # ("w_" + name; d[a + b], d[(k := a + b)], d[a + b if c else b], d.get(a + b))
            store = instructions[k + 2] if after.opname in ("COPY", "DUP_TOP") else after
            if store.opname == "STORE_DEREF":  # (a key a closure may read with)
                return True
            if stored:  # (k = a + b: a key where d[k] or d.get(k) reads with it)
                made.add(store.argval)
        if i.opname in _LOCALS and i.argval in made:
            first, last = _span(i.positions)  # (d[k], d.get(k), dict.get(d, k), operator.getitem(d, k))
            if after.opname in _SUBSCRIPTS or instructions[k - 1].argval in _KEY_METHODS or any(
                    a <= first and last <= b for a, b in keys):
                return True
            if after.opname in _STORES:  # (key = k: the same key)
                made.add(after.argval)
    return False


@functools.lru_cache(maxsize=4096)
def _matches_classes(code):
    """Whether `code` matches a class pattern (case Cfg(a, b): the attributes its __match_args__ names)."""
    return any(i.opname == "MATCH_CLASS" for i in dis.get_instructions(code))


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
    if names.isdisjoint(_GETTERS) or not (any(map(_makes_strings, codes)) or not _MADE_NAMES.isdisjoint(names)):
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
