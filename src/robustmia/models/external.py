"""Models trained elsewhere: an architecture, its weights and the input normalisation it expects.

- ``arch``: a robustmia architecture (``small-cnn``, ``wrn-16-4``, ...: its network without
  robustmia's own normalisation), ``torchvision:NAME`` (e.g. ``torchvision:resnet18``),
  ``timm:NAME`` (with timm installed: ``pip install timm``), ``robustbench:NAME`` (RobustBench's
  zoo, models.robustbench; its normalisation built in), or a Python entry point
  ``package.module:factory`` that returns an ``nn.Module``. ``arch_args`` are passed to the
  constructor (e.g. ``{"num_classes": 10}``).
- ``weights``: a ``.safetensors`` file, or a PyTorch ``.pt``/``.pth`` state dict read with
  ``torch.load(weights_only=True)``, which builds tensors and plain containers and refuses
  anything else (a pickle that would run code is refused, and never run). A state dict
  nested under ``state_dict``, ``model``, ``model_state_dict``, ``net`` or ``module``, and the
  prefixes ``module.`` (DataParallel) and ``_orig_mod.`` (torch.compile) are handled.
- ``normalize``: the (mean, std) per channel the model expects of inputs in [0, 1], or
  ``None`` when it takes [0, 1] pixels as they are. robustmia puts it in front of the network,
  so that epsilons stay in pixel space.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, Optional

import torch
from torch import nn

from robustmia.data.catalog import DatasetInfo
from robustmia.errors import UserError
from robustmia.models.inference import nonfinite_tensor
from robustmia.models.layers import Normalize

NESTED_KEYS = ("state_dict", "model_state_dict", "model", "net", "module")
PREFIXES = ("module.", "_orig_mod.")


# constructor arguments that would fetch or read weights behind --weights' back (weights come from --weights alone)
WEIGHT_ARGS = {"torchvision": ("weights", "weights_backbone"), "timm": ("pretrained", "checkpoint_path", "pretrained_cfg",
                                                                         "pretrained_cfg_overlay")}


def build_architecture(arch: str, info: DatasetInfo, arch_args: Optional[dict[str, Any]] = None, *, code_named: bool = True) -> nn.Module:
    """The untrained network ``arch`` for inputs shaped like ``info`` (see the module docstring). An
    entry point runs only where the user named it as code (``code_named``: a flag or the Python API),
    or its module is allowed (robustmia.entry_points)."""
    from robustmia import entry_points

    args = dict(arch_args or {})
    kind, _, name = arch.partition(":")
    fetching = [k for k in WEIGHT_ARGS.get(kind, ()) if k in args]
    if fetching:
        raise UserError(f"--arch-args {fetching[0]!r} would load weights for {arch}; give the weights with --weights instead")
    if not name:  # a robustmia architecture, without its normalisation layer
        from robustmia.models import model_spec

        c, h, w = info.shape
        return model_spec(arch).build_with(c, h, w, info.num_classes, args, f"--arch-args of {arch}")
    if kind == "robustbench":  # RobustBench's zoo (models.robustbench): built by its own package, offline
        from robustmia.models import robustbench

        threat_model = args.pop("threat_model", "Linf")  # (given by the RobustBench target's --threat-model)
        if args:
            raise UserError(f"{arch} is built as RobustBench defines it: drop --arch-args")
        return robustbench.build(name, info.name, threat_model)
    if entry_points.is_entry_point(arch):
        if not code_named:
            entry_points.check_allowed(arch, "the external target", entry_points.allowed_modules())
        factory = entry_points.entry_point(arch, f"--arch {arch}")
        model = entry_points.call_user_code(factory, f"the entry point {arch} (called with {args})", **args)
        if not isinstance(model, nn.Module):
            raise UserError(f"the entry point {arch!r} returned a {type(model).__name__}, not a torch.nn.Module")
        return model
    _check_finite(args, f"--arch-args of {arch}")
    from robustmia.models.zoo import sized

    try:
        if kind == "torchvision":
            import torchvision.models as tvm

            return sized(lambda: tvm.get_model(name, **{"weights": None, **args}), f"--arch {arch}")
        if kind == "timm":
            try:
                import timm
            except ImportError:
                raise UserError(f"architecture {arch!r} needs timm: pip install 'robustmia[timm]'") from None
            return sized(lambda: timm.create_model(name, pretrained=False, **args), f"--arch {arch}")
    except UserError:
        raise
    except Exception as e:
        raise UserError(f"cannot build the architecture {arch!r} with {args} ({type(e).__name__}: {e}); "
                        "check its name and --arch-args") from None
    raise UserError(f"unknown kind of architecture {kind!r} in {arch!r}; use a robustmia architecture, torchvision:NAME, "
                    "timm:NAME or package.module:factory")


def _check_finite(value: Any, where: str) -> None:
    """Every number in an architecture's arguments finite (NaN or infinity reach no constructor)."""
    import math

    if isinstance(value, dict):
        for k, v in value.items():
            _check_finite(v, f"{where}: {k}")
    elif isinstance(value, (list, tuple)):
        for v in value:
            _check_finite(v, where)
    elif isinstance(value, float) and not math.isfinite(value):
        raise UserError(f"{where} is {value}: give a finite number")


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a weights file, never unpickling anything but tensors and plain containers."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"weights file {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            state = load_file(str(path))
        except Exception as e:
            raise UserError(f"{path} is not a readable safetensors file ({e})") from None
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e:
            first = str(e).strip().splitlines()[0]
            raise UserError(f"{path} holds more than tensors, and robustmia never unpickles code ({first}); "
                            "save the model's state_dict() or use safetensors") from None
        except Exception as e:
            raise UserError(f"{path} is not a readable PyTorch weights file ({type(e).__name__}: {e})") from None
    while isinstance(state, dict) and not any(isinstance(v, torch.Tensor) for v in state.values()):
        nested = next((state[k] for k in NESTED_KEYS if isinstance(state.get(k), dict)), None)
        if nested is None:
            break
        state = nested
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f"{path} holds no state dict of tensors (looked under {', '.join(NESTED_KEYS)}); save model.state_dict()")
    for prefix in PREFIXES:
        if all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    bad = nonfinite_tensor(state)
    if bad is not None:
        raise UserError(f"{path}: {bad} holds NaN or infinite values (the model diverged or the file is damaged); "
                        "give weights of a model that trained normally")
    return state


def load_weights_strict(model: nn.Module, state: dict[str, torch.Tensor], arch: str, path: Path) -> None:
    """Load ``state`` into ``model``; any missing, unexpected or differently shaped tensor is one
    line naming the first of them."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if shapes:
        k = shapes[0]
        raise UserError(f"weights {path} do not fit {arch}: {k} has shape {tuple(state[k].shape)} in the file, "
                        f"{tuple(own[k].shape)} in the architecture ({len(shapes)} tensors differ); check --arch and --arch-args")
    if missing or unexpected:
        what = f"{missing[0]} is missing from the file" if missing else f"{unexpected[0]} is in the file but not in the architecture"
        raise UserError(f"weights {path} do not fit {arch}: {what} ({len(missing)} missing, {len(unexpected)} unexpected); "
                        "check --arch and --arch-args")
    model.load_state_dict(state)


def load_external_model(arch: str, weights: Path, info: DatasetInfo, *, normalize: Optional[tuple[list[float], list[float]]] = None,
                        arch_args: Optional[dict[str, Any]] = None, device: torch.device | str = "cpu",
                        code_named: bool = True) -> nn.Module:
    """The user's model in eval mode: ``Normalize(mean, std)`` (if given) in front of the network."""
    net = build_architecture(arch, info, arch_args, code_named=code_named)
    load_weights_strict(net, read_state_dict(weights), arch, weights)
    return wrap_model(net, info, normalize, arch, device)


def wrap_model(net: nn.Module, info: DatasetInfo, normalize: Optional[tuple[list[float], list[float]]], arch: str,
               device: torch.device | str = "cpu") -> nn.Module:
    """``net`` behind its normalisation, in eval mode on ``device``, checked to map the dataset's
    images to one logit per class."""
    if normalize is not None:
        mean, std = normalize
        if len(mean) != info.shape[0] or len(std) != info.shape[0]:
            raise UserError(f"--normalize gives {len(mean)} means and {len(std)} stds for {info.shape[0]}-channel images; give one per channel")
        net = nn.Sequential(Normalize(tuple(mean), tuple(std)), net)
    model = net.to(device).eval()
    with torch.no_grad():
        try:
            out = model(torch.zeros(1, *info.shape, device=device))
        except Exception as e:
            raise UserError(f"{arch} cannot take {info.name}'s {'x'.join(map(str, info.shape))} images "
                            f"({type(e).__name__}: {str(e).splitlines()[0]}); check --arch-args or the dataset") from None
    if out.shape != (1, info.num_classes):
        raise UserError(f"{arch} gives {tuple(out.shape[1:])} outputs per image, but {info.name} has {info.num_classes} classes; "
                        "set the number of classes in --arch-args (e.g. '{\"num_classes\": 10}')")
    return model
