"""TTA files: which test-time transforms to run, checked against the task at load time.

```yaml
augflow: 1
name: tta_segmentation
task: segmentation          # optional; TTA(task=...) overrides
merge: mean                 # optional; TTA(merge=...) overrides
combine: product            # product (every combination, the default) | union (each variant alone)
tta:
  - horizontal_flip         # original + mirrored
  - rot90: {k: [0, 1, 2, 3]}
  - scale: {factors: [1.0, 1.25]}
  - random:                 # any augflow op, drawn `draws` times (classification, or colour ops only)
      draws: 4
      ops: [{albumentations.GaussianBlur: {blur_limit: [3, 5]}}]
```
Every item lists its variants; TTA runs their Cartesian product (or, with `combine: union`, the
original plus each variant alone). A dense task (segmentation, keypoints, boxes) must map every
prediction back, so an op without an exact inverse is an error that names it, with its position.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from pydantic import ValidationError

from augflow import seeding
from augflow.config.errors import ConfigIssue, PipelineConfigError
from augflow.config.loader import LocatedDict, LocatedList, Position, load_yaml_file
from augflow.tta.transforms import TRANSFORMS, TTATransform, invertible_names

TASKS = ("classification", "segmentation", "keypoints", "boxes", "detection")
DENSE_TASKS = ("segmentation", "keypoints", "boxes", "detection")
TOP_KEYS = ("augflow", "name", "description", "task", "merge", "combine", "seed", "tta")
_MOVING_KINDS = {"mask", "masks", "bboxes", "keypoints"}

Variant = tuple[tuple[TTATransform, Any], ...]   # the non-identity steps of one augmented view

PRESETS: dict[str, dict[str, Any]] = {
    "hflip": {"tta": ["horizontal_flip"]},
    "flips": {"tta": ["horizontal_flip", "vertical_flip"]},
    "d4": {"tta": ["horizontal_flip", {"rot90": {"k": [0, 1, 2, 3]}}]},
    "multiscale": {"tta": [{"scale": {"factors": [1.0, 0.75, 1.25]}}]},
    "shifts": {"tta": [{"pad_crop": {"pad": 2}}]},
    "hflip_shifts": {"tta": ["horizontal_flip", {"pad_crop": {"pad": 2}}]},
}


@dataclass
class TTAItem:
    transform: TTATransform
    name: str
    path: str
    pos: Position | None = None


@dataclass
class TTAConfig:
    """A validated TTA description: the transforms, and defaults for task and merge."""

    items: list[TTAItem]
    name: str = "tta"
    task: str | None = None
    merge: str | None = None
    combine: str = "product"
    source: str = "<tta>"
    positions: dict[str, Position | None] = field(default_factory=dict)

    def variants(self) -> list[Variant]:
        """Every augmented view, the original (empty tuple) first when it is among them."""
        per_item = [[(it.transform, v) for v in it.transform.variants()] for it in self.items]
        if self.combine == "union":
            out: list[Variant] = [()]
            out += [((t, v),) for steps in per_item for (t, v) in steps if not t.is_identity(v)]
        else:
            out = [tuple((t, v) for t, v in combo if not t.is_identity(v)) for combo in itertools.product(*per_item)]
        seen, unique = set(), []
        for var in out:
            key = tuple((id(t), repr(v)) for t, v in var)
            if key not in seen:
                seen.add(key)
                unique.append(var)
        unique.sort(key=lambda var: len(var) > 0)   # stable: the original first
        return unique

    def check_task(self, task: str) -> None:
        """Raise if a dense task meets a transform whose predictions cannot be mapped back."""
        if task not in TASKS:
            raise ValueError(f"unknown TTA task {task!r}; allowed: {', '.join(TASKS)}")
        if task not in DENSE_TASKS:
            return
        issues = []
        for it in self.items:
            t = it.transform
            if not t.geometric or t.invertible:
                continue
            for op_name, pos in getattr(t, "moving_ops", [(it.name, it.pos)]):
                issues.append(ConfigIssue(
                    f"moves pixels and has no exact inverse, so task {task!r} cannot map its predictions back; "
                    f"use invertible TTA ops ({', '.join(invertible_names())}) or colour ops, "
                    "or task: classification", self.source, *(pos or (None, None)), op=op_name))
        if issues:
            raise PipelineConfigError(issues)


class RandomOps(TTATransform):
    """`draws` seeded runs of augflow ops on each image (CPU, per image), plus the original.

    Each draw's seed comes from (TTA seed, draw number, image content), so a given image gets the
    same views in every batch and run.
    """

    name = "random"

    def __init__(self, pipeline, draws: int, keep_original: bool, seed: int, moving_ops: list):
        self.pipeline = pipeline
        self.draws = draws
        self.keep_original = keep_original
        self.seed = seed
        self.moving_ops = moving_ops
        self.geometric = bool(moving_ops)
        self.invertible = not moving_ops

    def variants(self):
        return ([None] if self.keep_original else []) + list(range(self.draws))

    def is_identity(self, v):
        return v is None

    def image(self, x: torch.Tensor, v: int) -> torch.Tensor:
        outs = []
        for img in x:
            arr = np.ascontiguousarray(img.detach().float().cpu().numpy().transpose(1, 2, 0))
            key = seeding.content_key({"image": arr})
            seed = seeding.seed_int(np.random.SeedSequence([self.seed, v, key]))
            out = self.pipeline({"image": arr}, seed=seed)["image"]
            out = out[:, :, None] if out.ndim == 2 else out
            outs.append(torch.from_numpy(np.ascontiguousarray(out.transpose(2, 0, 1))).to(x.dtype))
        return torch.stack(outs).to(x.device)


# ---- loading ----------------------------------------------------------------------------------
def load_tta(source: Any, filename: str | None = None) -> TTAConfig:
    """A TTAConfig from a YAML path, a preset name, a dict, or a TTAConfig."""
    if isinstance(source, TTAConfig):
        return source
    if isinstance(source, Mapping):
        return build_tta(source, filename or "<dict>")
    if isinstance(source, (str, Path)):
        text = str(source)
        if text in PRESETS:
            return build_tta({"augflow": 1, "name": text, **PRESETS[text]}, f"<preset {text}>")
        if text.endswith((".yaml", ".yml")) or Path(text).exists():
            return build_tta(load_yaml_file(text), text)
        import difflib
        hits = difflib.get_close_matches(text, list(PRESETS), n=1)
        hint = f"; did you mean {hits[0]!r}?" if hits else ""
        raise ValueError(f"{text!r} is neither a TTA YAML file nor a preset{hint} "
                         f"(presets: {', '.join(PRESETS)})")
    raise TypeError(f"TTA pipeline must be a YAML path, a preset name or a dict, got {type(source).__name__}")


def _pos(container: Any, key: Any = None) -> Position | None:
    if isinstance(container, LocatedDict):
        return container.value_pos.get(key, container.pos) if key is not None else container.pos
    if isinstance(container, LocatedList):
        return container.item_pos[key] if isinstance(key, int) and key < len(container.item_pos) else container.pos
    return None


def build_tta(data: Any, filename: str = "<tta>") -> TTAConfig:
    """Validate loaded YAML data; every problem is reported at once with its position."""
    issues: list[ConfigIssue] = []

    def add(msg: str, pos: Position | None, op: str | None = None, param: str | None = None):
        issues.append(ConfigIssue(msg, filename, *(pos or (None, None)), op=op, param=param))

    if not isinstance(data, Mapping):
        raise PipelineConfigError([ConfigIssue("a TTA file must be a mapping with 'augflow: 1' and a 'tta' list",
                                               filename, 1, 1)])
    for key in data:
        if key not in TOP_KEYS:
            add(f"unknown top-level key {key!r} in a TTA file (allowed: {', '.join(TOP_KEYS)})",
                data.key_pos.get(key) if isinstance(data, LocatedDict) else None)
    if data.get("augflow", 1) != 1:
        add(f"format version must be 1, got {data.get('augflow')!r}", _pos(data, "augflow"))
    task, merge, combine = data.get("task"), data.get("merge"), data.get("combine", "product")
    if task is not None and task not in TASKS:
        add(f"unknown task {task!r} (allowed: {', '.join(TASKS)})", _pos(data, "task"))
    from augflow.tta.merge import MERGES
    if merge is not None and merge not in MERGES:
        add(f"unknown merge {merge!r} (allowed: {', '.join(MERGES)})", _pos(data, "merge"))
    if combine not in ("product", "union"):
        add(f"'combine' must be 'product' or 'union', got {combine!r}", _pos(data, "combine"))
    seed = data.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        add(f"'seed' (of the random draws) must be a non-negative integer, got {seed!r}", _pos(data, "seed"))
        seed = 0
    items_data = data.get("tta")
    items: list[TTAItem] = []
    if not isinstance(items_data, list) or not items_data:
        add("a TTA file needs a non-empty 'tta' list of transforms, e.g. '- horizontal_flip'",
            _pos(data, "tta") or (1, 1))
    else:
        for i, entry in enumerate(items_data):
            item = _item(entry, f"tta[{i}]", _pos(items_data, i), filename, seed, add)
            if item is not None:
                items.append(item)
    if issues:
        raise PipelineConfigError(issues)
    cfg = TTAConfig(items, str(data.get("name", "tta")), task, merge, combine, filename)
    if task is not None:
        cfg.check_task(task)
    return cfg


def _item(entry: Any, path: str, pos: Position | None, filename: str, seed: int, add) -> TTAItem | None:
    if isinstance(entry, str):
        entry = {entry: {}}
    if not isinstance(entry, Mapping) or len(entry) != 1:
        add("each TTA item must be a name or a one-key mapping like '- rot90: {k: [0, 1]}'", pos)
        return None
    name, params = next(iter(entry.items()))
    name = str(name)
    npos = entry.key_pos.get(name, pos) if isinstance(entry, LocatedDict) else pos
    params = {} if params is None else params
    if not isinstance(params, Mapping):
        add(f"parameters must be a mapping, got {params!r}", npos, op=name)
        return None
    if name == "random":
        return _random_item(params, path, npos, filename, seed, add)
    cls = TRANSFORMS.get(name)
    if cls is None:
        add(_unknown_message(name), npos)
        return None
    try:
        return TTAItem(cls(**dict(params)), name, path, npos)
    except ValidationError as exc:
        for err in exc.errors():
            param = str(err["loc"][0]) if err.get("loc") else None
            ppos = _pos(params, param) if param in params else npos
            msg = err["msg"][:1].lower() + err["msg"][1:]
            add(f"{msg}, got {params.get(param, '<missing>')!r}", ppos, op=name, param=param)
        return None


def _unknown_message(name: str) -> str:
    import difflib

    from augflow import registry
    hits = difflib.get_close_matches(name, sorted(TRANSFORMS), n=1)
    hint = f"; did you mean {hits[0]!r}?" if hits else ""
    try:
        registry.get(name)
        hint += "; it is an augflow op: list random ops under '- random: {draws: 4, ops: [...]}'"
    except KeyError:
        pass
    return f"unknown TTA transform {name!r}{hint} (TTA transforms: {', '.join(sorted(TRANSFORMS))})"


def _random_item(params: Mapping, path: str, pos: Position | None, filename: str, seed: int, add) -> TTAItem | None:
    from augflow import registry
    from augflow.config.build import build_spec
    from augflow.pipeline import Pipeline
    from augflow.steps import iter_ops

    unknown = set(params) - {"draws", "ops", "keep_original"}
    if unknown:
        add(f"unknown keys {sorted(unknown)} (allowed: draws, ops, keep_original)", pos, op="random")
    draws = params.get("draws", 4)
    if isinstance(draws, bool) or not isinstance(draws, int) or draws < 1:
        add(f"'draws' must be a positive integer, got {draws!r}", _pos(params, "draws") or pos, op="random")
        return None
    ops = params.get("ops")
    if not isinstance(ops, list) or not ops:
        add("'random' needs a non-empty 'ops' list of augflow ops", _pos(params, "ops") or pos, op="random")
        return None
    try:
        pipe = Pipeline(build_spec({"augflow": 1, "sample": ops}, filename), source=filename)
    except PipelineConfigError as exc:
        for issue in exc.issues:
            add(issue.message, (issue.line, issue.column) if issue.line else pos, op=issue.op, param=issue.param)
        return None
    moving = []
    for step in iter_ops(pipe.spec.sample):
        if registry.get(step.name).targets & _MOVING_KINDS:
            moving.append((step.name, _op_pos(ops, step.path, step.name) or pos))
    t = RandomOps(pipe, draws, bool(params.get("keep_original", True)), int(seed), moving)
    return TTAItem(t, "random", path, pos)


def _op_pos(ops: list, path: str, name: str) -> Position | None:
    """Position of the op at a step path like 'sample[1].ops[0]' inside the YAML `ops` list."""
    import re

    node: Any = ops
    for key, index in re.findall(r"(\w+)?\[(\d+)\]", path.split("sample", 1)[1]):
        if key and isinstance(node, Mapping):          # 'ops' inside a one_of/some_of/sequential item
            inner = next(iter(node.values()), None)
            node = inner.get(key) if isinstance(inner, Mapping) else inner
        if not isinstance(node, list) or int(index) >= len(node):
            return None
        node = node[int(index)]
    return node.key_pos.get(name) if isinstance(node, LocatedDict) else None


__all__ = ["TASKS", "DENSE_TASKS", "PRESETS", "TTAConfig", "TTAItem", "RandomOps", "Variant", "load_tta", "build_tta"]
