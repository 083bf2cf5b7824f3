"""Errors a person can act on: file, line, column, op, parameter, what was given, what is allowed."""

from __future__ import annotations

from dataclasses import dataclass

from augflow.errors import AugflowError


@dataclass(frozen=True)
class ConfigIssue:
    """One mistake in a pipeline file."""

    message: str
    file: str = "<pipeline>"
    line: int | None = None      # 1-based
    column: int | None = None    # 1-based
    op: str | None = None
    param: str | None = None

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        subject = ""
        if self.op:
            subject = f"op {self.op!r}: "
            if self.param:
                subject += f"parameter {self.param!r} "
        return f"{where}: {subject}{self.message}"


class PipelineConfigError(AugflowError, ValueError):
    """A pipeline file (or dict) that cannot be loaded; lists every issue found."""

    def __init__(self, issues: list[ConfigIssue]):
        self.issues = list(issues)
        super().__init__("\n".join(str(i) for i in self.issues))


class SampleError(AugflowError, ValueError):
    """A sample that does not match what the pipeline expects (wrong type, shape, dtype)."""
