"""sLCWA training of KG embedding models with any hardneg sampler and loss, with filtered evaluation,
early stopping, checkpoints that resume exactly, and a JSON results file.

>>> from hardneg.training import TrainConfig, train                          # doctest: +SKIP
>>> res = train(TrainConfig(dataset="umls", model="distmult", sampler="topk", epochs=50))  # doctest: +SKIP
>>> res["test"]["mrr"]                                                        # doctest: +SKIP
"""
from __future__ import annotations

import copy
import dataclasses
import json
import os
import platform
import sys
import time
from dataclasses import dataclass, field

import torch

from . import _validate as V
from . import losses as _losses
from . import samplers as _samplers
from .data import load_dataset, unseen_mask
from .evaluation import TIES, evaluate
from .known import KnownSet
from .models import MODELS, create_model

OPTIMIZERS = ("adam", "adagrad", "sgd")
UNSEEN = ("keep", "drop")
CHECKPOINT = "checkpoint.pt"


@dataclass
class TrainConfig:
    """Everything a run depends on. ``from_dict`` checks names and types; unknown keys are errors."""

    dataset: str = "umls"
    model: str = "distmult"
    dim: int = 200
    model_options: dict = field(default_factory=dict)
    encoder: str | None = None  # "rgcn": an R-GCN encoder in front of the decoder (needs hardneg[pyg])
    sampler: str = "uniform"
    sampler_options: dict = field(default_factory=dict)
    num_negatives: int = 32
    filtered_sampling: bool = True  # negatives never hit a training triple
    loss: str = "softplus"
    loss_options: dict = field(default_factory=dict)
    importance_weighting: bool = False  # weight negatives by 1/q when the sampler returns log_prob
    optimizer: str = "adam"
    lr: float = 0.001
    weight_decay: float = 0.0
    batch_size: int = 256
    epochs: int = 100
    regularizer: str | None = None  # "l2" | "n3"
    reg_weight: float = 0.0
    eval_every: int = 10
    patience: int = 0  # evaluations without a valid-MRR gain before stopping (0: never stop early)
    eval_batch_size: int = 256
    tie: str = "realistic"
    unseen: str = "keep"  # valid/test triples with entities or relations unseen in train: keep | drop
    checkpoint_every: int = 0
    checkpoint_dir: str | None = None
    seed: int = 0
    device: str = "cpu"

    # fields that may change between a checkpoint and its resumption
    RESUMABLE = ("epochs", "checkpoint_every", "checkpoint_dir", "device", "eval_batch_size", "patience")

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        if not isinstance(d, dict):
            raise TypeError(f"TrainConfig: expected a mapping (got {type(d).__name__})")
        names = {f.name: f for f in dataclasses.fields(cls)}
        bad = sorted(set(d) - set(names))
        if bad:
            raise ValueError(f"TrainConfig: unknown option(s) {bad}; valid options: {sorted(names)}")
        cfg = cls(**d)
        cfg.validate()
        return cfg

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def validate(self) -> "TrainConfig":
        op = "TrainConfig"
        if self.model.lower() not in MODELS:
            raise ValueError(f"{op}: unknown model {self.model!r}; known models: {list(MODELS)}")
        if self.sampler not in _samplers.available():
            raise ValueError(f"{op}: unknown sampler {self.sampler!r}; known samplers: {_samplers.available()}")
        if self.loss not in _losses.available():
            raise ValueError(f"{op}: unknown loss {self.loss!r}; known losses: {_losses.available()}")
        V.choice(op, "optimizer", self.optimizer, OPTIMIZERS)
        V.choice(op, "tie", self.tie, TIES)
        V.choice(op, "unseen", self.unseen, UNSEEN)
        if self.encoder not in (None, "rgcn"):
            raise ValueError(f"{op}: 'encoder' must be None or 'rgcn' (got {self.encoder!r})")
        for name in ("dim", "num_negatives", "batch_size", "eval_batch_size"):
            V.integer(op, name, getattr(self, name), minimum=1)
        for name in ("epochs", "eval_every", "patience", "checkpoint_every", "seed"):
            V.integer(op, name, getattr(self, name), minimum=0)
        for name in ("lr", "weight_decay", "reg_weight"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 or v != v:
                raise ValueError(f"{op}: '{name}' must be a number >= 0 (got {v!r})")
        if self.lr <= 0:
            raise ValueError(f"{op}: 'lr' must be > 0 (got {self.lr!r})")
        for name in ("model_options", "sampler_options", "loss_options"):
            if not isinstance(getattr(self, name), dict):
                raise TypeError(f"{op}: '{name}' must be a mapping (got {getattr(self, name)!r})")
        return self


def versions() -> dict:
    import numpy

    import hardneg

    return {"hardneg": getattr(hardneg, "__version__", "unknown"), "torch": torch.__version__,
            "numpy": numpy.__version__, "python": platform.python_version(), "platform": platform.platform(),
            "machine": platform.machine(), "torch_threads": torch.get_num_threads()}


class Trainer:
    """One training run. ``run(resume=False)`` returns the results dict (also written to ``output``)."""

    def __init__(self, config: TrainConfig, *, kg=None, progress: bool | None = None, log=print):
        self.cfg = config.validate()
        self.log = log or (lambda *a, **k: None)
        self.device = torch.device(self.cfg.device)
        self.kg = kg if kg is not None else load_dataset(self.cfg.dataset)
        kg = self.kg
        self.valid, self.test = kg.valid, kg.test
        self.unseen_counts = {"valid": int(unseen_mask(kg, kg.valid).sum()), "test": int(unseen_mask(kg, kg.test).sum())}
        if self.cfg.unseen == "drop":
            self.valid = kg.valid[~unseen_mask(kg, kg.valid)]
            self.test = kg.test[~unseen_mask(kg, kg.test)]
        E, R = kg.num_entities, kg.num_relations
        self.train_known = KnownSet.from_triples(kg.train, E, R).to(self.device)
        self.all_known = KnownSet.from_triples(torch.cat([kg.train, kg.valid, kg.test]), E, R).to(self.device)
        torch.manual_seed(self.cfg.seed)
        self.model = create_model(self.cfg.model, E, R, self.cfg.dim, regularizer=self.cfg.regularizer,
                                  reg_weight=self.cfg.reg_weight, **self.cfg.model_options)
        if self.cfg.encoder == "rgcn":
            from .models.kg import RGCN

            self.model.encoder = RGCN(kg.train, E, R, self.model.entity.weight.shape[1])
        self.model.to(self.device)
        self.sampler = _samplers.create(self.cfg.sampler, num_negatives=self.cfg.num_negatives,
                                        known=self.train_known if self.cfg.filtered_sampling else None,
                                        num_entities=E, num_relations=R, **self.cfg.sampler_options)
        self.loss = _losses.create(self.cfg.loss, **self.cfg.loss_options)
        params = list(self.model.parameters())
        o = self.cfg.optimizer
        self.opt = (torch.optim.Adam(params, lr=self.cfg.lr, weight_decay=self.cfg.weight_decay) if o == "adam" else
                    torch.optim.Adagrad(params, lr=self.cfg.lr, weight_decay=self.cfg.weight_decay) if o == "adagrad" else
                    torch.optim.SGD(params, lr=self.cfg.lr, weight_decay=self.cfg.weight_decay))
        self.gen = torch.Generator().manual_seed(self.cfg.seed + 1)
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.epoch = 0
        self.history = []
        self.best = {"mrr": -1.0, "epoch": 0, "state": None}
        self.wait = 0
        self.timings = {"train_s": 0.0, "sampler_s": 0.0, "eval_s": 0.0, "epochs": 0}

    # ------------------------------------------------------------------ checkpoints
    def _ckpt_path(self):
        return os.path.join(self.cfg.checkpoint_dir, CHECKPOINT) if self.cfg.checkpoint_dir else None

    def _fingerprint(self):
        d = self.cfg.to_dict()
        for k in TrainConfig.RESUMABLE:
            d.pop(k, None)
        return d

    def save_checkpoint(self, path=None):
        path = path or self._ckpt_path()
        if path is None:
            raise ValueError("save_checkpoint: no checkpoint_dir configured")
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        state = {"fingerprint": self._fingerprint(), "epoch": self.epoch, "model": self.model.state_dict(),
                 "optimizer": self.opt.state_dict(), "sampler": self.sampler.state_dict(),
                 "generator": self.gen.get_state(), "history": self.history, "best": self.best, "wait": self.wait,
                 "timings": self.timings}
        tmp = path + ".tmp"
        torch.save(state, tmp)
        os.replace(tmp, path)

    def load_checkpoint(self, path=None):
        path = path or self._ckpt_path()
        if path is None or not os.path.exists(path):
            raise ValueError(f"resume: no checkpoint at {path!r}")
        state = torch.load(path, map_location=self.device, weights_only=False)
        mine = self._fingerprint()
        theirs = state.get("fingerprint", {})
        if theirs != mine:
            diff = {k: (theirs.get(k), mine.get(k)) for k in set(mine) | set(theirs) if theirs.get(k) != mine.get(k)}
            raise ValueError(f"resume: checkpoint {path!r} comes from a different config: "
                             + ", ".join(f"{k}: checkpoint {a!r} vs now {b!r}" for k, (a, b) in sorted(diff.items())))
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.sampler.load_state_dict(state["sampler"])
        self.gen.set_state(state["generator"])
        self.epoch, self.history, self.best, self.wait = state["epoch"], state["history"], state["best"], state["wait"]
        self.timings = state["timings"]
        self.log(f"[train] resumed from {path} at epoch {self.epoch}")

    # ------------------------------------------------------------------ training
    def train_epoch(self) -> float:
        cfg, model, dev = self.cfg, self.model, self.device
        model.train()
        tr = self.kg.train
        perm = torch.randperm(tr.shape[0], generator=self.gen)
        total, count = 0.0, 0
        t0 = time.perf_counter()
        for s in range(0, tr.shape[0], cfg.batch_size):
            P = tr[perm[s : s + cfg.batch_size]].to(dev)
            ts = time.perf_counter()
            neg = self.sampler.sample(P, scorer=model, generator=self.gen)
            self.timings["sampler_s"] += time.perf_counter() - ts
            pos_s, neg_s = model.forward_scores(P, neg)
            w = None
            if cfg.importance_weighting and neg.log_prob is not None:
                w = _losses.importance_weights(neg.log_prob, neg.valid)
            loss = self.loss(pos_s, neg_s, valid=neg.valid, weights=w) + model.regularization(P)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            model.post_step()
            total += float(loss.detach()) * P.shape[0]
            count += P.shape[0]
        self.timings["train_s"] += time.perf_counter() - t0
        self.timings["epochs"] += 1
        return total / max(1, count)

    def evaluate(self, split="valid"):
        t = time.perf_counter()
        tr = self.valid if split == "valid" else self.test
        out = evaluate(self.model, tr, self.all_known, batch_size=self.cfg.eval_batch_size, tie=self.cfg.tie)
        self.timings["eval_s"] += time.perf_counter() - t
        return out

    def run(self, resume: bool = False, output: str | None = None) -> dict:
        cfg = self.cfg
        t_start = time.perf_counter()
        if resume:
            self.load_checkpoint()
        bar = None
        if self.progress:
            try:
                from tqdm.auto import tqdm

                bar = tqdm(total=cfg.epochs, initial=self.epoch, desc=f"{cfg.model}/{cfg.sampler}", unit="epoch")
            except ImportError:  # pragma: no cover
                bar = None
        stopped = False
        while self.epoch < cfg.epochs and not stopped:
            loss = self.train_epoch()
            self.epoch += 1
            rec = {"epoch": self.epoch, "loss": loss}
            if cfg.eval_every and (self.epoch % cfg.eval_every == 0 or self.epoch == cfg.epochs):
                v = self.evaluate("valid")
                rec["valid_mrr"] = v["mrr"]
                if v["mrr"] > self.best["mrr"]:
                    self.best = {"mrr": v["mrr"], "epoch": self.epoch,
                                 "state": {k: x.detach().clone() for k, x in self.model.state_dict().items()}}
                    self.wait = 0
                else:
                    self.wait += 1
                    if cfg.patience and self.wait >= cfg.patience:
                        stopped = True
            self.history.append(rec)
            if bar is not None:
                bar.update(1)
                bar.set_postfix({k: round(v, 4) for k, v in rec.items() if k != "epoch"})
            if cfg.checkpoint_every and cfg.checkpoint_dir and (self.epoch % cfg.checkpoint_every == 0 or stopped):
                self.save_checkpoint()
        if bar is not None:
            bar.close()
        if self.best["state"] is not None:
            self.model.load_state_dict(self.best["state"])
        valid = self.evaluate("valid")
        test = self.evaluate("test")
        n_ep = max(1, self.timings["epochs"])
        result = {
            "config": cfg.to_dict(),
            "dataset": {"name": self.kg.name, "entities": self.kg.num_entities, "relations": self.kg.num_relations,
                        "train": int(self.kg.train.shape[0]), "valid": int(self.valid.shape[0]),
                        "test": int(self.test.shape[0]), "unseen_in_train": self.unseen_counts,
                        "unseen_policy": cfg.unseen},
            "valid": valid, "test": test,
            "epochs_trained": self.epoch, "best_epoch": self.best["epoch"] or self.epoch,
            "stopped_early": stopped,
            "timings": {"total_s": time.perf_counter() - t_start, "train_s": self.timings["train_s"],
                        "epoch_s": self.timings["train_s"] / n_ep, "sampler_s": self.timings["sampler_s"],
                        "sampler_share": self.timings["sampler_s"] / max(1e-12, self.timings["train_s"]),
                        "eval_s": self.timings["eval_s"]},
            "versions": versions(),
            "history": self.history,
        }
        if output:
            d = os.path.dirname(os.path.abspath(output))
            os.makedirs(d, exist_ok=True)
            with open(output, "w") as f:
                json.dump(result, f, indent=2)
        return result


def train(config: TrainConfig | dict, *, resume=False, output=None, kg=None, progress=None, log=print) -> dict:
    cfg = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(config)
    return Trainer(cfg, kg=kg, progress=progress, log=log).run(resume=resume, output=output)
