"""LiRA, the likelihood-ratio attack of Carlini et al. (2022), on the logit-scaled confidence
phi = log F_y - log(1 - F_y).

- online: per example, Gaussians fitted to phi under the reference models that trained on
  it (IN) and those that did not (OUT); score = log N(phi; mu_in, s_in^2) - log N(phi; mu_out, s_out^2);
- offline: OUT models only; score = log Pr[Z <= phi] with Z ~ N(mu_out, s_out^2) (one-sided:
  a member's phi is high);
- fixed variance: one standard deviation for all examples (the pooled within-example
  standard deviation of the IN, resp. OUT, fits) instead of each example's own; the
  choice of Carlini et al. when there are few reference models, and of ``lira`` and
  ``lira-offline`` below 64 of them (``lira-per-example`` keeps a variance per example).

These fits use the mean and the unbiased (ddof 1) standard deviation. The ``*-released``
variants follow the authors' released code instead (research/mi_lira_2021 in TensorFlow
Privacy), so that published numbers can be reproduced: the median of the reference
statistics, the standard deviation with ddof 0, every example's IN (OUT) statistics cut to
the smallest count any example has, offline scores two-sided (minus the OUT log-density), and
with fixed variance the standard deviation of all IN statistics for both Gaussians online (as
the released code has it) and of all OUT statistics offline.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from robustmia.privacy.attacks.base import AttackInputs, AttackScores
from robustmia.privacy.attacks.registry import register_attack

_EPS = 1e-30


def _masked_stats(values: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    count = mask.sum(0)
    mean = np.where(mask, values, 0).sum(0) / np.maximum(count, 1)
    var = np.where(mask, (values - mean) ** 2, 0).sum(0) / np.maximum(count - 1, 1)
    return mean, np.sqrt(var), count


def _std(per_example: np.ndarray, count: np.ndarray, fixed: bool) -> np.ndarray:
    if not fixed:
        return per_example + _EPS
    pooled = np.sqrt(np.sum(per_example**2 * np.maximum(count - 1, 0)) / max(np.sum(np.maximum(count - 1, 0)), 1))
    return np.full_like(per_example, pooled + _EPS)


FIXED_BELOW = 64  # reference models below which Carlini et al. fit one variance for all examples


def lira(inputs: AttackInputs, *, online: bool = True, fixed_variance: Optional[bool] = None, signal: str = "lira",
         sign: float = 1.0) -> AttackScores:
    """LiRA on ``signal`` (``sign`` makes higher mean member): the logit-scaled confidence by
    default; the white-box and verified-margin attacks calibrate their own signals the same way.
    ``fixed_variance`` None follows Carlini et al.: one variance for all examples below
    :data:`FIXED_BELOW` reference models (a per-example one is unstable with few), a variance per
    example from there on; the record says which ran."""
    from scipy.stats import norm

    phi = sign * inputs.target[signal].astype(np.float64)
    ref = sign * inputs.reference_matrix(signal).astype(np.float64)
    keep = inputs.keep
    k = len(ref)
    chosen = fixed_variance if fixed_variance is not None else k < FIXED_BELOW
    how = {"variance": ("fixed (one for all examples)" if chosen else "per example")
           + (f", chosen for {k} reference models (Carlini et al.: fixed below {FIXED_BELOW})" if fixed_variance is None else "")}
    fixed_variance = chosen
    mu_out, sd_out, n_out = _masked_stats(ref, ~keep)
    if (n_out < 2).any():
        raise ValueError("LiRA needs at least 2 OUT reference models for every example")
    sd_out = _std(sd_out, n_out, fixed_variance)
    if not online:
        return AttackScores(norm.logcdf(phi, mu_out, sd_out), details=how)
    mu_in, sd_in, n_in = _masked_stats(ref, keep)
    if (n_in < 2).any():
        raise ValueError("online LiRA needs at least 2 IN reference models for every example")
    sd_in = _std(sd_in, n_in, fixed_variance)
    return AttackScores(norm.logpdf(phi, mu_in, sd_in) - norm.logpdf(phi, mu_out, sd_out), details=how)


def _cut(ref: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(m, N): for every example, the statistics of the first m models (in model order) that ``mask``
    selects, m the smallest such count over the examples (the released code's truncation)."""
    m = int(mask.sum(0).min())
    order = np.argsort(~mask, axis=0, kind="stable")[:m]
    return np.take_along_axis(ref, order, axis=0)


def lira_released(inputs: AttackInputs, *, online: bool = True, fixed_variance: bool = False) -> AttackScores:
    """LiRA as the authors' released code computes it (see the module docstring)."""
    from scipy.stats import norm

    phi = inputs.target["lira"].astype(np.float64)
    ref = inputs.reference_matrix("lira").astype(np.float64)
    dat_out = _cut(ref, ~inputs.keep)
    if len(dat_out) < 2:
        raise ValueError("LiRA needs at least 2 OUT reference models for every example")
    mu_out = np.median(dat_out, 0)
    if not online:
        sd_out = np.std(dat_out) if fixed_variance else np.std(dat_out, 0)
        return AttackScores(-norm.logpdf(phi, mu_out, sd_out + _EPS))
    dat_in = _cut(ref, inputs.keep)
    if len(dat_in) < 2:
        raise ValueError("online LiRA needs at least 2 IN reference models for every example")
    mu_in = np.median(dat_in, 0)
    sd_in, sd_out = (np.std(dat_in), np.std(dat_in)) if fixed_variance else (np.std(dat_in, 0), np.std(dat_out, 0))
    return AttackScores(norm.logpdf(phi, mu_in, sd_in + _EPS) - norm.logpdf(phi, mu_out, sd_out + _EPS))


def register_lira(name: str, help: str, *, online: bool, fixed: Optional[bool], signal: str = "lira", sign: float = 1.0, **needs) -> None:
    """Register LiRA on ``signal`` as attack ``name``; ``needs`` as
    :class:`~robustmia.privacy.attacks.registry.AttackSpec`."""
    # the Gaussians are fitted to at least 2 OUT (and, online, 2 IN) models of every example
    register_attack(name, help=help, references=True, min_references=4, per_example=(2 if online else 0, 2), **needs)(
        lambda inputs, options: lira(inputs, online=online, fixed_variance=fixed, signal=signal, sign=sign))


register_lira("lira", f"LiRA (Carlini et al. 2022), online; one pooled variance below {FIXED_BELOW} reference models, a variance per "
              "example from there on", online=True, fixed=None, default=True)
register_lira("lira-offline", "LiRA offline (OUT models only); the variance chosen as lira's", online=False, fixed=None)
register_lira("lira-fixed", "LiRA online with one pooled variance", online=True, fixed=True)
register_lira("lira-offline-fixed", "LiRA offline with one pooled variance", online=False, fixed=True)
register_lira("lira-per-example", "LiRA online with a variance per example, however few the reference models", online=True, fixed=False)
register_lira("lira-offline-per-example", "LiRA offline with a variance per example", online=False, fixed=False)
for _name, _online, _fixed in (("lira-released", True, False), ("lira-offline-released", False, False),
                               ("lira-fixed-released", True, True), ("lira-offline-fixed-released", False, True)):
    register_attack(_name, help=f"{_name.removesuffix('-released')} as the authors' released code computes it (median, ddof 0"
                    f"{', two-sided' if not _online else ''})", references=True, min_references=4, per_example=(2 if _online else 0, 2))(
        lambda inputs, options, o=_online, f=_fixed: lira_released(inputs, online=o, fixed_variance=f))
