"""The one-run DP audits of a study's targets (experiments.dp_audit): their table, figure and findings.

Each record is one attack's valid epsilon lower bound (Steinke, Nasr & Jagielski 2023) on a target's
canaries. For a DP target it sits beside the accountant's epsilon and must stay below it; for any other
target it is a lower bound on any DP guarantee its recipe could have.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

COLUMNS = ["target", "accountant epsilon (delta)", "attack", "canaries", "k+ / k-", "correct guesses", "epsilon lower bound",
           "confidence", "guesses chosen"]
CAPTION = ("One-run DP audits (Steinke, Nasr & Jagielski 2023): each canary joined the training set by a fair coin; the attack "
           "guessed 'member' for its k+ highest scores and 'non-member' for its k- lowest; the epsilon lower bound holds at the "
           "confidence shown for any (epsilon, delta)-DP guarantee of the recipe")


def audited(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in results if r.get("dp_audit")]


def _accountant(r: dict[str, Any]) -> str:
    dp = r.get("dp")
    return f"{dp['epsilon']:.2f} ({dp['delta']:g})" if dp else "not DP"


def rows(results: list[dict[str, Any]]) -> list[list[str]]:
    return [[r["name"], _accountant(r), f"{a['attack']} ({a['threshold_selection']})", f"{a['m']} {a['canaries']}",
             f"{a['k_pos']} / {a['k_neg']}", f"{a['correct']} of {a['guesses']}", f"{a['epsilon_lower_bound']:.3f}",
             f"{a['confidence']:.0%}", a["selection"]] for r in audited(results) for a in r["dp_audit"]]


def table(results: list[dict[str, Any]]) -> tuple[list[str], list[list[str]], str]:
    return COLUMNS, rows(results), CAPTION


def best(r: dict[str, Any]) -> dict[str, Any]:
    return max(r["dp_audit"], key=lambda a: a["epsilon_lower_bound"])


def figure(results: list[dict[str, Any]], folder: Path, save: Callable) -> list[Path]:
    """Each audited target's best lower bound (a bar per target) beside its accountant's epsilon (a marker), if DP."""
    targets = audited(results)
    if not targets:
        return []
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * len(targets) + 2), 3.4))
    x = range(len(targets))
    ax.bar(x, [best(r)["epsilon_lower_bound"] for r in targets], color="tab:blue", label="one-run lower bound (best attack)")
    dp = [(i, r["dp"]["epsilon"]) for i, r in enumerate(targets) if r.get("dp")]
    if dp:
        ax.scatter([i for i, _ in dp], [e for _, e in dp], marker="_", s=600, color="tab:red", zorder=3, label="accountant epsilon")
    ax.set_xticks(list(x), [r["name"] for r in targets], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("epsilon")
    ax.set_title("One-run DP audits", fontsize=9)
    ax.legend(fontsize=7)
    return save(fig, folder, "dp_audit")


def findings(results: list[dict[str, Any]]) -> list[str]:
    out = []
    for r in audited(results):
        a = best(r)
        where = (f"{r['name']}: a one-run DP audit ({a['m']} {a['canaries']} canaries, {a['attack']}, k+ {a['k_pos']} / k- {a['k_neg']}, "
                 f"{a['correct']} of {a['guesses']} guesses correct) proves epsilon >= {a['epsilon_lower_bound']:.2f} at "
                 f"{a['confidence']:.0%} confidence (delta {a['delta']:g})")
        if r.get("dp"):
            verdict = "below" if a["epsilon_lower_bound"] <= r["dp"]["epsilon"] else "ABOVE"
            out.append(f"{where}, {verdict} the accountant's epsilon {r['dp']['epsilon']:.2f}.")
        else:
            out.append(f"{where}: a lower bound on any DP guarantee this recipe could have (it was not trained with DP)"
                       + ("; at this strength the audit proves nothing." if a["epsilon_lower_bound"] == 0 else "."))
    return out
