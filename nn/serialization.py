"""Saving and loading parameters: ``nn.save`` / ``nn.load``.

The file is a NumPy ``.npz`` archive (no pickles): one array per state-dict
entry under its dotted name ("0.weight", "1.running_mean", ...), plus a key
``__autograd_core_format__`` holding ``"autograd_core.nn state_dict"`` and
``__autograd_core_version__`` holding the format version (1). Any NumPy can
read it: ``numpy.load(path)``.

Writes are atomic: the archive is written to a temporary file in the same
directory and moved over the target with ``os.replace``, so a crash mid-write
never leaves a broken file where a good one was; the temporary file a killed
writer leaves is removed by the next save to the same name.

Reads never unpickle and check before they decode: the sizes the archive
declares (``max_bytes`` in all, 1 GiB by default), every ``.npy`` header
(numeric dtype, a shape matching the member's size) and, given a module or a
state dict, the expected names, shapes and dtypes. So a small file that
would unpack to gigabytes, or a header that claims a huge shape, is a
``CheckpointError`` that costs neither time nor memory.
"""

from __future__ import annotations

import math
import os
import zipfile
from collections import OrderedDict
from collections.abc import Mapping

import numpy as np

from autograd_core import Value
from autograd_core._files import FileTooLargeError, NotARegularFileError, atomic_write, open_regular_file

from .module import Module

__all__ = ["save", "load", "CheckpointError", "FORMAT_VERSION", "DEFAULT_MAX_BYTES"]

FORMAT_VERSION = 1
_FORMAT_KEY = "__autograd_core_format__"
_VERSION_KEY = "__autograd_core_version__"
_FORMAT_NAME = "autograd_core.nn state_dict"


class CheckpointError(ValueError):
    """A file given to ``nn.load`` is truncated, damaged, too large, not an
    ``nn.save`` file (a PyTorch file, a pickle, a plain archive), of an unknown
    format version, or does not fit the model; the message names the file and
    the problem.

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


DEFAULT_MAX_BYTES = 1 << 30  # 1 GiB of arrays; a course model is a few MB (pass max_bytes= for more)
_READ_CHUNK = 1 << 20


def load(path, module=None, strict=True, *, max_bytes=DEFAULT_MAX_BYTES):
    """Read a file written by ``nn.save``: an ordered ``{name: array}`` state dict.

    With `module` (a Module), also load it into that Module
    (``load_state_dict`` with `strict`, which names any missing, unexpected
    or wrongly shaped entry) and return the module. `module` may instead be
    a state dict: the file's entries must then have its shapes and dtypes, and
    the file's state dict is returned.

    The file is checked before any array is decoded, so a hostile or damaged
    file costs neither time nor memory: the sizes the archive declares
    (at most `max_bytes` in all), each ``.npy`` header (a numeric dtype, a
    shape that matches the member's size and, with `module`, the model's
    shape). Anything wrong raises :class:`CheckpointError`, naming the entry.

    >>> import os, tempfile
    >>> from nn import Linear, save
    >>> path = os.path.join(tempfile.mkdtemp(), "layer.npz")
    >>> trained = Linear(2, 1); save(trained, path)
    >>> fresh = load(path, module=Linear(2, 1))
    >>> bool((fresh.weight.data == trained.weight.data).all())
    True
    >>> load(path, module={"weight": np.zeros((1, 3)), "bias": np.zeros(1)})   # doctest: +ELLIPSIS
    Traceback (most recent call last):
    nn.serialization.CheckpointError: nn.load: '...layer.npz' does not fit the model: weight: shape (1, 2) in the file, (1, 3) in the model
    """
    path = os.fspath(path)
    expected = _expected_entries(module)
    with _open_checkpoint(path, max_bytes) as file:
        try:
            with zipfile.ZipFile(file) as archive:
                state = _read_archive(archive, path, expected, strict, max_bytes)
        except CheckpointError:
            raise
        except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError, zipfile.LargeZipFile,
                NotImplementedError, RuntimeError) as exc:
            raise CheckpointError(_not_an_archive(path, file, exc)) from None
    if isinstance(module, Module):
        try:
            module.load_state_dict(state, strict=strict)
        except CheckpointError as exc:  # a value the model's dtype cannot hold
            raise CheckpointError(f"nn.load: {path!r}: {exc}") from None
        return module
    return state


_ARCHIVE_ROOM = 64 << 20  # the archive's own headers beside the arrays: a few hundred bytes an entry


def _open_checkpoint(path, max_bytes):
    """The file, opened only when it is a regular file no larger than the
    arrays allowed plus room for the archive's headers."""
    try:
        return open_regular_file(path, max_bytes + _ARCHIVE_ROOM)
    except FileNotFoundError:
        raise FileNotFoundError(f"nn.load: no such file: {path!r}") from None
    except IsADirectoryError:
        raise IsADirectoryError(f"nn.load: {path!r} is a directory; give the path of an .npz file written by nn.save") from None
    except NotARegularFileError as exc:
        raise CheckpointError(f"nn.load: {exc}; give an .npz file written by nn.save") from None
    except FileTooLargeError as exc:
        raise CheckpointError(
            f"nn.load: {path!r} is {exc.size:,} bytes, over the limit of {max_bytes:,} bytes of arrays "
            f"(a damaged or hostile file, or a very large model: pass max_bytes= to allow it)"
        ) from None


def _expected_entries(module):
    """{name: (shape, dtype)} of what the file must hold, or None when unknown."""
    if module is None:
        return None
    if isinstance(module, Module):
        module = module.state_dict()
    if not isinstance(module, Mapping):
        raise TypeError(f"nn.load: module must be a Module or a state dict, got {type(module).__name__}")
    expected = {}
    for name, value in module.items():
        array = value.data if isinstance(value, Value) else value
        shape = tuple(getattr(array, "shape", np.shape(array)))
        expected[name] = (shape, np.dtype(getattr(array, "dtype", np.asarray(array).dtype)))
    return expected


def _read_archive(archive, path, expected, strict, max_bytes):
    """Every check first (names, declared sizes, headers), then the arrays."""
    members = archive.infolist()
    names = [info.filename for info in members]
    _refuse_foreign(names, path)
    if len(set(names)) != len(names):
        raise CheckpointError(f"nn.load: {path!r} names an entry twice; it was not written by nn.save")
    total = sum(info.file_size for info in members)
    if total > max_bytes:
        raise CheckpointError(
            f"nn.load: {path!r} would unpack to {total:,} bytes, over the limit of {max_bytes:,} "
            f"(a damaged or hostile file, or a very large model: pass max_bytes= to allow it)"
        )
    headers = {}
    for info in members:
        with archive.open(info) as member:
            headers[info.filename[:-len(".npy")]] = _read_header(member, info, path)
    if _FORMAT_KEY not in headers:
        raise CheckpointError(
            f"nn.load: {path!r} is a NumPy archive but was not written by nn.save (it has no "
            f"{_FORMAT_KEY!r} entry); read plain archives with numpy.load"
        )
    format_name = _read_small(archive, path, headers, _FORMAT_KEY, "U")
    if format_name != _FORMAT_NAME:
        raise CheckpointError(f"nn.load: {path!r} has an unknown format {format_name[:80]!r}")
    version = _read_small(archive, path, headers, _VERSION_KEY, "iu") if _VERSION_KEY in headers else None
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"nn.load: {path!r} has format version {version}, this version of nn reads "
            f"version {FORMAT_VERSION}; save it again with a matching version"
        )
    entries = {name: header for name, header in headers.items() if name not in (_FORMAT_KEY, _VERSION_KEY)}
    for name, (shape, dtype, _, _) in entries.items():
        if dtype.kind not in "biuf":
            raise CheckpointError(f"nn.load: {path!r}: entry {name!r} has dtype {dtype}; only numeric arrays are loaded")
    _check_against(entries, expected, path, strict)
    return OrderedDict((name, _read_data(archive, path, name, entries[name])) for name in entries)


def _refuse_foreign(names, path):
    """A zip that is not an .npz: a PyTorch file gets told how to convert it."""
    if any(name == "data.pkl" or name.endswith("/data.pkl") for name in names):
        raise CheckpointError(
            f"nn.load: {path!r} is a PyTorch file (torch.save), not an nn.save archive; nn.load never "
            f"unpickles. Convert it once where torch is installed: "
            f"nn.save(torch.load(path, weights_only=True), 'model.npz') (a state_dict of tensors), "
            f"or pass {{name: tensor.numpy()}} to module.load_state_dict"
        )
    strays = [name for name in names if not name.endswith(".npy")]
    if strays:
        raise CheckpointError(
            f"nn.load: {path!r} is a zip archive but not an nn.save file: it holds {strays[0][:80]!r}, "
            f"and an .npz holds only .npy arrays"
        )


def _read_header(member, info, path):
    """(shape, dtype, fortran_order, data offset) from one member's .npy header,
    checked against the size the archive declares for it; no data is read."""
    name = info.filename[:-len(".npy")]
    try:
        major, minor = np.lib.format.read_magic(member)
        if (major, minor) == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(member)
        elif (major, minor) == (2, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(member)
        else:
            raise ValueError(f".npy format version {major}.{minor}")
    except (ValueError, EOFError, SyntaxError, TypeError) as exc:
        raise CheckpointError(f"nn.load: {path!r}: entry {name!r} has no readable .npy header ({exc})") from None
    if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None:
        raise CheckpointError(f"nn.load: {path!r}: entry {name!r} has dtype {dtype}; only plain numeric arrays are loaded")
    offset = member.tell()
    claimed = math.prod(shape) * dtype.itemsize
    if claimed != info.file_size - offset:
        raise CheckpointError(
            f"nn.load: {path!r}: entry {name!r} claims shape {shape} of {dtype} ({claimed:,} bytes) but holds "
            f"{max(info.file_size - offset, 0):,} bytes; the file is damaged or forged"
        )
    return shape, dtype, fortran_order, info


def _read_small(archive, path, headers, key, kinds):
    """The format name or version: a 0-d entry of the expected kind, as a Python value."""
    shape, dtype, _, _ = headers[key]
    if shape != () or dtype.kind not in kinds or dtype.itemsize > 4096:
        what = "a single integer" if kinds == "iu" else "a single string"
        raise CheckpointError(
            f"nn.load: {path!r}: {key!r} should be {what}, it is shape {shape} of {dtype}; "
            f"the file was not written by nn.save"
        )
    return _read_data(archive, path, key, headers[key]).item()


def _check_against(entries, expected, path, strict):
    """Names (with `strict`), shapes and dtypes against the model's, before any data is read."""
    if expected is None:
        return
    problems = []
    missing = [name for name in expected if name not in entries]
    unexpected = [name for name in entries if name not in expected]
    if strict and missing:
        problems.append(f"missing keys: {', '.join(missing)}")
    if strict and unexpected:
        problems.append(f"unexpected keys: {', '.join(unexpected)}")
    for name, (shape, dtype, _, _) in entries.items():
        if name not in expected:
            continue
        want_shape, want_dtype = expected[name]
        if shape != want_shape:
            problems.append(f"{name}: shape {shape} in the file, {want_shape} in the model")
        elif not np.can_cast(dtype, want_dtype, casting="same_kind"):
            problems.append(f"{name}: dtype {dtype} in the file, {want_dtype} in the model")
    if problems:
        raise CheckpointError(f"nn.load: {path!r} does not fit the model: " + "; ".join(problems))


def _read_data(archive, path, name, header):
    """Decode one checked member, in bounded chunks into an array of the declared size."""
    shape, dtype, fortran_order, info = header
    flat = np.empty(math.prod(shape), dtype=dtype)
    buffer = flat.view(np.uint8)
    with archive.open(info) as member:
        member.seek(info.file_size - buffer.size)  # past the header
        filled = 0
        while filled < buffer.size:
            chunk = member.read(min(_READ_CHUNK, buffer.size - filled))
            if not chunk:
                raise CheckpointError(f"nn.load: {path!r}: entry {name!r} is truncated")
            buffer[filled:filled + len(chunk)] = np.frombuffer(chunk, dtype=np.uint8)
            filled += len(chunk)
    return flat.reshape(shape, order="F" if fortran_order else "C")


def _not_an_archive(path, file, exc):
    size = os.fstat(file.fileno()).st_size
    file.seek(0)
    start = file.read(8)
    if start.startswith(b"\x93NUMPY"):
        return f"nn.load: {path!r} holds a single .npy array, not an nn.save archive (read it with numpy.load)"
    if start[:1] == b"\x80":
        return (f"nn.load: {path!r} looks like a Python pickle (an older PyTorch file?), which nn.load never "
                f"runs; convert it where torch is installed: nn.save(torch.load(path, weights_only=True), 'model.npz')")
    return (f"nn.load: {path!r} ({size} bytes) is not a readable nn.save archive: it is truncated, "
            f"damaged or another kind of file ({type(exc).__name__}: {exc})")
