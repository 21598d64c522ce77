"""The built-in training methods, each registered with its objective, defaults, the settings it reads and its
own checks (training.methods)."""

from __future__ import annotations

from typing import Any, Optional

from robustmia.training.methods import register_method

_OBJECTIVES = "robustmia.training.objectives"
register_method("natural", objective=f"{_OBJECTIVES}:natural", help="cross-entropy on the members")
register_method("pgd", objective=f"{_OBJECTIVES}:adversarial", attack=(7, 0.25, "train"),
                help="Madry et al.: 7 steps of eps/4 (2/255 at 8/255) on the train-mode model")
register_method("trades", objective=f"{_OBJECTIVES}:trades", attack=(10, 0.25, "eval"), reads=("trades_beta",),
                help="Zhang et al.: clean loss + beta KL to a 10-step eval-mode attack's point")
register_method("fgsm_rs", objective=f"{_OBJECTIVES}:adversarial", attack=(1, 1.25, "train"),
                fixes={"attack_steps": 1, "random_start": True},  # one step from a random start, always
                help="Wong et al. (2020): one step of 1.25 eps from a random start")
register_method("dp_pgd", objective=f"{_OBJECTIVES}:adversarial", attack=(7, 0.25, "train"), private=True, stacks=False,
                check=f"{__name__}:check_private",
                help="PGD examples on the current model, then a DP-SGD step (training.private)")
register_method("convex_dual", objective=f"{_OBJECTIVES}:certified", bound=("wong-kolter", 0.0, 0.0), stacks=False,
                reads=("projections",),
                help="Wong & Kolter: the robust loss of the convex outer polytope's dual alone")
register_method("ibp", objective=f"{_OBJECTIVES}:certified", bound=("ibp", 1.0, 0.5), stacks=False,
                help="Gowal et al.: interval bounds, kappa 1 -> 0.5")
register_method("crown_ibp", objective=f"{_OBJECTIVES}:certified", bound=("crown-ibp", 1.0, 0.5), stacks=False,
                help="Zhang et al.: beta 1 -> 0 mixes CROWN-IBP into IBP")
register_method("dpsgd", objective=f"{_OBJECTIVES}:natural", private=True, stacks=False, check=f"{__name__}:check_private",
                help="DP-SGD (Abadi et al.) through opacus: natural training made private")


def check_private(config: Any, sizes: Optional[tuple[int, int]], where: str) -> None:
    """DP-SGD needs opacus, and its accountant's epsilon at the end of training (where the data's size is known) finite."""
    import importlib.util

    from robustmia.errors import UserError

    if importlib.util.find_spec("opacus") is None:
        raise UserError(f"{where}{config.method} (DP-SGD) needs opacus: pip install 'robustmia[dp]'")
    if sizes is not None:
        import math

        from robustmia.training.config import DEFAULT_EPOCHS
        from robustmia.training.private import dp_epsilon

        n = config.train_size or sizes[0]
        steps = config.iterations or (config.epochs or DEFAULT_EPOCHS) * math.ceil(n / config.batch_size)
        try:
            dp_epsilon(config, n, steps)
        except UserError as e:
            raise UserError(f"{where}{e}") from None
