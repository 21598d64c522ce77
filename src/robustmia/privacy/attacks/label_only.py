"""Label-only attacks (Choquette-Choo et al. 2021; Li & Zhang 2021): the attacker sees only the
predicted label, and robust training moves exactly what it reads, the distance of members to
the decision boundary. Each is a threshold attack on one probe signal (privacy.probes), higher
meaning member: the boundary distance in L-inf and L2, and the fractions of random and of
adversarial perturbations within eps that keep the label. The query budget is the probe's
(``ProbeSettings.queries``) and is recorded with each result.
"""

from __future__ import annotations

from robustmia.privacy.attacks.threshold import register_threshold

LABEL_ONLY = {
    "label-boundary": ("boundary_linf", "boundary-linf", "the L-inf distance to the decision boundary (bisection over PGD radii)"),
    "label-boundary-l2": ("boundary_l2", "boundary-l2", "the L2 distance to the decision boundary (bisection over L2 PGD radii)"),
    "label-noise": ("keep_noise", "label-keep", "the fraction of random perturbations within eps that keep the label"),
    "label-adv": ("keep_adv", "label-keep", "the fraction of PGD perturbations (random starts) within eps that keep the label"),
}

for _name, (_signal, _probe, _what) in LABEL_ONLY.items():
    register_threshold(_name, _signal, 1.0, f"label-only: threshold on {_what}", probes=(_probe,), family="label-only")
