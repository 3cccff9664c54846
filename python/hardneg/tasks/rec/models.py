"""Rec models behind one interface: LightGCN, SASRec and a SelfGNN-style model.

Shapes: ``U`` users, ``I`` items, ``d`` the embedding width, ``b`` users (or interactions) in a batch, ``P`` the
positives of a training step (one per interaction for LightGCN, one per sequence position for SASRec, one per user
for SelfGNN), ``T`` time intervals, ``L`` sequence length.

Every model scores a (user, item) pair by the dot product of a *query* vector (the user, or the user's sequence at
a position) with the item's vector, so negatives from any sampler are scored the same way and full-ranking
evaluation is one fused :func:`hardneg.ops.topk_mine` over the item table. The interface the task drives:

* ``kind``: ``"pairs"`` (trained on batches of (user, item) interactions) or ``"users"`` (batches of users; the
  model reads each user's training sequence);
* :meth:`train_view` ``(batch, generator) -> TrainView``: the positives of the step, their query vectors, the
  item table, the *short-term* vector HardGNN mines with and aligns by InfoNCE, and any extra loss term;
* :meth:`eval_view` ``(history) -> EvalView``: ``query(users)`` and the item table, given each user's history
  (the input of the sequence models);
* :meth:`regularization` ``(view, negatives)``: an L2 term the task weights by ``reg_weight``.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from ... import _validate as V
from ...data import _common as C
from ...ops.sparse import spmm as _spmm

MODELS = ("lightgcn", "sasrec", "selfgnn")
LEAKY = 0.5  # SelfGNN's leaky-ReLU slope (its 'leaky' default)
PRED_NUM = 5  # SelfGNN: the training target is one of the user's last PRED_NUM + 1 training items


@dataclass
class TrainView:
    """One training step as the task sees it: positives ``users``/``items`` [P], ``query`` [P, d], the item table
    ``table`` [I, d] (scores are ``query · table[item]``), ``short`` [P, d] (the user's short-term / sequence vector
    for HardGNN's cosine mining and InfoNCE) and ``extra`` (a scalar loss term, e.g. SelfGNN's alignment)."""
    users: torch.Tensor
    items: torch.Tensor
    query: torch.Tensor
    table: torch.Tensor
    short: torch.Tensor
    extra: torch.Tensor | float = 0.0

    @property
    def num_positives(self) -> int:
        return int(self.users.numel())


@dataclass
class EvalView:
    """``query(users [b]) -> [b, d]`` and the item table ``items`` [I, d] for ranking."""
    query: Callable[[torch.Tensor], torch.Tensor]
    items: torch.Tensor


# ---------------------------------------------------------------------------------------------- graph helpers
def normalized_adjacency(users: torch.Tensor, items: torch.Tensor, num_users: int, num_items: int) -> torch.Tensor:
    """The symmetric normalised user-item adjacency D^-1/2 A D^-1/2 over U + I nodes (items after users), as a
    sparse CSR tensor (PyG's ``gcn_norm`` without self-loops, LightGCN's propagation matrix)."""
    from torch_geometric.nn.conv.gcn_conv import gcn_norm

    n = num_users + num_items
    if users.numel() == 0:
        users = items = torch.zeros(0, dtype=torch.int64)
    src = torch.cat([users, items + num_users])
    dst = torch.cat([items + num_users, users])
    ei, w = gcn_norm(torch.stack([src, dst]), None, n, add_self_loops=False)
    with warnings.catch_warnings():  # "sparse CSR support is in beta" / "invariant checks disabled"
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_coo_tensor(ei, w, (n, n)).coalesce().to_sparse_csr()


def propagate(x: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
    """``adj @ x`` for a symmetric normalised adjacency (:func:`normalized_adjacency`): LGConv's propagation
    (``LGConv(normalize=False)`` on a sparse ``adj`` is exactly this product) through :func:`hardneg.ops.spmm`,
    whose backward is the same product (adjᵀ = adj). On this project's CPU box it is 2-3x torch's CSR product,
    which LGConv runs (bench/RESULTS.md, "spmm")."""
    return _spmm(adj, x, symmetric=True)


def tail_window(indptr: torch.Tensor, items: torch.Tensor, users: torch.Tensor, maxlen: int,
                drop: torch.Tensor | None = None):
    """Each user's last ``maxlen`` items of ``items[indptr[u] : indptr[u+1] - drop[u]]``, left-padded with −1 to the
    longest in the batch: ``(seq [b, L] int64, lengths [b])``, L >= 1. Longer sequences are truncated to their
    last ``maxlen`` items (SASRec's convention)."""
    start, end = indptr[users], indptr[users + 1]
    if drop is not None:
        end = end - drop
    n = (end - start).clamp(min=0, max=maxlen)
    L = max(1, int(n.max())) if users.numel() else 1
    col = torch.arange(L, device=users.device)[None, :]
    pad = (L - n)[:, None]
    ok = col >= pad
    idx = (end[:, None] - L + col).clamp_min(0)
    seq = torch.where(ok, items[idx.clamp_max(max(items.numel() - 1, 0))] if items.numel() else idx, -1)
    return seq, n


def length_groups(lengths: torch.Tensor, width: int, overhead: float = 2e4) -> list[torch.Tensor]:
    """Rows of a left-padded batch of sequences, grouped so that each group padded only to its own longest row
    costs least in all: the rows sorted by length are cut into contiguous runs, chosen by dynamic programming
    over the distinct lengths to minimise Σ rows · L · (2·width + L) per group (a position's projections and
    feed-forward scale with the width, its attention with L) plus ``overhead`` per group (one more encoder call).
    Returns the row indices of each group, shortest group first; a batch of equal lengths is one group."""
    n = lengths.tolist()
    if not n:
        return []
    distinct = sorted(set(n))
    count = {v: 0 for v in distinct}
    for v in n:
        count[v] += 1
    cum = [0]
    for v in distinct:
        cum.append(cum[-1] + count[v])
    m, w = len(distinct), 2 * width
    best, cut = [0.0] + [float("inf")] * m, [0] * (m + 1)
    for j in range(1, m + 1):  # best[j]: the distinct lengths 1..j in groups, the last one ending at j
        L = distinct[j - 1]
        per_row = L * (w + L)
        for i in range(1, j + 1):
            c = best[i - 1] + (cum[j] - cum[i - 1]) * per_row + overhead
            if c < best[j]:
                best[j], cut[j] = c, i
    bounds, j = [], m
    while j > 0:
        bounds.append((distinct[cut[j] - 1], distinct[j - 1]))
        j = cut[j] - 1
    return [torch.nonzero((lengths >= lo) & (lengths <= hi)).flatten() for lo, hi in reversed(bounds)]


def by_length(fn: Callable[[torch.Tensor], torch.Tensor], seq: torch.Tensor, width: int, *,
              per_position: bool, enabled: bool = True) -> torch.Tensor:
    """``fn(seq)`` for a left-padded batch of sequences [b, L] (−1 = padding), computed on groups of rows of
    similar length (:func:`length_groups`), each group cut to its own longest sequence; the outputs come back in
    the batch's row order (``per_position``: ``fn`` returns [b_g, L_g, ...], left-padded here with zeros to L;
    otherwise one row per sequence, [b_g, ...]). Exact for an ``fn``
    whose rows do not interact and whose padded positions change nothing (masked attention over right-aligned
    positions, as SASRec's and SelfGNN's encoders are), up to float rounding and the dropout masks drawn."""
    b, L = seq.shape
    n = (seq >= 0).sum(1)
    groups = length_groups(n, width) if enabled and b > 1 else []
    if len(groups) <= 1:
        return fn(seq)
    parts, order = [], torch.cat(groups)
    for rows in groups:
        Lg = max(1, int(n[rows].max()))  # this group's longest sequence
        y = fn(seq[rows, L - Lg:])
        if per_position and Lg != L:  # back to the batch's length
            y = F.pad(y, (0, 0) * (y.dim() - 2) + (L - Lg, 0))
        parts.append(y)
    inverse = torch.empty_like(order)
    inverse[order] = torch.arange(b, device=seq.device)
    return torch.cat(parts)[inverse]


def _attention_mask(valid: torch.Tensor, num_heads: int, causal: bool) -> torch.Tensor:
    """bool [b*h, L, L], True where attention is not allowed: keys that are padding (each position may always
    attend to itself, so padded rows stay finite) and, if ``causal``, later positions."""
    b, L = valid.shape
    eye = torch.eye(L, dtype=torch.bool, device=valid.device)
    allowed = valid[:, None, :] | eye[None]
    if causal:
        allowed = allowed & torch.ones(L, L, dtype=torch.bool, device=valid.device).tril()[None]
    return (~allowed).repeat_interleave(num_heads, 0)


# ---------------------------------------------------------------------------------------------- LightGCN
class LightGCN(nn.Module):
    """LightGCN (He et al., SIGIR 2020): layer-0 user and item embeddings, ``num_layers`` propagations over the
    symmetric normalised user-item graph (PyG's :class:`~torch_geometric.nn.conv.LGConv` propagation, run by
    :func:`propagate`: the same product, 2-3x faster on CPU), the mean of the
    layers as the final embedding, dot-product scores. Initialised N(0, 0.1²) as LightGCN-PyTorch. The L2 term
    (:meth:`regularization`) is LightGCN's: ½(‖e⁰_u‖² + ‖e⁰_i‖² + ‖e⁰_j‖²) / batch on the layer-0 embeddings of
    the step's users, positives and negatives."""

    kind = "pairs"

    def __init__(self, num_users: int, num_items: int, train: torch.Tensor, dim: int = 64, num_layers: int = 3):
        super().__init__()
        self.num_users, self.num_items, self.num_layers = num_users, num_items, num_layers
        self.user = nn.Embedding(num_users, dim)
        self.item = nn.Embedding(num_items, dim)
        nn.init.normal_(self.user.weight, std=0.1)
        nn.init.normal_(self.item.weight, std=0.1)
        self.adj = normalized_adjacency(train[:, 0], train[:, 1], num_users, num_items)

    def _apply(self, fn, *args, **kw):  # .to(device) moves the graph too
        out = super()._apply(fn, *args, **kw)
        self.adj = fn(self.adj)
        return out

    def embeddings(self):
        """(users [U, d], items [I, d]) after propagation."""
        x = torch.cat([self.user.weight, self.item.weight])
        acc, h = x, x
        for _ in range(self.num_layers):
            h = propagate(h, self.adj)
            acc = acc + h
        out = acc / (self.num_layers + 1)
        return out[: self.num_users], out[self.num_users:]

    def train_view(self, batch, generator=None) -> TrainView:
        u_all, i_all = self.embeddings()
        q = u_all[batch[:, 0]]
        return TrainView(batch[:, 0], batch[:, 1], q, i_all, q)

    def eval_view(self, history=None) -> EvalView:
        u_all, i_all = self.embeddings()
        return EvalView(lambda users: u_all[users], i_all)

    def regularization(self, view: TrainView, neg_ids: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        n = valid.sum(1).clamp_min(1)
        neg = (self.item.weight[neg_ids.clamp_min(0)].pow(2).sum(-1) * valid).sum(1) / n
        reg = self.user.weight[view.users].pow(2).sum(-1) + self.item.weight[view.items].pow(2).sum(-1) + neg
        return 0.5 * reg.sum() / max(1, view.num_positives)


# ---------------------------------------------------------------------------------------------- SASRec
class _SelfAttentionBlocks(nn.Module):
    """SASRec's blocks: LN(x) as the query, multi-head attention over x, residual on the query; then LN and the
    point-wise feed-forward (linear, dropout, ReLU, linear, dropout) with its residual; padded positions zeroed."""

    def __init__(self, dim, num_blocks, num_heads, dropout):
        super().__init__()
        self.num_heads = num_heads
        self.attn_ln = nn.ModuleList(nn.LayerNorm(dim, eps=1e-8) for _ in range(num_blocks))
        self.attn = nn.ModuleList(nn.MultiheadAttention(dim, num_heads, dropout=dropout, batch_first=True)
                                  for _ in range(num_blocks))
        self.ffn_ln = nn.ModuleList(nn.LayerNorm(dim, eps=1e-8) for _ in range(num_blocks))
        self.ffn = nn.ModuleList(nn.Sequential(nn.Linear(dim, dim), nn.Dropout(dropout), nn.ReLU(),
                                               nn.Linear(dim, dim), nn.Dropout(dropout)) for _ in range(num_blocks))

    def forward(self, x, valid, causal=True):
        mask = _attention_mask(valid, self.num_heads, causal)
        keep = valid[..., None].to(x.dtype)
        for ln, attn, fln, ffn in zip(self.attn_ln, self.attn, self.ffn_ln, self.ffn):
            q = ln(x)
            a, _ = attn(q, x, x, attn_mask=mask, need_weights=False)
            x = fln(q + a)
            x = (x + ffn(x)) * keep
        return x


class SASRec(nn.Module):
    """SASRec (Kang & McAuley, ICDM 2018), as SASRec.pytorch: item and learned position embeddings (items scaled
    by √d), dropout, ``num_blocks`` causal self-attention blocks, a final LayerNorm; the hidden state at a position
    scores the next item by a dot product with the (shared) item embedding. Trained on every position of each
    user's training sequence (input s[:-1], targets s[1:]).

    Sequences longer than ``maxlen`` keep their last ``maxlen`` items (SASRec does the same). Positions are
    right-aligned (the most recent item is position maxlen − 1), so a batch padded to its own longest sequence
    gives the same result as padding every sequence to ``maxlen``. Differences from SASRec.pytorch: padded keys
    are masked out of the attention (SASRec.pytorch only zeroes padded positions). Weights are Xavier-normal
    initialised, as SASRec.pytorch does.

    ``group_lengths`` (default True): a batch is encoded in groups of similar length (:func:`length_groups`), each
    padded only to its own longest sequence. Each sequence's encoding depends on that sequence alone, so the
    result is the same as one padded batch (up to float rounding and which dropout masks are drawn) for a
    fraction of the work: in a random batch of 128 Amazon Games users 90 % of the positions padded to the
    longest sequence are padding."""

    kind = "users"

    def __init__(self, num_items: int, history, dim: int = 50, num_blocks: int = 2, num_heads: int = 1,
                 maxlen: int = 200, dropout: float = 0.2, group_lengths: bool = True):
        super().__init__()
        self.num_items, self.maxlen, self.dim = num_items, maxlen, dim
        self.group_lengths = bool(group_lengths)
        self.history = history
        self.item = nn.Embedding(num_items + 1, dim, padding_idx=0)  # row 0: padding; item i is row i + 1
        self.pos = nn.Embedding(maxlen, dim)
        self.drop = nn.Dropout(dropout)
        self.blocks = _SelfAttentionBlocks(dim, num_blocks, num_heads, dropout)
        self.last_ln = nn.LayerNorm(dim, eps=1e-8)
        for name, p in self.named_parameters():  # SASRec.pytorch: Xavier-normal wherever it applies
            if p.dim() >= 2:
                nn.init.xavier_normal_(p)
        with torch.no_grad():
            self.item.weight[0].zero_()

    def _apply(self, fn, *args, **kw):
        out = super()._apply(fn, *args, **kw)
        self.history = tuple(fn(x) for x in self.history)
        return out

    @property
    def items(self) -> torch.Tensor:
        return self.item.weight[1:]

    def encode(self, seq: torch.Tensor) -> torch.Tensor:
        """Hidden states [b, L, d] of left-padded item sequences [b, L] (−1 = padding)."""
        return self.last_ln(by_length(self._blocks, seq, self.dim, per_position=True, enabled=self.group_lengths))

    def _blocks(self, seq: torch.Tensor) -> torch.Tensor:
        """The attention blocks' output [b, L, d] for left-padded sequences [b, L] (0 at padded positions)."""
        valid = seq >= 0
        L = seq.shape[1]
        x = self.item(seq + 1) * math.sqrt(self.dim)
        pos = (self.maxlen - L + torch.arange(L, device=seq.device)).clamp_min(0)
        x = self.drop(x + self.pos(pos)[None]) * valid[..., None]
        return self.blocks(x, valid)

    def train_view(self, users, generator=None) -> TrainView:
        seq, _ = tail_window(*self.history, users, self.maxlen + 1)
        inp, tgt = seq[:, :-1], seq[:, 1:]
        ok = inp >= 0
        h = self.encode(inp)
        q = h[ok]
        return TrainView(users[:, None].expand_as(inp)[ok], tgt[ok], q, self.items, q)

    def query(self, history, users, chunk: int = 256) -> torch.Tensor:
        """The hidden state at the last position of each user's ``history`` (its most recent maxlen items)."""
        out = []
        for s in range(0, users.numel(), chunk):
            seq, _ = tail_window(*history, users[s:s + chunk], self.maxlen)
            out.append(self.encode(seq)[:, -1])
        return torch.cat(out) if out else self.items.new_zeros(0, self.dim)

    def eval_view(self, history) -> EvalView:
        return EvalView(lambda users: self.query(history, users), self.items)

    def regularization(self, view, neg_ids, valid):
        return view.query.new_zeros(())

    def trainable(self, train: torch.Tensor) -> torch.Tensor:
        """Users with at least one training transition (two training items)."""
        indptr = self.history[0]
        return torch.nonzero(indptr[1:] - indptr[:-1] >= 2).flatten()


# ---------------------------------------------------------------------------------------------- SelfGNN
def interval_of(split, num_intervals: int) -> torch.Tensor:
    """int64 [m]: the time interval of each training interaction: equal-width slices of the training time range
    when the data has timestamps; otherwise the interaction's relative position in its user's sequence
    (⌊T · rank / length⌋), the closest stand-in for time in order-only data (SASRec files)."""
    T = num_intervals
    if split.train_time is not None and split.train.shape[0]:
        t = split.train_time.to(torch.float64)
        lo, hi = float(t.min()), float(t.max())
        return ((t - lo) / max(hi - lo, 1e-12) * T).floor().clamp(0, T - 1).to(torch.int64)
    u = split.train[:, 0]
    count = torch.bincount(u, minlength=split.num_users)
    start = torch.cumsum(count, 0) - count
    rank = torch.arange(u.numel()) - start[u]
    return (rank * T // count[u].clamp_min(1)).clamp(0, T - 1)


class SelfGNN(nn.Module):
    """A SelfGNN-style model (Liu, Xia & Huang, SIGIR 2024), following the paper and its released code:

    * **Short-term**: the training interactions are cut into ``T`` time intervals (:func:`interval_of`); each
      interval's user-item graph has its own user and item embeddings, encoded LightGCN-style (LGConv's
      propagation, :func:`propagate`) and SelfGNN's propagation h ← LeakyReLU(Â h) + h, summed over layers: u_k,
      i_k per interval.
    * **Long-term**: a GRU over each user's (and item's) interval embeddings u_1..u_T, then multi-head
      self-attention over the intervals (on LayerNorm'd GRU outputs) and the mean over intervals: ū, ī.
    * **Sequence**: the user's most recent ``maxlen`` items, as ī plus position embeddings (each LayerNorm'd),
      through ``num_blocks`` self-attention layers x ← LeakyReLU(MHA(LN(x))) + x, summed over positions: a_u.
    * **Score**: (ū + LeakyReLU(a_u)) · ī.
    * **Personalised alignment** (self-augmented learning): for each interval k and user, item pairs (i, j) drawn
      from the user's interactions in k; a per-user weight w_k(u) = σ(MLP([ū ⊙ u_k, ū, u_k])) and the loss
      max(0, 1 − w_k(u) · (s̄(u,i) − s̄(u,j)) · (s_k(u,i) − s_k(u,j))), with s(u,i) = Σ LeakyReLU(u ⊙ i) and the
      long-term difference s̄ detached: the short-term views are aligned to the long-term ranking, weighted by how
      reliable the model judges each user's interval.

    The training target of a user is one of its last ``PRED_NUM + 1`` training items (the input sequence is what
    precedes it), as in SelfGNN's sampler. HardGNN's short-term vector (mined by cosine, anchor of InfoNCE) is
    a_u, as in the HardGNN code (``att_user``).

    Simplifications, said plainly: no edge dropout on the interval graphs; the GRU's output dropout is
    ``dropout`` (SelfGNN: keepRate 0.5) and it uses a GRU as the paper says (the released code has an LSTM);
    nn.MultiheadAttention (with output projection) instead of SelfGNN's projection-free attention; the sequence
    encoder attends over positions as the paper describes (the released code first sums the sequence to one
    vector); the alignment loss is the mean over pairs weighted by ``ssl_weight`` (SelfGNN: the sum times
    ``ssl_reg``); no global L2 term (use ``weight_decay``); users with no training item are not trained.

    ``group_lengths`` (default True): the sequence encoder runs on groups of similar length, as in
    :class:`SASRec` (:func:`by_length`; the same result)."""

    kind = "users"

    def __init__(self, num_users: int, num_items: int, split, history, dim: int = 64, num_layers: int = 2,
                 num_blocks: int = 1, num_heads: int = 1, maxlen: int = 200, dropout: float = 0.5,
                 num_intervals: int = 5, ssl_pairs: int = 20, group_lengths: bool = True):
        super().__init__()
        self.num_users, self.num_items, self.dim, self.maxlen = num_users, num_items, dim, maxlen
        self.group_lengths = bool(group_lengths)
        self.num_layers, self.T, self.ssl_pairs = num_layers, num_intervals, ssl_pairs
        self.history = history
        T = num_intervals
        self.user = nn.Parameter(torch.empty(T, num_users, dim))
        self.item = nn.Parameter(torch.empty(T, num_items, dim))
        for k in range(T):
            nn.init.xavier_uniform_(self.user.data[k])
            nn.init.xavier_uniform_(self.item.data[k])
        k_of = interval_of(split, T)
        self.adjs, self.interval_items = [], []
        for k in range(T):
            pairs = split.train[k_of == k]
            self.adjs.append(normalized_adjacency(pairs[:, 0], pairs[:, 1], num_users, num_items))
            self.interval_items.append(C.csr(pairs[:, 0], pairs[:, 1], num_users))
        self.gru = nn.GRU(dim, dim, batch_first=True)
        self.gru_drop = nn.Dropout(dropout)
        self.user_ln, self.item_ln = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.user_att = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.item_att = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.pos = nn.Parameter(torch.empty(maxlen, dim))
        nn.init.xavier_uniform_(self.pos)
        self.seq_item_ln, self.seq_pos_ln = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.seq_ln = nn.ModuleList(nn.LayerNorm(dim) for _ in range(num_blocks))
        self.seq_att = nn.ModuleList(nn.MultiheadAttention(dim, num_heads, batch_first=True) for _ in range(num_blocks))
        self.num_heads = num_heads
        self.meta = nn.Sequential(nn.Linear(3 * dim, 32), nn.LeakyReLU(LEAKY), nn.Linear(32, 1), nn.Sigmoid())

    def _apply(self, fn, *args, **kw):
        out = super()._apply(fn, *args, **kw)
        self.adjs = [fn(a) for a in self.adjs]
        self.interval_items = [tuple(fn(x) for x in c) for c in self.interval_items]
        self.history = tuple(fn(x) for x in self.history)
        return out

    # -------------------------------------------------------------------------------------- views
    def short_term(self) -> torch.Tensor:
        """[T, U + I, d]: each interval's propagated user (first U rows) and item embeddings."""
        out = []
        for k in range(self.T):
            h = torch.cat([self.user[k], self.item[k]])
            acc = h
            for _ in range(self.num_layers):
                h = F.leaky_relu(propagate(h, self.adjs[k]), LEAKY) + h
                acc = acc + h
            out.append(acc)
        return torch.stack(out)

    def _long(self, seqs: torch.Tensor, ln, att) -> torch.Tensor:
        h, _ = self.gru(seqs)
        h = ln(self.gru_drop(h))
        a, _ = att(h, h, h, need_weights=False)
        return a.mean(1)

    def long_users(self, S, users):
        return self._long(S[:, users].transpose(0, 1), self.user_ln, self.user_att)

    def long_items(self, S):
        return self._long(S[:, self.num_users:].transpose(0, 1), self.item_ln, self.item_att)

    def sequence(self, seq: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """a_u [b, d]: the self-attention encoding of left-padded item sequences [b, L], summed over positions."""
        return by_length(lambda s: self._sequence(s, items), seq, self.dim, per_position=False,
                         enabled=self.group_lengths)

    def _sequence(self, seq: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        valid = seq >= 0
        keep = valid[..., None].to(items.dtype)
        L = seq.shape[1]
        pos = (self.maxlen - L + torch.arange(L, device=seq.device)).clamp_min(0)
        x = self.seq_item_ln(items[seq.clamp_min(0)] * keep) + self.seq_pos_ln(self.pos[pos][None] * keep)
        x = x * keep
        mask = _attention_mask(valid, self.num_heads, causal=False)
        for ln, att in zip(self.seq_ln, self.seq_att):
            q = ln(x)
            a, _ = att(q, q, q, attn_mask=mask, need_weights=False)
            x = (F.leaky_relu(a, LEAKY) + x) * keep
        return x.sum(1)

    def train_view(self, users, generator=None) -> TrainView:
        indptr, seq_items = self.history
        n = indptr[users + 1] - indptr[users]
        hi = (n - 3).clamp(min=1, max=PRED_NUM + 1)
        r = torch.rand(users.numel(), generator=generator, dtype=torch.float64).to(users.device)
        choose = (r * hi).floor().to(torch.int64).clamp_max(hi - 1) + 1  # 1..hi
        choose = torch.minimum(choose, n)
        target = seq_items[indptr[users + 1] - choose]
        seq, _ = tail_window(indptr, seq_items, users, self.maxlen, drop=choose)
        S = self.short_term()
        lu = self.long_users(S, users)
        li = self.long_items(S)
        a = self.sequence(seq, li)
        q = lu + F.leaky_relu(a, LEAKY)
        extra = self.alignment(S, users, lu, li, generator)
        return TrainView(users, target, q, li, a, extra)

    def alignment(self, S, users, lu, li, generator) -> torch.Tensor:
        """The personalised alignment loss (class docstring), the mean over all sampled pairs."""
        U, dev = self.num_users, users.device
        total, count = lu.new_zeros(()), 0
        for k in range(self.T):
            ptr, its = self.interval_items[k]
            c = ptr[users + 1] - ptr[users]
            m = torch.minimum(c // 2, torch.full_like(c, self.ssl_pairs))
            if int(m.sum()) == 0:
                continue
            row = torch.repeat_interleave(torch.arange(users.numel(), device=dev), m)
            r = torch.rand(2, row.numel(), generator=generator, dtype=torch.float64).to(dev)
            pick = (r * c[row]).floor().to(torch.int64).clamp_max(c[row] - 1) + ptr[users[row]]
            i, j = its[pick[0]], its[pick[1]]
            uk = S[k, users]
            w = self.meta(torch.cat([lu * uk, lu, uk], 1)).squeeze(1)[row]
            s_long = lambda it: F.leaky_relu(lu[row] * li[it], LEAKY).sum(1)  # noqa: E731
            s_short = lambda it: F.leaky_relu(uk[row] * S[k, U + it], LEAKY).sum(1)  # noqa: E731
            diff_long = (s_long(i) - s_long(j)).detach()
            total = total + F.relu(1.0 - w * diff_long * (s_short(i) - s_short(j))).sum()
            count += row.numel()
        return total / max(count, 1)

    def eval_view(self, history) -> EvalView:
        S = self.short_term()
        li = self.long_items(S)

        def query(users, chunk=1024):
            out = []
            for s in range(0, users.numel(), chunk):
                u = users[s:s + chunk]
                seq, _ = tail_window(*history, u, self.maxlen)
                out.append(self.long_users(S, u) + F.leaky_relu(self.sequence(seq, li), LEAKY))
            return torch.cat(out) if out else li.new_zeros(0, self.dim)

        return EvalView(query, li)

    def regularization(self, view, neg_ids, valid):
        return view.query.new_zeros(())

    def trainable(self, train: torch.Tensor) -> torch.Tensor:
        indptr = self.history[0]
        return torch.nonzero(indptr[1:] - indptr[:-1] >= 1).flatten()


# ---------------------------------------------------------------------------------------------- factory
def create_model(cfg, split) -> nn.Module:
    """The model ``cfg.model`` for a :class:`hardneg.tasks.rec.data.RecSplit` (training interactions only)."""
    name = V.choice("create_model", "model", cfg.model.lower(), MODELS)
    U, I = split.num_users, split.num_items  # noqa: E741
    if name == "lightgcn":
        return LightGCN(U, I, split.train, cfg.dim, cfg.num_layers)
    history = split.history("train")[:2]
    if name == "sasrec":
        return SASRec(I, history, cfg.dim, cfg.num_blocks, cfg.num_heads, cfg.maxlen, cfg.dropout)
    return SelfGNN(U, I, split, history, cfg.dim, cfg.num_layers, cfg.num_blocks, cfg.num_heads, cfg.maxlen,
                   cfg.dropout, cfg.num_intervals, cfg.ssl_pairs)
