"""The path past one machine, for real: the digits CNN exported to PyTorch and
trained with DistributedDataParallel in 2 CPU processes (gloo, localhost)
ends with the weights that one process gets on the same global batches."""

import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import nn
from autograd_core import export
from autograd_core.app.models import build_cnn

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")

HERE = Path(__file__).resolve().parent
WORLD_SIZE, STEPS, GLOBAL_BATCH = 2, 4, 32
TIME_LIMIT = 180  # seconds for both processes, start to finish (most of it is importing torch)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_ddp_on_two_processes_equals_one_process_on_the_same_global_batches(tmp_path):
    if not (dist.is_available() and dist.is_gloo_available()):
        pytest.skip("torch.distributed with the gloo backend is not available")
    sys.path.insert(0, str(HERE))
    try:
        import ddp_worker
    finally:
        sys.path.remove(str(HERE))
    nn.manual_seed(0)
    model = build_cnn((1, 8, 8), [8, 16], 10).float()  # the CNN of `autograd-core train --data digits`
    digits = nn.data.load_digits()
    order = np.random.default_rng(0).permutation(len(digits.y))[:STEPS * GLOBAL_BATCH]
    images = (digits.images[order] / 16).astype(np.float32).reshape(STEPS, GLOBAL_BATCH, 1, 8, 8)
    labels = digits.y[order].reshape(STEPS, GLOBAL_BATCH)
    (tmp_path / "model.py").write_text(export.torch_source(model, images[0], class_name="Model"))
    exported = export.to_torch(model, images[0])
    torch.save(exported.state_dict(), tmp_path / "state.pt")
    np.savez(tmp_path / "batches.npz", images=images, labels=labels)

    port = _free_port()
    processes = [subprocess.Popen([sys.executable, str(HERE / "ddp_worker.py"), str(rank), str(WORLD_SIZE), str(port),
                                   str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                 for rank in range(WORLD_SIZE)]
    deadline = time.monotonic() + TIME_LIMIT
    outputs = []
    try:
        for process in processes:
            out, _ = process.communicate(timeout=max(1.0, deadline - time.monotonic()))
            outputs.append(out.decode(errors="replace")[-2000:])
    except subprocess.TimeoutExpired:
        pytest.fail(f"the DDP processes did not finish within {TIME_LIMIT} s")
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert [p.returncode for p in processes] == [0] * WORLD_SIZE, "\n".join(outputs)

    single = ddp_worker.train(ddp_worker.build(tmp_path), images, labels)
    expected = single.state_dict()
    start = torch.load(tmp_path / "state.pt")
    for rank in range(WORLD_SIZE):
        trained = torch.load(tmp_path / f"rank{rank}.pt")
        assert trained.keys() == expected.keys()
        for name, weights in trained.items():
            assert not torch.equal(weights, start[name]), f"{name} did not move"
            np.testing.assert_allclose(weights.numpy(), expected[name].numpy(), rtol=1e-6, atol=1e-7,
                                       err_msg=f"rank {rank}: {name}")
