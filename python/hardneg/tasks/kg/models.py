"""Knowledge-graph embedding models that *are* scorers (the protocol of :mod:`hardneg.samplers.scorers`).

Each model's training score is exactly ``pairwise(query_vectors(anchor, side), candidate_vectors(side)[c],
metric)``, so the hard samplers mine with the score being trained. Regularisers (``regularizer``):

* ``"l2"``: weight · mean over the batch of Σ‖x‖² of the embeddings the batch touched;
* ``"n3"``: weight · mean over the batch of Σ|x|³ (Lacroix et al. 2018; for ComplEx the modulus of each
  complex coordinate, |z|³).
"""
from __future__ import annotations

import math
import warnings

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

    # ---------------------------------------------------------------- layout
    def shard_entities(self, *, group=None, sparse_grad: bool = True) -> "KGModel":
        """Switch to the row-sharded layout: keep only this rank's rows of the entity table
        (:class:`hardneg.distributed.ShardedEmbedding`; collective, needs an initialised process group). Every
        score, sampler and evaluation then works on the sharded table; an encoder cannot be used with it."""
        from ...distributed import ShardedEmbedding

        if self.encoder is not None:
            raise ValueError(f"{type(self).__name__}.shard_entities: an encoder needs the whole entity table; the "
                             f"row-sharded layout takes decoders only")
        if not self.sharded:
            self.entity = ShardedEmbedding.from_full(self.entity.weight.detach(), group=group, sparse_grad=sparse_grad)
        return self

    @property
    def sharded(self) -> bool:
        """True when the entity table is row-sharded across ranks (:meth:`shard_entities`)."""
        return not isinstance(self.entity, nn.Embedding)

    def owned_entity_rows(self) -> torch.Tensor:
        """The entity rows this process stores (the whole table, or this rank's shard): for in-place constraints."""
        return self.entity.local if self.sharded else self.entity.weight

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

    def sampling_view(self):
        """What a sampler mines with in one training step: the model itself without an encoder; with one (R-GCN),
        a view whose entity vectors are encoded once, without gradients and without the encoder's dropout,
        and shared by every call of the step (the samplers detach what they read, and the loss encodes again
        with gradients). Without it a DANS step encoded the graph four times, each with other dropout masks."""
        return self if self.encoder is None else _EncodedView(self)

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
        vm = negatives.vector_mask
        if ent.shape[0] <= 8 * ids.shape[1] and vm is None and not self.sharded:
            neg = score_matrix(qt, ent, self.metric).gather(1, ids)
            if qh is not None:
                neg = torch.where(is_tail, neg, score_matrix(qh, ent, self.metric).gather(1, ids))
            return pos, neg
        c = ent[ids]
        if vm is not None:  # continuous negatives (DANS mode="embedding"): score the generated vectors
            c = torch.where(vm[..., None], negatives.vectors.to(c.dtype), c)
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
            w = self.owned_entity_rows()
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


class RGCNLayer(nn.Module):
    """One R-GCN layer (Schlichtkrull et al. 2018) with basis decomposition:
    ``out_i = x_i W_0 + b + Σ_r mean_{j ∈ N_r(i)} x_j W_r`` with ``W_r = Σ_b a_rb V_b``.

    The arithmetic and parameter layout (``weight [B, in, out]``, ``comp [T, B]``, ``root``, ``bias``) of
    PyTorch Geometric's ``RGCNConv(aggr="mean", num_bases=B)``, without its one message-passing call per edge
    type: the per-(node, type) means ``S = P x`` are one fixed sparse product (``P`` [K, N], K distinct
    (node, type) pairs, entries 1/|N_r(i)|), and ``Σ_r mean_r(x) W_r = Σ_b (Σ_k a_{type_k, b} S_k → node_k) V_b``
    is B scatter-adds. On UMLS (92 edge types) RGCNConv's loop took 1.7–6 s per forward + backward on 2 CPU
    cores; this layer ~50 ms (both measured on the shared box). ``index_add_`` is avoided on purpose: on this
    CPU build it was 170x slower than ``scatter_add_`` for the same sums (58 ms vs 0.34 ms, 10k rows).
    """

    def __init__(self, in_channels: int, out_channels: int, num_types: int, num_bases: int):
        super().__init__()
        self.num_types, self.num_bases = num_types, num_bases
        self.weight = nn.Parameter(torch.empty(num_bases, in_channels, out_channels))
        self.comp = nn.Parameter(torch.empty(num_types, num_bases))
        self.root = nn.Parameter(torch.empty(in_channels, out_channels))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        for w in (self.weight, self.comp, self.root):  # glorot, as RGCNConv
            a = math.sqrt(6.0 / (w.shape[-2] + w.shape[-1]))
            nn.init.uniform_(w, -a, a)

    def forward(self, x, means, node, node_type):
        """``x`` [N, in]; ``means`` [K, N] sparse (row k averages the neighbours of ``node[k]`` along edges of type
        ``node_type[k]``)."""
        S = means @ x
        out = x @ self.root + self.bias
        ix = node[:, None].expand(-1, x.shape[1])
        for b in range(self.num_bases):
            h = torch.zeros_like(x).scatter_add_(0, ix, S * self.comp[node_type, b : b + 1])
            out = out + h @ self.weight[b]
        return out


class RGCN(nn.Module):
    """An R-GCN encoder (Schlichtkrull et al. 2018) in front of any decoder: entity vectors =
    RGCN(decoder.entity.weight) over the training graph (both directions, inverse relations as extra edge
    types), basis decomposition (``num_bases``, default min(2R, 30)), a residual connection around each layer
    (tanh between layers) and ``dropout`` after each layer while training. Set it with
    ``decoder.encoder = RGCN(...)``; the decoder's scores, and so its hard negatives, then use the encoded
    vectors (DANS: R-GCN + DistMult / RotatE / ComplEx; its released defaults: 2 layers, 4 bases, dropout 0.2).
    The layers are :class:`RGCNLayer` (PyG's ``RGCNConv`` arithmetic, checked against it in the tests)."""

    def __init__(self, train_triples, num_entities, num_relations, width, *, num_layers=2, num_bases=None,
                 dropout=0.0):
        super().__init__()
        op = "RGCN"
        V.integer(op, "num_layers", num_layers, minimum=1)
        if num_bases is not None:
            V.integer(op, "num_bases", num_bases, minimum=1)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
            raise ValueError(f"{op}: 'dropout' must be in [0, 1) (got {dropout!r})")
        h, r, t = train_triples[:, 0], train_triples[:, 1], train_triples[:, 2]
        src, dst, typ = torch.cat([h, t]), torch.cat([t, h]), torch.cat([r, r + num_relations])
        T = 2 * num_relations
        pair, row, counts = torch.unique(dst * T + typ, return_inverse=True, return_counts=True)
        order = torch.argsort(row * num_entities + src)
        row, col = row[order], src[order]
        self.num_entities = num_entities
        self.register_buffer("crow", torch.searchsorted(row, torch.arange(pair.numel() + 1)))
        self.register_buffer("col", col)
        self.register_buffer("val", 1.0 / counts[row].float())
        self.register_buffer("node", pair // T)
        self.register_buffer("node_type", pair % T)
        nb = num_bases or min(T, 30)
        self.convs = nn.ModuleList(RGCNLayer(width, width, T, nb) for _ in range(num_layers))
        self.dropout = float(dropout)

    def means(self, dtype) -> torch.Tensor:
        """The fixed [K, E] sparse averaging matrix (CSR) of the training graph."""
        with warnings.catch_warnings():  # "sparse CSR support is in beta": the product used here is stable
            warnings.simplefilter("ignore", UserWarning)
            return torch.sparse_csr_tensor(self.crow, self.col, self.val.to(dtype),
                                           (self.node.numel(), self.num_entities))

    def forward(self, x):
        P = self.means(x.dtype)
        for i, conv in enumerate(self.convs):
            y = conv(x, P, self.node, self.node_type)
            x = x + (torch.tanh(y) if i < len(self.convs) - 1 else y)  # residual keeps the base embedding
            if self.dropout and self.training:
                x = nn.functional.dropout(x, self.dropout)
        return x


MODELS = {"transe": TransE, "distmult": DistMult, "complex": ComplEx, "rotate": RotatE}


def create_model(name: str, num_entities: int, num_relations: int, dim: int = 200, **options) -> KGModel:
    if not isinstance(name, str) or name.lower() not in MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {list(MODELS)}")
    return MODELS[name.lower()](num_entities, num_relations, dim, **options)


class _EncodedView:
    """A KG model as the samplers see it in one step (:meth:`KGModel.sampling_view`): the entity encoding frozen
    for the step, every other attribute the model's."""

    def __init__(self, model: KGModel):
        self._model = model
        was = model.encoder.training
        model.encoder.eval()
        try:
            with torch.no_grad():
                self._entities = model.entity_vectors()
        finally:
            model.encoder.train(was)

    def entity_vectors(self) -> torch.Tensor:
        return self._entities

    def candidate_vectors(self, side="tail"):
        return self._entities

    def query_vectors(self, anchor, side="tail", entity_vectors=None):
        with torch.no_grad():
            return self._model.query_vectors(anchor, side, self._entities if entity_vectors is None else entity_vectors)

    def __getattr__(self, name):
        return getattr(self._model, name)
