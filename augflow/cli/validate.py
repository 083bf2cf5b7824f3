"""`augflow validate FILE.yaml...`: check pipeline, TTA and rewriter files; print every mistake with its place.

Each file is checked against the schema of its own kind, recognised by its top-level keys:
`tta:` is a TTA file, `rewriter:` a rewriter file, anything else a pipeline file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Mapping

import typer

from augflow.cli.console import fail


def file_kind(data: Any) -> str:
    """'tta', 'rewriter' or 'pipeline', from the top-level keys of a loaded YAML file."""
    if isinstance(data, Mapping):
        if "tta" in data:
            return "tta"
        if "rewriter" in data:
            return "rewriter"
    return "pipeline"


def check_file(path: Path, allow_imports: bool = True) -> str:
    """Validate one file of any kind; return a one-line summary or raise PipelineConfigError."""
    from augflow.config.build import build_spec
    from augflow.config.loader import load_yaml_file

    data = load_yaml_file(path)
    kind = file_kind(data)
    if kind == "tta":
        from augflow.tta.config import build_tta
        cfg = build_tta(data, str(path))
        n = len(cfg.variants())
        return f"TTA file ({cfg.name!r}, {n} view{'s' if n != 1 else ''})"
    if kind == "rewriter":
        from augflow.text.rewriter import Rewriter
        rw = Rewriter.from_dict(data, str(path))
        return f"rewriter file ({data.get('name', 'rewriter')!r}, backend {rw.backend.kind}, k={rw.k})"
    from augflow import Pipeline
    pipe = Pipeline(build_spec(data, str(path), allow_imports=allow_imports), source=str(path))
    n_ops = len(pipe.op_steps())
    return f"{pipe.spec.name!r}, {n_ops} op{'s' if n_ops != 1 else ''}, seed {pipe.seed}"


def validate(
    pipelines: Annotated[list[Path], typer.Argument(help="Pipeline, TTA or rewriter YAML files to check.",
                                                    show_default=False)],
    no_imports: Annotated[bool, typer.Option("--no-imports", help=(
        "Refuse files with 'imports:' (which import, i.e. run, Python modules): for files from others."))] = False,
) -> None:
    """Check pipeline, TTA and rewriter files. Exit 1 with file:line:column errors if any is wrong."""
    import warnings

    from augflow import PipelineConfigError

    # albumentations warns about the unknown parameters that the error below already names
    warnings.filterwarnings("ignore", message=r"Argument\(s\) .* are not valid for transform")
    bad = 0
    for path in pipelines:
        try:
            summary = check_file(path, allow_imports=not no_imports)
        except PipelineConfigError as exc:
            bad += 1
            for issue in exc.issues:
                typer.echo(str(issue), err=True)
            continue
        typer.echo(f"{path}: ok ({summary})")
    if bad:
        raise fail(f"{bad} of {len(pipelines)} file{'s' if len(pipelines) != 1 else ''} "
                   f"{'has' if bad == 1 else 'have'} errors")
