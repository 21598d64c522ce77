"""Canaries: candidate examples that a fair coin puts in a run's training set or leaves out, one coin each,
for a one-run DP audit (privacy.dp_audit; Steinke, Nasr & Jagielski 2023).

A run whose config names ``canaries`` trains on its members (the fixed base set of its split) plus the
canaries whose coins came up heads. The ``count`` candidates are, by ``kind``:

- ``natural``: images of the train split outside the members (its pool), as they are;
- ``mislabelled``: the same images, each with a label drawn uniformly from the other classes;
- ``noise``: images of uniform random pixels, each with a random label (example ids in split 2).

Everything (which images, their labels, the coins) follows from the run's seed and the canaries' own
``seed``, so the audit draws exactly what training drew. Validated without numerical libraries.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

KINDS = ("natural", "mislabelled", "noise")
NOISE_SPLIT = 2  # the split number in the ids of generated (noise) canaries


class Canaries(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    count: int = Field(default=500, ge=2, le=10**7)
    kind: Literal["natural", "mislabelled", "noise"] = "natural"
    seed: int = Field(default=0, ge=0, le=2**63 - 1)


def draw(canaries: Canaries, train_set: Any, pool: Any, num_classes: int, run_seed: int) -> tuple[Any, Any]:
    """``(candidates, coins)``: the ImageSet of the ``count`` candidates and their fair coins ((count,) bool).
    ``pool`` holds the train-split indices outside the members (the split's ``pool_train``)."""
    import numpy as np
    import torch

    from robustmia.data.datasets import ImageSet, example_ids
    from robustmia.errors import UserError
    from robustmia.seeding import derive_seed

    rng = np.random.default_rng(derive_seed(run_seed, 11, canaries.seed))
    n = canaries.count
    if canaries.kind == "noise":
        shape = tuple(train_set.images.shape[1:])
        images = torch.from_numpy(rng.random((n, *shape), dtype=np.float32))
        labels = torch.from_numpy(rng.integers(0, num_classes, n).astype(np.int64))
        chosen = ImageSet(images, labels, example_ids(n, NOISE_SPLIT))
    else:
        if n > len(pool):
            raise UserError(f"{n} {canaries.kind} canaries are drawn from the train split's images outside the members, but there "
                            f"are {len(pool)}; ask for fewer canaries, a smaller train_size, or noise canaries")
        chosen = train_set.subset(np.sort(rng.permutation(np.asarray(pool))[:n]))
        if canaries.kind == "mislabelled":
            shift = torch.from_numpy(rng.integers(1, num_classes, n).astype(np.int64))
            chosen = ImageSet(chosen.images, (chosen.labels + shift) % num_classes, chosen.ids)
    coins = rng.random(n) < 0.5
    return chosen, coins


def included(candidates: Any, coins: Any) -> Any:
    """The candidates whose coins came up heads (the ones the run trains on)."""
    import numpy as np

    return candidates.subset(np.flatnonzero(coins))
