"""What image and detector TTA share: the augmentation report, view names and the model's device."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from augflow.tta.config import Variant


@dataclass
class TTAReport:
    """How much augmenting happened: inputs seen, inputs augmented, model calls and images sent."""

    inputs: int = 0
    augmented: int = 0
    model_calls: int = 0
    model_inputs: int = 0
    views: int = 0

    @property
    def rate(self) -> float:
        return self.augmented / self.inputs if self.inputs else 0.0

    def add(self, other: "TTAReport") -> None:
        self.inputs += other.inputs
        self.augmented += other.augmented
        self.model_calls += other.model_calls
        self.model_inputs += other.model_inputs
        self.views = other.views

    def __str__(self) -> str:
        return (f"augmented {self.augmented} of {self.inputs} inputs ({100 * self.rate:.1f}%) with {self.views} views; "
                f"{self.model_calls} model calls on {self.model_inputs} images")


def model_device(model: Any) -> torch.device | None:
    for tensors in (getattr(model, "parameters", None), getattr(model, "buffers", None)):
        if callable(tensors):
            for t in tensors():
                return t.device
    return None


def describe(variant: Variant) -> str:
    return "original" if not variant else ",".join(t.describe(v) for t, v in variant)
