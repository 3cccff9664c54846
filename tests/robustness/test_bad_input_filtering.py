"""Bad inputs to the filtering family (KnownSet, known_contains / known_mask / known_exclusion, corrupt), each
case in a child process (:mod:`_crash_runner`)."""
from _crash_runner import family_test

SETUP = """
import torch, hardneg
from hardneg import KnownSet
from hardneg.ops import corrupt, known_contains, known_mask, known_exclusion
tr = torch.tensor([[0, 0, 1], [1, 0, 2], [2, 1, 3]])
ks = KnownSet.from_triples(tr, 5, 2)
G = torch.Generator().manual_seed(0)
"""

CASES = [
    # first-seen times: int64 stays exact (a float64 round trip would merge 2**60 + 1 and 2**60 + 2)
    ("int64 first-seen times exact", "b = 2**60; k = KnownSet.from_triples(tr[:2], 5, 1, times=torch.tensor([b + 1, b + 2])); "
     "assert k.first_time.tolist() == [b + 1, b + 2]; "
     "assert k.contains(tr[:2], before=torch.tensor([b + 2, b + 2])).tolist() == [True, False]; "
     "assert k.contains(tr[:2], before=torch.tensor([b + 2, b + 2]), backend='reference').tolist() == [True, False]",
     None, None),
    ("float before vs int64 times", "k = KnownSet.from_triples(tr[:1], 5, 1, times=[5]); "
     "assert k.contains(tr[:1], before=torch.tensor([5.5])).tolist() == [True]; "
     "assert k.contains(tr[:1], before=torch.tensor([5.0])).tolist() == [False]; "
     "assert k.contains(tr[:1], before=torch.tensor([5.0]), inclusive=True).tolist() == [True]", None, None),
    ("nan times", "KnownSet.from_triples(tr, 5, 2, times=[1.0, float('nan'), 2.0])", "ValueError", "finite"),
    ("inf times", "KnownSet.from_triples(tr, 5, 2, times=[1.0, float('inf'), 2.0])", "ValueError", "finite"),
    ("nan before", "KnownSet.from_triples(tr, 5, 2, times=[1, 2, 3]).contains(tr, before=torch.tensor([1.0, "
     "float('nan'), 1.0]))", "ValueError", "NaN"),
    ("times wrong length", "KnownSet.from_triples(tr, 5, 2, times=[1, 2])", "ValueError", "'times'"),
    ("times strings", "KnownSet.from_triples(tr, 5, 2, times=['a', 'b', 'c'])", "TypeError", "'times'"),
    ("triples out of range", "KnownSet.from_triples(tr, 3, 2)", "ValueError", "in [0, 3)"),
    ("relation out of range", "KnownSet.from_triples(tr, 5, 1)", "ValueError", "relation ids"),
    ("negative entity", "KnownSet.from_triples(torch.tensor([[-1, 0, 1]]), 5, 1)", "ValueError", "in [0, 5)"),
    ("key space overflow", "KnownSet.from_triples(tr, 2**31, 2**3)", "ValueError", "2**62"),
    ("float triples", "KnownSet.from_triples(tr.float(), 5, 2)", "TypeError", "integer"),
    ("empty known set", "KnownSet.from_triples(tr[:0], 5, 2)", "ValueError", "empty"),
    ("edges directed not bool", "KnownSet.from_edges(tr[:, :2], 5, directed='yes')", "TypeError", "'directed'"),
    ("contains out of range", "ks.contains(torch.tensor([[0, 0, 9]]))", "ValueError", "in [0, 5)"),
    ("contains meta", "ks.contains(tr.to('meta'))", "ValueError", "meta device"),
    ("mask candidates out of range", "known_mask(ks, tr[:, :2], torch.tensor([[0, 5]] * 3))", "ValueError",
     "'candidates'"),
    ("mask anchors out of range", "known_mask(ks, torch.tensor([[0, 7]]), torch.tensor([[0, 1]]))", "ValueError",
     "'anchor[:, 1]' ids must be in [0, 2)"),
    ("mask bad side", "known_mask(ks, tr[:, :2], tr[:, 2:], side='middle')", "ValueError", "'side'"),
    ("exclusion anchors out of range", "known_exclusion(ks, torch.tensor([[9, 0]]))", "ValueError", "in [0, 5)"),
    ("corrupt huge n", "corrupt(tr, 10**13, 5)", "ValueError", "would need"),
    ("corrupt n zero", "corrupt(tr, 0, 5)", "ValueError", "'num_negatives'"),
    ("corrupt max_tries zero", "corrupt(tr, 2, 5, known=ks, max_tries=0)", "ValueError", "'max_tries'"),
    ("corrupt entity out of range", "corrupt(tr, 2, 3)", "ValueError", "in [0, 3)"),
    ("corrupt relation out of range", "corrupt(tr, 2, 5, num_relations=1)", "ValueError", "relation ids"),
    ("corrupt bad side", "corrupt(tr, 2, 5, side='left')", "ValueError", "'side'"),
    ("corrupt bernoulli without known", "corrupt(tr, 2, 5, side='bernoulli')", "ValueError", "needs 'known'"),
    ("corrupt domain out of range", "corrupt(tr, 2, 5, domain={'head': (torch.tensor([0, 1, 1]), torch.tensor([9])), "
     "'tail': (torch.tensor([0, 0, 0]), torch.tensor([], dtype=torch.long))})", "ValueError", "in [0, 5)"),
    ("corrupt domain indptr short", "corrupt(tr, 2, 5, domain={'head': (torch.tensor([0, 1]), torch.tensor([1])), "
     "'tail': (torch.tensor([0, 0, 0]), torch.tensor([], dtype=torch.long))})", "ValueError", "indptr must have 3"),
    ("corrupt expanded positives", "corrupt(tr[:1].expand(4, 3), 2, 5, known=ks, generator=G)", None, None),
    ("corrupt meta", "corrupt(tr.to('meta'), 2, 5)", "ValueError", "meta device"),
]


test_bad_input = family_test(SETUP, CASES)
