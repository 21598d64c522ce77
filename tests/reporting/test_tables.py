"""The modern table marks a TPR at an FPR level that allows fewer than 10 false positives."""

from robustmia.reporting.tables import build_tables, low_fpr_mark


def _record(n_nonmembers):
    return {"attack": "confidence", "threshold_selection": "oracle", "n_members": n_nonmembers, "n_nonmembers": n_nonmembers,
            "roc_auc": 0.6, "tpr_at_fpr": {"0.001": 0.01, "0.01": 0.05}, "advantage": 0.2, "inference_accuracy": 0.6, "ci95": {},
            "n_references": 0, "empirical_epsilon": {"lower_bound": 0.41, "interval": [0.41, None]}}


def test_low_fpr_cells_are_marked_by_the_false_positives_they_allow():
    assert low_fpr_mark(_record(300), 0.001) == "*" and low_fpr_mark(_record(300), 0.01) == "*"  # 0.3 and 3 false positives
    assert low_fpr_mark(_record(2000), 0.001) == "*" and low_fpr_mark(_record(2000), 0.01) == ""  # 2 and 20
    assert low_fpr_mark(_record(10000), 0.001) == ""  # 10
    columns, rows, caption = build_tables([{"name": "t", "tables": [], "attacks": [_record(2000)]}])["modern"]
    at = columns.index
    assert rows[0][at("TPR@0.1%FPR")] == "1.00*" and rows[0][at("TPR@1%FPR")] == "5.00" and "fewer than 10 false positives" in caption
