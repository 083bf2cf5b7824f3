"""What a compiled loader reads: one indexable list of records, whatever the input.

- a torch / Hugging Face style dataset (anything with `__len__` and `__getitem__`) of samples:
  mappings pass through; `(image, label)` tuples become `{"image", "label"}`;
- a list of image paths;
- an image folder: one sub-folder per class (labels are the sorted folder names' indices, as
  torchvision's ImageFolder), or a flat folder of images (no labels);
- a CSV or JSONL manifest with an image column (`image`, `path`, `file`, `filename`) and
  optionally a label column (`label`, `class`, `target`); relative paths are resolved against the
  manifest's folder; string labels become indices of their sorted set. With `root=`, every path
  must resolve (symlinks followed) inside that folder, else `ReaderError` names the line; the
  default (None) trusts the manifest as a list of paths you wrote.

Records keep images as paths (decoded in the loader's workers, where the reduced-decode pass can
act); nothing is decoded while listing.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Mapping

from augflow.errors import AugflowError

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
IMAGE_COLUMNS = ("image", "path", "file", "filename", "img")
LABEL_COLUMNS = ("label", "class", "target", "labels")


class ReaderError(AugflowError, ValueError):
    """An input the loader cannot list (unknown layout, manifest without an image column...)."""


class Records(Sequence):
    """Indexable records, plus the class names when the input defines them."""

    def __init__(self, items: Any, classes: list[str] | None = None, root: str | None = None,
                 convert: Any = None):
        self.items = items
        self.classes = classes
        self.root = root
        self.convert = convert

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> Mapping[str, Any]:
        item = self.items[index]
        return self.convert(item) if self.convert is not None else item

    @property
    def num_classes(self) -> int | None:
        return len(self.classes) if self.classes else None


def as_records(data: Any, *, image_key: str = "image", label_key: str = "label",
               root: str | os.PathLike | None = None) -> Records:
    """Any supported input -> Records (see the module docstring; `root` limits a manifest's paths)."""
    if isinstance(data, Records):
        return data
    if isinstance(data, (str, os.PathLike)):
        path = Path(data)
        if path.is_dir():
            from augflow.io.loader_shards import LoaderShards, is_loader_dataset
            if is_loader_dataset(path):   # `augflow materialize --format loader` output
                shards = LoaderShards(path, image_key=image_key, label_key=label_key)
                return Records(shards, shards.meta.get("classes"), str(path))
            return read_folder(path, image_key=image_key, label_key=label_key)
        if path.suffix.lower() in (".csv", ".jsonl", ".ndjson"):
            return read_manifest(path, image_key=image_key, label_key=label_key, root=root)
        if path.suffix.lower() in IMAGE_EXTS:
            return read_paths([path], image_key=image_key)
        raise ReaderError(f"{path}: not a folder, a .csv/.jsonl manifest or an image file")
    if isinstance(data, (list, tuple)) and data and all(isinstance(d, (str, os.PathLike)) for d in data):
        return read_paths(data, image_key=image_key)
    if hasattr(data, "__len__") and hasattr(data, "__getitem__"):
        classes = _dataset_classes(data)
        return Records(data, classes, convert=_SampleConverter(image_key, label_key))
    raise ReaderError(f"cannot read samples from {type(data).__name__}: give a dataset (len + getitem), a list of "
                      "image paths, an image folder or a CSV/JSONL manifest")


def read_paths(paths: Sequence[Any], *, image_key: str = "image") -> Records:
    return Records([{image_key: os.fspath(p)} for p in paths])


def read_folder(root: str | os.PathLike, *, image_key: str = "image", label_key: str = "label") -> Records:
    root = Path(root)
    subdirs = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if subdirs:
        records = []
        for label, name in enumerate(subdirs):
            for path in _images_under(root / name):
                records.append({image_key: str(path), label_key: label})
        if not records:
            raise ReaderError(f"{root}: class folders {subdirs[:5]} contain no images ({', '.join(IMAGE_EXTS)})")
        return Records(records, subdirs, str(root))
    files = _images_under(root)
    if not files:
        raise ReaderError(f"{root}: no images ({', '.join(IMAGE_EXTS)}) and no class sub-folders")
    return Records([{image_key: str(p)} for p in files], None, str(root))


def _images_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTS and p.is_file())


def read_manifest(path: str | os.PathLike, *, image_key: str = "image", label_key: str = "label",
                  root: str | os.PathLike | None = None) -> Records:
    path = Path(path)
    rows = _manifest_rows(path)
    if not rows:
        raise ReaderError(f"{path}: the manifest has no rows")
    columns = list(rows[0])
    image_col = image_key if image_key in columns else next((c for c in IMAGE_COLUMNS if c in columns), None)
    if image_col is None:
        raise ReaderError(f"{path}: no image column; expected one of {', '.join(IMAGE_COLUMNS)}, found "
                          f"{', '.join(columns)}")
    label_col = label_key if label_key in columns else next((c for c in LABEL_COLUMNS if c in columns), None)
    classes = None
    if label_col is not None:
        values = [r.get(label_col) for r in rows]
        if all(_is_int(v) for v in values):
            for r in rows:
                r[label_col] = int(r[label_col])
        else:
            classes = sorted({str(v) for v in values})
            index = {c: i for i, c in enumerate(classes)}
            for r in rows:
                r[label_col] = index[str(r[label_col])]
    records = []
    for line, r in enumerate(rows, start=2 if path.suffix.lower() == ".csv" else 1):
        image = r.pop(image_col)
        if not image:
            raise ReaderError(f"{path}:{line}: empty image path")
        p = Path(str(image))
        p = p if p.is_absolute() else path.parent / p
        if root is not None:
            real, top = p.resolve(), Path(root).resolve()
            if real != top and top not in real.parents:
                raise ReaderError(f"{path}:{line}: image path {str(image)!r} resolves to {str(real)!r}, outside the "
                                  f"allowed root {str(top)!r}; move the file under it, or pass a root= that contains it")
        rec = {image_key: str(p)}
        if label_col is not None:
            rec[label_key] = r.pop(label_col)
        rec.update({k: v for k, v in r.items() if k not in rec})
        records.append(rec)
    return Records(records, classes, str(path.parent))


def _manifest_rows(path: Path) -> list[dict[str, Any]]:
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as f:
            return [dict(r) for r in csv.DictReader(f)]
    rows = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ReaderError(f"{path}:{n}: not a JSON object ({exc.msg})") from None
    return rows


def _is_int(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, str) and value.strip().lstrip("-").isdigit()


def _dataset_classes(data: Any) -> list[str] | None:
    classes = getattr(data, "classes", None)
    if isinstance(classes, (list, tuple)) and classes:
        return [str(c) for c in classes]
    features = getattr(data, "features", None)     # Hugging Face datasets: ClassLabel names
    if isinstance(features, Mapping):
        for key in LABEL_COLUMNS:
            names = getattr(features.get(key), "names", None)
            if names:
                return list(names)
    return None


class _SampleConverter:
    """Dataset items -> records: mappings as they are, (image, label) tuples named."""

    def __init__(self, image_key: str, label_key: str):
        self.image_key, self.label_key = image_key, label_key

    def __call__(self, item: Any) -> Mapping[str, Any]:
        if isinstance(item, Mapping):
            return item
        if isinstance(item, (tuple, list)) and len(item) == 2:
            return {self.image_key: item[0], self.label_key: item[1]}
        if isinstance(item, (str, os.PathLike)):
            return {self.image_key: os.fspath(item)}
        return {self.image_key: item}
