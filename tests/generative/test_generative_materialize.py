"""Both diffusion ops through `augflow materialize`; the results cache makes a rerun model-free."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("diffusers", reason="the generative ops need the diffusers extra")
pytest.importorskip("typer")

from typer.testing import CliRunner  # noqa: E402

from augflow.cli.main import app  # noqa: E402
from augflow.generative import cache, models  # noqa: E402


@pytest.fixture()
def segmentation_set(tmp_path, cat64, heart_mask) -> Path:
    """A JSONL manifest of two images with masks and class names."""
    from skimage import data

    rows = []
    for i, (img, label) in enumerate([(cat64, "cat"), (np.ascontiguousarray(data.astronaut()[::8, ::8]), "person")]):
        Image.fromarray(img).save(tmp_path / f"img{i}.png")
        Image.fromarray(np.roll(heart_mask, 8 * i, axis=1)).save(tmp_path / f"img{i}_mask.png")
        rows.append({"image": f"img{i}.png", "mask": f"img{i}_mask.png", "label": label})
    manifest = tmp_path / "train.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return manifest


def test_materialize_runs_both_ops_and_a_rerun_calls_no_model(tmp_path, tiny_sd, tiny_controlnet, segmentation_set):
    pipeline = tmp_path / "gen.yaml"
    pipeline.write_text(f"""\
augflow: 1
seed: 11
sample:
  - augmented_conditioning:
      model: {tiny_sd}
      prompt: "a photo of a {{label_name}}"
      class_names: [cat, person]
      condition: {{ops: [{{random_brightness_contrast: {{p: 1.0}}}}]}}
      strength: [0.5, 0.9]
      steps: 2
  - mask_conditioned_diffusion:
      model: {tiny_sd}
      controlnet: {tiny_controlnet}
      strength: 0.8
      steps: 2
""", encoding="utf-8")
    runner = CliRunner()
    env = {"AUGFLOW_CACHE_DIR": str(tmp_path / "gen-cache")}

    def run(out: str) -> list[dict]:
        args = ["materialize", str(pipeline), "--input", str(segmentation_set), "--output", str(tmp_path / out),
                "--copies", "2", "--manifest", "jsonl"]
        result = runner.invoke(app, args, env=env)
        assert result.exit_code == 0, result.output
        return [json.loads(line) for line in (tmp_path / out / "manifest.jsonl").read_text().splitlines()]

    before = sum(models.CALLS[k] for k in ("augmented_conditioning", "mask_conditioned_diffusion"))
    rows = run("out1")
    first_calls = sum(models.CALLS[k] for k in ("augmented_conditioning", "mask_conditioned_diffusion")) - before
    assert first_calls >= 8                       # 2 images x 2 copies x 2 ops, at least
    assert [r["status"] for r in rows] == ["ok"] * 4
    cache.clear_memory()                          # only the disk cache may answer now
    again = run("out2")
    after = sum(models.CALLS[k] for k in ("augmented_conditioning", "mask_conditioned_diffusion"))
    assert after - before == first_calls          # the rerun made no model call
    for a, b in zip(rows, again):
        ops = [e["op"] for e in a["provenance"]]
        assert ops == ["augmented_conditioning", "mask_conditioned_diffusion"]
        assert a["provenance"] == b["provenance"]
        for fa, fb in zip(a["files"], b["files"]):
            assert (tmp_path / "out1" / fa).read_bytes() == (tmp_path / "out2" / fb).read_bytes()
    mask_file = next(f for f in rows[0]["files"] if f.endswith(".mask.png"))
    image_file = next(f for f in rows[0]["files"] if f != mask_file)
    generated = np.asarray(Image.open(tmp_path / "out1" / image_file))
    source = np.asarray(Image.open(segmentation_set.parent / "img0.png"))
    assert generated.shape == source.shape and np.abs(generated.astype(int) - source).mean() > 5
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out1" / mask_file)),
                                  np.asarray(Image.open(segmentation_set.parent / "img0_mask.png")))
