"""Hostile and odd checkpoint files: nn.load checks sizes and headers before it
decodes anything, and nn.save cleans up after killed writers and fits any
legal file name."""

import io
import os
import subprocess
import sys
import tracemalloc
import zipfile

import numpy as np
import pytest

import nn
from autograd_core._files import NAME_MAX, _host_tag, _temporary_name, remove_stale_temporaries

FORMAT = {"__autograd_core_format__": np.array("autograd_core.nn state_dict"),
          "__autograd_core_version__": np.array(1)}


def _npy_bytes(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _header_bytes(shape, descr="<f8"):
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def _write_zip(path, members, compression=zipfile.ZIP_STORED):
    """members: {name: bytes}; the format and version entries are added."""
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for key, value in FORMAT.items():
            archive.writestr(f"{key}.npy", _npy_bytes(value))
        for name, data in members.items():
            archive.writestr(name, data)


def _peak_allocation(call):
    """The peak of traced allocations (NumPy's array memory included) during `call`."""
    tracemalloc.start()
    try:
        call()
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak


def test_a_member_that_unpacks_past_the_limit_is_refused_before_decoding(tmp_path):
    # a real deflate bomb: 256 MiB of zeros in a few hundred kB
    path = tmp_path / "bomb.npz"
    size = 256 << 20
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for key, value in FORMAT.items():
            archive.writestr(f"{key}.npy", _npy_bytes(value))
        with archive.open("weight.npy", "w") as member:
            member.write(_header_bytes((size // 8,)))
            zeros = bytes(1 << 22)
            for _ in range(size // len(zeros)):
                member.write(zeros)
    assert path.stat().st_size < 2 << 20
    errors = []

    def load():
        with pytest.raises(nn.CheckpointError, match=r"would unpack to 268,435,[0-9]{3} bytes, over the limit of 67,108,864") as info:
            nn.load(path, max_bytes=64 << 20)
        errors.append(info.value)

    assert _peak_allocation(load) < 4 << 20
    assert errors
    # under the limit it loads, and the zeros are all there
    state = nn.load(path, max_bytes=512 << 20)
    assert state["weight"].shape == (size // 8,) and not state["weight"].any()


def test_a_declared_size_of_2_gib_is_refused_with_the_default_limit(tmp_path):
    # The central directory is what the reader trusts; a file that declares
    # 2 GiB for a member is refused on that number alone.
    path = tmp_path / "claims.npz"
    _write_zip(path, {"weight.npy": _npy_bytes(np.zeros(4))})
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("weight.npy")
    # patch the uncompressed size of the last central-directory record (weight.npy) to 2 GiB
    record = data.rindex(b"PK\x01\x02")
    assert data[record + 46:record + 46 + len(b"weight.npy")] == b"weight.npy"
    assert int.from_bytes(data[record + 24:record + 28], "little") == info.file_size
    data[record + 24:record + 28] = (2**31).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    with pytest.raises(nn.CheckpointError, match=r"2,147,48[0-9],[0-9]{3} bytes, over the limit of 1,073,741,824"):
        nn.load(path)


def test_a_header_claiming_a_huge_shape_is_a_checkpoint_error_not_memory_error(tmp_path):
    path = tmp_path / "liar.npz"
    _write_zip(path, {"weight.npy": _header_bytes((10**12,)) + bytes(64)})
    with pytest.raises(nn.CheckpointError, match=r"'weight' claims shape \(1000000000000,\) of float64 "
                                                 r"\(8,000,000,000,000 bytes\) but holds 64 bytes"):
        nn.load(path)


def test_shapes_and_dtypes_are_checked_against_the_model_before_decoding(tmp_path):
    path = tmp_path / "big.npz"
    nn.save({"0.weight": np.ones((2000, 2000)), "0.bias": np.ones(3)}, path)  # 32 MB of weights
    errors = []

    def load():
        with pytest.raises(nn.CheckpointError, match=r"0\.weight: shape \(2000, 2000\) in the file, \(3, 2\) in the model"):
            nn.load(path, module=nn.Sequential(nn.Linear(2, 3)))
        errors.append(True)

    assert _peak_allocation(load) < 4 << 20  # the 32 MB entry was never decoded
    assert errors
    # a state dict as the template: its dtypes count too (a float where an integer count is kept)
    nn.save({"count": np.array(2.5)}, path)
    with pytest.raises(nn.CheckpointError, match=r"count: dtype float64 in the file, int64 in the model"):
        nn.load(path, module={"count": np.array(3)})
    assert float(nn.load(path, module={"count": np.array(0.0, dtype=np.float32)})["count"]) == 2.5


def test_non_numeric_entries_are_refused(tmp_path):
    path = tmp_path / "objects.npz"
    _write_zip(path, {"weight.npy": _npy_bytes(np.array([{"a": 1}], dtype=object))})
    with pytest.raises(nn.CheckpointError, match="'weight' has dtype object"):
        nn.load(path)
    _write_zip(path, {"weight.npy": _npy_bytes(np.array(["abc"]))})
    with pytest.raises(nn.CheckpointError, match="'weight' has dtype <U3; only numeric arrays"):
        nn.load(path)


@pytest.mark.parametrize("version, shown", [
    (np.array([1, 1]), r"shape \(2,\) of int64"),
    (np.array(1.9), r"shape \(\) of float64"),
    (np.array("1"), r"shape \(\) of <U1"),
    (np.array(True), r"shape \(\) of bool"),
])
def test_a_version_that_is_not_one_integer_is_refused(tmp_path, version, shown):
    path = tmp_path / "odd-version.npz"
    np.savez(path, weight=np.ones(2), __autograd_core_format__=FORMAT["__autograd_core_format__"],
             __autograd_core_version__=version)
    with pytest.raises(nn.CheckpointError, match=r"'__autograd_core_version__' should be a single integer, it is " + shown):
        nn.load(path)


def test_the_values_read_are_the_values_saved_whatever_the_layout(tmp_path):
    rng = np.random.default_rng(0)
    state = {"c": rng.normal(size=(3, 4)), "f": np.asfortranarray(rng.normal(size=(4, 5))),
             "big_endian": rng.normal(size=6).astype(">f4"), "ints": np.arange(7, dtype=np.int16),
             "empty": np.zeros((0, 3)), "scalar": np.array(2.5), "flags": np.array([True, False])}
    path = tmp_path / "layouts.npz"
    nn.save(state, path)
    loaded = nn.load(path)
    assert list(loaded) == list(state)
    for name, array in state.items():
        assert loaded[name].dtype == array.dtype and loaded[name].shape == array.shape, name
        np.testing.assert_array_equal(loaded[name], array)
        assert loaded[name].flags.writeable


def test_a_folder_is_reported_as_a_folder(tmp_path):
    with pytest.raises(IsADirectoryError, match="is a directory"):
        nn.load(tmp_path)


def test_a_pytorch_zip_gets_told_how_to_convert(tmp_path):
    # the layout torch.save writes: <name>/data.pkl, <name>/data/0, ...
    path = tmp_path / "model.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("model/data.pkl", b"\x80\x02}q\x00.")
        archive.writestr("model/data/0", bytes(16))
        archive.writestr("model/version", b"3\n")
    with pytest.raises(nn.CheckpointError, match=r"is a PyTorch file \(torch.save\).*torch.load\(path, weights_only=True\)"):
        nn.load(path)


def test_a_real_pytorch_file_gets_told_how_to_convert_and_the_advice_works(tmp_path):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    reference = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3)).double()
    path = tmp_path / "model.pt"
    torch.save(reference.state_dict(), path)
    with pytest.raises(nn.CheckpointError, match="is a PyTorch file"):
        nn.load(path)
    legacy = tmp_path / "legacy.pt"
    torch.save(reference.state_dict(), legacy, _use_new_zipfile_serialization=False)
    with pytest.raises(nn.CheckpointError, match="looks like a Python pickle"):
        nn.load(legacy)
    # the advice in the message, followed
    nn.save(torch.load(path, weights_only=True), tmp_path / "model.npz")
    model = nn.load(tmp_path / "model.npz", module=nn.MLP([4, 8, 3]))
    x = np.random.default_rng(0).normal(size=(5, 4))
    np.testing.assert_allclose(model(x).data, reference(torch.tensor(x)).detach().numpy(), rtol=1e-12, atol=1e-12)


def test_a_legal_249_character_name_saves_and_loads(tmp_path):
    for name in ("m" * 245 + ".npz", "w" * (NAME_MAX - 4) + ".npz", "é" * 125 + ".npz"):
        assert len(os.fsencode(name)) <= NAME_MAX
        nn.save({"weight": np.arange(3.0)}, tmp_path / name)
        np.testing.assert_array_equal(nn.load(tmp_path / name)["weight"], np.arange(3.0))
    assert not [entry for entry in os.listdir(tmp_path) if entry.startswith(".tmp-")]


def _dead_pid():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.mark.skipif(os.name == "nt", reason="liveness is checked with os.kill(pid, 0)")
def test_the_next_save_removes_temporary_files_of_dead_writers_only(tmp_path):
    target = tmp_path / "model.npz"
    dead, alive = _dead_pid(), os.getppid()
    other_host = "000000" if _host_tag() != "000000" else "111111"
    long_target = tmp_path / ("x" * 250 + ".npz")
    left_by_dead = [_temporary_name("model.npz", dead, "0123abcd"),
                    f".tmp-model.npz.{dead}-89abcdef.tmp",  # the name earlier releases gave
                    _temporary_name(long_target.name, dead, "0123abcd")]
    kept = [_temporary_name("model.npz", alive, "0123abcd"),       # a writer still running
            _temporary_name("other.npz", dead, "0123abcd"),        # another target's
            _temporary_name("model.npz", dead, "0123abcd", host=other_host),  # another machine's or container's
            ".tmp-notes.txt", "model.npz.tmp"]                     # not ours at all
    for name in left_by_dead + kept:
        (tmp_path / name).write_bytes(b"partial")
    assert len(os.fsencode(left_by_dead[2])) == NAME_MAX  # the long target's name was cut to fit
    nn.save({"weight": np.ones(2)}, target)
    nn.save({"weight": np.ones(2)}, long_target)
    assert sorted(os.listdir(tmp_path)) == sorted(kept + ["model.npz", long_target.name])
    assert remove_stale_temporaries(target) == []


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_device_or_a_pipe_is_refused_without_reading(tmp_path):
    pipe = tmp_path / "pipe.npz"
    os.mkfifo(pipe)  # opening it for reading would wait for a writer forever
    with pytest.raises(nn.CheckpointError, match="is not a regular file"):
        nn.load(pipe)
    if os.path.exists("/dev/zero"):
        with pytest.raises(nn.CheckpointError, match="is not a regular file"):
            nn.load("/dev/zero")


def test_a_file_larger_than_the_limit_is_refused_before_it_is_read(tmp_path):
    from nn import serialization

    path = tmp_path / "huge.npz"
    with open(path, "wb") as file:
        file.truncate(serialization._ARCHIVE_ROOM + 10_001)  # sparse: no disk space, and no archive at all
    with pytest.raises(nn.CheckpointError, match=r"huge.npz' is 67,118,865 bytes, over the limit of 10,000 bytes of "
                                                 r"arrays .*pass max_bytes= to allow it"):
        nn.load(path, max_bytes=10_000)


def test_a_huge_npy_header_is_refused(tmp_path):
    path = tmp_path / "header.npz"
    header = b"\x93NUMPY\x02\x00" + (200_000).to_bytes(4, "little") + b"{" + b" " * 199_999
    _write_zip(path, {"weight.npy": header})
    with pytest.raises(nn.CheckpointError, match="'weight' has no readable .npy header"):
        nn.load(path)
