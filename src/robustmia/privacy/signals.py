"""Per-example signals computed from a model's outputs only (black-box).

From logits ``z`` and labels ``y`` (in float64, stably):

- ``confidence``: the true-class probability F_y(x) (the paper's Eq. 5);
- ``loss``: cross-entropy, -log F_y(x);
- ``entropy``: -sum_i F_i log F_i;
- ``mentropy``: modified entropy (Song & Mittal, 2021),
  -(1 - F_y) log F_y - sum_{i != y} F_i log(1 - F_i);
- ``lira``: the logit-scaled confidence of LiRA, log F_y - log(sum_{j != y} F_j)
  = z_y - logsumexp_{j != y} z_j.

With an attack, the same signals on PGD-perturbed inputs get the prefix ``adv_``, and
``loss_increase`` = adv_loss - loss. The model is always evaluated in eval mode: BatchNorm
statistics are never touched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from torch import nn

from robustmia.data.datasets import ImageSet
from robustmia.models.inference import logits_of

def _log_complement(z: torch.Tensor, logp: torch.Tensor) -> torch.Tensor:
    """log(1 - F_i) for every class: log1p(-F_i) where F_i <= 1/2, and for the top class
    (the only one that can exceed 1/2) logsumexp of the other logits minus logsumexp of all."""
    out = torch.log1p(-logp.exp().clamp(max=0.5))
    top = z.argmax(1, keepdim=True)
    others = z.scatter(1, top, float("-inf")).logsumexp(1, keepdim=True) - z.logsumexp(1, keepdim=True)
    return out.scatter(1, top, others)


def signals_from_logits(logits: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray) -> dict[str, np.ndarray]:
    z = torch.as_tensor(logits, dtype=torch.float64)
    y = torch.as_tensor(labels, dtype=torch.long).view(-1, 1)
    logp = torch.log_softmax(z, dim=1)
    p = logp.exp()
    log1m = _log_complement(z, logp)
    logp_y, log1m_y = logp.gather(1, y).squeeze(1), log1m.gather(1, y).squeeze(1)
    others = torch.ones_like(p, dtype=torch.bool).scatter(1, y, False)
    mentropy = -(log1m_y.exp() * logp_y) - torch.where(others, p * log1m, torch.zeros_like(p)).sum(1)
    lira = z.gather(1, y).squeeze(1) - z.scatter(1, y, float("-inf")).logsumexp(1)
    return {
        "confidence": logp_y.exp().numpy(),
        "loss": (-logp_y).numpy(),
        "entropy": (-(torch.where(p > 0, p * logp, torch.zeros_like(p))).sum(1)).numpy(),
        "mentropy": mentropy.numpy(),
        "lira": lira.numpy(),
    }


def signals_from_probs(probs: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """The same signals from probabilities given as probabilities (a predictions file's ``probs``),
    computed from them as they are: ``confidence`` is exactly the given F_y, so ties stay ties.
    Logarithms of zero are taken at 1e-300 (a loss of 690.8), so every signal is finite."""
    p = np.asarray(probs, dtype=np.float64)
    rows = np.arange(len(p))
    y = np.asarray(labels, dtype=np.int64)
    log = lambda v: np.log(np.maximum(v, 1e-300))  # noqa: E731
    p_y = p[rows, y]
    others = p.copy()
    others[rows, y] = 0.0
    entropy = -np.sum(np.where(p > 0, p * log(p), 0.0), axis=1)
    mentropy = -(1 - p_y) * log(p_y) - np.sum(np.where(others > 0, others * log(1 - others), 0.0), axis=1)
    return {"confidence": p_y, "loss": -log(p_y), "entropy": entropy, "mentropy": mentropy,
            "lira": log(p_y) - log(others.sum(1)), "logits": log(p).astype(np.float32)}


def model_signals(model: nn.Module, data: ImageSet, *, perturbation: Optional[Any] = None, batch_size: int = 500,
                  cache: Optional[Path] = None) -> dict[str, np.ndarray]:
    """All signals of ``model`` on ``data`` (plus ``logits``); with a ``perturbation``
    (robust.evaluate.Perturbation), also on its PGD points, which ``cache`` (a folder) shares
    with the model's evaluation (robust.evaluate.perturbed_logits)."""
    logits = logits_of(model, data.images, batch_size)
    out = {"logits": logits.numpy().astype(np.float32), **signals_from_logits(logits, data.labels)}
    if perturbation is not None:
        from robustmia.robust.evaluate import perturbed_logits

        adv = perturbed_logits(model, data, perturbation, batch_size=batch_size, cache=cache)
        out.update({f"adv_{k}": v for k, v in signals_from_logits(adv, data.labels).items()})
        out["loss_increase"] = out["adv_loss"] - out["loss"]
    return out
