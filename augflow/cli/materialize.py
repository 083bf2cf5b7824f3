"""`augflow materialize`: write K augmented copies of a dataset, with a manifest; resumable."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from augflow.cli.console import Progress, fail
from augflow.io.sources import DEFAULT_MAX_PIXELS


class Format(str, Enum):
    folder = "folder"
    webdataset = "webdataset"
    parquet = "parquet"
    hf = "hf"
    loader = "loader"   # pre-resized originals in memory-mapped shards, for pipe.compile (no augmentation)


class Engine(str, Enum):
    local = "local"
    ray = "ray"


class OnError(str, Enum):
    raise_ = "raise"
    skip = "skip"


class ManifestFormat(str, Enum):
    parquet = "parquet"
    jsonl = "jsonl"


class ImageFormat(str, Enum):
    png = "png"
    jpeg = "jpeg"
    raw = "raw"     # --format loader only: uncompressed uint8 pixels


def materialize(
    pipeline: Annotated[Path, typer.Argument(help="Pipeline YAML file.", show_default=False)],
    input: Annotated[str, typer.Option("--input", "-i", show_default=False, help=(
        "Image folder (class per sub-folder), .csv/.jsonl manifest, .tar shard(s), or a "
        "Hugging Face `save_to_disk` folder."))],
    output: Annotated[Path, typer.Option("--output", "-o", show_default=False, help="Output folder.")],
    copies: Annotated[int, typer.Option("--copies", "-k", min=1, help="Augmented copies per input.")] = 1,
    format: Annotated[Format, typer.Option("--format", "-f", help="Output layout.")] = Format.folder,
    workers: Annotated[int, typer.Option("--workers", "-w", min=1, help=(
        "Processes (or Ray workers). Outputs are identical for any value."))] = 1,
    engine: Annotated[Engine, typer.Option(help="local processes, or Ray Data (pip install 'augflow\\[ray]').")]
    = Engine.local,
    on_error: Annotated[OnError, typer.Option("--on-error", help=(
        "Bad inputs: stop naming the file (raise), or skip them and list them (skip)."))] = OnError.raise_,
    seed: Annotated[Optional[int], typer.Option(help="Override the pipeline's seed.")] = None,
    shard_size: Annotated[int, typer.Option("--shard-size", min=1, help=(
        "Outputs per shard (the unit of work and of resumption)."))] = 256,
    manifest: Annotated[ManifestFormat, typer.Option(help="Manifest file format.")] = ManifestFormat.parquet,
    image_format: Annotated[ImageFormat, typer.Option("--image-format", help=(
        "Encoding of 8-bit images (masks are always PNG; other dtypes are written as exact .npy)."))]
    = ImageFormat.png,
    max_pixels: Annotated[int, typer.Option("--max-pixels", help="Inputs larger than this are bad inputs.")]
    = 89_478_485,
    overwrite: Annotated[bool, typer.Option("--overwrite", help=(
        "Replace an output made with another pipeline, seed or input instead of refusing (deletes only "
        "the files that job wrote)."))] = False,
    root: Annotated[Optional[Path], typer.Option("--root", show_default=False, help=(
        "Refuse manifest paths that resolve outside this folder (for manifests from others). "
        "Default: any path the manifest names."))] = None,
    max_side: Annotated[int, typer.Option("--max-side", min=0, help=(
        "--format loader: resize so the longer side is at most this (0: keep the size)."))] = 256,
    quality: Annotated[int, typer.Option("--quality", min=1, max=100, help="JPEG quality (jpeg outputs).")] = 90,
) -> None:
    """Augment every input K times and write the outputs plus a manifest (one row per output).

    Each output is the `sample:` stage followed by the pipeline's `offline:` ops (generative ops
    that training loaders skip); generated images are cached under OUTPUT/.augflow/cache unless
    AUGFLOW_CACHE_DIR names another folder.

    Rerun the same command after an interruption: finished shards are kept, the rest are
    redone, and the result is byte-identical to an uninterrupted run.
    """
    from augflow import PipelineConfigError
    from augflow.io import engines
    from augflow.io import materialize as mat
    from augflow.io.sources import SourceError

    if format == Format.loader:
        return _loader_format(input, output, image_format, max_side, quality, shard_size, overwrite)
    if image_format == ImageFormat.raw:
        raise fail("--image-format raw is for --format loader only (other formats write image files)")

    opts = mat.JobOptions(pipeline=str(pipeline), input=input, output=str(output), copies=copies,
                          format=format.value, shard_size=shard_size, seed=seed, image_format=image_format.value,
                          manifest=manifest.value, max_pixels=max_pixels, root=str(root) if root else None)
    try:
        job = mat.plan(opts, overwrite=overwrite)
    except PipelineConfigError as exc:
        for issue in exc.issues:
            typer.echo(str(issue), err=True)
        raise fail("the pipeline file has errors") from None
    except (mat.MaterializeError, SourceError) as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(_os_error(exc, output)) from None
    todo = job.n_shards - len(job.done)
    if 0 < todo < workers:
        typer.echo(f"note: {todo} shards to do for {workers} workers; a smaller --shard-size would use them all "
                   "(it changes how outputs are grouped in files, so keep it when resuming)", err=True)
    done = sum(job.shard_len(s) for s in job.done)
    if job.done:
        typer.echo(f"resuming: {len(job.done)} of {job.n_shards} shards already done", err=True)
    try:
        with Progress(job.n_outputs, "materialize", completed=done) as bar:
            summary = engines.run(job, engine=engine.value, workers=workers, on_error=on_error.value,
                              progress=bar.advance)
    except mat.MaterializeError as exc:
        raise fail(f"{exc}\n(finished shards are kept; rerun the same command to resume)") from None
    except OSError as exc:
        raise fail(f"{_os_error(exc, output)} (finished shards are kept; rerun the same command to resume)") from None
    _report(summary, job)


def _os_error(exc: OSError, output: Path) -> str:
    """One line for a file system failure (unwritable or missing output, disk full...)."""
    name = str(exc.filename or output)
    if Path(name) == output or output in Path(name).parents:
        return f"cannot write the output {str(output)!r}: {exc.strerror or exc} ({name}); choose a folder you can write to"
    return f"cannot access {name!r}: {exc.strerror or exc}"


def _loader_format(input: str, output: Path, image_format: "ImageFormat", max_side: int, quality: int,
                   shard_size: int, overwrite: bool) -> None:
    """--format loader: the input's images once, pre-resized, in memory-mapped shards with an index
    (augflow/io/loader_format.py); `pipe.compile(OUTPUT, ...)` reads them with no per-file open.
    The pipeline is not applied: the loader augments from these images."""
    from augflow.io.loader_format import LoaderFormatError, write_loader_dataset
    from augflow.io.readers import ReaderError, as_records

    encoding = "raw" if image_format == ImageFormat.raw else "jpeg"
    try:
        total = len(as_records(input))
        with Progress(total, "materialize --format loader") as bar:
            meta = write_loader_dataset(input, output, max_side=max_side or None, encoding=encoding, quality=quality,
                                        shard_size=shard_size, overwrite=overwrite, progress=bar.advance)
    except (LoaderFormatError, ReaderError) as exc:
        raise fail(str(exc)) from None
    typer.echo(f"wrote {meta['count']} images ({encoding}, max side {max_side or 'unchanged'}) to {output}; "
               f"read it with pipe.compile({str(output)!r}, ...)")


def _report(summary, job) -> None:
    rate = (summary.n_outputs - sum(job.shard_len(s) for s in job.done)) / summary.seconds \
        if summary.seconds > 0 else 0.0
    k = job.options.copies
    typer.echo(f"wrote {summary.written} of {summary.n_outputs} outputs ({len(job.source.items)} inputs x "
               f"{k} cop{'ies' if k != 1 else 'y'}) to {summary.output} as {job.options.format}, "
               f"{summary.n_shards} shard{'s' if summary.n_shards != 1 else ''}, {summary.seconds:.1f} s"
               + (f", {rate:.1f} samples/s" if rate else ""))
    if summary.errors:
        sources = sorted({src for src, _ in summary.errors})
        typer.echo(f"skipped {len(summary.errors)} outputs of {len(sources)} bad input"
                   f"{'s' if len(sources) != 1 else ''} (status 'error' in the manifest):")
        seen = set()
        for src, err in summary.errors:
            if src not in seen:
                seen.add(src)
                typer.echo(f"  {src}: {err}")
