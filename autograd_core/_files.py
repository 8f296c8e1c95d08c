"""Writing a file atomically: a reader sees the old file or the new one, never half.

One helper for every writer of the package (``render_graph``,
``BackpropStepper.save_html``, ``nn.save``): the data goes to a temporary
file in the target's folder, is flushed to disk, and is moved over the target
with ``os.replace`` (atomic on one file system). On any error, Ctrl-C
included, the temporary file is removed and the target is left as it was.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

__all__ = ["atomic_write"]


def atomic_write(path, data, *, encoding="utf-8", make_parents=False):
    """Write `data` to `path` atomically and return the path as a ``Path``.

    `data` is ``bytes``, a ``str`` (written with `encoding`), or a function
    that is called with the open binary file and writes to it (for writers
    such as ``numpy.savez``). With `make_parents`, missing folders are
    created.

    The file gets the permissions a plain ``open(path, "w")`` would give: a
    new file ``0o666`` minus the umask (usually ``-rw-r--r--``), a replaced
    file keeps its permissions.

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "notes.txt")
    >>> atomic_write(path, "a = 2.0\\n").read_text()
    'a = 2.0\\n'
    >>> atomic_write(path, lambda file: file.write(b"b = -3.0\\n")).read_bytes()
    b'b = -3.0\\n'
    """
    if not (isinstance(data, (bytes, bytearray, memoryview, str)) or callable(data)):
        raise TypeError(
            f"atomic_write: data must be bytes, str or a function that writes to a binary file, "
            f"got {type(data).__name__}"
        )
    path = Path(path)
    if make_parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir():
        raise IsADirectoryError(f"cannot write {str(path)!r}: it is a folder; give a file name inside it")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot write {str(path)!r}: the folder {str(path.parent)!r} does not exist; create it first")
    try:
        mode = os.stat(path).st_mode & 0o7777  # replacing a file keeps its permissions, as open() does
    except OSError:
        mode = None
    # A fresh name opened with O_EXCL and 0o666, so the kernel applies the umask
    # (tempfile.mkstemp would make the file private, 0o600). ".tmp-" ... ".tmp"
    # marks it as temporary to anyone who looks at the folder mid-write.
    temporary = path.with_name(f".tmp-{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    handle = os.open(temporary, flags, 0o666)
    try:
        with os.fdopen(handle, "wb") as file:
            if callable(data):
                data(file)
            else:
                file.write(data.encode(encoding) if isinstance(data, str) else data)
            file.flush()
            os.fsync(file.fileno())
        if mode is not None:
            os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
    return path
