"""The one training loop, for every task.

>>> from hardneg.training import TrainConfig, train                          # doctest: +SKIP
>>> res = train(TrainConfig(dataset="umls", model="distmult", sampler="topk", epochs=50))  # doctest: +SKIP
>>> res["test"]["mrr"]                                                        # doctest: +SKIP

The engine owns seeding, the device, the optimiser, early stopping on the task's primary validation metric
(the best model is restored before the final evaluation), checkpoints that resume bit-identically, progress,
timings, the results dict and its files. A :class:`hardneg.training.Task` owns everything else. Under
``torchrun --nproc_per_node W`` the same loop runs data-parallel (:mod:`hardneg.training.parallel`).
"""
from __future__ import annotations

import os
import platform
import random
import time
from contextlib import contextmanager

import torch

from .checkpoint import CheckpointError, CheckpointStore
from ..distributed import sharded_embeddings
from .config import TrainConfig
from .export import save_embeddings
from .parallel import DataParallel
from .progress import Progress
from .results import check_output, output_paths, write_results
from .task import get_task


def resolve_device(spec: str) -> torch.device:
    """``"cpu"``, ``"cuda"`` or ``"cuda:N"``, checked against what this torch build can use."""
    try:
        dev = torch.device(spec)
    except (RuntimeError, TypeError):
        raise ValueError(f"'device' must be 'cpu', 'cuda' or 'cuda:N' (got {spec!r})") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            why = "this torch build has no CUDA" if torch.version.cuda is None else "no CUDA device is visible"
            raise ValueError(f"'device' is {spec!r} but {why}; use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"'device' is {spec!r} but only {torch.cuda.device_count()} CUDA device(s) exist")
    elif dev.type != "cpu":
        raise ValueError(f"'device' must be 'cpu', 'cuda' or 'cuda:N' (got {spec!r})")
    return dev


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA), numpy and ``random``. Model initialisation draws from these."""
    random.seed(seed)
    try:
        import numpy

        numpy.random.seed(seed % 2**32)
    except ImportError:  # pragma: no cover
        pass
    torch.manual_seed(seed)


@contextmanager
def deterministic(enabled: bool, device: torch.device):
    """Deterministic torch kernels inside the block (restored after). On CPU, advanced-indexing backward
    (``index_put_`` with accumulation) otherwise sums in a thread-dependent order, and hard-negative mining
    amplifies the last-bit differences into different runs. On CUDA, ops without a deterministic kernel warn.

    The switch also makes torch fill every new tensor with NaN (``torch.utils.deterministic.
    fill_uninitialized_memory``, a guard against reading memory nobody wrote); that stays off here, since no
    kernel of ours reads unwritten memory (the seed-regression digests and a UCI ENS epoch are bit-identical
    either way) and the ~240 fills of a TGN training step cost 1.5–3 % of it (bench/RESULTS.md)."""
    if not enabled:
        yield
        return
    before, warn = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    fill = torch.utils.deterministic.fill_uninitialized_memory
    torch.use_deterministic_algorithms(True, warn_only=device.type != "cpu")
    torch.utils.deterministic.fill_uninitialized_memory = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before, warn_only=warn)
        torch.utils.deterministic.fill_uninitialized_memory = fill


def versions() -> dict:
    import numpy

    import hardneg

    return {"hardneg": getattr(hardneg, "__version__", "unknown"), "torch": torch.__version__,
            "numpy": numpy.__version__, "python": platform.python_version(), "platform": platform.platform(),
            "machine": platform.machine(), "processor": platform.processor(), "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "cuda_device": torch.cuda.get_device_name() if torch.cuda.is_available() else None}


def build_optimizer(cfg: TrainConfig, params) -> torch.optim.Optimizer:
    """The configured optimiser over ``params`` (tensors or param-group dicts). Adam and AdamW run fused (one
    kernel over every tensor) when every parameter is a real floating tensor on the CPU or a CUDA device: the
    same update, 3-4x cheaper than torch's per-tensor default on the CPU (0.3 against 1.1 ms a step for TGN's
    23 tensors; bench/RESULTS.md), last-bit rounding aside."""
    kw = dict(lr=cfg.lr, weight_decay=cfg.weight_decay)
    cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "adagrad": torch.optim.Adagrad,
           "sgd": torch.optim.SGD}[cfg.optimizer]
    params = [dict(g, params=list(g["params"])) if isinstance(g, dict) else g for g in params]
    if cfg.optimizer in ("adam", "adamw"):
        tensors = [p for g in params for p in (g["params"] if isinstance(g, dict) else [g])]
        if tensors and all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in tensors):
            kw["fused"] = True
    return cls(params, **kw)


class Trainer:
    """One training run of any task.

    Args:
        config: a :class:`TrainConfig` (or a mapping for ``TrainConfig.from_dict``).
        data: an already loaded dataset of the task (skips loading ``config.dataset``); ``kg=`` is an alias.
        progress: True (a bar, or one line per evaluation without a TTY), False (silent) or None (auto).
        log: where one-line messages go (``print`` by default; None silences them).

    ``run(resume=False, output=None)`` trains, restores the best validation model, evaluates on valid and test
    and returns the results dict; with ``output`` (a ``.json`` path or a run folder) it also writes the JSON
    and a PNG of the training loss and validation metric per epoch.
    """

    def __init__(self, config: TrainConfig | dict, *, data=None, kg=None, progress: bool | None = None, log=print):
        cfg = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(config)
        self.cfg = cfg.validate()
        self.device = resolve_device(cfg.device)
        task_cls = get_task(cfg.task)
        parallel = DataParallel.wanted()  # torchrun: data-parallel
        if parallel and task_cls.data_parallel_unsupported:
            raise ValueError(f"TrainConfig: task {cfg.task!r} cannot train data-parallel (this is a torchrun run "
                             f"with more than one process): {task_cls.data_parallel_unsupported}")
        self.dp = DataParallel(self.device) if parallel else None
        if self.dp is not None:
            self.device = self.dp.device
            if not self.dp.is_main:
                log, progress = None, False
        self.log = log or (lambda *a, **k: None)
        self.store = CheckpointStore(cfg.checkpoint_dir) if cfg.checkpoint_dir else None
        seed_everything(cfg.seed)
        with deterministic(cfg.deterministic, self.device):  # a task may train in its set-up (MeBNS's teacher)
            self.task = task_cls(cfg, data=data if data is not None else kg, device=self.device)
        self.model = self.task.model
        #: row-sharded tables (hardneg.distributed.ShardedEmbedding): their gradients are reduced after backward
        self.sharded = [m for _, m in sharded_embeddings(self.model)]
        self.opt = build_optimizer(cfg, self.task.param_groups())
        self.gen = torch.Generator().manual_seed(cfg.seed + 1)
        self.step_gen, self.ddp = self.gen, None  # data-parallel: the batches stay shared, the negatives per rank
        if self.dp is not None:
            self.step_gen = torch.Generator().manual_seed(cfg.seed + 1 + 7919 * self.dp.rank)
            if self.dp.rank:
                torch.manual_seed(cfg.seed + 1_000_003 * self.dp.rank)  # dropout masks differ across ranks
            self.ddp = self.dp.wrap(self.task)
        self.progress = progress
        self.epoch = 0
        self.history: list[dict] = []
        self.best = {"value": None, "epoch": 0, "state": None}
        self.wait = 0
        self.timings = {"train_s": 0.0, "eval_s": 0.0, "epochs": 0}

    @property
    def is_main(self) -> bool:
        """True in a single-process run and on rank 0 of a data-parallel one (the rank that writes files)."""
        return self.dp is None or self.dp.is_main

    def close(self) -> None:
        """Destroy the process group this trainer created (data-parallel runs); a no-op otherwise."""
        if self.dp is not None:
            self.dp.close()

    @property
    def data(self):
        return getattr(self.task, "data", None)

    # ------------------------------------------------------------------ checkpoints
    def _rank_state(self) -> dict:
        out = {"generator": self.step_gen.get_state(), "torch_rng": torch.get_rng_state(),
               "task": self.task.state_dict()}
        if self.sharded:  # each rank's rows of the model (and of its best state) are its own
            out.update(model=self.model.state_dict(), optimizer=self.opt.state_dict(), best_state=self.best["state"])
        return out

    def save_checkpoint(self) -> str | None:
        """Write a checkpoint (collective in a data-parallel run: every rank's generators and task state are
        gathered and rank 0 writes; the other ranks return None)."""
        if self.store is None:
            raise ValueError("save_checkpoint: no checkpoint_dir configured")
        ranks = self.dp.gather(self._rank_state()) if self.dp is not None else None
        if not self.is_main:
            return None
        state = {"fingerprint": self.cfg.fingerprint(), "epoch": self.epoch, "model": self.model.state_dict(),
                 "optimizer": self.opt.state_dict(), "task": self.task.state_dict(),
                 "generator": self.gen.get_state(), "torch_rng": torch.get_rng_state(),
                 "history": self.history, "best": self.best, "wait": self.wait, "timings": self.timings,
                 "clock": dict(self.task.clock.totals)}
        if ranks is not None:
            state.update(world_size=self.dp.world_size, ranks=ranks)
        return self.store.save(state)

    def load_checkpoint(self) -> None:
        if self.store is None:
            raise ValueError("resume: no checkpoint_dir configured (set checkpoint_dir / --checkpoint-dir)")
        state, path = self.store.load(self.cfg.fingerprint(), map_location=self.device, log=self.log,
                                      defaults=type(self.cfg).defaults())
        world = self.dp.world_size if self.dp is not None else 1
        if state.get("world_size", 1) != world:
            raise CheckpointError(f"resume: checkpoint {path!r} was written by {state.get('world_size', 1)} "
                                  f"process(es); this run has {world} (resume with the same number of ranks)")
        if self.sharded and self.dp is not None:  # the model and optimiser state of this rank's rows
            mine = state["ranks"][self.dp.rank]
            state["model"], state["best"]["state"] = mine["model"], mine["best_state"]
            state["optimizer"] = mine["optimizer"]
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.task.load_state_dict(state["task"])
        self.gen.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        self.epoch, self.history, self.best, self.wait = state["epoch"], state["history"], state["best"], state["wait"]
        self.timings = state["timings"]
        self.task.clock.totals = dict(state["clock"])
        if self.dp is not None:
            mine = state["ranks"][self.dp.rank]
            self.step_gen.set_state(mine["generator"])
            torch.set_rng_state(mine["torch_rng"])
            self.task.load_state_dict(mine["task"])
        self.log(f"[train] resumed from {path} at epoch {self.epoch}")

    # ------------------------------------------------------------------ training
    def train_epoch(self) -> float:
        """One pass over the task's training batches; returns the mean loss per positive."""
        cfg, task, opt = self.cfg, self.task, self.opt
        self.model.train()
        task.on_epoch_start(self.epoch + 1)
        total, count = 0.0, 0
        t0 = time.perf_counter()
        with deterministic(cfg.deterministic, self.device):
            for batch in task.batches(self.gen):
                if self.dp is None:
                    loss = scaled = task.step(batch, self.gen)
                else:  # this rank's slice; DDP averages W·(n_r/n)·grad_r into the global batch's gradient
                    part = self.dp.shard(task, batch, batch_size_of)
                    if part is None:
                        continue
                    batch, scale = part
                    loss = self.ddp(batch, self.step_gen)
                    scaled = loss * scale
                opt.zero_grad(set_to_none=True)
                scaled.backward()
                for table in self.sharded:  # collective: each rank keeps the averaged gradient of its own rows
                    table.reduce_gradients()
                if cfg.grad_clip:
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
                opt.step()
                task.after_step(batch)
                n = batch_size_of(batch)
                total += float(loss.detach()) * n
                count += n
            task.on_epoch_end(self.epoch + 1)
        if self.dp is not None:
            total, count = self.dp.sum(total, count)
        self.timings["train_s"] += time.perf_counter() - t0
        self.timings["epochs"] += 1
        return total / max(1, count)

    def evaluate(self, split: str = "valid") -> dict:
        t = time.perf_counter()
        was = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                out = self.task.evaluate(split) if self.dp is None else self.dp.evaluate(self.task, split)
        finally:
            self.model.train(was)
        self.timings["eval_s"] += time.perf_counter() - t
        return out

    def _improved(self, value: float) -> bool:
        best = self.best["value"]
        if value != value:  # NaN never improves
            return False
        if best is None:
            return True
        return value > best if self.task.higher_is_better else value < best

    def run(self, resume: bool = False, output: str | None = None) -> dict:
        cfg, task = self.cfg, self.task
        if output and self.is_main:
            check_output(output)  # fail before training, never after
        if self.store is not None and self.is_main:
            self.store.check_writable()
        t_start = time.perf_counter()
        if resume:
            self.load_checkpoint()
        key = task.primary_metric
        bar = Progress(self.progress, total=cfg.epochs, initial=self.epoch, desc=f"{cfg.model}/{cfg.sampler}",
                       log=self.log)
        stopped = False
        while self.epoch < cfg.epochs and not stopped:
            t_ep = time.perf_counter()
            loss = self.train_epoch()
            self.epoch += 1
            rec = {"epoch": self.epoch, "loss": loss, "epoch_s": time.perf_counter() - t_ep}
            if cfg.eval_every and (self.epoch % cfg.eval_every == 0 or self.epoch == cfg.epochs):
                v = self.evaluate("valid")
                rec["valid"] = v
                rec[f"valid_{key}"] = v[key]
                if self._improved(v[key]):
                    self.best = {"value": v[key], "epoch": self.epoch,
                                 "state": {k: x.detach().clone() for k, x in self.model.state_dict().items()}}
                    self.wait = 0
                else:
                    self.wait += 1
                    stopped = bool(cfg.patience and self.wait >= cfg.patience)
            self.history.append(rec)
            bar.update(rec, key)
            if self.store is not None and cfg.checkpoint_every and (self.epoch % cfg.checkpoint_every == 0 or stopped):
                self.save_checkpoint()
        bar.close()
        if self.best["state"] is not None:
            self.model.load_state_dict(self.best["state"])
        valid = self.evaluate("valid")
        test = self.evaluate("test")
        n_ep = max(1, self.timings["epochs"])
        clock = task.clock
        result = {
            "task": cfg.task,
            "config": cfg.to_dict(),
            "dataset": task.describe(),
            "protocol": task.protocol(),
            "primary_metric": key,
            "plot_metrics": [m for m in (task.plot_metrics or ()) if m != key],
            "valid": valid, "test": test,
            "epochs_trained": self.epoch, "best_epoch": self.best["epoch"] or self.epoch,
            "stopped_early": stopped,
            "timings": {"total_s": time.perf_counter() - t_start, "train_s": self.timings["train_s"],
                        "epoch_s": self.timings["train_s"] / n_ep, "sampler_s": clock["sampler"],
                        "sampler_share": clock["sampler"] / max(1e-12, self.timings["train_s"]),
                        "eval_s": self.timings["eval_s"]},
            "versions": versions(),
            "world_size": self.dp.world_size if self.dp is not None else 1,
            "history": self.history,
        }
        exported = task.export() if output and (self.is_main or self.sharded) else None  # sharded: collective
        if output and self.is_main:
            folder = os.path.dirname(os.path.abspath(output_paths(output)[0]))
            emb = save_embeddings(exported, folder)
            result["files"] = write_results(result, output, extra={"embeddings": emb} if emb else None)
        return result


def batch_size_of(batch) -> int:
    """Positives in a batch: a tensor's first dimension, or ``len(batch)`` / ``batch.num_positives``."""
    if isinstance(batch, torch.Tensor):
        return batch.shape[0]
    n = getattr(batch, "num_positives", None)
    if n is not None:
        return int(n)
    return len(batch)


def train(config: TrainConfig | dict, *, resume: bool = False, output: str | None = None, data=None, kg=None,
          progress: bool | None = None, log=print) -> dict:
    """Build a :class:`Trainer` and run it; returns the results dict."""
    tr = Trainer(config, data=data, kg=kg, progress=progress, log=log)
    try:
        return tr.run(resume=resume, output=output)
    finally:
        tr.close()
