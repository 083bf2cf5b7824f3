"""The `offline:` section in a materialize job: run after the sample stage, seeded per output, replayable."""

import json

import numpy as np
import pytest
from PIL import Image

from augflow import Pipeline
from augflow.generative.night import night
from augflow.io import engines
from augflow.io import materialize as mat
from augflow.io.sources import load_item, open_source

PIPELINE = {"augflow": 1, "seed": 3,
            "sample": [{"random_resized_crop": {"size": [48, 48], "scale": [0.5, 1.0]}},
                       {"horizontal_flip": {"p": 0.5}}],
            "offline": [{"night": {"exposure": [-2.0, -1.0]}}]}


@pytest.fixture
def job(tmp_path, astronaut, chelsea):
    for name, img in (("cat", chelsea), ("person", astronaut)):
        (tmp_path / "in" / name).mkdir(parents=True)
        Image.fromarray(img).save(tmp_path / "in" / name / f"{name}.png")
    (tmp_path / "p.yaml").write_text(json.dumps(PIPELINE))      # JSON is YAML
    opts = mat.JobOptions(pipeline=str(tmp_path / "p.yaml"), input=str(tmp_path / "in"), output=str(tmp_path / "out"),
                          copies=2, shard_size=3, manifest="jsonl")
    return mat.plan(opts)


def _rows(job) -> list[dict]:
    engines.run(job)
    return [json.loads(line) for line in (job.root / "manifest.jsonl").read_text().splitlines()]


def test_outputs_are_the_sample_stage_then_the_offline_op_with_recorded_params(job):
    pipe = Pipeline.from_dict(PIPELINE)
    source = open_source(job.options.input)
    for row in _rows(job):
        assert row["status"] == "ok"
        assert [(e["op"], e["path"]) for e in row["provenance"]][-1] == ("night", "offline[0]")
        loaded = load_item(source.items[row["source_index"]], {})
        stage = pipe(loaded, index=row["source_index"], epoch=row["copy"])     # what a training loader gets
        assert "night" not in stage.provenance.ops()
        assert [e.to_dict() for e in stage.provenance] == row["provenance"][:-1]
        params = row["provenance"][-1]["params"]
        expected = night(stage["image"], glow_threshold=0.8, glow_radius=0.02, **params)
        written = np.asarray(Image.open(job.root / row["files"][0]))
        np.testing.assert_array_equal(written, expected)
        np.testing.assert_array_equal(written, pipe.replay(loaded, row["provenance"])["image"])
        assert written.mean() < stage["image"].mean() * 0.8                 # it did get darker


def test_offline_params_come_from_the_per_output_seed(job, tmp_path):
    rows = _rows(job)
    again = mat.plan(mat.JobOptions(**{**job.options.__dict__, "output": str(tmp_path / "again")}))
    assert [r["provenance"] for r in _rows(again)] == [r["provenance"] for r in rows]
    seeds = [r["provenance"][-1]["params"]["noise_seed"] for r in rows]
    assert len(set(seeds)) == len(rows)                                     # a different draw per output


def test_the_generative_cache_defaults_to_the_output_folder(job, tmp_path, monkeypatch):
    assert job.cache_dir == str(job.root / ".augflow" / "cache")
    job.release()
    monkeypatch.setenv("AUGFLOW_CACHE_DIR", str(tmp_path / "mine"))
    user = mat.plan(mat.JobOptions(**{**job.options.__dict__, "output": str(tmp_path / "other")}))
    assert user.context("raise")["cache_dir"] == str(tmp_path / "mine")


def test_image_folder_samples_carry_their_class_name(job):
    rows = _rows(job)
    assert [r["label_name"] for r in rows] == ["cat", "cat", "person", "person"]
    assert all("label_name" not in r["fields"] for r in rows)             # the row's column, not repeated
    assert load_item(job.source.items[1], {})["label_name"] == "person"


def test_offline_ops_run_on_each_view_after_every_sample_draw(camera):
    pipe = Pipeline.from_dict({**PIPELINE, "sample": [{"horizontal_flip": {"p": 1.0}}, {"views": 2},
                                                      {"random_resized_crop": {"size": [32, 32]}}]})
    loader = pipe({"image": camera}, index=4)
    out = pipe({"image": camera}, index=4, offline=True)
    assert [(e.op, e.view) for e in out.provenance] == [
        ("horizontal_flip", None), ("random_resized_crop", "view0"), ("night", "view0"),
        ("random_resized_crop", "view1"), ("night", "view1")]
    assert [e for e in out.provenance if e.op != "night"] == list(loader.provenance)   # loader draws unchanged
    replayed = pipe.replay({"image": camera}, out.provenance)
    for view in ("view0", "view1"):
        np.testing.assert_array_equal(replayed[view]["image"], out[view]["image"])
        assert out[view]["image"].shape == (32, 32)                          # grayscale stays HxW
