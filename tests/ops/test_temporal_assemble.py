"""temporal_assemble: every backend against the reference (lookup + time deltas + feature gather in one call),
the same draws as temporal_neighbors, padding, empty inputs and every documented error."""
import pytest
import torch

import hardneg
from conftest import backend_params

BACKENDS = backend_params("temporal_assemble")


def random_graph(seed, V=12, M=300, T=20, float_time=False):
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(0, V, (M,), generator=g)
    dst = torch.randint(0, V, (M,), generator=g)
    t = torch.randint(0, T, (M,), generator=g) * 1000 + 10**12  # large times: float64 deltas, float32 results
    if float_time:
        t = t.double() * 0.5
    return hardneg.TemporalGraph(src, dst, t, num_nodes=V)


def queries(seed, graph, B=80):
    g = torch.Generator().manual_seed(seed + 100)
    nodes = torch.randint(0, graph.num_nodes, (B,), generator=g)
    times = graph.t[torch.randint(0, graph.num_events, (B,), generator=g)]
    later = times + (torch.randint(0, 5000, (B,), generator=g)).to(times.dtype)
    return nodes, times.contiguous(), later.contiguous()


def _run(graph, backend, device, nodes, times, k, **kw):
    g = graph.to(device)
    kw = {n: (v.to(device) if isinstance(v, torch.Tensor) else v) for n, v in kw.items()}
    out = g.assemble(nodes.to(device), times.to(device), k, backend=backend, **kw)
    return tuple(None if x is None else x.cpu() for x in out)


@pytest.mark.parametrize("backend,device", BACKENDS)
@pytest.mark.parametrize("float_time", [False, True])
@pytest.mark.parametrize("with_features", [False, True])
@pytest.mark.parametrize("event", [False, True])
def test_recent_matches_reference(backend, device, float_time, with_features, event):
    graph = random_graph(1, float_time=float_time)
    nodes, times, later = queries(1, graph)
    kw = {}
    if with_features:
        kw["features"] = torch.randn(graph.num_events, 3, generator=torch.Generator().manual_seed(3))
    if event:
        kw["event_times"] = later
    got = _run(graph, backend, device, nodes, times, 7, **kw)
    want = graph.assemble(nodes, times, 7, backend="reference", **kw)
    for a, b in zip(got, want):
        assert (a is None and b is None) or torch.equal(a, b)
    nbrs, eids, nt, valid = graph.neighbors(nodes, times, 7, backend="reference")
    assert torch.equal(got[0], nbrs) and torch.equal(got[1], eids) and torch.equal(got[3], valid)
    et = (later if event else times).double()
    assert torch.equal(got[2], torch.where(valid, et[:, None] - nt.double(), 0.0).float())
    assert bool((got[2][~valid] == 0).all()) and bool((got[2][valid] > 0).all())  # strictly before the query


@pytest.mark.skipif(not hardneg._backend.available("temporal_assemble", "cpu"), reason="needs the compiled core")
@pytest.mark.parametrize("edge_ids", [False, True])
def test_streaming_and_bulk_cpu_entries_agree(edge_ids):
    """Below 4,096 queries a featureless "recent" CPU call goes through the core's streaming entry
    (TemporalLevels.assemble), above it through the threaded kernel: both equal the reference on a
    multi-level graph, with and without event times, for k = 1 and k above every degree."""
    from hardneg.ops.temporal import _STREAMING

    gen = torch.Generator().manual_seed(4)
    M = 2000
    src, dst = torch.randint(0, 30, (M,), generator=gen), torch.randint(0, 30, (M,), generator=gen)
    t = torch.sort(torch.randint(0, 400, (M,), generator=gen)).values * 1000 + 10**12
    g = hardneg.TemporalGraph(src[:100], dst[:100], t[:100], num_nodes=30)
    for a in range(100, M, 170):
        g.append(src[a:a + 170], dst[a:a + 170], t[a:a + 170])
    assert g.num_levels > 1
    B = _STREAMING + 300
    nodes = torch.randint(0, 30, (B,), generator=gen)
    times = t[torch.randint(0, M, (B,), generator=gen)] + 500
    later = times + torch.randint(0, 5000, (B,), generator=gen)
    for k in (1, 6, 400):
        for et in (None, later):
            bulk = g.assemble(nodes, times, k, event_times=et, edge_ids=edge_ids)
            parts = [g.assemble(nodes[a:a + 400], times[a:a + 400], k, edge_ids=edge_ids,
                                event_times=None if et is None else et[a:a + 400]) for a in range(0, B, 400)]
            want = g.assemble(nodes[:150], times[:150], k, event_times=None if et is None else et[:150],
                              edge_ids=edge_ids, backend="reference")
            for i in range(5):
                if bulk[i] is None:
                    assert want[i] is None and all(p[i] is None for p in parts)
                    continue
                stream = torch.cat([p[i] for p in parts])
                assert torch.equal(bulk[i], stream) and torch.equal(want[i], stream[:150])


@pytest.mark.parametrize("backend,device", [p for p in BACKENDS if p.values[0] != "reference"])
def test_uniform_draws_are_temporal_neighbors_draws(backend, device):
    graph = random_graph(4)
    nodes, times, _ = queries(4, graph)
    feats = torch.randn(graph.num_events, 2, generator=torch.Generator().manual_seed(1))
    got = _run(graph, backend, device, nodes, times, 5, strategy="uniform", features=feats,
               generator=torch.Generator(device).manual_seed(7))
    g = graph.to(device)
    nbrs, eids, nt, valid = (x.cpu() for x in g.neighbors(nodes.to(device), times.to(device), 5, strategy="uniform",
                                                         generator=torch.Generator(device).manual_seed(7)))
    assert torch.equal(got[0], nbrs) and torch.equal(got[1], eids) and torch.equal(got[3], valid)
    assert torch.equal(got[2], torch.where(valid, times.double()[:, None] - nt.double(), 0.0).float())
    assert torch.equal(got[4], torch.where(valid[..., None], feats[eids.clamp_min(0)], 0.0))


@pytest.mark.parametrize("backend,device", BACKENDS)
def test_empty_queries_graph_and_padding(backend, device):
    graph = random_graph(2)
    out = _run(graph, backend, device, torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long), 3)
    assert out[0].shape == (0, 3) and out[2].dtype == torch.float32 and out[4] is None
    empty = hardneg.TemporalGraph(torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long),
                                  torch.zeros(0, dtype=torch.long), num_nodes=4)
    n, e, dt, v, f = _run(empty, backend, device, torch.tensor([1, 2]), torch.tensor([5, 5]), 2,
                          features=torch.zeros(0, 3))
    assert bool((n == -1).all()) and not bool(v.any()) and bool((dt == 0).all()) and f.shape == (2, 2, 3)


def test_errors():
    graph = random_graph(3)
    nodes, times, _ = queries(3, graph, B=4)
    with pytest.raises(TypeError, match="'graph' must be a hardneg.TemporalGraph"):
        hardneg.ops.temporal_assemble("g", nodes, times, 2)
    with pytest.raises(ValueError, match="'k' must be >= 1"):
        graph.assemble(nodes, times, 0, strategy="uniform")
    with pytest.raises(ValueError, match="node ids must be in \\[0, 12\\)"):
        graph.assemble(torch.tensor([0, 12]), times[:2], 2)
    with pytest.raises(ValueError, match="node ids must be in \\[0, 12\\)"):
        graph.assemble(torch.tensor([0, 12]), times[:2], 2, backend="reference")
    with pytest.raises(ValueError, match="'event_times' must be \\[4\\]"):
        graph.assemble(nodes, times, 2, event_times=times[:3])
    with pytest.raises(TypeError, match="'event_times' must have the graph's time dtype"):
        graph.assemble(nodes, times, 2, event_times=times.double())
    with pytest.raises(TypeError, match="'features' must be a float32 tensor"):
        graph.assemble(nodes, times, 2, features=torch.zeros(graph.num_events, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="a row for every edge id of the graph"):
        graph.assemble(nodes, times, 2, features=torch.zeros(5, 2))
    with pytest.raises(ValueError, match="'features' must be \\[E, F\\]"):
        graph.assemble(nodes, times, 2, features=torch.zeros(graph.num_events))
    with pytest.raises(ValueError, match="'strategy' must be one of"):
        graph.assemble(nodes, times, 2, strategy="last")
    with pytest.raises(TypeError, match="query 'times' must be integers"):
        graph.assemble(nodes, times.double(), 2)
    with pytest.raises(TypeError, match="'generator' must be a torch.Generator"):
        graph.assemble(nodes, times, 2, generator=1)


@pytest.mark.parametrize("backend,device", BACKENDS)
def test_without_edge_ids(backend, device):
    graph = random_graph(5)
    nodes, times, _ = queries(5, graph)
    full = _run(graph, backend, device, nodes, times, 6)
    lean = _run(graph, backend, device, nodes, times, 6, edge_ids=False)
    assert lean[1] is None and all(torch.equal(a, b) for a, b in zip(full[::2], lean[::2]) if a is not None)
    assert torch.equal(full[3], lean[3])
    with pytest.raises(TypeError, match="'edge_ids' must be a bool"):
        graph.assemble(nodes, times, 2, edge_ids=1)


@pytest.mark.skipif(hardneg._backend.core() is None, reason="the compiled core is not built")
@pytest.mark.parametrize("over,frag", [
    (dict(k=0), "k must be >= 1"),
    (dict(strategy=2), "strategy must be 0 (recent) or 1 (uniform)"),
    (dict(features=8), "features, num_features and out_feat must agree"),
    (dict(strategy=1, out_eid=0), "out_eid is required with features or the uniform strategy"),
    (dict(on_cuda=True, check_num_nodes=5), "check_num_nodes is for CPU inputs only"),
])
def test_core_rechecks_its_arguments(over, frag):
    """The binding re-checks what would make it read or write out of bounds (it can be called directly)."""
    args = dict(levels=0, num_levels=0, int_time=True, nodes=0, times=0, event_times=0, num_queries=0, k=1,
                strategy=0, seed=0, features=0, num_features=0, out_nbr=0, out_eid=0, out_dt=0, out_valid=0,
                out_feat=0, num_threads=1, on_cuda=False, stream=0)
    with pytest.raises(ValueError, match=frag.replace("(", "\\(").replace(")", "\\)")):
        hardneg._backend.core().temporal_assemble(**dict(args, **over))


def test_fast_path_checks_node_ids_in_core():
    graph = random_graph(1)
    with pytest.raises(ValueError, match="temporal_assemble: 'nodes' node ids must be in \\[0, 12\\)"):
        graph.assemble(torch.tensor([0, 12]), torch.tensor([5, 5]) + 10**12, 2)
