"""Writing a file atomically, and opening one to read only when it is a regular file of bounded size.

Writing: a reader sees the old file or the new one, never half.

One helper for every writer of the package (``render_graph``,
``BackpropStepper.save_html``, ``nn.save``): the data goes to a temporary
file in the target's folder, is flushed to disk, and is moved over the target
with ``os.replace`` (atomic on one file system). On any error, Ctrl-C
included, the temporary file is removed and the target is left as it was.

A writer killed outright (SIGKILL, power loss) cannot clean up: its
``.tmp-<pid>@<host>-<token>-<name>.tmp`` stays. The next write to the same
target, on the same machine and in the same container, removes those whose
process is gone; other machines' files in a shared folder are left alone.
On Windows nothing is removed.

Reading (``nn.load``, ``train --csv``, ``load_run``) goes through
:func:`open_regular_file`: a named pipe, a device or a socket is refused
before a byte is read (opening a pipe would wait for a writer forever,
``/dev/zero`` never ends), and so is a file larger than the reader's limit.
The lines of Python source the package shows or parses (the user's line in an
error, a lambda's text) are read by :func:`source_lines`, through it too.
"""

from __future__ import annotations

import functools
import io
import linecache
import os
import re
import secrets
import stat
import tokenize
from pathlib import Path

__all__ = ["atomic_write", "remove_stale_temporaries", "open_regular_file", "source_lines", "NotARegularFileError",
           "FileTooLargeError"]

NAME_MAX = 255  # bytes in one file name on Linux, macOS and Windows file systems
_TEMPORARY = re.compile(r"\.tmp-(?P<pid>[0-9]+)@(?P<host>[0-9a-f]{6})-[0-9a-f]{8}-(?P<name>.*)\.tmp\Z", re.DOTALL)
_OLD_TEMPORARY = re.compile(r"\.tmp-(?P<name>.*)\.(?P<pid>[0-9]+)-[0-9a-f]{8}\.tmp\Z", re.DOTALL)  # earlier releases


def _temporary_name(name, pid, token, host=None):
    """``.tmp-<pid>@<host>-<token>-<name>.tmp``, the target's name cut so the
    whole stays within NAME_MAX bytes (a legal 250-byte target name stays
    writable).

    The pid and a tag of the machine and pid namespace (<host>) say which
    process writes it, so a later write can tell a file left by a killed
    writer from one that is being written, here or on another machine
    sharing the folder.
    """
    prefix, suffix = f".tmp-{pid}@{host or _host_tag()}-{token}-", ".tmp"
    room = NAME_MAX - len(prefix) - len(suffix)
    return prefix + os.fsdecode(os.fsencode(name)[:room]) + suffix


@functools.lru_cache(maxsize=1)
def _host_tag():
    """Six hex digits naming this machine (host name, boot) and pid namespace (container)."""
    import hashlib
    import socket

    parts = [socket.gethostname()]
    for source in ("/proc/sys/kernel/random/boot_id", "/proc/self/ns/pid"):
        try:
            parts.append(os.readlink(source) if source.endswith("/pid") else Path(source).read_text().strip())
        except OSError:
            pass
    return hashlib.sha1("|".join(parts).encode("utf-8", "surrogateescape")).hexdigest()[:6]


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
    remove_stale_temporaries(path)
    # A fresh name opened with O_EXCL and 0o666, so the kernel applies the umask
    # (tempfile.mkstemp would make the file private, 0o600).
    temporary = path.with_name(_temporary_name(path.name, os.getpid(), secrets.token_hex(4)))
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


def remove_stale_temporaries(path):
    """Remove the temporary files of `path` whose writer process is gone.

    A writer killed mid-write (SIGKILL, power loss) cannot clean up; its
    ``.tmp-<pid>-...`` file stays beside the target. The next write to the
    same target removes every such file whose pid is no longer running on
    this machine (``os.kill(pid, 0)``); files of running writers are left
    alone. Returns the names removed.

    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> dead = _temporary_name("model.npz", 2**22 + 1, "0123abcd")   # above Linux's pid_max
    >>> open(os.path.join(folder, dead), "w").close()
    >>> remove_stale_temporaries(os.path.join(folder, "model.npz")) == [dead]
    True
    """
    path = Path(path)
    removed = []
    try:
        entries = [entry.name for entry in os.scandir(path.parent) if entry.name.startswith(".tmp-")]
    except OSError:
        return removed
    for entry in entries:
        match = _TEMPORARY.match(entry) or _OLD_TEMPORARY.match(entry)
        if match is None or not _same_target(entry, match["name"], path.name):
            continue
        if match.re is _TEMPORARY and match["host"] != _host_tag():
            continue  # another machine's or container's writer: its pids are not ours to ask about
        if _process_is_running(int(match["pid"])):
            continue
        try:
            os.unlink(path.parent / entry)
            removed.append(entry)
        except OSError:
            pass  # another writer removed it first, or the folder is read-only
    return removed


def _same_target(entry, recorded, name):
    # A temporary name of exactly NAME_MAX bytes had the target's name cut: a prefix.
    return recorded == name or (len(os.fsencode(entry)) == NAME_MAX and name.startswith(recorded))


def _process_is_running(pid):
    if os.name == "nt":
        return True  # os.kill(pid, 0) would end the process on Windows; leave the files there
    if pid == os.getpid():
        return True
    if pid <= 0:
        return True  # 0 and negative pids address process groups; never treat them as dead
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # someone else's process (or a pid we cannot ask about): leave its file
    return True


class NotARegularFileError(OSError):
    """The path to read is a named pipe, a device or a socket, not a file.

    >>> open_regular_file("/dev/null", max_bytes=100)          # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    NotARegularFileError: '/dev/null' is not a regular file (a character device)
    """


class FileTooLargeError(OSError):
    """The file to read is larger than its reader's limit (``size`` and ``limit`` in bytes).

    >>> import os, tempfile
    >>> path = atomic_write(os.path.join(tempfile.mkdtemp(), "big.txt"), "x" * 200)
    >>> open_regular_file(path, max_bytes=100)                 # doctest: +ELLIPSIS
    Traceback (most recent call last):
    autograd_core._files.FileTooLargeError: '...big.txt' is 200 bytes, more than the 100 its reader takes
    """

    def __init__(self, message, size, limit):
        super().__init__(message)
        self.size, self.limit = size, limit


def open_regular_file(path, max_bytes):
    """Open `path` for reading in binary only if it is a regular file of at most
    `max_bytes`; the checks are made on the opened file (``fstat``), so the
    path cannot be swapped between the check and the read.

    Raises ``FileNotFoundError``, ``IsADirectoryError``,
    :class:`NotARegularFileError` (a pipe, a device, a socket: it is opened
    without waiting for a writer and closed unread) or
    :class:`FileTooLargeError`; callers turn them into their own messages.

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "notes.txt")
    >>> with open_regular_file(atomic_write(path, "a = 2.0\\n"), max_bytes=100) as file:
    ...     file.read()
    b'a = 2.0\\n'
    """
    # O_NONBLOCK: a pipe without a writer opens at once instead of waiting; it
    # changes nothing for a regular file, whose reads never block
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    descriptor = os.open(path, flags)
    try:
        info = os.fstat(descriptor)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(f"{os.fspath(path)!r} is a folder")
        if not stat.S_ISREG(info.st_mode):
            raise NotARegularFileError(f"{os.fspath(path)!r} is not a regular file ({_file_kind(info.st_mode)})")
        if info.st_size > max_bytes:
            raise FileTooLargeError(f"{os.fspath(path)!r} is {info.st_size:,} bytes, more than the {max_bytes:,} "
                                    f"its reader takes", info.st_size, max_bytes)
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


SOURCE_MAX_BYTES = 8 * 2**20  # a Python source file whose lines the package reads


def source_lines(filename):
    """The lines of the Python source file `filename` (a code object's ``co_filename``), as
    ``linecache.getlines`` gives them, or [] when it cannot be read. A name ``linecache``
    holds already (a module's file, a notebook cell) is answered from it; any other file is
    read only if it is a regular file of at most SOURCE_MAX_BYTES (a code object can name
    ``/dev/zero`` or a pipe), and then kept in ``linecache`` for the next reader.

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "step.py")
    >>> source_lines(atomic_write(path, "y = 2\\nz = lambda x: x\\n"))
    ['y = 2\\n', 'z = lambda x: x\\n']
    >>> source_lines("/dev/zero"), source_lines("<no such file>")
    ([], [])
    """
    if filename in linecache.cache:
        return linecache.getlines(filename)
    try:
        with open_regular_file(filename, SOURCE_MAX_BYTES) as file:
            data = file.read(SOURCE_MAX_BYTES + 1)
            info = os.fstat(file.fileno())
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        lines = io.TextIOWrapper(io.BytesIO(data), encoding).readlines()  # (universal newlines, as linecache)
    except (OSError, ValueError, SyntaxError, LookupError):  # (a bad encoding line, undecodable bytes)
        return []
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    linecache.cache[filename] = (info.st_size, info.st_mtime, lines, filename)
    return lines


def _file_kind(mode):
    for test, kind in ((stat.S_ISFIFO, "a named pipe"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return kind
    return "not a file"
