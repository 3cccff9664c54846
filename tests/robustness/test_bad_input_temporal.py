"""Bad inputs to the temporal family (TemporalGraph, temporal_neighbors, seen_destinations, sample_historical),
each case in a child process (:mod:`_crash_runner`)."""
from _crash_runner import family_test

SETUP = """
import torch, hardneg
from hardneg import TemporalGraph
from hardneg.ops import temporal_neighbors
g = TemporalGraph(torch.tensor([0, 1, 2]), torch.tensor([1, 2, 3]), torch.tensor([1, 2, 3]))
gf = TemporalGraph(torch.tensor([0, 1]), torch.tensor([1, 2]), torch.tensor([0.5, 1.5]))
n1, t9 = torch.tensor([1]), torch.tensor([9])
B = 2**62
gb = TemporalGraph(torch.tensor([0, 0, 0]), torch.tensor([1, 2, 3]), torch.tensor([-B, B - 5, B + 3]))
def same(a, b):
    assert all(torch.equal(x, y) for x, y in zip(a, b)), (a, b)
"""

CASES = [
    # window and time arithmetic in int64: exact, never overflowing (CPU kernel and reference agree)
    ("window beyond int64 saturates", "for be in ('cpu', 'reference'): "
     "same(gb.neighbors(torch.tensor([0]), torch.tensor([-B + 1]), 3, window=2**70, backend=be), "
     "gb.neighbors(torch.tensor([0]), torch.tensor([-B + 1]), 3, backend=be))", None, None),
    ("window exact beyond 2**53", "for be in ('cpu', 'reference'): "
     "assert gb.neighbors(torch.tensor([0]), torch.tensor([B + 4]), 3, window=9, backend=be)[0].tolist() == "
     "[[3, -1, -1]], be; "
     "assert gb.neighbors(torch.tensor([0]), torch.tensor([B + 4]), 3, window=10, backend=be)[0].tolist() == "
     "[[3, 2, -1]], be", None, None),
    ("window of the whole int64 range", "for be in ('cpu', 'reference'): "
     "assert gb.neighbors(torch.tensor([0]), torch.tensor([B + 4]), 3, window=2**63 - 1, backend=be)[0].tolist() "
     "== [[3, 2, -1]], be", None, None),
    ("window reaching below the int64 minimum", "for be in ('cpu', 'reference'): "
     "nb, e, t, v = gb.neighbors(torch.tensor([0]), torch.tensor([-B + 1]), 3, window=2**63 - 1, backend=be); "
     "assert nb.tolist() == [[1, -1, -1]], (be, nb)", None, None),
    ("window inf on int64 times", "same(g.neighbors(n1, t9, 2, window=float('inf')), g.neighbors(n1, t9, 2))",
     None, None),
    ("window nan", "g.neighbors(n1, t9, 2, window=float('nan'))", "ValueError", "'window'"),
    ("window negative", "g.neighbors(n1, t9, 2, window=-1)", "ValueError", "'window'"),
    ("window fractional on int64 times", "g.neighbors(n1, t9, 2, window=1.5)", "TypeError", "'window'"),
    ("window str", "g.neighbors(n1, t9, 2, window='1')", "TypeError", "'window'"),
    ("nan event time", "TemporalGraph(torch.tensor([0]), torch.tensor([1]), torch.tensor([float('nan')]))",
     "ValueError", "finite"),
    ("inf event time", "TemporalGraph(torch.tensor([0]), torch.tensor([1]), torch.tensor([float('inf')]))",
     "ValueError", "finite"),
    ("nan query time", "gf.neighbors(n1, torch.tensor([float('nan')]), 2)", "ValueError", "NaN"),
    ("nan query time, reference", "gf.neighbors(n1, torch.tensor([float('nan')]), 2, backend='reference')",
     "ValueError", "NaN"),
    ("float query on int64 graph", "g.neighbors(n1, torch.tensor([1.5]), 2)", "TypeError", "int64 times"),
    ("node out of range (fast path)", "g.neighbors(torch.tensor([4]), t9, 2)", "ValueError", "in [0, 4)"),
    ("node out of range (uniform)", "g.neighbors(torch.tensor([4]), t9, 2, strategy='uniform')", "ValueError",
     "in [0, 4)"),
    ("negative node", "g.neighbors(torch.tensor([-1]), t9, 2)", "ValueError", "in [0, 4)"),
    ("k huge", "g.neighbors(n1, t9, 10**13)", "ValueError", "would need"),
    ("k zero", "g.neighbors(n1, t9, 0)", "ValueError", "'k'"),
    ("lengths differ", "g.neighbors(torch.tensor([0, 1]), t9, 2)", "ValueError", "same length"),
    ("graph not a graph", "temporal_neighbors('g', n1, t9, 2)", "TypeError", "'graph'"),
    ("expanded queries", "same(g.neighbors(n1.expand(3), t9.expand(3), 2), g.neighbors(n1.repeat(3), t9.repeat(3), 2))",
     None, None),
    ("meta queries", "g.neighbors(n1.to('meta'), t9.to('meta'), 2)", "ValueError", "meta device"),
    ("meta queries, assemble", "g.assemble(n1.to('meta'), t9.to('meta'), 2)", "ValueError", "meta device"),
    ("meta event times, assemble", "g.assemble(n1, t9, 2, event_times=t9.to('meta'))", "ValueError", "meta device"),
    ("append goes back in time", "g.append(torch.tensor([0]), torch.tensor([1]), torch.tensor([0]))", "ValueError",
     "back in time"),
    ("append out of range", "g.append(torch.tensor([0]), torch.tensor([4]), torch.tensor([5]))", "ValueError",
     "in [0, 4)"),
    ("append float to int64 graph", "g.append(torch.tensor([0]), torch.tensor([1]), torch.tensor([5.5]))",
     "TypeError", "int64 times"),
    ("append nan", "gf.append(torch.tensor([0]), torch.tensor([1]), torch.tensor([float('nan')]))", "ValueError",
     "finite"),
    ("src out of range", "TemporalGraph(torch.tensor([0]), torch.tensor([5]), torch.tensor([1]), num_nodes=3)",
     "ValueError", "in [0, 3)"),
    ("num_nodes beyond memory", "TemporalGraph(torch.tensor([0]), torch.tensor([1]), torch.tensor([1]), "
     "num_nodes=10**13)", "ValueError", "would need"),
    ("historical n zero", "g.sample_historical(n1, t9, 0)", "ValueError", "'n'"),
    ("seen_destinations out of range", "g.seen_destinations(torch.tensor([7]), t9)", "ValueError", "in [0, 4)"),
]


test_bad_input = family_test(SETUP, CASES)
