"""Top-K recommendation as a training task: LightGCN, SASRec or a SelfGNN-style model, negatives from any
registered sampler, optional HardGNN InfoNCE term, full-ranking (and sampled) evaluation."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ... import losses as _losses
from ... import samplers as _samplers
from ..._random import uniform
from ...known import KnownSet
from ...samplers import Scorer
from ...training.task import Task, register_task
from .config import RecConfig
from .data import load_dataset
from .evaluation import Evaluator
from .models import create_model


class RowScorer(Scorer):
    """What a sampler sees of a rec model during one step: a query vector per positive row (the user, or the
    user's sequence at that position) and the item table as candidates, with ``metric``.

    ``query_vectors(anchor)`` returns the rows' own vectors when ``anchor`` is the step's user column in row order
    (what the samplers pass for the item side); for any other anchor, each user's vector is that of its last row
    in the step."""

    def __init__(self, users: torch.Tensor, query: torch.Tensor, items: torch.Tensor, metric: str = "dot"):
        self.users, self.query, self.items, self.metric = users, query, items, metric
        self._order = None

    def query_vectors(self, anchor, side="tail"):
        if side != "tail":
            raise ValueError(f"RowScorer: recommendation negatives replace the item (side 'tail') (got side={side!r})")
        if anchor.dim() == 2:
            anchor = anchor[:, 0]
        if anchor.shape == self.users.shape and torch.equal(anchor, self.users):
            return self.query
        if self._order is None:
            last = torch.arange(self.users.numel(), device=self.users.device)
            key = self.users * (self.users.numel() + 1) + last  # sort by user, then row
            self._order = torch.sort(key).indices
        su = self.users[self._order]
        pos = torch.searchsorted(su, anchor, right=True) - 1
        if bool((pos < 0).any()) or not bool((su[pos.clamp_min(0)] == anchor).all()):
            raise ValueError("RowScorer: an anchor user has no row in this step")
        return self.query[self._order[pos]]

    def candidate_vectors(self, side="tail"):
        return self.items


@register_task("rec")
class RecTask(Task):
    """Each step: the model's view of a batch (positives, query vectors, item table), ``num_negatives`` negatives
    per positive from the sampler (which mines with the same query vectors, or with the user's short-term
    vector for ``hardgnn``), the configured loss (BPR for LightGCN, BCE for SASRec, the hinge for SelfGNN), the
    model's own terms (LightGCN's L2, SelfGNN's alignment) and, with λ = ``infonce_weight`` > 0, HardGNN's InfoNCE
    over cosine similarities of the short-term vector with the positive and the negatives.

    The sampler's filter is the training interactions as a bipartite :class:`hardneg.KnownSet` (users and items
    are separate id spaces, any sizes), so ``uniform`` draws items in [0, I) and never one the user trained on. Evaluation: see
    :class:`hardneg.tasks.rec.evaluation.Evaluator`; the primary metric is full-ranking ``recall@20``."""

    Config = RecConfig
    primary_metric = "recall@20"
    table_columns = [("R@20", "test.recall@20", "{:.4f}"), ("N@20", "test.ndcg@20", "{:.4f}"),
                     ("R@10", "test.recall@10", "{:.4f}"), ("N@10", "test.ndcg@10", "{:.4f}"),
                     ("HR@10 1+100", "test.hr@10_1+100", "{:.4f}"), ("N@10 1+100", "test.ndcg@10_1+100", "{:.4f}"),
                     ("HR@10 1+999", "test.hr@10_1+999", "{:.4f}"), ("N@10 1+999", "test.ndcg@10_1+999", "{:.4f}"),
                     ("epochs", "epochs_trained", "{:.0f}"), ("s/epoch", "timings.epoch_s", "{:.1f}"),
                     ("neg. time", "timings.sampler_share", "{:.1%}")]

    @classmethod
    def result_columns(cls, result: dict) -> list[tuple[str, str, str]]:
        """``table_columns`` with one HR@10 / NDCG@10 pair per sampled protocol the run evaluated (its
        ``sampled_negatives``, e.g. 1 + 99 and 1 + 999), in place of the default 1 + 100 and 1 + 999."""
        test = result.get("test") or {}
        sizes = sorted({int(k[len("hr@10_1+"):]) for k in test if k.startswith("hr@10_1+")
                        and k[len("hr@10_1+"):].isdigit()})
        if not sizes:
            return cls.table_columns
        sampled = [c for n in sizes for c in ((f"HR@10 1+{n}", f"test.hr@10_1+{n}", "{:.4f}"),
                                              (f"N@10 1+{n}", f"test.ndcg@10_1+{n}", "{:.4f}"))]
        full = [c for c in cls.table_columns if "_1+" not in c[1]]
        return full[:4] + sampled + full[4:]

    def __init__(self, cfg: RecConfig, *, data=None, device: torch.device):
        super().__init__(cfg, data=data, device=device)
        ds = data if data is not None else load_dataset(cfg.dataset)
        self.data = ds
        protocol = cfg.protocol or ("given" if ds.given_test is not None else "leave_one_out")
        sp = ds.split(protocol)
        self.split = sp
        U, I = sp.num_users, sp.num_items  # noqa: E741
        self.known = KnownSet.from_edges(sp.train, num_sources=U, num_destinations=I).to(device)
        self.model = create_model(cfg, sp).to(device)
        self._by_user = None
        if self.model.kind == "pairs":
            self.train_rows = sp.train.to(device)
            if cfg.row_sampling == "users":
                self._by_user = _rows_by_user(self.train_rows, U)
        else:
            if cfg.row_sampling != "interactions":
                raise ValueError(f"TrainConfig: 'row_sampling' {cfg.row_sampling!r} is for pair models (lightgcn); "
                                 f"{cfg.model} already takes users per step")
            self.train_rows = self.model.trainable(sp.train).to(device)
        self.sampler = _samplers.create(cfg.sampler, num_negatives=cfg.num_negatives, known=self.known,
                                        **cfg.sampler_options)
        self.loss = _losses.create(cfg.loss, **cfg.loss_options)
        self.lam = cfg.lam()
        self.short_mining = cfg.sampler == "hardgnn"
        self.evaluator = Evaluator(sp, sampled=cfg.sampled_negatives, batch_size=cfg.eval_batch_size, device=device)

    # ------------------------------------------------------------------ training
    def batches(self, generator):
        rows = self.train_rows
        if self._by_user is None:  # every training row once, in a random order
            rows = rows[torch.randperm(rows.shape[0], generator=generator).to(rows.device)]
        else:  # LightGCN's UniformSample_original: a uniform user, then a uniform item of theirs, n times
            rows = _draw_by_user(self._by_user, rows.shape[0], generator)
        for s in range(0, rows.shape[0], self.cfg.batch_size):
            yield rows[s:s + self.cfg.batch_size]

    def step(self, batch, generator):
        cfg, model = self.cfg, self.model
        view = model.train_view(batch, generator)
        P = torch.stack([view.users, view.items], 1)
        mine = view.short if self.short_mining else view.query
        scorer = RowScorer(view.users, mine.detach(), view.table.detach())
        with self.clock.measure("sampler"):
            neg = self.sampler.sample(P, scorer=scorer, generator=generator)
        table = view.table
        pos_s = (view.query * table[view.items]).sum(-1)
        neg_v = table[neg.ids.clamp_min(0)]
        neg_s = (view.query[:, None, :] * neg_v).sum(-1)
        w = None
        if cfg.importance_weighting and neg.log_prob is not None:
            w = _losses.importance_weights(neg.log_prob, neg.valid)
        loss = self.loss(pos_s, neg_s, valid=neg.valid, weights=w) + view.extra
        if cfg.reg_weight:
            loss = loss + cfg.reg_weight * model.regularization(view, neg.ids, neg.valid)
        if self.lam:
            a = F.normalize(view.short, dim=-1)
            pos_c = (a * F.normalize(table[view.items], dim=-1)).sum(-1)
            neg_c = (a[:, None, :] * F.normalize(neg_v, dim=-1)).sum(-1)
            loss = loss + self.lam * _losses.infonce(pos_c, neg_c, valid=neg.valid,
                                                     temperature=cfg.infonce_temperature)
        return loss

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, split):
        view = self.model.eval_view(tuple(x.to(self.device) for x in self.evaluator.history(split)))
        return self.evaluator.evaluate(split, view)

    def describe(self):
        d = self.data.describe(self.split)
        d["trained_rows"] = int(self.train_rows.shape[0])
        return d

    def protocol(self):
        sp = self.split
        if sp.protocol == "given":
            where = ("the given test items (valid = test: the split has no validation part, as LightGCN-PyTorch "
                     "reports)")
        else:
            where = ("leave-one-out: valid = second-to-last item (training items excluded), test = last item "
                     "(training and validation items excluded)")
        s = (f"full ranking over all {sp.num_items} items with each user's history excluded (fused topk_mine, "
             f"ties to the smaller item id) on {where}; recall/precision/ndcg/hr@10,20")
        if sp.protocol == "leave_one_out" and self.cfg.sampled_negatives:
            ns = ", ".join(f"1 + {n}" for n in self.cfg.sampled_negatives)
            s += (f"; sampled: the held-out item among {ns} never-interacted items fixed by seed (valid 0, test 1), "
                  f"ties pessimistic")
        skipped = int(sp.skipped_users.numel())
        if skipped:
            s += f"; {skipped} users without training items skipped"
        return s

    def export(self):
        with torch.no_grad():
            view = self.model.eval_view(tuple(x.to(self.device) for x in self.evaluator.history("test")))
            out = {"item": {"names": _names(self.data.item_ids), "weight": view.items.detach()}}
            if self.model.kind == "pairs":
                users = torch.arange(self.split.num_users, device=self.device)
                out["user"] = {"names": _names(self.data.user_ids), "weight": view.query(users).detach()}
        return out

    def state_dict(self):
        return {"sampler": self.sampler.state_dict()}

    def load_state_dict(self, state):
        self.sampler.load_state_dict(state["sampler"])


def _names(ids):
    return None if ids is None else [str(int(x)) for x in ids]


def _rows_by_user(rows: torch.Tensor, num_users: int):
    """(rows sorted by user, each user's first row, each user's row count, the users with a row)."""
    order = torch.sort(rows[:, 0], stable=True).indices
    deg = torch.bincount(rows[:, 0], minlength=num_users)
    start = torch.cumsum(deg, 0) - deg
    return rows[order], start, deg, torch.nonzero(deg).flatten()


def _draw_by_user(by_user, n: int, generator) -> torch.Tensor:
    """``n`` training rows, each of a uniform user among those with a row, then a uniform row of that user.

    LightGCN-PyTorch draws the user in [0, #users) and skips users without training items, which gives the same
    distribution over rows (and ``n`` rows here whatever the users)."""
    sorted_rows, start, deg, active = by_user
    dev = sorted_rows.device
    pick = (uniform((n,), generator, dev) * active.numel()).long().clamp_max(active.numel() - 1)
    u = active[pick]
    off = (uniform((n,), generator, dev) * deg[u]).long().clamp_max(deg[u] - 1)
    return sorted_rows[start[u] + off]

