"""JSON Schema of the pipeline format, generated from the op registry (for editor completion)."""

from __future__ import annotations

import typing
from typing import Any

from augflow import registry
from augflow.config.build import CONTROL_KEYS, FORMAT_VERSION, MAX_SIDE, is_side_param
from augflow.sample import BBOX_FORMATS, FIELD_KINDS, KEYPOINT_FORMATS


def op_params_schema(name: str) -> dict[str, Any]:
    """The JSON Schema of one op's parameters."""
    spec = registry.get(name)
    try:
        schema = spec.schema.model_json_schema(mode="validation")
    except Exception:  # noqa: BLE001 - a few library schemas hold types JSON Schema cannot express
        schema = {"type": "object", "properties": {row["name"]: {"description": row["description"]}
                                                   for row in spec.params_info()}}
    for hidden in spec.hidden_params:
        schema.get("properties", {}).pop(hidden, None)
        if hidden in schema.get("required", []):
            schema["required"].remove(hidden)
    schema["additionalProperties"] = False
    props = schema.setdefault("properties", {})
    for param, names in spec.extra.get("named_constants", {}).items():   # `border_mode: reflect`
        if param in props:
            props[param] = {"anyOf": [props[param], {"enum": list(names)}],
                            "description": props[param].get("description", "")}
    for pname in spec.schema.model_fields:    # bounds the loader checks with validator functions
        if pname in props:
            # adapter schemas re-declare fields with defaults; the library's own field keeps the validators
            for model in spec.schema.__mro__:
                f = getattr(model, "model_fields", {}).get(pname) if isinstance(model, type) else None
                for bound in _range_bounds(f) if f is not None else ():
                    _bound(props[pname], **bound)
            if is_side_param(pname):
                _bound(props[pname], min_val=-MAX_SIDE, max_val=MAX_SIDE)
    # `p` is a probability for every op (the loader checks it for all, whatever the op's own schema says)
    props["p"] = {"type": "number", "minimum": 0, "maximum": 1, "description": "Probability that the op is applied."}
    schema.setdefault("description", spec.doc.split("\n\n")[0])
    return schema


def _validator_funcs(field: Any) -> list[Any]:
    funcs = [getattr(m, "func", None) for m in field.metadata]

    def walk(annotation: Any) -> None:
        funcs.extend(getattr(m, "func", None) for m in getattr(annotation, "__metadata__", ()) or ())
        for arg in typing.get_args(annotation):
            walk(arg)

    walk(field.annotation)
    return [f for f in funcs if f is not None]


def _range_bounds(field: Any) -> list[dict[str, Any]]:
    """albumentations' `check_range_bounds(min, max)` validators, read from their closures."""
    out = []
    for func in _validator_funcs(field):
        names = getattr(getattr(func, "__code__", None), "co_freevars", ())
        if {"min_val", "max_val"} <= set(names) and func.__closure__:
            cells = dict(zip(names, (c.cell_contents for c in func.__closure__)))
            out.append({k: cells.get(k) for k in ("min_val", "max_val", "min_inclusive", "max_inclusive")
                        if k in cells})
    return out


def _bound(schema: dict[str, Any], min_val: Any = None, max_val: Any = None, min_inclusive: bool = True,
           max_inclusive: bool = True) -> None:
    """Put numeric bounds on every number the property allows (itself, tuple items, union members)."""
    if not isinstance(schema, dict):
        return
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        for sub in schema.get(key, []) or []:
            _bound(sub, min_val, max_val, min_inclusive, max_inclusive)
    if isinstance(schema.get("items"), dict):
        _bound(schema["items"], min_val, max_val, min_inclusive, max_inclusive)
    if schema.get("type") in ("number", "integer"):
        if min_val is not None:
            schema["minimum" if min_inclusive else "exclusiveMinimum"] = min_val
        if max_val is not None:
            schema["maximum" if max_inclusive else "exclusiveMaximum"] = max_val


def pipeline_json_schema() -> dict[str, Any]:
    """A draft 2020-12 schema: top-level keys, field kinds, and every registered op's parameters."""
    op_entries = []
    defs: dict[str, Any] = {}
    for spec in registry.specs():
        key = spec.name.replace(".", "__")
        defs[key] = op_params_schema(spec.name)
        for name in (spec.name, *spec.aliases):
            op_entries.append({"type": "object", "properties": {name: {"oneOf": [{"$ref": f"#/$defs/{key}"},
                                                                                   {"type": "null"}]}},
                               "required": [name], "additionalProperties": False})
    control = []
    for kind, keys in CONTROL_KEYS.items():
        props = {k: {} for k in keys}
        props["ops"] = {"$ref": "#/$defs/__steps"}
        control.append({"type": "object", "required": [kind], "additionalProperties": False,
                        "properties": {kind: {"type": "object", "properties": props, "required": ["ops"]}}})
    defs["__step"] = {"anyOf": [*op_entries, *control]}
    defs["__steps"] = {"type": "array", "items": {"$ref": "#/$defs/__step"}}
    field = {"anyOf": [{"enum": list(FIELD_KINDS)}, {"type": "object", "properties": {
        "kind": {"enum": list(FIELD_KINDS)}, "format": {"enum": list(BBOX_FORMATS) + list(KEYPOINT_FORMATS)},
        "label_fields": {"type": "array", "items": {"type": "string"}},
        "max_value": {"type": "number", "exclusiveMinimum": 0}, "clip": {"type": "boolean"}}, "required": ["kind"]}]}
    views_item = {"type": "object", "properties": {"views": {"type": "integer", "minimum": 1}},
                  "required": ["views"], "additionalProperties": False}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "augflow pipeline",
        "type": "object",
        "required": ["augflow"],
        "additionalProperties": False,
        "properties": {
            "augflow": {"const": FORMAT_VERSION},
            "name": {"type": "string"}, "description": {"type": "string"},
            "seed": {"type": "integer", "minimum": 0},
            "imports": {"type": "array", "items": {"type": "string"}},
            "fields": {"type": "object", "additionalProperties": field},
            "decode": {"type": "object"},
            "sample": {"type": "array", "items": {"anyOf": [{"$ref": "#/$defs/__step"}, views_item]}},
            "views": {"type": "object", "additionalProperties": {"$ref": "#/$defs/__steps"}},
            "batch": {"type": "object", "properties": {"device": {"type": "string"}, "backend": {"type": "string"},
                                                       "ops": {"$ref": "#/$defs/__steps"}}},
            "offline": {"$ref": "#/$defs/__steps"},
            "negatives": {"$ref": "#/$defs/__steps"},
        },
        "$defs": defs,
    }
