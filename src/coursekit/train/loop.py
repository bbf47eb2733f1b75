"""``fit`` and ``evaluate``: the one training loop every chapter and lab uses.

One loop, several jobs, each switched by a keyword so a chapter reads ``fit(model, train,
test, epochs=3, optimizer=opt)`` and nothing more:

* metrics per epoch as plain data (:class:`~coursekit.train.History`), tqdm progress bars,
  optional live plot;
* any ``torch.optim`` optimizer and scheduler (stepped per epoch, or per batch for one-cycle
  and cyclic schedules), gradient clipping, callbacks such as early stopping;
* atomic checkpoints every N steps and at each epoch end; ``resume=True`` continues a killed
  run exactly where it stopped (same batches, same random numbers);
* the fast path: bf16 autocast, channels_last, ``torch.compile``, non-blocking copies;
* data parallelism under ``torchrun`` (see :mod:`coursekit.train.distributed`).
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.optim import lr_scheduler
from torch.utils.data import DataLoader, DistributedSampler
from tqdm.auto import tqdm

from coursekit.data import TensorLoader

from . import checkpoint as ckpt
from . import distributed
from .callbacks import Callback
from .fastpath import FastPath, resolve
from .history import History

CHECKPOINT_FORMAT = 1
BATCH_SCHEDULERS = (lr_scheduler.OneCycleLR, lr_scheduler.CyclicLR)
POSTFIX_EVERY = 25  # steps between progress-bar loss updates (each one syncs the GPU)


def evaluate(model: nn.Module, loader: Iterable, *, device: torch.device | str | None = None,
             loss_fn: Callable | None = None, topk: Sequence[int] = (), amp: str | None = "auto",
             channels_last: bool | None = None) -> dict[str, float]:
    """Mean loss, accuracy and optional top-k accuracies (``"top5"``) of ``model`` on ``loader``.

    Runs without gradients in eval mode and restores the model's mode afterwards. Under
    ``torchrun`` a ``TensorLoader`` is split among processes and the sums are combined.
    """
    loss_fn = loss_fn or F.cross_entropy
    device = _device(model, device)
    fast = resolve(device, model, amp, channels_last, False)
    loader, reduce = _eval_loader(loader, distributed.context())
    return _evaluate(model, loader, fast, loss_fn, _check_topk(topk), reduce)


def fit(model: nn.Module, train_loader: Iterable, val_loader: Iterable | None = None, *,
        epochs: int, optimizer: torch.optim.Optimizer,
        scheduler: lr_scheduler.LRScheduler | lr_scheduler.ReduceLROnPlateau | None = None,
        loss_fn: Callable | None = None, device: torch.device | str | None = None,
        progress: bool = True, scheduler_step: str = "auto", clip_grad_norm: float | None = None,
        callbacks: Sequence[Callback] = (), topk: Sequence[int] = (),
        checkpoint: str | Path | None = None, checkpoint_every: int | None = None,
        resume: bool = False, amp: str | None = "auto", channels_last: bool | None = None,
        compile: bool | dict[str, Any] = False, sync_batchnorm: bool = False,
        live_plot: bool = False) -> History:
    """Train ``model`` for ``epochs`` epochs and return its :class:`History`.

    ``train_loader``/``val_loader``: a :class:`~coursekit.data.TensorLoader` (the fast path)
    or a torch ``DataLoader``. ``loss_fn(logits, targets)`` returns the batch mean
    (default: cross-entropy). ``scheduler_step``: ``"epoch"``, ``"batch"`` or ``"auto"``
    (per batch for ``OneCycleLR``/``CyclicLR``; ``ReduceLROnPlateau`` gets the validation
    loss). ``clip_grad_norm`` clips the global gradient norm. ``topk=(5,)`` adds top-5
    validation accuracy.

    ``checkpoint``: file written atomically at each epoch end and every ``checkpoint_every``
    optimizer steps (model, optimizer, scheduler, callbacks, history, RNG states, epoch and
    step); with ``resume=True`` an existing file is loaded and training continues from it.

    ``amp`` (``"auto"``, ``"bf16"`` or ``None``), ``channels_last`` (``None``: automatic)
    and ``compile`` (``True`` or ``torch.compile`` options) form the fast path; ``"auto"`` and
    ``None`` switch them on for CUDA only. Under ``torchrun`` the model is wrapped in
    ``DistributedDataParallel`` (``sync_batchnorm=True`` converts BatchNorm layers).
    ``live_plot=True`` redraws loss and accuracy after every epoch in a notebook.
    """
    _check_args(epochs, scheduler_step, clip_grad_norm, checkpoint, checkpoint_every)
    net = _unwrap(model)
    _check_optimizer(net, optimizer)
    loss_fn = loss_fn or F.cross_entropy
    device = _device(net, device)
    ctx = distributed.context()
    fast = resolve(device, net, amp, channels_last, compile)
    topk = _check_topk(topk)
    net.to(device)
    if fast.channels_last:
        net.to(memory_format=torch.channels_last)
    if sync_batchnorm and ctx.distributed:
        if device.type != "cuda":
            raise ValueError("sync_batchnorm needs CUDA devices (PyTorch's SyncBatchNorm is GPU "
                             "only); on CPU processes drop it: each then normalises with the "
                             "statistics of its own share of the batch.")
        net = nn.SyncBatchNorm.convert_sync_batchnorm(net)
    user_callbacks = list(callbacks)
    all_callbacks = list(user_callbacks)
    if live_plot and ctx.is_main:
        from .live import LivePlot  # matplotlib only when asked for

        all_callbacks.append(LivePlot())
    train_loader = _train_loader(train_loader, ctx)
    val_loader, val_reduce = (_eval_loader(val_loader, ctx) if val_loader is not None
                              else (None, False))
    steps_per_epoch = len(train_loader) if hasattr(train_loader, "__len__") else None
    if steps_per_epoch == 0:
        raise ValueError("train_loader has no batches; check the dataset size and batch_size "
                         "(with drop_last=True a dataset smaller than one batch yields nothing).")

    run = _Run(net=net, optimizer=optimizer, scheduler=scheduler, callbacks=user_callbacks,
               ctx=ctx, fast=fast, steps_per_epoch=steps_per_epoch,
               path=Path(checkpoint) if checkpoint is not None else None)
    if run.path is not None and resume and run.path.exists():
        run.restore()

    forward_model: nn.Module = model  # the caller's object: maybe already compiled or DDP
    if ctx.distributed and not _wrapped_in_ddp(model):
        ids = [device.index] if device.type == "cuda" else None
        forward_model = DistributedDataParallel(net, device_ids=ids)
    if fast.compile is not None:
        forward_model = torch.compile(forward_model, **fast.compile)
    eval_model = net if ctx.distributed else forward_model

    per_batch = scheduler is not None and (
        scheduler_step == "batch"
        or (scheduler_step == "auto" and isinstance(scheduler, BATCH_SCHEDULERS)))
    sharded = isinstance(train_loader, distributed.ShardedLoader)
    show = progress and ctx.is_main
    epoch_bar = tqdm(total=epochs, initial=min(run.epoch, epochs), desc="fit", unit="epoch",
                     disable=not show)
    history = run.history
    while run.epoch < epochs and not run.stopped:
        epoch = run.epoch
        batches, sums, lr0, seconds_before = run.begin_epoch(train_loader, device)
        forward_model.train()
        start = time.perf_counter()
        bar = tqdm(batches, total=steps_per_epoch, initial=run.step_in_epoch, leave=False,
                   desc=f"epoch {epoch + 1}/{epochs}", disable=not show)
        classify = True
        for step_in_epoch, (x, y) in enumerate(bar, start=run.step_in_epoch):
            x, y = fast.batch(x, y)
            if lr0 is None:
                lr0 = optimizer.param_groups[0]["lr"]
            with fast.autocast():
                logits = forward_model(x)
                loss = loss_fn(logits, y)
            optimizer.zero_grad(set_to_none=True)
            if sharded and train_loader.global_batch_size != len(y) * ctx.world_size:
                # unequal shards: weight so that DDP's average equals the global-batch mean
                (loss * (len(y) * ctx.world_size / train_loader.global_batch_size)).backward()
            else:
                loss.backward()
            if clip_grad_norm is not None:
                nn.utils.clip_grad_norm_(net.parameters(), clip_grad_norm)
            optimizer.step()
            if per_batch:
                scheduler.step()
            run.global_step += 1
            with torch.no_grad():
                sums[0] += loss.detach() * len(y)
                sums[2] += len(y)
                classify = _is_classification(logits, y)
                if classify:
                    sums[1] += (logits.argmax(1) == y).sum()
            for callback in all_callbacks:
                callback.on_batch_end(run.global_step, loss)
            if show and step_in_epoch % POSTFIX_EVERY == 0:
                bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
            if (run.path is not None and checkpoint_every
                    and run.global_step % checkpoint_every == 0
                    and (steps_per_epoch is None or step_in_epoch + 1 < steps_per_epoch)):
                run.save(step_in_epoch=step_in_epoch + 1, sums=sums, lr0=lr0,
                         seconds=seconds_before + time.perf_counter() - start)
        bar.close()

        totals = distributed.all_reduce_sum(sums).tolist()
        if totals[2] == 0:
            raise ValueError("train_loader yielded no examples in this epoch.")
        history.epoch.append(epoch + 1)
        history.train_loss.append(totals[0] / totals[2])
        history.train_acc.append(totals[1] / totals[2] if classify else math.nan)
        history.lr.append(lr0)
        if val_loader is not None:
            metrics = _evaluate(eval_model, val_loader, fast, loss_fn, topk, val_reduce)
            history.val_loss.append(metrics["loss"])
            history.val_acc.append(metrics["acc"])
            for k in topk:
                history.val_topk.setdefault(k, []).append(metrics[f"top{k}"])
        if scheduler is not None and not per_batch:
            if isinstance(scheduler, lr_scheduler.ReduceLROnPlateau):
                scheduler.step(history.val_loss[-1] if history.val_loss else
                               history.train_loss[-1])
            else:
                scheduler.step()
        history.seconds.append(seconds_before + time.perf_counter() - start)
        for callback in all_callbacks:
            if callback.on_epoch_end(epoch + 1, history, net):
                run.stopped = True
        epoch_bar.set_postfix(_summary(history), refresh=False)
        epoch_bar.update(1)
        run.end_epoch()
    epoch_bar.close()
    for callback in all_callbacks:
        callback.on_fit_end(history, net)
    return history


class _Run:
    """Position in the run (epoch, step), and the checkpoint save/restore that goes with it."""

    def __init__(self, *, net, optimizer, scheduler, callbacks, ctx, fast, steps_per_epoch, path):
        self.net, self.optimizer, self.scheduler = net, optimizer, scheduler
        self.callbacks, self.ctx, self.fast = callbacks, ctx, fast
        self.steps_per_epoch, self.path = steps_per_epoch, path
        self.history = History()
        self.epoch = 0
        self.step_in_epoch = 0
        self.global_step = 0
        self.stopped = False
        self.epoch_rng: dict | None = None
        self._resume_rank_state: dict | None = None  # this rank's part of a mid-epoch checkpoint
        self._resume_partial: dict | None = None

    @property
    def acc_dtype(self) -> torch.dtype:
        return torch.float32 if self.fast.device.type == "mps" else torch.float64

    def begin_epoch(self, loader, device):
        """Start (or re-enter) the current epoch: ``(batch iterator, sums, lr0, seconds)``."""
        if self._resume_rank_state is not None and self.step_in_epoch > 0:
            rank_state, partial = self._resume_rank_state, self._resume_partial
            self._resume_rank_state = self._resume_partial = None
            self.epoch_rng = rank_state["epoch_rng"]
            ckpt.set_rng_state(self.epoch_rng)  # replay the epoch's start: same order, same draws
            _set_epoch(loader, self.epoch)
            batches = iter(loader)
            for _ in range(self.step_in_epoch):
                next(batches)
            ckpt.set_rng_state(rank_state["rng"])
            sums = rank_state["sums"].to(device=device, dtype=self.acc_dtype)
            return batches, sums, partial["lr0"], partial["seconds"]
        self.step_in_epoch = 0
        self.epoch_rng = ckpt.rng_state() if self.path is not None else None
        _set_epoch(loader, self.epoch)
        sums = torch.zeros(3, dtype=self.acc_dtype, device=device)
        return iter(loader), sums, None, 0.0

    def end_epoch(self) -> None:
        self.epoch += 1
        self.step_in_epoch = 0
        if self.path is not None:
            self.save(step_in_epoch=0)

    def save(self, *, step_in_epoch: int, sums: torch.Tensor | None = None,
             lr0: float | None = None, seconds: float = 0.0) -> None:
        """Write the checkpoint (rank 0 writes; every rank contributes its RNG state)."""
        mine = {"rng": ckpt.rng_state(),
                "epoch_rng": self.epoch_rng if step_in_epoch else None,
                "sums": sums.detach().cpu() if sums is not None else None}
        ranks = distributed.all_gather_object(mine)
        if not self.ctx.is_main:
            return
        state = {
            "format": CHECKPOINT_FORMAT,
            "model": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "callbacks": [(type(c).__name__, c.state_dict()) for c in _stateful(self.callbacks)],
            "history": self.history.as_dict(),
            "epoch": self.epoch,
            "step_in_epoch": step_in_epoch,
            "global_step": self.global_step,
            "stopped": self.stopped,
            "partial": {"lr0": lr0, "seconds": seconds},
            "steps_per_epoch": self.steps_per_epoch,
            "world_size": self.ctx.world_size,
            "ranks": ranks,
        }
        ckpt.save(state, self.path)

    def restore(self) -> None:
        state = ckpt.load(self.path)
        if state.get("format") != CHECKPOINT_FORMAT:
            raise ckpt.CheckpointError(f"{self.path} was not written by coursekit.train.fit "
                                       "(or by an incompatible version); delete it.")
        if state["step_in_epoch"] and state["steps_per_epoch"] != self.steps_per_epoch:
            raise ValueError(
                f"{self.path} was written with {state['steps_per_epoch']} batches per epoch, "
                f"this train_loader has {self.steps_per_epoch}. Resume with the same data and "
                "batch size, or pass resume=False to start again."
            )
        stateful = _stateful(self.callbacks)
        saved_names = [name for name, _ in state["callbacks"]]
        if saved_names != [type(c).__name__ for c in stateful]:
            raise ValueError(f"{self.path} holds the state of callbacks {saved_names}, but "
                             f"{[type(c).__name__ for c in stateful]} were passed; pass the same "
                             "stateful callbacks (e.g. EarlyStopping) to resume.")
        if (self.scheduler is None) != (state["scheduler"] is None):
            written = "with" if state["scheduler"] is not None else "without"
            raise ValueError(f"{self.path} was written {written} a scheduler; pass the same kind "
                             "of scheduler to resume.")
        self.net.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        for callback, (_, callback_state) in zip(stateful, state["callbacks"], strict=True):
            callback.load_state_dict(callback_state)
        self.history = History.from_dict(state["history"])
        self.epoch, self.step_in_epoch = state["epoch"], state["step_in_epoch"]
        self.global_step, self.stopped = state["global_step"], state["stopped"]
        ranks = state["ranks"]
        if len(ranks) != self.ctx.world_size:
            warnings.warn(f"{self.path} was written by {len(ranks)} processes and is resumed by "
                          f"{self.ctx.world_size}: training continues, but not bit for bit.",
                          stacklevel=3)
        rank_state = ranks[self.ctx.rank % len(ranks)]
        if self.step_in_epoch:
            self._resume_rank_state, self._resume_partial = rank_state, state["partial"]
        else:
            ckpt.set_rng_state(rank_state["rng"])


def _stateful(callbacks: list[Callback]) -> list[Callback]:
    """Callbacks with state to checkpoint (stateless ones may differ between runs)."""
    return [callback for callback in callbacks if callback.state_dict()]


def _evaluate(model: nn.Module, loader: Iterable, fast: FastPath, loss_fn: Callable,
              topk: list[int], reduce: bool) -> dict[str, float]:
    was_training = model.training
    model.eval()
    dtype = torch.float32 if fast.device.type == "mps" else torch.float64
    sums = torch.zeros(3 + len(topk), dtype=dtype, device=fast.device)  # loss, correct, n, top-k
    classify = True
    with torch.no_grad():
        for x, y in loader:
            if len(y) == 0:
                continue
            x, y = fast.batch(x, y)
            with fast.autocast():
                logits = model(x)
                loss = loss_fn(logits, y)
            sums[0] += loss.float() * len(y)
            sums[2] += len(y)
            classify = _is_classification(logits, y)
            if classify:
                sums[1] += (logits.argmax(1) == y).sum()
                if topk:
                    if topk[-1] > logits.shape[1]:
                        raise ValueError(f"top-{topk[-1]} accuracy needs at least {topk[-1]} "
                                         f"classes; the model outputs {logits.shape[1]}.")
                    hits = logits.topk(topk[-1], dim=1).indices == y[:, None]
                    for i, k in enumerate(topk):
                        sums[3 + i] += hits[:, :k].any(1).sum()
    model.train(was_training)
    if reduce:
        sums = distributed.all_reduce_sum(sums)
    values = sums.tolist()
    if values[2] == 0:
        raise ValueError("the evaluation loader yielded no examples.")
    n = values[2]
    metrics = {"loss": values[0] / n, "acc": values[1] / n if classify else math.nan}
    for i, k in enumerate(topk):
        metrics[f"top{k}"] = values[3 + i] / n if classify else math.nan
    return metrics


def _is_classification(logits: torch.Tensor, y: torch.Tensor) -> bool:
    return logits.dim() == 2 and y.dim() == 1 and not torch.is_floating_point(y)


def _summary(history: History) -> dict[str, str]:
    summary = {"loss": f"{history.train_loss[-1]:.4f}"}
    if not math.isnan(history.train_acc[-1]):
        summary["acc"] = f"{history.train_acc[-1]:.4f}"
    if history.val_loss:
        summary["val_loss"] = f"{history.val_loss[-1]:.4f}"
        if not math.isnan(history.val_acc[-1]):
            summary["val_acc"] = f"{history.val_acc[-1]:.4f}"
    return summary


def _set_epoch(loader, epoch: int) -> None:
    if hasattr(loader, "set_epoch"):
        loader.set_epoch(epoch)
    sampler = getattr(loader, "sampler", None)
    if hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch)


def _unwrap(model: nn.Module) -> nn.Module:
    """The plain module behind DDP / torch.compile wrappers (whose state_dict we save)."""
    while True:
        if isinstance(model, DistributedDataParallel):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


def _wrapped_in_ddp(model: nn.Module) -> bool:
    while not isinstance(model, DistributedDataParallel):
        if not hasattr(model, "_orig_mod"):
            return False
        model = model._orig_mod
    return True


def _device(model: nn.Module, device: torch.device | str | None) -> torch.device:
    if device is not None:
        return torch.device(device)
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


def _train_loader(loader, ctx: distributed.Context):
    if not ctx.distributed or isinstance(loader, distributed.ShardedLoader):
        return loader
    if isinstance(loader, TensorLoader):
        return distributed.ShardedLoader(loader, ctx.rank, ctx.world_size)
    if isinstance(loader, DataLoader) and isinstance(loader.sampler, DistributedSampler):
        return loader
    raise ValueError(
        "Under torchrun every process needs its own share of the data: pass a "
        "coursekit.data.TensorLoader (split automatically; batch_size is the global batch), or "
        "a DataLoader(dataset, batch_size=<per process>, sampler=DistributedSampler(dataset))."
    )


def _eval_loader(loader, ctx: distributed.Context):
    """``(loader, reduce)``: split a TensorLoader among processes and sum the results."""
    if not ctx.distributed:
        return loader, False
    if isinstance(loader, TensorLoader):
        shards = distributed.ShardedLoader(loader, ctx.rank, ctx.world_size, drop_small_last=False)
        return shards, True
    if isinstance(loader, distributed.ShardedLoader):
        return loader, True
    if isinstance(loader, DataLoader) and isinstance(loader.sampler, DistributedSampler):
        return loader, True  # note: DistributedSampler pads with repeats to equal shards
    return loader, False  # every process evaluates everything; nothing to combine


def _check_args(epochs, scheduler_step, clip_grad_norm, checkpoint, checkpoint_every) -> None:
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    if scheduler_step not in ("auto", "epoch", "batch"):
        raise ValueError(
            f"scheduler_step must be 'auto', 'epoch' or 'batch', not {scheduler_step!r}")
    if clip_grad_norm is not None and not clip_grad_norm > 0:
        raise ValueError(f"clip_grad_norm must be positive (or None), got {clip_grad_norm!r}")
    if checkpoint_every is not None:
        if checkpoint is None:
            raise ValueError("checkpoint_every needs a checkpoint path: fit(..., checkpoint="
                             "'run.pt', checkpoint_every=100)")
        if not isinstance(checkpoint_every, int) or checkpoint_every < 1:
            raise ValueError(f"checkpoint_every must be a positive number of steps, "
                             f"got {checkpoint_every!r}")


def _check_optimizer(net: nn.Module, optimizer) -> None:
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}"
                        "; e.g. torch.optim.SGD(model.parameters(), lr=0.1)")
    own = {id(p) for p in net.parameters()}
    if not any(id(p) in own for group in optimizer.param_groups for p in group["params"]):
        raise ValueError("The optimizer holds none of this model's parameters. Create it after "
                         "building the model: torch.optim.SGD(model.parameters(), lr=...).")


def _check_topk(topk: Sequence[int]) -> list[int]:
    ks = sorted({int(k) for k in topk})
    if any(k < 1 for k in ks):
        raise ValueError(f"topk values must be ≥ 1, got {tuple(topk)}")
    return ks
