"""Bad inputs to the samplers and the KG evaluation, each case in a child process (:mod:`_crash_runner`).
Includes the k-hop sampler's numba BFS, which wrote out of bounds for an anchor outside its graph."""
from _crash_runner import family_test

SETUP = """
import numpy as np
import torch, hardneg
from hardneg import KnownSet, samplers
from hardneg.evaluation import evaluate
from hardneg.samplers.khop import khop_neighborhood, undirected_csr
tr = torch.tensor([[0, 0, 1], [1, 0, 2], [2, 1, 3], [3, 1, 4]])
ks = KnownSet.from_triples(tr, 5, 2)
sc = samplers.DistMultScorer(torch.randn(5, 4), torch.randn(2, 4))
w = torch.randn(5, 4); w[2] = float('nan')
sc_nan = samplers.DistMultScorer(w, torch.randn(2, 4))
rel_nan = torch.randn(2, 4); rel_nan[1, 0] = float('nan')
sc_nan_rel = samplers.DistMultScorer(torch.randn(5, 4), rel_nan)
G = torch.Generator().manual_seed(0)
def make(name, **kw):
    return samplers.create(name, num_negatives=2, known=ks, **kw)
"""

HARD = ["topk", "score", "dns", "nmiss", "nscaching", "mixed", "dans", "kbgan"]

CASES = [
    # the segfault: an anchor outside the k-hop graph reached the numba BFS
    ("khop anchor past the end", "khop_neighborhood(*undirected_csr(torch.tensor([0, 1]), torch.tensor([1, 2]), 3), "
     "[3], 2, 4, 0)", "ValueError", "'anchor_nodes' node ids must be in [0, 3)"),
    ("khop anchor far outside", "khop_neighborhood(*undirected_csr(torch.tensor([0, 1]), torch.tensor([1, 2]), 3), "
     "[10**9], 2, 4, 0)", "ValueError", "in [0, 3)"),
    ("khop negative anchor", "khop_neighborhood(*undirected_csr(torch.tensor([0, 1]), torch.tensor([1, 2]), 3), "
     "[-1], 2, 4, 0)", "ValueError", "in [0, 3)"),
    ("khop forged CSR", "khop_neighborhood(np.array([0, 1, 1]), np.array([7]), [0], 2, 4, 0)", "ValueError",
     "'indices' node ids"),
    ("khop edges out of range", "samplers.create('khop', num_negatives=2, num_entities=5, "
     "edges=torch.tensor([[0, 1], [1, 9]])).sample(torch.tensor([[0, 1]]))", "ValueError", "'edges' node ids"),
    ("khop float edges", "samplers.create('khop', num_negatives=2, num_entities=5, "
     "edges=torch.tensor([[0.0, 1.0]])).sample(torch.tensor([[0, 1]]))", "TypeError", "'edges'"),
    ("khop positives out of range", "make('khop').sample(torch.tensor([[0, 0, 5]]))", "ValueError", "in [0, 5)"),
    ("khop valid call", "n = make('khop').sample(tr, generator=G); assert not ks.contains(n.triples(tr)[n.valid])"
     ".any()", None, None),
    # options that are accepted must take effect
    ("bernoulli ignores side", "make('bernoulli', side='tail')", "ValueError", "'side'"),
    ("bernoulli explicit bernoulli side", "make('bernoulli', side='bernoulli').sample(tr, generator=G)", None, None),
    ("unknown option", "make('uniform', sides='tail')", "ValueError", "unknown option"),
    ("max_tries negative", "make('uniform', max_tries=-1)", "ValueError", "'max_tries'"),
    ("max_tries float", "make('uniform', max_tries=2.5)", "TypeError", "'max_tries'"),
    ("in_batch rounds negative", "make('in_batch', rounds=-1)", "ValueError", "'rounds'"),
    ("num_negatives huge", "make('uniform').__class__(num_negatives=10**13, known=ks).sample(tr)", "ValueError",
     "would need"),
    ("score temperature zero", "make('score', temperature=0)", "ValueError", "'temperature'"),
    ("score temperature inf", "make('score', temperature=float('inf'))", "ValueError", "'temperature'"),
    ("score replacement str", "make('score', replacement='no')", "TypeError", "'replacement'"),
    ("nscaching temperature nan", "make('nscaching', temperature=float('nan'))", "ValueError", "'temperature'"),
    ("mixed start above one", "make('mixed', start=1.5)", "ValueError", "'start'"),
    ("mixed end nan", "make('mixed', end=float('nan'))", "ValueError", "'end'"),
    ("mixed start str", "make('mixed', start='0.1')", "TypeError", "'start'"),
    ("dans aux_weight nan", "make('dans', aux_weight=float('nan'))", "ValueError", "'aux_weight'"),
    ("kbgan baseline_decay one", "make('kbgan', baseline_decay=1.0)", "ValueError", "'baseline_decay'"),
    ("kbgan pretrain_generator str", "make('kbgan', pretrain_generator='no')", "TypeError", "'pretrain_generator'"),
    ("kbgan pretrain_loss unknown", "make('kbgan', pretrain_loss='hinge')", "ValueError", "'pretrain_loss'"),
    ("kbgan gen_weight_decay negative", "make('kbgan', gen_weight_decay=-1e-3)", "ValueError", "'gen_weight_decay'"),
    ("hard backend unknown", "make('topk', backend='gpu')", "ValueError", "'backend'"),
    ("side unknown", "make('uniform', side='left')", "ValueError", "'side'"),
    ("positives float", "make('uniform').sample(tr.float())", "TypeError", "'positives'"),
    ("positives relation out of range", "make('uniform').sample(torch.tensor([[0, 2, 1]]))", "ValueError",
     "relation ids"),
    ("positives meta", "make('uniform').sample(tr.to('meta'))", "ValueError", "meta device"),
    ("positives expanded", "make('uniform').sample(tr[:1].expand(3, 3), generator=G)", None, None),
    ("scorer missing", "make('topk').sample(tr)", "ValueError", "needs a scorer"),
    ("scorer wrong type", "make('topk').sample(tr, scorer=object())", "TypeError", "'scorer'"),
] + [(f"{name} NaN entity embeddings", f"make({name!r}).sample(tr, scorer=sc_nan, generator=G)", "ValueError",
      "must be finite") for name in HARD] + [
    (f"{name} NaN relation embeddings", f"make({name!r}).sample(tr, scorer=sc_nan_rel, generator=G)", "ValueError",
     "finite") for name in ("topk", "score", "dns", "nmiss", "nscaching", "dans")] + [
    # scorer anchors index embedding tables: a negative id used to wrap around silently
    ("scorer negative relation", "samplers.TransEScorer(torch.randn(5, 4), torch.randn(2, 4)).query_vectors("
     "torch.tensor([[0, -1]]))", "ValueError", "relation ids"),
    ("scorer entity past the end", "sc.query_vectors(torch.tensor([[5, 0]]))", "ValueError", "entity ids"),
    ("scorer candidate ids", "sc.score_candidates(torch.tensor([[0, 0]]), torch.tensor([[7]]))", "ValueError",
     "candidate ids"),
    ("embedding scorer anchor", "samplers.EmbeddingScorer(torch.randn(5, 4)).query_vectors(torch.tensor([5]))",
     "ValueError", "node ids"),
    # loss hyper-parameters
    ("margin nan", "hardneg.losses.margin_ranking(torch.zeros(2), torch.zeros(2, 3), margin=float('nan'))",
     "ValueError", "'margin'"),
    ("sans temperature negative", "hardneg.losses.self_adversarial(torch.zeros(2), torch.zeros(2, 3), "
     "temperature=-1)", "ValueError", "'temperature'"),
    ("softplus margin str", "hardneg.losses.softplus(torch.zeros(2), torch.zeros(2, 3), margin='1')", "TypeError",
     "'margin'"),
    # evaluation
    ("evaluate batch_size -1", "evaluate(sc, tr, ks, batch_size=-1)", "ValueError", "'batch_size'"),
    ("evaluate batch_size float", "evaluate(sc, tr, ks, batch_size=2.0)", "TypeError", "'batch_size'"),
    ("evaluate relation out of range", "evaluate(sc, torch.tensor([[0, 2, 1]]), ks)", "ValueError", "relation ids"),
    ("evaluate entity out of range", "evaluate(sc, torch.tensor([[0, 0, 5]]), ks)", "ValueError", "entity ids"),
    ("evaluate float triples", "evaluate(sc, tr.float(), ks)", "TypeError", "'triples'"),
    ("evaluate NaN embeddings", "evaluate(sc_nan, tr, ks)", "ValueError", "finite"),
    ("evaluate NaN relation", "evaluate(sc_nan_rel, tr, ks)", "ValueError", "finite"),
    ("evaluate bad tie", "evaluate(sc, tr, ks, tie='random')", "ValueError", "'tie'"),
    ("evaluate bad sides", "evaluate(sc, tr, ks, sides=('left',))", "ValueError", "'sides'"),
    ("evaluate bad ks", "evaluate(sc, tr, ks, ks=(0,))", "ValueError", "'ks'"),
    ("evaluate filter of other size", "evaluate(sc, tr, KnownSet.from_triples(tr, 6, 2))", "ValueError",
     "'filter_known'"),
    ("evaluate valid", "m = evaluate(sc, tr, ks, batch_size=1); assert 0 < m['mrr'] <= 1 and m['count'] == 8", None,
     None),
]


test_bad_input = family_test(SETUP, CASES)
