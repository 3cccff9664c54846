"""Temporal task data: JODIE/TGN loading, DyGLib's chronological / inductive split, evaluation negatives."""
from collections import Counter

import numpy as np
import pytest
import torch

from conftest import shared_path
from hardneg.tasks.temporal import data as T


def write_csv(path, rows, header="u,i,ts,label"):
    path.write_text(header + "\n" + "".join(",".join(str(x) for x in r) + "\n" for r in rows))
    return str(path)


def synthetic(seed=0, M=3000, users=120, items=60, bipartite=True):
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(0, users, (M,), generator=g)
    dst = torch.randint(0, items, (M,), generator=g) + (users if bipartite else 0)
    t = torch.sort(torch.randint(0, 10_000, (M,), generator=g)).values
    return T.TemporalDataset.from_tensors(src, dst, t, num_nodes=users + items if bipartite else max(users, items))


# ------------------------------------------------------------------------------------------------ loading
def test_raw_jodie_csv_offsets_items_and_relabels(tmp_path):
    p = write_csv(tmp_path / "raw.csv", [(0, 0, 1, 0), (1, 0, 2, 0), (3, 2, 2, 1), (0, 1, 5, 0)])
    ds = T.load_dataset(p, bipartite=True)
    # users 0, 1, 3 -> 0..2; items 0..2 -> 3..5 (after the users, one contiguous destination range)
    assert ds.src.tolist() == [0, 1, 2, 0] and ds.dst.tolist() == [3, 3, 5, 4]
    assert ds.bipartite and (ds.dst_min, ds.dst_max) == (3, 5) and ds.dst_nodes.tolist() == [3, 4, 5]
    assert ds.num_nodes == 6 and ds.node_ids.tolist() == [0, 1, 3, 4, 5, 6]
    assert ds.t.dtype == torch.int64 and ds.edge_features is None and ds.label.tolist() == [0, 0, 1, 0]


def test_overlapping_ids_without_bipartite_share_one_id_space(tmp_path):
    p = write_csv(tmp_path / "msg.csv", [(1, 2, 10, 1), (2, 3, 11, 1), (3, 1, 12, 1)], header="src,dest,ts,weight")
    ds = T.load_dataset(p)
    assert not ds.bipartite and ds.num_nodes == 3 and ds.src.tolist() == [0, 1, 2] and ds.dst.tolist() == [1, 2, 0]
    assert ds.dst_nodes.tolist() == [0, 1, 2]


def test_times_are_exact_int64_and_features_optional(tmp_path):
    big = 2**53 + 1  # not representable in float64
    p = write_csv(tmp_path / "f.csv", [(0, 5, big, 0, 0.5, 1.5), (1, 6, big + 2, 0, 2.0, -1.0)],
                  header="user_id,item_id,timestamp,state_label,features")
    ds = T.load_dataset(p)
    assert ds.t.dtype == torch.int64 and ds.t.tolist() == [big, big + 2]
    assert ds.edge_features.shape == (2, 2) and ds.edge_features.dtype == torch.float32
    p2 = write_csv(tmp_path / "g.csv", [(0, 5, "36.0", 0), (1, 6, "37.00", 0)])
    assert T.load_dataset(p2).t.tolist() == [36, 37]
    p3 = write_csv(tmp_path / "h.csv", [(0, 5, "1.5", 0), (1, 6, "2.25", 0)])
    assert T.load_dataset(p3).t.dtype == torch.float64


def test_ml_file_without_label_column(tmp_path):
    p = write_csv(tmp_path / "ml_x.csv", [(0, 1, 3, "5.0"), (1, 2, 3, "6.0")], header=",u,i,ts")
    ds = T.load_dataset(p)
    assert ds.t.tolist() == [5, 6] and ds.label.tolist() == [0, 0] and ds.bipartite and ds.num_nodes == 3


def test_unsorted_times_raise_naming_the_line_unless_sort(tmp_path):
    p = write_csv(tmp_path / "u.csv", [(0, 5, 1, 0), (1, 6, 3, 0), (2, 7, 2, 0), (3, 8, 2, 0)])
    with pytest.raises(ValueError, match=r"non-decreasing: .*u\.csv:4 has time 2 after 3.*sort=True"):
        T.load_dataset(p)
    ds = T.load_dataset(p, sort=True)
    assert ds.t.tolist() == [1, 2, 2, 3] and ds.src.tolist() == [0, 2, 3, 1]  # stable among equal times


def test_unparsable_line_names_file_and_line(tmp_path):
    p = write_csv(tmp_path / "bad.csv", [(0, 5, 1, 0), (0, "x", 2, 0)])
    with pytest.raises(ValueError, match=r"bad\.csv:3: cannot parse destination id 'x'"):
        T.load_dataset(p)
    with pytest.raises(ValueError, match=r"no data rows in"):
        T.load_dataset(write_csv(tmp_path / "empty.csv", []))


def test_from_tensors_checks():
    s, d, t = torch.tensor([0, 1, 2]), torch.tensor([3, 4, 5]), torch.tensor([1, 2, 3])
    with pytest.raises(ValueError, match=r"from_tensors: 'dst' ids must be in \[0, 5\) \(got min 3, max 5\)"):
        T.TemporalDataset.from_tensors(s, d, t, num_nodes=5)
    with pytest.raises(ValueError, match=r"'src' ids must be in >= 0"):
        T.TemporalDataset.from_tensors(torch.tensor([-1, 0, 1]), d, t)
    with pytest.raises(TypeError, match=r"'src' must be a 1-D integer tensor"):
        T.TemporalDataset.from_tensors(s.float(), d, t)
    with pytest.raises(ValueError, match=r"same length"):
        T.TemporalDataset.from_tensors(s, d, t[:2])
    with pytest.raises(TypeError, match=r"'t' must be a 1-D tensor with dtype in"):
        T.TemporalDataset.from_tensors(s, d, t.to(torch.int16))
    with pytest.raises(ValueError, match=r"event 2 has time 1 after 2 at event 1"):
        T.TemporalDataset.from_tensors(s, d, torch.tensor([1, 2, 1]))
    ds = T.TemporalDataset.from_tensors(s, d, t)
    assert ds.bipartite and ds.num_nodes == 6 and ds.describe()["events"] == 3


def test_find_respects_hardneg_data(tmp_path, monkeypatch):
    (tmp_path / "temporal" / "uci").mkdir(parents=True)
    p = write_csv(tmp_path / "temporal" / "uci" / "uci.csv", [(1, 2, 5, 1), (2, 1, 6, 1)], header="src,dest,ts,weight")
    monkeypatch.setenv("HARDNEG_DATA", str(tmp_path))
    assert T.find("uci") == (p, "uci")
    assert T.find("UCI")[1] == "uci"
    entries = {e["name"]: e for e in T.available()}
    assert set(entries) == set(T.SHIPPED) and entries["uci"]["available"] and entries["uci"]["task"] == "temporal"


def test_not_found_errors():
    with pytest.raises(ValueError, match=r"temporal dataset 'nope' not found \(shipped names: \['uci', 'wikipedia'\]"):
        T.load_dataset("nope")
    with pytest.raises(ValueError, match=r"download=True fetches"):
        T.load_dataset("lastfm") if T.find("lastfm") is None else pytest.skip("lastfm is in the local cache")
    with pytest.raises(ValueError, match="path not found"):
        T.load_dataset("/no/such/file.csv")


# ------------------------------------------------------------------------------------------------ split
def reference_split(ds, new_test_nodes):
    """DyGLib's get_link_prediction_data, written out with Python sets, given the held-out nodes."""
    ts = ds.t.double().numpy()
    val_time, test_time = np.quantile(ts, [0.70, 0.85])
    src, dst = ds.src.tolist(), ds.dst.tolist()
    held = set(new_test_nodes)
    train = [i for i in range(len(src)) if ts[i] <= val_time and src[i] not in held and dst[i] not in held]
    train_nodes = {src[i] for i in train} | {dst[i] for i in train}
    new_nodes = (set(src) | set(dst)) - train_nodes
    valid = [i for i in range(len(src)) if val_time < ts[i] <= test_time]
    test = [i for i in range(len(src)) if ts[i] > test_time]
    nn = lambda idx: [i for i in idx if src[i] in new_nodes or dst[i] in new_nodes]  # noqa: E731
    return val_time, test_time, train, valid, test, nn(valid), nn(test), new_nodes


@pytest.mark.parametrize("bipartite", [True, False])
def test_split_matches_dyglib_semantics(bipartite):
    ds = synthetic(bipartite=bipartite)
    sp = ds.split(seed=5)
    vt, tt, train, valid, test, nnv, nnt, new_nodes = reference_split(ds, sp.new_test_nodes.tolist())
    assert (sp.val_time, sp.test_time) == (vt, tt)
    assert sp.train.tolist() == train and sp.valid.tolist() == valid and sp.test.tolist() == test
    assert sp.new_node_valid.tolist() == nnv and sp.new_node_test.tolist() == nnt
    assert set(sp.new_nodes.tolist()) == new_nodes
    # held-out nodes: int(0.1 * N) of the nodes seen after val_time, absent from training
    nodes = torch.unique(torch.cat([ds.src, ds.dst]))
    late = set(torch.cat([ds.src[ds.t > vt], ds.dst[ds.t > vt]]).tolist())
    assert sp.new_test_nodes.numel() == int(0.1 * nodes.numel()) and set(sp.new_test_nodes.tolist()) <= late
    tr = set(ds.src[sp.train].tolist()) | set(ds.dst[sp.train].tolist())
    assert not tr & set(sp.new_test_nodes.tolist())
    # chronological, disjoint, complete (the removed events are training-time events touching held-out nodes)
    assert ds.t[sp.train].max() <= vt < ds.t[sp.valid].min() and ds.t[sp.valid].max() <= tt < ds.t[sp.test].min()
    parts = torch.cat([sp.train, sp.valid, sp.test])
    assert torch.unique(parts).numel() == parts.numel()
    removed = sorted(set(range(ds.num_events)) - set(parts.tolist()))
    assert all(ds.t[i] <= vt and (ds.src[i] in sp.new_test_nodes or ds.dst[i] in sp.new_test_nodes) for i in removed)
    d = sp.describe()
    assert d["valid"] == len(valid) and d["new_test_nodes"] == sp.new_test_nodes.numel() and d["inductive"]


def test_split_seeds_and_transductive():
    ds = synthetic()
    a, b, c = ds.split(seed=1), ds.split(seed=1), ds.split(seed=2)
    assert torch.equal(a.new_test_nodes, b.new_test_nodes) and torch.equal(a.train, b.train)
    assert not torch.equal(a.new_test_nodes, c.new_test_nodes)
    tr = ds.split(inductive=False)
    assert tr.new_test_nodes.numel() == 0 and tr.train.tolist() == torch.nonzero(ds.t.double() <= tr.val_time).flatten().tolist()
    assert torch.equal(tr.valid, a.valid) and torch.equal(tr.test, a.test)


def test_inductive_split_without_new_nodes_raises():
    ds = T.TemporalDataset.from_tensors(torch.tensor([0, 1, 2, 0, 1, 2, 0]), torch.tensor([3, 4, 3, 4, 3, 4, 3]),
                                        torch.arange(7))
    with pytest.raises(ValueError, match=r"inductive split leaves no new nodes: int\(0.1 \* 5 nodes\) = 0"):
        ds.split()
    assert ds.split(inductive=False).new_node_test.numel() == 0
    # 30 nodes (3 to hold out), but after val_time only nodes 0 and 20 interact
    src = torch.cat([torch.arange(20), torch.zeros(10, dtype=torch.int64)])
    dst = torch.cat([20 + torch.arange(20) % 10, torch.full((10,), 20)])
    late = T.TemporalDataset.from_tensors(src, dst, torch.arange(30))
    with pytest.raises(ValueError, match=r"cannot hold out 3 new nodes: only 2 nodes occur after val_time"):
        late.split()
    flat = T.TemporalDataset.from_tensors(torch.arange(20), torch.arange(20, 40), torch.zeros(20, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"leaves the valid part empty"):
        flat.split()
    with pytest.raises(ValueError, match=r"'val_ratio' \+ 'test_ratio' must be < 1"):
        ds.split(val_ratio=0.6, test_ratio=0.5)
    with pytest.raises(ValueError, match=r"'new_node_ratio' must be in \(0, 1\)"):
        ds.split(new_node_ratio=1.0)
    with pytest.raises(TypeError, match=r"'seed' must be an int"):
        ds.split(seed=1.5)


# ------------------------------------------------------------------------------------------------ negatives
def test_random_eval_negatives():
    ds = synthetic()
    sp = ds.split()
    for part in ("valid", "test", "new_node_valid", "new_node_test"):
        s, d = ds.eval_negatives(sp, part, "random")
        pos = sp.part(part)
        assert torch.equal(s, ds.src[pos])
        pool = ds.dst if not part.startswith("new") else ds.dst[pos]
        assert torch.isin(d, torch.unique(pool)).all()
    assert torch.equal(ds.eval_negatives(sp, "test")[1], ds.eval_negatives(sp, "test")[1])  # default seed 2
    assert torch.equal(ds.eval_negatives(sp, "test")[1], ds.eval_negatives(sp, "test", seed=2)[1])
    assert not torch.equal(ds.eval_negatives(sp, "test")[1], ds.eval_negatives(sp, "test", seed=3)[1])
    with pytest.raises(ValueError, match=r"'part' must be one of"):
        ds.eval_negatives(sp, "train")
    with pytest.raises(ValueError, match=r"'strategy' must be one of"):
        ds.eval_negatives(sp, "test", "hard")
    with pytest.raises(ValueError, match=r"'batch_size' must be >= 1"):
        ds.eval_negatives(sp, "test", batch_size=0)
    with pytest.raises(ValueError, match=r"'hist_ratio' must be in \[0, 1\]"):
        ds.mrr_negatives(sp, hist_ratio=2)
    with pytest.raises(ValueError, match=r"'num' must be >= 1"):
        ds.mrr_negatives(sp, num=0)


def brute_force_candidates(ds, sp, part, strategy, batch):
    """DyGLib's historical / inductive candidate edges for one batch (python sets over the sampler's events)."""
    pool = sp.part(part) if part.startswith("new") else torch.arange(ds.num_events)
    ev = [(int(ds.src[i]), int(ds.dst[i]), int(ds.t[i])) for i in pool]
    start, end = int(ds.t[batch[0]]), int(ds.t[batch[-1]])
    hist = {(s, d) for s, d, t in ev if t <= start}
    window = {(s, d) for s, d, t in ev if start <= t <= end}
    cand = hist - window
    if strategy == "inductive":
        last = int(ds.t[(sp.train if part.endswith("valid") else sp.valid)[-1]])
        cand -= {(s, d) for s, d, t in ev if t <= last}
    srcs, dsts = {s for s, _, _ in ev}, {d for _, d, _ in ev}
    return cand, srcs, dsts


@pytest.mark.parametrize("strategy", ["historical", "inductive"])
def test_historical_and_inductive_negatives_follow_dyglib(strategy):
    ds = synthetic(M=1500, users=40, items=25)
    sp = ds.split(seed=3)
    for part in ("valid", "test", "new_node_test"):
        pos = sp.part(part)
        s, d = ds.eval_negatives(sp, part, strategy, batch_size=50)
        assert s.shape == pos.shape and torch.equal((s, d)[0], ds.eval_negatives(sp, part, strategy, batch_size=50)[0])
        for lo in range(0, pos.numel(), 50):
            b = pos[lo:lo + 50]
            cand, srcs, dsts = brute_force_candidates(ds, sp, part, strategy, b)
            negs = list(zip(s[lo:lo + 50].tolist(), d[lo:lo + 50].tolist()))
            batch_edges = set(zip(ds.src[b].tolist(), ds.dst[b].tolist()))
            if len(cand) >= b.numel():  # all from the candidates, without replacement
                assert set(negs) <= cand and len(set(negs)) == len(negs)
            else:  # every candidate once, the rest random pairs of the sampler's nodes outside the batch
                rest = Counter(negs)
                rest.subtract(cand)  # every candidate once (a random pair may hit a candidate again)
                assert min(rest.values()) >= 0 and sum(rest.values()) == b.numel() - len(cand)
                rest = [e for e, c in rest.items() if c]
                assert all(u in srcs and v in dsts and (u, v) not in batch_edges for u, v in rest)


def test_mrr_negatives_hist_rnd():
    ds = synthetic(M=2000, users=50, items=300)
    sp = ds.split()
    neg = ds.mrr_negatives(sp, "test")
    pos = sp.test
    assert neg.shape == (pos.numel(), 100) and neg.dtype == torch.int64
    assert torch.equal(neg, ds.mrr_negatives(sp, "test")) and not torch.equal(neg, ds.mrr_negatives(sp, "test", seed=9))
    srt = torch.sort(neg, 1).values
    assert not (srt[:, 1:] == srt[:, :-1]).any() and ((neg >= ds.dst_min) & (neg <= ds.dst_max)).all()
    train_dsts = {}
    for i in sp.train.tolist():
        train_dsts.setdefault(int(ds.src[i]), set()).add(int(ds.dst[i]))
    same = {}
    for i in pos.tolist():
        same.setdefault((int(ds.src[i]), int(ds.t[i])), set()).add(int(ds.dst[i]))
    for r, i in enumerate(pos.tolist()):
        s, row = int(ds.src[i]), neg[r].tolist()
        seen = train_dsts.get(s, set()) - same[(s, int(ds.t[i]))]
        h = min(50, len(seen))
        assert set(row[:h]) <= seen and not set(row[h:]) & train_dsts.get(s, set())
        assert not set(row) & same[(s, int(ds.t[i]))]


# ------------------------------------------------------------------------------------------------ real data
def test_wikipedia_counts_and_dyglib_split():
    shared_path("data", "temporal", "wikipedia", "wikipedia.csv")
    ds = T.load_dataset("wikipedia")
    d = ds.describe()
    assert (d["nodes"], d["events"], d["destination_nodes"], d["bipartite"]) == (9_227, 157_474, 1_000, True)
    assert (ds.dst_min, ds.dst_max) == (8_227, 9_226) and ds.t.dtype == torch.int64 and int(ds.label.sum()) == 217
    assert torch.unique(ds.src * ds.num_nodes + ds.dst).numel() == 18_257
    sp = ds.split()
    # the split sizes DyGLib reports for Wikipedia (valid / test do not depend on the held-out draw)
    assert (sp.valid.numel(), sp.test.numel(), sp.new_test_nodes.numel()) == (23_621, 23_621, 922)
    assert ds.split(inductive=False).train.numel() == 110_232
    s, dd = ds.eval_negatives(sp, "test", "historical")
    assert s.numel() == 23_621 and ((dd >= 8_227) & (s < 8_227)).all()


def test_uci_files_agree():
    ml = shared_path("data", "temporal", "uci", "ml_uci.csv")
    raw = shared_path("data", "temporal", "uci", "uci.csv")
    a, b = T.load_dataset(ml), T.load_dataset(raw)
    assert (a.num_nodes, a.num_events, a.bipartite) == (1_899, 59_835, False)
    assert torch.equal(a.src, b.src) and torch.equal(a.dst, b.dst) and torch.equal(a.t, b.t)
    assert a.node_ids[0] == 2 and b.node_ids[0] == 1  # ml_uci ids are uci ids + 1
    assert T.load_dataset("uci").describe()["source"].endswith("ml_uci.csv")
