"""Static link prediction as a training task: GCN / GAT / SEAL with any sampler (uniform, dns, khop, mebns ...)."""
from __future__ import annotations

import torch
from torch.func import functional_call
import torch.nn.functional as F

from ... import losses as _losses
from ... import samplers as _samplers
from ...known import KnownSet
from ...samplers.linkpred import MeBNSSampler
from ...training.task import Task, register_task
from . import mebns as _mebns
from .config import LinkPredConfig
from .data import LinkPredDataset, load_dataset, train_batches
from .embedding import node_embedding
from .evaluation import evaluate
from .models import SEAL, GraphLinkPredictor, create_model, head_parameters, score_batch


@register_task("linkpred")
class LinkPredTask(Task):
    """Each batch of training edges (randomly oriented) gets ``num_negatives`` negatives per edge from the
    sampler, which mines with the model itself when it is a hard sampler; the loss combines positive and
    negative scores. Node encoders run over the training graph once per step; SEAL extracts the enclosing
    subgraphs of the batch's positives and negatives. Evaluation: :mod:`.evaluation` on the split's fixed
    negatives. With ``sampler="mebns"`` the teacher is trained (or loaded) and the meta set collected before
    the first epoch, and each step runs the bi-level re-weighting (:mod:`hardneg.samplers.linkpred`)."""

    Config = LinkPredConfig
    primary_metric = "auc"
    table_columns = [("AUC", "test.auc", "{:.4f}"), ("AP", "test.ap", "{:.4f}"), ("H@20", "test.hits@20", "{:.4f}"),
                     ("H@50", "test.hits@50", "{:.4f}"), ("H@100", "test.hits@100", "{:.4f}"),
                     ("MRR", "test.mrr", "{:.4f}"), ("val AUC", "valid.auc", "{:.4f}"),
                     ("epochs", "epochs_trained", "{:.0f}"), ("s/epoch", "timings.epoch_s", "{:.3f}"),
                     ("neg. time", "timings.sampler_share", "{:.1%}")]

    def __init__(self, cfg: LinkPredConfig, *, data=None, device: torch.device):
        super().__init__(cfg, data=data, device=device)
        ds = data if data is not None else load_dataset(cfg.dataset)
        if not isinstance(ds, LinkPredDataset):
            raise TypeError(f"linkpred: 'data' must be a LinkPredDataset (got {type(ds).__name__})")
        if cfg.largest_component:
            ds = ds.largest_component()
        self.data = ds
        seed = cfg.seed if cfg.split_seed is None else cfg.split_seed
        self.split = ds.split(seed=seed, num_hits_negatives=cfg.num_hits_negatives,
                              num_mrr_negatives=cfg.mrr_negatives)
        self.primary_metric = cfg.select_metric
        N = ds.num_nodes
        self.node_embedding, self.embedding_info = node_embedding(cfg, ds, self.split)
        self.model = create_model(cfg, ds, self.split, embedding=self.node_embedding).to(device)
        self.train_pos = self.split.train.to(device)
        loops = torch.arange(N)
        known = torch.stack([loops, loops], 1)  # a pair (u, u) is never a negative
        if cfg.filtered_sampling:
            known = torch.cat([self.split.train, known])
        self.known = KnownSet.from_edges(known, N, directed=False).to(device)
        opts = dict(cfg.sampler_options)
        if cfg.sampler in ("khop", "mebns"):
            opts.setdefault("edges", self.split.train)
        self.sampler = _samplers.create(cfg.sampler, num_negatives=cfg.num_negatives, known=self.known,
                                        num_entities=N, **opts)
        self.loss = _losses.create(cfg.loss, **cfg.loss_options)
        self.mebns_info: dict = {}
        if isinstance(self.sampler, MeBNSSampler):
            self._prepare_mebns()

    # ------------------------------------------------------------------ MeBNS
    def _prepare_mebns(self):
        cfg, s = self.cfg, self.sampler
        g = torch.Generator().manual_seed(cfg.seed + 7919)
        with self.clock.measure("teacher"):
            self.teacher, info = _mebns.prepare_teacher(cfg, self.data, self.split, s, self.device, g,
                                                        embedding=self.node_embedding)
            s.set_teacher(_mebns.teacher_scorer(self.teacher))
        with self.clock.measure("meta_set"):
            self.meta_pairs, self.meta_labels, stats = _mebns.collect_meta(self.teacher, self.split, s, cfg,
                                                                           self.device, g)
        s.reweighter.to(self.device)
        self._meta_names = None if s.meta_params == "all" else head_parameters(self.model)
        self.meta_sub = self.model.subgraphs(self.meta_pairs) if isinstance(self.model, SEAL) else None
        self.mebns_info = {"teacher": info, "meta_set": stats, "teacher_s": self.clock["teacher"],
                           "meta_set_s": self.clock["meta_set"]}

    def _mebns_step(self, P, generator):
        model, s = self.model, self.sampler
        seal = isinstance(model, SEAL)
        z = None if seal else model.encode()
        with self.clock.measure("sampler"):
            scorer = model.scorer(generator) if seal else model.scorer(z.detach())
            neg = s.sample(P, scorer=scorer, generator=generator)
            tl = s.teacher_scores(neg)
        pos_s, neg_s = score_batch(model, P, neg, z=z, generator=generator)
        t = self._pair_terms(pos_s, neg_s, neg.valid)
        if s.step % s.meta_every == 1 % s.meta_every:  # the first step of each cycle (s.step counts sample calls)
            meta_arg = self.meta_sub if seal else self.meta_pairs

            def meta_loss(params):
                sc = functional_call(model, params, (meta_arg,))
                return F.binary_cross_entropy_with_logits(sc, self.meta_labels)

            with self.clock.measure("meta"):
                w = s.reweighter.step(model, t, meta_loss, tl, neg.valid, self._meta_names)
        else:
            with torch.no_grad():
                w = s.reweighter.weights(s.reweighter.features(t, tl), neg.valid)
        v = neg.valid
        return (w * torch.where(v, t, torch.zeros_like(t))).sum() / v.sum().clamp_min(1)

    def _pair_terms(self, pos_s, neg_s, valid):
        """Per-negative losses [B, n]: the configured loss of (positive, that one negative)."""
        B, n = neg_s.shape
        return self.loss(pos_s[:, None].expand(B, n).reshape(-1), neg_s.reshape(-1, 1),
                         valid=valid.reshape(-1, 1), reduction="none").view(B, n)

    # ------------------------------------------------------------------ training
    def batches(self, generator):
        yield from train_batches(self.split.train, self.cfg.batch_size, generator, self.device)

    def step(self, P, generator):
        if isinstance(self.sampler, MeBNSSampler):
            return self._mebns_step(P, generator)
        model = self.model
        z = None
        if isinstance(model, GraphLinkPredictor):
            z = model.encode()
        with self.clock.measure("sampler"):
            scorer = None
            if self.sampler.requires_scorer:
                scorer = model.scorer(z.detach()) if z is not None else model.scorer(generator)
            neg = self.sampler.sample(P, scorer=scorer, generator=generator)
        pos_s, neg_s = score_batch(model, P, neg, z=z, generator=generator)
        w = None
        if self.cfg.importance_weighting and neg.log_prob is not None:
            w = _losses.importance_weights(neg.log_prob, neg.valid)
        return self.loss(pos_s, neg_s, valid=neg.valid, weights=w)

    # ------------------------------------------------------------------ evaluation and reporting
    def evaluate(self, split):
        chunk = 4096 if isinstance(self.model, SEAL) else 1 << 18
        return evaluate(self.model.pair_scorer(), self.split, split, chunk=chunk)

    def export(self):
        if not isinstance(self.model, GraphLinkPredictor):
            return {}
        with torch.no_grad():
            z = self.model.encode().detach()
        graph = _mebns.graph_fingerprint(self.split.train, self.data.num_nodes)  # SEAL's node_embedding checks it
        return {"node": {"names": None, "weight": z, "graph": graph}}

    def state_dict(self):
        return {"sampler": self.sampler.state_dict()}

    def load_state_dict(self, state):
        self.sampler.load_state_dict(state["sampler"])

    def describe(self):
        d = self.data.describe(self.split)
        if isinstance(self.model, SEAL):
            d["seal"] = {"hops": self.model.hops, "sort_k": self.model.k, "readout": self.model.readout}
            if self.embedding_info:
                d["seal"]["node_embedding"] = self.embedding_info
        if self.mebns_info:
            d["mebns"] = self.mebns_info
        return d

    def protocol(self):
        sp = self.split
        k = sp.test_mrr_neg.shape[1]
        mrr = f"MRR vs {k} negatives per positive (ties 1/2)" if k else "no MRR (mrr_negatives 0)"
        return (f"random 85/5/10 edge split (seed {sp.seed}); AUC/AP vs {sp.test_neg.shape[0]} fixed 1:1 negatives "
                f"(ties 1/2); Hits@K vs {sp.hits_test_neg.shape[0]} shared negatives (OGB: strictly above the K-th, a "
                f"tie misses); {mrr}; evaluation "
                f"negatives are uniform non-edges of the full graph; best epoch by valid {self.cfg.select_metric}")
