"""Knowledge-graph completion as a training task: sLCWA with any sampler and loss, filtered evaluation."""
from __future__ import annotations

import torch

from ... import losses as _losses
from ... import samplers as _samplers
from ...known import KnownSet
from ...training.task import Task, register_task
from .data import load_dataset, unseen_mask
from .config import KGConfig
from .evaluation import evaluate
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
        self.train_known = KnownSet.from_triples(kg.train, E, R).to(device)
        self.all_known = KnownSet.from_triples(torch.cat([kg.train, kg.valid, kg.test]), E, R).to(device)
        self.model = create_model(cfg.model, E, R, cfg.dim, regularizer=cfg.regularizer, reg_weight=cfg.reg_weight,
                                  **cfg.model_options)
        if cfg.encoder == "rgcn":
            self.model.encoder = RGCN(kg.train, E, R, self.model.entity.weight.shape[1])
        self.model.to(device)
        self.sampler = _samplers.create(cfg.sampler, num_negatives=cfg.num_negatives,
                                        known=self.train_known if cfg.filtered_sampling else None,
                                        num_entities=E, num_relations=R, **cfg.sampler_options)
        self.loss = _losses.create(cfg.loss, **cfg.loss_options)

    def batches(self, generator):
        tr = self.data.train
        perm = torch.randperm(tr.shape[0], generator=generator)
        for s in range(0, tr.shape[0], self.cfg.batch_size):
            yield tr[perm[s : s + self.cfg.batch_size]].to(self.device)

    def step(self, P, generator):
        model = self.model
        with self.clock.measure("sampler"):
            neg = self.sampler.sample(P, scorer=model, generator=generator)
        pos_s, neg_s = model.forward_scores(P, neg)
        w = None
        if self.cfg.importance_weighting and neg.log_prob is not None:
            w = _losses.importance_weights(neg.log_prob, neg.valid)
        return self.loss(pos_s, neg_s, valid=neg.valid, weights=w) + model.regularization(P)

    def after_step(self, batch):
        self.model.post_step()

    def evaluate(self, split):
        return evaluate(self.model, self.splits[split], self.all_known, batch_size=self.cfg.eval_batch_size,
                        tie=self.cfg.tie)

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
        return (f"filtered ranking of heads and tails against all {self.data.num_entities} entities "
                f"(filter: train+valid+test), ties {self.cfg.tie}")
