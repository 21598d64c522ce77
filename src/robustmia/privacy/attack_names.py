"""The attacks' names, importable without numerical libraries (for fast spec validation)."""

THRESHOLD_NAMES = ("confidence", "loss", "entropy", "modified-entropy")
ADVERSARIAL_NAMES = tuple(f"adv-{n}" for n in THRESHOLD_NAMES) + ("loss-increase",)
REFERENCE_NAMES = ("lira", "lira-offline", "lira-fixed", "lira-offline-fixed", "rmia", "rmia-offline", "shadow")
ATTACKS = (*THRESHOLD_NAMES, *ADVERSARIAL_NAMES, *REFERENCE_NAMES)

PER_EXAMPLE_VARIANCE = ("lira", "lira-offline")  # fit a variance per example from the IN / OUT models


def check_references(attacks: list[str], references: int) -> None:
    """Raise ValueError if the attacks need more reference models than ``references``."""
    needs = [a for a in attacks if a in PER_EXAMPLE_VARIANCE]
    if needs and references < 4:
        raise ValueError(f"{', '.join(needs)} fit a variance per example and need references >= 4 "
                         "(2 IN and 2 OUT models per example); use more references or lira-fixed")
