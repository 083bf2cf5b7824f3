"""`augflow train MODEL ...`: train the models augflow ships (one sub-command per trainer)."""

from __future__ import annotations

import typer

train_app = typer.Typer(
    help="Train the models augflow ships: day-to-night (the `day_to_night` op's generator).",
    no_args_is_help=True,
)

_PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []}


@train_app.command("day-to-night", context_settings=_PASS_THROUGH, add_help_option=False)
def day_to_night(ctx: typer.Context) -> None:
    """Unpaired day/night folders -> a generator for the `day_to_night` op (--help for the options)."""
    from augflow.train.day_to_night import main

    raise typer.Exit(main(list(ctx.args), prog="augflow train day-to-night"))
