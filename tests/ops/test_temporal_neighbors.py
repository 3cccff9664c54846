"""temporal_neighbors: every backend against the reference on random graphs with many equal timestamps, leak
and completeness properties, uniform chi-square, appends == fresh build, Wikipedia counts, bad input."""
import pytest
import torch

import hardneg
from conftest import backend_params, shared_path
from hardneg.testing import assert_chi2

BACKENDS = backend_params("temporal_neighbors")


def random_graph(seed, V=12, M=300, T=20, float_time=False, undirected=True):
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(0, V, (M,), generator=g)
    dst = torch.randint(0, V, (M,), generator=g)
    t = torch.randint(0, T, (M,), generator=g)  # many equal timestamps
    if float_time:
        t = t.double() * 0.5
    return hardneg.TemporalGraph(src, dst, t, num_nodes=V, undirected=undirected), (src, dst, t)


def appended_graph(seed, V, M, T, chunk, float_time=False):
    """A multi-level graph: random_graph's events in time order, the first 100 built, the rest appended in
    chunks."""
    _, (src, dst, t) = random_graph(seed, V=V, M=M, T=T, float_time=float_time)
    order = torch.argsort(t, stable=True)
    src, dst, t = src[order], dst[order], t[order]
    g = hardneg.TemporalGraph(src[:100], dst[:100], t[:100], num_nodes=V)
    for a in range(100, M, chunk):
        g.append(src[a:a + chunk], dst[a:a + chunk], t[a:a + chunk])
    assert g.num_levels > 1
    return g


def queries(seed, V, B=80, T=22, float_time=False):
    g = torch.Generator().manual_seed(seed + 100)
    nodes = torch.randint(0, V, (B,), generator=g)
    times = torch.randint(-1, T, (B,), generator=g)
    return nodes, (times.double() * 0.5 if float_time else times)


def _run(graph, backend, device, nodes, times, k, **kw):
    g = graph.to(device)
    out = g.neighbors(nodes.to(device), times.to(device), k, backend=backend, **kw)
    assert all(x.device.type == device for x in out)
    return tuple(x.cpu() for x in out)


@pytest.mark.parametrize("backend,device", BACKENDS)
@pytest.mark.parametrize("float_time", [False, True])
@pytest.mark.parametrize("undirected", [True, False])
@pytest.mark.parametrize("inclusive", [False, True])
@pytest.mark.parametrize("window", [None, 4])
def test_recent_matches_reference(backend, device, float_time, undirected, inclusive, window):
    graph, _ = random_graph(1, float_time=float_time, undirected=undirected)
    nodes, times = queries(1, graph.num_nodes, float_time=float_time)
    got = _run(graph, backend, device, nodes, times, 7, inclusive=inclusive, window=window)
    want = graph.neighbors(nodes, times, 7, inclusive=inclusive, window=window, backend="reference")
    for a, b in zip(got, want):
        assert torch.equal(a, b)
    # leak property: nothing at or after t (after t when inclusive)
    nt, valid = got[2], got[3]
    bound = times[:, None].to(nt.dtype)
    assert bool(((nt < bound) | ~valid).all()) if not inclusive else bool(((nt <= bound) | ~valid).all())
    # recent: most recent first
    ok = valid[:, 1:]
    assert bool(((nt[:, 1:] <= nt[:, :-1]) | ~ok).all())


@pytest.mark.parametrize("backend,device", BACKENDS)
def test_completeness_recent_is_exactly_last_min_k_degree(backend, device):
    graph, (src, dst, t) = random_graph(2)
    nodes, times = queries(2, graph.num_nodes)
    nb, eids, nt, valid = _run(graph, backend, device, nodes, times, 5)
    for i in range(nodes.numel()):
        v, tq = int(nodes[i]), int(times[i])
        inc = [(int(t[e]), e) for e in range(src.numel()) if (src[e] == v or dst[e] == v) and t[e] < tq]
        inc += [(int(t[e]), e) for e in range(src.numel()) if src[e] == v and dst[e] == v and t[e] < tq]  # self-loops twice
        inc.sort()
        want = [e for _, e in inc[::-1][:5]]
        assert int(valid[i].sum()) == min(5, len(inc))
        assert sorted(eids[i, : len(want)].tolist()) == sorted(want)


@pytest.mark.parametrize("backend,device", BACKENDS)
def test_uniform_is_uniform_and_distinct(backend, device):
    src = torch.zeros(10, dtype=torch.int64)
    dst = torch.arange(1, 11)
    t = torch.arange(10)
    graph = hardneg.TemporalGraph(src, dst, t, num_nodes=11)
    nodes = torch.zeros(3000, dtype=torch.int64)
    times = torch.full((3000,), 8)  # 8 admissible events (t = 0..7)
    nb, eids, nt, valid = _run(graph, backend, device, nodes, times, 3, strategy="uniform",
                               generator=torch.Generator().manual_seed(4))
    assert valid.all() and (nt < 8).all()
    assert all(len(set(r.tolist())) == 3 for r in eids)
    assert bool((nt[:, 1:] <= nt[:, :-1]).all())
    counts = torch.bincount(eids.flatten(), minlength=10)[:8]
    assert_chi2(counts, torch.full((8,), 1 / 8))
    # everything fits: all of them, most recent first
    nb, eids, nt, valid = _run(graph, backend, device, nodes[:2], torch.tensor([3, 3]), 5, strategy="uniform")
    assert eids[0].tolist() == [2, 1, 0, -1, -1]


@pytest.mark.parametrize("backend,device", [p for p in BACKENDS if p.values[0] != "reference"])
def test_uniform_deterministic_per_seed(backend, device):
    graph, _ = random_graph(3, M=2000)
    nodes, times = queries(3, graph.num_nodes)
    a = _run(graph, backend, device, nodes, times, 4, strategy="uniform", generator=torch.Generator().manual_seed(1))
    b = _run(graph, backend, device, nodes, times, 4, strategy="uniform", generator=torch.Generator().manual_seed(1))
    assert all(torch.equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize("backend,device", BACKENDS)
def test_append_matches_fresh_build(backend, device):
    _, (src, dst, t) = random_graph(5, M=600)
    order = torch.argsort(t, stable=True)
    src, dst, t = src[order], dst[order], t[order]
    eid = torch.arange(600) + 1000
    g = hardneg.TemporalGraph(src[:50], dst[:50], t[:50], num_nodes=12, edge_ids=eid[:50])
    for a in range(50, 600, 37):
        g.append(src[a:a + 37], dst[a:a + 37], t[a:a + 37], edge_ids=eid[a:a + 37])
    assert g.num_levels <= 6  # binary-counter merging, not one level per batch
    fresh = hardneg.TemporalGraph(src, dst, t, num_nodes=12, edge_ids=eid)
    nodes, times = queries(5, 12, B=120)
    for strategy in ("recent",):
        a = _run(g, backend, device, nodes, times, 6, strategy=strategy)
        b = _run(fresh, backend, device, nodes, times, 6, strategy=strategy)
        assert all(torch.equal(x, y) for x, y in zip(a, b))


@pytest.mark.skipif(not hardneg._backend.available("temporal_neighbors", "cpu"), reason="needs the compiled core")
@pytest.mark.parametrize("float_time", [False, True])
def test_streaming_and_bulk_cpu_entries_agree(float_time):
    """Below 4,096 queries a CPU call goes through the core's streaming entry (TemporalLevels.lookup), above it
    through the threaded kernel: both equal the reference on a multi-level graph, for k = 1, k above every
    degree, inclusive bounds and an empty batch."""
    from hardneg.ops.temporal import _STREAMING

    g = appended_graph(9, V=40, M=3000, T=400, chunk=130, float_time=float_time)
    gq = torch.Generator().manual_seed(10)
    B = _STREAMING + 500
    nodes = torch.randint(0, 40, (B,), generator=gq)
    times = torch.randint(-1, 402, (B,), generator=gq)
    times = times.double() * 0.5 if float_time else times
    for k in (1, 7, 300):
        for inclusive in (False, True):
            bulk = g.neighbors(nodes, times, k, inclusive=inclusive)
            parts = [g.neighbors(nodes[a:a + 400], times[a:a + 400], k, inclusive=inclusive) for a in range(0, B, 400)]
            stream = tuple(torch.cat(x) for x in zip(*parts))
            want = g.neighbors(nodes[:150], times[:150], k, inclusive=inclusive, backend="reference")  # per-query loop
            for w, b, s in zip(want, bulk, stream):
                assert torch.equal(b, s) and torch.equal(w, s[:150])
    empty = g.neighbors(nodes[:0], times[:0], 3)
    assert [tuple(x.shape) for x in empty] == [(0, 3)] * 4 and empty[2].dtype == g.time_dtype


@pytest.mark.skipif(not hardneg._backend.available("temporal_neighbors", "cpu"), reason="needs the compiled core")
@pytest.mark.parametrize("float_time", [False, True])
@pytest.mark.parametrize("order", ["forward", "backward", "random"])
def test_streaming_cursor_gives_the_binary_search_answer_in_any_query_order(float_time, order):
    """The streaming entry starts each search where the node's last one ended (a per-(level, node) cursor that
    the graph state keeps between calls). Whatever order the calls come in (a forward replay, a backward one,
    random jumps, repeated times, times before and after every event), each answer equals the threaded
    kernel's plain binary search and the reference on a multi-level graph, for both bounds."""
    g = appended_graph(21, V=30, M=2500, T=300, chunk=170, float_time=float_time)
    gq = torch.Generator().manual_seed(22)
    B = 6000
    nodes = torch.randint(0, 30, (B,), generator=gq)
    times = torch.randint(-2, 303, (B,), generator=gq)
    if order != "random":
        times = times.sort(descending=order == "backward").values
    times = times.double() * 0.5 if float_time else times
    for k in (1, 5, 200):
        for inclusive in (False, True):
            bulk = g.neighbors(nodes, times, k, inclusive=inclusive)  # threaded kernel: no cursor
            parts = [g.neighbors(nodes[a:a + 37], times[a:a + 37], k, inclusive=inclusive) for a in range(0, B, 37)]
            for b, s in zip(bulk, (torch.cat(x) for x in zip(*parts))):
                assert torch.equal(b, s)
            # the assemble entry moves the same cursor (int64 times; float times take its checked path)
            ta = g.assemble(nodes[:300], times[:300], k, edge_ids=inclusive)
            want = g.assemble(nodes[:300], times[:300], k, edge_ids=inclusive, backend="reference")
            for w, s in zip(want, ta):
                assert (w is None and s is None) or torch.equal(w, s)
    want = g.neighbors(nodes[:200], times[:200], 4, backend="reference")
    for w, s in zip(want, g.neighbors(nodes[:200], times[:200], 4)):
        assert torch.equal(w, s)
    g.kernel_view().streaming.use_cursor = False  # the benchmarks' switch: plain binary searches, same answers
    for w, s in zip(want, g.neighbors(nodes[:200], times[:200], 4)):
        assert torch.equal(w, s)


@pytest.mark.skipif(not hardneg._backend.available("temporal_neighbors", "cpu"), reason="needs the compiled core")
@pytest.mark.parametrize("float_time", [False, True])
@pytest.mark.parametrize("order", ["forward", "random"])
def test_streaming_uniform_draws_what_the_checked_path_draws(monkeypatch, float_time, order):
    """"uniform" calls below 4,096 queries take the streaming entry too (its cursor included): with the same
    generator state they return exactly what the checked path's threaded kernel returns (HARDNEG_DEBUG=1), call
    after call (one seed per call on both paths), for neighbors and assemble, both bounds, k = 1 to k above
    every degree (distinctness and uniformity: test_uniform_is_uniform_and_distinct)."""
    from hardneg.ops.temporal import _fast_cpu

    g = appended_graph(31, V=25, M=2000, T=250, chunk=150, float_time=float_time)
    gq = torch.Generator().manual_seed(32)
    B = 1500
    nodes = torch.randint(0, 25, (B,), generator=gq)
    times = torch.randint(-2, 253, (B,), generator=gq)
    if order == "forward":
        times = times.sort().values
    times = times.double() * 0.5 if float_time else times
    assert _fast_cpu(g, nodes[:10], times[:10], 3, "uniform", None, torch.Generator(), None) is not None

    def calls(k, inclusive, assemble):
        gen = torch.Generator().manual_seed(k + 7 * inclusive)
        out = []
        for a in range(0, B, 61):
            n, t = nodes[a:a + 61], times[a:a + 61]
            if assemble:
                out.append(g.assemble(n, t, k, strategy="uniform", generator=gen, edge_ids=inclusive)[:4])
            else:
                out.append(g.neighbors(n, t, k, strategy="uniform", inclusive=inclusive, generator=gen))
        return [None if x[0] is None else torch.cat(x) for x in zip(*out)]

    for k in (1, 4, 300):
        for inclusive in (False, True):
            for assemble in (False, True):
                monkeypatch.setenv("HARDNEG_DEBUG", "0")
                fast = calls(k, inclusive, assemble)
                monkeypatch.setenv("HARDNEG_DEBUG", "1")
                checked = calls(k, inclusive, assemble)
                for f, c in zip(fast, checked):
                    assert (f is None and c is None) or torch.equal(f, c), (k, inclusive, assemble)
                nb, valid = fast[0], fast[3]
                if not assemble:  # admissible: strictly before (or at) the query time
                    t = times[:, None]
                    assert bool(((fast[2] <= t) if inclusive else (fast[2] < t))[valid].all())
                assert bool((nb[valid] >= 0).all()) and bool((nb[~valid] == -1).all())


def test_append_going_back_in_time_and_other_bad_input():
    g = hardneg.TemporalGraph(torch.tensor([0, 1]), torch.tensor([1, 2]), torch.tensor([5, 7]), num_nodes=4)
    with pytest.raises(ValueError, match="go back in time"):
        g.append(torch.tensor([0]), torch.tensor([1]), torch.tensor([6]))
    with pytest.raises(ValueError, match=r"node ids must be in \[0, 4\)"):
        g.append(torch.tensor([0]), torch.tensor([9]), torch.tensor([8]))
    with pytest.raises(ValueError, match="same length"):
        hardneg.TemporalGraph(torch.tensor([0, 1]), torch.tensor([1]), torch.tensor([5, 7]))
    with pytest.raises(ValueError, match="finite"):
        hardneg.TemporalGraph(torch.tensor([0]), torch.tensor([1]), torch.tensor([float("nan")]))
    with pytest.raises(ValueError, match="'k' must be >= 1"):
        g.neighbors(torch.tensor([0]), torch.tensor([6]), 0)
    with pytest.raises(ValueError, match="node ids must be in"):
        g.neighbors(torch.tensor([7]), torch.tensor([6]), 2)
    with pytest.raises(ValueError, match="same length"):
        g.neighbors(torch.tensor([0, 1]), torch.tensor([6]), 2)
    with pytest.raises(TypeError, match="int64 times"):
        g.neighbors(torch.tensor([0]), torch.tensor([6.5]), 2)
    gf = hardneg.TemporalGraph(torch.tensor([0]), torch.tensor([1]), torch.tensor([1.5]))
    with pytest.raises(ValueError, match="NaN"):
        gf.neighbors(torch.tensor([0]), torch.tensor([float("nan")]), 2)
    with pytest.raises(ValueError, match="'strategy' must be one of"):
        g.neighbors(torch.tensor([0]), torch.tensor([6]), 2, strategy="latest")
    with pytest.raises(ValueError, match="'window' must be >= 0"):
        g.neighbors(torch.tensor([0]), torch.tensor([6]), 2, window=-1)
    with pytest.raises(TypeError, match="TemporalGraph"):
        hardneg.ops.temporal_neighbors("g", torch.tensor([0]), torch.tensor([6]), 2)


def _fast_path_taken(graph, nodes, times, k=2, **kw):
    from hardneg.ops.temporal import _fast_cpu

    return _fast_cpu(graph, nodes, times, k, kw.get("strategy", "recent"), kw.get("window"), None, None)


BAD_QUERIES = [  # (float-time graph, nodes, times, exception, message fragment)
    (ft, [7], [6], ValueError, "node ids must be in [0, 4)") for ft in (False, True)] + [  # out of range (high)
    (ft, [-1], [6], ValueError, "node ids must be in [0, 4)") for ft in (False, True)] + [  # out of range (low)
    (ft, [0, 1], [6], ValueError, "same length") for ft in (False, True)] + [
    (ft, [0.0], [6], TypeError, "'nodes' must be") for ft in (False, True)] + [  # float node ids
    (True, [0], [float("nan")], ValueError, "'times' must not contain NaN"),
    (False, [0], [6.5], TypeError, "int64 times"),  # float times on an int64-time graph
]


@pytest.mark.parametrize("float_time,nodes,times,exc,frag", BAD_QUERIES)
def test_fast_path_and_checked_path_reject_alike(monkeypatch, float_time, nodes, times, exc, frag):
    """The CPU streaming fast path checks ids and NaN in C++; HARDNEG_DEBUG=1 checks everything in Python. Both
    raise the same exception type with the same message fragment for every bad input."""
    t = torch.tensor([5.0, 7.0]) if float_time else torch.tensor([5, 7])
    g = hardneg.TemporalGraph(torch.tensor([0, 1]), torch.tensor([1, 2]), t, num_nodes=4)
    q_nodes = torch.tensor(nodes)
    q_times = torch.tensor(times, dtype=g.time_dtype if isinstance(times[0], int) or float_time else torch.float64)
    errors = []
    for debug in ("0", "1"):
        monkeypatch.setenv("HARDNEG_DEBUG", debug)
        taken = _fast_path_taken(g, q_nodes, q_times)
        with pytest.raises(exc) as e:
            g.neighbors(q_nodes, q_times, 2)
        assert frag in str(e.value), (debug, str(e.value))
        errors.append((taken, type(e.value)))
    assert not errors[1][0], "HARDNEG_DEBUG=1 must turn the fast path off"
    assert errors[0][1] is errors[1][1]
    if frag in ("node ids must be in [0, 4)", "'times' must not contain NaN"):
        assert errors[0][0], "these inputs should reach the C++ check on the fast path"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("float_time", [False, True])
def test_uniform_cpu_and_cuda_draw_the_same_events(float_time):
    """One Philox stream per (seed, query) in the shared header: CPU and CUDA draw the same events for a seed."""
    if "cuda" not in hardneg._backend.available("temporal_neighbors", "cuda"):
        pytest.skip("hardneg was built without CUDA kernels")
    graph, _ = random_graph(7, M=3000, float_time=float_time)
    nodes, times = queries(7, graph.num_nodes, B=500, float_time=float_time)
    cpu = _run(graph, "cpu", "cpu", nodes, times, 5, strategy="uniform", generator=torch.Generator().manual_seed(3))
    gpu = _run(graph, "cuda", "cuda", nodes, times, 5, strategy="uniform", generator=torch.Generator().manual_seed(3))
    assert all(torch.equal(a, b) for a, b in zip(cpu, gpu))


def test_seen_destinations_and_historical_negatives():
    src = torch.tensor([0, 0, 0, 1, 0, 2])
    dst = torch.tensor([5, 6, 5, 5, 7, 0])
    t = torch.tensor([1, 2, 3, 3, 9, 4])
    g = hardneg.TemporalGraph(src, dst, t, num_nodes=8)
    indptr, idx = g.seen_destinations(torch.tensor([0, 0, 1, 2, 3]), torch.tensor([3, 10, 4, 4, 100]))
    rows = [idx[indptr[i]:indptr[i + 1]].tolist() for i in range(5)]
    assert rows == [[5, 6], [5, 6, 7], [5], [], []]
    indptr, idx = g.seen_destinations(torch.tensor([0]), torch.tensor([3]), inclusive=True)
    assert idx.tolist() == [5, 6]
    neg, valid = g.sample_historical(torch.tensor([0, 3]), torch.tensor([10, 10]), 50,
                                     generator=torch.Generator().manual_seed(0))
    assert valid[0].all() and not valid[1].any() and (neg[1] == -1).all()
    assert set(neg[0].tolist()) == {5, 6, 7}
    # exclusion CSR plugs into topk_mine
    emb = torch.randn(8, 4)
    s, i = hardneg.ops.topk_mine(emb[[0]], emb, 3, exclude=g.seen_destinations(torch.tensor([0]), torch.tensor([10])))
    assert not set(i[0].tolist()) & {5, 6, 7}


def test_seen_destinations_index_follows_appends_and_moves():
    """The (source, time) index is built once per published state: calls after an append see the new events,
    a moved copy builds its own, and every answer equals a brute-force scan of the events."""
    gen = torch.Generator().manual_seed(4)
    src, dst = torch.randint(0, 6, (60,), generator=gen), torch.randint(0, 9, (60,), generator=gen)
    t = torch.sort(torch.randint(0, 40, (60,), generator=gen)).values
    g = hardneg.TemporalGraph(src[:30], dst[:30], t[:30], num_nodes=9)
    q_src, q_t = torch.randint(0, 6, (25,), generator=gen), torch.randint(0, 50, (25,), generator=gen)

    def brute(m):
        return [sorted({int(d) for s_, d, tt in zip(src[:m], dst[:m], t[:m]) if s_ == a and tt < b})
                for a, b in zip(q_src, q_t)]

    def rows(csr):
        return [csr[1][csr[0][i]:csr[0][i + 1]].tolist() for i in range(len(q_src))]

    assert rows(g.seen_destinations(q_src, q_t)) == brute(30)
    assert rows(g.seen_destinations(q_src, q_t)) == brute(30)  # from the cached index
    g.append(src[30:], dst[30:], t[30:])
    assert rows(g.seen_destinations(q_src, q_t)) == brute(60)
    moved = g.to("cpu")
    assert moved._by_src is None and rows(moved.seen_destinations(q_src, q_t)) == brute(60)


def test_wikipedia_loader_and_counts_against_brute_force():
    from hardneg.data import load_temporal_csv

    ev = load_temporal_csv(shared_path("data", "temporal", "wikipedia", "wikipedia.csv"))
    assert ev.src.numel() == 157_474 and ev.num_nodes == 9_227 and ev.t.dtype == torch.int64
    g = ev.graph()
    gen = torch.Generator().manual_seed(0)
    sel = torch.randint(0, ev.src.numel(), (200,), generator=gen)
    nodes = torch.cat([ev.src[sel], ev.dst[sel]])
    times = torch.cat([ev.t[sel], ev.t[sel]])
    nb, eids, nt, valid = g.neighbors(nodes, times, 20)
    for i in range(0, nodes.numel(), 7):
        v, tq = int(nodes[i]), int(times[i])
        deg = int((((ev.src == v) | (ev.dst == v)) & (ev.t < tq)).sum())
        assert int(valid[i].sum()) == min(20, deg)


def test_uci_ml_loader_and_url(tmp_path):
    from hardneg.data import load_temporal_csv

    p = shared_path("data", "temporal", "uci", "ml_uci.csv")
    ev = load_temporal_csv(p)
    assert ev.src.numel() == 59_835 and int(ev.src.min()) >= 1
    ev2 = load_temporal_csv("file://" + p)
    assert torch.equal(ev.src, ev2.src)
    bad = tmp_path / "bad.csv"
    bad.write_text("u,i,ts,label\n0,1,2,0\n0,x,3,0\n")
    with pytest.raises(ValueError, match="bad.csv:3"):
        load_temporal_csv(str(bad))
    with pytest.raises(ValueError, match="not found"):
        load_temporal_csv(str(tmp_path / "missing.csv"))
