"""Decode an image file (or its bytes) into the array layout ops expect, odd images on purpose.

- EXIF orientation is applied, so a phone photo comes out upright (what a viewer shows).
- Grayscale stays HxW (`mode="auto"`), or becomes RGB (`"rgb"`); alpha stays (`"auto"`,
  `"rgba"`) or is composited onto a background (`"rgb"`, `"gray"`).
- 16-bit PNG/TIFF stay uint16: Pillow would reduce 16-bit colour to 8 bits, so those files are
  decoded with OpenCV whatever the backend.
- Failures are named: `MissingImageError` (no such file) and `ImageDecodeError` (empty,
  truncated, corrupt or not an image), both carrying the path.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Literal, Union

import numpy as np
from PIL import Image, ImageOps

from augflow.errors import AugflowError

Source = Union[str, os.PathLike, bytes, bytearray, memoryview]
Mode = Literal["auto", "rgb", "rgba", "gray"]
Backend = Literal["pillow", "opencv"]

_EXIF_ORIENTATION = 0x0112
_MODES = ("auto", "rgb", "rgba", "gray")


class MissingImageError(AugflowError, FileNotFoundError):
    """The image path does not exist."""

    def __init__(self, path: str):
        self.path = path
        super().__init__(2, f"image file not found: {path}", path)

    def __str__(self) -> str:
        return f"image file not found: {self.path}"


class ImageDecodeError(AugflowError, ValueError):
    """The file or bytes exist but are not a decodable image (empty, truncated, corrupt, other format)."""

    def __init__(self, path: str, reason: str):
        self.path = path
        self.reason = reason
        super().__init__(f"cannot decode image {path}: {reason}")


def load_image(source: Source, mode: Mode = "auto", *, backend: Backend = "pillow",
               background: int | float = 255) -> np.ndarray:
    """Decode `source` (a path or encoded bytes) to HxW or HxWxC, uint8 / uint16 / float32.

    `mode`: "auto" keeps the file's layout (gray HxW, RGB, RGBA; gray+alpha becomes RGBA),
    "rgb" gives HxWx3 (alpha composited onto `background`, in uint8 units), "rgba" HxWx4,
    "gray" HxW (ITU-R 601 luma, as Pillow's "L").
    """
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {', '.join(_MODES)}; got {mode!r}")
    if backend not in ("pillow", "opencv"):
        raise ValueError(f"backend must be 'pillow' or 'opencv'; got {backend!r}")
    raw, where = _read(source)
    if not raw:
        raise ImageDecodeError(where, "the file is empty (0 bytes)")
    if backend == "opencv" or _is_colour16(raw):
        arr = _decode_opencv(raw, where)
    else:
        arr = _decode_pillow(raw, where)
    return _convert(arr, mode, background)


def _read(source: Source) -> tuple[bytes, str]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        raw = bytes(source)
        return raw, f"<{len(raw)} bytes>"
    path = Path(os.fspath(source))
    try:
        return path.read_bytes(), str(path)
    except FileNotFoundError:
        raise MissingImageError(str(path)) from None
    except IsADirectoryError:
        raise ImageDecodeError(str(path), "is a directory, not an image file") from None


def _decode_pillow(raw: bytes, where: str) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(raw)) as im:
            im.load()
            im = ImageOps.exif_transpose(im)
            return _pil_to_array(im)
    except Image.UnidentifiedImageError:
        raise ImageDecodeError(where, "not an image format Pillow can read") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageDecodeError(where, f"truncated or corrupt ({exc})") from None


def from_pil(im: Image.Image) -> np.ndarray:
    """A PIL image given to a pipeline directly: EXIF orientation applied, palette, CMYK and
    16-bit modes handled as `load_image` does (16-bit colour cannot exist in PIL)."""
    return _pil_to_array(ImageOps.exif_transpose(im))


def _pil_to_array(im: Image.Image) -> np.ndarray:
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif im.mode == "1":
        im = im.convert("L")
    elif im.mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        im = im.convert("RGB")
    elif im.mode in ("RGBa", "La", "PA"):
        im = im.convert("RGBA")
    arr = np.asarray(im)
    if im.mode.startswith("I"):   # 16-bit gray arrives as I;16 or I (int32)
        if arr.size and (arr.min() < 0 or arr.max() > 65535):
            return arr.astype(np.float32)
        arr = arr.astype(np.uint16)
    return np.ascontiguousarray(arr)


def _is_colour16(raw: bytes) -> bool:
    """16-bit colour PNG or TIFF: Pillow cannot hold it without dropping to 8 bits."""
    if raw[:8] == b"\x89PNG\r\n\x1a\n" and len(raw) > 25:
        return raw[24] == 16 and raw[25] in (2, 6)   # IHDR bit depth, colour type RGB / RGBA
    if raw[:4] in (b"II*\x00", b"MM\x00*"):
        try:
            with Image.open(io.BytesIO(raw)) as im:
                bits = im.tag_v2.get(258, (8,))
                return max(bits if isinstance(bits, tuple) else (bits,)) == 16 and len(im.getbands()) >= 3
        except Exception:  # noqa: BLE001 - a header Pillow cannot parse is decided by the decoder
            return False
    return False


def _decode_opencv(raw: bytes, where: str) -> np.ndarray:
    import cv2

    if raw[:2] == b"\xff\xd8" and raw.rfind(b"\xff\xd9") < raw.rfind(b"\xff\xda"):
        # OpenCV decodes a cut JPEG with grey fill and only a warning; no end marker after the scan.
        raise ImageDecodeError(where, "truncated or corrupt (JPEG data ends before its end marker)")
    arr = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise ImageDecodeError(where, "not an image OpenCV can read, or truncated or corrupt")
    if arr.ndim == 3:
        code = {3: cv2.COLOR_BGR2RGB, 4: cv2.COLOR_BGRA2RGBA}.get(arr.shape[2])
        arr = cv2.cvtColor(arr, code) if code is not None else arr
    return _orient(arr, _exif_orientation(raw))


def _exif_orientation(raw: bytes) -> int:
    try:
        with Image.open(io.BytesIO(raw)) as im:   # reads the header only
            return int(im.getexif().get(_EXIF_ORIENTATION, 1))
    except Exception:  # noqa: BLE001 - no readable EXIF means no rotation
        return 1


def _orient(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1-8) the way `ImageOps.exif_transpose` does."""
    ops = {
        2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1), 6: lambda a: np.rot90(a, -1),
        7: lambda a: a.swapaxes(0, 1)[::-1, ::-1], 8: lambda a: np.rot90(a, 1),
    }
    op = ops.get(orientation)
    return np.ascontiguousarray(op(arr)) if op else arr


def _convert(arr: np.ndarray, mode: Mode, background: float) -> np.ndarray:
    channels = 1 if arr.ndim == 2 else arr.shape[2]
    if channels == 2:   # gray + alpha
        arr = np.concatenate([np.repeat(arr[..., :1], 3, axis=2), arr[..., 1:]], axis=2)
        channels = 4
    if mode == "auto":
        return arr
    if mode in ("rgb", "gray") and channels == 4:
        arr = _flatten(arr, background)
        channels = 3
    if mode == "gray":
        return arr if channels == 1 else _luma(arr)
    rgb = np.repeat(arr[..., None], 3, axis=2) if channels == 1 else arr
    if mode == "rgb" or rgb.shape[2] == 4:
        return np.ascontiguousarray(rgb)
    opaque = np.full(rgb.shape[:2] + (1,), _max_value(rgb.dtype), rgb.dtype)
    return np.concatenate([rgb, opaque], axis=2)


def _max_value(dtype: np.dtype) -> float:
    return float(np.iinfo(dtype).max) if np.issubdtype(dtype, np.integer) else 1.0


def _flatten(rgba: np.ndarray, background: float) -> np.ndarray:
    top = _max_value(rgba.dtype)
    alpha = rgba[..., 3:].astype(np.float32) / top
    bg = np.float32(background) / 255.0 * top
    out = rgba[..., :3].astype(np.float32) * alpha + bg * (1.0 - alpha)
    return _cast(out, rgba.dtype)


def _luma(rgb: np.ndarray) -> np.ndarray:
    out = rgb[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return _cast(out, rgb.dtype)


def _cast(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if np.issubdtype(dtype, np.integer):
        return np.clip(np.rint(values), 0, np.iinfo(dtype).max).astype(dtype)
    return values.astype(dtype)


__all__ = ["load_image", "from_pil", "ImageDecodeError", "MissingImageError"]
