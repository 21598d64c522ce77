"""Attacks that read the model's weights: per-example gradient norms (members sit where the loss
is flat, so their gradients are small; Nasr et al. 2019) and, for models the certified bounds
handle, the verified margin, the certified lower bound of f_y - max_j f_j over the eps-ball
(Song, Shokri & Mittal, CCS 2019, whose attack on certified models reads their verified
worst-case behaviour). Each has a threshold attack and a LiRA-style calibration against the
reference models (lira.lira on its signal); the per-layer gradient norms feed a shadow-model
classifier trained on the reference models.
"""

from __future__ import annotations

import numpy as np

from robustmia.privacy.attacks.base import AttackInputs, AttackScores
from robustmia.privacy.attacks.lira import register_lira
from robustmia.privacy.attacks.registry import register_attack
from robustmia.privacy.attacks.shadow import shokri
from robustmia.privacy.attacks.threshold import register_threshold

_GRAD = {"probes": ("gradients",), "family": "white-box"}
_VERIFIED = {"probes": ("verified-margin",), "family": "verified", "certified": True}

register_threshold("grad-norm", "grad_norm", -1.0, "white-box: threshold on the norm of the per-example parameter gradient", **_GRAD)
register_threshold("input-grad-norm", "input_grad_norm", -1.0, "white-box: threshold on the norm of the loss's input gradient", **_GRAD)
register_lira("grad-norm-lira", "white-box: LiRA online on the log parameter-gradient norm", online=True, fixed=None,
              signal="log_grad_norm", sign=-1.0, **_GRAD)
register_threshold("verified-margin", "verified_margin", 1.0, "certified models: threshold on the verified worst-case margin", **_VERIFIED)
register_lira("verified-margin-lira", "certified models: LiRA online on the verified margin", online=True, fixed=None,
              signal="verified_margin", **_VERIFIED)
register_lira("verified-margin-lira-offline", "certified models: LiRA offline on the verified margin", online=False, fixed=None,
              signal="verified_margin", **_VERIFIED)


def _layer_features(signals: dict[str, np.ndarray], labels: np.ndarray) -> np.ndarray:
    layers = sorted(k for k in signals if k.startswith("grad_norm__"))
    return np.log(np.column_stack([signals[k] for k in layers]) + 1e-30)


@register_attack("grad-norm-layers", help="white-box: a classifier on the per-layer gradient norms, trained on the reference models",
                 references=True, **_GRAD)
def grad_norm_layers(inputs: AttackInputs, options=None) -> AttackScores:
    return shokri(inputs, features=_layer_features)
