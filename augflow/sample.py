"""The Sample mapping, field kinds and the provenance record.

A sample is a mapping of named fields. Each field has a *kind* (image, mask, bboxes, ...) that
decides how ops treat it: geometric ops move masks, boxes and keypoints with the image, colour
ops touch only images. Kinds come from the pipeline's `fields:` section or, failing that, from
the field's name.

Image values (the contract every op keeps): uint8 images are 0..255, uint16 0..65535 and float
images are in [0, 1] (`FLOAT_IMAGE_RANGE`), as albumentations and torchvision's `ToTensor` treat
them. A float image outside [0, 1] is refused when it enters a pipeline, unless its field declares
its maximum (`fields: {image: {kind: image, max_value: 255}}`): it is then divided by that maximum
on entry, so ops (and the output) see [0, 1].
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

import numpy as np


@dataclass(frozen=True)
class Kind:
    """How augflow treats one field kind. Code that varies by kind reads this table; a new kind
    is one row here (plus its kernels), not a search for `kind ==` across the package."""

    check: str | None             # the pipeline's input check: "image", "mask", "points"; None: passed as is
    per_view: bool                # carried separately by each view (`views:`); else shared at the top level
    collate: str                  # "stack": one tensor per batch; "list": one entry per element; "negatives"
    write: str                    # materialize: "image" (PNG/JPEG when 8-bit, else .npy), "array" (.npy, else JSON),
                                  #   "json" (manifest fields only), "negatives"
    albumentations: str | None    # the albumentations target it is passed as; None: not passed
    dense: bool = False           # an array over the image grid (moved pixel by pixel by geometric ops)


KINDS: dict[str, Kind] = {
    "image": Kind("image", True, "stack", "image", "image", dense=True),
    "mask": Kind("mask", True, "stack", "image", "mask", dense=True),
    "masks": Kind(None, True, "list", "image", "masks", dense=True),
    "bboxes": Kind("points", True, "list", "json", "bboxes"),
    "keypoints": Kind("points", True, "list", "json", "keypoints"),
    "label": Kind(None, False, "stack", "json", None),
    "text": Kind(None, True, "stack", "array", None),
    "embedding": Kind(None, True, "stack", "array", None),
    "negatives": Kind(None, False, "negatives", "negatives", None),
    "volume": Kind(None, True, "stack", "array", "volume", dense=True),
    "mask3d": Kind(None, True, "stack", "array", "mask3d", dense=True),
}
FIELD_KINDS = tuple(KINDS)


def kinds_where(**wanted: Any) -> tuple[str, ...]:
    """The kinds whose table row has the given values, e.g. `kinds_where(collate="list")`."""
    return tuple(k for k, row in KINDS.items() if all(getattr(row, a) == v for a, v in wanted.items()))


BBOX_FORMATS = ("pascal_voc", "coco", "yolo", "albumentations")
KEYPOINT_FORMATS = ("xy", "yx", "xya", "xys", "xyas", "xysa", "xyz")
FLOAT_IMAGE_RANGE = (0.0, 1.0)

# Field names that imply a kind when the pipeline does not declare one.
_KIND_BY_NAME = {
    "image": "image", "img": "image",
    "mask": "mask", "masks": "masks", "segmentation": "mask",
    "bboxes": "bboxes", "boxes": "bboxes",
    "keypoints": "keypoints",
    "label": "label", "labels": "label", "class_labels": "label", "target": "label",
    "text": "text", "caption": "text",
    "embedding": "embedding", "embeddings": "embedding", "features": "embedding",
    "negatives": "negatives",
    "volume": "volume", "mask3d": "mask3d",   # D x H x W (x C) stacks, for 3-D transforms
}


@dataclass(frozen=True)
class FieldSpec:
    """How one sample field is interpreted: its kind and, for boxes/keypoints, its format.

    `max_value` (images): the largest value of a float image that is not in [0, 1], e.g. 255.
    `clip` (boxes): clip boxes to the image on entry (albumentations' `BboxParams(clip=True)`), for
    annotations a pixel or so outside it (COCO's off-by-one), instead of refusing them.
    """

    kind: str
    format: str | None = None
    label_fields: tuple[str, ...] = ()
    max_value: float | None = None
    clip: bool = False


def default_field_spec(name: str) -> FieldSpec | None:
    """The spec implied by a field's name, or None for fields augflow passes through untouched."""
    kind = _KIND_BY_NAME.get(name)
    if kind is None:
        return None
    if kind == "bboxes":
        return FieldSpec("bboxes", "pascal_voc")
    if kind == "keypoints":
        return FieldSpec("keypoints", "xy")
    return FieldSpec(kind)


def resolve_field_specs(names: Iterable[str], declared: Mapping[str, FieldSpec]) -> dict[str, FieldSpec]:
    """Field specs for the given field names: declared ones first, then name-implied ones."""
    specs: dict[str, FieldSpec] = {}
    for name in names:
        spec = declared.get(name) or default_field_spec(name)
        if spec is not None:
            specs[name] = spec
    return specs


class ProvenanceEntry:
    """One op that was actually applied: where it sits in the pipeline and its sampled params.

    `ProvenanceEntry.lazy` keeps the params in the op's own form and encodes them to JSON only
    when `params` is first read: a training loader that never reads provenance never pays for it.
    """

    __slots__ = ("op", "path", "view", "_params", "_raw", "_encode")

    def __init__(self, op: str, path: str, params: dict[str, Any] | None = None, view: str | None = None):
        self.op, self.path, self.view = op, path, view
        self._params = params
        self._raw = self._encode = None

    @classmethod
    def lazy(cls, op: str, path: str, raw: Any, encode: Callable[[Any], dict[str, Any]],
             view: str | None = None) -> "ProvenanceEntry":
        entry = cls(op, path, None, view)
        entry._raw, entry._encode = raw, encode
        return entry

    @property
    def params(self) -> dict[str, Any]:
        if self._encode is not None:
            self._params = self._encode(self._raw)
            self._raw = self._encode = None
        return self._params

    @params.setter
    def params(self, value: dict[str, Any]) -> None:
        self._params, self._raw, self._encode = value, None, None

    def to_dict(self) -> dict[str, Any]:
        out = {"op": self.op, "path": self.path, "params": self.params}
        if self.view is not None:
            out["view"] = self.view
        return out

    def __eq__(self, other: Any) -> bool:
        if not isinstance(other, ProvenanceEntry):
            return NotImplemented
        return (self.op, self.path, self.params, self.view) == (other.op, other.path, other.params, other.view)

    def __repr__(self) -> str:
        return f"ProvenanceEntry(op={self.op!r}, path={self.path!r}, params={self.params!r}, view={self.view!r})"

    def __reduce__(self):   # encoded when pickled: the op's own form may not pickle
        return (ProvenanceEntry, (self.op, self.path, self.params, self.view))


class Provenance(list):
    """The list of ops applied to produce a sample, in order; JSON-serializable."""

    def to_json(self) -> str:
        return json.dumps([e.to_dict() for e in self])

    @classmethod
    def from_json(cls, text: str | list) -> "Provenance":
        rows = json.loads(text) if isinstance(text, str) else text
        return cls(ProvenanceEntry(r["op"], r["path"], r["params"], r.get("view")) for r in rows)

    def ops(self) -> list[str]:
        """Names of the applied ops, e.g. for a caption."""
        return [e.op for e in self]


class Sample(dict):
    """A dict of fields plus what augflow knows about them (kinds, seed, provenance).

    It is a plain dict to any consumer (`default_collate`, `**sample`), so it drops into an
    existing `Dataset.__getitem__`.
    """

    __slots__ = ("specs", "provenance", "seed", "views")

    def __init__(self, fields: Mapping[str, Any] = (), specs: Mapping[str, FieldSpec] | None = None,
                 provenance: Provenance | None = None, seed: Any = None):
        super().__init__(fields)
        self.specs: dict[str, FieldSpec] = dict(specs) if specs is not None else resolve_field_specs(self, {})
        self.provenance = provenance if provenance is not None else Provenance()
        self.seed = seed
        self.views: dict[str, "Sample"] | None = None

    def fields_of_kind(self, *kinds: str) -> list[str]:
        return [name for name, spec in self.specs.items() if spec.kind in kinds and name in self]

    def copy(self) -> "Sample":
        return Sample(self, self.specs, Provenance(self.provenance), self.seed)

    def with_fields(self, **updates: Any) -> "Sample":
        out = self.copy()
        out.update(updates)
        return out

    @property
    def image(self) -> np.ndarray:
        return self["image"]

    def __reduce__(self):  # picklable across DataLoader workers with its metadata
        return (Sample, (dict(self), self.specs, self.provenance, self.seed))


__all__ = [
    "FIELD_KINDS", "KINDS", "Kind", "kinds_where", "BBOX_FORMATS", "KEYPOINT_FORMATS", "FLOAT_IMAGE_RANGE", "FieldSpec",
    "Sample", "Provenance",
    "ProvenanceEntry", "default_field_spec", "resolve_field_specs",
]
