"""One process of the DistributedDataParallel test (test_export_ddp.py): the
exported digits CNN, built from its source, trained a few SGD steps on its
half of each global batch, gradients averaged by DDP over gloo.

    python ddp_worker.py RANK WORLD_SIZE PORT FOLDER

FOLDER holds model.py (the exported source), state.pt (the weights) and
batches.npz (the global batches); the process writes rank<RANK>.pt.
``train`` is also what the test runs in one process, on whole batches.
"""

import datetime
import os
import sys
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

LR, MOMENTUM = 0.05, 0.9


def build(folder):
    namespace = {"__name__": "exported_model"}
    exec(compile((folder / "model.py").read_text(), str(folder / "model.py"), "exec"), namespace)  # noqa: S102
    model = namespace["Model"]()
    model.load_state_dict(torch.load(folder / "state.pt"))
    return model


def train(model, images, labels, part=slice(None)):
    """SGD with momentum on each batch (or on `part` of it), on the mean cross-entropy."""
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    for x, y in zip(images, labels):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(torch.from_numpy(x[part])), torch.from_numpy(y[part]))
        loss.backward()
        optimizer.step()
    return model


def main(rank, world_size, port, folder):
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    torch.set_num_threads(1)
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world_size, timeout=datetime.timedelta(seconds=60))
    try:
        model = DistributedDataParallel(build(folder))
        batches = np.load(folder / "batches.npz")
        size = batches["images"].shape[1] // world_size  # each process: its own contiguous share of every batch
        train(model, batches["images"], batches["labels"], slice(rank * size, (rank + 1) * size))
        torch.save(model.module.state_dict(), folder / f"rank{rank}.pt")
        # both ranks done before either tears down: rank 0 hosts the store, and a rank still
        # talking to it while it goes can abort ("terminate called without an active exception")
        dist.barrier()
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4]))
