"""Future-link prediction on continuous-time interaction graphs (TGN / TGAT) as a training task.

Training streams the training events chronologically in batches of ``batch_size``. For each batch: the
sources, destinations and negatives are embedded at their event times with neighbours strictly before the
batch's first time (so the events of a batch never see each other; ``neighbor_cutoff="event"``: strictly before
each event's own time, as the TGN / TGAT reference code and DyGLib do); the sampler draws the negatives (ENS mines
with the fresh source embeddings against its cached destination table); the loss is BCE on the MLP decoder's
logits; after the optimiser step the batch is observed (TGN: memory update). Each epoch starts from an empty
memory; the neighbour graph of training holds the training events only (in the inductive setting the held-out
nodes' events are absent), evaluation reads all events (DyGLib's full neighbour sampler).

Evaluation streams the part's events the same way from the memory at the end of training (valid,
new_node_valid) or at the end of validation (test, new_node_test), as DyGLib does, and reports the four views:

* AP / AUC with one negative per event for each of DyGLib's negative kinds (random, historical, inductive;
  :meth:`TemporalDataset.eval_negatives`, seeded as DyGLib: valid 0, new-node valid 1, test 2, new-node test 3),
  the per-batch average (DyGLib's number, ``ap``) and the global value (``ap_global``);
* TGB-style MRR of each event's true destination against all destinations (``mrr``), and Recall@10/20;
* MRR against 100 fixed negatives per event, half historical and half random (``mrr_100``,
  :meth:`TemporalDataset.mrr_negatives`).

For the ranking views every destination is embedded at the batch's first time (one table per evaluation
batch), the sources at their own times; other true destinations of the same (source, time) never count.
"""
from __future__ import annotations

import contextlib

import torch

from ... import losses as _losses
from ... import samplers as _samplers
from ...samplers.base import distinct_rows
from ...ops.mining import mine_decoder_table
from ...training.task import Task, register_task
from . import evaluation as E
from .config import TemporalConfig
from .data import STRATEGIES, TemporalDataset, load_dataset
from .models import create_model


class _Batch:
    __slots__ = ("idx", "num_positives")

    def __init__(self, idx):
        self.idx = idx
        self.num_positives = idx.numel()

    def __len__(self):
        return self.num_positives


class BatchScorer:
    """What the event samplers see of the model for one batch: the fresh source embeddings (one row per event)
    and, on demand, every destination's embedding at the batch's first time (ENS's candidate table). With the
    model's ``pair_history``, ``score_table`` scores with the decoder's pair term of each query's event
    (``event_scores``)."""

    metric = "dot"

    def __init__(self, task, z_src, t0, P=None, t=None, window=None):
        self.task, self.z_src, self.t0, self.P, self.t = task, z_src, t0, P, t
        self.event_scores = bool(task.model.pair_history) and P is not None
        self.window = window  # the batch's pair-history window, when the caller has it (ENS's step does)

    def _window(self, events):
        """The pair-history window of the batch's ``events``: rows of the whole batch's window when given, else
        their own."""
        if self.window is None:
            return self.task.pair_window(self.P[events, 0], self.t[events], self.task.train_graph, self.t0)
        return tuple(x[events] for x in self.window)

    def query_vectors(self, anchor, side="tail"):
        return self.z_src

    def candidate_vectors(self, side="tail"):
        with _mining(self.task.model):  # no dropout in the mined table
            return self.task.destination_table(self.task.train_graph, self.t0)

    def score_table(self, query, table, events=None):
        """[R, N] logits of the link decoder for source embeddings ``query`` [R, d] against destination
        embeddings ``table`` [N, d] (ENS's ``rank_by="score"``); with ``events`` [R] (the batch's rows of the
        queries) and the model's ``pair_history``, with each event's pair term."""
        task, dec = self.task, self.task.model.decoder
        with _mining(task.model):
            a, c = dec.source(query), dec.destination(table)
            uc, inv = distinct_rows(c)  # the nodes without history share one row (half of UCI's table on average)
            S = dec.table(a, uc)[:, inv]
            if events is not None and self.event_scores:
                win = task.pair_window(self.P[events, 0], self.t[events], task.train_graph, self.t0)
                off = task.model.pair_entries(win, task.data.dst_min, task.data.dst_max)
                S = E.offset_scores(S, dec.combine, a, c, off, torch.arange(S.shape[0], device=S.device), 0,
                                    S.shape[1])
            return S


    def topk_table(self, query, table, k, exclude=None, tie_break=None, events=None):
        """int64 [R, k]: the k destinations of ``table`` [N, d] that the link decoder ranks highest for each
        source embedding of ``query`` [R, d] (-1 past the admissible ones), as :meth:`score_table` scores them
        and in the order of a stable sort by ``tie_break`` keys, but fused (:func:`hardneg.ops.mlp_topk_mine`:
        no [R, N] scores, no [R, N, d] hidden layer); with ``events``, each event's pair term as its offsets."""
        task, dec = self.task, self.task.model.decoder
        # inference mode only, no eval() switch (a walk over every module, 0.2 ms a step): the decoder and the pair
        # term hold no dropout
        with torch.inference_mode():
            shared = task.sampler.table_rows(table) if isinstance(task.sampler, _samplers.ENSSampler) else None
            rows, index = (table, None) if shared is None else shared  # the cached table's distinct rows
            a, c = dec.source(query), dec.destination(rows)
            off = None
            if events is not None and self.event_scores:
                off = task.model.pair_offsets(self._window(events), task.data.dst_min, task.data.dst_max)
            return mine_decoder_table("ens", a, c, dec.out.weight[0], k, exclude, off, tie_break, index)


@contextlib.contextmanager
def _mining(model):
    """Evaluation mode (no dropout) and inference mode (no gradients, no autograd bookkeeping), restored after:
    what ENS's queries and table are embedded in. Their tensors are only mined, never differentiated."""
    was = model.training
    _set_training(model, False)
    try:
        with torch.inference_mode():
            yield
    finally:
        _set_training(model, was)


def _set_training(model, mode: bool):
    """``model.train(mode)`` as one loop over a cached module list (``nn.Module.train`` recurses through every
    child, about 0.1 ms for TGN, twice per ENS step); ``model.train`` itself when a module overrides ``train``."""
    mods = model.__dict__.get("_hn_modules")  # the model's modules are fixed once it is built
    if mods is None:
        mods = list(model.modules())
        if any(type(m).train is not torch.nn.Module.train for m in mods):
            mods = False
        model.__dict__["_hn_modules"] = mods
    if mods is False:
        model.train(mode)
        return
    for m in mods:  # a plain attribute: skip nn.Module.__setattr__'s parameter/buffer checks
        m.__dict__["training"] = mode


@register_task("temporal")
class TemporalTask(Task):
    """TGN / TGAT trained on chronological batches with an event sampler (random, historical, inductive, ens,
    ens_score), evaluated with DyGLib's AP/AUC under three negative kinds and TGB-style MRR."""

    Config = TemporalConfig
    primary_metric = "ap"
    table_columns = [("AP rnd", "test.ap", "{:.4f}"), ("AP hist", "test.ap_historical", "{:.4f}"),
                     ("AP ind", "test.ap_inductive", "{:.4f}"), ("AUC rnd", "test.auc", "{:.4f}"),
                     ("MRR all", "test.mrr", "{:.4f}"), ("R@10", "test.recall@10", "{:.4f}"),
                     ("MRR 100", "test.mrr_100", "{:.4f}"), ("val AP", "valid.ap", "{:.4f}"),
                     ("epochs", "epochs_trained", "{:.0f}"), ("s/epoch", "timings.epoch_s", "{:.2f}"),
                     ("neg. time", "timings.sampler_share", "{:.1%}")]
    plot_metrics = ("ap", "ap_historical", "ap_inductive", "mrr")
    data_parallel_unsupported = ("its batches are chronological slices of one event stream: TGN's memory and the "
                                 "neighbour table are updated with every event of a batch, in order, so a batch "
                                 "cannot be split across ranks; train it in one process")

    def __init__(self, cfg: TemporalConfig, *, data=None, device: torch.device):
        super().__init__(cfg, data=data, device=device)
        ds = data if data is not None else load_dataset(cfg.dataset)
        if not isinstance(ds, TemporalDataset):
            raise TypeError(f"temporal task: 'data' must be a TemporalDataset (got {type(ds).__name__})")
        self.data = ds
        self.split = ds.split(inductive=cfg.inductive, seed=cfg.split_seed)
        self.t = ds.t.to(device)
        self.src, self.dst = ds.src.to(device), ds.dst.to(device)
        self.train_graph = ds.graph(self.split.train).to(device)
        self.full_graph = ds.graph().to(device)
        feats = ds.edge_features if cfg.edge_features else None
        self.model = create_model(cfg.model, ds.num_nodes, dim=cfg.dim, time_dim=cfg.time_dim,
                                  edge_features=feats, num_neighbors=cfg.model_setting("num_neighbors"),
                                  num_layers=cfg.model_setting("num_layers"), heads=cfg.num_heads,
                                  dropout=cfg.dropout, strategy=cfg.neighbor_strategy,
                                  **cfg.model_options).to(device)
        self.sampler = _samplers.create(cfg.sampler, num_negatives=cfg.num_negatives, num_entities=ds.num_nodes,
                                        **self._sampler_context(cfg.sampler), **cfg.sampler_options)
        self.loss = _losses.create(cfg.loss, **cfg.loss_options)
        self._neg_cache: dict = {}
        self._last_sampler_stats = {}

    # ------------------------------------------------------------------ helpers
    def _sampler_context(self, name: str) -> dict:
        ctx = {"low": self.data.dst_min, "high": self.data.dst_max}
        if name in ("historical", "ens", "ens_score"):  # history, and ENS's exclude_history
            ctx["graph"] = self.train_graph
        if name == "inductive":
            ctx["pool"] = self.inductive_pool()
        return ctx

    def inductive_pool(self) -> torch.Tensor:
        """Destinations first seen after the training cut (``val_time``): never in a training event."""
        ds = self.data
        first = torch.full((ds.num_nodes,), float("inf"), dtype=torch.float64)
        tf = ds.t.double()
        first.scatter_reduce_(0, ds.src, tf, "amin")
        first.scatter_reduce_(0, ds.dst, tf, "amin")
        cand = ds.dst_nodes
        return cand[first[cand] > self.split.val_time]

    def embed(self, nodes, times, graph, t0, generator):
        """Embeddings of ``nodes`` at their events' ``times`` [M] (the graph's dtype), with the configured
        neighbour cut-off (``neighbor_cutoff``: the batch's first time ``t0``, or each event's own time) and
        time reference (``event_times``)."""
        if self.cfg.neighbor_cutoff == "event":
            return self.model.embed(nodes, times, graph, times, generator=generator)
        return self.model.embed(nodes, times if self.cfg.event_times else None, graph, t0, generator=generator)

    def pair_window(self, src, t, graph, t0):
        """The model's pair-history window of sources ``src`` at their events' times ``t`` with the configured
        cut-off (:meth:`TemporalModel.pair_window`); None without the model's ``pair_history``."""
        qt = t if self.cfg.neighbor_cutoff == "event" else t0
        return self.model.pair_window(src, t, graph, qt)

    def destination_table(self, graph, t0) -> torch.Tensor:
        """Embeddings [N_dst, d] of every destination at time ``t0`` (neighbours strictly before it)."""
        return self.model.table(self.data.dst_nodes.to(self.device), graph, t0)

    # ------------------------------------------------------------------ training
    def batches(self, generator):
        idx = self.split.train
        bs = self.cfg.batch_size
        for lo in range(0, idx.numel(), bs):
            yield _Batch(idx[lo:lo + bs].to(self.device))

    def on_epoch_start(self, epoch):
        self.model.reset_state()
        if isinstance(self.sampler, _samplers.ENSSampler):
            # the table follows the stream: one kept from the end of the last epoch would mine this epoch's first
            # batches with memories of events still to come
            self.sampler.reset_cache()

    def on_epoch_end(self, epoch):
        self.model.save_state("train_end")
        self.model.invalidate("valid_end")

    def step(self, batch, generator):
        m, i = self.model, batch.idx
        src, dst, t = self.src[i], self.dst[i], self.t[i]
        B, t0 = i.numel(), t[0].item()
        g, P = self.train_graph, torch.stack([src, dst], 1)
        win = None
        if isinstance(self.sampler, _samplers.ENSSampler):
            z, neg, n, win = self._ens_embed(P, t, g, t0, generator)
        elif self.sampler.requires_scorer:  # mines with the fresh source embeddings: embed them first
            with m.shared_reads():
                z = self.embed(torch.cat([src, dst]), t.repeat(2), g, t0, generator)
                with self.clock.measure("sampler"):
                    neg = self.sampler.sample(P, scorer=BatchScorer(self, z[:B], t0, P, t), generator=generator,
                                              times=t)
                n = neg.ids.shape[1]
                z_neg = self.embed(neg.ids.clamp_min(self.data.dst_min).flatten(), t.repeat_interleave(n), g, t0,
                                   generator)
            z = torch.cat([z, z_neg])
        else:  # one embedding pass for sources, destinations and negatives
            with self.clock.measure("sampler"):
                neg = self.sampler.sample(P, generator=generator, times=t)
            n = neg.ids.shape[1]
            nodes = torch.cat([src, dst, neg.ids.clamp_min(self.data.dst_min).flatten()])
            z = self.embed(nodes, torch.cat([t, t, t.repeat_interleave(n)]), g, t0, generator)
        z_src, z_dst, z_neg = z.split([B, B, B * n])  # one backward (a cat), not three zero-filled slices
        a = m.decoder.source(z_src)
        c_dst, c_neg = m.decoder.destination(z_dst), m.decoder.destination(z_neg).view(B, n, -1)
        if win is None:
            win = self.pair_window(P[:, 0], t, g, t0)
        if win is not None:  # the decoder's pair-history term (the model's pair_history)
            c_dst = c_dst + m.pair_term(win, P[:, 1:])[:, 0]
            c_neg = c_neg + m.pair_term(win, neg.ids)
        pos = m.decoder.combine(a, c_dst)
        negs = m.decoder.combine(a[:, None, :], c_neg)
        w = None
        if self.cfg.importance_weighting and neg.log_prob is not None:
            w = _losses.importance_weights(neg.log_prob, neg.valid)
        return self.loss(pos, negs, valid=neg.valid, weights=w)

    def _ens_embed(self, P, t, g, t0, generator):
        """ENS's step: the mining queries first, then one differentiable pass for everything the loss scores.

        The draft (``ENSSampler.draft``: which columns are hard, the random draws) needs no model. Only the
        events with a hard column are mined, so only their sources are embedded for the queries: without
        gradients and without dropout, as the candidate table is, from the current parameters and memory (the
        event's fresh source embedding). The sources, destinations and all negatives then go through one
        embedding pass with gradients, whose backward runs once (bench/RESULTS.md, "ENS epoch cost"). With the
        sampler's ``refresh_touched``, that pass's embeddings of the step's destinations then become their rows of
        the cached table (``ENSSampler.update_candidates``).
        The decoder's pair-history window (the model's ``pair_history``) is read once, for the score pools and the
        loss.
        Returns ``(z [2B + B·n, d]: sources, destinations, negatives row-major; the negatives; n; the window or
        None)``."""
        B, lo, m = P.shape[0], self.data.dst_min, self.model
        win = self.pair_window(P[:, 0], t, g, t0)
        with self.clock.measure("sampler"):
            draft = self.sampler.draft(P, generator=generator, times=t)
            rows = torch.nonzero(draft.counts > 0).flatten()
            q = None
            if rows.numel():
                with _mining(m):
                    q_rows = self.embed(P[rows, 0], t[rows], g, t0, generator)
                q = q_rows.new_zeros(B, q_rows.shape[1]).index_copy_(0, rows, q_rows)  # unmined rows: unused
            neg = self.sampler.sample(P, scorer=BatchScorer(self, q, t0, P, t, win), generator=generator, times=t,
                                      draft=draft)
        n = neg.ids.shape[1]
        nodes = torch.cat([P[:, 0], P[:, 1], neg.ids.clamp_min(lo).flatten()])
        z = self.embed(nodes, torch.cat([t, t, t.repeat_interleave(n)]), g, t0, generator)
        if self.sampler.refresh_touched:  # this step's own embeddings of its nodes, into the cached table
            with self.clock.measure("sampler"):
                self.sampler.update_candidates(nodes, z.detach())
        return z, neg, n, win

    def after_step(self, batch):
        i = batch.idx
        self.model.observe(self.src[i], self.dst[i], self.t[i], i)

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, split):
        m, ind = self.model, self.cfg.inductive
        rank = self.cfg.rank_eval == "all" or (split == "test" and self.cfg.rank_eval == "test")
        if not m.has_state("train_end"):  # nothing trained yet: the memory after streaming the training events
            self._replay(self.split.train, self.train_graph)
            m.save_state("train_end")
        if split == "valid":
            m.load_state("train_end")
            out = self._stream("valid", rank)
            m.save_state("valid_end")
            if ind:
                m.load_state("train_end")
                out["new_node"] = self._stream("new_node_valid", rank)
                m.load_state("valid_end")
            return out
        if split != "test":
            raise ValueError(f"evaluate: 'split' must be 'valid' or 'test' (got {split!r})")
        if not m.has_state("valid_end"):
            m.load_state("train_end")
            self._replay(self.split.valid, self.full_graph)
            m.save_state("valid_end")
        m.load_state("valid_end")
        out = self._stream("test", rank)
        if ind:
            m.load_state("valid_end")
            out["new_node"] = self._stream("new_node_test", rank)
        return out

    def _replay(self, idx, graph):
        """Observe the events ``idx`` in evaluation batches (memory only, no scores)."""
        for lo in range(0, idx.numel(), self.cfg.eval_batch_size):
            b = idx[lo:lo + self.cfg.eval_batch_size].to(self.device)
            self.model.observe(self.src[b], self.dst[b], self.t[b], b)

    def negatives(self, part: str, strategy: str):
        """DyGLib's evaluation negatives of ``part`` (cached): ``(neg_src [B], neg_dst [B])``."""
        key = (part, strategy)
        if key not in self._neg_cache:
            ns, nd = self.data.eval_negatives(self.split, part, strategy, batch_size=self.cfg.eval_batch_size)
            self._neg_cache[key] = (ns.to(self.device), nd.to(self.device))
        return self._neg_cache[key]

    def fixed_negatives(self, part: str) -> torch.Tensor:
        key = (part, "mrr")
        if key not in self._neg_cache:
            self._neg_cache[key] = self.data.mrr_negatives(self.split, part, num=self.cfg.mrr_negatives).to(self.device)
        return self._neg_cache[key]

    def _stream(self, part: str, rank: bool) -> dict:
        """Score the events of ``part`` batch by batch, observing each batch after scoring it."""
        m, cfg, ds = self.model, self.cfg, self.data
        idx = self.split.part(part).to(self.device)
        g = self.full_graph
        gen = torch.Generator().manual_seed(12345)  # uniform neighbour sampling (TGAT) repeats across calls
        negs = {s: self.negatives(part, s) for s in STRATEGIES}
        acc = {s: E.BatchedAPAUC() for s in STRATEGIES}
        greater, equal, g100, e100 = [], [], [], []
        if rank:
            fixed = self.fixed_negatives(part)
            ex_ptr, ex_dst = E.group_exclusion(ds.src[idx.cpu()], ds.t[idx.cpu()], ds.dst[idx.cpu()])
        lo_dst, bs = ds.dst_min, cfg.eval_batch_size
        for lo in range(0, idx.numel(), bs):
            b = idx[lo:lo + bs]
            B = b.numel()
            src, dst, t = self.src[b], self.dst[b], self.t[b]
            t0 = t[0].item()
            parts = [src, dst, negs["random"][1][lo:lo + B]]
            for s in ("historical", "inductive"):
                parts += [negs[s][0][lo:lo + B], negs[s][1][lo:lo + B]]
            z = self.embed(torch.cat(parts), t.repeat(len(parts)), g, t0, gen).view(len(parts), B, -1)
            win = {u: self.pair_window(parts[u], t, g, t0) for u in (0, 3, 5)} if m.pair_history else {}

            def sc(u, v):
                w = win.get(u)
                return m.score(z[u], z[v], None if w is None else m.pair_term(w, parts[v][:, None])[:, 0])

            pos = sc(0, 1)
            acc["random"].add(pos, sc(0, 2))
            acc["historical"].add(pos, sc(3, 4))
            acc["inductive"].add(pos, sc(5, 6))
            if rank:
                C = m.decoder.destination(self.destination_table(g, t0))
                a = m.decoder.source(z[0])
                p, e = ex_ptr[lo:lo + B + 1], ex_dst[int(ex_ptr[lo]):int(ex_ptr[lo + B])]
                off = m.pair_entries(win[0], lo_dst, ds.dst_max) if win else None
                gr, eq = E.rank_counts(m.decoder.combine, a, C, dst - lo_dst, offsets=off,
                                       exclude=((p - p[0]).to(self.device), (e - lo_dst).to(self.device)))
                greater.append(gr)
                equal.append(eq)
                f = fixed[lo:lo + B]
                rows = torch.cat([dst[:, None], f], 1) - lo_dst
                c100 = C[rows.clamp_min(0)]
                if win:
                    c100 = c100 + m.pair_term(win[0], rows.clamp_min(0) + lo_dst)
                s100 = m.decoder.combine(a[:, None, :], c100).float()
                s100 = torch.where(rows >= 0, s100, torch.full_like(s100, float("-inf")))
                g100.append((s100[:, 1:] > s100[:, :1]).sum(1))
                e100.append((s100[:, 1:] == s100[:, :1]).sum(1))
            m.observe(src, dst, t, b)
        out = {}
        for s in STRATEGIES:
            r = acc[s].result()
            out[s] = r
        out.update(ap=out["random"]["ap"], auc=out["random"]["auc"], ap_historical=out["historical"]["ap"],
                   ap_inductive=out["inductive"]["ap"], ap_global=out["random"]["ap_global"], count=int(idx.numel()))
        if rank:
            rm = E.rank_metrics(torch.cat(greater).cpu(), torch.cat(equal).cpu())
            out.update(mrr=rm["mrr"], **{k: v for k, v in rm.items() if k.startswith("recall")})
            out["mrr_100"] = E.rank_metrics(torch.cat(g100).cpu(), torch.cat(e100).cpu())["mrr"]
        return out

    # ------------------------------------------------------------------ reporting
    def describe(self):
        return self.data.describe(self.split)

    def protocol(self):
        sp = "inductive (10% of late nodes held out of training)" if self.cfg.inductive else "transductive"
        return (f"DyGLib chronological 70/15/15, {sp}; AP/AUC per evaluation batch of {self.cfg.eval_batch_size} "
                f"(averaged) with one negative per event: random / historical / inductive (DyGLib's, seeded); "
                f"MRR and Recall@k of the true destination against all {self.data.dst_max - self.data.dst_min + 1} "
                f"destinations (unfiltered except other true destinations of the same source and time; ties = "
                f"mean of optimistic and pessimistic ranks) and against {self.cfg.mrr_negatives} fixed negatives "
                f"(half historical, half random)")

    def export(self):
        m = self.model
        if hasattr(m, "memory"):
            return {"memory": {"names": [str(int(x)) for x in self.data.node_ids], "weight": m.memory.detach().cpu()}}
        return {}

    def state_dict(self):
        return {"sampler": self.sampler.state_dict()}

    def load_state_dict(self, state):
        self.sampler.load_state_dict(state["sampler"])
