"""Knowledge-graph completion as a training task: sLCWA with any sampler and loss, filtered evaluation."""
from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F

from ... import losses as _losses
from ... import samplers as _samplers
from ...known import KnownSet
from ...training.task import Task, register_task
from .data import load_dataset, unseen_mask
from .config import KGConfig
from .evaluation import evaluate, inverse_triples, side_ranks, summarize
from .models import RGCN, create_model


@register_task("kg")
class KGTask(Task):
    """sLCWA training: each batch of training triples gets ``num_negatives`` negatives from the sampler (which
    mines with the model itself when it is a hard sampler); the loss combines positive and negative scores.
    Evaluation ranks every test triple's head and tail against all entities, filtered by train + valid + test."""

    Config = KGConfig
    primary_metric = "mrr"
    table_columns = [("MRR", "test.mrr", "{:.4f}"), ("H@1", "test.hits@1", "{:.4f}"),
                     ("H@3", "test.hits@3", "{:.4f}"), ("H@10", "test.hits@10", "{:.4f}"),
                     ("MR", "test.mr", "{:.1f}"), ("val MRR", "valid.mrr", "{:.4f}"),
                     ("epochs", "epochs_trained", "{:.0f}"), ("s/epoch", "timings.epoch_s", "{:.3f}"),
                     ("neg. time", "timings.sampler_share", "{:.1%}")]

    def __init__(self, cfg: KGConfig, *, data=None, device: torch.device):
        super().__init__(cfg, data=data, device=device)
        kg = data if data is not None else load_dataset(cfg.dataset)
        self.data = kg
        unseen_valid, unseen_test = unseen_mask(kg, kg.valid), unseen_mask(kg, kg.test)
        self.unseen_counts = {"valid": int(unseen_valid.sum()), "test": int(unseen_test.sum())}
        self.splits = {"train": kg.train, "valid": kg.valid, "test": kg.test}
        if cfg.unseen == "drop":
            self.splits["valid"], self.splits["test"] = kg.valid[~unseen_valid], kg.test[~unseen_test]
        E, R = kg.num_entities, kg.num_relations
        both = lambda t: torch.cat([t, inverse_triples(t, R)]) if cfg.reciprocal else t  # noqa: E731
        self.train_triples = both(kg.train)
        R_model = 2 * R if cfg.reciprocal else R
        self.train_known = KnownSet.from_triples(self.train_triples, E, R_model).to(device)
        self.all_known = KnownSet.from_triples(both(torch.cat([kg.train, kg.valid, kg.test])), E, R_model).to(device)
        self.model = create_model(cfg.model, E, R, cfg.dim, regularizer=cfg.regularizer, reg_weight=cfg.reg_weight,
                                  reciprocal=cfg.reciprocal, dropout=cfg.dropout, **cfg.model_options)
        if cfg.encoder == "rgcn":
            self.model.encoder = RGCN(kg.train, E, R, self.model.entity.weight.shape[1], **cfg.encoder_options)
        self.model.to(device)
        if cfg.entity_layout == "sharded":
            if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
                raise ValueError("TrainConfig: entity_layout='sharded' needs a data-parallel run (launch with "
                                 "torchrun --nproc_per_node N -m hardneg train ...)")
            # sparse row gradients where the optimiser takes them and they equal the dense update
            sparse = cfg.optimizer in ("sgd", "adagrad") and not cfg.weight_decay
            self.model.shard_entities(sparse_grad=sparse)
        opts = dict(cfg.sampler_options)
        if cfg.reciprocal:
            opts.setdefault("side", "tail")
        self.sampler = _samplers.create(cfg.sampler, num_negatives=cfg.num_negatives,
                                        known=self.train_known if cfg.filtered_sampling else None,
                                        num_entities=E, num_relations=R_model, **opts)
        self.loss = _losses.create(cfg.loss, **cfg.loss_options)
        self._pending = None  # (positives, negatives, generator) of the last step, for a trainable sampler
        if cfg.training_mode == "kvsall":  # every (anchor, side) query of the training graph, once
            sides = ("tail",) if cfg.reciprocal else ("tail", "head")
            self.queries = [(s, torch.unique(self.train_triples[:, :2] if s == "tail" else self.train_triples[:, 1:],
                                             dim=0)) for s in sides]

    def batches(self, generator):
        if self.cfg.training_mode == "kvsall":
            yield from self._query_batches(generator)
            return
        tr = self.train_triples
        perm = torch.randperm(tr.shape[0], generator=generator)
        for s in range(0, tr.shape[0], self.cfg.batch_size):
            yield tr[perm[s : s + self.cfg.batch_size]].to(self.device)

    def _query_batches(self, generator):
        allq = torch.cat([torch.cat([a, torch.full((a.shape[0], 1), i)], 1) for i, (_, a) in enumerate(self.queries)])
        perm = torch.randperm(allq.shape[0], generator=generator)
        for s in range(0, allq.shape[0], self.cfg.batch_size):
            yield allq[perm[s : s + self.cfg.batch_size]].to(self.device)  # [b, 3]: anchor (2 ids), side index

    def step(self, P, generator):
        mode = self.cfg.training_mode
        if mode == "1vsall":
            return self._one_vs_all(P)
        if mode == "kvsall":
            return self._k_vs_all(P)
        model = self.model
        with self.clock.measure("sampler"):
            scorer = model.sampling_view() if self.sampler.requires_scorer else model
            neg = self.sampler.sample(P, scorer=scorer, generator=generator)
        if self.sampler.trainable:
            self._pending = (P, neg, generator)
        rows = contextlib.nullcontext()
        if model.sharded:  # every entity row of this step in one collective lookup
            rows = model.entity.prefetch(torch.cat([P[:, 0], P[:, 2], neg.ids.clamp_min(0).reshape(-1)]))
        with rows:
            pos_s, neg_s = model.forward_scores(P, neg)
            reg = model.regularization(P)
        w = None
        if self.cfg.importance_weighting and neg.log_prob is not None:
            w = _losses.importance_weights(neg.log_prob, neg.valid)
        return self.loss(pos_s, neg_s, valid=neg.valid, weights=w) + reg

    def _one_vs_all(self, P):
        """Cross-entropy of the true tail (and head, without reciprocal relations) against all entities."""
        ls, model = self.cfg.label_smoothing, self.model
        loss = F.cross_entropy(model.score_all(P[:, :2], "tail"), P[:, 2], label_smoothing=ls)
        if not self.cfg.reciprocal:
            loss = 0.5 * (loss + F.cross_entropy(model.score_all(P[:, 1:], "head"), P[:, 0], label_smoothing=ls))
        return loss + model.regularization(P)

    def _k_vs_all(self, Q):
        """BCE of every entity for each query (h, r, ?) / (?, r, t): 1 for its known training answers."""
        model, ls, E = self.model, self.cfg.label_smoothing, self.data.num_entities
        losses = []
        for i, (side, _) in enumerate(self.queries):
            rows = Q[Q[:, 2] == i]
            if not rows.shape[0]:
                continue
            anchor = rows[:, :2]
            ptr, idx = self.train_known.exclusion(anchor, side=side)
            y = torch.zeros(anchor.shape[0], E, device=anchor.device)
            y[torch.repeat_interleave(torch.arange(anchor.shape[0], device=ptr.device), ptr.diff()), idx] = 1.0
            y = y * (1.0 - ls) + ls / E
            losses.append(F.binary_cross_entropy_with_logits(model.score_all(anchor, side), y, reduction="none")
                          .sum(1).mean() * rows.shape[0])
        return sum(losses) / Q.shape[0]

    def after_step(self, batch):
        """The model's constraints, then a trainable sampler's update from this step (DANS: discriminator and
        generator steps; KBGAN: the REINFORCE step rewarded by the model's score), timed as sampler time."""
        self.model.post_step()
        if self._pending is not None:
            P, neg, generator = self._pending
            self._pending = None
            with self.clock.measure("sampler"):
                self.sampler.update(P, neg, scorer=self.model, generator=generator)

    def on_epoch_start(self, epoch):
        self.sampler.on_epoch_start(epoch)

    @property
    def collective_evaluation(self) -> bool:
        """With a row-sharded table every rank evaluates the whole split together (each scores its rows)."""
        return self.model.sharded

    def evaluate(self, split):
        return evaluate(self.model, self.splits[split], self.all_known, batch_size=self.cfg.eval_batch_size,
                        tie=self.cfg.tie, reciprocal=self.cfg.reciprocal)

    def evaluate_shard(self, split, rank, world_size):
        """The filtered ranks of this rank's contiguous slice of the split (data-parallel evaluation)."""
        part = self.splits[split].tensor_split(world_size)[rank]
        return side_ranks(self.model, part, self.all_known, batch_size=self.cfg.eval_batch_size, tie=self.cfg.tie,
                          reciprocal=self.cfg.reciprocal)

    def merge_shards(self, split, parts):
        """The metrics of the concatenated ranks: equal to :meth:`evaluate` on one process."""
        return summarize({s: torch.cat([p[s] for p in parts]) for s in parts[0]}, self.cfg.tie)

    def export(self):
        """Entity vectors (after the encoder, if any) and relation vectors, with their names. ComplEx / RotatE
        rows are [real | imaginary]; RotatE relations are phases."""
        with torch.no_grad():
            ent = self.model.entity.full() if self.model.sharded else self.model.entity_vectors().detach()
        rels = list(self.data.relations)
        if self.cfg.reciprocal:
            rels = rels + [f"{r}^-1" for r in rels]
        return {"entity": {"names": list(self.data.entities), "weight": ent},
                "relation": {"names": rels, "weight": self.model.relation.weight.detach()}}

    def state_dict(self):
        return {"sampler": self.sampler.state_dict()}

    def load_state_dict(self, state):
        self.sampler.load_state_dict(state["sampler"])

    def describe(self):
        kg = self.data
        return {"name": kg.name, "entities": kg.num_entities, "relations": kg.num_relations,
                "train": int(kg.train.shape[0]), "valid": int(self.splits["valid"].shape[0]),
                "test": int(self.splits["test"].shape[0]), "unseen_in_train": self.unseen_counts,
                "unseen_policy": self.cfg.unseen}

    def protocol(self):
        rec = "; heads asked as tails of the inverse relation" if self.cfg.reciprocal else ""
        return (f"filtered ranking of heads and tails against all {self.data.num_entities} entities "
                f"(filter: train+valid+test), ties {self.cfg.tie}{rec}")
