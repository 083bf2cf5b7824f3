"""A loader-ready dataset: images stored once, pre-resized, in memory-mappable shards with an index.

As FFCV's users do, convert a dataset once and train from the result: no per-file open, no
full-size decode of images larger than training needs. Layout of the output folder:

    loader.json             format, encoding (jpeg / raw), quality, max side, count, classes
    shard-00000.bin         the images of shard 0, back to back (JPEG bytes, or raw HxWxC uint8)
    shard-00000.idx.npy     one row per image: offset, length, height, width, channels, label

A shard's index is written (temp file + rename) after its data, so an index on disk means a
finished shard: rerunning the same conversion skips finished shards and redoes the rest, with the
same bytes as an uninterrupted run. `pipe.compile(folder, ...)` reads it (`augflow.io.readers`):
each record's image is a slice of a memory map, JPEG bytes (decoded by the loader, reduced decode
included) or a raw uint8 array.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np

# the read side (what `pipe.compile(folder)` uses) lives in loader_shards, which readers imports
from augflow.io.loader_shards import (ENCODINGS, FORMAT, META, LoaderFormatError, LoaderShards, is_loader_dataset,
                                      shard_paths)


def _resize(img: np.ndarray, max_side: int | None) -> np.ndarray:
    import cv2
    h, w = img.shape[:2]
    if not max_side or max(h, w) <= max_side:
        return img
    scale = max_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA)


def _encode(img: np.ndarray, encoding: str, quality: int) -> bytes:
    if encoding == "raw":
        return np.ascontiguousarray(img).tobytes()
    import simplejpeg
    return simplejpeg.encode_jpeg(np.ascontiguousarray(img), quality=quality, colorspace="RGB")


def write_loader_dataset(data: Any, output: str | os.PathLike, *, max_side: int | None = 256,
                         encoding: str = "jpeg", quality: int = 90, shard_size: int = 1024,
                         overwrite: bool = False, progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Convert `data` (image folder, list of paths, manifest: what `pipe.compile` reads) into a
    loader-ready folder; returns its metadata. Resumable: finished shards are kept."""
    from augflow.io.decode import load_image
    from augflow.io.readers import as_records

    if encoding not in ENCODINGS:
        raise LoaderFormatError(f"encoding must be one of {', '.join(ENCODINGS)}, got {encoding!r}")
    if not 1 <= int(quality) <= 100:
        raise LoaderFormatError(f"quality must be in [1, 100], got {quality}")
    records = as_records(data)
    root = Path(output)
    root.mkdir(parents=True, exist_ok=True)
    meta = {"format": FORMAT, "version": 1, "encoding": encoding, "quality": int(quality) if encoding == "jpeg" else None,
            "max_side": max_side, "count": len(records), "shard_size": int(shard_size), "classes": records.classes,
            "source": os.fspath(data) if isinstance(data, (str, os.PathLike)) else None}
    meta_path = root / META
    if meta_path.exists() and not overwrite:
        old = json.loads(meta_path.read_text(encoding="utf-8"))
        if old != meta:
            diff = {k: (old.get(k), v) for k, v in meta.items() if old.get(k) != v}
            raise LoaderFormatError(f"{root} holds a loader dataset made with other settings {diff} (old, new); "
                                    "use another output folder or overwrite=True (--overwrite)")
    elif overwrite:
        for p in root.glob("shard-*"):
            p.unlink()
    _atomic_write(meta_path, json.dumps(meta, indent=1).encode())
    n_shards = -(-len(records) // shard_size)
    for s in range(n_shards):
        bin_path, idx_path = shard_paths(root, s)
        lo, hi = s * shard_size, min(len(records), (s + 1) * shard_size)
        if idx_path.exists():
            if progress:
                progress(hi - lo)
            continue
        rows = np.zeros((hi - lo, 6), np.int64)
        tmp = bin_path.with_suffix(".bin.tmp")
        offset = 0
        with open(tmp, "wb") as f:
            for k, i in enumerate(range(lo, hi)):
                rec = records[i]
                img = _resize(load_image(rec["image"], mode="rgb"), max_side)
                raw = _encode(img, encoding, quality)
                f.write(raw)
                label = rec.get("label", -1)
                rows[k] = (offset, len(raw), img.shape[0], img.shape[1], img.shape[2], int(label) if label is not None else -1)
                offset += len(raw)
                if progress:
                    progress(1)
        os.replace(tmp, bin_path)
        buf = _npy_bytes(rows)
        _atomic_write(idx_path, buf)
    return meta


def _npy_bytes(arr: np.ndarray) -> bytes:
    import io
    out = io.BytesIO()
    np.save(out, arr)
    return out.getvalue()


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


__all__ = ["write_loader_dataset", "LoaderShards", "LoaderFormatError", "is_loader_dataset", "META", "FORMAT", "ENCODINGS"]
