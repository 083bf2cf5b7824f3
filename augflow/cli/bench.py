"""`augflow bench`: images/s of a pipeline on real inputs, and where the time goes, op by op.

Inputs are decoded once up front (decode time is reported apart), then the pipeline runs over
them in this process, one thread, `--repeat` times with sample index i and epoch r — the same
calls a loader worker makes. Each op's `sample_params` + `apply` (`draw` + `apply_drawn` for ops
on the fast path) is timed; what is left is the
pipeline's own overhead (control flow, checks, provenance).
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Annotated, Optional

import typer

from augflow.cli.console import Progress, fail, print_table


def bench(
    pipeline: Annotated[Path, typer.Argument(help="Pipeline YAML file.", show_default=False)],
    input: Annotated[str, typer.Option("--input", "-i", show_default=False, help=(
        "Image folder, .csv/.jsonl manifest, .tar shard(s) or Hugging Face folder."))],
    limit: Annotated[int, typer.Option("-n", "--limit", min=1, help="Inputs to use (the first N).")] = 64,
    repeat: Annotated[int, typer.Option(min=1, help="Passes over the inputs (epochs 0..R-1).")] = 3,
    warmup: Annotated[int, typer.Option(min=0, help="Untimed calls first (caches, lazy loads).")] = 4,
    seed: Annotated[Optional[int], typer.Option(help="Override the pipeline's seed.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
) -> None:
    """Measure images/s of the pipeline and a per-op time table (which op is the bottleneck)."""
    from augflow import Pipeline, PipelineConfigError
    from augflow.io.sources import ImageDecodeError, SourceError, load_item, open_source

    try:
        pipe = Pipeline.from_yaml(pipeline, seed=seed)
        source = open_source(input)
    except PipelineConfigError as exc:
        for issue in exc.issues:
            typer.echo(str(issue), err=True)
        raise fail("the pipeline file has errors") from None
    except SourceError as exc:
        raise fail(str(exc)) from None
    kinds = {k: s.kind for k, s in pipe.spec.fields.items()}
    samples, skipped = [], 0
    t0 = time.perf_counter()
    for item in source.items:
        if len(samples) == limit:
            break
        try:
            samples.append(load_item(item, kinds, image_columns=source.image_columns))
        except ImageDecodeError:
            skipped += 1
    decode_s = time.perf_counter() - t0
    if not samples:
        raise fail(f"no input in {input!r} could be decoded")
    for w in range(warmup):
        pipe(samples[w % len(samples)], index=w, epoch=10_000)
    timers = _instrument(pipe)
    total = len(samples) * repeat
    t0 = time.perf_counter()
    with Progress(total, "bench", unit="images") as bar:
        for r in range(repeat):
            for i, sample in enumerate(samples):
                pipe(sample, index=i, epoch=r)
                bar.advance()
    wall = time.perf_counter() - t0
    op_total = sum(t["seconds"] for t in timers.values())
    rows = [{"path": path, "op": t["op"], "calls": t["calls"], "ms_total": 1e3 * t["seconds"],
             "ms_per_call": 1e3 * t["seconds"] / t["calls"] if t["calls"] else 0.0,
             "share": t["seconds"] / wall if wall else 0.0} for path, t in timers.items()]
    rows.append({"path": "-", "op": "(pipeline overhead)", "calls": total, "ms_total": 1e3 * (wall - op_total),
                 "ms_per_call": 1e3 * (wall - op_total) / total, "share": (wall - op_total) / wall if wall else 0.0})
    result = {"pipeline": str(pipeline), "inputs": len(samples), "skipped_inputs": skipped, "repeat": repeat,
              "images_per_s": total / wall, "ms_per_image": 1e3 * wall / total,
              "decode_ms_per_image": 1e3 * decode_s / (len(samples) + skipped), "ops": rows}
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    typer.echo(f"{pipeline}: {result['images_per_s']:.1f} images/s ({result['ms_per_image']:.2f} ms/image, "
               f"1 process, {len(samples)} inputs x {repeat}); decode {result['decode_ms_per_image']:.2f} ms/image")
    slow = max(rows[:-1], key=lambda r: r["ms_total"], default=None)
    print_table(["path", "op", "calls", "ms total", "ms/call", "share"],
                [[r["path"], r["op"], r["calls"], f"{r['ms_total']:.1f}", f"{r['ms_per_call']:.3f}",
                  f"{100 * r['share']:.1f}%"] for r in rows], title="time per op")
    if slow is not None:
        typer.echo(f"slowest op: {slow['op']} at {slow['path']} ({100 * slow['share']:.0f}% of the time)")


def _instrument(pipe) -> dict[str, dict]:
    """Wrap each op instance's sample_params and apply with a timer (this process only)."""
    timers: dict[str, dict] = defaultdict(lambda: {"op": "", "calls": 0, "seconds": 0.0})
    for step in pipe.op_steps():
        if step.path.startswith(("batch", "offline", "negatives")):   # not run per sample
            continue
        op, entry = step.op, timers[step.path]
        entry["op"] = step.name

        def timed(fn, entry=entry, count=False):
            def wrapper(*args, **kwargs):
                t = time.perf_counter()
                try:
                    return fn(*args, **kwargs)
                finally:
                    entry["seconds"] += time.perf_counter() - t
                    entry["calls"] += count
            return wrapper

        op.sample_params = timed(op.sample_params)
        op.apply = timed(op.apply, count=True)
        if op.lazy_params:   # the pipeline's fast path for these ops: draw + apply_drawn
            op.draw = timed(op.draw)
            op.apply_drawn = timed(op.apply_drawn, count=True)
    return timers
