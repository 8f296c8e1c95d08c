"""nn.save / nn.load: round trips, atomic writes, clear errors."""

import os
import zipfile

import numpy as np
import pytest

import nn


def test_module_roundtrip(tmp_path):
    model = nn.MLP([4, 5, 3], batchnorm=True)
    model(np.random.default_rng(0).normal(size=(6, 4)))
    path = tmp_path / "model.npz"
    nn.save(model, path)
    state = nn.load(path)
    assert list(state) == list(model.state_dict())
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(state[key], value)
        assert state[key].dtype == value.dtype
    fresh = nn.load(path, module=nn.MLP([4, 5, 3], batchnorm=True))
    x = np.ones((2, 4))
    np.testing.assert_array_equal(fresh.eval()(x).data, model.eval()(x).data)


def test_file_is_plain_npz_with_format_keys(tmp_path):
    path = tmp_path / "layer.npz"
    nn.save(nn.Linear(2, 3), path)
    with np.load(path, allow_pickle=False) as archive:
        assert set(archive.files) == {"weight", "bias", "__autograd_core_format__", "__autograd_core_version__"}
        assert int(archive["__autograd_core_version__"]) == nn.serialization.FORMAT_VERSION


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    nn.save({"w": np.ones(3)}, path)
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        nn.save({"w": np.zeros(3)}, path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.npz"]  # no temporary file left behind


def test_truncated_file_is_named(tmp_path):
    path = tmp_path / "model.npz"
    nn.save(nn.MLP([4, 8, 3]), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(nn.CheckpointError, match="truncated, damaged or another kind of file"):
        nn.load(path)


def test_foreign_files_are_refused(tmp_path):
    text = tmp_path / "notes.npz"
    text.write_text("hello")
    with pytest.raises(nn.CheckpointError, match="not a readable nn.save archive"):
        nn.load(text)
    plain = tmp_path / "plain.npz"
    np.savez(plain, a=np.ones(2))
    with pytest.raises(nn.CheckpointError, match="was not written by nn.save"):
        nn.load(plain)
    other_zip = tmp_path / "other.npz"
    with zipfile.ZipFile(other_zip, "w") as z:
        z.writestr("readme.txt", "not numpy")
    with pytest.raises(nn.CheckpointError):
        nn.load(other_zip)
    with pytest.raises(FileNotFoundError, match="no such file"):
        nn.load(tmp_path / "missing.npz")


def test_newer_format_version_is_refused(tmp_path):
    path = tmp_path / "future.npz"
    np.savez(path, w=np.ones(2), __autograd_core_format__=np.array("autograd_core.nn state_dict"),
             __autograd_core_version__=np.array(99))
    with pytest.raises(nn.CheckpointError, match="format version 99"):
        nn.load(path)


def test_mismatched_architecture_is_named(tmp_path):
    path = tmp_path / "model.npz"
    nn.save(nn.MLP([4, 8, 3]), path)
    with pytest.raises(ValueError, match=r"0\.weight: shape \(8, 4\) in the file, \(9, 4\) in the model"):
        nn.load(path, module=nn.MLP([4, 9, 3]))


def test_save_rejects_what_it_cannot_store(tmp_path):
    with pytest.raises(TypeError, match="only numeric arrays"):
        nn.save({"state": {"nested": 1}}, tmp_path / "x.npz")
    with pytest.raises(TypeError, match="Module or a state dict"):
        nn.save([1, 2], tmp_path / "x.npz")


def test_pytorch_state_dict_loads(tmp_path):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    reference = torch.nn.Sequential(
        torch.nn.Linear(4, 6), torch.nn.BatchNorm1d(6), torch.nn.ReLU(), torch.nn.Dropout(0.2), torch.nn.Linear(6, 3)
    ).double()
    reference.train()
    reference(torch.randn(10, 4, dtype=torch.float64))
    reference.eval()
    model = nn.MLP([4, 6, 3], batchnorm=True, dropout=0.2)
    state = {k: v.numpy() for k, v in reference.state_dict().items()}
    model.load_state_dict(state)
    path = tmp_path / "from_torch.npz"
    nn.save(state, path)
    model2 = nn.load(path, module=nn.MLP([4, 6, 3], batchnorm=True, dropout=0.2))
    x = np.random.default_rng(1).normal(size=(5, 4))
    expected = reference(torch.tensor(x)).detach().numpy()
    np.testing.assert_allclose(model.eval()(x).data, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(model2.eval()(x).data, expected, rtol=1e-12, atol=1e-12)
    # tensors themselves load too (they are detached and converted)
    model.load_state_dict(reference.state_dict())


def test_a_value_the_models_dtype_cannot_hold_is_refused_naming_the_entry(tmp_path):
    import warnings

    trained = nn.Linear(2, 1)
    trained.weight.data = np.array([[70000.0, 0.5]], dtype=np.float32)  # float16 holds at most 65504
    path = tmp_path / "wide.npz"
    nn.save(trained, path)
    half = nn.Linear(2, 1).astype(np.float16)
    before = half.state_dict()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning either: the check comes before the cast
        with pytest.raises(nn.CheckpointError, match=r"load_state_dict into Linear: 'weight' \(float32, shape \(1, 2\)\) "
                                                     r"holds 70000\.0 at index \(0, 0\), which float16 cannot hold "
                                                     r"\(its largest finite value is 65504\.0; 1 such value\(s\)"):
            half.load_state_dict(trained.state_dict())
        with pytest.raises(nn.CheckpointError, match=r"nn.load: '.*wide\.npz': load_state_dict into Linear: 'weight'"):
            nn.load(path, module=half)
    for name, value in half.state_dict().items():  # nothing was loaded, the bias neither
        np.testing.assert_array_equal(value, before[name], err_msg=name)
    # what float16 holds loads: 65504 itself, and NaN or inf that were there already
    trained.weight.data = np.array([[65504.0, np.inf]], dtype=np.float32)
    trained.bias.data = np.array([np.nan], dtype=np.float32)
    half.load_state_dict(trained.state_dict())
    assert half.weight.data.tolist() == [[65504.0, np.inf]] and np.isnan(half.bias.data[0])
    assert half.weight.dtype == np.float16
    # an integer buffer: a count past int64 is refused too
    norm = nn.BatchNorm1d(2)
    state = norm.state_dict()
    state["num_batches_tracked"] = np.array(2.0**70)
    with pytest.raises(nn.CheckpointError, match=r"'num_batches_tracked' \(float64, shape \(\)\) holds 1\.18.*e\+21, which "
                                                 r"int64 cannot hold"):
        norm.load_state_dict(state)
