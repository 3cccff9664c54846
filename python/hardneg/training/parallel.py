"""Data-parallel training on ``torch.distributed`` for the one engine (``torchrun --nproc_per_node W -m hardneg
train ...``).

Layout: the model is *replicated* and wrapped in ``DistributedDataParallel`` (gloo on CPU, NCCL on CUDA): every
rank draws the same global batches from the shared batch generator, trains on its contiguous slice
(:meth:`hardneg.training.Task.shard_batch`), and DDP averages the gradients. The local loss is scaled by
W·n_r / n, so the averaged gradient is the gradient of the mean loss over the whole global batch (exactly what
one process computes on the combined batch, within float tolerance, for any split of it). A global batch
with fewer positives than ranks is skipped by every rank.

Each rank draws its negatives from its own generator (seed + 1 + rank·7919), so ranks never share a stream.
Evaluation is sharded when the task implements :meth:`~hardneg.training.Task.evaluate_shard` /
:meth:`~hardneg.training.Task.merge_shards` (each rank evaluates a slice; the parts are all-gathered and merged
on every rank); otherwise rank 0 evaluates and broadcasts the metrics. Only rank 0 logs and writes checkpoints
and results; a checkpoint holds every rank's generators and task state, and a resumed run must use the same
number of ranks.

The KG task's ``entity_layout: sharded`` is the second layout: each rank keeps only its rows of the entity table
(:class:`hardneg.distributed.ShardedEmbedding`, kept out of DDP), looks rows up collectively, mines over the
sharded table, reduces the table's gradients itself after ``backward`` (sparse on the owning rank) and evaluates
the whole split together with the other ranks; its limits are in ``ShardedEmbedding``'s docstring.

The kg, linkpred and rec tasks train this way. A task that cannot says why in
:attr:`~hardneg.training.Task.data_parallel_unsupported` (temporal: its batches are slices of one chronological
event stream), and the engine refuses it before it joins the process group. A trainer built inside another's
set-up (SEAL's ``node_embedding: gcn``) joins the same group and trains data-parallel too.

Limits: in the replicated layout each rank holds the whole model. State a task keeps outside the model (sampler caches, a trainable
sampler's own parameters) is per rank and not synchronised.
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist

from ..distributed import sharded_embeddings

WORLD_ENV = "WORLD_SIZE"


class DataParallel:
    """The process group of a data-parallel run (``rank``, ``world_size``, ``device``), and its collectives."""

    def __init__(self, device: torch.device):
        self.owns_group = False
        if not dist.is_initialized():
            backend = "nccl" if device.type == "cuda" else "gloo"
            dist.init_process_group(backend)
            self.owns_group = True
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        if device.type == "cuda" and device.index is None:
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", self.rank)) % torch.cuda.device_count())
            torch.cuda.set_device(device)
        self.device = device
        self._comm = device if dist.get_backend() == "nccl" else torch.device("cpu")

    @staticmethod
    def wanted() -> bool:
        """True under a launcher with more than one process (``WORLD_SIZE`` > 1) or inside a process group."""
        if not dist.is_available():
            return False
        return dist.is_initialized() and dist.get_world_size() > 1 or int(os.environ.get(WORLD_ENV, "1")) > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # ------------------------------------------------------------------ training
    def wrap(self, task) -> torch.nn.Module:
        """``task.step`` behind ``DistributedDataParallel`` over ``task.model`` (the task keeps calling its model
        directly; the DDP forward is the step)."""
        step = _Step(task)
        ids = [self.device.index] if self.device.type == "cuda" else None
        sharded = [f"model.{n}.local" for n, _ in sharded_embeddings(task.model)]
        if sharded:  # row-sharded tables are not replicas: DDP must neither broadcast nor all-reduce them
            torch.nn.parallel.DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(step, sharded)
        return torch.nn.parallel.DistributedDataParallel(step, device_ids=ids, find_unused_parameters=True)

    def shard(self, task, batch, size_of):
        """(this rank's slice, its loss scale W·n_r/n), or None when the global batch has fewer than W positives."""
        n = size_of(batch)
        if n < self.world_size:
            return None
        local = task.shard_batch(batch, self.rank, self.world_size)
        return local, self.world_size * size_of(local) / n

    def sum(self, *values: float) -> list[float]:
        t = torch.tensor(values, dtype=torch.float64, device=self._comm)
        dist.all_reduce(t)
        return t.tolist()

    # ------------------------------------------------------------------ evaluation and state
    def evaluate(self, task, split: str) -> dict:
        if task.collective_evaluation:
            return task.evaluate(split)
        part = task.evaluate_shard(split, self.rank, self.world_size)
        if part is not None:
            parts = [None] * self.world_size
            dist.all_gather_object(parts, part)
            return task.merge_shards(split, parts)
        box = [task.evaluate(split) if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, obj) -> list:
        out = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        dist.barrier()

    def close(self) -> None:
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()
            self.owns_group = False


class _Step(torch.nn.Module):
    """``forward(batch, generator) = task.step(batch, generator)``, with ``task.model`` as the only submodule."""

    def __init__(self, task):
        super().__init__()
        self.model = task.model
        self._task = (task,)  # a tuple: not registered as a submodule

    def forward(self, batch, generator):
        return self._task[0].step(batch, generator)
