"""Dataset sources for the CLI: an image folder, a CSV/JSONL manifest, WebDataset shards, or a
Hugging Face `datasets` directory (the `save_to_disk` layout).

Listing is cheap and deterministic (sorted, no pixel is decoded): a source becomes a list of
`Item`s, each loadable on its own in any process, so the work can be split over workers or Ray
tasks and every output still depends only on its item. Decoding happens in `load_item`; a bad
input raises `ImageDecodeError` naming the file.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import os
import tarfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from PIL import Image, UnidentifiedImageError

from augflow.errors import AugflowError
from augflow.io.decode import ImageDecodeError, MissingImageError, load_image
from augflow.sample import default_field_spec

IMAGE_EXTS = ("jpg", "jpeg", "png", "bmp", "gif", "tif", "tiff", "webp", "ppm", "pgm", "pnm")
MANIFEST_EXTS = (".csv", ".jsonl", ".ndjson")
_IMAGE_COLUMNS = ("image", "path", "file", "filename", "img")
DEFAULT_MAX_PIXELS = 89_478_485   # Pillow's own decompression-bomb threshold; the CLI's and the loaders' limit
_RAISE_LIMIT = "raise it with --max-pixels, or max_pixels= in pipe.compile()"


class SourceError(AugflowError, ValueError):
    """A source that cannot be listed (unknown layout, malformed manifest line)."""


@dataclass(frozen=True)
class FileRef:
    """Bytes of a file on disk (an image or mask path)."""
    path: str


@dataclass(frozen=True)
class TarRef:
    """Bytes of one member of a tar shard, read by offset (random access without a scan)."""
    tar: str
    offset: int
    size: int
    name: str


@dataclass(frozen=True)
class ArrowRow:
    """One row of an Arrow file of a Hugging Face dataset directory."""
    file: str
    row: int


@dataclass(frozen=True)
class Item:
    """One input sample: a stable key, its fields (plain values or references to bytes) and label."""

    key: str
    fields: Mapping[str, Any] = field(default_factory=dict)
    label: int | None = None
    label_name: str | None = None
    row: ArrowRow | None = None


@dataclass
class Source:
    """A listed dataset: its items in a fixed order and, when known, its class names."""

    kind: str
    root: str
    items: list[Item]
    classes: list[str] | None = None
    image_columns: tuple[str, ...] = ()   # HF columns typed Image

    def fingerprint(self) -> str:
        """Changes when items are added, removed, renamed or relabelled (not when pixels change)."""
        h = hashlib.sha256(f"{self.kind}\n{len(self.items)}\n".encode())
        for it in self.items:
            h.update(f"{it.key}\t{it.label}\t{it.label_name}\n".encode())
        return h.hexdigest()[:16]


def open_source(src: str | os.PathLike, *, root: str | os.PathLike | None = None) -> Source:
    """List a source; the layout is recognised from what is on disk.

    `root`: a manifest's paths (images, masks) must resolve inside this folder, symlinks followed
    (`../../etc/passwd` and absolute paths elsewhere are refused, naming the line); None (the
    default) trusts the manifest as a list of paths you wrote. Give it for manifests from others.
    """
    text = str(src)
    path = Path(text)
    if "{" in text and "}" in text and text.endswith(".tar"):
        return _webdataset(text)
    if not path.exists():
        raise SourceError(f"input {text!r} does not exist; give an image folder, a .csv/.jsonl manifest, "
                          "a .tar shard (or a folder of them), or a Hugging Face dataset folder")
    if path.is_file():
        if path.suffix.lower() == ".tar":
            return _webdataset(text)
        if path.suffix.lower() == ".csv":
            return _manifest(path, _csv_rows(path), root)
        if path.suffix.lower() in (".jsonl", ".ndjson"):
            return _manifest(path, _jsonl_rows(path), root)
        raise SourceError(f"input {text!r}: unknown file type {path.suffix!r} (expected .csv, .jsonl or .tar)")
    if (path / "dataset_dict.json").exists():
        splits = sorted(p.name for p in path.iterdir() if (p / "state.json").exists())
        raise SourceError(f"input {text!r} is a DatasetDict; point --input at one split folder "
                          f"({', '.join(str(path / s) for s in splits) or 'none found'})")
    if (path / "state.json").exists():
        return _hf_dir(path)
    if sorted(path.glob("*.tar")):
        return _webdataset(text)
    return _folder(path)


# ---- listing --------------------------------------------------------------------------------
def _folder(root: Path) -> Source:
    """Images under `root`; one level of sub-folders names the classes (ImageFolder layout)."""
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    items: list[Item] = []
    if subdirs:
        classes = [d.name for d in subdirs]
        for label, d in enumerate(subdirs):
            for f in _image_files(d):
                items.append(Item(f.relative_to(root).as_posix(), {"image": FileRef(str(f))}, label, d.name))
        return Source("folder", str(root), items, classes)
    for f in _image_files(root):
        items.append(Item(f.relative_to(root).as_posix(), {"image": FileRef(str(f))}))
    if not items:
        raise SourceError(f"input folder {str(root)!r} has no images (looked for {', '.join(IMAGE_EXTS)})")
    return Source("folder", str(root), items, None)


def _image_files(d: Path) -> list[Path]:
    # Every file with an image extension, even a zero-byte or corrupt one: those are bad inputs
    # to report, not to silently drop.
    return sorted(p for p in d.rglob("*") if p.is_file() and p.suffix.lower().lstrip(".") in IMAGE_EXTS
                  and not p.name.startswith("."))


def _csv_rows(path: Path):
    with path.open(newline="", encoding="utf-8") as fh:
        for lineno, row in enumerate(csv.DictReader(fh), start=2):
            yield lineno, {k.strip(): _cell(v) for k, v in row.items() if k is not None and v not in (None, "")}


def _cell(text: str) -> Any:
    text = text.strip()
    if text[:1] in "[{":
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text
    return text


def _jsonl_rows(path: Path):
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SourceError(f"{path}:{lineno}: not valid JSON ({exc.msg} at column {exc.colno})") from None
            if not isinstance(row, dict):
                raise SourceError(f"{path}:{lineno}: each line must be a JSON object, got {type(row).__name__}")
            yield lineno, row


def inside_root(path: str | os.PathLike, root: str | os.PathLike | None, where: str) -> str:
    """`path` as given, after checking that it resolves (symlinks followed) inside `root` (any when None)."""
    if root is None:
        return os.fspath(path)
    real, top = Path(path).resolve(), Path(root).resolve()
    if real != top and top not in real.parents:
        raise SourceError(f"{where}: path {os.fspath(path)!r} resolves to {str(real)!r}, outside the allowed root "
                          f"{str(top)!r}; move the file under it, or give a --root (root=) that contains it")
    return os.fspath(path)


def _manifest(path: Path, rows, root: str | os.PathLike | None = None) -> Source:
    """Rows of (path, label, mask, boxes, text, ...): paths are relative to the manifest's folder,
    and inside `root` when one is given."""
    base = path.parent
    raw: list[tuple[int, dict]] = list(rows)
    if not raw:
        raise SourceError(f"{path}: the manifest has no rows")
    labels = [r.get("label") for _, r in raw if r.get("label") is not None]
    named = any(isinstance(v, str) and not v.lstrip("-").isdigit() for v in labels)
    classes = sorted({str(v) for v in labels}) if named else None
    items = []
    for lineno, row in raw:
        col = next((c for c in _IMAGE_COLUMNS if c in row), None)
        if col is None:
            raise SourceError(f"{path}:{lineno}: no image column (one of {', '.join(_IMAGE_COLUMNS)})")
        fields = {k: v for k, v in row.items() if k not in (col, "label")}
        fields["image"] = FileRef(inside_root(base / str(row[col]), root, f"{path}:{lineno}"))
        for k in fields:
            if _kind_by_name(k) in ("mask", "masks") and isinstance(fields[k], str):
                fields[k] = FileRef(inside_root(base / fields[k], root, f"{path}:{lineno}"))
        label, label_name = _label(row.get("label"), classes, path, lineno)
        items.append(Item(str(row[col]), fields, label, label_name))
    return Source("manifest", str(path), items, classes)


def _kind_by_name(name: str) -> str | None:
    spec = default_field_spec(name)
    return spec.kind if spec is not None else None


def _label(value: Any, classes: list[str] | None, path: Path, lineno: int) -> tuple[int | None, str | None]:
    if value is None:
        return None, None
    if classes is not None:
        return classes.index(str(value)), str(value)
    try:
        return int(value), None
    except (TypeError, ValueError):
        raise SourceError(f"{path}:{lineno}: label must be an integer or a class name, got {value!r}") from None


def _webdataset(spec: str) -> Source:
    """Samples of WebDataset shards, grouped by key as webdataset does (name up to the first dot)."""
    from webdataset.tariterators import base_plus_ext

    path = Path(spec)
    if "{" in spec:
        import braceexpand
        shards = [Path(s) for s in braceexpand.braceexpand(spec)]
    elif path.is_dir():
        shards = sorted(path.glob("*.tar"))
    else:
        shards = [path]
    items: list[Item] = []
    for shard in shards:
        if not shard.exists():
            raise SourceError(f"shard {str(shard)!r} does not exist")
        groups: dict[str, dict[str, TarRef]] = {}
        try:
            with tarfile.open(shard, "r:") as tar:
                for m in tar:
                    if not m.isfile():
                        continue
                    key, ext = base_plus_ext(m.name)
                    if key is None or os.path.basename(key).startswith(("__", ".")):
                        continue
                    groups.setdefault(key, {})[ext.lower()] = TarRef(str(shard), m.offset_data, m.size, m.name)
        except tarfile.TarError as exc:
            raise SourceError(f"shard {str(shard)!r} is not a readable tar file: {exc}") from None
        for key, members in groups.items():
            items.append(Item(f"{shard.name}/{key}", _wds_fields(members)))
    if not items:
        raise SourceError(f"no samples found in {spec!r}")
    return Source("webdataset", spec, items, None)


def _wds_fields(members: dict[str, TarRef]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for ext, ref in sorted(members.items()):
        if ext in IMAGE_EXTS and "image" not in fields:
            fields["image"] = ref
        elif ext.endswith(tuple("." + e for e in IMAGE_EXTS)):      # mask.png, seg.png, view0.png
            name = ext.rsplit(".", 1)[0].replace(".", "_")
            fields["mask" if name == "seg" else name] = ref
        elif ext in ("cls", "cls2", "label", "txt", "text", "caption", "json"):
            fields[f"__{ext}"] = ref     # small members, read at load time
    return fields


def _hf_dir(path: Path) -> Source:
    """A `Dataset.save_to_disk` folder: Arrow stream files named in state.json, features in
    dataset_info.json (Image columns, ClassLabel names). Read with pyarrow; `datasets` not needed."""
    import pyarrow as pa

    state = json.loads((path / "state.json").read_text())
    info_path = path / "dataset_info.json"
    features = json.loads(info_path.read_text()).get("features", {}) if info_path.exists() else {}
    image_cols = tuple(k for k, f in features.items() if isinstance(f, dict) and f.get("_type") == "Image")
    label_feat = features.get("label") if isinstance(features.get("label"), dict) else {}
    classes = list(label_feat["names"]) if label_feat.get("_type") == "ClassLabel" else None
    items: list[Item] = []
    for entry in state.get("_data_files", []):
        file = path / entry["filename"]
        with pa.memory_map(str(file)) as mm:
            table = pa.ipc.open_stream(mm).read_all()
        labels = table.column("label").to_pylist() if "label" in table.column_names else [None] * table.num_rows
        if not image_cols:
            image_cols = tuple(c for c in table.column_names if c in _IMAGE_COLUMNS[:1] + ("img",))
        for row in range(table.num_rows):
            lab = labels[row]
            name = classes[lab] if classes is not None and lab is not None and 0 <= lab < len(classes) else None
            items.append(Item(f"{entry['filename']}#{row}", {}, lab, name, ArrowRow(str(file), row)))
    if not image_cols:
        raise SourceError(f"{path}: no Image column in dataset_info.json features")
    return Source("hf", str(path), items, classes, image_cols)


# ---- loading --------------------------------------------------------------------------------
def load_item(item: Item, kinds: Mapping[str, str], *, image_columns: tuple[str, ...] = (),
              max_pixels: int = DEFAULT_MAX_PIXELS) -> dict[str, Any]:
    """Decode one item into a sample dict (with `label` and, when known, its class name `label_name`);
    bad bytes raise ImageDecodeError naming the input."""
    fields: dict[str, Any] = dict(item.fields)
    if item.row is not None:
        fields.update(_arrow_row(item.row, image_columns))
    sample: dict[str, Any] = {}
    for name, value in fields.items():
        if name.startswith("__"):
            sample.update(_small_member(name[2:], value))
            continue
        if isinstance(value, (FileRef, TarRef, bytes)):
            kind = kinds.get(name) or _kind_by_name(name) or "image"
            data, origin = _read(value)
            sample[name] = decode_mask(data, origin) if kind in ("mask", "masks") else \
                decode_image(data, origin, max_pixels)
        else:
            sample[name] = value
    if item.label is not None:
        sample["label"] = item.label
    if item.label_name is not None:      # the class name, for prompts like "a photo of a {label_name}"
        sample.setdefault("label_name", item.label_name)
    return sample


def _read(ref: FileRef | TarRef | bytes) -> tuple[bytes, str]:
    if isinstance(ref, bytes):
        return ref, "<bytes>"
    if isinstance(ref, FileRef):
        try:
            return Path(ref.path).read_bytes(), ref.path
        except FileNotFoundError:
            raise MissingImageError(ref.path) from None
        except (IsADirectoryError, PermissionError) as exc:
            raise ImageDecodeError(ref.path, f"cannot read ({exc.strerror})") from None
    with open(ref.tar, "rb") as fh:
        fh.seek(ref.offset)
        return fh.read(ref.size), f"{ref.tar}:{ref.name}"


def _small_member(ext: str, ref: TarRef) -> dict[str, Any]:
    data, origin = _read(ref)
    text = data.decode("utf-8", errors="replace").strip()
    if ext in ("cls", "cls2", "label"):
        try:
            return {"label": int(text)}
        except ValueError:
            raise ImageDecodeError(origin, f"class label must be an integer, got {text[:40]!r}") from None
    if ext == "json":
        try:
            meta = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ImageDecodeError(origin, f"not valid JSON ({exc.msg})") from None
        if isinstance(meta, dict) and isinstance(meta.get("fields"), dict):   # augflow's own shards
            meta = dict(meta["fields"], **({"label": meta["label"]} if meta.get("label") is not None else {}))
        return meta if isinstance(meta, dict) else {}
    return {"text": text}


@functools.lru_cache(maxsize=8)
def _arrow_table(file: str):
    import pyarrow as pa
    return pa.ipc.open_stream(pa.memory_map(file)).read_all()


def _arrow_row(ref: ArrowRow, image_columns: tuple[str, ...]) -> dict[str, Any]:
    row = _arrow_table(ref.file).slice(ref.row, 1).to_pylist()[0]
    row.pop("label", None)
    out = {}
    for k, v in row.items():
        if k in image_columns or (isinstance(v, dict) and set(v) == {"bytes", "path"}):
            if v is None:
                raise ImageDecodeError(f"{ref.file}#{ref.row}", f"column {k!r} is empty")
            out[k] = v["bytes"] if v.get("bytes") is not None else FileRef(v["path"])
        else:
            out[k] = v
    return out


def _open_checked(data: bytes, origin: str, max_pixels: int) -> Image.Image:
    """Open without decoding, and refuse empty files, non-images and absurd sizes up front."""
    if not data:
        raise ImageDecodeError(origin, "the file is empty (0 bytes)")
    if max_pixels > (Image.MAX_IMAGE_PIXELS or 0):   # the caller's limit replaces Pillow's own
        Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise ImageDecodeError(origin, "not an image format Pillow can read") from None
    except Image.DecompressionBombError:
        raise ImageDecodeError(origin, f"image is larger than the limit of {max_pixels:,} pixels "
                                       f"({_RAISE_LIMIT})") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageDecodeError(origin, f"truncated or corrupt ({exc})") from None
    w, h = img.size
    if w * h > max_pixels or w <= 0 or h <= 0:
        raise ImageDecodeError(origin, f"image is {w}x{h} pixels ({w * h:,}), over the limit of "
                                       f"{max_pixels:,} ({_RAISE_LIMIT})")
    return img


def check_size(data: bytes, origin: str, max_pixels: int | None = None) -> None:
    """Refuse an image over `max_pixels` (default DEFAULT_MAX_PIXELS) from its header, before any
    pixel is decoded: the one limit `augflow materialize --max-pixels` and `pipe.compile(max_pixels=)` share."""
    limit = DEFAULT_MAX_PIXELS if max_pixels is None else int(max_pixels)
    hw = _jpeg_size(data)
    if hw is None:
        _open_checked(data, origin, limit)
    elif hw[0] * hw[1] > limit:
        h, w = hw
        raise ImageDecodeError(origin, f"image is {w}x{h} pixels ({w * h:,}), over the limit of {limit:,} "
                                       f"({_RAISE_LIMIT})")


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(height, width) from a JPEG header via libjpeg-turbo (~30x faster than opening with Pillow), else None."""
    if data[:3] != b"\xff\xd8\xff":
        return None
    try:
        import simplejpeg
        h, w, _, _ = simplejpeg.decode_jpeg_header(data)
    except (ImportError, ValueError):
        return None
    return int(h), int(w)


def decode_image(data: bytes, origin: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Bytes -> HxW or HxWxC array via `augflow.io.load_image` (EXIF, 16-bit); errors name `origin`."""
    _open_checked(data, origin, max_pixels)
    try:
        return load_image(data)
    except ImageDecodeError as exc:
        raise ImageDecodeError(origin, exc.reason) from None


def decode_mask(data: bytes, origin: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Bytes -> mask array with its values as stored (no colour conversion, palette indices kept)."""
    img = _open_checked(data, origin, max_pixels)
    try:
        img.load()
        return np.asarray(img).copy()
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageDecodeError(origin, f"truncated or corrupt mask ({exc})") from None
