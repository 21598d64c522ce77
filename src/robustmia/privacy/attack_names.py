"""The attacks' names, importable without numerical libraries (for fast spec validation)."""

THRESHOLD_NAMES = ("confidence", "loss", "entropy", "modified-entropy")
ADVERSARIAL_NAMES = tuple(f"adv-{n}" for n in THRESHOLD_NAMES) + ("loss-increase",)
REFERENCE_NAMES = ("lira", "lira-offline", "lira-fixed", "lira-offline-fixed", "rmia", "rmia-offline", "shadow")
ATTACKS = (*THRESHOLD_NAMES, *ADVERSARIAL_NAMES, *REFERENCE_NAMES)
