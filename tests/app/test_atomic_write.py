"""atomic_write and the writers built on it: usual permissions, old file kept on failure."""

import os
import stat
import sys

import numpy as np
import pytest

import autograd_core as ag
import nn
from autograd_core._files import atomic_write

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")


@pytest.fixture
def umask_027():
    """A umask other than the usual 022, so 'honours the umask' is really checked."""
    previous = os.umask(0o027)
    yield 0o640  # what open(path, "w") gives a new file under this umask
    os.umask(previous)


def _permissions(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def _tiny_graph():
    a = ag.Value(2.0, label="a")
    b = ag.Value(-3.0, label="b")
    return a * b


@posix_only
def test_new_file_gets_the_umask_permissions_not_private(tmp_path, umask_027):
    path = atomic_write(tmp_path / "out.txt", "hello")
    assert path.read_text() == "hello"
    assert _permissions(path) == umask_027
    plain = tmp_path / "plain.txt"
    plain.write_text("hello")
    assert _permissions(path) == _permissions(plain)


@posix_only
@pytest.mark.parametrize("writer", ["render_graph", "save_html", "nn.save"])
def test_every_writer_gives_the_usual_permissions(tmp_path, umask_027, writer):
    if writer == "render_graph":
        if ag.viz.renderer_name() is None:
            pytest.skip("no Graphviz renderer")
        path = ag.render_graph(_tiny_graph(), tmp_path / "graph.svg")
    elif writer == "save_html":
        if ag.viz.renderer_name() is None:
            pytest.skip("no Graphviz renderer")
        path = ag.BackpropStepper(_tiny_graph()).save_html(tmp_path / "backprop.html")
    else:
        path = tmp_path / "model.npz"
        nn.save(nn.Linear(2, 1), path)
    assert _permissions(path) == umask_027
    assert os.listdir(tmp_path) == [os.path.basename(path)]


@posix_only
def test_replacing_a_file_keeps_its_permissions(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    os.chmod(path, 0o604)
    atomic_write(path, b"new")
    assert path.read_bytes() == b"new"
    assert _permissions(path) == 0o604


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_a_failing_write_leaves_the_old_file_and_no_temporary(tmp_path, error):
    path = tmp_path / "data.npz"
    atomic_write(path, b"old contents")

    def half_then_fail(file):
        file.write(b"new contents, half writ")
        raise error

    with pytest.raises(type(error)):
        atomic_write(path, half_then_fail)
    assert path.read_bytes() == b"old contents"
    assert os.listdir(tmp_path) == ["data.npz"]


def test_text_bytes_and_writer_functions(tmp_path):
    assert atomic_write(tmp_path / "t.txt", "μ = 0.5\n").read_text(encoding="utf-8") == "μ = 0.5\n"
    assert atomic_write(tmp_path / "b.bin", b"\x00\x01").read_bytes() == b"\x00\x01"
    path = atomic_write(tmp_path / "a.npy", lambda file: np.save(file, np.arange(3.0)))
    np.testing.assert_array_equal(np.load(path), [0.0, 1.0, 2.0])


def test_missing_folder_is_created_only_when_asked(tmp_path):
    with pytest.raises(FileNotFoundError):
        atomic_write(tmp_path / "new" / "out.txt", "x")
    assert atomic_write(tmp_path / "new" / "out.txt", "x", make_parents=True).read_text() == "x"


def test_a_missing_folder_or_a_folder_as_target_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"cannot write '.*out.txt': the folder '.*nowhere' does not exist"):
        atomic_write(tmp_path / "nowhere" / "out.txt", "x")
    with pytest.raises(IsADirectoryError, match=r"it is a folder; give a file name inside it"):
        atomic_write(tmp_path, "x")
    assert os.listdir(tmp_path) == []
    assert not any(name.startswith(".tmp-") for name in os.listdir(tmp_path.parent))  # nothing written beside it


def test_data_of_another_type_is_named(tmp_path):
    with pytest.raises(TypeError, match=r"atomic_write: data must be bytes, str or a function.*got dict"):
        atomic_write(tmp_path / "out.txt", {"a": 1})
    assert os.listdir(tmp_path) == []
