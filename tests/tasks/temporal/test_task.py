"""The temporal task on the engine: TGN / TGAT with every event sampler, both split settings, the four
evaluation views, recipes, the CLI and the bad inputs of issue 15."""
import copy
import json
import math

import pytest
import torch

pytest.importorskip("torch_geometric")

from hardneg import cli  # noqa: E402
from hardneg.tasks.temporal import data as T  # noqa: E402
from hardneg.tasks.temporal.task import BatchScorer  # noqa: E402
from hardneg.samplers.base import stable_topk  # noqa: E402
from hardneg.training import TrainConfig, Trainer  # noqa: E402

TINY = dict(task="temporal", dim=8, time_dim=8, epochs=1, batch_size=100, eval_batch_size=100, mrr_negatives=6)


def synthetic(M=1200, users=40, items=12, seed=0, bipartite=True):
    """Users with a favourite item (a learnable pattern), sorted times."""
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(0, users, (M,), generator=g)
    fav = torch.randint(0, items, (users,), generator=g)
    rnd = torch.randint(0, items, (M,), generator=g)
    dst = torch.where(torch.rand(M, generator=g) < 0.7, fav[src], rnd) + (users if bipartite else 0)
    t = torch.sort(torch.randint(0, 50_000, (M,), generator=g)).values
    n = users + items if bipartite else max(users, items)
    return T.TemporalDataset.from_tensors(src, dst, t, num_nodes=n, bipartite=bipartite, name="toy")


DS = synthetic()


def run(data=DS, **over):
    cfg = TrainConfig.from_dict(dict(dict(TINY, dataset="toy"), **over))
    return Trainer(cfg, data=data, progress=False, log=None).run()


@pytest.mark.parametrize("model, sampler", [("tgn", "random"), ("tgn", "ens"), ("tgn", "ens_score"),
                                            ("tgn", "historical"), ("tgn", "inductive"), ("tgat", "random"),
                                            ("tgat", "ens")])
def test_train_and_evaluate_every_view(model, sampler):
    r = run(model=model, sampler=sampler, num_neighbors=4 if model == "tgat" else 0)
    for split in ("valid", "test"):
        v = r[split]
        for kind in ("random", "historical", "inductive"):
            assert set(v[kind]) >= {"ap", "auc", "ap_global", "auc_global"}
            assert 0 <= v[kind]["ap"] <= 1 and 0 <= v[kind]["auc_global"] <= 1
        assert v["ap"] == v["random"]["ap"] and v["ap_historical"] == v["historical"]["ap"]
        assert v["count"] == v["random"]["count"] > 0
    t = r["test"]
    assert 0 < t["mrr"] <= 1 and 0 <= t["recall@10"] <= t["recall@20"] <= 1 and 0 < t["mrr_100"] <= 1
    assert "mrr" not in r["valid"]  # ranking views on test only by default
    assert "historical" in r["protocol"] and "ties = mean of optimistic and pessimistic" in r["protocol"]
    assert r["plot_metrics"] == ["ap_historical", "ap_inductive", "mrr"]


def test_per_event_neighbor_cutoff_trains_and_differs_from_the_batch_cutoff():
    a = run(rank_eval="none", neighbor_cutoff="event", sampler="ens")
    again = run(rank_eval="none", neighbor_cutoff="event", sampler="ens")  # deterministic
    assert a["test"] == again["test"] and a["history"][0]["loss"] == again["history"][0]["loss"]
    b = run(rank_eval="none", sampler="ens")
    assert a["config"]["neighbor_cutoff"] == "event" and a["test"]["ap"] != b["test"]["ap"]


@pytest.mark.parametrize("n, f", [(1, 0.25), (3, 0.5), (2, 1.0)])
def test_ens_step_mines_with_the_sources_it_needs_then_embeds_everything_in_one_pass(n, f):
    """The queries: only the sources of events with a hard column, embedded without dropout or gradients; then
    one differentiable pass over sources, destinations and every negative. The negatives are those that one
    ``sample`` call draws with the same queries."""
    tr = Trainer(TrainConfig.from_dict(dict(TINY, dataset="toy", sampler="ens", num_negatives=n, dropout=0.0,
                                            sampler_options={"pool_size": 4, "hard_fraction": f})),
                 data=DS, progress=False, log=None)
    task = tr.task
    task.model.train()
    i = task.split.train[:100]
    src, dst, t = task.src[i], task.dst[i], task.t[i]
    P, t0, g = torch.stack([src, dst], 1), t[0].item(), task.train_graph
    before = copy.deepcopy(task.sampler)
    draft = copy.deepcopy(task.sampler).draft(P, generator=torch.Generator().manual_seed(3))
    rows = torch.nonzero(draft.counts).flatten()
    assert 0 < rows.numel() < 100 or f * n >= 1  # with f·n >= 1 every event has a hard column
    calls, embed = [], task.embed
    task.embed = lambda nodes, *a, **k: calls.append((nodes.numel(), task.model.training,
                                                      torch.is_grad_enabled())) or embed(nodes, *a, **k)
    z, neg, n_out, win = task._ens_embed(P, t, g, t0, torch.Generator().manual_seed(3))
    assert win is None  # no pair_history: no window
    task.embed = embed
    assert n_out == n and calls == [(rows.numel(), False, False), (2 * 100 + 100 * n, True, True)]
    assert task.model.training and z.requires_grad and z.shape[0] == 2 * 100 + 100 * n
    task.model.eval()
    with torch.no_grad():
        q = embed(src, t, g, t0, None)
    again = before.sample(P, scorer=BatchScorer(task, q, t0), generator=torch.Generator().manual_seed(3), times=t)
    assert torch.equal(again.ids, neg.ids) and torch.equal(again.valid, neg.valid)
    ref = embed(torch.cat([src, dst, neg.ids.clamp_min(task.data.dst_min).flatten()]), torch.cat(
        [t, t, t.repeat_interleave(n)]), g, t0, None)
    assert torch.allclose(z, ref, atol=1e-5)  # dropout 0: training and evaluation mode agree


def test_ens_refresh_touched_writes_the_steps_own_embeddings_into_the_table():
    """With ``refresh_touched`` each step writes its own embeddings of the batch's nodes (sources, destinations,
    negatives) into ENS's cached table, between the full refreshes; every other row stays as the refresh made it."""
    tr = Trainer(TrainConfig.from_dict(dict(TINY, dataset="toy", sampler="ens", num_negatives=2, dropout=0.0,
                                            sampler_options={"pool_size": 4, "hard_fraction": 0.5,
                                                             "refresh_touched": True})),
                 data=DS, progress=False, log=None)
    task, lo = tr.task, DS.dst_min
    task.model.train()
    i = task.split.train[:3]  # 3 events touch at most 6 of the 12 destinations
    src, dst, t = task.src[i], task.dst[i], task.t[i]
    P, t0, g = torch.stack([src, dst], 1), t[0].item(), task.train_graph
    z, neg, n, _ = task._ens_embed(P, t, g, t0, torch.Generator().manual_seed(3))
    C = task.sampler.candidates(None, z.device)  # cached: no refresh is due
    with torch.no_grad():
        full = task.destination_table(g, t0)
    nodes = torch.cat([src, dst, neg.ids.clamp_min(lo).flatten()]).tolist()
    touched = torch.zeros(C.shape[0], dtype=torch.bool)
    for v in set(nodes) - set(range(lo)):
        touched[v - lo] = True
        assert torch.equal(C[v - lo], z[max(j for j, x in enumerate(nodes) if x == v)].detach())  # its last row
    assert touched.any() and not touched.all()
    assert torch.allclose(C[~touched], full[~touched], atol=1e-6)
    a = run(sampler="ens", rank_eval="none", sampler_options={"pool_size": 3, "refresh_touched": True})
    b = run(sampler="ens", rank_eval="none", sampler_options={"pool_size": 3, "refresh_touched": True})
    c = run(sampler="ens", rank_eval="none", sampler_options={"pool_size": 3})
    assert a["test"] == b["test"] and a["test"]["ap"] != c["test"]["ap"]  # deterministic, and it changes training


def test_ens_table_is_refreshed_at_every_epoch_start():
    """The memory restarts each epoch, so the candidate table does too: never one from the end of the last
    epoch's stream."""
    tr = Trainer(TrainConfig.from_dict(dict(TINY, dataset="toy", sampler="ens", epochs=2, rank_eval="none",
                                            sampler_options={"pool_size": 3, "refresh_every": 4})),
                 data=DS, progress=False, log=None)
    steps = math.ceil(tr.task.split.train.numel() / TINY["batch_size"])
    assert steps % 4  # the epochs' steps do not line up with the refresh period by themselves
    tr.run()
    assert tr.task.sampler.refreshes == 2 * math.ceil(steps / 4)


def test_inductive_setting_reports_new_node_events_apart():
    r = run(inductive=True, rank_eval="all", eval_every=1)
    assert r["dataset"]["split"]["inductive"] and r["dataset"]["split"]["new_test_nodes"] == 5
    for split in ("valid", "test"):
        nn = r[split]["new_node"]
        assert nn["count"] > 0 and nn["count"] < r[split]["count"] and "mrr" in nn
    assert "mrr" in r["history"][0]["valid"]


def test_unipartite_graph_draws_destinations_from_all_nodes():
    ds = synthetic(bipartite=False, users=20, items=20)
    r = run(data=ds, sampler="ens", sampler_options={"pool_size": 3})
    assert r["dataset"]["destination_nodes"] == 20 and math.isfinite(r["test"]["mrr"])


@pytest.mark.parametrize("option", [{"exclude_history": True}, {"exclude_recent": 2}])
def test_ens_exclusions_get_the_training_graph_and_train(option):
    """``exclude_history`` / ``exclude_recent`` reach the sampler with the task's training graph; the run differs
    from plain ENS."""
    opts = {"pool_size": 3, "hard_fraction": 1.0}
    tr = Trainer(TrainConfig.from_dict(dict(TINY, dataset="toy", sampler="ens", rank_eval="none",
                                            sampler_options=dict(opts, **option))),
                 data=DS, progress=False, log=None)
    assert tr.task.sampler.graph is tr.task.train_graph
    assert all(getattr(tr.task.sampler, k) == v for k, v in option.items())
    a = tr.run()
    b = run(sampler="ens", rank_eval="none", sampler_options=opts)
    assert math.isfinite(a["test"]["ap"]) and a["history"][0]["loss"] != b["history"][0]["loss"]


def test_bipartite_negatives_stay_on_the_destination_side():
    cfg = TrainConfig.from_dict(dict(TINY, dataset="toy", sampler="ens", num_negatives=3,
                                     sampler_options={"pool_size": 5, "hard_fraction": 0.5}))
    tr = Trainer(cfg, data=DS, progress=False, log=None)
    task, seen = tr.task, []
    orig = task.sampler.sample
    task.sampler.sample = lambda *a, **k: seen.append(orig(*a, **k)) or seen[-1]
    tr.train_epoch()
    ids = torch.cat([n.ids[n.valid] for n in seen])
    assert ids.numel() and int(ids.min()) >= 40 and int(ids.max()) <= 51


def test_memory_snapshots_make_evaluation_repeatable():
    cfg = TrainConfig.from_dict(dict(TINY, dataset="toy", rank_eval="none"))
    tr = Trainer(cfg, data=DS, progress=False, log=None)
    tr.train_epoch()
    a, b = tr.evaluate("test"), tr.evaluate("test")  # test replays validation on first use
    v1, v2 = tr.evaluate("valid"), tr.evaluate("valid")
    assert a["ap"] == b["ap"] and v1["ap"] == v2["ap"] and tr.evaluate("test")["ap"] == a["ap"]


def test_resume_from_a_checkpoint_continues_identically(tmp_path):
    over = dict(epochs=2, eval_every=1, checkpoint_every=1, rank_eval="none", sampler="ens")
    full = run(checkpoint_dir=str(tmp_path / "a"), **over)
    cfg = TrainConfig.from_dict(dict(TINY, dataset="toy", checkpoint_dir=str(tmp_path / "b"), **dict(over, epochs=1)))
    Trainer(cfg, data=DS, progress=False, log=None).run()
    cfg2 = TrainConfig.from_dict(dict(TINY, dataset="toy", checkpoint_dir=str(tmp_path / "b"), **over))
    resumed = Trainer(cfg2, data=DS, progress=False, log=None).run(resume=True)
    assert resumed["test"]["ap"] == full["test"]["ap"]


# ------------------------------------------------------------------------------------------------ bad input
def test_unsorted_event_times_are_an_error(tmp_path):
    with pytest.raises(ValueError, match="event times must be non-decreasing"):
        T.TemporalDataset.from_tensors(torch.tensor([0, 1]), torch.tensor([2, 3]), torch.tensor([5, 4]))
    p = tmp_path / "x.csv"
    p.write_text("u,i,ts,label\n0,5,10,0\n1,6,9,0\n")
    with pytest.raises(ValueError, match="event times must be non-decreasing"):
        run(data=None, dataset=str(p))


def test_node_ids_out_of_range_are_an_error():
    with pytest.raises(ValueError, match=r"'dst' ids must be in \[0, 3\)"):
        T.TemporalDataset.from_tensors(torch.tensor([0, 1]), torch.tensor([2, 3]), torch.tensor([4, 5]), num_nodes=3)


def test_an_inductive_split_without_new_nodes_is_an_error():
    ds = T.TemporalDataset.from_tensors(torch.tensor([0, 1, 2, 0, 1, 2, 0, 1]), torch.tensor([3, 4, 3, 4, 3, 4, 3, 4]),
                                        torch.arange(8), num_nodes=5)
    with pytest.raises(ValueError, match="leaves no new nodes"):
        run(data=ds, inductive=True)


def test_a_batch_going_back_in_time_is_an_error():
    cfg = TrainConfig.from_dict(dict(TINY, dataset="toy"))
    tr = Trainer(cfg, data=DS, progress=False, log=None)
    task = tr.task
    task.on_epoch_start(1)
    batches = list(task.batches(torch.Generator()))
    task.after_step(batches[1])
    with pytest.raises(ValueError, match="events cannot go back in time"):
        task.after_step(batches[0])


def test_config_errors():
    with pytest.raises(ValueError, match="event samplers"):
        TrainConfig.from_dict(dict(TINY, dataset="toy", sampler="uniform"))
    with pytest.raises(ValueError, match="'model' must be one of \\['tgn', 'tgat'\\]"):
        TrainConfig.from_dict(dict(TINY, dataset="toy", model="jodie"))
    with pytest.raises(ValueError, match="'neighbor_cutoff' must be one of \\['batch', 'event'\\]"):
        TrainConfig.from_dict(dict(TINY, dataset="toy", neighbor_cutoff="now"))
    with pytest.raises(ValueError, match="neighbor_strategy='recent'"):
        TrainConfig.from_dict(dict(TINY, dataset="toy", neighbor_strategy="uniform"))
    with pytest.raises(ValueError, match="'num_heads' \\(3\\) must divide"):
        TrainConfig.from_dict(dict(TINY, dataset="toy", num_heads=3))
    with pytest.raises(ValueError, match=r"'pool_size' K \(1\) must be >= num_negatives n \(2\)"):
        run(sampler="ens", num_negatives=2, sampler_options={"pool_size": 1})


# ------------------------------------------------------------------------------------------------ CLI, recipes
def test_recipes_are_valid_and_named_by_dataset_and_model():
    from hardneg.tasks import recipes

    names = {n for n in recipes() if cli.load_recipe(n).get("task") == "temporal"}
    assert names >= {"wikipedia-tgn", "wikipedia-tgat", "uci-tgn", "uci-tgat"}
    for n in names:
        d = cli.load_recipe(n)
        extras = {k: d.pop(k) for k in cli.RECIPE_KEYS if k in d}
        cfg = TrainConfig.from_dict(d)
        assert cfg.task == "temporal" and cfg.model == n.split("-")[1] and cfg.dataset == n.split("-")[0]
        assert set(extras.get("compare", [])) <= {"random", "historical", "inductive", "ens", "ens_score"}


def test_cli_train_on_a_csv_path(tmp_path, capsys):
    p = tmp_path / "events.csv"
    ds = synthetic(M=600)
    p.write_text("u,i,ts,label\n" + "".join(f"{int(s)},{int(d)},{int(t)},0\n"
                                            for s, d, t in zip(ds.src, ds.dst, ds.t)))
    out = tmp_path / "r.json"
    rc = cli.main(["train", "--task", "temporal", "--dataset", str(p), "--model", "tgn", "--sampler", "ens",
                   "--epochs", "1", "--dim", "8", "--time-dim", "8", "--mrr-negatives", "4", "--output", str(out),
                   "--no-progress"])
    assert rc == 0
    d = json.loads(out.read_text())
    assert d["task"] == "temporal" and d["dataset"]["bipartite"]
    printed = capsys.readouterr().out
    assert "AP hist" in printed and "MRR all" in printed


@pytest.mark.parametrize("cutoff", ["batch", "event"])
def test_pair_history_trains_its_decoder_term_and_ranks_with_it(cutoff):
    """``model_options: {pair_history: w}``: the step scores positives and negatives with the decoder's pair term
    (its weights train), and every evaluation view uses it; deterministic, and different without it."""
    over = dict(neighbor_cutoff=cutoff, sampler="ens", model_options={"pair_history": 5})
    cfg = TrainConfig.from_dict(dict(TINY, dataset="toy", **over))
    tr = Trainer(cfg, data=DS, progress=False, log=None)
    before = tr.task.model.pair.weight.detach().clone()
    r = tr.run()
    assert not torch.equal(tr.task.model.pair.weight.detach(), before)
    again = run(**over)
    assert r["test"] == again["test"]
    # the same trained model with its pair term zeroed: every evaluation view changes, so each one reads the term
    with torch.no_grad():
        tr.task.model.pair.weight.zero_()
    tr.task.model.invalidate("valid_end")
    zeroed = tr.evaluate("test")
    for key in ("ap", "ap_historical", "ap_inductive", "mrr", "mrr_100"):
        assert zeroed[key] != r["test"][key], key
    scored = run(**dict(over, sampler_options={"rank_by": "score"}))  # ENS pooled by the score, pair term included
    assert scored["test"] != r["test"] and 0 < scored["test"]["mrr"] <= 1


def _pair_scorer():
    """A pair_history TGN on the toy stream in evaluation mode, and one batch's (task, source embeddings, destination
    table, BatchScorer)."""
    cfg = TrainConfig.from_dict(dict(TINY, dataset="toy", sampler="ens", model_options={"pair_history": 5},
                                     sampler_options={"rank_by": "score"}))
    task = Trainer(cfg, data=DS, progress=False, log=None).task
    task.model.eval()
    i = task.split.train[300:340]
    src, dst, t = task.src[i], task.dst[i], task.t[i]
    P, t0 = torch.stack([src, dst], 1), t[0].item()
    with torch.no_grad():
        q = task.embed(src, t, task.train_graph, t0, None)
        table = task.destination_table(task.train_graph, t0)
    return task, q, table, BatchScorer(task, q, t0, P, t)


def test_pair_history_score_table_adds_each_events_pair_term():
    """ENS's ``rank_by: score`` with a ``pair_history`` model: the batch scorer's table is the decoder's logit
    with the pair term of each query's event (its source's recent partners), the dense scores exactly."""
    task, q, table, sc = _pair_scorer()
    m, src, t, t0 = task.model, sc.P[:, 0], sc.t, sc.t0
    with torch.no_grad():
        assert sc.event_scores and not BatchScorer(task, q, t0).event_scores
        events = torch.tensor([3, 0, 17, 39])
        S = sc.score_table(q[events], table, events=events)
        win = task.pair_window(src[events], t[events], task.train_graph, t0)
        cand = task.data.dst_nodes[None].repeat(4, 1)
        dense = m.decoder.combine(m.decoder.source(q[events])[:, None, :],
                                  m.decoder.destination(table)[None] + m.pair_term(win, cand))
        assert torch.allclose(S, dense, atol=1e-5)
        assert not torch.allclose(S, sc.score_table(q[events], table), atol=1e-3)  # the term matters here


def test_pair_history_topk_table_is_the_stable_top_k_of_score_table():
    """ENS's fused pool (``BatchScorer.topk_table``: :func:`hardneg.ops.mlp_topk_mine` with each event's pair
    term as offsets) is the top K of ``score_table``'s scores, excluded ids never, ties in the key order."""
    task, q, table, sc = _pair_scorer()
    src, t, t0 = sc.P[:, 0], sc.t, sc.t0
    events = torch.tensor([3, 0, 17, 39, 5])
    N, K = table.shape[0], 7
    S = sc.score_table(q[events], table, events=events)
    win = task.pair_window(src[events], t[events], task.train_graph, t0)
    assert bool(task.model.pair_entries(win, task.data.dst_min, task.data.dst_max)[0].numel())  # terms present
    tie = torch.randperm(N, generator=torch.Generator().manual_seed(0))
    ex = (torch.tensor([0, 1, 1, 3, 3, 4]), torch.tensor([int(S[0].argmax()), 0, 1, N - 1]))
    for excl in (None, ex):
        ids = sc.topk_table(q[events], table, K, exclude=excl, tie_break=tie, events=events)
        Sm = S.clone()
        if excl is not None:
            rows = torch.repeat_interleave(torch.arange(5), excl[0].diff())
            Sm[rows, excl[1]] = float("-inf")
        order = torch.argsort(tie)
        ref = order[stable_topk(Sm[:, order], K)[1]]
        assert torch.allclose(S.gather(1, ids), S.gather(1, ref), atol=1e-5)
        assert torch.equal(ids, ref)
        if excl is not None:
            assert not (ids[0] == excl[1][0]).any()
    # the sampler's own cached table: scored once per distinct row (candidate_index), the same pools
    s = task.sampler
    tab = table.clone()
    tab[1:5] = tab[0]  # identical rows, as nodes without history have
    s._cache, s._cache_rows = tab.clone(), None
    rows, index = s.table_rows()
    assert rows.shape[0] == N - 4
    ids = sc.topk_table(q[events], s._cache, K, exclude=ex, tie_break=tie, events=events)
    assert torch.equal(ids, sc.topk_table(q[events], tab, K, exclude=ex, tie_break=tie, events=events))


def test_pair_offsets_are_pair_entries_once_each_sorted():
    """``pair_offsets``: every (source, partner) of ``pair_entries`` once, ids sorted within a source, the same
    term; the CSR ``mlp_topk_mine`` takes."""
    cfg = TrainConfig.from_dict(dict(TINY, dataset="toy", sampler="random", model_options={"pair_history": 6}))
    task = Trainer(cfg, data=DS, progress=False, log=None).task
    i = task.split.train[200:260]
    win = task.pair_window(task.src[i], task.t[i], task.train_graph, task.t[i][0].item())
    lo, hi = task.data.dst_min, task.data.dst_max
    with torch.no_grad():
        row, col, term = task.model.pair_entries(win, lo, hi)
        ptr, ids, vals = task.model.pair_offsets(win, lo, hi)
    assert ptr.shape == (61,) and int(ptr[-1]) == ids.numel() == vals.shape[0]
    orow = torch.repeat_interleave(torch.arange(60), ptr.diff())
    key = orow * (hi + 1) + ids
    assert bool((key[1:] > key[:-1]).all())  # sorted, unique
    assert set(zip(orow.tolist(), ids.tolist())) == set(zip(row.tolist(), col.tolist()))
    assert row.numel() > ids.numel()  # the toy stream repeats partners: entries list them twice
    at = {(r, c): v for r, c, v in zip(orow.tolist(), ids.tolist(), vals)}
    for r, c, v in zip(row.tolist(), col.tolist(), term):
        assert torch.allclose(at[(r, c)], v, atol=1e-6)
