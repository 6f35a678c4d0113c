"""`diffmatte serve`: the matting web app and HTTP API on a local port (needs diffmatte[serve])."""
from __future__ import annotations

import click

from ..runtime import PRECISION_CHOICES, keep_freed_memory, set_threads
from .options import max_pixels_option, model_option, threads_option

__all__ = ["command"]

HELP = """Start the matting web app and HTTP API, and print its URL.

\b
  diffmatte serve                      # http://127.0.0.1:8000/
  diffmatte serve --port 8080 --model ViTS_1024.pth

\b
The page opens or takes a dropped image, makes a trimap automatically or lets you paint
one, shows each sampler step, and re-mattes only a window around each correction stroke.
API: GET /api/health, POST /api/matte (see the README). Binds 127.0.0.1 unless --host says
otherwise: the server has no authentication, so expose it to a network only on purpose.
"""


@click.command(help=HELP, short_help="Start the matting web app and HTTP API.")
@model_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every interface).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="Port (0: any free one).")
@click.option("--precision", type=click.Choice(PRECISION_CHOICES), default="auto", show_default=True,
              help="Network arithmetic (auto: bf16 where the CPU or GPU multiplies it natively, else fp32).")
@click.option(
    "--max-upload-mb", type=click.FloatRange(0.01), default=64.0, show_default=True, help="Largest request body (413 above)."
)
@click.option(
    "--queue", "queue_size", type=click.IntRange(0), default=4, show_default=True,
    help="Requests that may wait behind the running one (503 + Retry-After beyond).",
)
@click.option(
    "--time-limit", type=click.FloatRange(0.1), default=120.0, show_default=True,
    help="Seconds a request may take, waiting included (503 beyond).",
)
@click.option("--max-sample-steps", type=click.IntRange(1, 1000), default=100, show_default=True, help="Most steps a request may ask.")
@threads_option
@max_pixels_option
def command(
    model: str,
    host: str,
    port: int,
    precision: str,
    max_upload_mb: float,
    queue_size: int,
    time_limit: float,
    max_sample_steps: int,
    threads: int | None,
    max_pixels: int,
) -> None:
    from ..server import ServerConfig, bind, check_installed, is_loopback, run_server

    check_installed()
    keep_freed_memory()  # every step's maps reused from the heap (diffmatte.runtime)
    config = ServerConfig(
        model=model,
        host=host,
        port=port,
        precision=precision,
        threads=threads,
        max_pixels=max_pixels,
        max_upload_bytes=int(max_upload_mb * 2**20),
        queue_size=queue_size,
        time_limit=time_limit,
        max_sample_steps=max_sample_steps,
    )
    if not is_loopback(host):
        click.echo(
            f"warning: listening on {host}: every machine that can reach this one can use the server "
            "(no authentication); use the default 127.0.0.1 unless that is what you want",
            err=True,
        )
    sock = bind(host, port)  # before the model loads: a busy port fails at once
    set_threads(threads)
    from ..loading import load_model

    net = load_model(model, precision=precision)
    run_server(config, net, model, lambda line: click.echo(line), sock=sock)
