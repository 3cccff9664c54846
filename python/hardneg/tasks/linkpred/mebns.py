"""The model side of MeBNS for the linkpred task (the method and its choices: :mod:`hardneg.samplers.linkpred`).

* :func:`prepare_teacher`: build the teacher (the student's backbone, or ``teacher_model``, with dropout
  ``mc_dropout``), load it from ``teacher_path`` when that checkpoint exists, else train it for
  ``teacher_epochs`` on the STD-Generator's negatives (BCE, Adam at ``teacher_lr`` or the run's lr, the run's
  batch size and negatives per positive) and save it there. A teacher checkpoint records the fingerprint of
  the training graph it was trained on and its architecture; loading it for another graph or architecture
  is a ValueError.
* :func:`collect_meta` (UMD-Collector): the meta set from the teacher's MC-dropout passes over edge-dropped
  training graphs.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import time

import torch
import torch.nn.functional as F

from ...graph import CSRGraph
from ...samplers.linkpred import collect_meta_set
from .data import _symmetric, train_batches
from .models import DotDecoder, GraphLinkPredictor, create_model, negative_pairs, score_batch

SPEC_FIELDS = ("model", "dim", "hidden", "num_layers", "decoder", "use_features", "hops", "readout", "sort_k",
               "max_nodes_per_hop", "model_options", "node_embedding")


def graph_fingerprint(edges: torch.Tensor, num_nodes: int) -> str:
    """A digest of an undirected graph: its node count and its edge set (each edge once, in any order)."""
    e = edges.cpu().long()
    key = torch.unique(torch.minimum(e[:, 0], e[:, 1]) * num_nodes + torch.maximum(e[:, 0], e[:, 1]))
    h = hashlib.sha256(str(int(num_nodes)).encode())
    h.update(key.numpy().tobytes())
    return h.hexdigest()[:16]


def teacher_spec(cfg, model_name: str) -> dict:
    d = {k: getattr(cfg, k) for k in SPEC_FIELDS}
    d["model"] = model_name
    return d


def load_teacher(path: str, model, fingerprint: str, spec: dict, graph_desc: str) -> dict:
    """Load a teacher checkpoint into ``model`` after checking it belongs to this graph and architecture.

    Raises:
        ValueError: the checkpoint was trained on another graph, has another architecture, or is not a
            hardneg teacher checkpoint.
    """
    op = "mebns teacher"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the same user error
        raise ValueError(f"{op}: cannot read the teacher checkpoint {path!r} ({e})") from None
    if not isinstance(state, dict) or "graph" not in state or "state" not in state:
        raise ValueError(f"{op}: {path!r} is not a hardneg MeBNS teacher checkpoint (no graph fingerprint)")
    if state["graph"] != fingerprint:
        raise ValueError(f"{op}: the teacher checkpoint {path!r} was trained on another graph (fingerprint "
                         f"{state['graph']}, {state.get('graph_desc', '?')}); this run's training graph is "
                         f"{fingerprint} ({graph_desc}). Point teacher_path elsewhere or delete the file to "
                         f"train a teacher for this graph")
    if state.get("spec") != spec:
        raise ValueError(f"{op}: the teacher checkpoint {path!r} has another architecture ({state.get('spec')}); "
                         f"this run's teacher is {spec}")
    model.load_state_dict(state["state"])
    return dict(state.get("info", {}))


def save_teacher(path: str, model, fingerprint: str, spec: dict, graph_desc: str, info: dict) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"  # the ranks of a data-parallel run each save the same teacher
    torch.save({"graph": fingerprint, "graph_desc": graph_desc, "spec": spec, "info": info,
                "state": {k: v.detach().cpu() for k, v in model.state_dict().items()}}, tmp)
    os.replace(tmp, path)


def train_teacher(model, train_pos: torch.Tensor, sampler, *, epochs: int, lr: float, batch_size: int,
                  num_negatives: int, generator: torch.Generator) -> list[float]:
    """BCE on the training edges against the STD-Generator's negatives; returns the loss per epoch."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    curve = []
    for _ in range(epochs):
        total, count = 0.0, 0
        for P in train_batches(train_pos, batch_size, generator, train_pos.device):
            neg = sampler.teacher_negatives(P, num_negatives, generator=generator)
            pos_s, neg_s = score_batch(model, P, neg, generator=generator)
            loss = (F.binary_cross_entropy_with_logits(pos_s, torch.ones_like(pos_s))
                    + _masked_mean(F.softplus(neg_s), neg.valid))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * P.shape[0]
            count += P.shape[0]
        curve.append(total / max(1, count))
    return curve


def _masked_mean(x, valid):
    return (x * valid).sum() / valid.sum().clamp_min(1)


def prepare_teacher(cfg, ds, split, sampler, device, generator: torch.Generator, *,
                    embedding: torch.Tensor | None = None) -> tuple[torch.nn.Module, dict]:
    """The trained, frozen teacher for ``sampler`` (a MeBNSSampler) and a description of how it was obtained
    (``embedding``: the student's frozen SEAL node vectors, which a SEAL teacher shares)."""
    name = sampler.teacher_model or cfg.model
    tcfg = dataclasses.replace(cfg, model=name)
    fp = graph_fingerprint(split.train, ds.num_nodes)
    desc = f"{ds.name}: {ds.num_nodes} nodes, {split.train.shape[0]} training edges, split seed {split.seed}"
    spec = teacher_spec(tcfg, name)
    t0 = time.perf_counter()
    with torch.random.fork_rng(devices=[]):  # the teacher never moves the student's random stream
        torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=generator)))
        teacher = create_model(tcfg, ds, split, dropout=sampler.mc_dropout, embedding=embedding).to(device)
        info = {"model": name, "graph": fp}
        if sampler.teacher_path and os.path.exists(sampler.teacher_path):
            info.update(load_teacher(sampler.teacher_path, teacher, fp, spec, desc), loaded=sampler.teacher_path)
        else:
            curve = train_teacher(teacher, split.train.to(device), sampler, epochs=sampler.teacher_epochs,
                                  lr=sampler.teacher_lr or cfg.lr, batch_size=cfg.batch_size,
                                  num_negatives=cfg.num_negatives, generator=generator)
            info.update(epochs=sampler.teacher_epochs, final_loss=curve[-1] if curve else None)
            if sampler.teacher_path:
                save_teacher(sampler.teacher_path, teacher, fp, spec, desc, info)
                info["saved"] = sampler.teacher_path
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    info["seconds"] = time.perf_counter() - t0
    return teacher, info


CACHE_NODES = 8192  # a dot-decoder teacher's full score matrix is cached up to this many nodes (256 MiB)


class _CachedScorer:
    """A frozen dot-product teacher's scores, all N x N of them computed once: ``score_candidates`` is a gather
    (on Cora, 4,488 x 32 candidates: 3.6 ms, against 12 ms to gather the embeddings and multiply them)."""

    def __init__(self, scores: torch.Tensor):
        self.scores = scores

    def score_candidates(self, anchor, ids, side="tail"):
        a = anchor if anchor.dim() == 1 else (anchor[:, 0] if side == "tail" else anchor[:, -1])
        N = self.scores.shape[0]
        flat = (a[:, None] * N + ids.clamp_min(0)).reshape(-1)
        return self.scores.view(-1).index_select(0, flat).view(ids.shape)


def teacher_scorer(teacher):
    """The frozen teacher as a sampler scorer (embeddings computed once for a node encoder; with the dot
    decoder and at most ``CACHE_NODES`` nodes, every score computed once)."""
    if isinstance(teacher, GraphLinkPredictor):
        with torch.no_grad():
            z = teacher.encode()
            if isinstance(teacher.decoder, DotDecoder) and z.shape[0] <= CACHE_NODES:
                return _CachedScorer(z @ z.T)
            return teacher.scorer(z)
    return teacher.scorer(torch.Generator().manual_seed(0))


def _mc_probs(teacher, pairs, train_edges, edge_drop, generator):
    """Pass i: the teacher with dropout on, over the training graph with ``edge_drop`` of its edges removed."""

    def probs(i):
        keep = torch.rand(train_edges.shape[0], generator=generator) >= edge_drop
        kept = train_edges[keep.to(train_edges.device)]
        teacher.train()
        try:
            with torch.no_grad():
                if isinstance(teacher, GraphLinkPredictor):
                    s = teacher(pairs, _symmetric(kept).to(pairs.device))
                else:
                    full = teacher.graph
                    teacher.graph = CSRGraph.from_edges(kept.cpu(), full.num_nodes)
                    try:
                        s = torch.cat([teacher.score_pairs(pairs[j : j + 4096], generator)
                                       for j in range(0, pairs.shape[0], 4096)])
                    finally:
                        teacher.graph = full
        finally:
            teacher.eval()
        return torch.sigmoid(s)

    return probs


def collect_meta(teacher, split, sampler, cfg, device, generator: torch.Generator):
    """UMD-Collector: ``meta_size`` pairs from a pool of ``2 · meta_size`` training positives and their STD
    negatives (``num_negatives`` each), chosen by :func:`hardneg.samplers.collect_meta_set`."""
    train = split.train.to(device)
    m = min(train.shape[0], 2 * sampler.meta_size)
    P = train[torch.randperm(train.shape[0], generator=generator)[:m].to(device)]
    neg = sampler.teacher_negatives(P, cfg.num_negatives, generator=generator)
    negp = negative_pairs(P, neg)[neg.valid.flatten()]
    pairs = torch.cat([P, negp])
    labels = torch.cat([torch.ones(P.shape[0]), torch.zeros(negp.shape[0])])
    probs = _mc_probs(teacher, pairs, train, sampler.edge_drop, generator)
    return collect_meta_set(probs, pairs, labels.to(device), sampler.meta_size, sampler.mc_passes)
