"""Determinism: the output of sample i in epoch e depends on (pipeline seed, e, i) only, and any
output can be replayed bit-identically from its JSON provenance."""

import json
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

import augflow

TRAIN = {
    "augflow": 1, "seed": 7,
    "sample": [
        {"random_resized_crop": {"size": [64, 64], "scale": [0.3, 1.0]}},
        {"horizontal_flip": {"p": 0.5}},
        {"one_of": {"p": 0.9, "ops": [{"color_jitter": {"brightness": 0.4, "contrast": 0.4, "saturation": 0.4}},
                                      {"to_gray": {"p": 1.0}}, {"gaussian_blur": {"p": 1.0}}]}},
        {"gauss_noise": {"p": 0.5}},
        {"to_tensor": {"dtype": "float32"}},
    ],
}


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.fixture(scope="module")
def photos(astronaut, chelsea, camera):
    return [astronaut, chelsea, np.dstack([camera] * 3), astronaut[::-1].copy()]


class PhotoDataset(Dataset):
    """An ordinary map-style dataset whose __getitem__ calls the pipeline with index=."""

    def __init__(self, pipe, photos, epoch=0):
        self.pipe, self.photos, self.epoch = pipe, photos, epoch

    def __len__(self):
        return 12

    def __getitem__(self, i):
        out = self.pipe({"image": self.photos[i % len(self.photos)], "label": i}, index=i, epoch=self.epoch)
        return out["image"], out["label"]


def _loader_batches(pipe, photos, workers):
    loader = DataLoader(PhotoDataset(pipe, photos), batch_size=4, shuffle=False, num_workers=workers)
    return [(x.clone(), y.clone()) for x, y in loader]


def test_dataloader_with_0_1_2_workers_gives_identical_tensors(photos):
    pipe = augflow.Pipeline.from_dict(TRAIN)
    runs = {w: _loader_batches(pipe, photos, w) for w in (0, 1, 2)}
    assert len(runs[0]) == 3
    for w in (1, 2):
        for (x0, y0), (xw, yw) in zip(runs[0], runs[w]):
            assert torch.equal(x0, xw) and torch.equal(y0, yw), f"{w} workers differ from 0"
    assert not torch.equal(runs[0][0][0][0], runs[0][0][0][1])   # samples are augmented differently


def test_threads_sharing_one_pipeline_give_the_sequential_output(photos):
    from concurrent.futures import ThreadPoolExecutor

    pipe = augflow.Pipeline.from_dict({**TRAIN, "sample": [{"random_resized_crop": {"size": [24, 24]}},
                                                           *TRAIN["sample"][1:]]})
    small = [p[:32, :32].copy() for p in photos]   # small images: more thread switches per op
    call = lambda i: pipe({"image": small[i % len(small)]}, index=i)["image"]   # noqa: E731
    expected = [call(i) for i in range(200)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)   # switch threads as often as possible to expose shared state
    try:
        with ThreadPoolExecutor(8) as pool:
            got = list(pool.map(call, range(200)))
    finally:
        sys.setswitchinterval(interval)
    assert sum(not torch.equal(a, b) for a, b in zip(expected, got)) == 0


def test_pipeline_pickles_to_a_worker_and_gives_the_same_output(photos):
    pipe = augflow.Pipeline.from_dict(TRAIN)
    copy = pickle.loads(pickle.dumps(pipe))   # what a spawn/forkserver DataLoader worker receives
    for i in range(4):
        assert torch.equal(copy({"image": photos[i]}, index=i)["image"], pipe({"image": photos[i]}, index=i)["image"])


def test_replay_from_json_provenance_is_bit_identical(photos):
    pipe = augflow.Pipeline.from_dict({**TRAIN, "sample": TRAIN["sample"][:-1]})   # numpy output
    for i, photo in enumerate(photos):
        sample = {"image": photo, "label": i}
        out = pipe(sample, index=i)
        recorded = json.loads(json.dumps(out.provenance.to_json()))   # a string stored anywhere
        again = pipe.replay(sample, recorded)
        assert again["image"].dtype == out["image"].dtype
        np.testing.assert_array_equal(again["image"], out["image"])
        assert again.provenance.to_json() == out.provenance.to_json()


def test_replay_in_a_fresh_pipeline_object(photos):
    sample = {"image": photos[1]}
    out = augflow.Pipeline.from_dict(TRAIN)(sample, seed=99)
    again = augflow.Pipeline.from_dict(TRAIN).replay(sample, augflow.Provenance.from_json(out.provenance.to_json()))
    assert torch.equal(again["image"], out["image"])


_CHILD = """
import hashlib, json, sys, warnings
warnings.simplefilter("ignore")
import augflow
from skimage import data
spec = json.loads(sys.argv[1])
img = data.chelsea()[60:188, 150:278].copy()
out = augflow.Pipeline.from_dict(spec)({"image": img}, index=3, epoch=2)
print(hashlib.sha256(out["image"].numpy().tobytes()).hexdigest())
"""


def test_same_seed_epoch_index_in_another_process_gives_identical_output(chelsea):
    import hashlib

    mine = augflow.Pipeline.from_dict(TRAIN)({"image": chelsea}, index=3, epoch=2)["image"]
    child = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(TRAIN)], capture_output=True, text=True,
                           check=True, timeout=300)
    assert child.stdout.strip() == hashlib.sha256(mine.numpy().tobytes()).hexdigest()


def test_different_epochs_give_different_augmentations(chelsea):
    pipe = augflow.Pipeline.from_dict(TRAIN)
    outs = [pipe({"image": chelsea}, index=0, epoch=e)["image"] for e in range(3)]
    assert not torch.equal(outs[0], outs[1]) and not torch.equal(outs[1], outs[2])
    pipe.set_epoch(1)
    assert torch.equal(pipe({"image": chelsea}, index=0)["image"], outs[1])


def test_same_index_same_output_and_other_index_differs(chelsea):
    pipe = augflow.Pipeline.from_dict(TRAIN)
    a, b, c = (pipe({"image": chelsea}, index=i)["image"] for i in (4, 4, 5))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_no_seed_no_index_is_still_reproducible_per_content(chelsea, astronaut):
    pipe = augflow.Pipeline.from_dict(TRAIN)
    assert torch.equal(pipe({"image": chelsea})["image"], pipe({"image": chelsea.copy()})["image"])
    assert pipe({"image": chelsea}).seed["content_key"] != pipe({"image": astronaut}).seed["content_key"]


VIEWS = {
    "augflow": 1,
    "sample": [{"horizontal_flip": {"p": 0.5}}, {"views": 2},
               {"random_resized_crop": {"size": [64, 64], "scale": [0.2, 1.0]}},
               {"color_jitter": {"brightness": 0.4, "contrast": 0.4, "saturation": 0.4, "hue": 0.1, "p": 0.8}}],
}
NAMED = {
    "augflow": 1,
    "sample": [{"random_crop": {"height": 96, "width": 96}}],
    "views": {"weak": [{"horizontal_flip": {"p": 0.5}}],
              "strong": [{"random_resized_crop": {"size": [64, 64]}}, {"color_jitter": {"p": 1.0}},
                         {"coarse_dropout": {"p": 1.0}}]},
}


def test_two_views_are_independent_and_replay(astronaut):
    pipe = augflow.Pipeline.from_dict(VIEWS)
    sample = {"image": astronaut, "label": 1}
    out = pipe(sample, index=0)
    assert set(out) == {"view0", "view1", "label"} and out["label"] == 1
    assert out["view0"]["image"].shape == out["view1"]["image"].shape == (64, 64, 3)
    assert not np.array_equal(out["view0"]["image"], out["view1"]["image"])
    crops = [e.params["crop_coords"] for e in out.provenance if e.op == "random_resized_crop"]
    assert len(crops) == 2 and crops[0] != crops[1]
    again = pipe.replay(sample, out.provenance.to_json())
    for v in ("view0", "view1"):
        np.testing.assert_array_equal(again[v]["image"], out[v]["image"])


def test_named_views_get_their_own_ops_and_replay(astronaut):
    pipe = augflow.Pipeline.from_dict(NAMED)
    sample = {"image": astronaut, "label": 2}
    out = pipe(sample, index=3)
    assert out["weak"]["image"].shape == (96, 96, 3) and out["strong"]["image"].shape == (64, 64, 3)
    by_view = {}
    for e in out.provenance:
        by_view.setdefault(e.view, []).append(e.op)
    assert by_view[None] == ["random_crop"]
    assert by_view["strong"] == ["random_resized_crop", "color_jitter", "coarse_dropout"]
    assert set(by_view.get("weak", [])) <= {"horizontal_flip"}
    again = pipe.replay(sample, out.provenance.to_json())
    for v in ("weak", "strong"):
        np.testing.assert_array_equal(again[v]["image"], out[v]["image"])


# ---- control flow: frequencies over many calls with a fixed seed ---------------------------------
N = 600


def _bound(p, n=N):
    """Five standard deviations of a binomial count: a fixed seed, so the test never flakes."""
    return 5 * np.sqrt(n * p * (1 - p))


@pytest.fixture(scope="module")
def tiny(astronaut):
    return astronaut[:16, :16].copy()


def _applied(pipe, tiny, n=N):
    return [pipe({"image": tiny}, index=i).provenance for i in range(n)]


def test_per_op_p_is_the_frequency_of_application(tiny):
    pipe = augflow.Pipeline.from_dict({"augflow": 1, "sample": [{"horizontal_flip": {"p": 0.25}},
                                                                {"vertical_flip": {"p": 0.0}}]})
    runs = _applied(pipe, tiny)
    count = sum(prov.ops() == ["horizontal_flip"] for prov in runs)
    assert abs(count - 0.25 * N) < _bound(0.25)
    assert not any("vertical_flip" in prov.ops() for prov in runs)    # p: 0 never runs


def test_one_of_picks_exactly_one_by_weight(tiny):
    ops = [{"horizontal_flip": {"p": 1.0}}, {"vertical_flip": {"p": 1.0}}, {"transpose": {"p": 1.0}}]
    pipe = augflow.Pipeline.from_dict({"augflow": 1, "sample": [{"one_of": {"ops": ops, "weights": [2, 1, 1]}}]})
    runs = _applied(pipe, tiny)
    assert all(len(prov) == 1 for prov in runs)
    counts = {name: sum(prov.ops() == [name] for prov in runs) for name in ("horizontal_flip", "vertical_flip", "transpose")}
    for name, p in (("horizontal_flip", 0.5), ("vertical_flip", 0.25), ("transpose", 0.25)):
        assert abs(counts[name] - p * N) < _bound(p), counts


def test_one_of_with_p_runs_nothing_otherwise(tiny):
    ops = [{"horizontal_flip": {"p": 1.0}}, {"vertical_flip": {"p": 1.0}}]
    pipe = augflow.Pipeline.from_dict({"augflow": 1, "sample": [{"one_of": {"p": 0.3, "ops": ops}}]})
    runs = _applied(pipe, tiny)
    assert all(len(prov) in (0, 1) for prov in runs)
    assert abs(sum(len(prov) for prov in runs) - 0.3 * N) < _bound(0.3)


def test_some_of_applies_n_distinct_ops(tiny):
    names = ["horizontal_flip", "vertical_flip", "transpose", "random_rotate90"]
    pipe = augflow.Pipeline.from_dict({"augflow": 1, "sample": [
        {"some_of": {"n": 2, "ops": [{n: {"p": 1.0}} for n in names]}}]})
    runs = _applied(pipe, tiny)
    assert all(len(prov) == 2 and len(set(prov.ops())) == 2 for prov in runs)
    for name in names:
        assert abs(sum(name in prov.ops() for prov in runs) - 0.5 * N) < _bound(0.5)


def test_some_of_range_draws_how_many(tiny):
    names = ["horizontal_flip", "vertical_flip", "transpose"]
    pipe = augflow.Pipeline.from_dict({"augflow": 1, "sample": [
        {"some_of": {"n": [0, 3], "ops": [{n: {"p": 1.0}} for n in names]}}]})
    sizes = np.bincount([len(prov) for prov in _applied(pipe, tiny)], minlength=4)
    for k in range(4):
        assert abs(sizes[k] - N / 4) < _bound(0.25), sizes


def test_sequential_runs_all_or_nothing(tiny):
    pipe = augflow.Pipeline.from_dict({"augflow": 1, "sample": [
        {"sequential": {"p": 0.4, "ops": [{"horizontal_flip": {"p": 1.0}}, {"transpose": {"p": 1.0}}]}}]})
    runs = _applied(pipe, tiny)
    assert all(prov.ops() in ([], ["horizontal_flip", "transpose"]) for prov in runs)
    assert abs(sum(bool(prov) for prov in runs) - 0.4 * N) < _bound(0.4)


def test_provenance_lists_only_applied_ops_with_their_paths(tiny):
    pipe = augflow.Pipeline.from_dict({"augflow": 1, "sample": [
        {"horizontal_flip": {"p": 0.0}},
        {"one_of": {"ops": [{"vertical_flip": {"p": 1.0}}, {"transpose": {"p": 1.0}}]}},
        {"gaussian_blur": {"p": 1.0}}]})
    out = pipe({"image": tiny}, index=0)
    assert len(out.provenance) == 2
    assert out.provenance[0].path in ("sample[1].ops[0]", "sample[1].ops[1]")
    assert out.provenance[1].op == "gaussian_blur" and out.provenance[1].path == "sample[2]"
    json.loads(out.provenance.to_json())   # JSON-serializable
