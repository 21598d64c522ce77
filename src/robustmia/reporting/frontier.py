"""The privacy-robustness-accuracy frontier of a study (``frontier: true`` in its spec): every
target as a point, adversarial test accuracy against membership leakage, clean test accuracy
as colour, 95% bootstrap intervals as error bars, and the Pareto set (no other target is at
least as robust and leaks at most as much, better in one) marked.

Leakage is LiRA's TPR at 1% FPR (one fixed attack for every target, so picking the best attack
per target does not bias the comparison; the confidence attack where LiRA was not run), and,
in a second panel, the paper's inference accuracy of the confidence attack (oracle threshold).
DP targets also carry the accountant's epsilon, and every DP target with a one-run DP audit
(experiments.dp_audit) is checked for soundness: no attack's valid lower bound may exceed it (else the
report shows a bug). The descriptive one-run epsilon figure of an ordinary audit bounds no DP guarantee
and never raises that warning.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from robustmia.reporting.dp_audits import best
from robustmia.reporting.tables import find_record, with_ci

LEVEL = "0.01"
KEYS = {"tpr": "tpr_at_fpr_0.01", "acc": "inference_accuracy"}  # the two leakage axes, as the records name them
COLUMNS = ["target", "method", "eps", "DP epsilon", "test acc", "adv-test acc", "leakage attack", "TPR@1%FPR",
           "inference acc (confidence)", "on the frontier"]


def points(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One point per target with an adversarial test accuracy and a leakage attack."""
    out = []
    for r in results:
        e = r.get("evaluation", {})
        conf = find_record(r["attacks"], "confidence", "oracle")
        leak = find_record(r["attacks"], "lira", "oracle") or conf
        if e.get("adv_test_accuracy") is None or leak is None:
            continue
        out.append({"name": r["name"], "method": r["config"]["method"], "eps": r["config"].get("eps", 0.0), "dp": r.get("dp"),
                    "robust": e["adv_test_accuracy"], "clean": e.get("test_accuracy"), "leak": leak, "conf": conf})
    return out


def pareto(pts: list[dict[str, Any]], key: str = "tpr") -> list[bool]:
    """Whether each point is on the frontier: no other is at least as robust and leaks at most as much, better in one."""
    def leak(p):
        return p["leak"]["tpr_at_fpr"][LEVEL] if key == "tpr" else p["conf"]["inference_accuracy"]

    flags = []
    for p in pts:
        dominated = any(q is not p and q["robust"] >= p["robust"] and leak(q) <= leak(p) and (q["robust"] > p["robust"] or leak(q) < leak(p))
                        for q in pts if key == "tpr" or q["conf"] is not None)
        flags.append(not dominated)
    return flags


def frontier_table(results: list[dict[str, Any]]) -> tuple[list[str], list[list[str]], str]:
    pts = points(results)
    rows = []
    for p, on in zip(pts, pareto(pts)):
        dp = f"{p['dp']['epsilon']:.2f} (delta {p['dp']['delta']:g})" if p["dp"] else ""
        rows.append([p["name"], p["method"], f"{p['eps']:.4g}" if p["eps"] else "-", dp, f"{100 * p['clean']:.2f}",
                     f"{100 * p['robust']:.2f}", p["leak"]["attack"], with_ci(p["leak"], KEYS["tpr"]),
                     with_ci(p["conf"], KEYS["acc"]) if p["conf"] else "", "yes" if on else ""])
    caption = ("The privacy-robustness-accuracy frontier: adversarial test accuracy (PGD at each target's eps) against "
               "LiRA's TPR at 1% FPR (%, 95% bootstrap CI); 'on the frontier': no other target is at least as robust and "
               "leaks at most as much, better in one")
    return COLUMNS, rows, caption


def _error(a: dict[str, Any], key: str) -> tuple[float, float, float]:
    v = a["tpr_at_fpr"][LEVEL] if key == "tpr" else a["inference_accuracy"]
    ci = a["ci95"].get(KEYS[key], [v, v])
    return 100 * v, 100 * (v - ci[0]), 100 * (ci[1] - v)


def frontier_figure(results: list[dict[str, Any]], folder: Path, save) -> list[Path]:
    """``frontier``: two panels (TPR at 1% FPR; inference accuracy) against adversarial test accuracy."""
    import matplotlib.pyplot as plt

    pts = points(results)
    if len(pts) < 2:
        return []
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
    for ax, key, label in ((axes[0], "tpr", "TPR at 1% FPR (%), LiRA"), (axes[1], "acc", "inference accuracy (%), confidence attack")):
        shown = [p for p in pts if key == "tpr" or p["conf"] is not None]
        on = pareto(shown, key)
        for p, front in zip(shown, on):
            y, lo, hi = _error(p["leak"] if key == "tpr" else p["conf"], key)
            ax.errorbar(100 * p["robust"], y, yerr=[[lo], [hi]], fmt="none", ecolor="0.6", lw=1, zorder=1)
            dot = ax.scatter(100 * p["robust"], y, c=[100 * (p["clean"] or 0)], cmap="viridis", vmin=0, vmax=100, s=60 if front else 30,
                             edgecolors="red" if front else "none", linewidths=1.5, zorder=2)
            ax.annotate(p["name"], (100 * p["robust"], y), fontsize=7, xytext=(4, 3), textcoords="offset points")
        front_pts = sorted((p for p, f in zip(shown, on) if f), key=lambda p: p["robust"])
        if len(front_pts) > 1:
            ax.plot([100 * p["robust"] for p in front_pts], [_error(p["leak"] if key == "tpr" else p["conf"], key)[0] for p in front_pts],
                    color="red", lw=1, ls="--", zorder=0, label="Pareto set")
            ax.legend(fontsize=8, loc="upper left")
        if key == "tpr":
            ax.axhline(1.0, color="0.5", lw=0.8, ls=":")  # TPR = FPR: no leakage beyond chance
        ax.set_xlabel("adversarial test accuracy (%)")
        ax.set_ylabel(label)
    fig.colorbar(dot, ax=axes, label="clean test accuracy (%)")
    return save(fig, folder, "frontier", tight=False)


def soundness(r: dict[str, Any]) -> list[str]:
    """For a DP target with a one-run DP audit: its statement over all attacks (reporting.dp_audits.best: family-wise
    where the records carry it) whose valid bound exceeds the accountant's epsilon, the epsilon bound of any (epsilon,
    delta)-DP guarantee or the epsilon of the mu-GDP refuted (the descriptive one-run figure of an ordinary audit is no
    bound, and never counts)."""
    dp = r.get("dp")
    if not dp or not [a for a in r.get("dp_audit", []) if a.get("valid_as_dp_bound")]:
        return []
    s = best(r)
    a = r["dp_audit"][0]
    return [f"BUG: the one-run DP audit ({a['m']} {a['canaries']} canaries) proves {what} {value:.3f} at {s['confidence']:.0%} "
            f"confidence ({'over all its attacks' if s['family_wise'] else 'by its best attack'}), above the accountant's "
            f"epsilon {dp['epsilon']:.3f} (delta {dp['delta']:g}) for this DP model: the DP training, the accountant or the "
            "audit is wrong; please report it"
            for what, value in (("epsilon >=", s["epsilon_lower_bound"]), ("the epsilon of a refuted mu-GDP,", s["epsilon_at_delta"]))
            if value is not None and value > dp["epsilon"]]


def frontier_findings(results: list[dict[str, Any]]) -> list[str]:
    pts = points(results)
    out = []
    if len(pts) >= 2:
        on = [p["name"] for p, f in zip(pts, pareto(pts)) if f]
        off = [p["name"] for p, f in zip(pts, pareto(pts)) if not f]
        out.append(f"On the frontier of adversarial test accuracy against LiRA's TPR at 1% FPR: {', '.join(on)}; dominated "
                   f"(another target is at least as robust and leaks at most as much): {', '.join(off) or 'none'}. The points "
                   "carry 95% intervals, so a target just off the frontier may be on it within noise.")
    for r in results:
        if not r.get("dp"):
            continue
        if not r.get("dp_audit"):
            out.append(f"Soundness, {r['name']}: the accountant's epsilon is {r['dp']['epsilon']:.2f} (delta {r['dp']['delta']:g}); it "
                       "had no one-run DP audit (dp_audit in the spec), so no valid lower bound was measured to check it against.")
            continue
        s, a = best(r), r["dp_audit"][0]
        bugs = soundness(r)
        gdp = "" if s["epsilon_at_delta"] is None else f" and the epsilon of the mu-GDP it refutes {s['epsilon_at_delta']:.2f}"
        out.append(f"Soundness, {r['name']}: the accountant's epsilon is {r['dp']['epsilon']:.2f} (delta {r['dp']['delta']:g}); "
                   f"the one-run DP audit's epsilon lower bound ({s['confidence']:.0%} "
                   f"{'over all its attacks' if s['family_wise'] else 'for its best attack'}, {a['m']} {a['canaries']} canaries) is "
                   f"{s['epsilon_lower_bound']:.2f}{gdp}: "
                   + ("consistent, as it must be." if not bugs else f"{len(bugs)} of them exceed it, which is a bug (see Warnings)."))
    dp = [p for p in pts if p["dp"]]
    if dp:
        p = max(dp, key=lambda p: p["dp"]["noise"])
        ci = p["leak"]["ci95"].get("tpr_at_fpr_0.01")
        inside = ci is not None and ci[0] <= 0.01 <= ci[1]
        out.append(f"The DP target with the most noise, {p['name']} (epsilon {p['dp']['epsilon']:.2f}), has a TPR at 1% FPR of "
                   f"{with_ci(p['leak'], KEYS['tpr'])}%: " + ("its interval includes 1%, so no leakage beyond chance is detected."
                   if inside else ("no interval was computed (bootstrap 0)." if ci is None else
                   f"its interval excludes 1%; at epsilon {p['dp']['epsilon']:.2f} the guarantee allows a TPR at 1% FPR "
                   f"of up to {100 * min(1.0, 0.01 * 2.718281828 ** p['dp']['epsilon'] + p['dp']['delta']):.1f}%, so this is "
                   "within what DP permits.")))
    return out
