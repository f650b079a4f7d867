"""Starting and joining the ranks of a data-parallel run (``core.engine.distributed``).

``RankProcesses`` starts ranks 1..N-1 as spawned processes of this one (rank 0) and ends them
when the run ends; ``LaunchedRanks`` stands for ranks that torchrun or ``accelerate launch``
started (``RANK``/``WORLD_SIZE`` in the environment, ``launcher_rank``).
"""

from __future__ import annotations

import datetime
import os
import socket
from typing import Callable

import torch
import torch.distributed as dist

#: Every collective waits this long: a paused run holds the other ranks at the step's broadcast.
WAIT = datetime.timedelta(days=7)
ADDRESS = "127.0.0.1"


def launcher_rank() -> tuple[int, int]:
    """(rank, world size) given by torchrun or ``accelerate launch`` (``RANK``, ``WORLD_SIZE``),
    else (0, 1)."""
    try:
        return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 0, 1


def launched_backend() -> str:
    return "nccl" if torch.cuda.is_available() else "gloo"


def local_gpu(rank: int) -> int:
    return int(os.environ.get("LOCAL_RANK", rank))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((ADDRESS, 0))
        return sock.getsockname()[1]


class RankProcesses:
    """The ranks 1..N-1 of a run, and rank 0's membership of their process group."""

    def __init__(self, world: int, backend: str, threads: int, target: Callable[..., None]):
        self.world, self.backend = world, backend
        self.port = _free_port()
        context = torch.multiprocessing.get_context("spawn")
        self.processes = [context.Process(target=target, args=(rank, world, self.port, backend, threads),
                                          name=f"training-rank-{rank}", daemon=True) for rank in range(1, world)]
        for process in self.processes:
            process.start()

    def join(self) -> None:
        """Rank 0 into the group (the others wait for it there)."""
        self.raise_if_one_ended()
        dist.init_process_group(self.backend, init_method=f"tcp://{ADDRESS}:{self.port}", rank=0,
                                world_size=self.world, timeout=WAIT)

    def ended(self) -> list[tuple[int, int]]:
        """(rank, exit code) of the ranks that ended with an error."""
        return [(rank, p.exitcode) for rank, p in enumerate(self.processes, start=1)
                if p.exitcode not in (None, 0)]

    def raise_if_one_ended(self) -> None:
        for rank, code in self.ended():
            raise RuntimeError(f"training process {rank} of {self.world} ended with exit code {code} "
                               "(its error is in the log)")

    def close(self, finished: bool) -> None:
        """Wait for the others when the run finished cleanly (they were sent ``STOP``), else end them."""
        for process in self.processes:
            process.join(timeout=60 if finished else 1)
        for process in self.processes:
            if process.is_alive():
                process.terminate()
                process.join(timeout=10)
        if dist.is_initialized():
            dist.destroy_process_group()


class LaunchedRanks(RankProcesses):
    """The other ranks when torchrun or ``accelerate launch`` started them (they are running)."""

    def __init__(self, world: int, backend: str):   # noqa: super().__init__ would start processes
        self.world, self.backend, self.processes = world, backend, []

    def join(self) -> None:
        if not dist.is_initialized():
            dist.init_process_group(self.backend, init_method="env://", rank=0, world_size=self.world, timeout=WAIT)
