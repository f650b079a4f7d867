"""Data-parallel training over several processes (``TrainingConfig.processes`` > 1).

The process that calls ``core.engine.trainer.train`` is rank 0: it alone reads and writes the
workspace (the run row, metrics, the reference cache), the run folder (config, checkpoints, the
adapter) and reports events. It starts ``processes - 1`` more processes (``torch.multiprocessing``,
spawn), one per GPU with NCCL — rank r on ``cuda:r`` — or on the CPU with gloo; they only compute.
Rank 0 loads the data, computes the reference log-probs and, before the first step, hands every
rank the same setup (config, tokenised training pairs, reference values, the checkpoint a resumed
run restores, which each rank loads itself: adapter, optimizer, scheduler, RNG), then the adapter's
weights, so all ranks start from the same state.

Each optimizer step:

- rank 0 broadcasts the step's number (or ``STOP``), so a pause or a stop reaches every rank at
  the same step (a paused rank 0 holds the others at that broadcast);
- the global micro-batch is ``batching.batch_order`` at ``batch_size × processes``, the order a
  single process with that batch size sees; rank r takes its r-th slice of ``batch_size`` pairs;
- each rank back-propagates its share of the step's loss: its pairs' losses over all the step's
  pairs, and the SFT term weighted by its chosen tokens over the micro-batch's (the single
  process's token mean); the gradients are summed (all-reduce), so every rank holds the
  single-process gradient, clips the same norm and takes the same optimizer step;
- the losses, token counts and per-pair metrics are gathered, so rank 0 logs the means over the
  global batch with the single-process definitions (``dpo_loss.summarize``).

Launched by ``torchrun --nproc-per-node N main.py train …`` or ``accelerate launch --num-processes N
main.py train …`` instead (``RANK``/``WORLD_SIZE`` in the environment), each rank is one of those
processes: ``main.py train`` on rank 0 trains as above without starting any, the others run
``follow_rank_zero`` (no workspace opened); NCCL when the computer has CUDA, else gloo.

So the loss curve is that of one process with the global batch size (to float rounding), without
adapter dropout; with dropout each rank draws its own masks, seeded by (seed, step, rank), so a
resumed run still ends where an uninterrupted one does.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.distributed as dist

from core.engine.batching import Batch, TokenizedPair, batch_order
from core.engine.checkpoints import latest_checkpoint, load_checkpoint
from core.engine.dpo_loss import summarize
from core.engine.logprobs import supports_packed_pairs
from core.engine.modeling import select_device
from core.engine.objective import batch_objective
from core.engine.pair_packing import PackedBatch, collate_pairs
from core.engine.rank_processes import (ADDRESS, WAIT, LaunchedRanks, RankProcesses, launched_backend, launcher_rank,
                                        local_gpu)
from core.engine.reference_cache import ReferenceTable
from core.engine.run_start import StartPoint, load_start_model
from core.engine.schedules import make_scheduler
from core.engine.trainer import DPOTrainingRun, NonFiniteLoss, apply_update
from core.engine.training_config import TrainingConfig
from core.engine.training_control import RunStarted, TrainingEvent

STOP = -1

#: A rank's micro-batch (None when its slice of the global micro-batch is empty) and the global
#: micro-batch's number of pairs.
RankMicroBatch = tuple[Batch | PackedBatch | None, int]


@dataclass
class RankSetup:
    """What rank 0 hands the other ranks before the first step."""

    config: dict
    start: StartPoint
    train: list[TokenizedPair]
    reference: ReferenceTable
    total_steps: int
    checkpoint: str | None     # the checkpoint a resumed run restores


def backend_for(config: TrainingConfig) -> str:
    """``nccl`` when the run trains on CUDA GPUs, else ``gloo``; ``ValueError`` when there are
    fewer GPUs than processes."""
    device = select_device(config.device)
    if device.type != "cuda":
        return "gloo"
    if torch.cuda.device_count() < config.processes:
        raise ValueError(f"processes={config.processes} needs as many CUDA GPUs; this computer has "
                         f"{torch.cuda.device_count()}")
    return "nccl"


class RankSteps:
    """One optimizer step as every rank does it (rank 0 in ``DataParallelRun``, the others in
    ``_rank_main``): the same collectives in the same order on every rank."""

    def __init__(self, config: TrainingConfig, model, rank: int, world: int, device: torch.device):
        self.config, self.rank, self.world = config, rank, world
        self.packed = config.packed_pairs and supports_packed_pairs(model)
        self.device = device
        self.step = 0
        self._order: dict[int, list[list[int]]] = {}

    def _tensor(self, values, dtype=torch.float64) -> torch.Tensor:
        # NCCL reduces CUDA tensors only; gloo takes CPU ones.
        return torch.tensor(values, dtype=dtype, device=self.device if self.device.type == "cuda" else "cpu")

    def broadcast_step(self, step: int) -> int:
        """Rank 0's step number (or ``STOP``), on every rank."""
        value = self._tensor([step], torch.long)
        dist.broadcast(value, src=0)
        return int(value.item())

    def micro_batches(self, pairs: list[TokenizedPair], step: int, pad_token_id: int) -> list[RankMicroBatch]:
        """This rank's slice of each micro-batch of step ``step``: a pure function of the seed
        and the step, as ``DPOTrainingRun._micro_batches`` is, at the global batch size."""
        config = self.config
        self.step = step
        size = config.batch_size * self.world
        per_epoch = math.ceil(len(pairs) / size)
        found = []
        for micro in range(step * config.gradient_accumulation_steps, (step + 1) * config.gradient_accumulation_steps):
            epoch, index = divmod(micro, per_epoch)
            if epoch not in self._order:
                self._order = {epoch: batch_order([p.length for p in pairs], size, config.seed, epoch,
                                                  config.length_grouping)}
            members = self._order[epoch][index]
            mine = members[self.rank * config.batch_size:(self.rank + 1) * config.batch_size]
            found.append((collate_pairs([pairs[i] for i in mine], pad_token_id, self.packed) if mine else None,
                          len(members)))
        return found

    def train_step(self, model, micro_batches: list[RankMicroBatch], reference: ReferenceTable, optimizer,
                   scheduler, params: list[torch.nn.Parameter], device: torch.device) -> dict[str, float] | None:
        """Forward and backward this rank's pairs, sum the gradients over ranks, step; the step's
        metrics over the global batch on rank 0 (None on the others)."""
        config = self.config
        started = time.perf_counter()
        learning_rate = scheduler.get_last_lr()[0]
        step_pairs = sum(size for _, size in micro_batches)
        sft = config.sft_weight > 0
        micro_tokens = self._chosen_tokens(micro_batches) if sft else None
        torch.manual_seed(hash((config.seed, self.step, self.rank)) % 2**62)   # adapter dropout: own masks per rank
        per_pair: dict[str, list[torch.Tensor]] = {}
        totals = [0.0, 0.0, 0.0]           # this rank's share of: the loss, the SFT NLL, the tokens
        for index, (batch, size) in enumerate(micro_batches):
            if batch is None:
                continue
            batch = batch.to(device)
            result = batch_objective(model, batch, reference, config, device)
            share = batch.num_pairs / step_pairs          # its pairs' losses over all the step's pairs
            loss = result.loss * share
            if sft:
                # The single process weights a micro-batch's NLL by its tokens: this rank's tokens
                # of the micro-batch's, times the micro-batch's share of the step.
                mine = float(batch.loss_mask[: batch.num_pairs].sum())
                token_share = size / step_pairs * mine / max(micro_tokens[index], 1.0)
                loss = loss + config.sft_weight * result.sft_term * (token_share - share)
                totals[1] += float(result.sft) * token_share
            loss.backward()
            totals[0] += float(loss.detach())
            totals[2] += batch.real_tokens()
            for name, values in result.metrics.items():
                per_pair.setdefault(name, []).append(values.cpu())
        summed = self._tensor(totals)
        dist.all_reduce(summed)
        loss_total, nll_total, tokens = (float(x) for x in summed.cpu())
        # The same sums on every rank: all step, or all stop at a non-finite loss, together.
        grad_norm = apply_update(loss_total, params, optimizer, scheduler, config.max_grad_norm,
                                 lambda: self._sum_gradients(params))
        gathered: list[dict[str, list[torch.Tensor]] | None] = [None] * self.world
        dist.all_gather_object(gathered, per_pair)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if self.rank != 0:
            return None
        elapsed = time.perf_counter() - started
        merged = {name: torch.cat([chunk for part in gathered for chunk in part.get(name, [])])
                  for name in next(part for part in gathered if part)}
        metrics = summarize(merged)
        metrics.update({"loss": loss_total, "learning_rate": learning_rate, "grad_norm": grad_norm,
                        "tokens_per_second": tokens / max(elapsed, 1e-9)})
        if sft:
            metrics["loss/sft"] = nll_total
        return metrics

    def _chosen_tokens(self, micro_batches: list[RankMicroBatch]) -> list[float]:
        """Each global micro-batch's chosen completion tokens (the SFT term's denominator)."""
        local = [float(b.loss_mask[: b.num_pairs].sum()) if b is not None else 0.0 for b, _ in micro_batches]
        summed = self._tensor(local)
        dist.all_reduce(summed)
        return [float(x) for x in summed.cpu()]

    def _sum_gradients(self, params: list[torch.nn.Parameter]) -> None:
        """Every rank's loss already carries its share of the step: the sum is the step's gradient."""
        flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1).float()
                          for p in params])
        dist.all_reduce(flat)
        offset = 0
        for p in params:
            p.grad = flat[offset:offset + p.numel()].view_as(p).to(p.dtype)
            offset += p.numel()


def broadcast_weights(params: list[torch.nn.Parameter]) -> None:
    """Rank 0's adapter weights on every rank."""
    with torch.no_grad():
        for p in params:
            dist.broadcast(p.data, src=0)


class DataParallelRun(DPOTrainingRun):
    """``DPOTrainingRun`` as rank 0 of ``config.processes`` (see the module docstring)."""

    @classmethod
    def taking_over(cls, run: DPOTrainingRun) -> "DataParallelRun":
        """The same run (already constructed: its config resolved, a resume checked), data parallel."""
        parallel = cls.__new__(cls)
        parallel.__dict__.update(run.__dict__)
        parallel._ranks, parallel._steps, parallel._sent_stop, parallel._set_up = None, None, False, False
        return parallel

    def run(self) -> str:
        threads = torch.get_num_threads()
        try:
            return super().run()
        finally:
            if self._ranks is not None:
                if isinstance(self._ranks, LaunchedRanks) and dist.is_initialized() and not self._set_up:
                    dist.broadcast_object_list([None], src=0)   # ended before training: they end too
                self._ranks.close(finished=self._sent_stop)
            torch.set_num_threads(threads)

    def _run(self) -> None:
        launched = launcher_rank()[1]
        if launched > 1:
            self._join_launched(launched)
            super()._run()
            return
        backend = backend_for(self.config)
        threads = torch.get_num_threads()
        if backend == "nccl":
            torch.cuda.set_device(0)
        else:   # the CPU's cores shared out between the ranks
            threads = max(1, threads // self.config.processes)
            torch.set_num_threads(threads)
        self._ranks = RankProcesses(self.config.processes, backend, threads, _rank_main)
        super()._run()

    def _join_launched(self, world: int) -> None:
        if world != self.config.processes:
            raise ValueError(f"the run trains in {self.config.processes} processes, but {world} were launched")
        backend = launched_backend()
        if backend == "nccl":
            if select_device(self.config.device).type != "cuda":
                raise ValueError("launched on a computer with CUDA GPUs: train on device cuda (or auto)")
            torch.cuda.set_device(local_gpu(0))
        self._ranks = LaunchedRanks(world, backend)
        self._ranks.join()

    def _loop(self, loaded, data, reference, optimizer, scheduler, params, start_step, total_steps, writer) -> None:
        self._ranks.join()
        checkpoint = latest_checkpoint(self.run_dir) if start_step > 0 else None
        setup = RankSetup(self.config.to_dict(), self._start, data.train,
                          {p.example_hash: reference[p.example_hash] for p in data.train}, total_steps,
                          None if checkpoint is None else str(checkpoint))
        dist.broadcast_object_list([setup], src=0)
        self._set_up = True
        broadcast_weights(params)
        self._steps = RankSteps(self.config, loaded.model, 0, self.config.processes, loaded.device)
        super()._loop(loaded, data, reference, optimizer, scheduler, params, start_step, total_steps, writer)
        self._steps.broadcast_step(STOP)
        self._sent_stop = True

    def _emit(self, event: TrainingEvent) -> None:
        if isinstance(event, RunStarted):   # where it trains: "2 × cuda", one process each
            event = RunStarted(replace(event.info, device=f"{self.config.processes} × {event.info.device}"))
        super()._emit(event)

    def _micro_batches(self, pairs, step, pad_token_id):
        self._steps.broadcast_step(step)
        return self._steps.micro_batches(pairs, step, pad_token_id)

    def _train_step(self, model, micro_batches, reference, optimizer, scheduler, params, device):
        return self._steps.train_step(model, micro_batches, reference, optimizer, scheduler, params, device)

    def _failure_message(self, exc: Exception) -> str:
        ended = self._ranks.ended() if self._ranks is not None else []
        if ended:
            rank, code = ended[0]
            return (f"training process {rank} of {self.config.processes} ended with exit code {code} "
                    f"(its error is in the log): {super()._failure_message(exc)}")
        return super()._failure_message(exc)


def follow_rank_zero() -> int:
    """A rank other than 0 started by torchrun or ``accelerate launch`` (``main.py train`` calls it):
    compute what rank 0 names; 0 when it ends."""
    rank, world = launcher_rank()
    _rank_main(rank, world, None, launched_backend(), torch.get_num_threads())
    return 0


def _rank_main(rank: int, world: int, port: int | None, backend: str, threads: int) -> None:
    """Ranks 1..N-1: take rank 0's setup, then compute the steps it names until ``STOP``.
    ``port`` None: the launcher's environment says where rank 0 is (``env://``)."""
    torch.set_num_threads(threads)
    if backend == "nccl":
        torch.cuda.set_device(local_gpu(rank))
    address = "env://" if port is None else f"tcp://{ADDRESS}:{port}"
    dist.init_process_group(backend, init_method=address, rank=rank, world_size=world, timeout=WAIT)
    try:
        received: list[RankSetup | None] = [None]
        dist.broadcast_object_list(received, src=0)
        setup = received[0]
        if setup is None:   # rank 0 ended before training (stopped, refused, failed)
            return
        config = TrainingConfig.from_dict(setup.config)
        torch.manual_seed(config.seed)
        loaded = load_start_model(config, setup.start)
        model = loaded.model
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
        scheduler = make_scheduler(optimizer, config, setup.total_steps)
        if setup.checkpoint is not None:
            load_checkpoint(Path(setup.checkpoint), model, optimizer, scheduler, config.learning_rate)
        broadcast_weights(params)
        steps = RankSteps(config, model, rank, world, loaded.device)
        model.train()
        pad = loaded.tokenizer.pad_token_id
        while (step := steps.broadcast_step(STOP)) != STOP:
            try:
                steps.train_step(model, steps.micro_batches(setup.train, step, pad), setup.reference, optimizer,
                                 scheduler, params, loaded.device)
            except NonFiniteLoss:   # rank 0 saw the same sum and reports it
                return
    finally:
        dist.destroy_process_group()
