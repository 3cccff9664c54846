"""Linkpred task data: static undirected graphs, a seeded 85/5/10 edge split with fixed evaluation negatives.

Shapes: ``N`` nodes, ``M`` undirected edges (each stored once, u < v), ``m`` positives of one part.

* Graphs are undirected: ``edges`` [M, 2] holds each edge once with u < v (sorted); :meth:`edge_index` gives
  the symmetric [2, 2M] form. Self-loops and repeated edges (an exact repeat or the reverse of an earlier row)
  are removed with a warning that counts them; isolated nodes are kept (NS has 128).
* :meth:`LinkPredDataset.split` follows PyG's ``RandomLinkSplit(num_val=0.05, num_test=0.1,
  is_undirected=True)`` / GAE: a seeded permutation of the undirected edges, ``int(0.05 M)`` valid,
  ``int(0.1 M)`` test, the rest train; the training graph is the training edges only. Negatives, all uniform
  over the non-edges of the FULL graph (``hardneg.integrations.pyg.negative_sampling``, exact), u < v:

  - ``valid_neg`` / ``test_neg``: one per positive (1:1), drawn together so they are distinct and disjoint;
  - ``hits_valid_neg`` / ``hits_test_neg``: OGB's ranking set for Hits@K (ogbl-collab: every positive is
    ranked against one shared set of 100,000 random negative edges; ogbl-ppa uses 3M, ogbl-ddi ~100k), so
    ``num_hits_negatives=100_000`` per part, capped at the number of non-edges (then the set is all of them
    and Hits@K is exact); drawn independently for valid and test, as OGB ships them;
  - ``valid_mrr_neg`` / ``test_mrr_neg`` [m, 100]: per positive (u, v), 100 distinct nodes w replacing v such
    that (u, w) is not an edge and w != u (OGB ogbl-citation2 style, here with u the smaller id); a u adjacent
    to every other node gets a row of -1 (warned).

  One generator (``seed``) draws, in this order: the permutation, the 1:1 negatives, the Hits sets, the MRR
  sets; a split warns when a node that has edges is left without any training edge.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import torch

from hardneg import _validate as V
from hardneg.data import _common as C
from hardneg._paths import default_root
from hardneg.known import KnownSet

__all__ = ["SHIPPED", "LinkPredDataset", "LinkSplit", "find", "available", "load_dataset", "train_batches"]

SHIPPED = {
    "cora": "Cora citations (Planetoid): 2,708 nodes, 5,278 edges, 1,433 binary features, 7 classes",
    "citeseer": "CiteSeer citations (Planetoid): 3,327 nodes, 4,552 edges, 3,703 features, 6 classes",
    "usair": "US air lines (SEAL): 332 nodes, 2,126 edges, no features",
    "ns": "Network-science co-authorship (SEAL): 1,589 nodes (128 isolated), 2,742 edges, no features",
    "pb": "Political blogs (SEAL): 1,222 nodes, 16,714 edges, no features",
    "celegans": "C. elegans neural network (SEAL): 297 nodes, 2,148 edges, no features",
    "router": "Router-level Internet (SEAL): 5,022 nodes, 6,258 edges, no features",
    "ecoli": "E. coli metabolic network (SEAL): 1,805 nodes, 14,660 edges, no features",
}
#: PyG Planetoid names (``download=True`` fetches these through ``torch_geometric.datasets.Planetoid``)
PLANETOID = {"cora": "Cora", "citeseer": "CiteSeer", "pubmed": "PubMed"}
_SEAL = {"usair": "USAir", "ns": "NS", "pb": "PB", "celegans": "Celegans", "router": "Router", "ecoli": "Ecoli"}
PLACES = {n: (f"static/{n}", f"static/{pyg}/raw") for n, pyg in PLANETOID.items()}
PLACES.update({n: (f"static/seal/{f}.mat",) for n, f in _SEAL.items()})
ALIASES = {"c.elegans": "celegans", "c-elegans": "celegans", "e.coli": "ecoli", "e-coli": "ecoli", "us-air": "usair"}


@dataclass
class LinkSplit:
    """Positive and negative edges ([m, 2] int64, u < v) of a seeded 85/5/10 split (module docstring)."""
    num_nodes: int
    train: torch.Tensor
    valid: torch.Tensor
    test: torch.Tensor
    valid_neg: torch.Tensor       # [m_valid, 2] 1:1
    test_neg: torch.Tensor        # [m_test, 2] 1:1
    hits_valid_neg: torch.Tensor  # [H, 2] shared ranking set (OGB Hits@K)
    hits_test_neg: torch.Tensor
    valid_mrr_neg: torch.Tensor   # [m_valid, k] nodes replacing v in (u, v)
    test_mrr_neg: torch.Tensor
    seed: int
    nodes_without_train_edge: int

    def train_edge_index(self) -> torch.Tensor:
        """[2, 2 m_train] symmetric edge_index of the training graph."""
        return _symmetric(self.train)

    def describe(self) -> dict:
        return {"protocol": "random 85/5/10 edge split (PyG RandomLinkSplit, is_undirected)", "seed": self.seed,
                "train": int(self.train.shape[0]), "valid": int(self.valid.shape[0]), "test": int(self.test.shape[0]),
                "negatives": "uniform non-edges of the full graph: 1:1 valid/test, OGB-style shared Hits set, "
                             f"{self.test_mrr_neg.shape[1]} per positive for MRR",
                "hits_negatives": int(self.hits_test_neg.shape[0]), "mrr_negatives": int(self.test_mrr_neg.shape[1]),
                "nodes_without_train_edge": self.nodes_without_train_edge}


@dataclass
class LinkPredDataset:
    """An undirected graph: ``edges`` [M, 2] int64 (u < v, sorted, unique), optional node features ``x``
    [N, F] float32 and labels ``y`` [N] int64 (Planetoid)."""
    name: str
    num_nodes: int
    edges: torch.Tensor
    x: torch.Tensor | None = None
    y: torch.Tensor | None = None
    source: str = ""
    self_loops_removed: int = 0
    duplicates_removed: int = 0
    component_of: tuple[int, int] | None = None  # (nodes, edges) of the graph this one is the largest component of

    @classmethod
    def from_edges(cls, edges, num_nodes: int | None = None, *, x=None, y=None, name: str = "custom",
                   symmetric: bool = False, source: str = "") -> "LinkPredDataset":
        """Build from an edge list ``edges`` [E, 2] (one row per edge, either direction). ``symmetric=True``:
        the rows are an adjacency that stores each edge in both directions (a ``.mat`` or a PyG edge_index
        transposed); a row lacking its reverse is then symmetrised with a warning. Self-loops and repeats are
        removed with a warning.

        Raises:
            TypeError: ``edges`` not an integer tensor.
            ValueError: ``edges`` not [E, 2], ids out of [0, num_nodes), features with the wrong row count.
        """
        op = "LinkPredDataset.from_edges"
        e = V.tensor(op, "edges", edges, ndim=2, dtypes=V.INDEX_DTYPES, kind="integer tensor", what="[E, 2]")
        if e.shape[1] != 2:
            raise ValueError(f"{op}: 'edges' must be [E, 2] (got {V.describe(e)})")
        n = None if num_nodes is None else V.integer(op, "num_nodes", num_nodes, minimum=1)
        u, v = C.ids(op, "edges[:, 0]", e[:, 0], n), C.ids(op, "edges[:, 1]", e[:, 1], n)
        n = n or (int(e.max()) + 1 if e.numel() else 1)
        loops = u == v
        u, v = u[~loops], v[~loops]
        a, b = torch.minimum(u, v), torch.maximum(u, v)
        key = a * n + b
        uniq = torch.unique(key)
        dups = key.numel() - uniq.numel()
        if symmetric:
            dirk = torch.unique(u * n + v)
            lacking = int((~torch.isin(v * n + u, dirk)).sum())
            dups = key.numel() - 2 * uniq.numel() + lacking  # rows beyond the two directions of each edge
            if lacking:
                warnings.warn(f"{op}: {lacking} adjacency entries lacked their reverse; the graph was symmetrised",
                              stacklevel=2)
        if int(loops.sum()) or dups:
            exact = key.numel() - torch.unique(u * n + v).numel()
            warnings.warn(f"{op}: removed {int(loops.sum())} self-loops and {dups} duplicate edges ({exact} exact "
                          f"repeats of a row{'' if symmetric else f', {dups - exact} reverse-direction repeats'})",
                          stacklevel=2)
        if x is not None:
            x = V.floating(op, "x", x, 2, "[N, F]").float()
            if x.shape[0] != n:
                raise ValueError(f"{op}: 'x' must have num_nodes={n} rows (got {x.shape[0]})")
        return cls(name, n, torch.stack([uniq // n, uniq % n], 1), x, y, source, int(loops.sum()), dups)

    @property
    def num_edges(self) -> int:
        return self.edges.shape[0]

    def edge_index(self) -> torch.Tensor:
        """[2, 2M] symmetric edge_index (both directions of every edge)."""
        return _symmetric(self.edges)

    def describe(self, split: LinkSplit | None = None) -> dict:
        deg = torch.bincount(self.edges.flatten(), minlength=self.num_nodes)
        out = {"name": self.name, "task": "linkpred", "nodes": self.num_nodes, "edges": self.num_edges,
               "isolated_nodes": int((deg == 0).sum()), "features": 0 if self.x is None else int(self.x.shape[1]),
               "self_loops_removed": self.self_loops_removed, "duplicates_removed": self.duplicates_removed,
               "source": self.source}
        if self.component_of is not None:
            out["largest_component_of"] = {"nodes": self.component_of[0], "edges": self.component_of[1]}
        if split is not None:
            out["split"] = split.describe()
        return out

    def largest_component(self) -> "LinkPredDataset":
        """The graph's largest connected component as a dataset of its own (PyG's ``LargestConnectedComponents``
        transform: nodes renumbered in their old order, features and labels kept), the protocol of BUDDY /
        subgraph-sketching's Planetoid runs and node2vec's. Split it as any dataset. CiteSeer keeps 2,120 of its
        3,327 nodes; scores on a component are not comparable with scores on the whole graph. A connected graph
        is returned as it is."""
        from torch_geometric.data import Data
        from torch_geometric.transforms import LargestConnectedComponents

        sub = LargestConnectedComponents(1)(Data(edge_index=self.edge_index(), num_nodes=self.num_nodes, x=self.x,
                                                 y=self.y))
        if sub.num_nodes == self.num_nodes:
            return self
        out = LinkPredDataset.from_edges(sub.edge_index.T, sub.num_nodes, x=sub.x, y=sub.y, name=self.name,
                                         symmetric=True, source=self.source)
        out.self_loops_removed, out.duplicates_removed = self.self_loops_removed, self.duplicates_removed
        out.component_of = (self.num_nodes, self.num_edges)
        return out

    def split(self, *, seed: int = 0, val_ratio: float = 0.05, test_ratio: float = 0.1,
              num_hits_negatives: int = 100_000, num_mrr_negatives: int = 100) -> LinkSplit:
        """The seeded edge split with fixed negatives (module docstring).

        Raises:
            ValueError: ratios outside (0, 1) or summing to >= 1, a part that would be empty, too few non-edges
                for the 1:1 negatives, negative counts < 0.
        """
        from hardneg.integrations.pyg import negative_sampling

        op = "LinkPredDataset.split"
        gen = C.seed_generator(op, seed)
        for nm, r in (("val_ratio", val_ratio), ("test_ratio", test_ratio)):
            if not 0 < V.positive_float(op, nm, r) < 1:
                raise ValueError(f"{op}: '{nm}' must be in (0, 1) (got {r})")
        if val_ratio + test_ratio >= 1:
            raise ValueError(f"{op}: 'val_ratio' + 'test_ratio' must be < 1 (got {val_ratio + test_ratio})")
        H = V.integer(op, "num_hits_negatives", num_hits_negatives, minimum=0)
        K = V.integer(op, "num_mrr_negatives", num_mrr_negatives, minimum=0)
        M, N = self.num_edges, self.num_nodes
        nv, nt = int(val_ratio * M), int(test_ratio * M)
        if nv == 0 or nt == 0 or M - nv - nt == 0:
            raise ValueError(f"{op}: {M} edges are too few for a {val_ratio}/{test_ratio} split "
                             f"(valid {nv}, test {nt}, train {M - nv - nt})")
        non_edges = N * (N - 1) // 2 - M
        if non_edges < nv + nt:
            raise ValueError(f"{op}: the graph has {non_edges} non-edges, fewer than the {nv + nt} 1:1 negatives")
        perm = torch.randperm(M, generator=gen)
        train, valid, test = (self.edges[p] for p in (perm[:M - nv - nt], perm[M - nv - nt:M - nt], perm[M - nt:]))
        full = self.edge_index()

        def non_edge_pairs(count):
            ei = negative_sampling(full, N, 2 * count, force_undirected=True, generator=gen)
            return ei[:, :count].T.contiguous()

        neg = non_edge_pairs(nv + nt)
        h = min(H, non_edges)
        hits_valid, hits_test = non_edge_pairs(h), non_edge_pairs(h)
        loops = torch.arange(N)
        known = KnownSet.from_edges(torch.cat([self.edges, torch.stack([loops, loops], 1)]), N, directed=False)
        mrr_valid = C.sample_distinct(op, valid[:, 0], K, N, known, gen)
        mrr_test = C.sample_distinct(op, test[:, 0], K, N, known, gen)
        had = torch.bincount(self.edges.flatten(), minlength=N) > 0
        lost = int((had & ~(torch.bincount(train.flatten(), minlength=N) > 0)).sum())
        if lost:
            warnings.warn(f"{op}: {lost} nodes that have edges got no training edge (all their edges went to "
                          f"valid/test); they are isolated in the training graph", stacklevel=2)
        return LinkSplit(N, train, valid, test, neg[:nv], neg[nv:], hits_valid, hits_test, mrr_valid, mrr_test,
                         int(seed), lost)


def train_batches(edges: torch.Tensor, batch_size: int, generator: torch.Generator, device=None):
    """Training edges [m, 2] in a random order drawn from ``generator``, each randomly oriented (u, v) or
    (v, u) (so corrupting the second column corrupts either endpoint), in batches of ``batch_size``."""
    m = edges.shape[0]
    perm = torch.randperm(m, generator=generator)
    flip = torch.rand(m, generator=generator) < 0.5
    e = edges[perm]
    e = torch.where(flip[:, None], e.flip(1), e)
    for s in range(0, m, batch_size):
        yield e[s : s + batch_size].to(device) if device is not None else e[s : s + batch_size]


def _symmetric(edges: torch.Tensor) -> torch.Tensor:
    return torch.cat([edges.T, edges.flip(1).T], 1).contiguous()


# ---------------------------------------------------------------------------------------------- readers
def read_planetoid(folder: str, prefix: str, name: str | None = None) -> LinkPredDataset:
    """The Planetoid ``ind.<prefix>.*`` files of ``folder`` via ``torch_geometric.io.read_planetoid_data``
    (which already drops the graph dict's self-loops, e.g. CiteSeer's, and pads CiteSeer's missing test rows)."""
    from torch_geometric.io import read_planetoid_data

    d = read_planetoid_data(folder, prefix)
    return LinkPredDataset.from_edges(d.edge_index.T, d.num_nodes, x=d.x, y=d.y, name=name or prefix, symmetric=True,
                                      source=os.path.abspath(folder))


def read_mat(path: str, name: str | None = None) -> LinkPredDataset:
    """A SEAL ``.mat`` file: its ``net`` variable, an N x N (sparse) adjacency; any nonzero entry is an edge."""
    import scipy.io
    import scipy.sparse as sp

    op = "read_mat"
    mat = scipy.io.loadmat(path)
    if "net" not in mat:
        got = sorted(k for k in mat if not k.startswith("__"))
        raise ValueError(f"{op}: {path!r} has no 'net' variable (got {got})")
    A = sp.coo_matrix(mat["net"])
    A.eliminate_zeros()
    if A.shape[0] != A.shape[1]:
        raise ValueError(f"{op}: 'net' in {path!r} must be a square adjacency (got shape {A.shape})")
    e = torch.stack([torch.from_numpy(A.row.astype("int64")), torch.from_numpy(A.col.astype("int64"))], 1)
    return LinkPredDataset.from_edges(e, A.shape[0], name=name or os.path.splitext(os.path.basename(path))[0],
                                      symmetric=True, source=os.path.abspath(path))


def read_edge_list(path: str, *, num_nodes: int | None = None, id_base: int | None = None,
                   name: str | None = None) -> LinkPredDataset:
    """A text edge list: two integer id columns per line (whitespace or comma separated, optional header, any
    further columns such as a weight ignored). ``id_base`` None: 0 when some id is 0, else 1 (SEAL's USAir,
    NS and PB lists are 1-based); ids become 0-based. ``num_nodes`` default: the largest id + 1 after that."""
    op = "read_edge_list"
    _, rows, lines = C.read_rows(op, path)
    u = torch.from_numpy(C.column(op, path, rows, lines, 0, "source id"))
    v = torch.from_numpy(C.column(op, path, rows, lines, 1, "destination id"))
    if id_base is None:
        id_base = 0 if bool((u == 0).any() or (v == 0).any()) else 1
    elif id_base not in (0, 1):
        raise ValueError(f"{op}: 'id_base' must be 0, 1 or None (got {id_base!r})")
    ds = LinkPredDataset.from_edges(torch.stack([u, v], 1) - id_base, num_nodes,
                                    name=name or os.path.splitext(os.path.basename(path))[0],
                                    source=os.path.abspath(path))
    return ds


# ---------------------------------------------------------------------------------------------- finding
def find(name_or_path) -> tuple[str, str] | None:
    """``(path, name)`` where a shipped name (or a path) resolves locally, else None."""
    return C.locate(name_or_path, PLACES, ALIASES)


def available() -> list[dict]:
    return C.available("linkpred", SHIPPED, find)


def load_dataset(name_or_path, *, download: bool = False, num_nodes: int | None = None,
                 id_base: int | None = None) -> LinkPredDataset:
    """A shipped name, ``pubmed`` with ``download=True`` (Cora/CiteSeer/PubMed through PyG's ``Planetoid``),
    a Planetoid folder (``ind.<name>.*``), a SEAL-style ``.mat`` file or an edge-list file (``num_nodes`` and
    ``id_base`` as in :func:`read_edge_list`).

    Raises:
        ValueError: not found (names the shipped sets), unreadable file, ids out of range.
    """
    hit = find(name_or_path)
    name = C.normalize(os.fspath(name_or_path), ALIASES)
    if hit is None and download and name in PLANETOID:
        from torch_geometric.datasets import Planetoid

        Planetoid(os.path.join(default_root(), "static"), PLANETOID[name])
        hit = find(name)
    if hit is None:
        hint = f"; download=True fetches {sorted(PLANETOID)} through PyG's Planetoid" if name in PLANETOID else ""
        raise C.not_found("linkpred", name_or_path, SHIPPED, "a Planetoid folder, a SEAL .mat file or an edge list",
                          hint)
    path, name = hit
    if os.path.isdir(path):
        graphs = [f for f in os.listdir(path) if f.startswith("ind.") and f.endswith(".graph")]
        if not graphs:
            raise ValueError(f"load_dataset: {path!r} holds no Planetoid files (ind.<name>.graph, ...)")
        return read_planetoid(path, graphs[0][4:-6], name.lower() if name in PLANETOID else None)
    if path.endswith(".mat"):
        return read_mat(path, name)
    return read_edge_list(path, num_nodes=num_nodes, id_base=id_base, name=name)
