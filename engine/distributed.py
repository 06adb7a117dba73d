"""Runs on many processes, GPUs and machines with torch.distributed, launched by ``torchrun``: this process's
place in the group (``World``) and the few collective operations the stages use.

What every rank does: the same sub-network at each step (the arch sampler is a function of seed and step),
its own slice of each global batch (``config.batch_size`` is the global batch; the order of the images is
a function of seed and step, so a run resumed with another number of ranks continues the same sequence),
gradients averaged over the ranks before every optimiser step, BatchNorm statistics over the global batch
(``SyncedBatchNorm``), losses averaged for the log. Rank 0 alone writes: the store, checkpoints, results,
artifacts, the log. A search scores its candidates in rounds of one per rank and gathers the scores, so
every rank takes the same decisions.

Gradients are averaged at the optimiser (a step pre-hook) rather than by wrapping the models in
``DistributedDataParallel``: the families' steps call their sub-modules directly (teacher features,
mapping layers, an elastic supernet whose unused widths get no gradient), which DDP's wrapper would have
to own. The arithmetic is DDP's: one all-reduce of the flattened gradients, divided by the number of
ranks."""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from engine.errors import ConfigError

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.size > 1

    def broadcast(self, value: T | None = None) -> T:
        """Rank 0's ``value`` on every rank."""
        if not self.active:
            return value  # type: ignore[return-value]
        box = [value if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]  # type: ignore[return-value]

    def gather(self, value: T) -> list[T]:
        """Every rank's ``value``, in rank order, on every rank."""
        if not self.active:
            return [value]
        values: list[Any] = [None] * self.size
        dist.all_gather_object(values, value)
        return values

    def any(self, flag: bool) -> bool:
        """Whether any rank says yes (e.g. a stop asked on one: every rank stops at the same step)."""
        if not self.active:
            return flag
        tensor = torch.tensor([1.0 if flag else 0.0], device="cpu")  # a few numbers: gloo
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return bool(tensor.item() > 0)

    def mean(self, values: dict[str, float]) -> dict[str, float]:
        """The mean over the ranks of each value (the same keys on every rank)."""
        if not self.active or not values:
            return values
        keys = sorted(values)
        tensor = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device="cpu")  # a few numbers: gloo
        dist.all_reduce(tensor)
        return {k: float(v) / self.size for k, v in zip(keys, tensor.tolist())}

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def shard(self, items: list[T]) -> list[T]:
        """This rank's share of ``items`` (every ``size``-th, from ``rank``)."""
        return items[self.rank::self.size]

    def average_gradients(self, parameters: list[torch.nn.Parameter]) -> None:
        """Replace each gradient by its mean over the ranks: one all-reduce of them all, flattened. Every rank
        has gradients for the same parameters (the same sub-network at each step)."""
        if not self.active:
            return
        grads = [p.grad for p in parameters if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.size
        offset = 0
        for g in grads:
            g.copy_(flat[offset:offset + g.numel()].view_as(g))
            offset += g.numel()

    def batchnorm_over_ranks(self, *modules: torch.nn.Module) -> None:
        """Training statistics of every BatchNorm in ``modules`` over the global batch (``SyncedBatchNorm``)."""
        if self.active:
            for module in modules:
                synced_batchnorm(module)

    def same_weights(self, *modules: torch.nn.Module) -> None:
        """Rank 0's parameters and buffers on every rank, as DDP does when it wraps a model (the ranks start
        alike: seeded, or from the same checkpoint; this makes sure of it)."""
        if not self.active:
            return
        for module in modules:
            for tensor in [*module.parameters(), *module.buffers()]:
                dist.broadcast(tensor.data, src=0)

    def synchronise(self, optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer:
        """``optimizer``, averaging its gradients over the ranks before each step."""
        if self.active:
            def average(opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
                self.average_gradients([p for group in opt.param_groups for p in group["params"]])

            optimizer.register_step_pre_hook(average)
        return optimizer

    def describe(self) -> str:
        return f"rank {self.rank} of {self.size} on {socket.gethostname()}"


SINGLE = World()


def ranks_active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def batch_norm_over_ranks(x: torch.Tensor, running_mean: torch.Tensor | None, running_var: torch.Tensor | None,
                          num_batches_tracked: torch.Tensor | None, momentum: float | None, eps: float,
                          weight: torch.Tensor | None = None, bias: torch.Tensor | None = None) -> torch.Tensor:
    """Training-mode batch norm whose statistics are those of the global batch: the sums over every rank's
    slice (one differentiable all-reduce, so the gradient flows through the shared mean and variance as it
    does in one process); the running statistics (any view of them, e.g. an elastic layer's first channels)
    are updated in place."""
    from torch.distributed.nn.functional import all_reduce

    channels = x.shape[1]
    count = torch.tensor([x.numel() / channels], dtype=x.dtype, device=x.device)
    sums = all_reduce(torch.cat([x.sum(dim=(0, 2, 3)), (x * x).sum(dim=(0, 2, 3)), count]))
    n = sums[-1]
    mean = sums[:channels] / n
    var = sums[channels:2 * channels] / n - mean * mean
    if running_mean is not None and running_var is not None:
        with torch.no_grad():
            if momentum is None:
                momentum = 1.0 / float(num_batches_tracked + 1) if num_batches_tracked is not None else 0.1
            running_mean.mul_(1 - momentum).add_(momentum * mean)
            running_var.mul_(1 - momentum).add_(momentum * var * n / max(float(n) - 1, 1.0))
            if num_batches_tracked is not None:
                num_batches_tracked.add_(1)
    y = (x - mean[None, :, None, None]) / torch.sqrt(var[None, :, None, None] + eps)
    if weight is not None:
        y = y * weight[None, :, None, None] + bias[None, :, None, None]
    return y


class SyncedBatchNorm(torch.nn.BatchNorm2d):
    """BatchNorm whose training statistics are those of the global batch (``batch_norm_over_ranks``).
    ``nn.SyncBatchNorm`` does the same on GPUs only; this one runs on gloo as well."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and ranks_active()):
            return super().forward(x)
        tracked = self.track_running_stats
        return batch_norm_over_ranks(x, self.running_mean if tracked else None, self.running_var if tracked else None,
                                     self.num_batches_tracked if tracked else None, self.momentum, self.eps,
                                     self.weight if self.affine else None, self.bias if self.affine else None)


def synced_batchnorm(module: torch.nn.Module) -> torch.nn.Module:
    """``module`` with each ``BatchNorm2d`` in it made a ``SyncedBatchNorm``, in place: the same module
    objects, parameters and buffers (optimisers and checkpoints hold them as before), only the training
    statistics come from every rank."""
    for child in module.modules():
        if type(child) is torch.nn.BatchNorm2d:
            child.__class__ = SyncedBatchNorm
    return module


def launched() -> bool:
    """Whether this process was started by torchrun (or another launcher setting its variables)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def join(device: str = "auto") -> World:
    """Join the process group torchrun set up (gloo for CPU tensors, and NCCL for CUDA ones where there is a
    GPU); ``SINGLE`` when this process runs alone. ``device``: the settings' device (``cpu`` keeps the
    group on gloo even on a machine with GPUs)."""
    if not launched():
        return SINGLE
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size(), local_rank)
    gpu = device != "cpu" and torch.cuda.is_available()
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {device} asked for, but this machine has no usable CUDA GPU")
    if gpu:
        if local_rank >= torch.cuda.device_count():
            raise ConfigError(f"{os.environ.get('LOCAL_WORLD_SIZE', '?')} processes on this machine but only "
                              f"{torch.cuda.device_count()} GPU(s): start at most one process per GPU")
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend="cpu:gloo,cuda:nccl" if gpu else "gloo")
    world = World(dist.get_rank(), dist.get_world_size(), local_rank)
    log.info("joined the process group: %s", world.describe())
    return world


def rank_device(world: World, device: torch.device) -> torch.device:
    """The device of this rank: its own GPU (by local rank) in a GPU run."""
    if world.active and device.type == "cuda":
        return torch.device("cuda", world.local_rank)
    return device


def hosts(world: World) -> list[str]:
    """The machines of the group, each once (rank 0's first)."""
    return list(dict.fromkeys(world.gather(socket.gethostname())))


def leave(world: World) -> None:
    if world.active and dist.is_initialized():
        dist.destroy_process_group()
