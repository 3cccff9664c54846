"""Knowledge-graph embedding models that *are* scorers (the protocol of :mod:`hardneg.samplers.scorers`).

Each model's training score is exactly ``pairwise(query_vectors(anchor, side), candidate_vectors(side)[c],
metric)``, so the hard samplers mine with the score being trained. Regularisers (``regularizer``):

* ``"l2"``: weight · mean over the batch of Σ‖x‖² of the embeddings the batch touched;
* ``"n3"``: weight · mean over the batch of Σ|x|³ (Lacroix et al. 2018; for ComplEx the modulus of each
  complex coordinate, |z|³).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ... import _validate as V
from ...samplers.scorers import Scorer, _complex_mul, pairwise
from .evaluation import all_scores as score_matrix

REGULARIZERS = (None, "none", "l2", "n3")


class KGModel(nn.Module, Scorer):
    """Base: entity table [E, width], relation table [R, rel_width]; subclasses define ``metric``,
    ``_query(e, r, side)``; ``candidate_vectors`` returns the entity table (or an encoder's output)."""

    metric = "dot"
    complex_valued = False

    def __init__(self, num_entities: int, num_relations: int, dim: int = 200, *, regularizer=None,
                 reg_weight: float = 0.0, init_scale: float | None = None, rel_width: int | None = None,
                 width: int | None = None, reciprocal: bool = False, dropout: float = 0.0):
        super().__init__()
        op = type(self).__name__
        self.num_entities = V.integer(op, "num_entities", num_entities, minimum=1)
        base = V.integer(op, "num_relations", num_relations, minimum=1)
        if not isinstance(reciprocal, bool):
            raise TypeError(f"{op}: 'reciprocal' must be a bool (got {V.describe(reciprocal)})")
        #: trained with inverse relations: ids R..2R-1 are the inverses of 0..R-1 (evaluate(..., reciprocal=True))
        self.reciprocal = reciprocal
        self.num_relations = 2 * base if reciprocal else base
        self.dim = V.integer(op, "dim", dim, minimum=1)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
            raise ValueError(f"{op}: 'dropout' must be in [0, 1) (got {dropout!r})")
        #: dropout on the query vectors of the training scores (never on the vectors the samplers mine with)
        self.query_dropout = nn.Dropout(float(dropout))
        if regularizer not in REGULARIZERS:
            raise ValueError(f"{op}: 'regularizer' must be one of {list(REGULARIZERS)} (got {regularizer!r})")
        self.regularizer = None if regularizer == "none" else regularizer
        self.reg_weight = float(reg_weight)
        w = width or dim
        self.entity = nn.Embedding(self.num_entities, w)
        self.relation = nn.Embedding(self.num_relations, rel_width or w)
        self.reset_parameters(init_scale)
        self.encoder = None

    def reset_parameters(self, init_scale=None):
        s = init_scale if init_scale is not None else 1.0 / math.sqrt(self.entity.weight.shape[1])
        nn.init.normal_(self.entity.weight, std=s)
        nn.init.normal_(self.relation.weight, std=s)

    # ---------------------------------------------------------------- scorer protocol
    def entity_vectors(self) -> torch.Tensor:
        return self.entity.weight if self.encoder is None else self.encoder(self.entity.weight)

    def candidate_vectors(self, side="tail"):
        return self.entity_vectors()

    def query_vectors(self, anchor, side="tail", entity_vectors=None):
        ent = self.entity_vectors() if entity_vectors is None else entity_vectors
        if side == "tail":
            e, r = ent[anchor[:, 0]], self.relation.weight[anchor[:, 1]]
        elif side == "head":
            e, r = ent[anchor[:, 1]], self.relation.weight[anchor[:, 0]]
        else:
            raise ValueError(f"{type(self).__name__}: 'side' must be 'tail' or 'head' (got {side!r})")
        return self._query(e, r, side)

    def _query(self, e, r, side):
        raise NotImplementedError

    # ---------------------------------------------------------------- training
    def score_hrt(self, triples: torch.Tensor) -> torch.Tensor:
        """Scores of triples [..., 3] (shape [...])."""
        ent = self.entity_vectors()
        flat = triples.reshape(-1, 3)
        q = self.query_vectors(flat[:, :2], "tail", ent)
        return pairwise(q, ent[flat[:, 2]], self.metric).reshape(triples.shape[:-1])

    def forward_scores(self, positives, negatives):
        """(positive scores [B], negative scores [B, n]) for a batch and a :class:`hardneg.samplers.Negatives`,
        computing each query vector once (head and tail queries).

        When the entity table is small next to the negatives (E <= 8·n), every query is scored against all
        entities with one matrix product and the negatives are gathered from that: on UMLS (E = 135, n = 64,
        d = 400) a training step is ~10x faster than gathering [B, n, d] negative vectors."""
        ent = self.entity_vectors()
        t = positives[:, 2]
        ids = negatives.ids.clamp_min(0)
        qt = self.query_dropout(self.query_vectors(positives[:, :2], "tail", ent))
        pos = pairwise(qt, ent[t], self.metric)
        qh = None
        if negatives.side is not None:
            qh = self.query_dropout(self.query_vectors(positives[:, 1:], "head", ent))
            is_tail = (negatives.side if negatives.side.dim() == 2 else negatives.side[:, None].expand_as(ids)) == 2
        if ent.shape[0] <= 8 * ids.shape[1]:
            neg = score_matrix(qt, ent, self.metric).gather(1, ids)
            if qh is not None:
                neg = torch.where(is_tail, neg, score_matrix(qh, ent, self.metric).gather(1, ids))
            return pos, neg
        c = ent[ids]
        if qh is None:
            return pos, pairwise(qt[:, None, :], c, self.metric)
        q = torch.where(is_tail[..., None], qt[:, None, :], qh[:, None, :])
        return pos, pairwise(q, c, self.metric)

    def score_all(self, anchor: torch.Tensor, side: str = "tail") -> torch.Tensor:
        """Training scores [B, E] of each anchor's query against every entity (1vsAll / KvsAll training),
        with the query dropout."""
        ent = self.entity_vectors()
        q = self.query_dropout(self.query_vectors(anchor, side, ent))
        return score_matrix(q, ent, self.metric)

    def regularization(self, positives, negatives=None) -> torch.Tensor:
        if not self.regularizer or self.reg_weight == 0.0:
            return torch.zeros((), device=self.entity.weight.device)
        ent = self.entity.weight
        idx = [positives[:, 0], positives[:, 2]]
        x = [ent[i] for i in idx] + [self.relation.weight[positives[:, 1]]]
        B = positives.shape[0]
        if self.regularizer == "l2":
            return self.reg_weight * sum(v.pow(2).sum() for v in x) / B
        tot = 0.0
        for v in x:
            if self.complex_valued:
                m = v.shape[-1] // 2
                tot = tot + torch.sqrt(v[..., :m] ** 2 + v[..., m:] ** 2).pow(3).sum()
            else:
                tot = tot + v.abs().pow(3).sum()
        return self.reg_weight * tot / B

    def post_step(self):
        """Constraints applied after each optimiser step (TransE's unit-norm entities, RotatE's phases)."""

    def extra_repr(self):
        return (f"E={self.num_entities}, R={self.num_relations}{' (with inverses)' if self.reciprocal else ''}, "
                f"dim={self.dim}, metric={self.metric}")


class DistMult(KGModel):
    """DistMult (Yang et al. 2015): Σ e_h ⊙ w_r ⊙ e_t."""

    metric = "dot"

    def _query(self, e, r, side):
        return e * r


class ComplEx(KGModel):
    """ComplEx (Trouillon et al. 2016): Re(Σ e_h w_r conj(e_t)); ``dim`` complex coordinates stored [Re | Im]."""

    metric = "dot"
    complex_valued = True

    def __init__(self, num_entities, num_relations, dim=200, **kw):
        super().__init__(num_entities, num_relations, dim, width=2 * dim, **kw)

    def _query(self, e, r, side):
        return _complex_mul(e, r) if side == "tail" else _complex_mul(e, r, conj_b=True)


class TransE(KGModel):
    """TransE (Bordes et al. 2013): −‖e_h + w_r − e_t‖_p, p = 1 (default, metric ``l1``) or 2 (``l2``: squared).
    Entities are renormalised to unit L2 norm after each step (``normalize_entities``), as in the paper."""

    def __init__(self, num_entities, num_relations, dim=200, *, p: int = 1, normalize_entities: bool = True, **kw):
        if p not in (1, 2):
            raise ValueError(f"TransE: 'p' must be 1 or 2 (got {p!r})")
        self.metric = "l1" if p == 1 else "l2"
        super().__init__(num_entities, num_relations, dim, **kw)
        self.normalize_entities = normalize_entities
        self.post_step()

    def _query(self, e, r, side):
        return e + r if side == "tail" else e - r

    @torch.no_grad()
    def post_step(self):
        if self.normalize_entities:
            w = self.entity.weight
            w.div_(w.norm(dim=1, keepdim=True).clamp_min(1e-12))


class RotatE(KGModel):
    """RotatE (Sun et al. 2019): −Σⱼ |e_h,j e^{iθ_r,j} − e_t,j| (metric ``rotate``); entities [E, 2·dim]
    ([Re | Im]), relation phases θ [R, dim]. Pair it with the self-adversarial loss and its margin γ."""

    metric = "rotate"
    complex_valued = True

    def __init__(self, num_entities, num_relations, dim=200, **kw):
        super().__init__(num_entities, num_relations, dim, width=2 * dim, rel_width=dim, **kw)

    def reset_parameters(self, init_scale=None):
        s = init_scale if init_scale is not None else 1.0 / math.sqrt(self.dim)
        nn.init.uniform_(self.entity.weight, -s, s)
        nn.init.uniform_(self.relation.weight, -math.pi, math.pi)

    def _query(self, e, theta, side):
        rot = torch.cat([torch.cos(theta), torch.sin(theta)], -1)
        return _complex_mul(e, rot, conj_b=(side == "head"))

    def regularization(self, positives, negatives=None):
        if not self.regularizer or self.reg_weight == 0.0:
            return torch.zeros((), device=self.entity.weight.device)
        ent = self.entity.weight
        x = torch.cat([ent[positives[:, 0]], ent[positives[:, 2]]])
        p = 2 if self.regularizer == "l2" else 3
        m = x.shape[-1] // 2
        mod = torch.sqrt(x[:, :m] ** 2 + x[:, m:] ** 2 + 1e-18)
        return self.reg_weight * mod.pow(p).sum() / positives.shape[0]


class RGCN(nn.Module):
    """An R-GCN encoder (Schlichtkrull et al. 2018) in front of any decoder, with PyTorch Geometric's
    ``RGCNConv`` (extra ``hardneg[pyg]``): entity vectors = RGCN(decoder.entity.weight) over the training
    graph (both directions, inverse relations as extra types), basis decomposition. Set it with
    ``decoder.encoder = RGCN(...)``; the decoder's scores, and so its hard negatives, then use the encoded
    vectors (DANS: R-GCN + DistMult / RotatE / ComplEx)."""

    def __init__(self, train_triples, num_entities, num_relations, width, *, num_layers=2, num_bases=None,
                 dropout=0.0):
        super().__init__()
        try:
            from torch_geometric.nn import RGCNConv
        except ImportError as e:  # pragma: no cover
            raise ImportError("RGCN needs PyTorch Geometric: pip install 'hardneg[pyg]'") from e
        h, r, t = train_triples[:, 0], train_triples[:, 1], train_triples[:, 2]
        self.register_buffer("edge_index", torch.stack([torch.cat([h, t]), torch.cat([t, h])]))
        self.register_buffer("edge_type", torch.cat([r, r + num_relations]))
        nb = num_bases or min(2 * num_relations, 30)
        self.convs = nn.ModuleList(RGCNConv(width, width, 2 * num_relations, num_bases=nb) for _ in range(num_layers))
        self.dropout = dropout

    def forward(self, x):
        for i, conv in enumerate(self.convs):
            y = conv(x, self.edge_index, self.edge_type)
            x = x + (torch.tanh(y) if i < len(self.convs) - 1 else y)  # residual keeps the base embedding
            if self.dropout and self.training:
                x = nn.functional.dropout(x, self.dropout)
        return x


MODELS = {"transe": TransE, "distmult": DistMult, "complex": ComplEx, "rotate": RotatE}


def create_model(name: str, num_entities: int, num_relations: int, dim: int = 200, **options) -> KGModel:
    if not isinstance(name, str) or name.lower() not in MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {list(MODELS)}")
    return MODELS[name.lower()](num_entities, num_relations, dim, **options)
