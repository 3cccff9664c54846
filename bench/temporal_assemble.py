"""Benchmark temporal_assemble on Wikipedia (../shared/data/temporal/wikipedia): the batch a TGN / TGAT
attention layer reads (the leak-free lookup plus float32 time deltas to each query's time, one compiled call),
against the vectorised numpy ``searchsorted`` lookup plus the same deltas. Streaming (788 calls of 400
queries, as a TGN replay) and bulk (314,948 queries in one call). The data, the workloads and both providers
are those of ``bench/temporal_neighbors.py``, which times the plain lookup; this entry makes the assembly's
own baseline the ratio's denominator.

    python bench/temporal_assemble.py [--quick] [--device cpu]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _harness import Provider, main  # noqa: E402
from temporal_neighbors import configs as _lookup_configs, numpy_assemble, ours_assemble  # noqa: E402

PROVIDERS = [
    Provider("hardneg cpu", ours_assemble, devices=("cpu",)),
    Provider("hardneg cuda", ours_assemble, devices=("cuda",)),
    Provider("numpy searchsorted + dt", numpy_assemble, devices=("cpu",), baseline=True),
]


def configs(quick):
    return [c for c in _lookup_configs(quick) if c.params["mode"] != "build"]


if __name__ == "__main__":
    main("temporal_assemble", configs, PROVIDERS)
