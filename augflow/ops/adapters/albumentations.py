"""Every albumentations transform, reachable by name through one adapter.

`albumentations.RandomResizedCrop` and its snake_case alias `random_resized_crop` both name
`A.RandomResizedCrop`. Its pydantic `InitSchema` is the op's parameter schema, so validation,
listings and the JSON Schema come from albumentations' own definitions.

albumentations 2.0.8 is the last MIT-licensed release; every call into it lives in this module so
that it can be replaced without touching the rest of augflow.
"""

from __future__ import annotations

import functools
import inspect
import os
import random
import re
import threading
from typing import Any, ClassVar

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import albumentations as A  # noqa: E402
import numpy as np  # noqa: E402
from albumentations.core.bbox_utils import BboxParams, BboxProcessor  # noqa: E402
from albumentations.core.keypoints_utils import KeypointParams, KeypointsProcessor  # noqa: E402
from albumentations.core.transforms_interface import (  # noqa: E402
    BasicTransform, DualTransform, ImageOnlyTransform, Transform3D)
from pydantic import BaseModel, Field, create_model, model_validator  # noqa: E402

from augflow import registry  # noqa: E402
from augflow.seeding import draw_seed  # noqa: E402
from augflow.config.errors import SampleError  # noqa: E402
from augflow.ops.base import Op  # noqa: E402
from augflow.params_codec import from_jsonable, to_jsonable  # noqa: E402
from augflow.sample import KINDS, FieldSpec, Sample, kinds_where  # noqa: E402

_ABSTRACT = {"BasicTransform", "DualTransform", "ImageOnlyTransform", "Transform3D"}
_BULKY_ELEMENTS = 4096  # sampled arrays larger than this are recorded as a seed, not values
_UINT16_MAX = 65535.0
_DENSE_KINDS = kinds_where(dense=True)     # declared to a transform as extra targets when repeated


class NumpyBackedRandom(random.Random):
    """A `random.Random` whose draws come from a numpy Generator.

    albumentations draws from both a numpy Generator and a `random.Random`; backing the latter by
    the former makes re-seeding one Philox key change (~3 us) instead of two seedings (~11 us),
    which matters at one re-seed per op per sample. `uniform`, `randint`, `choice`, `shuffle`,
    `gauss`... all derive from `random()` and `getrandbits()`.
    """

    def __init__(self, generator: np.random.Generator):
        self._generator = generator
        super().__init__(0)

    def seed(self, *args: Any, **kwargs: Any) -> None:   # the numpy generator carries the state
        self.gauss_next = None

    def random(self) -> float:
        return self._generator.random()

    def getrandbits(self, k: int) -> int:
        if k <= 0:
            return 0
        value = int.from_bytes(self._generator.bytes((k + 7) // 8), "little")
        return value >> ((-k) % 8)

    def getstate(self):
        return self._generator.bit_generator.state, self.gauss_next

    def setstate(self, state) -> None:
        self._generator.bit_generator.state, self.gauss_next = state

    def __reduce__(self):   # picklable for spawn/forkserver DataLoader workers
        return (_restore_numpy_backed_random, (self._generator, self.gauss_next))


def _restore_numpy_backed_random(generator: np.random.Generator, gauss_next: float | None) -> NumpyBackedRandom:
    out = NumpyBackedRandom(generator)
    out.gauss_next = gauss_next
    return out


def seeded_random_state(seed: int) -> tuple[np.random.Generator, random.Random]:
    """The (numpy, python) random state an albumentations transform draws from for `seed`.

    This is the adapter's one definition of how a recorded seed becomes albumentations' random
    state; reference tests build albumentations' own transforms with it.
    """
    np_gen = np.random.Generator(np.random.Philox(0))
    py_random = NumpyBackedRandom(np_gen)
    reseed(np_gen, py_random, seed)
    return np_gen, py_random


_KEY_TAG = 0x9E3779B97F4A7C15
_ZERO4 = np.zeros(4, np.uint64)


def reseed(np_gen: np.random.Generator, py_random: random.Random, seed: int) -> None:
    """Put both generators in the state for `seed` (setting Philox's key is 4x cheaper than a new one)."""
    np_gen.bit_generator.state = {
        "bit_generator": "Philox",
        "state": {"counter": _ZERO4, "key": np.array([seed, _KEY_TAG], np.uint64)},
        "buffer": _ZERO4, "buffer_pos": 4, "has_uint32": 0, "uinteger": 0,
    }
    py_random.seed(seed)


def snake_case(name: str) -> str:
    """`RandomResizedCrop` -> `random_resized_crop`, `CLAHE` -> `clahe`, `ISONoise` -> `iso_noise`,
    `AtLeastOneBBoxRandomCrop` -> `at_least_one_bbox_random_crop`, `CenterCrop3D` -> `center_crop_3d`."""
    s = name.replace("BBox", "Bbox")
    s = re.sub(r"(\d)D(?=[A-Z]|$)", r"_\1d", s)
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", s)
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s)
    return s.lower()


def _old_snake_case(name: str) -> str:
    """The aliases of augflow 0.1 (`at_least_one_b_box_random_crop`, `center_crop3_d`): still accepted."""
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s).lower()


class _Processors:
    """albumentations' box/keypoint converters for one sample's field layout.

    Built per call, never cached: their LabelManager remembers the label type of the first sample
    it sees, so a shared one would make a sample's output depend on what a worker saw before
    (and would be shared across threads). Building both costs a few microseconds.
    """

    def __init__(self, bbox: FieldSpec | None, kp: FieldSpec | None):
        self.by_key: dict[str, Any] = {}
        if bbox is not None:
            self.by_key["bboxes"] = BboxProcessor(BboxParams(format=bbox.format or "pascal_voc",
                                                             label_fields=list(bbox.label_fields) or None,
                                                             clip=bbox.clip))
        if kp is not None:
            self.by_key["keypoints"] = KeypointsProcessor(KeypointParams(
                format=kp.format or "xy", label_fields=list(kp.label_fields) or None, remove_invisible=True))

    @classmethod
    def for_sample(cls, sample: Sample) -> "_Processors | None":
        bbox_names = sample.fields_of_kind("bboxes")
        kp_names = sample.fields_of_kind("keypoints")
        if not bbox_names and not kp_names:
            return None
        return cls(sample.specs[bbox_names[0]] if bbox_names else None,
                   sample.specs[kp_names[0]] if kp_names else None)


def _to_albu(sample: Sample) -> tuple[dict[str, Any], dict[str, str], _Processors | None]:
    """The albumentations data dict for a sample, and the albumentations-key -> field-name map."""
    data: dict[str, Any] = {}
    names: dict[str, str] = {}
    bbox = kp = None
    for name, spec in sample.specs.items():
        if name not in sample:
            continue
        kind = spec.kind
        target = KINDS[kind].albumentations if kind in KINDS else None
        if target is None:
            continue
        key = target if target not in data else name   # a second image/mask goes under its own name
        data[key] = sample[name]
        names[key] = name
        if kind in ("bboxes", "keypoints"):
            if kind == "bboxes" and bbox is None:
                bbox = spec
            elif kind == "keypoints" and kp is None:
                kp = spec
            for lf in spec.label_fields:
                if lf in sample:
                    data[lf] = sample[lf]
                    names[lf] = lf
    # the first boxes/keypoints field in spec order, as `_Processors.for_sample` picks them
    procs = _Processors(bbox, kp) if bbox is not None or kp is not None else None
    if procs is not None:
        for key, proc in procs.by_key.items():
            try:
                proc.preprocess(data)
            except ValueError as exc:   # albumentations' check of box/keypoint coordinates
                name = names.get(key, key)
                fmt = sample.specs[name].format if name in sample.specs else "?"
                hint = ""
                if key == "bboxes":
                    hint = (f"; for boxes a little outside the image (e.g. COCO's off-by-one) declare "
                            f"fields: {{{name}: {{kind: bboxes, format: {fmt}, clip: true}}}} to clip them to it")
                raise SampleError(f"field {name!r} ({key} in the {fmt} format): {exc} "
                                  f"(albumentations shows coordinates normalized to [0, 1]){hint}") from None
    return data, names, procs


def _from_albu(sample: Sample, data: dict[str, Any], names: dict[str, str], procs: _Processors | None) -> Sample:
    if procs is not None:
        from albumentations.core.utils import get_shape
        shape = get_shape(data)
        for proc in procs.by_key.values():
            for key in proc.data_fields:
                if key in data:
                    data[key] = proc.filter(data[key], shape)
            proc.postprocess(data)
    out = sample.copy()
    labels = {lf for spec in sample.specs.values() for lf in spec.label_fields}
    for key, name in names.items():
        out[name] = _like_labels(sample[name], data[key]) if name in labels else data[key]
    return out


def _like_labels(before: Any, after: Any) -> Any:
    """Labels in their own type: albumentations hands a list of ints back as floats ([7] -> [7.0])."""
    if isinstance(before, list) and isinstance(after, list) and before \
            and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in before):
        return [int(v) for v in after]
    return after


class _ThreadState:
    """One thread's transform and random state: both change on every call (random state,
    processors, extra targets), so threads sharing a pipeline must not share them."""

    def __init__(self, transform: BasicTransform):
        self.transform = transform
        self.np_random, self.py_random = seeded_random_state(0)
        self.extra_keys: set[str] = set()
        # What `sample_params` prepared, reused by the `apply` that follows on the same sample.
        self.prepared_for: Sample | None = None
        self.prepared: tuple | None = None


class AlbumentationsOp(Op):
    """An albumentations transform run through augflow's sampling/apply split."""

    transform_cls: ClassVar[type[BasicTransform]]
    json_params: ClassVar[bool] = True
    lazy_params: ClassVar[bool] = True

    def __init__(self, params: BaseModel | None = None, **kwargs: Any):
        self._config = dict(kwargs)
        config = coerce_named_constants(kwargs)
        prob = config.pop("p", None)
        self._p = float(prob) if prob is not None else _default_p(self.transform_cls)
        self._albu_config = config
        self.transform = self.transform_cls(**config, p=1.0)   # validates the parameters now
        self._local = threading.local()
        self._local.state = _ThreadState(self.transform)
        self.params = None

    def __getstate__(self) -> dict[str, Any]:   # pickled to loader workers without thread state
        state = dict(self.__dict__)
        del state["_local"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._local = threading.local()
        self._local.state = _ThreadState(self.transform)

    @property
    def p(self) -> float:
        return self._p

    def config(self) -> dict[str, Any]:
        return dict(self._config)

    def _state(self) -> _ThreadState:
        state = getattr(self._local, "state", None)
        if state is None:   # first call from another thread: its own transform
            state = self._local.state = _ThreadState(self.transform_cls(**self._albu_config, p=1.0))
        return state

    def _draw(self, state: _ThreadState, seed: int, data: dict[str, Any]) -> dict[str, Any]:
        t = state.transform
        reseed(state.np_random, state.py_random, seed)
        t.set_random_state(state.np_random, state.py_random)
        params = t.get_params()
        params = t.update_transform_params(params=params, data=data)
        params.update(t.get_params_dependent_on_data(params=params, data=data))
        return params

    def _prepare(self, state: _ThreadState, sample: Sample):
        """albumentations' view of the sample, set up as a Compose would set up this transform."""
        t = state.transform
        data, names, procs = _to_albu(sample)
        if "image" not in data and "volume" not in data:
            wanted = "volume" if isinstance(t, Transform3D) else "image"
            raise SampleError(f"op {self.name!r} needs an {wanted} field, and the sample has none "
                              f"(fields present: {sorted(sample)}); name it {wanted!r} or declare its kind: "
                              f"fields: {{your_name: {wanted}}}")
        for key in t.targets_as_params:   # inputs read by name (cropping_bbox, *_metadata)
            if key not in data and key in sample:
                data[key] = sample[key]
        _register_extra_targets(state, sample, names)
        # Box/keypoint-aware transforms (dropouts, Mosaic) consult the processors, as in a Compose.
        t.set_processors(procs.by_key if procs is not None else {})
        restore = _adapt_image(t, data, "image")
        _set_fill_scale(t, data.get("image"))
        return data, names, procs, restore

    def draw(self, rng: np.random.Generator, sample: Sample) -> "_Drawn":
        seed = draw_seed(rng)
        state = self._state()
        prepared = self._prepare(state, sample)
        return _Drawn(seed, self._draw(state, seed, prepared[0]), prepared, sample)

    def encode_drawn(self, drawn: "_Drawn") -> dict[str, Any]:
        encoded = _encode_exact(drawn.values)
        return {"seed": drawn.seed} if encoded is None else encoded

    def apply_drawn(self, sample: Sample, drawn: "_Drawn") -> Sample:
        """albumentations' own params, as a Compose applies them (no JSON round trip; the JSON
        form gives the same output, tests/ops/test_albumentations_adapter.py)."""
        state = self._state()
        if drawn.prepared is not None and drawn.prepared_for is sample:
            data, names, procs, restore = drawn.prepared
        else:
            data, names, procs, restore = self._prepare(state, sample)
        drawn.prepared = drawn.prepared_for = None    # provenance keeps only the params
        return self._run(state, drawn.values, data, names, procs, restore, sample)

    def sample_params(self, rng: np.random.Generator, sample: Sample) -> dict[str, Any]:
        drawn = self.draw(rng, sample)
        state = self._state()
        state.prepared_for, state.prepared = sample, drawn.prepared
        return self.encode_drawn(drawn)

    def apply(self, sample: Sample, **params: Any) -> Sample:
        state = self._state()
        if state.prepared_for is sample:
            data, names, procs, restore = state.prepared
        else:
            data, names, procs, restore = self._prepare(state, sample)
        state.prepared_for = state.prepared = None
        if params.keys() == {"seed"}:
            values = self._draw(state, params["seed"], data)
        else:
            values = _decode_as_tuples(params)
        return self._run(state, values, data, names, procs, restore, sample)

    def _run(self, state: _ThreadState, values: dict[str, Any], data, names, procs, restore, sample: Sample) -> Sample:
        result = state.transform.apply_with_params(values, **data)
        if restore is not None:
            result["image"] = restore(result["image"])
        return _from_albu(sample, result, names, procs)


class _Drawn:
    """An albumentations transform's drawn params, the seed that drew them, and the prepared data."""

    __slots__ = ("seed", "values", "prepared", "prepared_for")

    def __init__(self, seed: int, values: dict[str, Any], prepared: tuple, prepared_for: Sample):
        self.seed, self.values, self.prepared, self.prepared_for = seed, values, prepared, prepared_for

    def __reduce__(self):   # what crosses a process boundary: the seed and the values, no pixels
        return (_Drawn, (self.seed, self.values, None, None))


def _register_extra_targets(state: _ThreadState, sample: Sample, names: dict[str, str]) -> None:
    """Second images/masks (e.g. `image2`) are declared to the transform as albumentations expects."""
    wanted = {}
    for key, name in names.items():
        if key in state.transform.available_keys or key in state.extra_keys:
            continue
        spec = sample.specs.get(name)
        if spec is not None and spec.kind in _DENSE_KINDS:
            wanted[key] = spec.kind
    if wanted:
        state.transform.add_targets(wanted)
        state.extra_keys.update(wanted)


def _decode_as_tuples(value: Any) -> Any:
    """JSON params back to albumentations' form in one walk: tagged arrays become arrays, and lists
    become tuples (albumentations tests `isinstance(shape, tuple)` and never needs a list)."""
    kind = type(value)
    if kind is list:
        return tuple(_decode_as_tuples(v) for v in value)
    if kind is dict:
        if "__ndarray__" in value or "__ndarray_b64__" in value or "__float__" in value:
            return from_jsonable(value)
        return {k: _decode_as_tuples(v) for k, v in value.items()}
    return value


@functools.lru_cache(maxsize=None)
def _default_p(cls: type[BasicTransform]) -> float:
    """albumentations' own default probability for a transform (kept, so YAML means the same)."""
    param = inspect.signature(cls.__init__).parameters.get("p")
    return float(param.default) if param is not None and param.default is not inspect.Parameter.empty else 1.0


class _NotExact(Exception):
    pass


_SCALARS = (bool, int, float, str, type(None))


def _encode_exact(params: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON form of sampled params, or None when it would not give them back exactly.

    Big arrays (Mosaic cells, noise maps), objects (TextImage's font) and dicts keyed by tuples are
    recorded as the seed that draws them instead: replay redraws the same values from the same data.
    One walk does the check and the conversion (this runs once per op per sample).
    """
    budget = [_BULKY_ELEMENTS]

    def walk(value: Any) -> Any:
        kind = type(value)
        if kind in _SCALARS:
            return value if kind is not float or value == value else {"__float__": "nan"}
        if kind is dict:
            if not all(type(k) is str for k in value):
                raise _NotExact
            return {k: walk(v) for k, v in value.items()}
        if kind is list or kind is tuple:
            return [walk(v) for v in value]
        if isinstance(value, np.ndarray):
            budget[0] -= value.size
            if budget[0] < 0:
                raise _NotExact
            return to_jsonable(value)
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, _SCALARS):   # subclasses (enums of int/str)
            return to_jsonable(value)
        raise _NotExact

    try:
        return walk(params)
    except _NotExact:
        return None


# Transforms whose result is not an image in the input's range: 16-bit input is not converted back
# after them. None: the image enters as it is; "max_pixel_value": it enters on the scale of that
# parameter (Normalize divides by it, whatever the dtype).
_UINT16_ENTRY_SCALE = {"Normalize": "max_pixel_value", "ToFloat": None, "ToTensorV2": None}


def _adapt_image(transform: BasicTransform, data: dict[str, Any], key: str):
    """Odd images, on purpose: 16-bit goes through float32 in [0, 1]; RGBA keeps its alpha under
    colour ops (which are defined on RGB). Returns a function that restores the original layout."""
    img = data.get(key)
    if img is None:
        return None
    steps = []
    name = type(transform).__name__
    if img.dtype == np.uint16:
        if name not in _UINT16_ENTRY_SCALE:
            data[key] = img = img.astype(np.float32) / _UINT16_MAX
            steps.append(lambda x: np.clip(np.rint(x * _UINT16_MAX), 0, _UINT16_MAX).astype(np.uint16))
        elif _UINT16_ENTRY_SCALE[name] is not None:
            top = _max_pixel_value(transform)
            if top is not None:
                data[key] = img = img.astype(np.float32) * np.float32(top / _UINT16_MAX)
    elif img.dtype.kind == "f" and _UINT16_ENTRY_SCALE.get(name) == "max_pixel_value":
        # Float images are in [0, 1] (augflow.sample): Normalize's `max_pixel_value` (255 by
        # default) would divide them again, so they enter on its scale, as uint8 does.
        top = _max_pixel_value(transform)
        if top is not None and top != 1.0:
            data[key] = img = img * np.float32(top)
    if isinstance(transform, ImageOnlyTransform) and img.ndim == 3 and img.shape[2] == 4:
        alpha = img[..., 3:]
        data[key] = np.ascontiguousarray(img[..., :3])
        steps.insert(0, lambda x: np.concatenate([x if x.ndim == 3 else x[..., None], _alpha_as(alpha, x)], axis=2))
    if not steps:
        return None

    def restore(x: np.ndarray) -> np.ndarray:
        for step in steps:
            x = step(x)
        return x

    return restore


def _set_fill_scale(transform: BasicTransform, img: np.ndarray | None) -> None:
    """A numeric `fill` is on the 8-bit scale (0..255) whatever the image's dtype, as it is for the
    auto ops: a pipeline file does not know the dtype it will meet. A float image (float input, or
    16-bit on its way through float) gets it divided by 255, so `fill: 114` is the same grey."""
    if img is None or not hasattr(transform, "fill"):
        return
    if not hasattr(transform, "_augflow_fill"):   # the validated value, kept once per transform
        transform._augflow_fill = transform.fill
    fill = transform._augflow_fill
    numeric = isinstance(fill, (int, float)) and not isinstance(fill, bool)
    numbers = isinstance(fill, (list, tuple)) and all(isinstance(v, (int, float)) for v in fill)
    if not (numeric or numbers):   # "random", "inpaint_telea"...: the transform decides
        return
    if img.dtype.kind == "f":
        transform.fill = fill / 255.0 if numeric else type(fill)(v / 255.0 for v in fill)
    else:
        transform.fill = fill


def _max_pixel_value(transform: BasicTransform) -> float | None:
    """Normalize's divisor (None when its normalization does not use one)."""
    if getattr(transform, "normalization", "standard") != "standard":
        return None
    top = getattr(transform, "max_pixel_value", None)
    return None if top is None else float(top)


def _alpha_as(alpha: np.ndarray, image: np.ndarray) -> np.ndarray:
    """The alpha channel in the dtype and value range of the transformed image (ToFloat, FromFloat
    and Normalize change them: alpha then becomes [0, 1] or 0..255 too)."""
    if alpha.dtype == image.dtype:
        return alpha
    unit = alpha.astype(np.float32) / (np.iinfo(alpha.dtype).max if alpha.dtype.kind in "ui" else 1.0)
    if image.dtype.kind in "ui":
        return np.rint(unit * np.iinfo(image.dtype).max).astype(image.dtype)
    return unit.astype(image.dtype)


_NAMED_CONSTANTS = {
    "border_mode": {"constant": 0, "replicate": 1, "reflect": 2, "wrap": 3, "reflect_101": 4},
    "interpolation": {"nearest": 0, "linear": 1, "cubic": 2, "area": 3, "lanczos": 4},
    "mask_interpolation": {"nearest": 0, "linear": 1, "cubic": 2, "area": 3, "lanczos": 4},
}


def coerce_named_constants(params: dict[str, Any]) -> dict[str, Any]:
    """Let YAML say `border_mode: reflect` instead of OpenCV's integer constants."""
    out = dict(params)
    for key, table in _NAMED_CONSTANTS.items():
        value = out.get(key)
        if isinstance(value, str) and value.lower() in table:
            out[key] = table[value.lower()]
    return out


def _coerce_before_validation(model: type[BaseModel], data: Any) -> Any:
    return coerce_named_constants(data) if isinstance(data, dict) else data


def params_schema(cls: type[BasicTransform]) -> type[BaseModel]:
    """albumentations' InitSchema with the defaults of the transform's __init__ filled in.

    albumentations keeps defaults in the signature, not the schema; filling them gives a schema
    that lists defaults and validates a partial YAML mapping.
    """
    sig = inspect.signature(cls.__init__)
    base = cls.InitSchema
    fields: dict[str, Any] = {}
    for pname, f in base.model_fields.items():
        if pname == "strict":
            fields[pname] = (f.annotation, False)
        elif pname in sig.parameters and sig.parameters[pname].default is not inspect.Parameter.empty:
            fields[pname] = (f.annotation, Field(sig.parameters[pname].default, description=f.description))
    named = model_validator(mode="before")(classmethod(_coerce_before_validation))
    model = create_model(f"{cls.__name__}Params", __base__=base, __validators__={"named_constants": named},
                         **fields)
    model.model_config["extra"] = "forbid"
    model.model_rebuild(force=True)
    return model


def transform_classes() -> dict[str, type[BasicTransform]]:
    """Every concrete albumentations transform class, by class name."""
    out = {}
    for name, obj in vars(A).items():
        if inspect.isclass(obj) and issubclass(obj, BasicTransform) and name not in _ABSTRACT \
                and not inspect.isabstract(obj):
            out[name] = obj
    return out


def _targets_of(cls: type[BasicTransform]) -> frozenset[str]:
    if issubclass(cls, Transform3D):
        return frozenset({"volume", "mask3d", "keypoints"})
    if issubclass(cls, ImageOnlyTransform):
        return frozenset({"image"})
    if issubclass(cls, DualTransform):
        return frozenset({"image", "mask", "masks", "bboxes", "keypoints"})
    return frozenset({"image"})


def _family_of(cls: type[BasicTransform]) -> str:
    module = cls.__module__.split(".")
    return "albumentations." + (module[2] if len(module) > 2 else module[-1])


def register_all() -> None:
    """Register every albumentations transform under `albumentations.X` and a snake_case alias."""
    for cls_name, cls in transform_classes().items():
        op_cls = type(f"Albumentations{cls_name}", (AlbumentationsOp,), {
            "transform_cls": cls, "__doc__": (cls.__doc__ or "").strip(), "__module__": __name__,
        })
        op_cls.name = f"albumentations.{cls_name}"
        op_cls.targets = _targets_of(cls)
        globals()[op_cls.__name__] = op_cls   # found by name when a pipeline is pickled to workers
        registry.add(registry.OpSpec(
            name=op_cls.name, factory=op_cls, schema_source=functools.partial(params_schema, cls), targets=op_cls.targets,
            family=_family_of(cls), doc=op_cls.__doc__,
            aliases=tuple(dict.fromkeys((snake_case(cls_name), _old_snake_case(cls_name)))), hidden_params=("strict",),
            extra={"cls": op_cls, "named_constants": _NAMED_CONSTANTS},
        ))


register_all()
