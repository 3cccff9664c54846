"""Shared fixtures for the filtering family's tests: random KGs with heavy duplication, and brute force."""
import torch


def random_kg(seed, E=30, R=4, M=400, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    tr = torch.stack([torch.randint(0, E, (M,), generator=g), torch.randint(0, R, (M,), generator=g),
                      torch.randint(0, E, (M,), generator=g)], 1)
    tr = torch.cat([tr, tr[: M // 5]])  # duplicates in the input
    return tr.to(device), E, R


def brute_set(tr):
    return set(map(tuple, tr.tolist()))
