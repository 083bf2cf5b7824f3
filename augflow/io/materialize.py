"""Offline materialization: K augmented copies of every input, written once, resumable and exact.

Output j of a job is copy `c = j % K` of source item `i = j // K`, augmented as
`pipeline(sample, index=i, epoch=c)` — the same sample a training loader gets for index i in
epoch c — followed by the pipeline's `offline:` ops (expensive generative ones, which loaders never
run) drawn from the same per-output generator and recorded in provenance. Their results are
cached (by default under `<output>/.augflow/cache`), so a resumed or repeated job makes no model
call twice. Outputs are grouped in fixed shards of `shard_size`; a shard is the unit of work, done
by one process, and is recorded as done (its manifest part written) only after its data is
closed and renamed into place. A rerun skips recorded shards and redoes the others from scratch,
so a `kill -9` at any moment followed by a rerun gives the same bytes as an uninterrupted run,
and the worker count or engine (local processes, Ray) never changes a byte. This module describes
the job; `io/engines.py` runs its shards (`engines.run(job, engine=...)`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from augflow import seeding
from augflow.errors import AugflowError
from augflow.generative import cache as gen_cache
from augflow.io import writers
from augflow.io.sources import DEFAULT_MAX_PIXELS, Item, Source, load_item, open_source
from augflow.pipeline import Pipeline

JOB_VERSION = 3     # 2: `offline:` ops run and samples carry `label_name`; 3: class folders escaped reversibly
                    # (writers.label_folder); an older job is not resumed
_JOB_DIR = ".augflow"
_CACHE_DIR = "cache"     # generative results, under _JOB_DIR; content-addressed, so kept on --overwrite


class MaterializeError(AugflowError, RuntimeError):
    """A job that cannot start or continue; the message says what to do."""


@dataclass
class JobOptions:
    pipeline: str
    input: str
    output: str
    copies: int = 1
    format: str = "folder"
    shard_size: int = 256
    seed: int | None = None
    image_format: str = "png"
    manifest: str = "parquet"
    max_pixels: int = DEFAULT_MAX_PIXELS
    root: str | None = None        # manifest paths must resolve inside this folder (None: any path)


@dataclass
class Summary:
    output: str
    n_outputs: int
    n_shards: int
    shards_already_done: int
    written: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class Job:
    """A planned job: what to write, where, and which shards are already done."""

    options: JobOptions
    root: Path
    source: Source
    spec: dict[str, Any]
    layout: dict[str, Any]
    n_outputs: int
    n_shards: int
    done: set[int]
    _lock: Any = None
    cache_dir: str | None = None     # where generative ops cache results (set for worker processes too)

    def release(self) -> None:
        """Let another run use the output folder (also happens when the process ends)."""
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def shard_items(self, shard: int) -> dict[int, Item]:
        """The source items shard `shard` needs, by item index."""
        k, m = self.options.copies, self.options.shard_size
        first, last = shard * m, min((shard + 1) * m, self.n_outputs) - 1
        return {i: self.source.items[i] for i in range(first // k, last // k + 1)}

    def shard_len(self, shard: int) -> int:
        m = self.options.shard_size
        return min((shard + 1) * m, self.n_outputs) - shard * m

    def context(self, on_error: str) -> dict[str, Any]:
        """Everything a worker needs to do a shard (plain data, sent once per worker)."""
        o = self.options
        return {"root": str(self.root), "format": o.format, "layout": self.layout, "copies": o.copies,
                "shard_size": o.shard_size, "n_outputs": self.n_outputs, "n_shards": self.n_shards,
                "pipeline": {**self.spec["pipeline"], "seed": self.spec["seed"]}, "image_format": o.image_format, "max_pixels": o.max_pixels,
                "on_error": on_error, "image_columns": list(self.source.image_columns), "cache_dir": self.cache_dir}


def plan(options: JobOptions, overwrite: bool = False) -> Job:
    """Check the arguments and the output folder, and find what is left to do.

    Refuses to resume into an output made with another pipeline, seed, input or layout (the
    result would mix two jobs) unless `overwrite`, which deletes the old job's files first.
    """
    pipe = Pipeline.from_yaml(options.pipeline, seed=options.seed)
    source = open_source(options.input, root=options.root)
    if options.copies < 1 or options.shard_size < 1:
        raise MaterializeError("--copies and --shard-size must be at least 1")
    n_outputs = len(source.items) * options.copies
    n_shards = -(-n_outputs // options.shard_size)
    spec = {
        "augflow_job": JOB_VERSION, "pipeline": {k: v for k, v in pipe.to_dict().items() if k != "seed"},
        "seed": pipe.seed, "copies": options.copies,
        "format": options.format, "shard_size": options.shard_size, "image_format": options.image_format,
        "manifest": options.manifest,
        "input": {"kind": source.kind, "items": len(source.items), "fingerprint": source.fingerprint()},
        "versions": _versions(),
    }
    root = Path(options.output)
    job_file = root / _JOB_DIR / "job.json"
    _check_foreign(root)
    (root / _JOB_DIR).mkdir(parents=True, exist_ok=True)
    lock = _lock(root / _JOB_DIR / "lock")        # before anything is read, cleared or written
    previous = _check_output(root, job_file, spec, overwrite)
    (root / _JOB_DIR / "parts").mkdir(parents=True, exist_ok=True)
    writers.remove_temp_files(root)
    # The user's cache (set_cache_dir / AUGFLOW_CACHE_DIR) if any, else one beside the outputs.
    cache_dir = str(gen_cache.cache_dir() or (root / _JOB_DIR / _CACHE_DIR))
    if previous is not None:
        layout = previous["layout"]
    else:
        with gen_cache.use_cache_dir(cache_dir):      # the probe's generation is then reused by its shard
            layout = _probe_layout(pipe, source, options)
        writers.atomic_write(job_file, json.dumps({**spec, "layout": layout}, indent=2, sort_keys=True).encode())
    done = {s for s in range(n_shards) if _part_path(root, s).exists()}
    return Job(options, root, source, spec, layout, n_outputs, n_shards, done, lock, cache_dir)


def _versions() -> dict[str, str]:
    import albumentations
    import cv2
    import PIL

    import augflow
    return {"augflow": augflow.__version__, "albumentations": albumentations.__version__,
            "opencv": cv2.__version__, "pillow": PIL.__version__}


def _check_foreign(root: Path) -> None:
    """Never write into (or clear) a folder that holds something other than an augflow job."""
    if not root.exists():
        return
    if not root.is_dir():
        raise MaterializeError(f"--output {str(root)!r} is a file; give a folder")
    if not (root / _JOB_DIR).is_dir():
        others = sorted(p.name for p in root.iterdir())
        if others:
            raise MaterializeError(f"--output {str(root)!r} is not empty and is not an augflow output "
                                   f"(it holds {', '.join(others[:5])}); choose an empty or new folder")


def _check_output(root: Path, job_file: Path, spec: dict, overwrite: bool) -> dict | None:
    """The previous job's record when this run continues it; None for a fresh start."""
    if job_file.exists():
        previous = json.loads(job_file.read_text())
        changed = [k for k in spec if previous.get(k) != spec[k]]
        if not changed:
            return previous
        if not overwrite:
            raise MaterializeError(
                f"{root} holds a job made with a different {_describe(changed, previous, spec)}; resuming would mix "
                "two jobs. Rerun with --overwrite to replace it, or choose another --output.")
        _clear(root, previous)
    return None


def _describe(changed: list[str], old: dict, new: dict) -> str:
    parts = []
    for k in changed:
        if k in ("seed", "copies", "format", "shard_size", "image_format", "manifest"):
            parts.append(f"{k} ({old.get(k)!r}, now {new[k]!r})")
        elif k == "input":
            parts.append("input (items were added, removed, renamed or relabelled)")
        elif k == "versions":
            parts.append(f"library versions ({old.get(k)}, now {new[k]})")
        elif k == "augflow_job":
            parts.append(f"job format (version {old.get(k)}, now {new[k]}: outputs are computed differently)")
        elif k == "pipeline":
            parts.append("pipeline (its ops or parameters changed)")
        else:
            parts.append(k)
    return ", ".join(parts)


def _clear(root: Path, previous: dict) -> None:
    """Delete what the previous job wrote, and nothing else: a user's file under `data/` stays.

    What it wrote: the files its recorded shards list (its manifest rows), the shard files its
    layout names (`shards/shard-00000.tar`, `data/part-00000.parquet`, `data-00000-of-00004.arrow`),
    for a folder output the files named by the keys of shards that were never recorded (a killed
    run), and the job's own metadata. Folders left empty are removed. The lock, held by this run,
    and the content-addressed generative cache stay.
    """
    for path in _job_files(root, previous):
        if path.is_file() or path.is_symlink():
            path.unlink()
    for top in ("data", "shards"):
        _remove_empty_dirs(root / top)
    for p in (root / _JOB_DIR).iterdir():
        if p.name in ("lock", _CACHE_DIR):
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()


def _job_files(root: Path, previous: dict) -> list[Path]:
    files: set[str] = {"manifest.parquet", "manifest.jsonl", "state.json", "dataset_info.json"}
    recorded = set()
    for part in sorted((root / _JOB_DIR / "parts").glob("part-*.jsonl")):
        recorded.add(int(part.stem.split("-")[1]))
        for line in part.read_text(encoding="utf-8").splitlines():
            if line.strip():
                files.update(json.loads(line).get("files") or [])
    copies, size = int(previous.get("copies") or 1), int(previous.get("shard_size") or 1)
    n_outputs = int((previous.get("input") or {}).get("items") or 0) * copies
    n_shards = -(-n_outputs // size)
    fmt = previous.get("format")
    for s in range(n_shards):
        files.update({"webdataset": [f"shards/shard-{s:05d}.tar"], "parquet": [f"data/part-{s:05d}.parquet"],
                      "hf": [writers.hf_shard_name(s, n_shards)]}.get(fmt, []))
    out = []
    for rel in files:
        try:
            out.append(writers.safe_join(root, rel))
        except writers.UnsafePathError:
            continue                      # never follow a listed path out of the output folder
    if fmt == "folder" and (root / "data").is_dir():
        lost = {f"{j // copies:08d}-{j % copies:03d}" for s in range(n_shards) if s not in recorded
                for j in range(s * size, min((s + 1) * size, n_outputs))}
        if lost:
            out += [p for p in (root / "data").rglob("*") if p.is_file() and p.name.split(".", 1)[0] in lost]
    return out


def _remove_empty_dirs(top: Path) -> None:
    if not top.is_dir() or top.is_symlink():
        return
    for path in sorted((p for p in top.rglob("*") if p.is_dir() and not p.is_symlink()),
                       key=lambda p: -len(p.parts)):
        if not any(path.iterdir()):
            path.rmdir()
    if not any(top.iterdir()):
        top.rmdir()


def _lock(path: Path):
    fh = open(path, "a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        raise MaterializeError(f"another `augflow materialize` is writing to {path.parent.parent}; "
                               "wait for it or stop it first") from None
    return fh


def _part_path(root: Path, shard: int) -> Path:
    return root / _JOB_DIR / "parts" / f"part-{shard:05d}.jsonl"


def _probe_layout(pipe: Pipeline, source: Source, options: JobOptions) -> dict[str, Any]:
    """The output columns (image, mask, views...) and encodings, from the first item that loads.

    Table formats (Parquet, HF) need one schema for every shard, known before any shard starts.
    """
    kinds = {n: s.kind for n, s in pipe.spec.fields.items()}
    columns, exts = [], {}
    for i, item in enumerate(source.items):
        try:
            sample = load_item(item, kinds, image_columns=source.image_columns, max_pixels=options.max_pixels)
            files, _ = writers.encode_sample(pipe(sample, index=i, epoch=0, offline=True), options.image_format)
        except Exception:  # noqa: BLE001 - a bad input is reported when its shard runs
            continue
        columns = [c for c, _, _ in files]
        exts = {c: e for c, e, _ in files}
        break
    return {"columns": columns, "exts": exts, "classes": source.classes}


# ---- one shard ------------------------------------------------------------------------------
_PIPELINES: dict[str, Pipeline] = {}


def _pipeline(data: dict) -> Pipeline:
    key = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
    if key not in _PIPELINES:
        _PIPELINES[key] = Pipeline.from_dict(data, filename="<materialize job>")
    return _PIPELINES[key]


def run_shard(ctx: dict[str, Any], shard: int, items: dict[int, Item],
              progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Write shard `shard` and then record it; returns counts and the bad inputs it met."""
    cache_dir = ctx.get("cache_dir")
    with gen_cache.use_cache_dir(cache_dir) if cache_dir else contextlib.nullcontext():
        return _run_shard(ctx, shard, items, progress)


def _run_shard(ctx: dict[str, Any], shard: int, items: dict[int, Item],
               progress: Callable[[int], None] | None) -> dict[str, Any]:
    pipe = _pipeline(ctx["pipeline"])
    kinds = {n: s.kind for n, s in pipe.spec.fields.items()}
    root = Path(ctx["root"])
    k, m = ctx["copies"], ctx["shard_size"]
    writer = writers.SHARD_WRITERS[ctx["format"]](root, shard, ctx["n_shards"], ctx["layout"])
    rows, errors, loaded = [], [], {}
    for j in range(shard * m, min((shard + 1) * m, ctx["n_outputs"])):
        i, c = divmod(j, k)
        item = items[i]
        key = f"{i:08d}-{c:03d}"
        row = {"key": key, "source": item.key, "source_index": i, "copy": c, "label": item.label,
               "label_name": item.label_name, "seed": seeding.seed_int(seeding.call_seed(pipe.seed, c, i)),
               "files": [], "fields": None, "provenance": None, "error": None}
        try:
            if i not in loaded:
                loaded = {i: load_item(item, kinds, image_columns=tuple(ctx["image_columns"]),
                                       max_pixels=ctx["max_pixels"])}
            out = pipe(loaded[i], index=i, epoch=c, offline=True)
            files, meta = writers.encode_sample(out, ctx["image_format"])
            if meta.get("label_name") == item.label_name:    # loaded for prompts; the row has its column
                meta.pop("label_name", None)
        except Exception as exc:  # noqa: BLE001 - any failure on a bad input is skipped or raised by policy
            if ctx["on_error"] == "raise":
                raise MaterializeError(f"input {item.key!r} (item {i}): {type(exc).__name__}: {exc}; "
                                       "rerun with --on-error skip to skip and list bad inputs") from exc
            row.update(status="error", error=f"{type(exc).__name__}: {exc}")
            errors.append((item.key, row["error"]))
        else:
            row["label"] = _as_label(out.get("label"), item.label)
            row.update(status="ok", fields=meta, provenance=[e.to_dict() for e in out.provenance])
            label_dir = item.label_name if item.label_name is not None else (
                str(row["label"]) if row["label"] is not None else None)
            row["files"] = writer.add(key, label_dir, files, row)
        rows.append(row)
        if progress is not None:
            progress(1)
    writer.close()                      # data complete and renamed into place ...
    writers.atomic_write(_part_path(root, shard),   # ... before the shard is recorded as done
                         "".join(writers.manifest_line(r) + "\n" for r in rows).encode("utf-8"))
    return {"shard": shard, "written": sum(r["status"] == "ok" for r in rows), "errors": errors}


def _as_label(value: Any, fallback: int | None) -> int | None:
    import numpy as np
    return int(value) if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else fallback


# ---- finishing ------------------------------------------------------------------------------
def finalize(job: Job, seconds: float = 0.0) -> Summary:
    """Assemble the manifest from the shard parts (in shard order) and write format metadata."""
    rows = []
    for s in range(job.n_shards):
        part = _part_path(job.root, s)
        if not part.exists():
            raise MaterializeError(f"shard {s} is not done; rerun the same command to finish the job")
        rows.extend(json.loads(line) for line in part.read_text(encoding="utf-8").splitlines() if line)
    name = "manifest.jsonl" if job.options.manifest == "jsonl" else "manifest.parquet"
    writers.write_manifest(writers.safe_join(job.root, name), rows, job.options.manifest)
    if job.options.format == "hf":
        fp = hashlib.sha256(json.dumps(job.spec, sort_keys=True).encode()).hexdigest()[:16]
        writers.write_hf_metadata(job.root, job.layout, job.n_shards, fp)
    summary = Summary(str(job.root), job.n_outputs, job.n_shards, len(job.done), seconds=seconds)
    summary.written = sum(r["status"] == "ok" for r in rows)
    summary.errors = [(r["source"], r["error"]) for r in rows if r["status"] != "ok"]
    return summary
