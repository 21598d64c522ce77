"""The one-run DP audits of a study's targets (experiments.dp_audit): their table, figure and findings.

Each record is one attack's pair of one-run bounds on a target's canaries: Steinke, Nasr & Jagielski's (2023)
epsilon lower bound of any (epsilon, delta)-DP guarantee, and Mahloujifar, Melis & Chaudhuri's (2025) largest mu of
mu-GDP refuted, with the epsilon that mu-GDP has at delta. The per-attack figures each hold at the stated confidence
on their own; the audit's one statement (privacy.dp_audit.headline) takes the largest over the attacks of the bounds
computed with the confidence split over them, so that it holds at the stated confidence. For a DP target the figures
sit beside the accountant's epsilon (and the mu of a Gaussian curve through it) and must stay below them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

from robustmia.privacy.dp_audit import headline

COLUMNS = ["target", "accountant epsilon (delta) [mu]", "attack", "canaries", "k+ / k-", "correct guesses",
           "epsilon lower bound (any (eps, delta)-DP)", "mu-GDP refuted [its epsilon at delta]", "confidence", "guesses chosen"]
CAPTION = ("One-run DP audits: each canary joined the training set by a fair coin; the attack guessed 'member' for its k+ "
           "highest scores and 'non-member' for its k- lowest. Two bounds from the same guesses: Steinke, Nasr & Jagielski "
           "(2023), a lower bound on epsilon of any (epsilon, delta)-DP guarantee of the recipe; and Mahloujifar, Melis & "
           "Chaudhuri (2025), the largest mu of mu-GDP refuted (a Gaussian-DP claim, as DP-SGD's analyses make) with the "
           "epsilon that mu-GDP has at delta, which is no bound on an arbitrary (epsilon, delta)-DP mechanism. Per-attack rows "
           "hold each at the confidence shown on their own; the 'all attacks' row splits the confidence over the attacks "
           "(Bonferroni) and is the audit's statement")


def audited(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in results if r.get("dp_audit")]


def _accountant(r: dict[str, Any]) -> str:
    dp = r.get("dp")
    if not dp:
        return "not DP"
    mu = next((a.get("accountant_mu") for a in r["dp_audit"] if a.get("accountant_mu") is not None), None)
    return f"{dp['epsilon']:.2f} ({dp['delta']:g})" + (f" [{mu:.2f}]" if mu is not None else "")


def _gdp(mu: Optional[float], epsilon: Optional[float]) -> str:
    return "" if mu is None else f"{mu:.3f} [{epsilon:.3f}]"


def rows(results: list[dict[str, Any]]) -> list[list[str]]:
    out = []
    for r in audited(results):
        for a in r["dp_audit"]:
            gdp = a.get("gdp", {})
            out.append([r["name"], _accountant(r), f"{a['attack']} ({a['threshold_selection']}), per attack",
                        f"{a['m']} {a['canaries']}", f"{a['k_pos']} / {a['k_neg']}", f"{a['correct']} of {a['guesses']}",
                        f"{a['epsilon_lower_bound']:.3f}", _gdp(gdp.get("mu_lower_bound"), gdp.get("epsilon_at_delta")),
                        f"{a['confidence']:.0%}", a["selection"]])
        h = headline(r["dp_audit"])
        if h is not None and h["attacks"] > 1:  # (one attack: its row is the statement)
            out.append([r["name"], _accountant(r), f"all {h['attacks']} attacks (family-wise): {h['epsilon_attack']}, {h['mu_attack']}",
                        "", "", "", f"{h['epsilon_lower_bound']:.3f}", _gdp(h["mu_lower_bound"], h["epsilon_at_delta"]),
                        f"{h['confidence']:.0%}", "Bonferroni over the attacks and the guess counts"])
    return out


def table(results: list[dict[str, Any]]) -> tuple[list[str], list[list[str]], str]:
    return COLUMNS, rows(results), CAPTION


def best(r: dict[str, Any]) -> dict[str, Any]:
    """The target's statement: its family-wise headline, or (records made before it existed) the best per-attack bound."""
    h = headline(r["dp_audit"])
    if h is not None:
        return {**h, "family_wise": True}
    a = max(r["dp_audit"], key=lambda a: a["epsilon_lower_bound"])
    return {"epsilon_lower_bound": a["epsilon_lower_bound"], "epsilon_attack": a["attack"], "mu_lower_bound": None,
            "epsilon_at_delta": None, "attacks": 1, "confidence": a["confidence"], "delta": a["delta"], "family_wise": False}


def figure(results: list[dict[str, Any]], folder: Path, save: Callable) -> list[Path]:
    """Each audited target's two family-wise bounds (bars) beside its accountant's epsilon (a marker), if DP."""
    targets = audited(results)
    if not targets:
        return []
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(max(4.0, 1.3 * len(targets) + 2), 3.4))
    x = np.arange(len(targets))
    statements = [best(r) for r in targets]
    ax.bar(x - 0.2, [s["epsilon_lower_bound"] for s in statements], width=0.4, color="tab:blue",
           label="epsilon lower bound, any (eps, delta)-DP")
    ax.bar(x + 0.2, [s["epsilon_at_delta"] or 0.0 for s in statements], width=0.4, color="tab:green",
           label="epsilon of the mu-GDP refuted")
    dp = [(i, r["dp"]["epsilon"]) for i, r in enumerate(targets) if r.get("dp")]
    if dp:
        ax.scatter([i for i, _ in dp], [e for _, e in dp], marker="_", s=900, color="tab:red", zorder=3, label="accountant epsilon")
    ax.set_xticks(list(x), [r["name"] for r in targets], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("epsilon")
    ax.set_title("One-run DP audits (each target's statement over all its attacks)", fontsize=9)
    ax.legend(fontsize=7)
    return save(fig, folder, "dp_audit")


def findings(results: list[dict[str, Any]]) -> list[str]:
    out = []
    for r in audited(results):
        s = best(r)
        a = r["dp_audit"][0]
        over = (f"at {s['confidence']:.0%} confidence over all {s['attacks']} attacks and their guess counts (Bonferroni)"
                if s["family_wise"] else f"at {s['confidence']:.0%} confidence for its best attack alone (made before audits "
                "corrected for several attacks: over all of them it holds at less)")
        where = (f"{r['name']}: a one-run DP audit ({a['m']} {a['canaries']} canaries) proves epsilon >= {s['epsilon_lower_bound']:.2f} "
                 f"for any (epsilon, delta)-DP guarantee (delta {s['delta']:g}; by {s['epsilon_attack']})")
        if s["mu_lower_bound"] is not None:
            where += (f" and refutes mu-GDP for every mu up to {s['mu_lower_bound']:.2f} (by {s['mu_attack']}; such a Gaussian "
                      f"mechanism has epsilon {s['epsilon_at_delta']:.2f} at delta {s['delta']:g})")
        where += f", {over}"
        if r.get("dp"):
            limit = r["dp"]["epsilon"]
            above = [name for name, value in (("the epsilon bound", s["epsilon_lower_bound"]), ("the mu-GDP epsilon", s["epsilon_at_delta"]))
                     if value is not None and value > limit]
            out.append(f"{where}; the accountant's epsilon is {limit:.2f}: "
                       + (f"{' and '.join(above)} ABOVE it (a bug in the recipe, the accountant or the audit)." if above else
                          "both below it, as they must be."))
        else:
            out.append(f"{where}: lower bounds on any DP guarantee this recipe could have (it was not trained with DP)"
                       + ("; at this strength the audit proves nothing." if s["epsilon_lower_bound"] == 0 and not s["mu_lower_bound"] else "."))
    return out
