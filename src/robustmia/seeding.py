"""Seeded randomness: every random number robustmia draws comes from a seed through here.

- :func:`derive_seed` turns a tuple of integers (a run's seed, a purpose, an index) into an
  independent seed;
- :func:`epoch_generator` is the generator of one training epoch (data order,
  augmentation, random starts), so a resumed run draws what an uninterrupted one drew;
- a :data:`Draw` makes random numbers of a shape; :func:`generator_draw` is the draw of
  one generator. Training passes its own draws to the attacks, so that data-parallel
  shards and stacked models draw exactly what one process would.
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np
import torch

# draw(fn, shape, device): random numbers of ``shape`` made by ``fn`` (torch.rand, torch.randn) on
# ``device``, one row per example
Draw = Callable[[Callable[..., torch.Tensor], tuple[int, ...], torch.device], torch.Tensor]


def derive_seed(*parts: int) -> int:
    """An independent 32-bit seed for the purpose named by ``parts``."""
    return int(np.random.SeedSequence(list(parts)).generate_state(1)[0])


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    state = np.random.SeedSequence([seed, epoch]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def generator_draw(generator: Optional[torch.Generator]) -> Draw:
    """The :data:`Draw` of one generator: its numbers are made on its own device, then moved."""

    def draw(fn, shape, device: torch.device) -> torch.Tensor:
        return fn(shape, generator=generator, device=generator.device if generator is not None else device).to(device)

    return draw


def per_example_draw(seed: int, ids: torch.Tensor) -> Draw:
    """A :data:`Draw` whose row i comes from example ``ids[i]``'s own generator (seeded by ``seed``
    and the id), so that an example draws the same numbers whichever batch it is in."""
    generators = [torch.Generator().manual_seed(derive_seed(seed, int(i))) for i in ids]

    def draw(fn, shape, device: torch.device) -> torch.Tensor:
        if shape[0] != len(generators):
            raise ValueError(f"a per-example draw of {len(generators)} rows was asked for {shape[0]}")
        return torch.cat([fn((1, *shape[1:]), generator=g) for g in generators]).to(device)

    return draw
