"""What every attack receives and returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np


@dataclass
class AttackInputs:
    """Signals of the target model and, where available, of K reference models.

    ``target``: signal name -> (N,) array on the N evaluation examples (``logits``: (N, C)).
    ``labels``: (N,) true labels. ``references``: one such dict per reference model and
    ``keep``: (K, N) bool, True where the example was in that reference model's training
    set. ``population`` / ``ref_population``: the same on population examples that are in
    no model's training set (RMIA's z)."""

    target: dict[str, np.ndarray]
    labels: np.ndarray
    references: Optional[list[dict[str, np.ndarray]]] = None
    keep: Optional[np.ndarray] = None
    population: Optional[dict[str, np.ndarray]] = None
    ref_population: Optional[list[dict[str, np.ndarray]]] = None

    def reference_matrix(self, signal: str) -> np.ndarray:
        """(K, N) array of one signal over the reference models."""
        if not self.references:
            raise ValueError("this attack needs reference models")
        return np.stack([r[signal] for r in self.references])


@dataclass(frozen=True)
class AttackOptions:
    """How an attack is asked to decide: ``selection`` of a threshold attack's threshold (``oracle``: the metrics
    pick it on the truth; ``shadow``: the attack picks it on reference models), and one threshold ``per_class``.
    Attacks never receive the truth of the examples they score."""

    selection: str = "oracle"
    per_class: bool = False


@dataclass
class AttackScores:
    """Scores (higher = member) and, for threshold attacks, the decision threshold:
    ``None`` means the metrics pick the oracle threshold on the scores themselves (one per group of ``oracle_groups``
    where given); ``details``: what the record should say about how they were made."""

    scores: np.ndarray
    threshold: Optional[float] = None
    threshold_selection: str = "oracle"
    details: dict = field(default_factory=dict)  # how the attack decided (e.g. LiRA's variance), into its record
    oracle_groups: Optional[np.ndarray] = None  # (N,): the metrics pick one oracle threshold per group (per-class thresholds)
