"""Export a trained model for another framework: ``python -m models.export --format torch RUN``.

``--format torch`` writes a safetensors file whose keys and layouts are those of a PyTorch
``nn.Sequential`` of the same architecture (``0.weight`` of shape (out, in), ``0.bias``, ...;
activations and dropout take their places in the sequence; a CNN's ``Conv2d`` weights (out, in,
k, k), ``BatchNorm2d`` with its buffers ``running_mean``, ``running_var`` and
``num_batches_tracked``, ``MaxPool2d`` and ``Flatten``), so that::

    import torch
    from safetensors.torch import load_file          # or tinygrad_lite.nn.state.load_safetensors
    net = torch.nn.Sequential(torch.nn.Linear(784, 128), torch.nn.ReLU(), ...)  # printed by the export
    net.load_state_dict(load_file("runs/best.torch.safetensors"))

RUN is a run folder (its ``model.safetensors``) or a model/checkpoint file. The output
(``--output``) defaults to a file beside RUN: ``runs/best.torch.safetensors`` for the folder
``runs/best`` (a run's folder is not written into), ``model.torch.safetensors`` beside a file;
an existing file is replaced only with ``--overwrite``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from models import registry
from models.checkpoint import CheckpointError, load_checkpoint, model_file
from models.config import ConfigError, TrainConfig, display
from models.files import atomic_write, describe_os_error
from tinygrad_lite.nn.state import save_safetensors

__all__ = ["export_torch", "torch_module_code", "main", "FORMATS"]

FORMATS = ("torch",)


def torch_module_code(config: TrainConfig, sizes: list[int]) -> str:
    """The ``torch.nn.Sequential(...)`` expression of the model's architecture."""
    mods = registry.MODELS[config.model].torch(config, sizes)
    return "torch.nn.Sequential(" + ", ".join(f"torch.nn.{m}" for m in mods) + ")"


def export_torch(run: str | Path, output: str | Path | None = None, *, overwrite: bool = False) -> tuple[Path, str]:
    """Write the model of ``run`` in PyTorch's layout; returns (the file, the Sequential's code)."""
    ckpt = load_checkpoint(model_file(run))
    if not ckpt.config:
        raise CheckpointError(f"{ckpt.path}: holds no config to know the architecture from")
    try:
        config = TrainConfig.from_dict(ckpt.config, f"{ckpt.path}: stored config")
    except ConfigError as e:
        raise CheckpointError(str(e)) from None
    entry = registry.MODELS[config.model]
    sizes = entry.sizes(config, {k: tuple(v.shape) for k, v in ckpt.params.items()})
    if sizes is None:
        raise CheckpointError(f"{ckpt.path}: its parameters do not form a {config.model.upper()}")
    out = Path(output) if output is not None else Path(str(Path(run)).rstrip("/").removesuffix(".safetensors")
                                                        .removesuffix(".npz") + ".torch.safetensors")
    if out.exists() and not overwrite:
        raise FileExistsError(f"--output {display(out)} exists; pass --overwrite to replace it")
    if out.is_dir():
        raise IsADirectoryError(f"--output {display(out)} is a folder; name a file")
    code = torch_module_code(config, sizes)
    arrays = entry.to_torch(config, sizes, ckpt.params)
    metadata = {"format": "pt", "architecture": code, "source": ckpt.path, "config": json.dumps(config.to_dict())}
    atomic_write(out, lambda f: save_safetensors(f, arrays, metadata))
    return out, code


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m models.export", description=__doc__.split("\n\n")[0])
    p.add_argument("run", help="a run folder, or a model.safetensors / checkpoint.safetensors (or older .npz)")
    p.add_argument("--format", choices=FORMATS, required=True, help="the framework whose layout to write")
    p.add_argument("--output", "-o", help="file to write (default: <RUN>.torch.safetensors beside RUN)")
    p.add_argument("--overwrite", action="store_true", help="replace --output if it exists")
    args = p.parse_args(argv)
    try:
        out, code = export_torch(args.run, args.output, overwrite=args.overwrite)
    except (CheckpointError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"error: {e if isinstance(e, (FileExistsError, IsADirectoryError)) else describe_os_error(e)}",
              file=sys.stderr)
        return 2
    print(f"wrote {display(out)}; load it into PyTorch with:\n"
          f"  net = {code}\n"
          f"  net.load_state_dict(safetensors.torch.load_file({str(display(out))!r}))"
          + ("\n  net.eval()  # before predicting: dropout off, BatchNorm's running statistics"
             if "Dropout(" in code or "BatchNorm" in code else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
