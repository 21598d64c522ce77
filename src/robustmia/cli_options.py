"""The option declarations that several ``robustmia`` commands share (typer needs each command's
parameters written out; their definitions live here once)."""

from __future__ import annotations

import typer


class StudyOptions:
    """The options that `run` and `reproduce` share (typer needs each command's parameters written out)."""

    resume = typer.Option(False, "--resume", help="Continue an interrupted study.")
    data_dir = typer.Option(None, "--data-dir", help="Folder with one sub-folder per dataset (cifar10/, svhn/), e.g. ../shared/data, or one dataset's own folder.")
    device = typer.Option("auto")
    quiet = typer.Option(False, "--quiet")
    backend = typer.Option("local", "--backend", help="local (this machine) or ray (a Ray cluster; pip install 'robustmia[ray]').")
    address = typer.Option(None, "--address", help="Ray: the cluster's address (`ray start --head` prints it); default: start a local one.")
    workers = typer.Option(None, "--workers", min=1, help="Tasks at a time: local (default: one per --threads cores on a CPU, 1 on a GPU), or the CPUs of Ray's local cluster without --address (default: all).")
    threads = typer.Option(None, "--threads", min=1, help="Torch threads per task (default 1 on a CPU; Ray: CPUs per task). Same --threads, same numbers on either backend (another CPU model may round differently).")
    tiny = typer.Option(False, "--tiny", help="Run the study's tiny twin: every target, method and attack at the smallest sizes, in minutes on a CPU (prove a GPU preset first).")
    plan = typer.Option(False, "--plan", help="Print what the study will cost (each target's FLOPs and the estimated time) and stop: nothing trains.")
    plan_json = typer.Option(False, "--json", help="With --plan: print the plan as JSON.")
    throughput = typer.Option(None, "--throughput", help="With --plan: the device's TFLOP/s (default: one H200's measured 170 for a GPU study, 0.1 for 2 CPU cores).")
    allow_code = typer.Option(None, "--allow-code", help="A module whose entry points (arch: package.module:factory) the spec may run (repeatable); a spec runs no code otherwise.")


class ExternalOptions:
    """A model trained elsewhere, for `attack` and `evaluate` (robustmia.experiments.external)."""

    arch = typer.Option(None, "--arch", help="A model trained elsewhere: a robustmia architecture, torchvision:NAME, timm:NAME, robustbench:NAME, package.module:factory, or exported (--weights is a torch.export program).")
    arch_args = typer.Option(None, "--arch-args", help='JSON keyword arguments of the architecture, e.g. \'{"num_classes": 10}\'.')
    weights = typer.Option(None, "--weights", help="Its weights: .safetensors, or a .pt/.pth state dict (read with weights_only=True); with --arch exported, a torch.export .pt2 file.")
    normalize = typer.Option(None, "--normalize", help="The normalisation it expects: MEAN/STD per channel (0.49,0.48,0.45/0.25,0.24,0.26) or none.")
    dataset = typer.Option(None, "--dataset", help="The dataset its examples come from (see `robustmia datasets`).")
    data_dir = typer.Option(None, "--data-dir", help="Where that dataset lies: its folder, or a folder of dataset folders.")
    members = typer.Option(None, "--members", help="Its members: indices into the dataset's train split (.npz, .json or .csv), or all: the whole train split (RobustBench's models).")
    index_order = typer.Option(None, "--index-order", help="What --members' indices index: split (the dataset's train split, default) or original (the dataset's own order: scikit-learn's for digits; members may then come from either split).")
    members_dir = typer.Option(None, "--members-dir", help="Or: an image folder of its members (class sub-folders) ...")
    nonmembers_dir = typer.Option(None, "--nonmembers-dir", help="... and one of images it never saw.")
    image_size = typer.Option(None, "--image-size", help="Side the images of --members-dir/--nonmembers-dir are resized to (default 32).")
    trained_with = typer.Option(None, "--trained-with", help="How it was trained, as you know it: METHOD or METHOD:EPS, e.g. pgd:8/255.")
    reference_recipe = typer.Option(None, "--reference-recipe", help="Recipe to train reference models with (LiRA, RMIA, shadow); a run's default: its own.")
    reference_train = typer.Option(None, "--reference-train", help="A training setting of the reference recipe, KEY=VALUE (repeatable), e.g. epochs=10.")
    reference_weights = typer.Option(None, "--reference-weights", help="Or your own reference models of the same arch (repeat the flag) ...")
    reference_keep = typer.Option(None, "--reference-keep", help="... and an .npz whose keep (K, members + non-members) marks what each trained on.")
    out = typer.Option(None, "--out", help="Folder for its audit and cached PGD points (default runs/external-<sha of the weights>).")
    threat_model = typer.Option(None, "--threat-model", help="RobustBench models (--arch robustbench:NAME): Linf (default), L2 or corruptions.")
    model_dir = typer.Option(None, "--model-dir", help="RobustBench models: the folder of its checkpoint layout, MODEL_DIR/<dataset>/<threat model>/<NAME>.pt (default ./models).")
    download = typer.Option(False, "--download", help="RobustBench models: fetch a missing checkpoint with RobustBench's own loader.")


class ProbeOptions:
    """How `attack` computes what the label-only, white-box and verified-margin attacks read (robustmia.privacy.probes)."""

    bisections = typer.Option(7, "--boundary-bisections", min=1, help="Bisection steps of the boundary-distance search (label-boundary*).")
    steps = typer.Option(10, "--probe-steps", min=1, help="PGD steps per radius of that search, and of label-adv.")
    draws = typer.Option(32, "--noise-draws", min=1, help="Random perturbations of label-noise.")
    restarts = typer.Option(4, "--adv-restarts", min=1, help="PGD runs from random starts of label-adv.")
    bound = typer.Option("crown", "--bound", help="Certified bound of the verified-margin attacks: crown, wong-kolter, crown-ibp, ibp.")
    delta = typer.Option(1e-5, "--delta", help="Delta of each attack's empirical epsilon lower bound.")


class OneRunOptions:
    """The options of `dp-audit` (robustmia.experiments.dp_audit)."""

    run = typer.Argument(..., help="A run trained with canaries (robustmia train --set 'canaries={count: 1000, kind: mislabelled}').")
    attacks = typer.Option("confidence,loss", "--attacks", help="Attacks that score the canaries (any registered attack).")
    k = typer.Option(None, "--k", help="K_POS,K_NEG guesses fixed in advance (default: a grid, the confidence split across it).")
    confidence = typer.Option(0.95, "--confidence", help="Confidence of the lower bound.")
    delta = typer.Option(None, "--delta", help="Delta of the (epsilon, delta)-DP hypothesis (default: the run's dp_delta, else 1e-5).")
    references = typer.Option(None, "--references", help="Reference models, for attacks that need them (default 16).")
    bootstrap = typer.Option(0, "--bootstrap", help="Bootstrap resamples of the attacks' descriptive metrics.")
    as_json = typer.Option(False, "--json", help="Print one JSON record per attack.")
