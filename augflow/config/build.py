"""From loaded YAML data to pipeline steps: validation against the registry, with positions.

Every problem in the file is collected (not just the first) and raised together as one
PipelineConfigError whose lines name file, line, column, op and parameter.
"""

from __future__ import annotations

import difflib
import math
import re
import typing
from dataclasses import dataclass, field
from typing import Any, Mapping

from pydantic import ValidationError

from augflow import registry
from augflow.config.errors import ConfigIssue, PipelineConfigError
from augflow.config.loader import LocatedDict, LocatedList, Position
from augflow.sample import BBOX_FORMATS, FIELD_KINDS, KEYPOINT_FORMATS, FieldSpec
from augflow.steps import OneOf, OpStep, Sequential, SomeOf, Step

FORMAT_VERSION = 1
TOP_LEVEL_KEYS = ("augflow", "name", "description", "seed", "imports", "fields", "decode", "sample",
                  "views", "batch", "offline", "negatives")
CONTROL_KEYS = {"one_of": ("ops", "p", "weights"), "some_of": ("ops", "n", "replace", "p"),
                "sequential": ("ops", "p")}
STAGE_KEYS = {"batch": ("device", "backend", "ops")}


@dataclass
class PipelineSpec:
    """A validated pipeline description (what `Pipeline` runs and `to_yaml` writes back)."""

    name: str = "pipeline"
    description: str = ""
    seed: int = 0
    imports: list[str] = field(default_factory=list)
    fields: dict[str, FieldSpec] = field(default_factory=dict)
    decode: dict[str, Any] = field(default_factory=dict)
    sample: list[Step] = field(default_factory=list)
    view_split: int | None = None          # index in `sample` of a `views: k` item
    view_count: int = 0
    named_views: dict[str, list[Step]] = field(default_factory=dict)
    batch: dict[str, Any] = field(default_factory=dict)    # device/backend + raw ops (compiled later)
    batch_steps: list[Step] = field(default_factory=list)
    offline: list[Step] = field(default_factory=list)
    negatives: list[Step] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)      # the data as loaded, for to_yaml


class _Collector:
    def __init__(self, filename: str):
        self.filename = filename
        self.issues: list[ConfigIssue] = []

    def add(self, message: str, pos: Position | None = None, op: str | None = None, param: str | None = None):
        line, col = pos if pos else (None, None)
        self.issues.append(ConfigIssue(message, self.filename, line, col, op, param))


def _pos_of(container: Any, key: Any = None) -> Position | None:
    if isinstance(container, LocatedDict):
        if key is not None and key in container.value_pos:
            return container.value_pos[key]
        return container.pos
    if isinstance(container, LocatedList):
        if isinstance(key, int) and key < len(container.item_pos):
            return container.item_pos[key]
        return container.pos
    return None


def _key_pos(container: Any, key: Any) -> Position | None:
    if isinstance(container, LocatedDict) and key in container.key_pos:
        return container.key_pos[key]
    return _pos_of(container)


def _did_you_mean(word: str, choices: typing.Iterable[str]) -> str:
    hits = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f"; did you mean {hits[0]!r}?" if hits else ""


def _what(value: Any) -> str:
    """How a YAML value reads to a person: 'a mapping', 'a list', 'nothing', 'the string 'x''."""
    if value is None:
        return "nothing"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the string {value!r}"
    return f"{type(value).__name__} {value!r}"


def build_spec(data: Any, filename: str = "<pipeline>", allow_imports: bool = True) -> PipelineSpec:
    """Validate loaded YAML data and build the pipeline's steps; raise every issue at once.

    `imports:` imports Python modules (running their code), so a file that has it is code:
    with `allow_imports=False` such a file is refused instead (for files from others).
    """
    c = _Collector(filename)
    if not isinstance(data, Mapping):
        got = "an empty file" if data is None else _what(data)
        c.add(f"a pipeline file must be a mapping with keys such as 'augflow: 1' and 'sample:'; got {got}",
              _pos_of(data) or (1, 1))
        raise PipelineConfigError(c.issues)
    spec = PipelineSpec(raw=dict(data))
    for key in data:
        if key not in TOP_LEVEL_KEYS:
            c.add(f"unknown top-level key {key!r}{_did_you_mean(key, TOP_LEVEL_KEYS)} "
                  f"(allowed: {', '.join(TOP_LEVEL_KEYS)})", _key_pos(data, key))
    version = data.get("augflow")
    if version is None:
        c.add(f"missing 'augflow: {FORMAT_VERSION}' (the format version) at the top of the file", _pos_of(data) or (1, 1))
    elif version != FORMAT_VERSION:
        c.add(f"format version must be {FORMAT_VERSION}, got {version!r}", _pos_of(data, "augflow"))
    for key in ("name", "description"):
        if key in data and not isinstance(data[key], str):
            c.add(f"'{key}' must be a string, got {_what(data[key])}", _pos_of(data, key))
    spec.name = str(data.get("name", spec.name))
    spec.description = str(data.get("description", ""))
    seed = data.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        c.add(f"'seed' must be a non-negative integer, got {seed!r}", _pos_of(data, "seed"))
    else:
        spec.seed = seed
    _imports(data, spec, c, allow_imports)
    _fields(data, spec, c)
    decode = data.get("decode", {}) or {}
    if not isinstance(decode, Mapping):
        c.add(f"'decode' must be a mapping like {{backend: pillow}}, got {decode!r}", _pos_of(data, "decode"))
    else:
        spec.decode = dict(decode)
    sample = data.get("sample", []) or []
    spec.sample, spec.view_split, spec.view_count = _step_list(sample, "sample", c, _pos_of(data, "sample"),
                                                              allow_views=True)
    views = data.get("views")
    if views is not None:
        if not isinstance(views, Mapping) or not views:
            c.add("'views' must map view names to op lists, e.g. {weak: [...], strong: [...]}", _pos_of(data, "views"))
        else:
            if spec.view_split is not None:
                c.add("use either a 'views: k' item in 'sample' or a top-level 'views' mapping, not both",
                      _pos_of(data, "views"))
            for vname, vsteps in views.items():
                steps, _, _ = _step_list(vsteps or [], f"views.{vname}", c, _pos_of(views, vname))
                spec.named_views[str(vname)] = steps
    batch = data.get("batch")
    if batch is not None:
        if not isinstance(batch, Mapping):
            c.add("'batch' must be a mapping with 'ops' (and optionally 'device', 'backend')", _pos_of(data, "batch"))
        else:
            for key in batch:
                if key not in STAGE_KEYS["batch"]:
                    c.add(f"unknown key {key!r} in 'batch'{_did_you_mean(key, STAGE_KEYS['batch'])} "
                          f"(allowed: {', '.join(STAGE_KEYS['batch'])})", _key_pos(batch, key))
            spec.batch = dict(batch)
            spec.batch_steps, _, _ = _step_list(batch.get("ops") or [], "batch.ops", c, _pos_of(batch, "ops"))
            if spec.batch_steps and (spec.view_split is not None or spec.named_views):
                c.add("batch ops cannot be combined with views (a batch of multi-view samples has no single "
                      "image to mix or normalise); put per-view ops under the views, or remove 'views'",
                      _key_pos(data, "batch"))
    for section in ("offline", "negatives"):
        if data.get(section) is not None:
            steps, _, _ = _step_list(data[section], section, c, _pos_of(data, section))
            setattr(spec, section, steps)
    if c.issues:
        raise PipelineConfigError(c.issues)
    return spec


def _imports(data: Mapping, spec: PipelineSpec, c: _Collector, allow: bool = True) -> None:
    imports = data.get("imports", []) or []
    if not isinstance(imports, list) or not all(isinstance(m, str) for m in imports):
        c.add("'imports' must be a list of Python module names that register ops", _pos_of(data, "imports"))
        return
    if imports and not allow:
        c.add(f"'imports' would import (run) the Python modules {', '.join(map(repr, imports))}, and imports "
              "are turned off (allow_imports=False / --no-imports); read those modules first, then load the "
              "file with imports allowed if you trust them", _key_pos(data, "imports"))
        return
    for i, module in enumerate(imports):
        try:
            registry.import_plugin(module)
        except Exception as exc:  # noqa: BLE001 - any import failure is reported with its position
            c.add(f"cannot import module {module!r} listed in 'imports': {type(exc).__name__}: {exc}",
                  _pos_of(imports, i))
        else:
            spec.imports.append(module)


def _fields(data: Mapping, spec: PipelineSpec, c: _Collector) -> None:
    fields = data.get("fields", {}) or {}
    if not isinstance(fields, Mapping):
        c.add("'fields' must map field names to kinds, e.g. {image: image, bboxes: {kind: bboxes, format: coco}}",
              _pos_of(data, "fields"))
        return
    for name, value in fields.items():
        pos = _pos_of(fields, name)
        entry = {"kind": value} if isinstance(value, str) else value
        if not isinstance(entry, Mapping) or "kind" not in entry:
            c.add(f"field {name!r} must be a kind name or a mapping with 'kind'", pos)
            continue
        kind = entry.get("kind")
        if kind not in FIELD_KINDS:
            c.add(f"field {name!r} has unknown kind {kind!r}{_did_you_mean(kind, FIELD_KINDS)} "
                  f"(allowed: {', '.join(FIELD_KINDS)})", pos)
            continue
        unknown = set(entry) - {"kind", "format", "label_fields", "max_value", "clip"}
        if unknown:
            c.add(f"field {name!r} has unknown keys {sorted(unknown)} "
                  "(allowed: kind, format, label_fields, max_value (images), clip (boxes))", pos)
        max_value, clip = entry.get("max_value"), entry.get("clip", False)
        if max_value is not None and (kind != "image" or isinstance(max_value, bool)
                                      or not isinstance(max_value, (int, float)) or not 0 < max_value < float("inf")):
            c.add(f"field {name!r}: 'max_value' is the largest value of a float image, a positive number "
                  f"such as 255, on an image field; got {_what(max_value)} on a {kind} field",
                  _pos_of(entry, "max_value") or pos)
            continue
        if clip is not False and (kind != "bboxes" or not isinstance(clip, bool)):
            c.add(f"field {name!r}: 'clip' is true or false, on a bboxes field; got {_what(clip)} on a {kind} field",
                  _pos_of(entry, "clip") or pos)
            continue
        fmt = entry.get("format")
        if kind == "bboxes":
            fmt = fmt or "pascal_voc"
            if fmt not in BBOX_FORMATS:
                c.add(f"field {name!r}: unknown box format {fmt!r}{_did_you_mean(fmt, BBOX_FORMATS)} "
                      f"(allowed: {', '.join(BBOX_FORMATS)})", pos)
                continue
        elif kind == "keypoints":
            fmt = fmt or "xy"
            if fmt not in KEYPOINT_FORMATS:
                c.add(f"field {name!r}: unknown keypoint format {fmt!r} (allowed: {', '.join(KEYPOINT_FORMATS)})", pos)
                continue
        labels = entry.get("label_fields", []) or []
        if not isinstance(labels, list) or not all(isinstance(lf, str) for lf in labels):
            c.add(f"field {name!r}: 'label_fields' must be a list of field names, e.g. [labels]; "
                  f"got {_what(labels)}", _pos_of(entry, "label_fields") or pos)
            continue
        spec.fields[str(name)] = FieldSpec(kind, fmt, tuple(labels), None if max_value is None else float(max_value),
                                           clip)


def _step_list(items: Any, path: str, c: _Collector, pos: Position | None, allow_views: bool = False):
    if not isinstance(items, list):
        c.add(f"'{path}' must be a list of ops (each item '- name: {{params}}'), got {_what(items)}", pos)
        return [], None, 0
    steps: list[Step] = []
    split, count = None, 0
    for i, item in enumerate(items):
        ipos = _pos_of(items, i)
        if allow_views and isinstance(item, Mapping) and list(item) == ["views"]:
            k = item["views"]
            if split is not None:
                c.add("only one 'views: k' item is allowed", ipos)
            elif isinstance(k, bool) or not isinstance(k, int) or k < 1:
                c.add(f"'views' must be a positive integer (the number of augmented views), got {k!r}",
                      _pos_of(item, "views"))
            else:
                split, count = len(steps), k
            continue
        step = _step(item, f"{path}[{i}]", c, ipos)
        if step is not None:
            steps.append(step)
    return steps, split, count


def _step(item: Any, path: str, c: _Collector, pos: Position | None) -> Step | None:
    if isinstance(item, str):
        item = {item: {}}
    if not isinstance(item, Mapping) or len(item) != 1:
        keys = list(item) if isinstance(item, Mapping) else None
        hint = f" (got keys {keys}; is an indent missing under the op name?)" if keys else f" (got {_what(item)})"
        c.add(f"each op must be a one-key mapping like '- horizontal_flip: {{p: 0.5}}'{hint}", pos)
        return None
    name, params = next(iter(item.items()))
    name = str(name)
    npos = _key_pos(item, name) or pos
    params = {} if params is None else params
    if name in CONTROL_KEYS:
        return _control(name, params, path, c, npos)
    if not isinstance(params, Mapping):
        c.add(f"parameters must be a mapping like {{p: 0.5}}, got {_what(params)}", _pos_of(item, name), op=name)
        return None
    try:
        spec = registry.get(name)
    except registry.UnknownOpError as exc:
        c.add(str(exc), npos)
        return None
    p_ok = _check_p(params, c, name)
    checked = dict(params) if p_ok else {k: v for k, v in params.items() if k != "p"}   # the rest still checked
    if not _check_numbers(params, c, name):
        return None
    try:
        spec.validate(dict(checked))   # first: library ops would otherwise warn about unknown arguments
        op = spec.build(dict(checked))
    except (ValidationError, TypeError, ValueError) as exc:
        # albumentations wraps its pydantic error in a ValueError; report the pydantic one per parameter
        cause = exc if isinstance(exc, ValidationError) else exc.__cause__
        if isinstance(cause, ValidationError):
            for err in _one_per_param(cause.errors()):
                _report_validation(err, spec, name, params, c, npos)
        else:
            c.add(f"invalid parameters: {exc}", npos, op=name)
        return None
    return OpStep(op, path, name) if p_ok else None


MAX_SIDE = 32766   # OpenCV's warps and remaps need image sides below SHRT_MAX (32767)
_SIDE_PARAM = re.compile(r"(.*_)?(size|height|width)(_.*)?")


def is_side_param(name: str) -> bool:
    """Parameters that are image sides in pixels (`size`, `height`, `max_size`, `min_width`...)."""
    return bool(_SIDE_PARAM.fullmatch(name))


def _numbers(value: Any):
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        yield value
    elif isinstance(value, list):
        for v in value:
            yield from _numbers(v)


def _check_numbers(params: Mapping, c: _Collector, op: str) -> bool:
    """Every number written must be finite (no .inf/.nan), and image sides must fit OpenCV."""
    ok = True
    for key, value in params.items():
        nums = list(_numbers(value))
        if any(isinstance(v, float) and not math.isfinite(v) for v in nums):
            c.add(f"must be finite numbers, got {_plain_value(value)!r} (.inf and .nan are not allowed)",
                  _pos_of(params, key), op=op, param=str(key))
            ok = False
        elif is_side_param(str(key)) and any(abs(v) > MAX_SIDE for v in nums):
            c.add(f"image sides must be at most {MAX_SIDE} pixels (OpenCV's limit), got {_plain_value(value)!r}",
                  _pos_of(params, key), op=op, param=str(key))
            ok = False
    return ok


def _check_p(params: Mapping, c: _Collector, op: str) -> bool:
    """`p` means the same for every op and control step: a probability in [0, 1]."""
    p = params.get("p", 1.0)
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
        c.add(f"must be a probability in [0, 1] (how often the op runs), got {p!r}", _pos_of(params, "p"),
              op=op, param="p")
        return False
    return True


def _control(kind: str, params: Any, path: str, c: _Collector, pos: Position | None) -> Step | None:
    allowed = CONTROL_KEYS[kind]
    if isinstance(params, list):
        params = {"ops": params}
    if not isinstance(params, Mapping):
        c.add(f"'{kind}' takes a mapping with {', '.join(allowed)}", pos)
        return None
    for key in params:
        if key not in allowed:
            c.add(f"unknown key {key!r} in '{kind}'{_did_you_mean(key, allowed)} (allowed: {', '.join(allowed)})",
                  _key_pos(params, key))
    ops = params.get("ops")
    if not isinstance(ops, list) or not ops:
        c.add(f"'{kind}' needs a non-empty 'ops' list", _pos_of(params, "ops") or pos)
        return None
    children, _, _ = _step_list(ops, f"{path}.ops", c, _pos_of(params, "ops"))
    if not _check_p(params, c, kind) or len(children) != len(ops):
        return None
    p = params.get("p", 1.0)
    if kind == "one_of":
        weights = params.get("weights")
        if weights is not None and (not isinstance(weights, list) or len(weights) != len(children)
                                    or any(isinstance(w, bool) or not isinstance(w, (int, float))
                                           or not math.isfinite(w) or w < 0 for w in weights)
                                    or sum(weights) <= 0):
            c.add(f"'weights' must be {len(children)} non-negative numbers with a positive sum, got {weights!r}",
                  _pos_of(params, "weights"), op=kind)
            weights = None
        return OneOf(children, path, float(p), [float(w) for w in weights] if weights else None)
    if kind == "some_of":
        n = params.get("n", 1)
        ok_int = isinstance(n, int) and not isinstance(n, bool) and n >= 0
        ok_range = isinstance(n, list) and len(n) == 2 and all(isinstance(v, int) and v >= 0 for v in n) and n[0] <= n[1]
        if not (ok_int or ok_range):
            c.add(f"'n' must be a non-negative integer or a range [low, high], got {n!r}", _pos_of(params, "n"), op=kind)
            n = 1
        replace = bool(params.get("replace", False))
        return SomeOf(children, path, n if isinstance(n, int) else (n[0], n[1]), replace, float(p))
    return Sequential(children, path, float(p))


def _allowed_text(spec: registry.OpSpec, param: str) -> str:
    field = spec.schema.model_fields.get(param)
    if field is None:
        return ""
    named = spec.extra.get("named_constants", {}).get(param)
    if named:   # e.g. border_mode: reflect, as well as OpenCV's integer codes
        return f"; allowed: one of {', '.join(named)} (or OpenCV's integer code)"
    choices = _literal_choices(field.annotation)
    parts = []
    if choices:
        parts.append("one of " + ", ".join(repr(v) for v in choices))
    parts.extend(filter(None, (_constraint_text(meta) for meta in field.metadata)))
    if not parts:
        parts.append(f"type {registry._type_name(field.annotation)}")
    return "; allowed: " + ", ".join(parts)


_BOUNDS = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<", "min_length": "length >=", "max_length": "length <="}


def _constraint_text(meta: Any) -> str:
    """`Ge(ge=1)` -> '>= 1'; validators that are plain functions say nothing readable, so nothing."""
    found = [f"{text} {getattr(meta, attr)}" for attr, text in _BOUNDS.items()
             if getattr(meta, attr, None) is not None]
    return " and ".join(found)


def _literal_choices(annotation: Any) -> list[Any]:
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return list(typing.get_args(annotation))
    out = []
    for arg in typing.get_args(annotation) or ():
        out.extend(_literal_choices(arg))
    return out


def _one_per_param(errors: list[dict]) -> list[dict]:
    """pydantic reports a value that fits no member of a union once per member; keep one per parameter
    (the allowed text that follows names the whole union)."""
    seen, out = set(), []
    for err in errors:
        loc = err.get("loc") or ()
        key = loc[0] if loc and err.get("type") != "extra_forbidden" else (id(err),)
        if key in seen:
            continue
        seen.add(key)
        out.append(err)
    return out


def _report_validation(err: dict, spec: registry.OpSpec, name: str, params: Mapping, c: _Collector,
                       op_pos: Position | None) -> None:
    loc = err.get("loc") or ()
    param = str(loc[0]) if loc else None
    if param is None:   # a check across parameters (e.g. "px or percent"): albumentations' own words
        message = str(err.get("msg", "invalid parameters")).removeprefix("Value error, ")
        c.add(f"invalid parameters: {message}", op_pos, op=name)
        return
    ppos = _pos_of(params, param) if param in params else op_pos
    if err.get("type") == "extra_forbidden" and param is not None:
        allowed = [p for p in spec.schema.model_fields if p not in spec.hidden_params]
        ppos = _key_pos(params, param) if param in params else op_pos
        c.add(f"is not a parameter of this op{_did_you_mean(param, allowed)} (allowed: {', '.join(allowed)})",
              ppos, op=name, param=param)
        return
    given = params.get(param, "<missing>") if param is not None else params
    message = err.get("msg", "is invalid")
    if err.get("type") == "missing":
        c.add(f"is required{_allowed_text(spec, param)}", op_pos, op=name, param=param)
        return
    allowed = _allowed_text(spec, param) if param else ""
    message = message.removeprefix("Value error, ")
    hint = ""
    named = spec.extra.get("named_constants", {}).get(param)
    if named and isinstance(given, str):
        hint = _did_you_mean(given, named)
    c.add(f"{message[0].lower() + message[1:]}, got {_plain_value(given)!r}{allowed}{hint}", ppos, op=name,
          param=param)


def _plain_value(value: Any) -> Any:
    """The value as the user wrote it (located containers shown as plain lists and dicts)."""
    if isinstance(value, Mapping):
        return {k: _plain_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain_value(v) for v in value]
    return value
