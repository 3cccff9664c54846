"""Worker functions for the 2-process gloo tests (spawned processes import them from here by name)."""
from __future__ import annotations

import datetime
import os
import tempfile
import traceback
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import hardneg
from hardneg.distributed import ShardedCandidates
from hardneg.training import Task, TrainConfig, Trainer, register_task
from hardneg.training.config import opt


def _entry(rank, world, init_file, fn, args):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=120))
    torch.set_num_threads(1)
    try:
        fn(rank, world, *args)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def run_world(fn, *args, world: int = 2) -> None:
    """Run ``fn(rank, world, *args)`` in ``world`` spawned processes joined by a gloo group; a failure in any
    process fails the caller."""
    with tempfile.TemporaryDirectory() as tmp:
        mp.spawn(_entry, args=(world, os.path.join(tmp, "init"), fn, args), nprocs=world, join=True)


def tie_table(N=23, d=4, seed=0):
    """Integer-valued rows (many exact ties) with duplicated rows straddling the shard boundaries."""
    g = torch.Generator().manual_seed(seed)
    c = torch.randint(-2, 3, (N, d), generator=g).float()
    c[9:13] = c[9]          # equal rows across the 10 | 13 split
    c[0] = c[22]            # first and last rows equal
    q = torch.randint(-2, 3, (7, d), generator=g).float()
    return q, c


def split(c, rank, sizes):
    lo = sum(sizes[:rank])
    return c[lo : lo + sizes[rank]]


def topk_matches_single_process(rank, world):
    q, c = tie_table()
    # exclusions crossing the boundary (9, 10, 12), duplicates, an empty row, and unsorted rows
    ex = (torch.tensor([0, 3, 3, 6, 8, 8, 9, 12]),
          torch.tensor([12, 9, 10, 22, 0, 0, 5, 11, 3, 10, 9, 12]))
    for sizes in ([10, 13], [0, 23], [23, 0]):
        sharded = ShardedCandidates.from_local(split(c, rank, sizes))
        assert (sharded.lo, sharded.hi) == (sum(sizes[:rank]), sum(sizes[: rank + 1]))
        assert sharded.shape == c.shape and len(sharded) == 23
        for metric in ("dot", "l2", "l1", "cos"):
            for k in (1, 5, 23, 30):
                for e in (None, ex):
                    want = hardneg.ops.topk_mine(q, c, k, metric=metric, exclude=e)
                    got = hardneg.ops.topk_mine(q, sharded, k, metric=metric, exclude=e)
                    assert torch.equal(got[1], want[1]), (sizes, metric, k, got[1], want[1])
                    assert torch.equal(got[0], want[0]), (sizes, metric, k)
    # random float table, float32 bit-identity on a larger shard
    g = torch.Generator().manual_seed(1)
    q, c = torch.randn(16, 8, generator=g), torch.randn(300, 8, generator=g)
    sharded = ShardedCandidates.from_local(split(c, rank, [137, 163]))
    want = hardneg.ops.topk_mine(q, c, 20, metric="dot")
    got = hardneg.ops.topk_mine(q, sharded, 20, metric="dot")
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
    # rows gathered by global id, and the samplers on a sharded scorer
    assert torch.equal(sharded[torch.tensor([[0, 136], [137, 299]])], c[torch.tensor([[0, 136], [137, 299]])])
    rel = torch.randn(3, 8, generator=g)
    P = torch.stack([torch.randint(0, 300, (40,), generator=g), torch.randint(0, 3, (40,), generator=g),
                     torch.randint(0, 300, (40,), generator=g)], 1)
    for name, opts in (("topk", {"pool_size": 16}), ("nmiss", {"pool_size": 16}), ("dns", {})):
        want = hardneg.samplers.create(name, num_negatives=4, **opts).sample(
            P, scorer=hardneg.samplers.DistMultScorer(c, rel), generator=torch.Generator().manual_seed(3))
        got = hardneg.samplers.create(name, num_negatives=4, **opts).sample(
            P, scorer=hardneg.samplers.DistMultScorer(sharded, rel), generator=torch.Generator().manual_seed(3))
        assert torch.equal(got.ids, want.ids) and torch.equal(got.valid, want.valid), name
    neg = hardneg.samplers.create("score", num_negatives=4).sample(
        P, scorer=hardneg.samplers.DistMultScorer(sharded, rel), generator=torch.Generator().manual_seed(3))
    assert neg.ids.shape == (40, 4) and bool(neg.valid.all()) and neg.log_prob is not None


def _exact_log_probs(q1, c, metric, weighting, T, excluded):
    from hardneg.reference.mining import log_probs

    ex = (torch.tensor([0, len(excluded)]), torch.tensor(excluded, dtype=torch.int64))
    return log_probs(q1, c, metric=metric, weighting=weighting, temperature=T, exclude=ex)[0]


def sample_matches_distribution(rank, world, out_dir):
    """Every rank checks (the results are replicated); rank 0 also saves them for the test to inspect."""
    from hardneg.testing import assert_chi2

    g = torch.Generator().manual_seed(7)
    N, d, R = 9, 6, 4000
    q1, c = torch.randn(1, d, generator=g) * 0.8, torch.randn(N, d, generator=g) * 0.8
    q = q1.expand(R, d).contiguous()
    excluded = [2, 4, 5]  # 4 and 5 straddle the 4 | 5 split
    ex = (torch.arange(R + 1) * 3, torch.tensor(excluded).repeat(R))
    sharded = ShardedCandidates.from_local(split(c, rank, [4, 5]))
    for weighting in ("softmax", "softplus"):
        lp_exact = _exact_log_probs(q1, c, "dot", weighting, 0.7, excluded)
        p = lp_exact.exp()
        for replacement in (True, False):
            gen = torch.Generator().manual_seed(100 + rank)  # different generators per rank: still consistent
            ids, lp = hardneg.ops.sample_by_score(q, sharded, 3, weighting=weighting, temperature=0.7, exclude=ex,
                                                  replacement=replacement, generator=gen)
            both = [torch.empty_like(ids) for _ in range(world)]
            dist.all_gather(both, ids)
            assert all(torch.equal(b, ids) for b in both), "ranks disagree"
            assert not torch.isin(ids, torch.tensor(excluded)).any() and bool((ids >= 0).all())
            assert_chi2(torch.bincount(ids[:, 0], minlength=N), p)
            if replacement:
                assert_chi2(torch.bincount(ids.flatten(), minlength=N), p)
            else:
                assert bool((ids[:, 0] != ids[:, 1]).all() & (ids[:, 1] != ids[:, 2]).all()
                            & (ids[:, 0] != ids[:, 2]).all())
                for first in range(N):  # the second draw given the first: p(j) / (1 − p(first))
                    sel = ids[:, 0] == first
                    if int(sel.sum()) >= 400:
                        cond = p.clone()
                        cond[first] = 0
                        assert_chi2(torch.bincount(ids[sel, 1], minlength=N), cond / cond.sum())
            assert torch.allclose(lp.double(), lp_exact[ids], atol=2e-5, rtol=1e-5)
            if rank == 0:
                torch.save({"ids": ids, "lp": lp}, os.path.join(out_dir, f"{weighting}-{replacement}.pt"))
    # the same seed gives the same result; padding where a row has too few admissible candidates
    a = hardneg.ops.sample_by_score(q[:50], sharded, 3, generator=torch.Generator().manual_seed(1))
    b = hardneg.ops.sample_by_score(q[:50], sharded, 3, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    few = (torch.tensor([0, 7, 9]), torch.tensor([0, 1, 2, 3, 4, 5, 6, 0, 8]))
    ids, lp = hardneg.ops.sample_by_score(q[:2], sharded, 3, exclude=few, generator=torch.Generator().manual_seed(2))
    assert sorted(ids[0, :2].tolist()) == [7, 8] and ids[0, 2] == -1 and torch.isneginf(lp[0, 2])
    assert set(ids[1].tolist()) <= set(range(1, 8)) and len(set(ids[1].tolist())) == 3


def bad_inputs(rank, world):
    import pytest

    c = torch.randn(5, 4)
    with pytest.raises(ValueError, match="same width d"):
        ShardedCandidates.from_local(torch.randn(5, 4 + rank))
    with pytest.raises(TypeError, match="same dtype"):
        ShardedCandidates.from_local(torch.randn(5, 4, dtype=torch.float32 if rank == 0 else torch.float64))
    with pytest.raises(ValueError, match="tile"):  # a gap: rank 1 starts at 6
        ShardedCandidates(c, 6 * rank, 6 * rank + 5, 11)
    with pytest.raises(ValueError, match="cover"):  # the ranges stop short of N
        ShardedCandidates(c, 5 * rank, 5 * rank + 5, 12)
    with pytest.raises(ValueError, match="hi - lo"):
        ShardedCandidates(c, 5 * rank, 5 * rank + 4, 10)
    with pytest.raises(TypeError, match="local_rows"):
        ShardedCandidates.from_local(torch.ones(5, 4, dtype=torch.int64))
    sharded = ShardedCandidates.from_local(c)
    with pytest.raises(ValueError, match=r"'exclude' ids must be in \[0, 10\) \(got min 0, max 10\)"):
        hardneg.ops.topk_mine(torch.randn(2, 4), sharded, 3, exclude=(torch.tensor([0, 1, 2]), torch.tensor([0, 10])))
    with pytest.raises(ValueError, match="'tie_break' is not supported with a ShardedCandidates"):
        hardneg.ops.topk_mine(torch.randn(2, 4), sharded, 3, tie_break=torch.arange(10))
    with pytest.raises(ValueError, match=r"'exclude' ids must be in \[0, 10\)"):
        hardneg.ops.sample_by_score(torch.randn(1, 4), sharded, 3, exclude=(torch.tensor([0, 1]), torch.tensor([12])))
    with pytest.raises(ValueError, match="same d"):
        hardneg.ops.topk_mine(torch.randn(2, 3), sharded, 3)
    with pytest.raises(TypeError, match="same dtype"):
        hardneg.ops.topk_mine(torch.randn(2, 4, dtype=torch.float64), sharded, 3)
    with pytest.raises(TypeError, match="integer tensor"):
        sharded[0]
    hg = hardneg.samplers.create("hardgnn", num_negatives=2, num_entities=10, candidates=4)
    with pytest.raises(ValueError, match="'candidates' needs the whole candidate table on this rank"):
        hg.sample(torch.tensor([[0, 1], [1, 2]]), scorer=hardneg.samplers.EmbeddingScorer(torch.randn(10, 4), "dot",
                                                                                          sharded))
    dist.barrier()
    dist.destroy_process_group()
    with pytest.raises(RuntimeError, match="no torch.distributed process group"):
        hardneg.ops.topk_mine(torch.randn(2, 4), sharded, 3)
    with pytest.raises(RuntimeError, match="no torch.distributed process group"):
        hardneg.ops.sample_by_score(torch.randn(2, 4), sharded, 3)


# ------------------------------------------------------------------------------------------ training
@dataclass
class LstsqConfig(TrainConfig):
    task: str = opt("dist_lstsq", "a deterministic least-squares task")
    dataset: str = opt("synthetic", "synthetic")
    model: str = opt("linear", "a linear model")
    batch_size: int = opt(16, "rows per step")
    rows: int = opt(31, "training rows")
    lr: float = opt(0.05, "learning rate")
    eval_every: int = opt(0, "no validation: the final parameters stay")


@register_task("dist_lstsq")
class LstsqTask(Task):
    """Least squares with no randomness in the step: data-parallel steps must equal one process's."""

    Config = LstsqConfig
    primary_metric = "mse"
    higher_is_better = False

    def __init__(self, cfg, *, data=None, device):
        super().__init__(cfg, data=data, device=device)
        g = torch.Generator().manual_seed(5)
        self.x = torch.randn(cfg.rows + 20, 6, generator=g)
        self.y = self.x @ torch.randn(6, generator=g) + 0.1 * torch.randn(cfg.rows + 20, generator=g)
        self.model = torch.nn.Linear(6, 1)
        self.seen = 0

    def batches(self, generator):
        perm = torch.randperm(self.cfg.rows, generator=generator)
        for s in range(0, self.cfg.rows, self.cfg.batch_size):
            yield perm[s : s + self.cfg.batch_size]

    def step(self, idx, generator):
        self.seen += idx.numel()
        return (self.model(self.x[idx]).squeeze(1) - self.y[idx]).pow(2).mean()

    def evaluate(self, split):
        x, y = self.x[self.cfg.rows :], self.y[self.cfg.rows :]
        return {"mse": float((self.model(x).squeeze(1) - y).pow(2).mean())}

    def state_dict(self):
        return {"seen": self.seen}

    def load_state_dict(self, state):
        self.seen = state["seen"]


def ddp_training(rank, world, out_dir, overrides):
    """Train under the process group; rank 0 saves the final parameters and the result."""
    cfg = TrainConfig.from_dict({"task": "dist_lstsq", **overrides})
    tr = Trainer(cfg, progress=False, log=None)
    assert tr.dp is not None and tr.dp.world_size == world and tr.is_main == (rank == 0)
    res = tr.run(output=os.path.join(out_dir, "run"))
    if rank == 0:
        torch.save({"state": tr.model.state_dict(), "loss": res["history"][-1]["loss"], "seen": tr.task.seen,
                    "valid": res["valid"]}, os.path.join(out_dir, "rank0.pt"))


def ddp_resume(rank, world, out_dir, overrides):
    """A run stopped after 1 epoch (checkpointed) and resumed to 2 equals an uninterrupted 2-epoch run."""
    ck = os.path.join(out_dir, "ck")
    base = {"task": "dist_lstsq", "checkpoint_dir": ck, "checkpoint_every": 1, **overrides}
    Trainer(TrainConfig.from_dict({**base, "epochs": 1}), progress=False, log=None).run()
    dist.barrier()
    tr = Trainer(TrainConfig.from_dict({**base, "epochs": 2}), progress=False, log=None)
    tr.run(resume=True)
    full = Trainer(TrainConfig.from_dict({**base, "epochs": 2, "checkpoint_dir": os.path.join(out_dir, "ck2")}),
                   progress=False, log=None)
    full.run()
    for a, b in zip(tr.model.state_dict().values(), full.model.state_dict().values()):
        assert torch.equal(a, b)
    assert tr.task.seen == full.task.seen


def kg_sharded_evaluation(rank, world, kg):
    """The KG task's sharded evaluation equals its single-process evaluation; a hard sampler trains."""
    cfg = TrainConfig.from_dict({"task": "kg", "dataset": "tiny", "model": "distmult", "sampler": "topk",
                                 "dim": 8, "epochs": 1, "batch_size": 64, "eval_every": 1})
    tr = Trainer(cfg, data=kg, progress=False, log=None)
    res = tr.run()
    whole = tr.task.evaluate("test")
    sharded = tr.evaluate("test")
    assert sharded == whole, (sharded, whole)
    assert res["world_size"] == world


# ----------------------------------------------------------------------------- the row-sharded layout
def sharded_embedding(rank, world):
    """ShardedEmbedding: per-rank lookups, the reduced gradient, per-rank mining, and its bad inputs."""
    import pytest

    from hardneg.distributed import ShardedEmbedding

    g = torch.Generator().manual_seed(7)
    full = torch.randn(11, 5, generator=g)            # 11 rows: rank 0 holds [0, 5), rank 1 [5, 11)
    ids = [torch.tensor([[0, 10, 4], [4, 4, 6]]), torch.tensor([5, 1, 1])]  # each rank its own, crossing shards
    w = [torch.randn(*i.shape, 5, generator=g) for i in ids]
    for sparse in (True, False):
        emb = ShardedEmbedding.from_full(full, sparse_grad=sparse)
        assert (emb.lo, emb.hi) == ((0, 5), (5, 11))[rank] and emb.local.shape == (emb.hi - emb.lo, 5)
        out = emb(ids[rank])
        assert torch.equal(out, full[ids[rank]])
        (out * w[rank]).sum().backward()
        emb.reduce_gradients()
        ref = full.clone().requires_grad_(True)       # one process: the mean over ranks of each rank's loss
        (sum((ref[i] * x).sum() for i, x in zip(ids, w)) / world).backward()
        got = emb.local.grad
        assert got.is_sparse == sparse
        torch.testing.assert_close(got.to_dense(), ref.grad[emb.lo : emb.hi])
        assert torch.equal(emb.full(), full) and torch.equal(emb.weight[torch.tensor([10, 0])], full[[10, 0]])
    emb.reduce_gradients()                             # (the weight[...] lookup above was recorded: grad on)
    assert emb._pending == []
    with torch.no_grad():                              # lookups without grad leave nothing to reduce
        emb(torch.tensor([3]))
    assert emb._pending == []
    # prefetch: one collective lookup, then local gathers (and one gradient all-reduce) for the block
    with emb.prefetch(ids[rank].flatten()):
        a, b = emb(ids[rank]), emb(ids[rank][..., :1])
        assert torch.equal(a, full[ids[rank]]) and torch.equal(b, full[ids[rank][..., :1]])
        (a * w[rank]).sum().backward()
        with pytest.raises(ValueError, match="every lookup must be of prefetched ids"):
            emb(torch.tensor([2, 3]))  # (2, 3 are in neither rank's block)
    emb.local.grad = None
    emb.reduce_gradients()
    assert len(emb._pending) == 0 and emb.local.grad is not None
    torch.testing.assert_close(emb.local.grad.to_dense(), ref.grad[emb.lo : emb.hi])
    empty = emb(torch.zeros(0, dtype=torch.int64))     # a rank with nothing to look up still takes part
    assert empty.shape == (0, 5)
    emb.reduce_gradients()
    # per-rank queries: each rank mines its own queries over the sharded table
    q = torch.randn(3 + rank, 5, generator=torch.Generator().manual_seed(rank))
    ex = (torch.tensor([0, 2, 2, 3] + [3] * rank), torch.tensor([10, 0, 6]))
    for e in (None, ex):
        want = hardneg.ops.topk_mine(q, full, 4, exclude=e)
        got = hardneg.ops.topk_mine(q, emb.weight, 4, exclude=e)
        assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
        ids_, lp = hardneg.ops.sample_by_score(q, emb.weight, 3, exclude=e, generator=torch.Generator().manual_seed(1))
        assert ids_.shape == (q.shape[0], 3) and bool((ids_ >= 0).all()) and bool(torch.isfinite(lp).all())
        if e is not None:
            assert not bool((ids_[0] == 10).any() | (ids_[0] == 0).any())
    with pytest.raises(ValueError, match=r"'ids' must be row ids in \[0, 11\) \(got min -1, max 10; from rank\(s\) \[1\]\)"):
        emb(torch.tensor([10]) if rank == 0 else torch.tensor([-1]))  # raised on every rank, not a hang
    with pytest.raises(TypeError, match="'ids' must be an integer tensor"):
        emb(torch.tensor([1.0]))
    with pytest.raises(ValueError, match="'exclude' must be given on every rank or on none"):
        hardneg.ops.topk_mine(q, emb.weight, 2, exclude=ex if rank else None)


SHARDED_KG = {"task": "kg", "dataset": "tiny", "model": "distmult", "dim": 6, "epochs": 1, "batch_size": 8,
              "sampler": "topk", "num_negatives": 4, "sampler_options": {"pool_size": 4, "side": "tail"}, "eval_every": 1,
              "regularizer": "n3", "reg_weight": 0.01, "seed": 3, "lr": 0.05}


def kg_sharded_training(rank, world, out_dir, kg, overrides):
    """KG training with the row-sharded entity table; rank 0 saves the whole trained table and the results
    (compared in the test with one process holding the whole table). One epoch: a single process draws its
    negatives from the batch generator, so later epochs' batch orders differ from a data-parallel run's."""
    cfg = TrainConfig.from_dict({**SHARDED_KG, "entity_layout": "sharded", **overrides})
    tr = Trainer(cfg, data=kg, progress=False, log=None)
    assert tr.model.sharded and tr.model.entity.local.shape[0] == (15, 15)[rank]
    res = tr.run(output=os.path.join(out_dir, "run"))
    table = tr.model.entity.full()
    if rank == 0:
        torch.save({"entity": table, "relation": tr.model.relation.weight.detach().clone(),
                    "history": [h["loss"] for h in res["history"]], "valid": res["valid"], "test": res["test"]},
                   os.path.join(out_dir, "rank0.pt"))


def kg_sharded_resume(rank, world, out_dir, kg):
    """A sharded run checkpointed after 1 epoch and resumed to 2 equals an uninterrupted 2-epoch sharded run."""
    base = {**SHARDED_KG, "entity_layout": "sharded", "optimizer": "adagrad", "checkpoint_every": 1, "epochs": 2,
            "sampler": "score", "sampler_options": {}}
    ck = os.path.join(out_dir, "ck")
    Trainer(TrainConfig.from_dict({**base, "epochs": 1, "checkpoint_dir": ck}), data=kg, progress=False,
            log=None).run()
    dist.barrier()
    tr = Trainer(TrainConfig.from_dict({**base, "checkpoint_dir": ck}), data=kg, progress=False, log=None)
    tr.run(resume=True)
    full = Trainer(TrainConfig.from_dict({**base, "checkpoint_dir": os.path.join(out_dir, "ck2")}), data=kg,
                   progress=False, log=None)
    full.run()
    for a, b in zip(tr.model.state_dict().values(), full.model.state_dict().values()):
        assert torch.equal(a, b)


# ----------------------------------------------------------------------------- the other tasks, data-parallel
def _same_on_every_rank(dp, named):
    """Every rank holds bit-identical tensors (DDP's replicas, or state a task computed on each rank); ``dp``: the
    run's :class:`hardneg.training.parallel.DataParallel`."""
    mine = {k: v.detach().cpu().clone() for k, v in named}
    for other in dp.gather(mine):
        assert other.keys() == mine.keys()
        for k in mine:
            assert torch.equal(other[k], mine[k]), f"{k} differs across ranks"


def task_ddp(rank, world, out_dir, task, overrides):
    """A run of the linkpred / rec task under the process group: it trains, every rank ends with the same model
    (and the same frozen SEAL embedding), every rank gets the same metrics, and only rank 0 writes."""
    import warnings

    teacher = os.path.join(out_dir, "teacher.pt")
    if task == "linkpred":
        from tasks.linkpred.test_task import cfg, graph

        if overrides.get("sampler") == "mebns":  # every rank trains the same teacher and saves it to one file
            overrides = {**overrides, "sampler_options": {"teacher_path": teacher}}
        config, data = cfg(**overrides), graph(features=overrides.get("model") != "seal")
    else:
        from tasks.rec.test_task import small, synthetic

        config, data = small(**overrides), synthetic(30, 45)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the toy splits leave nodes without training edges
        tr = Trainer(config, data=data, progress=False, log=None)
        assert tr.dp is not None and tr.dp.world_size == world
        res = tr.run(output=os.path.join(out_dir, "run"))
    _same_on_every_rank(tr.dp, tr.model.state_dict().items())
    if overrides.get("sampler") == "mebns":
        _same_on_every_rank(tr.dp, tr.task.teacher.state_dict().items())
        dist.barrier()  # both ranks have saved it; a second run loads it
        again = Trainer(config, data=data, progress=False, log=None)
        assert again.task.describe()["mebns"]["teacher"]["loaded"] == teacher
        _same_on_every_rank(again.dp, again.task.teacher.state_dict().items())
    if overrides.get("node_embedding") == "gcn":  # SEAL's input: the frozen GCN trained (data-parallel) in the set-up
        _same_on_every_rank(tr.dp, [("x", tr.model.x)])
    metrics = {k: res[s][k] for s in ("valid", "test") for k in res[s] if isinstance(res[s][k], float)}
    assert all(m == metrics for m in tr.dp.gather(metrics))
    if rank == 0:
        torch.save({"res": res, "state": tr.model.state_dict()}, os.path.join(out_dir, "rank0.pt"))


#: (case name, task, config overrides) of the data-parallel runs of the other tasks
TASK_RUNS = [
    ("linkpred_gcn_uniform", "linkpred", {"model": "gcn", "sampler": "uniform"}),
    ("linkpred_gcn_dns", "linkpred", {"model": "gcn", "sampler": "dns"}),
    ("linkpred_gcn_mebns", "linkpred", {"model": "gcn", "sampler": "mebns"}),
    ("linkpred_seal_gcn_embedding", "linkpred", {"model": "seal", "node_embedding": "gcn", "readout": "center",
                                                 "num_layers": 2, "dropout": 0.1, "epochs": 1}),
    ("rec_lightgcn_dns", "rec", {"model": "lightgcn", "loss": "bpr", "sampler": "dns"}),
    ("rec_sasrec_hardgnn", "rec", {"model": "sasrec", "loss": "bce", "sampler": "hardgnn", "epochs": 1}),
]


def all_cases(out_dir: str) -> list:
    """(name, fn, args) of every case, run in order by :func:`run_cases` (one spawn for the whole suite: each
    spawn costs seconds of imports)."""
    from kg.test_training import tiny_kg

    def sub(name):
        path = os.path.join(out_dir, name)
        os.makedirs(path, exist_ok=True)
        return path

    return [
        ("topk", topk_matches_single_process, ()),
        ("sample", sample_matches_distribution, (sub("sample"),)),
        ("ddp16", ddp_training, (sub("ddp16"), {"epochs": 1, "batch_size": 16, "rows": 31})),
        ("ddp15", ddp_training, (sub("ddp15"), {"epochs": 1, "batch_size": 15, "rows": 30})),
        ("skip", ddp_training, (sub("skip"), {"epochs": 1, "batch_size": 15, "rows": 31})),
        ("resume", ddp_resume, (sub("resume"), {"batch_size": 8, "rows": 24})),
        ("ckpt", ddp_training, (sub("ckpt"), {"epochs": 1, "checkpoint_dir": os.path.join(out_dir, "ckpt", "ck"),
                                              "checkpoint_every": 1})),
        ("kg", kg_sharded_evaluation, (tiny_kg(),)),
        ("embedding", sharded_embedding, ()),
        ("kg_sharded_adagrad", kg_sharded_training, (sub("kg_sharded_adagrad"), tiny_kg(), {"optimizer": "adagrad"})),
        ("kg_sharded_adam", kg_sharded_training, (sub("kg_sharded_adam"), tiny_kg(),
                                                  {"optimizer": "adam", "model": "transe", "lr": 0.01})),
        ("kg_sharded_resume", kg_sharded_resume, (sub("kg_sharded_resume"), tiny_kg())),
        *[(name, task_ddp, (sub(name), task, over)) for name, task, over in TASK_RUNS],
        ("bad", bad_inputs, ()),  # last: it destroys the process group
    ]


def _run_all(rank, world, out_dir):
    for name, fn, args in all_cases(out_dir):
        try:
            fn(rank, world, *args)
            status = "ok"
        except Exception:  # noqa: BLE001  (reported to the test that owns the case)
            status = traceback.format_exc()
        with open(os.path.join(out_dir, f"{name}.rank{rank}.status"), "w") as f:
            f.write(status)
        if dist.is_initialized():
            dist.barrier()


def run_cases(out_dir: str) -> dict:
    """Run every case in 2 spawned gloo processes; ``{name: "ok" or the failing rank's traceback}``."""
    run_world(_run_all, out_dir)
    out = {}
    for name, _, _ in all_cases(out_dir):
        texts = []
        for r in range(2):
            path = os.path.join(out_dir, f"{name}.rank{r}.status")
            texts.append(open(path).read() if os.path.exists(path) else "did not run")
        out[name] = next((t for t in texts if t != "ok"), "ok")
    return out
