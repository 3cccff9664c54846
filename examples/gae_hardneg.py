"""A PyG graph auto-encoder trained with hardneg negatives instead of PyG's internal sampler.

``torch_geometric.nn.GAE.recon_loss(z, pos_edge_index, neg_edge_index=None)`` draws its own negatives with
``torch_geometric.utils.negative_sampling`` when ``neg_edge_index`` is None. Pass ``neg_edge_index`` and it
uses yours: here either hardneg's exact, seeded drop-in ``negative_sampling`` (same signature, never a
training edge, exactly the requested count) or hard negatives that a hardneg sampler mines with the model's
own embeddings (``dns``: the hardest of M filtered-uniform candidates per positive).

    python examples/gae_hardneg.py --negatives uniform     # hardneg's negative_sampling, PyG's signature
    python examples/gae_hardneg.py --negatives dns         # hard negatives scored by the current model
    python examples/gae_hardneg.py --dataset path/to/edges.txt --epochs 50
"""
import argparse

import torch
from torch_geometric.nn import GAE, GCNConv

import hardneg
from hardneg import samplers
from hardneg.integrations.pyg import negative_sampling
from hardneg.tasks.linkpred import evaluation as metrics
from hardneg.tasks.linkpred.data import LinkPredDataset, load_dataset


class Encoder(torch.nn.Module):
    def __init__(self, in_dim, hidden=64, out=32):
        super().__init__()
        self.conv1, self.conv2 = GCNConv(in_dim, hidden), GCNConv(hidden, out)

    def forward(self, x, edge_index):
        return self.conv2(self.conv1(x, edge_index).relu(), edge_index)


def graph(name):
    try:
        return load_dataset(name)
    except ValueError:  # no shared data here: a random graph with random features
        g = torch.Generator().manual_seed(0)
        ds = LinkPredDataset.from_edges(torch.randint(0, 500, (3000, 2), generator=g), 500)
        ds.x = torch.rand(500, 32, generator=g)
        return ds


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="cora")
    p.add_argument("--negatives", choices=["uniform", "dns"], default="dns")
    p.add_argument("--epochs", type=int, default=200)
    args = p.parse_args(argv)

    torch.manual_seed(0)
    ds = graph(args.dataset)
    split = ds.split(seed=0, num_hits_negatives=1000)
    N = ds.num_nodes
    x = ds.x if ds.x is not None else torch.eye(N)
    train_pos = split.train.T.contiguous()                       # [2, m] each training edge once
    train_ei = split.train_edge_index()                          # [2, 2m] both directions: the encoder's graph
    model = GAE(Encoder(x.shape[1]))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    gen = torch.Generator().manual_seed(1)                       # hardneg negatives are reproducible
    known = hardneg.KnownSet.from_edges(split.train, N, directed=False)  # what a negative must never be
    dns = samplers.create("dns", num_negatives=1, known=known, num_candidates=8)

    for epoch in range(1, args.epochs + 1):
        model.train()
        opt.zero_grad()
        z = model.encode(x, train_ei)
        if args.negatives == "uniform":
            neg = negative_sampling(train_ei, N, train_pos.shape[1], force_undirected=False, generator=gen)
        else:
            hard = dns.sample(train_pos.T, scorer=samplers.EmbeddingScorer(z.detach()), generator=gen)
            neg = hard.triples(train_pos.T)[hard.valid].T        # [2, m·n] (u, hard negative of u)
        loss = model.recon_loss(z, train_pos, neg)               # PyG's loss, our negatives
        loss.backward()
        opt.step()
        if epoch % 50 == 0 or epoch == args.epochs:
            model.eval()
            with torch.no_grad():
                z = model.encode(x, train_ei)
                pos, neg = model.decode(z, split.test.T), model.decode(z, split.test_neg.T)
                auc, ap = metrics.auc(pos, neg), metrics.average_precision(pos, neg)
            print(f"epoch {epoch:3d}  loss {float(loss):.4f}  test AUC {auc:.4f}  AP {ap:.4f}")
    return auc


if __name__ == "__main__":
    main()
