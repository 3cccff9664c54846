"""Static link-prediction models (PyTorch Geometric layers).

* :class:`GraphLinkPredictor`: a GCN (``GCNConv``; GAE, Kipf & Welling 2016) or GAT (``GATConv``; Veličković et
  al. 2018) node encoder over the training graph and a decoder: ``dot`` (z_u · z_v) or ``mlp`` (an MLP on
  z_u ⊙ z_v). Both decoders are symmetric, as the graphs are undirected. Node features are the dataset's
  (row-normalised, as PyG's ``NormalizeFeatures``) or, for a featureless graph, a learnt table.
* :class:`SEAL`: each link is classified from its enclosing k-hop subgraph (:func:`hardneg.ops.enclosing_subgraphs`,
  DRNL labels embedded, optionally concatenated with node features), by GCN layers with tanh, then DGCNN's sort
  pooling (``SortAggregation``; Zhang et al. AAAI 2018, SEAL_OGB's head: two 1-D convolutions and an MLP), a
  mean-pooling readout, or ``center``: the two target nodes' representations multiplied (SEAL_OGB's GCN / SAGE
  head), which keeps what the endpoints' own features say about each other when their halves of the subgraph
  are not connected. ``node_embedding`` (:mod:`.embedding`) joins the SEAL paper's third input, a latent vector
  per node: a free table trained with the model, a GCN's frozen output, or a file.

Every model is a scorer for the samplers (:mod:`hardneg.samplers.scorers`): ``scorer(...)`` returns an object with
``score_candidates(anchor [B], ids [B, n]) -> [B, n]``, so DNS and MeBNS mine with the model being trained.
"""
from __future__ import annotations

import math

import torch
from torch import nn
import torch.nn.functional as F

from ... import _validate as V
from ...graph import CSRGraph
from ...samplers.scorers import Scorer
from .config import READOUTS

ENCODERS = ("gcn", "gat")
MAX_Z = 1000  # DRNL labels embedded (SEAL_OGB); larger labels share the last row
SPARSE_BELOW = 0.1  # node features with fewer nonzeros than this enter the encoder as a sparse CSR matrix


def _pyg():
    try:
        import torch_geometric.nn as pyg_nn
    except ImportError as e:  # pragma: no cover - depends on the install
        raise ImportError("the linkpred models need PyTorch Geometric: pip install 'hardneg[pyg]'") from e
    return pyg_nn


class NodeEncoder(nn.Module):
    """``num_layers`` GCNConv / GATConv layers: in -> hidden -> ... -> out, ReLU (GCN) or ELU (GAT) between
    layers, dropout before each layer but the first. ``in_dim=0``: a learnt [num_nodes, hidden] input table.
    GAT hidden layers use ``heads`` heads of hidden // heads channels, concatenated; the last layer one head."""

    def __init__(self, kind: str, num_nodes: int, in_dim: int, hidden: int, out: int, num_layers: int = 2,
                 dropout: float = 0.0, heads: int = 4):
        super().__init__()
        op = "NodeEncoder"
        V.choice(op, "kind", kind, ENCODERS)
        pyg_nn = _pyg()
        self.kind, self.dropout = kind, float(dropout)
        self.embedding = nn.Embedding(num_nodes, hidden) if in_dim == 0 else None
        if self.embedding is not None:
            nn.init.normal_(self.embedding.weight, std=1.0 / math.sqrt(hidden))
        dims = [in_dim or hidden] + [hidden] * (num_layers - 1) + [out]
        self.convs = nn.ModuleList()
        for i in range(num_layers):
            last = i == num_layers - 1
            if kind == "gcn":
                self.convs.append(pyg_nn.GCNConv(dims[i], dims[i + 1]))
            else:
                h = 1 if last else heads
                if dims[i + 1] % h:
                    raise ValueError(f"{op}: 'hidden' ({dims[i + 1]}) must be divisible by heads ({h})")
                self.convs.append(pyg_nn.GATConv(dims[i], dims[i + 1] // h, heads=h))

    def forward(self, x, edge_index):
        h = self.embedding.weight if self.embedding is not None else x
        act = F.relu if self.kind == "gcn" else F.elu
        for i, conv in enumerate(self.convs):
            if i:
                h = F.dropout(act(h), self.dropout, self.training)
            h = conv(h, edge_index)
        return h


class DotDecoder(nn.Module):
    def forward(self, a, b):
        return (a * b).sum(-1)


class MLPDecoder(nn.Module):
    """Linear(d, d) - ReLU - Linear(d, 1) on a ⊙ b (symmetric in a, b)."""

    def __init__(self, dim: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, 1))

    def forward(self, a, b):
        return self.net(a * b).squeeze(-1)


class GraphLinkPredictor(nn.Module):
    """Encoder + decoder over a fixed training graph (``edge_index`` and features ``x`` are non-persistent
    buffers: they move with the model but are not saved in checkpoints)."""

    def __init__(self, encoder: NodeEncoder, decoder: nn.Module, edge_index: torch.Tensor, x: torch.Tensor | None):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder
        self.register_buffer("edge_index", edge_index, persistent=False)
        self.register_buffer("x", x, persistent=False)

    def encode(self, edge_index: torch.Tensor | None = None) -> torch.Tensor:
        """Node embeddings [N, out] (``edge_index``: another graph over the same nodes, e.g. an augmented one)."""
        return self.encoder(self.x, self.edge_index if edge_index is None else edge_index)

    def decode(self, z: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
        """Scores [P] of ``pairs`` [P, 2] from embeddings ``z``."""
        return self.decoder(z[pairs[:, 0]], z[pairs[:, 1]])

    def forward(self, pairs: torch.Tensor, edge_index: torch.Tensor | None = None) -> torch.Tensor:
        """Scores [P] of ``pairs`` [P, 2] (one encoder pass)."""
        return self.decode(self.encode(edge_index), pairs)

    def score_pairs(self, pairs: torch.Tensor, generator=None) -> torch.Tensor:
        return self.forward(pairs)

    def pair_scorer(self):
        """``score_pairs(pairs) -> [P]`` with the embeddings computed once (evaluation)."""
        z = self.encode()
        return lambda pairs: self.decode(z, pairs.to(z.device))

    def scorer(self, z: torch.Tensor) -> "NodeScorer":
        return NodeScorer(z, self.decoder)


class NodeScorer(Scorer):
    """The sampler's view of a :class:`GraphLinkPredictor` for fixed embeddings ``z`` (detached by the caller).
    With the dot decoder it is a full scorer (metric ``dot``: every hard sampler); with the MLP decoder only
    ``score_candidates`` exists (DNS, MeBNS), as the fused top-k kernels need a pairwise metric."""

    metric = "dot"

    def __init__(self, z: torch.Tensor, decoder: nn.Module):
        self.z, self.decoder = z, decoder

    def _ids(self, anchor, side):
        return anchor if anchor.dim() == 1 else (anchor[:, 0] if side == "tail" else anchor[:, -1])

    def query_vectors(self, anchor, side="tail"):
        if not isinstance(self.decoder, DotDecoder):
            raise TypeError("linkpred: the mlp decoder is not a pairwise metric, so samplers that mine with the fused "
                            "top-k kernel (topk, score, nmiss, nscaching) need decoder='dot'; dns and mebns work "
                            "with both decoders")
        return self.z[self._ids(anchor, side)]

    def candidate_vectors(self, side="tail"):
        return self.z

    def score_candidates(self, anchor, ids, side="tail"):
        # index_select, not z[ids]: 3.4x faster gathers on CPU (Cora, 4,488 x 32 rows: 3.5 ms vs 11.7 ms)
        a = self.z.index_select(0, self._ids(anchor, side))
        c = self.z.index_select(0, ids.clamp_min(0).reshape(-1)).view(*ids.shape, -1)
        if isinstance(self.decoder, DotDecoder):  # one batched matrix product, no [B, n, d] product tensor
            return torch.bmm(c, a[:, :, None]).squeeze(-1)
        return self.decoder(a[:, None, :].expand(-1, ids.shape[1], -1), c)


class SEAL(nn.Module):
    """SEAL link classifier (module docstring). ``graph``: the training graph as a :class:`CSRGraph`; ``x``:
    node features concatenated to the DRNL embedding (or None); ``k``: nodes kept by sort pooling."""

    def __init__(self, graph: CSRGraph, x: torch.Tensor | None, *, hidden: int = 32, num_layers: int = 3,
                 hops: int = 2, readout: str = "sort", k: int = 30, max_nodes_per_hop: int = 0, dropout: float = 0.5,
                 max_z: int = MAX_Z, node_table: bool = False):
        super().__init__()
        op = "SEAL"
        pyg_nn = _pyg()
        if not isinstance(graph, CSRGraph):
            raise TypeError(f"{op}: 'graph' must be a hardneg.graph.CSRGraph (got {V.describe(graph)})")
        V.choice(op, "readout", readout, READOUTS)
        self.graph, self.hops, self.max_nodes_per_hop = graph, int(hops), int(max_nodes_per_hop)
        self.readout, self.k, self.max_z = readout, int(k), int(max_z)
        self.register_buffer("x", x, persistent=False)
        self.z_embedding = nn.Embedding(self.max_z, hidden)
        # SEAL_OGB's --train_node_embedding: a free vector per node, trained with the model
        self.node_table = nn.Embedding(graph.num_nodes, hidden) if node_table else None
        in_ch = hidden * (2 if node_table else 1) + (0 if x is None else x.shape[1])
        self.convs = nn.ModuleList([pyg_nn.GCNConv(in_ch, hidden)] +
                                   [pyg_nn.GCNConv(hidden, hidden) for _ in range(num_layers - 1)] +
                                   [pyg_nn.GCNConv(hidden, 1)])
        total = hidden * num_layers + 1
        if readout == "sort":
            if self.k < 10:
                raise ValueError(f"{op}: sort pooling needs k >= 10 nodes (got {k})")
            self.pool = pyg_nn.aggr.SortAggregation(self.k)
            self.conv1 = nn.Conv1d(1, 16, total, total)
            self.maxpool = nn.MaxPool1d(2, 2)
            self.conv2 = nn.Conv1d(16, 32, 5, 1)
            dense = ((self.k - 2) // 2 + 1 - 5 + 1) * 32
        else:
            dense = total
        self.mlp = nn.Sequential(nn.Linear(dense, 128), nn.ReLU(), nn.Dropout(dropout), nn.Linear(128, 1))

    def subgraphs(self, pairs: torch.Tensor, generator: torch.Generator | None = None):
        """The enclosing subgraphs of ``pairs`` [P, 2], on the model's device."""
        from ...ops.subgraph import enclosing_subgraphs

        sub = enclosing_subgraphs(self.graph, pairs.to(self.graph.device), self.hops,
                                  max_nodes_per_hop=self.max_nodes_per_hop, generator=generator)
        dev = self.z_embedding.weight.device
        if sub.nodes.device != dev:
            sub = type(sub)(*(t.to(dev) for t in (sub.nodes, sub.node_ptr, sub.edge_index, sub.edge_ptr, sub.labels)))
        return sub

    def forward(self, sub) -> torch.Tensor:
        """Logits [P] of a batch of subgraphs."""
        h = self.z_embedding(sub.labels.clamp_max(self.max_z - 1))
        if self.x is not None:
            h = torch.cat([h, self.x[sub.nodes]], 1)
        if self.node_table is not None:
            h = torch.cat([h, self.node_table(sub.nodes)], 1)
        xs = []
        for conv in self.convs:
            h = torch.tanh(conv(h, sub.edge_index))
            xs.append(h)
        h = torch.cat(xs, -1)
        batch, P = sub.batch(), sub.num_graphs
        if self.readout == "sort":
            h = self.pool(h, batch, dim_size=P).unsqueeze(1)  # [P, 1, k * total]
            h = self.maxpool(F.relu(self.conv1(h)))
            h = F.relu(self.conv2(h)).flatten(1)
        elif self.readout == "center":  # s and t are the first two nodes of every subgraph
            first = sub.node_ptr[:-1]
            h = h.index_select(0, first) * h.index_select(0, first + 1)
        else:
            h = _pyg().global_mean_pool(h, batch, size=P)
        return self.mlp(h).squeeze(-1)

    def score_pairs(self, pairs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.forward(self.subgraphs(pairs, generator))

    def pair_scorer(self):
        """``score_pairs(pairs) -> [P]`` for evaluation (capped hops drawn from a fixed seed)."""
        g = torch.Generator().manual_seed(0) if self.max_nodes_per_hop else None
        return lambda pairs: self.score_pairs(pairs, g)

    def scorer(self, generator: torch.Generator | None = None) -> "SEALScorer":
        return SEALScorer(self, generator)


class SEALScorer(Scorer):
    """The sampler's view of a :class:`SEAL` model: ``score_candidates`` extracts and classifies the subgraph of
    every (anchor, candidate) pair, with the model in eval mode (no dropout in the choice of negatives)."""

    metric = "dot"

    def __init__(self, model: SEAL, generator=None):
        self.model, self.generator = model, generator

    def query_vectors(self, anchor, side="tail"):
        raise TypeError("linkpred: SEAL scores subgraphs, not embeddings, so samplers that mine with the fused top-k "
                        "kernel (topk, score, nmiss, nscaching) do not apply; dns and mebns work with SEAL")

    def candidate_vectors(self, side="tail"):
        return torch.empty(self.model.graph.num_nodes, 0, device=self.model.z_embedding.weight.device)

    def score_candidates(self, anchor, ids, side="tail"):
        a = anchor if anchor.dim() == 1 else (anchor[:, 0] if side == "tail" else anchor[:, -1])
        B, n = ids.shape
        pairs = torch.stack([a[:, None].expand(B, n), ids.clamp_min(0)], -1).reshape(-1, 2)
        keep = pairs[:, 0] != pairs[:, 1]
        out = torch.full((B * n,), float("-inf"), device=ids.device)
        was = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                if bool(keep.any()):
                    out[keep] = self.model.score_pairs(pairs[keep], self.generator).to(out.device)
        finally:
            self.model.train(was)
        return out.view(B, n)


def sort_pool_k(graph: CSRGraph, pairs: torch.Tensor, hops: int, quantile: float, max_nodes_per_hop: int = 0) -> int:
    """SEAL_OGB's k: the ``quantile`` of the subgraph sizes of ``pairs`` (at least 10); a whole ``quantile`` > 1
    is k itself."""
    if quantile > 1:
        return int(quantile)
    from ...ops.subgraph import enclosing_subgraphs

    sizes = enclosing_subgraphs(graph, pairs, hops, max_nodes_per_hop=max_nodes_per_hop,
                                generator=torch.Generator().manual_seed(0)).sizes().sort().values
    if sizes.numel() == 0:
        return 10
    return max(10, int(sizes[int(math.ceil(quantile * sizes.numel())) - 1]))


def node_features(ds, use_features: bool) -> torch.Tensor | None:
    """The dataset's features, rows normalised to sum 1 (PyG ``NormalizeFeatures``), or None."""
    if not use_features or ds.x is None:
        return None
    x = ds.x.float()
    return x / x.sum(1, keepdim=True).clamp_min(1.0)


def create_model(cfg, ds, split, *, dropout: float | None = None, embedding: torch.Tensor | None = None) -> nn.Module:
    """The model ``cfg.model`` for dataset ``ds`` and its ``split`` (``dropout`` overrides ``cfg.dropout``).
    ``cfg.model_options``: ``heads`` (GAT, default 4); ``max_z`` (SEAL, default 1000). ``embedding``: SEAL's
    frozen node vectors [nodes, d] (:mod:`.embedding`), joined to the node features."""
    op = "linkpred"
    opts = dict(cfg.model_options)
    heads = opts.pop("heads", 4)
    max_z = opts.pop("max_z", MAX_Z)
    if opts:
        raise ValueError(f"{op}: unknown model_options {sorted(opts)} for model {cfg.model!r} (known: heads (gat), "
                         f"max_z (seal))")
    p = cfg.dropout if dropout is None else dropout
    x = node_features(ds, cfg.use_features)
    N = ds.num_nodes
    if cfg.model in ENCODERS:
        enc = NodeEncoder(cfg.model, N, 0 if x is None else x.shape[1], cfg.hidden, cfg.dim, cfg.num_layers, p,
                          heads=V.integer(op, "model_options.heads", heads, minimum=1))
        dec = DotDecoder() if cfg.decoder == "dot" else MLPDecoder(cfg.dim)
        if x is not None and float((x != 0).float().mean()) < SPARSE_BELOW:
            x = x.to_sparse_csr()  # the first layer's X @ W: Cora 3x faster forward and backward (1.3% nonzero)
        return GraphLinkPredictor(enc, dec, split.train_edge_index(), x)
    if embedding is not None:
        if embedding.shape[0] != N:
            raise ValueError(f"{op}: 'embedding' has {embedding.shape[0]} rows for a graph of {N} nodes")
        x = embedding.float() if x is None else torch.cat([x, embedding.float().to(x.device)], 1)
    graph = CSRGraph.from_edges(split.train, N)
    g = torch.Generator().manual_seed(0)
    sample = split.train[torch.randperm(split.train.shape[0], generator=g)[:1000]]
    rnd = torch.randint(0, N, (sample.shape[0], 2), generator=g)
    rnd = rnd[rnd[:, 0] != rnd[:, 1]]
    k = sort_pool_k(graph, torch.cat([sample, rnd]), cfg.hops, cfg.sort_k, cfg.max_nodes_per_hop)
    return SEAL(graph, x, hidden=cfg.dim, num_layers=cfg.num_layers, hops=cfg.hops, readout=cfg.readout, k=k,
                max_nodes_per_hop=cfg.max_nodes_per_hop, dropout=max(p, 0.5) if dropout is None else p,
                max_z=V.integer(op, "model_options.max_z", max_z, minimum=2),
                node_table=cfg.node_embedding == "learn")


def negative_pairs(P: torch.Tensor, neg) -> torch.Tensor:
    """[B·n, 2] the pairs of a :class:`hardneg.samplers.Negatives` for positives ``P`` [B, 2] (invalid slots hold
    a valid id; mask their scores with ``neg.valid``)."""
    return neg.triples(P).clamp_min(0).reshape(-1, 2)


def score_batch(model: nn.Module, P: torch.Tensor, neg, *, z: torch.Tensor | None = None, generator=None):
    """(positive scores [B], negative scores [B, n]) in one pass: one encoder call (or ``z`` given) for a
    :class:`GraphLinkPredictor`, one subgraph extraction for :class:`SEAL`."""
    B, n = neg.ids.shape
    pairs = torch.cat([P, negative_pairs(P, neg)])
    if isinstance(model, GraphLinkPredictor):
        s = model.decode(model.encode() if z is None else z, pairs)
    else:
        s = model.score_pairs(pairs, generator)
    return s[:B], s[B:].view(B, n)


def head_parameters(model: nn.Module) -> list[str]:
    """Names of the parameters after the last message-passing layer's input: the last encoder layer and the
    decoder (:class:`GraphLinkPredictor`), or the readout after the GNN (:class:`SEAL`)."""
    if isinstance(model, GraphLinkPredictor):
        last = len(model.encoder.convs) - 1
        keep = (f"encoder.convs.{last}.", "decoder.")
    else:
        keep = ("conv1.", "conv2.", "mlp.")
    return [k for k, _ in model.named_parameters() if k.startswith(keep)]
