"""RobustBench's zoo as a kind of target (experiments.targets): ``--arch robustbench:NAME`` with ``--threat-model``
and the dataset, its checkpoint in RobustBench's layout (models.robustbench builds it offline and reads its weights).

What is RobustBench's own lives here and in models.robustbench: the threat model its network is built for, the
attacks it gets unless told (none retrains its recipe: nobody can repeat a 50M-image one; LiRA and RMIA join them
when a reference recipe is given, with the warning that says how it differs), the leaderboard's eps (8/255 for
L-infinity unless its training eps is stated) and what the leaderboard says of it, into its provenance.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from robustmia.experiments.external import ExternalModel


class RobustBenchModel(ExternalModel):
    """A RobustBench model (the module docstring): a model trained elsewhere that embeds its own normalisation."""

    def _build(self, weights: Path, device: Any, arch_args: Optional[dict[str, Any]] = None) -> Any:
        return super()._build(weights, device, {**self.spec.arch_args, "threat_model": self.spec.threat_model})

    def default_attacks(self) -> Optional[list[str]]:
        from robustmia.models.robustbench import DEFAULT_ATTACKS, REFERENCE_ATTACKS

        return list(DEFAULT_ATTACKS) + (list(REFERENCE_ATTACKS) if self.reference_recipe else [])

    def provenance(self, population: Optional[int] = None) -> dict[str, Any]:
        about = super().provenance(population)
        about["external"]["normalize"] = "the model's own (RobustBench models embed their normalisation; robustmia adds none)"
        return about

    def leaderboard(self) -> dict[str, Any]:
        t = self.spec
        return {"robustbench": {"name": t.robustbench, "threat_model": t.threat_model, **t.leaderboard}}
