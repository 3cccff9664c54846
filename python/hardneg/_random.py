"""Where randomness comes from: the caller's ``torch.Generator`` only.

Ops draw one seed from it (:func:`seed_from`) and kernels key Philox streams by (seed, row, draw). Torch-side
draws (samplers, references, adapters) go through :func:`uniform` (or draw on :func:`generator_device` and
move), so a generator on any device can serve inputs on any device. Without a generator every draw comes from
torch's default CPU generator, whatever the device of the data, so ``torch.manual_seed`` alone reproduces a run.
"""
from __future__ import annotations

import torch

SEED_HIGH = 2**63 - 1  # seeds are drawn in [0, SEED_HIGH): 63 bits, a valid uint64 and int64 on every side


#: the golden-ratio increment of the sub-seeds of a :class:`SeedStream` (any odd 63-bit constant would do)
_STRIDE = 0x1E3779B97F4A7C15


class SeedStream:
    """An integer seed standing in for a ``torch.Generator`` where a generator cannot go: in ``torch.compile``d
    code (``Sampler.sample(..., seed=s)``). Draw i of the stream uses the sub-seed sᵢ = (s + i·c) mod 2⁶³ and
    gives exactly what the same call gives with ``generator=torch.Generator().manual_seed(sᵢ)``, eagerly and
    compiled alike (the random ops take sᵢ as their explicit ``seed``; torch-side uniforms come from one
    ``hardneg::draw`` custom op). ``seed`` may be a Python int or, inside a compiled function, a SymInt."""

    __slots__ = ("seed", "count")

    def __init__(self, seed):
        self.seed, self.count = seed, 0

    def next(self):
        """The next sub-seed (an int in [0, 2⁶³); a SymInt when the seed is one)."""
        i = self.count
        self.count = i + 1
        return (self.seed + i * _STRIDE) % (SEED_HIGH + 1)

    def initial_seed(self):
        """The base seed (as ``torch.Generator.initial_seed``: for seeding networks without drawing)."""
        return self.seed

    def __repr__(self):
        return f"SeedStream(seed={self.seed}, draws={self.count})"


def generator_device(generator) -> torch.device:
    """The device a draw from ``generator`` happens on (the CPU for None: torch's default generator)."""
    return generator.device if isinstance(generator, torch.Generator) else torch.device("cpu")


def as_generator(generator):
    """A ``torch.Generator`` (or None) for an op that draws from it directly: a :class:`SeedStream` becomes
    ``torch.Generator().manual_seed(next sub-seed)``, what the op's custom op does with that seed."""
    if isinstance(generator, SeedStream):
        return torch.Generator().manual_seed(generator.next())
    return generator


def seed_from(generator, high: int = SEED_HIGH) -> int:
    """A seed in [0, high) drawn from ``generator`` (or torch's default CPU generator): one ``randint``. From a
    :class:`SeedStream`, what ``torch.Generator().manual_seed(next sub-seed)`` would give."""
    generator = as_generator(generator)
    return int(torch.randint(0, high, (1,), generator=generator, device=generator_device(generator)).item())


def uniform(shape, generator, device, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Uniform [0, 1) of ``shape`` drawn from ``generator`` on its own device, returned on ``device`` (from a
    :class:`SeedStream`: the ``hardneg::draw`` custom op, on the CPU, traceable)."""
    if isinstance(generator, SeedStream):
        return _draw(list(shape), generator.next(), dtype, False).to(device)
    return torch.rand(shape, generator=generator, device=generator_device(generator), dtype=dtype).to(device)


def normal(shape, generator, device, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Standard normal of ``shape`` drawn from ``generator`` on its own device, returned on ``device`` (from a
    :class:`SeedStream`: the ``hardneg::draw`` custom op, on the CPU)."""
    if isinstance(generator, SeedStream):
        return _draw(list(shape), generator.next(), dtype, True).to(device)
    return torch.randn(shape, generator=generator, device=generator_device(generator), dtype=dtype).to(device)


def permutation(n: int, generator, device) -> torch.Tensor:
    """A uniform random permutation of ``0..n-1`` (int64, ``torch.randperm``) drawn from ``generator`` on its own
    device, returned on ``device`` (from a :class:`SeedStream`: the ``hardneg::permutation`` custom op, on the
    CPU, traceable). A tenth of the time of sorting n uniforms at n ~ 2,000 (fresh keys are slow to sort)."""
    if isinstance(generator, SeedStream):
        return _permutation(n, generator.next()).to(device)
    return torch.randperm(n, generator=generator, device=generator_device(generator)).to(device)


@torch.library.custom_op("hardneg::permutation", mutates_args=())
def _permutation(n: int, seed: int) -> torch.Tensor:
    """``torch.randperm(n)`` from ``torch.Generator().manual_seed(seed)``, on the CPU: the traceable form of
    :func:`permutation`."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))


@_permutation.register_fake
def _(n, seed):
    return torch.empty(n, dtype=torch.int64)


@torch.library.custom_op("hardneg::draw", mutates_args=())
def _draw(shape: list[int], seed: int, dtype: torch.dtype, normal: bool) -> torch.Tensor:
    """``torch.rand`` (``normal=False``) or ``torch.randn`` of ``shape`` from
    ``torch.Generator().manual_seed(seed)``, on the CPU: the traceable form of :func:`uniform` / :func:`normal`."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=dtype) if normal else torch.rand(shape, generator=g, dtype=dtype)


@_draw.register_fake
def _(shape, seed, dtype, normal):
    return torch.empty(shape, dtype=dtype)


def compile_seed(op: str, generator):
    """The explicit seed a custom op takes in place of ``generator`` inside ``torch.compile`` (the next sub-seed
    of a :class:`SeedStream`); TypeError for anything else (a ``torch.Generator`` cannot be traced)."""
    if isinstance(generator, SeedStream):
        return generator.next()
    raise TypeError(f"{op}: under torch.compile the randomness must come from an explicit seed (e.g. "
                    f"Sampler.sample(..., seed=s)); a {type(generator).__name__} cannot be traced")
