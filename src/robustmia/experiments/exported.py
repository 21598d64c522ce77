"""A model exported with ``torch.export`` (a ``.pt2`` file): a kind of target (experiments.targets) for auditing
a deployed model whose training code you do not have.

``--arch exported --weights model.pt2`` (``arch="exported"`` in the API, ``arch: exported`` in a spec's external
block), with the data it saw and its members as for any model trained elsewhere (experiments.external). The file
holds both the network and its weights, so there is nothing to rebuild: no architecture to name, no entry point to
trust. ``torch.export.load`` reads it as data (a graph of ATen operators and tensors; no Python code of the file's
author runs), unlike a ``torch.hub`` repository, whose ``hubconf.py`` robustmia would have to import and run.

Export the model in eval mode, with a dynamic batch dimension, taking pixels in [0, 1] (or give ``--normalize``)::

    batch = torch.export.Dim("batch", min=1)
    program = torch.export.export(model.eval(), (torch.rand(2, 3, 32, 32),), dynamic_shapes=({0: batch},))
    torch.export.save(program, "model.pt2")

The program's BatchNorm and dropout stay as they were exported (eval mode): robustmia never switches them.
Its parameters are there for the white-box attacks (gradient norms), and PGD differentiates through it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from robustmia.errors import UserError
from robustmia.experiments.external import ExternalModel

ARCH = "exported"  # the arch that names this kind


def load_program(path: Path, info: Any) -> Any:
    """The exported program's module, frozen in the mode it was exported in, checked to take a batch of ``info``'s images."""
    import torch
    from torch import nn

    class Exported(nn.Module):
        """An exported program as a module whose train/eval switch leaves the program as it was exported."""

        def __init__(self, program: nn.Module):
            super().__init__()
            self.program = program

        def train(self, mode: bool = True) -> "Exported":
            self.training = mode  # the program's own mode was fixed by torch.export
            return self

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.program(x)

    quiet = logging.getLogger("torch.export")  # (it logs its own traceback of a file it cannot read: the one line below says it)
    level, quiet.level = quiet.level, logging.CRITICAL + 1
    try:
        program = torch.export.load(str(path)).module()
    except Exception as e:
        raise UserError(f"{path} is not a program saved by torch.export.save ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
                        "export the model as docs/tutorials/audit-your-model.md shows") from None
    finally:
        quiet.setLevel(level)
    try:
        with torch.no_grad():
            out = program(torch.zeros(3, *info.shape))
    except Exception as e:
        raise UserError(f"the program in {path} cannot take a batch of three {'x'.join(map(str, info.shape))} images "
                        f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); export it with a dynamic batch "
                        "dimension (dynamic_shapes=({0: torch.export.Dim('batch')},)) and the dataset's image shape") from None
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (3, info.num_classes):
        shape = tuple(out.shape[1:]) if isinstance(out, torch.Tensor) else type(out).__name__
        raise UserError(f"the program in {path} gives {shape} outputs per image, but {info.name} has {info.num_classes} classes; "
                        "export a model that gives one logit per class")
    return Exported(program)


class ExportedModel(ExternalModel):
    """A model trained elsewhere whose weights file is a ``torch.export`` program (the module docstring)."""

    def check(self, device: Any) -> None:
        if self.spec.arch_args:
            raise UserError("an exported program is built as it was exported: drop --arch-args")
        super().check(device)

    def _build(self, weights: Path, device: Any) -> Any:
        from robustmia.models.external import wrap_model

        info = self.examples().info
        return wrap_model(load_program(weights, info), info, self.spec.normalize, f"the program in {weights}", device)
