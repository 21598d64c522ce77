"""A file of a black-box model's predictions, for auditing models trained elsewhere.

``FILE.npz`` holds ``labels`` (N,) integer classes, ``member`` (N,) bool truth, and either
``probs`` (N, C) probabilities (scored as given) or ``logits`` (N, C). Members and
non-members may be unbalanced (inference accuracy is balanced). It is read with
``allow_pickle=False`` and checked in full before any number is computed: each problem is
one clear line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from robustmia.errors import UserError
from robustmia.io import read_npz

PROB_SUM_TOLERANCE = 1e-3  # each row of probs must sum to 1 within this


def load_predictions(path: str | Path) -> tuple[str, np.ndarray, np.ndarray, np.ndarray]:
    """Return ``(kind, scores, labels, member)``: ``kind`` is ``probs`` or ``logits`` as the file
    holds them (probabilities are scored as given, never passed through log and softmax)."""
    path = Path(path)
    found = read_npz(path, "the predictions file", "save labels, member and probs (or logits) with numpy.savez")
    names = set(found)
    missing = [k for k in ("labels", "member") if k not in names]
    if ("probs" in names) == ("logits" in names):
        missing.append("probs or logits (exactly one)")
    if missing:
        raise UserError(f"{path} lacks the array(s) {', '.join(missing)}; it holds: {', '.join(sorted(names)) or 'nothing'}")
    arrays = {k: found[k] for k in ("labels", "member", "probs", "logits") if k in names}
    labels, member = arrays["labels"], arrays["member"]
    kind = "probs" if "probs" in arrays else "logits"
    scores = arrays[kind]
    if scores.ndim != 2 or scores.shape[1] < 2:
        raise UserError(f"{path}: {kind} must have shape (N, C) with C >= 2, got {scores.shape}")
    n, c = scores.shape
    if n == 0:
        raise UserError(f"{path}: {kind} has no rows; save the predictions of at least one member and one non-member")
    for name, a in (("labels", labels), ("member", member)):
        if a.shape != (n,):
            raise UserError(f"{path}: {name} has shape {a.shape} but {kind} has {n} rows; all must have the same length N")
    if not np.issubdtype(scores.dtype, np.number) or not np.isfinite(scores).all():
        raise UserError(f"{path}: {kind} contains NaN, infinite or non-numeric values")
    if not np.issubdtype(labels.dtype, np.integer):
        if not (np.issubdtype(labels.dtype, np.floating) and np.isfinite(labels).all() and np.all(labels == np.round(labels))):
            raise UserError(f"{path}: labels must be integers")
        labels = labels.astype(np.int64)
    if labels.min() < 0 or labels.max() >= c:
        raise UserError(f"{path}: labels must lie in [0, {c}) for {c} classes; found {labels.min()}..{labels.max()}")
    if member.dtype != bool:
        if not np.isin(member, (0, 1)).all():
            raise UserError(f"{path}: member must be boolean (or 0/1)")
        member = member.astype(bool)
    if member.all() or not member.any():
        raise UserError(f"{path}: member must mark at least one member and one non-member")
    if kind == "probs":
        if (scores < 0).any():
            raise UserError(f"{path}: probs has negative values")
        worst = float(np.abs(scores.sum(1) - 1).max())
        if worst > PROB_SUM_TOLERANCE:
            raise UserError(f"{path}: probs rows must sum to 1 (tolerance {PROB_SUM_TOLERANCE}); one is off by {worst:.3g}")
    return kind, scores.astype(np.float64), labels.astype(np.int64), member
