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
from augflow.params_codec import from_jsonable
from augflow.sample import Provenance, ProvenanceEntry, Sample, resolve_field_specs
from augflow.steps import OpStep, Step, iter_ops, run_steps

# Kinds that views carry separately; other fields (label, ids) stay at the top level.
_VIEW_KINDS = ("image", "mask", "masks", "bboxes", "keypoints", "embedding", "text", "volume", "mask3d")
_IMAGE_DTYPES = (np.uint8, np.uint16, np.float32)


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
    def from_yaml(cls, path: str | Path, *, seed: int | None = None) -> "Pipeline":
        """Load and validate a pipeline file; errors name file, line, column, op and parameter."""
        data = load_yaml_file(path)
        pipe = cls(build_spec(data, str(path)), source=str(path))
        if seed is not None:
            pipe.seed = int(seed)
        return pipe

    @classmethod
    def from_yaml_text(cls, text: str, filename: str = "<string>") -> "Pipeline":
        return cls(build_spec(load_yaml_text(text, filename), filename), source=filename)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], filename: str = "<dict>") -> "Pipeline":
        return cls(build_spec(dict(data), filename), source=filename)

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
                 epoch: int | None = None, offline: bool = False) -> Sample:
        """Augment one sample. Give `seed`, or `index` (and `epoch`), for reproducible outputs.

        `offline=True` (what `augflow materialize` uses) then runs the `offline:` section on the
        result, on each view when there are views, drawing from the same generator after every
        sample-stage draw: the sample-stage output is the one a training loader gets (which never
        runs `offline:`), and the offline ops are recorded in provenance, so `replay` redoes both.
        """
        key, seed_info = self.seed_for(sample, seed, index, epoch)
        base, squeezed = self.prepare(sample)
        base.seed = seed_info
        rng_scope = seeding.call_rng(*key) if isinstance(key, tuple) else seeding.fixed_rng(seeding.generator(key))
        with rng_scope as rng:
            base = self.run_shared(base, rng)
            base = self.run_negatives(base, rng)
            return self.run_views(base, rng, squeezed, offline=offline)

    # ---- the stages of a call, in order (the compiler runs them too) -------------------------
    def run_shared(self, sample: Sample, rng: np.random.Generator) -> Sample:
        """The `sample:` ops before any view split."""
        return run_steps(self._shared_steps(), sample, rng)

    def run_negatives(self, sample: Sample, rng: np.random.Generator) -> Sample:
        """The `negatives:` section: after the shared ops, before views."""
        return run_steps(self.spec.negatives, sample, rng) if self.spec.negatives else sample

    def run_views(self, base: Sample, rng: np.random.Generator, squeezed: set[str] = frozenset(),
                  offline: bool = False) -> Sample:
        """Each view's ops on its own copy of `base`, then (`offline=True`) the `offline:` section,
        then the views assembled into one output; without views, just the offline section."""
        offline_steps = self.spec.offline if offline else []
        views = self.view_steps()
        if not views:
            return _restore_gray(run_steps(offline_steps, base, rng), squeezed)
        outs = {}
        for vname, steps in views.items():
            start = Sample(base, base.specs, Provenance(), base.seed)
            outs[vname] = run_steps(steps, start, rng, view=vname)
        for vname in outs:   # after every view's sample ops: those draws stay the loader's
            outs[vname] = run_steps(offline_steps, outs[vname], rng, view=vname)
        return _assemble_views(base, outs, squeezed)

    def replay(self, sample: Mapping[str, Any], provenance: Provenance | Iterable | str) -> Sample:
        """Re-apply recorded ops and parameters to the original sample: bit-identical output."""
        if isinstance(provenance, str) or (isinstance(provenance, list) and provenance
                                           and isinstance(provenance[0], dict)):
            provenance = Provenance.from_json(provenance)
        base, squeezed = self.prepare(sample)
        entries = list(provenance)
        for entry in entries:
            if entry.view is None:
                base = self._apply_entry(entry, base)
        views = self.view_steps()
        if not views:
            return _restore_gray(base, squeezed)
        outs = {}
        for vname in views:
            vs = Sample(base, base.specs, Provenance(), base.seed)
            for entry in entries:
                if entry.view == vname:
                    vs = self._apply_entry(entry, vs)
            outs[vname] = vs
        return _assemble_views(base, outs, squeezed)

    def _apply_entry(self, entry: ProvenanceEntry, sample: Sample) -> Sample:
        step = self._ops_by_path.get(entry.path)
        if step is None or step.name != entry.op:
            raise ValueError(f"provenance entry {entry.op!r} at {entry.path!r} does not match this pipeline "
                             f"(found {step.name if step else 'nothing'!r} there); replay with the pipeline "
                             "that produced it")
        params = entry.params if step.op.json_params else from_jsonable(entry.params)
        out = step.op.apply(sample, **params)
        out.provenance.append(entry)
        return out

    # ---- samples ------------------------------------------------------------------------
    def prepare(self, sample: Mapping[str, Any]) -> tuple[Sample, set[str]]:
        """Check a sample and bring it to the layout ops expect; returns it and the 2-D images."""
        if not isinstance(sample, Mapping):
            raise SampleError(f"a sample must be a mapping of field names to values (e.g. {{'image': array}}), "
                              f"got {type(sample).__name__}")
        specs = resolve_field_specs(sample.keys(), self.spec.fields)
        out = Sample(sample, specs)
        squeezed: set[str] = set()
        for name, fspec in specs.items():
            if fspec.kind == "image":
                out[name] = _check_image(name, out[name])
                if out[name].ndim == 2:
                    out[name] = out[name][:, :, None]
                    squeezed.add(name)
            elif fspec.kind in ("mask",):
                if not isinstance(out[name], np.ndarray):
                    raise SampleError(f"field {name!r} (mask) must be a numpy array, got {type(out[name]).__name__}")
            elif fspec.kind in ("bboxes", "keypoints"):
                out[name] = _check_points(name, fspec, out[name])
        _check_sizes(out)
        return out, squeezed

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

    def __repr__(self) -> str:
        ops = ", ".join(s.name for s in self.op_steps())
        return f"Pipeline({self.spec.name!r}, seed={self.seed}, ops=[{ops}])"


def _check_image(name: str, value: Any) -> np.ndarray:
    if hasattr(value, "mode") and hasattr(value, "size") and not isinstance(value, np.ndarray):  # PIL image
        from augflow.io.decode import from_pil   # EXIF orientation and odd modes, as when decoding a file
        value = from_pil(value)
    if not isinstance(value, np.ndarray):
        raise SampleError(f"field {name!r} (image) must be a numpy array HxW or HxWxC (or a PIL image), "
                          f"got {type(value).__name__}; decode paths with augflow.io.load_image")
    if value.ndim == 4:
        raise SampleError(f"field {name!r} (image) has shape {value.shape}, a batch; a pipeline call takes one "
                          "sample (HxW or HxWxC) — batch ops go in the 'batch:' stage")
    if value.ndim not in (2, 3) or (value.ndim == 3 and value.shape[2] not in (1, 2, 3, 4) and value.shape[0] in (1, 3, 4)):
        raise SampleError(f"field {name!r} (image) must be HxW or HxWxC (channels last), got shape {value.shape}; "
                          "for a CHW array use array.transpose(1, 2, 0)")
    if value.size == 0:
        raise SampleError(f"field {name!r} (image) is empty (shape {value.shape})")
    if value.dtype == np.float64:
        value = value.astype(np.float32)
    if value.dtype.type not in _IMAGE_DTYPES:
        raise SampleError(f"field {name!r} (image) has dtype {value.dtype}; allowed: uint8, uint16, float32 in [0, 1]")
    return value


def _check_points(name: str, spec, value: Any) -> np.ndarray:
    kind = spec.kind
    try:
        arr = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError):
        raise SampleError(f"field {name!r} ({kind}) must be a list of numeric rows, got {value!r}") from None
    if arr.size == 0:
        return arr.reshape(0, 4 if kind == "bboxes" else 2)
    if arr.ndim != 2 or (kind == "bboxes" and arr.shape[1] < 4) or (kind == "keypoints" and arr.shape[1] < 2):
        need = (f"N x 4 in the {spec.format} format ({_BOX_LAYOUT.get(spec.format, '')})" if kind == "bboxes"
                else f"N x {len(spec.format or 'xy')} ({spec.format or 'xy'})")
        raise SampleError(f"field {name!r} ({kind}) must be {need}, got shape {arr.shape}")
    return arr


_BOX_LAYOUT = {"pascal_voc": "x_min, y_min, x_max, y_max in pixels", "coco": "x_min, y_min, width, height in pixels",
               "yolo": "x_center, y_center, width, height in [0, 1]", "albumentations": "x_min, y_min, x_max, y_max in [0, 1]"}


def _check_sizes(sample: Sample) -> None:
    """Masks must cover the image pixel for pixel; a mismatch is a data bug best caught here."""
    images = sample.fields_of_kind("image")
    if not images:
        return
    hw = sample[images[0]].shape[:2]
    for name in sample.fields_of_kind("mask"):
        if sample[name].shape[:2] != hw:
            raise SampleError(f"field {name!r} (mask) is {sample[name].shape[0]}x{sample[name].shape[1]} but image "
                              f"{images[0]!r} is {hw[0]}x{hw[1]}; a mask must have the image's height and width")


def _restore_gray(sample: Sample, squeezed: set[str]) -> Sample:
    for name in squeezed:
        img = sample.get(name)
        if isinstance(img, np.ndarray) and img.ndim == 3 and img.shape[2] == 1:
            sample[name] = img[:, :, 0]
    return sample


def _assemble_views(base: Sample, views: dict[str, Sample], squeezed: set[str]) -> Sample:
    out = Sample({k: v for k, v in base.items() if base.specs.get(k) is None or base.specs[k].kind not in _VIEW_KINDS},
                 base.specs, Provenance(base.provenance), base.seed)
    for vname, vs in views.items():
        vs = _restore_gray(vs, squeezed)
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
