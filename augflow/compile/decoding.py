"""Decoding in compiled loaders: JPEGs through libjpeg-turbo (simplejpeg), at a reduced size on request.

Chosen by measurement (bench/decode_reduced.py, results in bench/RESULTS.md): on one
core simplejpeg decodes full-size JPEGs fastest (2400 px: ~2x OpenCV, ~4.5x Pillow), and at 1/2,
1/4, 1/8 it is on par with OpenCV's IMREAD_REDUCED_* and Pillow's `draft` (each wins some cells),
with one call for every scale (`min_width`/`min_height`). Inputs it cannot take (not JPEG, CMYK, EXIF-rotated,
16-bit) go through `augflow.io.decode.load_image` (or Pillow when that module is absent).
"""

from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

try:
    import simplejpeg
except ImportError:  # pragma: no cover - optional: Pillow's draft mode is the fallback
    simplejpeg = None

DECODER = "simplejpeg" if simplejpeg is not None else "pillow"


@dataclass
class PendingJpeg:
    """An encoded JPEG whose decode waits for the first op to say how small it may be."""

    raw: bytes
    hw: tuple[int, int]
    channels: int = 3


def read_bytes(source: Any) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    path = Path(os.fspath(source))
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"image file not found: {path}") from None


def is_encoded(value: Any) -> bool:
    """A field value that is a path or encoded bytes rather than pixels."""
    return isinstance(value, (str, os.PathLike, bytes, bytearray, memoryview))


def jpeg_header(raw: bytes) -> tuple[int, int] | None:
    """(height, width) of a JPEG that the fast path can decode as-is, else None."""
    if simplejpeg is None or raw[:3] != b"\xff\xd8\xff" or _rotated(raw):
        return None
    try:
        h, w, colorspace, _ = simplejpeg.decode_jpeg_header(raw)
    except ValueError:
        return None
    if colorspace not in ("YCbCr", "Gray", "RGB"):
        return None   # CMYK / YCCK: Pillow converts those
    return int(h), int(w)


def _rotated(raw: bytes) -> bool:
    """True when the JPEG carries an EXIF orientation other than 1 (Pillow applies it for us).

    Walks the marker segments before the image data (EXIF is an APP1 segment there) instead of
    searching the bytes; only a file that has EXIF is opened with Pillow.
    """
    pos, n = 2, len(raw)
    while pos + 4 <= n and raw[pos] == 0xFF:
        marker = raw[pos + 1]
        if marker in (0xDA, 0xD9):       # start of scan / end of image: no EXIF before the data
            return False
        length = int.from_bytes(raw[pos + 2:pos + 4], "big")
        if marker == 0xE1 and raw[pos + 4:pos + 10] == b"Exif\x00\x00":
            return _exif_orientation(raw) not in (0, 1)
        pos += 2 + length
    return False


def _exif_orientation(raw: bytes) -> int:
    from PIL import Image
    try:
        with Image.open(io.BytesIO(raw)) as im:
            return int(im.getexif().get(0x0112, 1))
    except Exception:  # noqa: BLE001 - a broken EXIF block: let the slow path decide
        return -1


def decode(source: Any, mode: str = "rgb") -> np.ndarray:
    """Full-size decode of a path or bytes to HxWx3 uint8 (mode "rgb") or the file's layout ("auto")."""
    raw = read_bytes(source)
    if mode == "rgb" and jpeg_header(raw) is not None:
        return simplejpeg.decode_jpeg(raw, colorspace="RGB")
    return _load_image(raw, mode)


def decode_reduced(raw: bytes, min_hw: tuple[int, int]) -> np.ndarray:
    """Decode a JPEG at the smallest n/8 scale whose size is still at least `min_hw` (RGB)."""
    if simplejpeg is not None:
        return simplejpeg.decode_jpeg(raw, colorspace="RGB", min_height=max(1, int(min_hw[0])),
                                      min_width=max(1, int(min_hw[1])))
    from PIL import Image
    with Image.open(io.BytesIO(raw)) as im:
        im.draft("RGB", (int(min_hw[1]), int(min_hw[0])))
        return np.asarray(im.convert("RGB"))


def reduced_scale(full: int, reduced: int) -> float:
    """The exact decode scale full/reduced: libjpeg gives ceil(full * n / 8) pixels at scale n/8."""
    if reduced >= full:
        return full / reduced
    n = math.floor(8 * reduced / full + 1e-9)
    n = max(1, n)
    while math.ceil(full * n / 8) < reduced:
        n += 1
    return 8.0 / n


def _load_image(raw: bytes, mode: str) -> np.ndarray:
    try:
        from augflow.io.decode import load_image
    except ImportError:  # pragma: no cover - until augflow/io/decode.py is present
        from PIL import Image
        with Image.open(io.BytesIO(raw)) as im:
            return np.asarray(im.convert("RGB") if mode == "rgb" else im)
    return load_image(raw, mode="rgb" if mode == "rgb" else "auto")
