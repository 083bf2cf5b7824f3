"""Per-sample decisions of an adaptive policy: which ops run, at which magnitude.

A decision is plain JSON, `{"ops": {path: level}}`: the controlled ops listed there run (their own
`p` still applies) with their magnitude ranges scaled to `level / LEVELS` towards the identity.
Controlled ops not listed, or at level 0 (the identity), are skipped -- except ops that set the
output size (a schema field `size`, `height` or `width`, e.g. random_resized_crop): those always
run, as written when not listed and at identity ranges at level 0, so batches keep one shape.
Structural ops (resize, normalize, to_tensor) always run.

The vocabulary comes from the ops' typed schemas, as HistAug's does (`augflow/latent/vocab.py`):
an op is *controlled* when its schema has a magnitude field or its `p` is below 1. A magnitude
field is a schema field typed as a float range (`tuple[float, float]`) whose current range holds
an identity point: 0 (rotation limits, brightness shifts, translations) or else 1 (scales, crop
scale, ratios); or an integer field named `magnitude` (RandAugment's bin), scaled towards 0.
Magnitude m maps the range (lo, hi) to (c + m (lo - c), c + m (hi - c)): m = 1 is the pipeline
as written, m = 0 the identity. Ranges with neither point (a noise std in (0.2, 0.44)) are not
magnitudes; such ops are still switched on and off.

This module sits beside `steps.py` (below pipeline and compile) so that `Pipeline.__call__`,
`Pipeline.replay` and the compiled sample stage realise a decision in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from augflow.sample import ProvenanceEntry
from augflow.steps import OpStep, iter_ops

LEVELS = 10                      # magnitude levels 0..LEVELS, as RandAugment's integer magnitudes
POLICY_OP = POLICY_PATH = "policy"   # the provenance entry that records a decision


@dataclass
class Control:
    """One op a policy may switch off or weaken: its path and its magnitude fields."""

    path: str
    op: str
    magnitudes: dict[str, tuple[Any, float]] = field(default_factory=dict)   # field -> (range, identity)
    sets_size: bool = False       # the op fixes the output size (a crop to `size`): weakened, never skipped


def _float_range(annotation: Any) -> bool:
    text = str(annotation)
    return "tuple[float, float]" in text


def _identity(lo: float, hi: float) -> float | None:
    if lo <= 0.0 <= hi and (lo, hi) != (0.0, 0.0):
        return 0.0
    if lo <= 1.0 <= hi and (lo, hi) != (1.0, 1.0):
        return 1.0
    return None


def _is_pair(v: Any) -> bool:
    return isinstance(v, (tuple, list)) and len(v) == 2 and all(isinstance(x, (int, float)) for x in v)


def _current(op: Any, name: str) -> Any:
    """The op's current value of a schema field (the library's normalised form when there is one)."""
    holder = getattr(op, "transform", None)
    if holder is not None and hasattr(holder, name):
        return getattr(holder, name)
    params = getattr(op, "params", None)
    return getattr(params, name, None) if params is not None else None


def control_of(step: OpStep) -> Control | None:
    """The control of one op step, or None for a structural op (p = 1 and no magnitude field)."""
    from augflow import registry

    try:
        schema = registry.get(step.name).schema
    except registry.UnknownOpError:
        return None
    mags: dict[str, tuple[Any, float]] = {}
    for name, f in schema.model_fields.items():
        if name == "magnitude" and f.annotation is int:          # RandAugment's integer magnitude bin
            value = _current(step.op, name)
            if isinstance(value, int) and value > 0:
                mags[name] = (value, 0.0)
            continue
        if name == "p" or not _float_range(f.annotation):
            continue
        value = _current(step.op, name)
        if _is_pair(value):
            c = _identity(float(value[0]), float(value[1]))
            if c is not None:
                mags[name] = ((float(value[0]), float(value[1])), c)
        elif isinstance(value, Mapping) and value and all(_is_pair(v) for v in value.values()):
            cs = {_identity(float(v[0]), float(v[1])) for v in value.values()}
            if len(cs) == 1 and None not in cs:
                mags[name] = ({k: (float(v[0]), float(v[1])) for k, v in value.items()}, cs.pop())
    if not mags and step.op.p >= 1.0:
        return None
    sets_size = any(n in schema.model_fields for n in _SIZE_FIELDS)
    return Control(step.path, step.name, mags, sets_size)


_SIZE_FIELDS = ("size", "height", "width")


def controls(pipeline: Any) -> list[Control]:
    """The vocabulary of a pipeline: every controlled op of its shared `sample` steps, in file order."""
    return [c for c in (control_of(s) for s in iter_ops(pipeline._shared_steps())) if c is not None]


def scaled(value: Any, identity: float, m: float) -> Any:
    if isinstance(value, Mapping):
        return {k: scaled(v, identity, m) for k, v in value.items()}
    if isinstance(value, int):
        return int(round(identity + m * (value - identity)))
    lo, hi = value
    return (identity + m * (lo - identity), identity + m * (hi - identity))


class Realizer:
    """The op a decision runs at each controlled path; weakened ops are built once per (path, level)
    and cached (one per process: loader workers build their own)."""

    def __init__(self, pipeline: Any):
        self.pipeline = pipeline
        self.controls = {c.path: c for c in controls(pipeline)}
        self._cache: dict[tuple[str, int], Any] = {}

    def op_for(self, step: OpStep, decision: Mapping[str, Any]):
        """The op to run for `step` under `decision`; None when the decision skips it."""
        control = self.controls.get(step.path)
        if control is None:
            return step.op
        level = decision.get("ops", {}).get(step.path)
        if level is None:                 # not chosen: skipped, unless the op sets the output size
            return step.op if control.sets_size else None
        level = int(level)
        if level <= 0 and not control.sets_size:   # magnitude 0 is the identity: nothing to run
            return None
        if level >= LEVELS or not control.magnitudes:
            return step.op
        key = (step.path, level)
        op = self._cache.get(key)
        if op is None:
            from augflow import registry
            params = dict(step.op.config())
            for name, (value, identity) in control.magnitudes.items():
                params[name] = scaled(value, identity, level / LEVELS)
            op = self._cache[key] = registry.get(step.name).build(params)
        return op

    def chooser(self, decision: Mapping[str, Any] | None):
        """A `choose(step) -> op | None` for `augflow.steps.run_step`, or None without a decision."""
        if decision is None:
            return None
        return lambda step: self.op_for(step, decision)


def provenance_entry(decision: Mapping[str, Any]) -> ProvenanceEntry:
    """The provenance record of a decision (first entry of the sample's provenance)."""
    return ProvenanceEntry(POLICY_OP, POLICY_PATH, {"ops": dict(decision.get("ops", {})),
                                                    **{k: v for k, v in decision.items() if k != "ops"}})


def check_decision(decision: Any, realizer: Realizer) -> dict[str, Any]:
    """A decision as JSON, checked against the vocabulary (unknown paths and bad levels are errors)."""
    if not isinstance(decision, Mapping) or not isinstance(decision.get("ops", {}), Mapping):
        raise TypeError(f"a policy decision must be a mapping {{'ops': {{path: level}}}}, got {decision!r}")
    for path, level in decision.get("ops", {}).items():
        if path not in realizer.controls:
            raise ValueError(f"policy decision names op path {path!r}, which is not a controlled op of this "
                             f"pipeline (controlled: {', '.join(realizer.controls) or 'none'})")
        if not (isinstance(level, int) and 0 <= level <= LEVELS):
            raise ValueError(f"policy decision level for {path!r} must be an integer in [0, {LEVELS}], got {level!r}")
    return dict(decision)
