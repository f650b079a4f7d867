"""The LoRA DPO training loop.

``train(ws, config, observer, control)`` runs one training run to its end and returns its id:
labelled pairs from the workspace -> tokens -> reference log-probs (cached in the workspace)
-> optimizer steps, each one policy forward + backward over chosen and rejected together.
Metrics go to the workspace's ``metrics`` table and to the observer; checkpoints and the final
adapter go to ``<workspace>/runs/<run-id>/``. ``train(..., resume_run_id=...)`` continues a
stopped or crashed run from its newest checkpoint and ends where an uninterrupted run would.

The run reports typed events to its observer (``core.engine.training_control``: phases,
step metrics, checkpoints, and ``RunFinished`` last). A failed run (non-finite loss, out of
memory, bad data, a crash) is marked ``failed`` with its reason, reported as
``RunFinished(FAILED, reason)`` and raised as ``TrainingFailed``.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch

from core.engine.batching import Batch, TokenizedPair, batch_order
from core.engine.checkpoints import latest_checkpoint, load_checkpoint, save_checkpoint
from core.engine.divergence import DivergenceWatch
from core.engine.dpo_loss import summarize
from core.engine.evaluation import evaluate_pairs
from core.engine.heap import default_heap, return_freed_memory
from core.engine.logprobs import supports_packed_pairs
from core.engine.modeling import (LoadedModel, dtype_name, is_out_of_memory, model_fingerprint, out_of_memory_advice,
                                  select_device, tokenization_fingerprint)
from core.engine.objective import batch_objective
from core.engine.prepared_inputs import PreparedInputs, prepared_reference
from core.engine.pair_packing import PackedBatch, collate_pairs
from core.engine.resume_changes import apply_resume_changes
from core.engine.reference_cache import ReferenceTable, ensure_reference_logps
from core.engine.run_records import create_run, new_run_id, write_run_config
from core.engine.run_start import (RunData, StartPoint, format_dropped, load_start_model, reference_key, resolve_start,
                                   tokenize_run_data, training_examples)
from core.engine.schedules import make_scheduler
from core.engine.start_evaluation import metrics_at_start
from core.engine.token_cache import cached_tokenizer
from core.engine.training_config import ConfigError, TrainingConfig
from core.engine.training_control import (CheckpointSaved, MetricSplit, Phase, PhaseChanged, ReferencePassDone,
                                          Resumed, RunFinished, RunInfo, RunStarted, StepMetrics, TrainingControl,
                                          TrainingEvent, TrainingObserver, planned_steps, resume_refusal,
                                          steps_per_epoch)
from storage.errors import error_text
from storage.metrics import MetricWriter, forget_metrics_after
from storage.models import RunStatus, utcnow
from storage.runs import get_run, update_run
from storage.workspace import Workspace

__all__ = ["train", "DPOTrainingRun", "TrainingObserver", "TrainingControl", "RunInfo", "TrainingFailed",
           "METRIC_NAMES", "TrainingConfig"]

#: Reported at every train step and every evaluation (evaluation has no learning_rate,
#: grad_norm or tokens_per_second). Extra names: logps/ref_chosen, logps/ref_rejected, and
#: loss/sft when the SFT term is on.
METRIC_NAMES = ("loss", "rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies",
                "logps/chosen", "logps/rejected", "prob/chosen", "prob/rejected", "prob/ref_chosen",
                "prob/ref_rejected", "prob/preference", "learning_rate", "grad_norm", "tokens_per_second",
                "likelihood_displacement")


class TrainingFailed(RuntimeError):
    def __init__(self, run_id: str | None, message: str):
        self.run_id = run_id
        super().__init__(message)


class _StoppedBeforeTraining(Exception):
    """A stop request arrived before the first training step."""


class NonFiniteLoss(RuntimeError):
    pass


class DPOTrainingRun:
    """One run (new or resumed). ``run()`` does the work on the calling thread."""

    def __init__(self, ws: Workspace, config: TrainingConfig | None, observer: TrainingObserver | None = None,
                 control: TrainingControl | None = None, resume_run_id: str | None = None,
                 resume_changes: list[str] | dict | None = None):
        self.ws = ws
        self.observer = observer or TrainingObserver()
        self.control = control or TrainingControl()
        self.resume_run_id, self._phase = resume_run_id, None
        if resume_run_id is not None:
            run = get_run(ws, resume_run_id)
            refusal = resume_refusal(resume_run_id, run)
            if refusal is not None:
                raise TrainingFailed(resume_run_id, refusal)
            # The run's own settings, not the caller's: resuming must reproduce the original run.
            # Only the length, the intervals and the learning rate may change (resume_changes).
            config, self.resume_changes = apply_resume_changes(TrainingConfig.from_dict(run.config), resume_changes)
            if self.resume_changes:
                update_run(ws, resume_run_id, config_json=config.to_json())
            self.run_id = resume_run_id
            self.run_dir = Path(run.run_dir)
        else:
            if config is None:
                raise ConfigError("config", "no training config given")
            self.run_id = new_run_id()
            self.run_dir = ws.runs_dir / self.run_id
        self.config = config.validate()
        self.status = RunStatus.PENDING
        self._watch = DivergenceWatch()
        self._run_created = resume_run_id is not None
        self._start = StartPoint()
        # The launch checks' TrainingSet and the PreparedInputs read ahead, when train() is handed them
        self.prebuilt_set, self.prepared = None, None

    # -- public -----------------------------------------------------------------------------
    def run(self) -> str:
        try:
            self._run()
        except _StoppedBeforeTraining:
            # Stopped during the reference pass: nothing trained yet, so nothing failed. The
            # reference values computed so far are cached; resuming starts again at step 0.
            self.status = RunStatus.STOPPED
            update_run(self.ws, self.run_id, status=RunStatus.STOPPED, finished_at=utcnow())
            self._emit(RunFinished(self.run_id, RunStatus.STOPPED))
        except Exception as exc:  # noqa: BLE001 - every failure is recorded on the run, then re-raised
            message = self._failure_message(exc)
            run_id = self.run_id if self._run_created else None
            if self._run_created:
                update_run(self.ws, self.run_id, status=RunStatus.FAILED, error=message, finished_at=utcnow())
            self._emit(RunFinished(run_id, RunStatus.FAILED, message))
            raise TrainingFailed(run_id, message) from exc
        finally:
            default_heap()
        return self.run_id

    def _emit(self, event: TrainingEvent) -> None:
        self.observer.on_event(event)

    def _enter(self, phase: Phase, **details: int) -> None:
        """Report a phase change (and, with ``details``, progress within a phase)."""
        if phase != self._phase or details:
            self._phase = phase
            self._emit(PhaseChanged(phase, **details))

    # -- stages -----------------------------------------------------------------------------
    def _run(self) -> None:
        config = self.config
        torch.manual_seed(config.seed)
        # Checkpointing on the CPU: freed blocks go back to the system at once (core.engine.heap)
        return_freed_memory(keep_returning=config.gradient_checkpointing and select_device(config.device).type == "cpu")
        self._enter(Phase.LOADING_DATA)
        self._start, config = resolve_start(self.ws, config)   # a later round: core.engine.run_start
        self.config = config
        training_set = training_examples(self.ws, config, self._start, self.prebuilt_set)
        if not training_set.examples:
            raise ValueError("the workspace has no labelled pairs to train on "
                             f"(left out: {format_dropped(training_set.dropped)})")
        self._enter(Phase.LOADING_MODEL)
        loaded = load_start_model(config, self._start)
        token_key = tokenization_fingerprint(loaded.tokenizer, config.max_length, config.truncation_mode)
        data = tokenize_run_data(loaded.tokenizer, training_set, config, cached_tokenizer(   # the workspace's cache
            self.ws, token_key, lambda done, total: self._enter(Phase.LOADING_MODEL, done=done, total=total),
            prepared=self.prepared))
        per_epoch = steps_per_epoch(len(data.train), config.batch_size * config.processes,
                                    config.gradient_accumulation_steps)
        total_steps = planned_steps(config.max_steps, config.num_epochs, per_epoch)
        model_key = reference_key(model_fingerprint(config.base_model, loaded.dtype, loaded.quantization), self._start)
        if self.resume_run_id is None:
            create_run(self.ws, self.run_id, config, self.run_dir, total_steps, self._start, data.train,
                       training_set.verdict_ids)   # the set's own verdicts: not read again
            self._run_created = True
            write_run_config(self.run_dir, config, {
                "run_id": self.run_id, "model_key": model_key, "tokenization_key": token_key,
                "data": {"train_pairs": len(data.train), "eval_pairs": len(data.eval), "dropped": data.dropped},
                "total_steps": total_steps})
        else:
            update_run(self.ws, self.run_id, status=RunStatus.RUNNING, error=None, finished_at=None,
                       total_steps=total_steps)   # max_steps / num_epochs may have changed
        self.status = RunStatus.RUNNING
        reference = self._reference(loaded, data, model_key, token_key)
        model = loaded.model
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
        scheduler = make_scheduler(optimizer, config, total_steps)
        start_step = 0
        if self.resume_run_id is not None:
            start_step = self._restore(model, optimizer, scheduler)
        trainable, total = loaded.parameter_counts()
        self._emit(RunStarted(RunInfo(
            run_id=self.run_id, run_dir=str(self.run_dir), total_steps=total_steps, start_step=start_step,
            train_pairs=len(data.train), eval_pairs=len(data.eval), dropped=data.dropped,
            device=str(loaded.device), dtype=dtype_name(loaded.dtype),
            trainable_parameters=trainable, total_parameters=total, run_name=config.run_name or self.run_id,
            steps_per_epoch=per_epoch, length_from_max_steps=config.max_steps > 0)))
        writer = MetricWriter(self.ws, self.run_id)
        try:
            self._loop(loaded, data, reference, optimizer, scheduler, params, start_step, total_steps, writer)
        finally:
            writer.flush()

    def _reference(self, loaded: LoadedModel, data: RunData, model_key: str, token_key: str) -> ReferenceTable:
        started = time.perf_counter()

        def progress(done: int, total: int) -> None:
            self._enter(Phase.REFERENCE_PASS, done=done, total=total)

        reference, computed = ensure_reference_logps(
            self.ws, loaded.model, data.train + data.eval, model_key, token_key, loaded.tokenizer.pad_token_id,
            self.config.reference_batch_size, loaded.device, progress, lambda: self.control.stop_requested,
            self.config.packed_pairs, adapter_enabled=self._start.from_adapter,
            known=prepared_reference(self.prepared, model_key, token_key))
        if self.control.stop_requested:
            raise _StoppedBeforeTraining()
        return_freed_memory()     # the pass's freed activations, before the steps allocate theirs
        unique = len({p.example_hash for p in data.train + data.eval})
        self._emit(ReferencePassDone(cached=unique - computed, computed=computed,
                                     seconds=time.perf_counter() - started))
        return reference

    def _restore(self, model, optimizer, scheduler) -> int:
        checkpoint = latest_checkpoint(self.run_dir)
        if checkpoint is None:
            # Stopped or crashed before its first checkpoint: the adapter and optimizer are
            # freshly initialised from the same seed, so starting over reproduces the run.
            forget_metrics_after(self.ws, self.run_id, -1)
            self._emit(Resumed(self.run_id, from_step=0, checkpoint=None))
            return 0
        state = load_checkpoint(checkpoint, model, optimizer, scheduler, self.config.learning_rate)
        step = int(state["step"])
        forget_metrics_after(self.ws, self.run_id, step)
        self._emit(Resumed(self.run_id, from_step=step, checkpoint=checkpoint.name))
        return step

    # -- the loop -----------------------------------------------------------------------------
    def _micro_batches(self, pairs: list[TokenizedPair], step: int, pad_token_id: int) -> list[Batch | PackedBatch]:
        """The micro-batches of optimizer step ``step`` (0-based): a pure function of the seed, so
        a resumed run sees the same data order. Epochs run back to back."""
        config = self.config
        per_epoch = math.ceil(len(pairs) / config.batch_size)
        lengths = [p.length for p in pairs]
        batches = []
        for micro in range(step * config.gradient_accumulation_steps,
                           (step + 1) * config.gradient_accumulation_steps):
            epoch, index = divmod(micro, per_epoch)
            if epoch not in self._order_cache:
                self._order_cache = {epoch: batch_order(lengths, config.batch_size, config.seed, epoch,
                                                        config.length_grouping)}
            batches.append(collate_pairs([pairs[i] for i in self._order_cache[epoch][index]], pad_token_id,
                                         self._packed))
        return batches

    def _loop(self, loaded: LoadedModel, data: RunData, reference: ReferenceTable, optimizer, scheduler,
              params: list[torch.nn.Parameter], start_step: int, total_steps: int, writer: MetricWriter) -> None:
        config, model, device, pad = self.config, loaded.model, loaded.device, loaded.tokenizer.pad_token_id
        self._order_cache: dict[int, list[list[int]]] = {}
        self._packed = config.packed_pairs and supports_packed_pairs(model)
        model.train()
        if start_step == 0 and data.eval:
            self._evaluate(loaded, data, reference, 0, writer)
        step = start_step
        last_saved, last_eval = (start_step if start_step > 0 else None), start_step
        while step < total_steps:
            if self.control.paused:
                self._pause(step)
            if self.control.stop_requested:
                break
            self._enter(Phase.TRAINING)
            try:
                metrics = self._train_step(model, self._micro_batches(data.train, step, pad), reference,
                                           optimizer, scheduler, params, device)
            except NonFiniteLoss as exc:
                raise NonFiniteLoss(f"{exc} at step {step + 1}: stopped without applying the update"
                                    f"{self._watch.advice(self.run_dir, self.run_id, step + 1, config.learning_rate)}") from None
            step += 1
            self._watch.step(step, metrics["grad_norm"])
            writer.add(step, MetricSplit.TRAIN.value, metrics)
            self._emit(StepMetrics(step, MetricSplit.TRAIN, metrics))
            if config.eval_interval and step % config.eval_interval == 0 and data.eval:
                self._evaluate(loaded, data, reference, step, writer)
                last_eval = step
            if config.checkpoint_interval and step % config.checkpoint_interval == 0:
                self._checkpoint(model, optimizer, scheduler, step, metrics, writer)
                last_saved = step
        stopped = step < total_steps
        if data.eval and last_eval != step:
            self._evaluate(loaded, data, reference, step, writer)
        if last_saved != step:
            self._checkpoint(model, optimizer, scheduler, step, {}, writer)
        self._enter(Phase.SAVING, step=step)
        adapter_dir = self.run_dir / "adapter"
        model.save_pretrained(adapter_dir, safe_serialization=True)
        loaded.tokenizer.save_pretrained(adapter_dir)
        self.status = RunStatus.STOPPED if stopped else RunStatus.COMPLETED
        writer.flush()
        update_run(self.ws, self.run_id, status=self.status, step=step, adapter_path=str(adapter_dir),
                   finished_at=utcnow())
        self._emit(RunFinished(self.run_id, self.status))

    def _train_step(self, model, micro_batches: list[Batch | PackedBatch], reference: ReferenceTable, optimizer,
                    scheduler, params, device: torch.device) -> dict[str, float]:
        config = self.config
        started = time.perf_counter()
        learning_rate = scheduler.get_last_lr()[0]
        step_pairs = sum(b.num_pairs for b in micro_batches)
        per_pair: dict[str, list[torch.Tensor]] = {}
        loss_total, nll_total, tokens = 0.0, 0.0, 0
        for batch in micro_batches:
            batch = batch.to(device)
            result = batch_objective(model, batch, reference, config, device)
            share = batch.num_pairs / step_pairs   # so the step's gradient is the mean over all its pairs
            (result.loss * share).backward()
            loss_total += float(result.loss.detach()) * share
            if result.sft is not None:
                nll_total += float(result.sft) * share
            tokens += batch.real_tokens()
            for name, values in result.metrics.items():
                per_pair.setdefault(name, []).append(values.cpu())
        grad_norm = apply_update(loss_total, params, optimizer, scheduler, config.max_grad_norm)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        elapsed = time.perf_counter() - started
        metrics = summarize({name: torch.cat(chunks) for name, chunks in per_pair.items()})
        metrics.update({"loss": loss_total, "learning_rate": learning_rate, "grad_norm": grad_norm,
                        "tokens_per_second": tokens / max(elapsed, 1e-9)})
        if config.sft_weight > 0:
            metrics["loss/sft"] = nll_total
        return metrics

    def _evaluate(self, loaded: LoadedModel, data: RunData, reference: ReferenceTable, step: int,
                  writer: MetricWriter) -> None:
        self._enter(Phase.EVALUATING, step=step)
        # At step 0 the policy is its reference: no forward pass (core.engine.start_evaluation).
        metrics = metrics_at_start(data.eval, reference, self.config) if step == 0 else evaluate_pairs(
            loaded.model, data.eval, reference, self.config, loaded.tokenizer.pad_token_id, loaded.device)
        writer.add(step, MetricSplit.EVAL.value, metrics)
        writer.flush()
        self._emit(StepMetrics(step, MetricSplit.EVAL, metrics))

    def _checkpoint(self, model, optimizer, scheduler, step: int, metrics: dict[str, float],
                    writer: MetricWriter) -> None:
        self._enter(Phase.SAVING, step=step)
        writer.flush()  # metrics up to a checkpoint are on disk before the checkpoint is
        path = save_checkpoint(self.run_dir, step, model, optimizer, scheduler,
                               {"run_id": self.run_id, "metrics": metrics}, keep=self.config.keep_checkpoints,
                               last_good=lambda found: self._watch.last_good(step + 1, found))
        self._watch.checkpoint(step, path)
        self._emit(CheckpointSaved(step, str(path)))

    def _pause(self, step: int) -> None:
        update_run(self.ws, self.run_id, status=RunStatus.PAUSED)
        self._enter(Phase.PAUSED, step=step)
        while not self.control.wait_while_paused(timeout=0.5):
            continue
        # Back to running (or on to stopping); the loop reports TRAINING before its next step.
        update_run(self.ws, self.run_id, status=RunStatus.RUNNING)

    # -- messages -------------------------------------------------------------------------------
    def _failure_message(self, exc: Exception) -> str:
        if is_out_of_memory(exc):
            return out_of_memory_advice(self.config)
        if isinstance(exc, TrainingFailed):
            return str(exc)
        return error_text(exc)   # a database error: the driver's one line, not the statement


def apply_update(loss_total: float, params, optimizer, scheduler, max_grad_norm: float,
                 before_clip=lambda: None) -> float:
    """Clip the step's gradients and step the optimizer and schedule; the gradient norm. A
    non-finite loss or norm applies nothing (``NonFiniteLoss``). ``before_clip``: a data-parallel
    run sums the ranks' gradients there."""
    if not math.isfinite(loss_total):
        optimizer.zero_grad(set_to_none=True)
        raise NonFiniteLoss(f"the loss became {loss_total}")
    before_clip()
    grad_norm = float(torch.nn.utils.clip_grad_norm_(params, max_grad_norm if max_grad_norm > 0 else math.inf))
    if not math.isfinite(grad_norm):
        optimizer.zero_grad(set_to_none=True)
        raise NonFiniteLoss(f"the gradient norm became {grad_norm}")
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return grad_norm


def train(ws: Workspace, config: TrainingConfig | None, observer: TrainingObserver | None = None,
          control: TrainingControl | None = None, resume_run_id: str | None = None,
          resume_changes: list[str] | dict | None = None, training_set=None,
          prepared: PreparedInputs | None = None) -> str:
    """Run (or resume, with ``resume_changes``: ``core.engine.resume_changes``) a DPO training
    run to its end on this thread; return its run id. ``training_set``: the one the launch checks
    just built (``storage.training_set.TrainingSet``), so it is not read again; ``prepared``: cached
    tokens and reference values read before Start (``core.engine.prepared_inputs``)."""
    run = DPOTrainingRun(ws, config, observer, control, resume_run_id, resume_changes)
    run.prebuilt_set, run.prepared = training_set, prepared
    if run.config.processes > 1:   # data parallel, this process rank 0: core.engine.distributed
        from core.engine.distributed import DataParallelRun

        run = DataParallelRun.taking_over(run)
    return run.run()
