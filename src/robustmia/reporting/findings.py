"""Plain-language findings, written from the numbers (never canned): did PGD training raise
membership inference accuracy over natural training, did it grow with epsilon, where do
the provable models stand, do the attacks beyond the paper find more at low FPR than its
confidence threshold, and how does exposure move between twins. Each claim carries its 95% intervals and says when the
difference is within them."""

from __future__ import annotations

from typing import Any, Optional

from robustmia.privacy.attacks.registry import NEW_FAMILIES
from robustmia.privacy.summary import beyond_chance, family_level
from robustmia.reporting.exposure import exposure_findings
from robustmia.reporting.tables import find_record
from robustmia.training.methods import ADVERSARIAL, CERTIFIED


def _conf(r: dict[str, Any], attack: str = "confidence") -> Optional[dict[str, Any]]:
    return find_record(r["attacks"], attack, "oracle")


def _interval(a: dict[str, Any], key: str = "inference_accuracy") -> Optional[list[float]]:
    """The 95% interval a finding quotes and compares: for the inference accuracy the calibrated one (privacy.summary;
    the bootstrap interval of a record made before it existed), for other metrics the bootstrap one."""
    if key == "inference_accuracy" and a.get("calibrated"):
        return a["calibrated"]["ci95"]
    return a["ci95"].get(key)


def _accuracy(a: dict[str, Any]) -> float:
    """The inference accuracy a finding quotes: the calibrated one (the oracle's, for a record made before it existed)."""
    return a["calibrated"]["inference_accuracy"] if a.get("calibrated") else a["inference_accuracy"]


def _fmt(a: dict[str, Any], peers: Optional[list[dict[str, Any]]] = None) -> str:
    """The accuracy a finding quotes, with its interval; but where the chance test (family-wise over ``peers``, the
    target's attacks) calls the result chance, an interval that excludes 50% is not quoted: it would read as a leak."""
    ci = _interval(a)
    value = f"{100 * _accuracy(a):.1f}%"
    if ci is None:
        return f"{value} (no interval: no bootstrap)"
    if peers is not None and beyond_chance(a, peers) is False and not ci[0] <= 0.5 <= ci[1]:
        return f"{value} (not beyond chance: p = {a['chance']['p_value']:.3g})"
    return f"{value} [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"


def _separated(a: dict[str, Any], b: dict[str, Any], key: str = "inference_accuracy") -> bool:
    ia, ib = _interval(a, key), _interval(b, key)
    if ia is None or ib is None:
        return False
    (alo, ahi), (blo, bhi) = ia, ib
    return blo > ahi or bhi < alo


def _noise(a, b) -> str:
    if _interval(a) is None or _interval(b) is None:
        return "no 95% intervals were computed (bootstrap 0), so whether the difference is beyond noise is not known"
    return ("the 95% intervals do not overlap" if _separated(a, b)
            else "the 95% intervals overlap, so at this scale the difference is within noise")


def _eps(r) -> str:
    return f"{r['config']['eps']:.3g}"


def findings(results: list[dict[str, Any]]) -> list[str]:
    out: list[str] = []
    for dataset in dict.fromkeys(r["config"]["dataset"] for r in results):
        every = [r for r in results if r["config"]["dataset"] == dataset and _conf(r)]
        rs = [r for r in every if not r["config"].get("external")]  # robustmia's own targets
        natural = next((r for r in rs if r["config"]["method"] == "natural"), None)
        robust = sorted((r for r in rs if r["config"]["method"] in ADVERSARIAL), key=lambda r: r["config"]["eps"])
        provable = [r for r in rs if r["config"]["method"] in CERTIFIED]
        if natural is None and (robust or provable):
            out.append(f"{dataset}: no naturally trained target, so no comparison with natural training.")
        naturals = [r for r in rs if r["config"]["method"] == "natural"]
        for r in robust if natural is not None else []:
            for n in _natural_comparisons(r, naturals, natural):
                out.append(_robust_vs_natural(dataset, r, n))
        plain_pgd = [r for r in robust if r["config"]["method"] == "pgd" and not r["config"].get("early_stop")]
        if len({r["config"]["eps"] for r in plain_pgd}) >= 2:  # the paper's Table II: plain PGD training at several eps
            accs = [_accuracy(_conf(r)) for r in plain_pgd]
            grew = all(x < y for x, y in zip(accs, accs[1:]))
            chain = " -> ".join(f"{100 * x:.1f}% (eps {_eps(r)})" for x, r in zip(accs, plain_pgd))
            spread = _separated(_conf(plain_pgd[0]), _conf(plain_pgd[-1]))
            out.append(f"{dataset}: inference accuracy {'grew' if grew else 'did not grow'} monotonically with the training eps: "
                       f"{chain}; between the smallest and the largest eps the 95% intervals "
                       f"{'do not overlap' if spread else 'overlap (within noise at this scale)'}.")
        for r in provable:
            e, c = r["evaluation"], _conf(r)
            twin = next((n for n in rs if n["config"]["method"] == "natural" and n["config"]["model"] == r["config"]["model"]), natural)
            text = (f"{dataset}: the provable model {r['name']} ({r['config']['method']}, eps {_eps(r)}) certifies "
                    f"{100 * e.get('verified_test_accuracy', float('nan')):.1f}% of test images at its eps, with test accuracy "
                    f"{100 * e['test_accuracy']:.1f}% and inference accuracy {_fmt(c, r['attacks'])}")
            if twin is not None:
                a = _conf(twin)
                rel = "less" if _accuracy(c) < _accuracy(a) else "more"
                text += (f"; its natural twin {twin['name']}: test accuracy {100 * twin['evaluation']['test_accuracy']:.1f}%, "
                         f"inference accuracy {_fmt(a, twin['attacks'])}, so the provable model leaks {rel} ({_noise(a, c)})")
            out.append(text + ".")
        out += [_external(r, natural) for r in every if r["config"].get("external")]
        out += [text for r in every if (text := _beyond(r))]
        out += [text for r in every if (text := chance_finding(r))]
    return out + exposure_findings(results)


def _tpr(a: dict[str, Any]) -> str:
    ci = a["ci95"].get("tpr_at_fpr_0.01")
    return f"{100 * a['tpr_at_fpr']['0.01']:.1f}%" + (f" [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]" if ci else "")


def _beyond(r: dict[str, Any]) -> str:
    """Does any attack beyond the paper reach a higher TPR at 1% FPR than the paper's confidence threshold?"""
    new = list({a["attack"]: a for a in r["attacks"] if a.get("family") in NEW_FAMILIES}.values())
    conf = _conf(r)
    if not new or conf is None:
        return ""
    best = max(new, key=lambda a: a["tpr_at_fpr"]["0.01"])
    c = r["config"]
    where = f"{c['dataset']}: on {r['name']} ({c['method']}{', eps ' + _eps(r) if c['method'] != 'natural' else ''})"
    gap = _separated(best, conf, "tpr_at_fpr_0.01")
    if best["tpr_at_fpr"]["0.01"] > conf["tpr_at_fpr"]["0.01"]:
        return (f"{where}, the attack beyond the paper with the highest TPR at 1% FPR, {best['attack']} ({best['family']}), "
                f"reaches {_tpr(best)} against {_tpr(conf)} for the paper's confidence threshold; the 95% intervals "
                f"{'do not overlap' if gap else 'overlap (within noise at this scale)'}.")
    return (f"{where}, none of the attacks beyond the paper ({', '.join(a['attack'] for a in new)}) reaches a higher TPR at 1% FPR "
            f"than the paper's confidence threshold, {_tpr(conf)}; the best, {best['attack']}, reaches {_tpr(best)}.")


def _members(r: dict[str, Any]) -> Optional[int]:
    return r["config"].get("train_size")


def _natural_comparisons(r: dict[str, Any], naturals: list[dict[str, Any]], first: dict[str, Any]) -> list[dict[str, Any]]:
    """The natural targets a robust one is compared with: the study's first natural target and, where one exists
    with the same architecture and member count but is not that one, the twin at equal size (the fair control)."""
    twin = next((n for n in naturals if _members(n) == _members(r) and n["config"]["model"] == r["config"]["model"]), None)
    return [first] + ([twin] if twin is not None and twin is not first else [])


def _robust_vs_natural(dataset: str, r: dict[str, Any], natural: dict[str, Any]) -> str:
    a, b = _conf(natural), _conf(r)
    verb = "raised" if _accuracy(b) > _accuracy(a) else "did not raise"
    sizes = ""
    if _members(natural) != _members(r):
        sizes = (f" (they trained on {_members(r)} and {_members(natural)} members: fewer members are overfitted more, so part "
                 "of the difference is the member count)")
    text = (f"{dataset}: {r['config']['method'].upper()} training at eps {_eps(r)} ({r['name']}) {verb} inference "
            f"accuracy of the confidence attack (calibrated, {b['n_members']} members + {b['n_nonmembers']} "
            f"non-members) from {_fmt(a, natural['attacks'])} for the natural model {natural['name']} to {_fmt(b, r['attacks'])}{sizes}; "
            f"{_noise(a, b)}.")
    a_adv, b_adv = _conf(natural, "adv-confidence"), _conf(r, "adv-confidence")
    if a_adv and b_adv:
        text += (f" Through PGD inputs at the same eps: {_fmt(a_adv, natural['attacks'])} vs {_fmt(b_adv, r['attacks'])}; "
                 f"{_noise(a_adv, b_adv)}.")
    return text


def chance_finding(r: dict[str, Any]) -> str:
    """Which attacks are beyond chance on this target: each against the permutation null of its oracle accuracy at the
    same sizes (metrics.chance), at a 5% family-wise level over the target's attacks (privacy.summary.family_level).
    One line: how many are beyond chance, and those with their calibrated accuracies; the rest only counted."""
    tested = [a for a in r["attacks"] if a.get("chance")]
    if not tested:
        return ""
    level = family_level(tested)
    beyond = sorted((a for a in tested if beyond_chance(a, tested)), key=lambda a: -_accuracy(a))
    a = tested[0]
    named = lambda x: f"{x['attack']}{'' if x['threshold_selection'] == 'oracle' else ' (' + x['threshold_selection'] + ')'}"  # noqa: E731
    text = (f"{r['config']['dataset']}: on {r['name']}, {len(beyond)} of {len(tested)} attacks are beyond chance (the permutation "
            f"p-value of the oracle accuracy below {level:.2g}: 5% family-wise; {a['chance']['permutations']} permutations at "
            f"{a['n_members']} + {a['n_nonmembers']})")
    if beyond:
        text += ": " + ", ".join(f"{named(x)} {_fmt(x, tested)} (p = {x['chance']['p_value']:.2g})" for x in beyond)
    return text + "."


def _external(r: dict[str, Any], natural: Optional[dict[str, Any]]) -> str:
    """A model trained elsewhere, beside robustmia's natural model on the same data."""
    e, c, x = r["evaluation"], _conf(r), r.get("external", {})
    text = (f"{r['config']['dataset']}: the external model {r['name']} ({x.get('arch', r['config']['model'])}, weights SHA-256 "
            f"{str(x.get('weights_sha256', ''))[:12]}) has " +
            (f"accuracy {100 * e['train_accuracy']:.1f}% on its members and {100 * e['test_accuracy']:.1f}% on its non-members, and "
             if "train_accuracy" in e else "") + f"inference accuracy {_fmt(c, r['attacks'])}")
    if natural is not None:
        a = _conf(natural)
        text += f"; robustmia's natural model {natural['name']}: {_fmt(a, natural['attacks'])} ({_noise(a, c)})"
    return text + "."
