"""TGN / TGAT: shapes, leak-free neighbourhoods, the streaming memory and its errors."""
import contextlib
import math

import pytest
import torch

pytest.importorskip("torch_geometric")

import hardneg  # noqa: E402
from hardneg.tasks.temporal.models import TGAT, TGN, LinkDecoder, TemporalAttention, create_model  # noqa: E402

N = 20


def stream(M=200, seed=0):
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(0, 10, (M,), generator=g)
    dst = torch.randint(10, N, (M,), generator=g)
    t = torch.sort(torch.randint(0, 1000, (M,), generator=g)).values
    return src, dst, t


def model(name, **kw):
    torch.manual_seed(0)
    m = create_model(name, N, dim=8, time_dim=8, dropout=0.0, **kw)
    return m.eval()


@pytest.mark.parametrize("name", ["tgn", "tgat"])
def test_embed_shapes_and_defaults(name):
    src, dst, t = stream()
    g = hardneg.TemporalGraph(src, dst, t, num_nodes=N)
    m = model(name)
    assert (m.num_neighbors, m.num_layers) == ((10, 1) if name == "tgn" else (20, 2))
    nodes = torch.tensor([0, 3, 12, 19])
    z = m.embed(nodes, torch.full((4,), 700), g, 700)
    assert z.shape == (4, 8) and bool(torch.isfinite(z).all())
    assert m.score(z[:2], z[2:]).shape == (2,)


@pytest.mark.parametrize("name", ["tgn", "tgat"])
def test_neighbours_strictly_before_the_query_time(name):
    """Events at or after the query time (the batch's first time) never change an embedding: the events of a
    batch never see each other, and nothing from the future leaks in."""
    src, dst, t = stream()
    t0 = int(t[120])
    before = t < t0
    full = hardneg.TemporalGraph(src, dst, t, num_nodes=N)
    past = hardneg.TemporalGraph(src[before], dst[before], t[before], num_nodes=N)
    m = model(name)
    nodes = torch.cat([src[120:140], dst[120:140]])
    times = torch.cat([t[120:140], t[120:140]])  # each at its own event time, >= t0
    a = m.embed(nodes, times, full, t0)
    b = m.embed(nodes, times, past, t0)
    assert torch.allclose(a, b)
    # the event times themselves matter (time encodings), not only the query time
    c = m.embed(nodes, times + 500, full, t0)
    assert not torch.allclose(a, c)


def test_tgn_neighbor_time_encodings():
    """``last_update``: the neighbour's last update minus the event time (0 when the event was the neighbour's
    latest), independent of the query time; ``query`` and ``both`` (the default) depend on it."""
    src, dst, t = stream()
    cut = 120
    past = hardneg.TemporalGraph(src[:cut], dst[:cut], t[:cut], num_nodes=N)
    nodes = torch.tensor([0, 3, 12, 19])
    t_last = int(t[cut - 1])
    out = {}
    for mode in ("query", "last_update", "both"):
        m = model("tgn", neighbor_time=mode)
        assert m.neighbor_time == mode
        m.observe(src[:cut], dst[:cut], t[:cut], torch.arange(cut))
        seen = []
        edge_input = m._edge_input
        m._edge_input = lambda dt, feats, *a: seen.append(dt) or edge_input(dt, feats, *a)
        out[mode] = (m.embed(nodes, None, past, t_last + 1), m.embed(nodes, None, past, t_last + 500))
        if mode != "query":
            dt = seen[0] if mode == "last_update" else seen[0][..., 1]
            nb, _, nt, valid = past.neighbors(nodes, torch.full((4,), t_last + 1), m.num_neighbors)
            last = torch.full((N,), -1)  # each node's latest event time
            last.scatter_reduce_(0, torch.cat([src[:cut], dst[:cut]]), t[:cut].repeat(2), "amax")
            want = torch.where(valid, last[nb.clamp_min(0)] - nt, torch.zeros_like(nt)).float()
            assert torch.equal(dt, want) and bool((dt[valid] >= 0).all()) and bool((dt[valid] == 0).any())
    assert torch.allclose(*out["last_update"])
    assert not torch.allclose(*out["query"]) and not torch.allclose(*out["both"])
    assert create_model("tgn", N).neighbor_time == "both"
    with pytest.raises(ValueError, match="'neighbor_time' must be one of \\['query'\\]"):
        create_model("tgat", N, neighbor_time="last_update")
    with pytest.raises(ValueError, match="'neighbor_time' must be one of"):
        create_model("tgn", N, neighbor_time="now")


@pytest.mark.parametrize("name", ["tgn", "tgat"])
def test_per_event_neighbor_cutoff(name):
    """A per-node query time (DyGLib's convention) is the scalar query, row by row: each event sees the
    events strictly before its own time, a batch's earlier events included."""
    src, dst, t = stream()
    g = hardneg.TemporalGraph(src, dst, t, num_nodes=N)
    m = model(name)
    if name == "tgn":
        m.observe(src[:100], dst[:100], t[:100], torch.arange(100))
    nodes, times = torch.cat([src[100:130], dst[100:130]]), torch.cat([t[100:130], t[100:130]])
    z = m.embed(nodes, times, g, times)
    rows = torch.cat([m.embed(nodes[i:i + 1], times[i:i + 1], g, int(times[i])) for i in range(nodes.numel())])
    assert torch.allclose(z, rows, atol=1e-6)
    batch = m.embed(nodes, times, g, int(times[0]))
    assert not torch.allclose(z, batch)  # later events of the batch see its earlier ones
    assert torch.allclose(z[:1], batch[:1], atol=1e-6)  # the first event sees what the batch sees
    with pytest.raises(ValueError, match="a per-node 'query_time' must have one entry per node \\(got 3 for 60"):
        m.embed(nodes, times, g, times[:3])


def test_tgn_memory_is_updated_lazily_through_the_gru():
    src, dst, t = stream()
    g = hardneg.TemporalGraph(src, dst, t, num_nodes=N)
    m = model("tgn")
    m.reset_state()
    m.observe(src[:50], dst[:50], t[:50], torch.arange(50))
    assert bool((m.pend_other[torch.unique(torch.cat([src[:50], dst[:50]]))] >= 0).all())
    assert float(m.memory.abs().sum()) == 0.0  # the first messages are pending, not applied yet
    m.observe(src[50:100], dst[50:100], t[50:100], torch.arange(50, 100))
    touched = torch.unique(torch.cat([src[50:100], dst[50:100]]))
    again = torch.unique(torch.cat([src[:50], dst[:50]]))
    both = touched[torch.isin(touched, again)]
    assert float(m.memory[both].abs().sum()) > 0  # applied when the node was observed again
    # the loss reaches the GRU through the pending messages of the embedded nodes
    m.train()
    z = m.embed(src[100:110], t[100:110], g, int(t[100]))
    z.sum().backward()
    assert m.mem.gru.weight_ih.grad is not None and float(m.mem.gru.weight_ih.grad.abs().sum()) > 0


@pytest.mark.parametrize("name", ["tgn", "tgat"])
def test_a_table_embeds_one_node_without_history_for_all(name):
    """``table``: a node set at one cut-off (ENS's candidate table, the all-destination ranking). The nodes without
    history share one embedding, computed once; the table equals the node-by-node computation. A TGN node whose
    memory is set has history even without a neighbour; in training mode (dropout) every row is computed."""
    src, dst, t = stream()
    keep = ~((dst >= 15) & (t < 600))  # nodes 15..19: no event before 600
    src, dst, t = src[keep], dst[keep], t[keep]
    g = hardneg.TemporalGraph(src, dst, t, num_nodes=N)
    m = model(name)
    m.reset_state()
    before = t < 500
    m.observe(src[before], dst[before], t[before], torch.nonzero(before).flatten())
    nodes = torch.arange(N)
    qt = torch.full((N,), 500, dtype=g.time_dtype)
    blank = m._blank(nodes, qt, g)
    assert blank.tolist() == [i >= 15 for i in range(N)]
    whole = m.embed(nodes, None, g, 500)  # every row computed
    table = m.table(nodes, g, 500)
    assert torch.allclose(table, whole, atol=1e-6)
    assert torch.equal(table[15:], table[15:16].expand(5, -1))
    assert not torch.allclose(table[14], table[15])
    if name == "tgn":
        m.memory[19] = 0.5
        assert m._blank(nodes, qt, g).tolist() == [15 <= i < 19 for i in range(N)]
        table = m.table(nodes, g, 500)
        assert torch.allclose(table, m.embed(nodes, None, g, 500), atol=1e-6)
        assert not torch.allclose(table[19], table[18])
    m.train()
    m._blank = lambda *a: pytest.fail("training mode must embed every row (each has its own dropout)")
    assert m.table(nodes, g, 500).shape == (N, 8)


@pytest.mark.parametrize("layers", [2, 3])
def test_tgat_embeds_each_distinct_neighbour_event_once(layers):
    """``dedupe``: the same embeddings and gradients as one computation per occurrence (no dropout), with fewer
    rows in the inner layers; ``dedupe=False`` is the occurrence-by-occurrence computation."""
    src, dst, t = stream(M=300)
    g = hardneg.TemporalGraph(src, dst, t, num_nodes=N)
    nodes, times = torch.cat([src[250:280], dst[250:280]]), torch.cat([t[250:280], t[250:280]])
    out, rows = {}, {}
    for dedupe in (True, False):
        m = model("tgat", num_layers=layers, num_neighbors=5, dedupe=dedupe)
        seen, inner = [], m._layer
        m._layer = lambda layer, n, *a: seen.append(n.numel()) or inner(layer, n, *a)
        z = m.embed(nodes, times, g, int(t[250]))
        z.square().sum().backward()
        out[dedupe], rows[dedupe] = (z, m.layers[0].we.weight.grad.clone()), seen
    assert torch.allclose(out[True][0], out[False][0], atol=1e-5)
    assert torch.allclose(out[True][1], out[False][1], atol=1e-4)
    assert rows[True][0] == rows[False][0] == 60 and all(a < b for a, b in zip(rows[True][1:], rows[False][1:]))
    with pytest.raises(TypeError, match="'dedupe' must be a bool"):
        create_model("tgat", N, dedupe=1)


def test_tgat_node_embedding_gives_each_node_its_own_layer_zero():
    """``node_embedding``: layer 0 is a learnt row per node, so two nodes without history differ, the table
    (which otherwise embeds blank nodes once) equals ``embed`` row by row, both layers see the rows, and they
    learn. Without it, the nodes without history share one embedding."""
    src, dst, t = stream()
    g = hardneg.TemporalGraph(src, dst, t, num_nodes=N)
    nodes = torch.arange(N)
    plain = model("tgat", num_neighbors=5)
    blank = torch.nonzero(plain._blank(nodes, torch.full((N,), 3), g)).flatten()
    assert blank.numel() >= 2
    with torch.no_grad():
        z0 = plain.table(nodes, g, 3)
    assert torch.allclose(z0[blank[0]], z0[blank[1]])
    m = model("tgat", num_neighbors=5, node_embedding=True)
    assert m.node_table.weight.shape == (N, 8) and (m.layers[0].node_dim, plain.layers[0].node_dim) == (8, 0)
    with torch.no_grad():
        z = m.table(nodes, g, 3)
        assert torch.allclose(z, m.embed(nodes, None, g, 3), atol=1e-6)
    assert not torch.allclose(z[blank[0]], z[blank[1]])
    out = m.embed(torch.cat([src[150:170], dst[150:170]]), torch.cat([t[150:170], t[150:170]]), g, int(t[150]))
    out.square().sum().backward()
    grad = m.node_table.weight.grad
    assert grad is not None and bool((grad[torch.cat([src[150:170], dst[150:170]])].abs().sum(1) > 0).all())
    with pytest.raises(TypeError, match="TGAT: 'node_embedding' must be a bool"):
        create_model("tgat", N, node_embedding="yes")


def test_tgn_shared_reads_compute_each_memory_update_once_with_the_same_values_and_gradients():
    src, dst, t = stream()
    g = hardneg.TemporalGraph(src, dst, t, num_nodes=N)
    m = model("tgn")
    m.reset_state()
    for lo in (0, 50):
        m.observe(src[lo:lo + 50], dst[lo:lo + 50], t[lo:lo + 50], torch.arange(lo, lo + 50))
    rows = []
    cell = m.mem.cell  # the GRU update, counted by rows
    m.mem.cell = lambda data, enc, h: (rows.append(h.shape[0]), cell(data, enc, h))[1]
    a, b = torch.cat([src[100:110], dst[100:110]]), dst[110:116]  # two passes, sharing nodes and neighbours
    t0 = int(t[100])

    def loss(shared):
        m.zero_grad()
        rows.clear()
        with m.shared_reads() if shared else contextlib.nullcontext():
            out = m.embed(a, None, g, t0).pow(2).sum() + 3 * m.embed(b, None, g, t0).sum()
        out.backward()
        return out.detach(), [p.grad.clone() for p in m.mem.gru.parameters()], list(rows)

    plain, plain_grads, plain_rows = loss(False)
    shared, shared_grads, shared_rows = loss(True)
    assert torch.allclose(plain, shared, atol=1e-5)
    for x, y in zip(plain_grads, shared_grads):
        assert torch.allclose(x, y, atol=1e-5)
    assert len(plain_rows) == 2 and sum(shared_rows) < sum(plain_rows)  # the second pass reuses the first's rows
    assert m.mem.shared is None  # the scope is closed
    with torch.no_grad(), m.shared_reads():  # nothing is kept without gradients
        m.embed(a, None, g, t0)
        assert m.mem.shared == []


@pytest.mark.parametrize("name", ["tgn", "tgat"])
def test_snapshots_restore_the_streaming_state(name):
    src, dst, t = stream()
    m = model(name)
    m.reset_state()
    m.observe(src[:80], dst[:80], t[:80], torch.arange(80))
    m.save_state("train_end")
    before = {k: v.clone() for k, v in m.state_dict().items()}
    m.observe(src[80:160], dst[80:160], t[80:160], torch.arange(80, 160))
    m.load_state("train_end")
    after = m.state_dict()
    for k in m.STATE:
        torch.testing.assert_close(before[k], after[k], rtol=0, atol=0, equal_nan=True, msg=k)
    assert not m.has_state("valid_end")
    with pytest.raises(ValueError, match="no snapshot 'valid_end'"):
        m.load_state("valid_end")
    with pytest.raises(ValueError, match="'name' must be one of"):
        m.save_state("other")


@pytest.mark.parametrize("name", ["tgn", "tgat"])
def test_stream_errors(name):
    src, dst, t = stream()
    g = hardneg.TemporalGraph(src, dst, t, num_nodes=N)
    m = model(name)
    m.reset_state()
    with pytest.raises(ValueError, match="must not go backwards within a batch: event 1"):
        m.observe(torch.tensor([0, 1]), torch.tensor([10, 11]), torch.tensor([5, 4]), torch.tensor([0, 1]))
    m.observe(src[:50], dst[:50], t[:50], torch.arange(50))
    with pytest.raises(ValueError, match="before the latest observed time"):
        m.observe(src[:5], dst[:5], t[:5], torch.arange(5))
    with pytest.raises(ValueError, match=r"'dst' node ids must be in \[0, 20\) \(got min 25, max 25\)"):
        m.observe(torch.tensor([0]), torch.tensor([25]), torch.tensor([999]), torch.tensor([0]))
    with pytest.raises(ValueError, match=r"'nodes' node ids must be in \[0, 20\)"):
        m.embed(torch.tensor([-1, 3]), torch.tensor([5, 5]), g, 5)
    with pytest.raises(ValueError, match="same length"):
        m.observe(torch.tensor([0]), torch.tensor([10, 11]), torch.tensor([999]), torch.tensor([0]))
    with pytest.raises(TypeError, match="'src' must be a 1-D integer tensor"):
        m.observe(torch.tensor([0.0]), torch.tensor([10]), torch.tensor([999]), torch.tensor([0]))


def test_edge_features_enter_the_messages_and_attention():
    src, dst, t = stream()
    feats = torch.randn(src.numel(), 3, generator=torch.Generator().manual_seed(2))
    g = hardneg.TemporalGraph(src, dst, t, num_nodes=N)
    m = model("tgn", edge_features=feats)
    m2 = model("tgn", edge_features=feats * 0)
    m2.load_state_dict(m.state_dict())
    nodes, times = dst[150:160], t[150:160]
    assert not torch.allclose(m.embed(nodes, times, g, int(t[150])), m2.embed(nodes, times, g, int(t[150])))


def test_tgat_uniform_neighbours_follow_the_generator():
    src, dst, t = stream()
    g = hardneg.TemporalGraph(src, dst, t, num_nodes=N)
    m = model("tgat", strategy="uniform", num_neighbors=3)
    nodes, times = dst[150:170], t[150:170]
    run = lambda s: m.embed(nodes, times, g, int(t[150]), generator=torch.Generator().manual_seed(s))  # noqa: E731
    assert torch.equal(run(0), run(0)) and not torch.allclose(run(0), run(1))


def test_decoder_decomposition_and_attention_without_neighbours():
    d = LinkDecoder(6)
    zs, zd = torch.randn(5, 6), torch.randn(5, 6)
    assert torch.allclose(d(zs, zd), d.combine(d.source(zs), d.destination(zd)))
    full = torch.nn.Sequential()  # the MergeLayer form: w·relu(W[zs ‖ zd] + b) + c
    W = torch.cat([d.src.weight, d.dst.weight], 1)
    ref = torch.relu(torch.cat([zs, zd], 1) @ W.T + d.src.bias) @ d.out.weight.T + d.out.bias
    assert torch.allclose(d(zs, zd), ref.squeeze(-1), atol=1e-6) and len(full) == 0
    att = TemporalAttention(4, 0, 4, 4, heads=2, dropout=0.0)
    h = torch.randn(3, 4)
    valid = torch.zeros(3, 5, dtype=torch.bool)
    out = att(h, torch.randn(7, 4), torch.zeros(3, 5, dtype=torch.long), torch.randn(3, 5, 4), valid)
    assert bool(torch.isfinite(out).all())  # no valid neighbour: a zero attention output, no NaN


def _dense_attention(att, h, table, index, edge_in, valid):
    """TemporalAttention's formula over every slot, padding included (masked in the softmax): the reference."""
    import math
    M, k = valid.shape
    H, D = att.heads, att.heads * att.head_dim
    K = V = att.we(edge_in)
    q = att.bq.expand(M, -1)
    if att.node_dim:
        q = q + att.wq(h)
        KV = att.wkv(table)[index]
        K, V = K + KV[..., :D], V + KV[..., D:]
    a = (q[:, None, :] * K).view(M, k, H, -1).sum(-1) / math.sqrt(att.head_dim)
    has = valid.any(1)
    a = torch.where(has[:, None, None], a.masked_fill(~valid[:, :, None], float("-inf")), torch.zeros_like(a))
    out = (torch.softmax(a, 1)[..., None] * V.view(M, k, H, -1)).sum(1).reshape(M, D) * has[:, None]
    if att.output == "skip":
        return out + att.skip(h) if att.node_dim else out
    return att.merge(torch.cat([att.norm(att.wo(out) + q), h], -1))


@pytest.mark.parametrize("node_dim,output", [(6, "merge"), (0, "merge"), (6, "skip")])
@pytest.mark.parametrize("fill", [0.0, 0.3, 1.0])
def test_attention_projects_only_valid_neighbours(node_dim, output, fill):
    """Only valid (row, neighbour) slots are projected and scored, given densely or as ``slots``; values and
    gradients equal the dense formula over all slots with padding masked, rows without neighbours included."""
    g = torch.Generator().manual_seed(int(fill * 10) + node_dim)
    M, k, F = 7, 5, 4
    torch.manual_seed(1)
    att = TemporalAttention(node_dim, 2, F - 2, 8, heads=2, dropout=0.0, output=output)
    h = torch.randn(M, node_dim, generator=g)
    table = torch.randn(9, node_dim, generator=g)
    index = torch.randint(0, 9, (M, k), generator=g)
    edge_in = torch.randn(M, k, F, generator=g, requires_grad=True)
    valid = torch.rand(M, k, generator=g) < fill
    valid[0] = False  # a row without neighbours
    want = _dense_attention(att, h, table, index, edge_in, valid)
    params = [att.we.weight, att.bq] + ([att.wq.weight, att.wkv.weight] if node_dim else [])
    gw = torch.autograd.grad(want.square().sum(), params + [edge_in])
    for packed in (False, True):
        if packed:
            slots = torch.nonzero(valid.flatten()).flatten()
            got = att(h, table, index, edge_in.flatten(0, 1)[slots], valid, slots)
        else:
            got = att(h, table, index, edge_in, valid)
        assert torch.allclose(got, want, atol=1e-5), packed
        gg = torch.autograd.grad(got.square().sum(), params + [edge_in])
        for a, b in zip(gg, gw):
            assert torch.allclose(a, b, atol=1e-5), packed
    none = att(h, table, index, edge_in, torch.zeros(M, k, dtype=torch.bool))
    assert bool(torch.isfinite(none).all())


def test_unknown_model():
    with pytest.raises(ValueError, match="'name' must be one of \\['tgn', 'tgat'\\]"):
        create_model("jodie", N)
    assert isinstance(create_model("TGAT", N, dim=4, time_dim=4), TGAT)
    assert isinstance(create_model("tgn", N, dim=4, time_dim=4), TGN)


def test_time_encoder_is_pygs_module_through_the_fused_op():
    # the models' encoder keeps PyG's TimeEncoder (its Linear(1, τ) and TGAT's initialisation) and computes its
    # forward with hardneg.ops.time_encode: PyG's own forward to within an ulp of cos, and the same gradients
    from torch_geometric.nn.models.tgn import TimeEncoder

    from hardneg.tasks.temporal.models import time_encoder

    enc = time_encoder(16)
    assert isinstance(enc, TimeEncoder)
    with torch.no_grad():
        enc.lin.bias.copy_(torch.linspace(-2, 2, 16))
    dt = (10 ** (torch.rand(2, 40, generator=torch.Generator().manual_seed(0)) * 7))
    ours = enc(dt)
    theirs = TimeEncoder.forward(enc, dt.reshape(-1)).view(2, 40, 16)
    assert ours.shape == (2, 40, 16)
    torch.testing.assert_close(ours, theirs, atol=2e-7, rtol=0)
    g = [torch.autograd.grad(y.sin().sum(), (enc.lin.weight, enc.lin.bias)) for y in (ours, theirs)]
    for a, b in zip(*g):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4 * float(b.abs().max()))


@pytest.mark.parametrize("edge_dim,rows", [(0, 1), (0, 37), (3, 12)])
def test_tgn_memory_cell_is_the_gru_cell_on_the_message(edge_dim, rows):
    """TGN's memory update forms input gradients only for the parts of its message [z_src ‖ z_dst ‖ raw ‖ φ(Δt)]
    that need one (φ in training): values and every gradient equal nn.GRUCell's on the concatenation."""
    from hardneg.tasks.temporal.models import _Memory, time_encoder

    torch.manual_seed(edge_dim + rows)
    mem = _Memory(10, 6, 5, edge_dim, time_encoder(5))
    g = torch.Generator().manual_seed(rows)
    data, h = torch.randn(rows, 12 + edge_dim, generator=g), torch.randn(rows, 6, generator=g)
    enc = torch.randn(rows, 5, generator=g, requires_grad=True)
    got, want = mem.cell(data, enc, h), mem.gru(torch.cat([data, enc], 1), h)
    assert torch.allclose(got, want, atol=1e-6)
    params = [enc, *mem.gru.parameters()]
    w = torch.randn(rows, 6, generator=g)
    for a, b in zip(torch.autograd.grad((got * w).sum(), params), torch.autograd.grad((want * w).sum(), params)):
        assert torch.allclose(a, b, atol=1e-5)
    # edge features that require a gradient still get it; a double backward raises instead of dropping terms
    d = data.clone().requires_grad_()
    (gd,) = torch.autograd.grad((mem.cell(d, enc, h) * w).sum(), [d])
    (wd,) = torch.autograd.grad((mem.gru(torch.cat([d, enc], 1), h) * w).sum(), [d])
    assert torch.allclose(gd, wd, atol=1e-5)
    (ge,) = torch.autograd.grad(mem.cell(data, enc, h).sum(), [enc], create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable|double backward|requires_grad"):
        ge.sum().backward()
    # under autocast (bfloat16 products on CPU) the gradients come back in float32, as nn.GRUCell's do
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = mem.cell(data, enc, h)
    (gb,) = torch.autograd.grad(out.float().sum(), [mem.gru.weight_ih])
    assert gb.dtype == torch.float32 and bool(torch.isfinite(gb).all())


def test_attention_dropout_keeps_each_entry_with_probability_1_minus_p_and_rescales():
    from hardneg.tasks.temporal.models import Dropout

    d = Dropout(0.25)
    x = torch.rand(400, 250) + 0.5
    torch.manual_seed(0)
    y = d(x)
    kept = y != 0
    assert torch.allclose(y[kept], x[kept] / 0.75)
    n, k = kept.numel(), int(kept.sum())
    z = (k - 0.75 * n) / math.sqrt(n * 0.75 * 0.25)  # binomial; a fixed seed, so the test is deterministic
    assert abs(z) < 4, z
    # the same seed gives the same mask; the gradient is the mask times the scale
    torch.manual_seed(0)
    xg = x.clone().requires_grad_()
    y2 = d(xg)
    assert torch.equal(y2, y)
    (gx,) = torch.autograd.grad(y2.sum(), [xg])
    assert torch.equal(gx, kept.float() / 0.75)
    # evaluation mode, p = 0 and p = 1
    assert d.eval()(x) is x
    assert Dropout(0.0)(x) is x
    assert float(Dropout(1.0)(x).abs().sum()) == 0.0


@pytest.mark.parametrize("name", ["tgn", "tgat"])
def test_pair_history_term_reads_the_sources_recent_partners_only_before_the_cutoff(name):
    """``pair_history=w``: the decoder's pair term for (source, candidate) is ``P [c / w ‖ φ'(t − t_last)]`` over
    the source's last w events strictly before the cut-off, exactly 0 for a candidate outside them; the sparse
    entries rank exactly as the dense term; off by default."""
    from hardneg.tasks.temporal import evaluation as E

    src, dst, t = stream()
    g = hardneg.TemporalGraph(src, dst, t, num_nodes=N)
    assert model(name).pair_window(src[:3], t[:3].double(), g, 500) is None and model(name).pair is None
    w = 4
    m = model(name, pair_history=w)
    sources = torch.tensor([0, 1, 2, 3])
    qt = int(t[120])
    times = torch.full((4,), float(qt) + 5.0, dtype=torch.float64)
    win = m.pair_window(sources, times, g, qt)
    cand = torch.arange(10, N).repeat(4, 1)
    term = m.pair_term(win, cand)
    assert term.shape == (4, N - 10, 8)
    for b, s in enumerate(sources.tolist()):
        before = torch.nonzero(((src == s) | (dst == s)) & (t < qt)).flatten()[-w:]  # the last w events
        other = torch.where(src[before] == s, dst[before], src[before])
        for j, c in enumerate(range(10, N)):
            hit = before[other == c]
            if not hit.numel():
                assert bool((term[b, j] == 0).all())
                continue
            f = torch.cat([torch.tensor([hit.numel() / w]),
                           m.pair_time_enc(torch.tensor([float(qt) + 5.0 - float(t[hit[-1]])]))[0]])
            assert torch.allclose(term[b, j], m.pair(f), atol=1e-5)
    later = m.pair_term(m.pair_window(sources, times, g, qt + 300), cand)
    assert not torch.equal(later, term)  # later events count once the cut-off passes them
    # the sparse entries rank exactly as scoring every candidate with the dense term
    z_src, C = torch.randn(4, 8), torch.randn(N - 10, 8)
    a, c = m.decoder.source(z_src), m.decoder.destination(C)
    target = torch.tensor([0, 3, 5, 9])
    with torch.no_grad():
        gr, eq = E.rank_counts(m.decoder.combine, a, c, target, offsets=m.pair_entries(win, 10, N - 1))
        dense = m.decoder.combine(a[:, None, :], c[None] + term)
    true = dense[torch.arange(4), target]
    others = torch.ones_like(dense, dtype=torch.bool)
    others[torch.arange(4), target] = False
    assert torch.equal(gr, ((dense > true[:, None]) & others).sum(1))
    assert torch.equal(eq, ((dense == true[:, None]) & others).sum(1))
    assert bool((term.abs().sum(-1) > 0).any())
    m.pair_term(win, cand).sum().backward()
    assert m.pair.weight.grad is not None and bool(m.pair.weight.grad.abs().sum() > 0)
    with pytest.raises(ValueError, match="'times' must have one entry per source"):
        m.pair_window(sources, times[:1], g, qt)
    with pytest.raises(ValueError, match="per-source 'query_time' must have one entry per source"):
        m.pair_window(sources, times, g, torch.full((2,), qt))
    with pytest.raises(TypeError, match="'times' must be a torch.Tensor"):
        m.pair_window(sources, 5.0, g, qt)
    with pytest.raises(ValueError, match="'cand' must be a 2-D integer tensor"):
        m.pair_term(win, cand[0])
    with pytest.raises(ValueError, match="'cand' must have one row per source"):
        m.pair_term(win, cand[:2])
    with pytest.raises(ValueError, match="pair_term: the model has no pair term"):
        model(name).pair_term(None, cand)
    with pytest.raises(ValueError, match="'pair_history' must be >= 0"):
        create_model(name, N, pair_history=-1)
    with pytest.raises(TypeError, match="'pair_history' must be an int"):
        create_model(name, N, pair_history=2.0)
