"""Saving and loading parameters: ``nn.save`` / ``nn.load``.

The file is a NumPy ``.npz`` archive (no pickles): one array per state-dict
entry under its dotted name ("0.weight", "1.running_mean", ...), plus a key
``__autograd_core_format__`` holding ``"autograd_core.nn state_dict"`` and
``__autograd_core_version__`` holding the format version (1). Any NumPy can
read it: ``numpy.load(path)``.

Writes are atomic: the archive is written to a temporary file in the same
directory and moved over the target with ``os.replace``, so a crash mid-write
never leaves a broken file where a good one was.
"""

from __future__ import annotations

import os
import zipfile
from collections import OrderedDict
from collections.abc import Mapping

import numpy as np

from autograd_core import Value
from autograd_core._files import atomic_write

from .module import Module

__all__ = ["save", "load", "CheckpointError", "FORMAT_VERSION"]

FORMAT_VERSION = 1
_FORMAT_KEY = "__autograd_core_format__"
_VERSION_KEY = "__autograd_core_version__"
_FORMAT_NAME = "autograd_core.nn state_dict"


class CheckpointError(ValueError):
    """A file given to ``nn.load`` is truncated, not an ``nn.save`` file, or of
    an unknown format version; the message names the file and the problem.

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "notes.npz")
    >>> with open(path, "w") as file:
    ...     _ = file.write("not an archive")
    >>> load(path)                                    # doctest: +ELLIPSIS
    Traceback (most recent call last):
    nn.serialization.CheckpointError: nn.load: '...notes.npz' (14 bytes) is not a readable nn.save archive: ...
    """


def _as_state_dict(obj):
    if isinstance(obj, Module):
        return obj.state_dict()
    if isinstance(obj, Mapping):
        state = OrderedDict()
        for key, value in obj.items():
            if not isinstance(key, str):
                raise TypeError(f"nn.save: state dict keys must be strings, got {key!r}")
            if key in (_FORMAT_KEY, _VERSION_KEY):
                raise ValueError(f"nn.save: the key {key!r} is reserved for the file format")
            if isinstance(value, Value):
                value = value.data
            elif hasattr(value, "detach") and hasattr(value, "cpu"):  # a PyTorch tensor
                value = value.detach().cpu().numpy()
            array = np.asarray(value)
            if array.dtype.kind not in "biuf":
                raise TypeError(
                    f"nn.save: entry {key!r} is {type(value).__name__} with dtype {array.dtype}; "
                    f"only numeric arrays can be saved (nested dicts, e.g. optimizer state, are not supported)"
                )
            state[key] = array
        return state
    raise TypeError(f"nn.save: expects a Module or a state dict (a mapping of names to arrays), got {type(obj).__name__}")


def save(obj, path):
    """Write a Module's ``state_dict()`` (or a state dict itself) to `path` as ``.npz``,
    atomically. The path is used as given (``.npz`` is the customary suffix).

    >>> import os, tempfile
    >>> from nn import Linear, load, save
    >>> layer = Linear(2, 1)
    >>> path = os.path.join(tempfile.mkdtemp(), "layer.npz")
    >>> save(layer, path)
    >>> sorted(load(path))
    ['bias', 'weight']
    """
    state = _as_state_dict(obj)
    path = os.fspath(path)
    arrays = dict(state)
    arrays[_FORMAT_KEY] = np.array(_FORMAT_NAME)
    arrays[_VERSION_KEY] = np.array(FORMAT_VERSION)
    atomic_write(path, lambda file: np.savez(file, **arrays))


def load(path, module=None, strict=True):
    """Read a file written by ``nn.save``: an ordered ``{name: array}`` state dict.

    With `module`, also load it into that Module (``load_state_dict`` with
    `strict`, which names any missing, unexpected or wrongly shaped entry) and
    return the module. A truncated or foreign file raises :class:`CheckpointError`.

    >>> import os, tempfile
    >>> from nn import Linear, save
    >>> path = os.path.join(tempfile.mkdtemp(), "layer.npz")
    >>> trained = Linear(2, 1); save(trained, path)
    >>> fresh = load(path, module=Linear(2, 1))
    >>> bool((fresh.weight.data == trained.weight.data).all())
    True
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"nn.load: no such file: {path!r}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise CheckpointError(f"nn.load: {path!r} holds a single .npy array, not an nn.save archive")
            names = list(archive.files)
            if _FORMAT_KEY not in names:
                raise CheckpointError(
                    f"nn.load: {path!r} is a NumPy archive but was not written by nn.save (it has no "
                    f"{_FORMAT_KEY!r} entry); read plain archives with numpy.load"
                )
            if str(archive[_FORMAT_KEY]) != _FORMAT_NAME:
                raise CheckpointError(f"nn.load: {path!r} has an unknown format {str(archive[_FORMAT_KEY])!r}")
            version = int(archive[_VERSION_KEY]) if _VERSION_KEY in names else None
            if version != FORMAT_VERSION:
                raise CheckpointError(
                    f"nn.load: {path!r} has format version {version}, this version of nn reads "
                    f"version {FORMAT_VERSION}; save it again with a matching version"
                )
            state = OrderedDict(
                (name, archive[name]) for name in names if name not in (_FORMAT_KEY, _VERSION_KEY)
            )
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError, zipfile.LargeZipFile) as exc:
        size = os.path.getsize(path)
        raise CheckpointError(
            f"nn.load: {path!r} ({size} bytes) is not a readable nn.save archive: it is truncated, "
            f"damaged or another kind of file ({type(exc).__name__}: {exc})"
        ) from None
    if module is not None:
        module.load_state_dict(state, strict=strict)
        return module
    return state
