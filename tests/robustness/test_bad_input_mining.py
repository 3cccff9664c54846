"""Bad inputs to the mining family (topk_mine, sample_by_score, sample_from_weights), each case in a child
process (:mod:`_crash_runner`): a clear TypeError/ValueError naming the argument, or a correct answer."""
from _crash_runner import family_test

SETUP = """
import torch, hardneg
from hardneg.ops import topk_mine, sample_by_score, sample_from_weights
q, c = torch.randn(4, 8, generator=torch.Generator().manual_seed(0)), torch.randn(20, 8)
G = torch.Generator().manual_seed(0)
"""

CASES = [
    # silent wrong answers before: overflowing float32 scores came back as padding / inf
    ("l2 score overflow", "topk_mine(torch.full((1, 4), 1e20), torch.tensor([[1e20]*4, [-1e20]*4, [1.0]*4]), 3, "
     "metric='l2')", "ValueError", "could overflow float32"),
    ("dot score overflow", "topk_mine(torch.full((1, 4), 1e19), torch.full((3, 4), 1e19), 2)", "ValueError",
     "could overflow float32"),
    ("cos norm overflow", "topk_mine(torch.full((1, 4), 3e19), torch.ones(3, 4), 2, metric='cos')", "ValueError",
     "could overflow float32"),
    ("float64 beyond float32", "topk_mine(torch.full((1, 4), 1e200, dtype=torch.float64), "
     "torch.ones(3, 4, dtype=torch.float64), 2)", "ValueError", "could overflow float32"),
    ("sample_by_score overflow", "sample_by_score(torch.full((1, 4), 1e20), torch.full((3, 4), 1e20), 2, "
     "generator=G)", "ValueError", "could overflow float32"),
    ("large but safe scores", "s, i = topk_mine(torch.full((1, 4), 1e9), torch.tensor([[1e9]*4, [-1e9]*4]), 2, "
     "metric='l2'); assert i.tolist() == [[0, 1]], i", None, None),
    # logit spans beyond exp's range (T = 0.01): a weight floor made the CPU sampler pick e^-1000 candidates
    ("low temperature picks the argmax", "cc = torch.tensor([[-3.53, 0.0], [-12.91, 0.0], [0.0, 0.0]]); "
     "qq = torch.tensor([[1.0, 0.0]]); "
     "assert all(sample_by_score(qq, cc, 1, temperature=0.01, replacement=r, generator=torch.Generator()"
     ".manual_seed(s))[0].item() == 2 for s in range(20) for r in (False, True))", None, None),
    # sizes that would only fail in the allocator
    ("huge k", "topk_mine(q, c, 10**13)", "ValueError", "would need"),
    ("huge n from weights", "sample_from_weights(torch.ones(2, 3), 10**13, replacement=True)", "ValueError",
     "would need"),
    ("huge num_samples", "sample_by_score(q, c, 10**13, generator=G)", "ValueError", "would need"),
    # expanded (stride-0) inputs are valid tensors
    ("expanded query rows", "s, i = topk_mine(q[:1].expand(5, 8), c, 3); r = topk_mine(q[:1].repeat(5, 1), c, 3); "
     "assert torch.equal(i, r[1])", None, None),
    ("expanded candidate columns", "cc = c[:, :1].expand(20, 8); s, i = topk_mine(q, cc, 3, metric='l2'); "
     "r = topk_mine(q, cc.contiguous(), 3, metric='l2'); assert torch.equal(s, r[0])", None, None),
    ("expanded sample_by_score", "sample_by_score(q[:1].expand(3, 8), c, 2, generator=G)", None, None),
    ("meta query", "topk_mine(q.to('meta'), c.to('meta'), 2)", "ValueError", "meta device"),
    ("meta weights", "sample_from_weights(torch.ones(2, 3, device='meta'), 2, replacement=False)", "ValueError",
     "meta device"),
    # arguments
    ("k zero", "topk_mine(q, c, 0)", "ValueError", "'k' must be >= 1"),
    ("k float", "topk_mine(q, c, 2.5)", "TypeError", "'k' must be an int"),
    ("k bool", "topk_mine(q, c, True)", "TypeError", "'k'"),
    ("query int", "topk_mine(q.long(), c, 2)", "TypeError", "'query'"),
    ("query 1-D", "topk_mine(q[0], c, 2)", "ValueError", "'query' must be a 2-D"),
    ("d mismatch", "topk_mine(q, c[:, :4], 2)", "ValueError", "same d"),
    ("dtype mismatch", "topk_mine(q.double(), c, 2)", "TypeError", "same dtype"),
    ("nan query", "q2 = q.clone(); q2[1, 3] = float('nan'); topk_mine(q2, c, 2)", "ValueError", "finite"),
    ("inf candidates", "c2 = c.clone(); c2[0, 0] = float('inf'); topk_mine(q, c2, 2)", "ValueError", "finite"),
    ("unknown metric", "topk_mine(q, c, 2, metric='euclid')", "ValueError", "'metric'"),
    ("rotate odd d", "topk_mine(q[:, :7], c[:, :7], 2, metric='rotate')", "ValueError", "even d"),
    ("exclude id out of range", "topk_mine(q, c, 2, exclude=(torch.tensor([0, 1, 1, 1, 1]), torch.tensor([20])))",
     "ValueError", "in [0, 20)"),
    ("exclude negative id", "topk_mine(q, c, 2, exclude=(torch.tensor([0, 1, 1, 1, 1]), torch.tensor([-1])))",
     "ValueError", "in [0, 20)"),
    ("exclude indptr decreasing", "topk_mine(q, c, 2, exclude=(torch.tensor([0, 2, 1, 2, 2]), "
     "torch.tensor([1, 2])))", "ValueError", "non-decreasing"),
    ("exclude indptr length", "topk_mine(q, c, 2, exclude=(torch.tensor([0, 1]), torch.tensor([1])))", "ValueError",
     "indptr must have 5"),
    ("exclude not a pair", "topk_mine(q, c, 2, exclude=torch.tensor([1]))", "TypeError", "CSR pair"),
    ("exclude float ids", "topk_mine(q, c, 2, exclude=(torch.tensor([0, 1, 1, 1, 1]), torch.tensor([1.0])))",
     "TypeError", "integer"),
    ("unknown backend", "topk_mine(q, c, 2, backend='gpu')", "ValueError", "'backend'"),
    ("temperature zero", "sample_by_score(q, c, 2, temperature=0.0)", "ValueError", "'temperature'"),
    ("temperature nan", "sample_by_score(q, c, 2, temperature=float('nan'))", "ValueError", "'temperature'"),
    ("temperature str", "sample_by_score(q, c, 2, temperature='1')", "TypeError", "'temperature'"),
    ("weighting unknown", "sample_by_score(q, c, 2, weighting='hinge')", "ValueError", "'weighting'"),
    ("replacement int", "sample_by_score(q, c, 2, replacement=1)", "TypeError", "'replacement'"),
    ("generator wrong", "sample_by_score(q, c, 2, generator=0)", "TypeError", "'generator'"),
    ("weights negative", "sample_from_weights(torch.tensor([[1.0, -1.0]]), 1, replacement=True)", "ValueError",
     ">= 0"),
    ("weights nan", "sample_from_weights(torch.tensor([[1.0, float('nan')]]), 1, replacement=True)", "ValueError",
     "finite"),
]


test_bad_input = family_test(SETUP, CASES)
