"""Files are never lost: a process killed while nn.save overwrites a checkpoint
leaves the old or the new file, never a broken one; loading an older format
or a different architecture says what differs."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

nn = pytest.importorskip("nn")
if not hasattr(nn, "save"):
    pytest.skip("nn.save has not landed", allow_module_level=True)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Saves two large state dicts over one file, alternately, forever; every array
# of save number k is filled with k, so a file mixing two saves is detectable.
SAVER = textwrap.dedent("""
    import sys
    import numpy as np
    import nn
    path = sys.argv[1]
    k = 0
    while True:
        k += 1
        nn.save({"weight": np.full((1000, 1000), float(k)), "bias": np.full(1000, float(k)),
                 "step": np.array(k)}, path)
        print(k, flush=True)
""")


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_killing_the_process_mid_save_leaves_the_old_or_the_new_file(tmp_path):
    path = tmp_path / "model.npz"
    script = tmp_path / "saver.py"
    script.write_text(SAVER)
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    rng = np.random.default_rng(0)
    kills_during_a_write = 0
    for attempt in range(8):
        process = subprocess.Popen([sys.executable, str(script), str(path)], stdout=subprocess.PIPE, env=env, text=True)
        try:
            first = process.stdout.readline()  # one complete save, so a file exists
            assert first.strip(), "the saver never finished a save"
            time.sleep(rng.uniform(0.0, 0.15))
            process.send_signal(signal.SIGKILL)
        finally:
            process.wait(timeout=30)
            process.stdout.close()
        assert process.returncode == -signal.SIGKILL
        # a temporary file left behind means the kill landed in the middle of a write
        leftovers = set(os.listdir(tmp_path)) - {"model.npz", "saver.py"}
        if leftovers:
            kills_during_a_write += 1
        # SIGKILL gives no chance to clean up; the next process's first save
        # removes what a killed one left, so at most this kill's file is here
        assert len(leftovers) <= 1, leftovers
        state = nn.load(path)  # never a CheckpointError: the file is complete
        k = int(state["step"])
        assert k >= 1
        np.testing.assert_array_equal(state["weight"], np.full((1000, 1000), float(k)))
        np.testing.assert_array_equal(state["bias"], np.full(1000, float(k)))
    assert kills_during_a_write >= 1, "no kill landed during a write: the test proved nothing"
    nn.save({"weight": np.zeros(2)}, path)  # the writers are dead: their temporary files go
    assert sorted(os.listdir(tmp_path)) == ["model.npz", "saver.py"]


def _write_npz(path, arrays):
    with open(path, "wb") as file:
        np.savez(file, **arrays)


def test_loading_an_older_format_version_says_which_versions(tmp_path):
    path = tmp_path / "old.npz"
    _write_npz(path, {"weight": np.zeros((2, 2)), "__autograd_core_format__": np.array("autograd_core.nn state_dict"),
                      "__autograd_core_version__": np.array(0)})
    with pytest.raises(nn.CheckpointError, match=r"format version 0.*version 1"):
        nn.load(path)


def test_loading_a_different_architecture_names_every_difference(tmp_path):
    nn.manual_seed(0)
    path = tmp_path / "mlp.npz"
    nn.save(nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1)), path)
    wider = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 1))
    with pytest.raises(ValueError, match=r"0\.weight: shape \(3, 2\) in the file, \(4, 2\) in the model"):
        nn.load(path, wider)
    deeper = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 3), nn.Tanh(), nn.Linear(3, 1))
    before = [p.data.copy() for p in deeper.parameters()]
    with pytest.raises(ValueError, match=r"missing keys: 4\.weight, 4\.bias") as info:
        nn.load(path, deeper)
    assert "2.weight: shape (1, 3) in the file, (3, 3) in the model" in str(info.value)
    for p, b in zip(deeper.parameters(), before):  # a refused load changes nothing
        np.testing.assert_array_equal(p.data, b)


def test_a_truncated_file_is_reported_not_half_loaded(tmp_path):
    path = tmp_path / "model.npz"
    nn.save({"weight": np.arange(10_000.0)}, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(nn.CheckpointError, match="truncated"):
        nn.load(path)
