"""The transformation vocabulary of a HistAug model, read from an augflow pipeline.

HistAug (MICS-Lab `HistAug`, `models/histaug_model.py`) turns every transformation parameter into
a token: discrete ones (rotation k*90, flips, crop code, blur on/off) through an embedding table,
continuous ones (brightness, hue, HED shift...) through a small MLP, plus a position token for the
order in which the transforms were applied. The paper hard-codes 13 parameter names; here the
list comes from the pipeline used for training:

- every op of the pipeline's `sample` stage is a *step* with an `applied` token (0: skipped by its
  `p` or by `one_of`/`some_of`, 1: applied) and a position (its rank in the provenance, or a tail
  position when skipped, as the paper's code gives missing transforms);
- every parameter the op samples (what provenance records) is a *leaf* token. Whether a leaf is
  discrete or continuous comes from the op's typed parameter schema when a schema field has the
  leaf's name (`Literal`, `bool`, `int` -> discrete, with a `Literal`'s choices as its table;
  `float` and float ranges -> continuous), otherwise from the values drawn while building the
  training pairs (bools and strings discrete, integers discrete up to `max_discrete` distinct
  values, floats continuous). Nested dicts are flattened (`scale.x`), fixed-length numeric lists
  become one leaf per element (`crop_coords[2]`), variable-length or long arrays (a blur kernel)
  become summary leaves (`kernel#size`, `#mean`, `#std`, `#max`). Leaves that never vary carry no
  information and are dropped; `seed` leaves (ops that record only a seed) are ignored.

Continuous leaves are standardised with the mean and std of the training draws; discrete ones map
to 1..n with 0 meaning "absent" (the op was not applied).
"""

from __future__ import annotations

import math
import typing
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

from augflow.errors import AugflowError
from augflow.params_codec import from_jsonable
from augflow.sample import Provenance

_SUMMARIES = ("size", "mean", "std", "max")
_MAX_ELEMENTS = 16       # fixed-length arrays up to this size become one leaf per element
_IGNORED_KEYS = ("seed",)


class VocabularyError(AugflowError, ValueError):
    """A provenance that does not fit the vocabulary (another pipeline, or an unseen value)."""


@dataclass
class Leaf:
    """One transformation token: a step's `applied` flag or one sampled parameter value."""

    step: int                      # index into Vocabulary.steps
    key: str                       # dotted path in the op's params ("" for the applied flag)
    part: str | int | None = None  # element index, or a summary name for long arrays
    kind: str = "continuous"       # "discrete" | "continuous"
    values: list[Any] = field(default_factory=list)   # discrete table (index i+1)
    mean: float = 0.0
    std: float = 1.0
    source: str = "observed"       # "schema" | "observed" | "control"

    @property
    def name(self) -> str:
        if self.key == "":
            return "applied"
        if self.part is None:
            return self.key
        return f"{self.key}[{self.part}]" if isinstance(self.part, int) else f"{self.key}#{self.part}"


@dataclass
class Vocabulary:
    """Steps (ops of the pipeline) and leaves (tokens), with the codes of each transformation."""

    steps: list[dict[str, str]]    # [{"path": "sample[0]", "op": "horizontal_flip"}, ...]
    leaves: list[Leaf]
    ignored: list[str] = field(default_factory=list)

    @property
    def n_tokens(self) -> int:
        return len(self.leaves)

    @property
    def n_steps(self) -> int:
        return len(self.steps)

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def build(cls, pipeline, provenances: Sequence[Provenance], max_discrete: int = 16) -> "Vocabulary":
        """Read the vocabulary from a pipeline's op schemas and the provenance of its draws."""
        from augflow import registry
        from augflow.steps import iter_ops

        op_steps = list(iter_ops(pipeline.spec.sample))
        if pipeline.spec.named_views or pipeline.spec.view_split is not None:
            raise VocabularyError("HistAug learns one transformation of one patch: use a pipeline without 'views' "
                                  "(drop the 'views: k' item or the top-level 'views' mapping)")
        if not op_steps:
            raise VocabularyError("the pipeline's 'sample' stage has no ops: there is nothing for HistAug to learn")
        steps = [{"path": s.path, "op": s.name} for s in op_steps]
        index = {s["path"]: (i, s["op"]) for i, s in enumerate(steps)}
        raw: dict[tuple[int, str], list[Any]] = {}
        for prov in provenances:
            for entry in prov:
                step = _step_of(index, entry)
                for key, value in _flatten_dicts(from_jsonable(entry.params)):
                    raw.setdefault((step, key), []).append(value)
        leaves = [Leaf(step=i, key="", kind="discrete", values=[True], source="control") for i in range(len(steps))]
        ignored: list[str] = []
        for (step, key), values in sorted(raw.items(), key=lambda kv: (kv[0][0], kv[0][1])):
            label = f"{steps[step]['path']}.{key}"
            if key.split(".")[-1] in _IGNORED_KEYS:
                ignored.append(f"{label} (a seed, not a parameter)")
                continue
            schema_field = _schema_field(registry, steps[step]["op"], key)
            made = _leaves_for(step, key, values, schema_field, max_discrete)
            if not made:
                ignored.append(f"{label} (never varies or not numeric)")
            leaves.extend(made)
        return cls(steps, leaves, ignored)

    # ---- codes --------------------------------------------------------------------------
    def encode(self, provenance: Provenance | Iterable) -> tuple[np.ndarray, np.ndarray]:
        """(codes (K,) float32, order (S,) int64) of one transformation's provenance.

        Discrete codes are table indices (0 = absent); continuous codes are standardised values,
        NaN when absent. `order[s]` is the rank at which step s was applied, `n_steps` if skipped.
        """
        codes = np.zeros(self.n_tokens, dtype=np.float32)
        order = np.full(self.n_steps, self.n_steps, dtype=np.int64)
        for i, leaf in enumerate(self.leaves):
            if leaf.kind == "continuous":
                codes[i] = np.nan
        index = {s["path"]: (i, s["op"]) for i, s in enumerate(self.steps)}
        by_step = self._leaves_by_step()
        for rank, entry in enumerate(provenance):
            step = _step_of(index, entry)
            if order[step] != self.n_steps:      # applied twice (some_of with replace): first one counts
                continue
            order[step] = rank
            flat = dict(_flatten_dicts(from_jsonable(entry.params)))
            for i in by_step[step]:
                leaf = self.leaves[i]
                if leaf.key == "":
                    codes[i] = 1.0
                    continue
                value = _extract(flat.get(leaf.key), leaf.part)
                if value is None:
                    continue
                if leaf.kind == "discrete":
                    codes[i] = self._table_index(leaf, value)
                else:
                    codes[i] = (float(value) - leaf.mean) / leaf.std
        return codes, order

    def identity(self) -> tuple[np.ndarray, np.ndarray]:
        """The codes of "nothing applied" (the paper's identity parameters)."""
        return self.encode([])

    def decode(self, codes: np.ndarray, order: np.ndarray) -> dict[str, dict[str, Any]]:
        """A readable form of one code row: {path: {"op": name, "rank": r, leaf: value, ...}}."""
        codes = np.asarray(codes, dtype=np.float64)
        out: dict[str, dict[str, Any]] = {}
        for i, leaf in enumerate(self.leaves):
            step = self.steps[leaf.step]
            rank = int(order[leaf.step])
            if rank >= self.n_steps:
                continue
            entry = out.setdefault(step["path"], {"op": step["op"], "rank": rank})
            if leaf.key == "":
                continue
            c = codes[i]
            if leaf.kind == "discrete":
                if int(c) > 0:
                    entry[leaf.name] = leaf.values[int(c) - 1]
            elif not math.isnan(c):
                entry[leaf.name] = round(float(c * leaf.std + leaf.mean), 6)
        return dict(sorted(out.items(), key=lambda kv: kv[1]["rank"]))

    # ---- serialisation ------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "leaves": [asdict(leaf) for leaf in self.leaves], "ignored": self.ignored}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Vocabulary":
        return cls([dict(s) for s in data["steps"]], [Leaf(**leaf) for leaf in data["leaves"]],
                   list(data.get("ignored", [])))

    def describe(self) -> str:
        """One line per token, for humans choosing a pipeline."""
        rows = []
        for leaf in self.leaves:
            step = self.steps[leaf.step]
            detail = (f"{len(leaf.values)} values" if leaf.kind == "discrete"
                      else f"mean {leaf.mean:.4g}, std {leaf.std:.4g}")
            rows.append(f"{step['path']:<16} {step['op']:<28} {leaf.name:<20} {leaf.kind:<10} {detail} ({leaf.source})")
        return "\n".join(rows)

    def _leaves_by_step(self) -> list[list[int]]:
        out: list[list[int]] = [[] for _ in self.steps]
        for i, leaf in enumerate(self.leaves):
            out[leaf.step].append(i)
        return out

    @staticmethod
    def _table_index(leaf: Leaf, value: Any) -> int:
        value = _plain(value)
        for j, known in enumerate(leaf.values):
            if known == value:
                return j + 1
        raise VocabularyError(f"value {value!r} of parameter {leaf.name!r} was never seen when the HistAug "
                              f"vocabulary was built (known: {leaf.values[:10]}); retrain with draws that cover it")


# ---- helpers ----------------------------------------------------------------------------
def _step_of(index: dict[str, tuple[int, str]], entry) -> int:
    step, op = index.get(entry.path, (None, None))
    if step is None or op != entry.op:
        known = ", ".join(f"{o} at {p}" for p, (_, o) in index.items())
        raise VocabularyError(f"provenance entry {entry.op!r} at {entry.path!r} is not an op of the pipeline's "
                              f"'sample' stage (known: {known}); encode provenance from the same pipeline")
    return step


def _flatten_dicts(params: Any, prefix: str = "") -> Iterable[tuple[str, Any]]:
    if isinstance(params, dict):
        for k, v in params.items():
            yield from _flatten_dicts(v, f"{prefix}.{k}" if prefix else str(k))
    else:
        yield prefix, params


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


def _numeric_array(value: Any) -> np.ndarray | None:
    if isinstance(value, (list, tuple, np.ndarray)):
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            return None
        return arr.ravel()
    return None


def _extract(value: Any, part: str | int | None) -> Any:
    if value is None:
        return None
    if part is None:
        return None if isinstance(value, (list, tuple, np.ndarray, dict)) else _plain(value)
    arr = _numeric_array(value)
    if arr is None:
        if isinstance(part, int) and isinstance(value, (list, tuple)) and part < len(value):
            return _plain(value[part])
        return None
    if isinstance(part, int):
        return float(arr[part]) if part < arr.size else None
    if arr.size == 0:
        return 0.0 if part == "size" else None
    return {"size": float(arr.size), "mean": float(arr.mean()), "std": float(arr.std()),
            "max": float(arr.max())}[part]


def _schema_field(registry, op_name: str, key: str):
    try:
        spec = registry.get(op_name)
        return spec.schema.model_fields.get(key.split(".")[0])
    except Exception:  # noqa: BLE001 - an op without a usable schema falls back to observed values
        return None


def _schema_kind(annotation: Any) -> tuple[str | None, list[Any]]:
    """("discrete", choices) for Literal/bool/int annotations, ("continuous", []) for floats."""
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return "discrete", [_plain(v) for v in typing.get_args(annotation)]
    if annotation is bool:
        return "discrete", [False, True]
    if annotation is int:
        return "discrete", []
    if annotation is float:
        return "continuous", []
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    kinds = {_schema_kind(a)[0] for a in args} - {None}
    if kinds == {"continuous"} or ("continuous" in kinds and origin in (tuple, list)):
        return "continuous", []
    if len(kinds) == 1:
        choices = [c for a in args for c in _schema_kind(a)[1]]
        return kinds.pop(), choices
    return None, []


def _leaves_for(step: int, key: str, values: list[Any], schema_field, max_discrete: int) -> list[Leaf]:
    arrays = [_numeric_array(v) for v in values]
    if all(a is not None for a in arrays):
        sizes = {a.size for a in arrays}
        if len(sizes) == 1 and next(iter(sizes)) <= _MAX_ELEMENTS:
            out = []
            for j in range(next(iter(sizes))):
                out.extend(_scalar_leaves(step, key, j, [float(a[j]) for a in arrays], None, max_discrete))
            return out
        out = []
        for part in _SUMMARIES:
            column = [_extract(v, part) for v in values]
            out.extend(_scalar_leaves(step, key, part, [c for c in column if c is not None], None, max_discrete))
        return out
    if any(isinstance(v, (list, tuple, np.ndarray, dict)) for v in values):
        return []            # mixed or non-numeric containers: nothing reliable to encode
    return _scalar_leaves(step, key, None, [_plain(v) for v in values], schema_field, max_discrete)


def _scalar_leaves(step: int, key: str, part, values: list[Any], schema_field, max_discrete: int) -> list[Leaf]:
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    distinct = _distinct(values)
    if len(distinct) < 2:
        return []
    kind, choices = (None, [])
    source = "observed"
    if schema_field is not None and part is None:
        kind, choices = _schema_kind(schema_field.annotation)
        source = "schema" if kind else "observed"
    if kind is None:
        if all(isinstance(v, (bool, str)) for v in values):
            kind = "discrete"
        elif all(isinstance(v, (int, bool)) or (isinstance(v, float) and v.is_integer() and part is not None)
                 for v in values) and len(distinct) <= max_discrete:
            kind = "discrete"
        elif all(isinstance(v, (int, float)) for v in values):
            kind = "continuous"
        else:
            return []
    if kind == "discrete" and not all(isinstance(v, (bool, str)) for v in values) and len(distinct) > max_discrete:
        kind = "continuous"     # e.g. an int pixel offset typed `int` in the schema: treat as a number
    if kind == "discrete":
        table = list(choices)
        for v in distinct:
            if v not in table:
                table.append(v)
        return [Leaf(step, key, part, "discrete", table, source=source)]
    arr = np.asarray(values, dtype=np.float64)
    std = float(arr.std())
    return [Leaf(step, key, part, "continuous", [], float(arr.mean()), std if std > 1e-12 else 1.0, source)]


def _distinct(values: list[Any]) -> list[Any]:
    out: list[Any] = []
    seen: set = set()
    for v in values:
        marker = (type(v).__name__ if isinstance(v, (bool, str)) else "num", v)
        if marker not in seen:
            seen.add(marker)
            out.append(v)
    return out


__all__ = ["Vocabulary", "Leaf", "VocabularyError"]
