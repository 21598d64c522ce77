"""Plain-language findings, written from the numbers (never canned): did PGD training raise
membership inference accuracy over natural training, did it grow with epsilon, and where do
the provable models stand. Each claim carries its 95% intervals and says when the
difference is within them."""

from __future__ import annotations

from typing import Any, Optional

from robustmia.training.methods import ADVERSARIAL, CERTIFIED


def _conf(r: dict[str, Any], attack: str = "confidence") -> Optional[dict[str, Any]]:
    return next((a for a in r["attacks"] if a["attack"] == attack and a["threshold_selection"] == "oracle"), None)


def _fmt(a: dict[str, Any]) -> str:
    if "inference_accuracy" not in a["ci95"]:
        return f"{100 * a['inference_accuracy']:.1f}% (no interval: no bootstrap)"
    lo, hi = a["ci95"]["inference_accuracy"]
    return f"{100 * a['inference_accuracy']:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}]"


def _separated(a: dict[str, Any], b: dict[str, Any]) -> bool:
    if "inference_accuracy" not in a["ci95"] or "inference_accuracy" not in b["ci95"]:
        return False
    (alo, ahi), (blo, bhi) = a["ci95"]["inference_accuracy"], b["ci95"]["inference_accuracy"]
    return blo > ahi or bhi < alo


def _noise(a, b) -> str:
    if "inference_accuracy" not in a["ci95"] or "inference_accuracy" not in b["ci95"]:
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
        if natural is None:
            out.append(f"{dataset}: no naturally trained target, so no comparison with natural training.")
        for r in robust if natural is not None else []:
            a, b = _conf(natural), _conf(r)
            verb = "raised" if b["inference_accuracy"] > a["inference_accuracy"] else "did not raise"
            text = (f"{dataset}: {r['config']['method'].upper()} training at eps {_eps(r)} ({r['name']}) {verb} inference "
                    f"accuracy of the confidence attack (oracle threshold, {b['n_members']} members + {b['n_nonmembers']} "
                    f"non-members) from {_fmt(a)} for the natural model to {_fmt(b)}; {_noise(a, b)}.")
            a_adv, b_adv = _conf(natural, "adv-confidence"), _conf(r, "adv-confidence")
            if a_adv and b_adv:
                text += f" Through PGD inputs at the same eps: {_fmt(a_adv)} vs {_fmt(b_adv)}; {_noise(a_adv, b_adv)}."
            out.append(text)
        if len({r["config"]["eps"] for r in robust}) >= 2:
            accs = [_conf(r)["inference_accuracy"] for r in robust]
            grew = all(x < y for x, y in zip(accs, accs[1:]))
            chain = " -> ".join(f"{100 * x:.1f}% (eps {_eps(r)})" for x, r in zip(accs, robust))
            spread = _separated(_conf(robust[0]), _conf(robust[-1]))
            out.append(f"{dataset}: inference accuracy {'grew' if grew else 'did not grow'} monotonically with the training eps: "
                       f"{chain}; between the smallest and the largest eps the 95% intervals "
                       f"{'do not overlap' if spread else 'overlap (within noise at this scale)'}.")
        for r in provable:
            e, c = r["evaluation"], _conf(r)
            twin = next((n for n in rs if n["config"]["method"] == "natural" and n["config"]["model"] == r["config"]["model"]), natural)
            text = (f"{dataset}: the provable model {r['name']} ({r['config']['method']}, eps {_eps(r)}) certifies "
                    f"{100 * e.get('verified_test_accuracy', float('nan')):.1f}% of test images at its eps, with test accuracy "
                    f"{100 * e['test_accuracy']:.1f}% and inference accuracy {_fmt(c)}")
            if twin is not None:
                a = _conf(twin)
                rel = "less" if c["inference_accuracy"] < a["inference_accuracy"] else "more"
                text += (f"; its natural twin {twin['name']}: test accuracy {100 * twin['evaluation']['test_accuracy']:.1f}%, "
                         f"inference accuracy {_fmt(a)}, so the provable model leaks {rel} ({_noise(a, c)})")
            out.append(text + ".")
        out += [_external(r, natural) for r in every if r["config"].get("external")]
    return out


def _external(r: dict[str, Any], natural: Optional[dict[str, Any]]) -> str:
    """A model trained elsewhere, beside robustmia's natural model on the same data."""
    e, c, x = r["evaluation"], _conf(r), r.get("external", {})
    text = (f"{r['config']['dataset']}: the external model {r['name']} ({x.get('arch', r['config']['model'])}, weights SHA-256 "
            f"{str(x.get('weights_sha256', ''))[:12]}) has " +
            (f"accuracy {100 * e['train_accuracy']:.1f}% on its members and {100 * e['test_accuracy']:.1f}% on its non-members, and "
             if "train_accuracy" in e else "") + f"inference accuracy {_fmt(c)}")
    if natural is not None:
        a = _conf(natural)
        text += f"; robustmia's natural model {natural['name']}: {_fmt(a)} ({_noise(a, c)})"
    return text + "."
