"""Time to compute every membership metric (no bootstrap) for 10^6 examples, against the
same metrics from scikit-learn (roc_auc_score, average_precision_score, roc_curve,
accuracy/precision/recall at the chosen threshold), side by side in one run.

    python benchmarks/bench_metrics.py [--n 1000000] [--repeats 3]

Target: ``robustmia_seconds`` < 1.
"""

from __future__ import annotations

import json
import statistics
import time

import numpy as np
from sklearn.metrics import accuracy_score, average_precision_score, precision_score, recall_score, roc_auc_score, roc_curve

from robustmia.privacy.metrics import evaluate_scores

import options


def _sklearn(scores, member, threshold):
    roc_auc_score(member, scores)
    average_precision_score(member, scores)
    fpr, tpr, _ = roc_curve(member, scores)
    pred = scores >= threshold
    accuracy_score(member, pred), precision_score(member, pred), recall_score(member, pred)


def main() -> None:
    parser = options.parser("bench_metrics", __doc__)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    options.at_least("bench_metrics", args, n=2, repeats=1)
    rng = np.random.default_rng(0)
    member = np.r_[np.ones(args.n // 2, bool), np.zeros(args.n - args.n // 2, bool)]
    scores = rng.normal(member * 0.3, 1.0)
    ours, theirs = [], []
    for _ in range(args.repeats):
        t = time.perf_counter()
        m = evaluate_scores(scores, member, losses=-scores, n_bootstrap=0)
        ours.append(time.perf_counter() - t)
        t = time.perf_counter()
        _sklearn(scores, member, m.threshold)
        theirs.append(time.perf_counter() - t)
    ours_s, theirs_s = statistics.median(ours), statistics.median(theirs)
    print(json.dumps({
        "benchmark": "membership_metrics",
        "n_examples": args.n,
        "robustmia_seconds": round(ours_s, 4),
        "sklearn_seconds": round(theirs_s, 4),
        "robustmia_over_sklearn": round(ours_s / theirs_s, 3),
        "target": "robustmia_seconds < 1",
        "note": "robustmia computes every metric and the oracle threshold from one sort; sklearn sorts once per metric",
    }, indent=2))


if __name__ == "__main__":
    options.run("bench_metrics", main)
