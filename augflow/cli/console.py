"""Terminal output shared by the commands: progress, tables, errors.

On a terminal: rich progress bars and tables. Elsewhere (CI logs, pipes, files): plain lines —
a progress line every few seconds instead of a redrawn bar, tab-separated tables — so logs stay
readable and greppable.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, Sequence

import typer

PROGRESS_INTERVAL_S = float(os.environ.get("AUGFLOW_PROGRESS_INTERVAL", "5"))


def is_tty(stream=None) -> bool:
    stream = stream or sys.stderr
    return hasattr(stream, "isatty") and stream.isatty() and os.environ.get("TERM") != "dumb"


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print an error a person can act on (no traceback) and return the Exit to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


class Progress:
    """`with Progress(total, "materialize") as p: p.advance(n)` — samples/s and ETA."""

    def __init__(self, total: int, description: str, completed: int = 0, unit: str = "samples"):
        self.total, self.description, self.unit = total, description, unit
        self.completed = completed
        self._rich = None
        self._last = time.monotonic()
        # the rate is measured from the first finished step, not from start-up (model loading,
        # worker start), so the first line does not show a tiny rate and a huge ETA
        self._start: float | None = None
        self._start_count = completed

    def __enter__(self) -> "Progress":
        if is_tty():
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress as RichProgress, TaskProgressColumn,
                                       TextColumn, TimeElapsedColumn, TimeRemainingColumn)
            self._rich = RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                      TaskProgressColumn(), TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
                                      TextColumn("ETA"), TimeRemainingColumn(), console=Console(stderr=True),
                                      transient=False)
            self._rich.__enter__()
            self._task = self._rich.add_task(self.description, total=self.total, completed=self.completed, rate="")
        return self

    def advance(self, n: int = 1) -> None:
        now = time.monotonic()
        if self._start is None:
            self._start, self._start_count = now, self.completed + n
        self.completed += n
        if self._rich is not None:
            rate = self.rate()
            self._rich.update(self._task, completed=self.completed,
                              rate=f"{rate:.1f} {self.unit}/s" if rate is not None else "")
        elif now - self._last >= PROGRESS_INTERVAL_S:
            self._last = now
            self._line()

    def rate(self) -> float | None:
        """Steps per second since the first finished step; None until a second one is measured."""
        if self._start is None or self.completed <= self._start_count:
            return None
        elapsed = time.monotonic() - self._start
        return (self.completed - self._start_count) / elapsed if elapsed > 0 else None

    def _line(self) -> None:
        rate = self.rate()
        left = self.total - self.completed
        pct = 100.0 * self.completed / self.total if self.total else 100.0
        speed = f", {rate:.1f} {self.unit}/s" if rate is not None else ""
        eta = f", ETA {_clock(left / rate)}" if rate and left > 0 else ""
        typer.echo(f"{self.description}: {self.completed}/{self.total} {self.unit} ({pct:.0f}%){speed}{eta}",
                   err=True)

    def __exit__(self, *exc: Any) -> None:
        if self._rich is not None:
            self._rich.__exit__(*exc)
        elif exc[0] is None:
            self._line()


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None) -> None:
    """A rich table on a terminal; tab-separated lines (header first) otherwise."""
    if is_tty(sys.stdout):
        from rich.console import Console
        from rich.table import Table
        table = Table(*headers, title=title)
        for row in rows:
            table.add_row(*("" if v is None else str(v) for v in row))
        Console().print(table)
        return
    if title:
        typer.echo(f"# {title}")
    typer.echo("\t".join(headers))
    for row in rows:
        typer.echo("\t".join("" if v is None else str(v).replace("\t", " ").replace("\n", " ") for v in row))
