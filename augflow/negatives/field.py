"""The `negatives` field: a list of negatives made for the sample, each with the op that made it.

    sample["negatives"] == [
        {"value": <HxWxC array>, "kind": "image", "op": "noise_negatives", "source": "image", "info": {...}},
        {"value": "a blue car ...", "kind": "text", "op": "text_negatives", "source": "caption", "info": {...}},
    ]

`value` has the kind of the positive field it was made from (`source`); `info` says how (the
noise used, the slot changed, the region repainted). Ops append to the list, so several negative
generators can feed one field; `augflow.negatives.collate` turns a batch of these lists into a
padded tensor plus a mask (images, embeddings) or lists (text).
"""

from __future__ import annotations

from typing import Any

from augflow.sample import FieldSpec, Sample

NEGATIVE_KEYS = ("value", "kind", "op", "source", "info")


def image_field(sample: Sample, name: str | None, op: str) -> str:
    """The image field an op works on: `name`, or the sample's first image."""
    return _field_of_kind(sample, name, op, "image")


def text_field(sample: Sample, name: str | None, op: str) -> str:
    """The text field an op works on: `name`, or the sample's first text field."""
    return _field_of_kind(sample, name, op, "text")


def _field_of_kind(sample: Sample, name: str | None, op: str, kind: str) -> str:
    if name is not None:
        if name not in sample:
            raise ValueError(f"op {op!r}: field {name!r} is not in the sample (fields: {sorted(sample)})")
        return name
    names = sample.fields_of_kind(kind)
    if not names:
        raise ValueError(f"op {op!r}: the sample has no {kind} field (fields: {sorted(sample)}); name it with "
                         f"`field:` or declare its kind under `fields:`")
    return names[0]


def add_negatives(sample: Sample, to: str, items: list[dict[str, Any]], *, kind: str, op: str, source: str) -> Sample:
    """Append negatives (dicts with `value` and optional `info`) to `sample[to]`; `sample` is an
    already-copied output. The field's kind becomes `negatives`."""
    current = sample.get(to)
    if current is not None and not isinstance(current, list):
        raise ValueError(f"op {op!r}: field {to!r} holds a {type(current).__name__}, not a list of negatives; choose "
                         "another field with `to:`")
    out = list(current or [])
    for item in items:
        out.append({"value": item["value"], "kind": kind, "op": op, "source": source, "info": item.get("info", {})})
    sample[to] = out
    spec = sample.specs.get(to)
    if spec is None or spec.kind != "negatives":
        sample.specs[to] = FieldSpec("negatives")
    return sample


def negatives_of(sample: Any, field: str = "negatives", kind: str | None = None) -> list[Any]:
    """The negative values in `sample[field]` (of one kind if given), in order."""
    return [n["value"] for n in sample.get(field) or [] if kind is None or n["kind"] == kind]


__all__ = ["NEGATIVE_KEYS", "image_field", "text_field", "add_negatives", "negatives_of"]
