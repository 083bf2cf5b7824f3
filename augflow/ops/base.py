"""The op shape every augmentation follows: a typed parameter schema, `sample_params`, `apply`.

Sampling is apart from application so that every output can be replayed from its recorded
parameters, and so that parameters are plain data (JSON) for provenance, manifests and schemas.
Randomness comes only through the `rng` argument.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from augflow.sample import Sample


class Schema(BaseModel):
    """Base of every op's parameter schema: unknown parameters are errors, `p` is always accepted."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    p: float = Field(1.0, ge=0.0, le=1.0, description="Probability that the op is applied.")


class Op:
    """An augmentation op. Subclasses define `Params`, `sample_params` and `apply`.

    `name` and `targets` (the field kinds the op changes) are set by `@register`.
    """

    name: ClassVar[str] = ""
    targets: ClassVar[frozenset[str]] = frozenset({"image"})
    Params: ClassVar[type[Schema]] = Schema
    # True when `sample_params` already returns JSON-native data and `apply` takes that form:
    # the pipeline then skips its own encode/decode round trip (the hot path of adapter ops).
    json_params: ClassVar[bool] = False
    # True when the op draws into its own form (`draw`), applies that (`apply_drawn`) and encodes
    # it to JSON only when provenance is read (`encode_drawn`); decode(encode(drawn)) must give
    # the same output (tests/ops compare both paths), so replay stays exact.
    lazy_params: ClassVar[bool] = False

    def __init__(self, params: Schema | None = None, **kwargs: Any):
        self.params = params if params is not None else self.Params(**kwargs)

    @property
    def p(self) -> float:
        return self.params.p

    def sample_params(self, rng: np.random.Generator, sample: Sample) -> dict[str, Any]:
        """Draw this call's random parameters; deterministic ops return {}."""
        return {}

    def apply(self, sample: Sample, **params: Any) -> Sample:
        """Apply the op with already-sampled parameters; must not draw random numbers."""
        raise NotImplementedError

    def draw(self, rng: np.random.Generator, sample: Sample) -> Any:
        """This call's parameters in the op's own form (ops with `lazy_params` override it)."""
        return self.sample_params(rng, sample)

    def apply_drawn(self, sample: Sample, drawn: Any) -> Sample:
        return self.apply(sample, **drawn)

    def encode_drawn(self, drawn: Any) -> dict[str, Any]:
        """The JSON form of `draw`'s result, as `sample_params` returns it."""
        return drawn

    def config(self) -> dict[str, Any]:
        """The op's non-default parameters, as written in YAML."""
        return self.params.model_dump(mode="json", exclude_defaults=True)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{self.name}({args})"
