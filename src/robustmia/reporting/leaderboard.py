"""A privacy leaderboard of published robust models (``leaderboard: true`` in a spec; the preset
``robustbench-cifar10``): what each entry's leaderboard says of it (architecture, extra training data,
reported clean and AutoAttack accuracy, paper) beside what the audit measured (clean and PGD accuracy on
the test split, every attack's balanced accuracy, ROC AUC and TPR at 0.1% and 1% FPR with 95% intervals,
the descriptive one-run epsilon estimate); a figure of leakage against robust accuracy with the paper's
own CIFAR-10 models marked; and findings, e.g. whether extra data goes with less leakage at comparable
robust accuracy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

from robustmia.reporting.tables import epsilon_text, find_record, low_fpr_mark, with_ci

COLUMNS = ["entry", "architecture", "extra data", "reported clean", "reported AutoAttack", "measured clean", "measured PGD", "attack",
           "inference acc", "ROC AUC", "TPR@0.1%FPR", "TPR@1%FPR", "epsilon estimate (one run; no DP bound)", "members + non-members"]
CAPTION = ("Privacy leaderboard: each entry as its leaderboard reports it, beside the audit's measurements on its whole training "
           "split (members) and the test split (non-members): inference accuracy (balanced; oracle threshold), ROC AUC and TPR at "
           "low FPR (%) with 95% bootstrap CIs")
# Song, Shokri & Mittal 2019, Table I: CIFAR-10 WRN-34-10, the confidence attack on benign inputs (their inference accuracy)
PAPER = [{"name": "paper: natural WRN-34-10", "robust": 0.0, "leak": 0.5737}, {"name": "paper: PGD WRN-34-10", "robust": 0.466, "leak": 0.7486}]
COMPARABLE = 0.05  # robust accuracies within this of each other count as comparable


def entries(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in results if (r.get("external") or {}).get("robustbench")]


def _meta(r: dict[str, Any]) -> dict[str, Any]:
    return r["external"]["robustbench"]


def _pct(v: Any) -> str:
    return "" if v is None else f"{100 * v:.2f}"


def robust_accuracy(r: dict[str, Any]) -> Optional[float]:
    """The entry's reported AutoAttack accuracy (a fraction), else the PGD accuracy the audit measured."""
    reported = _meta(r).get("autoattack")
    return reported / 100 if reported is not None else r["evaluation"].get("adv_test_accuracy")


def rows(results: list[dict[str, Any]]) -> list[list[str]]:
    out = []
    for r in entries(results):
        m, e = _meta(r), r["evaluation"]
        for a in r["attacks"]:
            if a["threshold_selection"] != "oracle":
                continue
            out.append([m["name"], str(m.get("architecture", "")), str(m.get("extra_data", "")), _pct(None if m.get("clean") is None else m["clean"] / 100),
                        _pct(None if m.get("autoattack") is None else m["autoattack"] / 100), _pct(e.get("test_accuracy")),
                        _pct(e.get("adv_test_accuracy")), a["attack"], with_ci(a, "inference_accuracy"), with_ci(a, "roc_auc"),
                        with_ci(a, "tpr_at_fpr_0.001") + low_fpr_mark(a, 0.001), with_ci(a, "tpr_at_fpr_0.01") + low_fpr_mark(a, 0.01),
                        epsilon_text(a), f"{a['n_members']} + {a['n_nonmembers']}"])
    return out


def table(results: list[dict[str, Any]]) -> tuple[list[str], list[list[str]], str]:
    return COLUMNS, rows(results), CAPTION


def figure(results: list[dict[str, Any]], folder: Path, save: Callable) -> list[Path]:
    found = [(r, find_record(r["attacks"], "confidence", "oracle"), robust_accuracy(r)) for r in entries(results)]
    found = [(r, c, x) for r, c, x in found if c is not None and x is not None]
    if not found:
        return []
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for extra, marker, label in ((False, "o", "no extra data"), (True, "s", "extra or generated data")):
        group = [(r, c, x) for r, c, x in found if _extra(r) == extra]
        if not group:
            continue
        ys = [100 * c["inference_accuracy"] for _, c, _ in group]
        errs = [[100 * (c["inference_accuracy"] - c["ci95"].get("inference_accuracy", [c["inference_accuracy"]] * 2)[0]) for _, c, _ in group],
                [100 * (c["ci95"].get("inference_accuracy", [c["inference_accuracy"]] * 2)[1] - c["inference_accuracy"]) for _, c, _ in group]]
        ax.errorbar([100 * x for _, _, x in group], ys, yerr=errs, fmt=marker, capsize=2, label=label)
        for (r, _, x), y in zip(group, ys):
            ax.annotate(_meta(r)["name"], (100 * x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
    ax.scatter([100 * p["robust"] for p in PAPER], [100 * p["leak"] for p in PAPER], marker="*", s=140, color="black",
               label="Song et al. 2019 (Table I)")
    ax.axhline(50, color="0.6", lw=0.8, ls=":")
    ax.set_xlabel("robust accuracy (%): reported AutoAttack, else measured PGD")
    ax.set_ylabel("inference accuracy of the confidence attack (%)")
    ax.set_title("Membership leakage against robustness", fontsize=9)
    ax.legend(fontsize=7)
    return save(fig, folder, "leaderboard")


def _extra(r: dict[str, Any]) -> bool:
    value = _meta(r).get("extra_data")
    return bool(value) and str(value).lower() not in ("none", "no", "false")


def findings(results: list[dict[str, Any]]) -> list[str]:
    """Does extra data go with less leakage at comparable robust accuracy? Each entry with extra data against the entry
    without it whose robust accuracy is closest (within 5 points), by the confidence attack's inference accuracy and CIs."""
    from robustmia.reporting.findings import _fmt, _noise

    found = [(r, find_record(r["attacks"], "confidence", "oracle"), robust_accuracy(r)) for r in entries(results)]
    found = [(r, c, x) for r, c, x in found if c is not None and x is not None]
    extra = [f for f in found if _extra(f[0])]
    plain = [f for f in found if not _extra(f[0])]
    out = []
    for r, c, x in extra:
        near = min(plain, key=lambda f: abs(f[2] - x), default=None)
        if near is None or abs(near[2] - x) > COMPARABLE:
            out.append(f"{_meta(r)['name']} (extra data, robust accuracy {100 * x:.1f}%): no entry without extra data within "
                       f"{100 * COMPARABLE:.0f} points of its robust accuracy, so no comparison at equal robustness.")
            continue
        n, nc, nx = near
        rel = "less" if c["inference_accuracy"] < nc["inference_accuracy"] else "more"
        out.append(f"{_meta(r)['name']} (extra data, robust accuracy {100 * x:.1f}%) leaks {rel} than {_meta(n)['name']} (none, "
                   f"{100 * nx:.1f}%): inference accuracy {_fmt(c)} against {_fmt(nc)}; {_noise(nc, c)}.")
    if found:
        worst = max(found, key=lambda f: f[1]["inference_accuracy"])
        out.append(f"Of {len(found)} leaderboard entries, {_meta(worst[0])['name']} leaks most to the confidence attack: {_fmt(worst[1])}; "
                   f"the paper's PGD-trained WRN-34-10 reached {100 * PAPER[1]['leak']:.2f}% on its own CIFAR-10 setup.")
    return out
