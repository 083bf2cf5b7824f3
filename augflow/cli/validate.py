"""`augflow validate PIPELINE.yaml...`: check pipeline files; print every mistake with its place."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from augflow.cli.console import fail


def validate(
    pipelines: Annotated[list[Path], typer.Argument(help="Pipeline YAML files to check.", show_default=False)],
) -> None:
    """Check pipeline files. Exit 1 with file:line:column errors if any is wrong."""
    import warnings

    from augflow import Pipeline, PipelineConfigError

    # albumentations warns about the unknown parameters that the error below already names
    warnings.filterwarnings("ignore", message=r"Argument\(s\) .* are not valid for transform")
    bad = 0
    for path in pipelines:
        try:
            pipe = Pipeline.from_yaml(path)
        except PipelineConfigError as exc:
            bad += 1
            for issue in exc.issues:
                typer.echo(str(issue), err=True)
            continue
        n_ops = len(pipe.op_steps())
        typer.echo(f"{path}: ok ({pipe.spec.name!r}, {n_ops} op{'s' if n_ops != 1 else ''}, seed {pipe.seed})")
    if bad:
        raise fail(f"{bad} of {len(pipelines)} pipeline file{'s' if len(pipelines) != 1 else ''} "
                   f"{'has' if bad == 1 else 'have'} errors")
