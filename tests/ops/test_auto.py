"""RandAugment, TrivialAugmentWide and AugMix (augflow/ops/auto.py, augflow/ops/kernels_pil.py).

The oracle is torchvision 0.29.1 (v2 transforms on PIL images), recorded by
tests/data/make_torchvision_refs.py into tests/data/torchvision_auto_refs.npz because torchvision
does not import beside augflow's pinned torch. Kernels are compared exactly: they make the same
Pillow calls with the same float arguments, so there is no tolerance.
"""

from __future__ import annotations

import collections
import json
from pathlib import Path

import numpy as np
import pytest
from skimage import data

import augflow
from augflow import registry
from augflow.config.errors import SampleError
from augflow.ops import auto, kernels_pil
from augflow.sample import Sample

ROOT = Path(__file__).resolve().parents[2]
REFS = ROOT / "tests" / "data" / "torchvision_auto_refs.npz"
RAND_AUGMENT_OPS = ["Identity", "ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Brightness", "Color",
                    "Contrast", "Sharpness", "Posterize", "Solarize", "AutoContrast", "Equalize"]


@pytest.fixture(scope="module")
def refs():
    z = np.load(REFS)
    meta = json.loads(str(z["meta"]))
    inputs = [z[f"input_{i}"] for i in range(len(meta["images"]))]
    return meta, inputs, z["outputs"]


def _cases(meta, policy, op):
    return [c for c in meta["cases"] if c["policy"] == policy and c["op"] == op]


@pytest.fixture(scope="module")
def photo():
    return np.ascontiguousarray(data.chelsea()[40:136, 100:228])    # 96x128 RGB


def _op(name, **params):
    return registry.get(name).build(params)


def _params(op, img, seed):
    return op.sample_params(np.random.default_rng(seed), Sample({"image": img}))


# ---- equality with torchvision -----------------------------------------------------------------------
@pytest.mark.parametrize("policy", ["rand_augment", "trivial_augment_wide"])
@pytest.mark.parametrize("op", RAND_AUGMENT_OPS)
def test_kernel_equals_torchvision_for_every_recorded_magnitude(refs, policy, op):
    meta, inputs, outputs = refs
    cases = _cases(meta, policy, op)
    assert cases, f"no reference cases for {policy}/{op}"
    for c in cases:
        img = inputs[c["image"]]
        expected = outputs[c["offset"]:c["offset"] + img.size].reshape(img.shape)
        ours = kernels_pil.apply_chain(img, [(op, c["magnitude"])], c["interpolation"], c["fill"])
        assert ours.dtype == np.uint8 and ours.shape == img.shape
        assert np.array_equal(ours, expected), f"differs from torchvision for {c} (refs made with {meta['versions']})"


def test_reference_cases_cover_grayscale_fills_and_resamplings(refs):
    meta, inputs, _ = refs
    assert any(inputs[c["image"]].ndim == 2 for c in meta["cases"])
    assert {c["interpolation"] for c in meta["cases"]} == {"nearest", "bilinear", "bicubic"}
    assert {json.dumps(c["fill"]) for c in meta["cases"]} >= {"null", "128", "[20, 200, 90]", "[77]"}
    assert {c["sign"] for c in meta["cases"]} == {1, -1}


@pytest.mark.parametrize("space", ["rand_augment", "trivial_augment_wide", "aug_mix", "aug_mix_partial"])
def test_op_lists_and_magnitude_tables_equal_torchvision(refs, space):
    meta, _, _ = refs
    keys = [k for k in meta["tables"] if k.startswith(space + "/") and not k.endswith("/signed")]
    assert keys
    tv_ops = list(dict.fromkeys(k.split("/")[1] for k in keys))
    assert list(auto.SPACES[space]) == tv_ops              # same ops, same order
    for key in keys:
        _, op, num_bins, hw = key.split("/")
        height, width = map(int, hw.split("x"))
        expected = meta["tables"][key]
        ours = auto.magnitudes(space, op, int(num_bins), height, width)
        assert ours == (None if expected is None else tuple(expected)), key
        assert auto.SPACES[space][op][1] == meta["tables"][key + "/signed"], key


# ---- sampling ------------------------------------------------------------------------------------------
def test_rand_augment_draws_ops_uniformly_from_its_14(photo):
    params = _params(_op("rand_augment", num_ops=14000), photo, seed=1)
    counts = collections.Counter(o["op"] for o in params["ops"])
    assert set(counts) == set(RAND_AUGMENT_OPS)
    chi2 = sum((n - 1000) ** 2 / 1000 for n in counts.values())
    assert chi2 < 40, counts          # 13 degrees of freedom: p(chi2 > 40) < 1e-4 when uniform


def test_rand_augment_uses_the_configured_bin_and_both_signs(photo):
    params = _params(_op("rand_augment", num_ops=3000, magnitude=17), photo, seed=2)
    height, width = photo.shape[:2]
    signs = collections.defaultdict(collections.Counter)
    for o in params["ops"]:
        table = auto.magnitudes("rand_augment", o["op"], 31, height, width)
        if table is None:
            assert (o["bin"], o["magnitude"], o["sign"]) == (None, 0.0, 1)
            continue
        assert o["bin"] == 17 and o["magnitude"] == table[17]
        signs[auto.RAND_AUGMENT_SPACE[o["op"]][1]][o["sign"]] += 1
    assert set(signs[False]) == {1}
    assert 0.45 < signs[True][-1] / sum(signs[True].values()) < 0.55


def test_rand_augment_translate_scales_with_image_size():
    wide = np.zeros((40, 331, 3), np.uint8)
    assert auto.magnitudes("rand_augment", "TranslateX", 31, 40, 331)[30] == pytest.approx(150.0, abs=1e-4)
    assert auto.magnitudes("rand_augment", "TranslateY", 31, 40, 331)[30] == pytest.approx(150.0 / 331 * 40, abs=1e-4)
    params = _params(_op("rand_augment", num_ops=400, magnitude=30), wide, seed=3)
    shifts = {o["magnitude"] for o in params["ops"] if o["op"] == "TranslateX"}
    assert len(shifts) == 1 and shifts.pop() == pytest.approx(150.0, abs=1e-4)


def test_trivial_augment_draws_one_op_with_a_uniform_bin(photo):
    op = _op("trivial_augment_wide")
    rng = np.random.default_rng(4)
    bins = collections.Counter()
    for _ in range(3100):
        (o,) = op.sample_params(rng, Sample({"image": photo}))["ops"]
        if o["bin"] is not None:
            bins[o["bin"]] += 1
            assert o["magnitude"] == auto.magnitudes("trivial_augment_wide", o["op"], 31, *photo.shape[:2])[o["bin"]]
    assert set(bins) == set(range(31))
    expected = sum(bins.values()) / 31
    assert sum((n - expected) ** 2 / expected for n in bins.values()) < 70   # 30 dof: p < 1e-4


def test_sampling_depends_only_on_the_rng(photo):
    op = _op("aug_mix")
    assert _params(op, photo, seed=5) == _params(op, photo, seed=5)
    assert _params(op, photo, seed=5) != _params(op, photo, seed=6)


# ---- applying ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["rand_augment", "trivial_augment_wide", "aug_mix"])
def test_apply_is_deterministic_and_leaves_the_input_alone(photo, name):
    op = _op(name, **({"num_ops": 4} if name == "rand_augment" else {}))
    sample = Sample({"image": photo.copy(), "label": 2})
    params = json.loads(json.dumps(_params(op, photo, seed=7)))
    first = op.apply(sample, **params)
    second = op.apply(sample, **params)
    assert np.array_equal(first["image"], second["image"])
    assert np.array_equal(sample["image"], photo) and first["label"] == 2


def test_rand_augment_applies_the_recorded_ops_in_order(photo):
    op = _op("rand_augment", num_ops=3, magnitude=20)
    params = _params(op, photo, seed=8)
    chain = [(o["op"], o["sign"] * o["magnitude"]) for o in params["ops"]]
    assert np.array_equal(op.apply(Sample({"image": photo}), **params)["image"], kernels_pil.apply_chain(photo, chain))


def test_augmix_output_is_the_beta_dirichlet_mix_of_its_chains(photo):
    op = _op("aug_mix", mixture_width=4, severity=5)
    params = _params(op, photo, seed=9)
    out = op.apply(Sample({"image": photo}), **params)["image"]
    beta, dirichlet, chains = params["beta"], params["dirichlet"], params["chains"]
    assert len(chains) == 4 and all(1 <= len(c) <= 3 for c in chains)
    assert all(o["bin"] is None or o["bin"] < 5 for c in chains for o in c)
    assert sum(beta) == pytest.approx(1, abs=1e-6) and sum(dirichlet) == pytest.approx(1, abs=1e-6)
    augmented = [kernels_pil.apply_chain(photo, [(o["op"], o["sign"] * o["magnitude"]) for o in c], "bilinear")
                 for c in chains]
    exact = beta[0] * photo.astype(np.float64) + sum(d * beta[1] * a for d, a in zip(dirichlet, augmented))
    # torchvision mixes in float32 and truncates (`.to(uint8)`): within one level of the exact mix, never above it by 1
    diff = exact - out
    assert diff.min() > -1e-3 and diff.max() < 1 + 1e-3
    assert not np.array_equal(out, photo)


def test_augmix_fixed_depth_and_partial_op_list(photo):
    params = _params(_op("aug_mix", chain_depth=2, all_ops=False, mixture_width=50), photo, seed=10)
    names = {o["op"] for c in params["chains"] for o in c}
    assert all(len(c) == 2 for c in params["chains"])
    assert names <= set(auto.AUGMIX_PARTIAL_SPACE) and not names & {"Brightness", "Color", "Contrast", "Sharpness"}


def test_augmix_severity_10_posterizes_to_zero_bits_as_torchvision_tensors_do(photo):
    assert auto.magnitudes("aug_mix", "Posterize", 10, *photo.shape[:2])[9] == 0.0
    black = kernels_pil.apply_chain(photo, [("Posterize", 0.0)])
    assert black.shape == photo.shape and not black.any()


# ---- pipelines -----------------------------------------------------------------------------------------
def test_replay_through_a_pipeline_is_bit_identical(photo):
    pipe = augflow.Pipeline.from_dict({"augflow": 1, "sample": [
        {"rand_augment": {"num_ops": 3, "magnitude": 15, "fill": [10, 20, 30]}},
        {"trivial_augment_wide": {"interpolation": "bilinear"}},
        {"aug_mix": {"severity": 4}},
    ]})
    for seed in range(6):
        out = pipe({"image": photo}, seed=seed)
        assert [e.op for e in out.provenance] == ["rand_augment", "trivial_augment_wide", "aug_mix"]
        again = pipe.replay({"image": photo}, out.provenance.to_json())
        assert np.array_equal(again["image"], out["image"])
        assert np.array_equal(pipe({"image": photo}, seed=seed)["image"], out["image"])


def test_grayscale_images_keep_their_layout():
    gray = np.ascontiguousarray(data.camera()[100:164, 200:264])
    pipe = augflow.Pipeline.from_dict({"augflow": 1, "sample": [{"rand_augment": {"num_ops": 4, "magnitude": 25}}]})
    out = pipe({"image": gray}, seed=11)
    assert out["image"].shape == gray.shape and out["image"].dtype == np.uint8
    op = _op("trivial_augment_wide")
    hw1 = gray[:, :, None]
    out = op.apply(Sample({"image": hw1}), **_params(op, hw1, seed=12))["image"]
    assert out.shape == hw1.shape and out.flags.writeable


@pytest.mark.parametrize("img, dtype_hint", [
    (np.zeros((32, 32, 3), np.uint16), "uint16"),   # float32 in [0, 1] is taken (tests/ops/test_float_images.py)
    (np.zeros((32, 32, 4), np.uint8), "RGBA"),
])
def test_other_images_get_an_error_that_says_how_to_convert(img, dtype_hint):
    with pytest.raises(SampleError, match=f"rand_augment.*uint8.*{dtype_hint}"):
        _params(_op("rand_augment"), img, seed=0)


def test_samples_with_masks_are_refused(photo):
    op = _op("rand_augment")
    with pytest.raises(SampleError, match="'mask'.*misaligned"):
        op.sample_params(np.random.default_rng(0), Sample({"image": photo, "mask": photo[..., 0]}))


def test_fill_must_match_the_channels():
    gray = np.zeros((16, 16), np.uint8)
    with pytest.raises(ValueError, match="fill has 3 values but the image has 1 channel"):
        kernels_pil.apply_chain(gray, [("Rotate", 10.0)], fill=[1, 2, 3])


@pytest.mark.parametrize("op, params, message", [
    ("rand_augment", {"magnitude": 31}, "'magnitude'.*0..30"),
    ("rand_augment", {"num_magnitude_bins": 11, "magnitude": 11}, "'magnitude'.*0..10"),
    ("rand_augment", {"fill": [1, 2, 300]}, "'fill'.*0..255"),
    ("trivial_augment_wide", {"interpolation": "lanczos"}, "'interpolation'.*'bicubic'"),
    ("aug_mix", {"severity": 11}, "'severity'.*less than or equal to 10"),
    ("aug_mix", {"alpha": 0}, "'alpha'.*greater than 0"),
])
def test_bad_parameters_are_reported_at_load_time(op, params, message):
    with pytest.raises(augflow.PipelineConfigError, match=message):
        augflow.Pipeline.from_dict({"augflow": 1, "sample": [{op: params}]})


def test_randaugment_yaml_loads_and_runs(photo):
    pipe = augflow.Pipeline.from_yaml(ROOT / "pipelines" / "randaugment.yaml")
    (step,) = [s for s in pipe.op_steps() if s.name == "rand_augment"]
    assert (step.op.params.num_ops, step.op.params.magnitude, step.op.params.interpolation) == (2, 9, "bilinear")
    out = pipe({"image": photo, "label": 0}, seed=13)
    assert tuple(out["image"].shape) == (3, 224, 224)
    assert "rand_augment" in out.provenance.ops()
    assert np.array_equal(pipe.replay({"image": photo, "label": 0}, out.provenance)["image"], out["image"])
