"""Pipeline: a validated description of augmentation steps that is also the per-sample callable.

`Pipeline.from_yaml(path)` gives a callable for `Dataset.__getitem__`; every call derives its
random generator from (pipeline seed, epoch, sample index) — or from an explicit seed, or from the
sample's content when neither is given — so outputs do not depend on workers or threads. The
output carries its provenance; `replay(sample, provenance)` rebuilds it bit-identically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import yaml

from augflow import seeding
from augflow.config.build import PipelineSpec, build_spec
from augflow.config.errors import SampleError
from augflow.config.loader import load_yaml_file, load_yaml_text
from augflow.decision import POLICY_OP, POLICY_PATH
from augflow.params_codec import from_jsonable
from augflow.sample import (FLOAT_IMAGE_RANGE, KINDS, FieldSpec, Provenance, ProvenanceEntry, Sample, kinds_where,
                            resolve_field_specs)
from augflow.steps import OpStep, Step, iter_ops, run_steps

# Kinds that views carry separately; other fields (label, ids) stay at the top level.
_VIEW_KINDS = kinds_where(per_view=True)
_IMAGE_DTYPES = (np.uint8, np.uint16, np.float32)


class _Layout:
    """How input images arrived, so the output gives them back the same way: 2-D images that
    were given a channel axis, and torch tensors (`"chw"` or `"hwc"`) that were read as arrays."""

    __slots__ = ("gray", "tensors")

    def __init__(self):
        self.gray: set[str] = set()
        self.tensors: dict[str, str] = {}


class Pipeline:
    """A per-sample augmentation pipeline built from YAML (or a dict)."""

    def __init__(self, spec: PipelineSpec, source: str | None = None):
        self.spec = spec
        self.source = source
        self.seed = spec.seed
        self.epoch = 0
        self._ops_by_path: dict[str, OpStep] = {}
        for steps in self._all_step_lists():
            for step in iter_ops(steps):
                self._ops_by_path[step.path] = step

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def from_yaml(cls, path: str | Path, *, seed: int | None = None, allow_imports: bool = True) -> "Pipeline":
        """Load and validate a pipeline file; errors name file, line, column, op and parameter.

        A file with `imports:` runs Python code; `allow_imports=False` refuses it (files from others).
        """
        data = load_yaml_file(path)
        pipe = cls(build_spec(data, str(path), allow_imports=allow_imports), source=str(path))
        if seed is not None:
            pipe.seed = int(seed)
        return pipe

    @classmethod
    def from_yaml_text(cls, text: str, filename: str = "<string>") -> "Pipeline":
        return cls(build_spec(load_yaml_text(text, filename), filename), source=filename)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], filename: str = "<dict>") -> "Pipeline":
        return cls(build_spec(dict(data), filename), source=filename)

    @classmethod
    def build(cls, sample: Iterable[Any] = (), batch: Any = None, **options: Any) -> "Pipeline":
        """A pipeline written in Python, mirroring the YAML: `sample=[augflow.op.horizontal_flip(p=0.5)]`,
        `batch=[...]` (or `{"device": ..., "ops": [...]}`), `views`, `offline`, `negatives`, `fields`,
        `name`, `description`, `seed`, `imports`, `decode`; see `augflow.builder`."""
        from augflow.builder import pipeline_data
        return cls.from_dict(pipeline_data(sample, batch, **options), filename="<Pipeline.build>")

    @classmethod
    def from_albumentations(cls, compose: Any, *, name: str = "from_albumentations",
                            seed: int | None = None) -> "Pipeline":
        """The pipeline of an albumentations `A.Compose` (or `A.to_dict`'s dict, or an `A.save` file):
        the same transforms and probabilities, plus replay, worker-independent seeding and `compile`.
        `seed`: the pipeline seed (default: the Compose's `seed`, else 0)."""
        from augflow.ops.adapters.albumentations_compose import compose_to_data
        return cls.from_dict(compose_to_data(compose, name, seed), filename="<from_albumentations>")

    def to_albumentations(self):
        """An `A.Compose` doing what the `sample:` stage does (every op must be an albumentations op)."""
        from augflow.ops.adapters.albumentations_compose import pipeline_to_compose
        return pipeline_to_compose(self)

    def to_dict(self) -> dict[str, Any]:
        data = _plain(self.spec.raw)
        data["seed"] = self.seed
        return data

    def to_yaml(self, path: str | Path | None = None) -> str:
        """The pipeline as YAML text (written to `path` when given); `from_yaml` reads it back."""
        text = yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    # ---- running ------------------------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """Select the epoch: the same index gets a different augmentation in each epoch."""
        self.epoch = int(epoch)

    def seed_for(self, sample: Mapping[str, Any] | None = None, seed: int | None = None, index: int | None = None,
                 epoch: int | None = None) -> tuple[Any, dict[str, int]]:
        """The generator key of one call and its JSON description (recorded as `out.seed`): for an
        index or a content key, `(seed, epoch, index, stream)` of the counter-based `seeding.call_rng`
        (the per-sample hot path); for an explicit `seed=`, its SeedSequence (one-off calls: the
        outputs of `pipe(x, seed=s)` stay what they were before the counter-based generator)."""
        epoch = self.epoch if epoch is None else int(epoch)
        if seed is not None:
            return seeding.explicit_seed(seed), {"seed": int(seed)}
        if index is not None:
            return (self.seed, epoch, int(index), seeding.SAMPLE_STREAM), {"pipeline_seed": self.seed, "epoch": epoch,
                                                                            "index": int(index)}
        key = seeding.content_key(sample or {})
        return (self.seed, epoch, key, seeding.SAMPLE_STREAM), {"pipeline_seed": self.seed, "epoch": epoch,
                                                               "content_key": key}

    def __call__(self, sample: Mapping[str, Any], seed: int | None = None, *, index: int | None = None,
                 epoch: int | None = None, offline: bool = False, decision: Mapping[str, Any] | None = None) -> Sample:
        """Augment one sample. Give `seed`, or `index` (and `epoch`), for reproducible outputs.

        `offline=True` (what `augflow materialize` uses) then runs the `offline:` section on the
        result, on each view when there are views, drawing from the same generator after every
        sample-stage draw: the sample-stage output is the one a training loader gets (which never
        runs `offline:`), and the offline ops are recorded in provenance, so `replay` redoes both.

        `decision` (an adaptive policy's `{"ops": {path: level}}`, see `augflow.decision`) says which
        controlled ops of the shared sample steps run and at which magnitude; it is recorded as the
        first provenance entry, so `replay` rebuilds the same weakened ops.
        """
        key, seed_info = self.seed_for(sample, seed, index, epoch)
        base, layout = self.prepare(sample)
        base.seed = seed_info
        choose = None
        if decision is not None:
            from augflow.decision import check_decision, provenance_entry
            decision = check_decision(decision, self.realizer())
            choose = self.realizer().chooser(decision)
            base.provenance.append(provenance_entry(decision))
        rng_scope = seeding.call_rng(*key) if isinstance(key, tuple) else seeding.fixed_rng(seeding.generator(key))
        with rng_scope as rng:
            base = self.run_shared(base, rng, choose)
            base = self.run_negatives(base, rng)
            return self.run_views(base, rng, layout, offline=offline)

    # ---- the stages of a call, in order (the compiler runs them too) -------------------------
    def run_shared(self, sample: Sample, rng: np.random.Generator, choose: Any = None) -> Sample:
        """The `sample:` ops before any view split (`choose`: a policy decision's chooser)."""
        return run_steps(self._shared_steps(), sample, rng, choose=choose)

    def run_negatives(self, sample: Sample, rng: np.random.Generator) -> Sample:
        """The `negatives:` section: after the shared ops, before views."""
        return run_steps(self.spec.negatives, sample, rng) if self.spec.negatives else sample

    def run_views(self, base: Sample, rng: np.random.Generator, layout: "_Layout | set[str]" = frozenset(),
                  offline: bool = False) -> Sample:
        """Each view's ops on its own copy of `base`, then (`offline=True`) the `offline:` section,
        then the views assembled into one output; without views, just the offline section."""
        offline_steps = self.spec.offline if offline else []
        views = self.view_steps()
        if not views:
            return _restore_layout(run_steps(offline_steps, base, rng), layout)
        outs = {}
        for vname, steps in views.items():
            start = Sample(base, base.specs, Provenance(), base.seed)
            outs[vname] = run_steps(steps, start, rng, view=vname)
        for vname in outs:   # after every view's sample ops: those draws stay the loader's
            outs[vname] = run_steps(offline_steps, outs[vname], rng, view=vname)
        return _assemble_views(base, outs, layout)

    def replay(self, sample: Mapping[str, Any], provenance: Provenance | Iterable | str) -> Sample:
        """Re-apply recorded ops and parameters to the original sample: bit-identical output."""
        if isinstance(provenance, str) or (isinstance(provenance, list) and provenance
                                           and isinstance(provenance[0], dict)):
            provenance = Provenance.from_json(provenance)
        base, layout = self.prepare(sample)
        entries = list(provenance)
        decision = None
        for entry in entries:
            if entry.view is None and (entry.op, entry.path) == (POLICY_OP, POLICY_PATH):
                decision = entry.params            # an adaptive policy's decision: ops weakened as recorded
                base.provenance.append(entry)
            elif entry.view is None:
                base = self._apply_entry(entry, base, decision)
        views = self.view_steps()
        if not views:
            return _restore_layout(base, layout)
        outs = {}
        for vname in views:
            vs = Sample(base, base.specs, Provenance(), base.seed)
            for entry in entries:
                if entry.view == vname:
                    vs = self._apply_entry(entry, vs)
            outs[vname] = vs
        return _assemble_views(base, outs, layout)

    def _apply_entry(self, entry: ProvenanceEntry, sample: Sample, decision: Mapping | None = None) -> Sample:
        step = self._ops_by_path.get(entry.path)
        if step is None or step.name != entry.op:
            raise ValueError(f"provenance entry {entry.op!r} at {entry.path!r} does not match this pipeline "
                             f"(found {step.name if step else 'nothing'!r} there); replay with the pipeline "
                             "that produced it")
        op = step.op if decision is None else (self.realizer().op_for(step, decision) or step.op)
        params = entry.params if op.json_params else from_jsonable(entry.params)
        out = op.apply(sample, **params)
        out.provenance.append(entry)
        return out

    # ---- samples ------------------------------------------------------------------------
    def prepare(self, sample: Mapping[str, Any]) -> tuple[Sample, _Layout]:
        """Check a sample and bring it to the layout ops expect (HxWxC numpy images, floats in
        [0, 1]); returns it and how its images arrived, which the output restores."""
        if not isinstance(sample, Mapping):
            raise SampleError(f"a sample must be a mapping of field names to values (e.g. {{'image': array}}), "
                              f"got {type(sample).__name__}")
        specs = resolve_field_specs(sample.keys(), self.spec.fields)
        out = Sample(sample, specs)
        layout = _Layout()
        for name, fspec in specs.items():
            check = KINDS[fspec.kind].check if fspec.kind in KINDS else None
            if check == "image":
                value = out[name]
                if _is_torch_tensor(value):
                    value, layout.tensors[name] = _tensor_to_array(name, value)
                out[name] = _check_image(name, value, fspec)
                if out[name].ndim == 2:
                    out[name] = out[name][:, :, None]
                    layout.gray.add(name)
            elif check == "mask":
                if _is_torch_tensor(out[name]) and out[name].dim() == 2:   # HxW, as torchvision holds masks
                    out[name], layout.tensors[name] = out[name].detach().cpu().numpy(), "hwc"
                if not isinstance(out[name], np.ndarray):
                    raise SampleError(f"field {name!r} (mask) must be a numpy array or an HxW torch tensor, "
                                      f"got {type(out[name]).__name__}")
            elif check == "points":
                out[name] = _check_points(name, fspec, out[name])
                _check_label_fields(name, fspec, out)
        _check_sizes(out)
        return out, layout

    # ---- structure ----------------------------------------------------------------------
    def _shared_steps(self) -> list[Step]:
        split = self.spec.view_split
        return self.spec.sample if split is None else self.spec.sample[:split]

    def view_steps(self) -> dict[str, list[Step]]:
        """Each view's steps by view name (empty without views)."""
        if self.spec.view_split is not None:
            rest = self.spec.sample[self.spec.view_split:]
            return {f"view{i}": rest for i in range(self.spec.view_count)}
        return self.spec.named_views

    _view_steps = view_steps   # the name the compiler used before `view_steps` was public

    def _all_step_lists(self) -> list[list[Step]]:
        return [self.spec.sample, *self.spec.named_views.values(), self.spec.batch_steps, self.spec.offline,
                self.spec.negatives]

    def realizer(self):
        """The ops an adaptive policy's decisions run (`augflow.decision.Realizer`), built once."""
        realizer = self.__dict__.get("_realizer")
        if realizer is None:
            from augflow.decision import Realizer
            realizer = self._realizer = Realizer(self)
        return realizer

    def op_steps(self) -> list[OpStep]:
        """Every op in the pipeline, in file order."""
        return list(self._ops_by_path.values())

    # ---- compiling (augflow/compile) -----------------------------------------------------
    def compile(self, data: Any, **options: Any):
        """A data loader over `data` (dataset, image paths, image folder or CSV/JSONL manifest):
        sample stage in workers, batch stage on `device`; see `augflow.compile.compile_pipeline`."""
        from augflow.compile import compile_pipeline
        return compile_pipeline(self, data, **options)

    def explain(self, data: Any = None, **options: Any) -> str:
        """The compiled plan as text: stages, backend per op, fused groups, and why."""
        from augflow.compile import explain
        return explain(self, data, **options)

    # ---- frameworks (augflow/integrations, imported on use) -------------------------------
    def hf_transform(self, **options: Any):
        """This pipeline as a batched Hugging Face `datasets` transform:
        `ds.with_transform(pipe.hf_transform())`; see `augflow.integrations.hf`."""
        from augflow.integrations.hf import hf_transform
        return hf_transform(self, **options)

    def to_ray_map(self, **options: Any):
        """The callable for `ray.data.Dataset.map_batches(fn, batch_format="numpy")`, seeded by each
        row's index column; see `augflow.integrations.ray.map_batches`."""
        from augflow.integrations.ray import RayBatchMap
        return RayBatchMap(self, **options)

    def __repr__(self) -> str:
        ops = ", ".join(s.name for s in self.op_steps())
        return f"Pipeline({self.spec.name!r}, seed={self.seed}, ops=[{ops}])"


def _is_torch_tensor(value: Any) -> bool:
    """True for a torch tensor, without importing torch for users who never send one."""
    return type(value).__module__.startswith("torch") and hasattr(value, "detach") and hasattr(value, "numpy")


def _tensor_to_array(name: str, tensor: Any) -> tuple[np.ndarray, str]:
    """A torch image tensor as an HxWxC array, and its layout: CHW (torchvision's) or HWC.

    A 3-D tensor is CHW when its first axis has 1-4 entries (channels) and its last does not;
    HxW and HxWxC tensors are read as they are. The output gives the image back as a tensor in
    the same layout (unless an op such as `to_tensor` already made it one).
    """
    tensor = tensor.detach().cpu()
    if str(tensor.dtype) == "torch.bfloat16":   # numpy has no bfloat16
        tensor = tensor.float()
    arr = tensor.numpy()
    if arr.ndim == 3 and arr.shape[0] in (1, 2, 3, 4) and arr.shape[2] not in (1, 2, 3, 4):
        return np.ascontiguousarray(arr.transpose(1, 2, 0)), "chw"
    if arr.ndim == 4:
        raise SampleError(f"field {name!r} (image) is a tensor of shape {tuple(tensor.shape)}, a batch; a pipeline "
                          "call takes one image (CxHxW, HxWxC or HxW) — batch ops go in the 'batch:' stage")
    return arr, "hwc"


def _check_image(name: str, value: Any, spec: FieldSpec | None = None) -> np.ndarray:
    if hasattr(value, "mode") and hasattr(value, "size") and not isinstance(value, np.ndarray):  # PIL image
        from augflow.io.decode import from_pil   # EXIF orientation and odd modes, as when decoding a file
        value = from_pil(value)
    if not isinstance(value, np.ndarray):
        raise SampleError(f"field {name!r} (image) must be a numpy array HxW or HxWxC, a PIL image or a torch "
                          f"tensor (CxHxW or HxWxC), got {type(value).__name__}; decode paths with "
                          "augflow.io.load_image")
    if value.ndim == 4:
        raise SampleError(f"field {name!r} (image) has shape {value.shape}, a batch; a pipeline call takes one "
                          "sample (HxW or HxWxC) — batch ops go in the 'batch:' stage")
    if value.ndim not in (2, 3) or (value.ndim == 3 and value.shape[2] not in (1, 2, 3, 4) and value.shape[0] in (1, 3, 4)):
        raise SampleError(f"field {name!r} (image) must be HxW or HxWxC (channels last), got shape {value.shape}; "
                          "for a CHW array use array.transpose(1, 2, 0)")
    if value.size == 0:
        raise SampleError(f"field {name!r} (image) is empty (shape {value.shape})")
    if value.dtype == np.float64 or value.dtype == np.float16:
        value = value.astype(np.float32)
    if value.dtype.type not in _IMAGE_DTYPES:
        raise SampleError(f"field {name!r} (image) has dtype {value.dtype}; allowed: uint8, uint16, float32 in [0, 1]")
    if value.dtype == np.float32:
        value = _float_in_unit_range(name, value, spec.max_value if spec is not None else None)
    return value


def _float_in_unit_range(name: str, img: np.ndarray, max_value: float | None) -> np.ndarray:
    """The float image contract (augflow.sample): values in [0, 1], or in [0, max_value] when the
    field declares it, then scaled to [0, 1] here so every op sees one range."""
    lo, hi = FLOAT_IMAGE_RANGE
    top = hi if max_value is None else float(max_value)
    vmin, vmax = float(img.min()), float(img.max())
    if not (vmin >= lo and vmax <= top):   # also catches NaN
        if max_value is None:
            raise SampleError(
                f"field {name!r} (image) is float32 with values in [{vmin:g}, {vmax:g}]; float images must be in "
                f"[{lo:g}, {hi:g}]. Divide by the maximum (e.g. image / 255.0), send uint8, or declare the "
                f"maximum in the pipeline: fields: {{{name}: {{kind: image, max_value: 255}}}}")
        raise SampleError(f"field {name!r} (image) is float32 with values in [{vmin:g}, {vmax:g}]; its field "
                          f"declares max_value {top:g}, so values must be in [{lo:g}, {top:g}]")
    if max_value is not None:
        img = img * np.float32(1.0 / top)
    return img


def _check_points(name: str, spec, value: Any) -> np.ndarray:
    kind = spec.kind
    if _is_torch_tensor(value):
        value = value.detach().cpu().numpy()
    try:
        arr = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError):
        raise SampleError(f"field {name!r} ({kind}) must be a list of numeric rows, got {value!r}") from None
    if arr.size == 0:
        return arr.reshape(0, 4 if kind == "bboxes" else len(spec.format or "xy"))
    columns = len(spec.format or "xy")
    if arr.ndim != 2 or (kind == "bboxes" and arr.shape[1] < 4) or (kind == "keypoints" and arr.shape[1] != columns):
        need = (f"N x 4 in the {spec.format} format ({_BOX_LAYOUT.get(spec.format, '')})" if kind == "bboxes"
                else f"N x {columns} ({spec.format or 'xy'}: one column per letter)")
        hint = ""
        if kind == "keypoints" and arr.ndim == 2:
            hint = (f"; declare the format that has {arr.shape[1]} columns "
                    f"(fields: {{{name}: {{kind: keypoints, format: ...}}}}, one of xy, xya, xys, xyas, xysa, xyz) "
                    "or carry other per-point values in a field named in label_fields")
        raise SampleError(f"field {name!r} ({kind}) must be {need}, got shape {arr.shape}{hint}")
    return arr


def _check_label_fields(name: str, spec: FieldSpec, sample: Sample) -> None:
    """Labels declared for boxes/keypoints are present, one per row: they are filtered with them."""
    rows = len(sample[name])
    for lf in spec.label_fields:
        if lf not in sample:
            raise SampleError(f"field {name!r} ({spec.kind}) declares label_fields {list(spec.label_fields)}, but the "
                              f"sample has no {lf!r} (fields present: {sorted(sample)}); add one label per row, "
                              f"or drop {lf!r} from label_fields")
        labels = sample[lf]
        if _is_torch_tensor(labels):
            labels = sample[lf] = labels.detach().cpu().numpy()
        n = len(labels) if hasattr(labels, "__len__") else None
        if n != rows:
            raise SampleError(f"field {lf!r} (labels of {name!r}) has {n if n is not None else 'no'} entries for "
                              f"{rows} {spec.kind} rows; give one label per row")


_BOX_LAYOUT = {"pascal_voc": "x_min, y_min, x_max, y_max in pixels", "coco": "x_min, y_min, width, height in pixels",
               "yolo": "x_center, y_center, width, height in [0, 1]", "albumentations": "x_min, y_min, x_max, y_max in [0, 1]"}


def _check_sizes(sample: Sample) -> None:
    """Masks must cover the image pixel for pixel; a mismatch is a data bug best caught here."""
    images = sample.fields_of_kind("image")
    if not images:
        spatial = sample.fields_of_kind("mask", "masks", "bboxes", "keypoints")
        if spatial and not sample.fields_of_kind("volume"):
            raise SampleError(f"the sample has {', '.join(repr(n) for n in spatial)} but no image field "
                              f"(fields present: {sorted(sample)}); masks, boxes and keypoints move with an image: "
                              "name it 'image' or declare its kind: fields: {your_name: image}")
        return
    hw = sample[images[0]].shape[:2]
    for name in sample.fields_of_kind("mask"):
        if sample[name].shape[:2] != hw:
            raise SampleError(f"field {name!r} (mask) is {sample[name].shape[0]}x{sample[name].shape[1]} but image "
                              f"{images[0]!r} is {hw[0]}x{hw[1]}; a mask must have the image's height and width")


def _restore_layout(sample: Sample, layout: _Layout | set[str]) -> Sample:
    """Images back the way they came: 2-D stays 2-D, torch tensors come back as tensors
    (a plain set names the 2-D images only, as the compiled loader's sample stage passes)."""
    if isinstance(layout, (set, frozenset)):
        gray, layout = layout, _Layout()
        layout.gray = gray
    for name in layout.gray:
        img = sample.get(name)
        if isinstance(img, np.ndarray) and img.ndim == 3 and img.shape[2] == 1:
            sample[name] = img[:, :, 0]
    if layout.tensors:
        import torch
        for name, how in layout.tensors.items():
            img = sample.get(name)
            if isinstance(img, np.ndarray):
                arr = img.transpose(2, 0, 1) if how == "chw" and img.ndim == 3 else img
                sample[name] = torch.from_numpy(np.ascontiguousarray(arr))
    return sample


def _assemble_views(base: Sample, views: dict[str, Sample], layout: _Layout | set[str]) -> Sample:
    out = Sample({k: v for k, v in base.items() if base.specs.get(k) is None or base.specs[k].kind not in _VIEW_KINDS},
                 base.specs, Provenance(base.provenance), base.seed)
    for vname, vs in views.items():
        vs = _restore_layout(vs, layout)
        view_fields = {k: v for k, v in vs.items() if vs.specs.get(k) is not None and vs.specs[k].kind in _VIEW_KINDS}
        for fspec in vs.specs.values():   # box/keypoint labels travel with their boxes
            for lf in fspec.label_fields:
                if lf in vs:
                    view_fields[lf] = vs[lf]
        out[vname] = view_fields
        out.provenance.extend(vs.provenance)
    out.views = {name: vs for name, vs in views.items()}
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
