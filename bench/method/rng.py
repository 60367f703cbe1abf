"""One random stream per stochastic purpose of training (common random numbers).

Two variants trained with the same seed must draw the same random numbers wherever their
difference does not reach, so that their paired differences measure the variant and not the dice
(docs/method.md §8, bench.report.stats). A single global stream breaks that: a BP-Net head of another
shape draws another number of values and shifts every later draw. So each purpose gets its own
generator seeded from (seed, purpose[, step]) by a stable hash; a per-step stream (``step`` given)
also needs no checkpointing, as a resumed run recreates it.
"""

from __future__ import annotations

import hashlib
from contextlib import contextmanager
from typing import Iterator

import torch

PURPOSES = ("init", "motion_init", "bpnet", "view", "virtual_view", "split", "dgd")


def seed_of(seed: int, purpose: str, step: int | None = None) -> int:
    """A 63-bit seed, a pure function of (seed, purpose, step) on every machine and Python run."""
    if purpose not in PURPOSES:
        raise ValueError(f"random purpose {purpose!r}: unknown; known: {', '.join(PURPOSES)}")
    key = f"{int(seed)}/{purpose}/{'' if step is None else int(step)}"
    # sha256, not hash(): Python salts str hashes per process.
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little") >> 1


def generator(seed: int, purpose: str, step: int | None = None) -> torch.Generator:
    """A fresh CPU generator for ``purpose`` (one of PURPOSES), at ``step`` for per-step draws."""
    return torch.Generator().manual_seed(seed_of(seed, purpose, step))


@contextmanager
def global_stream(seed: int, purpose: str) -> Iterator[None]:
    """Run the block on the global CPU RNG seeded for ``purpose``, restoring the global state after.

    For code that draws from the global RNG without a generator argument (``nn.Module`` initialisers):
    what it draws, and how much, cannot shift any other purpose's stream.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed_of(seed, purpose))
        yield
