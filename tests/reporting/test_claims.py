"""The paper's three claims, judged from a study's results (reporting.claims), and the paper's own rows beside a run's
in Tables I-III (reporting.paper)."""

from __future__ import annotations

from robustmia.reporting.claims import CLAIMS, claim_lines, claims
from robustmia.reporting.tables import PAPER_COLUMNS, build_tables


def _target(name, method, eps, acc, ci, tables=("I",), model="fast-cnn", test=0.8, dataset="cifar10"):
    record = {"attack": "confidence", "threshold_selection": "oracle", "inference_accuracy": acc, "ci95": {"inference_accuracy": ci},
              "n_members": 500, "n_nonmembers": 500, "precision": acc, "recall": acc, "kl_divergence": 0.1, "auprc": acc,
              "roc_auc": acc, "advantage": 2 * acc - 1, "tpr_at_fpr": {"0.001": 0.0, "0.01": 0.02}, "n_references": 0}
    for k in ("precision", "recall", "auprc"):
        record["ci95"][k] = ci
    return {"name": name, "tables": list(tables), "config": {"dataset": dataset, "model": model, "method": method, "eps": eps,
                                                              "epochs": 30, "train_size": None},
            "evaluation": {"train_accuracy": 1.0, "test_accuracy": test}, "attacks": [record]}


def _verdicts(results):
    return {c["claim"]: c["verdict"] for c in claims(results)}


def test_each_claim_is_shown_within_noise_or_the_opposite_by_the_intervals():
    natural = _target("natural", "natural", 0.0, 0.55, [0.53, 0.57])
    pgd = [_target("pgd-2", "pgd", 2 / 255, 0.60, [0.58, 0.62], ("II",)), _target("pgd-4", "pgd", 4 / 255, 0.65, [0.63, 0.67], ("II",)),
           _target("pgd-8", "pgd", 8 / 255, 0.75, [0.73, 0.77])]
    twin = _target("wong-natural", "natural", 2 / 255, 0.56, [0.54, 0.58], ("III",), model="wong-cnn", test=0.75)
    provable = _target("crown-ibp-2", "crown_ibp", 2 / 255, 0.51, [0.50, 0.52], ("III",), model="wong-cnn", test=0.6)
    assert _verdicts([natural, *pgd, twin, provable]) == dict.fromkeys(CLAIMS, "shown")
    # the PGD-8 target below natural, beyond noise: the opposite; and the eps chain no longer grows
    low = _target("pgd-8", "pgd", 8 / 255, 0.45, [0.43, 0.47])
    found = _verdicts([natural, pgd[0], pgd[1], low])
    assert found[CLAIMS[0]] == "the opposite" and found[CLAIMS[1]] == "the opposite"
    # overlapping intervals: within noise, whatever the point estimates say
    close = _target("pgd-8", "pgd", 8 / 255, 0.56, [0.50, 0.62])
    assert _verdicts([natural, close])[CLAIMS[0]] == "not shown (within noise)"
    # a provable model that loses no accuracy is not the paper's finding, and says why
    kept = _target("crown-ibp-2", "crown_ibp", 2 / 255, 0.51, [0.50, 0.52], ("III",), model="wong-cnn", test=0.8)
    assert _verdicts([twin, kept])[CLAIMS[2]] == "not shown (loses no test accuracy)"
    # claims whose targets the study lacks are not tested, not guessed
    assert _verdicts([natural]) == {CLAIMS[0]: "not tested", CLAIMS[1]: "not tested", CLAIMS[2]: "not tested"}
    lines = claim_lines([natural, *pgd])
    assert len(lines) == 3 and "pgd-8 75.0% [73.0, 77.0] against natural 55.0% [53.0, 57.0]" in lines[0]


def test_the_papers_rows_sit_beside_cifar10_targets_with_a_caption_of_what_differs():
    natural = _target("natural", "natural", 8 / 255, 0.55, [0.53, 0.57], ("I",), model="fast-cnn")
    pgd = _target("pgd-8", "pgd", 8 / 255, 0.75, [0.73, 0.77], ("I",), model="fast-cnn")
    pgd2 = _target("pgd-2", "pgd", 2 / 255, 0.6, [0.58, 0.62], ("II",))
    columns, rows, caption = build_tables([natural, pgd, pgd2])["table1"]
    assert [r[PAPER_COLUMNS.index("train method")] for r in rows] == ["natural", "the paper: natural", "pgd", "the paper: PGD (Madry et al.)"]
    paper_natural, paper_pgd = rows[1], rows[3]
    at = PAPER_COLUMNS.index
    assert paper_natural[at("test acc")] == "95.01" and paper_natural[at("inference acc")] == "57.37"
    assert paper_pgd[at("adv-train acc")] == "96.07" and paper_pgd[at("adv-test acc")] == "46.59" and paper_pgd[at("inference acc")] == "74.86"
    assert paper_pgd[at("train acc")] == ""  # a figure robustmia does not quote is left blank, not guessed
    assert "WRN-34-10" in paper_pgd[at("architecture")] and "fast-cnn" in caption and "JPEG" in caption
    # Table II: the paper's 2/255 row is not quoted, so the pgd-2 target stands alone
    _, rows2, _ = build_tables([pgd2])["table2"]
    assert len(rows2) == 1
    # another dataset has no paper rows
    digits = _target("natural", "natural", 0.1, 0.55, [0.53, 0.57], dataset="digits")
    assert len(build_tables([digits])["table1"][1]) == 1
