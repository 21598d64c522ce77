"""Training methods: the one list of their names, families and defaults (the objectives themselves are in
training.objectives, keyed by these names). Importable without numerical libraries."""

# adversarial methods: default attack steps, step size as a fraction of eps, BatchNorm mode
ADVERSARIAL: dict[str, tuple[int, float, str]] = {
    "pgd": (7, 0.25, "train"),      # Madry et al.: 7 steps of 2/255 at 8/255, on the train-mode model
    "trades": (10, 0.25, "eval"),   # Zhang et al.: 10 steps of ~2/255 at 8/255, attack in eval mode
    "fgsm_rs": (1, 1.25, "train"),  # Wong et al. (2020): one step of 1.25 eps from a random start
    "dp_pgd": (7, 0.25, "train"),   # PGD examples on the current model, then a DP-SGD step (training.private)
}

# certified methods: bound used, default kappa start and end (weight of the clean loss)
CERTIFIED: dict[str, tuple[str, float, float]] = {
    "convex_dual": ("wong-kolter", 0.0, 0.0),  # Wong & Kolter: the robust loss alone
    "ibp": ("ibp", 1.0, 0.5),                  # Gowal et al.: kappa 1 -> 0.5
    "crown_ibp": ("crown-ibp", 1.0, 0.5),      # Zhang et al.: and beta 1 -> 0 mixes CROWN-IBP into IBP
}

# differentially private methods (DP-SGD through opacus, training.private): natural and PGD training made private
DP: tuple[str, ...] = ("dpsgd", "dp_pgd")

METHODS: tuple[str, ...] = ("natural", *ADVERSARIAL, *CERTIFIED, "dpsgd")

# methods whose K models of one recipe can train as one batched computation (training.stacked):
# the certified ones bound the network layer by layer and are not stacked
STACKABLE: tuple[str, ...] = ("natural", *(m for m in ADVERSARIAL if m not in DP))  # DP steps are per model
