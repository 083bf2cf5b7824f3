"""Writers of materialized outputs: image folders, WebDataset shards, Parquet, Hugging Face datasets.

Everything is written atomically (a temp file in the same folder, then `os.replace`), so a
reader — or a resumed run — sees a file whole or not at all. Encodings are lossless and
deterministic (PNG at a fixed level, `.npy` for anything that is not 8-bit), tar members carry a
fixed mtime, so the same sample gives the same bytes in any process. Every path is built from
sanitised components and checked to stay under the output folder.
"""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from augflow.errors import AugflowError
from augflow.sample import Sample, kinds_where

TMP_MARK = ".~tmp-"          # temp files carry this in their name; a resumed run deletes leftovers
FORMATS = ("folder", "webdataset", "parquet", "hf")
IMAGE_FORMATS = ("png", "jpeg")
_SAFE = re.compile(r"[^A-Za-z0-9._ -]+")


class UnsafePathError(AugflowError, ValueError):
    """A path derived from the input (a label, a key) that would land outside the output folder."""


# ---- paths and atomic writes ----------------------------------------------------------------
def safe_name(text: Any, limit: int = 100) -> str:
    """One path component from arbitrary text: no separators, no `..`, no leading dot."""
    name = _SAFE.sub("_", str(text)).strip(" .")[:limit]
    return name or "_"


def label_folder(label: Any, limit: int = 100) -> str:
    """The folder naming a label: one path component, reversible, so distinct labels never share one.

    Letters, digits, `_`, `-`, and dots or spaces inside the name are kept; every other character
    (separators, `%`, a leading dot, a trailing dot or space) becomes `%XX` of its UTF-8 bytes, as
    URL quoting does: `urllib.parse.unquote(name)` gives the label back ("." -> "%2E",
    ".." -> "%2E%2E", "a/b" -> "a%2Fb", "a_b" stays). The empty label is "%" (which no other
    label gives); a name over `limit` bytes keeps a prefix plus "~" and a hash of the label.
    """
    text = str(label)
    if not text:
        return "%"
    last = len(text) - 1
    out = []
    for i, ch in enumerate(text):
        keep = ch.isalnum() or ch in "_-" or (ch in ". " and 0 < i < last)
        out.append(ch if keep else "".join(f"%{b:02X}" for b in ch.encode("utf-8")))
    name = "".join(out)
    if len(name.encode("utf-8")) > limit:
        import hashlib
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
        head = name.encode("utf-8")[: limit - 17].decode("utf-8", errors="ignore")
        head = re.sub(r"%[0-9A-F]?$", "", head)          # never cut an escape in half
        name = f"{head}~{digest}"
    return name


def safe_join(root: str | Path, rel: str) -> Path:
    """`root/rel`, refusing any result outside `root` (absolute paths, `..`, symlinks out)."""
    root_r = Path(root).resolve()
    target = (root_r / rel).resolve()
    if target != root_r and root_r not in target.parents:
        raise UnsafePathError(f"path {rel!r} would be written outside the output folder {str(root_r)!r}")
    return target


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that `path` is either absent/old or complete (temp + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}{TMP_MARK}{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def remove_temp_files(root: Path) -> int:
    """Delete temp files a killed run left behind; returns how many."""
    n = 0
    for dirpath, _, files in os.walk(root):
        for f in files:
            if TMP_MARK in f:
                os.unlink(os.path.join(dirpath, f))
                n += 1
    return n


# ---- sample -> record -----------------------------------------------------------------------
def to_hwc(value: Any, kind: str | None = "image") -> Any:
    """torch tensors (what `to_tensor` makes) back to numpy; CHW images to HWC."""
    if hasattr(value, "detach") and hasattr(value, "numpy"):
        arr = value.detach().cpu().numpy()
        return arr.transpose(1, 2, 0) if arr.ndim == 3 and kind == "image" else arr
    return value


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(arr), allow_pickle=False)
    return buf.getvalue()


_PIL_MODES = {(2, None): "L", (3, 3): "RGB", (3, 4): "RGBA", (3, 2): "LA"}


def encode_array(arr: np.ndarray, kind: str, image_format: str = "png") -> tuple[str, bytes]:
    """(extension, bytes): 8-bit images as PNG/JPEG, masks as PNG, anything else as exact `.npy`."""
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    mode = _PIL_MODES.get((arr.ndim, arr.shape[2] if arr.ndim == 3 else None)) if arr.dtype == np.uint8 else None
    if mode is None or arr.ndim not in (2, 3):
        return "npy", _npy(arr)
    img = Image.fromarray(np.ascontiguousarray(arr))
    buf = io.BytesIO()
    if image_format == "jpeg" and kind == "image" and mode in ("L", "RGB"):
        img.save(buf, format="JPEG", quality=95)
        return "jpg", buf.getvalue()
    img.save(buf, format="PNG", compress_level=6)
    return "png", buf.getvalue()


# How each kind is written (the `write` column of `sample.KINDS`).
_IMAGE_FILES = kinds_where(write="image")
_JSON_ONLY = kinds_where(write="json")
_NEGATIVES = kinds_where(write="negatives")


def encode_sample(out: Sample, image_format: str = "png") -> tuple[list[tuple[str, str, bytes]], dict[str, Any]]:
    """A sample -> ([(column, extension, bytes)], JSON fields). Images and masks become files;
    boxes, keypoints, text and other plain values go to the JSON fields. Views (`view0`, `weak`)
    are flattened to `view0_image`, `view0_mask`..."""
    files: list[tuple[str, str, bytes]] = []
    meta: dict[str, Any] = {}
    views = set(out.views or ())

    def visit(prefix: str, fields: dict[str, Any]) -> None:
        for name in sorted(fields):
            spec = out.specs.get(name)
            kind = spec.kind if spec is not None else None
            value = to_hwc(fields[name], kind)
            column = f"{prefix}{name}"
            if not prefix and name in views and isinstance(value, dict):
                visit(f"{name}_", value)
            elif kind in _NEGATIVES and isinstance(value, list):   # image negatives as files beside the positive
                neg_files, neg_meta = encode_negatives(column, value, image_format)
                files.extend(neg_files)
                meta.update(neg_meta)
            elif isinstance(value, np.ndarray) and kind in _IMAGE_FILES and value.ndim >= 2:
                files.append((column, *encode_array(value, kind, image_format)))
            elif isinstance(value, np.ndarray) and kind not in _JSON_ONLY:
                files.append((column, "npy", _npy(value)))      # embeddings and other arrays, exact
            elif column != "label":
                meta[column] = _jsonable(value)

    visit("", dict(out))
    return files, meta


def encode_negatives(column: str, items: list[dict[str, Any]], image_format: str = "png"
                     ) -> tuple[list[tuple[str, str, bytes]], dict[str, Any]]:
    """(files [(column, extension, bytes)], {column: records}) for one sample's negatives field.

    Image negatives become files next to the positive's (`<key>.negatives_0.png` in the folder and
    WebDataset layouts; columns `negatives_0`, ... in table layouts, which need the same number of
    image negatives in every output); the manifest row's `fields` JSON gets one record per
    negative: its op, kind, source field, info, and either its text or the file that holds it.
    """
    files: list[tuple[str, str, bytes]] = []
    records = []
    for i, item in enumerate(items):
        rec = {"op": item.get("op"), "kind": item.get("kind"), "source": item.get("source"),
               "info": _jsonable(item.get("info", {}))}
        value = to_hwc(item.get("value"), item.get("kind"))
        if isinstance(value, np.ndarray) and item.get("kind") == "image" and value.ndim >= 2:
            name = f"{column}_{i}"
            ext, data = encode_array(value, "image", image_format)
            files.append((name, ext, data))
            rec["file"] = f"{name}.{ext}"
        else:
            rec["value"] = _jsonable(value)
        records.append(rec)
    return files, {column: records}


def _jsonable(value: Any) -> Any:
    value = to_hwc(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, bytes):
        return None
    return str(value)


def file_suffix(column: str, ext: str) -> str:
    """The WebDataset suffix / file-name tail of an output column: `png`, `mask.png`, `view0_image.png`."""
    return ext if column == "image" else f"{column}.{ext}"


# ---- shard writers --------------------------------------------------------------------------
class FolderShard:
    """`data/<class>/<key>.png` (ImageFolder layout when labelled, the class escaped by
    `label_folder`; `data/<shard>/` otherwise)."""

    def __init__(self, root: Path, shard: int, n_shards: int, layout: dict):
        self.root, self.shard = root, shard

    def add(self, key: str, label_dir: str | None, files, record: dict) -> list[str]:
        folder = f"data/{label_folder(label_dir) if label_dir is not None else f'{self.shard:05d}'}"
        paths = []
        for column, ext, data in files:
            rel = f"{folder}/{safe_name(key)}.{file_suffix(column, ext)}"
            atomic_write(safe_join(self.root, rel), data)
            paths.append(rel)
        return paths

    def close(self) -> None:
        pass


class WebDatasetShard:
    """`shards/shard-00000.tar`: `<key>.png`, `<key>.mask.png`, `<key>.cls`, `<key>.json`."""

    def __init__(self, root: Path, shard: int, n_shards: int, layout: dict):
        from webdataset import TarWriter

        self.rel = f"shards/shard-{shard:05d}.tar"
        self.path = safe_join(root, self.rel)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(f"{self.path.name}{TMP_MARK}{os.getpid()}")
        self.fh = open(self.tmp, "wb")
        self.writer = TarWriter(self.fh, encoder=False, mtime=0.0, user="augflow", group="augflow")

    def add(self, key: str, label_dir: str | None, files, record: dict) -> list[str]:
        obj: dict[str, Any] = {"__key__": safe_name(key)}
        for column, ext, data in files:
            obj[file_suffix(column, ext)] = data
        if record.get("label") is not None:
            obj["cls"] = str(record["label"]).encode()
        obj["json"] = _dumps({k: record[k] for k in ("label", "label_name", "fields", "source", "copy", "seed",
                                                     "provenance")}).encode()
        self.writer.write(obj)
        return [self.rel]

    def close(self) -> None:
        self.writer.close()          # closes the tar stream; the file object is ours to close
        if not self.fh.closed:
            self.fh.close()
        os.replace(self.tmp, self.path)


class _TableShard:
    """Rows gathered in memory for one shard, then written as one file at close."""

    def __init__(self, root: Path, shard: int, n_shards: int, layout: dict):
        self.root, self.shard, self.n_shards, self.layout = root, shard, n_shards, layout
        self.rows: list[dict[str, Any]] = []

    def add(self, key: str, label_dir: str | None, files, record: dict) -> list[str]:
        row = {"key": key, "source": record["source"], "copy": record["copy"], "label": record.get("label"),
               "fields": _dumps(record["fields"]), "provenance": _dumps(record["provenance"])}
        for column, ext, data in files:
            row[column] = data
        unknown = set(row) - set(self.columns())
        if unknown:
            raise ValueError(f"output has fields {sorted(unknown)} that the first output did not have; "
                             "a table format needs the same fields in every output")
        self.rows.append(row)
        return [self.rel]

    def columns(self) -> list[str]:
        return ["key", "source", "copy", "label", *self.layout["columns"], "fields", "provenance"]


class ParquetShard(_TableShard):
    """`data/part-00000.parquet`: one row per output, images as encoded bytes."""

    @property
    def rel(self) -> str:
        return f"data/part-{self.shard:05d}.parquet"

    def close(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = pa.schema([("key", pa.string()), ("source", pa.string()), ("copy", pa.int32()),
                            ("label", pa.int64()), *[(c, pa.binary()) for c in self.layout["columns"]],
                            ("fields", pa.string()), ("provenance", pa.string())])
        table = pa.Table.from_pylist(self.rows, schema=schema)
        buf = pa.BufferOutputStream()
        pq.write_table(table, buf, compression="zstd")
        atomic_write(safe_join(self.root, self.rel), buf.getvalue().to_pybytes())


class HFShard(_TableShard):
    """`data-00000-of-00004.arrow`: the Arrow stream files of `Dataset.save_to_disk`; PNG/JPEG
    columns are `Image` features, so `datasets.load_from_disk` decodes them."""

    @property
    def rel(self) -> str:
        return hf_shard_name(self.shard, self.n_shards)

    def close(self) -> None:
        import pyarrow as pa

        schema = hf_schema(self.layout)
        rows = []
        for r in self.rows:
            row = dict(r)
            for c in self.layout["columns"]:
                if self.layout["exts"][c] in ("png", "jpg") and row.get(c) is not None:
                    row[c] = {"bytes": row[c], "path": None}
            rows.append(row)
        table = pa.Table.from_pylist(rows, schema=schema)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, schema) as writer:
            writer.write_table(table)
        atomic_write(safe_join(self.root, self.rel), sink.getvalue().to_pybytes())


SHARD_WRITERS = {"folder": FolderShard, "webdataset": WebDatasetShard, "parquet": ParquetShard, "hf": HFShard}


def hf_shard_name(shard: int, n_shards: int) -> str:
    return f"data-{shard:05d}-of-{n_shards:05d}.arrow"


def hf_features(layout: dict) -> dict[str, Any]:
    feats: dict[str, Any] = {"key": {"dtype": "string", "_type": "Value"},
                             "source": {"dtype": "string", "_type": "Value"},
                             "copy": {"dtype": "int32", "_type": "Value"}}
    classes = layout.get("classes")
    feats["label"] = {"names": classes, "_type": "ClassLabel"} if classes else {"dtype": "int64", "_type": "Value"}
    for c in layout["columns"]:
        feats[c] = {"_type": "Image"} if layout["exts"][c] in ("png", "jpg") else {"dtype": "binary", "_type": "Value"}
    feats["fields"] = {"dtype": "string", "_type": "Value"}
    feats["provenance"] = {"dtype": "string", "_type": "Value"}
    return feats


def hf_schema(layout: dict):
    import pyarrow as pa

    image_t = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    cols = [("key", pa.string()), ("source", pa.string()), ("copy", pa.int32()), ("label", pa.int64())]
    cols += [(c, image_t if layout["exts"][c] in ("png", "jpg") else pa.binary()) for c in layout["columns"]]
    cols += [("fields", pa.string()), ("provenance", pa.string())]
    meta = {"huggingface": json.dumps({"info": {"features": hf_features(layout)}})}
    return pa.schema(cols, metadata=meta)


def write_hf_metadata(root: Path, layout: dict, n_shards: int, fingerprint: str) -> None:
    """state.json and dataset_info.json: what `datasets.load_from_disk` reads besides the shards."""
    state = {"_data_files": [{"filename": hf_shard_name(s, n_shards)} for s in range(n_shards)],
             "_fingerprint": fingerprint, "_format_columns": None, "_format_kwargs": {}, "_format_type": None,
             "_output_all_columns": False, "_split": None}
    info = {"citation": "", "description": "augflow materialize output", "features": hf_features(layout),
            "homepage": "", "license": ""}
    atomic_write(safe_join(root, "dataset_info.json"), json.dumps(info, indent=2).encode())
    atomic_write(safe_join(root, "state.json"), json.dumps(state, indent=2).encode())


# ---- manifest -------------------------------------------------------------------------------
MANIFEST_COLUMNS = ("key", "source", "source_index", "copy", "seed", "label", "label_name", "status", "error",
                    "files", "fields", "provenance")


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def manifest_line(row: dict[str, Any]) -> str:
    return _dumps({k: row.get(k) for k in MANIFEST_COLUMNS})


def write_manifest(path: Path, rows: list[dict[str, Any]], fmt: str) -> None:
    """The manifest: one row per output (including skipped bad inputs), JSONL or Parquet."""
    if fmt == "jsonl":
        atomic_write(path, "".join(manifest_line(r) + "\n" for r in rows).encode("utf-8"))
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([("key", pa.string()), ("source", pa.string()), ("source_index", pa.int64()),
                        ("copy", pa.int32()), ("seed", pa.int64()), ("label", pa.int64()),
                        ("label_name", pa.string()), ("status", pa.string()), ("error", pa.string()),
                        ("files", pa.list_(pa.string())), ("fields", pa.string()), ("provenance", pa.string())])
    table = pa.Table.from_pylist([{**r, "fields": _dumps(r.get("fields")), "provenance": _dumps(r.get("provenance"))}
                                  for r in rows], schema=schema)
    buf = pa.BufferOutputStream()
    pq.write_table(table, buf, compression="zstd")
    atomic_write(path, buf.getvalue().to_pybytes())
