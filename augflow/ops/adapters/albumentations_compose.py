"""An albumentations `Compose` <-> augflow pipeline data, for users migrating (and going back).

`compose_to_data(compose)` reads an `A.Compose` (or the dict `A.to_dict` makes, or a file written
by `A.save`) and gives the pipeline dict `Pipeline.from_dict` takes: each transform becomes its
`albumentations.X` op (snake_case alias when that names the same op), with the parameters that
differ from albumentations' defaults and its `p`; `bbox_params`/`keypoint_params` and
`additional_targets` become `fields:`. Control flow keeps albumentations' meaning (a OneOf child's
p is its weight, and the chosen child always runs):

| albumentations                     | augflow                                                          |
|------------------------------------|------------------------------------------------------------------|
| `OneOf(ts, p)`                     | `one_of: {ops: ts (each p: 1), weights: [t.p ...], p}`          |
| `OneOrOther(a, b, p)`              | `one_of: {ops: [a, b] (p: 1), weights: [p, 1 - p]}`              |
| `SomeOf(ts, n, replace, p)`        | `some_of: {ops: ts, n, replace, p}` (each with its own p)        |
| `RandomOrder(ts, n, replace, p)`   | the same `some_of` (both apply the chosen ops in drawn order)    |
| `Sequential(ts, p)`, nested `Compose` | `sequential: {ops: ts, p}`                                    |

`SomeOf` with n > 1 applies its chosen ops in list order, augflow's `some_of` in drawn order; the
conversion warns. `pipeline_to_compose(pipe)` goes back when every op is an albumentations op.
"""

from __future__ import annotations

from augflow.errors import AlbumentationsConversionError
import functools
import inspect
import json
import warnings
from pathlib import Path
from typing import Any, Mapping

import albumentations as A

from augflow import registry
from augflow.ops.adapters.albumentations import AlbumentationsOp, snake_case
from augflow.steps import OneOf, OpStep, Sequential, SomeOf

# BboxParams/KeypointParams settings the adapter keeps at albumentations' defaults.
_BBOX_DEFAULTS = {"min_area": 0.0, "min_visibility": 0.0, "min_width": 0.0, "min_height": 0.0, "clip": False,
                  "max_accept_ratio": None, "check_each_transform": True, "filter_invalid_bboxes": False}
_KEYPOINT_DEFAULTS = {"remove_invisible": True, "angle_in_degrees": True, "check_each_transform": True}
_COMPOSE_KEYS = {"__class_fullname__", "transforms", "p", "bbox_params", "keypoint_params", "additional_targets",
                 "is_check_shapes", "strict", "mask_interpolation", "seed", "save_applied_params"}



# ---- albumentations -> augflow ----------------------------------------------------------------
def load_compose_dict(source: Any) -> dict[str, Any]:
    """The serialized form (`A.to_dict`'s `transform`) of a Compose, a dict, or a file from `A.save`."""
    if isinstance(source, (A.BaseCompose, A.BasicTransform)):
        try:
            return A.to_dict(source)["transform"]
        except Exception as exc:   # noqa: BLE001  (e.g. Lambda: Python functions do not serialize)
            raise AlbumentationsConversionError(
                f"albumentations cannot serialize this composition ({type(exc).__name__}: {exc}); a Lambda "
                "holds Python functions: make it an augflow op (augflow.register) and build the pipeline in "
                "YAML or with augflow.Pipeline.build") from None
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file (from_albumentations takes an A.Compose, the dict "
                                    "A.to_dict makes, or a file written by A.save)")
        text = path.read_text(encoding="utf-8")
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml
            source = yaml.safe_load(text)
        else:
            source = json.loads(text)
    if isinstance(source, Mapping):
        data = dict(source.get("transform", source))
        if "__class_fullname__" not in data:
            raise AlbumentationsConversionError("not an albumentations serialization: no '__class_fullname__' "
                                                "(expected what A.to_dict or A.save writes)")
        return data
    raise TypeError(f"from_albumentations takes an A.Compose, a dict from A.to_dict or a path from A.save, "
                    f"got {type(source).__name__}")


def compose_to_data(source: Any, name: str = "from_albumentations", seed: int | None = None) -> dict[str, Any]:
    """Pipeline data (for `Pipeline.from_dict`) equivalent to an albumentations composition; the
    pipeline seed is `seed`, else the Compose's own `seed`, else 0."""
    if seed is None:
        seed = getattr(source, "seed", None) if isinstance(source, A.BaseCompose) else None
    seed = 0 if seed is None else seed
    top = load_compose_dict(source)
    fields: dict[str, Any] = {"image": "image"}
    if _class_name(top) in ("Compose", "ReplayCompose"):
        steps = [_step(t, f"transforms[{i}]") for i, t in enumerate(top.get("transforms", []))]
        if float(top.get("p", 1.0)) < 1.0:
            steps = [{"sequential": {"ops": steps, "p": float(top["p"])}}]
        fields.update(_fields(top))
    else:
        steps = [_step(top, "transform")]
    return {"augflow": 1, "name": name, "description": "converted from an albumentations Compose",
            "seed": int(seed), "fields": fields, "sample": steps}


def _class_name(d: Mapping[str, Any]) -> str:
    return str(d["__class_fullname__"]).rsplit(".", 1)[-1]


def _fields(top: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in (top.get("additional_targets") or {}).items():
        out[key] = value
    for key, kind, default_format, defaults in (("bbox_params", "bboxes", "pascal_voc", _BBOX_DEFAULTS),
                                                ("keypoint_params", "keypoints", "xy", _KEYPOINT_DEFAULTS)):
        params = top.get(key)
        if not params:
            continue
        _warn_dropped(key, params, defaults)
        spec = {"kind": kind, "format": params.get("format", default_format)}
        if params.get("label_fields"):
            spec["label_fields"] = list(params["label_fields"])
        out[kind] = spec
    return out


def _warn_dropped(what: str, params: Mapping[str, Any], defaults: Mapping[str, Any]) -> None:
    changed = {k: params[k] for k, v in defaults.items() if k in params and params[k] != v}
    if changed:
        warnings.warn(f"{what} {changed} are not carried over: augflow filters boxes and keypoints with "
                      f"albumentations' defaults ({', '.join(f'{k}={defaults[k]!r}' for k in changed)})",
                      UserWarning, stacklevel=3)


def _step(d: Mapping[str, Any], where: str, force: bool = False) -> dict[str, Any]:
    """One serialized transform -> one pipeline item; `force`: chosen by a OneOf (always applied)."""
    cls = _class_name(d)
    p = float(d.get("p", 1.0))
    children = d.get("transforms") or []
    if cls in ("Compose", "ReplayCompose", "Sequential"):
        return _control("sequential", {"ops": [_step(t, f"{where}.transforms[{i}]") for i, t in enumerate(children)]},
                        1.0 if force else p)
    if cls == "OneOf":
        ops = [_step(t, f"{where}.transforms[{i}]", force=True) for i, t in enumerate(children)]
        weights = [float(t.get("p", 1.0)) for t in children]
        body: dict[str, Any] = {"ops": ops}
        if any(w != 1.0 for w in weights):
            body["weights"] = weights
        return _control("one_of", body, 1.0 if force else p)
    if cls == "OneOrOther":
        ops = [_step(t, f"{where}.transforms[{i}]", force=True) for i, t in enumerate(children)]
        return {"one_of": {"ops": [ops[0], ops[-1]], "weights": [p, 1.0 - p]}}
    if cls in ("SomeOf", "RandomOrder"):
        n, replace = int(d.get("n", 1)), bool(d.get("replace", False))
        if cls == "SomeOf" and n > 1:
            warnings.warn(f"{where}: SomeOf(n={n}) applies its chosen transforms in list order; augflow's "
                          "some_of applies them in the order drawn (as RandomOrder does)", UserWarning, stacklevel=4)
        body = {"ops": [_step(t, f"{where}.transforms[{i}]") for i, t in enumerate(children)], "n": n}
        if replace:
            body["replace"] = True
        return _control("some_of", body, 1.0 if force else p)
    if children:
        raise AlbumentationsConversionError(
            f"{where}: albumentations {cls} has no augflow counterpart (supported control flow: Compose, "
            "Sequential, OneOf, OneOrOther, SomeOf, RandomOrder)")
    return _op(cls, d, where, 1.0 if force else p)


def _control(kind: str, body: dict[str, Any], p: float) -> dict[str, Any]:
    if p < 1.0:
        body["p"] = p
    return {kind: body}


def _op(cls_name: str, d: Mapping[str, Any], where: str, p: float) -> dict[str, Any]:
    full = f"albumentations.{cls_name}"
    try:
        spec = registry.get(full)
    except registry.UnknownOpError:
        raise AlbumentationsConversionError(f"{where}: {cls_name} is not an albumentations {A.__version__} transform "
                                            "augflow knows; register a custom op for it (augflow.register)") from None
    alias = snake_case(cls_name)
    try:
        name = alias if registry.get(alias) is spec else full
    except registry.UnknownOpError:
        name = full
    transform_cls = spec.extra["cls"].transform_cls
    defaults = _serialized_defaults(transform_cls)
    fields = spec.schema.model_fields
    params = {}
    for key, value in d.items():
        if key in ("__class_fullname__", "p") or key in spec.hidden_params:
            continue
        if key not in fields:   # serialized state that is no init argument (e.g. PadIfNeeded's padding)
            if key in defaults and _plain(defaults[key]) != _plain(value):
                warnings.warn(f"{where}: {cls_name}({key}={value!r}) is not a parameter albumentations "
                              f"{A.__version__} validates; it is left out", UserWarning, stacklevel=4)
            continue
        if key in defaults and _plain(defaults[key]) == _plain(value):
            continue
        params[key] = _plain(value)
    params["p"] = p   # always written: albumentations' default p differs between transforms
    return {name: params}


@functools.lru_cache(maxsize=None)
def _serialized_defaults(transform_cls: type) -> dict[str, Any]:
    """Default parameters as `to_dict` writes them (processed: `rotate: 0` is `[0, 0]`), so that
    only what the user changed is written; the signature's defaults where the class needs arguments."""
    out = {k: v.default for k, v in inspect.signature(transform_cls.__init__).parameters.items()
           if v.default is not inspect.Parameter.empty}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out.update(A.to_dict(transform_cls())["transform"])
    except Exception:   # noqa: BLE001  (required arguments: keep the signature's defaults)
        pass
    return out


def _plain(value: Any) -> Any:
    """JSON/YAML-friendly: tuples become lists, numpy scalars plain numbers."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            return value.item()
        except (TypeError, ValueError):
            return value
    return value


# ---- augflow -> albumentations ----------------------------------------------------------------
def pipeline_to_compose(pipe: Any) -> A.Compose:
    """An `A.Compose` that does what the pipeline's `sample:` stage does (albumentations ops only)."""
    spec = pipe.spec
    extra = [s for s, present in (("views", spec.view_split is not None or spec.named_views),
                                  ("batch", spec.batch_steps), ("offline", spec.offline),
                                  ("negatives", spec.negatives)) if present]
    if extra:
        raise AlbumentationsConversionError(f"pipeline {spec.name!r} has {', '.join(extra)} stage(s), which "
                                            "albumentations has no counterpart for; only 'sample:' converts")
    transforms = [_to_albu(s) for s in spec.sample]
    bbox_params = keypoint_params = None
    additional: dict[str, str] = {}
    for fname, f in spec.fields.items():
        if f.kind == "bboxes" and bbox_params is None:
            bbox_params = A.BboxParams(format=f.format or "pascal_voc", label_fields=list(f.label_fields) or None)
        elif f.kind == "keypoints" and keypoint_params is None:
            keypoint_params = A.KeypointParams(format=f.format or "xy", label_fields=list(f.label_fields) or None)
        elif f.kind in ("image", "mask", "masks") and fname not in ("image", "mask", "masks"):
            additional[fname] = f.kind
    return A.Compose(transforms, bbox_params=bbox_params, keypoint_params=keypoint_params,
                     additional_targets=additional or None)


def _to_albu(step: Any, p: float | None = None) -> Any:
    if isinstance(step, OpStep):
        op = step.op
        if not isinstance(op, AlbumentationsOp):
            raise AlbumentationsConversionError(f"op {step.name!r} at {step.path} has no albumentations "
                                                "counterpart; to_albumentations needs albumentations ops only")
        return op.transform_cls(**op._albu_config, p=op.p if p is None else p)
    own_p = step.p if p is None else p
    if isinstance(step, Sequential):
        return A.Sequential([_to_albu(s) for s in step.steps], p=own_p)
    if isinstance(step, OneOf):
        weights = step.weights or [1.0] * len(step.steps)
        # albumentations reads a OneOf child's p as its weight and then forces it; a child with its
        # own p < 1 keeps it inside a Sequential that carries the weight.
        children = [_to_albu(s, p=w) if _p_of(s) >= 1.0 else A.Sequential([_to_albu(s)], p=w)
                    for s, w in zip(step.steps, weights)]
        return A.OneOf(children, p=own_p)
    if isinstance(step, SomeOf):
        if not isinstance(step.n, int):
            raise AlbumentationsConversionError(f"some_of at {step.path} draws n from {list(step.n)}; "
                                                "albumentations' SomeOf takes a fixed n")
        # some_of applies its draws in the order drawn: RandomOrder does, SomeOf (n > 1) sorts them
        kind = A.SomeOf if step.n <= 1 else A.RandomOrder
        return kind([_to_albu(s) for s in step.steps], n=step.n, replace=step.replace, p=own_p)
    raise TypeError(f"not a pipeline step: {step!r}")


def _p_of(step: Any) -> float:
    return step.op.p if isinstance(step, OpStep) else step.p


__all__ = ["AlbumentationsConversionError", "compose_to_data", "load_compose_dict", "pipeline_to_compose"]
