"""`augflow preview`: a picture of what a pipeline does, instead of reading its parameters.

Per input, a block of tiles: the original, then n augmented versions (each view of a multi-view
pipeline gets its own tile), with masks and boxes drawn over the image and a caption of the ops
that were applied (from provenance). Tile k of input i is `pipeline(sample, index=i, epoch=k)`,
the same as copy k of `augflow materialize`. The tile rectangles are stored in the PNG's text
metadata (`augflow:tiles`) so tools and tests can find them.
"""

from __future__ import annotations

import json
import math
import zlib
from pathlib import Path
from typing import Annotated, Any, Optional

import numpy as np
import typer

from augflow.cli.console import fail

PAD = 8
_PALETTE = np.array([(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
                     (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128),
                     (170, 110, 40)], dtype=np.uint8)


def preview(
    pipeline: Annotated[Path, typer.Argument(help="Pipeline YAML file.", show_default=False)],
    images: Annotated[list[str], typer.Argument(help=(
        "Image files, or sources (folder, .csv/.jsonl manifest with masks/boxes, .tar shards)."), show_default=False)],
    n: Annotated[int, typer.Option("-n", min=1, help="Augmented versions per image.")] = 16,
    output: Annotated[Path, typer.Option("--output", "-o", help="PNG file to write.")] = Path("preview.png"),
    seed: Annotated[Optional[int], typer.Option(help="Override the pipeline's seed.")] = None,
    tile: Annotated[int, typer.Option(min=32, help="Tile size in pixels.")] = 256,
    cols: Annotated[Optional[int], typer.Option(min=1, help="Tiles per row (default: about square).")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many inputs from a source.")] = 4,
) -> None:
    """Render the original and N augmented versions of each image into one PNG grid."""
    from augflow import Pipeline, PipelineConfigError
    from augflow.io.sources import ImageDecodeError, SourceError

    try:
        pipe = Pipeline.from_yaml(pipeline, seed=seed)
    except PipelineConfigError as exc:
        for issue in exc.issues:
            typer.echo(str(issue), err=True)
        raise fail("the pipeline file has errors") from None
    try:
        inputs = _inputs(images, pipe, limit)
    except (SourceError, ImageDecodeError) as exc:
        raise fail(str(exc)) from None
    blocks = []
    for i, (name, sample) in enumerate(inputs):
        tiles = [(f"original: {name}", _as_sample(pipe, sample), [])]
        for k in range(n):
            out = pipe(sample, index=i, epoch=k)
            tiles.extend(_tiles_of(out, k))
        blocks.append(tiles)
    grid, rects = render_grid(blocks, pipe, tile, cols)
    from PIL.PngImagePlugin import PngInfo
    info = PngInfo()
    info.add_text("augflow:tiles", json.dumps(rects))
    info.add_text("augflow:pipeline", str(pipeline))
    output.parent.mkdir(parents=True, exist_ok=True)
    grid.save(output, pnginfo=info)
    typer.echo(f"wrote {output} ({grid.width}x{grid.height}, {len(inputs)} input{'s' if len(inputs) != 1 else ''} "
               f"x {n} augmentations)")


def _inputs(args: list[str], pipe, limit: int) -> list[tuple[str, dict]]:
    from augflow.io.sources import IMAGE_EXTS, FileRef, Item, load_item, open_source
    kinds = {k: s.kind for k, s in pipe.spec.fields.items()}
    out = []
    for arg in args:
        path = Path(arg)
        if path.is_file() and path.suffix.lower().lstrip(".") in IMAGE_EXTS:
            out.append((path.name, load_item(Item(path.name, {"image": FileRef(str(path))}), kinds)))
            continue
        source = open_source(arg)
        for item in source.items[:limit]:
            out.append((item.key, load_item(item, kinds, image_columns=source.image_columns)))
    return out


def _as_sample(pipe, sample: dict):
    base, _ = pipe.prepare(sample)
    return base


def _tiles_of(out, k: int) -> list[tuple[str, Any, list]]:
    if not out.views:
        return [(f"#{k}: " + _ops_caption(out.provenance), out, list(out.provenance))]
    tiles = []
    for vname, view in out.views.items():
        prov = [e for e in out.provenance if e.view in (None, vname)]
        tiles.append((f"#{k} {vname}: " + _ops_caption(prov), view, prov))
    return tiles


def _ops_caption(provenance) -> str:
    names = [e.op for e in provenance]
    return ", ".join(names) if names else "(no op applied)"


# ---- drawing --------------------------------------------------------------------------------
def render_grid(blocks: list[list[tuple[str, Any, list]]], pipe, tile: int, cols: int | None):
    """Lay blocks of (caption, sample) tiles out in a grid; returns the image and tile rectangles."""
    from PIL import Image, ImageDraw

    font = _font(max(10, tile // 20))
    line_h = font.getbbox("Ag")[3] + 3
    cap_h = 3 * line_h + 4
    ncols = cols or _columns(max(len(b) for b in blocks))
    cell_w, cell_h = tile + PAD, tile + cap_h + PAD
    heights = [math.ceil(len(b) / ncols) * cell_h for b in blocks]
    canvas = Image.new("RGB", (ncols * cell_w + PAD, sum(heights) + PAD), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    rects = []
    y0 = PAD
    norm = _normalizers(pipe)
    for b, tiles in enumerate(blocks):
        for t, (caption, sample, provenance) in enumerate(tiles):
            x, y = PAD + (t % ncols) * cell_w, y0 + (t // ncols) * cell_h
            pic = render_tile(sample, provenance, norm, tile)
            canvas.paste(pic, (x + (tile - pic.width) // 2, y + (tile - pic.height) // 2))
            for li, text in enumerate(_wrap(caption, font, tile)[:3]):
                draw.text((x, y + tile + 2 + li * line_h), text, fill=(0, 0, 0), font=font)
            rects.append({"block": b, "tile": t, "box": [x, y, x + tile, y + tile], "caption": caption})
        y0 += heights[b]
    return canvas, rects


def _columns(tiles: int) -> int:
    """About square, preferring the width that leaves the fewest empty cells."""
    base = max(1, math.ceil(math.sqrt(tiles)))
    return min((base, base + 1), key=lambda c: (-(-tiles // c) * c - tiles, c))


def _font(size: int):
    from PIL import ImageFont
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType
        return ImageFont.load_default()


def _wrap(text: str, font, width: int) -> list[str]:
    lines, cur = [], ""
    for word in text.split(" "):
        trial = f"{cur} {word}".strip()
        if font.getlength(trial) <= width or not cur:
            cur = trial
        else:
            lines.append(cur)
            cur = word
    if cur:
        lines.append(cur)
    if len(lines) > 3:
        lines = lines[:3]
        lines[2] = lines[2][: max(0, len(lines[2]) - 3)] + "..."
    return lines


def _normalizers(pipe) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """path -> (mean, 1/std in pixel units) of `normalize` ops, to show normalized images as photos."""
    out = {}
    for step in pipe.op_steps():
        t = getattr(step.op, "transform", None)
        if type(t).__name__ == "Normalize" and getattr(t, "normalization", "standard") == "standard":
            out[step.path] = (np.asarray(t.mean_np, np.float32), np.asarray(t.denominator, np.float32))
    return out


def displayable(img: Any, provenance, norm: dict) -> np.ndarray:
    """Any image the pipeline can output (uint8/16, float, normalized, CHW tensor) -> HxWx3 uint8."""
    from augflow.io.writers import to_hwc
    arr = np.asarray(to_hwc(img, "image"))
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.dtype == np.uint16:
        arr = (arr >> 8).astype(np.uint8)
    elif arr.dtype != np.uint8:
        arr = arr.astype(np.float32)
        applied = [e.path for e in provenance if e.path in norm]
        if applied:
            mean, denom = norm[applied[-1]]
            arr = np.clip(arr / denom[: arr.shape[2]] + mean[: arr.shape[2]], 0, 255)
        elif arr.min() >= 0 and arr.max() <= 1:
            arr = arr * 255.0
        else:
            lo, hi = float(arr.min()), float(arr.max())
            arr = (arr - lo) / (hi - lo + 1e-12) * 255.0
        arr = np.rint(arr).astype(np.uint8)
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    elif arr.shape[2] == 4:   # RGBA over mid-gray
        a = arr[:, :, 3:].astype(np.float32) / 255.0
        arr = np.rint(arr[:, :, :3] * a + 128 * (1 - a)).astype(np.uint8)
    elif arr.shape[2] != 3:
        arr = np.repeat(arr[:, :, :1], 3, axis=2)
    return arr


def render_tile(sample, provenance, norm: dict, tile: int):
    """One sample as a tile-sized picture with its masks and boxes drawn over the image."""
    from PIL import Image, ImageDraw
    from augflow.io.writers import to_hwc

    images = sample.fields_of_kind("image")
    rgb = displayable(sample[images[0]], provenance, norm) if images else np.zeros((tile, tile, 3), np.uint8)
    h, w = rgb.shape[:2]
    for name in sample.fields_of_kind("mask"):
        mask = np.asarray(to_hwc(sample[name], "mask"))
        if mask.shape[:2] == (h, w):
            labels = mask if mask.ndim == 2 else mask.max(axis=2)
            on = labels > 0
            colour = _PALETTE[labels.astype(np.int64) % len(_PALETTE)]
            rgb = rgb.copy()
            rgb[on] = (0.55 * rgb[on] + 0.45 * colour[on]).astype(np.uint8)
    scale = min(tile / w, tile / h)
    pic = Image.fromarray(rgb).resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.BILINEAR)
    draw = ImageDraw.Draw(pic)
    for name in sample.fields_of_kind("bboxes"):
        spec = sample.specs[name]
        labels = next((sample[lf] for lf in spec.label_fields if lf in sample), None)
        for j, box in enumerate(_boxes_xyxy(sample[name], spec.format, w, h)):
            lab = labels[j] if labels is not None and j < len(labels) else j
            lab = int(lab) if isinstance(lab, (int, float, np.number)) and float(lab).is_integer() else lab
            colour = tuple(int(v) for v in _PALETTE[zlib.crc32(str(lab).encode()) % len(_PALETTE)])
            draw.rectangle([v * scale for v in box], outline=colour, width=2)
    for name in sample.fields_of_kind("keypoints"):
        for kp in np.asarray(sample[name], dtype=np.float32).reshape(-1, np.asarray(sample[name]).shape[-1] or 2):
            x, y = kp[0] * scale, kp[1] * scale
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=(255, 0, 0))
    return pic


def _boxes_xyxy(boxes, fmt: str | None, w: int, h: int) -> list[list[float]]:
    arr = np.asarray(boxes, dtype=np.float64).reshape(-1, np.asarray(boxes).shape[-1] if len(boxes) else 4)[:, :4]
    if fmt == "coco":
        arr = np.c_[arr[:, 0], arr[:, 1], arr[:, 0] + arr[:, 2], arr[:, 1] + arr[:, 3]]
    elif fmt == "yolo":
        cx, cy, bw, bh = arr[:, 0] * w, arr[:, 1] * h, arr[:, 2] * w, arr[:, 3] * h
        arr = np.c_[cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2]
    elif fmt == "albumentations":
        arr = arr * np.array([w, h, w, h])
    return arr.tolist()
