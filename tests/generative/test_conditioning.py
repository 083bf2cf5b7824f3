"""augmented_conditioning: img2img from an augmented real image, loaded from a local directory."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("diffusers", reason="the generative ops need the diffusers extra")

from augflow import Pipeline, PipelineConfigError  # noqa: E402
from augflow.generative import SameClassIndex, attach_partners, cache, models  # noqa: E402
from augflow.generative.conditioning import _mix  # noqa: E402

YAML = """\
augflow: 1
seed: 7
sample:
  - augmented_conditioning:
      model: {model}
      prompt: "a photo of a {{label_name}}"
      class_names: [cat, dog]
      condition:
        ops:
          - horizontal_flip: {{p: 0.5}}
          - random_brightness_contrast: {{p: 1.0}}
      strength: [0.5, 0.9]
      steps: 2
      size: [48, 64]
{extra}"""


def _pipe(tmp_path: Path, model: Path, extra: str = "") -> Pipeline:
    path = tmp_path / "gen.yaml"
    path.write_text(YAML.format(model=model, extra=extra), encoding="utf-8")
    return Pipeline.from_yaml(path)


def test_yaml_pipeline_generates_the_declared_size_from_a_local_directory(tmp_path, tiny_sd, cat64):
    out = _pipe(tmp_path, tiny_sd)({"image": cat64, "label": 0}, index=0)
    assert out["image"].shape == (48, 64, 3) and out["image"].dtype == np.uint8
    resized = np.asarray(__import__("PIL.Image", fromlist=["Image"]).fromarray(cat64).resize((64, 48)))
    assert np.abs(out["image"].astype(int) - resized).mean() > 5      # a generation, not a resize
    assert out["label"] == 0


def test_same_seed_reproduces_and_another_seed_differs(tmp_path, tiny_sd, cat64):
    pipe = _pipe(tmp_path, tiny_sd)
    calls = models.CALLS["augmented_conditioning"]
    a = pipe({"image": cat64, "label": 0}, seed=1)["image"]
    cache.clear_memory()                                  # recompute, don't serve from the cache
    b = pipe({"image": cat64, "label": 0}, seed=1)["image"]
    c = pipe({"image": cat64, "label": 0}, seed=2)["image"]
    assert models.CALLS["augmented_conditioning"] - calls == 3
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_provenance_records_model_hash_prompt_seed_and_conditioning_ops(tmp_path, tiny_sd, cat64):
    out = _pipe(tmp_path, tiny_sd)({"image": cat64, "label": 0}, seed=3)
    entry = json.loads(out.provenance.to_json())[0]
    params = entry["params"]
    assert entry["op"] == "augmented_conditioning"
    assert params["model"] == {"path": str(Path(tiny_sd).resolve()), "hash": models.content_hash(tiny_sd)}
    assert params["model"]["hash"].startswith("sha256:")
    assert params["prompt"] == "a photo of a cat"
    assert isinstance(params["seed"], int) and 0.5 <= params["strength"] <= 0.9
    assert [e["op"] for e in params["condition"]][-1] == "random_brightness_contrast"


def test_replay_recomputes_bit_identically(tmp_path, tiny_sd, cat64):
    pipe = _pipe(tmp_path, tiny_sd)
    out = pipe({"image": cat64, "label": 1}, seed=4)
    cache.clear_memory()
    again = pipe.replay({"image": cat64, "label": 1}, out.provenance.to_json())
    np.testing.assert_array_equal(again["image"], out["image"])
    assert json.loads(out.provenance.to_json())[0]["params"]["prompt"] == "a photo of a dog"


def test_disk_cache_makes_a_rerun_call_the_model_zero_times(tmp_path, tiny_sd, cat64):
    samples = [{"image": cat64, "label": 0}, {"image": cat64[::-1].copy(), "label": 1}]
    with cache.use_cache_dir(tmp_path / "gen-cache"):
        first = [_pipe(tmp_path, tiny_sd)(s, index=i) for i, s in enumerate(samples)]
        cache.clear_memory()
        calls = models.CALLS["augmented_conditioning"]
        second = [_pipe(tmp_path, tiny_sd)(s, index=i) for i, s in enumerate(samples)]   # a new process would do this
    assert models.CALLS["augmented_conditioning"] == calls
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a["image"], b["image"])
    assert len(list((tmp_path / "gen-cache").rglob("*.npy"))) == 2


def test_cutmix_partner_comes_from_the_same_class_through_the_dataset(tmp_path, tiny_sd, cat64):
    from skimage import data

    dataset = [{"image": cat64, "label": 0}, {"image": data.astronaut()[::8, ::8].copy(), "label": 1},
               {"image": data.coffee()[::6, ::8].copy(), "label": 1}]
    pipe = _pipe(tmp_path, tiny_sd, "      mix: {mode: cutmix, same_class: true, p: 1.0}\n")
    assert attach_partners(pipe, SameClassIndex(dataset)) == 1
    out = pipe({"image": dataset[1]["image"], "label": 1}, seed=5)
    mix = json.loads(out.provenance.to_json())[0]["params"]["mix"]
    assert mix["mode"] == "cutmix" and mix["partner"]["label"] == 1 and mix["partner"]["index"] in (0, 1)
    cache.clear_memory()
    np.testing.assert_array_equal(pipe.replay({"image": dataset[1]["image"], "label": 1}, out.provenance)["image"],
                                  out["image"])


def test_mix_without_a_partner_says_how_to_attach_one(tmp_path, tiny_sd, cat64):
    pipe = _pipe(tmp_path, tiny_sd, "      mix: {mode: mixup, p: 1.0}\n")
    with pytest.raises(ValueError, match="attach_partners"):
        pipe({"image": cat64, "label": 0}, seed=0)


def test_cutmix_and_mixup_kernels():
    a, b = np.zeros((10, 20, 3), np.float32), np.ones((10, 20, 3), np.float32)
    cut = _mix(a, b, {"mode": "cutmix", "box": [0.5, 0.0, 1.0, 0.5], "lam": 0.75})
    assert cut[:5, 10:].min() == 1.0 and cut[5:].max() == 0.0 and cut[:, :10].max() == 0.0
    np.testing.assert_allclose(_mix(a, b, {"mode": "mixup", "lam": 0.3}), 0.7)


def test_batch_of_samples_runs_as_one_model_call(tiny_sd, cat64):
    from augflow import registry
    from augflow.sample import Sample

    op = registry.get("augmented_conditioning").build({"model": str(tiny_sd), "strength": 0.6, "steps": 2})
    samples = [Sample({"image": cat64, "label": 0}), Sample({"image": cat64[:, ::-1].copy(), "label": 1})]
    rng = np.random.default_rng(0)
    params = [op.sample_params(rng, s) for s in samples]
    calls = models.CALLS["augmented_conditioning"]
    batched = op.apply_samples(samples, params)
    assert models.CALLS["augmented_conditioning"] == calls + 1
    cache.clear_memory()
    single = [op.apply(s, **p) for s, p in zip(samples, params)]
    for b, s in zip(batched, single):   # same seeds; batch arithmetic may differ in the last bits
        assert np.abs(b["image"].astype(int) - s["image"]).max() <= 2


def test_missing_or_incomplete_model_directory_is_a_load_time_error(tmp_path, tiny_sd):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_sd, broken)
    shutil.rmtree(broken / "unet")
    with pytest.raises(PipelineConfigError) as err:
        _pipe(tmp_path, broken)
    text = str(err.value)
    assert "gen.yaml:5:14" in text and "'augmented_conditioning'" in text and "'model'" in text
    assert "missing unet/" in text
    with pytest.raises(PipelineConfigError, match="does not exist.*never downloads"):
        _pipe(tmp_path, tmp_path / "nowhere")


def test_replay_with_a_changed_model_is_refused(tmp_path, tiny_sd, cat64):
    out = _pipe(tmp_path, tiny_sd)({"image": cat64, "label": 0}, seed=6)
    other = tmp_path / "sd2"
    shutil.copytree(tiny_sd, other)
    config = json.loads((other / "unet" / "config.json").read_text())
    config["_note"] = "fine-tuned"
    (other / "unet" / "config.json").write_text(json.dumps(config))
    pipe2 = _pipe(tmp_path, other)
    entries = json.loads(out.provenance.to_json())
    entries[0]["path"] = "sample[0]"
    with pytest.raises(models.ModelError, match="hashing to"):
        pipe2.replay({"image": cat64, "label": 0}, entries)


def test_too_few_denoising_steps_is_a_load_time_error(tmp_path, tiny_sd):
    with pytest.raises(PipelineConfigError, match="steps \\* strength"):
        Pipeline.from_dict({"augflow": 1, "sample": [{"augmented_conditioning": {
            "model": str(tiny_sd), "steps": 1, "strength": [0.5, 0.9]}}]})


def test_an_image_variation_model_is_conditioned_on_the_augmented_image(tmp_path, cat64):
    from skimage import data

    from augflow.generative.tiny import save_tiny_image_variation

    model = save_tiny_image_variation(tmp_path / "variation")
    pipe = Pipeline.from_dict({"augflow": 1, "sample": [{"augmented_conditioning": {
        "model": str(model), "steps": 2, "condition": {"ops": [{"horizontal_flip": {"p": 1.0}}]}}}]})
    other = np.ascontiguousarray(data.astronaut()[::8, ::8])
    a = pipe({"image": cat64, "label": 0}, seed=1)
    cache.clear_memory()
    b = pipe({"image": cat64, "label": 0}, seed=1)
    c = pipe({"image": other, "label": 0}, seed=1)
    np.testing.assert_array_equal(a["image"], b["image"])
    assert a["image"].shape == cat64.shape and not np.array_equal(a["image"], c["image"])   # the image conditions it
    params = json.loads(a.provenance.to_json())[0]["params"]
    assert params["prompt"] is None and params["strength"] is None


def test_scheduler_negative_prompt_and_guidance_range_are_applied(tiny_sd, cat64):
    base = {"augmented_conditioning": {"model": str(tiny_sd), "steps": 2, "strength": 0.8}}
    euler = {"augmented_conditioning": {**base["augmented_conditioning"], "scheduler": "euler",
                                        "negative_prompt": "blurry", "guidance_scale": [3.0, 9.0]}}
    sample = {"image": cat64, "label": 0}
    a = Pipeline.from_dict({"augflow": 1, "sample": [base]})(sample, seed=1)
    b = Pipeline.from_dict({"augflow": 1, "sample": [euler]})(sample, seed=1)
    assert not np.array_equal(a["image"], b["image"])
    params = json.loads(b.provenance.to_json())[0]["params"]
    assert params["negative_prompt"] == "blurry" and 3.0 <= params["guidance_scale"] <= 9.0
    cache.clear_memory()
    np.testing.assert_array_equal(Pipeline.from_dict({"augflow": 1, "sample": [euler]})(sample, seed=1)["image"],
                                  b["image"])


def test_batch_stage_runs_the_op_on_a_collated_batch_in_one_call(tmp_path, tiny_sd, cat64):
    import torch

    from augflow.compile import make_plan
    from augflow.compile.batch_stage import BatchStage
    from augflow.compile.sample_stage import EPOCH_KEY, INDEX_KEY

    pipe = Pipeline.from_dict({"augflow": 1, "batch": {"device": "cpu", "ops": [{"augmented_conditioning": {
        "model": str(tiny_sd), "strength": 0.7, "steps": 2, "class_names": ["cat", "dog"]}}]}})
    stage = BatchStage(make_plan(pipe))
    images = torch.from_numpy(np.stack([cat64, cat64[:, ::-1]])).permute(0, 3, 1, 2).float() / 255
    batch = {"image": images, "label": torch.tensor([0, 1]), INDEX_KEY: torch.tensor([0, 1]),
             EPOCH_KEY: torch.tensor([0, 0])}
    calls = models.CALLS["augmented_conditioning"]
    out = stage(dict(batch))["image"]
    assert models.CALLS["augmented_conditioning"] == calls + 1        # both elements in one model call
    assert out.shape == images.shape and out.dtype == torch.float32
    assert (out - images).abs().mean() > 0.02
    cache.clear_memory()
    torch.testing.assert_close(stage(dict(batch))["image"], out)       # a function of (seed, epoch, index)


def test_without_diffusers_the_error_names_the_op_and_the_extra(tmp_path, tiny_sd, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "diffusers" else real(name, *a))
    with pytest.raises(PipelineConfigError, match="'augmented_conditioning'.*'diffusers'.*augflow\\[diffusers\\]"):
        _pipe(tmp_path, tiny_sd)


def test_an_unavailable_device_is_a_load_time_error(tiny_sd):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(PipelineConfigError, match="'device'.*no CUDA.*device: auto"):
        Pipeline.from_dict({"augflow": 1, "sample": [{"augmented_conditioning": {
            "model": str(tiny_sd), "steps": 4, "device": "cuda"}}]})


class _Generated:
    """A Dataset whose __getitem__ runs a generative pipeline (what a user's training loader does)."""

    def __init__(self, pipe, image):
        self.pipe, self.image = pipe, image

    def __len__(self):
        return 4

    def __getitem__(self, i):
        return self.pipe({"image": self.image, "label": i % 2}, index=i)["image"]


def test_loader_workers_load_the_model_themselves_and_agree_with_one_process(tmp_path, tiny_sd, cat64):
    import torch

    dataset = _Generated(_pipe(tmp_path, tiny_sd), cat64)
    in_process = [dataset[i] for i in range(4)]
    cache.clear_memory()
    models.clear_models()         # workers start without the model and load it lazily, once each
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=2)
    for ours, theirs in zip(in_process, loader):
        np.testing.assert_array_equal(ours, theirs.numpy())
