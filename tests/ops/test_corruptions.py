"""medmnist_c: MedMNIST-C's per-modality corruption sets and severity tables, checked against the reference.

The reference is the `medmnistc` package (0.1.0). Its own requirements pin scikit-image 0.23.2,
medmnist 3.0.1, torchvision and Wand, which clash with ours, so it is installed without them
(`pip install --no-deps medmnistc`); the modules it imports but the compared corruptions never call
(torchvision, Wand) are stubbed while it is imported. Without it those tests skip.
"""

import contextlib
import functools
import importlib
import random
import sys
import types
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage
from skimage import data

import augflow
from augflow.ops import corruptions as C
from augflow.ops import medmnistc_kernels as K
from augflow.ops.corruptions import MedMNISTC
from augflow.sample import Sample

PY_RANDOM = {"stain_deposit", "bubble", "characters"}      # the reference draws these with `random`
RANDOM = PY_RANDOM | {"gaussian_noise", "speckle_noise", "impulse_noise", "shot_noise", "motion_blur"}


@functools.lru_cache(maxsize=None)
def _image_for(dataset: str) -> np.ndarray:
    """A 128x128 crop of a skimage photograph close to the modality (RGB or grey as the dataset is)."""
    crops = {"pathmnist": lambda: data.immunohistochemistry()[100:228, 150:278],
             "bloodmnist": lambda: data.immunohistochemistry()[300:428, 300:428],
             "dermamnist": lambda: data.chelsea()[60:188, 150:278],
             "retinamnist": lambda: data.retina()[::8, ::8][20:148, 20:148],
             "tissuemnist": lambda: data.cell()[200:328, 200:328]}
    img = np.ascontiguousarray(crops.get(dataset, lambda: data.camera()[100:228, 180:308])())
    img.flags.writeable = False        # shared between tests: an op that wrote into its input would fail here
    return img


class _PyRandom:
    """`random.Random` behind the numpy-style `integers(lo, hi)` our kernels call: randint's draws."""

    def __init__(self, seed: int):
        self._r = random.Random(seed)

    def integers(self, lo: int, hi: int) -> int:
        return self._r.randrange(int(lo), int(hi))


def _matching_rng(corruption: str, seed: int):
    """A generator that makes our kernel draw what the reference draws after seeding with `seed`."""
    if corruption in PY_RANDOM:
        return _PyRandom(seed)
    if corruption == "impulse_noise":
        return np.random.default_rng(seed)        # the reference hands skimage its own default_rng
    return np.random.RandomState(seed)            # the reference's global np.random after np.random.seed


def _importable(name: str) -> bool:
    try:
        __import__(name)
        return True
    except Exception:        # Wand raises ImportError when ImageMagick's library is missing
        return False


@contextlib.contextmanager
def _stubbed(*names: str):
    """Empty stand-ins for modules that are not importable here, removed again afterwards."""
    added = {}
    # Decided before any stand-in exists: once `wand` is stubbed, `import wand` would succeed and
    # `wand.api` would be left out ("'wand' is not a package" on every machine without Wand).
    missing = [name for name in names if not _importable(name.split(".")[0])]
    for name in missing:
        for i in range(1, name.count(".") + 2):
            part = ".".join(name.split(".")[:i])
            if part not in sys.modules:
                added[part] = sys.modules[part] = types.ModuleType(part)
                added[part].__path__ = []     # a package, so `import wand.api` looks for its children
    if "wand.image" in added:
        added["wand.image"].Image = object
    if "wand.api" in added:
        added["wand.api"].library = None
    for name, mod in added.items():       # let `import a.b` find b on a
        parent, _, child = name.rpartition(".")
        if parent in added:
            setattr(added[parent], child, mod)
    try:
        yield set(added)
    finally:
        for name in added:
            sys.modules.pop(name, None)


def test_stand_ins_import_as_packages():
    # Two children of one absent package: the second must be stubbed too, and `import a.b` must work
    # (a fresh machine without Wand errored here: "'wand' is not a package").
    with _stubbed("augflow_absent_pkg.image", "augflow_absent_pkg.api") as added:
        assert added == {"augflow_absent_pkg", "augflow_absent_pkg.image", "augflow_absent_pkg.api"}
        importlib.import_module("augflow_absent_pkg.api")
    assert "augflow_absent_pkg" not in sys.modules


@pytest.fixture(scope="module")
def reference():
    pytest.importorskip("medmnistc", reason="reference oracle: pip install --no-deps medmnistc")
    with _stubbed("torchvision.transforms.functional", "wand.image", "wand.api") as stubs:
        try:
            registry = importlib.import_module("medmnistc.corruptions.registry")
        except ImportError as exc:   # a dependency the stand-ins do not cover: skip, never error
            pytest.skip(f"reference medmnistc cannot be imported here ({exc}); it needs modules the README "
                        "install does not provide")
    # Without real torchvision the reference's gaussian_blur and gamma correction cannot run.
    unavailable = {"gaussian_blur", "gamma_corr_up", "gamma_corr_down"} if "torchvision" in stubs else set()
    return registry, unavailable


@pytest.fixture
def global_rng_restored():
    np_state, py_state = np.random.get_state(), random.getstate()
    yield
    np.random.set_state(np_state)
    random.setstate(py_state)


# ---- the tables -----------------------------------------------------------------------------------
def test_tables_equal_the_reference(reference):
    registry, _ = reference
    assert list(registry.CORRUPTIONS_DS) == list(C.TABLES)
    for dataset, table in registry.CORRUPTIONS_DS.items():
        assert list(table) == list(C.TABLES[dataset]), dataset
        for name, corruption in table.items():
            ours, theirs = C.TABLES[dataset][name], corruption.severity_params
            assert len(ours) == len(theirs), (dataset, name)
            for a, b in zip(ours, theirs):
                assert np.array_equal(np.asarray(a), np.asarray(b)), (dataset, name, a, b)
    assert {d for d, rgb in registry.DATASET_RGB.items() if rgb} == C.RGB_DATASETS
    folds = {k.replace("-", "_"): tuple(v) for k, v in registry.CORRUPTIONS_DS_FOLDS.items()}
    assert folds == C.GROUPS


def test_inks_equal_the_reference_asset(reference):
    registry, _ = reference
    ref = registry.CORRUPTIONS_DS["pathmnist"]["stain_deposit"].inks
    for size in range(1, 6):
        assert np.array_equal(np.stack(K.inks(size)), ref[str(size)].astype(np.uint8)), size


# ---- the corruptions equal the reference's output ---------------------------------------------------
@pytest.mark.parametrize("dataset", list(C.TABLES))
def test_corruptions_equal_the_reference(dataset, reference, global_rng_restored):
    registry, unavailable = reference
    img = _image_for(dataset)
    rgb = img if img.ndim == 3 else np.repeat(img[:, :, None], 3, axis=2)   # the reference's .convert("RGB")
    compared = 0
    for name, corruption in registry.CORRUPTIONS_DS[dataset].items():
        if name in unavailable or name == "motion_blur":   # motion blur: see test_motion_blur_equals_imagemagick
            continue
        for level in range(5):
            seed = 100 * level + 7
            np.random.seed(seed)
            random.seed(seed)
            corruption.rng = np.random.default_rng(seed)
            expected = np.asarray(corruption.apply(Image.fromarray(rgb), level))
            ours = C.corrupt(rgb, dataset, name, level + 1, _matching_rng(name, seed))
            assert np.array_equal(ours, expected), (dataset, name, level + 1)
            compared += 1
    assert compared >= 5


@pytest.mark.parametrize("radius_sigma", [(3, 3), (10, 5), (15, 12), (20, 15)])
def test_motion_blur_equals_imagemagick(radius_sigma):
    # The reference's own MotionBlur reads Wand's PNG with np.fromstring, which numpy 2 removed;
    # this makes the same Wand call and reads the PNG back the way it meant to.
    if not _importable("wand.image"):
        pytest.skip("needs Wand and ImageMagick's MagickWand library (pip install Wand; apt libmagickwand-6.q16-6)")
    import cv2
    from wand.api import library
    from wand.image import Image as WandImage

    img = _image_for("pathmnist")
    for seed in range(2):
        angle = np.random.RandomState(seed).uniform(-45, 45)
        buf = BytesIO()
        Image.fromarray(img).save(buf, format="PNG")
        with WandImage(blob=buf.getvalue()) as wimg:
            library.MagickMotionBlurImage(wimg.wand, float(radius_sigma[0]), float(radius_sigma[1]), angle)
            expected = cv2.imdecode(np.frombuffer(wimg.make_blob(), np.uint8), cv2.IMREAD_UNCHANGED)[..., ::-1]
        ours = K.motion_blur(img, radius_sigma, np.random.RandomState(seed), 0)
        assert np.array_equal(ours, expected), (radius_sigma, angle)


@pytest.mark.parametrize("ksize", [3, 11, 25])
def test_gaussian_blur_is_torchvisions_kernel(ksize):
    # torchvision: sigma = 0.3 ((k - 1) / 2 - 1) + 0.8, kernel exp(-x^2 / 2 sigma^2) on linspace, reflect
    # padding, float32, rounded; rebuilt here with scipy instead of OpenCV.
    img = _image_for("pathmnist")
    sigma = 0.3 * ((ksize - 1) * 0.5 - 1) + 0.8
    x = np.linspace(-(ksize - 1) / 2, (ksize - 1) / 2, ksize, dtype=np.float32)
    k = np.exp(-0.5 * (x / np.float32(sigma)) ** 2)
    k /= k.sum()
    expected = img.astype(np.float32)
    for axis in (0, 1):
        expected = ndimage.correlate1d(expected, k, axis=axis, mode="mirror")
    expected = np.clip(np.rint(expected), 0, 255)
    diff = np.abs(K.gaussian_blur(img, ksize, None, 0).astype(np.float32) - expected)
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3     # float32 sums in another order: ties may round apart


# ---- behaviour --------------------------------------------------------------------------------------
@pytest.mark.parametrize("dataset", list(C.TABLES))
def test_every_corruption_runs_and_severity_increases_the_deviation(dataset):
    img = _image_for(dataset)
    for name, params in C.TABLES[dataset].items():
        seeds = range(3) if name in RANDOM else range(1)
        deviation = []
        for severity in range(1, 6):
            outs = [C.corrupt_any(img, dataset, name, severity, np.random.Generator(np.random.Philox(s)))
                    for s in seeds]     # the same seeds at every severity: paired comparisons
            assert all(o.shape == img.shape and o.dtype == np.uint8 for o in outs), (name, severity)
            deviation.append(np.mean([np.abs(o.astype(float) - img).mean() for o in outs]))
        assert deviation[0] > 0, name
        steps = np.diff(deviation)
        if dataset == "dermamnist" and name == "black_corner":
            # the reference's table goes back from 0.90 to 0.95 of the radius at level 5
            assert params[3:] == [0.90, 0.95] and steps[3] < 0 and (steps[:3] > 0).all()
            continue
        assert (steps >= -0.02 * np.array(deviation[:-1])).all(), (name, np.round(deviation, 2))
        assert deviation[-1] > deviation[0], (name, np.round(deviation, 2))


def _pipe(**params) -> augflow.Pipeline:
    return augflow.Pipeline.from_dict({"augflow": 1, "name": "t", "sample": [{"medmnist_c": params}]})


def test_replay_through_pipeline_is_bit_identical():
    pipe = _pipe(modality="dermatoscopy")
    sample = {"image": _image_for("dermamnist"), "label": 2}
    seen = set()
    for index in range(12):
        out = pipe(sample, index=index)
        seen.add(out.provenance[0].params["corruption"])
        assert np.array_equal(out["image"], pipe(sample, index=index)["image"])
        assert np.array_equal(out["image"], pipe.replay(sample, out.provenance.to_json())["image"])
    assert len(seen) >= 5


def test_sampled_params_are_corruption_severity_and_seed():
    op = MedMNISTC(modality="chest_xray", corruptions=["noise", "pixelate"], severity=(2, 3))
    rng = np.random.default_rng(0)
    drawn = [op.sample_params(rng, Sample({"image": _image_for("chestmnist")})) for _ in range(60)]
    assert all(set(d) == {"corruption", "severity", "seed"} for d in drawn)
    assert {d["corruption"] for d in drawn} == {"pixelate", "gaussian_noise", "speckle_noise", "impulse_noise",
                                                "shot_noise"}
    assert {d["severity"] for d in drawn} == {2, 3}


def test_modality_name_and_dataset_name_are_the_same_op():
    sample = Sample({"image": _image_for("octmnist")})
    params = {"corruption": "speckle_noise", "severity": 4, "seed": 123}
    a = MedMNISTC(modality="oct").apply(sample, **params)["image"]
    b = MedMNISTC(modality="octmnist").apply(sample, **params)["image"]
    assert np.array_equal(a, b)


def test_grey_modality_keeps_a_2d_image_2d():
    img = _image_for("chestmnist")
    out = _pipe(modality="chest_xray", corruptions=["gaussian_noise"], severity=5)({"image": img}, seed=0)["image"]
    assert out.shape == img.shape and out.dtype == np.uint8
    assert np.abs(out.astype(float) - img).mean() > 5


def test_grey_modality_turns_rgb_input_grey_as_the_benchmark_does():
    rgb = _image_for("pathmnist")
    out = MedMNISTC(modality="chest_xray").apply(Sample({"image": rgb}), "gaussian_noise", 3, 5)["image"]
    assert out.shape == rgb.shape
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 0], out[..., 2])


@pytest.mark.parametrize("layout", ["rgba", "uint16", "float32"])
def test_other_layouts_keep_shape_and_dtype(layout):
    rgb = _image_for("pathmnist")
    img = {"rgba": np.dstack([rgb, np.full(rgb.shape[:2], 77, np.uint8)]),
           "uint16": rgb.astype(np.uint16) * 257, "float32": rgb.astype(np.float32) / 255}[layout]
    out = MedMNISTC(modality="pathology").apply(Sample({"image": img}), "bubble", 5, 1)["image"]
    eight_bit = MedMNISTC(modality="pathology").apply(Sample({"image": rgb}), "bubble", 5, 1)["image"]
    assert out.shape == img.shape and out.dtype == img.dtype
    scale = {"rgba": 1, "uint16": 257, "float32": 1 / 255}[layout]
    np.testing.assert_allclose(out[..., :3].astype(np.float64), eight_bit.astype(np.float64) * scale, rtol=1e-6)
    if layout == "rgba":
        assert (out[..., 3] == 77).all()


def test_small_images_do_not_fail():
    tiny = _image_for("dermamnist")[:28, :28]     # MedMNIST's 28 px; the reference assumes 224
    for name in ("characters", "black_corner", "zoom_blur", "pixelate"):
        out = C.corrupt_any(tiny, "dermamnist", name, 5, np.random.default_rng(0))
        assert out.shape == tiny.shape
    out = C.corrupt_any(tiny, "pathmnist", "stain_deposit", 5, np.random.default_rng(0))
    assert out.shape == tiny.shape


def test_unknown_corruption_is_named_with_a_suggestion(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("augflow: 1\nname: bad\nsample:\n"
                    "  - medmnist_c: {modality: chest_xray, corruptions: [gausian_noise]}\n")
    with pytest.raises(augflow.PipelineConfigError) as err:
        augflow.Pipeline.from_yaml(path)
    message = str(err.value)
    assert "bad.yaml:4" in message and "'corruptions'" in message and "did you mean 'gaussian_noise'" in message


def test_medical_pipeline_file_loads_and_runs():
    pipe = augflow.Pipeline.from_yaml(Path(__file__).parents[2] / "pipelines" / "medical_corruptions.yaml")
    assert [s.name for s in pipe.op_steps()][:2] == ["medmnist_c", "random_field"]
    out = pipe({"image": _image_for("chestmnist")}, index=0)
    assert tuple(out["image"].shape) == (1, 128, 128)
