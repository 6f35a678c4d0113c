"""`diffmatte export`: write a model as two ONNX graphs (encoder, one decoder step) and its config."""
from __future__ import annotations

from pathlib import Path

import click

from ..errors import CheckpointError
from .options import echo_warnings, model_option, overwrite_option

__all__ = ["command"]

HELP = """Export --model as ONNX to the folder -o: encoder.onnx, decoder_step.onnx, diffmatte_onnx.json.

\b
  diffmatte export -o lite0-onnx                          # the packaged default model
  diffmatte export --model ViTS_1024.pth -o vits-onnx
  diffmatte predict photo.jpg trimap.png -o alpha.png --model vits-onnx   # runs with onnxruntime

Both graphs take any batch, height and width; the sampling loop stays in Python, so any
--steps works. After writing, onnxruntime is checked against torch at another size.
Needs diffmatte[export] (onnx, onnxscript); running the folder needs only onnxruntime.
"""


@click.command(help=HELP, short_help="Export a model to ONNX (encoder + one decoder step).")
@model_option
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="Folder to write the export to.")
@click.option("--opset", type=click.IntRange(17), default=18, show_default=True, help="ONNX opset (17 or newer).")
@overwrite_option
def command(model: str, output: Path, opset: int, overwrite: bool) -> None:
    from ..onnx.export import export_onnx

    if Path(model).is_dir():
        raise CheckpointError(f"--model {model} is a folder (an ONNX export?); export from a checkpoint or packaged model")
    with echo_warnings(lambda m: click.echo(m, err=True)):
        from ..loading import load_model

        net = load_model(model, precision="fp32").net
    result = export_onnx(net, output, opset=opset, overwrite=overwrite, source=model)
    sizes = ", ".join(f"{p.name} ({p.stat().st_size / 2**20:.1f} MiB)" for p in result.files)
    h, w = result.check_size
    click.echo(f"wrote {result.folder}: {sizes}; onnxruntime matches torch within {result.max_abs_error:.1e} at {h}x{w}")
