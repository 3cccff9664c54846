"""TemporalGraph under concurrency: one thread appends while others query (the compiled lookup releases the
GIL). Before, ``append`` freed the level arrays a running lookup was reading (SIGSEGV). Runs in a child
process (:mod:`_crash_runner`) so that a crash fails the test instead of killing pytest."""
from _crash_runner import check, run_cases

SETUP = """
import threading
import torch, hardneg
"""

BODY = """
torch.manual_seed(0)
V, M0 = 64, 4000
g = hardneg.TemporalGraph(torch.randint(0, V, (M0,)), torch.randint(0, V, (M0,)), torch.arange(M0) // 4,
                          num_nodes=V)
nodes = torch.randint(0, V, (512,))
early = torch.full((512,), 500)               # before every appended event: the answer never changes
late = torch.full((512,), 10**9)              # after everything: sees some consistent state
expect = g.neighbors(nodes, early, 8)
errors, stop = [], threading.Event()

def reader(strategy):
    try:
        while not stop.is_set():
            for x, y in zip(g.neighbors(nodes, early, 8, strategy="recent"), expect):
                assert torch.equal(x, y), "a query before the appended times changed its answer"
            nb, eid, tt, ok = g.neighbors(nodes, late, 8, strategy=strategy, generator=torch.Generator().manual_seed(1))
            n = g.num_events
            assert bool((eid[ok] >= 0).all()) and int(eid.max()) < 10**7
            assert bool((tt[:, :-1] >= tt[:, 1:])[ok[:, 1:]].all()), "most recent first"
            src, dst, t, e = g.events()
            assert src.numel() == dst.numel() == t.numel() == e.numel()
            g.seen_destinations(nodes[:16], late[:16])
    except BaseException as e:  # noqa: BLE001
        errors.append(repr(e))

threads = [threading.Thread(target=reader, args=(s,)) for s in ("recent", "uniform", "recent")]
for th in threads:
    th.start()
t0 = M0 // 4
for step in range(300):                       # many merges: levels are rebuilt and freed all the time
    m = 1 + step % 37
    g.append(torch.randint(0, V, (m,)), torch.randint(0, V, (m,)), torch.full((m,), t0 + step))
stop.set()
for th in threads:
    th.join()
assert not errors, errors[:3]
total = M0 + sum(1 + s % 37 for s in range(300))
assert g.num_events == total
ref = g.neighbors(nodes[:32], late[:32], 8, backend="reference")
for x, y in zip(g.neighbors(nodes[:32], late[:32], 8), ref):
    assert torch.equal(x, y)
"""

PARALLEL_APPENDS = """
g = hardneg.TemporalGraph(torch.tensor([0]), torch.tensor([1]), torch.tensor([0]), num_nodes=8)
def writer(i):
    for _ in range(50):
        g.append(torch.tensor([i]), torch.tensor([(i + 1) % 8]), torch.tensor([1]))
ths = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
[t.start() for t in ths]; [t.join() for t in ths]
assert g.num_events == 201 and g.edge_ids.unique().numel() == 201
"""

CASES = [("append while reading", BODY, None, None), ("appends from several threads", PARALLEL_APPENDS, None, None)]


def test_append_while_other_threads_read():
    results = run_cases(SETUP, CASES)
    for case in CASES:
        check(results, case)
