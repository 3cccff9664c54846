"""Temporal training speed and quality: our TGN (hardneg train --task temporal) against PyG's TGN example loop,
and the ENS candidate-cache refresh period R.

``--peer`` (default): TGN on the same split (DyGLib chronological 70/15/15, transductive), trained for the same
number of epochs by (a) ``hardneg``'s engine with random negatives and (b) the training loop of PyG's
``examples/tgn.py`` (``TGNMemory`` + ``IdentityMessage`` + ``LastAggregator`` + ``LastNeighborLoader`` +
``TransformerConv``, batch 200, lr 1e-4, dims 100; the example's logic, re-typed here for the dataset, with a
1-dimensional zero message because UCI has no edge features). Both are evaluated on the test events
(after streaming the validation events) with the same DyGLib random negatives, AP averaged per batch of 200.

``--refresh 1,10,50``: ENS epochs with each candidate-refresh period R (wall time per epoch, validation AP),
against a random-negative epoch in the same run.

``--peer-lockstep``: the same peer comparison with the two trained side by side, one step of each in turn (as
``--interleave``), so that the machine's drift between minutes does not land in the ratio.

``--interleave``: the ENS epoch cost against random negatives, measured in lockstep: one trainer per sampler
(ENS with the ``uci-tgn`` recipe's options, and random), each training its own model as usual, one training step
of each in turn (the order rotating every step), timing each step (forward, sampling, backward, optimiser,
memory update). On a shared virtual machine whose speed drifts by tens of percent between minutes, separate runs
cannot resolve a ratio near 1.3; steps taken side by side see the same machine. ``--ens-options '{refresh_every:
5}'`` times another ENS setting the same way (a YAML mapping over the recipe's options); ``--model-options
'{pair_history: 20}'`` gives both trainers that model (the ``uci-tgn-pair`` recipe: ``--ens-options '{rank_by:
score}'``).

    python bench/temporal_train.py --dataset uci --epochs 3 [--threads 2] [--refresh 1,10,50] [--no-peer]
    python bench/temporal_train.py --dataset uci --epochs 3 --no-peer --interleave [--ens-options '{refresh_every: 5}']
    python bench/temporal_train.py --dataset uci --epochs 3 --no-peer --interleave --model-options '{pair_history: 20}' \
        --ens-options '{rank_by: score}'
    python bench/temporal_train.py --dataset uci --epochs 2 --peer-lockstep
    python bench/temporal_train.py --dataset uci --epochs 2 --peer-lockstep --model-options '{neighbor_time: last_update}'
    python bench/temporal_train.py --dataset uci --epochs 3 --peer-lockstep \
        --model-options '{neighbor_time: last_update, attention_output: skip}'   # PyG's example model itself

With ``{neighbor_time: last_update, attention_output: skip}`` our TGN is the example's model (its time encoding and
``TransformerConv``'s heads plus root weight), so both sides do the same work; ``neighbor_time: last_update`` alone
keeps TGAT's merge layer (an output projection, LayerNorm and a two-layer MLP the example does not have).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import torch
import yaml

sys.path.insert(0, os.path.dirname(__file__))
from _harness import RESULTS_DIR, append_csv, machine, stamp, train_step  # noqa: E402

from hardneg.tasks.temporal.data import load_dataset  # noqa: E402
from hardneg.tasks.temporal.evaluation import BatchedAPAUC  # noqa: E402
from hardneg.training import TrainConfig, Trainer  # noqa: E402


def ours(ds, epochs, seed, sampler="random", **over):
    cfg = TrainConfig.from_dict(dict(task="temporal", dataset=ds.name, model="tgn", sampler=sampler, epochs=epochs,
                                     eval_every=0, rank_eval="none", seed=seed, **over))
    r = Trainer(cfg, data=ds, progress=False, log=None).run()
    return {"epoch_s": r["timings"]["epoch_s"], "test_ap": r["test"]["ap"], "valid_ap": r["valid"]["ap"],
            "sampler_share": r["timings"]["sampler_share"]}


def interleaved(ds, epochs, seed, warmup=1, ens_options=None, model_options=None):
    """Per-epoch step-time sums of ENS (the recipe's options, updated by ``ens_options``) and random trained in
    lockstep (module docstring), both on TGN with ``model_options``."""
    from hardneg.cli import load_recipe

    ens_opts = {**load_recipe("uci-tgn")["sampler_options"], **(ens_options or {})}
    tr = {}
    for name, opts in (("ens", ens_opts), ("random", {})):
        cfg = TrainConfig.from_dict(dict(task="temporal", dataset=ds.name, model="tgn", sampler=name, epochs=1,
                                         eval_every=0, rank_eval="none", seed=seed, sampler_options=opts,
                                         model_options=model_options or {}))
        tr[name] = Trainer(cfg, data=ds, progress=False, log=None)
    names, out = list(tr), []
    for ep in range(warmup + epochs):
        for T in tr.values():
            T.model.train()
            T.task.on_epoch_start(ep + 1)
        its = {k: iter(T.task.batches(T.gen)) for k, T in tr.items()}
        spent, i = dict.fromkeys(names, 0.0), 0
        for batches in zip(*its.values()):
            for k in names[i % 2:] + names[:i % 2]:
                T, b = tr[k], batches[names.index(k)]
                t = time.perf_counter()
                train_step(T, b)
                spent[k] += time.perf_counter() - t
            i += 1
        for T in tr.values():
            T.task.on_epoch_end(ep + 1)
        if ep >= warmup:
            out.append(spent)
    return out


class PygTGN:
    """The model, training step and evaluation of PyG's examples/tgn.py on our split and negatives."""

    def __init__(self, ds, seed, lr=1e-4):
        from torch.nn import Linear
        from torch_geometric.nn import TGNMemory, TransformerConv
        from torch_geometric.nn.models.tgn import IdentityMessage, LastAggregator, LastNeighborLoader

        torch.manual_seed(seed)
        self.ds, self.split = ds, ds.split(inductive=False)
        N, dim = ds.num_nodes, 100
        self.msg = ds.edge_features if ds.edge_features is not None else torch.zeros(ds.num_events, 1)
        msg = self.msg

        class GraphAttentionEmbedding(torch.nn.Module):
            def __init__(self, i, o, msg_dim, time_enc):
                super().__init__()
                self.time_enc = time_enc
                self.conv = TransformerConv(i, o // 2, heads=2, dropout=0.1, edge_dim=msg_dim + time_enc.out_channels)

            def forward(self, x, last_update, edge_index, t, m):
                rel_t = last_update[edge_index[0]] - t
                return self.conv(x, edge_index, torch.cat([self.time_enc(rel_t.to(x.dtype)), m], -1))

        class LinkPredictor(torch.nn.Module):
            def __init__(self, c):
                super().__init__()
                self.lin_src, self.lin_dst, self.lin_final = Linear(c, c), Linear(c, c), Linear(c, 1)

            def forward(self, z_src, z_dst):
                return self.lin_final((self.lin_src(z_src) + self.lin_dst(z_dst)).relu())

        self.memory = TGNMemory(N, msg.shape[1], dim, dim, message_module=IdentityMessage(msg.shape[1], dim, dim),
                                aggregator_module=LastAggregator())
        self.gnn = GraphAttentionEmbedding(dim, dim, msg.shape[1], self.memory.time_enc)
        self.link_pred = LinkPredictor(dim)
        self.opt = torch.optim.Adam(set(self.memory.parameters()) | set(self.gnn.parameters())
                                    | set(self.link_pred.parameters()), lr=lr)
        self.crit = torch.nn.BCEWithLogitsLoss()
        self.loader = LastNeighborLoader(N, size=10)
        self.assoc = torch.empty(N, dtype=torch.long)

    def embed(self, n_id):
        n_id, edge_index, e_id = self.loader(n_id)
        self.assoc[n_id] = torch.arange(n_id.size(0))
        z, last_update = self.memory(n_id)
        return self.gnn(z, last_update, edge_index, self.ds.t[e_id], self.msg[e_id])

    def batches(self, idx):
        for lo in range(0, idx.numel(), 200):
            b = idx[lo:lo + 200]
            yield b, self.ds.src[b], self.ds.dst[b], self.ds.t[b], self.msg[b]

    def train_steps(self):
        """One training epoch, one step per ``next()``."""
        ds, assoc = self.ds, self.assoc
        self.memory.train(), self.gnn.train(), self.link_pred.train()
        self.memory.reset_state()
        self.loader.reset_state()
        for b, src, dst, t, m in self.batches(self.split.train):
            self.opt.zero_grad()
            neg = torch.randint(ds.dst_min, ds.dst_max + 1, (src.numel(),))
            z = self.embed(torch.cat([src, dst, neg]).unique())
            pos_out = self.link_pred(z[assoc[src]], z[assoc[dst]])
            neg_out = self.link_pred(z[assoc[src]], z[assoc[neg]])
            loss = self.crit(pos_out, torch.ones_like(pos_out)) + self.crit(neg_out, torch.zeros_like(neg_out))
            self.memory.update_state(src, dst, t, m)
            self.loader.insert(src, dst)
            loss.backward()
            self.opt.step()
            self.memory.detach()
            yield

    @torch.no_grad()
    def test(self, part):
        """AP on ``part`` against the DyGLib random negatives, streaming on from the current memory."""
        self.memory.eval(), self.gnn.eval(), self.link_pred.eval()
        _, neg_all = self.ds.eval_negatives(self.split, part, "random")
        acc, assoc = BatchedAPAUC(), self.assoc
        for lo, (b, src, dst, t, m) in zip(range(0, 10**9, 200), self.batches(self.split.part(part))):
            neg = neg_all[lo:lo + b.numel()]
            z = self.embed(torch.cat([src, dst, neg]).unique())
            acc.add(self.link_pred(z[assoc[src]], z[assoc[dst]]), self.link_pred(z[assoc[src]], z[assoc[neg]]))
            self.memory.update_state(src, dst, t, m)
            self.loader.insert(src, dst)
        return acc.result()["ap"]


def pyg_example(ds, epochs, seed, lr=1e-4):
    """The training / evaluation logic of PyG's examples/tgn.py on our split and negatives."""
    P = PygTGN(ds, seed, lr)
    t_train, curve = 0.0, []
    for _ in range(epochs):
        t0 = time.perf_counter()
        for _ in P.train_steps():
            pass
        t_train += time.perf_counter() - t0
        valid_ap = P.test("valid")
        test_ap = P.test("test")
        curve.append(round(valid_ap, 4))
    return {"epoch_s": t_train / epochs, "test_ap": test_ap, "valid_ap": valid_ap, "valid_curve": curve}


def _our_steps(T):
    """One epoch of a Trainer's temporal task, one step per ``next()`` (the engine's step, under its
    deterministic switch, without its clock)."""
    T.model.train()
    for b in T.task.batches(T.gen):
        train_step(T, b)
        yield


def peer_lockstep(ds, epochs, seed, model_options=None):
    """Our TGN (random negatives; ``model_options`` for it, e.g. ``{"neighbor_time": "last_update",
    "attention_output": "skip"}``, PyG's example model) and PyG's example loop trained side by side, one step of
    each in turn (the order alternating), each step timed; then both evaluated as in the sequential comparison."""
    cfg = TrainConfig.from_dict(dict(task="temporal", dataset=ds.name, model="tgn", sampler="random", epochs=epochs,
                                     eval_every=0, rank_eval="none", seed=seed, model_options=model_options or {}))
    T = Trainer(cfg, data=ds, progress=False, log=None)
    P = PygTGN(ds, seed)
    names, spent = ("hardneg", "pyg"), []
    for ep in range(epochs):
        T.task.on_epoch_start(ep + 1)
        gens, took, i, done = {"hardneg": _our_steps(T), "pyg": P.train_steps()}, dict.fromkeys(names, 0.0), 0, False
        while not done:
            for k in names[i % 2:] + names[:i % 2]:
                t = time.perf_counter()
                done = next(gens[k], StopIteration) is StopIteration or done
                took[k] += time.perf_counter() - t
            i += 1
        T.task.on_epoch_end(ep + 1)
        spent.append(took)
    ours_ap = {part: T.evaluate(part)["ap"] for part in ("valid", "test")}
    pyg_ap = {part: P.test(part) for part in ("valid", "test")}
    return spent, ours_ap, pyg_ap


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="uci")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--refresh", default=None, help="comma-separated ENS refresh periods R to time")
    p.add_argument("--no-peer", action="store_true", help="skip the PyG comparison")
    p.add_argument("--interleave", action="store_true", help="ENS vs random epoch cost, steps in lockstep")
    p.add_argument("--ens-options", default=None,
                   help="with --interleave: YAML mapping over the recipe's ENS options, e.g. '{refresh_every: 5}'")
    p.add_argument("--peer-lockstep", action="store_true",
                   help="hardneg TGN vs PyG's example loop, steps in lockstep (instead of one run after the other)")
    p.add_argument("--model-options", default=None,
                   help="with --peer-lockstep: our TGN's model options as YAML/JSON, e.g. '{neighbor_time: "
                        "last_update, attention_output: skip}' (PyG's example model: the same work on both sides); "
                        "with --interleave: both trainers' model options, e.g. '{pair_history: 20}'")
    p.add_argument("--csv", default=os.path.join(RESULTS_DIR, "temporal_train.csv"))
    a = p.parse_args()
    model_options = yaml.safe_load(a.model_options) if a.model_options else {}
    if not isinstance(model_options, dict):
        p.error(f"--model-options must be a YAML mapping (got {a.model_options!r})")
    if a.threads:
        torch.set_num_threads(a.threads)
    ds = load_dataset(a.dataset)
    print(f"# {a.dataset}: {ds.num_events} events, {ds.num_nodes} nodes; {a.epochs} epochs, seed {a.seed}; "
          f"{machine('cpu')}")
    rows = []
    if a.peer_lockstep:
        spent, ours_ap, pyg_ap = peer_lockstep(ds, a.epochs, a.seed, model_options)
        for i, e in enumerate(spent, 1):
            print(f"lockstep epoch {i}: hardneg {e['hardneg']:6.2f} s   PyG loop {e['pyg']:6.2f} s   "
                  f"ratio {e['hardneg'] / e['pyg']:.3f}", flush=True)
        ours_s, pyg_s = (sum(e[k] for e in spent) / len(spent) for k in ("hardneg", "pyg"))
        ours_name = "hardneg TGN, random (lockstep)" + (f" {model_options}" if model_options else "")
        for name, sec, ap in ((ours_name, ours_s, ours_ap),
                              ("PyG examples/tgn.py loop (lockstep)", pyg_s, pyg_ap)):
            rows.append(dict(provider=name, epoch_s=sec, valid_ap=ap["valid"], test_ap=ap["test"]))
            print(f"{name:<38} epoch {sec:7.2f} s   valid AP {ap['valid']:.4f}   test AP {ap['test']:.4f}")
        print(f"epoch time ratio hardneg / PyG, steps in lockstep: {ours_s / pyg_s:.3f}")
    elif not a.no_peer:
        for name, fn in (("hardneg TGN, random negatives", lambda: ours(ds, a.epochs, a.seed)),
                         ("PyG examples/tgn.py loop", lambda: pyg_example(ds, a.epochs, a.seed))):
            r = fn()
            rows.append(dict(provider=name, **r))
            print(f"{name:<34} epoch {r['epoch_s']:7.2f} s   valid AP {r['valid_ap']:.4f}   test AP {r['test_ap']:.4f}",
                  flush=True)
        print(f"epoch time ratio hardneg / PyG: {rows[0]['epoch_s'] / rows[1]['epoch_s']:.2f}")
    if a.refresh:
        base = ours(ds, a.epochs, a.seed)
        rows.append(dict(provider="hardneg TGN, random", **base))
        print(f"{'random':<34} epoch {base['epoch_s']:7.2f} s   valid AP {base['valid_ap']:.4f}", flush=True)
        for R in (int(x) for x in a.refresh.split(",")):
            r = ours(ds, a.epochs, a.seed, "ens", sampler_options={"refresh_every": R})
            rows.append(dict(provider=f"hardneg TGN, ens R={R}", **r))
            print(f"{'ens R=' + str(R):<34} epoch {r['epoch_s']:7.2f} s ({r['epoch_s'] / base['epoch_s']:.2f}x random)"
                  f"   valid AP {r['valid_ap']:.4f}   sampler share {r['sampler_share']:.1%}", flush=True)
    if a.interleave:
        ens_options = yaml.safe_load(a.ens_options) if a.ens_options else {}
        if not isinstance(ens_options, dict):
            p.error(f"--ens-options must be a YAML mapping (got {a.ens_options!r})")
        eps = interleaved(ds, a.epochs, a.seed, ens_options=ens_options, model_options=model_options)
        for i, e in enumerate(eps, 1):
            print(f"lockstep epoch {i}: ens {e['ens']:6.2f} s   random {e['random']:6.2f} s   "
                  f"ratio {e['ens'] / e['random']:.3f}", flush=True)
        ens, rnd = sum(e["ens"] for e in eps), sum(e["random"] for e in eps)
        print(f"ENS / random epoch cost over {len(eps)} epochs, steps in lockstep: {ens / rnd:.3f}")
        rows.append(dict(provider="hardneg TGN, random (lockstep)", epoch_s=rnd / len(eps)))
        rows.append(dict(provider="hardneg TGN, ens recipe (lockstep)" + (f" {ens_options}" if ens_options else ""),
                         epoch_s=ens / len(eps)))
    fields = ["date", "commit", "machine", "dataset", "epochs", "seed", "threads", "provider", "epoch_s",
              "valid_ap", "test_ap", "sampler_share"]
    append_csv(a.csv, fields, rows, **stamp(), dataset=a.dataset, epochs=a.epochs, seed=a.seed,
               threads=torch.get_num_threads())


if __name__ == "__main__":
    main()
