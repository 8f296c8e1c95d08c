"""Guarding saved data against in-place writes.

A node reads its inputs' (and its own) data again at backward, so that data
must not change in between. Assigning ``v.data = ...`` bumps ``v._version``,
which every node compares with the version it saw. A write *into* the array
(``v.data[0] = 5``, ``v.data -= 1``) cannot be seen by NumPy, so: while a
pending backward has saved a Value (``_guard is True``), handing its array
out through ``.data`` / ``.numpy()`` / ``detach()`` first keeps a copy of it
(``_guard`` becomes that copy), and the backward compares the array with the
copy. Nothing is copied on the usual path: backward() un-marks what it
frees, so an optimizer step after backward() touches ``.data`` for free.

Every change that a pending backward must notice (a new version, a snapshot
taken before an array is handed out) bumps one counter, ``_data_epoch``. A
node recorded since the last bump (``node._epoch`` equal to it) has nothing
to check, which spares the backward pass a loop over the inputs of every
node.

Who calls what: ``Value.data`` watches (:func:`_watch_in_place_writes`),
``record`` settles a snapshot when a watched input meets a new operation,
the backward loops check each node (:func:`_check_saved_data`) and free it
(:func:`_free`; the fast loop writes both out), and the compiled backward
compares its watched Values the same way.
"""

from __future__ import annotations

import itertools

import numpy as np

from .errors import GraphFreedError, SavedDataModifiedError

_data_epoch = [0]
_FREED = None  # the `_epoch` of a node whose backward freed it: never equal to the counter


def _watch_in_place_writes(value):
    _data_epoch[0] += 1
    data = value._data
    if type(data) is np.ndarray and data.flags.writeable and data.size:
        value._guard = data.copy()
    else:
        value._guard = None  # NumPy scalars, empty and read-only arrays cannot be written into


def _changed_since_snapshot(value):
    return not np.array_equal(value._data, value._guard, equal_nan=True)


def _settle_snapshot(value):
    """A new node saves `value` after its array was handed out: if the array
    changed since, older nodes that saved it must see a new version. The copy
    stays (renewed if it changed): whoever holds the array may still write."""
    if _changed_since_snapshot(value):
        value._version += 1
        _data_epoch[0] += 1
        value._guard = value._data.copy()


def _check_saved_data(node):
    """Raise if the node was freed by an earlier backward, or if data it saved
    changed since; cheap when no data changed anywhere since it was recorded."""
    if node._epoch != _data_epoch[0]:
        _check_not_freed_or_modified(node)


def _check_not_freed_or_modified(node):
    if node._epoch is _FREED:
        raise GraphFreedError(
            f"backward through the graph a second time: the '{node._op.name}' node was freed by an "
            f"earlier backward(). Pass retain_graph=True to the first backward() (or grad()) to keep it"
        )
    guard = node._guard
    if guard is not None and guard is not True and _changed_since_snapshot(node):
        _raise_modified(node, node, "modified in place (through .data)")
    if node._version:  # an output is created at version 0
        _raise_modified(node, node, f"changed: .data was assigned or written into (version 0 then, {node._version} now)")
    for inp, version in zip(node._inputs, node._input_versions or itertools.repeat(0)):
        guard = inp._guard
        if guard is not None and guard is not True and _changed_since_snapshot(inp):
            inp._version += 1  # so that other nodes that saved it notice too
            inp._guard = True
            _raise_modified(inp, node, "modified in place (through .data)")
        if inp._version != version:
            _raise_modified(inp, node, f"changed: .data was assigned or written into (version {version} then, {inp._version} now)")


def _raise_modified(value, node, how):
    name = f"'{value.label}' " if value.label else ""
    whose = "the output of" if value is node else "an input of"
    raise SavedDataModifiedError(
        f"backward(): the data of the Value {name}(shape {value.shape}, {value.dtype}), {whose} "
        f"'{node._op.name}', was {how} after '{node._op.name}' saved it in the forward pass, so the "
        f"gradient would be wrong. Change .data only after backward() (as optimizers do), or run the "
        f"forward pass again"
    )


def _free(node):
    """Mark a node as used by a backward (a second one through it raises)
    and stop watching its saved data, so `.data` is handed out without copies;
    what its forward saved for the backward is let go."""
    node._epoch = _FREED
    node._guard = None
    node._saved = None
    for inp in node._inputs:
        inp._guard = None
