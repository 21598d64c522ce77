"""Early stopping against robust overfitting (Rice, Wong & Kolter 2020): after every epoch the
model's PGD accuracy is measured on held-out training-split examples that it does not train
on; the run keeps the weights of the epoch with the best held-out PGD accuracy (the first on
ties) and ends with them: its last checkpoint holds them, and ``early-stop.json`` names the
epoch chosen. The held-out examples are ``early_stop_holdout`` examples of the train split
outside the model's members (seeded), attacked with PGD-``early_stop_steps`` at the training
eps, step eps/4, in eval mode (Rice et al. use PGD-10).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

STATE_FILE, BEST_FILE = "early-stop.json", "early-stop-best.safetensors"
KEY = "holdout_adv_accuracy"


def best_epoch(records: list[dict[str, Any]]) -> Optional[tuple[int, float]]:
    """(epoch, held-out PGD accuracy) of the best epoch in a run's log records (the first on ties)."""
    scored = [(r["epoch"], r[KEY]) for r in records if KEY in r]
    if not scored:
        return None
    top = max(acc for _, acc in scored)
    return next((e, acc) for e, acc in scored if acc == top)


def read_state(run_dir: Path) -> Optional[dict[str, Any]]:
    from robustmia.io import read_json

    path = Path(run_dir) / STATE_FILE
    return read_json(path, f"delete {run_dir} to train it again") if path.is_file() else None


class EarlyStopping:
    """The early stopping of one run: its hook scores each epoch and keeps the best weights;
    :meth:`finish` ends the run with them."""

    def __init__(self, config: Any, out: Path, train_set: Any, members: Any, canaries: Any = None):
        import numpy as np
        import torch

        from robustmia.data.datasets import SPLIT_BITS

        # neither members nor any canary of a one-run DP audit (included or not) is held out
        ids = np.concatenate([np.zeros(0, np.int64), *(s.ids.numpy() for s in (members, canaries) if s is not None and s.ids is not None)])
        free = np.setdiff1d(np.arange(len(train_set)), ids[ids >> SPLIT_BITS == 0])  # train-split examples it does not train on
        order = np.random.default_rng([config.seed, 7]).permutation(len(free))[: config.early_stop_holdout]
        self.holdout = train_set.subset(torch.as_tensor(np.sort(free[order])))
        self.config, self.out = config, Path(out)
        self.best = read_state(out)

    def hook(self, model, epoch: int, members, test) -> dict[str, Any]:
        """Score the epoch; keep its weights if it is the best so far (before its checkpoint is written, so a
        run killed in between retrains the epoch and keeps it again)."""
        from safetensors.torch import save

        from robustmia.io import atomic_write, write_json
        from robustmia.robust.evaluate import adversarial_accuracy
        from robustmia.robust.pgd import pgd

        c = self.config
        attack = lambda m, x, y: pgd(m, x, y, eps=c.eps, alpha=c.eps / 4, steps=c.early_stop_steps, random_start=False)  # noqa: E731
        accuracy = adversarial_accuracy(model, self.holdout, attack, c.eval_batch_size).accuracy
        if self.best is None or accuracy > self.best["holdout_adv_accuracy"]:
            weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
            with atomic_write(self.out / BEST_FILE) as f:
                f.write(save(weights))
            self.best = {"epoch": epoch, "holdout_adv_accuracy": accuracy, "holdout": len(self.holdout), "final": False}
            write_json(self.out / STATE_FILE, self.best)
        return {KEY: accuracy}

    def finish(self, session) -> None:
        """End the run with the best epoch's weights (its last checkpoint), and say which epoch."""
        from safetensors.torch import load_file

        from robustmia.io import write_json

        if self.best is None or self.best.get("final"):
            return
        session.model.load_state_dict(load_file(str(self.out / BEST_FILE)))
        session.save_checkpoint(early_stop_epoch=self.best["epoch"])
        self.best = {**self.best, "final": True, "epochs_trained": session.epoch}
        write_json(self.out / STATE_FILE, self.best)
