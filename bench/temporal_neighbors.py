"""Benchmark temporal_neighbors on Wikipedia (../shared/data/temporal/wikipedia): streaming (TGN-style replay in
chronological batches of 200 events, both endpoints queried at their event times: 400 queries per call, 788
calls) and bulk (all 314,948 endpoint queries in one call; the graph build is timed separately).

Baselines: a vectorised numpy ``searchsorted`` lookup over the same T-CSR (recent: exact; uniform: with
replacement, which is cheaper than what we do), and PyG's LastNeighborLoader when installed (not time-exact:
it returns the last neighbours *inserted*, whatever the query time; say so when reading its numbers). The
streaming entry starts each search at a per-node cursor; ``hardneg cpu (no cursor)`` times it with plain binary
searches.

``"temporal_assemble"`` (the batch assembly a TGN / TGAT layer reads: lookup + float32 time deltas, one C++
call) is timed against the numpy lookup plus the same deltas (``numpy searchsorted + dt``): its "vs base" ratio is
taken against that provider (``Provider.versus``).

    python bench/temporal_neighbors.py [--quick]
    python bench/temporal_neighbors.py --device cpu --repeats 21 --interleave   # the ratios to quote

``--interleave`` (bench/_harness.py) has the providers take turns pass by pass and reports paired ratios: this
2-vCPU virtual machine's speed drifts by tens of percent between seconds, which the ratio of two medians taken
minutes apart does not survive.
"""
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from _harness import Config, Provider, main  # noqa: E402

import hardneg  # noqa: E402
from hardneg.data import find_shared_data, load_temporal_csv  # noqa: E402

_EV = {}


def events(quick):
    if "ev" not in _EV:
        root = find_shared_data()
        path = os.path.join(root, "temporal", "wikipedia", "wikipedia.csv") if root else None
        if path and os.path.exists(path):
            _EV["ev"] = load_temporal_csv(path)
        else:  # synthetic Wikipedia-sized stream
            g = torch.Generator().manual_seed(0)
            M = 157_474
            src = torch.randint(0, 8227, (M,), generator=g)
            dst = torch.randint(8227, 9227, (M,), generator=g)
            t = torch.sort(torch.randint(0, 2_678_373, (M,), generator=g)).values
            from hardneg.data.temporal import TemporalEvents

            _EV["ev"] = TemporalEvents(src, dst, t, torch.zeros(M), None, 9227, "synthetic")
    ev = _EV["ev"]
    if quick:
        n = 20_000
        from hardneg.data.temporal import TemporalEvents

        return TemporalEvents(ev.src[:n], ev.dst[:n], ev.t[:n], ev.label[:n], None, ev.num_nodes, ev.name)
    return ev


def batches(ev, size=200):
    out = []
    for a in range(0, ev.src.numel(), size):
        b = min(a + size, ev.src.numel())
        out.append((torch.cat([ev.src[a:b], ev.dst[a:b]]).contiguous(), torch.cat([ev.t[a:b], ev.t[a:b]]).contiguous()))
    return out


class NumpyTCSR:
    """Vectorised numpy reference: per-node (time, eid)-sorted lists and one searchsorted per query."""

    def __init__(self, ev):
        s, d, t = ev.src.numpy(), ev.dst.numpy(), ev.t.numpy()
        node = np.concatenate([s, d])
        nbr = np.concatenate([d, s])
        tt = np.concatenate([t, t])
        eid = np.concatenate([np.arange(s.size), np.arange(s.size)])
        order = np.lexsort((eid, tt, node))
        self.node, self.nbr, self.t, self.eid = node[order], nbr[order], tt[order], eid[order]
        self.uniq = np.unique(self.t)
        self.U = self.uniq.size + 1
        self.key = self.node.astype(np.int64) * self.U + np.searchsorted(self.uniq, self.t)
        self.ptr = np.searchsorted(self.node, np.arange(ev.num_nodes + 1))
        self.rng = np.random.default_rng(0)

    def recent(self, nodes, times, k):
        lo = self.ptr[nodes]
        pos = np.searchsorted(self.key, nodes * self.U + np.searchsorted(self.uniq, times))
        idx = pos[:, None] - 1 - np.arange(k)[None, :]
        valid = idx >= lo[:, None]
        idx = np.where(valid, idx, 0)
        return np.where(valid, self.nbr[idx], -1), np.where(valid, self.eid[idx], -1), self.t[idx], valid

    def uniform(self, nodes, times, k):
        lo = self.ptr[nodes]
        pos = np.searchsorted(self.key, nodes * self.U + np.searchsorted(self.uniq, times))
        cnt = pos - lo
        idx = lo[:, None] + (self.rng.random((nodes.size, k)) * cnt[:, None]).astype(np.int64)
        valid = cnt[:, None] > 0
        idx = np.where(valid, idx, 0)
        return np.where(valid, self.nbr[idx], -1), np.where(valid, self.eid[idx], -1), self.t[idx], valid


def _ours(p, device, call, setup=None):
    """A provider timing ``call(graph, nodes, times, k, strategy, generator)``: streaming (one call per batch)
    or bulk (one call); ``setup(graph)`` runs once first."""
    ev = events(p["quick"])
    g = ev.graph().to(device)
    if setup is not None:
        setup(g)
    gen = torch.Generator().manual_seed(0)
    if p["mode"] == "stream":
        bs = [(n.to(device), t.to(device)) for n, t in batches(ev)]

        def f():
            for n, t in bs:
                call(g, n, t, p["k"], p["strategy"], gen)
        return f
    nodes = torch.cat([ev.src, ev.dst]).to(device)
    times = torch.cat([ev.t, ev.t]).to(device)
    return lambda: call(g, nodes, times, p["k"], p["strategy"], gen)


def _neighbors(g, n, t, k, s, gen):
    return g.neighbors(n, t, k, strategy=s, generator=gen)


def ours(p, device):
    return _ours(p, device, _neighbors)


def ours_no_cursor(p, device):
    """The streaming entry with plain binary searches (no per-node cursor): what the cursor saves."""
    def off(g):
        g.kernel_view().streaming.use_cursor = False
    return _ours(p, device, _neighbors, setup=off)


def ours_assemble(p, device):
    """temporal_assemble: the lookup and the float32 deltas to each query's time in one call (what TGN reads
    on a featureless graph: neighbours, deltas, validity; no edge ids)."""
    return _ours(p, device, lambda g, n, t, k, s, gen: g.assemble(n, t, k, strategy=s, generator=gen,
                                                                   edge_ids=False))


def numpy_assemble(p, device):
    """The numpy lookup plus the same float32 deltas (the baseline of temporal_assemble)."""
    ev = events(p["quick"])
    ref = NumpyTCSR(ev)
    fn = ref.recent if p["strategy"] == "recent" else ref.uniform

    def one(n, t):
        nb, eid, nt, valid = fn(n, t, p["k"])
        return nb, eid, np.where(valid, (t[:, None] - nt).astype(np.float32), np.float32(0)), valid
    if p["mode"] == "stream":
        bs = [(n.numpy(), t.numpy()) for n, t in batches(ev)]

        def f():
            for n, t in bs:
                one(n, t)
        return f
    nodes = torch.cat([ev.src, ev.dst]).numpy()
    times = torch.cat([ev.t, ev.t]).numpy()
    return lambda: one(nodes, times)


def numpy_ref(p, device):
    ev = events(p["quick"])
    ref = NumpyTCSR(ev)
    fn = ref.recent if p["strategy"] == "recent" else ref.uniform
    if p["mode"] == "stream":
        bs = [(n.numpy(), t.numpy()) for n, t in batches(ev)]

        def f():
            for n, t in bs:
                fn(n, t, p["k"])
        return f
    nodes = torch.cat([ev.src, ev.dst]).numpy()
    times = torch.cat([ev.t, ev.t]).numpy()
    return lambda: fn(nodes, times, p["k"])


def _pyg_loader():
    try:
        from torch_geometric.loader import LastNeighborLoader
    except ImportError:
        from torch_geometric.nn.models.tgn import LastNeighborLoader  # where PyG 2.x keeps it
    return LastNeighborLoader


def pyg_skip(p, device):
    try:
        _pyg_loader()
    except Exception:
        return "torch_geometric not installed"
    return None if p["mode"] == "stream" and p["strategy"] == "recent" else "recent/stream only"


def pyg_last(p, device):
    ev = events(p["quick"])
    # not time-exact: it returns the last neighbours *inserted*, whatever the query time
    loader = _pyg_loader()(ev.num_nodes, size=p["k"], device=device)
    bs = batches(ev)

    def f():
        loader.reset_state()
        for a, (n, t) in enumerate(bs):
            loader(n.to(device))
            m = n.numel() // 2
            loader.insert(n[:m].to(device), n[m:].to(device))
    return f


def output_floor(p, device):
    """The floor for a bulk call: allocating and writing the four [B, k] outputs (no lookup at all)."""
    ev = events(p["quick"])
    B = 2 * ev.src.numel()

    def f():
        a = torch.full((B, p["k"]), -1, dtype=torch.int64, device=device)
        b = torch.full((B, p["k"]), -1, dtype=torch.int64, device=device)
        c = torch.full((B, p["k"]), -1, dtype=ev.t.dtype, device=device)
        d = torch.zeros((B, p["k"]), dtype=torch.bool, device=device)
        return a, b, c, d
    return f


def build(p, device):
    ev = events(p["quick"])
    return lambda: hardneg.TemporalGraph(ev.src.to(device), ev.dst.to(device), ev.t.to(device), num_nodes=ev.num_nodes)


NOT_BUILD = lambda p, d: "n/a" if p["mode"] == "build" else None  # noqa: E731

PROVIDERS = [
    Provider("hardneg cpu", lambda p, d: build(p, d) if p["mode"] == "build" else ours(p, d), devices=("cpu",)),
    Provider("hardneg cpu (no cursor)", ours_no_cursor, devices=("cpu",),
             skip=lambda p, d: None if p["mode"] == "stream" and p["strategy"] == "recent" else "recent/stream only"),
    Provider("hardneg assemble cpu", ours_assemble, devices=("cpu",), skip=NOT_BUILD,
             versus="numpy searchsorted + dt"),
    Provider("hardneg assemble cuda", ours_assemble, devices=("cuda",), skip=NOT_BUILD,
             versus="numpy searchsorted + dt"),
    Provider("numpy searchsorted + dt", numpy_assemble, devices=("cpu",), skip=NOT_BUILD),
    Provider("hardneg cuda", lambda p, d: build(p, d) if p["mode"] == "build" else ours(p, d), devices=("cuda",)),
    Provider("numpy searchsorted", numpy_ref, devices=("cpu",), baseline=True, skip=NOT_BUILD),
    Provider("PyG LastNeighborLoader (not time-exact)", pyg_last, devices=("cpu",), skip=pyg_skip),
    Provider("floor: write the outputs", output_floor, devices=("cpu", "cuda"),
             skip=lambda p, d: None if p["mode"] == "bulk" else "bulk only"),
]


def configs(quick):
    out = []
    for dev in ("cpu", "cuda"):
        for mode in ("stream", "bulk"):
            for strategy in ("recent", "uniform"):
                for k in (10, 20):
                    calls = "788 calls x 400" if mode == "stream" else "1 call x 314,948"
                    out.append(Config(f"{mode} {strategy} k={k} ({calls} queries)",
                                      dict(mode=mode, strategy=strategy, k=k, quick=quick), device=dev))
        out.append(Config("build T-CSR (Wikipedia)", dict(mode="build", strategy="recent", k=1, quick=quick), device=dev))
    return out


if __name__ == "__main__":
    main("temporal_neighbors", configs, PROVIDERS)
