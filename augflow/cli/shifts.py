"""`augflow shifts SOURCE --out DIR --k 3 --fold 0`: crafted validation shifts and a family k-fold.

Writes the validation images of one fold (one folder per held-out family, `manifest.jsonl` with
labels and provenance), `split.json` (every fold's training and validation families) and the
fold's training pipeline `train.yaml`, which uses only that fold's training families. See
`augflow.adaptive.shifts`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from augflow.cli.console import fail


def shifts(
    source: Annotated[str, typer.Argument(help="Training images: a folder (class subfolders), or a .csv/.jsonl "
                                                "manifest.", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("shifts"),
    k: Annotated[int, typer.Option(min=2, help="Number of family folds.")] = 3,
    fold: Annotated[int, typer.Option(min=0, help="Which fold's validation families to write.")] = 0,
    families: Annotated[Optional[str], typer.Option(help="Comma-separated families (default: all).")] = None,
    copies: Annotated[int, typer.Option(min=1, help="Shifted copies per image and family.")] = 1,
    seed: Annotated[int, typer.Option(help="Seed of the shifts and of the fold split.")] = 0,
    limit: Annotated[Optional[int], typer.Option(min=1, help="At most this many source images.")] = None,
) -> None:
    """Materialize a validation set per augmentation family, kept out of training by a k-fold split."""
    from augflow.adaptive import shifts as sh
    from augflow.io.readers import as_records

    names = [f.strip() for f in families.split(",")] if families else list(sh.FAMILIES)
    try:
        folds = sh.family_folds(k, names, seed)
    except ValueError as exc:
        raise fail(str(exc)) from None
    if fold >= k:
        raise fail(f"--fold must be in [0, {k - 1}] for --k {k}, got {fold}")
    try:
        records = as_records(source)
    except Exception as exc:   # the readers' own errors name the file; keep them
        raise fail(f"cannot read {source}: {exc}") from None
    records = [records[i] for i in range(len(records) if limit is None else min(limit, len(records)))]
    out.mkdir(parents=True, exist_ok=True)
    chosen = folds[fold]
    rows = sh.materialize_shifts(records, out, chosen.val, seed=seed, copies=copies)
    sh.write_split(folds, out)
    sh.train_pipeline(chosen, seed).to_yaml(out / "train.yaml")
    typer.echo(f"fold {fold}/{k}: validation families {', '.join(chosen.val)} ({len(rows)} images in {out}); "
               f"train with {', '.join(chosen.train)} ({out / 'train.yaml'})")
