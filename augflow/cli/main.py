"""The `augflow` command: `app` is the console-script entry point (`python -m augflow` too)."""

from __future__ import annotations

import typer

from augflow.cli.bench import bench
from augflow.cli.materialize import materialize
from augflow.cli.noise_bank import noise_bank
from augflow.cli.ops import ops
from augflow.cli.preview import preview
from augflow.cli.shifts import shifts
from augflow.cli.train import train_app
from augflow.cli.validate import validate

app = typer.Typer(
    name="augflow",
    help="Declarative, reproducible data augmentation: check pipelines, list ops, preview, "
         "materialize augmented datasets, benchmark.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from augflow import __version__
        typer.echo(f"augflow {__version__}")
        raise typer.Exit()


@app.callback()
def main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                      help="Print augflow's version and exit.")) -> None:
    """Declarative, reproducible data augmentation: check pipelines, list ops, preview, materialize
    augmented datasets, benchmark."""


app.command("validate")(validate)
app.command("ops")(ops)
app.command("preview")(preview)
app.command("materialize")(materialize)
app.command("bench")(bench)
app.command("noise-bank")(noise_bank)
app.command("shifts")(shifts)
app.add_typer(train_app, name="train")

if __name__ == "__main__":
    app()
