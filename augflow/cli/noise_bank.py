"""`augflow noise-bank INPUT... -o bank.npz`: real noise from the flat regions of low-quality frames.

Inputs are image files, folders of images (read in name order) or video files. With `--frames T`
(T > 1), each run of T consecutive frames of a folder or video is one clip, and a window must be
flat and stable over the whole clip (NegVSR's noise *sequences*); with T = 1 every image is on its
own. The bank feeds the `noise_negatives` op.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Iterator, Optional

import numpy as np
import typer

from augflow.cli.console import fail

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"}


def _video_frames(path: Path, limit: int | None) -> Iterator[np.ndarray]:
    import cv2

    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise ValueError(f"cannot open video {path} (OpenCV has no decoder for it); extract its frames to a folder")
    try:
        n = 0
        while limit is None or n < limit:
            ok, frame = cap.read()
            if not ok:
                break
            n += 1
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    finally:
        cap.release()


def _clips(frames: Iterator[np.ndarray], length: int) -> Iterator[np.ndarray]:
    buf: list[np.ndarray] = []
    for frame in frames:
        buf.append(frame)
        if len(buf) == length:
            yield np.stack(buf)
            buf = []


def iter_inputs(inputs: list[Path], frames: int, max_frames: int | None) -> Iterator[tuple[str, np.ndarray]]:
    """(source name, image or clip) for every input, in a stable order."""
    from augflow.io.decode import load_image

    for path in inputs:
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                raise ValueError(f"{path} holds no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
            files = files[:max_frames] if max_frames else files
            if frames == 1:
                for f in files:
                    yield str(f), load_image(f, "rgb")
            else:
                for i, clip in enumerate(_clips((load_image(f, "rgb") for f in files), frames)):
                    yield f"{path}#clip{i}", clip
        elif path.suffix.lower() in VIDEO_SUFFIXES:
            for i, clip in enumerate(_clips(_video_frames(path, max_frames), frames)):
                yield f"{path}#clip{i}", clip if frames > 1 else clip[0]
        elif path.is_file():
            if frames > 1:
                raise ValueError(f"{path} is a single image; --frames {frames} needs folders of frames or videos")
            yield str(path), load_image(path, "rgb")
        else:
            raise FileNotFoundError(f"input {str(path)!r} does not exist")


def noise_bank(
    inputs: Annotated[list[Path], typer.Argument(help="Images, folders of frames, or videos.", show_default=False)],
    output: Annotated[Path, typer.Option("--output", "-o", help="Bank file to write (.npz).", show_default=False)],
    patch_size: Annotated[int, typer.Option("--patch-size", "-p", min=2, help="Window side in pixels.")] = 64,
    stride: Annotated[Optional[int], typer.Option(help="Window step (default: the patch size).")] = None,
    frames: Annotated[int, typer.Option("--frames", "-t", min=1, help="Frames per noise sequence (clip).")] = 1,
    max_var: Annotated[float, typer.Option("--max-var", help="Max gray variance of a window (8-bit units).")] = 50.0,
    min_mean: Annotated[float, typer.Option("--min-mean", help="Min gray mean of a window (8-bit units).")] = 0.0,
    max_var_of_var: Annotated[float, typer.Option("--max-var-of-var", help=(
        "Max variance over a clip's frames of the window's variance."))] = 50.0,
    max_var_of_mean: Annotated[float, typer.Option("--max-var-of-mean", help=(
        "Max variance over a clip's frames of the window's mean."))] = 50.0,
    max_per_input: Annotated[Optional[int], typer.Option("--max-per-input", min=1, help=(
        "Keep at most this many (the flattest) windows per image or clip."))] = None,
    max_frames: Annotated[Optional[int], typer.Option("--max-frames", min=1, help=(
        "Read at most this many frames per folder or video."))] = None,
) -> None:
    """Extract noise from flat, low-variance windows (minus their mean) into a bank for `noise_negatives`."""
    from augflow.negatives.noise import build_noise_bank

    settings = dict(patch_size=patch_size, stride=stride, max_var=max_var, min_mean=min_mean,
                    max_var_of_var=max_var_of_var, max_var_of_mean=max_var_of_mean, max_patches=max_per_input)
    try:
        bank = build_noise_bank(iter_inputs(inputs, frames, max_frames), **settings)
    except (ValueError, FileNotFoundError, OSError) as exc:
        raise fail(str(exc)) from None
    bank.save(output)
    n, t, p = bank.noise.shape[:3]
    typer.echo(f"{output}: {n} noise {'sequences' if t > 1 else 'patches'} of {p}x{p}"
               f"{f' x {t} frames' if t > 1 else ''} from {len(bank.sources)} input(s); "
               f"gray variance {float(bank.variances.min()):.2f}-{float(bank.variances.max()):.2f}")


__all__ = ["noise_bank", "iter_inputs"]
