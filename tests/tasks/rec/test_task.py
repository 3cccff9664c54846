"""Rec task: fused full-ranking and sampled evaluation against dense references, the three models through the
engine with every rec sampler, HardGNN's InfoNCE term, and each documented bad input."""
import math
import warnings

import pytest
import torch

from hardneg.tasks.rec.data import RecDataset
from hardneg.tasks.rec.evaluation import full_ranking
from hardneg.tasks.rec.models import SASRec, length_groups, tail_window
from hardneg.training import TrainConfig, Trainer, train


def synthetic(num_users, num_items, m=None, seed=0, times=True):
    """Users with clustered tastes (so models learn something), 3..12 interactions each, time-ordered."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    for u in range(num_users):
        n = int(torch.randint(3, 13, (1,), generator=g))
        base = (u * 7) % num_items
        items = (base + torch.randint(0, max(3, num_items // 4), (n,), generator=g)) % num_items
        rows += [(u, int(i)) for i in items]
    pairs = torch.tensor(rows)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # repeated pairs are expected here
        return RecDataset.from_interactions(pairs[:, 0], pairs[:, 1], torch.arange(len(rows)) if times else None,
                                            num_users=num_users, num_items=num_items)


def lightgcn_dir(path, num_users, num_items):
    """A LightGCN folder: user u trained on items u..u+4, tested on u+5 (mod num_items)."""
    path.mkdir(exist_ok=True)
    (path / "train.txt").write_text("".join(f"{u} " + " ".join(str((u + j) % num_items) for j in range(5)) + "\n"
                                            for u in range(num_users)))
    (path / "test.txt").write_text("".join(f"{u} {(u + 5) % num_items}\n" for u in range(num_users)))
    return path


def small(**kw):
    base = dict(task="rec", dataset="synthetic", dim=16, epochs=2, eval_every=1, batch_size=64, num_negatives=2,
                num_heads=2, maxlen=8, num_intervals=3, num_blocks=1, protocol="leave_one_out",
                sampled_negatives=[5, 10], eval_batch_size=7)
    base.update(kw)
    return TrainConfig(**base)


# ------------------------------------------------------------------------------------------------ evaluation
def dense_metrics(q, items, truth, exclude, ks):
    """Reference: a users x items score matrix, history masked, sorted (ties to the smaller id)."""
    s = q @ items.T
    out = {}
    B, I = s.shape
    for r in range(B):
        s[r, exclude[1][exclude[0][r]:exclude[0][r + 1]]] = float("-inf")
    per = []
    for r in range(B):
        t = set(truth[1][truth[0][r]:truth[0][r + 1]].tolist())
        if not t:
            continue
        order = sorted(range(I), key=lambda j: (-float(s[r, j]), j))
        order = [j for j in order if s[r, j] != float("-inf")]
        per.append((t, order))
    for k in ks:
        rec = ndcg = prec = hr = 0.0
        for t, order in per:
            top = order[:k]
            hits = [1.0 if j in t else 0.0 for j in top]
            rec += sum(hits) / len(t)
            prec += sum(hits) / k
            hr += float(sum(hits) > 0)
            idcg = sum(1 / math.log2(i + 2) for i in range(min(len(t), k)))
            ndcg += sum(h / math.log2(i + 2) for i, h in enumerate(hits)) / idcg
        n = len(per)
        out.update({f"recall@{k}": rec / n, f"precision@{k}": prec / n, f"hr@{k}": hr / n, f"ndcg@{k}": ndcg / n})
    return out


def random_csr(B, I, lo, hi, g):
    counts = torch.randint(lo, hi + 1, (B,), generator=g)
    ptr = torch.zeros(B + 1, dtype=torch.int64)
    ptr[1:] = counts.cumsum(0)
    idx = torch.cat([torch.randperm(I, generator=g)[:c] for c in counts.tolist()] or [torch.zeros(0, dtype=torch.int64)])
    return ptr, idx


@pytest.mark.parametrize("B,I,bs", [(13, 40, 5), (7, 25, 100), (1, 12, 1)])
def test_full_ranking_matches_a_dense_reference(B, I, bs):
    g = torch.Generator().manual_seed(B * I)
    q, items = torch.randn(B, 6, generator=g), torch.randn(I, 6, generator=g)
    exclude = random_csr(B, I, 0, 6, g)
    truth_ptr, truth = [0], []
    for r in range(B):  # held-out items: never in the history
        ex = set(exclude[1][exclude[0][r]:exclude[0][r + 1]].tolist())
        t = [j for j in torch.randperm(I, generator=g).tolist() if j not in ex][: 1 + r % 4]
        truth += t
        truth_ptr.append(len(truth))
    truth = (torch.tensor(truth_ptr), torch.tensor(truth))
    got = full_ranking(q, items, truth, exclude, ks=(3, 10), batch_size=bs)
    want = dense_metrics(q.clone(), items, truth, exclude, (3, 10))
    for k, v in want.items():
        assert got[k] == pytest.approx(v, abs=1e-9), k
    assert got["users"] == B and got["skipped_users"] == 0


def test_k_larger_than_the_admissible_items_pads_and_users_without_held_out_items_are_skipped():
    q, items = torch.randn(3, 4), torch.randn(5, 4)
    exclude = (torch.tensor([0, 3, 3, 4]), torch.tensor([0, 1, 2, 4]))  # user 0 keeps 2 admissible items of 5
    truth = (torch.tensor([0, 1, 1, 2]), torch.tensor([3, 0]))          # user 1 has nothing held out
    m = full_ranking(q, items, truth, exclude, ks=(20,))
    assert m["users"] == 2 and m["skipped_users"] == 1
    assert m["recall@20"] == 1.0 and m["hr@20"] == 1.0 and m["precision@20"] == pytest.approx(1 / 20)


def test_sampled_ranking_counts_ties_against_the_held_out_item():
    q = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    items = torch.tensor([[3.0, 0.0], [1.0, 0.0], [2.0, 0.0], [1.0, 5.0]])
    truth = (torch.tensor([0, 1, 2]), torch.tensor([1, 0]))
    cands = {3: torch.tensor([[1, 0, 2, 3], [0, 1, 2, 3]])}
    m = full_ranking(q, items, truth, None, ks=(1, 2), candidates=cands)
    # user 0: item 1 (score 1) vs 3, 2, 1 -> rank 1 + 3 = 4; user 1: item 0 (score 3) ranks first
    assert m["hr@1_1+3"] == 0.5 and m["hr@2_1+3"] == 0.5
    assert m["ndcg@1_1+3"] == pytest.approx(0.5)


def test_full_ranking_errors():
    q, items = torch.randn(2, 4), torch.randn(5, 4)
    truth = (torch.tensor([0, 1, 2]), torch.tensor([1, 2]))
    with pytest.raises(ValueError, match=r"'truth' ids must be in \[0, 5\) \(got min 1, max 7\)"):
        full_ranking(q, items, (truth[0], torch.tensor([1, 7])))
    with pytest.raises(ValueError, match=r"'exclude' indptr must have 3 entries"):
        full_ranking(q, items, truth, (torch.tensor([0, 1]), torch.tensor([0])))
    with pytest.raises(ValueError, match=r"'query' must have one row per evaluated user \(2\)"):
        full_ranking(torch.randn(3, 4), items, truth)
    with pytest.raises(ValueError, match=r"'candidates\[4\]' must be \[B, 1 \+ 4\]"):
        full_ranking(q, items, truth, candidates={4: torch.zeros(2, 3, dtype=torch.int64)})
    with pytest.raises(ValueError, match=r"'candidates\[2\]' ids must be in \[0, 5\)"):
        full_ranking(q, items, truth, candidates={2: torch.full((2, 3), 9)})
    with pytest.raises(ValueError, match="'ks' must be a non-empty sequence of positive ints"):
        full_ranking(q, items, truth, ks=(0,))
    with pytest.raises(TypeError, match="'truth' must be a CSR pair"):
        full_ranking(q, items, [1, 2, 3])
    with pytest.raises(TypeError, match="'items' must be"):
        full_ranking(q, items.long(), truth)


# ------------------------------------------------------------------------------------------------ models
def test_sequences_longer_than_maxlen_keep_their_last_items():
    indptr = torch.tensor([0, 6, 8])
    items = torch.tensor([5, 4, 3, 2, 1, 0, 7, 6])
    seq, n = tail_window(indptr, items, torch.tensor([0, 1]), 4)
    assert seq.tolist() == [[3, 2, 1, 0], [-1, -1, 7, 6]] and n.tolist() == [4, 2]
    torch.manual_seed(0)
    m = SASRec(8, (indptr, items), dim=8, num_blocks=1, num_heads=1, maxlen=4).eval()
    short = (torch.tensor([0, 4, 4]), torch.tensor([3, 2, 1, 0]))
    with torch.no_grad():
        a = m.query((indptr, items), torch.tensor([0]))
        b = m.query(short, torch.tensor([0]))
    assert torch.allclose(a, b)


def test_length_groups_partition_the_batch_and_cut_the_padding():
    lengths = torch.tensor([3, 1, 60, 2, 3, 58, 0, 2, 1])
    groups = length_groups(lengths, 50)
    rows = torch.cat(groups)
    assert sorted(rows.tolist()) == list(range(9))
    assert [sorted(lengths[g].tolist()) for g in groups] == [[0, 1, 1, 2, 2, 3, 3], [58, 60]]
    assert [g.tolist() for g in length_groups(torch.full((5,), 7), 50)] == [[0, 1, 2, 3, 4]]
    assert len(length_groups(lengths, 50, overhead=1e12)) == 1 and length_groups(lengths[:0], 50) == []


def test_sasrec_encodes_groups_of_similar_length_as_one_padded_batch():
    """Grouped encoding (each group padded to its own longest sequence) equals the padded batch at every valid
    position and at the last one, in values and in gradients (eval mode: the same computation, no dropout)."""
    torch.manual_seed(0)
    lengths = torch.cat([torch.randint(0, 10, (50,)), torch.randint(100, 260, (14,))])
    lengths[:2] = torch.tensor([0, 1])
    indptr = torch.zeros(65, dtype=torch.int64)
    indptr[1:] = lengths.cumsum(0)
    items = torch.randint(0, 300, (int(indptr[-1]),))
    m = SASRec(300, (indptr, items), dim=16, num_blocks=2, maxlen=200).eval()
    seq, _ = tail_window(indptr, items, torch.arange(64), 200)
    ok = seq >= 0
    assert len(length_groups(ok.sum(1), 16)) > 1
    w = torch.randn(16)
    out, grads = [], []
    for grouped in (True, False):
        m.group_lengths = grouped
        m.zero_grad()
        h = m.encode(seq)
        ((h[ok] @ w).square().sum() + (h[:, -1] @ w).sum()).backward()
        out.append(h)
        grads.append([p.grad.clone() for p in m.parameters()])
    assert torch.allclose(out[0][ok], out[1][ok], atol=1e-5) and torch.allclose(out[0][:, -1], out[1][:, -1],
                                                                               atol=1e-5)
    for a, b in zip(*grads):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-4 * b.abs().max().item())


def test_selfgnn_sequence_encoder_by_length_groups_is_the_padded_batch():
    """The SelfGNN-style model's sequence encoder (non-causal attention, summed over positions) gives the same a_u
    on length groups as on the padded batch (eval mode), rows in the batch's order."""
    torch.manual_seed(0)
    T = Trainer(small(model="selfgnn", sampler="uniform", loss="margin", maxlen=200), data=synthetic(30, 40),
                progress=False, log=None)
    m = T.model.eval()
    lengths = torch.cat([torch.randint(1, 6, (40,)), torch.randint(120, 201, (6,))])[torch.randperm(46)]
    col = torch.arange(200)[None, :]
    seq = torch.where(col >= 200 - lengths[:, None], torch.randint(0, 40, (46, 200)), -1)
    assert len(length_groups(lengths, m.dim)) > 1
    items = torch.randn(40, m.dim)
    with torch.no_grad():
        a = m.sequence(seq, items)
        m.group_lengths = False
        b = m.sequence(seq, items)
    assert a.shape == (46, m.dim) and torch.allclose(a, b, atol=1e-4)


def _trains(ds, **kw):
    r = train(small(epochs=1, eval_every=0, **kw), data=ds, progress=False, log=None)
    t = r["test"]
    assert 0.0 <= t["recall@20"] <= 1.0 and 0.0 <= t["ndcg@10_1+10"] <= 1.0 and t["users"] > 0
    assert math.isfinite(r["history"][-1]["loss"])
    assert {"ndcg@20", "precision@10", "hr@20_1+5", "hr@10"} <= set(t)
    return r


@pytest.mark.parametrize("shape", [(30, 45), (45, 20)], ids=["fewer_users", "more_users"])
def test_lightgcn_trains_with_every_rec_sampler_on_both_bipartite_shapes(shape):
    ds = synthetic(*shape)
    for sampler in ("uniform", "popularity", "dns", "hardgnn"):
        _trains(ds, model="lightgcn", loss="bpr", sampler=sampler)


@pytest.mark.parametrize("model,loss", [("sasrec", "bce"), ("selfgnn", "margin")])
def test_sequence_models_train_with_hard_samplers(model, loss):
    ds = synthetic(45, 20)
    for sampler in ("dns", "hardgnn"):
        _trains(ds, model=model, loss=loss, sampler=sampler)
    # HardGNN's released setting: the hard columns mined in one random candidate subset per batch
    _trains(ds, model=model, loss=loss, sampler="hardgnn", sampler_options={"k": 1, "candidates": 7})


def test_result_table_shows_the_sampled_protocols_the_run_evaluated():
    from hardneg.tasks.rec.task import RecTask
    from hardneg.training.results import format_table

    res = Trainer(small(model="lightgcn", loss="bpr", epochs=1), data=synthetic(30, 25), progress=False,
                  log=None).run()
    cols = RecTask.result_columns(res)
    heads = [h for h, _, _ in cols]
    assert "HR@10 1+5" in heads and "N@10 1+10" in heads and "HR@10 1+100" not in heads
    assert heads[:4] == ["R@20", "N@20", "R@10", "N@10"] and heads[-1] == "neg. time"
    table = format_table([("uniform", [res])], cols)
    assert f"{res['test']['hr@10_1+5']:.4f}" in table.splitlines()[1]
    assert RecTask.result_columns({"test": {"recall@20": 0.1}}) == RecTask.table_columns


def test_same_seed_same_model_and_lightgcn_learns_on_the_given_split(tmp_path):
    lightgcn_dir(tmp_path, 12, 20)
    cfg = small(dataset=str(tmp_path), protocol=None, model="lightgcn", epochs=10, eval_every=5, lr=0.05,
                batch_size=32, num_negatives=1)
    a = Trainer(cfg, progress=False, log=None)
    ra = a.run()
    rb = train(cfg, progress=False, log=None)
    assert ra["test"] == rb["test"] and ra["dataset"]["split"]["protocol"] == "given"
    assert "valid = test" in ra["protocol"] and ra["test"]["recall@20"] > 0.5


def test_user_row_sampling_draws_a_uniform_user_then_a_uniform_item_of_theirs(tmp_path):
    """row_sampling="users" (LightGCN's UniformSample_original): an epoch is as many rows as the training set,
    each a uniform user (among those with training items) and a uniform training item of that user; chi-square
    against that exact distribution, fixed seed. The default visits every row once."""
    (tmp_path / "train.txt").write_text("0 0 1 2 3 4 5 6 7\n1 2\n2 0 3\n3\n4 1 5 6\n")
    (tmp_path / "test.txt").write_text("0 8\n1 0\n2 1\n3 2\n4 2\n")
    cfg = small(dataset=str(tmp_path), protocol=None, model="lightgcn", batch_size=5, row_sampling="users")
    tr = Trainer(cfg, progress=False, log=None)
    train_rows = {tuple(r) for r in tr.task.train_rows.tolist()}
    n = len(train_rows)
    g = torch.Generator().manual_seed(0)
    draws = []
    for _ in range(3000):
        batches = list(tr.task.batches(g))
        assert [b.shape[0] for b in batches] == [5, 5, 4]
        draws += [tuple(r) for b in batches for r in b.tolist()]
    assert set(draws) <= train_rows
    deg = {0: 8, 1: 1, 2: 2, 4: 3}  # user 3 has no training item: never drawn
    expected = {r: len(draws) / len(deg) / deg[r[0]] for r in train_rows}
    counts = {r: 0 for r in train_rows}
    for r in draws:
        counts[r] += 1
    chi2 = sum((counts[r] - e) ** 2 / e for r, e in expected.items())
    assert chi2 < 36.2  # chi-square, 13 degrees of freedom, p = 0.001
    a = torch.cat(list(tr.task.batches(torch.Generator().manual_seed(3))))
    assert torch.equal(a, torch.cat(list(tr.task.batches(torch.Generator().manual_seed(3)))))
    every = Trainer(small(dataset=str(tmp_path), protocol=None, model="lightgcn", batch_size=5), progress=False,
                    log=None)
    once = torch.cat(list(every.task.batches(torch.Generator().manual_seed(0)))).tolist()
    assert sorted(map(tuple, once)) == sorted(train_rows) and len(once) == n
    r = train(small(dataset=str(tmp_path), protocol=None, model="lightgcn", row_sampling="users", epochs=1),
              progress=False, log=None)
    assert r["config"]["row_sampling"] == "users" and r["test"]["users"] == 4


def test_hardgnn_adds_infonce_and_mines_with_the_short_term_vector():
    ds = synthetic(30, 45)
    tr = Trainer(small(model="sasrec", loss="bce", sampler="hardgnn", num_negatives=3,
                       sampler_options={"k": 2}), data=ds, progress=False, log=None)
    assert tr.task.lam == 0.1 and tr.task.short_mining
    batch = next(iter(tr.task.batches(torch.Generator().manual_seed(0))))
    with_nce = float(tr.task.step(batch, torch.Generator().manual_seed(1)))
    tr.task.lam = 0.0
    without = float(tr.task.step(batch, torch.Generator().manual_seed(1)))
    assert with_nce > without  # InfoNCE is positive
    off = Trainer(small(model="sasrec", loss="bce", sampler="hardgnn", infonce_weight=0.0), data=ds, progress=False,
                  log=None)
    assert off.task.lam == 0.0 and Trainer(small(sampler="uniform", infonce_weight=0.2), data=ds, progress=False,
                                           log=None).task.lam == 0.2


def test_users_without_training_items_are_skipped_and_counted(tmp_path):
    (tmp_path / "train.txt").write_text("0 0 1 2\n1 2 3\n2 0\n3\n")
    (tmp_path / "test.txt").write_text("0 3\n1 0 4\n2 1\n3 2\n")
    r = train(small(dataset=str(tmp_path), protocol=None, model="lightgcn", epochs=1), progress=False, log=None)
    assert r["dataset"]["split"]["skipped_users"] == 1 and r["test"]["users"] == 3
    assert "1 users without training items skipped" in r["protocol"]


def test_duplicate_interactions_keep_the_last(tmp_path):
    p = tmp_path / "ui.txt"
    p.write_text("1 5\n1 3\n1 5\n1 4\n1 1\n2 2\n2 5\n2 1\n")
    with pytest.warns(UserWarning, match=r"removed 1 repeated \(user, item\) interactions, keeping the last"):
        r = train(small(dataset=str(p), model="sasrec", loss="bce", epochs=1), progress=False, log=None)
    assert r["dataset"]["duplicates_removed"] == 1


def test_bad_config_values():
    with pytest.raises(ValueError, match="unknown model 'bert4rec'"):
        small(model="bert4rec").validate()
    with pytest.raises(ValueError, match="'protocol' must be None, 'given' or 'leave_one_out'"):
        small(protocol="random").validate()
    with pytest.raises(ValueError, match=r"'dim' \(16\) must be divisible by 'num_heads' \(3\)"):
        small(num_heads=3).validate()
    with pytest.raises(TypeError, match="'sampled_negatives' must be a list"):
        small(sampled_negatives=99).validate()
    with pytest.raises(ValueError, match="'infonce_temperature' must be > 0"):
        small(infonce_temperature=0.0).validate()
    with pytest.raises(ValueError, match=r"'row_sampling' must be one of \['interactions', 'users'\] \(got 'items'\)"):
        small(row_sampling="items").validate()
    with pytest.raises(TypeError, match="'row_sampling' must be a str"):
        small(row_sampling=1).validate()
    with pytest.raises(ValueError, match="'row_sampling' 'users' is for pair models"):
        Trainer(small(model="sasrec", loss="bce", row_sampling="users"), data=synthetic(30, 25), progress=False,
                log=None)


def test_item_ids_out_of_range_are_errors():
    with pytest.raises(ValueError, match=r"'item' ids must be in \[0, 3\) \(got min 0, max 5\)"):
        RecDataset.from_interactions(torch.tensor([0, 1]), torch.tensor([0, 5]), num_items=3)
    ds = synthetic(30, 45)
    tr = Trainer(small(), data=ds, progress=False, log=None)
    with pytest.raises(ValueError, match=r"'positives\[:, 1\]' destination ids must be in \[0, 45\)"):
        tr.task.sampler.sample(torch.tensor([[0, 45]]), generator=torch.Generator())


def test_cli_train_and_grid(tmp_path, capsys):
    from hardneg import cli

    d = lightgcn_dir(tmp_path / "data", 12, 20)
    rc = cli.main(["train", "--task", "rec", "--dataset", str(d), "--model", "lightgcn", "--sampler", "uniform",
                   "--epochs", "1", "--dim", "8", "--no-progress", "--output", str(tmp_path / "run")])
    assert rc == 0 and "R@20" in capsys.readouterr().out
    recipe = tmp_path / "grid.yaml"
    recipe.write_text(f"# a tiny grid\ntask: rec\ndataset: {d}\nmodel: lightgcn\ndim: 8\nepochs: 1\neval_every: 0\n"
                      "sampler: hardgnn\nnum_negatives: 2\ngrid:\n  sampler_options.k: [1, 2]\n"
                      "baseline: {sampler: uniform, infonce_weight: 0.0}\n")
    rc = cli.main(["compare", "--config", str(recipe), "--no-progress", "--output", str(tmp_path / "grid")])
    out = capsys.readouterr().out
    assert rc == 0 and "baseline" in out and "k=1" in out and "k=2" in out and "cells worse than the baseline" in out
