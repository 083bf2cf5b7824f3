"""YAML pipelines: loading with positions, validation against the op registry, errors, JSON Schema."""

from augflow.config.errors import ConfigIssue, PipelineConfigError

__all__ = ["ConfigIssue", "PipelineConfigError"]
