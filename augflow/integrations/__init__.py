"""Integrations with outside frameworks, one module each, imported only on use:

- `augflow.integrations.lightning`: `AugflowDataModule`, a LightningDataModule of compiled loaders.
- `augflow.integrations.hf`: `pipe.hf_transform()` for `datasets.Dataset.with_transform`, and a
  `transformers.Trainer` callback that moves the augmentation epoch forward.
- `augflow.integrations.ray`: `map_batches(ds, pipe)`, a pipeline inside Ray Data.

`import augflow` imports none of them (nor Lightning, transformers or Ray).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping


def as_pipeline(pipe: Any, role: str = "pipeline"):
    """A Pipeline from a Pipeline, a YAML path or a dict (what every integration accepts)."""
    from augflow.pipeline import Pipeline

    if isinstance(pipe, Pipeline):
        return pipe
    if isinstance(pipe, (str, Path)):
        return Pipeline.from_yaml(pipe)
    if isinstance(pipe, Mapping):
        return Pipeline.from_dict(pipe)
    raise TypeError(f"{role}: expected an augflow.Pipeline, a YAML path or a dict, got {type(pipe).__name__}")


def pipeline_state(pipe: Any) -> tuple[dict, str]:
    """A pipeline as data, for pickling into workers (op objects may hold state that does not pickle)."""
    return pipe.to_dict(), pipe.source or "<pipeline>"


def pipeline_from_state(state: tuple[dict, str]):
    from augflow.pipeline import Pipeline

    data, source = state
    return Pipeline.from_dict(data, source)
