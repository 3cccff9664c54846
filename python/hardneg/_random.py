"""Where randomness comes from: the caller's ``torch.Generator`` only.

Ops draw one seed from it (:func:`seed_from`) and kernels key Philox streams by (seed, row, draw). Torch-side
draws (samplers, references, adapters) go through :func:`uniform` (or draw on :func:`generator_device` and
move), so a generator on any device can serve inputs on any device. Without a generator every draw comes from
torch's default CPU generator, whatever the device of the data, so ``torch.manual_seed`` alone reproduces a run.
"""
from __future__ import annotations

import torch

SEED_HIGH = 2**63 - 1  # seeds are drawn in [0, SEED_HIGH): 63 bits, a valid uint64 and int64 on every side


def generator_device(generator: torch.Generator | None) -> torch.device:
    """The device a draw from ``generator`` happens on (the CPU for None: torch's default generator)."""
    return generator.device if generator is not None else torch.device("cpu")


def seed_from(generator: torch.Generator | None, high: int = SEED_HIGH) -> int:
    """A seed in [0, high) drawn from ``generator`` (or torch's default CPU generator): one ``randint``."""
    return int(torch.randint(0, high, (1,), generator=generator, device=generator_device(generator)).item())


def uniform(shape, generator: torch.Generator | None, device, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Uniform [0, 1) of ``shape`` drawn from ``generator`` on its own device, returned on ``device``."""
    return torch.rand(shape, generator=generator, device=generator_device(generator), dtype=dtype).to(device)
