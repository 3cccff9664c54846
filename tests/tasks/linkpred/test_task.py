"""The linkpred task on the engine: every model with uniform / dns / mebns negatives, MeBNS's parts, resume,
teacher checkpoints tied to their graph, config errors and the CLI. Tiny synthetic graphs, a few epochs."""
import json
import warnings

import pytest
import torch

from hardneg.samplers import MeBNSSampler
from hardneg.tasks.linkpred.data import LinkPredDataset
from hardneg.training import TrainConfig, Trainer, train

pytest.importorskip("torch_geometric")


def graph(n=90, m=360, seed=0, features=True):
    g = torch.Generator().manual_seed(seed)
    # two communities, so that there is something to learn
    half = n // 2
    a = torch.randint(0, half, (m, 2), generator=g)
    a[m // 2:] += half
    a = a[a[:, 0] != a[:, 1]]
    key = torch.unique(torch.minimum(a[:, 0], a[:, 1]) * n + torch.maximum(a[:, 0], a[:, 1]))
    ds = LinkPredDataset.from_edges(torch.stack([key // n, key % n], 1), n, name=f"toy{seed}")
    if features:
        ds.x = torch.cat([torch.rand(n, 6, generator=g), (torch.arange(n) >= half).float()[:, None]], 1)
    return ds


def cfg(**kw):
    base = dict(task="linkpred", dataset="toy", model="gcn", epochs=2, eval_every=1, batch_size=128, num_negatives=2,
                loss="bce", lr=0.01, dim=8, hidden=16, num_hits_negatives=200, seed=0, sampler="uniform",
                sampler_options={}, model_options={})
    base.update(kw)
    if base["sampler"] == "mebns":
        base["sampler_options"] = {"teacher_epochs": 2, "meta_size": 16, "mc_passes": 3, "num_candidates": 6,
                                   **base["sampler_options"]}
    elif base["sampler"] == "dns":
        base["sampler_options"] = {"num_candidates": 6, **base["sampler_options"]}
    return TrainConfig(**base)


def run(data, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # split warnings about nodes without training edges
        return train(cfg(**kw), data=data, progress=False, log=None)


@pytest.mark.parametrize("model", ["gcn", "gat", "seal"])
@pytest.mark.parametrize("sampler", ["uniform", "dns", "mebns"])
def test_every_model_trains_with_every_sampler(model, sampler):
    extra = dict(num_layers=2, sort_k=10, dropout=0.1) if model == "seal" else {}
    res = run(graph(features=model != "seal"), model=model, sampler=sampler, **extra)
    for part in ("valid", "test"):
        for k in ("auc", "ap", "hits@20", "hits@50", "hits@100", "mrr"):
            assert 0.0 <= res[part][k] <= 1.0, (part, k, res[part][k])
    assert res["test"]["hits_negatives"] == 200 and res["test"]["mrr_negatives"] == 100
    assert res["history"][-1]["loss"] > 0 and "random 85/5/10 edge split" in res["protocol"]
    if sampler == "mebns":
        mb = res["dataset"]["mebns"]
        assert mb["teacher"]["epochs"] == 2 and mb["meta_set"]["meta_size"] == 16 and mb["teacher_s"] > 0


@pytest.mark.parametrize("readout", ["mean", "center"])
def test_seal_readouts_train_and_center_reads_the_two_target_nodes(readout):
    res = run(graph(), model="seal", readout=readout, num_layers=2, dropout=0.1, epochs=1)
    assert 0.0 <= res["test"]["auc"] <= 1.0 and res["dataset"]["seal"]["readout"] == readout
    if readout != "center":
        return
    from hardneg.graph import CSRGraph
    from hardneg.tasks.linkpred.models import SEAL

    torch.manual_seed(0)
    g = CSRGraph.from_edges(torch.tensor([[0, 1], [1, 2], [2, 3], [3, 4], [5, 6]]), 7)
    m = SEAL(g, torch.rand(7, 3), hidden=4, num_layers=2, readout="center").eval()
    sub = m.subgraphs(torch.tensor([[0, 2], [4, 5], [1, 3]]))
    seen = []
    m.mlp.register_forward_hook(lambda mod, args, out: seen.append(args[0]))
    m(sub)
    h = torch.cat([m.z_embedding(sub.labels), m.x[sub.nodes]], 1)
    xs = []
    for conv in m.convs:
        h = torch.tanh(conv(h, sub.edge_index))
        xs.append(h)
    h = torch.cat(xs, 1)
    s = sub.node_ptr[:-1]
    assert torch.equal(sub.nodes[s], torch.tensor([0, 4, 1])) and torch.equal(sub.nodes[s + 1], torch.tensor([2, 5, 3]))
    assert torch.allclose(seen[0], h[s] * h[s + 1], atol=1e-6)


def test_mlp_decoder_and_featureless_graphs():
    res = run(graph(features=False), decoder="mlp", sampler="dns")
    assert res["test"]["auc"] >= 0.0
    with pytest.raises(TypeError, match=r"the mlp decoder is not a pairwise metric.*need decoder='dot'"):
        run(graph(), decoder="mlp", sampler="topk")


def test_mebns_teacher_trains_under_deterministic_algorithms(monkeypatch):
    """The teacher trains in the task's set-up: with ``deterministic`` that must use deterministic kernels too
    (CPU index_put_ with accumulation otherwise sums in a thread-dependent order: two 2-thread runs differed)."""
    from hardneg.tasks.linkpred import mebns

    seen, real = [], mebns.train_teacher

    def spy(*a, **k):
        seen.append(torch.are_deterministic_algorithms_enabled())
        return real(*a, **k)

    monkeypatch.setattr(mebns, "train_teacher", spy)
    before = torch.are_deterministic_algorithms_enabled()
    run(graph(), sampler="mebns", epochs=1)
    run(graph(), sampler="mebns", epochs=1, deterministic=False)
    assert seen == [True, before] and torch.are_deterministic_algorithms_enabled() == before


def test_mebns_resumes_bit_identically(tmp_path):
    ds = graph()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = train(cfg(sampler="mebns", epochs=4), data=ds, progress=False, log=None)
        tr = Trainer(cfg(sampler="mebns", epochs=2, checkpoint_every=1, checkpoint_dir=str(tmp_path)), data=ds,
                     progress=False, log=None)
        tr.run()
        resumed = Trainer(cfg(sampler="mebns", epochs=4, checkpoint_every=1, checkpoint_dir=str(tmp_path)), data=ds,
                          progress=False, log=None).run(resume=True)
    assert [h["loss"] for h in resumed["history"]] == [h["loss"] for h in full["history"]]
    assert resumed["test"] == full["test"]


def test_largest_component_option_trains_on_the_component_only():
    ds = graph()  # two communities with no edge between them
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tr = Trainer(cfg(epochs=1, largest_component=True), data=ds, progress=False, log=None)
        out = tr.run()
    d = out["dataset"]
    assert d["largest_component_of"] == {"nodes": ds.num_nodes, "edges": ds.num_edges}
    assert d["nodes"] < ds.num_nodes and d["isolated_nodes"] == 0
    assert int(tr.task.split.train.max()) < d["nodes"]
    with pytest.raises(TypeError, match="largest_component"):
        cfg(largest_component="yes").validate()


def test_teacher_checkpoint_is_tied_to_its_graph(tmp_path):
    path = str(tmp_path / "teacher.pt")
    first = run(graph(), sampler="mebns", sampler_options={"teacher_path": path})
    assert first["dataset"]["mebns"]["teacher"]["saved"] == path
    again = run(graph(), sampler="mebns", sampler_options={"teacher_path": path})
    assert again["dataset"]["mebns"]["teacher"]["loaded"] == path
    assert again["test"] == first["test"]  # the same teacher, the same run
    with pytest.raises(ValueError, match=r"teacher checkpoint .* was trained on another graph \(fingerprint "
                                         r"[0-9a-f]{16}, toy0: 90 nodes.*this run's training graph is"):
        run(graph(seed=1), sampler="mebns", sampler_options={"teacher_path": path})
    with pytest.raises(ValueError, match=r"was trained on another graph"):  # same graph, another split
        run(graph(), sampler="mebns", split_seed=5, sampler_options={"teacher_path": path})
    with pytest.raises(ValueError, match=r"has another architecture"):
        run(graph(), sampler="mebns", hidden=32, sampler_options={"teacher_path": path})
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"cannot read the teacher checkpoint"):
        run(graph(), sampler="mebns", sampler_options={"teacher_path": str(tmp_path / "junk.pt")})


def test_mebns_parts():
    """STD-Generator mixes k-hop and uniform negatives; the teacher filter keeps the teacher's hardest; the
    meta set is the most certain pairs; the weight net starts neutral."""
    import hardneg
    from hardneg.ops import corrupt
    from hardneg.samplers import EmbeddingScorer, MetaReweighter, collect_meta_set

    ds = graph()
    e = ds.edges
    N = ds.num_nodes
    known = hardneg.KnownSet.from_edges(e, N, directed=False)
    s = MeBNSSampler(num_negatives=2, known=known, num_candidates=8, filter_quantile=0.75, std_ratio=1.0, edges=e)
    g = torch.Generator().manual_seed(0)
    P = e[:50]
    std = s.teacher_negatives(P, 4, generator=g)
    assert std.ids.shape == (50, 4) and bool(std.valid.all())
    # std_ratio 1: every teacher negative lies within 2 hops of its anchor
    adj = torch.zeros(N, N, dtype=torch.bool)
    adj[e[:, 0], e[:, 1]] = adj[e[:, 1], e[:, 0]] = True
    two = (adj.float() @ adj.float() > 0) | adj
    assert bool(two[P[:, 0:1].expand(-1, 4), std.ids].all())
    # the teacher keeps its top quarter of the candidates; with select="teacher" the n best of them
    z = torch.randn(N, 4, generator=g)
    teacher = EmbeddingScorer(z)
    s2 = MeBNSSampler(num_negatives=2, known=known, num_candidates=8, filter_quantile=0.75, select="teacher",
                      teacher=teacher)
    neg = s2.sample(P, scorer=EmbeddingScorer(torch.randn(N, 4, generator=g)), generator=g)
    tl = s2.teacher_scores(neg)
    assert torch.allclose(tl, (z[P[:, 0:1]] * z[neg.ids]).sum(-1))
    with pytest.raises(ValueError, match=r"teacher_scores takes the Negatives of the latest sample\(\) call"):
        s2.teacher_scores(type(neg)(neg.ids.clone(), neg.valid))
    # select="joint" (the default): among all M candidates (no hard filter), the n with the highest student logit
    # plus teacher_weight times the teacher's; weight 0 is the student's own pick, and a large weight the teacher's
    assert MeBNSSampler(num_negatives=3, known=known).num_candidates == 48  # default: 16 per negative
    zs = torch.randn(N, 4, generator=g)
    picks = {}
    for w in (0.0, 0.25, 1e6):
        s3 = MeBNSSampler(num_negatives=2, known=known, num_candidates=8, teacher=teacher, teacher_weight=w)
        assert s3.select == "joint" and s3.filter_quantile == 0.0
        neg3 = s3.sample(P, scorer=EmbeddingScorer(zs), generator=torch.Generator().manual_seed(5))
        cand = corrupt(P, 8, N, side="tail", known=known, generator=torch.Generator().manual_seed(5))[0][..., 1]
        key = (zs[P[:, 0:1]] * zs[cand]).sum(-1) + w * (z[P[:, 0:1]] * z[cand]).sum(-1)
        want = cand.gather(1, key.topk(2, dim=1).indices).sort(dim=1).values
        assert bool(neg3.valid.all()) and torch.equal(neg3.ids.sort(dim=1).values, want), w
        picks[w] = neg3.ids
    s4 = MeBNSSampler(num_negatives=2, known=known, num_candidates=8, teacher=teacher, select="student",
                      filter_quantile=0.0)
    assert torch.equal(s4.sample(P, scorer=EmbeddingScorer(zs), generator=torch.Generator().manual_seed(5)).ids,
                       picks[0.0])
    assert not torch.equal(picks[0.25], picks[1e6])
    # UMD-Collector: the lowest-deviation, correctly classified pairs
    pairs = torch.arange(12).view(6, 2)
    labels = torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0, 0.0])
    noisy = torch.tensor([0.0, 0.3, 0.01, 0.0, 0.2, 0.0])
    mean = torch.tensor([0.9, 0.9, 0.2, 0.1, 0.1, 0.8])  # pair 2 and pair 5 are misclassified
    meta, y, stats = collect_meta_set(lambda i: mean + noisy * (1 if i % 2 else -1), pairs, labels, 4, 4)
    assert meta.tolist() == [[0, 1], [2, 3], [6, 7], [8, 9]] and y.tolist() == [1.0, 1.0, 0.0, 0.0]
    assert stats["misclassified_in_meta"] == 0
    rw = MetaReweighter(8)
    w = rw.weights(torch.randn(5, 3, 2), torch.ones(5, 3, dtype=torch.bool))
    assert torch.allclose(w, torch.ones(5, 3))


@pytest.mark.parametrize("kw, exc, msg", [
    (dict(num_candidates=1), ValueError, r"'num_candidates' \(1\) must be >= num_negatives \(2\)"),
    (dict(filter_quantile=1.0), ValueError, r"'filter_quantile' must be in \[0, 1\) \(got 1.0\)"),
    (dict(std_ratio=1.5), ValueError, r"'std_ratio' must be in \[0, 1\] \(got 1.5\)"),
    (dict(select="best"), ValueError, r"'select' must be one of \['joint', 'student', 'teacher', 'uniform'\]"),
    (dict(teacher_weight=-0.5), ValueError, r"'teacher_weight' must be finite and in \[0.0, inf\] \(got -0.5\)"),
    (dict(teacher_weight="high"), TypeError, r"'teacher_weight' must be a float \(got str"),
    (dict(meta_params="some"), ValueError, r"'meta_params' must be one of \['all', 'head'\]"),
    (dict(mc_passes=1), ValueError, r"'mc_passes' must be >= 2"),
    (dict(teacher=3), TypeError, r"'teacher' must be a scorer with score_candidates"),
    (dict(teacher_path=3), TypeError, r"'teacher_path' must be a path or None"),
])
def test_sampler_option_errors(kw, exc, msg):
    import hardneg

    known = hardneg.KnownSet.from_edges(torch.tensor([[0, 1], [1, 2]]), 5)
    with pytest.raises(exc, match=msg):
        MeBNSSampler(num_negatives=2, known=known, **kw)


def test_config_errors():
    with pytest.raises(ValueError, match=r"'model' must be one of \['gcn', 'gat', 'seal'\] \(got 'mlp'\)"):
        TrainConfig(task="linkpred", model="mlp").validate()
    with pytest.raises(ValueError, match=r"'readout' must be one of \['sort', 'mean', 'center'\] \(got 'max'\)"):
        TrainConfig(task="linkpred", readout="max").validate()
    with pytest.raises(ValueError, match=r"'decoder' must be one of \['dot', 'mlp'\]"):
        TrainConfig(task="linkpred", decoder="cos").validate()
    with pytest.raises(ValueError, match=r"'select_metric' must be one of"):
        TrainConfig(task="linkpred", select_metric="hits@10").validate()
    with pytest.raises(ValueError, match=r"'sort_k' must be a quantile in \(0, 1\] or a whole number"):
        TrainConfig(task="linkpred", sort_k=2.5).validate()
    with pytest.raises(TypeError, match=r"'use_features' must be a bool"):
        TrainConfig(task="linkpred", use_features="yes").validate()
    with pytest.raises(ValueError, match=r"unknown model_options \['depth'\]"):
        run(graph(), model_options={"depth": 3})
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['hopz'\] for task 'linkpred'"):
        TrainConfig.from_dict({"task": "linkpred", "hopz": 2})
    with pytest.raises(ValueError, match=r"'mrr_negatives' must be >= 0 \(got -1\)"):
        TrainConfig(task="linkpred", mrr_negatives=-1).validate()
    with pytest.raises(ValueError, match=r"'select_metric' 'mrr' needs 'mrr_negatives' >= 1 \(got 0\)"):
        TrainConfig(task="linkpred", mrr_negatives=0, select_metric="mrr").validate()


@pytest.mark.parametrize("k", [0, 7])
def test_mrr_negatives_sets_the_fixed_mrr_set(k):
    """``mrr_negatives`` reaches the split: k negatives per valid / test positive; 0 skips MRR (NaN, said in the
    protocol) and leaves every other metric as it was."""
    ds = graph(features=False)
    res = run(ds, mrr_negatives=k, epochs=1)
    base = run(ds, epochs=1)
    assert res["test"]["mrr_negatives"] == k and base["test"]["mrr_negatives"] == 100
    for key in ("auc", "ap", "hits@20", "hits@100"):
        assert res["test"][key] == base["test"][key]
    if k == 0:
        assert res["test"]["mrr"] != res["test"]["mrr"] and "no MRR (mrr_negatives 0)" in res["protocol"]
    else:
        assert 0.0 <= res["test"]["mrr"] <= 1.0 and f"MRR vs {k} negatives per positive" in res["protocol"]


def test_cli_trains_an_edge_list_with_self_loops_and_duplicates(tmp_path, capsys):
    from hardneg import cli

    g = torch.Generator().manual_seed(0)
    e = torch.randint(0, 60, (300, 2), generator=g)
    e = e[e[:, 0] != e[:, 1]]
    lines = [f"{u} {v}" for u, v in e.tolist()] + ["3 3", "4 5", "5 4"]
    path = tmp_path / "g.txt"
    path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "run"
    with pytest.warns(UserWarning, match=r"removed 1 self-loops and \d+ duplicate edges"):
        rc = cli.main(["train", "--task", "linkpred", "--dataset", str(path), "--model", "gcn", "--sampler", "mebns",
                       "--epochs", "2", "--dim", "8", "--hidden", "16", "--num-hits-negatives", "100",
                       "--set", "sampler_options={teacher_epochs: 1, meta_size: 8, mc_passes: 2}", "--no-progress",
                       "--output", str(out)])
    assert rc == 0
    res = json.loads((out / "results.json").read_text())
    assert res["task"] == "linkpred" and res["dataset"]["self_loops_removed"] == 1
    assert "H@20" in capsys.readouterr().out


def test_seal_gcn_node_embedding_is_a_gcn_trained_on_the_runs_own_split():
    """``node_embedding: gcn`` trains the GCN by the shared engine on this run's split (same training graph, same
    evaluation sets), freezes its encoder output and joins it to every subgraph node's input; the GCN never moves
    the SEAL run's random stream."""
    from hardneg.tasks.linkpred.embedding import gcn_config, node_embedding
    from hardneg.tasks.linkpred.mebns import graph_fingerprint

    ds = graph()
    c = cfg(model="seal", node_embedding="gcn", readout="center", num_layers=2, dropout=0.1, epochs=1, split_seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tr = Trainer(c, data=ds, progress=False, log=None)
        z = tr.task.node_embedding
        res = tr.run()
        g = Trainer(gcn_config(c, tr.task.split), data=ds, progress=False, log=None)
        g.run()
    assert g.task.split.seed == tr.task.split.seed == 3
    assert graph_fingerprint(g.task.split.train, 90) == graph_fingerprint(tr.task.split.train, 90)
    g.task.model.eval()
    with torch.no_grad():
        assert torch.equal(z, g.task.model.encode())  # the same GCN, trained the same way
    m = tr.task.model
    assert m.x.shape == (90, 7 + z.shape[1]) and torch.equal(m.x[:, 7:], z)  # features, then the embedding
    info = res["dataset"]["seal"]["node_embedding"]
    assert info["source"] == "gcn" and info["dim"] == z.shape[1] and 0.0 <= info["test_auc"] <= 1.0
    state = torch.get_rng_state()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again, _ = node_embedding(c, ds, tr.task.split)
    assert torch.equal(torch.get_rng_state(), state) and torch.equal(again, z)


def test_seal_learnt_node_table_trains():
    ds = graph(features=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tr = Trainer(cfg(model="seal", node_embedding="learn", num_layers=2, sort_k=10, dropout=0.1, epochs=1),
                     data=ds, progress=False, log=None)
        before = tr.task.model.node_table.weight.detach().clone()
        res = tr.run()
    assert tr.task.model.node_table.weight.shape == (90, 8) and tr.task.model.x is None
    assert not torch.equal(before, tr.task.model.node_table.weight)
    assert res["dataset"]["seal"]["node_embedding"] == {"source": "learn", "dim": 8}


def test_seal_node_embedding_from_a_file_is_checked_against_the_split(tmp_path):
    """A linkpred run's embeddings.pt carries its training graph's fingerprint: SEAL loads it on that split and
    refuses it on another (its graph held this split's test edges). A bare tensor loads with a warning; wrong
    shapes and unreadable files are ValueErrors that name the file."""
    import numpy as np

    ds = graph()
    out = tmp_path / "gcn"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train(cfg(epochs=1), data=ds, progress=False, log=None, output=str(out))
    path = str(out / "embeddings.pt")
    saved = torch.load(path)["node"]
    assert len(saved["graph"]) == 16 and saved["weight"].shape == (90, 8)
    seal = dict(model="seal", num_layers=2, sort_k=10, dropout=0.1, epochs=1, use_features=False)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        tr = Trainer(cfg(node_embedding=path, **seal), data=ds, progress=False, log=None)
    assert not [w for w in seen if "fingerprint" in str(w.message)]  # a fingerprinted file loads quietly
    assert torch.equal(tr.task.model.x, saved["weight"])
    with pytest.raises(ValueError, match=r"embeddings.pt' was trained on another training graph \(fingerprint "
                                         r"[0-9a-f]{16}; this run's is [0-9a-f]{16}\)"):
        run(ds, node_embedding=path, split_seed=4, **seal)
    torch.save(torch.randn(90, 5), tmp_path / "bare.pt")
    np.save(tmp_path / "bare.npy", np.random.default_rng(0).standard_normal((90, 3)).astype(np.float32))
    for name, width in (("bare.pt", 5), ("bare.npy", 3)):
        with pytest.warns(UserWarning, match=r"carries no training-graph fingerprint"):
            tr = Trainer(cfg(node_embedding=str(tmp_path / name), **seal), data=ds, progress=False, log=None)
        assert tr.task.model.x.shape == (90, width)
    torch.save(torch.randn(89, 5), tmp_path / "short.pt")
    with pytest.raises(ValueError, match=r"short.pt' has 89 rows, but the graph has 90 nodes"):
        run(ds, node_embedding=str(tmp_path / "short.pt"), **seal)
    torch.save(torch.randn(90), tmp_path / "flat.pt")
    with pytest.raises(ValueError, match=r"flat.pt' must hold a 2-D real \[nodes, d\] table \(got \(\(90,\), "):
        run(ds, node_embedding=str(tmp_path / "flat.pt"), **seal)
    torch.save(torch.full((90, 2), float("nan")), tmp_path / "nan.pt")
    with pytest.raises(ValueError, match=r"nan.pt' holds NaN or infinite values"):
        run(ds, node_embedding=str(tmp_path / "nan.pt"), **seal)
    (tmp_path / "junk.pt").write_bytes(b"not a tensor")
    with pytest.raises(ValueError, match=r"linkpred node_embedding: cannot read .*junk.pt"):
        run(ds, node_embedding=str(tmp_path / "junk.pt"), **seal)


def test_node_embedding_config_errors(tmp_path):
    with pytest.raises(ValueError, match=r"'node_embedding' applies to model 'seal' only \(got 'gcn' with model "
                                         r"'gat'"):
        TrainConfig(task="linkpred", model="gat", node_embedding="gcn").validate()
    with pytest.raises(ValueError, match=r"'node_embedding' must be one of \['none', 'learn', 'gcn'\] or an existing "
                                         r".pt / .npy file \(got 'nodes.pt': no such file\)"):
        TrainConfig(task="linkpred", model="seal", node_embedding="nodes.pt").validate()
    with pytest.raises(TypeError, match=r"'node_embedding' must be one of \['none', 'learn', 'gcn'\] or a file path "
                                        r"\(got int 3\)"):
        TrainConfig(task="linkpred", model="seal", node_embedding=3).validate()


def test_mebns_seal_teacher_shares_the_frozen_node_embedding():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tr = Trainer(cfg(model="seal", sampler="mebns", node_embedding="gcn", use_features=False, num_layers=2,
                         sort_k=10, dropout=0.1, epochs=1), data=graph(), progress=False, log=None)
        res = tr.run()
    assert torch.equal(tr.task.teacher.x, tr.task.model.x) and torch.equal(tr.task.model.x, tr.task.node_embedding)
    assert res["dataset"]["mebns"]["teacher"]["epochs"] == 2 and 0.0 <= res["test"]["auc"] <= 1.0


def test_mebns_joint_never_picks_an_inadmissible_candidate():
    """With teacher_weight 0 an invalid candidate's key would be 0 * -inf: it must still rank last, come back as -1
    with valid False, and leave no NaN in the teacher scores."""
    import hardneg
    from hardneg.samplers import EmbeddingScorer

    N = 6
    full = torch.tensor([[0, j] for j in range(N)])  # node 0 is linked to every node, itself included
    known = hardneg.KnownSet.from_edges(torch.cat([full, torch.tensor([[1, 2], [3, 4]])]), N, directed=False)
    z = torch.randn(N, 4, generator=torch.Generator().manual_seed(1))
    for w in (0.0, 0.25):
        s = MeBNSSampler(num_negatives=2, known=known, num_candidates=4, teacher=EmbeddingScorer(z),
                         teacher_weight=w)
        P = torch.tensor([[0, 1], [1, 2], [3, 4]])
        neg = s.sample(P, scorer=EmbeddingScorer(z.flip(0)), generator=torch.Generator().manual_seed(0))
        assert not bool(neg.valid[0].any()) and neg.ids[0].tolist() == [-1, -1]
        assert bool(neg.valid[1:].all()) and bool((neg.ids[1:] >= 0).all())
        pairs = torch.stack([P[1:, 0:1].expand(-1, 2), neg.ids[1:]], -1).reshape(-1, 2)
        assert not bool(known.contains(pairs).any())
        assert bool(torch.isfinite(s.teacher_scores(neg)).all())
